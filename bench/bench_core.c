/*
 * bench_core.c - see bench_core.h.
 */
#include "bench_core.h"
#include "bench_commit.h" /* BENCH_COMMIT, written by the build (bench/commit.cmake) */

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRACKED 256

static seqk_tensor g_device[MAX_TRACKED];
static void *g_host[MAX_TRACKED];
static int g_n_device, g_n_host;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "seqk-bench: %s: %s\n", what, detail);
  exit(2);
}

static void check(bench *b, seqk_status st, const char *what) {
  if (st != SEQK_STATUS_SUCCESS) die(what, seqk_context_last_error(b->ctx));
}

static void check_cuda(cudaError_t err, const char *what) {
  if (err != cudaSuccess) die(what, cudaGetErrorString(err));
}

/* splitmix64 -> normal(0, 1) by Box-Muller: fixed seeds, reproducible inputs. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double next_normal(uint64_t *s) {
  double u1 = ((double)(next_u64(s) >> 11) + 1.0) * 0x1.0p-53;
  double u2 = (double)(next_u64(s) >> 11) * 0x1.0p-53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int64_t numel(const seqk_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

seqk_tensor bench_cpu_empty(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape) {
  (void)b;
  seqk_tensor t = seqk_tensor_view(NULL, dtype, SEQK_DEVICE_CPU, ndim, shape);
  size_t bytes = (size_t)numel(&t) * seqk_dtype_size(dtype);
  if (g_n_host == MAX_TRACKED) die("bench_cpu_empty", "too many tensors in one case");
  t.data = g_host[g_n_host++] = malloc(bytes ? bytes : 1);
  if (!t.data) die("bench_cpu_empty", "out of host memory");
  return t;
}

seqk_tensor bench_cpu_random(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape,
                             uint64_t seed, double scale) {
  /* Values are made in f32 and converted by the library, so every dtype sees the same data. */
  seqk_tensor f = bench_cpu_empty(b, SEQK_DTYPE_F32, ndim, shape);
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + 7;
  float *p = (float *)f.data;
  for (int64_t i = 0, n = numel(&f); i < n; ++i) p[i] = (float)(scale * next_normal(&s));
  if (dtype == SEQK_DTYPE_F32) return f;
  seqk_tensor t = bench_cpu_empty(b, dtype, ndim, shape);
  check(b, seqk_tensor_copy(b->ctx, &t, &f), "converting inputs");
  return t;
}

seqk_tensor bench_device_empty(bench *b, seqk_dtype dtype, int32_t ndim, const int64_t *shape) {
  seqk_tensor t;
  if (g_n_device == MAX_TRACKED) die("bench_device_empty", "too many tensors in one case");
  check(b, seqk_tensor_alloc(b->ctx, &t, dtype, SEQK_DEVICE_CUDA, ndim, shape), "device alloc");
  g_device[g_n_device++] = t;
  return t;
}

seqk_tensor bench_to_device(bench *b, const seqk_tensor *cpu) {
  seqk_tensor t = bench_device_empty(b, cpu->dtype, cpu->ndim, cpu->shape);
  check(b, seqk_tensor_copy(b->ctx, &t, cpu), "copy to device");
  return t;
}

void bench_release(bench *b) {
  for (int i = 0; i < g_n_device; ++i) seqk_tensor_free(b->ctx, &g_device[i]);
  for (int i = 0; i < g_n_host; ++i) free(g_host[i]);
  g_n_device = g_n_host = 0;
}

void bench_tolerance(seqk_dtype dtype, double *atol, double *rtol) {
  switch (dtype) {
    case SEQK_DTYPE_F16:
      *atol = 2e-3;
      *rtol = 4e-3;
      break;
    case SEQK_DTYPE_BF16:
      *atol = 1.6e-2;
      *rtol = 3.2e-2;
      break;
    default:
      *atol = 1e-5;
      *rtol = 1e-5;
      break;
  }
}

double bench_compare(bench *b, const seqk_tensor *dev, const seqk_tensor *ref, double atol,
                     double rtol) {
  /* Both sides as f32 on the CPU: exact for every dtype the library has. */
  seqk_tensor got = bench_cpu_empty(b, SEQK_DTYPE_F32, dev->ndim, dev->shape);
  seqk_tensor want = bench_cpu_empty(b, SEQK_DTYPE_F32, ref->ndim, ref->shape);
  check(b, seqk_tensor_copy(b->ctx, &got, dev), "copy result back");
  check(b, seqk_tensor_copy(b->ctx, &want, ref), "convert reference");
  const float *o = (const float *)got.data, *r = (const float *)want.data;
  double worst = 0;
  for (int64_t i = 0, n = numel(&got); i < n; ++i) {
    if (isnan(r[i]) || isinf(r[i])) {
      if (!(isnan(r[i]) ? isnan(o[i]) : o[i] == r[i])) return -1;
      continue;
    }
    if (isnan(o[i])) return -1;
    double e = fabs((double)o[i] - r[i]) / (atol + rtol * fabs(r[i]));
    if (e > worst) worst = e;
  }
  return worst;
}

int bench_input_sets(bench *b, double bytes_per_set) {
  if (!b->timing || bytes_per_set <= 0) return 1;
  int sets = (int)ceil(2.0 * (double)b->flush_bytes / 2 / bytes_per_set);
  return sets < 1 ? 1 : sets > 8 ? 8 : sets;
}

static int by_value(const void *x, const void *y) {
  double a = *(const double *)x, c = *(const double *)y;
  return (a > c) - (a < c);
}

double bench_time(bench *b, bench_fn fn, void *arg, int sets, seqk_status *status) {
  cudaEvent_t start, stop;
  double ms[64];
  int n = b->repeats > 64 ? 64 : b->repeats;
  *status = SEQK_STATUS_SUCCESS;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  for (int w = 0; w < 3 && *status == SEQK_STATUS_SUCCESS; ++w) *status = fn(b, arg, w % sets);
  for (int i = 0; i < n && *status == SEQK_STATUS_SUCCESS; ++i) {
    /* Evict the previous run's data from L2 so every timed run starts from HBM. */
    check_cuda(cudaMemsetAsync(b->flush, i & 0xFF, b->flush_bytes, NULL), "L2 flush");
    check_cuda(cudaEventRecord(start, NULL), "cudaEventRecord");
    *status = fn(b, arg, i % sets);
    check_cuda(cudaEventRecord(stop, NULL), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float t = 0;
    check_cuda(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
    ms[i] = t;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (*status != SEQK_STATUS_SUCCESS) return -1;
  qsort(ms, (size_t)n, sizeof ms[0], by_value);
  return ms[n / 2];
}

const char *bench_dtype_name(seqk_dtype d) {
  switch (d) {
    case SEQK_DTYPE_F32: return "f32";
    case SEQK_DTYPE_F16: return "f16";
    case SEQK_DTYPE_BF16: return "bf16";
    case SEQK_DTYPE_I32: return "i32";
  }
  return "?";
}

int bench_selected(bench *b, const char *name) {
  if (b->filter && !strstr(name, b->filter)) return 0;
  ++b->matched;
  if (b->list) {
    if (!b->quiet) printf("%s\n", name);
    return 0;
  }
  return 1;
}

/* A CSV field, quoted (names hold commas: "[4096,4096]", error texts anything). */
static void csv_field(FILE *f, const char *text) {
  fputc('"', f);
  for (const char *c = text; *c; ++c) {
    if (*c == '"') fputc('"', f);
    fputc(*c, f);
  }
  fputc('"', f);
}

void bench_report(bench *b, const bench_row *r) {
  double rate = 0;
  if (r->ms > 0) rate = r->is_bytes ? r->amount / (r->ms * 1e6) : r->amount / (r->ms * 1e9);
  if (b->rows++ == 0) {
    printf("%-52s %-5s %8s %10s %12s %8s  %s\n", "case", "check", "err/tol", "ms", "TFLOP/s|GB/s",
           "ratio", "vs");
    if (b->csv) fprintf(b->csv, "%s\n", BENCH_CSV_COLUMNS);
  }
  if (strcmp(r->status, "FAIL") == 0) ++b->failures;
  if (strcmp(r->status, "n/a") == 0) ++b->unavailable;
  double ratio = r->ref_ms > 0 && r->ms > 0 ? r->ref_ms / r->ms : 0;
  if (r->is_bytes && b->copy_gbs > 0 && rate > 0 && !r->ref_name) ratio = rate / b->copy_gbs;
  const char *vs = r->ref_name ? r->ref_name : (r->is_bytes && ratio > 0 ? "copy bandwidth" : "");
  char err[32] = "-", ms[32] = "-", rate_s[32] = "-", ratio_s[32] = "-";
  if (strcmp(r->status, "n/a") != 0) snprintf(err, sizeof err, "%.3f", r->max_err);
  if (r->ms > 0) {
    snprintf(ms, sizeof ms, "%.4f", r->ms);
    snprintf(rate_s, sizeof rate_s, "%.1f", rate);
  }
  if (ratio > 0) snprintf(ratio_s, sizeof ratio_s, "%.2f", ratio);
  printf("%-52s %-5s %8s %10s %12s %8s  %s%s%s\n", r->name, r->status, err, ms, rate_s, ratio_s, vs,
         r->note ? "  " : "", r->note ? r->note : "");
  if (b->csv) {
    csv_field(b->csv, r->name);
    fprintf(b->csv, ",%s,%.4f,%.5f,%.5f,%.3f,%s,%.4f,", r->status, r->max_err, r->ms, r->ref_ms,
            rate, r->is_bytes ? "GB/s" : "TFLOP/s", ratio);
    csv_field(b->csv, vs);
    fprintf(b->csv, ",%.6g,%.1f,", r->amount, b->copy_gbs);
    csv_field(b->csv, r->note ? r->note : "");
    fputc(',', b->csv);
    csv_field(b->csv, b->device ? b->device : "");
    fputc(',', b->csv);
    csv_field(b->csv, BENCH_COMMIT);
    fprintf(b->csv, ",%s\n", b->date);
  }
  fflush(stdout);
}

void bench_report_status(bench *b, const char *name, seqk_status st) {
  bench_row row = {0};
  row.name = name;
  row.status = st == SEQK_STATUS_NOT_SUPPORTED ? "n/a" : "FAIL";
  row.note =
      st == SEQK_STATUS_NOT_SUPPORTED ? "no CUDA kernel yet" : seqk_context_last_error(b->ctx);
  bench_report(b, &row);
}

void bench_run_case(bench *b, const bench_case *c, void *arg) {
  bench_row row = {0};
  seqk_status st = c->run(b, arg, 0);
  if (st == SEQK_STATUS_SUCCESS && cudaDeviceSynchronize() != cudaSuccess)
    st = SEQK_STATUS_DEVICE_ERROR;
  if (st != SEQK_STATUS_SUCCESS) {
    bench_report_status(b, c->name, st);
    return;
  }
  st = c->reference(b, arg);
  if (st != SEQK_STATUS_SUCCESS) {
    bench_report_status(b, c->name, st);
    return;
  }
  double atol, rtol;
  bench_tolerance(c->dtype, &atol, &rtol);
  row.name = c->name;
  row.max_err = bench_compare(b, c->out_dev, c->out_ref, atol, rtol);
  row.status = row.max_err >= 0 && row.max_err <= 1 ? "ok" : "FAIL";
  row.amount = c->amount;
  row.is_bytes = c->is_bytes;
  row.note = c->note;
  if (b->timing && strcmp(row.status, "ok") == 0) {
    row.ms = bench_time(b, c->run, arg, c->sets, &st);
    if (st == SEQK_STATUS_SUCCESS && c->comparison) {
      row.ref_ms = bench_time(b, c->comparison, arg, c->sets, &st);
      row.ref_name = c->comparison_name;
    }
    if (st != SEQK_STATUS_SUCCESS) {
      row.status = "FAIL";
      row.note = seqk_context_last_error(b->ctx);
    }
  }
  bench_report(b, &row);
}
