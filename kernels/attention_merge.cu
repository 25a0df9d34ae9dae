/*
 * attention_merge.cu - seqk_attention_merge on CUDA tensors: per row,
 *   o = (e^lse_a o_a + e^lse_b o_b) / (e^lse_a + e^lse_b),  lse = log(e^lse_a + e^lse_b),
 * by merge.cuh's rule (shared with the split-KV combine; the CPU reference, host/ref_attention.c,
 * follows the same rule in double): an lse of +-inf marks an empty part whose o is never read;
 * both empty gives o = 0 and lse = +inf; one empty copies the other part unchanged (its weight is
 * exactly 1); a NaN lse propagates to the whole row. o may alias o_a or o_b exactly and lse may
 * alias lse_a or lse_b exactly.
 *
 * Work split: a group of G lanes (G a power of two up to 32, matched to Dv) owns a row. Lane 0
 * of the group alone reads the row's two lse values, hands them to the group with a shuffle
 * and alone writes the merged lse: with lse aliasing lse_a, the only thread that writes an lse
 * element is the one that read it, so no ordering between threads is needed. Each o element is
 * likewise read and then written by one thread, which is what makes o == o_a safe. (No
 * __restrict__ on o, o_a, o_b, lse: they may alias.)
 * Rows are dealt out per warp (all 32 lanes take the same trips through the row loop), so every
 * shuffle has the full-warp mask and no lane has left early.
 * Vector width: 16-byte loads/stores of o_a, o_b and o when all three have a contiguous last
 * dim, Dv and every row stride a multiple of the vector, and 16-byte aligned pointers; otherwise
 * one element at a time with any strides.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "merge.cuh"

#include <math.h>

namespace {

constexpr int kThreads = 256;
constexpr int kRowDims = SEQK_K_LEAD_DIMS;
enum {
  OA = SEQK_K_MERGE_OA,
  OB = SEQK_K_MERGE_OB,
  O = SEQK_K_MERGE_O,
  LA = SEQK_K_MERGE_LA,
  LB = SEQK_K_MERGE_LB,
  L = SEQK_K_MERGE_L,
  kTensors = SEQK_K_MERGE_TENSORS
};

/* The row dims (o's shape without the last dim) after dropping size-1 dims and merging dims that
   are contiguous in all six tensors, with each tensor's strides in elements. */
struct row_geometry {
  int32_t ndim;
  int64_t shape[kRowDims];
  int64_t stride[kTensors][kRowDims];
};

using seqk_kernels::from_float;
using seqk_kernels::to_float;

/* VEC elements of T as one aligned piece (16 bytes when VEC > 1). */
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) vec_t {
  T v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ void load_vec(const T *p, float out[VEC]) {
  const vec_t<T, VEC> x = *reinterpret_cast<const vec_t<T, VEC> *>(p);
  SEQK_UNROLL
  for (int k = 0; k < VEC; ++k) out[k] = to_float(x.v[k]);
}

template <typename T, int VEC>
__device__ __forceinline__ void store_vec(T *p, const float in[VEC]) {
  vec_t<T, VEC> x;
  SEQK_UNROLL
  for (int k = 0; k < VEC; ++k) x.v[k] = from_float<T>(in[k]);
  *reinterpret_cast<vec_t<T, VEC> *>(p) = x;
}

/* units: Dv / VEC; col_*: elements from one unit to the next (VEC when vectorised, else the
   last dim's stride). All offsets are in elements. */
template <typename T, int VEC>
__global__ void attention_merge_kernel(const T *o_a, const float *lse_a, const T *o_b,
                                       const float *lse_b, T *o, float *lse, row_geometry g,
                                       int64_t rows, int64_t units, int64_t col_a, int64_t col_b,
                                       int64_t col_o, int lanes_log2) {
  const unsigned full = 0xffffffffu;
  const int lanes = 1 << lanes_log2;
  const int lane = (int)(threadIdx.x & 31), sub = lane & (lanes - 1);
  const int rows_per_warp = 32 >> lanes_log2;
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t base = warp * rows_per_warp; base < rows; base += warps * rows_per_warp) {
    const int64_t row = base + (lane >> lanes_log2);
    const bool valid = row < rows;
    int64_t off[kTensors] = {0, 0, 0, 0, 0, 0};
    if (valid) {
      /* Unrolled over the fixed maximum rank so the geometry is indexed with constants (a
         parameter array indexed by a variable would be copied to local memory first). */
      int64_t r = row;
      SEQK_UNROLL
      for (int d = kRowDims - 1; d >= 0; --d) {
        if (d >= g.ndim) continue;
        int64_t k = r; /* dim 0: what is left is already < shape[0] */
        if (d > 0) {
          k = r % g.shape[d];
          r /= g.shape[d];
        }
        SEQK_UNROLL
        for (int t = 0; t < kTensors; ++t) off[t] += k * g.stride[t][d];
      }
    }
    float la = 0.0f, lb = 0.0f;
    if (valid && sub == 0) {
      la = lse_a[off[LA]];
      lb = lse_b[off[LB]];
    }
    /* Every lane of the warp is here (the loop bound is warp-uniform). */
    la = __shfl_sync(full, la, 0, lanes);
    lb = __shfl_sync(full, lb, 0, lanes);
    if (!valid) continue;

    using namespace seqk_merge;
    const bool empty_a = empty_part(la), empty_b = empty_part(lb);
    const float m = merge_max(merge_max(-INFINITY, la), lb);
    const float ea = part_weight(la, m), eb = part_weight(lb, m), w = ea + eb;
    /* One division per row; the per-element work is then two multiply-adds. */
    const float wa = ea / w, wb = eb / w;
    const float out_lse = merged_lse(m, w);

    const T *pa = o_a + off[OA], *pb = o_b + off[OB];
    T *po = o + off[O];
    for (int64_t u = sub; u < units; u += lanes) {
      float va[VEC] = {}, vb[VEC] = {}, vo[VEC];
      /* An empty part's o is not read at all: it may hold garbage (NaN) that must not leak. */
      if (!empty_a) load_vec<T, VEC>(pa + u * col_a, va);
      if (!empty_b) load_vec<T, VEC>(pb + u * col_b, vb);
      SEQK_UNROLL
      for (int k = 0; k < VEC; ++k) {
        /* A lone part is copied as it is (its weight is exactly 1: -0 and NaN payloads kept),
           unless its lse is NaN, which makes the row NaN. */
        if (empty_a && empty_b)
          vo[k] = 0.0f;
        else if (empty_a)
          vo[k] = isnan(lb) ? NAN : vb[k];
        else if (empty_b)
          vo[k] = isnan(la) ? NAN : va[k];
        else
          vo[k] = wa * va[k] + wb * vb[k];
      }
      store_vec<T, VEC>(po + u * col_o, vo);
    }
    if (sub == 0 && lse) lse[off[L]] = out_lse;
  }
}

template <typename T, int VEC>
void launch_merge(const seqk_k_merge_params *p, const row_geometry &g, cudaStream_t stream) {
  const int64_t units = p->Dv / VEC;
  int lanes_log2 = 0;
  while (lanes_log2 < 5 && ((int64_t)1 << lanes_log2) < units) ++lanes_log2;
  const int64_t rows_per_block = (kThreads / 32) * (32 >> lanes_log2);
  launch(dim3(seqk_kernels::grid_blocks(p->rows, rows_per_block)), dim3(kThreads), 0, stream,
         attention_merge_kernel<T, VEC>, static_cast<const T *>(p->o_a), p->lse_a,
         static_cast<const T *>(p->o_b), p->lse_b, static_cast<T *>(p->o), p->lse, g, p->rows,
         units, VEC > 1 ? (int64_t)VEC : p->col_stride[0],
         VEC > 1 ? (int64_t)VEC : p->col_stride[1], VEC > 1 ? (int64_t)VEC : p->col_stride[2],
         lanes_log2);
}

/* 16-byte vectors when o_a, o_b and o all have a contiguous last dim, Dv and every row stride a
   multiple of the vector, and 16-byte aligned pointers. */
template <typename T>
void dispatch_vec(const seqk_k_merge_params *p, const row_geometry &g, cudaStream_t stream) {
  constexpr int VEC = 16 / sizeof(T);
  const void *os[3] = {p->o_a, p->o_b, p->o};
  bool vec = p->Dv % VEC == 0;
  for (int t = 0; t < 3 && vec; ++t) {
    vec = (uintptr_t)os[t] % 16 == 0 && p->col_stride[t] == 1;
    for (int32_t d = 0; d < g.ndim && vec; ++d) vec = g.stride[t][d] % VEC == 0;
  }
  if (vec)
    launch_merge<T, VEC>(p, g, stream);
  else
    launch_merge<T, 1>(p, g, stream);
}

}   // namespace

extern "C" cudaError_t seqk_k_attention_merge(const seqk_k_merge_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->rows == 0) return cudaSuccess;
  row_geometry g;
  g.ndim = p->ndim;
  for (int d = 0; d < kRowDims; ++d) {
    g.shape[d] = d < p->ndim ? p->shape[d] : 1;
    for (int t = 0; t < kTensors; ++t) g.stride[t][d] = d < p->ndim ? p->stride[t][d] : 0;
  }
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) { dispatch_vec<decltype(tag)>(p, g, stream); });
  return cudaGetLastError();
}
