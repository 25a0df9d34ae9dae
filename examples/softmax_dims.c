/*
 * softmax_dims - torch.softmax(a, dim) with seqk_softmax, and what "dim" means.
 *
 * Seed 000 (a blog post titled "Softmax(dim=2)"):
 *     a = torch.tensor([[1.0, 2.0, 3.0], [2.0, 1.0, 0.5]])
 *     p = torch.softmax(a, dim=1)
 *     # tensor([[0.0900, 0.2447, 0.6652],
 *     #         [0.5761, 0.3983, 0.0256]])
 * Its first row is right. Its second row is not: softmax([2, 1, 0.5]) = [0.6285, 0.2312, 0.1402].
 * This program prints the true values and checks them.
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"

/* softmax along `dim` of a contiguous row-major array, in double: the plain-C check. */
static void softmax_in_c(const float *x, const int64_t *shape, int ndim, int dim, float *y) {
  int64_t outer = 1, n = shape[dim], inner = 1;
  for (int d = 0; d < dim; ++d) outer *= shape[d];
  for (int d = dim + 1; d < ndim; ++d) inner *= shape[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float *xs = x + o * n * inner + i; /* the slice: xs[j * inner], j < n */
      float *ys = y + o * n * inner + i;
      double max = xs[0], sum = 0;
      for (int64_t j = 1; j < n; ++j) max = fmax(max, xs[j * inner]);
      for (int64_t j = 0; j < n; ++j) sum += exp(xs[j * inner] - max);
      for (int64_t j = 0; j < n; ++j) ys[j * inner] = (float)(exp(xs[j * inner] - max) / sum);
    }
}

/* The model: every softmax this program shows, written once for tensors on any device.
   in:  a [2,3], t [2,2,3]
   out: softmax(a, 1), softmax(a, 0), softmax(a, -1), softmax(t, 0), softmax(t, 1), softmax(t, 2) */
static seqk_status model(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                         seqk_tensor *out, const char **failed_op) {
  (void)user;
  EX_TRY("softmax", seqk_softmax(ctx, &in[0], 1, &out[0]));
  EX_TRY("softmax", seqk_softmax(ctx, &in[0], 0, &out[1]));
  EX_TRY("softmax", seqk_softmax(ctx, &in[0], -1, &out[2])); /* -1 counts from the end: dim 1 */
  for (int dim = 0; dim < 3; ++dim)
    EX_TRY("softmax", seqk_softmax(ctx, &in[1], dim, &out[3 + dim]));
  return SEQK_STATUS_SUCCESS;
}

int main(void) {
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;

  /* seqk tensors are descriptors of memory you own: here plain arrays on the stack. */
  const int64_t a_shape[2] = {2, 3}, t_shape[3] = {2, 2, 3};
  float a_data[6] = {1.0f, 2.0f, 3.0f, 2.0f, 1.0f, 0.5f};
  float t_data[12] = {1, 2, 3, 4, 5, 6, /* t[1]: */ 0.5f, 0, -1, 2, 2, 2};
  float out_data[6][12];
  seqk_tensor in[2], out[6];
  in[0] = seqk_tensor_view(a_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, a_shape);
  in[1] = seqk_tensor_view(t_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, t_shape);
  for (int i = 0; i < 6; ++i)
    out[i] = i < 3 ? seqk_tensor_view(out_data[i], SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, a_shape)
                   : seqk_tensor_view(out_data[i], SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, t_shape);

  ex_run_model(ctx, "softmax_dims", model, NULL, 2, in, 6, out);

  /* ---- the seed's example ---- */
  ex_print("a", &in[0]);
  ex_print("p = softmax(a, dim=1)   (each row sums to 1)", &out[0]);
  const float seed_row0[3] = {0.0900f, 0.2447f, 0.6652f};
  const float true_row1[3] = {0.6285f, 0.2312f, 0.1402f};
  const float seed_row1[3] = {0.5761f, 0.3983f, 0.0256f};
  seqk_tensor row0 = seqk_tensor_view(out_data[0], SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, &a_shape[1]);
  seqk_tensor row1 =
      seqk_tensor_view(out_data[0] + 3, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, &a_shape[1]);
  /* The seed printed 4 decimals, so agreement is to half a unit of the 4th decimal. */
  ex_expect_values("p[0] against the seed's printed 0.0900 0.2447 0.6652", &row0, seed_row0, 5.1e-5,
                   0);
  ex_expect_values("p[1] against the true 0.6285 0.2312 0.1402", &row1, true_row1, 5.1e-5, 0);
  printf(
      "NOTE: the seed printed [0.5761, 0.3983, 0.0256] for p[1]; that is wrong.\n"
      "      softmax keeps ratios of exponentials: p[1,0]/p[1,1] must be e^(2-1) = %.4f;\n"
      "      seqk gives %.4f, the seed's numbers give %.4f. The true row is shown above.\n",
      exp(1.0), out_data[0][3] / out_data[0][4], seed_row1[0] / seed_row1[1]);
  if (fabsf(out_data[0][3] - seed_row1[0]) < 1e-2f) {
    fprintf(stderr, "MISMATCH: p[1] came out as the seed's wrong values\n");
    return 1;
  }

  /* Every softmax above against the plain C loop. */
  float want[12];
  softmax_in_c(a_data, a_shape, 2, 1, want);
  ex_expect_values("softmax(a, dim=1) against plain C", &out[0], want, 1e-6, 1e-6);
  ex_expect_values("softmax(a, dim=-1) is softmax(a, dim=1)", &out[2], out_data[0], 0, 0);
  softmax_in_c(a_data, a_shape, 2, 0, want);
  ex_print("softmax(a, dim=0)   (each column sums to 1)", &out[1]);
  ex_expect_values("softmax(a, dim=0) against plain C", &out[1], want, 1e-6, 1e-6);

  /* torch.softmax(a, dim=2) on a 2-D tensor is an IndexError; seqk says INVALID_VALUE, names the
     problem in seqk_context_last_error, and writes nothing. */
  seqk_status st = seqk_softmax(ctx, &in[0], 2, &out[0]);
  printf("softmax(a, dim=2) on a 2-D tensor: %s: \"%s\"\n", seqk_status_string(st),
         seqk_context_last_error(ctx));
  if (st != SEQK_STATUS_INVALID_VALUE) {
    fprintf(stderr, "MISMATCH: dim=2 on a 2-D tensor should be rejected\n");
    return 1;
  }

  /* ---- what each dim of a 3-D tensor means ----
     t has shape [2, 2, 3]: two 2x3 matrices. softmax over dim d normalises along index d with
     the others fixed, so summing the result over dim d gives all ones, in the shape of t
     without dim d. */
  ex_print("\nt, shape [2, 2, 3]", &in[1]);
  const char *meaning[3] = {"across the two matrices (t[0][i][j] vs t[1][i][j])",
                            "down each column of each matrix",
                            "along each row (= dim=-1), the usual choice for attention scores"};
  for (int dim = 0; dim < 3; ++dim) {
    char label[160];
    snprintf(label, sizeof label, "softmax(t, dim=%d): %s", dim, meaning[dim]);
    ex_print(label, &out[3 + dim]);

    /* The sums over `dim`, in a tensor shaped like t without that dim. */
    float sums[6] = {0};
    int64_t sum_shape[2], k = 0;
    for (int d = 0; d < 3; ++d)
      if (d != dim) sum_shape[k++] = t_shape[d];
    for (int64_t i = 0; i < 12; ++i) {
      int64_t idx[3] = {i / 6, (i / 3) % 2, i % 3}, r = 0;
      for (int d = 0; d < 3; ++d)
        if (d != dim) r = r * t_shape[d] + idx[d];
      sums[r] += out_data[3 + dim][i];
    }
    seqk_tensor s = seqk_tensor_view(sums, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, sum_shape);
    snprintf(label, sizeof label, "sums of softmax(t, dim=%d) over dim %d", dim, dim);
    ex_print(label, &s);
    const float ones[6] = {1, 1, 1, 1, 1, 1};
    ex_expect_values(label, &s, ones, 1e-6, 0);
    softmax_in_c(t_data, t_shape, 3, dim, want);
    snprintf(label, sizeof label, "softmax(t, dim=%d) against plain C", dim);
    ex_expect_values(label, &out[3 + dim], want, 1e-6, 1e-6);
  }

  seqk_context_destroy(ctx);
  printf("softmax_dims: all checks passed\n");
  return 0;
}
