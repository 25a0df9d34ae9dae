/*
 * cases_kv_cache.c - seqk_kv_cache_append: a decode step's append (one new token per sequence)
 * into a contiguous and a paged cache, and a prefill chunk. Bytes: the new keys and values read
 * once and written once. A decode append moves a few hundred KB, so its time is mostly launch
 * latency: the rate says how far from the copy bandwidth that leaves it.
 * Validated on the whole key cache after the append (the CPU runs the same append on the same
 * initial cache). The timed runs append at the same positions again (advance off), so every run
 * does the same work.
 */
#include "bench_core.h"

#include <stdio.h>
#include <string.h>

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
    /* i -> i * 7919 mod n is a permutation (7919 is prime and does not divide these n): the
       pages of a sequence lie far apart. */
    const int64_t n = B * max_pages;
    for (int64_t i = 0; i < n; ++i)
      ((int32_t *)a.cache_cpu.page_table.data)[i] = (int32_t)(n % 7919 ? (i * 7919) % n : i);
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

void bench_cases_kv_cache(bench *b) {
  if (b->small) {
    kv_case(b, SEQK_DTYPE_F16, 3, 20, 2, 8, 2, 0);
    kv_case(b, SEQK_DTYPE_BF16, 3, 20, 2, 8, 3, 4);
    kv_case(b, SEQK_DTYPE_F32, 2, 9, 1, 5, 1, 1);
    return;
  }
  kv_case(b, SEQK_DTYPE_F16, 32, 1024, 8, 128, 1, 0);   /* decode, contiguous */
  kv_case(b, SEQK_DTYPE_F16, 32, 1024, 8, 128, 1, 16);  /* decode, pages of 16 */
  kv_case(b, SEQK_DTYPE_F16, 4, 4096, 8, 128, 512, 64); /* a prefill chunk, pages of 64 */
}
