/*
 * convert.cuh - element conversions every kernel shares. Each f32/f16/bf16 value is exact in
 * float, so loading through float and storing with round-to-nearest-even rounds once, as the CPU
 * reference does.
 */
#ifndef SEQK_KERNELS_CONVERT_CUH
#define SEQK_KERNELS_CONVERT_CUH

#include "cuda_compat.cuh"

namespace seqk_kernels {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_CONVERT_CUH */
