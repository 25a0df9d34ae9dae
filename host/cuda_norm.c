/*
 * cuda_norm.c - seqk_layer_norm / seqk_rms_norm on CUDA tensors: the leading dims of x, residual,
 * y and residual_out merged where all four continue them (seqk__merge_dims), then one kernel
 * (kernels/norm.cu picks the on-chip or streaming variant and the vector width). No workspace.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_norm(seqk_context_t ctx, int rms, const seqk_tensor *x,
                            const seqk_tensor *residual, const seqk_tensor *weight,
                            const seqk_tensor *bias, float eps, const seqk_tensor *y,
                            const seqk_tensor *residual_out) {
  const char *op = rms ? "rms_norm" : "layer_norm";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(x) == 0) return SEQK_STATUS_SUCCESS;
  const int32_t last = x->ndim - 1;
  seqk_k_norm_params p;
  memset(&p, 0, sizeof p);
  p.x = x->data;
  p.residual = residual ? residual->data : NULL;
  p.weight = weight ? weight->data : NULL;
  p.bias = bias ? bias->data : NULL;
  p.y = y->data;
  p.residual_out = residual_out ? residual_out->data : NULL;
  p.dtype = x->dtype;
  p.rms = rms;
  p.eps = eps;
  p.n = x->shape[last];
  p.rows = seqk__numel(x) / p.n;
  const seqk_tensor *ts[SEQK_K_LAYOUT_TENSORS] = {x, residual, y, residual_out};
  for (int t = 0; t < SEQK_K_LAYOUT_TENSORS; ++t) p.col_stride[t] = ts[t] ? ts[t]->stride[last] : 0;
  p.weight_stride = weight ? weight->stride[0] : 0;
  p.bias_stride = bias ? bias->stride[0] : 0;
  seqk__merge_dims(x, ts, SEQK_K_LAYOUT_TENSORS, last, &p.lead.ndim, p.lead.shape,
                   &p.lead.stride[0][0], SEQK_MAX_DIMS);
  return seqk__launched(ctx, op, "norm", seqk_k_norm(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
