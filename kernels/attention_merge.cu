/*
 * attention_merge.cu - seqk_attention_merge on CUDA tensors: per row,
 *   o = (e^lse_a o_a + e^lse_b o_b) / (e^lse_a + e^lse_b),  lse = log(e^lse_a + e^lse_b),
 * with the CPU reference's semantics exactly (host/ref_attention.c):
 *   - an lse of +inf or -inf marks an empty part whose o is never read; both empty gives o = 0
 *     and lse = +inf; one empty copies the other part unchanged (bit for bit in its dtype);
 *   - otherwise both weights are taken relative to the larger lse (one of them is exactly 1,
 *     nothing overflows) and a NaN lse propagates to the whole row;
 *   - o may alias o_a or o_b exactly and lse may alias lse_a or lse_b exactly.
 * fp32 math throughout (the reference uses double; the tests allow for the difference).
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

#include "device.h"
#include "internal.h"
#include "launchers.h"

#include <math.h>


namespace {

constexpr int kThreads = 256;
constexpr int kRowDims = SEQK_MAX_DIMS - 1;
enum { OA, OB, O, LA, LB, L, kTensors };

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

__device__ __forceinline__ bool is_inf(float x) { return fabsf(x) == INFINITY; }

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
        int64_t k = r;   /* dim 0: what is left is already < shape[0] */
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

    const bool empty_a = is_inf(la), empty_b = is_inf(lb);
    float wa, wb, out_lse;
    if (empty_a && empty_b) {
      wa = wb = 0.0f;
      out_lse = INFINITY;
    } else if (empty_a || empty_b) {
      wa = empty_a ? 0.0f : 1.0f;
      wb = empty_a ? 1.0f : 0.0f;
      out_lse = empty_a ? lb : la;
    } else {
      const float m = la > lb ? la : lb;
      const float ea = expf(la - m), eb = expf(lb - m), w = ea + eb;
      /* One division per row; the per-element work is then two multiply-adds. */
      wa = ea / w;
      wb = eb / w;
      out_lse = m + logf(w);
    }

    const T *pa = o_a + off[OA], *pb = o_b + off[OB];
    T *po = o + off[O];
    for (int64_t u = sub; u < units; u += lanes) {
      float va[VEC] = {}, vb[VEC] = {}, vo[VEC];
      /* An empty part's o is not read at all: it may hold garbage (NaN) that must not leak. */
      if (!empty_a) load_vec<T, VEC>(pa + u * col_a, va);
      if (!empty_b) load_vec<T, VEC>(pb + u * col_b, vb);
SEQK_UNROLL
      for (int k = 0; k < VEC; ++k) {
        if (empty_a && empty_b) vo[k] = 0.0f;
        else if (empty_a) vo[k] = vb[k];
        else if (empty_b) vo[k] = va[k];
        else vo[k] = wa * va[k] + wb * vb[k];
      }
      store_vec<T, VEC>(po + u * col_o, vo);
    }
    if (sub == 0 && lse) lse[off[L]] = out_lse;
  }
}

template <typename T, int VEC>
void launch_merge(seqk_context_t ctx, const seqk_tensor *o_a, const seqk_tensor *lse_a,
                  const seqk_tensor *o_b, const seqk_tensor *lse_b, const seqk_tensor *o,
                  const seqk_tensor *lse, const row_geometry &g, int64_t rows) {
  const int32_t last = o->ndim - 1;
  const int64_t units = o->shape[last] / VEC;
  int lanes_log2 = 0;
  while (lanes_log2 < 5 && ((int64_t)1 << lanes_log2) < units) ++lanes_log2;
  const int64_t rows_per_block = (kThreads / 32) * (32 >> lanes_log2);
  int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  if (blocks > 65535) blocks = 65535;   /* the warp loop covers the rest */
  launch(dim3((unsigned)blocks), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
         attention_merge_kernel<T, VEC>, static_cast<const T *>(o_a->data),
         static_cast<const float *>(lse_a->data), static_cast<const T *>(o_b->data),
         static_cast<const float *>(lse_b->data), static_cast<T *>(o->data),
         lse ? static_cast<float *>(lse->data) : static_cast<float *>(nullptr), g, rows, units,
         VEC > 1 ? (int64_t)VEC : o_a->stride[last], VEC > 1 ? (int64_t)VEC : o_b->stride[last],
         VEC > 1 ? (int64_t)VEC : o->stride[last], lanes_log2);
}

template <typename T>
void dispatch_vec(seqk_context_t ctx, const seqk_tensor *o_a, const seqk_tensor *lse_a,
                  const seqk_tensor *o_b, const seqk_tensor *lse_b, const seqk_tensor *o,
                  const seqk_tensor *lse, row_geometry g, int64_t rows) {
  constexpr int VEC = 16 / sizeof(T);
  const int32_t last = o->ndim - 1;
  const seqk_tensor *os[3] = {o_a, o_b, o};
  bool vec = o->shape[last] % VEC == 0;
  for (int t = 0; t < 3 && vec; ++t) {
    vec = (uintptr_t)os[t]->data % 16 == 0 && os[t]->stride[last] == 1;
    for (int32_t d = 0; d < g.ndim && vec; ++d) vec = g.stride[t][d] % VEC == 0;
  }
  if (vec) {
    launch_merge<T, VEC>(ctx, o_a, lse_a, o_b, lse_b, o, lse, g, rows);
  } else {
    launch_merge<T, 1>(ctx, o_a, lse_a, o_b, lse_b, o, lse, g, rows);
  }
}

}  // namespace

extern "C" seqk_status seqk__cuda_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                                  const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                                  const seqk_tensor *lse_b, const seqk_tensor *o,
                                                  const seqk_tensor *lse) {
  SEQK_TRY(seqk__require_device(ctx, "attention_merge"));
  if (lse && !lse->data) lse = NULL;
  const seqk_tensor *ts[kTensors] = {o_a, o_b, o, lse_a, lse_b, lse};
  const int32_t lead = o->ndim - 1;
  if (seqk__numel(o) == 0 && !lse) return SEQK_STATUS_SUCCESS;
  int64_t rows = 1;
  for (int32_t d = 0; d < lead; ++d) rows *= o->shape[d];
  if (rows == 0) return SEQK_STATUS_SUCCESS;

  row_geometry g;
  g.ndim = 0;
  for (int32_t d = 0; d < lead; ++d) {
    const int64_t n = o->shape[d];
    if (n == 1) continue;
    bool merge = g.ndim > 0;
    for (int t = 0; t < kTensors && merge; ++t)
      if (ts[t]) merge = g.stride[t][g.ndim - 1] == ts[t]->stride[d] * n;
    const int32_t at = merge ? g.ndim - 1 : g.ndim;
    g.shape[at] = merge ? g.shape[at] * n : n;
    for (int t = 0; t < kTensors; ++t) g.stride[t][at] = ts[t] ? ts[t]->stride[d] : 0;
    if (!merge) ++g.ndim;
  }

  (void)cudaGetLastError();   /* an earlier, unrelated error must not be blamed on this launch */
  switch (o->dtype) {
    case SEQK_DTYPE_F32: dispatch_vec<float>(ctx, o_a, lse_a, o_b, lse_b, o, lse, g, rows); break;
    case SEQK_DTYPE_F16: dispatch_vec<__half>(ctx, o_a, lse_a, o_b, lse_b, o, lse, g, rows); break;
    case SEQK_DTYPE_BF16:
      dispatch_vec<__nv_bfloat16>(ctx, o_a, lse_a, o_b, lse_b, o, lse, g, rows);
      break;
    default:
      return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                        "attention_merge: o dtype %d is not a float dtype (validation missed it)",
                        (int)o->dtype);
  }
  return seqk_kernels::launch_status(ctx, "attention_merge", "merge");
}
