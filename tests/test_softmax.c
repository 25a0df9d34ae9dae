/*
 * test_softmax.c - seqk_softmax on the CPU: the seed's golden values, normalisation, shift
 * invariance, every dim (negative too) of 3-D and 4-D tensors with strided x and y, in place,
 * all -inf slices, f16/bf16, length-1 and very long rows, empty tensors, and bad input.
 * The reference is a double computation written here, independent of the library.
 * Every case also runs on CUDA tensors where a device exists (the emulated build always); the
 * cases in test_variants and after reach each kernel variant of kernels/softmax.cu.
 */
#include "harness.h"
#include "device.h" /* seqk__workspace: one case puts x inside the context's workspace */

#include <math.h>
#include <string.h>

/* softmax along dim of a row-major double array, via log-sum-exp (a different formulation from
   the library's max/exp/sum/divide). */
static double *ref_softmax(const double *x, int32_t ndim, const int64_t *shape, int32_t dim) {
  int64_t outer = 1, inner = 1, n = shape[dim], total;
  for (int32_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int32_t d = dim + 1; d < ndim; ++d) inner *= shape[d];
  total = outer * n * inner;
  double *y = (double *)th_alloc((size_t)(total > 0 ? total : 1) * sizeof(double));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, z = 0.0;
      for (int64_t j = 0; j < n; ++j) m = fmax(m, x[(o * n + j) * inner + i]);
      for (int64_t j = 0; j < n; ++j) z += exp(x[(o * n + j) * inner + i] - m);
      const double lse = m + log(z);
      for (int64_t j = 0; j < n; ++j)
        y[(o * n + j) * inner + i] = exp(x[(o * n + j) * inner + i] - lse);
    }
  return y;
}

/* softmax of in[0] along *(int32_t *)dim into out[0], for the device parity runs. */
static seqk_status softmax_op(seqk_context_t ctx, void *dim, seqk_tensor *in, seqk_tensor *out) {
  return seqk_softmax(ctx, &in[0], *(const int32_t *)dim, &out[0]);
}

/* The CPU result y = softmax(x, dim) reproduced on CUDA tensors (when a device exists). */
static void check_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *x, int32_t dim,
                            const seqk_tensor *y) {
  th_check_on_device(ctx, what, softmax_op, &dim, x, 1, 0, y, 1, 1.0);
}

/* Runs softmax(x, dim) into a poisoned y and checks it against the double reference, then the
   same on CUDA tensors against the CPU result. */
static void check_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim, seqk_tensor *y,
                          th_tol tol, const char *what) {
  const double *xd = th_to_doubles(x);
  const int32_t d = dim < 0 ? dim + x->ndim : dim;
  th_poison(y);
  if (!th_expect_status(ctx, seqk_softmax(ctx, x, dim, y), SEQK_STATUS_SUCCESS, NULL, what)) return;
  th_check_close(what, y, ref_softmax(xd, x->ndim, x->shape, d), tol);
  check_on_device(ctx, what, x, dim, y);
}

static void test_seed_golden(seqk_context_t ctx) {
  /* Seed 000: torch.softmax([[1,2,3],[2,1,0.5]], dim=1). The seed prints 0.5761, 0.3983, 0.0256
     for the second row, which cannot be right (it is not even ordered like the inputs); the true
     values, to 4 decimals, are below. Printed to 4 decimals, so 5e-5 plus a rounding margin. */
  const int64_t shape[2] = {2, 3};
  const double xv[6] = {1, 2, 3, 2, 1, 0.5};
  const double golden[6] = {0.0900, 0.2447, 0.6652, 0.6285, 0.2312, 0.1402};
  const th_tol tol4 = {5e-5, 5e-5};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  th_fill_values(&x, xv);
  th_expect_status(ctx, seqk_softmax(ctx, &x, 1, &y), SEQK_STATUS_SUCCESS, NULL, "seed softmax");
  th_check_close("seed softmax dim=1 vs golden", &y, golden, tol4);
  th_check_close("seed softmax dim=1 vs double", &y, ref_softmax(xv, 2, shape, 1),
                 th_tol_for(SEQK_DTYPE_F32));
  th_poison(&y);
  th_expect_status(ctx, seqk_softmax(ctx, &x, -1, &y), SEQK_STATUS_SUCCESS, NULL, "seed dim=-1");
  th_check_close("seed softmax dim=-1 vs golden", &y, golden, tol4);
}

static void test_rows_sum_to_one(seqk_context_t ctx, th_rng *rng) {
  const int64_t shape[2] = {4, 37};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  th_fill_normal(&x, rng, 3.0);
  th_expect_status(ctx, seqk_softmax(ctx, &x, 1, &y), SEQK_STATUS_SUCCESS, NULL, "sum to one");
  for (int64_t r = 0; r < shape[0]; ++r) {
    double sum = 0.0;
    int in_range = 1;
    for (int64_t j = 0; j < shape[1]; ++j) {
      const double p = th_get(&y, r * shape[1] + j);
      sum += p;
      in_range &= p > 0.0 && p < 1.0;
    }
    TH_CHECK(fabs(sum - 1.0) < 1e-5, "row %lld sums to %.9g", (long long)r, sum);
    TH_CHECK(in_range, "row %lld has a probability outside (0, 1)", (long long)r);
  }
}

static void test_shift_invariance(seqk_context_t ctx, th_rng *rng) {
  /* Inputs on a 1/64 grid, so that x + 1000 is exact in f32 and the shift is the only change. */
  const int64_t shape[2] = {5, 19};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor xs = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  for (int64_t i = 0; i < th_numel(&x); ++i) {
    const double v = (double)th_rng_int(rng, -256, 256) / 64.0;
    th_set(&x, i, v);
    th_set(&xs, i, v + 1000.0);
  }
  const double *ref = ref_softmax(th_to_doubles(&x), 2, shape, 1);
  th_expect_status(ctx, seqk_softmax(ctx, &xs, 1, &y), SEQK_STATUS_SUCCESS, NULL, "shifted");
  th_check_close("softmax(x + 1000) == softmax(x)", &y, ref, th_tol_for(SEQK_DTYPE_F32));
  check_on_device(ctx, "softmax(x + 1000)", &xs, 1, &y);
  /* Large magnitudes must not overflow: softmax([1000, 1001, 1002]) is finite. */
  const int64_t s3[1] = {3};
  const double big[3] = {1000, 1001, 1002}, small[3] = {0, 1, 2};
  seqk_tensor b = th_tensor_new(SEQK_DTYPE_F32, 1, s3), yb = th_tensor_new(SEQK_DTYPE_F32, 1, s3);
  th_fill_values(&b, big);
  th_expect_status(ctx, seqk_softmax(ctx, &b, 0, &yb), SEQK_STATUS_SUCCESS, NULL, "large inputs");
  th_check_close("softmax of large inputs", &yb, ref_softmax(small, 1, s3, 0),
                 th_tol_for(SEQK_DTYPE_F32));
}

static void test_every_dim(seqk_context_t ctx, th_rng *rng) {
  const int64_t s3[3] = {3, 5, 7}, s4[4] = {2, 3, 4, 5};
  const int64_t pad3[3] = {1, 2, 3}, pad4[4] = {2, 1, 0, 3};
  const int64_t ypad3[3] = {0, 1, 1}, ypad4[4] = {1, 0, 2, 1};
  char what[96];
  for (int32_t nd = 3; nd <= 4; ++nd) {
    const int64_t *shape = nd == 3 ? s3 : s4;
    seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, nd, shape);
    seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, nd, shape);
    seqk_tensor xs = th_tensor_strided(SEQK_DTYPE_F32, nd, shape, nd == 3 ? pad3 : pad4, 2);
    seqk_tensor ys = th_tensor_strided(SEQK_DTYPE_F32, nd, shape, nd == 3 ? ypad3 : ypad4, 3);
    th_fill_normal(&x, rng, 2.0);
    th_fill_normal(&xs, rng, 2.0);
    for (int32_t dim = -nd; dim < nd; ++dim) {
      snprintf(what, sizeof what, "%d-D contiguous dim=%d", (int)nd, (int)dim);
      check_softmax(ctx, &x, dim, &y, th_tol_for(SEQK_DTYPE_F32), what);
      snprintf(what, sizeof what, "%d-D strided x and y dim=%d", (int)nd, (int)dim);
      check_softmax(ctx, &xs, dim, &ys, th_tol_for(SEQK_DTYPE_F32), what);
      snprintf(what, sizeof what, "%d-D strided x, contiguous y dim=%d", (int)nd, (int)dim);
      check_softmax(ctx, &xs, dim, &y, th_tol_for(SEQK_DTYPE_F32), what);
    }
  }
  /* A transposed view: x.stride of dim 0 smaller than dim 1. */
  const int64_t base_shape[2] = {6, 4};
  seqk_tensor base = th_tensor_new(SEQK_DTYPE_F32, 2, base_shape);
  th_fill_normal(&base, rng, 1.5);
  seqk_tensor xt = base;
  xt.shape[0] = 4;
  xt.shape[1] = 6;
  xt.stride[0] = 1;
  xt.stride[1] = 4;
  seqk_tensor yt = th_tensor_new(SEQK_DTYPE_F32, 2, xt.shape);
  check_softmax(ctx, &xt, 1, &yt, th_tol_for(SEQK_DTYPE_F32), "transposed x dim=1");
  check_softmax(ctx, &xt, 0, &yt, th_tol_for(SEQK_DTYPE_F32), "transposed x dim=0");
}

static void test_in_place(seqk_context_t ctx, th_rng *rng) {
  const int64_t shape[3] = {3, 4, 9}, pad[3] = {1, 0, 2};
  for (int32_t dim = 0; dim < 3; ++dim) {
    seqk_tensor x = th_tensor_strided(SEQK_DTYPE_F32, 3, shape, pad, 2);
    th_fill_normal(&x, rng, 2.0);
    const double *ref = ref_softmax(th_to_doubles(&x), 3, shape, dim);
    seqk_tensor y = x; /* the same view */
    th_expect_status(ctx, seqk_softmax(ctx, &x, dim, &y), SEQK_STATUS_SUCCESS, NULL, "in place");
    th_check_close("softmax in place", &x, ref, th_tol_for(SEQK_DTYPE_F32));
  }
}

static void test_infinities(seqk_context_t ctx) {
  /* Row 0 all -inf -> NaN (as torch); row 1 has one -inf -> exactly 0 there. */
  const int64_t shape[2] = {3, 4};
  const double xv[12] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 0.5, -INFINITY,
                         1.0,       -2.0,      1.0,       2.0,       3.0, 4.0};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  th_fill_values(&x, xv);
  double ref[12];
  const double *r1 = ref_softmax(xv + 4, 2, (const int64_t[2]){2, 4}, 1);
  for (int j = 0; j < 4; ++j) ref[j] = NAN;
  memcpy(ref + 4, r1, 8 * sizeof(double));
  th_expect_status(ctx, seqk_softmax(ctx, &x, 1, &y), SEQK_STATUS_SUCCESS, NULL, "infinities");
  th_check_close("all -inf row is NaN, -inf entry is 0", &y, ref, th_tol_for(SEQK_DTYPE_F32));
  TH_CHECK(th_get(&y, 5) == 0.0, "a -inf score must give exactly 0, got %g", th_get(&y, 5));
  check_on_device(ctx, "all -inf row is NaN, -inf entry is 0", &x, 1, &y);
}

static void test_half_types(seqk_context_t ctx, th_rng *rng) {
  const seqk_dtype dts[2] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  const int64_t shape[3] = {5, 33, 3}, pad[3] = {1, 3, 0};
  char what[64];
  for (int t = 0; t < 2; ++t) {
    seqk_tensor x = th_tensor_strided(dts[t], 3, shape, pad, 1);
    seqk_tensor y = th_tensor_new(dts[t], 3, shape);
    th_fill_normal(&x, rng, 2.0);
    for (int32_t dim = 0; dim < 3; ++dim) {
      snprintf(what, sizeof what, "%s dim=%d", t ? "bf16" : "f16", (int)dim);
      check_softmax(ctx, &x, dim, &y, th_tol_for(dts[t]), what);
    }
    seqk_tensor xi = th_tensor_new(dts[t], 3, shape);
    th_fill_normal(&xi, rng, 2.0);
    const double *ref = ref_softmax(th_to_doubles(&xi), 3, shape, 1);
    th_expect_status(ctx, seqk_softmax(ctx, &xi, 1, &xi), SEQK_STATUS_SUCCESS, NULL,
                     "half in place");
    th_check_close(t ? "bf16 in place" : "f16 in place", &xi, ref, th_tol_for(dts[t]));
  }
}

static void test_row_lengths(seqk_context_t ctx, th_rng *rng) {
  const int64_t s1[2] = {4, 1};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, s1), y = th_tensor_new(SEQK_DTYPE_F32, 2, s1);
  th_fill_normal(&x, rng, 10.0);
  const double ones[4] = {1, 1, 1, 1};
  th_expect_status(ctx, seqk_softmax(ctx, &x, 1, &y), SEQK_STATUS_SUCCESS, NULL, "length 1");
  th_check_close("rows of length 1 are 1", &y, ones, (th_tol){0, 0});
  /* dim 0 of a [1, 7] tensor: every slice has length 1 too. */
  const int64_t s2[2] = {1, 7};
  seqk_tensor x2 = th_tensor_new(SEQK_DTYPE_F32, 2, s2), y2 = th_tensor_new(SEQK_DTYPE_F32, 2, s2);
  th_fill_normal(&x2, rng, 10.0);
  check_softmax(ctx, &x2, 0, &y2, (th_tol){0, 0}, "slices of length 1 along dim 0");

  const int64_t slong[2] = {2, 100000};
  seqk_tensor xl = th_tensor_new(SEQK_DTYPE_F32, 2, slong);
  seqk_tensor yl = th_tensor_new(SEQK_DTYPE_F32, 2, slong);
  th_fill_uniform(&xl, rng, -6.0, 6.0);
  check_softmax(ctx, &xl, -1, &yl, th_tol_for(SEQK_DTYPE_F32), "rows of length 100000");
}

static void test_empty(seqk_context_t ctx) {
  const int64_t s0[2] = {0, 3}, s1[2] = {3, 0};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, s0), y = th_tensor_new(SEQK_DTYPE_F32, 2, s0);
  th_expect_status(ctx, seqk_softmax(ctx, &x, 1, &y), SEQK_STATUS_SUCCESS, NULL, "0 rows");
  seqk_tensor x1 = th_tensor_new(SEQK_DTYPE_F32, 2, s1), y1 = th_tensor_new(SEQK_DTYPE_F32, 2, s1);
  th_expect_status(ctx, seqk_softmax(ctx, &x1, 1, &y1), SEQK_STATUS_SUCCESS, NULL, "0-length rows");
  th_expect_status(ctx, seqk_softmax(ctx, &x1, 0, &y1), SEQK_STATUS_SUCCESS, NULL,
                   "0-length dim 0");
  /* Nothing to compare, but a kernel must not fail on an empty grid. */
  check_on_device(ctx, "0 rows", &x, 1, &y);
  check_on_device(ctx, "0-length rows", &x1, 1, &y1);
}

/* ---- the CUDA kernel variants --------------------------------------------------------------------
   kernels/softmax.cu (choose_variant) picks, for a softmax dim with stride 1 in x and y: WARP for
   rows of n <= 1024, BLOCK for n <= 32768 (blocks holding 2048, 8192, 16384 or 32768 elements),
   and beyond that SPLIT (fewer than 2 * SMs rows: 16 on the emulated device's 8 SMs) or TWOPASS;
   16-byte vectors when every row of x and y starts 16-byte aligned, scalar accesses otherwise;
   and STRIDED (each thread keeps its <= 16 elements, n <= 16 * threads per column) or the
   re-reading STRIDED kernel when the dim has another stride. The shapes below reach each one in
   f32, f16 and bf16 (CPU result vs the double reference, then the same case on CUDA tensors vs
   the CPU result). */
static void check_random_rows(seqk_context_t ctx, th_rng *rng, seqk_dtype dt, int64_t rows,
                              int64_t n, const char *variant) {
  const int64_t shape[2] = {rows, n};
  char what[128];
  seqk_tensor x = th_tensor_new(dt, 2, shape), y = th_tensor_new(dt, 2, shape);
  th_fill_normal(&x, rng, 3.0);
  snprintf(what, sizeof what, "%s [%lld,%lld] %s", variant, (long long)rows, (long long)n,
           dt == SEQK_DTYPE_F32   ? "f32"
           : dt == SEQK_DTYPE_F16 ? "f16"
                                  : "bf16");
  check_softmax(ctx, &x, -1, &y, th_tol_for(dt), what);
}

static void test_variants(seqk_context_t ctx, th_rng *rng) {
  const seqk_dtype dts[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  /* {rows, n, variant}: n % 8 == 0 rows are vectorised in every dtype, n % 4 == 0 in f32 only,
     odd n always scalar (the row pitch n breaks the alignment of every other row). */
  static const struct {
    int64_t rows, n;
    const char *v;
  } rc[] = {
      {7, 1, "WARP 1 lane per row"},
      {5, 3, "WARP 4 lanes per row"},
      {9, 17, "WARP odd"},
      {6, 64, "WARP vector"},
      {37, 8, "WARP vector, 1-2 lanes per row, 4 rows per lane group, rows % 4 != 0"},
      {601, 4, "WARP f32 vector, 1 lane per row, several warps and blocks"},
      {13, 256, "WARP vector, 2 (f32) / 4 (16-bit) rows per lane group"},
      {3, 100, "WARP f32 vector, 16-bit scalar"},
      {3, 200, "WARP 2 chunks per lane"},
      {3, 400, "WARP 4 (f32) / 2 (16-bit) chunks per lane"},
      {2, 250, "WARP scalar, 8 per lane"},
      {2, 500, "WARP scalar, 16 per lane"},
      {4, 1000, "WARP vector, 8 chunks"},
      {3, 1024, "WARP longest"},
      {2, 1023, "WARP scalar, 32 per lane"},
      {3, 1025, "BLOCK 256x8 scalar"},
      {2, 2048, "BLOCK 2048 vector (f32 128x16, 16-bit 64x32)"},
      {3, 1032, "BLOCK 2048 vector, most threads past the row end"},
      {2, 4100, "BLOCK 512x16"},
      {2, 8192, "BLOCK 512x16 vector (16-bit 256x32)"},
      {2, 9000, "BLOCK 1024x16 (16-bit 512x32)"},
      {2, 9001, "BLOCK 1024x16 scalar"},
      {2, 20001, "BLOCK 1024x32 scalar"},
      {1, 32768, "BLOCK 1024x32 vector"},
      {2, 33001, "SPLIT scalar"},
      {2, 40000, "SPLIT vector"},
  };
  for (int t = 0; t < 3; ++t)
    for (size_t i = 0; i < sizeof rc / sizeof rc[0]; ++i)
      check_random_rows(ctx, rng, dts[t], rc[i].rows, rc[i].n, rc[i].v);
  /* TWOPASS needs >= 16 rows of more than 32768 (half a million elements per case, so only a
     few: scalar f16 and vector bf16 here, vector f32 in test_special_values, vector f16 in
     place in test_device_layouts). */
  check_random_rows(ctx, rng, SEQK_DTYPE_F16, 16, 32769, "TWOPASS scalar");
  check_random_rows(ctx, rng, SEQK_DTYPE_BF16, 17, 32776, "TWOPASS vector");

  char what[128];
  for (int t = 0; t < 3; ++t) {
    const char *tn = t == 0 ? "f32" : t == 1 ? "f16" : "bf16";
    /* Outer dims that cannot merge (padded pitches, multiples of 8): vectorised rows whose
       offsets come from two outer indices. */
    const int64_t s3[3] = {4, 6, 40}, pad3[3] = {0, 2, 8};
    seqk_tensor xp = th_tensor_strided(dts[t], 3, s3, pad3, 1);
    seqk_tensor yp = th_tensor_new(dts[t], 3, s3);
    th_fill_normal(&xp, rng, 2.0);
    snprintf(what, sizeof what, "WARP vector, unmergeable outer dims %s", tn);
    check_softmax(ctx, &xp, 2, &yp, th_tol_for(dts[t]), what);
    /* STRIDED along dim 0: 3 columns, 5000 long (re-read) and 2000 long (held). */
    const int64_t sc[2] = {5000, 3}, sh[2] = {2000, 3};
    seqk_tensor xc = th_tensor_new(dts[t], 2, sc), yc = th_tensor_new(dts[t], 2, sc);
    th_fill_normal(&xc, rng, 3.0);
    snprintf(what, sizeof what, "STRIDED dim 0 [5000,3] %s", tn);
    check_softmax(ctx, &xc, 0, &yc, th_tol_for(dts[t]), what);
    seqk_tensor xh = th_tensor_new(dts[t], 2, sh), yh = th_tensor_new(dts[t], 2, sh);
    th_fill_normal(&xh, rng, 3.0);
    snprintf(what, sizeof what, "STRIDED_HOLD dim 0 [2000,3] %s", tn);
    check_softmax(ctx, &xh, 0, &yh, th_tol_for(dts[t]), what);
    /* STRIDED along a last dim of stride 2 (into a stride-3 y, and into a contiguous y). */
    const int64_t l1[2] = {3, 2000}, l2[2] = {2, 9000};
    seqk_tensor xl = th_tensor_strided(dts[t], 2, l1, NULL, 2);
    seqk_tensor yl = th_tensor_strided(dts[t], 2, l1, NULL, 3);
    th_fill_normal(&xl, rng, 3.0);
    snprintf(what, sizeof what, "STRIDED_HOLD last dim, stride 2 [3,2000] %s", tn);
    check_softmax(ctx, &xl, 1, &yl, th_tol_for(dts[t]), what);
    seqk_tensor xm = th_tensor_strided(dts[t], 2, l2, NULL, 2);
    seqk_tensor ym = th_tensor_new(dts[t], 2, l2);
    th_fill_normal(&xm, rng, 3.0);
    snprintf(what, sizeof what, "STRIDED last dim, stride 2 [2,9000] %s", tn);
    check_softmax(ctx, &xm, 1, &ym, th_tol_for(dts[t]), what);
    /* Contiguous x, padded y (pitch 1001): the dim has stride 1 in both, rows misaligned. */
    const int64_t s5[2] = {5, 999}, pady[2] = {0, 2};
    seqk_tensor x5 = th_tensor_new(dts[t], 2, s5);
    seqk_tensor y5 = th_tensor_strided(dts[t], 2, s5, pady, 1);
    th_fill_normal(&x5, rng, 3.0);
    snprintf(what, sizeof what, "WARP padded y %s", tn);
    check_softmax(ctx, &x5, 1, &y5, th_tol_for(dts[t]), what);
  }
}

/* Rows with -inf everywhere (NaN, as torch), a +inf (NaN), a NaN (NaN), and -inf at every third
   place (exact zeros there) must come out the same through every variant's reduction: the
   online (max, sum) merges in TWOPASS/SPLIT/STRIDED meet -inf-only partial chunks. */
static void fill_special_row(seqk_tensor *x, int64_t first, int64_t step, int64_t n, int kind) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t at = first + j * step;
    if (kind == 0)
      th_set(x, at, -INFINITY);
    else if (kind == 1 && j == n / 2)
      th_set(x, at, INFINITY);
    else if (kind == 2 && j == n - 1)
      th_set(x, at, NAN);
    else if (kind == 3 && j % 3 == 0)
      th_set(x, at, -INFINITY);
  }
}

static void test_special_values(seqk_context_t ctx, th_rng *rng) {
  static const struct {
    int64_t rows, n;
    const char *v;
  } rc[] = {{4, 5, "WARP"}, {4, 3000, "BLOCK"}, {4, 33000, "SPLIT"}, {16, 32772, "TWOPASS"}};
  char what[128];
  for (size_t i = 0; i < sizeof rc / sizeof rc[0]; ++i) {
    const seqk_dtype dt = i == 1 ? SEQK_DTYPE_BF16 : SEQK_DTYPE_F32;
    const int64_t shape[2] = {rc[i].rows, rc[i].n};
    seqk_tensor x = th_tensor_new(dt, 2, shape), y = th_tensor_new(dt, 2, shape);
    th_fill_normal(&x, rng, 2.0);
    for (int kind = 0; kind < 4; ++kind) fill_special_row(&x, kind * rc[i].n, 1, rc[i].n, kind);
    snprintf(what, sizeof what, "%s rows of -inf, +inf, NaN, some -inf", rc[i].v);
    check_softmax(ctx, &x, 1, &y, th_tol_for(dt), what);
  }
  /* The same four columns along a strided dim 0 (held and re-read). */
  const int64_t lens[2] = {40, 5000};
  for (int i = 0; i < 2; ++i) {
    const int64_t shape[2] = {lens[i], 5};
    seqk_tensor x = th_tensor_new(SEQK_DTYPE_F16, 2, shape),
                y = th_tensor_new(SEQK_DTYPE_F16, 2, shape);
    th_fill_normal(&x, rng, 2.0);
    for (int kind = 0; kind < 4; ++kind) fill_special_row(&x, kind, 5, lens[i], kind);
    snprintf(what, sizeof what, "STRIDED%s columns of -inf, +inf, NaN, some -inf",
             i == 0 ? "_HOLD" : "");
    check_softmax(ctx, &x, 0, &y, th_tol_for(SEQK_DTYPE_F16), what);
  }
}

/* Device-only layouts that th_check_on_device cannot make (it gives each tensor its own aligned
   allocation): a contiguous [d0, d1] x and y starting x_off / y_off elements into CUDA buffers
   (a start that is not 16-byte aligned must fall back to scalar accesses), or y == x (in
   place); softmax along dim, compared with the double reference. */
static void check_device_layout(seqk_context_t ctx, th_rng *rng, seqk_dtype dt, int64_t d0,
                                int64_t d1, int32_t dim, int64_t x_off, int64_t y_off, int in_place,
                                const char *what) {
  if (seqk_cuda_device_count() == 0) return;
  const int64_t shape[2] = {d0, d1}, buf_n[1] = {d0 * d1 + 8};
  seqk_tensor hx = th_tensor_new(dt, 2, shape), hy = th_tensor_new(dt, 2, shape);
  th_fill_normal(&hx, rng, 3.0);
  const double *ref = ref_softmax(th_to_doubles(&hx), 2, shape, dim);
  seqk_tensor bx, by;
  memset(&by, 0, sizeof by);
  if (!th_expect_status(ctx, seqk_tensor_alloc(ctx, &bx, dt, SEQK_DEVICE_CUDA, 1, buf_n),
                        SEQK_STATUS_SUCCESS, NULL, what))
    return;
  const size_t es = seqk_dtype_size(dt);
  seqk_tensor dx = seqk_tensor_view((char *)bx.data + x_off * es, dt, SEQK_DEVICE_CUDA, 2, shape);
  seqk_tensor dy = dx;
  if (!in_place &&
      th_expect_status(ctx, seqk_tensor_alloc(ctx, &by, dt, SEQK_DEVICE_CUDA, 1, buf_n),
                       SEQK_STATUS_SUCCESS, NULL, what))
    dy = seqk_tensor_view((char *)by.data + y_off * es, dt, SEQK_DEVICE_CUDA, 2, shape);
  if (th_expect_status(ctx, seqk_tensor_copy(ctx, &dx, &hx), SEQK_STATUS_SUCCESS, NULL, what) &&
      th_expect_status(ctx, seqk_softmax(ctx, &dx, dim, &dy), SEQK_STATUS_SUCCESS, NULL, what) &&
      th_expect_status(ctx, seqk_tensor_copy(ctx, &hy, &dy), SEQK_STATUS_SUCCESS, NULL, what))
    th_check_close(what, &hy, ref, th_tol_scaled(dt, TH_DEVICE_TOL));
  seqk_tensor_free(ctx, &bx);
  seqk_tensor_free(ctx, &by);
}

static void test_device_layouts(seqk_context_t ctx, th_rng *rng) {
  /* Misaligned starts (x, y, both by the same amount) for the vector-capable lengths. */
  static const struct {
    int64_t d0, d1;
    const char *v;
  } rc[] = {{6, 64, "WARP"}, {2, 4096, "BLOCK"}, {2, 32800, "SPLIT"}};
  char what[160];
  for (size_t i = 0; i < sizeof rc / sizeof rc[0]; ++i) {
    const seqk_dtype dt = i == 1 ? SEQK_DTYPE_F16 : SEQK_DTYPE_F32;
    static const int64_t offs[4][2] = {{1, 0}, {0, 2}, {3, 3}, {4, 8}};
    for (int k = 0; k < 4; ++k) {
      snprintf(what, sizeof what, "%s x at +%lld, y at +%lld elements", rc[i].v,
               (long long)offs[k][0], (long long)offs[k][1]);
      check_device_layout(ctx, rng, dt, rc[i].d0, rc[i].d1, 1, offs[k][0], offs[k][1], 0, what);
    }
  }
  /* In place on CUDA through every variant: y is x. */
  static const struct {
    int64_t d0, d1;
    int32_t dim;
    seqk_dtype dt;
    const char *v;
  } ip[] = {
      {6, 64, 1, SEQK_DTYPE_F32, "WARP"},         {3, 30, 1, SEQK_DTYPE_BF16, "WARP scalar"},
      {2, 3000, 1, SEQK_DTYPE_F16, "BLOCK"},      {2, 20000, 1, SEQK_DTYPE_F32, "BLOCK 1024x32"},
      {2, 32800, 1, SEQK_DTYPE_BF16, "SPLIT"},    {16, 32800, 1, SEQK_DTYPE_F16, "TWOPASS"},
      {40, 7, 0, SEQK_DTYPE_F32, "STRIDED_HOLD"}, {5000, 3, 0, SEQK_DTYPE_BF16, "STRIDED"},
  };
  for (size_t i = 0; i < sizeof ip / sizeof ip[0]; ++i) {
    snprintf(what, sizeof what, "%s in place on CUDA [%lld,%lld] dim %d", ip[i].v,
             (long long)ip[i].d0, (long long)ip[i].d1, (int)ip[i].dim);
    if (ip[i].d0 * ip[i].d1 <
        100000) /* the misaligned (scalar) twin of the big cases is left out */
      check_device_layout(ctx, rng, ip[i].dt, ip[i].d0, ip[i].d1, ip[i].dim, 1, 0, 1, what);
    snprintf(what, sizeof what, "%s in place on CUDA, aligned [%lld,%lld] dim %d", ip[i].v,
             (long long)ip[i].d0, (long long)ip[i].d1, (int)ip[i].dim);
    check_device_layout(ctx, rng, ip[i].dt, ip[i].d0, ip[i].d1, ip[i].dim, 0, 0, 1, what);
  }
}

/* SPLIT keeps its per-chunk partial sums in the context's workspace; when x (here: in place)
   lives in that very workspace the dispatcher must not use it (TWOPASS instead), or the partials
   would overwrite x. */
static void test_x_in_workspace(seqk_context_t ctx, th_rng *rng) {
  if (seqk_cuda_device_count() == 0) return;
  const int64_t shape[2] = {2, 40000};
  seqk_tensor hx = th_tensor_new(SEQK_DTYPE_F32, 2, shape),
              hy = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  th_fill_normal(&hx, rng, 3.0);
  const double *ref = ref_softmax(th_to_doubles(&hx), 2, shape, 1);
  void *ws = NULL;
  if (!th_expect_status(ctx, seqk__workspace(ctx, "test", (size_t)th_numel(&hx) * 4, &ws),
                        SEQK_STATUS_SUCCESS, NULL, "workspace for x"))
    return;
  seqk_tensor dx = seqk_tensor_view(ws, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, shape);
  if (th_expect_status(ctx, seqk_tensor_copy(ctx, &dx, &hx), SEQK_STATUS_SUCCESS, NULL,
                       "x in ws") &&
      th_expect_status(ctx, seqk_softmax(ctx, &dx, 1, &dx), SEQK_STATUS_SUCCESS, NULL, "x in ws") &&
      th_expect_status(ctx, seqk_tensor_copy(ctx, &hy, &dx), SEQK_STATUS_SUCCESS, NULL, "x in ws"))
    th_check_close("x in the workspace, in place, [2,40000]", &hy, ref,
                   th_tol_scaled(SEQK_DTYPE_F32, TH_DEVICE_TOL));
}

static void test_bad_input(seqk_context_t ctx, th_rng *rng) {
  const int64_t shape[2] = {3, 4}, other[2] = {3, 3}, s3[3] = {3, 4, 1}, buf_shape[1] = {40};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor y = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  th_fill_normal(&x, rng, 1.0);
  th_poison(&y);
  const th_snapshot g = th_snapshot_take(&y);
  /* One rejected call: INVALID_VALUE, a message naming `needle`, and `guard` (the memory the
     output lives in) byte-for-byte unchanged. */
#define BAD(call, needle, what, guard)                                                             \
  th_expect_rejected(ctx, call, SEQK_STATUS_INVALID_VALUE, needle, what, guard, 1)

  TH_CHECK(seqk_softmax(NULL, &x, 1, &y) == SEQK_STATUS_INVALID_VALUE, "NULL ctx accepted");
  TH_CHECK(th_snapshot_unchanged(&g), "NULL ctx: y written");
  BAD(seqk_softmax(ctx, NULL, 1, &y), "x", "NULL x", &g);
  BAD(seqk_softmax(ctx, &x, 1, NULL), "y", "NULL y", &g);
  seqk_tensor t = x;
  t.data = NULL;
  BAD(seqk_softmax(ctx, &t, 1, &y), "x", "x data NULL", &g);
  t = y;
  t.data = NULL;
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y data NULL", &g);
  t = x;
  t.ndim = 0;
  seqk_tensor y0 = y;
  y0.ndim = 0;
  BAD(seqk_softmax(ctx, &t, 0, &y0), "x.ndim", "scalar x", &g);
  t = x;
  t.ndim = 7;
  BAD(seqk_softmax(ctx, &t, 0, &y), "x", "x.ndim 7", &g);
  t = x;
  t.ndim = -1;
  BAD(seqk_softmax(ctx, &t, 0, &y), "x", "x.ndim -1 (bad view)", &g);
  BAD(seqk_softmax(ctx, &x, 2, &y), "dim", "dim=2 for ndim 2", &g);
  BAD(seqk_softmax(ctx, &x, -3, &y), "dim", "dim=-3 for ndim 2", &g);
  t = y;
  t.shape[1] = other[1];
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y shape mismatch", &g);
  t = y;
  t.ndim = 3;
  t.shape[2] = s3[2];
  t.stride[2] = 1;
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y ndim mismatch", &g);
  t = y;
  t.dtype = SEQK_DTYPE_F16;
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y dtype mismatch", &g);
  t = x;
  t.dtype = SEQK_DTYPE_I32;
  seqk_tensor yi = y;
  yi.dtype = SEQK_DTYPE_I32;
  BAD(seqk_softmax(ctx, &t, 1, &yi), "x", "I32 x", &g);
  t = x;
  t.dtype = (seqk_dtype)9;
  BAD(seqk_softmax(ctx, &t, 1, &y), "x", "unknown dtype", &g);
  t = y;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y on CUDA, x on CPU", &g);
  t = x;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_softmax(ctx, &t, 1, &y), "x", "x on CUDA, y on CPU", &g);
  t = x;
  t.shape[0] = -1;
  BAD(seqk_softmax(ctx, &t, 1, &y), "x", "negative extent", &g);
  t = y;
  t.stride[1] = 0;
  BAD(seqk_softmax(ctx, &x, 1, &t), "y", "y with overlapping elements", &g);

  /* y partially overlapping x inside one buffer. */
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 1, buf_shape);
  th_fill_normal(&buf, rng, 1.0);
  const th_snapshot gb = th_snapshot_take(&buf);
  seqk_tensor xb = seqk_tensor_view(buf.data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  seqk_tensor yb =
      seqk_tensor_view((float *)buf.data + 2, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  BAD(seqk_softmax(ctx, &xb, 1, &yb), "y", "y partially overlaps x", &gb);
  /* Same data pointer, different strides: not an exact alias. */
  seqk_tensor yt = xb;
  yt.shape[0] = 4;
  yt.shape[1] = 3;
  yt.stride[0] = 1;
  yt.stride[1] = 4;
  seqk_tensor xt = xb;
  xt.shape[0] = 4;
  xt.shape[1] = 3;
  xt.stride[0] = 3;
  xt.stride[1] = 1;
  BAD(seqk_softmax(ctx, &xt, 1, &yt), "y", "same pointer, other strides", &gb);
#undef BAD
}

int main(void) {
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 620);
  test_seed_golden(ctx);
  test_rows_sum_to_one(ctx, &rng);
  test_shift_invariance(ctx, &rng);
  test_every_dim(ctx, &rng);
  test_in_place(ctx, &rng);
  test_infinities(ctx);
  test_half_types(ctx, &rng);
  test_row_lengths(ctx, &rng);
  test_empty(ctx);
  test_variants(ctx, &rng);
  test_special_values(ctx, &rng);
  test_device_layouts(ctx, &rng);
  test_x_in_workspace(ctx, &rng);
  test_bad_input(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
