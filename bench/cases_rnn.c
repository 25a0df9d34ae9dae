/*
 * cases_rnn.c - recurrent cases: DeepBench's inference shapes and small-batch latency.
 * TFLOP/s counts the recurrent GEMM only (2*G*H^2*N per step, DeepBench's convention); the note
 * gives microseconds per step. Validation runs the CPU reference on the first steps of the first
 * sequences (rows of a batch are independent, and step t depends only on steps before it).
 */
#include "bench_core.h"

#include <stdio.h>

#define MAX_SETS 8

typedef struct rnn_arg {
  seqk_rnn_desc desc;
  seqk_tensor w_ih, w_hh, b_ih, b_hh, w_ih_cpu, w_hh_cpu, b_ih_cpu, b_hh_cpu;
  seqk_tensor x[MAX_SETS], y, x_cpu, ref, y_slice;
  int64_t check_steps, check_batch;
} rnn_arg;

static seqk_status rnn_run(bench *b, void *p, int set) {
  rnn_arg *a = (rnn_arg *)p;
  seqk_rnn_weights w = {&a->w_ih, &a->w_hh, &a->b_ih, &a->b_hh};
  return seqk_rnn_forward(b->ctx, &a->desc, &w, &a->x[set], NULL, NULL, NULL, &a->y, NULL, NULL);
}

static seqk_status rnn_reference(bench *b, void *p) {
  rnn_arg *a = (rnn_arg *)p;
  seqk_rnn_weights w = {&a->w_ih_cpu, &a->w_hh_cpu, &a->b_ih_cpu, &a->b_hh_cpu};
  seqk_tensor x = a->x_cpu;   /* [check_steps, check_batch, I] view of the first steps/rows */
  x.shape[0] = a->check_steps;
  x.shape[1] = a->check_batch;
  return seqk_rnn_forward(b->ctx, &a->desc, &w, &x, NULL, NULL, NULL, &a->ref, NULL, NULL);
}

static void rnn_case(bench *b, seqk_rnn_mode mode, seqk_dtype dt, int64_t H, int64_t N, int64_t T) {
  static const char *const modes[4] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
  static const int gates[4] = {1, 1, 4, 3};
  char name[160];
  snprintf(name, sizeof name, "%s %s H=%lld N=%lld T=%lld", modes[mode], bench_dtype_name(dt),
           (long long)H, (long long)N, (long long)T);
  if (!bench_selected(b, name)) return;
  rnn_arg a;
  const int64_t G = gates[mode], I = H;
  int64_t xs[3] = {T, N, I}, ys[3] = {T, N, H}, wi[2] = {G * H, I}, wh[2] = {G * H, H}, bs[1] = {G * H};
  a.desc = (seqk_rnn_desc){mode, (int32_t)I, (int32_t)H, 1, 0, 0};
  const double wscale = 1.0 / (double)H;
  a.w_ih_cpu = bench_cpu_random(b, dt, 2, wi, 30, wscale * 4);
  a.w_hh_cpu = bench_cpu_random(b, dt, 2, wh, 31, wscale * 4);
  a.b_ih_cpu = bench_cpu_random(b, dt, 1, bs, 32, 0.1);
  a.b_hh_cpu = bench_cpu_random(b, dt, 1, bs, 33, 0.1);
  a.w_ih = bench_to_device(b, &a.w_ih_cpu);
  a.w_hh = bench_to_device(b, &a.w_hh_cpu);
  a.b_ih = bench_to_device(b, &a.b_ih_cpu);
  a.b_hh = bench_to_device(b, &a.b_hh_cpu);
  int sets = bench_input_sets(b, (double)T * N * I * (double)seqk_dtype_size(dt));
  a.x_cpu = bench_cpu_random(b, dt, 3, xs, 34, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = bench_device_empty(b, dt, 3, ys);
  a.check_steps = b->small ? T : (T < 3 ? T : 3);
  a.check_batch = b->small ? N : (N < 4 ? N : 4);
  int64_t rs[3] = {a.check_steps, a.check_batch, H};
  a.ref = bench_cpu_empty(b, dt, 3, rs);
  a.y_slice = a.y;
  a.y_slice.shape[0] = a.check_steps;
  a.y_slice.shape[1] = a.check_batch;
  double flops = 2.0 * G * H * H * N * T;
  bench_case c = {name, dt, flops, 0, sets, rnn_run, rnn_reference, &a.y_slice, &a.ref, NULL,
                  NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

void bench_cases_rnn(bench *b) {
  if (b->small) {
    rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 16, 3, 4);
    rnn_case(b, SEQK_RNN_MODE_GRU, SEQK_DTYPE_F16, 8, 2, 5);
    rnn_case(b, SEQK_RNN_MODE_TANH, SEQK_DTYPE_BF16, 12, 1, 3);
    return;
  }
  /* DeepBench inference shapes */
  rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 1024, 64, 25);
  rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 256, 16, 150);
  rnn_case(b, SEQK_RNN_MODE_GRU, SEQK_DTYPE_F32, 1024, 1, 1500);
  rnn_case(b, SEQK_RNN_MODE_TANH, SEQK_DTYPE_F32, 2560, 128, 50);
  /* small-batch latency */
  for (int64_t N = 1; N <= 8; N *= 2) {
    if (N == 2) continue;
    for (int64_t H = 256; H <= 1024; H *= 2) rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, H, N, 100);
  }
}
