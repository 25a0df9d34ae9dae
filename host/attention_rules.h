/*
 * attention_rules.h - the rules of seqk_attention that every path (the CPU reference, the unfused
 * cuBLAS path, the fused kernels, MHA) must apply the same way, in one place (attention_rules.c).
 * Not installed.
 */
#ifndef SEQK_ATTENTION_RULES_H
#define SEQK_ATTENTION_RULES_H

#include "seqk.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The scale applied to q.k: `scale`, or 1/sqrt(D) for scale == 0. With D == 0 every dot product
   is an empty sum (0), and 1/sqrt(0) would turn it into 0 * inf = NaN; the scale is then 1. */
double seqk__attention_scale(float scale, int64_t D);

/* seqk_attention's parameters when params is NULL: scale 0 (1/sqrt(D)), not causal, AUTO, no
   lengths, no window, no softcap, no ALiBi. */
seqk_attention_params seqk__attention_defaults(void);

/* The keys a query sees around its aligned position a = i + Sk_b - Sq_b: j in
   [a - left, a + right] within [0, Sk_b); -1 is unbounded. Causal and the sliding window of
   params in one form (causal: right = 0); every path masks by it. */
typedef struct seqk_key_window {
  int32_t left, right;
} seqk_key_window;
seqk_key_window seqk__attention_window(const seqk_attention_params *p);

/* The ALiBi term of query i's score for key j (of sq queries, sk keys) in query head h:
   -slopes[h] * |i + sk - sq - j|; 0 without slopes (NULL). */
double seqk__alibi_bias(const float *slopes, int64_t h, int64_t i, int64_t j, int64_t sq,
                        int64_t sk);

/* The visible keys [*begin, *end) of query i (of sq queries, sk keys) under w; empty (end <= begin)
   for i >= sq or a window before key 0. */
void seqk__visible_keys(seqk_key_window w, int64_t i, int64_t sq, int64_t sk, int64_t *begin,
                        int64_t *end);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_ATTENTION_RULES_H */
