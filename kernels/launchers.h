/*
 * launchers.h - the border between host/ and kernels/: the C-callable launchers of every kernel
 * source (kernels/NAME.cu) and the plain parameter structs they take.
 *
 * A launcher knows nothing of contexts, tensors, workspaces or statuses. It takes a params struct
 * (raw device pointers, extents and element strides, every field commented) that host code filled
 * from validated descriptors, any device scratch the host already carved out of its workspace,
 * and a stream; it picks the grid, block, shared memory and kernel variant, enqueues the kernel(s)
 * and returns the launch's cudaError_t (an earlier, unrelated error is cleared first, so it is
 * never blamed on this launch). Errors while a kernel runs surface at the next synchronising call,
 * as with every CUDA launch. No launcher waits for its kernels or allocates memory.
 *
 * Questions the host asks before it plans (does a fused kernel serve this shape, how much scratch
 * does a variant take, does the persistent RNN kernel fit) are answered by plain functions here
 * that return a value or a reason code and touch no state.
 *
 * From the public header this file uses only plain definitions: seqk_dtype, seqk_rnn_mode,
 * seqk_activation and SEQK_MAX_DIMS. Element strides are int64 everywhere; extents past 2^31 are the host's to check
 * against the bounds each launcher states.
 */
#ifndef SEQK_KERNELS_LAUNCHERS_H
#define SEQK_KERNELS_LAUNCHERS_H

#include "seqk.h"

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Dims of a tensor other than one (the row dims of a [..., n] tensor, the outer dims of a
   softmax): at most SEQK_MAX_DIMS - 1. */
#define SEQK_K_LEAD_DIMS (SEQK_MAX_DIMS - 1)

/* ---- tensor_copy.cu ------------------------------------------------------------------------- */

/* dst[i] = src[i] over a strided index space, converting between F32/F16/BF16 (round to nearest
   even) or moving I32 to I32. The host drops size-1 dims; dst and src do not overlap. */
typedef struct seqk_k_copy_params {
  void *dst;
  const void *src;
  seqk_dtype dst_dtype, src_dtype; /* I32 only to I32 */
  int64_t n;                       /* elements (the product of shape) */
  int32_t ndim;                    /* dims kept, <= SEQK_MAX_DIMS */
  int64_t shape[SEQK_MAX_DIMS];
  int64_t dst_stride[SEQK_MAX_DIMS], src_stride[SEQK_MAX_DIMS];
} seqk_k_copy_params;
cudaError_t seqk_k_tensor_copy(const seqk_k_copy_params *p, cudaStream_t stream);

/* ---- fill_rows.cu --------------------------------------------------------------------------- */

/* y[..., j] = bias[j * bias_stride] on every row, or `value` everywhere when bias is NULL.
   y is rows x cols: the leading dims (size-1 dims dropped, neighbours that continue each other
   merged by the host) and the last dim. */
typedef struct seqk_k_fill_params {
  void *y;
  const void *bias; /* of y's dtype, or NULL */
  seqk_dtype dtype; /* F32/F16/BF16 */
  float value;      /* used when bias is NULL */
  int64_t n;        /* elements of y */
  int64_t cols, col_stride, bias_stride;
  int32_t nlead; /* leading dims kept, <= SEQK_K_LEAD_DIMS */
  int64_t shape[SEQK_K_LEAD_DIMS], stride[SEQK_K_LEAD_DIMS];
} seqk_k_fill_params;
cudaError_t seqk_k_fill_rows(const seqk_k_fill_params *p, cudaStream_t stream);

/* ---- attention_masks.cu: the masks of the unfused attention path ------------------------------ */

/* s [B,H,Sq,Sk] = -inf at j > i + Sk - Sq (causal, aligned bottom-right); nothing else written. */
typedef struct seqk_k_causal_mask_params {
  void *s;
  seqk_dtype dtype;
  int64_t H, Sq, Sk, rows; /* rows = B * H * Sq */
  int64_t stride[4];
} seqk_k_causal_mask_params;
cudaError_t seqk_k_causal_mask(const seqk_k_causal_mask_params *p, cudaStream_t stream);

/* dst (contiguous [B,Hk,Sk,Dv]) = v with the keys j >= seqlens_k[b] written as 0 and never read
   (a padded key may hold NaN, and 0 * NaN would leak through the P V product). */
typedef struct seqk_k_valid_keys_params {
  void *dst;
  const void *v;
  seqk_dtype dtype;
  const int32_t *seqlens_k; /* device array [B] */
  int64_t Hk, Sk, Dv, n;    /* n = B * Hk * Sk * Dv */
  int64_t v_stride[4];
} seqk_k_valid_keys_params;
cudaError_t seqk_k_copy_valid_keys(const seqk_k_valid_keys_params *p, cudaStream_t stream);

/* After o = P v: every row of o [B,H,Sq,Dv] that holds a non-finite value while keys it does not
   see (causal masking, or all keys for a padding row) were in the product is recomputed from P and
   v over its visible keys alone (P is 0 at a masked key, and 0 * NaN or 0 * inf is NaN: seqk.h
   says keys a row does not see contribute nothing). Other rows are read, not written. */
typedef struct seqk_k_attention_repair_params {
  void *o;
  const void *p; /* P [B,H,Sq,Sk] in o's dtype */
  const void *v; /* v [B,Hk,Sk,Dv] as given */
  seqk_dtype dtype;
  int64_t B, H, Hk, Sq, Sk, Dv;
  int64_t o_stride[4], p_stride[4], v_stride[4];
  const int32_t *seqlens_q, *seqlens_k; /* device arrays or NULL (clamped like the softmax's) */
  int32_t left, right;                  /* key window (visible_keys.cuh; -1 unbounded) */
} seqk_k_attention_repair_params;
cudaError_t seqk_k_attention_repair(const seqk_k_attention_repair_params *p, cudaStream_t stream);

/* The score modifiers of the unfused path on s [B,H,Sq,Sk] (fp32, contiguous, the unscaled q.k):
   s = scale * s, then softcap * tanh(s / softcap) when softcap > 0, then the ALiBi term
   -alibi_slopes[h] * |i + Sk_b - Sq_b - j| when slopes are given, then -inf at the keys before
   the window's left edge (visible_keys.cuh with right -1; the softmax that follows, run with
   scale 1, ends each row at the window's right edge). */
typedef struct seqk_k_score_mod_params {
  float *s;
  int64_t B, H, Sq, Sk, n; /* n = B * H * Sq * Sk */
  float scale, softcap;
  const float *alibi_slopes; /* [H] or NULL */
  int32_t left;
  const int32_t *seqlens_q, *seqlens_k; /* device arrays or NULL */
} seqk_k_score_mod_params;
cudaError_t seqk_k_score_mod(const seqk_k_score_mod_params *p, cudaStream_t stream);

/* s [B,H,Sq,Sk] (fp32, contiguous) = -inf where mask[b, j] != 0; nothing else written. */
typedef struct seqk_k_key_mask_params {
  float *s;
  const int32_t *mask;  /* [B,Sk] */
  int64_t H, Sq, Sk, n; /* n = B * H * Sq * Sk */
  int64_t mask_stride[2];
} seqk_k_key_mask_params;
cudaError_t seqk_k_key_mask(const seqk_k_key_mask_params *p, cudaStream_t stream);

/* ---- head_mean.cu: mha_forward's head-averaged attention weights ------------------------------ */

/* attn [B,Sq,Sk] = p [B,H,Sq,Sk] averaged over h (fp32 sum). */
typedef struct seqk_k_head_mean_params {
  const void *p;
  void *attn;
  seqk_dtype dtype;
  int64_t H, Sq, Sk, n; /* n = B * Sq * Sk */
  int64_t p_stride[4], attn_stride[3];
} seqk_k_head_mean_params;
cudaError_t seqk_k_head_mean(const seqk_k_head_mean_params *p, cudaStream_t stream);

/* ---- heads.cu: split/merge heads ---------------------------------------------------------------- */

/* dst[b,h,s,d] = src[b,h,s,d] over four logical dims, moving raw bits (any dtype of elem_size
   bytes; NaN payloads kept). The launcher orders the outer dims by dst's strides and moves 16, 8,
   4 or elem_size bytes at a time, whatever both sides' alignment allows. No extent is 0. */
typedef struct seqk_k_permute4_params {
  void *dst;
  const void *src;
  size_t elem_size; /* 2 or 4 */
  int64_t n[4];
  int64_t src_stride[4], dst_stride[4];
} seqk_k_permute4_params;
cudaError_t seqk_k_permute4(const seqk_k_permute4_params *p, cudaStream_t stream);

/* ---- deferred device checks (seqk_context_set_device_checks) ---------------------------------------
   A kernel in DEFERRED mode records an error with atomicMin into the word of its kind:
   (min(position, SEQK_K_CHECK_POS_MAX) << 32) | (uint32_t)value, so the smallest position wins
   and brings its value along; all ones means no error. */
#define SEQK_K_CHECK_POS_MAX 0xFFFFFFFEull
enum {
  SEQK_K_CHECK_EMBEDDING = 0,
  SEQK_K_CHECK_RNN_LENGTHS = 1,
  SEQK_K_CHECK_KV_APPEND = 2,    /* position: the sequence; value: its cache_seqlens */
  SEQK_K_CHECK_KV_ATTENTION = 3, /* the same, for seqk_attention_kv_cache */
  SEQK_K_CHECK_PACKED = 4,       /* position: the sequence; value: 0 its query offsets, 1 key */
  SEQK_K_CHECK_KINDS = 5
};

/* ---- kv_cache.cu ---------------------------------------------------------------------------------- */

/* seqk_kv_cache_append on CUDA tensors (strides in elements; page_table NULL: contiguous). */
typedef struct seqk_k_kv_append_params {
  void *k_cache, *v_cache;
  const void *k_new, *v_new;
  int32_t *seqlens;
  const int32_t *page_table; /* [B, max_pages] or NULL */
  size_t elem_size;          /* 2 or 4 */
  int64_t B, S_new, Hk, D, Dv;
  int64_t page_size, max_pages, num_pages; /* paged; contiguous: page_size = S_max, max_pages 1 */
  int64_t capacity;                        /* max_pages * page_size, saturated at INT64_MAX */
  int64_t kc_stride[4], vc_stride[4], kn_stride[4], vn_stride[4], pt_stride[2];
  int64_t len_stride;
  int32_t *fit; /* [B] device scratch: whether sequence b's new positions fit (set by the check) */
  /* Rotary keys on the way in (rope != 0): the rows written into k_cache are k_new's rotated by
     seqk_rotary's rule (rotary.cuh) at position cache_seqlens[b] + s, and q [B,S_new,H,D] (NULL:
     none) is rotated in place at the same positions, both only for the sequences that fit. */
  int32_t rope, neox;
  seqk_dtype dtype; /* of the cache and the new tokens (rope needs values, not bits) */
  int64_t rotary_dim, H;
  double log2_theta;
  void *q;
  int64_t q_stride[4];
} seqk_k_kv_append_params;
/* fit[b] = whether sequence b's new positions fit (its length >= 0, within the capacity, every
   page id it touches in [0, num_pages)), and the first sequence that does not recorded in *bad
   with the encoding above; with reset_bad *bad is set to all ones first (a waiting check's own
   word), else it keeps what it holds (the context's deferred word). Writes nothing else. */
cudaError_t seqk_k_kv_append_check(const seqk_k_kv_append_params *p, unsigned long long *bad,
                                   int reset_bad, cudaStream_t stream);
/* After the check: the copy of the sequences that fit, then, with advance, seqlens[b] += S_new
   for them. */
cudaError_t seqk_k_kv_append(const seqk_k_kv_append_params *p, int advance, cudaStream_t stream);

/* seqk_attention_kv_cache's lengths (the cache's positions as above). */
typedef struct seqk_k_kv_lengths_params {
  const int32_t *seqlens; /* cache_seqlens [B] */
  int64_t len_stride;
  const int32_t *page_table; /* [B, max_pages] or NULL */
  int64_t pt_stride[2];
  int64_t B, page_size, num_pages, capacity;
  int32_t *len; /* [B] device scratch out: the lengths the attention uses */
} seqk_k_kv_lengths_params;
/* len[b] = seqlens[b] when it lies in [0, capacity] and every page id of its first
   ceil(seqlens[b] / page_size) pages is in [0, num_pages); else 0, with the first such sequence
   in *bad (encoding and reset_bad as seqk_k_kv_append_check). A block walks one sequence's pages. */
cudaError_t seqk_k_kv_lengths(const seqk_k_kv_lengths_params *p, unsigned long long *bad,
                              int reset_bad, cudaStream_t stream);

/* A paged cache's first len[b] positions of each sequence copied (raw bits) into dst_k
   [B, Hk, S, D] and dst_v [B, Hk, S, Dv] (given strides); positions at or past len[b] are not
   written. For the unfused path, which cannot read pages. */
typedef struct seqk_k_kv_gather_params {
  const void *k, *v; /* the pages [num_pages, page_size, Hk, D(v)] */
  void *dst_k, *dst_v;
  const int32_t *page_table, *len;
  size_t elem_size; /* 2 or 4 */
  int64_t B, Hk, S, D, Dv, page_size;
  int64_t k_stride[4], v_stride[4], dk_stride[4], dv_stride[4], pt_stride[2];
} seqk_k_kv_gather_params;
cudaError_t seqk_k_kv_gather(const seqk_k_kv_gather_params *p, cudaStream_t stream);

/* ---- packed_offsets.cu: seqk_attention_packed's offsets ---------------------------------------- */

typedef struct seqk_k_packed_offsets_params {
  const int32_t *cu_q, *cu_k; /* [B + 1] cumulative offsets */
  int64_t q_stride, k_stride; /* their element strides */
  int64_t B, Tq, Tk;          /* sequences, query and key rows of the packed tensors */
  int64_t max_q, max_k;       /* bounds on each sequence's lengths */
  int32_t *q_start, *q_len, *k_start, *k_len; /* [B] device scratch out */
} seqk_k_packed_offsets_params;
/* Sequence b is good when 0 <= cu_q[b] <= cu_q[b + 1] <= Tq, cu_q[b + 1] - cu_q[b] <= max_q, and
   the same of cu_k with Tk and max_k. A good one gets its first rows and lengths; a bad one
   lengths 0 (the attention writes none of its rows) and the first bad sequence goes to *bad
   (encoding and reset_bad as seqk_k_kv_append_check; value 0: its query offsets, 1: its keys'). */
cudaError_t seqk_k_packed_offsets(const seqk_k_packed_offsets_params *p, unsigned long long *bad,
                                  int reset_bad, cudaStream_t stream);

/* ---- embedding.cu ------------------------------------------------------------------------------- */

/* out[i..., :] = table[indices[i...], :]. The index dims come with size-1 dims dropped and
   neighbours contiguous in both indices and out merged. */
typedef struct seqk_k_embedding_params {
  void *out;
  const void *table;
  const int32_t *indices;
  size_t elem_size; /* of table and out: 2 or 4 */
  int64_t n;        /* indices */
  int64_t V, E;     /* table [V, E] */
  int64_t table_stride[2], out_col_stride;
  int32_t ndim; /* index dims kept, <= SEQK_K_LEAD_DIMS */
  int64_t shape[SEQK_K_LEAD_DIMS], idx_stride[SEQK_K_LEAD_DIMS], out_stride[SEQK_K_LEAD_DIMS];
  /* DEFERRED checks: the SEQK_K_CHECK_EMBEDDING word; NULL when the host checked first. */
  unsigned long long *deferred_bad;
} seqk_k_embedding_params;
/* Sets *first_bad (device memory, one word) to the smallest row-major position whose index is
   outside [0, V), or to all ones when every index is in range. Writes nothing else. */
cudaError_t seqk_k_embedding_check(const seqk_k_embedding_params *p, unsigned long long *first_bad,
                                   cudaStream_t stream);
/* The gather; an index outside [0, V) is never read: skipped (impossible after a clean check),
   or with deferred_bad its row written as zeros and the error recorded there. */
cudaError_t seqk_k_embedding_gather(const seqk_k_embedding_params *p, cudaStream_t stream);

/* ---- several tensors of one shape walked together (norm.cu, activation.cu) --------------------- */

/* Dims that the host merged across every tensor of an op (geometry.h, seqk__merge_dims): element
   index i (row-major over shape) -> tensor t's offset sum_d idx_d * stride[t][d]. Absent tensors
   have strides 0. */
#define SEQK_K_LAYOUT_TENSORS 4
typedef struct seqk_k_layout {
  int32_t ndim; /* <= SEQK_MAX_DIMS */
  int64_t shape[SEQK_MAX_DIMS];
  int64_t stride[SEQK_K_LAYOUT_TENSORS][SEQK_MAX_DIMS];
} seqk_k_layout;

/* ---- norm.cu -------------------------------------------------------------------------------------- */

/* seqk_layer_norm / seqk_rms_norm per row of n columns: h = x (+ residual, rounded to dtype),
   residual_out = h, y = norm(h) * weight + bias. y may alias x exactly, residual_out residual or x
   exactly. rows: the layout's index space (the leading dims). */
enum { SEQK_K_NORM_X, SEQK_K_NORM_RESIDUAL, SEQK_K_NORM_Y, SEQK_K_NORM_RESIDUAL_OUT };
typedef struct seqk_k_norm_params {
  const void *x, *residual, *weight, *bias; /* residual, weight, bias: NULL when absent */
  void *y, *residual_out;                   /* residual_out: NULL when absent */
  seqk_dtype dtype;                         /* of every tensor */
  int32_t rms;                              /* 1: RMS norm; 0: layer norm */
  float eps;
  int64_t rows, n;
  int64_t col_stride[SEQK_K_LAYOUT_TENSORS]; /* last-dim strides, SEQK_K_NORM_* order */
  int64_t weight_stride, bias_stride;
  seqk_k_layout lead; /* the leading dims, tensors in SEQK_K_NORM_* order */
} seqk_k_norm_params;
cudaError_t seqk_k_norm(const seqk_k_norm_params *p, cudaStream_t stream);

/* ---- activation.cu -------------------------------------------------------------------------------- */

/* y = act(x) [* up] [+ add], element by element over the layout (all dims; tensors in
   SEQK_K_ACT_* order): the activations, gated units and linear epilogues. y may alias x, up or
   add exactly. */
enum { SEQK_K_ACT_X, SEQK_K_ACT_UP, SEQK_K_ACT_Y, SEQK_K_ACT_ADD };
typedef struct seqk_k_activation_params {
  const void *x, *up, *add; /* up, add: NULL when absent */
  void *y;
  seqk_dtype dtype;
  seqk_activation act;
  int64_t n; /* elements */
  seqk_k_layout layout;
} seqk_k_activation_params;
cudaError_t seqk_k_activation(const seqk_k_activation_params *p, cudaStream_t stream);

/* ---- rotary.cu ------------------------------------------------------------------------------------ */

/* seqk_rotary in place on q [B,S,H,D] and k [B,S,Hk,D] (k NULL: q only). Pair i of a head vector
   is turned by fp32(pos) * inv_freq_i, inv_freq_i = fp32(2^(-(2i / rotary_dim) * log2_theta)). */
typedef struct seqk_k_rotary_params {
  void *q, *k;
  const int32_t *positions; /* [B,S], or NULL: position s */
  seqk_dtype dtype;
  int32_t neox; /* 1: pairs (i, i + rotary_dim/2); 0: pairs (2i, 2i + 1) */
  int64_t B, S, H, Hk, D, rotary_dim;
  double log2_theta;
  int64_t q_stride[4], k_stride[4], pos_stride[2];
} seqk_k_rotary_params;
cudaError_t seqk_k_rotary(const seqk_k_rotary_params *p, cudaStream_t stream);

/* ---- attention_merge.cu ------------------------------------------------------------------------- */

/* seqk_attention_merge per row (the math is merge.cuh's, shared with the split-KV combine): o may
   alias o_a or o_b exactly and lse may alias lse_a or lse_b exactly. Row dims come with size-1
   dims dropped and neighbours contiguous in all six tensors merged. */
enum {
  SEQK_K_MERGE_OA,
  SEQK_K_MERGE_OB,
  SEQK_K_MERGE_O,
  SEQK_K_MERGE_LA,
  SEQK_K_MERGE_LB,
  SEQK_K_MERGE_L,
  SEQK_K_MERGE_TENSORS
};
typedef struct seqk_k_merge_params {
  const void *o_a, *o_b;
  void *o;
  const float *lse_a, *lse_b;
  float *lse;       /* NULL: not written */
  seqk_dtype dtype; /* of o_a, o_b, o */
  int64_t rows, Dv;
  int64_t col_stride[3]; /* last-dim strides of o_a, o_b, o */
  int32_t ndim;          /* row dims kept, <= SEQK_K_LEAD_DIMS */
  int64_t shape[SEQK_K_LEAD_DIMS];
  int64_t stride[SEQK_K_MERGE_TENSORS][SEQK_K_LEAD_DIMS]; /* 0 for lse when absent */
} seqk_k_merge_params;
cudaError_t seqk_k_attention_merge(const seqk_k_merge_params *p, cudaStream_t stream);

/* ---- softmax.cu --------------------------------------------------------------------------------- */

/* y = softmax(x) along one dim (seqk_softmax's semantics, fp32 math, y may alias x exactly). The
   other ("outer") dims come with size-1 dims dropped, sorted by decreasing x stride and merged
   where both x and y step through neighbours as through one dim. */
typedef struct seqk_k_softmax_params {
  const void *x;
  void *y;
  seqk_dtype dtype;   /* of x and y */
  int64_t n, rows;    /* the softmax dim's extent; rows = elements / n */
  int64_t sx, sy;     /* the softmax dim's strides */
  int32_t outer_ndim; /* <= SEQK_K_LEAD_DIMS */
  int64_t outer_shape[SEQK_K_LEAD_DIMS];
  int64_t outer_xs[SEQK_K_LEAD_DIMS], outer_ys[SEQK_K_LEAD_DIMS];
} seqk_k_softmax_params;
/* Scratch the launcher will use with `sms` SMs (rows longer than 32768 when there are few of them
   split across blocks and combine one (max, sum) pair per piece); 0 for every other variant. */
size_t seqk_k_softmax_scratch_bytes(const seqk_k_softmax_params *p, int sms);
/* scratch: at least seqk_k_softmax_scratch_bytes, or NULL to forgo the split variant (when x or y
   lie in the workspace the scratch would come from). */
cudaError_t seqk_k_softmax(const seqk_k_softmax_params *p, int sms, void *scratch,
                           cudaStream_t stream);

/* The softmax of the unfused attention path: p = softmax over j of scale * scores under
   seqk_attention's mask. With Sq_b = seqlens_q[b], Sk_b = seqlens_k[b] (device arrays, or Sq / Sk
   when NULL; clamped to [0, Sq] / [0, Sk]) query i of batch b sees keys j < Sk_b, and with a
   right extent r >= 0 also j <= i + Sk_b - Sq_b + r (causal: r = 0); masked p = 0; rows
   i >= Sq_b and rows with no visible key are all 0 with lse = +inf. Uses no scratch (the scores usually live in the workspace). */
typedef struct seqk_k_attention_softmax_params {
  const float *scores; /* fp32 [B,H,Sq,Sk], contiguous, the UNSCALED q.k */
  void *p;             /* [B,H,Sq,Sk] of p_dtype, last-dim stride 1; may be scores
                                          itself when F32 with the same layout */
  seqk_dtype p_dtype;
  float *lse; /* fp32 [B,H,Sq] natural-log logsumexp, or NULL */
  int64_t B, H, Sq, Sk;
  int64_t p_stride[3], lse_stride[3];
  float scale;   /* as applied (0 already resolved); may be negative */
  int32_t right; /* the key window's right extent, -1 unbounded */
  const int32_t *seqlens_q, *seqlens_k;
} seqk_k_attention_softmax_params;
cudaError_t seqk_k_attention_softmax(const seqk_k_attention_softmax_params *p, int sms,
                                     cudaStream_t stream);

/* ---- flash_attention*.cu: the fused attention kernels ------------------------------------------- */

/* What seqk_attention asks of the fused kernels, as the host resolved it. */
typedef struct seqk_k_flash_args {
  const void *q, *k, *v;
  void *o;
  float *lse; /* NULL when absent */
  seqk_dtype dtype;
  int64_t B, H, Hk, Sq, Sk, D, Dv;
  int64_t q_stride[4], k_stride[4], v_stride[4], o_stride[4], lse_stride[3];
  double scale;        /* as applied (0 already resolved) */
  int32_t left, right; /* key window around i + Sk_b - Sq_b (attention_rules.h), -1 unbounded */
  float softcap;       /* > 0: scaled scores become softcap * tanh(s / softcap) */
  const float
      *alibi_slopes; /* [H] or NULL: -slope[h] * |i + Sk_b - Sq_b - j| added after the cap */
  const int32_t *seqlens_q, *seqlens_k; /* device arrays or NULL */
  /* Packed sequences (seqk_attention_packed; NULL otherwise): batch b's first query row and first
     key row in q/o/lse and k/v, whose batch strides are 0; seqlens_q / seqlens_k then hold the
     (checked) lengths, Sq and Sk the bounds on them. No split-KV. k_rows: the rows of the packed
     k and v (the Hopper kernel's tensor maps span them). */
  const int32_t *q_start, *k_start;
  int64_t k_rows;
  int32_t batch_invariant; /* split decisions from one sequence's work, not the batch's */
  /* Paged K and V (page_table non-NULL; seqk_attention_kv_cache): k and v are pages [num_pages,
     page_size, Hk, D(v)] and k_stride / v_stride hold {page, head, row within the page, 1} (dims
     as [B, Hk, Sk, D] read them, the batch's place taken by the page); key j of batch b is row
     j % page_size of page page_table[b * pt_stride[0] + (j / page_size) * pt_stride[1]]. Sk is
     the capacity (max_pages * page_size), seqlens_k the checked lengths: every page id a kernel
     reads lies in range. */
  const int32_t *page_table;
  int64_t pt_stride[2];
  int64_t page_size, num_pages;
} seqk_k_flash_args;

/* The kernels' parameters (flash_attention.cuh reads them): strides in elements, dims of extent
   1 carry stride 0; everything here fits 32 bits where it is an int (the plan checked). */
typedef struct seqk_k_flash_params {
  const void *q, *k, *v;
  void *o;
  float *lse;               /* NULL when absent */
  float *part_o, *part_lse; /* split-KV partials (host scratch) when splits > 1 */
  int64_t q_sb, q_sh, q_ss;
  int64_t k_sb, k_sh, k_ss;
  int64_t v_sb, v_sh, v_ss;
  int64_t o_sb, o_sh, o_ss;
  int64_t l_sb, l_sh, l_ss;
  int B, H, Hk, group, Sq, Sk, D, Dv;
  int rows;           /* group * Sq: rows per (b, kh) */
  int left, right;    /* key window (flash_attention.cuh: key_first, key_limit); -1 unbounded */
  float softcap_log2; /* softcap * log2(e), 0: none */
  float softcap_k, softcap_hi, softcap_m2; /* the tensor-core kernel's form (softcap_raw) */
  float scale_log2;                        /* effective scale * log2(e) */
  float scale_abs_log2; /* |scale_log2| (the tensor-core kernel negates q for a negative scale) */
  const float *alibi;   /* ALiBi slopes [H] (seqk_k_flash_args' alibi_slopes) or NULL */
  float alibi_raw; /* 1 / |scale|: a natural-units bias in the tensor-core kernel's raw units */
  const int32_t *seqlens_q, *seqlens_k;
  const int32_t *q_start, *k_start; /* packed sequences' first rows (seqk_k_flash_args) */
  int64_t k_rows;                   /* packed: rows of k and v (seqk_k_flash_args) */
  const int32_t *page_table;        /* paged K/V (NULL: contiguous); see seqk_k_flash_args */
  int64_t pt_sb, pt_ss;             /* the page table's batch and slot strides */
  int64_t k_sp, v_sp;               /* page strides (k_sb, v_sb are 0 when paged) */
  int page_size;
  int splits; /* key splits per row tile (1: none) */
  int in_vec; /* SIMT kernel: q/k/v rows allow float4 loads */
  int o_vec;  /* tensor-core kernel: o rows allow 16-byte stores */
} seqk_k_flash_params;

/* Why the fused kernels do not serve a call (SEQK_K_FLASH_OK: they do). */
typedef enum seqk_k_flash_support {
  SEQK_K_FLASH_OK,
  SEQK_K_FLASH_HEAD_DIM, /* D or Dv > 256 */
  SEQK_K_FLASH_ROWS,     /* Sq, Sk, H or group * Sq past 32-bit row and head indexing */
  SEQK_K_FLASH_GRID,     /* B or Hk > 65535, or too many row tiles */
  SEQK_K_FLASH_ARCH,     /* a device before sm_80 */
  SEQK_K_FLASH_STRIDE    /* a K or V row stride of 2^26 elements or more (32-bit tile offsets) */
} seqk_k_flash_support;

/* Everything one call launches, decided before anything runs. */
typedef struct seqk_k_flash_plan {
  int empty; /* o has no element: nothing to launch */
  int tc;    /* tensor-core kernel (else the fp32 SIMT kernel) */
  int hopper; /* the tensor-core work on the Hopper kernel (sm_90a: wgmma, TMA) */
  int dpad;  /* instantiated head dim the kernel runs at */
  seqk_dtype dtype;
  int64_t part_rows;     /* splits * B * H * Sq when splitting, else 0 */
  seqk_k_flash_params p; /* part_o / part_lse set by the host before launching */
} seqk_k_flash_plan;

/* Test hooks for the plan (0 = automatic): force_kernel 1 the SIMT kernel, 2 the sm_80
   tensor-core kernel where it applies (also on a 9.0 device), 3 the Hopper kernel where it applies
   (a 9.0 device; elsewhere as 0); force_splits n >= 1 at most n key splits. */
typedef struct seqk_k_flash_force {
  int kernel, splits;
} seqk_k_flash_force;

/* Plans a call on a device with `sms` SMs of compute capability cc_major.x; fills *plan when the
   answer is SEQK_K_FLASH_OK. The split partials then take part_rows * Dv floats (part_o) and
   part_rows floats (part_lse). */
seqk_k_flash_support seqk_k_flash_plan_call(const seqk_k_flash_args *a, int sms, int cc_major,
                                            seqk_k_flash_force force, seqk_k_flash_plan *plan);
cudaError_t seqk_k_flash_launch(const seqk_k_flash_plan *plan, cudaStream_t stream);

/* ---- rnn.cu: recurrent cells and layers ---------------------------------------------------------
   G is the gate count of the mode (1 TANH/RELU, 4 LSTM, 3 GRU), given by the host. Gate rows are in
   PyTorch's order; states are fp32 on the device except where a field says otherwise. */

/* One cell step: h' (and c') from the fp32 gate products gi = x W_ih^T and gh = h W_hh^T. h/c and
   h_out/c_out may be the same memory (each element is read, then written, by one thread). */
typedef struct seqk_k_rnn_cell_params {
  seqk_rnn_mode mode;
  int32_t G;
  seqk_dtype dtype; /* of the biases, h, c, h_out, c_out */
  int64_t N, H;
  const float *gi, *gh;    /* [N, G*H] contiguous; gh NULL: no h (W_hh h = 0) */
  const void *b_ih, *b_hh; /* [G*H] or NULL */
  int64_t bs_ih, bs_hh;
  const void *h, *c; /* [N, H] or NULL (zeros) */
  int64_t h_stride[2], c_stride[2];
  void *h_out, *c_out; /* c_out NULL unless LSTM */
  int64_t ho_stride[2], co_stride[2];
} seqk_k_rnn_cell_params;
cudaError_t seqk_k_rnn_cell(const seqk_k_rnn_cell_params *p, cudaStream_t stream);

/* What both recurrence paths of one layer-direction share. Step s of row n works on time
   s (forward) or len[n]-1-s (reverse); past a row's length the state is kept and y[s][n] = 0. */
typedef struct seqk_k_rnn_seq_params {
  seqk_rnn_mode mode;
  int32_t G;
  seqk_dtype dtype; /* of the biases, the weights, and y unless y_f32 */
  int32_t y_f32;    /* y is fp32 (an inter-layer buffer) */
  int64_t N, H, T;
  int32_t reverse;
  const int32_t *len; /* [N] device lengths, or NULL: every row has T steps */
  const float *gi;    /* xproj: (t, n, c) at gi + t*gi_st + n*gi_sn + c */
  int64_t gi_st, gi_sn;
  const void *b_ih, *b_hh; /* NULL: no bias */
  int64_t bs_ih, bs_hh;
  void *y; /* this direction's first column: (t, n, j) */
  int64_t y_st, y_sn, y_sk;
} seqk_k_rnn_seq_params;
/* Step s of the per-step path: the gates from gh (= h W_hh^T, [N, G*H] fp32; NULL for a zero h),
   h and c ([N, H] fp32, c NULL unless LSTM) updated in place. */
cudaError_t seqk_k_rnn_step(const seqk_k_rnn_seq_params *a, const float *gh, float *h, float *c,
                            int64_t s, cudaStream_t stream);

/* The persistent kernel's launch shape (seqk_k_rnn_persistent_plan). */
typedef struct seqk_k_rnn_persist_cfg {
  int blocks, threads, units, ksplit;
  int rows; /* batch rows per dot-product item (1 or 2): each W element loaded once for them */
  int64_t ldw, ldh;
  size_t w_bytes, smem;
} seqk_k_rnn_persist_cfg;
/* Whether the persistent kernel serves a layer of this shape on a device with `sms` SMs,
   `smem_optin` bytes of opt-in shared memory per block and cooperative launch support, and its
   launch shape. It does for small batches (N <= 32, or any batch with any_batch set) whose W_hh
   slice per SM fits on chip. */
int seqk_k_rnn_persistent_plan(int32_t G, seqk_dtype dtype, int64_t N, int64_t H, int sms,
                               size_t smem_optin, int cooperative, int any_batch,
                               seqk_k_rnn_persist_cfg *cfg);
/* The whole recurrence of one layer-direction in one cooperative kernel: h ping-pongs between
   h0 (read at even steps) and h1; it ends in h0 + (steps & 1) * N * H. */
typedef struct seqk_k_rnn_persist_params {
  seqk_k_rnn_seq_params s;
  int64_t steps;
  const void *w_hh; /* [G*H, H] of s.dtype, any strides */
  int64_t w_rs, w_cs;
  float *h0, *h1;
  float *c; /* [N, H] or NULL */
} seqk_k_rnn_persist_params;
cudaError_t seqk_k_rnn_persistent(const seqk_k_rnn_persist_params *a,
                                  const seqk_k_rnn_persist_cfg *cfg, cudaStream_t stream);
/* dst[0..N) = host[0..N) with no host buffer outliving the call and no synchronisation: the
   values travel in the launches' parameters (256 per launch). */
/* dst[n] = lengths[n * stride] (device I32) clamped into [1, T], for n < N; a value outside
   recorded in *bad (the deferred-check encoding above, position n). */
cudaError_t seqk_k_rnn_device_lengths(int32_t *dst, const int32_t *lengths, int64_t stride,
                                      int64_t N, int64_t T, unsigned long long *bad,
                                      cudaStream_t stream);
cudaError_t seqk_k_rnn_store_lengths(int32_t *dst, const int32_t *host, int64_t N,
                                     cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_KERNELS_LAUNCHERS_H */
