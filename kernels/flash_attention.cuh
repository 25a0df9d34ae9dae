/*
 * flash_attention.cuh - what the fused attention sources share: the row and key bookkeeping
 * (lengths, causal limits, grouped-head packing, key splits) over the kernel parameters
 * (seqk_k_flash_params, launchers.h), the tensor-core kernel template (instantiated for f16 in
 * flash_attention_f16.cu and for bf16 in flash_attention_bf16.cu), the lists of instantiated
 * head dims, and the launch functions flash_attention.cu chooses between.
 *
 * The work of one (batch b, key/value head kh) is a list of rows: the query rows of the `group`
 * query heads that read kh, flattened head-major (row r = (h - kh*group) * Sq + i). A block owns
 * BM consecutive rows, so grouped-query heads share every K/V tile a block loads (for decode,
 * Sq = 1, the group's heads fill one tile instead of each wasting a tile), and with group = 1
 * this is the usual (query tile, head) split. Grid: x = row tiles * key splits, y = kh, z = b.
 *
 * Math (both kernels): scores t = (q.k) * scale*log2(e) (one factor, folded on the host), masked
 * keys -inf, running row max m, p = exp2(t - m) with m = -inf replaced by 0, running sum l and
 * output rescaled by exp2(m_old - m_new) per key tile, one division by l at the end;
 * lse = (m + log2 l) * ln 2. The end of a row follows seqk.h's rules for non-finite values:
 *   - no visible key (l = 0 and nothing to see): o = 0, lse = +inf (a split part: -inf, "empty");
 *   - visible keys whose scores are all -inf (fp32 overflow of q.k): l = 0, o and lse NaN;
 *   - a NaN or +inf score (NaN in q or k, overflow to +inf): p, l and o NaN, lse NaN; a split part
 *     carries the NaN into the combine instead of passing for empty. The scale is
 * applied before the max (not folded into the exponent as s*c - m*c) because the API allows a
 * negative scale, which turns the max of the raw scores into the min.
 */
#ifndef SEQK_KERNELS_FLASH_ATTENTION_CUH
#define SEQK_KERNELS_FLASH_ATTENTION_CUH

#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "primitives.cuh"
#include "static_switch.cuh"

#include <limits.h>
#include <type_traits>
#include <math.h>

namespace seqk_flash {

using seqk_kernels::from_float;
using seqk_kernels::int_list;
using seqk_kernels::to_float;

/* Everything a kernel needs (launchers.h): strides in elements, dims of extent 1 carry stride 0. */
using params = seqk_k_flash_params;

/* The head dims each kernel is instantiated for (a call runs at the smallest one >= max(D, Dv)).
   Every list entry needs its traits below; nothing else names the values. */
using tc_head_dims = int_list<32, 64, 96, 128, 160, 192, 256>;
using simt_head_dims = int_list<32, 64, 128, 256>;
using hp_head_dims = int_list<64, 128, 256>; /* the Hopper kernel (flash_hopper.cuh) */

struct tile_shape {
  int bm, bn;
};

struct lens {
  int q, k;
};

/* Batch b's valid query and key counts (clamped, so a bad device array cannot send a kernel
   outside the tensors). */
__device__ __forceinline__ lens batch_lens(const params &p, int b) {
  lens L;
  L.q = p.seqlens_q ? min(max(p.seqlens_q[b], 0), p.Sq) : p.Sq;
  L.k = p.seqlens_k ? min(max(p.seqlens_k[b], 0), p.Sk) : p.Sk;
  return L;
}

/* Query i sees keys [key_first, key_limit): none past the batch's queries; below, the key window
   around the aligned position a = i + Sk_b - Sq_b (attention_rules.h: j <= a + right, j >=
   a - left; -1 unbounded; causal is right = 0). Both non-decreasing in i below L.q. (64-bit: a
   window extent may be near 2^31.) */
__device__ __forceinline__ int key_limit(const params &p, lens L, int i) {
  if (i >= L.q) return 0;
  if (p.right < 0) return L.k;
  const int64_t lim = (int64_t)i + (L.k - L.q) + 1 + p.right;
  return lim < 0 ? 0 : lim > L.k ? L.k : (int)lim;
}
__device__ __forceinline__ int key_first(const params &p, lens L, int i) {
  if (p.left < 0 || i >= L.q) return 0;
  const int64_t first = (int64_t)i + (L.k - L.q) - p.left; /* < L.k because i < L.q */
  return first > 0 ? (int)first : 0;
}

/* Over the flattened rows [r0, r1): the smallest and largest key limit, and the smallest and
   largest first key of the rows that have queries. A row tile spans at most BM / Sq + 2 heads;
   within one head both are monotone, so each head's stretch costs O(1). */
__device__ __forceinline__ void tile_limits(const params &p, lens L, int r0, int r1, int *kmin,
                                            int *kmax, int *first_min, int *first_max) {
  int lo = INT_MAX, hi = 0, flo = INT_MAX, fhi = 0;
  for (int r = r0; r < r1;) {
    const int i = r % p.Sq;
    const int n = min(r1 - r, p.Sq - i);
    const int last = i + n - 1;
    lo = min(lo, last >= L.q ? 0 : key_limit(p, L, i));
    if (i < L.q) {
      const int end = min(last, L.q - 1);
      hi = max(hi, key_limit(p, L, end));
      flo = min(flo, key_first(p, L, i));
      fhi = max(fhi, key_first(p, L, end));
    }
    r += n;
  }
  *kmin = lo == INT_MAX ? 0 : lo;
  *kmax = hi;
  *first_min = flo == INT_MAX ? 0 : flo;
  *first_max = fhi;
}

/* One block's share: rows [r0, r1) of (b = blockIdx.z, kh = blockIdx.y) and keys [kbeg, kend);
   key tiles within [kfirst, kmin) need no mask. */
struct block_plan {
  int r0, r1, kmin, kfirst, kbeg, kend, split;
  lens L;
  int q0, k0; /* packed: the sequence's first query and key rows (p.q_start, p.k_start); else 0 */
  int nhead, nfull; /* the tensor-core kernel's unmasked tiles [nhead, nfull) */
};

template <int BM, int BN>
__device__ __forceinline__ block_plan plan_block(const params &p) {
  block_plan w;
  const int n_tiles = (p.rows + BM - 1) / BM;
  int tile = (int)(blockIdx.x / (unsigned)p.splits);
  w.split = (int)(blockIdx.x % (unsigned)p.splits);
  /* Causal row tiles near the end see the most keys: start them first so the tail of the grid
     is made of short blocks. */
  if (p.right >= 0 && p.splits == 1) tile = n_tiles - 1 - tile;
  w.r0 = tile * BM;
  w.r1 = min(w.r0 + BM, p.rows);
  w.L = batch_lens(p, (int)blockIdx.z);
  w.q0 = p.q_start ? p.q_start[blockIdx.z] : 0;
  w.k0 = p.k_start ? p.k_start[blockIdx.z] : 0;
  int kmax, klo;
  tile_limits(p, w.L, w.r0, w.r1, &w.kmin, &kmax, &klo, &w.kfirst);
  /* Key tiles start at multiples of BN whatever the tile's rows: a row's keys are then cut into
     the same tiles (and summed in the same order) whichever rows share its tile, which depends on
     Sq (grouped heads are folded into rows): a packed sequence, or one of a padded batch, gets
     the same bits as alone. The keys before klo are masked (one more tile at most). */
  klo -= klo % BN;
  if (p.splits > 1) {
    /* The keys the row tile sees, [klo, kmax), split evenly (whole tiles): a cache whose
       capacity (Sk) is far past a sequence's length, or a window far shorter than it, still
       spreads the tile's keys over every split, and a sequence's ranges depend on nothing else
       in the batch. */
    const int per = (((kmax - klo + BN - 1) / BN + p.splits - 1) / p.splits) * BN;
    w.kbeg = klo + w.split * per;
    w.kend = min(kmax, w.kbeg + per);
  } else {
    w.kbeg = klo;
    w.kend = kmax;
  }
  /* The tiles of [kbeg, kend) that need no mask: [nhead, nfull) (flash_tc_kernel's loop). */
  w.nhead = w.nfull = 0;
  if (w.kmin > w.kbeg && w.kbeg < w.kend) {
    const int ntile = (w.kend - w.kbeg + BN - 1) / BN;
    w.nhead = w.kfirst > w.kbeg ? min(ntile, (w.kfirst - w.kbeg + BN - 1) / BN) : 0;
    const int below_kmin = min(ntile - 1, (w.kmin - w.kbeg) / BN);
    const int next_inside = max(0, (w.L.k - w.kbeg) / BN - 1);
    w.nfull = max(w.nhead, min(below_kmin, next_inside));
  }
  /* the softcap and ALiBi are the masked body's */
  if (p.softcap_log2 > 0.0f || p.alibi) w.nfull = w.nhead;
  return w;
}

/* Flattened row r of kv head kh: query head and query index. */
__device__ __forceinline__ void row_coords(const params &p, int kh, int r, int *h, int *i) {
  *h = kh * p.group + r / p.Sq;
  *i = r % p.Sq;
}

/* Whether query row i of the block's batch is written: every row below Sq (past the batch's
   queries as empty rows), except in packed sequences, which own only their L.q rows (the next
   sequence's follow). */
__device__ __forceinline__ bool row_written(const params &p, const block_plan &w, int i) {
  return !p.q_start || i < w.L.q;
}

/* Element offsets of the block's batch in q, o and lse (query rows) and in k and v (key rows):
   b times the batch stride, plus (packed) the sequence's first row times the row stride. */
__device__ __forceinline__ int64_t q_rows_off(const block_plan &w, int b, int64_t sb, int64_t ss) {
  return (int64_t)b * sb + (int64_t)w.q0 * ss;
}
__device__ __forceinline__ int64_t k_rows_off(const block_plan &w, int b, int64_t sb, int64_t ss) {
  return (int64_t)b * sb + (int64_t)w.k0 * ss;
}

/* Element offset of key row j of batch b in K or V from the batch's base (the batch stride times
   b plus the head's offset; the plan sets the batch strides to 0 when paged): contiguous j * ss;
   paged, row j % page_size (row stride ss) of page page_table[b, j / page_size] (page stride
   sp). The host's check kernel (kv_cache.cu) left every sequence's length at 0 unless each page
   id below it is in range, so j below the batch's keys reads a valid page. */
template <bool PAGED>
__device__ __forceinline__ int64_t key_row(const params &p, int b, int j, int64_t sp, int64_t ss) {
  if constexpr (!PAGED) {
    (void)p;
    (void)b;
    (void)sp;
    return (int64_t)j * ss;
  } else {
    const int slot = j / p.page_size;
    const int64_t page = p.page_table[(int64_t)b * p.pt_sb + (int64_t)slot * p.pt_ss];
    return page * sp + (int64_t)(j - slot * p.page_size) * ss;
  }
}

/* Index of row (b, h, i) in the split partials of split s: [splits][B][H][Sq]. */
__device__ __forceinline__ int64_t part_row(const params &p, int s, int b, int h, int i) {
  return (((int64_t)s * p.B + b) * p.H + h) * p.Sq + i;
}

constexpr float kLn2 = 0.693147180559945309f;

/* A score in the log2 domain (scale * q.k * log2 e) after the softcap: S tanh(y / S) with
   S = p.softcap_log2 (0: none). fp32 tanhf, for the fp32 kernel and the repair. */
__device__ __forceinline__ float cap_log2(const params &p, float y) {
  return p.softcap_log2 > 0.0f ? p.softcap_log2 * tanhf(y / p.softcap_log2) : y;
}

constexpr float kLog2e = 1.44269504088896341f;

/* The ALiBi term in the log2 domain for query head h, query i (aligned position i + L.k - L.q)
   and key j: -slope[h] log2(e) |i + L.k - L.q - j|; 0 without slopes. For the fp32 kernel and the
   repair; the tensor-core kernel applies it in raw units (its masked body). */
__device__ __forceinline__ float alibi_log2(const params &p, lens L, int h, int i, int j) {
  if (!p.alibi) return 0.0f;
  return -p.alibi[h] * kLog2e * fabsf((float)(i + (L.k - L.q) - j));
}

/* Whether a row whose keys are [first, lim) sees one in the block's range [kbeg, kend). */
__device__ __forceinline__ bool sees_key(const block_plan &w, int first, int lim) {
  return min(lim, w.kend) > max(first, w.kbeg);
}
/* Whether keys the row does not see lie in the block's product (causal or window edges, the
   padding past the batch's keys excepted): such a row is repaired when its o is non-finite. */
__device__ __forceinline__ bool misses_key(const block_plan &w, int first, int lim) {
  return lim < w.L.k || first > w.kbeg;
}

/* The end of a row from its log2-domain max m and sum l; `visible`: the row sees a key in this
   block's key range. Natural-log lse; `empty_lse` is what a row without a visible key reports
   (+inf for the result, -inf for a split part); 1/l is the factor o gets. */
__device__ __forceinline__ float row_lse(float m, float l, bool visible, float empty_lse) {
  if (l > 0.0f) return (m + log2f(l)) * kLn2;
  return l == 0.0f && !visible ? empty_lse : NAN; /* NaN l, or visible keys with p = 0 */
}
__device__ __forceinline__ float row_inv(float l, bool visible) {
  if (l > 0.0f) return 1.0f / l;
  return l == 0.0f && !visible ? 0.0f : NAN;
}

/* ---- keys a row does not see --------------------------------------------------------------------
 * A key tile is loaded and multiplied whole: a row that does not see some of its keys (causal
 * masking inside the tile, or keys past the block's last visible one) gets p = 0 for them, and the
 * P V product adds 0 * v. That is 0 unless v holds a NaN or an infinity, which would reach a row
 * that never sees the key (seqk.h: keys a row does not see contribute nothing). So a row whose o
 * comes out non-finite while valid keys it does not see exist (lim < L.k) is recomputed after the
 * normal write: the warp walks the row's visible keys [k0, k1) alone, from global memory, with the
 * row's final max m and 1/l (unchanged by v), and overwrites the row's o. A row whose o is
 * non-finite for a real reason (a NaN it sees) comes out the same; finite rows never pay more
 * than the check. */
constexpr int kRepairCols = 8; /* Dv <= 256 = 32 lanes x 8 */

/* CAP: the kernel serves calls with a softcap and ALiBi (tc_score_mods); without it the cap's
   tanhf is left out (it cost the paged DP 128 kernel an 8-byte spill on sm_90). */
template <typename T, bool PAGED, bool CAP, bool PACKED, typename Out>
__device__ __forceinline__ void repair_row(const params &p, const block_plan &w, int b, int kh,
                                           int h, int i, int k0, int k1, float m, float inv,
                                           Out *dst, int lane) {
  const int q0 = PACKED ? w.q0 : 0, kr0 = PACKED ? w.k0 : 0;
  const T *q = static_cast<const T *>(p.q) + (int64_t)b * p.q_sb + (int64_t)h * p.q_sh +
               (int64_t)(q0 + i) * p.q_ss;
  const T *kb = static_cast<const T *>(p.k) + (int64_t)b * p.k_sb + (int64_t)kr0 * p.k_ss +
                (int64_t)kh * p.k_sh;
  const T *vb = static_cast<const T *>(p.v) + (int64_t)b * p.v_sb + (int64_t)kr0 * p.v_ss +
                (int64_t)kh * p.v_sh;
  const float m_use = m == -INFINITY ? 0.0f : m;
  float acc[kRepairCols];
  SEQK_UNROLL
  for (int c = 0; c < kRepairCols; ++c) acc[c] = 0.0f;
  for (int j = k0; j < k1; ++j) {
    float s = 0.0f;
    for (int d = lane; d < p.D; d += 32)
      s += to_float(q[d]) * to_float(kb[key_row<PAGED>(p, b, j, p.k_sp, p.k_ss) + d]);
    SEQK_UNROLL
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    const float y = s * p.scale_log2;
    const float pj = exp2f((CAP ? cap_log2(p, y) + alibi_log2(p, w.L, h, i, j) : y) - m_use);
    SEQK_UNROLL
    for (int c = 0; c < kRepairCols; ++c) {
      const int d = lane + 32 * c;
      if (d < p.Dv) acc[c] += pj * to_float(vb[key_row<PAGED>(p, b, j, p.v_sp, p.v_ss) + d]);
    }
  }
  SEQK_UNROLL
  for (int c = 0; c < kRepairCols; ++c) {
    const int d = lane + 32 * c;
    if (d < p.Dv) dst[d] = from_float<Out>(acc[c] * inv);
  }
}

/* The warp's rows to repair (todo: a ballot of one representative lane per row): each in turn,
   with the row's values fetched from its lane by `get(lane, &h, &i, &k0, &k1, &m, &inv)`. */
template <typename T, bool PAGED, bool CAP, bool PACKED, typename Get>
__device__ __forceinline__ void repair_rows(const params &p, const block_plan &w, int b, int kh,
                                            unsigned todo, int lane, Get &&get) {
  while (todo) {
    const int src = __ffs(todo) - 1;
    todo &= todo - 1;
    int h, i, k0, k1;
    float m, inv;
    get(src, &h, &i, &k0, &k1, &m, &inv);
    if (p.splits > 1)
      repair_row<T, PAGED, CAP, PACKED, float>(
          p, w, b, kh, h, i, k0, k1, m, inv, p.part_o + part_row(p, w.split, b, h, i) * p.Dv, lane);
    else
      repair_row<T, PAGED, CAP, PACKED, T>(p, w, b, kh, h, i, k0, k1, m, inv,
                                           static_cast<T *>(p.o) + (int64_t)b * p.o_sb +
                                               (int64_t)h * p.o_sh +
                                               (int64_t)((PACKED ? w.q0 : 0) + i) * p.o_ss,
                                           lane);
  }
}

/* The tensor-core kernel's softcap on a raw score t (its exponent is t * c, c = |scale| log2 e):
   t' with t' c = S tanh(t c / S), S = softcap * log2 e, as S/c - (2S/c) / (1 + 2^(t k)),
   k = 2 c log2(e) / S (p.softcap_hi, p.softcap_m2, p.softcap_k; the plan). Five instructions (FMUL,
   MUFU.EX2, FADD, MUFU.RCP, FFMA) where tanhf costs about 20, and accurate in the absolute terms
   a softmax needs: |error| about 2^-22 S / c from the two approximations, where tanh.approx's
   2^-11 relative error would move p by up to 2^-11 S (2.4 % at softcap 50). Saturates to
   +-S/c for large |t|; NaN stays NaN. */
__device__ __forceinline__ float softcap_raw(const params &p, float t) {
  const float u = exp2_approx(t * p.softcap_k);
  return fmaf(rcp_approx(1.0f + u), p.softcap_m2, p.softcap_hi);
}

/* ---- tensor-core kernel (f16 / bf16, sm_80 mma.sync) -------------------------------------------
 * Per block: NW warps, each owning MT m16 row tiles (BM = 16*MT*NW query rows), key tiles of BN.
 * Shared memory: Q [BM][DP+8], K and V [2 stages][BN][DP+8] (dynamic; > 48 KB for large DP).
 * The 8-element pad makes consecutive rows start 16 bytes apart modulo 128, so the 8 row addresses
 * of every ldmatrix (and the 16-byte cp.async stores) hit 8 different bank groups: conflict-free
 * without an XOR swizzle, at the cost of 8/DP of the shared memory.
 *
 * Tile shapes (FA2 found 128x128 (D=64), 128x64 (D=128), 64x64 / 128x64 (D=256) best on A100 and
 * H100; these follow it where the accumulators fit in 255 registers without spills, checked with
 * ptxas -v for sm_80 and sm_90; the build fails on any spill, CMakeLists.txt):
 *   DP 32, 64, 96, 128: 4 warps x 2 m-tiles = 128 rows; 64 keys (DP 64: 128). Two m-tiles per
 *     warp reuse every K/V fragment from ldmatrix for two mma, which keeps shared-memory traffic
 *     under the mma rate on H100 (with one m-tile per warp ldmatrix would be the bottleneck).
 *     Accumulators per thread: S BN + O DP/2 floats. Shared memory 30 / 92 / 78 / 104 KB (two
 *     104 KB blocks fit an H100 SM, one an A100's).
 *     DP 128 took 32-key tiles until the loop lost its guards and per-chunk address arithmetic
 *     (2026-12-02): 64 keys halve the O rescales and barriers per key (sm_90 SASS: 13.0 -> 3.46
 *     instructions per HMMA, 255 registers, no spill).
 *     DP 64 takes FA2's 128 keys (S 128 + O 64 floats): with both m-tiles' S computed together
 *     ptxas spilled 24-200 B (sm_90) in every arrangement tried; with one m-tile's S at a time in
 *     the source (QK_GROUP 1; ptxas still loads each K fragment once) and the plan, key limits,
 *     tile count and first key of the masked tiles in shared memory it fits 255 registers
 *     without a spill on sm_80 and sm_90: 4.34 instructions per HMMA (sm_90; FA2 4.44), where
 *     64-key tiles gave 4.81.
 *   DP 160: 4 warps x 1 m-tile = 64 rows, 64 keys (O is 80 floats per thread; 105 KB).
 *   DP 192, 256: 64 rows, 32 keys: O alone is 96 / 128 floats per thread, and 32-key stages keep
 *     the block at 75 / 99 KB so two blocks (8 warps) fit an H100 SM to hide latency.
 * Q is loaded once with the first K tile and read by ldmatrix at each k-step (keeping it in
 * registers would cost DP/2 more registers at MT = 2). Head dims between the instantiated ones run
 * in the next larger one: the padding columns are zero-filled by cp.async and multiplied like the
 * others (a guard per k-step or column block split the unrolled loops into guarded regions: 42
 * of them per tile at DP 128, measured in sm_90 SASS). */
// clang-format off
template <int DP> struct tc_traits;
template <> struct tc_traits<32> { static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 2; };
template <> struct tc_traits<64> { static constexpr int NW = 4, MT = 2, BN = 128, QK_GROUP = 1; };
template <> struct tc_traits<96> { static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 2; };
template <> struct tc_traits<128> { static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 2; };
template <> struct tc_traits<160> { static constexpr int NW = 4, MT = 1, BN = 64, QK_GROUP = 1; };
template <> struct tc_traits<192> { static constexpr int NW = 4, MT = 1, BN = 32, QK_GROUP = 1; };
template <> struct tc_traits<256> { static constexpr int NW = 4, MT = 1, BN = 32, QK_GROUP = 1; };
// clang-format on
/* The tiles an instantiation runs: tc_traits', except in the paged kernel, whose page-table
   loads cost registers: at DP 64 it takes 64-key tiles (the 128-key tiles spilled 52-100 bytes
   on sm_90, bf16, in every arrangement of the loads tried), at DP 96 and 128 it computes one
   m-tile's S at a time (both at once spilled 4-20 bytes on sm_80 or sm_90). Same rows per
   block either way. It also asks for one block per SM in its launch bounds: without that ptxas
   aimed at three blocks at DP 192 and spilled 84 bytes. sm_90 SASS (nvcc 13.0, 2026-12-03),
   instructions per HMMA in the main loop, paged (contiguous): DP 64 5.50 (4.34), DP 128 4.08
   (3.39) (with the window's loop bounds in shared memory; 5.71 (4.34), 4.08 (3.46) before): the
   per-tile row lookups (one thread per row: a division, a page-table load, two
   offsets into shared memory) and a shared-memory read per copied row. */
template <int DP, bool PAGED>
struct tc_cfg : tc_traits<DP> {};
template <>
struct tc_cfg<64, true> {
  static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 2;
};
template <>
struct tc_cfg<128, true> {
  static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 1;
};
template <>
struct tc_cfg<96, true> {
  static constexpr int NW = 4, MT = 2, BN = 64, QK_GROUP = 1;
};
/* Whether an instantiation applies the softcap and a window's left edge (masked tiles before the
   unmasked ones): two have no register left for them, the contiguous DP 64 kernel (sm_90 bf16
   spilled 32-120 bytes with the cap before, inside or after the mask; the left-edge loop 24 bytes
   (f16, sm_80) or 100 (bf16, sm_90) whichever of its bounds stayed in registers) and the paged
   DP 128 one (8 bytes on sm_80, 16-132 on sm_90 with any one of the cap, the left-edge loop or
   its mask left out). Such a call runs in the next larger instantiation (the plan), the padding
   columns zero-filled by cp.async (no extra global traffic): 1.5x (contiguous D <= 64) and 1.25x
   (paged D <= 128) the MMA work. The right edge (causal's) is every kernel's. */
__host__ __device__ constexpr bool tc_score_mods(int dp, bool paged) {
  return paged ? dp != 128 : dp != 64;
}
/* Whether an instantiation applies ALiBi (in its masked body, after the cap): those with the score
   modifiers except the contiguous DP 128 one, where the bias (2-3 instructions a score, two
   values per row) spilled 8 bytes on sm_90 (bf16) whether added after the product, folded into
   the mask loop (16 bytes), set as the accumulators' start before it, or in integer form. Such a
   call runs at DP 160 (the plan): 1.25x the MMA work. */
__host__ __device__ constexpr bool tc_alibi(int dp, bool paged) {
  return tc_score_mods(dp, paged) && (paged || dp != 128);
}
/* Whether an instantiation serves packed sequences (seqk_attention_packed: per-batch first rows,
   rows past a sequence's queries left alone): not the paged ones (packed calls have no cache) nor
   the contiguous DP 64 one, where the first rows' offsets cost 4 bytes of spill (sm_80, in every
   placement tried: where used, folded into the row index, precomputed in the plan); packed calls
   at D <= 64 run at DP 96 (the plan). */
__host__ __device__ constexpr bool tc_packed(int dp, bool paged) { return !paged && dp != 64; }

template <int DP>
constexpr int tc_bm = 16 * tc_traits<DP>::MT *tc_traits<DP>::NW;
static_assert(tc_bm<64> == 16 * tc_cfg<64, true>::MT * tc_cfg<64, true>::NW, "same rows");

template <typename T>
struct tc_ops;
template <>
struct tc_ops<__half> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4],
                                             const uint32_t b[2] SEQK_SITE_DECL) {
    mma_m16n8k16_f16(d, a, b, d SEQK_SITE_FWD);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return pack_half2(__float2half_rn(lo), __float2half_rn(hi));
  }
};
template <>
struct tc_ops<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4],
                                             const uint32_t b[2] SEQK_SITE_DECL) {
    mma_m16n8k16_bf16(d, a, b, d SEQK_SITE_FWD);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return pack_bf162(__float2bfloat16_rn(lo), __float2bfloat16_rn(hi));
  }
};

/* Q, K and V stages; PAGED adds the rows' page and row (two tiles x BN uint2). */
template <int DP, bool PAGED>
constexpr size_t tc_smem_bytes() {
  using cfg = tc_cfg<DP, PAGED>;
  return (size_t)(16 * cfg::MT * cfg::NW + 4 * cfg::BN) * (DP + 8) * 2 +
         (PAGED ? (size_t)2 * cfg::BN * 2 * sizeof(uint32_t) : 0);
}

/* PAGED: K and V rows come through the page table (p.page_table, key_row); a separate
   instantiation, so the contiguous kernel's loop stays as measured. */
template <typename T, int DP, bool PAGED>
__global__ void __launch_bounds__(tc_cfg<DP, PAGED>::NW * 32, PAGED ? 1 : 0)
    flash_tc_kernel(params p) {
  using ops = tc_ops<T>;
  using cfg = tc_cfg<DP, PAGED>;
  constexpr int NW = cfg::NW, MT = cfg::MT, BN = cfg::BN;
  constexpr int BM = 16 * MT * NW, NT = 32 * NW;
  /* m-tiles whose S = QK^T is computed together (sharing each K fragment) before their softmax:
     all of them, except where their S would not fit the registers next to O (tc_traits). */
  constexpr int MG = cfg::QK_GROUP;
  constexpr int LD = DP + 8;  /* shared row stride in elements (see the pad note above) */
  constexpr int CPR = DP / 8; /* 16-byte chunks per shared row */
  static_assert(DP <= 32 * kRepairCols, "repair_row covers Dv <= 32 * kRepairCols");
  DYN_SMEM(T, smem);
  T *const sQ = smem;             /* [BM][LD] */
  T *const sK = sQ + BM * LD;     /* [2][BN][LD] */
  T *const sV = sK + 2 * BN * LD; /* [2][BN][LD] */

  const int tid = (int)threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int b = (int)blockIdx.z, kh = (int)blockIdx.y;
  /* The block's plan is read from shared memory where used: held in registers across the loop
     (the epilogue needs most of it) it made ptxas spill at DP 64, 96, 128 (sm_90). */
  SMEM_ARRAY(block_plan, s_plan, 1);
  if (tid == 0) s_plan[0] = plan_block<BM, BN>(p);
  __syncthreads();
  const block_plan &w = s_plan[0];

  /* Base pointers are recomputed where used (params live in constant memory): holding three
     64-bit pointers across the main loop costs registers the accumulators need. */
  constexpr bool kPacked = tc_packed(DP, PAGED);
  auto q_rows = [&](int64_t sb, int64_t ss) {
    return kPacked ? q_rows_off(w, b, sb, ss) : (int64_t)b * sb;
  };
  auto k_rows = [&](int64_t sb, int64_t ss) {
    return kPacked ? k_rows_off(w, b, sb, ss) : (int64_t)b * sb;
  };
  auto q_base = [&]() { return static_cast<const T *>(p.q) + q_rows(p.q_sb, p.q_ss); };
  auto k_base = [&]() {
    return static_cast<const T *>(p.k) + k_rows(p.k_sb, p.k_ss) + (int64_t)kh * p.k_sh;
  };
  auto v_base = [&]() {
    return static_cast<const T *>(p.v) + k_rows(p.v_sb, p.v_ss) + (int64_t)kh * p.v_sh;
  };

  /* This thread's rows: warp-local m-tile mt, half hf -> block row warp*16*MT + mt*16 + g + 8*hf,
     and their key limits and first keys, kept in shared memory (each thread reads only its own):
     only masked tiles and the epilogue read them, and 4 registers held across the loop were what
     made ptxas spill at DP 64 and 128 (sm_90). */
  constexpr bool kMods = tc_score_mods(DP, PAGED);
  SMEM_ARRAY2(int, s_lim, MT * 2, NT);
  SMEM_ARRAY2(int, s_first, kMods ? MT * 2 : 1, NT);
  /* ALiBi: the row's slope in raw units and its aligned position less this lane's first column
     (2 t4), for the masked body (kAlibi; written only when the call has slopes). */
  constexpr bool kAlibi = tc_alibi(DP, PAGED);
  SMEM_ARRAY2(float2, s_alibi, kAlibi ? MT * 2 : 1, kAlibi ? NT : 1);
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      const int r = w.r0 + warp * 16 * MT + mt * 16 + g + 8 * hf;
      s_lim[mt * 2 + hf][tid] = r < w.r1 ? key_limit(p, w.L, r % p.Sq) : 0;
      if constexpr (kMods) s_first[mt * 2 + hf][tid] = r < w.r1 ? key_first(p, w.L, r % p.Sq) : 0;
      if constexpr (kAlibi) {
        if (p.alibi) {
          float2 a = make_float2(0.0f, 0.0f);
          if (r < w.r1) {
            int h, i;
            row_coords(p, kh, r, &h, &i);
            a = make_float2(p.alibi[h] * p.alibi_raw, (float)(i + (w.L.k - w.L.q) - 2 * t4));
          }
          s_alibi[mt * 2 + hf][tid] = a;
        }
      }
    }
  }
  auto lim = [&](int mt, int hf) { return s_lim[mt * 2 + hf][tid]; };
  auto first = [&](int mt, int hf) {
    if constexpr (kMods)
      return s_first[mt * 2 + hf][tid];
    else
      return 0;
  };
  /* sees_key / misses_key; without a left edge in their simpler form (first = 0, and lim > kbeg
     implies kend > kbeg), which ptxas fits where the general one spilled (paged DP 128). */
  auto sees = [&](int mt, int hf) {
    if constexpr (kMods)
      return sees_key(w, first(mt, hf), lim(mt, hf));
    else
      return lim(mt, hf) > w.kbeg;
  };
  auto misses = [&](int mt, int hf) {
    if constexpr (kMods)
      return misses_key(w, first(mt, hf), lim(mt, hf));
    else
      return lim(mt, hf) < w.L.k;
  };

  /* ---- copies. The first KV_STEP * CPR threads copy K and V, each in one column, KV_STEP rows
     apart (all threads where CPR divides NT; at DP 96, 160, 192 a few idle): the global addresses
     are set up once and advanced by BN rows per tile, the shared ones are this thread's offset
     plus constants (sm_90 SASS at D = 128: 3-4 instructions per 16-byte copy, was ~37 with a
     division and 64-bit products per chunk). */
  constexpr int KV_STEP = NT / CPR, KV_PASSES = (BN + KV_STEP - 1) / KV_STEP;
  const bool copier = NT % CPR == 0 || tid < KV_STEP * CPR;
  const int cp_row = tid / CPR, cp_col = (tid % CPR) * 8;
  /* Columns past D (Dv) are zero-filled; their source is the row's start, inside the row. */
  const int k_bytes = cp_col < p.D ? 16 : 0, v_bytes = cp_col < p.Dv ? 16 : 0;
  const int nkeys = w.L.k;
  const T *gk = k_base() + (int64_t)(w.kbeg + cp_row) * p.k_ss + (k_bytes ? cp_col : 0);
  const T *gv = v_base() + (int64_t)(w.kbeg + cp_row) * p.v_ss + (v_bytes ? cp_col : 0);
  constexpr int STAGE_BYTES = BN * LD * (int)sizeof(T);
  const smem_addr k_dst = smem_addr_of(sK + cp_row * LD + cp_col);
  const smem_addr v_dst = smem_addr_of(sV + cp_row * LD + cp_col);

  /* The next BN rows of K (or V) into stage st; with kCheck, rows at or past the batch's keys are
     zero-filled (padding rows may hold NaN, and 0 * NaN would leak into P V) from a valid
     address. Advances the source by BN rows. */
  auto load_tile = [&](auto check, smem_addr dst, const T *&src, int64_t ss, int bytes,
                       const T *any, int n0) {
    constexpr bool kCheck = decltype(check)::value;
    /* bytes between a thread's chunks: 32 bits (the plan refuses row strides of 2^26 elements),
       so each chunk's address is one IMAD.WIDE.U32 from the tile's (a 64-bit add chain was 2) */
    const uint32_t step = (uint32_t)(KV_STEP * sizeof(T)) * (uint32_t)ss;
    SEQK_UNROLL
    for (int i = 0; i < KV_PASSES; ++i) {
      if (!copier || ((i + 1) * KV_STEP > BN && cp_row + i * KV_STEP >= BN)) continue;
      const T *from = reinterpret_cast<const T *>(reinterpret_cast<const char *>(src) +
                                                  (uint64_t)step * (uint32_t)i);
      int n = bytes;
      if (kCheck && n0 + cp_row + i * KV_STEP >= nkeys) {
        from = any;
        n = 0;
      }
      cp_async<16>(dst + i * KV_STEP * LD * (int)sizeof(T), from, n);
    }
    src += (int64_t)BN * ss;
  };
  /* Paged K/V: each row of a tile is located once, one thread per row, into shared memory (its
     K and V offsets from p.k and p.v, head included; ~0u for a row at or past the batch's keys,
     which may lie past its pages), stage st's table for the tile in stage st, before the barrier
     that precedes the tile's copies; the copiers (CPR threads per row) then read one word instead
     of each dividing by the page size and reading the page table. Offsets are 32-bit, in 16-byte
     units: the plan keeps every row 16-byte aligned and the pages within 2^32 units. (64-bit
     offsets, or page and row with the multiplies in the copy, made ptxas spill, bf16.) */
  uint2 *const s_rows = reinterpret_cast<uint2 *>(sV + 2 * BN * LD); /* [2][BN] */
  constexpr int kUnit = 16 / (int)sizeof(T);                         /* elements */
  static_assert(BN <= NT, "one thread per row of a tile");
  auto fill_rows = [&](int st, int n0) {
    if (tid < BN) { /* (a loop over r here was unrolled 7 times: 7 divisions per tile) */
      const int r = tid, j = n0 + r;
      uint2 at = make_uint2(~0u, ~0u);
      if (j < nkeys) {
        const int slot = j / p.page_size;
        const uint32_t page =
            (uint32_t)p.page_table[(int64_t)b * p.pt_sb + (int64_t)slot * p.pt_ss];
        const uint32_t row = (uint32_t)(j - slot * p.page_size);
        at.x = page * (uint32_t)(p.k_sp / kUnit) + row * (uint32_t)(p.k_ss / kUnit) +
               (uint32_t)kh * (uint32_t)(p.k_sh / kUnit);
        at.y = page * (uint32_t)(p.v_sp / kUnit) + row * (uint32_t)(p.v_ss / kUnit) +
               (uint32_t)kh * (uint32_t)(p.v_sh / kUnit);
      }
      s_rows[st * BN + r] = at;
    }
  };
  /* base: p.k or p.v; sp, ss, sh: its page, row and head strides in units; col_bytes: this
     thread's column. */
  auto load_tile_paged = [&](auto check, smem_addr dst, const void *base, const uint32_t *rows,
                             int bytes, uint32_t col_bytes) {
    constexpr bool kCheck = decltype(check)::value;
    SEQK_UNROLL
    for (int i = 0; i < KV_PASSES; ++i) {
      if (!copier || ((i + 1) * KV_STEP > BN && cp_row + i * KV_STEP >= BN)) continue;
      const uint32_t u = rows[2 * (cp_row + i * KV_STEP)];
      const bool ok = !kCheck || u != ~0u;
      cp_async<16>(dst + i * KV_STEP * LD * (int)sizeof(T),
                   static_cast<const char *>(base) + (ok ? (uint64_t)u * 16u + col_bytes : 0),
                   ok ? bytes : 0);
    }
  };
  auto load_k = [&](auto check, int st, int n0) {
    if constexpr (PAGED)
      load_tile_paged(check, k_dst + st * STAGE_BYTES, p.k,
                      reinterpret_cast<const uint32_t *>(s_rows + st * BN), k_bytes,
                      k_bytes ? cp_col * (uint32_t)sizeof(T) : 0u);
    else
      load_tile(check, k_dst + st * STAGE_BYTES, gk, p.k_ss, k_bytes, static_cast<const T *>(p.k),
                n0);
  };
  auto load_v = [&](auto check, int st, int n0) {
    if constexpr (PAGED)
      load_tile_paged(check, v_dst + st * STAGE_BYTES, p.v,
                      reinterpret_cast<const uint32_t *>(s_rows + st * BN) + 1, v_bytes,
                      v_bytes ? cp_col * (uint32_t)sizeof(T) : 0u);
    else
      load_tile(check, v_dst + st * STAGE_BYTES, gv, p.v_ss, v_bytes, static_cast<const T *>(p.v),
                n0);
  };

  /* A warp whose rows all lie past the tile's last row (short tiles; decode, where a few rows
     share a 64- or 128-row tile) skips its ldmatrix, mma and softmax and only helps load. The
     test is warp-uniform. (Skipping per m-tile as well costs ptxas up to 20 more registers.) */
  const bool live = warp * 16 * MT < w.r1 - w.r0;

  float o[MT][DP / 8][4];
  float m[MT][2], l[MT][2]; /* m: running max of the raw scores (see c below) */
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int nd = 0; nd < DP / 8; ++nd) {
      SEQK_UNROLL
      for (int e = 0; e < 4; ++e) o[mt][nd][e] = 0.0f;
    }
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  const int ntile = w.kbeg < w.kend ? (w.kend - w.kbeg + BN - 1) / BN : 0;
  if (ntile > 0) {
    for (int ch = tid; ch < BM * CPR; ch += NT) {
      const int row = ch / CPR, col = (ch % CPR) * 8, r = w.r0 + row;
      const T *src = q_base();
      bool ok = false;
      if (r < w.r1 && col < p.D) {
        int h, i;
        row_coords(p, kh, r, &h, &i);
        ok = i < w.L.q;
        if (ok) src += (int64_t)h * p.q_sh + (int64_t)i * p.q_ss + col;
      }
      cp_async<16>(sQ + row * LD + col, src, ok ? 16 : 0);
    }
    if constexpr (PAGED) {
      fill_rows(0, w.kbeg);
      __syncthreads();
    }
    load_k(std::true_type{}, 0, w.kbeg);
    cp_async_commit();
    load_v(std::true_type{}, 0, w.kbeg);
    cp_async_commit();
  }

  /* Scores are scaled by c = |scale * log2 e| inside the exponent, p = 2^(s c - m c) with m the
     raw running max: one FFMA per score (sm_90 SASS: the separate scale multiply cost one more
     instruction per score). A negative scale turns the max of the scaled scores into the min of
     the raw ones, so then Q is negated once in shared memory (exact in f16 / bf16) and the scores
     come out as -q.k. */
  const float c = p.scale_abs_log2;
  if (ntile > 0 && p.scale_log2 < 0.0f) {
    cp_async_wait<0>();
    __syncthreads();
    for (int ch = tid; ch < BM * CPR; ch += NT) {
      uint4 *q4 = reinterpret_cast<uint4 *>(sQ + (ch / CPR) * LD + (ch % CPR) * 8);
      uint4 v4 = *q4;
      v4.x ^= 0x80008000u;
      v4.y ^= 0x80008000u;
      v4.z ^= 0x80008000u;
      v4.w ^= 0x80008000u;
      *q4 = v4;
    }
    /* the first tile's barrier orders these writes before any ldmatrix of Q */
  }

  /* This lane's ldmatrix rows (byte offsets from them are constants): Q's m16 x k16 A tiles, K's
     pairs of n8 x k16 B tiles, V's k16 x n16 (transposed) B tiles. */
  const smem_addr q_lds = smem_addr_of(sQ + (warp * 16 * MT + (lane & 15)) * LD + (lane >> 4) * 8);
  const smem_addr k_lds =
      smem_addr_of(sK + (((lane >> 4) << 3) + (lane & 7)) * LD + ((lane >> 3) & 1) * 8);
  const smem_addr v_lds = smem_addr_of(sV + (lane & 15) * LD + (lane >> 4) * 8);

  /* Full tiles [nhead, nfull) run a body without a mask (every key visible to every row of the
     block: kfirst <= n0, n0 + BN <= kmin) whose prefetch of the next tile needs no row bounds (it
     ends inside the batch's keys) and no test for a next tile (the last tile is never one of
     them); the other tiles (a window's left edge before them; the causal diagonal, the batch's
     partial last tile, the last tile after them) run the masked body. Without a left window
     nhead is 0 and the full tiles come first. sm_90 SASS, f16, D = 128: the test and its
     branches cost 8 instructions a tile. The plan (plan_block, in shared memory) holds nhead and
     nfull, read where the loops need them: a first arrangement that computed them in the kernel
     and held them in registers across a loop nest spilled 24 bytes at DP 64 (f16, sm_80). */

  /* One key tile. Pipeline: K and V of tile it+1 are copied (two cp.async groups, empty ones
     past the last tile so the waits count the same) while tile it is computed; K(it) is waited
     for before S = QK^T and V(it) only before PV, so the V copy also overlaps the softmax. The
     first barrier also tells that every warp is done with tile it-1, whose stage the prefetch
     overwrites: two block barriers per tile. */
  auto tile = [&](auto masked_tag, int it, int ntile, int kbeg) {
    constexpr bool kMasked = decltype(masked_tag)::value;
    const int n0 = kbeg + it * BN, st = it & 1;
    const smem_addr cK = k_lds + st * STAGE_BYTES, cV = v_lds + st * STAGE_BYTES;
    /* Paged: tile it+1's row offsets into the other stage's table, whose last readers (the copies
       of tile it-1) passed the previous barrier. (A full tile always has a next one; the full
       body passes neither the tile count nor the first key, which are read from the plan.) */
    if constexpr (PAGED)
      if (!kMasked || it + 1 < ntile) fill_rows(st ^ 1, w.kbeg + (it + 1) * BN);
    cp_async_wait<1>(); /* K(it); V(it) may be in flight */
    __syncthreads();
    const bool more = !kMasked || it + 1 < ntile;
    if (more) load_k(masked_tag, st ^ 1, n0 + BN);
    cp_async_commit();
    if (more) load_v(masked_tag, st ^ 1, n0 + BN);
    cp_async_commit();

    uint32_t pa[MT][BN / 16][4]; /* P as the A operand of PV */
    if (live) {
      /* S = Q K^T for this warp's rows and the BN keys, MG m-tiles at a time, each group's
         softmax right after its product. Head dims between the instantiated ones multiply their
         zero-filled padding columns too: a guard per k-step cost more than it saved (it split
         the unrolled loop into guarded regions). */
      SEQK_UNROLL
      for (int g0 = 0; g0 < MT; g0 += MG) {
        float s[MG][BN / 8][4];
        SEQK_UNROLL
        for (int j = 0; j < MG; ++j) {
          SEQK_UNROLL
          for (int nb = 0; nb < BN / 8; ++nb) {
            SEQK_UNROLL
            for (int e = 0; e < 4; ++e) s[j][nb][e] = 0.0f;
          }
        }
        SEQK_UNROLL
        for (int ks = 0; ks < DP / 16; ++ks) {
          uint32_t a[MG][4];
          SEQK_UNROLL
          for (int j = 0; j < MG; ++j)
            ldmatrix_x4(a[j], q_lds + ((g0 + j) * 16 * LD + ks * 16) * (int)sizeof(T));
          SEQK_UNROLL
          for (int nb = 0; nb < BN / 8; nb += 2) {
            uint32_t bk[4];
            ldmatrix_x4(bk, cK + (nb * 8 * LD + ks * 16) * (int)sizeof(T));
            SEQK_UNROLL
            for (int j = 0; j < MG; ++j) {
              ops::mma(s[j][nb], a[j], &bk[0]);
              ops::mma(s[j][nb + 1], a[j], &bk[2]);
            }
          }
        }

        /* Online softmax in registers; a row's 4 lanes (same g) combine with two xor shuffles. */
        SEQK_UNROLL
        for (int j = 0; j < MG; ++j) {
          const int mt = g0 + j;
          /* Only in the masked body (a call with a softcap runs every tile there: plan_block), so
             the unmasked loop stays as measured. Before the mask, which it must not lift. */
          if (kMods && kMasked && p.softcap_log2 > 0.0f) {
            SEQK_UNROLL
            for (int nb = 0; nb < BN / 8; ++nb) {
              SEQK_UNROLL
              for (int e = 0; e < 4; ++e) s[j][nb][e] = softcap_raw(p, s[j][nb][e]);
            }
          }
          /* ALiBi after the cap: s -= slope |a - key| in raw units, key n0 + nb*8 + 2*t4 + e and
             a the row's aligned position (s_alibi holds a - 2*t4): 2-3 instructions a score.
             Its registers cost the unmasked loop 8 instructions a tile at DP 96 (763 -> 771,
             sm_90 SASS) and 2 at DP 32; setting the bias as the product's starting value
             instead changed nothing. */
          if constexpr (kAlibi && kMasked) {
            if (p.alibi) {
              SEQK_UNROLL
              for (int hf = 0; hf < 2; ++hf) {
                const float2 ab = s_alibi[mt * 2 + hf][tid];
                const float base = (float)n0 - ab.y;
                SEQK_UNROLL
                for (int nb = 0; nb < BN / 8; ++nb) {
                  SEQK_UNROLL
                  for (int e = 0; e < 2; ++e) {
                    float &t = s[j][nb][2 * hf + e];
                    t = fmaf(-ab.x, fabsf(base + (float)(nb * 8 + e)), t);
                  }
                }
              }
            }
          }
          SEQK_UNROLL
          for (int hf = 0; hf < 2; ++hf) {
            /* key n0 + nb*8 + 2*t4 + e is visible iff lo <= nb*8 + e < vis, with
               lo = first - n0 - 2*t4 and vis = lim - n0 - 2*t4 */
            const int vis = kMasked ? lim(mt, hf) - n0 - 2 * t4 : 0;
            const int vlo = kMasked ? first(mt, hf) - n0 - 2 * t4 : 0;
            SEQK_UNROLL
            for (int nb = 0; nb < BN / 8; ++nb) {
              SEQK_UNROLL
              for (int e = 0; e < 2; ++e)
                if (kMasked && (nb * 8 + e >= vis || (kMods && nb * 8 + e < vlo)))
                  s[j][nb][2 * hf + e] = -INFINITY;
            }
            /* max and sum start from the first element, not from -inf and 0 (neither folds away:
               fmaxf(-inf, NaN) and 0 + -0 differ from their operand): 8 instructions a tile */
            float mx = s[j][0][2 * hf];
            SEQK_UNROLL
            for (int k = 1; k < BN / 4; ++k) mx = fmaxf(mx, s[j][k >> 1][2 * hf + (k & 1)]);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m[mt][hf], mx);
            /* A row whose keys are all masked so far has m = -inf and uses 0 in its place. In a
               full tile every row sees every key, so m_new = -inf only for a row of -inf scores
               (overflow), whose o and lse are NaN by seqk.h's rules: -inf - -inf = NaN gives
               exactly that, and the select is left to the masked body. */
            const float mc = (kMasked && m_new == -INFINITY) ? 0.0f : m_new * c;
            const float alpha = exp2_approx(fmaf(m[mt][hf], c, -mc));
            m[mt][hf] = m_new;
            float sum = 0.0f;
            SEQK_UNROLL
            for (int k = 0; k < BN / 4; ++k) {
              float &t = s[j][k >> 1][2 * hf + (k & 1)];
              t = exp2_approx(fmaf(t, c, -mc));
              sum = k == 0 ? t : sum + t;
            }
            l[mt][hf] = fmaf(l[mt][hf], alpha, sum); /* this lane's part; lanes summed at the end */
            SEQK_UNROLL
            for (int nd = 0; nd < DP / 8; ++nd) {
              o[mt][nd][2 * hf] *= alpha;
              o[mt][nd][2 * hf + 1] *= alpha;
            }
          }
          /* The S accumulator layout of n-blocks 2kb, 2kb+1 is the A fragment layout of k-block kb. */
          SEQK_UNROLL
          for (int kb2 = 0; kb2 < BN / 16; ++kb2) {
            pa[mt][kb2][0] = ops::pack(s[j][2 * kb2][0], s[j][2 * kb2][1]);
            pa[mt][kb2][1] = ops::pack(s[j][2 * kb2][2], s[j][2 * kb2][3]);
            pa[mt][kb2][2] = ops::pack(s[j][2 * kb2 + 1][0], s[j][2 * kb2 + 1][1]);
            pa[mt][kb2][3] = ops::pack(s[j][2 * kb2 + 1][2], s[j][2 * kb2 + 1][3]);
          }
        }
      }
    }

    cp_async_wait<2>(); /* V(it); K(it+1), V(it+1) may be in flight */
    __syncthreads();

    /* O += P V: V fragments by ldmatrix.trans (V is [key][e] in shared memory, the mma wants it
       column-major). Masked keys have p = 0; padding columns of V are zero. */
    if (live) {
      SEQK_UNROLL
      for (int kb2 = 0; kb2 < BN / 16; ++kb2) {
        SEQK_UNROLL
        for (int nd = 0; nd < DP / 8; nd += 2) {
          uint32_t bv[4];
          ldmatrix_x4_trans(bv, cV + (kb2 * 16 * LD + nd * 8) * (int)sizeof(T));
          SEQK_UNROLL
          for (int mt = 0; mt < MT; ++mt) {
            ops::mma(o[mt][nd], pa[mt][kb2], &bv[0]);
            ops::mma(o[mt][nd + 1], pa[mt][kb2], &bv[2]);
          }
        }
      }
    }
  };
  /* The masked tiles take the tile count and first key from shared memory again: held in
     registers across the full tiles they cost a spill at DP 64 on sm_80. The unmasked loop is a
     loop of its own (the one the kernel report measures), the masked body inlined twice where a
     left edge exists. */
  int it = 0;
  if constexpr (kMods) { /* a window's left edge: masked tiles before the unmasked ones */
    const int kb = w.kbeg, nt = kb < w.kend ? (w.kend - kb + BN - 1) / BN : 0;
    for (const int nhead = w.nhead; it < nhead; ++it) tile(std::true_type{}, it, nt, kb);
  }
  for (const int nfull = w.nfull; it < nfull; ++it) tile(std::false_type{}, it, 0, 0);
  {
    const int kb = w.kbeg, nt = kb < w.kend ? (w.kend - kb + BN - 1) / BN : 0;
    for (; it < nt; ++it) tile(std::true_type{}, it, nt, kb);
  }

  /* m back in the log2 domain of the scaled scores (what the epilogue and the repair use). */
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf)
      if (m[mt][hf] != -INFINITY) m[mt][hf] *= c;
  }

  /* Epilogue: full row sums, one division, then out through shared memory (the warp's own Q
     rows, which no other warp reads) so global stores are 16-byte row chunks. */
  float inv[MT][2];
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      float sum = l[mt][hf];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      l[mt][hf] = sum;
      inv[mt][hf] = row_inv(sum, sees(mt, hf));
    }
  }

  /* This thread's row (mt, hf) as query head h and index i; false past the tile's last row. */
  auto own_row = [&](int mt, int hf, int *h, int *i) {
    const int r = w.r0 + warp * 16 * MT + mt * 16 + g + 8 * hf;
    if (r >= w.r1) return false;
    row_coords(p, kh, r, h, i);
    return !kPacked || row_written(p, w, *i);
  };

  /* Rows whose o is non-finite while keys they do not see were in the product (see repair_row)
     are found now, while o is live (the 4 lanes of a row vote; lane t4 = 0 stands for it), and
     recomputed after the normal writes. */
  unsigned todo[MT][2];
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      int bad = 0;
      SEQK_UNROLL
      for (int nd = 0; nd < DP / 8; ++nd)
        bad |= !isfinite(o[mt][nd][2 * hf]) || !isfinite(o[mt][nd][2 * hf + 1]);
      bad |= __shfl_xor_sync(0xffffffffu, bad, 1);
      bad |= __shfl_xor_sync(0xffffffffu, bad, 2);
      int h0, i0;
      todo[mt][hf] = __ballot_sync(
          0xffffffffu, bad && t4 == 0 && live && own_row(mt, hf, &h0, &i0) && misses(mt, hf));
    }
  }
  auto repair = [&]() {
    __syncwarp(); /* the normal writes of every lane land first */
    SEQK_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
      SEQK_UNROLL
      for (int hf = 0; hf < 2; ++hf) {
        if (!todo[mt][hf]) continue; /* warp-uniform */
        const int k0_own = kMods ? max(first(mt, hf), w.kbeg) : w.kbeg;
        const int k1_own = min(lim(mt, hf), w.kend);
        repair_rows<T, PAGED, kMods, kPacked>(
            p, w, b, kh, todo[mt][hf], lane,
            [&](int src, int *h, int *i, int *k0, int *k1, float *mm, float *iv) {
              *k0 = __shfl_sync(0xffffffffu, k0_own, src);
              *k1 = __shfl_sync(0xffffffffu, k1_own, src);
              *mm = __shfl_sync(0xffffffffu, m[mt][hf], src);
              *iv = __shfl_sync(0xffffffffu, inv[mt][hf], src);
              row_coords(p, kh, w.r0 + warp * 16 * MT + mt * 16 + (src >> 2) + 8 * hf, h, i);
            });
      }
    }
  };

  if (p.splits > 1) {
    /* fp32 partial rows for the combine kernel; an empty part has lse -inf and o = 0, a NaN part
       NaN (row_lse). */
    SEQK_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
      SEQK_UNROLL
      for (int hf = 0; hf < 2; ++hf) {
        int h, i;
        if (!own_row(mt, hf, &h, &i)) continue;
        const int64_t pr = part_row(p, w.split, b, h, i);
        float *dst = p.part_o + pr * p.Dv;
        SEQK_UNROLL
        for (int nd = 0; nd < DP / 8; ++nd) {
          const int e = nd * 8 + 2 * t4;
          if (e < p.Dv) { /* Dv % 8 == 0 here: the pair is in or out together */
            dst[e] = o[mt][nd][2 * hf] * inv[mt][hf];
            dst[e + 1] = o[mt][nd][2 * hf + 1] * inv[mt][hf];
          }
        }
        if (t4 == 0) p.part_lse[pr] = row_lse(m[mt][hf], l[mt][hf], sees(mt, hf), -INFINITY);
      }
    }
    repair();
    return;
  }

  __syncwarp();
  SEQK_UNROLL
  for (int mt = 0; mt < MT; ++mt) {
    SEQK_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      T *row = sQ + (warp * 16 * MT + mt * 16 + g + 8 * hf) * LD;
      SEQK_UNROLL
      for (int nd = 0; nd < DP / 8; ++nd) {
        row[nd * 8 + 2 * t4] = from_float<T>(o[mt][nd][2 * hf] * inv[mt][hf]);
        row[nd * 8 + 2 * t4 + 1] = from_float<T>(o[mt][nd][2 * hf + 1] * inv[mt][hf]);
      }
    }
  }
  __syncwarp();
  T *const ob = static_cast<T *>(p.o) + q_rows(p.o_sb, p.o_ss);
  const int cpr_out = p.Dv / 8;
  for (int c = lane; c < 16 * MT * cpr_out; c += 32) {
    const int row = c / cpr_out, col = (c % cpr_out) * 8;
    const int r = w.r0 + warp * 16 * MT + row;
    if (r >= w.r1) continue;
    int h, i;
    row_coords(p, kh, r, &h, &i);
    if (kPacked && !row_written(p, w, i)) continue;
    T *dst = ob + (int64_t)h * p.o_sh + (int64_t)i * p.o_ss + col;
    const T *src = sQ + (warp * 16 * MT + row) * LD + col;
    if (p.o_vec) {
      *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
    } else {
      SEQK_UNROLL
      for (int e = 0; e < 8; ++e) dst[e] = src[e];
    }
  }
  if (p.lse && t4 == 0) {
    SEQK_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
      SEQK_UNROLL
      for (int hf = 0; hf < 2; ++hf) {
        int h, i;
        if (!own_row(mt, hf, &h, &i)) continue;
        p.lse[q_rows(p.l_sb, p.l_ss) + (int64_t)h * p.l_sh + (int64_t)i * p.l_ss] =
            row_lse(m[mt][hf], l[mt][hf], sees(mt, hf), INFINITY);
      }
    }
  }
  repair();
}

/* Launches flash_tc_kernel<T, DP, PAGED> for the grid the plan implies (x = row tiles *
   splits). */
template <typename T, int DP, bool PAGED>
cudaError_t launch_tc(const params &p, cudaStream_t stream) {
  const unsigned tiles = (unsigned)((p.rows + tc_bm<DP> - 1) / tc_bm<DP>);
  return seqk_kernels::launch_checked(
      dim3(tiles * (unsigned)p.splits, (unsigned)p.Hk, (unsigned)p.B),
      dim3(32 * tc_cfg<DP, PAGED>::NW), tc_smem_bytes<DP, PAGED>(), stream,
      flash_tc_kernel<T, DP, PAGED>, p);
}

/* Tensor-core kernel for element type T at padded head dim dp (one of tc_head_dims);
   cudaErrorInvalidValue for any other dp. Instantiated per dtype and K/V addressing in its own
   source. */
template <typename T, bool PAGED>
cudaError_t launch_tc_dim(const params &p, int dp, cudaStream_t stream) {
  return seqk_kernels::value_switch(tc_head_dims{}, dp, cudaErrorInvalidValue, [&](auto D) {
    return launch_tc<T, decltype(D)::value, PAGED>(p, stream);
  });
}

/* ---- what each source provides ------------------------------------------------------------- */

/* Tile shape of the tensor-core kernel at dp (one of tc_head_dims), paged or not. */
inline tile_shape tc_shape(int dp, bool paged) {
  return seqk_kernels::value_switch(tc_head_dims{}, dp, tile_shape{0, 0}, [&](auto D) {
    constexpr int DP = decltype(D)::value;
    return tile_shape{tc_bm<DP>, paged ? tc_cfg<DP, true>::BN : tc_cfg<DP, false>::BN};
  });
}
cudaError_t launch_tc_f16(const params &p, int dp,
                          cudaStream_t stream); /* flash_attention_f16.cu */
cudaError_t launch_tc_bf16(const params &p, int dp,
                           cudaStream_t stream); /* flash_attention_bf16.cu */
cudaError_t launch_tc_f16_paged(const params &p, int dp,
                                cudaStream_t stream); /* flash_attention_f16_paged.cu */
cudaError_t launch_tc_bf16_paged(const params &p, int dp,
                                 cudaStream_t stream); /* flash_attention_bf16_paged.cu */

/* Hopper kernel (flash_hopper.cu; sm_90a): dp one of hp_head_dims. */
tile_shape hopper_shape(int dp);
cudaError_t launch_hopper(const params &p, seqk_dtype dtype, int dp, cudaStream_t stream);

/* fp32 SIMT kernel (flash_attention_simt.cu): dm one of simt_head_dims. */
tile_shape simt_shape(int dm);
cudaError_t launch_simt(const params &p, seqk_dtype dtype, int dm, cudaStream_t stream);

/* Split-KV combine (flash_attention_simt.cu): partials -> o, lse, by merge.cuh's rule. */
cudaError_t launch_combine(const params &p, seqk_dtype dtype, cudaStream_t stream);

}   // namespace seqk_flash

#endif /* SEQK_KERNELS_FLASH_ATTENTION_CUH */
