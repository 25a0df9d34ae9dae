/*
 * bench_core.h - the bench's machinery: random CPU tensors, device copies, validation against the
 * CPU reference, CUDA-event timing with L2 flushes and rotated inputs, and the result table.
 *
 * Every case runs its op on CUDA tensors. It first checks the result against the CPU reference
 * (the same op on CPU tensors); only a case that validated is timed. A case whose op answers
 * SEQK_STATUS_NOT_SUPPORTED is listed as "n/a" (no kernel serves the shape); any other error or a
 * mismatch is a FAIL and makes the bench exit non-zero.
 */
#ifndef SEQK_BENCH_CORE_H
#define SEQK_BENCH_CORE_H

#include "seqk.h"

#include <stdint.h>
#include <stdio.h>

typedef struct bench {
  seqk_context_t ctx;
  int timing;         /* 1: a real GPU, time the cases; 0: correctness pass only */
  int small;          /* shapes for the correctness pass (emulated build, CPU oracle) */
  const char *filter; /* run only cases whose name contains this */
  int list;           /* print the selected cases' names (unless quiet), run nothing */
  int quiet;
  int matched; /* cases the filter selected */
  FILE *csv;
  const char *device; /* for the CSV: the device's name, or the emulated build's */
  char date[32];      /* for the CSV: the run's UTC date and time (ISO 8601) */
  int repeats;        /* timed runs per case (median reported) */
  void *flush;        /* device buffer larger than L2, rewritten between timed runs */
  size_t flush_bytes;
  double copy_gbs; /* measured device copy bandwidth, the memory-bound yardstick */
  int rows, failures, unavailable;
} bench;

/* The CSV (--csv FILE): one header row, then a row per result; the columns are stable (new ones
   only ever go at the end) and documented in README.md, "The bench's CSV":
     case          the case name (as --list prints it; quoted)
     check         ok, FAIL or n/a
     err_over_tol  the largest |out - ref| / (atol + rtol |ref|) against the CPU reference
     ms            median milliseconds of the case's own path (0: not timed)
     ref_ms        median milliseconds of the comparison path named by vs (0: none)
     rate          amount / ms in unit (0: not timed)
     unit          TFLOP/s or GB/s
     ratio         ref_ms / ms, or rate / copy_gbs for memory-bound cases without a comparison
     vs            what ratio compares with
     amount        FLOPs or bytes per call
     copy_gbs      the run's measured device copy bandwidth (0: not measured)
     note          the case's remark (which path the dispatcher took, what was validated)
     device        the device's name (or "emulated CPU")
     commit        the source commit the bench was built from ("unknown" outside a git checkout)
     date          the run's UTC date and time, ISO 8601 */
#define BENCH_CSV_COLUMNS                                                                          \
  "case,check,err_over_tol,ms,ref_ms,rate,unit,ratio,vs,amount,copy_gbs,note,device,commit,"       \
  "date"

/* One timed call of the op on input set `set` (inputs rotated so caches do not flatter). */
typedef seqk_status (*bench_fn)(bench *b, void *arg, int set);

typedef struct bench_row {
  const char *name;
  const char *status;   /* "ok", "n/a", "FAIL" */
  double max_err;       /* vs the CPU reference, in units of the case's tolerance */
  double ms;            /* median; 0 when not timed */
  double amount;        /* FLOPs or bytes per call */
  int is_bytes;         /* amount is bytes (GB/s) rather than FLOPs (TFLOP/s) */
  double ref_ms;        /* the comparison path's median (0: none) */
  const char *ref_name; /* what the ratio compares with */
  const char *note;
} bench_row;

/* ---- tensors: every helper aborts the bench on a setup failure (bench code may; the library
   never does) ---------------------------------------------------------------------------------- */
seqk_tensor bench_cpu_random(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                             uint64_t seed, double scale);
seqk_tensor bench_cpu_empty(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape);
seqk_tensor bench_to_device(bench *b, const seqk_tensor *cpu);
seqk_tensor bench_device_empty(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape);
/* Tensors made above are freed together at the end of each case. */
void bench_release(bench *b);

/* Copies `dev` back and compares with `ref` (a CPU tensor of the same shape):
   |out - ref| <= atol + rtol |ref|, NaN never passes. Returns the largest error / bound (<= 1
   passes) or -1 when a value is NaN where the reference is not. */
double bench_compare(bench *b, const seqk_tensor *dev, const seqk_tensor *ref, double atol,
                     double rtol);
void bench_tolerance(seqk_dtype dtype, double *atol, double *rtol);

/* Median milliseconds of `repeats` calls of fn over `sets` rotated input sets, each preceded by
   an L2 flush (not timed). Returns -1 on an error status (kept in *status). */
double bench_time(bench *b, bench_fn fn, void *arg, int sets, seqk_status *status);
/* How many input sets of `bytes_per_set` it takes to cover twice the L2 (at most 8). */
int bench_input_sets(bench *b, double bytes_per_set);

/* "f32", "f16", "bf16", "i32". */
const char *bench_dtype_name(seqk_dtype dtype);
/* Records and prints one row (and its CSV line). */
void bench_report(bench *b, const bench_row *row);
/* Whether a case named `name` runs: it matches the filter (counted in b->matched) and this is
   not a --list run (which prints the name instead). */
int bench_selected(bench *b, const char *name);
/* The status of an op call that failed before timing: "n/a" for NOT_SUPPORTED, else FAIL. */
void bench_report_status(bench *b, const char *name, seqk_status st);

/* One case: run `run` on set 0, validate out_dev against out_ref (filled by `reference`, which
   runs the same op on CPU tensors, on the whole output or on the slice out_dev views), then time
   `run` and, when given, the comparison path. */
typedef struct bench_case {
  const char *name;
  seqk_dtype dtype; /* picks the tolerance */
  double amount;    /* FLOPs or bytes per call */
  int is_bytes;
  int sets; /* rotated input sets `run` can take */
  bench_fn run;
  seqk_status (*reference)(bench *b, void *arg);
  const seqk_tensor *out_dev, *out_ref;
  bench_fn comparison; /* optional */
  const char *comparison_name;
  const char *note;
} bench_case;
void bench_run_case(bench *b, const bench_case *c, void *arg);

/* ---- cases ---------------------------------------------------------------------------------- */
void bench_cases_memory(bench *b); /* tensor copy, softmax, split/merge heads, embedding, merge */
void bench_cases_attention(
    bench *b);                  /* attention sweep (AUTO vs UNFUSED), llm.c shape, linear, MHA */
void bench_cases_rnn(bench *b); /* DeepBench shapes, small-batch latency */
void bench_cases_kv_cache(bench *b); /* KV cache append: decode (contiguous, paged), prefill */
void bench_cases_blocks(bench *b);   /* norms, activations, rotary embeddings */

#endif /* SEQK_BENCH_CORE_H */
