/*
 * rotary.cu - seqk_rotary on CUDA tensors: rotary position embeddings in place on q and k.
 * One thread per (b, s, head, pair): it reads the pair's two elements, turns them and writes
 * them back (no other thread touches them, so in place needs no ordering); the angle and the
 * rotation are rotary.cuh's. Memory-bound on any layout; the double exp2 and sincospi per thread
 * are a few dozen FP64 operations.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "rotary.cuh"

namespace {

constexpr int kThreads = 256;

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
    seqk_kernels::rotate_pair<T>(v, st[3], v, st[3], pos, i, p.rotary_dim, p.neox, p.log2_theta);
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
