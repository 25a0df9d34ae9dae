/*
 * test_heads.c - seqk_split_heads / seqk_merge_heads on the CPU: the index mapping against
 * x.view(B, S, H, D).transpose(1, 2) computed here, the round trip, strided inputs and outputs
 * (including a transposed [B,S,H,D] buffer), f16/bf16 (bit-exact: these are copies), size-1 and
 * empty dims, and bad input.
 */
#include "harness.h"

/* y[b,h,s,d] = x[b,s,h*D+d] on row-major doubles: x.view(B,S,H,D).transpose(1,2). */
static double *ref_split(const double *x, int64_t B, int64_t S, int64_t H, int64_t D) {
  double *y = (double *)th_alloc((size_t)(B * S * H * D + 1) * sizeof(double));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d)
          y[((b * H + h) * S + s) * D + d] = x[((b * S + s) * H + h) * D + d];
  return y;
}

/* The inverse, written separately: y[b,s,h*D+d] = x[b,h,s,d]. */
static double *ref_merge(const double *x, int64_t B, int64_t H, int64_t S, int64_t D) {
  double *y = (double *)th_alloc((size_t)(B * S * H * D + 1) * sizeof(double));
  for (int64_t i = 0; i < B * H * S * D; ++i) {
    const int64_t d = i % D, s = (i / D) % S, h = (i / (D * S)) % H, b = i / (D * S * H);
    y[(b * S + s) * (H * D) + h * D + d] = x[i];
  }
  return y;
}

static const th_tol exact = {0.0, 0.0};

/* The device parity runs (harness.h): split with *(int32_t *)num_heads heads, and merge. Both are
   copies, so the CUDA result must equal the CPU one exactly (tolerance factor 0). */
static seqk_status split_op(seqk_context_t ctx, void *num_heads, seqk_tensor *in,
                            seqk_tensor *out) {
  return seqk_split_heads(ctx, &in[0], *(const int32_t *)num_heads, &out[0]);
}

static seqk_status merge_op(seqk_context_t ctx, void *unused, seqk_tensor *in, seqk_tensor *out) {
  (void)unused;
  return seqk_merge_heads(ctx, &in[0], &out[0]);
}

static void split_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *x,
                            int32_t num_heads, const seqk_tensor *y) {
  th_check_on_device(ctx, what, split_op, &num_heads, x, 1, 0, y, 1, 0.0);
}

static void merge_on_device(seqk_context_t ctx, const char *what, const seqk_tensor *x,
                            const seqk_tensor *y) {
  th_check_on_device(ctx, what, merge_op, NULL, x, 1, 0, y, 1, 0.0);
}

typedef struct heads_case {
  int64_t B, S, H, D;
  seqk_dtype dtype;
  int strided; /* 0: contiguous x and y; 1: padded views with inner stride 2 */
} heads_case;

static void run_case(seqk_context_t ctx, th_rng *rng, const heads_case *c) {
  const int64_t xs[3] = {c->B, c->S, c->H * c->D}, ys[4] = {c->B, c->H, c->S, c->D};
  const int64_t xpad[3] = {1, 2, 3}, ypad[4] = {2, 1, 1, 2};
  char what[128];
  seqk_tensor x, y, back;
  if (c->strided) {
    x = th_tensor_strided(c->dtype, 3, xs, xpad, 2);
    y = th_tensor_strided(c->dtype, 4, ys, ypad, 3);
    back = th_tensor_strided(c->dtype, 3, xs, xpad, 1);
  } else {
    x = th_tensor_new(c->dtype, 3, xs);
    y = th_tensor_new(c->dtype, 4, ys);
    back = th_tensor_new(c->dtype, 3, xs);
  }
  th_fill_normal(&x, rng, 1.0);
  const double *xd = th_to_doubles(&x);
  snprintf(what, sizeof what, "split B=%lld S=%lld H=%lld D=%lld dtype=%d strided=%d",
           (long long)c->B, (long long)c->S, (long long)c->H, (long long)c->D, (int)c->dtype,
           c->strided);
  th_expect_status(ctx, seqk_split_heads(ctx, &x, (int32_t)c->H, &y), SEQK_STATUS_SUCCESS, NULL,
                   what);
  th_check_close(what, &y, ref_split(xd, c->B, c->S, c->H, c->D), exact);
  split_on_device(ctx, what, &x, (int32_t)c->H, &y);

  snprintf(what, sizeof what, "merge(split(x)) == x, B=%lld S=%lld H=%lld D=%lld dtype=%d",
           (long long)c->B, (long long)c->S, (long long)c->H, (long long)c->D, (int)c->dtype);
  th_expect_status(ctx, seqk_merge_heads(ctx, &y, &back), SEQK_STATUS_SUCCESS, NULL, what);
  th_check_close(what, &back, xd, exact);

  /* merge on its own, from fresh random [B,H,S,D] data. */
  seqk_tensor m =
      c->strided ? th_tensor_strided(c->dtype, 4, ys, ypad, 2) : th_tensor_new(c->dtype, 4, ys);
  th_fill_normal(&m, rng, 1.0);
  th_poison(&back);
  snprintf(what, sizeof what, "merge mapping B=%lld S=%lld H=%lld D=%lld dtype=%d", (long long)c->B,
           (long long)c->S, (long long)c->H, (long long)c->D, (int)c->dtype);
  th_expect_status(ctx, seqk_merge_heads(ctx, &m, &back), SEQK_STATUS_SUCCESS, NULL, what);
  th_check_close(what, &back, ref_merge(th_to_doubles(&m), c->B, c->H, c->S, c->D), exact);
  merge_on_device(ctx, what, &m, &back);
}

static void test_mapping(seqk_context_t ctx, th_rng *rng) {
  const heads_case cases[] = {
      {2, 5, 3, 4, SEQK_DTYPE_F32, 0},
      {2, 5, 3, 4, SEQK_DTYPE_F32, 1},
      {3, 7, 5, 3, SEQK_DTYPE_F32, 1},
      {1, 1, 1, 1, SEQK_DTYPE_F32, 0},
      {1, 9, 1, 8, SEQK_DTYPE_F32, 1},
      {2, 4, 6, 1, SEQK_DTYPE_F32, 1},
      {3, 6, 4, 5, SEQK_DTYPE_F16, 0},
      {3, 6, 4, 5, SEQK_DTYPE_F16, 1},
      {2, 3, 2, 7, SEQK_DTYPE_BF16, 1},
      {2, 3, 2, 7, SEQK_DTYPE_BF16, 0},
      /* For the CUDA kernel (kernels/heads.cu), which moves the widest unit both layouts allow:
         D*elem = 24 B -> 8-byte units; 12 B -> 4-byte units of two halves; 128 B -> 16-byte
         units, several heads per block; 2800 B and 8400 B -> 16-byte units with one or a few
         long heads per block; D = 2051 halves -> a head longer than one block's piece (1024
         units) split across blocks; S = 1 (decode) with size-1 dims in the middle. */
      {2, 5, 3, 6, SEQK_DTYPE_F32, 0},
      {3, 4, 2, 6, SEQK_DTYPE_F16, 0},
      {2, 37, 3, 64, SEQK_DTYPE_BF16, 0},
      {1, 3, 2, 700, SEQK_DTYPE_F32, 0},
      {1, 2, 2, 2100, SEQK_DTYPE_F32, 0},
      {1, 2, 2, 2051, SEQK_DTYPE_F16, 0},
      {3, 1, 5, 16, SEQK_DTYPE_F16, 0},
      {2, 9, 4, 3, SEQK_DTYPE_F32, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(ctx, rng, &cases[i]);
}

static void test_index_mapping_by_value(seqk_context_t ctx) {
  /* x[b,s,e] = 1000b + 100s + e: y[b,h,s,d] must be 1000b + 100s + (h*D + d). Checks the
     layout with values that spell their own position, independent of the helpers above. */
  const int64_t B = 2, S = 3, H = 2, D = 4;
  const int64_t xs[3] = {B, S, H * D}, ys[4] = {B, H, S, D};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, xs), y = th_tensor_new(SEQK_DTYPE_F32, 4, ys);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t e = 0; e < H * D; ++e)
        th_set(&x, (b * S + s) * H * D + e, 1000.0 * b + 100.0 * s + e);
  th_expect_status(ctx, seqk_split_heads(ctx, &x, (int32_t)H, &y), SEQK_STATUS_SUCCESS, NULL,
                   "positions");
  int ok = 1;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t d = 0; d < D; ++d)
          ok &= th_get(&y, ((b * H + h) * S + s) * D + d) == 1000.0 * b + 100.0 * s + (h * D + d);
  TH_CHECK(ok, "split_heads puts an element at the wrong position");
}

static void test_bshd_views(seqk_context_t ctx, th_rng *rng) {
  /* Split straight into a [B,S,H,D] buffer seen as [B,H,S,D]: y's memory then equals x's. */
  const int64_t B = 2, S = 5, H = 3, D = 4;
  const int64_t xs[3] = {B, S, H * D}, bshd[4] = {B, S, H, D};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, xs);
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 4, bshd);
  th_fill_normal(&x, rng, 1.0);
  seqk_tensor y = buf;
  y.shape[1] = H;
  y.shape[2] = S;
  y.stride[1] = D;
  y.stride[2] = H * D;
  th_expect_status(ctx, seqk_split_heads(ctx, &x, (int32_t)H, &y), SEQK_STATUS_SUCCESS, NULL,
                   "bshd");
  th_check_close("split into a transposed [B,S,H,D] view is a plain copy", &buf, th_to_doubles(&x),
                 exact);
  split_on_device(ctx, "split into a transposed [B,S,H,D] view", &x, (int32_t)H, &y);
  /* And merge from that view gives x back. */
  seqk_tensor back = th_tensor_new(SEQK_DTYPE_F32, 3, xs);
  th_expect_status(ctx, seqk_merge_heads(ctx, &y, &back), SEQK_STATUS_SUCCESS, NULL, "bshd merge");
  th_check_close("merge from a transposed view", &back, th_to_doubles(&x), exact);
  merge_on_device(ctx, "merge from a transposed view", &y, &back);
}

static void test_empty(seqk_context_t ctx) {
  const int64_t xs[3] = {0, 4, 6}, ys[4] = {0, 3, 4, 2};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, xs), y = th_tensor_new(SEQK_DTYPE_F32, 4, ys);
  th_expect_status(ctx, seqk_split_heads(ctx, &x, 3, &y), SEQK_STATUS_SUCCESS, NULL, "split B=0");
  th_expect_status(ctx, seqk_merge_heads(ctx, &y, &x), SEQK_STATUS_SUCCESS, NULL, "merge B=0");
  const int64_t xs0[3] = {2, 3, 0}, ys0[4] = {2, 5, 3, 0};
  seqk_tensor x0 = th_tensor_new(SEQK_DTYPE_F32, 3, xs0),
              y0 = th_tensor_new(SEQK_DTYPE_F32, 4, ys0);
  th_expect_status(ctx, seqk_split_heads(ctx, &x0, 5, &y0), SEQK_STATUS_SUCCESS, NULL, "split D=0");
  th_expect_status(ctx, seqk_merge_heads(ctx, &y0, &x0), SEQK_STATUS_SUCCESS, NULL, "merge D=0");
  /* Nothing to compare, but a kernel must not fail on an empty grid. */
  split_on_device(ctx, "split B=0", &x, 3, &y);
  merge_on_device(ctx, "merge B=0", &y, &x);
  split_on_device(ctx, "split D=0", &x0, 5, &y0);
  merge_on_device(ctx, "merge D=0", &y0, &x0);
}

/* One rejected call: INVALID_VALUE, a message naming `needle`, and `guard` (the memory the
   output lives in) byte-for-byte unchanged. */
#define BAD(call, needle, what, guard)                                                             \
  th_expect_rejected(ctx, call, SEQK_STATUS_INVALID_VALUE, needle, what, guard, 1)

static void test_bad_split(seqk_context_t ctx, th_rng *rng) {
  const int64_t xs[3] = {2, 3, 8}, ys[4] = {2, 2, 3, 4};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 3, xs), y = th_tensor_new(SEQK_DTYPE_F32, 4, ys);
  th_fill_normal(&x, rng, 1.0);
  const th_snapshot g = th_snapshot_take(&y);
  seqk_tensor t;

  TH_CHECK(seqk_split_heads(NULL, &x, 2, &y) == SEQK_STATUS_INVALID_VALUE, "split: NULL ctx");
  BAD(seqk_split_heads(ctx, NULL, 2, &y), "x", "split: NULL x", &g);
  BAD(seqk_split_heads(ctx, &x, 2, NULL), "y", "split: NULL y", &g);
  t = x;
  t.data = NULL;
  BAD(seqk_split_heads(ctx, &t, 2, &y), "x", "split: x data NULL", &g);
  t = y;
  t.data = NULL;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y data NULL", &g);
  t = x;
  t.ndim = 4;
  t.shape[3] = 1;
  t.stride[3] = 1;
  BAD(seqk_split_heads(ctx, &t, 2, &y), "x", "split: x ndim 4", &g);
  t = y;
  t.ndim = 3;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y ndim 3", &g);
  BAD(seqk_split_heads(ctx, &x, 0, &y), "num_heads", "split: num_heads 0", &g);
  BAD(seqk_split_heads(ctx, &x, -2, &y), "num_heads", "split: num_heads -2", &g);
  BAD(seqk_split_heads(ctx, &x, 3, &y), "num_heads", "split: 3 does not divide 8", &g);
  BAD(seqk_split_heads(ctx, &x, 4, &y), "y", "split: y shape for H=2 with H=4", &g);
  t = y;
  t.shape[2] = 2;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y.shape[2] != S", &g);
  t = y;
  t.shape[0] = 1;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y.shape[0] != B", &g);
  t = y;
  t.dtype = SEQK_DTYPE_BF16;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: dtype mismatch", &g);
  t = x;
  t.dtype = SEQK_DTYPE_I32;
  seqk_tensor yi = y;
  yi.dtype = SEQK_DTYPE_I32;
  BAD(seqk_split_heads(ctx, &t, 2, &yi), "x", "split: I32", &g);
  t = y;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y on CUDA", &g);
  t = x;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_split_heads(ctx, &t, 2, &y), "x", "split: x on CUDA", &g);
  t = y;
  t.stride[1] = 0;
  BAD(seqk_split_heads(ctx, &x, 2, &t), "y", "split: y elements overlap", &g);
  t = x;
  t.stride[0] = -1;
  BAD(seqk_split_heads(ctx, &t, 2, &y), "x", "split: negative stride", &g);

  /* y inside x's memory: even an exact-size alias is not allowed (it is a permutation). */
  const int64_t bs[1] = {96};
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 1, bs);
  th_fill_normal(&buf, rng, 1.0);
  const th_snapshot gb = th_snapshot_take(&buf);
  seqk_tensor xb = seqk_tensor_view(buf.data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, xs);
  seqk_tensor yb = seqk_tensor_view(buf.data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, ys);
  BAD(seqk_split_heads(ctx, &xb, 2, &yb), "y", "split: y on x's memory", &gb);
  yb.data = (float *)buf.data + 40;
  BAD(seqk_split_heads(ctx, &xb, 2, &yb), "y", "split: y overlaps x's tail", &gb);
}

static void test_bad_merge(seqk_context_t ctx, th_rng *rng) {
  const int64_t xs[4] = {2, 2, 3, 4}, ys[3] = {2, 3, 8};
  seqk_tensor x = th_tensor_new(SEQK_DTYPE_F32, 4, xs), y = th_tensor_new(SEQK_DTYPE_F32, 3, ys);
  th_fill_normal(&x, rng, 1.0);
  const th_snapshot g = th_snapshot_take(&y);
  seqk_tensor t;

  TH_CHECK(seqk_merge_heads(NULL, &x, &y) == SEQK_STATUS_INVALID_VALUE, "merge: NULL ctx");
  BAD(seqk_merge_heads(ctx, NULL, &y), "x", "merge: NULL x", &g);
  BAD(seqk_merge_heads(ctx, &x, NULL), "y", "merge: NULL y", &g);
  t = x;
  t.data = NULL;
  BAD(seqk_merge_heads(ctx, &t, &y), "x", "merge: x data NULL", &g);
  t = y;
  t.data = NULL;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y data NULL", &g);
  t = x;
  t.ndim = 3;
  BAD(seqk_merge_heads(ctx, &t, &y), "x", "merge: x ndim 3", &g);
  t = y;
  t.ndim = 4;
  t.shape[3] = 1;
  t.stride[3] = 1;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y ndim 4", &g);
  t = y;
  t.shape[2] = 6;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y.shape[2] != H*D", &g);
  t = y;
  t.shape[1] = 2;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y.shape[1] != S", &g);
  t = y;
  t.dtype = SEQK_DTYPE_F16;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: dtype mismatch", &g);
  t = y;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y on CUDA", &g);
  t = x;
  t.device = SEQK_DEVICE_CUDA;
  BAD(seqk_merge_heads(ctx, &t, &y), "x", "merge: x on CUDA", &g);
  t = y;
  t.stride[0] = 1;
  t.stride[1] = 1;
  BAD(seqk_merge_heads(ctx, &x, &t), "y", "merge: y elements overlap", &g);

  const int64_t bs[1] = {96};
  seqk_tensor buf = th_tensor_new(SEQK_DTYPE_F32, 1, bs);
  th_fill_normal(&buf, rng, 1.0);
  const th_snapshot gb = th_snapshot_take(&buf);
  seqk_tensor xb = seqk_tensor_view(buf.data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 4, xs);
  seqk_tensor yb = seqk_tensor_view((float *)buf.data + 1, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, ys);
  BAD(seqk_merge_heads(ctx, &xb, &yb), "y", "merge: y overlaps x", &gb);
}

#undef BAD

int main(void) {
  seqk_context_t ctx = th_context();
  th_rng rng;
  th_rng_seed(&rng, 91);
  test_mapping(ctx, &rng);
  test_index_mapping_by_value(ctx);
  test_bshd_views(ctx, &rng);
  test_empty(ctx);
  test_bad_split(ctx, &rng);
  test_bad_merge(ctx, &rng);
  seqk_context_destroy(ctx);
  return th_finish();
}
