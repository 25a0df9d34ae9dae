/*
 * rotary.cuh - the rotation of one pair of a head vector by rotary position embeddings (seqk.h,
 * seqk_rotary), shared by the rotary kernel (rotary.cu) and the KV-cache append that rotates keys
 * on the way in (kv_cache.cu). The angle follows seqk.h to the bit where it can:
 * inv_freq_i = 2^(-(2i / rotary_dim) * log2 theta) in double (the host passes log2 theta), rounded
 * to fp32, times fp32(pos) in one fp32 multiply, as torch forms them. Its sine and cosine: the fp32
 * angle, exact in double, is turned into half-turns (one double multiply by 1/pi, relative error
 * ~1e-16, i.e. 3e-12 rad at an angle of 10^5) and sincospi reduces those exactly. sincosf would do
 * as well but its reduction of large arguments keeps a 28-byte array in local memory, which this
 * build refuses (-warn-lmem-usage), and the __sinf intrinsics lose the angle at long context. The
 * CPU reference (host/ref_rotary.c) forms the same fp32 angle, so only the sin/cos rounding and the
 * final fp32 products differ.
 */
#ifndef SEQK_KERNELS_ROTARY_CUH
#define SEQK_KERNELS_ROTARY_CUH

#include "cuda_compat.cuh"
#include "convert.cuh"

#include <math.h>

namespace seqk_kernels {

/* The element offsets (in units of the head dim's stride) of pair i. */
__device__ __forceinline__ void rotary_pair(int64_t i, int64_t rotary_dim, int neox, int64_t *ia,
                                            int64_t *ib) {
  *ia = neox ? i : 2 * i;
  *ib = neox ? i + rotary_dim / 2 : 2 * i + 1;
}

/* sin and cos of pair i's angle at position pos. */
__device__ __forceinline__ void rotary_sincos(int32_t pos, int64_t i, int64_t rotary_dim,
                                              double log2_theta, float *sn, float *cs) {
  constexpr double kInvPi = 0.31830988618379067154;
  const float inv_freq = (float)exp2(-((double)(2 * i) / (double)rotary_dim) * log2_theta);
  const float angle = (float)pos * inv_freq;
  double sd, cd;
  sincospi((double)angle * kInvPi, &sd, &cd);
  *sn = (float)sd;
  *cs = (float)cd;
}

/* dst[ia], dst[ib] = src's pair rotated (dst may be src: in place). Strides in elements. */
template <typename T>
__device__ __forceinline__ void rotate_pair(const T *src, int64_t src_stride, T *dst,
                                            int64_t dst_stride, int32_t pos, int64_t i,
                                            int64_t rotary_dim, int neox, double log2_theta) {
  int64_t ia, ib;
  rotary_pair(i, rotary_dim, neox, &ia, &ib);
  float sn, cs;
  rotary_sincos(pos, i, rotary_dim, log2_theta, &sn, &cs);
  const float a = to_float(src[ia * src_stride]), c = to_float(src[ib * src_stride]);
  dst[ia * dst_stride] = from_float<T>(a * cs - c * sn);
  dst[ib * dst_stride] = from_float<T>(c * cs + a * sn);
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_ROTARY_CUH */
