/*
 * cases_blocks.c - the transformer blocks: layer/RMS norms (plain and with the fused residual),
 * activations (GELU, SwiGLU) and rotary embeddings, at the shapes of GPT-2, LLaMA-style decoders
 * and per-head q/k norms: memory-bound, GB/s counting each input read once and each output
 * written once (weights included), against the device copy bandwidth of the same run. And the
 * linear with a fused epilogue (GPT-2's MLP): TFLOP/s, against the GEMM and the activation as
 * separate calls. And nn.TransformerEncoderLayer (BERT-base, torch's defaults): TFLOP/s, against
 * the same layer as separate public calls.
 */
#include "bench_core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SETS 8

/* ---- norms -------------------------------------------------------------------------------------- */

typedef struct norm_arg {
  seqk_tensor x[MAX_SETS], r, w, b, y, ro;
  seqk_tensor x_cpu, r_cpu, w_cpu, b_cpu, ref, ro_ref;
  int rms, residual;
} norm_arg;

static seqk_status norm_call(bench *b, const norm_arg *a, const seqk_tensor *x,
                             const seqk_tensor *r, const seqk_tensor *w, const seqk_tensor *bias,
                             seqk_tensor *y, seqk_tensor *ro) {
  return a->rms ? seqk_rms_norm(b->ctx, x, a->residual ? r : NULL, w, 1e-6f, y,
                                a->residual ? ro : NULL)
                : seqk_layer_norm(b->ctx, x, a->residual ? r : NULL, w, bias, 1e-5f, y,
                                  a->residual ? ro : NULL);
}

static seqk_status norm_run(bench *b, void *p, int set) {
  norm_arg *a = (norm_arg *)p;
  return norm_call(b, a, &a->x[set], &a->r, &a->w, &a->b, &a->y, &a->ro);
}

static seqk_status norm_reference(bench *b, void *p) {
  norm_arg *a = (norm_arg *)p;
  return norm_call(b, a, &a->x_cpu, &a->r_cpu, &a->w_cpu, &a->b_cpu, &a->ref, &a->ro_ref);
}

static void norm_case(bench *b, seqk_dtype dt, int rms, int residual, int64_t rows, int64_t C,
                      const char *what) {
  char name[160];
  snprintf(name, sizeof name, "%s %s [%lld,%lld]%s%s%s", rms ? "rms_norm" : "layer_norm",
           bench_dtype_name(dt), (long long)rows, (long long)C, residual ? " +residual" : "",
           what ? " " : "", what ? what : "");
  if (!bench_selected(b, name)) return;
  norm_arg a;
  a.rms = rms;
  a.residual = residual;
  const int64_t shape[2] = {rows, C}, wshape[1] = {C};
  const double es = (double)seqk_dtype_size(dt), elems = (double)rows * (double)C;
  /* x and y, plus residual and residual_out; weight (and bias) once. */
  const double bytes = (residual ? 4.0 : 2.0) * elems * es + (rms ? 1.0 : 2.0) * (double)C * es;
  const int sets = bench_input_sets(b, elems * es);
  a.x_cpu = bench_cpu_random(b, dt, 2, shape, 11, 2.0);
  a.r_cpu = bench_cpu_random(b, dt, 2, shape, 12, 1.0);
  a.w_cpu = bench_cpu_random(b, dt, 1, wshape, 13, 1.0);
  a.b_cpu = bench_cpu_random(b, dt, 1, wshape, 14, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.r = bench_to_device(b, &a.r_cpu);
  a.w = bench_to_device(b, &a.w_cpu);
  a.b = bench_to_device(b, &a.b_cpu);
  a.y = bench_device_empty(b, dt, 2, shape);
  a.ro = bench_device_empty(b, dt, 2, shape);
  a.ref = bench_cpu_empty(b, dt, 2, shape);
  a.ro_ref = bench_cpu_empty(b, dt, 2, shape);
  bench_case c = {name,           dt,   bytes,  1,    sets, norm_run,
                  norm_reference, &a.y, &a.ref, NULL, NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- activations -------------------------------------------------------------------------------- */

typedef struct act_arg {
  seqk_tensor x[MAX_SETS], up, y, x_cpu, up_cpu, ref;
  seqk_activation act;
  int gated;
} act_arg;

static seqk_status act_run(bench *b, void *p, int set) {
  act_arg *a = (act_arg *)p;
  return a->gated ? seqk_gated_activate(b->ctx, a->act, &a->x[set], &a->up, &a->y)
                  : seqk_activate(b->ctx, a->act, &a->x[set], &a->y);
}

static seqk_status act_reference(bench *b, void *p) {
  act_arg *a = (act_arg *)p;
  return a->gated ? seqk_gated_activate(b->ctx, a->act, &a->x_cpu, &a->up_cpu, &a->ref)
                  : seqk_activate(b->ctx, a->act, &a->x_cpu, &a->ref);
}

static void act_case(bench *b, seqk_dtype dt, seqk_activation act, int gated, int64_t rows,
                     int64_t F, const char *what) {
  static const char *const names[] = {"none", "relu", "gelu", "gelu_tanh", "silu"};
  char name[160];
  snprintf(name, sizeof name, "%s %s %s [%lld,%lld]%s%s", gated ? "gated_activate" : "activate",
           names[act], bench_dtype_name(dt), (long long)rows, (long long)F, what ? " " : "",
           what ? what : "");
  if (!bench_selected(b, name)) return;
  act_arg a;
  a.act = act;
  a.gated = gated;
  const int64_t shape[2] = {rows, F};
  const double es = (double)seqk_dtype_size(dt), elems = (double)rows * (double)F;
  const double bytes = (gated ? 3.0 : 2.0) * elems * es;
  const int sets = bench_input_sets(b, elems * es);
  a.x_cpu = bench_cpu_random(b, dt, 2, shape, 21, 3.0);
  a.up_cpu = bench_cpu_random(b, dt, 2, shape, 22, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.up = bench_to_device(b, &a.up_cpu);
  a.y = bench_device_empty(b, dt, 2, shape);
  a.ref = bench_cpu_empty(b, dt, 2, shape);
  bench_case c = {name, dt, bytes, 1, sets, act_run, act_reference, &a.y, &a.ref, NULL, NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- linear with a fused epilogue --------------------------------------------------------------- */

typedef struct linear_arg {
  seqk_tensor x[MAX_SETS], w, b, r, y, x_cpu, w_cpu, b_cpu, r_cpu, ref;
  seqk_activation act;
  int residual;
} linear_arg;

static seqk_status linear_run(bench *b, void *p, int set) {
  linear_arg *a = (linear_arg *)p;
  return seqk_linear_ex(b->ctx, &a->x[set], &a->w, &a->b, a->act, a->residual ? &a->r : NULL,
                        &a->y);
}

static seqk_status linear_reference(bench *b, void *p) {
  linear_arg *a = (linear_arg *)p;
  return seqk_linear_ex(b->ctx, &a->x_cpu, &a->w_cpu, &a->b_cpu, a->act,
                        a->residual ? &a->r_cpu : NULL, &a->ref);
}

/* The activation as a separate call after the GEMM (what seqk_linear's users wrote before). */
static seqk_status linear_then_activate(bench *b, void *p, int set) {
  linear_arg *a = (linear_arg *)p;
  seqk_status st = seqk_linear(b->ctx, &a->x[set], &a->w, &a->b, &a->y);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_activate(b->ctx, a->act, &a->y, &a->y);
  return st;
}

/* x [rows, In] -> y [rows, Out]; TFLOP/s of the GEMM. With an activation and no residual, against
   seqk_linear + seqk_activate. */
static void linear_ex_case(bench *b, seqk_dtype dt, seqk_activation act, int residual, int64_t rows,
                           int64_t in, int64_t out, const char *what) {
  static const char *const names[] = {"none", "relu", "gelu", "gelu_tanh", "silu"};
  char name[160];
  snprintf(name, sizeof name, "linear_ex %s %s%s M=%lld K=%lld N=%lld%s%s", names[act],
           bench_dtype_name(dt), residual ? " +residual" : "", (long long)rows, (long long)in,
           (long long)out, what ? " " : "", what ? what : "");
  if (!bench_selected(b, name)) return;
  linear_arg a;
  a.act = act;
  a.residual = residual;
  const int64_t xs[2] = {rows, in}, ws[2] = {out, in}, bs[1] = {out}, ys[2] = {rows, out};
  const double flops = 2.0 * (double)rows * (double)in * (double)out;
  const int sets = bench_input_sets(b, (double)rows * (double)in * (double)seqk_dtype_size(dt));
  a.x_cpu = bench_cpu_random(b, dt, 2, xs, 41, 1.0);
  a.w_cpu = bench_cpu_random(b, dt, 2, ws, 42, 0.05);
  a.b_cpu = bench_cpu_random(b, dt, 1, bs, 43, 1.0);
  a.r_cpu = bench_cpu_random(b, dt, 2, ys, 44, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.w = bench_to_device(b, &a.w_cpu);
  a.b = bench_to_device(b, &a.b_cpu);
  a.r = bench_to_device(b, &a.r_cpu);
  a.y = bench_device_empty(b, dt, 2, ys);
  a.ref = bench_cpu_empty(b, dt, 2, ys);
  const int compare = !residual && act != SEQK_ACTIVATION_NONE;
  bench_case c = {name,
                  dt,
                  flops,
                  0,
                  sets,
                  linear_run,
                  linear_reference,
                  &a.y,
                  &a.ref,
                  compare ? linear_then_activate : NULL,
                  compare ? "linear + activate" : NULL,
                  NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- rotary --------------------------------------------------------------------------------------- */

typedef struct rotary_arg {
  seqk_tensor q, k, pos, q_cpu, k_cpu, pos_cpu;
  seqk_rotary_params p;
} rotary_arg;

/* In place: the first (checked) call rotates q and k once, as the reference does; the timed calls
   keep rotating them, which costs the same. */
static seqk_status rotary_run(bench *b, void *p, int set) {
  rotary_arg *a = (rotary_arg *)p;
  (void)set;
  return seqk_rotary(b->ctx, &a->p, &a->pos, &a->q, &a->k);
}

static seqk_status rotary_reference(bench *b, void *p) {
  rotary_arg *a = (rotary_arg *)p;
  return seqk_rotary(b->ctx, &a->p, &a->pos_cpu, &a->q_cpu, &a->k_cpu);
}

static void rotary_case(bench *b, seqk_dtype dt, int64_t B, int64_t S, int64_t H, int64_t Hk,
                        int64_t D, const char *what) {
  char name[160];
  snprintf(name, sizeof name, "rotary %s B=%lld S=%lld H=%lld Hk=%lld D=%lld%s%s",
           bench_dtype_name(dt), (long long)B, (long long)S, (long long)H, (long long)Hk,
           (long long)D, what ? " " : "", what ? what : "");
  if (!bench_selected(b, name)) return;
  rotary_arg a;
  a.p.layout = SEQK_ROTARY_NEOX;
  a.p.rotary_dim = 0;
  a.p.theta = 500000.0f;
  const int64_t qs[4] = {B, S, H, D}, ks[4] = {B, S, Hk, D}, ps[2] = {B, S};
  const double es = (double)seqk_dtype_size(dt);
  const double bytes = 2.0 * (double)(B * S) * (double)((H + Hk) * D) * es + 4.0 * (double)(B * S);
  a.q_cpu = bench_cpu_random(b, dt, 4, qs, 31, 1.0);
  a.k_cpu = bench_cpu_random(b, dt, 4, ks, 32, 1.0);
  /* Positions: each sequence continues from its own offset (a decode batch, or a prefill chunk
     after a cached prefix). */
  a.pos_cpu = bench_cpu_empty(b, SEQK_DTYPE_I32, 2, ps);
  int32_t *pv = (int32_t *)a.pos_cpu.data;
  for (int64_t i = 0; i < B * S; ++i) pv[i] = (int32_t)(1000 * (i / S) + i % S + 17);
  a.q = bench_to_device(b, &a.q_cpu);
  a.k = bench_to_device(b, &a.k_cpu);
  a.pos = bench_to_device(b, &a.pos_cpu);
  bench_case c = {name,
                  dt,
                  bytes,
                  1,
                  1,
                  rotary_run,
                  rotary_reference,
                  &a.q,
                  &a.q_cpu,
                  NULL,
                  NULL,
                  "q checked (k rotated alike)"};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- the encoder layer ------------------------------------------------------------------------- */

typedef struct encoder_arg {
  seqk_tensor x[MAX_SETS], y, a, h, f, g, x_cpu, ref;
  seqk_encoder_layer_weights w, w_cpu;
  seqk_encoder_layer_desc d;
} encoder_arg;

static seqk_status encoder_run(bench *b, void *p, int set) {
  encoder_arg *a = (encoder_arg *)p;
  return seqk_transformer_encoder_layer_forward(b->ctx, &a->d, &a->w, &a->x[set], &a->y);
}

static seqk_status encoder_reference(bench *b, void *p) {
  encoder_arg *a = (encoder_arg *)p;
  return seqk_transformer_encoder_layer_forward(b->ctx, &a->d, &a->w_cpu, &a->x_cpu, &a->ref);
}

/* The post-norm layer as separate public calls, each with its own buffers and arena: MHA, the
   residual add fused into norm1, linear1 + activation, linear2 + residual, norm2. */
static seqk_status encoder_composed(bench *b, void *p, int set) {
  encoder_arg *a = (encoder_arg *)p;
  const seqk_encoder_layer_weights *w = &a->w;
  seqk_mha_options o;
  memset(&o, 0, sizeof o);
  o.num_heads = a->d.nhead;
  o.batch_first = 1;
  o.average_attn_weights = 1;
  const float eps = a->d.layer_norm_eps;
  seqk_status st = seqk_mha_forward_ex(b->ctx, &w->self_attn, &o, &a->x[set], &a->x[set],
                                       &a->x[set], &a->a, NULL);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_layer_norm(b->ctx, &a->x[set], &a->a, &w->norm1_weight, &w->norm1_bias, eps, &a->h,
                         NULL);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_linear_ex(b->ctx, &a->h, &w->linear1_weight, &w->linear1_bias, a->d.activation, NULL,
                        &a->f);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_linear_ex(b->ctx, &a->f, &w->linear2_weight, &w->linear2_bias, SEQK_ACTIVATION_NONE,
                        &a->h, &a->g);
  if (st == SEQK_STATUS_SUCCESS)
    st = seqk_layer_norm(b->ctx, &a->g, NULL, &w->norm2_weight, &w->norm2_bias, eps, &a->y, NULL);
  return st;
}

/* nn.TransformerEncoderLayer(E, H, F) on [B, S, E] (batch_first, post-norm, relu); TFLOP/s of
   its GEMMs and attention. */
static void encoder_case(bench *b, seqk_dtype dt, int64_t B, int64_t S, int64_t E, int64_t H,
                         int64_t F, const char *what) {
  char name[160];
  snprintf(name, sizeof name, "encoder_layer %s B=%lld S=%lld E=%lld H=%lld F=%lld%s%s",
           bench_dtype_name(dt), (long long)B, (long long)S, (long long)E, (long long)H,
           (long long)F, what ? " " : "", what ? what : "");
  if (!bench_selected(b, name)) return;
  encoder_arg a;
  memset(&a, 0, sizeof a);
  const int64_t xs[3] = {B, S, E}, fs[3] = {B, S, F}, wi[2] = {3 * E, E}, bi[1] = {3 * E};
  const int64_t wo[2] = {E, E}, e1[1] = {E}, w1[2] = {F, E}, f1[1] = {F}, w2[2] = {E, F};
  const double ws = 1.0 / sqrt((double)E), wf = 1.0 / sqrt((double)F);
  seqk_encoder_layer_weights *c = &a.w_cpu;
  c->self_attn.in_proj_weight = bench_cpu_random(b, dt, 2, wi, 51, ws);
  c->self_attn.in_proj_bias = bench_cpu_random(b, dt, 1, bi, 52, 0.1);
  c->self_attn.out_proj_weight = bench_cpu_random(b, dt, 2, wo, 53, ws);
  c->self_attn.out_proj_bias = bench_cpu_random(b, dt, 1, e1, 54, 0.1);
  c->linear1_weight = bench_cpu_random(b, dt, 2, w1, 55, ws);
  c->linear1_bias = bench_cpu_random(b, dt, 1, f1, 56, 0.1);
  c->linear2_weight = bench_cpu_random(b, dt, 2, w2, 57, wf);
  c->linear2_bias = bench_cpu_random(b, dt, 1, e1, 58, 0.1);
  c->norm1_weight = bench_cpu_random(b, dt, 1, e1, 59, 1.0);
  c->norm1_bias = bench_cpu_random(b, dt, 1, e1, 60, 0.1);
  c->norm2_weight = bench_cpu_random(b, dt, 1, e1, 61, 1.0);
  c->norm2_bias = bench_cpu_random(b, dt, 1, e1, 62, 0.1);
  seqk_tensor *cpu[12] = {&c->self_attn.in_proj_weight,
                          &c->self_attn.in_proj_bias,
                          &c->self_attn.out_proj_weight,
                          &c->self_attn.out_proj_bias,
                          &c->linear1_weight,
                          &c->linear1_bias,
                          &c->linear2_weight,
                          &c->linear2_bias,
                          &c->norm1_weight,
                          &c->norm1_bias,
                          &c->norm2_weight,
                          &c->norm2_bias};
  seqk_encoder_layer_weights *g = &a.w;
  seqk_tensor *dev[12] = {&g->self_attn.in_proj_weight,
                          &g->self_attn.in_proj_bias,
                          &g->self_attn.out_proj_weight,
                          &g->self_attn.out_proj_bias,
                          &g->linear1_weight,
                          &g->linear1_bias,
                          &g->linear2_weight,
                          &g->linear2_bias,
                          &g->norm1_weight,
                          &g->norm1_bias,
                          &g->norm2_weight,
                          &g->norm2_bias};
  for (int i = 0; i < 12; ++i) *dev[i] = bench_to_device(b, cpu[i]);
  a.d.nhead = (int32_t)H;
  a.d.activation = SEQK_ACTIVATION_RELU;
  a.d.layer_norm_eps = 1e-5f;
  a.d.batch_first = 1;
  const double tokens = (double)B * (double)S;
  const double flops = 2.0 * tokens * (4.0 * E * E + 2.0 * E * F) + 4.0 * (double)B * S * S * E;
  const int sets = bench_input_sets(b, tokens * (double)E * (double)seqk_dtype_size(dt));
  a.x_cpu = bench_cpu_random(b, dt, 3, xs, 63, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = bench_device_empty(b, dt, 3, xs);
  a.a = bench_device_empty(b, dt, 3, xs);
  a.h = bench_device_empty(b, dt, 3, xs);
  a.g = bench_device_empty(b, dt, 3, xs);
  a.f = bench_device_empty(b, dt, 3, fs);
  a.ref = bench_cpu_empty(b, dt, 3, xs);
  bench_case bc = {name,
                   dt,
                   flops,
                   0,
                   sets,
                   encoder_run,
                   encoder_reference,
                   &a.y,
                   &a.ref,
                   encoder_composed,
                   "separate calls",
                   "post-norm, relu"};
  bench_run_case(b, &bc, &a);
  bench_release(b);
}

void bench_cases_blocks(bench *b) {
  const seqk_dtype dts[3] = {SEQK_DTYPE_BF16, SEQK_DTYPE_F16, SEQK_DTYPE_F32};
  if (b->small) {
    for (int i = 0; i < 3; ++i) {
      norm_case(b, dts[i], 0, 0, 5, 48, NULL);
      norm_case(b, dts[i], 1, 1, 3, 200, NULL);
      norm_case(b, dts[i], 0, 1, 2, 9000, "(streamed)");
      act_case(b, dts[i], SEQK_ACTIVATION_GELU, 0, 3, 77, NULL);
      act_case(b, dts[i], SEQK_ACTIVATION_SILU, 1, 4, 40, NULL);
      rotary_case(b, dts[i], 2, 3, 4, 2, 16, NULL);
      linear_ex_case(b, dts[i], SEQK_ACTIVATION_GELU_TANH, 0, 7, 12, 20, NULL);
      linear_ex_case(b, dts[i], SEQK_ACTIVATION_NONE, 1, 5, 9, 6, NULL);
      encoder_case(b, dts[i], 2, 5, 8, 2, 12, NULL);
    }
    return;
  }
  for (int i = 0; i < 2; ++i) {
    norm_case(b, dts[i], 0, 0, 16384, 768, "(GPT-2 small)");
    norm_case(b, dts[i], 0, 1, 16384, 768, "(GPT-2 small)");
    norm_case(b, dts[i], 1, 1, 16384, 4096, "(LLaMA 8B)");
    norm_case(b, dts[i], 1, 1, 64, 8192, "(decode, LLaMA 70B)");
    norm_case(b, dts[i], 1, 0, 16384 * 32, 128, "(per-head q/k norm)");
    norm_case(b, dts[i], 0, 0, 256, 65536, "(streamed)");
    act_case(b, dts[i], SEQK_ACTIVATION_GELU_TANH, 0, 16384, 3072, "(GPT-2 MLP)");
    act_case(b, dts[i], SEQK_ACTIVATION_SILU, 1, 16384, 14336, "(SwiGLU, LLaMA 8B)");
    rotary_case(b, dts[i], 8, 2048, 32, 8, 128, "(prefill)");
    rotary_case(b, dts[i], 64, 1, 32, 8, 128, "(decode)");
    linear_ex_case(b, dts[i], SEQK_ACTIVATION_GELU_TANH, 0, 16384, 768, 3072, "(GPT-2 c_fc)");
    linear_ex_case(b, dts[i], SEQK_ACTIVATION_NONE, 1, 16384, 3072, 768, "(GPT-2 c_proj)");
    encoder_case(b, dts[i], 32, 512, 768, 12, 3072, "(BERT-base)");
    encoder_case(b, dts[i], 8, 128, 512, 8, 2048, "(torch defaults)");
  }
  norm_case(b, SEQK_DTYPE_F32, 0, 1, 16384, 768, "(GPT-2 small)");
  act_case(b, SEQK_DTYPE_F32, SEQK_ACTIVATION_GELU, 0, 16384, 3072, NULL);
}
