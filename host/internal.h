/*
 * internal.h - what every host source shares: the context, error reporting, element access for
 * the CPU reference, and tensor geometry. Not installed.
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
  void       *data;
  seqk_device device;
} seqk_alloc_record;

struct seqk_context {
  void  *stream;             /* cudaStream_t chosen by the caller; NULL = legacy default stream */
  void  *cublas;             /* cublasHandle_t, created on first CUDA op that needs it */
  void  *workspace;          /* device scratch, grown on demand by seqk__workspace */
  size_t workspace_bytes;
  seqk_alloc_record *allocs; /* live tensors from seqk_tensor_alloc */
  size_t n_allocs, cap_allocs;
  char   last_error[512];
};

/* Frees every tensor still recorded in ctx (context destruction; tensor.c). */
void seqk__release_allocations(seqk_context_t ctx);

/* Records "fmt ..." as ctx's last error and returns status. ctx may be NULL (nothing recorded). */
seqk_status seqk__fail(seqk_context_t ctx, seqk_status status, const char *fmt, ...) SEQK_PRINTF(3, 4);

/* Returns from the calling function when expr is not SEQK_STATUS_SUCCESS. */
#define SEQK_TRY(expr)                                   \
  do {                                                   \
    seqk_status seqk__try_status = (expr);               \
    if (seqk__try_status != SEQK_STATUS_SUCCESS)         \
      return seqk__try_status;                           \
  } while (0)

/* ---- numbers -------------------------------------------------------------------------------- */
float    seqk__f16_to_float(uint16_t bits);
float    seqk__bf16_to_float(uint16_t bits);
uint16_t seqk__double_to_f16(double v);   /* round to nearest even, overflow to inf, NaN kept */
uint16_t seqk__double_to_bf16(double v);  /* round to nearest even, NaN kept */
/* The value v as dtype would store it, read back (rounding applied, no storage). */
double   seqk__round_to_dtype(double v, seqk_dtype dtype);

/* ---- CPU element access: offset is in elements from t->data ---------------------------------- */
double seqk__load(const seqk_tensor *t, int64_t offset);
void   seqk__store(const seqk_tensor *t, int64_t offset, double value);
int32_t seqk__load_i32(const seqk_tensor *t, int64_t offset);

/* ---- geometry ------------------------------------------------------------------------------- */
int64_t seqk__numel(const seqk_tensor *t);
int     seqk__is_contiguous(const seqk_tensor *t);        /* row-major dense (size-1 dims free) */
/* Largest element offset + 1 (0 for an empty tensor): the elements the tensor's memory spans. */
int64_t seqk__span(const seqk_tensor *t);
/* Offset of the element at multi-index idx[0..ndim). */
int64_t seqk__offset(const seqk_tensor *t, const int64_t *idx);
/* Offset of the element with row-major linear index i (0 <= i < numel). */
int64_t seqk__offset_of_linear(const seqk_tensor *t, int64_t i);
/* A contiguous descriptor of shape/dtype/device of t over data. */
seqk_tensor seqk__contiguous_like(const seqk_tensor *t, void *data);
/* Absent optional argument: NULL pointer or NULL data. */
int seqk__present(const seqk_tensor *t);
/* Same memory and layout: data, dtype, ndim, shape and strides all equal. */
int seqk__same_view(const seqk_tensor *a, const seqk_tensor *b);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_INTERNAL_H */
