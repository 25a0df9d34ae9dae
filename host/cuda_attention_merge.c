/*
 * cuda_attention_merge.c - seqk_attention_merge on CUDA tensors: the row dims merged where all six
 * tensors allow it, then one kernel (kernels/attention_merge.cu, merge.cuh's rule).
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                       const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                       const seqk_tensor *lse_b, const seqk_tensor *o,
                                       const seqk_tensor *lse) {
  static const char op[] = "attention_merge";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (lse && !lse->data) lse = NULL;
  const seqk_tensor *ts[SEQK_K_MERGE_TENSORS] = {o_a, o_b, o, lse_a, lse_b, lse};
  const int32_t lead = o->ndim - 1;
  if (seqk__numel(o) == 0 && !lse) return SEQK_STATUS_SUCCESS;
  seqk_k_merge_params p;
  memset(&p, 0, sizeof p);
  p.rows = 1;
  for (int32_t d = 0; d < lead; ++d) p.rows *= o->shape[d];
  if (p.rows == 0) return SEQK_STATUS_SUCCESS;
  p.o_a = o_a->data;
  p.o_b = o_b->data;
  p.o = o->data;
  p.lse_a = (const float *)lse_a->data;
  p.lse_b = (const float *)lse_b->data;
  p.lse = lse ? (float *)lse->data : NULL;
  p.dtype = o->dtype;
  p.Dv = o->shape[lead];
  p.col_stride[0] = o_a->stride[lead];
  p.col_stride[1] = o_b->stride[lead];
  p.col_stride[2] = o->stride[lead];
  /* Row dims: size-1 dims dropped, merged where all six tensors continue them. */
  seqk__merge_dims(o, ts, SEQK_K_MERGE_TENSORS, lead, &p.ndim, p.shape, &p.stride[0][0],
                   SEQK_K_LEAD_DIMS);
  return seqk__launched(ctx, op, "merge", seqk_k_attention_merge(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
