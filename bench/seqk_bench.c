/*
 * seqk_bench.c - seqk-bench: every case validated against the CPU reference, then timed.
 *
 *   seqk-bench [--csv FILE] [--filter TEXT] [--repeats N] [--correctness]
 *
 * With a GPU: the full shapes, timed with CUDA events (median of --repeats, L2 flushed between
 * runs, inputs rotated). Without one, the real build exits 77 ("no CUDA device"); the emulated
 * build (seqk-bench-emu) runs the correctness pass at small shapes on the CPU emulation of the
 * kernels. scripts/bench.sh chooses.
 */
#include "bench_core.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  fprintf(stderr, "usage: seqk-bench [--csv FILE] [--filter TEXT] [--repeats N] [--correctness]\n");
}

/* Device copy bandwidth (read + write bytes per second) with cudaMemcpy, the yardstick for the
   memory-bound ops, measured in the same run on the same buffers size class. */
#ifndef SEQK_EMU
static double measure_copy_gbs(bench *b) {
  const size_t bytes = (size_t)1 << 30;
  void *src = NULL, *dst = NULL;
  cudaEvent_t start, stop;
  float best = 1e30f;
  if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) return 0;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 10; ++i) {
    float ms = 0;
    cudaEventRecord(start, NULL);
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, NULL);
    cudaEventRecord(stop, NULL);
    cudaEventSynchronize(stop);
    cudaEventElapsedTime(&ms, start, stop);
    if (i > 0 && ms < best) best = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(src);
  cudaFree(dst);
  (void)b;
  return 2.0 * (double)bytes / (best * 1e6);
}
#endif

int main(int argc, char **argv) {
  bench b;
  memset(&b, 0, sizeof b);
  b.repeats = 20;
  const char *csv_path = NULL;
  int correctness = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--csv") && i + 1 < argc)
      csv_path = argv[++i];
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
      b.filter = argv[++i];
    else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
      b.repeats = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--correctness"))
      correctness = 1;
    else {
      usage();
      return 2;
    }
  }
  if (b.repeats < 1) b.repeats = 1;

  int devices = seqk_cuda_device_count();
#ifdef SEQK_EMU
  printf(
      "seqk-bench (emulated build): correctness pass at small shapes; kernels run on the CPU "
      "emulation of CUDA, nothing is timed\n");
  correctness = 1;
#else
  if (devices == 0) {
    printf("seqk-bench: no CUDA device: nothing to time here\n");
    return 77;
  }
#endif
  if (seqk_context_create(&b.ctx) != SEQK_STATUS_SUCCESS) return 2;
  b.small = correctness;
  b.timing = !correctness;
#ifndef SEQK_EMU /* the emulated build never times */
  if (b.timing) {
    struct cudaDeviceProp prop;
    int driver = 0, runtime = 0;
    cudaGetDeviceProperties(&prop, 0);
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    printf("device: %s (sm_%d%d, %d SMs, L2 %d MiB), driver %d, runtime %d, seqk %d\n", prop.name,
           prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize >> 20, driver,
           runtime, seqk_version());
    b.flush_bytes = (size_t)prop.l2CacheSize * 2;
    if (cudaMalloc(&b.flush, b.flush_bytes) != cudaSuccess) return 2;
    b.copy_gbs = measure_copy_gbs(&b);
    printf("device copy bandwidth (cudaMemcpy D2D, 1 GiB): %.0f GB/s\n", b.copy_gbs);
  }
#endif
  (void)devices;
  if (csv_path && !(b.csv = fopen(csv_path, "w"))) {
    fprintf(stderr, "seqk-bench: cannot write %s\n", csv_path);
    return 2;
  }

  bench_cases_memory(&b);
  bench_cases_attention(&b);
  bench_cases_rnn(&b);

  printf("%d cases: %d failed, %d not served on CUDA (NOT_SUPPORTED)\n", b.rows, b.failures, b.unavailable);
  if (b.csv) fclose(b.csv);
  if (b.flush) cudaFree(b.flush);
  seqk_context_destroy(b.ctx);
  return b.failures ? 1 : 0;
}
