/*
 * emu_tma.cu - Hopper TMA tiled loads (kernels/primitives_sm90.cuh tma_load_{2,3,4}d) and the
 * host-side tensor map (kernels/tma_map.h seqk_tma_encode, cuTensorMapEncodeTiled).
 *   encode   maps the driver must refuse (misaligned address, strides, box sizes, inner box bytes
 *            past the swizzle span, rank) return cudaErrorInvalidValue; valid ones succeed.
 *   loads    2-D, 3-D and 4-D boxes of f16, bf16 and f32, every swizzle mode, boxes reaching out
 *            of the tensor on both ends in several dimensions (zeros), global views whose
 *            strides are larger than their rows. The map travels in a __grid_constant__ params
 *            struct; one thread issues, every thread waits and copies the shared image out. The
 *            expected image is built here: the box dense, innermost first, each row of W bytes
 *            (W = the swizzle span) keeping its 16-byte chunks in the order c ^ pattern(row % 8)
 *            (pattern r for 128B, r/2 for 64B, r/4 for 32B, as emu_wgmma.cu builds its atoms).
 *   ring     one producer thread loads 10 boxes of a bf16 tensor (the first and last partly out
 *            of bounds) into 2 stages on "full" mbarriers; two consumer warps wait with the
 *            stage's parity, check every element through the 128B swizzle and release the stage
 *            on its "empty" mbarrier through elect_sync.
 *   wgmma    a 64x64 bf16 A tile and a 64x64 bf16 B tile (both K-major, 128 bytes of K per row,
 *            B partly out of bounds) TMA-loaded with 128B swizzle into 1024-aligned shared memory
 *            and fed to wgmma_bf16_ss<64> through 128B-swizzle descriptors (SBO 1024, four
 *            k-steps of 32 bytes): the accumulators must equal the exact integer products, which
 *            proves that TMA and wgmma agree on the layout.
 *
 * Planted bugs (argv[1], CTest emu_planted_tma_*), each of which the emulator must catch:
 *   early_read       the issuing thread reads the destination before waiting: it reads the poison
 *                    (0x7FBD7FBD; under ASan the read itself aborts: use-after-poison)
 *   wrong_parity     the threads wait on parity 1 where the load completes phase 0: deadlock
 *   tx_short         expect_tx of 16 bytes fewer than the box: tx-count underflow
 *   bad_map          a map cuTensorMapEncodeTiled did not make (zeros): reported at issue
 *   no_wait          nobody waits on the barrier: the block exits with the load in flight
 *   write_in_flight  the destination is written while the load is in flight
 *   bad_dst          a destination 16 bytes off the 128-byte alignment, and one in global memory
 *   uninit_bar       a load completing on an mbarrier nobody initialised
 *
 * Built with nvcc for sm_90a the same file runs on a Hopper GPU (the planted cases other than
 * early_read's fixed twin need the emulator and are skipped there):
 *   nvcc -std=c++17 -arch=sm_90a -Ikernels -Iemu/tests emu/tests/emu_tma.cu kernels/tma_map.cu \
 *     -o emu_tma
 */
#include "primitives_sm90.cuh"
#include "tma_map.h"
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

static const uint32_t kPoison = 0x7FBD7FBDu; /* the emulator's seqk_emu::kTmaPoison */

/* ---- the test's own shared-memory image ----------------------------------------------------- */
static int span_bytes(CUtensorMapSwizzle sw) {
  return sw == CU_TENSOR_MAP_SWIZZLE_32B    ? 32
         : sw == CU_TENSOR_MAP_SWIZZLE_64B  ? 64
         : sw == CU_TENSOR_MAP_SWIZZLE_128B ? 128
                                            : 0;
}
/* Where byte o of the dense box lands (the destination 1024-byte aligned). */
__host__ __device__ inline uint32_t swizzled(uint32_t o, int W) {
  if (W == 0) return o;
  const uint32_t row = o / W, chunk = (o % W) / 16;
  const uint32_t pattern = W == 128 ? row % 8 : W == 64 ? (row % 8) / 2 : (row % 8) / 4;
  return row * W + (chunk ^ pattern) * 16 + o % 16;
}

/* ---- loads ------------------------------------------------------------------------------------ */
struct load_params {
  CUtensorMap map;
  int32_t c[4];
  uint32_t bytes;
};

template <int RANK>
__global__ void load_kernel(const __grid_constant__ load_params p, unsigned char *out) {
  DYN_SMEM(unsigned char, smem);
  SMEM_ARRAY(uint64_t, bar, 1);
  unsigned char *tile = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  const int t = threadIdx.x;
  if (t == 0) {
    mbarrier_init(&bar[0], 1);
    mbarrier_init_fence();
  }
  __syncthreads();
  if (t == 0) {
    tma_prefetch_map(&p.map);
    mbarrier_arrive_expect_tx(&bar[0], p.bytes);
    if (RANK == 2) tma_load_2d(tile, &p.map, &bar[0], p.c[0], p.c[1]);
    if (RANK == 3) tma_load_3d(tile, &p.map, &bar[0], p.c[0], p.c[1], p.c[2]);
    if (RANK == 4) tma_load_4d(tile, &p.map, &bar[0], p.c[0], p.c[1], p.c[2], p.c[3]);
  }
  mbarrier_wait(&bar[0], 0);
  for (uint32_t i = t; i < p.bytes; i += blockDim.x) out[i] = tile[i];
}

struct load_case {
  const char *name;
  CUtensorMapDataType dt;
  int es, rank;
  uint64_t dims[4];
  uint64_t pitch[3]; /* byte strides of dims 1..rank-1 */
  uint32_t box[4];
  int32_t c[4];
  CUtensorMapSwizzle sw;
};

/* Distinct element bits (no NaN), and a different filler in the gaps between rows. */
static void fill_global(std::vector<unsigned char> &g, const load_case &lc) {
  for (size_t i = 0; i < g.size(); ++i) g[i] = 0xEE;
  const uint64_t n1 = lc.rank > 1 ? lc.dims[1] : 1, n2 = lc.rank > 2 ? lc.dims[2] : 1,
                 n3 = lc.rank > 3 ? lc.dims[3] : 1;
  uint32_t k = 0;
  for (uint64_t i3 = 0; i3 < n3; ++i3)
    for (uint64_t i2 = 0; i2 < n2; ++i2)
      for (uint64_t i1 = 0; i1 < n1; ++i1)
        for (uint64_t i0 = 0; i0 < lc.dims[0]; ++i0, ++k) {
          uint64_t off = i0 * lc.es + (lc.rank > 1 ? i1 * lc.pitch[0] : 0) +
                         (lc.rank > 2 ? i2 * lc.pitch[1] : 0) +
                         (lc.rank > 3 ? i3 * lc.pitch[2] : 0);
          uint32_t v =
              lc.es == 2 ? 0x1000u + (k * 37u) % 0x2C00u : 0x3F000000u + k * 2654435u % 0x800000u;
          memcpy(&g[off], &v, (size_t)lc.es);
        }
}

static std::vector<unsigned char> expected_image(const std::vector<unsigned char> &g,
                                                 const load_case &lc) {
  uint32_t n = 1;
  for (int d = 0; d < lc.rank; ++d) n *= lc.box[d];
  std::vector<unsigned char> img((size_t)n * lc.es, 0);
  const int W = span_bytes(lc.sw);
  for (uint32_t e = 0; e < n; ++e) {
    uint32_t rest = e;
    bool in = true;
    uint64_t off = 0;
    for (int d = 0; d < lc.rank; ++d) {
      const int64_t i = rest % lc.box[d], gc = (int64_t)lc.c[d] + i;
      rest /= lc.box[d];
      if (gc < 0 || gc >= (int64_t)lc.dims[d]) in = false;
      if (in) off += (uint64_t)gc * (d == 0 ? (uint64_t)lc.es : lc.pitch[d - 1]);
    }
    if (in) memcpy(&img[swizzled(e * lc.es, W)], &g[off], (size_t)lc.es);
  }
  return img;
}

static void run_load(const load_case &lc) {
  const uint64_t gbytes =
      lc.rank > 1 ? lc.pitch[lc.rank - 2] * lc.dims[lc.rank - 1] : lc.dims[0] * lc.es;
  std::vector<unsigned char> g(gbytes);
  fill_global(g, lc);
  ec::dev<unsigned char> dg(g);
  load_params p;
  uint32_t bytes = lc.es;
  for (int d = 0; d < lc.rank; ++d) bytes *= lc.box[d];
  cudaError_t e = seqk_tma_encode(&p.map, lc.dt, lc.rank, dg.p, lc.dims, lc.pitch, lc.box, lc.sw);
  CHECK(e == cudaSuccess, "%s: seqk_tma_encode: %s", lc.name, cudaGetErrorString(e));
  if (e != cudaSuccess) return;
  for (int d = 0; d < 4; ++d) p.c[d] = d < lc.rank ? lc.c[d] : 0;
  p.bytes = bytes;
  ec::dev<unsigned char> out(bytes);
  const size_t smem = 1024 + bytes;
  if (lc.rank == 2) launch(dim3(1), dim3(128), smem, 0, load_kernel<2>, p, out.p);
  if (lc.rank == 3) launch(dim3(1), dim3(128), smem, 0, load_kernel<3>, p, out.p);
  if (lc.rank == 4) launch(dim3(1), dim3(128), smem, 0, load_kernel<4>, p, out.p);
  const bool ok = launch_ok();
  std::vector<unsigned char> got = out.get(), want = expected_image(g, lc);
  int bad = 0, first = -1;
  for (uint32_t i = 0; i < bytes; ++i)
    if (got[i] != want[i]) {
      if (first < 0) first = (int)i;
      ++bad;
    }
  CHECK(ok && bad == 0, "%s: %s, %d of %u bytes differ (first at byte %d: got 0x%02x, want 0x%02x)",
        lc.name, ok ? "ran" : "launch failed", bad, bytes, first, first < 0 ? 0 : got[first],
        first < 0 ? 0 : want[first]);
}

static void test_loads() {
  const CUtensorMapDataType F16 = CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                            BF16 = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                            F32 = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  const CUtensorMapSwizzle NONE = CU_TENSOR_MAP_SWIZZLE_NONE, S32 = CU_TENSOR_MAP_SWIZZLE_32B,
                           S64 = CU_TENSOR_MAP_SWIZZLE_64B, S128 = CU_TENSOR_MAP_SWIZZLE_128B;
  const load_case cases[] = {
      {"2d f16 128B, out of bounds below in both dims",
       F16,
       2,
       2,
       {100, 37},
       {256},
       {64, 16},
       {-16, -5},
       S128},
      {"2d f16 128B, out of bounds above in both dims",
       F16,
       2,
       2,
       {100, 37},
       {256},
       {64, 16},
       {60, 30},
       S128},
      {"2d bf16 64B, above in dim 0, below in dim 1",
       BF16,
       2,
       2,
       {100, 37},
       {208},
       {32, 8},
       {88, -3},
       S64},
      {"2d f16 32B, below in dim 0, above in dim 1",
       F16,
       2,
       2,
       {100, 37},
       {224},
       {16, 24},
       {-8, 20},
       S32},
      {"2d f32 no swizzle", F32, 4, 2, {50, 20}, {208}, {12, 6}, {44, -2}, NONE},
      {"2d f32 128B, in bounds", F32, 4, 2, {64, 20}, {272}, {32, 8}, {16, 4}, S128},
      /* 64-byte rows under the 128B swizzle: the XOR still takes address bits 7-9 */
      {"2d f16 128B, 64-byte box rows", F16, 2, 2, {100, 37}, {256}, {32, 16}, {8, 2}, S128},
      {"3d bf16 128B", BF16, 2, 3, {64, 10, 6}, {160, 1760}, {64, 4, 3}, {0, 8, -1}, S128},
      {"3d f16 no swizzle", F16, 2, 3, {40, 7, 5}, {96, 720}, {24, 3, 2}, {-8, -1, 4}, NONE},
      {"3d f32 32B", F32, 4, 3, {8, 9, 4}, {32, 288}, {8, 6, 3}, {0, 5, 2}, S32},
      {"4d f16 64B", F16, 2, 4, {40, 5, 4, 3}, {96, 496, 2000}, {32, 2, 3, 2}, {16, -1, 2, 2}, S64},
      {"4d bf16 128B, in bounds",
       BF16,
       2,
       4,
       {64, 3, 3, 2},
       {128, 384, 1152},
       {64, 2, 2, 2},
       {0, 1, 1, 0},
       S128},
      {"4d bf16 32B, out of bounds in dims 1 and 3",
       BF16,
       2,
       4,
       {48, 4, 3, 2},
       {112, 448, 1344},
       {16, 3, 2, 2},
       {32, 2, 0, -1},
       S32},
  };
  for (const load_case &lc : cases) run_load(lc);
}

/* ---- encode: what the driver refuses ---------------------------------------------------------- */
static void test_encode() {
  ec::dev<unsigned char> g(1 << 16);
  const unsigned char *base = g.p;
  CUtensorMap map;
  const CUtensorMapDataType F16 = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const uint64_t dims[3] = {64, 32, 4}, pitch[2] = {128, 4096};
  const uint32_t box[3] = {64, 8, 2};
  struct bad_case {
    const char *what;
    const void *base;
    uint32_t rank;
    uint64_t dims[3], pitch[2];
    uint32_t box[3];
    CUtensorMapSwizzle sw;
  };
  const CUtensorMapSwizzle S128 = CU_TENSOR_MAP_SWIZZLE_128B, S64 = CU_TENSOR_MAP_SWIZZLE_64B;
  const bad_case bad[] = {
      {"base 8-byte aligned", base + 8, 3, {64, 32, 4}, {128, 4096}, {64, 8, 2}, S128},
      {"stride not a multiple of 16", base, 3, {64, 32, 4}, {136, 4096}, {64, 8, 2}, S128},
      {"stride 2^40", base, 3, {64, 32, 4}, {128, 1ull << 40}, {64, 8, 2}, S128},
      {"box 0", base, 3, {64, 32, 4}, {128, 4096}, {64, 0, 2}, S128},
      {"box 257", base, 3, {64, 512, 4}, {128, 4096}, {64, 257, 2}, CU_TENSOR_MAP_SWIZZLE_NONE},
      {"inner box 24 bytes",
       base,
       3,
       {64, 32, 4},
       {128, 4096},
       {12, 8, 2},
       CU_TENSOR_MAP_SWIZZLE_NONE},
      {"inner box 128 bytes under 64B swizzle", base, 3, {64, 32, 4}, {128, 4096}, {64, 8, 2}, S64},
      {"dim 0", base, 3, {64, 0, 4}, {128, 4096}, {64, 8, 2}, S128},
      {"dim 2^32 + 1", base, 3, {64, 32, (1ull << 32) + 1}, {128, 4096}, {64, 8, 2}, S128},
      {"rank 6", base, 6, {64, 32, 4}, {128, 4096}, {64, 8, 2}, S128},
      {"rank 0", base, 0, {64, 32, 4}, {128, 4096}, {64, 8, 2}, S128},
  };
  for (const bad_case &b : bad) {
    cudaError_t e = seqk_tma_encode(&map, F16, b.rank, b.base, b.dims, b.pitch, b.box, b.sw);
    CHECK(e == cudaErrorInvalidValue, "seqk_tma_encode with %s: %s, not cudaErrorInvalidValue",
          b.what, cudaGetErrorString(e));
  }
  cudaError_t e = seqk_tma_encode(&map, F16, 3, base, dims, pitch, box, S128);
  CHECK(e == cudaSuccess, "seqk_tma_encode of a valid map: %s", cudaGetErrorString(e));
  const uint64_t d1[1] = {4096};
  const uint32_t b1[1] = {256};
  e = seqk_tma_encode(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 1, base, d1, nullptr, b1,
                      CU_TENSOR_MAP_SWIZZLE_NONE);
  CHECK(e == cudaSuccess, "seqk_tma_encode of a valid 1-d map: %s", cudaGetErrorString(e));
  (void)cudaGetLastError();
  clear_reports(); /* the emulator reported each refusal */
}

/* ---- the ring ---------------------------------------------------------------------------------- */
constexpr int kRingItems = 10, kRingRows = 16, kRingCols = 64, kRingTensorRows = 150;
constexpr uint32_t kStageBytes = kRingRows * kRingCols * 2;

__host__ __device__ inline uint16_t ring_bits(int row, int col) {
  return (uint16_t)(0x3C00 + (row * kRingCols + col) % 1021);
}
/* Item k loads rows 16k - 8 .. 16k + 7: the first and the last reach out of the tensor. */
__host__ __device__ inline int ring_row0(int k) { return kRingRows * k - 8; }

struct ring_params {
  CUtensorMap map;
};

__global__ void ring_kernel(const __grid_constant__ ring_params p, int *errors, int *checked) {
  DYN_SMEM(unsigned char, smem);
  SMEM_ARRAY(uint64_t, full, 2);
  SMEM_ARRAY(uint64_t, empty, 2);
  unsigned char *stage0 = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  const int t = threadIdx.x, warp = t / 32, lane = t % 32;
  if (t == 0) {
    for (int s = 0; s < 2; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 2);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (warp == 0) {
    if (lane == 0)
      for (int k = 0; k < kRingItems; ++k) {
        const int s = k & 1, round = k >> 1;
        mbarrier_wait(&empty[s], (round & 1) ^ 1); /* the first round finds both stages empty */
        mbarrier_arrive_expect_tx(&full[s], kStageBytes);
        tma_load_2d(stage0 + s * 2048, &p.map, &full[s], 0, ring_row0(k));
      }
  } else {
    int bad = 0, n = 0;
    for (int k = 0; k < kRingItems; ++k) {
      const int s = k & 1, round = k >> 1;
      mbarrier_wait(&full[s], round & 1);
      const unsigned char *st = stage0 + s * 2048;
      for (int r = 0; r < kRingRows; ++r)
        for (int c = 0; c < kRingCols; ++c) {
          const int row = ring_row0(k) + r;
          const uint16_t want = row >= 0 && row < kRingTensorRows ? ring_bits(row, c) : 0;
          uint16_t got;
          memcpy(&got, st + swizzled((uint32_t)(r * 128 + c * 2), 128), 2);
          bad += got != want;
          ++n;
        }
      __syncwarp();
      if (elect_sync(0xffffffffu)) mbarrier_arrive(&empty[s]);
    }
    if (bad) atomicAdd(errors, bad);
    atomicAdd(checked, n);
  }
  __syncthreads();
  if (t == 0)
    for (int s = 0; s < 2; ++s) {
      mbarrier_inval(&full[s]);
      mbarrier_inval(&empty[s]);
    }
}

static void test_ring() {
  std::vector<uint16_t> g((size_t)kRingTensorRows * kRingCols);
  for (int r = 0; r < kRingTensorRows; ++r)
    for (int c = 0; c < kRingCols; ++c) g[(size_t)r * kRingCols + c] = ring_bits(r, c);
  ec::dev<uint16_t> dg(g);
  ring_params p;
  const uint64_t dims[2] = {kRingCols, kRingTensorRows}, pitch[1] = {kRingCols * 2};
  const uint32_t box[2] = {kRingCols, kRingRows};
  cudaError_t e = seqk_tma_encode(&p.map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, dg.p, dims, pitch,
                                  box, CU_TENSOR_MAP_SWIZZLE_128B);
  CHECK(e == cudaSuccess, "ring: seqk_tma_encode: %s", cudaGetErrorString(e));
  ec::dev<int> errors(std::vector<int>{0}), checked(std::vector<int>{0});
  launch(dim3(2), dim3(96), 1024 + 2 * 2048, 0, ring_kernel, p, errors.p, checked.p);
  const bool ok = launch_ok();
  std::vector<int> eh = errors.get(), ch = checked.get();
  const int want = 2 * 64 * kRingItems * kRingRows * kRingCols; /* blocks x consumers x ... */
  CHECK(ok && eh[0] == 0 && ch[0] == want, "TMA ring: %s, %d of %d checks wrong (%d made)",
        ok ? "ran" : "launch failed", eh[0], want, ch[0]);
}

/* ---- TMA then wgmma ------------------------------------------------------------------------------ */
/* A: 64 x 96 (m, k) in global memory, the box at k = 32..95; B: 80 x 64 (n, k), the box at
   n = 24..87 (rows 80..87 out of bounds: zeros). */
constexpr int kAk = 96, kAk0 = 32, kBn = 80, kBn0 = 24;
struct mma_params {
  CUtensorMap a, b;
};

__global__ void tma_wgmma_kernel(const __grid_constant__ mma_params p, float *D) {
  DYN_SMEM(unsigned char, smem);
  SMEM_ARRAY(uint64_t, bar, 1);
  unsigned char *sa = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  unsigned char *sb = sa + 8192;
  const int t = threadIdx.x, w = t / 32, L = t % 32, g = L >> 2, q = L & 3;
  if (t == 0) {
    mbarrier_init(&bar[0], 1);
    mbarrier_init_fence();
  }
  __syncthreads();
  if (t == 0) {
    mbarrier_arrive_expect_tx(&bar[0], 2 * 8192);
    tma_load_2d(sa, &p.a, &bar[0], kAk0, 0);
    tma_load_2d(sb, &p.b, &bar[0], 0, kBn0);
  }
  mbarrier_wait(&bar[0], 0);
  /* K-major, 128B swizzle: row mn at mn * 128 (8-row groups SBO = 1024 apart), K by 16 elements
     is 32 bytes more on the start address. */
  const uint64_t da = wgmma_desc(sa, 16, 1024, WGMMA_SWIZZLE_128B);
  const uint64_t db = wgmma_desc(sb, 16, 1024, WGMMA_SWIZZLE_128B);
  float acc[32];
  for (int r = 0; r < 32; ++r) acc[r] = 0.0f;
  wgmma_fence_operand(acc);
  wgmma_fence();
  for (int s = 0; s < 4; ++s)
    wgmma_bf16_ss<64, 0, 0>(acc, wgmma_desc_advance(da, 32 * s), wgmma_desc_advance(db, 32 * s),
                            s > 0);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operand(acc);
  for (int r = 0; r < 32; ++r) {
    const int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    D[row * 64 + col] = acc[r];
  }
}

static uint16_t bf_bits(int v) { return __bfloat16_as_ushort(__float2bfloat16_rn((float)v)); }

static void test_tma_wgmma() {
  ec::rng r(77);
  std::vector<int> A(64 * kAk), B(kBn * 64);
  std::vector<uint16_t> ga(A.size()), gb(B.size());
  for (size_t i = 0; i < A.size(); ++i) ga[i] = bf_bits(A[i] = r.below(9) - 4);
  for (size_t i = 0; i < B.size(); ++i) gb[i] = bf_bits(B[i] = r.below(9) - 4);
  ec::dev<uint16_t> dga(ga), dgb(gb);
  mma_params p;
  const uint64_t da[2] = {kAk, 64}, pa[1] = {kAk * 2}, db[2] = {64, kBn}, pb[1] = {128};
  const uint32_t box[2] = {64, 64};
  cudaError_t e1 = seqk_tma_encode(&p.a, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, dga.p, da, pa, box,
                                   CU_TENSOR_MAP_SWIZZLE_128B);
  cudaError_t e2 = seqk_tma_encode(&p.b, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, dgb.p, db, pb, box,
                                   CU_TENSOR_MAP_SWIZZLE_128B);
  CHECK(e1 == cudaSuccess && e2 == cudaSuccess, "TMA+wgmma: seqk_tma_encode: %s / %s",
        cudaGetErrorString(e1), cudaGetErrorString(e2));
  ec::dev<float> D(64 * 64);
  const size_t smem = 1024 + 2 * 8192;
  launch(dim3(1), dim3(128), smem, 0, tma_wgmma_kernel, p, D.p);
  const bool ok = launch_ok();
  std::vector<float> Dh = D.get();
  int bad = 0;
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 64; ++n) {
      long ref = 0;
      if (kBn0 + n < kBn)
        for (int k = 0; k < 64; ++k) ref += (long)A[m * kAk + kAk0 + k] * B[(kBn0 + n) * 64 + k];
      bad += Dh[m * 64 + n] != (float)ref;
    }
  CHECK(ok && bad == 0, "TMA (128B swizzle) -> wgmma_bf16_ss<64>: %s, %d of 4096 products wrong",
        ok ? "ran" : "launch failed", bad);
}

/* ---- planted bugs ---------------------------------------------------------------------------- */
enum {
  P_OK = 0,
  P_EARLY_READ,
  P_WRONG_PARITY,
  P_TX_SHORT,
  P_NO_WAIT,
  P_WRITE_IN_FLIGHT,
  P_MISALIGNED_DST,
  P_GLOBAL_DST,
  P_UNINIT_BAR
};

template <int BUG>
__global__ void planted_kernel(const __grid_constant__ load_params p, uint32_t *out) {
  DYN_SMEM(unsigned char, smem);
  SMEM_ARRAY(uint64_t, bar, 2);
  unsigned char *tile = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  const uint32_t *tile32 = reinterpret_cast<const uint32_t *>(tile);
  const int t = threadIdx.x;
  if (t == 0) {
    mbarrier_init(&bar[0], 1);
    mbarrier_init_fence();
  }
  __syncthreads();
  if (t == 0) {
    mbarrier_arrive_expect_tx(&bar[0], BUG == P_TX_SHORT ? p.bytes - 16 : p.bytes);
    void *dst = BUG == P_MISALIGNED_DST ? (void *)(tile + 16)
                : BUG == P_GLOBAL_DST   ? (void *)out
                                        : (void *)tile;
    tma_load_2d(dst, &p.map, BUG == P_UNINIT_BAR ? &bar[1] : &bar[0], p.c[0], p.c[1]);
    if (BUG == P_EARLY_READ) /* the bug: no wait before reading */
      for (uint32_t i = 0; i < p.bytes / 4; ++i) out[i] = tile32[i];
    if (BUG == P_WRITE_IN_FLIGHT) tile[64] = 1;
  }
  __syncthreads();
  if (BUG == P_NO_WAIT) return;
  mbarrier_wait(&bar[0], BUG == P_WRONG_PARITY ? 1 : 0);
  if (BUG != P_EARLY_READ)
    for (uint32_t i = t; i < p.bytes / 4; i += blockDim.x) out[i] = tile32[i];
}

struct planted_run {
  bool launched;
  int poison, wrong;
};

template <int BUG>
static planted_run run_planted(bool bad_map = false) {
  const load_case lc = {"planted", CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, 2, {64, 40}, {128}, {64, 16},
                        {0, 8},    CU_TENSOR_MAP_SWIZZLE_128B};
  std::vector<unsigned char> g(lc.pitch[0] * lc.dims[1]);
  fill_global(g, lc);
  ec::dev<unsigned char> dg(g);
  load_params p;
  cudaError_t e = seqk_tma_encode(&p.map, lc.dt, 2, dg.p, lc.dims, lc.pitch, lc.box, lc.sw);
  CHECK(e == cudaSuccess, "planted: seqk_tma_encode: %s", cudaGetErrorString(e));
  if (bad_map) memset(&p.map, 0, sizeof p.map);
  p.c[0] = lc.c[0];
  p.c[1] = lc.c[1];
  p.c[2] = p.c[3] = 0;
  p.bytes = 64 * 16 * 2;
  ec::dev<uint32_t> out(p.bytes / 4);
  launch(dim3(1), dim3(64), 1024 + p.bytes, 0, planted_kernel<BUG>, p, out.p);
  planted_run res{launch_ok(), 0, 0};
  std::vector<uint32_t> oh;
  {
    ec::dump_as off(BUG == P_OK && !bad_map ? ec::DUMP_EXACT : ec::DUMP_OFF);
    oh = out.get();
  }
  std::vector<unsigned char> want = expected_image(g, lc);
  for (uint32_t i = 0; i < p.bytes / 4; ++i) {
    res.poison += oh[i] == kPoison;
    res.wrong += memcmp(&oh[i], &want[4 * i], 4) != 0;
  }
  return res;
}

static void planted(const std::string &c) {
  clear_reports();
  planted_run ok = run_planted<P_OK>();
  CHECK(ok.launched && ok.wrong == 0, "the fixed kernel: %d words wrong", ok.wrong);
  if (!SEQK_ON_EMU) {
    printf("planted %s: only the emulator can report it; skipped\n", c.c_str());
    return;
  }
  const int words = 64 * 16 * 2 / 4;
  if (c == "early_read") {
    planted_run r = run_planted<P_EARLY_READ>();
    CHECK(r.poison == words, "reading before the wait: only %d of %d words were the poison",
          r.poison, words);
    printf("read before the wait: %d of %d words were the poison 0x%08x\n", r.poison, words,
           kPoison);
  } else if (c == "wrong_parity") {
    planted_run r = run_planted<P_WRONG_PARITY>();
    CHECK(!r.launched && report_has("deadlock: threads waiting on mbarrier"),
          "a wait on the wrong parity was not reported as a deadlock: %s", reports());
  } else if (c == "tx_short") {
    planted_run r = run_planted<P_TX_SHORT>();
    CHECK(!r.launched && report_has("tx-count underflow") && report_has("TMA load"),
          "expect_tx of fewer bytes than the box was not reported: %s", reports());
  } else if (c == "bad_map") {
    planted_run r = run_planted<P_OK>(true);
    CHECK(!r.launched && report_has("cuTensorMapEncodeTiled did not make"),
          "a map the encoder did not make was not reported: %s", reports());
  } else if (c == "no_wait") {
    planted_run r = run_planted<P_NO_WAIT>();
    CHECK(!r.launched && report_has("in flight") && report_has("nobody waited"),
          "a block exiting with a TMA load in flight was not reported: %s", reports());
  } else if (c == "write_in_flight") {
    planted_run r = run_planted<P_WRITE_IN_FLIGHT>();
    CHECK(!r.launched && report_has("was written while"),
          "a write into a TMA destination in flight was not reported: %s", reports());
  } else if (c == "bad_dst") {
    planted_run r = run_planted<P_MISALIGNED_DST>();
    CHECK(!r.launched && report_has("is not 128-byte aligned"),
          "a misaligned TMA destination was not reported: %s", reports());
    clear_reports();
    r = run_planted<P_GLOBAL_DST>();
    CHECK(!r.launched && report_has("is not inside a shared memory array"),
          "a TMA destination in global memory was not reported: %s", reports());
  } else if (c == "uninit_bar") {
    planted_run r = run_planted<P_UNINIT_BAR>();
    CHECK(!r.launched && report_has("uninitialised mbarrier"),
          "a TMA load on an uninitialised mbarrier was not reported: %s", reports());
  } else {
    fprintf(stderr,
            "usage: emu_tma [early_read|wrong_parity|tx_short|bad_map|no_wait|"
            "write_in_flight|bad_dst|uninit_bar]\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) {
    planted(argv[1]);
  } else {
    test_encode();
    test_loads();
    test_ring();
    test_tma_wgmma();
  }
  return ec::finish();
}
