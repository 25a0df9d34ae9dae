/*
 * ref_rnn.h - CPU references for the recurrent ops (seqk_rnn_cell, seqk_rnn_forward). They take
 * arguments already validated by the public entries in ops_rnn.c, compute in double (weights,
 * states and every intermediate layer output stay double; only the results are rounded to the
 * output dtype), allocate all scratch before the first output element is written, and read and
 * write through the tensors' strides. Not installed.
 *
 * The cell math lives in one place, seqk__rnn_step, which both references call; the GPU kernels'
 * tests can use it too.
 */
#ifndef SEQK_REF_RNN_H
#define SEQK_REF_RNN_H

#include "geometry.h"
#include "internal.h"
#include "numeric.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gate rows per hidden unit: 1 (TANH, RELU), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n); 0 for a
   value outside the enum. */
static inline int64_t seqk__rnn_gate_count(seqk_rnn_mode mode) {
  switch (mode) {
    case SEQK_RNN_MODE_TANH:
    case SEQK_RNN_MODE_RELU: return 1;
    case SEQK_RNN_MODE_LSTM: return 4;
    case SEQK_RNN_MODE_GRU: return 3;
  }
  return 0;
}

/* One step for one batch row, from the gate pre-activations in double:
     gi = W_ih x + b_ih and gh = W_hh h + b_hh, each G*H values in PyTorch's gate-row order.
   They are kept apart (rather than summed) because GRU's n gate needs W_hn h + b_hn on its own,
   inside r*(.). h and c are the previous states ([H]; c is read for LSTM only), h_new and c_new
   receive the new ones (c_new written for LSTM only). Each output element j reads only element
   j of h and c, so h_new may be h and c_new may be c. */
void seqk__rnn_step(seqk_rnn_mode mode, int64_t hidden, const double *gi, const double *gh,
                    const double *h, const double *c, double *h_new, double *c_new);

/* nn.RNNCell / LSTMCell / GRUCell. h, c, b_ih, b_hh may be absent (zeros); c and c_out are used
   for LSTM only. h_out may be h and c_out may be c (exact alias): every new state is computed
   into double scratch before anything is stored. */
seqk_status seqk__ref_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                               const seqk_tensor *h, const seqk_tensor *c, const seqk_tensor *w_ih,
                               const seqk_tensor *w_hh, const seqk_tensor *b_ih,
                               const seqk_tensor *b_hh, seqk_tensor *h_out, seqk_tensor *c_out);

/* nn.RNN / LSTM / GRU forward with the semantics of seqk_rnn_forward (layers, directions,
   batch_first, optional h0/c0/hn/cn, packed-sequence lengths read from a CPU I32 tensor whose
   values the entry has already checked to lie in [1, T]). */
seqk_status seqk__ref_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                  const seqk_rnn_weights *w, const seqk_tensor *x,
                                  const seqk_tensor *h0, const seqk_tensor *c0,
                                  const seqk_tensor *lengths, seqk_tensor *y, seqk_tensor *hn,
                                  seqk_tensor *cn);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_REF_RNN_H */
