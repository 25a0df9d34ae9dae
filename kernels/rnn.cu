/*
 * rnn.cu - seqk_rnn_cell and seqk_rnn_forward on CUDA tensors: PyTorch's nn.RNNCell / LSTMCell /
 * GRUCell and nn.RNN / LSTM / GRU, with host/ref_rnn.c (seqk__rnn_step) as the oracle. Gate rows
 * in PyTorch's order (LSTM i, f, g, o; GRU r, z, n with b_hn inside r*(.)).
 *
 * Numerics. Every GEMM goes through the cuBLAS wrapper (host/blas.h) with fp32 accumulation into
 * fp32 buffers; the biases are added in fp32 by the gate kernels; the states h and c, and the
 * activations passed from one layer to the next, stay fp32 for the whole call (the reference keeps
 * them in double). Only what the caller sees (the cell's h_out/c_out; y, hn, cn) is rounded to the
 * tensors' dtype, once. For f16/bf16 layers this means the recurrent GEMM (and the input GEMM of
 * layers l > 0) runs on fp32 copies of the weights made once per call: the state is never rounded
 * to 16 bits between steps, which keeps the result within a few fp32 ulps of the double reference
 * however long the sequence. (A 16-bit tensor-core recurrent GEMM would be faster for large
 * batches but rounds h every step, which the reference does not.)
 *
 * Cell: gi = x W_ih^T and gh = h W_hh^T into fp32 workspace buffers [N, G*H] (kept apart: GRU's n
 * gate needs W_hn h + b_hn on its own, inside r*(.)), then ONE pointwise kernel adds the biases,
 * applies the gates and writes h' (and c'). Without h there is no second GEMM (gh = 0). In place
 * (h_out == h, c_out == c) works because the GEMM has read h before the gate kernel starts, and in
 * the gate kernel each element is read and then written by the same thread.
 *
 * Layers (seqk_rnn_forward), per layer and direction:
 *   1. the input projection of all T steps as ONE GEMM: xproj = in W_ih^T, fp32 [T*N, G*H], laid
 *      out in the input's own (t, n) order so that batch_first needs no transpose (the gate
 *      kernels index xproj by (t, n) strides);
 *   2. the recurrence, by one of two paths; rnn_persistent_plan() is the one place that decides:
 *      per-step:   for each step, gh = h W_hh^T (one cuBLAS GEMM) and the step kernel (gates,
 *                  state update in place, y);
 *      persistent: ONE cooperative kernel for all steps: each block keeps its slice of W_hh in
 *                  shared memory for the whole sequence, stages h in shared memory each step, and
 *                  the grid synchronises once per step (small batches, where a launch per step
 *                  costs more than the step's math).
 *   Both directions of a bidirectional layer run one after the other on ctx's stream (they are
 *   independent, so two streams or one kernel serving both could overlap them; not done).
 *   Layer l > 0 reads layer l-1's output from an fp32 workspace buffer (two buffers, ping-pong).
 * Lengths (packed sequences, sort-free): the host reads them (they live on the CPU), copies them
 * once per call into a device array, and runs max(lengths) steps. At step s row n is active when
 * s < len[n]; its time index is s (forward) or len[n]-1-s (reverse: each row starts at its own
 * last valid step). Inactive rows keep h/c and get y[s][n] = 0 (s >= len[n] there, so those are
 * exactly the padding positions); positions at or past max(lengths) are zero-filled after the
 * last layer. hn/cn are then the states at each row's last valid step without extra work.
 *
 * Workspace (one arena per call, planned up front, host/device.h): lengths; xproj; gh (per-step);
 * h (two buffers for the persistent kernel's ping-pong); c (LSTM); the inter-layer buffers; fp32
 * weight copies (16-bit dtypes, or f32 weights cuBLAS cannot address); and a scratch area reused
 * by every layer-direction for the operand copies of the projection GEMM.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

#include "blas.h"
#include "device.h"
#include "internal.h"
#include "launchers.h"
#include "ref_rnn.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#ifndef SEQK_UNROLL
#if defined(__CUDACC__)
#define SEQK_UNROLL _Pragma("unroll")
#else
#define SEQK_UNROLL
#endif
#endif

namespace {

constexpr int kThreads = 256;
/* Lengths travel to the device as kernel parameters (see upload_lengths), this many per launch. */
constexpr int kLenChunk = 256;
/* The persistent kernel: at most this many threads per block (so 128 registers per thread still
   fit one block per SM), and at most this batch for the automatic choice. */
constexpr int kPersistMaxThreads = 512;
constexpr int64_t kPersistMaxBatch = 32;
/* A lane of the persistent kernel sums at least this many columns of a dot product before the
   shuffle tree (log2(lanes) rounds per gate) combines the lanes, so the tree stays small next to
   the products. */
constexpr int64_t kMinColsPerLane = 8;

/* Tests only (seqk__cuda_rnn_force): 0 automatic, 1 per-step, 2 persistent wherever it fits. */
int g_force_path = 0;

unsigned blocks_for(int64_t items) { return seqk_kernels::grid_blocks(items, kThreads); }

using seqk_kernels::from_float;
using seqk_kernels::to_float;

using seqk_kernels::by_dtype;

using seqk_kernels::launch_status;

/* ---- the cell math (seqk__rnn_step in fp32) ---------------------------------------------------- */

__host__ __device__ __forceinline__ int gate_count(int mode) {
  return mode == SEQK_RNN_MODE_LSTM ? 4 : mode == SEQK_RNN_MODE_GRU ? 3 : 1;
}

/* expf/tanhf, not the __expf intrinsics: the fast versions lose a few bits near 0, where the
   gates live, and this math is a small part of any step. */
__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

/* One hidden unit: pi[g] = W_ih x + b_ih and ph[g] = W_hh h + b_hh of gate g; h, c the previous
   state of this unit. c_new is c for the modes without a cell state. */
__device__ __forceinline__ void cell_math(int mode, const float pi[4], const float ph[4], float h,
                                          float c, float *h_new, float *c_new) {
  *c_new = c;
  switch (mode) {
    case SEQK_RNN_MODE_TANH:
      *h_new = tanhf(pi[0] + ph[0]);
      break;
    case SEQK_RNN_MODE_RELU: {
      const float v = pi[0] + ph[0];
      *h_new = v < 0.0f ? 0.0f : v;   /* NaN passes, as torch.relu's does */
      break;
    }
    case SEQK_RNN_MODE_LSTM: {
      const float i = sigmoid(pi[0] + ph[0]), f = sigmoid(pi[1] + ph[1]);
      const float g = tanhf(pi[2] + ph[2]), o = sigmoid(pi[3] + ph[3]);
      *c_new = f * c + i * g;
      *h_new = o * tanhf(*c_new);
      break;
    }
    default: {   /* GRU: ph[2] = W_hn h + b_hn, scaled by r as a whole */
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

template <typename T>
struct cell_args {
  int mode;
  int64_t N, H;
  const float *gi, *gh;   /* [N, G*H] fp32 contiguous; gh NULL: no h (W_hh h = 0) */
  const T *b_ih, *b_hh;   /* NULL: no bias */
  int64_t bs_ih, bs_hh;
  const T *h, *c;         /* NULL: zeros */
  int64_t h_s0, h_s1, c_s0, c_s1;
  T *h_out, *c_out;       /* c_out NULL unless LSTM */
  int64_t ho_s0, ho_s1, co_s0, co_s1;
};

/* One thread per (n, j), j fastest: coalesced reads of every gate row of gi/gh and coalesced
   state reads/writes for row-major tensors. h/c and h_out/c_out are not __restrict__: they may be
   the same memory, and each element is read before the same thread writes it. */
template <typename T>
__global__ void cell_gates_kernel(cell_args<T> a) {
  const int G = gate_count(a.mode);
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
    add_biases(G, a.H, j, a.b_ih, a.bs_ih, a.b_hh, a.bs_hh, pi, ph);
    const float hv = a.h ? to_float(a.h[n * a.h_s0 + j * a.h_s1]) : 0.0f;
    const float cv = a.c ? to_float(a.c[n * a.c_s0 + j * a.c_s1]) : 0.0f;
    float hn, cn;
    cell_math(a.mode, pi, ph, hv, cv, &hn, &cn);
    a.h_out[n * a.ho_s0 + j * a.ho_s1] = from_float<T>(hn);
    if (a.c_out) a.c_out[n * a.co_s0 + j * a.co_s1] = from_float<T>(cn);
  }
}

/* ---- layers: the per-step gate kernel -------------------------------------------------------- */

/* What both recurrence paths share: the projection, the biases, where y goes, the lengths. */
template <typename Tb, typename Y>
struct seq_args {
  int mode;
  int64_t N, H, T;
  int reverse;
  const int32_t *len;          /* [N] device lengths, or NULL: every row has T steps */
  const float *gi;             /* xproj: (t, n, c) at gi + t*gi_st + n*gi_sn + c */
  int64_t gi_st, gi_sn;
  const Tb *b_ih, *b_hh;       /* NULL: no bias */
  int64_t bs_ih, bs_hh;
  Y *y;                        /* this direction's first column: (t, n, j) at y + t*y_st + ... */
  int64_t y_st, y_sn, y_sk;
};

/* Step s for row n: the time index it works on, or -1 when the row is past its length. */
template <typename Tb, typename Y>
__device__ __forceinline__ int64_t time_of(const seq_args<Tb, Y> &a, int64_t n, int64_t s) {
  const int64_t L = a.len ? a.len[n] : a.T;
  if (s >= L) return -1;
  return a.reverse ? L - 1 - s : s;
}

/* The gate math of unit (n, j) at time t with ph[g] = W_hh h (no bias yet): updates *h, *c and
   writes y. */
template <typename Tb, typename Y>
__device__ __forceinline__ float unit_update(const seq_args<Tb, Y> &a, int G, int64_t n, int64_t j,
                                             int64_t t, float ph[4], float h, float *c) {
  const float *row = a.gi + t * a.gi_st + n * a.gi_sn;
  float pi[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  SEQK_UNROLL
  for (int g = 0; g < 4; ++g)
    if (g < G) pi[g] = row[g * a.H + j];
  add_biases(G, a.H, j, a.b_ih, a.bs_ih, a.b_hh, a.bs_hh, pi, ph);
  float hn, cn;
  cell_math(a.mode, pi, ph, h, *c, &hn, &cn);
  *c = cn;
  a.y[t * a.y_st + n * a.y_sn + j * a.y_sk] = from_float<Y>(hn);
  return hn;
}

/* One step of the per-step path: one thread per (n, j), j fastest (coalesced gh/xproj rows and
   state). h and c ([N, H] fp32) are updated in place: each element by the one thread that reads
   it, after this step's GEMM has read h. */
template <typename Tb, typename Y>
__global__ void step_kernel(seq_args<Tb, Y> a, const float *gh, float *h, float *c, int64_t s) {
  const int G = gate_count(a.mode);
  const int64_t GH = G * a.H, total = a.N * a.H;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t n = i / a.H, j = i - n * a.H;
    const int64_t t = time_of(a, n, s);
    if (t < 0) {   /* past this row's length: state kept, y at step s is padding */
      a.y[s * a.y_st + n * a.y_sn + j * a.y_sk] = from_float<Y>(0.0f);
      continue;
    }
    float ph[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    SEQK_UNROLL
    for (int g = 0; g < 4; ++g)
      if (g < G && gh) ph[g] = gh[n * GH + g * a.H + j];
    float cv = c ? c[i] : 0.0f;
    h[i] = unit_update(a, G, n, j, t, ph, h[i], &cv);
    if (c) c[i] = cv;
  }
}

/* ---- layers: the persistent kernel ----------------------------------------------------------- */

template <typename Tw, typename Y>
struct persist_args {
  seq_args<Tw, Y> s;
  int64_t steps;
  const Tw *w_hh;              /* [G*H, H] as given (any strides) */
  int64_t w_rs, w_cs;
  /* h ping-pong: step s reads h[s & 1] and writes h[(s + 1) & 1]. Written by other blocks between
     grid barriers, so never read through the read-only (non-coherent) path: no const
     __restrict__ here. */
  float *h0, *h1;
  float *c;                    /* [N, H] or NULL; each element only ever touched by one thread */
  int units;                   /* hidden units per block */
  int ksplit;                  /* lanes per dot product (power of two <= 32) */
  int64_t ldw, ldh;            /* shared-memory row strides (elements) of W and h */
  int64_t w_bytes;             /* shared-memory bytes of the W slice (16-byte multiple) */
};

/* Block b owns hidden units [b*units, b*units + units) and keeps their G*units rows of W_hh in
   shared memory for the whole sequence (row g*units + jl = W_hh row g*H + j0 + jl), so W_hh is
   read from global memory once per call instead of once per step.
   Each step: the block stages h_prev [N, H] (fp32) in shared memory (coalesced, from L2), then
   computes its items (jl, n): G dot products of length H each, split over `ksplit` consecutive
   lanes on interleaved k (consecutive addresses in shared memory; rows padded so the lane groups
   of a warp fall on different banks) and reduced with xor shuffles; the group's first lane applies
   the gates and writes h_next, c and y. Then one grid barrier, after which every block sees the
   whole h_next. The item loop runs the same number of times in every thread, so the full-warp
   shuffles always have all 32 lanes. */
template <typename Tw, typename Y>
__global__ void __launch_bounds__(kPersistMaxThreads) persist_kernel(persist_args<Tw, Y> a) {
  DYN_SMEM(unsigned char, smem);
  Tw *ws = reinterpret_cast<Tw *>(smem);
  float *hs = reinterpret_cast<float *>(smem + a.w_bytes);
  const seq_args<Tw, Y> &q = a.s;
  const int G = gate_count(q.mode);
  const int64_t H = q.H, N = q.N;
  const int64_t j0 = (int64_t)blockIdx.x * a.units;
  const int64_t units = H - j0 < a.units ? H - j0 : a.units;

  /* The W_hh slice: consecutive threads on consecutive k (coalesced for row-major weights). */
  const int64_t w_elems = G * units * H;
  for (int64_t i = threadIdx.x; i < w_elems; i += blockDim.x) {
    const int64_t r = i / H, k = i - r * H, g = r / units, jl = r - g * units;
    ws[(g * a.units + jl) * a.ldw + k] = a.w_hh[(g * H + j0 + jl) * a.w_rs + k * a.w_cs];
  }

  const int64_t items = units * N;
  const int groups = (int)blockDim.x / a.ksplit;
  const int grp = (int)threadIdx.x / a.ksplit, ks = (int)threadIdx.x % a.ksplit;
  for (int64_t s = 0; s < a.steps; ++s) {
    float *h_prev = (s & 1) ? a.h1 : a.h0;
    float *h_next = (s & 1) ? a.h0 : a.h1;
    for (int64_t i = threadIdx.x; i < N * H; i += blockDim.x) {
      const int64_t n = i / H;
      hs[n * a.ldh + (i - n * H)] = h_prev[i];
    }
    __syncthreads();   /* (the first time also covers the W slice) */
    for (int64_t base = 0; base < items; base += groups) {
      const int64_t item = base + grp;
      const bool valid = item < items;
      const int64_t n = valid ? item / units : 0, jl = valid ? item - n * units : 0;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (valid) {
        const float *hrow = hs + n * a.ldh;
        const Tw *wrow = ws + jl * a.ldw;
        const int64_t gstride = a.units * a.ldw;
        for (int64_t k = ks; k < H; k += a.ksplit) {
          const float hv = hrow[k];
          SEQK_UNROLL
          for (int g = 0; g < 4; ++g)
            if (g < G) acc[g] += to_float(wrow[g * gstride + k]) * hv;
        }
      }
      for (int off = a.ksplit / 2; off > 0; off >>= 1) {
        SEQK_UNROLL
        for (int g = 0; g < 4; ++g)
          if (g < G) acc[g] += __shfl_xor_sync(0xffffffffu, acc[g], off);
      }
      if (valid && ks == 0) {
        const int64_t j = j0 + jl, i = n * H + j;
        const int64_t t = time_of(q, n, s);
        const float hv = hs[n * a.ldh + j];
        if (t < 0) {   /* past this row's length: carry the state, y at step s is padding */
          h_next[i] = hv;
          q.y[s * q.y_st + n * q.y_sn + j * q.y_sk] = from_float<Y>(0.0f);
        } else {
          float cv = a.c ? a.c[i] : 0.0f;
          h_next[i] = unit_update(q, G, n, j, t, acc, hv, &cv);
          if (a.c) a.c[i] = cv;
        }
      }
    }
    /* h_next complete everywhere, and no thread still reads hs (the last step needs neither:
       the kernel's end orders it before whatever the stream runs next). */
    if (s + 1 < a.steps) grid_sync();
  }
}

/* ---- the persistent kernel's dispatch ---------------------------------------------------------- */

struct persist_cfg {
  int blocks, threads, units, ksplit;
  int64_t ldw, ldh;
  size_t w_bytes, smem;
};

/* Row stride (in elements of esize bytes) of a shared-memory matrix with `cols` columns whose rows
   are read by lane groups of `ksplit` lanes on consecutive columns: with the stride in 4-byte
   words congruent to the group's width in words (mod 32 banks), the groups of one warp reading
   neighbouring rows hit disjoint banks. A group of 32 lanes owns the whole warp: no padding. */
int64_t smem_ld(int64_t cols, int64_t esize, int ksplit) {
  int64_t words = (cols * esize + 3) / 4;
  if (ksplit < 32) {
    int64_t kw = ksplit * esize / 4;
    if (kw < 1) kw = 1;
    words += ((kw - words) % 32 + 32) % 32;
  }
  return words * 4 / esize;
}

/* THE decision between the per-step path and the persistent kernel, and the persistent launch
   shape. The persistent kernel serves a layer when
     - the batch is small (N <= kPersistMaxBatch = 32): there the per-step path is latency-bound
       (two launches per step, each step's GEMM streaming all of W_hh from L2 for only N rows),
       and one step's whole h [N, H] fits in each block's shared memory next to its weights; for
       larger batches cuBLAS's tiled GEMMs use the SMs better than this kernel's dot products;
     - W_hh fits on chip: one block per SM (at most H blocks), each holding the G*units rows of
       its units = ceil(H / blocks) hidden units plus h, within the per-block shared-memory
       opt-in limit (on an H100: LSTM f32 up to H ~ 1024 at N = 8, f16 further);
     - the device supports cooperative launches (the per-step grid barrier needs every block
       resident: one block per SM of at most 512 threads always is).
   seqk__cuda_rnn_force (tests only) forces the per-step path, or the persistent kernel for any
   batch where it fits. Returns false (per-step) when a device query fails. */
bool rnn_persistent_plan(seqk_rnn_mode mode, seqk_dtype dtype, int64_t N, int64_t H,
                         persist_cfg *cfg) {
  if (g_force_path == 1) return false;
  if (g_force_path != 2 && N > kPersistMaxBatch) return false;
  int dev = 0, sms = 0, optin = 0, coop = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (!coop || sms < 1 || N < 1 || H < 1 || N > INT_MAX / 64 || H > INT_MAX / 64) return false;
  const int64_t G = gate_count(mode), esize = (int64_t)seqk_dtype_size(dtype);
  int64_t blocks = H < sms ? H : sms;
  const int64_t units = (H + blocks - 1) / blocks;
  blocks = (H + units - 1) / units;
  /* Lanes per dot product: a power of two up to a warp, with >= kMinColsPerLane columns each, and
     no more than kPersistMaxThreads threads for all items (beyond that the items loop). */
  const int64_t items = units * N;
  int ksplit = 1;
  while (ksplit < 32 && (int64_t)ksplit * 2 * kMinColsPerLane <= H &&
         (int64_t)ksplit * 2 * items <= kPersistMaxThreads)
    ksplit *= 2;
  int64_t threads = (items * ksplit + 31) / 32 * 32;
  if (threads > kPersistMaxThreads) threads = kPersistMaxThreads;
  const int64_t ldw = smem_ld(H, esize, ksplit), ldh = smem_ld(H, 4, ksplit);
  const int64_t w_bytes = (G * units * ldw * esize + 15) / 16 * 16;
  /* A multiple of 64 bytes: the emulator's shared-memory arena (emu/src/core.cpp) is an
     aligned_alloc(64, ...), whose size must then be a multiple of 64 (ASan aborts otherwise). */
  const int64_t smem = (w_bytes + N * ldh * 4 + 63) / 64 * 64;
  if (smem > optin) return false;
  cfg->blocks = (int)blocks;
  cfg->threads = (int)threads;
  cfg->units = (int)units;
  cfg->ksplit = ksplit;
  cfg->ldw = ldw;
  cfg->ldh = ldh;
  cfg->w_bytes = (size_t)w_bytes;
  cfg->smem = (size_t)smem;
  return true;
}

/* ---- launchers ------------------------------------------------------------------------------- */

template <typename Tb, typename Y>
seqk_status launch_step(seqk_context_t ctx, const char *op, const seq_args<Tb, Y> &a,
                        const float *gh, float *h, float *c, int64_t s) {
  launch(dim3(blocks_for(a.N * a.H)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
         step_kernel<Tb, Y>, a, gh, h, c, s);
  return launch_status(ctx, op, "step");
}

template <typename Tw, typename Y>
seqk_status launch_persistent(seqk_context_t ctx, const char *op, const persist_cfg &cfg,
                              const persist_args<Tw, Y> &a) {
  if (cfg.smem > 48 * 1024) {
    const cudaError_t err =
        cudaFuncSetAttribute((const void *)persist_kernel<Tw, Y>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg.smem);
    if (err != cudaSuccess)
      return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR,
                        "%s: allowing %zu bytes of shared memory for the persistent kernel "
                        "failed: %s", op, cfg.smem, cudaGetErrorString(err));
  }
  launch_cooperative(dim3((unsigned)cfg.blocks), dim3((unsigned)cfg.threads), cfg.smem,
                     (cudaStream_t)ctx->stream, persist_kernel<Tw, Y>, a);
  return launch_status(ctx, op, "persistent (cooperative)");
}

struct len_chunk {
  int32_t v[kLenChunk];
};

__global__ void store_lengths_kernel(int32_t *dst, len_chunk chunk, int count) {
  const int i = (int)threadIdx.x;
  if (i < count) dst[i] = chunk.v[i];
}

/* The host lengths into dst [N] on the device. They ride in the launches' parameters, which the
   launch captures when it is enqueued: no host buffer has to outlive this call and no stream
   synchronisation is needed (a cudaMemcpyAsync from pageable memory promises neither).
   One launch per 256 rows. */
seqk_status upload_lengths(seqk_context_t ctx, const char *op, const int32_t *host, int64_t N,
                           int32_t *dst) {
  for (int64_t off = 0; off < N; off += kLenChunk) {
    len_chunk chunk;
    memset(&chunk, 0, sizeof chunk);
    const int count = (int)(N - off < kLenChunk ? N - off : kLenChunk);
    memcpy(chunk.v, host + off, (size_t)count * sizeof(int32_t));
    launch(dim3(1), dim3(kLenChunk), 0, (cudaStream_t)ctx->stream, store_lengths_kernel,
           dst + off, chunk, count);
    SEQK_TRY(launch_status(ctx, op, "store_lengths"));
  }
  return SEQK_STATUS_SUCCESS;
}

/* ---- views ----------------------------------------------------------------------------------- */

void *advance(void *p, int64_t elems, seqk_dtype dt) {
  return p ? (char *)p + elems * (int64_t)seqk_dtype_size(dt) : NULL;
}

/* A CUDA tensor [rows, cols] at data with the given strides. */
seqk_tensor mat(void *data, seqk_dtype dt, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.device = SEQK_DEVICE_CUDA;
  t.ndim = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  t.stride[0] = rs;
  t.stride[1] = cols > 0 ? cs : 1;
  return t;
}

/* Entry e of a [L*D, N, H] state tensor as [N, H]. */
seqk_tensor state_entry(const seqk_tensor *t, int64_t e) {
  return mat(advance(t->data, e * t->stride[0], t->dtype), t->dtype, t->shape[1], t->shape[2],
             t->stride[1], t->stride[2]);
}

/* out [M, n] (fp32, row stride ldc) = a [M, k] (rows at a_rs, columns at a_cs) W^T, W [n, k]. */
seqk_matmul product(const void *a, seqk_dtype ab, int64_t M, int64_t a_rs, int64_t a_cs,
                    const seqk_tensor *w, float *out, int64_t ldc) {
  seqk_matmul mm;
  memset(&mm, 0, sizeof mm);
  mm.m = M;
  mm.k = w->shape[1];
  mm.n = w->shape[0];
  mm.alpha = 1.0f;
  mm.ab_type = ab;
  mm.c_type = SEQK_DTYPE_F32;
  mm.a.data = const_cast<void *>(a);
  mm.a.rs = a_rs;
  mm.a.cs = a_cs;
  /* B = W^T: B[i, o] = w[o, i]. */
  mm.b.data = w->data;
  mm.b.rs = w->stride[1];
  mm.b.cs = w->stride[0];
  mm.c.data = out;
  mm.c.rs = ldc;
  mm.c.cs = 1;
  return mm;
}

/* The input projection of a whole sequence: in [A, B, K] (any strides; (A, B) = (T, N) or, with
   batch_first, (N, T)) times W^T into out [A, B, n] fp32 contiguous, in in's own order. One GEMM
   over A*B rows when in's two leading dims flatten to one row stride, else one strided-batched
   GEMM over A. */
seqk_matmul projection(const seqk_tensor *in, const seqk_tensor *w, float *out) {
  const int64_t A = in->shape[0], B = in->shape[1], n = w->shape[0];
  if (B == 1) return product(in->data, in->dtype, A, in->stride[0], in->stride[2], w, out, n);
  if (A == 1 || in->stride[0] == B * in->stride[1])
    return product(in->data, in->dtype, A * B, in->stride[1], in->stride[2], w, out, n);
  seqk_matmul mm = product(in->data, in->dtype, B, in->stride[1], in->stride[2], w, out, n);
  mm.nlevels = 1;
  mm.count[0] = A;
  mm.a.batch[0] = in->stride[0];
  mm.b.batch[0] = 0;
  mm.c.batch[0] = B * n;
  return mm;
}

const seqk_tensor *present_or_null(const seqk_tensor *t) { return seqk__present(t) ? t : NULL; }

}  // namespace

/* ---- seqk_rnn_cell --------------------------------------------------------------------------- */

extern "C" seqk_status seqk__cuda_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode,
                                           const seqk_tensor *x, const seqk_tensor *h,
                                           const seqk_tensor *c, const seqk_tensor *w_ih,
                                           const seqk_tensor *w_hh, const seqk_tensor *b_ih,
                                           const seqk_tensor *b_hh, const seqk_tensor *h_out,
                                           const seqk_tensor *c_out) {
  static const char op[] = "rnn_cell";
  SEQK_TRY(seqk__require_device(ctx, op));
  const int64_t N = x->shape[0], H = w_hh->shape[1], G = gate_count(mode), GH = G * H;
  if (N == 0) return SEQK_STATUS_SUCCESS;
  const int lstm = mode == SEQK_RNN_MODE_LSTM;
  h = present_or_null(h);
  c = lstm ? present_or_null(c) : NULL;
  b_ih = present_or_null(b_ih);
  b_hh = present_or_null(b_hh);

  /* Plan on products without memory, then the same products over the arena's pieces. */
  const size_t g_bytes = seqk__ws_elems(seqk__mul_sat(N, GH), sizeof(float));
  seqk_matmul mm_i = product(x->data, x->dtype, N, x->stride[0], x->stride[1], w_ih, NULL, GH);
  seqk_matmul mm_h;
  memset(&mm_h, 0, sizeof mm_h);
  if (h) mm_h = product(h->data, h->dtype, N, h->stride[0], h->stride[1], w_hh, NULL, GH);
  size_t bytes = seqk__ws_sum(g_bytes, seqk__matmul_workspace(&mm_i));
  if (h) bytes = seqk__ws_sum(bytes, seqk__ws_sum(g_bytes, seqk__matmul_workspace(&mm_h)));

  seqk_arena arena;
  void *gi = NULL, *gh = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, g_bytes, &gi));
  if (h) SEQK_TRY(seqk__arena_take(ctx, op, &arena, g_bytes, &gh));
  mm_i.c.data = gi;
  SEQK_TRY(seqk__matmul(ctx, op, &arena, &mm_i));
  if (h) {
    mm_h.c.data = gh;
    SEQK_TRY(seqk__matmul(ctx, op, &arena, &mm_h));
  }

  seqk_status st = SEQK_STATUS_SUCCESS;
  by_dtype(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    cell_args<T> a;
    memset(&a, 0, sizeof a);
    a.mode = (int)mode;
    a.N = N;
    a.H = H;
    a.gi = static_cast<const float *>(gi);
    a.gh = static_cast<const float *>(gh);
    if (b_ih) {
      a.b_ih = static_cast<const T *>(b_ih->data);
      a.bs_ih = b_ih->stride[0];
    }
    if (b_hh) {
      a.b_hh = static_cast<const T *>(b_hh->data);
      a.bs_hh = b_hh->stride[0];
    }
    if (h) {
      a.h = static_cast<const T *>(h->data);
      a.h_s0 = h->stride[0];
      a.h_s1 = h->stride[1];
    }
    if (c) {
      a.c = static_cast<const T *>(c->data);
      a.c_s0 = c->stride[0];
      a.c_s1 = c->stride[1];
    }
    a.h_out = static_cast<T *>(h_out->data);
    a.ho_s0 = h_out->stride[0];
    a.ho_s1 = h_out->stride[1];
    if (lstm) {
      a.c_out = static_cast<T *>(c_out->data);
      a.co_s0 = c_out->stride[0];
      a.co_s1 = c_out->stride[1];
    }
    launch(dim3(blocks_for(N * H)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
           cell_gates_kernel<T>, a);
    st = launch_status(ctx, op, "cell_gates");
  });
  return st;
}

/* ---- seqk_rnn_forward ------------------------------------------------------------------------ */

namespace {

/* Everything one forward call decides before it runs. */
struct fwd_plan {
  seqk_rnn_mode mode;
  seqk_dtype dt;
  int64_t T, N, H, G, GH, D, L, DH, steps;
  int bf, lstm, has_h0, has_c0, use_len, persistent, nbuf;
  int wih_copy;                /* layers l > 0 need an fp32 copy of W_ih (16-bit dtypes) */
  int whh_copy;                /* the per-step path needs an fp32, cuBLAS-addressable W_hh copy */
  persist_cfg pc;
  size_t b_len, b_xproj, b_gh, b_h, b_c, b_inter, b_wih, b_whh, b_scratch;
};

/* The recurrent product gh [N, G*H] = h [N, H] (fp32, contiguous) W_hh^T. */
seqk_matmul recurrent(const fwd_plan &p, const float *h, const seqk_tensor *w_hh, float *gh) {
  return product(h, SEQK_DTYPE_F32, p.N, p.H, 1, w_hh, gh, p.GH);
}

/* An fp32 contiguous stand-in for a weight (for planning, data may be NULL). */
seqk_tensor f32_weight(void *data, const seqk_tensor *w) {
  return mat(data, SEQK_DTYPE_F32, w->shape[0], w->shape[1], w->shape[1], 1);
}

/* Layer l's input as a [A, B, K] tensor: x itself, or the fp32 inter-layer buffer [T, N, D*H]. */
seqk_tensor layer_input(const fwd_plan &p, const seqk_tensor *x, int64_t l, void *prev) {
  if (l == 0) return *x;
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = prev;
  t.dtype = SEQK_DTYPE_F32;
  t.device = SEQK_DEVICE_CUDA;
  t.ndim = 3;
  t.shape[0] = p.T;
  t.shape[1] = p.N;
  t.shape[2] = p.DH;
  t.stride[0] = p.N * p.DH;
  t.stride[1] = p.DH;
  t.stride[2] = 1;
  return t;
}

/* The projection GEMM of entry e = l*D + d (weights as the plan will have them). */
seqk_matmul entry_projection(const fwd_plan &p, const seqk_tensor *x, const seqk_rnn_weights *w,
                             int64_t l, int64_t e, void *prev, void *wih32, float *xproj) {
  const seqk_tensor in = layer_input(p, x, l, prev);
  const seqk_tensor w32 = f32_weight(wih32, &w->w_ih[e]);
  const seqk_tensor *wi = (l > 0 && p.wih_copy) ? &w32 : &w->w_ih[e];
  return projection(&in, wi, xproj);
}

void make_plan(fwd_plan &p, const seqk_rnn_desc *desc, const seqk_rnn_weights *w,
               const seqk_tensor *x, const seqk_tensor *h0, const seqk_tensor *c0,
               const int32_t *lens) {
  memset(&p, 0, sizeof p);
  p.mode = desc->mode;
  p.dt = x->dtype;
  p.bf = desc->batch_first != 0;
  p.T = x->shape[p.bf ? 1 : 0];
  p.N = x->shape[p.bf ? 0 : 1];
  p.H = desc->hidden_size;
  p.G = gate_count(p.mode);
  p.GH = p.G * p.H;
  p.D = desc->bidirectional ? 2 : 1;
  p.L = desc->num_layers;
  p.DH = p.D * p.H;
  p.lstm = p.mode == SEQK_RNN_MODE_LSTM;
  p.has_h0 = seqk__present(h0);
  p.has_c0 = p.lstm && seqk__present(c0);
  /* All lengths T is the unpacked case: no device array, no per-row test. */
  p.steps = 0;
  p.use_len = 0;
  for (int64_t n = 0; lens && n < p.N; ++n) {
    if (lens[n] != p.T) p.use_len = 1;
    if (lens[n] > p.steps) p.steps = lens[n];
  }
  if (!lens) p.steps = p.T;
  p.persistent = rnn_persistent_plan(p.mode, p.dt, p.N, p.H, &p.pc);
  p.nbuf = p.L > 2 ? 2 : (int)(p.L - 1);
  p.wih_copy = p.L > 1 && p.dt != SEQK_DTYPE_F32;
  p.whh_copy = 0;
  if (!p.persistent)
    for (int64_t e = 0; e < p.L * p.D; ++e) {
      const seqk_matmul mm = recurrent(p, NULL, &w->w_hh[e], NULL);
      if (p.dt != SEQK_DTYPE_F32 || seqk__matmul_workspace(&mm) != 0) p.whh_copy = 1;
    }

  const int64_t NH = seqk__mul_sat(p.N, p.H);
  p.b_len = p.use_len ? seqk__ws_elems(p.N, sizeof(int32_t)) : 0;
  p.b_xproj = seqk__ws_elems(seqk__mul_sat(seqk__mul_sat(p.T, p.N), p.GH), sizeof(float));
  p.b_gh = p.persistent ? 0 : seqk__ws_elems(seqk__mul_sat(p.N, p.GH), sizeof(float));
  p.b_h = seqk__ws_elems(p.persistent ? seqk__mul_sat(2, NH) : NH, sizeof(float));
  p.b_c = p.lstm ? seqk__ws_elems(NH, sizeof(float)) : 0;
  p.b_inter = seqk__ws_elems(seqk__mul_sat(seqk__mul_sat(p.T, p.N), p.DH), sizeof(float));
  p.b_wih = p.wih_copy ? seqk__ws_elems(seqk__mul_sat(p.GH, p.DH), sizeof(float)) : 0;
  p.b_whh = p.whh_copy ? seqk__ws_elems(seqk__mul_sat(p.GH, p.H), sizeof(float)) : 0;
  p.b_scratch = 0;
  for (int64_t l = 0; l < p.L; ++l)
    for (int64_t d = 0; d < p.D; ++d) {
      const seqk_matmul mm = entry_projection(p, x, w, l, l * p.D + d, NULL, NULL, NULL);
      const size_t b = seqk__matmul_workspace(&mm);
      if (b > p.b_scratch) p.b_scratch = b;
    }
}

size_t plan_bytes(const fwd_plan &p) {
  size_t b = seqk__ws_sum(p.b_len, p.b_xproj);
  b = seqk__ws_sum(b, p.b_gh);
  b = seqk__ws_sum(b, p.b_h);
  b = seqk__ws_sum(b, p.b_c);
  for (int i = 0; i < p.nbuf; ++i) b = seqk__ws_sum(b, p.b_inter);
  b = seqk__ws_sum(b, p.b_wih);
  b = seqk__ws_sum(b, p.b_whh);
  return seqk__ws_sum(b, p.b_scratch);
}

/* The next `bytes` of the arena as a P array (nothing taken, *dst NULL, for 0 bytes). */
template <typename P>
seqk_status take_piece(seqk_context_t ctx, const char *op, seqk_arena *arena, size_t bytes,
                       P **dst) {
  void *piece = NULL;
  *dst = NULL;
  if (bytes == 0) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(seqk__arena_take(ctx, op, arena, bytes, &piece));
  *dst = static_cast<P *>(piece);
  return SEQK_STATUS_SUCCESS;
}

/* The workspace pieces of one call. */
struct fwd_mem {
  int32_t *len;
  float *xproj, *gh, *h, *c, *inter[2], *wih, *whh;
};

/* Runs the recurrence of one layer-direction, with the state already in m.h / m.c. */
template <typename T, typename Y>
seqk_status run_recurrence(seqk_context_t ctx, const char *op, const fwd_plan &p,
                           const fwd_mem &m, const seq_args<T, Y> &a, const seqk_tensor *w_hh,
                           int h_is_zero, seqk_arena *arena) {
  if (p.persistent) {
    persist_args<T, Y> pa;
    memset(&pa, 0, sizeof pa);
    pa.s = a;
    pa.steps = p.steps;
    pa.w_hh = static_cast<const T *>(w_hh->data);
    pa.w_rs = w_hh->stride[0];
    pa.w_cs = w_hh->stride[1];
    pa.h0 = m.h;
    pa.h1 = m.h + p.N * p.H;
    pa.c = m.c;
    pa.units = p.pc.units;
    pa.ksplit = p.pc.ksplit;
    pa.ldw = p.pc.ldw;
    pa.ldh = p.pc.ldh;
    pa.w_bytes = (int64_t)p.pc.w_bytes;
    return launch_persistent(ctx, op, p.pc, pa);
  }
  /* Per-step: W_hh as cuBLAS reads it (fp32; copied when 16-bit or not addressable). */
  seqk_tensor w32 = f32_weight(m.whh, w_hh);
  const seqk_tensor *wr = w_hh;
  if (p.whh_copy) {
    SEQK_TRY(seqk__cuda_tensor_copy(ctx, &w32, w_hh));
    wr = &w32;
  }
  const seqk_matmul mm = recurrent(p, m.h, wr, m.gh);
  for (int64_t s = 0; s < p.steps; ++s) {
    /* A zero initial state needs no GEMM: W_hh 0 = 0. */
    const bool zero = s == 0 && h_is_zero;
    if (!zero) SEQK_TRY(seqk__matmul(ctx, op, arena, &mm));
    SEQK_TRY(launch_step(ctx, op, a, zero ? NULL : m.gh, m.h, m.c, s));
  }
  return SEQK_STATUS_SUCCESS;
}

/* Layer l, direction d: projection, initial state, recurrence, final state. */
seqk_status run_entry(seqk_context_t ctx, const char *op, const fwd_plan &p, const fwd_mem &m,
                      const seqk_rnn_weights *w, const seqk_tensor *x, const seqk_tensor *h0,
                      const seqk_tensor *c0, const seqk_tensor *y, const seqk_tensor *hn,
                      const seqk_tensor *cn, int64_t l, int64_t d, seqk_arena *arena) {
  const int64_t e = l * p.D + d, NH = p.N * p.H;
  void *prev = l > 0 ? m.inter[(l - 1) % 2] : NULL;
  const seqk_tensor *b_ih = w->b_ih ? present_or_null(&w->b_ih[e]) : NULL;
  const seqk_tensor *b_hh = w->b_hh ? present_or_null(&w->b_hh[e]) : NULL;

  /* 1. xproj = input W_ih^T for all steps. */
  if (l > 0 && p.wih_copy) {
    seqk_tensor w32 = f32_weight(m.wih, &w->w_ih[e]);
    SEQK_TRY(seqk__cuda_tensor_copy(ctx, &w32, &w->w_ih[e]));
  }
  const seqk_matmul proj = entry_projection(p, x, w, l, e, prev, m.wih, m.xproj);
  SEQK_TRY(seqk__matmul(ctx, op, arena, &proj));

  /* 2. The initial state, fp32 [N, H]. */
  seqk_tensor hs = mat(m.h, SEQK_DTYPE_F32, p.N, p.H, p.H, 1);
  seqk_tensor cs = mat(m.c, SEQK_DTYPE_F32, p.N, p.H, p.H, 1);
  if (p.has_h0) {
    const seqk_tensor src = state_entry(h0, e);
    SEQK_TRY(seqk__cuda_tensor_copy(ctx, &hs, &src));
  } else {
    SEQK_TRY(seqk__cuda_fill_rows(ctx, &hs, NULL, 0.0f));
  }
  if (p.lstm) {
    if (p.has_c0) {
      const seqk_tensor src = state_entry(c0, e);
      SEQK_TRY(seqk__cuda_tensor_copy(ctx, &cs, &src));
    } else {
      SEQK_TRY(seqk__cuda_fill_rows(ctx, &cs, NULL, 0.0f));
    }
  }

  /* 3. The recurrence, writing this direction's columns of the layer output. */
  const bool last = l == p.L - 1;
  seqk_status st = SEQK_STATUS_SUCCESS;
  by_dtype(p.dt, [&](auto tag) {
    using T = decltype(tag);
    auto fill = [&](auto &a) {
      a.mode = (int)p.mode;
      a.N = p.N;
      a.H = p.H;
      a.T = p.T;
      a.reverse = d == 1;
      a.len = p.use_len ? m.len : NULL;
      a.gi = m.xproj;
      /* xproj follows the input's (A, B) order: (T, N), or (N, T) for batch_first's x. */
      const bool nt = l == 0 && p.bf;
      a.gi_st = nt ? p.GH : p.N * p.GH;
      a.gi_sn = nt ? p.T * p.GH : p.GH;
      if (b_ih) {
        a.b_ih = static_cast<const T *>(b_ih->data);
        a.bs_ih = b_ih->stride[0];
      }
      if (b_hh) {
        a.b_hh = static_cast<const T *>(b_hh->data);
        a.bs_hh = b_hh->stride[0];
      }
    };
    if (last) {
      seq_args<T, T> a;
      memset(&a, 0, sizeof a);
      fill(a);
      a.y = static_cast<T *>(advance(y->data, d * p.H * y->stride[2], y->dtype));
      a.y_st = y->stride[p.bf ? 1 : 0];
      a.y_sn = y->stride[p.bf ? 0 : 1];
      a.y_sk = y->stride[2];
      st = run_recurrence(ctx, op, p, m, a, &w->w_hh[e], !p.has_h0, arena);
    } else {
      seq_args<T, float> a;
      memset(&a, 0, sizeof a);
      fill(a);
      a.y = m.inter[l % 2] + d * p.H;
      a.y_st = p.N * p.DH;
      a.y_sn = p.DH;
      a.y_sk = 1;
      st = run_recurrence(ctx, op, p, m, a, &w->w_hh[e], !p.has_h0, arena);
    }
  });
  SEQK_TRY(st);

  /* 4. hn/cn: the state after the last step (the persistent kernel's ping-pong ends in buffer
     steps & 1; inactive rows carried theirs along). */
  const float *h_fin = m.h + ((p.persistent && (p.steps & 1)) ? NH : 0);
  if (seqk__present(hn)) {
    const seqk_tensor dst = state_entry(hn, e);
    const seqk_tensor src = mat(const_cast<float *>(h_fin), SEQK_DTYPE_F32, p.N, p.H, p.H, 1);
    SEQK_TRY(seqk__cuda_tensor_copy(ctx, &dst, &src));
  }
  if (p.lstm && seqk__present(cn)) {
    const seqk_tensor dst = state_entry(cn, e);
    SEQK_TRY(seqk__cuda_tensor_copy(ctx, &dst, &cs));
  }
  return SEQK_STATUS_SUCCESS;
}

}  // namespace

extern "C" seqk_status seqk__cuda_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                              const seqk_rnn_weights *w, const seqk_tensor *x,
                                              const seqk_tensor *h0, const seqk_tensor *c0,
                                              const seqk_tensor *lengths, const seqk_tensor *y,
                                              const seqk_tensor *hn, const seqk_tensor *cn) {
  static const char op[] = "rnn_forward";
  SEQK_TRY(seqk__require_device(ctx, op));
  const int bf = desc->batch_first != 0;
  const int64_t N = x->shape[bf ? 0 : 1];

  /* The lengths, read on the host (validated in [1, T] by the entry). */
  int32_t *lens = NULL;
  if (seqk__present(lengths)) {
    lens = (int32_t *)malloc((size_t)N * sizeof(int32_t));
    if (!lens)
      return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: cannot allocate %lld lengths", op,
                        (long long)N);
    for (int64_t n = 0; n < N; ++n) lens[n] = seqk__load_i32(lengths, n * lengths->stride[0]);
  }
  fwd_plan p;
  make_plan(p, desc, w, x, h0, c0, lens);

  seqk_arena arena;
  fwd_mem m;
  memset(&m, 0, sizeof m);
  seqk_status st = seqk__arena_open(ctx, op, plan_bytes(p), &arena);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_len, &m.len);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_xproj, &m.xproj);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_gh, &m.gh);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_h, &m.h);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_c, &m.c);
  for (int i = 0; i < p.nbuf; ++i)
    if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_inter, &m.inter[i]);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_wih, &m.wih);
  if (st == SEQK_STATUS_SUCCESS) st = take_piece(ctx, op, &arena, p.b_whh, &m.whh);
  if (st == SEQK_STATUS_SUCCESS && p.use_len) st = upload_lengths(ctx, op, lens, p.N, m.len);
  free(lens);
  SEQK_TRY(st);

  /* Every layer-direction takes its GEMM operand copies from the same scratch area: they are
     dead once that projection has run, and ctx's one stream orders the reuse. */
  const size_t mark = arena.used;
  for (int64_t l = 0; l < p.L; ++l)
    for (int64_t d = 0; d < p.D; ++d) {
      arena.used = mark;
      SEQK_TRY(run_entry(ctx, op, p, m, w, x, h0, c0, y, hn, cn, l, d, &arena));
    }

  /* Steps at or past the longest sequence were never run: y is padding there. */
  if (p.steps < p.T) {
    seqk_tensor tail = *y;
    const int tdim = bf ? 1 : 0;
    tail.data = advance(y->data, p.steps * y->stride[tdim], y->dtype);
    tail.shape[tdim] = p.T - p.steps;
    SEQK_TRY(seqk__cuda_fill_rows(ctx, &tail, NULL, 0.0f));
  }
  return SEQK_STATUS_SUCCESS;
}

/* ---- tests only ------------------------------------------------------------------------------ */

extern "C" void seqk__cuda_rnn_force(int path) { g_force_path = path; }

extern "C" int32_t seqk__cuda_rnn_persistent_applies(seqk_rnn_mode mode, seqk_dtype dtype,
                                                     int64_t batch, int64_t hidden) {
  persist_cfg cfg;
  return rnn_persistent_plan(mode, dtype, batch, hidden, &cfg) ? 1 : 0;
}
