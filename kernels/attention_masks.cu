/*
 * attention_masks.cu - the masks of the unfused attention path (scores -> softmax -> values):
 * causal_mask writes -inf on the masked triangle of a scores tensor (seqk_attention_scores with
 * causal set), copy_valid_keys copies v with the keys past each batch's length zeroed (the P V
 * product would otherwise multiply a padded key's garbage, possibly NaN, by 0), and
 * attention_repair recomputes, after P v, the rare rows that a masked key's NaN or inf reached
 * through a zero weight; key_mask writes -inf on the scores of the keys a key padding mask marks
 * (nn.MultiheadAttention's key_padding_mask); score_mod applies the scale, the softcap and a
 * sliding window's left edge to the fp32 scores before the softmax.
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"
#include "visible_keys.cuh"

#include <math.h>

namespace {

using seqk_kernels::from_float;
using seqk_kernels::to_float;

constexpr int kThreads = 256;

/* A warp per score row writes the row's masked tail j in (i + Sk - Sq, Sk) and nothing else:
   lanes on consecutive keys (coalesced for a row-major s); for causal Sq == Sk that is half the
   matrix written once, and no thread reads s. */
template <typename T>
__global__ void causal_mask_kernel(T *__restrict__ s, seqk_k_causal_mask_params g) {
  const T neg_inf = from_float<T>(-INFINITY);
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t step = (int64_t)gridDim.x * warps_per_block;
  for (int64_t row = (int64_t)blockIdx.x * warps_per_block + threadIdx.x / 32; row < g.rows;
       row += step) {
    const int64_t i = row % g.Sq, bh = row / g.Sq;
    int64_t j0 = i + g.Sk - g.Sq + 1;
    if (j0 < 0) j0 = 0;
    T *r = s + (bh / g.H) * g.stride[0] + (bh % g.H) * g.stride[1] + i * g.stride[2];
    for (int64_t j = j0 + lane; j < g.Sk; j += 32) r[j * g.stride[3]] = neg_inf;
  }
}

/* One thread per score, in s order; a score whose key is marked becomes -inf, the others are not
   written (each thread reads the mask word of its key: L1 hits along a row). */
__global__ void key_mask_kernel(float *__restrict__ s, const int32_t *__restrict__ mask,
                                seqk_k_key_mask_params g) {
  const int64_t per_batch = g.H * g.Sq * g.Sk;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += step) {
    const int64_t j = i % g.Sk, b = i / per_batch;
    if (mask[b * g.mask_stride[0] + j * g.mask_stride[1]] != 0) s[i] = -INFINITY;
  }
}

/* One thread per score, in s order: s = scale * s, capped (softcap * tanh(s / softcap), fp32
   tanhf), the ALiBi term added, -inf before the row's first visible key. The softmax that follows
   runs with scale 1. */
__global__ void score_mod_kernel(float *__restrict__ s, seqk_k_score_mod_params g) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t x = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; x < g.n; x += step) {
    const int64_t j = x % g.Sk, row = x / g.Sk;
    const int64_t i = row % g.Sq, b = row / (g.Sq * g.H);
    float t = s[x] * g.scale;
    if (g.softcap > 0.0f) t = g.softcap * tanhf(t / g.softcap);
    const seqk_kernels::key_span ks =
        seqk_kernels::visible_keys(i, b, g.Sq, g.Sk, g.seqlens_q, g.seqlens_k, g.left, -1);
    if (g.alibi_slopes) {
      const int64_t d = ks.at - j;
      t -= g.alibi_slopes[(row / g.Sq) % g.H] * (float)(d < 0 ? -d : d);
    }
    if (g.left >= 0 && j < ks.begin) t = -INFINITY;
    s[x] = t;
  }
}

/* One thread per element in dst order: coalesced stores, and coalesced loads when v's last dim
   is contiguous (attention requires it). A padded key is never read. */
template <typename T>
__global__ void copy_valid_keys_kernel(T *__restrict__ dst, const T *__restrict__ src,
                                       seqk_k_valid_keys_params g) {
  const T zero = from_float<T>(0.0f);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += step) {
    const int64_t e = i % g.Dv, t = i / g.Dv;
    const int64_t j = t % g.Sk, bh = t / g.Sk;
    const int64_t h = bh % g.Hk, b = bh / g.Hk;
    dst[i] =
        j < g.seqlens_k[b]
            ? src[b * g.v_stride[0] + h * g.v_stride[1] + j * g.v_stride[2] + e * g.v_stride[3]]
            : zero;
  }
}

/* A warp per row of o: the row's visible keys as the softmax counts them (visible_keys.cuh); a
   row that sees every key is left alone. Otherwise, when a lane finds a non-finite value in the
   row, the warp recomputes it as sum over visible j of P[j] v[j] in fp32. */
template <typename T>
__global__ void attention_repair_kernel(seqk_k_attention_repair_params a) {
  const T *p = static_cast<const T *>(a.p), *v = static_cast<const T *>(a.v);
  T *o = static_cast<T *>(a.o);
  const int lane = threadIdx.x % 32;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
  const int64_t rows = a.B * a.H * a.Sq, group = a.Hk > 0 ? a.H / a.Hk : 1;
  for (int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; row < rows;
       row += warps) {
    const int64_t i = row % a.Sq, bh = row / a.Sq, h = bh % a.H, b = bh / a.H;
    const seqk_kernels::key_span vis =
        seqk_kernels::visible_keys(i, b, a.Sq, a.Sk, a.seqlens_q, a.seqlens_k, a.left, a.right);
    /* warp-uniform: every key in the product (keys past seqlens_k were zeroed in v's copy; a
       row that sees all valid keys and is non-finite comes out the same when recomputed). */
    if (vis.begin == 0 && vis.end >= a.Sk) continue;
    T *orow = o + b * a.o_stride[0] + h * a.o_stride[1] + i * a.o_stride[2];
    int bad = 0;
    for (int64_t d = lane; d < a.Dv; d += 32) bad |= !isfinite(to_float(orow[d * a.o_stride[3]]));
    if (!__any_sync(0xffffffffu, bad)) continue;
    const T *prow = p + b * a.p_stride[0] + h * a.p_stride[1] + i * a.p_stride[2];
    const T *vb = v + b * a.v_stride[0] + (h / group) * a.v_stride[1];
    for (int64_t d = lane; d < a.Dv; d += 32) {
      float acc = 0.0f;
      for (int64_t j = vis.begin; j < vis.end; ++j)
        acc +=
            to_float(prow[j * a.p_stride[3]]) * to_float(vb[j * a.v_stride[2] + d * a.v_stride[3]]);
      orow[d * a.o_stride[3]] = from_float<T>(acc);
    }
  }
}

}   // namespace

extern "C" cudaError_t seqk_k_causal_mask(const seqk_k_causal_mask_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->rows == 0 || p->Sk == 0) return cudaSuccess;
  constexpr int warps_per_block = kThreads / 32;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(p->rows, warps_per_block)), dim3(kThreads), 0, stream,
           causal_mask_kernel<T>, static_cast<T *>(p->s), *p);
  });
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_copy_valid_keys(const seqk_k_valid_keys_params *p,
                                              cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
           copy_valid_keys_kernel<T>, static_cast<T *>(p->dst), static_cast<const T *>(p->v), *p);
  });
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_attention_repair(const seqk_k_attention_repair_params *p,
                                               cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t rows = p->B * p->H * p->Sq;
  if (rows == 0 || p->Dv == 0) return cudaSuccess;
  constexpr int warps_per_block = kThreads / 32;
  seqk_kernels::by_dtype(p->dtype, [&](auto tag) {
    launch(dim3(seqk_kernels::grid_blocks(rows, warps_per_block)), dim3(kThreads), 0, stream,
           attention_repair_kernel<decltype(tag)>, *p);
  });
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_key_mask(const seqk_k_key_mask_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
         key_mask_kernel, p->s, p->mask, *p);
  return cudaGetLastError();
}

extern "C" cudaError_t seqk_k_score_mod(const seqk_k_score_mod_params *p, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (p->n == 0) return cudaSuccess;
  launch(dim3(seqk_kernels::grid_blocks(p->n, kThreads)), dim3(kThreads), 0, stream,
         score_mod_kernel, p->s, *p);
  return cudaGetLastError();
}
