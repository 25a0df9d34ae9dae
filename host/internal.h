/*
 * internal.h - the context every host source shares, and error reporting (status.c): an op
 * records "op: what was wrong" on the context and returns a status. Not installed.
 * Numbers and element access: numeric.h; tensor geometry: geometry.h.
 */
#ifndef SEQK_INTERNAL_H
#define SEQK_INTERNAL_H

#include "seqk.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SEQK_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define SEQK_PRINTF(fmt_index, first_arg)
#endif

/* One allocation made by seqk_tensor_alloc, so that free can reject foreign pointers and destroy
   can release what is left. */
typedef struct seqk_alloc_record {
  void *data;
  seqk_device device;
} seqk_alloc_record;

/* What the kernels' launch plans need to know of the device, queried once per context (on its
   first CUDA op that needs it; device.c). A context serves the device that was current then. */
typedef struct seqk_device_info {
  int32_t sms; /* streaming multiprocessors */
  int32_t cc_major, cc_minor;
  size_t smem_optin;   /* shared memory a block may opt in to, in bytes */
  int32_t cooperative; /* cooperative launches supported */
} seqk_device_info;

struct seqk_context {
  void *stream;    /* cudaStream_t chosen by the caller; NULL = legacy default stream */
  void *cublas;    /* cublasHandle_t, created on first CUDA op that needs it */
  void *workspace; /* device scratch, grown on demand by seqk__workspace */
  size_t workspace_bytes;
  size_t workspace_needed;    /* the most any call has asked for */
  int32_t workspace_external; /* the caller's memory (seqk_context_set_workspace): never freed */
  /* Host waits on the stream (seqk__device_sync, workspace growth) and device allocations made
     for ctx (workspace, tensors): what tests read to hold ops to "no hidden synchronisation". */
  int64_t stream_syncs, device_allocs;
  /* seqk_context_set_device_checks: the mode, and in DEFERRED mode the device words where kernels
     record the first error of each kind (seqk__check_word), all ones when clear. */
  int32_t device_checks;
  unsigned long long *check_words;
  int32_t batch_invariant; /* seqk_context_set_batch_invariant */
  int32_t device_known;    /* device_info holds the answers */
  seqk_device_info device_info;
  seqk_alloc_record *allocs; /* live tensors from seqk_tensor_alloc */
  size_t n_allocs, cap_allocs;
  char last_error[512];
};

/* Records "fmt ..." as ctx's last error and returns status. ctx may be NULL (nothing recorded). */
seqk_status seqk__fail(seqk_context_t ctx, seqk_status status, const char *fmt, ...)
    SEQK_PRINTF(3, 4);

/* Returns from the calling function when expr is not SEQK_STATUS_SUCCESS. */
#define SEQK_TRY(expr)                                                                             \
  do {                                                                                             \
    seqk_status seqk__try_status = (expr);                                                         \
    if (seqk__try_status != SEQK_STATUS_SUCCESS) return seqk__try_status;                          \
  } while (0)

/* seqk_mha_options as the CPU and CUDA paths take them, after the entry resolved the layout
   (every tensor batch-first) and the absent tensors (NULL). */
typedef struct seqk_mha_resolved {
  int32_t num_heads, causal;
  int per_head; /* attn_weights [B,H,Sq,Sk] rather than the head mean [B,Sq,Sk] */
  const seqk_tensor *key_lengths, *key_padding_mask;
  const seqk_tensor
      *residual; /* added to out ([B,Sq,E], batch-first; the encoder layer's), or NULL */
} seqk_mha_resolved;

#ifdef __cplusplus
}
#endif

#endif /* SEQK_INTERNAL_H */
