/*
 * ref_embedding.c - CPU reference for seqk_embedding: out[n..., :] = table[indices[n...], :].
 * All indices are checked before the first row is copied, so a bad one leaves out untouched.
 * out has table's dtype, so each element goes through a double unchanged.
 */
#include "ref_layers.h"

seqk_status seqk__ref_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                const seqk_tensor *table, seqk_tensor *out) {
  const int64_t n_idx = seqk__numel(indices);
  const int64_t V = table->shape[0], E = table->shape[1];
  const int32_t e_dim = indices->ndim; /* out's last dim */

  for (int64_t n = 0; n < n_idx; ++n) {
    const int32_t row = seqk__load_i32(indices, seqk__offset_of_linear(indices, n));
    if (row < 0 || row >= V) {
      char pos[SEQK_POSITION_CHARS];
      seqk__format_position(pos, sizeof pos, indices, n);
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "embedding: indices%s=%d out of range [0, %lld)", pos, (int)row,
                        (long long)V);
    }
  }

  for (int64_t n = 0; n < n_idx; ++n) {
    const int32_t row = seqk__load_i32(indices, seqk__offset_of_linear(indices, n));
    /* out's leading dims have indices' shape: unravel n against it, walk out's strides. */
    int64_t out_row = 0, rem = n;
    for (int32_t d = e_dim - 1; d >= 0; --d) {
      out_row += (rem % indices->shape[d]) * out->stride[d];
      rem /= indices->shape[d];
    }
    for (int64_t e = 0; e < E; ++e)
      seqk__store(out, out_row + e * out->stride[e_dim],
                  seqk__load(table, row * table->stride[0] + e * table->stride[1]));
  }
  return SEQK_STATUS_SUCCESS;
}
