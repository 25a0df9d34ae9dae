/*
 * device.h - the only door from host code to the CUDA runtime. Every call turns a CUDA error into
 * a status with the runtime's text, the op and the call site in ctx's last error; so does
 * seqk__launched for the cudaError_t every kernel launcher returns. In a build without the
 * toolkit these report NO_DEVICE. The emulated build links the same code against the emulator's
 * runtime.
 */
#ifndef SEQK_DEVICE_H
#define SEQK_DEVICE_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum seqk_copy_kind { SEQK_COPY_H2D, SEQK_COPY_D2H, SEQK_COPY_D2D } seqk_copy_kind;

/* NO_DEVICE "op: this seqk was built without CUDA" (every CUDA entry of a build without the
   toolkit answers this). */
seqk_status seqk__built_without_cuda(seqk_context_t ctx, const char *op);
/* Usable CUDA devices; 0 without a toolkit, driver or GPU. */
int32_t seqk__device_count(void);
/* NO_DEVICE with a message when there is no usable device. */
seqk_status seqk__require_device(seqk_context_t ctx, const char *op);
/* ctx's record of the current device (seqk_device_info), queried on first use: NO_DEVICE when
   there is no usable device, DEVICE_ERROR when a query fails. */
seqk_status seqk__device_info(seqk_context_t ctx, const char *op, const seqk_device_info **info);
/* INVALID_VALUE "op: name is host memory ..." when the runtime knows p (non-NULL) as memory a
   kernel cannot read (plain, unregistered host memory); device, managed and pinned host memory
   pass, and so does a pointer the runtime cannot tell about (its size never can be checked). */
seqk_status seqk__check_device_readable(seqk_context_t ctx, const char *op, const char *name,
                                        const void *p);
seqk_status seqk__device_alloc(seqk_context_t ctx, const char *op, size_t bytes, void **ptr);
void seqk__device_free(void *ptr);
/* Enqueued on ctx's stream; host memory must stay valid until seqk__device_sync. */
seqk_status seqk__device_memcpy(seqk_context_t ctx, const char *op, void *dst, const void *src,
                                size_t bytes, seqk_copy_kind kind);
/* Enqueued on ctx's stream. */
seqk_status seqk__device_memset(seqk_context_t ctx, const char *op, void *dst, int byte,
                                size_t bytes);
seqk_status seqk__device_sync(seqk_context_t ctx, const char *op);
/* A device scratch buffer of at least `bytes`, reused across calls and grown on demand (growing
   waits for the stream so the old buffer is no longer in use); a caller's workspace is never
   grown: ALLOC_FAILED. Records the high-water mark (seqk_context_workspace_needed). */
seqk_status seqk__workspace(seqk_context_t ctx, const char *op, size_t bytes, void **ptr);
/* seqk_context_reserve_workspace and seqk_context_set_workspace (include/seqk.h). */
seqk_status seqk__workspace_reserve(seqk_context_t ctx, const char *op, size_t bytes);
seqk_status seqk__workspace_adopt(seqk_context_t ctx, const char *op, void *data, size_t bytes);
/* Whether [data, data + bytes) intersects ctx's workspace (an op must not hand out workspace
   pieces that its own operands live in). */
int seqk__in_workspace(seqk_context_t ctx, const void *data, size_t bytes);
/* Context destruction: wait for ctx's stream when it may still use ctx's memory, then free the
   workspace. */
void seqk__device_quiesce(seqk_context_t ctx);
void seqk__device_release(seqk_context_t ctx);
/* A waiting device check (seqk_context_set_device_checks): takes one word of the workspace, has
   `launch` (a check launcher: it sets the word to all ones, then lowers it at a failure; it
   returns a cudaError_t as int, on the cudaStream_t passed as void *) fill it on ctx's stream,
   reads it back and waits: *found is the word (all ones: nothing found). device_checks.c. */
seqk_status seqk__wait_for_check(seqk_context_t ctx, const char *op, const char *kernel,
                                 int (*launch)(const void *arg, unsigned long long *word,
                                               void *stream),
                                 const void *arg, unsigned long long *found);
/* A kernel launcher's answer (a cudaError_t, passed as int so that this header needs no CUDA
   header) as a status: DEVICE_ERROR "op: <kernel> kernel launch failed: <runtime text>". */
seqk_status seqk__launched(seqk_context_t ctx, const char *op, const char *kernel, int cuda_error);

/* ---- the workspace as a per-call arena ---------------------------------------------------------
   An op that needs device scratch first adds up everything it will take (including what the ops
   it runs internally take: mha_forward -> linear, attention), opens the arena once with that
   total, and then takes pieces in order. Only the outermost op opens it, so a nested step never
   grows (and frees) the buffer under a piece its caller still holds, and once the workspace has
   reached a shape's size no call allocates device memory again. Pieces are SEQK_WS_ALIGN-aligned
   (cuBLAS and 16-byte vector loads want aligned operands); sizes are rounded the same way when
   they are planned and when they are taken, so a plan made with seqk__ws_elems/seqk__ws_sum is
   exactly what the takes consume. */
#define SEQK_WS_ALIGN 256
typedef struct seqk_arena {
  char *base;
  size_t size, used;
} seqk_arena;

/* n elements of elem_size bytes rounded up to SEQK_WS_ALIGN; SIZE_MAX when it overflows (or n < 0,
   which the caller's saturating products use for "too large"). */
size_t seqk__ws_elems(int64_t n, size_t elem_size);
/* Bytes of a contiguous copy of t's elements, rounded the same way. */
size_t seqk__ws_tensor(const seqk_tensor *t);
/* a + b, saturating at SIZE_MAX (an impossible size that seqk__arena_open reports). */
size_t seqk__ws_sum(size_t a, size_t b);
/* a * b for non-negative extents, INT64_MAX when it overflows. */
int64_t seqk__mul_sat(int64_t a, int64_t b);
/* Makes ctx's workspace at least `bytes` (growing waits for the stream) and starts an empty arena
   over it. ALLOC_FAILED for SIZE_MAX or when cudaMalloc fails. */
seqk_status seqk__arena_open(seqk_context_t ctx, const char *op, size_t bytes, seqk_arena *arena);
/* The next `bytes` (rounded) of the arena; INTERNAL_ERROR when the plan was too small. */
seqk_status seqk__arena_take(seqk_context_t ctx, const char *op, seqk_arena *arena, size_t bytes,
                             void **ptr);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_DEVICE_H */
