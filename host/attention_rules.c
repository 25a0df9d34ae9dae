/*
 * attention_rules.c - see attention_rules.h.
 */
#include "attention_rules.h"

#include <math.h>
#include <string.h>

double seqk__attention_scale(float scale, int64_t D) {
  if (scale != 0.0f) return (double)scale;
  return D > 0 ? 1.0 / sqrt((double)D) : 1.0;
}

seqk_attention_params seqk__attention_defaults(void) {
  seqk_attention_params p;
  memset(&p, 0, sizeof p);
  p.scale = 0.0f;
  p.causal = 0;
  p.algo = SEQK_ATTENTION_ALGO_AUTO;
  p.seqlens_q = NULL;
  p.seqlens_k = NULL;
  return p;
}

seqk_key_window seqk__attention_window(const seqk_attention_params *p) {
  seqk_key_window w = {-1, -1};
  if (p->window) {
    w.left = p->window_left < 0 ? -1 : p->window_left;
    w.right = p->window_right < 0 ? -1 : p->window_right;
  }
  if (p->causal) w.right = 0;
  return w;
}

void seqk__visible_keys(seqk_key_window w, int64_t i, int64_t sq, int64_t sk, int64_t *begin,
                        int64_t *end) {
  const int64_t a = i + sk - sq;
  *begin = w.left >= 0 && a - w.left > 0 ? a - w.left : 0;
  *end = i >= sq ? 0 : w.right >= 0 && a + w.right + 1 < sk ? a + w.right + 1 : sk;
  if (*end < *begin) *end = *begin;
}

double seqk__alibi_bias(const float *slopes, int64_t h, int64_t i, int64_t j, int64_t sq,
                        int64_t sk) {
  if (!slopes) return 0.0;
  const int64_t d = i + sk - sq - j;
  return -(double)slopes[h] * (double)(d < 0 ? -d : d);
}
