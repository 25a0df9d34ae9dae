/*
 * multi_head_attention - multi-head self-attention three ways, all giving the same output.
 *
 * Seeds 003 and 004 (PyTorch, "The Annotated Transformer" style):
 *     query, key, value = [l(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)
 *                          for l, x in zip(self.linears, (query, key, value))]
 *     x, attn = attention(query, key, value)            # softmax(q k^T / sqrt(d_k)) v per head
 *     x = x.transpose(1, 2).contiguous().view(nbatches, -1, self.h * self.d_k)
 *     return self.linears[-1](x)
 *
 *  A. the literal port: seqk_linear for each projection, seqk_split_heads for
 *     .view(B, S, H, d_k).transpose(1, 2), seqk_attention, seqk_merge_heads for
 *     .transpose(1, 2).contiguous().view(B, S, H*d_k), and the output seqk_linear;
 *  B. no copies: .view().transpose(1, 2) only changes strides, and seqk_attention takes any
 *     strides with the last dim contiguous, so the [B, S, E] projections are passed as
 *     [B, H, S, d_k] views and the attention writes straight into a [B, S, E] buffer;
 *  C. seqk_mha_forward, with the weights in torch.nn.MultiheadAttention's layout.
 * It also prints the attention weights averaged over heads, as nn.MultiheadAttention returns
 * them, and checks them against per-head probabilities from seqk_attention_scores + softmax.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "example_util.h"

enum { B = 2, S = 5, E = 8, H = 2, DK = E / H };

/* Rows [r0, r0 + n) of a contiguous 2-D (or 1-D) tensor, as a tensor of its own: how the
   seed's linears[0..2] sit inside nn.MultiheadAttention's in_proj_weight [3E, E]. */
static seqk_tensor rows(const seqk_tensor *t, int64_t r0, int64_t n) {
  const int64_t row_elems = t->ndim == 2 ? t->shape[1] : 1;
  const int64_t shape[2] = {n, row_elems};
  char *p = (char *)t->data + (size_t)(r0 * row_elems) * seqk_dtype_size(t->dtype);
  return seqk_tensor_view(p, t->dtype, t->device, t->ndim, shape);
}

/* A contiguous [B, S, H*DK] tensor seen as [B, H, S, DK]: x.view(B, S, H, DK).transpose(1, 2).
   Element (b, h, s, d) is at b*S*E + s*E + h*DK + d. */
static seqk_tensor heads_view(const seqk_tensor *t) {
  const int64_t shape[4] = {B, H, S, DK}, stride[4] = {S * E, DK, E, 1};
  return seqk_tensor_view_strided(t->data, t->dtype, t->device, 4, shape, stride);
}

enum { IN_X, IN_PROJ_W, IN_PROJ_B, OUT_PROJ_W, OUT_PROJ_B, N_IN };
enum {
  Q,
  K,
  V, /* projections [B,S,E] */
  QH,
  KH,
  VH,
  OH, /* A: split heads [B,H,S,DK] and the attention output per head */
  MERGED,
  OUT_A, /* A: merged heads [B,S,E], output */
  O_VIEW,
  OUT_B, /* B: attention written through a strided view into [B,S,E], output */
  OUT_C,
  ATTN,  /* C: seqk_mha_forward output and head-averaged weights [B,S,S] */
  PROBS, /* per-head probabilities [B,H,S,S], to check ATTN */
  N_OUT
};

static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  const seqk_tensor *x = &in[IN_X];

  /* The projections: linears[0..2] are rows 0..E, E..2E, 2E..3E of in_proj_weight. */
  for (int i = 0; i < 3; ++i) {
    seqk_tensor w = rows(&in[IN_PROJ_W], i * E, E), b = rows(&in[IN_PROJ_B], i * E, E);
    EX_TRY("linear", seqk_linear(ctx, x, &w, &b, &out[Q + i]));
  }

  /* A: split, attend (params NULL: scale 1/sqrt(d_k), no mask), merge, project. */
  for (int i = 0; i < 3; ++i)
    EX_TRY("split_heads", seqk_split_heads(ctx, &out[Q + i], H, &out[QH + i]));
  EX_TRY("attention", seqk_attention(ctx, NULL, &out[QH], &out[KH], &out[VH], &out[OH], NULL));
  EX_TRY("merge_heads", seqk_merge_heads(ctx, &out[OH], &out[MERGED]));
  EX_TRY("linear", seqk_linear(ctx, &out[MERGED], &in[OUT_PROJ_W], &in[OUT_PROJ_B], &out[OUT_A]));

  /* B: the same through views; O_VIEW ends up already "merged". */
  seqk_tensor q = heads_view(&out[Q]), k = heads_view(&out[K]), v = heads_view(&out[V]);
  seqk_tensor o = heads_view(&out[O_VIEW]);
  EX_TRY("attention", seqk_attention(ctx, NULL, &q, &k, &v, &o, NULL));
  EX_TRY("linear", seqk_linear(ctx, &out[O_VIEW], &in[OUT_PROJ_W], &in[OUT_PROJ_B], &out[OUT_B]));

  /* C: one call. Self-attention: query, key and value are all x. */
  seqk_mha_weights w = {in[IN_PROJ_W], in[IN_PROJ_B], in[OUT_PROJ_W], in[OUT_PROJ_B]};
  EX_TRY("mha_forward", seqk_mha_forward(ctx, &w, H, 0, x, x, x, &out[OUT_C], &out[ATTN]));

  /* The per-head probabilities, unfused: scores (scale 0 = 1/sqrt(d_k)), softmax in place. */
  EX_TRY("attention_scores", seqk_attention_scores(ctx, &out[QH], &out[KH], 0.0f, 0, &out[PROBS]));
  EX_TRY("softmax", seqk_softmax(ctx, &out[PROBS], -1, &out[PROBS]));
  return SEQK_STATUS_SUCCESS;
}

/* nn.MultiheadAttention in plain loops (double), for the check. */
static void mha_in_c(const float *x, const float *w_in, const float *b_in, const float *w_out,
                     const float *b_out, float *y) {
  static double proj[3][B][S][E], ctxv[B][S][E];
  for (int i = 0; i < 3; ++i)
    for (int b = 0; b < B; ++b)
      for (int s = 0; s < S; ++s)
        for (int r = 0; r < E; ++r) {
          double acc = b_in[i * E + r];
          for (int c = 0; c < E; ++c) acc += w_in[(i * E + r) * E + c] * x[(b * S + s) * E + c];
          proj[i][b][s][r] = acc;
        }
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int s = 0; s < S; ++s) {
        double p[S], max = -INFINITY, sum = 0;
        for (int t = 0; t < S; ++t) {
          p[t] = 0;
          for (int d = 0; d < DK; ++d)
            p[t] += proj[0][b][s][h * DK + d] * proj[1][b][t][h * DK + d];
          p[t] /= sqrt((double)DK);
          max = fmax(max, p[t]);
        }
        for (int t = 0; t < S; ++t) sum += (p[t] = exp(p[t] - max));
        for (int d = 0; d < DK; ++d) {
          double acc = 0;
          for (int t = 0; t < S; ++t) acc += p[t] / sum * proj[2][b][t][h * DK + d];
          ctxv[b][s][h * DK + d] = acc;
        }
      }
  for (int b = 0; b < B; ++b)
    for (int s = 0; s < S; ++s)
      for (int r = 0; r < E; ++r) {
        double acc = b_out[r];
        for (int c = 0; c < E; ++c) acc += w_out[r * E + c] * ctxv[b][s][c];
        y[(b * S + s) * E + r] = (float)acc;
      }
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;

  /* Inputs and weights from the formula (x doubled, for livelier attention). */
  static float x[B * S * E], w_in[3 * E * E], b_in[3 * E], w_out[E * E], b_out[E];
  ex_fill(x, B * S * E, 7);
  for (int i = 0; i < B * S * E; ++i) x[i] *= 2.0f;
  ex_fill(w_in, 3 * E * E, 3);
  ex_fill(b_in, 3 * E, 4);
  ex_fill(w_out, E * E, 5);
  ex_fill(b_out, E, 6);
  printf("weights: " EX_WEIGHT_FORMULA
         "\n"
         "  in_proj_weight id 3, in_proj_bias id 4, out_proj.weight id 5, out_proj.bias id 6, "
         "x: 2 * (id 7)\n");
  printf(
      "torch.nn.MultiheadAttention(%d, %d, batch_first=True).state_dict() -> seqk_mha_weights:\n"
      "  in_proj_weight  [%d, %d]  rows 0..%d: W_q (the seed's linears[0].weight), "
      "%d..%d: W_k, %d..%d: W_v\n"
      "  in_proj_bias    [%d]     the three biases, in the same order\n"
      "  out_proj.weight [%d, %d]   linears[3].weight;  out_proj.bias [%d]\n",
      E, H, 3 * E, E, E - 1, E, 2 * E - 1, 2 * E, 3 * E - 1, 3 * E, E, E, E);

  const int64_t sh_x[3] = {B, S, E}, sh_w_in[2] = {3 * E, E}, sh_b_in[1] = {3 * E};
  const int64_t sh_w_out[2] = {E, E}, sh_b_out[1] = {E};
  const int64_t sh_heads[4] = {B, H, S, DK}, sh_attn[3] = {B, S, S}, sh_probs[4] = {B, H, S, S};
  seqk_tensor in[N_IN], out[N_OUT];
  in[IN_X] = seqk_tensor_view(x, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_x);
  in[IN_PROJ_W] = seqk_tensor_view(w_in, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, sh_w_in);
  in[IN_PROJ_B] = seqk_tensor_view(b_in, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, sh_b_in);
  in[OUT_PROJ_W] = seqk_tensor_view(w_out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, sh_w_out);
  in[OUT_PROJ_B] = seqk_tensor_view(b_out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, sh_b_out);

  /* Every output gets its own slice of one array: B*H*S*S is the largest of them. */
  static float buf[N_OUT][B * H * S * S];
  for (int i = 0; i < N_OUT; ++i) {
    int is_heads = (i >= QH && i <= OH);
    int ndim = is_heads || i == PROBS ? 4 : 3;
    const int64_t *shape = is_heads ? sh_heads : i == ATTN ? sh_attn : i == PROBS ? sh_probs : sh_x;
    out[i] = seqk_tensor_view(buf[i], SEQK_DTYPE_F32, SEQK_DEVICE_CPU, ndim, shape);
  }

  ex_run_model(ctx, "multi_head_attention", model, NULL, N_IN, in, N_OUT, out);

  ex_print("x", &in[IN_X]);
  ex_print("output (seqk_mha_forward)", &out[OUT_C]);
  ex_print("attention weights averaged over heads", &out[ATTN]);

  float want[B * S * E];
  mha_in_c(x, w_in, b_in, w_out, b_out, want);
  ex_expect_values("A: linear, split_heads, attention, merge_heads, linear against plain C",
                   &out[OUT_A], want, 1e-6, 1e-5);
  ex_expect_close("B: attention on strided views, against A", &out[OUT_B], &out[OUT_A], 1e-6, 1e-5);
  ex_expect_close("C: seqk_mha_forward, against A", &out[OUT_C], &out[OUT_A], 1e-6, 1e-5);

  /* mean over heads of the per-head probabilities */
  float mean[B * S * S];
  for (int b = 0; b < B; ++b)
    for (int ij = 0; ij < S * S; ++ij) {
      double acc = 0;
      for (int h = 0; h < H; ++h) acc += buf[PROBS][(b * H + h) * S * S + ij];
      mean[b * S * S + ij] = (float)(acc / H);
    }
  ex_expect_values("attention weights against the mean of the per-head softmax", &out[ATTN], mean,
                   1e-6, 1e-5);

  seqk_context_destroy(ctx);
  printf("multi_head_attention: all checks passed\n");
  return 0;
}
