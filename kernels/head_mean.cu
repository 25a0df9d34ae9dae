/*
 * head_mean.cu - mha_forward's attention weights: P [B,H,Sq,Sk] averaged over the heads into
 * [B,Sq,Sk], as nn.MultiheadAttention returns them with average_attn_weights.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

namespace {

using seqk_kernels::from_float;
using seqk_kernels::to_float;

constexpr int kThreads = 256;

/* attn[b,i,j] = mean_h p[b,h,i,j] in fp32. One thread per output element, consecutive threads on
   consecutive keys: each of the H loads per thread is a coalesced row segment of P. A GEMM with a
   ones vector would do the same reduction, but needs an extra buffer and an output that is one
   uniform row; this reads P once and writes attn once, which is all the op costs anyway. */
template <typename T>
__global__ void head_mean_kernel(const T *__restrict__ p, T *__restrict__ attn,
                                 seqk_k_head_mean_params g) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < g.n; idx += step) {
    const int64_t j = idx % g.Sk, t = idx / g.Sk;
    const int64_t i = t % g.Sq, b = t / g.Sq;
    const T *src = p + b * g.p_stride[0] + i * g.p_stride[2] + j * g.p_stride[3];
    float acc = 0.0f;
    for (int64_t h = 0; h < g.H; ++h) acc += to_float(src[h * g.p_stride[1]]);
    attn[b * g.attn_stride[0] + i * g.attn_stride[1] + j * g.attn_stride[2]] =
        from_float<T>(acc / (float)g.H);
  }
}

}   // namespace

extern "C" cudaError_t seqk_k_head_mean(const seqk_k_head_mean_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
           head_mean_kernel<T>, static_cast<const T *>(p->p), static_cast<T *>(p->attn), *p);
  });
  return cudaGetLastError();
}
