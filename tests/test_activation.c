/*
 * test_activation.c - seqk_activate and seqk_gated_activate on the CPU against formulas written
 * out in this file (and fixed points worked by hand), and on CUDA tensors against the CPU.
 *
 * values:    every activation at hand-checked points (0, +-1, +-3, large, -inf/inf/NaN where
 *            torch defines them) against constants, not against the same formula.
 * shapes:    every activation x dtype, contiguous (the vector kernel, lengths that are not a
 *            multiple of the vector, misaligned starts: the scalar one), strided views, 0-d,
 *            empty; gated with the two halves of one [.., 2F] projection both ways round, and
 *            with separate tensors.
 * in place:  y == x, y == gate, y == up, on the CPU and CUDA.
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
static const seqk_activation k_acts[] = {SEQK_ACTIVATION_NONE, SEQK_ACTIVATION_RELU,
                                         SEQK_ACTIVATION_GELU, SEQK_ACTIVATION_GELU_TANH,
                                         SEQK_ACTIVATION_SILU};
static const char *const k_act_names[] = {"none", "relu", "gelu", "gelu_tanh", "silu"};
#define N_ACTS ((int)(sizeof k_acts / sizeof k_acts[0]))

/* ---- the same ops on CUDA tensors -------------------------------------------------------------- */

static seqk_status activate_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  return seqk_activate(ctx, *(const seqk_activation *)user, &in[0], &out[0]);
}
static seqk_status gated_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  return seqk_gated_activate(ctx, *(const seqk_activation *)user, &in[0], &in[1], &out[0]);
}

/* ---- values worked by hand ----------------------------------------------------------------------- */

static void test_values(void) {
  /* gelu(1) = 0.5 (1 + erf(1/sqrt 2)) = 0.841344746..., gelu_tanh(1) = 0.841191990...,
     silu(1) = 1 / (1 + e^-1) = 0.731058578..., gelu(-3) = -0.004049694..., silu(-3) =
     -0.142277620... ; large arguments saturate to x or 0; relu keeps NaN. */
  static const double xs[] = {0.0, 1.0, -1.0, -3.0, 3.0, 30.0, -30.0};
  static const double want[][7] = {
      {0.0, 1.0, -1.0, -3.0, 3.0, 30.0, -30.0},
      {0.0, 1.0, 0.0, 0.0, 3.0, 30.0, 0.0},
      {0.0, 0.8413447460685429, -0.15865525393145707, -0.00404969409489031, 2.99595030590511, 30.0,
       0.0},
      {0.0, 0.8411919906082768, -0.15880800939172324, -0.0036373920817729943, 2.996362607918227,
       30.0, 0.0},
      {0.0, 0.7310585786300049, -0.2689414213699951, -0.14227761953270035, 2.8577223804672998,
       29.999999999997197, -2.8072868906517896e-12},
  };
  const int64_t shape[1] = {7};
  for (int a = 0; a < N_ACTS; ++a) {
    seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 1, shape),
                y = th_tensor_new(SEQK_DTYPE_F32, 1, shape);
    th_fill_values(&x, xs);
    th_poison(&y);
    char what[96];
    snprintf(what, sizeof what, "%s at fixed points", k_act_names[a]);
    th_expect_status(g_ctx, seqk_activate(g_ctx, k_acts[a], &x, &y), SEQK_STATUS_SUCCESS, NULL,
                     what);
    TH_CHECK(th_check_close(what, &y, want[a], th_tol_for(SEQK_DTYPE_F32)), "%s", what);
    th_check_on_device(g_ctx, what, activate_op, (void *)&k_acts[a], &x, 1, 0, &y, 1, 1.0);
  }
  /* Non-finite inputs, as torch gives them: every activation maps +inf to +inf and NaN to NaN. */
  static const double nf[] = {INFINITY, NAN};
  const int64_t two[1] = {2};
  for (int a = 1; a < N_ACTS; ++a) {
    seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 1, two),
                y = th_tensor_new(SEQK_DTYPE_F32, 1, two);
    th_fill_values(&x, nf);
    th_poison(&y);
    th_expect_status(g_ctx, seqk_activate(g_ctx, k_acts[a], &x, &y), SEQK_STATUS_SUCCESS, NULL,
                     "non-finite");
    const double want_nf[2] = {INFINITY, NAN};
    char what[96];
    snprintf(what, sizeof what, "%s of +inf and NaN", k_act_names[a]);
    TH_CHECK(th_check_close(what, &y, want_nf, th_tol_for(SEQK_DTYPE_F32)), "%s", what);
    th_check_on_device(g_ctx, what, activate_op, (void *)&k_acts[a], &x, 1, 0, &y, 1, 1.0);
  }
}

/* ---- shapes ------------------------------------------------------------------------------------- */

typedef struct act_case {
  const char *name;
  int32_t ndim;
  int64_t shape[SEQK_MAX_DIMS];
  int strided;
} act_case;

static const act_case k_cases[] = {
    {"0-d", 0, {0}, 0},
    {"[1]", 1, {1}, 0},
    {"[37] tail", 1, {37}, 0},
    {"[3,5,64]", 3, {3, 5, 64}, 0},
    {"[4100]", 1, {4100}, 0},
    {"strided [3,7,11]", 3, {3, 7, 11}, 1},
    {"6-D", 6, {2, 1, 3, 2, 1, 5}, 1},
    {"empty", 2, {3, 0}, 0},
};

static void run_activate_case(const act_case *c, int a, seqk_dtype dt) {
  seqk_tensor x = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  seqk_tensor y = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  th_fill_uniform(&x, &g_rng, -4.0, 4.0);
  th_poison(&y);
  char what[128];
  snprintf(what, sizeof what, "%s %s %s", k_act_names[a], c->name, th_dtype_name(dt));
  th_expect_status(g_ctx, seqk_activate(g_ctx, k_acts[a], &x, &y), SEQK_STATUS_SUCCESS, NULL, what);
  const int64_t n = th_numel(&x);
  const double *xd = th_to_doubles(&x);
  double *ref = th_alloc((size_t)(n + 1) * sizeof(double));
  for (int64_t i = 0; i < n; ++i) ref[i] = th_activation(k_acts[a], xd[i]);
  TH_CHECK(th_check_close(what, &y, ref, th_tol_for(dt)), "%s: y differs", what);
  th_check_on_device(g_ctx, what, activate_op, (void *)&k_acts[a], &x, 1, 0, &y, 1, 1.0);
}

/* gate and up: the two halves of one [rows, 2F] tensor (gate_first picks which is which), or
   separate tensors. */
static void run_gated_case(int a, seqk_dtype dt, int64_t rows, int64_t F, int halves,
                           int gate_first) {
  const int64_t shape[2] = {rows, F}, both[2] = {rows, 2 * F};
  seqk_tensor g, u, proj;
  if (halves) {
    proj = th_tensor_new(dt, 2, both);
    th_fill_uniform(&proj, &g_rng, -4.0, 4.0);
    seqk_tensor lo = th_slice(&proj, 1, 0, F), hi = th_slice(&proj, 1, F, F);
    g = gate_first ? lo : hi;
    u = gate_first ? hi : lo;
  } else {
    g = th_tensor_new(dt, 2, shape);
    u = th_tensor_strided(dt, 2, shape, NULL, 3);
    th_fill_uniform(&g, &g_rng, -4.0, 4.0);
    th_fill_uniform(&u, &g_rng, -2.0, 2.0);
  }
  seqk_tensor y = th_tensor_new(dt, 2, shape);
  th_poison(&y);
  char what[160];
  snprintf(what, sizeof what, "gated %s [%lld,%lld] %s %s", k_act_names[a], (long long)rows,
           (long long)F, halves ? (gate_first ? "gate first" : "up first") : "separate",
           th_dtype_name(dt));
  th_expect_status(g_ctx, seqk_gated_activate(g_ctx, k_acts[a], &g, &u, &y), SEQK_STATUS_SUCCESS,
                   NULL, what);
  const double *gd = th_to_doubles(&g), *ud = th_to_doubles(&u);
  double *ref = th_alloc((size_t)(rows * F + 1) * sizeof(double));
  for (int64_t i = 0; i < rows * F; ++i) ref[i] = th_activation(k_acts[a], gd[i]) * ud[i];
  TH_CHECK(th_check_close(what, &y, ref, th_tol_scaled(dt, 2.0)), "%s: y differs", what);
  const seqk_tensor in[2] = {g, u};
  th_check_on_device(g_ctx, what, gated_op, (void *)&k_acts[a], in, 2, 0, &y, 1, 2.0);
}

static void test_shapes(void) {
  for (int a = 0; a < N_ACTS; ++a)
    for (int d = 0; d < N_DTYPES; ++d) {
      for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; ++i)
        run_activate_case(&k_cases[i], a, k_dtypes[d]);
      run_gated_case(a, k_dtypes[d], 3, 24, 1, 1);
      run_gated_case(a, k_dtypes[d], 5, 19, 1, 0);
      run_gated_case(a, k_dtypes[d], 4, 33, 0, 0);
    }
}

/* ---- in place ----------------------------------------------------------------------------------- */

/* which: 0 y == x (seqk_activate), 1 y == gate, 2 y == up; skew elements into the buffers. */
static void check_in_place(seqk_dtype dt, int which, int64_t n, int64_t skew) {
  const seqk_activation act = SEQK_ACTIVATION_SILU;
  const int64_t buf_shape[1] = {n + skew}, shape[1] = {n};
  seqk_tensor gb = th_tensor_new(dt, 1, buf_shape), ub = th_tensor_new(dt, 1, buf_shape);
  th_fill_uniform(&gb, &g_rng, -4.0, 4.0);
  th_fill_uniform(&ub, &g_rng, -2.0, 2.0);
  seqk_tensor g = th_view_into(&gb, skew, 1, shape), u = th_view_into(&ub, skew, 1, shape);
  const double *gd = th_to_doubles(&g), *ud = th_to_doubles(&u);
  double *ref = th_alloc((size_t)(n + 1) * sizeof(double));
  for (int64_t i = 0; i < n; ++i) ref[i] = th_activation(act, gd[i]) * (which ? ud[i] : 1.0);
  static const char *const names[] = {"y == x", "y == gate", "y == up"};
  char what[128];
  snprintf(what, sizeof what, "silu %s [%lld] %s at +%lld", names[which], (long long)n,
           th_dtype_name(dt), (long long)skew);
  const th_tol tol = th_tol_scaled(dt, 2.0);

  if (seqk_cuda_device_count() > 0) {
    seqk_tensor bg, bu, dgb, dub, host;
    if (th_expect_status(g_ctx, th_upload(g_ctx, &gb, &bg, &dgb), SEQK_STATUS_SUCCESS, NULL,
                         what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &ub, &bu, &dub), SEQK_STATUS_SUCCESS, NULL,
                         what)) {
      const size_t off = (size_t)skew * seqk_dtype_size(dt);
      seqk_tensor dg = g, du = u;
      dg.device = du.device = SEQK_DEVICE_CUDA;
      dg.data = (char *)dgb.data + off;
      du.data = (char *)dub.data + off;
      seqk_tensor *dy = which == 2 ? &du : &dg;
      const seqk_status st = which == 0 ? seqk_activate(g_ctx, act, &dg, dy)
                                        : seqk_gated_activate(g_ctx, act, &dg, &du, dy);
      if (th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what) &&
          th_download(g_ctx, what, dy, &host))
        TH_CHECK(th_check_close(what, &host, ref, th_tol_scaled(dt, 2.0 * TH_DEVICE_TOL)),
                 "%s on CUDA", what);
    }
    seqk_tensor_free(g_ctx, &bg);
    seqk_tensor_free(g_ctx, &bu);
  }
  seqk_tensor *y = which == 2 ? &u : &g;
  const seqk_status st =
      which == 0 ? seqk_activate(g_ctx, act, &g, y) : seqk_gated_activate(g_ctx, act, &g, &u, y);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what);
  TH_CHECK(th_check_close(what, y, ref, tol), "%s", what);
}

static void test_in_place(void) {
  for (int d = 0; d < N_DTYPES; ++d)
    for (int which = 0; which < 3; ++which)
      for (int64_t skew = 0; skew < 2; ++skew) check_in_place(k_dtypes[d], which, 1001, skew);
}

/* ---- bad input ------------------------------------------------------------------------------------ */

static void test_bad_input(void) {
  const int64_t shape[2] = {3, 8}, other[2] = {3, 9}, store_shape[1] = {64};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              u = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor store = th_tensor_new(SEQK_DTYPE_F32, 1, store_shape);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&u, &g_rng, -1.0, 1.0);
  th_fill_uniform(&store, &g_rng, -1.0, 1.0);
  th_poison(&y);
  th_watch_reset();
  th_watch(&x);
  th_watch(&u);
  th_watch(&y);
  th_watch(&store);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  const seqk_activation silu = SEQK_ACTIVATION_SILU;
  seqk_tensor t;
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, (seqk_activation)9, &x, &y), INV, "act",
                             "unknown act");
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, (seqk_activation)-1, &x, &y), INV, "act",
                             "negative act");
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, NULL, &y), INV, "x", "NULL x");
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &x, NULL), INV, "y", "NULL y");
  t = th_with_shape(y, 2, other);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &x, &t), INV, "y", "y shape");
  t = th_with_dtype(y, SEQK_DTYPE_F16);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &x, &t), INV, "y", "y dtype");
  t = th_with_dtype(x, SEQK_DTYPE_I32);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &t, &y), INV, "x", "I32 x");
  t = th_on_cuda(y);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &x, &t), INV, "y", "y on CUDA");
  t = th_self_overlapping(y, 0);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &x, &t), INV, "y",
                             "self-overlapping y");
  seqk_tensor xs = th_view_into(&store, 0, 2, shape), ys = th_view_into(&store, 3, 2, shape);
  th_expect_rejected_watched(g_ctx, seqk_activate(g_ctx, silu, &xs, &ys), INV, "y",
                             "y shifted over x");
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, silu, &x, NULL, &y), INV, "up",
                             "NULL up");
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, silu, NULL, &u, &y), INV, "gate",
                             "NULL gate");
  t = th_with_shape(u, 2, other);
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, silu, &x, &t, &y), INV, "up",
                             "up shape");
  t = th_with_dtype(u, SEQK_DTYPE_BF16);
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, silu, &x, &t, &y), INV, "up",
                             "up dtype");
  seqk_tensor us = th_view_into(&store, 20, 2, shape), ys2 = th_view_into(&store, 22, 2, shape);
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, silu, &x, &us, &ys2), INV, "y",
                             "y shifted over up");
  th_expect_rejected_watched(g_ctx, seqk_gated_activate(g_ctx, (seqk_activation)7, &x, &u, &y), INV,
                             "act", "gated unknown act");
  TH_CHECK(seqk_activate(NULL, silu, &x, &y) == INV, "NULL ctx");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 1301);
  test_values();
  test_shapes();
  test_in_place();
  test_bad_input();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
