/*
 * rotary.cu - seqk_rotary on CUDA tensors: rotary position embeddings in place on q and k.
 * One thread per (b, s, head, pair): it reads the pair's two elements, turns them and writes
 * them back (no other thread touches them, so in place needs no ordering). The angle follows
 * seqk.h to the bit where it can: inv_freq_i = 2^(-(2i / rotary_dim) * log2 theta) in double
 * (the host passes log2 theta), rounded to fp32, times fp32(pos) in one fp32 multiply, as torch
 * forms them. Its sine and cosine: the fp32 angle, exact in double, is turned into half-turns
 * (one double multiply by 1/pi, relative error ~1e-16, i.e. 3e-12 rad at an angle of 10^5) and
 * sincospi reduces those exactly. sincosf would do as well but its reduction of large arguments
 * keeps a 28-byte array in local memory, which this build refuses (-warn-lmem-usage), and the
 * __sinf intrinsics lose the angle at long context. The CPU reference forms the same fp32 angle,
 * so only the sin/cos rounding and the final fp32 products differ.
 * Memory-bound on any layout; the double exp2 per thread is a few dozen FP64 operations.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

#include <math.h>

namespace {

using seqk_kernels::from_float;
using seqk_kernels::to_float;

constexpr int kThreads = 256;
constexpr double kInvPi = 0.31830988618379067154;

template <typename T>
__global__ void rotary_kernel(seqk_k_rotary_params p) {
  const int64_t half = p.rotary_dim / 2;
  const int64_t heads = p.H + (p.k ? p.Hk : 0);
  const int64_t total = p.B * p.S * heads * half;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t i = idx % half, rest = idx / half;
    const int64_t h = rest % heads, bs = rest / heads;
    const int64_t s = bs % p.S, b = bs / p.S;
    const bool on_q = h < p.H;
    const int64_t *st = on_q ? p.q_stride : p.k_stride;
    T *v =
        static_cast<T *>(on_q ? p.q : p.k) + b * st[0] + s * st[1] + (on_q ? h : h - p.H) * st[2];
    const int32_t pos =
        p.positions ? p.positions[b * p.pos_stride[0] + s * p.pos_stride[1]] : (int32_t)s;
    const float inv_freq = (float)exp2(-((double)(2 * i) / (double)p.rotary_dim) * p.log2_theta);
    const float angle = (float)pos * inv_freq;
    double sd, cd;
    sincospi((double)angle * kInvPi, &sd, &cd);
    const float sn = (float)sd, cs = (float)cd;
    const int64_t ia = p.neox ? i : 2 * i, ib = p.neox ? i + half : 2 * i + 1;
    const float a = to_float(v[ia * st[3]]), c = to_float(v[ib * st[3]]);
    v[ia * st[3]] = from_float<T>(a * cs - c * sn);
    v[ib * st[3]] = from_float<T>(c * cs + a * sn);
  }
}

}   // namespace

extern "C" cudaError_t seqk_k_rotary(const seqk_k_rotary_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t heads = p->H + (p->k ? p->Hk : 0);
  const int64_t total = p->B * p->S * heads * (p->rotary_dim / 2);
  if (total == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    e = seqk_kernels::launch_checked(dim3(seqk_kernels::grid_blocks(total, kThreads)),
                                     dim3(kThreads), 0, stream, rotary_kernel<T>, *p);
  });
  return e;
}
