/*
 * ref_softmax.c - CPU reference of softmax along one dim of a tensor of any rank and strides.
 *
 * Each slice along dim is read whole into a double buffer before any element of it is written,
 * which is what makes the exact in-place alias (y == x) safe. NaN and infinities are left to IEEE
 * arithmetic, which matches torch: an all -inf slice gives exp(-inf - -inf) = NaN everywhere.
 */
#include "ref_attention.h"

#include <math.h>
#include <stdlib.h>

/* Advances idx over every dim except skip, last dim fastest. Returns 0 after the last index. */
static int next_index_except(int64_t *idx, const int64_t *shape, int32_t ndim, int32_t skip) {
  for (int32_t d = ndim - 1; d >= 0; --d) {
    if (d == skip) continue;
    if (++idx[d] < shape[d]) return 1;
    idx[d] = 0;
  }
  return 0;
}

seqk_status seqk__ref_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                              seqk_tensor *y) {
  if (seqk__numel(x) == 0) return SEQK_STATUS_SUCCESS;
  const int64_t n = x->shape[dim];
  const int64_t xs = x->stride[dim], ys = y->stride[dim];
  double *row = (double *)malloc((size_t)n * sizeof(double));
  if (!row)
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "softmax: cannot allocate %lld doubles of scratch", (long long)n);

  int64_t idx[SEQK_MAX_DIMS] = {0};
  do {
    const int64_t xo = seqk__offset(x, idx), yo = seqk__offset(y, idx);
    double max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = seqk__load(x, xo + j * xs);
      if (row[j] > max) max = row[j];
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = exp(row[j] - max);
      sum += row[j];
    }
    for (int64_t j = 0; j < n; ++j) seqk__store(y, yo + j * ys, row[j] / sum);
  } while (next_index_except(idx, x->shape, x->ndim, dim));

  free(row);
  return SEQK_STATUS_SUCCESS;
}
