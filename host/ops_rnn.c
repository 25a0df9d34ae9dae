/*
 * ops_rnn.c - public entries seqk_rnn_cell and seqk_rnn_forward: validate every argument (nothing
 * is written on an error), then run the CPU reference or the CUDA path by device.
 *
 * Non-obvious rules enforced here:
 *   - c/c0/cn and c_out exist for LSTM only; any other mode given one is an error rather than
 *     silently ignoring it.
 *   - lengths may live on the CPU even for CUDA ops (the host then schedules max(lengths) steps),
 *     so its device is not compared with the others; CPU values are checked here, before
 *     anything runs, CUDA ones (CUDA ops only) on the device (host/cuda_rnn.c).
 */
#include "ref_rnn.h"
#include "validate.h"

#include "cuda_ops.h"

#include <stdio.h>

static const char *mode_name(seqk_rnn_mode mode) {
  switch (mode) {
    case SEQK_RNN_MODE_TANH: return "TANH";
    case SEQK_RNN_MODE_RELU: return "RELU";
    case SEQK_RNN_MODE_LSTM: return "LSTM";
    case SEQK_RNN_MODE_GRU: return "GRU";
  }
  return "unknown";
}

/* A float operand of the given shape with x's dtype and device. */
static seqk_status check_operand(seqk_context_t ctx, const char *op, const char *name,
                                 const seqk_tensor *t, int32_t ndim, const int64_t *shape,
                                 const seqk_tensor *x) {
  SEQK_TRY(seqk__check_float_tensor(ctx, op, name, t));
  SEQK_TRY(seqk__check_shape(ctx, op, name, t, ndim, shape));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "x", x, name, t));
  SEQK_TRY(seqk__check_same_device(ctx, op, "x", x, name, t));
  return SEQK_STATUS_SUCCESS;
}

/* A tensor that only LSTM takes must be absent for the other modes. */
static seqk_status check_lstm_only(seqk_context_t ctx, const char *op, const char *name,
                                   const seqk_tensor *t, seqk_rnn_mode mode) {
  if (mode != SEQK_RNN_MODE_LSTM && seqk__present(t))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s is given but mode %s has no cell state (LSTM only); pass NULL", op,
                      name, mode_name(mode));
  return SEQK_STATUS_SUCCESS;
}

/* ---- seqk_rnn_cell --------------------------------------------------------------------------- */

seqk_status seqk_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                          const seqk_tensor *h, const seqk_tensor *c, const seqk_tensor *w_ih,
                          const seqk_tensor *w_hh, const seqk_tensor *b_ih, const seqk_tensor *b_hh,
                          seqk_tensor *h_out, seqk_tensor *c_out) {
  static const char op[] = "rnn_cell";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const int64_t G = seqk__rnn_gate_count(mode);
  if (G == 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: mode=%d is not a seqk_rnn_mode", op,
                      (int)mode);
  const int is_lstm = mode == SEQK_RNN_MODE_LSTM;

  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_ndim(ctx, op, "x", x, 2));
  const int64_t N = x->shape[0], I = x->shape[1];
  if (I < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.shape[1]=%lld but the input size must be >= 1", op, (long long)I);
  /* The hidden size comes from w_hh [G*H, H]; every other shape is checked against it. */
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "w_hh", w_hh));
  SEQK_TRY(seqk__check_ndim(ctx, op, "w_hh", w_hh, 2));
  const int64_t H = w_hh->shape[1];
  if (H < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: w_hh.shape[1]=%lld but the hidden size must be >= 1", op, (long long)H);
  if (H > INT64_MAX / 4) /* the gate rows G*H, G <= 4, must be an int64 */
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: w_hh.shape[1]=%lld (the hidden size) is too large: %lld*H overflows", op,
                      (long long)H, (long long)G);
  const int64_t gates_by_hidden[2] = {G * H, H}, gates_by_input[2] = {G * H, I}, gates[1] = {G * H};
  const int64_t state[2] = {N, H};
  SEQK_TRY(check_operand(ctx, op, "w_hh", w_hh, 2, gates_by_hidden, x));
  SEQK_TRY(check_operand(ctx, op, "w_ih", w_ih, 2, gates_by_input, x));
  if (seqk__present(b_ih)) SEQK_TRY(check_operand(ctx, op, "b_ih", b_ih, 1, gates, x));
  if (seqk__present(b_hh)) SEQK_TRY(check_operand(ctx, op, "b_hh", b_hh, 1, gates, x));
  if (seqk__present(h)) SEQK_TRY(check_operand(ctx, op, "h", h, 2, state, x));
  SEQK_TRY(check_lstm_only(ctx, op, "c", c, mode));
  if (seqk__present(c)) SEQK_TRY(check_operand(ctx, op, "c", c, 2, state, x));

  SEQK_TRY(check_operand(ctx, op, "h_out", h_out, 2, state, x));
  SEQK_TRY(seqk__check_output(ctx, op, "h_out", h_out));
  SEQK_TRY(check_lstm_only(ctx, op, "c_out", c_out, mode));
  if (is_lstm) {
    if (!c_out)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: c_out is NULL but LSTM needs it", op);
    SEQK_TRY(check_operand(ctx, op, "c_out", c_out, 2, state, x));
    SEQK_TRY(seqk__check_output(ctx, op, "c_out", c_out));
  }

  /* In place is allowed only as h_out == h and c_out == c; an output shares memory with nothing
     else (absent optionals never overlap). */
  const seqk_arg not_h[] = {{"x", x},       {"c", c},       {"w_ih", w_ih},
                            {"w_hh", w_hh}, {"b_ih", b_ih}, {"b_hh", b_hh}};
  const seqk_arg not_c[] = {{"x", x},       {"h", h},       {"w_ih", w_ih},  {"w_hh", w_hh},
                            {"b_ih", b_ih}, {"b_hh", b_hh}, {"h_out", h_out}};
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "h_out", h_out, "h", h));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "h_out", h_out, not_h, SEQK_COUNT(not_h)));
  if (is_lstm) {
    SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "c_out", c_out, "c", c));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "c_out", c_out, not_c, SEQK_COUNT(not_c)));
  }

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(
        ctx, op, seqk__cuda_rnn_cell(ctx, mode, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out));
  return seqk__ref_rnn_cell(ctx, mode, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out);
}

/* ---- seqk_rnn_forward ------------------------------------------------------------------------ */

static seqk_status check_desc(seqk_context_t ctx, const char *op, const seqk_rnn_desc *desc) {
  if (!desc) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc is NULL", op);
  if (seqk__rnn_gate_count(desc->mode) == 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.mode=%d is not a seqk_rnn_mode", op,
                      (int)desc->mode);
  if (desc->input_size < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.input_size=%d must be >= 1", op,
                      (int)desc->input_size);
  if (desc->hidden_size < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.hidden_size=%d must be >= 1", op,
                      (int)desc->hidden_size);
  if (desc->num_layers < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.num_layers=%d must be >= 1", op,
                      (int)desc->num_layers);
  if (desc->bidirectional != 0 && desc->bidirectional != 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.bidirectional=%d must be 0 or 1",
                      op, (int)desc->bidirectional);
  if (desc->batch_first != 0 && desc->batch_first != 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: desc.batch_first=%d must be 0 or 1", op,
                      (int)desc->batch_first);
  return SEQK_STATUS_SUCCESS;
}

/* The weight arrays of seqk_rnn_weights by number, in the order their entries are checked. */
enum { W_IH, W_HH, B_IH, B_HH, WEIGHT_KINDS };

/* Entry e of weight array `kind` (NULL when that bias array is absent) and its name "w_hh[3]". */
static const seqk_tensor *weight_entry(const seqk_rnn_weights *w, int kind, int64_t e, char *name,
                                       size_t name_size) {
  static const char *const kind_names[WEIGHT_KINDS] = {"w_ih", "w_hh", "b_ih", "b_hh"};
  const seqk_tensor *const arrays[WEIGHT_KINDS] = {w->w_ih, w->w_hh, w->b_ih, w->b_hh};
  snprintf(name, name_size, "%s[%lld]", kind_names[kind], (long long)e);
  return arrays[kind] ? &arrays[kind][e] : NULL;
}

/* Entry e = l*D + d of every weight array: w_ih [G*H, I_l], w_hh [G*H, H], b_ih/b_hh [G*H]. */
static seqk_status check_weights(seqk_context_t ctx, const char *op, const seqk_rnn_desc *desc,
                                 const seqk_rnn_weights *w, const seqk_tensor *x) {
  if (!w) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: w is NULL", op);
  if (!w->w_ih)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: w.w_ih is NULL (an array of num_layers*D tensors)", op);
  if (!w->w_hh)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: w.w_hh is NULL (an array of num_layers*D tensors)", op);
  const int64_t D = desc->bidirectional ? 2 : 1, H = desc->hidden_size;
  const int64_t G = seqk__rnn_gate_count(desc->mode);
  for (int64_t e = 0; e < desc->num_layers * D; ++e) {
    const int64_t in = e < D ? desc->input_size : D * H;
    const int64_t shapes[WEIGHT_KINDS][2] = {{G * H, in}, {G * H, H}, {G * H}, {G * H}};
    const int32_t ndims[WEIGHT_KINDS] = {2, 2, 1, 1};
    for (int kind = 0; kind < WEIGHT_KINDS; ++kind) {
      char name[48];
      const seqk_tensor *t = weight_entry(w, kind, e, name, sizeof name);
      if (t) SEQK_TRY(check_operand(ctx, op, name, t, ndims[kind], shapes[kind], x));
    }
  }
  return SEQK_STATUS_SUCCESS;
}

/* An output must not overlap x, h0, c0, lengths or any weight. */
static seqk_status check_output_disjoint(seqk_context_t ctx, const char *op, const char *out_name,
                                         const seqk_tensor *out, const seqk_rnn_desc *desc,
                                         const seqk_rnn_weights *w, const seqk_tensor *x,
                                         const seqk_tensor *h0, const seqk_tensor *c0,
                                         const seqk_tensor *lengths) {
  const int64_t entries = desc->num_layers * (desc->bidirectional ? 2 : 1);
  const seqk_arg inputs[] = {{"x", x}, {"h0", h0}, {"c0", c0}, {"lengths", lengths}};
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, out_name, out, inputs, SEQK_COUNT(inputs)));
  for (int64_t e = 0; e < entries; ++e)
    for (int kind = 0; kind < WEIGHT_KINDS; ++kind) {
      char name[48];
      const seqk_tensor *t = weight_entry(w, kind, e, name, sizeof name);
      if (t) SEQK_TRY(seqk__check_no_overlap(ctx, op, out_name, out, name, t));
    }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                             const seqk_rnn_weights *w, const seqk_tensor *x, const seqk_tensor *h0,
                             const seqk_tensor *c0, const seqk_tensor *lengths, seqk_tensor *y,
                             seqk_tensor *hn, seqk_tensor *cn) {
  static const char op[] = "rnn_forward";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(check_desc(ctx, op, desc));
  const int bf = desc->batch_first;
  const int64_t D = desc->bidirectional ? 2 : 1, H = desc->hidden_size;
  const int64_t LD = desc->num_layers * D;

  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_ndim(ctx, op, "x", x, 3));
  const int64_t T = x->shape[bf ? 1 : 0], N = x->shape[bf ? 0 : 1];
  if (T < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.shape[%d]=%lld is T, the number of time steps, which must be >= 1", op,
                      bf ? 1 : 0, (long long)T);
  if (N < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.shape[%d]=%lld is N, the batch size, which must be >= 1", op,
                      bf ? 0 : 1, (long long)N);
  SEQK_TRY(seqk__check_extent(ctx, op, "x", x, 2, desc->input_size, "desc.input_size"));
  SEQK_TRY(check_weights(ctx, op, desc, w, x));

  const int64_t states[3] = {LD, N, H};
  if (seqk__present(h0)) SEQK_TRY(check_operand(ctx, op, "h0", h0, 3, states, x));
  SEQK_TRY(check_lstm_only(ctx, op, "c0", c0, desc->mode));
  if (seqk__present(c0)) SEQK_TRY(check_operand(ctx, op, "c0", c0, 3, states, x));
  if (seqk__present(lengths)) {
    const int64_t shape[1] = {N};
    SEQK_TRY(seqk__check_tensor(ctx, op, "lengths", lengths));
    SEQK_TRY(seqk__check_dtype(ctx, op, "lengths", lengths, SEQK_DTYPE_I32));
    SEQK_TRY(seqk__check_shape(ctx, op, "lengths", lengths, 1, shape));
    if (lengths->device == SEQK_DEVICE_CUDA && x->device != SEQK_DEVICE_CUDA)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: lengths is on CUDA but x is on the CPU (a CPU op reads its lengths "
                        "on the CPU)",
                        op);
  }

  const int64_t y_shape[3] = {bf ? N : T, bf ? T : N, D * H};
  SEQK_TRY(check_operand(ctx, op, "y", y, 3, y_shape, x));
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  if (seqk__present(hn)) {
    SEQK_TRY(check_operand(ctx, op, "hn", hn, 3, states, x));
    SEQK_TRY(seqk__check_output(ctx, op, "hn", hn));
  }
  SEQK_TRY(check_lstm_only(ctx, op, "cn", cn, desc->mode));
  if (seqk__present(cn)) {
    SEQK_TRY(check_operand(ctx, op, "cn", cn, 3, states, x));
    SEQK_TRY(seqk__check_output(ctx, op, "cn", cn));
  }

  SEQK_TRY(check_output_disjoint(ctx, op, "y", y, desc, w, x, h0, c0, lengths));
  SEQK_TRY(check_output_disjoint(ctx, op, "hn", hn, desc, w, x, h0, c0, lengths));
  SEQK_TRY(check_output_disjoint(ctx, op, "cn", cn, desc, w, x, h0, c0, lengths));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "hn", hn, "y", y));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "cn", cn, "y", y));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "cn", cn, "hn", hn));

  /* Last, once the descriptor is known to be a readable I32 [N]: CPU values here; CUDA ones on
     the device (host/cuda_rnn.c, device_lengths). */
  if (seqk__present(lengths) && lengths->device == SEQK_DEVICE_CPU)
    for (int64_t n = 0; n < N; ++n) {
      const int32_t len = seqk__load_i32(lengths, n * lengths->stride[0]);
      if (len < 1 || len > T)
        return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                          "%s: lengths[%lld]=%d is outside [1, T=%lld]", op, (long long)n, (int)len,
                          (long long)T);
    }

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_rnn_forward(ctx, desc, w, x, h0, c0, lengths, y, hn, cn));
  return seqk__ref_rnn_forward(ctx, desc, w, x, h0, c0, lengths, y, hn, cn);
}
