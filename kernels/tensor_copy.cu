/*
 * tensor_copy.cu - strided copy with dtype conversion between two CUDA tensors (the CUDA->CUDA
 * path of seqk_tensor_copy, and every contiguous staging copy of the host's orchestration). One
 * thread per element in a grid-stride loop; the row-major linear index is split into a
 * multi-index once per element, in 64-bit arithmetic, so any shape and any non-negative strides
 * work.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

namespace {

using seqk_kernels::from_float;
using seqk_kernels::to_float;

constexpr int kThreads = 256;

template <typename S, typename D>
__device__ __forceinline__ D convert(S v) {
  return from_float<D>(to_float(v));
}
/* One dtype to itself moves the bits (NaN payloads kept, as the CPU copy does). */
template <>
__device__ __forceinline__ int32_t convert<int32_t, int32_t>(int32_t v) {
  return v;
}
template <>
__device__ __forceinline__ __half convert<__half, __half>(__half v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 convert<__nv_bfloat16, __nv_bfloat16>(__nv_bfloat16 v) {
  return v;
}

template <typename S, typename D>
__global__ void tensor_copy_kernel(D *__restrict__ dst, const S *__restrict__ src,
                                   seqk_k_copy_params g) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += step) {
    int64_t rest = i, s_off = 0, d_off = 0;
    for (int d = g.ndim - 1; d >= 0; --d) {
      const int64_t idx = rest % g.shape[d];
      rest /= g.shape[d];
      s_off += idx * g.src_stride[d];
      d_off += idx * g.dst_stride[d];
    }
    dst[d_off] = convert<S, D>(src[s_off]);
  }
}

template <typename S, typename D>
void launch_copy(const seqk_k_copy_params *p, cudaStream_t stream) {
  launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
         tensor_copy_kernel<S, D>, static_cast<D *>(p->dst), static_cast<const S *>(p->src), *p);
}

}   // namespace

extern "C" cudaError_t seqk_k_tensor_copy(const seqk_k_copy_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  if ((p->src_dtype == SEQK_DTYPE_I32) != (p->dst_dtype == SEQK_DTYPE_I32))
    return cudaErrorInvalidValue; /* I32 moves only to I32 */
  if (p->src_dtype == SEQK_DTYPE_I32) {
    launch_copy<int32_t, int32_t>(p, stream);
  } else {
    seqk_kernels::by_dtype(p->src_dtype, [&](auto s) {
      seqk_kernels::by_dtype(p->dst_dtype,
                             [&](auto d) { launch_copy<decltype(s), decltype(d)>(p, stream); });
    });
  }
  return cudaGetLastError();
}
