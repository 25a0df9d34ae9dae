/*
 * packed_offsets.cu - seqk_attention_packed's check of its cumulative offsets
 * (host/cuda_attention_packed.c): each sequence decided once, on the device, into the first rows
 * and lengths the fused kernels then read (flash_attention.cuh: q_rows_off, batch_lens), so a bad
 * offset never sends a kernel outside the packed tensors and no host round trip is needed.
 */
#include "cuda_compat.cuh"
#include "common.cuh"

namespace {

/* Sequence b's rows [cu[b], cu[b + 1]) when 0 <= cu[b] <= cu[b + 1] <= total and the length is
   within max_len: its first row and length; else false. */
__device__ __forceinline__ bool span_of(const int32_t *cu, int64_t stride, int64_t b, int64_t total,
                                        int64_t max_len, int32_t *first, int32_t *len) {
  const int64_t lo = cu[b * stride], hi = cu[(b + 1) * stride];
  if (lo < 0 || hi < lo || hi > total || hi - lo > max_len) return false;
  *first = (int32_t)lo;
  *len = (int32_t)(hi - lo);
  return true;
}

__global__ void __launch_bounds__(128)
    packed_offsets_kernel(seqk_k_packed_offsets_params p, unsigned long long *bad) {
  for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < p.B;
       b += (int64_t)gridDim.x * blockDim.x) {
    int32_t q0 = 0, nq = 0, k0 = 0, nk = 0;
    const bool q_ok = span_of(p.cu_q, p.q_stride, b, p.Tq, p.max_q, &q0, &nq);
    const bool k_ok = span_of(p.cu_k, p.k_stride, b, p.Tk, p.max_k, &k0, &nk);
    if (!q_ok || !k_ok) {
      q0 = nq = k0 = nk = 0;
      atomicMin(bad, seqk_kernels::check_word(b, q_ok ? 1 : 0));
    }
    p.q_start[b] = q0;
    p.q_len[b] = nq;
    p.k_start[b] = k0;
    p.k_len[b] = nk;
  }
}

}   // namespace

extern "C" cudaError_t seqk_k_packed_offsets(const seqk_k_packed_offsets_params *p,
                                             unsigned long long *bad, int reset_bad,
                                             cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const cudaError_t e = seqk_kernels::reset_check_word(bad, reset_bad, stream);
  if (e != cudaSuccess) return e;
  if (p->B == 0) return cudaSuccess;
  launch(dim3(seqk_kernels::grid_blocks(p->B, 128)), dim3(128), 0, stream, packed_offsets_kernel,
         *p, bad);
  return cudaGetLastError();
}
