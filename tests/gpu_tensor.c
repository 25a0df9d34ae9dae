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

int main(void) {
  if (seqk_cuda_device_count() == 0) {
    th_skip("no CUDA device");
    return th_finish();
  }
  seqk_context_t ctx = th_context();
  test_round_trips(ctx);
  test_bad_input(ctx);
  test_view_only_and_waits(ctx);
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy frees CUDA tensors");
  return th_finish();
}
