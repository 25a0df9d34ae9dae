/*
 * harness.c - see harness.h. Tests may abort on their own setup failures; the library never does.
 */
#include "harness.h"

#include "geometry.h"
#include "numeric.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_passed, g_failed;
static const char *g_skip_reason;

/* Everything a test allocated, freed by th_finish(). */
static void **g_allocs;
static size_t g_n_allocs, g_cap_allocs;

static void *track(void *p) {
  if (!p) {
    fprintf(stderr, "harness: out of memory\n");
    abort();
  }
  if (g_n_allocs == g_cap_allocs) {
    g_cap_allocs = g_cap_allocs ? 2 * g_cap_allocs : 64;
    g_allocs = (void **)realloc(g_allocs, g_cap_allocs * sizeof *g_allocs);
    if (!g_allocs) abort();
  }
  g_allocs[g_n_allocs++] = p;
  return p;
}

void *th_alloc(size_t bytes) { return track(malloc(bytes ? bytes : 1)); }

/* ---- random ---------------------------------------------------------------------------------- */
void th_rng_seed(th_rng *rng, uint64_t seed) { rng->state = seed * 0x9E3779B97F4A7C15ull + 1; }

uint64_t th_rng_next(th_rng *rng) {
  uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double th_rng_uniform(th_rng *rng, double lo, double hi) {
  return lo + (hi - lo) * ((double)(th_rng_next(rng) >> 11) * 0x1.0p-53);
}

double th_rng_normal(th_rng *rng) {
  double u1 = th_rng_uniform(rng, 0x1.0p-53, 1.0), u2 = th_rng_uniform(rng, 0.0, 1.0);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int64_t th_rng_int(th_rng *rng, int64_t lo, int64_t hi_inclusive) {
  return lo + (int64_t)(th_rng_next(rng) % (uint64_t)(hi_inclusive - lo + 1));
}

/* ---- tensors --------------------------------------------------------------------------------- */
int64_t th_numel(const seqk_tensor *t) { return seqk__numel(t); }

seqk_tensor th_tensor_strided(seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                              const int64_t *pad, int64_t inner_stride) {
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.device = SEQK_DEVICE_CPU;
  t.ndim = ndim;
  int64_t stride = inner_stride < 1 ? 1 : inner_stride;
  for (int32_t i = ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.stride[i] = stride;
    stride *= shape[i] + (pad ? pad[i] : 0);
    if (stride == 0) stride = 1;
  }
  int64_t span = seqk__span(&t);
  size_t bytes = (size_t)(span > 0 ? span : 1) * seqk_dtype_size(dtype);
  t.data = track(malloc(bytes));
  if (span == 0) t.data = NULL; /* an empty tensor has no data, like seqk_tensor_alloc */
  th_poison(&t);
  return t;
}

seqk_tensor th_tensor_new(seqk_dtype dtype, int32_t ndim, const int64_t *shape) {
  return th_tensor_strided(dtype, ndim, shape, NULL, 1);
}

double th_get(const seqk_tensor *t, int64_t i) {
  return seqk__load(t, seqk__offset_of_linear(t, i));
}

void th_set(seqk_tensor *t, int64_t i, double v) {
  seqk__store(t, seqk__offset_of_linear(t, i), v);
}

void th_fill_uniform(seqk_tensor *t, th_rng *rng, double lo, double hi) {
  int64_t n = seqk__numel(t);
  for (int64_t i = 0; i < n; ++i) th_set(t, i, th_rng_uniform(rng, lo, hi));
}

void th_fill_normal(seqk_tensor *t, th_rng *rng, double scale) {
  int64_t n = seqk__numel(t);
  for (int64_t i = 0; i < n; ++i) th_set(t, i, scale * th_rng_normal(rng));
}

void th_fill_values(seqk_tensor *t, const double *values) {
  int64_t n = seqk__numel(t);
  for (int64_t i = 0; i < n; ++i) th_set(t, i, values[i]);
}

void th_fill_i32(seqk_tensor *t, const int32_t *values) {
  int64_t n = seqk__numel(t);
  for (int64_t i = 0; i < n; ++i) ((int32_t *)t->data)[seqk__offset_of_linear(t, i)] = values[i];
}

void th_poison(seqk_tensor *t) {
  int64_t span = seqk__span(t);
  if (t->data && span > 0) memset(t->data, 0xFF, (size_t)span * seqk_dtype_size(t->dtype));
}

double *th_to_doubles(const seqk_tensor *t) {
  int64_t n = seqk__numel(t);
  double *out = (double *)th_alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; ++i) out[i] = th_get(t, i);
  return out;
}

/* ---- tolerances ------------------------------------------------------------------------------ */
th_tol th_tol_for(seqk_dtype dtype) {
  switch (dtype) {
    case SEQK_DTYPE_F16: return (th_tol){1e-3, 2e-3};    /* eps 2^-10; one rounding is 2^-11 */
    case SEQK_DTYPE_BF16: return (th_tol){8e-3, 1.6e-2}; /* eps 2^-7 */
    case SEQK_DTYPE_F32: return (th_tol){1e-6, 2e-6};    /* eps 2^-23, a few roundings */
    case SEQK_DTYPE_I32: return (th_tol){0, 0};
  }
  return (th_tol){0, 0};
}

th_tol th_tol_scaled(seqk_dtype dtype, double factor) {
  th_tol t = th_tol_for(dtype);
  t.atol *= factor;
  t.rtol *= factor;
  return t;
}

/* ---- checks ---------------------------------------------------------------------------------- */
static int compare(const char *what, int64_t n, double (*get_out)(const void *, int64_t),
                   const void *out, const double *ref, th_tol tol) {
  double max_abs = 0, max_rel = 0, err2 = 0, ref2 = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    double o = get_out(out, i), r = ref[i];
    int ok;
    if (isnan(r))
      ok = isnan(o);
    else if (isinf(r))
      ok = (o == r);
    else {
      double e = fabs(o - r);
      ok = !isnan(o) && e <= tol.atol + tol.rtol * fabs(r);
      if (!isnan(o) && !isinf(o)) {
        err2 += e * e;
        ref2 += r * r;
        if (e > max_abs) max_abs = e;
        if (r != 0 && e / fabs(r) > max_rel) max_rel = e / fabs(r);
      }
    }
    if (!ok) {
      if (bad < 5)
        fprintf(stderr, "  %s: element %lld: got %.9g, expected %.9g\n", what, (long long)i, o, r);
      ++bad;
    }
  }
  int norm_ok = sqrt(err2) <= tol.rtol * sqrt(ref2) + tol.atol;
  if (bad || !norm_ok) {
    fprintf(stderr,
            "  %s: %lld of %lld elements out of bounds (atol %g, rtol %g); max abs %.3g, "
            "max rel %.3g, norm-relative %.3g\n",
            what, (long long)bad, (long long)n, tol.atol, tol.rtol, max_abs, max_rel,
            ref2 > 0 ? sqrt(err2 / ref2) : sqrt(err2));
    return 0;
  }
  return 1;
}

static double get_tensor(const void *t, int64_t i) { return th_get((const seqk_tensor *)t, i); }
static double get_double(const void *d, int64_t i) { return ((const double *)d)[i]; }

int th_check_close(const char *what, const seqk_tensor *out, const double *ref, th_tol tol) {
  int ok = compare(what, seqk__numel(out), get_tensor, out, ref, tol);
  TH_CHECK(ok, "%s differs from the reference", what);
  return ok;
}

int th_check_close_doubles(const char *what, const double *out, const double *ref, int64_t n,
                           th_tol tol) {
  int ok = compare(what, n, get_double, out, ref, tol);
  TH_CHECK(ok, "%s differs from the reference", what);
  return ok;
}

th_snapshot th_snapshot_take(const seqk_tensor *t) {
  th_snapshot s = {NULL, NULL, 0};
  if (!t || !t->data || t->device != SEQK_DEVICE_CPU || t->ndim < 0 || t->ndim > SEQK_MAX_DIMS)
    return s;
  s.data = t->data;
  s.bytes = (size_t)seqk__span(t) * seqk_dtype_size(t->dtype);
  s.copy = th_alloc(s.bytes);
  memcpy(s.copy, t->data, s.bytes);
  return s;
}

int th_snapshot_unchanged(const th_snapshot *s) {
  return s->bytes == 0 || memcmp(s->data, s->copy, s->bytes) == 0;
}

static int is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* needle occurs in msg with no identifier character right before or after it. */
static int names_token(const char *msg, const char *needle) {
  const size_t n = strlen(needle);
  if (n == 0) return 1;
  for (const char *p = strstr(msg, needle); p; p = strstr(p + 1, needle))
    if ((p == msg || !is_ident_char(p[-1])) && !is_ident_char(p[n])) return 1;
  return 0;
}

int th_expect_status(seqk_context_t ctx, seqk_status status, seqk_status expected,
                     const char *needle, const char *what) {
  int ok = status == expected;
  const char *msg = seqk_context_last_error(ctx);
  if (!ok) {
    th_fail(__FILE__, __LINE__, "%s: got status %s, expected %s (last error: \"%s\")", what,
            seqk_status_string(status), seqk_status_string(expected), msg);
    return 0;
  }
  if (expected != SEQK_STATUS_SUCCESS && ctx) {
    if (!msg || !msg[0] || (needle && !names_token(msg, needle))) {
      th_fail(__FILE__, __LINE__, "%s: last error \"%s\" does not name \"%s\"", what,
              msg ? msg : "(null)", needle ? needle : "");
      return 0;
    }
  }
  th_pass();
  return 1;
}

int th_expect_rejected(seqk_context_t ctx, seqk_status status, seqk_status expected,
                       const char *needle, const char *what, const th_snapshot *snaps, int n) {
  const int ok = th_expect_status(ctx, status, expected, needle, what);
  int unchanged = 1;
  for (int i = 0; i < n; ++i) unchanged &= th_snapshot_unchanged(&snaps[i]);
  TH_CHECK(unchanged, "%s: the rejected call wrote to memory it was given", what);
  return ok && unchanged;
}

/* ---- bookkeeping ----------------------------------------------------------------------------- */
/* Bounded runs (scripts/gpu_check.sh runs tests under compute-sanitizer, many times slower, in a
   fixed time): SEQK_TEST_MAX_CHECKS=N stops the test after its first N checks, and
   SEQK_TEST_MAX_SECONDS=S at the first check S seconds or more after its first one, with the
   usual summary and exit code for the checks that ran. */
static void stop_if_bounded(void) {
  static long max_checks = -1;
  static double max_seconds, t0;
  struct timespec now;
  timespec_get(&now, TIME_UTC); /* C11 (clock_gettime would need POSIX feature macros) */
  const double t = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
  if (max_checks < 0) {
    const char *n = getenv("SEQK_TEST_MAX_CHECKS"), *s = getenv("SEQK_TEST_MAX_SECONDS");
    max_checks = n ? atol(n) : 0;
    max_seconds = s ? atof(s) : 0;
    t0 = t;
  }
  const int checks = g_passed + g_failed;
  if ((max_checks > 0 && checks >= max_checks) || (max_seconds > 0 && t - t0 >= max_seconds)) {
    printf("stopped after %d checks, %.1f s (SEQK_TEST_MAX_CHECKS/SEQK_TEST_MAX_SECONDS)\n", checks,
           t - t0);
    exit(th_finish());
  }
}

void th_pass(void) {
  ++g_passed;
  stop_if_bounded();
}

void th_fail(const char *file, int line, const char *fmt, ...) {
  va_list args;
  ++g_failed;
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fputc('\n', stderr);
  stop_if_bounded();
}

void th_skip(const char *why) { g_skip_reason = why; }

/* ---- device parity --------------------------------------------------------------------------- */
static int g_dev_unavailable, g_dev_checked;

seqk_tensor th_absent(seqk_tensor t) {
  t.data = NULL;
  return t;
}

/* t's memory from its first element to its last, as a 1-D tensor of t's dtype on `device`. */
static seqk_tensor span_view(const seqk_tensor *t, void *data, seqk_device device) {
  const int64_t n[1] = {seqk__span(t)};
  return seqk_tensor_view(data, t->dtype, device, 1, n);
}

/* A CUDA tensor with t's layout over a fresh allocation of t's span (recorded in *backing, to
   be freed by the caller), filled with t's span, or with 0xFF bytes when poison is set. An
   absent or empty t gives a CUDA descriptor with no data. */
static seqk_status upload(seqk_context_t ctx, const seqk_tensor *t, int poison,
                          seqk_tensor *backing, seqk_tensor *dev) {
  *dev = *t;
  dev->device = SEQK_DEVICE_CUDA;
  dev->data = NULL;
  memset(backing, 0, sizeof *backing);
  const int64_t span = t->data ? seqk__span(t) : 0;
  if (span == 0) return SEQK_STATUS_SUCCESS;
  const size_t bytes = (size_t)span * seqk_dtype_size(t->dtype);
  void *fill = poison ? malloc(bytes) : t->data;
  if (!fill) abort();
  if (poison) memset(fill, 0xFF, bytes);
  seqk_tensor src = span_view(t, fill, SEQK_DEVICE_CPU);
  seqk_status st = seqk_tensor_alloc(ctx, backing, t->dtype, SEQK_DEVICE_CUDA, 1, &span);
  if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, backing, &src);
  if (poison) free(fill);
  dev->data = backing->data;
  return st;
}

/* dev's span copied back into *host (memory freed by th_finish), which gets dev's strides. A
   failure here is where an asynchronous kernel error shows: it fails the check. */
static int download(seqk_context_t ctx, const char *what, const seqk_tensor *dev,
                    seqk_tensor *host) {
  *host = *dev;
  host->device = SEQK_DEVICE_CPU;
  host->data = th_alloc((size_t)seqk__span(dev) * seqk_dtype_size(dev->dtype));
  seqk_tensor dst = span_view(dev, host->data, SEQK_DEVICE_CPU);
  seqk_tensor src = span_view(dev, dev->data, dev->device);
  if (seqk_tensor_copy(ctx, &dst, &src) == SEQK_STATUS_SUCCESS) {
    th_digest_span(host->data, (size_t)seqk__span(dev) * seqk_dtype_size(dev->dtype));
    return 1;
  }
  th_fail(__FILE__, __LINE__, "%s on CUDA: copying back failed: %s", what,
          seqk_context_last_error(ctx));
  return 0;
}

seqk_status th_upload(seqk_context_t ctx, const seqk_tensor *t, seqk_tensor *backing,
                      seqk_tensor *dev) {
  return upload(ctx, t, 0, backing, dev);
}

int th_download(seqk_context_t ctx, const char *what, const seqk_tensor *dev, seqk_tensor *host) {
  return download(ctx, what, dev, host);
}

/* Every element of t's span that is not one of t's elements still reads NaN (the poison). */
static int gaps_untouched(const seqk_tensor *t) {
  const int64_t span = seqk__span(t), n = seqk__numel(t);
  if (t->dtype == SEQK_DTYPE_I32 || n == span) return 1;
  char *is_elem = (char *)calloc((size_t)span, 1);
  int ok = 1;
  for (int64_t i = 0; i < n; ++i) is_elem[seqk__offset_of_linear(t, i)] = 1;
  for (int64_t o = 0; o < span; ++o) ok &= is_elem[o] || isnan(seqk__load(t, o));
  free(is_elem);
  return ok;
}

/* a and b (host memory, same dtype and span) hold the same values, NaN matching NaN. */
static int same_span(const seqk_tensor *a, const seqk_tensor *b) {
  int ok = 1;
  for (int64_t o = 0; o < seqk__span(a); ++o) {
    const double x = seqk__load(a, o), y = seqk__load(b, o);
    ok &= x == y || (isnan(x) && isnan(y));
  }
  return ok;
}

/* Index of an earlier input with the same host memory that covers in[j]'s span, or -1. */
static int shared_input(const seqk_tensor *in, int j, uint32_t host_inputs) {
  for (int i = 0; i < j; ++i)
    if (in[j].data && !(host_inputs & TH_HOST(i)) && in[i].data == in[j].data &&
        in[i].dtype == in[j].dtype && seqk__span(&in[i]) >= seqk__span(&in[j]))
      return i;
  return -1;
}

static uint64_t g_digest = 14695981039346656037ull; /* FNV-1a offset basis */
static int64_t g_digest_spans = 0;

void th_digest_span(const void *data, size_t bytes) {
  const unsigned char *p = (const unsigned char *)data;
  for (size_t i = 0; i < bytes; ++i) g_digest = (g_digest ^ p[i]) * 1099511628211ull;
  ++g_digest_spans;
}

void th_check_on_device(seqk_context_t ctx, const char *what, th_op_fn fn, void *user,
                        const seqk_tensor *in, int n_in, uint32_t host_inputs,
                        const seqk_tensor *out_ref, int n_out, double tol_factor) {
  if (seqk_cuda_device_count() == 0) return;
  if (n_in + n_out > TH_DEVICE_MAX_TENSORS) {
    th_fail(__FILE__, __LINE__, "%s: more than %d tensors for th_check_on_device", what,
            TH_DEVICE_MAX_TENSORS);
    return;
  }
  seqk_tensor din[TH_DEVICE_MAX_TENSORS], dout[TH_DEVICE_MAX_TENSORS];
  seqk_tensor backing[TH_DEVICE_MAX_TENSORS]; /* the allocations: inputs first, then outputs */
  seqk_status st = SEQK_STATUS_SUCCESS;
  char label[320];
  memset(backing, 0, sizeof backing);
  for (int i = 0; i < n_in; ++i) {
    const int owner = shared_input(in, i, host_inputs);
    din[i] = in[i];
    if (host_inputs & TH_HOST(i)) continue;
    if (owner >= 0) {
      din[i].device = SEQK_DEVICE_CUDA;
      din[i].data = din[owner].data;
    } else if (st == SEQK_STATUS_SUCCESS) {
      st = upload(ctx, &in[i], 0, &backing[i], &din[i]);
    }
  }
  for (int i = 0; i < n_out && st == SEQK_STATUS_SUCCESS; ++i)
    st = upload(ctx, &out_ref[i], 1, &backing[n_in + i], &dout[i]);
  if (st != SEQK_STATUS_SUCCESS) {
    th_fail(__FILE__, __LINE__, "%s: setting up CUDA tensors failed: %s", what,
            seqk_context_last_error(ctx));
  } else if ((st = fn(ctx, user, din, dout)) == SEQK_STATUS_NOT_SUPPORTED) {
    ++g_dev_unavailable;
  } else if (st != SEQK_STATUS_SUCCESS) {
    th_fail(__FILE__, __LINE__, "%s on CUDA: %s (%s)", what, seqk_status_string(st),
            seqk_context_last_error(ctx));
  } else {
    ++g_dev_checked;
    seqk_tensor got;
    for (int i = 0; i < n_out; ++i) {
      if (!dout[i].data || !download(ctx, what, &dout[i], &got)) continue;
      snprintf(label, sizeof label, "%s on CUDA: output %d", what, i);
      th_check_close(label, &got, th_to_doubles(&out_ref[i]),
                     th_tol_scaled(out_ref[i].dtype, TH_DEVICE_TOL * tol_factor));
      TH_CHECK(gaps_untouched(&got), "%s: written between the elements of a strided output", label);
    }
    int unchanged = 1;
    for (int i = 0; i < n_in; ++i)
      if (backing[i].data)
        unchanged &= download(ctx, what, &din[i], &got) && same_span(&got, &in[i]);
    TH_CHECK(unchanged, "%s on CUDA: an input was written", what);
  }
  for (int i = 0; i < n_in + n_out; ++i) seqk_tensor_free(ctx, &backing[i]);
}

int th_finish(void) {
  for (size_t i = 0; i < g_n_allocs; ++i) free(g_allocs[i]);
  free(g_allocs);
  g_allocs = NULL;
  g_n_allocs = g_cap_allocs = 0;
  if (g_skip_reason && g_failed == 0) {
    printf("skipped: %s\n", g_skip_reason);
    return 77;
  }
  printf("%d passed, %d failed\n", g_passed, g_failed);
  if (getenv("SEQK_TEST_DIGEST") && g_digest_spans > 0)
    printf("device digest: %016llx over %lld spans\n", (unsigned long long)g_digest,
           (long long)g_digest_spans);
  if (g_dev_unavailable || g_dev_checked)
    printf("device parity: %d cases not served on CUDA (NOT_SUPPORTED), %d checked\n",
           g_dev_unavailable, g_dev_checked);
  if (g_passed == 0 && g_failed == 0) {
    printf("no check ran\n");
    return 1;
  }
  return g_failed ? 1 : 0;
}

seqk_context_t th_context(void) {
  seqk_context_t ctx = NULL;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) {
    fprintf(stderr, "harness: seqk_context_create failed\n");
    abort();
  }
  return ctx;
}

/* ---- descriptors and watched buffers for the op tests ------------------------------------------ */

seqk_tensor th_tensor_maybe_strided(seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                                    int strided) {
  if (!strided) return th_tensor_new(dtype, ndim, shape);
  int64_t pad[SEQK_MAX_DIMS];
  for (int32_t d = 0; d < ndim; ++d) pad[d] = d + 1;
  return th_tensor_strided(dtype, ndim, shape, pad, 2);
}

seqk_tensor th_view_into(const seqk_tensor *store, int64_t offset, int32_t ndim,
                         const int64_t *shape) {
  char *base = (char *)store->data + offset * (int64_t)seqk_dtype_size(store->dtype);
  return seqk_tensor_view(base, store->dtype, store->device, ndim, shape);
}

seqk_tensor th_slice(const seqk_tensor *t, int32_t dim, int64_t start, int64_t len) {
  seqk_tensor s = *t;
  if (s.data) s.data = (char *)s.data + start * t->stride[dim] * (int64_t)seqk_dtype_size(t->dtype);
  s.shape[dim] = len;
  return s;
}

seqk_tensor th_on_cuda(seqk_tensor t) {
  t.device = SEQK_DEVICE_CUDA;
  return t;
}

seqk_tensor th_with_dtype(seqk_tensor t, seqk_dtype dtype) {
  t.dtype = dtype;
  return t;
}

seqk_tensor th_without_data(seqk_tensor t) {
  t.data = NULL;
  return t;
}

seqk_tensor th_with_shape(seqk_tensor t, int32_t ndim, const int64_t *shape) {
  return seqk_tensor_view(t.data, t.dtype, t.device, ndim, shape);
}

seqk_tensor th_self_overlapping(seqk_tensor t, int32_t d) {
  t.stride[d] = 0;
  return t;
}

const char *th_dtype_name(seqk_dtype dtype) {
  switch (dtype) {
    case SEQK_DTYPE_F32: return "f32";
    case SEQK_DTYPE_F16: return "f16";
    case SEQK_DTYPE_BF16: return "bf16";
    case SEQK_DTYPE_I32: return "i32";
  }
  return "?";
}

#define TH_MAX_WATCHED 16
static th_snapshot g_watched[TH_MAX_WATCHED];
static int g_n_watched;

void th_watch_reset(void) { g_n_watched = 0; }

void th_watch(const seqk_tensor *t) {
  if (g_n_watched < TH_MAX_WATCHED) g_watched[g_n_watched++] = th_snapshot_take(t);
}

int th_expect_rejected_watched(seqk_context_t ctx, seqk_status status, seqk_status expected,
                               const char *needle, const char *what) {
  return th_expect_rejected(ctx, status, expected, needle, what, g_watched, g_n_watched);
}

/* torch.nn.functional's definitions, in double. */
double th_activation(seqk_activation act, double v) {
  switch (act) {
    case SEQK_ACTIVATION_RELU: return v > 0.0 ? v : (isnan(v) ? v : 0.0);
    case SEQK_ACTIVATION_GELU: return v * 0.5 * erfc(-v / sqrt(2.0));
    case SEQK_ACTIVATION_GELU_TANH:
      return 0.5 * v *
             (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * pow(v, 3.0))));
    case SEQK_ACTIVATION_SILU: return v * (1.0 / (1.0 + exp(-v)));
    default: return v;
  }
}
