/* An application's CUDA path in CPU-only CI: built against an installed seqk::seqk_emu (or
   seqk_emu.pc), its CUDA tensors live on the emulated device and seqk's real kernels run on the
   CPU. It runs softmax on CUDA tensors and checks the result against the same op on CPU tensors.
   With CONSUMER_OWN_CUDA (this file compiled with -include seqk_emu/names.h) it also allocates
   its output with its own cudaMalloc and copies it back with cudaMemcpy, which that header sends
   to the emulator; real_cuda.c, compiled without it, calls the real CUDA runtime in the same
   process. */
#include <math.h>
#include <seqk.h>
#include <stdio.h>
#include <string.h>
#ifdef CONSUMER_OWN_CUDA
#include <cuda_runtime_api.h>
int real_cuda_device_count(int *count); /* real_cuda.c */
#endif

#define ROWS 5
#define COLS 37

static int fail(const char *what, seqk_context_t ctx) {
  fprintf(stderr, "consumer_emu: %s: %s\n", what, ctx ? seqk_context_last_error(ctx) : "");
  return 1;
}

int main(void) {
  if (seqk_cuda_device_count() != 1) return fail("the emulated device is not there", NULL);
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return fail("context", NULL);
  static float x[ROWS * COLS], want[ROWS * COLS], got[ROWS * COLS];
  for (int i = 0; i < ROWS * COLS; ++i) x[i] = (float)sin(0.37 * i) * 4.0f;
  int64_t shape[2] = {ROWS, COLS};
  seqk_tensor xc = seqk_tensor_view(x, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  seqk_tensor wc = seqk_tensor_view(want, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  seqk_tensor gc = seqk_tensor_view(got, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  if (seqk_softmax(ctx, &xc, -1, &wc) != SEQK_STATUS_SUCCESS) return fail("CPU softmax", ctx);

  seqk_tensor xd, yd;
  if (seqk_tensor_alloc(ctx, &xd, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, shape) !=
      SEQK_STATUS_SUCCESS)
    return fail("alloc x", ctx);
#ifdef CONSUMER_OWN_CUDA
  void *ybuf = NULL;
  if (cudaMalloc(&ybuf, sizeof got) != cudaSuccess) return fail("the app's own cudaMalloc", NULL);
  yd = seqk_tensor_view(ybuf, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, shape);
#else
  if (seqk_tensor_alloc(ctx, &yd, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, shape) !=
      SEQK_STATUS_SUCCESS)
    return fail("alloc y", ctx);
#endif
  memset(got, 0xff, sizeof got); /* NaN until overwritten */
  if (seqk_tensor_copy(ctx, &xd, &xc) != SEQK_STATUS_SUCCESS) return fail("upload", ctx);
  if (seqk_softmax(ctx, &xd, -1, &yd) != SEQK_STATUS_SUCCESS) return fail("CUDA softmax", ctx);
#ifdef CONSUMER_OWN_CUDA
  if (cudaDeviceSynchronize() != cudaSuccess) return fail("the app's own synchronize", NULL);
  if (cudaMemcpy(got, ybuf, sizeof got, cudaMemcpyDeviceToHost) != cudaSuccess)
    return fail("the app's own cudaMemcpy", NULL);
  cudaFree(ybuf);
#else
  if (seqk_tensor_copy(ctx, &gc, &yd) != SEQK_STATUS_SUCCESS) return fail("download", ctx);
#endif
  (void)gc;
  double worst = 0;
  for (int i = 0; i < ROWS * COLS; ++i) {
    double e = fabs((double)got[i] - want[i]);
    if (!(e <= 1e-6 + 1e-5 * fabs(want[i]))) {
      fprintf(stderr, "consumer_emu: element %d: %g on emulated CUDA, %g on the CPU\n", i, got[i],
              want[i]);
      return 1;
    }
    if (e > worst) worst = e;
  }
  seqk_context_destroy(ctx);
#ifdef CONSUMER_OWN_CUDA
  int real = -1;
  int rc = real_cuda_device_count(&real);
  printf(
      "seqk_emu consumer (own cudaMalloc/cudaMemcpy on the emulator; the real CUDA runtime in "
      "the same process says %d device(s), status %d): softmax matches the CPU (max error "
      "%.2g)\n",
      real, rc, worst);
#else
  printf("seqk_emu consumer: softmax on emulated CUDA tensors matches the CPU (max error %.2g)\n",
         worst);
#endif
  return 0;
}
