/*
 * test_attention_packed.c - seqk_attention_packed: attention over packed variable-length
 * sequences (FlashAttention's varlen layout), against a double reference written here from the
 * header's words: sequence b's queries are rows cu_q[b] .. cu_q[b+1]-1 of q and o, its keys rows
 * cu_k[b] .. cu_k[b+1]-1 of k and v, each sequence one seqk_attention batch (causal and windows
 * aligned bottom-right per sequence, softcap, query head h reading key head h / (H/Hk)), o = 0 and
 * lse = +inf for a row with no visible key, rows outside every sequence not written.
 *
 * Every output starts as 0xFF bytes (NaN), and every q, k and v row outside every sequence holds
 * NaN. Cases (each in f16, bf16 and f32): five sequences with query lengths 1, 0, 37, 70 and 5,
 * causal with keys longer than the queries (chunked prefill) and a sequence of no keys, GQA 4/2,
 * D 64; D 128 with a sequence whose queries outnumber its keys (rows that see nothing) and
 * max_seqlen 0 (the totals); an odd head dim 20 with Dv 12 (the fp32 SIMT kernel), GQA 8/2, no
 * lse, loose max_seqlen; a two-sided sliding window with a softcap; a causal window over q, k and
 * v as strided views into one fused QKV buffer [T, (H + 2Hk) D] with strided o and lse. Offsets
 * start past row 0 and end before the last row, so rows outside every sequence exist.
 * CPU: o and lse against the double reference, rows outside every sequence byte-for-byte as
 * poisoned (and algo, ignored on the CPU, changes nothing). CUDA (the emulated device in CI):
 * AUTO, FUSED and the fp32 SIMT kernel within the device tolerance of the CPU result, rows outside
 * every sequence untouched; UNFUSED is NOT_SUPPORTED and writes nothing. Batch invariance: each
 * sequence's rows bit-identical to that sequence alone (FUSED, one key split; run_alone says how).
 * Bad input: descriptors refused by name with nothing written; bad offsets (out of order, outside
 * [0, T], a length past max_seqlen) refused naming cu_seqlens_q / cu_seqlens_k on the CPU and on
 * CUDA with waiting checks (naming the sequence); with deferred checks the call succeeds, the
 * good sequences are right, the bad ones' rows are not written, and seqk_context_check reports it.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The fused path's test hook (host/cuda_ops.h); weak where the library has no CUDA path. */
void seqk__cuda_attention_fused_force(int kernel, int splits);
#if !defined(SEQK_HAVE_CUDA)
#pragma weak seqk__cuda_attention_fused_force
#define FORCE_LINKED (seqk__cuda_attention_fused_force != NULL)
#else
#define FORCE_LINKED 1
#endif

static seqk_context_t g_ctx;
static th_rng g_rng;

enum { MAX_B = 6 };

typedef struct pcase {
  const char *name;
  int B;
  int64_t H, Hk, D, Dv, Tq, Tk;
  int32_t cu_q[MAX_B + 1], cu_k[MAX_B + 1];
  float scale;
  int causal, window, left, right;
  float softcap;
  int qkv;     /* q, k, v: views into one [T, (H + 2Hk) D] buffer; Tq == Tk, cu_k == cu_q */
  int lse;     /* lse asked for */
  int hint;    /* max_seqlen_q/_k: 0 as 0 (the totals), 1 exact, 2 loose (exact + 37) */
  int strided; /* o and lse with gaps between heads and rows */
} pcase;

typedef struct prun {
  const pcase *c;
  seqk_dtype dt;
  seqk_tensor store[3]; /* the memory q, k, v view (qkv: store[0] alone) */
  int nstore;
  seqk_tensor q, k, v, cq, ck, o, lse;
  seqk_tensor o_tmpl, lse_tmpl; /* o's and lse's layouts, all 0xFF, never written */
  int32_t mq, mk;
  double *o_ref, *lse_ref; /* [Tq, H, Dv] and [H, Tq], NaN outside every sequence */
} prun;

static seqk_attention_params params_of(const pcase *c, seqk_attention_algo algo) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.scale = c->scale;
  p.causal = c->causal;
  p.algo = algo;
  p.window = c->window;
  p.window_left = c->left;
  p.window_right = c->right;
  p.softcap = c->softcap;
  return p;
}

/* ---- the reference, from the header's words -------------------------------------------------- */

/* Whether query i (of sq) sees key j (of sk). */
static int sees(const pcase *c, int64_t i, int64_t j, int64_t sq, int64_t sk) {
  const int64_t a = i + sk - sq;
  if (i >= sq || j >= sk) return 0;
  if (c->causal && j > a) return 0;
  if (c->window && c->left >= 0 && j < a - c->left) return 0;
  if (c->window && c->right >= 0 && j > a + c->right) return 0;
  return 1;
}

/* Sequence b is bad (the header's words): offsets out of order, outside [0, T], or a length
   past the bound (0: the total). */
static int seq_bad(const int32_t *cu, int b, int64_t T, int32_t bound) {
  const int64_t lim = bound ? bound : T;
  return cu[b] > cu[b + 1] || cu[b] < 0 || cu[b + 1] > T || cu[b + 1] - cu[b] > lim;
}

/* o_ref [Tq, H, Dv] and lse_ref [H, Tq] of the good sequences over q, k, v as stored; NaN (the
   poison) elsewhere. */
static void reference(const prun *r, const int32_t *cq, const int32_t *ck, const int *good,
                      double *o_ref, double *lse_ref) {
  const pcase *c = r->c;
  const double *q = th_to_doubles(&r->q), *k = th_to_doubles(&r->k), *v = th_to_doubles(&r->v);
  const double sc = c->scale != 0.0f ? c->scale : 1.0 / sqrt((double)c->D);
  const int64_t group = c->H / c->Hk, H = c->H, Hk = c->Hk, D = c->D, Dv = c->Dv, Tq = c->Tq;
  for (int64_t i = 0; i < Tq * H * Dv; ++i) o_ref[i] = NAN;
  for (int64_t i = 0; i < H * Tq; ++i) lse_ref[i] = NAN;
  double *s = (double *)th_alloc((size_t)(c->Tk + 1) * sizeof(double));
  for (int b = 0; b < c->B; ++b) {
    if (!good[b]) continue;
    const int64_t q0 = cq[b], k0 = ck[b], sq = cq[b + 1] - cq[b], sk = ck[b + 1] - ck[b];
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < sq; ++i) {
        const int64_t t = q0 + i, kh = h / group;
        double m = -INFINITY;
        int any = 0;
        for (int64_t j = 0; j < sk; ++j) {
          s[j] = -INFINITY;
          if (!sees(c, i, j, sq, sk)) continue;
          double x = 0.0;
          for (int64_t d = 0; d < D; ++d)
            x += q[(t * H + h) * D + d] * k[((k0 + j) * Hk + kh) * D + d];
          x *= sc;
          if (c->softcap > 0.0f) x = c->softcap * tanh(x / c->softcap);
          s[j] = x;
          m = fmax(m, x);
          any = 1;
        }
        double z = 0.0;
        for (int64_t j = 0; j < sk; ++j)
          if (s[j] != -INFINITY) z += exp(s[j] - m);
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < sk; ++j)
            if (s[j] != -INFINITY) acc += exp(s[j] - m) * v[((k0 + j) * Hk + kh) * Dv + e];
          o_ref[(t * H + h) * Dv + e] = any ? acc / z : 0.0;
        }
        lse_ref[h * Tq + t] = any ? m + log(z) : INFINITY;
      }
  }
}

/* ---- building a case --------------------------------------------------------------------------- */

static int32_t max_len(const int32_t *cu, int B) {
  int32_t m = 0;
  for (int b = 0; b < B; ++b) m = cu[b + 1] - cu[b] > m ? cu[b + 1] - cu[b] : m;
  return m;
}

/* 1 where row t lies in a good sequence of cu. */
static int *rows_in(const int32_t *cu, int B, int64_t T, const int *good) {
  int *in = (int *)th_alloc((size_t)(T + 1) * sizeof(int));
  memset(in, 0, (size_t)(T + 1) * sizeof(int));
  for (int b = 0; b < B; ++b)
    if (good[b])
      for (int64_t t = cu[b] < 0 ? 0 : cu[b]; t < cu[b + 1] && t < T; ++t) in[t] = 1;
  return in;
}

static const int k_all_good[MAX_B] = {1, 1, 1, 1, 1, 1};

/* A [rows, heads, width] view of store at element offset `at`, row stride rs. */
static seqk_tensor view3(const seqk_tensor *store, int64_t at, int64_t rows, int64_t heads,
                         int64_t width, int64_t rs) {
  const int64_t shape[3] = {rows, heads, width}, stride[3] = {rs, width, 1};
  return seqk_tensor_view_strided((char *)store->data + at * (int64_t)seqk_dtype_size(store->dtype),
                                  store->dtype, store->device, 3, shape, stride);
}

static void nan_row(seqk_tensor *t, int64_t row) {
  const int64_t per = t->shape[1] * t->shape[2];
  for (int64_t e = 0; e < per; ++e) th_set(t, row * per + e, NAN);
}

static void make_outputs(const pcase *c, seqk_dtype dt, seqk_tensor *o, seqk_tensor *lse) {
  const int64_t os[3] = {c->Tq, c->H, c->Dv}, ls[2] = {c->H, c->Tq};
  const int64_t opad[3] = {0, 1, 8}, lpad[2] = {0, 3};
  *o = c->strided ? th_tensor_strided(dt, 3, os, opad, 1) : th_tensor_new(dt, 3, os);
  *lse = c->strided ? th_tensor_strided(SEQK_DTYPE_F32, 2, ls, lpad, 1)
                    : th_tensor_new(SEQK_DTYPE_F32, 2, ls);
  th_poison(o);
  th_poison(lse);
}

static void build(prun *r, const pcase *c, seqk_dtype dt) {
  memset(r, 0, sizeof *r);
  r->c = c;
  r->dt = dt;
  const int64_t H = c->H, Hk = c->Hk, D = c->D, Dv = c->Dv;
  if (c->qkv) {
    const int64_t W = (H + 2 * Hk) * D, ss[2] = {c->Tq, W};
    r->store[0] = th_tensor_new(dt, 2, ss);
    r->nstore = 1;
    th_fill_normal(&r->store[0], &g_rng, 1.0);
    r->q = view3(&r->store[0], 0, c->Tq, H, D, W);
    r->k = view3(&r->store[0], H * D, c->Tk, Hk, D, W);
    r->v = view3(&r->store[0], (H + Hk) * D, c->Tk, Hk, Dv, W);
  } else {
    const int64_t qs[3] = {c->Tq, H, D}, ks[3] = {c->Tk, Hk, D}, vs[3] = {c->Tk, Hk, Dv};
    r->q = r->store[0] = th_tensor_new(dt, 3, qs);
    r->k = r->store[1] = th_tensor_new(dt, 3, ks);
    r->v = r->store[2] = th_tensor_new(dt, 3, vs);
    r->nstore = 3;
    th_fill_normal(&r->q, &g_rng, 1.0);
    th_fill_normal(&r->k, &g_rng, 1.0);
    th_fill_normal(&r->v, &g_rng, 1.0);
  }
  /* rows outside every sequence hold NaN: reading one into a result shows */
  const int *qin = rows_in(c->cu_q, c->B, c->Tq, k_all_good);
  const int *kin = rows_in(c->cu_k, c->B, c->Tk, k_all_good);
  for (int64_t t = 0; t < c->Tq; ++t)
    if (!qin[t]) nan_row(&r->q, t);
  for (int64_t t = 0; t < c->Tk; ++t)
    if (!kin[t]) {
      nan_row(&r->k, t);
      nan_row(&r->v, t);
    }
  const int64_t bs[1] = {c->B + 1};
  r->cq = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
  th_fill_i32(&r->cq, c->cu_q);
  if (c->qkv) {
    r->ck = r->cq; /* one tensor for both: self-attention over the same tokens */
  } else {
    r->ck = th_tensor_new(SEQK_DTYPE_I32, 1, bs);
    th_fill_i32(&r->ck, c->cu_k);
  }
  make_outputs(c, dt, &r->o, &r->lse);
  make_outputs(c, dt, &r->o_tmpl, &r->lse_tmpl);
  const int32_t eq = max_len(c->cu_q, c->B), ek = max_len(c->cu_k, c->B);
  r->mq = c->hint == 0 ? 0 : c->hint == 1 ? eq : eq + 37;
  r->mk = c->hint == 0 ? 0 : c->hint == 1 ? ek : ek + 37;
  r->o_ref = (double *)th_alloc((size_t)(c->Tq * H * Dv) * sizeof(double));
  r->lse_ref = (double *)th_alloc((size_t)(H * c->Tq) * sizeof(double));
  reference(r, c->cu_q, c->cu_k, k_all_good, r->o_ref, r->lse_ref);
}

/* ---- checks on outputs --------------------------------------------------------------------------- */

/* Every byte of t's span that is not an element in a row with in[row] set (row = index along
   dim row_dim) is still 0xFF. */
static int untouched_outside(const seqk_tensor *t, int row_dim, const int *in) {
  if (!t->data) return 1;
  int64_t n = 1, span = 1;
  for (int d = 0; d < t->ndim; ++d) {
    n *= t->shape[d];
    span += (t->shape[d] - 1) * t->stride[d];
  }
  if (n == 0) return 1;
  const size_t es = seqk_dtype_size(t->dtype);
  char *mark = (char *)th_alloc((size_t)span);
  memset(mark, 0, (size_t)span);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0, row = 0;
    for (int d = t->ndim - 1; d >= 0; --d) {
      const int64_t idx = rem % t->shape[d];
      rem /= t->shape[d];
      off += idx * t->stride[d];
      if (d == row_dim) row = idx;
    }
    if (in[row]) mark[off] = 1;
  }
  const unsigned char *p = (const unsigned char *)t->data;
  for (int64_t o = 0; o < span; ++o)
    if (!mark[o])
      for (size_t b = 0; b < es; ++b)
        if (p[(size_t)o * es + b] != 0xFF) return 0;
  return 1;
}

static void check_untouched(const char *what, const seqk_tensor *o, const seqk_tensor *lse,
                            const int *in) {
  TH_CHECK(untouched_outside(o, 0, in), "%s: o written outside the sequences' rows", what);
  if (lse && lse->data)
    TH_CHECK(untouched_outside(lse, 1, in), "%s: lse written outside the sequences' rows", what);
}

static int same_bytes(const seqk_tensor *a, const seqk_tensor *b) {
  int64_t span = 1;
  for (int d = 0; d < a->ndim; ++d) span += (a->shape[d] - 1) * a->stride[d];
  return memcmp(a->data, b->data, (size_t)span * seqk_dtype_size(a->dtype)) == 0;
}

/* The number of elements of a and b (one layout) whose bits differ; where: the first of them. */
static int64_t bit_diff(const seqk_tensor *a, const seqk_tensor *b, char *where, size_t n) {
  const size_t es = seqk_dtype_size(a->dtype);
  int64_t count = 1, bad = 0;
  for (int d = 0; d < a->ndim; ++d) count *= a->shape[d];
  snprintf(where, n, "none");
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, off = 0, idx[SEQK_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; --d) {
      idx[d] = rem % a->shape[d];
      rem /= a->shape[d];
      off += idx[d] * a->stride[d];
    }
    if (!memcmp((const char *)a->data + off * (int64_t)es,
                (const char *)b->data + off * (int64_t)es, es))
      continue;
    if (bad++ == 0) {
      char at[64] = "";
      for (int d = 0; d < a->ndim; ++d) {
        const size_t len = strlen(at);
        snprintf(at + len, sizeof at - len, "%s%lld", d ? ", " : "", (long long)idx[d]);
      }
      snprintf(where, n, "first at [%s]: %.9g vs %.9g", at, th_get(a, i), th_get(b, i));
    }
  }
  if (bad) {
    const size_t len = strlen(where);
    snprintf(where + len, n - len, "; %lld of %lld elements", (long long)bad, (long long)count);
  }
  return bad;
}

/* ---- the CPU path ---------------------------------------------------------------------------------- */

static seqk_tensor *lse_arg(prun *r, seqk_tensor *lse) { return r->c->lse ? lse : NULL; }

static void check_cpu(prun *r, const char *what) {
  const pcase *c = r->c;
  const seqk_attention_params p = params_of(c, SEQK_ATTENTION_ALGO_AUTO);
  char msg[320];
  snprintf(msg, sizeof msg, "%s (CPU)", what);
  if (!th_expect_status(g_ctx,
                        seqk_attention_packed(g_ctx, &p, &r->q, &r->k, &r->v, &r->cq, &r->ck, r->mq,
                                              r->mk, &r->o, lse_arg(r, &r->lse)),
                        SEQK_STATUS_SUCCESS, NULL, msg))
    return;
  snprintf(msg, sizeof msg, "%s: o (CPU) vs double", what);
  th_check_close(msg, &r->o, r->o_ref, th_tol_for(r->dt));
  if (c->lse) {
    snprintf(msg, sizeof msg, "%s: lse (CPU) vs double", what);
    th_check_close(msg, &r->lse, r->lse_ref, th_tol_for(SEQK_DTYPE_F32));
  }
  snprintf(msg, sizeof msg, "%s (CPU)", what);
  check_untouched(msg, &r->o, &r->lse, rows_in(c->cu_q, c->B, c->Tq, k_all_good));
  /* the algo is ignored on the CPU: UNFUSED gives the same bytes */
  seqk_tensor o2, l2;
  make_outputs(c, r->dt, &o2, &l2);
  const seqk_attention_params pu = params_of(c, SEQK_ATTENTION_ALGO_UNFUSED);
  snprintf(msg, sizeof msg, "%s (CPU, algo UNFUSED)", what);
  if (th_expect_status(g_ctx,
                       seqk_attention_packed(g_ctx, &pu, &r->q, &r->k, &r->v, &r->cq, &r->ck, r->mq,
                                             r->mk, &o2, lse_arg(r, &l2)),
                       SEQK_STATUS_SUCCESS, NULL, msg))
    TH_CHECK(same_bytes(&o2, &r->o) && (!c->lse || same_bytes(&l2, &r->lse)),
             "%s: differs from algo AUTO", msg);
}

/* ---- CUDA ------------------------------------------------------------------------------------------ */

/* A run's tensors on the device: q, k, v rebased into uploaded stores, the offsets, and o and lse
   uploaded from the all-0xFF templates. */
typedef struct dev_set {
  seqk_tensor back[8];
  int nback;
  seqk_tensor q, k, v, cq, ck, o, lse;
  int ok;
} dev_set;

static seqk_tensor rebase(const seqk_tensor *view, const seqk_tensor *hstore,
                          const seqk_tensor *dstore) {
  seqk_tensor t = *view;
  t.device = SEQK_DEVICE_CUDA;
  t.data = (char *)dstore->data + ((const char *)view->data - (const char *)hstore->data);
  return t;
}

static int dev_upload(dev_set *d, const seqk_tensor *t, seqk_tensor *dev) {
  if (th_upload(g_ctx, t, &d->back[d->nback], dev) != SEQK_STATUS_SUCCESS) return 0;
  ++d->nback;
  return 1;
}

static void dev_open(dev_set *d, const prun *r, const char *what) {
  memset(d, 0, sizeof *d);
  seqk_tensor ds[3];
  int ok = 1;
  for (int s = 0; s < r->nstore; ++s) ok &= dev_upload(d, &r->store[s], &ds[s]);
  if (ok) {
    d->q = rebase(&r->q, &r->store[0], &ds[0]);
    d->k = rebase(&r->k, &r->store[r->nstore == 1 ? 0 : 1], &ds[r->nstore == 1 ? 0 : 1]);
    d->v = rebase(&r->v, &r->store[r->nstore == 1 ? 0 : 2], &ds[r->nstore == 1 ? 0 : 2]);
  }
  ok = ok && dev_upload(d, &r->cq, &d->cq);
  if (ok && r->ck.data == r->cq.data)
    d->ck = d->cq;
  else
    ok = ok && dev_upload(d, &r->ck, &d->ck);
  ok = ok && dev_upload(d, &r->o_tmpl, &d->o) && dev_upload(d, &r->lse_tmpl, &d->lse);
  TH_CHECK(ok, "%s: setting up CUDA tensors failed: %s", what, seqk_context_last_error(g_ctx));
  d->ok = ok;
}

static void dev_close(dev_set *d) {
  for (int i = 0; i < d->nback; ++i) seqk_tensor_free(g_ctx, &d->back[i]);
}

static seqk_status dev_call(const prun *r, dev_set *d, const seqk_attention_params *p, int kernel,
                            int splits) {
  if (FORCE_LINKED) seqk__cuda_attention_fused_force(kernel, splits);
  const seqk_status st = seqk_attention_packed(g_ctx, p, &d->q, &d->k, &d->v, &d->cq, &d->ck, r->mq,
                                               r->mk, &d->o, r->c->lse ? &d->lse : NULL);
  if (FORCE_LINKED) seqk__cuda_attention_fused_force(0, 0);
  return st;
}

static const struct {
  const char *name;
  seqk_attention_algo algo;
  int kernel, splits;
} k_runs[] = {{"auto", SEQK_ATTENTION_ALGO_AUTO, 0, 0},
              {"fused", SEQK_ATTENTION_ALGO_FUSED, 0, 0},
              {"fused SIMT", SEQK_ATTENTION_ALGO_FUSED, 1, 0}};

static void check_device(prun *r, const char *what) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  const pcase *c = r->c;
  const double factor = r->dt == SEQK_DTYPE_F32 ? 4.0 : 1.0;
  const int *in = rows_in(c->cu_q, c->B, c->Tq, k_all_good);
  char msg[320];
  for (size_t i = 0; i < sizeof k_runs / sizeof k_runs[0]; ++i) {
    snprintf(msg, sizeof msg, "%s on CUDA (%s)", what, k_runs[i].name);
    dev_set d;
    dev_open(&d, r, msg);
    if (d.ok) {
      const seqk_attention_params p = params_of(c, k_runs[i].algo);
      const seqk_status st = dev_call(r, &d, &p, k_runs[i].kernel, k_runs[i].splits);
      seqk_tensor ho, hl;
      if (th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, msg) &&
          th_download(g_ctx, msg, &d.o, &ho) && th_download(g_ctx, msg, &d.lse, &hl)) {
        char label[360];
        snprintf(label, sizeof label, "%s: o", msg);
        th_check_close(label, &ho, th_to_doubles(&r->o),
                       th_tol_scaled(r->dt, TH_DEVICE_TOL * factor));
        if (c->lse) {
          snprintf(label, sizeof label, "%s: lse", msg);
          th_check_close(label, &hl, th_to_doubles(&r->lse),
                         th_tol_scaled(SEQK_DTYPE_F32, TH_DEVICE_TOL * factor));
        }
        check_untouched(msg, &ho, &hl, in);
      }
    }
    dev_close(&d);
  }
  /* UNFUSED: not served, nothing written */
  snprintf(msg, sizeof msg, "%s on CUDA (unfused)", what);
  dev_set d;
  dev_open(&d, r, msg);
  if (d.ok) {
    const seqk_attention_params p = params_of(c, SEQK_ATTENTION_ALGO_UNFUSED);
    const seqk_status st = dev_call(r, &d, &p, 0, 0);
    seqk_tensor ho, hl;
    if (th_expect_status(g_ctx, st, SEQK_STATUS_NOT_SUPPORTED, NULL, msg) &&
        th_download(g_ctx, msg, &d.o, &ho) && th_download(g_ctx, msg, &d.lse, &hl))
      TH_CHECK(same_bytes(&ho, &r->o_tmpl) && same_bytes(&hl, &r->lse_tmpl),
               "%s: NOT_SUPPORTED but o or lse was written", msg);
  }
  dev_close(&d);
}

/* Each sequence's rows of the packed result (FUSED) are bit-identical to that sequence run alone
   (FUSED, one key split): through seqk_attention as [1, H, Sq_b, D] views of the same device
   memory where both run the same kernel (head dims above 64: packed calls at D <= 64 run in the
   tensor-core kernel's 96 instantiation, seqk_attention in the 64 one), else through
   seqk_attention_packed with the sequence alone and other bounds (0: the totals). */
static seqk_status run_alone(const prun *r, const dev_set *d, const seqk_attention_params *p, int b,
                             seqk_tensor *o1, seqk_tensor *l1) {
  const pcase *c = r->c;
  const int64_t q0 = c->cu_q[b], sq = c->cu_q[b + 1] - q0;
  const int64_t k0 = c->cu_k[b], sk = c->cu_k[b + 1] - k0;
  if (c->D <= 64 || c->Dv <= 64) {
    const int32_t cq[2] = {(int32_t)q0, (int32_t)(q0 + sq)},
                  ck[2] = {(int32_t)k0, (int32_t)(k0 + sk)};
    const int64_t two[1] = {2};
    seqk_tensor hq = seqk_tensor_view((void *)cq, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, two);
    seqk_tensor hk = seqk_tensor_view((void *)ck, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, two);
    seqk_tensor bq, bk, dq, dk;
    seqk_status st = th_upload(g_ctx, &hq, &bq, &dq);
    if (st == SEQK_STATUS_SUCCESS) {
      st = th_upload(g_ctx, &hk, &bk, &dk);
      if (st == SEQK_STATUS_SUCCESS) {
        st = seqk_attention_packed(g_ctx, p, &d->q, &d->k, &d->v, &dq, &dk, 0, 0, o1, l1);
        seqk_tensor_free(g_ctx, &bk);
      }
      seqk_tensor_free(g_ctx, &bq);
    }
    return st;
  }
  const seqk_tensor *src[3] = {&d->q, &d->k, &d->v};
  const int64_t first[3] = {q0, k0, k0}, rows[3] = {sq, sk, sk};
  seqk_tensor t[4];
  for (int i = 0; i < 3; ++i) { /* [T, H, D] rows first .. first + rows - 1 as [1, H, S, D] */
    const seqk_tensor *s = src[i];
    const int64_t shape[4] = {1, s->shape[1], rows[i], s->shape[2]};
    const int64_t stride[4] = {0, s->stride[1], s->stride[0], 1};
    t[i] = seqk_tensor_view_strided(
        (char *)s->data + first[i] * s->stride[0] * (int64_t)seqk_dtype_size(s->dtype), s->dtype,
        SEQK_DEVICE_CUDA, 4, shape, stride);
  }
  const int64_t oshape[4] = {1, c->H, sq, c->Dv}, ostride[4] = {0, o1->stride[1], o1->stride[0], 1};
  t[3] = seqk_tensor_view_strided(
      (char *)o1->data + q0 * o1->stride[0] * (int64_t)seqk_dtype_size(o1->dtype), o1->dtype,
      SEQK_DEVICE_CUDA, 4, oshape, ostride);
  const int64_t lshape[3] = {1, c->H, sq}, lstride[3] = {0, l1->stride[0], l1->stride[1]};
  seqk_tensor lv = seqk_tensor_view_strided((char *)l1->data + q0 * l1->stride[1] * 4,
                                            SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, lshape, lstride);
  return seqk_attention(g_ctx, p, &t[0], &t[1], &t[2], &t[3], &lv);
}

static void check_batch_invariance(prun *r, const char *what) {
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  const pcase *c = r->c;
  char msg[320];
  snprintf(msg, sizeof msg, "%s: batch invariance on CUDA", what);
  dev_set d;
  dev_open(&d, r, msg);
  seqk_tensor o1, l1; /* the per-sequence results, in the same layouts */
  seqk_tensor b1[2];
  memset(b1, 0, sizeof b1);
  if (d.ok && th_upload(g_ctx, &r->o_tmpl, &b1[0], &o1) == SEQK_STATUS_SUCCESS &&
      th_upload(g_ctx, &r->lse_tmpl, &b1[1], &l1) == SEQK_STATUS_SUCCESS) {
    const seqk_attention_params p = params_of(c, SEQK_ATTENTION_ALGO_FUSED);
    /* no split (the sequence alone could take one); the kernel the device picks for both (the
       Hopper kernel on 9.0, the sm_80 one elsewhere) */
    seqk__cuda_attention_fused_force(0, 1);
    const seqk_status st = seqk_attention_packed(g_ctx, &p, &d.q, &d.k, &d.v, &d.cq, &d.ck, r->mq,
                                                 r->mk, &d.o, &d.lse);
    int ok = th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, msg);
    for (int b = 0; b < c->B && ok; ++b) {
      if (c->cu_q[b + 1] == c->cu_q[b]) continue;
      char m2[400];
      snprintf(m2, sizeof m2, "%s: sequence %d alone", msg, b);
      ok =
          th_expect_status(g_ctx, run_alone(r, &d, &p, b, &o1, &l1), SEQK_STATUS_SUCCESS, NULL, m2);
    }
    seqk__cuda_attention_fused_force(0, 0);
    seqk_tensor ha, la, hb, lb;
    if (ok && th_download(g_ctx, msg, &d.o, &ha) && th_download(g_ctx, msg, &d.lse, &la) &&
        th_download(g_ctx, msg, &o1, &hb) && th_download(g_ctx, msg, &l1, &lb)) {
      char where[200];
      TH_CHECK(bit_diff(&ha, &hb, where, sizeof where) == 0,
               "%s: o differs from the sequences run alone (%s)", msg, where);
      TH_CHECK(bit_diff(&la, &lb, where, sizeof where) == 0,
               "%s: lse differs from the sequences run alone (%s)", msg, where);
    }
  }
  seqk_tensor_free(g_ctx, &b1[0]);
  seqk_tensor_free(g_ctx, &b1[1]);
  dev_close(&d);
}

static void test_cases(void) {
  // clang-format off
  static const pcase cases[] = {
      /* name, B, H, Hk, D, Dv, Tq, Tk, cu_q, cu_k, scale, causal, window, left, right, softcap,
         qkv, lse, hint, strided */
      {"causal, lengths 1/0/37/70/5 over 20/6/100/70/0 keys, GQA 4/2, D 64", 5, 4, 2, 64, 64, 120,
       205, {3, 4, 4, 41, 111, 116}, {2, 22, 28, 128, 198, 198}, 0.0f, 1, 0, 0, 0, 0.0f, 0, 1, 1,
       0},
      {"causal, D 128, a sequence of 9 queries over 3 keys, max_seqlen 0", 3, 2, 1, 128, 128, 110,
       113, {0, 30, 39, 104}, {5, 45, 48, 113}, 0.0f, 1, 0, 0, 0, 0.0f, 0, 1, 0, 0},
      {"D 20 / Dv 12 (SIMT), GQA 8/2, scale 0.7, no lse, loose max_seqlen", 4, 8, 2, 20, 12, 25, 50,
       {2, 5, 6, 23, 23}, {0, 9, 10, 43, 47}, 0.7f, 0, 0, 0, 0, 0.0f, 0, 0, 2, 0},
      {"window (10, 3), softcap 5, Sq <= Sk, loose max_seqlen", 3, 4, 2, 32, 32, 75, 170,
       {7, 57, 69, 70}, {1, 51, 91, 168}, 0.0f, 0, 1, 10, 3, 5.0f, 0, 1, 2, 0},
      {"fused QKV views, causal window 24, strided o and lse", 4, 4, 2, 64, 64, 150, 150,
       {4, 60, 61, 61, 140}, {4, 60, 61, 61, 140}, 0.0f, 1, 1, 23, -1, 0.0f, 1, 1, 1, 1},
      {"causal, D 256 (the 256 kernel's packed rows)", 2, 2, 1, 256, 256, 40, 45, {1, 20, 38},
       {0, 20, 44}, 0.0f, 1, 0, 0, 0, 0.0f, 0, 1, 1, 0},
      {"window (7, 0), D 160 / Dv 136 (the 160 kernel)", 2, 2, 2, 160, 136, 30, 50, {0, 13, 29},
       {2, 30, 49}, 0.0f, 0, 1, 7, 0, 0.0f, 0, 1, 0, 0},
      {"causal, D 184 / Dv 176 (the 192 kernel), GQA 2/1", 2, 2, 1, 184, 176, 33, 41, {2, 19, 31},
       {0, 25, 40}, 0.0f, 1, 0, 0, 0, 0.0f, 0, 1, 1, 0},
  };
  // clang-format on
  const seqk_dtype dts[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    for (int d = 0; d < 3; ++d) {
      prun r;
      char what[240];
      snprintf(what, sizeof what, "%s, %s", cases[i].name, th_dtype_name(dts[d]));
      build(&r, &cases[i], dts[d]);
      check_cpu(&r, what);
      check_device(&r, what);
      if (dts[d] == SEQK_DTYPE_F16 && (i == 0 || i == 1 || i == 4))
        check_batch_invariance(&r, what);
    }
}

/* ---- bad input ----------------------------------------------------------------------------------- */

/* Three sequences: queries 4, 3, 3 (rows 1..10 of 14), keys 6, 7, 7 (rows 0..19 of 22). */
static const pcase k_small = {
    "small", 3, 2, 1,    16, 16, 14, 22, {1, 5, 8, 11}, {0, 6, 13, 20}, 0.0f, 1,
    0,       0, 0, 0.0f, 0,  1,  1,  0};

static void test_bad_descriptors(void) {
  prun r;
  build(&r, &k_small, SEQK_DTYPE_F16);
  const int32_t host_lens[3] = {1, 1, 1};
#define REFUSED(needle, ...)                                                                       \
  do {                                                                                             \
    seqk_tensor q = r.q, k = r.k, v = r.v, cq = r.cq, ck = r.ck, o = r.o, lse = r.lse;             \
    int32_t mq = r.mq, mk = r.mk;                                                                  \
    seqk_attention_params p = params_of(&k_small, SEQK_ATTENTION_ALGO_AUTO);                       \
    __VA_ARGS__;                                                                                   \
    th_expect_rejected(                                                                            \
        g_ctx, seqk_attention_packed(g_ctx, &p, &q, &k, &v, &cq, &ck, mq, mk, &o, &lse),           \
        SEQK_STATUS_INVALID_VALUE, needle, "bad descriptor: " #__VA_ARGS__,                        \
        TH_SNAPS(th_snapshot_take(&r.o), th_snapshot_take(&r.lse), th_snapshot_take(&r.q),         \
                 th_snapshot_take(&r.k), th_snapshot_take(&r.v)));                                 \
  } while (0)
  REFUSED("q", q.ndim = 4; q.shape[3] = 1; q.stride[3] = 1);
  REFUSED("q", q.ndim = 2);
  REFUSED("k", k.ndim = 4; k.shape[3] = 1; k.stride[3] = 1);
  REFUSED("k", k.shape[2] = 8);
  REFUSED("v", v.ndim = 2);
  REFUSED("v", v.shape[0] = 21);
  REFUSED("o", o.ndim = 2);
  REFUSED("o", o.shape[1] = 1);
  REFUSED("o", o.shape[0] = 13);
  REFUSED("o", o.dtype = SEQK_DTYPE_F32);
  REFUSED("o", o.data = r.q.data);
  REFUSED("lse", lse.ndim = 3; lse.shape[2] = 1; lse.stride[2] = 1);
  REFUSED("lse", lse.shape[1] = 13);
  REFUSED("lse", lse.shape[0] = 3);
  REFUSED("lse", lse.dtype = SEQK_DTYPE_F16);
  REFUSED("cu_seqlens_q", cq.dtype = SEQK_DTYPE_F32);
  REFUSED("cu_seqlens_k", ck.dtype = SEQK_DTYPE_F32);
  REFUSED("cu_seqlens_q", cq = th_with_shape(cq, 2, (const int64_t[]){1, 4}));
  REFUSED("cu_seqlens_k", ck = th_with_shape(ck, 2, (const int64_t[]){2, 2}));
  REFUSED("cu_seqlens_q", cq.shape[0] = 0);
  REFUSED("cu_seqlens_q", cq = th_absent(cq));
  REFUSED("cu_seqlens_k", ck = th_absent(ck));
  REFUSED("cu_seqlens_k", ck.shape[0] = 3);     /* [B + 1] for B = 3, and [3] */
  REFUSED("cu_seqlens_q", cq = th_on_cuda(cq)); /* not on q's device */
  REFUSED("params.seqlens_q", p.seqlens_q = host_lens);
  REFUSED("params.seqlens_k", p.seqlens_k = host_lens);
  REFUSED("params.softcap", p.softcap = -1.0f);
  REFUSED("params.scale", p.scale = NAN);
  REFUSED("max_seqlen_q", mq = -1);
  REFUSED("max_seqlen_k", mk = -5);
#undef REFUSED
  TH_CHECK(seqk_attention_packed(NULL, NULL, &r.q, &r.k, &r.v, &r.cq, &r.ck, 0, 0, &r.o, NULL) ==
               SEQK_STATUS_INVALID_VALUE,
           "NULL ctx");
  /* B = 0 (offsets [1]): nothing to do, nothing written */
  const int64_t one[1] = {1};
  const seqk_tensor c0 = th_with_shape(r.cq, 1, one);
  th_expect_status(
      g_ctx, seqk_attention_packed(g_ctx, NULL, &r.q, &r.k, &r.v, &c0, &c0, 0, 0, &r.o, &r.lse),
      SEQK_STATUS_SUCCESS, NULL, "B = 0");
  TH_CHECK(same_bytes(&r.o, &r.o_tmpl) && same_bytes(&r.lse, &r.lse_tmpl),
           "B = 0: o or lse written");

  /* CUDA: offsets in host memory, and shapes the fused kernels do not serve */
  if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) return;
  dev_set d;
  dev_open(&d, &r, "bad input on CUDA");
  if (d.ok) {
    seqk_tensor hq = r.cq;
    th_expect_status(
        g_ctx, seqk_attention_packed(g_ctx, NULL, &d.q, &d.k, &d.v, &hq, &d.ck, 0, 0, &d.o, &d.lse),
        SEQK_STATUS_INVALID_VALUE, "cu_seqlens_q", "CUDA q, cu_seqlens_q on the CPU");
    seqk_tensor ho, hl;
    if (th_download(g_ctx, "bad input on CUDA", &d.o, &ho) &&
        th_download(g_ctx, "bad input on CUDA", &d.lse, &hl))
      TH_CHECK(same_bytes(&ho, &r.o_tmpl) && same_bytes(&hl, &r.lse_tmpl),
               "CUDA q, cu_seqlens_q on the CPU: o or lse written");
  }
  dev_close(&d);
  /* D 264 (past the fused kernels' 256): NOT_SUPPORTED on CUDA, nothing written */
  static const pcase big = {"D 264", 1, 1, 1, 264, 264,  3, 4, {0, 3}, {0, 4},
                            0.0f,    0, 0, 0, 0,   0.0f, 0, 1, 1,      0};
  prun rb;
  build(&rb, &big, SEQK_DTYPE_F32);
  dev_open(&d, &rb, "D 264 on CUDA");
  if (d.ok) {
    th_expect_status(g_ctx, dev_call(&rb, &d, NULL, 0, 0), SEQK_STATUS_NOT_SUPPORTED, NULL,
                     "D 264 on CUDA");
    seqk_tensor ho, hl;
    if (th_download(g_ctx, "D 264", &d.o, &ho) && th_download(g_ctx, "D 264", &d.lse, &hl))
      TH_CHECK(same_bytes(&ho, &rb.o_tmpl) && same_bytes(&hl, &rb.lse_tmpl),
               "D 264 on CUDA: o or lse written");
  }
  dev_close(&d);
}

/* Bad offset values: refused naming the offsets (CPU; CUDA waiting, naming the sequence too);
   deferred: the good sequences right, the bad ones' rows untouched, the check reports it. */
static void test_bad_offsets(void) {
  static const struct {
    const char *name;
    int32_t cu_q[4], cu_k[4];
    int32_t mq, mk; /* max_seqlen_q/_k (0: the totals) */
    const char *needle;
  } cases[] = {
      {"decreasing cu_seqlens_k", {1, 5, 8, 11}, {0, 6, 3, 20}, 0, 0, "cu_seqlens_k"},
      {"decreasing cu_seqlens_q", {1, 9, 5, 5}, {0, 6, 13, 20}, 0, 0, "cu_seqlens_q"},
      {"cu_seqlens_k[B] > Tk", {1, 5, 8, 11}, {0, 6, 13, 23}, 0, 0, "cu_seqlens_k"},
      {"cu_seqlens_q[B] > Tq", {1, 5, 8, 15}, {0, 6, 13, 20}, 0, 0, "cu_seqlens_q"},
      {"negative cu_seqlens_q[0]", {-2, 5, 8, 11}, {0, 6, 13, 20}, 0, 0, "cu_seqlens_q"},
      {"a query length past max_seqlen_q", {1, 5, 8, 11}, {0, 6, 13, 20}, 3, 0, "cu_seqlens_q"},
      {"a key length past max_seqlen_k", {1, 5, 8, 11}, {0, 6, 12, 20}, 0, 7, "cu_seqlens_k"},
  };
  const pcase *c = &k_small;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    prun r;
    build(&r, c, SEQK_DTYPE_F16);
    th_fill_i32(&r.cq, cases[i].cu_q);
    th_fill_i32(&r.ck, cases[i].cu_k);
    r.mq = cases[i].mq;
    r.mk = cases[i].mk;
    int good[MAX_B], first_bad = -1;
    for (int b = 0; b < c->B; ++b) {
      good[b] = !seq_bad(cases[i].cu_q, b, c->Tq, r.mq) && !seq_bad(cases[i].cu_k, b, c->Tk, r.mk);
      if (!good[b] && first_bad < 0) first_bad = b;
    }
    char what[200], seq[32];
    snprintf(what, sizeof what, "bad offsets: %s", cases[i].name);
    snprintf(seq, sizeof seq, "sequence %d", first_bad);
    const seqk_attention_params p = params_of(c, SEQK_ATTENTION_ALGO_AUTO);
    th_expect_rejected(
        g_ctx,
        seqk_attention_packed(g_ctx, &p, &r.q, &r.k, &r.v, &r.cq, &r.ck, r.mq, r.mk, &r.o, &r.lse),
        SEQK_STATUS_INVALID_VALUE, cases[i].needle, what,
        TH_SNAPS(th_snapshot_take(&r.o), th_snapshot_take(&r.lse)));
    if (seqk_cuda_device_count() == 0 || !FORCE_LINKED) continue;

    /* CUDA, waiting checks (the default) */
    char msg[240];
    snprintf(msg, sizeof msg, "%s on CUDA (waiting)", what);
    dev_set d;
    dev_open(&d, &r, msg);
    if (d.ok) {
      const seqk_status st = dev_call(&r, &d, &p, 0, 0);
      if (th_expect_status(g_ctx, st, SEQK_STATUS_INVALID_VALUE, cases[i].needle, msg))
        th_expect_status(g_ctx, st, SEQK_STATUS_INVALID_VALUE, seq, msg);
      seqk_tensor ho, hl;
      if (th_download(g_ctx, msg, &d.o, &ho) && th_download(g_ctx, msg, &d.lse, &hl))
        TH_CHECK(same_bytes(&ho, &r.o_tmpl) && same_bytes(&hl, &r.lse_tmpl), "%s: o or lse written",
                 msg);
    }
    dev_close(&d);

    /* CUDA, deferred checks */
    snprintf(msg, sizeof msg, "%s on CUDA (deferred)", what);
    if (!th_expect_status(g_ctx, seqk_context_set_device_checks(g_ctx, SEQK_DEVICE_CHECKS_DEFERRED),
                          SEQK_STATUS_SUCCESS, NULL, "deferred checks"))
      continue;
    dev_open(&d, &r, msg);
    if (d.ok) {
      th_expect_status(g_ctx, dev_call(&r, &d, &p, 0, 0), SEQK_STATUS_SUCCESS, NULL, msg);
      th_expect_status(g_ctx, seqk_context_check(g_ctx), SEQK_STATUS_INVALID_VALUE,
                       "attention_packed", msg);
      th_expect_status(g_ctx, seqk_context_check(g_ctx), SEQK_STATUS_SUCCESS, NULL,
                       "seqk_context_check after it reported (cleared)");
      seqk_tensor ho, hl;
      if (th_download(g_ctx, msg, &d.o, &ho) && th_download(g_ctx, msg, &d.lse, &hl)) {
        double *o_ref = (double *)th_alloc((size_t)(c->Tq * c->H * c->Dv) * sizeof(double));
        double *l_ref = (double *)th_alloc((size_t)(c->H * c->Tq) * sizeof(double));
        reference(&r, cases[i].cu_q, cases[i].cu_k, good, o_ref, l_ref);
        char label[280];
        snprintf(label, sizeof label, "%s: o of the good sequences", msg);
        th_check_close(label, &ho, o_ref, th_tol_scaled(r.dt, TH_DEVICE_TOL));
        snprintf(label, sizeof label, "%s: lse of the good sequences", msg);
        th_check_close(label, &hl, l_ref, th_tol_scaled(SEQK_DTYPE_F32, TH_DEVICE_TOL));
        check_untouched(msg, &ho, &hl, rows_in(cases[i].cu_q, c->B, c->Tq, good));
      }
    }
    dev_close(&d);
    th_expect_status(g_ctx, seqk_context_set_device_checks(g_ctx, SEQK_DEVICE_CHECKS_WAIT),
                     SEQK_STATUS_SUCCESS, NULL, "waiting checks again");
  }
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 0x9ac4edu);
  test_cases();
  test_bad_descriptors();
  test_bad_offsets();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
