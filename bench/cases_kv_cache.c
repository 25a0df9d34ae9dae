/*
 * cases_kv_cache.c - seqk_kv_cache_append: a decode step's append (one new token per sequence)
 * into a contiguous and a paged cache, and a prefill chunk. Bytes: the new keys and values read
 * once and written once. A decode append moves a few hundred KB, so its time is mostly launch
 * latency: the rate says how far from the copy bandwidth that leaves it.
 * Validated on the whole key cache after the append (the CPU runs the same append on the same
 * initial cache). The timed runs append at the same positions again (advance off), so every run
 * does the same work.
 *
 * seqk_attention_kv_cache: decode (Sq = 1) over a contiguous cache and paged caches of 1, 16, 64
 * and 256 tokens a page, every sequence at the full context (1k to 128k), grouped-query heads
 * (H = 32 over Hk = 8, D = Dv = 128: LLaMA-3-8B's attention); and a chunked-prefill step (16
 * causal queries over a paged cache of 4k tokens). Decode is memory-bound: bytes = the K and V
 * rows read, B * Sk * Hk * (D + Dv) * element size, against the device copy bandwidth (as
 * attention's decode cases count their bytes). The prefill chunk counts FLOPs as the attention
 * cases do (4 * B * H * Sq * Sk * D) and is timed against the UNFUSED path (pages gathered, then
 * cuBLAS + softmax). Validated on the whole output against the CPU reference over the same cache
 * (which gathers the pages and runs seqk_attention). The calls run with deferred device checks
 * (a serving loop's mode: the check kernel without a host wait), reported after the case.
 */
#include "bench_core.h"

#include <stdio.h>
#include <string.h>

#define MAX_SETS 8

/* Page i of n -> i * 7919 mod n: a permutation (7919 is prime and does not divide these n), so the
   pages of a sequence lie far apart and every id is in [0, n). */
static void scatter_pages(seqk_tensor *table, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    ((int32_t *)table->data)[i] = (int32_t)(n % 7919 ? (i * 7919) % n : i);
}

typedef struct kv_arg {
  seqk_kv_cache cache, cache_cpu;
  seqk_tensor lens, lens_cpu, k_new, v_new, k_new_cpu, v_new_cpu;
} kv_arg;

static seqk_status kv_run(bench *b, void *p, int set) {
  kv_arg *a = (kv_arg *)p;
  (void)set;
  return seqk_kv_cache_append(b->ctx, &a->cache, &a->lens, 0, &a->k_new, &a->v_new);
}

static seqk_status kv_reference(bench *b, void *p) {
  kv_arg *a = (kv_arg *)p;
  return seqk_kv_cache_append(b->ctx, &a->cache_cpu, &a->lens_cpu, 0, &a->k_new_cpu, &a->v_new_cpu);
}

/* B sequences of capacity S_max (page_size > 0: paged, pages scattered by a fixed permutation),
   each at length S_max / 2 - (b % 7), appending S_new tokens of Hk heads of D. */
static void kv_case(bench *b, seqk_dtype dt, int64_t B, int64_t S_max, int64_t Hk, int64_t D,
                    int64_t S_new, int64_t page_size) {
  char name[160];
  snprintf(name, sizeof name, "kv_cache_append %s B=%lld S_new=%lld Hk=%lld D=%lld %s%lld",
           bench_dtype_name(dt), (long long)B, (long long)S_new, (long long)Hk, (long long)D,
           page_size ? "paged=" : "S_max=", (long long)(page_size ? page_size : S_max));
  if (!bench_selected(b, name)) return;
  kv_arg a;
  memset(&a, 0, sizeof a);
  const int64_t max_pages = page_size ? S_max / page_size : 1;
  const int64_t rows0 = page_size ? B * max_pages : B, rows1 = page_size ? page_size : S_max;
  const int64_t cs[4] = {rows0, rows1, Hk, D}, ns[4] = {B, S_new, Hk, D}, ls[1] = {B},
                ps[2] = {B, max_pages};
  a.cache_cpu.k = bench_cpu_random(b, dt, 4, cs, 40, 1.0);
  a.cache_cpu.v = bench_cpu_random(b, dt, 4, cs, 41, 1.0);
  a.k_new_cpu = bench_cpu_random(b, dt, 4, ns, 42, 1.0);
  a.v_new_cpu = bench_cpu_random(b, dt, 4, ns, 43, 1.0);
  a.lens_cpu = bench_cpu_empty(b, SEQK_DTYPE_I32, 1, ls);
  for (int64_t i = 0; i < B; ++i) {
    int64_t len = S_max / 2 - i % 7;
    ((int32_t *)a.lens_cpu.data)[i] = (int32_t)(len < 0 ? 0 : len);
  }
  if (page_size) {
    a.cache_cpu.page_table = bench_cpu_empty(b, SEQK_DTYPE_I32, 2, ps);
    scatter_pages(&a.cache_cpu.page_table, B * max_pages);
  }
  a.cache.k = bench_to_device(b, &a.cache_cpu.k);
  a.cache.v = bench_to_device(b, &a.cache_cpu.v);
  if (page_size) a.cache.page_table = bench_to_device(b, &a.cache_cpu.page_table);
  a.lens = bench_to_device(b, &a.lens_cpu);
  a.k_new = bench_to_device(b, &a.k_new_cpu);
  a.v_new = bench_to_device(b, &a.v_new_cpu);
  const double bytes = 4.0 * (double)(B * S_new * Hk * D) * (double)seqk_dtype_size(dt);
  bench_case c = {
      name,         dt,         bytes,          1,    1,    kv_run,
      kv_reference, &a.cache.k, &a.cache_cpu.k, NULL, NULL, "the whole key cache validated"};
  bench_run_case(b, &c, &a);
  bench_release(b);
}

/* ---- attention over the cache --------------------------------------------------------------- */

typedef struct akv_arg {
  seqk_kv_cache cache[MAX_SETS], cache_cpu;
  seqk_tensor q[MAX_SETS], o, lens, q_cpu, lens_cpu, ref;
  seqk_attention_params params;
} akv_arg;

static seqk_status akv_run_algo(bench *b, akv_arg *a, int set, seqk_attention_algo algo) {
  seqk_attention_params p = a->params;
  p.algo = algo;
  return seqk_attention_kv_cache(b->ctx, &p, &a->q[set], &a->cache[set], &a->lens, &a->o, NULL);
}

static seqk_status akv_run(bench *b, void *p, int set) {
  return akv_run_algo(b, (akv_arg *)p, set, SEQK_ATTENTION_ALGO_AUTO);
}

static seqk_status akv_run_unfused(bench *b, void *p, int set) {
  return akv_run_algo(b, (akv_arg *)p, set, SEQK_ATTENTION_ALGO_UNFUSED);
}

static seqk_status akv_reference(bench *b, void *p) {
  akv_arg *a = (akv_arg *)p;
  return seqk_attention_kv_cache(b->ctx, &a->params, &a->q_cpu, &a->cache_cpu, &a->lens_cpu,
                                 &a->ref, NULL);
}

/* Sq queries (the last positions, causal or not) of each of B sequences of Sk tokens in the
   cache: contiguous (page_size 0: k, v [B, Sk, Hk, D]) or paged (k, v [B * max_pages,
   page_size, Hk, D], max_pages = ceil(Sk / page_size), the table a scattered permutation of
   all the pages: every id in range, none read twice). cache_seqlens[b] = Sk, so a page size that
   does not divide Sk leaves the last page part-filled. The caches (and q) are rotated over the
   input sets; the table and the lengths are shared. */
static void akv_case(bench *b, const char *label, seqk_dtype dt, int64_t B, int64_t H, int64_t Hk,
                     int64_t Sq, int64_t Sk, int64_t D, int64_t page_size, int causal) {
  char name[160], layout[32];
  if (page_size)
    snprintf(layout, sizeof layout, "paged=%lld", (long long)page_size);
  else
    snprintf(layout, sizeof layout, "contiguous");
  snprintf(name, sizeof name,
           "attention_kv_cache%s %s B=%lld H=%lld/%lld Sq=%lld Sk=%lld D=%lld %s%s", label,
           bench_dtype_name(dt), (long long)B, (long long)H, (long long)Hk, (long long)Sq,
           (long long)Sk, (long long)D, layout, causal ? " causal" : "");
  if (!bench_selected(b, name)) return;
  akv_arg a;
  memset(&a, 0, sizeof a);
  const int64_t max_pages = page_size ? (Sk + page_size - 1) / page_size : 1;
  const int64_t rows0 = page_size ? B * max_pages : B, rows1 = page_size ? page_size : Sk;
  const int64_t cs[4] = {rows0, rows1, Hk, D}, qs[4] = {B, H, Sq, D}, ls[1] = {B},
                ps[2] = {B, max_pages};
  const double esize = (double)seqk_dtype_size(dt);
  const double kv_bytes = 2.0 * (double)(B * Sk * Hk * D) * esize;
  const double cache_bytes = 2.0 * (double)(rows0 * rows1 * Hk * D) * esize;
  const int sets = bench_input_sets(b, cache_bytes + (double)(B * H * Sq * D) * esize);
  a.cache_cpu.k = bench_cpu_random(b, dt, 4, cs, 50, 1.0);
  a.cache_cpu.v = bench_cpu_random(b, dt, 4, cs, 51, 1.0);
  a.q_cpu = bench_cpu_random(b, dt, 4, qs, 52, 1.0);
  a.lens_cpu = bench_cpu_empty(b, SEQK_DTYPE_I32, 1, ls);
  for (int64_t i = 0; i < B; ++i) ((int32_t *)a.lens_cpu.data)[i] = (int32_t)Sk;
  if (page_size) {
    a.cache_cpu.page_table = bench_cpu_empty(b, SEQK_DTYPE_I32, 2, ps);
    scatter_pages(&a.cache_cpu.page_table, B * max_pages);
  }
  seqk_tensor table = {0};
  if (page_size) table = bench_to_device(b, &a.cache_cpu.page_table);
  for (int s = 0; s < sets; ++s) {
    a.cache[s].k = bench_to_device(b, &a.cache_cpu.k);
    a.cache[s].v = bench_to_device(b, &a.cache_cpu.v);
    a.cache[s].page_table = table;
    a.q[s] = bench_to_device(b, &a.q_cpu);
  }
  a.lens = bench_to_device(b, &a.lens_cpu);
  a.o = bench_device_empty(b, dt, 4, qs);
  a.ref = bench_cpu_empty(b, dt, 4, qs);
  a.params = (seqk_attention_params){0};
  a.params.causal = causal;
  const double flops = 4.0 * (double)(B * H * Sq * Sk * D) * (causal && Sq == Sk ? 0.5 : 1.0);
  const int decode = Sq == 1;
  bench_case c = {name,
                  dt,
                  decode ? kv_bytes : flops,
                  decode,
                  sets,
                  akv_run,
                  akv_reference,
                  &a.o,
                  &a.ref,
                  decode ? NULL : akv_run_unfused,
                  decode ? NULL : "unfused",
                  "the whole output validated"};
  /* Deferred device checks, as a serving loop runs (and a captured graph must): the lengths and
     page ids are checked on the device without a host wait, and reported once afterwards. */
  const int deferred = b->ctx && seqk_context_set_device_checks(
                                     b->ctx, SEQK_DEVICE_CHECKS_DEFERRED) == SEQK_STATUS_SUCCESS;
  bench_run_case(b, &c, &a);
  if (deferred && seqk_context_check(b->ctx) != SEQK_STATUS_SUCCESS)
    fprintf(stderr, "%s: device check: %s\n", name, seqk_context_last_error(b->ctx));
  if (deferred) seqk_context_set_device_checks(b->ctx, SEQK_DEVICE_CHECKS_WAIT);
  bench_release(b);
}

void bench_cases_kv_cache(bench *b) {
  const int64_t page_sizes[5] = {1, 16, 64, 256, 0}; /* 0: contiguous */
  if (b->small) {
    kv_case(b, SEQK_DTYPE_F16, 3, 20, 2, 8, 2, 0);
    kv_case(b, SEQK_DTYPE_BF16, 3, 20, 2, 8, 3, 4);
    kv_case(b, SEQK_DTYPE_F32, 2, 9, 1, 5, 1, 1);
    /* The same layouts at a context of 300 (every page size leaves a part-filled last page) and
       8 heads over 2: the CPU emulation and the CPU reference take milliseconds. */
    for (int p = 0; p < 5; ++p)
      akv_case(b, " decode", SEQK_DTYPE_F16, 3, 8, 2, 1, 300, 128, page_sizes[p], 0);
    akv_case(b, " chunked_prefill", SEQK_DTYPE_F16, 2, 8, 2, 16, 100, 128, 16, 1);
    return;
  }
  kv_case(b, SEQK_DTYPE_F16, 32, 1024, 8, 128, 1, 0);   /* decode, contiguous */
  kv_case(b, SEQK_DTYPE_F16, 32, 1024, 8, 128, 1, 16);  /* decode, pages of 16 */
  kv_case(b, SEQK_DTYPE_F16, 4, 4096, 8, 128, 512, 64); /* a prefill chunk, pages of 64 */
  /* Decode over the cache. The batch shrinks as the context grows so one cache (K and V, f16,
     B * Sk * 8 heads * 256 * 2 bytes) stays small beside the GPU's memory, at most 512 MiB, times
     the rotated input sets (which only the short contexts get): B = 8 at 1k (32 MiB) and 8k
     (256 MiB), 4 at 32k (512 MiB), 1 at 128k (512 MiB; B = 1 as in attention's decode cases).
     The CPU reference (the whole output) is then at most about 2 GFLOP a case. */
  for (int64_t Sk = 1024; Sk <= 131072; Sk *= Sk < 8192 ? 8 : 4) {
    const int64_t B = Sk <= 8192 ? 8 : Sk <= 32768 ? 4 : 1;
    for (int p = 0; p < 5; ++p)
      akv_case(b, " decode", SEQK_DTYPE_F16, B, 32, 8, 1, Sk, 128, page_sizes[p], 0);
  }
  /* Chunked prefill: a chunk of 16 tokens already appended, attending causally to its sequence's
     4k tokens in pages of 16. */
  akv_case(b, " chunked_prefill", SEQK_DTYPE_F16, 4, 32, 8, 16, 4096, 128, 16, 1);
}
