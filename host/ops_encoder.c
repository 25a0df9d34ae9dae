/*
 * ops_encoder.c - the public entry seqk_transformer_encoder_layer_forward: validate every
 * descriptor (nothing is written on an error), take batch-first views of a sequence-first src
 * and out, then run the CPU reference (ref_encoder_layer.c) or the CUDA path
 * (cuda_encoder_layer.c), both executing the steps of encoder_layer.c.
 */
#include "ref_layers.h"
#include "validate.h"

#include "cuda_ops.h"

#include <math.h>

/* A float matrix [rows, cols] (rows < 0: any, returned in *rows_out). */
static seqk_status check_matrix(seqk_context_t ctx, const char *op, const char *name,
                                const seqk_tensor *t, int64_t rows, int64_t cols,
                                const char *rows_what, const char *cols_what) {
  SEQK_TRY(seqk__check_float_tensor(ctx, op, name, t));
  SEQK_TRY(seqk__check_ndim(ctx, op, name, t, 2));
  if (rows >= 0) SEQK_TRY(seqk__check_extent(ctx, op, name, t, 0, rows, rows_what));
  return seqk__check_extent(ctx, op, name, t, 1, cols, cols_what);
}

/* An optional float vector [n] (absent: NULL pointer or data). */
static seqk_status check_vector(seqk_context_t ctx, const char *op, const char *name,
                                const seqk_tensor *t, int64_t n, const char *what) {
  if (!seqk__present(t)) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, name, t));
  SEQK_TRY(seqk__check_ndim(ctx, op, name, t, 1));
  return seqk__check_extent(ctx, op, name, t, 0, n, what);
}

seqk_status seqk_transformer_encoder_layer_forward(seqk_context_t ctx,
                                                   const seqk_encoder_layer_desc *desc,
                                                   const seqk_encoder_layer_weights *w,
                                                   const seqk_tensor *src, seqk_tensor *out) {
  static const char op[] = "transformer_encoder_layer";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!desc) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc is NULL", op);
  if (!w) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: w (the weights) is NULL", op);
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "src", src));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "out", out));
  SEQK_TRY(seqk__check_ndim(ctx, op, "src", src, 3));
  SEQK_TRY(seqk__check_shape(ctx, op, "out", out, 3, src->shape));
  const seqk_tensor src_bf = desc->batch_first ? *src : seqk__swap_dims01(src);
  const seqk_tensor out_bf = desc->batch_first ? *out : seqk__swap_dims01(out);
  const int64_t B = src_bf.shape[0], S = src_bf.shape[1], E = src_bf.shape[2];

  if (desc->nhead <= 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.nhead=%d but must be >= 1", op,
                      (int)desc->nhead);
  if (E == 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: src.shape[2]=0 but d_model must be >= 1",
                      op);
  if (E % desc->nhead != 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: desc.nhead=%d does not divide d_model=%lld (src.shape[2])", op,
                      (int)desc->nhead, (long long)E);
  SEQK_TRY(seqk__check_activation(ctx, op, desc->activation));
  if (!(desc->layer_norm_eps > 0.0f) || isinf(desc->layer_norm_eps))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: desc.layer_norm_eps=%g but must be finite and > 0", op,
                      (double)desc->layer_norm_eps);

  const seqk_mha_weights *sa = &w->self_attn;
  if (sa->in_proj_weight.ndim == 2 && sa->in_proj_weight.shape[0] / 3 != E)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: self_attn.in_proj_weight.shape[0]=%lld but must be 3*d_model=%lld", op,
                      (long long)sa->in_proj_weight.shape[0], (long long)(3 * E));
  SEQK_TRY(check_matrix(ctx, op, "self_attn.in_proj_weight", &sa->in_proj_weight, 3 * E, E,
                        "3*d_model", "src.shape[2]"));
  SEQK_TRY(check_vector(ctx, op, "self_attn.in_proj_bias", &sa->in_proj_bias, 3 * E, "3*d_model"));
  SEQK_TRY(check_matrix(ctx, op, "self_attn.out_proj.weight", &sa->out_proj_weight, E, E, "d_model",
                        "d_model"));
  SEQK_TRY(check_vector(ctx, op, "self_attn.out_proj.bias", &sa->out_proj_bias, E, "d_model"));
  SEQK_TRY(check_matrix(ctx, op, "linear1.weight", &w->linear1_weight, -1, E, NULL, "d_model"));
  const int64_t F = w->linear1_weight.shape[0];
  SEQK_TRY(check_vector(ctx, op, "linear1.bias", &w->linear1_bias, F, "linear1.weight.shape[0]"));
  SEQK_TRY(check_matrix(ctx, op, "linear2.weight", &w->linear2_weight, E, F, "d_model",
                        "linear1.weight.shape[0]"));
  SEQK_TRY(check_vector(ctx, op, "linear2.bias", &w->linear2_bias, E, "d_model"));
  SEQK_TRY(check_vector(ctx, op, "norm1.weight", &w->norm1_weight, E, "d_model"));
  SEQK_TRY(check_vector(ctx, op, "norm1.bias", &w->norm1_bias, E, "d_model"));
  SEQK_TRY(check_vector(ctx, op, "norm2.weight", &w->norm2_weight, E, "d_model"));
  SEQK_TRY(check_vector(ctx, op, "norm2.bias", &w->norm2_bias, E, "d_model"));

  const seqk_tensor *lens = seqk__present_or_null(&desc->key_lengths);
  const seqk_tensor *mask = seqk__present_or_null(&desc->key_padding_mask);
  if (lens) {
    const int64_t shape[1] = {B};
    SEQK_TRY(seqk__check_tensor(ctx, op, "desc.key_lengths", lens));
    SEQK_TRY(seqk__check_dtype(ctx, op, "desc.key_lengths", lens, SEQK_DTYPE_I32));
    SEQK_TRY(seqk__check_shape(ctx, op, "desc.key_lengths", lens, 1, shape));
  }
  if (mask) {
    const int64_t shape[2] = {B, S};
    SEQK_TRY(seqk__check_tensor(ctx, op, "desc.key_padding_mask", mask));
    SEQK_TRY(seqk__check_dtype(ctx, op, "desc.key_padding_mask", mask, SEQK_DTYPE_I32));
    SEQK_TRY(seqk__check_shape(ctx, op, "desc.key_padding_mask", mask, 2, shape));
  }

  const seqk_arg args[] = {
      {"src", src},
      {"self_attn.in_proj_weight", &sa->in_proj_weight},
      {"self_attn.in_proj_bias", seqk__present_or_null(&sa->in_proj_bias)},
      {"self_attn.out_proj.weight", &sa->out_proj_weight},
      {"self_attn.out_proj.bias", seqk__present_or_null(&sa->out_proj_bias)},
      {"linear1.weight", &w->linear1_weight},
      {"linear1.bias", seqk__present_or_null(&w->linear1_bias)},
      {"linear2.weight", &w->linear2_weight},
      {"linear2.bias", seqk__present_or_null(&w->linear2_bias)},
      {"norm1.weight", seqk__present_or_null(&w->norm1_weight)},
      {"norm1.bias", seqk__present_or_null(&w->norm1_bias)},
      {"norm2.weight", seqk__present_or_null(&w->norm2_weight)},
      {"norm2.bias", seqk__present_or_null(&w->norm2_bias)},
      {"desc.key_lengths", lens},
      {"desc.key_padding_mask", mask},
  };
  enum { N_FLOAT = 13 };
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, N_FLOAT));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "src", src, "out", out));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));
  SEQK_TRY(seqk__check_same_device(ctx, op, "src", src, "out", out));
  SEQK_TRY(seqk__check_output(ctx, op, "out", out));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "out", out, args, SEQK_COUNT(args)));

  if (src->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_encoder_layer(ctx, desc, w, &src_bf, &out_bf, lens, mask));
  return seqk__ref_encoder_layer(ctx, desc, w, &src_bf, &out_bf, lens, mask);
}
