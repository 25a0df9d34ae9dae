/*
 * overlap.h - whether tensors share memory (overlap.c): the questions behind every output check.
 * Exact for the layouts that come up (disjoint bounding boxes, views interleaved on a common
 * stride, anything up to SEQK_OVERLAP_EXACT_ELEMENTS elements, which are enumerated); beyond that
 * the answer is conservative: "may overlap". Not installed.
 */
#ifndef SEQK_OVERLAP_H
#define SEQK_OVERLAP_H

#include "seqk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tensors (together) up to this many elements are decided by enumerating their addresses. */
#define SEQK_OVERLAP_EXACT_ELEMENTS ((int64_t)1 << 20)

/* No two elements of t (validated, any strides) share an address. 0 may mean "cannot tell". */
int seqk__elements_distinct(const seqk_tensor *t);
/* Some byte of a's elements is a byte of b's (both present, same device). 1 may mean "cannot
   tell". */
int seqk__memory_overlaps(const seqk_tensor *a, const seqk_tensor *b);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_OVERLAP_H */
