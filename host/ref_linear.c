/*
 * ref_linear.c - CPU reference for seqk_linear: y[..., o] = sum_i x[..., i] * w[o, i] + b[o].
 * y does not overlap any input (checked by the entry), so each result is stored as soon as it
 * is summed and no scratch is needed.
 */
#include "ref_layers.h"

seqk_status seqk__ref_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                             const seqk_tensor *b, seqk_tensor *y) {
  (void)ctx;
  const int32_t lead = x->ndim - 1; /* the dims x and y share */
  const int64_t in = x->shape[lead];
  const int64_t out = w->shape[0];
  const int has_bias = seqk__present(b);

  int64_t rows = 1;
  for (int32_t d = 0; d < lead; ++d) rows *= x->shape[d];
  if (out == 0) return SEQK_STATUS_SUCCESS;

  for (int64_t r = 0; r < rows; ++r) {
    /* Row r of the leading dims, unravelled row-major, as element offsets into x and y. */
    int64_t x_row = 0, y_row = 0, rem = r;
    for (int32_t d = lead - 1; d >= 0; --d) {
      const int64_t i = rem % x->shape[d];
      rem /= x->shape[d];
      x_row += i * x->stride[d];
      y_row += i * y->stride[d];
    }
    for (int64_t o = 0; o < out; ++o) {
      double acc = has_bias ? seqk__load(b, o * b->stride[0]) : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += seqk__load(x, x_row + i * x->stride[lead]) *
               seqk__load(w, o * w->stride[0] + i * w->stride[1]);
      seqk__store(y, y_row + o * y->stride[lead], acc);
    }
  }
  return SEQK_STATUS_SUCCESS;
}
