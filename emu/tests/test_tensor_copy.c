/*
 * test_tensor_copy.c - the CUDA strided convert-copy kernel (kernels/tensor_copy.cu) on emulated
 * CUDA tensors: every dtype pair, odd shapes, size-1 dims, up to SEQK_MAX_DIMS dims, padded and
 * permuted strides, a scalar, and a grid-stride case. The result must equal the CPU reference
 * copy exactly (both round once to nearest even), and no byte between the elements of a strided
 * destination may change.
 */
#include "harness.h"
#include "cuda_copy.h"
#include "geometry.h"
#include "numeric.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <string.h>

#define POISON_BYTE 0xAB

typedef struct dev_view {
  seqk_tensor backing; /* 1-D allocation from seqk_tensor_alloc */
  seqk_tensor view;    /* the strided descriptor over it */
  size_t bytes;
} dev_view;

/* A CUDA view of shape with strides: row-major with pad[i] extra elements per dim, then the dims
   permuted by perm (stride order), so layouts are neither contiguous nor row-major ordered. */
static dev_view make_view(seqk_context_t ctx, seqk_dtype dt, int32_t ndim, const int64_t *shape,
                          const int64_t *pad, const int *perm) {
  dev_view d;
  int64_t stride = 1;
  memset(&d, 0, sizeof d);
  d.view.dtype = dt;
  d.view.device = SEQK_DEVICE_CUDA;
  d.view.ndim = ndim;
  for (int k = ndim - 1; k >= 0; --k) { /* perm[k] gets the k-th innermost stride */
    int dim = perm ? perm[k] : k;
    d.view.shape[dim] = shape[dim];
    d.view.stride[dim] = stride;
    stride *= shape[dim] + (pad ? pad[dim] : 0);
  }
  int64_t span = seqk__span(&d.view);
  if (span < 1) span = 1;
  int64_t n1[1] = {span};
  seqk_status st = seqk_tensor_alloc(ctx, &d.backing, dt, SEQK_DEVICE_CUDA, 1, n1);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "alloc of %lld elements: %s", (long long)span,
           seqk_status_string(st));
  d.view.data = d.backing.data;
  d.bytes = (size_t)span * seqk_dtype_size(dt);
  cudaMemset(d.backing.data, POISON_BYTE, d.bytes);
  return d;
}

static const char *dt_name(seqk_dtype d) {
  return d == SEQK_DTYPE_F32    ? "f32"
         : d == SEQK_DTYPE_F16  ? "f16"
         : d == SEQK_DTYPE_BF16 ? "bf16"
                                : "i32";
}

/* Copies src (filled from a CPU tensor) to dst on the device, with the launcher directly or
   through the public seqk_tensor_copy, and compares with the CPU copy. */
static seqk_context_t g_ctx;

static void run_case(const char *what, seqk_dtype sdt, seqk_dtype ddt, int32_t ndim,
                     const int64_t *shape, const int64_t *spad, const int *sperm,
                     const int64_t *dpad, const int *dperm, int public_api, uint64_t seed) {
  seqk_context_t ctx = g_ctx;
  th_rng rng;
  char label[200];
  snprintf(label, sizeof label, "%s %s->%s%s", what, dt_name(sdt), dt_name(ddt),
           public_api ? " (seqk_tensor_copy)" : "");
  th_rng_seed(&rng, seed);

  seqk_tensor host_src = th_tensor_new(sdt, ndim, shape);
  if (sdt == SEQK_DTYPE_I32) {
    int64_t n = th_numel(&host_src);
    for (int64_t i = 0; i < n; ++i)
      ((int32_t *)host_src.data)[i] = (int32_t)th_rng_int(&rng, -1000000, 1000000);
  } else {
    /* Wide range, so f32 -> f16 overflows to inf and small values go subnormal. */
    th_fill_uniform(&host_src, &rng, -3.0, 3.0);
    int64_t n = th_numel(&host_src);
    for (int64_t i = 0; i < n; i += 7) th_set(&host_src, i, th_get(&host_src, i) * 40000.0);
    for (int64_t i = 3; i < n; i += 11) th_set(&host_src, i, th_get(&host_src, i) * 1e-6);
  }
  seqk_tensor ref = th_tensor_new(ddt, ndim, shape);
  TH_CHECK(seqk_tensor_copy(ctx, &ref, &host_src) == SEQK_STATUS_SUCCESS, "%s: CPU copy", label);

  dev_view src = make_view(ctx, sdt, ndim, shape, spad, sperm);
  dev_view dst = make_view(ctx, ddt, ndim, shape, dpad, dperm);
  TH_CHECK(seqk_tensor_copy(ctx, &src.view, &host_src) == SEQK_STATUS_SUCCESS, "%s: upload", label);

  seqk_status st = public_api ? seqk_tensor_copy(ctx, &dst.view, &src.view)
                              : seqk__cuda_copy(ctx, "tensor_copy", &dst.view, &src.view);
  TH_CHECK(st == SEQK_STATUS_SUCCESS, "%s: copy returned %s", label, seqk_status_string(st));
  TH_CHECK(cudaDeviceSynchronize() == cudaSuccess, "%s: sync", label);

  /* Bring the whole destination allocation back: elements and the gaps between them. */
  unsigned char *raw = th_alloc(dst.bytes);
  cudaMemcpy(raw, dst.backing.data, dst.bytes, cudaMemcpyDeviceToHost);
  seqk_tensor got = dst.view;
  got.device = SEQK_DEVICE_CPU;
  got.data = raw;
  unsigned char *touched = th_alloc(dst.bytes);
  memset(touched, 0, dst.bytes);
  int64_t n = th_numel(&ref), bad = 0, esz = (int64_t)seqk_dtype_size(ddt);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = seqk__offset_of_linear(&got, i);
    memset(touched + off * esz, 1, (size_t)esz);
    if (ddt == SEQK_DTYPE_I32) {
      bad += ((int32_t *)raw)[off] != ((int32_t *)ref.data)[i];
    } else {
      double a = seqk__load(&got, off), b = th_get(&ref, i);
      bad += !(a == b || (a != a && b != b));
    }
  }
  TH_CHECK(bad == 0, "%s: %lld of %lld elements differ from the CPU copy", label, (long long)bad,
           (long long)n);
  int64_t clobbered = 0;
  for (size_t i = 0; i < dst.bytes; ++i) clobbered += !touched[i] && raw[i] != POISON_BYTE;
  TH_CHECK(clobbered == 0, "%s: %lld bytes between elements were written", label,
           (long long)clobbered);
  seqk_tensor_free(ctx, &src.backing);
  seqk_tensor_free(ctx, &dst.backing);
}

int main(void) {
  static const seqk_dtype fl[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  uint64_t seed = 100;
  g_ctx = th_context();
  TH_CHECK(seqk_cuda_device_count() == 1, "emulated build: one CUDA device, got %d",
           (int)seqk_cuda_device_count());

  const int64_t s3[3] = {3, 5, 7}, p3[3] = {1, 0, 2}, q3[3] = {0, 3, 1};
  const int perm3[3] = {2, 0, 1}, perm3b[3] = {1, 2, 0};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      run_case("3-D padded->permuted", fl[a], fl[b], 3, s3, p3, NULL, q3, perm3, 0, seed++);
      run_case("3-D permuted->padded", fl[a], fl[b], 3, s3, NULL, perm3b, p3, NULL, 0, seed++);
    }
  run_case("3-D", SEQK_DTYPE_I32, SEQK_DTYPE_I32, 3, s3, p3, perm3, q3, NULL, 0, seed++);

  /* SEQK_MAX_DIMS dims with size-1 dims and a transposed layout. */
  const int64_t s6[6] = {2, 1, 3, 4, 1, 5}, p6[6] = {0, 2, 1, 0, 1, 3};
  const int perm6[6] = {5, 4, 3, 2, 1, 0};
  run_case("6-D", SEQK_DTYPE_F32, SEQK_DTYPE_BF16, 6, s6, p6, NULL, NULL, perm6, 0, seed++);
  run_case("6-D", SEQK_DTYPE_F16, SEQK_DTYPE_F32, 6, s6, NULL, perm6, p6, NULL, 0, seed++);
  run_case("6-D", SEQK_DTYPE_I32, SEQK_DTYPE_I32, 6, s6, p6, perm6, p6, NULL, 0, seed++);

  /* A scalar, a single element, and a row long enough for the grid-stride loop (> 4096 blocks of
     256 threads). */
  run_case("scalar", SEQK_DTYPE_BF16, SEQK_DTYPE_F16, 0, NULL, NULL, NULL, NULL, NULL, 0, seed++);
  const int64_t one[1] = {1}, big[1] = {4096 * 256 + 999};
  run_case("1 element", SEQK_DTYPE_F32, SEQK_DTYPE_F16, 1, one, NULL, NULL, NULL, NULL, 0, seed++);
  const int64_t pbig[1] = {0};
  run_case("grid-stride", SEQK_DTYPE_F32, SEQK_DTYPE_BF16, 1, big, pbig, NULL, NULL, NULL, 0,
           seed++);

  /* The public entry point on two CUDA tensors (staged through the host until tensor.c calls the
     kernel; the answer must not change when it does). */
  run_case("3-D", SEQK_DTYPE_F16, SEQK_DTYPE_BF16, 3, s3, p3, perm3, q3, NULL, 1, seed++);
  run_case("3-D", SEQK_DTYPE_I32, SEQK_DTYPE_I32, 3, s3, NULL, NULL, q3, perm3b, 1, seed++);
  seqk_context_destroy(g_ctx);
  return th_finish();
}
