/*
 * ref_kv_cache.c - seqk_kv_cache_append on CPU tensors (ref_kv_cache.h), and the cache geometry
 * the CUDA path shares.
 */
#include "ref_kv_cache.h"

#include "device.h" /* seqk__mul_sat */
#include "numeric.h"
#include "ref_attention.h"
#include "ref_layers.h"

#include <limits.h>
#include <stdlib.h>

seqk_kv_geometry seqk__kv_geometry(const seqk_kv_cache *cache, int64_t B, int64_t S_new) {
  seqk_kv_geometry g;
  g.B = B;
  g.S_new = S_new;
  g.Hk = cache->k.shape[2];
  g.D = cache->k.shape[3];
  g.Dv = cache->v.shape[3];
  g.paged = cache->page_table.data != NULL;
  g.page_size = cache->k.shape[1];
  g.max_pages = g.paged ? cache->page_table.shape[1] : 1;
  g.num_pages = cache->k.shape[0];
  g.capacity = seqk__mul_sat(g.max_pages, g.page_size);
  return g;
}

/* Page id of slot `slot` of sequence b (paged caches). */
static int64_t page_id(const seqk_kv_cache *cache, int64_t b, int64_t slot) {
  return seqk__load_i32(&cache->page_table,
                        b * cache->page_table.stride[0] + slot * cache->page_table.stride[1]);
}

/* Whether positions [from, to) of sequence b lie on pages in range (contiguous: always). */
static int pages_ok(const seqk_kv_cache *cache, const seqk_kv_geometry *g, int64_t b, int64_t from,
                    int64_t to) {
  if (!g->paged || to <= from) return 1;
  for (int64_t slot = from / g->page_size; slot <= (to - 1) / g->page_size; ++slot) {
    const int64_t id = page_id(cache, b, slot);
    if (id < 0 || id >= g->num_pages) return 0;
  }
  return 1;
}

/* Where sequence b's new tokens go, as kernels/kv_cache.cu's `fits` decides it. */
static int fits(const seqk_kv_cache *cache, const seqk_kv_geometry *g, int64_t len, int64_t b) {
  if (len < 0 || len + g->S_new > g->capacity || len + g->S_new > INT32_MAX) return 0;
  return pages_ok(cache, g, b, len, len + g->S_new);
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
  const seqk_kv_geometry g = seqk__kv_geometry(cache, k_new->shape[0], k_new->shape[1]);
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
      const int64_t page = g.paged ? page_id(cache, b, t / g.page_size) : b;
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

/* Position t of sequence b: its page (b when contiguous) and the row in it. */
static void locate(const seqk_kv_cache *cache, const seqk_kv_geometry *g, int64_t b, int64_t t,
                   int64_t *page, int64_t *at) {
  *page = g->paged ? page_id(cache, b, t / g->page_size) : b;
  *at = t % g->page_size;
}

/* Row (page, at, h) of cache tensor c into dst's contiguous row at dst_base; zeros when the
   position is past its sequence (never read, zeroed all the same). */
static void gather_row(const seqk_tensor *dst, int64_t dst_base, const seqk_tensor *c, int64_t page,
                       int64_t at, int64_t h, int valid) {
  for (int64_t d = 0; d < c->shape[3]; ++d) {
    if (valid)
      seqk__copy_element(
          dst, dst_base + d, c,
          page * c->stride[0] + at * c->stride[1] + h * c->stride[2] + d * c->stride[3]);
    else
      seqk__store(dst, dst_base + d, 0.0);
  }
}

seqk_status seqk__ref_attention_kv_cache(seqk_context_t ctx, const seqk_attention_params *params,
                                         const seqk_tensor *q, const seqk_kv_cache *cache,
                                         const seqk_tensor *cache_seqlens, seqk_tensor *o,
                                         seqk_tensor *lse) {
  static const char op[] = "attention_kv_cache";
  const seqk_kv_geometry g = seqk__kv_geometry(cache, q->shape[0], 0);
  const int64_t ls = cache_seqlens->stride[0];
  int64_t L = 0; /* the longest sequence: the gathered keys' extent */
  for (int64_t b = 0; b < g.B; ++b) {
    const int64_t len = seqk__load_i32(cache_seqlens, b * ls);
    if (len < 0 || len > g.capacity || !pages_ok(cache, &g, b, 0, len))
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %lld: cache_seqlens[%lld]=%lld is not a length the cache "
                        "holds (capacity %lld%s)",
                        op, (long long)b, (long long)b, (long long)len, (long long)g.capacity,
                        g.paged ? ", page ids in [0, num_pages)" : "");
    if (len > L) L = len;
  }
  /* Scratch k [B, Hk, L, D] and v [B, Hk, L, Dv] (stored [B, L, Hk, .]) and the lengths. */
  const size_t es = seqk_dtype_size(q->dtype);
  const int64_t kn = g.B * L * g.Hk * g.D, vn = g.B * L * g.Hk * g.Dv;
  void *kmem = malloc(kn > 0 ? (size_t)kn * es : 1), *vmem = malloc(vn > 0 ? (size_t)vn * es : 1);
  int32_t *lens = (int32_t *)malloc(g.B > 0 ? (size_t)g.B * sizeof(int32_t) : 1);
  if (!kmem || !vmem || !lens) {
    free(kmem);
    free(vmem);
    free(lens);
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "%s: out of host memory for the gathered "
                      "keys and values",
                      op);
  }
  const int64_t k_shape[4] = {g.B, g.Hk, L, g.D}, v_shape[4] = {g.B, g.Hk, L, g.Dv};
  seqk_tensor kt = seqk_tensor_view(kmem, q->dtype, SEQK_DEVICE_CPU, 4, k_shape);
  seqk_tensor vt = seqk_tensor_view(vmem, q->dtype, SEQK_DEVICE_CPU, 4, v_shape);
  kt.stride[1] = g.D;
  kt.stride[2] = g.Hk * g.D;
  vt.stride[1] = g.Dv;
  vt.stride[2] = g.Hk * g.Dv;
  for (int64_t b = 0; b < g.B; ++b) {
    const int64_t len = seqk__load_i32(cache_seqlens, b * ls);
    lens[b] = (int32_t)len;
    for (int64_t t = 0; t < L; ++t) {
      int64_t page = 0, at = 0;
      if (t < len) locate(cache, &g, b, t, &page, &at);
      for (int64_t h = 0; h < g.Hk; ++h) {
        gather_row(&kt, b * kt.stride[0] + h * kt.stride[1] + t * kt.stride[2], &cache->k, page, at,
                   h, t < len);
        gather_row(&vt, b * vt.stride[0] + h * vt.stride[1] + t * vt.stride[2], &cache->v, page, at,
                   h, t < len);
      }
    }
  }
  seqk_attention_params p = *params;
  p.seqlens_k = lens;
  const seqk_status st = seqk__ref_attention(ctx, &p, q, &kt, &vt, o, lse);
  free(kmem);
  free(vmem);
  free(lens);
  return st;
}
