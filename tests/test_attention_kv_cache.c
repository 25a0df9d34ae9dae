/*
 * test_attention_kv_cache.c - seqk_attention_kv_cache: attention of new queries over a paged or
 * contiguous key/value cache, against seqk_attention on the CPU over the same keys gathered by
 * the test into contiguous rows (seqlens_k = the cache lengths).
 *
 * Every cache starts as NaN (every row past a sequence's length, every page no sequence owns),
 * and page-table slots past a sequence's length hold ids outside [0, num_pages): a kernel that
 * reads a row or a slot it must not turns the result into NaN or faults. Cases: decode (Sq = 1)
 * with grouped heads and a sequence of length 0 and of length 1; chunked prefill (causal
 * bottom-right, Sq = 5) with pages of 3 and a sequence shorter than its queries; pages of one
 * token with seqlens_q; pages of 256 with Dv != D; a contiguous cache with q and o as [B, S, H, D]
 * views and a strided lse; head dims 160, 192 (Dv 136) and 256, so every paged tensor-core
 * instantiation runs; a sliding window in decode and a window with a softcap in a causal chunk
 * over pages; every dtype.
 * CPU: bit-equal to seqk_attention over the gathered rows (one reference). CUDA (the emulated
 * device in CI): AUTO, FUSED with a forced split count, the fp32 SIMT kernel, and UNFUSED (the
 * gather then cuBLAS), each within the device tolerance of the CPU result; for f16/bf16 the fused
 * error is at most twice the unfused one (+ a rounding) against an fp32 reference.
 * Bad input: descriptors refused by name with nothing written; a length past the capacity or a
 * bad page id inside a sequence fails naming the sequence (CPU; CUDA with waiting checks), and
 * with deferred checks the sequence reads as empty (o = 0, lse = +inf) and seqk_context_check
 * names it.
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

enum { MAX_B = 4 };

typedef struct akv_case {
  const char *name;
  int64_t B, H, Hk, Sq, D, Dv;
  int64_t page_size; /* 0: contiguous, capacity max_pages */
  int64_t max_pages;
  int causal, seqlens_q, views;
  int32_t lens[MAX_B];
  int32_t window, window_left, window_right; /* seqk_attention_params' */
  float softcap;
} akv_case;

/* The case's attention parameters (lengths and algo set by the caller). */
static seqk_attention_params case_params(const akv_case *c) {
  seqk_attention_params p = {0};
  p.causal = c->causal;
  p.window = c->window;
  p.window_left = c->window_left;
  p.window_right = c->window_right;
  p.softcap = c->softcap;
  return p;
}

/* A built case: host tensors and what the CPU reference gave. */
typedef struct akv {
  const akv_case *c;
  seqk_dtype dt;
  seqk_kv_cache cache;
  seqk_tensor q, o, lse, lens, qlens;
  seqk_tensor o_ref, lse_ref, o_exact; /* o_exact: the reference over fp32 copies */
  int32_t qlen[MAX_B];
  int64_t num_pages, capacity;
} akv;

/* Position t of sequence b: the page and the row in it (contiguous: page b). */
static int64_t page_of(const akv *a, int64_t b, int64_t t) {
  if (a->c->page_size == 0) return b;
  return (int64_t)th_get(&a->cache.page_table, b * a->c->max_pages + t / a->c->page_size);
}
static int64_t row_of(const akv *a, int64_t t) {
  return a->c->page_size == 0 ? t : t % a->c->page_size;
}

/* Linear (row-major over the cache's logical [P, R, Hk, D] shape) index of an element. */
static int64_t cache_index(const seqk_tensor *t, int64_t page, int64_t at, int64_t h, int64_t d) {
  return ((page * t->shape[1] + at) * t->shape[2] + h) * t->shape[3] + d;
}

/* The keys (or values) of every sequence gathered into [B, Hk, L, width] (dtype dt). */
static seqk_tensor gather(const akv *a, const seqk_tensor *src, int64_t width, int64_t L,
                          seqk_dtype dt) {
  const akv_case *c = a->c;
  const int64_t shape[4] = {c->B, c->Hk, L, width};
  seqk_tensor g = th_tensor_new(dt, 4, shape);
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t h = 0; h < c->Hk; ++h)
      for (int64_t t = 0; t < L; ++t)
        for (int64_t d = 0; d < width; ++d) {
          const int64_t i = ((b * c->Hk + h) * L + t) * width + d;
          th_set(&g, i,
                 t < c->lens[b]
                     ? th_get(src, cache_index(src, page_of(a, b, t), row_of(a, t), h, d))
                     : 0.0);
        }
  return g;
}

/* [B, S, H, D] storage seen as [B, H, S, D]. */
static seqk_tensor bshd_view(seqk_dtype dt, int64_t B, int64_t H, int64_t S, int64_t D) {
  const int64_t shape[4] = {B, S, H, D};
  seqk_tensor t = th_tensor_new(dt, 4, shape);
  t.shape[1] = H, t.shape[2] = S;
  const int64_t s1 = t.stride[1];
  t.stride[1] = t.stride[2], t.stride[2] = s1;
  return t;
}

static void build(akv *a, const akv_case *c, seqk_dtype dt) {
  memset(a, 0, sizeof *a);
  a->c = c;
  a->dt = dt;
  const int paged = c->page_size > 0;
  const int64_t rows = paged ? c->page_size : c->max_pages;
  a->num_pages = paged ? c->B * c->max_pages + 3 : c->B;
  a->capacity = paged ? c->page_size * c->max_pages : c->max_pages;
  const int64_t ks[4] = {a->num_pages, rows, c->Hk, c->D},
                vs[4] = {a->num_pages, rows, c->Hk, c->Dv};
  if (paged) {
    a->cache.k = th_tensor_new(dt, 4, ks);
    a->cache.v = th_tensor_new(dt, 4, vs);
    /* a scrambled assignment of pages; slots past each length hold ids out of range */
    const int64_t pts[2] = {c->B, c->max_pages};
    a->cache.page_table = th_tensor_new(SEQK_DTYPE_I32, 2, pts);
    int64_t next = 0, m = 7; /* ids next * m + 2 mod num_pages: distinct for m prime to it */
    for (int64_t g = 0; g != 1;) {
      g = m;
      for (int64_t r = a->num_pages; r != 0;) {
        const int64_t t = g % r;
        g = r, r = t;
      }
      if (g != 1) ++m;
    }
    for (int64_t b = 0; b < c->B; ++b)
      for (int64_t s = 0; s < c->max_pages; ++s) {
        const int used = s * c->page_size < c->lens[b];
        const int64_t id = (next * m + 2) % a->num_pages;
        th_set(&a->cache.page_table, b * c->max_pages + s,
               used ? (double)id : (s % 2 ? -5.0 : (double)(a->num_pages + 100)));
        next += used;
      }
  } else {
    /* [B, S_max, Hk, D] as a view of [B, Hk, S_max, D] storage */
    const int64_t kb[4] = {c->B, c->Hk, rows, c->D}, vb[4] = {c->B, c->Hk, rows, c->Dv};
    seqk_tensor *t[2] = {&a->cache.k, &a->cache.v};
    *t[0] = th_tensor_new(dt, 4, kb);
    *t[1] = th_tensor_new(dt, 4, vb);
    for (int i = 0; i < 2; ++i) {
      const int64_t sh = t[i]->shape[1], st = t[i]->stride[1];
      t[i]->shape[1] = t[i]->shape[2], t[i]->stride[1] = t[i]->stride[2];
      t[i]->shape[2] = sh, t[i]->stride[2] = st;
    }
  }
  th_poison(&a->cache.k);
  th_poison(&a->cache.v);
  /* the sequences' rows */
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t t = 0; t < c->lens[b]; ++t)
      for (int64_t h = 0; h < c->Hk; ++h) {
        for (int64_t d = 0; d < c->D; ++d)
          th_set(&a->cache.k, cache_index(&a->cache.k, page_of(a, b, t), row_of(a, t), h, d),
                 th_rng_uniform(&g_rng, -1.5, 1.5));
        for (int64_t d = 0; d < c->Dv; ++d)
          th_set(&a->cache.v, cache_index(&a->cache.v, page_of(a, b, t), row_of(a, t), h, d),
                 th_rng_uniform(&g_rng, -1.5, 1.5));
      }
  const int64_t ls[1] = {c->B}, qs[4] = {c->B, c->H, c->Sq, c->D},
                os[4] = {c->B, c->H, c->Sq, c->Dv}, lss[3] = {c->B, c->H, c->Sq};
  a->lens = th_tensor_new(SEQK_DTYPE_I32, 1, ls);
  th_fill_i32(&a->lens, c->lens);
  for (int64_t b = 0; b < c->B; ++b) a->qlen[b] = (int32_t)(c->Sq - (b % 2));
  a->qlens = th_tensor_new(SEQK_DTYPE_I32, 1, ls);
  th_fill_i32(&a->qlens, a->qlen);
  a->q = c->views ? bshd_view(dt, c->B, c->H, c->Sq, c->D) : th_tensor_new(dt, 4, qs);
  th_fill_uniform(&a->q, &g_rng, -1.0, 1.0);
  a->o = c->views ? bshd_view(dt, c->B, c->H, c->Sq, c->Dv) : th_tensor_new(dt, 4, os);
  a->lse = c->views ? th_tensor_maybe_strided(SEQK_DTYPE_F32, 3, lss, 1)
                    : th_tensor_new(SEQK_DTYPE_F32, 3, lss);
  th_poison(&a->o);
  th_poison(&a->lse);

  /* The reference: seqk_attention over the gathered rows, in dt and over fp32 copies. */
  int64_t L = 1;
  for (int64_t b = 0; b < c->B; ++b) L = c->lens[b] > L ? c->lens[b] : L;
  seqk_attention_params p = case_params(c);
  p.seqlens_k = c->lens;
  p.seqlens_q = c->seqlens_q ? a->qlen : NULL;
  seqk_tensor kg = gather(a, &a->cache.k, c->D, L, dt), vg = gather(a, &a->cache.v, c->Dv, L, dt);
  a->o_ref = th_tensor_new(dt, 4, os);
  a->lse_ref = th_tensor_new(SEQK_DTYPE_F32, 3, lss);
  TH_CHECK(
      seqk_attention(g_ctx, &p, &a->q, &kg, &vg, &a->o_ref, &a->lse_ref) == SEQK_STATUS_SUCCESS,
      "%s: reference: %s", c->name, seqk_context_last_error(g_ctx));
  seqk_tensor q32 = th_tensor_new(SEQK_DTYPE_F32, 4, qs);
  th_fill_values(&q32, th_to_doubles(&a->q));
  seqk_tensor k32 = gather(a, &a->cache.k, c->D, L, SEQK_DTYPE_F32),
              v32 = gather(a, &a->cache.v, c->Dv, L, SEQK_DTYPE_F32);
  a->o_exact = th_tensor_new(SEQK_DTYPE_F32, 4, os);
  TH_CHECK(seqk_attention(g_ctx, &p, &q32, &k32, &v32, &a->o_exact, NULL) == SEQK_STATUS_SUCCESS,
           "%s: fp32 reference", c->name);
}

/* ---- the CPU path ------------------------------------------------------------------------------- */

static void check_cpu(akv *a, const char *what) {
  seqk_attention_params p = case_params(a->c);
  p.seqlens_q = a->c->seqlens_q ? a->qlen : NULL;
  if (!th_expect_status(
          g_ctx, seqk_attention_kv_cache(g_ctx, &p, &a->q, &a->cache, &a->lens, &a->o, &a->lse),
          SEQK_STATUS_SUCCESS, NULL, what))
    return;
  char msg[320];
  snprintf(msg, sizeof msg, "%s: o (CPU)", what);
  th_check_close(msg, &a->o, th_to_doubles(&a->o_ref), (th_tol){0, 0});
  snprintf(msg, sizeof msg, "%s: lse (CPU)", what);
  th_check_close(msg, &a->lse, th_to_doubles(&a->lse_ref), (th_tol){0, 0});
}

/* ---- CUDA: every path against the CPU's result ------------------------------------------------ */

typedef struct dev_run {
  const akv *a;
  seqk_attention_algo algo;
  int kernel, splits; /* seqk__cuda_attention_fused_force */
} dev_run;

/* in: q, cache.k, cache.v, page table (absent when contiguous), lens, qlens; out: o, lse. */
static seqk_status dev_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const dev_run *r = (const dev_run *)user;
  seqk_kv_cache cache;
  cache.k = in[1];
  cache.v = in[2];
  cache.page_table = in[3];
  seqk_attention_params p = case_params(r->a->c);
  p.algo = r->algo;
  p.seqlens_q = r->a->c->seqlens_q ? (const int32_t *)in[5].data : NULL;
  seqk__cuda_attention_fused_force(r->kernel, r->splits);
  const seqk_status st = seqk_attention_kv_cache(ctx, &p, &in[0], &cache, &in[4], &out[0], &out[1]);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

static void check_device(akv *a, const char *what) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  const seqk_tensor in[6] = {a->q,       a->cache.k,
                             a->cache.v, a->c->page_size ? a->cache.page_table : th_absent(a->lens),
                             a->lens,    a->qlens};
  const seqk_tensor out[2] = {a->o_ref, a->lse_ref};
  static const struct {
    const char *name;
    seqk_attention_algo algo;
    int kernel, splits;
  } runs[] = {{"auto", SEQK_ATTENTION_ALGO_AUTO, 0, 0},
              {"fused, 3 splits", SEQK_ATTENTION_ALGO_FUSED, 0, 3},
              {"fused SIMT", SEQK_ATTENTION_ALGO_FUSED, 1, 0},
              {"unfused", SEQK_ATTENTION_ALGO_UNFUSED, 0, 0}};
  const double factor = a->dt == SEQK_DTYPE_F32 ? 4.0 : 1.0;
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; ++i) {
    dev_run r = {a, runs[i].algo, runs[i].kernel, runs[i].splits};
    char msg[320];
    snprintf(msg, sizeof msg, "%s on CUDA (%s)", what, runs[i].name);
    th_check_on_device(g_ctx, msg, dev_op, &r, in, 6, 0, out, 2, factor);
  }
}

/* f16/bf16: the fused error at most twice the unfused (same precision) one against fp32. */
static double max_err(const seqk_tensor *got, const seqk_tensor *exact) {
  const double *g = th_to_doubles(got), *e = th_to_doubles(exact);
  double m = 0.0;
  for (int64_t i = 0; i < th_numel(exact); ++i) {
    const double d = fabs(g[i] - e[i]);
    if (!(d <= m)) m = d; /* NaN wins */
  }
  return m;
}

static seqk_tensor run_on_device(akv *a, seqk_attention_algo algo, const char *what) {
  seqk_tensor bq, bk, bv, bp, bl, bo, dq, dk, dv, dp, dl, d_o, host;
  seqk_kv_cache cache;
  memset(&host, 0, sizeof host);
  TH_CHECK(th_upload(g_ctx, &a->q, &bq, &dq) == SEQK_STATUS_SUCCESS &&
               th_upload(g_ctx, &a->cache.k, &bk, &dk) == SEQK_STATUS_SUCCESS &&
               th_upload(g_ctx, &a->cache.v, &bv, &dv) == SEQK_STATUS_SUCCESS &&
               th_upload(g_ctx, &a->lens, &bl, &dl) == SEQK_STATUS_SUCCESS &&
               th_upload(g_ctx, &a->o, &bo, &d_o) == SEQK_STATUS_SUCCESS,
           "%s: upload", what);
  cache.k = dk;
  cache.v = dv;
  cache.page_table = th_absent(a->lens);
  memset(&bp, 0, sizeof bp);
  if (a->c->page_size) {
    TH_CHECK(th_upload(g_ctx, &a->cache.page_table, &bp, &dp) == SEQK_STATUS_SUCCESS, "%s: table",
             what);
    cache.page_table = dp;
  }
  seqk_attention_params p = case_params(a->c);
  p.algo = algo;
  TH_CHECK(seqk_attention_kv_cache(g_ctx, &p, &dq, &cache, &dl, &d_o, NULL) == SEQK_STATUS_SUCCESS,
           "%s: %s", what, seqk_context_last_error(g_ctx));
  th_download(g_ctx, what, &d_o, &host);
  seqk_tensor_free(g_ctx, &bq);
  seqk_tensor_free(g_ctx, &bk);
  seqk_tensor_free(g_ctx, &bv);
  seqk_tensor_free(g_ctx, &bl);
  seqk_tensor_free(g_ctx, &bo);
  if (a->c->page_size) seqk_tensor_free(g_ctx, &bp);
  return host;
}

static void check_quality(akv *a, const char *what) {
  if (seqk_cuda_device_count() == 0 || a->dt == SEQK_DTYPE_F32 || a->c->seqlens_q) return;
  const seqk_tensor fused = run_on_device(a, SEQK_ATTENTION_ALGO_FUSED, what);
  const seqk_tensor unfused = run_on_device(a, SEQK_ATTENTION_ALGO_UNFUSED, what);
  if (!fused.data || !unfused.data) return;
  const double ef = max_err(&fused, &a->o_exact), eu = max_err(&unfused, &a->o_exact);
  const double slack = a->dt == SEQK_DTYPE_F16 ? 0x1p-12 : 0x1p-9;
  TH_CHECK(ef <= 2.0 * eu + slack, "%s: fused error %.3g exceeds 2 x the unfused error %.3g + %.3g",
           what, ef, eu, slack);
}

static void test_cases(void) {
  // clang-format off
  static const akv_case cases[] = {
      /* name, B, H, Hk, Sq, D, Dv, page_size, max_pages, causal, seqlens_q, views, lens,
         window, window_left, window_right, softcap */
      {"decode, pages of 16, GQA 8/2", 4, 8, 2, 1, 64, 64, 16, 8, 0, 0, 0, {1, 37, 100, 0}, 0, 0, 0, 0.0f},
      {"decode, pages of 16, D 128, causal", 3, 4, 1, 1, 128, 128, 16, 20, 1, 0, 0, {300, 5, 64}, 0, 0, 0, 0.0f},
      {"chunked prefill, pages of 3", 3, 4, 2, 5, 40, 40, 3, 12, 1, 0, 0, {11, 3, 30}, 0, 0, 0, 0.0f},
      {"pages of 1, seqlens_q", 2, 2, 1, 2, 32, 32, 1, 20, 1, 1, 0, {17, 2}, 0, 0, 0, 0.0f},
      {"pages of 256, Dv != D", 2, 4, 4, 3, 96, 64, 256, 2, 0, 0, 0, {300, 257}, 0, 0, 0, 0.0f},
      {"contiguous, [B,S,H,D] views", 3, 6, 3, 4, 64, 64, 0, 70, 1, 0, 1, {70, 9, 4}, 0, 0, 0, 0.0f},
      {"odd head dim", 2, 3, 1, 2, 20, 12, 5, 4, 1, 0, 0, {13, 20}, 0, 0, 0, 0.0f},
      /* the paged tensor-core kernel at its other head dims (160, 192, 256) */
      {"D 160, pages of 8", 2, 2, 1, 1, 160, 160, 8, 6, 0, 0, 0, {41, 7}, 0, 0, 0, 0.0f},
      {"D 192 / Dv 136, pages of 32", 1, 4, 2, 3, 192, 136, 32, 3, 1, 0, 0, {70}, 0, 0, 0, 0.0f},
      {"D 256, pages of 2", 2, 2, 2, 1, 256, 256, 2, 40, 0, 0, 0, {77, 1}, 0, 0, 0, 0.0f},
      /* sliding window and softcap over pages: decode sees the last 33 keys; a chunk of 6 causal
         queries with a window of 21 keys, capped at 4 (D 128: the paged 160 kernel serves it) */
      {"decode, window 32, pages of 16", 3, 4, 2, 1, 64, 64, 16, 12, 0, 0, 0, {150, 20, 33}, 1, 32, -1, 0.0f},
      {"chunked prefill, window 20, softcap 4, pages of 8", 2, 4, 1, 6, 128, 128, 8, 10, 1, 0, 0, {75, 6}, 1, 20, 0, 4.0f},
  };
  // clang-format on
  const seqk_dtype dts[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    for (int d = 0; d < 3; ++d) {
      akv a;
      char what[200];
      snprintf(what, sizeof what, "%s, %s", cases[i].name, th_dtype_name(dts[d]));
      build(&a, &cases[i], dts[d]);
      check_cpu(&a, what);
      check_device(&a, what);
      check_quality(&a, what);
    }
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static const akv_case k_small = {"small", 2, 4, 2, 2, 16, 16, 4, 3, 1, 0, 0, {9, 5}, 0, 0, 0, 0.0f};

static void test_bad_descriptors(void) {
  akv a;
  build(&a, &k_small, SEQK_DTYPE_F16);
  const int32_t host_lens[2] = {1, 1};
#define REFUSED(needle, ...)                                                                       \
  do {                                                                                             \
    seqk_kv_cache cc = a.cache;                                                                    \
    seqk_tensor q = a.q, l = a.lens, o = a.o, lse = a.lse;                                         \
    seqk_attention_params p = {0};                                                                 \
    __VA_ARGS__;                                                                                   \
    th_expect_rejected(                                                                            \
        g_ctx, seqk_attention_kv_cache(g_ctx, &p, &q, &cc, &l, &o, &lse),                          \
        SEQK_STATUS_INVALID_VALUE, needle, "bad descriptor: " needle,                              \
        TH_SNAPS(th_snapshot_take(&a.o), th_snapshot_take(&a.lse), th_snapshot_take(&a.cache.k))); \
  } while (0)
  REFUSED("params.seqlens_k", p.seqlens_k = host_lens);
  REFUSED("params.scale", p.scale = NAN);
  REFUSED("cache_seqlens", l.dtype = SEQK_DTYPE_F32);
  REFUSED("cache_seqlens.shape[0]", l.shape[0] = 3);
  REFUSED("cache.page_table", cc.page_table.dtype = SEQK_DTYPE_F32);
  REFUSED("cache.page_table.shape[0]", cc.page_table.shape[0] = 1);
  REFUSED("page size", cc.k.shape[1] = 0; cc.v.shape[1] = 0);
  REFUSED("cache.k.shape[3]", q.shape[3] = 8);
  REFUSED("q", q.shape[1] = 3);
  REFUSED("o.shape[3]", o.shape[3] = 8);
  REFUSED("lse", lse.dtype = SEQK_DTYPE_F16);
  REFUSED("cache.k", cc.k.dtype = SEQK_DTYPE_F32);
  REFUSED("cache.v", cc.v.stride[3] = 2);
  REFUSED("o", o.data = a.cache.k.data);
  REFUSED("lse", lse.data = a.q.data);
  REFUSED("cache.k", q = th_on_cuda(q));
#undef REFUSED
  th_expect_status(g_ctx, seqk_attention_kv_cache(g_ctx, NULL, &a.q, NULL, &a.lens, &a.o, NULL),
                   SEQK_STATUS_INVALID_VALUE, "cache is NULL", "NULL cache");
  TH_CHECK(seqk_attention_kv_cache(NULL, NULL, &a.q, &a.cache, &a.lens, &a.o, NULL) ==
               SEQK_STATUS_INVALID_VALUE,
           "NULL ctx");
}

/* A length past the capacity (12) and a bad page id inside a sequence: named, nothing written;
   on CUDA with deferred checks the sequence reads as empty and the check names it. */
static void test_value_errors(void) {
  static const struct {
    int32_t lens[2];
    int bad_page; /* poke an out-of-range id into sequence 1's first slot */
    const char *needle;
  } cases[] = {{{9, 13}, 0, "sequence 1: cache_seqlens[1]=13"},
               {{-2, 5}, 0, "sequence 0: cache_seqlens[0]=-2"},
               {{9, 5}, 1, "sequence 1: cache_seqlens[1]=5"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    akv a;
    build(&a, &k_small, SEQK_DTYPE_F16);
    th_fill_i32(&a.lens, cases[i].lens);
    if (cases[i].bad_page) th_set(&a.cache.page_table, 1 * k_small.max_pages, 99.0);
    char what[160];
    snprintf(what, sizeof what, "bad lengths (%s)", cases[i].needle);
    seqk_attention_params p = {0};
    p.causal = 1;
    th_expect_rejected(g_ctx,
                       seqk_attention_kv_cache(g_ctx, &p, &a.q, &a.cache, &a.lens, &a.o, &a.lse),
                       SEQK_STATUS_INVALID_VALUE, cases[i].needle, what,
                       TH_SNAPS(th_snapshot_take(&a.o), th_snapshot_take(&a.lse)));
    if (seqk_cuda_device_count() == 0) continue;
    seqk_tensor bq, bk, bv, bp, bl, bo, bs, dq, dk, dv, dp, dl, d_o, ds, ho, hs;
    TH_CHECK(th_upload(g_ctx, &a.q, &bq, &dq) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.cache.k, &bk, &dk) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.cache.v, &bv, &dv) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.cache.page_table, &bp, &dp) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.lens, &bl, &dl) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.o, &bo, &d_o) == SEQK_STATUS_SUCCESS &&
                 th_upload(g_ctx, &a.lse, &bs, &ds) == SEQK_STATUS_SUCCESS,
             "%s: upload", what);
    const seqk_kv_cache dc = {dk, dv, dp};
    th_expect_status(g_ctx, seqk_attention_kv_cache(g_ctx, &p, &dq, &dc, &dl, &d_o, &ds),
                     SEQK_STATUS_INVALID_VALUE, cases[i].needle, what);
    th_download(g_ctx, what, &d_o, &ho);
    TH_CHECK(memcmp(ho.data, a.o.data, (size_t)th_numel(&a.o) * 2) == 0,
             "%s on CUDA (waiting): o was written", what);
    /* deferred: the other sequence right, the bad one empty, the check names it */
    seqk_context_t ctx;
    TH_CHECK(
        seqk_context_create(&ctx) == SEQK_STATUS_SUCCESS &&
            seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED) == SEQK_STATUS_SUCCESS,
        "deferred context");
    th_expect_status(ctx, seqk_attention_kv_cache(ctx, &p, &dq, &dc, &dl, &d_o, &ds),
                     SEQK_STATUS_SUCCESS, NULL, what);
    th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, "attention_kv_cache",
                     what);
    th_download(ctx, what, &d_o, &ho);
    th_download(ctx, what, &ds, &hs);
    const int bad = strstr(cases[i].needle, "sequence 1") ? 1 : 0;
    const int64_t per_b = k_small.H * k_small.Sq * k_small.Dv, rows_b = k_small.H * k_small.Sq;
    int zero = 1, inf = 1;
    for (int64_t e = 0; e < per_b; ++e) zero &= th_get(&ho, bad * per_b + e) == 0.0;
    for (int64_t e = 0; e < rows_b; ++e) inf &= isinf(th_get(&hs, bad * rows_b + e)) != 0;
    TH_CHECK(zero && inf, "%s on CUDA (deferred): the bad sequence does not read as empty", what);
    /* the good sequence alone on the CPU */
    const int good = 1 - bad;
    seqk_kv_cache one = a.cache;
    one.page_table = th_slice(&a.cache.page_table, 0, good, 1);
    seqk_tensor q1 = th_slice(&a.q, 0, good, 1), l1 = th_slice(&a.lens, 0, good, 1);
    const int64_t os[4] = {1, k_small.H, k_small.Sq, k_small.Dv};
    seqk_tensor o1 = th_tensor_new(SEQK_DTYPE_F16, 4, os);
    TH_CHECK(seqk_attention_kv_cache(g_ctx, &p, &q1, &one, &l1, &o1, NULL) == SEQK_STATUS_SUCCESS,
             "%s: the good sequence on the CPU", what);
    seqk_tensor got = th_slice(&ho, 0, good, 1);
    th_check_close(what, &got, th_to_doubles(&o1), th_tol_scaled(SEQK_DTYPE_F16, TH_DEVICE_TOL));
    seqk_context_destroy(ctx);
    seqk_tensor *backs[7] = {&bq, &bk, &bv, &bp, &bl, &bo, &bs};
    for (int j = 0; j < 7; ++j) seqk_tensor_free(g_ctx, backs[j]);
  }
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 1500);
  test_cases();
  test_bad_descriptors();
  test_value_errors();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
