/*
 * cuda_linear.c - seqk_linear / seqk_linear_ex on CUDA tensors: one cuBLAS GEMM over the
 * flattened rows (blas.c), the bias written into y first and added by a beta = 1 GEMM, so f16/bf16
 * outputs round once. Also the linear step of ops that run it inside (MHA's projections).
 * Epilogues: without an activation the residual joins the addend (y = residual + bias written
 * first, or nothing at all when y is the residual and there is no bias), so the GEMM's beta = 1
 * adds it for free; with an activation one pointwise pass after the GEMM computes
 * y = act(y) + residual. (cuBLASLt's epilogues would fuse the activation but not a residual added
 * after it, and its GELU is the tanh form only.) When y is the residual itself and an activation
 * is asked, the GEMM writes a workspace stand-in, or it would overwrite the residual it needs.
 *
 * Workspace (one arena per public call, planned up front, see device.h): contiguous copies of x /
 * y when their leading dims do not flatten to one row stride (or the stand-in above), + operand
 * copies.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "blas.h"
#include "geometry.h"

#include <string.h>

/* The leading dims of t [..., C] as rows at one stride *rs (size-1 dims are free)? */
static int flat_rows(const seqk_tensor *t, int64_t *rs) {
  int64_t expect = -1;         /* stride the next kept dim must have times its extent */
  *rs = t->shape[t->ndim - 1]; /* any value works for at most one row */
  for (int32_t d = 0; d + 1 < t->ndim; ++d) {
    if (t->shape[d] == 1) continue;
    if (expect >= 0 && expect != t->shape[d] * t->stride[d]) return 0;
    expect = t->stride[d];
    *rs = t->stride[d];
  }
  return 1;
}

/* The epilogue after the GEMM: an activation (and the residual with it). */
static int post_pass(const seqk_linear_job *j) { return j->act != SEQK_ACTIVATION_NONE; }

/* The GEMM cannot write y in place: y is the residual and a post pass needs the residual. */
static int y_needs_stand_in(const seqk_linear_job *j) {
  return post_pass(j) && j->residual && seqk__same_view(j->y, j->residual);
}

typedef struct linear_layout {
  int copy_x, copy_y;
  seqk_tensor xc, yc; /* contiguous stand-ins when copied */
  seqk_matmul mm;
} linear_layout;

static void linear_layout_make(const seqk_linear_job *j, linear_layout *L, void *x_mem,
                               void *y_mem) {
  const seqk_tensor *x = j->x, *y = j->y, *w = j->w;
  const int32_t last = x->ndim - 1;
  int64_t rs_x = 0, rs_y = 0;
  L->copy_x = !flat_rows(x, &rs_x);
  L->copy_y = !flat_rows(y, &rs_y) || y_needs_stand_in(j);
  L->xc = seqk_tensor_view(x_mem, x->dtype, SEQK_DEVICE_CUDA, x->ndim, x->shape);
  L->yc = seqk_tensor_view(y_mem, y->dtype, SEQK_DEVICE_CUDA, y->ndim, y->shape);
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

/* A [..., Out] view of bias [Out] repeated over y's rows (stride 0). */
static seqk_tensor bias_rows(const seqk_tensor *b, const seqk_tensor *y) {
  seqk_tensor v = *y;
  v.data = b->data;
  for (int32_t d = 0; d + 1 < y->ndim; ++d) v.stride[d] = 0;
  v.stride[y->ndim - 1] = b->stride[0];
  return v;
}

size_t seqk__linear_job_workspace(const seqk_linear_job *j) {
  linear_layout L;
  linear_layout_make(j, &L, NULL, NULL);
  size_t bytes = seqk__matmul_workspace(&L.mm);
  if (L.copy_x) bytes = seqk__ws_sum(bytes, seqk__ws_tensor(j->x));
  if (L.copy_y) bytes = seqk__ws_sum(bytes, seqk__ws_tensor(j->y));
  return bytes;
}

seqk_status seqk__linear_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                 const seqk_linear_job *j) {
  if (seqk__numel(j->y) == 0) return SEQK_STATUS_SUCCESS;
  linear_layout L;
  int64_t rs;
  void *x_mem = NULL, *y_mem = NULL;
  if (!flat_rows(j->x, &rs))
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_tensor(j->x), &x_mem));
  if (!flat_rows(j->y, &rs) || y_needs_stand_in(j))
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_tensor(j->y), &y_mem));
  linear_layout_make(j, &L, x_mem, y_mem);
  const seqk_tensor *yv = L.copy_y ? &L.yc : j->y; /* what the GEMM writes */
  if (L.copy_x) SEQK_TRY(seqk__cuda_copy(ctx, op, &L.xc, j->x));
  if (j->residual && !post_pass(j)) {
    /* The residual (+ bias) as the GEMM's addend. */
    if (j->b) {
      const seqk_tensor rows = bias_rows(j->b, yv);
      SEQK_TRY(seqk__cuda_pointwise(ctx, op, SEQK_ACTIVATION_NONE, &rows, NULL, j->residual, yv));
    } else if (!seqk__same_view(yv, j->residual)) {
      SEQK_TRY(seqk__cuda_copy(ctx, op, yv, j->residual));
    }
    L.mm.bias = NULL;
    L.mm.accumulate = 1;
  }
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.mm));
  if (post_pass(j)) /* straight from the stand-in into y when there is one */
    return seqk__cuda_pointwise(ctx, op, j->act, yv, NULL, j->residual, j->y);
  if (L.copy_y) SEQK_TRY(seqk__cuda_copy(ctx, op, j->y, &L.yc));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__cuda_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                              const seqk_tensor *b, seqk_activation act,
                              const seqk_tensor *residual, const seqk_tensor *y) {
  const char *op = act == SEQK_ACTIVATION_NONE && !residual ? "linear" : "linear_ex";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(y) == 0) return SEQK_STATUS_SUCCESS;
  const seqk_linear_job job = {x, w, b, y, act, residual};
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__linear_job_workspace(&job), &arena));
  return seqk__linear_job_run(ctx, op, &arena, &job);
}

#endif /* SEQK_HAVE_CUDA */
