/*
 * kv_cache.cu - seqk_kv_cache_append on CUDA tensors: new keys and values copied into a
 * contiguous or paged cache at each sequence's own position (host/cuda_kv_cache.c orchestrates).
 *
 * A contiguous cache is the paged layout with one page per sequence (page b, page_size = S_max),
 * so one kernel serves both. A warp copies one (sequence, new token, kv head) row: the lanes take
 * the row's D key and Dv value elements in turn, as raw bits (the dtypes match; no arithmetic),
 * 64-bit offsets throughout. Whether a sequence's new positions fit (cache_seqlens[b] >= 0, the
 * capacity, the page ids they touch) is decided on the device once per sequence by the check
 * kernel (`fits`, host/ref_kv_cache.c's rule), whose answers the copy and the advance follow:
 * nothing is ever written outside the cache, and a sequence is written whole or not at all.
 * With rotary keys (rope), a second kernel serves the append: the value rows and the unrotated
 * tail of the key rows as raw bits, the rotated pairs through floats (rotary.cuh), and q's rows of
 * the same tokens rotated in place in the same launch (rows past the cache's come from q).
 * For seqk_attention_kv_cache: the lengths kernel (each sequence's length and pages checked once,
 * the fused kernels then read pages below the checked length only) and the gather of a paged
 * cache into contiguous rows for the unfused path.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "rotary.cuh"

#include <limits.h>

namespace {

constexpr int kWarps = 4; /* rows per block */

/* Whether sequence b's S_new new positions fit; its current length in *len. */
__device__ __forceinline__ bool fits(const seqk_k_kv_append_params &p, int64_t b, int64_t *len) {
  const int64_t l = p.seqlens[b * p.len_stride];
  *len = l;
  if (l < 0 || l + p.S_new > p.capacity || l + p.S_new > INT32_MAX) return false;
  if (p.page_table && p.S_new > 0)
    for (int64_t slot = l / p.page_size; slot <= (l + p.S_new - 1) / p.page_size; ++slot) {
      const int64_t id = p.page_table[b * p.pt_stride[0] + slot * p.pt_stride[1]];
      if (id < 0 || id >= p.num_pages) return false;
    }
  return true;
}

/* Grid-stride loops throughout: grid_blocks caps the grid. The check decides each sequence once
   (its page walk is O(S_new / page_size)); the copy and the advance read its answer. */
__global__ void __launch_bounds__(128)
    kv_check_kernel(seqk_k_kv_append_params p, unsigned long long *bad) {
  for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < p.B;
       b += (int64_t)gridDim.x * blockDim.x) {
    int64_t len;
    const bool ok = fits(p, b, &len);
    p.fit[b] = ok;
    if (!ok) atomicMin(bad, seqk_kernels::check_word(b, len));
  }
}

/* Where token s of sequence b goes: its cache position t, the page and the row in it. */
__device__ __forceinline__ void slot_of(const seqk_k_kv_append_params &p, int64_t b, int64_t s,
                                        int64_t *t, int64_t *page, int64_t *at) {
  *t = p.seqlens[b * p.len_stride] + s;
  *page = p.page_table ? p.page_table[b * p.pt_stride[0] + (*t / p.page_size) * p.pt_stride[1]] : b;
  *at = *t % p.page_size;
}

/* The cache rows (k, v) token s of sequence b, head h goes to, and its new rows. */
template <typename E>
__device__ __forceinline__ void row_ptrs(const seqk_k_kv_append_params &p, int64_t b, int64_t s,
                                         int64_t h, int64_t page, int64_t at, E **kd, E **vd,
                                         const E **ks, const E **vs) {
  *kd = static_cast<E *>(p.k_cache) + page * p.kc_stride[0] + at * p.kc_stride[1] +
        h * p.kc_stride[2];
  *vd = static_cast<E *>(p.v_cache) + page * p.vc_stride[0] + at * p.vc_stride[1] +
        h * p.vc_stride[2];
  *ks = static_cast<const E *>(p.k_new) + b * p.kn_stride[0] + s * p.kn_stride[1] +
        h * p.kn_stride[2];
  *vs = static_cast<const E *>(p.v_new) + b * p.vn_stride[0] + s * p.vn_stride[1] +
        h * p.vn_stride[2];
}

template <typename U>
__global__ void __launch_bounds__(kWarps * 32) kv_append_kernel(seqk_k_kv_append_params p) {
  const int lane = (int)(threadIdx.x % 32);
  const int64_t rows = p.B * p.S_new * p.Hk;
  for (int64_t row = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32; row < rows;
       row += (int64_t)gridDim.x * kWarps) {
    const int64_t h = row % p.Hk, s = (row / p.Hk) % p.S_new, b = row / (p.Hk * p.S_new);
    if (!p.fit[b]) continue;
    int64_t t, page, at;
    slot_of(p, b, s, &t, &page, &at);
    U *kd, *vd;
    const U *ks, *vs;
    row_ptrs(p, b, s, h, page, at, &kd, &vd, &ks, &vs);
    for (int64_t d = lane; d < p.D; d += 32) kd[d * p.kc_stride[3]] = ks[d * p.kn_stride[3]];
    for (int64_t d = lane; d < p.Dv; d += 32) vd[d * p.vc_stride[3]] = vs[d * p.vn_stride[3]];
  }
}

/* The rope variant: B*S_new*Hk cache rows (keys rotated, values copied), then B*S_new*H q rows
   rotated in place; a warp per row, lanes over the pairs and then over the rest. */
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) kv_append_rope_kernel(seqk_k_kv_append_params p) {
  const int lane = (int)(threadIdx.x % 32);
  const int64_t kv_rows = p.B * p.S_new * p.Hk, rows = kv_rows + (p.q ? p.B * p.S_new * p.H : 0);
  const int64_t half = p.rotary_dim / 2;
  for (int64_t row = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32; row < rows;
       row += (int64_t)gridDim.x * kWarps) {
    const bool on_q = row >= kv_rows;
    const int64_t r = on_q ? row - kv_rows : row, heads = on_q ? p.H : p.Hk;
    const int64_t h = r % heads, s = (r / heads) % p.S_new, b = r / (heads * p.S_new);
    if (!p.fit[b]) continue;
    int64_t t, page, at;
    slot_of(p, b, s, &t, &page, &at);
    if (on_q) {
      T *q = static_cast<T *>(p.q) + b * p.q_stride[0] + s * p.q_stride[1] + h * p.q_stride[2];
      for (int64_t i = lane; i < half; i += 32)
        seqk_kernels::rotate_pair<T>(q, p.q_stride[3], q, p.q_stride[3], (int32_t)t, i,
                                     p.rotary_dim, p.neox, p.log2_theta);
      continue;
    }
    T *kd, *vd;
    const T *ks, *vs;
    row_ptrs(p, b, s, h, page, at, &kd, &vd, &ks, &vs);
    for (int64_t i = lane; i < half; i += 32)
      seqk_kernels::rotate_pair<T>(ks, p.kn_stride[3], kd, p.kc_stride[3], (int32_t)t, i,
                                   p.rotary_dim, p.neox, p.log2_theta);
    for (int64_t d = p.rotary_dim + lane; d < p.D; d += 32)
      kd[d * p.kc_stride[3]] = ks[d * p.kn_stride[3]];
    for (int64_t d = lane; d < p.Dv; d += 32) vd[d * p.vc_stride[3]] = vs[d * p.vn_stride[3]];
  }
}

/* One block per sequence (grid-stride): the lanes walk its pages, a bad id flags the block. */
__global__ void __launch_bounds__(128)
    kv_lengths_kernel(seqk_k_kv_lengths_params p, unsigned long long *bad) {
  SMEM_ARRAY(int, s_bad_word, 1);
  int &s_bad = s_bad_word[0];
  for (int64_t b = blockIdx.x; b < p.B; b += gridDim.x) {
    const int64_t l = p.seqlens[b * p.len_stride];
    const bool in_range = l >= 0 && l <= p.capacity;
    if (threadIdx.x == 0) s_bad = in_range ? 0 : 1;
    __syncthreads();
    if (in_range && p.page_table) {
      const int64_t pages = (l + p.page_size - 1) / p.page_size;
      for (int64_t slot = threadIdx.x; slot < pages; slot += blockDim.x) {
        const int64_t id = p.page_table[b * p.pt_stride[0] + slot * p.pt_stride[1]];
        if (id < 0 || id >= p.num_pages) atomicOr(&s_bad, 1);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      p.len[b] = s_bad ? 0 : (int32_t)l;
      if (s_bad) atomicMin(bad, seqk_kernels::check_word(b, l));
    }
    __syncthreads(); /* s_bad is reset for the next sequence only after it was read */
  }
}

/* A warp per (sequence, position, head) row. */
template <typename U>
__global__ void __launch_bounds__(kWarps * 32) kv_gather_kernel(seqk_k_kv_gather_params p) {
  const int lane = (int)(threadIdx.x % 32);
  const int64_t rows = p.B * p.S * p.Hk;
  for (int64_t row = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32; row < rows;
       row += (int64_t)gridDim.x * kWarps) {
    const int64_t bt = row / p.Hk, h = row - bt * p.Hk;
    const int64_t b = bt / p.S, t = bt - b * p.S;
    if (t >= p.len[b]) continue;
    const int64_t slot = t / p.page_size, at = t - slot * p.page_size;
    const int64_t page = p.page_table[b * p.pt_stride[0] + slot * p.pt_stride[1]];
    const U *ks =
        static_cast<const U *>(p.k) + page * p.k_stride[0] + at * p.k_stride[1] + h * p.k_stride[2];
    const U *vs =
        static_cast<const U *>(p.v) + page * p.v_stride[0] + at * p.v_stride[1] + h * p.v_stride[2];
    U *kd =
        static_cast<U *>(p.dst_k) + b * p.dk_stride[0] + h * p.dk_stride[1] + t * p.dk_stride[2];
    U *vd =
        static_cast<U *>(p.dst_v) + b * p.dv_stride[0] + h * p.dv_stride[1] + t * p.dv_stride[2];
    for (int64_t d = lane; d < p.D; d += 32) kd[d * p.dk_stride[3]] = ks[d * p.k_stride[3]];
    for (int64_t d = lane; d < p.Dv; d += 32) vd[d * p.dv_stride[3]] = vs[d * p.v_stride[3]];
  }
}

__global__ void __launch_bounds__(128) kv_advance_kernel(seqk_k_kv_append_params p) {
  for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < p.B;
       b += (int64_t)gridDim.x * blockDim.x)
    if (p.fit[b]) p.seqlens[b * p.len_stride] += (int32_t)p.S_new;
}

}   // namespace

extern "C" cudaError_t seqk_k_kv_append_check(const seqk_k_kv_append_params *p,
                                              unsigned long long *bad, int reset_bad,
                                              cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const cudaError_t e = seqk_kernels::reset_check_word(bad, reset_bad, stream);
  if (e != cudaSuccess) return e;
  if (p->B == 0) return cudaSuccess;
  launch(dim3(seqk_kernels::grid_blocks(p->B, 128)), dim3(128), 0, stream, kv_check_kernel, *p,
         bad);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_kv_append(const seqk_k_kv_append_params *p, int advance,
                                        cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t rows = p->B * p->S_new * p->Hk;
  if (p->rope) {
    const int64_t all = rows + (p->q ? p->B * p->S_new * p->H : 0);
    if (all > 0) {
      seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(dim3(seqk_kernels::grid_blocks(all * 32, kWarps * 32)), dim3(kWarps * 32), 0, stream,
               kv_append_rope_kernel<T>, *p);
      });
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) return e;
    }
  } else if (rows > 0 && (p->D > 0 || p->Dv > 0)) {
    const unsigned blocks = seqk_kernels::grid_blocks(rows * 32, kWarps * 32);
    if (p->elem_size == 4)
      launch(dim3(blocks), dim3(kWarps * 32), 0, stream, kv_append_kernel<uint32_t>, *p);
    else
      launch(dim3(blocks), dim3(kWarps * 32), 0, stream, kv_append_kernel<uint16_t>, *p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  /* After the copy (stream order): the copy's rows read the lengths this writes. */
  if (advance && p->B > 0 && p->S_new > 0)
    launch(dim3(seqk_kernels::grid_blocks(p->B, 128)), dim3(128), 0, stream, kv_advance_kernel, *p);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_kv_lengths(const seqk_k_kv_lengths_params *p, unsigned long long *bad,
                                         int reset_bad, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const cudaError_t e = seqk_kernels::reset_check_word(bad, reset_bad, stream);
  if (e != cudaSuccess) return e;
  if (p->B == 0) return cudaSuccess;
  launch(dim3(seqk_kernels::grid_blocks(p->B * 128, 128)), dim3(128), 0, stream, kv_lengths_kernel,
         *p, bad);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_kv_gather(const seqk_k_kv_gather_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t rows = p->B * p->S * p->Hk;
  if (rows == 0) return cudaSuccess;
  const unsigned blocks = seqk_kernels::grid_blocks(rows * 32, kWarps * 32);
  if (p->elem_size == 4)
    launch(dim3(blocks), dim3(kWarps * 32), 0, stream, kv_gather_kernel<uint32_t>, *p);
  else
    launch(dim3(blocks), dim3(kWarps * 32), 0, stream, kv_gather_kernel<uint16_t>, *p);
  return cudaGetLastError();
}
