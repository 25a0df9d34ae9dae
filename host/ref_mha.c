/*
 * ref_mha.c - CPU reference for seqk_mha_forward (nn.MultiheadAttention, batch_first=True).
 *
 * Deliberately self-contained: it does not call seqk_linear, the attention ops or their
 * references, so the test identity "MHA == linear -> split_heads -> attention -> merge_heads ->
 * linear" compares two independent computations.
 *
 * Per batch b: Q = query[b] Wq^T + bq, K = key[b] Wk^T + bk, V = value[b] Wv^T + bv (Wq, Wk, Wv
 * are row blocks 0, 1, 2 of in_proj_weight), kept in double. Per query row i and head h (columns
 * h*hd .. (h+1)*hd), softmax over the visible keys of scale * <Q_i, K_j>, then the weighted sum of
 * V rows; the heads' results side by side form one row that goes through out_proj. Keys
 * j >= key_lengths[b] (clamped into [0, Sk]) are padding; the causal mask is aligned bottom-right
 * against that length: query i sees keys j <= i + len_b - Sq. A row that sees no key by those
 * two rules gets a zero attention result (so its output is out_proj_bias) and an all-zero weights
 * row, as seqk_attention defines it (torch would give NaN). The keys key_padding_mask marks take
 * part as -inf scores: a row whose keys are all marked gets NaN, as torch gives.
 */
#include "ref_layers.h"

#include <math.h>
#include <stdlib.h>

/* a * b for non-negative extents, or -1 when it does not fit in int64_t. */
static int64_t mul_extents(int64_t a, int64_t b) {
  if (a != 0 && b > INT64_MAX / a) return -1;
  return a * b;
}

/* Room for n doubles; never malloc(0), whose NULL would read as a failure. */
static double *alloc_doubles(int64_t n) {
  if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(double)) return NULL;
  return (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
}

/* dst[s*E + o] = sum_c x[b, s, c] * w[row0 + o, c] + bias[row0 + o], for s < S, o < E. */
static void project(double *dst, const seqk_tensor *x, int64_t b, int64_t S, int64_t E,
                    const seqk_tensor *w, int64_t row0, const seqk_tensor *bias) {
  const int has_bias = seqk__present(bias);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t x_row = b * x->stride[0] + s * x->stride[1];
    for (int64_t o = 0; o < E; ++o) {
      double acc = has_bias ? seqk__load(bias, (row0 + o) * bias->stride[0]) : 0.0;
      for (int64_t c = 0; c < E; ++c)
        acc += seqk__load(x, x_row + c * x->stride[2]) *
               seqk__load(w, (row0 + o) * w->stride[0] + c * w->stride[1]);
      dst[s * E + o] = acc;
    }
  }
}

seqk_status seqk__ref_mha_forward(seqk_context_t ctx, const seqk_mha_weights *w,
                                  const seqk_mha_resolved *r, const seqk_tensor *query,
                                  const seqk_tensor *key, const seqk_tensor *value,
                                  const seqk_tensor *out, const seqk_tensor *attn_weights) {
  const int64_t B = query->shape[0], Sq = query->shape[1], E = query->shape[2];
  const int64_t Sk = key->shape[1];
  const int64_t H = r->num_heads, hd = E / H;
  const double scale = 1.0 / sqrt((double)hd);
  const int want_weights = attn_weights != NULL;
  const seqk_tensor *lens = r->key_lengths, *mask = r->key_padding_mask;
  const int has_out_bias = seqk__present(&w->out_proj_bias);

  if (B == 0 || Sq == 0) return SEQK_STATUS_SUCCESS; /* out and attn_weights have no elements */

  /* Every scratch buffer exists before the first output element is written. */
  const int64_t q_n = mul_extents(Sq, E), kv_n = mul_extents(Sk, E);
  double *q = alloc_doubles(q_n);
  double *k = alloc_doubles(kv_n);
  double *v = alloc_doubles(kv_n);
  double *p = alloc_doubles(Sk);     /* one head's probabilities for one query row */
  double *p_sum = alloc_doubles(Sk); /* their sum over heads */
  double *heads = alloc_doubles(E);  /* the concatenated head results of one query row */
  seqk_status st = SEQK_STATUS_SUCCESS;
  if (!q || !k || !v || !p || !p_sum || !heads) {
    st = seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED,
                    "mha_forward: cannot allocate CPU scratch for Sq=%lld, Sk=%lld, E=%lld",
                    (long long)Sq, (long long)Sk, (long long)E);
    goto done;
  }

  for (int64_t b = 0; b < B; ++b) {
    int64_t len = Sk;
    if (lens) {
      len = seqk__load_i32(lens, b * lens->stride[0]);
      len = len < 0 ? 0 : len > Sk ? Sk : len;
    }
    project(q, query, b, Sq, E, &w->in_proj_weight, 0, &w->in_proj_bias);
    project(k, key, b, Sk, E, &w->in_proj_weight, E, &w->in_proj_bias);
    project(v, value, b, Sk, E, &w->in_proj_weight, 2 * E, &w->in_proj_bias);

    for (int64_t i = 0; i < Sq; ++i) {
      /* Keys 0 .. visible-1 are seen by query i. */
      int64_t visible = len;
      if (r->causal) {
        visible = i + (len - Sq) + 1;
        if (visible < 0) visible = 0;
        if (visible > len) visible = len;
      }
      for (int64_t c = 0; c < E; ++c) heads[c] = 0.0;
      for (int64_t j = 0; j < Sk; ++j) p_sum[j] = 0.0;

      for (int64_t h = 0; h < H && visible > 0; ++h) {
        const double *qi = q + i * E + h * hd;
        double max = -INFINITY;
        for (int64_t j = 0; j < visible; ++j) {
          const double *kj = k + j * E + h * hd;
          double dot = 0.0;
          for (int64_t d = 0; d < hd; ++d) dot += qi[d] * kj[d];
          p[j] = scale * dot;
          if (mask && seqk__load_i32(mask, b * mask->stride[0] + j * mask->stride[1]) != 0)
            p[j] = -INFINITY;
          if (p[j] > max) max = p[j];
        }
        double denom = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          p[j] = exp(p[j] - max);
          denom += p[j];
        }
        for (int64_t j = 0; j < visible; ++j) {
          p[j] /= denom;
          p_sum[j] += p[j];
        }
        /* Visible keys all masked: the whole row NaN (denom is NaN), as torch and as the CUDA
           softmax give it. */
        const int nan_row = isnan(denom);
        if (nan_row)
          for (int64_t j = visible; j < Sk; ++j) p_sum[j] = NAN;
        if (want_weights && r->per_head) {
          const int64_t w_row = b * attn_weights->stride[0] + h * attn_weights->stride[1] +
                                i * attn_weights->stride[2];
          for (int64_t j = 0; j < Sk; ++j)
            seqk__store(attn_weights, w_row + j * attn_weights->stride[3],
                        j < visible ? p[j]
                        : nan_row   ? NAN
                                    : 0.0);
        }
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < visible; ++j) acc += p[j] * v[j * E + h * hd + d];
          heads[h * hd + d] = acc;
        }
      }

      const int64_t out_row = b * out->stride[0] + i * out->stride[1];
      for (int64_t o = 0; o < E; ++o) {
        double acc =
            has_out_bias ? seqk__load(&w->out_proj_bias, o * w->out_proj_bias.stride[0]) : 0.0;
        for (int64_t c = 0; c < E; ++c)
          acc += heads[c] * seqk__load(&w->out_proj_weight, o * w->out_proj_weight.stride[0] +
                                                                c * w->out_proj_weight.stride[1]);
        if (r->residual) /* out may be the residual itself: read just before the write */
          acc += seqk__load(r->residual, b * r->residual->stride[0] + i * r->residual->stride[1] +
                                             o * r->residual->stride[2]);
        seqk__store(out, out_row + o * out->stride[2], acc);
      }
      if (want_weights && r->per_head && visible == 0) {
        for (int64_t h = 0; h < H; ++h)
          for (int64_t j = 0; j < Sk; ++j)
            seqk__store(attn_weights,
                        b * attn_weights->stride[0] + h * attn_weights->stride[1] +
                            i * attn_weights->stride[2] + j * attn_weights->stride[3],
                        0.0);
      }
      if (want_weights && !r->per_head) {
        const int64_t w_row = b * attn_weights->stride[0] + i * attn_weights->stride[1];
        for (int64_t j = 0; j < Sk; ++j)
          seqk__store(attn_weights, w_row + j * attn_weights->stride[2],
                      j < visible || isnan(p_sum[j]) ? p_sum[j] / (double)H : 0.0);
      }
    }
  }

done:
  free(q);
  free(k);
  free(v);
  free(p);
  free(p_sum);
  free(heads);
  return st;
}
