/*
 * cuda_heads.c - seqk_split_heads / seqk_merge_heads on CUDA tensors: both ops are one 4-d
 * permuting copy (kernels/heads.cu) with x and y described in the dims (b, h, s, d).
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "launchers.h"

#include <string.h>

static seqk_status permute_heads(seqk_context_t ctx, const char *op, const int64_t n[4],
                                 const seqk_tensor *src, const int64_t src_stride[4],
                                 const seqk_tensor *dst, const int64_t dst_stride[4]) {
  seqk_k_permute4_params p;
  SEQK_TRY(seqk__require_device(ctx, op));
  memset(&p, 0, sizeof p);
  p.dst = dst->data;
  p.src = src->data;
  p.elem_size = seqk_dtype_size(src->dtype);
  for (int d = 0; d < 4; ++d) {
    p.n[d] = n[d];
    p.src_stride[d] = src_stride[d];
    p.dst_stride[d] = dst_stride[d];
  }
  return seqk__launched(ctx, op, "permute", seqk_k_permute4(&p, (cudaStream_t)ctx->stream));
}

seqk_status seqk__cuda_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                   const seqk_tensor *y) {
  const int64_t D = x->shape[2] / num_heads;
  const int64_t n[4] = {y->shape[0], y->shape[1], y->shape[2], y->shape[3]};
  /* x [B,S,H*D] read as [B,H,S,D]: head h starts h*D elements into the last dim. */
  const int64_t xs[4] = {x->stride[0], D * x->stride[2], x->stride[1], x->stride[2]};
  const int64_t ys[4] = {y->stride[0], y->stride[1], y->stride[2], y->stride[3]};
  return permute_heads(ctx, "split_heads", n, x, xs, y, ys);
}

seqk_status seqk__cuda_merge_heads(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *y) {
  const int64_t D = x->shape[3];
  const int64_t n[4] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
  const int64_t xs[4] = {x->stride[0], x->stride[1], x->stride[2], x->stride[3]};
  /* y [B,S,H*D] written as [B,H,S,D]. */
  const int64_t ys[4] = {y->stride[0], D * y->stride[2], y->stride[1], y->stride[2]};
  return permute_heads(ctx, "merge_heads", n, x, xs, y, ys);
}

#endif /* SEQK_HAVE_CUDA */
