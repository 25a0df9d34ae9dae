/*
 * ref_kv_cache.h - the CPU references of seqk_kv_cache_append and seqk_attention_kv_cache
 * (ref_kv_cache.c), and the one rule of where a sequence's new tokens go, which the CUDA path's kernel (kernels/kv_cache.cu, `fits`)
 * applies the same way. Not installed.
 */
#ifndef SEQK_REF_KV_CACHE_H
#define SEQK_REF_KV_CACHE_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The geometry every path shares, from a validated descriptor of B sequences (and S_new new
   tokens for an append; 0 otherwise): contiguous caches are one page per sequence (page_size =
   S_max, max_pages = 1, page b). */
typedef struct seqk_kv_geometry {
  int64_t B, S_new, Hk, D, Dv;
  int64_t page_size, max_pages, num_pages;
  int64_t capacity; /* max_pages * page_size, saturated */
  int paged;
} seqk_kv_geometry;
seqk_kv_geometry seqk__kv_geometry(const seqk_kv_cache *cache, int64_t B, int64_t S_new);

/* Rotary keys on the way in (seqk_kv_cache_append_rotary), resolved by the entry. */
typedef struct seqk_kv_rope { /* (cuda_ops.h names it by its tag) */
  int64_t rotary_dim;
  int neox;
  double log2_theta;
  const seqk_tensor *q; /* rotated in place at the same positions, or NULL */
} seqk_kv_rope;

/* Validated descriptors on the CPU: every sequence's positions are checked first (INVALID_VALUE
   naming the first that does not fit, nothing written), then the copy (keys rotated and q
   rotated when rope is not NULL), then the advance. */
seqk_status seqk__ref_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                      const seqk_tensor *cache_seqlens, int32_t advance,
                                      const seqk_tensor *k_new, const seqk_tensor *v_new,
                                      const seqk_kv_rope *rope);

/* seqk_attention_kv_cache on validated CPU tensors (params not NULL, lse NULL when absent):
   every sequence's length and pages are checked first (INVALID_VALUE naming the first that fails,
   nothing written), the sequences' keys and values are gathered into scratch, and the reference
   attention runs over them with cache_seqlens as seqlens_k. */
seqk_status seqk__ref_attention_kv_cache(seqk_context_t ctx, const seqk_attention_params *params,
                                         const seqk_tensor *q, const seqk_kv_cache *cache,
                                         const seqk_tensor *cache_seqlens, seqk_tensor *o,
                                         seqk_tensor *lse);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_REF_KV_CACHE_H */
