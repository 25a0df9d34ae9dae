/*
 * activation.cu - seqk_activate and seqk_gated_activate on CUDA tensors, and the epilogue of a
 * fused linear: y = act(x) [* up] [+ add] in fp32 (activation.cuh), rounded once to the dtype.
 * Memory-bound: when x, up and y are each one contiguous run (the host merged their dims to
 * one with stride 1) and 16-byte aligned, a thread moves 16-byte vectors, two of them per trip
 * so that a thread has loads of both in flight; any other layout goes element by element through
 * the merged dims. y may alias x, up or add exactly: each element is read, then written, by one
 * thread.
 */
#include "cuda_compat.cuh"
#include "activation.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "layout.cuh"
#include "softmax.cuh"

namespace {

using namespace seqk_rows;
using seqk_kernels::activate;
using seqk_kernels::layout_offsets;

constexpr int kThreads = 256;
constexpr int kVecsPerTrip = 2;
enum { X = SEQK_K_ACT_X, UP = SEQK_K_ACT_UP, Y = SEQK_K_ACT_Y, ADD = SEQK_K_ACT_ADD };

/* Element by element over the merged dims, any strides. */
template <typename T>
__global__ void activation_strided_kernel(seqk_k_activation_params p) {
  const T *x = static_cast<const T *>(p.x), *up = static_cast<const T *>(p.up);
  const T *add = static_cast<const T *>(p.add);
  T *y = static_cast<T *>(p.y);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += step) {
    int64_t off[SEQK_K_LAYOUT_TENSORS];
    layout_offsets<SEQK_K_LAYOUT_TENSORS>(p.layout, i, off);
    float v = activate(p.act, to_float(x[off[X]]));
    if (up) v *= to_float(up[off[UP]]);
    if (add) v += to_float(add[off[ADD]]);
    y[off[Y]] = from_float<T>(v);
  }
}

/* Contiguous and aligned: chunks of W elements (16 bytes), kVecsPerTrip per thread per trip; the
   last chunk, when n is not a multiple of W, element by element. */
template <typename T, int W>
__global__ void activation_vec_kernel(seqk_k_activation_params p) {
  constexpr int kWords = chunk_of<T, W>::kWords;
  const T *x = static_cast<const T *>(p.x), *up = static_cast<const T *>(p.up);
  const T *add = static_cast<const T *>(p.add);
  T *y = static_cast<T *>(p.y);
  const int64_t chunks = (p.n + W - 1) / W;
  const int64_t threads = (int64_t)gridDim.x * blockDim.x;
  for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks;
       c += threads * kVecsPerTrip) {
    uint4 rx[kVecsPerTrip][kWords], ru[kVecsPerTrip][kWords], ra[kVecsPerTrip][kWords];
    SEQK_UNROLL
    for (int k = 0; k < kVecsPerTrip; ++k) {
      const int64_t e0 = (c + k * threads) * W;
      const bool whole = p.n - e0 >= W;
      SEQK_UNROLL
      for (int i = 0; i < kWords; ++i) {
        rx[k][i] = ru[k][i] = ra[k][i] = make_uint4(0u, 0u, 0u, 0u);
        if (whole) {
          rx[k][i] = reinterpret_cast<const uint4 *>(x + e0)[i];
          if (up) ru[k][i] = reinterpret_cast<const uint4 *>(up + e0)[i];
          if (add) ra[k][i] = reinterpret_cast<const uint4 *>(add + e0)[i];
        }
      }
    }
    SEQK_UNROLL
    for (int k = 0; k < kVecsPerTrip; ++k) {
      const int64_t e0 = (c + k * threads) * W;
      const int64_t room = p.n - e0;
      if (room <= 0) continue;
      float v[W], u[W], a[W];
      unpack_chunk<T, W>(rx[k], v);
      unpack_chunk<T, W>(ru[k], u);
      unpack_chunk<T, W>(ra[k], a);
      if (room < W) {
        SEQK_UNROLL
        for (int e = 0; e < W; ++e)
          if (e < room) {
            v[e] = to_float(x[e0 + e]);
            if (up) u[e] = to_float(up[e0 + e]);
            if (add) a[e] = to_float(add[e0 + e]);
          }
      }
      SEQK_UNROLL
      for (int e = 0; e < W; ++e) {
        v[e] = activate(p.act, v[e]);
        if (up) v[e] *= u[e];
        if (add) v[e] += a[e];
      }
      store_masked<T, W>(y, e0, p.n, v);
    }
  }
}

bool contiguous_aligned(const seqk_k_activation_params *p) {
  const void *ptrs[SEQK_K_LAYOUT_TENSORS] = {p->x, p->up, p->y, p->add};
  if (p->layout.ndim > 1) return false;
  for (int t = 0; t < SEQK_K_LAYOUT_TENSORS; ++t) {
    if (!ptrs[t]) continue;
    if ((uintptr_t)ptrs[t] % 16 != 0) return false;
    if (p->layout.ndim == 1 && p->layout.stride[t][0] != 1) return false;
  }
  return true;
}

}   // namespace

extern "C" cudaError_t seqk_k_activation(const seqk_k_activation_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int W = 16 / (int)sizeof(T);
    if (contiguous_aligned(p)) {
      const int64_t chunks = (p->n + W - 1) / W;
      e = seqk_kernels::launch_checked(
          dim3(seqk_kernels::grid_blocks(chunks, (int64_t)kThreads * kVecsPerTrip)), dim3(kThreads),
          0, stream, activation_vec_kernel<T, W>, *p);
    } else {
      e = seqk_kernels::launch_checked(dim3(seqk_kernels::grid_blocks(p->n, kThreads)),
                                       dim3(kThreads), 0, stream, activation_strided_kernel<T>, *p);
    }
  });
  return e;
}
