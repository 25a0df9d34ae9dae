/*
 * cases_memory.c - memory-bound cases: device tensor copies (with conversion and strides),
 * softmax along the last dim and along dim 0, split/merge heads, embedding gathers, attention
 * merges. Rates are GB/s counting each
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
  snprintf(name, sizeof name, "tensor_copy %s->%s [%lld,%lld,%lld,%lld]%s", bench_dtype_name(from),
           bench_dtype_name(to), (long long)shape[0], (long long)shape[1], (long long)shape[2],
           (long long)shape[3], transposed ? " BSHD->BHSD" : "");
  if (!bench_selected(b, name)) return;
  copy_arg a;
  double bytes = (double)shape[0] * shape[1] * shape[2] * shape[3] *
                 (double)(seqk_dtype_size(from) + seqk_dtype_size(to));
  int sets = bench_input_sets(b, bytes);
  a.src_cpu = bench_cpu_random(b, from, 4, shape, 1, 1.0);
  for (int s = 0; s < sets; ++s) a.src[s] = bench_to_device(b, &a.src_cpu);
  if (transposed) { /* view the BSHD buffer as BHSD: swap dims 1 and 2 */
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
  bench_case c = {name,           to,     bytes,  1,    sets, copy_run,
                  copy_reference, &a.dst, &a.ref, NULL, NULL, NULL};
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
  snprintf(name, sizeof name, "softmax %s [%lld,%lld] dim %d", bench_dtype_name(dt),
           (long long)rows, (long long)cols, (int)dim);
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
  bench_case c = {name, dt,     bytes, 1,    sets, softmax_run, softmax_reference,
                  &a.y, &a.ref, NULL,  NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- split / merge heads -------------------------------------------------------------------- */

typedef struct heads_arg {
  seqk_tensor x[MAX_SETS], y, x_cpu, ref;
  int32_t heads; /* 0: merge */
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
  a.x_cpu =
      split ? bench_cpu_random(b, dt, 3, bsx, 3, 1.0) : bench_cpu_random(b, dt, 4, bhsd, 3, 1.0);
  for (int s = 0; s < sets; ++s) a.x[s] = bench_to_device(b, &a.x_cpu);
  a.y = split ? bench_device_empty(b, dt, 4, bhsd) : bench_device_empty(b, dt, 3, bsx);
  a.ref = split ? bench_cpu_empty(b, dt, 4, bhsd) : bench_cpu_empty(b, dt, 3, bsx);
  bench_case c = {name, dt,     bytes, 1,    sets, heads_run, heads_reference,
                  &a.y, &a.ref, NULL,  NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- embedding ------------------------------------------------------------------------------ */

typedef struct embedding_arg {
  seqk_tensor idx[MAX_SETS], table, out, idx_cpu, table_cpu, ref;
} embedding_arg;

static seqk_status embedding_run(bench *b, void *p, int set) {
  embedding_arg *a = (embedding_arg *)p;
  return seqk_embedding(b->ctx, &a->idx[set], &a->table, &a->out);
}

static seqk_status embedding_reference(bench *b, void *p) {
  embedding_arg *a = (embedding_arg *)p;
  return seqk_embedding(b->ctx, &a->idx_cpu, &a->table_cpu, &a->ref);
}

/* n token ids into a [V, E] table. Bytes: each gathered row read once and written once, plus the
   ids. The op waits for its range check (a device-to-host copy of one word) before gathering. */
static void embedding_case(bench *b, seqk_dtype dt, int64_t n, int64_t V, int64_t E) {
  char name[128];
  snprintf(name, sizeof name, "embedding %s n=%lld V=%lld E=%lld", bench_dtype_name(dt),
           (long long)n, (long long)V, (long long)E);
  if (!bench_selected(b, name)) return;
  embedding_arg a;
  const int64_t ids[1] = {n}, tshape[2] = {V, E}, oshape[2] = {n, E};
  const double bytes = (double)n * ((double)E * 2.0 * (double)seqk_dtype_size(dt) + 4.0);
  const int sets = bench_input_sets(b, (double)n * 4.0);
  a.idx_cpu = bench_cpu_empty(b, SEQK_DTYPE_I32, 1, ids);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    ((int32_t *)a.idx_cpu.data)[i] = (int32_t)((s >> 33) % (uint64_t)V);
  }
  for (int k = 0; k < sets; ++k) a.idx[k] = bench_to_device(b, &a.idx_cpu);
  a.table_cpu = bench_cpu_random(b, dt, 2, tshape, 4, 1.0);
  a.table = bench_to_device(b, &a.table_cpu);
  a.out = bench_device_empty(b, dt, 2, oshape);
  a.ref = bench_cpu_empty(b, dt, 2, oshape);
  bench_case c = {name,   dt,     bytes, 1,    sets, embedding_run, embedding_reference,
                  &a.out, &a.ref, NULL,  NULL, NULL};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- attention merge ------------------------------------------------------------------------ */

typedef struct merge_arg {
  seqk_tensor oa[MAX_SETS], la, ob, lb, o, l, oa_cpu, la_cpu, ob_cpu, lb_cpu, ref, l_ref;
} merge_arg;

static seqk_status merge_run(bench *b, void *p, int set) {
  merge_arg *a = (merge_arg *)p;
  return seqk_attention_merge(b->ctx, &a->oa[set], &a->la, &a->ob, &a->lb, &a->o, &a->l);
}

static seqk_status merge_reference(bench *b, void *p) {
  merge_arg *a = (merge_arg *)p;
  return seqk_attention_merge(b->ctx, &a->oa_cpu, &a->la_cpu, &a->ob_cpu, &a->lb_cpu, &a->ref,
                              &a->l_ref);
}

/* Two attention results of `rows` rows of Dv over disjoint key sets (the split-KV combine step).
   Bytes: both parts and their lse read once, the merged o and lse written once. */
static void merge_case(bench *b, seqk_dtype dt, int64_t rows, int64_t Dv) {
  char name[128];
  snprintf(name, sizeof name, "attention_merge %s rows=%lld Dv=%lld", bench_dtype_name(dt),
           (long long)rows, (long long)Dv);
  if (!bench_selected(b, name)) return;
  merge_arg a;
  const int64_t oshape[2] = {rows, Dv}, lshape[1] = {rows};
  const double elem = (double)seqk_dtype_size(dt);
  const double bytes = (double)rows * (3.0 * (double)Dv * elem + 3.0 * 4.0);
  const int sets = bench_input_sets(b, (double)rows * (double)Dv * elem);
  a.oa_cpu = bench_cpu_random(b, dt, 2, oshape, 5, 1.0);
  a.ob_cpu = bench_cpu_random(b, dt, 2, oshape, 6, 1.0);
  a.la_cpu = bench_cpu_random(b, SEQK_DTYPE_F32, 1, lshape, 7, 3.0);
  a.lb_cpu = bench_cpu_random(b, SEQK_DTYPE_F32, 1, lshape, 8, 3.0);
  for (int k = 0; k < sets; ++k) a.oa[k] = bench_to_device(b, &a.oa_cpu);
  a.ob = bench_to_device(b, &a.ob_cpu);
  a.la = bench_to_device(b, &a.la_cpu);
  a.lb = bench_to_device(b, &a.lb_cpu);
  a.o = bench_device_empty(b, dt, 2, oshape);
  a.l = bench_device_empty(b, SEQK_DTYPE_F32, 1, lshape);
  a.ref = bench_cpu_empty(b, dt, 2, oshape);
  a.l_ref = bench_cpu_empty(b, SEQK_DTYPE_F32, 1, lshape);
  bench_case c = {name,
                  dt,
                  bytes,
                  1,
                  sets,
                  merge_run,
                  merge_reference,
                  &a.o,
                  &a.ref,
                  NULL,
                  NULL,
                  "o validated (lse written too)"};
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
    embedding_case(b, SEQK_DTYPE_F16, 37, 50, 24);
    embedding_case(b, SEQK_DTYPE_F32, 9, 7, 5);
    merge_case(b, SEQK_DTYPE_BF16, 33, 64);
    merge_case(b, SEQK_DTYPE_F32, 10, 7);
    return;
  }
  const int64_t big[4] = {8, 1024, 16, 128};
  copy_case(b, SEQK_DTYPE_F16, SEQK_DTYPE_F16, big, 0);
  copy_case(b, SEQK_DTYPE_F32, SEQK_DTYPE_BF16, big, 0);
  copy_case(b, SEQK_DTYPE_F16, SEQK_DTYPE_F16, big, 1);
  for (int i = 0; i < 3; ++i) {
    softmax_case(b, dts[i], 16384, 1024, -1); /* short rows: a warp per row */
    softmax_case(b, dts[i], 4096, 8192, -1);
    softmax_case(b, dts[i], 64, 1 << 20, -1); /* rows of 1M: a block (or more) per row */
    softmax_case(b, dts[i], 4096, 4096, 0);   /* the strided dim */
  }
  heads_case(b, SEQK_DTYPE_F16, 8, 1024, 16, 128, 1);
  heads_case(b, SEQK_DTYPE_F16, 8, 1024, 16, 128, 0);
  embedding_case(b, SEQK_DTYPE_BF16, 8 * 1024, 50304, 768); /* GPT-2 token embedding */
  embedding_case(b, SEQK_DTYPE_F16, 64, 128256, 4096);      /* a decode batch, LLaMA-3 */
  merge_case(b, SEQK_DTYPE_F16, 32 * 1024, 128);            /* decode rows, 32 heads x 1k */
  merge_case(b, SEQK_DTYPE_F32, 8 * 16 * 1024, 128);
}
