/*
 * cuda_rotary.c - seqk_rotary on CUDA tensors: the descriptors as the rotary kernel's params
 * (kernels/rotary.cu), one launch for q and k together. No workspace.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_rotary(seqk_context_t ctx, int neox, int64_t rotary_dim, double log2_theta,
                              const seqk_tensor *positions, const seqk_tensor *q,
                              const seqk_tensor *k) {
  static const char op[] = "rotary";
  SEQK_TRY(seqk__require_device(ctx, op));
  seqk_k_rotary_params p;
  memset(&p, 0, sizeof p);
  p.q = q->data;
  p.k = k ? k->data : NULL;
  p.positions = positions ? (const int32_t *)positions->data : NULL;
  p.dtype = q->dtype;
  p.neox = neox;
  p.B = q->shape[0];
  p.S = q->shape[1];
  p.H = q->shape[2];
  p.Hk = k ? k->shape[2] : 0;
  p.D = q->shape[3];
  p.rotary_dim = rotary_dim;
  p.log2_theta = log2_theta;
  for (int d = 0; d < 4; ++d) {
    p.q_stride[d] = q->stride[d];
    p.k_stride[d] = k ? k->stride[d] : 0;
  }
  if (positions) {
    p.pos_stride[0] = positions->stride[0];
    p.pos_stride[1] = positions->stride[1];
  }
  return seqk__launched(ctx, op, "rotary", seqk_k_rotary(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
