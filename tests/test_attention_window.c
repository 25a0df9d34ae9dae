/*
 * test_attention_window.c - seqk_attention's sliding window (left and right extents around the
 * bottom-right aligned position, with and without causal) and softcap, against a double
 * reference written here from the header's words (not from the library's rule functions).
 *
 * Cases: causal windows over prefill (row tiles whose keys start past the first key tile: masked
 * tiles before the unmasked ones, and a window wide enough to have unmasked tiles between its
 * edges), a two-sided window with Sq != Sk and lengths
 * (padding rows and keys NaN), a window of one key (the diagonal), a right extent alone with
 * rows that see nothing (o = 0, lse = +inf), extents past every key (no bound), softcap alone,
 * with a negative scale, and with a window in decode over a long sequence (automatic split-KV),
 * at head dims that reach every tensor-core instantiation (32, 64 (run at 96), 96, 128, 160, 192,
 * 256) and the SIMT kernel (20);
 * every dtype. Four cases hold NaN in v at key 0, which rows whose window leaves it out must
 * never see (the fused kernels multiply whole key tiles: such rows are recomputed).
 * CPU: o and lse against the double reference over the inputs as rounded to the dtype. CUDA (the
 * emulated device in CI): AUTO, FUSED (and 3 forced splits, and the fp32 SIMT kernel), UNFUSED,
 * each within the device tolerance of the CPU result; for f16/bf16 the fused error is at most
 * twice the unfused one (+ a quarter ulp of 1) against the double reference. Bad softcaps are
 * refused by name with nothing written.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
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

typedef struct wcase {
  const char *name;
  int64_t B, H, Hk, Sq, Sk, D, Dv;
  float scale;
  int causal, window, left, right;
  float softcap;
  int lengths; /* seqlens_q[b] = Sq - 3b, seqlens_k[b] = Sk - 7b (at least 0) */
  int nan_v0;  /* v of key 0 is NaN: rows whose window leaves key 0 out must stay finite */
} wcase;

typedef struct wrun {
  const wcase *c;
  seqk_dtype dt;
  seqk_tensor q, k, v, o, lse, lq, lk;
  int32_t lq_v[4], lk_v[4];
  double *o_ref, *lse_ref; /* double reference over q, k, v as stored */
} wrun;

static seqk_attention_params params_of(const wrun *r, seqk_attention_algo algo, const int32_t *lq,
                                       const int32_t *lk) {
  seqk_attention_params p = {0};
  p.scale = r->c->scale;
  p.causal = r->c->causal;
  p.window = r->c->window;
  p.window_left = r->c->left;
  p.window_right = r->c->right;
  p.softcap = r->c->softcap;
  p.algo = algo;
  p.seqlens_q = lq;
  p.seqlens_k = lk;
  return p;
}

/* Whether query i (of sq) sees key j (of sk), in the header's words. */
static int sees(const wcase *c, int64_t i, int64_t j, int64_t sq, int64_t sk) {
  const int64_t a = i + sk - sq;
  if (i >= sq || j >= sk) return 0;
  if (c->causal && j > a) return 0;
  if (c->window && c->left >= 0 && j < a - c->left) return 0;
  if (c->window && c->right >= 0 && j > a + c->right) return 0;
  return 1;
}

static void reference(wrun *r) {
  const wcase *c = r->c;
  const double *q = th_to_doubles(&r->q), *k = th_to_doubles(&r->k), *v = th_to_doubles(&r->v);
  const double sc = c->scale != 0.0f ? c->scale : 1.0 / sqrt((double)c->D);
  const int64_t group = c->H / c->Hk;
  r->o_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq * c->Dv) * sizeof(double));
  r->lse_ref = (double *)th_alloc((size_t)(c->B * c->H * c->Sq) * sizeof(double));
  double *s = (double *)th_alloc((size_t)(c->Sk + 1) * sizeof(double));
  for (int64_t b = 0; b < c->B; ++b) {
    const int64_t sq = c->lengths ? r->lq_v[b] : c->Sq, sk = c->lengths ? r->lk_v[b] : c->Sk;
    for (int64_t h = 0; h < c->H; ++h)
      for (int64_t i = 0; i < c->Sq; ++i) {
        const int64_t row = (b * c->H + h) * c->Sq + i, kh = h / group;
        double m = -INFINITY;
        int any = 0;
        for (int64_t j = 0; j < c->Sk; ++j) {
          s[j] = -INFINITY;
          if (!sees(c, i, j, sq, sk)) continue;
          double x = 0.0;
          for (int64_t d = 0; d < c->D; ++d)
            x += q[row * c->D + d] * k[((b * c->Hk + kh) * c->Sk + j) * c->D + d];
          x *= sc;
          if (c->softcap > 0.0f) x = c->softcap * tanh(x / c->softcap);
          s[j] = x;
          m = fmax(m, x);
          any = 1;
        }
        double z = 0.0;
        for (int64_t j = 0; j < c->Sk; ++j) z += any ? exp(s[j] - m) : 0.0;
        for (int64_t e = 0; e < c->Dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < c->Sk; ++j)
            if (s[j] != -INFINITY)
              acc += exp(s[j] - m) * v[((b * c->Hk + kh) * c->Sk + j) * c->Dv + e];
          r->o_ref[row * c->Dv + e] = any ? acc / z : 0.0;
        }
        r->lse_ref[row] = any ? m + log(z) : INFINITY;
      }
  }
}

static void build(wrun *r, const wcase *c, seqk_dtype dt) {
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
  for (int64_t b = 0; b < c->B; ++b) {
    const int64_t lq = c->Sq - 3 * b, lk = c->Sk - 7 * b;
    r->lq_v[b] = (int32_t)(c->lengths ? (lq > 0 ? lq : 0) : c->Sq);
    r->lk_v[b] = (int32_t)(c->lengths ? (lk > 0 ? lk : 0) : c->Sk);
    /* padding rows and keys hold NaN: reading one shows */
    for (int64_t h = 0; h < c->H; ++h)
      for (int64_t i = r->lq_v[b]; i < c->Sq; ++i)
        for (int64_t d = 0; d < c->D; ++d)
          th_set(&r->q, ((b * c->H + h) * c->Sq + i) * c->D + d, NAN);
    for (int64_t h = 0; h < c->Hk; ++h)
      for (int64_t j = r->lk_v[b]; j < c->Sk; ++j) {
        for (int64_t d = 0; d < c->D; ++d)
          th_set(&r->k, ((b * c->Hk + h) * c->Sk + j) * c->D + d, NAN);
        for (int64_t d = 0; d < c->Dv; ++d)
          th_set(&r->v, ((b * c->Hk + h) * c->Sk + j) * c->Dv + d, NAN);
      }
  }
  if (c->nan_v0)
    for (int64_t b = 0; b < c->B; ++b)
      for (int64_t h = 0; h < c->Hk; ++h)
        for (int64_t d = 0; d < c->Dv; ++d) th_set(&r->v, (b * c->Hk + h) * c->Sk * c->Dv + d, NAN);
  r->lq = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  r->lk = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  th_fill_i32(&r->lq, r->lq_v);
  th_fill_i32(&r->lk, r->lk_v);
  if (!c->lengths) {
    r->lq = th_absent(r->lq);
    r->lk = th_absent(r->lk);
  }
  reference(r);
}

static void check_cpu(wrun *r, const char *what) {
  const seqk_attention_params p = params_of(
      r, SEQK_ATTENTION_ALGO_AUTO, r->c->lengths ? r->lq_v : NULL, r->c->lengths ? r->lk_v : NULL);
  char msg[300];
  snprintf(msg, sizeof msg, "%s (CPU)", what);
  if (!th_expect_status(g_ctx, seqk_attention(g_ctx, &p, &r->q, &r->k, &r->v, &r->o, &r->lse),
                        SEQK_STATUS_SUCCESS, NULL, msg))
    return;
  snprintf(msg, sizeof msg, "%s: o (CPU) vs double", what);
  th_check_close(msg, &r->o, r->o_ref, th_tol_for(r->dt));
  snprintf(msg, sizeof msg, "%s: lse (CPU) vs double", what);
  th_check_close(msg, &r->lse, r->lse_ref, th_tol_for(SEQK_DTYPE_F32));
}

/* ---- CUDA ---------------------------------------------------------------------------------------- */

typedef struct dev_run {
  const wrun *r;
  seqk_attention_algo algo;
  int kernel, splits; /* seqk__cuda_attention_fused_force */
} dev_run;

/* in: q, k, v, seqlens_q, seqlens_k (absent without lengths); out: o, lse. */
static seqk_status dev_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const dev_run *d = (const dev_run *)user;
  const seqk_attention_params p =
      params_of(d->r, d->algo, (const int32_t *)in[3].data, (const int32_t *)in[4].data);
  seqk__cuda_attention_fused_force(d->kernel, d->splits);
  const seqk_status st = seqk_attention(ctx, &p, &in[0], &in[1], &in[2], &out[0], &out[1]);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

static const struct {
  const char *name;
  seqk_attention_algo algo;
  int kernel, splits;
} k_runs[] = {{"auto", SEQK_ATTENTION_ALGO_AUTO, 0, 0},
              {"fused, 3 splits", SEQK_ATTENTION_ALGO_FUSED, 0, 3},
              {"fused SIMT", SEQK_ATTENTION_ALGO_FUSED, 1, 0},
              {"unfused", SEQK_ATTENTION_ALGO_UNFUSED, 0, 0}};

static void check_device(wrun *r, const char *what) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  const seqk_tensor in[5] = {r->q, r->k, r->v, r->lq, r->lk};
  const seqk_tensor out[2] = {r->o, r->lse};
  const double factor = r->dt == SEQK_DTYPE_F32 ? 4.0 : 1.0;
  for (size_t i = 0; i < sizeof k_runs / sizeof k_runs[0]; ++i) {
    dev_run d = {r, k_runs[i].algo, k_runs[i].kernel, k_runs[i].splits};
    char msg[300];
    snprintf(msg, sizeof msg, "%s on CUDA (%s)", what, k_runs[i].name);
    th_check_on_device(g_ctx, msg, dev_op, &d, in, 5, 0, out, 2, factor);
  }
}

/* o of one device run, copied back (data NULL on failure). */
static seqk_tensor run_on_device(wrun *r, seqk_attention_algo algo, const char *what) {
  seqk_tensor b[6], d[6], host;
  const seqk_tensor *src[6] = {&r->q, &r->k, &r->v, &r->o, &r->lq, &r->lk};
  memset(&host, 0, sizeof host);
  memset(b, 0, sizeof b);
  const int n = r->c->lengths ? 6 : 4;
  for (int i = 0; i < n; ++i)
    if (th_upload(g_ctx, src[i], &b[i], &d[i]) != SEQK_STATUS_SUCCESS) {
      TH_CHECK(0, "%s: upload", what);
      return host;
    }
  const seqk_attention_params p =
      params_of(r, algo, r->c->lengths ? (const int32_t *)d[4].data : NULL,
                r->c->lengths ? (const int32_t *)d[5].data : NULL);
  if (seqk_attention(g_ctx, &p, &d[0], &d[1], &d[2], &d[3], NULL) == SEQK_STATUS_SUCCESS)
    th_download(g_ctx, what, &d[3], &host);
  else
    TH_CHECK(0, "%s: %s", what, seqk_context_last_error(g_ctx));
  for (int i = 0; i < n; ++i) seqk_tensor_free(g_ctx, &b[i]);
  return host;
}

static double max_err(const seqk_tensor *got, const double *exact) {
  const double *g = th_to_doubles(got);
  double m = 0.0;
  for (int64_t i = 0; i < th_numel(got); ++i) {
    if (isnan(exact[i]) && isnan(g[i])) continue; /* a row that sees a NaN */
    const double d = fabs(g[i] - exact[i]);
    if (!(d <= m)) m = d; /* NaN wins */
  }
  return m;
}

static void check_quality(wrun *r, const char *what) {
  if (seqk_cuda_device_count() == 0 || r->dt == SEQK_DTYPE_F32) return;
  const seqk_tensor fused = run_on_device(r, SEQK_ATTENTION_ALGO_FUSED, what);
  const seqk_tensor unfused = run_on_device(r, SEQK_ATTENTION_ALGO_UNFUSED, what);
  if (!fused.data || !unfused.data) return;
  const double ef = max_err(&fused, r->o_ref), eu = max_err(&unfused, r->o_ref);
  const double slack = r->dt == SEQK_DTYPE_F16 ? 0x1p-12 : 0x1p-9;
  TH_CHECK(ef <= 2.0 * eu + slack, "%s: fused error %.3g exceeds 2 x the unfused error %.3g + %.3g",
           what, ef, eu, slack);
}

static void test_cases(void) {
  static const wcase cases[] = {
      /* name, B, H, Hk, Sq, Sk, D, Dv, scale, causal, window, left, right, softcap, lengths,
         nan_v0 */
      {"causal window 38, prefill", 2, 4, 2, 150, 150, 64, 64, 0.0f, 1, 1, 37, -1, 0.0f, 0, 0},
      {"causal window 201, unmasked tiles between the edges, v[0] NaN", 1, 2, 1, 300, 300, 128, 128,
       0.0f, 1, 1, 200, -1, 0.0f, 0, 1},
      {"window (20, 9), Sq < Sk, lengths, v[0] NaN", 3, 2, 1, 70, 200, 128, 128, 0.0f, 0, 1, 20, 9,
       0.0f, 1, 1},
      {"window of the diagonal alone", 1, 2, 2, 17, 17, 32, 32, 0.0f, 1, 1, 0, 0, 0.0f, 0, 0},
      {"right extent alone, Sq > Sk (rows without keys)", 2, 3, 1, 40, 20, 40, 24, 0.0f, 0, 1, -1,
       3, 0.0f, 0, 0},
      {"extents past every key", 2, 2, 1, 9, 30, 64, 64, 0.0f, 1, 1, 1 << 30, 2147483647, 0.0f, 0,
       0},
      {"softcap 4", 2, 4, 2, 33, 97, 32, 32, 1.5f, 1, 0, 0, 0, 4.0f, 0, 0},
      {"softcap 2, negative scale", 1, 2, 1, 20, 45, 96, 96, -0.9f, 0, 0, 0, 0, 2.0f, 0, 0},
      {"decode, window 65, softcap 30, GQA 8/2", 2, 8, 2, 1, 300, 96, 96, 0.0f, 1, 1, 64, -1, 30.0f,
       1, 0},
      {"softcap 5 and window (6, 6), odd head dim", 2, 2, 1, 11, 23, 20, 12, 1.0f, 0, 1, 6, 6, 5.0f,
       1, 0},
      /* the other tensor-core instantiations with both modifiers (160, 192 with Dv 136, 256) */
      {"D 160, causal window 9, softcap 6", 1, 2, 1, 21, 40, 160, 160, 0.0f, 1, 1, 8, -1, 6.0f, 0,
       1},
      {"D 192 / Dv 136, window (5, 3), softcap 3", 1, 2, 2, 12, 30, 192, 136, 0.0f, 0, 1, 5, 3,
       3.0f, 0, 0},
      {"D 256, causal window 40, softcap 20", 1, 2, 1, 70, 90, 256, 256, 0.0f, 1, 1, 39, -1, 20.0f,
       0, 1},
  };
  const seqk_dtype dts[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    for (int d = 0; d < 3; ++d) {
      wrun r;
      char what[200];
      snprintf(what, sizeof what, "%s, %s", cases[i].name, th_dtype_name(dts[d]));
      build(&r, &cases[i], dts[d]);
      check_cpu(&r, what);
      check_device(&r, what);
      check_quality(&r, what);
    }
}

/* A window covering every key gives the plain result, bit for bit (CPU). */
static void test_unbounded_is_plain(void) {
  static const wcase c = {"plain", 2, 2, 1, 5, 12, 16, 16, 0.0f, 1, 1, 12 + 5, 3, 0.0f, 0, 0};
  wrun r;
  build(&r, &c, SEQK_DTYPE_F32);
  seqk_attention_params p = params_of(&r, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL);
  seqk_tensor o2 = th_tensor_new(SEQK_DTYPE_F32, 4, r.o.shape);
  TH_CHECK(seqk_attention(g_ctx, &p, &r.q, &r.k, &r.v, &r.o, NULL) == SEQK_STATUS_SUCCESS,
           "window over every key");
  p.window = 0;
  TH_CHECK(seqk_attention(g_ctx, &p, &r.q, &r.k, &r.v, &o2, NULL) == SEQK_STATUS_SUCCESS, "causal");
  th_check_close("a window over every key == causal alone", &r.o, th_to_doubles(&o2),
                 (th_tol){0, 0});
}

static void test_bad_softcap(void) {
  static const wcase c = {"bad", 1, 2, 1, 3, 4, 8, 8, 0.0f, 0, 0, 0, 0, 0.0f, 0, 0};
  const float bad[3] = {-1.0f, NAN, INFINITY};
  for (int dev = 0; dev < 2; ++dev) {
    if (dev && seqk_cuda_device_count() == 0) break;
    for (int i = 0; i < 3; ++i) {
      wrun r;
      build(&r, &c, SEQK_DTYPE_F32);
      seqk_tensor b[5], d[5];
      const seqk_tensor *src[5] = {&r.q, &r.k, &r.v, &r.o, &r.lse};
      for (int t = 0; t < 5; ++t) {
        d[t] = *src[t];
        if (dev && th_upload(g_ctx, src[t], &b[t], &d[t]) != SEQK_STATUS_SUCCESS)
          TH_CHECK(0, "upload");
      }
      seqk_attention_params p = params_of(&r, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL);
      p.softcap = bad[i];
      th_watch_reset();
      th_watch(&r.o);
      th_watch(&r.lse);
      char what[100];
      snprintf(what, sizeof what, "softcap %g (%s)", (double)bad[i], dev ? "CUDA" : "CPU");
      const seqk_status st = seqk_attention(g_ctx, &p, &d[0], &d[1], &d[2], &d[3], &d[4]);
      if (dev) { /* the device outputs must still be what was uploaded */
        seqk_tensor ho, hl;
        if (th_download(g_ctx, what, &d[3], &ho) && th_download(g_ctx, what, &d[4], &hl))
          TH_CHECK(
              !memcmp(ho.data, r.o.data, (size_t)th_numel(&r.o) * seqk_dtype_size(r.o.dtype)) &&
                  !memcmp(hl.data, r.lse.data, (size_t)th_numel(&r.lse) * 4),
              "%s: the device o and lse were written", what);
        for (int t = 0; t < 5; ++t) seqk_tensor_free(g_ctx, &b[t]);
      }
      th_expect_rejected_watched(g_ctx, st, SEQK_STATUS_INVALID_VALUE, "params.softcap", what);
    }
  }
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x57151d3u);
  test_cases();
  test_unbounded_is_plain();
  test_bad_softcap();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
