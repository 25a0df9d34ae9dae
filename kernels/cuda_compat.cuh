/*
 * cuda_compat.cuh - the one header every kernel source (kernels/NAME.cu) includes first. It lets the same kernel
 * source build with nvcc (the real library) and with the host C++ compiler against the emulator
 * (the seqk_emu library; see emu/README.md for the rules kernels follow).
 *
 *   launch(grid, block, smem, stream, kernel, args...)   instead of kernel<<<...>>>(args...)
 *   launch_cooperative(...)                              cooperative launch (grid_sync allowed)
 *   SMEM_ARRAY(T, name, N) / SMEM_ARRAY2(T, name, R, C)  static shared arrays (16-byte aligned)
 *   DYN_SMEM(T, name)                                    T *name = the dynamic shared memory
 *   SEQK_SITE_DECL / SEQK_SITE_FWD                       source locations for emulator reports
 *
 * Warp, tensor-core and async-copy primitives are in primitives.cuh.
 */
#ifndef SEQK_KERNELS_CUDA_COMPAT_CUH
#define SEQK_KERNELS_CUDA_COMPAT_CUH

#if defined(__CUDACC__)
/* ---- nvcc ----------------------------------------------------------------------------------- */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cooperative_groups.h>
#include <stdint.h>
#include <tuple>
#include <utility>

template <typename... P, typename... A>
inline void launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, void (*kernel)(P...),
                   A &&...args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
}

template <typename... P, size_t... I>
inline void seqk_launch_cooperative_(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                     void (*kernel)(P...), std::tuple<P...> &args,
                                     std::index_sequence<I...>) {
  void *argv[sizeof...(P) > 0 ? sizeof...(P) : 1] = {(void *)&std::get<I>(args)...};
  (void)cudaLaunchCooperativeKernel((const void *)kernel, grid, block, argv, smem, stream);
}
template <typename... P, typename... A>
inline void launch_cooperative(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               void (*kernel)(P...), A &&...args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  std::tuple<P...> t(std::forward<A>(args)...);
  seqk_launch_cooperative_(grid, block, smem, stream, kernel, t, std::index_sequence_for<P...>{});
}

#define SMEM_ARRAY(T, name, N)     __shared__ __align__(16) T name[N]
#define SMEM_ARRAY2(T, name, R, C) __shared__ __align__(16) T name[R][C]
#define DYN_SMEM(T, name)                                                                          \
  extern __shared__ __align__(16) unsigned char seqk_dyn_smem_##name[];                            \
  T *name = reinterpret_cast<T *>(seqk_dyn_smem_##name)

#define SEQK_SITE_DECL
#define SEQK_SITE_FWD

/* Every block of a cooperative launch waits here until all have arrived. */
__device__ __forceinline__ void grid_sync() { cooperative_groups::this_grid().sync(); }

#else
/* ---- the emulator ---------------------------------------------------------------------------- */
#include "seqk_emu/emu.h"

/* The host compiler's spelling of nvcc's __noinline__ (a rare path kept out of its caller). */
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif

#define SEQK_SITE_DECL                                                                             \
  , const char *seqk_file_ = __builtin_FILE(), int seqk_line_ = __builtin_LINE()
#define SEQK_SITE_FWD , seqk_file_, seqk_line_

inline void grid_sync(const char *seqk_file_ = __builtin_FILE(),
                      int seqk_line_ = __builtin_LINE()) {
  seqk_emu::barrier(seqk_emu::BAR_GRID, 1, seqk_emu::site{seqk_file_, seqk_line_});
}
#endif

/* #pragma unroll where nvcc compiles; the emulated build's host compiler has no such pragma. Loops
   over fixed-size register arrays must unroll for the arrays to stay in registers. */
#if defined(__CUDACC__)
#define SEQK_UNROLL _Pragma("unroll")
#else
#define SEQK_UNROLL
#endif

#endif /* SEQK_KERNELS_CUDA_COMPAT_CUH */
