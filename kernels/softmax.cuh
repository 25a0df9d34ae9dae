/*
 * softmax.cuh - device building blocks of a row softmax: element conversions, 16-byte chunk loads
 * and stores, the online (max, sum) state with its combine, and warp-group / block reductions.
 * kernels/softmax.cu builds every softmax variant (seqk_softmax and the attention softmax) from
 * these, so the numerics live in one place; a later kernel that needs the same row reduction
 * (e.g. the fused attention's lse) should include this header rather than re-derive it.
 *
 * Numerics (all fp32, exp2 based):
 *   v_j  = sgn * x_j, with sgn = +-1 (exact), so the row maximum is always a max;
 *   e_j  = exp2((v_j - m) * k), k = |scale| * log2(e) folded into one factor on the host;
 *   y_j  = e_j * (1 / sum_j e_j).
 * Subtracting before scaling keeps x = 1000 + small exact (x*k - m*k would lose the small part).
 * torch's special cases come out of IEEE arithmetic with two guards:
 *   - an element equal to -inf contributes exactly 0 (it is never fed to exp2, so -inf - -inf and
 *     -inf * 0 cannot make a NaN): an all -inf row has sum 0 and gives 0 * (1/0) = NaN, as torch;
 *   - a state whose max is still -inf is rescaled by 0, not by exp2(NaN), so a chunk of -inf
 *     values merged into a finite row changes nothing;
 *   - +inf gives exp2(inf - inf) = NaN in the sum and NaN everywhere; a NaN element likewise
 *     (fmaxf ignores it in the max, but its exp2 is NaN).
 * All functions here are inline: including this header adds no symbols.
 */
#ifndef SEQK_KERNELS_SOFTMAX_CUH
#define SEQK_KERNELS_SOFTMAX_CUH

#include "cuda_compat.cuh"
#include "convert.cuh"

#include <math.h>
#include <stdint.h>

namespace seqk_rows {

constexpr float kLog2e = 1.4426950408889634f;

using seqk_kernels::from_float;
using seqk_kernels::to_float;

/* One 32-bit word of a 16-byte chunk <-> 4 / sizeof(T) floats (low half = lower address). */
template <typename T>
__device__ __forceinline__ void unpack_word(uint32_t w, float *out);
template <>
__device__ __forceinline__ void unpack_word<float>(uint32_t w, float *out) {
  out[0] = __uint_as_float(w);
}
template <>
__device__ __forceinline__ void unpack_word<__half>(uint32_t w, float *out) {
  out[0] = __half2float(__ushort_as_half((unsigned short)(w & 0xffffu)));
  out[1] = __half2float(__ushort_as_half((unsigned short)(w >> 16)));
}
template <>
__device__ __forceinline__ void unpack_word<__nv_bfloat16>(uint32_t w, float *out) {
  out[0] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(w & 0xffffu)));
  out[1] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(w >> 16)));
}
template <typename T>
__device__ __forceinline__ uint32_t pack_word(const float *in);
template <>
__device__ __forceinline__ uint32_t pack_word<float>(const float *in) {
  return __float_as_uint(in[0]);
}
template <>
__device__ __forceinline__ uint32_t pack_word<__half>(const float *in) {
  return (uint32_t)__half_as_ushort(__float2half_rn(in[0])) |
         ((uint32_t)__half_as_ushort(__float2half_rn(in[1])) << 16);
}
template <>
__device__ __forceinline__ uint32_t pack_word<__nv_bfloat16>(const float *in) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(in[0])) |
         ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(in[1])) << 16);
}

/* A 16-byte-vector chunk of W elements of T: kWords 16-byte words. W == 1 is a plain scalar. */
template <typename T, int W>
struct chunk_of {
  static_assert(W == 1 || (W * sizeof(T)) % 16 == 0, "a vector chunk is whole 16-byte words");
  static constexpr int kWords = W == 1 ? 0 : (int)(W * sizeof(T) / 16);
};
/* The words r[0..kWords) of a chunk -> its W floats. */
template <typename T, int W>
__device__ __forceinline__ void unpack_chunk(const uint4 *r, float *v) {
  constexpr int kPerWord = 4 / (int)sizeof(T);
  SEQK_UNROLL
  for (int i = 0; i < chunk_of<T, W>::kWords; ++i) {
    unpack_word<T>(r[i].x, v + (4 * i + 0) * kPerWord);
    unpack_word<T>(r[i].y, v + (4 * i + 1) * kPerWord);
    unpack_word<T>(r[i].z, v + (4 * i + 2) * kPerWord);
    unpack_word<T>(r[i].w, v + (4 * i + 3) * kPerWord);
  }
}
template <typename T, int W>
__device__ __forceinline__ void store_chunk(T *p, const float *v) {
  if constexpr (W == 1) {
    p[0] = from_float<T>(v[0]);
  } else {
    constexpr int kPerWord = 4 / (int)sizeof(T);
    uint4 *q = reinterpret_cast<uint4 *>(p);
    SEQK_UNROLL
    for (int i = 0; i < chunk_of<T, W>::kWords; ++i) {
      uint4 r;
      r.x = pack_word<T>(v + (4 * i + 0) * kPerWord);
      r.y = pack_word<T>(v + (4 * i + 1) * kPerWord);
      r.z = pack_word<T>(v + (4 * i + 2) * kPerWord);
      r.w = pack_word<T>(v + (4 * i + 3) * kPerWord);
      q[i] = r;
    }
  }
}

/* NV chunks of a row into v[u*W ..]: chunk u is columns c0[u] .. c0[u]+W-1 (c0[u] a multiple of
   W), taking part when live[u]; v = sgn * x for the columns < n_valid of a live chunk, -inf (masked,
   contributes 0) otherwise; n_mem >= n_valid is how many columns the row has in memory. I is the
   column index type: int where the row is known to be short (the on-chip variants), int64_t for
   the streaming ones.
   Memory-level parallelism is the point: a live chunk that lies wholly in memory and starts before
   n_valid moves as 16-byte loads (LDG.128, predicated, no branch), and the loads of all NV chunks
   are issued before any of their values is used, so a thread has NV * W * sizeof(T) / 16 of them
   in flight (one per chunk-branch was all the earlier per-chunk loader got). Only then: the one
   chunk of a row that runs past the row's end is read element by element, and the columns at and
   past n_valid (e.g. the causal edge) are masked in registers, which a thread whose chunks all lie
   before n_valid skips. A chunk wholly past n_valid reads nothing.
   SASS, 2026-12-02, sm_90 and sm_80 alike: every vector instantiation issues all of a thread's
   LDG.E.128 before the first use, e.g. 8 in the 1024x32 f32 block kernel, 8 in the 4-chunk
   f32 -> f16 attention ones, 4 per pass in the streaming loops; was 1 per chunk-branch (2 where
   a chunk is two words). Where a thread's share of a row is one or two chunks, the callers keep
   several rows in flight (issue_chunks / finish_chunks below) or give the thread more of the row,
   so every vector one-read instantiation has at least 4 (softmax.cu, the warp and block kernels). */
/* The two halves of load_chunks, for a caller that keeps several rows' loads in flight at once
   (the warp kernel's R rows): issue_chunks starts the 16-byte loads of the whole chunks into raw,
   finish_chunks (after every row's issue_chunks) unpacks them, reads the one chunk past the row's
   end element by element and masks. W > 1 only. */
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void issue_chunks(const T *row, const I *c0, const bool *live, I n_valid,
                                             I n_mem, uint4 (*raw)[chunk_of<T, W>::kWords]) {
  constexpr int kWords = chunk_of<T, W>::kWords;
  SEQK_UNROLL
  for (int u = 0; u < NV; ++u) {
    const bool whole = live[u] && c0[u] < n_valid && n_mem - c0[u] >= W;
    SEQK_UNROLL
    for (int i = 0; i < kWords; ++i) {
      raw[u][i] = make_uint4(0u, 0u, 0u, 0u);
      if (whole) raw[u][i] = reinterpret_cast<const uint4 *>(row + c0[u])[i];
    }
  }
}
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void finish_chunks(const T *row, const I *c0, const bool *live,
                                              I n_valid, I n_mem, float sgn,
                                              const uint4 (*raw)[chunk_of<T, W>::kWords],
                                              float *v) {
  SEQK_UNROLL
  for (int u = 0; u < NV; ++u) unpack_chunk<T, W>(raw[u], v + u * W);
  bool all_valid = true;
  SEQK_UNROLL
  for (int u = 0; u < NV; ++u) all_valid = all_valid && live[u] && n_valid - c0[u] >= W;
  if (all_valid) {
    SEQK_UNROLL
    for (int e = 0; e < NV * W; ++e) v[e] *= sgn;
  } else {
    SEQK_UNROLL
    for (int u = 0; u < NV; ++u) {
      /* One subtraction per chunk, then compares against constants: per-element 64-bit column
         indices cost registers the unrolled loops cannot spare. */
      const I valid = live[u] ? n_valid - c0[u] : 0;
      if (valid > 0 && n_mem - c0[u] < W) {
        SEQK_UNROLL
        for (int e = 0; e < W; ++e)
          if (e < valid) v[u * W + e] = to_float(row[c0[u] + e]);
      }
      SEQK_UNROLL
      for (int e = 0; e < W; ++e) v[u * W + e] = e < valid ? sgn * v[u * W + e] : -INFINITY;
    }
  }
}
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void load_chunks(const T *row, const I *c0, const bool *live, I n_valid,
                                            I n_mem, float sgn, float *v) {
  if constexpr (W == 1) {
    SEQK_UNROLL
    for (int u = 0; u < NV; ++u) {
      const bool in = live[u] && c0[u] < n_valid;
      float x = 0.0f;
      if (in) x = to_float(row[c0[u]]);
      v[u] = in ? sgn * x : -INFINITY;
    }
  } else {
    uint4 raw[NV][chunk_of<T, W>::kWords];
    issue_chunks<T, W, NV>(row, c0, live, n_valid, n_mem, raw);
    finish_chunks<T, W, NV>(row, c0, live, n_valid, n_mem, sgn, raw, v);
  }
}
/* Stores the columns < n of chunk c0. */
template <typename T, int W, typename I>
__device__ __forceinline__ void store_masked(T *row, I c0, I n, const float *v) {
  const I room = n - c0;
  if (room >= W) {
    store_chunk<T, W>(row + c0, v);
  } else {
    SEQK_UNROLL
    for (int e = 0; e < W; ++e)
      if (e < room) row[c0 + e] = from_float<T>(v[e]);
  }
}

/* ---- exponentials and the online state ---------------------------------------------------- */
/* exp2((v - m) * k) with -inf -> exactly 0 (see the header comment). */
__device__ __forceinline__ float exp_rel(float v, float m, float k) {
  return v == -INFINITY ? 0.0f : exp2f((v - m) * k);
}
/* The factor that moves a sum taken relative to m_old onto m_new >= m_old. */
__device__ __forceinline__ float rescale(float m_old, float m_new, float k) {
  return m_old == -INFINITY ? 0.0f : exp2f((m_old - m_new) * k);
}

/* Online softmax state of part of a row: m = max of the values seen (-inf before any), s = sum of
   exp2((v - m) * k) over them. */
struct row_stats {
  float m, s;
};
__device__ __forceinline__ row_stats stats_empty() { return row_stats{-INFINITY, 0.0f}; }

/* Adds N values with one rescale (one extra exp2 per N elements, not per element). */
template <int N>
__device__ __forceinline__ void stats_add(row_stats &st, const float *v, float k) {
  float cm = v[0];
  SEQK_UNROLL
  for (int i = 1; i < N; ++i) cm = fmaxf(cm, v[i]);
  const float m = fmaxf(st.m, cm);
  float s = st.s * rescale(st.m, m, k);
  SEQK_UNROLL
  for (int i = 0; i < N; ++i) s += exp_rel(v[i], m, k);
  st.m = m;
  st.s = s;
}
__device__ __forceinline__ row_stats stats_combine(row_stats a, row_stats b, float k) {
  const float m = fmaxf(a.m, b.m);
  return row_stats{m, a.s * rescale(a.m, m, k) + b.s * rescale(b.m, m, k)};
}

/* ---- reductions ------------------------------------------------------------------------------ */
/* Over aligned groups of `width` lanes (a power of two <= 32); every lane of the warp takes part
   (full mask), each group reducing its own values: that is how one warp serves 32/width short
   rows at once. */
__device__ __forceinline__ float group_max(float v, int width) {
  for (int o = width >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o, width));
  return v;
}
__device__ __forceinline__ float group_sum(float v, int width) {
  for (int o = width >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, width);
  return v;
}
__device__ __forceinline__ row_stats group_stats(row_stats st, float k, int width) {
  for (int o = width >> 1; o > 0; o >>= 1) {
    row_stats other;
    other.m = __shfl_xor_sync(0xffffffffu, st.m, o, width);
    other.s = __shfl_xor_sync(0xffffffffu, st.s, o, width);
    st = stats_combine(st, other, k);
  }
  return st;
}

/* Whole-block reductions for a 1-D block whose size is a multiple of 32 (<= 1024). red is shared
   scratch (32 floats, 64 for stats). Every thread must call them at the same point (they hold
   two barriers) and all get the result. The trailing barrier frees red for the next call. */
__device__ __forceinline__ float block_max(float v, float *red) {
  const int lane = (int)threadIdx.x & 31, warp = (int)threadIdx.x >> 5;
  const int nwarps = (int)blockDim.x >> 5;
  v = group_max(v, 32);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = group_max(lane < nwarps ? red[lane] : -INFINITY, 32);
  __syncthreads();
  return v;
}
__device__ __forceinline__ float block_sum(float v, float *red) {
  const int lane = (int)threadIdx.x & 31, warp = (int)threadIdx.x >> 5;
  const int nwarps = (int)blockDim.x >> 5;
  v = group_sum(v, 32);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = group_sum(lane < nwarps ? red[lane] : 0.0f, 32);
  __syncthreads();
  return v;
}
__device__ __forceinline__ row_stats block_stats(row_stats st, float k, float *red) {
  const int lane = (int)threadIdx.x & 31, warp = (int)threadIdx.x >> 5;
  const int nwarps = (int)blockDim.x >> 5;
  st = group_stats(st, k, 32);
  if (lane == 0) {
    red[warp] = st.m;
    red[32 + warp] = st.s;
  }
  __syncthreads();
  st = lane < nwarps ? row_stats{red[lane], red[32 + lane]} : stats_empty();
  st = group_stats(st, k, 32);
  __syncthreads();
  return st;
}

}   // namespace seqk_rows

#endif /* SEQK_KERNELS_SOFTMAX_CUH */
