/*
 * test_attention_alibi.c - ALiBi (seqk_attention_params.alibi_slopes) in seqk_attention,
 * seqk_attention_packed and seqk_attention_kv_cache, against a double reference written here
 * from the header's words: query i's score for key j of query head h gets
 * - alibi_slopes[h] * |i + off - j|, off = Sk_b - Sq_b (per batch after the lengths, the offset
 * of the causal and window rules), added after the scale and the softcap and before the mask;
 * lse includes it.
 *
 * Cases (each in f16, bf16 and f32): BLOOM's slopes 2^(-8(h+1)/H) without causal and Sq < Sk;
 * causal prefill with GQA 8/2 and slopes of both signs and a large one (2.0); a causal sliding
 * window with a softcap; decode (Sq 1 and 3) over 700 keys with GQA 8/2, where the automatic path
 * splits the keys (and forced 1, 3 and 8 splits); seqlens_q / seqlens_k with a sequence of one
 * query, one of no keys and one of more queries than keys, causal and not (the bias's offset comes
 * from the lengths; padding rows and keys hold NaN); an odd head dim (20 / Dv 12: the fp32 SIMT
 * kernel) with GQA 4/2; D 256; D 176 (the 192 kernel); seqk_attention_packed (three sequences, causal, GQA 4/2, D 64, and
 * an odd head dim with a sequence of no keys; rows outside every sequence must stay poisoned);
 * seqk_attention_kv_cache over a paged cache (pages of 16, D 128, GQA 8/2, lengths 130, 1, 47
 * and 0; decode and a causal chunk of 4), against the reference over the gathered keys.
 * CPU: o and lse against the double reference over the inputs as rounded to the dtype. CUDA
 * (the emulated device in CI; a GPU when lent): AUTO, FUSED (3 forced splits), the fp32 SIMT
 * kernel and UNFUSED (packed: the fused paths only), each within the device tolerance of the CPU
 * result; for f16/bf16 the fused error is at most twice the unfused one (+ a quarter ulp of 1)
 * against the double reference. All-zero slopes give the result without ALiBi. Bad input: a NaN
 * or infinite slope on the CPU, and slopes in plain host memory for CUDA tensors, are
 * INVALID_VALUE naming params.alibi_slopes with nothing written.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fused path's test hook (host/cuda_ops.h); weak where the library has no CUDA path. */
void seqk__cuda_attention_fused_force(int kernel, int splits);
#if !defined(SEQK_HAVE_CUDA)
#pragma weak seqk__cuda_attention_fused_force
#define FORCE_LINKED (seqk__cuda_attention_fused_force != NULL)
#else
#define FORCE_LINKED 1
#endif

static seqk_context_t g_ctx;
static th_rng g_rng;

enum { MAX_B = 4, MAX_H = 8 };

/* ---- slopes ------------------------------------------------------------------------------------ */

enum { SL_NONE, SL_BLOOM, SL_MIXED, SL_ZERO };

static void slope_values(int kind, int64_t H, float *s) {
  /* both signs, a large one (2.0) and a zero */
  static const float mixed[8] = {0.5f, -0.05f, 2.0f, 0.125f, -0.01f, 1.0f, 0.0f, 0.03125f};
  for (int64_t h = 0; h < H; ++h)
    s[h] = kind == SL_BLOOM   ? (float)pow(2.0, -8.0 * (double)(h + 1) / (double)H)
           : kind == SL_MIXED ? mixed[h % 8]
                              : 0.0f;
}

/* F32 [H] on the CPU (absent for SL_NONE): the device runs get a CUDA copy of it. */
static seqk_tensor slopes_tensor(int kind, int64_t H) {
  const int64_t shape[1] = {H};
  seqk_tensor t = th_tensor_new(SEQK_DTYPE_F32, 1, shape);
  float v[MAX_H];
  slope_values(kind, H, v);
  for (int64_t h = 0; h < H; ++h) th_set(&t, h, v[h]);
  return kind == SL_NONE ? th_absent(t) : t;
}

/* ---- the reference, from the header's words ---------------------------------------------------- */

typedef struct ref_args {
  int64_t B, H, Hk, Sq, Sk, D, Dv;
  const double *q, *k, *v; /* row-major [B,H,Sq,D], [B,Hk,Sk,D], [B,Hk,Sk,Dv] */
  const int32_t *lq, *lk;  /* [B] valid queries / keys, or NULL (Sq, Sk) */
  double scale;            /* 0: 1/sqrt(D) */
  int causal, window, left, right;
  double softcap;      /* 0: none */
  const float *slopes; /* [H], or NULL */
} ref_args;

/* Whether query i of sq sees key j of sk. */
static int sees(const ref_args *a, int64_t i, int64_t j, int64_t sq, int64_t sk) {
  const int64_t at = i + sk - sq;
  if (i >= sq || j >= sk) return 0;
  if (a->causal && j > at) return 0;
  if (a->window && a->left >= 0 && j < at - a->left) return 0;
  if (a->window && a->right >= 0 && j > at + a->right) return 0;
  return 1;
}

/* o [B,H,Sq,Dv] and lse [B,H,Sq]: a row with no visible key has o = 0 and lse = +inf. */
static void reference(const ref_args *a, double *o, double *lse) {
  const double sc = a->scale != 0.0 ? a->scale : 1.0 / sqrt((double)a->D);
  const int64_t group = a->H / a->Hk;
  double *s = (double *)th_alloc((size_t)(a->Sk + 1) * sizeof(double));
  for (int64_t b = 0; b < a->B; ++b) {
    const int64_t sq = a->lq ? a->lq[b] : a->Sq, sk = a->lk ? a->lk[b] : a->Sk, off = sk - sq;
    for (int64_t h = 0; h < a->H; ++h)
      for (int64_t i = 0; i < a->Sq; ++i) {
        const int64_t row = (b * a->H + h) * a->Sq + i, kh = h / group;
        double m = -INFINITY;
        int any = 0;
        for (int64_t j = 0; j < a->Sk; ++j) {
          s[j] = -INFINITY;
          if (!sees(a, i, j, sq, sk)) continue;
          double x = 0.0;
          for (int64_t d = 0; d < a->D; ++d)
            x += a->q[row * a->D + d] * a->k[((b * a->Hk + kh) * a->Sk + j) * a->D + d];
          x *= sc;
          if (a->softcap > 0.0) x = a->softcap * tanh(x / a->softcap);
          if (a->slopes) x -= (double)a->slopes[h] * fabs((double)(i + off - j));
          s[j] = x;
          m = fmax(m, x);
          any = 1;
        }
        double z = 0.0;
        for (int64_t j = 0; j < a->Sk; ++j)
          if (s[j] != -INFINITY) z += exp(s[j] - m);
        for (int64_t e = 0; e < a->Dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < a->Sk; ++j)
            if (s[j] != -INFINITY)
              acc += exp(s[j] - m) * a->v[((b * a->Hk + kh) * a->Sk + j) * a->Dv + e];
          o[row * a->Dv + e] = any ? acc / z : 0.0;
        }
        lse[row] = any ? m + log(z) : INFINITY;
      }
  }
}

/* ---- helpers for the device runs ---------------------------------------------------------------- */

static seqk_tensor poisoned_like(const seqk_tensor *t) {
  seqk_tensor p = th_tensor_new(t->dtype, t->ndim, t->shape);
  th_poison(&p);
  return p;
}

/* One device run of fn over CUDA copies of in (absent ones stay absent) with o uploaded from a
   poisoned tensor of o_like's shape and no lse; o copied back (data NULL on failure). */
static seqk_tensor run_once(const char *what, th_op_fn fn, void *user, const seqk_tensor *in,
                            int n_in, const seqk_tensor *o_like) {
  seqk_tensor back[8], din[8], bo, dout[2], host;
  memset(back, 0, sizeof back);
  memset(&bo, 0, sizeof bo);
  memset(&host, 0, sizeof host);
  int ok = 1;
  for (int i = 0; i < n_in; ++i) {
    din[i] = in[i];
    if (in[i].data && ok) ok = th_upload(g_ctx, &in[i], &back[i], &din[i]) == SEQK_STATUS_SUCCESS;
  }
  const seqk_tensor tmpl = poisoned_like(o_like);
  ok = ok && th_upload(g_ctx, &tmpl, &bo, &dout[0]) == SEQK_STATUS_SUCCESS;
  TH_CHECK(ok, "%s: upload: %s", what, seqk_context_last_error(g_ctx));
  if (ok) {
    dout[1] = th_absent(dout[0]);
    const seqk_status st = fn(g_ctx, user, din, dout);
    if (st == SEQK_STATUS_SUCCESS)
      th_download(g_ctx, what, &dout[0], &host);
    else
      TH_CHECK(0, "%s: %s (%s)", what, seqk_status_string(st), seqk_context_last_error(g_ctx));
  }
  for (int i = 0; i < n_in; ++i) seqk_tensor_free(g_ctx, &back[i]);
  seqk_tensor_free(g_ctx, &bo);
  return host;
}

/* The largest |got - exact| (NaN wins, except where both are NaN). */
static double max_err(const seqk_tensor *got, const double *exact) {
  const double *g = th_to_doubles(got);
  double m = 0.0;
  for (int64_t i = 0; i < th_numel(got); ++i) {
    if (isnan(exact[i]) && isnan(g[i])) continue;
    const double d = fabs(g[i] - exact[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

/* f16/bf16: FUSED's error at most twice UNFUSED's (+ a quarter ulp of 1) against exact. */
static void fused_vs_unfused(const char *what, seqk_dtype dt, th_op_fn fn, void *fused,
                             void *unfused, const seqk_tensor *in, int n_in,
                             const seqk_tensor *o_like, const double *exact) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED || dt == SEQK_DTYPE_F32) return;
  char msg[320];
  snprintf(msg, sizeof msg, "%s (fused)", what);
  const seqk_tensor f = run_once(msg, fn, fused, in, n_in, o_like);
  snprintf(msg, sizeof msg, "%s (unfused)", what);
  const seqk_tensor u = run_once(msg, fn, unfused, in, n_in, o_like);
  if (!f.data || !u.data) return;
  const double ef = max_err(&f, exact), eu = max_err(&u, exact);
  const double slack = dt == SEQK_DTYPE_F16 ? 0x1p-12 : 0x1p-9;
  TH_CHECK(ef <= 2.0 * eu + slack, "%s: fused error %.3g exceeds 2 x the unfused error %.3g + %.3g",
           what, ef, eu, slack);
}

typedef struct run_kind {
  const char *name;
  seqk_attention_algo algo;
  int kernel, splits; /* seqk__cuda_attention_fused_force */
} run_kind;

static const run_kind k_runs[] = {{"auto", SEQK_ATTENTION_ALGO_AUTO, 0, 0},
                                  {"fused, 3 splits", SEQK_ATTENTION_ALGO_FUSED, 0, 3},
                                  {"fused SIMT", SEQK_ATTENTION_ALGO_FUSED, 1, 0},
                                  {"unfused", SEQK_ATTENTION_ALGO_UNFUSED, 0, 0}};
/* decode: the split counts around the automatic choice too */
static const run_kind k_decode_runs[] = {{"fused, 1 split", SEQK_ATTENTION_ALGO_FUSED, 0, 1},
                                         {"fused, 8 splits", SEQK_ATTENTION_ALGO_FUSED, 2, 8}};

/* ---- seqk_attention ------------------------------------------------------------------------------ */

typedef struct acase {
  const char *name;
  int64_t B, H, Hk, Sq, Sk, D, Dv;
  float scale;
  int causal, window, left, right;
  float softcap;
  int slopes;  /* SL_* */
  int lengths; /* seqlens_q = lq, seqlens_k = lk */
  int32_t lq[MAX_B], lk[MAX_B];
  int decode; /* also the k_decode_runs */
} acase;

typedef struct arun {
  const acase *c;
  seqk_dtype dt;
  seqk_tensor q, k, v, o, lse, lq, lk, sl;
  double *o_ref, *lse_ref; /* the double reference over q, k, v as stored */
} arun;

static seqk_attention_params params_of(const acase *c, seqk_attention_algo algo, const void *lq,
                                       const void *lk, const void *slopes) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.scale = c->scale;
  p.causal = c->causal;
  p.window = c->window;
  p.window_left = c->left;
  p.window_right = c->right;
  p.softcap = c->softcap;
  p.algo = algo;
  p.seqlens_q = (const int32_t *)lq;
  p.seqlens_k = (const int32_t *)lk;
  p.alibi_slopes = (const float *)slopes;
  return p;
}

static void build(arun *r, const acase *c, seqk_dtype dt) {
  memset(r, 0, sizeof *r);
  r->c = c;
  r->dt = dt;
  const int64_t qs[4] = {c->B, c->H, c->Sq, c->D}, ks[4] = {c->B, c->Hk, c->Sk, c->D},
                vs[4] = {c->B, c->Hk, c->Sk, c->Dv}, os[4] = {c->B, c->H, c->Sq, c->Dv},
                ls[3] = {c->B, c->H, c->Sq}, bs[1] = {c->B};
  r->q = th_tensor_new(dt, 4, qs);
  r->k = th_tensor_new(dt, 4, ks);
  r->v = th_tensor_new(dt, 4, vs);
  r->o = th_tensor_new(dt, 4, os);
  r->lse = th_tensor_new(SEQK_DTYPE_F32, 3, ls);
  th_fill_normal(&r->q, &g_rng, 1.0);
  th_fill_normal(&r->k, &g_rng, 1.0);
  th_fill_normal(&r->v, &g_rng, 1.0);
  th_poison(&r->o);
  th_poison(&r->lse);
  r->lq = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  r->lk = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  th_fill_i32(&r->lq, c->lq);
  th_fill_i32(&r->lk, c->lk);
  if (c->lengths) {
    /* padding rows and keys hold NaN: reading one shows */
    for (int64_t b = 0; b < c->B; ++b) {
      for (int64_t h = 0; h < c->H; ++h)
        for (int64_t i = c->lq[b]; i < c->Sq; ++i)
          for (int64_t d = 0; d < c->D; ++d)
            th_set(&r->q, ((b * c->H + h) * c->Sq + i) * c->D + d, NAN);
      for (int64_t h = 0; h < c->Hk; ++h)
        for (int64_t j = c->lk[b]; j < c->Sk; ++j) {
          for (int64_t d = 0; d < c->D; ++d)
            th_set(&r->k, ((b * c->Hk + h) * c->Sk + j) * c->D + d, NAN);
          for (int64_t d = 0; d < c->Dv; ++d)
            th_set(&r->v, ((b * c->Hk + h) * c->Sk + j) * c->Dv + d, NAN);
        }
    }
  } else {
    r->lq = th_absent(r->lq);
    r->lk = th_absent(r->lk);
  }
  r->sl = slopes_tensor(c->slopes, c->H);
  // clang-format off
  const ref_args a = {.B = c->B, .H = c->H, .Hk = c->Hk, .Sq = c->Sq, .Sk = c->Sk, .D = c->D,
                      .Dv = c->Dv, .q = th_to_doubles(&r->q), .k = th_to_doubles(&r->k),
                      .v = th_to_doubles(&r->v), .lq = c->lengths ? c->lq : NULL,
                      .lk = c->lengths ? c->lk : NULL, .scale = c->scale, .causal = c->causal,
                      .window = c->window, .left = c->left, .right = c->right,
                      .softcap = c->softcap, .slopes = (const float *)r->sl.data};
  // clang-format on
  r->o_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq * c->Dv) * sizeof(double));
  r->lse_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq) * sizeof(double));
  reference(&a, r->o_ref, r->lse_ref);
}

static seqk_status cpu_call(arun *r, const void *slopes, seqk_tensor *o, seqk_tensor *lse) {
  const seqk_attention_params p =
      params_of(r->c, SEQK_ATTENTION_ALGO_AUTO, r->lq.data, r->lk.data, slopes);
  return seqk_attention(g_ctx, &p, &r->q, &r->k, &r->v, o, lse);
}

static void check_cpu(arun *r, const char *what) {
  char msg[300];
  snprintf(msg, sizeof msg, "%s (CPU)", what);
  if (!th_expect_status(g_ctx, cpu_call(r, r->sl.data, &r->o, &r->lse), SEQK_STATUS_SUCCESS, NULL,
                        msg))
    return;
  snprintf(msg, sizeof msg, "%s: o (CPU) vs double", what);
  th_check_close(msg, &r->o, r->o_ref, th_tol_for(r->dt));
  snprintf(msg, sizeof msg, "%s: lse (CPU) vs double", what);
  th_check_close(msg, &r->lse, r->lse_ref, th_tol_for(SEQK_DTYPE_F32));
}

typedef struct dev_run {
  const void *c; /* acase, pcase or kcase */
  seqk_attention_algo algo;
  int kernel, splits;
} dev_run;

/* in: q, k, v, seqlens_q, seqlens_k, slopes (absent ones absent); out: o, lse. */
static seqk_status dev_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const dev_run *d = (const dev_run *)user;
  const seqk_attention_params p =
      params_of((const acase *)d->c, d->algo, in[3].data, in[4].data, in[5].data);
  seqk__cuda_attention_fused_force(d->kernel, d->splits);
  const seqk_status st = seqk_attention(ctx, &p, &in[0], &in[1], &in[2], &out[0], &out[1]);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

/* Every run kind against out_ref (the CPU's o and lse). */
static void device_runs(const char *what, th_op_fn fn, const void *c, const seqk_tensor *in,
                        int n_in, const seqk_tensor *out_ref, seqk_dtype dt, int decode,
                        int packed) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  const double factor = dt == SEQK_DTYPE_F32 ? 4.0 : 1.0;
  const size_t nr = sizeof k_runs / sizeof k_runs[0], nd = sizeof k_decode_runs / sizeof k_runs[0];
  for (size_t i = 0; i < nr + (decode ? nd : 0); ++i) {
    const run_kind *k = i < nr ? &k_runs[i] : &k_decode_runs[i - nr];
    if (packed && k->algo == SEQK_ATTENTION_ALGO_UNFUSED) continue; /* fused only */
    dev_run d = {c, k->algo, k->kernel, k->splits};
    char msg[300];
    snprintf(msg, sizeof msg, "%s on CUDA (%s)", what, k->name);
    th_check_on_device(g_ctx, msg, fn, &d, in, n_in, 0, out_ref, 2, factor);
  }
}

static void check_device(arun *r, const char *what) {
  const seqk_tensor in[6] = {r->q, r->k, r->v, r->lq, r->lk, r->sl};
  const seqk_tensor out[2] = {r->o, r->lse};
  device_runs(what, dev_op, r->c, in, 6, out, r->dt, r->c->decode, 0);
  dev_run f = {r->c, SEQK_ATTENTION_ALGO_FUSED, 0, 0},
          u = {r->c, SEQK_ATTENTION_ALGO_UNFUSED, 0, 0};
  fused_vs_unfused(what, r->dt, dev_op, &f, &u, in, 6, &r->o, r->o_ref);
}

static const seqk_dtype k_dtypes[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};

static void test_attention(void) {
  // clang-format off
  static const acase cases[] = {
      /* name, B, H, Hk, Sq, Sk, D, Dv, scale, causal, window, left, right, softcap, slopes,
         lengths, lq, lk, decode */
      {"BLOOM slopes, not causal, Sq 37 < Sk 70", 2, 4, 4, 37, 70, 64, 64, 0.0f, 0, 0, 0, 0, 0.0f,
       SL_BLOOM, 0, {0}, {0}, 0},
      {"causal prefill, GQA 8/2, slopes of both signs", 1, 8, 2, 50, 90, 128, 128, 0.0f, 1, 0, 0, 0,
       0.0f, SL_MIXED, 0, {0}, {0}, 0},
      {"causal window 21, softcap 30", 1, 4, 2, 60, 80, 128, 128, 0.0f, 1, 1, 20, -1, 30.0f,
       SL_MIXED, 0, {0}, {0}, 0},
      {"decode over 700 keys, GQA 8/2", 2, 8, 2, 1, 700, 128, 128, 0.0f, 1, 0, 0, 0, 0.0f, SL_MIXED,
       0, {0}, {0}, 1},
      {"3 causal queries over 700 keys, GQA 8/2", 2, 8, 2, 3, 700, 128, 128, 0.0f, 1, 0, 0, 0, 0.0f,
       SL_BLOOM, 0, {0}, {0}, 1},
      {"causal, lengths 20/1/7/13 over 40/25/0/9 keys", 4, 2, 1, 20, 40, 64, 64, 0.0f, 1, 0, 0, 0,
       0.0f, SL_MIXED, 1, {20, 1, 7, 13}, {40, 25, 0, 9}, 0},
      {"not causal, lengths 20/1/7/13 over 33/25/0/9 keys", 4, 2, 1, 20, 40, 32, 32, 0.0f, 0, 0, 0,
       0, 0.0f, SL_BLOOM, 1, {20, 1, 7, 13}, {33, 25, 0, 9}, 0},
      {"D 20 / Dv 12 (SIMT), GQA 4/2, scale 0.8, lengths", 2, 4, 2, 11, 29, 20, 12, 0.8f, 0, 0, 0,
       0, 0.0f, SL_MIXED, 1, {11, 6}, {29, 17}, 0},
      {"D 256, causal", 1, 2, 1, 24, 40, 256, 256, 0.0f, 1, 0, 0, 0, 0.0f, SL_MIXED, 0, {0}, {0},
       0},
      {"D 176 (the 192 kernel), not causal, GQA 2/1", 1, 2, 1, 21, 37, 176, 176, 0.0f, 0, 0, 0, 0,
       0.0f, SL_BLOOM, 0, {0}, {0}, 0},
  };
  // clang-format on
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    for (int d = 0; d < 3; ++d) {
      arun r;
      char what[200];
      snprintf(what, sizeof what, "%s, %s", cases[i].name, th_dtype_name(k_dtypes[d]));
      build(&r, &cases[i], k_dtypes[d]);
      check_cpu(&r, what);
      check_device(&r, what);
    }
}

/* All-zero slopes: the result without ALiBi (CPU: against the call with NULL slopes; CUDA: each
   path with zero slopes against the CPU's result without). */
static void test_zero_slopes(void) {
  static const acase c = {"zero slopes", 2,       4, 2,  19, 33,    64,      64,
                          0.0f,          1,       1, 14, -1, 10.0f, SL_ZERO, 1,
                          {19, 12},      {33, 5}, 0};
  for (int d = 0; d < 3; ++d) {
    arun r;
    char what[200];
    snprintf(what, sizeof what, "zero slopes == no ALiBi, %s", th_dtype_name(k_dtypes[d]));
    build(&r, &c, k_dtypes[d]);
    check_cpu(&r, what);
    seqk_tensor o0 = poisoned_like(&r.o), l0 = poisoned_like(&r.lse);
    if (!th_expect_status(g_ctx, cpu_call(&r, NULL, &o0, &l0), SEQK_STATUS_SUCCESS, NULL, what))
      continue;
    char msg[260];
    snprintf(msg, sizeof msg, "%s: o (CPU)", what);
    th_check_close(msg, &r.o, th_to_doubles(&o0), th_tol_for(r.dt));
    snprintf(msg, sizeof msg, "%s: lse (CPU)", what);
    th_check_close(msg, &r.lse, th_to_doubles(&l0), th_tol_for(SEQK_DTYPE_F32));
    const seqk_tensor in[6] = {r.q, r.k, r.v, r.lq, r.lk, r.sl};
    const seqk_tensor out[2] = {o0, l0};
    device_runs(what, dev_op, r.c, in, 6, out, r.dt, 0, 0);
  }
}

/* ---- seqk_attention_packed ----------------------------------------------------------------------- */

typedef struct pcase {
  const char *name;
  int B;
  int64_t H, Hk, D, Dv, Tq, Tk;
  int32_t cu_q[MAX_B + 1], cu_k[MAX_B + 1];
  int causal, slopes;
} pcase;

static seqk_attention_params packed_params(const pcase *c, seqk_attention_algo algo,
                                           const void *slopes) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.causal = c->causal;
  p.algo = algo;
  p.alibi_slopes = (const float *)slopes;
  return p;
}

/* in: q, k, v, cu_seqlens_q, cu_seqlens_k, slopes; out: o, lse. */
static seqk_status packed_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const dev_run *d = (const dev_run *)user;
  const seqk_attention_params p = packed_params((const pcase *)d->c, d->algo, in[5].data);
  seqk__cuda_attention_fused_force(d->kernel, d->splits);
  const seqk_status st = seqk_attention_packed(ctx, &p, &in[0], &in[1], &in[2], &in[3], &in[4], 0,
                                               0, &out[0], &out[1]);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

/* The packed reference: each sequence padded into one batch of the plain reference, then
   scattered back; rows outside every sequence NaN (the poison they must keep). */
static void packed_reference(const pcase *c, const seqk_tensor *q, const seqk_tensor *k,
                             const seqk_tensor *v, const float *slopes, double *o_ref,
                             double *lse_ref) {
  const double *qd = th_to_doubles(q), *kd = th_to_doubles(k), *vd = th_to_doubles(v);
  const int64_t H = c->H, Hk = c->Hk, D = c->D, Dv = c->Dv;
  int32_t lq[MAX_B], lk[MAX_B];
  int64_t mq = 1, mk = 1;
  for (int b = 0; b < c->B; ++b) {
    lq[b] = c->cu_q[b + 1] - c->cu_q[b];
    lk[b] = c->cu_k[b + 1] - c->cu_k[b];
    mq = lq[b] > mq ? lq[b] : mq;
    mk = lk[b] > mk ? lk[b] : mk;
  }
  double *qp = (double *)th_alloc((size_t)(c->B * H * mq * D) * sizeof(double));
  double *kp = (double *)th_alloc((size_t)(c->B * Hk * mk * D) * sizeof(double));
  double *vp = (double *)th_alloc((size_t)(c->B * Hk * mk * Dv) * sizeof(double));
  double *op = (double *)th_alloc((size_t)(c->B * H * mq * Dv) * sizeof(double));
  double *lp = (double *)th_alloc((size_t)(c->B * H * mq) * sizeof(double));
  for (int b = 0; b < c->B; ++b) {
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < mq; ++i)
        for (int64_t d = 0; d < D; ++d)
          qp[((b * H + h) * mq + i) * D + d] =
              i < lq[b] ? qd[((c->cu_q[b] + i) * H + h) * D + d] : 0.0;
    for (int64_t h = 0; h < Hk; ++h)
      for (int64_t j = 0; j < mk; ++j) {
        for (int64_t d = 0; d < D; ++d)
          kp[((b * Hk + h) * mk + j) * D + d] =
              j < lk[b] ? kd[((c->cu_k[b] + j) * Hk + h) * D + d] : 0.0;
        for (int64_t d = 0; d < Dv; ++d)
          vp[((b * Hk + h) * mk + j) * Dv + d] =
              j < lk[b] ? vd[((c->cu_k[b] + j) * Hk + h) * Dv + d] : 0.0;
      }
  }
  // clang-format off
  const ref_args a = {.B = c->B, .H = H, .Hk = Hk, .Sq = mq, .Sk = mk, .D = D, .Dv = Dv, .q = qp,
                      .k = kp, .v = vp, .lq = lq, .lk = lk, .causal = c->causal, .slopes = slopes};
  // clang-format on
  reference(&a, op, lp);
  for (int64_t i = 0; i < c->Tq * H * Dv; ++i) o_ref[i] = NAN;
  for (int64_t i = 0; i < H * c->Tq; ++i) lse_ref[i] = NAN;
  for (int b = 0; b < c->B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < lq[b]; ++i) {
        const int64_t t = c->cu_q[b] + i, row = (b * H + h) * mq + i;
        for (int64_t e = 0; e < Dv; ++e) o_ref[(t * H + h) * Dv + e] = op[row * Dv + e];
        lse_ref[h * c->Tq + t] = lp[row];
      }
}

static void test_packed(void) {
  // clang-format off
  static const pcase cases[] = {
      /* name, B, H, Hk, D, Dv, Tq, Tk, cu_q, cu_k, causal, slopes */
      {"packed: 3 sequences (17/1/22 queries over 30/1/39 keys), causal, GQA 4/2, D 64", 3, 4, 2,
       64, 64, 42, 72, {1, 18, 19, 41}, {0, 30, 31, 70}, 1, SL_MIXED},
      {"packed: D 20 / Dv 12, not causal, a sequence of no keys", 3, 4, 2, 20, 12, 30, 40,
       {0, 9, 10, 28}, {2, 14, 14, 40}, 0, SL_BLOOM},
  };
  // clang-format on
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci)
    for (int d = 0; d < 3; ++d) {
      const pcase *c = &cases[ci];
      const seqk_dtype dt = k_dtypes[d];
      char what[240];
      snprintf(what, sizeof what, "%s, %s", c->name, th_dtype_name(dt));
      const int64_t qs[3] = {c->Tq, c->H, c->D}, ks[3] = {c->Tk, c->Hk, c->D},
                    vs[3] = {c->Tk, c->Hk, c->Dv}, os[3] = {c->Tq, c->H, c->Dv},
                    ls[2] = {c->H, c->Tq}, bs[1] = {c->B + 1};
      seqk_tensor q = th_tensor_new(dt, 3, qs), k = th_tensor_new(dt, 3, ks),
                  v = th_tensor_new(dt, 3, vs), o = th_tensor_new(dt, 3, os),
                  lse = th_tensor_new(SEQK_DTYPE_F32, 2, ls);
      th_fill_normal(&q, &g_rng, 1.0);
      th_fill_normal(&k, &g_rng, 1.0);
      th_fill_normal(&v, &g_rng, 1.0);
      /* rows outside every sequence hold NaN */
      for (int64_t t = 0; t < c->Tq; ++t)
        if (t < c->cu_q[0] || t >= c->cu_q[c->B])
          for (int64_t e = 0; e < c->H * c->D; ++e) th_set(&q, t * c->H * c->D + e, NAN);
      for (int64_t t = 0; t < c->Tk; ++t)
        if (t < c->cu_k[0] || t >= c->cu_k[c->B]) {
          for (int64_t e = 0; e < c->Hk * c->D; ++e) th_set(&k, t * c->Hk * c->D + e, NAN);
          for (int64_t e = 0; e < c->Hk * c->Dv; ++e) th_set(&v, t * c->Hk * c->Dv + e, NAN);
        }
      th_poison(&o);
      th_poison(&lse);
      seqk_tensor cq = th_tensor_new(SEQK_DTYPE_I32, 1, bs),
                  ck = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
      th_fill_i32(&cq, c->cu_q);
      th_fill_i32(&ck, c->cu_k);
      const seqk_tensor sl = slopes_tensor(c->slopes, c->H);
      double *o_ref = (double *)th_alloc((size_t)(c->Tq * c->H * c->Dv) * sizeof(double));
      double *lse_ref = (double *)th_alloc((size_t)(c->H * c->Tq) * sizeof(double));
      packed_reference(c, &q, &k, &v, (const float *)sl.data, o_ref, lse_ref);

      const seqk_attention_params p = packed_params(c, SEQK_ATTENTION_ALGO_AUTO, sl.data);
      char msg[300];
      snprintf(msg, sizeof msg, "%s (CPU)", what);
      if (!th_expect_status(g_ctx,
                            seqk_attention_packed(g_ctx, &p, &q, &k, &v, &cq, &ck, 0, 0, &o, &lse),
                            SEQK_STATUS_SUCCESS, NULL, msg))
        continue;
      snprintf(msg, sizeof msg, "%s: o (CPU) vs double", what);
      th_check_close(msg, &o, o_ref, th_tol_for(dt));
      snprintf(msg, sizeof msg, "%s: lse (CPU) vs double", what);
      th_check_close(msg, &lse, lse_ref, th_tol_for(SEQK_DTYPE_F32));
      const seqk_tensor in[6] = {q, k, v, cq, ck, sl};
      const seqk_tensor out[2] = {o, lse};
      device_runs(what, packed_op, c, in, 6, out, dt, 0, 1);
    }
}

/* ---- seqk_attention_kv_cache --------------------------------------------------------------------- */

typedef struct kcase {
  const char *name;
  int64_t B, H, Hk, Sq, D, Dv, page_size, max_pages;
  int causal, slopes;
  int32_t lens[MAX_B];
} kcase;

typedef struct krun {
  const kcase *c;
  seqk_dtype dt;
  seqk_kv_cache cache;
  seqk_tensor q, o, lse, lens, sl;
  double *o_ref, *lse_ref;
} krun;

static seqk_attention_params kv_params(const kcase *c, seqk_attention_algo algo,
                                       const void *slopes) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.causal = c->causal;
  p.algo = algo;
  p.alibi_slopes = (const float *)slopes;
  return p;
}

/* The page holding position t of sequence b. */
static int64_t page_of(const krun *r, int64_t b, int64_t t) {
  return (int64_t)th_get(&r->cache.page_table, b * r->c->max_pages + t / r->c->page_size);
}

/* Element (page, row, head, d) of a cache tensor [P, page_size, Hk, width], row-major. */
static int64_t cache_at(const seqk_tensor *t, int64_t page, int64_t row, int64_t h, int64_t d) {
  return ((page * t->shape[1] + row) * t->shape[2] + h) * t->shape[3] + d;
}

static void kv_build(krun *r, const kcase *c, seqk_dtype dt) {
  memset(r, 0, sizeof *r);
  r->c = c;
  r->dt = dt;
  const int64_t P = c->B * c->max_pages + 2; /* pages no sequence owns too */
  const int64_t ks[4] = {P, c->page_size, c->Hk, c->D}, vs[4] = {P, c->page_size, c->Hk, c->Dv},
                pts[2] = {c->B, c->max_pages};
  r->cache.k = th_tensor_new(dt, 4, ks);
  r->cache.v = th_tensor_new(dt, 4, vs);
  th_poison(&r->cache.k); /* NaN wherever no sequence's key lies */
  th_poison(&r->cache.v);
  r->cache.page_table = th_tensor_new(SEQK_DTYPE_I32, 2, pts);
  /* scrambled page ids (5 n + 3 mod P, distinct for P prime to 5); -1 past each length */
  int64_t n = 0;
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t s = 0; s < c->max_pages; ++s) {
      const int used = s * c->page_size < c->lens[b];
      th_set(&r->cache.page_table, b * c->max_pages + s, used ? (double)((5 * n + 3) % P) : -1.0);
      n += used;
    }
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t t = 0; t < c->lens[b]; ++t)
      for (int64_t h = 0; h < c->Hk; ++h) {
        for (int64_t d = 0; d < c->D; ++d)
          th_set(&r->cache.k, cache_at(&r->cache.k, page_of(r, b, t), t % c->page_size, h, d),
                 th_rng_normal(&g_rng));
        for (int64_t d = 0; d < c->Dv; ++d)
          th_set(&r->cache.v, cache_at(&r->cache.v, page_of(r, b, t), t % c->page_size, h, d),
                 th_rng_normal(&g_rng));
      }
  const int64_t bs[1] = {c->B}, qs[4] = {c->B, c->H, c->Sq, c->D},
                os[4] = {c->B, c->H, c->Sq, c->Dv}, ls[3] = {c->B, c->H, c->Sq};
  r->lens = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  th_fill_i32(&r->lens, c->lens);
  r->q = th_tensor_new(dt, 4, qs);
  th_fill_normal(&r->q, &g_rng, 1.0);
  r->o = th_tensor_new(dt, 4, os);
  r->lse = th_tensor_new(SEQK_DTYPE_F32, 3, ls);
  th_poison(&r->o);
  th_poison(&r->lse);
  r->sl = slopes_tensor(c->slopes, c->H);
  /* the reference over the keys gathered into [B, Hk, L, D] */
  int64_t L = 1;
  for (int64_t b = 0; b < c->B; ++b) L = c->lens[b] > L ? c->lens[b] : L;
  double *kg = (double *)th_alloc((size_t)(c->B * c->Hk * L * c->D) * sizeof(double));
  double *vg = (double *)th_alloc((size_t)(c->B * c->Hk * L * c->Dv) * sizeof(double));
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t h = 0; h < c->Hk; ++h)
      for (int64_t t = 0; t < L; ++t) {
        const int in = t < c->lens[b];
        for (int64_t d = 0; d < c->D; ++d)
          kg[((b * c->Hk + h) * L + t) * c->D + d] =
              in ? th_get(&r->cache.k,
                          cache_at(&r->cache.k, page_of(r, b, t), t % c->page_size, h, d))
                 : 0.0;
        for (int64_t d = 0; d < c->Dv; ++d)
          vg[((b * c->Hk + h) * L + t) * c->Dv + d] =
              in ? th_get(&r->cache.v,
                          cache_at(&r->cache.v, page_of(r, b, t), t % c->page_size, h, d))
                 : 0.0;
      }
  // clang-format off
  const ref_args a = {.B = c->B, .H = c->H, .Hk = c->Hk, .Sq = c->Sq, .Sk = L, .D = c->D,
                      .Dv = c->Dv, .q = th_to_doubles(&r->q), .k = kg, .v = vg, .lk = c->lens,
                      .causal = c->causal, .slopes = (const float *)r->sl.data};
  // clang-format on
  r->o_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq * c->Dv) * sizeof(double));
  r->lse_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq) * sizeof(double));
  reference(&a, r->o_ref, r->lse_ref);
}

/* in: q, cache.k, cache.v, page table, cache_seqlens, slopes; out: o, lse. */
static seqk_status kv_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const dev_run *d = (const dev_run *)user;
  seqk_kv_cache cache;
  cache.k = in[1];
  cache.v = in[2];
  cache.page_table = in[3];
  const seqk_attention_params p = kv_params((const kcase *)d->c, d->algo, in[5].data);
  seqk__cuda_attention_fused_force(d->kernel, d->splits);
  const seqk_status st = seqk_attention_kv_cache(ctx, &p, &in[0], &cache, &in[4], &out[0], &out[1]);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

static void test_kv_cache(void) {
  // clang-format off
  static const kcase cases[] = {
      /* name, B, H, Hk, Sq, D, Dv, page_size, max_pages, causal, slopes, lens */
      {"kv cache: paged decode, pages of 16, GQA 8/2, lengths 130/1/47/0", 4, 8, 2, 1, 128, 128,
       16, 9, 0, SL_MIXED, {130, 1, 47, 0}},
      {"kv cache: a causal chunk of 4, pages of 16, GQA 8/2, lengths 130/1/47/0", 4, 8, 2, 4, 128,
       128, 16, 9, 1, SL_BLOOM, {130, 1, 47, 0}},
  };
  // clang-format on
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci)
    for (int d = 0; d < 3; ++d) {
      krun r;
      char what[240], msg[300];
      snprintf(what, sizeof what, "%s, %s", cases[ci].name, th_dtype_name(k_dtypes[d]));
      kv_build(&r, &cases[ci], k_dtypes[d]);
      const seqk_attention_params p = kv_params(r.c, SEQK_ATTENTION_ALGO_AUTO, r.sl.data);
      snprintf(msg, sizeof msg, "%s (CPU)", what);
      if (!th_expect_status(
              g_ctx, seqk_attention_kv_cache(g_ctx, &p, &r.q, &r.cache, &r.lens, &r.o, &r.lse),
              SEQK_STATUS_SUCCESS, NULL, msg))
        continue;
      snprintf(msg, sizeof msg, "%s: o (CPU) vs double", what);
      th_check_close(msg, &r.o, r.o_ref, th_tol_for(r.dt));
      snprintf(msg, sizeof msg, "%s: lse (CPU) vs double", what);
      th_check_close(msg, &r.lse, r.lse_ref, th_tol_for(SEQK_DTYPE_F32));
      const seqk_tensor in[6] = {r.q, r.cache.k, r.cache.v, r.cache.page_table, r.lens, r.sl};
      const seqk_tensor out[2] = {r.o, r.lse};
      device_runs(what, kv_op, r.c, in, 6, out, r.dt, r.c->Sq == 1, 0);
      dev_run f = {r.c, SEQK_ATTENTION_ALGO_FUSED, 0, 0},
              u = {r.c, SEQK_ATTENTION_ALGO_UNFUSED, 0, 0};
      fused_vs_unfused(what, r.dt, kv_op, &f, &u, in, 6, &r.o, r.o_ref);
    }
}

/* ---- bad input ----------------------------------------------------------------------------------- */

/* The CUDA copy of each of n tensors (back: the allocations to free); 0 on failure. */
static int upload_all(const char *what, const seqk_tensor *const *src, int n, seqk_tensor *back,
                      seqk_tensor *dev) {
  memset(back, 0, (size_t)n * sizeof *back);
  for (int i = 0; i < n; ++i)
    if (th_upload(g_ctx, src[i], &back[i], &dev[i]) != SEQK_STATUS_SUCCESS) {
      TH_CHECK(0, "%s: upload: %s", what, seqk_context_last_error(g_ctx));
      return 0;
    }
  return 1;
}

/* Device o and lse still hold the host bytes they were uploaded from (the poison). */
static void check_unwritten(const char *what, const seqk_tensor *d_o, const seqk_tensor *d_lse,
                            const seqk_tensor *h_o, const seqk_tensor *h_lse) {
  seqk_tensor ho, hl;
  if (th_download(g_ctx, what, d_o, &ho) && th_download(g_ctx, what, d_lse, &hl))
    TH_CHECK(!memcmp(ho.data, h_o->data, (size_t)th_numel(h_o) * seqk_dtype_size(h_o->dtype)) &&
                 !memcmp(hl.data, h_lse->data, (size_t)th_numel(h_lse) * 4),
             "%s: the device o or lse was written", what);
}

static void test_bad_slopes(void) {
  static const acase c = {"bad", 2, 4, 2,    5,        9, 16,  16,  0.0f, 1,
                          0,     0, 0, 0.0f, SL_BLOOM, 0, {0}, {0}, 0};
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  /* CPU: a non-finite slope anywhere (here head 2) */
  for (int i = 0; i < 3; ++i) {
    arun r;
    build(&r, &c, SEQK_DTYPE_F16);
    float s[4] = {0.5f, 0.25f, bad[i], 0.0625f};
    char what[120];
    snprintf(what, sizeof what, "CPU slopes with %g at head 2", (double)bad[i]);
    th_expect_rejected(
        g_ctx, cpu_call(&r, s, &r.o, &r.lse), SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes",
        what,
        TH_SNAPS(th_snapshot_take(&r.o), th_snapshot_take(&r.lse), th_snapshot_take(&r.q),
                 th_snapshot_take(&r.k), th_snapshot_take(&r.v)));
  }
  /* CPU, packed and kv cache: a NaN slope */
  static const pcase pc = {"bad packed", 2, 4, 2, 16, 16, 7, 9, {0, 3, 7}, {0, 5, 9}, 1, SL_BLOOM};
  const int64_t qs[3] = {7, 4, 16}, ks[3] = {9, 2, 16}, ls[2] = {4, 7}, bs[1] = {3};
  seqk_tensor pq = th_tensor_new(SEQK_DTYPE_F32, 3, qs), pk = th_tensor_new(SEQK_DTYPE_F32, 3, ks),
              pv = th_tensor_new(SEQK_DTYPE_F32, 3, ks), po = th_tensor_new(SEQK_DTYPE_F32, 3, qs),
              pl = th_tensor_new(SEQK_DTYPE_F32, 2, ls), pcq = th_tensor_new(SEQK_DTYPE_I32, 1, bs),
              pck = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  th_fill_normal(&pq, &g_rng, 1.0);
  th_fill_normal(&pk, &g_rng, 1.0);
  th_fill_normal(&pv, &g_rng, 1.0);
  th_poison(&po);
  th_poison(&pl);
  th_fill_i32(&pcq, pc.cu_q);
  th_fill_i32(&pck, pc.cu_k);
  const float nan_slopes[4] = {0.5f, NAN, 0.125f, 0.0625f};
  {
    const seqk_attention_params p = packed_params(&pc, SEQK_ATTENTION_ALGO_AUTO, nan_slopes);
    th_expect_rejected(
        g_ctx, seqk_attention_packed(g_ctx, &p, &pq, &pk, &pv, &pcq, &pck, 0, 0, &po, &pl),
        SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", "packed: CPU slopes with NaN at head 1",
        TH_SNAPS(th_snapshot_take(&po), th_snapshot_take(&pl)));
  }
  static const kcase kc = {"bad kv", 2, 4, 2, 1, 16, 16, 4, 3, 0, SL_BLOOM, {9, 5}};
  krun kr;
  kv_build(&kr, &kc, SEQK_DTYPE_BF16);
  {
    const seqk_attention_params p = kv_params(&kc, SEQK_ATTENTION_ALGO_AUTO, nan_slopes);
    th_expect_rejected(
        g_ctx, seqk_attention_kv_cache(g_ctx, &p, &kr.q, &kr.cache, &kr.lens, &kr.o, &kr.lse),
        SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", "kv cache: CPU slopes with NaN at head 1",
        TH_SNAPS(th_snapshot_take(&kr.o), th_snapshot_take(&kr.lse)));
  }

  /* CUDA: finite slopes in a plain host malloc array are refused, nothing written */
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  float *host = (float *)malloc(4 * sizeof(float));
  if (!host) {
    TH_CHECK(0, "malloc");
    return;
  }
  for (int h = 0; h < 4; ++h) host[h] = 0.25f;
  {
    arun r;
    build(&r, &c, SEQK_DTYPE_F16);
    const seqk_tensor *src[5] = {&r.q, &r.k, &r.v, &r.o, &r.lse};
    seqk_tensor back[5], d[5];
    const char *what = "seqk_attention: CUDA tensors, slopes in host malloc memory";
    if (upload_all(what, src, 5, back, d)) {
      seqk_attention_params p = params_of(&c, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, host);
      th_expect_status(g_ctx, seqk_attention(g_ctx, &p, &d[0], &d[1], &d[2], &d[3], &d[4]),
                       SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", what);
      check_unwritten(what, &d[3], &d[4], &r.o, &r.lse);
      p.algo = SEQK_ATTENTION_ALGO_UNFUSED;
      th_expect_status(g_ctx, seqk_attention(g_ctx, &p, &d[0], &d[1], &d[2], &d[3], &d[4]),
                       SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", what);
      check_unwritten(what, &d[3], &d[4], &r.o, &r.lse);
    }
    for (int i = 0; i < 5; ++i) seqk_tensor_free(g_ctx, &back[i]);
  }
  {
    const seqk_tensor *src[7] = {&pq, &pk, &pv, &pcq, &pck, &po, &pl};
    seqk_tensor back[7], d[7];
    const char *what = "packed: CUDA tensors, slopes in host malloc memory";
    if (upload_all(what, src, 7, back, d)) {
      const seqk_attention_params p = packed_params(&pc, SEQK_ATTENTION_ALGO_AUTO, host);
      th_expect_status(
          g_ctx,
          seqk_attention_packed(g_ctx, &p, &d[0], &d[1], &d[2], &d[3], &d[4], 0, 0, &d[5], &d[6]),
          SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", what);
      check_unwritten(what, &d[5], &d[6], &po, &pl);
    }
    for (int i = 0; i < 7; ++i) seqk_tensor_free(g_ctx, &back[i]);
  }
  {
    const seqk_tensor *src[7] = {&kr.q,    &kr.cache.k, &kr.cache.v, &kr.cache.page_table,
                                 &kr.lens, &kr.o,       &kr.lse};
    seqk_tensor back[7], d[7];
    const char *what = "kv cache: CUDA tensors, slopes in host malloc memory";
    if (upload_all(what, src, 7, back, d)) {
      const seqk_attention_params p = kv_params(&kc, SEQK_ATTENTION_ALGO_AUTO, host);
      seqk_kv_cache cache;
      cache.k = d[1];
      cache.v = d[2];
      cache.page_table = d[3];
      th_expect_status(g_ctx,
                       seqk_attention_kv_cache(g_ctx, &p, &d[0], &cache, &d[4], &d[5], &d[6]),
                       SEQK_STATUS_INVALID_VALUE, "params.alibi_slopes", what);
      check_unwritten(what, &d[5], &d[6], &kr.o, &kr.lse);
    }
    for (int i = 0; i < 7; ++i) seqk_tensor_free(g_ctx, &back[i]);
  }
  free(host);
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0xa11b1u);
  test_attention();
  test_zero_slopes();
  test_packed();
  test_kv_cache();
  test_bad_slopes();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
