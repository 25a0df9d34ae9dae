/*
 * cases_attention.c - attention cases: the standard sweep (FlashAttention's: B*S = 16384, hidden
 * 2048, D in {64, 128}, S from 512 to 16k, causal and not), llm.c's shape, grouped-query decode,
 * sliding-window and softcap shapes, packed variable-length prefill against the same batch padded,
 * linear layers (2*M*N*K FLOPs) and nn.MultiheadAttention
 * forward. Attention FLOPs = 4*B*H*Sq*Sk*D, halved for causal with Sq == Sk; with a window,
 * 4*B*H*D times the keys the rows see.
 * AUTO is timed against the UNFUSED (cuBLAS + softmax) path in the same run. On a compute
 * capability 9.0 device, where AUTO runs the Hopper kernel (wgmma, TMA), every f16/bf16 case adds
 * a row "... [vs sm80]": AUTO against the sm_80 tensor-core kernel (forced through the test-only
 * hook seqk__cuda_attention_fused_force) on the same inputs. The sweep's f16 D 128 S 16k rows
 * note FlashAttention-3's published rate there (648 TFLOP/s, causal 616, H100 SXM5): the line
 * to beat.
 *
 * Large shapes are validated on a slice: batch 0, head 0, the last rows of the queries, against
 * the CPU reference over all keys. With causal aligned bottom-right, the last r query rows over
 * all Sk keys see exactly what they see in the full problem, so the slice is a faithful check.
 */
#include "bench_core.h"
#include "cuda_ops.h" /* seqk__cuda_attention_fused_force */

#include <cuda_runtime_api.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SETS 8

typedef struct attention_arg {
  seqk_tensor q[MAX_SETS], k[MAX_SETS], v[MAX_SETS], o;
  seqk_tensor q_cpu, k_cpu, v_cpu, ref, o_slice;
  seqk_attention_params params;
  const float *slopes_cpu; /* params.alibi_slopes' values on the CPU (the reference), or NULL */
  int64_t check_rows;
} attention_arg;

/* The params of the CPU reference: the call's, with the slopes on the CPU. */
static seqk_attention_params reference_params(const attention_arg *a) {
  seqk_attention_params p = a->params;
  p.alibi_slopes = a->slopes_cpu;
  return p;
}

static seqk_status attention_run_algo(bench *b, attention_arg *a, int set,
                                      seqk_attention_algo algo) {
  seqk_attention_params p = a->params;
  p.algo = algo;
  return seqk_attention(b->ctx, &p, &a->q[set], &a->k[set], &a->v[set], &a->o, NULL);
}

static seqk_status attention_run(bench *b, void *p, int set) {
  return attention_run_algo(b, (attention_arg *)p, set, SEQK_ATTENTION_ALGO_AUTO);
}

static seqk_status attention_run_unfused(bench *b, void *p, int set) {
  return attention_run_algo(b, (attention_arg *)p, set, SEQK_ATTENTION_ALGO_UNFUSED);
}

/* The fused path on the sm_80 tensor-core kernel even on a 9.0 device. */
static seqk_status attention_run_sm80(bench *b, void *p, int set) {
  seqk__cuda_attention_fused_force(2, 0);
  const seqk_status st = attention_run_algo(b, (attention_arg *)p, set, SEQK_ATTENTION_ALGO_AUTO);
  seqk__cuda_attention_fused_force(0, 0);
  return st;
}

/* Whether the device (real or emulated) is compute capability 9.0: AUTO then runs the Hopper
   kernel, and the cases add their row against the sm_80 kernel. */
static int device_is_hopper(void) {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return 0;
  return major == 9;
}

/* A [1,1,rows,last] view of t at batch 0, head 0, starting at row `row0`. */
static seqk_tensor head_slice(const seqk_tensor *t, int64_t row0, int64_t rows) {
  seqk_tensor s = *t;
  s.shape[0] = 1;
  s.shape[1] = 1;
  s.shape[2] = rows;
  s.data = (char *)t->data + row0 * t->stride[2] * (int64_t)seqk_dtype_size(t->dtype);
  return s;
}

static seqk_status attention_reference(bench *b, void *p) {
  attention_arg *a = (attention_arg *)p;
  int64_t Sq = a->q_cpu.shape[2];
  seqk_tensor q = head_slice(&a->q_cpu, Sq - a->check_rows, a->check_rows);
  seqk_tensor k = head_slice(&a->k_cpu, 0, a->k_cpu.shape[2]);
  seqk_tensor v = head_slice(&a->v_cpu, 0, a->v_cpu.shape[2]);
  const seqk_attention_params rp = reference_params(a);
  return seqk_attention(b->ctx, &rp, &q, &k, &v, &a->ref, NULL);
}

/* Small shapes: the whole problem. */
static seqk_status attention_reference_full(bench *b, void *p) {
  attention_arg *a = (attention_arg *)p;
  const seqk_attention_params rp = reference_params(a);
  return seqk_attention(b->ctx, &rp, &a->q_cpu, &a->k_cpu, &a->v_cpu, &a->ref, NULL);
}

/* Keys the rows of one head see in all (bottom-right causal, and a left window when left >= 0). */
static double visible_keys(int64_t Sq, int64_t Sk, int causal, int64_t left) {
  double n = 0.0;
  for (int64_t i = 0; i < Sq; ++i) {
    const int64_t a = i + Sk - Sq;
    const int64_t end = causal && a + 1 < Sk ? a + 1 : Sk;
    const int64_t begin = left >= 0 && a - left > 0 ? a - left : 0;
    n += end > begin ? (double)(end - begin) : 0.0;
  }
  return n;
}

/* left >= 0: a sliding window of left + 1 keys (with causal); softcap > 0: capped scores; alibi:
   BLOOM's slopes 2^(-8 (h + 1) / H). FLOPs and decode bytes count the keys the rows see. */
static void attention_mod_case(bench *b, const char *label, seqk_dtype dt, int64_t B, int64_t H,
                               int64_t Hk, int64_t Sq, int64_t Sk, int64_t D, int causal,
                               int64_t left, float softcap, int alibi) {
  char name[200], mods[64] = "";
  if (left >= 0) snprintf(mods, sizeof mods, " window=%lld", (long long)left + 1);
  if (softcap > 0.0f)
    snprintf(mods + strlen(mods), sizeof mods - strlen(mods), " softcap=%g", (double)softcap);
  if (alibi) snprintf(mods + strlen(mods), sizeof mods - strlen(mods), " alibi");
  snprintf(name, sizeof name, "attention%s %s B=%lld H=%lld/%lld Sq=%lld Sk=%lld D=%lld%s%s", label,
           bench_dtype_name(dt), (long long)B, (long long)H, (long long)Hk, (long long)Sq,
           (long long)Sk, (long long)D, causal ? " causal" : "", mods);
  if (!bench_selected(b, name)) return;
  attention_arg a;
  int64_t qs[4] = {B, H, Sq, D}, ks[4] = {B, Hk, Sk, D};
  double esize = (double)seqk_dtype_size(dt);
  double in_bytes = ((double)B * H * Sq * D + 2.0 * B * Hk * Sk * D) * esize;
  int sets = bench_input_sets(b, in_bytes);
  a.q_cpu = bench_cpu_random(b, dt, 4, qs, 10, 1.0);
  a.k_cpu = bench_cpu_random(b, dt, 4, ks, 11, 1.0);
  a.v_cpu = bench_cpu_random(b, dt, 4, ks, 12, 1.0);
  for (int s = 0; s < sets; ++s) {
    a.q[s] = bench_to_device(b, &a.q_cpu);
    a.k[s] = bench_to_device(b, &a.k_cpu);
    a.v[s] = bench_to_device(b, &a.v_cpu);
  }
  a.o = bench_device_empty(b, dt, 4, qs);
  a.params = (seqk_attention_params){0};
  a.params.causal = causal;
  a.params.window = left >= 0;
  a.params.window_left = (int32_t)left;
  a.params.window_right = -1;
  a.params.softcap = softcap;
  a.slopes_cpu = NULL;
  if (alibi) {
    const int64_t hs[1] = {H};
    seqk_tensor s = bench_cpu_empty(b, SEQK_DTYPE_F32, 1, hs);
    float *sv = (float *)s.data;
    for (int64_t h = 0; h < H; ++h) sv[h] = (float)pow(2.0, -8.0 * (double)(h + 1) / (double)H);
    a.slopes_cpu = sv;
    a.params.alibi_slopes = (const float *)bench_to_device(b, &s).data;
  }
  a.check_rows = Sq < 32 ? Sq : 32;
  if (b->small) {
    a.ref = bench_cpu_empty(b, dt, 4, qs);
    a.o_slice = a.o;
  } else {
    int64_t rs[4] = {1, 1, a.check_rows, D};
    a.ref = bench_cpu_empty(b, dt, 4, rs);
    a.o_slice = head_slice(&a.o, Sq - a.check_rows, a.check_rows);
  }
  /* the plain sweep keeps the usual count (causal Sq == Sk: half) */
  double flops = left < 0 ? 4.0 * B * H * Sq * Sk * D * (causal && Sq == Sk ? 0.5 : 1.0)
                          : 4.0 * B * H * D * visible_keys(Sq, Sk, causal, left);
  double kv_bytes =
      2.0 * B * Hk * D * esize * (left < 0 ? (double)Sk : visible_keys(1, Sk, 0, left));
  int decode = Sq == 1;
  /* The line to beat, FlashAttention-3's published forward rate at this shape (FA3 paper, fig. 5:
     H100 SXM5, f16, D 128, B*S = 16k; ../shared/design/PERFORMANCE.md) */
  const int fa3_shape = dt == SEQK_DTYPE_F16 && D == 128 && Sq == 16384 && Sk == 16384 && Hk == H &&
                        left < 0 && softcap == 0.0f && !alibi;
  const char *published = !fa3_shape ? NULL
                          : causal   ? "line to beat: FA3 616 TFLOP/s (H100 SXM5, published)"
                                     : "line to beat: FA3 648 TFLOP/s (H100 SXM5, published)";
  bench_case c = {name,
                  dt,
                  decode ? kv_bytes : flops,
                  decode,
                  sets,
                  attention_run,
                  b->small ? attention_reference_full : attention_reference,
                  &a.o_slice,
                  &a.ref,
                  attention_run_unfused,
                  "unfused",
                  published};
  bench_run_case(b, &c, &a);
  if (dt != SEQK_DTYPE_F32 && device_is_hopper()) {
    char name80[240];
    snprintf(name80, sizeof name80, "%s [vs sm80]", name);
    bench_case c80 = c;
    c80.name = name80;
    c80.comparison = attention_run_sm80;
    c80.comparison_name = "sm80";
    bench_run_case(b, &c80, &a);
  }
  bench_release(b);
}

static void attention_case(bench *b, const char *label, seqk_dtype dt, int64_t B, int64_t H,
                           int64_t Hk, int64_t Sq, int64_t Sk, int64_t D, int causal) {
  attention_mod_case(b, label, dt, B, H, Hk, Sq, Sk, D, causal, -1, 0.0f, 0);
}

/* ---- packed variable lengths ---------------------------------------------------------------- */

typedef struct packed_arg {
  seqk_tensor q, k, v, o, cu;                   /* packed [T, H, D]; offsets [B + 1] */
  seqk_tensor q_pad, k_pad, v_pad, o_pad, lens; /* the padded batch [B, H, S_max, D]; lengths */
  seqk_tensor q_cpu, k_cpu, v_cpu, ref, o_slice;
  seqk_attention_params params;
  int32_t max_len;
  int64_t len0; /* sequence 0's length: the validated rows are its last ones */
} packed_arg;

static seqk_status packed_run(bench *b, void *p, int set) {
  packed_arg *a = (packed_arg *)p;
  (void)set;
  return seqk_attention_packed(b->ctx, &a->params, &a->q, &a->k, &a->v, &a->cu, &a->cu, a->max_len,
                               a->max_len, &a->o, NULL);
}

static seqk_status packed_run_padded(bench *b, void *p, int set) {
  packed_arg *a = (packed_arg *)p;
  seqk_attention_params pp = a->params;
  (void)set;
  pp.seqlens_q = pp.seqlens_k = (const int32_t *)a->lens.data;
  return seqk_attention(b->ctx, &pp, &a->q_pad, &a->k_pad, &a->v_pad, &a->o_pad, NULL);
}

/* Rows [row0, row0 + rows) of head 0 of a packed [T, H, D] tensor as [1, 1, rows, D]. */
static seqk_tensor packed_head0(const seqk_tensor *t, int64_t row0, int64_t rows) {
  seqk_tensor s = *t;
  s.ndim = 4;
  s.shape[0] = s.shape[1] = 1;
  s.shape[2] = rows;
  s.shape[3] = t->shape[2];
  s.stride[0] = s.stride[1] = 0;
  s.stride[2] = t->stride[0];
  s.stride[3] = 1;
  s.data = (char *)t->data + row0 * t->stride[0] * (int64_t)seqk_dtype_size(t->dtype);
  return s;
}

/* The last rows of sequence 0 in head 0 over its keys: what they see in the packed call. */
static seqk_status packed_reference(bench *b, void *p) {
  packed_arg *a = (packed_arg *)p;
  const int64_t rows = a->ref.shape[2];
  seqk_tensor q = packed_head0(&a->q_cpu, a->len0 - rows, rows);
  seqk_tensor k = packed_head0(&a->k_cpu, 0, a->len0), v = packed_head0(&a->v_cpu, 0, a->len0);
  return seqk_attention(b->ctx, &a->params, &q, &k, &v, &a->ref, NULL);
}

/* B causal prefill sequences of the given lengths packed ([T, H, D], seqk_attention_packed)
   against the same batch padded to the longest ([B, H, S_max, D] with lengths): TFLOP/s of the
   keys the rows see. */
static void attention_packed_case(bench *b, seqk_dtype dt, int64_t B, const int32_t *len, int64_t H,
                                  int64_t Hk, int64_t D) {
  char name[200];
  int64_t T = 0, smax = 0;
  double seen = 0.0;
  for (int64_t i = 0; i < B; ++i) {
    T += len[i];
    smax = len[i] > smax ? len[i] : smax;
    seen += visible_keys(len[i], len[i], 1, -1);
  }
  snprintf(name, sizeof name,
           "attention packed %s B=%lld T=%lld S_max=%lld H=%lld/%lld D=%lld causal",
           bench_dtype_name(dt), (long long)B, (long long)T, (long long)smax, (long long)H,
           (long long)Hk, (long long)D);
  if (!bench_selected(b, name)) return;
  packed_arg a;
  memset(&a, 0, sizeof a);
  const int64_t qs[3] = {T, H, D}, ks[3] = {T, Hk, D}, cs[1] = {B + 1}, ls[1] = {B};
  const int64_t pq[4] = {B, H, smax, D}, pk[4] = {B, Hk, smax, D};
  a.q_cpu = bench_cpu_random(b, dt, 3, qs, 20, 1.0);
  a.k_cpu = bench_cpu_random(b, dt, 3, ks, 21, 1.0);
  a.v_cpu = bench_cpu_random(b, dt, 3, ks, 22, 1.0);
  seqk_tensor cu = bench_cpu_empty(b, SEQK_DTYPE_I32, 1, cs);
  seqk_tensor lens = bench_cpu_empty(b, SEQK_DTYPE_I32, 1, ls);
  int32_t *c = (int32_t *)cu.data, *l = (int32_t *)lens.data;
  c[0] = 0;
  for (int64_t i = 0; i < B; ++i) {
    c[i + 1] = c[i] + len[i];
    l[i] = len[i];
  }
  a.q = bench_to_device(b, &a.q_cpu);
  a.k = bench_to_device(b, &a.k_cpu);
  a.v = bench_to_device(b, &a.v_cpu);
  a.cu = bench_to_device(b, &cu);
  a.lens = bench_to_device(b, &lens);
  a.o = bench_device_empty(b, dt, 3, qs);
  seqk_tensor pq_cpu = bench_cpu_random(b, dt, 4, pq, 23, 1.0);
  seqk_tensor pk_cpu = bench_cpu_random(b, dt, 4, pk, 24, 1.0);
  a.q_pad = bench_to_device(b, &pq_cpu);
  a.k_pad = bench_to_device(b, &pk_cpu);
  a.v_pad = bench_to_device(b, &pk_cpu);
  a.o_pad = bench_device_empty(b, dt, 4, pq);
  a.params.causal = 1;
  a.max_len = (int32_t)smax;
  a.len0 = len[0];
  const int64_t rows = len[0] < 32 ? len[0] : 32;
  const int64_t rs[4] = {1, 1, rows, D};
  a.ref = bench_cpu_empty(b, dt, 4, rs);
  a.o_slice = packed_head0(&a.o, a.len0 - rows, rows);
  bench_case bc = {name,
                   dt,
                   4.0 * H * D * seen,
                   0,
                   1,
                   packed_run,
                   packed_reference,
                   &a.o_slice,
                   &a.ref,
                   packed_run_padded,
                   "padded",
                   "validated on sequence 0's last rows, head 0"};
  bench_run_case(b, &bc, &a);
  bench_release(b);
}

/* ---- linear --------------------------------------------------------------------------------- */

typedef struct linear_arg {
  seqk_tensor x[MAX_SETS], w, bias, y, x_cpu, w_cpu, b_cpu, ref;
} linear_arg;

static seqk_status linear_run(bench *b, void *p, int set) {
  linear_arg *a = (linear_arg *)p;
  return seqk_linear(b->ctx, &a->x[set], &a->w, &a->bias, &a->y);
}

static seqk_status linear_reference(bench *b, void *p) {
  linear_arg *a = (linear_arg *)p;
  return seqk_linear(b->ctx, &a->x_cpu, &a->w_cpu, &a->b_cpu, &a->ref);
}

/* y [M, N] = x [M, K] w^T + b: 2*M*N*K FLOPs (the bias is M*N adds, not counted). */
static void linear_case(bench *b, seqk_dtype dt, int64_t M, int64_t K, int64_t N) {
  char name[128];
  snprintf(name, sizeof name, "linear %s M=%lld K=%lld N=%lld", bench_dtype_name(dt), (long long)M,
           (long long)K, (long long)N);
  if (!bench_selected(b, name)) return;
  linear_arg a;
  const int64_t xs[2] = {M, K}, ws[2] = {N, K}, bs[1] = {N}, ys[2] = {M, N};
  const int sets = bench_input_sets(b, (double)M * (double)K * (double)seqk_dtype_size(dt));
  a.x_cpu = bench_cpu_random(b, dt, 2, xs, 30, 1.0);
  a.w_cpu = bench_cpu_random(b, dt, 2, ws, 31, 1.0 / (double)K);
  a.b_cpu = bench_cpu_random(b, dt, 1, bs, 32, 0.1);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.w = bench_to_device(b, &a.w_cpu);
  a.bias = bench_to_device(b, &a.b_cpu);
  a.y = bench_device_empty(b, dt, 2, ys);
  a.ref = bench_cpu_empty(b, dt, 2, ys);
  bench_case c = {name,
                  dt,
                  2.0 * (double)M * (double)N * (double)K,
                  0,
                  sets,
                  linear_run,
                  linear_reference,
                  &a.y,
                  &a.ref,
                  NULL,
                  NULL,
                  NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- nn.MultiheadAttention forward ---------------------------------------------------------- */

typedef struct mha_arg {
  seqk_mha_weights w, w_cpu;
  seqk_tensor x[MAX_SETS], out, x_cpu, ref;
  int32_t heads, causal;
} mha_arg;

static seqk_status mha_run(bench *b, void *p, int set) {
  mha_arg *a = (mha_arg *)p;
  return seqk_mha_forward(b->ctx, &a->w, a->heads, a->causal, &a->x[set], &a->x[set], &a->x[set],
                          &a->out, NULL);
}

static seqk_status mha_reference(bench *b, void *p) {
  mha_arg *a = (mha_arg *)p;
  return seqk_mha_forward(b->ctx, &a->w_cpu, a->heads, a->causal, &a->x_cpu, &a->x_cpu, &a->x_cpu,
                          &a->ref, NULL);
}

static void mha_case(bench *b, seqk_dtype dt, int64_t B, int64_t S, int64_t E, int32_t heads,
                     int causal) {
  char name[160];
  snprintf(name, sizeof name, "mha_forward %s B=%lld S=%lld E=%lld heads=%d%s",
           bench_dtype_name(dt), (long long)B, (long long)S, (long long)E, (int)heads,
           causal ? " causal" : "");
  if (!bench_selected(b, name)) return;
  mha_arg a;
  int64_t xs[3] = {B, S, E}, wi[2] = {3 * E, E}, bi[1] = {3 * E}, wo[2] = {E, E}, bo[1] = {E};
  int sets = bench_input_sets(b, (double)B * S * E * (double)seqk_dtype_size(dt));
  double wscale = 1.0 / (double)E;
  a.heads = heads;
  a.causal = causal;
  a.w_cpu.in_proj_weight = bench_cpu_random(b, dt, 2, wi, 20, wscale * 8);
  a.w_cpu.in_proj_bias = bench_cpu_random(b, dt, 1, bi, 21, 0.1);
  a.w_cpu.out_proj_weight = bench_cpu_random(b, dt, 2, wo, 22, wscale * 8);
  a.w_cpu.out_proj_bias = bench_cpu_random(b, dt, 1, bo, 23, 0.1);
  a.w.in_proj_weight = bench_to_device(b, &a.w_cpu.in_proj_weight);
  a.w.in_proj_bias = bench_to_device(b, &a.w_cpu.in_proj_bias);
  a.w.out_proj_weight = bench_to_device(b, &a.w_cpu.out_proj_weight);
  a.w.out_proj_bias = bench_to_device(b, &a.w_cpu.out_proj_bias);
  a.x_cpu = bench_cpu_random(b, dt, 3, xs, 24, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.out = bench_device_empty(b, dt, 3, xs);
  a.ref = bench_cpu_empty(b, dt, 3, xs);
  double flops = 2.0 * B * S * E * E * 4 + 4.0 * B * S * S * E * (causal ? 0.5 : 1.0);
  bench_case c = {
      name,          dt,     flops,  0,    sets, mha_run,
      mha_reference, &a.out, &a.ref, NULL, NULL, b->small ? NULL : "validated on the whole output"};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

void bench_cases_attention(bench *b) {
  const seqk_dtype half[2] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  if (b->small) {
    attention_case(b, "", SEQK_DTYPE_F16, 2, 4, 2, 33, 47, 64, 1);
    attention_case(b, "", SEQK_DTYPE_BF16, 1, 2, 2, 40, 40, 128, 0);
    attention_case(b, "", SEQK_DTYPE_F32, 2, 3, 1, 17, 9, 32, 1);
    attention_case(b, " decode", SEQK_DTYPE_F16, 1, 8, 2, 1, 300, 128, 0);
    attention_mod_case(b, "", SEQK_DTYPE_F16, 1, 4, 2, 70, 70, 128, 1, 20, 0.0f, 0);
    attention_mod_case(b, "", SEQK_DTYPE_BF16, 1, 2, 1, 33, 50, 64, 1, -1, 30.0f, 0);
    attention_mod_case(b, "", SEQK_DTYPE_F16, 1, 4, 1, 40, 70, 64, 1, -1, 0.0f, 1);
    {
      static const int32_t lens[3] = {40, 5, 17};
      attention_packed_case(b, SEQK_DTYPE_F16, 3, lens, 4, 2, 64);
    }
    mha_case(b, SEQK_DTYPE_F32, 2, 5, 12, 3, 0);
    linear_case(b, SEQK_DTYPE_F16, 33, 40, 24);
    linear_case(b, SEQK_DTYPE_F32, 5, 7, 3);
    return;
  }
  for (int d = 0; d < 2; ++d)
    for (int hd = 64; hd <= 128; hd *= 2)
      for (int64_t S = 512; S <= 16384; S *= 2)
        for (int causal = 0; causal <= 1; ++causal)
          attention_case(b, "", half[d], 16384 / S, 2048 / hd, 2048 / hd, S, S, hd, causal);
  attention_case(b, " llm.c", SEQK_DTYPE_BF16, 8, 12, 12, 1024, 1024, 64, 1);
  attention_case(b, " llm.c", SEQK_DTYPE_F32, 8, 12, 12, 1024, 1024, 64, 1);
  for (int64_t Sk = 1024; Sk <= 131072; Sk *= 4)
    attention_case(b, " decode", SEQK_DTYPE_F16, 1, 32, 8, 1, Sk, 128, 0);
  /* sliding window (Mistral's 4096 keys) and softcap (Gemma 2: D 256, cap 50; its local layers
     add the window): prefill and long-context decode */
  attention_mod_case(b, "", SEQK_DTYPE_F16, 1, 32, 8, 16384, 16384, 128, 1, 4095, 0.0f, 0);
  attention_mod_case(b, "", SEQK_DTYPE_BF16, 2, 16, 8, 8192, 8192, 256, 1, -1, 50.0f, 0);
  attention_mod_case(b, "", SEQK_DTYPE_BF16, 2, 16, 8, 8192, 8192, 256, 1, 4095, 50.0f, 0);
  attention_mod_case(b, " decode", SEQK_DTYPE_F16, 1, 32, 8, 1, 131072, 128, 0, 4095, 0.0f, 0);
  /* ALiBi (BLOOM / MPT: full heads, causal; every tile through the masked body) */
  attention_mod_case(b, "", SEQK_DTYPE_BF16, 2, 32, 32, 8192, 8192, 128, 1, -1, 0.0f, 1);
  {
    /* packed prefill: 16 prompts of 256 to 4000 tokens (about 34k in all) vs padded to the longest */
    int32_t lens[16];
    for (int i = 0; i < 16; ++i) lens[i] = 256 + (int32_t)((i * 2377) % 3745);
    attention_packed_case(b, SEQK_DTYPE_F16, 16, lens, 32, 8, 128);
  }
  mha_case(b, SEQK_DTYPE_F16, 8, 1024, 1024, 16, 1);
  linear_case(b, SEQK_DTYPE_BF16, 8192, 4096, 4096); /* a prefill projection */
  linear_case(b, SEQK_DTYPE_F16, 16, 4096, 12288);   /* a decode-step QKV projection */
}
