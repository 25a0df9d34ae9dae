/*
 * emu_wgmma.cu - Hopper wgmma.mma_async m64nNk16 (kernels/primitives_sm90.cuh) against a double
 * product. One warpgroup (128 threads) copies operand images into 1024-byte aligned shared memory
 * and runs two k-steps (K = 32) into the same accumulators, then every lane's every accumulator
 * element is compared, through the D fragment layout, with the reference:
 *   - A and B from descriptors, K-major and MN-major, every swizzle mode, several N;
 *   - A from registers (the m16n8k16 A layout per warp), B from descriptors;
 *   - scale-d 0 (the accumulators' old values are ignored) and 1 (C is added); f16 and bf16.
 * The images are built on the host by an address function written here from the ISA's pictures
 * of the swizzle atoms (rows of W bytes whose 16-byte chunks are permuted row by row), not by the
 * emulator's decoder. Values are small integers, so every product and sum is exact: the check
 * is exact equality, on the emulator and on a GPU alike.
 *
 * Planted bugs (argv[1], CTest emu_planted_wgmma_*), each of which must be caught:
 *   missing_wait  accumulators stored without wgmma.wait_group: the emulator reports the groups
 *                 still in flight at exit, and what was read is the poison
 *   touched       an accumulator written between issue and wait: reported at the wait
 *   missing_fence no wgmma.fence before the first wgmma: reported
 *   wrong_swizzle data laid out for 128B swizzle, descriptor saying 64B: the comparison must
 *                 fail (on a GPU too)
 *
 * Built with nvcc for sm_90a the same file runs on a Hopper GPU:
 *   nvcc -std=c++17 -arch=sm_90a -Ikernels -Iemu/tests emu/tests/emu_wgmma.cu -o emu_wgmma
 */
#include "primitives_sm90.cuh"
#include "emu_check.h"

#include <cmath>
#include <string>

/* ---- host-side 16-bit helpers ------------------------------------------------------------------ */
static uint16_t f2h(float f, bool bf) {
  return bf ? __bfloat16_as_ushort(__float2bfloat16_rn(f)) : __half_as_ushort(__float2half_rn(f));
}
static double h2d(uint16_t b, bool bf) {
  if (bf) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  return __half2float(__ushort_as_half(b));
}

/* ---- the test's own shared-memory layouts ------------------------------------------------------
   An operand of R rows (M for A, N for B) and K = 32 columns, two k-steps of 16. Swizzle atoms
   (PTX ISA, "Shared Memory Matrix Layout", Table 38 and Figures 156-163) are 8 rows of W bytes;
   row r of an atom keeps its 16-byte chunks in the order c ^ pattern(r), where the pattern is
   r for 128B, r/2 for 64B and r/4 for 32B (the atom's rows, 128 bytes of address per step); with
   no swizzle a "row" is one 16-byte core-matrix row and nothing is permuted. */
enum { SW_NONE = 0, SW_128 = 1, SW_64 = 2, SW_32 = 3 };
static int row_bytes(int sw) {
  return sw == SW_NONE ? 16 : sw == SW_128 ? 128 : sw == SW_64 ? 64 : 32;
}
static int chunk_pattern(int sw, int r) {
  return sw == SW_128 ? r : sw == SW_64 ? r / 2 : sw == SW_32 ? r / 4 : 0;
}

struct layout {
  int sw;
  bool mn_major;
  int R;
  uint32_t lbo, sbo, step; /* descriptor strides; start advance for the second k-step */
  uint32_t bytes;          /* image size (a multiple of 1024) */
};

/* Byte offset of element (row mn, column k). */
static uint32_t elem_offset(const layout &l, int mn, int k) {
  const int W = row_bytes(l.sw), E = W / 2; /* elements per atom row */
  if (!l.mn_major) {
    if (l.sw == SW_NONE) /* 8x16-byte core matrices: k-blocks LBO apart, row groups SBO apart */
      return (uint32_t)(mn / 8) * l.sbo + (uint32_t)(k / 8) * l.lbo + (uint32_t)(mn % 8) * 16 +
             (uint32_t)(k % 8) * 2;
    /* rows of W bytes, one per mn; K beyond a row's E elements in a further region of R rows */
    int c = (k % E) / 8 ^ chunk_pattern(l.sw, mn % 8);
    return (uint32_t)(k / E) * (uint32_t)(l.R * W) + (uint32_t)mn * W + (uint32_t)c * 16 +
           (uint32_t)(k % 8) * 2;
  }
  if (l.sw == SW_NONE) /* core matrices of 8 k-rows x 8 mn: mn groups SBO apart, k-blocks LBO */
    return (uint32_t)(mn / 8) * l.sbo + (uint32_t)(k / 8) * l.lbo + (uint32_t)(k % 8) * 16 +
           (uint32_t)(mn % 8) * 2;
  /* atom rows: one per k, E mn-elements each; 8 k-rows per atom (SBO apart by k-block); atoms
     along mn LBO apart */
  int c = (mn % E) / 8 ^ chunk_pattern(l.sw, k % 8);
  return (uint32_t)(mn / E) * l.lbo + (uint32_t)(k / 8) * l.sbo + (uint32_t)(k % 8) * W +
         (uint32_t)c * 16 + (uint32_t)(mn % 8) * 2;
}

/* alt: a second choice of strides for the unswizzled layouts (B uses it), so that both LBO < SBO
   and LBO > SBO are covered. */
static layout make_layout(int sw, bool mn_major, int R, bool alt) {
  layout l;
  l.sw = sw;
  l.mn_major = mn_major;
  l.R = R;
  const uint32_t W = (uint32_t)row_bytes(sw);
  if (!mn_major) {
    if (sw == SW_NONE) {
      l.lbo = alt ? (uint32_t)R * 16 : 128; /* k-block stride */
      l.sbo = alt ? 128 : 512;              /* 8-row group stride */
      l.step = 2 * l.lbo;
    } else {
      l.lbo = 16; /* unused by the hardware for swizzled K-major */
      l.sbo = 8 * W;
      l.step = W == 32 ? (uint32_t)R * 32 : 32;
    }
  } else {
    if (sw == SW_NONE) {
      l.lbo = alt ? 128 : (uint32_t)R * 16; /* k-block stride */
      l.sbo = alt ? 512 : 128;              /* mn group stride */
      l.step = 2 * l.lbo;
    } else {
      l.sbo = 8 * W;     /* k-block stride */
      l.lbo = 4 * 8 * W; /* mn atom stride: 4 k-blocks of K = 32 */
      l.step = 2 * l.sbo;
    }
  }
  uint32_t end = 0;
  for (int mn = 0; mn < R; ++mn)
    for (int k = 0; k < 32; ++k) {
      uint32_t e = elem_offset(l, mn, k) + 2;
      end = e > end ? e : end;
    }
  l.bytes = (end + 1023) & ~1023u;
  return l;
}

/* The image: every element in place, everything else random garbage of the same kind. */
static std::vector<uint16_t> make_image(const layout &l,
                                        const std::vector<uint16_t> &M /* R x 32 */, bool bf,
                                        ec::rng &r) {
  std::vector<uint16_t> img(l.bytes / 2);
  for (uint16_t &v : img) v = f2h((float)(r.below(17) - 8), bf);
  std::vector<char> used(img.size(), 0);
  for (int mn = 0; mn < l.R; ++mn)
    for (int k = 0; k < 32; ++k) {
      uint32_t o = elem_offset(l, mn, k) / 2;
      if (used[o]) {
        fprintf(stderr, "test layout error: two elements at byte %u\n", 2 * o);
        exit(2);
      }
      used[o] = 1;
      img[o] = M[(size_t)mn * 32 + k];
    }
  return img;
}

/* ---- the kernel ----------------------------------------------------------------------------------- */
struct wg_cfg {
  int sw_a, sw_b;
  uint32_t lbo_a, sbo_a, step_a, lbo_b, sbo_b, step_b;
  uint32_t bytes_a, bytes_b;
  int scale_first; /* scale-d of the first k-step (the second always accumulates) */
  int desc_sw_b;   /* the swizzle mode B's descriptor claims (wrong_swizzle plants a mismatch) */
};

enum bug { BUG_NONE = 0, BUG_NO_WAIT, BUG_TOUCH, BUG_NO_FENCE };

template <int N, bool BF, bool AREG, int TA, int TB, int BUG>
__global__ void wgmma_kernel(const uint4 *img_a, const uint4 *img_b, const uint16_t *A,
                             const float *C, float *D, wg_cfg cfg) {
  DYN_SMEM(unsigned char, smem);
  const int t = threadIdx.x, w = t / 32, L = t % 32, g = L >> 2, q = L & 3;
  /* 1024-byte aligned tiles: the repeat of the 128B swizzle pattern */
  unsigned char *tile = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  uint4 *sa = reinterpret_cast<uint4 *>(tile);
  uint4 *sb = reinterpret_cast<uint4 *>(tile + cfg.bytes_a);
  if (!AREG)
    for (uint32_t i = t; i < cfg.bytes_a / 16; i += 128) sa[i] = img_a[i];
  for (uint32_t i = t; i < cfg.bytes_b / 16; i += 128) sb[i] = img_b[i];
  fence_proxy_async_shared();
  __syncthreads();

  float acc[N / 2];
  for (int r = 0; r < N / 2; ++r) {
    int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    acc[r] = cfg.scale_first ? C[row * N + col] : -1.0e6f; /* ignored when scale-d = 0 */
  }
  uint32_t a[2][4];
  for (int s = 0; s < 2; ++s)
    for (int j = 0; j < 4; ++j) {
      int row = 16 * w + g + 8 * (j & 1), col = 16 * s + 2 * q + 8 * (j >> 1);
      a[s][j] = (uint32_t)A[row * 32 + col] | ((uint32_t)A[row * 32 + col + 1] << 16);
    }
  const uint64_t da = AREG ? 0 : wgmma_desc(sa, cfg.lbo_a, cfg.sbo_a, cfg.sw_a);
  const uint64_t db = wgmma_desc(sb, cfg.lbo_b, cfg.sbo_b, cfg.desc_sw_b);
  wgmma_fence_operand(acc);
  if (BUG != BUG_NO_FENCE) wgmma_fence();
  for (int s = 0; s < 2; ++s) {
    const int sd = s ? 1 : cfg.scale_first;
    const uint64_t db_s = wgmma_desc_advance(db, s * cfg.step_b);
    if (AREG) {
      if (BF)
        wgmma_bf16_rs<N, TB>(acc, a[s], db_s, sd);
      else
        wgmma_f16_rs<N, TB>(acc, a[s], db_s, sd);
    } else {
      const uint64_t da_s = wgmma_desc_advance(da, s * cfg.step_a);
      if (BF)
        wgmma_bf16_ss<N, TA, TB>(acc, da_s, db_s, sd);
      else
        wgmma_f16_ss<N, TA, TB>(acc, da_s, db_s, sd);
    }
  }
  wgmma_commit();
  if (BUG == BUG_TOUCH) acc[N / 2 - 1] = 0.0f;
  if (BUG != BUG_NO_WAIT) wgmma_wait<0>();
  wgmma_fence_operand(acc);
  for (int r = 0; r < N / 2; ++r) {
    int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    D[row * N + col] = acc[r];
  }
}

/* ---- one case -------------------------------------------------------------------------------------- */
struct run_result {
  int bad;       /* elements off the reference */
  int nan;       /* NaN elements */
  bool launched; /* no launch error */
};

template <int N, bool BF, bool AREG, int TA, int TB, int BUG = BUG_NONE>
static run_result run_case(ec::rng &r, int sw_a, int sw_b, int scale_first,
                           int desc_sw_b = -1 /* -1: the layout's own */) {
  const layout la = make_layout(sw_a, TA != 0, 64, false);
  const layout lb = make_layout(sw_b, TB != 0, N, true);
  std::vector<uint16_t> A(64 * 32), B((size_t)N * 32); /* [m][k], [n][k] */
  std::vector<float> C((size_t)64 * N);
  for (uint16_t &v : A) v = f2h((float)(r.below(9) - 4), BF);
  for (uint16_t &v : B) v = f2h((float)(r.below(9) - 4), BF);
  for (float &v : C) v = (float)(r.below(201) - 100);
  std::vector<uint16_t> ia = make_image(la, A, BF, r), ib = make_image(lb, B, BF, r);
  wg_cfg cfg;
  cfg.sw_a = sw_a;
  cfg.sw_b = sw_b;
  cfg.lbo_a = la.lbo;
  cfg.sbo_a = la.sbo;
  cfg.step_a = la.step;
  cfg.lbo_b = lb.lbo;
  cfg.sbo_b = lb.sbo;
  cfg.step_b = lb.step;
  cfg.bytes_a = AREG ? 0 : la.bytes;
  cfg.bytes_b = lb.bytes;
  cfg.scale_first = scale_first;
  cfg.desc_sw_b = desc_sw_b < 0 ? sw_b : desc_sw_b;
  ec::dev<uint16_t> dia(ia), dib(ib), dA(A);
  ec::dev<float> dC(C), dD((size_t)64 * N);
  const size_t smem = 1024 + cfg.bytes_a + cfg.bytes_b;
  auto kern = wgmma_kernel<N, BF, AREG, TA, TB, BUG>;
  cudaFuncSetAttribute((const void *)kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  launch(dim3(1), dim3(128), smem, 0, kern, reinterpret_cast<const uint4 *>(dia.p),
         reinterpret_cast<const uint4 *>(dib.p), dA.p, dC.p, dD.p, cfg);
  run_result res{0, 0, true};
  cudaError_t e1 = cudaGetLastError(), e2 = cudaDeviceSynchronize();
  res.launched = e1 == cudaSuccess && e2 == cudaSuccess;
  std::vector<float> Dh;
  {
    ec::dump_as off(BUG == BUG_NONE && desc_sw_b < 0 ? ec::DUMP_EXACT : ec::DUMP_OFF);
    Dh = dD.get();
  }
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = scale_first ? C[(size_t)m * N + n] : 0.0;
      for (int k = 0; k < 32; ++k) ref += h2d(A[m * 32 + k], BF) * h2d(B[(size_t)n * 32 + k], BF);
      float got = Dh[(size_t)m * N + n];
      res.nan += std::isnan(got);
      res.bad += !((double)got == ref);
    }
  return res;
}

static const char *sw_name(int sw) {
  return sw == SW_NONE ? "none" : sw == SW_128 ? "128B" : sw == SW_64 ? "64B" : "32B";
}

template <int N, bool BF, bool AREG, int TA, int TB>
static void check_case(ec::rng &r, int sw_a, int sw_b, int scale_first) {
  run_result res = run_case<N, BF, AREG, TA, TB>(r, sw_a, sw_b, scale_first);
  CHECK(res.launched && res.bad == 0,
        "wgmma m64n%dk16 %s A %s (%s-major, swizzle %s) B %s-major swizzle %s scale-d %d: "
        "%s, %d of %d elements off",
        N, BF ? "bf16" : "f16", AREG ? "registers" : "smem", TA ? "M" : "K", sw_name(sw_a),
        TB ? "N" : "K", sw_name(sw_b), scale_first, res.launched ? "ran" : "launch failed", res.bad,
        64 * N);
}

/* Every swizzle mode for both operands (A's mode rotated against B's), K- and MN-major. */
template <int N, bool BF>
static void sweep(ec::rng &r) {
  for (int sw = 0; sw < 4; ++sw) {
    const int sw_a = (sw + 1) % 4;
    check_case<N, BF, false, 0, 0>(r, sw_a, sw, sw & 1);
    check_case<N, BF, false, 1, 1>(r, sw, sw_a, (sw + 1) & 1);
    check_case<N, BF, true, 0, 0>(r, 0, sw, sw & 1);
    check_case<N, BF, true, 0, 1>(r, 0, sw, (sw + 1) & 1);
  }
}

static void test_groups(ec::rng &r); /* below */

static void self_test() {
  ec::rng r(90);
  sweep<64, false>(r);
  sweep<64, true>(r);
  sweep<8, false>(r);
  sweep<256, true>(r);
  /* the remaining N, a few layouts each */
  check_case<16, false, false, 0, 1>(r, SW_128, SW_32, 1);
  check_case<16, true, true, 0, 0>(r, 0, SW_NONE, 0);
  check_case<32, true, false, 1, 0>(r, SW_64, SW_128, 1);
  check_case<32, false, true, 0, 1>(r, 0, SW_64, 1);
  check_case<128, false, false, 0, 1>(r, SW_128, SW_128, 1);
  check_case<128, true, true, 0, 0>(r, 0, SW_32, 0);
  test_groups(r);
}

/* ---- groups: wait_group 1 retires the older group only ---------------------------------------------
   Group 0: acc1 = step 0 product; group 1: acc2 = step 1 product. After wait<1> acc1 is final and
   acc2 still in flight (the emulator's poison; undefined on a GPU); after wait<0> both are. Then,
   fenced again, acc1 += step 1 product from the retired registers. */
template <int N>
__global__ void group_kernel(const uint4 *img_a, const uint4 *img_b, wg_cfg cfg, float *D1,
                             float *D2, float *D3, float *seen) {
  DYN_SMEM(unsigned char, smem);
  const int t = threadIdx.x, w = t / 32, L = t % 32, g = L >> 2, q = L & 3;
  unsigned char *tile = smem + ((1024u - (wgmma_smem_offset(smem) & 1023u)) & 1023u);
  uint4 *sa = reinterpret_cast<uint4 *>(tile);
  uint4 *sb = reinterpret_cast<uint4 *>(tile + cfg.bytes_a);
  for (uint32_t i = t; i < cfg.bytes_a / 16; i += 128) sa[i] = img_a[i];
  for (uint32_t i = t; i < cfg.bytes_b / 16; i += 128) sb[i] = img_b[i];
  fence_proxy_async_shared();
  __syncthreads();
  const uint64_t da = wgmma_desc(sa, cfg.lbo_a, cfg.sbo_a, cfg.sw_a);
  const uint64_t db = wgmma_desc(sb, cfg.lbo_b, cfg.sbo_b, cfg.sw_b);
  float acc1[N / 2], acc2[N / 2];
  wgmma_fence();
  wgmma_f16_ss<N>(acc1, da, db, 0);
  wgmma_commit();
  wgmma_f16_ss<N>(acc2, wgmma_desc_advance(da, cfg.step_a), wgmma_desc_advance(db, cfg.step_b), 0);
  wgmma_commit();
  wgmma_wait<1>();
  wgmma_fence_operand(acc1);
  for (int r = 0; r < N / 2; ++r) {
    int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    D1[row * N + col] = acc1[r];
  }
  seen[t] = acc2[0]; /* still in flight */
  wgmma_wait<0>();
  wgmma_fence_operand(acc2);
  for (int r = 0; r < N / 2; ++r) {
    int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    D2[row * N + col] = acc2[r];
  }
  wgmma_fence();
  wgmma_f16_ss<N>(acc1, wgmma_desc_advance(da, cfg.step_a), wgmma_desc_advance(db, cfg.step_b), 1);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operand(acc1);
  for (int r = 0; r < N / 2; ++r) {
    int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
    D3[row * N + col] = acc1[r];
  }
}

static void test_groups(ec::rng &r) {
  constexpr int N = 16;
  const layout la = make_layout(SW_64, false, 64, false), lb = make_layout(SW_NONE, false, N, true);
  std::vector<uint16_t> A(64 * 32), B(N * 32);
  for (uint16_t &v : A) v = f2h((float)(r.below(9) - 4), false);
  for (uint16_t &v : B) v = f2h((float)(r.below(9) - 4), false);
  std::vector<uint16_t> ia = make_image(la, A, false, r), ib = make_image(lb, B, false, r);
  wg_cfg cfg{};
  cfg.sw_a = la.sw;
  cfg.sw_b = lb.sw;
  cfg.lbo_a = la.lbo;
  cfg.sbo_a = la.sbo;
  cfg.step_a = la.step;
  cfg.lbo_b = lb.lbo;
  cfg.sbo_b = lb.sbo;
  cfg.step_b = lb.step;
  cfg.bytes_a = la.bytes;
  cfg.bytes_b = lb.bytes;
  cfg.desc_sw_b = lb.sw;
  ec::dev<uint16_t> dia(ia), dib(ib);
  ec::dev<float> D1(64 * N), D2(64 * N), D3(64 * N), seen(128);
  const size_t smem = 1024 + cfg.bytes_a + cfg.bytes_b;
  launch(dim3(1), dim3(128), smem, 0, group_kernel<N>, reinterpret_cast<const uint4 *>(dia.p),
         reinterpret_cast<const uint4 *>(dib.p), cfg, D1.p, D2.p, D3.p, seen.p);
  CHECK_LAUNCH("group_kernel");
  std::vector<float> h1 = D1.get(), h2 = D2.get(), h3 = D3.get();
  std::vector<float> hs;
  {
    ec::dump_as off(ec::DUMP_OFF); /* undefined on a GPU */
    hs = seen.get();
  }
  int bad = 0, early = 0;
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < N; ++n) {
      double s0 = 0, s1 = 0;
      for (int k = 0; k < 16; ++k) {
        s0 += h2d(A[m * 32 + k], false) * h2d(B[n * 32 + k], false);
        s1 += h2d(A[m * 32 + 16 + k], false) * h2d(B[n * 32 + 16 + k], false);
      }
      bad += h1[m * N + n] != s0;
      bad += h2[m * N + n] != s1;
      bad += h3[m * N + n] != s0 + s1;
    }
  for (int t = 0; t < 128; ++t) early += !std::isnan(hs[t]);
  CHECK(bad == 0, "wgmma groups: %d of %d results wrong", bad, 3 * 64 * N);
  CHECK(!SEQK_ON_EMU || early == 0, "wgmma groups: %d threads read a result before its wait",
        early);
}

/* ---- planted bugs ------------------------------------------------------------------------------ */
#if SEQK_ON_EMU
static const char *reports() { return seqk_emu_reports(); }
static void clear_reports() { seqk_emu_clear_reports(); }
#else /* a GPU run has no emulator reports (the cases that need them are skipped) */
static const char *reports() { return ""; }
static void clear_reports() {}
#endif
static bool report_has(const std::string &needle) {
  return std::string(reports()).find(needle) != std::string::npos;
}

static void planted(const std::string &c) {
  ec::rng r(91);
  clear_reports();
  /* The fixed kernel runs clean in the same process. */
  run_result ok = run_case<32, false, false, 0, 0>(r, SW_128, SW_128, 1);
  CHECK(ok.launched && ok.bad == 0, "the fixed kernel: %d elements off", ok.bad);
  if (c == "wrong_swizzle") {
    run_result bad = run_case<32, false, false, 0, 0>(r, SW_128, SW_128, 1, SW_64);
    CHECK(bad.bad > 0, "B laid out for 128B swizzle, descriptor 64B: the result still matched");
    printf("wrong swizzle mode: %d of %d elements off\n", bad.bad, 64 * 32);
    return;
  }
  if (!SEQK_ON_EMU) {
    printf("planted %s: only the emulator can report it; skipped\n", c.c_str());
    return;
  }
  if (c == "missing_wait") {
    run_result bad = run_case<32, false, false, 0, 0, BUG_NO_WAIT>(r, SW_128, SW_128, 1);
    CHECK(!bad.launched && report_has("still in flight"),
          "wgmma without wait_group not reported: %s", reports());
    CHECK(bad.nan == 64 * 32, "without the wait only %d of %d reads saw the poison", bad.nan,
          64 * 32);
  } else if (c == "touched") {
    run_result bad = run_case<32, true, true, 0, 1, BUG_TOUCH>(r, 0, SW_64, 1);
    CHECK(!bad.launched && report_has("accumulator registers touched between wgmma issue and wait"),
          "accumulator written while in flight not reported: %s", reports());
  } else if (c == "missing_fence") {
    run_result bad = run_case<32, false, false, 0, 0, BUG_NO_FENCE>(r, SW_NONE, SW_32, 0);
    CHECK(!bad.launched && report_has("without a wgmma.fence"),
          "wgmma without wgmma.fence not reported: %s", reports());
  } else {
    fprintf(stderr, "usage: emu_wgmma [missing_wait|touched|missing_fence|wrong_swizzle]\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc > 1)
    planted(argv[1]);
  else
    self_test();
  return ec::finish();
}
