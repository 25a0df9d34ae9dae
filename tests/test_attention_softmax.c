/*
 * test_attention_softmax.c - the softmax of the unfused attention path,
 * seqk__cuda_attention_softmax (host/cuda_softmax.c, kernels/softmax.cu). seqk_attention's unfused
 * path reaches it only behind a GEMM, so the test calls it directly: fp32 scores are made on the CPU,
 * copied to a CUDA tensor, turned into p (and lse) by the launcher, copied back and compared with
 * a double computation written here from seqk_attention's contract (causal bottom-right per
 * batch, seqlens_q / seqlens_k, empty rows p = 0 and lse = +inf).
 * Covered: Sq == Sk, Sq > Sk (rows with no visible key), Sq < Sk, lengths (with zeros, with and
 * without causal), negative scale, Sk == 0, no lse, f32/f16/bf16 p, padded p and lse (their gaps
 * must stay untouched), a misaligned p start and Sk % 4 != 0 (scalar fallback), the causal edge
 * inside a 16-byte chunk, every row variant (WARP, BLOCK, TWOPASS), p written over the scores
 * themselves, and bit-for-bit agreement with seqk_softmax on unmasked rows (one row machinery).
 * Without a CUDA device the test is skipped (exit 77); the emulated build always runs it.
 */
#include "harness.h"
#include "cuda_ops.h"
#include "geometry.h"
#include "numeric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(SEQK_HAVE_CUDA)
/* The plain build compiles tests without the library's CUDA flag: the launcher exists only when
   the library was built with CUDA, so it is looked up weakly and the test skips without it. (The
   seqk_softmax cross-check below references ops_attention.o, which pulls softmax.cu's object,
   launcher included, out of the static library.) */
#pragma weak seqk__cuda_attention_softmax
#define LAUNCHER_LINKED (seqk__cuda_attention_softmax != NULL)
#else
#define LAUNCHER_LINKED 1
#endif

enum { LENS_NONE, LENS_BOTH, LENS_K };
enum { LAYOUT_CONTIGUOUS, LAYOUT_PADDED, LAYOUT_MISALIGNED, LAYOUT_OVER_SCORES };

typedef struct acase {
  const char *name;
  seqk_dtype dtype;
  int64_t B, H, Sq, Sk;
  int causal;
  float scale;
  int lens;   /* LENS_* */
  int layout; /* LAYOUT_*: p (and lse) layout */
  int with_lse;
} acase;

/* The contract, in double: p [B,H,Sq,Sk] and lse [B,H,Sq] row-major. */
static void reference(const acase *c, const float *s, const int32_t *lq, const int32_t *lk,
                      double *p, double *lse) {
  for (int64_t b = 0; b < c->B; ++b) {
    const int64_t sq = lq ? lq[b] : c->Sq, sk = lk ? lk[b] : c->Sk;
    for (int64_t h = 0; h < c->H; ++h)
      for (int64_t i = 0; i < c->Sq; ++i) {
        const int64_t row = (b * c->H + h) * c->Sq + i;
        int64_t visible = i < sq ? sk : 0;
        if (c->causal && i + sk - sq + 1 < visible) visible = i + sk - sq + 1;
        double m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < visible; ++j) m = fmax(m, (double)c->scale * s[row * c->Sk + j]);
        for (int64_t j = 0; j < visible; ++j) sum += exp((double)c->scale * s[row * c->Sk + j] - m);
        for (int64_t j = 0; j < c->Sk; ++j)
          p[row * c->Sk + j] =
              j < visible ? exp((double)c->scale * s[row * c->Sk + j] - m) / sum : 0.0;
        lse[row] = visible > 0 ? m + log(sum) : INFINITY;
      }
  }
}

/* A CUDA tensor with t's layout over a copy of t's whole span (gaps included), starting `off`
   elements into a fresh allocation (backing). Returns 1 on success. */
static int upload_span(seqk_context_t ctx, const seqk_tensor *t, int64_t off, seqk_tensor *backing,
                       seqk_tensor *dev) {
  const int64_t span = seqk__span(t), n[1] = {span + off};
  const size_t es = seqk_dtype_size(t->dtype);
  memset(backing, 0, sizeof *backing);
  *dev = *t;
  dev->device = SEQK_DEVICE_CUDA;
  dev->data = NULL;
  if (span == 0) return 1;
  if (seqk_tensor_alloc(ctx, backing, t->dtype, SEQK_DEVICE_CUDA, 1, n) != SEQK_STATUS_SUCCESS)
    return 0;
  dev->data = (char *)backing->data + off * es;
  seqk_tensor hs = seqk_tensor_view(t->data, t->dtype, SEQK_DEVICE_CPU, 1, &span);
  seqk_tensor ds = seqk_tensor_view(dev->data, t->dtype, SEQK_DEVICE_CUDA, 1, &span);
  return seqk_tensor_copy(ctx, &ds, &hs) == SEQK_STATUS_SUCCESS;
}

/* The span of dev back into host (same layout). Returns 1 on success. */
static int download_span(seqk_context_t ctx, const seqk_tensor *dev, seqk_tensor *host) {
  const int64_t span = seqk__span(host);
  if (span == 0) return 1;
  seqk_tensor hs = seqk_tensor_view(host->data, host->dtype, SEQK_DEVICE_CPU, 1, &span);
  seqk_tensor ds = seqk_tensor_view(dev->data, dev->dtype, SEQK_DEVICE_CUDA, 1, &span);
  if (seqk_tensor_copy(ctx, &hs, &ds) != SEQK_STATUS_SUCCESS) return 0;
  th_digest_span(host->data, (size_t)span * seqk_dtype_size(host->dtype));
  return 1;
}

/* Every place in t's span that belongs to no element still reads NaN (the poison; the staging
   copies keep NaN a NaN, not its bit pattern). */
static int gaps_poisoned(const seqk_tensor *t) {
  const int64_t span = seqk__span(t), n = th_numel(t);
  if (span == 0) return 1;
  unsigned char *mark = (unsigned char *)th_alloc((size_t)span);
  memset(mark, 0, (size_t)span);
  for (int64_t i = 0; i < n; ++i) mark[seqk__offset_of_linear(t, i)] = 1;
  for (int64_t e = 0; e < span; ++e)
    if (!mark[e] && !isnan(seqk__load(t, e))) return 0;
  return 1;
}

/* Per-batch lengths: batch 0 full, batch 1 empty (when there are two), the rest random. */
static void make_lengths(th_rng *rng, int64_t B, int64_t S, int32_t *len) {
  for (int64_t b = 0; b < B; ++b)
    len[b] = b == 0 ? (int32_t)S : b == 1 ? 0 : (int32_t)th_rng_int(rng, 0, S);
}

static void run_case(seqk_context_t ctx, th_rng *rng, const acase *c) {
  const int64_t s_shape[4] = {c->B, c->H, c->Sq, c->Sk}, l_shape[3] = {c->B, c->H, c->Sq};
  const int64_t rows = c->B * c->H * c->Sq, b_shape[1] = {c->B};
  const seqk_dtype p_dt = c->layout == LAYOUT_OVER_SCORES ? SEQK_DTYPE_F32 : c->dtype;
  char what[200];

  seqk_tensor hs = th_tensor_new(SEQK_DTYPE_F32, 4, s_shape);
  th_fill_normal(&hs, rng, 2.5);
  int32_t *lq = NULL, *lk = NULL;
  if (c->lens != LENS_NONE) {
    lk = (int32_t *)th_alloc((size_t)c->B * sizeof(int32_t));
    make_lengths(rng, c->B, c->Sk, lk);
    if (c->lens == LENS_BOTH) {
      lq = (int32_t *)th_alloc((size_t)c->B * sizeof(int32_t));
      make_lengths(rng, c->B, c->Sq, lq);
      if (c->B > 2) lq[2] = (int32_t)c->Sq; /* full queries against shorter keys */
    }
  }
  double *p_ref = (double *)th_alloc((size_t)(rows * c->Sk + 1) * sizeof(double));
  double *lse_ref = (double *)th_alloc((size_t)(rows + 1) * sizeof(double));
  reference(c, (const float *)hs.data, lq, lk, p_ref, lse_ref);

  /* Host images of p and lse, poisoned, in the case's layout. */
  const int64_t p_pad[4] = {1, 2, 1, 3}, l_pad[3] = {0, 1, 2};
  const int padded = c->layout == LAYOUT_PADDED;
  seqk_tensor hp =
      padded ? th_tensor_strided(p_dt, 4, s_shape, p_pad, 1) : th_tensor_new(p_dt, 4, s_shape);
  seqk_tensor hl = padded ? th_tensor_strided(SEQK_DTYPE_F32, 3, l_shape, l_pad, 1)
                          : th_tensor_new(SEQK_DTYPE_F32, 3, l_shape);
  th_poison(&hp);
  th_poison(&hl);

  seqk_tensor bs, bp, bl, bq, bk, ds, dp, dl;
  memset(&bq, 0, sizeof bq);
  memset(&bk, 0, sizeof bk);
  int ok = upload_span(ctx, &hs, 0, &bs, &ds);
  if (c->layout == LAYOUT_OVER_SCORES) {
    memset(&bp, 0, sizeof bp);
    dp = ds; /* p is written over the scores it is computed from */
  } else {
    ok = ok && upload_span(ctx, &hp, c->layout == LAYOUT_MISALIGNED ? 1 : 0, &bp, &dp);
  }
  ok = ok && upload_span(ctx, &hl, 0, &bl, &dl);
  if (ok && lk) {
    seqk_tensor t = th_tensor_new(SEQK_DTYPE_I32, 1, b_shape);
    th_fill_i32(&t, lk);
    ok = seqk_tensor_alloc(ctx, &bk, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, b_shape) ==
             SEQK_STATUS_SUCCESS &&
         seqk_tensor_copy(ctx, &bk, &t) == SEQK_STATUS_SUCCESS;
  }
  if (ok && lq) {
    seqk_tensor t = th_tensor_new(SEQK_DTYPE_I32, 1, b_shape);
    th_fill_i32(&t, lq);
    ok = seqk_tensor_alloc(ctx, &bq, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, b_shape) ==
             SEQK_STATUS_SUCCESS &&
         seqk_tensor_copy(ctx, &bq, &t) == SEQK_STATUS_SUCCESS;
  }
  TH_CHECK(ok, "%s: setting up CUDA tensors failed: %s", c->name, seqk_context_last_error(ctx));
  if (ok) {
    const seqk_tensor no_lse = th_absent(dl);
    const seqk_status st = seqk__cuda_attention_softmax(
        ctx, (const float *)ds.data, c->B, c->H, c->Sq, c->Sk, c->scale,
        c->causal ? 0 : -1 /* the right extent */, (const int32_t *)bq.data,
        (const int32_t *)bk.data, &dp, c->with_lse ? &dl : &no_lse);
    snprintf(what, sizeof what, "%s: launcher", c->name);
    if (th_expect_status(ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) {
      snprintf(what, sizeof what, "%s: p", c->name);
      if (download_span(ctx, &dp, &hp)) {
        th_check_close(what, &hp, p_ref, th_tol_scaled(p_dt, TH_DEVICE_TOL));
        TH_CHECK(gaps_poisoned(&hp), "%s: written between the elements of p", c->name);
      } else {
        TH_CHECK(0, "%s: copying p back failed", c->name);
      }
      snprintf(what, sizeof what, "%s: lse", c->name);
      if (download_span(ctx, &dl, &hl)) {
        if (c->with_lse) {
          th_check_close(what, &hl, lse_ref, th_tol_scaled(SEQK_DTYPE_F32, TH_DEVICE_TOL));
          TH_CHECK(gaps_poisoned(&hl), "%s: written between the elements of lse", c->name);
        } else {
          /* Absent lse: its memory must not have been touched at all. */
          int untouched = 1;
          for (int64_t e = 0; e < seqk__span(&hl); ++e) untouched &= isnan(seqk__load(&hl, e));
          TH_CHECK(untouched, "%s: lse was absent but its memory was written", c->name);
        }
      }
    }
  }
  seqk_tensor_free(ctx, &bs);
  seqk_tensor_free(ctx, &bp);
  seqk_tensor_free(ctx, &bl);
  seqk_tensor_free(ctx, &bq);
  seqk_tensor_free(ctx, &bk);
}

static void test_cases(seqk_context_t ctx, th_rng *rng) {
  const seqk_dtype F32 = SEQK_DTYPE_F32, F16 = SEQK_DTYPE_F16, BF16 = SEQK_DTYPE_BF16;
  const acase cases[] = {
      {"1x1x1x1", F32, 1, 1, 1, 1, 0, 1.0f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"causal Sq == Sk", F32, 2, 3, 5, 5, 1, 0.35f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"causal Sq > Sk (rows without keys)", F16, 1, 2, 7, 4, 1, 0.5f, LENS_NONE, LAYOUT_PADDED, 1},
      {"causal Sq < Sk", BF16, 2, 2, 3, 9, 1, 0.2f, LENS_NONE, LAYOUT_PADDED, 1},
      {"lengths, causal", F16, 4, 2, 6, 10, 1, 0.4f, LENS_BOTH, LAYOUT_PADDED, 1},
      {"lengths, not causal", BF16, 4, 3, 5, 12, 0, 0.3f, LENS_BOTH, LAYOUT_CONTIGUOUS, 1},
      {"key lengths only", F32, 3, 2, 5, 33, 0, 0.25f, LENS_K, LAYOUT_CONTIGUOUS, 1},
      {"negative scale", BF16, 2, 2, 4, 37, 0, -0.6f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"negative scale, causal, f32", F32, 1, 2, 6, 6, 1, -1.25f, LENS_NONE, LAYOUT_PADDED, 1},
      {"Sk == 0", F32, 2, 2, 3, 0, 0, 0.5f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"Sk == 0, causal, lengths", F16, 3, 1, 2, 0, 1, 0.5f, LENS_BOTH, LAYOUT_PADDED, 1},
      {"no lse", F16, 2, 2, 5, 19, 1, 0.3f, LENS_NONE, LAYOUT_CONTIGUOUS, 0},
      {"vector f32, causal edge inside chunks", F32, 1, 2, 13, 64, 1, 0.3f, LENS_NONE,
       LAYOUT_CONTIGUOUS, 1},
      {"vector f16, causal edge inside chunks", F16, 1, 2, 13, 64, 1, 0.3f, LENS_NONE,
       LAYOUT_CONTIGUOUS, 1},
      {"vector bf16, lengths, causal", BF16, 3, 2, 9, 72, 1, 0.2f, LENS_BOTH, LAYOUT_CONTIGUOUS, 1},
      {"WARP vector f32, 1 chunk per row, 4 rows per lane", F32, 2, 3, 11, 4, 1, 0.5f, LENS_BOTH,
       LAYOUT_CONTIGUOUS, 1},
      {"WARP vector f32, 4 rows per lane, rows % 4 != 0", F32, 2, 3, 7, 8, 1, 0.3f, LENS_BOTH,
       LAYOUT_CONTIGUOUS, 1},
      {"WARP vector f16, 2 rows per lane, several blocks", F16, 3, 5, 11, 16, 1, 0.3f, LENS_BOTH,
       LAYOUT_CONTIGUOUS, 1},
      {"WARP vector f32, 2 chunks x 2 rows per lane", F32, 1, 3, 5, 200, 1, 0.2f, LENS_K,
       LAYOUT_CONTIGUOUS, 1},
      {"misaligned p start (scalar)", F16, 1, 2, 4, 64, 1, 0.3f, LENS_NONE, LAYOUT_MISALIGNED, 1},
      {"Sk % 4 != 0 (scalar)", F32, 1, 2, 3, 66, 1, 0.3f, LENS_K, LAYOUT_CONTIGUOUS, 1},
      {"WARP longest rows", F16, 1, 1, 3, 1024, 1, 0.1f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"BLOCK", BF16, 3, 1, 3, 3000, 1, 0.1f, LENS_BOTH, LAYOUT_PADDED, 1},
      {"BLOCK 128x16 vector f16", F16, 1, 2, 3, 2048, 1, 0.1f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"BLOCK 128x16 vector f32, lengths", F32, 2, 1, 3, 1600, 1, 0.1f, LENS_BOTH,
       LAYOUT_CONTIGUOUS, 1},
      {"BLOCK vector f16, lengths", F16, 3, 1, 2, 4096, 1, 0.1f, LENS_BOTH, LAYOUT_CONTIGUOUS, 1},
      {"BLOCK 1024x32", F32, 1, 1, 2, 20000, 0, 0.05f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"BLOCK 1024x32 scalar, causal", F16, 1, 1, 3, 30001, 1, 0.05f, LENS_NONE, LAYOUT_CONTIGUOUS,
       1},
      {"TWOPASS", F16, 1, 1, 3, 33000, 1, 0.05f, LENS_NONE, LAYOUT_CONTIGUOUS, 1},
      {"TWOPASS, key lengths, bf16", BF16, 3, 1, 2, 33000, 0, 0.05f, LENS_K, LAYOUT_PADDED, 1},
      {"p over the scores (WARP)", F32, 2, 2, 5, 40, 1, 0.3f, LENS_NONE, LAYOUT_OVER_SCORES, 1},
      {"p over the scores (BLOCK)", F32, 1, 2, 3, 3000, 1, 0.1f, LENS_BOTH, LAYOUT_OVER_SCORES, 1},
      {"p over the scores (TWOPASS)", F32, 1, 1, 2, 33001, 1, 0.05f, LENS_NONE, LAYOUT_OVER_SCORES,
       1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(ctx, rng, &cases[i]);
}

/* Unmasked rows with scale 1 are plain softmax rows: the attention launcher and seqk_softmax run
   the same kernels with the same numbers, so they must agree bit for bit. */
static void test_same_as_softmax(seqk_context_t ctx, th_rng *rng) {
  static const int64_t sks[3] = {100, 3000, 20000};
  for (int t = 0; t < 3; ++t) {
    const int64_t shape[4] = {1, 2, 3, sks[t]};
    seqk_tensor hs = th_tensor_new(SEQK_DTYPE_F32, 4, shape);
    seqk_tensor ha = th_tensor_new(SEQK_DTYPE_F32, 4, shape),
                hb = th_tensor_new(SEQK_DTYPE_F32, 4, shape);
    th_fill_normal(&hs, rng, 3.0);
    seqk_tensor bs, ba, bb, ds, da, db;
    int ok = upload_span(ctx, &hs, 0, &bs, &ds) && upload_span(ctx, &ha, 0, &ba, &da) &&
             upload_span(ctx, &hb, 0, &bb, &db);
    ok = ok && seqk__cuda_attention_softmax(ctx, (const float *)ds.data, 1, 2, 3, sks[t], 1.0f, -1,
                                            NULL, NULL, &da, NULL) == SEQK_STATUS_SUCCESS;
    ok = ok && seqk_softmax(ctx, &ds, 3, &db) == SEQK_STATUS_SUCCESS;
    ok = ok && download_span(ctx, &da, &ha) && download_span(ctx, &db, &hb);
    TH_CHECK(ok, "Sk=%lld: running both softmaxes failed: %s", (long long)sks[t],
             seqk_context_last_error(ctx));
    if (ok)
      TH_CHECK(memcmp(ha.data, hb.data, (size_t)th_numel(&ha) * 4) == 0,
               "Sk=%lld: attention softmax (scale 1, no mask) differs from seqk_softmax",
               (long long)sks[t]);
    seqk_tensor_free(ctx, &bs);
    seqk_tensor_free(ctx, &ba);
    seqk_tensor_free(ctx, &bb);
  }
}

int main(void) {
  if (seqk_cuda_device_count() == 0 || !LAUNCHER_LINKED) {
    th_skip("no CUDA device (or the library was built without CUDA)");
    return th_finish();
  }
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 4242);
  test_cases(ctx, &rng);
  test_same_as_softmax(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
