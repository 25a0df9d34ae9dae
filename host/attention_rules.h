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
   lengths. */
seqk_attention_params seqk__attention_defaults(void);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_ATTENTION_RULES_H */
