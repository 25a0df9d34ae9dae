/*
 * fill_rows.cu - y[..., j] = bias[j] on every row, or one value everywhere: the bias broadcast a
 * linear layer's beta = 1 GEMM adds to, zeroed states and buffers, and the +inf lse of empty
 * attention rows.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

namespace {

using seqk_kernels::from_float;

constexpr int kThreads = 256;

/* One thread per element, consecutive threads on consecutive columns: coalesced stores for a
   row-major y, and the bias row is read from L1/L2 by every row. Memory-bound; the index split is
   a few integer ops per 2-4 bytes stored. */
template <typename T>
__global__ void fill_rows_kernel(T *__restrict__ y, const T *__restrict__ bias,
                                 seqk_k_fill_params g) {
  const T fill = from_float<T>(g.value);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += step) {
    const int64_t col = i % g.cols;
    int64_t rest = i / g.cols, off = col * g.col_stride;
    /* Unrolled with constant indices so the geometry stays in registers (a loop up to nlead
       would index the parameter arrays dynamically, through local memory). */
    SEQK_UNROLL
    for (int d = SEQK_K_LEAD_DIMS - 1; d >= 0; --d)
      if (d < g.nlead) {
        off += (rest % g.shape[d]) * g.stride[d];
        rest /= g.shape[d];
      }
    y[off] = bias ? bias[col * g.bias_stride] : fill;
  }
}

}   // namespace

extern "C" cudaError_t seqk_k_fill_rows(const seqk_k_fill_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
           fill_rows_kernel<T>, static_cast<T *>(p->y), static_cast<const T *>(p->bias), *p);
  });
  return cudaGetLastError();
}
