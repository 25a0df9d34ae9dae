/*
 * cases_memory.c - memory-bound cases: device tensor copies (with conversion and strides),
 * softmax along the last dim and along dim 0, split/merge heads. Rates are GB/s counting each
 * input read once and each output written once; the ratio is to the device copy bandwidth
 * measured in the same run.
 */
#include "bench_core.h"

#include <stdio.h>

#define MAX_SETS 8

/* ---- tensor copy ---------------------------------------------------------------------------- */

typedef struct copy_arg {
  seqk_tensor src[MAX_SETS], dst, src_cpu, ref;
} copy_arg;

static seqk_status copy_run(bench *b, void *p, int set) {
  copy_arg *a = (copy_arg *)p;
  return seqk_tensor_copy(b->ctx, &a->dst, &a->src[set]);
}

static seqk_status copy_reference(bench *b, void *p) {
  copy_arg *a = (copy_arg *)p;
  return seqk_tensor_copy(b->ctx, &a->ref, &a->src_cpu);
}

/* src [B,S,H,D] read as the [B,H,S,D] view when `transposed`, written contiguous. */
static void copy_case(bench *b, seqk_dtype from, seqk_dtype to, const int64_t shape[4],
                      int transposed) {
  char name[128];
  snprintf(name, sizeof name, "copy %s->%s [%lld,%lld,%lld,%lld]%s", bench_dtype_name(from),
           bench_dtype_name(to), (long long)shape[0],
           (long long)shape[1], (long long)shape[2], (long long)shape[3],
           transposed ? " BSHD->BHSD" : "");
  if (!bench_selected(b, name)) return;
  copy_arg a;
  double bytes = (double)shape[0] * shape[1] * shape[2] * shape[3] *
                 (double)(seqk_dtype_size(from) + seqk_dtype_size(to));
  int sets = bench_input_sets(b, bytes);
  a.src_cpu = bench_cpu_random(b, from, 4, shape, 1, 1.0);
  for (int s = 0; s < sets; ++s) a.src[s] = bench_to_device(b, &a.src_cpu);
  if (transposed) {   /* view the BSHD buffer as BHSD: swap dims 1 and 2 */
    int64_t view_shape[4] = {shape[0], shape[2], shape[1], shape[3]};
    for (int s = 0; s < sets; ++s) {
      seqk_tensor *t = &a.src[s];
      int64_t st1 = t->stride[1];
      t->shape[1] = view_shape[1];
      t->shape[2] = view_shape[2];
      t->stride[1] = t->stride[2];
      t->stride[2] = st1;
    }
    a.src_cpu.shape[1] = view_shape[1];
    a.src_cpu.shape[2] = view_shape[2];
    int64_t st1 = a.src_cpu.stride[1];
    a.src_cpu.stride[1] = a.src_cpu.stride[2];
    a.src_cpu.stride[2] = st1;
    a.dst = bench_device_empty(b, to, 4, view_shape);
    a.ref = bench_cpu_empty(b, to, 4, view_shape);
  } else {
    a.dst = bench_device_empty(b, to, 4, shape);
    a.ref = bench_cpu_empty(b, to, 4, shape);
  }
  bench_case c = {name, to, bytes, 1, sets, copy_run, copy_reference, &a.dst, &a.ref,
                  NULL, NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- softmax -------------------------------------------------------------------------------- */

typedef struct softmax_arg {
  seqk_tensor x[MAX_SETS], y, x_cpu, ref;
  int32_t dim;
} softmax_arg;

static seqk_status softmax_run(bench *b, void *p, int set) {
  softmax_arg *a = (softmax_arg *)p;
  return seqk_softmax(b->ctx, &a->x[set], a->dim, &a->y);
}

static seqk_status softmax_reference(bench *b, void *p) {
  softmax_arg *a = (softmax_arg *)p;
  return seqk_softmax(b->ctx, &a->x_cpu, a->dim, &a->ref);
}

static void softmax_case(bench *b, seqk_dtype dt, int64_t rows, int64_t cols, int32_t dim) {
  char name[128];
  snprintf(name, sizeof name, "softmax %s [%lld,%lld] dim %d", bench_dtype_name(dt), (long long)rows,
           (long long)cols, (int)dim);
  if (!bench_selected(b, name)) return;
  softmax_arg a;
  int64_t shape[2] = {rows, cols};
  double bytes = 2.0 * (double)rows * cols * (double)seqk_dtype_size(dt);
  int sets = bench_input_sets(b, bytes / 2);
  a.dim = dim;
  a.x_cpu = bench_cpu_random(b, dt, 2, shape, 2, 3.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = bench_device_empty(b, dt, 2, shape);
  a.ref = bench_cpu_empty(b, dt, 2, shape);
  bench_case c = {name, dt, bytes, 1, sets, softmax_run, softmax_reference, &a.y, &a.ref,
                  NULL, NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- split / merge heads -------------------------------------------------------------------- */

typedef struct heads_arg {
  seqk_tensor x[MAX_SETS], y, x_cpu, ref;
  int32_t heads;   /* 0: merge */
} heads_arg;

static seqk_status heads_run(bench *b, void *p, int set) {
  heads_arg *a = (heads_arg *)p;
  return a->heads ? seqk_split_heads(b->ctx, &a->x[set], a->heads, &a->y)
                  : seqk_merge_heads(b->ctx, &a->x[set], &a->y);
}

static seqk_status heads_reference(bench *b, void *p) {
  heads_arg *a = (heads_arg *)p;
  return a->heads ? seqk_split_heads(b->ctx, &a->x_cpu, a->heads, &a->ref)
                  : seqk_merge_heads(b->ctx, &a->x_cpu, &a->ref);
}

static void heads_case(bench *b, seqk_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D,
                       int split) {
  char name[128];
  snprintf(name, sizeof name, "%s_heads %s B=%lld S=%lld H=%lld D=%lld", split ? "split" : "merge",
           bench_dtype_name(dt), (long long)B, (long long)S, (long long)H, (long long)D);
  if (!bench_selected(b, name)) return;
  heads_arg a;
  int64_t bsx[3] = {B, S, H * D}, bhsd[4] = {B, H, S, D};
  double bytes = 2.0 * (double)B * S * H * D * (double)seqk_dtype_size(dt);
  int sets = bench_input_sets(b, bytes / 2);
  a.heads = split ? (int32_t)H : 0;
  a.x_cpu = split ? bench_cpu_random(b, dt, 3, bsx, 3, 1.0) : bench_cpu_random(b, dt, 4, bhsd, 3, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = split ? bench_device_empty(b, dt, 4, bhsd) : bench_device_empty(b, dt, 3, bsx);
  a.ref = split ? bench_cpu_empty(b, dt, 4, bhsd) : bench_cpu_empty(b, dt, 3, bsx);
  bench_case c = {name, dt, bytes, 1, sets, heads_run, heads_reference, &a.y, &a.ref,
                  NULL, NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

void bench_cases_memory(bench *b) {
  const seqk_dtype dts[3] = {SEQK_DTYPE_F16, SEQK_DTYPE_BF16, SEQK_DTYPE_F32};
  if (b->small) {
    const int64_t shape[4] = {2, 5, 3, 8};
    copy_case(b, SEQK_DTYPE_F32, SEQK_DTYPE_F16, shape, 0);
    copy_case(b, SEQK_DTYPE_BF16, SEQK_DTYPE_F32, shape, 1);
    for (int i = 0; i < 3; ++i) {
      softmax_case(b, dts[i], 7, 33, -1);
      softmax_case(b, dts[i], 3, 1000, -1);
      softmax_case(b, dts[i], 33, 5, 0);
    }
    heads_case(b, SEQK_DTYPE_F16, 2, 5, 3, 4, 1);
    heads_case(b, SEQK_DTYPE_F16, 2, 5, 3, 4, 0);
    return;
  }
  const int64_t big[4] = {8, 1024, 16, 128};
  copy_case(b, SEQK_DTYPE_F16, SEQK_DTYPE_F16, big, 0);
  copy_case(b, SEQK_DTYPE_F32, SEQK_DTYPE_BF16, big, 0);
  copy_case(b, SEQK_DTYPE_F16, SEQK_DTYPE_F16, big, 1);
  for (int i = 0; i < 3; ++i) {
    softmax_case(b, dts[i], 16384, 1024, -1);   /* short rows: a warp per row */
    softmax_case(b, dts[i], 4096, 8192, -1);
    softmax_case(b, dts[i], 64, 1 << 20, -1);   /* rows of 1M: a block (or more) per row */
    softmax_case(b, dts[i], 4096, 4096, 0);     /* the strided dim */
  }
  heads_case(b, SEQK_DTYPE_F16, 8, 1024, 16, 128, 1);
  heads_case(b, SEQK_DTYPE_F16, 8, 1024, 16, 128, 0);
}
