/*
 * cuda_kv_cache.c - seqk_kv_cache_append on CUDA tensors: the descriptors as kernel params
 * (kernels/kv_cache.cu). With waiting device checks the check kernel runs first and its word is
 * read back (one host wait; nothing written on an error); with deferred ones the copy records a
 * sequence that does not fit itself.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "launchers.h"
#include "ref_kv_cache.h"

#include <string.h>

static int launch_check(const void *p, unsigned long long *word, void *stream) {
  return (int)seqk_k_kv_append_check((const seqk_k_kv_append_params *)p, word,
                                     (cudaStream_t)stream);
}

static void copy4(int64_t *dst, const seqk_tensor *t) {
  for (int i = 0; i < 4; ++i) dst[i] = t->stride[i];
}

seqk_status seqk__cuda_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                       const seqk_tensor *cache_seqlens, int32_t advance,
                                       const seqk_tensor *k_new, const seqk_tensor *v_new) {
  static const char op[] = "kv_cache_append";
  SEQK_TRY(seqk__require_device(ctx, op));
  const seqk_kv_geometry g = seqk__kv_geometry(cache, k_new, v_new);
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
  copy4(p.kc_stride, &cache->k);
  copy4(p.vc_stride, &cache->v);
  copy4(p.kn_stride, k_new);
  copy4(p.vn_stride, v_new);
  if (g.paged) {
    p.pt_stride[0] = cache->page_table.stride[0];
    p.pt_stride[1] = cache->page_table.stride[1];
  }
  p.len_stride = cache_seqlens->stride[0];
  if (ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED) {
    p.deferred_bad = ctx->check_words + SEQK_K_CHECK_KV_APPEND;
  } else {
    unsigned long long found = 0;
    SEQK_TRY(seqk__wait_for_check(ctx, op, "kv_append_check", launch_check, &p, &found));
    if (found != ~0ull)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %llu: cache_seqlens[%llu]=%d with %lld new tokens does not "
                        "fit the cache (capacity %lld%s)",
                        op, found >> 32, found >> 32,
                        (int)(int32_t)(uint32_t)(found & 0xFFFFFFFFull), (long long)g.S_new,
                        (long long)(g.max_pages * g.page_size),
                        g.paged ? ", page ids in [0, num_pages)" : "");
  }
  return seqk__launched(ctx, op, "kv_append",
                        seqk_k_kv_append(&p, advance != 0, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
