/*
 * overlap.c - see overlap.h. Three tests, cheapest first:
 *   1. layout: ordered by stride, each dim steps over everything the smaller dims span (distinct
 *      elements), or the bounding boxes of the two tensors are disjoint (no overlap);
 *   2. residues: every element of a starts at base_a + (a multiple of g), g the gcd of all byte
 *      strides of both tensors; if the byte ranges [base mod g, + element size) of a and of b do
 *      not meet modulo g, no element of a meets one of b (the odd and even elements of a buffer);
 *   3. enumeration: small tensors have their element addresses listed, sorted and compared.
 * Anything else is answered conservatively.
 */
#include "overlap.h"

#include "geometry.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct dim_layout {
  int64_t extent, stride;
} dim_layout;

static int by_stride(const void *a, const void *b) {
  const dim_layout *x = (const dim_layout *)a, *y = (const dim_layout *)b;
  return (x->stride > y->stride) - (x->stride < y->stride);
}

static int by_value(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The sorted byte offsets (from t->data) of t's elements, malloc'd; NULL when t is too large or
   memory is short. */
static int64_t *sorted_offsets(const seqk_tensor *t, int64_t n) {
  if (n > SEQK_OVERLAP_EXACT_ELEMENTS) return NULL;
  int64_t *off = (int64_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof *off);
  if (!off) return NULL;
  const int64_t es = (int64_t)seqk_dtype_size(t->dtype);
  for (int64_t i = 0; i < n; ++i) off[i] = seqk__offset_of_linear(t, i) * es;
  qsort(off, (size_t)n, sizeof *off, by_value);
  return off;
}

int seqk__elements_distinct(const seqk_tensor *t) {
  const int64_t n = seqk__numel(t);
  if (n == 0) return 1;
  dim_layout dims[SEQK_MAX_DIMS];
  int nd = 0;
  for (int32_t i = 0; i < t->ndim; ++i)
    if (t->shape[i] > 1) dims[nd++] = (dim_layout){t->shape[i], t->stride[i]};
  qsort(dims, (size_t)nd, sizeof dims[0], by_stride);
  int64_t covered = 1; /* elements spanned by the dims so far */
  int nested = 1;
  for (int i = 0; i < nd && nested; ++i) {
    if (dims[i].stride < covered) nested = 0;
    covered = dims[i].stride * (dims[i].extent - 1) + covered;
  }
  if (nested) return 1;
  for (int i = 0; i < nd; ++i)
    if (dims[i].stride == 0) return 0; /* a broadcast dim repeats its elements */
  int64_t *off = sorted_offsets(t, n);
  if (!off) return 0;
  int distinct = 1;
  for (int64_t i = 1; i < n && distinct; ++i) distinct = off[i] != off[i - 1];
  free(off);
  return distinct;
}

static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    const int64_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/* The byte strides of t's dims of extent > 1 folded into g by gcd. */
static int64_t fold_strides(const seqk_tensor *t, int64_t g) {
  const int64_t es = (int64_t)seqk_dtype_size(t->dtype);
  for (int32_t i = 0; i < t->ndim; ++i)
    if (t->shape[i] > 1) g = gcd64(g, t->stride[i] * es);
  return g;
}

/* [lo, lo + len) and [lo2, lo2 + len2) meet on the circle of circumference g (lo, lo2 in [0, g)). */
static int meet_mod(int64_t lo, int64_t len, int64_t lo2, int64_t len2, int64_t g) {
  if (len >= g || len2 >= g) return 1;
  const int64_t d = ((lo2 - lo) % g + g) % g; /* where the second starts, seen from the first */
  return d < len || d + len2 > g;
}

int seqk__memory_overlaps(const seqk_tensor *a, const seqk_tensor *b) {
  const int64_t na = seqk__numel(a), nb = seqk__numel(b);
  if (na == 0 || nb == 0) return 0;
  const int64_t ea = (int64_t)seqk_dtype_size(a->dtype), eb = (int64_t)seqk_dtype_size(b->dtype);
  const uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
  const uintptr_t a1 = a0 + (uintptr_t)(seqk__span(a) * ea), b1 = b0 + (uintptr_t)(seqk__span(b) * eb);
  if (!(a0 < b1 && b0 < a1)) return 0; /* 1: disjoint bounding boxes */

  /* 2: residues modulo the gcd of every byte stride. */
  const int64_t g = fold_strides(b, fold_strides(a, 0));
  if (g > 0) {
    const int64_t base = a0 < b0 ? (int64_t)a0 : (int64_t)b0;
    const int64_t ra = ((int64_t)a0 - base) % g, rb = ((int64_t)b0 - base) % g;
    if (!meet_mod(ra, ea, rb, eb, g)) return 0;
  }

  /* 3: both small: compare the sorted byte ranges. */
  if (na + nb > SEQK_OVERLAP_EXACT_ELEMENTS) return 1;
  int64_t *oa = sorted_offsets(a, na), *ob = sorted_offsets(b, nb);
  int overlap = 1;
  if (oa && ob) {
    const int64_t shift = (int64_t)(b0 - a0); /* b's offsets in a's frame (may be negative) */
    overlap = 0;
    for (int64_t i = 0, j = 0; i < na && j < nb && !overlap;) {
      const int64_t lo_a = oa[i], hi_a = oa[i] + ea;
      const int64_t lo_b = ob[j] + shift, hi_b = lo_b + eb;
      if (hi_a <= lo_b) ++i;
      else if (hi_b <= lo_a) ++j;
      else overlap = 1;
    }
  }
  free(oa);
  free(ob);
  return overlap;
}
