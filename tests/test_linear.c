/*
 * test_linear.c - seqk_linear on the CPU, and on CUDA tensors against it.
 *
 * linear:    against a double computation in this file; bias absent two ways, 1-D to 6-D x,
 *            strided x/w/y, a transposed (column-major) w, In == 0, all float dtypes.
 * keras:     the Self_Attention layer of the seeds (WQ/WK/WV = x . kernel[i], softmax(QK^T/8) V)
 *            through seqk_linear + a local attention vs. a double reference, plus a hand-derived
 *            case (kernel[1] = 0 makes the softmax uniform: output = mean of the V rows).
 * bad input: every argument.
 * linear_ex: every activation x bias x residual x dtype, strided and contiguous, in place over
 *            the residual (each CUDA route: the GEMM's addend, the stand-in), bad epilogues.
 */
#include "harness.h"

#ifdef SEQK_HAVE_CUDA
#include "blas.h"
#endif

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_float_dtypes[] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
#define N_FLOAT_DTYPES ((int)(sizeof k_float_dtypes / sizeof k_float_dtypes[0]))

/* ---- the same ops on CUDA tensors (harness.h: th_check_on_device) ---------------------------- */

/* Inputs and outputs in the order of each entry's arguments; absent optionals have no data. */
static seqk_status linear_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  (void)user;
  return seqk_linear(ctx, &in[0], &in[1], &in[2], &out[0]);
}

/* b may be NULL (absent). */
static void linear_on_device(const char *what, const seqk_tensor *x, const seqk_tensor *w,
                             const seqk_tensor *b, const seqk_tensor *y) {
  const seqk_tensor in[3] = {*x, *w, b ? *b : th_absent(*w)};
  th_check_on_device(g_ctx, what, linear_op, NULL, in, 3, 0, y, 1, 1.0);
}

/* ---- linear --------------------------------------------------------------------------------- */

/* y = x w^T + b in double from the tensors' stored values; b may be NULL. */
static double *linear_expected(const seqk_tensor *x, const seqk_tensor *w, const seqk_tensor *b) {
  const int64_t in = x->shape[x->ndim - 1], out = w->shape[0];
  int64_t rows = 1;
  for (int32_t d = 0; d + 1 < x->ndim; ++d) rows *= x->shape[d];
  const double *xd = th_to_doubles(x), *wd = th_to_doubles(w);
  const double *bd = b ? th_to_doubles(b) : NULL;
  double *y = th_alloc((size_t)(rows * out + 1) * sizeof(double));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bd ? bd[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += xd[r * in + i] * wd[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

enum bias_kind { BIAS_PRESENT, BIAS_NULL_POINTER, BIAS_NULL_DATA };

typedef struct linear_case {
  const char *name;
  int32_t ndim;                 /* x's */
  int64_t shape[SEQK_MAX_DIMS]; /* x's; the last is In */
  int64_t out;
  enum bias_kind bias;
  int strided;
} linear_case;

static void run_linear_case(const linear_case *c, seqk_dtype dt) {
  const int64_t in = c->shape[c->ndim - 1];
  const int64_t w_shape[2] = {c->out, in}, b_shape[1] = {c->out};
  int64_t y_shape[SEQK_MAX_DIMS];
  memcpy(y_shape, c->shape, sizeof y_shape);
  y_shape[c->ndim - 1] = c->out;

  seqk_tensor x = th_tensor_maybe_strided(dt, c->ndim, c->shape, c->strided);
  seqk_tensor w = th_tensor_maybe_strided(dt, 2, w_shape, c->strided);
  seqk_tensor b = th_tensor_maybe_strided(dt, 1, b_shape, c->strided);
  seqk_tensor y = th_tensor_maybe_strided(dt, c->ndim, y_shape, c->strided);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, -1.0, 1.0);
  th_fill_uniform(&b, &g_rng, -1.0, 1.0);
  th_poison(&y);

  /* An absent bias is ignored whole: give the NULL-data one a shape that would not fit. */
  seqk_tensor b_no_data = b;
  b_no_data.data = NULL;
  b_no_data.shape[0] = c->out + 3;
  const seqk_tensor *b_arg = c->bias == BIAS_PRESENT     ? &b
                             : c->bias == BIAS_NULL_DATA ? &b_no_data
                                                         : NULL;

  char what[128];
  snprintf(what, sizeof what, "linear %s %s", c->name, th_dtype_name(dt));
  seqk_status st = seqk_linear(g_ctx, &x, &w, b_arg, &y);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what);
  const double *ref = linear_expected(&x, &w, c->bias == BIAS_PRESENT ? &b : NULL);
  TH_CHECK(th_check_close(what, &y, ref, th_tol_for(dt)), "%s: y differs from x w^T + b", what);
  linear_on_device(what, &x, &w, b_arg, &y);
}

static void test_linear(void) {
  static const linear_case cases[] = {
      {"1-D x", 1, {7}, 5, BIAS_PRESENT, 0},
      {"1-D x, no bias", 1, {9}, 3, BIAS_NULL_POINTER, 0},
      {"3-D x", 3, {2, 3, 7}, 5, BIAS_PRESENT, 0},
      {"3-D x, bias data NULL", 3, {2, 3, 7}, 5, BIAS_NULL_DATA, 0},
      {"3-D x, bias NULL", 3, {3, 1, 13}, 11, BIAS_NULL_POINTER, 0},
      {"strided 3-D", 3, {2, 5, 13}, 11, BIAS_PRESENT, 1},
      {"strided 2-D, no bias", 2, {17, 9}, 6, BIAS_NULL_DATA, 1},
      {"6-D x", 6, {2, 1, 3, 1, 2, 5}, 3, BIAS_PRESENT, 1},
      {"Out == 1", 2, {4, 6}, 1, BIAS_PRESENT, 0},
      {"In == 0 gives the bias", 2, {3, 0}, 4, BIAS_PRESENT, 0},
      {"In == 0, no bias gives 0", 2, {3, 0}, 4, BIAS_NULL_POINTER, 1},
      {"no rows", 3, {2, 0, 5}, 4, BIAS_PRESENT, 0},
  };
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
      run_linear_case(&cases[i], k_float_dtypes[d]);

  /* w as the transpose of a row-major [In, Out] matrix: strides (1, Out). */
  const int64_t x_shape[2] = {4, 6}, kt_shape[2] = {6, 5}, y_shape[2] = {4, 5};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, x_shape);
  seqk_tensor kt = th_tensor_new(SEQK_DTYPE_F32, 2, kt_shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, y_shape);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&kt, &g_rng, -1.0, 1.0);
  th_poison(&y);
  seqk_tensor w = kt;
  w.shape[0] = 5;
  w.shape[1] = 6;
  w.stride[0] = 1;
  w.stride[1] = 5;
  seqk_status st = seqk_linear(g_ctx, &x, &w, NULL, &y);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "linear transposed w");
  const double *xd = th_to_doubles(&x), *kd = th_to_doubles(&kt);
  double ref[20];
  for (int r = 0; r < 4; ++r)
    for (int o = 0; o < 5; ++o) {
      ref[r * 5 + o] = 0.0;
      for (int i = 0; i < 6; ++i) ref[r * 5 + o] += xd[r * 6 + i] * kd[i * 5 + o];
    }
  TH_CHECK(th_check_close("linear transposed w", &y, ref, th_tol_for(SEQK_DTYPE_F32)),
           "linear with a column-major w");
  linear_on_device("linear transposed w", &x, &w, NULL, &y);
}

/* Fills x, w and b (b may be NULL), runs seqk_linear on the CPU against linear_expected, then on
   CUDA tensors with the same layouts. */
static void check_linear_layout(const char *what, seqk_tensor *x, seqk_tensor *w, seqk_tensor *b,
                                seqk_tensor *y) {
  th_fill_uniform(x, &g_rng, -1.0, 1.0);
  th_fill_uniform(w, &g_rng, -1.0, 1.0);
  if (b) th_fill_uniform(b, &g_rng, -1.0, 1.0);
  th_poison(y);
  th_expect_status(g_ctx, seqk_linear(g_ctx, x, w, b, y), SEQK_STATUS_SUCCESS, NULL, what);
  TH_CHECK(th_check_close(what, y, linear_expected(x, w, b), th_tol_for(y->dtype)),
           "%s: y differs from x w^T + b", what);
  linear_on_device(what, x, w, b, y);
}

/* A [2,3,C] view of a row-major [C,6] buffer: column-major rows, whose leading dims still
   flatten (to row stride 1). */
static seqk_tensor column_major_3d(seqk_dtype dt, int64_t cols) {
  const int64_t buf_shape[2] = {cols, 6};
  seqk_tensor buf = th_tensor_new(dt, 2, buf_shape), t = buf;
  t.ndim = 3;
  t.shape[0] = 2;
  t.shape[1] = 3;
  t.shape[2] = cols;
  t.stride[0] = 3;
  t.stride[1] = 1;
  t.stride[2] = 6;
  return t;
}

/* Layouts that take different routes through the CUDA linear (host/cuda_linear.c,
   host/blas.c): leading dims that do not flatten to one row stride (x and y go through
   contiguous workspace copies), column-major x and y (the other GEMM orientation, the bias
   filled down columns), x rows all at one address (stride 0: not a cuBLAS operand, copied), and
   a bias with stride 3. Each with and without the bias. */
static void test_linear_layouts(void) {
  const int64_t xs[3] = {2, 3, 7}, ys[3] = {2, 3, 5}, ws[2] = {5, 7}, bs[1] = {5};
  const int64_t pad[3] = {1, 2, 0};
  char what[128];
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      const seqk_dtype dt = k_float_dtypes[d];
      seqk_tensor w = th_tensor_new(dt, 2, ws), b = th_tensor_strided(dt, 1, bs, NULL, 3);
      seqk_tensor *bias = with_bias ? &b : NULL;

      seqk_tensor x = th_tensor_strided(dt, 3, xs, pad, 1),
                  y = th_tensor_strided(dt, 3, ys, pad, 1);
      snprintf(what, sizeof what, "linear padded leading dims %s%s", th_dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &x, &w, bias, &y);

      seqk_tensor xc = column_major_3d(dt, 7), yc = column_major_3d(dt, 5);
      snprintf(what, sizeof what, "linear column-major x and y %s%s", th_dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &xc, &w, bias, &yc);

      const int64_t row_shape[3] = {1, 1, 7};
      seqk_tensor x0 = th_tensor_new(dt, 3, row_shape), y0 = th_tensor_new(dt, 3, ys);
      x0.shape[0] = 2;
      x0.shape[1] = 3;
      x0.stride[0] = 0;
      x0.stride[1] = 0;
      snprintf(what, sizeof what, "linear x rows at stride 0 %s%s", th_dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &x0, &w, bias, &y0);
    }
}

/* The same layouts with cuBLAS calls cut into blocks of at most 2 rows and columns (the limit
   is 2^31 - 1 in earnest; host/blas.c blocks larger products). */
static void test_linear_blocks(void) {
#ifdef SEQK_HAVE_CUDA
  if (seqk_cuda_device_count() == 0) return;
  seqk__blas_max_extent(2);
  test_linear_layouts();
  seqk__blas_max_extent(0);
#endif
}

/* ---- the Keras Self_Attention seed ---------------------------------------------------------- */

/* softmax(q k^T * scale) v for one batch: q [T,D], k [T,D], v [T,Dv] row-major doubles. */
static void local_attention(const double *q, const double *k, const double *v, int64_t T, int64_t D,
                            int64_t Dv, double scale, double *o) {
  double s[64];
  for (int64_t i = 0; i < T; ++i) {
    double max = -INFINITY, denom = 0.0;
    for (int64_t j = 0; j < T; ++j) {
      s[j] = 0.0;
      for (int64_t d = 0; d < D; ++d) s[j] += q[i * D + d] * k[j * D + d];
      s[j] *= scale;
      max = fmax(max, s[j]);
    }
    for (int64_t j = 0; j < T; ++j) denom += (s[j] = exp(s[j] - max));
    for (int64_t d = 0; d < Dv; ++d) {
      o[i * Dv + d] = 0.0;
      for (int64_t j = 0; j < T; ++j) o[i * Dv + d] += s[j] / denom * v[j * Dv + d];
    }
  }
}

static void test_keras_self_attention(void) {
  /* Self_Attention(output_dim=D) on x [B,T,C]: kernel [3,C,D], WQ = K.dot(x, kernel[0]) etc.,
     QK = batch_dot(WQ, WK^T) / 64**0.5 (the seed's fixed 64, whatever D is), softmax, . WV. */
  enum { B = 2, T = 5, C = 6, D = 4 };
  const double scale = 1.0 / sqrt(64.0);
  const int64_t x_shape[3] = {B, T, C}, k_shape[3] = {3, C, D}, p_shape[3] = {B, T, D};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, x_shape);
  seqk_tensor kernel = th_tensor_new(SEQK_DTYPE_F32, 3, k_shape);
  seqk_tensor proj[3];
  th_fill_uniform(&x, &g_rng, -2.0, 2.0);
  th_fill_uniform(&kernel, &g_rng, -1.0, 1.0);

  for (int pass = 0; pass < 2; ++pass) {
    /* Pass 1 zeroes kernel[1]: WK = 0, so every score is 0, the softmax is uniform and each
       output row is the mean of the WV rows (derived by hand, independent of the attention). */
    if (pass == 1)
      for (int64_t i = C * D; i < 2 * C * D; ++i) th_set(&kernel, i, 0.0);
    const char *what = pass == 0 ? "keras self-attention" : "keras self-attention, WK = 0";

    for (int m = 0; m < 3; ++m) {
      /* seqk_linear wants w [Out, In]; kernel[m] is [In, Out], so pass its transpose as a view. */
      seqk_tensor w = kernel;
      w.data = (float *)kernel.data + (int64_t)m * C * D;
      w.ndim = 2;
      w.shape[0] = D;
      w.shape[1] = C;
      w.stride[0] = 1;
      w.stride[1] = D;
      proj[m] = th_tensor_new(SEQK_DTYPE_F32, 3, p_shape);
      th_poison(&proj[m]);
      th_expect_status(g_ctx, seqk_linear(g_ctx, &x, &w, NULL, &proj[m]), SEQK_STATUS_SUCCESS, NULL,
                       what);
    }
    const double *wq = th_to_doubles(&proj[0]), *wk = th_to_doubles(&proj[1]);
    const double *wv = th_to_doubles(&proj[2]);
    double via_linear[B * T * D], ref[B * T * D];
    for (int b = 0; b < B; ++b)
      local_attention(wq + b * T * D, wk + b * T * D, wv + b * T * D, T, D, D, scale,
                      via_linear + b * T * D);

    /* The double reference straight from x and kernel. */
    const double *xd = th_to_doubles(&x), *kd = th_to_doubles(&kernel);
    double pd[3][B * T * D];
    for (int m = 0; m < 3; ++m)
      for (int r = 0; r < B * T; ++r)
        for (int o = 0; o < D; ++o) {
          double acc = 0.0;
          for (int c = 0; c < C; ++c) acc += xd[r * C + c] * kd[(m * C + c) * D + o];
          pd[m][r * D + o] = acc;
        }
    if (pass == 0) {
      for (int b = 0; b < B; ++b)
        local_attention(pd[0] + b * T * D, pd[1] + b * T * D, pd[2] + b * T * D, T, D, D, scale,
                        ref + b * T * D);
    } else {
      for (int b = 0; b < B; ++b)
        for (int o = 0; o < D; ++o) {
          double mean = 0.0;
          for (int t = 0; t < T; ++t) mean += pd[2][(b * T + t) * D + o] / T;
          for (int t = 0; t < T; ++t) ref[(b * T + t) * D + o] = mean;
        }
    }
    /* The linear path rounds WQ/WK/WV to f32 once each. */
    TH_CHECK(th_check_close_doubles(what, via_linear, ref, B * T * D,
                                    th_tol_scaled(SEQK_DTYPE_F32, 4.0)),
             "%s: seqk_linear + attention differs from the double reference", what);
  }
}

static void test_linear_bad_input(void) {
  const int64_t store_n[1] = {96};
  seqk_tensor xs = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor ws = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor ys = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  th_fill_uniform(&xs, &g_rng, -1.0, 1.0);
  th_fill_uniform(&ws, &g_rng, -1.0, 1.0);
  th_poison(&ys);
  const int64_t x_shape[3] = {2, 3, 4}, w_shape[2] = {5, 4}, b_shape[1] = {5};
  const int64_t y_shape[3] = {2, 3, 5};
  const seqk_tensor x = th_view_into(&xs, 0, 3, x_shape);
  const seqk_tensor w = th_view_into(&ws, 0, 2, w_shape);
  const seqk_tensor b = th_view_into(&ws, 40, 1, b_shape);
  const seqk_tensor y = th_view_into(&ys, 0, 3, y_shape);
  th_watch_reset();
  th_watch(&xs);
  th_watch(&ws);
  th_watch(&ys);
  seqk_context_t c = g_ctx;
  seqk_tensor t;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;

  th_expect_rejected_watched(NULL, seqk_linear(NULL, &x, &w, &b, (t = y, &t)), BAD, NULL,
                             "linear ctx NULL");
  th_expect_rejected_watched(c, seqk_linear(c, NULL, &w, &b, (t = y, &t)), BAD, "x",
                             "linear x NULL");
  th_expect_rejected_watched(c, seqk_linear(c, &x, NULL, &b, (t = y, &t)), BAD, "w",
                             "linear w NULL");
  th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, NULL), BAD, "y", "linear y NULL");
  {
    const seqk_tensor xn = th_without_data(x), wn = th_without_data(w);
    th_expect_rejected_watched(c, seqk_linear(c, &xn, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x data NULL");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wn, &b, (t = y, &t)), BAD, "w",
                               "linear w data NULL");
    t = th_without_data(y);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y data NULL");
  }
  {
    /* x.ndim 0 (a scalar), 7 (an invalid descriptor), negative extent, negative stride. */
    seqk_tensor x0 = x, x7 = x, xneg = x, xstr = x;
    x0.ndim = 0;
    x7.ndim = 7;
    xneg.shape[1] = -3;
    xstr.stride[0] = -1;
    th_expect_rejected_watched(c, seqk_linear(c, &x0, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x.ndim 0");
    th_expect_rejected_watched(c, seqk_linear(c, &x7, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x.ndim 7");
    th_expect_rejected_watched(c, seqk_linear(c, &xneg, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x negative extent");
    th_expect_rejected_watched(c, seqk_linear(c, &xstr, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x negative stride");
    t = y;
    t.stride[2] = -1;
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y",
                               "linear y negative stride");
  }
  {
    const int64_t w3[3] = {5, 4, 1}, w1[1] = {20}, w_in[2] = {5, 3}, b2[2] = {1, 5};
    const int64_t b_len[1] = {4};
    const seqk_tensor wa = th_with_shape(w, 3, w3), wb = th_with_shape(w, 1, w1);
    const seqk_tensor wc = th_with_shape(w, 2, w_in);
    const seqk_tensor ba = th_with_shape(b, 2, b2), bb = th_with_shape(b, 1, b_len);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wa, &b, (t = y, &t)), BAD, "w",
                               "linear w 3-D");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wb, &b, (t = y, &t)), BAD, "w",
                               "linear w 1-D");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wc, &b, (t = y, &t)), BAD, "w",
                               "linear w.shape[1] != In");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &ba, (t = y, &t)), BAD, "b",
                               "linear b 2-D");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &bb, (t = y, &t)), BAD, "b",
                               "linear b.shape[0] != Out");
  }
  {
    const int64_t y_out[3] = {2, 3, 4}, y_lead[3] = {2, 2, 5}, y_2d[2] = {6, 5};
    t = th_with_shape(y, 3, y_out);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y",
                               "linear y last dim != Out");
    t = th_with_shape(y, 3, y_lead);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y",
                               "linear y leading dims");
    t = th_with_shape(y, 2, y_2d);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y.ndim");
  }
  {
    const seqk_tensor xi = th_with_dtype(x, SEQK_DTYPE_I32), wh = th_with_dtype(w, SEQK_DTYPE_F16);
    const seqk_tensor bh = th_with_dtype(b, SEQK_DTYPE_BF16);
    th_expect_rejected_watched(c, seqk_linear(c, &xi, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x i32");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wh, &b, (t = y, &t)), BAD, "w",
                               "linear w dtype");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &bh, (t = y, &t)), BAD, "b",
                               "linear b dtype");
    t = th_with_dtype(y, SEQK_DTYPE_F16);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y dtype");
  }
  {
    const seqk_tensor xc = th_on_cuda(x), wc = th_on_cuda(w), bc = th_on_cuda(b);
    th_expect_rejected_watched(c, seqk_linear(c, &xc, &w, &b, (t = y, &t)), BAD, "x",
                               "linear x on cuda");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &wc, &b, (t = y, &t)), BAD, "w",
                               "linear w on cuda");
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &bc, (t = y, &t)), BAD, "b",
                               "linear b on cuda");
    t = th_on_cuda(y);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y on cuda");
  }
  {
    t = th_self_overlapping(y, 1);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y",
                               "linear y self-overlap");
    t = th_view_into(&xs, 10, 3, y_shape);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps x");
    /* In ws, w is [0, 20) and b is [40, 45). */
    t = th_view_into(&ws, 5, 3, y_shape);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps w");
    t = th_view_into(&ws, 44, 3, y_shape);
    th_expect_rejected_watched(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps b");
  }
  /* The same fixture is accepted, so the rejections above came from the one change each made. */
  t = y;
  th_expect_status(c, seqk_linear(c, &x, &w, &b, &t), SEQK_STATUS_SUCCESS, NULL,
                   "linear bad-input fixture itself");
}

/* ---- linear_ex: the fused epilogue ------------------------------------------------------------ */

static seqk_status linear_ex_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  return seqk_linear_ex(ctx, &in[0], &in[1], &in[2], *(const seqk_activation *)user, &in[3],
                        &out[0]);
}

static const char *const k_act_names[] = {"none", "relu", "gelu", "gelu_tanh", "silu"};

/* y = act(x w^T + b) + residual, every activation, with and without bias and residual, strided
   and contiguous (the contiguous rows take the GEMM's own output, the padded ones a workspace
   stand-in), on both devices. */
static void test_linear_ex(void) {
  const int64_t xs[3] = {2, 3, 13}, ys[3] = {2, 3, 9}, ws[2] = {9, 13}, bs[1] = {9};
  char what[160];
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int a = 0; a <= SEQK_ACTIVATION_SILU; ++a)
      for (int variant = 0; variant < 4; ++variant) {
        const seqk_dtype dt = k_float_dtypes[d];
        const int with_bias = variant & 1, with_res = variant & 2, strided = a % 2 == 1;
        seqk_tensor x = th_tensor_maybe_strided(dt, 3, xs, strided);
        seqk_tensor w = th_tensor_new(dt, 2, ws), b = th_tensor_new(dt, 1, bs);
        seqk_tensor r = th_tensor_maybe_strided(dt, 3, ys, !strided);
        seqk_tensor y = th_tensor_maybe_strided(dt, 3, ys, strided);
        th_fill_uniform(&x, &g_rng, -1.0, 1.0);
        th_fill_uniform(&w, &g_rng, -1.0, 1.0);
        th_fill_uniform(&b, &g_rng, -1.0, 1.0);
        th_fill_uniform(&r, &g_rng, -2.0, 2.0);
        th_poison(&y);
        const seqk_activation act = (seqk_activation)a;
        snprintf(what, sizeof what, "linear_ex %s%s%s%s %s", k_act_names[a],
                 with_bias ? " +bias" : "", with_res ? " +residual" : "", strided ? " strided" : "",
                 th_dtype_name(dt));
        th_expect_status(
            g_ctx,
            seqk_linear_ex(g_ctx, &x, &w, with_bias ? &b : NULL, act, with_res ? &r : NULL, &y),
            SEQK_STATUS_SUCCESS, NULL, what);
        double *ref = linear_expected(&x, &w, with_bias ? &b : NULL);
        const double *rd = th_to_doubles(&r);
        for (int64_t i = 0; i < 18 * 3; ++i)
          ref[i] = th_activation(act, ref[i]) + (with_res ? rd[i] : 0.0);
        /* The activation's input was rounded to the dtype on CUDA (the GEMM's output), not on
           the CPU: two roundings. */
        TH_CHECK(th_check_close(what, &y, ref, th_tol_scaled(dt, 2.0)), "%s: y differs", what);
        const seqk_tensor in[4] = {x, w, with_bias ? b : th_absent(b), with_res ? r : th_absent(r)};
        th_check_on_device(g_ctx, what, linear_ex_op, (void *)&act, in, 4, 0, &y, 1, 2.0);
      }
}

/* y == residual: the residual stream updated in place (no bias: the GEMM adds into it directly;
   bias: y = residual + b first; an activation: the GEMM writes a stand-in), on both devices. */
static void check_linear_in_place(seqk_dtype dt, seqk_activation act, int with_bias) {
  const int64_t xs[2] = {5, 11}, ys[2] = {5, 7}, ws[2] = {7, 11}, bs[1] = {7};
  seqk_tensor x = th_tensor_new(dt, 2, xs), w = th_tensor_new(dt, 2, ws);
  seqk_tensor b = th_tensor_new(dt, 1, bs), r = th_tensor_new(dt, 2, ys);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, -1.0, 1.0);
  th_fill_uniform(&b, &g_rng, -1.0, 1.0);
  th_fill_uniform(&r, &g_rng, -2.0, 2.0);
  double *ref = linear_expected(&x, &w, with_bias ? &b : NULL);
  const double *rd = th_to_doubles(&r);
  for (int64_t i = 0; i < 35; ++i) ref[i] = th_activation(act, ref[i]) + rd[i];
  char what[128];
  snprintf(what, sizeof what, "linear_ex %s%s in place over residual %s", k_act_names[act],
           with_bias ? " +bias" : "", th_dtype_name(dt));
  const seqk_tensor *bp = with_bias ? &b : NULL;
  if (seqk_cuda_device_count() > 0) {
    seqk_tensor bx, bw, bb, br, dx, dw, db, dr, host;
    if (th_expect_status(g_ctx, th_upload(g_ctx, &x, &bx, &dx), SEQK_STATUS_SUCCESS, NULL, what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &w, &bw, &dw), SEQK_STATUS_SUCCESS, NULL, what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &b, &bb, &db), SEQK_STATUS_SUCCESS, NULL, what) &&
        th_expect_status(g_ctx, th_upload(g_ctx, &r, &br, &dr), SEQK_STATUS_SUCCESS, NULL, what) &&
        th_expect_status(g_ctx, seqk_linear_ex(g_ctx, &dx, &dw, bp ? &db : NULL, act, &dr, &dr),
                         SEQK_STATUS_SUCCESS, NULL, what) &&
        th_download(g_ctx, what, &dr, &host))
      TH_CHECK(th_check_close(what, &host, ref, th_tol_scaled(dt, 2.0 * TH_DEVICE_TOL)),
               "%s on CUDA", what);
    seqk_tensor_free(g_ctx, &bx);
    seqk_tensor_free(g_ctx, &bw);
    seqk_tensor_free(g_ctx, &bb);
    seqk_tensor_free(g_ctx, &br);
  }
  th_expect_status(g_ctx, seqk_linear_ex(g_ctx, &x, &w, bp, act, &r, &r), SEQK_STATUS_SUCCESS, NULL,
                   what);
  TH_CHECK(th_check_close(what, &r, ref, th_tol_scaled(dt, 2.0)), "%s", what);
}

static void test_linear_ex_in_place(void) {
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      check_linear_in_place(k_float_dtypes[d], SEQK_ACTIVATION_NONE, with_bias);
      check_linear_in_place(k_float_dtypes[d], SEQK_ACTIVATION_GELU, with_bias);
    }
}

/* y and the residual with column stride 2 (one row stride: cuBLAS cannot write y, so the GEMM's
   C is a contiguous copy, which in accumulate mode must bring the residual in first: blas.c's
   to_contiguous with the input's copy), with and without the bias. */
static void test_linear_ex_column_stride(void) {
  const int64_t xs[2] = {5, 11}, ys[2] = {5, 7}, ws[2] = {7, 11}, bs[1] = {7};
  char what[160];
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      const seqk_dtype dt = k_float_dtypes[d];
      seqk_tensor x = th_tensor_new(dt, 2, xs), w = th_tensor_new(dt, 2, ws);
      seqk_tensor b = th_tensor_new(dt, 1, bs);
      seqk_tensor r = th_tensor_strided(dt, 2, ys, NULL, 2),
                  y = th_tensor_strided(dt, 2, ys, NULL, 2);
      th_fill_uniform(&x, &g_rng, -1.0, 1.0);
      th_fill_uniform(&w, &g_rng, -1.0, 1.0);
      th_fill_uniform(&b, &g_rng, -1.0, 1.0);
      th_fill_uniform(&r, &g_rng, -2.0, 2.0);
      th_poison(&y);
      double *ref = linear_expected(&x, &w, with_bias ? &b : NULL);
      const double *rd = th_to_doubles(&r);
      for (int64_t i = 0; i < 35; ++i) ref[i] += rd[i];
      snprintf(what, sizeof what, "linear_ex residual, column stride 2%s %s",
               with_bias ? " +bias" : "", th_dtype_name(dt));
      const seqk_activation none = SEQK_ACTIVATION_NONE;
      const seqk_tensor in[4] = {x, w, with_bias ? b : th_absent(b), r};
      th_expect_status(g_ctx, seqk_linear_ex(g_ctx, &x, &w, with_bias ? &b : NULL, none, &r, &y),
                       SEQK_STATUS_SUCCESS, NULL, what);
      TH_CHECK(th_check_close(what, &y, ref, th_tol_scaled(dt, 2.0)), "%s", what);
      const seqk_activation act = none;
      th_check_on_device(g_ctx, what, linear_ex_op, (void *)&act, in, 4, 0, &y, 1, 2.0);
    }
}

static void test_linear_ex_bad_input(void) {
  const int64_t xs[2] = {3, 4}, ys[2] = {3, 5}, ws[2] = {5, 4}, other[2] = {3, 6};
  const int64_t store_shape[1] = {64};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, xs), w = th_tensor_new(SEQK_DTYPE_F32, 2, ws);
  seqk_tensor r = th_tensor_new(SEQK_DTYPE_F32, 2, ys), y = th_tensor_new(SEQK_DTYPE_F32, 2, ys);
  seqk_tensor store = th_tensor_new(SEQK_DTYPE_F32, 1, store_shape);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, -1.0, 1.0);
  th_fill_uniform(&r, &g_rng, -1.0, 1.0);
  th_fill_uniform(&store, &g_rng, -1.0, 1.0);
  th_poison(&y);
  th_watch_reset();
  th_watch(&x);
  th_watch(&r);
  th_watch(&y);
  th_watch(&store);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  const seqk_activation relu = SEQK_ACTIVATION_RELU;
  seqk_tensor t;
  th_expect_rejected_watched(g_ctx,
                             seqk_linear_ex(g_ctx, &x, &w, NULL, (seqk_activation)12, &r, &y), INV,
                             "act", "linear_ex unknown act");
  t = th_with_shape(r, 2, other);
  th_expect_rejected_watched(g_ctx, seqk_linear_ex(g_ctx, &x, &w, NULL, relu, &t, &y), INV,
                             "residual", "linear_ex residual shape");
  t = th_with_dtype(r, SEQK_DTYPE_F16);
  th_expect_rejected_watched(g_ctx, seqk_linear_ex(g_ctx, &x, &w, NULL, relu, &t, &y), INV,
                             "residual", "linear_ex residual dtype");
  t = th_on_cuda(r);
  th_expect_rejected_watched(g_ctx, seqk_linear_ex(g_ctx, &x, &w, NULL, relu, &t, &y), INV,
                             "residual", "linear_ex residual device");
  seqk_tensor rs = th_view_into(&store, 0, 2, ys), yss = th_view_into(&store, 2, 2, ys);
  th_expect_rejected_watched(g_ctx, seqk_linear_ex(g_ctx, &x, &w, NULL, relu, &rs, &yss), INV, "y",
                             "linear_ex y shifted over residual");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x1a7e25u);

  test_linear();
  test_linear_layouts();
  test_linear_blocks();
  test_keras_self_attention();
  test_linear_bad_input();
  test_linear_ex();
  test_linear_ex_in_place();
  test_linear_ex_column_stride();
  test_linear_ex_bad_input();

  seqk_context_destroy(g_ctx);
  return th_finish();
}
