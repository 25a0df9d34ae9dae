/*
 * rnn.cu - the kernels of seqk_rnn_cell and seqk_rnn_forward on CUDA tensors: PyTorch's
 * nn.RNNCell / LSTMCell / GRUCell and nn.RNN / LSTM / GRU, with host/ref_rnn.c (seqk__rnn_step)
 * as the oracle. Gate rows in PyTorch's order (LSTM i, f, g, o; GRU r, z, n with b_hn inside
 * r*(.)). host/cuda_rnn.c plans each call (GEMMs, workspace, the layer loop, which recurrence
 * path) and calls the launchers here.
 *
 * Numerics. The gate kernels read fp32 GEMM products, add the biases in fp32 and keep the states
 * h and c in fp32 for the whole call; only what the caller sees (the cell's h_out/c_out; y of the
 * last layer) is rounded to the tensors' dtype, once. expf/tanhf, not the __expf intrinsics: the
 * fast versions lose a few bits near 0, where the gates live, and this math is a small part of
 * any step.
 *
 * Kernels:
 *   cell_gates   one cell step: h' (and c') from gi = x W_ih^T and gh = h W_hh^T ([N, G*H] fp32,
 *                kept apart: GRU's n gate needs W_hn h + b_hn on its own, inside r*(.)). In place
 *                (h_out == h, c_out == c) works: the GEMM has read h before this kernel starts,
 *                and each element is read and then written by the same thread.
 *   step         one step of a layer's per-step path (after that step's recurrent GEMM).
 *   persistent   a layer-direction's whole recurrence in ONE cooperative kernel: each block keeps
 *                its slice of W_hh in shared memory for the whole sequence, stages h in shared
 *                memory each step, and the grid synchronises once per step (small batches, where
 *                a launch per step costs more than the step's math); seqk_k_rnn_persistent_plan
 *                says when it serves and with what launch shape.
 *   store_lengths  the host's lengths into a device array, carried in kernel parameters.
 * Lengths (packed sequences, sort-free): at step s row n is active when s < len[n]; its time index
 * is s (forward) or len[n]-1-s (reverse: each row starts at its own last valid step). Inactive
 * rows keep h/c and get y[s][n] = 0 (s >= len[n] there, so those are exactly the padding
 * positions).
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

namespace {

constexpr int kThreads = 256;
/* Lengths travel to the device as kernel parameters (seqk_k_rnn_store_lengths), this many per
   launch. */
constexpr int kLenChunk = 256;
/* The persistent kernel: at most this many threads per block (so 128 registers per thread still
   fit one block per SM), and at most this batch for the automatic choice. */
constexpr int kPersistMaxThreads = 512;
constexpr int64_t kPersistMaxBatch = 32;
/* A lane of the persistent kernel sums at least this many columns of a dot product before the
   shuffle tree (log2(lanes) rounds per gate) combines the lanes, so the tree stays small next to
   the products. */
constexpr int64_t kMinColsPerLane = 8;

unsigned blocks_for(int64_t items) { return seqk_kernels::grid_blocks(items, kThreads); }

using seqk_kernels::from_float;
using seqk_kernels::to_float;

/* ---- the cell math (seqk__rnn_step in fp32) ---------------------------------------------------- */

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

/* One hidden unit: pi[g] = W_ih x + b_ih and ph[g] = W_hh h + b_hh of gate g; h, c the previous
   state of this unit. c_new is c for the modes without a cell state. */
__device__ __forceinline__ void cell_math(int mode, const float pi[4], const float ph[4], float h,
                                          float c, float *h_new, float *c_new) {
  *c_new = c;
  switch (mode) {
    case SEQK_RNN_MODE_TANH: *h_new = tanhf(pi[0] + ph[0]); break;
    case SEQK_RNN_MODE_RELU: {
      const float v = pi[0] + ph[0];
      *h_new = v < 0.0f ? 0.0f : v; /* NaN passes, as torch.relu's does */
      break;
    }
    case SEQK_RNN_MODE_LSTM: {
      const float i = sigmoid(pi[0] + ph[0]), f = sigmoid(pi[1] + ph[1]);
      const float g = tanhf(pi[2] + ph[2]), o = sigmoid(pi[3] + ph[3]);
      *c_new = f * c + i * g;
      *h_new = o * tanhf(*c_new);
      break;
    }
    default: { /* GRU: ph[2] = W_hn h + b_hn, scaled by r as a whole */
      const float r = sigmoid(pi[0] + ph[0]), z = sigmoid(pi[1] + ph[1]);
      const float n = tanhf(pi[2] + r * ph[2]);
      *h_new = (1.0f - z) * n + z * h;
      break;
    }
  }
}

/* pi[g] += b_ih[g*H + j], ph[g] += b_hh[g*H + j] for the G gates (absent biases add nothing).
   Unrolled with constant indices so pi/ph stay in registers. */
template <typename Tb>
__device__ __forceinline__ void add_biases(int G, int64_t H, int64_t j, const Tb *b_ih,
                                           int64_t bs_ih, const Tb *b_hh, int64_t bs_hh,
                                           float pi[4], float ph[4]) {
  SEQK_UNROLL
  for (int g = 0; g < 4; ++g)
    if (g < G) {
      if (b_ih) pi[g] += to_float(b_ih[(g * H + j) * bs_ih]);
      if (b_hh) ph[g] += to_float(b_hh[(g * H + j) * bs_hh]);
    }
}

/* ---- cell: the fused gate kernel ------------------------------------------------------------- */

/* One thread per (n, j), j fastest: coalesced reads of every gate row of gi/gh and coalesced
   state reads/writes for row-major tensors. h/c and h_out/c_out are not __restrict__: they may be
   the same memory, and each element is read before the same thread writes it. */
template <typename T>
__global__ void __launch_bounds__(kThreads) cell_gates_kernel(seqk_k_rnn_cell_params a) {
  const int G = a.G;
  const T *const b_ih = static_cast<const T *>(a.b_ih), *const b_hh =
                                                            static_cast<const T *>(a.b_hh);
  const T *const h = static_cast<const T *>(a.h), *const c = static_cast<const T *>(a.c);
  T *const h_out = static_cast<T *>(a.h_out), *const c_out = static_cast<T *>(a.c_out);
  const int64_t GH = G * a.H, total = a.N * a.H;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t n = i / a.H, j = i - n * a.H;
    float pi[4] = {0.0f, 0.0f, 0.0f, 0.0f}, ph[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    SEQK_UNROLL
    for (int g = 0; g < 4; ++g)
      if (g < G) {
        pi[g] = a.gi[n * GH + g * a.H + j];
        if (a.gh) ph[g] = a.gh[n * GH + g * a.H + j];
      }
    add_biases(G, a.H, j, b_ih, a.bs_ih, b_hh, a.bs_hh, pi, ph);
    const float hv = h ? to_float(h[n * a.h_stride[0] + j * a.h_stride[1]]) : 0.0f;
    const float cv = c ? to_float(c[n * a.c_stride[0] + j * a.c_stride[1]]) : 0.0f;
    float hn, cn;
    cell_math(a.mode, pi, ph, hv, cv, &hn, &cn);
    h_out[n * a.ho_stride[0] + j * a.ho_stride[1]] = from_float<T>(hn);
    if (c_out) c_out[n * a.co_stride[0] + j * a.co_stride[1]] = from_float<T>(cn);
  }
}

/* ---- layers: the per-step gate kernel -------------------------------------------------------- */

/* Both recurrence paths read seqk_k_rnn_seq_params (launchers.h): the projection, the biases
   (of element type Tb), where y goes (of element type Y), the lengths. */
using seq_params = seqk_k_rnn_seq_params;

/* Step s for row n: the time index it works on, or -1 when the row is past its length. */
__device__ __forceinline__ int64_t time_of(const seq_params &a, int64_t n, int64_t s) {
  const int64_t L = a.len ? a.len[n] : a.T;
  if (s >= L) return -1;
  return a.reverse ? L - 1 - s : s;
}

/* The gate math of unit (n, j) at time t with ph[g] = W_hh h (no bias yet): updates *h, *c and
   writes y. */
template <typename Tb, typename Y>
__device__ __forceinline__ float unit_update(const seq_params &a, int G, int64_t n, int64_t j,
                                             int64_t t, float ph[4], float h, float *c) {
  const float *row = a.gi + t * a.gi_st + n * a.gi_sn;
  float pi[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  SEQK_UNROLL
  for (int g = 0; g < 4; ++g)
    if (g < G) pi[g] = row[g * a.H + j];
  add_biases(G, a.H, j, static_cast<const Tb *>(a.b_ih), a.bs_ih, static_cast<const Tb *>(a.b_hh),
             a.bs_hh, pi, ph);
  float hn, cn;
  cell_math(a.mode, pi, ph, h, *c, &hn, &cn);
  *c = cn;
  static_cast<Y *>(a.y)[t * a.y_st + n * a.y_sn + j * a.y_sk] = from_float<Y>(hn);
  return hn;
}

/* One step of the per-step path: one thread per (n, j), j fastest (coalesced gh/xproj rows and
   state). h and c ([N, H] fp32) are updated in place: each element by the one thread that reads
   it, after this step's GEMM has read h. */
template <typename Tb, typename Y>
__global__ void __launch_bounds__(kThreads)
    step_kernel(seq_params a, const float *gh, float *h, float *c, int64_t s) {
  const int G = a.G;
  const int64_t GH = G * a.H, total = a.N * a.H;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t n = i / a.H, j = i - n * a.H;
    const int64_t t = time_of(a, n, s);
    if (t < 0) { /* past this row's length: state kept, y at step s is padding */
      static_cast<Y *>(a.y)[s * a.y_st + n * a.y_sn + j * a.y_sk] = from_float<Y>(0.0f);
      continue;
    }
    float ph[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    SEQK_UNROLL
    for (int g = 0; g < 4; ++g)
      if (g < G && gh) ph[g] = gh[n * GH + g * a.H + j];
    float cv = c ? c[i] : 0.0f;
    h[i] = unit_update<Tb, Y>(a, G, n, j, t, ph, h[i], &cv);
    if (c) c[i] = cv;
  }
}

/* ---- layers: the persistent kernel ----------------------------------------------------------- */

/* The shared-memory layout, for W_hh of element type Tw (esize bytes): the dot products move in
   16-byte vectors, kVec = 16 / esize columns of W (one LDS.128) against kVec floats of h (kVec / 4
   LDS.128). A row of H columns is nch = ceil(H / kVec) such chunks, zero past column H (0 * 0
   adds nothing, and the staged h pads are 0 too, so no tail loop and no NaN from stale memory).
   h is staged in kVec / 4 planes of nch * 4 floats: chunk c's floats 4p .. 4p+3 sit at plane p,
   offset 4c, so the lanes of a group, on consecutive chunks, read consecutive 16 bytes in every
   plane (for fp16/bf16 a plain row would put a lane's two float4 32 bytes apart: 2-way bank
   conflicts). */
template <typename Tw>
struct persist_layout {
  static constexpr int kVec = 16 / (int)sizeof(Tw);
  static constexpr int kPlanes = kVec / 4;
  /* Column k of a staged h row (plane stride hplane floats). */
  static __device__ __forceinline__ int h_col(int k, int hplane) {
    if constexpr (kPlanes == 1) {
      (void)hplane;
      return k;
    } else {
      return ((k >> 2) & (kPlanes - 1)) * hplane + (int)((unsigned)k / kVec) * 4 + (k & 3);
    }
  }
};

/* 16 bytes of W as kVec floats (the element type picked by the tag). */
__device__ __forceinline__ void unpack16(const uint4 &r, float *w, float) {
  w[0] = __uint_as_float(r.x);
  w[1] = __uint_as_float(r.y);
  w[2] = __uint_as_float(r.z);
  w[3] = __uint_as_float(r.w);
}
__device__ __forceinline__ void unpack_pair(uint32_t u, float *w, __half) {
  w[0] = __half2float(__ushort_as_half((unsigned short)(u & 0xffffu)));
  w[1] = __half2float(__ushort_as_half((unsigned short)(u >> 16)));
}
/* bf16 -> f32 is the bits moved to the high half: one instruction per element (through
   __bfloat162float the high element took a shift right and a shift left). */
__device__ __forceinline__ void unpack_pair(uint32_t u, float *w, __nv_bfloat16) {
  w[0] = __uint_as_float(u << 16);
  w[1] = __uint_as_float(u & 0xffff0000u);
}
template <typename T>
__device__ __forceinline__ void unpack16(const uint4 &r, float *w, T tag) {
  unpack_pair(r.x, w + 0, tag);
  unpack_pair(r.y, w + 2, tag);
  unpack_pair(r.z, w + 4, tag);
  unpack_pair(r.w, w + 6, tag);
}

/* acc[r][g] += W row (g * cu + jl) . h row r (at hrow + r * hrow_step) over this lane's chunks
   ks, ks + ksplit, ... < nch, for the G gates and R batch rows (compile-time counts: no per-gate
   branch in the loop). Each lane keeps one fp32 sum per gate and row, chunk by chunk in column
   order; the lanes' sums meet in the shuffle tree. Each W vector is loaded and unpacked once for
   the R rows: for fp16/bf16 the conversion, one per element, set a floor of 2 per FMA at R = 1.
   SASS, 2026-12-03, nvcc 13.0 (the innermost loop with FFMA), instructions per FMA sm_90 / sm_80:
                R = 1                              R = 2
     f32        G=4 1.75 / 1.81, G=3 1.83 / 1.92,   G=4 1.44 / 1.47, G=3 1.50 / 1.54,
                G=1 2.50 / 2.50                     G=1 2.00 / 2.00
     f16, bf16  G=4 2.44 / 2.47, G=3 2.50 / 2.54,   G=4 1.78 / 1.80, G=3 1.83 / 1.85,
                G=1 3.00 / 3.12                     G=1 2.25 / 2.31
   (R = 1 was 8 (f32) and 9 (f16, bf16) on sm_90, 6.75 and 8 on sm_80, for every G: 5 scalar LDS
   for 4 FFMA, a branch per gate, a conversion per use.) All loads are LDS.128, so issue is no
   longer what bounds the loop: an SM issues 4 warp instructions per cycle but serves one 128-byte
   shared-memory wavefront, and a warp's LDS.128 is 4 of them (fewer where lanes share an h
   address). Per chunk a warp loads G W vectors and R h vectors per plane: shared-memory cycles
   per FMA (G + P*R) / (G*R*kVec/4), P = kVec/4 planes: f32 G=4 1.25 -> 0.75 (R = 2), G=3 1.33 ->
   0.83, G=1 2.0 -> 1.5; f16/bf16 G=4 0.75 -> 0.5, G=3 0.83 -> 0.58, G=1 1.5 -> 1.25; issue at
   most 3.0 / 4 = 0.75 cycles per FMA (16-bit G=1, R=1) and below the shared-memory cycles in
   every variant. Hence two rows per item (W read once for both), and hence 16-bit W stays 16-bit
   in shared memory: widened to f32 its conversions would go but its W loads would double (f16
   LSTM R = 1: 0.75 -> 1.25 cycles per FMA). What R = 2 still spends besides loads, conversions
   and FMAs: the second row's h addresses (one IMAD/LEA per plane; a pointer per row and plane
   costs the same increments). */
template <typename Tw, int G, int R>
__device__ __forceinline__ void dot_chunks(const float *hrow, int hrow_step, int hplane,
                                           const Tw *wrow, int gstride, int ks, int ksplit, int nch,
                                           float (*acc)[4]) {
  using L = persist_layout<Tw>;
  /* The h pointer is the induction variable (no separate counter); one pointer per h plane, the
     R batch rows hrow_step floats apart. */
  const float *hp[L::kPlanes];
  SEQK_UNROLL
  for (int p = 0; p < L::kPlanes; ++p) hp[p] = hrow + p * hplane + 4 * ks;
  const float *const hend = hrow + 4 * nch;
  const Tw *wp = wrow + L::kVec * ks;
  const int hstep = 4 * ksplit, wstep = L::kVec * ksplit;
  for (; hp[0] < hend; wp += wstep) {
    float hv[R][L::kVec];
    SEQK_UNROLL
    for (int r = 0; r < R; ++r) SEQK_UNROLL
    for (int p = 0; p < L::kPlanes; ++p) {
      const float4 v = *reinterpret_cast<const float4 *>(hp[p] + r * hrow_step);
      hv[r][4 * p + 0] = v.x;
      hv[r][4 * p + 1] = v.y;
      hv[r][4 * p + 2] = v.z;
      hv[r][4 * p + 3] = v.w;
    }
    SEQK_UNROLL
    for (int p = 0; p < L::kPlanes; ++p) hp[p] += hstep;
    SEQK_UNROLL
    for (int g = 0; g < G; ++g) {
      /* One 16-byte load, copied out before it is unpacked (unpacking through a reference into
         shared memory let the compiler split it into 4-byte loads); each W element unpacked once
         for the R rows. */
      const uint4 u = *reinterpret_cast<const uint4 *>(wp + g * gstride);
      float w[L::kVec];
      unpack16(u, w, Tw{});
      SEQK_UNROLL
      for (int r = 0; r < R; ++r) SEQK_UNROLL
      for (int e = 0; e < L::kVec; ++e) acc[r][g] += w[e] * hv[r][e];
    }
  }
}

/* h_prev [N, H] into the staged rows: this thread's items i = tid, tid + nthreads, ... < total
   (floats, or quads of floats when kQuads), item i at row n, column (quad) k, the pair walked
   by increments (dn, dk) = divmod(nthreads, per_row): no division per item. */
template <typename Tw, bool kQuads>
__device__ __forceinline__ void stage_h(const float *h_prev, float *hs, int total, int tid,
                                        int nthreads, int n, int k, int dn, int dk, int per_row,
                                        int ldh, int hplane) {
  using L = persist_layout<Tw>;
  for (int i = tid; i < total; i += nthreads) {
    if constexpr (kQuads)
      *reinterpret_cast<float4 *>(hs + n * ldh + L::h_col(4 * k, hplane)) =
          reinterpret_cast<const float4 *>(h_prev)[i];
    else
      hs[n * ldh + L::h_col(k, hplane)] = h_prev[i];
    n += dn;
    k += dk;
    if (k >= per_row) {
      k -= per_row;
      ++n;
    }
  }
}

/* The kernel reads seqk_k_rnn_persist_params and its launch shape seqk_k_rnn_persist_cfg. The h
   ping-pong buffers are written by other blocks between grid barriers, so they are never read
   through the read-only (non-coherent) path: no const __restrict__ on them; c's elements are each
   only ever touched by one thread. */
/* Block b owns hidden units [b*units, b*units + units) and keeps their G*units rows of W_hh in
   shared memory for the whole sequence (row g*units + jl = W_hh row g*H + j0 + jl), so W_hh is
   read from global memory once per call instead of once per step (layout: persist_layout).
   Each step: the block stages h_prev [N, H] (fp32) in shared memory (coalesced, from L2; the
   thread walks rows and columns by increments, no division per element), then computes its items
   (jl, n): G dot products of length H each, split over `ksplit` consecutive lanes on interleaved
   16-byte chunks (consecutive addresses in shared memory; rows padded so the lane groups of a
   warp fall on different banks) and reduced with xor shuffles; the group's first lane applies
   the gates and writes h_next, c and y. Then one grid barrier, after which every block sees the
   whole h_next. The item loop runs the same number of times in every thread, so the full-warp
   shuffles always have all 32 lanes.
   Shared memory holds at most ~227 KB, so every index into it, and N * H (a whole h), fits int.
   Staging, SASS 2026-12-02 (sm_90; sm_80 within 3): 3.6 instructions per float in quads, 13
   one float at a time (fp16/bf16 planes: 4.5 and 20), no division; was 44 per float, a 64-bit
   division among them. Registers 88-96 (sm_90), 80-94 (sm_80), no spill; was 40 with an 8-byte
   stack frame and a 4-byte spill on sm_90. __launch_bounds__(.., 1): one block per SM is the
   design (cooperative grid of at most one block per SM), and it keeps ptxas from holding the
   kernel at 64 registers with a spill (sm_80 fp16/bf16 did without it). */
template <typename Tw, typename Y>
__global__ void __launch_bounds__(kPersistMaxThreads, 1)
    persist_kernel(seqk_k_rnn_persist_params a, seqk_k_rnn_persist_cfg cfg) {
  using L = persist_layout<Tw>;
  DYN_SMEM(unsigned char, smem);
  Tw *ws = reinterpret_cast<Tw *>(smem);
  float *hs = reinterpret_cast<float *>(smem + cfg.w_bytes);
  const Tw *const w_hh = static_cast<const Tw *>(a.w_hh);
  const seq_params &q = a.s;
  const int G = q.G;
  const int64_t H = q.H, N = q.N;
  const int cu = cfg.units;                         /* hidden units per block */
  const int ksplit = cfg.ksplit;                    /* lanes per dot product (power of two <= 32) */
  const int ldw = (int)cfg.ldw, ldh = (int)cfg.ldh; /* shared-memory row strides of W and h */
  const int Hi = (int)H, Ni = (int)N;
  const int nch = (Hi + L::kVec - 1) / L::kVec; /* 16-byte chunks per row */
  const int cols = nch * L::kVec;               /* columns stored per row, zero past H */
  const int hplane = nch * 4;                   /* floats per h plane */
  const int64_t j0 = (int64_t)blockIdx.x * cu;
  const int units = (int)(H - j0 < cu ? H - j0 : cu);
  const int tid = (int)threadIdx.x, nthreads = (int)blockDim.x;

  /* The W_hh slice: consecutive threads on consecutive k (coalesced for row-major weights), the
     columns past H zero. Once per call: the divisions here do not repeat per step. */
  const int w_elems = G * units * cols;
  for (int i = tid; i < w_elems; i += nthreads) {
    const int r = i / cols, k = i - r * cols, g = r / units, jl = r - g * units;
    ws[(g * cu + jl) * ldw + k] =
        k < Hi ? w_hh[(g * H + j0 + jl) * a.w_rs + k * a.w_cs] : from_float<Tw>(0.0f);
  }
  /* The staged h's pad columns [H, cols): zero once, never written by the staging below. */
  const int hpad = cols - Hi;
  for (int i = tid; i < Ni * hpad; i += nthreads) {
    const int n = i / hpad, k = Hi + (i - n * hpad);
    hs[n * ldh + L::h_col(k, hplane)] = 0.0f;
  }

  /* Staging walks (n, k) = divmod(i, H) by increments: i advances by nthreads = dn * H + dk. With
     H a multiple of 4 and both h buffers 16-byte aligned it moves 4 floats at a time (a quad of
     columns 4m .. 4m+3 lands in one plane, contiguous and 16-byte aligned): i counts quads then,
     and H / 4 quads make a row. */
  const bool quads =
      Hi % 4 == 0 &&
      ((reinterpret_cast<uintptr_t>(a.h0) | reinterpret_cast<uintptr_t>(a.h1)) & 15u) == 0;
  const int per_row = quads ? Hi / 4 : Hi;
  const int dn = nthreads / per_row, dk = nthreads - dn * per_row;
  const int n_first = tid / per_row, k_first = tid - n_first * per_row;
  const int R = cfg.rows; /* batch rows per item: 1 or 2 */
  const int64_t items = (int64_t)units * ((N + R - 1) / R);
  const int groups = nthreads / ksplit;
  const int grp = tid / ksplit, ks = tid % ksplit;
  const int gstride = cu * ldw;
  for (int64_t s = 0; s < a.steps; ++s) {
    float *h_prev = (s & 1) ? a.h1 : a.h0;
    float *h_next = (s & 1) ? a.h0 : a.h1;
    if (quads)
      stage_h<Tw, true>(h_prev, hs, Ni * per_row, tid, nthreads, n_first, k_first, dn, dk, per_row,
                        ldh, hplane);
    else
      stage_h<Tw, false>(h_prev, hs, Ni * per_row, tid, nthreads, n_first, k_first, dn, dk, per_row,
                         ldh, hplane);
    __syncthreads(); /* (the first time also covers the W slice and the pads) */
    for (int64_t base = 0; base < items; base += groups) {
      const int64_t item = base + grp;
      const bool valid = item < items;
      /* Item (jl, nb): unit jl for batch rows n0 .. n0 + R - 1 (an odd N's last item has one row:
         its second "row" re-reads row n0, and its sums are dropped). */
      const int nb = valid ? (int)(item / units) : 0,
                jl = valid ? (int)(item - (int64_t)nb * units) : 0;
      const int n0 = nb * R, nrows = Ni - n0 < R ? Ni - n0 : R;
      float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
      if (valid) {
        const float *hrow = hs + n0 * ldh;
        const int hrow_step = nrows > 1 ? ldh : 0;
        const Tw *wrow = ws + jl * ldw;
        if (R == 2) {
          switch (G) {
            case 1:
              dot_chunks<Tw, 1, 2>(hrow, hrow_step, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
            case 3:
              dot_chunks<Tw, 3, 2>(hrow, hrow_step, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
            default:
              dot_chunks<Tw, 4, 2>(hrow, hrow_step, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
          }
        } else {
          switch (G) {
            case 1:
              dot_chunks<Tw, 1, 1>(hrow, 0, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
            case 3:
              dot_chunks<Tw, 3, 1>(hrow, 0, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
            default:
              dot_chunks<Tw, 4, 1>(hrow, 0, hplane, wrow, gstride, ks, ksplit, nch, acc);
              break;
          }
        }
      }
      for (int off = ksplit / 2; off > 0; off >>= 1) {
        SEQK_UNROLL
        for (int r = 0; r < 2; ++r) SEQK_UNROLL
        for (int g = 0; g < 4; ++g)
          if (r < R && g < G) acc[r][g] += __shfl_xor_sync(0xffffffffu, acc[r][g], off);
      }
      if (valid && ks == 0) {
        SEQK_UNROLL
        for (int r = 0; r < 2; ++r) {
          if (r >= nrows) break;
          const int n = n0 + r;
          const int64_t j = j0 + jl, i = (int64_t)n * H + j;
          const int64_t t = time_of(q, n, s);
          const float hv = hs[n * ldh + L::h_col((int)j, hplane)];
          if (t < 0) { /* past this row's length: carry the state, y at step s is padding */
            h_next[i] = hv;
            static_cast<Y *>(q.y)[s * q.y_st + n * q.y_sn + j * q.y_sk] = from_float<Y>(0.0f);
          } else {
            float cv = a.c ? a.c[i] : 0.0f;
            h_next[i] = unit_update<Tw, Y>(q, G, n, j, t, acc[r], hv, &cv);
            if (a.c) a.c[i] = cv;
          }
        }
      }
    }
    /* h_next complete everywhere, and no thread still reads hs (the last step needs neither:
       the kernel's end orders it before whatever the stream runs next). */
    if (s + 1 < a.steps) grid_sync();
  }
}

/* ---- launchers ------------------------------------------------------------------------------- */

/* f(Tb{}, Y{}) with Tb the dtype's element type and Y that or float (y_f32). */
template <typename F>
void by_seq_types(const seq_params &c, F &&f) {
  seqk_kernels::by_dtype(c.dtype, [&](auto tag) {
    if (c.y_f32)
      f(tag, float{});
    else
      f(tag, tag);
  });
}

}   // namespace

extern "C" cudaError_t seqk_k_rnn_cell(const seqk_k_rnn_cell_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->N == 0 || p->H == 0) return cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    launch(dim3(blocks_for(p->N * p->H)), dim3(kThreads), 0, stream,
           cell_gates_kernel<decltype(tag)>, *p);
  });
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_rnn_step(const seqk_k_rnn_seq_params *c, const float *gh, float *h,
                                       float *cs, int64_t s, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  by_seq_types(*c, [&](auto tb, auto ty) {
    using Tb = decltype(tb);
    using Y = decltype(ty);
    launch(dim3(blocks_for(c->N * c->H)), dim3(kThreads), 0, stream, step_kernel<Tb, Y>, *c, gh, h,
           cs, s);
  });
  return cudaGetLastError();
}

/* Row stride (in elements of esize bytes) of a shared-memory matrix with `cols` columns (a
   multiple of 16 bytes: the rows of persist_layout) whose rows are read by lane groups of
   `ksplit` lanes, each lane 16 bytes on consecutive chunks: a 16-byte access is served a quarter
   warp (8 lanes) at a time, so with ksplit < 8 the 8 / ksplit groups of a quarter read
   neighbouring rows, and a stride in 4-byte words congruent to the group's width in words
   (4 * ksplit, mod 32 banks) puts them on disjoint banks. A group of 8 or more lanes fills its
   quarters alone: rows only need to stay 16-byte aligned. */
static int64_t smem_ld(int64_t cols, int64_t esize, int ksplit) {
  int64_t words = (cols * esize + 15) / 16 * 4;
  if (ksplit < 8) words += ((4 * ksplit - words) % 32 + 32) % 32;
  return words * 4 / esize;
}

/* THE decision between the per-step path and the persistent kernel, and the persistent launch
   shape. The persistent kernel serves a layer when
     - the batch is small (N <= kPersistMaxBatch = 32, or any batch with any_batch): there the
       per-step path is latency-bound (two launches per step, each step's GEMM streaming all of
       W_hh from L2 for only N rows), and one step's whole h [N, H] fits in each block's shared
       memory next to its weights; for larger batches cuBLAS's tiled GEMMs use the SMs better than
       this kernel's dot products;
     - W_hh fits on chip: one block per SM (at most H blocks), each holding the G*units rows of
       its units = ceil(H / blocks) hidden units plus h, within the per-block shared-memory
       opt-in limit (on an H100: LSTM f32 up to H ~ 1024 at N = 8, f16 further);
     - the device supports cooperative launches (the per-step grid barrier needs every block
       resident: one block per SM of at most 512 threads always is). */
extern "C" int seqk_k_rnn_persistent_plan(int32_t G, seqk_dtype dtype, int64_t N, int64_t H,
                                          int sms, size_t smem_optin, int cooperative,
                                          int any_batch, seqk_k_rnn_persist_cfg *cfg) {
  if (!any_batch && N > kPersistMaxBatch) return 0;
  if (!cooperative || sms < 1 || N < 1 || H < 1 || N > INT_MAX / 64 || H > INT_MAX / 64) return 0;
  const int64_t esize = dtype == SEQK_DTYPE_F32 ? 4 : 2;
  int64_t blocks = H < sms ? H : sms;
  const int64_t units = (H + blocks - 1) / blocks;
  blocks = (H + units - 1) / units;
  /* Items: (unit, R batch rows) pairs. Lanes per dot product: a power of two up to a warp, with
     >= kMinColsPerLane columns each, and no more than kPersistMaxThreads threads for all items
     (beyond that the items loop). Two rows per item load and unpack each W vector once for both
     (instructions per FMA on sm_90: LSTM f16/bf16 2.44 -> 1.78, f32 1.75 -> 1.44; dot_chunks);
     they are taken when a thread's FMA count per step does not grow: with threads to spare, one
     row per item and twice the lane groups finish a step sooner (N = 1 always has one). */
  const int64_t vec = 16 / esize, nch = (H + vec - 1) / vec;
  int ksplit = 1, rows = 1;
  int64_t threads = 0, work = 0;
  for (int r = 1; r <= (N > 1 ? 2 : 1); ++r) {
    const int64_t items = units * ((N + r - 1) / r);
    int ks = 1;
    while (ks < 32 && (int64_t)ks * 2 * kMinColsPerLane <= H &&
           (int64_t)ks * 2 * items <= kPersistMaxThreads)
      ks *= 2;
    int64_t thr = (items * ks + 31) / 32 * 32;
    if (thr > kPersistMaxThreads) thr = kPersistMaxThreads;
    /* FMA chunks per thread and step: item rounds x chunks per lane x rows. */
    const int64_t rounds = (items + thr / ks - 1) / (thr / ks);
    const int64_t w = rounds * ((nch + ks - 1) / ks) * r;
    if (r == 1 || w <= work) {
      ksplit = ks;
      rows = r;
      threads = thr;
      work = w;
    }
  }
  /* Rows of whole 16-byte chunks of W (16 / esize columns each; h: as many floats), zero-padded
     (persist_layout). */
  const int64_t cols = nch * vec;
  const int64_t ldw = smem_ld(cols, esize, ksplit), ldh = smem_ld(cols, 4, ksplit);
  const int64_t w_bytes = (G * units * ldw * esize + 15) / 16 * 16;
  /* A multiple of 64 bytes: the emulator's shared-memory arena (emu/src/core.cpp) is an
     aligned_alloc(64, ...), whose size must then be a multiple of 64 (ASan aborts otherwise). */
  const int64_t smem = (w_bytes + N * ldh * 4 + 63) / 64 * 64;
  if (smem > (int64_t)smem_optin) return 0;
  cfg->blocks = (int)blocks;
  cfg->threads = (int)threads;
  cfg->units = (int)units;
  cfg->ksplit = ksplit;
  cfg->rows = rows;
  cfg->ldw = ldw;
  cfg->ldh = ldh;
  cfg->w_bytes = (size_t)w_bytes;
  cfg->smem = (size_t)smem;
  return 1;
}

extern "C" cudaError_t seqk_k_rnn_persistent(const seqk_k_rnn_persist_params *p,
                                             const seqk_k_rnn_persist_cfg *cfg,
                                             cudaStream_t stream) {
  seqk_kernels::begin_launch();
  cudaError_t err = cudaSuccess;
  by_seq_types(p->s, [&](auto tw, auto ty) {
    using Tw = decltype(tw);
    using Y = decltype(ty);
    err = seqk_kernels::launch_cooperative_checked(dim3((unsigned)cfg->blocks),
                                                   dim3((unsigned)cfg->threads), cfg->smem, stream,
                                                   persist_kernel<Tw, Y>, *p, *cfg);
  });
  return err;
}

namespace {

struct len_chunk {
  int32_t v[kLenChunk];
};

__global__ void __launch_bounds__(kLenChunk)
    store_lengths_kernel(int32_t *dst, len_chunk chunk, int count) {
  const int i = (int)threadIdx.x;
  if (i < count) dst[i] = chunk.v[i];
}

__global__ void __launch_bounds__(kThreads)
    device_lengths_kernel(int32_t *dst, const int32_t *__restrict__ lengths, int64_t stride,
                          int64_t N, int64_t T, unsigned long long *bad) {
  const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int32_t v = lengths[n * stride];
  if (v < 1 || v > T) atomicMin(bad, seqk_kernels::check_word(n, v));
  dst[n] = v < 1 ? 1 : v > T ? (int32_t)T : v;
}

}   // namespace

extern "C" cudaError_t seqk_k_rnn_device_lengths(int32_t *dst, const int32_t *lengths,
                                                 int64_t stride, int64_t N, int64_t T,
                                                 unsigned long long *bad, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (N == 0) return cudaSuccess;
  launch(dim3(blocks_for(N)), dim3(kThreads), 0, stream, device_lengths_kernel, dst, lengths,
         stride, N, T, bad);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_rnn_store_lengths(int32_t *dst, const int32_t *host, int64_t N,
                                                cudaStream_t stream) {
  seqk_kernels::begin_launch();
  for (int64_t off = 0; off < N; off += kLenChunk) {
    len_chunk chunk;
    memset(&chunk, 0, sizeof chunk);
    const int count = (int)(N - off < kLenChunk ? N - off : kLenChunk);
    memcpy(chunk.v, host + off, (size_t)count * sizeof(int32_t));
    launch(dim3(1), dim3(kLenChunk), 0, stream, store_lengths_kernel, dst + off, chunk, count);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}
