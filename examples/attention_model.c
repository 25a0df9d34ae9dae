/*
 * attention_model - the AttentionModel and BasicAttention of seed 003, with seqk:
 *
 *     class AttentionModel(nn.Module):            # LSTM -> Linear -> softmax(dim=1) -> bmm
 *         def forward(self, input):               # input [T, N, I] (seq-first)
 *             out, _ = self.lstm(input, (h0, c0)) # h0 = c0 = 0
 *             attn_weights = torch.softmax(self.attention(out), dim=1)
 *             out = torch.bmm(attn_weights.transpose(1, 2), out)
 *             return out.view(-1, self.hidden_size)
 *
 *     class BasicAttention(nn.Module):
 *         def forward(self, encoder_outputs, decoder_hidden):   # [B, S, H], [B, H]
 *             attn_weights = torch.bmm(encoder_outputs, decoder_hidden.unsqueeze(2)).squeeze(2)
 *             attn_weights = torch.softmax(attn_weights, dim=1)
 *             context = torch.bmm(attn_weights.unsqueeze(1), encoder_outputs).squeeze(1)
 *             return context, attn_weights
 *
 * Note the seed's softmax(dim=1) in AttentionModel: out is [T, N, H], so it normalises over the
 * batch N, for each time step and feature; seqk_softmax takes the same dim. Each bmm is
 * seqk_attention_values over strided views (the transpose is a view, no copy): for each t,
 * attn^T [H, N] times out [N, H]. BasicAttention is one-query attention with scale 1: the
 * scores, softmax and values unfused (to return the weights), and seqk_attention fused, which
 * must agree. The LSTM is checked against torch's equations in tests/test_rnn.c; here everything
 * after it is checked in plain C from the LSTM output seqk gave.
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"

enum { T = 5, N = 2, I = 3, HID = 4, S = 6 };

/* in: x [T,N,I], w_ih [4H,I], w_hh [4H,H], b_ih [4H], b_hh [4H], attention.weight [H,H],
       attention.bias [H], encoder_outputs [N,S,H], decoder_hidden [N,H]
   out: lstm out [T,N,H], attention logits/weights [T,N,H], model output [T*H,H],
        BasicAttention weights [N,S], context [N,H], fused context [N,H] */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  const seqk_rnn_desc desc = {SEQK_RNN_MODE_LSTM, I, HID, 1, 0, 0};
  const seqk_rnn_weights w = {&in[1], &in[2], &in[3], &in[4]};
  EX_TRY("rnn_forward",
         seqk_rnn_forward(ctx, &desc, &w, &in[0], NULL, NULL, NULL, &out[0], NULL, NULL));
  EX_TRY("linear", seqk_linear(ctx, &out[0], &in[5], &in[6], &out[1]));
  EX_TRY("softmax", seqk_softmax(ctx, &out[1], 1, &out[1]));
  /* bmm(attn^T, out) per t: p [T,1,H,N] with p[t,0,i,n] = attn[t,n,i]; v = out as [T,1,N,H]. */
  const int64_t p_shape[4] = {T, 1, HID, N}, p_stride[4] = {N * HID, 0, 1, HID};
  const int64_t v_shape[4] = {T, 1, N, HID}, o_shape[4] = {T, 1, HID, HID};
  seqk_tensor p =
      seqk_tensor_view_strided(out[1].data, SEQK_DTYPE_F32, out[1].device, 4, p_shape, p_stride);
  seqk_tensor v = seqk_tensor_view(out[0].data, SEQK_DTYPE_F32, out[0].device, 4, v_shape);
  seqk_tensor o = seqk_tensor_view(out[2].data, SEQK_DTYPE_F32, out[2].device, 4, o_shape);
  EX_TRY("attention_values", seqk_attention_values(ctx, &p, &v, &o));

  /* BasicAttention: q = decoder_hidden as [N,1,1,H], k = v = encoder_outputs as [N,1,S,H]. */
  const int64_t q_shape[4] = {N, 1, 1, HID}, k_shape[4] = {N, 1, S, HID};
  const int64_t s_shape[4] = {N, 1, 1, S};
  seqk_tensor q = seqk_tensor_view(in[8].data, SEQK_DTYPE_F32, in[8].device, 4, q_shape);
  seqk_tensor k = seqk_tensor_view(in[7].data, SEQK_DTYPE_F32, in[7].device, 4, k_shape);
  seqk_tensor s = seqk_tensor_view(out[3].data, SEQK_DTYPE_F32, out[3].device, 4, s_shape);
  seqk_tensor ctx_u = seqk_tensor_view(out[4].data, SEQK_DTYPE_F32, out[4].device, 4, q_shape);
  seqk_tensor ctx_f = seqk_tensor_view(out[5].data, SEQK_DTYPE_F32, out[5].device, 4, q_shape);
  EX_TRY("attention_scores", seqk_attention_scores(ctx, &q, &k, 1.0f, 0, &s));
  EX_TRY("softmax", seqk_softmax(ctx, &s, -1, &s));
  EX_TRY("attention_values", seqk_attention_values(ctx, &s, &k, &ctx_u));
  seqk_attention_params params = {0};
  params.scale = 1.0f;
  EX_TRY("attention", seqk_attention(ctx, &params, &q, &k, &k, &ctx_f, NULL));
  return SEQK_STATUS_SUCCESS;
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;
  static float x[T * N * I], w_ih[4 * HID * I], w_hh[4 * HID * HID], b_ih[4 * HID], b_hh[4 * HID];
  static float wa[HID * HID], ba[HID], enc[N * S * HID], dec[N * HID];
  static float lstm_out[T * N * HID], attn[T * N * HID], y[T * HID * HID];
  static float weights[N * S], context[N * HID], context_fused[N * HID];
  ex_fill(x, T * N * I, 1);
  ex_fill(w_ih, 4 * HID * I, 2);
  ex_fill(w_hh, 4 * HID * HID, 3);
  ex_fill(b_ih, 4 * HID, 4);
  ex_fill(b_hh, 4 * HID, 5);
  ex_fill(wa, HID * HID, 6);
  ex_fill(ba, HID, 7);
  ex_fill(enc, N * S * HID, 8);
  ex_fill(dec, N * HID, 9);
  for (int i = 0; i < N * HID; ++i) dec[i] *= 4.0f; /* sharper weights than a near-uniform row */
  printf("weights: " EX_WEIGHT_FORMULA "\n  decoder_hidden: 4 * (id 9)\n");

  const int64_t sh_x[3] = {T, N, I}, sh_wih[2] = {4 * HID, I}, sh_whh[2] = {4 * HID, HID};
  const int64_t sh_b[1] = {4 * HID}, sh_wa[2] = {HID, HID}, sh_ba[1] = {HID};
  const int64_t sh_enc[3] = {N, S, HID}, sh_dec[2] = {N, HID}, sh_out[3] = {T, N, HID};
  const int64_t sh_y[2] = {T * HID, HID}, sh_w[2] = {N, S}, sh_c[2] = {N, HID};
  const seqk_dtype f32 = SEQK_DTYPE_F32;
  const seqk_device cpu = SEQK_DEVICE_CPU;
  seqk_tensor in[9] = {
      seqk_tensor_view(x, f32, cpu, 3, sh_x),      seqk_tensor_view(w_ih, f32, cpu, 2, sh_wih),
      seqk_tensor_view(w_hh, f32, cpu, 2, sh_whh), seqk_tensor_view(b_ih, f32, cpu, 1, sh_b),
      seqk_tensor_view(b_hh, f32, cpu, 1, sh_b),   seqk_tensor_view(wa, f32, cpu, 2, sh_wa),
      seqk_tensor_view(ba, f32, cpu, 1, sh_ba),    seqk_tensor_view(enc, f32, cpu, 3, sh_enc),
      seqk_tensor_view(dec, f32, cpu, 2, sh_dec)};
  seqk_tensor out[6] = {seqk_tensor_view(lstm_out, f32, cpu, 3, sh_out),
                        seqk_tensor_view(attn, f32, cpu, 3, sh_out),
                        seqk_tensor_view(y, f32, cpu, 2, sh_y),
                        seqk_tensor_view(weights, f32, cpu, 2, sh_w),
                        seqk_tensor_view(context, f32, cpu, 2, sh_c),
                        seqk_tensor_view(context_fused, f32, cpu, 2, sh_c)};
  ex_run_model(ctx, "attention_model", model, NULL, 9, in, 6, out);
  ex_print("AttentionModel output, out.view(-1, 4), shape [20, 4]", &out[2]);
  ex_print("BasicAttention weights, shape [2, 6]", &out[3]);
  ex_print("BasicAttention context, shape [2, 4]", &out[4]);

  /* Plain C from the LSTM output: Linear, softmax over n, then attn^T . out per t. */
  static float want_attn[T * N * HID], want_y[T * HID * HID];
  for (int t = 0; t < T; ++t) {
    double logit[N][HID];
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < HID; ++o) {
        logit[n][o] = ba[o];
        for (int c = 0; c < HID; ++c)
          logit[n][o] += (double)lstm_out[(t * N + n) * HID + c] * wa[o * HID + c];
      }
    for (int o = 0; o < HID; ++o) {
      double max = -INFINITY, sum = 0;
      for (int n = 0; n < N; ++n) max = fmax(max, logit[n][o]);
      for (int n = 0; n < N; ++n) sum += exp(logit[n][o] - max);
      for (int n = 0; n < N; ++n)
        want_attn[(t * N + n) * HID + o] = (float)(exp(logit[n][o] - max) / sum);
    }
    for (int i = 0; i < HID; ++i)
      for (int j = 0; j < HID; ++j) {
        double acc = 0;
        for (int n = 0; n < N; ++n)
          acc += (double)want_attn[(t * N + n) * HID + i] * lstm_out[(t * N + n) * HID + j];
        want_y[(t * HID + i) * HID + j] = (float)acc;
      }
  }
  ex_expect_values("AttentionModel softmax(attention(out), dim=1) in plain C", &out[1], want_attn,
                   1e-6, 1e-5);
  ex_expect_values("AttentionModel bmm(attn^T, out) in plain C", &out[2], want_y, 1e-6, 1e-5);

  static float want_w[N * S], want_c[N * HID];
  for (int b = 0; b < N; ++b) {
    double s[S], max = -INFINITY, sum = 0;
    for (int j = 0; j < S; ++j) {
      s[j] = 0;
      for (int c = 0; c < HID; ++c) s[j] += (double)enc[(b * S + j) * HID + c] * dec[b * HID + c];
      max = fmax(max, s[j]);
    }
    for (int j = 0; j < S; ++j) sum += (s[j] = exp(s[j] - max));
    for (int j = 0; j < S; ++j) want_w[b * S + j] = (float)(s[j] / sum);
    for (int c = 0; c < HID; ++c) {
      double acc = 0;
      for (int j = 0; j < S; ++j) acc += s[j] / sum * enc[(b * S + j) * HID + c];
      want_c[b * HID + c] = (float)acc;
    }
  }
  ex_expect_values("BasicAttention weights in plain C", &out[3], want_w, 1e-6, 1e-5);
  ex_expect_values("BasicAttention context in plain C", &out[4], want_c, 1e-6, 1e-5);
  ex_expect_close("BasicAttention context: fused seqk_attention against the unfused ops", &out[5],
                  &out[4], 1e-6, 1e-5);

  seqk_context_destroy(ctx);
  printf("attention_model: all checks passed\n");
  return 0;
}
