/*
 * test_mha.c - seqk_mha_forward (nn.MultiheadAttention) on the CPU, and on CUDA tensors against it.
 *
 * mha:       against a double reference in this file, and the identity
 *            MHA == linear x3 -> split_heads -> attention -> merge_heads -> linear through the
 *            public API; attn_weights against the head average of attention_scores + softmax.
 * bad input: every argument.
 * options:   seqk_mha_forward_ex: sequence-first tensors, per-head weights, key_lengths (a batch
 *            with none), key_padding_mask (a batch masked whole: NaN rows), both, causal, self,
 *            against the double reference with those masks; bad options.
 */
#include "harness.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_float_dtypes[] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
#define N_FLOAT_DTYPES ((int)(sizeof k_float_dtypes / sizeof k_float_dtypes[0]))

/* ---- multi-head attention ------------------------------------------------------------------- */

typedef struct mha_case {
  const char *name;
  int64_t B, Sq, Sk, E;
  int32_t H, causal;
  int in_bias, out_bias, want_weights, strided;
  int self_attention; /* query, key and value are one tensor (Sq == Sk) */
  int identity;       /* also check the unfused public-API path */
} mha_case;

/* Keys query i sees: 0 .. visible-1. */
static int64_t visible_keys(int64_t i, int64_t Sq, int64_t Sk, int causal) {
  if (!causal) return Sk;
  int64_t n = i + Sk - Sq + 1;
  return n < 0 ? 0 : n > Sk ? Sk : n;
}

/* out [B,Sq,E] and the head-averaged probabilities [B,Sq,Sk] in double, computed the long way:
   whole projected Q/K/V first, then per (b, h) the full masked score matrix. With lens, keys
   j >= lens[b] are padding (causal aligned bottom-right against lens[b]); a row left with no key
   is all zero. With mask [B,Sk], a nonzero entry makes that key's score -inf: a row whose keys
   are all masked is NaN, as torch. heads: optional per-head probabilities [B,H,Sq,Sk]. */
static void mha_expected_ex(const mha_case *c, const seqk_tensor *query, const seqk_tensor *key,
                            const seqk_tensor *value, const seqk_mha_weights *w,
                            const int32_t *lens, const int32_t *mask, double *out, double *probs,
                            double *heads) {
  const int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, E = c->E, H = c->H, hd = E / H;
  const double *qd = th_to_doubles(query), *kd = th_to_doubles(key), *vd = th_to_doubles(value);
  const double *wi = th_to_doubles(&w->in_proj_weight), *wo = th_to_doubles(&w->out_proj_weight);
  const double *bi = c->in_bias ? th_to_doubles(&w->in_proj_bias) : NULL;
  const double *bo = c->out_bias ? th_to_doubles(&w->out_proj_bias) : NULL;
  double *Q = th_alloc((size_t)(B * Sq * E + 1) * sizeof(double));
  double *K = th_alloc((size_t)(B * Sk * E + 1) * sizeof(double));
  double *V = th_alloc((size_t)(B * Sk * E + 1) * sizeof(double));
  double *cat = th_alloc((size_t)(B * Sq * E + 1) * sizeof(double));
  double *s = th_alloc((size_t)(Sq * Sk + 1) * sizeof(double));

  struct {
    const double *src;
    double *dst;
    int64_t rows, block;
  } proj[3] = {{qd, Q, B * Sq, 0}, {kd, K, B * Sk, 1}, {vd, V, B * Sk, 2}};
  for (int m = 0; m < 3; ++m)
    for (int64_t r = 0; r < proj[m].rows; ++r)
      for (int64_t o = 0; o < E; ++o) {
        const int64_t wrow = proj[m].block * E + o;
        double acc = bi ? bi[wrow] : 0.0;
        for (int64_t ci = 0; ci < E; ++ci) acc += proj[m].src[r * E + ci] * wi[wrow * E + ci];
        proj[m].dst[r * E + o] = acc;
      }

  for (int64_t i = 0; i < B * Sq * Sk; ++i) probs[i] = 0.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t len = lens ? (lens[b] < 0 ? 0 : lens[b] > Sk ? Sk : lens[b]) : Sk;
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < Sk; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < hd; ++d)
            dot += Q[(b * Sq + i) * E + h * hd + d] * K[(b * Sk + j) * E + h * hd + d];
          s[i * Sk + j] =
              j < visible_keys(i, Sq, len, c->causal) ? dot / sqrt((double)hd) : -INFINITY;
        }
      for (int64_t i = 0; i < Sq; ++i) {
        const int64_t vis = visible_keys(i, Sq, len, c->causal);
        double *row = s + i * Sk, max = -INFINITY, denom = 0.0;
        for (int64_t j = 0; j < vis; ++j)
          if (mask && mask[b * Sk + j] != 0) row[j] = -INFINITY;
        for (int64_t j = 0; j < Sk; ++j) max = fmax(max, row[j]);
        /* No key: all zero. Visible keys all masked: the whole row NaN, as torch. */
        const int all_masked = vis > 0 && max == -INFINITY;
        for (int64_t j = 0; j < Sk; ++j) {
          row[j] = vis == 0 || (row[j] == -INFINITY && !all_masked) ? 0.0 : exp(row[j] - max);
          denom += row[j];
        }
        for (int64_t j = 0; j < Sk; ++j) {
          row[j] = all_masked ? NAN : vis == 0 ? 0.0 : row[j] / denom;
          probs[(b * Sq + i) * Sk + j] += row[j] / (double)H;
          if (heads) heads[((b * H + h) * Sq + i) * Sk + j] = row[j];
        }
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < Sk; ++j) acc += row[j] * V[(b * Sk + j) * E + h * hd + d];
          cat[(b * Sq + i) * E + h * hd + d] = acc;
        }
      }
    }

  for (int64_t r = 0; r < B * Sq; ++r)
    for (int64_t o = 0; o < E; ++o) {
      double acc = bo ? bo[o] : 0.0;
      for (int64_t ci = 0; ci < E; ++ci) acc += cat[r * E + ci] * wo[o * E + ci];
      out[r * E + o] = acc;
    }
}

static void mha_expected(const mha_case *c, const seqk_tensor *query, const seqk_tensor *key,
                         const seqk_tensor *value, const seqk_mha_weights *w, double *out,
                         double *probs) {
  mha_expected_ex(c, query, key, value, w, NULL, NULL, out, probs, NULL);
}

/* A row block [row0, row0+rows) of a weight matrix or bias vector, as a view. */
static seqk_tensor row_block(const seqk_tensor *t, int64_t row0, int64_t rows) {
  seqk_tensor v = *t;
  v.data = (char *)t->data + row0 * t->stride[0] * (int64_t)seqk_dtype_size(t->dtype);
  v.shape[0] = rows;
  return v;
}

/* out (and the weights) again through the public ops, each step rounding to dt:
   linear x3 -> split_heads -> attention -> merge_heads -> linear; the head-averaged
   probabilities through attention_scores -> softmax. */
static void mha_identity(const mha_case *c, seqk_dtype dt, const seqk_tensor *query,
                         const seqk_tensor *key, const seqk_tensor *value,
                         const seqk_mha_weights *w, const seqk_tensor *out,
                         const seqk_tensor *attn_weights, const char *what) {
  const int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, E = c->E, H = c->H, hd = E / H;
  const int64_t lq_shape[3] = {B, Sq, E}, lk_shape[3] = {B, Sk, E};
  const int64_t sq_shape[4] = {B, H, Sq, hd}, sk_shape[4] = {B, H, Sk, hd};
  const int64_t s_shape[4] = {B, H, Sq, Sk};
  seqk_tensor lin[3] = {th_tensor_new(dt, 3, lq_shape), th_tensor_new(dt, 3, lk_shape),
                        th_tensor_new(dt, 3, lk_shape)};
  seqk_tensor split[3] = {th_tensor_new(dt, 4, sq_shape), th_tensor_new(dt, 4, sk_shape),
                          th_tensor_new(dt, 4, sk_shape)};
  const seqk_tensor *src[3] = {query, key, value};
  seqk_tensor o = th_tensor_new(dt, 4, sq_shape), merged = th_tensor_new(dt, 3, lq_shape);
  seqk_tensor out2 = th_tensor_new(dt, 3, lq_shape);
  int ok = 1;

  for (int m = 0; m < 3; ++m) {
    seqk_tensor wm = row_block(&w->in_proj_weight, m * E, E);
    seqk_tensor bm = c->in_bias ? row_block(&w->in_proj_bias, m * E, E) : w->in_proj_bias;
    ok &= th_expect_status(g_ctx, seqk_linear(g_ctx, src[m], &wm, &bm, &lin[m]),
                           SEQK_STATUS_SUCCESS, NULL, what);
    ok &= th_expect_status(g_ctx, seqk_split_heads(g_ctx, &lin[m], c->H, &split[m]),
                           SEQK_STATUS_SUCCESS, NULL, what);
  }
  seqk_attention_params params = {0};
  params.causal = c->causal;
  ok &= th_expect_status(g_ctx,
                         seqk_attention(g_ctx, &params, &split[0], &split[1], &split[2], &o, NULL),
                         SEQK_STATUS_SUCCESS, NULL, what);
  ok &= th_expect_status(g_ctx, seqk_merge_heads(g_ctx, &o, &merged), SEQK_STATUS_SUCCESS, NULL,
                         what);
  ok &= th_expect_status(g_ctx,
                         seqk_linear(g_ctx, &merged, &w->out_proj_weight, &w->out_proj_bias, &out2),
                         SEQK_STATUS_SUCCESS, NULL, what);
  if (!ok) return;

  /* The unfused path rounds to dt after each of its four steps where mha_forward rounds once;
     measured, both stay within one rounding's bound of each other, so 4x (8x for the 16-bit
     types, whose rounded probabilities feed the value sum) leaves room without hiding a bug. */
  const th_tol tol = th_tol_scaled(dt, dt == SEQK_DTYPE_F32 ? 4.0 : 8.0);
  char label[192];
  snprintf(label, sizeof label, "%s: identity out", what);
  TH_CHECK(th_check_close(label, out, th_to_doubles(&out2), tol),
           "%s: mha_forward differs from linear -> split -> attention -> merge -> linear", what);

  if (!attn_weights) return;
  seqk_tensor s = th_tensor_new(dt, 4, s_shape);
  ok &= th_expect_status(g_ctx,
                         seqk_attention_scores(g_ctx, &split[0], &split[1], 0.0f, c->causal, &s),
                         SEQK_STATUS_SUCCESS, NULL, what);
  ok &= th_expect_status(g_ctx, seqk_softmax(g_ctx, &s, -1, &s), SEQK_STATUS_SUCCESS, NULL, what);
  if (!ok) return;
  double *avg = th_alloc((size_t)(B * Sq * Sk + 1) * sizeof(double));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Sq; ++i)
      for (int64_t j = 0; j < Sk; ++j) {
        double acc = 0.0;
        /* A row with no visible key is all -inf, so softmax gives NaN there (as torch);
           mha_forward defines that row as 0. */
        if (visible_keys(i, Sq, Sk, c->causal) > 0)
          for (int64_t h = 0; h < H; ++h)
            acc += th_get(&s, ((b * H + h) * Sq + i) * Sk + j) / (double)H;
        avg[(b * Sq + i) * Sk + j] = acc;
      }
  snprintf(label, sizeof label, "%s: identity attn_weights", what);
  TH_CHECK(th_check_close(label, attn_weights, avg, tol),
           "%s: attn_weights differ from the head mean of attention_scores + softmax", what);
}

static seqk_status mha_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const mha_case *c = (const mha_case *)user;
  const seqk_mha_weights w = {in[3], in[4], in[5], in[6]};
  return seqk_mha_forward(ctx, &w, c->H, c->causal, &in[0], &in[1], &in[2], &out[0], &out[1]);
}

/* out and attn_weights (NULL: not asked for) again on CUDA tensors. A CUDA implementation may
   keep the projections and the attention output in the dtype between its steps where the
   reference rounds once, like the unfused identity in mha_identity, so it gets that identity's
   allowance: 4x the bound for f32, 8x for the 16-bit types (TH_DEVICE_TOL times 1 or 2). */
static void mha_on_device(const mha_case *c, seqk_dtype dt, const char *what,
                          const seqk_tensor *query, const seqk_tensor *key,
                          const seqk_tensor *value, const seqk_mha_weights *w,
                          const seqk_tensor *out, const seqk_tensor *attn_weights) {
  const seqk_tensor in[7] = {
      *query,          *key, *value, w->in_proj_weight, w->in_proj_bias, w->out_proj_weight,
      w->out_proj_bias};
  const seqk_tensor outs[2] = {*out, attn_weights ? *attn_weights : th_absent(*out)};
  th_check_on_device(g_ctx, what, mha_op, (void *)c, in, 7, 0, outs, 2,
                     dt == SEQK_DTYPE_F32 ? 1.0 : 2.0);
}

/* Random inputs and weights (key and value are query's memory for self-attention). A weight scale
   ~1/sqrt(E) keeps the projections O(1) and the scores spread over a few units, so the softmax is
   far from uniform and far from one-hot. */
static void fill_mha(seqk_tensor *query, seqk_tensor *key, seqk_tensor *value, seqk_mha_weights *w,
                     int self, int64_t E) {
  const double ws = 1.5 / sqrt((double)E);
  th_fill_uniform(query, &g_rng, -2.0, 2.0);
  if (!self) {
    th_fill_uniform(key, &g_rng, -2.0, 2.0);
    th_fill_uniform(value, &g_rng, -2.0, 2.0);
  }
  th_fill_uniform(&w->in_proj_weight, &g_rng, -ws, ws);
  th_fill_uniform(&w->in_proj_bias, &g_rng, -0.5, 0.5);
  th_fill_uniform(&w->out_proj_weight, &g_rng, -ws, ws);
  th_fill_uniform(&w->out_proj_bias, &g_rng, -0.5, 0.5);
}

static void run_mha_case(const mha_case *c, seqk_dtype dt) {
  const int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, E = c->E;
  const int64_t q_shape[3] = {B, Sq, E}, kv_shape[3] = {B, Sk, E};
  const int64_t wi_shape[2] = {3 * E, E}, bi_shape[1] = {3 * E};
  const int64_t wo_shape[2] = {E, E}, bo_shape[1] = {E}, aw_shape[3] = {B, Sq, Sk};
  char what[128];
  snprintf(what, sizeof what, "mha %s %s", c->name, th_dtype_name(dt));

  seqk_tensor query = th_tensor_maybe_strided(dt, 3, q_shape, c->strided);
  seqk_tensor key =
      c->self_attention ? query : th_tensor_maybe_strided(dt, 3, kv_shape, c->strided);
  seqk_tensor value = c->self_attention ? query : th_tensor_maybe_strided(dt, 3, kv_shape, 0);
  seqk_mha_weights w;
  w.in_proj_weight = th_tensor_maybe_strided(dt, 2, wi_shape, c->strided);
  w.in_proj_bias = th_tensor_maybe_strided(dt, 1, bi_shape, 0);
  w.out_proj_weight = th_tensor_maybe_strided(dt, 2, wo_shape, 0);
  w.out_proj_bias = th_tensor_maybe_strided(dt, 1, bo_shape, c->strided);
  seqk_tensor out = th_tensor_maybe_strided(dt, 3, q_shape, c->strided);
  seqk_tensor attn = th_tensor_maybe_strided(dt, 3, aw_shape, c->strided);

  fill_mha(&query, &key, &value, &w, c->self_attention, E);
  th_poison(&out);
  th_poison(&attn);
  /* Absent biases: NULL data, any other field ignored. */
  if (!c->in_bias) {
    w.in_proj_bias.data = NULL;
    w.in_proj_bias.shape[0] = 1;
  }
  if (!c->out_bias) w.out_proj_bias.data = NULL;

  seqk_status st = seqk_mha_forward(g_ctx, &w, c->H, c->causal, &query, &key, &value, &out,
                                    c->want_weights ? &attn : NULL);
  if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) return;

  double *ref_out = th_alloc((size_t)(B * Sq * E + 1) * sizeof(double));
  double *ref_p = th_alloc((size_t)(B * Sq * Sk + 1) * sizeof(double));
  mha_expected(c, &query, &key, &value, &w, ref_out, ref_p);
  char label[192];
  snprintf(label, sizeof label, "%s: out", what);
  TH_CHECK(th_check_close(label, &out, ref_out, th_tol_for(dt)),
           "%s: out differs from the double reference", what);

  if (c->want_weights) {
    snprintf(label, sizeof label, "%s: attn_weights", what);
    TH_CHECK(th_check_close(label, &attn, ref_p, th_tol_for(dt)),
             "%s: attn_weights differ from the head-averaged probabilities", what);
    /* Each row sums to 1, or is all 0 where the causal mask hides every key. */
    double *sums = th_alloc((size_t)(B * Sq + 1) * sizeof(double));
    double *want = th_alloc((size_t)(B * Sq + 1) * sizeof(double));
    for (int64_t r = 0; r < B * Sq; ++r) {
      sums[r] = 0.0;
      for (int64_t j = 0; j < Sk; ++j) sums[r] += th_get(&attn, r * Sk + j);
      want[r] = visible_keys(r % Sq, Sq, Sk, c->causal) > 0 ? 1.0 : 0.0;
    }
    snprintf(label, sizeof label, "%s: attn_weights row sums", what);
    TH_CHECK(th_check_close_doubles(label, sums, want, B * Sq,
                                    th_tol_scaled(dt, (double)(Sk > 1 ? Sk : 1))),
             "%s: attn_weights rows do not sum to 1", what);
  } else if (B * Sq * Sk > 0) {
    /* Not asked for: not written. */
    TH_CHECK(isnan(th_get(&attn, 0)), "%s: attn_weights written though NULL was passed", what);
  }

  if (c->identity)
    mha_identity(c, dt, &query, &key, &value, &w, &out, c->want_weights ? &attn : NULL, what);
  mha_on_device(c, dt, what, &query, &key, &value, &w, &out, c->want_weights ? &attn : NULL);
}

static void test_mha(void) {
  static const mha_case cases[] = {
      /* name                        B  Sq Sk  E   H  causal inb outb wts strd self ident */
      {"self, 2 heads", 2, 5, 5, 8, 2, 0, 1, 1, 1, 0, 1, 1},
      {"causal Sq == Sk, 4 heads", 2, 6, 6, 12, 4, 1, 1, 1, 1, 0, 0, 1},
      {"causal Sq < Sk", 2, 3, 7, 8, 2, 1, 1, 1, 1, 1, 0, 1},
      {"causal Sq > Sk (empty rows)", 1, 7, 3, 6, 3, 1, 1, 0, 1, 0, 0, 1},
      {"Sq != Sk, non-causal", 3, 4, 9, 10, 2, 0, 1, 1, 1, 1, 0, 1},
      {"1 head, odd E", 2, 3, 4, 5, 1, 0, 1, 1, 1, 0, 0, 1},
      {"odd E = 15, 3 heads, causal", 1, 5, 5, 15, 3, 1, 1, 1, 1, 1, 0, 1},
      {"no biases", 2, 4, 6, 8, 4, 0, 0, 0, 1, 0, 0, 1},
      {"in bias only, no weights", 2, 4, 4, 6, 2, 1, 1, 0, 0, 1, 1, 1},
      {"out bias only, E = 1", 2, 3, 2, 1, 1, 0, 0, 1, 1, 0, 0, 1},
      {"head_dim 1", 1, 4, 5, 4, 4, 0, 1, 1, 1, 1, 0, 1},
      {"Sk = 0 gives out_proj_bias", 2, 3, 0, 4, 2, 0, 1, 1, 1, 0, 0, 0},
      {"B = 0", 0, 3, 4, 4, 2, 0, 1, 1, 1, 0, 0, 0},
      /* Without attn_weights the CUDA branch runs the fused (flash) attention; with them, the
       unfused one (P feeds the head mean). Below: fused SIMT with rows whose keys are all masked,
       head dim 8 (tensor cores for f16/bf16), a decode shape the fused dispatcher splits over
       the keys (partials in MHA's arena), no key at all, and head dim 264, which the fused
       kernels refuse, so the unfused path serves it. */
      {"no weights, empty rows", 1, 7, 3, 6, 3, 1, 1, 1, 0, 1, 0, 1},
      {"no weights, head_dim 8", 2, 5, 9, 16, 2, 0, 1, 1, 0, 1, 0, 1},
      {"no weights, decode split-KV", 1, 1, 256, 16, 2, 0, 1, 1, 0, 0, 0, 1},
      {"no weights, Sk = 0", 2, 3, 0, 4, 2, 0, 1, 1, 0, 0, 0, 0},
      {"no weights, head_dim 264", 1, 2, 3, 264, 1, 1, 1, 1, 0, 0, 0, 0},
  };
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
      run_mha_case(&cases[i], k_float_dtypes[d]);
}

static void test_mha_bad_input(void) {
  enum { B = 2, Sq = 3, Sk = 4, E = 6, H = 2 };
  const int64_t store_n[1] = {512};
  seqk_tensor in_s = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor w_s = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor out_s = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  th_fill_uniform(&in_s, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w_s, &g_rng, -0.5, 0.5);
  th_poison(&out_s);
  const int64_t q_shape[3] = {B, Sq, E}, kv_shape[3] = {B, Sk, E}, wi_shape[2] = {3 * E, E};
  const int64_t bi_shape[1] = {3 * E}, wo_shape[2] = {E, E}, bo_shape[1] = {E};
  const int64_t aw_shape[3] = {B, Sq, Sk};
  /* in_s: query [0,36), key [40,88), value [100,148). w_s: in_proj_weight [0,108),
     in_proj_bias [120,138), out_proj_weight [140,176), out_proj_bias [180,186).
     out_s: out [0,36), attn_weights [40,64). */
  const seqk_tensor query = th_view_into(&in_s, 0, 3, q_shape);
  const seqk_tensor key = th_view_into(&in_s, 40, 3, kv_shape);
  const seqk_tensor value = th_view_into(&in_s, 100, 3, kv_shape);
  seqk_mha_weights w;
  w.in_proj_weight = th_view_into(&w_s, 0, 2, wi_shape);
  w.in_proj_bias = th_view_into(&w_s, 120, 1, bi_shape);
  w.out_proj_weight = th_view_into(&w_s, 140, 2, wo_shape);
  w.out_proj_bias = th_view_into(&w_s, 180, 1, bo_shape);
  const seqk_tensor out = th_view_into(&out_s, 0, 3, q_shape);
  const seqk_tensor attn = th_view_into(&out_s, 40, 3, aw_shape);
  th_watch_reset();
  th_watch(&in_s);
  th_watch(&w_s);
  th_watch(&out_s);
  seqk_context_t c = g_ctx;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;
  seqk_tensor o, a, t;
  seqk_mha_weights wb;

#define MHA(ctx_, w_, heads_, q_, k_, v_, o_, a_, needle_, what_)                                  \
  do {                                                                                             \
    o = out;                                                                                       \
    a = attn;                                                                                      \
    th_expect_rejected_watched(ctx_, seqk_mha_forward(ctx_, w_, heads_, 0, q_, k_, v_, o_, a_),    \
                               BAD, needle_, "mha_forward " what_);                                \
  } while (0)

  MHA(NULL, &w, H, &query, &key, &value, &o, &a, NULL, "ctx NULL");
  MHA(c, NULL, H, &query, &key, &value, &o, &a, "w", "weights NULL");
  MHA(c, &w, H, NULL, &key, &value, &o, &a, "query", "query NULL");
  MHA(c, &w, H, &query, NULL, &value, &o, &a, "key", "key NULL");
  MHA(c, &w, H, &query, &key, NULL, &o, &a, "value", "value NULL");
  MHA(c, &w, H, &query, &key, &value, NULL, &a, "out", "out NULL");
  t = th_without_data(query);
  MHA(c, &w, H, &t, &key, &value, &o, &a, "query", "query data NULL");
  t = th_without_data(value);
  MHA(c, &w, H, &query, &key, &t, &o, &a, "value", "value data NULL");
  wb = w;
  wb.in_proj_weight.data = NULL;
  MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight data NULL");
  wb = w;
  wb.out_proj_weight.data = NULL;
  MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight data NULL");
  t = th_without_data(out);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out data NULL");

  /* ndim and shapes */
  {
    const int64_t q2[2] = {B * Sq, E}, k4[4] = {B, Sk, E, 1};
    const int64_t k_e[3] = {B, Sk, E - 1}, k_b[3] = {1, Sk, E}, v_sk[3] = {B, Sk - 1, E};
    const int64_t v_e[3] = {B, Sk, E + 1};
    t = th_with_shape(query, 2, q2);
    MHA(c, &w, H, &t, &key, &value, &o, &a, "query", "query 2-D");
    t = th_with_shape(key, 4, k4);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key 4-D");
    t = th_with_shape(key, 3, k_e);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key.shape[2] != E");
    t = th_with_shape(key, 3, k_b);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key.shape[0] != B");
    t = th_with_shape(value, 3, v_sk);
    MHA(c, &w, H, &query, &key, &t, &o, &a, "value", "value Sk != key Sk");
    t = th_with_shape(value, 3, v_e);
    MHA(c, &w, H, &query, &key, &t, &o, &a, "value", "value.shape[2] != E");
  }
  MHA(c, &w, 0, &query, &key, &value, &o, &a, "num_heads", "num_heads 0");
  MHA(c, &w, -2, &query, &key, &value, &o, &a, "num_heads", "num_heads negative");
  MHA(c, &w, 4, &query, &key, &value, &o, &a, "num_heads", "num_heads 4 does not divide E=6");
  MHA(c, &w, 12, &query, &key, &value, &o, &a, "num_heads", "num_heads > E");
  {
    /* E == 0: torch rejects embed_dim 0, and 1/sqrt(head_dim) would be infinite. */
    const int64_t q0[3] = {B, Sq, 0}, k0[3] = {B, Sk, 0}, w0[2] = {0, 0}, b0[1] = {0};
    const int64_t a0[3] = {B, Sq, Sk};
    const seqk_tensor q_0 = th_with_shape(query, 3, q0), k_0 = th_with_shape(key, 3, k0);
    const seqk_tensor v_0 = th_with_shape(value, 3, k0);
    seqk_mha_weights w0s = w;
    w0s.in_proj_weight = th_with_shape(w.in_proj_weight, 2, w0);
    w0s.in_proj_bias = th_with_shape(w.in_proj_bias, 1, b0);
    w0s.out_proj_weight = th_with_shape(w.out_proj_weight, 2, w0);
    w0s.out_proj_bias = th_with_shape(w.out_proj_bias, 1, b0);
    seqk_tensor o0 = th_with_shape(out, 3, q0), a_0 = th_with_shape(attn, 3, a0);
    th_expect_rejected_watched(c, seqk_mha_forward(c, &w0s, 1, 0, &q_0, &k_0, &v_0, &o0, &a_0), BAD,
                               "query", "mha_forward E == 0");
  }
  {
    const int64_t wi_cols[2] = {3 * E, E + 1}, wi_rows[2] = {2 * E, E}, wi_1d[1] = {3 * E * E};
    const int64_t wi_rows1[2] = {3 * E + 1, E};
    const int64_t bi_bad[1] = {2 * E}, bi_2d[2] = {3, E}, wo_bad[2] = {E, E - 1};
    const int64_t wo_rows[2] = {E + 1, E}, bo_bad[1] = {E + 1};
    wb = w;
    wb.in_proj_weight = th_with_shape(w.in_proj_weight, 2, wi_cols);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [3E,E+1]");
    wb = w;
    wb.in_proj_weight = th_with_shape(w.in_proj_weight, 2, wi_rows);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [2E,E]");
    wb = w;
    wb.in_proj_weight = th_with_shape(w.in_proj_weight, 2, wi_rows1);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [3E+1,E]");
    wb = w;
    wb.in_proj_weight = th_with_shape(w.in_proj_weight, 1, wi_1d);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight 1-D");
    wb = w;
    wb.in_proj_bias = th_with_shape(w.in_proj_bias, 1, bi_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_bias", "in_proj_bias [2E]");
    wb = w;
    wb.in_proj_bias = th_with_shape(w.in_proj_bias, 2, bi_2d);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_bias", "in_proj_bias 2-D");
    wb = w;
    wb.out_proj_weight = th_with_shape(w.out_proj_weight, 2, wo_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight [E,E-1]");
    wb = w;
    wb.out_proj_weight = th_with_shape(w.out_proj_weight, 2, wo_rows);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight [E+1,E]");
    wb = w;
    wb.out_proj_bias = th_with_shape(w.out_proj_bias, 1, bo_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_bias", "out_proj_bias [E+1]");
  }
  {
    const int64_t o_sk[3] = {B, Sk, E}, o_e[3] = {B, Sq, E + 1}, o_2d[2] = {B * Sq, E};
    const int64_t a_sq[3] = {B, Sq, Sq}, a_h[4] = {B, H, Sq, Sk};
    t = th_with_shape(out, 3, o_sk);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out [B,Sk,E]");
    t = th_with_shape(out, 3, o_e);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out [B,Sq,E+1]");
    t = th_with_shape(out, 2, o_2d);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out 2-D");
    t = th_with_shape(attn, 3, a_sq);
    MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights [B,Sq,Sq]");
    t = th_with_shape(attn, 4, a_h);
    MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights per head");
  }

  /* Every argument in turn with a wrong dtype (a float one, or I32), then on CUDA. */
  {
    static const struct {
      const char *name;
      seqk_dtype bad;
    } args[] = {
        {"query", SEQK_DTYPE_I32},         {"key", SEQK_DTYPE_F16},
        {"value", SEQK_DTYPE_BF16},        {"in_proj_weight", SEQK_DTYPE_F16},
        {"in_proj_bias", SEQK_DTYPE_BF16}, {"out_proj_weight", SEQK_DTYPE_I32},
        {"out_proj_bias", SEQK_DTYPE_F16}, {"out", SEQK_DTYPE_F16},
        {"attn_weights", SEQK_DTYPE_BF16},
    };
    for (int cuda = 0; cuda < 2; ++cuda)
      for (int i = 0; i < (int)(sizeof args / sizeof args[0]); ++i) {
        seqk_tensor q = query, k = key, v = value;
        wb = w;
        o = out;
        a = attn;
        seqk_tensor *const slot[] = {&q,
                                     &k,
                                     &v,
                                     &wb.in_proj_weight,
                                     &wb.in_proj_bias,
                                     &wb.out_proj_weight,
                                     &wb.out_proj_bias,
                                     &o,
                                     &a};
        if (cuda)
          slot[i]->device = SEQK_DEVICE_CUDA;
        else
          slot[i]->dtype = args[i].bad;
        char what[80];
        snprintf(what, sizeof what, "mha_forward %s %s", args[i].name,
                 cuda ? "on cuda" : th_dtype_name(args[i].bad));
        th_expect_rejected_watched(c, seqk_mha_forward(c, &wb, H, 0, &q, &k, &v, &o, &a), BAD,
                                   args[i].name, what);
      }
  }

  /* outputs: self-overlap, overlap with each input, with each other */
  t = th_self_overlapping(out, 1);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out self-overlap");
  t = th_self_overlapping(attn, 2);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights self-overlap");
  t = th_view_into(&in_s, 20, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps query and key");
  t = th_view_into(&in_s, 120, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps value");
  t = th_view_into(&w_s, 100, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps in_proj_weight/bias");
  t = th_view_into(&w_s, 150, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps out_proj weight/bias");
  t = th_view_into(&in_s, 60, 3, aw_shape);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights overlaps key");
  t = th_view_into(&w_s, 176, 3, aw_shape);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights",
      "attn_weights overlaps out_proj_bias");
  t = th_view_into(&out_s, 30, 3, aw_shape);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights overlaps out");
#undef MHA

  /* The fixture itself is accepted, with and without attn_weights. */
  o = out;
  a = attn;
  th_expect_status(c, seqk_mha_forward(c, &w, H, 1, &query, &key, &value, &o, &a),
                   SEQK_STATUS_SUCCESS, NULL, "mha_forward bad-input fixture itself");
  th_expect_status(c, seqk_mha_forward(c, &w, H, 0, &query, &key, &value, &o, NULL),
                   SEQK_STATUS_SUCCESS, NULL, "mha_forward fixture without attn_weights");
  /* attn_weights with NULL data is absent too: no other field of it is looked at. */
  a = th_without_data(attn);
  a.ndim = 1;
  a.shape[0] = 99;
  th_expect_status(c, seqk_mha_forward(c, &w, H, 0, &query, &key, &value, &o, &a),
                   SEQK_STATUS_SUCCESS, NULL, "mha_forward attn_weights with NULL data");
}

/* ---- seqk_mha_forward_ex: sequence-first layout, per-head weights, key padding ------------------- */

static seqk_status mha_ex_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  seqk_mha_options o = *(const seqk_mha_options *)user;
  o.key_lengths = in[7];
  o.key_padding_mask = in[8];
  const seqk_mha_weights w = {in[3], in[4], in[5], in[6]};
  return seqk_mha_forward_ex(ctx, &w, &o, &in[0], &in[1], &in[2], &out[0], &out[1]);
}

/* t [S,B,E] seen as [B,S,E], or t itself when batch_first. */
static seqk_tensor batch_first_view(const seqk_tensor *t, int batch_first) {
  seqk_tensor v = *t;
  if (!batch_first) {
    v.shape[0] = t->shape[1];
    v.shape[1] = t->shape[0];
    v.stride[0] = t->stride[1];
    v.stride[1] = t->stride[0];
  }
  return v;
}

enum { PAD_NONE, PAD_LENGTHS, PAD_MASK, PAD_BOTH };

static void run_mha_options(seqk_dtype dt, int batch_first, int per_head, int pad, int causal,
                            int self) {
  enum { B = 3, E = 8, H = 2 };
  const int64_t Sq = 5, Sk = self ? 5 : 7;
  const mha_case c = {"options", B, Sq, Sk, E, H, causal, 1, 1, 1, 0, self, 0};
  /* The tensors as the caller lays them out: [S,B,E] unless batch_first. */
  const int64_t q_shape[3] = {batch_first ? B : Sq, batch_first ? Sq : B, E};
  const int64_t kv_shape[3] = {batch_first ? B : Sk, batch_first ? Sk : B, E};
  const int64_t wi_shape[2] = {3 * E, E}, bi_shape[1] = {3 * E}, wo_shape[2] = {E, E};
  const int64_t bo_shape[1] = {E}, len_shape[1] = {B}, mask_shape[2] = {B, Sk};
  const int64_t mean_shape[3] = {B, Sq, Sk}, head_shape[4] = {B, H, Sq, Sk};
  seqk_tensor query = th_tensor_new(dt, 3, q_shape);
  seqk_tensor key = self ? query : th_tensor_new(dt, 3, kv_shape);
  seqk_tensor value = self ? query : th_tensor_new(dt, 3, kv_shape);
  seqk_mha_weights w;
  w.in_proj_weight = th_tensor_new(dt, 2, wi_shape);
  w.in_proj_bias = th_tensor_new(dt, 1, bi_shape);
  w.out_proj_weight = th_tensor_new(dt, 2, wo_shape);
  w.out_proj_bias = th_tensor_new(dt, 1, bo_shape);
  fill_mha(&query, &key, &value, &w, self, E);
  /* Lengths: whole, short, none (that batch's rows give out_proj_bias). The mask: a pattern per
     batch; with no lengths, batch 2 is masked whole (its rows are NaN, as torch gives). */
  const int32_t lens_v[B] = {(int32_t)Sk, 2, 0};
  int32_t mask_v[B * 7];
  for (int b = 0; b < B; ++b)
    for (int64_t j = 0; j < Sk; ++j)
      mask_v[b * Sk + j] = (pad == PAD_MASK && b == 2) || (j % 3 == (int64_t)b % 3 && j > 0);
  /* Sequence-first runs take the lengths with stride 2: the CUDA path then copies them into one
     contiguous run for the attention (host/cuda_mha.c, lengths_copied). */
  seqk_tensor lens = th_tensor_strided(SEQK_DTYPE_I32, 1, len_shape, NULL, batch_first ? 1 : 2);
  seqk_tensor mask = th_tensor_strided(SEQK_DTYPE_I32, 2, mask_shape, NULL, 2);
  th_fill_i32(&lens, lens_v);
  th_fill_i32(&mask, mask_v);
  const int use_lens = pad == PAD_LENGTHS || pad == PAD_BOTH;
  const int use_mask = pad == PAD_MASK || pad == PAD_BOTH;
  seqk_tensor out = th_tensor_new(dt, 3, q_shape);
  seqk_tensor attn = per_head ? th_tensor_new(dt, 4, head_shape) : th_tensor_new(dt, 3, mean_shape);
  th_poison(&out);
  th_poison(&attn);

  seqk_mha_options opt;
  memset(&opt, 0, sizeof opt);
  opt.num_heads = H;
  opt.causal = causal;
  opt.batch_first = batch_first;
  opt.average_attn_weights = !per_head;
  opt.key_lengths = use_lens ? lens : th_absent(lens);
  opt.key_padding_mask = use_mask ? mask : th_absent(mask);
  static const char *const pads[] = {"", " key_lengths", " key_padding_mask", " both"};
  char what[160];
  snprintf(what, sizeof what, "mha_ex %s%s%s%s%s %s", batch_first ? "batch-first" : "seq-first",
           per_head ? " per-head" : "", pads[pad], causal ? " causal" : "", self ? " self" : "",
           th_dtype_name(dt));
  if (!th_expect_status(g_ctx,
                        seqk_mha_forward_ex(g_ctx, &w, &opt, &query, &key, &value, &out, &attn),
                        SEQK_STATUS_SUCCESS, NULL, what))
    return;

  const seqk_tensor qb = batch_first_view(&query, batch_first);
  const seqk_tensor kb = batch_first_view(&key, batch_first);
  const seqk_tensor vb = batch_first_view(&value, batch_first);
  const seqk_tensor ob = batch_first_view(&out, batch_first);
  double *ref_out = th_alloc((size_t)(B * Sq * E + 1) * sizeof(double));
  double *ref_mean = th_alloc((size_t)(B * Sq * Sk + 1) * sizeof(double));
  double *ref_heads = th_alloc((size_t)(B * H * Sq * Sk + 1) * sizeof(double));
  mha_expected_ex(&c, &qb, &kb, &vb, &w, use_lens ? lens_v : NULL, use_mask ? mask_v : NULL,
                  ref_out, ref_mean, ref_heads);
  TH_CHECK(th_check_close(what, &ob, ref_out, th_tol_for(dt)), "%s: out differs", what);
  TH_CHECK(th_check_close(what, &attn, per_head ? ref_heads : ref_mean, th_tol_for(dt)),
           "%s: attn_weights differ", what);

  const seqk_tensor in[9] = {query,
                             key,
                             value,
                             w.in_proj_weight,
                             w.in_proj_bias,
                             w.out_proj_weight,
                             w.out_proj_bias,
                             use_lens ? lens : th_absent(lens),
                             use_mask ? mask : th_absent(mask)};
  const seqk_tensor outs[2] = {out, attn};
  th_check_on_device(g_ctx, what, mha_ex_op, &opt, in, 9, 0, outs, 2,
                     dt == SEQK_DTYPE_F32 ? 1.0 : 2.0);
}

static void test_mha_options(void) {
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int bf = 0; bf < 2; ++bf)
      for (int per_head = 0; per_head < 2; ++per_head)
        for (int pad = 0; pad < 4; ++pad) {
          run_mha_options(k_float_dtypes[d], bf, per_head, pad, 0, 0);
          run_mha_options(k_float_dtypes[d], bf, per_head, pad, 1, pad == PAD_LENGTHS);
        }
}

static void test_mha_options_bad_input(void) {
  enum { B = 2, S = 3, E = 4 };
  const int64_t x_shape[3] = {B, S, E}, wi_shape[2] = {3 * E, E}, wo_shape[2] = {E, E};
  const int64_t len_shape[1] = {B}, mask_shape[2] = {B, S}, bad_len[1] = {B + 1};
  const int64_t heads_shape[4] = {B, 2, S, S}, mean_shape[3] = {B, S, S};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, x_shape),
              out = th_tensor_new(SEQK_DTYPE_F32, 3, x_shape);
  seqk_mha_weights w;
  memset(&w, 0, sizeof w);
  w.in_proj_weight = th_tensor_new(SEQK_DTYPE_F32, 2, wi_shape);
  w.out_proj_weight = th_tensor_new(SEQK_DTYPE_F32, 2, wo_shape);
  seqk_tensor lens = th_tensor_new(SEQK_DTYPE_I32, 1, len_shape);
  seqk_tensor mask = th_tensor_new(SEQK_DTYPE_I32, 2, mask_shape);
  seqk_tensor heads = th_tensor_new(SEQK_DTYPE_F32, 4, heads_shape);
  seqk_tensor mean = th_tensor_new(SEQK_DTYPE_F32, 3, mean_shape);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w.in_proj_weight, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w.out_proj_weight, &g_rng, -1.0, 1.0);
  const int32_t lv[B] = {3, 1}, mv[B * S] = {0, 1, 0, 0, 0, 1};
  th_fill_i32(&lens, lv);
  th_fill_i32(&mask, mv);
  th_poison(&out);
  th_poison(&heads);
  th_poison(&mean);
  th_watch_reset();
  th_watch(&x);
  th_watch(&out);
  th_watch(&heads);
  th_watch(&mean);
  th_watch(&lens);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  seqk_mha_options o;
  memset(&o, 0, sizeof o);
  o.num_heads = 2;
  o.batch_first = 1;
  o.average_attn_weights = 1;
#define MHA_EX(opts, aw, needle, what)                                                             \
  th_expect_rejected_watched(g_ctx, seqk_mha_forward_ex(g_ctx, &w, opts, &x, &x, &x, &out, aw),    \
                             INV, needle, what)
  MHA_EX(NULL, NULL, "options", "NULL options");
  MHA_EX(&o, &heads, "attn_weights", "4-D weights when averaged");
  o.average_attn_weights = 0;
  MHA_EX(&o, &mean, "attn_weights", "3-D weights per head");
  o.average_attn_weights = 1;
  o.key_lengths = th_with_shape(lens, 1, bad_len);
  MHA_EX(&o, NULL, "options.key_lengths", "key_lengths shape");
  o.key_lengths = th_with_dtype(lens, SEQK_DTYPE_F32);
  MHA_EX(&o, NULL, "options.key_lengths", "F32 key_lengths");
  o.key_lengths = th_on_cuda(lens);
  MHA_EX(&o, NULL, "options.key_lengths", "key_lengths on another device");
  o.key_lengths = th_absent(lens);
  o.key_padding_mask = th_with_shape(mask, 1, len_shape);
  MHA_EX(&o, NULL, "options.key_padding_mask", "1-D key_padding_mask");
  o.key_padding_mask = th_absent(mask);
  o.batch_first = 0; /* x [B,S,E] read as [S=B, B=S, E]: out must be read the same way, and is */
  const int64_t other[3] = {S, B + 1, E};
  seqk_tensor out_bad = th_with_shape(out, 3, other);
  th_expect_rejected_watched(g_ctx, seqk_mha_forward_ex(g_ctx, &w, &o, &x, &x, &x, &out_bad, NULL),
                             INV, "out", "seq-first out shape");
  o.batch_first = 1;
#undef MHA_EX
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x3a7e25u);

  test_mha();
  test_mha_bad_input();
  test_mha_options();
  test_mha_options_bad_input();

  seqk_context_destroy(g_ctx);
  return th_finish();
}
