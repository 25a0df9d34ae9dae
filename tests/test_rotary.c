/*
 * test_rotary.c - seqk_rotary on the CPU against the rotation written out in this file, and on
 * CUDA tensors (in place, so run by hand rather than through th_check_on_device) against it.
 *
 * rotation:  NEOX and GPTJ x every dtype x full and partial rotary_dim, positions absent (s) or
 *            given (padded batches, negative, long-context values up to 500000), k absent or
 *            with its own head count, strided q/k/positions, S = 1 decode steps, empty batches.
 * laws:      position 0 changes nothing; the two layouts are one rotation seen through a
 *            permutation of the head dim.
 * bad input: every argument.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_dtypes[] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

/* t [B,S,H,D] rotated as seqk.h says, row-major doubles. pos NULL: position s. */
static double *rotated(const seqk_tensor *t, const int32_t *pos, const seqk_rotary_params *p) {
  const int64_t B = t->shape[0], S = t->shape[1], H = t->shape[2], D = t->shape[3];
  const int64_t rd = p->rotary_dim ? p->rotary_dim : D, half = rd / 2;
  double *v = th_to_doubles(t);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h) {
        double *x = v + ((b * S + s) * H + h) * D;
        const int32_t position = pos ? pos[b * S + s] : (int32_t)s;
        for (int64_t i = 0; i < half; ++i) {
          const float inv_freq = (float)pow((double)p->theta, -(double)(2 * i) / (double)rd);
          const float fpos = (float)position;
          const float angle = fpos * inv_freq;
          const int64_t ia = p->layout == SEQK_ROTARY_NEOX ? i : 2 * i;
          const int64_t ib = p->layout == SEQK_ROTARY_NEOX ? i + half : 2 * i + 1;
          const double a = x[ia], c = x[ib];
          x[ia] = a * cos((double)angle) - c * sin((double)angle);
          x[ib] = c * cos((double)angle) + a * sin((double)angle);
        }
      }
  return v;
}

/* The same call on CUDA copies of q, k, positions; compares with the CPU's results. */
static void rotary_on_device(const char *what, const seqk_rotary_params *p, const seqk_tensor *pos,
                             const seqk_tensor *q0, const seqk_tensor *k0, const double *q_ref,
                             const double *k_ref, seqk_dtype dt) {
  if (seqk_cuda_device_count() == 0) return;
  seqk_tensor bq, bk, bp, dq, dk, dp, hq, hk;
  memset(&bk, 0, sizeof bk);
  memset(&bp, 0, sizeof bp);
  int ok = th_expect_status(g_ctx, th_upload(g_ctx, q0, &bq, &dq), SEQK_STATUS_SUCCESS, NULL, what);
  if (ok && k0)
    ok = th_expect_status(g_ctx, th_upload(g_ctx, k0, &bk, &dk), SEQK_STATUS_SUCCESS, NULL, what);
  if (ok && pos)
    ok = th_expect_status(g_ctx, th_upload(g_ctx, pos, &bp, &dp), SEQK_STATUS_SUCCESS, NULL, what);
  if (ok && th_expect_status(g_ctx, seqk_rotary(g_ctx, p, pos ? &dp : NULL, &dq, k0 ? &dk : NULL),
                             SEQK_STATUS_SUCCESS, NULL, what)) {
    const th_tol tol = th_tol_scaled(dt, TH_DEVICE_TOL);
    if (th_download(g_ctx, what, &dq, &hq))
      TH_CHECK(th_check_close(what, &hq, q_ref, tol), "%s: q differs on CUDA", what);
    if (k0 && th_download(g_ctx, what, &dk, &hk))
      TH_CHECK(th_check_close(what, &hk, k_ref, tol), "%s: k differs on CUDA", what);
  }
  seqk_tensor_free(g_ctx, &bq);
  seqk_tensor_free(g_ctx, &bk);
  seqk_tensor_free(g_ctx, &bp);
}

typedef struct rotary_case {
  const char *name;
  int64_t B, S, H, Hk, D; /* Hk 0: no k */
  int32_t rotary_dim;
  int positions; /* 0 absent, 1 small random, 2 long context, 3 negative */
  int strided;
} rotary_case;

static void run_case(const rotary_case *c, seqk_rotary_layout layout, seqk_dtype dt) {
  const int64_t qs[4] = {c->B, c->S, c->H, c->D}, ks[4] = {c->B, c->S, c->Hk, c->D};
  const int64_t ps[2] = {c->B, c->S};
  seqk_tensor q = th_tensor_maybe_strided(dt, 4, qs, c->strided);
  seqk_tensor k = th_tensor_maybe_strided(dt, 4, ks, c->strided);
  seqk_tensor pos = th_tensor_maybe_strided(SEQK_DTYPE_I32, 2, ps, c->strided);
  th_fill_uniform(&q, &g_rng, -1.0, 1.0);
  th_fill_uniform(&k, &g_rng, -1.0, 1.0);
  int32_t *pv = th_alloc((size_t)(c->B * c->S + 1) * sizeof(int32_t));
  for (int64_t i = 0; i < c->B * c->S; ++i) {
    const int64_t s = i % c->S;
    pv[i] = c->positions == 1   ? (int32_t)(s + th_rng_int(&g_rng, 0, 40))
            : c->positions == 2 ? (int32_t)th_rng_int(&g_rng, 100000, 500000)
                                : (int32_t)th_rng_int(&g_rng, -300, 300);
  }
  th_fill_i32(&pos, pv);
  const seqk_rotary_params p = {layout, c->rotary_dim, 10000.0f};
  const seqk_tensor *pp = c->positions ? &pos : NULL;
  seqk_tensor *kp = c->Hk ? &k : NULL;
  const int32_t *pvals = c->positions ? pv : NULL;
  double *q_ref = rotated(&q, pvals, &p), *k_ref = c->Hk ? rotated(&k, pvals, &p) : NULL;
  /* Originals for the device run (the CPU call rotates q and k in place). */
  seqk_tensor q0 = th_tensor_maybe_strided(dt, 4, qs, c->strided);
  seqk_tensor k0 = th_tensor_maybe_strided(dt, 4, ks, c->strided);
  th_fill_values(&q0, th_to_doubles(&q));
  th_fill_values(&k0, th_to_doubles(&k));

  char what[160];
  snprintf(what, sizeof what, "rotary %s %s %s", layout == SEQK_ROTARY_NEOX ? "neox" : "gptj",
           c->name, th_dtype_name(dt));
  th_expect_status(g_ctx, seqk_rotary(g_ctx, &p, pp, &q, kp), SEQK_STATUS_SUCCESS, NULL, what);
  TH_CHECK(th_check_close(what, &q, q_ref, th_tol_for(dt)), "%s: q differs", what);
  if (kp) TH_CHECK(th_check_close(what, &k, k_ref, th_tol_for(dt)), "%s: k differs", what);
  rotary_on_device(what, &p, pp, &q0, kp ? &k0 : NULL, q_ref, k_ref, dt);
}

static void test_rotation(void) {
  static const rotary_case cases[] = {
      {"[2,5,3,8] no positions", 2, 5, 3, 0, 8, 0, 0, 0},
      {"[2,7,4,64] k Hk=2", 2, 7, 4, 2, 64, 0, 1, 0},
      {"[1,1,8,128] decode", 1, 1, 8, 2, 128, 0, 1, 0},
      {"partial rotary_dim 16 of 40", 2, 3, 2, 2, 40, 16, 1, 0},
      {"long context", 2, 4, 2, 1, 64, 0, 2, 0},
      {"negative positions", 3, 2, 2, 3, 32, 0, 3, 0},
      {"strided, partial 6 of 10", 2, 3, 3, 2, 10, 6, 1, 1},
      {"strided no positions", 2, 9, 2, 1, 16, 0, 0, 1},
      {"D = 2", 2, 3, 1, 1, 2, 2, 1, 0},
      {"empty batch", 0, 3, 2, 2, 8, 0, 1, 0},
      {"no heads in k", 2, 3, 2, 0, 8, 0, 1, 0},
  };
  for (int layout = 0; layout < 2; ++layout)
    for (int d = 0; d < N_DTYPES; ++d)
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        run_case(&cases[i], (seqk_rotary_layout)layout, k_dtypes[d]);
}

/* Position 0 leaves q untouched (bit for bit: cos 0 = 1, sin 0 = 0); NEOX on a head dim permuted
   [0, 2, 4, .., 1, 3, 5, ..] is GPTJ on the original. */
static void test_laws(void) {
  const int64_t shape[4] = {1, 1, 2, 12}, ps[2] = {1, 1};
  seqk_tensor q = th_tensor_new(SEQK_DTYPE_F32, 4, shape),
              pos = th_tensor_new(SEQK_DTYPE_I32, 2, ps);
  th_fill_uniform(&q, &g_rng, -1.0, 1.0);
  const int32_t zero = 0, seven = 7;
  th_fill_i32(&pos, &zero);
  const double *before = th_to_doubles(&q);
  const seqk_rotary_params neox = {SEQK_ROTARY_NEOX, 0, 500000.0f};
  th_expect_status(g_ctx, seqk_rotary(g_ctx, &neox, &pos, &q, NULL), SEQK_STATUS_SUCCESS, NULL,
                   "position 0");
  TH_CHECK(th_check_close("position 0 is the identity", &q, before, (th_tol){0, 0}),
           "position 0 changed q");

  seqk_tensor g = th_tensor_new(SEQK_DTYPE_F32, 4, shape),
              n = th_tensor_new(SEQK_DTYPE_F32, 4, shape);
  th_fill_uniform(&g, &g_rng, -1.0, 1.0);
  const double *gd = th_to_doubles(&g);
  double perm[24];
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 6; ++i) {
      perm[h * 12 + i] = gd[h * 12 + 2 * i];
      perm[h * 12 + 6 + i] = gd[h * 12 + 2 * i + 1];
    }
  th_fill_values(&n, perm);
  th_fill_i32(&pos, &seven);
  const seqk_rotary_params gptj = {SEQK_ROTARY_GPTJ, 0, 500000.0f};
  th_expect_status(g_ctx, seqk_rotary(g_ctx, &gptj, &pos, &g, NULL), SEQK_STATUS_SUCCESS, NULL,
                   "gptj");
  th_expect_status(g_ctx, seqk_rotary(g_ctx, &neox, &pos, &n, NULL), SEQK_STATUS_SUCCESS, NULL,
                   "neox");
  const double *gr = th_to_doubles(&g);
  double want[24];
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 6; ++i) {
      want[h * 12 + i] = gr[h * 12 + 2 * i];
      want[h * 12 + 6 + i] = gr[h * 12 + 2 * i + 1];
    }
  TH_CHECK(
      th_check_close("neox through the permutation is gptj", &n, want, th_tol_for(SEQK_DTYPE_F32)),
      "layouts disagree");
}

static void test_bad_input(void) {
  const int64_t qs[4] = {2, 3, 4, 8}, ks[4] = {2, 3, 2, 8}, ps[2] = {2, 3};
  seqk_tensor q = th_tensor_new(SEQK_DTYPE_F32, 4, qs), k = th_tensor_new(SEQK_DTYPE_F32, 4, ks);
  seqk_tensor pos = th_tensor_new(SEQK_DTYPE_I32, 2, ps);
  th_fill_uniform(&q, &g_rng, -1.0, 1.0);
  th_fill_uniform(&k, &g_rng, -1.0, 1.0);
  const int32_t pv[6] = {0, 1, 2, 3, 4, 5};
  th_fill_i32(&pos, pv);
  th_watch_reset();
  th_watch(&q);
  th_watch(&k);
  th_watch(&pos);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  seqk_rotary_params p = {SEQK_ROTARY_NEOX, 0, 10000.0f};
  seqk_tensor t;
#define ROT(pp, po, qq, kk, needle, what)                                                          \
  th_expect_rejected_watched(g_ctx, seqk_rotary(g_ctx, pp, po, qq, kk), INV, needle, what)
  ROT(NULL, &pos, &q, &k, "params", "NULL params");
  ROT(&p, &pos, NULL, &k, "q", "NULL q");
  p.layout = (seqk_rotary_layout)5;
  ROT(&p, &pos, &q, &k, "params.layout", "bad layout");
  p.layout = SEQK_ROTARY_GPTJ;
  p.theta = 0.0f;
  ROT(&p, &pos, &q, &k, "params.theta", "theta 0");
  p.theta = -1.0f;
  ROT(&p, &pos, &q, &k, "params.theta", "theta < 0");
  p.theta = INFINITY;
  ROT(&p, &pos, &q, &k, "params.theta", "theta inf");
  p.theta = NAN;
  ROT(&p, &pos, &q, &k, "params.theta", "theta NaN");
  p.theta = 10000.0f;
  p.rotary_dim = 7;
  ROT(&p, &pos, &q, &k, "params.rotary_dim", "odd rotary_dim");
  p.rotary_dim = 10;
  ROT(&p, &pos, &q, &k, "params.rotary_dim", "rotary_dim > D");
  p.rotary_dim = -2;
  ROT(&p, &pos, &q, &k, "params.rotary_dim", "negative rotary_dim");
  p.rotary_dim = 0;
  const int64_t odd[4] = {2, 3, 4, 7};
  t = th_with_shape(q, 4, odd);
  ROT(&p, NULL, &t, NULL, "params.rotary_dim", "odd D with rotary_dim 0");
  const int64_t three[3] = {2, 3, 32};
  t = th_with_shape(q, 3, three);
  ROT(&p, &pos, &t, NULL, "q", "3-D q");
  const int64_t kbad[4] = {2, 3, 2, 6};
  t = th_with_shape(k, 4, kbad);
  ROT(&p, &pos, &q, &t, "k", "k head dim");
  const int64_t kb[4] = {1, 3, 2, 8};
  t = th_with_shape(k, 4, kb);
  ROT(&p, &pos, &q, &t, "k", "k batch");
  const int64_t pbad[2] = {2, 4};
  t = th_with_shape(pos, 2, pbad);
  ROT(&p, &t, &q, &k, "positions", "positions shape");
  t = th_with_dtype(pos, SEQK_DTYPE_F32);
  ROT(&p, &t, &q, &k, "positions", "F32 positions");
  t = th_with_dtype(k, SEQK_DTYPE_F16);
  ROT(&p, &pos, &q, &t, "k", "k dtype");
  t = th_on_cuda(pos);
  ROT(&p, &t, &q, &k, "positions", "positions on CUDA");
  ROT(&p, &pos, &q, &q, "k", "k is q");
  t = th_self_overlapping(q, 1);
  ROT(&p, &pos, &t, &k, "q", "self-overlapping q");
  /* q as F32 over the first two words of positions, which is then [1,1]. */
  const int64_t small[4] = {1, 1, 1, 2}, one[2] = {1, 1};
  seqk_tensor pq = th_with_shape(th_with_dtype(pos, SEQK_DTYPE_F32), 4, small);
  t = th_with_shape(pos, 2, one);
  th_expect_rejected_watched(g_ctx, seqk_rotary(g_ctx, &p, &t, &pq, NULL), INV, "q",
                             "q over positions");
#undef ROT
  TH_CHECK(seqk_rotary(NULL, &p, &pos, &q, &k) == INV, "NULL ctx");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 1302);
  test_rotation();
  test_laws();
  test_bad_input();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
