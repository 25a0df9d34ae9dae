/*
 * flash_attention_bf16.cu - the tensor-core fused attention kernel (flash_attention.cuh) for BF16
 * tensors, one instantiation per listed head dim (tc_head_dims). f16 and bf16 live in separate
 * sources so the two sets compile in parallel and each translation unit stays bounded.
 */
#include "flash_attention.cuh"

namespace seqk_flash {

cudaError_t launch_tc_bf16(const params &p, int dp, cudaStream_t stream) {
  return launch_tc_dim<__nv_bfloat16, false>(p, dp, stream);
}

}   // namespace seqk_flash
