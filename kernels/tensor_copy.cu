/*
 * tensor_copy.cu - strided copy with dtype conversion between two CUDA tensors (the CUDA->CUDA
 * path of seqk_tensor_copy). One thread per element in a grid-stride loop; the row-major linear
 * index is split into a multi-index once per element, in 64-bit arithmetic, so any shape and any
 * non-negative strides work.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

#include "internal.h"
#include "launchers.h"

namespace {

struct copy_geometry {
  int32_t ndim;
  int64_t shape[SEQK_MAX_DIMS];
  int64_t src_stride[SEQK_MAX_DIMS];
  int64_t dst_stride[SEQK_MAX_DIMS];
};

using seqk_kernels::from_float;
using seqk_kernels::to_float;

template <typename S, typename D>
__device__ __forceinline__ D convert(S v) { return from_float<D>(to_float(v)); }
template <>
__device__ __forceinline__ int32_t convert<int32_t, int32_t>(int32_t v) { return v; }

template <typename S, typename D>
__global__ void tensor_copy_kernel(D *__restrict__ dst, const S *__restrict__ src,
                                   copy_geometry g, int64_t n) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t rest = i, s_off = 0, d_off = 0;
    for (int d = g.ndim - 1; d >= 0; --d) {
      int64_t idx = rest % g.shape[d];
      rest /= g.shape[d];
      s_off += idx * g.src_stride[d];
      d_off += idx * g.dst_stride[d];
    }
    dst[d_off] = convert<S, D>(src[s_off]);
  }
}

template <typename S, typename D>
void launch_copy(seqk_context_t ctx, const seqk_tensor *dst, const seqk_tensor *src,
                 const copy_geometry &g, int64_t n) {
  const int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 4096) blocks = 4096;   /* the grid-stride loop covers the rest */
  launch(dim3((unsigned)blocks), dim3(threads), 0, (cudaStream_t)ctx->stream,
         tensor_copy_kernel<S, D>, static_cast<D *>(dst->data),
         static_cast<const S *>(src->data), g, n);
}

template <typename S>
void dispatch_dst(seqk_context_t ctx, const seqk_tensor *dst, const seqk_tensor *src,
                  const copy_geometry &g, int64_t n) {
  switch (dst->dtype) {
    case SEQK_DTYPE_F32: launch_copy<S, float>(ctx, dst, src, g, n); break;
    case SEQK_DTYPE_F16: launch_copy<S, __half>(ctx, dst, src, g, n); break;
    case SEQK_DTYPE_BF16: launch_copy<S, __nv_bfloat16>(ctx, dst, src, g, n); break;
    default: break;
  }
}

}  // namespace

extern "C" seqk_status seqk__cuda_tensor_copy(seqk_context_t ctx, const seqk_tensor *dst,
                                              const seqk_tensor *src) {
  copy_geometry g;
  int64_t n = 1;
  g.ndim = 0;
  /* Size-1 dimensions add nothing to any offset: drop them. */
  for (int32_t d = 0; d < src->ndim; ++d) {
    n *= src->shape[d];
    if (src->shape[d] == 1) continue;
    g.shape[g.ndim] = src->shape[d];
    g.src_stride[g.ndim] = src->stride[d];
    g.dst_stride[g.ndim] = dst->stride[d];
    ++g.ndim;
  }
  if (n == 0) return SEQK_STATUS_SUCCESS;
  if ((src->dtype == SEQK_DTYPE_I32) != (dst->dtype == SEQK_DTYPE_I32))
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "tensor_copy: I32 can only be copied to I32 (validation missed it)");
  (void)cudaGetLastError();   /* an earlier, unrelated error must not be blamed on this launch */
  switch (src->dtype) {
    case SEQK_DTYPE_F32: dispatch_dst<float>(ctx, dst, src, g, n); break;
    case SEQK_DTYPE_F16: dispatch_dst<__half>(ctx, dst, src, g, n); break;
    case SEQK_DTYPE_BF16: dispatch_dst<__nv_bfloat16>(ctx, dst, src, g, n); break;
    case SEQK_DTYPE_I32: launch_copy<int32_t, int32_t>(ctx, dst, src, g, n); break;
  }
  return seqk_kernels::launch_status(ctx, "tensor_copy", "copy");
}
