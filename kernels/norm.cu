/*
 * norm.cu - seqk_layer_norm and seqk_rms_norm on CUDA tensors, with the optional fused residual:
 *   h = x (+ residual, rounded to the dtype as storing it would), residual_out = h,
 *   layer: y = (h - mean) * rstd * weight + bias,  rstd = 1 / sqrt(mean((h - mean)^2) + eps)
 *   rms:   y = h * rstd * weight,                  rstd = 1 / sqrt(mean(h^2) + eps)
 * Statistics in fp32, two passes over values held on chip (the mean first, then the squared
 * deviations: no cancellation of sum(h^2) - n mean^2).
 *
 * Work split. A team of `team` threads owns a row and each member holds kChunks chunks of W
 * columns (chunk u of member m: columns (u * team + m) * W ..), so a row is read once and written
 * once; team is the power of two that gives each member at most kChunks chunks. Teams of up to
 * 32 lanes reduce with shuffles and share a 256-thread block (short rows: q/k norms of D = 64..256,
 * hidden sizes up to 32 * kChunks * W); larger teams are the whole block (one row per block, up to
 * kMaxTeam threads: 16384 columns of a 16-bit type, 8192 of f32, 2048 unvectorised). Longer rows
 * stream through a 512-thread block three times (sum, squared deviations, output).
 * W: 16-byte vectors (8 columns of a 16-bit type, 4 of f32) when every row tensor has a
 * contiguous last dim, 16-byte aligned rows and weight/bias contiguous and aligned; otherwise one
 * element at a time with any strides. A row's tail that is not a whole vector is read and written
 * element by element.
 * Loads in flight: a thread issues all its 16-byte loads of x and of the residual before it
 * unpacks any (issue_row / finish_row). SASS, sm_90, nvcc 13.0, 2026-12-03, norm_kernel<f16, 8>:
 * 8 LDG.E.128 back to back with the residual (4 of x, 4 of it; was 4, then 4 after x's tail
 * handling, when each row was loaded whole in turn), 4 without.
 * Aliasing (y == x, residual_out == residual or x): each element is read and later written by
 * the same thread, and the reads of a row are done before the reduction that precedes its writes.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "layout.cuh"
#include "softmax.cuh"

#include <math.h>

namespace {

using namespace seqk_rows;
using seqk_kernels::layout_offsets;

constexpr int kChunks = 4;        /* chunks of W columns a thread holds on chip */
constexpr int kWarpBlock = 256;   /* block of the <= 32-lane teams */
constexpr int kMaxTeam = 512;     /* the largest on-chip team (a whole block) */
constexpr int kStreamBlock = 512; /* the streaming kernel's block */
/* Both kernels promise ptxas one block per SM (__launch_bounds__(threads, 1)): without it ptxas
   13.0 held the unvectorised 16-bit ones to 64 registers on sm_80 and spilled 12-16 bytes
   (2026-12-03); with it they take 64-90, the vectorised ones 108-128. */
enum {
  X = SEQK_K_NORM_X,
  R = SEQK_K_NORM_RESIDUAL,
  Y = SEQK_K_NORM_Y,
  RO = SEQK_K_NORM_RESIDUAL_OUT
};

/* NV chunks of a row into v (chunk u: columns c0[u] .. c0[u] + W - 1); columns >= n read as 0.
   W > 1: a contiguous row, whole chunks as 16-byte loads; issue_row starts them, finish_row
   (after every row the caller wants in flight has been issued) unpacks them and reads a tail
   chunk element by element. W == 1: element loads at column stride cs, all in finish_row. */
template <typename T, int W, int NV>
struct row_raw {
  uint4 r[NV][W == 1 ? 1 : chunk_of<T, W>::kWords];
};
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void issue_row(const T *row, const I *c0, I n, row_raw<T, W, NV> &raw) {
  if constexpr (W > 1) { /* softmax.cuh's loads: whole chunks before n, none past it */
    bool live[NV];
    SEQK_UNROLL
    for (int u = 0; u < NV; ++u) live[u] = true;
    issue_chunks<T, W, NV>(row, c0, live, n, n, raw.r);
  }
}
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void finish_row(const T *row, int64_t cs, const I *c0, I n,
                                           const row_raw<T, W, NV> &raw, float *v) {
  if constexpr (W == 1) {
    SEQK_UNROLL
    for (int u = 0; u < NV; ++u) {
      v[u] = 0.0f;
      if (c0[u] < n) v[u] = to_float(row[(int64_t)c0[u] * cs]);
    }
  } else {
    SEQK_UNROLL
    for (int u = 0; u < NV; ++u) {
      unpack_chunk<T, W>(raw.r[u], v + u * W);
      const I room = n - c0[u];
      if (room > 0 && room < W) {
        SEQK_UNROLL
        for (int e = 0; e < W; ++e) v[u * W + e] = e < room ? to_float(row[c0[u] + e]) : 0.0f;
      }
    }
  }
}
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void load_row(const T *row, int64_t cs, const I *c0, I n, float *v) {
  row_raw<T, W, NV> raw;
  issue_row<T, W, NV>(row, c0, n, raw);
  finish_row<T, W, NV>(row, cs, c0, n, raw, v);
}

/* The columns < n of NV chunks (W == 1: at column stride cs). */
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void store_row(T *row, int64_t cs, const I *c0, I n, const float *v) {
  SEQK_UNROLL
  for (int u = 0; u < NV; ++u) {
    if constexpr (W == 1) {
      if (c0[u] < n) row[(int64_t)c0[u] * cs] = from_float<T>(v[u]);
    } else {
      store_masked<T, W>(row, c0[u], n, v + u * W);
    }
  }
}

/* The row pointers of one row (absent tensors: NULL). */
template <typename T>
struct row_ptrs {
  const T *x, *r;
  T *y, *ro;
};
template <typename T>
__device__ __forceinline__ row_ptrs<T> row_at(const seqk_k_norm_params &p, int64_t row) {
  int64_t off[SEQK_K_LAYOUT_TENSORS];
  layout_offsets<SEQK_K_LAYOUT_TENSORS>(p.lead, row, off);
  row_ptrs<T> rp;
  rp.x = static_cast<const T *>(p.x) + off[X];
  rp.r = p.residual ? static_cast<const T *>(p.residual) + off[R] : nullptr;
  rp.y = static_cast<T *>(p.y) + off[Y];
  rp.ro = p.residual_out ? static_cast<T *>(p.residual_out) + off[RO] : nullptr;
  return rp;
}

/* h = x (+ residual rounded to T) for NV chunks; columns >= n are 0. */
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void load_h(const seqk_k_norm_params &p, const row_ptrs<T> &rp,
                                       const I *c0, I n, float *h) {
  /* x's and the residual's 16-byte loads all issued before either is unpacked. */
  row_raw<T, W, NV> rx, rr;
  issue_row<T, W, NV>(rp.x, c0, n, rx);
  issue_row<T, W, NV>(rp.r, c0, rp.r ? n : (I)0, rr); /* no residual: no load, zeros */
  finish_row<T, W, NV>(rp.x, p.col_stride[X], c0, n, rx, h);
  if (rp.r) {
    float rv[NV * W];
    finish_row<T, W, NV>(rp.r, p.col_stride[R], c0, n, rr, rv);
    SEQK_UNROLL
    for (int e = 0; e < NV * W; ++e) h[e] = to_float(from_float<T>(h[e] + rv[e]));
  }
}

/* Writes residual_out = h and y = (h - mean) * rstd * weight + bias for NV chunks, one chunk at
   a time: weight and bias are shared by every row (cache hits), and holding all of them for the
   whole row at once would double the registers of the 16-bit kernels. */
template <typename T, int W, int NV, typename I>
__device__ __forceinline__ void write_outputs(const seqk_k_norm_params &p, const row_ptrs<T> &rp,
                                              const I *c0, I n, float *h, float mean, float rstd) {
  if (rp.ro) store_row<T, W, NV>(rp.ro, p.col_stride[RO], c0, n, h);
  SEQK_UNROLL
  for (int u = 0; u < NV; ++u) {
    float w[W], b[W];
    if (p.weight) {
      load_row<T, W, 1>(static_cast<const T *>(p.weight), p.weight_stride, c0 + u, n, w);
    } else {
      SEQK_UNROLL
      for (int e = 0; e < W; ++e) w[e] = 1.0f;
    }
    if (p.bias) {
      load_row<T, W, 1>(static_cast<const T *>(p.bias), p.bias_stride, c0 + u, n, b);
    } else {
      SEQK_UNROLL
      for (int e = 0; e < W; ++e) b[e] = 0.0f;
    }
    SEQK_UNROLL
    for (int e = 0; e < W; ++e) h[u * W + e] = (h[u * W + e] - mean) * rstd * w[e] + b[e];
  }
  store_row<T, W, NV>(rp.y, p.col_stride[Y], c0, n, h);
}

/* The sum over a team: shuffles within `team` lanes (<= 32), else the whole block. */
__device__ __forceinline__ float team_sum(float v, int team, float *red) {
  return team <= 32 ? group_sum(v, team) : block_sum(v, red);
}

/* ON CHIP: rows of up to team * kChunks * W columns (see the header comment). Every thread of a
   block takes the same trips through the row loop (a thread past the last row works on an empty
   one), so the shuffles and barriers always see the whole warp and block. */
template <typename T, int W>
__global__ void __launch_bounds__(kMaxTeam, 1) norm_kernel(seqk_k_norm_params p, int team) {
  SMEM_ARRAY(float, red, 32);
  const int rows_per_block = team <= 32 ? (int)blockDim.x / team : 1;
  const int rank = (int)threadIdx.x & (team - 1);
  const int n = (int)p.n;
  const float inv_n = 1.0f / (float)n;
  int c0[kChunks];
  SEQK_UNROLL
  for (int u = 0; u < kChunks; ++u) c0[u] = (u * team + rank) * W;
  for (int64_t base = (int64_t)blockIdx.x * rows_per_block; base < p.rows;
       base += (int64_t)gridDim.x * rows_per_block) {
    const int64_t row = base + (int)threadIdx.x / team;
    const bool live = row < p.rows;
    const row_ptrs<T> rp = row_at<T>(p, live ? row : 0);
    const int nr = live ? n : 0;
    float h[kChunks * W];
    load_h<T, W, kChunks>(p, rp, c0, nr, h);
    float mean = 0.0f, s = 0.0f;
    if (p.rms) {
      SEQK_UNROLL
      for (int e = 0; e < kChunks * W; ++e) s += h[e] * h[e];
    } else {
      SEQK_UNROLL
      for (int e = 0; e < kChunks * W; ++e) s += h[e];
      mean = team_sum(s, team, red) * inv_n;
      s = 0.0f;
      SEQK_UNROLL
      for (int u = 0; u < kChunks; ++u) SEQK_UNROLL
      for (int e = 0; e < W; ++e) {
        const float d = c0[u] + e < nr ? h[u * W + e] - mean : 0.0f;
        s += d * d;
      }
    }
    const float rstd = 1.0f / sqrtf(team_sum(s, team, red) * inv_n + p.eps);
    write_outputs<T, W, kChunks>(p, rp, c0, nr, h, mean, rstd);
  }
}

/* STREAMING: one row per block of kStreamBlock threads, any length (64-bit columns); h is
   recomputed from x (+ residual) in each pass. */
template <typename T, int W>
__global__ void __launch_bounds__(kStreamBlock, 1) norm_stream_kernel(seqk_k_norm_params p) {
  SMEM_ARRAY(float, red, 32);
  const int64_t n = p.n, step = (int64_t)kStreamBlock * W;
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const row_ptrs<T> rp = row_at<T>(p, row);
    float s = 0.0f;
    for (int64_t c = (int64_t)threadIdx.x * W; c < n; c += step) {
      float h[W];
      load_h<T, W, 1>(p, rp, &c, n, h);
      SEQK_UNROLL
      for (int e = 0; e < W; ++e) s += p.rms ? h[e] * h[e] : h[e];
    }
    s = block_sum(s, red);
    float mean = 0.0f;
    if (!p.rms) {
      mean = s / (float)n;
      s = 0.0f;
      for (int64_t c = (int64_t)threadIdx.x * W; c < n; c += step) {
        float h[W];
        load_h<T, W, 1>(p, rp, &c, n, h);
        SEQK_UNROLL
        for (int e = 0; e < W; ++e) {
          const float d = c + e < n ? h[e] - mean : 0.0f;
          s += d * d;
        }
      }
      s = block_sum(s, red);
    }
    const float rstd = 1.0f / sqrtf(s / (float)n + p.eps);
    for (int64_t c = (int64_t)threadIdx.x * W; c < n; c += step) {
      float h[W];
      load_h<T, W, 1>(p, rp, &c, n, h);
      write_outputs<T, W, 1>(p, rp, &c, n, h, mean, rstd);
    }
  }
}

/* 16-byte vectors of W elements serve every row tensor, weight and bias. */
bool vectors_fit(const seqk_k_norm_params *p, int W) {
  const void *rows[SEQK_K_LAYOUT_TENSORS] = {p->x, p->residual, p->y, p->residual_out};
  for (int t = 0; t < SEQK_K_LAYOUT_TENSORS; ++t) {
    if (!rows[t]) continue;
    if ((uintptr_t)rows[t] % 16 != 0) return false;
    if (p->n > 1 && p->col_stride[t] != 1) return false;
    for (int d = 0; d < p->lead.ndim; ++d)
      if (p->lead.stride[t][d] % W != 0) return false;
  }
  const void *cols[2] = {p->weight, p->bias};
  const int64_t strides[2] = {p->weight_stride, p->bias_stride};
  for (int t = 0; t < 2; ++t)
    if (cols[t] && ((uintptr_t)cols[t] % 16 != 0 || (p->n > 1 && strides[t] != 1))) return false;
  return true;
}

template <typename T, int W>
cudaError_t launch_norm(const seqk_k_norm_params *p, cudaStream_t stream) {
  const int64_t chunks = (p->n + W - 1) / W;
  const int64_t need = (chunks + kChunks - 1) / kChunks; /* threads per row on chip */
  if (need > kMaxTeam)
    return seqk_kernels::launch_checked(dim3(seqk_kernels::grid_blocks(p->rows, 1)),
                                        dim3(kStreamBlock), 0, stream, norm_stream_kernel<T, W>,
                                        *p);
  int team = 1;
  while (team < need) team <<= 1;
  const int block = team <= 32 ? kWarpBlock : team;
  const int rows_per_block = team <= 32 ? kWarpBlock / team : 1;
  return seqk_kernels::launch_checked(dim3(seqk_kernels::grid_blocks(p->rows, rows_per_block)),
                                      dim3(block), 0, stream, norm_kernel<T, W>, *p, team);
}

}   // namespace

extern "C" cudaError_t seqk_k_norm(const seqk_k_norm_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->rows == 0 || p->n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / (int)sizeof(T);
    e = vectors_fit(p, kVec) ? launch_norm<T, kVec>(p, stream) : launch_norm<T, 1>(p, stream);
  });
  return e;
}
