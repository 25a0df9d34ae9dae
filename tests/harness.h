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
 * - th_check_on_device() reruns a CPU case on CUDA tensors when a device exists (the emulated
 *   backend in CI, a GPU when lent) and compares with the CPU outputs.
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
typedef struct th_rng {
  uint64_t state;
} th_rng;
void th_rng_seed(th_rng *rng, uint64_t seed);
uint64_t th_rng_next(th_rng *rng);
double th_rng_uniform(th_rng *rng, double lo, double hi);
double th_rng_normal(th_rng *rng); /* mean 0, variance 1 */
int64_t th_rng_int(th_rng *rng, int64_t lo, int64_t hi_inclusive);

/* ---- tensors -------------------------------------------------------------------------------- */
/* A contiguous CPU tensor, uninitialised (poisoned). ndim 0..6; shape may be NULL when ndim == 0. */
seqk_tensor th_tensor_new(seqk_dtype dtype, int32_t ndim, const int64_t *shape);
/* A CPU tensor whose dim i has stride >= the contiguous one: each dim is padded by pad[i]
   elements (pad may be NULL for no padding) and the innermost dim stride is inner_stride (>= 1).
   The gaps hold poison that an op must not read into results. */
seqk_tensor th_tensor_strided(seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                              const int64_t *pad, int64_t inner_stride);
/* th_tensor_new, or with `strided` a view with different padding on every dim and an inner
   stride of 2, so that no layout assumption survives. */
seqk_tensor th_tensor_maybe_strided(seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                                    int strided);
/* A contiguous descriptor over store's memory starting `offset` elements in (store is 1-D
   contiguous), for bad-input cases that need tensors to overlap on purpose. */
seqk_tensor th_view_into(const seqk_tensor *store, int64_t offset, int32_t ndim,
                         const int64_t *shape);
/* A view of t restricted to [start, start + len) along dim. */
seqk_tensor th_slice(const seqk_tensor *t, int32_t dim, int64_t start, int64_t len);
/* Descriptor edits for bad-input cases (the memory is not touched). */
seqk_tensor th_on_cuda(seqk_tensor t);
seqk_tensor th_with_dtype(seqk_tensor t, seqk_dtype dtype);
seqk_tensor th_without_data(seqk_tensor t);
seqk_tensor th_with_shape(seqk_tensor t, int32_t ndim, const int64_t *shape);
/* Every stride of dim d set to 0: two elements at one address when shape[d] > 1. */
seqk_tensor th_self_overlapping(seqk_tensor t, int32_t d);
/* "f32", "f16", "bf16", "i32". */
const char *th_dtype_name(seqk_dtype dtype);
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
void th_set(seqk_tensor *t, int64_t i, double v);
/* A malloc'd row-major double copy of t (freed by th_finish()). */
double *th_to_doubles(const seqk_tensor *t);
/* numel of a tensor. */
int64_t th_numel(const seqk_tensor *t);
/* A malloc'd scratch buffer freed by th_finish(). */
void *th_alloc(size_t bytes);

/* torch.nn.functional's definition of an activation, in double (the tests' own formulas, written
   apart from the library's). */
double th_activation(seqk_activation act, double v);

/* ---- tolerances ----------------------------------------------------------------------------- */
typedef struct th_tol {
  double atol, rtol;
} th_tol;
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
typedef struct th_snapshot {
  const void *data;
  void *copy;
  size_t bytes;
} th_snapshot;
th_snapshot th_snapshot_take(const seqk_tensor *t);
int th_snapshot_unchanged(const th_snapshot *s);

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
#define TH_SNAPS(...)                                                                              \
  (const th_snapshot[]){__VA_ARGS__},                                                              \
      (int)(sizeof((const th_snapshot[]){__VA_ARGS__}) / sizeof(th_snapshot))

/* The buffers a bad-input fixture owns: th_watch_reset() forgets them, th_watch() snapshots one
   more (up to 16), and th_expect_rejected_watched() is th_expect_rejected against all of them
   (outputs stay poisoned, inputs untouched). */
void th_watch_reset(void);
void th_watch(const seqk_tensor *t);
int th_expect_rejected_watched(seqk_context_t ctx, seqk_status status, seqk_status expected,
                               const char *needle, const char *what);

/* ---- bookkeeping ---------------------------------------------------------------------------- */
void th_pass(void);
void th_fail(const char *file, int line, const char *fmt, ...);
#define TH_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (cond)                                                                                      \
      th_pass();                                                                                   \
    else                                                                                           \
      th_fail(__FILE__, __LINE__, __VA_ARGS__);                                                    \
  } while (0)
/* Records that the whole executable cannot run here (e.g. no GPU); th_finish() then returns 77
   unless something failed. */
void th_skip(const char *why);
/* Prints the summary line and frees test tensors; returns the process exit code. */
int th_finish(void);

/* A context that must be created, or the test aborts (tests may abort; the library never does). */
seqk_context_t th_context(void);

/* ---- device parity -------------------------------------------------------------------------- */
/* The same op on CUDA tensors, compared with what the CPU reference produced. The test runs its
   CPU case as usual, then hands the inputs and the CPU outputs to th_check_on_device with an op
   function that calls the public entry on the tensors it is given. Where no CUDA device exists
   (seqk_cuda_device_count() == 0) nothing happens and nothing is counted. Otherwise:
   - each input is copied to a CUDA tensor with the same strides (its whole span is copied, so a
     strided view stays strided and its gaps keep their poison); an absent input (data NULL)
     stays absent; inputs whose bit is set in host_inputs (TH_HOST(i)) are passed as they are
     (e.g. rnn lengths, which live on the CPU for every op); inputs sharing one host pointer
     share one device copy (self-attention passes one tensor as query, key and value);
   - each output gets a CUDA tensor with out_ref's strides, every byte 0xFF (NaN); an absent
     out_ref (data NULL) stays absent;
   - fn(ctx, user, in, out) runs on those tensors. SEQK_STATUS_NOT_SUPPORTED is counted as "not
     available on CUDA yet" (neither a pass nor a failure); any other error fails with the last
     error; on success each output is compared with out_ref by th_check_close, the gaps of each
     strided output must still be poison, and the inputs must be unchanged.
   Tolerance of output i: th_tol_scaled(out_ref[i].dtype, TH_DEVICE_TOL * tol_factor), where
   tol_factor is the widening the CPU check of that op needed (1 for most ops) and 0 asks for
   exact equality (copies, gathers). The device tensors are freed before it returns. */
typedef seqk_status (*th_op_fn)(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out);
#define TH_DEVICE_MAX_TENSORS 32
#define TH_HOST(i)            (1u << (i))
/* GPU kernels accumulate in fp32 (not double) and may order sums differently, and their result
   is compared with a CPU result that was itself rounded once: 4x the one-rounding bound. */
#define TH_DEVICE_TOL 4.0
void th_check_on_device(seqk_context_t ctx, const char *what, th_op_fn fn, void *user,
                        const seqk_tensor *in, int n_in, uint32_t host_inputs,
                        const seqk_tensor *out_ref, int n_out, double tol_factor);
/* With SEQK_TEST_DIGEST set in the environment, every span a test copies back from a CUDA tensor
   is folded into one FNV-1a digest that th_finish() prints ("device digest: ..."): two builds
   whose digests agree produced bit-identical device results (the check behind "no change of
   behaviour" refactors). th_digest_span folds bytes in; the harness's own copies call it. */
void th_digest_span(const void *data, size_t bytes);
/* For device cases th_check_on_device cannot express (in place, misaligned views): *dev = t on
   a CUDA copy of t's whole span (gaps included; backing: the allocation, freed by the caller
   with seqk_tensor_free), and back: *host = a CPU copy of dev's span with dev's strides (freed
   by th_finish; a failed copy fails a check and returns 0). */
seqk_status th_upload(seqk_context_t ctx, const seqk_tensor *t, seqk_tensor *backing,
                      seqk_tensor *dev);
int th_download(seqk_context_t ctx, const char *what, const seqk_tensor *dev, seqk_tensor *host);
/* t with its data set to NULL: how to pass an absent optional input or output. */
seqk_tensor th_absent(seqk_tensor t);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_TEST_HARNESS_H */
