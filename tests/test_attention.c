/*
 * test_attention.c - seqk_attention_scores, seqk_attention_values and seqk_attention on the CPU,
 * and on CUDA tensors against it (seqk_attention_merge alone: test_attention_merge.c).
 *
 * Every result is checked against double references written here (row-major arrays, masks built
 * explicitly per element), and seqk_attention is also checked against the composition of the
 * public ops scores -> softmax -> values. Covered: the self-attention seed's golden values,
 * grouped-query heads, causal masking with Sq < Sk, Sq > Sk (empty rows: o = 0, lse = +inf) and
 * Sq == Sk, Sq = 1, Sk = 0, per-batch lengths (padding poisoned with NaN; equal to running each
 * batch alone on sliced views), strided and [B,S,H,D] views, Dv != D, explicit and negative
 * scales, f16/bf16, odd sizes, merging the attention of two key halves (= attention over all
 * keys), and bad input for every entry point.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

typedef struct dims {
  int64_t B, H, Hk, Sq, Sk, D, Dv;
} dims;

static double eff_scale(double scale, int64_t D) {
  return scale != 0.0 ? scale : 1.0 / sqrt((double)D);
}

static double *dalloc(int64_t n) {
  return (double *)th_alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
}

/* ---- double references on row-major arrays --------------------------------------------------- */

static int visible(int64_t i, int64_t j, int64_t Sq_b, int64_t Sk_b, int causal) {
  return i < Sq_b && j < Sk_b && (!causal || j <= i + Sk_b - Sq_b);
}

static double dot_row(const dims *d, const double *q, const double *k, int64_t b, int64_t h,
                      int64_t i, int64_t j) {
  const int64_t kh = h / (d->H / d->Hk);
  double acc = 0.0;
  for (int64_t e = 0; e < d->D; ++e)
    acc +=
        q[((b * d->H + h) * d->Sq + i) * d->D + e] * k[((b * d->Hk + kh) * d->Sk + j) * d->D + e];
  return acc;
}

/* s [B,H,Sq,Sk]. */
static double *ref_scores(const dims *d, const double *q, const double *k, double scale,
                          int causal) {
  double *s = dalloc(d->B * d->H * d->Sq * d->Sk);
  const double sc = eff_scale(scale, d->D);
  for (int64_t b = 0; b < d->B; ++b)
    for (int64_t h = 0; h < d->H; ++h)
      for (int64_t i = 0; i < d->Sq; ++i)
        for (int64_t j = 0; j < d->Sk; ++j)
          s[((b * d->H + h) * d->Sq + i) * d->Sk + j] =
              visible(i, j, d->Sq, d->Sk, causal) ? sc * dot_row(d, q, k, b, h, i, j) : -INFINITY;
  return s;
}

/* o [B,H,Sq,Dv] = p [B,H,Sq,Sk] v [B,Hk,Sk,Dv]. */
static double *ref_values(const dims *d, const double *p, const double *v) {
  double *o = dalloc(d->B * d->H * d->Sq * d->Dv);
  for (int64_t b = 0; b < d->B; ++b)
    for (int64_t h = 0; h < d->H; ++h)
      for (int64_t i = 0; i < d->Sq; ++i)
        for (int64_t e = 0; e < d->Dv; ++e) {
          const int64_t vh = h / (d->H / d->Hk);
          double acc = 0.0;
          for (int64_t j = 0; j < d->Sk; ++j)
            acc += p[((b * d->H + h) * d->Sq + i) * d->Sk + j] *
                   v[((b * d->Hk + vh) * d->Sk + j) * d->Dv + e];
          o[((b * d->H + h) * d->Sq + i) * d->Dv + e] = acc;
        }
  return o;
}

/* Attention through an explicit masked score row and its logsumexp: o = sum_j exp(s_j - lse) v_j. */
static void ref_attention(const dims *d, const double *q, const double *k, const double *v,
                          double scale, int causal, const int32_t *lq, const int32_t *lk, double *o,
                          double *lse) {
  const double sc = eff_scale(scale, d->D);
  double *s = dalloc(d->Sk);
  for (int64_t b = 0; b < d->B; ++b) {
    const int64_t Sq_b = lq ? lq[b] : d->Sq, Sk_b = lk ? lk[b] : d->Sk;
    for (int64_t h = 0; h < d->H; ++h)
      for (int64_t i = 0; i < d->Sq; ++i) {
        const int64_t row = (b * d->H + h) * d->Sq + i;
        double m = -INFINITY;
        for (int64_t j = 0; j < d->Sk; ++j) {
          s[j] = visible(i, j, Sq_b, Sk_b, causal) ? sc * dot_row(d, q, k, b, h, i, j) : -INFINITY;
          m = fmax(m, s[j]);
        }
        if (m == -INFINITY) {
          for (int64_t e = 0; e < d->Dv; ++e) o[row * d->Dv + e] = 0.0;
          lse[row] = INFINITY;
          continue;
        }
        double z = 0.0;
        for (int64_t j = 0; j < d->Sk; ++j) z += exp(s[j] - m);
        const double l = m + log(z);
        lse[row] = l;
        const int64_t vh = h / (d->H / d->Hk);
        for (int64_t e = 0; e < d->Dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < d->Sk; ++j)
            if (s[j] != -INFINITY)
              acc += exp(s[j] - l) * v[((b * d->Hk + vh) * d->Sk + j) * d->Dv + e];
          o[row * d->Dv + e] = acc;
        }
      }
  }
}

/* ---- tensors --------------------------------------------------------------------------------- */

enum layout {
  CONTIG, /* row-major */
  PADDED, /* padding after every dim but the last (last dim contiguous, as attention needs) */
  SPREAD, /* padding everywhere and inner stride 2 (scores/values accept any strides) */
  BSHD,   /* a [B,S,H,D] buffer seen as [B,H,S,D] */
  TRANS   /* the last two dims swapped in memory: column-major matrices (scores/values only) */
};

static seqk_tensor make4(seqk_dtype dt, int layout, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t shape[4] = {a, b, c, d};
  const int64_t pad[4] = {1, 2, 3, 1};
  switch (layout) {
    case PADDED: {
      const int64_t p[4] = {2, 1, 3, 0};
      return th_tensor_strided(dt, 4, shape, p, 1);
    }
    case SPREAD: return th_tensor_strided(dt, 4, shape, pad, 2);
    case BSHD: {
      const int64_t bshd[4] = {a, c, b, d};
      seqk_tensor buf = th_tensor_new(dt, 4, bshd), t = buf;
      t.shape[1] = b;
      t.shape[2] = c;
      t.stride[1] = buf.stride[2];
      t.stride[2] = buf.stride[1];
      return t;
    }
    case TRANS: {
      const int64_t cols_first[4] = {a, b, d, c};
      seqk_tensor buf = th_tensor_new(dt, 4, cols_first), t = buf;
      t.shape[2] = c;
      t.shape[3] = d;
      t.stride[2] = buf.stride[3];
      t.stride[3] = buf.stride[2];
      return t;
    }
    default: return th_tensor_new(dt, 4, shape);
  }
}

static seqk_tensor make_lse(int layout, int64_t B, int64_t H, int64_t Sq) {
  const int64_t shape[3] = {B, H, Sq}, pad[3] = {1, 1, 2};
  return layout == CONTIG ? th_tensor_new(SEQK_DTYPE_F32, 3, shape)
                          : th_tensor_strided(SEQK_DTYPE_F32, 3, shape, pad, 2);
}

static const char *dtype_str(seqk_dtype dt) {
  return dt == SEQK_DTYPE_F16 ? "f16" : dt == SEQK_DTYPE_BF16 ? "bf16" : "f32";
}

/* ---- the same ops on CUDA tensors (harness.h: th_check_on_device) ----------------------------- */

/* Inputs and outputs in the order of each entry's arguments; user is the op's scalar arguments
   (a seqk_attention_params for scores and attention). Attention's seqlens_q/k arrive as I32
   tensors in[3] and in[4] (absent: no data) and are passed as raw device pointers. */
static seqk_status scores_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const seqk_attention_params *p = (const seqk_attention_params *)user;
  return seqk_attention_scores(ctx, &in[0], &in[1], p->scale, p->causal, &out[0]);
}

static seqk_status values_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  (void)user;
  return seqk_attention_values(ctx, &in[0], &in[1], &out[0]);
}

static seqk_status attention_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  seqk_attention_params p = *(const seqk_attention_params *)user;
  p.seqlens_q = (const int32_t *)in[3].data;
  p.seqlens_k = (const int32_t *)in[4].data;
  return seqk_attention(ctx, &p, &in[0], &in[1], &in[2], &out[0], &out[1]);
}

static seqk_status merge_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  (void)user;
  return seqk_attention_merge(ctx, &in[0], &in[1], &in[2], &in[3], &out[0], &out[1]);
}

static void scores_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *q,
                             const seqk_tensor *k, float scale, int causal, const seqk_tensor *s) {
  seqk_attention_params p = {scale, causal, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0, 0, 0.0f, NULL};
  const seqk_tensor in[2] = {*q, *k};
  th_check_on_device(ctx, what, scores_op, &p, in, 2, 0, s, 1, 1.0);
}

static void values_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *p,
                             const seqk_tensor *v, const seqk_tensor *o) {
  const seqk_tensor in[2] = {*p, *v};
  th_check_on_device(ctx, what, values_op, NULL, in, 2, 0, o, 1, 1.0);
}

/* lse may be NULL (not asked for). */
static void merge_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *oa,
                            const seqk_tensor *la, const seqk_tensor *ob, const seqk_tensor *lb,
                            const seqk_tensor *o, const seqk_tensor *lse) {
  const seqk_tensor in[4] = {*oa, *la, *ob, *lb};
  const seqk_tensor out[2] = {*o, lse ? *lse : th_absent(*la)};
  th_check_on_device(ctx, what, merge_op, NULL, in, 4, 0, out, 2, 1.0);
}

/* ---- the seed -------------------------------------------------------------------------------- */

static void test_seed_self_attention(seqk_context_t ctx) {
  /* Seed 002: x (1x2x3), raw = x x^T, weights = softmax(raw, dim=2), y = weights x, printed by
     torch to 4 decimals; x itself is known to 4 decimals only, hence the 1e-3 tolerance. */
  const double xv[6] = {1.5410, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986};
  const double raw_golden[4] = {7.2079, 4.2414, 4.2414, 3.4554};
  const double w_golden[4] = {0.9510, 0.0490, 0.6870, 0.3130};
  const double y_golden[6] = {1.4934, -0.3322, -2.1406, 1.2366, -0.5411, -1.9346};
  const th_tol printed = {1e-3, 1e-3};
  const dims d = {1, 1, 1, 2, 2, 3, 3};
  const int64_t xs[4] = {1, 1, 2, 3}, ss[4] = {1, 1, 2, 2}, ls[3] = {1, 1, 2};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 4, xs);
  seqk_tensor s = th_tensor_new(SEQK_DTYPE_F32, 4, ss), w = th_tensor_new(SEQK_DTYPE_F32, 4, ss);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 4, xs), y1 = th_tensor_new(SEQK_DTYPE_F32, 4, xs);
  seqk_tensor lse = th_tensor_new(SEQK_DTYPE_F32, 3, ls);
  th_fill_values(&x, xv);
  const double *xd = th_to_doubles(&x);

  th_expect_status(ctx, seqk_attention_scores(ctx, &x, &x, 1.0f, 0, &s), SEQK_STATUS_SUCCESS, NULL,
                   "seed scores");
  th_check_close("seed raw = x x^T vs golden", &s, raw_golden, printed);
  const double *raw = ref_scores(&d, xd, xd, 1.0, 0);
  th_check_close("seed raw = x x^T vs double", &s, raw, th_tol_for(SEQK_DTYPE_F32));
  th_expect_status(ctx, seqk_softmax(ctx, &s, 2 + 1, &w), SEQK_STATUS_SUCCESS, NULL,
                   "seed softmax");
  th_check_close("seed weights vs golden", &w, w_golden, printed);
  th_expect_status(ctx, seqk_attention_values(ctx, &w, &x, &y), SEQK_STATUS_SUCCESS, NULL,
                   "seed values");
  th_check_close("seed y (unfused) vs golden", &y, y_golden, printed);

  const seqk_attention_params params = {1.0f, 0,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                        0,    0.0f, NULL};
  th_expect_status(ctx, seqk_attention(ctx, &params, &x, &x, &x, &y1, &lse), SEQK_STATUS_SUCCESS,
                   NULL, "seed attention");
  th_check_close("seed y (seqk_attention) vs golden", &y1, y_golden, printed);
  th_check_close("seed y: attention == scores->softmax->values", &y1, th_to_doubles(&y),
                 th_tol_scaled(SEQK_DTYPE_F32, 4));
  double o_ref[6], lse_ref[2];
  ref_attention(&d, xd, xd, xd, 1.0, 0, NULL, NULL, o_ref, lse_ref);
  th_check_close("seed y vs double", &y1, o_ref, th_tol_for(SEQK_DTYPE_F32));
  const double lse_direct[2] = {log(exp(raw[0]) + exp(raw[1])), log(exp(raw[2]) + exp(raw[3]))};
  th_check_close("seed lse vs log(sum(exp(raw)))", &lse, lse_direct, th_tol_for(SEQK_DTYPE_F32));
}

/* ---- scores and values ------------------------------------------------------------------------ */

static void test_scores(seqk_context_t ctx, th_rng *rng) {
  typedef struct {
    dims d;
    float scale;
    int causal;
    seqk_dtype dt;
    int layout;
  } scase;
  const scase cases[] = {
      {{2, 3, 3, 5, 7, 8, 0}, 0.0f, 0, SEQK_DTYPE_F32, CONTIG},
      {{2, 6, 2, 5, 7, 8, 0}, 0.0f, 1, SEQK_DTYPE_F32, SPREAD},
      {{1, 6, 1, 7, 3, 5, 0}, 0.25f, 1, SEQK_DTYPE_F32, SPREAD}, /* Sq > Sk: rows all -inf */
      {{2, 4, 2, 6, 6, 3, 0}, -0.7f, 1, SEQK_DTYPE_F32, BSHD},
      {{3, 2, 2, 1, 9, 16, 0}, 0.0f, 1, SEQK_DTYPE_F32, PADDED}, /* Sq = 1 sees every key */
      {{2, 3, 1, 5, 11, 13, 0}, 0.0f, 1, SEQK_DTYPE_F16, SPREAD},
      {{2, 3, 3, 4, 6, 9, 0}, 0.5f, 0, SEQK_DTYPE_BF16, BSHD},
      {{1, 2, 2, 0, 5, 4, 0}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG}, /* Sq = 0 */
      {{1, 2, 2, 3, 0, 4, 0}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG}, /* Sk = 0 */
      /* The CUDA dispatch (host/cuda_attention.c): grouped path (a group's query heads are
         one matrix: contiguous heads, or Sq = 1 at any head stride), per-head path (padded or
         [B,S,H,D] heads), column-major operands (the other cuBLAS orientation, no copy); SPREAD
         above takes the contiguous-copy fallback. */
      {{2, 6, 2, 5, 7, 8, 0}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG},
      {{2, 8, 2, 1, 19, 16, 0}, 0.0f, 0, SEQK_DTYPE_F16, BSHD},
      {{2, 6, 3, 4, 9, 5, 0}, 0.0f, 1, SEQK_DTYPE_F32, PADDED},
      {{2, 4, 2, 5, 6, 7, 0}, 0.3f, 1, SEQK_DTYPE_F32, TRANS},
      {{1, 3, 3, 6, 4, 5, 0}, 0.0f, 1, SEQK_DTYPE_BF16, TRANS},
  };
  char what[128];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    const scase *sc = &cases[c];
    const dims *d = &sc->d;
    seqk_tensor q = make4(sc->dt, sc->layout, d->B, d->H, d->Sq, d->D);
    seqk_tensor k = make4(sc->dt, sc->layout, d->B, d->Hk, d->Sk, d->D);
    seqk_tensor s =
        make4(sc->dt, sc->layout == BSHD ? CONTIG : sc->layout, d->B, d->H, d->Sq, d->Sk);
    th_fill_normal(&q, rng, 1.0);
    th_fill_normal(&k, rng, 1.0);
    snprintf(what, sizeof what, "scores case %zu (H=%lld Hk=%lld Sq=%lld Sk=%lld causal=%d %s)", c,
             (long long)d->H, (long long)d->Hk, (long long)d->Sq, (long long)d->Sk, sc->causal,
             dtype_str(sc->dt));
    th_expect_status(ctx, seqk_attention_scores(ctx, &q, &k, sc->scale, sc->causal, &s),
                     SEQK_STATUS_SUCCESS, NULL, what);
    th_check_close(what, &s,
                   ref_scores(d, th_to_doubles(&q), th_to_doubles(&k), sc->scale, sc->causal),
                   th_tol_for(sc->dt));
    scores_on_device(ctx, what, &q, &k, sc->scale, sc->causal, &s);
  }
  /* D = 0: every dot product is an empty sum, so the unmasked scores are exactly 0 (scale 0 must
     not turn them into 0 * inf). */
  const int64_t qs[4] = {1, 1, 2, 0}, ss[4] = {1, 1, 2, 3}, ks[4] = {1, 1, 3, 0};
  seqk_tensor q0 = th_tensor_new(SEQK_DTYPE_F32, 4, qs), k0 = th_tensor_new(SEQK_DTYPE_F32, 4, ks);
  seqk_tensor s0 = th_tensor_new(SEQK_DTYPE_F32, 4, ss);
  const double zero_causal[6] = {0, 0, -INFINITY, 0, 0, 0};
  th_expect_status(ctx, seqk_attention_scores(ctx, &q0, &k0, 0.0f, 1, &s0), SEQK_STATUS_SUCCESS,
                   NULL, "scores D=0");
  th_check_close("scores with D = 0", &s0, zero_causal, (th_tol){0, 0});
  scores_on_device(ctx, "scores with D = 0", &q0, &k0, 0.0f, 1, &s0);
}

static void test_values(seqk_context_t ctx, th_rng *rng) {
  typedef struct {
    dims d;
    seqk_dtype dt;
    int layout;
  } vcase;
  const vcase cases[] = {
      {{2, 3, 3, 5, 7, 0, 4}, SEQK_DTYPE_F32, CONTIG},
      {{2, 6, 2, 5, 7, 0, 9}, SEQK_DTYPE_F32, SPREAD},
      {{1, 6, 1, 3, 11, 0, 5}, SEQK_DTYPE_F32, BSHD},
      {{3, 4, 2, 1, 13, 0, 7}, SEQK_DTYPE_F16, SPREAD},
      {{2, 2, 1, 6, 5, 0, 3}, SEQK_DTYPE_BF16, PADDED},
      /* CUDA dispatch: grouped (contiguous; Sq = 1), per-head (padded), column-major operands. */
      {{2, 6, 2, 5, 7, 0, 4}, SEQK_DTYPE_F32, CONTIG},
      {{2, 8, 2, 1, 9, 0, 16}, SEQK_DTYPE_F16, BSHD},
      {{2, 6, 3, 4, 9, 0, 5}, SEQK_DTYPE_BF16, PADDED},
      {{2, 4, 2, 5, 6, 0, 3}, SEQK_DTYPE_F32, TRANS},
  };
  char what[128];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    const vcase *vc = &cases[c];
    const dims *d = &vc->d;
    seqk_tensor p =
        make4(vc->dt, vc->layout == BSHD ? SPREAD : vc->layout, d->B, d->H, d->Sq, d->Sk);
    seqk_tensor v = make4(vc->dt, vc->layout, d->B, d->Hk, d->Sk, d->Dv);
    seqk_tensor o = make4(vc->dt, vc->layout, d->B, d->H, d->Sq, d->Dv);
    th_fill_uniform(&p, rng, 0.0, 1.0);
    th_fill_normal(&v, rng, 1.0);
    snprintf(what, sizeof what, "values case %zu (H=%lld Hk=%lld Sk=%lld Dv=%lld %s)", c,
             (long long)d->H, (long long)d->Hk, (long long)d->Sk, (long long)d->Dv,
             dtype_str(vc->dt));
    th_expect_status(ctx, seqk_attention_values(ctx, &p, &v, &o), SEQK_STATUS_SUCCESS, NULL, what);
    th_check_close(what, &o, ref_values(d, th_to_doubles(&p), th_to_doubles(&v)),
                   th_tol_for(vc->dt));
    values_on_device(ctx, what, &p, &v, &o);
  }
  /* Sk = 0: o = 0 over a poisoned output. */
  const int64_t ps[4] = {2, 2, 3, 0}, vs[4] = {2, 1, 0, 4}, os[4] = {2, 2, 3, 4};
  seqk_tensor p0 = th_tensor_new(SEQK_DTYPE_F32, 4, ps), v0 = th_tensor_new(SEQK_DTYPE_F32, 4, vs);
  seqk_tensor o0 = th_tensor_new(SEQK_DTYPE_F32, 4, os);
  th_expect_status(ctx, seqk_attention_values(ctx, &p0, &v0, &o0), SEQK_STATUS_SUCCESS, NULL,
                   "values Sk=0");
  double *zeros = dalloc(th_numel(&o0));
  memset(zeros, 0, (size_t)th_numel(&o0) * sizeof(double));
  th_check_close("values with Sk = 0 are 0", &o0, zeros, (th_tol){0, 0});
  values_on_device(ctx, "values with Sk = 0 are 0", &p0, &v0, &o0);
}

/* ---- attention -------------------------------------------------------------------------------- */

typedef struct attn_case {
  dims d;
  float scale;
  int causal;
  seqk_dtype dt;
  int layout;
  const int32_t *lq, *lk;
} attn_case;

typedef struct attn_run {
  seqk_tensor q, k, v, o, lse;
  const double *o_ref, *lse_ref;
} attn_run;

static void describe(char *buf, size_t n, const char *what, const attn_case *c) {
  snprintf(buf, n,
           "%s (B=%lld H=%lld Hk=%lld Sq=%lld Sk=%lld D=%lld Dv=%lld causal=%d %s layout=%d%s)",
           what, (long long)c->d.B, (long long)c->d.H, (long long)c->d.Hk, (long long)c->d.Sq,
           (long long)c->d.Sk, (long long)c->d.D, (long long)c->d.Dv, c->causal, dtype_str(c->dt),
           c->layout, c->lq || c->lk ? " lengths" : "");
}

/* seqlens as an I32 [B] tensor for the device run; absent (no data) for NULL. */
static seqk_tensor lens_tensor(const int32_t *lens, int64_t B) {
  const int64_t shape[1] = {B};
  seqk_tensor t = th_tensor_new(SEQK_DTYPE_I32, 1, shape);
  if (!lens) return th_absent(t);
  th_fill_i32(&t, lens);
  return t;
}

/* The CPU run r of case c again on CUDA tensors with every algo (each is its own kernel path),
   and without lse. */
static void attention_on_device(seqk_context_t ctx, const attn_case *c, const attn_run *r) {
  static const struct {
    seqk_attention_algo algo;
    int lse;
    const char *name;
  } runs[] = {
      {SEQK_ATTENTION_ALGO_AUTO, 1, "attention AUTO"},
      {SEQK_ATTENTION_ALGO_FUSED, 1, "attention FUSED"},
      {SEQK_ATTENTION_ALGO_UNFUSED, 1, "attention UNFUSED"},
      {SEQK_ATTENTION_ALGO_AUTO, 0, "attention AUTO, no lse"},
  };
  const seqk_tensor in[5] = {r->q, r->k, r->v, lens_tensor(c->lq, c->d.B),
                             lens_tensor(c->lk, c->d.B)};
  char what[256];
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; ++i) {
    const seqk_attention_params p = {c->scale, c->causal, runs[i].algo, NULL, NULL, 0, 0, 0, 0.0f, NULL};
    const seqk_tensor out[2] = {r->o, runs[i].lse ? r->lse : th_absent(r->lse)};
    describe(what, sizeof what, runs[i].name, c);
    th_check_on_device(ctx, what, attention_op, (void *)&p, in, 5, 0, out, 2, 1.0);
  }
}

/* Runs one case against the double reference, and on CUDA tensors against the CPU result, and
   returns its tensors for further checks. */
static attn_run run_attention_case(seqk_context_t ctx, th_rng *rng, const attn_case *c) {
  const dims *d = &c->d;
  attn_run r;
  char what[256];
  r.q = make4(c->dt, c->layout, d->B, d->H, d->Sq, d->D);
  r.k = make4(c->dt, c->layout, d->B, d->Hk, d->Sk, d->D);
  r.v = make4(c->dt, c->layout, d->B, d->Hk, d->Sk, d->Dv);
  r.o = make4(c->dt, c->layout, d->B, d->H, d->Sq, d->Dv);
  r.lse = make_lse(c->layout, d->B, d->H, d->Sq);
  th_fill_normal(&r.q, rng, 1.0);
  th_fill_normal(&r.k, rng, 1.0);
  th_fill_normal(&r.v, rng, 1.0);
  /* Padding rows and keys hold NaN: reading any of them would show in the result. */
  for (int64_t b = 0; b < d->B; ++b) {
    for (int64_t h = 0; h < d->H; ++h)
      for (int64_t i = c->lq ? c->lq[b] : d->Sq; i < d->Sq; ++i)
        for (int64_t e = 0; e < d->D; ++e)
          th_set(&r.q, ((b * d->H + h) * d->Sq + i) * d->D + e, NAN);
    for (int64_t h = 0; h < d->Hk; ++h)
      for (int64_t j = c->lk ? c->lk[b] : d->Sk; j < d->Sk; ++j) {
        for (int64_t e = 0; e < d->D; ++e)
          th_set(&r.k, ((b * d->Hk + h) * d->Sk + j) * d->D + e, NAN);
        for (int64_t e = 0; e < d->Dv; ++e)
          th_set(&r.v, ((b * d->Hk + h) * d->Sk + j) * d->Dv + e, NAN);
      }
  }
  const seqk_attention_params params = {
      c->scale, c->causal, SEQK_ATTENTION_ALGO_AUTO, c->lq, c->lk, 0, 0, 0, 0.0f, NULL};
  describe(what, sizeof what, "attention", c);
  th_expect_status(ctx, seqk_attention(ctx, &params, &r.q, &r.k, &r.v, &r.o, &r.lse),
                   SEQK_STATUS_SUCCESS, NULL, what);
  double *o_ref = dalloc(th_numel(&r.o)), *lse_ref = dalloc(th_numel(&r.lse));
  ref_attention(d, th_to_doubles(&r.q), th_to_doubles(&r.k), th_to_doubles(&r.v), c->scale,
                c->causal, c->lq, c->lk, o_ref, lse_ref);
  describe(what, sizeof what, "attention o vs double", c);
  th_check_close(what, &r.o, o_ref, th_tol_for(c->dt));
  describe(what, sizeof what, "attention lse vs double logsumexp", c);
  th_check_close(what, &r.lse, lse_ref, th_tol_for(SEQK_DTYPE_F32));
  r.o_ref = o_ref;
  r.lse_ref = lse_ref;
  attention_on_device(ctx, c, &r);
  return r;
}

/* seqk_attention == softmax(scores) -> values through the public ops (f32, every row non-empty),
   and its lse == the logsumexp of the public scores. */
static void check_composition(seqk_context_t ctx, const attn_case *c, const attn_run *r) {
  const dims *d = &c->d;
  char what[256];
  seqk_tensor s = make4(SEQK_DTYPE_F32, CONTIG, d->B, d->H, d->Sq, d->Sk);
  seqk_tensor p = make4(SEQK_DTYPE_F32, PADDED, d->B, d->H, d->Sq, d->Sk);
  seqk_tensor o = make4(SEQK_DTYPE_F32, CONTIG, d->B, d->H, d->Sq, d->Dv);
  seqk_status st = seqk_attention_scores(ctx, &r->q, &r->k, c->scale, c->causal, &s);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_softmax(ctx, &s, -1, &p);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_attention_values(ctx, &p, &r->v, &o);
  describe(what, sizeof what, "composition scores->softmax->values", c);
  if (!th_expect_status(ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) return;
  th_check_close(what, &o, th_to_doubles(&r->o), th_tol_scaled(SEQK_DTYPE_F32, 8));
  const int64_t rows = d->B * d->H * d->Sq;
  const double *sd = th_to_doubles(&s);
  double *lse = dalloc(rows);
  for (int64_t row = 0; row < rows; ++row) {
    double m = -INFINITY, z = 0.0;
    for (int64_t j = 0; j < d->Sk; ++j) m = fmax(m, sd[row * d->Sk + j]);
    for (int64_t j = 0; j < d->Sk; ++j) z += exp(sd[row * d->Sk + j] - m);
    lse[row] = m + log(z);
  }
  describe(what, sizeof what, "attention lse vs logsumexp of public scores", c);
  th_check_close(what, &r->lse, lse, th_tol_scaled(SEQK_DTYPE_F32, 4));
}

static void test_attention_cases(seqk_context_t ctx, th_rng *rng) {
  const attn_case cases[] = {
      {{2, 3, 3, 5, 7, 8, 8}, 0.0f, 0, SEQK_DTYPE_F32, CONTIG, NULL, NULL},
      {{2, 6, 2, 5, 7, 8, 8}, 0.0f, 0, SEQK_DTYPE_F32, PADDED, NULL, NULL},   /* grouped 3:1 */
      {{2, 6, 1, 4, 9, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, NULL, NULL},     /* multi-query */
      {{2, 6, 2, 3, 7, 16, 16}, 0.0f, 1, SEQK_DTYPE_F32, PADDED, NULL, NULL}, /* causal Sq < Sk */
      {{2, 4, 2, 6, 6, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG, NULL, NULL},   /* causal Sq == Sk */
      {{3, 2, 2, 1, 9, 16, 16}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, NULL, NULL},   /* decode Sq = 1 */
      {{1, 2, 1, 1, 1, 4, 4}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG, NULL, NULL},   /* one key */
      {{2, 3, 3, 5, 7, 5, 3}, 0.0f, 0, SEQK_DTYPE_F32, PADDED, NULL, NULL},   /* Dv < D */
      {{2, 3, 3, 5, 7, 3, 7}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, NULL, NULL},     /* Dv > D */
      {{2, 2, 2, 4, 6, 8, 8}, 0.3f, 0, SEQK_DTYPE_F32, CONTIG, NULL, NULL},   /* explicit scale */
      {{2, 2, 1, 4, 6, 8, 8}, -0.5f, 1, SEQK_DTYPE_F32, PADDED, NULL, NULL},  /* negative scale */
      {{3, 5, 5, 13, 29, 17, 11}, 0.0f, 0, SEQK_DTYPE_F32, BSHD, NULL, NULL}, /* odd sizes */
      {{3, 5, 5, 13, 29, 17, 11}, 0.0f, 1, SEQK_DTYPE_F32, PADDED, NULL, NULL},
      {{1, 2, 1, 64, 130, 64, 64}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, NULL, NULL},
      {{2, 4, 2, 7, 9, 16, 16}, 0.0f, 1, SEQK_DTYPE_F16, BSHD, NULL, NULL},
      {{2, 4, 4, 7, 9, 16, 8}, 0.0f, 0, SEQK_DTYPE_F16, PADDED, NULL, NULL},
      {{2, 4, 2, 7, 9, 16, 16}, 0.0f, 1, SEQK_DTYPE_BF16, PADDED, NULL, NULL},
      {{2, 3, 1, 5, 5, 12, 20}, 0.0f, 0, SEQK_DTYPE_BF16, BSHD, NULL, NULL},
      /* CUDA grouped path: decode (Sq = 1) with the 4 query heads of a group at the head stride,
         and contiguous groups of 2. */
      {{2, 8, 2, 1, 37, 16, 16}, 0.0f, 0, SEQK_DTYPE_F16, BSHD, NULL, NULL},
      {{2, 6, 3, 5, 9, 8, 8}, 0.0f, 1, SEQK_DTYPE_BF16, CONTIG, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    const attn_run r = run_attention_case(ctx, rng, &cases[i]);
    /* Without empty rows the composition through softmax is defined (no all -inf rows). */
    if (cases[i].dt == SEQK_DTYPE_F32 && (!cases[i].causal || cases[i].d.Sq <= cases[i].d.Sk))
      check_composition(ctx, &cases[i], &r);
  }
}

/* Rows i < Sq - Sk see no key under the bottom-right causal mask: o = 0, lse = +inf. */
static void test_causal_empty_rows(seqk_context_t ctx, th_rng *rng) {
  const attn_case cases[] = {
      {{2, 4, 2, 7, 3, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, PADDED, NULL, NULL},
      {{1, 3, 3, 9, 4, 5, 6}, 0.0f, 1, SEQK_DTYPE_F16, BSHD, NULL, NULL},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    const dims *d = &cases[c].d;
    const attn_run r = run_attention_case(ctx, rng, &cases[c]);
    int ok = 1;
    for (int64_t row = 0; row < d->B * d->H * d->Sq; ++row) {
      const int64_t i = row % d->Sq;
      const int empty = i < d->Sq - d->Sk;
      const double l = th_get(&r.lse, row);
      ok &= empty ? l == INFINITY : isfinite(l);
      for (int64_t e = 0; e < d->Dv; ++e)
        if (empty) ok &= th_get(&r.o, row * d->Dv + e) == 0.0;
    }
    TH_CHECK(ok, "causal Sq > Sk case %zu: empty rows must be o = 0, lse = +inf (others finite)",
             c);
  }
}

/* Sk = 0 (every row empty), Sq = 0 and B = 0 (nothing to write). */
static void test_attention_empty(seqk_context_t ctx, th_rng *rng) {
  const attn_case cases[] = {
      {{2, 4, 2, 3, 0, 8, 5}, 0.0f, 0, SEQK_DTYPE_F32, PADDED, NULL, NULL},
      {{2, 4, 2, 3, 0, 8, 5}, 0.0f, 1, SEQK_DTYPE_BF16, CONTIG, NULL, NULL},
      {{2, 4, 2, 0, 6, 8, 5}, 0.0f, 1, SEQK_DTYPE_F32, CONTIG, NULL, NULL},
      {{0, 4, 2, 3, 6, 8, 5}, 0.0f, 0, SEQK_DTYPE_F32, CONTIG, NULL, NULL},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    const attn_run r = run_attention_case(ctx, rng, &cases[c]);
    if (cases[c].d.Sk == 0) {
      int ok = 1;
      for (int64_t i = 0; i < th_numel(&r.lse); ++i) ok &= th_get(&r.lse, i) == INFINITY;
      for (int64_t i = 0; i < th_numel(&r.o); ++i) ok &= th_get(&r.o, i) == 0.0;
      TH_CHECK(ok, "Sk = 0: every row must be o = 0, lse = +inf");
    }
  }
}

/* With lengths: the result equals running each batch alone on sliced views, rows past the query
   length are 0 / +inf, and padding (NaN) is never read. */
static void test_seqlens(seqk_context_t ctx, th_rng *rng) {
  static const int32_t lq1[3] = {6, 3, 0}, lk1[3] = {8, 5, 2};
  static const int32_t lq2[3] = {5, 6, 2}, lk2[3] = {2, 0, 8}; /* causal Sq_b > Sk_b, Sk_b = 0 */
  static const int32_t lk3[3] = {1, 8, 4};
  const attn_case cases[] = {
      {{3, 4, 2, 6, 8, 8, 8}, 0.0f, 0, SEQK_DTYPE_F32, CONTIG, lq1, lk1},
      {{3, 4, 2, 6, 8, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, lq1, lk1},
      {{3, 4, 2, 6, 8, 8, 5}, 0.0f, 1, SEQK_DTYPE_F32, PADDED, lq2, lk2},
      {{3, 2, 1, 6, 8, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, PADDED, NULL, lk3},
      {{3, 2, 2, 6, 8, 8, 8}, 0.0f, 1, SEQK_DTYPE_F32, BSHD, lq1, NULL},
      {{3, 4, 2, 6, 8, 8, 8}, 0.0f, 1, SEQK_DTYPE_F16, BSHD, lq2, lk2},
  };
  char what[256];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    const attn_case *ac = &cases[c];
    const dims *d = &ac->d;
    const attn_run r = run_attention_case(ctx, rng, ac);
    for (int64_t b = 0; b < d->B; ++b) {
      const int64_t Sq_b = ac->lq ? ac->lq[b] : d->Sq, Sk_b = ac->lk ? ac->lk[b] : d->Sk;
      seqk_tensor qb = th_slice(&r.q, 0, b, 1), kb = th_slice(&r.k, 0, b, 1),
                  vb = th_slice(&r.v, 0, b, 1);
      seqk_tensor ob_full = th_slice(&r.o, 0, b, 1), lb_full = th_slice(&r.lse, 0, b, 1);
      qb = th_slice(&qb, 2, 0, Sq_b);
      kb = th_slice(&kb, 2, 0, Sk_b);
      vb = th_slice(&vb, 2, 0, Sk_b);
      seqk_tensor ob = make4(ac->dt, CONTIG, 1, d->H, Sq_b, d->Dv);
      seqk_tensor lb = make_lse(CONTIG, 1, d->H, Sq_b);
      const seqk_attention_params alone = {
          ac->scale, ac->causal, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0, 0, 0.0f, NULL};
      describe(what, sizeof what, "batch alone", ac);
      if (!th_expect_status(ctx, seqk_attention(ctx, &alone, &qb, &kb, &vb, &ob, &lb),
                            SEQK_STATUS_SUCCESS, NULL, what))
        continue;
      seqk_tensor o_rows = th_slice(&ob_full, 2, 0, Sq_b), l_rows = th_slice(&lb_full, 2, 0, Sq_b);
      describe(what, sizeof what, "lengths: batch b equals running it alone (o)", ac);
      th_check_close(what, &o_rows, th_to_doubles(&ob), th_tol_for(ac->dt));
      describe(what, sizeof what, "lengths: batch b equals running it alone (lse)", ac);
      th_check_close(what, &l_rows, th_to_doubles(&lb), th_tol_for(SEQK_DTYPE_F32));
      /* Rows past the query length. */
      int ok = 1;
      for (int64_t h = 0; h < d->H; ++h)
        for (int64_t i = Sq_b; i < d->Sq; ++i) {
          ok &= th_get(&lb_full, h * d->Sq + i) == INFINITY;
          for (int64_t e = 0; e < d->Dv; ++e)
            ok &= th_get(&ob_full, (h * d->Sq + i) * d->Dv + e) == 0.0;
        }
      TH_CHECK(ok, "lengths case %zu batch %lld: rows past seqlens_q must be o = 0, lse = +inf", c,
               (long long)b);
    }
  }
}

/* params == NULL means scale 1/sqrt(D), not causal, no lengths; algo does not change CPU results. */
static void test_params(seqk_context_t ctx, th_rng *rng) {
  const attn_case c = {{2, 4, 2, 5, 9, 8, 6}, 0.0f, 0, SEQK_DTYPE_F32, PADDED, NULL, NULL};
  const attn_run r = run_attention_case(ctx, rng, &c);
  seqk_tensor o = make4(SEQK_DTYPE_F32, CONTIG, 2, 4, 5, 6);
  seqk_tensor lse = make_lse(CONTIG, 2, 4, 5);
  th_expect_status(ctx, seqk_attention(ctx, NULL, &r.q, &r.k, &r.v, &o, &lse), SEQK_STATUS_SUCCESS,
                   NULL, "params NULL");
  th_check_close("params NULL: o", &o, r.o_ref, th_tol_for(SEQK_DTYPE_F32));
  th_check_close("params NULL: lse", &lse, r.lse_ref, th_tol_for(SEQK_DTYPE_F32));
  const seqk_attention_algo algos[2] = {SEQK_ATTENTION_ALGO_FUSED, SEQK_ATTENTION_ALGO_UNFUSED};
  for (int a = 0; a < 2; ++a) {
    const seqk_attention_params p = {0.0f, 0, algos[a], NULL, NULL, 0, 0, 0, 0.0f, NULL};
    th_poison(&o);
    th_expect_status(ctx, seqk_attention(ctx, &p, &r.q, &r.k, &r.v, &o, NULL), SEQK_STATUS_SUCCESS,
                     NULL, "algo");
    th_check_close(a ? "algo UNFUSED on the CPU" : "algo FUSED on the CPU", &o, r.o_ref,
                   th_tol_for(SEQK_DTYPE_F32));
  }
  /* An lse descriptor with NULL data is absent. */
  seqk_tensor no_lse = lse;
  no_lse.data = NULL;
  th_poison(&o);
  th_expect_status(ctx, seqk_attention(ctx, NULL, &r.q, &r.k, &r.v, &o, &no_lse),
                   SEQK_STATUS_SUCCESS, NULL, "lse with NULL data");
  th_check_close("lse absent (NULL data): o", &o, r.o_ref, th_tol_for(SEQK_DTYPE_F32));
}

/* Inputs that repeat themselves (stride 0): keys shared by every batch (k.stride[0] = 0) are a
   cuBLAS operand as they are (batch stride 0); value rows all at one address (v.stride[2] = 0)
   are not, and take the contiguous-copy path on CUDA (scores, values and attention). */
static void test_broadcast_inputs(seqk_context_t ctx, th_rng *rng) {
  const dims d = {3, 4, 2, 5, 6, 8, 7};
  const attn_case c = {d, 0.0f, 1, SEQK_DTYPE_F32, CONTIG, NULL, NULL};
  attn_run r;
  seqk_tensor k1 = make4(SEQK_DTYPE_F32, CONTIG, 1, d.Hk, d.Sk, d.D);
  seqk_tensor v1 = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.Hk, 1, d.Dv);
  r.q = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.H, d.Sq, d.D);
  r.k = k1;
  r.k.shape[0] = d.B;
  r.k.stride[0] = 0;
  r.v = v1;
  r.v.shape[2] = d.Sk;
  r.v.stride[2] = 0;
  r.o = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.H, d.Sq, d.Dv);
  r.lse = make_lse(CONTIG, d.B, d.H, d.Sq);
  th_fill_normal(&r.q, rng, 1.0);
  th_fill_normal(&k1, rng, 1.0);
  th_fill_normal(&v1, rng, 1.0);
  const double *qd = th_to_doubles(&r.q), *kd = th_to_doubles(&r.k), *vd = th_to_doubles(&r.v);

  seqk_tensor s = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.H, d.Sq, d.Sk);
  th_expect_status(ctx, seqk_attention_scores(ctx, &r.q, &r.k, 0.0f, 1, &s), SEQK_STATUS_SUCCESS,
                   NULL, "scores, k shared by every batch");
  th_check_close("scores, k shared by every batch", &s, ref_scores(&d, qd, kd, 0.0, 1),
                 th_tol_for(SEQK_DTYPE_F32));
  scores_on_device(ctx, "scores, k shared by every batch", &r.q, &r.k, 0.0f, 1, &s);

  seqk_tensor p = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.H, d.Sq, d.Sk);
  seqk_tensor o = make4(SEQK_DTYPE_F32, CONTIG, d.B, d.H, d.Sq, d.Dv);
  th_fill_uniform(&p, rng, 0.0, 1.0);
  th_expect_status(ctx, seqk_attention_values(ctx, &p, &r.v, &o), SEQK_STATUS_SUCCESS, NULL,
                   "values, one value row per head");
  th_check_close("values, one value row per head", &o, ref_values(&d, th_to_doubles(&p), vd),
                 th_tol_for(SEQK_DTYPE_F32));
  values_on_device(ctx, "values, one value row per head", &p, &r.v, &o);

  const seqk_attention_params params = {0.0f, 1,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                        0,    0.0f, NULL};
  th_expect_status(ctx, seqk_attention(ctx, &params, &r.q, &r.k, &r.v, &r.o, &r.lse),
                   SEQK_STATUS_SUCCESS, NULL, "attention with broadcast k and v");
  double *o_ref = dalloc(th_numel(&r.o)), *lse_ref = dalloc(th_numel(&r.lse));
  ref_attention(&d, qd, kd, vd, 0.0, 1, NULL, NULL, o_ref, lse_ref);
  th_check_close("attention with broadcast k and v: o", &r.o, o_ref, th_tol_for(SEQK_DTYPE_F32));
  th_check_close("attention with broadcast k and v: lse", &r.lse, lse_ref,
                 th_tol_for(SEQK_DTYPE_F32));
  r.o_ref = o_ref;
  r.lse_ref = lse_ref;
  attention_on_device(ctx, &c, &r);
}

/* ---- merge ----------------------------------------------------------------------------------- */

/* attention over all keys == merge(attention over keys [0, split), attention over the rest). */
static void test_merge_split_kv(seqk_context_t ctx, th_rng *rng) {
  const dims d = {2, 4, 2, 5, 11, 8, 6};
  const int64_t splits[4] = {0, 1, 4, 11};
  const seqk_dtype dts[2] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16};
  char what[128];
  for (int t = 0; t < 2; ++t) {
    const seqk_dtype dt = dts[t];
    seqk_tensor q = make4(dt, BSHD, d.B, d.H, d.Sq, d.D),
                k = make4(dt, PADDED, d.B, d.Hk, d.Sk, d.D);
    seqk_tensor v = make4(dt, BSHD, d.B, d.Hk, d.Sk, d.Dv);
    th_fill_normal(&q, rng, 1.0);
    th_fill_normal(&k, rng, 1.0);
    th_fill_normal(&v, rng, 1.0);
    double *o_ref = dalloc(d.B * d.H * d.Sq * d.Dv), *lse_ref = dalloc(d.B * d.H * d.Sq);
    ref_attention(&d, th_to_doubles(&q), th_to_doubles(&k), th_to_doubles(&v), 0.0, 0, NULL, NULL,
                  o_ref, lse_ref);
    for (int s = 0; s < 4; ++s) {
      const int64_t n1 = splits[s], n2 = d.Sk - n1;
      seqk_tensor k1 = th_slice(&k, 2, 0, n1), v1 = th_slice(&v, 2, 0, n1);
      seqk_tensor k2 = th_slice(&k, 2, n1, n2), v2 = th_slice(&v, 2, n1, n2);
      seqk_tensor o1 = make4(dt, CONTIG, d.B, d.H, d.Sq, d.Dv),
                  l1 = make_lse(CONTIG, d.B, d.H, d.Sq);
      seqk_tensor o2 = make4(dt, PADDED, d.B, d.H, d.Sq, d.Dv),
                  l2 = make_lse(PADDED, d.B, d.H, d.Sq);
      seqk_tensor o = make4(dt, BSHD, d.B, d.H, d.Sq, d.Dv), l = make_lse(PADDED, d.B, d.H, d.Sq);
      seqk_status st = seqk_attention(ctx, NULL, &q, &k1, &v1, &o1, &l1);
      if (st == SEQK_STATUS_SUCCESS) st = seqk_attention(ctx, NULL, &q, &k2, &v2, &o2, &l2);
      if (st == SEQK_STATUS_SUCCESS) st = seqk_attention_merge(ctx, &o1, &l1, &o2, &l2, &o, &l);
      snprintf(what, sizeof what, "split-KV merge at %lld of %lld keys (%s)", (long long)n1,
               (long long)d.Sk, dtype_str(dt));
      if (!th_expect_status(ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) continue;
      /* Each part is rounded once to dt, so the merged result carries about two roundings. */
      th_check_close(what, &o, o_ref, th_tol_scaled(dt, dt == SEQK_DTYPE_F32 ? 4 : 2));
      th_check_close(what, &l, lse_ref, th_tol_scaled(SEQK_DTYPE_F32, 4));
      merge_on_device(ctx, what, &o1, &l1, &o2, &l2, &o, &l);
    }
  }
}

/* ---- bad input -------------------------------------------------------------------------------- */

/* One rejected call: INVALID_VALUE, a message naming `needle`, and the guarded memory (snapshots
   of the outputs, or of the buffer the tensors live in) byte-for-byte unchanged. */
#define EXPECT_BAD(call, needle, what, ...)                                                        \
  th_expect_rejected(ctx, call, SEQK_STATUS_INVALID_VALUE, needle, what, TH_SNAPS(__VA_ARGS__))

static void test_bad_scores(seqk_context_t ctx, th_rng *rng) {
  seqk_tensor q = make4(SEQK_DTYPE_F32, CONTIG, 2, 6, 3, 4),
              k = make4(SEQK_DTYPE_F32, CONTIG, 2, 2, 5, 4);
  seqk_tensor s = make4(SEQK_DTYPE_F32, CONTIG, 2, 6, 3, 5);
  th_fill_normal(&q, rng, 1.0);
  th_fill_normal(&k, rng, 1.0);
  const th_snapshot g = th_snapshot_take(&s);
  seqk_tensor t;
  TH_CHECK(seqk_attention_scores(NULL, &q, &k, 0.0f, 0, &s) == SEQK_STATUS_INVALID_VALUE,
           "scores: NULL ctx");
  EXPECT_BAD(seqk_attention_scores(ctx, NULL, &k, 0.0f, 0, &s), "q", "scores: NULL q", g);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, NULL, 0.0f, 0, &s), "k", "scores: NULL k", g);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, NULL), "s", "scores: NULL s", g);
  t = q;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_scores(ctx, &t, &k, 0.0f, 0, &s), "q", "scores: q data NULL", g);
  t = k;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: k data NULL", g);
  t = s;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s data NULL", g);
  t = q;
  t.ndim = 3;
  EXPECT_BAD(seqk_attention_scores(ctx, &t, &k, 0.0f, 0, &s), "q", "scores: q ndim 3", g);
  t = k;
  t.ndim = 5;
  t.shape[4] = 1;
  t.stride[4] = 1;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: k ndim 5", g);
  t = k;
  t.shape[0] = 1;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: B mismatch", g);
  t = k;
  t.shape[3] = 3;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: D mismatch", g);
  t = k;
  t.shape[1] = 4;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "Hk", "scores: H % Hk != 0", g);
  t = k;
  t.shape[1] = 0;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "Hk", "scores: Hk = 0", g);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, NAN, 0, &s), "scale", "scores: NaN scale", g);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, INFINITY, 0, &s), "scale", "scores: inf scale", g);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, -INFINITY, 0, &s), "scale", "scores: -inf scale",
             g);
  t = s;
  t.shape[3] = 4;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s.shape[3] != Sk", g);
  t = s;
  t.shape[1] = 2;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s.shape[1] != H", g);
  t = s;
  t.dtype = SEQK_DTYPE_F16;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s dtype", g);
  t = k;
  t.dtype = SEQK_DTYPE_BF16;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: k dtype", g);
  t = q;
  t.dtype = SEQK_DTYPE_I32;
  EXPECT_BAD(seqk_attention_scores(ctx, &t, &k, 0.0f, 0, &s), "q", "scores: I32 q", g);
  t = s;
  t.device = SEQK_DEVICE_CUDA;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s on CUDA", g);
  t = k;
  t.device = SEQK_DEVICE_CUDA;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &t, 0.0f, 0, &s), "k", "scores: k on CUDA", g);
  t = s;
  t.stride[2] = 0;
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &t), "s", "scores: s elements overlap", g);
  /* s sharing memory with q or k, all inside one buffer. */
  const int64_t bs[1] = {600};
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 1, bs);
  th_fill_normal(&buf, rng, 1.0);
  const th_snapshot gb = th_snapshot_take(&buf);
  float *base = (float *)buf.data;
  seqk_tensor qb = seqk_tensor_view(base, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, q.shape);
  seqk_tensor kb = seqk_tensor_view(base + 144, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, k.shape);
  seqk_tensor sb = seqk_tensor_view(base + 100, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, s.shape);
  EXPECT_BAD(seqk_attention_scores(ctx, &qb, &k, 0.0f, 0, &sb), "q", "scores: s overlaps q", gb);
  EXPECT_BAD(seqk_attention_scores(ctx, &q, &kb, 0.0f, 0, &sb), "k", "scores: s overlaps k", gb);
}

static void test_bad_values(seqk_context_t ctx, th_rng *rng) {
  seqk_tensor p = make4(SEQK_DTYPE_F32, CONTIG, 2, 6, 3, 5),
              v = make4(SEQK_DTYPE_F32, CONTIG, 2, 3, 5, 4);
  seqk_tensor o = make4(SEQK_DTYPE_F32, CONTIG, 2, 6, 3, 4);
  th_fill_uniform(&p, rng, 0.0, 1.0);
  th_fill_normal(&v, rng, 1.0);
  const th_snapshot g = th_snapshot_take(&o);
  seqk_tensor t;
  TH_CHECK(seqk_attention_values(NULL, &p, &v, &o) == SEQK_STATUS_INVALID_VALUE,
           "values: NULL ctx");
  EXPECT_BAD(seqk_attention_values(ctx, NULL, &v, &o), "p", "values: NULL p", g);
  EXPECT_BAD(seqk_attention_values(ctx, &p, NULL, &o), "v", "values: NULL v", g);
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, NULL), "o", "values: NULL o", g);
  t = p;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_values(ctx, &t, &v, &o), "p", "values: p data NULL", g);
  t = v;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &t, &o), "v", "values: v data NULL", g);
  t = o;
  t.data = NULL;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o data NULL", g);
  t = p;
  t.ndim = 3;
  EXPECT_BAD(seqk_attention_values(ctx, &t, &v, &o), "p", "values: p ndim 3", g);
  t = o;
  t.ndim = 3;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o ndim 3", g);
  t = v;
  t.shape[0] = 1;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &t, &o), "v", "values: B mismatch", g);
  t = v;
  t.shape[2] = 4;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &t, &o), "v", "values: Sk mismatch", g);
  t = v;
  t.shape[1] = 4;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &t, &o), "Hk", "values: H % Hk != 0", g);
  t = o;
  t.shape[3] = 3;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o.shape[3] != Dv", g);
  t = o;
  t.shape[2] = 2;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o.shape[2] != Sq", g);
  t = v;
  t.dtype = SEQK_DTYPE_F16;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &t, &o), "v", "values: v dtype", g);
  t = o;
  t.device = SEQK_DEVICE_CUDA;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o on CUDA", g);
  t = p;
  t.device = SEQK_DEVICE_CUDA;
  EXPECT_BAD(seqk_attention_values(ctx, &t, &v, &o), "p", "values: p on CUDA", g);
  t = o;
  t.stride[3] = 0;
  EXPECT_BAD(seqk_attention_values(ctx, &p, &v, &t), "o", "values: o elements overlap", g);
  /* o sharing memory with p or v, all inside one buffer. */
  const int64_t bs[1] = {600};
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 1, bs);
  th_fill_normal(&buf, rng, 1.0);
  const th_snapshot gb = th_snapshot_take(&buf);
  float *base = (float *)buf.data;
  seqk_tensor pb = seqk_tensor_view(base, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, p.shape);
  seqk_tensor vb = seqk_tensor_view(base + 180, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, v.shape);
  seqk_tensor ob = seqk_tensor_view(base + 170, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, o.shape);
  EXPECT_BAD(seqk_attention_values(ctx, &pb, &v, &ob), "p", "values: o overlaps p", gb);
  EXPECT_BAD(seqk_attention_values(ctx, &p, &vb, &ob), "v", "values: o overlaps v", gb);
}

static void test_bad_attention(seqk_context_t ctx, th_rng *rng) {
  /* B=3, H=6, Hk=2, Sq=4, Sk=5, D=8, Dv=3 */
  seqk_tensor q = make4(SEQK_DTYPE_F32, BSHD, 3, 6, 4, 8),
              k = make4(SEQK_DTYPE_F32, CONTIG, 3, 2, 5, 8);
  seqk_tensor v = make4(SEQK_DTYPE_F32, CONTIG, 3, 2, 5, 3),
              o = make4(SEQK_DTYPE_F32, CONTIG, 3, 6, 4, 3);
  seqk_tensor lse = make_lse(CONTIG, 3, 6, 4);
  th_fill_normal(&q, rng, 1.0);
  th_fill_normal(&k, rng, 1.0);
  th_fill_normal(&v, rng, 1.0);
  const int32_t lq_ok[3] = {4, 0, 2}, lk_ok[3] = {5, 1, 0};
  const int32_t lq_bad[3] = {4, 0, 5}, lk_bad[3] = {5, -1, 0};
  seqk_attention_params pr = {0.0f, 1, SEQK_ATTENTION_ALGO_AUTO, lq_ok, lk_ok, 0, 0, 0, 0.0f, NULL};
  seqk_tensor t;
#define ATT(P, Q, K, V, O, L)   seqk_attention(ctx, P, Q, K, V, O, L)
#define BAD(call, needle, what) EXPECT_BAD(call, needle, what, go, gl)
  /* A valid call first, so that every rejection below is caused by the one change it makes. */
  th_expect_status(ctx, ATT(&pr, &q, &k, &v, &o, &lse), SEQK_STATUS_SUCCESS, NULL,
                   "attention: baseline");
  th_poison(&o);
  th_poison(&lse);
  const th_snapshot go = th_snapshot_take(&o), gl = th_snapshot_take(&lse);

  TH_CHECK(seqk_attention(NULL, &pr, &q, &k, &v, &o, &lse) == SEQK_STATUS_INVALID_VALUE,
           "attention: NULL ctx");
  BAD(ATT(&pr, NULL, &k, &v, &o, &lse), "q", "attention: NULL q");
  BAD(ATT(&pr, &q, NULL, &v, &o, &lse), "k", "attention: NULL k");
  BAD(ATT(&pr, &q, &k, NULL, &o, &lse), "v", "attention: NULL v");
  BAD(ATT(&pr, &q, &k, &v, NULL, &lse), "o", "attention: NULL o");
  t = q;
  t.data = NULL;
  BAD(ATT(&pr, &t, &k, &v, &o, &lse), "q", "attention: q data NULL");
  t = v;
  t.data = NULL;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v data NULL");
  t = o;
  t.data = NULL;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o data NULL");
  t = q;
  t.ndim = 3;
  BAD(ATT(&pr, &t, &k, &v, &o, &lse), "q", "attention: q ndim 3");
  t = v;
  t.ndim = 5;
  t.shape[4] = 1;
  t.stride[4] = 1;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v ndim 5");
  /* Last dims with stride 2 (valid for scores/values, not for attention). */
  seqk_tensor q2 = make4(SEQK_DTYPE_F32, SPREAD, 3, 6, 4, 8),
              k2 = make4(SEQK_DTYPE_F32, SPREAD, 3, 2, 5, 8);
  seqk_tensor v2 = make4(SEQK_DTYPE_F32, SPREAD, 3, 2, 5, 3),
              o2 = make4(SEQK_DTYPE_F32, SPREAD, 3, 6, 4, 3);
  th_fill_normal(&q2, rng, 1.0);
  th_fill_normal(&k2, rng, 1.0);
  th_fill_normal(&v2, rng, 1.0);
  const th_snapshot go2 = th_snapshot_take(&o2);
  BAD(ATT(&pr, &q2, &k, &v, &o, &lse), "q.stride[3]", "attention: q last dim not contiguous");
  BAD(ATT(&pr, &q, &k2, &v, &o, &lse), "k.stride[3]", "attention: k last dim not contiguous");
  BAD(ATT(&pr, &q, &k, &v2, &o, &lse), "v.stride[3]", "attention: v last dim not contiguous");
  EXPECT_BAD(ATT(&pr, &q, &k, &v, &o2, &lse), "o.stride[3]", "attention: o last dim not contiguous",
             go2, gl);
  seqk_tensor k4, o4;
  t = q;
  t.shape[3] = 0;
  k4 = k;
  k4.shape[3] = 0;
  BAD(ATT(&pr, &t, &k4, &v, &o, &lse), "q.shape[3]", "attention: D = 0");
  t = v;
  t.shape[3] = 0;
  o4 = o;
  o4.shape[3] = 0;
  BAD(ATT(&pr, &q, &k, &t, &o4, &lse), "v.shape[3]", "attention: Dv = 0");
  t = k;
  t.shape[0] = 2;
  BAD(ATT(&pr, &q, &t, &v, &o, &lse), "k", "attention: k batch mismatch");
  t = k;
  t.shape[3] = 7;
  BAD(ATT(&pr, &q, &t, &v, &o, &lse), "k", "attention: D mismatch");
  t = k;
  t.shape[1] = 4;
  seqk_tensor v4 = v;
  v4.shape[1] = 4;
  BAD(ATT(&pr, &q, &t, &v4, &o, &lse), "Hk", "attention: H % Hk != 0");
  t = v;
  t.shape[0] = 1;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v batch mismatch");
  t = v;
  t.shape[1] = 1;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v heads != Hk");
  t = v;
  t.shape[2] = 4;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v Sk mismatch");
  t = o;
  t.shape[3] = 2;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o.shape[3] != Dv");
  t = o;
  t.shape[2] = 3;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o.shape[2] != Sq");
  t = v;
  t.dtype = SEQK_DTYPE_F16;
  BAD(ATT(&pr, &q, &k, &t, &o, &lse), "v", "attention: v dtype");
  t = o;
  t.dtype = SEQK_DTYPE_BF16;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o dtype");
  t = lse;
  t.dtype = SEQK_DTYPE_F16;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse F16");
  t = lse;
  t.dtype = SEQK_DTYPE_I32;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse I32");
  t = lse;
  t.shape[2] = 3;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse shape");
  t = lse;
  t.ndim = 4;
  t.shape[3] = 1;
  t.stride[3] = 1;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse ndim 4");
  t = lse;
  t.stride[1] = 0;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse elements overlap");
  t = o;
  t.device = SEQK_DEVICE_CUDA;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o on CUDA");
  t = k;
  t.device = SEQK_DEVICE_CUDA;
  BAD(ATT(&pr, &q, &t, &v, &o, &lse), "k", "attention: k on CUDA");
  t = lse;
  t.device = SEQK_DEVICE_CUDA;
  BAD(ATT(&pr, &q, &k, &v, &o, &t), "lse", "attention: lse on CUDA");
  t = o;
  t.stride[2] = 0;
  BAD(ATT(&pr, &q, &k, &v, &t, &lse), "o", "attention: o elements overlap");

  seqk_attention_params bad = pr;
  bad.scale = NAN;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "scale", "attention: NaN scale");
  bad.scale = -INFINITY;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "scale", "attention: -inf scale");
  bad = pr;
  bad.algo = (seqk_attention_algo)7;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "algo", "attention: algo 7");
  bad.algo = (seqk_attention_algo)-1;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "algo", "attention: algo -1");
  bad = pr;
  bad.seqlens_q = lq_bad;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "seqlens_q[2]", "attention: seqlens_q[2] > Sq");
  bad = pr;
  bad.seqlens_k = lk_bad;
  BAD(ATT(&bad, &q, &k, &v, &o, &lse), "seqlens_k[1]", "attention: seqlens_k[1] < 0");
  bad.seqlens_q = NULL;
  BAD(ATT(&bad, &q, &k, &v, &o, NULL), "seqlens_k[1]", "attention: seqlens_k[1] < 0, no lse");

  /* Outputs overlapping inputs or each other. */
  seqk_tensor oq = o;
  oq.data = (float *)q.data + 5;
  const th_snapshot gq = th_snapshot_take(&q);
  EXPECT_BAD(ATT(&pr, &q, &k, &v, &oq, &lse), "q", "attention: o overlaps q", gq, gl);
  seqk_tensor ov = o;
  ov.shape[0] = 1;
  ov.data = v.data;
  seqk_tensor q1 = th_slice(&q, 0, 0, 1), k1 = th_slice(&k, 0, 0, 1), v1 = th_slice(&v, 0, 0, 1);
  const th_snapshot gv = th_snapshot_take(&v);
  EXPECT_BAD(ATT(&pr, &q1, &k1, &v1, &ov, NULL), "v", "attention: o overlaps v", gv);
  seqk_tensor lo = lse;
  lo.data = (float *)o.data + 1;
  lo.shape[0] = 1;
  lo.shape[1] = 1;
  lo.shape[2] = 2;
  seqk_tensor o1 = th_slice(&o, 0, 0, 1);
  o1.shape[1] = 1;
  o1.shape[2] = 2;
  seqk_tensor q11 = th_slice(&q1, 1, 0, 1), k11 = th_slice(&k1, 1, 0, 1),
              v11 = th_slice(&v1, 1, 0, 1);
  q11 = th_slice(&q11, 2, 0, 2);
  EXPECT_BAD(ATT(NULL, &q11, &k11, &v11, &o1, &lo), "lse", "attention: lse overlaps o", go);
  seqk_tensor lk = lse;
  lk.data = k.data;
  const th_snapshot gk = th_snapshot_take(&k);
  EXPECT_BAD(ATT(&pr, &q, &k, &v, &o, &lk), "lse", "attention: lse overlaps k", go, gk);
#undef BAD
#undef ATT
}

#undef EXPECT_BAD

int main(void) {
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 2);
  test_seed_self_attention(ctx);
  test_scores(ctx, &rng);
  test_values(ctx, &rng);
  test_attention_cases(ctx, &rng);
  test_causal_empty_rows(ctx, &rng);
  test_attention_empty(ctx, &rng);
  test_seqlens(ctx, &rng);
  test_params(ctx, &rng);
  test_broadcast_inputs(ctx, &rng);
  test_merge_split_kv(ctx, &rng);
  test_bad_scores(ctx, &rng);
  test_bad_values(ctx, &rng);
  test_bad_attention(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
