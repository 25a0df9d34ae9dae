/*
 * primitives.cuh - warp-level tensor-core and async-copy primitives, each with three bodies:
 *   __CUDA_ARCH__        inline PTX (sm_80+),
 *   __CUDACC__ host pass  empty (never executed on the host),
 *   otherwise            the emulator (emu/README.md), exactly per the PTX fragment layouts.
 * No inline asm is allowed anywhere else in kernels/.
 *
 * Fragment layouts (g = lane >> 2, t = lane & 3; low 16 bits = lower-numbered element):
 *   mma m16n8k16 A: a0 (g,2t..2t+1) a1 (g+8,2t..) a2 (g,2t+8..) a3 (g+8,2t+8..)
 *                B: b0 (2t..2t+1, g) b1 (2t+8..2t+9, g)
 *                C/D: c0 (g,2t) c1 (g,2t+1) c2 (g+8,2t) c3 (g+8,2t+1)
 *   mma m16n8k8  A: a0 (g,2t..) a1 (g+8,2t..)   B: b0 (2t..2t+1, g)   C/D as above
 *   ldmatrix x1/x2/x4: lanes 8j..8j+7 give the row addresses of matrix j (16-byte aligned,
 *     shared memory); register j of lane L = {M_j[L/4][2(L%4)], M_j[L/4][2(L%4)+1]}, or with
 *     .trans {M_j[2(L%4)][L/4], M_j[2(L%4)+1][L/4]}.
 *   cp.async: 4, 8 or 16 bytes global -> shared (16 through L2 only, .cg), src_bytes < bytes
 *     zero-fills the rest; the data is there only after cp_async_wait<N>() retires its group
 *     (then __syncthreads() before other threads read it). The emulator fills dst with 0xFF
 *     until then.
 *   ex2.approx: 2^x by the special-function unit (exp2_approx).
 */
#ifndef SEQK_KERNELS_PRIMITIVES_CUH
#define SEQK_KERNELS_PRIMITIVES_CUH

#include "cuda_compat.cuh"

#if defined(__CUDA_ARCH__)
#define SEQK_PRIM_DEVICE 1
#elif defined(__CUDACC__)
#define SEQK_PRIM_HOSTPASS 1
#else
#define SEQK_PRIM_EMU 1
#endif

#ifdef SEQK_PRIM_EMU
#define SEQK_PRIM_SITE                                                                             \
  seqk_emu::site { seqk_file_, seqk_line_ }
#endif

/* ---- mma.sync ----------------------------------------------------------------------------------- */
#define SEQK_DEFINE_MMA_K16(fname, ptype, emutype)                                                 \
  __device__ __forceinline__ void fname(float d[4], const uint32_t a[4], const uint32_t b[2],      \
                                        const float c[4] SEQK_SITE_DECL) {                         \
    SEQK_MMA_K16_BODY(ptype, emutype)                                                              \
  }
#define SEQK_DEFINE_MMA_K8(fname, ptype, emutype)                                                  \
  __device__ __forceinline__ void fname(float d[4], const uint32_t a[2], const uint32_t b[1],      \
                                        const float c[4] SEQK_SITE_DECL) {                         \
    SEQK_MMA_K8_BODY(ptype, emutype)                                                               \
  }

#if defined(SEQK_PRIM_DEVICE)
#define SEQK_MMA_K16_BODY(ptype, emutype)                                                          \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." ptype "." ptype                            \
               ".f32 "                                                                             \
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"                       \
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                    \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),      \
                 "f"(c[1]), "f"(c[2]), "f"(c[3]));
#define SEQK_MMA_K8_BODY(ptype, emutype)                                                           \
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32." ptype "." ptype                             \
               ".f32 "                                                                             \
               "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};\n"                                   \
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                    \
               : "r"(a[0]), "r"(a[1]), "r"(b[0]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(SEQK_PRIM_HOSTPASS)
#define SEQK_MMA_K16_BODY(ptype, emutype)                                                          \
  (void)d;                                                                                         \
  (void)a;                                                                                         \
  (void)b;                                                                                         \
  (void)c;
#define SEQK_MMA_K8_BODY(ptype, emutype)                                                           \
  (void)d;                                                                                         \
  (void)a;                                                                                         \
  (void)b;                                                                                         \
  (void)c;
#else
#define SEQK_MMA_K16_BODY(ptype, emutype) seqk_emu::mma(emutype, 16, d, a, b, c, SEQK_PRIM_SITE);
#define SEQK_MMA_K8_BODY(ptype, emutype)  seqk_emu::mma(emutype, 8, d, a, b, c, SEQK_PRIM_SITE);
#endif

/* d = A * B + c, A row-major 16xK, B column-major Kx8, f32 accumulate. */
SEQK_DEFINE_MMA_K16(mma_m16n8k16_f16, "f16", seqk_emu::MMA_F16)
SEQK_DEFINE_MMA_K16(mma_m16n8k16_bf16, "bf16", seqk_emu::MMA_BF16)
SEQK_DEFINE_MMA_K8(mma_m16n8k8_f16, "f16", seqk_emu::MMA_F16)
SEQK_DEFINE_MMA_K8(mma_m16n8k8_bf16, "bf16", seqk_emu::MMA_BF16)

/* ---- shared-memory addresses ------------------------------------------------------------------ */
/* What ldmatrix and cp.async take: a 32-bit address in the shared window on the GPU, the pointer
   itself in the emulator; either way a byte offset is added with +. A kernel that converts its
   per-thread base once and adds constant offsets keeps one register per operand where generic
   pointers cost a conversion per use (sm_90 SASS: S2UR SR_CgaCtaId + ULEA + LEA per tile). */
#if defined(SEQK_PRIM_EMU)
using smem_addr = unsigned char *;
__device__ __forceinline__ smem_addr smem_addr_of(const void *p) {
  return static_cast<unsigned char *>(const_cast<void *>(p));
}
#else
using smem_addr = uint32_t;
__device__ __forceinline__ smem_addr smem_addr_of(const void *p) {
#if defined(SEQK_PRIM_DEVICE)
  return (uint32_t)__cvta_generic_to_shared(p);
#else
  (void)p;
  return 0;
#endif
}
#endif

/* ---- ldmatrix ------------------------------------------------------------------------------------ */
#if defined(SEQK_PRIM_DEVICE)
#define SEQK_LDMATRIX_ASM_1(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x1" t ".shared.b16 {%0}, [%1];\n"                       \
               : "=r"(r[0])                                                                        \
               : "r"(row));
#define SEQK_LDMATRIX_ASM_2(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x2" t ".shared.b16 {%0,%1}, [%2];\n"                    \
               : "=r"(r[0]), "=r"(r[1])                                                            \
               : "r"(row));
#define SEQK_LDMATRIX_ASM_4(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x4" t ".shared.b16 {%0,%1,%2,%3}, [%4];\n"              \
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])                                    \
               : "r"(row));
#define SEQK_LDMATRIX_BODY(n, trans_sfx, is_trans) SEQK_LDMATRIX_ASM_##n(trans_sfx)
#elif defined(SEQK_PRIM_HOSTPASS)
#define SEQK_LDMATRIX_BODY(n, trans_sfx, is_trans)                                                 \
  (void)r;                                                                                         \
  (void)row;
#else
#define SEQK_LDMATRIX_BODY(n, trans_sfx, is_trans)                                                 \
  seqk_emu::ldmatrix(n, is_trans, r, row, SEQK_PRIM_SITE);
#endif

/* row: this lane's row address (lanes 8j..8j+7 address matrix j; others' are ignored), as a
   shared-memory address or a generic pointer into shared memory. */
// clang-format off
#define SEQK_DEFINE_LDMATRIX(fname, n, trans_sfx, is_trans)                                        \
  __device__ __forceinline__ void fname(uint32_t r[n], smem_addr row SEQK_SITE_DECL) {            \
    SEQK_LDMATRIX_BODY(n, trans_sfx, is_trans)                                                     \
  }                                                                                                \
  __device__ __forceinline__ void fname(uint32_t r[n], const void *row SEQK_SITE_DECL) {          \
    fname(r, smem_addr_of(row) SEQK_SITE_FWD);                                                     \
  }
// clang-format on
SEQK_DEFINE_LDMATRIX(ldmatrix_x1, 1, "", false)
SEQK_DEFINE_LDMATRIX(ldmatrix_x2, 2, "", false)
SEQK_DEFINE_LDMATRIX(ldmatrix_x4, 4, "", false)
SEQK_DEFINE_LDMATRIX(ldmatrix_x1_trans, 1, ".trans", true)
SEQK_DEFINE_LDMATRIX(ldmatrix_x2_trans, 2, ".trans", true)
SEQK_DEFINE_LDMATRIX(ldmatrix_x4_trans, 4, ".trans", true)

/* ---- cp.async ------------------------------------------------------------------------------------ */
/* Copies Bytes (4, 8 or 16) from global src to shared dst; with src_bytes < Bytes only src_bytes
   are read and the rest of dst is zero-filled (src_bytes = 0: a pure zero fill). */
template <int Bytes>
__device__ __forceinline__ void cp_async(smem_addr dst, const void *src,
                                         int src_bytes = Bytes SEQK_SITE_DECL) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(SEQK_PRIM_DEVICE)
  /* 16-byte copies bypass L1 (.cg): what the kernels copy is read once per block from shared
     memory, and L1 would only evict data that is reused. .cg takes 16 bytes only. */
  if (Bytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes)
                 : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(Bytes),
                 "r"(src_bytes)
                 : "memory");
#elif defined(SEQK_PRIM_HOSTPASS)
  (void)dst;
  (void)src;
  (void)src_bytes;
#else
  seqk_emu::cp_async(dst, src, Bytes, src_bytes, SEQK_PRIM_SITE);
#endif
}
template <int Bytes>
__device__ __forceinline__ void cp_async(void *dst, const void *src,
                                         int src_bytes = Bytes SEQK_SITE_DECL) {
  cp_async<Bytes>(smem_addr_of(dst), src, src_bytes SEQK_SITE_FWD);
}

/* Closes the group of cp.async issued since the previous commit. */
__device__ __forceinline__ void cp_async_commit() {
#if defined(SEQK_PRIM_DEVICE)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::cp_async_commit();
#endif
}

/* Waits until at most N committed groups are still in flight (this thread's copies only). */
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0 && N <= 7, "cp.async.wait_group N");
#if defined(SEQK_PRIM_DEVICE)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::cp_async_wait(N);
#endif
}

/* Commits the open group and waits for every copy of this thread. */
__device__ __forceinline__ void cp_async_wait_all() {
#if defined(SEQK_PRIM_DEVICE)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#elif defined(SEQK_PRIM_EMU)
  seqk_emu::cp_async_wait(-1);
#endif
}

/* ---- ex2.approx ---------------------------------------------------------------------------------- */
/* 2^x by the special-function unit (ex2.approx.ftz.f32: one MUFU.EX2, where exp2f costs 4-5
   instructions for its subnormal range): relative error at most 2^-22 per the PTX ISA, subnormal
   inputs read as 0 and subnormal results flushed to +0; 2^-inf = +0, NaN stays NaN. The emulator
   returns the correctly rounded 2^x with the same flush, within the hardware's error. */
__device__ __forceinline__ float exp2_approx(float x) {
#if defined(SEQK_PRIM_DEVICE)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
#else
  const float y = exp2f(x);
  return y < 1.17549435e-38f ? 0.0f : y; /* FLT_MIN: flush subnormal (and zero) results */
#endif
}

/* ---- rcp.approx --------------------------------------------------------------------------------- */
/* 1/x by the special-function unit (rcp.approx.ftz.f32: one MUFU.RCP, where 1.0f / x costs a
   correctly rounded division's 8 or more): at most 1 ulp of error per the PTX ISA, subnormal
   inputs and results flushed to zero of the same sign; 1/+-0 = +-inf, 1/+-inf = +-0. The emulator
   returns the correctly rounded quotient with the same flush. */
__device__ __forceinline__ float rcp_approx(float x) {
#if defined(SEQK_PRIM_DEVICE)
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
#else
  if (fabsf(x) < 1.17549435e-38f) x = copysignf(0.0f, x); /* FLT_MIN */
  const float y = 1.0f / x;
  return fabsf(y) < 1.17549435e-38f ? copysignf(0.0f, y) : y;
#endif
}

/* ---- packing helpers ------------------------------------------------------------------------------ */
/* Two 16-bit values into one fragment register, lo in the low half. */
__device__ __forceinline__ uint32_t pack_half2(__half lo, __half hi) {
  return (uint32_t)__half_as_ushort(lo) | ((uint32_t)__half_as_ushort(hi) << 16);
}
__device__ __forceinline__ uint32_t pack_bf162(__nv_bfloat16 lo, __nv_bfloat16 hi) {
  return (uint32_t)__bfloat16_as_ushort(lo) | ((uint32_t)__bfloat16_as_ushort(hi) << 16);
}

#endif /* SEQK_KERNELS_PRIMITIVES_CUH */
