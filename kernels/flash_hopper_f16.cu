/*
 * flash_hopper_f16.cu - the Hopper kernel (flash_hopper.cuh) for F16 tensors, one instantiation
 * per head dim in hp_head_dims; f16 and bf16 in separate sources so they compile in parallel.
 */
#include "flash_hopper.cuh"

namespace seqk_flash {

cudaError_t launch_hopper_f16(const hopper_args &a, int dp, cudaStream_t stream) {
  return launch_hopper_dim<__half>(a, dp, stream);
}

}   // namespace seqk_flash
