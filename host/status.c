/*
 * status.c - the leaf every other host source reports through: the version, status strings, and
 * the context's last-error message. Calls nothing else in the library.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

int seqk_version(void) { return SEQK_VERSION; }

const char *seqk_status_string(seqk_status status) {
  switch (status) {
    case SEQK_STATUS_SUCCESS: return "success";
    case SEQK_STATUS_INVALID_VALUE: return "invalid value";
    case SEQK_STATUS_NOT_SUPPORTED: return "not supported";
    case SEQK_STATUS_ALLOC_FAILED: return "allocation failed";
    case SEQK_STATUS_NO_DEVICE: return "no CUDA device";
    case SEQK_STATUS_DEVICE_ERROR: return "CUDA device error";
    case SEQK_STATUS_BLAS_ERROR: return "cuBLAS error";
    case SEQK_STATUS_INTERNAL_ERROR: return "internal error";
  }
  return "unknown status";
}

seqk_status seqk__fail(seqk_context_t ctx, seqk_status status, const char *fmt, ...) {
  if (ctx) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, args);
    va_end(args);
  }
  return status;
}

const char *seqk_context_last_error(seqk_context_t ctx) {
  if (!ctx) return "seqk: the context is NULL";
  return ctx->last_error;
}
