/*
 * cuda_copy.h - strided copies and fills of CUDA views (cuda_copy.c), the lowest layer of the
 * host's CUDA orchestration: cuBLAS operand staging (blas.c), seqk_tensor_copy (tensor.c) and
 * every op in cuda_*.c use them. Both launch on ctx's stream and do not wait. Not installed.
 */
#ifndef SEQK_CUDA_COPY_H
#define SEQK_CUDA_COPY_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst = src element by element, converting between F32/F16/BF16 (round to nearest even) or
   copying I32 to I32. Same shape, not overlapping. */
seqk_status seqk__cuda_copy(seqk_context_t ctx, const char *op, const seqk_tensor *dst,
                            const seqk_tensor *src);
/* y[..., j] = bias[j] (bias [y.shape[-1]] of y's dtype) on every row, or value everywhere when
   bias is NULL; y.ndim >= 1, float dtype. */
seqk_status seqk__cuda_fill(seqk_context_t ctx, const char *op, const seqk_tensor *y,
                            const seqk_tensor *bias, float value);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_CUDA_COPY_H */
