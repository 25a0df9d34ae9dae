/*
 * softmax.cu - softmax on CUDA tensors: seqk_softmax along any dim (seqk_k_softmax_params) and the row
 * softmax of the unfused attention path (seqk_k_attention_softmax_params), both built from the row
 * machinery in softmax.cuh and picked by one dispatcher, choose_variant() (the variants, their
 * thresholds and what each costs in memory traffic are listed there).
 *
 * A "row" is the slice being normalised. Rows are independent, so every kernel maps rows (or
 * columns of rows) to warps/blocks and never needs another kernel's result, except the split
 * two-pass variant, which passes one (max, sum) pair per chunk through scratch the host carved.
 * y may alias x exactly: every variant reads all of a row (or the chunk statistics of a row)
 * before any element of it is written, and each element is written by the thread that read it
 * last, so no __restrict__ and no read-only (nc) loads are used on x.
 */
#include "cuda_compat.cuh"
#include "common.cuh"

#include "softmax.cuh"

#include <math.h>
#include <stdint.h>

namespace {

using namespace seqk_rows;

constexpr int kOuterMax = SEQK_K_LEAD_DIMS; /* dims other than the softmax dim */
constexpr int kWarpBlock = 128;             /* warp-per-row kernel: 4 warps per block */
constexpr int kStreamBlock = 512;           /* two-pass kernels (always launched with this) */
constexpr int kUnroll = 4;                  /* chunks in flight per thread when streaming */
constexpr int kStridedHold = 16;            /* strided kernel: elements a thread keeps */
/* The streaming kernels promise ptxas one block per SM (__launch_bounds__(kStreamBlock,
   kStreamMinBlocks)): with kUnroll chunks in flight the 2-byte variants need 70-80 registers, so
   one 512-thread block per SM is what they get anyway, and without the hint ptxas 13.0 held one
   of them (twopass, fp16, sm_90) at 64 registers with an 8-byte spill (2026-12-02). */
constexpr int kStreamMinBlocks = 1;

/* Where one row lives: x offset, y offset (elements), the columns that take part (n_valid; the
   rest of the row is written as 0), and an opaque slot for the row's lse. */
struct row_ref {
  int64_t xo, yo, n_valid, aux;
};

/* v = sgn * x; e = exp2((v - m) * k); lse = lse_mul * m + log(sum). softmax: {1, log2 e, 1}. */
struct row_math {
  float sgn, k, lse_mul;
};

/* The dims other than the softmax dim, outermost first, after dropping size-1 dims and merging
   neighbours (host/cuda_softmax.c): outer index r -> x and y offsets. The loop is unrolled over
   the fixed maximum so every array index is a constant (no local-memory copy of the kernel
   parameter); a single merged dim (the usual case) costs no division at all. */
struct outer_dims {
  int32_t ndim;
  int64_t shape[kOuterMax];
  int64_t xs[kOuterMax], ys[kOuterMax];

  __device__ __forceinline__ void offsets(int64_t r, int64_t &xo, int64_t &yo) const {
    xo = 0;
    yo = 0;
    SEQK_UNROLL
    for (int d = kOuterMax - 1; d >= 0; --d) {
      if (d < ndim) {
        int64_t i = r;
        if (d > 0) {
          i = r % shape[d];
          r /= shape[d];
        }
        xo += i * xs[d];
        yo += i * ys[d];
      }
    }
  }
};

/* seqk_softmax rows: every column takes part, no lse. */
struct softmax_rows {
  static constexpr bool kSplittable = true;
  outer_dims outer;
  int64_t n;

  __device__ __forceinline__ row_ref row(int64_t r) const {
    row_ref rr;
    outer.offsets(r, rr.xo, rr.yo);
    rr.n_valid = n;
    rr.aux = 0;
    return rr;
  }
  __device__ __forceinline__ void finish(const row_ref &, float) const {}
};

/* Attention rows r = (b*H + h)*Sq + i over fp32 scores [B,H,Sq,Sk] (row stride Sk): the keys
   j < visible take part, with visible = Sk_b for i < Sq_b, capped at i + Sk_b - Sq_b + 1 + right
   with a right extent (causal: 0; bottom-right alignment per batch), 0 for padding rows (a left
   window's keys are -inf scores already: attention_masks.cu, score_mod); p is [B,H,Sq,Sk] with stride 1
   on the last dim, lse [B,H,Sq] fp32 or NULL. The lengths come from device arrays and are
   clamped to [0, Sq] / [0, Sk], so a bad length cannot send the kernel out of bounds. */
struct attention_rows {
  static constexpr bool kSplittable = false;
  int64_t H, Sq, n;
  int64_t ps0, ps1, ps2, ls0, ls1, ls2;
  float *lse;
  const int32_t *seqlens_q, *seqlens_k;
  int32_t right;

  __device__ __forceinline__ row_ref row(int64_t r) const {
    const int64_t i = r % Sq, bh = r / Sq, h = bh % H, b = bh / H;
    int64_t sq = Sq, sk = n;
    if (seqlens_q) {
      sq = seqlens_q[b];
      sq = sq < 0 ? 0 : sq > Sq ? Sq : sq;
    }
    if (seqlens_k) {
      sk = seqlens_k[b];
      sk = sk < 0 ? 0 : sk > n ? n : sk;
    }
    /* The rule of visible_keys.cuh, inline (see there why). */
    int64_t visible = i < sq ? sk : 0;
    if (right >= 0 && visible > i + sk - sq + 1 + right) visible = i + sk - sq + 1 + right;
    row_ref rr;
    rr.xo = r * n;
    rr.yo = b * ps0 + h * ps1 + i * ps2;
    rr.n_valid = visible > 0 ? visible : 0;
    rr.aux = r;
    return rr;
  }
  /* The lse offset is recomputed here rather than carried through the row in registers: the
     block kernels run at the 64-register limit of 1024-thread blocks. */
  __device__ __forceinline__ void finish(const row_ref &rr, float lse_value) const {
    if (!lse) return;
    const int64_t i = rr.aux % Sq, bh = rr.aux / Sq, h = bh % H, b = bh / H;
    lse[b * ls0 + h * ls1 + i * ls2] = lse_value;
  }
};

/* The teams that reduce a row: `width` lanes of a warp, or the whole block.
   Each reduces R independent values in place (R rows at once: a warp team interleaves their
   shuffles; a block team takes one row at a time). */
struct warp_team {
  int width;
  template <int R>
  __device__ __forceinline__ void max(float *v) const {
    for (int o = width >> 1; o > 0; o >>= 1) {
      SEQK_UNROLL
      for (int j = 0; j < R; ++j) v[j] = fmaxf(v[j], __shfl_xor_sync(0xffffffffu, v[j], o, width));
    }
  }
  template <int R>
  __device__ __forceinline__ void sum(float *v) const {
    for (int o = width >> 1; o > 0; o >>= 1) {
      SEQK_UNROLL
      for (int j = 0; j < R; ++j) v[j] += __shfl_xor_sync(0xffffffffu, v[j], o, width);
    }
  }
};
struct block_team {
  float *red;
  template <int R>
  __device__ __forceinline__ void max(float *v) const {
    static_assert(R == 1, "a block reduces one row at a time");
    v[0] = block_max(v[0], red);
  }
  template <int R>
  __device__ __forceinline__ void sum(float *v) const {
    static_assert(R == 1, "a block reduces one row at a time");
    v[0] = block_sum(v[0], red);
  }
};

/* A row's natural-log lse from its statistics: +inf when no column takes part (the attention
   rows' "no visible key"); NaN when columns take part but their sum is 0 (all -inf, e.g. fp32
   overflow of the scores: no softmax exists, and the row must not pass for empty) or NaN. */
__device__ __forceinline__ float row_lse(bool any, float m, float s, const row_math &mth) {
  if (!any) return INFINITY;
  return s > 0.0f ? mth.lse_mul * m + logf(s) : NAN;
}

/* ---- the row bodies ----------------------------------------------------------------------------- */

/* R rows held on chip at once: member `rank` of a team of `team` threads keeps chunks rank,
   rank+team, ... of each (NV chunks of W elements per row, in registers), so every row is read
   once and written once. The 16-byte loads of all R rows are issued before any is used and the
   R reductions run interleaved (independent shuffles), which is what puts R * NV loads in flight
   where a row alone gives a thread only one or two chunks. lse[j] gets row j's natural-log lse
   (+inf for a row with no column taking part). Row j: x[j], y[j], n_valid[j] <= n[j] columns. */
template <typename Tin, typename Tout, int W, int NV, int R, typename Team>
__device__ __forceinline__ void rows_on_chip(const Tin *const *x, Tout *const *y,
                                             const int *n_valid, const int *n, int rank, int team,
                                             const Team &t, const row_math &mth, float *lse) {
  float v[R][NV * W];
  int c0[NV];
  bool live[NV];
  SEQK_UNROLL
  for (int it = 0; it < NV; ++it) {
    c0[it] = (it * team + rank) * W;
    live[it] = true;
  }
  if constexpr (W == 1) {
    SEQK_UNROLL
    for (int j = 0; j < R; ++j)
      load_chunks<Tin, W, NV>(x[j], c0, live, n_valid[j], n[j], mth.sgn, v[j]);
  } else {
    uint4 raw[R][NV][chunk_of<Tin, W>::kWords];
    SEQK_UNROLL
    for (int j = 0; j < R; ++j) issue_chunks<Tin, W, NV>(x[j], c0, live, n_valid[j], n[j], raw[j]);
    SEQK_UNROLL
    for (int j = 0; j < R; ++j)
      finish_chunks<Tin, W, NV>(x[j], c0, live, n_valid[j], n[j], mth.sgn, raw[j], v[j]);
  }
  float m[R], s[R];
  SEQK_UNROLL
  for (int j = 0; j < R; ++j) {
    m[j] = -INFINITY;
    SEQK_UNROLL
    for (int i = 0; i < NV * W; ++i) m[j] = fmaxf(m[j], v[j][i]);
  }
  t.template max<R>(m);
  SEQK_UNROLL
  for (int j = 0; j < R; ++j) {
    s[j] = 0.0f;
    SEQK_UNROLL
    for (int i = 0; i < NV * W; ++i) {
      v[j][i] = exp_rel(v[j][i], m[j], mth.k);
      s[j] += v[j][i];
    }
  }
  t.template sum<R>(s);
  SEQK_UNROLL
  for (int j = 0; j < R; ++j) {
    /* 0/0 would make an empty (fully masked) row NaN: it is written as zeros instead. An all
       -inf softmax row still has n_valid > 0, so it gets 0 * (1/0) = NaN as torch does. */
    const float inv = n_valid[j] > 0 ? 1.0f / s[j] : 0.0f;
    SEQK_UNROLL
    for (int i = 0; i < NV * W; ++i) v[j][i] *= inv;
    SEQK_UNROLL
    for (int it = 0; it < NV; ++it)
      store_masked<Tout, W>(y[j], (it * team + rank) * W, n[j], v[j] + it * W);
    lse[j] = row_lse(n_valid[j] > 0, m[j], s[j], mth);
  }
}

/* Online statistics of chunks [ch_begin, ch_end) of a row (chunk c = columns c*W ..), kUnroll
   chunks per thread per step so that several 16-byte loads are in flight before any is used. */
template <typename Tin, int W>
__device__ __forceinline__ row_stats stats_range(const Tin *x, int64_t ch_begin, int64_t ch_end,
                                                 int64_t n_valid, int rank, int team,
                                                 const row_math &mth) {
  row_stats st = stats_empty();
  for (int64_t ch = ch_begin + rank; ch < ch_end; ch += (int64_t)kUnroll * team) {
    float v[kUnroll * W];
    int64_t c0[kUnroll];
    bool live[kUnroll];
    SEQK_UNROLL
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = ch + (int64_t)u * team;
      c0[u] = c * W;
      live[u] = c < ch_end;
    }
    /* The columns past n_valid are not read at all here (n_mem = n_valid). */
    load_chunks<Tin, W, kUnroll>(x, c0, live, n_valid, n_valid, mth.sgn, v);
    stats_add<kUnroll * W>(st, v, mth.k);
  }
  return st;
}

/* y = exp2((v - m) * k) * inv over chunks [ch_begin, ch_end), re-reading x (0 where masked),
   last chunk first when kReverse. */
template <typename Tin, typename Tout, int W, bool kReverse>
__device__ __forceinline__ void normalize_range(const Tin *x, Tout *y, int64_t ch_begin,
                                                int64_t ch_end, int64_t n_valid, int64_t n,
                                                int rank, int team, float m, float inv,
                                                const row_math &mth) {
  const int64_t count = ch_end - ch_begin;
  for (int64_t i0 = rank; i0 < count; i0 += (int64_t)kUnroll * team) {
    float v[kUnroll * W];
    int64_t c0[kUnroll];
    bool live[kUnroll];
    SEQK_UNROLL
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = i0 + (int64_t)u * team;
      c0[u] = (kReverse ? ch_end - 1 - i : ch_begin + i) * W;
      live[u] = i < count;
    }
    load_chunks<Tin, W, kUnroll>(x, c0, live, n_valid, n, mth.sgn, v);
    SEQK_UNROLL
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = i0 + (int64_t)u * team;
      if (i < count) {
        const int64_t ch = kReverse ? ch_end - 1 - i : ch_begin + i;
        SEQK_UNROLL
        for (int e = 0; e < W; ++e) v[u * W + e] = exp_rel(v[u * W + e], m, mth.k) * inv;
        store_masked<Tout, W>(y, ch * W, n, v + u * W);
      }
    }
  }
}

/* ---- kernels -------------------------------------------------------------------------------------- */

/* Rows a WARP lane group holds at once: enough that a lane has at least 4 16-byte loads in
   flight (NV chunks of kWords loads each per row); the scalar W == 1 fallback takes one row. */
template <typename Tin, int W, int NV>
struct warp_rows {
  static constexpr int kLoadsPerRow = NV * chunk_of<Tin, W>::kWords;
  static constexpr int kAtOnce = W == 1 || kLoadsPerRow >= 4 ? 1 : 4 / kLoadsPerRow;
};
template <typename Tin, int W, int NV>
constexpr int kWarpRowsAtOnce = warp_rows<Tin, W, NV>::kAtOnce;

/* WARP: `group` lanes (a power of two) per row, 32/group rows per warp side by side, each lane
   group holding R = kWarpRowsAtOnce rows (per_warp apart, so each load instruction of the warp
   still covers neighbouring rows) with NV chunks per lane per row. Every lane of a warp runs the
   same number of iterations (a lane past the last row works on empty rows), so the full-mask
   shuffles always see all 32 lanes.
   SASS, sm_90, 2026-12-02, 16-byte loads in flight per thread (before -> after): f32 and 16-bit
   softmax NV=1 1 -> 4, NV=2 2 -> 4; attention f32 -> 16-bit NV=1 2 -> 4; NV >= 4 (and the
   attention f32 -> 16-bit NV=2, 4) unchanged. */
template <typename Tin, typename Tout, int W, int NV, typename Geo>
__global__ void __launch_bounds__(kWarpBlock)
    softmax_warp_kernel(const Tin *x, Tout *y, Geo g, row_math mth, int64_t rows, int group) {
  constexpr int R = kWarpRowsAtOnce<Tin, W, NV>;
  const int lane = (int)threadIdx.x & 31;
  const int per_warp = 32 / group;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  const int64_t warp = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int64_t step = (int64_t)per_warp * R;
  for (int64_t base = warp * step; base < rows; base += warps * step) {
    row_ref rr[R];
    const Tin *xr[R];
    Tout *yr[R];
    int n_valid[R], n[R];
    SEQK_UNROLL
    for (int j = 0; j < R; ++j) {
      const int64_t r = base + lane / group + (int64_t)j * per_warp;
      rr[j] = row_ref{0, 0, 0, 0};
      if (r < rows) rr[j] = g.row(r);
      xr[j] = x + rr[j].xo;
      yr[j] = y + rr[j].yo;
      /* Row lengths here are <= kWarpMaxRow: 32-bit column arithmetic from here on. */
      n_valid[j] = (int)rr[j].n_valid;
      n[j] = r < rows ? (int)g.n : 0;
    }
    /* NV > 1 only happens with group == 32: a compile-time stride between a lane's chunks then
       lets the loads use immediate offsets (see the block kernel). */
    float lse[R];
    rows_on_chip<Tin, Tout, W, NV, R>(xr, yr, n_valid, n, lane & (group - 1), NV > 1 ? 32 : group,
                                      warp_team{group}, mth, lse);
    if ((lane & (group - 1)) == 0) {
      SEQK_UNROLL
      for (int j = 0; j < R; ++j)
        if (base + lane / group + (int64_t)j * per_warp < rows) g.finish(rr[j], lse[j]);
    }
  }
}

/* BLOCK: one row per block of kThreads threads (a compile-time stride: the NV loads of a thread
   then address base + immediate, which is what keeps 32 values per thread within the 64
   registers a 1024-thread block allows; with a run-time stride ptxas spilled). */
template <typename Tin, typename Tout, int W, int NV, int kThreads, typename Geo>
__global__ void __launch_bounds__(kThreads)
    softmax_block_kernel(const Tin *x, Tout *y, Geo g, row_math mth, int64_t rows) {
  SMEM_ARRAY(float, red, 32);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const row_ref rr = g.row(r);
    const Tin *xr = x + rr.xo;
    Tout *yr = y + rr.yo;
    const int n_valid = (int)rr.n_valid, n = (int)g.n;
    float lse;
    rows_on_chip<Tin, Tout, W, NV, 1>(&xr, &yr, &n_valid, &n, (int)threadIdx.x, kThreads,
                                      block_team{red}, mth, &lse);
    if (threadIdx.x == 0) g.finish(rr, lse);
  }
}

/* TWOPASS: one row per block, streamed twice (online statistics, then normalise backwards). */
template <typename Tin, typename Tout, int W, typename Geo>
__global__ void __launch_bounds__(kStreamBlock, kStreamMinBlocks)
    softmax_twopass_kernel(const Tin *x, Tout *y, Geo g, row_math mth, int64_t rows) {
  SMEM_ARRAY(float, red, 64);
  const int rank = (int)threadIdx.x, team = kStreamBlock;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const row_ref rr = g.row(r);
    row_stats st =
        stats_range<Tin, W>(x + rr.xo, 0, (rr.n_valid + W - 1) / W, rr.n_valid, rank, team, mth);
    st = block_stats(st, mth.k, red);
    const float inv = rr.n_valid > 0 ? 1.0f / st.s : 0.0f;
    /* Backwards: the row's tail, read last by the first pass, is what L2 most likely still has. */
    normalize_range<Tin, Tout, W, true>(x + rr.xo, y + rr.yo, 0, (g.n + W - 1) / W, rr.n_valid, g.n,
                                        rank, team, st.m, inv, mth);
    if (threadIdx.x == 0) g.finish(rr, row_lse(rr.n_valid > 0, st.m, st.s, mth));
  }
}

/* SPLIT, first kernel: block b = r * splits + part takes columns [part*chunk, +chunk) of row r
   and writes their (max, sum) to partial[b]. */
template <typename Tin, int W>
__global__ void __launch_bounds__(kStreamBlock, kStreamMinBlocks)
    softmax_split_stats_kernel(const Tin *x, softmax_rows g, row_math mth, int64_t rows,
                               int64_t splits, int64_t chunk, float2 *partial) {
  SMEM_ARRAY(float, red, 64);
  const int64_t total = rows * splits;
  for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
    /* rows * splits is small (few rows by construction): 32-bit division. */
    const int64_t r = (uint32_t)b / (uint32_t)splits, e0 = ((uint32_t)b % (uint32_t)splits) * chunk;
    const row_ref rr = g.row(r);
    const int64_t e1 = e0 + chunk < rr.n_valid ? e0 + chunk : rr.n_valid;
    row_stats st = stats_range<Tin, W>(x + rr.xo, e0 / W, (e1 + W - 1) / W, rr.n_valid,
                                       (int)threadIdx.x, kStreamBlock, mth);
    st = block_stats(st, mth.k, red);
    if (threadIdx.x == 0) {
      float2 part;
      part.x = st.m;
      part.y = st.s;
      partial[b] = part;
    }
  }
}

/* SPLIT, second kernel: the same blocks in reverse order (the chunks the first kernel read last
   are the likeliest L2 hits), each combining its row's partials and normalising its chunk. */
template <typename Tin, typename Tout, int W>
__global__ void __launch_bounds__(kStreamBlock, kStreamMinBlocks)
    softmax_split_normalize_kernel(const Tin *x, Tout *y, softmax_rows g, row_math mth,
                                   int64_t rows, int64_t splits, int64_t chunk,
                                   const float2 *partial) {
  SMEM_ARRAY(float, red, 64);
  const int64_t total = rows * splits;
  for (int64_t i = blockIdx.x; i < total; i += gridDim.x) {
    const int64_t b = total - 1 - i;
    /* rows * splits is small (few rows by construction): 32-bit division. */
    const int64_t r = (uint32_t)b / (uint32_t)splits, e0 = ((uint32_t)b % (uint32_t)splits) * chunk;
    const row_ref rr = g.row(r);
    row_stats st = stats_empty();
    for (int64_t q = threadIdx.x; q < splits; q += kStreamBlock) {
      const float2 part = partial[r * splits + q];
      st = stats_combine(st, row_stats{part.x, part.y}, mth.k);
    }
    st = block_stats(st, mth.k, red);
    const float inv = 1.0f / st.s;
    const int64_t e1 = e0 + chunk < g.n ? e0 + chunk : g.n;
    normalize_range<Tin, Tout, W, false>(x + rr.xo, y + rr.yo, e0 / W, (e1 + W - 1) / W, rr.n_valid,
                                         g.n, (int)threadIdx.x, kStreamBlock, st.m, inv, mth);
  }
}

/* STRIDED: the softmax dim has stride sx (x) / sy (y) != 1. A (TX, TY) block takes TX
   neighbouring "columns" (outer indices, the smallest-stride outer dim fastest, so threadIdx.x
   walks contiguous memory when there is such a dim: coalesced without a transpose), and its TY
   threads per column split the dim: thread ty reads j = ty, ty + TY, ... The per-thread
   statistics meet in a shared-memory tree over ty. kHold: each thread's elements (at most
   kStridedHold) stay in registers, one read; otherwise the column is read again to normalise. */
struct strided_geo {
  outer_dims outer;
  int64_t n, sx, sy;
};

template <typename T, bool kHold>
__global__ void __launch_bounds__(1024)
    softmax_strided_kernel(const T *x, T *y, strided_geo g, float k, int64_t cols) {
  SMEM_ARRAY(float, red_m, 1024);
  SMEM_ARRAY(float, red_s, 1024);
  const int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
  const int TX = (int)blockDim.x, TY = (int)blockDim.y;
  for (int64_t c0 = (int64_t)blockIdx.x * TX; c0 < cols; c0 += (int64_t)gridDim.x * TX) {
    const int64_t c = c0 + tx;
    int64_t xo = 0, yo = 0;
    if (c < cols) g.outer.offsets(c, xo, yo);
    const int64_t n = c < cols ? g.n : 0;
    const T *xc = x + xo;
    T *yc = y + yo;

    row_stats st = stats_empty();
    [[maybe_unused]] float held[kHold ? kStridedHold : 1];
    if constexpr (kHold) {
      SEQK_UNROLL
      for (int i = 0; i < kStridedHold; ++i) {
        const int64_t j = ty + (int64_t)i * TY;
        held[i] = j < n ? to_float(xc[j * g.sx]) : -INFINITY;
      }
      stats_add<kStridedHold>(st, held, k);
    } else {
      for (int64_t j0 = ty; j0 < n; j0 += 4 * (int64_t)TY) {
        float v[4];
        SEQK_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int64_t j = j0 + (int64_t)u * TY;
          v[u] = j < n ? to_float(xc[j * g.sx]) : -INFINITY;
        }
        stats_add<4>(st, v, k);
      }
    }

    red_m[ty * TX + tx] = st.m;
    red_s[ty * TX + tx] = st.s;
    __syncthreads();
    for (int off = TY >> 1; off > 0; off >>= 1) {
      if (ty < off) {
        const row_stats a{red_m[ty * TX + tx], red_s[ty * TX + tx]};
        const row_stats b{red_m[(ty + off) * TX + tx], red_s[(ty + off) * TX + tx]};
        const row_stats ab = stats_combine(a, b, k);
        red_m[ty * TX + tx] = ab.m;
        red_s[ty * TX + tx] = ab.s;
      }
      __syncthreads();
    }
    const float m = red_m[tx], inv = 1.0f / red_s[tx];
    __syncthreads(); /* red_* are rewritten by the next column group */

    if constexpr (kHold) {
      SEQK_UNROLL
      for (int i = 0; i < kStridedHold; ++i) {
        const int64_t j = ty + (int64_t)i * TY;
        if (j < n) yc[j * g.sy] = from_float<T>(exp_rel(held[i], m, k) * inv);
      }
    } else {
      for (int64_t j = ty; j < n; j += TY)
        yc[j * g.sy] = from_float<T>(exp_rel(to_float(xc[j * g.sx]), m, k) * inv);
    }
  }
}

/* ---- the dispatcher ------------------------------------------------------------------------------ */

enum variant_kind { K_WARP, K_BLOCK, K_TWOPASS, K_SPLIT, K_STRIDED_HOLD, K_STRIDED };

struct plan {
  variant_kind kind;
  int w;          /* elements per chunk: 16 / min(sizeof in, sizeof out) when vectorised, or 1 */
  int nv;         /* chunks per thread kept on chip (WARP, BLOCK) */
  int bucket;     /* BLOCK: index into kBlockBuckets */
  int group;      /* lanes per row (WARP) */
  int tx, ty;     /* block shape (BLOCK, TWOPASS, SPLIT: tx threads; STRIDED: tx * ty) */
  int64_t splits; /* SPLIT: blocks per row */
  int64_t chunk;  /* SPLIT: columns per block (a multiple of 256, so of every w) */
};

/* Row-length thresholds (elements): the warp kernel holds up to 32 per lane; the block kernel has
   four sizes (threads x elements per thread), the first that holds the row is used, so short
   rows get small blocks with few registers (more rows resident per SM) and only the longest
   rows pay for 32 registers of data per thread in 1024-thread blocks (one block per SM). */
constexpr int64_t kWarpMaxRow = 1024;
struct block_bucket {
  int threads, ept;
};
constexpr block_bucket kBlockBuckets[4] = {{256, 8}, {512, 16}, {1024, 16}, {1024, 32}};
constexpr int64_t kBlockMaxRow = 1024 * 32;
constexpr int64_t kSplitMinChunk = 4096;

int64_t pow2_at_least(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Picks the kernel for `rows` rows of n elements.
     contiguous  the softmax dim has stride 1 in x and y (or n == 1)
     vec_w       the 16-byte chunk width when every row start of x and y is 16-byte aligned
                 (data pointers and all outer strides), else 1
     sms         the device's multiprocessor count
     scratch_ok  the workspace may be used (seqk_softmax, unless x or y live in it)
   Variants, with the memory traffic per row of n elements of b bytes (in = out here):
     WARP        n <= 1024, stride 1: `group` = pow2 >= ceil(n/w) lanes (<= 32) per row, up to 32
                 elements per lane in registers; short rows share a warp (32/group rows each)
                 and a lane group holds kWarpRowsAtOnce rows at once when one row gives a lane
                 fewer than 4 16-byte loads (launch_warp covers rows / that many).
                 n*b read + n*b written: one read, one write.
     BLOCK       1024 < n <= 32768, stride 1: a block per row holding it in registers, the
                 first of (threads x elements per thread) 256x8, 512x16, 1024x16, 1024x32 that
                 holds it (n <= 2048, 8192, 16384, 32768); vectorised, a thread holds at
                 least 64 bytes of x, so the same n goes to fewer threads where the bucket's
                 elements per thread are fewer (launch_block). n*b read + n*b written.
     SPLIT       n > 32768, stride 1, rows < 2 * SMs, scratch_ok: the row is cut into `splits`
                 chunks (>= 4096 columns each) so that rows * splits ~ 4 * SMs blocks keep every
                 SM streaming; kernel 1 writes a (max, sum) per chunk, kernel 2 combines them and
                 normalises. 2*n*b read (the second partly from L2: it runs in reverse order) +
                 n*b written + 16 bytes per chunk.
     TWOPASS     n > 32768 otherwise (many rows already fill the GPU; the attention path, which
                 must not touch the workspace holding its scores): a block per row, online
                 (max, sum) in one read, then normalise backwards. 2*n*b read + n*b written.
     STRIDED_HOLD / STRIDED  the softmax dim has stride != 1 (another dim, or a strided last
                 dim): TX columns x TY threads per column, TX over the outer dim with the
                 smallest stride so loads coalesce across neighbouring columns. HOLD when
                 n <= TY * 16 (one read, n*b + n*b); otherwise 2*n*b read + n*b written.
   Rows of length 1, odd lengths, and rows whose starts are not 16-byte aligned take the same
   variants with w = 1 (scalar accesses). The thresholds are plain row lengths and the SM count,
   so small shapes reach every variant on the emulated device (8 SMs: SPLIT below 16 rows). */
plan choose_variant(int64_t n, int64_t rows, int contiguous, int vec_w, int sms, int scratch_ok) {
  plan p = {};
  if (!contiguous) {
    const int64_t tx_min = pow2_at_least(rows < 32 ? rows : 32);
    int64_t ty = pow2_at_least(ceil_div(n, kStridedHold));
    if (ty > 1024 / tx_min) ty = 1024 / tx_min;
    /* At least 256 threads per block when the columns allow it (short dims, many columns). */
    int64_t tx = 256 / ty > tx_min ? 256 / ty : tx_min;
    if (tx > pow2_at_least(rows)) tx = pow2_at_least(rows);
    if (tx < tx_min) tx = tx_min;
    p.kind = n <= ty * kStridedHold ? K_STRIDED_HOLD : K_STRIDED;
    p.w = 1;
    p.tx = (int)tx;
    p.ty = (int)ty;
    return p;
  }
  p.w = vec_w > 1 && n >= vec_w ? vec_w : 1;
  const int64_t chunks = ceil_div(n, p.w);
  if (n <= kWarpMaxRow) {
    p.kind = K_WARP;
    if (chunks <= 32) {
      p.nv = 1;
      p.group = (int)pow2_at_least(chunks > 0 ? chunks : 1);
    } else {
      p.group = 32;
      p.nv = (int)pow2_at_least(ceil_div(chunks, 32));
    }
    p.tx = kWarpBlock;
  } else if (n <= kBlockMaxRow) {
    p.kind = K_BLOCK;
    p.bucket = 0;
    while ((int64_t)kBlockBuckets[p.bucket].threads * kBlockBuckets[p.bucket].ept < n) ++p.bucket;
    p.nv = kBlockBuckets[p.bucket].ept / p.w;
    p.tx = kBlockBuckets[p.bucket].threads;
  } else if (scratch_ok && rows < 2 * (int64_t)sms) {
    p.kind = K_SPLIT;
    int64_t splits = ceil_div(4 * (int64_t)sms, rows);
    if (splits > ceil_div(n, kSplitMinChunk)) splits = ceil_div(n, kSplitMinChunk);
    p.chunk = ceil_div(ceil_div(n, splits), 256) * 256;
    p.splits = ceil_div(n, p.chunk);
    p.tx = kStreamBlock;
    /* The split kernels index blocks in 32 bits (rows * splits <= ~6 * SMs here). */
    if (p.splits < 2 || rows * p.splits > INT32_MAX) p.kind = K_TWOPASS;
  } else {
    p.kind = K_TWOPASS;
    p.tx = kStreamBlock;
  }
  return p;
}

/* Every kernel here loops over the rows (columns) its grid does not cover. */
unsigned grid_for(int64_t items, int64_t per_block) {
  return seqk_kernels::grid_blocks(items, per_block);
}

/* WARP with the smallest instantiated NV >= p.nv (NV * W <= 32: at most 32 floats per lane). */
template <typename Tin, typename Tout, int W, int NV, typename Geo>
void launch_warp(const plan &p, const Tin *x, Tout *y, const Geo &g, const row_math &mth,
                 int64_t rows, cudaStream_t stream) {
  if constexpr (NV * W < 32) {
    if (p.nv > NV) {
      launch_warp<Tin, Tout, W, NV * 2, Geo>(p, x, y, g, mth, rows, stream);
      return;
    }
  }
  const int64_t rows_per_block = (kWarpBlock / 32) * (32 / p.group) * kWarpRowsAtOnce<Tin, W, NV>;
  launch(dim3(grid_for(rows, rows_per_block)), dim3(kWarpBlock), 0, stream,
         softmax_warp_kernel<Tin, Tout, W, NV, Geo>, x, y, g, mth, rows, p.group);
}

/* BLOCK with bucket p.bucket (threads and elements per thread fixed at compile time). */
template <typename Tin, typename Tout, int W, int kBucket, typename Geo>
void launch_block(const plan &p, const Tin *x, Tout *y, const Geo &g, const row_math &mth,
                  int64_t rows, cudaStream_t stream) {
  if constexpr (kBucket + 1 < 4) {
    if (p.bucket > kBucket) {
      launch_block<Tin, Tout, W, kBucket + 1, Geo>(p, x, y, g, mth, rows, stream);
      return;
    }
  }
  /* A vectorised thread holds at least 64 bytes of x (4 16-byte loads in flight): where the
     bucket's elements per thread are fewer, the same row length goes to fewer, fuller threads
     (f32 in: 256x8 -> 128x16; 16-bit: 256x8, 512x16, 1024x16 -> 64x32, 256x32, 512x32).
     SASS, sm_90, 2026-12-02, 16-byte loads in flight per thread (before -> after): f32 256x8
     2 -> 4 (128x16); 16-bit 256x8 1 -> 4, 512x16 and 1024x16 2 -> 4; attention f32 -> 16-bit
     256x8 2 -> 4 (128x16); the other buckets (4 or 8) unchanged. */
  constexpr block_bucket kB = kBlockBuckets[kBucket];
  constexpr int kMinEpt = W == 1 ? 1 : 64 / (int)sizeof(Tin);
  constexpr int kEpt = kB.ept > kMinEpt ? kB.ept : kMinEpt;
  constexpr int kThreads = kB.threads * kB.ept / kEpt, kNv = kEpt / W;
  launch(dim3(grid_for(rows, 1)), dim3(kThreads), 0, stream,
         softmax_block_kernel<Tin, Tout, W, kNv, kThreads, Geo>, x, y, g, mth, rows);
}

template <typename Tin, typename Tout, int W, typename Geo>
void launch_rows_w(const plan &p, const Tin *x, Tout *y, const Geo &g, const row_math &mth,
                   int64_t rows, cudaStream_t stream, float2 *partial) {
  switch (p.kind) {
    case K_WARP: launch_warp<Tin, Tout, W, 1, Geo>(p, x, y, g, mth, rows, stream); break;
    case K_BLOCK: launch_block<Tin, Tout, W, 0, Geo>(p, x, y, g, mth, rows, stream); break;
    case K_TWOPASS:
      launch(dim3(grid_for(rows, 1)), dim3(p.tx), 0, stream,
             softmax_twopass_kernel<Tin, Tout, W, Geo>, x, y, g, mth, rows);
      break;
    case K_SPLIT:
      if constexpr (Geo::kSplittable) {
        const int64_t blocks = rows * p.splits;
        launch(dim3(grid_for(blocks, 1)), dim3(p.tx), 0, stream, softmax_split_stats_kernel<Tin, W>,
               x, g, mth, rows, p.splits, p.chunk, partial);
        launch(dim3(grid_for(blocks, 1)), dim3(p.tx), 0, stream,
               softmax_split_normalize_kernel<Tin, Tout, W>, x, y, g, mth, rows, p.splits, p.chunk,
               (const float2 *)partial);
      }
      break;
    default: break;
  }
}

/* Row variants for one (in, out) type pair: the vector width follows the narrower type, so one
   chunk is one 16-byte access on that side and one or two on the other. */
template <typename Tin, typename Tout, typename Geo>
void launch_rows(const plan &p, const Tin *x, Tout *y, const Geo &g, const row_math &mth,
                 int64_t rows, cudaStream_t stream, float2 *partial) {
  constexpr int kVec = 16 / (int)(sizeof(Tin) < sizeof(Tout) ? sizeof(Tin) : sizeof(Tout));
  if (p.w == kVec)
    launch_rows_w<Tin, Tout, kVec, Geo>(p, x, y, g, mth, rows, stream, partial);
  else
    launch_rows_w<Tin, Tout, 1, Geo>(p, x, y, g, mth, rows, stream, partial);
}

template <typename T>
void launch_softmax(const plan &p, const void *x, void *y, const outer_dims &outer, int64_t n,
                    int64_t sx, int64_t sy, int64_t rows, cudaStream_t stream, float2 *partial) {
  const T *xp = static_cast<const T *>(x);
  T *yp = static_cast<T *>(y);
  const row_math mth{1.0f, kLog2e, 1.0f};
  if (p.kind == K_STRIDED_HOLD || p.kind == K_STRIDED) {
    const strided_geo g{outer, n, sx, sy};
    const dim3 block((unsigned)p.tx, (unsigned)p.ty);
    const unsigned grid = grid_for(rows, p.tx);
    if (p.kind == K_STRIDED_HOLD)
      launch(dim3(grid), block, 0, stream, softmax_strided_kernel<T, true>, xp, yp, g, mth.k, rows);
    else
      launch(dim3(grid), block, 0, stream, softmax_strided_kernel<T, false>, xp, yp, g, mth.k,
             rows);
    return;
  }
  const softmax_rows g{outer, n};
  launch_rows<T, T>(p, xp, yp, g, mth, rows, stream, partial);
}

outer_dims outer_of(const seqk_k_softmax_params *p) {
  outer_dims o = {};
  o.ndim = p->outer_ndim;
  for (int d = 0; d < p->outer_ndim; ++d) {
    o.shape[d] = p->outer_shape[d];
    o.xs[d] = p->outer_xs[d];
    o.ys[d] = p->outer_ys[d];
  }
  return o;
}

int aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* The variant seqk_k_softmax_params runs (scratch_ok: the split variant may be chosen). */
plan softmax_plan(const seqk_k_softmax_params *p, int sms, int scratch_ok) {
  const int contiguous = p->n == 1 || (p->sx == 1 && p->sy == 1);
  const int vec_w = p->dtype == SEQK_DTYPE_F32 ? 4 : 8; /* 16 bytes */
  int vec_ok = aligned16(p->x) && aligned16(p->y);
  for (int32_t d = 0; d < p->outer_ndim; ++d)
    vec_ok = vec_ok && p->outer_xs[d] % vec_w == 0 && p->outer_ys[d] % vec_w == 0;
  return choose_variant(p->n, p->rows, contiguous, vec_ok ? vec_w : 1, sms, scratch_ok);
}

}   // namespace

extern "C" size_t seqk_k_softmax_scratch_bytes(const seqk_k_softmax_params *p, int sms) {
  if (p->rows == 0 || p->n == 0) return 0;
  const plan pl = softmax_plan(p, sms, 1);
  return pl.kind == K_SPLIT ? (size_t)(pl.splits * p->rows) * sizeof(float2) : 0;
}

extern "C" cudaError_t seqk_k_softmax(const seqk_k_softmax_params *p, int sms, void *scratch,
                                      cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->rows == 0 || p->n == 0) return cudaSuccess;
  const plan pl = softmax_plan(p, sms, scratch != nullptr);
  float2 *partial = static_cast<float2 *>(scratch);
  const outer_dims outer = outer_of(p);
  switch (p->dtype) {
    case SEQK_DTYPE_F32:
      launch_softmax<float>(pl, p->x, p->y, outer, p->n, p->sx, p->sy, p->rows, stream, partial);
      break;
    case SEQK_DTYPE_F16:
      launch_softmax<__half>(pl, p->x, p->y, outer, p->n, p->sx, p->sy, p->rows, stream, partial);
      break;
    case SEQK_DTYPE_BF16:
      launch_softmax<__nv_bfloat16>(pl, p->x, p->y, outer, p->n, p->sx, p->sy, p->rows, stream,
                                    partial);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_attention_softmax(const seqk_k_attention_softmax_params *a, int sms,
                                                cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t rows = a->B * a->H * a->Sq;
  if (rows == 0) return cudaSuccess;
  attention_rows g;
  g.H = a->H;
  g.Sq = a->Sq;
  g.n = a->Sk;
  g.ps0 = a->p_stride[0];
  g.ps1 = a->p_stride[1];
  g.ps2 = a->p_stride[2];
  g.lse = a->lse;
  g.ls0 = g.lse ? a->lse_stride[0] : 0;
  g.ls1 = g.lse ? a->lse_stride[1] : 0;
  g.ls2 = g.lse ? a->lse_stride[2] : 0;
  g.seqlens_q = a->seqlens_q;
  g.seqlens_k = a->seqlens_k;
  g.right = a->right;

  /* A negative scale flips the row's order: softmax(scale*s) = softmax(|scale| * (-s)), so the
     kernels only ever look for a maximum. */
  const double sa = fabs((double)a->scale);
  const row_math mth{a->scale < 0.0f ? -1.0f : 1.0f, (float)(sa * 1.4426950408889634), (float)sa};

  const int vec_w = a->p_dtype == SEQK_DTYPE_F32 ? 4 : 8; /* out is never wider than fp32 */
  int vec_ok = aligned16(a->scores) && a->Sk % 4 == 0 && aligned16(a->p);
  const int64_t p_shape[3] = {a->B, a->H, a->Sq};
  for (int d = 0; d < 3; ++d)
    if (p_shape[d] > 1) vec_ok = vec_ok && a->p_stride[d] % vec_w == 0;
  const plan pl = choose_variant(a->Sk, rows, 1, vec_ok ? vec_w : 1, sms, 0);

  switch (a->p_dtype) {
    case SEQK_DTYPE_F32:
      launch_rows<float, float>(pl, a->scores, static_cast<float *>(a->p), g, mth, rows, stream,
                                nullptr);
      break;
    case SEQK_DTYPE_F16:
      launch_rows<float, __half>(pl, a->scores, static_cast<__half *>(a->p), g, mth, rows, stream,
                                 nullptr);
      break;
    case SEQK_DTYPE_BF16:
      launch_rows<float, __nv_bfloat16>(pl, a->scores, static_cast<__nv_bfloat16 *>(a->p), g, mth,
                                        rows, stream, nullptr);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}
