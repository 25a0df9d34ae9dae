/*
 * test_attention_nonfinite.c - seqk.h's rules for non-finite values in attention, on every path
 * that can serve a call: the CPU reference, the unfused cuBLAS path, and the fused kernels
 * (tensor-core and fp32 SIMT, each without and with forced key splits).
 *
 * Per row, every path must agree on the row's class:
 *   - a NaN in q, or in the k of a key the row sees: o and lse NaN (split decode included: a
 *     split whose scores hold NaN must not pass for an empty part);
 *   - a NaN or inf in the v of a key the row sees: that column of o only;
 *   - a key the row does not see (causal, lengths): nothing, whatever its k and v hold;
 *   - no visible key: o = 0 and lse = +inf;
 *   - fp32 overflow of q.k (the CUDA paths compute scores in fp32): to +inf makes the row NaN, and
 *     all visible scores -inf makes it NaN too, never "empty" (the CPU reference, in double, does
 *     not overflow and stays finite: only the CUDA paths are compared there);
 *   - the other rows finite.
 * Also: the fused planner refuses head counts past 32-bit indexing (H = Hk * group > 2^30), and
 * without a CUDA device every algo answers NO_DEVICE (this part runs in the plain build).
 */
#include "harness.h"

#ifdef SEQK_HAVE_CUDA
#include "cuda_ops.h"
#include "launchers.h"
#endif

#include <math.h>
#include <string.h>

#if !defined(SEQK_HAVE_CUDA)
#pragma weak seqk__cuda_attention_fused_force
#define HOOKS_LINKED (seqk__cuda_attention_fused_force != NULL)
void seqk__cuda_attention_fused_force(int kernel, int splits);
#else
#define HOOKS_LINKED 1
#endif

enum { B = 1, H = 2, HK = 1, D = 64, DV = 64 };

enum row_class { ROW_FINITE, ROW_NAN, ROW_EMPTY, ROW_ONE_COLUMN };
static const char *const class_names[4] = {"finite", "NaN", "empty", "finite but one column"};

/* The class of row r of o [B,H,Sq,Dv] and lse [B,H,Sq] (host copies): every element of the row
   must agree, else -1. ROW_ONE_COLUMN: a non-finite value in one column of v reaches only that
   column of o; lse and the other columns stay finite. */
static int row_class(const seqk_tensor *o, const seqk_tensor *lse, int64_t r) {
  const double l = th_get(lse, r);
  int nan = 0, zero = 0, finite = 0;
  for (int64_t e = 0; e < DV; ++e) {
    const double x = th_get(o, r * DV + e);
    nan += isnan(x);
    zero += x == 0.0;
    finite += isfinite(x);
  }
  if (nan == DV && isnan(l)) return ROW_NAN;
  if (zero == DV && l == INFINITY) return ROW_EMPTY;
  if (finite == DV && isfinite(l)) return ROW_FINITE;
  if (finite == DV - 1 && isfinite(l)) return ROW_ONE_COLUMN;
  return -1;
}

typedef struct path_result {
  seqk_tensor o, lse; /* host copies */
} path_result;

/* seqk_attention on the CPU tensors given. */
static seqk_status run_cpu(seqk_context_t ctx, const seqk_attention_params *p, const seqk_tensor *q,
                           const seqk_tensor *k, const seqk_tensor *v, path_result *r) {
  r->o = th_tensor_new(q->dtype, 4, (const int64_t[]){B, H, q->shape[2], DV});
  r->lse = th_tensor_new(SEQK_DTYPE_F32, 3, (const int64_t[]){B, H, q->shape[2]});
  th_poison(&r->o);
  th_poison(&r->lse);
  return seqk_attention(ctx, p, q, k, v, &r->o, &r->lse);
}

/* The same on CUDA copies; force_kernel/splits as seqk__cuda_attention_fused_force. */
static seqk_status run_cuda(seqk_context_t ctx, const seqk_attention_params *p,
                            const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                            int force_kernel, int force_splits, path_result *r) {
  seqk_tensor dq, dk, dv, d_o, dl;
  seqk_status st = SEQK_STATUS_SUCCESS;
  const seqk_tensor *hs[3] = {q, k, v};
  seqk_tensor *ds[3] = {&dq, &dk, &dv};
  for (int i = 0; i < 3 && st == SEQK_STATUS_SUCCESS; ++i) {
    st = seqk_tensor_alloc(ctx, ds[i], hs[i]->dtype, SEQK_DEVICE_CUDA, 4, hs[i]->shape);
    if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, ds[i], hs[i]);
  }
  r->o = th_tensor_new(q->dtype, 4, (const int64_t[]){B, H, q->shape[2], DV});
  r->lse = th_tensor_new(SEQK_DTYPE_F32, 3, (const int64_t[]){B, H, q->shape[2]});
  th_poison(&r->o);
  th_poison(&r->lse);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_tensor_alloc(ctx, &d_o, q->dtype, SEQK_DEVICE_CUDA, 4, r->o.shape);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &d_o, &r->o);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_tensor_alloc(ctx, &dl, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, r->lse.shape);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &dl, &r->lse);
  if (st != SEQK_STATUS_SUCCESS) return st;
  /* Lengths go to the device too (an op on CUDA tensors reads them there). */
  seqk_attention_params pd = *p;
  seqk_tensor lens[2];
  const int32_t *host_lens[2] = {p->seqlens_q, p->seqlens_k};
  const int64_t nb[1] = {B};
  memset(lens, 0, sizeof lens);
  for (int l = 0; l < 2 && st == SEQK_STATUS_SUCCESS; ++l) {
    if (!host_lens[l]) continue;
    seqk_tensor h = seqk_tensor_view((void *)host_lens[l], SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, nb);
    st = seqk_tensor_alloc(ctx, &lens[l], SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, nb);
    if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &lens[l], &h);
  }
  pd.seqlens_q = (const int32_t *)lens[0].data;
  pd.seqlens_k = (const int32_t *)lens[1].data;
  if (st != SEQK_STATUS_SUCCESS) return st;
  seqk__cuda_attention_fused_force(force_kernel, force_splits);
  st = seqk_attention(ctx, &pd, &dq, &dk, &dv, &d_o, &dl);
  seqk__cuda_attention_fused_force(0, 0);
  seqk_tensor_free(ctx, &lens[0]);
  seqk_tensor_free(ctx, &lens[1]);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &r->o, &d_o);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &r->lse, &dl);
  if (st == SEQK_STATUS_SUCCESS) {
    th_digest_span(r->o.data, (size_t)th_numel(&r->o) * seqk_dtype_size(r->o.dtype));
    th_digest_span(r->lse.data, (size_t)th_numel(&r->lse) * 4);
  }
  seqk_tensor *all[5] = {&dq, &dk, &dv, &d_o, &dl};
  for (int i = 0; i < 5; ++i) seqk_tensor_free(ctx, all[i]);
  return st;
}

/* Runs every path and checks each row's class against want[] (the CPU against cpu_want[], which
   differs only where fp32 overflows and double does not). */
static void check_paths(seqk_context_t ctx, const char *name, const seqk_attention_params *params,
                        const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                        const int *want, const int *cpu_want) {
  const int64_t rows = (int64_t)B * H * q->shape[2];
  char what[200];
  path_result r;
  th_expect_status(ctx, run_cpu(ctx, params, q, k, v, &r), SEQK_STATUS_SUCCESS, NULL, name);
  for (int64_t i = 0; i < rows; ++i) {
    const int got = row_class(&r.o, &r.lse, i);
    TH_CHECK(got == cpu_want[i], "%s: CPU row %lld is %s, expected %s", name, (long long)i,
             got < 0 ? "mixed" : class_names[got], class_names[cpu_want[i]]);
  }
  if (seqk_cuda_device_count() == 0 || !HOOKS_LINKED) return;
  static const struct {
    seqk_attention_algo algo;
    int kernel, splits;
    const char *label;
  } paths[] = {
      {SEQK_ATTENTION_ALGO_UNFUSED, 0, 0, "unfused"},
      {SEQK_ATTENTION_ALGO_FUSED, 0, 1, "fused"},
      {SEQK_ATTENTION_ALGO_FUSED, 0, 3, "fused, 3 key splits"},
      {SEQK_ATTENTION_ALGO_FUSED, 1, 1, "fused fp32 SIMT"},
      {SEQK_ATTENTION_ALGO_FUSED, 1, 3, "fused fp32 SIMT, 3 key splits"},
  };
  for (size_t p = 0; p < sizeof paths / sizeof paths[0]; ++p) {
    seqk_attention_params pp = *params;
    pp.algo = paths[p].algo;
    snprintf(what, sizeof what, "%s [%s]", name, paths[p].label);
    if (!th_expect_status(ctx, run_cuda(ctx, &pp, q, k, v, paths[p].kernel, paths[p].splits, &r),
                          SEQK_STATUS_SUCCESS, NULL, what))
      continue;
    for (int64_t i = 0; i < rows; ++i) {
      const int got = row_class(&r.o, &r.lse, i);
      TH_CHECK(got == want[i], "%s: row %lld is %s, expected %s", what, (long long)i,
               got < 0 ? "mixed" : class_names[got], class_names[want[i]]);
    }
  }
}

static seqk_tensor make(seqk_dtype dt, int64_t heads, int64_t S, int64_t d, th_rng *rng) {
  seqk_tensor t = th_tensor_new(dt, 4, (const int64_t[]){B, heads, S, d});
  th_fill_uniform(&t, rng, -1.0, 1.0);
  return t;
}

/* Element (head, s, c) of a [1, heads, S, d] tensor, row-major. */
static void put(seqk_tensor *t, int64_t head, int64_t s, int64_t c, double value) {
  th_set(t, (head * t->shape[2] + s) * t->shape[3] + c, value);
}

static void test_nan(seqk_context_t ctx, th_rng *rng) {
  const int64_t Sq = 3, Sk = 130; /* several key tiles: the forced splits all have keys */
  const seqk_attention_params params = {0.0f, 0,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                        0,    0.0f, NULL};
  for (int t = 0; t < 2; ++t) {
    const seqk_dtype dt = t ? SEQK_DTYPE_BF16 : SEQK_DTYPE_F16;
    char name[96];
    /* A NaN in one key (shared by both query heads): every row sees it. */
    seqk_tensor q = make(dt, H, Sq, D, rng), k = make(dt, HK, Sk, D, rng),
                v = make(dt, HK, Sk, DV, rng);
    put(&k, 0, 100, 7, NAN);
    const int all_nan[6] = {ROW_NAN, ROW_NAN, ROW_NAN, ROW_NAN, ROW_NAN, ROW_NAN};
    snprintf(name, sizeof name, "NaN in key 100 (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &params, &q, &k, &v, all_nan, all_nan);
    /* A NaN in one query row: that row alone. */
    q = make(dt, H, Sq, D, rng);
    k = make(dt, HK, Sk, D, rng);
    put(&q, 1, 0, 3, NAN);
    const int one_nan[6] = {ROW_FINITE, ROW_FINITE, ROW_FINITE, ROW_NAN, ROW_FINITE, ROW_FINITE};
    snprintf(name, sizeof name, "NaN in q[h=1, i=0] (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &params, &q, &k, &v, one_nan, one_nan);
    /* Causal with Sq > Sk: the first rows see no key and are empty; a NaN in key 0, which the
       other rows see, makes them NaN. */
    const int64_t sq2 = 4, sk2 = 2;
    const seqk_attention_params causal = {0.0f, 1,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                          0,    0.0f, NULL};
    q = make(dt, H, sq2, D, rng);
    k = make(dt, HK, sk2, D, rng);
    v = make(dt, HK, sk2, DV, rng);
    put(&k, 0, 0, 0, NAN);
    const int causal_rows[8] = {ROW_EMPTY, ROW_EMPTY, ROW_NAN, ROW_NAN,
                                ROW_EMPTY, ROW_EMPTY, ROW_NAN, ROW_NAN};
    snprintf(name, sizeof name, "causal Sq > Sk, NaN in key 0 (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &causal, &q, &k, &v, causal_rows, causal_rows);
  }
}

/* Keys a row does not see contribute nothing (seqk.h): a NaN or inf in the v of a key masked by
   causality, or of any key for a padding row, must not reach the row, on every path, although the
   fused kernels load and multiply whole key tiles and the unfused one multiplies P (0 there) by
   all of v. */
static void test_masked_keys(seqk_context_t ctx, th_rng *rng) {
  const int64_t S = 70; /* more than one key tile: full tiles and a diagonal one */
  const seqk_attention_params causal = {0.0f, 1,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                        0,    0.0f, NULL};
  int want[2 * 70];
  static const seqk_dtype dtypes[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};
  for (int t = 0; t < 3; ++t) {
    const seqk_dtype dt = dtypes[t];
    char name[96];
    seqk_tensor q = make(dt, H, S, D, rng), k = make(dt, HK, S, D, rng),
                v = make(dt, HK, S, DV, rng);
    /* NaN in v of key 50: rows that see it get NaN in that column only; the rows before it
       must not (a masked key's probability is 0, and 0 * NaN is NaN). */
    put(&v, 0, 50, 3, NAN);
    for (int h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) want[h * S + i] = i < 50 ? ROW_FINITE : ROW_ONE_COLUMN;
    snprintf(name, sizeof name, "causal, NaN in v of key 50 (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &causal, &q, &k, &v, want, want);
    /* +inf in v: the same rows get inf in that column (IEEE), the others nothing. */
    put(&v, 0, 50, 3, INFINITY);
    snprintf(name, sizeof name, "causal, inf in v of key 50 (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &causal, &q, &k, &v, want, want);
    /* NaN in k of key 50: rows that see it are NaN, the rows before it stay finite. */
    v = make(dt, HK, S, DV, rng);
    put(&k, 0, 50, 3, NAN);
    for (int h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) want[h * S + i] = i < 50 ? ROW_FINITE : ROW_NAN;
    snprintf(name, sizeof name, "causal, NaN in k of key 50 (%s)", th_dtype_name(dt));
    check_paths(ctx, name, &causal, &q, &k, &v, want, want);
  }
  /* Padding query rows (seqlens_q) see no key: o = 0, lse = +inf, whatever v holds. */
  {
    const int64_t Sq = 5, Sk = 40;
    static const int32_t lq[1] = {3};
    const seqk_attention_params lens = {0.0f, 0, SEQK_ATTENTION_ALGO_AUTO, lq, NULL, 0, 0, 0, 0.0f, NULL};
    seqk_tensor q = make(SEQK_DTYPE_F16, H, Sq, D, rng), k = make(SEQK_DTYPE_F16, HK, Sk, D, rng);
    seqk_tensor v = make(SEQK_DTYPE_F16, HK, Sk, DV, rng);
    put(&v, 0, 7, 0, NAN);
    const int rows[10] = {ROW_ONE_COLUMN, ROW_ONE_COLUMN, ROW_ONE_COLUMN, ROW_EMPTY, ROW_EMPTY,
                          ROW_ONE_COLUMN, ROW_ONE_COLUMN, ROW_ONE_COLUMN, ROW_EMPTY, ROW_EMPTY};
    check_paths(ctx, "padding rows with NaN in v", &lens, &q, &k, &v, rows, rows);
  }
}

/* fp32 overflow of q.k: q = 1e20 and k = +-1e18 on every element give |q.k| = 6.4e39 > FLT_MAX.
   The scale 1e-10 brings the double result (the CPU's) back into float range, so the CPU row is
   finite in o and lse; the fp32 product overflows before it is scaled. */
static void test_overflow(seqk_context_t ctx, th_rng *rng) {
  const int64_t Sq = 2, Sk = 130;
  const seqk_attention_params params = {1e-10f, 0,   SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0,
                                        0,      0.0f, NULL};
  for (int sign = 0; sign < 2; ++sign) {
    seqk_tensor q = make(SEQK_DTYPE_F32, H, Sq, D, rng), k = make(SEQK_DTYPE_F32, HK, Sk, D, rng);
    seqk_tensor v = make(SEQK_DTYPE_F32, HK, Sk, DV, rng);
    for (int64_t c = 0; c < D; ++c) {
      put(&q, 0, 1, c, 1e20);
      for (int64_t j = 0; j < Sk; ++j) put(&k, 0, j, c, sign ? -1e18 : 1e18);
    }
    /* Row (h=0, i=1) overflows (to +inf, or to -inf on every key); the others' scores stay
       finite (|q| <= 1: |q.k| <= 6.4e19). The CPU, in double, keeps every row finite. */
    const int want[4] = {ROW_FINITE, ROW_NAN, ROW_FINITE, ROW_FINITE};
    const int cpu[4] = {ROW_FINITE, ROW_FINITE, ROW_FINITE, ROW_FINITE};
    check_paths(ctx, sign ? "fp32 overflow to -inf on every key" : "fp32 overflow to +inf", &params,
                &q, &k, &v, want, cpu);
  }
}

/* Head counts past the kernels' 32-bit head index (finding: H = Hk * group was never bounded). */
static void test_head_count_bound(void) {
#ifdef SEQK_HAVE_CUDA
  seqk_k_flash_args a;
  seqk_k_flash_plan plan;
  const seqk_k_flash_force none = {0, 0};
  memset(&a, 0, sizeof a);
  static char dummy[64];
  a.q = a.k = a.v = a.o = dummy;
  a.dtype = SEQK_DTYPE_F16;
  a.B = 1;
  a.Hk = 4;
  a.H = 4 * 3 * ((int64_t)1 << 28); /* 3.2e9 query heads over stride-0 q/k/v */
  a.Sq = 1;
  a.Sk = 16;
  a.D = a.Dv = 8;
  a.scale = 1.0;
  TH_CHECK(seqk_k_flash_plan_call(&a, 132, 9, none, &plan) == SEQK_K_FLASH_ROWS,
           "the fused planner refuses H = 3*2^30 (32-bit head index)");
  a.H = 4 * 1024;
  TH_CHECK(seqk_k_flash_plan_call(&a, 132, 9, none, &plan) == SEQK_K_FLASH_OK,
           "the fused planner takes H = 4096");
#endif
}

/* Without a usable device every algo says so (the fused planner used to answer DEVICE_ERROR). */
static void test_no_device(seqk_context_t ctx) {
  if (seqk_cuda_device_count() != 0) return;
  static char memory[4096];
  const int64_t s4[4] = {1, 2, 3, 8}, s3[3] = {1, 2, 3};
  seqk_tensor q = seqk_tensor_view(memory, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, s4);
  seqk_tensor k = seqk_tensor_view(memory + 512, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, s4);
  seqk_tensor v = seqk_tensor_view(memory + 1024, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, s4);
  seqk_tensor o = seqk_tensor_view(memory + 1536, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, s4);
  seqk_tensor lse = seqk_tensor_view(memory + 2048, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, s3);
  static const seqk_attention_algo algos[3] = {SEQK_ATTENTION_ALGO_AUTO, SEQK_ATTENTION_ALGO_FUSED,
                                               SEQK_ATTENTION_ALGO_UNFUSED};
  for (int a = 0; a < 3; ++a) {
    const seqk_attention_params p = {0.0f, 0, algos[a], NULL, NULL, 0, 0, 0, 0.0f, NULL};
    th_expect_status(ctx, seqk_attention(ctx, &p, &q, &k, &v, &o, &lse), SEQK_STATUS_NO_DEVICE,
                     NULL, "attention on CUDA tensors without a device");
  }
}

int main(void) {
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 11);
  test_no_device(ctx);
  test_head_count_bound();
  test_nan(ctx, &rng);
  test_overflow(ctx, &rng);
  test_masked_keys(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
