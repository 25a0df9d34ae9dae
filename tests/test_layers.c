/*
 * test_layers.c - seqk_linear, seqk_mha_forward and seqk_embedding on the CPU.
 *
 * linear:    against a double computation in this file; bias absent two ways, 1-D to 6-D x,
 *            strided x/w/y, a transposed (column-major) w, In == 0, all float dtypes.
 * keras:     the Self_Attention layer of the seeds (WQ/WK/WV = x . kernel[i], softmax(QK^T/8) V)
 *            through seqk_linear + a local attention vs. a double reference, plus a hand-derived
 *            case (kernel[1] = 0 makes the softmax uniform: output = mean of the V rows).
 * mha:       against a double reference in this file, and the identity
 *            MHA == linear x3 -> split_heads -> attention -> merge_heads -> linear through the
 *            public API; attn_weights against the head average of attention_scores + softmax.
 * embedding: against a direct gather; 0-d/1-d/2-d indices, strided tensors, range errors; row
 *            widths reaching each unit of the CUDA gather; range errors on CUDA tensors (first
 *            bad position named, out byte-identical, the context usable afterwards).
 * bad input: every argument of the three entries.
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

static const char *dtype_name(seqk_dtype dt)
{
  switch (dt) {
  case SEQK_DTYPE_F32: return "f32";
  case SEQK_DTYPE_F16: return "f16";
  case SEQK_DTYPE_BF16: return "bf16";
  case SEQK_DTYPE_I32: return "i32";
  }
  return "?";
}

/* A contiguous tensor, or a strided one with different padding on every dim and an inner
   stride of 2, so that no layout assumption survives. */
static seqk_tensor make_tensor(seqk_dtype dt, int32_t ndim, const int64_t *shape, int strided)
{
  if (!strided)
    return th_tensor_new(dt, ndim, shape);
  int64_t pad[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < ndim; ++d)
    pad[d] = d + 1;
  return th_tensor_strided(dt, ndim, shape, pad, 2);
}

/* A contiguous descriptor over store's memory starting offset elements in (store is 1-D
   contiguous), for bad-input cases that need tensors to overlap on purpose. */
static seqk_tensor view_into(const seqk_tensor *store, int64_t offset, int32_t ndim,
                             const int64_t *shape)
{
  char *base = (char *)store->data + offset * (int64_t)seqk_dtype_size(store->dtype);
  return seqk_tensor_view(base, store->dtype, store->device, ndim, shape);
}

/* ---- the same ops on CUDA tensors (harness.h: th_check_on_device) ---------------------------- */

/* Inputs and outputs in the order of each entry's arguments; absent optionals have no data. */
static seqk_status linear_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out)
{
  (void)user;
  return seqk_linear(ctx, &in[0], &in[1], &in[2], &out[0]);
}

static seqk_status embedding_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out)
{
  (void)user;
  return seqk_embedding(ctx, &in[0], &in[1], &out[0]);
}

/* b may be NULL (absent). */
static void linear_on_device(const char *what, const seqk_tensor *x, const seqk_tensor *w,
                             const seqk_tensor *b, const seqk_tensor *y)
{
  const seqk_tensor in[3] = {*x, *w, b ? *b : th_absent(*w)};
  th_check_on_device(g_ctx, what, linear_op, NULL, in, 3, 0, y, 1, 1.0);
}

/* ---- linear --------------------------------------------------------------------------------- */

/* y = x w^T + b in double from the tensors' stored values; b may be NULL. */
static double *linear_expected(const seqk_tensor *x, const seqk_tensor *w, const seqk_tensor *b)
{
  const int64_t in = x->shape[x->ndim - 1], out = w->shape[0];
  int64_t rows = 1;
  for (int32_t d = 0; d + 1 < x->ndim; ++d)
    rows *= x->shape[d];
  const double *xd = th_to_doubles(x), *wd = th_to_doubles(w);
  const double *bd = b ? th_to_doubles(b) : NULL;
  double *y = th_alloc((size_t)(rows * out + 1) * sizeof(double));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bd ? bd[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += xd[r * in + i] * wd[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

enum bias_kind { BIAS_PRESENT, BIAS_NULL_POINTER, BIAS_NULL_DATA };

typedef struct linear_case {
  const char *name;
  int32_t ndim;                  /* x's */
  int64_t shape[SEQK_MAX_DIMS];  /* x's; the last is In */
  int64_t out;
  enum bias_kind bias;
  int strided;
} linear_case;

static void run_linear_case(const linear_case *c, seqk_dtype dt)
{
  const int64_t in = c->shape[c->ndim - 1];
  const int64_t w_shape[2] = {c->out, in}, b_shape[1] = {c->out};
  int64_t y_shape[SEQK_MAX_DIMS];
  memcpy(y_shape, c->shape, sizeof y_shape);
  y_shape[c->ndim - 1] = c->out;

  seqk_tensor x = make_tensor(dt, c->ndim, c->shape, c->strided);
  seqk_tensor w = make_tensor(dt, 2, w_shape, c->strided);
  seqk_tensor b = make_tensor(dt, 1, b_shape, c->strided);
  seqk_tensor y = make_tensor(dt, c->ndim, y_shape, c->strided);
  th_fill_uniform(&x, &g_rng, -1.0, 1.0);
  th_fill_uniform(&w, &g_rng, -1.0, 1.0);
  th_fill_uniform(&b, &g_rng, -1.0, 1.0);
  th_poison(&y);

  /* An absent bias is ignored whole: give the NULL-data one a shape that would not fit. */
  seqk_tensor b_no_data = b;
  b_no_data.data = NULL;
  b_no_data.shape[0] = c->out + 3;
  const seqk_tensor *b_arg = c->bias == BIAS_PRESENT ? &b
                             : c->bias == BIAS_NULL_DATA ? &b_no_data : NULL;

  char what[128];
  snprintf(what, sizeof what, "linear %s %s", c->name, dtype_name(dt));
  seqk_status st = seqk_linear(g_ctx, &x, &w, b_arg, &y);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what);
  const double *ref = linear_expected(&x, &w, c->bias == BIAS_PRESENT ? &b : NULL);
  TH_CHECK(th_check_close(what, &y, ref, th_tol_for(dt)), "%s: y differs from x w^T + b", what);
  linear_on_device(what, &x, &w, b_arg, &y);
}

static void test_linear(void)
{
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
  w.shape[0] = 5; w.shape[1] = 6;
  w.stride[0] = 1; w.stride[1] = 5;
  seqk_status st = seqk_linear(g_ctx, &x, &w, NULL, &y);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "linear transposed w");
  const double *xd = th_to_doubles(&x), *kd = th_to_doubles(&kt);
  double ref[20];
  for (int r = 0; r < 4; ++r)
    for (int o = 0; o < 5; ++o) {
      ref[r * 5 + o] = 0.0;
      for (int i = 0; i < 6; ++i)
        ref[r * 5 + o] += xd[r * 6 + i] * kd[i * 5 + o];
    }
  TH_CHECK(th_check_close("linear transposed w", &y, ref, th_tol_for(SEQK_DTYPE_F32)),
           "linear with a column-major w");
  linear_on_device("linear transposed w", &x, &w, NULL, &y);
}

/* Fills x, w and b (b may be NULL), runs seqk_linear on the CPU against linear_expected, then on
   CUDA tensors with the same layouts. */
static void check_linear_layout(const char *what, seqk_tensor *x, seqk_tensor *w, seqk_tensor *b,
                                seqk_tensor *y)
{
  th_fill_uniform(x, &g_rng, -1.0, 1.0);
  th_fill_uniform(w, &g_rng, -1.0, 1.0);
  if (b)
    th_fill_uniform(b, &g_rng, -1.0, 1.0);
  th_poison(y);
  th_expect_status(g_ctx, seqk_linear(g_ctx, x, w, b, y), SEQK_STATUS_SUCCESS, NULL, what);
  TH_CHECK(th_check_close(what, y, linear_expected(x, w, b), th_tol_for(y->dtype)),
           "%s: y differs from x w^T + b", what);
  linear_on_device(what, x, w, b, y);
}

/* A [2,3,C] view of a row-major [C,6] buffer: column-major rows, whose leading dims still
   flatten (to row stride 1). */
static seqk_tensor column_major_3d(seqk_dtype dt, int64_t cols)
{
  const int64_t buf_shape[2] = {cols, 6};
  seqk_tensor buf = th_tensor_new(dt, 2, buf_shape), t = buf;
  t.ndim = 3;
  t.shape[0] = 2; t.shape[1] = 3; t.shape[2] = cols;
  t.stride[0] = 3; t.stride[1] = 1; t.stride[2] = 6;
  return t;
}

/* Layouts that take different routes through the CUDA linear (kernels/attention_unfused.cu,
   host/blas.c): leading dims that do not flatten to one row stride (x and y go through
   contiguous workspace copies), column-major x and y (the other GEMM orientation, the bias
   filled down columns), x rows all at one address (stride 0: not a cuBLAS operand, copied), and
   a bias with stride 3. Each with and without the bias. */
static void test_linear_layouts(void)
{
  const int64_t xs[3] = {2, 3, 7}, ys[3] = {2, 3, 5}, ws[2] = {5, 7}, bs[1] = {5};
  const int64_t pad[3] = {1, 2, 0};
  char what[128];
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      const seqk_dtype dt = k_float_dtypes[d];
      seqk_tensor w = th_tensor_new(dt, 2, ws), b = th_tensor_strided(dt, 1, bs, NULL, 3);
      seqk_tensor *bias = with_bias ? &b : NULL;

      seqk_tensor x = th_tensor_strided(dt, 3, xs, pad, 1), y = th_tensor_strided(dt, 3, ys, pad, 1);
      snprintf(what, sizeof what, "linear padded leading dims %s%s", dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &x, &w, bias, &y);

      seqk_tensor xc = column_major_3d(dt, 7), yc = column_major_3d(dt, 5);
      snprintf(what, sizeof what, "linear column-major x and y %s%s", dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &xc, &w, bias, &yc);

      const int64_t row_shape[3] = {1, 1, 7};
      seqk_tensor x0 = th_tensor_new(dt, 3, row_shape), y0 = th_tensor_new(dt, 3, ys);
      x0.shape[0] = 2; x0.shape[1] = 3;
      x0.stride[0] = 0; x0.stride[1] = 0;
      snprintf(what, sizeof what, "linear x rows at stride 0 %s%s", dtype_name(dt),
               with_bias ? "" : ", no bias");
      check_linear_layout(what, &x0, &w, bias, &y0);
    }
}

/* ---- the Keras Self_Attention seed ---------------------------------------------------------- */

/* softmax(q k^T * scale) v for one batch: q [T,D], k [T,D], v [T,Dv] row-major doubles. */
static void local_attention(const double *q, const double *k, const double *v, int64_t T,
                            int64_t D, int64_t Dv, double scale, double *o)
{
  double s[64];
  for (int64_t i = 0; i < T; ++i) {
    double max = -INFINITY, denom = 0.0;
    for (int64_t j = 0; j < T; ++j) {
      s[j] = 0.0;
      for (int64_t d = 0; d < D; ++d)
        s[j] += q[i * D + d] * k[j * D + d];
      s[j] *= scale;
      max = fmax(max, s[j]);
    }
    for (int64_t j = 0; j < T; ++j)
      denom += (s[j] = exp(s[j] - max));
    for (int64_t d = 0; d < Dv; ++d) {
      o[i * Dv + d] = 0.0;
      for (int64_t j = 0; j < T; ++j)
        o[i * Dv + d] += s[j] / denom * v[j * Dv + d];
    }
  }
}

static void test_keras_self_attention(void)
{
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
      for (int64_t i = C * D; i < 2 * C * D; ++i)
        th_set(&kernel, i, 0.0);
    const char *what = pass == 0 ? "keras self-attention" : "keras self-attention, WK = 0";

    for (int m = 0; m < 3; ++m) {
      /* seqk_linear wants w [Out, In]; kernel[m] is [In, Out], so pass its transpose as a view. */
      seqk_tensor w = kernel;
      w.data = (float *)kernel.data + (int64_t)m * C * D;
      w.ndim = 2;
      w.shape[0] = D; w.shape[1] = C;
      w.stride[0] = 1; w.stride[1] = D;
      proj[m] = th_tensor_new(SEQK_DTYPE_F32, 3, p_shape);
      th_poison(&proj[m]);
      th_expect_status(g_ctx, seqk_linear(g_ctx, &x, &w, NULL, &proj[m]), SEQK_STATUS_SUCCESS,
                       NULL, what);
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
          for (int c = 0; c < C; ++c)
            acc += xd[r * C + c] * kd[(m * C + c) * D + o];
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
          for (int t = 0; t < T; ++t)
            mean += pd[2][(b * T + t) * D + o] / T;
          for (int t = 0; t < T; ++t)
            ref[(b * T + t) * D + o] = mean;
        }
    }
    /* The linear path rounds WQ/WK/WV to f32 once each. */
    TH_CHECK(th_check_close_doubles(what, via_linear, ref, B * T * D,
                                    th_tol_scaled(SEQK_DTYPE_F32, 4.0)),
             "%s: seqk_linear + attention differs from the double reference", what);
  }
}

/* ---- multi-head attention ------------------------------------------------------------------- */

typedef struct mha_case {
  const char *name;
  int64_t B, Sq, Sk, E;
  int32_t H, causal;
  int in_bias, out_bias, want_weights, strided;
  int self_attention;   /* query, key and value are one tensor (Sq == Sk) */
  int identity;         /* also check the unfused public-API path */
} mha_case;

/* Keys query i sees: 0 .. visible-1. */
static int64_t visible_keys(int64_t i, int64_t Sq, int64_t Sk, int causal)
{
  if (!causal)
    return Sk;
  int64_t n = i + Sk - Sq + 1;
  return n < 0 ? 0 : n > Sk ? Sk : n;
}

/* out [B,Sq,E] and the head-averaged probabilities [B,Sq,Sk] in double, computed the long way:
   whole projected Q/K/V first, then per (b, h) the full masked score matrix. */
static void mha_expected(const mha_case *c, const seqk_tensor *query, const seqk_tensor *key,
                         const seqk_tensor *value, const seqk_mha_weights *w, double *out,
                         double *probs)
{
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

  struct { const double *src; double *dst; int64_t rows, block; } proj[3] = {
    {qd, Q, B * Sq, 0}, {kd, K, B * Sk, 1}, {vd, V, B * Sk, 2}};
  for (int m = 0; m < 3; ++m)
    for (int64_t r = 0; r < proj[m].rows; ++r)
      for (int64_t o = 0; o < E; ++o) {
        const int64_t wrow = proj[m].block * E + o;
        double acc = bi ? bi[wrow] : 0.0;
        for (int64_t ci = 0; ci < E; ++ci)
          acc += proj[m].src[r * E + ci] * wi[wrow * E + ci];
        proj[m].dst[r * E + o] = acc;
      }

  for (int64_t i = 0; i < B * Sq * Sk; ++i)
    probs[i] = 0.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < Sk; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < hd; ++d)
            dot += Q[(b * Sq + i) * E + h * hd + d] * K[(b * Sk + j) * E + h * hd + d];
          s[i * Sk + j] = j < visible_keys(i, Sq, Sk, c->causal) ? dot / sqrt((double)hd)
                                                                 : -INFINITY;
        }
      for (int64_t i = 0; i < Sq; ++i) {
        double *row = s + i * Sk, max = -INFINITY, denom = 0.0;
        for (int64_t j = 0; j < Sk; ++j)
          max = fmax(max, row[j]);
        for (int64_t j = 0; j < Sk; ++j) {
          row[j] = max == -INFINITY ? 0.0 : exp(row[j] - max);   /* no key: all zero */
          denom += row[j];
        }
        for (int64_t j = 0; j < Sk; ++j) {
          row[j] = denom > 0.0 ? row[j] / denom : 0.0;
          probs[(b * Sq + i) * Sk + j] += row[j] / (double)H;
        }
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < Sk; ++j)
            acc += row[j] * V[(b * Sk + j) * E + h * hd + d];
          cat[(b * Sq + i) * E + h * hd + d] = acc;
        }
      }
    }

  for (int64_t r = 0; r < B * Sq; ++r)
    for (int64_t o = 0; o < E; ++o) {
      double acc = bo ? bo[o] : 0.0;
      for (int64_t ci = 0; ci < E; ++ci)
        acc += cat[r * E + ci] * wo[o * E + ci];
      out[r * E + o] = acc;
    }
}

/* A row block [row0, row0+rows) of a weight matrix or bias vector, as a view. */
static seqk_tensor row_block(const seqk_tensor *t, int64_t row0, int64_t rows)
{
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
                         const seqk_tensor *attn_weights, const char *what)
{
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
  ok &= th_expect_status(g_ctx, seqk_attention(g_ctx, &params, &split[0], &split[1], &split[2],
                                               &o, NULL), SEQK_STATUS_SUCCESS, NULL, what);
  ok &= th_expect_status(g_ctx, seqk_merge_heads(g_ctx, &o, &merged), SEQK_STATUS_SUCCESS, NULL,
                         what);
  ok &= th_expect_status(g_ctx, seqk_linear(g_ctx, &merged, &w->out_proj_weight,
                                            &w->out_proj_bias, &out2),
                         SEQK_STATUS_SUCCESS, NULL, what);
  if (!ok)
    return;

  /* The unfused path rounds to dt after each of its four steps where mha_forward rounds once;
     measured, both stay within one rounding's bound of each other, so 4x (8x for the 16-bit
     types, whose rounded probabilities feed the value sum) leaves room without hiding a bug. */
  const th_tol tol = th_tol_scaled(dt, dt == SEQK_DTYPE_F32 ? 4.0 : 8.0);
  char label[192];
  snprintf(label, sizeof label, "%s: identity out", what);
  TH_CHECK(th_check_close(label, out, th_to_doubles(&out2), tol),
           "%s: mha_forward differs from linear -> split -> attention -> merge -> linear", what);

  if (!attn_weights)
    return;
  seqk_tensor s = th_tensor_new(dt, 4, s_shape);
  ok &= th_expect_status(g_ctx, seqk_attention_scores(g_ctx, &split[0], &split[1], 0.0f,
                                                      c->causal, &s),
                         SEQK_STATUS_SUCCESS, NULL, what);
  ok &= th_expect_status(g_ctx, seqk_softmax(g_ctx, &s, -1, &s), SEQK_STATUS_SUCCESS, NULL, what);
  if (!ok)
    return;
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

static seqk_status mha_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out)
{
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
                          const seqk_tensor *out, const seqk_tensor *attn_weights)
{
  const seqk_tensor in[7] = {*query, *key, *value, w->in_proj_weight, w->in_proj_bias,
                             w->out_proj_weight, w->out_proj_bias};
  const seqk_tensor outs[2] = {*out, attn_weights ? *attn_weights : th_absent(*out)};
  th_check_on_device(g_ctx, what, mha_op, (void *)c, in, 7, 0, outs, 2,
                     dt == SEQK_DTYPE_F32 ? 1.0 : 2.0);
}

static void run_mha_case(const mha_case *c, seqk_dtype dt)
{
  const int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, E = c->E;
  const int64_t q_shape[3] = {B, Sq, E}, kv_shape[3] = {B, Sk, E};
  const int64_t wi_shape[2] = {3 * E, E}, bi_shape[1] = {3 * E};
  const int64_t wo_shape[2] = {E, E}, bo_shape[1] = {E}, aw_shape[3] = {B, Sq, Sk};
  char what[128];
  snprintf(what, sizeof what, "mha %s %s", c->name, dtype_name(dt));

  seqk_tensor query = make_tensor(dt, 3, q_shape, c->strided);
  seqk_tensor key = c->self_attention ? query : make_tensor(dt, 3, kv_shape, c->strided);
  seqk_tensor value = c->self_attention ? query : make_tensor(dt, 3, kv_shape, 0);
  seqk_mha_weights w;
  w.in_proj_weight = make_tensor(dt, 2, wi_shape, c->strided);
  w.in_proj_bias = make_tensor(dt, 1, bi_shape, 0);
  w.out_proj_weight = make_tensor(dt, 2, wo_shape, 0);
  w.out_proj_bias = make_tensor(dt, 1, bo_shape, c->strided);
  seqk_tensor out = make_tensor(dt, 3, q_shape, c->strided);
  seqk_tensor attn = make_tensor(dt, 3, aw_shape, c->strided);

  /* Weight scale ~1/sqrt(E) keeps the projections O(1) and the scores spread over a few units,
     so the softmax is far from uniform and far from one-hot. */
  const double ws = 1.5 / sqrt((double)E);
  th_fill_uniform(&query, &g_rng, -2.0, 2.0);
  if (!c->self_attention) {
    th_fill_uniform(&key, &g_rng, -2.0, 2.0);
    th_fill_uniform(&value, &g_rng, -2.0, 2.0);
  }
  th_fill_uniform(&w.in_proj_weight, &g_rng, -ws, ws);
  th_fill_uniform(&w.in_proj_bias, &g_rng, -0.5, 0.5);
  th_fill_uniform(&w.out_proj_weight, &g_rng, -ws, ws);
  th_fill_uniform(&w.out_proj_bias, &g_rng, -0.5, 0.5);
  th_poison(&out);
  th_poison(&attn);
  /* Absent biases: NULL data, any other field ignored. */
  if (!c->in_bias) {
    w.in_proj_bias.data = NULL;
    w.in_proj_bias.shape[0] = 1;
  }
  if (!c->out_bias)
    w.out_proj_bias.data = NULL;

  seqk_status st = seqk_mha_forward(g_ctx, &w, c->H, c->causal, &query, &key, &value, &out,
                                    c->want_weights ? &attn : NULL);
  if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what))
    return;

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
      for (int64_t j = 0; j < Sk; ++j)
        sums[r] += th_get(&attn, r * Sk + j);
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

static void test_mha(void)
{
  static const mha_case cases[] = {
    /* name                        B  Sq Sk  E   H  causal inb outb wts strd self ident */
    {"self, 2 heads",              2, 5, 5,  8,  2, 0,     1,  1,   1,  0,   1,   1},
    {"causal Sq == Sk, 4 heads",   2, 6, 6,  12, 4, 1,     1,  1,   1,  0,   0,   1},
    {"causal Sq < Sk",             2, 3, 7,  8,  2, 1,     1,  1,   1,  1,   0,   1},
    {"causal Sq > Sk (empty rows)",1, 7, 3,  6,  3, 1,     1,  0,   1,  0,   0,   1},
    {"Sq != Sk, non-causal",       3, 4, 9,  10, 2, 0,     1,  1,   1,  1,   0,   1},
    {"1 head, odd E",              2, 3, 4,  5,  1, 0,     1,  1,   1,  0,   0,   1},
    {"odd E = 15, 3 heads, causal",1, 5, 5,  15, 3, 1,     1,  1,   1,  1,   0,   1},
    {"no biases",                  2, 4, 6,  8,  4, 0,     0,  0,   1,  0,   0,   1},
    {"in bias only, no weights",   2, 4, 4,  6,  2, 1,     1,  0,   0,  1,   1,   1},
    {"out bias only, E = 1",       2, 3, 2,  1,  1, 0,     0,  1,   1,  0,   0,   1},
    {"head_dim 1",                 1, 4, 5,  4,  4, 0,     1,  1,   1,  1,   0,   1},
    {"Sk = 0 gives out_proj_bias", 2, 3, 0,  4,  2, 0,     1,  1,   1,  0,   0,   0},
    {"B = 0",                      0, 3, 4,  4,  2, 0,     1,  1,   1,  0,   0,   0},
    /* Without attn_weights the CUDA branch runs the fused (flash) attention; with them, the
       unfused one (P feeds the head mean). Below: fused SIMT with rows whose keys are all masked,
       head dim 8 (tensor cores for f16/bf16), a decode shape the fused dispatcher splits over
       the keys (partials in MHA's arena), no key at all, and head dim 264, which the fused
       kernels refuse, so the unfused path serves it. */
    {"no weights, empty rows",     1, 7, 3,  6,  3, 1,     1,  1,   0,  1,   0,   1},
    {"no weights, head_dim 8",     2, 5, 9,  16, 2, 0,     1,  1,   0,  1,   0,   1},
    {"no weights, decode split-KV",1, 1, 256,16, 2, 0,     1,  1,   0,  0,   0,   1},
    {"no weights, Sk = 0",         2, 3, 0,  4,  2, 0,     1,  1,   0,  0,   0,   0},
    {"no weights, head_dim 264",   1, 2, 3,  264,1, 1,     1,  1,   0,  0,   0,   0},
  };
  for (int d = 0; d < N_FLOAT_DTYPES; ++d)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
      run_mha_case(&cases[i], k_float_dtypes[d]);
}

/* ---- embedding ------------------------------------------------------------------------------ */

static void run_embedding_case_ve(const char *name, seqk_dtype dt, int32_t idx_ndim,
                                  const int64_t *idx_shape, int strided, int64_t V, int64_t E)
{
  const int64_t t_shape[2] = {V, E};
  int64_t o_shape[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < idx_ndim; ++d)
    o_shape[d] = idx_shape[d];
  o_shape[idx_ndim] = E;
  seqk_tensor indices = make_tensor(SEQK_DTYPE_I32, idx_ndim, idx_shape, strided);
  seqk_tensor table = make_tensor(dt, 2, t_shape, strided);
  seqk_tensor out = make_tensor(dt, idx_ndim + 1, o_shape, strided);
  th_fill_uniform(&table, &g_rng, -3.0, 3.0);
  th_poison(&out);

  const int64_t n = th_numel(&indices);
  int32_t *vals = th_alloc((size_t)(n + 1) * sizeof(int32_t));
  for (int64_t i = 0; i < n; ++i)
    vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
  if (n >= 2) {   /* both ends of the table */
    vals[0] = 0;
    vals[n - 1] = V - 1;
  }
  th_fill_i32(&indices, vals);

  char what[128];
  snprintf(what, sizeof what, "embedding %s %s", name, dtype_name(dt));
  seqk_status st = seqk_embedding(g_ctx, &indices, &table, &out);
  if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what))
    return;
  double *ref = th_alloc((size_t)(n * E + 1) * sizeof(double));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e)
      ref[i * E + e] = th_get(&table, vals[i] * E + e);
  /* A gather moves values unchanged: exact. */
  const th_tol exact = {0.0, 0.0};
  TH_CHECK(th_check_close(what, &out, ref, exact), "%s: out is not the gathered rows", what);
  const seqk_tensor in[2] = {indices, table};
  th_check_on_device(g_ctx, what, embedding_op, NULL, in, 2, 0, &out, 1, 0.0);
}

static void run_embedding_case(const char *name, seqk_dtype dt, int32_t idx_ndim,
                               const int64_t *idx_shape, int strided)
{
  run_embedding_case_ve(name, dt, idx_ndim, idx_shape, strided, 7, 5);
}

/* The CUDA gather (kernels/embedding.cu) moves each row in the widest unit the layouts allow
   (16, 8 or 4 bytes, else one element) with a lane group sized to the row: row sizes that reach
   each unit, rows longer than a warp's worth of units, and enough rows for several blocks. */
static void test_embedding_row_widths(void)
{
  const int64_t s2[2] = {23, 19}, s1[1] = {6};
  run_embedding_case_ve("E=8 (16-byte units)", SEQK_DTYPE_F32, 2, s2, 0, 11, 8);
  run_embedding_case_ve("E=24 (16-byte units)", SEQK_DTYPE_F16, 2, s2, 0, 11, 24);
  run_embedding_case_ve("E=260 (16-byte units, long rows)", SEQK_DTYPE_F32, 1, s1, 0, 9, 260);
  run_embedding_case_ve("E=6 (8-byte units)", SEQK_DTYPE_F32, 2, s2, 0, 11, 6);
  run_embedding_case_ve("E=300 (8-byte units, long rows)", SEQK_DTYPE_BF16, 1, s1, 0, 9, 300);
  run_embedding_case_ve("E=6 (4-byte units)", SEQK_DTYPE_BF16, 2, s2, 0, 11, 6);
  run_embedding_case_ve("E=1", SEQK_DTYPE_F32, 2, s2, 0, 3, 1);
  run_embedding_case_ve("E=1 strided", SEQK_DTYPE_F16, 2, s2, 1, 3, 1);
  run_embedding_case_ve("E=40 strided", SEQK_DTYPE_F32, 2, s2, 1, 5, 40);
}

/* A contiguous CUDA copy of a contiguous host tensor (freed with the context). */
static seqk_tensor embedding_to_device(const seqk_tensor *host)
{
  seqk_tensor dev;
  memset(&dev, 0, sizeof dev);
  seqk_status st = seqk_tensor_alloc(g_ctx, &dev, host->dtype, SEQK_DEVICE_CUDA, host->ndim,
                                     host->shape);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_tensor_copy(g_ctx, &dev, host);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "embedding on CUDA: upload failed: %s",
           seqk_context_last_error(g_ctx));
  return dev;
}

/* t's bytes seen as I32 elements (t contiguous, 4-byte dtype): copies through this view are
   bit-exact, so poison survives the round trip unchanged. */
static seqk_tensor as_words(const seqk_tensor *t)
{
  const int64_t n = th_numel(t);
  return seqk_tensor_view(t->data, SEQK_DTYPE_I32, t->device, 1, &n);
}

/* A CUDA tensor shaped like the contiguous f32 host tensor t holding t's bytes exactly (t is
   poisoned: every byte 0xFF), uploaded through I32 views so no conversion can touch the NaNs. */
static seqk_tensor poisoned_on_device(const seqk_tensor *t)
{
  seqk_tensor dev;
  memset(&dev, 0, sizeof dev);
  seqk_status st = seqk_tensor_alloc(g_ctx, &dev, t->dtype, SEQK_DEVICE_CUDA, t->ndim, t->shape);
  seqk_tensor dst = as_words(&dev), src = as_words(t);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_tensor_copy(g_ctx, &dst, &src);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "embedding on CUDA: upload failed: %s",
           seqk_context_last_error(g_ctx));
  return dev;
}

/* An out-of-range index on CUDA tensors: INVALID_VALUE naming the first bad position in
   row-major order (found by the device range check among several blocks), and out still every
   byte the poison it held. Then a valid call on the same context works (nothing stale is left
   in the range-check word). The device parity runs only successful calls, hence this test. */
static void test_embedding_range_on_device(void)
{
  if (seqk_cuda_device_count() == 0)
    return;
  enum { V = 6, E = 4 };
  const int64_t i_shape[2] = {40, 37}, t_shape[2] = {V, E}, o_shape[3] = {40, 37, E};
  const int64_t n = 40 * 37;
  seqk_tensor indices = th_tensor_new(SEQK_DTYPE_I32, 2, i_shape);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  th_poison(&out);
  int32_t *vals = th_alloc((size_t)n * sizeof(int32_t));
  static const struct { int64_t first, later; int32_t bad; const char *needle; } cases[] = {
      {300, 1400, 6, "indices[8,4]=6"},        /* 300 = 8*37 + 4, another bad one in a later block */
      {1479, 1479, -1, "indices[39,36]=-1"},   /* the very last position */
      {0, 555, 2147483647, "indices[0,0]=2147483647"},
  };
  seqk_tensor dtable = embedding_to_device(&table);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    for (int64_t i = 0; i < n; ++i)
      vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
    vals[cases[c].later] = V + 3;
    vals[cases[c].first] = cases[c].bad;
    th_fill_i32(&indices, vals);
    seqk_tensor dind = embedding_to_device(&indices);
    seqk_tensor dout = poisoned_on_device(&out);
    char what[96];
    snprintf(what, sizeof what, "embedding on CUDA out of range (%s)", cases[c].needle);
    th_expect_status(g_ctx, seqk_embedding(g_ctx, &dind, &dtable, &dout),
                     SEQK_STATUS_INVALID_VALUE, cases[c].needle, what);
    seqk_tensor back = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
    seqk_tensor back_words = as_words(&back), dout_words = as_words(&dout);
    TH_CHECK(seqk_tensor_copy(g_ctx, &back_words, &dout_words) == SEQK_STATUS_SUCCESS,
             "%s: download failed: %s", what, seqk_context_last_error(g_ctx));
    TH_CHECK(memcmp(back.data, out.data, (size_t)(n * E) * sizeof(float)) == 0,
             "%s: out was written", what);
    seqk_tensor_free(g_ctx, &dind);
    seqk_tensor_free(g_ctx, &dout);
  }

  /* The same context, valid indices: the gather runs and matches the CPU. */
  for (int64_t i = 0; i < n; ++i)
    vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
  th_fill_i32(&indices, vals);
  seqk_tensor dind = embedding_to_device(&indices);
  seqk_tensor dout = embedding_to_device(&out);
  th_expect_status(g_ctx, seqk_embedding(g_ctx, &dind, &dtable, &dout), SEQK_STATUS_SUCCESS, NULL,
                   "embedding on CUDA after a range error");
  seqk_tensor back = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  TH_CHECK(seqk_tensor_copy(g_ctx, &back, &dout) == SEQK_STATUS_SUCCESS,
           "embedding on CUDA after a range error: download failed");
  double *ref = th_alloc((size_t)(n * E) * sizeof(double));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e)
      ref[i * E + e] = th_get(&table, vals[i] * E + e);
  const th_tol exact = {0.0, 0.0};
  th_check_close("embedding on CUDA after a range error", &back, ref, exact);
  seqk_tensor_free(g_ctx, &dind);
  seqk_tensor_free(g_ctx, &dout);

  /* A 0-d index: the message has no position, as on the CPU. */
  const int64_t o1[1] = {E};
  seqk_tensor idx0 = th_tensor_new(SEQK_DTYPE_I32, 0, NULL), out1 = th_tensor_new(SEQK_DTYPE_F32, 1, o1);
  const int32_t bad = V;
  th_fill_i32(&idx0, &bad);
  th_poison(&out1);
  dind = embedding_to_device(&idx0);
  dout = poisoned_on_device(&out1);
  th_expect_status(g_ctx, seqk_embedding(g_ctx, &dind, &dtable, &dout), SEQK_STATUS_INVALID_VALUE,
                   "indices=6", "embedding on CUDA, 0-d index out of range");
  seqk_tensor back1 = th_tensor_new(SEQK_DTYPE_F32, 1, o1);
  seqk_tensor back1_words = as_words(&back1), dout1_words = as_words(&dout);
  TH_CHECK(seqk_tensor_copy(g_ctx, &back1_words, &dout1_words) == SEQK_STATUS_SUCCESS &&
               memcmp(back1.data, out1.data, E * sizeof(float)) == 0,
           "embedding on CUDA, 0-d index out of range: out was written");
  seqk_tensor_free(g_ctx, &dind);
  seqk_tensor_free(g_ctx, &dout);
  seqk_tensor_free(g_ctx, &dtable);
}

/* indices [2,3] with two bad entries; the first in row-major order must be the one named. */
static void run_embedding_range_case(int32_t bad0, int32_t bad1, const char *needle)
{
  enum { V = 5, E = 3 };
  const int64_t i_shape[2] = {2, 3}, t_shape[2] = {V, E}, o_shape[3] = {2, 3, E};
  seqk_tensor indices = th_tensor_new(SEQK_DTYPE_I32, 2, i_shape);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  th_poison(&out);
  const int32_t vals[6] = {0, bad0, 4, 1, 2, bad1};   /* positions [0,1] and [1,2] */
  th_fill_i32(&indices, vals);
  th_snapshot snap = th_snapshot_take(&out);
  char what[96];
  snprintf(what, sizeof what, "embedding out of range (%s)", needle);
  th_expect_status(g_ctx, seqk_embedding(g_ctx, &indices, &table, &out),
                   SEQK_STATUS_INVALID_VALUE, needle, what);
  TH_CHECK(th_snapshot_unchanged(&snap), "%s: out was written", what);
}

static void test_embedding(void)
{
  const int64_t s1[1] = {4}, s2[2] = {3, 4}, s3[3] = {2, 1, 3}, s_empty[2] = {2, 0};
  for (int d = 0; d < N_FLOAT_DTYPES; ++d) {
    const seqk_dtype dt = k_float_dtypes[d];
    run_embedding_case("0-d indices", dt, 0, NULL, 0);
    run_embedding_case("1-d indices", dt, 1, s1, 0);
    run_embedding_case("2-d indices", dt, 2, s2, 0);
    run_embedding_case("strided 1-d", dt, 1, s1, 1);
    run_embedding_case("strided 2-d", dt, 2, s2, 1);
    run_embedding_case("3-d, size-1 dim", dt, 3, s3, 1);
    run_embedding_case("no indices", dt, 2, s_empty, 0);
  }

  /* Position [0,1] holds -1 or 5 (both out of [0,5)); position [1,2] holds 7. */
  run_embedding_range_case(1, 7, "indices[1,2]=7");
  run_embedding_range_case(-1, 7, "indices[0,1]=-1");
  run_embedding_range_case(5, 1, "indices[0,1]=5");
  run_embedding_range_case(3, -2147483647 - 1, "indices[1,2]=-2147483648");

  /* A 0-d index out of range. */
  const int64_t t_shape[2] = {3, 2}, o_shape[1] = {2};
  seqk_tensor idx = th_tensor_new(SEQK_DTYPE_I32, 0, NULL);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 1, o_shape);
  const int32_t three = 3;
  th_fill_i32(&idx, &three);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  th_poison(&out);
  th_snapshot snap = th_snapshot_take(&out);
  th_expect_status(g_ctx, seqk_embedding(g_ctx, &idx, &table, &out), SEQK_STATUS_INVALID_VALUE,
                   "indices=3", "embedding 0-d index out of range");
  TH_CHECK(th_snapshot_unchanged(&snap), "embedding 0-d index out of range: out was written");

  test_embedding_row_widths();
  test_embedding_range_on_device();
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* Every buffer a bad-input fixture owns; each rejected call must leave all of them as they were
   (outputs stay poisoned, inputs untouched). */
#define MAX_WATCHED 16
static th_snapshot g_watched[MAX_WATCHED];
static int g_n_watched;

static void watch(const seqk_tensor *t)
{
  if (g_n_watched < MAX_WATCHED)
    g_watched[g_n_watched++] = th_snapshot_take(t);
}

static void expect_rejected(seqk_context_t ctx, seqk_status got, seqk_status expected,
                            const char *needle, const char *what)
{
  th_expect_rejected(ctx, got, expected, needle, what, g_watched, g_n_watched);
}

static seqk_tensor on_cuda(seqk_tensor t)
{
  t.device = SEQK_DEVICE_CUDA;
  return t;
}

static seqk_tensor with_dtype(seqk_tensor t, seqk_dtype dt)
{
  t.dtype = dt;
  return t;
}

static seqk_tensor without_data(seqk_tensor t)
{
  t.data = NULL;
  return t;
}

/* Every stride of dim d set to 0: two elements at one address when shape[d] > 1. */
static seqk_tensor self_overlapping(seqk_tensor t, int32_t d)
{
  t.stride[d] = 0;
  return t;
}

static seqk_tensor with_shape(seqk_tensor t, int32_t ndim, const int64_t *shape)
{
  return seqk_tensor_view(t.data, t.dtype, t.device, ndim, shape);
}

static void test_linear_bad_input(void)
{
  const int64_t store_n[1] = {96};
  seqk_tensor xs = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor ws = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor ys = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  th_fill_uniform(&xs, &g_rng, -1.0, 1.0);
  th_fill_uniform(&ws, &g_rng, -1.0, 1.0);
  th_poison(&ys);
  const int64_t x_shape[3] = {2, 3, 4}, w_shape[2] = {5, 4}, b_shape[1] = {5};
  const int64_t y_shape[3] = {2, 3, 5};
  const seqk_tensor x = view_into(&xs, 0, 3, x_shape);
  const seqk_tensor w = view_into(&ws, 0, 2, w_shape);
  const seqk_tensor b = view_into(&ws, 40, 1, b_shape);
  const seqk_tensor y = view_into(&ys, 0, 3, y_shape);
  g_n_watched = 0;
  watch(&xs); watch(&ws); watch(&ys);
  seqk_context_t c = g_ctx;
  seqk_tensor t;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;

  expect_rejected(NULL, seqk_linear(NULL, &x, &w, &b, (t = y, &t)), BAD, NULL, "linear ctx NULL");
  expect_rejected(c, seqk_linear(c, NULL, &w, &b, (t = y, &t)), BAD, "x", "linear x NULL");
  expect_rejected(c, seqk_linear(c, &x, NULL, &b, (t = y, &t)), BAD, "w", "linear w NULL");
  expect_rejected(c, seqk_linear(c, &x, &w, &b, NULL), BAD, "y", "linear y NULL");
  {
    const seqk_tensor xn = without_data(x), wn = without_data(w);
    expect_rejected(c, seqk_linear(c, &xn, &w, &b, (t = y, &t)), BAD, "x", "linear x data NULL");
    expect_rejected(c, seqk_linear(c, &x, &wn, &b, (t = y, &t)), BAD, "w", "linear w data NULL");
    t = without_data(y);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y data NULL");
  }
  {
    /* x.ndim 0 (a scalar), 7 (an invalid descriptor), negative extent, negative stride. */
    seqk_tensor x0 = x, x7 = x, xneg = x, xstr = x;
    x0.ndim = 0;
    x7.ndim = 7;
    xneg.shape[1] = -3;
    xstr.stride[0] = -1;
    expect_rejected(c, seqk_linear(c, &x0, &w, &b, (t = y, &t)), BAD, "x", "linear x.ndim 0");
    expect_rejected(c, seqk_linear(c, &x7, &w, &b, (t = y, &t)), BAD, "x", "linear x.ndim 7");
    expect_rejected(c, seqk_linear(c, &xneg, &w, &b, (t = y, &t)), BAD, "x",
                    "linear x negative extent");
    expect_rejected(c, seqk_linear(c, &xstr, &w, &b, (t = y, &t)), BAD, "x",
                    "linear x negative stride");
    t = y;
    t.stride[2] = -1;
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y negative stride");
  }
  {
    const int64_t w3[3] = {5, 4, 1}, w1[1] = {20}, w_in[2] = {5, 3}, b2[2] = {1, 5};
    const int64_t b_len[1] = {4};
    const seqk_tensor wa = with_shape(w, 3, w3), wb = with_shape(w, 1, w1);
    const seqk_tensor wc = with_shape(w, 2, w_in);
    const seqk_tensor ba = with_shape(b, 2, b2), bb = with_shape(b, 1, b_len);
    expect_rejected(c, seqk_linear(c, &x, &wa, &b, (t = y, &t)), BAD, "w", "linear w 3-D");
    expect_rejected(c, seqk_linear(c, &x, &wb, &b, (t = y, &t)), BAD, "w", "linear w 1-D");
    expect_rejected(c, seqk_linear(c, &x, &wc, &b, (t = y, &t)), BAD, "w",
                    "linear w.shape[1] != In");
    expect_rejected(c, seqk_linear(c, &x, &w, &ba, (t = y, &t)), BAD, "b", "linear b 2-D");
    expect_rejected(c, seqk_linear(c, &x, &w, &bb, (t = y, &t)), BAD, "b",
                    "linear b.shape[0] != Out");
  }
  {
    const int64_t y_out[3] = {2, 3, 4}, y_lead[3] = {2, 2, 5}, y_2d[2] = {6, 5};
    t = with_shape(y, 3, y_out);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y last dim != Out");
    t = with_shape(y, 3, y_lead);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y leading dims");
    t = with_shape(y, 2, y_2d);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y.ndim");
  }
  {
    const seqk_tensor xi = with_dtype(x, SEQK_DTYPE_I32), wh = with_dtype(w, SEQK_DTYPE_F16);
    const seqk_tensor bh = with_dtype(b, SEQK_DTYPE_BF16);
    expect_rejected(c, seqk_linear(c, &xi, &w, &b, (t = y, &t)), BAD, "x", "linear x i32");
    expect_rejected(c, seqk_linear(c, &x, &wh, &b, (t = y, &t)), BAD, "w", "linear w dtype");
    expect_rejected(c, seqk_linear(c, &x, &w, &bh, (t = y, &t)), BAD, "b", "linear b dtype");
    t = with_dtype(y, SEQK_DTYPE_F16);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y dtype");
  }
  {
    const seqk_tensor xc = on_cuda(x), wc = on_cuda(w), bc = on_cuda(b);
    expect_rejected(c, seqk_linear(c, &xc, &w, &b, (t = y, &t)), BAD, "x", "linear x on cuda");
    expect_rejected(c, seqk_linear(c, &x, &wc, &b, (t = y, &t)), BAD, "w", "linear w on cuda");
    expect_rejected(c, seqk_linear(c, &x, &w, &bc, (t = y, &t)), BAD, "b", "linear b on cuda");
    t = on_cuda(y);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y on cuda");
  }
  {
    t = self_overlapping(y, 1);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y self-overlap");
    t = view_into(&xs, 10, 3, y_shape);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps x");
    /* In ws, w is [0, 20) and b is [40, 45). */
    t = view_into(&ws, 5, 3, y_shape);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps w");
    t = view_into(&ws, 44, 3, y_shape);
    expect_rejected(c, seqk_linear(c, &x, &w, &b, &t), BAD, "y", "linear y overlaps b");
  }
  /* The same fixture is accepted, so the rejections above came from the one change each made. */
  t = y;
  th_expect_status(c, seqk_linear(c, &x, &w, &b, &t), SEQK_STATUS_SUCCESS, NULL,
                   "linear bad-input fixture itself");
}

static void test_mha_bad_input(void)
{
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
  const seqk_tensor query = view_into(&in_s, 0, 3, q_shape);
  const seqk_tensor key = view_into(&in_s, 40, 3, kv_shape);
  const seqk_tensor value = view_into(&in_s, 100, 3, kv_shape);
  seqk_mha_weights w;
  w.in_proj_weight = view_into(&w_s, 0, 2, wi_shape);
  w.in_proj_bias = view_into(&w_s, 120, 1, bi_shape);
  w.out_proj_weight = view_into(&w_s, 140, 2, wo_shape);
  w.out_proj_bias = view_into(&w_s, 180, 1, bo_shape);
  const seqk_tensor out = view_into(&out_s, 0, 3, q_shape);
  const seqk_tensor attn = view_into(&out_s, 40, 3, aw_shape);
  g_n_watched = 0;
  watch(&in_s); watch(&w_s); watch(&out_s);
  seqk_context_t c = g_ctx;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;
  seqk_tensor o, a, t;
  seqk_mha_weights wb;

#define MHA(ctx_, w_, heads_, q_, k_, v_, o_, a_, needle_, what_)                               \
  do {                                                                                        \
    o = out;                                                                                  \
    a = attn;                                                                                 \
    expect_rejected(ctx_, seqk_mha_forward(ctx_, w_, heads_, 0, q_, k_, v_, o_, a_), BAD,     \
                    needle_, "mha_forward " what_);                                           \
  } while (0)

  MHA(NULL, &w, H, &query, &key, &value, &o, &a, NULL, "ctx NULL");
  MHA(c, NULL, H, &query, &key, &value, &o, &a, "w", "weights NULL");
  MHA(c, &w, H, NULL, &key, &value, &o, &a, "query", "query NULL");
  MHA(c, &w, H, &query, NULL, &value, &o, &a, "key", "key NULL");
  MHA(c, &w, H, &query, &key, NULL, &o, &a, "value", "value NULL");
  MHA(c, &w, H, &query, &key, &value, NULL, &a, "out", "out NULL");
  t = without_data(query);
  MHA(c, &w, H, &t, &key, &value, &o, &a, "query", "query data NULL");
  t = without_data(value);
  MHA(c, &w, H, &query, &key, &t, &o, &a, "value", "value data NULL");
  wb = w; wb.in_proj_weight.data = NULL;
  MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight data NULL");
  wb = w; wb.out_proj_weight.data = NULL;
  MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight data NULL");
  t = without_data(out);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out data NULL");

  /* ndim and shapes */
  {
    const int64_t q2[2] = {B * Sq, E}, k4[4] = {B, Sk, E, 1};
    const int64_t k_e[3] = {B, Sk, E - 1}, k_b[3] = {1, Sk, E}, v_sk[3] = {B, Sk - 1, E};
    const int64_t v_e[3] = {B, Sk, E + 1};
    t = with_shape(query, 2, q2);
    MHA(c, &w, H, &t, &key, &value, &o, &a, "query", "query 2-D");
    t = with_shape(key, 4, k4);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key 4-D");
    t = with_shape(key, 3, k_e);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key.shape[2] != E");
    t = with_shape(key, 3, k_b);
    MHA(c, &w, H, &query, &t, &value, &o, &a, "key", "key.shape[0] != B");
    t = with_shape(value, 3, v_sk);
    MHA(c, &w, H, &query, &key, &t, &o, &a, "value", "value Sk != key Sk");
    t = with_shape(value, 3, v_e);
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
    const seqk_tensor q_0 = with_shape(query, 3, q0), k_0 = with_shape(key, 3, k0);
    const seqk_tensor v_0 = with_shape(value, 3, k0);
    seqk_mha_weights w0s = w;
    w0s.in_proj_weight = with_shape(w.in_proj_weight, 2, w0);
    w0s.in_proj_bias = with_shape(w.in_proj_bias, 1, b0);
    w0s.out_proj_weight = with_shape(w.out_proj_weight, 2, w0);
    w0s.out_proj_bias = with_shape(w.out_proj_bias, 1, b0);
    seqk_tensor o0 = with_shape(out, 3, q0), a_0 = with_shape(attn, 3, a0);
    expect_rejected(c, seqk_mha_forward(c, &w0s, 1, 0, &q_0, &k_0, &v_0, &o0, &a_0), BAD,
                    "query", "mha_forward E == 0");
  }
  {
    const int64_t wi_cols[2] = {3 * E, E + 1}, wi_rows[2] = {2 * E, E}, wi_1d[1] = {3 * E * E};
    const int64_t wi_rows1[2] = {3 * E + 1, E};
    const int64_t bi_bad[1] = {2 * E}, bi_2d[2] = {3, E}, wo_bad[2] = {E, E - 1};
    const int64_t wo_rows[2] = {E + 1, E}, bo_bad[1] = {E + 1};
    wb = w; wb.in_proj_weight = with_shape(w.in_proj_weight, 2, wi_cols);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [3E,E+1]");
    wb = w; wb.in_proj_weight = with_shape(w.in_proj_weight, 2, wi_rows);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [2E,E]");
    wb = w; wb.in_proj_weight = with_shape(w.in_proj_weight, 2, wi_rows1);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight [3E+1,E]");
    wb = w; wb.in_proj_weight = with_shape(w.in_proj_weight, 1, wi_1d);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_weight", "in_proj_weight 1-D");
    wb = w; wb.in_proj_bias = with_shape(w.in_proj_bias, 1, bi_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_bias", "in_proj_bias [2E]");
    wb = w; wb.in_proj_bias = with_shape(w.in_proj_bias, 2, bi_2d);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "in_proj_bias", "in_proj_bias 2-D");
    wb = w; wb.out_proj_weight = with_shape(w.out_proj_weight, 2, wo_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight [E,E-1]");
    wb = w; wb.out_proj_weight = with_shape(w.out_proj_weight, 2, wo_rows);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_weight", "out_proj_weight [E+1,E]");
    wb = w; wb.out_proj_bias = with_shape(w.out_proj_bias, 1, bo_bad);
    MHA(c, &wb, H, &query, &key, &value, &o, &a, "out_proj_bias", "out_proj_bias [E+1]");
  }
  {
    const int64_t o_sk[3] = {B, Sk, E}, o_e[3] = {B, Sq, E + 1}, o_2d[2] = {B * Sq, E};
    const int64_t a_sq[3] = {B, Sq, Sq}, a_h[4] = {B, H, Sq, Sk};
    t = with_shape(out, 3, o_sk);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out [B,Sk,E]");
    t = with_shape(out, 3, o_e);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out [B,Sq,E+1]");
    t = with_shape(out, 2, o_2d);
    MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out 2-D");
    t = with_shape(attn, 3, a_sq);
    MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights [B,Sq,Sq]");
    t = with_shape(attn, 4, a_h);
    MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights per head");
  }

  /* Every argument in turn with a wrong dtype (a float one, or I32), then on CUDA. */
  {
    static const struct { const char *name; seqk_dtype bad; } args[] = {
      {"query", SEQK_DTYPE_I32},          {"key", SEQK_DTYPE_F16},
      {"value", SEQK_DTYPE_BF16},         {"in_proj_weight", SEQK_DTYPE_F16},
      {"in_proj_bias", SEQK_DTYPE_BF16},  {"out_proj_weight", SEQK_DTYPE_I32},
      {"out_proj_bias", SEQK_DTYPE_F16},  {"out", SEQK_DTYPE_F16},
      {"attn_weights", SEQK_DTYPE_BF16},
    };
    for (int cuda = 0; cuda < 2; ++cuda)
      for (int i = 0; i < (int)(sizeof args / sizeof args[0]); ++i) {
        seqk_tensor q = query, k = key, v = value;
        wb = w;
        o = out;
        a = attn;
        seqk_tensor *const slot[] = {&q, &k, &v, &wb.in_proj_weight, &wb.in_proj_bias,
                                     &wb.out_proj_weight, &wb.out_proj_bias, &o, &a};
        if (cuda)
          slot[i]->device = SEQK_DEVICE_CUDA;
        else
          slot[i]->dtype = args[i].bad;
        char what[80];
        snprintf(what, sizeof what, "mha_forward %s %s", args[i].name,
                 cuda ? "on cuda" : dtype_name(args[i].bad));
        expect_rejected(c, seqk_mha_forward(c, &wb, H, 0, &q, &k, &v, &o, &a), BAD, args[i].name,
                        what);
      }
  }

  /* outputs: self-overlap, overlap with each input, with each other */
  t = self_overlapping(out, 1);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out self-overlap");
  t = self_overlapping(attn, 2);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights self-overlap");
  t = view_into(&in_s, 20, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps query and key");
  t = view_into(&in_s, 120, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps value");
  t = view_into(&w_s, 100, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps in_proj_weight/bias");
  t = view_into(&w_s, 150, 3, q_shape);
  MHA(c, &w, H, &query, &key, &value, &t, &a, "out", "out overlaps out_proj weight/bias");
  t = view_into(&in_s, 60, 3, aw_shape);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights", "attn_weights overlaps key");
  t = view_into(&w_s, 176, 3, aw_shape);
  MHA(c, &w, H, &query, &key, &value, &o, &t, "attn_weights",
      "attn_weights overlaps out_proj_bias");
  t = view_into(&out_s, 30, 3, aw_shape);
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
  a = without_data(attn);
  a.ndim = 1;
  a.shape[0] = 99;
  th_expect_status(c, seqk_mha_forward(c, &w, H, 0, &query, &key, &value, &o, &a),
                   SEQK_STATUS_SUCCESS, NULL, "mha_forward attn_weights with NULL data");
}

static void test_embedding_bad_input(void)
{
  enum { V = 5, E = 3 };
  const int64_t store_n[1] = {128};
  seqk_tensor is = th_tensor_new(SEQK_DTYPE_I32, 1, store_n);
  seqk_tensor ts = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor os = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  int32_t ivals[128];
  for (int i = 0; i < 128; ++i)
    ivals[i] = i % V;
  th_fill_i32(&is, ivals);
  th_fill_uniform(&ts, &g_rng, -1.0, 1.0);
  th_poison(&os);
  const int64_t i_shape[2] = {2, 3}, t_shape[2] = {V, E}, o_shape[3] = {2, 3, E};
  const seqk_tensor indices = view_into(&is, 0, 2, i_shape);
  const seqk_tensor table = view_into(&ts, 0, 2, t_shape);
  const seqk_tensor out = view_into(&os, 0, 3, o_shape);
  g_n_watched = 0;
  watch(&is); watch(&ts); watch(&os);
  seqk_context_t c = g_ctx;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;
  seqk_tensor t, u;

  expect_rejected(NULL, seqk_embedding(NULL, &indices, &table, (t = out, &t)), BAD, NULL,
                  "embedding ctx NULL");
  expect_rejected(c, seqk_embedding(c, NULL, &table, (t = out, &t)), BAD, "indices",
                  "embedding indices NULL");
  expect_rejected(c, seqk_embedding(c, &indices, NULL, (t = out, &t)), BAD, "table",
                  "embedding table NULL");
  expect_rejected(c, seqk_embedding(c, &indices, &table, NULL), BAD, "out",
                  "embedding out NULL");
  u = without_data(indices);
  expect_rejected(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                  "embedding indices data NULL");
  u = without_data(table);
  expect_rejected(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                  "embedding table data NULL");
  t = without_data(out);
  expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                  "embedding out data NULL");

  u = with_dtype(indices, SEQK_DTYPE_F32);
  expect_rejected(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                  "embedding indices f32");
  u = with_dtype(table, SEQK_DTYPE_I32);
  expect_rejected(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                  "embedding table i32");
  t = with_dtype(out, SEQK_DTYPE_F16);
  expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                  "embedding out dtype != table dtype");
  t = with_dtype(out, SEQK_DTYPE_I32);
  expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out", "embedding out i32");

  {
    const int64_t i6[6] = {1, 2, 1, 3, 1, 1}, o7[6] = {1, 2, 1, 3, 1, 1};
    const int64_t t1[1] = {V * E}, t3[3] = {V, E, 1};
    const int64_t o_lead[3] = {3, 2, E}, o_last[3] = {2, 3, E + 1}, o_2d[2] = {6, E};
    u = with_shape(indices, 6, i6);
    t = with_shape(out, 6, o7);
    expect_rejected(c, seqk_embedding(c, &u, &table, &t), BAD, "indices",
                    "embedding indices 6-D");
    u = with_shape(table, 1, t1);
    expect_rejected(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                    "embedding table 1-D");
    u = with_shape(table, 3, t3);
    expect_rejected(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                    "embedding table 3-D");
    t = with_shape(out, 3, o_lead);
    expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                    "embedding out leading dims");
    t = with_shape(out, 3, o_last);
    expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                    "embedding out last dim != E");
    t = with_shape(out, 2, o_2d);
    expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                    "embedding out.ndim");
  }

  u = on_cuda(indices);
  expect_rejected(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                  "embedding indices on cuda");
  u = on_cuda(table);
  expect_rejected(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                  "embedding table on cuda");
  t = on_cuda(out);
  expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                  "embedding out on cuda");

  t = self_overlapping(out, 0);
  expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                  "embedding out self-overlap");
  {
    /* out over the table's memory; out over the indices' memory (as floats). */
    t = view_into(&ts, 10, 3, o_shape);
    expect_rejected(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                    "embedding out overlaps table");
    seqk_tensor over_idx = view_into(&is, 4, 3, o_shape);
    over_idx.dtype = SEQK_DTYPE_F32;
    u = table;
    expect_rejected(c, seqk_embedding(c, &indices, &u, &over_idx), BAD, "out",
                    "embedding out overlaps indices");
  }

  t = out;
  th_expect_status(c, seqk_embedding(c, &indices, &table, &t), SEQK_STATUS_SUCCESS, NULL,
                   "embedding bad-input fixture itself");
}

int main(void)
{
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x1a7e25u);

  test_linear();
  test_linear_layouts();
  test_keras_self_attention();
  test_mha();
  test_embedding();
  test_linear_bad_input();
  test_mha_bad_input();
  test_embedding_bad_input();

  seqk_context_destroy(g_ctx);
  return th_finish();
}
