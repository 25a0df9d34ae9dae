/*
 * launchers.h - the C-callable entry points of the kernel sources (kernels/NAME.cu). Each takes already validated
 * arguments, launches on ctx's stream and turns a launch error into SEQK_STATUS_DEVICE_ERROR (with
 * the runtime's text in ctx's last error). None waits for the kernel to finish.
 */
#ifndef SEQK_KERNELS_LAUNCHERS_H
#define SEQK_KERNELS_LAUNCHERS_H

#include "seqk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst = src element by element, converting between F32/F16/BF16 (round to nearest even) or
   copying I32 to I32. Both tensors on SEQK_DEVICE_CUDA, same shape, any strides, not
   overlapping. */
seqk_status seqk__cuda_tensor_copy(seqk_context_t ctx, const seqk_tensor *dst, const seqk_tensor *src);

/* ---- heads.cu, embedding.cu, attention_merge.cu ------------------------------------------------ */
/* Each first answers NO_DEVICE (seqk__require_device) when no CUDA device is usable. */
/* split: x [B,S,H*D] -> y [B,H,S,D] with H = num_heads; merge: x [B,H,S,D] -> y [B,S,H*D].
   Same dtype, any strides, y disjoint from x. Bit-exact copies. */
seqk_status seqk__cuda_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                   const seqk_tensor *y);
seqk_status seqk__cuda_merge_heads(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *y);
/* out = table[indices] (seqk_embedding). Unlike the other launchers this one waits for the
   stream: the indices are range-checked on the device first and an out-of-range one returns
   INVALID_VALUE naming its position, with out untouched (the gather is never launched). */
seqk_status seqk__cuda_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                 const seqk_tensor *table, const seqk_tensor *out);
/* seqk_attention_merge; lse may be NULL or absent (data NULL). o may alias o_a/o_b and lse may
   alias lse_a/lse_b exactly. */
seqk_status seqk__cuda_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                       const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                       const seqk_tensor *lse_b, const seqk_tensor *o,
                                       const seqk_tensor *lse);

/* ---- attention_unfused.cu: the cuBLAS attention path, linear, mha_forward ------------------ */
/* The CUDA branches of seqk_attention_scores, seqk_attention_values, seqk_attention (FUSED answers
   NOT_SUPPORTED until the fused kernel exists; AUTO and UNFUSED run scores -> softmax -> values),
   seqk_linear and seqk_mha_forward, on validated arguments; absent optional tensors are NULL
   (lse, b, attn_weights; mha's absent biases have data NULL). Each first answers NO_DEVICE when
   no CUDA device is usable, and takes its scratch from ctx's workspace. */
seqk_status seqk__cuda_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                        const seqk_tensor *k, float scale, int32_t causal,
                                        const seqk_tensor *s);
seqk_status seqk__cuda_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                        const seqk_tensor *v, const seqk_tensor *o);
/* The unfused path (cuBLAS QK^T -> attention softmax -> cuBLAS PV) whatever params->algo says;
   host/ops_attention.c chooses between it and the fused kernel. */
seqk_status seqk__cuda_attention_unfused(seqk_context_t ctx, const seqk_attention_params *params,
                                         const seqk_tensor *q, const seqk_tensor *k,
                                         const seqk_tensor *v, const seqk_tensor *o,
                                         const seqk_tensor *lse);
seqk_status seqk__cuda_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                              const seqk_tensor *b, const seqk_tensor *y);
seqk_status seqk__cuda_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w, int32_t num_heads,
                                   int32_t causal, const seqk_tensor *query,
                                   const seqk_tensor *key, const seqk_tensor *value,
                                   const seqk_tensor *out, const seqk_tensor *attn_weights);
/* Small kernels around the GEMMs (float dtypes, any strides, CUDA tensors):
   fill_rows: y[..., j] = bias[j] (bias [y.shape[-1]] of y's dtype) on every row, or value
   everywhere when bias is NULL; y.ndim >= 1.
   causal_mask: s [B,H,Sq,Sk], -inf at j > i + Sk - Sq (bottom-right aligned), nothing else written.
   copy_valid_keys: dst (contiguous, v's shape [B,Hk,Sk,Dv]) = v with keys j >= seqlens_k[b]
   (device array) written as 0 and never read.
   head_mean: attn [B,Sq,Sk] = p [B,H,Sq,Sk] averaged over h (fp32 sum). */
seqk_status seqk__cuda_fill_rows(seqk_context_t ctx, const seqk_tensor *y, const seqk_tensor *bias,
                                 float value);
seqk_status seqk__cuda_causal_mask(seqk_context_t ctx, const seqk_tensor *s);
seqk_status seqk__cuda_copy_valid_keys(seqk_context_t ctx, const seqk_tensor *dst,
                                       const seqk_tensor *v, const int32_t *seqlens_k);
seqk_status seqk__cuda_head_mean(seqk_context_t ctx, const seqk_tensor *p, const seqk_tensor *attn);

/* Fused (flash) attention, kernels/flash_dispatch.cu: seqk_attention's semantics on CUDA tensors
   validated as seqk_attention validates them (params may be NULL for the defaults; seqlens_q /
   seqlens_k are device int32 arrays or NULL; lse optional). F16/BF16 with D, Dv multiples of 8 and
   16-byte aligned rows run on tensor cores, everything else up to D, Dv = 256 on the fp32 SIMT
   kernel; short-query, long-key calls split the keys (partials in ctx's workspace). Returns
   NOT_SUPPORTED with a message for what no fused kernel serves (D or Dv > 256, devices before
   sm_80, extents past 32-bit row indexing or the grid), so the caller can fall back. */
seqk_status seqk__cuda_attention_fused(seqk_context_t ctx, const seqk_attention_params *params,
                                       const seqk_tensor *q, const seqk_tensor *k,
                                       const seqk_tensor *v, const seqk_tensor *o,
                                       const seqk_tensor *lse);
/* The same inside an op that already holds a workspace arena (host/device.h): *bytes is what the
   call will take (add it to the plan before seqk__arena_open), and _in takes it from arena. Both
   report NOT_SUPPORTED exactly as seqk__cuda_attention_fused does. */
struct seqk_arena;
seqk_status seqk__cuda_attention_fused_workspace(seqk_context_t ctx,
                                                 const seqk_attention_params *params,
                                                 const seqk_tensor *q, const seqk_tensor *k,
                                                 const seqk_tensor *v, const seqk_tensor *o,
                                                 size_t *bytes);
seqk_status seqk__cuda_attention_fused_in(seqk_context_t ctx, struct seqk_arena *arena,
                                          const seqk_attention_params *params,
                                          const seqk_tensor *q, const seqk_tensor *k,
                                          const seqk_tensor *v, const seqk_tensor *o,
                                          const seqk_tensor *lse);
/* Tests only: overrides seqk__cuda_attention_fused's choices for every later call in the process
   (not thread-safe). kernel: 0 automatic, 1 the fp32 SIMT kernel, 2 the tensor-core kernel where
   it applies (as automatic). splits: 0 automatic, n >= 1 at most n key splits. */
void seqk__cuda_attention_fused_force(int kernel, int splits);

/* ---- softmax.cu ------------------------------------------------------------------------------- */
/* y = softmax(x) along dim (already normalised to 0..ndim-1), seqk_softmax's semantics: F32/F16/
   BF16 in and out (same dtype), fp32 math, any strides, y may alias x exactly. May take a small
   piece of ctx's workspace (one float2 per row chunk for rows longer than 32768 when there are
   few rows), never when x or y lie in the workspace. NO_DEVICE when no CUDA device is usable. */
seqk_status seqk__cuda_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                               const seqk_tensor *y);
/* The softmax of the unfused attention path. scores: fp32 [B,H,Sq,Sk], contiguous (row stride
   Sk), device memory, the UNSCALED q.k products. p: [B,H,Sq,Sk] in the attention dtype (F32/F16/
   BF16), any strides with stride[3] == 1 (INTERNAL_ERROR otherwise, when Sk > 1); p may be the
   scores buffer itself only when it is F32 with the same layout. p = softmax over j of
   scale * scores under seqk_attention's mask: with Sq_b = seqlens_q[b], Sk_b = seqlens_k[b]
   (device arrays, or Sq / Sk when NULL; clamped to [0, Sq] / [0, Sk]), query i of batch b sees
   keys j < Sk_b, and with causal also j <= i + Sk_b - Sq_b; masked p = 0; rows i >= Sq_b and rows
   with no visible key are all 0 with lse = +inf. lse: NULL or absent, or F32 [B,H,Sq] (any
   strides): the natural-log logsumexp of the scaled, masked row, in fp32. scale is used as given
   (the caller resolves 0 -> 1/sqrt(D)); it may be negative. Uses no workspace (the scores
   usually live there). */
seqk_status seqk__cuda_attention_softmax(seqk_context_t ctx, const float *scores, int64_t B,
                                         int64_t H, int64_t Sq, int64_t Sk, float scale,
                                         int32_t causal, const int32_t *seqlens_q,
                                         const int32_t *seqlens_k, const seqk_tensor *p,
                                         const seqk_tensor *lse);

/* ---- rnn.cu: recurrent cells and layers ----------------------------------------------------- */
/* The CUDA branches of seqk_rnn_cell and seqk_rnn_forward, on arguments validated by the entries
   (host/ops_rnn.c); absent optionals are NULL or have data NULL. lengths is the CPU I32 tensor
   (values in [1, T]); it is read on the host. fp32 GEMMs (cuBLAS) and fp32 state; scratch from
   ctx's workspace. Each first answers NO_DEVICE when no CUDA device is usable. */
seqk_status seqk__cuda_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                                const seqk_tensor *h, const seqk_tensor *c,
                                const seqk_tensor *w_ih, const seqk_tensor *w_hh,
                                const seqk_tensor *b_ih, const seqk_tensor *b_hh,
                                const seqk_tensor *h_out, const seqk_tensor *c_out);
seqk_status seqk__cuda_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                   const seqk_rnn_weights *w, const seqk_tensor *x,
                                   const seqk_tensor *h0, const seqk_tensor *c0,
                                   const seqk_tensor *lengths, const seqk_tensor *y,
                                   const seqk_tensor *hn, const seqk_tensor *cn);
/* Tests only: seqk_rnn_forward's recurrence path for every later call in the process (not
   thread-safe). 0 automatic, 1 the per-step path (cuBLAS GEMM + gate kernel per step), 2 the
   persistent cooperative kernel wherever it fits (any batch size; the per-step path otherwise).
   seqk__cuda_rnn_persistent_applies says which path a layer of this shape takes now (1 the
   persistent kernel); it is the dispatcher's own decision function. */
void seqk__cuda_rnn_force(int path);
int32_t seqk__cuda_rnn_persistent_applies(seqk_rnn_mode mode, seqk_dtype dtype, int64_t batch,
                                          int64_t hidden);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_KERNELS_LAUNCHERS_H */
