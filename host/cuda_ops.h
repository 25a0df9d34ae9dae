/*
 * cuda_ops.h - the CUDA branches of the public entries (host/cuda_*.c): each takes arguments the
 * entry already validated, turns the descriptors into the kernels' params (kernels/launchers.h),
 * carves their scratch from ctx's workspace arena, runs cuBLAS where a product is needed, and
 * launches on ctx's stream. None waits for the stream unless it says so. Each first answers
 * NO_DEVICE when no CUDA device is usable. Not installed.
 *
 * In a build without the toolkit none of these exist: the entries reach them through
 * SEQK_ON_CUDA, which then answers NO_DEVICE ("this seqk was built without CUDA").
 */
#ifndef SEQK_CUDA_OPS_H
#define SEQK_CUDA_OPS_H

#include "cuda_copy.h"
#include "device.h"
#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef SEQK_HAVE_CUDA
#define SEQK_ON_CUDA(ctx, op, call) (call)
#else
#define SEQK_ON_CUDA(ctx, op, call) seqk__built_without_cuda((ctx), (op))
#endif

/* ---- cuda_softmax.c --------------------------------------------------------------------------- */
/* seqk_softmax (dim normalised). May take a small piece of the workspace (rows longer than 32768
   when there are few of them), never when x or y lie in the workspace. */
seqk_status seqk__cuda_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                               const seqk_tensor *y);
/* The softmax of the unfused attention path (launchers.h, seqk_k_attention_softmax_params): scores fp32
   [B,H,Sq,Sk] contiguous device memory, p [B,H,Sq,Sk] of the attention dtype with stride[3] == 1
   (INTERNAL_ERROR otherwise, when Sk > 1), lse NULL or F32 [B,H,Sq]; scale as applied; right: the
   key window's right extent (-1 unbounded, causal 0). */
seqk_status seqk__cuda_attention_softmax(seqk_context_t ctx, const float *scores, int64_t B,
                                         int64_t H, int64_t Sq, int64_t Sk, float scale,
                                         int32_t right, const int32_t *seqlens_q,
                                         const int32_t *seqlens_k, const seqk_tensor *p,
                                         const seqk_tensor *lse);

/* ---- cuda_heads.c ----------------------------------------------------------------------------- */
seqk_status seqk__cuda_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                   const seqk_tensor *y);
seqk_status seqk__cuda_merge_heads(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *y);

/* ---- cuda_attention.c ------------------------------------------------------------------------- */
seqk_status seqk__cuda_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                        const seqk_tensor *k, float scale, int32_t causal,
                                        const seqk_tensor *s);
seqk_status seqk__cuda_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                        const seqk_tensor *v, const seqk_tensor *o);
/* seqk_attention on CUDA tensors: params resolved (not NULL); lse NULL when absent. The one
   place that chooses the path: UNFUSED the cuBLAS path, FUSED the flash kernels or NOT_SUPPORTED
   with the reason, AUTO the flash kernels wherever they apply, else the unfused path. */
seqk_status seqk__cuda_attention(seqk_context_t ctx, const seqk_attention_params *params,
                                 const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                                 const seqk_tensor *o, const seqk_tensor *lse);
/* seqk_attention_packed (cuda_attention_packed.c); max_q, max_k the bounds with 0 resolved. */
seqk_status seqk__cuda_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                        const seqk_tensor *q, const seqk_tensor *k,
                                        const seqk_tensor *v, const seqk_tensor *cu_q,
                                        const seqk_tensor *cu_k, int64_t max_q, int64_t max_k,
                                        const seqk_tensor *o, const seqk_tensor *lse);
/* The fused path alone (tests call it directly): NOT_SUPPORTED with the reason where the flash
   kernels do not serve the shape. params may be NULL for the defaults. */
seqk_status seqk__cuda_attention_fused(seqk_context_t ctx, const seqk_attention_params *params,
                                       const seqk_tensor *q, const seqk_tensor *k,
                                       const seqk_tensor *v, const seqk_tensor *o,
                                       const seqk_tensor *lse);
/* The same inside an op that already holds a workspace arena: *bytes is what the call will take
   (add it to the plan before seqk__arena_open), and _in takes it from arena. */
seqk_status seqk__cuda_attention_fused_workspace(seqk_context_t ctx,
                                                 const seqk_attention_params *params,
                                                 const seqk_tensor *q, const seqk_tensor *k,
                                                 const seqk_tensor *v, const seqk_tensor *o,
                                                 size_t *bytes);
seqk_status seqk__cuda_attention_fused_in(seqk_context_t ctx, seqk_arena *arena,
                                          const seqk_attention_params *params, const seqk_tensor *q,
                                          const seqk_tensor *k, const seqk_tensor *v,
                                          const seqk_tensor *o, const seqk_tensor *lse);
/* Tests only: overrides the fused path's choices for every later call in the process (not
   thread-safe). kernel: 0 automatic, 1 the fp32 SIMT kernel, 2 the tensor-core kernel where it
   applies (as automatic). splits: 0 automatic, n >= 1 at most n key splits. */
void seqk__cuda_attention_fused_force(int kernel, int splits);
/* One attention call inside an op that holds a workspace arena (and seqk_attention itself):
   plan it (which path, and the workspace it takes: add *bytes to the op's plan before
   seqk__arena_open), then run it from the arena. algo as seqk_attention's; a job that asks for
   head_mean always runs the unfused path (only it materialises P). */
typedef struct seqk_attention_job {
  const seqk_tensor *q, *k, *v, *o; /* [B,H,Sq,D], [B,Hk,Sk,D], [B,Hk,Sk,Dv], [B,H,Sq,Dv] */
  const seqk_tensor *lse;           /* NULL: not asked for */
  float scale;                      /* 0: 1/sqrt(D) */
  int32_t causal;
  int32_t window, window_left, window_right; /* as seqk_attention_params' */
  float softcap;
  const float *alibi_slopes;            /* [H] device-readable, or NULL */
  const int32_t *seqlens_q, *seqlens_k; /* device arrays or NULL */
  const seqk_tensor *head_mean;         /* MHA: P averaged over heads into [B,Sq,Sk]; or NULL */
  const seqk_tensor *p_out;             /* MHA per head: P copied into [B,H,Sq,Sk]; or NULL */
  const seqk_tensor *key_mask; /* I32 [B,Sk]: nonzero keys get -inf scores (unfused); or NULL */
  /* Paged K/V (seqk_attention_kv_cache), or NULL: k and v are then the pages seen as [B, Hk,
     capacity, D(v)] (data and strides {page, head, row, 1} of the cache's k/v; the batch stride's
     place holds the page stride), read through this cache's page table; seqlens_k required. */
  const seqk_kv_cache *paged;
  /* Packed sequences (seqk_attention_packed), or NULL: q, o, lse, k and v are then the packed
     tensors seen as [B, H, max_len, .] with batch stride 0 (seqk__packed_as_batches); batch b
     starts at row q_start[b] / k_start[b], seqlens_q and seqlens_k hold the checked lengths.
     The fused kernels alone serve it. k_rows: the packed k and v's rows (the extent of the
     Hopper kernel's tensor maps). */
  const int32_t *q_start, *k_start;
  int64_t k_rows;
  int fused; /* set by the plan: the flash kernels run it */
} seqk_attention_job;
/* The job's scale, mask (causal, window), softcap, ALiBi slopes and lengths from seqk_attention's params. */
void seqk__attention_job_take(seqk_attention_job *j, const seqk_attention_params *p);
seqk_status seqk__attention_job_plan(seqk_context_t ctx, const char *op, seqk_attention_job *j,
                                     seqk_attention_algo algo, size_t *bytes);
seqk_status seqk__attention_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                    const seqk_attention_job *j);
/* seqk_attention_merge; lse NULL when absent. */
seqk_status seqk__cuda_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                       const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                       const seqk_tensor *lse_b, const seqk_tensor *o,
                                       const seqk_tensor *lse);

/* ---- cuda_linear.c ---------------------------------------------------------------------------- */
/* seqk_linear_ex (b, residual NULL when absent). */
seqk_status seqk__cuda_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                              const seqk_tensor *b, seqk_activation act,
                              const seqk_tensor *residual, const seqk_tensor *y);
/* One linear inside an op that holds a workspace arena (MHA's projections, the encoder layer):
   y = act(x w^T + b) + residual. Add seqk__linear_job_workspace to the op's plan before
   seqk__arena_open. */
typedef struct seqk_linear_job {
  const seqk_tensor *x, *w, *b, *y; /* b NULL: no bias */
  seqk_activation act;
  const seqk_tensor *residual; /* NULL: none; y may alias it exactly */
} seqk_linear_job;
size_t seqk__linear_job_workspace(const seqk_linear_job *j);
seqk_status seqk__linear_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                 const seqk_linear_job *j);

/* ---- cuda_mha.c ------------------------------------------------------------------------------- */
/* attn_weights NULL when not asked for; absent biases have data NULL. */
seqk_status seqk__cuda_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                   const seqk_mha_resolved *r, const seqk_tensor *query,
                                   const seqk_tensor *key, const seqk_tensor *value,
                                   const seqk_tensor *out, const seqk_tensor *attn_weights);
/* The same inside an op that holds a workspace arena (the encoder layer): plan (the bytes to add
   before seqk__arena_open; sets j->fused), then run from the arena. */
typedef struct seqk_mha_job {
  const seqk_mha_weights *w;
  const seqk_mha_resolved *r;
  const seqk_tensor *query, *key, *value, *out, *attn_weights; /* attn_weights NULL: none */
  int fused;
} seqk_mha_job;
seqk_status seqk__mha_job_plan(seqk_context_t ctx, const char *op, seqk_mha_job *j, size_t *bytes);
seqk_status seqk__mha_job_run(seqk_context_t ctx, const char *op, seqk_arena *arena,
                              const seqk_mha_job *j);
/* ---- cuda_encoder_layer.c -------------------------------------------------------------------- */
/* seqk_transformer_encoder_layer_forward on batch-first views; absent tensors NULL. */
seqk_status seqk__cuda_encoder_layer(seqk_context_t ctx, const seqk_encoder_layer_desc *d,
                                     const seqk_encoder_layer_weights *w, const seqk_tensor *src_bf,
                                     const seqk_tensor *out_bf, const seqk_tensor *key_lengths,
                                     const seqk_tensor *key_padding_mask);

/* ---- cuda_embedding.c ------------------------------------------------------------------------- */
/* out = table[indices]. Waits for the stream: the indices are range-checked on the device first
   and an out-of-range one returns INVALID_VALUE naming its position, with out untouched (the
   gather is never launched). */
seqk_status seqk__cuda_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                 const seqk_tensor *table, const seqk_tensor *out);

/* ---- cuda_norm.c, cuda_activation.c, cuda_rotary.c: the transformer blocks ---------------------- */
/* seqk_layer_norm (rms = 0) / seqk_rms_norm (rms = 1); absent tensors NULL. */
seqk_status seqk__cuda_norm(seqk_context_t ctx, int rms, const seqk_tensor *x,
                            const seqk_tensor *residual, const seqk_tensor *weight,
                            const seqk_tensor *bias, float eps, const seqk_tensor *y,
                            const seqk_tensor *residual_out);
/* y = act(x) [* up] [+ add] (up, add NULL when absent), one pass: the activations and the
   linear epilogues. y may alias x, up or add exactly. */
seqk_status seqk__cuda_pointwise(seqk_context_t ctx, const char *op, seqk_activation act,
                                 const seqk_tensor *x, const seqk_tensor *up,
                                 const seqk_tensor *add, const seqk_tensor *y);
/* seqk_rotary, rotary_dim resolved; positions and k NULL when absent. */
seqk_status seqk__cuda_rotary(seqk_context_t ctx, int neox, int64_t rotary_dim, double log2_theta,
                              const seqk_tensor *positions, const seqk_tensor *q,
                              const seqk_tensor *k);

/* ---- cuda_kv_cache.c ------------------------------------------------------------------------ */
/* seqk_kv_cache_append on validated CUDA descriptors (include/seqk.h). */
struct seqk_kv_rope; /* ref_kv_cache.h: rotary keys on the way in, or NULL */
seqk_status seqk__cuda_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                       const seqk_tensor *cache_seqlens, int32_t advance,
                                       const seqk_tensor *k_new, const seqk_tensor *v_new,
                                       const struct seqk_kv_rope *rope);
/* seqk_attention_kv_cache on validated CUDA tensors (params not NULL, lse NULL when absent). */
seqk_status seqk__cuda_attention_kv_cache(seqk_context_t ctx, const seqk_attention_params *params,
                                          const seqk_tensor *q, const seqk_kv_cache *cache,
                                          const seqk_tensor *cache_seqlens, const seqk_tensor *o,
                                          const seqk_tensor *lse);

/* ---- cuda_rnn.c ------------------------------------------------------------------------------- */
/* Absent optionals are NULL or have data NULL. lengths is the CPU I32 tensor (values in [1, T]),
   read on the host. fp32 GEMMs (cuBLAS) and fp32 state. */
seqk_status seqk__cuda_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                                const seqk_tensor *h, const seqk_tensor *c, const seqk_tensor *w_ih,
                                const seqk_tensor *w_hh, const seqk_tensor *b_ih,
                                const seqk_tensor *b_hh, const seqk_tensor *h_out,
                                const seqk_tensor *c_out);
seqk_status seqk__cuda_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                   const seqk_rnn_weights *w, const seqk_tensor *x,
                                   const seqk_tensor *h0, const seqk_tensor *c0,
                                   const seqk_tensor *lengths, const seqk_tensor *y,
                                   const seqk_tensor *hn, const seqk_tensor *cn);
/* Tests only: seqk_rnn_forward's recurrence path for every later call in the process (not
   thread-safe). 0 automatic, 1 the per-step path (cuBLAS GEMM + gate kernel per step), 2 the
   persistent cooperative kernel wherever it fits (any batch size; the per-step path otherwise).
   seqk__cuda_rnn_persistent_applies says which path a layer of this shape takes now on ctx's
   device (1 the persistent kernel, 0 the per-step path or no device); it asks the dispatcher's
   own decision function. */
void seqk__cuda_rnn_force(int path);
int32_t seqk__cuda_rnn_persistent_applies(seqk_context_t ctx, seqk_rnn_mode mode, seqk_dtype dtype,
                                          int64_t batch, int64_t hidden);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_CUDA_OPS_H */
