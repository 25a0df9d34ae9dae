/*
 * layout.cuh - element offsets of several tensors of one shape walked together (the
 * seqk_k_layout of launchers.h, merged on the host by seqk__merge_dims): the norms' rows, the
 * activations' elements.
 */
#ifndef SEQK_KERNELS_LAYOUT_CUH
#define SEQK_KERNELS_LAYOUT_CUH

#include "cuda_compat.cuh"
#include "launchers.h"

namespace seqk_kernels {

/* off[t] = the offset in tensor t of row-major index i of L's shape, t < N. Unrolled over the
   fixed maximum so every index into L is a constant (the kernel parameter stays in constant
   memory, no local copy); one merged dim, the contiguous case, costs no division. */
template <int N>
__device__ __forceinline__ void layout_offsets(const seqk_k_layout &L, int64_t i, int64_t *off) {
  SEQK_UNROLL
  for (int t = 0; t < N; ++t) off[t] = 0;
  SEQK_UNROLL
  for (int d = SEQK_MAX_DIMS - 1; d >= 0; --d) {
    if (d < L.ndim) {
      int64_t k = i;
      if (d > 0) {
        k = i % L.shape[d];
        i /= L.shape[d];
      }
      SEQK_UNROLL
      for (int t = 0; t < N; ++t) off[t] += k * L.stride[t][d];
    }
  }
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_LAYOUT_CUH */
