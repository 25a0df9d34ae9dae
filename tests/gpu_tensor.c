/*
 * gpu_tensor.c - CUDA tensors on a real device: allocation, every copy direction with strides and
 * dtype conversion, the context's ownership of CUDA allocations. Skipped (exit 77) without a GPU.
 */
#include "harness.h"
#include "geometry.h"
#include "internal.h" /* ctx's wait and allocation counters */
#include "numeric.h"

#include <string.h>

static const seqk_dtype kDtypes[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};

/* A CUDA tensor with the layout of a strided host tensor (same strides, span-sized). */
static seqk_tensor cuda_like(seqk_context_t ctx, const seqk_tensor *host) {
  seqk_tensor flat;
  int64_t span = seqk__span(host);
  if (seqk_tensor_alloc(ctx, &flat, host->dtype, SEQK_DEVICE_CUDA, 1, &span) !=
      SEQK_STATUS_SUCCESS) {
    th_fail(__FILE__, __LINE__, "CUDA alloc: %s", seqk_context_last_error(ctx));
    return flat;
  }
  seqk_tensor t = *host;
  t.data = flat.data;
  t.device = SEQK_DEVICE_CUDA;
  return t;
}

static void test_round_trips(seqk_context_t ctx) {
  th_rng rng;
  th_rng_seed(&rng, 21);
  int64_t shape[3] = {5, 9, 33}, pad_a[3] = {0, 3, 2}, pad_b[3] = {2, 0, 0};
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      seqk_tensor src = th_tensor_strided(kDtypes[a], 3, shape, pad_a, 1);
      seqk_tensor back = th_tensor_new(kDtypes[b], 3, shape);
      th_fill_uniform(&src, &rng, -4, 4);
      seqk_tensor d1 = cuda_like(ctx, &src); /* same dtype as src */
      seqk_tensor tmpl = th_tensor_strided(kDtypes[b], 3, shape, pad_b, 2);
      seqk_tensor d2 = cuda_like(ctx, &tmpl); /* strided, other dtype */
      TH_CHECK(seqk_tensor_copy(ctx, &d1, &src) == SEQK_STATUS_SUCCESS, "H2D: %s",
               seqk_context_last_error(ctx));
      TH_CHECK(seqk_tensor_copy(ctx, &d2, &d1) == SEQK_STATUS_SUCCESS, "D2D: %s",
               seqk_context_last_error(ctx));
      TH_CHECK(seqk_tensor_copy(ctx, &back, &d2) == SEQK_STATUS_SUCCESS, "D2H: %s",
               seqk_context_last_error(ctx));
      double *ref = th_to_doubles(&src);
      for (int64_t i = 0; i < th_numel(&src); ++i)
        ref[i] = seqk__round_to_dtype(ref[i], kDtypes[b]);
      th_check_close("H2D -> D2D(convert, strided) -> D2H", &back, ref, (th_tol){0, 0});
    }
  }
}

static void test_bad_input(seqk_context_t ctx) {
  int64_t shape[2] = {4, 4};
  seqk_tensor host = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor dev;
  TH_CHECK(seqk_tensor_alloc(ctx, &dev, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, shape) ==
               SEQK_STATUS_SUCCESS,
           "alloc");
  seqk_tensor wrong = dev;
  wrong.shape[0] = 3;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &wrong, &host), SEQK_STATUS_INVALID_VALUE,
                   "dst.shape[0]", "H2D shape mismatch");
  TH_CHECK(seqk_tensor_free(ctx, &dev) == SEQK_STATUS_SUCCESS && dev.data == NULL,
           "free CUDA tensor");
}

/* Host <-> strided CUDA view: only the view's elements change or are read, with a dtype
   conversion on the way; the host side waits once. CUDA -> CUDA is enqueued without a wait or an
   allocation (ctx's counters, host/internal.h). */
static void test_view_only_and_waits(seqk_context_t ctx) {
  th_rng rng;
  th_rng_seed(&rng, 77);
  enum { ROWS = 7, COLS = 10 };
  /* The backing: ROWS x COLS f16, every element poisoned to 1234 (exact in f16). */
  int64_t full_shape[2] = {ROWS, COLS}, view_shape[2] = {ROWS - 2, COLS / 2};
  seqk_tensor backing;
  TH_CHECK(seqk_tensor_alloc(ctx, &backing, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, full_shape) ==
               SEQK_STATUS_SUCCESS,
           "alloc backing");
  seqk_tensor poison = th_tensor_new(SEQK_DTYPE_F32, 2, full_shape);
  for (int64_t i = 0; i < ROWS * COLS; ++i) ((float *)poison.data)[i] = 1234.0f;
  TH_CHECK(seqk_tensor_copy(ctx, &backing, &poison) == SEQK_STATUS_SUCCESS, "poison");
  /* The view: rows 1..5, every other column from column 1. */
  seqk_tensor view = backing;
  view.shape[0] = view_shape[0];
  view.shape[1] = view_shape[1];
  view.stride[0] = COLS;
  view.stride[1] = 2;
  view.data = (char *)backing.data + (COLS + 1) * 2;
  seqk_tensor src = th_tensor_strided(SEQK_DTYPE_F32, 2, view_shape, NULL, 1);
  th_fill_uniform(&src, &rng, -3, 3);
  int64_t syncs = ctx->stream_syncs;
  TH_CHECK(seqk_tensor_copy(ctx, &view, &src) == SEQK_STATUS_SUCCESS, "H2D into a view: %s",
           seqk_context_last_error(ctx));
  TH_CHECK(ctx->stream_syncs == syncs + 1, "H2D into a view waits once (waited %lld times)",
           (long long)(ctx->stream_syncs - syncs));
  /* The whole backing back: the view holds src rounded to f16, everything else the poison. */
  seqk_tensor all = th_tensor_new(SEQK_DTYPE_F32, 2, full_shape);
  TH_CHECK(seqk_tensor_copy(ctx, &all, &backing) == SEQK_STATUS_SUCCESS, "D2H backing");
  double *want = th_alloc(sizeof(double) * ROWS * COLS);
  double *vals = th_to_doubles(&src);
  for (int64_t i = 0; i < ROWS * COLS; ++i) want[i] = 1234.0;
  for (int64_t r = 0; r < view_shape[0]; ++r)
    for (int64_t c = 0; c < view_shape[1]; ++c)
      want[(r + 1) * COLS + 1 + 2 * c] =
          seqk__round_to_dtype(vals[r * view_shape[1] + c], SEQK_DTYPE_F16);
  th_check_close("H2D into a strided f16 view: the view written, the gaps untouched", &all, want,
                 (th_tol){0, 0});
  /* The view back into a strided bf16 host tensor, whose own gaps stay as they were. */
  seqk_tensor back = th_tensor_strided(SEQK_DTYPE_BF16, 2, view_shape, NULL, 1);
  th_fill_uniform(&back, &rng, -1, 1);
  TH_CHECK(seqk_tensor_copy(ctx, &back, &view) == SEQK_STATUS_SUCCESS, "D2H from a view: %s",
           seqk_context_last_error(ctx));
  for (int64_t i = 0; i < view_shape[0] * view_shape[1]; ++i)
    vals[i] = seqk__round_to_dtype(seqk__round_to_dtype(vals[i], SEQK_DTYPE_F16), SEQK_DTYPE_BF16);
  th_check_close("D2H from a strided f16 view into strided bf16", &back, vals, (th_tol){0, 0});
  /* CUDA -> CUDA: no wait, no allocation (the view has no contiguous stand-in to make). */
  seqk_tensor other;
  TH_CHECK(seqk_tensor_alloc(ctx, &other, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, view_shape) ==
               SEQK_STATUS_SUCCESS,
           "alloc other");
  syncs = ctx->stream_syncs;
  const int64_t allocs = ctx->device_allocs;
  TH_CHECK(seqk_tensor_copy(ctx, &other, &view) == SEQK_STATUS_SUCCESS, "D2D from a view: %s",
           seqk_context_last_error(ctx));
  TH_CHECK(ctx->stream_syncs == syncs && ctx->device_allocs == allocs,
           "D2D neither waits nor allocates (%lld waits, %lld allocations)",
           (long long)(ctx->stream_syncs - syncs), (long long)(ctx->device_allocs - allocs));
  seqk_tensor got = th_tensor_new(SEQK_DTYPE_F32, 2, view_shape);
  TH_CHECK(seqk_tensor_copy(ctx, &got, &other) == SEQK_STATUS_SUCCESS, "D2H other");
  double *want_view = th_to_doubles(&src);
  for (int64_t i = 0; i < view_shape[0] * view_shape[1]; ++i)
    want_view[i] = seqk__round_to_dtype(want_view[i], SEQK_DTYPE_F16);
  th_check_close("D2D from a strided f16 view to f32", &got, want_view, (th_tol){0, 0});
  TH_CHECK(seqk_tensor_free(ctx, &other) == SEQK_STATUS_SUCCESS, "free other");
  TH_CHECK(seqk_tensor_free(ctx, &backing) == SEQK_STATUS_SUCCESS, "free backing");
}

/* A strided H2D copy of view_shape f32 values into a [rows, 2*cols] f16 buffer's even columns:
   the copy goes through the workspace (the view is not contiguous). */
static seqk_status strided_upload(seqk_context_t ctx, seqk_tensor *backing,
                                  const seqk_tensor *src) {
  seqk_tensor view = *backing;
  view.shape[1] = backing->shape[1] / 2;
  view.stride[1] = 2;
  return seqk_tensor_copy(ctx, &view, src);
}

/* The workspace for capture-style use (seqk.h): the high-water mark of what calls needed; a
   reservation after which the same call allocates nothing; a caller's own workspace, used as is,
   never grown (a larger need fails with ALLOC_FAILED, naming both sizes, writing nothing); bad
   arguments refused; back to a context-owned workspace. */
static void test_workspace(void) {
  th_rng rng;
  th_rng_seed(&rng, 78);
  int64_t b_shape[2] = {64, 40}, v_shape[2] = {64, 20}, big_b[2] = {256, 40}, big_v[2] = {256, 20};
  seqk_tensor src = th_tensor_new(SEQK_DTYPE_F32, 2, v_shape);
  seqk_tensor big_src = th_tensor_new(SEQK_DTYPE_F32, 2, big_v);
  th_fill_uniform(&src, &rng, -2, 2);
  th_fill_uniform(&big_src, &rng, -2, 2);

  /* What a step needs, learned on one context. */
  seqk_context_t probe = th_context();
  TH_CHECK(seqk_context_workspace_needed(probe) == 0 && seqk_context_workspace_needed(NULL) == 0,
           "a new context has needed no workspace");
  seqk_tensor backing;
  TH_CHECK(seqk_tensor_alloc(probe, &backing, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, b_shape) ==
                   SEQK_STATUS_SUCCESS &&
               strided_upload(probe, &backing, &src) == SEQK_STATUS_SUCCESS,
           "probe upload: %s", seqk_context_last_error(probe));
  const size_t needed = seqk_context_workspace_needed(probe);
  TH_CHECK(needed >= 64 * 20 * 2, "workspace needed %zu bytes for a 64x20 f16 view", needed);
  seqk_context_destroy(probe);

  /* Reserved up front: the same call then allocates nothing. */
  seqk_context_t ctx = th_context();
  TH_CHECK(seqk_tensor_alloc(ctx, &backing, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, b_shape) ==
               SEQK_STATUS_SUCCESS,
           "alloc");
  TH_CHECK(seqk_context_reserve_workspace(ctx, needed) == SEQK_STATUS_SUCCESS, "reserve: %s",
           seqk_context_last_error(ctx));
  int64_t allocs = ctx->device_allocs;
  TH_CHECK(
      strided_upload(ctx, &backing, &src) == SEQK_STATUS_SUCCESS && ctx->device_allocs == allocs,
      "after a reservation the upload allocates nothing (%lld allocations)",
      (long long)(ctx->device_allocs - allocs));

  /* The caller's workspace: memory from a CUDA tensor (256-byte aligned, like cudaMalloc's). */
  seqk_tensor mine;
  const int64_t mine_elems = (int64_t)(needed / 4);
  TH_CHECK(seqk_tensor_alloc(ctx, &mine, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 1, &mine_elems) ==
               SEQK_STATUS_SUCCESS,
           "alloc the caller's workspace");
  th_expect_status(ctx, seqk_context_set_workspace(ctx, (char *)mine.data + 4, needed - 256),
                   SEQK_STATUS_INVALID_VALUE, "not 256-byte aligned", "a misaligned workspace");
  th_expect_status(ctx, seqk_context_set_workspace(ctx, mine.data, 0), SEQK_STATUS_INVALID_VALUE,
                   "bytes=0", "a workspace of 0 bytes");
  static _Alignas(256) float on_host[64]; /* aligned: the refusal must be for being host memory */
  th_expect_status(ctx, seqk_context_set_workspace(ctx, on_host, sizeof on_host),
                   SEQK_STATUS_INVALID_VALUE, "host memory", "a host workspace");
  TH_CHECK(
      seqk_context_set_workspace(ctx, mine.data, (size_t)mine_elems * 4) == SEQK_STATUS_SUCCESS,
      "set the caller's workspace: %s", seqk_context_last_error(ctx));
  allocs = ctx->device_allocs;
  TH_CHECK(
      strided_upload(ctx, &backing, &src) == SEQK_STATUS_SUCCESS && ctx->device_allocs == allocs,
      "the caller's workspace serves the upload without an allocation: %s",
      seqk_context_last_error(ctx));
  seqk_tensor all = th_tensor_new(SEQK_DTYPE_F32, 2, b_shape);
  TH_CHECK(seqk_tensor_copy(ctx, &all, &backing) == SEQK_STATUS_SUCCESS, "download");
  double *want = th_alloc(sizeof(double) * 64 * 20);
  for (int64_t r = 0; r < 64; ++r)
    for (int64_t c = 0; c < 20; ++c)
      want[r * 20 + c] = seqk__round_to_dtype(th_get(&src, r * 20 + c), SEQK_DTYPE_F16);
  seqk_tensor evens = all;
  evens.shape[1] = 20;
  evens.stride[1] = 2;
  th_check_close("upload through the caller's workspace", &evens, want, (th_tol){0, 0});
  TH_CHECK(seqk_context_reserve_workspace(ctx, needed) == SEQK_STATUS_SUCCESS,
           "reserving what the caller's workspace has");
  th_expect_status(ctx, seqk_context_reserve_workspace(ctx, 1u << 30), SEQK_STATUS_ALLOC_FAILED,
                   "caller's workspace", "reserving more than the caller's workspace has");
  /* A larger need: ALLOC_FAILED and nothing written. */
  seqk_tensor big;
  TH_CHECK(seqk_tensor_alloc(ctx, &big, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, big_b) ==
               SEQK_STATUS_SUCCESS,
           "alloc big");
  seqk_tensor zeros = th_tensor_new(SEQK_DTYPE_F32, 2, big_b);
  memset(zeros.data, 0, (size_t)th_numel(&zeros) * sizeof(float));
  TH_CHECK(seqk_tensor_copy(ctx, &big, &zeros) == SEQK_STATUS_SUCCESS, "zero big");
  th_expect_status(ctx, strided_upload(ctx, &big, &big_src), SEQK_STATUS_ALLOC_FAILED,
                   "caller's workspace has", "a need beyond the caller's workspace");
  seqk_tensor big_back = th_tensor_new(SEQK_DTYPE_F32, 2, big_b);
  TH_CHECK(seqk_tensor_copy(ctx, &big_back, &big) == SEQK_STATUS_SUCCESS, "download big");
  double *zero = th_alloc(sizeof(double) * 256 * 40);
  memset(zero, 0, sizeof(double) * 256 * 40);
  th_check_close("a refused upload writes nothing", &big_back, zero, (th_tol){0, 0});
  /* Back to a context-owned workspace: the same call grows it. */
  TH_CHECK(seqk_context_set_workspace(ctx, NULL, 0) == SEQK_STATUS_SUCCESS, "unset");
  TH_CHECK(strided_upload(ctx, &big, &big_src) == SEQK_STATUS_SUCCESS,
           "a context-owned workspace grows: %s", seqk_context_last_error(ctx));
  TH_CHECK(seqk_context_workspace_needed(ctx) >= 256 * 20 * 2, "the high-water mark grew");
  TH_CHECK(seqk_context_reserve_workspace(NULL, 1) == SEQK_STATUS_INVALID_VALUE &&
               seqk_context_set_workspace(NULL, NULL, 0) == SEQK_STATUS_INVALID_VALUE,
           "NULL ctx");
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy");
}

int main(void) {
  if (seqk_cuda_device_count() == 0) {
    th_skip("no CUDA device");
    return th_finish();
  }
  seqk_context_t ctx = th_context();
  test_round_trips(ctx);
  test_bad_input(ctx);
  test_view_only_and_waits(ctx);
  test_workspace();
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy frees CUDA tensors");
  return th_finish();
}
