/*
 * common.cuh - what the kernel sources share on the host side of a launch: the element-type
 * switch, the grid limits and sizes, and the launch helpers every launcher returns through.
 * (Element conversions: convert.cuh; warp and tensor-core primitives: primitives.cuh.)
 */
#ifndef SEQK_KERNELS_COMMON_CUH
#define SEQK_KERNELS_COMMON_CUH

#include "convert.cuh"
#include "cuda_compat.cuh"
#include "launchers.h"

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

/* The hardware's grid limits: x up to 2^31 - 1 blocks, y and z up to 65535. */
constexpr int64_t kMaxGridX = 0x7fffffff;
constexpr int64_t kMaxGridYZ = 65535;

/* Blocks for a grid-stride loop over `items` work items, `per_block` a block: enough to fill any
   current GPU many times over (an H100 holds 132 SMs x 8 blocks of 256 threads; 4096 blocks are
   ~4 waves of them) without a launch as wide as a huge tensor. Every kernel whose grid is sized
   here loops over what the grid does not cover. */
constexpr int64_t kMaxGridStrideBlocks = 4096;
inline unsigned grid_blocks(int64_t items, int64_t per_block) {
  int64_t b = (items + per_block - 1) / per_block;
  if (b < 1) b = 1;
  return (unsigned)(b < kMaxGridStrideBlocks ? b : kMaxGridStrideBlocks);
}

/* Deferred device checks (launchers.h): the word of an error at position pos with its value
   (pos capped at SEQK_K_CHECK_POS_MAX), and a waiting check's own word set to "no error" before
   its kernel runs (reset != 0; the context's deferred word keeps what it holds). */
__device__ __forceinline__ unsigned long long check_word(int64_t pos, int64_t value) {
  const unsigned long long at = (unsigned long long)pos < SEQK_K_CHECK_POS_MAX
                                    ? (unsigned long long)pos
                                    : SEQK_K_CHECK_POS_MAX;
  return (at << 32) | (uint32_t)(int32_t)value;
}
inline cudaError_t reset_check_word(unsigned long long *word, int reset, cudaStream_t stream) {
  return reset ? cudaMemsetAsync(word, 0xFF, sizeof *word, stream) : cudaSuccess;
}

/* Dynamic shared memory above the 48 KB every device grants needs an opt-in per kernel. */
constexpr size_t kDefaultSmemLimit = 48 * 1024;
template <typename... P>
inline cudaError_t allow_smem(void (*kernel)(P...), size_t smem) {
  if (smem <= kDefaultSmemLimit) return cudaSuccess;
  return cudaFuncSetAttribute((const void *)kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              (int)smem);
}

/* Every launcher starts here: an earlier, unrelated (non-sticky) error must not be blamed on
   this launch. */
inline void begin_launch() { (void)cudaGetLastError(); }

/* launch() with the shared-memory opt-in first; the launch's error (or the opt-in's). */
template <typename... P, typename... A>
inline cudaError_t launch_checked(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                  void (*kernel)(P...), A &&...args) {
  const cudaError_t e = allow_smem(kernel, smem);
  if (e != cudaSuccess) return e;
  launch(grid, block, smem, stream, kernel, std::forward<A>(args)...);
  return cudaGetLastError();
}

/* The same as a cooperative launch (grid_sync allowed in the kernel). */
template <typename... P, typename... A>
inline cudaError_t launch_cooperative_checked(dim3 grid, dim3 block, size_t smem,
                                              cudaStream_t stream, void (*kernel)(P...),
                                              A &&...args) {
  const cudaError_t e = allow_smem(kernel, smem);
  if (e != cudaSuccess) return e;
  launch_cooperative(grid, block, smem, stream, kernel, std::forward<A>(args)...);
  return cudaGetLastError();
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_COMMON_CUH */
