/*
 * device.h - the only door from host code to the CUDA runtime. Every call turns a CUDA error into
 * a status with the runtime's text, the op and the call site in ctx's last error. In a build
 * without the toolkit these report NO_DEVICE. The emulated build links the same code against the
 * emulator's runtime.
 */
#ifndef SEQK_DEVICE_H
#define SEQK_DEVICE_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum seqk_copy_kind { SEQK_COPY_H2D, SEQK_COPY_D2H, SEQK_COPY_D2D } seqk_copy_kind;

/* Usable CUDA devices; 0 without a toolkit, driver or GPU. */
int32_t     seqk__device_count(void);
/* NO_DEVICE with a message when there is no usable device. */
seqk_status seqk__require_device(seqk_context_t ctx, const char *op);
seqk_status seqk__device_alloc(seqk_context_t ctx, const char *op, size_t bytes, void **ptr);
void        seqk__device_free(void *ptr);
/* Enqueued on ctx's stream; host memory must stay valid until seqk__device_sync. */
seqk_status seqk__device_memcpy(seqk_context_t ctx, const char *op, void *dst, const void *src,
                                size_t bytes, seqk_copy_kind kind);
seqk_status seqk__device_sync(seqk_context_t ctx, const char *op);
/* A device scratch buffer of at least `bytes`, owned by ctx, reused across calls and grown on
   demand (growing waits for the stream so the old buffer is no longer in use). */
seqk_status seqk__workspace(seqk_context_t ctx, const char *op, size_t bytes, void **ptr);
/* Frees ctx's workspace and cuBLAS handle (context destruction). */
void        seqk__device_release(seqk_context_t ctx);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_DEVICE_H */
