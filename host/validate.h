/*
 * validate.h - argument checks shared by every public entry. Each returns SEQK_STATUS_SUCCESS or
 * records a message "op: <argument> ..." on ctx and returns the error status, so entries read as
 * a list of SEQK_TRY(...) lines. Nothing here writes to any tensor.
 */
#ifndef SEQK_VALIDATE_H
#define SEQK_VALIDATE_H

#include "geometry.h"
#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The descriptor itself: non-NULL, ndim in [0, SEQK_MAX_DIMS], known dtype and device, shape and
   strides >= 0, data non-NULL when it has elements. */
seqk_status seqk__check_tensor(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t);
/* check_tensor plus dtype F32/F16/BF16. */
seqk_status seqk__check_float_tensor(seqk_context_t ctx, const char *op, const char *name,
                                     const seqk_tensor *t);
/* t->ndim == ndim. */
seqk_status seqk__check_ndim(seqk_context_t ctx, const char *op, const char *name,
                             const seqk_tensor *t, int32_t ndim);
/* t->ndim == ndim and t->shape[i] == shape[i]; the message names the first differing dim. */
seqk_status seqk__check_shape(seqk_context_t ctx, const char *op, const char *name,
                              const seqk_tensor *t, int32_t ndim, const int64_t *shape);
/* t->shape[dim] == expected; `what` says where expected came from ("q.shape[3]"). */
seqk_status seqk__check_extent(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t, int32_t dim, int64_t expected,
                               const char *what);
seqk_status seqk__check_dtype(seqk_context_t ctx, const char *op, const char *name,
                              const seqk_tensor *t, seqk_dtype dtype);
/* b has a's dtype / a's device. */
seqk_status seqk__check_same_dtype(seqk_context_t ctx, const char *op, const char *name_a,
                                   const seqk_tensor *a, const char *name_b, const seqk_tensor *b);
seqk_status seqk__check_same_device(seqk_context_t ctx, const char *op, const char *name_a,
                                    const seqk_tensor *a, const char *name_b, const seqk_tensor *b);
/* stride[ndim-1] == 1 (or the last extent is <= 1). */
seqk_status seqk__check_last_dim_contiguous(seqk_context_t ctx, const char *op, const char *name,
                                            const seqk_tensor *t);
/* An output: no two elements at the same address. */
seqk_status seqk__check_output(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t);
/* The memory of out and in do not intersect (either may be NULL or empty: then they do not). */
seqk_status seqk__check_no_overlap(seqk_context_t ctx, const char *op, const char *out_name,
                                   const seqk_tensor *out, const char *in_name,
                                   const seqk_tensor *in);
/* out and in either are the same view (allowed in-place alias) or do not intersect. */
seqk_status seqk__check_alias_or_disjoint(seqk_context_t ctx, const char *op, const char *out_name,
                                          const seqk_tensor *out, const char *in_name,
                                          const seqk_tensor *in);
/* A seqk_rotary_params for head dim D: layout known, theta finite and > 0, rotary_dim even in
   [2, D] (0 meaning D). Writes the resolved rotary_dim, whether the pairs are NeoX's, and
   log2(theta). params NULL is an error naming `name`. */
seqk_status seqk__check_rotary_params(seqk_context_t ctx, const char *op, const char *name,
                                      const seqk_rotary_params *params, int64_t D,
                                      int64_t *rotary_dim, int *neox, double *log2_theta);
/* H query heads share Hk key/value heads: H % Hk == 0 (Hk may be 0 only when H is). The names
   are the tensors whose shape[1] the counts come from in messages (h_dim: the dim index). */
seqk_status seqk__check_head_groups(seqk_context_t ctx, const char *op, const char *q_name,
                                    int64_t H, const char *k_name, int h_dim, int64_t Hk);
/* seqk_attention_params' scalars: a finite scale (0 selects 1/sqrt(D)) and a known algo. */
seqk_status seqk__check_attention_params(seqk_context_t ctx, const char *op,
                                         const seqk_attention_params *p);
/* Each lens[b] in [0, limit] (params.<name>[b]); lens NULL passes. Only for CPU calls: the
   array is host memory then. */
/* params.alibi_slopes on the CPU: NULL, or H finite slopes. */
seqk_status seqk__check_alibi_slopes(seqk_context_t ctx, const char *op, const float *slopes,
                                     int64_t H);
seqk_status seqk__check_seqlens(seqk_context_t ctx, const char *op, const char *name,
                                const int32_t *lens, int64_t B, int64_t limit,
                                const char *limit_name);
/* Cumulative offsets (seqk_attention_packed's cu_seqlens, a CPU I32 [B + 1] tensor, read here):
   0 <= cu[0] <= ... <= cu[B] <= total and each cu[b + 1] - cu[b] <= max_len. */
seqk_status seqk__check_packed_offsets(seqk_context_t ctx, const char *op, const char *name,
                                       const seqk_tensor *cu, int64_t total, const char *total_name,
                                       int64_t max_len, const char *max_name);
/* act is one of seqk_activation's values. */
seqk_status seqk__check_activation(seqk_context_t ctx, const char *op, seqk_activation act);
/* Normalises dim in [-ndim, ndim) to [0, ndim) in *out_dim. */
seqk_status seqk__check_dim_index(seqk_context_t ctx, const char *op, const char *name, int32_t dim,
                                  int32_t ndim, int32_t *out_dim);

/* A tensor argument and the name the caller knows it by; t == NULL marks an absent optional
   argument, which the group checks below skip. */
typedef struct seqk_arg {
  const char *name;
  const seqk_tensor *t;
} seqk_arg;
/* The number of entries of an array of seqk_arg (or of anything else). */
#define SEQK_COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))
/* An optional argument as a seqk_arg entry wants it: t when present, NULL when absent (a NULL
   pointer or NULL data), so that the group checks skip it. */
const seqk_tensor *seqk__present_or_null(const seqk_tensor *t);
/* Every argument has args[0]'s dtype. */
seqk_status seqk__check_same_dtype_all(seqk_context_t ctx, const char *op, const seqk_arg *args,
                                       int n);
/* Every argument is on args[0]'s device. */
seqk_status seqk__check_same_device_all(seqk_context_t ctx, const char *op, const seqk_arg *args,
                                        int n);
/* The output overlaps none of the arguments. */
seqk_status seqk__check_disjoint_from_all(seqk_context_t ctx, const char *op, const char *out_name,
                                          const seqk_tensor *out, const seqk_arg *args, int n);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_VALIDATE_H */
