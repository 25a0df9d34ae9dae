/*
 * ops_blocks.c - public entries for the transformer blocks: seqk_layer_norm, seqk_rms_norm,
 * seqk_activate, seqk_gated_activate, seqk_rotary. Each validates every argument (nothing is
 * written on an error), then runs the CPU reference (ref_norm.c, ref_activation.c, ref_rotary.c)
 * or the CUDA path (cuda_norm.c, cuda_activation.c, cuda_rotary.c).
 */
#include "ref_layers.h"
#include "validate.h"

#include "cuda_ops.h"

#include <math.h>

/* ---- norms ----------------------------------------------------------------------------------- */

static seqk_status norm_entry(seqk_context_t ctx, int rms, const seqk_tensor *x,
                              const seqk_tensor *residual, const seqk_tensor *weight,
                              const seqk_tensor *bias, float eps, seqk_tensor *y,
                              seqk_tensor *residual_out) {
  const char *op = rms ? "rms_norm" : "layer_norm";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_tensor *res = seqk__present_or_null(residual);
  const seqk_tensor *w = seqk__present_or_null(weight), *b = seqk__present_or_null(bias);
  const seqk_tensor *ro = seqk__present_or_null(residual_out);
  const seqk_arg args[] = {{"x", x},    {"residual", res}, {"weight", w},
                           {"bias", b}, {"y", y},          {"residual_out", ro}};

  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  if (res) SEQK_TRY(seqk__check_float_tensor(ctx, op, "residual", res));
  if (w) SEQK_TRY(seqk__check_float_tensor(ctx, op, "weight", w));
  if (b) SEQK_TRY(seqk__check_float_tensor(ctx, op, "bias", b));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));
  if (ro) SEQK_TRY(seqk__check_float_tensor(ctx, op, "residual_out", ro));

  if (x->ndim < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.ndim=%d but must be in [1, %d] (x is [..., C])", op, (int)x->ndim,
                      SEQK_MAX_DIMS);
  const int64_t C = x->shape[x->ndim - 1];
  if (res) SEQK_TRY(seqk__check_shape(ctx, op, "residual", res, x->ndim, x->shape));
  if (w) {
    SEQK_TRY(seqk__check_ndim(ctx, op, "weight", w, 1));
    SEQK_TRY(seqk__check_extent(ctx, op, "weight", w, 0, C, "x.shape[-1]"));
  }
  if (b) {
    SEQK_TRY(seqk__check_ndim(ctx, op, "bias", b, 1));
    SEQK_TRY(seqk__check_extent(ctx, op, "bias", b, 0, C, "x.shape[-1]"));
  }
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, x->ndim, x->shape));
  if (ro) SEQK_TRY(seqk__check_shape(ctx, op, "residual_out", ro, x->ndim, x->shape));
  if (!(eps > 0.0f) || isinf(eps))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: eps=%g but must be finite and > 0", op,
                      (double)eps);

  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, SEQK_COUNT(args)));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));

  /* y: in place over x, disjoint from the rest; residual_out: in place over residual or x. */
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "y", y, "x", x));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "y", y, args + 1, 3));
  if (ro) {
    SEQK_TRY(seqk__check_output(ctx, op, "residual_out", ro));
    SEQK_TRY(seqk__check_no_overlap(ctx, op, "residual_out", ro, "y", y));
    SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "residual_out", ro, "x", x));
    if (res) SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "residual_out", ro, "residual", res));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "residual_out", ro, args + 2, 2));
  }

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_norm(ctx, rms, x, res, w, b, eps, y, ro));
  return seqk__ref_norm(ctx, rms, x, res, w, b, eps, y, ro);
}

seqk_status seqk_layer_norm(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *residual,
                            const seqk_tensor *weight, const seqk_tensor *bias, float eps,
                            seqk_tensor *y, seqk_tensor *residual_out) {
  return norm_entry(ctx, 0, x, residual, weight, bias, eps, y, residual_out);
}

seqk_status seqk_rms_norm(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *residual,
                          const seqk_tensor *weight, float eps, seqk_tensor *y,
                          seqk_tensor *residual_out) {
  return norm_entry(ctx, 1, x, residual, weight, NULL, eps, y, residual_out);
}

/* ---- activations ------------------------------------------------------------------------------ */

/* up NULL: seqk_activate (x is the input); else seqk_gated_activate (x is gate). */
static seqk_status activate_entry(seqk_context_t ctx, const char *op, seqk_activation act,
                                  const char *x_name, const seqk_tensor *x, const seqk_tensor *up,
                                  seqk_tensor *y) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(seqk__check_activation(ctx, op, act));
  const seqk_arg args[] = {{x_name, x}, {"up", up}, {"y", y}};
  SEQK_TRY(seqk__check_float_tensor(ctx, op, x_name, x));
  if (up) SEQK_TRY(seqk__check_float_tensor(ctx, op, "up", up));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));
  if (up) SEQK_TRY(seqk__check_shape(ctx, op, "up", up, x->ndim, x->shape));
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, x->ndim, x->shape));
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, SEQK_COUNT(args)));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, args, SEQK_COUNT(args)));
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "y", y, x_name, x));
  if (up) SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "y", y, "up", up));
  if (y->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_pointwise(ctx, op, act, x, up, NULL, y));
  return seqk__ref_activate(ctx, act, x, up, y);
}

seqk_status seqk_activate(seqk_context_t ctx, seqk_activation act, const seqk_tensor *x,
                          seqk_tensor *y) {
  return activate_entry(ctx, "activate", act, "x", x, NULL, y);
}

seqk_status seqk_gated_activate(seqk_context_t ctx, seqk_activation act, const seqk_tensor *gate,
                                const seqk_tensor *up, seqk_tensor *y) {
  static const char op[] = "gated_activate";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!up) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: up is NULL", op);
  return activate_entry(ctx, op, act, "gate", gate, up, y);
}

/* ---- rotary ------------------------------------------------------------------------------------ */

seqk_status seqk_rotary(seqk_context_t ctx, const seqk_rotary_params *params,
                        const seqk_tensor *positions, seqk_tensor *q, seqk_tensor *k) {
  static const char op[] = "rotary";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!params) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: params is NULL", op);
  const seqk_tensor *pos = seqk__present_or_null(positions), *kk = seqk__present_or_null(k);
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "q", q));
  if (kk) SEQK_TRY(seqk__check_float_tensor(ctx, op, "k", kk));
  if (pos) {
    SEQK_TRY(seqk__check_tensor(ctx, op, "positions", pos));
    SEQK_TRY(seqk__check_dtype(ctx, op, "positions", pos, SEQK_DTYPE_I32));
  }
  SEQK_TRY(seqk__check_ndim(ctx, op, "q", q, 4));
  const int64_t B = q->shape[0], S = q->shape[1], D = q->shape[3];
  if (kk) {
    SEQK_TRY(seqk__check_ndim(ctx, op, "k", kk, 4));
    SEQK_TRY(seqk__check_extent(ctx, op, "k", kk, 0, B, "q.shape[0]"));
    SEQK_TRY(seqk__check_extent(ctx, op, "k", kk, 1, S, "q.shape[1]"));
    SEQK_TRY(seqk__check_extent(ctx, op, "k", kk, 3, D, "q.shape[3]"));
  }
  if (pos) {
    const int64_t pos_shape[2] = {B, S};
    SEQK_TRY(seqk__check_shape(ctx, op, "positions", pos, 2, pos_shape));
  }
  int64_t rotary_dim = 0;
  int neox = 0;
  double log2_theta = 0.0;
  SEQK_TRY(
      seqk__check_rotary_params(ctx, op, "params", params, D, &rotary_dim, &neox, &log2_theta));

  const seqk_arg floats[] = {{"q", q}, {"k", kk}};
  const seqk_arg all[] = {{"q", q}, {"k", kk}, {"positions", pos}};
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, floats, SEQK_COUNT(floats)));
  SEQK_TRY(seqk__check_same_device_all(ctx, op, all, SEQK_COUNT(all)));
  SEQK_TRY(seqk__check_output(ctx, op, "q", q));
  if (kk) {
    SEQK_TRY(seqk__check_output(ctx, op, "k", kk));
    SEQK_TRY(seqk__check_no_overlap(ctx, op, "k", kk, "q", q));
    if (pos) SEQK_TRY(seqk__check_no_overlap(ctx, op, "k", kk, "positions", pos));
  }
  if (pos) SEQK_TRY(seqk__check_no_overlap(ctx, op, "q", q, "positions", pos));

  if (q->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_rotary(ctx, neox, rotary_dim, log2_theta, pos, q, kk));
  return seqk__ref_rotary(ctx, neox, rotary_dim, log2_theta, pos, q, kk);
}
