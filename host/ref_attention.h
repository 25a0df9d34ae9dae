/*
 * ref_attention.h - CPU references for the attention building blocks, attention and merge.
 *
 * These are the oracles for the CUDA kernels: double accumulation, any strides, every element
 * read and written through seqk__load / seqk__store. They take arguments that the public entries
 * in ops_attention.c have already validated (shapes, dtypes, devices, overlap), so they check
 * nothing but allocation. Scratch is allocated before any output byte is written, so an
 * ALLOC_FAILED return leaves the outputs untouched.
 *
 * Only ops_attention.c calls these; layers (MHA) go through the public API.
 */
#ifndef SEQK_REF_ATTENTION_H
#define SEQK_REF_ATTENTION_H

#include "geometry.h"
#include "internal.h"
#include "numeric.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = softmax(x) along dim (already normalised to [0, ndim)). y may be x's exact view. */
seqk_status seqk__ref_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                              seqk_tensor *y);

/* x [B,S,H*D] -> y [B,H,S,D]. */
seqk_status seqk__ref_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                  seqk_tensor *y);
/* x [B,H,S,D] -> y [B,S,H*D]. */
seqk_status seqk__ref_merge_heads(seqk_context_t ctx, const seqk_tensor *x, seqk_tensor *y);

/* s = scale * q k^T with grouped key heads and the bottom-right causal mask (-inf).
   scale == 0 means 1/sqrt(D). */
seqk_status seqk__ref_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                       const seqk_tensor *k, float scale, int32_t causal,
                                       seqk_tensor *s);
/* o = p v with grouped value heads. */
seqk_status seqk__ref_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                       const seqk_tensor *v, seqk_tensor *o);

/* Direct attention, one query row at a time (scores in double, max, exp, sum, weighted sum of v);
   params is never NULL here (the entry substitutes defaults); lse may be absent. */
seqk_status seqk__ref_attention(seqk_context_t ctx, const seqk_attention_params *params,
                                const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                                seqk_tensor *o, seqk_tensor *lse);

/* seqk_attention_packed: seqk__ref_attention over each sequence's rows (offsets checked by the
   entry); rows outside every sequence are not written. */
seqk_status seqk__ref_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                       const seqk_tensor *q, const seqk_tensor *k,
                                       const seqk_tensor *v, const seqk_tensor *cu_q,
                                       const seqk_tensor *cu_k, seqk_tensor *o, seqk_tensor *lse);

/* Merge of two partial attention results; o may be o_a's or o_b's exact view, lse may be lse_a's
   or lse_b's exact view; lse may be absent. */
seqk_status seqk__ref_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                      const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                      const seqk_tensor *lse_b, seqk_tensor *o, seqk_tensor *lse);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_REF_ATTENTION_H */
