/*
 * ops_attention.c - public entries of the attention building blocks (softmax, split/merge heads,
 * scores, values), attention and attention merge.
 *
 * Each entry validates every argument before anything is read or written (only the CPU seqlens
 * arrays are read during validation, after the device checks proved they are host memory), then
 * dispatches by device: the CPU runs the reference in ref_*.c, CUDA tensors the CUDA path in
 * cuda_softmax.c, cuda_heads.c and cuda_attention.c.
 */
#include "attention_rules.h"
#include "device.h"
#include "ref_attention.h"
#include "validate.h"

#include "cuda_ops.h"

#include <math.h>

static seqk_status check_finite_scale(seqk_context_t ctx, const char *op, const char *name,
                                      float scale) {
  if (!isfinite(scale))
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s=%g is not finite (0 selects 1/sqrt(D))", op, name, (double)scale);
  return SEQK_STATUS_SUCCESS;
}

/* Checks the tensors of one op (all required): each a float tensor of the given ndim, with the
   first one's dtype and device. */
static seqk_status check_float_group(seqk_context_t ctx, const char *op, int32_t ndim,
                                     const seqk_arg *args, int n) {
  for (int i = 0; i < n; ++i) {
    SEQK_TRY(seqk__check_float_tensor(ctx, op, args[i].name, args[i].t));
    SEQK_TRY(seqk__check_ndim(ctx, op, args[i].name, args[i].t, ndim));
  }
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, args, n));
  return seqk__check_same_device_all(ctx, op, args, n);
}

/* ---- softmax ---------------------------------------------------------------------------------- */

seqk_status seqk_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim, seqk_tensor *y) {
  static const char op[] = "softmax";
  int32_t d = 0;
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));
  if (x->ndim < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: x.ndim=0 but softmax needs ndim >= 1",
                      op);
  SEQK_TRY(seqk__check_dim_index(ctx, op, "dim", dim, x->ndim, &d));
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, x->ndim, x->shape));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_same_device(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "y", y, "x", x));

  if (x->device == SEQK_DEVICE_CUDA) return SEQK_ON_CUDA(ctx, op, seqk__cuda_softmax(ctx, x, d, y));
  return seqk__ref_softmax(ctx, x, d, y);
}

/* ---- split / merge heads ---------------------------------------------------------------------- */

seqk_status seqk_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                             seqk_tensor *y) {
  static const char op[] = "split_heads";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));
  SEQK_TRY(seqk__check_ndim(ctx, op, "x", x, 3));
  if (num_heads < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: num_heads=%d but it must be >= 1", op,
                      (int)num_heads);
  if (x->shape[2] % num_heads != 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: num_heads=%d does not divide x.shape[2]=%lld", op, (int)num_heads,
                      (long long)x->shape[2]);
  const int64_t y_shape[4] = {x->shape[0], num_heads, x->shape[1], x->shape[2] / num_heads};
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, 4, y_shape));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_same_device(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "y", y, "x", x));

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_split_heads(ctx, x, num_heads, y));
  return seqk__ref_split_heads(ctx, x, num_heads, y);
}

seqk_status seqk_merge_heads(seqk_context_t ctx, const seqk_tensor *x, seqk_tensor *y) {
  static const char op[] = "merge_heads";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "x", x));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "y", y));
  SEQK_TRY(seqk__check_ndim(ctx, op, "x", x, 4));
  const int64_t H = x->shape[1], D = x->shape[3];
  /* With B or S zero, x may have no elements yet a huge H*D; y's extent must still fit. */
  if (D > 0 && H > INT64_MAX / D)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: x.shape[1]*x.shape[3] (H*D) overflows int64", op);
  const int64_t y_shape[3] = {x->shape[0], x->shape[2], H * D};
  SEQK_TRY(seqk__check_shape(ctx, op, "y", y, 3, y_shape));
  SEQK_TRY(seqk__check_same_dtype(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_same_device(ctx, op, "x", x, "y", y));
  SEQK_TRY(seqk__check_output(ctx, op, "y", y));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "y", y, "x", x));

  if (x->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_merge_heads(ctx, x, y));
  return seqk__ref_merge_heads(ctx, x, y);
}

/* ---- scores / values -------------------------------------------------------------------------- */

seqk_status seqk_attention_scores(seqk_context_t ctx, const seqk_tensor *q, const seqk_tensor *k,
                                  float scale, int32_t causal, seqk_tensor *s) {
  static const char op[] = "attention_scores";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_arg args[] = {{"q", q}, {"k", k}, {"s", s}}; /* inputs first */
  SEQK_TRY(check_float_group(ctx, op, 4, args, SEQK_COUNT(args)));
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2];
  SEQK_TRY(seqk__check_extent(ctx, op, "k", k, 0, B, "q.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "k", k, 3, D, "q.shape[3]"));
  SEQK_TRY(seqk__check_head_groups(ctx, op, "q", H, "k", 1, Hk));
  SEQK_TRY(check_finite_scale(ctx, op, "scale", scale));
  const int64_t s_shape[4] = {B, H, Sq, Sk};
  SEQK_TRY(seqk__check_shape(ctx, op, "s", s, 4, s_shape));
  SEQK_TRY(seqk__check_output(ctx, op, "s", s));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "s", s, args, 2));

  if (q->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_attention_scores(ctx, q, k, scale, causal, s));
  return seqk__ref_attention_scores(ctx, q, k, scale, causal, s);
}

seqk_status seqk_attention_values(seqk_context_t ctx, const seqk_tensor *p, const seqk_tensor *v,
                                  seqk_tensor *o) {
  static const char op[] = "attention_values";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_arg args[] = {{"p", p}, {"v", v}, {"o", o}}; /* inputs first */
  SEQK_TRY(check_float_group(ctx, op, 4, args, SEQK_COUNT(args)));
  const int64_t B = p->shape[0], H = p->shape[1], Sq = p->shape[2], Sk = p->shape[3];
  const int64_t Hk = v->shape[1], Dv = v->shape[3];
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 0, B, "p.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 2, Sk, "p.shape[3]"));
  SEQK_TRY(seqk__check_head_groups(ctx, op, "p", H, "v", 1, Hk));
  const int64_t o_shape[4] = {B, H, Sq, Dv};
  SEQK_TRY(seqk__check_shape(ctx, op, "o", o, 4, o_shape));
  SEQK_TRY(seqk__check_output(ctx, op, "o", o));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "o", o, args, 2));

  if (p->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op, seqk__cuda_attention_values(ctx, p, v, o));
  return seqk__ref_attention_values(ctx, p, v, o);
}

/* ---- attention -------------------------------------------------------------------------------- */

seqk_status seqk_attention(seqk_context_t ctx, const seqk_attention_params *params,
                           const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                           seqk_tensor *o, seqk_tensor *lse) {
  static const char op[] = "attention";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_attention_params defaults = seqk__attention_defaults();
  const seqk_attention_params *p = params ? params : &defaults;

  const seqk_arg args[] = {{"q", q}, {"k", k}, {"v", v}, {"o", o}}; /* inputs first */
  enum { N_INPUTS = 3 };
  SEQK_TRY(check_float_group(ctx, op, 4, args, SEQK_COUNT(args)));
  for (int i = 0; i < SEQK_COUNT(args); ++i)
    SEQK_TRY(seqk__check_last_dim_contiguous(ctx, op, args[i].name, args[i].t));
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2], Dv = v->shape[3];
  if (D < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: q.shape[3]=%lld but the head dim D must be >= 1", op, (long long)D);
  SEQK_TRY(seqk__check_extent(ctx, op, "k", k, 0, B, "q.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "k", k, 3, D, "q.shape[3]"));
  SEQK_TRY(seqk__check_head_groups(ctx, op, "q", H, "k", 1, Hk));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 0, B, "q.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 1, Hk, "k.shape[1]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 2, Sk, "k.shape[2]"));
  if (Dv < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: v.shape[3]=%lld but the value head dim Dv must be >= 1", op,
                      (long long)Dv);
  const int64_t o_shape[4] = {B, H, Sq, Dv};
  SEQK_TRY(seqk__check_shape(ctx, op, "o", o, 4, o_shape));
  if (seqk__present(lse)) {
    const int64_t lse_shape[3] = {B, H, Sq};
    SEQK_TRY(seqk__check_tensor(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_dtype(ctx, op, "lse", lse, SEQK_DTYPE_F32));
    SEQK_TRY(seqk__check_shape(ctx, op, "lse", lse, 3, lse_shape));
    SEQK_TRY(seqk__check_same_device(ctx, op, "q", q, "lse", lse));
  }
  SEQK_TRY(seqk__check_attention_params(ctx, op, p));

  SEQK_TRY(seqk__check_output(ctx, op, "o", o));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "o", o, args, N_INPUTS));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "o", o, "lse", lse));
  if (seqk__present(lse)) {
    SEQK_TRY(seqk__check_output(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "lse", lse, args, N_INPUTS));
  }

  if (q->device == SEQK_DEVICE_CUDA) {
    /* The lengths of a CUDA call are read by the kernels: host memory would fault on the device.
       Their values (and length) cannot be checked here; the kernels clamp each to [0, S]. */
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.seqlens_q", p->seqlens_q));
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.seqlens_k", p->seqlens_k));
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.alibi_slopes", p->alibi_slopes));
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_attention(ctx, p, q, k, v, o, seqk__present_or_null(lse)));
  }
  SEQK_TRY(seqk__check_seqlens(ctx, op, "seqlens_q", p->seqlens_q, B, Sq, "Sq"));
  SEQK_TRY(seqk__check_seqlens(ctx, op, "seqlens_k", p->seqlens_k, B, Sk, "Sk"));
  SEQK_TRY(seqk__check_alibi_slopes(ctx, op, p->alibi_slopes, H));
  return seqk__ref_attention(ctx, p, q, k, v, o, lse);
}

/* ---- packed variable lengths ------------------------------------------------------------------ */

/* cu_seqlens_q / cu_seqlens_k: I32 [B + 1], B + 1 >= 1, both of one length, on q's device. */
static seqk_status check_offsets(seqk_context_t ctx, const char *op, const seqk_tensor *cu_q,
                                 const seqk_tensor *cu_k, const seqk_tensor *q) {
  SEQK_TRY(seqk__check_tensor(ctx, op, "cu_seqlens_q", cu_q));
  SEQK_TRY(seqk__check_dtype(ctx, op, "cu_seqlens_q", cu_q, SEQK_DTYPE_I32));
  SEQK_TRY(seqk__check_ndim(ctx, op, "cu_seqlens_q", cu_q, 1));
  if (cu_q->shape[0] < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: cu_seqlens_q.shape[0]=0 but it holds B + 1 >= 1 offsets", op);
  SEQK_TRY(seqk__check_tensor(ctx, op, "cu_seqlens_k", cu_k));
  SEQK_TRY(seqk__check_dtype(ctx, op, "cu_seqlens_k", cu_k, SEQK_DTYPE_I32));
  SEQK_TRY(seqk__check_ndim(ctx, op, "cu_seqlens_k", cu_k, 1));
  SEQK_TRY(seqk__check_extent(ctx, op, "cu_seqlens_k", cu_k, 0, cu_q->shape[0],
                              "cu_seqlens_q.shape[0]"));
  SEQK_TRY(seqk__check_same_device(ctx, op, "q", q, "cu_seqlens_q", cu_q));
  return seqk__check_same_device(ctx, op, "q", q, "cu_seqlens_k", cu_k);
}

static seqk_status check_max_len(seqk_context_t ctx, const char *op, const char *name,
                                 int32_t max_len) {
  if (max_len < 0)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: %s=%d but it must be >= 0 (0: the total)", op, name, (int)max_len);
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                  const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                                  const seqk_tensor *cu_seqlens_q, const seqk_tensor *cu_seqlens_k,
                                  int32_t max_seqlen_q, int32_t max_seqlen_k, seqk_tensor *o,
                                  seqk_tensor *lse) {
  static const char op[] = "attention_packed";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_attention_params defaults = seqk__attention_defaults();
  const seqk_attention_params *p = params ? params : &defaults;

  const seqk_arg args[] = {{"q", q}, {"k", k}, {"v", v}, {"o", o}};
  SEQK_TRY(check_float_group(ctx, op, 3, args, SEQK_COUNT(args)));
  for (int i = 0; i < SEQK_COUNT(args); ++i)
    SEQK_TRY(seqk__check_last_dim_contiguous(ctx, op, args[i].name, args[i].t));
  const int64_t Tq = q->shape[0], H = q->shape[1], D = q->shape[2];
  const int64_t Tk = k->shape[0], Hk = k->shape[1], Dv = v->shape[2];
  if (D < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: q.shape[2]=%lld but the head dim D must be >= 1", op, (long long)D);
  SEQK_TRY(seqk__check_extent(ctx, op, "k", k, 2, D, "q.shape[2]"));
  SEQK_TRY(seqk__check_head_groups(ctx, op, "q", H, "k", 1, Hk));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 0, Tk, "k.shape[0]"));
  SEQK_TRY(seqk__check_extent(ctx, op, "v", v, 1, Hk, "k.shape[1]"));
  if (Dv < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: v.shape[2]=%lld but the value head dim Dv must be >= 1", op,
                      (long long)Dv);
  const int64_t o_shape[3] = {Tq, H, Dv};
  SEQK_TRY(seqk__check_shape(ctx, op, "o", o, 3, o_shape));
  if (seqk__present(lse)) {
    const int64_t lse_shape[2] = {H, Tq};
    SEQK_TRY(seqk__check_tensor(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_dtype(ctx, op, "lse", lse, SEQK_DTYPE_F32));
    SEQK_TRY(seqk__check_shape(ctx, op, "lse", lse, 2, lse_shape));
    SEQK_TRY(seqk__check_same_device(ctx, op, "q", q, "lse", lse));
  }
  SEQK_TRY(check_offsets(ctx, op, cu_seqlens_q, cu_seqlens_k, q));
  SEQK_TRY(check_max_len(ctx, op, "max_seqlen_q", max_seqlen_q));
  SEQK_TRY(check_max_len(ctx, op, "max_seqlen_k", max_seqlen_k));
  SEQK_TRY(seqk__check_attention_params(ctx, op, p));
  if (p->seqlens_q || p->seqlens_k)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: params.%s must be NULL (cu_seqlens_q and cu_seqlens_k give the lengths)",
                      op, p->seqlens_q ? "seqlens_q" : "seqlens_k");

  const seqk_arg reads[] = {
      {"q", q}, {"k", k}, {"v", v}, {"cu_seqlens_q", cu_seqlens_q}, {"cu_seqlens_k", cu_seqlens_k}};
  SEQK_TRY(seqk__check_output(ctx, op, "o", o));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "o", o, reads, SEQK_COUNT(reads)));
  SEQK_TRY(seqk__check_no_overlap(ctx, op, "o", o, "lse", lse));
  if (seqk__present(lse)) {
    SEQK_TRY(seqk__check_output(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "lse", lse, reads, SEQK_COUNT(reads)));
  }

  /* Bounds as the kernels' launch takes them: 0 means the total. */
  const int64_t max_q = max_seqlen_q > 0 ? max_seqlen_q : Tq;
  const int64_t max_k = max_seqlen_k > 0 ? max_seqlen_k : Tk;
  if (q->device == SEQK_DEVICE_CUDA) {
    SEQK_TRY(seqk__check_device_readable(ctx, op, "params.alibi_slopes", p->alibi_slopes));
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_attention_packed(ctx, p, q, k, v, cu_seqlens_q, cu_seqlens_k,
                                                    max_q, max_k, o, seqk__present_or_null(lse)));
  }
  SEQK_TRY(seqk__check_alibi_slopes(ctx, op, p->alibi_slopes, H));
  SEQK_TRY(seqk__check_packed_offsets(ctx, op, "cu_seqlens_q", cu_seqlens_q, Tq, "q.shape[0]",
                                      max_q, max_seqlen_q > 0 ? "max_seqlen_q" : "Tq"));
  SEQK_TRY(seqk__check_packed_offsets(ctx, op, "cu_seqlens_k", cu_seqlens_k, Tk, "k.shape[0]",
                                      max_k, max_seqlen_k > 0 ? "max_seqlen_k" : "Tk"));
  return seqk__ref_attention_packed(ctx, p, q, k, v, cu_seqlens_q, cu_seqlens_k, o, lse);
}

/* ---- merge ------------------------------------------------------------------------------------ */

seqk_status seqk_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                 const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                 const seqk_tensor *lse_b, seqk_tensor *o, seqk_tensor *lse) {
  static const char op[] = "attention_merge";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  const seqk_tensor *lse_opt = seqk__present_or_null(lse);
  /* Every tensor, the three o tensors and the three lse tensors; inputs first in each. */
  const seqk_arg all_args[] = {{"o_a", o_a},     {"lse_a", lse_a}, {"o_b", o_b},
                               {"lse_b", lse_b}, {"o", o},         {"lse", lse_opt}};
  const seqk_arg o_args[] = {{"o_a", o_a}, {"o_b", o_b}, {"o", o}};
  const seqk_arg lse_args[] = {{"lse_a", lse_a}, {"lse_b", lse_b}, {"lse", lse_opt}};
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "o_a", o_a));
  SEQK_TRY(seqk__check_tensor(ctx, op, "lse_a", lse_a));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "o_b", o_b));
  SEQK_TRY(seqk__check_tensor(ctx, op, "lse_b", lse_b));
  SEQK_TRY(seqk__check_float_tensor(ctx, op, "o", o));
  if (o_a->ndim < 1)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "%s: o_a.ndim=0 but it must be 1..%d ([..., Dv])", op, SEQK_MAX_DIMS);
  const int32_t nd = o_a->ndim;
  SEQK_TRY(seqk__check_shape(ctx, op, "o_b", o_b, nd, o_a->shape));
  SEQK_TRY(seqk__check_shape(ctx, op, "o", o, nd, o_a->shape));
  SEQK_TRY(seqk__check_same_dtype_all(ctx, op, o_args, SEQK_COUNT(o_args)));
  /* The lse tensors index the rows: o's shape without its last dim. */
  SEQK_TRY(seqk__check_dtype(ctx, op, "lse_a", lse_a, SEQK_DTYPE_F32));
  SEQK_TRY(seqk__check_shape(ctx, op, "lse_a", lse_a, nd - 1, o_a->shape));
  SEQK_TRY(seqk__check_dtype(ctx, op, "lse_b", lse_b, SEQK_DTYPE_F32));
  SEQK_TRY(seqk__check_shape(ctx, op, "lse_b", lse_b, nd - 1, o_a->shape));
  if (lse_opt) {
    SEQK_TRY(seqk__check_tensor(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_dtype(ctx, op, "lse", lse, SEQK_DTYPE_F32));
    SEQK_TRY(seqk__check_shape(ctx, op, "lse", lse, nd - 1, o_a->shape));
  }
  SEQK_TRY(seqk__check_same_device_all(ctx, op, all_args, SEQK_COUNT(all_args)));

  SEQK_TRY(seqk__check_output(ctx, op, "o", o));
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "o", o, "o_a", o_a));
  SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "o", o, "o_b", o_b));
  SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "o", o, lse_args, SEQK_COUNT(lse_args)));
  if (lse_opt) {
    SEQK_TRY(seqk__check_output(ctx, op, "lse", lse));
    SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "lse", lse, "lse_a", lse_a));
    SEQK_TRY(seqk__check_alias_or_disjoint(ctx, op, "lse", lse, "lse_b", lse_b));
    SEQK_TRY(seqk__check_disjoint_from_all(ctx, op, "lse", lse, o_args, 2)); /* o_a, o_b */
  }

  if (o_a->device == SEQK_DEVICE_CUDA)
    return SEQK_ON_CUDA(ctx, op,
                        seqk__cuda_attention_merge(ctx, o_a, lse_a, o_b, lse_b, o, lse_opt));
  return seqk__ref_attention_merge(ctx, o_a, lse_a, o_b, lse_b, o, lse);
}
