/*
 * ref_rotary.c - CPU reference for seqk_rotary: each pair of each head vector read, turned by the
 * angle seqk.h defines (inv_freq in double rounded to fp32, one fp32 multiply by fp32(pos), the
 * same expressions the CUDA kernel evaluates) with sin/cos in double, and written back in place.
 */
#include "ref_layers.h"

#include <math.h>

/* The fp32 angle of pair i at position pos: the same two roundings kernels/rotary.cuh spells. */
static float rotary_angle(int32_t pos, int64_t i, int64_t rotary_dim, double log2_theta) {
  const float inv_freq = (float)exp2(-((double)(2 * i) / (double)rotary_dim) * log2_theta);
  const float p = (float)pos;
  return p * inv_freq;
}

void seqk__ref_rotate_row(const seqk_tensor *dst, int64_t dst_base, int64_t dst_stride,
                          const seqk_tensor *src, int64_t src_base, int64_t src_stride, int32_t pos,
                          int64_t rotary_dim, int neox, double log2_theta) {
  const int64_t half = rotary_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double angle = (double)rotary_angle(pos, i, rotary_dim, log2_theta);
    const double c = cos(angle), sn = sin(angle);
    const int64_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
    const double a = seqk__load(src, src_base + ia * src_stride);
    const double o = seqk__load(src, src_base + ib * src_stride);
    seqk__store(dst, dst_base + ia * dst_stride, a * c - o * sn);
    seqk__store(dst, dst_base + ib * dst_stride, o * c + a * sn);
  }
}

static void rotate_heads(const seqk_tensor *t, int64_t b, int64_t s, int32_t pos,
                         int64_t rotary_dim, int neox, double log2_theta) {
  for (int64_t h = 0; h < t->shape[2]; ++h) {
    const int64_t base = b * t->stride[0] + s * t->stride[1] + h * t->stride[2];
    seqk__ref_rotate_row(t, base, t->stride[3], t, base, t->stride[3], pos, rotary_dim, neox,
                         log2_theta);
  }
}

seqk_status seqk__ref_rotary(seqk_context_t ctx, int neox, int64_t rotary_dim, double log2_theta,
                             const seqk_tensor *positions, const seqk_tensor *q,
                             const seqk_tensor *k) {
  (void)ctx;
  const int64_t B = q->shape[0], S = q->shape[1];
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      const int32_t pos =
          positions ? seqk__load_i32(positions, b * positions->stride[0] + s * positions->stride[1])
                    : (int32_t)s;
      rotate_heads(q, b, s, pos, rotary_dim, neox, log2_theta);
      if (k) rotate_heads(k, b, s, pos, rotary_dim, neox, log2_theta);
    }
  return SEQK_STATUS_SUCCESS;
}
