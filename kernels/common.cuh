/*
 * common.cuh - what the kernel files share on the host side of a launch: the element-type switch
 * and the launch check. (Element conversions: convert.cuh.)
 */
#ifndef SEQK_KERNELS_COMMON_CUH
#define SEQK_KERNELS_COMMON_CUH

#include "convert.cuh"
#include "cuda_compat.cuh"
#include "internal.h"

namespace seqk_kernels {

/* Calls f(T{}) with T the element type of a float dtype (F32/F16/BF16). */
template <typename F>
void by_dtype(seqk_dtype dt, F &&f) {
  switch (dt) {
    case SEQK_DTYPE_F16: f(__half{}); break;
    case SEQK_DTYPE_BF16: f(__nv_bfloat16{}); break;
    default: f(float{}); break;
  }
}

/* Blocks for a grid-stride loop over `items` work items, `per_block` a block: enough to fill any
   current GPU several times over (an H100 holds 132 SMs x 8 blocks of 256) without a launch
   as wide as a huge tensor. */
inline unsigned grid_blocks(int64_t items, int per_block) {
  const int64_t max_blocks = 4096;
  int64_t b = (items + per_block - 1) / per_block;
  if (b < 1) b = 1;
  return (unsigned)(b < max_blocks ? b : max_blocks);
}

/* Right after a launch: a launch error (bad configuration, too many resources) as DEVICE_ERROR
   naming the op and the kernel. Errors while the kernel runs surface at the next synchronising
   call, as with every CUDA launch. */
inline seqk_status launch_status(seqk_context_t ctx, const char *op, const char *kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR, "%s: %s kernel launch failed: %s", op, kernel,
                      cudaGetErrorString(err));
  return SEQK_STATUS_SUCCESS;
}

}  // namespace seqk_kernels

#endif /* SEQK_KERNELS_COMMON_CUH */
