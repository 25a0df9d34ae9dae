/*
 * ref_layers.h - CPU references for the layer ops (linear, multi-head attention, embedding) and
 * the transformer blocks (norms, activations, rotary embeddings).
 * They take arguments already validated by the public entries in ops_layers.c, accumulate in
 * double, allocate every scratch buffer before the first output element is written, and read
 * and write through the tensors' strides. Not installed.
 */
#ifndef SEQK_REF_LAYERS_H
#define SEQK_REF_LAYERS_H

#include "geometry.h"
#include "internal.h"
#include "numeric.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = act(x w^T + b) + residual over the last dim; b and residual NULL when absent. y may alias
   residual exactly. */
seqk_status seqk__ref_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                             const seqk_tensor *b, seqk_activation act, const seqk_tensor *residual,
                             const seqk_tensor *y);

/* nn.MultiheadAttention(batch_first=True) forward, written out as its own loops (projections,
   per-head masked softmax attention, output projection) so that it stays an independent check
   of the unfused path built from the public ops. attn_weights may be absent. */
seqk_status seqk__ref_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                  const seqk_mha_resolved *r, const seqk_tensor *query,
                                  const seqk_tensor *key, const seqk_tensor *value,
                                  const seqk_tensor *out, const seqk_tensor *attn_weights);

/* out[n..., :] = table[indices[n...], :]. Scans every index first: one outside [0, V) gives
   INVALID_VALUE naming its position, with nothing written. */
seqk_status seqk__ref_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                const seqk_tensor *table, seqk_tensor *out);

/* seqk_layer_norm (rms = 0) / seqk_rms_norm (rms = 1); residual, weight, bias, residual_out NULL
   when absent. */
seqk_status seqk__ref_norm(seqk_context_t ctx, int rms, const seqk_tensor *x,
                           const seqk_tensor *residual, const seqk_tensor *weight,
                           const seqk_tensor *bias, float eps, const seqk_tensor *y,
                           const seqk_tensor *residual_out);

/* seqk_transformer_encoder_layer_forward on batch-first views; absent tensors NULL. */
seqk_status seqk__ref_encoder_layer(seqk_context_t ctx, const seqk_encoder_layer_desc *d,
                                    const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                                    const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                                    const seqk_tensor *key_padding_mask);

/* One activation of seqk.h's list in double. */
double seqk__activation_value(seqk_activation act, double v);
/* y = act(x), times up when up is not NULL (seqk_activate / seqk_gated_activate). */
seqk_status seqk__ref_activate(seqk_context_t ctx, seqk_activation act, const seqk_tensor *x,
                               const seqk_tensor *up, const seqk_tensor *y);

/* One head vector's rotated pairs: dst's elements (dst_base + j*dst_stride) = src's (src_base +
   j*src_stride) rotated at position pos (dst may be src); elements past rotary_dim untouched. */
void seqk__ref_rotate_row(const seqk_tensor *dst, int64_t dst_base, int64_t dst_stride,
                          const seqk_tensor *src, int64_t src_base, int64_t src_stride, int32_t pos,
                          int64_t rotary_dim, int neox, double log2_theta);
/* seqk_rotary with rotary_dim resolved and log2(theta) formed; positions and k NULL when absent. */
seqk_status seqk__ref_rotary(seqk_context_t ctx, int neox, int64_t rotary_dim, double log2_theta,
                             const seqk_tensor *positions, const seqk_tensor *q,
                             const seqk_tensor *k);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_REF_LAYERS_H */
