/*
 * seqk_emu/emu.h - what a kernel source sees when it is compiled by the host C++ compiler for the
 * emulated backend (see emu/README.md). Kernels never include this directly: they include
 * kernels/cuda_compat.cuh, which picks nvcc's CUDA or this header.
 *
 * The toolkit's cuda_fp16.h / cuda_bf16.h work in host code and bring cuda_runtime_api.h, dim3,
 * uint3 and float4; they also define __device__, __global__, __host__ and __shared__ as empty
 * macros. So they are included first and the execution-space macros are fixed up afterwards.
 */
#ifndef SEQK_EMU_EMU_H
#define SEQK_EMU_EMU_H

#if defined(__CUDACC__)
#error "seqk_emu/emu.h is for the emulated (host compiler) build only"
#endif

#include <cuda_runtime_api.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "seqk_emu/report.h"

/* __shared__ cannot be emulated per block by the host compiler: use SMEM_ARRAY / DYN_SMEM. Any
   leftover use fails to compile with a name that says why. */
#undef __shared__
#define __shared__ seqk_emu_error_declare_shared_memory_with_SMEM_ARRAY_or_DYN_SMEM
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
/* Kernel parameters are copied per thread here anyway (a tensor map in one is read through a
   pointer into the copy): the qualifier has nothing to do. */
#undef __grid_constant__
#define __grid_constant__

namespace seqk_emu {

/* A source location, used to name barriers and warp collectives in reports. */
struct site {
  const char *file;
  int line;
};

/* One SMEM_ARRAY declaration; constant-initialised, so no guard variable. */
struct smem_site {
  const char *file;
  int line;
  const char *name;
};

/* ---- core entry points (emu/src/core.cpp) ---------------------------------------------------- */
/* bound (run by thunk) may live on the caller's stack: a launch recorded by a stream capture
   keeps clone(bound) instead, released with destroy. */
void launch_impl(dim3 grid, dim3 block, size_t dyn_smem, cudaStream_t stream, const void *kernel,
                 void (*thunk)(void *), void *bound, void *(*clone)(const void *),
                 void (*destroy)(void *), bool cooperative);

void *smem_static(const smem_site *s, size_t bytes);
void *smem_dynamic();

enum barrier_kind { BAR_SYNC = 0, BAR_COUNT, BAR_AND, BAR_OR, BAR_GRID };
int barrier(int kind, int pred, site s);

enum shfl_mode { SHFL_IDX = 0, SHFL_UP, SHFL_DOWN, SHFL_XOR };
void shfl_words(int mode, unsigned mask, const uint32_t *in, uint32_t *out, int nwords, int b,
                int width, site s);
enum vote_mode { VOTE_BALLOT = 0, VOTE_ANY, VOTE_ALL };
unsigned vote(int mode, unsigned mask, int pred, site s);
void syncwarp(unsigned mask, site s);
unsigned activemask();

/* ldmatrix .m8n8.b16: num = 1, 2 or 4 matrices; row = this lane's row address (shared memory). */
void ldmatrix(int num, bool trans, uint32_t *regs, const void *row, site s);
/* mma.sync.m16n8k{16,8}.row.col.f32.{f16,bf16}.{f16,bf16}.f32 */
enum mma_type { MMA_F16 = 0, MMA_BF16 };
void mma(int type, int k, float *d, const uint32_t *a, const uint32_t *b, const float *c, site s);

/* cp.async.{ca,cg}.shared.global: bytes in {4, 8, 16}; src_bytes < bytes zero-fills the rest. */
void cp_async(void *dst, const void *src, int bytes, int src_bytes, site s);
void cp_async_commit();
void cp_async_wait(int n); /* n < 0: wait_all */

/* Hopper warpgroup MMA (kernels/primitives_sm90.cuh; emu/README.md, "wgmma"). Per warp: the
   warp computes its 16 rows of the m64nNk16 product at issue, keeps the result pending in its
   open group and poisons the accumulators; wgmma_wait(n) retires all but the newest n committed
   groups. a_regs == nullptr: A comes from desc_a. type is MMA_F16 or MMA_BF16. */
uint32_t smem_offset(const void *p, site s); /* a descriptor's address: arena-relative */
void wgmma_fence(site s);
void wgmma_commit(site s);
void wgmma_wait(int n, site s);
void wgmma(int type, int n, float *d, const uint32_t *a_regs, uint64_t desc_a, uint64_t desc_b,
           int scale_d, int trans_a, int trans_b, site s);
/* The poison an accumulator register holds while its wgmma is in flight (a signalling NaN, so
   arithmetic on it changes the bits). */
constexpr uint32_t kWgmmaPoison = 0x7FBADBADu;

/* Hopper synchronisation (kernels/primitives_sm90.cuh; emu/README.md, "Hopper synchronisation").
   mbarrier objects are 8-byte aligned 64-bit words in a shared array of the block; the state
   (pending arrivals, tx-count, phase) is the emulator's, the word holds an encoding of it. */
void mbarrier_init(void *bar, unsigned count, site s);
/* arrive (expect: expect-tx of tx_bytes first) with `count` arrivals; returns the state token
   (the number of the phase the arrival belongs to). */
uint64_t mbarrier_arrive(void *bar, unsigned count, unsigned tx_bytes, bool expect, site s);
void mbarrier_expect_tx(void *bar, unsigned bytes, site s);
/* Completes `bytes` transaction bytes on the barrier: mbarrier.complete_tx, and what an emulated
   asynchronous copy (TMA) calls once its data is in place. May complete the phase. */
void mbarrier_complete_tx(void *bar, unsigned bytes, site s);
/* Parks the calling thread until the phase of this parity is complete; always returns true
   (a wait that can never end is reported as a deadlock). */
bool mbarrier_try_wait_parity(void *bar, unsigned parity, site s);
void mbarrier_inval(void *bar, site s);
/* bar.sync (sync) / bar.arrive id, count: ids 1..15, count a multiple of 32; per warp. */
void named_barrier(int id, int count, bool sync, site s);
/* elect.sync: the elected lane of mask (its lowest). */
unsigned elect_sync(unsigned mask, site s);
/* setmaxnreg.{inc,dec}.sync.aligned.u32 n: checked for warpgroup-uniform use. */
void setmaxnreg(int n, bool inc, site s);

/* Hopper TMA: cp.async.bulk.tensor.{1..5}d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
   (kernels/primitives_sm90.cuh; emu/README.md, "Hopper TMA"). map: a CUtensorMap made by the
   emulator's cuTensorMapEncodeTiled; coords: rank coordinates, innermost first. At issue the
   destination is filled with kTmaPoison and the copy is queued on the barrier; it lands (and
   completes its bytes on the barrier) when a thread waits on that barrier. */
void tma_load(void *dst, const void *map, void *bar, int rank, const int32_t *coords, site s);
/* What a TMA destination holds until its copy has landed: a NaN as f32, and as f16 and bf16
   (each 16-bit half is 0x7FBD). */
constexpr uint32_t kTmaPoison = 0x7FBD7FBDu;

unsigned long long clock_ticks();

/* Reports a kernel-side error (aborts the block; the launch then fails). */
void kernel_error(site s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

template <typename... P>
struct bound_kernel {
  void (*kernel)(P...);
  std::tuple<P...> args;
  static void run(void *self) {
    auto *b = static_cast<bound_kernel *>(self);
    /* Each emulated thread gets its own copies of the parameters, as on the GPU. */
    std::tuple<P...> mine = b->args;
    std::apply(b->kernel, mine);
  }
  static void *clone(const void *self) {
    return new bound_kernel(*static_cast<const bound_kernel *>(self));
  }
  static void destroy(void *self) { delete static_cast<bound_kernel *>(self); }
};

template <typename T>
inline void to_words(const T &v, uint32_t *w) {
  /* __half2 and __nv_bfloat162 have user-written assignment operators but are plain bits. */
  static_assert(std::is_trivially_destructible<T>::value, "shuffled types must be plain data");
  static_assert(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8, "shuffle of 2, 4 or 8 bytes");
  w[0] = w[1] = 0;
  std::memcpy(w, static_cast<const void *>(&v), sizeof(T));
}
template <typename T>
inline T from_words(const uint32_t *w) {
  T v;
  std::memcpy(static_cast<void *>(&v), w, sizeof(T));
  return v;
}
template <typename T>
constexpr int nwords() {
  return sizeof(T) == 8 ? 2 : 1;
}

}   // namespace seqk_emu

/* ---- built-in variables: per emulated thread, restored at every fiber switch -------------- */
/* Under names of their own in the archive (names.h says why), spelled as CUDA spells them in
   kernel sources. */
#define threadIdx seqk_emu_threadIdx
#define blockIdx  seqk_emu_blockIdx
#define blockDim  seqk_emu_blockDim
#define gridDim   seqk_emu_gridDim
extern __thread uint3 threadIdx;
extern __thread uint3 blockIdx;
extern __thread dim3 blockDim;
extern __thread dim3 gridDim;
static constexpr int warpSize = 32;

/* ---- launch ---------------------------------------------------------------------------------- */
/* launch(grid, block, smem, stream, kernel, args...): nvcc's kernel<<<grid, block, smem,
   stream>>>(args...). Runs the whole grid before returning; errors go to cudaGetLastError(). */
template <typename... P, typename... A>
inline void launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, void (*kernel)(P...),
                   A &&...args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  seqk_emu::bound_kernel<P...> b{kernel, std::tuple<P...>(std::forward<A>(args)...)};
  seqk_emu::launch_impl(grid, block, smem, stream, reinterpret_cast<const void *>(kernel),
                        &seqk_emu::bound_kernel<P...>::run, &b,
                        &seqk_emu::bound_kernel<P...>::clone,
                        &seqk_emu::bound_kernel<P...>::destroy, false);
}
/* A cooperative launch: every block is resident at once, so grid_sync() can complete. */
template <typename... P, typename... A>
inline void launch_cooperative(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               void (*kernel)(P...), A &&...args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  seqk_emu::bound_kernel<P...> b{kernel, std::tuple<P...>(std::forward<A>(args)...)};
  seqk_emu::launch_impl(grid, block, smem, stream, reinterpret_cast<const void *>(kernel),
                        &seqk_emu::bound_kernel<P...>::run, &b,
                        &seqk_emu::bound_kernel<P...>::clone,
                        &seqk_emu::bound_kernel<P...>::destroy, true);
}

/* ---- shared memory ----------------------------------------------------------------------------
   Carved from a per-block arena, filled with 0xFF bytes, each followed by a redzone (poisoned for
   ASan, checked for stray writes at block end). */
#define SEQK_EMU_SMEM_SITE_(name) seqk_emu_smem_site_##name
#define SMEM_ARRAY(T, name, N)                                                                     \
  static constexpr seqk_emu::smem_site SEQK_EMU_SMEM_SITE_(name){__FILE__, __LINE__, #name};       \
  T(&name)                                                                                         \
  [N] = *static_cast<T(*)[N]>(seqk_emu::smem_static(&SEQK_EMU_SMEM_SITE_(name), sizeof(T[N])))
#define SMEM_ARRAY2(T, name, R, C)                                                                 \
  static constexpr seqk_emu::smem_site SEQK_EMU_SMEM_SITE_(name){__FILE__, __LINE__, #name};       \
  T(&name)                                                                                         \
  [R][C] =                                                                                         \
      *static_cast<T(*)[R][C]>(seqk_emu::smem_static(&SEQK_EMU_SMEM_SITE_(name), sizeof(T[R][C])))
#define DYN_SMEM(T, name) T *name = static_cast<T *>(seqk_emu::smem_dynamic())

/* ---- barriers ---------------------------------------------------------------------------------- */
#define SEQK_EMU_SITE_PARAMS                                                                       \
  const char *seqk_file_ = __builtin_FILE(), int seqk_line_ = __builtin_LINE()
#define SEQK_EMU_SITE_ARGS seqk_file_, seqk_line_
#define SEQK_EMU_SITE      (seqk_emu::site{seqk_file_, seqk_line_})

inline void __syncthreads(SEQK_EMU_SITE_PARAMS) {
  seqk_emu::barrier(seqk_emu::BAR_SYNC, 1, SEQK_EMU_SITE);
}
inline int __syncthreads_count(int pred, SEQK_EMU_SITE_PARAMS) {
  return seqk_emu::barrier(seqk_emu::BAR_COUNT, pred != 0, SEQK_EMU_SITE);
}
inline int __syncthreads_and(int pred, SEQK_EMU_SITE_PARAMS) {
  return seqk_emu::barrier(seqk_emu::BAR_AND, pred != 0, SEQK_EMU_SITE);
}
inline int __syncthreads_or(int pred, SEQK_EMU_SITE_PARAMS) {
  return seqk_emu::barrier(seqk_emu::BAR_OR, pred != 0, SEQK_EMU_SITE);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* ---- warp collectives -------------------------------------------------------------------------- */
template <typename T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize,
                     SEQK_EMU_SITE_PARAMS) {
  uint32_t in[2], out[2];
  seqk_emu::to_words(var, in);
  seqk_emu::shfl_words(seqk_emu::SHFL_IDX, mask, in, out, seqk_emu::nwords<T>(), srcLane, width,
                       SEQK_EMU_SITE);
  return seqk_emu::from_words<T>(out);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        SEQK_EMU_SITE_PARAMS) {
  uint32_t in[2], out[2];
  seqk_emu::to_words(var, in);
  seqk_emu::shfl_words(seqk_emu::SHFL_UP, mask, in, out, seqk_emu::nwords<T>(), (int)delta, width,
                       SEQK_EMU_SITE);
  return seqk_emu::from_words<T>(out);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          SEQK_EMU_SITE_PARAMS) {
  uint32_t in[2], out[2];
  seqk_emu::to_words(var, in);
  seqk_emu::shfl_words(seqk_emu::SHFL_DOWN, mask, in, out, seqk_emu::nwords<T>(), (int)delta, width,
                       SEQK_EMU_SITE);
  return seqk_emu::from_words<T>(out);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize,
                         SEQK_EMU_SITE_PARAMS) {
  uint32_t in[2], out[2];
  seqk_emu::to_words(var, in);
  seqk_emu::shfl_words(seqk_emu::SHFL_XOR, mask, in, out, seqk_emu::nwords<T>(), laneMask, width,
                       SEQK_EMU_SITE);
  return seqk_emu::from_words<T>(out);
}
inline unsigned __ballot_sync(unsigned mask, int pred, SEQK_EMU_SITE_PARAMS) {
  return seqk_emu::vote(seqk_emu::VOTE_BALLOT, mask, pred != 0, SEQK_EMU_SITE);
}
inline int __any_sync(unsigned mask, int pred, SEQK_EMU_SITE_PARAMS) {
  return (int)seqk_emu::vote(seqk_emu::VOTE_ANY, mask, pred != 0, SEQK_EMU_SITE);
}
inline int __all_sync(unsigned mask, int pred, SEQK_EMU_SITE_PARAMS) {
  return (int)seqk_emu::vote(seqk_emu::VOTE_ALL, mask, pred != 0, SEQK_EMU_SITE);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, SEQK_EMU_SITE_PARAMS) {
  seqk_emu::syncwarp(mask, SEQK_EMU_SITE);
}
/* Lanes of this warp that have not exited. Never derive a collective's mask from it (rule 4). */
inline unsigned __activemask() { return seqk_emu::activemask(); }

/* ---- atomics (device-wide; host atomics are at least as strong) ------------------------------ */
#define SEQK_EMU_ATOMIC_INT(T)                                                                     \
  inline T atomicAdd(T *p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicSub(T *p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }           \
  inline T atomicAnd(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicXor(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicCAS(T *p, T cmp, T v) {                                                           \
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);            \
    return cmp;                                                                                    \
  }                                                                                                \
  inline T atomicMin(T *p, T v) {                                                                  \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                  \
    while (v < old &&                                                                              \
           !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}  \
    return old;                                                                                    \
  }                                                                                                \
  inline T atomicMax(T *p, T v) {                                                                  \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                  \
    while (v > old &&                                                                              \
           !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}  \
    return old;                                                                                    \
  }
SEQK_EMU_ATOMIC_INT(int)
SEQK_EMU_ATOMIC_INT(unsigned int)
SEQK_EMU_ATOMIC_INT(long long)
SEQK_EMU_ATOMIC_INT(unsigned long long)
#undef SEQK_EMU_ATOMIC_INT

namespace seqk_emu {
template <typename F, typename U, typename Op>
inline F atomic_float_rmw(F *p, Op op) {
  static_assert(sizeof(F) == sizeof(U), "size");
  U *q = reinterpret_cast<U *>(p);
  U old = __atomic_load_n(q, __ATOMIC_SEQ_CST);
  for (;;) {
    F f;
    std::memcpy(&f, &old, sizeof f);
    F n = op(f);
    U nu;
    std::memcpy(&nu, &n, sizeof nu);
    if (__atomic_compare_exchange_n(q, &old, nu, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      return f;
  }
}
}   // namespace seqk_emu
inline float atomicAdd(float *p, float v) {
  return seqk_emu::atomic_float_rmw<float, uint32_t>(p, [v](float x) { return x + v; });
}
inline double atomicAdd(double *p, double v) {
  return seqk_emu::atomic_float_rmw<double, uint64_t>(p, [v](double x) { return x + v; });
}
inline float atomicExch(float *p, float v) {
  return seqk_emu::atomic_float_rmw<float, uint32_t>(p, [v](float) { return v; });
}
inline float atomicMax(float *p, float v) { /* sm_90 has it natively; NaN handling as fmaxf */
  return seqk_emu::atomic_float_rmw<float, uint32_t>(p, [v](float x) { return std::fmax(x, v); });
}
inline float atomicMin(float *p, float v) {
  return seqk_emu::atomic_float_rmw<float, uint32_t>(p, [v](float x) { return std::fmin(x, v); });
}
inline unsigned atomicInc(unsigned *p, unsigned lim) {
  unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, old >= lim ? 0u : old + 1u, true, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {}
  return old;
}
inline unsigned atomicDec(unsigned *p, unsigned lim) {
  unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, (old == 0u || old > lim) ? lim : old - 1u, true,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
  return old;
}

/* ---- math intrinsics: exact host math (fast-math differences are not emulated) ---------------- */
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __tanhf(float x) { return std::tanh(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
/* sincospi(x) = sin(pi x), cos(pi x) (CUDA math API): x reduced exactly mod 2 first, as the
   device does, so a huge x loses nothing to the reduction. */
inline void sincospi(double x, double *s, double *c) {
  const double r = std::remainder(x, 2.0); /* exact, in [-1, 1] */
  *s = std::sin(M_PI * r);
  *c = std::cos(M_PI * r);
}
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __float2int_rn(float x) { return (int)std::nearbyint(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)std::floor(x); }
inline int __float2int_ru(float x) { return (int)std::ceil(x); }
inline unsigned __float2uint_rn(float x) { return (unsigned)std::nearbyint(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline unsigned __float_as_uint(float x) {
  unsigned i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline float __uint_as_float(unsigned i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline long long __double_as_longlong(double x) {
  long long i;
  std::memcpy(&i, &x, 8);
  return i;
}
inline double __longlong_as_double(long long i) {
  double x;
  std::memcpy(&x, &i, 8);
  return x;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return ((a << 8) >> 8) * ((b << 8) >> 8); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline long long clock64() { return (long long)seqk_emu::clock_ticks(); }
inline void __nanosleep(unsigned) {}
template <typename T>
inline T __ldg(const T *p) {
  return *p;
}

/* ---- cuda_fp16 / cuda_bf16 functions the toolkit declares device-only ------------------------- */
/* Computed in float (double for fma) and rounded once to the 16-bit type. */
#define SEQK_EMU_H16_FUNCS(H, H2, TOF, FROMF)                                                      \
  inline H __hfma(H a, H b, H c) {                                                                 \
    return FROMF((float)((double)TOF(a) * (double)TOF(b) + (double)TOF(c)));                       \
  }                                                                                                \
  inline H2 __hfma2(H2 a, H2 b, H2 c) {                                                            \
    H2 r;                                                                                          \
    r.x = __hfma(a.x, b.x, c.x);                                                                   \
    r.y = __hfma(a.y, b.y, c.y);                                                                   \
    return r;                                                                                      \
  }                                                                                                \
  inline H hexp(H a) { return FROMF(std::exp(TOF(a))); }                                           \
  inline H hexp2(H a) { return FROMF(std::exp2(TOF(a))); }                                         \
  inline H hlog(H a) { return FROMF(std::log(TOF(a))); }                                           \
  inline H hsqrt(H a) { return FROMF(std::sqrt(TOF(a))); }                                         \
  inline H hrsqrt(H a) { return FROMF(1.0f / std::sqrt(TOF(a))); }                                 \
  inline H hrcp(H a) { return FROMF(1.0f / TOF(a)); }                                              \
  inline H htanh(H a) { return FROMF(std::tanh(TOF(a))); }                                         \
  inline H2 h2exp(H2 a) {                                                                          \
    H2 r;                                                                                          \
    r.x = hexp(a.x);                                                                               \
    r.y = hexp(a.y);                                                                               \
    return r;                                                                                      \
  }                                                                                                \
  inline H2 h2sqrt(H2 a) {                                                                         \
    H2 r;                                                                                          \
    r.x = hsqrt(a.x);                                                                              \
    r.y = hsqrt(a.y);                                                                              \
    return r;                                                                                      \
  }                                                                                                \
  inline H2 h2rsqrt(H2 a) {                                                                        \
    H2 r;                                                                                          \
    r.x = hrsqrt(a.x);                                                                             \
    r.y = hrsqrt(a.y);                                                                             \
    return r;                                                                                      \
  }
SEQK_EMU_H16_FUNCS(__half, __half2, __half2float, __float2half_rn)
SEQK_EMU_H16_FUNCS(__nv_bfloat16, __nv_bfloat162, __bfloat162float, __float2bfloat16_rn)
#undef SEQK_EMU_H16_FUNCS
inline int __half2int_rn(__half a) { return (int)std::nearbyint(__half2float(a)); }

#endif /* SEQK_EMU_EMU_H */
