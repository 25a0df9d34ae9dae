/*
 * gpu_tensor.c - CUDA tensors on a real device: allocation, every copy direction with strides and
 * dtype conversion, the context's ownership of CUDA allocations. Skipped (exit 77) without a GPU.
 */
#include "harness.h"
#include "geometry.h"
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

int main(void) {
  if (seqk_cuda_device_count() == 0) {
    th_skip("no CUDA device");
    return th_finish();
  }
  seqk_context_t ctx = th_context();
  test_round_trips(ctx);
  test_bad_input(ctx);
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy frees CUDA tensors");
  return th_finish();
}
