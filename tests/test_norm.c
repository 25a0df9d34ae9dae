/*
 * test_norm.c - seqk_layer_norm and seqk_rms_norm on the CPU against a double computation in this
 * file, and on CUDA tensors against the CPU.
 *
 * norms:     both kinds x every dtype x row lengths that pick each CUDA variant (teams of 1..32
 *            lanes, whole blocks, the streaming kernel, vectorised or not: lengths that are not
 *            multiples of the vector), strided views, 1-D to 6-D x, weight/bias absent, the
 *            fused residual with and without residual_out, no rows, C = 0.
 * in place:  y == x and residual_out == residual (vLLM's fused_add_rms_norm), on the CPU and on
 *            CUDA, aligned and at a misaligned start (the scalar kernels).
 * bad input: every argument.
 */
#include "harness.h"

#include "numeric.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_dtypes[] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

/* ---- the expected values ---------------------------------------------------------------------- */

/* y and h (x + residual rounded to the dtype) row-major, from the tensors' stored values. */
static void norm_expected(int rms, const seqk_tensor *x, const seqk_tensor *res,
                          const seqk_tensor *w, const seqk_tensor *b, float eps, double **y_out,
                          double **h_out) {
  const int64_t n = x->shape[x->ndim - 1], total = th_numel(x);
  const int64_t rows = n > 0 ? total / n : 0;
  const double *xd = th_to_doubles(x), *rd = res ? th_to_doubles(res) : NULL;
  const double *wd = w ? th_to_doubles(w) : NULL, *bd = b ? th_to_doubles(b) : NULL;
  double *y = th_alloc((size_t)(total + 1) * sizeof(double));
  double *h = th_alloc((size_t)(total + 1) * sizeof(double));
  for (int64_t r = 0; r < rows; ++r) {
    double *hr = h + r * n;
    double mean = 0.0, ms = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      hr[j] = xd[r * n + j];
      if (rd) hr[j] = seqk__round_to_dtype(hr[j] + rd[r * n + j], x->dtype);
      mean += hr[j] / (double)n;
      ms += hr[j] * hr[j] / (double)n;
    }
    double var = 0.0;
    for (int64_t j = 0; j < n; ++j) var += (hr[j] - mean) * (hr[j] - mean) / (double)n;
    const double rstd = 1.0 / sqrt((rms ? ms : var) + (double)eps);
    for (int64_t j = 0; j < n; ++j) {
      double v = (hr[j] - (rms ? 0.0 : mean)) * rstd;
      if (wd) v *= wd[j];
      if (bd && !rms) v += bd[j];
      y[r * n + j] = v;
    }
  }
  *y_out = y;
  *h_out = h;
}

/* ---- the public entry as one function --------------------------------------------------------- */

typedef struct norm_args {
  int rms;
  float eps;
} norm_args;

static seqk_status run_norm(seqk_context_t ctx, const norm_args *a, const seqk_tensor *x,
                            const seqk_tensor *res, const seqk_tensor *w, const seqk_tensor *b,
                            seqk_tensor *y, seqk_tensor *ro) {
  return a->rms ? seqk_rms_norm(ctx, x, res, w, a->eps, y, ro)
                : seqk_layer_norm(ctx, x, res, w, b, a->eps, y, ro);
}

/* in: x, residual, weight, bias; out: y, residual_out (absent ones without data). */
static seqk_status norm_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  return run_norm(ctx, (const norm_args *)user, &in[0], &in[1], &in[2], &in[3], &out[0], &out[1]);
}

/* ---- norms ------------------------------------------------------------------------------------ */

typedef struct norm_case {
  const char *name;
  int32_t ndim;
  int64_t shape[SEQK_MAX_DIMS];
  int strided, residual, residual_out, weight, bias;
} norm_case;

static void run_norm_case(const norm_case *c, int rms, seqk_dtype dt) {
  const int64_t C = c->shape[c->ndim - 1], wshape[1] = {C};
  seqk_tensor x = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  seqk_tensor r = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  seqk_tensor w = th_tensor_maybe_strided(dt, 1, wshape, c->strided);
  seqk_tensor b = th_tensor_maybe_strided(dt, 1, wshape, c->strided);
  seqk_tensor y = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  seqk_tensor ro = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  /* An offset keeps the layer norm's mean away from 0 (the two-pass variance is what is tested),
     and weights around 1 keep the outputs O(1). */
  th_fill_uniform(&x, &g_rng, 1.0, 3.0);
  th_fill_uniform(&r, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, 0.5, 1.5);
  th_fill_uniform(&b, &g_rng, -0.5, 0.5);
  th_poison(&y);
  th_poison(&ro);
  const seqk_tensor *rp = c->residual ? &r : NULL, *wp = c->weight ? &w : NULL;
  const seqk_tensor *bp = c->bias ? &b : NULL;
  seqk_tensor *rop = c->residual_out ? &ro : NULL;
  const norm_args a = {rms, rms ? 1e-6f : 1e-5f};

  char what[160];
  snprintf(what, sizeof what, "%s %s %s", rms ? "rms_norm" : "layer_norm", c->name,
           th_dtype_name(dt));
  th_expect_status(g_ctx, run_norm(g_ctx, &a, &x, rp, wp, bp, &y, rop), SEQK_STATUS_SUCCESS, NULL,
                   what);
  double *ye, *he;
  norm_expected(rms, &x, rp, wp, bp, a.eps, &ye, &he);
  TH_CHECK(th_check_close(what, &y, ye, th_tol_for(dt)), "%s: y differs", what);
  if (rop)
    TH_CHECK(th_check_close(what, &ro, he, th_tol_for(dt)), "%s: residual_out differs", what);

  const seqk_tensor in[4] = {x, rp ? r : th_absent(r), wp ? w : th_absent(w),
                             bp && !rms ? b : th_absent(b)};
  const seqk_tensor out[2] = {y, rop ? ro : th_absent(ro)};
  th_check_on_device(g_ctx, what, norm_op, (void *)&a, in, 4, 0, out, 2, 1.0);
}

static void test_norms(void) {
  /* Lengths by the CUDA variant they reach (kernels/norm.cu: 4 chunks a thread; vectors of 4
     f32 or 8 16-bit elements): teams of 1, 2, 32 lanes; blocks of 64..512; streaming past
     8192 f32 / 16384 16-bit columns, past 2048 when strided (no vectors). */
  static const norm_case cases[] = {
      {"[1] C=1", 1, {1}, 0, 0, 0, 1, 1},
      {"[5,3] team of 1", 2, {5, 3}, 0, 1, 1, 1, 1},
      {"[7,13] tail", 2, {7, 13}, 0, 1, 0, 1, 1},
      {"[2,3,64]", 3, {2, 3, 64}, 0, 0, 0, 1, 1},
      {"[9,130] no weight", 2, {9, 130}, 0, 1, 1, 0, 1},
      {"[3,1000] no bias", 2, {3, 1000}, 0, 1, 1, 1, 0},
      {"[2,4100] block of 512", 2, {2, 4100}, 0, 1, 1, 1, 1},
      {"[2,9001] f32 streams", 2, {2, 9001}, 0, 1, 1, 1, 1},
      {"[2,17000] streams", 2, {2, 17000}, 0, 0, 1, 1, 1},
      {"strided [3,5,33]", 3, {3, 5, 33}, 1, 1, 1, 1, 1},
      {"strided [4,300]", 2, {4, 300}, 1, 0, 0, 1, 0},
      {"strided [2,2100] streams", 2, {2, 2100}, 1, 1, 1, 1, 1},
      {"6-D", 6, {2, 1, 3, 1, 2, 24}, 1, 1, 1, 1, 1},
      {"residual_out alone", 2, {3, 40}, 0, 0, 1, 1, 1},
      {"no rows", 3, {2, 0, 8}, 0, 1, 1, 1, 1},
      {"C = 0", 2, {3, 0}, 0, 1, 1, 1, 1},
  };
  for (int rms = 0; rms < 2; ++rms)
    for (int d = 0; d < N_DTYPES; ++d)
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        run_norm_case(&cases[i], rms, k_dtypes[d]);
}

/* A row whose values are all equal: the variance is exactly 0, y = bias (rstd = 1/sqrt(eps) times
   0), on both devices; and a common offset large against the spread, where one-pass statistics
   would cancel. */
static void test_norm_numerics(void) {
  const int64_t shape[2] = {2, 300}, wshape[1] = {300};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor b = th_tensor_new(SEQK_DTYPE_F32, 1, wshape);
  th_fill_uniform(&b, &g_rng, -1.0, 1.0);
  for (int64_t i = 0; i < 300; ++i) th_set(&x, i, 0.75);
  for (int64_t i = 300; i < 600; ++i) th_set(&x, i, 100.0 + th_rng_uniform(&g_rng, -1.0, 1.0));
  th_poison(&y);
  const norm_args a = {0, 1e-5f};
  th_expect_status(g_ctx, run_norm(g_ctx, &a, &x, NULL, NULL, &b, &y, NULL), SEQK_STATUS_SUCCESS,
                   NULL, "layer_norm constant row");
  double *ye, *he;
  norm_expected(0, &x, NULL, NULL, &b, a.eps, &ye, &he);
  TH_CHECK(th_check_close("layer_norm constant / offset rows", &y, ye, th_tol_for(SEQK_DTYPE_F32)),
           "constant and offset rows");
  const seqk_tensor in[4] = {x, th_absent(x), th_absent(b), b};
  const seqk_tensor out[2] = {y, th_absent(y)};
  /* fp32 statistics of values near 1000 with deviations of 0.01: the deviations carry 1e-5
     relative precision; the widening says so. */
  th_check_on_device(g_ctx, "layer_norm constant / offset rows", norm_op, (void *)&a, in, 4, 0, out,
                     2, 64.0);
}

/* ---- in place ---------------------------------------------------------------------------------- */

/* y == x and residual_out == residual, C columns, starting `skew` elements into their buffers
   (skew 1: misaligned, the scalar kernels). */
static void check_in_place(int rms, seqk_dtype dt, int64_t rows, int64_t C, int64_t skew) {
  const int64_t shape[2] = {rows, C}, wshape[1] = {C}, buf_shape[1] = {rows * C + skew};
  seqk_tensor xb = th_tensor_new(dt, 1, buf_shape), rb = th_tensor_new(dt, 1, buf_shape);
  seqk_tensor w = th_tensor_new(dt, 1, wshape), b = th_tensor_new(dt, 1, wshape);
  th_fill_uniform(&xb, &g_rng, -2.0, 2.0);
  th_fill_uniform(&rb, &g_rng, -2.0, 2.0);
  th_fill_uniform(&w, &g_rng, 0.5, 1.5);
  th_fill_uniform(&b, &g_rng, -0.5, 0.5);
  seqk_tensor x = th_view_into(&xb, skew, 2, shape), r = th_view_into(&rb, skew, 2, shape);
  double *ye, *he;
  norm_expected(rms, &x, &r, &w, rms ? NULL : &b, 1e-5f, &ye, &he);
  const norm_args a = {rms, 1e-5f};
  char what[160];
  snprintf(what, sizeof what, "%s in place [%lld,%lld] %s at +%lld",
           rms ? "rms_norm" : "layer_norm", (long long)rows, (long long)C, th_dtype_name(dt),
           (long long)skew);

  if (seqk_cuda_device_count() > 0) {
    /* The whole buffers go up, and the views start `skew` elements into them on the device too. */
    seqk_tensor bx, br, bw, bb, dxb, drb, dw, db, hx, hr;
    if (th_expect_status(g_ctx, th_upload(g_ctx, &xb, &bx, &dxb), SEQK_STATUS_SUCCESS, NULL,
                         what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &rb, &br, &drb), SEQK_STATUS_SUCCESS, NULL,
                         what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &w, &bw, &dw), SEQK_STATUS_SUCCESS, NULL, what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &b, &bb, &db), SEQK_STATUS_SUCCESS, NULL, what)) {
      const size_t off = (size_t)skew * seqk_dtype_size(dt);
      seqk_tensor dx = x, dr = r;
      dx.device = dr.device = SEQK_DEVICE_CUDA;
      dx.data = (char *)dxb.data + off;
      dr.data = (char *)drb.data + off;
      if (th_expect_status(g_ctx, run_norm(g_ctx, &a, &dx, &dr, &dw, &db, &dx, &dr),
                           SEQK_STATUS_SUCCESS, NULL, what) &&
          th_download(g_ctx, what, &dx, &hx) && th_download(g_ctx, what, &dr, &hr)) {
        TH_CHECK(th_check_close(what, &hx, ye, th_tol_scaled(dt, TH_DEVICE_TOL)),
                 "%s: y (in x) differs on CUDA", what);
        TH_CHECK(th_check_close(what, &hr, he, th_tol_scaled(dt, TH_DEVICE_TOL)),
                 "%s: residual_out (in residual) differs on CUDA", what);
      }
    }
    seqk_tensor_free(g_ctx, &bx);
    seqk_tensor_free(g_ctx, &br);
    seqk_tensor_free(g_ctx, &bw);
    seqk_tensor_free(g_ctx, &bb);
  }
  th_expect_status(g_ctx, run_norm(g_ctx, &a, &x, &r, &w, &b, &x, &r), SEQK_STATUS_SUCCESS, NULL,
                   what);
  TH_CHECK(th_check_close(what, &x, ye, th_tol_for(dt)), "%s: y (in x) differs", what);
  TH_CHECK(th_check_close(what, &r, he, th_tol_for(dt)), "%s: residual_out differs", what);
}

static void test_in_place(void) {
  static const int64_t lengths[] = {5, 128, 1000, 20000};
  for (int rms = 0; rms < 2; ++rms)
    for (int d = 0; d < N_DTYPES; ++d)
      for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; ++i)
        for (int64_t skew = 0; skew < 2; ++skew)
          check_in_place(rms, k_dtypes[d], lengths[i] > 1000 ? 2 : 6, lengths[i], skew);
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static void test_bad_input(void) {
  const int64_t shape[2] = {3, 8}, wshape[1] = {8}, bad_w[1] = {7}, store_shape[1] = {64};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              r = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor w = th_tensor_new(SEQK_DTYPE_F32, 1, wshape),
              b = th_tensor_new(SEQK_DTYPE_F32, 1, wshape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              ro = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor store = th_tensor_new(SEQK_DTYPE_F32, 1, store_shape);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&r, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, -1.0, 1.0);
  th_fill_uniform(&b, &g_rng, -1.0, 1.0);
  th_fill_uniform(&store, &g_rng, -1.0, 1.0);
  th_poison(&y);
  th_poison(&ro);
  th_watch_reset();
  th_watch(&x);
  th_watch(&r);
  th_watch(&y);
  th_watch(&ro);
  th_watch(&store);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  seqk_tensor t;
#define LN(xx, rr, ww, bb, eps, yy, oo, needle, what)                                              \
  th_expect_rejected_watched(g_ctx, seqk_layer_norm(g_ctx, xx, rr, ww, bb, eps, yy, oo), INV,      \
                             needle, what)
  LN(NULL, &r, &w, &b, 1e-5f, &y, &ro, "x", "NULL x");
  LN(&x, &r, &w, &b, 1e-5f, NULL, &ro, "y", "NULL y");
  t = th_with_shape(x, 0, NULL);
  LN(&t, NULL, NULL, NULL, 1e-5f, &y, NULL, "x", "0-d x");
  const int64_t other[2] = {3, 9};
  t = th_with_shape(r, 2, other);
  LN(&x, &t, &w, &b, 1e-5f, &y, &ro, "residual", "residual shape");
  t = th_with_shape(w, 1, bad_w);
  LN(&x, &r, &t, &b, 1e-5f, &y, &ro, "weight", "weight length");
  t = th_with_shape(b, 1, bad_w);
  LN(&x, &r, &w, &t, 1e-5f, &y, &ro, "bias", "bias length");
  t = th_with_shape(y, 2, other);
  LN(&x, &r, &w, &b, 1e-5f, &t, &ro, "y", "y shape");
  t = th_with_shape(ro, 2, other);
  LN(&x, &r, &w, &b, 1e-5f, &y, &t, "residual_out", "residual_out shape");
  LN(&x, &r, &w, &b, 0.0f, &y, &ro, "eps", "eps 0");
  LN(&x, &r, &w, &b, -1e-5f, &y, &ro, "eps", "eps < 0");
  LN(&x, &r, &w, &b, INFINITY, &y, &ro, "eps", "eps inf");
  LN(&x, &r, &w, &b, NAN, &y, &ro, "eps", "eps NaN");
  t = th_with_dtype(w, SEQK_DTYPE_F16);
  LN(&x, &r, &t, &b, 1e-5f, &y, &ro, "weight", "weight dtype");
  t = th_with_dtype(y, SEQK_DTYPE_I32);
  LN(&x, &r, &w, &b, 1e-5f, &t, &ro, "y", "I32 y");
  t = th_on_cuda(r);
  LN(&x, &t, &w, &b, 1e-5f, &y, &ro, "residual", "residual on another device");
  LN(&x, &r, &w, &b, 1e-5f, &y, &y, "residual_out", "residual_out is y");
  LN(&x, &r, &w, &b, 1e-5f, &r, &ro, "y", "y over residual");
  LN(&x, &x, &w, &b, 1e-5f, &y, &w, "residual_out", "residual_out over weight");
  t = th_self_overlapping(y, 0);
  LN(&x, &r, &w, &b, 1e-5f, &t, &ro, "y", "self-overlapping y");
  /* Partial overlaps with x (an exact alias is in place, a shifted one is not). */
  seqk_tensor xs = th_view_into(&store, 0, 2, shape), ys = th_view_into(&store, 4, 2, shape);
  LN(&xs, NULL, NULL, NULL, 1e-5f, &ys, NULL, "y", "y shifted over x");
  seqk_tensor os = th_view_into(&store, 2, 2, shape);
  LN(&xs, NULL, NULL, NULL, 1e-5f, &y, &os, "residual_out", "residual_out shifted over x");
  th_expect_rejected_watched(g_ctx, seqk_rms_norm(g_ctx, &x, &r, &w, 0.0f, &y, &ro), INV, "eps",
                             "rms_norm eps 0");
  t = th_with_shape(w, 1, bad_w);
  th_expect_rejected_watched(g_ctx, seqk_rms_norm(g_ctx, &x, &r, &t, 1e-6f, &y, &ro), INV, "weight",
                             "rms_norm weight length");
#undef LN
  TH_CHECK(seqk_layer_norm(NULL, &x, NULL, NULL, NULL, 1e-5f, &y, NULL) == INV, "NULL ctx");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 1300);
  test_norms();
  test_norm_numerics();
  test_in_place();
  test_bad_input();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
