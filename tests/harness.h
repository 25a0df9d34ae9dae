/*
 * harness.h - the small test framework every test executable shares.
 *
 * - Fixed seeds: th_rng_seed(&rng, N); never wall-clock.
 * - Test tensors are CPU tensors made by th_tensor_new (contiguous) or th_tensor_strided (a view
 *   with padding between rows, to exercise strides); all are freed by th_finish().
 * - th_poison() fills a tensor's whole span with 0xFF bytes (NaN in every float dtype) before an
 *   op writes it, so an element the op forgot stays NaN and fails the comparison.
 * - th_check_close() compares an output tensor with a double reference laid out row-major:
 *   |out - ref| <= atol + rtol*|ref| element-wise, plus ||out - ref||_2 <= rtol*||ref||_2 + atol,
 *   NaN in out fails unless ref is NaN too at that place (inf must match exactly). It prints the
 *   max abs/rel error and the first mismatches.
 * - Each TH_CHECK counts a pass or a failure; th_finish() prints "N passed, N failed" and gives the
 *   exit code (0 all passed, 1 some failed, 77 nothing ran because th_skip() was called).
 */
#ifndef SEQK_TEST_HARNESS_H
#define SEQK_TEST_HARNESS_H

#include "seqk.h"

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- random numbers (splitmix64) ------------------------------------------------------------ */
typedef struct th_rng { uint64_t state; } th_rng;
void     th_rng_seed(th_rng *rng, uint64_t seed);
uint64_t th_rng_next(th_rng *rng);
double   th_rng_uniform(th_rng *rng, double lo, double hi);
double   th_rng_normal(th_rng *rng);           /* mean 0, variance 1 */
int64_t  th_rng_int(th_rng *rng, int64_t lo, int64_t hi_inclusive);

/* ---- tensors -------------------------------------------------------------------------------- */
/* A contiguous CPU tensor, uninitialised (poisoned). ndim 0..6; shape may be NULL when ndim == 0. */
seqk_tensor th_tensor_new(seqk_dtype dtype, int32_t ndim, const int64_t *shape);
/* A CPU tensor whose dim i has stride >= the contiguous one: each dim is padded by pad[i]
   elements (pad may be NULL for no padding) and the innermost dim stride is inner_stride (>= 1).
   The gaps hold poison that an op must not read into results. */
seqk_tensor th_tensor_strided(seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                              const int64_t *pad, int64_t inner_stride);
/* A freshly filled tensor: uniform in [lo, hi), rounded to its dtype. */
void th_fill_uniform(seqk_tensor *t, th_rng *rng, double lo, double hi);
void th_fill_normal(seqk_tensor *t, th_rng *rng, double scale);
/* Fills a tensor from row-major doubles (rounded to its dtype). */
void th_fill_values(seqk_tensor *t, const double *values);
void th_fill_i32(seqk_tensor *t, const int32_t *values);
/* Every byte of t's span set to 0xFF. */
void th_poison(seqk_tensor *t);
/* Element at row-major linear index i, as a double. */
double th_get(const seqk_tensor *t, int64_t i);
void   th_set(seqk_tensor *t, int64_t i, double v);
/* A malloc'd row-major double copy of t (freed by th_finish()). */
double *th_to_doubles(const seqk_tensor *t);
/* numel of a tensor. */
int64_t th_numel(const seqk_tensor *t);
/* A malloc'd scratch buffer freed by th_finish(). */
void *th_alloc(size_t bytes);

/* ---- tolerances ----------------------------------------------------------------------------- */
typedef struct th_tol { double atol, rtol; } th_tol;
/* Bounds for a result computed in high precision and stored once in dtype. */
th_tol th_tol_for(seqk_dtype dtype);
/* The same bounds scaled by factor (for results that pass through several roundings). */
th_tol th_tol_scaled(seqk_dtype dtype, double factor);

/* ---- checks --------------------------------------------------------------------------------- */
/* Compare out (any strides) with the row-major reference ref. Returns 1 if it passes. */
int th_check_close(const char *what, const seqk_tensor *out, const double *ref, th_tol tol);
/* Compare two row-major double arrays of n elements. */
int th_check_close_doubles(const char *what, const double *out, const double *ref, int64_t n,
                           th_tol tol);
/* A byte snapshot of t's span, to prove later that an op left it untouched. */
typedef struct th_snapshot { const void *data; void *copy; size_t bytes; } th_snapshot;
th_snapshot th_snapshot_take(const seqk_tensor *t);
int         th_snapshot_unchanged(const th_snapshot *s);

/* Expect `status` from a call; on an error status also require a non-empty last error that
   names `needle` as a whole token (NULL skips that part): no letter, digit or '_' right before
   or after it, so "o" matches "output o overlaps q" but not the "o" inside "attention" or "o_a".
   Returns 1 if it passes (one check). */
int th_expect_status(seqk_context_t ctx, seqk_status status, seqk_status expected,
                     const char *needle, const char *what);
/* A rejected call: th_expect_status(...) plus a check that the n snapshots (the memory the call
   was given: at least its outputs) are byte-for-byte unchanged. Returns 1 if both pass (two
   checks). */
int th_expect_rejected(seqk_context_t ctx, seqk_status status, seqk_status expected,
                       const char *needle, const char *what, const th_snapshot *snaps, int n);
/* th_expect_rejected's last two arguments from a list of th_snapshot values:
   th_expect_rejected(ctx, got, expected, "o", "what", TH_SNAPS(go, gl)). */
#define TH_SNAPS(...)                  \
  (const th_snapshot[]){__VA_ARGS__}, \
      (int)(sizeof((const th_snapshot[]){__VA_ARGS__}) / sizeof(th_snapshot))

/* ---- bookkeeping ---------------------------------------------------------------------------- */
void th_pass(void);
void th_fail(const char *file, int line, const char *fmt, ...);
#define TH_CHECK(cond, ...)                          \
  do {                                               \
    if (cond) th_pass();                             \
    else th_fail(__FILE__, __LINE__, __VA_ARGS__);   \
  } while (0)
/* Records that the whole executable cannot run here (e.g. no GPU); th_finish() then returns 77
   unless something failed. */
void th_skip(const char *why);
/* Prints the summary line and frees test tensors; returns the process exit code. */
int th_finish(void);

/* A context that must be created, or the test aborts (tests may abort; the library never does). */
seqk_context_t th_context(void);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_TEST_HARNESS_H */
