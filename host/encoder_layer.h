/*
 * encoder_layer.h - seqk_transformer_encoder_layer_forward as a list of steps over tensor
 * descriptors (encoder_layer.c), the one statement of the layer's order of operations that the
 * CPU reference (ref_encoder_layer.c) and the CUDA path (cuda_encoder_layer.c) both execute.
 * Not installed.
 */
#ifndef SEQK_ENCODER_LAYER_H
#define SEQK_ENCODER_LAYER_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum seqk_enc_step_kind {
  SEQK_ENC_MHA,   /* y = x + self_attention(q) with q = k = v = in (x: the residual) */
  SEQK_ENC_NORM,  /* y = layer_norm(in; w, b, eps), y may be in */
  SEQK_ENC_LINEAR /* y = act(in w^T + b) (+ x as residual, y may be x) */
} seqk_enc_step_kind;

typedef struct seqk_enc_step {
  seqk_enc_step_kind kind;
  const seqk_tensor *in, *residual, *y;
  const seqk_tensor *w, *b; /* linear / norm parameters; b (or, for a norm, w) may be NULL */
  seqk_activation act;
} seqk_enc_step;

#define SEQK_ENC_MAX_STEPS 5

/* The layer over batch-first views: src [B,S,E], out [B,S,E], and the buffers n [B,S,E] (used
   when norm_first) and f [B,S,F] in src's dtype and device (data may be NULL while planning). */
typedef struct seqk_enc_plan {
  seqk_tensor src, out, n, f;
  seqk_mha_resolved mha; /* the self-attention's options; each MHA step brings its residual */
  seqk_mha_weights self_attn;
  float eps;
  int n_steps;
  seqk_enc_step steps[SEQK_ENC_MAX_STEPS];
} seqk_enc_plan;

/* Fills *p for a validated call; src_bf and out_bf are the batch-first views, key_lengths and
   key_padding_mask NULL when absent. p must not move afterwards (steps point into it). */
void seqk__encoder_plan(seqk_enc_plan *p, const seqk_encoder_layer_desc *d,
                        const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                        const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                        const seqk_tensor *key_padding_mask, void *n_mem, void *f_mem);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_ENCODER_LAYER_H */
