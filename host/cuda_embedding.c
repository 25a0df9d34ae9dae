/*
 * cuda_embedding.c - seqk_embedding on CUDA tensors: the range check, then the gather
 * (kernels/embedding.cu). The check's one word of scratch comes from the workspace. In DEFERRED
 * device-check mode (device_checks.c) only the gather runs, recording a bad index itself.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "geometry.h"
#include "launchers.h"

#include <string.h>

/* The params over `indices` (the gather's, or the range check's distinct view): index dims with
   size-1 dims dropped and neighbours contiguous in both indices and out merged (a contiguous
   [B,S] batch becomes one dim). out may be NULL (the check: out's strides play no part, and an
   empty out's are not even bounded). */
static void embedding_params(const seqk_tensor *indices, const seqk_tensor *table,
                             const seqk_tensor *out, seqk_k_embedding_params *p) {
  memset(p, 0, sizeof *p);
  p->out = out ? out->data : NULL;
  p->table = table->data;
  p->indices = (const int32_t *)indices->data;
  p->elem_size = seqk_dtype_size(table->dtype);
  p->n = seqk__numel(indices);
  p->V = table->shape[0];
  p->E = table->shape[1];
  p->table_stride[0] = table->stride[0];
  p->table_stride[1] = table->stride[1];
  p->out_col_stride = out ? out->stride[indices->ndim] : 0;
  for (int32_t d = 0; d < indices->ndim; ++d) {
    const int64_t n = indices->shape[d];
    const int64_t os = out ? out->stride[d] : 0;
    if (n == 1) continue;
    if (p->ndim > 0) {
      const int32_t q = p->ndim - 1;
      if (p->idx_stride[q] == indices->stride[d] * n && p->out_stride[q] == os * n) {
        p->shape[q] *= n;
        p->idx_stride[q] = indices->stride[d];
        p->out_stride[q] = os;
        continue;
      }
    }
    p->shape[p->ndim] = n;
    p->idx_stride[p->ndim] = indices->stride[d];
    p->out_stride[p->ndim] = os;
    ++p->ndim;
  }
}

static int launch_check(const void *p, unsigned long long *word, void *stream) {
  return (int)seqk_k_embedding_check((const seqk_k_embedding_params *)p, word,
                                     (cudaStream_t)stream);
}

/* INVALID_VALUE naming the first index outside [0, V), or SUCCESS. Every distinct index is checked
   (a broadcast dim reads one element, however long it is: seqk__distinct_view); the first bad
   position of the whole tensor has its broadcast dims at 0, so it is among them. The synchronous
   copy is the price of the contract: whether out may be written at all depends on data that lives
   on the device, and the error must be returned by this call. (A gather that clamped, or that
   raised the error asynchronously, would not need it.) */
static seqk_status check_range(seqk_context_t ctx, const char *op, const seqk_tensor *indices,
                               const seqk_tensor *table) {
  const seqk_tensor distinct = seqk__distinct_view(indices);
  seqk_k_embedding_params p;
  unsigned long long found = 0;
  embedding_params(&distinct, table, NULL, &p);
  SEQK_TRY(seqk__wait_for_check(ctx, op, "range-check", launch_check, &p, &found));
  if (found == ~0ull) return SEQK_STATUS_SUCCESS;

  /* The error path only: fetch the offending value for the message. */
  const int64_t pos = (int64_t)found;
  int32_t value = 0;
  const int32_t *at = (const int32_t *)indices->data + seqk__offset_of_linear(&distinct, pos);
  SEQK_TRY(seqk__device_memcpy(ctx, op, &value, at, sizeof value, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  char where[SEQK_POSITION_CHARS];
  seqk__format_position(where, sizeof where, indices, seqk__linear_in(&distinct, pos, indices));
  return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: indices%s=%d out of range [0, %lld)", op,
                    where, (int)value, (long long)p.V);
}

seqk_status seqk__cuda_embedding(seqk_context_t ctx, const seqk_tensor *indices,
                                 const seqk_tensor *table, const seqk_tensor *out) {
  static const char op[] = "embedding";
  SEQK_TRY(seqk__require_device(ctx, op));
  if (seqk__numel(indices) == 0) return SEQK_STATUS_SUCCESS;
  seqk_k_embedding_params p;
  if (ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED) {
    /* No wait: the gather itself records a bad index (seqk_context_check reports it). With
       E == 0 there is no row to write, but the indices are still checked, as on the CPU. */
    embedding_params(indices, table, out, &p);
    p.deferred_bad = ctx->check_words + SEQK_K_CHECK_EMBEDDING;
    return seqk__launched(ctx, op, "gather",
                          seqk_k_embedding_gather(&p, (cudaStream_t)ctx->stream));
  }
  /* Even with E == 0 (nothing to copy) a bad index is an error, as on the CPU. */
  SEQK_TRY(check_range(ctx, op, indices, table));
  if (seqk__numel(out) == 0) return SEQK_STATUS_SUCCESS;
  embedding_params(indices, table, out, &p);
  return seqk__launched(ctx, op, "gather", seqk_k_embedding_gather(&p, (cudaStream_t)ctx->stream));
}

#endif /* SEQK_HAVE_CUDA */
