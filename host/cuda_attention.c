/*
 * cuda_attention.c - attention on CUDA tensors: seqk_attention_scores, seqk_attention_values,
 * seqk_attention (the choice between the fused kernels and the unfused cuBLAS path, and both
 * paths' plans), and the attention step of ops that run it inside (MHA).
 *
 * The unfused path's GEMMs go through seqk__matmul (blas.c), which takes strided views: nothing
 * here copies an operand unless cuBLAS cannot address it. Grouped-query heads never copy K or V:
 *   - grouped path: when the g = H/Hk query heads that share one key head lie as consecutive rows
 *     (head stride == Sq * row stride, or Sq == 1, the decode case) in q and in the output, they
 *     are ONE matrix of g*Sq rows, and the product is batched over (b, key head): the fewest,
 *     largest GEMMs;
 *   - per-head path: otherwise (e.g. a [B,S,H,D] buffer seen as [B,H,S,D]) the product is batched
 *     over (b, key head) for each of the g heads of a group, with K's batch stride 0 between them.
 * Unfused attention: S = q k^T into an fp32 workspace [B,H,Sq,Sk] (unscaled, fp32 output even for
 * f16/bf16 inputs, so the softmax sees the products before any rounding), the attention softmax
 * (kernels/softmax.cu) writes P in the attention dtype with masked keys, padded keys and padded
 * rows as 0 and the lse, then o = P v. Padded keys of v (j >= seqlens_k[b]) may hold anything
 * (NaN): 0 * NaN would leak through the GEMM, so with seqlens_k v goes through a copy that
 * zeroes them (B*Hk*Sk*Dv elements, small next to the B*H*Sq*Sk of S and P).
 * Fused attention: the flash kernels (kernels/flash_attention.cu decides which and whether they
 * serve a shape, with a reason code when they do not); split-KV partials come from the arena.
 * Workspace (one arena per public call, planned up front, see device.h):
 *   unfused: S (4 B) + P (elem) per B*H*Sq*Sk, + v copy with seqlens_k, + operand copies;
 *   fused:   the split-KV partials (splits*B*H*Sq*(Dv+1) floats), often nothing.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "attention_rules.h"
#include "blas.h"
#include "geometry.h"
#include "launchers.h"

#include <math.h>
#include <string.h>

/* Tests only (seqk__cuda_attention_fused_force). */
static seqk_k_flash_force g_force = {0, 0};

void seqk__cuda_attention_fused_force(int kernel, int splits) {
  g_force.kernel = kernel;
  g_force.splits = splits;
}

/* ---- the unfused path's products ---------------------------------------------------------------- */

/* Rows (r, i) of t [B,H,R,C], r over the heads of a group and i < R, at one uniform stride *ld?
   (The heads of a group are consecutive, so only the head stride against the row stride counts.) */
static int group_rows(const seqk_tensor *t, int64_t *ld) {
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
static void grouped_product(seqk_matmul *mm, const seqk_tensor *x, const seqk_tensor *y,
                            int y_transposed, const seqk_tensor *out, float alpha) {
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

/* One product in an arena of its own. */
static seqk_status run_product(seqk_context_t ctx, const char *op, const seqk_matmul *mm) {
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__matmul_workspace(mm), &arena));
  return seqk__matmul(ctx, op, &arena, mm);
}

seqk_status seqk__cuda_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                        const seqk_tensor *k, float scale, int32_t causal,
                                        const seqk_tensor *s) {
  static const char op[] = "attention_scores";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(s) == 0) return SEQK_STATUS_SUCCESS;
  seqk_matmul mm;
  /* D == 0 gives k == 0: seqk__matmul writes 0 without touching the scale (no 0 * inf). */
  grouped_product(&mm, q, k, 1, s, (float)seqk__attention_scale(scale, q->shape[3]));
  SEQK_TRY(run_product(ctx, op, &mm));
  if (!causal) return SEQK_STATUS_SUCCESS;
  seqk_k_causal_mask_params m;
  memset(&m, 0, sizeof m);
  m.s = s->data;
  m.dtype = s->dtype;
  m.H = s->shape[1];
  m.Sq = s->shape[2];
  m.Sk = s->shape[3];
  m.rows = s->shape[0] * m.H * m.Sq;
  for (int d = 0; d < 4; ++d) m.stride[d] = s->stride[d];
  return seqk__launched(ctx, op, "causal_mask", seqk_k_causal_mask(&m, (cudaStream_t)ctx->stream));
}

seqk_status seqk__cuda_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                        const seqk_tensor *v, const seqk_tensor *o) {
  static const char op[] = "attention_values";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS;
  seqk_matmul mm;
  grouped_product(&mm, p, v, 0, o, 1.0f); /* Sk == 0: k == 0, o = 0 */
  return run_product(ctx, op, &mm);
}

/* ---- the fused path ------------------------------------------------------------------------------ */

/* job: a job's paged cache and packed starts (NULL: neither). */
static void flash_args(const seqk_attention_params *pa, const seqk_tensor *q, const seqk_tensor *k,
                       const seqk_tensor *v, const seqk_tensor *o, const seqk_tensor *lse,
                       const seqk_attention_job *job, seqk_k_flash_args *a) {
  const seqk_kv_cache *paged = job ? job->paged : NULL;
  memset(a, 0, sizeof *a);
  a->q = q->data;
  a->k = k->data;
  a->v = v->data;
  a->o = o->data;
  a->lse = seqk__present(lse) ? (float *)lse->data : NULL;
  a->dtype = q->dtype;
  a->B = q->shape[0];
  a->H = q->shape[1];
  a->Sq = q->shape[2];
  a->D = q->shape[3];
  a->Hk = k->shape[1];
  a->Sk = k->shape[2];
  a->Dv = v->shape[3];
  for (int d = 0; d < 4; ++d) {
    a->q_stride[d] = q->stride[d];
    a->k_stride[d] = k->stride[d];
    a->v_stride[d] = v->stride[d];
    a->o_stride[d] = o->stride[d];
  }
  if (a->lse)
    for (int d = 0; d < 3; ++d) a->lse_stride[d] = lse->stride[d];
  a->scale = seqk__attention_scale(pa->scale, a->D);
  const seqk_key_window win = seqk__attention_window(pa);
  a->left = win.left;
  a->right = win.right;
  a->softcap = pa->softcap;
  a->alibi_slopes = pa->alibi_slopes;
  a->seqlens_q = pa->seqlens_q;
  a->seqlens_k = pa->seqlens_k;
  if (job) {
    a->q_start = job->q_start;
    a->k_start = job->k_start;
    a->k_rows = job->k_rows;
  }
  if (paged) {
    a->page_table = (const int32_t *)paged->page_table.data;
    a->pt_stride[0] = paged->page_table.stride[0];
    a->pt_stride[1] = paged->page_table.stride[1];
    a->page_size = paged->k.shape[1];
    a->num_pages = paged->k.shape[0];
  }
}

/* NOT_SUPPORTED saying why the fused kernels do not serve this call. */
static seqk_status fused_refusal(seqk_context_t ctx, const char *op, seqk_k_flash_support why,
                                 const seqk_k_flash_args *a, const seqk_device_info *dev) {
  switch (why) {
    case SEQK_K_FLASH_HEAD_DIM:
      return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                        "%s: the fused kernels serve head dims up to 256 (D=%lld, Dv=%lld)", op,
                        (long long)a->D, (long long)a->Dv);
    case SEQK_K_FLASH_ROWS:
      return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                        "%s: the fused kernels index rows and heads in 32 bits (Sq=%lld, Sk=%lld, "
                        "H=%lld, H/Hk=%lld)",
                        op, (long long)a->Sq, (long long)a->Sk, (long long)a->H,
                        (long long)(a->H / a->Hk));
    case SEQK_K_FLASH_GRID:
      return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                        "%s: the fused kernels' grid holds at most 65535 batches and key heads "
                        "and 2^31 row tiles (B=%lld, Hk=%lld)",
                        op, (long long)a->B, (long long)a->Hk);
    case SEQK_K_FLASH_ARCH:
      return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                        "%s: the fused kernels need sm_80 or newer (the device is sm_%d%d)", op,
                        (int)dev->cc_major, (int)dev->cc_minor);
    case SEQK_K_FLASH_STRIDE:
      return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                        "%s: the fused kernels take K and V row strides below 2^26 elements "
                        "(k stride %lld, v stride %lld)",
                        op, (long long)a->k_stride[2], (long long)a->v_stride[2]);
    case SEQK_K_FLASH_OK: break;
  }
  return SEQK_STATUS_SUCCESS;
}

/* The fused kernels' plan for a call: *why says whether they serve it (no status is recorded
   for a refusal: it is an answer, and the caller decides whether it is an error). */
static seqk_status fused_plan(seqk_context_t ctx, const char *op, const seqk_attention_params *pa,
                              const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                              const seqk_tensor *o, const seqk_tensor *lse,
                              const seqk_attention_job *job, seqk_k_flash_support *why,
                              seqk_k_flash_plan *plan) {
  const seqk_device_info *dev = NULL;
  seqk_k_flash_args a;
  SEQK_TRY(seqk__device_info(ctx, op, &dev));
  flash_args(pa, q, k, v, o, lse, job, &a);
  a.batch_invariant = ctx->batch_invariant;
  *why = seqk_k_flash_plan_call(&a, dev->sms, dev->cc_major, g_force, plan);
  return SEQK_STATUS_SUCCESS;
}

/* Workspace the split-KV partials of a plan take. */
static size_t fused_bytes(const seqk_k_flash_plan *plan) {
  if (plan->part_rows == 0) return 0;
  return seqk__ws_sum(seqk__ws_elems(seqk__mul_sat(plan->part_rows, plan->p.Dv), sizeof(float)),
                      seqk__ws_elems(plan->part_rows, sizeof(float)));
}

static seqk_status fused_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                             seqk_k_flash_plan *plan) {
  if (plan->part_rows > 0) {
    void *po = NULL, *pl = NULL;
    SEQK_TRY(seqk__arena_take(
        ctx, op, arena, seqk__ws_elems(seqk__mul_sat(plan->part_rows, plan->p.Dv), sizeof(float)),
        &po));
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_elems(plan->part_rows, sizeof(float)), &pl));
    plan->p.part_o = (float *)po;
    plan->p.part_lse = (float *)pl;
  }
  return seqk__launched(ctx, op, plan->tc ? "fused tensor-core" : "fused fp32",
                        seqk_k_flash_launch(plan, (cudaStream_t)ctx->stream));
}

/* The fused path as FUSED promises it: the plan, or NOT_SUPPORTED with the reason. */
static seqk_status fused_plan_or_refuse(seqk_context_t ctx, const char *op,
                                        const seqk_attention_params *params, const seqk_tensor *q,
                                        const seqk_tensor *k, const seqk_tensor *v,
                                        const seqk_tensor *o, const seqk_tensor *lse,
                                        seqk_k_flash_plan *plan) {
  const seqk_attention_params defaults = seqk__attention_defaults();
  const seqk_attention_params *pa = params ? params : &defaults;
  seqk_k_flash_support why;
  SEQK_TRY(fused_plan(ctx, op, pa, q, k, v, o, lse, NULL, &why, plan));
  if (why == SEQK_K_FLASH_OK) return SEQK_STATUS_SUCCESS;
  seqk_k_flash_args a;
  flash_args(pa, q, k, v, o, lse, NULL, &a);
  return fused_refusal(ctx, op, why, &a, &ctx->device_info);
}

seqk_status seqk__cuda_attention_fused_workspace(seqk_context_t ctx,
                                                 const seqk_attention_params *params,
                                                 const seqk_tensor *q, const seqk_tensor *k,
                                                 const seqk_tensor *v, const seqk_tensor *o,
                                                 size_t *bytes) {
  seqk_k_flash_plan plan;
  *bytes = 0;
  SEQK_TRY(fused_plan_or_refuse(ctx, "attention", params, q, k, v, o, NULL, &plan));
  *bytes = fused_bytes(&plan);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__cuda_attention_fused_in(seqk_context_t ctx, seqk_arena *arena,
                                          const seqk_attention_params *params, const seqk_tensor *q,
                                          const seqk_tensor *k, const seqk_tensor *v,
                                          const seqk_tensor *o, const seqk_tensor *lse) {
  seqk_k_flash_plan plan;
  SEQK_TRY(fused_plan_or_refuse(ctx, "attention", params, q, k, v, o, lse, &plan));
  return fused_run(ctx, "attention", arena, &plan);
}

seqk_status seqk__cuda_attention_fused(seqk_context_t ctx, const seqk_attention_params *params,
                                       const seqk_tensor *q, const seqk_tensor *k,
                                       const seqk_tensor *v, const seqk_tensor *o,
                                       const seqk_tensor *lse) {
  static const char op[] = "attention";
  seqk_k_flash_plan plan;
  seqk_arena arena;
  SEQK_TRY(fused_plan_or_refuse(ctx, op, params, q, k, v, o, lse, &plan));
  SEQK_TRY(seqk__arena_open(ctx, op, fused_bytes(&plan), &arena));
  return fused_run(ctx, op, &arena, &plan);
}

/* ---- one attention call, planned: the job of seqk_attention and of ops running it inside ------ */

/* The workspace views and products of the unfused path; data pointers NULL while planning. */
typedef struct unfused_layout {
  seqk_tensor s, p, v_valid;
  seqk_matmul qk, pv;
  int copy_v;
} unfused_layout;

static int job_has_work(const seqk_attention_job *j) {
  return seqk__numel(j->o) > 0 && j->k->shape[2] > 0;
}

void seqk__attention_job_take(seqk_attention_job *j, const seqk_attention_params *p) {
  j->scale = p->scale;
  j->causal = p->causal;
  j->window = p->window;
  j->window_left = p->window_left;
  j->window_right = p->window_right;
  j->softcap = p->softcap;
  j->alibi_slopes = p->alibi_slopes;
  j->seqlens_q = p->seqlens_q;
  j->seqlens_k = p->seqlens_k;
}

/* The inverse of seqk__attention_job_take (algo FUSED). */
static seqk_attention_params job_params(const seqk_attention_job *j) {
  seqk_attention_params p = seqk__attention_defaults();
  p.scale = j->scale;
  p.causal = j->causal;
  p.window = j->window;
  p.window_left = j->window_left;
  p.window_right = j->window_right;
  p.softcap = j->softcap;
  p.alibi_slopes = j->alibi_slopes;
  p.algo = SEQK_ATTENTION_ALGO_FUSED;
  p.seqlens_q = j->seqlens_q;
  p.seqlens_k = j->seqlens_k;
  return p;
}

/* Workspace pieces of the S, P and valid-keys buffers, in bytes (rounded). */
static void unfused_pieces(const seqk_attention_job *j, size_t *s_bytes, size_t *p_bytes,
                           size_t *v_bytes) {
  const int64_t n_s = seqk__mul_sat(seqk__mul_sat(j->q->shape[0], j->q->shape[1]),
                                    seqk__mul_sat(j->q->shape[2], j->k->shape[2]));
  *s_bytes = seqk__ws_elems(n_s, 4);
  *p_bytes = seqk__ws_elems(n_s, seqk_dtype_size(j->q->dtype));
  *v_bytes = j->seqlens_k ? seqk__ws_elems(seqk__numel(j->v), seqk_dtype_size(j->v->dtype)) : 0;
}

static void unfused_layout_make(const seqk_attention_job *j, unfused_layout *L, void *s_mem,
                                void *p_mem, void *v_mem) {
  const int64_t B = j->q->shape[0], H = j->q->shape[1], Sq = j->q->shape[2];
  const int64_t Sk = j->k->shape[2];
  const int64_t s_shape[4] = {B, H, Sq, Sk};
  L->s = seqk_tensor_view(s_mem, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 4, s_shape);
  L->p = seqk_tensor_view(p_mem, j->q->dtype, SEQK_DEVICE_CUDA, 4, s_shape);
  L->copy_v = j->seqlens_k != NULL;
  L->v_valid =
      L->copy_v ? seqk_tensor_view(v_mem, j->v->dtype, SEQK_DEVICE_CUDA, 4, j->v->shape) : *j->v;
  /* Unscaled fp32 scores: the softmax folds the scale into its exponent. */
  grouped_product(&L->qk, j->q, j->k, 1, &L->s, 1.0f);
  grouped_product(&L->pv, &L->p, &L->v_valid, 0, j->o, 1.0f);
}

static size_t unfused_workspace(const seqk_attention_job *j) {
  unfused_layout L;
  size_t s_bytes, p_bytes, v_bytes;
  unfused_layout_make(j, &L, NULL, NULL, NULL);
  unfused_pieces(j, &s_bytes, &p_bytes, &v_bytes);
  size_t bytes = seqk__ws_sum(seqk__ws_sum(s_bytes, p_bytes), v_bytes);
  bytes = seqk__ws_sum(bytes, seqk__matmul_workspace(&L.qk));
  return seqk__ws_sum(bytes, seqk__matmul_workspace(&L.pv));
}

static seqk_status unfused_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                               const seqk_attention_job *j) {
  unfused_layout L;
  size_t s_bytes, p_bytes, v_bytes;
  void *s_mem = NULL, *p_mem = NULL, *v_mem = NULL;
  unfused_pieces(j, &s_bytes, &p_bytes, &v_bytes);
  SEQK_TRY(seqk__arena_take(ctx, op, arena, s_bytes, &s_mem));
  SEQK_TRY(seqk__arena_take(ctx, op, arena, p_bytes, &p_mem));
  if (v_bytes) SEQK_TRY(seqk__arena_take(ctx, op, arena, v_bytes, &v_mem));
  unfused_layout_make(j, &L, s_mem, p_mem, v_mem);

  const int64_t B = L.s.shape[0], H = L.s.shape[1], Sq = L.s.shape[2], Sk = L.s.shape[3];
  const seqk_attention_params jp = job_params(j);
  const seqk_key_window win = seqk__attention_window(&jp);
  float scale = (float)seqk__attention_scale(j->scale, j->q->shape[3]);
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.qk));
  if (win.left >= 0 || j->softcap > 0.0f || j->alibi_slopes) {
    /* scaled, capped, biased and cut at the window's left edge here; the softmax then takes
       scale 1 */
    seqk_k_score_mod_params sm;
    memset(&sm, 0, sizeof sm);
    sm.s = (float *)L.s.data;
    sm.B = B;
    sm.H = H;
    sm.Sq = Sq;
    sm.Sk = Sk;
    sm.n = seqk__numel(&L.s);
    sm.scale = scale;
    sm.softcap = j->softcap;
    sm.alibi_slopes = j->alibi_slopes;
    sm.left = win.left;
    sm.seqlens_q = j->seqlens_q;
    sm.seqlens_k = j->seqlens_k;
    SEQK_TRY(
        seqk__launched(ctx, op, "score_mod", seqk_k_score_mod(&sm, (cudaStream_t)ctx->stream)));
    scale = 1.0f;
  }
  if (j->key_mask) {
    seqk_k_key_mask_params km;
    memset(&km, 0, sizeof km);
    km.s = (float *)L.s.data;
    km.mask = (const int32_t *)j->key_mask->data;
    km.H = H;
    km.Sq = Sq;
    km.Sk = Sk;
    km.n = seqk__numel(&L.s);
    km.mask_stride[0] = j->key_mask->stride[0];
    km.mask_stride[1] = j->key_mask->stride[1];
    SEQK_TRY(seqk__launched(ctx, op, "key_mask", seqk_k_key_mask(&km, (cudaStream_t)ctx->stream)));
  }
  SEQK_TRY(seqk__cuda_attention_softmax(ctx, (const float *)L.s.data, B, H, Sq, Sk, scale,
                                        win.right, j->seqlens_q, j->seqlens_k, &L.p, j->lse));
  if (L.copy_v) {
    seqk_k_valid_keys_params c;
    memset(&c, 0, sizeof c);
    c.dst = L.v_valid.data;
    c.v = j->v->data;
    c.dtype = j->v->dtype;
    c.seqlens_k = j->seqlens_k;
    c.Hk = j->v->shape[1];
    c.Sk = j->v->shape[2];
    c.Dv = j->v->shape[3];
    c.n = seqk__numel(j->v);
    for (int d = 0; d < 4; ++d) c.v_stride[d] = j->v->stride[d];
    SEQK_TRY(seqk__launched(ctx, op, "copy_valid_keys",
                            seqk_k_copy_valid_keys(&c, (cudaStream_t)ctx->stream)));
  }
  SEQK_TRY(seqk__matmul(ctx, op, arena, &L.pv));
  if (win.left >= 0 || win.right >= 0 || j->seqlens_q) {
    /* Rows that do not see every key had 0 * v for the others: repair the rare ones a NaN or inf
       reached that way (kernels/attention_masks.cu). */
    seqk_k_attention_repair_params r;
    memset(&r, 0, sizeof r);
    r.o = j->o->data;
    r.p = L.p.data;
    r.v = j->v->data;
    r.dtype = j->o->dtype;
    r.B = B;
    r.H = H;
    r.Hk = j->v->shape[1];
    r.Sq = Sq;
    r.Sk = Sk;
    r.Dv = j->v->shape[3];
    for (int d = 0; d < 4; ++d) {
      r.o_stride[d] = j->o->stride[d];
      r.p_stride[d] = L.p.stride[d];
      r.v_stride[d] = j->v->stride[d];
    }
    r.seqlens_q = j->seqlens_q;
    r.seqlens_k = j->seqlens_k;
    r.left = win.left;
    r.right = win.right;
    SEQK_TRY(seqk__launched(ctx, op, "attention_repair",
                            seqk_k_attention_repair(&r, (cudaStream_t)ctx->stream)));
  }
  if (j->p_out) SEQK_TRY(seqk__cuda_copy(ctx, op, j->p_out, &L.p));
  if (j->head_mean) {
    seqk_k_head_mean_params m;
    memset(&m, 0, sizeof m);
    m.p = L.p.data;
    m.attn = j->head_mean->data;
    m.dtype = L.p.dtype;
    m.H = H;
    m.Sq = Sq;
    m.Sk = Sk;
    m.n = seqk__numel(j->head_mean);
    for (int d = 0; d < 4; ++d) m.p_stride[d] = L.p.stride[d];
    for (int d = 0; d < 3; ++d) m.attn_stride[d] = j->head_mean->stride[d];
    SEQK_TRY(seqk__launched(ctx, op, "head_mean", seqk_k_head_mean(&m, (cudaStream_t)ctx->stream)));
  }
  return SEQK_STATUS_SUCCESS;
}

/* ---- a paged job on the unfused path: the pages gathered into contiguous rows first --------- */

/* The workspace piece of t's gathered copy ([B, Hk, capacity, D(v)] contiguous). */
static size_t gathered_piece(const seqk_tensor *t) {
  return seqk__ws_elems(seqk__numel(t), seqk_dtype_size(t->dtype));
}
static size_t gathered_bytes(const seqk_attention_job *j) {
  return seqk__ws_sum(gathered_piece(j->k), gathered_piece(j->v));
}

/* j with its k and v replaced by the gathered views gk, gv (memory k_mem, v_mem; NULL while
   planning). */
static seqk_attention_job gathered_job(const seqk_attention_job *j, void *k_mem, void *v_mem,
                                       seqk_tensor *gk, seqk_tensor *gv) {
  seqk_attention_job g = *j;
  *gk = seqk_tensor_view(k_mem, j->k->dtype, SEQK_DEVICE_CUDA, 4, j->k->shape);
  *gv = seqk_tensor_view(v_mem, j->v->dtype, SEQK_DEVICE_CUDA, 4, j->v->shape);
  g.k = gk;
  g.v = gv;
  g.paged = NULL;
  return g;
}

static seqk_status gathered_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                const seqk_attention_job *j) {
  void *k_mem = NULL, *v_mem = NULL;
  SEQK_TRY(seqk__arena_take(ctx, op, arena, gathered_piece(j->k), &k_mem));
  SEQK_TRY(seqk__arena_take(ctx, op, arena, gathered_piece(j->v), &v_mem));
  seqk_tensor gk, gv;
  const seqk_attention_job g = gathered_job(j, k_mem, v_mem, &gk, &gv);
  const seqk_kv_cache *c = j->paged;
  seqk_k_kv_gather_params p;
  memset(&p, 0, sizeof p);
  p.k = c->k.data;
  p.v = c->v.data;
  p.dst_k = k_mem;
  p.dst_v = v_mem;
  p.page_table = (const int32_t *)c->page_table.data;
  p.len = j->seqlens_k;
  p.elem_size = seqk_dtype_size(j->k->dtype);
  p.B = gk.shape[0];
  p.Hk = gk.shape[1];
  p.S = gk.shape[2];
  p.D = gk.shape[3];
  p.Dv = gv.shape[3];
  p.page_size = c->k.shape[1];
  for (int d = 0; d < 4; ++d) {
    p.k_stride[d] = c->k.stride[d];
    p.v_stride[d] = c->v.stride[d];
    p.dk_stride[d] = gk.stride[d];
    p.dv_stride[d] = gv.stride[d];
  }
  p.pt_stride[0] = c->page_table.stride[0];
  p.pt_stride[1] = c->page_table.stride[1];
  SEQK_TRY(seqk__launched(ctx, op, "kv_gather", seqk_k_kv_gather(&p, (cudaStream_t)ctx->stream)));
  return unfused_run(ctx, op, arena, &g);
}

/* Whether the flash kernels serve j and the workspace either path then takes, asked while
   planning (data pointers may be NULL). The fused kernels' answer depends on the shapes, the
   dtype, the device and the operands' alignment; the planned views are NULL (aligned) where the
   real ones are arena pieces at offsets the kernels' alignment test accepts whenever the head dim
   does, so the run makes the same choice and takes the same bytes (a mismatch would surface as the
   arena's INTERNAL_ERROR, never as an overrun). */
seqk_status seqk__attention_job_plan(seqk_context_t ctx, const char *op, seqk_attention_job *j,
                                     seqk_attention_algo algo, size_t *bytes) {
  *bytes = 0;
  j->fused = 0;
  /* FUSED answers for the shape even when there is nothing to compute. */
  if (algo != SEQK_ATTENTION_ALGO_UNFUSED && !j->head_mean && !j->p_out && !j->key_mask &&
      (job_has_work(j) || algo == SEQK_ATTENTION_ALGO_FUSED)) {
    const seqk_attention_params params = job_params(j);
    seqk_k_flash_support why;
    seqk_k_flash_plan plan;
    SEQK_TRY(fused_plan(ctx, op, &params, j->q, j->k, j->v, j->o, j->lse, j, &why, &plan));
    if (why == SEQK_K_FLASH_OK) {
      j->fused = 1;
      *bytes = fused_bytes(&plan);
      return SEQK_STATUS_SUCCESS;
    }
    if (algo == SEQK_ATTENTION_ALGO_FUSED) {
      seqk_k_flash_args a;
      flash_args(&params, j->q, j->k, j->v, j->o, j->lse, j, &a);
      return fused_refusal(ctx, op, why, &a, &ctx->device_info);
    }
  }
  if (!job_has_work(j)) return SEQK_STATUS_SUCCESS;
  if (!j->paged) {
    *bytes = unfused_workspace(j);
    return SEQK_STATUS_SUCCESS;
  }
  /* Paged: the gathered keys and values, then the unfused path over them. */
  seqk_tensor gk, gv;
  seqk_attention_job g = gathered_job(j, NULL, NULL, &gk, &gv);
  *bytes = seqk__ws_sum(gathered_bytes(j), unfused_workspace(&g));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__attention_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                    const seqk_attention_job *j) {
  if (seqk__numel(j->o) == 0) return SEQK_STATUS_SUCCESS;
  if (j->k->shape[2] == 0) {
    /* No key at all: every row is empty (o = 0, lse = +inf), and attn_weights has no element. */
    SEQK_TRY(seqk__cuda_fill(ctx, op, j->o, NULL, 0.0f));
    if (j->lse) SEQK_TRY(seqk__cuda_fill(ctx, op, j->lse, NULL, INFINITY));
    return SEQK_STATUS_SUCCESS;
  }
  if (!j->fused && j->paged) return gathered_run(ctx, op, arena, j);
  if (!j->fused) return unfused_run(ctx, op, arena, j);
  const seqk_attention_params params = job_params(j);
  seqk_k_flash_support why;
  seqk_k_flash_plan plan;
  SEQK_TRY(fused_plan(ctx, op, &params, j->q, j->k, j->v, j->o, j->lse, j, &why, &plan));
  if (why != SEQK_K_FLASH_OK)
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: the fused kernels refused at run time what they accepted when planned",
                      op);
  return fused_run(ctx, op, arena, &plan);
}

seqk_status seqk__cuda_attention(seqk_context_t ctx, const seqk_attention_params *params,
                                 const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                                 const seqk_tensor *o, const seqk_tensor *lse) {
  static const char op[] = "attention";
  seqk_attention_job job;
  seqk_arena arena;
  size_t bytes = 0;
  SEQK_TRY(seqk__require_device(ctx, op));
  memset(&job, 0, sizeof job);
  job.q = q;
  job.k = k;
  job.v = v;
  job.o = o;
  job.lse = lse;
  seqk__attention_job_take(&job, params);
  SEQK_TRY(seqk__attention_job_plan(ctx, op, &job, params->algo, &bytes));
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  return seqk__attention_job_run(ctx, op, &arena, &job);
}

#endif /* SEQK_HAVE_CUDA */
