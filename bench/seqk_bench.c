/*
 * seqk_bench.c - seqk-bench: every case validated against the CPU reference, then timed.
 *
 *   seqk-bench [--csv FILE] [--filter TEXT] [--repeats N] [--correctness] [--list] [--help]
 *
 * With a GPU: the full shapes, timed with CUDA events (median of --repeats, L2 flushed between
 * runs, inputs rotated). Without one, the real build exits 77 ("no CUDA device"); the emulated
 * build (seqk-bench-emu) runs the correctness pass at small shapes on the CPU emulation of the
 * kernels. scripts/bench.sh chooses.
 */
/* gmtime_r */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char k_usage[] =
    "usage: seqk-bench [--csv FILE] [--filter TEXT] [--repeats N] [--correctness] [--list] "
    "[--help]\n";

static void help(void) {
  fputs(k_usage, stdout);
  fputs(
      "\n"
      "Every case first runs its op on CUDA tensors and checks the result against seqk's CPU\n"
      "reference (|out - ref| <= atol + rtol |ref|, NaN never passes); only a case that passed is\n"
      "timed: CUDA events, median of N runs, L2 flushed before each, inputs rotated.\n"
      "\n"
      "Options:\n"
      "  --csv FILE     also write the results as CSV (columns: README.md, \"The bench's CSV\")\n"
      "  --filter TEXT  run only the cases whose name contains TEXT (case-sensitive); a filter\n"
      "                 that matches no case is an error (exit 2)\n"
      "  --repeats N    timed runs per case, the median reported (default 20, at most 64)\n"
      "  --correctness  check every case at small shapes, time nothing (what the emulated\n"
      "                 build, seqk-bench-emu, always does)\n"
      "  --list         print the names of the cases that would run (with --filter: the\n"
      "                 matching ones) and exit; needs no GPU\n"
      "  --help         this text\n"
      "\n"
      "Case families (the first word of a case name):\n"
      "  tensor_copy    dtype conversion and layout change; GB/s against the device copy\n"
      "  softmax        along the last dim and dim 0; GB/s against the device copy\n"
      "  split_heads, merge_heads   multi-head reshape; GB/s against the device copy\n"
      "  embedding      row gather; GB/s against the device copy\n"
      "  attention_merge  merging split-KV partial results with their logsumexp; GB/s\n"
      "  attention      scaled dot-product attention: FlashAttention's sweep (B*S = 16384,\n"
      "                 hidden 2048, D 64 and 128, S 512..16k, causal or not), llm.c's shape, and\n"
      "                 grouped-query decode (Sq = 1, Sk 1k..128k); TFLOP/s, the fused (AUTO)\n"
      "                 path against the unfused cuBLAS + softmax path\n"
      "  mha_forward    nn.MultiheadAttention forward; TFLOP/s\n"
      "  linear         y = x W^T + b (cuBLAS); TFLOP/s\n"
      "  kv_cache_append  new keys and values into a contiguous or paged KV cache (a decode\n"
      "                 step, a prefill chunk); GB/s\n"
      "  layer_norm, rms_norm  norms over the last dim, plain and with the fused residual\n"
      "                 (GPT-2, LLaMA, per-head q/k norm shapes); GB/s against the device copy\n"
      "  activate, gated_activate  GELU, SwiGLU; GB/s against the device copy\n"
      "  rotary         rotary embeddings in place on q and k (prefill, decode); GB/s\n"
      "  linear_ex      linear with a fused activation / residual epilogue (GPT-2's MLP);\n"
      "                 TFLOP/s, against seqk_linear + seqk_activate\n"
      "  encoder_layer  nn.TransformerEncoderLayer (BERT-base, torch's defaults); TFLOP/s,\n"
      "                 against the same layer as separate public calls\n"
      "  rnn            nn.RNN/LSTM/GRU forward, DeepBench shapes and small-batch latency; the\n"
      "                 automatic path against the per-step path and cuDNN (when found); us per\n"
      "                 step in the note\n"
      "\n"
      "Exit status: 0 all cases passed; 1 a case failed; 2 bad usage or no case matched;\n"
      "77 no CUDA device (the real build; scripts/bench.sh then runs seqk-bench-emu).\n",
      stdout);
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

static void run_cases(bench *b) {
  bench_cases_memory(b);
  bench_cases_attention(b);
  bench_cases_rnn(b);
  bench_cases_kv_cache(b);
  bench_cases_blocks(b);
}

/* After the cases: a filter that selected nothing is an error (exit 2), said on stderr. */
static int finish_filter(const bench *b) {
  if (b->matched > 0) return 0;
#ifdef SEQK_EMU
  const char *lister = "seqk-bench-emu --list";
#else
  const char *lister = b->small ? "seqk-bench --list --correctness" : "seqk-bench --list";
#endif
  fprintf(stderr, "seqk-bench: no case matches --filter '%s' (%s shows them)\n",
          b->filter ? b->filter : "", lister);
  return 2;
}

/* The UTC date and time of the run, ISO 8601, for the CSV. */
static void utc_now(char *out, size_t size) {
  time_t now = time(NULL);
  struct tm tm;
  if (!gmtime_r(&now, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, size, "unknown");
}

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
    else if (!strcmp(argv[i], "--list"))
      b.list = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help();
      return 0;
    } else {
      fprintf(stderr, "seqk-bench: unknown or incomplete option '%s'\n%s(seqk-bench --help)\n",
              argv[i], k_usage);
      return 2;
    }
  }
  if (b.repeats < 1) b.repeats = 1;

#ifdef SEQK_EMU
  correctness = 1;
#endif
  /* Names first (printed with --list, else only counted): no device, context or memory needed,
     and a filter that selects nothing fails here, before any device work. */
  b.small = correctness;
  const int list = b.list;
  b.list = 1;
  b.quiet = !list;
  run_cases(&b);
  if (list || b.matched == 0) return finish_filter(&b);
  b.list = b.quiet = 0;
  b.matched = 0;
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
  utc_now(b.date, sizeof b.date);
#ifdef SEQK_EMU
  b.device = "emulated CPU";
#else /* the emulated build never times */
  static struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) b.device = prop.name;
  if (b.timing) {
    int driver = 0, runtime = 0;
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

  run_cases(&b);

  printf("%d cases: %d failed, %d not served on CUDA (NOT_SUPPORTED)\n", b.rows, b.failures,
         b.unavailable);
  if (b.csv) fclose(b.csv);
  if (b.flush) cudaFree(b.flush);
  seqk_context_destroy(b.ctx);
  return b.failures ? 1 : 0;
}
