/*
 * ref_activation.c - CPU reference for seqk_activate and seqk_gated_activate: the formulas of
 * seqk.h in double, element by element through each tensor's strides. Every input element of a
 * position is read before its output is written, so the exact aliases (y == x, gate or up) are
 * safe.
 */
#include "ref_layers.h"

#include <math.h>

double seqk__activation_value(seqk_activation act, double v) {
  switch (act) {
    case SEQK_ACTIVATION_RELU: return v < 0.0 ? 0.0 : v;
    case SEQK_ACTIVATION_GELU: return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440));
    case SEQK_ACTIVATION_GELU_TANH:
      return 0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
    case SEQK_ACTIVATION_SILU: return v / (1.0 + exp(-v));
    case SEQK_ACTIVATION_NONE: break;
  }
  return v;
}

seqk_status seqk__ref_activate(seqk_context_t ctx, seqk_activation act, const seqk_tensor *x,
                               const seqk_tensor *up, const seqk_tensor *y) {
  (void)ctx;
  const int64_t n = seqk__numel(y);
  for (int64_t i = 0; i < n; ++i) {
    double v = seqk__activation_value(act, seqk__load(x, seqk__offset_of_linear(x, i)));
    if (up) v *= seqk__load(up, seqk__offset_of_linear(up, i));
    seqk__store(y, seqk__offset_of_linear(y, i), v);
  }
  return SEQK_STATUS_SUCCESS;
}
