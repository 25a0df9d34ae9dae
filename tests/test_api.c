/*
 * test_api.c - version, status strings, the context, tensor descriptors, allocation, copies with
 * dtype conversion and strides on the CPU, the f16/bf16 rounding rules, and bad input to all of
 * them.
 */
#include "harness.h"
#include "geometry.h"
#include "internal.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

static void test_version_and_status(void) {
  TH_CHECK(seqk_version() == SEQK_VERSION, "library %d vs header %d", seqk_version(), SEQK_VERSION);
  TH_CHECK(
      SEQK_VERSION == SEQK_VERSION_MAJOR * 10000 + SEQK_VERSION_MINOR * 100 + SEQK_VERSION_PATCH,
      "version macro");
  for (int s = SEQK_STATUS_SUCCESS; s <= SEQK_STATUS_INTERNAL_ERROR; ++s) {
    const char *text = seqk_status_string((seqk_status)s);
    TH_CHECK(text && text[0], "status %d has no text", s);
    for (int o = SEQK_STATUS_SUCCESS; o < s; ++o)
      TH_CHECK(strcmp(text, seqk_status_string((seqk_status)o)) != 0,
               "status %d and %d share a text", s, o);
  }
  TH_CHECK(strcmp(seqk_status_string((seqk_status)1234), "unknown status") == 0, "unknown status");
}

static void test_context(void) {
  seqk_context_t ctx = NULL;
  TH_CHECK(seqk_context_create(NULL) == SEQK_STATUS_INVALID_VALUE, "create(NULL)");
  TH_CHECK(seqk_context_create(&ctx) == SEQK_STATUS_SUCCESS && ctx, "create");
  TH_CHECK(strcmp(seqk_context_last_error(ctx), "") == 0, "a new context has no error");
  TH_CHECK(seqk_context_set_stream(ctx, NULL) == SEQK_STATUS_SUCCESS, "set_stream(NULL)");
  TH_CHECK(seqk_context_set_stream(NULL, NULL) == SEQK_STATUS_INVALID_VALUE, "set_stream on NULL");
  TH_CHECK(seqk_context_last_error(NULL) && seqk_context_last_error(NULL)[0], "last_error(NULL)");
  TH_CHECK(seqk_cuda_device_count() >= 0, "device count");
  /* Device-check modes: NULL and unknown modes refused; WAIT always works; DEFERRED needs a device
     (test_embedding covers what it does); a check with nothing recorded succeeds. */
  TH_CHECK(
      seqk_context_set_device_checks(NULL, SEQK_DEVICE_CHECKS_WAIT) == SEQK_STATUS_INVALID_VALUE,
      "set_device_checks on NULL");
  th_expect_status(ctx, seqk_context_set_device_checks(ctx, (seqk_device_checks)-1),
                   SEQK_STATUS_INVALID_VALUE, "mode=-1", "set_device_checks(unknown mode)");
  TH_CHECK(seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_WAIT) == SEQK_STATUS_SUCCESS,
           "set_device_checks(WAIT)");
  th_expect_status(ctx, seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED),
                   seqk_cuda_device_count() > 0 ? SEQK_STATUS_SUCCESS : SEQK_STATUS_NO_DEVICE, NULL,
                   "set_device_checks(DEFERRED)");
  TH_CHECK(seqk_context_check(NULL) == SEQK_STATUS_INVALID_VALUE, "check on NULL");
  TH_CHECK(seqk_context_check(ctx) == SEQK_STATUS_SUCCESS, "check with nothing recorded");
  /* Element alignment: an F32 view 2 bytes into a buffer is refused by name, nothing written. */
  {
    static float buf[8], out[4];
    int64_t n = 4;
    seqk_tensor x = seqk_tensor_view((char *)buf + 2, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, &n);
    seqk_tensor y = seqk_tensor_view(out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, &n);
    th_expect_rejected(ctx, seqk_softmax(ctx, &x, 0, &y), SEQK_STATUS_INVALID_VALUE, "x.data",
                       "a misaligned F32 view", TH_SNAPS(th_snapshot_take(&y)));
  }
  /* A context destroyed with tensors still allocated frees them (ASan/LSan would report a leak). */
  seqk_tensor t;
  int64_t shape[2] = {3, 5};
  TH_CHECK(
      seqk_tensor_alloc(ctx, &t, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape) == SEQK_STATUS_SUCCESS,
      "alloc before destroy");
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy");
  TH_CHECK(seqk_context_destroy(NULL) == SEQK_STATUS_SUCCESS, "destroy(NULL)");
}

static void test_view_and_alloc(seqk_context_t ctx) {
  int64_t shape[3] = {2, 3, 4};
  seqk_tensor v = seqk_tensor_view((void *)0x1000, SEQK_DTYPE_F16, SEQK_DEVICE_CPU, 3, shape);
  TH_CHECK(v.ndim == 3 && v.stride[0] == 12 && v.stride[1] == 4 && v.stride[2] == 1,
           "view strides");
  TH_CHECK(seqk_tensor_view(NULL, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 7, shape).ndim == -1,
           "view ndim 7");
  TH_CHECK(seqk_tensor_view(NULL, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, NULL).ndim == -1,
           "view NULL shape");
  const int64_t transposed[3] = {1, 2, 6};
  seqk_tensor vs = seqk_tensor_view_strided((void *)0x1000, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 3,
                                            shape, transposed);
  TH_CHECK(vs.ndim == 3 && vs.device == SEQK_DEVICE_CUDA && vs.shape[2] == 4 && vs.stride[0] == 1 &&
               vs.stride[1] == 2 && vs.stride[2] == 6,
           "strided view");
  TH_CHECK(
      seqk_tensor_view_strided(NULL, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape, NULL).ndim == -1,
      "strided view with NULL strides");
  seqk_tensor s = seqk_tensor_view((void *)0x1000, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 0, NULL);
  TH_CHECK(s.ndim == 0, "scalar view");
  TH_CHECK(seqk_dtype_size(SEQK_DTYPE_F32) == 4 && seqk_dtype_size(SEQK_DTYPE_F16) == 2 &&
               seqk_dtype_size(SEQK_DTYPE_BF16) == 2 && seqk_dtype_size(SEQK_DTYPE_I32) == 4 &&
               seqk_dtype_size((seqk_dtype)9) == 0,
           "dtype sizes");

  seqk_tensor a;
  TH_CHECK(
      seqk_tensor_alloc(ctx, &a, SEQK_DTYPE_BF16, SEQK_DEVICE_CPU, 3, shape) == SEQK_STATUS_SUCCESS,
      "alloc");
  TH_CHECK(a.data && ((uintptr_t)a.data % 64) == 0 && a.stride[0] == 12, "alloc layout");
  memset(a.data, 0, 24 * 2); /* the memory is ours to write */
  seqk_tensor copy = a;
  TH_CHECK(seqk_tensor_free(ctx, &a) == SEQK_STATUS_SUCCESS && a.data == NULL, "free zeroes");
  th_expect_status(ctx, seqk_tensor_free(ctx, &copy), SEQK_STATUS_INVALID_VALUE, "t.data",
                   "double free is rejected");
  float local[4];
  seqk_tensor foreign = seqk_tensor_view(local, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, (int64_t[]){4});
  th_expect_status(ctx, seqk_tensor_free(ctx, &foreign), SEQK_STATUS_INVALID_VALUE, "t.data",
                   "freeing a view is rejected");
  TH_CHECK(seqk_tensor_free(ctx, NULL) == SEQK_STATUS_SUCCESS, "free(NULL)");

  int64_t empty_shape[2] = {0, 7};
  seqk_tensor e;
  TH_CHECK(seqk_tensor_alloc(ctx, &e, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, empty_shape) ==
                   SEQK_STATUS_SUCCESS &&
               e.data == NULL,
           "empty alloc");
  TH_CHECK(seqk_tensor_free(ctx, &e) == SEQK_STATUS_SUCCESS, "free empty");

  /* bad allocations leave *out untouched */
  seqk_tensor out;
  memset(&out, 0xAB, sizeof out);
  seqk_tensor before = out;
  int64_t neg[2] = {2, -1};
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, neg),
                   SEQK_STATUS_INVALID_VALUE, "shape[1]", "negative extent");
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 7, shape),
                   SEQK_STATUS_INVALID_VALUE, "ndim", "ndim 7");
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, (seqk_dtype)17, SEQK_DEVICE_CPU, 1, shape),
                   SEQK_STATUS_INVALID_VALUE, "dtype", "bad dtype");
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, (seqk_device)5, 1, shape),
                   SEQK_STATUS_INVALID_VALUE, "device", "bad device");
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, NULL),
                   SEQK_STATUS_INVALID_VALUE, "shape", "NULL shape");
  th_expect_status(ctx, seqk_tensor_alloc(ctx, NULL, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, shape),
                   SEQK_STATUS_INVALID_VALUE, "out", "NULL out");
  int64_t huge[3] = {INT64_C(1) << 40, INT64_C(1) << 40, 1 << 20};
  th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 3, huge),
                   SEQK_STATUS_INVALID_VALUE, "out", "element count overflow");
  if (seqk_cuda_device_count() == 0)
    th_expect_status(ctx, seqk_tensor_alloc(ctx, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 2, shape),
                     SEQK_STATUS_NO_DEVICE, "CUDA", "CUDA alloc without a device");
  TH_CHECK(memcmp(&out, &before, sizeof out) == 0, "failed allocs leave *out untouched");
  TH_CHECK(seqk_tensor_alloc(NULL, &out, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, shape) ==
               SEQK_STATUS_INVALID_VALUE,
           "NULL ctx");
}

/* Known encodings: the conversions must round to nearest even and handle the edges. */
static void test_half_rounding(void) {
  struct {
    double v;
    uint16_t f16, bf16;
  } cases[] = {
      {1.0, 0x3C00, 0x3F80},
      {-2.0, 0xC000, 0xC000},
      {65504.0, 0x7BFF, 0x4780}, /* bf16: 1.99902 * 2^15 rounds up to 2^16 */
      {65520.0, 0x7C00, 0x4780}, /* f16: the tie above the max rounds to inf */
      {65519.99, 0x7BFF, 0x4780},
      {1.0 + 0x1.0p-11, 0x3C00, 0x3F80},     /* f16 tie to even (down) */
      {1.0 + 3 * 0x1.0p-11, 0x3C02, 0x3F80}, /* f16 tie to even (up) */
      {1.0 + 0x1.0p-8, 0x3C04, 0x3F80},      /* bf16 tie to even (down) */
      {1.0 + 3 * 0x1.0p-8, 0x3C0C, 0x3F82},  /* bf16 tie to even (up) */
      {0x1.0p-24, 0x0001, 0x3380},           /* smallest f16 subnormal */
      {0x1.0p-25, 0x0000, 0x3300},           /* tie to even: zero */
      {0x1.8p-25, 0x0001, 0x3340},
      {0x1.0p-14, 0x0400, 0x3880},   /* smallest f16 normal */
      {0x1.ffcp-15, 0x0400, 0x3880}, /* f16: the largest subnormal rounds up to the normal */
      {0x1.0p-133, 0x0000, 0x0001},  /* smallest bf16 subnormal */
      {3.0e38, 0x7C00, 0x7F62},
      {INFINITY, 0x7C00, 0x7F80},
      {-INFINITY, 0xFC00, 0xFF80},
      {-0.0, 0x8000, 0x8000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    uint16_t h = seqk__double_to_f16(cases[i].v), b = seqk__double_to_bf16(cases[i].v);
    TH_CHECK(h == cases[i].f16, "f16(%a) = 0x%04X, expected 0x%04X", cases[i].v, h, cases[i].f16);
    TH_CHECK(b == cases[i].bf16, "bf16(%a) = 0x%04X, expected 0x%04X", cases[i].v, b,
             cases[i].bf16);
  }
  TH_CHECK(isnan(seqk__f16_to_float(seqk__double_to_f16(NAN))) &&
               isnan(seqk__bf16_to_float(seqk__double_to_bf16(NAN))),
           "NaN survives");
  /* Every f16 and bf16 bit pattern that is a number decodes and re-encodes to itself. */
  int round_trip_ok = 1;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    float h = seqk__f16_to_float((uint16_t)bits), b = seqk__bf16_to_float((uint16_t)bits);
    if (!isnan(h) && seqk__double_to_f16(h) != bits) round_trip_ok = 0;
    if (!isnan(b) && seqk__double_to_bf16(b) != bits) round_trip_ok = 0;
  }
  TH_CHECK(round_trip_ok, "16-bit round trips");
}

static void test_copy(seqk_context_t ctx) {
  th_rng rng;
  th_rng_seed(&rng, 11);
  const seqk_dtype dtypes[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
  int64_t shape[3] = {3, 5, 7}, pad_a[3] = {0, 2, 3}, pad_b[3] = {1, 0, 5};
  for (int s = 0; s < 3; ++s) {
    for (int d = 0; d < 3; ++d) {
      seqk_tensor src = th_tensor_strided(dtypes[s], 3, shape, pad_a, 2);
      seqk_tensor dst = th_tensor_strided(dtypes[d], 3, shape, pad_b, 1);
      th_fill_uniform(&src, &rng, -3, 3);
      th_snapshot gaps = th_snapshot_take(&dst); /* poison between dst's elements must stay */
      double *ref = th_to_doubles(&src);
      for (int64_t i = 0; i < th_numel(&src); ++i) ref[i] = seqk__round_to_dtype(ref[i], dtypes[d]);
      TH_CHECK(seqk_tensor_copy(ctx, &dst, &src) == SEQK_STATUS_SUCCESS, "copy %d->%d", s, d);
      th_check_close("strided converting copy", &dst, ref, (th_tol){0, 0});
      /* restore the copied elements to poison: then the whole span must equal the snapshot */
      for (int64_t i = 0; i < th_numel(&dst); ++i) {
        int64_t off = seqk__offset_of_linear(&dst, i);
        memset((char *)dst.data + off * (int64_t)seqk_dtype_size(dst.dtype), 0xFF,
               seqk_dtype_size(dst.dtype));
      }
      TH_CHECK(th_snapshot_unchanged(&gaps), "copy wrote outside dst's elements");
    }
  }
  /* I32 copies and broadcast (stride 0) sources */
  int32_t vals[4] = {7, -3, 2147483647, -2147483647 - 1};
  seqk_tensor isrc = th_tensor_new(SEQK_DTYPE_I32, 1, (int64_t[]){4});
  seqk_tensor idst = th_tensor_strided(SEQK_DTYPE_I32, 1, (int64_t[]){4}, NULL, 3);
  th_fill_i32(&isrc, vals);
  TH_CHECK(seqk_tensor_copy(ctx, &idst, &isrc) == SEQK_STATUS_SUCCESS, "I32 copy");
  int same = 1;
  for (int i = 0; i < 4; ++i) same &= ((int32_t *)idst.data)[3 * i] == vals[i];
  TH_CHECK(same, "I32 values copied exactly");
  seqk_tensor bsrc = th_tensor_new(SEQK_DTYPE_F32, 2, (int64_t[]){1, 4});
  th_fill_uniform(&bsrc, &rng, 1, 2);
  bsrc.shape[0] = 3;
  bsrc.stride[0] = 0; /* broadcast one row three times */
  seqk_tensor bdst = th_tensor_new(SEQK_DTYPE_F32, 2, (int64_t[]){3, 4});
  TH_CHECK(seqk_tensor_copy(ctx, &bdst, &bsrc) == SEQK_STATUS_SUCCESS, "broadcast copy");
  th_check_close("broadcast copy", &bdst, th_to_doubles(&bsrc), (th_tol){0, 0});
  /* empty tensors copy trivially */
  seqk_tensor z1 = th_tensor_new(SEQK_DTYPE_F32, 2, (int64_t[]){0, 4});
  seqk_tensor z2 = th_tensor_new(SEQK_DTYPE_F16, 2, (int64_t[]){0, 4});
  TH_CHECK(seqk_tensor_copy(ctx, &z2, &z1) == SEQK_STATUS_SUCCESS, "empty copy");
}

static void test_copy_bad_input(seqk_context_t ctx) {
  int64_t shape[2] = {4, 6};
  seqk_tensor src = th_tensor_new(SEQK_DTYPE_F32, 2, shape);
  seqk_tensor dst = th_tensor_new(SEQK_DTYPE_F16, 2, shape);
  th_rng rng;
  th_rng_seed(&rng, 5);
  th_fill_uniform(&src, &rng, -1, 1);
  th_poison(&dst);
  th_snapshot snap = th_snapshot_take(&dst);

  th_expect_status(ctx, seqk_tensor_copy(ctx, NULL, &src), SEQK_STATUS_INVALID_VALUE, "dst",
                   "NULL dst");
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, NULL), SEQK_STATUS_INVALID_VALUE, "src",
                   "NULL src");
  TH_CHECK(seqk_tensor_copy(NULL, &dst, &src) == SEQK_STATUS_INVALID_VALUE, "NULL ctx");
  seqk_tensor bad = src;
  bad.shape[1] = 5;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, &bad), SEQK_STATUS_INVALID_VALUE,
                   "dst.shape[1]", "shape mismatch");
  bad = src;
  bad.ndim = 3;
  bad.shape[2] = 1;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, &bad), SEQK_STATUS_INVALID_VALUE, "dst.ndim",
                   "ndim mismatch");
  bad = src;
  bad.data = NULL;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, &bad), SEQK_STATUS_INVALID_VALUE, "src.data",
                   "NULL data");
  bad = src;
  bad.stride[0] = -6;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, &bad), SEQK_STATUS_INVALID_VALUE,
                   "src.stride[0]", "negative stride");
  bad = src;
  bad.dtype = SEQK_DTYPE_I32;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &dst, &bad), SEQK_STATUS_INVALID_VALUE, "dtype",
                   "I32 to F16");
  seqk_tensor overlapping = dst;
  overlapping.stride[0] = 0;
  th_expect_status(ctx, seqk_tensor_copy(ctx, &overlapping, &src), SEQK_STATUS_INVALID_VALUE, "dst",
                   "dst with overlapping elements");
  seqk_tensor self = src; /* dst over the same memory as src */
  th_expect_status(ctx, seqk_tensor_copy(ctx, &self, &src), SEQK_STATUS_INVALID_VALUE, "overlaps",
                   "dst overlapping src");
  if (seqk_cuda_device_count() == 0) {
    seqk_tensor on_cuda = dst; /* a CUDA descriptor over host memory: must fail before use */
    on_cuda.device = SEQK_DEVICE_CUDA;
    th_expect_status(ctx, seqk_tensor_copy(ctx, &on_cuda, &src), SEQK_STATUS_NO_DEVICE, "CUDA",
                     "copy to CUDA without a device");
  }
  TH_CHECK(th_snapshot_unchanged(&snap), "rejected copies wrote nothing");
}

int main(void) {
  seqk_context_t ctx = th_context();
  test_version_and_status();
  test_context();
  test_view_and_alloc(ctx);
  test_half_rounding();
  test_copy(ctx);
  test_copy_bad_input(ctx);
  seqk_context_destroy(ctx);
  return th_finish();
}
