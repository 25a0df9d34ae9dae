/*
 * tensor.c - tensor descriptors, allocation on either device, and seqk_tensor_copy.
 *
 * CUDA->CUDA copies run the strided convert kernel (kernels/tensor_copy.cu). Copies between
 * host and device memory are staged through host memory and converted by the same CPU loop as
 * host copies: one transfer of the span, correct for every stride and dtype pair.
 */
#include "tensor.h"

#include "cuda_copy.h"
#include "device.h"
#include "geometry.h"
#include "numeric.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

seqk_tensor seqk_tensor_view(void *data, seqk_dtype dtype, seqk_device device, int32_t ndim,
                             const int64_t *shape) {
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  if (ndim < 0 || ndim > SEQK_MAX_DIMS || (ndim > 0 && !shape)) {
    t.ndim = -1; /* rejected by every op */
    return t;
  }
  t.ndim = ndim;
  int64_t stride = 1;
  for (int32_t i = ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.stride[i] = stride;
    /* Saturate instead of overflowing: such a shape is rejected by every check anyway. */
    int64_t extent = shape[i] > 0 ? shape[i] : 1;
    stride = stride > INT64_MAX / extent ? INT64_MAX : stride * extent;
  }
  return t;
}

seqk_tensor seqk_tensor_view_strided(void *data, seqk_dtype dtype, seqk_device device, int32_t ndim,
                                     const int64_t *shape, const int64_t *stride) {
  seqk_tensor t = seqk_tensor_view(data, dtype, device, ndim, shape);
  if (t.ndim > 0 && !stride) t.ndim = -1;
  for (int32_t i = 0; i < t.ndim; ++i) t.stride[i] = stride[i];
  return t;
}

/* ---- allocation records (tensor.h) ---------------------------------------------------------- */

static seqk_status record_allocation(seqk_context_t ctx, void *data, seqk_device device) {
  if (ctx->n_allocs == ctx->cap_allocs) {
    size_t cap = ctx->cap_allocs ? 2 * ctx->cap_allocs : 16;
    seqk_alloc_record *grown = (seqk_alloc_record *)realloc(ctx->allocs, cap * sizeof *grown);
    if (!grown)
      return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "tensor_alloc: out of host memory");
    ctx->allocs = grown;
    ctx->cap_allocs = cap;
  }
  ctx->allocs[ctx->n_allocs++] = (seqk_alloc_record){data, device};
  return SEQK_STATUS_SUCCESS;
}

static void release(const seqk_alloc_record *r) {
  if (r->device == SEQK_DEVICE_CUDA)
    seqk__device_free(r->data);
  else
    free(r->data);
}

void seqk__release_allocations(seqk_context_t ctx) {
  for (size_t i = 0; i < ctx->n_allocs; ++i) release(&ctx->allocs[i]);
  free(ctx->allocs);
  ctx->allocs = NULL;
  ctx->n_allocs = ctx->cap_allocs = 0;
}

seqk_status seqk_tensor_alloc(seqk_context_t ctx, seqk_tensor *out, seqk_dtype dtype,
                              seqk_device device, int32_t ndim, const int64_t *shape) {
  static const char op[] = "tensor_alloc";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (!out) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: out is NULL", op);
  if (ndim > 0 && !shape)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: shape is NULL", op);
  if (ndim < 0 || ndim > SEQK_MAX_DIMS)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: ndim=%d out of range [0, %d]", op,
                      (int)ndim, SEQK_MAX_DIMS);
  /* Checked as a view of some memory (any non-NULL address): dtype, device, extents, size. */
  seqk_tensor t = seqk_tensor_view(ctx, dtype, device, ndim, shape);
  SEQK_TRY(seqk__check_tensor(ctx, op, "out", &t));
  t.data = NULL;
  int64_t numel = seqk__numel(&t);
  size_t elem = seqk_dtype_size(dtype);
  if (numel > (int64_t)(SIZE_MAX / 2 / elem))
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: %lld elements do not fit in memory", op,
                      (long long)numel);
  if (device == SEQK_DEVICE_CUDA) SEQK_TRY(seqk__require_device(ctx, op));
  if (numel > 0) {
    size_t bytes = (size_t)numel * elem;
    if (device == SEQK_DEVICE_CUDA) {
      SEQK_TRY(seqk__device_alloc(ctx, op, bytes, &t.data));
    } else {
      /* 64-byte alignment so vector loads and cache lines line up with the first element. */
      t.data = aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (!t.data)
        return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: malloc of %zu bytes failed", op,
                          bytes);
    }
    seqk_status st = record_allocation(ctx, t.data, device);
    if (st != SEQK_STATUS_SUCCESS) {
      release(&(seqk_alloc_record){t.data, device});
      return st;
    }
  }
  *out = t;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_tensor_free(seqk_context_t ctx, seqk_tensor *t) {
  if (!t || !t->data) return SEQK_STATUS_SUCCESS;
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  for (size_t i = 0; i < ctx->n_allocs; ++i) {
    if (ctx->allocs[i].data == t->data) {
      if (ctx->allocs[i].device == SEQK_DEVICE_CUDA) (void)seqk__device_sync(ctx, "tensor_free");
      release(&ctx->allocs[i]);
      ctx->allocs[i] = ctx->allocs[--ctx->n_allocs];
      memset(t, 0, sizeof *t);
      return SEQK_STATUS_SUCCESS;
    }
  }
  return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                    "tensor_free: t.data=%p was not allocated by seqk_tensor_alloc on this context",
                    t->data);
}

/* ---- copy ----------------------------------------------------------------------------------- */

/* dst = src on host memory, element by element: the bits when the dtypes match, else through
   double (exact for every float dtype, so each conversion rounds once). */
static void host_copy(const seqk_tensor *dst, const seqk_tensor *src) {
  int64_t n = seqk__numel(src);
  for (int64_t i = 0; i < n; ++i)
    seqk__copy_element(dst, seqk__offset_of_linear(dst, i), src, seqk__offset_of_linear(src, i));
}

static seqk_status copy_through_host(seqk_context_t ctx, const char *op, const seqk_tensor *dst,
                                     const seqk_tensor *src) {
  seqk_status st = SEQK_STATUS_SUCCESS;
  void *src_stage = NULL, *dst_stage = NULL;
  seqk_tensor host_src = *src, host_dst = *dst;
  int dst_dense = seqk__is_contiguous(dst);
  size_t src_bytes = (size_t)seqk__span(src) * seqk_dtype_size(src->dtype);
  /* A dense dst is written whole; a strided one keeps what lies between its elements, so its
     span is read first and written back around the new elements. */
  size_t dst_bytes =
      (size_t)(dst_dense ? seqk__numel(dst) : seqk__span(dst)) * seqk_dtype_size(dst->dtype);

  SEQK_TRY(seqk__require_device(ctx, op));
  if (src->device == SEQK_DEVICE_CUDA) {
    if (!(src_stage = malloc(src_bytes))) {
      st = seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: no host memory to stage src", op);
      goto done;
    }
    host_src.data = src_stage;
    if ((st = seqk__device_memcpy(ctx, op, src_stage, src->data, src_bytes, SEQK_COPY_D2H)))
      goto done;
  }
  if (dst->device == SEQK_DEVICE_CUDA) {
    if (!(dst_stage = malloc(dst_bytes))) {
      st = seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: no host memory to stage dst", op);
      goto done;
    }
    host_dst = dst_dense ? seqk__contiguous_like(dst, dst_stage) : *dst;
    host_dst.data = dst_stage;
    if (!dst_dense &&
        (st = seqk__device_memcpy(ctx, op, dst_stage, dst->data, dst_bytes, SEQK_COPY_D2H)))
      goto done;
  }
  if ((st = seqk__device_sync(ctx, op))) goto done;
  host_copy(&host_dst, &host_src);
  if (dst->device == SEQK_DEVICE_CUDA) {
    if ((st = seqk__device_memcpy(ctx, op, dst->data, dst_stage, dst_bytes, SEQK_COPY_H2D)))
      goto done;
    st = seqk__device_sync(ctx, op);
  }
done:
  if (st != SEQK_STATUS_SUCCESS && (src_stage || dst_stage))
    (void)seqk__device_sync(ctx, op); /* never free a buffer a queued copy still uses */
  free(src_stage);
  free(dst_stage);
  return st;
}

seqk_status seqk_tensor_copy(seqk_context_t ctx, seqk_tensor *dst, const seqk_tensor *src) {
  static const char op[] = "tensor_copy";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(seqk__check_tensor(ctx, op, "dst", dst));
  SEQK_TRY(seqk__check_tensor(ctx, op, "src", src));
  SEQK_TRY(seqk__check_shape(ctx, op, "dst", dst, src->ndim, src->shape));
  if ((src->dtype == SEQK_DTYPE_I32) != (dst->dtype == SEQK_DTYPE_I32))
    SEQK_TRY(seqk__check_same_dtype(ctx, op, "src", src, "dst", dst)); /* I32 only to I32 */
  SEQK_TRY(seqk__check_output(ctx, op, "dst", dst));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "dst", dst, "src", src));
  if (seqk__numel(src) == 0) return SEQK_STATUS_SUCCESS;
  if (src->device == SEQK_DEVICE_CPU && dst->device == SEQK_DEVICE_CPU) {
    host_copy(dst, src);
    return SEQK_STATUS_SUCCESS;
  }
#ifdef SEQK_HAVE_CUDA
  if (src->device == SEQK_DEVICE_CUDA && dst->device == SEQK_DEVICE_CUDA) {
    SEQK_TRY(seqk__require_device(ctx, op));
    SEQK_TRY(seqk__cuda_copy(ctx, op, dst, src));
    return seqk__device_sync(ctx, op); /* the API promises a finished copy */
  }
#endif
  return copy_through_host(ctx, op, dst, src);
}
