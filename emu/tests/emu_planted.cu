/*
 * emu_planted.cu - bugs planted on purpose, each of which the emulator must catch. One case per
 * run (argv[1]), each registered in all three thread orders:
 *   missing_sync  a shared-memory exchange without __syncthreads gives wrong results (in every
 *                 order; TSan builds must also report the data race: CTest expects the report)
 *   missing_wait  reading cp.async destinations after __syncthreads but without cp_async_wait
 *                 reads the 0xFF poison
 *   divergence    two different __syncthreads call sites: a report naming both
 *   deadlock      a full-mask shuffle after one lane returned: a report naming the shuffle site
 *   overflow      a write one element past a shared array: the redzone report (ASan builds abort
 *                 with use-after-poison at the write: CTest expects that report)
 *   bad_address   ldmatrix from global memory, misaligned cp.async: reports
 *   misaligned    a float4 load from an address that is not 16-byte aligned (faults on a GPU):
 *                 registered only in the ASan+UBSan job, which must report it
 * The fixed version of each kernel runs clean in the same process, so every check can fail.
 */
#include "primitives.cuh"
#include "emu_check.h"

#include <cmath>
#include <string>

static bool launch_failed() {
  cudaError_t e = cudaGetLastError();
  return e == cudaErrorLaunchFailure;
}

static bool report_has(const std::string &needle) {
  return std::string(seqk_emu_reports()).find(needle) != std::string::npos;
}

/* ---- missing __syncthreads ---------------------------------------------------------------------- */
/* 128 threads: few enough fibers for TSan to tell them apart (see emu/README.md). */
constexpr int kRev = 128;
template <bool SYNC>
__global__ void reverse_kernel(const float *x, float *y) {
  SMEM_ARRAY(float, s, kRev);
  int t = threadIdx.x;
  s[t] = x[blockIdx.x * kRev + t];
  if (SYNC) __syncthreads();
  y[blockIdx.x * kRev + t] = s[kRev - 1 - t];
}

static int count_reverse_errors(bool sync) {
  const int blocks = 4;
  std::vector<float> x(blocks * kRev);
  for (int i = 0; i < blocks * kRev; ++i) x[i] = (float)i;
  ec::dev<float> dx(x), dy(blocks * kRev);
  if (sync)
    launch(dim3(blocks), dim3(kRev), 0, 0, reverse_kernel<true>, dx.p, dy.p);
  else
    launch(dim3(blocks), dim3(kRev), 0, 0, reverse_kernel<false>, dx.p, dy.p);
  CHECK_LAUNCH("reverse_kernel");
  std::vector<float> y = dy.get();
  int bad = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < kRev; ++t) bad += y[b * kRev + t] != x[b * kRev + kRev - 1 - t];
  return bad;
}

static void case_missing_sync() {
  int with = count_reverse_errors(true), without = count_reverse_errors(false);
  CHECK(with == 0, "with __syncthreads: %d wrong (order %s)", with, seqk_emu_schedule());
  CHECK(without > 0, "without __syncthreads: no wrong element in order %s", seqk_emu_schedule());
  printf("missing __syncthreads, order %s: %d of %d elements wrong\n", seqk_emu_schedule(), without,
         4 * kRev);
}

/* ---- missing cp.async wait ---------------------------------------------------------------------- */
template <bool WAIT>
__global__ void staged_kernel(const float *x, float *y) {
  SMEM_ARRAY(float, s, 128);
  int t = threadIdx.x;
  cp_async<4>(&s[t], &x[t]);
  cp_async_commit();
  if (WAIT) cp_async_wait<0>();
  __syncthreads();
  y[t] = s[127 - t] * 2.0f;
}

static void case_missing_wait() {
  std::vector<float> x(128);
  for (int i = 0; i < 128; ++i) x[i] = 0.5f * i;
  ec::dev<float> dx(x), dy(128);
  for (int wait = 1; wait >= 0; --wait) {
    if (wait)
      launch(dim3(1), dim3(128), 0, 0, staged_kernel<true>, dx.p, dy.p);
    else
      launch(dim3(1), dim3(128), 0, 0, staged_kernel<false>, dx.p, dy.p);
    CHECK_LAUNCH("staged_kernel");
    std::vector<float> y = dy.get();
    int bad = 0, nan = 0;
    for (int t = 0; t < 128; ++t) {
      bad += y[t] != x[127 - t] * 2.0f;
      nan += std::isnan(y[t]);
    }
    if (wait)
      CHECK(bad == 0, "with the wait: %d wrong", bad);
    else
      CHECK(nan == 128, "without the wait: only %d of 128 reads saw the poison", nan);
  }
}

/* ---- barrier divergence ------------------------------------------------------------------------- */
static const int kBarrierLineA = __LINE__ + 5;
static const int kBarrierLineB = __LINE__ + 6;
template <bool BUG>
__global__ void divergent_kernel(int *out) {
  if (BUG && threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

static void case_divergence() {
  ec::dev<int> out(64);
  seqk_emu_clear_reports();
  launch(dim3(1), dim3(64), 0, 0, divergent_kernel<false>, out.p);
  CHECK_LAUNCH("divergent_kernel<false>");
  launch(dim3(1), dim3(64), 0, 0, divergent_kernel<true>, out.p);
  CHECK(launch_failed(), "barrier divergence did not fail the launch");
  std::string a = "emu_planted.cu:" + std::to_string(kBarrierLineA);
  std::string b = "emu_planted.cu:" + std::to_string(kBarrierLineB);
  CHECK(report_has("barrier divergence") && report_has(a) && report_has(b),
        "divergence report does not name %s and %s: %s", a.c_str(), b.c_str(), seqk_emu_reports());
}

/* ---- deadlock: a full-mask shuffle after a lane has left ---------------------------------------- */
static const int kShuffleLine = __LINE__ + 4;
template <bool BUG>
__global__ void early_exit_kernel(int *out) {
  if (BUG && threadIdx.x == 5) return;
  int v = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
  out[threadIdx.x] = v;
}

static void case_deadlock() {
  ec::dev<int> out(32);
  seqk_emu_clear_reports();
  launch(dim3(1), dim3(32), 0, 0, early_exit_kernel<false>, out.p);
  CHECK_LAUNCH("early_exit_kernel<false>");
  launch(dim3(1), dim3(32), 0, 0, early_exit_kernel<true>, out.p);
  CHECK(launch_failed(), "a shuffle waiting for an exited lane did not fail the launch");
  std::string s = "emu_planted.cu:" + std::to_string(kShuffleLine);
  CHECK(report_has("deadlock") && report_has(s) && report_has("lane 5 exited"),
        "deadlock report does not name %s and lane 5: %s", s.c_str(), seqk_emu_reports());
}

/* ---- shared-memory overflow --------------------------------------------------------------------- */
template <bool BUG>
__global__ void overflow_kernel(const float *x, float *y) {
  SMEM_ARRAY(float, tile, 64);
  int t = threadIdx.x;
  tile[t] = x[t];
  __syncthreads();
  float *p = tile; /* a computed index, as in real bugs (UBSan would catch a constant one) */
  if (BUG && t == 0) p[64 + (int)blockIdx.x * 0] = 1.0f; /* one past the end */
  y[blockIdx.x * 64 + t] = tile[63 - t];
}

static void case_overflow() {
  std::vector<float> x(64, 3.0f);
  ec::dev<float> dx(x), dy(128);
  seqk_emu_clear_reports();
  launch(dim3(2), dim3(64), 0, 0, overflow_kernel<false>, dx.p, dy.p);
  CHECK_LAUNCH("overflow_kernel<false>");
  launch(dim3(2), dim3(64), 0, 0, overflow_kernel<true>, dx.p, dy.p);
  /* Under ASan the process has ended at the write above. */
  CHECK(launch_failed(), "the overflow did not fail the launch");
  CHECK(report_has("shared memory overflow") && report_has("past the end of tile"),
        "overflow report does not name tile: %s", seqk_emu_reports());
}

/* ---- addresses the primitives reject ------------------------------------------------------------- */
template <int BUG>
__global__ void address_kernel(const uint16_t *g, float *out) {
  SMEM_ARRAY(uint16_t, s, 8 * 8 + 8);
  int L = threadIdx.x;
  uint32_t r[1];
  if (L < 64 + 8) s[L] = g[L];
  __syncwarp();
  const void *row = BUG == 1 ? (const void *)&g[8 * (L % 8)] : (const void *)&s[8 * (L % 8)];
  ldmatrix_x1(r, row);
  if (BUG == 2) cp_async<16>(&s[1], g); /* 2-byte aligned destination */
  out[L] = (float)(r[0] & 0xffff);
}

static void case_bad_address() {
  std::vector<uint16_t> g(72, 1);
  ec::dev<uint16_t> dg(g);
  ec::dev<float> out(32);
  seqk_emu_clear_reports();
  launch(dim3(1), dim3(32), 0, 0, address_kernel<0>, dg.p, out.p);
  CHECK_LAUNCH("address_kernel<0>");
  launch(dim3(1), dim3(32), 0, 0, address_kernel<1>, dg.p, out.p);
  CHECK(launch_failed() && report_has("not inside a shared memory array"),
        "ldmatrix from global memory not reported: %s", seqk_emu_reports());
  launch(dim3(1), dim3(32), 0, 0, address_kernel<2>, dg.p, out.p);
  CHECK(launch_failed() && report_has("misaligned"), "misaligned cp.async not reported: %s",
        seqk_emu_reports());
}

/* ---- misaligned vector load ------------------------------------------------------------------------ */
__global__ void misaligned_kernel(const float *x, float *y) {
  const float4 *v = reinterpret_cast<const float4 *>(x + 1 + threadIdx.x * 4); /* 4-byte aligned */
  float4 q = *v;
  y[threadIdx.x] = q.x + q.y + q.z + q.w;
}

static void case_misaligned() {
  std::vector<float> x(4 * 32 + 8, 1.0f);
  ec::dev<float> dx(x), dy(32);
  launch(dim3(1), dim3(32), 0, 0, misaligned_kernel, dx.p, dy.p);
  CHECK_LAUNCH("misaligned_kernel");
  /* Only UBSan can see this on a CPU; without it the test has nothing to assert. */
  printf("misaligned float4 load ran (UBSan must have reported it in the ASan+UBSan job)\n");
}

int main(int argc, char **argv) {
  std::string c = argc > 1 ? argv[1] : "";
  if (c == "missing_sync")
    case_missing_sync();
  else if (c == "missing_wait")
    case_missing_wait();
  else if (c == "divergence")
    case_divergence();
  else if (c == "deadlock")
    case_deadlock();
  else if (c == "overflow")
    case_overflow();
  else if (c == "bad_address")
    case_bad_address();
  else if (c == "misaligned")
    case_misaligned();
  else {
    fprintf(stderr,
            "usage: emu_planted "
            "missing_sync|missing_wait|divergence|deadlock|overflow|bad_address|misaligned\n");
    return 2;
  }
  return ec::finish();
}
