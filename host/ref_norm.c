/*
 * ref_norm.c - CPU reference for seqk_layer_norm and seqk_rms_norm over the last dim.
 * Each row's h = x (+ residual, rounded to the dtype as storing it would round it) is read whole
 * into a double buffer before anything of the row is written: that is what makes the exact
 * aliases the entry allows (y == x, residual_out == residual or x) safe. Statistics in double,
 * two passes (the mean, then the squared deviations).
 */
#include "ref_layers.h"

#include <math.h>
#include <stdlib.h>

seqk_status seqk__ref_norm(seqk_context_t ctx, int rms, const seqk_tensor *x,
                           const seqk_tensor *residual, const seqk_tensor *weight,
                           const seqk_tensor *bias, float eps, const seqk_tensor *y,
                           const seqk_tensor *residual_out) {
  if (seqk__numel(x) == 0) return SEQK_STATUS_SUCCESS;
  const int32_t last = x->ndim - 1;
  const int64_t n = x->shape[last], rows = seqk__numel(x) / n;
  double *h = (double *)malloc((size_t)n * sizeof(double));
  if (!h)
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: cannot allocate %lld doubles of scratch",
                      rms ? "rms_norm" : "layer_norm", (long long)n);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t xo = seqk__offset_of_linear(x, r * n); /* row r, column 0 */
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      h[j] = seqk__load(x, xo + j * x->stride[last]);
      if (residual) {
        const int64_t ro = seqk__offset_of_linear(residual, r * n + j);
        h[j] = seqk__round_to_dtype(h[j] + seqk__load(residual, ro), x->dtype);
      }
      sum += rms ? h[j] * h[j] : h[j];
    }
    double mean = 0.0, var = sum / (double)n;
    if (!rms) {
      mean = sum / (double)n;
      var = 0.0;
      for (int64_t j = 0; j < n; ++j) var += (h[j] - mean) * (h[j] - mean);
      var /= (double)n;
    }
    const double rstd = 1.0 / sqrt(var + (double)eps);
    const int64_t yo = seqk__offset_of_linear(y, r * n);
    const int64_t oo = residual_out ? seqk__offset_of_linear(residual_out, r * n) : 0;
    for (int64_t j = 0; j < n; ++j) {
      if (residual_out) seqk__store(residual_out, oo + j * residual_out->stride[last], h[j]);
      double v = (h[j] - mean) * rstd;
      if (weight) v *= seqk__load(weight, j * weight->stride[0]);
      if (bias) v += seqk__load(bias, j * bias->stride[0]);
      seqk__store(y, yo + j * y->stride[last], v);
    }
  }
  free(h);
  return SEQK_STATUS_SUCCESS;
}
