/*
 * visible_keys.cuh - the keys query row i of batch b sees on the unfused path: lengths clamped to
 * [0, Sq] and [0, Sk], rows past the query length see nothing, causal aligned bottom-right per
 * batch (query i sees keys j <= i + sk - sq). Keys 0 .. visible-1; never negative.
 * Used by the repair after P v (attention_masks.cu). The softmax over scores (softmax.cu,
 * attention_rows::row) spells the same rule inline: calling this instead gave its two-pass
 * kernel 40 registers instead of 32 on sm_90 (ptxas -v, CUDA 13.0, 2026-12-02), 6 blocks of 256
 * per SM instead of 8. Change both together.
 */
#ifndef SEQK_KERNELS_VISIBLE_KEYS_CUH
#define SEQK_KERNELS_VISIBLE_KEYS_CUH

#include "cuda_compat.cuh"

#include <stdint.h>

namespace seqk_kernels {

__device__ __forceinline__ int64_t visible_keys(int64_t i, int64_t b, int64_t Sq, int64_t Sk,
                                                const int32_t *seqlens_q, const int32_t *seqlens_k,
                                                bool causal) {
  int64_t sq = Sq, sk = Sk;
  if (seqlens_q) {
    sq = seqlens_q[b];
    sq = sq < 0 ? 0 : sq > Sq ? Sq : sq;
  }
  if (seqlens_k) {
    sk = seqlens_k[b];
    sk = sk < 0 ? 0 : sk > Sk ? Sk : sk;
  }
  int64_t visible = i < sq ? sk : 0;
  if (causal && visible > i + sk - sq + 1) visible = i + sk - sq + 1;
  return visible > 0 ? visible : 0;
}

}   // namespace seqk_kernels

#endif
