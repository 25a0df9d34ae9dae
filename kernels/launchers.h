/*
 * launchers.h - the C-callable entry points of the kernel sources (kernels/NAME.cu). Each takes already validated
 * arguments, launches on ctx's stream and turns a launch error into SEQK_STATUS_DEVICE_ERROR (with
 * the runtime's text in ctx's last error). None waits for the kernel to finish.
 */
#ifndef SEQK_KERNELS_LAUNCHERS_H
#define SEQK_KERNELS_LAUNCHERS_H

#include "seqk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst = src element by element, converting between F32/F16/BF16 (round to nearest even) or
   copying I32 to I32. Both tensors on SEQK_DEVICE_CUDA, same shape, any strides, not
   overlapping. */
seqk_status seqk__cuda_tensor_copy(seqk_context_t ctx, const seqk_tensor *dst, const seqk_tensor *src);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_KERNELS_LAUNCHERS_H */
