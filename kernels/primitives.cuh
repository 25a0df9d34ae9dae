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
 *   cp.async: 4, 8 or 16 bytes global -> shared, src_bytes < bytes zero-fills the rest; the data
 *     is there only after cp_async_wait<N>() retires its group (then __syncthreads() before other
 *     threads read it). The emulator fills dst with 0xFF until then.
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

/* ---- ldmatrix ------------------------------------------------------------------------------------ */
#if defined(SEQK_PRIM_DEVICE)
#define SEQK_LDMATRIX_BODY(n, trans_sfx, regs)                                                     \
  unsigned seqk_addr_ = (unsigned)__cvta_generic_to_shared(row);                                   \
  SEQK_LDMATRIX_ASM_##n(trans_sfx)
#define SEQK_LDMATRIX_ASM_1(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x1" t ".shared.b16 {%0}, [%1];\n"                       \
               : "=r"(r[0])                                                                        \
               : "r"(seqk_addr_));
#define SEQK_LDMATRIX_ASM_2(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x2" t ".shared.b16 {%0,%1}, [%2];\n"                    \
               : "=r"(r[0]), "=r"(r[1])                                                            \
               : "r"(seqk_addr_));
#define SEQK_LDMATRIX_ASM_4(t)                                                                     \
  asm volatile("ldmatrix.sync.aligned.m8n8.x4" t ".shared.b16 {%0,%1,%2,%3}, [%4];\n"              \
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])                                    \
               : "r"(seqk_addr_));
#elif defined(SEQK_PRIM_HOSTPASS)
#define SEQK_LDMATRIX_BODY(n, trans_sfx, regs)                                                     \
  (void)r;                                                                                         \
  (void)row;
#else
#define SEQK_LDMATRIX_BODY(n, trans_sfx, is_trans)                                                 \
  seqk_emu::ldmatrix(n, is_trans, r, row, SEQK_PRIM_SITE);
#endif

/* row: this lane's row address (lanes 8j..8j+7 address matrix j; others' are ignored). */
__device__ __forceinline__ void ldmatrix_x1(uint32_t r[1], const void *row SEQK_SITE_DECL){
    SEQK_LDMATRIX_BODY(1, "", false)} __device__ __forceinline__
    void ldmatrix_x2(uint32_t r[2], const void *row SEQK_SITE_DECL){
        SEQK_LDMATRIX_BODY(2, "", false)} __device__ __forceinline__
    void ldmatrix_x4(uint32_t r[4], const void *row SEQK_SITE_DECL){
        SEQK_LDMATRIX_BODY(4, "", false)} __device__ __forceinline__
    void ldmatrix_x1_trans(uint32_t r[1], const void *row SEQK_SITE_DECL){
        SEQK_LDMATRIX_BODY(1, ".trans", true)} __device__ __forceinline__
    void ldmatrix_x2_trans(uint32_t r[2], const void *row SEQK_SITE_DECL){
        SEQK_LDMATRIX_BODY(2, ".trans", true)} __device__ __forceinline__
    void ldmatrix_x4_trans(uint32_t r[4], const void *row SEQK_SITE_DECL) {
  SEQK_LDMATRIX_BODY(4, ".trans", true)
}

/* ---- cp.async ------------------------------------------------------------------------------------ */
/* Copies Bytes (4, 8 or 16) from global src to shared dst; with src_bytes < Bytes only src_bytes
   are read and the rest of dst is zero-filled (src_bytes = 0: a pure zero fill). */
template <int Bytes>
__device__ __forceinline__ void cp_async(void *dst, const void *src,
                                         int src_bytes = Bytes SEQK_SITE_DECL) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(SEQK_PRIM_DEVICE)
  unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(Bytes),
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

/* ---- packing helpers ------------------------------------------------------------------------------ */
/* Two 16-bit values into one fragment register, lo in the low half. */
__device__ __forceinline__ uint32_t pack_half2(__half lo, __half hi) {
  return (uint32_t)__half_as_ushort(lo) | ((uint32_t)__half_as_ushort(hi) << 16);
}
__device__ __forceinline__ uint32_t pack_bf162(__nv_bfloat16 lo, __nv_bfloat16 hi) {
  return (uint32_t)__bfloat16_as_ushort(lo) | ((uint32_t)__bfloat16_as_ushort(hi) << 16);
}

#endif /* SEQK_KERNELS_PRIMITIVES_CUH */
