/*
 * ref_attention.c - CPU references of attention scores, attention values and attention
 * (the merge's: ref_attention_merge.c).
 *
 * Semantics shared by all of them:
 *   - Grouped-query heads: query head h reads key/value head h / (H / Hk).
 *   - Causal masking is aligned bottom-right: query i sees key j when j <= i + (Sk - Sq), so the
 *     last query always sees the last key, as for decoding with a KV cache; a sliding window
 *     bounds j around the same position (attention_rules.h).
 *   - scale == 0 means 1/sqrt(D) (attention_rules.h).
 * seqk__ref_attention is computed directly, row by row, and deliberately does not reuse the
 * scores / softmax / values references: the tests compare the two paths against each other.
 */
#include "ref_attention.h"

#include "attention_rules.h"

#include <math.h>
#include <stdlib.h>

/* Query heads per key head; H == 0 has no heads to map (and Hk may be 0 then). */
static int64_t head_group(int64_t H, int64_t Hk) { return Hk > 0 && H > 0 ? H / Hk : 1; }

/* <q[b,h,i,:], k[b,kh,j,:]> in double. */
static double dot_qk(const seqk_tensor *q, int64_t b, int64_t h, int64_t i, const seqk_tensor *k,
                     int64_t kh, int64_t j) {
  const int64_t D = q->shape[3];
  const int64_t qo = b * q->stride[0] + h * q->stride[1] + i * q->stride[2];
  const int64_t ko = b * k->stride[0] + kh * k->stride[1] + j * k->stride[2];
  double acc = 0.0;
  for (int64_t d = 0; d < D; ++d)
    acc += seqk__load(q, qo + d * q->stride[3]) * seqk__load(k, ko + d * k->stride[3]);
  return acc;
}

seqk_status seqk__ref_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                       const seqk_tensor *k, float scale, int32_t causal,
                                       seqk_tensor *s) {
  (void)ctx;
  /* An empty output may come with huge extents elsewhere (stride-0 inputs): no loop over them. */
  if (seqk__numel(s) == 0) return SEQK_STATUS_SUCCESS;
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2];
  const int64_t group = head_group(H, Hk);
  const double sc = seqk__attention_scale(scale, D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < Sk; ++j) {
          const int64_t so =
              b * s->stride[0] + h * s->stride[1] + i * s->stride[2] + j * s->stride[3];
          if (causal && j > i + (Sk - Sq))
            seqk__store(s, so, -INFINITY);
          else
            seqk__store(s, so, sc * dot_qk(q, b, h, i, k, h / group, j));
        }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__ref_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                       const seqk_tensor *v, seqk_tensor *o) {
  (void)ctx;
  if (seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS; /* as scores: no loop over huge extents */
  const int64_t B = p->shape[0], H = p->shape[1], Sq = p->shape[2], Sk = p->shape[3];
  const int64_t Hk = v->shape[1], Dv = v->shape[3];
  const int64_t group = head_group(H, Hk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t vh = h / group;
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < Sk; ++j) {
            const int64_t po =
                b * p->stride[0] + h * p->stride[1] + i * p->stride[2] + j * p->stride[3];
            const int64_t vo =
                b * v->stride[0] + vh * v->stride[1] + j * v->stride[2] + e * v->stride[3];
            acc += seqk__load(p, po) * seqk__load(v, vo);
          }
          seqk__store(o, b * o->stride[0] + h * o->stride[1] + i * o->stride[2] + e * o->stride[3],
                      acc);
        }
    }
  return SEQK_STATUS_SUCCESS;
}

/* Writes an empty row: o = 0 and lse = +inf (no visible key, or a padding query row). */
static void store_empty_row(seqk_tensor *o, int64_t oo, seqk_tensor *lse, int64_t lo) {
  for (int64_t e = 0; e < o->shape[3]; ++e) seqk__store(o, oo + e * o->stride[3], 0.0);
  if (seqk__present(lse)) seqk__store(lse, lo, INFINITY);
}

seqk_status seqk__ref_attention(seqk_context_t ctx, const seqk_attention_params *params,
                                const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                                seqk_tensor *o, seqk_tensor *lse) {
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2], Dv = v->shape[3];
  const int64_t group = head_group(H, Hk);
  const double sc = seqk__attention_scale(params->scale, D);
  const int has_lse = seqk__present(lse);
  const seqk_key_window win = seqk__attention_window(params);
  const double cap = params->softcap;

  if (seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS; /* no row to write, lse has none either */
  double *p = (double *)malloc((size_t)(Sk > 0 ? Sk : 1) * sizeof(double));
  double *acc = (double *)malloc((size_t)Dv * sizeof(double));
  if (!p || !acc) {
    free(p);
    free(acc);
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "attention: cannot allocate %lld doubles of scratch", (long long)(Sk + Dv));
  }

  for (int64_t b = 0; b < B; ++b) {
    /* With lengths, batch b is a sequence of Sq_b queries and Sk_b keys (the rest is padding). */
    const int64_t Sq_b = params->seqlens_q ? params->seqlens_q[b] : Sq;
    const int64_t Sk_b = params->seqlens_k ? params->seqlens_k[b] : Sk;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        const int64_t oo = b * o->stride[0] + h * o->stride[1] + i * o->stride[2];
        const int64_t lo =
            has_lse ? b * lse->stride[0] + h * lse->stride[1] + i * lse->stride[2] : 0;
        /* Keys k0 .. k1-1 are visible to this row. */
        int64_t k0, k1;
        seqk__visible_keys(win, i, Sq_b, Sk_b, &k0, &k1);
        if (k1 <= k0) {
          store_empty_row(o, oo, lse, lo);
          continue;
        }

        double max = -INFINITY;
        for (int64_t j = k0; j < k1; ++j) {
          double x = sc * dot_qk(q, b, h, i, k, kh, j);
          if (cap > 0.0) x = cap * tanh(x / cap);
          x += seqk__alibi_bias(params->alibi_slopes, h, i, j, Sq_b, Sk_b);
          p[j] = x;
          if (p[j] > max) max = p[j];
        }
        double sum = 0.0;
        for (int64_t j = k0; j < k1; ++j) {
          p[j] = exp(p[j] - max);
          sum += p[j];
        }
        for (int64_t e = 0; e < Dv; ++e) acc[e] = 0.0;
        for (int64_t j = k0; j < k1; ++j) {
          const int64_t vo = b * v->stride[0] + kh * v->stride[1] + j * v->stride[2];
          for (int64_t e = 0; e < Dv; ++e) acc[e] += p[j] * seqk__load(v, vo + e * v->stride[3]);
        }
        for (int64_t e = 0; e < Dv; ++e) seqk__store(o, oo + e * o->stride[3], acc[e] / sum);
        if (has_lse) seqk__store(lse, lo, max + log(sum));
      }
    }
  }
  free(p);
  free(acc);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__ref_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                       const seqk_tensor *q, const seqk_tensor *k,
                                       const seqk_tensor *v, const seqk_tensor *cu_q,
                                       const seqk_tensor *cu_k, seqk_tensor *o, seqk_tensor *lse) {
  const int32_t *oq = (const int32_t *)cu_q->data, *ok = (const int32_t *)cu_k->data;
  const int64_t B = cu_q->shape[0] - 1, sq = cu_q->stride[0], sk = cu_k->stride[0];
  const int has_lse = seqk__present(lse);
  /* Sequence b is one batch of seqk__ref_attention over its rows of the packed tensors. */
  for (int64_t b = 0; b < B; ++b) {
    const int64_t q0 = oq[b * sq], nq = oq[(b + 1) * sq] - q0;
    const int64_t k0 = ok[b * sk], nk = ok[(b + 1) * sk] - k0;
    if (nq == 0) continue;
    const seqk_tensor qb = seqk__packed_as_batches(q, 1, q0, nq);
    const seqk_tensor kb = seqk__packed_as_batches(k, 1, k0, nk);
    const seqk_tensor vb = seqk__packed_as_batches(v, 1, k0, nk);
    seqk_tensor ob = seqk__packed_as_batches(o, 1, q0, nq);
    seqk_tensor lb = has_lse ? seqk__packed_as_batches(lse, 1, q0, nq) : ob;
    SEQK_TRY(seqk__ref_attention(ctx, params, &qb, &kb, &vb, &ob, has_lse ? &lb : NULL));
  }
  return SEQK_STATUS_SUCCESS;
}
