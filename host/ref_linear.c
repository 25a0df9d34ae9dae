/*
 * ref_linear.c - CPU reference for seqk_linear and seqk_linear_ex:
 * y[..., o] = act(sum_i x[..., i] * w[o, i] + b[o]) + residual[..., o].
 * y does not overlap x, w or b (checked by the entry) and aliases residual exactly if at all, so
 * each result is stored as soon as it is summed and no scratch is needed.
 */
#include "ref_layers.h"

seqk_status seqk__ref_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                             const seqk_tensor *b, seqk_activation act, const seqk_tensor *residual,
                             const seqk_tensor *y) {
  (void)ctx;
  const int32_t lead = x->ndim - 1; /* the dims x and y share */
  const int64_t in = x->shape[lead];
  const int64_t out = w->shape[0];
  const int has_bias = b != NULL;

  int64_t rows = 1;
  for (int32_t d = 0; d < lead; ++d) rows *= x->shape[d];
  if (out == 0) return SEQK_STATUS_SUCCESS;

  for (int64_t r = 0; r < rows; ++r) {
    /* Row r of the leading dims, unravelled row-major, as element offsets into x and y. */
    int64_t x_row = 0, y_row = 0, r_row = 0, rem = r;
    for (int32_t d = lead - 1; d >= 0; --d) {
      const int64_t i = rem % x->shape[d];
      rem /= x->shape[d];
      x_row += i * x->stride[d];
      y_row += i * y->stride[d];
      if (residual) r_row += i * residual->stride[d];
    }
    for (int64_t o = 0; o < out; ++o) {
      double acc = has_bias ? seqk__load(b, o * b->stride[0]) : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += seqk__load(x, x_row + i * x->stride[lead]) *
               seqk__load(w, o * w->stride[0] + i * w->stride[1]);
      acc = seqk__activation_value(act, acc);
      /* y may be residual itself: this element of it is read just before it is written. */
      if (residual) acc += seqk__load(residual, r_row + o * residual->stride[lead]);
      seqk__store(y, y_row + o * y->stride[lead], acc);
    }
  }
  return SEQK_STATUS_SUCCESS;
}
