/*
 * channel_attention - the channel attention module (CAM, from DANet) of seed 004, with seqk.
 *
 *     proj_query = x.view(B, C, -1)                         # X: [B, C, N], N = H*W
 *     proj_key = x.view(B, C, -1).permute(0, 2, 1)
 *     energy = torch.bmm(proj_query, proj_key)              # X X^T: [B, C, C]
 *     energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
 *     attention = self.softmax(energy_new)                  # softmax over the last dim
 *     out = torch.bmm(attention, x.view(B, C, -1))          # [B, C, N]
 *     out = self.gamma * out.view(B, C, H, W) + x
 *
 * This is attention in which the channels are the "sequence" and the N pixels the features:
 * q = k = v = X, seen as [B, 1, C, N] (one head).
 * Why softmax(max - energy) = softmax(-energy): the max is taken along the row, so it is the same
 * number for every element of the row, and softmax(z + c) = softmax(z) for any constant c added
 * to a whole row (exp(c) cancels between numerator and denominator). What is left is
 * softmax(-1 * X X^T): seqk_attention with scale = -1.
 * (The torch module subtracts the max itself; seqk's softmax always subtracts the row max
 * internally, so no overflow either way.)
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"

enum { B = 2, C = 4, HH = 2, WW = 3, N = HH * WW };

/* x [B, C, H, W], contiguous, seen as [B, 1, C, N] without copying. */
static seqk_tensor as_one_head(const seqk_tensor *t, int64_t rows, int64_t cols) {
  const int64_t shape[4] = {B, 1, rows, cols};
  return seqk_tensor_view(t->data, t->dtype, t->device, 4, shape);
}

/* in:  x [B,C,H,W]
   out: attention . X [B,C,N], energy [B,C,C], attention [B,C,C] */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  seqk_tensor x = as_one_head(&in[0], C, N);
  seqk_tensor ax = as_one_head(&out[0], C, N);
  seqk_tensor energy = as_one_head(&out[1], C, C), attention = as_one_head(&out[2], C, C);

  /* What the module computes, fused: softmax(-X X^T) X. */
  seqk_attention_params params = {0};
  params.scale = -1.0f;
  EX_TRY("attention", seqk_attention(ctx, &params, &x, &x, &x, &ax, NULL));

  /* The same attention matrix unfused, to look at: energy = X X^T (scale 1), then
     softmax(-energy) from scores with scale -1, softmax in place. */
  EX_TRY("attention_scores", seqk_attention_scores(ctx, &x, &x, 1.0f, 0, &energy));
  EX_TRY("attention_scores", seqk_attention_scores(ctx, &x, &x, -1.0f, 0, &attention));
  EX_TRY("softmax", seqk_softmax(ctx, &attention, -1, &attention));
  return SEQK_STATUS_SUCCESS;
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;

  static float x[B * C * N], ax[B * C * N], energy[B * C * C], attention[B * C * C];
  ex_fill(x, B * C * N, 8);
  for (int i = 0; i < B * C * N; ++i) x[i] *= 2.0f;
  /* gamma starts at 0 in the module (out = x); use a value a trained model might have. */
  const float gamma = 0.5f;
  printf("weights: " EX_WEIGHT_FORMULA "\n  x: 2 * (id 8); gamma = %.2f\n", gamma);

  const int64_t sh_x[4] = {B, C, HH, WW}, sh_cn[3] = {B, C, N}, sh_cc[3] = {B, C, C};
  seqk_tensor in[1], out[3];
  in[0] = seqk_tensor_view(x, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, sh_x);
  out[0] = seqk_tensor_view(ax, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_cn);
  out[1] = seqk_tensor_view(energy, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_cc);
  out[2] = seqk_tensor_view(attention, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, sh_cc);

  ex_run_model(ctx, "channel_attention", model, NULL, 1, in, 3, out);

  /* The residual, out = gamma * (attention . X) + x: elementwise, so plain C here (seqk has
     attention and recurrent ops, no elementwise ones; on a GPU this is one line of your own
     kernel, or fold gamma into whatever reads the result). */
  static float result[B * C * N];
  for (int i = 0; i < B * C * N; ++i) result[i] = gamma * ax[i] + x[i];
  seqk_tensor result_t = seqk_tensor_view(result, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, sh_x);

  ex_print("x, shape [2, 4, 2, 3]", &in[0]);
  ex_print("energy = X X^T, shape [2, 4, 4]", &out[1]);
  ex_print("attention = softmax(max(energy) - energy) = softmax(-energy)", &out[2]);
  ex_print("out = gamma * (attention . X) + x", &result_t);

  /* The module's formula literally, in double: max minus energy, softmax, bmm, residual. */
  static float want_energy[B * C * C], want_attention[B * C * C], want_out[B * C * N];
  for (int b = 0; b < B; ++b) {
    const float *X = x + b * C * N;
    double e[C][C];
    for (int i = 0; i < C; ++i)
      for (int j = 0; j < C; ++j) {
        e[i][j] = 0;
        for (int n = 0; n < N; ++n) e[i][j] += (double)X[i * N + n] * X[j * N + n];
        want_energy[(b * C + i) * C + j] = (float)e[i][j];
      }
    for (int i = 0; i < C; ++i) {
      double max = e[i][0], e_new[C], top = -INFINITY, sum = 0, a[C];
      for (int j = 1; j < C; ++j) max = fmax(max, e[i][j]);
      for (int j = 0; j < C; ++j) top = fmax(top, e_new[j] = max - e[i][j]);
      for (int j = 0; j < C; ++j) sum += (a[j] = exp(e_new[j] - top));
      for (int j = 0; j < C; ++j) want_attention[(b * C + i) * C + j] = (float)(a[j] /= sum);
      for (int n = 0; n < N; ++n) {
        double acc = 0;
        for (int j = 0; j < C; ++j) acc += a[j] * X[j * N + n];
        want_out[(b * C + i) * N + n] = (float)(gamma * acc + X[i * N + n]);
      }
    }
  }
  ex_expect_values("energy against plain C", &out[1], want_energy, 1e-6, 1e-6);
  ex_expect_values("softmax(-energy) against softmax(max - energy) in plain C", &out[2],
                   want_attention, 1e-6, 1e-5);
  ex_expect_values("out (seqk_attention, scale -1) against the module's formula in plain C",
                   &result_t, want_out, 1e-6, 1e-5);

  seqk_context_destroy(ctx);
  printf("channel_attention: all checks passed\n");
  return 0;
}
