/*
 * test_attention_merge.c - seqk_attention_merge on the CPU, and on CUDA tensors against it.
 *
 * Against a double reference written here with log1p (not the library's formula): random parts
 * with rows empty on either side (+inf or -inf lse, their o NaN, which must not leak) and on
 * both; 1-d to 4-d shapes, strided views, every vector width of the CUDA kernel, in-place
 * aliasing (o over o_a or o_b, lse over lse_a or lse_b, crossed), and bad input for every
 * argument. (Merging the attention of two key halves into the attention over all keys is checked
 * in test_attention.c.)
 */
#include "harness.h"

#include <math.h>
#include <string.h>

static double *dalloc(int64_t n) {
  return (double *)th_alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
}

/* Merge of rows of Dv values with their lse, written with log1p (not the library's formula). */
static void ref_merge(int64_t rows, int64_t Dv, const double *oa, const double *la,
                      const double *ob, const double *lb, double *o, double *lse) {
  for (int64_t r = 0; r < rows; ++r) {
    const int ea = isinf(la[r]), eb = isinf(lb[r]);
    for (int64_t e = 0; e < Dv; ++e) {
      const double a = oa[r * Dv + e], b = ob[r * Dv + e];
      if (ea && eb)
        o[r * Dv + e] = 0.0;
      else if (ea)
        o[r * Dv + e] = b;
      else if (eb)
        o[r * Dv + e] = a;
      else {
        const double l = fmax(la[r], lb[r]) + log1p(exp(-fabs(la[r] - lb[r])));
        o[r * Dv + e] = exp(la[r] - l) * a + exp(lb[r] - l) * b;
      }
    }
    if (ea && eb)
      lse[r] = INFINITY;
    else if (ea)
      lse[r] = lb[r];
    else if (eb)
      lse[r] = la[r];
    else
      lse[r] = fmax(la[r], lb[r]) + log1p(exp(-fabs(la[r] - lb[r])));
  }
}

static seqk_status merge_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  (void)user;
  return seqk_attention_merge(ctx, &in[0], &in[1], &in[2], &in[3], &out[0], &out[1]);
}

/* lse may be NULL (not asked for). */
static void merge_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *oa,
                            const seqk_tensor *la, const seqk_tensor *ob, const seqk_tensor *lb,
                            const seqk_tensor *o, const seqk_tensor *lse) {
  const seqk_tensor in[4] = {*oa, *la, *ob, *lb};
  const seqk_tensor out[2] = {*o, lse ? *lse : th_absent(*la)};
  th_check_on_device(ctx, what, merge_op, NULL, in, 4, 0, out, 2, 1.0);
}

typedef struct merge_bufs {
  seqk_tensor oa, la, ob, lb, o, l;
  double *o_ref, *l_ref;
} merge_bufs;

/* Random parts over shape (last dim Dv) with some rows empty on either side (+inf or -inf lse,
   their o filled with NaN, which must not leak) and both empty. */
static merge_bufs make_merge(th_rng *rng, seqk_dtype dt, int32_t ndim, const int64_t *shape,
                             int strided) {
  merge_bufs m;
  const int64_t pad[SEQK_MAX_DIMS] = {1, 2, 1, 3, 1, 2};
  const int64_t Dv = shape[ndim - 1];
  int64_t rows = 1;
  for (int32_t i = 0; i < ndim - 1; ++i) rows *= shape[i];
  m.oa = strided ? th_tensor_strided(dt, ndim, shape, pad, 2) : th_tensor_new(dt, ndim, shape);
  m.ob = strided ? th_tensor_strided(dt, ndim, shape, pad + 1, 1) : th_tensor_new(dt, ndim, shape);
  m.o = strided ? th_tensor_strided(dt, ndim, shape, pad, 3) : th_tensor_new(dt, ndim, shape);
  m.la = strided ? th_tensor_strided(SEQK_DTYPE_F32, ndim - 1, shape, pad + 2, 2)
                 : th_tensor_new(SEQK_DTYPE_F32, ndim - 1, shape);
  m.lb = th_tensor_new(SEQK_DTYPE_F32, ndim - 1, shape);
  m.l = strided ? th_tensor_strided(SEQK_DTYPE_F32, ndim - 1, shape, pad, 1)
                : th_tensor_new(SEQK_DTYPE_F32, ndim - 1, shape);
  th_fill_normal(&m.oa, rng, 1.0);
  th_fill_normal(&m.ob, rng, 1.0);
  th_fill_normal(&m.la, rng, 3.0);
  th_fill_normal(&m.lb, rng, 3.0);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t kind = rows > 4 ? r % 7 : 0; /* 1..4: one side empty, 5: both */
    if (kind == 1 || kind == 2 || kind == 5) {
      th_set(&m.la, r, kind == 1 ? INFINITY : -INFINITY);
      for (int64_t e = 0; e < Dv; ++e) th_set(&m.oa, r * Dv + e, NAN);
    }
    if (kind == 3 || kind == 4 || kind == 5) {
      th_set(&m.lb, r, kind == 3 ? INFINITY : -INFINITY);
      for (int64_t e = 0; e < Dv; ++e) th_set(&m.ob, r * Dv + e, NAN);
    }
  }
  m.o_ref = dalloc(rows * Dv);
  m.l_ref = dalloc(rows);
  ref_merge(rows, Dv, th_to_doubles(&m.oa), th_to_doubles(&m.la), th_to_doubles(&m.ob),
            th_to_doubles(&m.lb), m.o_ref, m.l_ref);
  return m;
}

/* For the CUDA kernel (kernels/attention_merge.cu): 16-byte vectors in every dtype (f16/bf16 need
   Dv % 8 == 0), rows longer than a warp's worth of vectors, and the element-wise path for
   strided views of the same shapes. */
static void test_merge_widths(seqk_context_t ctx, th_rng *rng) {
  static const struct {
    seqk_dtype dt;
    int32_t ndim;
    int64_t shape[4];
    int strided;
  } cases[] = {
      {SEQK_DTYPE_F16, 3, {3, 5, 16}, 0}, {SEQK_DTYPE_BF16, 4, {2, 3, 4, 24}, 0},
      {SEQK_DTYPE_F32, 2, {7, 264}, 0},   {SEQK_DTYPE_BF16, 2, {6, 520}, 0},
      {SEQK_DTYPE_F16, 3, {3, 5, 16}, 1}, {SEQK_DTYPE_F32, 2, {7, 264}, 1},
  };
  char what[128];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    merge_bufs m = make_merge(rng, cases[c].dt, cases[c].ndim, cases[c].shape, cases[c].strided);
    snprintf(what, sizeof what, "merge Dv=%lld %s strided=%d",
             (long long)cases[c].shape[cases[c].ndim - 1], th_dtype_name(cases[c].dt),
             cases[c].strided);
    th_expect_status(ctx, seqk_attention_merge(ctx, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l),
                     SEQK_STATUS_SUCCESS, NULL, what);
    th_check_close(what, &m.o, m.o_ref, th_tol_for(cases[c].dt));
    th_check_close(what, &m.l, m.l_ref, th_tol_for(SEQK_DTYPE_F32));
    merge_on_device(ctx, what, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l);
  }
}

static void test_merge_random(seqk_context_t ctx, th_rng *rng) {
  const int64_t s4[4] = {2, 3, 5, 7}, s1[1] = {9}, s2[2] = {11, 1};
  const seqk_dtype dts[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  char what[128];
  for (int t = 0; t < 3; ++t)
    for (int strided = 0; strided < 2; ++strided) {
      merge_bufs m = make_merge(rng, dts[t], 4, s4, strided);
      snprintf(what, sizeof what, "merge [2,3,5,7] %s strided=%d", th_dtype_name(dts[t]), strided);
      th_expect_status(ctx, seqk_attention_merge(ctx, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l),
                       SEQK_STATUS_SUCCESS, NULL, what);
      th_check_close(what, &m.o, m.o_ref, th_tol_for(dts[t]));
      th_check_close(what, &m.l, m.l_ref, th_tol_for(SEQK_DTYPE_F32));
      merge_on_device(ctx, what, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l);
    }
  /* ndim 1: a single row, lse is a scalar; ndim 2 with Dv = 1. */
  merge_bufs m1 = make_merge(rng, SEQK_DTYPE_F32, 1, s1, 0);
  th_expect_status(ctx, seqk_attention_merge(ctx, &m1.oa, &m1.la, &m1.ob, &m1.lb, &m1.o, &m1.l),
                   SEQK_STATUS_SUCCESS, NULL, "merge ndim 1");
  th_check_close("merge ndim 1: o", &m1.o, m1.o_ref, th_tol_for(SEQK_DTYPE_F32));
  th_check_close("merge ndim 1: lse", &m1.l, m1.l_ref, th_tol_for(SEQK_DTYPE_F32));
  merge_on_device(ctx, "merge ndim 1", &m1.oa, &m1.la, &m1.ob, &m1.lb, &m1.o, &m1.l);
  merge_bufs m2 = make_merge(rng, SEQK_DTYPE_F32, 2, s2, 1);
  th_expect_status(ctx, seqk_attention_merge(ctx, &m2.oa, &m2.la, &m2.ob, &m2.lb, &m2.o, NULL),
                   SEQK_STATUS_SUCCESS, NULL, "merge Dv = 1, no lse");
  th_check_close("merge Dv = 1, no lse: o", &m2.o, m2.o_ref, th_tol_for(SEQK_DTYPE_F32));
  merge_on_device(ctx, "merge Dv = 1, no lse", &m2.oa, &m2.la, &m2.ob, &m2.lb, &m2.o, NULL);

  /* Explicit rows: (+inf, -inf) both empty; one side empty returns the other exactly (its NaN
     partner never read); lse far apart (a naive exp would overflow) and close together. */
  const int64_t s3[2] = {5, 4};
  merge_bufs e = make_merge(rng, SEQK_DTYPE_F32, 2, s3, 0);
  th_fill_normal(&e.oa, rng, 1.0); /* fresh values: make_merge put NaN in its own empty rows */
  th_fill_normal(&e.ob, rng, 1.0);
  const double la[5] = {INFINITY, -INFINITY, 1.25, -1000.0, 500.5};
  const double lb[5] = {-INFINITY, 0.5, INFINITY, 1000.0, 500.0};
  for (int64_t r = 0; r < 5; ++r) {
    th_set(&e.la, r, la[r]);
    th_set(&e.lb, r, lb[r]);
  }
  for (int64_t i = 0; i < 4; ++i) {
    th_set(&e.oa, i, NAN);
    th_set(&e.ob, i, NAN);     /* row 0: both sides garbage */
    th_set(&e.oa, 4 + i, NAN); /* row 1: a is empty */
    th_set(&e.ob, 8 + i, NAN); /* row 2: b is empty */
  }
  double o_exp[20], l_exp[5];
  ref_merge(5, 4, th_to_doubles(&e.oa), la, th_to_doubles(&e.ob), lb, o_exp, l_exp);
  th_expect_status(ctx, seqk_attention_merge(ctx, &e.oa, &e.la, &e.ob, &e.lb, &e.o, &e.l),
                   SEQK_STATUS_SUCCESS, NULL, "merge explicit rows");
  th_check_close("merge explicit rows: o", &e.o, o_exp, th_tol_for(SEQK_DTYPE_F32));
  th_check_close("merge explicit rows: lse", &e.l, l_exp, th_tol_for(SEQK_DTYPE_F32));
  merge_on_device(ctx, "merge explicit rows", &e.oa, &e.la, &e.ob, &e.lb, &e.o, &e.l);
  int exact = th_get(&e.l, 0) == INFINITY && th_get(&e.l, 1) == 0.5 && th_get(&e.l, 2) == 1.25;
  for (int64_t i = 0; i < 4; ++i)
    exact &= th_get(&e.o, i) == 0.0 && th_get(&e.o, 4 + i) == th_get(&e.ob, 4 + i) &&
             th_get(&e.o, 8 + i) == th_get(&e.oa, 8 + i);
  TH_CHECK(exact, "merge: an empty part must contribute nothing (exact copy of the other part)");
  test_merge_widths(ctx, rng);
}

/* Elements t's memory spans (largest offset + 1; 0 when empty). */
static int64_t span_of(const seqk_tensor *t) {
  int64_t span = 1;
  for (int32_t d = 0; d < t->ndim; ++d) {
    if (t->shape[d] == 0) return 0;
    span += (t->shape[d] - 1) * t->stride[d];
  }
  return span;
}

/* A CUDA tensor with host tensor h's layout over a new allocation (*backing) holding h's span. */
static seqk_tensor merge_upload(seqk_context_t ctx, const seqk_tensor *h, seqk_tensor *backing) {
  int64_t span = span_of(h);
  seqk_tensor src = seqk_tensor_view(h->data, h->dtype, SEQK_DEVICE_CPU, 1, &span);
  seqk_status st = seqk_tensor_alloc(ctx, backing, h->dtype, SEQK_DEVICE_CUDA, 1, &span);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, backing, &src);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "merge on CUDA: upload failed: %s",
           seqk_context_last_error(ctx));
  seqk_tensor d = *h;
  d.device = SEQK_DEVICE_CUDA;
  d.data = backing->data;
  return d;
}

/* A host tensor with d's layout holding d's span. */
static seqk_tensor merge_download(seqk_context_t ctx, const seqk_tensor *d) {
  int64_t span = span_of(d);
  seqk_tensor h = *d;
  h.device = SEQK_DEVICE_CPU;
  h.data = th_alloc((size_t)span * seqk_dtype_size(d->dtype));
  seqk_tensor dst = seqk_tensor_view(h.data, d->dtype, SEQK_DEVICE_CPU, 1, &span);
  seqk_tensor src = seqk_tensor_view(d->data, d->dtype, SEQK_DEVICE_CUDA, 1, &span);
  TH_CHECK(seqk_tensor_copy(ctx, &dst, &src) == SEQK_STATUS_SUCCESS,
           "merge on CUDA: download failed: %s", seqk_context_last_error(ctx));
  return h;
}

/* In-place merges on CUDA tensors (the device parity gives every output its own memory, so it
   cannot run these): o over o_a or o_b, lse over lse_a or lse_b, and crossed (o over o_a, lse
   over lse_b); contiguous Dv = 8 (the vectorised kernel) and strided (element-wise). */
static void test_merge_in_place_on_device(seqk_context_t ctx, th_rng *rng) {
  if (seqk_cuda_device_count() == 0) return;
  const int64_t s[3] = {4, 6, 8};
  const seqk_dtype dts[2] = {SEQK_DTYPE_F32, SEQK_DTYPE_BF16};
  char what[128];
  for (int t = 0; t < 2; ++t)
    for (int mode = 0; mode < 3; ++mode)
      for (int strided = 0; strided < 2; ++strided) {
        merge_bufs m = make_merge(rng, dts[t], 3, s, strided);
        seqk_tensor b[4];
        memset(b, 0, sizeof b);
        seqk_tensor oa = merge_upload(ctx, &m.oa, &b[0]), la = merge_upload(ctx, &m.la, &b[1]);
        seqk_tensor ob = merge_upload(ctx, &m.ob, &b[2]), lb = merge_upload(ctx, &m.lb, &b[3]);
        seqk_tensor *o = mode == 1 ? &ob : &oa, *l = mode == 0 ? &la : &lb;
        snprintf(what, sizeof what,
                 "merge on CUDA in place: o over %s, lse over %s (%s, strided=%d)",
                 mode == 1 ? "o_b" : "o_a", mode == 0 ? "lse_a" : "lse_b", th_dtype_name(dts[t]),
                 strided);
        th_expect_status(ctx, seqk_attention_merge(ctx, &oa, &la, &ob, &lb, o, l),
                         SEQK_STATUS_SUCCESS, NULL, what);
        const seqk_tensor o_host = merge_download(ctx, o), l_host = merge_download(ctx, l);
        th_check_close(what, &o_host, m.o_ref, th_tol_scaled(dts[t], TH_DEVICE_TOL));
        th_check_close(what, &l_host, m.l_ref, th_tol_scaled(SEQK_DTYPE_F32, TH_DEVICE_TOL));
        for (int i = 0; i < 4; ++i) seqk_tensor_free(ctx, &b[i]);
      }
}

static void test_merge_in_place(seqk_context_t ctx, th_rng *rng) {
  const int64_t s[3] = {4, 6, 5};
  for (int side = 0; side < 2; ++side)
    for (int strided = 0; strided < 2; ++strided) {
      merge_bufs m = make_merge(rng, SEQK_DTYPE_F32, 3, s, strided);
      seqk_tensor *o = side ? &m.ob : &m.oa, *l = side ? &m.lb : &m.la;
      th_expect_status(ctx, seqk_attention_merge(ctx, &m.oa, &m.la, &m.ob, &m.lb, o, l),
                       SEQK_STATUS_SUCCESS, NULL, "merge in place");
      th_check_close(side ? "merge in place into o_b" : "merge in place into o_a", o, m.o_ref,
                     th_tol_for(SEQK_DTYPE_F32));
      th_check_close(side ? "merge in place into lse_b" : "merge in place into lse_a", l, m.l_ref,
                     th_tol_for(SEQK_DTYPE_F32));
    }
  /* o in place over o_a while lse goes to lse_b. */
  merge_bufs m = make_merge(rng, SEQK_DTYPE_F16, 3, s, 1);
  th_expect_status(ctx, seqk_attention_merge(ctx, &m.oa, &m.la, &m.ob, &m.lb, &m.oa, &m.lb),
                   SEQK_STATUS_SUCCESS, NULL, "merge crossed in place");
  th_check_close("merge o -> o_a, lse -> lse_b: o", &m.oa, m.o_ref, th_tol_for(SEQK_DTYPE_F16));
  th_check_close("merge o -> o_a, lse -> lse_b: lse", &m.lb, m.l_ref, th_tol_for(SEQK_DTYPE_F32));
  test_merge_in_place_on_device(ctx, rng);
}

/* ---- bad input -------------------------------------------------------------------------------- */

/* One rejected call: INVALID_VALUE, a message naming `needle`, and the guarded memory (snapshots
   of the outputs, or of the buffer the tensors live in) byte-for-byte unchanged. */
#define EXPECT_BAD(call, needle, what, ...)                                                        \
  th_expect_rejected(ctx, call, SEQK_STATUS_INVALID_VALUE, needle, what, TH_SNAPS(__VA_ARGS__))

/* seqk.h's rule: a NaN lse makes its row NaN, also when the other part is empty (a lone part is
   otherwise copied as it is); both empty: o = 0, lse = +inf. On the CPU and on CUDA tensors. */
static void test_merge_nan_lse(seqk_context_t ctx, th_rng *rng) {
  const int64_t shape[2] = {6, 8};
  merge_bufs m = make_merge(rng, SEQK_DTYPE_F32, 2, shape, 0);
  /* Rows: 0 NaN + finite, 1 NaN + +inf, 2 -inf + NaN, 3 NaN + NaN, 4 finite + +inf (lone copy),
     5 -inf + +inf (both empty). */
  const double la[6] = {NAN, NAN, -INFINITY, NAN, 0.25, -INFINITY};
  const double lb[6] = {1.5, INFINITY, NAN, NAN, INFINITY, INFINITY};
  for (int r = 0; r < 6; ++r) {
    th_set(&m.la, r, la[r]);
    th_set(&m.lb, r, lb[r]);
    for (int64_t e = 0; e < 8; ++e) {
      th_set(&m.oa, r * 8 + e, 0.5 + e);
      th_set(&m.ob, r * 8 + e, -1.0 - e);
    }
  }
  double o_ref[48], l_ref[6];
  for (int r = 0; r < 6; ++r) {
    for (int64_t e = 0; e < 8; ++e) o_ref[r * 8 + e] = r < 4 ? NAN : r == 4 ? 0.5 + e : 0.0;
    l_ref[r] = r < 4 ? NAN : r == 4 ? 0.25 : INFINITY;
  }
  th_poison(&m.o);
  th_poison(&m.l);
  th_expect_status(ctx, seqk_attention_merge(ctx, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l),
                   SEQK_STATUS_SUCCESS, NULL, "merge with NaN lse");
  th_check_close("merge with NaN lse: o", &m.o, o_ref, th_tol_for(SEQK_DTYPE_F32));
  th_check_close("merge with NaN lse: lse", &m.l, l_ref, th_tol_for(SEQK_DTYPE_F32));
  merge_on_device(ctx, "merge with NaN lse", &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l);
}

/* Nothing to write: o with no element (Dv = 0) over 2^40 rows given by stride-0 inputs, no lse.
   Returns at once (a reference that walked the rows would not return). */
static void test_merge_empty_huge(seqk_context_t ctx) {
  static float cell[4];
  const int64_t shape[2] = {(int64_t)1 << 40, 0}, zero[2] = {0, 0}, lshape[1] = {(int64_t)1 << 40};
  const int64_t lzero[1] = {0};
  seqk_tensor oa = seqk_tensor_view_strided(cell, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape, zero);
  seqk_tensor la = seqk_tensor_view_strided(cell, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, lshape, lzero);
  seqk_tensor o = seqk_tensor_view_strided(cell + 2, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape, zero);
  th_expect_status(ctx, seqk_attention_merge(ctx, &oa, &la, &oa, &la, &o, NULL),
                   SEQK_STATUS_SUCCESS, NULL, "merge of 2^40 empty rows without lse");
}

static void test_bad_merge(seqk_context_t ctx, th_rng *rng) {
  const int64_t s[3] = {2, 3, 4};
  merge_bufs m = make_merge(rng, SEQK_DTYPE_F32, 3, s, 0);
  th_poison(&m.o);
  th_poison(&m.l);
  const th_snapshot go = th_snapshot_take(&m.o), gl = th_snapshot_take(&m.l);
  seqk_tensor t;
#define MRG(OA, LA, OB, LB, O, L) seqk_attention_merge(ctx, OA, LA, OB, LB, O, L)
#define BAD(call, needle, what)   EXPECT_BAD(call, needle, what, go, gl)
  TH_CHECK(seqk_attention_merge(NULL, &m.oa, &m.la, &m.ob, &m.lb, &m.o, &m.l) ==
               SEQK_STATUS_INVALID_VALUE,
           "merge: NULL ctx");
  BAD(MRG(NULL, &m.la, &m.ob, &m.lb, &m.o, &m.l), "o_a", "merge: NULL o_a");
  BAD(MRG(&m.oa, NULL, &m.ob, &m.lb, &m.o, &m.l), "lse_a", "merge: NULL lse_a");
  BAD(MRG(&m.oa, &m.la, NULL, &m.lb, &m.o, &m.l), "o_b", "merge: NULL o_b");
  BAD(MRG(&m.oa, &m.la, &m.ob, NULL, &m.o, &m.l), "lse_b", "merge: NULL lse_b");
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, NULL, &m.l), "o", "merge: NULL o");
  t = m.oa;
  t.data = NULL;
  BAD(MRG(&t, &m.la, &m.ob, &m.lb, &m.o, &m.l), "o_a", "merge: o_a data NULL");
  t = m.lb;
  t.data = NULL;
  BAD(MRG(&m.oa, &m.la, &m.ob, &t, &m.o, &m.l), "lse_b", "merge: lse_b data NULL");
  t = m.o;
  t.data = NULL;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, &m.l), "o", "merge: o data NULL");
  seqk_tensor oa0 = m.oa, ob0 = m.ob, o0 = m.o, la0 = m.la, lb0 = m.lb, l0 = m.l;
  oa0.ndim = ob0.ndim = o0.ndim = 0;
  la0.ndim = lb0.ndim = l0.ndim = 0;
  BAD(MRG(&oa0, &la0, &ob0, &lb0, &o0, &l0), "o_a", "merge: ndim 0");
  t = m.ob;
  t.shape[2] = 3;
  BAD(MRG(&m.oa, &m.la, &t, &m.lb, &m.o, &m.l), "o_b", "merge: o_b shape");
  t = m.o;
  t.shape[0] = 1;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, &m.l), "o", "merge: o shape");
  t = m.ob;
  t.ndim = 2;
  BAD(MRG(&m.oa, &m.la, &t, &m.lb, &m.o, &m.l), "o_b", "merge: o_b ndim");
  t = m.la;
  t.shape[1] = 4;
  BAD(MRG(&m.oa, &t, &m.ob, &m.lb, &m.o, &m.l), "lse_a", "merge: lse_a shape");
  t = m.lb;
  t.ndim = 3;
  t.shape[2] = 4;
  t.stride[2] = 1;
  BAD(MRG(&m.oa, &m.la, &m.ob, &t, &m.o, &m.l), "lse_b", "merge: lse_b with o's ndim");
  t = m.l;
  t.shape[0] = 1;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &m.o, &t), "lse", "merge: lse shape");
  t = m.ob;
  t.dtype = SEQK_DTYPE_F16;
  BAD(MRG(&m.oa, &m.la, &t, &m.lb, &m.o, &m.l), "o_b", "merge: o_b dtype");
  t = m.o;
  t.dtype = SEQK_DTYPE_BF16;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, &m.l), "o", "merge: o dtype");
  t = m.la;
  t.dtype = SEQK_DTYPE_F16;
  BAD(MRG(&m.oa, &t, &m.ob, &m.lb, &m.o, &m.l), "lse_a", "merge: lse_a F16");
  t = m.l;
  t.dtype = SEQK_DTYPE_BF16;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &m.o, &t), "lse", "merge: lse BF16");
  t = m.oa;
  t.dtype = SEQK_DTYPE_I32;
  BAD(MRG(&t, &m.la, &m.ob, &m.lb, &m.o, &m.l), "o_a", "merge: I32 o_a");
  t = m.o;
  t.device = SEQK_DEVICE_CUDA;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, &m.l), "o", "merge: o on CUDA");
  t = m.l;
  t.device = SEQK_DEVICE_CUDA;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &m.o, &t), "lse", "merge: lse on CUDA");
  t = m.lb;
  t.device = SEQK_DEVICE_CUDA;
  BAD(MRG(&m.oa, &m.la, &m.ob, &t, &m.o, &m.l), "lse_b", "merge: lse_b on CUDA");
  t = m.o;
  t.stride[1] = 0;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, &m.l), "o", "merge: o elements overlap");
  t = m.l;
  t.stride[0] = 0;
  BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &m.o, &t), "lse", "merge: lse elements overlap");

  /* Partial overlaps (only exact aliases are allowed). */
  const th_snapshot ga = th_snapshot_take(&m.oa), gla = th_snapshot_take(&m.la);
  const th_snapshot glb = th_snapshot_take(&m.lb);
  t = m.oa;
  t.data = (float *)m.oa.data + 1;
  t.shape[0] = 1;
  seqk_tensor oa1 = th_slice(&m.oa, 0, 0, 1), ob1 = th_slice(&m.ob, 0, 0, 1);
  seqk_tensor la1 = th_slice(&m.la, 0, 0, 1), lb1 = th_slice(&m.lb, 0, 0, 1);
  EXPECT_BAD(MRG(&oa1, &la1, &ob1, &lb1, &t, NULL), "o_a", "merge: o partially overlaps o_a", ga);
  t = m.oa;
  t.stride[0] = 1;
  t.stride[1] = 2;
  t.stride[2] = 6; /* same pointer, other layout */
  EXPECT_BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &t, NULL), "o_a",
             "merge: o same pointer as o_a, other strides", ga);
  t = m.o;
  t.data = m.la.data;
  t.shape[2] = 1;
  t.stride[0] = 3;
  t.stride[1] = 1;
  t.stride[2] = 1;
  seqk_tensor oa_n = m.oa, ob_n = m.ob;
  oa_n.shape[2] = 1;
  ob_n.shape[2] = 1;
  EXPECT_BAD(MRG(&oa_n, &m.la, &ob_n, &m.lb, &t, NULL), "lse_a", "merge: o over lse_a", gla);
  t = m.l;
  t.data = (float *)m.lb.data + 1;
  t.shape[0] = 1;
  EXPECT_BAD(MRG(&oa1, &la1, &ob1, &lb1, &ob1, &t), "lse_b", "merge: lse partially overlaps lse_b",
             glb);
  t = m.l;
  t.data = m.oa.data;
  EXPECT_BAD(MRG(&m.oa, &m.la, &m.ob, &m.lb, &m.o, &t), "o_a", "merge: lse over o_a", go, ga);
#undef BAD
#undef MRG
}

#undef EXPECT_BAD

int main(void) {
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 3);
  test_merge_random(ctx, &rng);
  test_merge_in_place(ctx, &rng);
  test_merge_nan_lse(ctx, &rng);
  test_merge_empty_huge(ctx);
  test_bad_merge(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
