/*
 * example_util.c - shared glue for the seqk examples (see example_util.h).
 */
#include "example_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ex_check(seqk_context_t ctx, seqk_status status, const char *what) {
  if (status == SEQK_STATUS_SUCCESS) return;
  fprintf(stderr, "FAILED: %s: %s (%s)\n", what, seqk_status_string(status),
          seqk_context_last_error(ctx));
  exit(1);
}

static int64_t numel(const seqk_tensor *t) {
  int64_t n = 1;
  for (int32_t d = 0; d < t->ndim; ++d) n *= t->shape[d];
  return n;
}

/* Offset in elements of row-major element i, through t's strides. */
static int64_t offset_of(const seqk_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int32_t d = t->ndim - 1; d >= 0; --d) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return off;
}

static void require_cpu_f32(const seqk_tensor *t, const char *who) {
  if (t->dtype != SEQK_DTYPE_F32 || t->device != SEQK_DEVICE_CPU) {
    fprintf(stderr, "FAILED: %s wants an F32 tensor on the CPU\n", who);
    exit(1);
  }
}

float ex_get(const seqk_tensor *t, int64_t i) {
  require_cpu_f32(t, "ex_get");
  return ((const float *)t->data)[offset_of(t, i)];
}

/* ---- printing like torch ----------------------------------------------------------------------
 * torch puts every element in one column width, separates rows of a matrix with ",\n", blocks of
 * matrices with ",\n\n", and indents each line to just after the brackets already opened. */
static void print_block(const seqk_tensor *t, int32_t depth, int64_t first, int width) {
  if (depth == t->ndim) {
    printf("%*.4f", width, ex_get(t, first));
    return;
  }
  int64_t inner = 1;
  for (int32_t d = depth + 1; d < t->ndim; ++d) inner *= t->shape[d];
  printf("[");
  for (int64_t j = 0; j < t->shape[depth]; ++j) {
    if (j > 0) {
      if (depth == t->ndim - 1) {
        printf(", ");
      } else {
        printf(",");
        for (int32_t k = depth; k < t->ndim - 1; ++k) printf("\n");
        printf("%*s", (int)strlen("tensor(") + depth + 1, "");
      }
    }
    print_block(t, depth + 1, first + j * inner, width);
  }
  printf("]");
}

void ex_print(const char *label, const seqk_tensor *t) {
  require_cpu_f32(t, "ex_print");
  int width = 0;
  for (int64_t i = 0; i < numel(t); ++i) {
    int w = snprintf(NULL, 0, "%.4f", ex_get(t, i));
    if (w > width) width = w;
  }
  if (label) printf("%s\n", label);
  printf("tensor(");
  print_block(t, 0, 0, width);
  printf(")\n");
}

/* ---- comparing ------------------------------------------------------------------------------- */
/* Exits on a mismatch; returns the largest |difference|, and prints it unless quiet. */
static double compare(const char *what, const seqk_tensor *got, const seqk_tensor *want_t,
                      const float *want_a, double atol, double rtol, int quiet) {
  require_cpu_f32(got, what);
  int64_t n = numel(got), bad = 0, first_bad = 0;
  double max_diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    double g = ex_get(got, i), w = want_t ? ex_get(want_t, i) : want_a[i];
    double diff = fabs(g - w);
    /* Written so that NaN fails: every comparison with NaN is false. */
    if (!(diff <= atol + rtol * fabs(w))) {
      if (bad == 0) first_bad = i;
      ++bad;
    }
    if (!(diff <= max_diff)) max_diff = diff;
  }
  if (bad) {
    double g = ex_get(got, first_bad), w = want_t ? ex_get(want_t, first_bad) : want_a[first_bad];
    fprintf(stderr,
            "MISMATCH: %s: %lld of %lld elements off; element %lld is %.6f, expected %.6f "
            "(allowed %.1e + %.1e*|expected|)\n",
            what, (long long)bad, (long long)n, (long long)first_bad, g, w, atol, rtol);
    exit(1);
  }
  if (!quiet) printf("check %s: ok (max |diff| %.1e)\n", what, max_diff);
  return max_diff;
}

static double expect_close(const char *what, const seqk_tensor *got, const seqk_tensor *want,
                           double atol, double rtol, int quiet) {
  require_cpu_f32(want, what);
  if (got->ndim != want->ndim || memcmp(got->shape, want->shape, sizeof(int64_t) * got->ndim)) {
    fprintf(stderr, "MISMATCH: %s: the shapes differ\n", what);
    exit(1);
  }
  return compare(what, got, want, NULL, atol, rtol, quiet);
}

void ex_expect_close(const char *what, const seqk_tensor *got, const seqk_tensor *want, double atol,
                     double rtol) {
  expect_close(what, got, want, atol, rtol, 0);
}

void ex_expect_values(const char *what, const seqk_tensor *got, const float *want, double atol,
                      double rtol) {
  compare(what, got, NULL, want, atol, rtol, 0);
}

void ex_tolerance(seqk_dtype dtype, double *atol, double *rtol) {
  switch (dtype) {
    case SEQK_DTYPE_F16:
      *atol = 2e-3;
      *rtol = 4e-3;
      return;
    case SEQK_DTYPE_BF16:
      *atol = 1.6e-2;
      *rtol = 3.2e-2;
      return;
    default:
      *atol = 1e-5;
      *rtol = 1e-4;
      return; /* F32 */
  }
}

float ex_weight(int id, int64_t i) {
  return (float)(((7 * i + 13 * (int64_t)id) % 17) - 8) / 16.0f;
}

float *ex_fill(float *buf, int64_t n, int id) {
  for (int64_t i = 0; i < n; ++i) buf[i] = ex_weight(id, i);
  return buf;
}

/* ---- CPU run, then the same model on CUDA tensors -------------------------------------------- */
#define EX_MAX_TENSORS 32

static void free_all(seqk_context_t ctx, seqk_tensor *ts, int n) {
  for (int i = 0; i < n; ++i) seqk_tensor_free(ctx, &ts[i]);
}

void ex_run_model(seqk_context_t ctx, const char *name, ex_model_fn model, const void *user,
                  int n_in, const seqk_tensor *in, int n_out, seqk_tensor *out) {
  const char *failed_op = "?";
  char what[256];
  snprintf(what, sizeof what, "%s on the CPU", name);
  seqk_status st = model(ctx, user, in, out, &failed_op);
  if (st != SEQK_STATUS_SUCCESS) {
    snprintf(what, sizeof what, "%s on the CPU, in %s", name, failed_op);
    ex_check(ctx, st, what);
  }

  if (seqk_cuda_device_count() == 0) {
    printf("CUDA: no device, %s ran on the CPU only\n", name);
    return;
  }
  if (n_in > EX_MAX_TENSORS || n_out > EX_MAX_TENSORS) {
    fprintf(stderr, "FAILED: %s has more than %d inputs or outputs\n", name, EX_MAX_TENSORS);
    exit(1);
  }

  /* Device copies: same shapes and dtypes, contiguous. */
  seqk_tensor d_in[EX_MAX_TENSORS], d_out[EX_MAX_TENSORS];
  memset(d_in, 0, sizeof d_in);
  memset(d_out, 0, sizeof d_out);
  for (int i = 0; i < n_in; ++i) {
    snprintf(what, sizeof what, "%s: copying input %d to the GPU", name, i);
    ex_check(
        ctx,
        seqk_tensor_alloc(ctx, &d_in[i], in[i].dtype, SEQK_DEVICE_CUDA, in[i].ndim, in[i].shape),
        what);
    ex_check(ctx, seqk_tensor_copy(ctx, &d_in[i], &in[i]), what);
  }
  for (int i = 0; i < n_out; ++i) {
    snprintf(what, sizeof what, "%s: allocating output %d on the GPU", name, i);
    ex_check(ctx,
             seqk_tensor_alloc(ctx, &d_out[i], out[i].dtype, SEQK_DEVICE_CUDA, out[i].ndim,
                               out[i].shape),
             what);
  }

  failed_op = "?";
  st = model(ctx, user, d_in, d_out, &failed_op);
  if (st == SEQK_STATUS_NOT_SUPPORTED) {
    printf("CUDA: %s not available yet, skipped\n", failed_op);
  } else {
    snprintf(what, sizeof what, "%s on CUDA, in %s", name, failed_op);
    ex_check(ctx, st, what);
    double worst = 0;
    for (int i = 0; i < n_out; ++i) {
      seqk_tensor back;
      double atol, rtol;
      snprintf(what, sizeof what, "%s: copying output %d back", name, i);
      ex_check(
          ctx,
          seqk_tensor_alloc(ctx, &back, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, out[i].ndim, out[i].shape),
          what);
      ex_check(ctx, seqk_tensor_copy(ctx, &back, &d_out[i]), what);
      ex_tolerance(out[i].dtype, &atol, &rtol);
      snprintf(what, sizeof what, "%s output %d, CUDA vs CPU", name, i);
      double diff = expect_close(what, &back, &out[i], atol, rtol, 1);
      if (diff > worst) worst = diff;
      seqk_tensor_free(ctx, &back);
    }
    printf("CUDA: %s: all %d outputs match the CPU (max |diff| %.1e)\n", name, n_out, worst);
  }
  free_all(ctx, d_in, n_in);
  free_all(ctx, d_out, n_out);
}
