/*
 * cuda_copy.c - strided copies and fills of CUDA views (cuda_copy.h): the descriptor turned into
 * the tensor_copy / fill_rows kernels' params. Every staging copy of the host's orchestration
 * (cuBLAS operands, RNN states, linear's contiguous stand-ins) and seqk_tensor_copy's CUDA->CUDA
 * path go through here.
 */
#include "cuda_copy.h"

#ifdef SEQK_HAVE_CUDA

#include "device.h"
#include "geometry.h"
#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_copy(seqk_context_t ctx, const char *op, const seqk_tensor *dst,
                            const seqk_tensor *src) {
  seqk_k_copy_params p;
  memset(&p, 0, sizeof p);
  p.dst = dst->data;
  p.src = src->data;
  p.dst_dtype = dst->dtype;
  p.src_dtype = src->dtype;
  p.n = seqk__numel(src);
  if (p.n == 0) return SEQK_STATUS_SUCCESS;
  if ((src->dtype == SEQK_DTYPE_I32) != (dst->dtype == SEQK_DTYPE_I32))
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: I32 can only be copied to I32 (validation missed it)", op);
  /* Size-1 dimensions add nothing to any offset: drop them. */
  for (int32_t d = 0; d < src->ndim; ++d) {
    if (src->shape[d] == 1) continue;
    p.shape[p.ndim] = src->shape[d];
    p.src_stride[p.ndim] = src->stride[d];
    p.dst_stride[p.ndim] = dst->stride[d];
    ++p.ndim;
  }
  return seqk__launched(ctx, op, "tensor_copy", seqk_k_tensor_copy(&p, (cudaStream_t)ctx->stream));
}

seqk_status seqk__cuda_fill(seqk_context_t ctx, const char *op, const seqk_tensor *y,
                            const seqk_tensor *bias, float value) {
  seqk_k_fill_params p;
  memset(&p, 0, sizeof p);
  p.n = seqk__numel(y);
  if (p.n == 0) return SEQK_STATUS_SUCCESS;
  const int32_t last = y->ndim - 1;
  p.y = y->data;
  p.bias = bias ? bias->data : NULL;
  p.dtype = y->dtype;
  p.value = value;
  p.cols = y->shape[last];
  p.col_stride = y->stride[last];
  p.bias_stride = bias ? bias->stride[0] : 0;
  /* Leading dims, outermost first, size-1 dims dropped; a dim continuing the one inside it is
     merged into it. */
  int64_t shape[SEQK_MAX_DIMS], stride[SEQK_MAX_DIMS];
  int32_t n = 0;
  for (int32_t d = 0; d < last; ++d) {
    if (y->shape[d] == 1) continue;
    shape[n] = y->shape[d];
    stride[n] = y->stride[d];
    ++n;
  }
  for (int32_t d = 0; d < n; ++d) {
    if (p.nlead > 0 && p.stride[p.nlead - 1] == shape[d] * stride[d]) {
      p.shape[p.nlead - 1] *= shape[d];
      p.stride[p.nlead - 1] = stride[d];
    } else {
      p.shape[p.nlead] = shape[d];
      p.stride[p.nlead] = stride[d];
      ++p.nlead;
    }
  }
  return seqk__launched(ctx, op, "fill_rows", seqk_k_fill_rows(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
