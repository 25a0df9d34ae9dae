/*
 * cuda_layers.c - the layer ops on CUDA tensors: seqk_linear (one cuBLAS GEMM over the flattened
 * rows, bias written first and added by a beta = 1 GEMM), seqk_mha_forward (projections, heads as
 * strided views, attention, output projection, all in one workspace arena) and seqk_embedding
 * (range check, then gather: kernels/embedding.cu).
 *
 * Workspace (one arena per public call, planned up front, see device.h):
 *   linear:      contiguous copies of x / y when their leading dims do not flatten to one row
 *                stride, + operand copies;
 *   mha_forward: the projections (one [B,S,3E] buffer for self-attention, else q/k/v [B,S,E]),
 *                the attention output [B,Sq,E], + what its linears and its attention take;
 *   embedding:   one word (the first bad index position).
 * mha_forward's attention runs on the fused (flash) kernels unless attn_weights is asked for
 * (the head mean needs P, which only the unfused path materialises) or the fused kernels do not
 * serve the shape (head dim > 256, ...). The choice is made while planning (seqk__attention_job_plan),
 * so the one arena holds exactly the chosen path's share: the fused one is only the split-KV
 * partials (often nothing), not the B*H*Sq*Sk S and P.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "blas.h"
#include "geometry.h"
#include "launchers.h"

#include <string.h>

/* A contiguous descriptor [shape] of dtype on the device over data (NULL while planning). */
static seqk_tensor device_tensor(void *data, seqk_dtype dt, int32_t ndim, const int64_t *shape) {
  return seqk_tensor_view(data, dt, SEQK_DEVICE_CUDA, ndim, shape);
}

/* Bytes of a contiguous copy of t, rounded as the arena rounds. */
static size_t copy_bytes(const seqk_tensor *t) {
  return seqk__ws_elems(seqk__numel(t), seqk_dtype_size(t->dtype));
}

/* ---- linear ---------------------------------------------------------------------------------- */

/* The leading dims of t [..., C] as rows at one stride *rs (size-1 dims are free)? */
static int flat_rows(const seqk_tensor *t, int64_t *rs) {
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

typedef struct linear_job {
  const seqk_tensor *x, *w, *b, *y;   /* b NULL: no bias */
} linear_job;

typedef struct linear_layout {
  int copy_x, copy_y;
  seqk_tensor xc, yc;   /* contiguous stand-ins when copied */
  seqk_matmul mm;
} linear_layout;

static void linear_layout_make(const linear_job *j, linear_layout *L, void *x_mem, void *y_mem) {
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

static size_t linear_workspace(const linear_job *j) {
  linear_layout L;
  linear_layout_make(j, &L, NULL, NULL);
  size_t bytes = seqk__matmul_workspace(&L.mm);
  if (L.copy_x) bytes = seqk__ws_sum(bytes, copy_bytes(j->x));
  if (L.copy_y) bytes = seqk__ws_sum(bytes, copy_bytes(j->y));
  return bytes;
}

static seqk_status linear_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                              const linear_job *j) {
  if (seqk__numel(j->y) == 0) return SEQK_STATUS_SUCCESS;
  linear_layout L;
  int64_t rs;
  void *x_mem = NULL, *y_mem = NULL;
  if (!flat_rows(j->x, &rs)) SEQK_TRY(seqk__arena_take(ctx, op, arena, copy_bytes(j->x), &x_mem));
  if (!flat_rows(j->y, &rs)) SEQK_TRY(seqk__arena_take(ctx, op, arena, copy_bytes(j->y), &y_mem));
  linear_layout_make(j, &L, x_mem, y_mem);
  if (L.copy_x) SEQK_TRY(seqk__cuda_copy(ctx, op, &L.xc, j->x));
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.mm));
  if (L.copy_y) SEQK_TRY(seqk__cuda_copy(ctx, op, j->y, &L.yc));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__cuda_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                              const seqk_tensor *b, const seqk_tensor *y) {
  static const char op[] = "linear";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(y) == 0) return SEQK_STATUS_SUCCESS;
  const linear_job job = {x, w, b, y};
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, linear_workspace(&job), &arena));
  return linear_run(ctx, op, &arena, &job);
}

/* ---- multi-head attention --------------------------------------------------------------------- */

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
  int self;                 /* query, key and value are one tensor: one in-projection GEMM */
  seqk_tensor proj[3];      /* [B,S,E] (or the one [B,S,3E]) projection buffers */
  seqk_tensor w_in[3], b_in[3];
  seqk_tensor heads[3];     /* q, k, v as [B,H,S,hd] views into the projections */
  seqk_tensor merged;       /* [B,Sq,E]: the attention output, merged by its layout */
  seqk_tensor o_heads;      /* the same memory as [B,H,Sq,hd] */
  int n_in;                 /* in-projection GEMMs: 1 (self) or 3 */
  linear_job in_job[3], out_job;
  seqk_attention_job attn;
} mha_layout;

static void mha_layout_make(mha_layout *L, const seqk_mha_weights *w, int32_t num_heads,
                            int32_t causal, const seqk_tensor *query, const seqk_tensor *key,
                            const seqk_tensor *value, const seqk_tensor *out,
                            const seqk_tensor *attn_weights, void *const mem[4]) {
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
    L->in_job[0] = (linear_job){query, &w->in_proj_weight, b_in, &L->proj[0]};
    for (int m = 0; m < 3; ++m)
      L->heads[m] = heads_view(mem[0], dt, B, Sq, 3 * E, m * E, H, hd);
  } else {
    L->n_in = 3;
    for (int m = 0; m < 3; ++m) {
      const int64_t shape[3] = {B, m == 0 ? Sq : Sk, E};
      L->proj[m] = device_tensor(mem[m], dt, 3, shape);
      L->w_in[m] = row_block(&w->in_proj_weight, m * E, E);
      if (b_in) L->b_in[m] = row_block(b_in, m * E, E);
      L->in_job[m] = (linear_job){src[m], &L->w_in[m], b_in ? &L->b_in[m] : NULL, &L->proj[m]};
      L->heads[m] = heads_view(mem[m], dt, B, shape[1], E, 0, H, hd);
    }
  }
  const int64_t merged_shape[3] = {B, Sq, E};
  L->merged = device_tensor(mem[3], dt, 3, merged_shape);
  L->o_heads = heads_view(mem[3], dt, B, Sq, E, 0, H, hd);
  L->out_job = (linear_job){&L->merged, &w->out_proj_weight, b_out, out};
  L->attn.q = &L->heads[0];
  L->attn.k = &L->heads[1];
  L->attn.v = &L->heads[2];
  L->attn.o = &L->o_heads;
  L->attn.causal = causal;
  L->attn.head_mean = attn_weights;
}

seqk_status seqk__cuda_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w, int32_t num_heads,
                                   int32_t causal, const seqk_tensor *query,
                                   const seqk_tensor *key, const seqk_tensor *value,
                                   const seqk_tensor *out, const seqk_tensor *attn_weights) {
  static const char op[] = "mha_forward";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(out) == 0) return SEQK_STATUS_SUCCESS;   /* B == 0 or Sq == 0 */
  /* Plan on layouts without memory, then lay the same layout over the arena. */
  mha_layout L;
  void *mem[4] = {NULL, NULL, NULL, NULL};
  mha_layout_make(&L, w, num_heads, causal, query, key, value, out, attn_weights, mem);
  size_t attn_bytes = 0, bytes = 0;
  SEQK_TRY(seqk__attention_job_plan(ctx, op, &L.attn, SEQK_ATTENTION_ALGO_AUTO, &attn_bytes));
  const int fused = L.attn.fused;
  for (int m = 0; m < L.n_in; ++m) bytes = seqk__ws_sum(bytes, copy_bytes(&L.proj[m]));
  bytes = seqk__ws_sum(bytes, copy_bytes(&L.merged));
  for (int m = 0; m < L.n_in; ++m) bytes = seqk__ws_sum(bytes, linear_workspace(&L.in_job[m]));
  bytes = seqk__ws_sum(bytes, attn_bytes);
  bytes = seqk__ws_sum(bytes, linear_workspace(&L.out_job));

  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  for (int m = 0; m < L.n_in; ++m)
    SEQK_TRY(seqk__arena_take(ctx, op, &arena, copy_bytes(&L.proj[m]), &mem[m]));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, copy_bytes(&L.merged), &mem[3]));
  mha_layout_make(&L, w, num_heads, causal, query, key, value, out, attn_weights, mem);
  L.attn.fused = fused;
  for (int m = 0; m < L.n_in; ++m) SEQK_TRY(linear_run(ctx, op, &arena, &L.in_job[m]));
  SEQK_TRY(seqk__attention_job_run(ctx, op, &arena, &L.attn));
  return linear_run(ctx, op, &arena, &L.out_job);
}

/* ---- embedding ------------------------------------------------------------------------------- */

/* The gather's params: the index dims with size-1 dims dropped and neighbours contiguous in both
   indices and out merged (a contiguous [B,S] batch becomes one dim). */
static void embedding_params(const seqk_tensor *indices, const seqk_tensor *table,
                             const seqk_tensor *out, seqk_k_embedding_params *p) {
  memset(p, 0, sizeof *p);
  p->out = out->data;
  p->table = table->data;
  p->indices = (const int32_t *)indices->data;
  p->elem_size = seqk_dtype_size(table->dtype);
  p->n = seqk__numel(indices);
  p->V = table->shape[0];
  p->E = table->shape[1];
  p->table_stride[0] = table->stride[0];
  p->table_stride[1] = table->stride[1];
  p->out_col_stride = out->stride[indices->ndim];
  for (int32_t d = 0; d < indices->ndim; ++d) {
    const int64_t n = indices->shape[d];
    if (n == 1) continue;
    if (p->ndim > 0) {
      const int32_t q = p->ndim - 1;
      if (p->idx_stride[q] == indices->stride[d] * n && p->out_stride[q] == out->stride[d] * n) {
        p->shape[q] *= n;
        p->idx_stride[q] = indices->stride[d];
        p->out_stride[q] = out->stride[d];
        continue;
      }
    }
    p->shape[p->ndim] = n;
    p->idx_stride[p->ndim] = indices->stride[d];
    p->out_stride[p->ndim] = out->stride[d];
    ++p->ndim;
  }
}

/* INVALID_VALUE naming the first index outside [0, V), or SUCCESS. The synchronous copy is the
   price of the contract: whether out may be written at all depends on data that lives on the
   device, and the error must be returned by this call. (A gather that clamped, or that raised
   the error asynchronously, would not need it.) */
static seqk_status check_range(seqk_context_t ctx, const char *op, const seqk_tensor *indices,
                               const seqk_k_embedding_params *p) {
  seqk_arena arena;
  void *word = NULL;
  unsigned long long found = 0;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_elems(1, sizeof found), &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, sizeof found, &word));
  SEQK_TRY(seqk__launched(ctx, op, "range-check",
                          seqk_k_embedding_check(p, (unsigned long long *)word,
                                                 (cudaStream_t)ctx->stream)));
  SEQK_TRY(seqk__device_memcpy(ctx, op, &found, word, sizeof found, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  if (found == ~0ull) return SEQK_STATUS_SUCCESS;

  /* The error path only: fetch the offending value for the message. */
  const int64_t pos = (int64_t)found;
  int32_t value = 0;
  const int32_t *at = (const int32_t *)indices->data + seqk__offset_of_linear(indices, pos);
  SEQK_TRY(seqk__device_memcpy(ctx, op, &value, at, sizeof value, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  char where[SEQK_POSITION_CHARS];
  seqk__format_position(where, sizeof where, indices, pos);
  return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: indices%s=%d out of range [0, %lld)", op,
                    where, (int)value, (long long)p->V);
}

seqk_status seqk__cuda_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                 const seqk_tensor *table, const seqk_tensor *out) {
  static const char op[] = "embedding";
  seqk_k_embedding_params p;
  SEQK_TRY(seqk__require_device(ctx, op));
  embedding_params(indices, table, out, &p);
  if (p.n == 0) return SEQK_STATUS_SUCCESS;
  /* Even with E == 0 (nothing to copy) a bad index is an error, as on the CPU. */
  SEQK_TRY(check_range(ctx, op, indices, &p));
  if (p.E == 0) return SEQK_STATUS_SUCCESS;
  return seqk__launched(ctx, op, "gather", seqk_k_embedding_gather(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
