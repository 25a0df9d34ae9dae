/*
 * primitives_sm90.cuh - Hopper (sm_90a) warpgroup MMA primitives, dual-bodied like primitives.cuh:
 *   __CUDA_ARCH__ >= 900 with __CUDA_ARCH_FEAT_SM90_ALL (-arch=sm_90a)   inline PTX,
 *   other device targets                                                __trap() (never call),
 *   __CUDACC__ host pass                                                 empty,
 *   otherwise                                                            the emulator (emu/README.md).
 *
 * wgmma.mma_async.sync.aligned.m64nNk16.f32.{f16,bf16}.{f16,bf16}, N in {8,16,32,64,128,256}:
 *   D (64 x N, f32) = A (64 x 16) * B (16 x N) + (scale_d ? D : 0), issued by a whole warpgroup
 *   (4 consecutive warps, the first a multiple of 4; 128 threads), asynchronously.
 *   _ss: A and B from shared-memory matrix descriptors; _rs: A from registers, B from a descriptor.
 *   TransA / TransB (imm-trans-a/b): 0 K-major, 1 MN-major (M-major A, N-major B).
 *   imm-scale-a/b are fixed at 1 (no negation).
 *
 * Fragments (warp w of the warpgroup = warp index % 4, g = lane >> 2, t = lane & 3):
 *   A in registers (4 x b32, two 16-bit elements each, low half = lower column): warp w holds rows
 *     16w..16w+15 in the mma.m16n8k16 A layout: a0 (16w+g, 2t..2t+1) a1 (16w+g+8, 2t..)
 *     a2 (16w+g, 2t+8..) a3 (16w+g+8, 2t+8..).
 *   D (N/2 f32 per thread): d[4j + i] for column block j = 0..N/8-1:
 *     d[4j] (16w+g, 8j+2t)  d[4j+1] (16w+g, 8j+2t+1)  d[4j+2] (16w+g+8, 8j+2t)  d[4j+3] (16w+g+8, 8j+2t+1)
 *
 * Shared-memory operands (PTX ISA 9.7.15.5.1.2): made of 16-byte chunks of 8 consecutive elements
 * along the major dimension. With W = the swizzle width (16 bytes for no swizzle, else 32/64/128):
 *   K-major, element (mn, k) at  start + (mn/8)*SBO + (mn%8)*W + (k/8)*(W == 16 ? LBO : 16) + 2(k%8)
 *   MN-major, element (mn, k) at start + (k/8)*(W == 16 ? LBO : SBO) + (k%8)*W + 2(mn%8)
 *                                 + (W == 16 ? (mn/8)*SBO : (mn/(W/2))*LBO + ((mn/8)%(W/16))*16)
 *   and then, swizzled, address bits [7, 7+log2(W/16)) are XORed into bits [4, ...): the 16-byte
 *   chunk index within each W-byte row is XORed with the row's position in the repeating pattern
 *   (1024, 512, 256 bytes). Atoms must start on that boundary (the base-offset field stays 0; the
 *   emulator reports a non-zero one as not emulated). Advancing K within a swizzled row is adding
 *   the byte offset to the start address (wgmma_desc_advance), as the XOR uses address bits.
 *
 * Ordering (the emulator checks all of it, emu/README.md):
 *   smem writes -> fence_proxy_async_shared() -> __syncthreads() -> wgmma_fence() -> wgmma_*(...)
 *   ... -> wgmma_commit() -> wgmma_wait<N>() -> read the accumulators.
 *   wgmma_fence() after every wgmma_wait before the next wgmma_* (the emulator's rule; the ISA
 *   requires it whenever the registers were accessed in between). Between issue and the wait that
 *   retires it, never read or write the accumulators (nor the A registers). Several wgmma_* into
 *   the same accumulators without a wait in between accumulate in order (k-steps).
 */
#ifndef SEQK_KERNELS_PRIMITIVES_SM90_CUH
#define SEQK_KERNELS_PRIMITIVES_SM90_CUH

#include "primitives.cuh"

#include <cuda.h> /* CUtensorMap (types only; the library does not link libcuda) */

#if defined(SEQK_PRIM_DEVICE) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 &&                 \
    defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SEQK_SM90A_PTX 1
#endif

#if defined(SEQK_PRIM_EMU)
#define SEQK_SM90_SITE_ONLY                                                                        \
  const char *seqk_file_ = __builtin_FILE(), int seqk_line_ = __builtin_LINE()
#else
#define SEQK_SM90_SITE_ONLY
#endif

/* ---- shared-memory matrix descriptors ------------------------------------------------------- */
enum wgmma_swizzle : int {
  WGMMA_SWIZZLE_NONE = 0,
  WGMMA_SWIZZLE_128B = 1,
  WGMMA_SWIZZLE_64B = 2,
  WGMMA_SWIZZLE_32B = 3
};

/* The address a descriptor holds: the shared-window address on the GPU, the byte offset from the
   block's shared-memory arena (1024-byte aligned, like the window) in the emulator. Use it also
   to align swizzled tiles: (1024 - (wgmma_smem_offset(p) & 1023)) & 1023 bytes up. */
__device__ __forceinline__ uint32_t wgmma_smem_offset(const void *p SEQK_SITE_DECL) {
#if defined(SEQK_PRIM_DEVICE)
  return (uint32_t)__cvta_generic_to_shared(p);
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)p;
  return 0;
#else
  return seqk_emu::smem_offset(p, SEQK_PRIM_SITE);
#endif
}

/* 64-bit descriptor: start >> 4 in bits 0-13, LBO >> 4 in 16-29, SBO >> 4 in 32-45, base offset
   0 (bits 49-51), swizzle mode in 62-63. Addresses and offsets are 16-byte multiples. */
__host__ __device__ __forceinline__ uint64_t wgmma_desc_encode(uint32_t start, uint32_t lbo_bytes,
                                                               uint32_t sbo_bytes, int swizzle) {
  return (uint64_t)((start & 0x3FFFFu) >> 4) | ((uint64_t)((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
         ((uint64_t)((sbo_bytes & 0x3FFFFu) >> 4) << 32) | ((uint64_t)(swizzle & 3) << 62);
}
__device__ __forceinline__ uint64_t wgmma_desc(const void *p, uint32_t lbo_bytes,
                                               uint32_t sbo_bytes, int swizzle SEQK_SITE_DECL) {
  return wgmma_desc_encode(wgmma_smem_offset(p SEQK_SITE_FWD), lbo_bytes, sbo_bytes, swizzle);
}
/* The same matrix, its start moved by `bytes` (a multiple of 16; the field must not overflow). */
__host__ __device__ __forceinline__ uint64_t wgmma_desc_advance(uint64_t desc, uint32_t bytes) {
  return desc + (uint64_t)(bytes >> 4);
}

/* ---- fences, groups -------------------------------------------------------------------------- */
/* Makes this thread's generic-proxy shared-memory writes visible to the async proxy (what
   wgmma reads through): after writing operand tiles with ordinary stores, before the barrier
   that precedes the wgmma. A no-op in the emulator (sequentially consistent). */
__device__ __forceinline__ void fence_proxy_async_shared() {
#if defined(SEQK_PRIM_DEVICE) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* wgmma.fence.sync.aligned: orders the warp's register accesses before the next wgmma. */
__device__ __forceinline__ void wgmma_fence(SEQK_SM90_SITE_ONLY) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::wgmma_fence(SEQK_PRIM_SITE);
#endif
}

/* wgmma.commit_group.sync.aligned: closes the group of wgmma issued since the last commit. */
__device__ __forceinline__ void wgmma_commit(SEQK_SM90_SITE_ONLY) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::wgmma_commit(SEQK_PRIM_SITE);
#endif
}

/* wgmma.wait_group.sync.aligned N: waits until at most N committed groups are in flight. */
template <int N>
__device__ __forceinline__ void wgmma_wait(SEQK_SM90_SITE_ONLY) {
  static_assert(N >= 0 && N <= 7, "wgmma.wait_group N");
#if defined(SEQK_SM90A_PTX)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::wgmma_wait(N, SEQK_PRIM_SITE);
#endif
}

/* Keeps the compiler from moving accesses to the accumulators across a wgmma or a wait (nvcc
   sees no dependency between them and the asynchronous instruction). A no-op in the emulator. */
template <int M>
__device__ __forceinline__ void wgmma_fence_operand(float (&d)[M]) {
#if defined(SEQK_PRIM_DEVICE)
  for (int i = 0; i < M; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

/* ---- wgmma.mma_async ---------------------------------------------------------------------------- */
/* The operand tables below are written out per N (nvcc takes no symbolic operand names):
   clang-format leaves them as written. */
// clang-format off
#if defined(SEQK_SM90A_PTX)
/* Operand numbering for the asm statements: the N/2 accumulators are %0..%(N/2-1) ("+f"), the
   inputs follow (nvcc has no symbolic operand names). SEQK_WGMMA_IN<N>_k is input k. */
#define SEQK_WGMMA_D8 "{" "%0, %1, %2, %3" "}"
#define SEQK_WGMMA_DOPS8 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
#define SEQK_WGMMA_IN8(k) SEQK_WGMMA_IN8_##k
#define SEQK_WGMMA_IN8_0 "%4"
#define SEQK_WGMMA_IN8_1 "%5"
#define SEQK_WGMMA_IN8_2 "%6"
#define SEQK_WGMMA_IN8_3 "%7"
#define SEQK_WGMMA_IN8_4 "%8"
#define SEQK_WGMMA_IN8_5 "%9"
#define SEQK_WGMMA_IN8_6 "%10"
#define SEQK_WGMMA_D16 "{" "%0, %1, %2, %3, %4, %5, %6, %7" "}"
#define SEQK_WGMMA_DOPS16 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
#define SEQK_WGMMA_IN16(k) SEQK_WGMMA_IN16_##k
#define SEQK_WGMMA_IN16_0 "%8"
#define SEQK_WGMMA_IN16_1 "%9"
#define SEQK_WGMMA_IN16_2 "%10"
#define SEQK_WGMMA_IN16_3 "%11"
#define SEQK_WGMMA_IN16_4 "%12"
#define SEQK_WGMMA_IN16_5 "%13"
#define SEQK_WGMMA_IN16_6 "%14"
#define SEQK_WGMMA_D32 "{" "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15" "}"
#define SEQK_WGMMA_DOPS32 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define SEQK_WGMMA_IN32(k) SEQK_WGMMA_IN32_##k
#define SEQK_WGMMA_IN32_0 "%16"
#define SEQK_WGMMA_IN32_1 "%17"
#define SEQK_WGMMA_IN32_2 "%18"
#define SEQK_WGMMA_IN32_3 "%19"
#define SEQK_WGMMA_IN32_4 "%20"
#define SEQK_WGMMA_IN32_5 "%21"
#define SEQK_WGMMA_IN32_6 "%22"
#define SEQK_WGMMA_D64 "{" "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" "}"
#define SEQK_WGMMA_DOPS64 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define SEQK_WGMMA_IN64(k) SEQK_WGMMA_IN64_##k
#define SEQK_WGMMA_IN64_0 "%32"
#define SEQK_WGMMA_IN64_1 "%33"
#define SEQK_WGMMA_IN64_2 "%34"
#define SEQK_WGMMA_IN64_3 "%35"
#define SEQK_WGMMA_IN64_4 "%36"
#define SEQK_WGMMA_IN64_5 "%37"
#define SEQK_WGMMA_IN64_6 "%38"
#define SEQK_WGMMA_D128 "{" "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" "}"
#define SEQK_WGMMA_DOPS128 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define SEQK_WGMMA_IN128(k) SEQK_WGMMA_IN128_##k
#define SEQK_WGMMA_IN128_0 "%64"
#define SEQK_WGMMA_IN128_1 "%65"
#define SEQK_WGMMA_IN128_2 "%66"
#define SEQK_WGMMA_IN128_3 "%67"
#define SEQK_WGMMA_IN128_4 "%68"
#define SEQK_WGMMA_IN128_5 "%69"
#define SEQK_WGMMA_IN128_6 "%70"
#define SEQK_WGMMA_D256 "{" "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127" "}"
#define SEQK_WGMMA_DOPS256 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
  "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
  "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
  "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
  "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
  "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
  "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
  "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
  "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define SEQK_WGMMA_IN256(k) SEQK_WGMMA_IN256_##k
#define SEQK_WGMMA_IN256_0 "%128"
#define SEQK_WGMMA_IN256_1 "%129"
#define SEQK_WGMMA_IN256_2 "%130"
#define SEQK_WGMMA_IN256_3 "%131"
#define SEQK_WGMMA_IN256_4 "%132"
#define SEQK_WGMMA_IN256_5 "%133"
#define SEQK_WGMMA_IN256_6 "%134"

#define SEQK_WGMMA_SS_ASM(N, T)                                                                    \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SEQK_WGMMA_IN##N(0) ", 0;\n"                   \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." T "." T " " SEQK_WGMMA_D##N      \
               ", " SEQK_WGMMA_IN##N(1) ", " SEQK_WGMMA_IN##N(2) ", p, 1, 1, " SEQK_WGMMA_IN##N(3) \
               ", " SEQK_WGMMA_IN##N(4) ";\n}\n"                                                   \
               : SEQK_WGMMA_DOPS##N                                                                \
               : "r"(scale_d), "l"(desc_a), "l"(desc_b), "n"(TA), "n"(TB)                          \
               : "memory");
#define SEQK_WGMMA_RS_ASM(N, T)                                                                    \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SEQK_WGMMA_IN##N(0) ", 0;\n"                   \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." T "." T " " SEQK_WGMMA_D##N      \
               ", {" SEQK_WGMMA_IN##N(1) ", " SEQK_WGMMA_IN##N(2) ", " SEQK_WGMMA_IN##N(3) ", "    \
               SEQK_WGMMA_IN##N(4) "}, " SEQK_WGMMA_IN##N(5) ", p, 1, 1, " SEQK_WGMMA_IN##N(6)     \
               ";\n}\n"                                                                            \
               : SEQK_WGMMA_DOPS##N                                                                \
               : "r"(scale_d), "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(TB)    \
               : "memory");

template <int N>
struct seqk_wgmma_ptx;
#define SEQK_WGMMA_DEFINE_N(N)                                                                     \
  template <>                                                                                      \
  struct seqk_wgmma_ptx<N> {                                                                       \
    template <bool BF, int TA, int TB>                                                             \
    static __device__ __forceinline__ void ss(float *d, uint64_t desc_a, uint64_t desc_b,          \
                                              int scale_d) {                                       \
      if constexpr (BF) {                                                                          \
        SEQK_WGMMA_SS_ASM(N, "bf16")                                                               \
      } else {                                                                                     \
        SEQK_WGMMA_SS_ASM(N, "f16")                                                                \
      }                                                                                            \
    }                                                                                              \
    template <bool BF, int TB>                                                                     \
    static __device__ __forceinline__ void rs(float *d, const uint32_t *a, uint64_t desc_b,        \
                                              int scale_d) {                                       \
      if constexpr (BF) {                                                                          \
        SEQK_WGMMA_RS_ASM(N, "bf16")                                                               \
      } else {                                                                                     \
        SEQK_WGMMA_RS_ASM(N, "f16")                                                                \
      }                                                                                            \
    }                                                                                              \
  };
SEQK_WGMMA_DEFINE_N(8)
SEQK_WGMMA_DEFINE_N(16)
SEQK_WGMMA_DEFINE_N(32)
SEQK_WGMMA_DEFINE_N(64)
SEQK_WGMMA_DEFINE_N(128)
SEQK_WGMMA_DEFINE_N(256)
#endif /* SEQK_SM90A_PTX */
// clang-format on

template <int N, int TA, int TB>
struct seqk_wgmma_check {
  static_assert(N == 8 || N == 16 || N == 32 || N == 64 || N == 128 || N == 256,
                "wgmma m64nNk16: N in 8, 16, 32, 64, 128, 256");
  static_assert((TA == 0 || TA == 1) && (TB == 0 || TB == 1), "imm-trans: 0 K-major, 1 MN-major");
  static constexpr bool ok = true;
};

#if defined(SEQK_SM90A_PTX)
#define SEQK_WGMMA_SS_BODY(BF, emutype)                                                            \
  seqk_wgmma_ptx<N>::template ss<BF, TransA, TransB>(d, desc_a, desc_b, scale_d);
#define SEQK_WGMMA_RS_BODY(BF, emutype)                                                            \
  seqk_wgmma_ptx<N>::template rs<BF, TransB>(d, a, desc_b, scale_d);
#elif defined(SEQK_PRIM_DEVICE)
#define SEQK_WGMMA_SS_BODY(BF, emutype) __trap();
#define SEQK_WGMMA_RS_BODY(BF, emutype) __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
#define SEQK_WGMMA_SS_BODY(BF, emutype)                                                            \
  (void)d;                                                                                         \
  (void)desc_a;                                                                                    \
  (void)desc_b;                                                                                    \
  (void)scale_d;
#define SEQK_WGMMA_RS_BODY(BF, emutype)                                                            \
  (void)d;                                                                                         \
  (void)a;                                                                                         \
  (void)desc_b;                                                                                    \
  (void)scale_d;
#else
#define SEQK_WGMMA_SS_BODY(BF, emutype)                                                            \
  seqk_emu::wgmma(emutype, N, d, nullptr, desc_a, desc_b, scale_d, TransA, TransB, SEQK_PRIM_SITE);
#define SEQK_WGMMA_RS_BODY(BF, emutype)                                                            \
  seqk_emu::wgmma(emutype, N, d, a, 0, desc_b, scale_d, 0, TransB, SEQK_PRIM_SITE);
#endif

/* d (N/2 per thread, the D layout above) = A * B + (scale_d ? d : 0); A, B by descriptors. */
#define SEQK_DEFINE_WGMMA_SS(fname, BF, emutype)                                                   \
  template <int N, int TransA = 0, int TransB = 0>                                                 \
  __device__ __forceinline__ void fname(float(&d)[N / 2], uint64_t desc_a, uint64_t desc_b,        \
                                        int scale_d SEQK_SITE_DECL) {                              \
    static_assert(seqk_wgmma_check<N, TransA, TransB>::ok, "");                                    \
    SEQK_WGMMA_SS_BODY(BF, emutype)                                                                \
  }
/* The same with A from registers (a: the A fragment above); B by a descriptor. */
#define SEQK_DEFINE_WGMMA_RS(fname, BF, emutype)                                                   \
  template <int N, int TransB = 0>                                                                 \
  __device__ __forceinline__ void fname(float(&d)[N / 2], const uint32_t(&a)[4], uint64_t desc_b,  \
                                        int scale_d SEQK_SITE_DECL) {                              \
    static_assert(seqk_wgmma_check<N, 0, TransB>::ok, "");                                         \
    SEQK_WGMMA_RS_BODY(BF, emutype)                                                                \
  }
SEQK_DEFINE_WGMMA_SS(wgmma_f16_ss, false, seqk_emu::MMA_F16)
SEQK_DEFINE_WGMMA_SS(wgmma_bf16_ss, true, seqk_emu::MMA_BF16)
SEQK_DEFINE_WGMMA_RS(wgmma_f16_rs, false, seqk_emu::MMA_F16)
SEQK_DEFINE_WGMMA_RS(wgmma_bf16_rs, true, seqk_emu::MMA_BF16)

/* ---- Hopper synchronisation: mbarrier, named barriers, elect.sync, setmaxnreg -------------------
 * mbarrier (PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier"): a 64-bit
 * object in shared memory (8-byte aligned; declare it as a uint64_t element of an SMEM_ARRAY).
 *   mbarrier_init(bar, count)         expected arrival count (1..2^20-1); phase 0 in progress,
 *                                     tx-count 0. Initialise from one thread, then a
 *                                     __syncthreads (mbarrier_init_fence() too for clusters)
 *                                     before other threads use it.
 *   mbarrier_arrive(bar[, count])     arrive-on (count arrivals, default 1); returns the state
 *                                     token (opaque; the emulator's is the phase number).
 *   mbarrier_arrive_expect_tx(bar, b) expect-tx(b) then arrive-on: the producer's announcement of
 *                                     b bytes an asynchronous copy (TMA) will complete.
 *   mbarrier_expect_tx(bar, b)        tx-count += b, no arrival.
 *   mbarrier_complete_tx(bar, b)      tx-count -= b (what TMA does as its bytes land; the PTX
 *                                     instruction exists on sm_90 as a test hook / stand-in).
 *   The current phase completes when its pending arrivals and its tx-count are both zero; then
 *   the phase parity flips and the pending count resets to the init count.
 *   mbarrier_try_wait_parity(bar, p)  true once the phase of parity p has completed (the phase in
 *                                     progress has parity !p); on a GPU it may give up and
 *                                     return false after a time limit. Phases alternate: wait on
 *                                     parity 0, then 1, then 0, ... (phase k has parity k & 1).
 *   mbarrier_wait(bar, p)             loops on try_wait until true.
 *   mbarrier_inval(bar)               before the word is used for anything else.
 * The emulator parks a waiting thread until the phase changes (a wait nothing can complete is a
 * deadlock report naming the barrier and its state) and reports: an uninitialised barrier, an
 * address that is not an 8-byte aligned word of a shared array, more arrivals than pending, a
 * tx-count underflow (all arrivals in and more bytes completed than expected), ordinary stores
 * over an initialised barrier's word.
 *
 * Named barriers: named_barrier_sync(id, count) / named_barrier_arrive(id, count) are
 * bar.sync / bar.arrive id, count (the .aligned forms: every thread of the warp executes the
 * same one; a warp counts as 32 threads). ids 1..15 (0 is __syncthreads'), count a multiple of
 * 32; the barrier completes when count threads have arrived; arrive does not wait. All warps of
 * one instance must use the same count (the emulator reports a mismatch, and a deadlock).
 *
 * elect_sync(mask[, lane]): elect.sync, true in exactly one lane of mask (the emulator elects the
 * lowest; the ISA promises one deterministic leader), with the leader's lane id. Every lane of
 * mask must call it (like __shfl_sync).
 *
 * setmaxnreg_inc<N>() / setmaxnreg_dec<N>(): setmaxnreg.{inc,dec}.sync.aligned.u32 N, N a
 * multiple of 8 in 24..256, executed by all 4 warps of a warpgroup with the same N (the emulator
 * checks that, and that .inc never lowers / .dec never raises the warp's last value; registers
 * themselves are not emulated).
 */
#if defined(SEQK_PRIM_DEVICE)
#define SEQK_SMEM_ADDR(p) ((uint32_t)__cvta_generic_to_shared(p))
#endif

__device__ __forceinline__ void mbarrier_init(uint64_t *bar, uint32_t count SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(SEQK_SMEM_ADDR(bar)), "r"(count)
               : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)count;
#else
  seqk_emu::mbarrier_init(bar, count, SEQK_PRIM_SITE);
#endif
}

/* Makes mbarrier inits visible to the cluster (and the async proxy); a no-op in the emulator. */
__device__ __forceinline__ void mbarrier_init_fence() {
#if defined(SEQK_SM90A_PTX)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#endif
}

__device__ __forceinline__ uint64_t mbarrier_arrive(uint64_t *bar, uint32_t count = 1
                                                    SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  uint64_t state;
  asm volatile("mbarrier.arrive.shared::cta.b64 %0, [%1], %2;\n"
               : "=l"(state)
               : "r"(SEQK_SMEM_ADDR(bar)), "r"(count)
               : "memory");
  return state;
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
  return 0;
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)count;
  return 0;
#else
  return seqk_emu::mbarrier_arrive(bar, count, 0, false, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ uint64_t mbarrier_arrive_expect_tx(uint64_t *bar,
                                                              uint32_t tx_bytes SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  uint64_t state;
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 %0, [%1], %2;\n"
               : "=l"(state)
               : "r"(SEQK_SMEM_ADDR(bar)), "r"(tx_bytes)
               : "memory");
  return state;
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
  return 0;
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)tx_bytes;
  return 0;
#else
  return seqk_emu::mbarrier_arrive(bar, 1, tx_bytes, true, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ void mbarrier_expect_tx(uint64_t *bar, uint32_t tx_bytes SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(
                   SEQK_SMEM_ADDR(bar)),
               "r"(tx_bytes)
               : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)tx_bytes;
#else
  seqk_emu::mbarrier_expect_tx(bar, tx_bytes, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ void mbarrier_complete_tx(uint64_t *bar,
                                                     uint32_t tx_bytes SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("mbarrier.complete_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(
                   SEQK_SMEM_ADDR(bar)),
               "r"(tx_bytes)
               : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)tx_bytes;
#else
  seqk_emu::mbarrier_complete_tx(bar, tx_bytes, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ bool mbarrier_try_wait_parity(uint64_t *bar,
                                                         uint32_t parity SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(SEQK_SMEM_ADDR(bar)), "r"(parity)
      : "memory");
  return done != 0;
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
  return false;
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
  (void)parity;
  return true;
#else
  return seqk_emu::mbarrier_try_wait_parity(bar, parity, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ void mbarrier_wait(uint64_t *bar, uint32_t parity SEQK_SITE_DECL) {
  while (!mbarrier_try_wait_parity(bar, parity SEQK_SITE_FWD)) {
  }
}

__device__ __forceinline__ void mbarrier_inval(uint64_t *bar SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(SEQK_SMEM_ADDR(bar)) : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)bar;
#else
  seqk_emu::mbarrier_inval(bar, SEQK_PRIM_SITE);
#endif
}

/* bar.sync id, count: waits until count threads (whole warps) have arrived at barrier id. */
__device__ __forceinline__ void named_barrier_sync(int id, int count SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)id;
  (void)count;
#else
  seqk_emu::named_barrier(id, count, true, SEQK_PRIM_SITE);
#endif
}

/* bar.arrive id, count: counts this warp's arrival without waiting. */
__device__ __forceinline__ void named_barrier_arrive(int id, int count SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)id;
  (void)count;
#else
  seqk_emu::named_barrier(id, count, false, SEQK_PRIM_SITE);
#endif
}

/* elect.sync: true in the one elected lane of mask; leader_lane receives its lane id. */
__device__ __forceinline__ bool elect_sync(uint32_t mask, uint32_t &leader_lane SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  uint32_t lane, is;
  asm volatile(
      "{\n.reg .pred p;\nelect.sync %0|p, %2;\nselp.u32 %1, 1, 0, p;\n}\n"
      : "=r"(lane), "=r"(is)
      : "r"(mask)
      : "memory");
  leader_lane = lane;
  return is != 0;
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
  leader_lane = 0;
  return false;
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)mask;
  leader_lane = 0;
  return false;
#else
  leader_lane = seqk_emu::elect_sync(mask, SEQK_PRIM_SITE);
  return leader_lane == (uint32_t)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y *
                                                                               threadIdx.z)) % 32u;
#endif
}
__device__ __forceinline__ bool elect_sync(uint32_t mask SEQK_SITE_DECL) {
  uint32_t lane;
  return elect_sync(mask, lane SEQK_SITE_FWD);
}

/* setmaxnreg.{inc,dec}.sync.aligned.u32 N, by all 4 warps of a warpgroup. */
template <int N>
__device__ __forceinline__ void setmaxnreg_inc(SEQK_SM90_SITE_ONLY) {
  static_assert(N >= 24 && N <= 256 && N % 8 == 0, "setmaxnreg: a multiple of 8 in 24..256");
#if defined(SEQK_SM90A_PTX)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::setmaxnreg(N, true, SEQK_PRIM_SITE);
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec(SEQK_SM90_SITE_ONLY) {
  static_assert(N >= 24 && N <= 256 && N % 8 == 0, "setmaxnreg: a multiple of 8 in 24..256");
#if defined(SEQK_SM90A_PTX)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::setmaxnreg(N, false, SEQK_PRIM_SITE);
#endif
}

/* ---- Hopper TMA: tiled tensor loads -------------------------------------------------------------
 * cp.async.bulk.tensor.{2,3,4}d.shared::cluster.global.tile.mbarrier::complete_tx::bytes (PTX ISA
 * "Data Movement: cp.async.bulk.tensor"), issued by ONE thread:
 *   tma_load_2d(dst, map, bar, c0, c1)  [_3d: c2; _4d: c2, c3]
 * copies the box of the tensor map (kernels/tma_map.h, seqk_tma_encode) whose first element has
 * coordinates (c0, c1, ...) - innermost first, in elements, any int32: elements outside the tensor
 * (negative or past the end) read as zeros - into shared memory at dst, and completes the box's
 * bytes (product of the box dims x element size, out-of-bounds elements included) as transactions
 * on the mbarrier bar. Announce them first (mbarrier_arrive_expect_tx(bar, bytes) in the same
 * phase); the data may be read after mbarrier_wait(bar, parity) says the phase completed.
 *   map    a kernel parameter: `const __grid_constant__ CUtensorMap` or a member of a
 *          __grid_constant__ params struct (its generic address; 64-byte aligned)
 *   dst    shared memory, 128-byte aligned; the box is laid out densely, innermost dimension
 *          contiguous (row r of a 2-D box at r * box0 * element size), then swizzled: with
 *          swizzle 32B/64B/128B the 16-byte chunk index (address bits [4,7)) is XORed with address
 *          bits [7,8) / [7,9) / [7,10), the same pattern wgmma's swizzled descriptors read
 *          (wgmma_desc with WGMMA_SWIZZLE_32B/64B/128B); align dst to 256/512/1024 bytes
 *          (wgmma_smem_offset) for the canonical atom layout. A box with box0 x element size ==
 *          128 bytes and 128B swizzle, 1024-aligned, is a K-major wgmma operand (SBO 1024).
 *   bar    an initialised mbarrier (mbarrier_init) in shared memory
 * tma_prefetch_map(map): prefetch.tensormap (optional; a no-op in the emulator).
 * The emulator (emu/README.md, "Hopper TMA") fills dst with kTmaPoison (0x7FBD7FBD: NaN as f32,
 * f16, bf16) at issue and lands the copy when a thread waits on bar; it reports a map not made by
 * the encoder, a rank mismatch, dst outside shared memory or misaligned, an uninitialised bar,
 * overlapping loads in flight, writes to dst while in flight, more bytes completed than expected
 * (tx-count underflow), a block exiting with a load in flight.
 */
#if defined(SEQK_SM90A_PTX)
#define SEQK_TMA_PTX(N, COORDS, ...)                                                               \
  asm volatile("cp.async.bulk.tensor." #N                                                          \
               "d.shared::cluster.global.tile.mbarrier::complete_tx"                               \
               "::bytes [%0], [%1, {" COORDS "}], [%2];\n" ::"r"(SEQK_SMEM_ADDR(smem_dst)),        \
               "l"(reinterpret_cast<uint64_t>(map)), "r"(SEQK_SMEM_ADDR(bar)), __VA_ARGS__         \
               : "memory");
#endif

__device__ __forceinline__ void tma_load_2d(void *smem_dst, const CUtensorMap *map, uint64_t *bar,
                                            int32_t c0, int32_t c1 SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  SEQK_TMA_PTX(2, "%3, %4", "r"(c0), "r"(c1))
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)smem_dst;
  (void)map;
  (void)bar;
  (void)c0;
  (void)c1;
#else
  const int32_t c[2] = {c0, c1};
  seqk_emu::tma_load(smem_dst, map, bar, 2, c, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ void tma_load_3d(void *smem_dst, const CUtensorMap *map, uint64_t *bar,
                                            int32_t c0, int32_t c1, int32_t c2 SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  SEQK_TMA_PTX(3, "%3, %4, %5", "r"(c0), "r"(c1), "r"(c2))
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)smem_dst;
  (void)map;
  (void)bar;
  (void)c0;
  (void)c1;
  (void)c2;
#else
  const int32_t c[3] = {c0, c1, c2};
  seqk_emu::tma_load(smem_dst, map, bar, 3, c, SEQK_PRIM_SITE);
#endif
}

__device__ __forceinline__ void tma_load_4d(void *smem_dst, const CUtensorMap *map, uint64_t *bar,
                                            int32_t c0, int32_t c1, int32_t c2,
                                            int32_t c3 SEQK_SITE_DECL) {
#if defined(SEQK_SM90A_PTX)
  SEQK_TMA_PTX(4, "%3, %4, %5, %6", "r"(c0), "r"(c1), "r"(c2), "r"(c3))
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)smem_dst;
  (void)map;
  (void)bar;
  (void)c0;
  (void)c1;
  (void)c2;
  (void)c3;
#else
  const int32_t c[4] = {c0, c1, c2, c3};
  seqk_emu::tma_load(smem_dst, map, bar, 4, c, SEQK_PRIM_SITE);
#endif
}

/* prefetch.tensormap: brings the map into the cache ahead of the first load. */
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map) {
#if defined(SEQK_SM90A_PTX)
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#elif defined(SEQK_PRIM_DEVICE)
  __trap();
#else
  (void)map;
#endif
}

#endif /* SEQK_KERNELS_PRIMITIVES_SM90_CUH */
