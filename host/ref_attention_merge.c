/*
 * ref_attention_merge.c - CPU reference of seqk_attention_merge, in double: per row,
 *   o = (e^lse_a o_a + e^lse_b o_b) / (e^lse_a + e^lse_b),  lse = log(e^lse_a + e^lse_b),
 * with an lse of +-inf marking an empty part (never read), as the CUDA kernels' merge.cuh rule.
 */
#include "ref_attention.h"

#include <math.h>

seqk_status seqk__ref_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                      const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                      const seqk_tensor *lse_b, seqk_tensor *o, seqk_tensor *lse) {
  (void)ctx;
  const int32_t lead = o->ndim - 1; /* the dims that index rows; lse tensors have exactly these */
  const int64_t Dv = o->shape[lead];
  const int has_lse = seqk__present(lse);
  /* Nothing to write: o has no element and no lse is asked for (the row dims may be huge then,
     and not even their product is defined). */
  if (!has_lse && seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS;
  int64_t rows = 1;
  for (int32_t d = 0; d < lead; ++d) rows *= o->shape[d];

  int64_t idx[SEQK_MAX_DIMS] = {0};
  for (int64_t r = 0; r < rows; ++r) {
    /* Row-major multi-index of row r over the leading dims. */
    for (int64_t rem = r, d = lead - 1; d >= 0; --d) {
      idx[d] = rem % o->shape[d];
      rem /= o->shape[d];
    }
    const int64_t oa0 = seqk__offset(o_a, idx), ob0 = seqk__offset(o_b, idx);
    const int64_t o0 = seqk__offset(o, idx);
    const int64_t sa = o_a->stride[lead], sb = o_b->stride[lead], so = o->stride[lead];
    /* Both lse values are read before this row's lse is written: lse may alias lse_a or lse_b. */
    const double la = seqk__load(lse_a, seqk__offset(lse_a, idx));
    const double lb = seqk__load(lse_b, seqk__offset(lse_b, idx));
    /* An infinite lse (either sign) marks a part that saw no key: its o is not read at all, so
       whatever it holds (0 by our convention, possibly garbage elsewhere) cannot leak in. */
    const int empty_a = isinf(la), empty_b = isinf(lb);
    double out_lse;
    if (empty_a && empty_b) {
      for (int64_t e = 0; e < Dv; ++e) seqk__store(o, o0 + e * so, 0.0);
      out_lse = INFINITY;
    } else if (empty_a || empty_b) {
      const seqk_tensor *src = empty_a ? o_b : o_a;
      const int64_t s0 = empty_a ? ob0 : oa0, ss = empty_a ? sb : sa;
      /* Copied as it is, unless its lse is NaN: a NaN lse makes the whole row NaN. */
      const double lone = empty_a ? lb : la;
      for (int64_t e = 0; e < Dv; ++e) {
        if (isnan(lone)) seqk__store(o, o0 + e * so, NAN);
        else seqk__copy_element(o, o0 + e * so, src, s0 + e * ss);
      }
      out_lse = empty_a ? lb : la;
    } else {
      /* Both weights relative to the larger lse, so one of them is exactly 1 and nothing
         overflows; a NaN lse propagates through exp. */
      const double m = la > lb ? la : lb;
      const double wa = exp(la - m), wb = exp(lb - m), w = wa + wb;
      for (int64_t e = 0; e < Dv; ++e) {
        const double va = seqk__load(o_a, oa0 + e * sa), vb = seqk__load(o_b, ob0 + e * sb);
        seqk__store(o, o0 + e * so, (wa * va + wb * vb) / w);
      }
      out_lse = m + log(w);
    }
    if (has_lse) seqk__store(lse, seqk__offset(lse, idx), out_lse);
  }
  return SEQK_STATUS_SUCCESS;
}
