/*
 * device.c - CUDA runtime calls of the host code (see device.h). With SEQK_HAVE_CUDA undefined
 * (no toolkit at configure time) every entry reports that this build has no CUDA.
 */
#include "device.h"

#include "geometry.h"

#include <stdint.h>

seqk_status seqk__built_without_cuda(seqk_context_t ctx, const char *op) {
  return seqk__fail(ctx, SEQK_STATUS_NO_DEVICE, "%s: this seqk was built without CUDA", op);
}

/* ---- the workspace arena (device.h); the same in every build: without CUDA, opening fails ------ */

size_t seqk__ws_elems(int64_t n, size_t elem_size) {
  if (n < 0 || n == INT64_MAX) return SIZE_MAX;
  if (elem_size != 0 && (uint64_t)n > (SIZE_MAX - SEQK_WS_ALIGN) / elem_size) return SIZE_MAX;
  size_t bytes = (size_t)n * elem_size;
  return (bytes + SEQK_WS_ALIGN - 1) / SEQK_WS_ALIGN * SEQK_WS_ALIGN;
}

size_t seqk__ws_tensor(const seqk_tensor *t) {
  return seqk__ws_elems(seqk__numel(t), seqk_dtype_size(t->dtype));
}

size_t seqk__ws_sum(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

int64_t seqk__mul_sat(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return INT64_MAX;
  if (a != 0 && b > INT64_MAX / a) return INT64_MAX;
  return a * b;
}

seqk_status seqk__arena_open(seqk_context_t ctx, const char *op, size_t bytes, seqk_arena *arena) {
  void *base = NULL;
  arena->base = NULL;
  arena->size = arena->used = 0;
  if (bytes == SIZE_MAX)
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "%s: the device workspace this shape needs does not fit in size_t", op);
  if (bytes == 0) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(seqk__workspace(ctx, op, bytes, &base));
  arena->base = (char *)base;
  arena->size = bytes;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__arena_take(seqk_context_t ctx, const char *op, seqk_arena *arena, size_t bytes,
                             void **ptr) {
  const size_t rounded = seqk__ws_elems((int64_t)(bytes > INT64_MAX - 1 ? INT64_MAX : bytes), 1);
  if (rounded == SIZE_MAX || rounded > arena->size - arena->used)
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: workspace plan too small (%zu of %zu bytes used, %zu more asked)", op,
                      arena->used, arena->size, bytes);
  *ptr = rounded ? arena->base + arena->used : NULL;
  arena->used += rounded;
  return SEQK_STATUS_SUCCESS;
}

#ifdef SEQK_HAVE_CUDA
#include <cuda_runtime_api.h>

#define SEQK_CUDA_CALL(ctx, op, call)                                                              \
  do {                                                                                             \
    cudaError_t seqk__err = (call);                                                                \
    if (seqk__err != cudaSuccess)                                                                  \
      return seqk__fail((ctx), SEQK_STATUS_DEVICE_ERROR, "%s: %s failed: %s (%s:%d)", (op), #call, \
                        cudaGetErrorString(seqk__err), __FILE__, __LINE__);                        \
  } while (0)

int32_t seqk_cuda_device_count(void) { return seqk__device_count(); }

int32_t seqk__device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* no driver or no GPU is an answer, not a sticky error */
    return 0;
  }
  return (int32_t)n;
}

seqk_status seqk__require_device(seqk_context_t ctx, const char *op) {
  if (seqk__device_count() == 0)
    return seqk__fail(ctx, SEQK_STATUS_NO_DEVICE,
                      "%s: a CUDA tensor was given but no CUDA device is usable", op);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__device_info(seqk_context_t ctx, const char *op, const seqk_device_info **info) {
  if (!ctx->device_known) {
    seqk_device_info d;
    int dev = 0, v[5] = {0, 0, 0, 0, 0};
    static const enum cudaDeviceAttr attrs[5] = {
        cudaDevAttrMultiProcessorCount, cudaDevAttrComputeCapabilityMajor,
        cudaDevAttrComputeCapabilityMinor, cudaDevAttrMaxSharedMemoryPerBlockOptin,
        cudaDevAttrCooperativeLaunch};
    SEQK_TRY(seqk__require_device(ctx, op));
    SEQK_CUDA_CALL(ctx, op, cudaGetDevice(&dev));
    for (int i = 0; i < 5; ++i)
      SEQK_CUDA_CALL(ctx, op, cudaDeviceGetAttribute(&v[i], attrs[i], dev));
    d.sms = v[0];
    d.cc_major = v[1];
    d.cc_minor = v[2];
    d.smem_optin = (size_t)(v[3] > 0 ? v[3] : 0);
    d.cooperative = v[4];
    ctx->device_info = d;
    ctx->device_known = 1;
  }
  *info = &ctx->device_info;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_device_readable(seqk_context_t ctx, const char *op, const char *name,
                                        const void *p) {
  struct cudaPointerAttributes a;
  if (!p) return SEQK_STATUS_SUCCESS;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError(); /* cannot tell: not an error of the call */
    return SEQK_STATUS_SUCCESS;
  }
  if (a.type == cudaMemoryTypeUnregistered)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s is host memory, but an op on CUDA tensors reads it on the device "
                      "(pass device, managed or pinned memory)",
                      op, name);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__launched(seqk_context_t ctx, const char *op, const char *kernel, int cuda_error) {
  const cudaError_t err = (cudaError_t)cuda_error;
  if (err == cudaSuccess) return SEQK_STATUS_SUCCESS;
  (void)cudaGetLastError(); /* a launch error is this call's answer, not a sticky state */
  return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR, "%s: %s kernel launch failed: %s", op, kernel,
                    cudaGetErrorString(err));
}

seqk_status seqk__device_alloc(seqk_context_t ctx, const char *op, size_t bytes, void **ptr) {
  ++ctx->device_allocs;
  cudaError_t err = cudaMalloc(ptr, bytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: cudaMalloc of %zu bytes failed: %s", op,
                      bytes, cudaGetErrorString(err));
  }
  if (err != cudaSuccess)
    return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR, "%s: cudaMalloc of %zu bytes failed: %s", op,
                      bytes, cudaGetErrorString(err));
  return SEQK_STATUS_SUCCESS;
}

void seqk__device_free(void *ptr) {
  if (ptr) (void)cudaFree(ptr);
}

seqk_status seqk__device_memcpy(seqk_context_t ctx, const char *op, void *dst, const void *src,
                                size_t bytes, seqk_copy_kind kind) {
  enum cudaMemcpyKind k = kind == SEQK_COPY_H2D   ? cudaMemcpyHostToDevice
                          : kind == SEQK_COPY_D2H ? cudaMemcpyDeviceToHost
                                                  : cudaMemcpyDeviceToDevice;
  if (bytes == 0) return SEQK_STATUS_SUCCESS;
  SEQK_CUDA_CALL(ctx, op, cudaMemcpyAsync(dst, src, bytes, k, (cudaStream_t)ctx->stream));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__device_memset(seqk_context_t ctx, const char *op, void *dst, int byte,
                                size_t bytes) {
  if (bytes == 0) return SEQK_STATUS_SUCCESS;
  SEQK_CUDA_CALL(ctx, op, cudaMemsetAsync(dst, byte, bytes, (cudaStream_t)ctx->stream));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__device_sync(seqk_context_t ctx, const char *op) {
  ++ctx->stream_syncs;
  SEQK_CUDA_CALL(ctx, op, cudaStreamSynchronize((cudaStream_t)ctx->stream));
  return SEQK_STATUS_SUCCESS;
}

/* Replaces ctx's workspace by `bytes` at `data` (NULL: none), after the stream has finished with
   the old one, which is freed when it was the library's. */
static seqk_status replace_workspace(seqk_context_t ctx, const char *op, void *data, size_t bytes,
                                     int external) {
  if (ctx->workspace) SEQK_TRY(seqk__device_sync(ctx, op));
  if (!ctx->workspace_external) seqk__device_free(ctx->workspace);
  ctx->workspace = data;
  ctx->workspace_bytes = bytes;
  ctx->workspace_external = external;
  return SEQK_STATUS_SUCCESS;
}

/* Grows the library's workspace to exactly `bytes` (a caller's is never grown). */
static seqk_status grow_workspace(seqk_context_t ctx, const char *op, size_t bytes) {
  void *grown = NULL;
  if (ctx->workspace_external)
    return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                      "%s: needs %zu bytes of device workspace but the caller's workspace has %zu "
                      "(seqk_context_set_workspace; seqk_context_workspace_needed tells what the "
                      "calls so far needed)",
                      op, bytes, ctx->workspace_bytes);
  SEQK_TRY(seqk__device_alloc(ctx, op, bytes, &grown));
  const seqk_status st = replace_workspace(ctx, op, grown, bytes, 0);
  if (st != SEQK_STATUS_SUCCESS) seqk__device_free(grown);
  return st;
}

seqk_status seqk__workspace(seqk_context_t ctx, const char *op, size_t bytes, void **ptr) {
  if (bytes > ctx->workspace_needed) ctx->workspace_needed = bytes;
  if (bytes > ctx->workspace_bytes) {
    /* Grow by at least half so a slowly rising size does not reallocate every call. */
    size_t want = bytes > ctx->workspace_bytes + ctx->workspace_bytes / 2
                      ? bytes
                      : ctx->workspace_bytes + ctx->workspace_bytes / 2;
    SEQK_TRY(grow_workspace(ctx, op, ctx->workspace_external ? bytes : want));
  }
  *ptr = ctx->workspace;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__workspace_reserve(seqk_context_t ctx, const char *op, size_t bytes) {
  if (bytes <= ctx->workspace_bytes) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(seqk__require_device(ctx, op));
  return grow_workspace(ctx, op, bytes);
}

seqk_status seqk__workspace_adopt(seqk_context_t ctx, const char *op, void *data, size_t bytes) {
  if (data) {
    if ((uintptr_t)data % SEQK_WS_ALIGN != 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: device_ptr=%p is not %d-byte aligned (cudaMalloc's memory is)", op,
                        data, SEQK_WS_ALIGN);
    if (bytes == 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: bytes=0 with a device_ptr", op);
    SEQK_TRY(seqk__require_device(ctx, op));
    SEQK_TRY(seqk__check_device_readable(ctx, op, "device_ptr", data));
    return replace_workspace(ctx, op, data, bytes, 1);
  }
  return replace_workspace(ctx, op, NULL, 0, 0);
}

int seqk__in_workspace(seqk_context_t ctx, const void *data, size_t bytes) {
  if (!ctx->workspace || !data || bytes == 0) return 0;
  const uintptr_t lo = (uintptr_t)data, hi = lo + bytes, ws = (uintptr_t)ctx->workspace;
  return lo < ws + ctx->workspace_bytes && ws < hi;
}

void seqk__device_quiesce(seqk_context_t ctx) {
  if (ctx->workspace || ctx->n_allocs || ctx->cublas || ctx->check_words)
    (void)cudaStreamSynchronize((cudaStream_t)ctx->stream);
}

void seqk__device_release(seqk_context_t ctx) {
  if (!ctx->workspace_external) seqk__device_free(ctx->workspace);
  ctx->workspace = NULL;
  ctx->workspace_bytes = 0;
  seqk__device_free(ctx->check_words);
  ctx->check_words = NULL;
}

#else /* !SEQK_HAVE_CUDA */

int32_t seqk_cuda_device_count(void) { return 0; }
int32_t seqk__device_count(void) { return 0; }
seqk_status seqk__require_device(seqk_context_t ctx, const char *op) {
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__device_info(seqk_context_t ctx, const char *op, const seqk_device_info **info) {
  (void)info;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__launched(seqk_context_t ctx, const char *op, const char *kernel, int cuda_error) {
  (void)kernel;
  (void)cuda_error;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__device_alloc(seqk_context_t ctx, const char *op, size_t bytes, void **ptr) {
  (void)bytes;
  (void)ptr;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__check_device_readable(seqk_context_t ctx, const char *op, const char *name,
                                        const void *p) {
  (void)ctx;
  (void)op;
  (void)name;
  (void)p;
  return SEQK_STATUS_SUCCESS;
}
void seqk__device_free(void *ptr) { (void)ptr; }
seqk_status seqk__device_memcpy(seqk_context_t ctx, const char *op, void *dst, const void *src,
                                size_t bytes, seqk_copy_kind kind) {
  (void)dst;
  (void)src;
  (void)bytes;
  (void)kind;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__device_memset(seqk_context_t ctx, const char *op, void *dst, int byte,
                                size_t bytes) {
  (void)dst;
  (void)byte;
  (void)bytes;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__device_sync(seqk_context_t ctx, const char *op) {
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__workspace(seqk_context_t ctx, const char *op, size_t bytes, void **ptr) {
  (void)bytes;
  (void)ptr;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__workspace_reserve(seqk_context_t ctx, const char *op, size_t bytes) {
  (void)bytes;
  return seqk__built_without_cuda(ctx, op);
}
seqk_status seqk__workspace_adopt(seqk_context_t ctx, const char *op, void *data, size_t bytes) {
  (void)data;
  (void)bytes;
  return seqk__built_without_cuda(ctx, op);
}
int seqk__in_workspace(seqk_context_t ctx, const void *data, size_t bytes) {
  (void)ctx;
  (void)data;
  (void)bytes;
  return 0;
}
void seqk__device_quiesce(seqk_context_t ctx) { (void)ctx; }
void seqk__device_release(seqk_context_t ctx) { (void)ctx; }

#endif
