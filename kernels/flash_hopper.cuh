/*
 * flash_hopper.cuh - the Hopper (sm_90a) fused attention kernel: FlashAttention-3's design in our
 * own code, over the same parameters, plan and row rules as the sm_80 tensor-core kernel
 * (flash_attention.cuh: plan_block, key_first / key_limit, row_lse, the repair of non-finite rows).
 * Instantiated for f16 and bf16 at head dims hp_head_dims (flash_hopper_f16.cu / _bf16.cu), compiled
 * for sm_90a only in the real build (CMakeLists.txt) and as C++ against the emulator (emu/), where
 * an emulated device reporting compute capability 9.0 (SEQK_EMU_CC=90) runs it in the tests.
 *
 * Block: three warpgroups (384 threads), BM = 128 flattened rows (as flash_attention.cuh folds
 * grouped heads), key tiles of BN.
 *   warpgroup 0, the producer: lowers its registers to 24 (setmaxnreg) and one elected thread
 *     issues the TMA loads of K and V tiles (tensor maps over [B, Sk, Hk, D] made by the host,
 *     128-byte swizzle, one box per 64-column panel) into a ring of STAGES stages, each operand of
 *     a stage guarded by a "full" mbarrier (its bytes counted by the copies) and an "empty" one
 *     the consumers arrive on when their last wgmma reading it has retired (K and V apart: K is
 *     free once S is, while P V still reads V).
 *   warpgroups 1 and 2, the consumers: raise their registers to 240; each owns 64 rows. Q is
 *     loaded once by the consumer's own threads (its rows may span grouped heads, which no single
 *     TMA box describes) into the same swizzled layout, negated for a negative scale. Per key tile:
 *     S = Q K^T by wgmma (both operands in shared memory, K-major), the online softmax in
 *     registers (masks, softcap and ALiBi in the masked body as in the sm_80 kernel), P converted
 *     in registers to the A fragments of O += P V by wgmma (V in shared memory, MN-major).
 *     Overlap within a warpgroup: step n issues S(n), then P(n-1) V(n-1), and runs the softmax of
 *     S(n) while that product is in flight (wgmma.wait_group 1); O is rescaled once it retired.
 *     Ping-pong between the two: each issues its GEMMs only on its turn (named barriers), so one
 *     warpgroup's softmax overlaps the other's GEMMs.
 * Shared memory (from a 1024-byte aligned base; every tile is a stack of 64-column panels of
 * 128-byte rows with the 128-byte swizzle, the layout TMA writes and wgmma reads):
 *   Q [DP/64][BM][64], K and V [STAGES][DP/64][BN][64].
 * Descriptors: K-major (Q, K): SBO 1024 (8 rows of 128 bytes), the k-step's 32 bytes added to the
 * start within a panel, panels DP/64 apart as separate k-steps. MN-major (V as B of P V): SBO 1024
 * between groups of 8 keys, LBO = BN * 128 between 64-column panels, 2048 bytes per 16-key step.
 *
 * Packed sequences (p.k_start): the maps span the packed [T, Hk, D] rows as one batch, a tile's key
 * coordinate is the sequence's first row plus the key index, Q, O and lse rows start at q_start,
 * and rows past a sequence's queries (the next sequence's) are left alone, as in the sm_80 kernel.
 * Keys at or past a batch's length but inside the tensor (padding rows of a shorter sequence, or
 * the next packed sequence's) are loaded as they are (TMA zero-fills only past the tensor): their
 * scores are masked, and a NaN or infinity in their V rows, which 0 * v would carry into o, sends
 * the row to the repair (the `misses` rule below), which recomputes it from global memory with
 * only its visible keys.
 */
#ifndef SEQK_KERNELS_FLASH_HOPPER_CUH
#define SEQK_KERNELS_FLASH_HOPPER_CUH

#include "flash_attention.cuh"
#include "primitives_sm90.cuh"

#include <cuda.h>

namespace seqk_flash {

/* Key tile and ring depth. BN = 128 at DP <= 128 (S is 64 floats per consumer thread, O 32 or
   64); at DP 256 O alone is 128 floats, so 64-key tiles keep S at 32. Shared memory 81 / 161 /
   193 KB (of the 227 KB an H100/H200 block may take). */
template <int DP>
struct hp_traits;
template <>
struct hp_traits<64> {
  static constexpr int BN = 128, STAGES = 2;
};
template <>
struct hp_traits<128> {
  static constexpr int BN = 128, STAGES = 2;
};
template <>
struct hp_traits<256> {
  static constexpr int BN = 64, STAGES = 2;
};
constexpr int kHpBM = 128;      /* two consumer warpgroups x 64 rows */
constexpr int kHpThreads = 384; /* producer + two consumers */
constexpr int kHpPanel = 64;    /* columns of a 128-byte swizzled panel (2-byte elements) */
constexpr int kHpProducerRegs = 24, kHpConsumerRegs = 240;
constexpr int kHpTurnBar = 3; /* named barriers 3, 4: the consumers' turns (1, 2: their Q loads) */

template <int DP>
constexpr size_t hp_smem_bytes() {
  return 1024 + (size_t)kHpBM * DP * 2 + (size_t)4 * hp_traits<DP>::STAGES * hp_traits<DP>::BN * DP;
}

/* The kernel's argument: the plan's parameters and the K and V tensor maps (4D, innermost first:
   {D, Sk, Hk, B}, box {64, BN, 1, 1}, 128-byte swizzle; flash_hopper.cu). __grid_constant__: the
   TMA unit reads the maps from the parameter space. */
struct hopper_args {
  CUtensorMap k_map, v_map;
  params p;
};

/* Byte offset of element (row, col) in a stack of swizzled panels with `rows` rows per panel. */
__device__ __forceinline__ uint32_t hp_swizzled(int rows, int row, int col) {
  const int panel = col / kHpPanel, chunk = (col % kHpPanel) / 8;
  return (uint32_t)((panel * rows + row) * 128 + ((chunk ^ (row & 7)) << 4) + (col % 8) * 2);
}

template <typename T>
struct hp_ops;
template <>
struct hp_ops<__half> {
  template <int N>
  static __device__ __forceinline__ void ss(float (&d)[N / 2], uint64_t a, uint64_t b,
                                            int scale_d SEQK_SITE_DECL) {
    wgmma_f16_ss<N, 0, 0>(d, a, b, scale_d SEQK_SITE_FWD);
  }
  template <int N>
  static __device__ __forceinline__ void rs_mn(float (&d)[N / 2], const uint32_t (&a)[4],
                                               uint64_t b SEQK_SITE_DECL) {
    wgmma_f16_rs<N, 1>(d, a, b, 1 SEQK_SITE_FWD);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return pack_half2(__float2half_rn(lo), __float2half_rn(hi));
  }
  static constexpr CUtensorMapDataType kMapType = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
};
template <>
struct hp_ops<__nv_bfloat16> {
  template <int N>
  static __device__ __forceinline__ void ss(float (&d)[N / 2], uint64_t a, uint64_t b,
                                            int scale_d SEQK_SITE_DECL) {
    wgmma_bf16_ss<N, 0, 0>(d, a, b, scale_d SEQK_SITE_FWD);
  }
  template <int N>
  static __device__ __forceinline__ void rs_mn(float (&d)[N / 2], const uint32_t (&a)[4],
                                               uint64_t b SEQK_SITE_DECL) {
    wgmma_bf16_rs<N, 1>(d, a, b, 1 SEQK_SITE_FWD);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return pack_bf162(__float2bfloat16_rn(lo), __float2bfloat16_rn(hi));
  }
  static constexpr CUtensorMapDataType kMapType = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
};

template <typename T, int DP>
__global__ void __launch_bounds__(kHpThreads, 1)
    flash_hopper_kernel(const __grid_constant__ hopper_args args) {
  using ops = hp_ops<T>;
  constexpr int BN = hp_traits<DP>::BN, STAGES = hp_traits<DP>::STAGES, BM = kHpBM;
  constexpr int PANELS = DP / kHpPanel;
  constexpr uint32_t KV_BYTES = (uint32_t)BN * DP * 2; /* one stage of K (or V) */
  static_assert(DP <= 32 * kRepairCols, "repair_row covers Dv <= 32 * kRepairCols");
  const params &p = args.p;

  DYN_SMEM(unsigned char, smem_raw);
  const uint32_t mis = wgmma_smem_offset(smem_raw) & 1023u;
  unsigned char *const smem = smem_raw + ((1024u - mis) & 1023u);
  unsigned char *const sQ = smem;                           /* [PANELS][BM][64] */
  unsigned char *const sK = sQ + (size_t)BM * DP * 2;       /* [STAGES][PANELS][BN][64] */
  unsigned char *const sV = sK + (size_t)STAGES * KV_BYTES; /* [STAGES][PANELS][BN][64] */
  SMEM_ARRAY(uint64_t, bar, 4 * STAGES); /* full K, full V, empty K, empty V: STAGES each */
  SMEM_ARRAY(block_plan, s_plan, 1);

  const int tid = (int)threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wg = warp >> 2;
  const int b = (int)blockIdx.z, kh = (int)blockIdx.y;
  if (tid == 0) {
    s_plan[0] = plan_block<BM, BN>(p);
    const block_plan &w0 = s_plan[0];
    /* Consumers whose 64 rows all lie past the tile's last row skip the work (decode): the empty
       barriers count the warps of the live ones. */
    const int live_wgs = w0.r1 - w0.r0 > 64 ? 2 : 1;
    for (int s = 0; s < STAGES; ++s) {
      mbarrier_init(&bar[s], 1);
      mbarrier_init(&bar[STAGES + s], 1);
      mbarrier_init(&bar[2 * STAGES + s], 4 * live_wgs);
      mbarrier_init(&bar[3 * STAGES + s], 4 * live_wgs);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  const block_plan &w = s_plan[0];
  const int ntile = w.kbeg < w.kend ? (w.kend - w.kbeg + BN - 1) / BN : 0;
  uint64_t *const full_k = bar, *const full_v = bar + STAGES;
  uint64_t *const empty_k = bar + 2 * STAGES, *const empty_v = bar + 3 * STAGES;

  if (wg == 0) {
    /* ---- producer ---- */
    setmaxnreg_dec<kHpProducerRegs>();
    if (ntile > 0 && warp == 0 && elect_sync(0xffffffffu)) {
      tma_prefetch_map(&args.k_map);
      tma_prefetch_map(&args.v_map);
      const int row0 = w.k0, mb = p.k_start ? 0 : b; /* packed: one batch, rows from k_start */
      for (int it = 0; it < ntile; ++it) {
        /* K and V of a stage are freed apart (K once S retired, V once P V did): K(it) can land
           while the consumers still multiply by V(it - STAGES). */
        const int st = it % STAGES;
        const uint32_t freed = (uint32_t)(((it / STAGES) & 1) ^ 1);
        const int n0 = w.kbeg + it * BN;
        if (it >= STAGES) mbarrier_wait(&empty_k[st], freed);
        mbarrier_arrive_expect_tx(&full_k[st], KV_BYTES);
        SEQK_UNROLL
        for (int pn = 0; pn < PANELS; ++pn)
          tma_load_4d(sK + (size_t)st * KV_BYTES + (size_t)pn * BN * 128, &args.k_map, &full_k[st],
                      pn * kHpPanel, row0 + n0, kh, mb);
        if (it >= STAGES) mbarrier_wait(&empty_v[st], freed);
        mbarrier_arrive_expect_tx(&full_v[st], KV_BYTES);
        SEQK_UNROLL
        for (int pn = 0; pn < PANELS; ++pn)
          tma_load_4d(sV + (size_t)st * KV_BYTES + (size_t)pn * BN * 128, &args.v_map, &full_v[st],
                      pn * kHpPanel, row0 + n0, kh, mb);
      }
    }
    return;
  }

  /* ---- consumers ---- */
  setmaxnreg_inc<kHpConsumerRegs>();
  const int cw = wg - 1;              /* consumer 0 or 1: rows 64 cw .. 64 cw + 63 */
  if (64 * cw >= w.r1 - w.r0) return; /* no row of this tile (the barriers do not count it) */
  const int wq = warp & 3, g = lane >> 2, t4 = lane & 3;
  const int ctid = tid - 128 * wg; /* 0..127 within the warpgroup */

  /* Q: this warpgroup's 64 rows, 16-byte chunks; rows past the tile or the batch's queries and
     columns past D are zero; a negative scale negates Q (exact), see flash_tc_kernel. */
  {
    const T *qb = static_cast<const T *>(p.q) + q_rows_off(w, b, p.q_sb, p.q_ss);
    const uint32_t neg = p.scale_log2 < 0.0f ? 0x80008000u : 0u;
    for (int ch = ctid; ch < 64 * (DP / 8); ch += 128) {
      const int row = ch / (DP / 8), col = (ch % (DP / 8)) * 8, r = w.r0 + 64 * cw + row;
      uint4 v4 = make_uint4(0u, 0u, 0u, 0u);
      if (r < w.r1 && col < p.D) {
        int h, i;
        row_coords(p, kh, r, &h, &i);
        if (i < w.L.q) {
          v4 = *reinterpret_cast<const uint4 *>(qb + (int64_t)h * p.q_sh + (int64_t)i * p.q_ss +
                                                col);
          v4.x ^= neg;
          v4.y ^= neg;
          v4.z ^= neg;
          v4.w ^= neg;
        }
      }
      *reinterpret_cast<uint4 *>(sQ + hp_swizzled(BM, 64 * cw + row, col)) = v4;
    }
    fence_proxy_async_shared(); /* generic writes -> the async proxy wgmma reads through */
    named_barrier_sync(1 + cw, 128);
  }

  /* This thread's two rows (hf 0: g, 1: g + 8 of its warp's 16) and their key bounds. */
  int lim[2], first[2], hrow[2], irow[2];
  float ab_slope[2], ab_pos[2];
  SEQK_UNROLL
  for (int hf = 0; hf < 2; ++hf) {
    const int r = w.r0 + 64 * cw + 16 * wq + g + 8 * hf;
    lim[hf] = first[hf] = 0;
    hrow[hf] = irow[hf] = -1;
    ab_slope[hf] = ab_pos[hf] = 0.0f;
    int h = 0, i = 0;
    if (r < w.r1) row_coords(p, kh, r, &h, &i);
    if (r < w.r1 && row_written(p, w, i)) { /* else no row of this thread: nothing written */
      hrow[hf] = h;
      irow[hf] = i;
      lim[hf] = key_limit(p, w.L, irow[hf]);
      first[hf] = key_first(p, w.L, irow[hf]);
      if (p.alibi) {
        ab_slope[hf] = p.alibi[hrow[hf]] * p.alibi_raw;
        ab_pos[hf] = (float)(irow[hf] + (w.L.k - w.L.q) - 2 * t4);
      }
    }
  }

  float o[DP / 2];
  SEQK_UNROLL
  for (int e = 0; e < DP / 2; ++e) o[e] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const float c = p.scale_abs_log2;
  const uint32_t q_panel0 = wgmma_smem_offset(sQ) + 64u * cw * 128u;
  const uint32_t k_base = wgmma_smem_offset(sK), v_base = wgmma_smem_offset(sV);
  /* Ping-pong (both consumers live): consumer cw issues its GEMMs only on its turn (named barrier
     kHpTurnBar + cw, completed by the other consumer's arrival after it issued its own), so one
     warpgroup's softmax runs while the other's GEMMs occupy the tensor cores. Consumer 1 opens
     consumer 0's first turn and skips its own last arrival: ntile turns each, every arrival
     waited on. */
  const bool pingpong = w.r1 - w.r0 > 64;
  if (pingpong && cw == 1) named_barrier_arrive(kHpTurnBar, 256);

  /* One step per key tile `it`: issue S(it) = Q K(it)^T and, behind it, O += P(it-1) V(it-1);
     retire S(it) (wait<1>: groups retire in order) and run its softmax while the P V product is
     still in flight; then retire that, rescale O and pack P(it) for the next step. The last tile's
     P V follows the loop. */
  uint32_t pa[BN / 16][4]; /* P(it-1): the A fragments of the P V product */
  auto issue_pv = [&](int it) {
    const int st = it % STAGES;
    SEQK_UNROLL
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint64_t dv = wgmma_desc_encode(v_base + (uint32_t)st * KV_BYTES + (uint32_t)kk * 2048u,
                                            (uint32_t)BN * 128u, 1024u, WGMMA_SWIZZLE_128B);
      ops::template rs_mn<DP>(o, pa[kk], dv);
    }
    wgmma_commit();
  };
  auto retire_pv = [&](int it) {
    wgmma_wait<0>();
    wgmma_fence_operand(o);
    __syncwarp(); /* this warp's reads of V(it) are done: one arrival per warp */
    if (lane == 0) mbarrier_arrive(&empty_v[it % STAGES]);
  };
  auto step = [&](auto masked_tag, auto first_tag, int it) {
    constexpr bool kMasked = decltype(masked_tag)::value, kFirst = decltype(first_tag)::value;
    const int st = it % STAGES, n0 = w.kbeg + it * BN;
    float s[BN / 2];
    mbarrier_wait(&full_k[st], (uint32_t)((it / STAGES) & 1));
    if (!kFirst) mbarrier_wait(&full_v[(it - 1) % STAGES], (uint32_t)(((it - 1) / STAGES) & 1));
    if (pingpong) named_barrier_sync(kHpTurnBar + cw, 256);
    wgmma_fence();
    SEQK_UNROLL
    for (int ks = 0; ks < DP / 16; ++ks) {
      const uint32_t kin = (uint32_t)(ks / 4), kb = (uint32_t)(ks % 4) * 32u;
      const uint64_t da =
          wgmma_desc_encode(q_panel0 + kin * BM * 128u + kb, 16u, 1024u, WGMMA_SWIZZLE_128B);
      const uint64_t db = wgmma_desc_encode(k_base + (uint32_t)st * KV_BYTES + kin * BN * 128u + kb,
                                            16u, 1024u, WGMMA_SWIZZLE_128B);
      ops::template ss<BN>(s, da, db, ks > 0 ? 1 : 0);
    }
    wgmma_commit();
    if (!kFirst) issue_pv(it - 1);
    if (pingpong && !(cw == 1 && it == ntile - 1)) named_barrier_arrive(kHpTurnBar + 1 - cw, 256);
    wgmma_wait<kFirst ? 0 : 1>();
    wgmma_fence_operand(s);
    __syncwarp(); /* this warp's reads of K(it) are done */
    if (lane == 0) mbarrier_arrive(&empty_k[st]);

    if constexpr (kMasked) {
      if (p.softcap_log2 > 0.0f) {
        SEQK_UNROLL
        for (int e = 0; e < BN / 2; ++e) s[e] = softcap_raw(p, s[e]);
      }
      if (p.alibi) {
        SEQK_UNROLL
        for (int hf = 0; hf < 2; ++hf) {
          const float base = (float)n0 - ab_pos[hf];
          SEQK_UNROLL
          for (int nb = 0; nb < BN / 8; ++nb) {
            SEQK_UNROLL
            for (int e = 0; e < 2; ++e) {
              float &t = s[4 * nb + 2 * hf + e];
              t = fmaf(-ab_slope[hf], fabsf(base + (float)(nb * 8 + e)), t);
            }
          }
        }
      }
    }
    float alpha[2];
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      if constexpr (kMasked) {
        const int vis = lim[hf] - n0 - 2 * t4, vlo = first[hf] - n0 - 2 * t4;
        SEQK_UNROLL
        for (int nb = 0; nb < BN / 8; ++nb) {
          SEQK_UNROLL
          for (int e = 0; e < 2; ++e)
            if (nb * 8 + e >= vis || nb * 8 + e < vlo) s[4 * nb + 2 * hf + e] = -INFINITY;
        }
      }
      float mx = s[2 * hf];
      SEQK_UNROLL
      for (int k = 1; k < BN / 4; ++k) mx = fmaxf(mx, s[4 * (k >> 1) + 2 * hf + (k & 1)]);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[hf], mx);
      const float mc = (kMasked && m_new == -INFINITY) ? 0.0f : m_new * c;
      alpha[hf] = exp2_approx(fmaf(m[hf], c, -mc));
      m[hf] = m_new;
      float sum = 0.0f;
      SEQK_UNROLL
      for (int k = 0; k < BN / 4; ++k) {
        float &t = s[4 * (k >> 1) + 2 * hf + (k & 1)];
        t = exp2_approx(fmaf(t, c, -mc));
        sum = k == 0 ? t : sum + t;
      }
      l[hf] = fmaf(l[hf], alpha[hf], sum);
    }
    if (!kFirst) retire_pv(it - 1);
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      SEQK_UNROLL
      for (int nd = 0; nd < DP / 8; ++nd) {
        o[4 * nd + 2 * hf] *= alpha[hf];
        o[4 * nd + 2 * hf + 1] *= alpha[hf];
      }
    }
    /* S's accumulator blocks 2kk, 2kk+1 are the A fragment of k-step kk (primitives_sm90.cuh). */
    SEQK_UNROLL
    for (int kk = 0; kk < BN / 16; ++kk) {
      SEQK_UNROLL
      for (int e = 0; e < 4; ++e) pa[kk][e] = ops::pack(s[8 * kk + 2 * e], s[8 * kk + 2 * e + 1]);
    }
  };
  /* The first tile through the masked body whatever its kind (it holds no P V to overlap; the
     steady loops then have one shape for the compiler's wgmma pipeline analysis). */
  if (ntile > 0) step(std::true_type{}, std::true_type{}, 0);
  int it = 1;
  for (const int nhead = w.nhead; it < nhead; ++it) step(std::true_type{}, std::false_type{}, it);
  for (const int nfull = w.nfull; it < nfull; ++it) step(std::false_type{}, std::false_type{}, it);
  for (; it < ntile; ++it) step(std::true_type{}, std::false_type{}, it);
  if (ntile > 0) {
    mbarrier_wait(&full_v[(ntile - 1) % STAGES], (uint32_t)(((ntile - 1) / STAGES) & 1));
    wgmma_fence();
    issue_pv(ntile - 1);
    retire_pv(ntile - 1);
  }

  /* ---- epilogue (as flash_tc_kernel's, rows written straight from the accumulators) ---- */
  float inv[2];
  bool sees[2], misses[2];
  /* keys past the batch's length inside the tensor were multiplied (see the header; packed: the
     next sequences' keys) */
  const bool padded_keys = (p.k_start || w.L.k < p.Sk) && w.kbeg + ntile * BN > w.L.k;
  SEQK_UNROLL
  for (int hf = 0; hf < 2; ++hf) {
    if (m[hf] != -INFINITY) m[hf] *= c;
    float sum = l[hf];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    l[hf] = sum;
    sees[hf] = sees_key(w, first[hf], lim[hf]);
    misses[hf] = misses_key(w, first[hf], lim[hf]) || padded_keys;
    inv[hf] = row_inv(sum, sees[hf]);
  }
  unsigned todo[2];
  SEQK_UNROLL
  for (int hf = 0; hf < 2; ++hf) {
    int bad = 0;
    SEQK_UNROLL
    for (int nd = 0; nd < DP / 8; ++nd)
      bad |= !isfinite(o[4 * nd + 2 * hf]) || !isfinite(o[4 * nd + 2 * hf + 1]);
    bad |= __shfl_xor_sync(0xffffffffu, bad, 1);
    bad |= __shfl_xor_sync(0xffffffffu, bad, 2);
    todo[hf] = __ballot_sync(0xffffffffu, bad && t4 == 0 && irow[hf] >= 0 && misses[hf]);
  }

  SEQK_UNROLL
  for (int hf = 0; hf < 2; ++hf) {
    if (irow[hf] < 0) continue;
    const int h = hrow[hf], i = irow[hf];
    if (p.splits > 1) {
      const int64_t pr = part_row(p, w.split, b, h, i);
      float *dst = p.part_o + pr * p.Dv;
      SEQK_UNROLL
      for (int nd = 0; nd < DP / 8; ++nd) {
        const int e = nd * 8 + 2 * t4;
        if (e < p.Dv) {
          dst[e] = o[4 * nd + 2 * hf] * inv[hf];
          dst[e + 1] = o[4 * nd + 2 * hf + 1] * inv[hf];
        }
      }
      if (t4 == 0) p.part_lse[pr] = row_lse(m[hf], l[hf], sees[hf], -INFINITY);
    } else {
      T *dst = static_cast<T *>(p.o) + q_rows_off(w, b, p.o_sb, p.o_ss) + (int64_t)h * p.o_sh +
               (int64_t)i * p.o_ss;
      SEQK_UNROLL
      for (int nd = 0; nd < DP / 8; ++nd) {
        const int e = nd * 8 + 2 * t4;
        if (e < p.Dv) {
          dst[e] = from_float<T>(o[4 * nd + 2 * hf] * inv[hf]);
          dst[e + 1] = from_float<T>(o[4 * nd + 2 * hf + 1] * inv[hf]);
        }
      }
      if (p.lse && t4 == 0)
        p.lse[q_rows_off(w, b, p.l_sb, p.l_ss) + (int64_t)h * p.l_sh + (int64_t)i * p.l_ss] =
            row_lse(m[hf], l[hf], sees[hf], INFINITY);
    }
  }
  __syncwarp(); /* the normal writes of every lane land before the repair overwrites */
  SEQK_UNROLL
  for (int hf = 0; hf < 2; ++hf) {
    if (!todo[hf]) continue; /* warp-uniform */
    const int k0_own = max(first[hf], w.kbeg), k1_own = min(lim[hf], w.kend);
    repair_rows<T, false, true, true>(/* packed form: q0 = k0 = 0 unless packed */
                                      p, w, b, kh, todo[hf], lane,
                                      [&](int src, int *h, int *i, int *k0, int *k1, float *mm,
                                          float *iv) {
                                        *k0 = __shfl_sync(0xffffffffu, k0_own, src);
                                        *k1 = __shfl_sync(0xffffffffu, k1_own, src);
                                        *mm = __shfl_sync(0xffffffffu, m[hf], src);
                                        *iv = __shfl_sync(0xffffffffu, inv[hf], src);
                                        *h = __shfl_sync(0xffffffffu, hrow[hf], src);
                                        *i = __shfl_sync(0xffffffffu, irow[hf], src);
                                      });
  }
}

/* flash_hopper.cu: the tensor maps and the launch; flash_hopper_f16.cu / _bf16.cu: the
   instantiations (hp_head_dims). */
template <typename T>
cudaError_t launch_hopper_dim(const hopper_args &a, int dp, cudaStream_t stream) {
  return seqk_kernels::value_switch(hp_head_dims{}, dp, cudaErrorInvalidValue, [&](auto D) {
    constexpr int DP = decltype(D)::value;
    const unsigned tiles = (unsigned)((a.p.rows + kHpBM - 1) / kHpBM);
    return seqk_kernels::launch_checked(
        dim3(tiles * (unsigned)a.p.splits, (unsigned)a.p.Hk, (unsigned)a.p.B), dim3(kHpThreads),
        hp_smem_bytes<DP>(), stream, flash_hopper_kernel<T, DP>, a);
  });
}
cudaError_t launch_hopper_f16(const hopper_args &a, int dp, cudaStream_t stream);
cudaError_t launch_hopper_bf16(const hopper_args &a, int dp, cudaStream_t stream);

}   // namespace seqk_flash

#endif /* SEQK_KERNELS_FLASH_HOPPER_CUH */
