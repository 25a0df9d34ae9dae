/*
 * gpt2_decode - a GPT-2-style decoder (HF GPT2LMHeadModel's layout and equations, tiny sizes)
 * that prefills a batch of prompts of different lengths and decodes greedily with a KV cache,
 * every decode step checked against recomputing the whole sequence without the cache.
 *
 * Per block (pre-norm):  h = h + c_proj(attn(ln_1(h)));  h = h + mlp.c_proj(gelu_tanh(c_fc(ln_2(h))))
 * then ln_f and logits = h wte^T (tied). GPT-2 stores its linears as Conv1D, weight [in, out]:
 * seqk_linear takes them as they are through a transposed view (strides), no copy.
 * The seqk calls of one forward over Sn new tokens per sequence:
 *   - seqk_embedding twice (wte[tokens], wpe[positions]), and the first block's ln_1 with the
 *     fused residual: residual_out = wte + wpe (the residual stream h), y = ln_1(h);
 *   - c_attn: seqk_linear into [B,Sn,3E], whose q, k, v are head views of it (no split copies);
 *   - seqk_kv_cache_append of k and v at each sequence's cached length;
 *   - seqk_attention, causal, over the cache with device seqlens_q (new tokens per sequence:
 *     a padded prompt batch) and seqlens_k (cached + new), writing o straight into the merged
 *     [B,Sn,E] layout;
 *   - c_proj and mlp.c_proj: seqk_linear_ex with the residual stream as the residual, in place;
 *     c_fc: seqk_linear_ex with GELU (tanh);
 *   - ln_2, ln_f: seqk_layer_norm.
 * Greedy: the logits of each sequence's last new token, argmax on the host. The same program runs
 * on the CPU and, through ex_run_model, on CUDA tensors (the emulated backend in CI).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "example_util.h"

enum { V = 32, P = 16, E = 16, NH = 2, HD = E / NH, F = 4 * E, L = 2, B = 2, G = 4, SMAX = 9 };
static const int32_t k_prompt_len[B] = {5, 3};
static const int32_t k_prompt[B][5] = {{3, 14, 15, 9, 2}, {6, 5, 3, 0, 0}};

/* Parameters, in this order (GPT-2's names); per block: */
enum { W_TE, W_PE, LNF_W, LNF_B, N_GLOBAL };
enum {
  LN1_W,
  LN1_B,
  ATTN_W,
  ATTN_B,
  PROJ_W,
  PROJ_B,
  LN2_W,
  LN2_B,
  FC_W,
  FC_B,
  MPROJ_W,
  MPROJ_B,
  N_BLOCK
};
#define N_PARAMS (N_GLOBAL + L * N_BLOCK)

typedef struct gpt {
  seqk_context_t ctx;
  const seqk_tensor *w;
  seqk_device dev;
  seqk_tensor kc[L], vc[L];                             /* [B,P,NH,HD] */
  seqk_tensor tokens, positions, n_new, lens, new_lens; /* I32 on the device */
  seqk_tensor tok, h, n, qkv, att, f, logits;           /* activations, sized for SMAX tokens */
  int32_t host_lens[B];
} gpt;

static const seqk_tensor *param(const gpt *g, int block, int which) {
  return &g->w[N_GLOBAL + block * N_BLOCK + which];
}

/* A Conv1D weight [in, out] as the [out, in] matrix seqk_linear takes (a view). */
static seqk_tensor conv1d(const seqk_tensor *w) {
  const int64_t shape[2] = {w->shape[1], w->shape[0]}, stride[2] = {1, w->shape[1]};
  return seqk_tensor_view_strided(w->data, w->dtype, w->device, 2, shape, stride);
}

/* The first B*Sn*cols elements of buffer t as a contiguous [B,Sn,cols]. */
static seqk_tensor rows(const seqk_tensor *t, int64_t Sn, int64_t cols) {
  const int64_t shape[3] = {B, Sn, cols};
  return seqk_tensor_view(t->data, t->dtype, t->device, 3, shape);
}

/* Columns [c0, c0 + NH*HD) of a [B,Sn,width] buffer as heads [B,Sn,NH,HD] (bshd) or [B,NH,Sn,HD]. */
static seqk_tensor heads(const seqk_tensor *t, int64_t Sn, int64_t width, int64_t c0, int bhsd) {
  const int64_t shape_bshd[4] = {B, Sn, NH, HD}, stride_bshd[4] = {Sn * width, width, HD, 1};
  const int64_t shape_bhsd[4] = {B, NH, Sn, HD}, stride_bhsd[4] = {Sn * width, HD, width, 1};
  return seqk_tensor_view_strided((float *)t->data + c0, t->dtype, t->device, 4,
                                  bhsd ? shape_bhsd : shape_bshd, bhsd ? stride_bhsd : stride_bshd);
}

static seqk_status upload_i32(gpt *g, seqk_tensor *dst, const int32_t *src, int32_t ndim,
                              const int64_t *shape) {
  seqk_tensor d = seqk_tensor_view(dst->data, SEQK_DTYPE_I32, g->dev, ndim, shape);
  seqk_tensor s = seqk_tensor_view((void *)src, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, ndim, shape);
  return seqk_tensor_copy(g->ctx, &d, &s);
}

/* One forward over Sn new tokens per sequence (tokens, positions [B,Sn] on the host; n_new[b]
   of them real, the rest padding), appended to the cache after each sequence's cached length.
   Writes the logits of every new position into host_logits [B,Sn,V]. */
static seqk_status forward(gpt *g, int64_t Sn, const int32_t *tokens, const int32_t *positions,
                           const int32_t *n_new, float *host_logits, const char **failed_op) {
  seqk_context_t ctx = g->ctx;
  const int64_t bs[2] = {B, Sn}, b1[1] = {B};
  int32_t new_lens[B];
  for (int b = 0; b < B; ++b) new_lens[b] = g->host_lens[b] + n_new[b];
  EX_TRY("tensor_copy", upload_i32(g, &g->tokens, tokens, 2, bs));
  EX_TRY("tensor_copy", upload_i32(g, &g->positions, positions, 2, bs));
  EX_TRY("tensor_copy", upload_i32(g, &g->n_new, n_new, 1, b1));
  EX_TRY("tensor_copy", upload_i32(g, &g->lens, g->host_lens, 1, b1));
  EX_TRY("tensor_copy", upload_i32(g, &g->new_lens, new_lens, 1, b1));
  seqk_tensor tok_ids = seqk_tensor_view(g->tokens.data, SEQK_DTYPE_I32, g->dev, 2, bs);
  seqk_tensor pos_ids = seqk_tensor_view(g->positions.data, SEQK_DTYPE_I32, g->dev, 2, bs);
  seqk_tensor tok = rows(&g->tok, Sn, E), h = rows(&g->h, Sn, E), n = rows(&g->n, Sn, E);
  seqk_tensor qkv = rows(&g->qkv, Sn, 3 * E), att = rows(&g->att, Sn, E);
  seqk_tensor f = rows(&g->f, Sn, F), logits = rows(&g->logits, Sn, V);

  EX_TRY("embedding", seqk_embedding(ctx, &tok_ids, &g->w[W_TE], &tok));
  EX_TRY("embedding", seqk_embedding(ctx, &pos_ids, &g->w[W_PE], &h)); /* h = wpe for now */
  for (int l = 0; l < L; ++l) {
    /* ln_1; in block 0 also the residual stream h = wte[tokens] + wpe[positions]. */
    if (l == 0)
      EX_TRY("layer_norm",
             seqk_layer_norm(ctx, &tok, &h, param(g, l, LN1_W), param(g, l, LN1_B), 1e-5f, &n, &h));
    else
      EX_TRY("layer_norm", seqk_layer_norm(ctx, &h, NULL, param(g, l, LN1_W), param(g, l, LN1_B),
                                           1e-5f, &n, NULL));
    const seqk_tensor w_attn = conv1d(param(g, l, ATTN_W));
    EX_TRY("linear", seqk_linear(ctx, &n, &w_attn, param(g, l, ATTN_B), &qkv));
    const seqk_tensor k_new = heads(&qkv, Sn, 3 * E, E, 0),
                      v_new = heads(&qkv, Sn, 3 * E, 2 * E, 0);
    seqk_kv_cache cache;
    memset(&cache, 0, sizeof cache);
    cache.k = g->kc[l];
    cache.v = g->vc[l];
    EX_TRY("kv_cache_append", seqk_kv_cache_append(ctx, &cache, &g->lens, 0, &k_new, &v_new));
    /* q [B,NH,Sn,HD] against the cache seen as [B,NH,P,HD]; o into att's merged layout. */
    const seqk_tensor q = heads(&qkv, Sn, 3 * E, 0, 1);
    const int64_t c_shape[4] = {B, NH, P, HD}, c_stride[4] = {P * E, HD, E, 1};
    const seqk_tensor kc =
        seqk_tensor_view_strided(g->kc[l].data, SEQK_DTYPE_F32, g->dev, 4, c_shape, c_stride);
    const seqk_tensor vc =
        seqk_tensor_view_strided(g->vc[l].data, SEQK_DTYPE_F32, g->dev, 4, c_shape, c_stride);
    seqk_tensor o = heads(&att, Sn, E, 0, 1);
    seqk_attention_params ap = {0};
    ap.causal = 1;
    ap.seqlens_q = (const int32_t *)g->n_new.data;
    ap.seqlens_k = (const int32_t *)g->new_lens.data;
    EX_TRY("attention", seqk_attention(ctx, &ap, &q, &kc, &vc, &o, NULL));
    const seqk_tensor w_proj = conv1d(param(g, l, PROJ_W));
    EX_TRY("linear_ex",
           seqk_linear_ex(ctx, &att, &w_proj, param(g, l, PROJ_B), SEQK_ACTIVATION_NONE, &h, &h));
    EX_TRY("layer_norm",
           seqk_layer_norm(ctx, &h, NULL, param(g, l, LN2_W), param(g, l, LN2_B), 1e-5f, &n, NULL));
    const seqk_tensor w_fc = conv1d(param(g, l, FC_W)), w_mp = conv1d(param(g, l, MPROJ_W));
    EX_TRY("linear_ex",
           seqk_linear_ex(ctx, &n, &w_fc, param(g, l, FC_B), SEQK_ACTIVATION_GELU_TANH, NULL, &f));
    EX_TRY("linear_ex",
           seqk_linear_ex(ctx, &f, &w_mp, param(g, l, MPROJ_B), SEQK_ACTIVATION_NONE, &h, &h));
  }
  EX_TRY("layer_norm", seqk_layer_norm(ctx, &h, NULL, &g->w[LNF_W], &g->w[LNF_B], 1e-5f, &n, NULL));
  EX_TRY("linear", seqk_linear(ctx, &n, &g->w[W_TE], NULL, &logits));
  const int64_t ls[3] = {B, Sn, V};
  seqk_tensor hl = seqk_tensor_view(host_logits, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, ls);
  EX_TRY("tensor_copy", seqk_tensor_copy(ctx, &hl, &logits));
  memcpy(g->host_lens, new_lens, sizeof new_lens);
  return SEQK_STATUS_SUCCESS;
}

static int argmax(const float *v) {
  int best = 0;
  for (int i = 1; i < V; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

static seqk_status alloc(gpt *g, seqk_tensor *t, seqk_dtype dt, int32_t ndim, const int64_t *shape,
                         const char **failed_op) {
  EX_TRY("tensor_alloc", seqk_tensor_alloc(g->ctx, t, dt, g->dev, ndim, shape));
  return SEQK_STATUS_SUCCESS;
}

/* in: the parameters; out[0]: the cached steps' logits [G,B,V], out[1]: the same logits from
   recomputing each whole sequence [G,B,V], out[2]: the generated tokens [B,G] (as floats). */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  gpt g;
  memset(&g, 0, sizeof g);
  g.ctx = ctx;
  g.w = in;
  g.dev = in[0].device;
  const int64_t cache_shape[4] = {B, P, NH, HD}, bs[2] = {B, SMAX}, b1[1] = {B};
  const int64_t a_e[3] = {B, SMAX, E}, a_3e[3] = {B, SMAX, 3 * E}, a_f[3] = {B, SMAX, F};
  const int64_t a_v[3] = {B, SMAX, V};
  const seqk_dtype f32 = SEQK_DTYPE_F32, i32 = SEQK_DTYPE_I32;
  /* The decode's cache, and a second one for the check's full recomputations. */
  seqk_tensor full_kc[L], full_vc[L];
  for (int l = 0; l < L; ++l) {
    EX_TRY("tensor_alloc", alloc(&g, &g.kc[l], f32, 4, cache_shape, failed_op));
    EX_TRY("tensor_alloc", alloc(&g, &g.vc[l], f32, 4, cache_shape, failed_op));
    EX_TRY("tensor_alloc", alloc(&g, &full_kc[l], f32, 4, cache_shape, failed_op));
    EX_TRY("tensor_alloc", alloc(&g, &full_vc[l], f32, 4, cache_shape, failed_op));
  }
  seqk_tensor *i32s[5] = {&g.tokens, &g.positions, &g.n_new, &g.lens, &g.new_lens};
  for (int i = 0; i < 5; ++i)
    EX_TRY("tensor_alloc", alloc(&g, i32s[i], i32, i < 2 ? 2 : 1, i < 2 ? bs : b1, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.tok, f32, 3, a_e, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.h, f32, 3, a_e, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.n, f32, 3, a_e, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.att, f32, 3, a_e, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.qkv, f32, 3, a_3e, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.f, f32, 3, a_f, failed_op));
  EX_TRY("tensor_alloc", alloc(&g, &g.logits, f32, 3, a_v, failed_op));

  int32_t seq[B][SMAX]; /* prompt + generated tokens */
  int32_t len[B];
  for (int b = 0; b < B; ++b) {
    len[b] = k_prompt_len[b];
    for (int s = 0; s < SMAX; ++s) seq[b][s] = s < len[b] ? k_prompt[b][s] : 0;
  }
  float *cached = (float *)out[0].data, *recomputed = (float *)out[1].data;
  float *generated = (float *)out[2].data;
  static float lg[B * SMAX * V];

  /* Prefill: the padded prompt batch, positions 0.., each sequence n_new = its length. */
  int32_t tokens[B * SMAX], positions[B * SMAX], n_new[B];
  for (int b = 0; b < B; ++b) {
    n_new[b] = len[b];
    for (int s = 0; s < 5; ++s) {
      tokens[b * 5 + s] = seq[b][s];
      positions[b * 5 + s] = s;
    }
  }
  EX_TRY("forward", forward(&g, 5, tokens, positions, n_new, lg, failed_op));
  for (int step = 0; step < G; ++step) {
    /* The next token of each sequence: argmax at its last real position of the last forward. */
    const int64_t Sn = step == 0 ? 5 : 1;
    for (int b = 0; b < B; ++b) {
      const float *row = lg + ((int64_t)b * Sn + (step == 0 ? len[b] - 1 : 0)) * V;
      memcpy(cached + ((int64_t)step * B + b) * V, row, V * sizeof(float));
      seq[b][len[b]] = argmax(row);
      generated[b * G + step] = (float)seq[b][len[b]];
    }
    /* The check: the whole sequences again, from an empty cache. */
    gpt full = g;
    memset(full.host_lens, 0, sizeof full.host_lens);
    for (int l = 0; l < L; ++l) {
      full.kc[l] = full_kc[l];
      full.vc[l] = full_vc[l];
    }
    int32_t ft[B * SMAX], fp[B * SMAX], fn[B];
    for (int b = 0; b < B; ++b) {
      fn[b] = len[b];
      for (int s = 0; s < SMAX; ++s) {
        ft[b * SMAX + s] = seq[b][s];
        fp[b * SMAX + s] = s;
      }
    }
    static float flg[B * SMAX * V];
    EX_TRY("forward", forward(&full, SMAX, ft, fp, fn, flg, failed_op));
    for (int b = 0; b < B; ++b)
      memcpy(recomputed + ((int64_t)step * B + b) * V, flg + ((int64_t)b * SMAX + len[b] - 1) * V,
             V * sizeof(float));
    for (int b = 0; b < B; ++b) ++len[b];
    if (step + 1 == G) break;
    /* Decode: one new token per sequence at position len - 1. */
    for (int b = 0; b < B; ++b) {
      tokens[b] = seq[b][len[b] - 1];
      positions[b] = len[b] - 1;
      n_new[b] = 1;
    }
    EX_TRY("forward", forward(&g, 1, tokens, positions, n_new, lg, failed_op));
  }
  for (int l = 0; l < L; ++l) {
    seqk_tensor_free(ctx, &g.kc[l]);
    seqk_tensor_free(ctx, &g.vc[l]);
    seqk_tensor_free(ctx, &full_kc[l]);
    seqk_tensor_free(ctx, &full_vc[l]);
  }
  for (int i = 0; i < 5; ++i) seqk_tensor_free(ctx, i32s[i]);
  seqk_tensor *acts[7] = {&g.tok, &g.h, &g.n, &g.att, &g.qkv, &g.f, &g.logits};
  for (int i = 0; i < 7; ++i) seqk_tensor_free(ctx, acts[i]);
  return SEQK_STATUS_SUCCESS;
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;
  static const int64_t global_shapes[N_GLOBAL][2] = {{V, E}, {P, E}, {E, 0}, {E, 0}};
  static const int64_t block_shapes[N_BLOCK][2] = {{E, 0}, {E, 0}, {E, 3 * E}, {3 * E, 0},
                                                   {E, E}, {E, 0}, {E, 0},     {E, 0},
                                                   {E, F}, {F, 0}, {F, E},     {E, 0}};
  static float storage[N_PARAMS][F * E];
  seqk_tensor in[N_PARAMS];
  for (int p = 0; p < N_PARAMS; ++p) {
    const int64_t *shape = p < N_GLOBAL ? global_shapes[p] : block_shapes[(p - N_GLOBAL) % N_BLOCK];
    const int64_t n = shape[0] * (shape[1] ? shape[1] : 1);
    ex_fill(storage[p], n, 20 + p);
    const int which = p < N_GLOBAL ? -1 : (p - N_GLOBAL) % N_BLOCK;
    for (int64_t i = 0; i < n; ++i) {
      if (p == LNF_W || which == LN1_W || which == LN2_W) storage[p][i] += 1.0f; /* gains ~1 */
      if (which == MPROJ_W) storage[p][i] *= 0.25f;
    }
    in[p] = seqk_tensor_view(storage[p], SEQK_DTYPE_F32, SEQK_DEVICE_CPU, shape[1] ? 2 : 1, shape);
  }
  printf("weights: " EX_WEIGHT_FORMULA "\n  layer norm gains + 1, mlp.c_proj.weight * 0.25\n");

  static float cached[G * B * V], recomputed[G * B * V], generated[B * G];
  const int64_t sh_l[3] = {G, B, V}, sh_g[2] = {B, G};
  seqk_tensor out[3] = {seqk_tensor_view(cached, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_l),
                        seqk_tensor_view(recomputed, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_l),
                        seqk_tensor_view(generated, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, sh_g)};
  ex_run_model(ctx, "gpt2_decode", model, NULL, N_PARAMS, in, 3, out);
  for (int b = 0; b < B; ++b) {
    printf("sequence %d: prompt", b);
    for (int s = 0; s < k_prompt_len[b]; ++s) printf(" %d", k_prompt[b][s]);
    printf(" -> generated");
    for (int s = 0; s < G; ++s) printf(" %d", (int)generated[b * G + s]);
    printf("\n");
  }
  ex_expect_close("each step's logits with the KV cache against recomputing the whole sequence",
                  &out[0], &out[1], 1e-5, 1e-4);
  seqk_context_destroy(ctx);
  printf("gpt2_decode: all checks passed\n");
  return 0;
}
