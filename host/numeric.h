/*
 * numeric.h - f16/bf16 encoding and the CPU element access every reference op uses (numeric.c).
 * Not installed.
 */
#ifndef SEQK_NUMERIC_H
#define SEQK_NUMERIC_H

#include "seqk.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

float seqk__f16_to_float(uint16_t bits);
float seqk__bf16_to_float(uint16_t bits);
uint16_t seqk__double_to_f16(double v);  /* round to nearest even, overflow to inf, NaN kept */
uint16_t seqk__double_to_bf16(double v); /* round to nearest even, NaN kept */
/* The value v as dtype would store it, read back (rounding applied, no storage). */
double seqk__round_to_dtype(double v, seqk_dtype dtype);

/* ---- CPU element access: offset is in elements from t->data ---------------------------------- */
double seqk__load(const seqk_tensor *t, int64_t offset);
void seqk__store(const seqk_tensor *t, int64_t offset, double value);
int32_t seqk__load_i32(const seqk_tensor *t, int64_t offset);
/* dst[doff] = src[soff]: the bits themselves when the dtypes are equal (NaN payloads and -0 kept,
   as the CUDA kernels' moves keep them), else converted through double (one rounding). */
void    seqk__copy_element(const seqk_tensor *dst, int64_t doff, const seqk_tensor *src,
                           int64_t soff);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_NUMERIC_H */
