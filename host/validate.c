/*
 * validate.c - the argument checks behind validate.h. Messages name the op and the argument the
 * way the caller spelled it ("attention: k.shape[3]=64 but expected 96 (q.shape[3])").
 */
#include "validate.h"

#include <math.h>

#include "overlap.h"

#include <stdlib.h>

static const char *dtype_name(seqk_dtype d) {
  switch (d) {
    case SEQK_DTYPE_F32: return "F32";
    case SEQK_DTYPE_F16: return "F16";
    case SEQK_DTYPE_BF16: return "BF16";
    case SEQK_DTYPE_I32: return "I32";
  }
  return "unknown";
}

static const char *device_name(seqk_device d) {
  switch (d) {
    case SEQK_DEVICE_CPU: return "CPU";
    case SEQK_DEVICE_CUDA: return "CUDA";
  }
  return "unknown";
}

seqk_status seqk__check_tensor(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t) {
  if (!t) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s is NULL", op, name);
  if (t->ndim < 0 || t->ndim > SEQK_MAX_DIMS)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.ndim=%d out of range [0, %d]", op,
                      name, (int)t->ndim, SEQK_MAX_DIMS);
  if (seqk_dtype_size(t->dtype) == 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.dtype=%d is not a seqk_dtype", op,
                      name, (int)t->dtype);
  if (t->device != SEQK_DEVICE_CPU && t->device != SEQK_DEVICE_CUDA)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.device=%d is not a seqk_device", op,
                      name, (int)t->device);
  int64_t numel = 1;
  for (int32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] < 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.shape[%d]=%lld is negative", op,
                        name, (int)i, (long long)t->shape[i]);
    if (t->stride[i] < 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.stride[%d]=%lld is negative", op,
                        name, (int)i, (long long)t->stride[i]);
  }
  /* An empty tensor (some extent 0) has no element to address, whatever its other extents and
     strides: they enter no product. */
  if (seqk__is_empty(t)) numel = 0;
  for (int32_t i = 0; i < t->ndim && numel > 0; ++i) {
    if (numel > INT64_MAX / t->shape[i])
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s has more than 2^63 elements", op,
                        name);
    numel *= t->shape[i];
  }
  /* The farthest element must be addressable in bytes with int64 arithmetic. */
  if (numel > 0) {
    int64_t last = 0;
    for (int32_t i = 0; i < t->ndim; ++i) {
      if (t->stride[i] > 0 && t->shape[i] - 1 > (INT64_MAX / 8 - last) / t->stride[i])
        return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s strides reach past 2^60 elements",
                          op, name);
      last += (t->shape[i] - 1) * t->stride[i];
    }
    if (!t->data)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: %s.data is NULL but it has %lld elements", op, name, (long long)numel);
    /* Elements are read as their type: a GPU faults on a misaligned one, and on the CPU it is
       undefined behaviour. (Finding: the fuzzer passed an F32 view aliasing an F16 tensor at an
       odd 2-byte offset; attention_merge read its lse misaligned.) */
    const size_t esize = seqk_dtype_size(t->dtype);
    if ((uintptr_t)t->data % esize != 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: %s.data=%p is not aligned to its %zu-byte elements", op, name, t->data,
                        esize);
  }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_float_tensor(seqk_context_t ctx, const char *op, const char *name,
                                     const seqk_tensor *t) {
  SEQK_TRY(seqk__check_tensor(ctx, op, name, t));
  if (t->dtype == SEQK_DTYPE_I32)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s.dtype=I32 but a float dtype (F32, F16, BF16) is required", op, name);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_ndim(seqk_context_t ctx, const char *op, const char *name,
                             const seqk_tensor *t, int32_t ndim) {
  if (t->ndim != ndim)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.ndim=%d but expected %d", op, name,
                      (int)t->ndim, (int)ndim);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_shape(seqk_context_t ctx, const char *op, const char *name,
                              const seqk_tensor *t, int32_t ndim, const int64_t *shape) {
  SEQK_TRY(seqk__check_ndim(ctx, op, name, t, ndim));
  for (int32_t i = 0; i < ndim; ++i)
    if (t->shape[i] != shape[i])
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.shape[%d]=%lld but expected %lld",
                        op, name, (int)i, (long long)t->shape[i], (long long)shape[i]);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_extent(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t, int32_t dim, int64_t expected,
                               const char *what) {
  if (dim < 0 || dim >= t->ndim)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.ndim=%d has no dim %d", op, name,
                      (int)t->ndim, (int)dim);
  if (t->shape[dim] != expected)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.shape[%d]=%lld but %s=%lld", op, name,
                      (int)dim, (long long)t->shape[dim], what, (long long)expected);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_dtype(seqk_context_t ctx, const char *op, const char *name,
                              const seqk_tensor *t, seqk_dtype dtype) {
  if (t->dtype != dtype)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.dtype=%s but expected %s", op, name,
                      dtype_name(t->dtype), dtype_name(dtype));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_same_dtype(seqk_context_t ctx, const char *op, const char *name_a,
                                   const seqk_tensor *a, const char *name_b, const seqk_tensor *b) {
  if (a->dtype != b->dtype)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.dtype=%s but %s.dtype=%s", op, name_b,
                      dtype_name(b->dtype), name_a, dtype_name(a->dtype));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_same_device(seqk_context_t ctx, const char *op, const char *name_a,
                                    const seqk_tensor *a, const char *name_b,
                                    const seqk_tensor *b) {
  if (a->device != b->device)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s is on %s but %s is on %s (all tensors of an op share one device)", op,
                      name_b, device_name(b->device), name_a, device_name(a->device));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_last_dim_contiguous(seqk_context_t ctx, const char *op, const char *name,
                                            const seqk_tensor *t) {
  if (t->ndim > 0 && t->shape[t->ndim - 1] > 1 && t->stride[t->ndim - 1] != 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s.stride[%d]=%lld but the last dim must be contiguous (stride 1)", op,
                      name, (int)(t->ndim - 1), (long long)t->stride[t->ndim - 1]);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_output(seqk_context_t ctx, const char *op, const char *name,
                               const seqk_tensor *t) {
  if (!seqk__elements_distinct(t))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: output %s has overlapping elements (two of its elements share an "
                      "address, or its layout is too large to tell)",
                      op, name);
  return SEQK_STATUS_SUCCESS;
}

static int memory_intersects(const seqk_tensor *a, const seqk_tensor *b) {
  if (!seqk__present(a) || !seqk__present(b) || a->device != b->device) return 0;
  return seqk__memory_overlaps(a, b);
}

seqk_status seqk__check_no_overlap(seqk_context_t ctx, const char *op, const char *out_name,
                                   const seqk_tensor *out, const char *in_name,
                                   const seqk_tensor *in) {
  if (memory_intersects(out, in))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: output %s overlaps %s in memory", op,
                      out_name, in_name);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_alias_or_disjoint(seqk_context_t ctx, const char *op, const char *out_name,
                                          const seqk_tensor *out, const char *in_name,
                                          const seqk_tensor *in) {
  if (seqk__present(out) && seqk__present(in) && seqk__same_view(out, in))
    return SEQK_STATUS_SUCCESS;
  if (memory_intersects(out, in))
    return seqk__fail(
        ctx, SEQK_STATUS_INVALID_VALUE,
        "%s: output %s partially overlaps %s (only an exact in-place alias is allowed)", op,
        out_name, in_name);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_dim_index(seqk_context_t ctx, const char *op, const char *name, int32_t dim,
                                  int32_t ndim, int32_t *out_dim) {
  if (dim < -ndim || dim >= ndim)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s=%d out of range [%d, %d)", op, name,
                      (int)dim, (int)-ndim, (int)ndim);
  *out_dim = dim < 0 ? dim + ndim : dim;
  return SEQK_STATUS_SUCCESS;
}

const seqk_tensor *seqk__present_or_null(const seqk_tensor *t) {
  return seqk__present(t) ? t : NULL;
}

seqk_status seqk__check_same_dtype_all(seqk_context_t ctx, const char *op, const seqk_arg *args,
                                       int n) {
  for (int i = 1; i < n; ++i)
    if (args[i].t)
      SEQK_TRY(seqk__check_same_dtype(ctx, op, args[0].name, args[0].t, args[i].name, args[i].t));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_same_device_all(seqk_context_t ctx, const char *op, const seqk_arg *args,
                                        int n) {
  for (int i = 1; i < n; ++i)
    if (args[i].t)
      SEQK_TRY(seqk__check_same_device(ctx, op, args[0].name, args[0].t, args[i].name, args[i].t));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_disjoint_from_all(seqk_context_t ctx, const char *op, const char *out_name,
                                          const seqk_tensor *out, const seqk_arg *args, int n) {
  for (int i = 0; i < n; ++i)
    if (args[i].t)
      SEQK_TRY(seqk__check_no_overlap(ctx, op, out_name, out, args[i].name, args[i].t));
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_activation(seqk_context_t ctx, const char *op, seqk_activation act) {
  if (act < SEQK_ACTIVATION_NONE || act > SEQK_ACTIVATION_SILU)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: act=%d is not a seqk_activation", op,
                      (int)act);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_head_groups(seqk_context_t ctx, const char *op, const char *q_name,
                                    int64_t H, const char *k_name, int h_dim, int64_t Hk) {
  if (Hk == 0 ? H != 0 : H % Hk != 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s.shape[1]=%lld (H) is not a multiple of %s.shape[%d]=%lld (Hk)", op,
                      q_name, (long long)H, k_name, h_dim, (long long)Hk);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_attention_params(seqk_context_t ctx, const char *op,
                                         const seqk_attention_params *p) {
  if (!isfinite(p->scale))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: params.scale=%g is not finite (0 selects 1/sqrt(D))", op,
                      (double)p->scale);
  if (p->algo != SEQK_ATTENTION_ALGO_AUTO && p->algo != SEQK_ATTENTION_ALGO_FUSED &&
      p->algo != SEQK_ATTENTION_ALGO_UNFUSED)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: params.algo=%d is not a seqk_attention_algo", op, (int)p->algo);
  if (!(p->softcap >= 0.0f) || !isfinite(p->softcap))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: params.softcap=%g must be finite and >= 0 (0: none)", op,
                      (double)p->softcap);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_alibi_slopes(seqk_context_t ctx, const char *op, const float *slopes,
                                     int64_t H) {
  if (!slopes) return SEQK_STATUS_SUCCESS;
  for (int64_t h = 0; h < H; ++h)
    if (!isfinite(slopes[h]))
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: params.alibi_slopes[%lld]=%g is not finite", op, (long long)h,
                        (double)slopes[h]);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_seqlens(seqk_context_t ctx, const char *op, const char *name,
                                const int32_t *lens, int64_t B, int64_t limit,
                                const char *limit_name) {
  if (!lens) return SEQK_STATUS_SUCCESS;
  for (int64_t b = 0; b < B; ++b)
    if (lens[b] < 0 || lens[b] > limit)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: params.%s[%lld]=%d out of range [0, %s=%lld]", op, name, (long long)b,
                        (int)lens[b], limit_name, (long long)limit);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_packed_offsets(seqk_context_t ctx, const char *op, const char *name,
                                       const seqk_tensor *cu, int64_t total, const char *total_name,
                                       int64_t max_len, const char *max_name) {
  const int32_t *v = (const int32_t *)cu->data;
  const int64_t n = cu->shape[0], st = cu->stride[0];
  for (int64_t b = 0; b < n; ++b) {
    const int64_t x = v[b * st];
    if (x < 0 || x > total)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: %s[%lld]=%lld out of range [0, %s=%lld]", op, name, (long long)b,
                        (long long)x, total_name, (long long)total);
    if (b == 0) continue;
    const int64_t len = x - v[(b - 1) * st];
    if (len < 0)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: %s[%lld]=%lld is below %s[%lld]=%d (offsets must not decrease)", op,
                        name, (long long)b, (long long)x, name, (long long)(b - 1),
                        (int)v[(b - 1) * st]);
    if (len > max_len)
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %lld has %lld rows (%s[%lld] - %s[%lld]), past %s=%lld", op,
                        (long long)(b - 1), (long long)len, name, (long long)b, name,
                        (long long)(b - 1), max_name, (long long)max_len);
  }
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__check_rotary_params(seqk_context_t ctx, const char *op, const char *name,
                                      const seqk_rotary_params *params, int64_t D,
                                      int64_t *rotary_dim, int *neox, double *log2_theta) {
  if (!params) return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s is NULL", op, name);
  if (params->layout != SEQK_ROTARY_NEOX && params->layout != SEQK_ROTARY_GPTJ)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s.layout=%d is not a seqk_rotary_layout", op, name,
                      (int)params->layout);
  if (!(params->theta > 0.0f) || isinf(params->theta))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: %s.theta=%g but must be finite and > 0",
                      op, name, (double)params->theta);
  const int64_t rd = params->rotary_dim == 0 ? D : params->rotary_dim;
  if (params->rotary_dim < 0 || rd < 2 || rd > D || rd % 2 != 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s.rotary_dim=%d but must be even and in [2, D=%lld] (0 means D)", op,
                      name, (int)params->rotary_dim, (long long)D);
  *rotary_dim = rd;
  *neox = params->layout == SEQK_ROTARY_NEOX;
  *log2_theta = log2((double)params->theta);
  return SEQK_STATUS_SUCCESS;
}
