/*
 * flash_attention_bf16_paged.cu - the tensor-core fused attention kernel (flash_attention.cuh) for
 * BF16 tensors whose K and V rows come through a page table (seqk_attention_kv_cache over a paged
 * cache), one instantiation per listed head dim. Apart from the contiguous instantiations
 * (flash_attention_bf16.cu) so each translation unit stays bounded and they compile in parallel.
 */
#include "flash_attention.cuh"

namespace seqk_flash {

cudaError_t launch_tc_bf16_paged(const params &p, int dp, cudaStream_t stream) {
  return launch_tc_dim<__nv_bfloat16, true>(p, dp, stream);
}

}   // namespace seqk_flash
