/*
 * test_encoder_layer.c - seqk_transformer_encoder_layer_forward against nn.TransformerEncoderLayer's
 * equations written out in double in this file (eval mode), on the CPU and on CUDA tensors.
 *
 * layer:     all four (batch_first, norm_first) combinations x relu / gelu x no padding,
 *            key_lengths (one sequence cut short, one empty) or a key_padding_mask x causal x
 *            every dtype; bias-free and norm-affine-free checkpoints; strided src and out.
 * bad input: every argument.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_dtypes[] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

enum { B = 2, S = 5, E = 8, H = 2, F = 12 };

typedef struct layer_weights {
  seqk_encoder_layer_weights w;
  int biases; /* 0: every bias and norm parameter absent */
} layer_weights;

static void make_weights(layer_weights *lw, seqk_dtype dt, int biases) {
  const int64_t wi[2] = {3 * E, E}, bi[1] = {3 * E}, wo[2] = {E, E}, e1[1] = {E};
  const int64_t w1[2] = {F, E}, b1[1] = {F}, w2[2] = {E, F};
  seqk_encoder_layer_weights *w = &lw->w;
  memset(w, 0, sizeof *w);
  lw->biases = biases;
  w->self_attn.in_proj_weight = th_tensor_new(dt, 2, wi);
  w->self_attn.out_proj_weight = th_tensor_new(dt, 2, wo);
  w->linear1_weight = th_tensor_new(dt, 2, w1);
  w->linear2_weight = th_tensor_new(dt, 2, w2);
  th_fill_uniform(&w->self_attn.in_proj_weight, &g_rng, -0.5, 0.5);
  th_fill_uniform(&w->self_attn.out_proj_weight, &g_rng, -0.5, 0.5);
  th_fill_uniform(&w->linear1_weight, &g_rng, -0.5, 0.5);
  th_fill_uniform(&w->linear2_weight, &g_rng, -0.4, 0.4);
  if (!biases) return;
  w->self_attn.in_proj_bias = th_tensor_new(dt, 1, bi);
  w->self_attn.out_proj_bias = th_tensor_new(dt, 1, e1);
  w->linear1_bias = th_tensor_new(dt, 1, b1);
  w->linear2_bias = th_tensor_new(dt, 1, e1);
  w->norm1_weight = th_tensor_new(dt, 1, e1);
  w->norm1_bias = th_tensor_new(dt, 1, e1);
  w->norm2_weight = th_tensor_new(dt, 1, e1);
  w->norm2_bias = th_tensor_new(dt, 1, e1);
  seqk_tensor *vs[] = {&w->self_attn.in_proj_bias,
                       &w->self_attn.out_proj_bias,
                       &w->linear1_bias,
                       &w->linear2_bias,
                       &w->norm1_bias,
                       &w->norm2_bias};
  for (size_t i = 0; i < sizeof vs / sizeof vs[0]; ++i) th_fill_uniform(vs[i], &g_rng, -0.3, 0.3);
  th_fill_uniform(&w->norm1_weight, &g_rng, 0.7, 1.3);
  th_fill_uniform(&w->norm2_weight, &g_rng, 0.7, 1.3);
}

/* ---- the expected values: torch's equations in double -------------------------------------------- */

static const double *get(const seqk_tensor *t) { return t->data ? th_to_doubles(t) : NULL; }

/* y[r] = x[r] W^T + b for rows r < n. */
static void dense(const double *x, int64_t n, int64_t in, const double *W, const double *b,
                  int64_t out, double *y) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? b[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += x[r * in + i] * W[o * in + i];
      y[r * out + o] = acc;
    }
}

static void layer_norm(const double *x, int64_t n, const double *g, const double *b, double eps,
                       double *y) {
  for (int64_t r = 0; r < n; ++r) {
    double mean = 0.0, var = 0.0;
    for (int64_t c = 0; c < E; ++c) mean += x[r * E + c] / E;
    for (int64_t c = 0; c < E; ++c) var += (x[r * E + c] - mean) * (x[r * E + c] - mean) / E;
    for (int64_t c = 0; c < E; ++c)
      y[r * E + c] = (x[r * E + c] - mean) / sqrt(var + eps) * (g ? g[c] : 1.0) + (b ? b[c] : 0.0);
  }
}

/* Self-attention of x [B,S,E] (batch-first) into y. len[b]: keys j >= len[b] are padding (causal
   aligned bottom-right against it; no key: zero); mask[b*S + j] != 0: padding too (as -inf). */
static void self_attention(const seqk_encoder_layer_weights *w, const double *x, const int32_t *len,
                           const int32_t *mask, int causal, double *y) {
  const double *wi = get(&w->self_attn.in_proj_weight), *bi = get(&w->self_attn.in_proj_bias);
  const double *wo = get(&w->self_attn.out_proj_weight), *bo = get(&w->self_attn.out_proj_bias);
  double qkv[B * S * 3 * E], cat[B * S * E], p[S];
  const int64_t hd = E / H;
  dense(x, B * S, E, wi, bi, 3 * E, qkv);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = len ? len[b] : S;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        int64_t vis = causal ? i + L - S + 1 : L;
        vis = vis < 0 ? 0 : vis > L ? L : vis;
        double max = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < vis; ++j) {
          double d = 0.0;
          for (int64_t c = 0; c < hd; ++c)
            d += qkv[(b * S + i) * 3 * E + h * hd + c] * qkv[(b * S + j) * 3 * E + E + h * hd + c];
          p[j] = mask && mask[b * S + j] ? -INFINITY : d / sqrt((double)hd);
          max = fmax(max, p[j]);
        }
        for (int64_t j = 0; j < vis; ++j) sum += p[j] = exp(p[j] - max);
        for (int64_t c = 0; c < hd; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < vis; ++j)
            acc += p[j] / sum * qkv[(b * S + j) * 3 * E + 2 * E + h * hd + c];
          cat[(b * S + i) * E + h * hd + c] = acc;
        }
      }
  }
  dense(cat, B * S, E, wo, bo, E, y);
}

/* The layer on x [B,S,E] batch-first, in double. */
static void layer_expected(const seqk_encoder_layer_weights *w, const seqk_encoder_layer_desc *d,
                           const double *x, const int32_t *len, const int32_t *mask, double *out) {
  double a[B * S * E], h[B * S * E], n[B * S * E], f[B * S * F], g[B * S * E];
  const double *w1 = get(&w->linear1_weight), *b1 = get(&w->linear1_bias);
  const double *w2 = get(&w->linear2_weight), *b2 = get(&w->linear2_bias);
  const double *n1w = get(&w->norm1_weight), *n1b = get(&w->norm1_bias);
  const double *n2w = get(&w->norm2_weight), *n2b = get(&w->norm2_bias);
  const double eps = d->layer_norm_eps;
  const int64_t N = B * S;
  if (d->norm_first) {
    layer_norm(x, N, n1w, n1b, eps, n);
    self_attention(w, n, len, mask, d->causal, a);
    for (int64_t i = 0; i < N * E; ++i) h[i] = x[i] + a[i];
    layer_norm(h, N, n2w, n2b, eps, n);
    dense(n, N, E, w1, b1, F, f);
    for (int64_t i = 0; i < N * F; ++i) f[i] = th_activation(d->activation, f[i]);
    dense(f, N, F, w2, b2, E, g);
    for (int64_t i = 0; i < N * E; ++i) out[i] = h[i] + g[i];
  } else {
    self_attention(w, x, len, mask, d->causal, a);
    for (int64_t i = 0; i < N * E; ++i) a[i] += x[i];
    layer_norm(a, N, n1w, n1b, eps, h);
    dense(h, N, E, w1, b1, F, f);
    for (int64_t i = 0; i < N * F; ++i) f[i] = th_activation(d->activation, f[i]);
    dense(f, N, F, w2, b2, E, g);
    for (int64_t i = 0; i < N * E; ++i) g[i] += h[i];
    layer_norm(g, N, n2w, n2b, eps, out);
  }
}

/* ---- the layer ------------------------------------------------------------------------------------ */

typedef struct layer_user {
  seqk_encoder_layer_desc d;
} layer_user;

/* in: src, then the 12 weights in state_dict order, key_lengths, key_padding_mask. */
static seqk_status layer_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  seqk_encoder_layer_desc d = ((const layer_user *)user)->d;
  seqk_encoder_layer_weights w;
  w.self_attn = (seqk_mha_weights){in[1], in[2], in[3], in[4]};
  w.linear1_weight = in[5];
  w.linear1_bias = in[6];
  w.linear2_weight = in[7];
  w.linear2_bias = in[8];
  w.norm1_weight = in[9];
  w.norm1_bias = in[10];
  w.norm2_weight = in[11];
  w.norm2_bias = in[12];
  d.key_lengths = in[13];
  d.key_padding_mask = in[14];
  return seqk_transformer_encoder_layer_forward(ctx, &d, &w, &in[0], &out[0]);
}

enum { PAD_NONE, PAD_LENGTHS, PAD_MASK };

static void run_layer(seqk_dtype dt, int batch_first, int norm_first, seqk_activation act, int pad,
                      int causal, int biases, int strided) {
  layer_weights lw;
  make_weights(&lw, dt, biases);
  const int64_t shape[3] = {batch_first ? B : S, batch_first ? S : B, E};
  const int64_t len_shape[1] = {B}, mask_shape[2] = {B, S};
  seqk_tensor src = th_tensor_maybe_strided(dt, 3, shape, strided);
  seqk_tensor out = th_tensor_maybe_strided(dt, 3, shape, strided);
  th_fill_uniform(&src, &g_rng, -1.5, 1.5);
  th_poison(&out);
  /* A length of 0 would leave every query of that sequence without a key: out_proj_bias there. */
  const int32_t lens_v[B] = {S, 2};
  const int32_t mask_v[B * S] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0};
  seqk_tensor lens = th_tensor_new(SEQK_DTYPE_I32, 1, len_shape);
  seqk_tensor mask = th_tensor_new(SEQK_DTYPE_I32, 2, mask_shape);
  th_fill_i32(&lens, lens_v);
  th_fill_i32(&mask, mask_v);

  layer_user u;
  memset(&u, 0, sizeof u);
  u.d.nhead = H;
  u.d.activation = act;
  u.d.layer_norm_eps = 1e-5f;
  u.d.batch_first = batch_first;
  u.d.norm_first = norm_first;
  u.d.causal = causal;
  u.d.key_lengths = pad == PAD_LENGTHS ? lens : th_absent(lens);
  u.d.key_padding_mask = pad == PAD_MASK ? mask : th_absent(mask);

  static const char *const pads[] = {"", " key_lengths", " key_padding_mask"};
  char what[192];
  snprintf(what, sizeof what, "encoder_layer %s %s %s%s%s%s%s %s",
           batch_first ? "batch_first" : "seq_first", norm_first ? "norm_first" : "post-norm",
           act == SEQK_ACTIVATION_RELU ? "relu" : "gelu", pads[pad], causal ? " causal" : "",
           biases ? "" : " no biases", strided ? " strided" : "", th_dtype_name(dt));
  if (!th_expect_status(g_ctx,
                        seqk_transformer_encoder_layer_forward(g_ctx, &u.d, &lw.w, &src, &out),
                        SEQK_STATUS_SUCCESS, NULL, what))
    return;

  /* The expected values from src's stored values, batch-first. */
  double x[B * S * E], want[B * S * E], got_order[B * S * E];
  const double *sd = th_to_doubles(&src);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < E; ++c)
        x[(b * S + s) * E + c] = sd[(batch_first ? b * S + s : s * B + b) * E + c];
  layer_expected(&lw.w, &u.d, x, pad == PAD_LENGTHS ? lens_v : NULL,
                 pad == PAD_MASK ? mask_v : NULL, want);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < E; ++c)
        got_order[(batch_first ? b * S + s : s * B + b) * E + c] = want[(b * S + s) * E + c];
  /* Every intermediate (the attention's projections and output, the residual stream, the norm
     outputs, the feed-forward activations) is stored in the dtype, about eight roundings deep,
     and the layer norms rescale their inputs' errors: 8x the one-rounding bound, 4x for f32. */
  const double factor = dt == SEQK_DTYPE_F32 ? 4.0 : 8.0;
  TH_CHECK(th_check_close(what, &out, got_order, th_tol_scaled(dt, factor)), "%s: out differs",
           what);

  const seqk_encoder_layer_weights *w = &lw.w;
  const seqk_tensor in[15] = {src,
                              w->self_attn.in_proj_weight,
                              w->self_attn.in_proj_bias,
                              w->self_attn.out_proj_weight,
                              w->self_attn.out_proj_bias,
                              w->linear1_weight,
                              w->linear1_bias,
                              w->linear2_weight,
                              w->linear2_bias,
                              w->norm1_weight,
                              w->norm1_bias,
                              w->norm2_weight,
                              w->norm2_bias,
                              u.d.key_lengths,
                              u.d.key_padding_mask};
  th_check_on_device(g_ctx, what, layer_op, &u, in, 15, 0, &out, 1,
                     dt == SEQK_DTYPE_F32 ? 1.0 : 2.0);
}

static void test_layer(void) {
  for (int d = 0; d < N_DTYPES; ++d)
    for (int bf = 0; bf < 2; ++bf)
      for (int nf = 0; nf < 2; ++nf)
        for (int pad = 0; pad < 3; ++pad) {
          run_layer(k_dtypes[d], bf, nf, SEQK_ACTIVATION_RELU, pad, 0, 1, 0);
          run_layer(k_dtypes[d], bf, nf, SEQK_ACTIVATION_GELU, pad, pad != PAD_MASK, 1, pad == 1);
        }
  for (int nf = 0; nf < 2; ++nf)
    run_layer(SEQK_DTYPE_F32, 0, nf, SEQK_ACTIVATION_GELU, PAD_NONE, 0, 0, 1);
}

/* ---- bad input ------------------------------------------------------------------------------------- */

static void test_bad_input(void) {
  layer_weights lw;
  make_weights(&lw, SEQK_DTYPE_F32, 1);
  const int64_t shape[3] = {B, S, E}, len_shape[1] = {B}, bad_vec[1] = {E + 1};
  const int64_t bad_w1[2] = {F, E + 1}, bad_w2[2] = {E, F + 1};
  seqk_tensor src = th_tensor_new(SEQK_DTYPE_F32, 3, shape);
  seqk_tensor out = th_tensor_new(SEQK_DTYPE_F32, 3, shape);
  seqk_tensor lens = th_tensor_new(SEQK_DTYPE_I32, 1, len_shape);
  th_fill_uniform(&src, &g_rng, -1.0, 1.0);
  const int32_t lv[B] = {S, 1};
  th_fill_i32(&lens, lv);
  th_poison(&out);
  th_watch_reset();
  th_watch(&src);
  th_watch(&out);
  seqk_encoder_layer_desc d;
  memset(&d, 0, sizeof d);
  d.nhead = H;
  d.activation = SEQK_ACTIVATION_RELU;
  d.layer_norm_eps = 1e-5f;
  d.batch_first = 1;
  const seqk_status INV = SEQK_STATUS_INVALID_VALUE;
  seqk_encoder_layer_weights w = lw.w;
#define ENC(dd, ww, s, o, needle, what)                                                            \
  th_expect_rejected_watched(g_ctx, seqk_transformer_encoder_layer_forward(g_ctx, dd, ww, s, o),   \
                             INV, needle, what)
  ENC(NULL, &w, &src, &out, "desc", "NULL desc");
  ENC(&d, NULL, &src, &out, "w", "NULL weights");
  ENC(&d, &w, NULL, &out, "src", "NULL src");
  ENC(&d, &w, &src, NULL, "out", "NULL out");
  d.nhead = 3;
  ENC(&d, &w, &src, &out, "desc.nhead", "nhead does not divide d_model");
  d.nhead = 0;
  ENC(&d, &w, &src, &out, "desc.nhead", "nhead 0");
  d.nhead = H;
  d.layer_norm_eps = 0.0f;
  ENC(&d, &w, &src, &out, "desc.layer_norm_eps", "eps 0");
  d.layer_norm_eps = 1e-5f;
  d.activation = (seqk_activation)17;
  ENC(&d, &w, &src, &out, "act", "unknown activation");
  d.activation = SEQK_ACTIVATION_GELU;
  w.linear1_weight = th_with_shape(lw.w.linear1_weight, 2, bad_w1);
  ENC(&d, &w, &src, &out, "linear1.weight", "linear1 width");
  w = lw.w;
  w.linear2_weight = th_with_shape(lw.w.linear2_weight, 2, bad_w2);
  ENC(&d, &w, &src, &out, "linear2.weight", "linear2 width");
  w = lw.w;
  w.norm2_bias = th_with_shape(lw.w.norm2_bias, 1, bad_vec);
  ENC(&d, &w, &src, &out, "norm2.bias", "norm2.bias length");
  w = lw.w;
  w.linear1_bias = th_with_dtype(lw.w.linear1_bias, SEQK_DTYPE_F16);
  ENC(&d, &w, &src, &out, "linear1.bias", "linear1.bias dtype");
  w = lw.w;
  w.self_attn.in_proj_weight =
      th_with_shape(lw.w.self_attn.out_proj_weight, 2, lw.w.self_attn.out_proj_weight.shape);
  ENC(&d, &w, &src, &out, "self_attn.in_proj_weight", "in_proj_weight [E,E]");
  w = lw.w;
  d.key_lengths = th_with_dtype(lens, SEQK_DTYPE_F32);
  ENC(&d, &w, &src, &out, "desc.key_lengths", "F32 key_lengths");
  d.key_lengths = th_on_cuda(lens);
  ENC(&d, &w, &src, &out, "desc.key_lengths", "key_lengths on another device");
  d.key_lengths = th_absent(lens);
  const int64_t other[3] = {B, S + 1, E};
  seqk_tensor t = th_with_shape(out, 3, other);
  ENC(&d, &w, &src, &t, "out", "out shape");
  ENC(&d, &w, &src, &src, "out", "out is src");
  ENC(&d, &w, &src, &w.linear1_weight, "out", "out over a weight (and wrong shape)");
#undef ENC
  TH_CHECK(seqk_transformer_encoder_layer_forward(NULL, &d, &w, &src, &out) == INV, "NULL ctx");
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 1305);
  test_layer();
  test_bad_input();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
