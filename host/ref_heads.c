/*
 * ref_heads.c - CPU reference of the multi-head split and merge permutations.
 *
 * split: y[b,h,s,d] = x[b,s,h*D+d]; merge is the inverse. Both are pure copies of the bits
 * (seqk__copy_element), NaN payloads included, as the CUDA kernel's.
 */
#include "ref_attention.h"

seqk_status seqk__ref_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                  seqk_tensor *y) {
  (void)ctx;
  /* An empty y may still have huge extents elsewhere (stride-0 inputs): no loop over them. */
  if (seqk__numel(y) == 0) return SEQK_STATUS_SUCCESS;
  const int64_t B = x->shape[0], S = x->shape[1], H = num_heads, D = x->shape[2] / num_heads;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t d = 0; d < D; ++d) {
          const int64_t xo = b * x->stride[0] + s * x->stride[1] + (h * D + d) * x->stride[2];
          const int64_t yo =
              b * y->stride[0] + h * y->stride[1] + s * y->stride[2] + d * y->stride[3];
          seqk__copy_element(y, yo, x, xo);
        }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__ref_merge_heads(seqk_context_t ctx, const seqk_tensor *x, seqk_tensor *y) {
  (void)ctx;
  if (seqk__numel(y) == 0) return SEQK_STATUS_SUCCESS;   /* see split: no loop over huge extents */
  const int64_t B = x->shape[0], H = x->shape[1], S = x->shape[2], D = x->shape[3];
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          const int64_t xo =
              b * x->stride[0] + h * x->stride[1] + s * x->stride[2] + d * x->stride[3];
          const int64_t yo = b * y->stride[0] + s * y->stride[1] + (h * D + d) * y->stride[2];
          seqk__copy_element(y, yo, x, xo);
        }
  return SEQK_STATUS_SUCCESS;
}
