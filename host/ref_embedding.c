/*
 * ref_embedding.c - CPU reference for seqk_embedding: out[n..., :] = table[indices[n...], :].
 * All indices are checked before the first row is copied, so a bad one leaves out untouched.
 * out has table's dtype: each element is copied bit for bit (seqk__copy_element).
 */
#include "ref_layers.h"

seqk_status seqk__ref_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                const seqk_tensor *table, seqk_tensor *out) {
  const int64_t n_idx = seqk__numel(indices);
  const int64_t V = table->shape[0], E = table->shape[1];
  const int32_t e_dim = indices->ndim; /* out's last dim */

  /* Every distinct index is checked (a broadcast dim reads one element, however long it is); the
     first bad position of the whole tensor has its broadcast dims at 0, so it is among these. */
  const seqk_tensor distinct = seqk__distinct_view(indices);
  const int64_t n_distinct = seqk__numel(&distinct);
  for (int64_t n = 0; n < n_distinct; ++n) {
    const int32_t row = seqk__load_i32(indices, seqk__offset_of_linear(&distinct, n));
    if (row < 0 || row >= V) {
      char pos[SEQK_POSITION_CHARS];
      seqk__format_position(pos, sizeof pos, indices, seqk__linear_in(&distinct, n, indices));
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "embedding: indices%s=%d out of range [0, %lld)", pos, (int)row,
                        (long long)V);
    }
  }

  if (seqk__numel(out) == 0) return SEQK_STATUS_SUCCESS;   /* E == 0: out's strides are unchecked */
  for (int64_t n = 0; n < n_idx; ++n) {
    const int32_t row = seqk__load_i32(indices, seqk__offset_of_linear(indices, n));
    /* out's leading dims have indices' shape: unravel n against it, walk out's strides. */
    int64_t out_row = 0, rem = n;
    for (int32_t d = e_dim - 1; d >= 0; --d) {
      out_row += (rem % indices->shape[d]) * out->stride[d];
      rem /= indices->shape[d];
    }
    for (int64_t e = 0; e < E; ++e)
      seqk__copy_element(out, out_row + e * out->stride[e_dim], table,
                         row * table->stride[0] + e * table->stride[1]);
  }
  return SEQK_STATUS_SUCCESS;
}
