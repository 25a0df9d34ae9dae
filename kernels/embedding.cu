/*
 * embedding.cu - seqk_embedding on CUDA tensors: out[n..., :] = table[indices[n...], :].
 *
 * The contract makes an out-of-range index an error that names its position, with nothing
 * written to out. So the op runs in two steps:
 *   1. a range check over the indices: every thread scans its indices in increasing linear
 *      position and, at its first bad one, lowers a 64-bit "first bad position" in the context's
 *      workspace with atomicMin (bad indices are rare, so the atomics cost nothing in the good
 *      case); that one word is copied back and the stream is synchronised;
 *   2. only if no index was bad, the gather.
 * The synchronous copy in between is the price of the contract: whether out may be written at
 * all depends on data that lives on the device, and the error must be returned by this call.
 * (A gather that clamped, or that raised the error asynchronously, would not need it.)
 *
 * Gather: a group of G lanes (G a power of two up to 32, matched to the row length) copies one
 * row, so short rows do not leave most of a warp idle and long rows are read by a whole warp
 * in consecutive units. Like the heads permutation, a gather does no arithmetic: it moves raw
 * bits in units of 16, 8 or 4 bytes where both table rows and out rows allow it (contiguous
 * last dim, row length and row strides multiples of the unit, aligned pointers), else in
 * elements with any strides. Four instantiations serve every dtype.
 */
#include "cuda_compat.cuh"
#include "common.cuh"

#include "device.h"
#include "internal.h"
#include "launchers.h"

#include <stdio.h>
#include <string.h>


namespace {

constexpr int kMaxIdxDims = SEQK_MAX_DIMS - 1;
constexpr int kThreads = 256;

/* The index dims after dropping size-1 dims and merging dims that are contiguous in both
   indices and out (a contiguous [B,S] batch becomes one dim). Strides in elements for indices
   and in units for out's leading dims. */
struct index_geometry {
  int32_t ndim;
  int64_t shape[kMaxIdxDims];
  int64_t idx_stride[kMaxIdxDims];
  int64_t out_stride[kMaxIdxDims];
};

/* Offsets of row-major position i in indices and of its row in out. The loop is unrolled over
   the fixed maximum rank so the geometry is indexed with constants: a kernel-parameter array
   indexed by a variable would be copied to local memory first. */
__device__ __forceinline__ void row_offsets(const index_geometry &g, int64_t i, int64_t *idx_off,
                                            int64_t *out_off) {
  int64_t io = 0, oo = 0;
SEQK_UNROLL
  for (int d = kMaxIdxDims - 1; d >= 0; --d) {
    if (d >= g.ndim) continue;
    int64_t k = i;   /* dim 0: what is left is already < shape[0], no division needed */
    if (d > 0) {
      k = i % g.shape[d];
      i /= g.shape[d];
    }
    io += k * g.idx_stride[d];
    oo += k * g.out_stride[d];
  }
  *idx_off = io;
  *out_off = oo;
}

__global__ void embedding_check_kernel(const int32_t *__restrict__ indices, index_geometry g,
                                       int64_t n, int64_t V, unsigned long long *first_bad) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t io, oo;
    row_offsets(g, i, &io, &oo);
    const int64_t v = indices[io];
    if (v < 0 || v >= V) {
      /* This thread's later positions are larger: its first bad one is all that can matter. */
      atomicMin(first_bad, (unsigned long long)i);
      return;
    }
  }
}

template <typename U>
__global__ void embedding_gather_kernel(U *__restrict__ out, const U *__restrict__ table,
                                        const int32_t *__restrict__ indices, index_geometry g,
                                        int64_t n, int64_t V, int64_t table_row_stride,
                                        int64_t table_col_stride, int64_t out_col_stride,
                                        int64_t row_units, int lanes_log2) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t lanes = (int64_t)1 << lanes_log2;
  const int64_t lane = tid & (lanes - 1);
  const int64_t step = ((int64_t)gridDim.x * blockDim.x) >> lanes_log2;
  for (int64_t row = tid >> lanes_log2; row < n; row += step) {
    int64_t io, oo;
    row_offsets(g, row, &io, &oo);
    const int64_t v = indices[io];
    /* Checked before this launch; kept so that no path can ever read outside the table (e.g.
       indices rewritten by another stream in between). */
    if (v < 0 || v >= V) continue;
    const U *src = table + v * table_row_stride;
    U *dst = out + oo;
    for (int64_t u = lane; u < row_units; u += lanes) dst[u * out_col_stride] = src[u * table_col_stride];
  }
}

/* Drops size-1 dims and merges neighbours that are contiguous in both indices and out. */
index_geometry make_geometry(const seqk_tensor *indices, const seqk_tensor *out) {
  index_geometry g;
  g.ndim = 0;
  for (int32_t d = 0; d < indices->ndim; ++d) {
    const int64_t n = indices->shape[d];
    if (n == 1) continue;
    if (g.ndim > 0) {
      const int32_t p = g.ndim - 1;
      if (g.idx_stride[p] == indices->stride[d] * n && g.out_stride[p] == out->stride[d] * n) {
        g.shape[p] *= n;
        g.idx_stride[p] = indices->stride[d];
        g.out_stride[p] = out->stride[d];
        continue;
      }
    }
    g.shape[g.ndim] = n;
    g.idx_stride[g.ndim] = indices->stride[d];
    g.out_stride[g.ndim] = out->stride[d];
    ++g.ndim;
  }
  return g;
}

/* "[i0,i1,...]" for row-major position n of t's shape, "" for a 0-d t (as the CPU reference). */
void format_position(char *buf, size_t size, const seqk_tensor *t, int64_t n) {
  int64_t idx[SEQK_MAX_DIMS];
  buf[0] = '\0';
  if (t->ndim == 0) return;
  for (int32_t d = t->ndim - 1; d >= 0; --d) {
    idx[d] = n % t->shape[d];
    n /= t->shape[d];
  }
  size_t len = (size_t)snprintf(buf, size, "[");
  for (int32_t d = 0; d < t->ndim && len < size; ++d)
    len += (size_t)snprintf(buf + len, size - len, d ? ",%lld" : "%lld", (long long)idx[d]);
  if (len < size) snprintf(buf + len, size - len, "]");
}


int64_t grid_for(int64_t threads_needed) {
  int64_t blocks = (threads_needed + kThreads - 1) / kThreads;
  /* Enough blocks to fill any current GPU many times over; grid-stride loops do the rest. */
  return blocks > 65535 ? 65535 : blocks;
}

/* Step 1: INVALID_VALUE naming the first bad position, or SUCCESS. Synchronises the stream. */
seqk_status check_range(seqk_context_t ctx, const seqk_tensor *indices, const index_geometry &g,
                        int64_t n, int64_t V) {
  static const char op[] = "embedding";
  void *ws = NULL;
  SEQK_TRY(seqk__workspace(ctx, op, sizeof(unsigned long long), &ws));
  unsigned long long *first_bad = static_cast<unsigned long long *>(ws);
  (void)cudaGetLastError();   /* an earlier, unrelated error must not be blamed on this call */
  /* All ones = "no bad index" (larger than any position). */
  cudaMemsetAsync(first_bad, 0xFF, sizeof *first_bad, (cudaStream_t)ctx->stream);
  SEQK_TRY(seqk_kernels::launch_status(ctx, "embedding", "range-check clear"));
  launch(dim3((unsigned)grid_for(n)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
         embedding_check_kernel, static_cast<const int32_t *>(indices->data), g, n, V, first_bad);
  SEQK_TRY(seqk_kernels::launch_status(ctx, "embedding", "range-check"));

  unsigned long long found = 0;
  SEQK_TRY(seqk__device_memcpy(ctx, op, &found, first_bad, sizeof found, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  if (found == ~0ull) return SEQK_STATUS_SUCCESS;

  /* The error path only: fetch the offending value for the message. */
  const int64_t pos = (int64_t)found;
  int32_t value = 0;
  const int32_t *at = static_cast<const int32_t *>(indices->data) + seqk__offset_of_linear(indices, pos);
  SEQK_TRY(seqk__device_memcpy(ctx, op, &value, at, sizeof value, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  char where[SEQK_MAX_DIMS * 22 + 3];
  format_position(where, sizeof where, indices, pos);
  return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "embedding: indices%s=%d out of range [0, %lld)",
                    where, (int)value, (long long)V);
}

template <typename U>
void launch_gather(seqk_context_t ctx, const seqk_tensor *indices, const seqk_tensor *table,
                   const seqk_tensor *out, const index_geometry &g, int64_t n, int64_t per) {
  const int32_t e_dim = indices->ndim;
  const int64_t E = table->shape[1], V = table->shape[0];
  const int64_t row_units = E / per;
  int lanes_log2 = 0;
  while (lanes_log2 < 5 && ((int64_t)1 << lanes_log2) < row_units) ++lanes_log2;
  index_geometry gu = g;   /* out's leading strides in units */
  for (int32_t d = 0; d < gu.ndim; ++d) gu.out_stride[d] /= per;
  const int64_t t_row = V > 1 ? table->stride[0] / per : 0;
  const int64_t t_col = per > 1 ? 1 : table->stride[1];
  const int64_t o_col = per > 1 ? 1 : out->stride[e_dim];
  launch(dim3((unsigned)grid_for(n << lanes_log2)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
         embedding_gather_kernel<U>, static_cast<U *>(out->data),
         static_cast<const U *>(table->data), static_cast<const int32_t *>(indices->data), gu, n,
         V, t_row, t_col, o_col, row_units, lanes_log2);
}

/* Can a unit of `unit` bytes move as one piece, in both table rows and out rows? */
bool unit_fits(size_t unit, size_t es, const seqk_tensor *table, const seqk_tensor *out,
               const index_geometry &g) {
  const int64_t E = table->shape[1];
  const int32_t e_dim = out->ndim - 1;
  if ((uintptr_t)table->data % unit != 0 || (uintptr_t)out->data % unit != 0) return false;
  if (((uint64_t)E * es) % unit != 0) return false;
  if (table->stride[1] != 1 || out->stride[e_dim] != 1) return false;
  if (table->shape[0] > 1 && ((uint64_t)table->stride[0] * es) % unit != 0) return false;
  for (int32_t d = 0; d < g.ndim; ++d)
    if (((uint64_t)g.out_stride[d] * es) % unit != 0) return false;
  return true;
}

}  // namespace

extern "C" seqk_status seqk__cuda_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                            const seqk_tensor *table, const seqk_tensor *out) {
  SEQK_TRY(seqk__require_device(ctx, "embedding"));
  const int64_t n = seqk__numel(indices);
  if (n == 0) return SEQK_STATUS_SUCCESS;
  const index_geometry g = make_geometry(indices, out);
  const int64_t V = table->shape[0], E = table->shape[1];
  /* Even with E == 0 (nothing to copy) a bad index is an error, as on the CPU. */
  SEQK_TRY(check_range(ctx, indices, g, n, V));
  if (E == 0) return SEQK_STATUS_SUCCESS;

  const size_t es = seqk_dtype_size(table->dtype);
  size_t unit = es;
  for (size_t u = 16; u > es; u /= 2)
    if (unit_fits(u, es, table, out, g)) {
      unit = u;
      break;
    }
  const int64_t per = (int64_t)(unit / es);
  (void)cudaGetLastError();
  switch (unit) {
    case 16: launch_gather<uint4>(ctx, indices, table, out, g, n, per); break;
    case 8: launch_gather<uint2>(ctx, indices, table, out, g, n, per); break;
    case 4: launch_gather<uint32_t>(ctx, indices, table, out, g, n, per); break;
    default: launch_gather<uint16_t>(ctx, indices, table, out, g, n, per); break;
  }
  return seqk_kernels::launch_status(ctx, "embedding", "gather");
}
