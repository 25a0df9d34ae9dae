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

#ifdef SEQK_HAVE_CUDA
/* A host <-> CUDA copy touches only the elements of the CUDA view: a strided view's gaps (other
   data of the caller's, perhaps being written on the device meanwhile) are neither read nor
   written back. The host side is staged as a contiguous tensor in the CUDA side's dtype where it
   is not one already (conversion and gathering on the host, through double: every conversion
   rounds once); a strided CUDA side goes through a contiguous piece of the workspace that the
   tensor_copy kernel scatters into or gathers from the view. The call returns when the host side
   is done (the stream is synchronised once, after the last transfer), so host buffers may be
   reused at once. */
static seqk_status copy_with_host(seqk_context_t ctx, const char *op, const seqk_tensor *dst,
                                  const seqk_tensor *src) {
  const int to_device = dst->device == SEQK_DEVICE_CUDA;
  const seqk_tensor *dev = to_device ? dst : src, *host = to_device ? src : dst;
  const size_t bytes = (size_t)seqk__numel(dev) * seqk_dtype_size(dev->dtype);
  seqk_status st = SEQK_STATUS_SUCCESS;
  void *stage = NULL;
  SEQK_TRY(seqk__require_device(ctx, op));
  /* The host side as dense elements of the device side's dtype: the caller's memory itself when
     it already is that. */
  const int host_direct = host->dtype == dev->dtype && seqk__is_contiguous(host);
  seqk_tensor host_dense = seqk__contiguous_like(dev, host->data);
  if (!host_direct) {
    if (!(stage = malloc(bytes)))
      return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: no host memory to stage %zu bytes", op,
                        bytes);
    host_dense.data = stage;
    host_dense.device = SEQK_DEVICE_CPU;
  }
  /* The device side as dense elements: the view itself, or a piece of the workspace. */
  seqk_tensor dev_dense = *dev;
  if (!seqk__is_contiguous(dev)) {
    seqk_arena arena;
    void *piece = NULL;
    if ((st = seqk__arena_open(ctx, op, seqk__ws_tensor(dev), &arena)) ||
        (st = seqk__arena_take(ctx, op, &arena, seqk__ws_tensor(dev), &piece)))
      goto done;
    dev_dense = seqk__contiguous_like(dev, piece);
  }
  if (to_device) {
    if (!host_direct) host_copy(&host_dense, src);
    if ((st = seqk__device_memcpy(ctx, op, dev_dense.data, host_dense.data, bytes, SEQK_COPY_H2D)))
      goto done;
    if (dev_dense.data != dst->data && (st = seqk__cuda_copy(ctx, op, dst, &dev_dense))) goto done;
    st = seqk__device_sync(ctx, op);
  } else {
    if (dev_dense.data != src->data && (st = seqk__cuda_copy(ctx, op, &dev_dense, src))) goto done;
    if ((st =
             seqk__device_memcpy(ctx, op, host_dense.data, dev_dense.data, bytes, SEQK_COPY_D2H)) ||
        (st = seqk__device_sync(ctx, op)))
      goto done;
    if (!host_direct) host_copy(dst, &host_dense);
  }
done:
  if (st != SEQK_STATUS_SUCCESS && stage)
    (void)seqk__device_sync(ctx, op); /* never free a buffer a queued copy still uses */
  free(stage);
  return st;
}
#endif

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
    /* Stream-ordered like every op: enqueued, not waited for. */
    SEQK_TRY(seqk__require_device(ctx, op));
    return seqk__cuda_copy(ctx, op, dst, src);
  }
  return copy_with_host(ctx, op, dst, src);
#else
  return seqk__built_without_cuda(ctx, op);
#endif
}
