/*
 * cases_rnn.c - recurrent cases: DeepBench's inference shapes and small-batch latency.
 *
 * Each case is one seqk_rnn_forward (one layer, x [T, N, H], zero initial state) timed on the
 * AUTO path (the dispatcher's choice; the note says which) and compared, in the same run on the
 * same weights and inputs, with
 *   - the per-step path (one cuBLAS GEMM + one gate kernel per step), forced through the
 *     test-only hook seqk__cuda_rnn_force (host/cuda_ops.h);
 *   - cuDNN's cudnnRNNForward (bench/cudnn_rnn.c), when the build found cuDNN.
 * bench_row holds one comparison, so a case prints two rows with the same AUTO time: "vs per-step"
 * and "vs cuDNN" (ratio = their time / AUTO's: above 1, seqk is faster). Every path's output is
 * validated against the CPU reference before anything is timed (err/tol is the worse of the row's
 * two paths), so the times compare equal work. TFLOP/s counts the recurrent GEMM only
 * (2*G*H^2*N per step, DeepBench's convention); the note gives microseconds per step.
 *
 * Validation runs the CPU reference on the first steps of the first sequences (rows of a batch are
 * independent, and step t depends only on steps before it): that pins every gate's weights and
 * biases, which is what a wrong packing into cuDNN's weight space would get wrong.
 *
 * Notes and error texts avoid commas: bench_report writes them into a CSV column.
 */
#include "bench_core.h"
#include "cudnn_rnn.h"
#include "cuda_ops.h" /* seqk__cuda_rnn_force, seqk__cuda_rnn_persistent_applies */

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <string.h>

#define MAX_SETS 8

/* seqk__cuda_rnn_force's values. */
enum { PATH_AUTO = 0, PATH_PER_STEP = 1 };

typedef struct rnn_arg {
  seqk_rnn_desc desc;
  seqk_dtype dtype;
  seqk_tensor w_ih, w_hh, b_ih, b_hh, w_ih_cpu, w_hh_cpu, b_ih_cpu, b_hh_cpu;
  seqk_tensor x[MAX_SETS], y, y_cudnn, x_cpu, ref;
  int64_t check_steps, check_batch;
  int sets; /* rotated input sets x[0..sets-1] */
  bench_cudnn_rnn *cudnn;
} rnn_arg;

static seqk_status rnn_run(bench *b, void *p, int set) {
  rnn_arg *a = (rnn_arg *)p;
  seqk_rnn_weights w = {&a->w_ih, &a->w_hh, &a->b_ih, &a->b_hh};
  return seqk_rnn_forward(b->ctx, &a->desc, &w, &a->x[set], NULL, NULL, NULL, &a->y, NULL, NULL);
}

static seqk_status rnn_run_per_step(bench *b, void *p, int set) {
  seqk__cuda_rnn_force(PATH_PER_STEP);
  seqk_status st = rnn_run(b, p, set);
  seqk__cuda_rnn_force(PATH_AUTO);
  return st;
}

static seqk_status rnn_run_cudnn(bench *b, void *p, int set) {
  rnn_arg *a = (rnn_arg *)p;
  (void)b;
  return bench_cudnn_rnn_forward(a->cudnn, a->x[set].data, a->y_cudnn.data)
             ? SEQK_STATUS_DEVICE_ERROR
             : SEQK_STATUS_SUCCESS;
}

static seqk_status rnn_reference(bench *b, rnn_arg *a) {
  seqk_rnn_weights w = {&a->w_ih_cpu, &a->w_hh_cpu, &a->b_ih_cpu, &a->b_hh_cpu};
  seqk_tensor x = a->x_cpu; /* [check_steps, check_batch, I] view of the first steps/rows */
  x.shape[0] = a->check_steps;
  x.shape[1] = a->check_batch;
  return seqk_rnn_forward(b->ctx, &a->desc, &w, &x, NULL, NULL, NULL, &a->ref, NULL, NULL);
}

/* One path's outcome: validated (err = err/tol, -1 for NaN) and, when the bench times, its
   median; st is the failing status otherwise (err = -2 when the call itself failed). */
typedef struct rnn_path {
  seqk_status st;
  double err, ms;
  char why[320];
} rnn_path;

static int path_ok(const rnn_path *r) {
  return r->st == SEQK_STATUS_SUCCESS && r->err >= 0 && r->err <= 1;
}

static const char *path_error(bench *b, const rnn_arg *a, bench_fn fn) {
  return fn == rnn_run_cudnn ? bench_cudnn_rnn_error(a->cudnn) : seqk_context_last_error(b->ctx);
}

/* Runs fn on input set 0 into out, poisoned with NaN first (all-ones bytes are NaN in every
   dtype) so that a path writing nothing cannot pass on an earlier path's result; compares the
   checked slice with the reference; then times fn when the bench times and the check passed. */
static void rnn_check_and_time(bench *b, rnn_arg *a, bench_fn fn, const seqk_tensor *out,
                               const char *label, rnn_path *r) {
  r->err = -2;
  r->ms = 0;
  r->why[0] = '\0';
  size_t bytes = seqk_dtype_size(out->dtype);
  for (int i = 0; i < out->ndim; ++i) bytes *= (size_t)out->shape[i];
  r->st =
      cudaMemset(out->data, 0xFF, bytes) == cudaSuccess ? fn(b, a, 0) : SEQK_STATUS_DEVICE_ERROR;
  if (r->st == SEQK_STATUS_SUCCESS && cudaDeviceSynchronize() != cudaSuccess)
    r->st = SEQK_STATUS_DEVICE_ERROR;
  if (r->st != SEQK_STATUS_SUCCESS) {
    snprintf(r->why, sizeof r->why, "%s: %s", label, path_error(b, a, fn));
    return;
  }
  double atol, rtol;
  bench_tolerance(a->dtype, &atol, &rtol);
  seqk_tensor slice = *out;
  slice.shape[0] = a->check_steps;
  slice.shape[1] = a->check_batch;
  r->err = bench_compare(b, &slice, &a->ref, atol, rtol);
  if (!path_ok(r)) {
    if (r->err < 0)
      snprintf(r->why, sizeof r->why, "%s: NaN where the CPU reference has none", label);
    else
      snprintf(r->why, sizeof r->why, "%s: err/tol %.3f against the CPU reference", label, r->err);
    return;
  }
  if (b->timing) {
    r->ms = bench_time(b, fn, a, a->sets, &r->st);
    if (r->st != SEQK_STATUS_SUCCESS) {
      snprintf(r->why, sizeof r->why, "%s (timed): %s", label, path_error(b, a, fn));
    }
  }
}

/* One row: AUTO against `other` (named vs). absent: why that comparison does not exist in this
   build (then only AUTO is reported). */
static void rnn_row(bench *b, const char *name, double amount, int64_t T, const char *auto_path,
                    const rnn_path *autop, const rnn_path *other, const char *vs,
                    const char *absent) {
  bench_row row = {0};
  char note[400];
  row.name = name;
  row.amount = amount;
  row.ms = autop->ms;
  row.max_err = autop->err;
  row.ref_name = vs;
  int ok = path_ok(autop);
  if (!absent) {
    ok = ok && path_ok(other);
    row.ref_ms = other->ms;
    if (other->err < 0 || (row.max_err >= 0 && other->err > row.max_err)) row.max_err = other->err;
  }
  row.status = ok ? "ok" : "FAIL";
  if (!ok) {
    snprintf(note, sizeof note, "%s", autop->why[0] ? autop->why : other->why);
  } else {
    int n = snprintf(note, sizeof note, "auto=%s", auto_path);
    if (autop->ms > 0)
      n += snprintf(note + n, sizeof note - (size_t)n, ": %.2f us/step",
                    autop->ms * 1e3 / (double)T);
    if (absent)
      snprintf(note + n, sizeof note - (size_t)n, "; %s", absent);
    else if (other->ms > 0)
      snprintf(note + n, sizeof note - (size_t)n, "; %s: %.2f us/step", vs,
               other->ms * 1e3 / (double)T);
  }
  row.note = note;
  bench_report(b, &row);
}

static void rnn_case(bench *b, seqk_rnn_mode mode, seqk_dtype dt, int64_t H, int64_t N, int64_t T) {
  static const char *const modes[4] = {"rnn tanh", "rnn relu", "rnn lstm", "rnn gru"};
  static const int gates[4] = {1, 1, 4, 3};
  char name[160];
  snprintf(name, sizeof name, "%s %s H=%lld N=%lld T=%lld", modes[mode], bench_dtype_name(dt),
           (long long)H, (long long)N, (long long)T);
  if (!bench_selected(b, name)) return;
  rnn_arg a;
  memset(&a, 0, sizeof a);
  const int64_t G = gates[mode], I = H;
  int64_t xs[3] = {T, N, I}, ys[3] = {T, N, H}, wi[2] = {G * H, I}, wh[2] = {G * H, H},
          bs[1] = {G * H};
  a.desc = (seqk_rnn_desc){mode, (int32_t)I, (int32_t)H, 1, 0, 0};
  a.dtype = dt;
  const double wscale = 1.0 / (double)H;
  a.w_ih_cpu = bench_cpu_random(b, dt, 2, wi, 30, wscale * 4);
  a.w_hh_cpu = bench_cpu_random(b, dt, 2, wh, 31, wscale * 4);
  a.b_ih_cpu = bench_cpu_random(b, dt, 1, bs, 32, 0.1);
  a.b_hh_cpu = bench_cpu_random(b, dt, 1, bs, 33, 0.1);
  a.w_ih = bench_to_device(b, &a.w_ih_cpu);
  a.w_hh = bench_to_device(b, &a.w_hh_cpu);
  a.b_ih = bench_to_device(b, &a.b_ih_cpu);
  a.b_hh = bench_to_device(b, &a.b_hh_cpu);
  a.sets = bench_input_sets(b, (double)T * N * I * (double)seqk_dtype_size(dt));
  a.x_cpu = bench_cpu_random(b, dt, 3, xs, 34, 1.0);
  for (int s = 0; s < a.sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = bench_device_empty(b, dt, 3, ys);
  a.check_steps = b->small ? T : (T < 3 ? T : 3);
  a.check_batch = b->small ? N : (N < 4 ? N : 4);
  int64_t rs[3] = {a.check_steps, a.check_batch, H};
  a.ref = bench_cpu_empty(b, dt, 3, rs);
  const double flops = 2.0 * G * H * H * N * T;
  const char *auto_path =
      seqk__cuda_rnn_persistent_applies(b->ctx, mode, dt, N, H) ? "persistent" : "per-step";

  seqk_status st = rnn_reference(b, &a);
  if (st != SEQK_STATUS_SUCCESS) {
    bench_report_status(b, name, st);
    bench_release(b);
    return;
  }
  rnn_path autop, step, vs_cudnn;
  memset(&vs_cudnn, 0, sizeof vs_cudnn);
  rnn_check_and_time(b, &a, rnn_run, &a.y, "auto", &autop);
  if (autop.st == SEQK_STATUS_NOT_SUPPORTED) {
    bench_report_status(b, name, autop.st);
    bench_release(b);
    return;
  }
  if (!path_ok(&autop)) { /* nothing to compare with */
    rnn_row(b, name, flops, T, auto_path, &autop, &autop, NULL, "");
    bench_release(b);
    return;
  }
  rnn_check_and_time(b, &a, rnn_run_per_step, &a.y, "per-step", &step);
  rnn_row(b, name, flops, T, auto_path, &autop, &step, "per-step", NULL);

  /* cuDNN on the same device weights and inputs, into its own y. */
  char why[256];
  const char *absent = NULL;
  seqk_rnn_weights w = {&a.w_ih, &a.w_hh, &a.b_ih, &a.b_hh};
  a.cudnn = bench_cudnn_rnn_create(&a.desc, &w, dt, T, N, why, sizeof why);
  if (!bench_cudnn_available()) {
    absent = why;
  } else if (!a.cudnn) {
    vs_cudnn.st = SEQK_STATUS_DEVICE_ERROR;
    vs_cudnn.err = -2;
    vs_cudnn.ms = 0;
    snprintf(vs_cudnn.why, sizeof vs_cudnn.why, "cuDNN: %s", why);
  } else {
    a.y_cudnn = bench_device_empty(b, dt, 3, ys);
    rnn_check_and_time(b, &a, rnn_run_cudnn, &a.y_cudnn, "cuDNN", &vs_cudnn);
  }
  rnn_row(b, name, flops, T, auto_path, &autop, &vs_cudnn, "cuDNN", absent);
  bench_cudnn_rnn_destroy(a.cudnn);
  bench_release(b);
}

void bench_cases_rnn(bench *b) {
  static const seqk_rnn_mode gated[2] = {SEQK_RNN_MODE_LSTM, SEQK_RNN_MODE_GRU};
  if (b->small) {
    rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 16, 3, 4);
    rnn_case(b, SEQK_RNN_MODE_GRU, SEQK_DTYPE_F16, 8, 2, 5);
    rnn_case(b, SEQK_RNN_MODE_TANH, SEQK_DTYPE_BF16, 12, 1, 3);
    rnn_case(b, SEQK_RNN_MODE_RELU, SEQK_DTYPE_F32, 20, 5, 3);
    return;
  }
  /* DeepBench inference shapes */
  rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 1024, 64, 25);
  rnn_case(b, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 256, 16, 150);
  rnn_case(b, SEQK_RNN_MODE_GRU, SEQK_DTYPE_F32, 1024, 1, 1500);
  rnn_case(b, SEQK_RNN_MODE_TANH, SEQK_DTYPE_F32, 2560, 128, 50);
  /* small-batch latency: N = 1, 4, 8; H = 256, 512, 1024; T = 100 */
  static const int64_t batches[3] = {1, 4, 8};
  for (int m = 0; m < 2; ++m)
    for (int n = 0; n < 3; ++n)
      for (int64_t H = 256; H <= 1024; H *= 2)
        rnn_case(b, gated[m], SEQK_DTYPE_F32, H, batches[n], 100);
}
