/*
 * keras_self_attention - the Keras Self_Attention layer of seeds 000 and 001, with seqk.
 *
 *     self.kernel = self.add_weight(shape=(3, input_shape[2], self.output_dim))
 *     WQ = K.dot(x, self.kernel[0])          # x [B, T, In] . kernel[0] [In, Out] -> [B, T, Out]
 *     WK = K.dot(x, self.kernel[1])
 *     WV = K.dot(x, self.kernel[2])
 *     QK = K.batch_dot(WQ, K.permute_dimensions(WK, [0, 2, 1]))   # [B, T, T]
 *     QK = QK / (64 ** 0.5)
 *     QK = K.softmax(QK)
 *     V = K.batch_dot(QK, WV)                # [B, T, Out]
 *
 * Two things to get right when porting it:
 *  - Keras stores a dense kernel as [In, Out] and computes x . kernel. seqk_linear follows torch:
 *    y = x W^T with W [Out, In]. kernel[i]^T is the same memory read with the strides swapped,
 *    so we pass a strided view, not a transposed copy.
 *  - The layer divides by sqrt(64) whatever Out is. seqk_attention's default scale is
 *    1/sqrt(Out) (here 1/2), so we set params.scale = 1/8 explicitly.
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"

enum { B = 2, T = 5, IN = 6, OUT = 4 };

/* kernel[i]^T: a [OUT, IN] view of the [IN, OUT] block kernel[i]. Element (o, a) of the view is
   kernel[i][a][o], at offset a*OUT + o: so stride 1 along o and OUT along a. */
static seqk_tensor kernel_transposed(const seqk_tensor *kernel, int i) {
  const int64_t shape[2] = {OUT, IN}, stride[2] = {1, OUT};
  char *block = (char *)kernel->data + (size_t)i * IN * OUT * seqk_dtype_size(kernel->dtype);
  return seqk_tensor_view_strided(block, kernel->dtype, kernel->device, 2, shape, stride);
}

/* A contiguous [B, T, F] tensor seen as [B, 1, T, F]: one attention head. */
static seqk_tensor one_head(const seqk_tensor *t) {
  const int64_t shape[4] = {t->shape[0], 1, t->shape[1], t->shape[2]};
  return seqk_tensor_view(t->data, t->dtype, t->device, 4, shape);
}

/* in:  x [B,T,IN], kernel [3,IN,OUT]
   out: WQ, WK, WV [B,T,OUT], V [B,T,OUT] */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  for (int i = 0; i < 3; ++i) {
    seqk_tensor w = kernel_transposed(&in[1], i);
    EX_TRY("linear", seqk_linear(ctx, &in[0], &w, NULL, &out[i])); /* no bias in this layer */
  }
  seqk_tensor q = one_head(&out[0]), k = one_head(&out[1]), v = one_head(&out[2]);
  seqk_tensor o = one_head(&out[3]);
  seqk_attention_params params = {0};
  params.scale = 0.125f; /* 1 / (64 ** 0.5), as the layer does */
  EX_TRY("attention", seqk_attention(ctx, &params, &q, &k, &v, &o, NULL));
  return SEQK_STATUS_SUCCESS;
}

/* The whole layer as plain loops, in double: what the example checks seqk against. */
static void layer_in_c(const float *x, const float *kernel, float *v_out) {
  static double proj[3][B][T][OUT];
  for (int i = 0; i < 3; ++i)
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int o = 0; o < OUT; ++o) {
          double s = 0;
          for (int a = 0; a < IN; ++a)
            s += x[(b * T + t) * IN + a] * kernel[(i * IN + a) * OUT + o];
          proj[i][b][t][o] = s;
        }
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      double qk[T], max = -INFINITY, sum = 0;
      for (int u = 0; u < T; ++u) {
        qk[u] = 0;
        for (int o = 0; o < OUT; ++o) qk[u] += proj[0][b][t][o] * proj[1][b][u][o];
        qk[u] /= sqrt(64.0);
        max = fmax(max, qk[u]);
      }
      for (int u = 0; u < T; ++u) sum += (qk[u] = exp(qk[u] - max));
      for (int o = 0; o < OUT; ++o) {
        double s = 0;
        for (int u = 0; u < T; ++u) s += qk[u] / sum * proj[2][b][u][o];
        v_out[(b * T + t) * OUT + o] = (float)s;
      }
    }
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;

  /* Fixed numbers instead of a trained model: the kernel straight from the formula, x four times
     it so that the attention is not almost uniform after the division by 8. */
  float x_data[B * T * IN], kernel_data[3 * IN * OUT];
  ex_fill(x_data, B * T * IN, 1);
  for (int i = 0; i < B * T * IN; ++i) x_data[i] *= 4.0f;
  ex_fill(kernel_data, 3 * IN * OUT, 2);
  printf("weights: " EX_WEIGHT_FORMULA "\n  kernel: id 2; x: 4 * (id 1)\n");

  float wq[B * T * OUT], wk[B * T * OUT], wv[B * T * OUT], v[B * T * OUT];
  const int64_t x_shape[3] = {B, T, IN}, k_shape[3] = {3, IN, OUT}, o_shape[3] = {B, T, OUT};
  seqk_tensor in[2], out[4];
  in[0] = seqk_tensor_view(x_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, x_shape);
  in[1] = seqk_tensor_view(kernel_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, k_shape);
  out[0] = seqk_tensor_view(wq, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, o_shape);
  out[1] = seqk_tensor_view(wk, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, o_shape);
  out[2] = seqk_tensor_view(wv, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, o_shape);
  out[3] = seqk_tensor_view(v, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, o_shape);

  ex_run_model(ctx, "keras_self_attention", model, NULL, 2, in, 4, out);

  ex_print("x, shape (2, 5, 6)", &in[0]);
  ex_print("kernel, shape (3, 6, 4)", &in[1]);
  /* The shapes the seed's layer prints. */
  printf("WQ.shape (%d, %d, %d)\n", B, T, OUT);
  printf("K.permute_dimensions(WK, [0, 2, 1]).shape (%d, %d, %d)\n", B, OUT, T);
  printf("QK.shape (%d, %d, %d)\n", B, T, T);
  ex_print("WQ", &out[0]);
  ex_print("V (the layer's output)", &out[3]);

  float want[B * T * OUT];
  layer_in_c(x_data, kernel_data, want);
  ex_expect_values("V against plain C loops", &out[3], want, 1e-6, 1e-5);

  seqk_context_destroy(ctx);
  printf("keras_self_attention: all checks passed\n");
  return 0;
}
