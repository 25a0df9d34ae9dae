/*
 * cuda_kv_cache.c - seqk_kv_cache_append and seqk_attention_kv_cache on CUDA tensors: the
 * descriptors as kernel params (kernels/kv_cache.cu) and attention jobs (cuda_attention.c). A
 * check kernel decides every sequence first (into workspace that the copy, or the attention,
 * reads); with waiting device checks its word is read back (one host wait; nothing written on an
 * error), with deferred ones it goes to the context's check word.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"
#include "ref_kv_cache.h"

#include <string.h>

static void copy4(int64_t *dst, const seqk_tensor *t) {
  for (int i = 0; i < 4; ++i) dst[i] = t->stride[i];
}

/* A waiting check's word read back (the one host wait of the waiting mode): all ones, or the
   first bad sequence and its length (launchers.h's encoding). */
static seqk_status read_check_word(seqk_context_t ctx, const char *op,
                                   const unsigned long long *word, unsigned long long *found) {
  SEQK_TRY(seqk__device_memcpy(ctx, op, found, word, sizeof *found, SEQK_COPY_D2H));
  return seqk__device_sync(ctx, op);
}

seqk_status seqk__cuda_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                       const seqk_tensor *cache_seqlens, int32_t advance,
                                       const seqk_tensor *k_new, const seqk_tensor *v_new,
                                       const seqk_kv_rope *rope) {
  static const char op[] = "kv_cache_append";
  SEQK_TRY(seqk__require_device(ctx, op));
  const seqk_kv_geometry g = seqk__kv_geometry(cache, k_new->shape[0], k_new->shape[1]);
  if (g.B == 0) return SEQK_STATUS_SUCCESS;
  seqk_k_kv_append_params p;
  memset(&p, 0, sizeof p);
  p.k_cache = cache->k.data;
  p.v_cache = cache->v.data;
  p.k_new = k_new->data;
  p.v_new = v_new->data;
  p.seqlens = (int32_t *)cache_seqlens->data;
  p.page_table = g.paged ? (const int32_t *)cache->page_table.data : NULL;
  p.elem_size = seqk_dtype_size(k_new->dtype);
  p.B = g.B;
  p.S_new = g.S_new;
  p.Hk = g.Hk;
  p.D = g.D;
  p.Dv = g.Dv;
  p.page_size = g.page_size;
  p.max_pages = g.max_pages;
  p.num_pages = g.num_pages;
  p.capacity = g.capacity;
  copy4(p.kc_stride, &cache->k);
  copy4(p.vc_stride, &cache->v);
  copy4(p.kn_stride, k_new);
  copy4(p.vn_stride, v_new);
  if (g.paged) {
    p.pt_stride[0] = cache->page_table.stride[0];
    p.pt_stride[1] = cache->page_table.stride[1];
  }
  p.len_stride = cache_seqlens->stride[0];
  p.dtype = k_new->dtype;
  if (rope) {
    p.rope = 1;
    p.neox = rope->neox;
    p.rotary_dim = rope->rotary_dim;
    p.log2_theta = rope->log2_theta;
    if (rope->q) {
      p.q = rope->q->data;
      p.H = rope->q->shape[2];
      copy4(p.q_stride, rope->q);
    }
  }
  /* The per-sequence answers (and a waiting check's word) in the workspace. */
  const int deferred = ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED;
  const size_t fit_bytes = seqk__ws_elems(g.B, sizeof(int32_t));
  seqk_arena arena;
  void *fit = NULL, *word = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_sum(fit_bytes, seqk__ws_elems(1, 8)), &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, fit_bytes, &fit));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, 8, &word));
  p.fit = (int32_t *)fit;
  unsigned long long *bad =
      deferred ? ctx->check_words + SEQK_K_CHECK_KV_APPEND : (unsigned long long *)word;
  SEQK_TRY(seqk__launched(ctx, op, "kv_append_check",
                          seqk_k_kv_append_check(&p, bad, !deferred, (cudaStream_t)ctx->stream)));
  unsigned long long found = ~0ull;
  if (!deferred) {
    SEQK_TRY(read_check_word(ctx, op, bad, &found));
    if (found != ~0ull)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %llu: cache_seqlens[%llu]=%d with %lld new tokens does not "
                        "fit the cache (capacity %lld%s)",
                        op, found >> 32, found >> 32,
                        (int)(int32_t)(uint32_t)(found & 0xFFFFFFFFull), (long long)g.S_new,
                        (long long)g.capacity, g.paged ? ", page ids in [0, num_pages)" : "");
  }
  return seqk__launched(ctx, op, "kv_append",
                        seqk_k_kv_append(&p, advance != 0, (cudaStream_t)ctx->stream));
}

/* The cache's k (or v) as the attention reads it, [B, Hk, capacity, D]: a strided view of a
   contiguous cache; for a paged one the pages' data and strides {page, head, row, 1} (the job
   reads them through the page table). */
static seqk_tensor cache_as_keys(const seqk_tensor *c, const seqk_kv_geometry *g, int64_t B) {
  seqk_tensor t = *c;
  t.shape[0] = B;
  t.shape[1] = c->shape[2];
  t.shape[2] = g->capacity;
  t.stride[1] = c->stride[2];
  t.stride[2] = c->stride[1];
  return t;
}

seqk_status seqk__cuda_attention_kv_cache(seqk_context_t ctx, const seqk_attention_params *params,
                                          const seqk_tensor *q, const seqk_kv_cache *cache,
                                          const seqk_tensor *cache_seqlens, const seqk_tensor *o,
                                          const seqk_tensor *lse) {
  static const char op[] = "attention_kv_cache";
  SEQK_TRY(seqk__require_device(ctx, op));
  const seqk_kv_geometry g = seqk__kv_geometry(cache, q->shape[0], 0);
  const seqk_tensor k = cache_as_keys(&cache->k, &g, g.B), v = cache_as_keys(&cache->v, &g, g.B);
  if (g.capacity > INT32_MAX)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: the cache holds %lld positions per sequence; at most 2^31 - 1 are "
                      "supported",
                      op, (long long)g.capacity);
  seqk_attention_job job;
  memset(&job, 0, sizeof job);
  job.q = q;
  job.k = &k;
  job.v = &v;
  job.o = o;
  job.lse = lse;
  seqk__attention_job_take(&job, params);
  job.seqlens_k = (const int32_t *)cache_seqlens->data; /* stands in while planning */
  job.paged = g.paged ? cache : NULL;
  size_t job_bytes = 0;
  SEQK_TRY(seqk__attention_job_plan(ctx, op, &job, params->algo, &job_bytes));
  if (seqk__numel(o) == 0) return SEQK_STATUS_SUCCESS;

  /* The checked lengths (and a waiting check's word), then the attention over them. */
  const int deferred = ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED;
  const size_t len_bytes = seqk__ws_elems(g.B, sizeof(int32_t)), word_bytes = seqk__ws_elems(1, 8);
  seqk_arena arena;
  void *len = NULL, *word = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_sum(seqk__ws_sum(len_bytes, word_bytes), job_bytes),
                            &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, len_bytes, &len));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, word_bytes, &word));
  seqk_k_kv_lengths_params lp;
  memset(&lp, 0, sizeof lp);
  lp.seqlens = (const int32_t *)cache_seqlens->data;
  lp.len_stride = cache_seqlens->stride[0];
  lp.page_table = g.paged ? (const int32_t *)cache->page_table.data : NULL;
  if (g.paged) {
    lp.pt_stride[0] = cache->page_table.stride[0];
    lp.pt_stride[1] = cache->page_table.stride[1];
  }
  lp.B = g.B;
  lp.page_size = g.page_size;
  lp.num_pages = g.num_pages;
  lp.capacity = g.capacity;
  lp.len = (int32_t *)len;
  unsigned long long *bad =
      deferred ? ctx->check_words + SEQK_K_CHECK_KV_ATTENTION : (unsigned long long *)word;
  SEQK_TRY(seqk__launched(ctx, op, "kv_lengths",
                          seqk_k_kv_lengths(&lp, bad, !deferred, (cudaStream_t)ctx->stream)));
  unsigned long long found = ~0ull;
  if (!deferred) {
    SEQK_TRY(read_check_word(ctx, op, bad, &found));
    if (found != ~0ull)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %llu: cache_seqlens[%llu]=%d is not a length the cache "
                        "holds (capacity %lld%s)",
                        op, found >> 32, found >> 32,
                        (int)(int32_t)(uint32_t)(found & 0xFFFFFFFFull), (long long)g.capacity,
                        g.paged ? ", page ids in [0, num_pages)" : "");
  }
  job.seqlens_k = (const int32_t *)len;
  return seqk__attention_job_run(ctx, op, &arena, &job);
}

#endif /* SEQK_HAVE_CUDA */
