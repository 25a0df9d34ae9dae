/*
 * merge.cuh - merging attention results computed over disjoint key sets by their logsumexp:
 * seqk_attention_merge's math, used by its kernel (attention_merge.cu) and by the split-KV
 * combine of the fused kernels (flash_attention_simt.cu), so both follow one rule:
 *   - an lse of +inf or -inf marks an empty part: weight 0, its o never read;
 *   - the other parts weigh e_i = exp(lse_i - m) with m their largest lse (so nothing overflows
 *     and the largest weighs exactly 1), o = sum_i (e_i / sum e) o_i, lse = m + log(sum e);
 *   - no part with keys gives o = 0 and lse = +inf (the "no visible key" marker);
 *   - a NaN lse makes the row NaN.
 * Use: m = fold merge_max over the parts' lse (from -INFINITY); sum = fold part_weight(lse_i, m);
 * then each non-empty part's weight part_weight(lse_i, m) / sum and merged_lse(m, sum).
 * fp32 math; the CPU reference (host/ref_attention.c) does the same in double.
 */
#ifndef SEQK_KERNELS_MERGE_CUH
#define SEQK_KERNELS_MERGE_CUH

#include "cuda_compat.cuh"

#include <math.h>

namespace seqk_merge {

__device__ __forceinline__ bool empty_part(float lse) { return fabsf(lse) == INFINITY; }

/* The running maximum over non-empty parts (-INFINITY while there is none); the first non-empty
   part always sets it, so a NaN lse there sticks (and makes the weights NaN). */
__device__ __forceinline__ float merge_max(float m, float lse) {
  return empty_part(lse) ? m : (lse > m || m == -INFINITY ? lse : m);
}

/* A part's unnormalised weight relative to the maximum m: 0 for an empty part. */
__device__ __forceinline__ float part_weight(float lse, float m) {
  return empty_part(lse) ? 0.0f : expf(lse - m);
}

/* Whether any part had keys, given the folded maximum. */
__device__ __forceinline__ bool any_part(float m) { return m != -INFINITY; }

/* The merged row's lse from the maximum and the sum of the weights. */
__device__ __forceinline__ float merged_lse(float m, float sum) {
  return any_part(m) ? m + logf(sum) : INFINITY;
}

}   // namespace seqk_merge

#endif /* SEQK_KERNELS_MERGE_CUH */
