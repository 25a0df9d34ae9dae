/*
 * device_checks.c - seqk_context_set_device_checks and seqk_context_check: where checks that need
 * device data report (include/seqk.h). In DEFERRED mode the context owns SEQK_K_CHECK_KINDS
 * device words (kernels/launchers.h says how a kernel records an error in one); the check reads
 * them back once, after the stream, and clears them.
 */
#include "device.h"
#include "internal.h"

#ifdef SEQK_HAVE_CUDA
#include "launchers.h"
#endif

#include <string.h>

seqk_status seqk_context_set_device_checks(seqk_context_t ctx, seqk_device_checks mode) {
  static const char op[] = "context_set_device_checks";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
  if (mode != SEQK_DEVICE_CHECKS_WAIT && mode != SEQK_DEVICE_CHECKS_DEFERRED)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: mode=%d is not a seqk_device_checks", op,
                      (int)mode);
#ifdef SEQK_HAVE_CUDA
  if (mode == SEQK_DEVICE_CHECKS_DEFERRED && !ctx->check_words) {
    void *words = NULL;
    const size_t bytes = SEQK_K_CHECK_KINDS * sizeof(unsigned long long);
    SEQK_TRY(seqk__require_device(ctx, op));
    SEQK_TRY(seqk__device_alloc(ctx, op, bytes, &words));
    /* Cleared and waited for here, so a capture or another stream set later meets clear words. */
    seqk_status st = seqk__device_memset(ctx, op, words, 0xFF, bytes);
    if (st == SEQK_STATUS_SUCCESS) st = seqk__device_sync(ctx, op);
    if (st != SEQK_STATUS_SUCCESS) {
      seqk__device_free(words);
      return st;
    }
    ctx->check_words = (unsigned long long *)words;
  }
#else
  if (mode == SEQK_DEVICE_CHECKS_DEFERRED) return seqk__built_without_cuda(ctx, op);
#endif
  ctx->device_checks = (int32_t)mode;
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk_context_check(seqk_context_t ctx) {
  static const char op[] = "context_check";
  if (!ctx) return SEQK_STATUS_INVALID_VALUE;
#ifdef SEQK_HAVE_CUDA
  if (!ctx->check_words) /* nothing recorded on the device: the wait is all there is to do */
    return seqk__device_count() > 0 ? seqk__device_sync(ctx, op) : SEQK_STATUS_SUCCESS;
  unsigned long long words[SEQK_K_CHECK_KINDS];
  SEQK_TRY(seqk__device_memcpy(ctx, op, words, ctx->check_words, sizeof words, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_memset(ctx, op, ctx->check_words, 0xFF, sizeof words));
  SEQK_TRY(seqk__device_sync(ctx, op));
  const unsigned long long lw = words[SEQK_K_CHECK_RNN_LENGTHS];
  if (lw != ~0ull)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "rnn_forward: lengths[%llu]=%d is outside [1, T] (found on the device after "
                      "the call returned; the call ran with it clamped into [1, T])",
                      lw >> 32, (int)(int32_t)(uint32_t)(lw & 0xFFFFFFFFull));
  const unsigned long long kw = words[SEQK_K_CHECK_KV_APPEND];
  if (kw != ~0ull)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "kv_cache_append: sequence %llu: cache_seqlens[%llu]=%d with its new tokens "
                      "does not fit the cache (capacity, or a page id outside [0, num_pages)); "
                      "nothing of it was written (found on the device after the call returned)",
                      kw >> 32, kw >> 32, (int)(int32_t)(uint32_t)(kw & 0xFFFFFFFFull));
  const unsigned long long aw = words[SEQK_K_CHECK_KV_ATTENTION];
  if (aw != ~0ull)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "attention_kv_cache: sequence %llu: cache_seqlens[%llu]=%d is not a length "
                      "the cache holds (capacity, or a page id outside [0, num_pages)); its rows "
                      "were written as seeing no key (found on the device after the call "
                      "returned)",
                      aw >> 32, aw >> 32, (int)(int32_t)(uint32_t)(aw & 0xFFFFFFFFull));
  const unsigned long long pw = words[SEQK_K_CHECK_PACKED];
  if (pw != ~0ull)
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "attention_packed: sequence %llu: %s[%llu..%llu] are not offsets of a "
                      "sequence within the packed rows and the length bound; none of its rows was "
                      "written (found on the device after the call returned)",
                      pw >> 32, (pw & 1u) ? "cu_seqlens_k" : "cu_seqlens_q", pw >> 32,
                      (pw >> 32) + 1);
  const unsigned long long w = words[SEQK_K_CHECK_EMBEDDING];
  if (w != ~0ull) {
    const unsigned long long pos = w >> 32;
    const int32_t value = (int32_t)(uint32_t)(w & 0xFFFFFFFFull);
    return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE,
                      "embedding: indices at row-major position %s%llu hold %d, outside the table "
                      "(found on the device after the call returned)",
                      pos == SEQK_K_CHECK_POS_MAX ? ">= " : "", pos, (int)value);
  }
#endif
  return SEQK_STATUS_SUCCESS;
}

seqk_status seqk__wait_for_check(seqk_context_t ctx, const char *op, const char *kernel,
                                 int (*launch)(const void *arg, unsigned long long *word,
                                               void *stream),
                                 const void *arg, unsigned long long *found) {
  seqk_arena arena;
  void *word = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, seqk__ws_elems(1, sizeof *found), &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, sizeof *found, &word));
  SEQK_TRY(seqk__launched(ctx, op, kernel, launch(arg, (unsigned long long *)word, ctx->stream)));
  SEQK_TRY(seqk__device_memcpy(ctx, op, found, word, sizeof *found, SEQK_COPY_D2H));
  return seqk__device_sync(ctx, op);
}
