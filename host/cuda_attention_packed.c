/*
 * cuda_attention_packed.c - seqk_attention_packed on CUDA tensors. A check kernel decides every
 * sequence's offsets first (kernels/packed_offsets.cu) into workspace: first rows and lengths,
 * zero lengths for a bad sequence; with waiting device checks its word is read back (one host
 * wait; nothing written on an error), with deferred ones it goes to the context's check word.
 * Then one attention job (cuda_attention.c) over the packed tensors seen as B batches of
 * max_len rows with batch stride 0, which the fused kernels offset by each batch's first row.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

seqk_status seqk__cuda_attention_packed(seqk_context_t ctx, const seqk_attention_params *params,
                                        const seqk_tensor *q, const seqk_tensor *k,
                                        const seqk_tensor *v, const seqk_tensor *cu_q,
                                        const seqk_tensor *cu_k, int64_t max_q, int64_t max_k,
                                        const seqk_tensor *o, const seqk_tensor *lse) {
  static const char op[] = "attention_packed";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (params->algo == SEQK_ATTENTION_ALGO_UNFUSED)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: algo UNFUSED: only the fused kernels take packed sequences", op);
  const int64_t B = cu_q->shape[0] - 1, Tq = q->shape[0], Tk = k->shape[0];
  /* The launch's rows per sequence: no sequence has more than the tensor. Keys: at least one
     row, so a call whose sequences have no key still runs (and writes o = 0, lse = +inf). */
  const int64_t Sq = max_q < Tq ? max_q : Tq;
  const int64_t Sk = max_k < Tk ? (max_k > 0 ? max_k : 1) : (Tk > 0 ? Tk : 1);
  const seqk_tensor q4 = seqk__packed_as_batches(q, B, 0, Sq);
  const seqk_tensor k4 = seqk__packed_as_batches(k, B, 0, Sk);
  const seqk_tensor v4 = seqk__packed_as_batches(v, B, 0, Sk);
  const seqk_tensor o4 = seqk__packed_as_batches(o, B, 0, Sq);
  const seqk_tensor l3 = lse ? seqk__packed_as_batches(lse, B, 0, Sq) : o4;

  const size_t ints = seqk__ws_elems(B > 0 ? B : 1, sizeof(int32_t));
  const size_t word_bytes = seqk__ws_elems(1, 8);
  seqk_attention_job job;
  memset(&job, 0, sizeof job);
  job.q = &q4;
  job.k = &k4;
  job.v = &v4;
  job.o = &o4;
  job.lse = lse ? &l3 : NULL;
  seqk__attention_job_take(&job, params);
  /* Planning reads neither: device pointers stand in for the workspace arrays. */
  job.seqlens_q = job.q_start = (const int32_t *)cu_q->data;
  job.seqlens_k = job.k_start = (const int32_t *)cu_k->data;
  job.k_rows = Tk;
  size_t job_bytes = 0;
  SEQK_TRY(seqk__attention_job_plan(ctx, op, &job, SEQK_ATTENTION_ALGO_FUSED, &job_bytes));
  if (B == 0 || Tq == 0 || Sq == 0) return SEQK_STATUS_SUCCESS; /* no row to write */

  const int deferred = ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED;
  seqk_arena arena;
  void *arr[4] = {NULL, NULL, NULL, NULL}, *word = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_sum(seqk__ws_sum(4 * ints, word_bytes), job_bytes),
                            &arena));
  for (int i = 0; i < 4; ++i) SEQK_TRY(seqk__arena_take(ctx, op, &arena, ints, &arr[i]));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, word_bytes, &word));
  seqk_k_packed_offsets_params pp;
  memset(&pp, 0, sizeof pp);
  pp.cu_q = (const int32_t *)cu_q->data;
  pp.cu_k = (const int32_t *)cu_k->data;
  pp.q_stride = cu_q->stride[0];
  pp.k_stride = cu_k->stride[0];
  pp.B = B;
  pp.Tq = Tq;
  pp.Tk = Tk;
  pp.max_q = Sq;
  pp.max_k = max_k;
  pp.q_start = (int32_t *)arr[0];
  pp.q_len = (int32_t *)arr[1];
  pp.k_start = (int32_t *)arr[2];
  pp.k_len = (int32_t *)arr[3];
  unsigned long long *bad =
      deferred ? ctx->check_words + SEQK_K_CHECK_PACKED : (unsigned long long *)word;
  SEQK_TRY(seqk__launched(ctx, op, "packed_offsets",
                          seqk_k_packed_offsets(&pp, bad, !deferred, (cudaStream_t)ctx->stream)));
  if (!deferred) {
    unsigned long long found = ~0ull;
    SEQK_TRY(seqk__device_memcpy(ctx, op, &found, bad, sizeof found, SEQK_COPY_D2H));
    SEQK_TRY(seqk__device_sync(ctx, op));
    if (found != ~0ull) {
      const int keys = (int)(found & 1u);
      return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                        "%s: sequence %llu: %s[%llu..%llu] are not offsets of a sequence within "
                        "[0, %s] of at most %s rows",
                        op, found >> 32, keys ? "cu_seqlens_k" : "cu_seqlens_q", found >> 32,
                        (found >> 32) + 1, keys ? "k.shape[0]" : "q.shape[0]",
                        keys ? "max_seqlen_k" : "max_seqlen_q");
    }
  }
  job.q_start = pp.q_start;
  job.seqlens_q = pp.q_len;
  job.k_start = pp.k_start;
  job.seqlens_k = pp.k_len;
  return seqk__attention_job_run(ctx, op, &arena, &job);
}

#endif /* SEQK_HAVE_CUDA */
