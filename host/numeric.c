/*
 * numeric.c - f16/bf16 encoding and the CPU element access every reference op uses.
 *
 * Conversions go straight from double to the 16-bit format with one round-to-nearest-even, so
 * the CPU reference never double-rounds (double -> float -> half can be off by one ulp at ties).
 */
#include "numeric.h"

#include <math.h>
#include <string.h>

/* Integer bit arithmetic throughout: these run for every element the CPU reference and the
   emulated kernels convert (frexp/ldexp/nearbyint here took a third of an emulated test's time). */
static uint64_t bits_of(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}
static double double_of(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* m / 2^s rounded to nearest even (m < 2^53, so s > 54 always gives 0). */
static uint64_t shift_rne(uint64_t m, int s) {
  if (s <= 0) return m;
  if (s > 54) return 0;
  const uint64_t q = m >> s, rem = m & ((1ull << s) - 1u), half = 1ull << (s - 1);
  return q + (rem > half || (rem == half && (q & 1u)));
}

/* Encodes |v| (finite, non-negative) into a binary format with `mant_bits` stored mantissa bits
   and exponent bias `bias` (all-ones exponent = inf/NaN), rounding to nearest even. */
static uint32_t encode_magnitude(double v, int mant_bits, int bias) {
  const int exp_all_ones = 2 * bias + 1;
  const int min_normal_exp = 1 - bias;
  const uint64_t u = bits_of(v);
  const int ex = (int)(u >> 52);
  /* zero, and double subnormals (< 2^-1022): far below half of any 16-bit format's least unit */
  if (ex == 0) return 0;
  int e = ex - 1023; /* v = m 2^(e - 52), m in [2^52, 2^53) */
  const uint64_t m = (u & ((1ull << 52) - 1u)) | (1ull << 52);
  /* subnormal: units of 2^(min_normal_exp - mant_bits); a carry to 1 << mant_bits is the
     smallest normal's encoding: fine */
  if (e < min_normal_exp) return (uint32_t)shift_rne(m, 52 - mant_bits + (min_normal_exp - e));
  uint64_t mant = shift_rne(m, 52 - mant_bits); /* in [2^mant_bits, 2^(mant_bits+1)] */
  if (mant >> (mant_bits + 1)) {                /* rounding carried into the exponent */
    mant >>= 1;
    e += 1;
  }
  if (e + bias >= exp_all_ones) return (uint32_t)exp_all_ones << mant_bits; /* inf */
  return ((uint32_t)(e + bias) << mant_bits) | ((uint32_t)mant - (1u << mant_bits));
}

static uint16_t encode16(double v, int mant_bits, int bias) {
  const int exp_all_ones = 2 * bias + 1;
  uint16_t sign = signbit(v) ? 0x8000u : 0u;
  if (isnan(v))
    return (uint16_t)(((uint32_t)exp_all_ones << mant_bits) | (1u << (mant_bits - 1)) | 0x8000u);
  if (isinf(v)) return (uint16_t)(sign | ((uint32_t)exp_all_ones << mant_bits));
  return (uint16_t)(sign | encode_magnitude(fabs(v), mant_bits, bias));
}

static double decode16(uint16_t bits, int mant_bits, int bias) {
  const uint32_t exp_all_ones = 2u * (uint32_t)bias + 1u;
  const uint32_t mant = bits & ((1u << mant_bits) - 1u);
  const uint32_t ex = (bits >> mant_bits) & exp_all_ones;
  const uint64_t sign = (uint64_t)(bits & 0x8000u) << 48;
  if (ex == exp_all_ones) return mant ? NAN : double_of(sign | (0x7ffull << 52));
  if (ex == 0) { /* mant 2^(1 - bias - mant_bits), the power of two built as a double */
    const double mag = (double)mant * double_of((uint64_t)(1 - bias - mant_bits + 1023) << 52);
    return sign ? -mag : mag;
  }
  return double_of(sign | ((uint64_t)((int)ex - bias + 1023) << 52) |
                   ((uint64_t)mant << (52 - mant_bits)));
}

float seqk__f16_to_float(uint16_t bits) { return (float)decode16(bits, 10, 15); }
float seqk__bf16_to_float(uint16_t bits) { return (float)decode16(bits, 7, 127); }
uint16_t seqk__double_to_f16(double v) { return encode16(v, 10, 15); }
uint16_t seqk__double_to_bf16(double v) { return encode16(v, 7, 127); }

double seqk__round_to_dtype(double v, seqk_dtype dtype) {
  switch (dtype) {
    case SEQK_DTYPE_F32: return (double)(float)v;
    case SEQK_DTYPE_F16: return decode16(seqk__double_to_f16(v), 10, 15);
    case SEQK_DTYPE_BF16: return decode16(seqk__double_to_bf16(v), 7, 127);
    case SEQK_DTYPE_I32: return (double)(int32_t)v;
  }
  return v;
}

double seqk__load(const seqk_tensor *t, int64_t offset) {
  switch (t->dtype) {
    case SEQK_DTYPE_F32: return (double)((const float *)t->data)[offset];
    case SEQK_DTYPE_F16: return decode16(((const uint16_t *)t->data)[offset], 10, 15);
    case SEQK_DTYPE_BF16: return decode16(((const uint16_t *)t->data)[offset], 7, 127);
    case SEQK_DTYPE_I32: return (double)((const int32_t *)t->data)[offset];
  }
  return NAN;
}

void seqk__store(const seqk_tensor *t, int64_t offset, double value) {
  switch (t->dtype) {
    case SEQK_DTYPE_F32: ((float *)t->data)[offset] = (float)value; break;
    case SEQK_DTYPE_F16: ((uint16_t *)t->data)[offset] = seqk__double_to_f16(value); break;
    case SEQK_DTYPE_BF16: ((uint16_t *)t->data)[offset] = seqk__double_to_bf16(value); break;
    case SEQK_DTYPE_I32: ((int32_t *)t->data)[offset] = (int32_t)value; break;
  }
}

void seqk__copy_element(const seqk_tensor *dst, int64_t doff, const seqk_tensor *src,
                        int64_t soff) {
  if (dst->dtype == src->dtype) {
    const size_t es = seqk_dtype_size(src->dtype);
    memcpy((char *)dst->data + doff * (int64_t)es, (const char *)src->data + soff * (int64_t)es, es);
    return;
  }
  seqk__store(dst, doff, seqk__load(src, soff));
}

int32_t seqk__load_i32(const seqk_tensor *t, int64_t offset) {
  return ((const int32_t *)t->data)[offset];
}
