/*
 * visible_keys.cuh - the keys query row i of batch b sees on the unfused path: lengths clamped to
 * [0, Sq] and [0, Sk], rows past the query length see nothing, and the key window (attention_rules.h:
 * left / right extents around the aligned position i + sk - sq, -1 unbounded; causal is right 0)
 * bounds the rest. Keys [begin, end); end >= begin, never negative; `at` is the aligned position.
 * Used by the score modifier and the repair after P v (attention_masks.cu). The softmax over
 * scores (softmax.cu, attention_rows::row) spells the end inline: calling this instead gave its
 * two-pass kernel 40 registers instead of 32 on sm_90 (ptxas -v, CUDA 13.0, 2026-12-02), 6 blocks
 * of 256 per SM instead of 8. Change both together.
 */
#ifndef SEQK_KERNELS_VISIBLE_KEYS_CUH
#define SEQK_KERNELS_VISIBLE_KEYS_CUH

#include "cuda_compat.cuh"

#include <stdint.h>

namespace seqk_kernels {

struct key_span {
  int64_t begin, end;
  int64_t at; /* the aligned position i + sk - sq (the ALiBi term's centre) */
};

__device__ __forceinline__ key_span visible_keys(int64_t i, int64_t b, int64_t Sq, int64_t Sk,
                                                 const int32_t *seqlens_q, const int32_t *seqlens_k,
                                                 int32_t left, int32_t right) {
  int64_t sq = Sq, sk = Sk;
  if (seqlens_q) {
    sq = seqlens_q[b];
    sq = sq < 0 ? 0 : sq > Sq ? Sq : sq;
  }
  if (seqlens_k) {
    sk = seqlens_k[b];
    sk = sk < 0 ? 0 : sk > Sk ? Sk : sk;
  }
  const int64_t a = i + sk - sq;
  key_span r;
  r.at = a;
  r.end = i < sq ? sk : 0;
  if (right >= 0 && r.end > a + right + 1) r.end = a + right + 1;
  if (r.end < 0) r.end = 0;
  r.begin = left >= 0 && a - left > 0 ? a - left : 0;
  if (r.begin > r.end) r.begin = r.end;
  return r;
}

}   // namespace seqk_kernels

#endif
