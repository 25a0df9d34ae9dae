/*
 * encoder_layer.c - the steps of nn.TransformerEncoderLayer (encoder_layer.h). Post-norm:
 *   out = src + sa(src); out = norm1(out); f = act(linear1(out)); out = linear2(f) + out;
 *   out = norm2(out)
 * pre-norm:
 *   n = norm1(src); out = src + sa(n); n = norm2(out); f = act(linear1(n)); out = linear2(f) + out
 * Each residual add belongs to the step before it (the out-projection's or linear2's addend), so
 * no step is a bare add; out itself carries the residual stream, and the only buffers are n (pre-
 * norm) and f.
 */
#include "encoder_layer.h"

#include "geometry.h"

#include <string.h>

static const seqk_tensor *present(const seqk_tensor *t) { return seqk__present(t) ? t : NULL; }

static void step(seqk_enc_plan *p, seqk_enc_step_kind kind, const seqk_tensor *in,
                 const seqk_tensor *residual, const seqk_tensor *y, const seqk_tensor *w,
                 const seqk_tensor *b, seqk_activation act) {
  seqk_enc_step *s = &p->steps[p->n_steps++];
  s->kind = kind;
  s->in = in;
  s->residual = residual;
  s->y = y;
  s->w = w;
  s->b = b;
  s->act = act;
}

void seqk__encoder_plan(seqk_enc_plan *p, const seqk_encoder_layer_desc *d,
                        const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                        const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                        const seqk_tensor *key_padding_mask, void *n_mem, void *f_mem) {
  memset(p, 0, sizeof *p);
  p->src = *src_bf;
  p->out = *out_bf;
  const int64_t B = src_bf->shape[0], S = src_bf->shape[1], E = src_bf->shape[2];
  const int64_t F = w->linear1_weight.shape[0];
  const int64_t n_shape[3] = {B, S, E}, f_shape[3] = {B, S, F};
  p->n = seqk_tensor_view(n_mem, src_bf->dtype, src_bf->device, 3, n_shape);
  p->f = seqk_tensor_view(f_mem, src_bf->dtype, src_bf->device, 3, f_shape);
  p->eps = d->layer_norm_eps;
  p->self_attn = w->self_attn;
  p->mha.num_heads = d->nhead;
  p->mha.causal = d->causal;
  p->mha.per_head = 0;
  p->mha.key_lengths = key_lengths;
  p->mha.key_padding_mask = key_padding_mask;

  const seqk_tensor *n1w = present(&w->norm1_weight), *n1b = present(&w->norm1_bias);
  const seqk_tensor *n2w = present(&w->norm2_weight), *n2b = present(&w->norm2_bias);
  const seqk_tensor *l1b = present(&w->linear1_bias), *l2b = present(&w->linear2_bias);
  const seqk_activation none = SEQK_ACTIVATION_NONE;
  if (d->norm_first) {
    step(p, SEQK_ENC_NORM, &p->src, NULL, &p->n, n1w, n1b, none);
    step(p, SEQK_ENC_MHA, &p->n, &p->src, &p->out, NULL, NULL, none);
    step(p, SEQK_ENC_NORM, &p->out, NULL, &p->n, n2w, n2b, none);
    step(p, SEQK_ENC_LINEAR, &p->n, NULL, &p->f, &w->linear1_weight, l1b, d->activation);
    step(p, SEQK_ENC_LINEAR, &p->f, &p->out, &p->out, &w->linear2_weight, l2b, none);
  } else {
    step(p, SEQK_ENC_MHA, &p->src, &p->src, &p->out, NULL, NULL, none);
    step(p, SEQK_ENC_NORM, &p->out, NULL, &p->out, n1w, n1b, none);
    step(p, SEQK_ENC_LINEAR, &p->out, NULL, &p->f, &w->linear1_weight, l1b, d->activation);
    step(p, SEQK_ENC_LINEAR, &p->f, &p->out, &p->out, &w->linear2_weight, l2b, none);
    step(p, SEQK_ENC_NORM, &p->out, NULL, &p->out, n2w, n2b, none);
  }
}
