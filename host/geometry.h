/*
 * geometry.h - element counts, offsets and layouts of tensor descriptors (geometry.c, which also
 * holds seqk_dtype_size). Pure functions of the descriptor: nothing here reads tensor memory.
 * Not installed.
 */
#ifndef SEQK_GEOMETRY_H
#define SEQK_GEOMETRY_H

#include "seqk.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Some extent is 0: no element, whatever the other extents and strides (which no check bounds
   then, so they must not enter any product). */
int seqk__is_empty(const seqk_tensor *t);
int64_t seqk__numel(const seqk_tensor *t);
int seqk__is_contiguous(const seqk_tensor *t); /* row-major dense (size-1 dims free) */
/* Largest element offset + 1 (0 for an empty tensor): the elements the tensor's memory spans. */
int64_t seqk__span(const seqk_tensor *t);
/* Offset of the element at multi-index idx[0..ndim). */
int64_t seqk__offset(const seqk_tensor *t, const int64_t *idx);
/* Offset of the element with row-major linear index i (0 <= i < numel). */
int64_t seqk__offset_of_linear(const seqk_tensor *t, int64_t i);
/* t with dims 0 and 1 swapped (shape and strides; ndim >= 2, else t unchanged): an [S,B,...]
   tensor seen batch-first, without a copy. */
seqk_tensor seqk__swap_dims01(const seqk_tensor *t);
/* A contiguous descriptor of shape/dtype/device of t over data. */
seqk_tensor seqk__contiguous_like(const seqk_tensor *t, void *data);
/* Absent optional argument: NULL pointer or NULL data. */
int seqk__present(const seqk_tensor *t);
/* Same memory and layout: data, dtype, ndim, shape and strides all equal. */
int seqk__same_view(const seqk_tensor *a, const seqk_tensor *b);
/* t with every stride-0 dim of extent > 1 cut to extent 1: the same values, each read once (a
   broadcast input can name 2^62 positions over one element: a check of every value walks this). */
seqk_tensor seqk__distinct_view(const seqk_tensor *t);
/* The row-major position in t of the element at row-major position i of view (a
   seqk__distinct_view of t: the cut dims at index 0). */
int64_t seqk__linear_in(const seqk_tensor *view, int64_t i, const seqk_tensor *t);
/* "[i0,i1,...]": the multi-index of row-major position i in t's shape, "" for a 0-d t (whose
   only element needs no position). For messages that name an element. */
void seqk__format_position(char *buf, size_t size, const seqk_tensor *t, int64_t i);
/* The first ndim dims of n tensors with like's extents there, as fewer dims for a kernel's index
   arithmetic: size-1 dims dropped, a dim merged into the one before it when it continues it in
   every present tensor (ts[t] NULL: absent, its strides written as 0). Writes *out_ndim <= ndim,
   shape[0..*out_ndim) and tensor t's strides at stride[t * pitch + d]. */
void seqk__merge_dims(const seqk_tensor *like, const seqk_tensor *const *ts, int n, int32_t ndim,
                      int32_t *out_ndim, int64_t *shape, int64_t *stride, int pitch);
/* A packed tensor's token rows [first, first + rows) seen as B batches of rows (batch stride 0;
   seqk_attention_packed): t [T, H, X] -> [B, H, rows, X], t [H, T] (lse) -> [B, H, rows]. */
seqk_tensor seqk__packed_as_batches(const seqk_tensor *t, int64_t B, int64_t first, int64_t rows);
/* Bytes buf must hold for any position seqk__format_position writes. */
#define SEQK_POSITION_CHARS (SEQK_MAX_DIMS * 22 + 3)

#ifdef __cplusplus
}
#endif

#endif /* SEQK_GEOMETRY_H */
