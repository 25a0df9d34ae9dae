/*
 * cuda_activation.c - seqk_activate / seqk_gated_activate on CUDA tensors and the epilogues of
 * the fused linear: the dims of x, up, y and add merged where all of them continue them (a
 * contiguous tensor becomes one run, which the kernel moves in 16-byte vectors), then one kernel
 * (kernels/activation.cu). No workspace.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_pointwise(seqk_context_t ctx, const char *op, seqk_activation act,
                                 const seqk_tensor *x, const seqk_tensor *up,
                                 const seqk_tensor *add, const seqk_tensor *y) {
  SEQK_TRY(seqk__require_device(ctx, op));
  seqk_k_activation_params p;
  memset(&p, 0, sizeof p);
  p.n = seqk__numel(y);
  if (p.n == 0) return SEQK_STATUS_SUCCESS;
  p.x = x->data;
  p.up = up ? up->data : NULL;
  p.add = add ? add->data : NULL;
  p.y = y->data;
  p.dtype = y->dtype;
  p.act = act;
  const seqk_tensor *ts[SEQK_K_LAYOUT_TENSORS] = {x, up, y, add};
  seqk__merge_dims(y, ts, SEQK_K_LAYOUT_TENSORS, y->ndim, &p.layout.ndim, p.layout.shape,
                   &p.layout.stride[0][0], SEQK_MAX_DIMS);
  return seqk__launched(ctx, op, "activation", seqk_k_activation(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
