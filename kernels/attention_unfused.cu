/*
 * attention_unfused.cu - the cuBLAS attention path on CUDA tensors (seqk_attention_scores,
 * seqk_attention_values, seqk_attention with the UNFUSED algorithm), seqk_linear and
 * seqk_mha_forward, and the small kernels around their GEMMs.
 *
 * The GEMMs go through seqk__matmul (host/blas.c), which takes strided views: nothing here copies
 * an operand unless cuBLAS cannot address it. Grouped-query heads never copy K or V:
 *   - grouped path: when the g = H/Hk query heads that share one key head lie as consecutive rows
 *     (head stride == Sq * row stride, or Sq == 1, the decode case) in q and in the output, they
 *     are ONE matrix of g*Sq rows, and the product is batched over (b, key head): the fewest,
 *     largest GEMMs;
 *   - per-head path: otherwise (e.g. a [B,S,H,D] buffer seen as [B,H,S,D]) the product is batched
 *     over (b, key head) for each of the g heads of a group, with K's batch stride 0 between them.
 * seqk_attention: S = q k^T into an fp32 workspace [B,H,Sq,Sk] (unscaled, fp32 output even for
 * f16/bf16 inputs, so the softmax sees the products before any rounding), the softmax kernel
 * (kernels/softmax.cu) writes P in the attention dtype with masked keys, padded keys and padded
 * rows as 0 and the lse, then o = P v. Padded keys of v (j >= seqlens_k[b]) may hold anything
 * (NaN): 0 * NaN would leak through the GEMM, so with seqlens_k v goes through a copy that
 * zeroes them (B*Hk*Sk*Dv elements, small next to the B*H*Sq*Sk of S and P).
 * Workspace (one arena per public call, planned up front, see host/device.h):
 *   attention:   S (4 B) + P (elem) per B*H*Sq*Sk, + v copy with seqlens_k, + operand copies;
 *   linear:      contiguous copies of x / y when their leading dims do not flatten to one row
 *                stride, + operand copies;
 *   mha_forward: the projections (one [B,S,3E] buffer for self-attention, else q/k/v [B,S,E]),
 *                the attention output [B,Sq,E], + what its linears and its attention take.
 * mha_forward's attention runs on the fused (flash) kernels unless attn_weights is asked for
 * (the head mean needs P, which only the unfused path materialises) or the fused kernels answer
 * NOT_SUPPORTED for the shape (head dim > 256, ...). The choice is made while planning, from
 * seqk__cuda_attention_fused_workspace, so the one arena holds exactly the chosen path's share:
 * the fused one is only the split-KV partials (often nothing), not the B*H*Sq*Sk S and P.
 * Kernels: fill_rows (bias broadcast before a beta = 1 GEMM, zeros, +inf lse rows), causal_mask
 * (-inf on the masked triangle of a scores tensor, nothing else touched), copy_valid_keys,
 * head_mean (MHA's head-averaged attention weights from P).
 */
#include "cuda_compat.cuh"
#include "common.cuh"
#include "convert.cuh"

#include "blas.h"
#include "device.h"
#include "internal.h"
#include "launchers.h"

#include <math.h>
#include <string.h>


namespace {

constexpr int kThreads = 256;

using seqk_kernels::from_float;
using seqk_kernels::to_float;

using seqk_kernels::by_dtype;
using seqk_kernels::launch_status;

/* ---- fill_rows -------------------------------------------------------------------------------- */

/* y as rows x cols: the leading dims (size-1 dims dropped, dims that continue each other merged)
   and the last dim. */
struct rows_geometry {
  int32_t nlead;
  int64_t shape[SEQK_MAX_DIMS];
  int64_t stride[SEQK_MAX_DIMS];
  int64_t cols, col_stride, bias_stride;
};

/* One thread per element, consecutive threads on consecutive columns: coalesced stores for a
   row-major y, and the bias row is read from L1/L2 by every row. Memory-bound; the index split is
   a few integer ops per 2-4 bytes stored. */
template <typename T>
__global__ void fill_rows_kernel(T *__restrict__ y, const T *__restrict__ bias, float value,
                                 rows_geometry g, int64_t n) {
  const T fill = from_float<T>(value);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t col = i % g.cols;
    int64_t rest = i / g.cols, off = col * g.col_stride;
    /* Unrolled with constant indices so the geometry stays in registers (a loop up to nlead
       would index the parameter arrays dynamically, through local memory). */
    SEQK_UNROLL
    for (int d = SEQK_MAX_DIMS - 1; d >= 0; --d)
      if (d < g.nlead) {
        off += (rest % g.shape[d]) * g.stride[d];
        rest /= g.shape[d];
      }
    y[off] = bias ? bias[col * g.bias_stride] : fill;
  }
}

/* ---- causal_mask ------------------------------------------------------------------------------ */

struct mask_geometry {
  int64_t H, Sq, Sk, rows;
  int64_t stride[4];
};

/* A warp per score row writes the row's masked tail j in (i + Sk - Sq, Sk) and nothing else:
   lanes on consecutive keys (coalesced for a row-major s); for causal Sq == Sk that is half the
   matrix written once, and no thread reads s. */
template <typename T>
__global__ void causal_mask_kernel(T *__restrict__ s, mask_geometry g) {
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

/* ---- copy_valid_keys -------------------------------------------------------------------------- */

struct keys_geometry {
  int64_t Hk, Sk, Dv;
  int64_t src_stride[4];
};

/* dst (contiguous) = v with the keys past each batch's length zeroed; a padded key is never read.
   One thread per element in dst order: coalesced stores, and coalesced loads when v's last dim
   is contiguous (attention requires it). */
template <typename T>
__global__ void copy_valid_keys_kernel(T *__restrict__ dst, const T *__restrict__ src,
                                       const int32_t *__restrict__ lens, keys_geometry g,
                                       int64_t n) {
  const T zero = from_float<T>(0.0f);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t e = i % g.Dv, t = i / g.Dv;
    const int64_t j = t % g.Sk, bh = t / g.Sk;
    const int64_t h = bh % g.Hk, b = bh / g.Hk;
    dst[i] = j < lens[b] ? src[b * g.src_stride[0] + h * g.src_stride[1] + j * g.src_stride[2] +
                               e * g.src_stride[3]]
                         : zero;
  }
}

/* ---- head_mean -------------------------------------------------------------------------------- */

struct mean_geometry {
  int64_t H, Sq, Sk;
  int64_t p_stride[4];
  int64_t a_stride[3];
};

/* attn[b,i,j] = mean_h p[b,h,i,j] in fp32. One thread per output element, consecutive threads on
   consecutive keys: each of the H loads per thread is a coalesced row segment of P. A GEMM with a
   ones vector would do the same reduction, but needs an extra buffer and an output that is one
   uniform row; this reads P once and writes attn once, which is all the op costs anyway. */
template <typename T>
__global__ void head_mean_kernel(const T *__restrict__ p, T *__restrict__ attn, mean_geometry g,
                                 int64_t n) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const int64_t j = idx % g.Sk, t = idx / g.Sk;
    const int64_t i = t % g.Sq, b = t / g.Sq;
    const T *src = p + b * g.p_stride[0] + i * g.p_stride[2] + j * g.p_stride[3];
    float acc = 0.0f;
    for (int64_t h = 0; h < g.H; ++h) acc += to_float(src[h * g.p_stride[1]]);
    attn[b * g.a_stride[0] + i * g.a_stride[1] + j * g.a_stride[2]] =
        from_float<T>(acc / (float)g.H);
  }
}

}  // namespace

/* ---- launchers -------------------------------------------------------------------------------- */

extern "C" seqk_status seqk__cuda_fill_rows(seqk_context_t ctx, const seqk_tensor *y,
                                            const seqk_tensor *bias, float value) {
  const int64_t n = seqk__numel(y);
  if (n == 0) return SEQK_STATUS_SUCCESS;
  rows_geometry g;
  memset(&g, 0, sizeof g);
  const int32_t last = y->ndim - 1;
  g.cols = y->shape[last];
  g.col_stride = y->stride[last];
  g.bias_stride = bias ? bias->stride[0] : 0;
  /* Leading dims, outermost first; a dim continuing the one inside it is merged into it. */
  for (int32_t d = 0; d < last; ++d) {
    if (y->shape[d] == 1) continue;
    g.shape[g.nlead] = y->shape[d];
    g.stride[g.nlead] = y->stride[d];
    ++g.nlead;
  }
  int32_t merged = 0;
  for (int32_t d = 0; d < g.nlead; ++d) {
    if (merged > 0 && g.stride[merged - 1] == g.shape[d] * g.stride[d]) {
      g.shape[merged - 1] *= g.shape[d];
      g.stride[merged - 1] = g.stride[d];
    } else {
      g.shape[merged] = g.shape[d];
      g.stride[merged] = g.stride[d];
      ++merged;
    }
  }
  g.nlead = merged;
  (void)cudaGetLastError();
  by_dtype(y->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(n, kThreads)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
           fill_rows_kernel<T>, static_cast<T *>(y->data),
           bias ? static_cast<const T *>(bias->data) : static_cast<const T *>(nullptr), value, g,
           n);
  });
  return launch_status(ctx, "linear", "fill_rows");
}

extern "C" seqk_status seqk__cuda_causal_mask(seqk_context_t ctx, const seqk_tensor *s) {
  mask_geometry g;
  g.H = s->shape[1];
  g.Sq = s->shape[2];
  g.Sk = s->shape[3];
  g.rows = s->shape[0] * g.H * g.Sq;
  for (int d = 0; d < 4; ++d) g.stride[d] = s->stride[d];
  if (g.rows == 0 || g.Sk == 0) return SEQK_STATUS_SUCCESS;
  const int warps_per_block = kThreads / 32;
  (void)cudaGetLastError();
  by_dtype(s->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(g.rows, warps_per_block)), dim3(kThreads), 0,
           (cudaStream_t)ctx->stream, causal_mask_kernel<T>, static_cast<T *>(s->data), g);
  });
  return launch_status(ctx, "attention_scores", "causal_mask");
}

extern "C" seqk_status seqk__cuda_copy_valid_keys(seqk_context_t ctx, const seqk_tensor *dst,
                                                  const seqk_tensor *v,
                                                  const int32_t *seqlens_k) {
  const int64_t n = seqk__numel(v);
  if (n == 0) return SEQK_STATUS_SUCCESS;
  keys_geometry g;
  g.Hk = v->shape[1];
  g.Sk = v->shape[2];
  g.Dv = v->shape[3];
  for (int d = 0; d < 4; ++d) g.src_stride[d] = v->stride[d];
  (void)cudaGetLastError();
  by_dtype(v->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(n, kThreads)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
           copy_valid_keys_kernel<T>, static_cast<T *>(dst->data),
           static_cast<const T *>(v->data), seqlens_k, g, n);
  });
  return launch_status(ctx, "attention", "copy_valid_keys");
}

extern "C" seqk_status seqk__cuda_head_mean(seqk_context_t ctx, const seqk_tensor *p,
                                            const seqk_tensor *attn) {
  const int64_t n = seqk__numel(attn);
  if (n == 0) return SEQK_STATUS_SUCCESS;
  mean_geometry g;
  g.H = p->shape[1];
  g.Sq = p->shape[2];
  g.Sk = p->shape[3];
  for (int d = 0; d < 4; ++d) g.p_stride[d] = p->stride[d];
  for (int d = 0; d < 3; ++d) g.a_stride[d] = attn->stride[d];
  (void)cudaGetLastError();
  by_dtype(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(dim3(seqk_kernels::grid_blocks(n, kThreads)), dim3(kThreads), 0, (cudaStream_t)ctx->stream,
           head_mean_kernel<T>, static_cast<const T *>(p->data), static_cast<T *>(attn->data), g,
           n);
  });
  return launch_status(ctx, "mha_forward", "head_mean");
}

/* ---- the products of the attention path ------------------------------------------------------- */

namespace {

/* A contiguous descriptor [shape] of dtype on the device over data (NULL while planning). */
seqk_tensor device_tensor(void *data, seqk_dtype dt, int32_t ndim, const int64_t *shape) {
  seqk_tensor t = seqk_tensor_view(data, dt, SEQK_DEVICE_CUDA, ndim, shape);
  return t;
}

/* Rows (r, i) of t [B,H,R,C], r over the heads of a group and i < R, at one uniform stride *ld?
   (The heads of a group are consecutive, so only the head stride against the row stride counts.) */
int group_rows(const seqk_tensor *t, int64_t *ld) {
  const int64_t R = t->shape[2];
  if (R == 1) {
    *ld = t->stride[1];
    return 1;
  }
  if (t->stride[1] == R * t->stride[2]) {
    *ld = t->stride[2];
    return 1;
  }
  return 0;
}

/* out[b,h] = alpha x[b,h] y'[b,h/g] for every batch and query head, y' = y^T (scores: q k^T) or y
   (values: p v). x [B,H,R,K], y [B,Hk,N,K] or [B,Hk,K,N], out [B,H,R,N]. */
void grouped_product(seqk_matmul *mm, const seqk_tensor *x, const seqk_tensor *y, int y_transposed,
                     const seqk_tensor *out, float alpha) {
  const int64_t B = x->shape[0], H = x->shape[1], Hk = y->shape[1];
  const int64_t g = Hk > 0 ? H / Hk : 1;
  memset(mm, 0, sizeof *mm);
  mm->m = x->shape[2];
  mm->k = x->shape[3];
  mm->n = out->shape[3];
  mm->alpha = alpha;
  mm->ab_type = x->dtype;
  mm->c_type = out->dtype;
  mm->a.data = x->data;
  mm->a.rs = x->stride[2];
  mm->a.cs = x->stride[3];
  mm->b.data = y->data;
  mm->b.rs = y_transposed ? y->stride[3] : y->stride[2];
  mm->b.cs = y_transposed ? y->stride[2] : y->stride[3];
  mm->c.data = out->data;
  mm->c.rs = out->stride[2];
  mm->c.cs = out->stride[3];
  /* Level 0: the batch; level 1: the key head (its group of g query heads). */
  mm->count[0] = B;
  mm->a.batch[0] = x->stride[0];
  mm->b.batch[0] = y->stride[0];
  mm->c.batch[0] = out->stride[0];
  mm->count[1] = Hk;
  mm->a.batch[1] = g * x->stride[1];
  mm->b.batch[1] = y->stride[1];
  mm->c.batch[1] = g * out->stride[1];
  int64_t ld_x, ld_out;
  if (g > 1 && group_rows(x, &ld_x) && group_rows(out, &ld_out)) {
    /* Grouped path: the group's g*R rows are one matrix against the shared key head. */
    mm->nlevels = 2;
    mm->m = g * x->shape[2];
    mm->a.rs = ld_x;
    mm->c.rs = ld_out;
  } else {
    /* Per-head path: level 2 walks the heads of a group; the key head stays (stride 0). */
    mm->nlevels = 3;
    mm->count[2] = g;
    mm->a.batch[2] = x->stride[1];
    mm->b.batch[2] = 0;
    mm->c.batch[2] = out->stride[1];
  }
}

float effective_scale(float scale, int64_t D) {
  if (scale != 0.0f) return scale;
  return D > 0 ? (float)(1.0 / sqrt((double)D)) : 1.0f;
}

/* ---- attention (the unfused path) ---- */

struct attention_job {
  const seqk_tensor *q, *k, *v, *o;
  const seqk_tensor *lse;        /* NULL: not asked for */
  float scale;                   /* 0: 1/sqrt(D) */
  int32_t causal;
  const int32_t *seqlens_q, *seqlens_k;
  const seqk_tensor *head_mean;  /* mha_forward: P averaged over heads into [B,Sq,Sk]; or NULL */
  int fused;                     /* run on the flash kernels (never with head_mean) */
};

/* The workspace views and products of one attention call; data pointers NULL while planning. */
struct attention_layout {
  seqk_tensor s, p, v_valid;
  seqk_matmul qk, pv;
  int copy_v;
};

int attention_has_work(const attention_job *j) {
  return seqk__numel(j->o) > 0 && j->k->shape[2] > 0;
}

/* Workspace pieces of the S, P and valid-keys buffers, in bytes (rounded). */
void attention_pieces(const attention_job *j, size_t *s_bytes, size_t *p_bytes, size_t *v_bytes) {
  const int64_t n_s = seqk__mul_sat(seqk__mul_sat(j->q->shape[0], j->q->shape[1]),
                                    seqk__mul_sat(j->q->shape[2], j->k->shape[2]));
  *s_bytes = seqk__ws_elems(n_s, 4);
  *p_bytes = seqk__ws_elems(n_s, seqk_dtype_size(j->q->dtype));
  *v_bytes = j->seqlens_k ? seqk__ws_elems(seqk__numel(j->v), seqk_dtype_size(j->v->dtype)) : 0;
}

void attention_layout_make(const attention_job *j, attention_layout *L, void *s_mem, void *p_mem,
                           void *v_mem) {
  const int64_t B = j->q->shape[0], H = j->q->shape[1], Sq = j->q->shape[2];
  const int64_t Sk = j->k->shape[2];
  const int64_t s_shape[4] = {B, H, Sq, Sk};
  L->s = device_tensor(s_mem, SEQK_DTYPE_F32, 4, s_shape);
  L->p = device_tensor(p_mem, j->q->dtype, 4, s_shape);
  L->copy_v = j->seqlens_k != NULL;
  L->v_valid = L->copy_v ? device_tensor(v_mem, j->v->dtype, 4, j->v->shape) : *j->v;
  /* Unscaled fp32 scores: the softmax folds the scale into its exponent. */
  grouped_product(&L->qk, j->q, j->k, 1, &L->s, 1.0f);
  grouped_product(&L->pv, &L->p, &L->v_valid, 0, j->o, 1.0f);
}

size_t attention_workspace(const attention_job *j) {
  if (!attention_has_work(j)) return 0;
  attention_layout L;
  size_t s_bytes, p_bytes, v_bytes;
  attention_layout_make(j, &L, NULL, NULL, NULL);
  attention_pieces(j, &s_bytes, &p_bytes, &v_bytes);
  size_t bytes = seqk__ws_sum(seqk__ws_sum(s_bytes, p_bytes), v_bytes);
  bytes = seqk__ws_sum(bytes, seqk__matmul_workspace(&L.qk));
  return seqk__ws_sum(bytes, seqk__matmul_workspace(&L.pv));
}

seqk_attention_params attention_params(const attention_job *j) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.scale = j->scale;
  p.causal = j->causal;
  p.algo = SEQK_ATTENTION_ALGO_FUSED;
  p.seqlens_q = j->seqlens_q;
  p.seqlens_k = j->seqlens_k;
  return p;
}

/* Whether the flash kernels serve j (*fused) and the workspace they then take (*bytes), asked
   while planning (data pointers NULL). Their answer depends on the shapes, the dtype, the device
   and the operands' alignment; the planned views are NULL (aligned) where the real ones are
   arena pieces at offsets the kernels' alignment test accepts whenever the head dim does, so the
   run makes the same choice and takes the same bytes (a mismatch would surface as the arena's
   INTERNAL_ERROR, never as an overrun). NOT_SUPPORTED is an answer, not a failure: the unfused
   path runs instead, and the probe's message must not stand as the call's last error. */
seqk_status attention_fused_plan(seqk_context_t ctx, const attention_job *j, int *fused,
                                 size_t *bytes) {
  *fused = 0;
  *bytes = 0;
  if (j->head_mean || !attention_has_work(j)) return SEQK_STATUS_SUCCESS;
  const seqk_attention_params params = attention_params(j);
  char saved[sizeof ctx->last_error];
  memcpy(saved, ctx->last_error, sizeof saved);
  const seqk_status st =
      seqk__cuda_attention_fused_workspace(ctx, &params, j->q, j->k, j->v, j->o, bytes);
  if (st == SEQK_STATUS_NOT_SUPPORTED) {
    memcpy(ctx->last_error, saved, sizeof saved);
    *bytes = 0;
    return SEQK_STATUS_SUCCESS;
  }
  SEQK_TRY(st);
  *fused = 1;
  return SEQK_STATUS_SUCCESS;
}

seqk_status attention_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                          const attention_job *j) {
  if (seqk__numel(j->o) == 0) return SEQK_STATUS_SUCCESS;
  if (j->k->shape[2] == 0) {
    /* No key at all: every row is empty (o = 0, lse = +inf), and attn_weights has no element. */
    SEQK_TRY(seqk__cuda_fill_rows(ctx, j->o, NULL, 0.0f));
    if (j->lse) SEQK_TRY(seqk__cuda_fill_rows(ctx, j->lse, NULL, INFINITY));
    return SEQK_STATUS_SUCCESS;
  }
  if (j->fused) {
    const seqk_attention_params params = attention_params(j);
    return seqk__cuda_attention_fused_in(ctx, arena, &params, j->q, j->k, j->v, j->o, j->lse);
  }
  attention_layout L;
  size_t s_bytes, p_bytes, v_bytes;
  void *s_mem = NULL, *p_mem = NULL, *v_mem = NULL;
  attention_pieces(j, &s_bytes, &p_bytes, &v_bytes);
  SEQK_TRY(seqk__arena_take(ctx, op, arena, s_bytes, &s_mem));
  SEQK_TRY(seqk__arena_take(ctx, op, arena, p_bytes, &p_mem));
  if (v_bytes) SEQK_TRY(seqk__arena_take(ctx, op, arena, v_bytes, &v_mem));
  attention_layout_make(j, &L, s_mem, p_mem, v_mem);

  const int64_t B = L.s.shape[0], H = L.s.shape[1], Sq = L.s.shape[2], Sk = L.s.shape[3];
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.qk));
  SEQK_TRY(seqk__cuda_attention_softmax(ctx, static_cast<const float *>(L.s.data), B, H, Sq, Sk,
                                        effective_scale(j->scale, j->q->shape[3]), j->causal,
                                        j->seqlens_q, j->seqlens_k, &L.p, j->lse));
  if (L.copy_v) SEQK_TRY(seqk__cuda_copy_valid_keys(ctx, &L.v_valid, j->v, j->seqlens_k));
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.pv));
  if (j->head_mean) SEQK_TRY(seqk__cuda_head_mean(ctx, &L.p, j->head_mean));
  return SEQK_STATUS_SUCCESS;
}

/* ---- linear ---- */

/* The leading dims of t [..., C] as rows at one stride *rs (size-1 dims are free)? */
int flat_rows(const seqk_tensor *t, int64_t *rs) {
  int64_t expect = -1;   /* stride the next kept dim must have times its extent */
  *rs = t->shape[t->ndim - 1];   /* any value works for at most one row */
  for (int32_t d = 0; d + 1 < t->ndim; ++d) {
    if (t->shape[d] == 1) continue;
    if (expect >= 0 && expect != t->shape[d] * t->stride[d]) return 0;
    expect = t->stride[d];
    *rs = t->stride[d];
  }
  return 1;
}

struct linear_job {
  const seqk_tensor *x, *w, *b, *y;   /* b NULL: no bias */
};

struct linear_layout {
  int copy_x, copy_y;
  seqk_tensor xc, yc;   /* contiguous stand-ins when copied */
  seqk_matmul mm;
};

void linear_layout_make(const linear_job *j, linear_layout *L, void *x_mem, void *y_mem) {
  const seqk_tensor *x = j->x, *y = j->y, *w = j->w;
  const int32_t last = x->ndim - 1;
  int64_t rs_x = 0, rs_y = 0;
  L->copy_x = !flat_rows(x, &rs_x);
  L->copy_y = !flat_rows(y, &rs_y);
  L->xc = device_tensor(x_mem, x->dtype, x->ndim, x->shape);
  L->yc = device_tensor(y_mem, y->dtype, y->ndim, y->shape);
  const seqk_tensor *xv = L->copy_x ? &L->xc : x, *yv = L->copy_y ? &L->yc : y;
  if (L->copy_x) flat_rows(xv, &rs_x);
  if (L->copy_y) flat_rows(yv, &rs_y);
  seqk_matmul *mm = &L->mm;
  memset(mm, 0, sizeof *mm);
  mm->m = 1;
  for (int32_t d = 0; d < last; ++d) mm->m *= x->shape[d];
  mm->k = x->shape[last];
  mm->n = w->shape[0];
  mm->alpha = 1.0f;
  mm->ab_type = x->dtype;
  mm->c_type = y->dtype;
  mm->a.data = xv->data;
  mm->a.rs = rs_x;
  mm->a.cs = xv->stride[last];
  /* B = W^T: B[i, o] = w[o, i]. */
  mm->b.data = w->data;
  mm->b.rs = w->stride[1];
  mm->b.cs = w->stride[0];
  mm->c.data = yv->data;
  mm->c.rs = rs_y;
  mm->c.cs = yv->stride[last];
  mm->bias = j->b;
}

size_t linear_workspace(const linear_job *j) {
  linear_layout L;
  linear_layout_make(j, &L, NULL, NULL);
  size_t bytes = seqk__matmul_workspace(&L.mm);
  if (L.copy_x) bytes = seqk__ws_sum(bytes, seqk__ws_elems(seqk__numel(j->x), seqk_dtype_size(j->x->dtype)));
  if (L.copy_y) bytes = seqk__ws_sum(bytes, seqk__ws_elems(seqk__numel(j->y), seqk_dtype_size(j->y->dtype)));
  return bytes;
}

seqk_status linear_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                       const linear_job *j) {
  if (seqk__numel(j->y) == 0) return SEQK_STATUS_SUCCESS;
  linear_layout L;
  int64_t rs;
  void *x_mem = NULL, *y_mem = NULL;
  if (!flat_rows(j->x, &rs))
    SEQK_TRY(seqk__arena_take(ctx, op, arena,
                              seqk__ws_elems(seqk__numel(j->x), seqk_dtype_size(j->x->dtype)), &x_mem));
  if (!flat_rows(j->y, &rs))
    SEQK_TRY(seqk__arena_take(ctx, op, arena,
                              seqk__ws_elems(seqk__numel(j->y), seqk_dtype_size(j->y->dtype)), &y_mem));
  linear_layout_make(j, &L, x_mem, y_mem);
  if (L.copy_x) SEQK_TRY(seqk__cuda_tensor_copy(ctx, &L.xc, j->x));
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.mm));
  if (L.copy_y) SEQK_TRY(seqk__cuda_tensor_copy(ctx, j->y, &L.yc));
  return SEQK_STATUS_SUCCESS;
}

}  // namespace

/* ---- the ops ---------------------------------------------------------------------------------- */

extern "C" seqk_status seqk__cuda_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                                   const seqk_tensor *k, float scale,
                                                   int32_t causal, const seqk_tensor *s) {
  static const char op[] = "attention_scores";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(s) == 0) return SEQK_STATUS_SUCCESS;
  seqk_matmul mm;
  /* D == 0 gives k == 0: seqk__matmul writes 0 without touching the scale (no 0 * inf). */
  grouped_product(&mm, q, k, 1, s, effective_scale(scale, q->shape[3]));
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__matmul_workspace(&mm), &arena));
  SEQK_TRY(seqk__matmul(ctx, op, &arena, &mm));
  if (causal) SEQK_TRY(seqk__cuda_causal_mask(ctx, s));
  return SEQK_STATUS_SUCCESS;
}

extern "C" seqk_status seqk__cuda_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                                   const seqk_tensor *v, const seqk_tensor *o) {
  static const char op[] = "attention_values";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS;
  seqk_matmul mm;
  grouped_product(&mm, p, v, 0, o, 1.0f);   /* Sk == 0: k == 0, o = 0 */
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__matmul_workspace(&mm), &arena));
  return seqk__matmul(ctx, op, &arena, &mm);
}

extern "C" seqk_status seqk__cuda_attention_unfused(seqk_context_t ctx,
                                                    const seqk_attention_params *params,
                                                    const seqk_tensor *q, const seqk_tensor *k,
                                                    const seqk_tensor *v, const seqk_tensor *o,
                                                    const seqk_tensor *lse) {
  static const char op[] = "attention";
  SEQK_TRY(seqk__require_device(ctx, op));
  const attention_job job = {q, k, v, o, lse, params->scale, params->causal, params->seqlens_q,
                             params->seqlens_k, NULL, 0};
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, attention_workspace(&job), &arena));
  return attention_run(ctx, op, &arena, &job);
}

extern "C" seqk_status seqk__cuda_linear(seqk_context_t ctx, const seqk_tensor *x,
                                         const seqk_tensor *w, const seqk_tensor *b,
                                         const seqk_tensor *y) {
  static const char op[] = "linear";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(y) == 0) return SEQK_STATUS_SUCCESS;
  const linear_job job = {x, w, b, y};
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, linear_workspace(&job), &arena));
  return linear_run(ctx, op, &arena, &job);
}

namespace {

/* A row block [row0, row0 + rows) of a weight matrix or a bias vector, as a view. */
seqk_tensor row_block(const seqk_tensor *t, int64_t row0, int64_t rows) {
  seqk_tensor v = *t;
  if (v.data) v.data = (char *)t->data + row0 * t->stride[0] * (int64_t)seqk_dtype_size(t->dtype);
  v.shape[0] = rows;
  return v;
}

/* [B,S,cols] at data, column offset col0, seen as [B,H,S,hd] heads (strides, no copy). */
seqk_tensor heads_view(void *data, seqk_dtype dt, int64_t B, int64_t S, int64_t cols,
                       int64_t col0, int64_t H, int64_t hd) {
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data ? (char *)data + col0 * (int64_t)seqk_dtype_size(dt) : NULL;
  t.dtype = dt;
  t.device = SEQK_DEVICE_CUDA;
  t.ndim = 4;
  t.shape[0] = B;
  t.shape[1] = H;
  t.shape[2] = S;
  t.shape[3] = hd;
  t.stride[0] = S * cols;
  t.stride[1] = hd;
  t.stride[2] = cols;
  t.stride[3] = 1;
  return t;
}

/* Everything one mha_forward call runs; pointers into the workspace NULL while planning. */
struct mha_layout {
  int self;                 /* query, key and value are one tensor: one in-projection GEMM */
  seqk_tensor proj[3];      /* [B,S,E] (or the one [B,S,3E]) projection buffers */
  seqk_tensor w_in[3], b_in[3];
  seqk_tensor heads[3];     /* q, k, v as [B,H,S,hd] views into the projections */
  seqk_tensor merged;       /* [B,Sq,E]: the attention output, merged by its layout */
  seqk_tensor o_heads;      /* the same memory as [B,H,Sq,hd] */
  int n_in;                 /* in-projection GEMMs: 1 (self) or 3 */
  linear_job in_job[3], out_job;
  attention_job attn;
};

void mha_layout_make(mha_layout *L, const seqk_mha_weights *w, int32_t num_heads, int32_t causal,
                     const seqk_tensor *query, const seqk_tensor *key, const seqk_tensor *value,
                     const seqk_tensor *out, const seqk_tensor *attn_weights, void *const mem[4]) {
  const seqk_dtype dt = query->dtype;
  const int64_t B = query->shape[0], Sq = query->shape[1], E = query->shape[2];
  const int64_t Sk = key->shape[1], H = num_heads, hd = E / H;
  const seqk_tensor *b_in = seqk__present(&w->in_proj_bias) ? &w->in_proj_bias : NULL;
  const seqk_tensor *b_out = seqk__present(&w->out_proj_bias) ? &w->out_proj_bias : NULL;
  const seqk_tensor *src[3] = {query, key, value};
  memset(L, 0, sizeof *L);
  L->self = seqk__same_view(query, key) && seqk__same_view(key, value);
  if (L->self) {
    const int64_t shape[3] = {B, Sq, 3 * E};
    L->n_in = 1;
    L->proj[0] = device_tensor(mem[0], dt, 3, shape);
    L->in_job[0] = linear_job{query, &w->in_proj_weight, b_in, &L->proj[0]};
    for (int m = 0; m < 3; ++m)
      L->heads[m] = heads_view(mem[0], dt, B, Sq, 3 * E, m * E, H, hd);
  } else {
    L->n_in = 3;
    for (int m = 0; m < 3; ++m) {
      const int64_t shape[3] = {B, m == 0 ? Sq : Sk, E};
      L->proj[m] = device_tensor(mem[m], dt, 3, shape);
      L->w_in[m] = row_block(&w->in_proj_weight, m * E, E);
      if (b_in) L->b_in[m] = row_block(b_in, m * E, E);
      L->in_job[m] = linear_job{src[m], &L->w_in[m], b_in ? &L->b_in[m] : NULL, &L->proj[m]};
      L->heads[m] = heads_view(mem[m], dt, B, shape[1], E, 0, H, hd);
    }
  }
  const int64_t merged_shape[3] = {B, Sq, E};
  L->merged = device_tensor(mem[3], dt, 3, merged_shape);
  L->o_heads = heads_view(mem[3], dt, B, Sq, E, 0, H, hd);
  L->out_job = linear_job{&L->merged, &w->out_proj_weight, b_out, out};
  L->attn = attention_job{&L->heads[0], &L->heads[1], &L->heads[2], &L->o_heads, NULL, 0.0f,
                          causal, NULL, NULL, attn_weights, 0};
}

}  // namespace

extern "C" seqk_status seqk__cuda_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                              int32_t num_heads, int32_t causal,
                                              const seqk_tensor *query, const seqk_tensor *key,
                                              const seqk_tensor *value, const seqk_tensor *out,
                                              const seqk_tensor *attn_weights) {
  static const char op[] = "mha_forward";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(out) == 0) return SEQK_STATUS_SUCCESS;   /* B == 0 or Sq == 0 */
  /* Plan on layouts without memory, then lay the same layout over the arena. */
  mha_layout L;
  void *mem[4] = {NULL, NULL, NULL, NULL};
  mha_layout_make(&L, w, num_heads, causal, query, key, value, out, attn_weights, mem);
  int fused = 0;
  size_t fused_bytes = 0;
  SEQK_TRY(attention_fused_plan(ctx, &L.attn, &fused, &fused_bytes));
  size_t bytes = 0;
  for (int m = 0; m < L.n_in; ++m)
    bytes = seqk__ws_sum(bytes, seqk__ws_elems(seqk__numel(&L.proj[m]), seqk_dtype_size(query->dtype)));
  bytes = seqk__ws_sum(bytes, seqk__ws_elems(seqk__numel(&L.merged), seqk_dtype_size(query->dtype)));
  for (int m = 0; m < L.n_in; ++m) bytes = seqk__ws_sum(bytes, linear_workspace(&L.in_job[m]));
  bytes = seqk__ws_sum(bytes, fused ? fused_bytes : attention_workspace(&L.attn));
  bytes = seqk__ws_sum(bytes, linear_workspace(&L.out_job));

  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  for (int m = 0; m < L.n_in; ++m)
    SEQK_TRY(seqk__arena_take(ctx, op, &arena,
                              seqk__ws_elems(seqk__numel(&L.proj[m]), seqk_dtype_size(query->dtype)),
                              &mem[m]));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena,
                            seqk__ws_elems(seqk__numel(&L.merged), seqk_dtype_size(query->dtype)),
                            &mem[3]));
  mha_layout_make(&L, w, num_heads, causal, query, key, value, out, attn_weights, mem);
  L.attn.fused = fused;
  for (int m = 0; m < L.n_in; ++m) SEQK_TRY(linear_run(ctx, op, &arena, &L.in_job[m]));
  SEQK_TRY(attention_run(ctx, op, &arena, &L.attn));
  return linear_run(ctx, op, &arena, &L.out_job);
}
