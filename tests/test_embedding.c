/*
 * test_embedding.c - seqk_embedding on the CPU, and on CUDA tensors against it.
 *
 * embedding: against a direct gather; 0-d/1-d/2-d indices, strided tensors, range errors; row
 *            widths reaching each unit of the CUDA gather; range errors on CUDA tensors (first
 *            bad position named, out byte-identical, the context usable afterwards).
 * bad input: every argument.
 */
#include "harness.h"
#include "internal.h" /* the context's wait and allocation counters */

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
static seqk_status embedding_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  (void)user;
  return seqk_embedding(ctx, &in[0], &in[1], &out[0]);
}

/* ---- embedding ------------------------------------------------------------------------------ */

static void run_embedding_case_ve(const char *name, seqk_dtype dt, int32_t idx_ndim,
                                  const int64_t *idx_shape, int strided, int64_t V, int64_t E) {
  const int64_t t_shape[2] = {V, E};
  int64_t o_shape[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < idx_ndim; ++d) o_shape[d] = idx_shape[d];
  o_shape[idx_ndim] = E;
  seqk_tensor indices = th_tensor_maybe_strided(SEQK_DTYPE_I32, idx_ndim, idx_shape, strided);
  seqk_tensor table = th_tensor_maybe_strided(dt, 2, t_shape, strided);
  seqk_tensor out = th_tensor_maybe_strided(dt, idx_ndim + 1, o_shape, strided);
  th_fill_uniform(&table, &g_rng, -3.0, 3.0);
  th_poison(&out);

  const int64_t n = th_numel(&indices);
  int32_t *vals = th_alloc((size_t)(n + 1) * sizeof(int32_t));
  for (int64_t i = 0; i < n; ++i) vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
  if (n >= 2) { /* both ends of the table */
    vals[0] = 0;
    vals[n - 1] = V - 1;
  }
  th_fill_i32(&indices, vals);

  char what[128];
  snprintf(what, sizeof what, "embedding %s %s", name, th_dtype_name(dt));
  seqk_status st = seqk_embedding(g_ctx, &indices, &table, &out);
  if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) return;
  double *ref = th_alloc((size_t)(n * E + 1) * sizeof(double));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e) ref[i * E + e] = th_get(&table, vals[i] * E + e);
  /* A gather moves values unchanged: exact. */
  const th_tol exact = {0.0, 0.0};
  TH_CHECK(th_check_close(what, &out, ref, exact), "%s: out is not the gathered rows", what);
  const seqk_tensor in[2] = {indices, table};
  th_check_on_device(g_ctx, what, embedding_op, NULL, in, 2, 0, &out, 1, 0.0);
}

static void run_embedding_case(const char *name, seqk_dtype dt, int32_t idx_ndim,
                               const int64_t *idx_shape, int strided) {
  run_embedding_case_ve(name, dt, idx_ndim, idx_shape, strided, 7, 5);
}

/* The CUDA gather (kernels/embedding.cu) moves each row in the widest unit the layouts allow
   (16, 8 or 4 bytes, else one element) with a lane group sized to the row: row sizes that reach
   each unit, rows longer than a warp's worth of units, and enough rows for several blocks. */
static void test_embedding_row_widths(void) {
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
static seqk_tensor embedding_to_device(const seqk_tensor *host) {
  seqk_tensor dev;
  memset(&dev, 0, sizeof dev);
  seqk_status st =
      seqk_tensor_alloc(g_ctx, &dev, host->dtype, SEQK_DEVICE_CUDA, host->ndim, host->shape);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(g_ctx, &dev, host);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "embedding on CUDA: upload failed: %s",
           seqk_context_last_error(g_ctx));
  return dev;
}

/* t's bytes seen as I32 elements (t contiguous, 4-byte dtype): copies through this view are
   bit-exact, so poison survives the round trip unchanged. */
static seqk_tensor as_words(const seqk_tensor *t) {
  const int64_t n = th_numel(t);
  return seqk_tensor_view(t->data, SEQK_DTYPE_I32, t->device, 1, &n);
}

/* A CUDA tensor shaped like the contiguous f32 host tensor t holding t's bytes exactly (t is
   poisoned: every byte 0xFF), uploaded through I32 views so no conversion can touch the NaNs. */
static seqk_tensor poisoned_on_device(const seqk_tensor *t) {
  seqk_tensor dev;
  memset(&dev, 0, sizeof dev);
  seqk_status st = seqk_tensor_alloc(g_ctx, &dev, t->dtype, SEQK_DEVICE_CUDA, t->ndim, t->shape);
  seqk_tensor dst = as_words(&dev), src = as_words(t);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(g_ctx, &dst, &src);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "embedding on CUDA: upload failed: %s",
           seqk_context_last_error(g_ctx));
  return dev;
}

/* An out-of-range index on CUDA tensors: INVALID_VALUE naming the first bad position in
   row-major order (found by the device range check among several blocks), and out still every
   byte the poison it held. Then a valid call on the same context works (nothing stale is left
   in the range-check word). The device parity runs only successful calls, hence this test. */
static void test_embedding_range_on_device(void) {
  if (seqk_cuda_device_count() == 0) return;
  enum { V = 6, E = 4 };
  const int64_t i_shape[2] = {40, 37}, t_shape[2] = {V, E}, o_shape[3] = {40, 37, E};
  const int64_t n = 40 * 37;
  seqk_tensor indices = th_tensor_new(SEQK_DTYPE_I32, 2, i_shape);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  th_poison(&out);
  int32_t *vals = th_alloc((size_t)n * sizeof(int32_t));
  static const struct {
    int64_t first, later;
    int32_t bad;
    const char *needle;
  } cases[] = {
      {300, 1400, 6, "indices[8,4]=6"},      /* 300 = 8*37 + 4, another bad one in a later block */
      {1479, 1479, -1, "indices[39,36]=-1"}, /* the very last position */
      {0, 555, 2147483647, "indices[0,0]=2147483647"},
  };
  seqk_tensor dtable = embedding_to_device(&table);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    for (int64_t i = 0; i < n; ++i) vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
    vals[cases[c].later] = V + 3;
    vals[cases[c].first] = cases[c].bad;
    th_fill_i32(&indices, vals);
    seqk_tensor dind = embedding_to_device(&indices);
    seqk_tensor dout = poisoned_on_device(&out);
    char what[96];
    snprintf(what, sizeof what, "embedding on CUDA out of range (%s)", cases[c].needle);
    th_expect_status(g_ctx, seqk_embedding(g_ctx, &dind, &dtable, &dout), SEQK_STATUS_INVALID_VALUE,
                     cases[c].needle, what);
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
  for (int64_t i = 0; i < n; ++i) vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
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
    for (int64_t e = 0; e < E; ++e) ref[i * E + e] = th_get(&table, vals[i] * E + e);
  const th_tol exact = {0.0, 0.0};
  th_check_close("embedding on CUDA after a range error", &back, ref, exact);
  seqk_tensor_free(g_ctx, &dind);
  seqk_tensor_free(g_ctx, &dout);

  /* A 0-d index: the message has no position, as on the CPU. */
  const int64_t o1[1] = {E};
  seqk_tensor idx0 = th_tensor_new(SEQK_DTYPE_I32, 0, NULL),
              out1 = th_tensor_new(SEQK_DTYPE_F32, 1, o1);
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

/* DEFERRED device checks (seqk_context_set_device_checks): the call neither waits nor allocates,
   a bad index's row comes out as zeros and the others as the table's rows, and
   seqk_context_check reports the first bad position with its value, once. Also with E == 0 (no
   row to write, the indices still checked), a clean run, and back to WAIT. */
static void test_embedding_deferred_on_device(void) {
  if (seqk_cuda_device_count() == 0) return;
  enum { V = 6, E = 4 };
  const int64_t i_shape[2] = {40, 37}, t_shape[2] = {V, E}, o_shape[3] = {40, 37, E};
  const int64_t n = 40 * 37;
  seqk_context_t ctx;
  TH_CHECK(seqk_context_create(&ctx) == SEQK_STATUS_SUCCESS, "context");
  th_expect_status(ctx, seqk_context_set_device_checks(ctx, (seqk_device_checks)7),
                   SEQK_STATUS_INVALID_VALUE, "mode=7", "an unknown device-check mode");
  th_expect_status(ctx, seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED),
                   SEQK_STATUS_SUCCESS, NULL, "deferred device checks");
  seqk_tensor indices = th_tensor_new(SEQK_DTYPE_I32, 2, i_shape);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  int32_t *vals = th_alloc((size_t)n * sizeof(int32_t));
  for (int64_t i = 0; i < n; ++i) vals[i] = (int32_t)th_rng_int(&g_rng, 0, V - 1);
  vals[1400] = V + 3;
  vals[300] = -2; /* 300 = 8*37 + 4: the first bad position, in another block than 1400 */
  th_fill_i32(&indices, vals);
  seqk_tensor dind, dtable, dout;
  TH_CHECK(seqk_tensor_alloc(ctx, &dind, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 2, i_shape) == 0 &&
               seqk_tensor_alloc(ctx, &dtable, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, t_shape) == 0 &&
               seqk_tensor_alloc(ctx, &dout, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, o_shape) == 0 &&
               seqk_tensor_copy(ctx, &dind, &indices) == 0 &&
               seqk_tensor_copy(ctx, &dtable, &table) == 0,
           "deferred: setup: %s", seqk_context_last_error(ctx));
  const int64_t syncs = ctx->stream_syncs, allocs = ctx->device_allocs;
  th_expect_status(ctx, seqk_embedding(ctx, &dind, &dtable, &dout), SEQK_STATUS_SUCCESS, NULL,
                   "deferred: a bad index does not fail the call");
  TH_CHECK(ctx->stream_syncs == syncs && ctx->device_allocs == allocs,
           "deferred: embedding neither waits nor allocates (%lld waits, %lld allocations)",
           (long long)(ctx->stream_syncs - syncs), (long long)(ctx->device_allocs - allocs));
  th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, "position 300 hold -2",
                   "deferred: the check reports the first bad index");
  th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_SUCCESS, NULL,
                   "deferred: a second check finds nothing (cleared)");
  seqk_tensor back = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  TH_CHECK(seqk_tensor_copy(ctx, &back, &dout) == SEQK_STATUS_SUCCESS, "deferred: download");
  double *ref = th_alloc((size_t)(n * E) * sizeof(double));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < E; ++e)
      ref[i * E + e] = vals[i] >= 0 && vals[i] < V ? th_get(&table, vals[i] * E + e) : 0.0;
  th_check_close("deferred: good rows gathered, bad rows zero", &back, ref, (th_tol){0, 0});

  /* E == 0: nothing to write, the bad index still found. */
  const int64_t t0[2] = {V, 0}, o0[3] = {40, 37, 0};
  seqk_tensor table0 = seqk_tensor_view(dtable.data, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, t0);
  seqk_tensor out0 = seqk_tensor_view(dout.data, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, o0);
  th_expect_status(ctx, seqk_embedding(ctx, &dind, &table0, &out0), SEQK_STATUS_SUCCESS, NULL,
                   "deferred, E = 0: the call");
  th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, "position 300 hold -2",
                   "deferred, E = 0: the check");

  /* Clean indices: the call and the check succeed. */
  vals[300] = 1;
  vals[1400] = 5;
  th_fill_i32(&indices, vals);
  TH_CHECK(seqk_tensor_copy(ctx, &dind, &indices) == SEQK_STATUS_SUCCESS, "deferred: upload");
  th_expect_status(ctx, seqk_embedding(ctx, &dind, &dtable, &dout), SEQK_STATUS_SUCCESS, NULL,
                   "deferred: clean indices");
  th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_SUCCESS, NULL,
                   "deferred: clean indices, clean check");

  /* Back to WAIT: the call itself answers again. */
  vals[77] = V;
  th_fill_i32(&indices, vals);
  TH_CHECK(seqk_tensor_copy(ctx, &dind, &indices) == SEQK_STATUS_SUCCESS, "wait: upload");
  th_expect_status(ctx, seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_WAIT),
                   SEQK_STATUS_SUCCESS, NULL, "back to waiting checks");
  th_expect_status(ctx, seqk_embedding(ctx, &dind, &dtable, &dout), SEQK_STATUS_INVALID_VALUE,
                   "indices[2,3]=6", "wait: the call reports the bad index");
  seqk_context_destroy(ctx);
}

/* indices [2,3] with two bad entries; the first in row-major order must be the one named. */
static void run_embedding_range_case(int32_t bad0, int32_t bad1, const char *needle) {
  enum { V = 5, E = 3 };
  const int64_t i_shape[2] = {2, 3}, t_shape[2] = {V, E}, o_shape[3] = {2, 3, E};
  seqk_tensor indices = th_tensor_new(SEQK_DTYPE_I32, 2, i_shape);
  seqk_tensor table = th_tensor_new(SEQK_DTYPE_F32, 2, t_shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 3, o_shape);
  th_fill_uniform(&table, &g_rng, -1.0, 1.0);
  th_poison(&out);
  const int32_t vals[6] = {0, bad0, 4, 1, 2, bad1}; /* positions [0,1] and [1,2] */
  th_fill_i32(&indices, vals);
  th_snapshot snap = th_snapshot_take(&out);
  char what[96];
  snprintf(what, sizeof what, "embedding out of range (%s)", needle);
  th_expect_status(g_ctx, seqk_embedding(g_ctx, &indices, &table, &out), SEQK_STATUS_INVALID_VALUE,
                   needle, what);
  TH_CHECK(th_snapshot_unchanged(&snap), "%s: out was written", what);
}

static void test_embedding(void) {
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
  test_embedding_deferred_on_device();
}

static void test_embedding_bad_input(void) {
  enum { V = 5, E = 3 };
  const int64_t store_n[1] = {128};
  seqk_tensor is = th_tensor_new(SEQK_DTYPE_I32, 1, store_n);
  seqk_tensor ts = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  seqk_tensor os = th_tensor_new(SEQK_DTYPE_F32, 1, store_n);
  int32_t ivals[128];
  for (int i = 0; i < 128; ++i) ivals[i] = i % V;
  th_fill_i32(&is, ivals);
  th_fill_uniform(&ts, &g_rng, -1.0, 1.0);
  th_poison(&os);
  const int64_t i_shape[2] = {2, 3}, t_shape[2] = {V, E}, o_shape[3] = {2, 3, E};
  const seqk_tensor indices = th_view_into(&is, 0, 2, i_shape);
  const seqk_tensor table = th_view_into(&ts, 0, 2, t_shape);
  const seqk_tensor out = th_view_into(&os, 0, 3, o_shape);
  th_watch_reset();
  th_watch(&is);
  th_watch(&ts);
  th_watch(&os);
  seqk_context_t c = g_ctx;
  const seqk_status BAD = SEQK_STATUS_INVALID_VALUE;
  seqk_tensor t, u;

  th_expect_rejected_watched(NULL, seqk_embedding(NULL, &indices, &table, (t = out, &t)), BAD, NULL,
                             "embedding ctx NULL");
  th_expect_rejected_watched(c, seqk_embedding(c, NULL, &table, (t = out, &t)), BAD, "indices",
                             "embedding indices NULL");
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, NULL, (t = out, &t)), BAD, "table",
                             "embedding table NULL");
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, NULL), BAD, "out",
                             "embedding out NULL");
  u = th_without_data(indices);
  th_expect_rejected_watched(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                             "embedding indices data NULL");
  u = th_without_data(table);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                             "embedding table data NULL");
  t = th_without_data(out);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                             "embedding out data NULL");

  u = th_with_dtype(indices, SEQK_DTYPE_F32);
  th_expect_rejected_watched(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                             "embedding indices f32");
  u = th_with_dtype(table, SEQK_DTYPE_I32);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                             "embedding table i32");
  t = th_with_dtype(out, SEQK_DTYPE_F16);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                             "embedding out dtype != table dtype");
  t = th_with_dtype(out, SEQK_DTYPE_I32);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                             "embedding out i32");

  {
    const int64_t i6[6] = {1, 2, 1, 3, 1, 1}, o7[6] = {1, 2, 1, 3, 1, 1};
    const int64_t t1[1] = {V * E}, t3[3] = {V, E, 1};
    const int64_t o_lead[3] = {3, 2, E}, o_last[3] = {2, 3, E + 1}, o_2d[2] = {6, E};
    u = th_with_shape(indices, 6, i6);
    t = th_with_shape(out, 6, o7);
    th_expect_rejected_watched(c, seqk_embedding(c, &u, &table, &t), BAD, "indices",
                               "embedding indices 6-D");
    u = th_with_shape(table, 1, t1);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                               "embedding table 1-D");
    u = th_with_shape(table, 3, t3);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                               "embedding table 3-D");
    t = th_with_shape(out, 3, o_lead);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                               "embedding out leading dims");
    t = th_with_shape(out, 3, o_last);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                               "embedding out last dim != E");
    t = th_with_shape(out, 2, o_2d);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                               "embedding out.ndim");
  }

  u = th_on_cuda(indices);
  th_expect_rejected_watched(c, seqk_embedding(c, &u, &table, (t = out, &t)), BAD, "indices",
                             "embedding indices on cuda");
  u = th_on_cuda(table);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, (t = out, &t)), BAD, "table",
                             "embedding table on cuda");
  t = th_on_cuda(out);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                             "embedding out on cuda");

  t = th_self_overlapping(out, 0);
  th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                             "embedding out self-overlap");
  {
    /* out over the table's memory; out over the indices' memory (as floats). */
    t = th_view_into(&ts, 10, 3, o_shape);
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &table, &t), BAD, "out",
                               "embedding out overlaps table");
    seqk_tensor over_idx = th_view_into(&is, 4, 3, o_shape);
    over_idx.dtype = SEQK_DTYPE_F32;
    u = table;
    th_expect_rejected_watched(c, seqk_embedding(c, &indices, &u, &over_idx), BAD, "out",
                               "embedding out overlaps indices");
  }

  t = out;
  th_expect_status(c, seqk_embedding(c, &indices, &table, &t), SEQK_STATUS_SUCCESS, NULL,
                   "embedding bad-input fixture itself");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x5a7e25u);

  test_embedding();
  test_embedding_bad_input();

  seqk_context_destroy(g_ctx);
  return th_finish();
}
