/*
 * ref_encoder_layer.c - CPU reference for seqk_transformer_encoder_layer_forward: the steps of
 * encoder_layer.c, each run by the CPU reference of its op (ref_mha.c, ref_norm.c,
 * ref_linear.c), with the two buffers malloc'd first (in the dtype, as on CUDA).
 */
#include "encoder_layer.h"
#include "ref_layers.h"

#include <stdlib.h>

seqk_status seqk__ref_encoder_layer(seqk_context_t ctx, const seqk_encoder_layer_desc *d,
                                    const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                                    const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                                    const seqk_tensor *key_padding_mask) {
  seqk_enc_plan p;
  seqk__encoder_plan(&p, d, w, src_bf, out_bf, key_lengths, key_padding_mask, NULL, NULL);
  if (seqk__numel(out_bf) == 0) return SEQK_STATUS_SUCCESS;
  const size_t es = seqk_dtype_size(src_bf->dtype);
  void *n_mem = d->norm_first ? malloc((size_t)seqk__numel(&p.n) * es) : NULL;
  void *f_mem = malloc((size_t)(seqk__numel(&p.f) > 0 ? seqk__numel(&p.f) : 1) * es);
  seqk_status st = SEQK_STATUS_SUCCESS;
  if ((d->norm_first && !n_mem) || !f_mem) {
    st = seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                    "transformer_encoder_layer: cannot allocate CPU buffers for %lld tokens",
                    (long long)(src_bf->shape[0] * src_bf->shape[1]));
    goto done;
  }
  seqk__encoder_plan(&p, d, w, src_bf, out_bf, key_lengths, key_padding_mask, n_mem, f_mem);
  for (int i = 0; i < p.n_steps && st == SEQK_STATUS_SUCCESS; ++i) {
    const seqk_enc_step *s = &p.steps[i];
    switch (s->kind) {
      case SEQK_ENC_MHA: {
        seqk_mha_resolved r = p.mha;
        r.residual = s->residual;
        st = seqk__ref_mha_forward(ctx, &p.self_attn, &r, s->in, s->in, s->in, s->y, NULL);
        break;
      }
      case SEQK_ENC_NORM:
        st = seqk__ref_norm(ctx, 0, s->in, NULL, s->w, s->b, p.eps, s->y, NULL);
        break;
      case SEQK_ENC_LINEAR:
        st = seqk__ref_linear(ctx, s->in, s->w, s->b, s->act, s->residual, s->y);
        break;
    }
  }
done:
  free(n_mem);
  free(f_mem);
  return st;
}
