/*
 * cuda_encoder_layer.c - seqk_transformer_encoder_layer_forward on CUDA tensors: the steps of
 * encoder_layer.c from one workspace arena (the n and f buffers, then each step's own share:
 * the attention's projections and scratch, the linears' operand copies), planned before the
 * arena opens, so nothing is allocated and nothing waits once the workspace has the size.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "encoder_layer.h"
#include "geometry.h"

/* The bytes step s takes from the arena (an MHA step also records its attention path). */
static seqk_status step_bytes(seqk_context_t ctx, const char *op, const seqk_enc_plan *p,
                              const seqk_enc_step *s, const seqk_mha_resolved *r, seqk_mha_job *mha,
                              size_t *bytes) {
  *bytes = 0;
  if (s->kind == SEQK_ENC_MHA) {
    *mha = (seqk_mha_job){&p->self_attn, r, s->in, s->in, s->in, s->y, NULL, 0};
    return seqk__mha_job_plan(ctx, op, mha, bytes);
  }
  if (s->kind == SEQK_ENC_LINEAR) {
    const seqk_linear_job j = {s->in, s->w, s->b, s->y, s->act, s->residual};
    *bytes = seqk__linear_job_workspace(&j);
  }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__cuda_encoder_layer(seqk_context_t ctx, const seqk_encoder_layer_desc *d,
                                     const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                                     const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                                     const seqk_tensor *key_padding_mask) {
  static const char op[] = "transformer_encoder_layer";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(out_bf) == 0) return SEQK_STATUS_SUCCESS;
  seqk_enc_plan p;
  seqk__encoder_plan(&p, d, w, src_bf, out_bf, key_lengths, key_padding_mask, NULL, NULL);
  /* The MHA options with the residual its step brings (the layer has one MHA step). */
  seqk_mha_resolved r = p.mha;
  seqk_mha_job mha = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};
  size_t bytes = seqk__ws_sum(d->norm_first ? seqk__ws_tensor(&p.n) : 0, seqk__ws_tensor(&p.f));
  for (int i = 0; i < p.n_steps; ++i) {
    size_t b = 0;
    if (p.steps[i].kind == SEQK_ENC_MHA) r.residual = p.steps[i].residual;
    SEQK_TRY(step_bytes(ctx, op, &p, &p.steps[i], &r, &mha, &b));
    bytes = seqk__ws_sum(bytes, b);
  }
  const int fused = mha.fused;

  seqk_arena arena;
  void *n_mem = NULL, *f_mem = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  if (d->norm_first) SEQK_TRY(seqk__arena_take(ctx, op, &arena, seqk__ws_tensor(&p.n), &n_mem));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, seqk__ws_tensor(&p.f), &f_mem));
  seqk__encoder_plan(&p, d, w, src_bf, out_bf, key_lengths, key_padding_mask, n_mem, f_mem);
  for (int i = 0; i < p.n_steps; ++i) {
    const seqk_enc_step *s = &p.steps[i];
    switch (s->kind) {
      case SEQK_ENC_MHA:
        mha = (seqk_mha_job){&p.self_attn, &r, s->in, s->in, s->in, s->y, NULL, fused};
        SEQK_TRY(seqk__mha_job_run(ctx, op, &arena, &mha));
        break;
      case SEQK_ENC_NORM:
        SEQK_TRY(seqk__cuda_norm(ctx, 0, s->in, NULL, s->w, s->b, p.eps, s->y, NULL));
        break;
      case SEQK_ENC_LINEAR: {
        const seqk_linear_job j = {s->in, s->w, s->b, s->y, s->act, s->residual};
        SEQK_TRY(seqk__linear_job_run(ctx, op, &arena, &j));
        break;
      }
    }
  }
  return SEQK_STATUS_SUCCESS;
}

#endif /* SEQK_HAVE_CUDA */
