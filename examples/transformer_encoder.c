/*
 * transformer_encoder - the TransformerEncoder of seed 003, with seqk:
 *
 *     class TransformerEncoder(nn.Module):
 *         def __init__(self, input_size, hidden_size, num_heads, num_layers):
 *             self.layers = nn.ModuleList([nn.TransformerEncoderLayer(hidden_size, num_heads)
 *                                          for _ in range(num_layers)])
 *             self.embedding = nn.Linear(input_size, hidden_size)
 *         def forward(self, src):
 *             src = self.embedding(src)
 *             for layer in self.layers:
 *                 src = layer(src)
 *             return src
 *
 * nn.TransformerEncoderLayer(d_model, nhead) with its defaults: dim_feedforward 2048, relu,
 * layer_norm_eps 1e-5, batch_first False (src is [S, B, E]), norm_first False; eval mode (no
 * dropout). One seqk_linear for the embedding, one seqk_transformer_encoder_layer_forward per
 * layer (weights under the state_dict names), ping-ponging between two buffers. Checked against
 * the layer's equations written out in double below, with no PyTorch at run time.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "example_util.h"

enum { S = 5, B = 2, IN = 6, E = 8, H = 2, F = 2048, LAYERS = 2 };

/* Parameter ids: the embedding, then 12 per layer in state_dict order. */
enum {
  P_IN_W,
  P_IN_B,
  P_OUT_W,
  P_OUT_B,
  P_L1_W,
  P_L1_B,
  P_L2_W,
  P_L2_B,
  P_N1_W,
  P_N1_B,
  P_N2_W,
  P_N2_B
};
static const int64_t k_numel[12] = {3 * E * E, 3 * E, E *E, E, F *E, F, E *F, E, E, E, E, E};

static float emb_w[E * IN], emb_b[E];
static float params[LAYERS][12][F * E];

/* in: src [S,B,IN], the embedding's weight and bias, then each layer's 12 parameters.
   out: the encoder output [S,B,E], and a scratch buffer of the same shape. */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  /* The layers alternate between out[0] and out[1], so that the last one writes out[0]. */
  seqk_tensor *x = LAYERS % 2 ? &out[1] : &out[0];
  EX_TRY("linear", seqk_linear(ctx, &in[0], &in[1], &in[2], x));
  seqk_encoder_layer_desc d;
  memset(&d, 0, sizeof d);
  d.nhead = H;
  d.activation = SEQK_ACTIVATION_RELU;
  d.layer_norm_eps = 1e-5f;
  d.batch_first = 0;
  d.norm_first = 0;
  for (int l = 0; l < LAYERS; ++l) {
    const seqk_tensor *p = in + 3 + 12 * l;
    seqk_encoder_layer_weights w;
    w.self_attn = (seqk_mha_weights){p[P_IN_W], p[P_IN_B], p[P_OUT_W], p[P_OUT_B]};
    w.linear1_weight = p[P_L1_W];
    w.linear1_bias = p[P_L1_B];
    w.linear2_weight = p[P_L2_W];
    w.linear2_bias = p[P_L2_B];
    w.norm1_weight = p[P_N1_W];
    w.norm1_bias = p[P_N1_B];
    w.norm2_weight = p[P_N2_W];
    w.norm2_bias = p[P_N2_B];
    seqk_tensor *y = x == &out[0] ? &out[1] : &out[0];
    EX_TRY("transformer_encoder_layer", seqk_transformer_encoder_layer_forward(ctx, &d, &w, x, y));
    x = y;
  }
  return SEQK_STATUS_SUCCESS;
}

/* ---- the same in double, from torch's equations -------------------------------------------------- */

static void dense(const double *x, int rows, int in, const float *W, const float *b, int out,
                  double *y) {
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double acc = b[o];
      for (int i = 0; i < in; ++i) acc += x[r * in + i] * W[o * in + i];
      y[r * out + o] = acc;
    }
}

static void norm(double *x, const float *g, const float *b) {
  for (int r = 0; r < S * B; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < E; ++c) mean += x[r * E + c] / E;
    for (int c = 0; c < E; ++c) var += (x[r * E + c] - mean) * (x[r * E + c] - mean) / E;
    for (int c = 0; c < E; ++c)
      x[r * E + c] = (x[r * E + c] - mean) / sqrt(var + 1e-5) * g[c] + b[c];
  }
}

/* x [S,B,E] (rows s*B + b), one post-norm layer in place. */
static void layer(double *x, float p[12][F * E]) {
  static double qkv[S * B * 3 * E], att[S * B * E], a[S * B * E], f[S * B * F], g[S * B * E];
  const int hd = E / H;
  dense(x, S * B, E, p[P_IN_W], p[P_IN_B], 3 * E, qkv);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < S; ++i) {
        double s[S], max = -INFINITY, sum = 0;
        for (int j = 0; j < S; ++j) {
          s[j] = 0;
          for (int c = 0; c < hd; ++c)
            s[j] +=
                qkv[(i * B + b) * 3 * E + h * hd + c] * qkv[(j * B + b) * 3 * E + E + h * hd + c];
          s[j] /= sqrt((double)hd);
          max = fmax(max, s[j]);
        }
        for (int j = 0; j < S; ++j) sum += (s[j] = exp(s[j] - max));
        for (int c = 0; c < hd; ++c) {
          double acc = 0;
          for (int j = 0; j < S; ++j)
            acc += s[j] / sum * qkv[(j * B + b) * 3 * E + 2 * E + h * hd + c];
          att[(i * B + b) * E + h * hd + c] = acc;
        }
      }
  dense(att, S * B, E, p[P_OUT_W], p[P_OUT_B], E, a);
  for (int i = 0; i < S * B * E; ++i) x[i] += a[i];
  norm(x, p[P_N1_W], p[P_N1_B]);
  dense(x, S * B, E, p[P_L1_W], p[P_L1_B], F, f);
  for (int i = 0; i < S * B * F; ++i) f[i] = f[i] > 0 ? f[i] : 0;
  dense(f, S * B, F, p[P_L2_W], p[P_L2_B], E, g);
  for (int i = 0; i < S * B * E; ++i) x[i] += g[i];
  norm(x, p[P_N2_W], p[P_N2_B]);
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;
  static float src[S * B * IN], y[S * B * E], scratch[S * B * E];
  ex_fill(src, S * B * IN, 1);
  ex_fill(emb_w, E * IN, 2);
  ex_fill(emb_b, E, 3);
  for (int l = 0; l < LAYERS; ++l)
    for (int p = 0; p < 12; ++p) {
      ex_fill(params[l][p], k_numel[p], 10 + 12 * l + p);
      /* Keep the layer norm gains near 1 and the 2048-wide linear2 from dwarfing the rest. */
      for (int64_t i = 0; i < k_numel[p]; ++i) {
        if (p == P_N1_W || p == P_N2_W) params[l][p][i] += 1.0f;
        if (p == P_L2_W) params[l][p][i] *= 0.05f;
      }
    }
  printf("weights: " EX_WEIGHT_FORMULA "\n  norm weights + 1, linear2.weight * 0.05\n");

  const int64_t sh_src[3] = {S, B, IN}, sh_y[3] = {S, B, E}, sh_ew[2] = {E, IN}, sh_eb[1] = {E};
  static const int64_t shapes[12][2] = {{3 * E, E}, {3 * E, 0}, {E, E}, {E, 0}, {F, E}, {F, 0},
                                        {E, F},     {E, 0},     {E, 0}, {E, 0}, {E, 0}, {E, 0}};
  seqk_tensor in[3 + 12 * LAYERS], out[2];
  in[0] = seqk_tensor_view(src, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_src);
  in[1] = seqk_tensor_view(emb_w, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, sh_ew);
  in[2] = seqk_tensor_view(emb_b, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, sh_eb);
  for (int l = 0; l < LAYERS; ++l)
    for (int p = 0; p < 12; ++p)
      in[3 + 12 * l + p] = seqk_tensor_view(params[l][p], SEQK_DTYPE_F32, SEQK_DEVICE_CPU,
                                            shapes[p][1] ? 2 : 1, shapes[p]);
  out[0] = seqk_tensor_view(y, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_y);
  out[1] = seqk_tensor_view(scratch, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_y);

  ex_run_model(ctx, "transformer_encoder", model, NULL, 3 + 12 * LAYERS, in, 2, out);
  ex_print("TransformerEncoder(6, 8, 2 heads, 2 layers) output, shape [5, 2, 8]", &out[0]);

  static double x[S * B * E];
  static float want[S * B * E];
  for (int r = 0; r < S * B; ++r)
    for (int o = 0; o < E; ++o) {
      double acc = emb_b[o];
      for (int i = 0; i < IN; ++i) acc += (double)src[r * IN + i] * emb_w[o * IN + i];
      x[r * E + o] = acc;
    }
  for (int l = 0; l < LAYERS; ++l) layer(x, params[l]);
  for (int i = 0; i < S * B * E; ++i) want[i] = (float)x[i];
  ex_expect_values("encoder output against torch's equations in double", &out[0], want, 1e-5, 1e-4);

  seqk_context_destroy(ctx);
  printf("transformer_encoder: all checks passed\n");
  return 0;
}
