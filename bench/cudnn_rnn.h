/*
 * cudnn_rnn.h - cuDNN's cudnnRNNForward on seqk's weights: the recurrent cases' second yardstick.
 *
 * Bench only: cuDNN is linked into seqk-bench when CMake finds it (SEQK_BENCH_CUDNN), never into
 * the library, and never into the emulated build. Without it bench_cudnn_rnn_create fails with
 * "cuDNN not found" and the bench says so in its rows.
 */
#ifndef SEQK_BENCH_CUDNN_RNN_H
#define SEQK_BENCH_CUDNN_RNN_H

#include "seqk.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bench_cudnn_rnn bench_cudnn_rnn;

/* Whether this build has cuDNN (1) or answers every create with "cuDNN not found" (0). */
int bench_cudnn_available(void);

/* A one-layer, unidirectional RNN of desc's mode (desc->num_layers == 1, not bidirectional) for
   x [T, N, I] in the time-major layout, every sequence T long, zero initial states: the work
   seqk_rnn_forward does for the same call with h0/c0/lengths absent. w holds PyTorch's tensors
   (w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H], contiguous, on the device, in `dtype`); they
   are copied gate by gate into cuDNN's weight space. Returns NULL with the reason in err. */
bench_cudnn_rnn *bench_cudnn_rnn_create(const seqk_rnn_desc *desc, const seqk_rnn_weights *w,
                                        seqk_dtype dtype, int64_t T, int64_t N, char *err,
                                        size_t errlen);
/* y [T, N, H] (contiguous, device) from x [T, N, I] (contiguous, device), on the legacy default
   stream (asynchronous). 0 on success; otherwise the reason is in bench_cudnn_rnn_error. */
int bench_cudnn_rnn_forward(bench_cudnn_rnn *r, const void *x, void *y);
const char *bench_cudnn_rnn_error(const bench_cudnn_rnn *r);
/* NULL is fine. */
void bench_cudnn_rnn_destroy(bench_cudnn_rnn *r);

#endif /* SEQK_BENCH_CUDNN_RNN_H */
