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
