/*
 * flash_attention_f16.cu - the tensor-core fused attention kernel (flash_attention.cuh) for
 * F16 tensors, one instantiation per padded head dim. f16 and bf16 live in separate sources so
 * the two sets compile in parallel and each translation unit stays bounded.
 */
#include "flash_attention.cuh"

namespace seqk_flash {

cudaError_t launch_tc_f16(const params &p, int dp, cudaStream_t stream) {
  switch (dp) {
    case 32: return launch_tc<__half, 32>(p, stream);
    case 64: return launch_tc<__half, 64>(p, stream);
    case 96: return launch_tc<__half, 96>(p, stream);
    case 128: return launch_tc<__half, 128>(p, stream);
    case 160: return launch_tc<__half, 160>(p, stream);
    case 192: return launch_tc<__half, 192>(p, stream);
    case 256: return launch_tc<__half, 256>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace seqk_flash
