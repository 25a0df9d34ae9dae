/*
 * test_reliability.c - rules that cut across ops, found by trying every entry adversarially, each
 * checked on CPU tensors and, where a device exists, on CUDA tensors:
 *   - empty outputs with huge extents elsewhere (stride-0 inputs naming 2^40..2^61 positions of
 *     one element): every op returns at once (the references used to walk the extents, and an
 *     -O0 build did not return), and validation accepts an empty tensor whatever its other
 *     extents and strides;
 *   - an embedding check over a broadcast index tensor reads each distinct index once and names
 *     the first bad position of the whole tensor;
 *   - data movement of one dtype keeps the bits (NaN payloads, -0): tensor_copy, split/merge heads,
 *     embedding, as the kernels do;
 *   - sizes whose products overflow int64 are rejected, not computed (rnn_cell's G*H);
 *   - lengths an op on CUDA tensors reads on the device must be device-readable (host arrays
 *     rejected before anything runs);
 *   - outputs are judged by their elements, not their bounding boxes: interleaved strides and
 *     views interleaved with an input are accepted, real overlaps still rejected.
 */
#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const int64_t kHuge40 = (int64_t)1 << 40;

/* A CPU descriptor over `data` with the given shape and strides. */
static seqk_tensor view(void *data, seqk_dtype dt, int32_t ndim, const int64_t *shape,
                        const int64_t *stride) {
  return seqk_tensor_view_strided(data, dt, SEQK_DEVICE_CPU, ndim, shape, stride);
}

/* ---- empty outputs, huge extents ---------------------------------------------------------------- */

static void test_huge_empty(seqk_context_t ctx) {
  static float cell[64];
  const int64_t zeros[6] = {0, 0, 0, 0, 0, 0};
  /* merge_heads: x [2, 2^61, 1, 0] (the head dim broadcast), y [2, 1, 0]. */
  {
    const int64_t xs[4] = {2, (int64_t)1 << 61, 1, 0}, ys[3] = {2, 1, 0};
    seqk_tensor x = view(cell, SEQK_DTYPE_F32, 4, xs, zeros), y = view(cell + 8, SEQK_DTYPE_F32, 3, ys, zeros);
    th_expect_status(ctx, seqk_merge_heads(ctx, &x, &y), SEQK_STATUS_SUCCESS, NULL,
                     "merge_heads into an empty y over 2^61 heads");
  }
  /* split_heads: x [2, 1, 0] into y [2, 2^31-1 heads, 1, 0]. */
  {
    const int64_t xs[3] = {2, 1, 0}, ys[4] = {2, INT32_MAX, 1, 0};
    seqk_tensor x = view(cell, SEQK_DTYPE_F32, 3, xs, zeros), y = view(cell + 8, SEQK_DTYPE_F32, 4, ys, zeros);
    th_expect_status(ctx, seqk_split_heads(ctx, &x, INT32_MAX, &y), SEQK_STATUS_SUCCESS, NULL,
                     "split_heads into an empty y of 2^31 - 1 heads");
  }
  /* attention_scores with no key over 2^40 broadcast query heads; attention_values with no key
     and Dv = 0. */
  {
    const int64_t qs[4] = {1, kHuge40, 1, 4}, ks[4] = {1, 1, 0, 4}, ss[4] = {1, kHuge40, 1, 0};
    seqk_tensor q = view(cell, SEQK_DTYPE_F32, 4, qs, zeros), k = view(cell + 8, SEQK_DTYPE_F32, 4, ks, zeros);
    seqk_tensor s = view(cell + 16, SEQK_DTYPE_F32, 4, ss, zeros);
    th_expect_status(ctx, seqk_attention_scores(ctx, &q, &k, 0.0f, 0, &s), SEQK_STATUS_SUCCESS,
                     NULL, "attention_scores into an empty s over 2^40 heads");
    const int64_t ps[4] = {1, kHuge40, 1, 0}, vs[4] = {1, 1, 0, 0}, os[4] = {1, kHuge40, 1, 0};
    seqk_tensor p = view(cell, SEQK_DTYPE_F32, 4, ps, zeros), v = view(cell + 8, SEQK_DTYPE_F32, 4, vs, zeros);
    seqk_tensor o = view(cell + 16, SEQK_DTYPE_F32, 4, os, zeros);
    th_expect_status(ctx, seqk_attention_values(ctx, &p, &v, &o), SEQK_STATUS_SUCCESS, NULL,
                     "attention_values into an empty o over 2^40 heads");
  }
  /* Validation: an empty tensor whose other extents multiply past 2^63 is still just empty. */
  {
    const int64_t xs[3] = {(int64_t)1 << 62, (int64_t)1 << 62, 0};
    const int64_t big[3] = {(int64_t)1 << 62, 1, 1};
    seqk_tensor x = view(cell, SEQK_DTYPE_F32, 3, xs, big), y = view(cell + 8, SEQK_DTYPE_F32, 3, xs, big);
    th_expect_status(ctx, seqk_softmax(ctx, &x, -1, &y), SEQK_STATUS_SUCCESS, NULL,
                     "softmax of an empty [2^62, 2^62, 0] tensor");
  }
}

/* ---- embedding over broadcast indices ---------------------------------------------------------- */

static void test_embedding_broadcast(seqk_context_t ctx) {
  static int32_t ids[2] = {3, 7};
  static float table[16];
  const int64_t is[2] = {kHuge40, 2}, istride[2] = {0, 1}, ts[2] = {5, 0}, tstride[2] = {0, 1};
  const int64_t os[3] = {kHuge40, 2, 0}, ostride[3] = {0, 0, 1};
  seqk_tensor idx = view(ids, SEQK_DTYPE_I32, 2, is, istride);
  seqk_tensor tab = view(table, SEQK_DTYPE_F32, 2, ts, tstride);
  seqk_tensor out = view(table + 8, SEQK_DTYPE_F32, 3, os, ostride);
  /* 2^41 positions, two distinct values; 7 >= V = 5 first appears at position [0,1]. */
  th_expect_status(ctx, seqk_embedding(ctx, &idx, &tab, &out), SEQK_STATUS_INVALID_VALUE,
                   "indices[0,1]", "embedding over 2^41 broadcast indices, one bad");
  ids[1] = 4;
  th_expect_status(ctx, seqk_embedding(ctx, &idx, &tab, &out), SEQK_STATUS_SUCCESS, NULL,
                   "embedding over 2^41 broadcast indices into an empty out");
  if (seqk_cuda_device_count() == 0) return;
  seqk_tensor d_ids, d_tab;
  const int64_t two[1] = {2}, one[1] = {1};
  seqk_tensor host_ids = seqk_tensor_view(ids, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, two);
  seqk_tensor host_tab = seqk_tensor_view(table, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, one);
  ids[1] = 7;
  if (seqk_tensor_alloc(ctx, &d_ids, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, two) != SEQK_STATUS_SUCCESS ||
      seqk_tensor_alloc(ctx, &d_tab, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 1, one) != SEQK_STATUS_SUCCESS ||
      seqk_tensor_copy(ctx, &d_ids, &host_ids) != SEQK_STATUS_SUCCESS ||
      seqk_tensor_copy(ctx, &d_tab, &host_tab) != SEQK_STATUS_SUCCESS) {
    TH_CHECK(0, "setting up CUDA tensors: %s", seqk_context_last_error(ctx));
    return;
  }
  seqk_tensor di = idx, dt = tab, d_out = out;
  di.device = dt.device = d_out.device = SEQK_DEVICE_CUDA;
  di.data = d_ids.data;
  dt.data = d_out.data = d_tab.data;
  th_expect_status(ctx, seqk_embedding(ctx, &di, &dt, &d_out), SEQK_STATUS_INVALID_VALUE,
                   "indices[0,1]", "embedding over 2^41 broadcast indices, one bad (CUDA)");
  ids[1] = 4;
  seqk_tensor_copy(ctx, &d_ids, &host_ids);
  th_expect_status(ctx, seqk_embedding(ctx, &di, &dt, &d_out), SEQK_STATUS_SUCCESS, NULL,
                   "embedding over 2^41 broadcast indices into an empty out (CUDA)");
  seqk_tensor_free(ctx, &d_ids);
  seqk_tensor_free(ctx, &d_tab);
}

/* ---- bits of one dtype moved as bits ---------------------------------------------------------- */

static const uint16_t kF16Bits[4] = {0x7E01, 0xFC01, 0x8000, 0x3C00};   /* NaN payloads, -0, 1 */
static const uint16_t kBf16Bits[4] = {0xFFC1, 0x7F81, 0x8000, 0x3F80};

/* Every element of `got` (n 16-bit values, row-major contiguous) equals want[i % 4]. */
static int same_bits(const uint16_t *got, int64_t n, const uint16_t *want) {
  for (int64_t i = 0; i < n; ++i)
    if (got[i] != want[i % 4]) return 0;
  return 1;
}

/* dst = op(src) on CPU tensors, then the same with CUDA copies of both when a device exists; the
   result's bits are checked each time. op: 0 tensor_copy, 1 split_heads (2 heads), 2 merge_heads,
   3 embedding (table = src, indices 0..rows-1). */
static void check_bits(seqk_context_t ctx, int op, seqk_dtype dt, const char *what) {
  const uint16_t *want = dt == SEQK_DTYPE_F16 ? kF16Bits : kBf16Bits;
  uint16_t src_bits[16], dst_bits[16];
  for (int i = 0; i < 16; ++i) src_bits[i] = want[i % 4];
  const int64_t flat[1] = {16}, bsx[3] = {1, 2, 8}, bhsd[4] = {1, 2, 2, 4}, tab[2] = {4, 4};
  const int64_t n_ids[1] = {4};
  int32_t ids[4] = {0, 1, 2, 3};
  seqk_tensor src, dst, idx = seqk_tensor_view(ids, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, n_ids);
  switch (op) {
    case 0:
      src = seqk_tensor_view(src_bits, dt, SEQK_DEVICE_CPU, 1, flat);
      dst = seqk_tensor_view(dst_bits, dt, SEQK_DEVICE_CPU, 1, flat);
      break;
    case 1:
      src = seqk_tensor_view(src_bits, dt, SEQK_DEVICE_CPU, 3, bsx);
      dst = seqk_tensor_view(dst_bits, dt, SEQK_DEVICE_CPU, 4, bhsd);
      break;
    case 2:
      src = seqk_tensor_view(src_bits, dt, SEQK_DEVICE_CPU, 4, bhsd);
      dst = seqk_tensor_view(dst_bits, dt, SEQK_DEVICE_CPU, 3, bsx);
      break;
    default:
      src = seqk_tensor_view(src_bits, dt, SEQK_DEVICE_CPU, 2, tab);
      dst = seqk_tensor_view(dst_bits, dt, SEQK_DEVICE_CPU, 2, tab);
      break;
  }
  for (int dev = 0; dev < 2; ++dev) {
    if (dev && seqk_cuda_device_count() == 0) break;
    seqk_tensor s = src, d = dst, i = idx, bs, bd, bi;
    memset(dst_bits, 0, sizeof dst_bits);
    if (dev) {
      if (seqk_tensor_alloc(ctx, &bs, dt, SEQK_DEVICE_CUDA, src.ndim, src.shape) ||
          seqk_tensor_alloc(ctx, &bd, dt, SEQK_DEVICE_CUDA, dst.ndim, dst.shape) ||
          seqk_tensor_alloc(ctx, &bi, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, n_ids) ||
          seqk_tensor_copy(ctx, &bs, &src) || seqk_tensor_copy(ctx, &bi, &idx)) {
        TH_CHECK(0, "%s: CUDA setup: %s", what, seqk_context_last_error(ctx));
        return;
      }
      s = bs;
      d = bd;
      i = bi;
    }
    seqk_status st;
    switch (op) {
      case 0: st = seqk_tensor_copy(ctx, &d, &s); break;
      case 1: st = seqk_split_heads(ctx, &s, 2, &d); break;
      case 2: st = seqk_merge_heads(ctx, &s, &d); break;
      default: st = seqk_embedding(ctx, &i, &s, &d); break;
    }
    if (dev && st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(ctx, &dst, &d);
    char label[160];
    snprintf(label, sizeof label, "%s (%s, %s)", what, th_dtype_name(dt), dev ? "CUDA" : "CPU");
    if (th_expect_status(ctx, st, SEQK_STATUS_SUCCESS, NULL, label)) {
      /* split/merge permute: compare as a multiset of the pattern's position classes, which the
         permutations here keep (head dim 4 = the pattern's period). */
      TH_CHECK(same_bits(dst_bits, 16, want), "%s: the bits changed (first %#06x)", label,
               (unsigned)dst_bits[0]);
    }
    if (dev) {
      seqk_tensor_free(ctx, &bs);
      seqk_tensor_free(ctx, &bd);
      seqk_tensor_free(ctx, &bi);
    }
  }
}

static void test_nan_payloads(seqk_context_t ctx) {
  static const char *const names[4] = {"tensor_copy", "split_heads", "merge_heads", "embedding"};
  for (int op = 0; op < 4; ++op) {
    check_bits(ctx, op, SEQK_DTYPE_F16, names[op]);
    check_bits(ctx, op, SEQK_DTYPE_BF16, names[op]);
  }
  /* Host <-> device staging of one dtype keeps the bits too (covered above through the copies
     into and out of CUDA tensors). */
}

/* ---- int64 overflow of sizes -------------------------------------------------------------------- */

static void test_size_overflow(seqk_context_t ctx) {
  static float cell[16];
  const int64_t zeros[2] = {0, 0};
  const int64_t xs[2] = {0, 3}, whh[2] = {0, (int64_t)1 << 62}, wih[2] = {0, 3};
  const int64_t hs[2] = {0, (int64_t)1 << 62};
  seqk_tensor x = view(cell, SEQK_DTYPE_F32, 2, xs, zeros);
  seqk_tensor w_ih = view(cell, SEQK_DTYPE_F32, 2, wih, zeros);
  seqk_tensor w_hh = view(cell, SEQK_DTYPE_F32, 2, whh, zeros);
  seqk_tensor h_out = view(cell + 8, SEQK_DTYPE_F32, 2, hs, zeros);
  const seqk_rnn_mode modes[2] = {SEQK_RNN_MODE_LSTM, SEQK_RNN_MODE_GRU};
  for (int m = 0; m < 2; ++m)
    th_expect_status(ctx,
                     seqk_rnn_cell(ctx, modes[m], &x, NULL, NULL, &w_ih, &w_hh, NULL, NULL, &h_out,
                                   m == 0 ? &h_out : NULL),
                     SEQK_STATUS_INVALID_VALUE, "w_hh", "rnn_cell with H = 2^62 (G*H overflows)");
}

/* ---- outputs decided by their elements, not their bounding boxes --------------------------------- */

static void test_exact_overlap(seqk_context_t ctx) {
  static float buf[64];
  for (int i = 0; i < 64; ++i) buf[i] = (float)i;
  /* y [3, 2] with strides [2, 3]: offsets 0 3 2 5 4 7, all distinct though the dims interleave. */
  const int64_t shape[2] = {3, 2}, ystride[2] = {2, 3};
  static float src_data[6] = {1, 2, 3, 4, 5, 6};
  seqk_tensor src = seqk_tensor_view(src_data, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 2, shape);
  seqk_tensor y = view(buf + 32, SEQK_DTYPE_F32, 2, shape, ystride);
  th_expect_status(ctx, seqk_tensor_copy(ctx, &y, &src), SEQK_STATUS_SUCCESS, NULL,
                   "copy into y [3,2] with strides [2,3] (distinct elements)");
  TH_CHECK(buf[32] == 1 && buf[35] == 2 && buf[34] == 3 && buf[37] == 4 && buf[36] == 5 &&
               buf[39] == 6,
           "the interleaved-stride copy wrote every element where it belongs");
  /* Odd elements from even ones of the same buffer: disjoint, interleaved on stride 2. */
  const int64_t n8[1] = {8}, two[1] = {2};
  seqk_tensor even = view(buf, SEQK_DTYPE_F32, 1, n8, two), odd = view(buf + 1, SEQK_DTYPE_F32, 1, n8, two);
  th_expect_status(ctx, seqk_tensor_copy(ctx, &odd, &even), SEQK_STATUS_SUCCESS, NULL,
                   "copy the even elements of a buffer onto its odd ones");
  TH_CHECK(buf[1] == 0 && buf[15] == 14, "odd elements now hold their even neighbours");
  /* ... but a real overlap is still one. */
  const int64_t one[1] = {1};
  seqk_tensor front = view(buf, SEQK_DTYPE_F32, 1, n8, one);
  th_expect_status(ctx, seqk_tensor_copy(ctx, &odd, &front), SEQK_STATUS_INVALID_VALUE, "dst",
                   "copy elements 0..7 onto the odd elements 1..15");
  /* Interleaved halves far beyond enumeration (2^21 elements each): the residue test decides. */
  const int64_t big_n = (int64_t)1 << 21, big[1] = {big_n};
  float *mem = (float *)th_alloc((size_t)(2 * big_n) * sizeof(float));
  seqk_tensor e2 = view(mem, SEQK_DTYPE_F32, 1, big, two), o2 = view(mem + 1, SEQK_DTYPE_F32, 1, big, two);
  for (int64_t i = 0; i < 2 * big_n; ++i) mem[i] = (float)(i & 1023);
  th_expect_status(ctx, seqk_tensor_copy(ctx, &o2, &e2), SEQK_STATUS_SUCCESS, NULL,
                   "copy 2^21 even elements onto the odd ones");
}

/* ---- lengths a CUDA call reads on the device -------------------------------------------------- */

/* seqlens_q/k of an op on CUDA tensors are device arrays: a plain host array is rejected (it would
   fault on a GPU) before anything runs; device memory passes. */
static void test_device_lengths(seqk_context_t ctx) {
  if (seqk_cuda_device_count() == 0) return;
  const int64_t s4[4] = {2, 1, 3, 8}, s3[3] = {2, 1, 3}, two[1] = {2};
  seqk_tensor q, o, lse, lens;
  static int32_t host_lens[2] = {3, 2};
  if (seqk_tensor_alloc(ctx, &q, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 4, s4) ||
      seqk_tensor_alloc(ctx, &o, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 4, s4) ||
      seqk_tensor_alloc(ctx, &lse, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, s3) ||
      seqk_tensor_alloc(ctx, &lens, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, two)) {
    TH_CHECK(0, "CUDA setup: %s", seqk_context_last_error(ctx));
    return;
  }
  seqk_tensor h = seqk_tensor_view(host_lens, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, two);
  const int64_t n = 2 * 3 * 8, flat[1] = {n};
  float *ones = (float *)th_alloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; ++i) ones[i] = 0.5f;
  seqk_tensor hq = seqk_tensor_view(ones, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, flat);
  seqk_tensor dq = seqk_tensor_view(q.data, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 1, flat);
  seqk_tensor_copy(ctx, &dq, &hq);
  seqk_tensor_copy(ctx, &lens, &h);
  for (int which = 0; which < 2; ++which) {
    seqk_attention_params p = {0.0f, 0, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL, 0, 0, 0, 0.0f, NULL};
    if (which) p.seqlens_k = host_lens;
    else p.seqlens_q = host_lens;
    th_expect_status(ctx, seqk_attention(ctx, &p, &q, &q, &q, &o, &lse), SEQK_STATUS_INVALID_VALUE,
                     which ? "params.seqlens_k" : "params.seqlens_q",
                     "attention on CUDA tensors with host lengths");
    if (which) p.seqlens_k = (const int32_t *)lens.data;
    else p.seqlens_q = (const int32_t *)lens.data;
    th_expect_status(ctx, seqk_attention(ctx, &p, &q, &q, &q, &o, &lse), SEQK_STATUS_SUCCESS, NULL,
                     "attention on CUDA tensors with device lengths");
  }
  seqk_tensor_free(ctx, &q);
  seqk_tensor_free(ctx, &o);
  seqk_tensor_free(ctx, &lse);
  seqk_tensor_free(ctx, &lens);
}

int main(void) {
  seqk_context_t ctx = th_context();
  test_huge_empty(ctx);
  test_embedding_broadcast(ctx);
  test_nan_payloads(ctx);
  test_size_overflow(ctx);
  test_exact_overlap(ctx);
  test_device_lengths(ctx);
  seqk_context_destroy(ctx);
  return th_finish();
}
