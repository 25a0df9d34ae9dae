/*
 * ops_layers.c - public entries for the layer ops: seqk_linear (and seqk_linear_ex, its fused
 * epilogue), seqk_mha_forward, seqk_embedding.
 * Each validates every argument (nothing is written on an error), then runs the CPU reference
 * or, for CUDA tensors, the CUDA path in cuda_linear.c, cuda_mha.c and cuda_embedding.c.
 */
#include "ref_layers.h"
#include "validate.h"

#include "cuda_ops.h"

#include <string.h>

/* ---- linear --------------------------------------------------------------------------------- */

static seqk_status linear_entry(seqk_context_t ctx, const char *op, const seqk_tensor *x,
                                const seqk_tensor *w, const seqk_tensor *b, seqk_activation act,
                                const seqk_tensor *residual, seqk_tensor *y) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_tensor *bias = seqk__present_or_null(b), *res = seqk__present_or_null(residual);
  /* Inputs first: y must be disjoint from x, w and b, and alias residual exactly or not at all. */
  const seqk_arg args[] = {{"x", x}, {"w", w}, {"b", bias}, {"residual", res}, {"y", y}};
  SEQK_TRY(seqk__check_activation(ctx, op, act));

  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "w", w));
  if (bias) SEQK_TRY(seqk__check_float_tensor(ctx, op, "b", b));
  if (res) SEQK_TRY(seqk__check_float_tensor(ctx, op, "residual", res));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));

  if (x->ndim < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.ndim=%d but must be in [1, %d] (x is [..., In])", op, (int)x->ndim,
                      SEQK_MAX_DIMS);
  const int32_t last = x->ndim - 1;
  SEQK_TRY(seqk__check_ndim(ctx, op, "w", w, 2));
  SEQK_TRY(seqk__check_extent(ctx, op, "w", w, 1, x->shape[last], "x.shape[-1]"));
  const int64_t out_features = w->shape[0];
  if (bias) {
    SEQK_TRY(seqk__check_ndim(ctx, op, "b", b, 1));
    SEQK_TRY(seqk__check_extent(ctx, op, "b", b, 0, out_features, "w.shape[0]"));
  }
  int64_t y_shape[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < last; ++d) y_shape[d] = x->shape[d];
  y_shape[last] = out_features;
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, x->ndim, y_shape));
  if (res) SEQK_TRY(seqk__check_shape(ctx, op, "residual", res, x->ndim, y_shape));

  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, SEQK_COUNT(args)));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));

  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "y", y, args, 3));
  if (res) SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "y", y, "residual", res));

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_linear(ctx, x, w, bias, act, res, y));
  return seqk__ref_linear(ctx, x, w, bias, act, res, y);
}

seqk_status seqk_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                        const seqk_tensor *b, seqk_tensor *y) {
  return linear_entry(ctx, "linear", x, w, b, SEQK_ACTIVATION_NONE, NULL, y);
}

seqk_status seqk_linear_ex(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                           const seqk_tensor *b, seqk_activation act, const seqk_tensor *residual,
                           seqk_tensor *y) {
  return linear_entry(ctx, "linear_ex", x, w, b, act, residual, y);
}

/* ---- multi-head attention ------------------------------------------------------------------- */

static seqk_status mha_entry(seqk_context_t ctx, const char *op, const seqk_mha_weights *w,
                             const seqk_mha_options *opt, const seqk_tensor *query_in,
                             const seqk_tensor *key_in, const seqk_tensor *value_in,
                             seqk_tensor *out_in, seqk_tensor *attn_weights) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!w) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: w (the weights) is NULL", op);
  if (!opt) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: options is NULL", op);
  if (!query_in) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: query is NULL", op);
  if (!key_in) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: key is NULL", op);
  if (!value_in) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: value is NULL", op);
  if (!out_in) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: out is NULL", op);
  /* Sequence-first tensors are validated and computed as their batch-first views (no copy);
     self-attention (one tensor three times) stays recognisable. */
  const seqk_tensor qv = opt->batch_first ? *query_in : seqk__swap_dims01(query_in);
  const seqk_tensor kv = opt->batch_first ? *key_in : seqk__swap_dims01(key_in);
  const seqk_tensor vv = opt->batch_first ? *value_in : seqk__swap_dims01(value_in);
  seqk_tensor ov = opt->batch_first ? *out_in : seqk__swap_dims01(out_in);
  const seqk_tensor *query = &qv, *key = &kv, *value = &vv;
  seqk_tensor *out = &ov;
  const int32_t num_heads = opt->num_heads;
  const int per_head = !opt->average_attn_weights;

  const seqk_tensor *w_in = &w->in_proj_weight, *w_out = &w->out_proj_weight;
  /* The optional ones: NULL when absent. */
  const seqk_tensor *b_in = seqk__present_or_null(&w->in_proj_bias);
  const seqk_tensor *b_out = seqk__present_or_null(&w->out_proj_bias);
  const seqk_tensor *attn = seqk__present_or_null(attn_weights);
  const seqk_tensor *lens = seqk__present_or_null(&opt->key_lengths);
  const seqk_tensor *mask = seqk__present_or_null(&opt->key_padding_mask);
  /* Inputs first; they may share memory with each other (self-attention passes one tensor
     three times), the outputs may share memory with nothing. */
  const seqk_arg args[] = {
      {"query", query},
      {"key", key},
      {"value", value},
      {"in_proj_weight", w_in},
      {"in_proj_bias", b_in},
      {"out_proj_weight", w_out},
      {"out_proj_bias", b_out},
      {"options.key_lengths", lens},
      {"options.key_padding_mask", mask},
      {"out", out},
      {"attn_weights", attn},
  };
  enum { N_FLOAT_INPUTS = 7, N_INPUTS = 9 };

  SEQK_TRY(seqk__check_float_tensor(ctx, op, "query", query));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "key", key));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "value", value));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "in_proj_weight", w_in));
  if (b_in) SEQK_TRY(seqk__check_float_tensor(ctx, op, "in_proj_bias", b_in));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "out_proj_weight", w_out));
  if (b_out) SEQK_TRY(seqk__check_float_tensor(ctx, op, "out_proj_bias", b_out));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "out", out));
  if (attn) SEQK_TRY(seqk__check_float_tensor(ctx, op, "attn_weights", attn_weights));
  if (lens) {
    SEQK_TRY(seqk__check_tensor(ctx, op, "options.key_lengths", lens));
    SEQK_TRY(seqk__check_dtype(ctx, op, "options.key_lengths", lens, SEQK_DTYPE_I32));
  }
  if (mask) {
    SEQK_TRY(seqk__check_tensor(ctx, op, "options.key_padding_mask", mask));
    SEQK_TRY(seqk__check_dtype(ctx, op, "options.key_padding_mask", mask, SEQK_DTYPE_I32));
  }

  /* query [B,Sq,E] fixes B, Sq and E; key fixes Sk; value must agree with key. */
  SEQK_TRY(seqk__check_ndim(ctx, op, "query", query, 3));
  SEQK_TRY(seqk__check_ndim(ctx, op, "key", key, 3));
  SEQK_TRY(seqk__check_ndim(ctx, op, "value", value, 3));
  const int64_t B = query->shape[0], Sq = query->shape[1], E = query->shape[2];
  const int64_t Sk = key->shape[1];
  SEQK_TRY(seqk__check_extent(ctx, op, "key", key, 0, B, "query.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "key", key, 2, E, "query.shape[2]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "value", value, 0, B, "query.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "value", value, 1, Sk, "key.shape[1]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "value", value, 2, E, "query.shape[2]"));

  if (num_heads <= 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: num_heads=%d but must be >= 1", op,
                      (int)num_heads);
  /* torch.nn.MultiheadAttention rejects embed_dim <= 0 too; here a zero head dim would also
     make the scale 1/sqrt(0). */
  if (E == 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: query.shape[2]=0 but the embedding dim E must be >= 1", op);
  if (E % num_heads != 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: num_heads=%d does not divide the embedding dim E=%lld (query.shape[2])",
                      op, (int)num_heads, (long long)E);

  /* in_proj_weight.shape[0] must be 3E; compared by division so a huge E cannot overflow. */
  SEQK_TRY(seqk__check_ndim(ctx, op, "in_proj_weight", w_in, 2));
  if (w_in->shape[0] % 3 != 0 || w_in->shape[0] / 3 != E)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: in_proj_weight.shape[0]=%lld but must be 3*E with E=%lld "
                      "(query.shape[2])",
                      op, (long long)w_in->shape[0], (long long)E);
  SEQK_TRY(seqk__check_extent(ctx, op, "in_proj_weight", w_in, 1, E, "query.shape[2]"));
  if (b_in) {
    SEQK_TRY(seqk__check_ndim(ctx, op, "in_proj_bias", b_in, 1));
    SEQK_TRY(seqk__check_extent(ctx, op, "in_proj_bias", b_in, 0, w_in->shape[0],
                                "in_proj_weight.shape[0]"));
  }
  const int64_t square[2] = {E, E};
  SEQK_TRY(seqk__check_shape(ctx, op, "out_proj_weight", w_out, 2, square));
  if (b_out) SEQK_TRY(seqk__check_shape(ctx, op, "out_proj_bias", b_out, 1, square));
  const int64_t out_shape[3] = {B, Sq, E};
  SEQK_TRY(seqk__check_shape(ctx, op, "out", out, 3, out_shape));
  if (attn) {
    const int64_t mean_shape[3] = {B, Sq, Sk}, head_shape[4] = {B, num_heads, Sq, Sk};
    SEQK_TRY(seqk__check_shape(ctx, op, "attn_weights", attn_weights, per_head ? 4 : 3,
                               per_head ? head_shape : mean_shape));
  }
  if (lens) {
    const int64_t lens_shape[1] = {B};
    SEQK_TRY(seqk__check_shape(ctx, op, "options.key_lengths", lens, 1, lens_shape));
  }
  if (mask) {
    const int64_t mask_shape[2] = {B, Sk};
    SEQK_TRY(seqk__check_shape(ctx, op, "options.key_padding_mask", mask, 2, mask_shape));
  }

  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, N_FLOAT_INPUTS));
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args + N_INPUTS, 2));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "query", query, "out", out));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));

  SEQK_TRY(seqk__check_output(ctx, op, "out", out));
  if (attn) SEQK_TRY(seqk__check_output(ctx, op, "attn_weights", attn_weights));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "out", out, args, N_INPUTS));
  if (attn) /* also disjoint from out, the entry after the inputs */
    SEQK_TRY(
        seqk__check_disjoint_from_all(ctx, op, "attn_weights", attn_weights, args, N_INPUTS + 1));

  const seqk_mha_resolved r = {num_heads, opt->causal, per_head, lens, mask, NULL};
  if (query->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_mha_forward(ctx, w, &r, query, key, value, out, attn));
  return seqk__ref_mha_forward(ctx, w, &r, query, key, value, out, attn);
}

seqk_status seqk_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w, int32_t num_heads,
                             int32_t causal, const seqk_tensor *query, const seqk_tensor *key,
                             const seqk_tensor *value, seqk_tensor *out,
                             seqk_tensor *attn_weights) {
  seqk_mha_options opt;
  memset(&opt, 0, sizeof opt);
  opt.num_heads = num_heads;
  opt.causal = causal;
  opt.batch_first = 1;
  opt.average_attn_weights = 1;
  return mha_entry(ctx, "mha_forward", w, &opt, query, key, value, out, attn_weights);
}

seqk_status seqk_mha_forward_ex(seqk_context_t ctx, const seqk_mha_weights *w,
                                const seqk_mha_options *options, const seqk_tensor *query,
                                const seqk_tensor *key, const seqk_tensor *value, seqk_tensor *out,
                                seqk_tensor *attn_weights) {
  return mha_entry(ctx, "mha_forward_ex", w, options, query, key, value, out, attn_weights);
}

/* ---- embedding ------------------------------------------------------------------------------ */

seqk_status seqk_embedding(seqk_context_t ctx, const seqk_tensor *indices, const seqk_tensor *table,
                           seqk_tensor *out) {
  static const char op[] = "embedding";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;

  SEQK_TRY(seqk__check_tensor(ctx, op, "indices", indices));
  SEQK_TRY(seqk__check_dtype(ctx, op, "indices", indices, SEQK_DTYPE_I32));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "table", table));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "out", out));

  /* out gains one dim over indices, so indices may have at most SEQK_MAX_DIMS - 1. */
  if (indices->ndim > SEQK_MAX_DIMS - 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: indices.ndim=%d but must be in [0, %d] (out adds one dim)", op,
                      (int)indices->ndim, SEQK_MAX_DIMS - 1);
  SEQK_TRY(seqk__check_ndim(ctx, op, "table", table, 2));
  int64_t out_shape[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < indices->ndim; ++d) out_shape[d] = indices->shape[d];
  out_shape[indices->ndim] = table->shape[1];
  SEQK_TRY(seqk__check_shape(ctx, op, "out", out, indices->ndim + 1, out_shape));

  /* Inputs first: out must be disjoint from both. indices has its own dtype. */
  const seqk_arg args[] = {{"table", table}, {"indices", indices}, {"out", out}};
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "table", table, "out", out));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));

  SEQK_TRY(seqk__check_output(ctx, op, "out", out));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "out", out, args, 2));

  if (table->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_embedding(ctx, indices, table, out));
  /* The reference scans every index (range errors name the position) before writing. */
  return seqk__ref_embedding(ctx, indices, table, out);
}
