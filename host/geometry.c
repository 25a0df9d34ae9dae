/*
 * geometry.c - element sizes, counts, offsets and layouts of tensor descriptors (geometry.h).
 */
#include "geometry.h"

#include <stdio.h>

size_t seqk_dtype_size(seqk_dtype dtype) {
  switch (dtype) {
    case SEQK_DTYPE_F32: return 4;
    case SEQK_DTYPE_F16: return 2;
    case SEQK_DTYPE_BF16: return 2;
    case SEQK_DTYPE_I32: return 4;
  }
  return 0;
}

int seqk__is_empty(const seqk_tensor *t) {
  for (int32_t i = 0; i < t->ndim; ++i)
    if (t->shape[i] == 0) return 1;
  return 0;
}

int64_t seqk__numel(const seqk_tensor *t) {
  if (seqk__is_empty(t)) return 0;
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

int seqk__is_contiguous(const seqk_tensor *t) {
  int64_t expected = 1;
  for (int32_t i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] == 0) return 1;
    if (t->shape[i] != 1 && t->stride[i] != expected) return 0;
    expected *= t->shape[i];
  }
  return 1;
}

int64_t seqk__span(const seqk_tensor *t) {
  if (seqk__is_empty(t)) return 0;
  int64_t last = 0;
  for (int32_t i = 0; i < t->ndim; ++i) last += (t->shape[i] - 1) * t->stride[i];
  return last + 1;
}

int64_t seqk__offset(const seqk_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int32_t i = 0; i < t->ndim; ++i) off += idx[i] * t->stride[i];
  return off;
}

int64_t seqk__offset_of_linear(const seqk_tensor *t, int64_t linear) {
  int64_t off = 0;
  for (int32_t i = t->ndim - 1; i >= 0; --i) {
    int64_t extent = t->shape[i];
    off += (linear % extent) * t->stride[i];
    linear /= extent;
  }
  return off;
}

seqk_tensor seqk__swap_dims01(const seqk_tensor *t) {
  seqk_tensor v = *t;
  if (v.ndim >= 2) {
    v.shape[0] = t->shape[1];
    v.shape[1] = t->shape[0];
    v.stride[0] = t->stride[1];
    v.stride[1] = t->stride[0];
  }
  return v;
}

seqk_tensor seqk__contiguous_like(const seqk_tensor *t, void *data) {
  seqk_tensor c = *t;
  int64_t stride = 1;
  c.data = data;
  for (int32_t i = t->ndim - 1; i >= 0; --i) {
    c.stride[i] = stride;
    stride *= t->shape[i];
  }
  return c;
}

int seqk__present(const seqk_tensor *t) { return t != NULL && t->data != NULL; }

int seqk__same_view(const seqk_tensor *a, const seqk_tensor *b) {
  if (a->data != b->data || a->dtype != b->dtype || a->ndim != b->ndim) return 0;
  for (int32_t i = 0; i < a->ndim; ++i)
    if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->stride[i] != b->stride[i])) return 0;
  return 1;
}

void seqk__format_position(char *buf, size_t size, const seqk_tensor *t, int64_t n) {
  int64_t idx[SEQK_MAX_DIMS];
  buf[0] = '\0';
  if (t->ndim == 0) return;
  for (int32_t d = t->ndim - 1; d >= 0; --d) {
    idx[d] = n % t->shape[d];
    n /= t->shape[d];
  }
  size_t len = (size_t)snprintf(buf, size, "[");
  for (int32_t d = 0; d < t->ndim && len < size; ++d)
    len += (size_t)snprintf(buf + len, size - len, d ? ",%lld" : "%lld", (long long)idx[d]);
  if (len < size) snprintf(buf + len, size - len, "]");
}

seqk_tensor seqk__distinct_view(const seqk_tensor *t) {
  seqk_tensor v = *t;
  for (int32_t i = 0; i < v.ndim; ++i)
    if (v.stride[i] == 0 && v.shape[i] > 1) v.shape[i] = 1;
  return v;
}

int64_t seqk__linear_in(const seqk_tensor *view, int64_t i, const seqk_tensor *t) {
  int64_t idx[SEQK_MAX_DIMS], n = 0;
  for (int32_t d = view->ndim - 1; d >= 0; --d) {
    idx[d] = i % view->shape[d];
    i /= view->shape[d];
  }
  for (int32_t d = 0; d < t->ndim; ++d) n = n * t->shape[d] + idx[d];
  return n;
}

void seqk__merge_dims(const seqk_tensor *like, const seqk_tensor *const *ts, int n, int32_t ndim,
                      int32_t *out_ndim, int64_t *shape, int64_t *stride, int pitch) {
  int32_t kept = 0;
  for (int32_t d = 0; d < ndim; ++d) {
    const int64_t extent = like->shape[d];
    if (extent == 1) continue;
    int merge = kept > 0;
    for (int t = 0; t < n && merge; ++t)
      if (ts[t]) merge = stride[t * pitch + kept - 1] == ts[t]->stride[d] * extent;
    const int32_t at = merge ? kept - 1 : kept;
    shape[at] = merge ? shape[at] * extent : extent;
    for (int t = 0; t < n; ++t) stride[t * pitch + at] = ts[t] ? ts[t]->stride[d] : 0;
    if (!merge) ++kept;
  }
  *out_ndim = kept;
}

seqk_tensor seqk__packed_as_batches(const seqk_tensor *t, int64_t B, int64_t first, int64_t rows) {
  seqk_tensor v = *t;
  const int tok = t->ndim == 3 ? 0 : 1, head = 1 - tok;
  v.ndim = t->ndim + 1;
  v.shape[0] = B;
  v.stride[0] = 0;
  v.shape[1] = t->shape[head];
  v.stride[1] = t->stride[head];
  v.shape[2] = rows;
  v.stride[2] = t->stride[tok];
  if (t->ndim == 3) {
    v.shape[3] = t->shape[2];
    v.stride[3] = t->stride[2];
  }
  if (t->data && rows > 0)
    v.data = (char *)t->data + first * t->stride[tok] * (int64_t)seqk_dtype_size(t->dtype);
  return v;
}
