/*
 * char_rnn - the "hello" -> "ohlol" character model of seed 003, and its LSTM / GRU /
 * bidirectional LSTM variants, with seqk; the weights laid out as PyTorch exports them.
 *
 * Seed 003 (PyTorch):
 *     num_class = 4; hidden_size = 8; embedding_size = 10; num_layers = 2; seq_len = 5
 *     index2char = ['e', 'h', 'l', 'o']
 *     x_data = [[1, 0, 2, 2, 3]]                                  # "hello", [batch 1, seq 5]
 *     self.emb = torch.nn.Embedding(num_class, embedding_size)
 *     self.rnn = torch.nn.RNN(input_size=embedding_size, hidden_size=hidden_size,
 *                             num_layers=num_layers, batch_first=True)
 *     self.fc = torch.nn.Linear(hidden_size, num_class)
 *     forward: x = self.emb(x); x, _ = self.rnn(x, zeros); x = self.fc(x)
 *
 * Exporting from PyTorch: model.state_dict() holds, per layer l (and "_reverse" for the second
 * direction of a bidirectional layer), weight_ih_l{l} [G*H, I_l], weight_hh_l{l} [G*H, H],
 * bias_ih_l{l} [G*H], bias_hh_l{l} [G*H], with G = 1 (RNN), 4 (LSTM: gates i, f, g, o), 3 (GRU:
 * r, z, n). seqk_rnn_weights takes four arrays of tensors (w_ih, w_hh, b_ih, b_hh), each entry
 * l*D + d for layer l and direction d (D = 2 if bidirectional), in exactly that layout: save the
 * tensors as they are, no transposing or reordering of gates.
 * The weights here are not trained; they come from a fixed formula, so the predicted string is
 * not "ohlol" (training is what gets it there).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_util.h"

enum { NUM_CLASS = 4, HIDDEN = 8, EMBED = 10, LAYERS = 2, SEQ = 5 };
static const char index2char[NUM_CLASS] = {'e', 'h', 'l', 'o'};

/* ---- parameters: memory from a pool, values from the formula, printed as a state_dict ------- */
static float pool[8192];
static int64_t pool_used;

static seqk_tensor param(const char *name, int id, int ndim, int64_t rows, int64_t cols) {
  const int64_t shape[2] = {rows, cols};
  int64_t n = ndim == 2 ? rows * cols : rows;
  if (pool_used + n > (int64_t)(sizeof pool / sizeof pool[0])) {
    fprintf(stderr, "FAILED: the parameter pool is too small for %s\n", name);
    exit(1);
  }
  float *p = ex_fill(pool + pool_used, n, id);
  pool_used += n;
  char shape_text[32];
  if (ndim == 2)
    snprintf(shape_text, sizeof shape_text, "[%lld, %lld]", (long long)rows, (long long)cols);
  else
    snprintf(shape_text, sizeof shape_text, "[%lld]", (long long)rows);
  printf("  %-28s %-9s", name, shape_text);
  return seqk_tensor_view(p, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, ndim, shape);
}

/* The 4*L*D tensors of an nn.RNN/LSTM/GRU, stored as w_ih[0..n), w_hh[0..n), b_ih[0..n),
   b_hh[0..n) with n = L*D, so that seqk_rnn_weights can point straight into the array. */
static void rnn_params(const char *prefix, const seqk_rnn_desc *desc, int first_id,
                       seqk_tensor *dst) {
  const int G = desc->mode == SEQK_RNN_MODE_LSTM ? 4 : desc->mode == SEQK_RNN_MODE_GRU ? 3 : 1;
  const int D = desc->bidirectional ? 2 : 1, n = desc->num_layers * D, H = desc->hidden_size;
  const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  const char *seqk_names[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
  for (int l = 0; l < desc->num_layers; ++l)
    for (int d = 0; d < D; ++d)
      for (int k = 0; k < 4; ++k) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s_l%d%s", prefix, kinds[k], l, d ? "_reverse" : "");
        int64_t in = l == 0 ? desc->input_size : D * H;
        int64_t cols = k == 0 ? in : H;
        int slot = k * n + l * D + d;
        dst[slot] = param(name, first_id + slot, k < 2 ? 2 : 1, (int64_t)G * H, cols);
        printf(" -> %s[%d]\n", seqk_names[k], l * D + d);
      }
}

/* ---- the models, written once for tensors on any device ------------------------------------ */

/* The seed's model. in: indices I32 [1,SEQ], emb.weight, fc.weight, fc.bias, then the RNN's
   4*LAYERS tensors (rnn_params order). out: embedded [1,SEQ,EMBED], y [1,SEQ,HIDDEN],
   hn [LAYERS,1,HIDDEN], logits [1,SEQ,NUM_CLASS]. */
static seqk_status char_model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                              seqk_tensor *out, const char **failed_op) {
  const seqk_rnn_desc *desc = user;
  const int n = desc->num_layers;
  const seqk_tensor *rnn = &in[4];
  seqk_rnn_weights w = {&rnn[0], &rnn[n], &rnn[2 * n], &rnn[3 * n]};
  EX_TRY("embedding", seqk_embedding(ctx, &in[0], &in[1], &out[0]));
  /* h0 = NULL: zeros, as in the seed. No lengths: every sequence has all SEQ steps. */
  EX_TRY("rnn_forward",
         seqk_rnn_forward(ctx, desc, &w, &out[0], NULL, NULL, NULL, &out[1], &out[2], NULL));
  EX_TRY("linear", seqk_linear(ctx, &out[1], &in[2], &in[3], &out[3]));
  return SEQK_STATUS_SUCCESS;
}

/* One nn.RNN/LSTM/GRU layer stack. in: x, then the 4*L*D tensors. out: y, hn (, cn for LSTM). */
static seqk_status rnn_model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                             seqk_tensor *out, const char **failed_op) {
  const seqk_rnn_desc *desc = user;
  const int n = desc->num_layers * (desc->bidirectional ? 2 : 1);
  seqk_rnn_weights w = {&in[1], &in[1 + n], &in[1 + 2 * n], &in[1 + 3 * n]};
  seqk_tensor *cn = desc->mode == SEQK_RNN_MODE_LSTM ? &out[2] : NULL;
  EX_TRY("rnn_forward",
         seqk_rnn_forward(ctx, desc, &w, &in[0], NULL, NULL, NULL, &out[0], &out[1], cn));
  return SEQK_STATUS_SUCCESS;
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* A tanh RNN layer over one sequence, plain C:
   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh). */
static void tanh_layer_in_c(const float *x, int I, const float *w_ih, const float *w_hh,
                            const float *b_ih, const float *b_hh, float *y) {
  double h[HIDDEN] = {0};
  for (int t = 0; t < SEQ; ++t) {
    double next[HIDDEN];
    for (int r = 0; r < HIDDEN; ++r) {
      double acc = b_ih[r] + b_hh[r];
      for (int c = 0; c < I; ++c) acc += w_ih[r * I + c] * x[t * I + c];
      for (int c = 0; c < HIDDEN; ++c) acc += w_hh[r * HIDDEN + c] * h[c];
      next[r] = tanh(acc);
    }
    for (int r = 0; r < HIDDEN; ++r) y[t * HIDDEN + r] = (float)(h[r] = next[r]);
  }
}

/* The same sequence through seqk_rnn_cell one step at a time (backwards if reverse), as a
   decoder that generates token by token would: h (and c) updated in place. Writes the hidden
   state of step t to y[t*y_stride ...], and the final h and c. */
static void run_cells(seqk_context_t ctx, seqk_rnn_mode mode, const float *x, int I,
                      const seqk_tensor *p, int reverse, float *y, int y_stride, float *h_last,
                      float *c_last) {
  const int lstm = mode == SEQK_RNN_MODE_LSTM;
  const int64_t state_shape[2] = {1, HIDDEN}, x_shape[2] = {1, I};
  float h[HIDDEN], c[HIDDEN];
  seqk_tensor ht = seqk_tensor_view(h, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, state_shape);
  seqk_tensor ct = seqk_tensor_view(c, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, state_shape);
  for (int k = 0; k < SEQ; ++k) {
    int t = reverse ? SEQ - 1 - k : k;
    seqk_tensor xt =
        seqk_tensor_view((void *)(x + t * I), SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, x_shape);
    /* At the first step h and c are absent (NULL): zeros. */
    ex_check(ctx,
             seqk_rnn_cell(ctx, mode, &xt, k ? &ht : NULL, lstm && k ? &ct : NULL, &p[0], &p[1],
                           &p[2], &p[3], &ht, lstm ? &ct : NULL),
             "rnn_cell");
    memcpy(y + t * y_stride, h, sizeof h);
  }
  memcpy(h_last, h, sizeof h);
  if (lstm) memcpy(c_last, c, sizeof c);
}

static seqk_tensor cpu_f32(float *data, int ndim, int64_t d0, int64_t d1, int64_t d2) {
  const int64_t shape[3] = {d0, d1, d2};
  return seqk_tensor_view(data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, ndim, shape);
}

/* One of the variants: build it, run it (CPU, and CUDA when there is a GPU), print y, check it
   against seqk_rnn_cell step by step for each direction. x is [SEQ, 1, EMBED]. */
static void variant(seqk_context_t ctx, const char *title, const seqk_rnn_desc *desc, int first_id,
                    const seqk_tensor *x) {
  const int D = desc->bidirectional ? 2 : 1, lstm = desc->mode == SEQK_RNN_MODE_LSTM;
  printf("\n%s: state_dict entry -> seqk_rnn_weights slot\n", title);
  seqk_tensor in[1 + 4 * 2];
  in[0] = *x;
  rnn_params(lstm ? "lstm" : "gru", desc, first_id, &in[1]);

  static float y[SEQ * 2 * HIDDEN], hn[2 * HIDDEN], cn[2 * HIDDEN];
  seqk_tensor out[3] = {cpu_f32(y, 3, SEQ, 1, D * HIDDEN), cpu_f32(hn, 3, D, 1, HIDDEN),
                        cpu_f32(cn, 3, D, 1, HIDDEN)};
  ex_run_model(ctx, title, rnn_model, desc, 1 + 4 * D, in, lstm ? 3 : 2, out);

  /* y [SEQ, 1, D*H] holds [forward, reverse] features side by side: look at each direction
     through a [SEQ, H] view with the row stride of the whole y. */
  for (int d = 0; d < D; ++d) {
    seqk_tensor yd = cpu_f32(y + d * HIDDEN, 2, SEQ, HIDDEN, 0);
    yd.stride[0] = D * HIDDEN;
    ex_print(D == 1   ? "y[:, 0, :]"
             : d == 0 ? "y[:, 0, :hidden] (forward)"
                      : "y[:, 0, hidden:] (reverse)",
             &yd);
  }

  /* Direction d's weights are entry d of each array; its outputs are features d*H..d*H+H of y.
     hn[d] is where each direction ended: step SEQ-1 forwards, step 0 backwards. */
  static float want_y[SEQ * 2 * HIDDEN], want_h[2 * HIDDEN], want_c[2 * HIDDEN];
  for (int d = 0; d < D; ++d) {
    seqk_tensor p[4] = {in[1 + d], in[1 + D + d], in[1 + 2 * D + d], in[1 + 3 * D + d]};
    run_cells(ctx, desc->mode, x->data, EMBED, p, d, want_y + d * HIDDEN, D * HIDDEN,
              want_h + d * HIDDEN, want_c + d * HIDDEN);
  }
  char what[160];
  snprintf(what, sizeof what, "%s y against seqk_rnn_cell step by step", title);
  ex_expect_values(what, &out[0], want_y, 1e-6, 1e-5);
  snprintf(what, sizeof what, "%s h_n against seqk_rnn_cell step by step", title);
  ex_expect_values(what, &out[1], want_h, 1e-6, 1e-5);
  if (lstm) {
    snprintf(what, sizeof what, "%s c_n against seqk_rnn_cell step by step", title);
    ex_expect_values(what, &out[2], want_c, 1e-6, 1e-5);
  }
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;
  printf("weights: " EX_WEIGHT_FORMULA "\n\n");

  /* ---- the seed's model ---- */
  int32_t x_data[SEQ] = {1, 0, 2, 2, 3}; /* "hello" */
  const int64_t idx_shape[2] = {1, SEQ};
  seqk_rnn_desc desc = {SEQK_RNN_MODE_TANH, EMBED, HIDDEN, LAYERS, 0, 1}; /* batch_first=True */
  seqk_tensor in[4 + 4 * LAYERS];
  in[0] = seqk_tensor_view(x_data, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 2, idx_shape);
  printf("model: state_dict entry -> seqk argument\n");
  in[1] = param("emb.weight", 10, 2, NUM_CLASS, EMBED);
  printf(" -> seqk_embedding table\n");
  in[2] = param("fc.weight", 11, 2, NUM_CLASS, HIDDEN);
  printf(" -> seqk_linear w\n");
  in[3] = param("fc.bias", 12, 1, NUM_CLASS, 0);
  printf(" -> seqk_linear b\n");
  rnn_params("rnn", &desc, 20, &in[4]);

  static float embedded[SEQ * EMBED], y[SEQ * HIDDEN], hn[LAYERS * HIDDEN], logits[SEQ * NUM_CLASS];
  seqk_tensor out[4] = {cpu_f32(embedded, 3, 1, SEQ, EMBED), cpu_f32(y, 3, 1, SEQ, HIDDEN),
                        cpu_f32(hn, 3, LAYERS, 1, HIDDEN), cpu_f32(logits, 3, 1, SEQ, NUM_CLASS)};
  ex_run_model(ctx, "char_rnn", char_model, &desc, 4 + 4 * LAYERS, in, 4, out);

  ex_print("\nemb.weight", &in[1]);
  ex_print("rnn output x, shape [1, 5, 8]", &out[1]);
  seqk_tensor logits2 = cpu_f32(logits, 2, SEQ, NUM_CLASS, 0);
  ex_print("outputs = fc(x).view(-1, num_class), shape [5, 4]", &logits2);
  printf("Predicted string: ");
  for (int t = 0; t < SEQ; ++t) { /* outputs.max(dim=1) */
    int best = 0;
    for (int k = 1; k < NUM_CLASS; ++k)
      if (logits[t * NUM_CLASS + k] > logits[t * NUM_CLASS + best]) best = k;
    putchar(index2char[best]);
  }
  printf("   (untrained weights; the seed trains towards \"ohlol\")\n");

  /* Check: the embedding is a row lookup; each RNN layer is the plain loop, layer 1 reading
     layer 0's output; h_n[l] is layer l's last step; fc is a matrix-vector product. */
  const float *table = in[1].data, *fc_w = in[2].data, *fc_b = in[3].data;
  float want_emb[SEQ * EMBED], y0[SEQ * HIDDEN], y1[SEQ * HIDDEN], want_logits[SEQ * NUM_CLASS];
  float want_hn[LAYERS * HIDDEN];
  for (int t = 0; t < SEQ; ++t)
    memcpy(want_emb + t * EMBED, table + x_data[t] * EMBED, sizeof(float) * EMBED);
  const seqk_tensor *w = &in[4];
  tanh_layer_in_c(want_emb, EMBED, w[0].data, w[2].data, w[4].data, w[6].data, y0);
  tanh_layer_in_c(y0, HIDDEN, w[1].data, w[3].data, w[5].data, w[7].data, y1);
  memcpy(want_hn, y0 + (SEQ - 1) * HIDDEN, sizeof(float) * HIDDEN);
  memcpy(want_hn + HIDDEN, y1 + (SEQ - 1) * HIDDEN, sizeof(float) * HIDDEN);
  for (int t = 0; t < SEQ; ++t)
    for (int k = 0; k < NUM_CLASS; ++k) {
      double acc = fc_b[k];
      for (int c = 0; c < HIDDEN; ++c) acc += fc_w[k * HIDDEN + c] * y1[t * HIDDEN + c];
      want_logits[t * NUM_CLASS + k] = (float)acc;
    }
  ex_expect_values("embedding against the table rows", &out[0], want_emb, 0, 0);
  ex_expect_values("2-layer tanh RNN output against plain C", &out[1], y1, 1e-6, 1e-5);
  ex_expect_values("h_n against plain C", &out[2], want_hn, 1e-6, 1e-5);
  ex_expect_values("logits against plain C", &out[3], want_logits, 1e-6, 1e-5);

  /* ---- the variants, as in the seed: batch_first=False, so x is [seq, batch, features]. With a
     batch of one that is the same memory as the [1, seq, features] embedding above. */
  seqk_tensor x_tnf = cpu_f32(embedded, 3, SEQ, 1, EMBED);
  seqk_rnn_desc lstm = {SEQK_RNN_MODE_LSTM, EMBED, HIDDEN, 1, 0, 0};
  seqk_rnn_desc gru = {SEQK_RNN_MODE_GRU, EMBED, HIDDEN, 1, 0, 0};
  seqk_rnn_desc bilstm = {SEQK_RNN_MODE_LSTM, EMBED, HIDDEN, 1, 1, 0};
  variant(ctx, "LSTM", &lstm, 40, &x_tnf);
  variant(ctx, "GRU", &gru, 60, &x_tnf);
  variant(ctx, "bidirectional LSTM", &bilstm, 80, &x_tnf);

  seqk_context_destroy(ctx);
  printf("char_rnn: all checks passed\n");
  return 0;
}
