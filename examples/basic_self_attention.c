/*
 * basic_self_attention - the simplest self-attention, with no learned weights at all.
 *
 * Seed 002 (PyTorch):
 *     x = torch.randn((1, 2, 3))                     # torch.manual_seed(0)
 *     raw_weights = torch.bmm(x, x.transpose(1, 2))  # [1, 2, 2]: every pair of rows, dotted
 *     weights = F.softmax(raw_weights, dim=2)        # each row sums to 1
 *     y = torch.bmm(weights, x)                      # [1, 2, 3]: weighted averages of x's rows
 *
 * seqk's attention ops work on 4-D tensors [B, H, S, D] (batch, heads, sequence, features). A 3-D
 * bmm is the one-head case: the same memory described with an extra dim of size 1.
 * Note the scale: seqk_attention_scores computes scale * x x^T, and scale == 0 means the usual
 * 1/sqrt(D). The seed uses no scaling, so we pass 1.0f.
 */
#include <stdio.h>

#include "example_util.h"

/* in:  x [1,1,2,3]
   out: raw_weights [1,1,2,2], weights [1,1,2,2], y [1,1,2,3], y from seqk_attention [1,1,2,3] */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  const seqk_tensor *x = &in[0];
  seqk_tensor *raw = &out[0], *weights = &out[1], *y = &out[2], *y_fused = &out[3];

  /* raw_weights = x x^T (q and k are both x). causal = 0: every row sees every row. */
  EX_TRY("attention_scores", seqk_attention_scores(ctx, x, x, 1.0f, 0, raw));

  /* F.softmax(raw_weights, dim=2) on the seed's 3-D [1, 2, 2]: describe the same memory as 3-D
     and softmax its dim 2 (on the 4-D tensor that would be dim 3, or -1). */
  const int64_t shape3[3] = {1, 2, 2};
  seqk_tensor raw3 = seqk_tensor_view(raw->data, raw->dtype, raw->device, 3, shape3);
  seqk_tensor weights3 =
      seqk_tensor_view(weights->data, weights->dtype, weights->device, 3, shape3);
  EX_TRY("softmax", seqk_softmax(ctx, &raw3, 2, &weights3));

  /* y = weights x */
  EX_TRY("attention_values", seqk_attention_values(ctx, weights, x, y));

  /* All three steps in one call. The fused op never stores the 2x2 weights. */
  seqk_attention_params params = {0};
  params.scale = 1.0f;
  EX_TRY("attention", seqk_attention(ctx, &params, x, x, x, y_fused, NULL));
  return SEQK_STATUS_SUCCESS;
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;

  /* x = torch.randn(1, 2, 3) after torch.manual_seed(0), at full float precision (the seed
     prints it rounded: 1.5410, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986). Starting from the
     rounded values would move raw_weights[1][1] to 3.4553. */
  float x_data[6] = {1.5409960746765137f, -0.293428897857666f,  -2.1787893772125244f,
                     0.5684312582015991f, -1.0845223665237427f, -1.3985954523086548f};
  float raw_data[4], weights_data[4], y_data[6], y_fused_data[6];

  const int64_t x4[4] = {1, 1, 2, 3}, w4[4] = {1, 1, 2, 2};
  seqk_tensor in[1], out[4];
  in[0] = seqk_tensor_view(x_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, x4);
  out[0] = seqk_tensor_view(raw_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, w4);
  out[1] = seqk_tensor_view(weights_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, w4);
  out[2] = seqk_tensor_view(y_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, x4);
  out[3] = seqk_tensor_view(y_fused_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, x4);

  ex_run_model(ctx, "basic_self_attention", model, NULL, 1, in, 4, out);

  /* Print with the seed's 3-D shapes. */
  const int64_t x3[3] = {1, 2, 3}, w3[3] = {1, 2, 2};
  seqk_tensor x_p = seqk_tensor_view(x_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, x3);
  seqk_tensor raw_p = seqk_tensor_view(raw_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, w3);
  seqk_tensor weights_p = seqk_tensor_view(weights_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, w3);
  seqk_tensor y_p = seqk_tensor_view(y_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, x3);
  ex_print("X.shape: [1, 2, 3]", &x_p);
  ex_print("\nraw_weights.shape: [1, 2, 2]", &raw_p);
  ex_print("\nweights.shape: [1, 2, 2]", &weights_p);
  ex_print("\ny.shape: [1, 2, 3]", &y_p);
  printf("\n");

  /* The seed's printed values, rounded to 4 decimals: agreement to half a unit of the 4th
     decimal means seqk prints exactly what the seed printed. */
  const float seed_raw[4] = {7.2079f, 4.2414f, 4.2414f, 3.4554f};
  const float seed_weights[4] = {0.9510f, 0.0490f, 0.6870f, 0.3130f};
  const float seed_y[6] = {1.4934f, -0.3322f, -2.1406f, 1.2366f, -0.5411f, -1.9346f};
  ex_expect_values("raw_weights against the seed", &raw_p, seed_raw, 5.1e-5, 0);
  ex_expect_values("weights against the seed", &weights_p, seed_weights, 5.1e-5, 0);
  ex_expect_values("y against the seed", &y_p, seed_y, 5.1e-5, 0);
  ex_expect_close("seqk_attention (one call) against the three steps", &out[3], &out[2], 1e-6,
                  1e-6);

  seqk_context_destroy(ctx);
  printf("basic_self_attention: all checks passed\n");
  return 0;
}
