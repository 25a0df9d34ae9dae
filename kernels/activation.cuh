/*
 * activation.cuh - the pointwise activations of seqk.h in fp32, shared by every kernel that
 * applies one (activation.cu; the fused epilogues). The CPU reference computes the same
 * formulas in double (host/ref_activation.c).
 */
#ifndef SEQK_KERNELS_ACTIVATION_CUH
#define SEQK_KERNELS_ACTIVATION_CUH

#include "cuda_compat.cuh"
#include "seqk.h"

#include <math.h>

namespace seqk_kernels {

__device__ __forceinline__ float activate(seqk_activation act, float v) {
  switch (act) {
    /* v < 0 is false for NaN: NaN passes through, as torch.relu. */
    case SEQK_ACTIVATION_RELU: return v < 0.0f ? 0.0f : v;
    case SEQK_ACTIVATION_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case SEQK_ACTIVATION_GELU_TANH: {
      const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.0f + tanhf(u));
    }
    case SEQK_ACTIVATION_SILU: return v / (1.0f + expf(-v));
    default: return v;
  }
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_ACTIVATION_CUH */
