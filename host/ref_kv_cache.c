/*
 * ref_kv_cache.c - seqk_kv_cache_append on CPU tensors (ref_kv_cache.h), and the cache geometry
 * the CUDA path shares.
 */
#include "ref_kv_cache.h"

#include "device.h" /* seqk__mul_sat */
#include "numeric.h"
#include "ref_layers.h"

#include <limits.h>

seqk_kv_geometry seqk__kv_geometry(const seqk_kv_cache *cache, const seqk_tensor *k_new,
                                   const seqk_tensor *v_new) {
  seqk_kv_geometry g;
  g.B = k_new->shape[0];
  g.S_new = k_new->shape[1];
  g.Hk = k_new->shape[2];
  g.D = k_new->shape[3];
  g.Dv = v_new->shape[3];
  g.paged = cache->page_table.data != NULL;
  g.page_size = cache->k.shape[1];
  g.max_pages = g.paged ? cache->page_table.shape[1] : 1;
  g.num_pages = cache->k.shape[0];
  g.capacity = seqk__mul_sat(g.max_pages, g.page_size);
  return g;
}

/* Where sequence b's new tokens go, as kernels/kv_cache.cu's `fits` decides it. */
static int fits(const seqk_kv_cache *cache, const seqk_kv_geometry *g, int64_t len, int64_t b) {
  if (len < 0 || len + g->S_new > g->capacity || len + g->S_new > INT32_MAX) return 0;
  if (g->paged && g->S_new > 0)
    for (int64_t slot = len / g->page_size; slot <= (len + g->S_new - 1) / g->page_size; ++slot) {
      const int64_t id = seqk__load_i32(
          &cache->page_table, b * cache->page_table.stride[0] + slot * cache->page_table.stride[1]);
      if (id < 0 || id >= g->num_pages) return 0;
    }
  return 1;
}

static void copy_row(const seqk_tensor *dst, int64_t page, int64_t at, int64_t h,
                     const seqk_tensor *src, int64_t b, int64_t s, int64_t n) {
  for (int64_t d = 0; d < n; ++d)
    seqk__copy_element(
        dst, page * dst->stride[0] + at * dst->stride[1] + h * dst->stride[2] + d * dst->stride[3],
        src, b * src->stride[0] + s * src->stride[1] + h * src->stride[2] + d * src->stride[3]);
}

seqk_status seqk__ref_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                      const seqk_tensor *cache_seqlens, int32_t advance,
                                      const seqk_tensor *k_new, const seqk_tensor *v_new,
                                      const seqk_kv_rope *rope) {
  static const char op[] = "kv_cache_append";
  const seqk_kv_geometry g = seqk__kv_geometry(cache, k_new, v_new);
  const int64_t ls = cache_seqlens->stride[0];
  for (int64_t b = 0; b < g.B; ++b) {
    const int64_t len = seqk__load_i32(cache_seqlens, b * ls);
    if (!fits(cache, &g, len, b))
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %lld: cache_seqlens[%lld]=%lld with %lld new tokens does not "
                        "fit the cache (capacity %lld%s)",
                        op, (long long)b, (long long)b, (long long)len, (long long)g.S_new,
                        (long long)g.capacity, g.paged ? ", page ids in [0, num_pages)" : "");
  }
  for (int64_t b = 0; b < g.B; ++b) {
    const int64_t len = seqk__load_i32(cache_seqlens, b * ls);
    for (int64_t s = 0; s < g.S_new; ++s) {
      const int64_t t = len + s;
      const int64_t page = g.paged
                               ? seqk__load_i32(&cache->page_table,
                                                b * cache->page_table.stride[0] +
                                                    (t / g.page_size) * cache->page_table.stride[1])
                               : b;
      const seqk_tensor *kc = &cache->k;
      for (int64_t h = 0; h < g.Hk; ++h) {
        copy_row(kc, page, t % g.page_size, h, k_new, b, s, g.D);
        copy_row(&cache->v, page, t % g.page_size, h, v_new, b, s, g.Dv);
        if (rope) /* the pairs again, rotated from k_new */
          seqk__ref_rotate_row(
              kc, page * kc->stride[0] + (t % g.page_size) * kc->stride[1] + h * kc->stride[2],
              kc->stride[3], k_new,
              b * k_new->stride[0] + s * k_new->stride[1] + h * k_new->stride[2], k_new->stride[3],
              (int32_t)t, rope->rotary_dim, rope->neox, rope->log2_theta);
      }
      const seqk_tensor *q = rope ? rope->q : NULL;
      for (int64_t h = 0; q && h < q->shape[2]; ++h) {
        const int64_t base = b * q->stride[0] + s * q->stride[1] + h * q->stride[2];
        seqk__ref_rotate_row(q, base, q->stride[3], q, base, q->stride[3], (int32_t)t,
                             rope->rotary_dim, rope->neox, rope->log2_theta);
      }
    }
  }
  if (advance)
    for (int64_t b = 0; b < g.B; ++b)
      ((int32_t *)cache_seqlens->data)[b * ls] =
          (int32_t)(seqk__load_i32(cache_seqlens, b * ls) + g.S_new);
  return SEQK_STATUS_SUCCESS;
}
