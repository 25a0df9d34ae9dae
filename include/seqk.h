/*
 * seqk.h - the whole public surface of seqk, a C library of CUDA kernels for sequence models
 * (attention and recurrent cells), with a plain CPU reference for every op.
 *
 * Conventions
 *   - Every function that can fail returns seqk_status. The library never prints and never exits.
 *     seqk_context_last_error(ctx) gives the detail of the last failed call on that context.
 *   - On any error status no output tensor has been written: every argument is validated before
 *     anything is computed or launched.
 *   - All inputs and outputs of one op live on one device, and that device decides where the op
 *     runs: SEQK_DEVICE_CPU runs the CPU reference (double accumulation), SEQK_DEVICE_CUDA runs the
 *     CUDA kernels on the context's stream (asynchronously, like any CUDA launch).
 *   - Outputs have the inputs' dtype unless stated. Accumulation is at least fp32 (double on CPU).
 *   - Tensor strides are in elements and may be any non-negative values for inputs (a stride of 0
 *     broadcasts). An output must not have two elements at the same address, and must not overlap
 *     any input unless the op says it may alias one exactly (same data pointer and strides).
 *     Overlap means shared bytes of elements, not of bounding boxes: interleaved layouts (odd and
 *     even elements of one buffer, strides [2, 3] over [3, 2]) are accepted. It is decided exactly
 *     for tensors up to 2^20 elements together and for views interleaved on a common stride;
 *     larger layouts that are neither nested nor disjoint are rejected (conservatively).
 *   - A tensor with an extent of 0 is empty whatever its other extents and strides. Moving data
 *     of one dtype to the same dtype copies its bits (NaN payloads, -0).
 *   - An "optional" tensor argument is absent when the pointer is NULL or its data is NULL.
 *   - Destroying or freeing NULL is a no-op that returns SEQK_STATUS_SUCCESS.
 *   - A NULL context makes every op return SEQK_STATUS_INVALID_VALUE (no message can be stored).
 */
#ifndef SEQK_H
#define SEQK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(SEQK_BUILD_SHARED)
#define SEQK_API __declspec(dllexport)
#elif defined(__GNUC__)
#define SEQK_API __attribute__((visibility("default")))
#else
#define SEQK_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Version: compare SEQK_VERSION (the header you compiled against) with seqk_version() (the
 * library you linked) to catch a mismatch.
 * ------------------------------------------------------------------------------------------- */
#define SEQK_VERSION_MAJOR 0
#define SEQK_VERSION_MINOR 1
#define SEQK_VERSION_PATCH 0
#define SEQK_VERSION       (SEQK_VERSION_MAJOR * 10000 + SEQK_VERSION_MINOR * 100 + SEQK_VERSION_PATCH)

/* Returns SEQK_VERSION as the library was built. */
SEQK_API int seqk_version(void);

/* ---------------------------------------------------------------------------------------------
 * Status
 * ------------------------------------------------------------------------------------------- */
typedef enum seqk_status {
  SEQK_STATUS_SUCCESS = 0,
  SEQK_STATUS_INVALID_VALUE, /* bad shape, stride, dim, NULL, dtype or device mismatch */
  SEQK_STATUS_NOT_SUPPORTED, /* a valid request this build or device cannot serve */
  SEQK_STATUS_ALLOC_FAILED,
  SEQK_STATUS_NO_DEVICE,    /* a CUDA tensor was asked for and there is no usable device */
  SEQK_STATUS_DEVICE_ERROR, /* CUDA runtime or launch error */
  SEQK_STATUS_BLAS_ERROR,   /* cuBLAS error */
  SEQK_STATUS_INTERNAL_ERROR
} seqk_status;

/* A fixed, static text for the status ("invalid value", ...); "unknown status" for values
   outside the enum. Never NULL. */
SEQK_API const char *seqk_status_string(seqk_status status);

/* ---------------------------------------------------------------------------------------------
 * Context: owns the CUDA stream choice, the cuBLAS handle (created on first CUDA use), a growable
 * device workspace, the tensors allocated through it, and the last error message. Ops on one
 * context are ordered on its stream. A context is used by one host thread at a time.
 * ------------------------------------------------------------------------------------------- */
typedef struct seqk_context *seqk_context_t;

/* Creates a context in *ctx. Works with no GPU (CPU ops only); touches no CUDA state until a CUDA
   tensor or op is used. Errors: INVALID_VALUE if ctx is NULL, ALLOC_FAILED. */
SEQK_API seqk_status seqk_context_create(seqk_context_t *ctx);

/* Waits for the context's stream, frees the workspace, the cuBLAS handle and every tensor still
   allocated through seqk_tensor_alloc on this context, then the context itself. NULL: no-op. */
SEQK_API seqk_status seqk_context_destroy(seqk_context_t ctx);

/* Sets the cudaStream_t that later CUDA ops run on; NULL selects the legacy default stream.
   The stream stays owned by the caller. Errors: INVALID_VALUE if ctx is NULL. */
SEQK_API seqk_status seqk_context_set_stream(seqk_context_t ctx, void *cuda_stream);

/* The device workspace: the scratch memory CUDA ops take for their intermediates (unfused
   attention's scores, split-KV partials, staging of strided operands, RNN states). By default
   the context owns it and grows it when a call needs more, which waits for the stream and
   allocates: not what a captured or latency-bound step may do. So run one step first (outside
   any capture) and then either reserve what it needed or hand in memory of your own; a later call
   that needs no more than that neither waits nor allocates for scratch.
   seqk_context_workspace_needed: the most workspace any call on ctx has asked for (0 for NULL).
   seqk_context_reserve_workspace: grows the context's workspace to at least `bytes` now (waits
   for the stream once). With a caller's workspace set: SUCCESS when it has `bytes`, else
   ALLOC_FAILED.
   seqk_context_set_workspace: from now on the scratch is [device_ptr, device_ptr + bytes), owned
   by the caller (never freed or grown by seqk; keep it alive and unused by others while ctx may
   run on it); a call needing more fails with ALLOC_FAILED naming both sizes and writes nothing.
   device_ptr must be 256-byte aligned (cudaMalloc's is). NULL: back to a context-owned workspace,
   empty until a call grows it. Replacing a workspace waits for the stream once.
   Errors: INVALID_VALUE (NULL ctx, misaligned or host device_ptr, bytes 0 with a pointer),
   NO_DEVICE, ALLOC_FAILED, DEVICE_ERROR. */
SEQK_API size_t seqk_context_workspace_needed(seqk_context_t ctx);
SEQK_API seqk_status seqk_context_reserve_workspace(seqk_context_t ctx, size_t bytes);
SEQK_API seqk_status seqk_context_set_workspace(seqk_context_t ctx, void *device_ptr, size_t bytes);

/* Checks that depend on data living on the device (today: that seqk_embedding's CUDA indices lie
   inside the table) run in one of two modes, per context. */
typedef enum seqk_device_checks {
  /* The default: the call waits for its check (one host synchronisation) and returns the error
     itself, INVALID_VALUE naming the position, with nothing written. */
  SEQK_DEVICE_CHECKS_WAIT = 0,
  /* The call only enqueues (no host synchronisation: capturable in a CUDA graph). A bad index is
     never read through: its output row is written as zeros, and the first such error is kept on
     the device until seqk_context_check reports it. */
  SEQK_DEVICE_CHECKS_DEFERRED = 1
} seqk_device_checks;

/* Selects the mode of device-side checks for later calls on ctx. DEFERRED allocates a few bytes
   of device memory for the error record once (and waits for it to be cleared): set it before
   capturing. Errors: INVALID_VALUE (NULL ctx, unknown mode), NO_DEVICE (DEFERRED without a usable
   CUDA device), ALLOC_FAILED, DEVICE_ERROR. */
SEQK_API seqk_status seqk_context_set_device_checks(seqk_context_t ctx, seqk_device_checks mode);

/* Waits for ctx's stream, then reports and clears the first error that a DEFERRED check found
   since the last seqk_context_check: INVALID_VALUE with the op, position and value in the last
   error ("embedding: indices at row-major position 7 hold 50000, outside the table (found on the
   device after the call returned)"); DEVICE_ERROR when the stream failed; else SUCCESS (also
   when there is no CUDA device). The one op that synchronises by design (besides copies with a
   CPU side, seqk_tensor_alloc / seqk_tensor_free of CUDA tensors and context teardown, which say
   so). */
SEQK_API seqk_status seqk_context_check(seqk_context_t ctx);

/* Batch invariance: with on != 0, an attention call's result for one sequence (its rows of o and
   lse) is bit-identical whatever else is in the batch: the fused kernels then decide their key
   splits from one sequence's work (Sk, heads, query rows), never from B, so a request gives the
   same bits alone or batched with others (what reproducible serving and batch-size-independent
   evaluation need). The price: a large batch of short-query rows may get more splits than its
   grid needs (more partials to merge). The unfused path (head dims the fused kernels do not
   serve, attention weights) runs cuBLAS strided-batched GEMMs, whose per-matrix results do not
   depend on the batch count in cuBLAS's algorithms today but are not promised to. Default off.
   Errors: INVALID_VALUE (NULL ctx). */
SEQK_API seqk_status seqk_context_set_batch_invariant(seqk_context_t ctx, int32_t on);

/* The detail of the last failed call on ctx ("attention: q.shape[3]=96 but k.shape[3]=64"),
   or "" if no call has failed. A successful call does not clear it. The text stays valid until
   the next call on ctx. For a NULL ctx returns a fixed text saying so. Never NULL. */
SEQK_API const char *seqk_context_last_error(seqk_context_t ctx);

/* The number of usable CUDA devices; 0 when there is no GPU, no driver, or the library was built
   without CUDA. */
SEQK_API int32_t seqk_cuda_device_count(void);

/* ---------------------------------------------------------------------------------------------
 * Tensors: a plain descriptor (pointer, dtype, device, shape, strides). seqk never keeps a
 * pointer to a descriptor after a call returns.
 * ------------------------------------------------------------------------------------------- */
typedef enum seqk_dtype {
  SEQK_DTYPE_F32,
  SEQK_DTYPE_F16,
  SEQK_DTYPE_BF16,
  SEQK_DTYPE_I32
} seqk_dtype;
typedef enum seqk_device { SEQK_DEVICE_CPU, SEQK_DEVICE_CUDA } seqk_device;
#define SEQK_MAX_DIMS 6
typedef struct seqk_tensor {
  void *data; /* first element; owned by whoever allocated it */
  seqk_dtype dtype;
  seqk_device device;
  int32_t ndim;                  /* 0..SEQK_MAX_DIMS; 0 is a scalar */
  int64_t shape[SEQK_MAX_DIMS];  /* each >= 0 */
  int64_t stride[SEQK_MAX_DIMS]; /* in elements, not bytes; any non-negative values */
} seqk_tensor;

/* Size in bytes of one element of dtype (4, 2, 2, 4); 0 for an unknown dtype. */
SEQK_API size_t seqk_dtype_size(seqk_dtype dtype);

/* A contiguous row-major descriptor of caller-owned memory. Nothing is allocated or checked here;
   ops check the descriptor when it is used (an ndim outside 0..SEQK_MAX_DIMS or a NULL shape with
   ndim > 0 gives a descriptor with ndim = -1 that every op rejects). */
SEQK_API seqk_tensor seqk_tensor_view(void *data, seqk_dtype dtype, seqk_device device,
                                      int32_t ndim, const int64_t *shape);

/* A descriptor of caller-owned memory with the given strides (in elements): transposes, slices
   and [B,S,H,D] buffers seen as [B,H,S,D] without copying. Like seqk_tensor_view, nothing is
   checked here; a NULL stride with ndim > 0 gives ndim = -1. */
SEQK_API seqk_tensor seqk_tensor_view_strided(void *data, seqk_dtype dtype, seqk_device device,
                                              int32_t ndim, const int64_t *shape,
                                              const int64_t *stride);

/* Allocates a contiguous tensor (uninitialised contents) on the CPU (malloc) or the current CUDA
   device (cudaMalloc), recorded in ctx so that seqk_tensor_free and seqk_context_destroy can
   release it. A tensor with zero elements gets data == NULL. *out is written only on success.
   cudaMalloc may synchronise the device and cannot be captured in a CUDA graph: allocate at
   setup, outside decode loops (ops take caller-owned memory through seqk_tensor_view).
   Errors: INVALID_VALUE (NULL ctx/out/shape, bad ndim, dtype, device or negative extent),
   NO_DEVICE (CUDA asked for and none usable), ALLOC_FAILED. */
SEQK_API seqk_status seqk_tensor_alloc(seqk_context_t ctx, seqk_tensor *out, seqk_dtype dtype,
                                       seqk_device device, int32_t ndim, const int64_t *shape);

/* Releases a tensor made by seqk_tensor_alloc on this ctx and zeroes *t. t == NULL or t->data
   == NULL: no-op. A CUDA tensor synchronises: the call waits for ctx's stream (work enqueued
   on it that reads or writes the tensor finishes first), then cudaFree; free at teardown, not
   inside decode loops or captured regions. Errors: INVALID_VALUE if t->data was not allocated
   through this ctx (nothing is freed then). */
SEQK_API seqk_status seqk_tensor_free(seqk_context_t ctx, seqk_tensor *t);

/* dst = src, element by element, for the same shape: between any devices (CPU<->CUDA, CUDA<->CUDA,
   CPU<->CPU), any strides on either side, converting between F32, F16 and BF16 (round to nearest
   even). I32 copies only to I32. dst must not overlap src. CUDA -> CUDA is enqueued on the
   context's stream like every op and the call returns without waiting (capturable in a CUDA
   graph). A copy with a CPU side is complete when the call returns (the stream is synchronised
   once), so the host memory may be reused at once. Only the elements of a strided CUDA view are
   read or written: the memory between them is never touched (a strided side goes through the
   context's workspace, which may grow).
   Errors: INVALID_VALUE (NULL, shape or dtype mismatch, overlapping dst), NO_DEVICE,
   DEVICE_ERROR, ALLOC_FAILED (staging memory). */
SEQK_API seqk_status seqk_tensor_copy(seqk_context_t ctx, seqk_tensor *dst, const seqk_tensor *src);

/* ---------------------------------------------------------------------------------------------
 * Attention building blocks (the unfused path, as in the seeds).
 * Float ops take F32, F16 or BF16; every float tensor of one op has the same dtype unless stated.
 * ------------------------------------------------------------------------------------------- */

/* y = softmax(x) along dim, like torch.softmax(x, dim): y = exp(x - max) / sum(exp(x - max)).
   x: any shape with ndim >= 1; y: same shape and dtype. dim in [-ndim, ndim), negative counts from
   the end. y may alias x exactly (in place). A slice that is all -inf, or holds +inf or NaN,
   gives NaN, as in torch.
   Errors: INVALID_VALUE (NULL, dim out of range, shape/dtype/device mismatch, overlap). */
SEQK_API seqk_status seqk_softmax(seqk_context_t ctx, const seqk_tensor *x, int32_t dim,
                                  seqk_tensor *y);

/* split: x [B, S, H*D] -> y [B, H, S, D], i.e. x.view(B, S, H, D).transpose(1, 2) made
   contiguous (y may have any strides). num_heads = H must divide x.shape[2].
   merge: x [B, H, S, D] -> y [B, S, H*D], the inverse. y must not overlap x. */
SEQK_API seqk_status seqk_split_heads(seqk_context_t ctx, const seqk_tensor *x, int32_t num_heads,
                                      seqk_tensor *y);
SEQK_API seqk_status seqk_merge_heads(seqk_context_t ctx, const seqk_tensor *x, seqk_tensor *y);

/* s[b,h,i,j] = scale * <q[b,h,i,:], k[b,h/(H/Hk),j,:]>.
   q [B,H,Sq,D], k [B,Hk,Sk,D], s [B,H,Sq,Sk], same dtype; H % Hk == 0 (grouped-query attention:
   query head h reads key head h / (H/Hk)). scale == 0 means 1/sqrt(D); any other finite value is
   used as given (negative too). causal != 0 masks key j for query i when j > i + (Sk - Sq)
   (aligned bottom-right): masked entries are -inf. Sq or Sk may be 0; D == 0 gives scores of
   0 (-inf where masked). */
SEQK_API seqk_status seqk_attention_scores(seqk_context_t ctx, const seqk_tensor *q,
                                           const seqk_tensor *k, float scale, int32_t causal,
                                           seqk_tensor *s);

/* o[b,h,i,:] = sum_j p[b,h,i,j] * v[b,h/(H/Hk),j,:].
   p [B,H,Sq,Sk], v [B,Hk,Sk,Dv], o [B,H,Sq,Dv], same dtype; H % Hk == 0. Sk == 0 gives o = 0. */
SEQK_API seqk_status seqk_attention_values(seqk_context_t ctx, const seqk_tensor *p,
                                           const seqk_tensor *v, seqk_tensor *o);

/* ---------------------------------------------------------------------------------------------
 * Attention
 * ------------------------------------------------------------------------------------------- */
typedef enum seqk_attention_algo {
  SEQK_ATTENTION_ALGO_AUTO,   /* the fastest correct kernel for the shape */
  SEQK_ATTENTION_ALGO_FUSED,  /* one pass, no Sq x Sk matrix in memory (flash attention) */
  SEQK_ATTENTION_ALGO_UNFUSED /* cuBLAS QK^T, softmax kernel, cuBLAS PV: the comparison path */
} seqk_attention_algo;

typedef struct seqk_attention_params {
  float scale;              /* 0 means 1/sqrt(D) */
  int32_t causal;           /* query i sees keys j <= i + (Sk - Sq): aligned bottom-right */
  seqk_attention_algo algo; /* ignored on the CPU, where the reference always runs */
  const int32_t *seqlens_q; /* optional [B] on the op's device: valid query rows per batch */
  const int32_t *seqlens_k; /* optional [B]: valid keys per batch (padding beyond is ignored);
                               for CUDA tensors device-readable memory (device, managed or
                               pinned): a plain host array is INVALID_VALUE */
  /* Sliding window (window != 0): query i sees keys j with
     i + off - window_left <= j <= i + off + window_right, off = Sk_b - Sq_b (aligned
     bottom-right, as causal); a negative extent is unbounded on that side. With causal the right
     extent is 0. FlashAttention's window_size = (window_left, window_right); a causal window of W
     keys, the query's own included, is window_left = W - 1. */
  int32_t window, window_left, window_right;
  float softcap; /* > 0: each scaled score s becomes softcap * tanh(s / softcap) before the
                    mask (Gemma 2, Grok); 0: none */
  /* ALiBi (BLOOM, MPT): optional F32 [H], one slope per query head, on the op's device (for
     CUDA tensors device-readable memory: a plain host array is INVALID_VALUE). Query i's score
     for key j gets - alibi_slopes[h] * |i + off - j| (off as the window's) added after the scale
     and the softcap, before the mask; lse includes it. Under causal masking this is
     FlashAttention's alibi_slopes up to a constant per row (the same o; lse differs by that
     constant), and without it exactly FlashAttention's.
     On the CPU each slope must be finite (CUDA cannot check: its rows are then undefined). NULL:
     none. */
  const float *alibi_slopes;
} seqk_attention_params;

/* o = softmax(scale * q k^T + mask) v, per batch b and query head h, with key/value head
   h / (H/Hk).
   q [B,H,Sq,D], k [B,Hk,Sk,D], v [B,Hk,Sk,Dv], o [B,H,Sq,Dv], same dtype; H % Hk == 0; any strides
   with the last dim contiguous (stride 1), so a [B,S,H,D] buffer is passed as a strided view.
   params: NULL means all defaults (scale 1/sqrt(D), not causal, AUTO, no lengths, no window,
   no softcap, no ALiBi); softcap must be finite and >= 0.
   seqlens_q[b] in [0, Sq] and seqlens_k[b] in [0, Sk] when given. On the CPU they are checked;
   on CUDA they are read by the kernels, so only their kind of memory can be checked (host memory
   is rejected): each value is clamped to [0, S] there, and an array shorter than B is the
   caller's error (a GPU faults, and the context's stream reports it). With lengths, batch b behaves as a
   sequence of Sq_b = seqlens_q[b] queries and Sk_b = seqlens_k[b] keys, causal alignment
   included (query i sees keys j <= i + Sk_b - Sq_b); rows i >= Sq_b of o are written as 0 and
   their lse as +inf.
   lse: optional F32 [B,H,Sq], the natural-log logsumexp of each scaled, masked score row.
   A row with no visible key (Sk_b == 0, or a right extent that ends before key 0: causal with
   Sk_b < Sq_b) has o = 0 and lse = +inf. lse is taken over the scores after the softcap.
   Non-finite values, one rule on every path (CPU, UNFUSED, FUSED, split-KV decode):
   - a key a row does not see (masked by causality, or past seqlens_k) contributes nothing to
     that row: whatever its k and v hold (NaN, inf) does not reach it;
   - a NaN in q, or in the k of a key the row sees, makes the row's o and lse NaN; a NaN in the
     v of a key the row sees makes that column of o NaN (v does not enter lse), and an inf there
     follows IEEE arithmetic (inf, or NaN when it meets another infinity or a zero weight);
   - a scaled score of +inf, or visible scores that are all -inf, leave the softmax undefined:
     o and lse are NaN, never the "no visible key" 0 / +inf. The CUDA paths compute q.k in fp32,
     so |q.k| past 3.4e38 overflows there (the CPU reference works in double and does not).
   o must not overlap q, k, v or lse. */
SEQK_API seqk_status seqk_attention(seqk_context_t ctx, const seqk_attention_params *params,
                                    const seqk_tensor *q, const seqk_tensor *k,
                                    const seqk_tensor *v, seqk_tensor *o, seqk_tensor *lse);

/* seqk_attention over packed variable-length sequences (FlashAttention's varlen layout): B
   sequences laid end to end, no padding.
   q [Tq, H, D], k [Tk, Hk, D], v [Tk, Hk, Dv], o [Tq, H, Dv], same dtype, H % Hk == 0, any
   strides with the last dim contiguous (a fused QKV projection's output as views); lse: optional
   F32 [H, Tq]. cu_seqlens_q, cu_seqlens_k: I32 [B + 1] on q's device, cumulative offsets:
   sequence b's queries are rows cu_seqlens_q[b] .. cu_seqlens_q[b + 1] - 1 of q and o, its keys
   rows cu_seqlens_k[b] .. cu_seqlens_k[b + 1] - 1 of k and v; required
   0 <= cu[0] <= cu[1] <= ... <= cu[B] <= T (Tq or Tk). Each sequence is one seqk_attention
   batch of Sq_b queries and Sk_b keys (causal and windows aligned bottom-right per sequence;
   Sk_b == 0: o = 0, lse = +inf). Rows of o and lse outside every sequence are not written.
   max_seqlen_q, max_seqlen_k: bounds on every Sq_b and Sk_b, 0 meaning Tq and Tk; they size the
   launch (one row tile per max_seqlen_q rows of each sequence): tight bounds are faster, loose
   ones only waste blocks. params as seqk_attention's (NULL: defaults) with seqlens_q and
   seqlens_k NULL.
   Offsets are validated: on the CPU before anything is written; on CUDA by a check kernel (the
   context's device-check mode: waiting, the call fails naming the sequence and writes nothing;
   deferred, a bad sequence's rows are not written and seqk_context_check reports it). A sequence
   is bad when its offsets are out of order, outside [0, T], or its length passes the bound.
   CUDA: the fused kernels only (head dims up to 256; no split-KV); UNFUSED, or a shape they do
   not serve, is NOT_SUPPORTED. No host round trip with deferred checks (capturable). A
   sequence's rows are bit-identical whatever the other sequences and the bounds are.
   Errors: INVALID_VALUE, NOT_SUPPORTED, NO_DEVICE, ALLOC_FAILED, DEVICE_ERROR. */
SEQK_API seqk_status seqk_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                           const seqk_tensor *q, const seqk_tensor *k,
                                           const seqk_tensor *v, const seqk_tensor *cu_seqlens_q,
                                           const seqk_tensor *cu_seqlens_k, int32_t max_seqlen_q,
                                           int32_t max_seqlen_k, seqk_tensor *o, seqk_tensor *lse);

/* Combines two attention results over disjoint key sets into the result over their union
   (split-KV decode, ring attention): o = (e^lse_a o_a + e^lse_b o_b) / (e^lse_a + e^lse_b),
   lse = log(e^lse_a + e^lse_b), computed stably.
   o_a, o_b, o: same shape [..., Dv] (ndim 1..6) and dtype; lse_a, lse_b: F32 with o's shape
   without its last dim; lse: optional F32 output of that shape. An lse of +inf or -inf marks a
   part with no visible key, which contributes nothing (its o is not read); if both parts are
   empty, o = 0 and lse = +inf. A NaN lse gives NaN in that row's o and lse, also when the
   other part is empty. (seqk_attention's lse follows the same convention, so its results merge
   as they are.) o may alias o_a or o_b exactly and lse may alias lse_a or lse_b exactly. */
SEQK_API seqk_status seqk_attention_merge(seqk_context_t ctx, const seqk_tensor *o_a,
                                          const seqk_tensor *lse_a, const seqk_tensor *o_b,
                                          const seqk_tensor *lse_b, seqk_tensor *o,
                                          seqk_tensor *lse);

/* ---------------------------------------------------------------------------------------------
 * Key/value caches for decoding
 * ------------------------------------------------------------------------------------------- */

/* A key/value cache of B sequences.
   Contiguous (page_table.data NULL): k [B, S_max, Hk, D] and v [B, S_max, Hk, Dv], any strides
   (a [B, Hk, S_max, D] buffer is passed as a strided view): position t of sequence b is
   k[b, t]. Capacity S_max.
   Paged (page_table an I32 [B, max_pages] tensor on the cache's device): k [num_pages,
   page_size, Hk, D] and v [num_pages, page_size, Hk, Dv], any strides, page_size >= 1: position
   t of sequence b is row t % page_size of page page_table[b, t / page_size]. Capacity
   max_pages * page_size; a page id outside [0, num_pages) is an error where it is used.
   Appends: seqk_kv_cache_append(_rotary); attention: seqk_attention_kv_cache. */
typedef struct seqk_kv_cache {
  seqk_tensor k, v;
  seqk_tensor page_table; /* data NULL: contiguous */
} seqk_kv_cache;

/* Appends S_new tokens to each sequence: k_new [B, S_new, Hk, D] and v_new [B, S_new, Hk, Dv]
   (the cache's dtype, any strides: e.g. views into a fused QKV projection's output) go to
   positions cache_seqlens[b] .. cache_seqlens[b] + S_new - 1 of sequence b. cache_seqlens: I32
   [B] on the cache's device. With advance != 0, cache_seqlens[b] += S_new afterwards, on the
   device for CUDA tensors (so a captured decode step appends at the right place every replay).
   CUDA tensors: enqueued on the context's stream without a host round trip.
   A sequence whose new positions do not fit (cache_seqlens[b] < 0, or past the capacity, or a
   page id out of range) is an error: on the CPU, and on CUDA with waiting device checks (the
   default; seqk_context_set_device_checks), the call fails naming the sequence and writes
   nothing; with deferred checks nothing of that sequence is written (nor advanced) and
   seqk_context_check reports it. Errors: INVALID_VALUE (shapes, dtypes, devices, overlapping
   outputs, values), NO_DEVICE, DEVICE_ERROR. */
SEQK_API seqk_status seqk_kv_cache_append(seqk_context_t ctx, const seqk_kv_cache *cache,
                                          seqk_tensor *cache_seqlens, int32_t advance,
                                          const seqk_tensor *k_new, const seqk_tensor *v_new);

/* seqk_attention over a cache: o = attention(q, keys and values 0 .. cache_seqlens[b] - 1 of
   sequence b), contiguous or paged, fused kernels reading the pages in place.
   q [B, H, Sq, D] (a [B, Sq, H, D] buffer as a strided view), o [B, H, Sq, Dv], lse optional F32
   [B, H, Sq]; the cache's k [., ., Hk, D] and v [., ., Hk, Dv] with H % Hk == 0; q, o and the
   cache in one dtype, last dims contiguous. cache_seqlens: I32 [B] on the cache's device, the
   keys of each sequence (after this step's append). params as seqk_attention's (NULL: defaults)
   with seqlens_k NULL (cache_seqlens takes its place); seqlens_q optional. Causal aligns
   bottom-right: the Sq (or seqlens_q[b]) queries are the last positions of sequence b, which is
   decode (Sq = 1) and chunked prefill (append the chunk, then attend with causal = 1).
   A sequence whose length is outside [0, capacity], or which has a page id outside
   [0, num_pages) among its first ceil(cache_seqlens[b] / page_size) pages, is an error: on the
   CPU and with waiting device checks (the default) the call fails naming it and writes nothing;
   with deferred checks its rows are written as seeing no key (o = 0, lse = +inf) and
   seqk_context_check reports it. No page is read past a sequence's length.
   CUDA: one check kernel over the lengths and page ids, then the fused kernels (split-KV when
   the batch leaves SMs idle), reading K and V rows through the page table; no host round trip
   with deferred checks. UNFUSED, or a shape the fused kernels do not serve, gathers a paged cache
   into workspace (B x Hk x capacity rows) first. Errors: INVALID_VALUE, NOT_SUPPORTED (FUSED
   refused), NO_DEVICE, ALLOC_FAILED, DEVICE_ERROR. */
SEQK_API seqk_status seqk_attention_kv_cache(seqk_context_t ctx,
                                             const seqk_attention_params *params,
                                             const seqk_tensor *q, const seqk_kv_cache *cache,
                                             const seqk_tensor *cache_seqlens, seqk_tensor *o,
                                             seqk_tensor *lse);

/* ---------------------------------------------------------------------------------------------
 * Layers built on them
 * ------------------------------------------------------------------------------------------- */

/* y = x W^T + b over the last dim, like torch.nn.functional.linear.
   x [..., In] (ndim 1..6), w [Out, In], b optional [Out], y [..., Out] (x's leading dims).
   y must not overlap x, w or b. */
SEQK_API seqk_status seqk_linear(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                                 const seqk_tensor *b, seqk_tensor *y);

/* torch.nn.MultiheadAttention(E, num_heads, batch_first=True) forward, weights in its layout:
   in_proj_weight [3E,E] (rows: q, k, v projections), in_proj_bias [3E], out_proj_weight [E,E],
   out_proj_bias [E] (biases optional: data == NULL). query [B,Sq,E], key/value [B,Sk,E],
   out [B,Sq,E]; E = query.shape[2] >= 1, num_heads >= 1 divides E; each head uses scale
   1/sqrt(E/num_heads).
   causal != 0 applies the causal mask of seqk_attention (aligned bottom-right; for Sq == Sk this
   is torch's is_causal / triangular attn_mask). A query row that sees no key (causal with
   Sk < Sq, or Sk == 0) gets out = out_proj_bias and an all-zero attn_weights row (torch gives
   NaN there).
   attn_weights: optional [B,Sq,Sk], the softmax probabilities averaged over heads, as torch
   returns them with need_weights=True, average_attn_weights=True.
   CUDA may use the context's workspace for intermediates. out and attn_weights must not overlap
   any input or each other. */
typedef struct seqk_mha_weights {
  seqk_tensor in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias;
} seqk_mha_weights;
SEQK_API seqk_status seqk_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                      int32_t num_heads, int32_t causal, const seqk_tensor *query,
                                      const seqk_tensor *key, const seqk_tensor *value,
                                      seqk_tensor *out, seqk_tensor *attn_weights);

/* The rest of nn.MultiheadAttention's forward options, for seqk_mha_forward_ex:
   batch_first  1: query/key/value/out are [B,S,E] (as seqk_mha_forward); 0: [S,B,E], torch's
                default (attn_weights are batch-first either way, as in torch).
   average_attn_weights  1: attn_weights [B,Sq,Sk], the mean over heads; 0: [B,H,Sq,Sk], each
                head's probabilities (torch's average_attn_weights=False).
   key_lengths  optional I32 [B] on the op's device: the keys j >= key_lengths[b] are padding
                (values clamped into [0, Sk]; read on the device, so capturable). A query row left
                with no key gets out = out_proj_bias and all-zero weights, as for causal rows.
                With causal, the mask is aligned bottom-right against key_lengths[b].
   key_padding_mask  optional I32 [B,Sk] on the op's device: nonzero marks a padding key, torch's
                boolean key_padding_mask. A row whose keys are all masked this way gets NaN in out
                and its weights, as torch gives. Padding keys take no part, but their value rows
                are still multiplied by 0: keep them finite (a projection of finite input is).
                Forces the unfused (cuBLAS + softmax) path on CUDA; key_lengths does not. */
typedef struct seqk_mha_options {
  int32_t num_heads; /* >= 1, divides E */
  int32_t causal;
  int32_t batch_first;
  int32_t average_attn_weights;
  seqk_tensor key_lengths;      /* absent: data NULL */
  seqk_tensor key_padding_mask; /* absent: data NULL */
} seqk_mha_options;
/* seqk_mha_forward with the options above; seqk_mha_forward(ctx, w, H, causal, ...) is this with
   {H, causal, 1, 1, absent, absent}. */
SEQK_API seqk_status seqk_mha_forward_ex(seqk_context_t ctx, const seqk_mha_weights *w,
                                         const seqk_mha_options *options, const seqk_tensor *query,
                                         const seqk_tensor *key, const seqk_tensor *value,
                                         seqk_tensor *out, seqk_tensor *attn_weights);

/* out[n..., :] = table[indices[n...], :], like torch.nn.functional.embedding.
   indices: I32, any shape with ndim 0..5; table [V, E] float; out: indices.shape + [E], table's
   dtype. An index outside [0, V) is an error (INVALID_VALUE naming the position), never clamped
   and never read; on the CPU it is found before anything is written. */
SEQK_API seqk_status seqk_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                    const seqk_tensor *table, seqk_tensor *out);

/* ---------------------------------------------------------------------------------------------
 * Transformer blocks: norms, activations, rotary embeddings. CUDA computes in fp32 (statistics,
 * angles, activation functions), the CPU reference in double; each output is rounded once to its
 * dtype. All float tensors of one call share one dtype and one device.
 * ------------------------------------------------------------------------------------------- */

/* Normalisation over the last dim of x [..., C] (ndim 1..6, any strides):
     layer_norm: y = (h - mean(h)) / sqrt(var(h) + eps) * weight + bias  (biased var, as
                 torch.nn.functional.layer_norm(x, (C,), weight, bias, eps))
     rms_norm:   y = h / sqrt(mean(h^2) + eps) * weight  (torch.nn.functional.rms_norm, HF's
                 LlamaRMSNorm up to its intermediate rounding)
   where h = x, or with residual given h = x + residual rounded to x's dtype: a pre-norm block's
   residual stream. residual_out, when given, receives h, so y is exactly what the norm of
   residual_out alone would give (each of the two is optional on its own).
   weight, bias: optional [C] (absent: 1 and 0). residual, residual_out: optional, x's shape.
   eps: finite and > 0. y: x's shape.
   y may alias x exactly, residual_out may alias residual or x exactly (in place, like vLLM's
   fused_add_rms_norm: residual_out = residual, y = x); y and residual_out must not overlap each
   other or any other argument. A row of any length runs on CUDA (rows longer than one block
   holds on chip are read three times). */
SEQK_API seqk_status seqk_layer_norm(seqk_context_t ctx, const seqk_tensor *x,
                                     const seqk_tensor *residual, const seqk_tensor *weight,
                                     const seqk_tensor *bias, float eps, seqk_tensor *y,
                                     seqk_tensor *residual_out);
SEQK_API seqk_status seqk_rms_norm(seqk_context_t ctx, const seqk_tensor *x,
                                   const seqk_tensor *residual, const seqk_tensor *weight,
                                   float eps, seqk_tensor *y, seqk_tensor *residual_out);

/* Pointwise activations, as torch.nn.functional computes them:
     RELU       max(x, 0) (NaN stays NaN)
     GELU       x/2 * (1 + erf(x / sqrt(2)))                        gelu(x)
     GELU_TANH  x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))   gelu(x, approximate='tanh')
     SILU       x / (1 + exp(-x))                                   silu(x), a.k.a. swish
     NONE       x (identity: a plain copy here, "no activation" in the fused epilogues) */
typedef enum seqk_activation {
  SEQK_ACTIVATION_NONE,
  SEQK_ACTIVATION_RELU,
  SEQK_ACTIVATION_GELU,
  SEQK_ACTIVATION_GELU_TANH,
  SEQK_ACTIVATION_SILU
} seqk_activation;

/* y = act(x), element by element; x any shape (ndim 0..6) and strides, y the same shape.
   y may alias x exactly (in place). */
SEQK_API seqk_status seqk_activate(seqk_context_t ctx, seqk_activation act, const seqk_tensor *x,
                                   seqk_tensor *y);

/* Gated linear units: y = act(gate) * up, element by element (SwiGLU: act = SILU, GeGLU: GELU
   or GELU_TANH, the bilinear GLU: NONE). gate, up and y have one shape. One projection that
   produces both halves [..., 2F] is passed as two views of it, which fixes the order:
     vLLM / FlashInfer / HF Phi-3 (gate first): gate = x[..., :F], up = x[..., F:]
     diffusers GEGLU (hidden first):            gate = x[..., F:], up = x[..., :F]
   and LLaMA's separate gate_proj / up_proj outputs are passed as they are. y may alias gate or up
   exactly; the inputs may overlap each other. */
SEQK_API seqk_status seqk_gated_activate(seqk_context_t ctx, seqk_activation act,
                                         const seqk_tensor *gate, const seqk_tensor *up,
                                         seqk_tensor *y);

/* seqk_linear with a fused epilogue: y = act(x W^T + b) + residual, the MLP and output
   projections of a transformer block (act NONE: no activation; residual optional, y's shape,
   any strides). y may alias residual exactly: the residual stream updated in place; no other
   overlap. On CUDA, without an activation the residual (and bias) are the GEMM's addend
   (beta = 1: no pass over y besides the GEMM's; none at all in place without a bias); with one,
   a single pass after the GEMM applies it and adds the residual.
   seqk_linear(ctx, x, w, b, y) is seqk_linear_ex(ctx, x, w, b, SEQK_ACTIVATION_NONE, NULL, y). */
SEQK_API seqk_status seqk_linear_ex(seqk_context_t ctx, const seqk_tensor *x, const seqk_tensor *w,
                                    const seqk_tensor *b, seqk_activation act,
                                    const seqk_tensor *residual, seqk_tensor *y);

/* torch.nn.TransformerEncoderLayer forward in eval mode (dropout off), weights under its
   state_dict names. E = d_model, F = dim_feedforward:
     self_attn.in_proj_weight [3E,E], self_attn.in_proj_bias [3E], self_attn.out_proj.weight
     [E,E], self_attn.out_proj.bias [E]; linear1.weight [F,E], linear1.bias [F]; linear2.weight
     [E,F], linear2.bias [E]; norm1.weight, norm1.bias, norm2.weight, norm2.bias [E].
   Every bias and norm parameter is optional (bias=False checkpoints); the four matrices are not.
     norm_first = 0:  x = norm1(x + sa(x));  x = norm2(x + ff(x))
     norm_first = 1:  x = x + sa(norm1(x));  x = x + ff(norm2(x))
   sa = seqk_mha_forward_ex's self-attention (nhead heads, causal, key_lengths /
   key_padding_mask as there: torch's is_causal / src_key_padding_mask), ff(x) =
   linear2(activation(linear1(x))), the norms layer norms with layer_norm_eps.
   src and out: [B,S,E] with batch_first, else [S,B,E]; out must not overlap anything. Every
   intermediate is stored in src's dtype (as torch does in that dtype). Padding positions are
   computed like the others (torch's nested-tensor fast path of nn.TransformerEncoder writes 0
   there instead). On CUDA the steps run on the context's stream from one workspace arena, with
   no host round trip: the residual adds ride on the out-projection and linear2 GEMMs (beta = 1),
   the activation on linear1's epilogue, and post-norm layer norms run in place. */
typedef struct seqk_encoder_layer_weights {
  seqk_mha_weights self_attn;
  seqk_tensor linear1_weight, linear1_bias;
  seqk_tensor linear2_weight, linear2_bias;
  seqk_tensor norm1_weight, norm1_bias, norm2_weight, norm2_bias;
} seqk_encoder_layer_weights;
typedef struct seqk_encoder_layer_desc {
  int32_t nhead;              /* >= 1, divides E */
  seqk_activation activation; /* torch's "relu" = RELU, "gelu" = GELU (any seqk_activation) */
  float layer_norm_eps;       /* finite, > 0 (torch's default 1e-5) */
  int32_t batch_first, norm_first, causal;
  seqk_tensor key_lengths;      /* optional I32 [B] (data NULL: absent) */
  seqk_tensor key_padding_mask; /* optional I32 [B,S], nonzero = padding */
} seqk_encoder_layer_desc;
SEQK_API seqk_status seqk_transformer_encoder_layer_forward(seqk_context_t ctx,
                                                            const seqk_encoder_layer_desc *desc,
                                                            const seqk_encoder_layer_weights *w,
                                                            const seqk_tensor *src,
                                                            seqk_tensor *out);

/* Rotary position embeddings (RoPE), in place on q [B,S,H,D] and optionally k [B,S,Hk,D] (any
   strides; Hk may differ from H). Each head vector's first rotary_dim elements are rotated in
   pairs, pair i (0 <= i < rotary_dim/2) by the angle pos * inv_freq_i with
     inv_freq_i = theta^(-2i / rotary_dim)   (computed in double, rounded to fp32)
     angle      = fp32(pos) * inv_freq_i     (an fp32 product, as HF/torch form it)
   and (a, b) -> (a cos - b sin, b cos + a sin) from sin/cos of that fp32 angle. The pairs:
     NEOX (HF LLaMA, GPT-NeoX "rotate_half"): elements (i, i + rotary_dim/2)
     GPTJ (GPT-J, Meta's LLaMA reference, interleaved): elements (2i, 2i + 1)
   Elements at rotary_dim and past it are untouched. positions: optional I32 [B,S] on q's device
   (decode steps, padded or packed batches: any values, negative included); absent, position =
   s. rotary_dim: even, 2 <= rotary_dim <= D, or 0 for D (then D must be even). theta: finite,
   > 0 (10000 in most checkpoints). q and k must not overlap each other or positions. */
typedef enum seqk_rotary_layout { SEQK_ROTARY_NEOX, SEQK_ROTARY_GPTJ } seqk_rotary_layout;
typedef struct seqk_rotary_params {
  seqk_rotary_layout layout;
  int32_t rotary_dim;
  float theta;
} seqk_rotary_params;
SEQK_API seqk_status seqk_rotary(seqk_context_t ctx, const seqk_rotary_params *params,
                                 const seqk_tensor *positions, seqk_tensor *q, seqk_tensor *k);

/* seqk_kv_cache_append with rotary embeddings applied on the way in, at each new token's cache
   position (token s of sequence b sits at cache_seqlens[b] + s, read on the device: a decode
   step needs no host positions): the keys stored in the cache are k_new rotated by seqk_rotary's
   rule (k_new itself is not changed), and q, when given ([B,S_new,H,D], any strides and head
   count, k_new's dtype, device and D), is rotated in place at the same positions in the same
   launch. A sequence that does not fit (deferred checks) has neither its keys written nor its q
   rows rotated; with waiting checks nothing is. rope: as for seqk_rotary, rotary_dim <= D.
   q must not overlap any other argument. */
SEQK_API seqk_status seqk_kv_cache_append_rotary(seqk_context_t ctx, const seqk_kv_cache *cache,
                                                 seqk_tensor *cache_seqlens, int32_t advance,
                                                 const seqk_tensor *k_new, const seqk_tensor *v_new,
                                                 const seqk_rotary_params *rope, seqk_tensor *q);

/* ---------------------------------------------------------------------------------------------
 * Recurrent cells and layers: PyTorch's equations and weight layout exactly.
 *   RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.
 *   LSTM (weight rows i, f, g, o): i = sigmoid, f = sigmoid, g = tanh, o = sigmoid of the
 *         chunks of (W_ih x + b_ih + W_hh h + b_hh); c' = f*c + i*g; h' = o*tanh(c').
 *   GRU  (weight rows r, z, n): r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),
 *         z = sigmoid(W_iz x + b_iz + W_hz h + b_hz), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
 *         h' = (1 - z)*n + z*h. b_hn sits inside r*(.).
 * ------------------------------------------------------------------------------------------- */
typedef enum seqk_rnn_mode {
  SEQK_RNN_MODE_TANH,
  SEQK_RNN_MODE_RELU,
  SEQK_RNN_MODE_LSTM,
  SEQK_RNN_MODE_GRU
} seqk_rnn_mode;

/* One step, like nn.RNNCell / nn.LSTMCell / nn.GRUCell. G = 1 (RNN), 4 (LSTM), 3 (GRU).
   x [N,I]; h optional [N,H] (absent: zeros); c optional [N,H] for LSTM (absent: zeros), must be
   absent for the other modes; w_ih [G*H,I], w_hh [G*H,H]; b_ih, b_hh optional [G*H].
   h_out [N,H]; c_out [N,H] required for LSTM, must be absent otherwise.
   h_out may alias h exactly and c_out may alias c exactly (in-place update); no other overlap. */
SEQK_API seqk_status seqk_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                                   const seqk_tensor *h, const seqk_tensor *c,
                                   const seqk_tensor *w_ih, const seqk_tensor *w_hh,
                                   const seqk_tensor *b_ih, const seqk_tensor *b_hh,
                                   seqk_tensor *h_out, seqk_tensor *c_out);

typedef struct seqk_rnn_desc {
  seqk_rnn_mode mode;
  int32_t input_size, hidden_size, num_layers; /* each >= 1 */
  int32_t bidirectional; /* 0 or 1: outputs concatenated [forward, reverse] on the feature dim */
  int32_t batch_first;   /* 0 or 1: x/y are [N,T,*] instead of [T,N,*]; h0/hn never change */
} seqk_rnn_desc;

/* Parameters in nn.RNN/LSTM/GRU order: entry l*D + d for layer l, direction d (D = 2 if
   bidirectional): weight_ih_l{l}[_reverse] [G*H, I_l] (I_0 = input_size, I_l = D*H after),
   weight_hh_... [G*H, H], bias_ih_..., bias_hh_... [G*H]. */
typedef struct seqk_rnn_weights {
  const seqk_tensor *w_ih, *w_hh, *b_ih, *b_hh; /* arrays of num_layers*D; b_ih or b_hh may be
                                                     NULL (that bias is zero; bias=False in torch
                                                     is both NULL), else every entry is required */
} seqk_rnn_weights;

/* nn.RNN/LSTM/GRU forward. x [T,N,I] (batch_first: [N,T,I]), T >= 1, N >= 1;
   y [T,N,D*H] (batch_first: [N,T,D*H]); h0/hn [L*D,N,H], c0/cn [L*D,N,H] for LSTM only.
   h0/c0 optional (absent: zeros); hn/cn optional outputs. Layer l > 0 takes layer l-1's output.
   lengths: optional I32 [N], each in [1,T]: sequence n has lengths[n] valid steps, as with
   pack_padded_sequence(enforce_sorted=False): y is 0 past the length, hn/cn are the states at
   each sequence's last valid step, and the reverse direction starts at each sequence's own last
   valid step. On the CPU (any op; a CUDA op then runs max(lengths) steps) or, for CUDA ops, on
   the device (no host round trip: capturable; all T steps run). Device values are checked on the
   device (seqk_context_set_device_checks): waiting, a bad one fails the call naming it with
   nothing written; deferred, it is clamped into [1,T] and seqk_context_check reports it.
   y, hn and cn must not overlap any input or each other. */
SEQK_API seqk_status seqk_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                      const seqk_rnn_weights *w, const seqk_tensor *x,
                                      const seqk_tensor *h0, const seqk_tensor *c0,
                                      const seqk_tensor *lengths, seqk_tensor *y, seqk_tensor *hn,
                                      seqk_tensor *cn);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_H */
