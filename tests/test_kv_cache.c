/*
 * test_kv_cache.c - seqk_kv_cache_append: contiguous caches (as a strided view of a [B, Hk, S_max,
 * D] buffer) and paged ones (scrambled page tables, pages of 4 and of 1 token, a write that
 * crosses pages), new tokens as strided views into a fused projection's output, key and value
 * head sizes that differ, advance on and off, S_new = 0. Every result is compared exactly with a
 * test-local placement of the rows (every element the append must not reach keeps its poison).
 * Bad input: shapes, dtypes, devices, overlaps and page sizes refused by name; lengths or page
 * ids that do not fit fail naming the sequence with nothing written (CPU, and CUDA with waiting
 * checks); with deferred checks the other sequences are written and advanced, the bad one is
 * not, and seqk_context_check reports it. On a CUDA device (the emulated one in CI) every case
 * runs again and must equal the CPU bit for bit.
 * Rotary keys on the way in (seqk_kv_cache_append_rotary): against seqk_rotary on copies then the
 * plain placement, NeoX and GPT-J, partial rotary_dim, paged and contiguous, q rotated in the
 * same call or not, on the CPU and CUDA; bad rope parameters and q refused by name.
 */
#include "harness.h"
#include "geometry.h" /* seqk__span */

#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

/* One append case, in host memory: the cache (poisoned, then partly filled), its page table, the
   lengths and the new tokens. */
typedef struct kv_case {
  seqk_kv_cache cache;
  seqk_tensor lens, k_new, v_new;
  seqk_tensor k_store, v_store, qkv_store; /* backings */
  int64_t B, S_new, Hk, D, Dv, page_size, max_pages, num_pages;
  int paged;
} kv_case;

/* Contiguous: cache [B, S_max, Hk, D] seen in a [B, Hk, S_max, D] buffer; paged: [num_pages,
   page_size, Hk, D] contiguous. k_new is a view into a [B, S_new, 3*Hk, D] "qkv" buffer (its
   middle third), v_new a contiguous [B, S_new, Hk, Dv]. */
static void kv_init(kv_case *c, seqk_dtype dt, int64_t B, int64_t S_new, int64_t Hk, int64_t D,
                    int64_t Dv, int64_t page_size, int64_t max_pages, int64_t num_pages,
                    const int32_t *lens, const int32_t *page_table) {
  memset(c, 0, sizeof *c);
  c->B = B, c->S_new = S_new, c->Hk = Hk, c->D = D, c->Dv = Dv;
  c->paged = page_table != NULL;
  c->page_size = page_size, c->max_pages = max_pages, c->num_pages = c->paged ? num_pages : B;
  const int64_t P = c->num_pages;
  if (c->paged) {
    const int64_t ks[4] = {P, page_size, Hk, D}, vs[4] = {P, page_size, Hk, Dv};
    c->cache.k = th_tensor_new(dt, 4, ks);
    c->cache.v = th_tensor_new(dt, 4, vs);
    const int64_t pts[2] = {B, max_pages};
    c->cache.page_table = th_tensor_new(SEQK_DTYPE_I32, 2, pts);
    th_fill_i32(&c->cache.page_table, page_table);
  } else {
    const int64_t kb[4] = {B, Hk, page_size, D}, vb[4] = {B, Hk, page_size, Dv};
    c->k_store = th_tensor_new(dt, 4, kb);
    c->v_store = th_tensor_new(dt, 4, vb);
    c->cache.k = c->k_store;
    c->cache.v = c->v_store;
    /* [B, S_max, Hk, D]: swap the middle dims */
    seqk_tensor *t[2] = {&c->cache.k, &c->cache.v};
    for (int i = 0; i < 2; ++i) {
      int64_t sh = t[i]->shape[1], st = t[i]->stride[1];
      t[i]->shape[1] = t[i]->shape[2], t[i]->stride[1] = t[i]->stride[2];
      t[i]->shape[2] = sh, t[i]->stride[2] = st;
    }
  }
  th_poison(&c->cache.k);
  th_poison(&c->cache.v);
  const int64_t ls[1] = {B}, qs[4] = {B, S_new, 3 * Hk, D}, vns[4] = {B, S_new, Hk, Dv};
  c->lens = th_tensor_new(SEQK_DTYPE_I32, 1, ls);
  th_fill_i32(&c->lens, lens);
  c->qkv_store = th_tensor_new(dt, 4, qs);
  th_fill_uniform(&c->qkv_store, &g_rng, -2, 2);
  c->k_new = th_slice(&c->qkv_store, 2, Hk, Hk);
  c->v_new = th_tensor_new(dt, 4, vns);
  th_fill_uniform(&c->v_new, &g_rng, -2, 2);
}

/* The cache's elements (row-major over its logical shape) as the append must leave them:
   `before` (doubles of the cache before), with each new row placed. */
static void expect_cache(const kv_case *c, const seqk_tensor *cache_t, const seqk_tensor *src,
                         int64_t width, const int32_t *lens, double *want) {
  const int64_t page_rows = cache_t->shape[1];
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t s = 0; s < c->S_new; ++s) {
      const int64_t t = lens[b] + s;
      const int64_t page =
          c->paged ? th_get(&c->cache.page_table, b * c->max_pages + t / c->page_size) : b;
      for (int64_t h = 0; h < c->Hk; ++h)
        for (int64_t d = 0; d < width; ++d) {
          const int64_t at = ((page * page_rows + t % page_rows) * c->Hk + h) * width + d;
          want[at] = th_get(src, ((b * c->S_new + s) * c->Hk + h) * width + d);
        }
    }
}

static void check_case(kv_case *c, int32_t advance, const int32_t *lens, const char *what) {
  double *kw = th_to_doubles(&c->cache.k), *vw = th_to_doubles(&c->cache.v);
  expect_cache(c, &c->cache.k, &c->k_new, c->D, lens, kw);
  expect_cache(c, &c->cache.v, &c->v_new, c->Dv, lens, vw);
  char msg[160];
  snprintf(msg, sizeof msg, "%s: status", what);
  if (!th_expect_status(
          g_ctx, seqk_kv_cache_append(g_ctx, &c->cache, &c->lens, advance, &c->k_new, &c->v_new),
          SEQK_STATUS_SUCCESS, NULL, msg))
    return;
  snprintf(msg, sizeof msg, "%s: k cache", what);
  th_check_close(msg, &c->cache.k, kw, (th_tol){0, 0});
  snprintf(msg, sizeof msg, "%s: v cache", what);
  th_check_close(msg, &c->cache.v, vw, (th_tol){0, 0});
  for (int64_t b = 0; b < c->B; ++b)
    TH_CHECK(th_get(&c->lens, b) == lens[b] + (advance ? c->S_new : 0),
             "%s: cache_seqlens[%lld] after the append", what, (long long)b);
}

/* ---- the same on CUDA tensors ---------------------------------------------------------------- */

/* A CUDA copy of t's whole span (strides kept, gaps keep their bytes: same-dtype copies move
   bits). */
static seqk_tensor up(seqk_context_t ctx, const seqk_tensor *t) {
  seqk_tensor d = th_on_cuda(*t);
  const int64_t n = seqk__span(t);
  seqk_tensor flat;
  TH_CHECK(seqk_tensor_alloc(ctx, &flat, t->dtype, SEQK_DEVICE_CUDA, 1, &n) == SEQK_STATUS_SUCCESS,
           "alloc");
  seqk_tensor hw = seqk_tensor_view(t->data, t->dtype, SEQK_DEVICE_CPU, 1, &n);
  TH_CHECK(seqk_tensor_copy(ctx, &flat, &hw) == SEQK_STATUS_SUCCESS, "upload");
  d.data = flat.data;
  return d;
}

/* Whether the CUDA span of dev holds exactly the bytes of host's span. */
static int same_bytes(seqk_context_t ctx, const seqk_tensor *dev, const seqk_tensor *host) {
  const int64_t n = seqk__span(host);
  seqk_tensor back = th_tensor_new(host->dtype, 1, &n);
  seqk_tensor dw = seqk_tensor_view(dev->data, host->dtype, SEQK_DEVICE_CUDA, 1, &n);
  if (seqk_tensor_copy(ctx, &back, &dw) != SEQK_STATUS_SUCCESS) return 0;
  return memcmp(back.data, host->data, (size_t)n * seqk_dtype_size(host->dtype)) == 0;
}

/* Runs c (not yet appended on the CPU) on CUDA copies, then on the CPU, and compares every byte:
   caches and lengths. */
static void on_device(kv_case *c, int32_t advance, const char *what) {
  if (seqk_cuda_device_count() == 0) return;
  seqk_kv_cache dc = c->cache;
  dc.k = up(g_ctx, &c->cache.k);
  dc.v = up(g_ctx, &c->cache.v);
  if (c->paged) dc.page_table = up(g_ctx, &c->cache.page_table);
  seqk_tensor dl = up(g_ctx, &c->lens), dk = up(g_ctx, &c->k_new), dv = up(g_ctx, &c->v_new);
  TH_CHECK(seqk_kv_cache_append(g_ctx, &dc, &dl, advance, &dk, &dv) == SEQK_STATUS_SUCCESS,
           "%s on CUDA: %s", what, seqk_context_last_error(g_ctx));
  TH_CHECK(seqk_kv_cache_append(g_ctx, &c->cache, &c->lens, advance, &c->k_new, &c->v_new) ==
               SEQK_STATUS_SUCCESS,
           "%s on the CPU", what);
  TH_CHECK(same_bytes(g_ctx, &dc.k, &c->cache.k) && same_bytes(g_ctx, &dc.v, &c->cache.v),
           "%s: the CUDA caches differ from the CPU's", what);
  TH_CHECK(same_bytes(g_ctx, &dl, &c->lens), "%s: the CUDA lengths differ from the CPU's", what);
}

static void test_appends(void) {
  static const int32_t lens3[3] = {0, 4, 7};
  static const int32_t lens2[2] = {3, 6};
  /* 7 pages of 4; sequence 0 uses pages 5, 2, 6; sequence 1 uses 1, 4, 0 */
  static const int32_t pt[6] = {5, 2, 6, 1, 4, 0};
  static const int32_t pt1[6] = {3, 0, 5, 4, 2, 1}; /* pages of one token */
  const seqk_dtype dts[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_F32, SEQK_DTYPE_BF16};
  for (int i = 0; i < 3; ++i)
    for (int advance = 0; advance < 2; ++advance) {
      kv_case c;
      char what[120];
      snprintf(what, sizeof what, "contiguous dtype %d advance %d", i, advance);
      kv_init(&c, dts[i], 3, 3, 2, 8, 6, 10, 1, 0, lens3, NULL);
      check_case(&c, advance, lens3, what);
      kv_init(&c, dts[i], 3, 3, 2, 8, 6, 10, 1, 0, lens3, NULL);
      on_device(&c, advance, what);

      snprintf(what, sizeof what, "paged (4) dtype %d advance %d", i, advance);
      kv_init(&c, dts[i], 2, 3, 2, 5, 7, 4, 3, 7, lens2, pt);
      check_case(&c, advance, lens2, what);
      kv_init(&c, dts[i], 2, 3, 2, 5, 7, 4, 3, 7, lens2, pt);
      on_device(&c, advance, what);
    }
  static const int32_t lens_one[2] = {1, 0};
  kv_case c;
  kv_init(&c, SEQK_DTYPE_F32, 2, 2, 1, 33, 40, 1, 3, 6, lens_one, pt1);
  check_case(&c, 1, lens_one, "paged (1)");
  kv_init(&c, SEQK_DTYPE_F32, 2, 2, 1, 33, 40, 1, 3, 6, lens_one, pt1);
  on_device(&c, 1, "paged (1)");
  kv_init(&c, SEQK_DTYPE_F16, 3, 0, 2, 8, 6, 10, 1, 0, lens3, NULL);
  check_case(&c, 1, lens3, "S_new = 0");
}

/* Values that do not fit: nothing written, the sequence named; on CUDA the same with waiting
   checks, and with deferred ones the others written and advanced. */
static void test_value_errors(void) {
  static const int32_t pt[6] = {5, 2, 6, 1, 4, 0};
  static const int32_t bad_pt[6] = {5, 2, 6, 1, 9, 0};
  static const struct {
    int32_t lens[2];
    const int32_t *table;
    const char *needle;
  } cases[] = {
      {{3, 10}, pt, "sequence 1: cache_seqlens[1]=10"}, /* 10 + 3 > 12 */
      {{-1, 2}, pt, "sequence 0: cache_seqlens[0]=-1"},
      {{3, 2}, bad_pt, "sequence 1: cache_seqlens[1]=2"}, /* page 9 of 7 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    kv_case c;
    kv_init(&c, SEQK_DTYPE_F16, 2, 3, 2, 5, 7, 4, 3, 7, cases[i].lens, cases[i].table);
    char what[120];
    snprintf(what, sizeof what, "values that do not fit (%s)", cases[i].needle);
    th_expect_rejected(g_ctx, seqk_kv_cache_append(g_ctx, &c.cache, &c.lens, 1, &c.k_new, &c.v_new),
                       SEQK_STATUS_INVALID_VALUE, cases[i].needle, what,
                       TH_SNAPS(th_snapshot_take(&c.cache.k), th_snapshot_take(&c.cache.v),
                                th_snapshot_take(&c.lens)));
    if (seqk_cuda_device_count() == 0) continue;
    /* CUDA, waiting: refused, nothing written */
    seqk_kv_cache dc = c.cache;
    dc.k = up(g_ctx, &c.cache.k);
    dc.v = up(g_ctx, &c.cache.v);
    dc.page_table = up(g_ctx, &c.cache.page_table);
    seqk_tensor dl = up(g_ctx, &c.lens), dk = up(g_ctx, &c.k_new), dv = up(g_ctx, &c.v_new);
    th_expect_status(g_ctx, seqk_kv_cache_append(g_ctx, &dc, &dl, 1, &dk, &dv),
                     SEQK_STATUS_INVALID_VALUE, cases[i].needle, what);
    TH_CHECK(same_bytes(g_ctx, &dc.k, &c.cache.k) && same_bytes(g_ctx, &dc.v, &c.cache.v) &&
                 same_bytes(g_ctx, &dl, &c.lens),
             "%s on CUDA (waiting): something was written", what);
    /* CUDA, deferred: the good sequence written and advanced, the bad one untouched */
    seqk_context_t ctx;
    TH_CHECK(
        seqk_context_create(&ctx) == SEQK_STATUS_SUCCESS &&
            seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED) == SEQK_STATUS_SUCCESS,
        "deferred context");
    th_expect_status(ctx, seqk_kv_cache_append(ctx, &dc, &dl, 1, &dk, &dv), SEQK_STATUS_SUCCESS,
                     NULL, what);
    th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, cases[i].needle,
                     what);
    /* the CPU does the same for the good sequence alone */
    const int good = strstr(cases[i].needle, "sequence 1") ? 0 : 1;
    seqk_kv_cache one = c.cache;
    one.page_table = th_slice(&c.cache.page_table, 0, good, 1);
    seqk_tensor l1 = th_slice(&c.lens, 0, good, 1), k1 = th_slice(&c.k_new, 0, good, 1),
                v1 = th_slice(&c.v_new, 0, good, 1);
    TH_CHECK(seqk_kv_cache_append(g_ctx, &one, &l1, 1, &k1, &v1) == SEQK_STATUS_SUCCESS,
             "%s: the good sequence on the CPU", what);
    TH_CHECK(same_bytes(ctx, &dc.k, &c.cache.k) && same_bytes(ctx, &dc.v, &c.cache.v) &&
                 same_bytes(ctx, &dl, &c.lens),
             "%s on CUDA (deferred): not exactly the good sequence written and advanced", what);
    seqk_context_destroy(ctx);
  }
}

/* Descriptors refused by name, nothing written. */
static void test_bad_descriptors(void) {
  static const int32_t lens[2] = {0, 1};
  static const int32_t pt[6] = {5, 2, 6, 1, 4, 0};
  kv_case c;
  kv_init(&c, SEQK_DTYPE_F16, 2, 3, 2, 5, 7, 4, 3, 7, lens, pt);
#define REFUSED(needle, ...)                                                                       \
  do {                                                                                             \
    seqk_kv_cache cc = c.cache;                                                                    \
    seqk_tensor l = c.lens, kn = c.k_new, vn = c.v_new;                                            \
    __VA_ARGS__;                                                                                   \
    th_expect_rejected(g_ctx, seqk_kv_cache_append(g_ctx, &cc, &l, 1, &kn, &vn),                   \
                       SEQK_STATUS_INVALID_VALUE, needle, "bad descriptor: " needle,               \
                       TH_SNAPS(th_snapshot_take(&c.cache.k), th_snapshot_take(&c.cache.v),        \
                                th_snapshot_take(&c.lens)));                                       \
  } while (0)
  REFUSED("v_new.shape[2]", vn.shape[2] = 1);
  REFUSED("cache.k.shape[3]", kn.shape[3] = 4);
  REFUSED("cache.v.shape[3]", vn.shape[3] = 6);
  REFUSED("cache.page_table", cc.page_table.dtype = SEQK_DTYPE_F32);
  REFUSED("cache.page_table.shape[0]", cc.page_table.shape[0] = 1);
  REFUSED("cache_seqlens", l.dtype = SEQK_DTYPE_F32);
  REFUSED("cache_seqlens.shape[0]", l.shape[0] = 3);
  REFUSED("page size", cc.k.shape[1] = 0; cc.v.shape[1] = 0);
  REFUSED("k_new", kn.dtype = SEQK_DTYPE_F32);
  REFUSED("cache.v", cc.v = cc.k; cc.v.shape[3] = 7);
  REFUSED("cache.k", kn = th_on_cuda(kn));
  REFUSED("cache_seqlens", l.data = c.cache.k.data);
  /* more new tokens than the cache has rows (28): refused before any work */
  REFUSED("k_new", kn.shape[1] = vn.shape[1] = 1000; kn.stride[1] = vn.stride[1] = 0);
#undef REFUSED
  th_expect_status(g_ctx, seqk_kv_cache_append(g_ctx, NULL, &c.lens, 0, &c.k_new, &c.v_new),
                   SEQK_STATUS_INVALID_VALUE, "cache is NULL", "NULL cache");
  TH_CHECK(seqk_kv_cache_append(NULL, &c.cache, &c.lens, 0, &c.k_new, &c.v_new) ==
               SEQK_STATUS_INVALID_VALUE,
           "NULL ctx");
}

/* ---- rotary keys on the way in ------------------------------------------------------------------ */

/* seqk_kv_cache_append_rotary against seqk_rotary on copies (positions = lens[b] + s) followed by
   the plain placement, on the CPU; then the same call on CUDA copies against the CPU's result.
   q is the first third of the fused qkv buffer (k_new its middle third). */
static void check_rope_case(kv_case *c, const int32_t *lens, seqk_rotary_layout layout,
                            int32_t rotary_dim, int with_q, const char *what) {
  const seqk_dtype dt = c->k_new.dtype;
  seqk_tensor q = th_slice(&c->qkv_store, 2, 0, c->Hk);
  const int64_t ks[4] = {c->B, c->S_new, c->Hk, c->D}, ps[2] = {c->B, c->S_new};
  seqk_tensor k_rot = th_tensor_new(dt, 4, ks), q_rot = th_tensor_new(dt, 4, ks);
  seqk_tensor pos = th_tensor_new(SEQK_DTYPE_I32, 2, ps);
  th_fill_values(&k_rot, th_to_doubles(&c->k_new));
  th_fill_values(&q_rot, th_to_doubles(&q));
  int32_t pv[64];
  for (int64_t b = 0; b < c->B; ++b)
    for (int64_t s = 0; s < c->S_new; ++s) pv[b * c->S_new + s] = lens[b] + (int32_t)s;
  th_fill_i32(&pos, pv);
  const seqk_rotary_params rope = {layout, rotary_dim, 10000.0f};
  TH_CHECK(seqk_rotary(g_ctx, &rope, &pos, &k_rot, &q_rot) == SEQK_STATUS_SUCCESS, "%s: rotary",
           what);
  double *kw = th_to_doubles(&c->cache.k), *vw = th_to_doubles(&c->cache.v);
  expect_cache(c, &c->cache.k, &k_rot, c->D, lens, kw);
  expect_cache(c, &c->cache.v, &c->v_new, c->Dv, lens, vw);
  const double *k_before = th_to_doubles(&c->k_new);

  /* The CUDA run first, on copies of the untouched inputs. */
  seqk_kv_cache dc = c->cache;
  seqk_tensor dl, dqkv, dv, dk, dq;
  const int on_cuda = seqk_cuda_device_count() > 0;
  if (on_cuda) {
    dc.k = up(g_ctx, &c->cache.k);
    dc.v = up(g_ctx, &c->cache.v);
    if (c->paged) dc.page_table = up(g_ctx, &c->cache.page_table);
    dl = up(g_ctx, &c->lens);
    dqkv = up(g_ctx, &c->qkv_store);
    dv = up(g_ctx, &c->v_new);
    dk = th_slice(&dqkv, 2, c->Hk, c->Hk);
    dq = th_slice(&dqkv, 2, 0, c->Hk);
    TH_CHECK(seqk_kv_cache_append_rotary(g_ctx, &dc, &dl, 1, &dk, &dv, &rope,
                                         with_q ? &dq : NULL) == SEQK_STATUS_SUCCESS,
             "%s on CUDA: %s", what, seqk_context_last_error(g_ctx));
  }
  char msg[160];
  snprintf(msg, sizeof msg, "%s: status", what);
  if (!th_expect_status(g_ctx,
                        seqk_kv_cache_append_rotary(g_ctx, &c->cache, &c->lens, 1, &c->k_new,
                                                    &c->v_new, &rope, with_q ? &q : NULL),
                        SEQK_STATUS_SUCCESS, NULL, msg))
    return;
  snprintf(msg, sizeof msg, "%s: k cache (rotated)", what);
  th_check_close(msg, &c->cache.k, kw, th_tol_for(dt));
  snprintf(msg, sizeof msg, "%s: v cache", what);
  th_check_close(msg, &c->cache.v, vw, (th_tol){0, 0});
  snprintf(msg, sizeof msg, "%s: k_new untouched", what);
  th_check_close(msg, &c->k_new, k_before, (th_tol){0, 0});
  if (with_q) {
    snprintf(msg, sizeof msg, "%s: q rotated in place", what);
    th_check_close(msg, &q, th_to_doubles(&q_rot), th_tol_for(dt));
  }
  if (!on_cuda) return;
  const th_tol dtol = th_tol_scaled(dt, TH_DEVICE_TOL);
  seqk_tensor hk, hv, hq, hl;
  snprintf(msg, sizeof msg, "%s on CUDA", what);
  if (th_download(g_ctx, msg, &dc.k, &hk))
    TH_CHECK(th_check_close(msg, &hk, th_to_doubles(&c->cache.k), dtol), "%s: k cache", msg);
  if (th_download(g_ctx, msg, &dc.v, &hv))
    TH_CHECK(th_check_close(msg, &hv, th_to_doubles(&c->cache.v), (th_tol){0, 0}), "%s: v", msg);
  if (th_download(g_ctx, msg, &dq, &hq))
    TH_CHECK(th_check_close(msg, &hq, th_to_doubles(&q), dtol), "%s: q", msg);
  if (th_download(g_ctx, msg, &dl, &hl))
    TH_CHECK(th_check_close(msg, &hl, th_to_doubles(&c->lens), (th_tol){0, 0}), "%s: lengths", msg);
}

static void test_rope_appends(void) {
  static const int32_t lens3[3] = {0, 4, 7}, lens2[2] = {3, 6};
  static const int32_t pt[6] = {5, 2, 6, 1, 4, 0};
  const seqk_dtype dts[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  char what[160];
  for (int i = 0; i < 3; ++i)
    for (int layout = 0; layout < 2; ++layout)
      for (int with_q = 0; with_q < 2; ++with_q) {
        kv_case c;
        snprintf(what, sizeof what, "rope %s contiguous %s%s", layout ? "gptj" : "neox",
                 th_dtype_name(dts[i]), with_q ? " +q" : "");
        kv_init(&c, dts[i], 3, 3, 2, 8, 6, 10, 1, 0, lens3, NULL);
        check_rope_case(&c, lens3, (seqk_rotary_layout)layout, 0, with_q, what);
        snprintf(what, sizeof what, "rope %s paged (4), rotary_dim 6 of 10 %s%s",
                 layout ? "gptj" : "neox", th_dtype_name(dts[i]), with_q ? " +q" : "");
        kv_init(&c, dts[i], 2, 3, 2, 10, 7, 4, 3, 7, lens2, pt);
        check_rope_case(&c, lens2, (seqk_rotary_layout)layout, 6, with_q, what);
      }
  /* Bad rope parameters and q: refused by name, nothing written. */
  kv_case c;
  kv_init(&c, SEQK_DTYPE_F32, 3, 3, 2, 8, 6, 10, 1, 0, lens3, NULL);
  seqk_tensor q = th_slice(&c.qkv_store, 2, 0, 2);
  th_watch_reset();
  th_watch(&c.cache.k);
  th_watch(&c.cache.v);
  th_watch(&c.qkv_store);
  th_watch(&c.lens);
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  seqk_rotary_params rope = {SEQK_ROTARY_NEOX, 5, 10000.0f};
  th_expect_rejected_watched(
      g_ctx,
      seqk_kv_cache_append_rotary(g_ctx, &c.cache, &c.lens, 1, &c.k_new, &c.v_new, &rope, &q), INV,
      "rope.rotary_dim", "odd rope.rotary_dim");
  rope.rotary_dim = 0;
  th_expect_rejected_watched(
      g_ctx, seqk_kv_cache_append_rotary(g_ctx, &c.cache, &c.lens, 1, &c.k_new, &c.v_new, NULL, &q),
      INV, "rope", "NULL rope");
  const int64_t bad_q[4] = {3, 3, 2, 9};
  seqk_tensor qb = th_with_shape(q, 4, bad_q);
  th_expect_rejected_watched(
      g_ctx,
      seqk_kv_cache_append_rotary(g_ctx, &c.cache, &c.lens, 1, &c.k_new, &c.v_new, &rope, &qb), INV,
      "q", "q head dim");
  seqk_tensor qk = c.k_new;
  th_expect_rejected_watched(
      g_ctx,
      seqk_kv_cache_append_rotary(g_ctx, &c.cache, &c.lens, 1, &c.k_new, &c.v_new, &rope, &qk), INV,
      "q", "q over k_new");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 31337);
  test_appends();
  test_rope_appends();
  test_value_errors();
  test_bad_descriptors();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
