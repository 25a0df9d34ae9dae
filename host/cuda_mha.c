/*
 * cuda_mha.c - seqk_mha_forward on CUDA tensors: the in-projections (one [B,S,3E] GEMM for
 * self-attention, else three), the heads as strided views of the projections (no copy), the
 * attention, and the out-projection, all in one workspace arena; the head-averaged attention
 * weights come from kernels/head_mean.cu.
 *
 * Options (seqk_mha_options, resolved by the entry): key_lengths become the attention's device
 * seqlens_k (copied into the workspace when they are not one contiguous run), key_padding_mask
 * the attention's key mask (-inf scores on the unfused path), per-head weights a copy of P.
 *
 * Workspace (one arena per call, planned up front, see device.h): the projections, the attention
 * output [B,Sq,E], a contiguous copy of key_lengths when needed, + what its linears and its
 * attention take. The attention runs on the fused
 * (flash) kernels unless attn_weights is asked for (the head mean needs P, which only the unfused
 * path materialises) or the fused kernels do not serve the shape (head dim > 256, ...). The choice
 * is made while planning (seqk__attention_job_plan), so the one arena holds exactly the chosen
 * path's share: the fused one is only the split-KV partials (often nothing), not the B*H*Sq*Sk S
 * and P.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"

#include <string.h>

/* A row block [row0, row0 + rows) of a weight matrix or a bias vector, as a view. */
static seqk_tensor row_block(const seqk_tensor *t, int64_t row0, int64_t rows) {
  seqk_tensor v = *t;
  if (v.data) v.data = (char *)t->data + row0 * t->stride[0] * (int64_t)seqk_dtype_size(t->dtype);
  v.shape[0] = rows;
  return v;
}

/* [B,S,cols] at data, column offset col0, seen as [B,H,S,hd] heads (strides, no copy). */
static seqk_tensor heads_view(void *data, seqk_dtype dt, int64_t B, int64_t S, int64_t cols,
                              int64_t col0, int64_t H, int64_t hd) {
  const int64_t shape[4] = {B, H, S, hd}, stride[4] = {S * cols, hd, cols, 1};
  void *at = data ? (char *)data + col0 * (int64_t)seqk_dtype_size(dt) : NULL;
  return seqk_tensor_view_strided(at, dt, SEQK_DEVICE_CUDA, 4, shape, stride);
}

/* Everything one mha_forward call runs; pointers into the workspace NULL while planning. */
typedef struct mha_layout {
  int self;            /* query, key and value are one tensor: one in-projection GEMM */
  seqk_tensor proj[3]; /* [B,S,E] (or the one [B,S,3E]) projection buffers */
  seqk_tensor w_in[3], b_in[3];
  seqk_tensor heads[3]; /* q, k, v as [B,H,S,hd] views into the projections */
  seqk_tensor merged;   /* [B,Sq,E]: the attention output, merged by its layout */
  seqk_tensor o_heads;  /* the same memory as [B,H,Sq,hd] */
  int n_in;             /* in-projection GEMMs: 1 (self) or 3 */
  seqk_linear_job in_job[3], out_job;
  seqk_attention_job attn;
  seqk_tensor lengths; /* key_lengths as the attention reads them */
} mha_layout;

/* key_lengths need a contiguous copy (the attention reads seqlens_k[b] at b). */
static int lengths_copied(const seqk_mha_resolved *r) {
  return r->key_lengths && r->key_lengths->shape[0] > 1 && r->key_lengths->stride[0] != 1;
}

static void mha_layout_make(mha_layout *L, const seqk_mha_weights *w, const seqk_mha_resolved *r,
                            const seqk_tensor *query, const seqk_tensor *key,
                            const seqk_tensor *value, const seqk_tensor *out,
                            const seqk_tensor *attn_weights, void *const mem[5]) {
  const int32_t num_heads = r->num_heads, causal = r->causal;
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
    L->proj[0] = seqk_tensor_view(mem[0], dt, SEQK_DEVICE_CUDA, 3, shape);
    L->in_job[0] =
        (seqk_linear_job){query, &w->in_proj_weight, b_in, &L->proj[0], SEQK_ACTIVATION_NONE, NULL};
    for (int m = 0; m < 3; ++m) L->heads[m] = heads_view(mem[0], dt, B, Sq, 3 * E, m * E, H, hd);
  } else {
    L->n_in = 3;
    for (int m = 0; m < 3; ++m) {
      const int64_t shape[3] = {B, m == 0 ? Sq : Sk, E};
      L->proj[m] = seqk_tensor_view(mem[m], dt, SEQK_DEVICE_CUDA, 3, shape);
      L->w_in[m] = row_block(&w->in_proj_weight, m * E, E);
      if (b_in) L->b_in[m] = row_block(b_in, m * E, E);
      L->in_job[m] = (seqk_linear_job){src[m],      &L->w_in[m],          b_in ? &L->b_in[m] : NULL,
                                       &L->proj[m], SEQK_ACTIVATION_NONE, NULL};
      L->heads[m] = heads_view(mem[m], dt, B, shape[1], E, 0, H, hd);
    }
  }
  const int64_t merged_shape[3] = {B, Sq, E};
  L->merged = seqk_tensor_view(mem[3], dt, SEQK_DEVICE_CUDA, 3, merged_shape);
  L->o_heads = heads_view(mem[3], dt, B, Sq, E, 0, H, hd);
  /* The residual (the encoder layer's) rides on the out-projection GEMM as its addend. */
  L->out_job = (seqk_linear_job){&L->merged, &w->out_proj_weight,  b_out,
                                 out,        SEQK_ACTIVATION_NONE, r->residual};
  L->attn.q = &L->heads[0];
  L->attn.k = &L->heads[1];
  L->attn.v = &L->heads[2];
  L->attn.o = &L->o_heads;
  L->attn.causal = causal;
  L->attn.head_mean = r->per_head ? NULL : attn_weights;
  L->attn.p_out = r->per_head ? attn_weights : NULL;
  L->attn.key_mask = r->key_padding_mask;
  if (r->key_lengths) {
    /* While planning (no memory yet) the caller's lengths stand in for their copy: the plan only
       asks whether there are lengths, and without them it would leave out the unfused path's
       valid-keys copy of v. */
    L->lengths = *r->key_lengths;
    if (lengths_copied(r) && mem[4]) {
      L->lengths =
          seqk_tensor_view(mem[4], SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, r->key_lengths->shape);
    }
    L->attn.seqlens_k = (const int32_t *)L->lengths.data;
  }
}

seqk_status seqk__mha_job_plan(seqk_context_t ctx, const char *op, seqk_mha_job *j, size_t *bytes) {
  const seqk_mha_resolved *r = j->r;
  *bytes = 0;
  if (seqk__numel(j->out) == 0) return SEQK_STATUS_SUCCESS; /* B == 0 or Sq == 0 */
  /* Plan on layouts without memory; the run lays the same layout over the arena. */
  mha_layout L;
  void *mem[5] = {NULL, NULL, NULL, NULL, NULL};
  mha_layout_make(&L, j->w, r, j->query, j->key, j->value, j->out, j->attn_weights, mem);
  size_t attn_bytes = 0;
  SEQK_TRY(seqk__attention_job_plan(ctx, op, &L.attn, SEQK_ATTENTION_ALGO_AUTO, &attn_bytes));
  j->fused = L.attn.fused;
  for (int m = 0; m < L.n_in; ++m) *bytes = seqk__ws_sum(*bytes, seqk__ws_tensor(&L.proj[m]));
  *bytes = seqk__ws_sum(*bytes, seqk__ws_tensor(&L.merged));
  if (lengths_copied(r)) *bytes = seqk__ws_sum(*bytes, seqk__ws_tensor(r->key_lengths));
  for (int m = 0; m < L.n_in; ++m)
    *bytes = seqk__ws_sum(*bytes, seqk__linear_job_workspace(&L.in_job[m]));
  *bytes = seqk__ws_sum(*bytes, attn_bytes);
  *bytes = seqk__ws_sum(*bytes, seqk__linear_job_workspace(&L.out_job));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__mha_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                              const seqk_mha_job *j) {
  const seqk_mha_resolved *r = j->r;
  if (seqk__numel(j->out) == 0) return SEQK_STATUS_SUCCESS;
  mha_layout L;
  void *mem[5] = {NULL, NULL, NULL, NULL, NULL};
  mha_layout_make(&L, j->w, r, j->query, j->key, j->value, j->out, j->attn_weights, mem);
  for (int m = 0; m < L.n_in; ++m)
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_tensor(&L.proj[m]), &mem[m]));
  SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_tensor(&L.merged), &mem[3]));
  if (lengths_copied(r))
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_tensor(r->key_lengths), &mem[4]));
  mha_layout_make(&L, j->w, r, j->query, j->key, j->value, j->out, j->attn_weights, mem);
  L.attn.fused = j->fused;
  if (lengths_copied(r)) SEQK_TRY(seqk__cuda_copy(ctx, op, &L.lengths, r->key_lengths));
  for (int m = 0; m < L.n_in; ++m) SEQK_TRY(seqk__linear_job_run(ctx, op, arena, &L.in_job[m]));
  SEQK_TRY(seqk__attention_job_run(ctx, op, arena, &L.attn));
  return seqk__linear_job_run(ctx, op, arena, &L.out_job);
}

seqk_status seqk__cuda_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                   const seqk_mha_resolved *r, const seqk_tensor *query,
                                   const seqk_tensor *key, const seqk_tensor *value,
                                   const seqk_tensor *out, const seqk_tensor *attn_weights) {
  static const char op[] = "mha_forward";
  SEQK_TRY(seqk__require_device(ctx, op));
  seqk_mha_job job = {w, r, query, key, value, out, attn_weights, 0};
  size_t bytes = 0;
  SEQK_TRY(seqk__mha_job_plan(ctx, op, &job, &bytes));
  if (seqk__numel(out) == 0) return SEQK_STATUS_SUCCESS;
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  return seqk__mha_job_run(ctx, op, &arena, &job);
}

#endif /* SEQK_HAVE_CUDA */
