/*
 * context.c - the context's life: create, set the stream, destroy (which waits for the stream,
 * then releases the cuBLAS handle, the workspace and every tensor still allocated through it).
 * The top of the host's call graph: nothing else calls into this file.
 */
#include "blas.h"
#include "device.h"
#include "internal.h"
#include "tensor.h"

#include <stdlib.h>

seqk_status seqk_context_create(seqk_context_t *ctx) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  seqk_context_t c = (seqk_context_t)calloc(1, sizeof *c);
  if (!c) return SEQK_STATUS_ALLOC_FAILED;
  *ctx = c;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_context_destroy(seqk_context_t ctx) {
  if (!ctx) return SEQK_STATUS_SUCCESS;
  seqk__device_quiesce(ctx); /* nothing queued may still use what is freed below */
  seqk__blas_release(ctx);
  seqk__device_release(ctx);
  seqk__release_allocations(ctx);
  free(ctx);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_context_set_stream(seqk_context_t ctx, void *cuda_stream) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  ctx->stream = cuda_stream;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_context_reserve_workspace(seqk_context_t ctx, size_t bytes) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  return seqk__workspace_reserve(ctx, "context_reserve_workspace", bytes);
}

seqk_status seqk_context_set_workspace(seqk_context_t ctx, void *device_ptr, size_t bytes) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  return seqk__workspace_adopt(ctx, "context_set_workspace", device_ptr, bytes);
}

size_t seqk_context_workspace_needed(seqk_context_t ctx) { return ctx ? ctx->workspace_needed : 0; }

seqk_status seqk_context_set_batch_invariant(seqk_context_t ctx, int32_t on) {
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  ctx->batch_invariant = on != 0;
  return SEQK_STATUS_SUCCESS;
}
