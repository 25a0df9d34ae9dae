/*
 * ref_rnn.c - CPU references for seqk_rnn_cell and seqk_rnn_forward (PyTorch's nn.RNNCell /
 * LSTMCell / GRUCell and nn.RNN / LSTM / GRU). Weights are loaded once into row-major doubles,
 * every state and every intermediate layer output stays double, and only the final results are
 * rounded to the output dtype. All scratch lives in one double arena allocated before any output
 * is written, so an allocation failure leaves the outputs untouched.
 */
#include "ref_rnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* relu that lets NaN through, like torch.relu. */
static double relu(double v) { return v < 0.0 ? 0.0 : v; }

void seqk__rnn_step(seqk_rnn_mode mode, int64_t hidden, const double *gi, const double *gh,
                    const double *h, const double *c, double *h_new, double *c_new) {
  const int64_t H = hidden;
  switch (mode) {
    case SEQK_RNN_MODE_TANH:
      for (int64_t j = 0; j < H; ++j) h_new[j] = tanh(gi[j] + gh[j]);
      break;
    case SEQK_RNN_MODE_RELU:
      for (int64_t j = 0; j < H; ++j) h_new[j] = relu(gi[j] + gh[j]);
      break;
    case SEQK_RNN_MODE_LSTM:
      for (int64_t j = 0; j < H; ++j) {
        double i = sigmoid(gi[j] + gh[j]);
        double f = sigmoid(gi[H + j] + gh[H + j]);
        double g = tanh(gi[2 * H + j] + gh[2 * H + j]);
        double o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
        double c_next = f * c[j] + i * g;
        c_new[j] = c_next;
        h_new[j] = o * tanh(c_next);
      }
      break;
    case SEQK_RNN_MODE_GRU:
      for (int64_t j = 0; j < H; ++j) {
        double r = sigmoid(gi[j] + gh[j]);
        double z = sigmoid(gi[H + j] + gh[H + j]);
        /* gh[2H + j] already holds W_hn h + b_hn, so b_hn is scaled by r as PyTorch does. */
        double n = tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        h_new[j] = (1.0 - z) * n + z * h[j];
      }
      break;
  }
}

/* ---- scratch --------------------------------------------------------------------------------- */

/* *total += a*b; *total becomes -1 (and stays so) once the count leaves int64. */
static void add_count(int64_t *total, int64_t a, int64_t b) {
  if (*total < 0 || a < 0 || b < 0 || (b != 0 && a > (INT64_MAX - *total) / b)) {
    *total = -1;
    return;
  }
  *total += a * b;
}

/* Hands out consecutive pieces of one calloc'd arena. */
static double *take(double **cursor, int64_t count) {
  double *p = *cursor;
  *cursor += count;
  return p;
}

static double *alloc_arena(int64_t count) {
  if (count < 0 || (uint64_t)count > SIZE_MAX / sizeof(double)) return NULL;
  return (double *)calloc(count > 0 ? (size_t)count : 1, sizeof(double));
}

/* ---- one direction of one layer, as the cell sees it ----------------------------------------- */

typedef struct rnn_params {
  seqk_rnn_mode mode;
  int64_t in, hidden;  /* I and H */
  double *w_ih;        /* [G*H, I] row-major */
  double *w_hh;        /* [G*H, H] */
  double *b_ih, *b_hh; /* [G*H]; all zero when the bias is absent */
} rnn_params;

/* Row-major doubles of t (any ndim, any strides); zeros when t is absent. */
static void load_all(const seqk_tensor *t, double *dst, int64_t count) {
  if (!seqk__present(t)) {
    memset(dst, 0, (size_t)count * sizeof(double));
    return;
  }
  for (int64_t i = 0; i < count; ++i) dst[i] = seqk__load(t, seqk__offset_of_linear(t, i));
}

static void load_params(rnn_params *p, const seqk_tensor *w_ih, const seqk_tensor *w_hh,
                        const seqk_tensor *b_ih, const seqk_tensor *b_hh) {
  const int64_t rows = seqk__rnn_gate_count(p->mode) * p->hidden;
  load_all(w_ih, p->w_ih, rows * p->in);
  load_all(w_hh, p->w_hh, rows * p->hidden);
  load_all(b_ih, p->b_ih, rows);
  load_all(b_hh, p->b_hh, rows);
}

/* out[r] = b[r] + sum_k w[r, k] v[k] */
static void affine(const double *w, const double *b, int64_t rows, int64_t cols, const double *v,
                   double *out) {
  for (int64_t r = 0; r < rows; ++r) {
    double acc = b[r];
    const double *wr = w + r * cols;
    for (int64_t k = 0; k < cols; ++k) acc += wr[k] * v[k];
    out[r] = acc;
  }
}

/* One step of one batch row. gi and gh are G*H scratch; h_new/c_new may be h/c (see
   seqk__rnn_step: the gates are computed from h and c before any of them is overwritten). */
static void row_step(const rnn_params *p, const double *x, const double *h, const double *c,
                     double *gi, double *gh, double *h_new, double *c_new) {
  const int64_t rows = seqk__rnn_gate_count(p->mode) * p->hidden;
  affine(p->w_ih, p->b_ih, rows, p->in, x, gi);
  affine(p->w_hh, p->b_hh, rows, p->hidden, h, gh);
  seqk__rnn_step(p->mode, p->hidden, gi, gh, h, c, h_new, c_new);
}

static int64_t off2(const seqk_tensor *t, int64_t i, int64_t j) {
  return i * t->stride[0] + j * t->stride[1];
}

static int64_t off3(const seqk_tensor *t, int64_t i, int64_t j, int64_t k) {
  return i * t->stride[0] + j * t->stride[1] + k * t->stride[2];
}

/* ---- cell ------------------------------------------------------------------------------------ */

seqk_status seqk__ref_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                               const seqk_tensor *h, const seqk_tensor *c, const seqk_tensor *w_ih,
                               const seqk_tensor *w_hh, const seqk_tensor *b_ih,
                               const seqk_tensor *b_hh, seqk_tensor *h_out, seqk_tensor *c_out) {
  const int64_t N = x->shape[0], I = x->shape[1], H = w_hh->shape[1];
  const int64_t rows = seqk__rnn_gate_count(mode) * H;
  const int is_lstm = mode == SEQK_RNN_MODE_LSTM;
  if (N == 0) return SEQK_STATUS_SUCCESS;

  int64_t count = 0;
  add_count(&count, rows, I + H + 4); /* w_ih, w_hh, b_ih, b_hh, gi, gh */
  add_count(&count, N, 2 * H);        /* every row's new h and c */
  add_count(&count, 1, I + 2 * H);    /* x, h, c of the current row */
  double *arena = alloc_arena(count);
  if (!arena)
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "rnn_cell: cannot allocate %lld doubles of scratch", (long long)count);
  double *cursor = arena;
  rnn_params p = {mode, I, H, NULL, NULL, NULL, NULL};
  p.w_ih = take(&cursor, rows * I);
  p.w_hh = take(&cursor, rows * H);
  p.b_ih = take(&cursor, rows);
  p.b_hh = take(&cursor, rows);
  double *gi = take(&cursor, rows), *gh = take(&cursor, rows);
  double *h_new = take(&cursor, N * H), *c_new = take(&cursor, N * H);
  double *x_row = take(&cursor, I), *h_row = take(&cursor, H), *c_row = take(&cursor, H);
  load_params(&p, w_ih, w_hh, b_ih, b_hh);

  const int has_h = seqk__present(h), has_c = is_lstm && seqk__present(c);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < I; ++k) x_row[k] = seqk__load(x, off2(x, n, k));
    for (int64_t j = 0; j < H; ++j) {
      h_row[j] = has_h ? seqk__load(h, off2(h, n, j)) : 0.0;
      c_row[j] = has_c ? seqk__load(c, off2(c, n, j)) : 0.0;
    }
    row_step(&p, x_row, h_row, c_row, gi, gh, h_new + n * H, c_new + n * H);
  }

  /* Stored only now, after every read of h and c: h_out/c_out may be those very tensors. */
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < H; ++j) {
      seqk__store(h_out, off2(h_out, n, j), h_new[n * H + j]);
      if (is_lstm) seqk__store(c_out, off2(c_out, n, j), c_new[n * H + j]);
    }
  free(arena);
  return SEQK_STATUS_SUCCESS;
}

/* ---- layers ---------------------------------------------------------------------------------- */

seqk_status seqk__ref_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                  const seqk_rnn_weights *w, const seqk_tensor *x,
                                  const seqk_tensor *h0, const seqk_tensor *c0,
                                  const seqk_tensor *lengths, seqk_tensor *y, seqk_tensor *hn,
                                  seqk_tensor *cn) {
  const seqk_rnn_mode mode = desc->mode;
  const int is_lstm = mode == SEQK_RNN_MODE_LSTM;
  const int batch_first = desc->batch_first != 0;
  const int64_t L = desc->num_layers, D = desc->bidirectional ? 2 : 1, H = desc->hidden_size;
  const int64_t I0 = desc->input_size;
  const int64_t T = batch_first ? x->shape[1] : x->shape[0];
  const int64_t N = batch_first ? x->shape[0] : x->shape[1];
  const int64_t rows = seqk__rnn_gate_count(mode) * H, DH = D * H;
  const int64_t width = I0 > DH ? I0 : DH; /* widest layer input */
  const int has_h0 = seqk__present(h0), has_c0 = is_lstm && seqk__present(c0);

  /* Arena: two [T, N, width] sequence buffers (layer input and output, swapped per layer), the
     final states of every layer and direction, one direction's parameters, and per-row state. */
  int64_t seq = 0, states = 0, count = 0;
  add_count(&seq, T * N, width);
  add_count(&states, L * D * N, H);
  add_count(&count, seq, 2);
  add_count(&count, states, 2);
  add_count(&count, rows, width + H + 4); /* one direction's w_ih, w_hh, b_ih, b_hh, gi, gh */
  add_count(&count, 2, H);                /* h and c of the current row */
  double *arena = seq < 0 || states < 0 ? NULL : alloc_arena(count);
  int64_t *len = (int64_t *)malloc((size_t)N * sizeof(int64_t));
  if (!arena || !len) {
    free(arena);
    free(len);
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "rnn_forward: cannot allocate %lld doubles of scratch", (long long)count);
  }
  double *cursor = arena;
  double *seq_in = take(&cursor, seq), *seq_out = take(&cursor, seq);
  double *h_fin = take(&cursor, states), *c_fin = take(&cursor, states);
  rnn_params p = {mode, I0, H, NULL, NULL, NULL, NULL};
  p.w_ih = take(&cursor, rows * width);
  p.w_hh = take(&cursor, rows * H);
  p.b_ih = take(&cursor, rows);
  p.b_hh = take(&cursor, rows);
  double *gi = take(&cursor, rows), *gh = take(&cursor, rows);
  double *h_cur = take(&cursor, H), *c_cur = take(&cursor, H);

  for (int64_t n = 0; n < N; ++n)
    len[n] = seqk__present(lengths) ? seqk__load_i32(lengths, n * lengths->stride[0]) : T;

  /* Layer input in [t][n][k] order whatever the caller's layout. */
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < I0; ++k)
        seq_in[(t * N + n) * I0 + k] =
            seqk__load(x, batch_first ? off3(x, n, t, k) : off3(x, t, n, k));

  for (int64_t l = 0; l < L; ++l) {
    p.in = l == 0 ? I0 : DH;
    /* Steps past a sequence's length stay 0: they are y's padding, and the next layer never
       reads them. */
    memset(seq_out, 0, (size_t)(T * N * DH) * sizeof(double));
    for (int64_t d = 0; d < D; ++d) {
      const int64_t e = l * D + d;
      const seqk_tensor *b_ih = w->b_ih ? &w->b_ih[e] : NULL;
      const seqk_tensor *b_hh = w->b_hh ? &w->b_hh[e] : NULL;
      load_params(&p, &w->w_ih[e], &w->w_hh[e], b_ih, b_hh);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t j = 0; j < H; ++j) {
          h_cur[j] = has_h0 ? seqk__load(h0, off3(h0, e, n, j)) : 0.0;
          c_cur[j] = has_c0 ? seqk__load(c0, off3(c0, e, n, j)) : 0.0;
        }
        /* The reverse direction starts at this sequence's own last valid step. */
        for (int64_t s = 0; s < len[n]; ++s) {
          const int64_t t = d == 0 ? s : len[n] - 1 - s;
          row_step(&p, seq_in + (t * N + n) * p.in, h_cur, c_cur, gi, gh, h_cur, c_cur);
          memcpy(seq_out + (t * N + n) * DH + d * H, h_cur, (size_t)H * sizeof(double));
        }
        memcpy(h_fin + (e * N + n) * H, h_cur, (size_t)H * sizeof(double));
        memcpy(c_fin + (e * N + n) * H, c_cur, (size_t)H * sizeof(double));
      }
    }
    double *swap = seq_in;
    seq_in = seq_out;
    seq_out = swap;
  }

  /* seq_in now holds the last layer's output. */
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < DH; ++k)
        seqk__store(y, batch_first ? off3(y, n, t, k) : off3(y, t, n, k),
                    seq_in[(t * N + n) * DH + k]);
  for (int64_t e = 0; e < L * D; ++e)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < H; ++j) {
        if (seqk__present(hn)) seqk__store(hn, off3(hn, e, n, j), h_fin[(e * N + n) * H + j]);
        if (is_lstm && seqk__present(cn))
          seqk__store(cn, off3(cn, e, n, j), c_fin[(e * N + n) * H + j]);
      }
  free(len);
  free(arena);
  return SEQK_STATUS_SUCCESS;
}
