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
__global__ void cell_gates_kernel(seqk_k_rnn_cell_params a) {
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
__global__ void step_kernel(seq_params a, const float *gh, float *h, float *c, int64_t s) {
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

/* The kernel reads seqk_k_rnn_persist_params and its launch shape seqk_k_rnn_persist_cfg. The h
   ping-pong buffers are written by other blocks between grid barriers, so they are never read
   through the read-only (non-coherent) path: no const __restrict__ on them; c's elements are each
   only ever touched by one thread. */
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
__global__ void __launch_bounds__(kPersistMaxThreads)
    persist_kernel(seqk_k_rnn_persist_params a, seqk_k_rnn_persist_cfg cfg) {
  DYN_SMEM(unsigned char, smem);
  Tw *ws = reinterpret_cast<Tw *>(smem);
  float *hs = reinterpret_cast<float *>(smem + cfg.w_bytes);
  const Tw *const w_hh = static_cast<const Tw *>(a.w_hh);
  const seq_params &q = a.s;
  const int G = q.G;
  const int64_t H = q.H, N = q.N;
  const int64_t cu = cfg.units;               /* hidden units per block */
  const int ksplit = cfg.ksplit;              /* lanes per dot product (power of two <= 32) */
  const int64_t ldw = cfg.ldw, ldh = cfg.ldh; /* shared-memory row strides of W and h */
  const int64_t j0 = (int64_t)blockIdx.x * cu;
  const int64_t units = H - j0 < cu ? H - j0 : cu;

  /* The W_hh slice: consecutive threads on consecutive k (coalesced for row-major weights). */
  const int64_t w_elems = G * units * H;
  for (int64_t i = threadIdx.x; i < w_elems; i += blockDim.x) {
    const int64_t r = i / H, k = i - r * H, g = r / units, jl = r - g * units;
    ws[(g * cu + jl) * ldw + k] = w_hh[(g * H + j0 + jl) * a.w_rs + k * a.w_cs];
  }

  const int64_t items = units * N;
  const int groups = (int)blockDim.x / ksplit;
  const int grp = (int)threadIdx.x / ksplit, ks = (int)threadIdx.x % ksplit;
  for (int64_t s = 0; s < a.steps; ++s) {
    float *h_prev = (s & 1) ? a.h1 : a.h0;
    float *h_next = (s & 1) ? a.h0 : a.h1;
    for (int64_t i = threadIdx.x; i < N * H; i += blockDim.x) {
      const int64_t n = i / H;
      hs[n * ldh + (i - n * H)] = h_prev[i];
    }
    __syncthreads(); /* (the first time also covers the W slice) */
    for (int64_t base = 0; base < items; base += groups) {
      const int64_t item = base + grp;
      const bool valid = item < items;
      const int64_t n = valid ? item / units : 0, jl = valid ? item - n * units : 0;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (valid) {
        const float *hrow = hs + n * ldh;
        const Tw *wrow = ws + jl * ldw;
        const int64_t gstride = cu * ldw;
        for (int64_t k = ks; k < H; k += ksplit) {
          const float hv = hrow[k];
          SEQK_UNROLL
          for (int g = 0; g < 4; ++g)
            if (g < G) acc[g] += to_float(wrow[g * gstride + k]) * hv;
        }
      }
      for (int off = ksplit / 2; off > 0; off >>= 1) {
        SEQK_UNROLL
        for (int g = 0; g < 4; ++g)
          if (g < G) acc[g] += __shfl_xor_sync(0xffffffffu, acc[g], off);
      }
      if (valid && ks == 0) {
        const int64_t j = j0 + jl, i = n * H + j;
        const int64_t t = time_of(q, n, s);
        const float hv = hs[n * ldh + j];
        if (t < 0) { /* past this row's length: carry the state, y at step s is padding */
          h_next[i] = hv;
          static_cast<Y *>(q.y)[s * q.y_st + n * q.y_sn + j * q.y_sk] = from_float<Y>(0.0f);
        } else {
          float cv = a.c ? a.c[i] : 0.0f;
          h_next[i] = unit_update<Tw, Y>(q, G, n, j, t, acc, hv, &cv);
          if (a.c) a.c[i] = cv;
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
  if (smem > (int64_t)smem_optin) return 0;
  cfg->blocks = (int)blocks;
  cfg->threads = (int)threads;
  cfg->units = (int)units;
  cfg->ksplit = ksplit;
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

__global__ void store_lengths_kernel(int32_t *dst, len_chunk chunk, int count) {
  const int i = (int)threadIdx.x;
  if (i < count) dst[i] = chunk.v[i];
}

}   // namespace

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
