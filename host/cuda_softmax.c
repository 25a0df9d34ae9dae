/*
 * cuda_softmax.c - the softmax ops on CUDA tensors: seqk_softmax along any dim and the row
 * softmax of the unfused attention path. The descriptors become the kernels' params here (the
 * outer dims sorted and merged, kernels/softmax.cu picks the variant); the split variant's
 * scratch comes from the workspace unless the tensors live there.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

/* The dims of x other than `dim`, size-1 dims dropped, sorted by decreasing x stride (so the
   last, fastest one is the best for coalescing), and neighbours merged where both x and y step
   through them as through one dim: a contiguous tensor's outer dims become one. */
static void make_outer(const seqk_tensor *x, const seqk_tensor *y, int32_t dim,
                       seqk_k_softmax_params *p) {
  int32_t n = 0;
  int64_t *shape = p->outer_shape, *xs = p->outer_xs, *ys = p->outer_ys;
  for (int32_t d = 0; d < x->ndim; ++d) {
    if (d == dim || x->shape[d] == 1) continue;
    int32_t at = n++;
    /* Insertion sort, stable: equal strides keep their order. */
    while (at > 0 && xs[at - 1] < x->stride[d]) {
      shape[at] = shape[at - 1];
      xs[at] = xs[at - 1];
      ys[at] = ys[at - 1];
      --at;
    }
    shape[at] = x->shape[d];
    xs[at] = x->stride[d];
    ys[at] = y->stride[d];
  }
  int32_t m = 0;
  for (int32_t d = 1; d < n; ++d) {
    if (xs[m] == xs[d] * shape[d] && ys[m] == ys[d] * shape[d]) {
      shape[m] *= shape[d];
      xs[m] = xs[d];
      ys[m] = ys[d];
    } else {
      ++m;
      shape[m] = shape[d];
      xs[m] = xs[d];
      ys[m] = ys[d];
    }
  }
  p->outer_ndim = n > 0 ? m + 1 : 0;
}

static int in_workspace(seqk_context_t ctx, const seqk_tensor *t) {
  return seqk__in_workspace(ctx, t->data, (size_t)seqk__span(t) * seqk_dtype_size(t->dtype));
}

seqk_status seqk__cuda_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                               const seqk_tensor *y) {
  static const char op[] = "softmax";
  const seqk_device_info *dev = NULL;
  SEQK_TRY(seqk__device_info(ctx, op, &dev));
  const int64_t total = seqk__numel(x);
  if (total == 0) return SEQK_STATUS_SUCCESS;
  seqk_k_softmax_params p;
  memset(&p, 0, sizeof p);
  p.x = x->data;
  p.y = y->data;
  p.dtype = x->dtype;
  p.n = x->shape[dim];
  p.rows = total / p.n;
  p.sx = x->stride[dim];
  p.sy = y->stride[dim];
  make_outer(x, y, dim, &p);

  void *scratch = NULL;
  const size_t bytes = seqk_k_softmax_scratch_bytes(&p, dev->sms);
  if (bytes > 0 && !in_workspace(ctx, x) && !in_workspace(ctx, y)) {
    seqk_arena arena;
    SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_elems((int64_t)bytes, 1), &arena));
    SEQK_TRY(seqk__arena_take(ctx, op, &arena, bytes, &scratch));
  }
  return seqk__launched(ctx, op, "softmax",
                        seqk_k_softmax(&p, dev->sms, scratch, (cudaStream_t)ctx->stream));
}

seqk_status seqk__cuda_attention_softmax(seqk_context_t ctx, const float *scores, int64_t B,
                                         int64_t H, int64_t Sq, int64_t Sk, float scale,
                                         int32_t right, const int32_t *seqlens_q,
                                         const int32_t *seqlens_k, const seqk_tensor *p,
                                         const seqk_tensor *lse) {
  static const char op[] = "attention_softmax";
  const seqk_device_info *dev = NULL;
  if (B * H * Sq == 0) return SEQK_STATUS_SUCCESS;
  if (Sk > 1 && p->stride[3] != 1)
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: p.stride[3]=%lld but the kernel needs a contiguous last dim", op,
                      (long long)p->stride[3]);
  SEQK_TRY(seqk__device_info(ctx, op, &dev));
  seqk_k_attention_softmax_params a;
  memset(&a, 0, sizeof a);
  a.scores = scores;
  a.p = p->data;
  a.p_dtype = p->dtype;
  a.B = B;
  a.H = H;
  a.Sq = Sq;
  a.Sk = Sk;
  for (int d = 0; d < 3; ++d) a.p_stride[d] = p->stride[d];
  if (seqk__present(lse)) {
    a.lse = (float *)lse->data;
    for (int d = 0; d < 3; ++d) a.lse_stride[d] = lse->stride[d];
  }
  a.scale = scale;
  a.right = right;
  a.seqlens_q = seqlens_q;
  a.seqlens_k = seqlens_k;
  return seqk__launched(ctx, op, "softmax",
                        seqk_k_attention_softmax(&a, dev->sms, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
