/*
 * emu_mbarrier.cu - Hopper synchronisation primitives (kernels/primitives_sm90.cuh): mbarrier,
 * named barriers, elect.sync, setmaxnreg.
 *   ring       one producer warp fills a ring of shared-memory stages guarded by "full" mbarriers
 *              (arrive.expect_tx + complete_tx, the emulated TMA's accounting, in three orders);
 *              two consumer warps wait on the stage's parity, check every element, and one
 *              elected lane per warp arrives on the stage's "empty" mbarrier, which the producer
 *              waits on before refilling. 14 items over 3 stages: every barrier's phase wraps.
 *   pingpong   two warpgroups hand a shared buffer back and forth with bar.arrive / bar.sync on
 *              named barriers 1 and 2 (count 256), plus a 128-thread barrier inside each group.
 *   elect      elect.sync with full, sparse and single-lane masks: exactly one leader, in the
 *              mask, the same lane id in every lane (the lowest on the emulator).
 *   setmaxnreg a producer warpgroup lowering, a consumer warpgroup raising its register count.
 *
 * Planted bugs (argv[1], CTest emu_planted_mbarrier_*), each of which the emulator must report:
 *   wrong_phase   the producer waits on the empty barrier's parity 0 first (instead of 1): a
 *                 deadlock naming the mbarrier wait
 *   over_arrive   every producer lane (not one) arrives with expect_tx: more arrivals than pending
 *   nbar_count    the reading warpgroup syncs named barrier 1 with count 192 while the writer
 *                 arrives with 256: mismatched thread counts (whichever warp comes first: the
 *                 readers alone cannot complete a 192-thread instance)
 *   uninit        an arrive on an mbarrier nobody initialised
 *   tx_underflow  more bytes completed than expected
 *   misaligned    an mbarrier word that is not 8-byte aligned, and one in global memory
 *   maxnreg       the warps of a warpgroup execute setmaxnreg with different counts
 *
 * On a GPU (no TMA here) complete_tx is relaxed, so the data a lane stores is published by the
 * release of the arrive that follows it: only the order "store, complete_tx, __syncwarp, one
 * arrive.expect_tx" is used there. Built with nvcc for sm_90a the same file runs on a Hopper GPU:
 *   nvcc -std=c++17 -arch=sm_90a -Ikernels -Iemu/tests emu/tests/emu_mbarrier.cu -o emu_mbarrier
 */
#include "primitives_sm90.cuh"
#include "emu_check.h"

#include <string>

#if SEQK_ON_EMU
static const char *reports() { return seqk_emu_reports(); }
static void clear_reports() { seqk_emu_clear_reports(); }
#else
static const char *reports() { return ""; }
static void clear_reports() {}
#endif
static bool report_has(const std::string &needle) {
  return std::string(reports()).find(needle) != std::string::npos;
}
static bool launch_ok() {
  cudaError_t e1 = cudaGetLastError(), e2 = cudaDeviceSynchronize();
  return e1 == cudaSuccess && e2 == cudaSuccess;
}

/* ---- the ring ------------------------------------------------------------------------------------ */
constexpr int kStages = 3, kItems = 14, kStageFloats = 64, kConsumerWarps = 2;
enum { RING_OK = 0, RING_WRONG_PHASE, RING_OVER_ARRIVE };

__host__ __device__ inline float ring_value(int item, int j) { return (float)(item * 1000 + j); }

template <int BUG>
__global__ void ring_kernel(float *sums, int *errors) {
  SMEM_ARRAY(uint64_t, full, kStages);
  SMEM_ARRAY(uint64_t, empty, kStages);
  SMEM_ARRAY2(float, buf, kStages, kStageFloats);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], kConsumerWarps);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (warp == 0) {
    /* producer: item k goes to stage k % kStages, round k / kStages of that stage */
    for (int k = 0; k < kItems; ++k) {
      const int s = k % kStages, round = k / kStages;
      /* The first round finds every stage empty: the phase "before" phase 0 has parity 1. */
      mbarrier_wait(&empty[s], BUG == RING_WRONG_PHASE ? (round & 1) : (round & 1) ^ 1);
      const int order = SEQK_ON_EMU ? k % 3 : 1;
      const float v0 = ring_value(k, 2 * lane), v1 = ring_value(k, 2 * lane + 1);
      if (order == 0) {
        /* TMA-like: announce the bytes, then they land; the last complete_tx ends the phase */
        if (lane == 0 || BUG == RING_OVER_ARRIVE) mbarrier_arrive_expect_tx(&full[s], 256);
        __syncwarp();
        buf[s][2 * lane] = v0;
        buf[s][2 * lane + 1] = v1;
        mbarrier_complete_tx(&full[s], 8);
      } else if (order == 1) {
        /* bytes first (the tx-count goes negative while the arrival is pending), then a plain
           expect_tx for half of them and the one arrive.expect_tx that releases every lane's
           stores (after __syncwarp) and ends the phase */
        buf[s][2 * lane] = v0;
        buf[s][2 * lane + 1] = v1;
        mbarrier_complete_tx(&full[s], 8);
        __syncwarp();
        if (lane == 0) {
          mbarrier_expect_tx(&full[s], 128);
          mbarrier_arrive_expect_tx(&full[s], 128);
        }
      } else {
        /* a plain expect_tx for half, arrive.expect_tx for the other half */
        if (lane == 0) mbarrier_expect_tx(&full[s], 128);
        __syncwarp();
        if (lane < 16) {
          buf[s][2 * lane] = v0;
          buf[s][2 * lane + 1] = v1;
          mbarrier_complete_tx(&full[s], 8);
        }
        __syncwarp();
        if (lane == 0) mbarrier_arrive_expect_tx(&full[s], 128);
        __syncwarp();
        if (lane >= 16) {
          buf[s][2 * lane] = v0;
          buf[s][2 * lane + 1] = v1;
          mbarrier_complete_tx(&full[s], 8);
        }
      }
    }
  } else {
    /* consumers: every thread checks every element of the stage */
    float sum = 0.0f;
    int bad = 0;
    for (int k = 0; k < kItems; ++k) {
      const int s = k % kStages, round = k / kStages;
      mbarrier_wait(&full[s], round & 1);
      for (int j = 0; j < kStageFloats; ++j) {
        float v = buf[s][j];
        bad += v != ring_value(k, j);
        sum += v;
      }
      __syncwarp();
      if (elect_sync(0xffffffffu)) mbarrier_arrive(&empty[s]);
    }
    sums[tid - 32] = sum;
    if (bad) atomicAdd(errors, bad);
  }
  __syncthreads();
  if (tid == 0)
    for (int s = 0; s < kStages; ++s) {
      mbarrier_inval(&full[s]);
      mbarrier_inval(&empty[s]);
    }
}

template <int BUG>
static bool run_ring(int *bad_out) {
  ec::dev<float> sums(32 * kConsumerWarps);
  ec::dev<int> errors(std::vector<int>{0});
  launch(dim3(2), dim3(32 * (1 + kConsumerWarps)), 0, 0, ring_kernel<BUG>, sums.p, errors.p);
  bool ok = launch_ok();
  std::vector<float> sh = sums.get();
  std::vector<int> eh = errors.get();
  double want = 0.0;
  for (int k = 0; k < kItems; ++k)
    for (int j = 0; j < kStageFloats; ++j) want += ring_value(k, j);
  int bad = eh[0];
  for (float v : sh) bad += (double)v != want;
  *bad_out = bad;
  return ok;
}

static void test_ring() {
  int bad = 0;
  bool ok = run_ring<RING_OK>(&bad);
  CHECK(ok && bad == 0, "mbarrier ring: %s, %d wrong", ok ? "ran" : "launch failed", bad);
}

/* ---- named barriers: ping-pong between two warpgroups ------------------------------------------- */
constexpr int kPingRounds = 6;
template <bool BUG>
__global__ void pingpong_kernel(int *errors) {
  SMEM_ARRAY(int, buf, 128);
  SMEM_ARRAY2(int, group_sum, 2, 4);
  const int tid = threadIdx.x, wg = tid / 128, t = tid % 128;
  int bad = 0;
  for (int r = 0; r < kPingRounds; ++r) {
    if (wg == r % 2) {
      buf[t] = r * 1000 + t;
      named_barrier_arrive(1, 256); /* data ready */
      named_barrier_sync(2, 256);   /* wait until the other group has read it */
    } else {
      named_barrier_sync(1, BUG ? 192 : 256); /* the bug: 6 warps counted, not 8 */
      const int v = buf[127 - t];
      bad += v != r * 1000 + 127 - t;
      /* a barrier of this warpgroup only: each warp's first lane publishes, all read */
      if (t % 32 == 0) group_sum[wg][t / 32] = v;
      named_barrier_sync(3 + wg, 128);
      for (int w = 0; w < 4; ++w) bad += group_sum[wg][w] != r * 1000 + 127 - 32 * w;
      named_barrier_sync(3 + wg, 128); /* group_sum is rewritten next time */
      named_barrier_arrive(2, 256);
    }
  }
  if (bad) atomicAdd(errors, bad);
}

static void test_pingpong() {
  ec::dev<int> errors(std::vector<int>{0});
  launch(dim3(2), dim3(256), 0, 0, pingpong_kernel<false>, errors.p);
  bool ok = launch_ok();
  std::vector<int> eh = errors.get();
  CHECK(ok && eh[0] == 0, "named-barrier ping-pong: %s, %d wrong", ok ? "ran" : "launch failed",
        eh[0]);
}

/* ---- elect.sync ----------------------------------------------------------------------------------- */
/* One election per launch: lanes outside the mask go on at once, and the next election's mask
   overlaps this one's. */
__global__ void elect_kernel(uint32_t mask, int m, int *leader, int *lane_seen) {
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int slot = (m * 2 + warp) * 32 + lane;
  if (mask >> lane & 1) {
    uint32_t who = 99;
    bool me = elect_sync(mask, who);
    leader[slot] = me ? 1 : 0;
    lane_seen[slot] = (int)who;
  } else {
    leader[slot] = 0;
    lane_seen[slot] = -1;
  }
}

static void test_elect() {
  const std::vector<uint32_t> masks = {0xffffffffu, 0xF0F0F0F0u, 0x80000000u, 0x00010001u,
                                       0x7FFFFFFEu};
  const int n = (int)masks.size();
  ec::dev<int> leader((size_t)n * 64), seen((size_t)n * 64);
  bool ok = true;
  for (int m = 0; m < n; ++m) {
    launch(dim3(1), dim3(64), 0, 0, elect_kernel, masks[m], m, leader.p, seen.p);
    ok &= launch_ok();
  }
  CHECK(ok, "elect.sync kernel: launch failed");
  std::vector<int> lh = leader.get(), sh = seen.get();
  for (int m = 0; m < n; ++m)
    for (int w = 0; w < 2; ++w) {
      int leaders = 0, leader_lane = -1, agree = 1;
      const int lowest = __builtin_ctz(masks[m]);
      for (int l = 0; l < 32; ++l) {
        const int slot = (m * 2 + w) * 32 + l;
        if (!(masks[m] >> l & 1)) continue;
        if (lh[slot]) {
          ++leaders;
          leader_lane = l;
        }
        agree &= sh[slot] == sh[(m * 2 + w) * 32 + lowest];
      }
      CHECK(leaders == 1 && agree && leader_lane == sh[(m * 2 + w) * 32 + lowest],
            "elect.sync mask 0x%08x warp %d: %d leaders (lane %d), lanes agree %d", masks[m], w,
            leaders, leader_lane, agree);
      CHECK(!SEQK_ON_EMU || leader_lane == lowest,
            "elect.sync mask 0x%08x: the emulator elected lane %d, not the lowest %d", masks[m],
            leader_lane, lowest);
    }
}

/* ---- setmaxnreg ------------------------------------------------------------------------------------ */
template <bool BUG>
__global__ void __launch_bounds__(256, 1) maxnreg_kernel(int *out) {
  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    if (BUG && threadIdx.x / 32 == 1)
      setmaxnreg_dec<48>();
    else
      setmaxnreg_dec<40>();
  } else {
    setmaxnreg_inc<232>();
  }
  out[threadIdx.x] = wg;
}

static void test_setmaxnreg() {
  /* A GPU needs the kernel's register budget to match (CUTLASS-style launch bounds); the
     emulator only checks uniform use, so the run is emulator-only (nvcc still compiles it). */
  if (!SEQK_ON_EMU) return;
  ec::dev<int> out(256);
  launch(dim3(1), dim3(256), 0, 0, maxnreg_kernel<false>, out.p);
  bool ok = launch_ok();
  std::vector<int> oh = out.get();
  int bad = 0;
  for (int t = 0; t < 256; ++t) bad += oh[t] != t / 128;
  CHECK(ok && bad == 0, "setmaxnreg: %s, %d wrong", ok ? "ran" : "launch failed", bad);
}

/* ---- small planted kernels -------------------------------------------------------------------------- */
__global__ void uninit_kernel(int *out) {
  SMEM_ARRAY(uint64_t, bar, 1);
  mbarrier_arrive(&bar[0]);
  out[threadIdx.x] = 1;
}

__global__ void underflow_kernel(int *out) {
  SMEM_ARRAY(uint64_t, bar, 1);
  if (threadIdx.x == 0) mbarrier_init(&bar[0], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    mbarrier_arrive_expect_tx(&bar[0], 64);
    mbarrier_complete_tx(&bar[0], 96); /* more than announced */
  }
  out[threadIdx.x] = 1;
}

template <int WHICH>
__global__ void misaligned_kernel(uint64_t *global_word) {
  SMEM_ARRAY(uint64_t, bar, 2);
  if (threadIdx.x == 0) {
    if (WHICH == 0)
      mbarrier_init(reinterpret_cast<uint64_t *>(reinterpret_cast<char *>(&bar[0]) + 4), 1);
    else
      mbarrier_init(global_word, 1);
  }
}

/* ---- planted-bug driver ---------------------------------------------------------------------------- */
static void planted(const std::string &c) {
  clear_reports();
  if (!SEQK_ON_EMU) {
    printf("planted %s: only the emulator can report it; skipped\n", c.c_str());
    return;
  }
  int bad = 0;
  /* the fixed ring runs clean in the same process */
  bool ok = run_ring<RING_OK>(&bad);
  CHECK(ok && bad == 0 && std::string(reports()).empty(), "the fixed ring: %d wrong; %s", bad,
        reports());
  if (c == "wrong_phase") {
    ok = run_ring<RING_WRONG_PHASE>(&bad);
    CHECK(!ok && report_has("deadlock: threads waiting on mbarrier at") && report_has("phase 0") &&
              report_has("emu_mbarrier.cu"),
          "waiting on the wrong phase not reported as an mbarrier deadlock: %s", reports());
  } else if (c == "over_arrive") {
    ok = run_ring<RING_OVER_ARRIVE>(&bad);
    CHECK(!ok && report_has("more arrivals than pending"),
          "an mbarrier arrived more often than its count not reported: %s", reports());
  } else if (c == "nbar_count") {
    ec::dev<int> errors(std::vector<int>{0});
    launch(dim3(1), dim3(256), 0, 0, pingpong_kernel<true>, errors.p);
    ok = launch_ok();
    CHECK(!ok && report_has("named barrier 1: mismatched thread counts"),
          "a named barrier with mismatched counts not reported: %s", reports());
  } else if (c == "uninit") {
    ec::dev<int> out(32);
    launch(dim3(1), dim3(32), 0, 0, uninit_kernel, out.p);
    ok = launch_ok();
    CHECK(!ok && report_has("on an uninitialised mbarrier"),
          "an arrive on an uninitialised mbarrier not reported: %s", reports());
  } else if (c == "tx_underflow") {
    ec::dev<int> out(32);
    launch(dim3(1), dim3(32), 0, 0, underflow_kernel, out.p);
    ok = launch_ok();
    CHECK(!ok && report_has("tx-count underflow"), "a tx-count underflow not reported: %s",
          reports());
  } else if (c == "misaligned") {
    ec::dev<uint64_t> word(1);
    launch(dim3(1), dim3(32), 0, 0, misaligned_kernel<0>, word.p);
    ok = launch_ok();
    CHECK(!ok && report_has("not 8-byte aligned"), "a misaligned mbarrier not reported: %s",
          reports());
    clear_reports();
    launch(dim3(1), dim3(32), 0, 0, misaligned_kernel<1>, word.p);
    ok = launch_ok();
    CHECK(!ok && report_has("inside a shared memory array"),
          "an mbarrier in global memory not reported: %s", reports());
  } else if (c == "maxnreg") {
    ec::dev<int> out(256);
    launch(dim3(1), dim3(256), 0, 0, maxnreg_kernel<true>, out.p);
    ok = launch_ok();
    CHECK(!ok && report_has("setmaxnreg: the warps of warpgroup 0"),
          "setmaxnreg with different counts in one warpgroup not reported: %s", reports());
  } else {
    fprintf(stderr,
            "usage: emu_mbarrier [wrong_phase|over_arrive|nbar_count|uninit|tx_underflow|"
            "misaligned|maxnreg]\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) {
    planted(argv[1]);
  } else {
    test_ring();
    test_pingpong();
    test_elect();
    test_setmaxnreg();
  }
  return ec::finish();
}
