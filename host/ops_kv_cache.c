/*
 * ops_kv_cache.c - the public entries over a key/value cache (seqk_kv_cache_append(_rotary),
 * seqk_attention_kv_cache): validate every descriptor (nothing is written on an error), then run
 * the CPU reference or the CUDA path (cuda_kv_cache.c). The
 * values (cache_seqlens, page ids) are checked by the path that reads them: the reference on the
 * CPU, the device on CUDA (include/seqk.h).
 */
#include "attention_rules.h"
#include "device.h"
#include "ref_kv_cache.h"
#include "validate.h"

#include "cuda_ops.h"

/* The descriptor's tensors: k and v floats, a page table (when paged) an I32 matrix. */
static seqk_status check_cache_tensors(seqk_context_t ctx, const char *op,
                                       const seqk_kv_cache *cache) {
  if (!cache) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: cache is NULL", op);
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "cache.k", &cache->k));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "cache.v", &cache->v));
  if (cache->page_table.data) {
    SEQK_TRY(seqk__check_tensor(ctx, op, "cache.page_table", &cache->page_table));
    SEQK_TRY(seqk__check_dtype(ctx, op, "cache.page_table", &cache->page_table, SEQK_DTYPE_I32));
    SEQK_TRY(seqk__check_ndim(ctx, op, "cache.page_table", &cache->page_table, 2));
  }
  return SEQK_STATUS_SUCCESS;
}

/* The descriptor's shapes for B sequences of Hk heads: k [B or num_pages, S_max or page_size,
   Hk, D], v the same with Dv, the page table [B, max_pages] with page_size >= 1. The counts come
   from the call's other tensors (named in messages). */
static seqk_status check_cache_shapes(seqk_context_t ctx, const char *op,
                                      const seqk_kv_cache *cache, int64_t B, const char *b_name,
                                      int64_t Hk, const char *hk_name, int64_t D,
                                      const char *d_name, int64_t Dv, const char *dv_name) {
  const seqk_tensor *k = &cache->k, *v = &cache->v, *pt = &cache->page_table;
  SEQK_TRY(seqk__check_ndim(ctx, op, "cache.k", k, 4));
  SEQK_TRY(seqk__check_ndim(ctx, op, "cache.v", v, 4));
  if (!pt->data) SEQK_TRY(seqk__check_extent(ctx, op, "cache.k", k, 0, B, b_name));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.k", k, 2, Hk, hk_name));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.k", k, 3, D, d_name));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.v", v, 0, k->shape[0], "cache.k.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.v", v, 1, k->shape[1], "cache.k.shape[1]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.v", v, 2, Hk, hk_name));
  SEQK_TRY(seqk__check_extent(ctx, op, "cache.v", v, 3, Dv, dv_name));
  if (pt->data) {
    SEQK_TRY(seqk__check_extent(ctx, op, "cache.page_table", pt, 0, B, b_name));
    if (k->shape[1] < 1)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: cache.k.shape[1]=0 is the page size, which must be >= 1", op);
  }
  return SEQK_STATUS_SUCCESS;
}

/* cache_seqlens: I32 [B]. */
static seqk_status check_cache_seqlens(seqk_context_t ctx, const char *op, const seqk_tensor *lens,
                                       int64_t B) {
  const int64_t len_shape[1] = {B};
  SEQK_TRY(seqk__check_tensor(ctx, op, "cache_seqlens", lens));
  SEQK_TRY(seqk__check_dtype(ctx, op, "cache_seqlens", lens, SEQK_DTYPE_I32));
  return seqk__check_shape(ctx, op, "cache_seqlens", lens, 1, len_shape);
}

static seqk_status append_entry(seqk_context_t ctx, const char *op, const seqk_kv_cache *cache,
                                seqk_tensor *cache_seqlens, int32_t advance,
                                const seqk_tensor *k_new, const seqk_tensor *v_new,
                                const seqk_rotary_params *rope_params, seqk_tensor *q_in) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(check_cache_tensors(ctx, op, cache));
  const seqk_tensor *k = &cache->k, *v = &cache->v, *pt = &cache->page_table;
  const int paged = pt->data != NULL;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "k_new", k_new));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "v_new", v_new));

  /* k_new [B, S_new, Hk, D] sets B, S_new and Hk; v_new [B, S_new, Hk, Dv]. */
  SEQK_TRY(seqk__check_ndim(ctx, op, "k_new", k_new, 4));
  const int64_t B = k_new->shape[0], S_new = k_new->shape[1], Hk = k_new->shape[2];
  SEQK_TRY(seqk__check_ndim(ctx, op, "v_new", v_new, 4));
  SEQK_TRY(seqk__check_extent(ctx, op, "v_new", v_new, 0, B, "k_new.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v_new", v_new, 1, S_new, "k_new.shape[1]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v_new", v_new, 2, Hk, "k_new.shape[2]"));
  SEQK_TRY(check_cache_shapes(ctx, op, cache, B, "k_new.shape[0]", Hk, "k_new.shape[2]",
                              k_new->shape[3], "k_new.shape[3]", v_new->shape[3],
                              "v_new.shape[3]"));
  SEQK_TRY(check_cache_seqlens(ctx, op, cache_seqlens, B));
  /* In a well-formed call every new token takes a cache row of its own: more new tokens than the
     cache has rows is refused, which also bounds the work by the cache's size (a stride-0 k_new
     can claim any number of tokens). */
  const int64_t rows = seqk__mul_sat(k->shape[0], k->shape[1]);
  if (S_new > 0 && seqk__mul_sat(B, S_new) > rows)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: k_new holds %lld x %lld new tokens but the cache has %lld rows", op,
                      (long long)B, (long long)S_new, (long long)rows);

  /* One dtype for the cache and the new tokens, one device for everything. */
  const seqk_arg floats[] = {{"cache.k", k}, {"cache.v", v}, {"k_new", k_new}, {"v_new", v_new}};
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, floats, SEQK_COUNT(floats)));
  const seqk_arg all[] = {{"cache.k", k},
                          {"cache.v", v},
                          {"k_new", k_new},
                          {"v_new", v_new},
                          {"cache_seqlens", cache_seqlens},
                          {"cache.page_table", paged ? pt : NULL}};
  SEQK_TRY(seqk__check_same_device_all(ctx, op, all, SEQK_COUNT(all)));

  /* Outputs: the caches (and the lengths when advanced) hold no element twice and overlap no
     input; k and v caches are apart. (A cache has elements its new tokens never reach: the
     element-level rule is still the whole view's, as for every output.) */
  const seqk_arg inputs[] = {{"k_new", k_new},
                             {"v_new", v_new},
                             {"cache_seqlens", cache_seqlens},
                             {"cache.page_table", paged ? pt : NULL}};
  SEQK_TRY(seqk__check_output(ctx, op, "cache.k", k));
  SEQK_TRY(seqk__check_output(ctx, op, "cache.v", v));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "cache.v", v, "cache.k", k));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "cache.k", k, inputs, SEQK_COUNT(inputs)));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "cache.v", v, inputs, SEQK_COUNT(inputs)));
  if (advance) {
    SEQK_TRY(seqk__check_output(ctx, op, "cache_seqlens", cache_seqlens));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "cache_seqlens", cache_seqlens, inputs, 2));
    if (paged)
      SEQK_TRY(
          seqk__check_no_overlap(ctx, op, "cache_seqlens", cache_seqlens, "cache.page_table", pt));
  }

  /* Rotary keys: the parameters for k_new's head dim, and q's rows of the same tokens. */
  seqk_kv_rope rope = {0, 0, 0.0, NULL};
  const seqk_tensor *q = seqk__present_or_null(q_in);
  if (rope_params) {
    SEQK_TRY(seqk__check_rotary_params(ctx, op, "rope", rope_params, k_new->shape[3],
                                       &rope.rotary_dim, &rope.neox, &rope.log2_theta));
    if (q) {
      SEQK_TRY(seqk__check_float_tensor(ctx, op, "q", q));
      SEQK_TRY(seqk__check_ndim(ctx, op, "q", q, 4));
      SEQK_TRY(seqk__check_extent(ctx, op, "q", q, 0, B, "k_new.shape[0]"));
      SEQK_TRY(seqk__check_extent(ctx, op, "q", q, 1, S_new, "k_new.shape[1]"));
      SEQK_TRY(seqk__check_extent(ctx, op, "q", q, 3, k_new->shape[3], "k_new.shape[3]"));
      SEQK_TRY(seqk__check_same_dtype(ctx, op, "k_new", k_new, "q", q));
      SEQK_TRY(seqk__check_same_device(ctx, op, "k_new", k_new, "q", q));
      SEQK_TRY(seqk__check_output(ctx, op, "q", q));
      const seqk_arg others[] = {{"cache.k", k},
                                 {"cache.v", v},
                                 {"k_new", k_new},
                                 {"v_new", v_new},
                                 {"cache_seqlens", cache_seqlens},
                                 {"cache.page_table", paged ? pt : NULL}};
      SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "q", q, others, SEQK_COUNT(others)));
    }
    rope.q = q;
  }
  const seqk_kv_rope *rp = rope_params ? &rope : NULL;

  if (S_new == 0) return SEQK_STATUS_SUCCESS; /* nothing to write, nothing to advance by */
  if (k->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(
        ctx, op, seqk__cuda_kv_cache_append(ctx, cache, cache_seqlens, advance, k_new, v_new, rp));
  return seqk__ref_kv_cache_append(ctx, cache, cache_seqlens, advance, k_new, v_new, rp);
}

seqk_status seqk_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                 seqk_tensor *cache_seqlens, int32_t advance,
                                 const seqk_tensor *k_new, const seqk_tensor *v_new) {
  return append_entry(ctx, "kv_cache_append", cache, cache_seqlens, advance, k_new, v_new, NULL,
                      NULL);
}

seqk_status seqk_kv_cache_append_rotary(seqk_context_t ctx, const seqk_kv_cache *cache,
                                        seqk_tensor *cache_seqlens, int32_t advance,
                                        const seqk_tensor *k_new, const seqk_tensor *v_new,
                                        const seqk_rotary_params *rope, seqk_tensor *q) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!rope)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "kv_cache_append_rotary: rope is NULL");
  return append_entry(ctx, "kv_cache_append_rotary", cache, cache_seqlens, advance, k_new, v_new,
                      rope, q);
}

seqk_status seqk_attention_kv_cache(seqk_context_t ctx, const seqk_attention_params *params,
                                    const seqk_tensor *q, const seqk_kv_cache *cache,
                                    const seqk_tensor *cache_seqlens, seqk_tensor *o,
                                    seqk_tensor *lse) {
  static const char op[] = "attention_kv_cache";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_attention_params defaults = seqk__attention_defaults();
  const seqk_attention_params *p = params ? params : &defaults;
  SEQK_TRY(check_cache_tensors(ctx, op, cache));
  const seqk_tensor *k = &cache->k, *v = &cache->v;
  const seqk_tensor *pt = cache->page_table.data ? &cache->page_table : NULL;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "q", q));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "o", o));
  SEQK_TRY(seqk__check_ndim(ctx, op, "q", q, 4));
  SEQK_TRY(seqk__check_ndim(ctx, op, "o", o, 4));
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  if (D < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: q.shape[3]=%lld but the head dim D must be >= 1", op, (long long)D);
  SEQK_TRY(seqk__check_ndim(ctx, op, "cache.k", k, 4));
  SEQK_TRY(seqk__check_ndim(ctx, op, "cache.v", v, 4));
  const int64_t Hk = k->shape[2], Dv = v->shape[3];
  SEQK_TRY(check_cache_shapes(ctx, op, cache, B, "q.shape[0]", Hk, "cache.k.shape[2]", D,
                              "q.shape[3]", Dv, "cache.v.shape[3]"));
  if (Dv < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: cache.v.shape[3]=%lld but the value head dim Dv must be >= 1", op,
                      (long long)Dv);
  SEQK_TRY(seqk__check_head_groups(ctx, op, "q", H, "cache.k", 2, Hk));
  const int64_t o_shape[4] = {B, H, Sq, Dv};
  SEQK_TRY(seqk__check_shape(ctx, op, "o", o, 4, o_shape));
  SEQK_TRY(check_cache_seqlens(ctx, op, cache_seqlens, B));
  const seqk_tensor *lse_opt = seqk__present_or_null(lse);
  if (lse_opt) {
    const int64_t lse_shape[3] = {B, H, Sq};
    SEQK_TRY(seqk__check_tensor(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_dtype(ctx, op, "lse", lse, SEQK_DTYPE_F32));
    SEQK_TRY(seqk__check_shape(ctx, op, "lse", lse, 3, lse_shape));
  }
  const seqk_arg floats[] = {{"q", q}, {"cache.k", k}, {"cache.v", v}, {"o", o}};
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, floats, SEQK_COUNT(floats)));
  for (int i = 0; i < SEQK_COUNT(floats); ++i)
    SEQK_TRY(seqk__check_last_dim_contiguous(ctx, op, floats[i].name, floats[i].t));
  const seqk_arg inputs[] = {{"q", q},
                             {"cache.k", k},
                             {"cache.v", v},
                             {"cache_seqlens", cache_seqlens},
                             {"cache.page_table", pt}};
  const seqk_arg all[] = {{"q", q},
                          {"cache.k", k},
                          {"cache.v", v},
                          {"cache_seqlens", cache_seqlens},
                          {"cache.page_table", pt},
                          {"o", o},
                          {"lse", lse_opt}};
  SEQK_TRY(seqk__check_same_device_all(ctx, op, all, SEQK_COUNT(all)));
  SEQK_TRY(seqk__check_attention_params(ctx, op, p));
  if (p->seqlens_k)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: params.seqlens_k must be NULL: cache_seqlens gives each sequence's "
                      "keys",
                      op);

  SEQK_TRY(seqk__check_output(ctx, op, "o", o));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "o", o, inputs, SEQK_COUNT(inputs)));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "o", o, "lse", lse_opt));
  if (lse_opt) {
    SEQK_TRY(seqk__check_output(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "lse", lse, inputs, SEQK_COUNT(inputs)));
  }

  if (q->device == SEQK_DEVICE_CUDA) {
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.seqlens_q", p->seqlens_q));
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.alibi_slopes", p->alibi_slopes));
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_attention_kv_cache(ctx, p, q, cache, cache_seqlens, o, lse_opt));
  }
  SEQK_TRY(seqk__check_seqlens(ctx, op, "seqlens_q", p->seqlens_q, B, Sq, "Sq"));
  SEQK_TRY(seqk__check_alibi_slopes(ctx, op, p->alibi_slopes, q->shape[1]));
  return seqk__ref_attention_kv_cache(ctx, p, q, cache, cache_seqlens, o, lse);
}
