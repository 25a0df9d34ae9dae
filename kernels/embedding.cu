/*
 * embedding.cu - seqk_embedding on CUDA tensors: out[n..., :] = table[indices[n...], :].
 *
 * The contract makes an out-of-range index an error that names its position, with nothing
 * written to out. So the op runs in two steps (host/cuda_embedding.c orchestrates them):
 *   1. the range check over the indices: every thread scans its indices in increasing linear
 *      position and, at its first bad one, lowers a 64-bit "first bad position" word in device
 *      scratch with atomicMin (bad indices are rare, so the atomics cost nothing in the good
 *      case); the host copies that word back and waits for it;
 *   2. only if no index was bad, the gather.
 * In DEFERRED mode (seqk_context_set_device_checks) there is no step 1 and no wait: the gather
 * writes a bad index's row as zeros and records the error in the context's check word.
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

namespace {

constexpr int kMaxIdxDims = SEQK_K_LEAD_DIMS;
constexpr int kThreads = 256;

/* The index dims (host-merged, see launchers.h); strides in elements for indices and, once the
   gather picked its unit, in units for out's leading dims. */
struct index_geometry {
  int32_t ndim;
  int64_t shape[kMaxIdxDims];
  int64_t idx_stride[kMaxIdxDims];
  int64_t out_stride[kMaxIdxDims];
};

index_geometry geometry_of(const seqk_k_embedding_params *p) {
  index_geometry g;
  g.ndim = p->ndim;
  for (int d = 0; d < kMaxIdxDims; ++d) {
    g.shape[d] = d < p->ndim ? p->shape[d] : 1;
    g.idx_stride[d] = d < p->ndim ? p->idx_stride[d] : 0;
    g.out_stride[d] = d < p->ndim ? p->out_stride[d] : 0;
  }
  return g;
}

/* Offsets of row-major position i in indices and of its row in out. The loop is unrolled over
   the fixed maximum rank so the geometry is indexed with constants: a kernel-parameter array
   indexed by a variable would be copied to local memory first. */
__device__ __forceinline__ void row_offsets(const index_geometry &g, int64_t i, int64_t *idx_off,
                                            int64_t *out_off) {
  int64_t io = 0, oo = 0;
  SEQK_UNROLL
  for (int d = kMaxIdxDims - 1; d >= 0; --d) {
    if (d >= g.ndim) continue;
    int64_t k = i; /* dim 0: what is left is already < shape[0], no division needed */
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
                                        int64_t row_units, int lanes_log2,
                                        unsigned long long *deferred_bad) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t lanes = (int64_t)1 << lanes_log2;
  const int64_t lane = tid & (lanes - 1);
  const int64_t step = ((int64_t)gridDim.x * blockDim.x) >> lanes_log2;
  for (int64_t row = tid >> lanes_log2; row < n; row += step) {
    int64_t io, oo;
    row_offsets(g, row, &io, &oo);
    const int64_t v = indices[io];
    U *dst = out + oo;
    if (v < 0 || v >= V) {
      /* Waiting mode checked before this launch: kept so that no path can ever read outside the
         table (indices rewritten by another stream in between). Deferred mode: a zero row and
         the error for seqk_context_check, the smallest position winning. */
      if (deferred_bad) {
        for (int64_t u = lane; u < row_units; u += lanes) dst[u * out_col_stride] = U{};
        if (lane == 0) atomicMin(deferred_bad, seqk_kernels::check_word(row, v));
      }
      continue;
    }
    const U *src = table + v * table_row_stride;
    for (int64_t u = lane; u < row_units; u += lanes)
      dst[u * out_col_stride] = src[u * table_col_stride];
  }
}

unsigned grid_for(int64_t threads_needed) {
  return seqk_kernels::grid_blocks(threads_needed, kThreads);
}

template <typename U>
void launch_gather(const seqk_k_embedding_params *p, int64_t per, cudaStream_t stream) {
  const int64_t row_units = p->E / per;
  int lanes_log2 = 0;
  while (lanes_log2 < 5 && ((int64_t)1 << lanes_log2) < row_units) ++lanes_log2;
  index_geometry gu = geometry_of(p); /* out's leading strides in units */
  for (int32_t d = 0; d < gu.ndim; ++d) gu.out_stride[d] /= per;
  const int64_t t_row = p->V > 1 ? p->table_stride[0] / per : 0;
  const int64_t t_col = per > 1 ? 1 : p->table_stride[1];
  const int64_t o_col = per > 1 ? 1 : p->out_col_stride;
  launch(dim3(grid_for(p->n << lanes_log2)), dim3(kThreads), 0, stream, embedding_gather_kernel<U>,
         static_cast<U *>(p->out), static_cast<const U *>(p->table), p->indices, gu, p->n, p->V,
         t_row, t_col, o_col, row_units, lanes_log2, p->deferred_bad);
}

/* Can a unit of `unit` bytes move as one piece, in both table rows and out rows? */
bool unit_fits(size_t unit, const seqk_k_embedding_params *p) {
  const size_t es = p->elem_size;
  if ((uintptr_t)p->table % unit != 0 || (uintptr_t)p->out % unit != 0) return false;
  if (((uint64_t)p->E * es) % unit != 0) return false;
  if (p->table_stride[1] != 1 || p->out_col_stride != 1) return false;
  if (p->V > 1 && ((uint64_t)p->table_stride[0] * es) % unit != 0) return false;
  for (int32_t d = 0; d < p->ndim; ++d)
    if (((uint64_t)p->out_stride[d] * es) % unit != 0) return false;
  return true;
}

}   // namespace

extern "C" cudaError_t seqk_k_embedding_check(const seqk_k_embedding_params *p,
                                              unsigned long long *first_bad, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  /* All ones = "no bad index" (larger than any position). */
  const cudaError_t e = cudaMemsetAsync(first_bad, 0xFF, sizeof *first_bad, stream);
  if (e != cudaSuccess || p->n == 0) return e;
  launch(dim3(grid_for(p->n)), dim3(kThreads), 0, stream, embedding_check_kernel, p->indices,
         geometry_of(p), p->n, p->V, first_bad);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_embedding_gather(const seqk_k_embedding_params *p,
                                               cudaStream_t stream) {
  seqk_kernels::begin_launch();
  /* E == 0 moves nothing, but a deferred check still has indices to look at (rows of 0 units). */
  if (p->n == 0 || (p->E == 0 && !p->deferred_bad)) return cudaSuccess;
  const size_t es = p->elem_size;
  size_t unit = es;
  for (size_t u = 16; u > es; u /= 2)
    if (unit_fits(u, p)) {
      unit = u;
      break;
    }
  const int64_t per = (int64_t)(unit / es);
  switch (unit) {
    case 16: launch_gather<uint4>(p, per, stream); break;
    case 8: launch_gather<uint2>(p, per, stream); break;
    case 4: launch_gather<uint32_t>(p, per, stream); break;
    default: launch_gather<uint16_t>(p, per, stream); break;
  }
  return cudaGetLastError();
}
