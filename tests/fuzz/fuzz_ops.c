/*
 * fuzz_ops.c - a libFuzzer target over every public entry point (LLVMFuzzerTestOneInput).
 *
 * Bytes decode into one call: which entry, then each tensor argument's descriptor (present or
 * absent, device, dtype - sometimes invalid -, ndim - sometimes out of range -, extents - small,
 * zero, or huge over stride 0 -, strides - contiguous, padded, transposed, zero, arbitrary -, its
 * place in an arena, sometimes the exact place of an earlier argument, i.e. an alias), and the
 * scalar arguments (dims, head counts, scales, flags, algorithms, lengths, RNN descriptors).
 *
 * Every tensor lives in one of two 64 KiB arenas, host or device (the device is the emulated one
 * when this is linked with seqk_emu), filled with random bits (NaN, inf, huge values included):
 * the fuzzer only describes memory it owns, as the contract asks of callers. A descriptor that
 * would reach past its arena gets data NULL instead (which the entry must reject). Then:
 *   - no crash and no sanitizer report (the fuzz build has ASan and UBSan);
 *   - a call that fails leaves both arenas byte for byte as they were;
 *   - a call that succeeds changed no byte outside the elements of its outputs;
 *   - a failure comes with a last-error message.
 * A violated check aborts, so libFuzzer keeps the input as a crash. scripts/fuzz.sh builds this
 * with clang's -fsanitize=fuzzer and runs it for a bounded time over tests/fuzz/corpus;
 * tests/fuzz/replay.c runs the committed corpus (and any kept crash) in every CTest run.
 */
#include "seqk.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEQK_FUZZ_CUDA
#include <cuda_runtime_api.h>
#endif

enum { ARENA = 64 * 1024, MAX_ARGS = 24 };

/* ---- input bytes ------------------------------------------------------------------------------ */

typedef struct reader {
  const uint8_t *p;
  size_t n, at;
} reader;

static uint32_t byte(reader *r) { return r->at < r->n ? r->p[r->at++] : 0u; }
static uint32_t u16(reader *r) {
  const uint32_t lo = byte(r);   /* one statement each: an expression's operand order is unspecified */
  return lo | byte(r) << 8;
}
static uint32_t u32(reader *r) {
  const uint32_t lo = u16(r);
  return lo | u16(r) << 16;
}

/* ---- the arenas ------------------------------------------------------------------------------- */

static seqk_context_t g_ctx;
static uint8_t *g_host, *g_host_before, *g_host_after;
static uint8_t *g_dev, *g_dev_before, *g_dev_after;   /* g_dev: device memory */
static uint8_t *g_mask_host, *g_mask_dev;             /* bytes an output may change */
static int g_have_device;

static void die(const char *what) {
  fprintf(stderr, "fuzz_ops: %s\n", what);
  abort();
}

static void setup(void) {
  if (g_ctx) return;
  if (seqk_context_create(&g_ctx) != SEQK_STATUS_SUCCESS) die("context");
  g_host = (uint8_t *)aligned_alloc(256, ARENA);
  g_host_before = (uint8_t *)malloc(ARENA);
  g_host_after = (uint8_t *)malloc(ARENA);
  g_dev_before = (uint8_t *)malloc(ARENA);
  g_dev_after = (uint8_t *)malloc(ARENA);
  g_mask_host = (uint8_t *)malloc(ARENA);
  g_mask_dev = (uint8_t *)malloc(ARENA);
  if (!g_host || !g_host_before || !g_host_after || !g_dev_before || !g_dev_after ||
      !g_mask_host || !g_mask_dev)
    die("host memory");
#ifdef SEQK_FUZZ_CUDA
  g_have_device = seqk_cuda_device_count() > 0;
  if (g_have_device && cudaMalloc((void **)&g_dev, ARENA) != cudaSuccess) die("cudaMalloc");
#endif
}

static void device_copy(void *dst, const void *src, int to_device) {
#ifdef SEQK_FUZZ_CUDA
  if (cudaMemcpy(dst, src, ARENA, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost) !=
      cudaSuccess)
    die("cudaMemcpy");
#else
  (void)dst; (void)src; (void)to_device;
#endif
}

/* ---- descriptors ------------------------------------------------------------------------------ */

typedef struct arg {
  seqk_tensor t;
  int is_output;
} arg;

typedef struct call {
  reader r;
  arg a[MAX_ARGS];
  int n;
  int device;   /* the device most arguments are on */
} call;

static int64_t extent(reader *r) {
  const uint32_t b = byte(r);
  switch (b >> 5) {
    case 0: return 0;
    case 1: return (int64_t)1 << 40;   /* huge: only a stride 0 keeps it in the arena */
    case 2: return (int64_t)(b & 31) + 9;
    default: return (int64_t)(b & 7) + 1;
  }
}

static int64_t span_elems(const seqk_tensor *t) {
  int64_t last = 0;
  for (int32_t d = 0; d < t->ndim; ++d) {
    if (t->shape[d] == 0) return 0;
    if (t->stride[d] > 0 && t->shape[d] - 1 > (INT64_MAX / 16 - last) / t->stride[d]) return -1;
    last += (t->shape[d] - 1) * t->stride[d];
  }
  return last + 1;
}

/* The next tensor argument, decoded. `dt` and `nd`: the usual dtype and ndim of this argument
   (the bytes may override them). */
static seqk_tensor *tensor(call *c, int is_output, seqk_dtype dt, int32_t nd) {
  reader *r = &c->r;
  arg *g = &c->a[c->n < MAX_ARGS ? c->n++ : MAX_ARGS - 1];
  seqk_tensor *t = &g->t;
  memset(t, 0, sizeof *t);
  g->is_output = is_output;
  const uint32_t flags = byte(r);
  if ((flags & 15) == 15) return NULL;   /* absent pointer */
  t->device = (flags & 16) && g_have_device ? SEQK_DEVICE_CUDA : (seqk_device)c->device;
  if ((flags & 96) == 96) t->device = (seqk_device)(2 + (flags & 1));   /* invalid device */
  t->dtype = dt;
  if ((flags & 7) == 6) t->dtype = (seqk_dtype)(byte(r) % 6);           /* any, some invalid */
  t->ndim = nd;
  if ((flags & 7) == 5) t->ndim = (int32_t)(byte(r) % 9) - 1;           /* -1 .. 7 */
  if (t->ndim < 0 || t->ndim > SEQK_MAX_DIMS) return t;
  const uint32_t layout = byte(r);
  int64_t stride = 1;
  for (int32_t d = t->ndim - 1; d >= 0; --d) t->shape[d] = extent(r);
  for (int32_t d = t->ndim - 1; d >= 0; --d) {
    const int64_t e = t->shape[d] > 0 ? t->shape[d] : 1;
    switch ((layout >> (2 * (d % 4))) & 3) {
      case 0: t->stride[d] = stride; break;                            /* contiguous */
      case 1: t->stride[d] = stride + (int64_t)(byte(r) % 5); break;   /* padded */
      case 2: t->stride[d] = 0; break;                                 /* broadcast */
      default: t->stride[d] = (int64_t)(byte(r) % 64); break;          /* anything */
    }
    const int64_t next = t->stride[d] > 0 ? t->stride[d] : stride;
    stride = next <= ((int64_t)1 << 40) / e ? next * e : 1;   /* the next dim's contiguous stride */
  }
  if (layout & 128 && t->ndim >= 2) {   /* a transposed view of the last two dims */
    int64_t s = t->shape[t->ndim - 1], st = t->stride[t->ndim - 1];
    t->shape[t->ndim - 1] = t->shape[t->ndim - 2];
    t->stride[t->ndim - 1] = t->stride[t->ndim - 2];
    t->shape[t->ndim - 2] = s;
    t->stride[t->ndim - 2] = st;
  }
  /* A huge extent keeps memory only with stride 0. */
  for (int32_t d = 0; d < t->ndim; ++d)
    if (t->shape[d] >= ((int64_t)1 << 40) && (byte(r) & 1)) t->stride[d] = 0;
  uint8_t *base = t->device == SEQK_DEVICE_CUDA ? g_dev : g_host;
  const uint32_t where = u16(r);
  if (where % 7 == 0 && c->n > 1) {   /* alias an earlier argument exactly */
    const seqk_tensor *prev = &c->a[where / 7 % (c->n - 1)].t;
    if (prev->data && prev->device == t->device) {
      t->data = prev->data;
      return t;
    }
  }
  const size_t esize = seqk_dtype_size(t->dtype) ? seqk_dtype_size(t->dtype) : 4;
  const int64_t span = span_elems(t);
  const size_t offset = (size_t)(where % (ARENA / 2)) / esize * esize;
  if (span < 0 || offset + (size_t)span * esize > ARENA) t->data = NULL;   /* not ours */
  else t->data = base + offset;
  if ((flags & 7) == 4 && byte(r) == 0) t->data = NULL;
  return t;
}

/* An int32 array of n entries inside the arena of `device` (lengths), or NULL. */
static int32_t *lengths(call *c, int64_t n, seqk_device device) {
  const uint32_t w = u16(&c->r);
  if (w % 5 == 0 || n < 0 || n > 1024) return NULL;
  uint8_t *base = device == SEQK_DEVICE_CUDA ? g_dev : g_host;
  const size_t off = (size_t)(w % (ARENA / 2)) & ~(size_t)3;   /* + 4 KiB of values fits */
  return base ? (int32_t *)(base + off) : NULL;
}

/* Marks the bytes of t's elements as allowed to change. */
static void allow(const seqk_tensor *t) {
  if (!t || !t->data || t->ndim < 0 || t->ndim > SEQK_MAX_DIMS) return;
  uint8_t *mask = t->device == SEQK_DEVICE_CUDA ? g_mask_dev : g_mask_host;
  const uint8_t *base = t->device == SEQK_DEVICE_CUDA ? g_dev : g_host;
  const size_t esize = seqk_dtype_size(t->dtype);
  int64_t n = 1;
  for (int32_t d = 0; d < t->ndim; ++d) if (t->shape[d] == 0) return;   /* no element */
  for (int32_t d = 0; d < t->ndim; ++d) {
    if (t->shape[d] > ARENA / n) return;   /* an output that large cannot have succeeded */
    n *= t->shape[d];
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, off = 0;
    for (int32_t d = t->ndim - 1; d >= 0; --d) {
      off += (rest % t->shape[d]) * t->stride[d];
      rest /= t->shape[d];
    }
    const size_t at = (size_t)((const uint8_t *)t->data - base) + (size_t)off * esize;
    for (size_t b = 0; b < esize && at + b < ARENA; ++b) mask[at + b] = 1;
  }
}

/* ---- the call --------------------------------------------------------------------------------- */

static seqk_dtype float_dtype(reader *r) { return (seqk_dtype)(byte(r) % 3); }

/* Sometimes a sliding window (small extents either side, negative ones unbounded), a softcap
   (-1 and NaN are refused) and ALiBi slopes for H query heads (arena bytes: non-finite ones are
   refused on the CPU). */
static void window_of(call *c, seqk_attention_params *p, int64_t H) {
  reader *r = &c->r;
  const uint8_t w = byte(r);
  if (w & 1) {
    p->window = 1;
    p->window_left = (int32_t)(int8_t)byte(r);
    p->window_right = (int32_t)(int8_t)byte(r);
  }
  if (w & 2) {
    const uint8_t cap = byte(r) % 8;
    p->softcap = cap == 7 ? NAN : (float)cap - 1.0f;
  }
  if (w & 4) p->alibi_slopes = (const float *)lengths(c, H, (seqk_device)c->device);
}

static float scale_of(reader *r) {
  switch (byte(r) % 6) {
    case 0: return 0.0f;
    case 1: return -0.5f;
    case 2: return INFINITY;
    case 3: return NAN;
    case 4: return 1e30f;
    default: return 0.125f;
  }
}

static seqk_status run(call *c) {
  reader *r = &c->r;
  uint32_t op = byte(r) % 14;
  if (op == 13) op = 13 + byte(r) % 9; /* 13 tensor_copy; the transformer blocks 14..19; 20, 21 */
  c->device = (byte(r) & 1) && g_have_device ? SEQK_DEVICE_CUDA : SEQK_DEVICE_CPU;
  const seqk_dtype dt = float_dtype(r);
  seqk_context_t ctx = g_ctx;
  switch (op) {
    case 0: {
      seqk_tensor *x = tensor(c, 0, dt, 2), *y = tensor(c, 1, dt, 2);
      return seqk_softmax(ctx, x, (int32_t)(byte(r) % 9) - 4, y);
    }
    case 1: {
      seqk_tensor *x = tensor(c, 0, dt, 3), *y = tensor(c, 1, dt, 4);
      return seqk_split_heads(ctx, x, (int32_t)(byte(r) % 6) - 1, y);
    }
    case 2: {
      seqk_tensor *x = tensor(c, 0, dt, 4), *y = tensor(c, 1, dt, 3);
      return seqk_merge_heads(ctx, x, y);
    }
    case 3: {
      seqk_tensor *q = tensor(c, 0, dt, 4), *k = tensor(c, 0, dt, 4), *s = tensor(c, 1, dt, 4);
      const float scale = scale_of(r); /* scalars read in order: argument order is unspecified */
      const int32_t causal = (int32_t)(byte(r) & 1);
      return seqk_attention_scores(ctx, q, k, scale, causal, s);
    }
    case 4: {
      seqk_tensor *p = tensor(c, 0, dt, 4), *v = tensor(c, 0, dt, 4), *o = tensor(c, 1, dt, 4);
      return seqk_attention_values(ctx, p, v, o);
    }
    case 5: {
      seqk_tensor *q = tensor(c, 0, dt, 4), *k = tensor(c, 0, dt, 4), *v = tensor(c, 0, dt, 4);
      seqk_tensor *o = tensor(c, 1, dt, 4), *lse = tensor(c, 1, SEQK_DTYPE_F32, 3);
      seqk_attention_params p;
      memset(&p, 0, sizeof p);
      p.scale = scale_of(r);
      p.causal = (int32_t)(byte(r) & 1);
      p.algo = (seqk_attention_algo)(byte(r) % 4);
      const int64_t B = q && q->ndim > 0 ? q->shape[0] : 0;
      p.seqlens_q = byte(r) & 1 ? lengths(c, B, (seqk_device)c->device) : NULL;
      p.seqlens_k = byte(r) & 1 ? lengths(c, B, (seqk_device)c->device) : NULL;
      window_of(c, &p, q && q->ndim > 1 ? q->shape[1] : 0);
      /* On the CPU the lengths are read (and checked) by the entry: they must hold B values,
         as the contract says; on CUDA any values are allowed (the kernels clamp). */
      return seqk_attention(ctx, byte(r) % 5 ? &p : NULL, q, k, v, o, lse);
    }
    case 6: {
      seqk_tensor *oa = tensor(c, 0, dt, 3), *la = tensor(c, 0, SEQK_DTYPE_F32, 2);
      seqk_tensor *ob = tensor(c, 0, dt, 3), *lb = tensor(c, 0, SEQK_DTYPE_F32, 2);
      seqk_tensor *o = tensor(c, 1, dt, 3), *lse = tensor(c, 1, SEQK_DTYPE_F32, 2);
      /* o may alias o_a or o_b exactly (and lse lse_a or lse_b): those bytes are then allowed
         through the output's own mask. */
      return seqk_attention_merge(ctx, oa, la, ob, lb, o, lse);
    }
    case 7: {
      seqk_tensor *x = tensor(c, 0, dt, 2), *w = tensor(c, 0, dt, 2), *b = tensor(c, 0, dt, 1);
      seqk_tensor *y = tensor(c, 1, dt, 2);
      return seqk_linear(ctx, x, w, b, y);
    }
    case 8: {
      seqk_mha_weights w;
      seqk_tensor *t;
      memset(&w, 0, sizeof w);
      if ((t = tensor(c, 0, dt, 2))) w.in_proj_weight = *t;
      if ((t = tensor(c, 0, dt, 1))) w.in_proj_bias = *t;
      if ((t = tensor(c, 0, dt, 2))) w.out_proj_weight = *t;
      if ((t = tensor(c, 0, dt, 1))) w.out_proj_bias = *t;
      seqk_tensor *q = tensor(c, 0, dt, 3);
      const int self = byte(r) & 1;
      seqk_tensor *k = self ? q : tensor(c, 0, dt, 3), *v = self ? q : tensor(c, 0, dt, 3);
      seqk_tensor *out = tensor(c, 1, dt, 3), *aw = tensor(c, 1, dt, 3);
      const int with_w = byte(r) % 9 != 0;
      const int32_t heads = (int32_t)(byte(r) % 5), causal = (int32_t)(byte(r) & 1);
      return seqk_mha_forward(ctx, with_w ? &w : NULL, heads, causal, q, k, v, out, aw);
    }
    case 9: {
      seqk_tensor *idx = tensor(c, 0, SEQK_DTYPE_I32, (int32_t)(byte(r) % 4));
      seqk_tensor *table = tensor(c, 0, dt, 2), *out = tensor(c, 1, dt, 3);
      return seqk_embedding(ctx, idx, table, out);
    }
    case 10: {
      const seqk_rnn_mode mode = (seqk_rnn_mode)(byte(r) % 5);
      seqk_tensor *x = tensor(c, 0, dt, 2), *h = tensor(c, 0, dt, 2), *cc = tensor(c, 0, dt, 2);
      seqk_tensor *wi = tensor(c, 0, dt, 2), *wh = tensor(c, 0, dt, 2);
      seqk_tensor *bi = tensor(c, 0, dt, 1), *bh = tensor(c, 0, dt, 1);
      seqk_tensor *ho = tensor(c, 1, dt, 2), *co = tensor(c, 1, dt, 2);
      /* h_out may alias h exactly, c_out c: those bytes are allowed through the outputs. */
      return seqk_rnn_cell(ctx, mode, x, h, cc, wi, wh, bi, bh, ho, co);
    }
    case 11: {
      seqk_rnn_desc d;
      d.mode = (seqk_rnn_mode)(byte(r) % 5);
      d.input_size = (int32_t)(byte(r) % 6) - 1;
      d.hidden_size = (int32_t)(byte(r) % 6) - 1;
      d.num_layers = (int32_t)(byte(r) % 3);   /* <= 2, D <= 2: at most 4 weight entries */
      d.bidirectional = (int32_t)(byte(r) % 3);
      d.batch_first = (int32_t)(byte(r) % 3);
      seqk_tensor w_ih[4], w_hh[4], b_ih[4], b_hh[4];
      for (int e = 0; e < 4; ++e) {
        seqk_tensor *t;
        memset(&w_ih[e], 0, sizeof w_ih[e]);
        memset(&w_hh[e], 0, sizeof w_hh[e]);
        memset(&b_ih[e], 0, sizeof b_ih[e]);
        memset(&b_hh[e], 0, sizeof b_hh[e]);
        if ((t = tensor(c, 0, dt, 2))) w_ih[e] = *t;
        if ((t = tensor(c, 0, dt, 2))) w_hh[e] = *t;
        if ((t = tensor(c, 0, dt, 1))) b_ih[e] = *t;
        if ((t = tensor(c, 0, dt, 1))) b_hh[e] = *t;
      }
      const uint32_t wf = byte(r);
      seqk_rnn_weights w = {wf & 1 ? NULL : w_ih, wf & 2 ? NULL : w_hh, wf & 4 ? NULL : b_ih,
                            wf & 8 ? NULL : b_hh};
      seqk_tensor *x = tensor(c, 0, dt, 3), *h0 = tensor(c, 0, dt, 3), *c0 = tensor(c, 0, dt, 3);
      const int saved = c->device;
      if (byte(r) & 1) c->device = SEQK_DEVICE_CPU;   /* lengths on the CPU, or with the op */
      seqk_tensor *len = tensor(c, 0, SEQK_DTYPE_I32, 1);
      c->device = saved;
      seqk_tensor *y = tensor(c, 1, dt, 3), *hn = tensor(c, 1, dt, 3), *cn = tensor(c, 1, dt, 3);
      return seqk_rnn_forward(ctx, wf & 16 ? NULL : &d, wf & 32 ? NULL : &w, x, h0, c0, len, y, hn,
                              cn);
    }
    case 12: {
      seqk_kv_cache cache;
      memset(&cache, 0, sizeof cache);
      seqk_tensor *t;
      if ((t = tensor(c, 1, dt, 4))) cache.k = *t;
      if ((t = tensor(c, 1, dt, 4))) cache.v = *t;
      if ((byte(r) & 1) && (t = tensor(c, 0, SEQK_DTYPE_I32, 2))) cache.page_table = *t;
      const int32_t advance = (int32_t)(byte(r) & 1);
      seqk_tensor *len = tensor(c, advance, SEQK_DTYPE_I32, 1);
      seqk_tensor *kn = tensor(c, 0, dt, 4), *vn = tensor(c, 0, dt, 4);
      if (byte(r) & 1) { /* rotary keys on the way in, q rotated in place */
        seqk_rotary_params rope;
        rope.layout = (seqk_rotary_layout)(byte(r) % 3);
        rope.rotary_dim = (int32_t)(byte(r) % 12) - 1;
        rope.theta = byte(r) & 1 ? 10000.0f : scale_of(r);
        seqk_tensor *q = tensor(c, 1, dt, 4);
        return seqk_kv_cache_append_rotary(ctx, byte(r) % 9 ? &cache : NULL, len, advance, kn, vn,
                                           byte(r) % 9 ? &rope : NULL, q);
      }
      return seqk_kv_cache_append(ctx, byte(r) % 9 ? &cache : NULL, len, advance, kn, vn);
    }
    case 14: {
      seqk_tensor *x = tensor(c, 0, dt, (int32_t)(byte(r) % 4)), *res = tensor(c, 0, dt, 2);
      seqk_tensor *w = tensor(c, 0, dt, 1), *b = tensor(c, 0, dt, 1);
      seqk_tensor *y = tensor(c, 1, dt, 2), *ro = tensor(c, 1, dt, 2);
      const float eps = byte(r) & 1 ? 1e-5f : scale_of(r);
      return byte(r) & 1 ? seqk_rms_norm(ctx, x, res, w, eps, y, ro)
                         : seqk_layer_norm(ctx, x, res, w, b, eps, y, ro);
    }
    case 15: {
      const seqk_activation act = (seqk_activation)((int)(byte(r) % 7) - 1);
      seqk_tensor *x = tensor(c, 0, dt, (int32_t)(byte(r) % 4)), *up = tensor(c, 0, dt, 2);
      seqk_tensor *y = tensor(c, 1, dt, 2);
      return byte(r) & 1 ? seqk_gated_activate(ctx, act, x, up, y) : seqk_activate(ctx, act, x, y);
    }
    case 16: {
      seqk_rotary_params p;
      p.layout = (seqk_rotary_layout)(byte(r) % 3);
      p.rotary_dim = (int32_t)(byte(r) % 12) - 1;
      p.theta = byte(r) & 1 ? 10000.0f : scale_of(r);
      seqk_tensor *pos = tensor(c, 0, SEQK_DTYPE_I32, 2);
      seqk_tensor *q = tensor(c, 1, dt, 4), *k = tensor(c, 1, dt, 4);
      return seqk_rotary(ctx, byte(r) % 9 ? &p : NULL, pos, q, k);
    }
    case 17: {
      const seqk_activation act = (seqk_activation)((int)(byte(r) % 7) - 1);
      seqk_tensor *x = tensor(c, 0, dt, 2), *w = tensor(c, 0, dt, 2), *b = tensor(c, 0, dt, 1);
      seqk_tensor *res = tensor(c, 0, dt, 2), *y = tensor(c, 1, dt, 2);
      return seqk_linear_ex(ctx, x, w, b, act, res, y);
    }
    case 18: {
      seqk_mha_weights w;
      memset(&w, 0, sizeof w);
      seqk_tensor *t;
      if ((t = tensor(c, 0, dt, 2))) w.in_proj_weight = *t;
      if ((t = tensor(c, 0, dt, 1))) w.in_proj_bias = *t;
      if ((t = tensor(c, 0, dt, 2))) w.out_proj_weight = *t;
      if ((t = tensor(c, 0, dt, 1))) w.out_proj_bias = *t;
      seqk_mha_options o;
      memset(&o, 0, sizeof o);
      o.num_heads = (int32_t)(byte(r) % 5);
      o.causal = (int32_t)(byte(r) & 1);
      o.batch_first = (int32_t)(byte(r) & 1);
      o.average_attn_weights = (int32_t)(byte(r) & 1);
      if ((t = tensor(c, 0, SEQK_DTYPE_I32, 1))) o.key_lengths = *t;
      if ((t = tensor(c, 0, SEQK_DTYPE_I32, 2))) o.key_padding_mask = *t;
      seqk_tensor *q = tensor(c, 0, dt, 3);
      const int self = byte(r) & 1;
      seqk_tensor *k = self ? q : tensor(c, 0, dt, 3), *v = self ? q : tensor(c, 0, dt, 3);
      seqk_tensor *out = tensor(c, 1, dt, 3);
      seqk_tensor *aw = tensor(c, 1, dt, o.average_attn_weights ? 3 : 4);
      return seqk_mha_forward_ex(ctx, &w, byte(r) % 9 ? &o : NULL, q, k, v, out, aw);
    }
    case 19: {
      seqk_encoder_layer_weights w;
      memset(&w, 0, sizeof w);
      seqk_tensor *t;
      seqk_tensor *slots[12] = {&w.self_attn.in_proj_weight, &w.self_attn.in_proj_bias,
                                &w.self_attn.out_proj_weight, &w.self_attn.out_proj_bias,
                                &w.linear1_weight, &w.linear1_bias, &w.linear2_weight,
                                &w.linear2_bias, &w.norm1_weight, &w.norm1_bias, &w.norm2_weight,
                                &w.norm2_bias};
      for (int e = 0; e < 12; ++e)
        if ((t = tensor(c, 0, dt, e % 2 == 0 && e < 8 ? 2 : 1))) *slots[e] = *t;
      seqk_encoder_layer_desc d;
      memset(&d, 0, sizeof d);
      d.nhead = (int32_t)(byte(r) % 4);
      d.activation = (seqk_activation)((int)(byte(r) % 7) - 1);
      d.layer_norm_eps = byte(r) & 1 ? 1e-5f : scale_of(r);
      d.batch_first = (int32_t)(byte(r) & 1);
      d.norm_first = (int32_t)(byte(r) & 1);
      d.causal = (int32_t)(byte(r) & 1);
      if ((t = tensor(c, 0, SEQK_DTYPE_I32, 1))) d.key_lengths = *t;
      if ((t = tensor(c, 0, SEQK_DTYPE_I32, 2))) d.key_padding_mask = *t;
      seqk_tensor *src = tensor(c, 0, dt, 3), *out = tensor(c, 1, dt, 3);
      return seqk_transformer_encoder_layer_forward(ctx, byte(r) % 9 ? &d : NULL, &w, src, out);
    }
    case 20: {
      seqk_kv_cache cache;
      memset(&cache, 0, sizeof cache);
      seqk_tensor *t;
      if ((t = tensor(c, 0, dt, 4))) cache.k = *t;
      if ((t = tensor(c, 0, dt, 4))) cache.v = *t;
      if ((byte(r) & 1) && (t = tensor(c, 0, SEQK_DTYPE_I32, 2))) cache.page_table = *t;
      seqk_tensor *len = tensor(c, 0, SEQK_DTYPE_I32, 1), *q = tensor(c, 0, dt, 4);
      seqk_tensor *o = tensor(c, 1, dt, 4), *lse = tensor(c, 1, SEQK_DTYPE_F32, 3);
      seqk_attention_params p;
      memset(&p, 0, sizeof p);
      p.scale = scale_of(r);
      p.causal = (int32_t)(byte(r) & 1);
      p.algo = (seqk_attention_algo)(byte(r) % 4);
      const int64_t B = q && q->ndim > 0 ? q->shape[0] : 0;
      p.seqlens_q = byte(r) & 1 ? lengths(c, B, (seqk_device)c->device) : NULL;
      p.seqlens_k = byte(r) % 7 == 0 ? lengths(c, B, (seqk_device)c->device) : NULL;
      window_of(c, &p, q && q->ndim > 1 ? q->shape[1] : 0);
      return seqk_attention_kv_cache(ctx, byte(r) % 5 ? &p : NULL, q, byte(r) % 9 ? &cache : NULL,
                                     len, o, lse);
    }
    case 21: {
      seqk_tensor *q = tensor(c, 0, dt, 3), *k = tensor(c, 0, dt, 3), *v = tensor(c, 0, dt, 3);
      seqk_tensor *cq = tensor(c, 0, SEQK_DTYPE_I32, 1), *ck = tensor(c, 0, SEQK_DTYPE_I32, 1);
      seqk_tensor *o = tensor(c, 1, dt, 3), *lse = tensor(c, 1, SEQK_DTYPE_F32, 2);
      seqk_attention_params p;
      memset(&p, 0, sizeof p);
      p.scale = scale_of(r);
      p.causal = (int32_t)(byte(r) & 1);
      p.algo = (seqk_attention_algo)(byte(r) % 4);
      window_of(c, &p, q && q->ndim > 1 ? q->shape[1] : 0);
      const int32_t max_q = (int32_t)(int8_t)byte(r), max_k = (int32_t)(int8_t)byte(r);
      return seqk_attention_packed(ctx, byte(r) % 5 ? &p : NULL, q, k, v, cq, ck, max_q, max_k, o,
                                   lse);
    }
    default: {
      seqk_tensor *src = tensor(c, 0, dt, (int32_t)(byte(r) % 4));
      seqk_tensor *dst = tensor(c, 1, float_dtype(r), src ? src->ndim : 2);
      return seqk_tensor_copy(ctx, dst, src);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  call c;
  memset(&c, 0, sizeof c);
  c.r = (reader){data, size, 0};
  /* Arena contents: random bits from a seed in the input's first bytes. */
  uint64_t s = 0x9E3779B97F4A7C15ull ^ u32(&c.r);
  for (size_t i = 0; i < ARENA; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    g_host[i] = (uint8_t)(s >> 56);
  }
  if (g_have_device) {
    for (size_t i = 0; i < ARENA; ++i) g_dev_before[i] = (uint8_t)(g_host[i] ^ 0x5A);
    device_copy(g_dev, g_dev_before, 1);
  }
  memcpy(g_host_before, g_host, ARENA);
  const seqk_status st = run(&c);
  if (getenv("SEQK_FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz_ops: %s%s%s\n", seqk_status_string(st), st ? ": " : "",
            st ? seqk_context_last_error(g_ctx) : "");

  if (st < SEQK_STATUS_SUCCESS || st > SEQK_STATUS_INTERNAL_ERROR) die("a status outside the enum");
  if (st != SEQK_STATUS_SUCCESS && seqk_context_last_error(g_ctx)[0] == '\0')
    die("a failure without a last-error message");
  memset(g_mask_host, 0, ARENA);
  memset(g_mask_dev, 0, ARENA);
  if (st == SEQK_STATUS_SUCCESS)
    for (int i = 0; i < c.n; ++i)
      if (c.a[i].is_output) allow(&c.a[i].t);
#ifdef SEQK_FUZZ_CUDA
  if (g_have_device) {
    if (cudaDeviceSynchronize() != cudaSuccess) die("an asynchronous device error");
    device_copy(g_dev_after, g_dev, 0);
  }
#endif
  for (size_t i = 0; i < ARENA; ++i) {
    if (!g_mask_host[i] && g_host[i] != g_host_before[i]) {
      fprintf(stderr, "fuzz_ops: host byte %zu changed (status %s: %s)\n", i,
              seqk_status_string(st), seqk_context_last_error(g_ctx));
      abort();
    }
    if (g_have_device && !g_mask_dev[i] && g_dev_after[i] != g_dev_before[i]) {
      fprintf(stderr, "fuzz_ops: device byte %zu changed (status %s: %s)\n", i,
              seqk_status_string(st), seqk_context_last_error(g_ctx));
      abort();
    }
  }
  (void)g_host_after;
  return 0;
}
