/*
 * flash_attention_f16_paged.cu - the tensor-core fused attention kernel (flash_attention.cuh) for
 * F16 tensors whose K and V rows come through a page table (seqk_attention_kv_cache over a paged
 * cache), one instantiation per listed head dim. Apart from the contiguous instantiations
 * (flash_attention_f16.cu) so each translation unit stays bounded and they compile in parallel.
 */
#include "flash_attention.cuh"

namespace seqk_flash {

cudaError_t launch_tc_f16_paged(const params &p, int dp, cudaStream_t stream) {
  return launch_tc_dim<__half, true>(p, dp, stream);
}

}   // namespace seqk_flash
