/*
 * cuda_rnn.c - seqk_rnn_cell and seqk_rnn_forward on CUDA tensors: the GEMMs (cuBLAS, fp32
 * accumulation into fp32 buffers), the workspace plan, the layer loop, and the choice of the
 * recurrence path; the gate kernels are kernels/rnn.cu's.
 *
 * Numerics. The states h and c, and the activations passed from one layer to the next, stay fp32
 * for the whole call (the reference keeps them in double); only what the caller sees (the cell's
 * h_out/c_out; y, hn, cn) is rounded to the tensors' dtype, once. For f16/bf16 layers this means
 * the recurrent GEMM (and the input GEMM of layers l > 0) runs on fp32 copies of the weights made
 * once per call: the state is never rounded to 16 bits between steps, which keeps the result
 * within a few fp32 ulps of the double reference however long the sequence. (A 16-bit
 * tensor-core recurrent GEMM would be faster for large batches but rounds h every step, which the
 * reference does not.)
 *
 * Cell: gi = x W_ih^T and gh = h W_hh^T into fp32 workspace buffers [N, G*H], then ONE gate
 * kernel. Without h there is no second GEMM (gh = 0).
 *
 * Layers (seqk_rnn_forward), per layer and direction:
 *   1. the input projection of all T steps as ONE GEMM: xproj = in W_ih^T, fp32 [T*N, G*H], laid
 *      out in the input's own (t, n) order so that batch_first needs no transpose (the gate
 *      kernels index xproj by (t, n) strides);
 *   2. the recurrence, by one of two paths; use_persistent() is the one place that decides:
 *      per-step:   for each step, gh = h W_hh^T (one cuBLAS GEMM) and the step kernel (gates,
 *                  state update in place, y);
 *      persistent: ONE cooperative kernel for all steps (small batches whose W_hh slices fit on
 *                  chip; kernels/rnn.cu, seqk_k_rnn_persistent_plan, says when).
 *   Both directions of a bidirectional layer run one after the other on ctx's stream (they are
 *   independent, so two streams or one kernel serving both could overlap them; not done).
 *   Layer l > 0 reads layer l-1's output from an fp32 workspace buffer (two buffers, ping-pong).
 * Lengths (packed sequences, sort-free): CPU lengths are read by the host, copied once per call
 * into a device array, and max(lengths) steps run; positions at or past max(lengths) are
 * zero-filled after the last layer. CUDA lengths (no host round trip: capturable) are copied on
 * the device, checked there (device_lengths) and all T steps run, each row idle past its length.
 * hn/cn are then the states at each row's last valid step without extra work.
 *
 * Workspace (one arena per call, planned up front, device.h): lengths; xproj; gh (per-step);
 * h (two buffers for the persistent kernel's ping-pong); c (LSTM); the inter-layer buffers; fp32
 * weight copies (16-bit dtypes, or f32 weights cuBLAS cannot address); and a scratch area reused
 * by every layer-direction for the operand copies of the projection GEMM.
 */
#include "cuda_ops.h"

#ifdef SEQK_HAVE_CUDA

#include "blas.h"
#include "geometry.h"
#include "launchers.h"
#include "numeric.h"
#include "ref_rnn.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* Tests only (seqk__cuda_rnn_force): 0 automatic, 1 per-step, 2 persistent wherever it fits. */
static int g_force_path = 0;

void seqk__cuda_rnn_force(int path) { g_force_path = path; }

/* THE decision between the per-step path and the persistent kernel (with its launch shape). */
static int use_persistent(seqk_context_t ctx, const char *op, int32_t G, seqk_dtype dtype,
                          int64_t N, int64_t H, seqk_k_rnn_persist_cfg *cfg, int *persistent) {
  const seqk_device_info *dev = NULL;
  *persistent = 0;
  if (g_force_path == 1) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(seqk__device_info(ctx, op, &dev));
  *persistent = seqk_k_rnn_persistent_plan(G, dtype, N, H, dev->sms, dev->smem_optin,
                                           dev->cooperative, g_force_path == 2, cfg);
  return SEQK_STATUS_SUCCESS;
}

int32_t seqk__cuda_rnn_persistent_applies(seqk_context_t ctx, seqk_rnn_mode mode, seqk_dtype dtype,
                                          int64_t batch, int64_t hidden) {
  seqk_k_rnn_persist_cfg cfg;
  int persistent = 0;
  if (use_persistent(ctx, "rnn_forward", (int32_t)seqk__rnn_gate_count(mode), dtype, batch, hidden,
                     &cfg, &persistent) != SEQK_STATUS_SUCCESS)
    return 0;
  return persistent;
}

/* ---- views and products ----------------------------------------------------------------------- */

static void *advance(void *p, int64_t elems, seqk_dtype dt) {
  return p ? (char *)p + elems * (int64_t)seqk_dtype_size(dt) : NULL;
}

/* A CUDA tensor [rows, cols] at data with the given strides. */
static seqk_tensor mat(void *data, seqk_dtype dt, int64_t rows, int64_t cols, int64_t rs,
                       int64_t cs) {
  const int64_t shape[2] = {rows, cols}, stride[2] = {rs, cols > 0 ? cs : 1};
  return seqk_tensor_view_strided(data, dt, SEQK_DEVICE_CUDA, 2, shape, stride);
}

/* Entry e of a [L*D, N, H] state tensor as [N, H]. */
static seqk_tensor state_entry(const seqk_tensor *t, int64_t e) {
  return mat(advance(t->data, e * t->stride[0], t->dtype), t->dtype, t->shape[1], t->shape[2],
             t->stride[1], t->stride[2]);
}

/* out [M, n] (fp32, row stride ldc) = a [M, k] (rows at a_rs, columns at a_cs) W^T, W [n, k]. */
static seqk_matmul product(const void *a, seqk_dtype ab, int64_t M, int64_t a_rs, int64_t a_cs,
                           const seqk_tensor *w, float *out, int64_t ldc) {
  seqk_matmul mm;
  memset(&mm, 0, sizeof mm);
  mm.m = M;
  mm.k = w->shape[1];
  mm.n = w->shape[0];
  mm.alpha = 1.0f;
  mm.ab_type = ab;
  mm.c_type = SEQK_DTYPE_F32;
  mm.a.data = (void *)a;
  mm.a.rs = a_rs;
  mm.a.cs = a_cs;
  /* B = W^T: B[i, o] = w[o, i]. */
  mm.b.data = w->data;
  mm.b.rs = w->stride[1];
  mm.b.cs = w->stride[0];
  mm.c.data = out;
  mm.c.rs = ldc;
  mm.c.cs = 1;
  return mm;
}

/* The input projection of a whole sequence: in [A, B, K] (any strides; (A, B) = (T, N) or, with
   batch_first, (N, T)) times W^T into out [A, B, n] fp32 contiguous, in in's own order. One GEMM
   over A*B rows when in's two leading dims flatten to one row stride, else one strided-batched
   GEMM over A. */
static seqk_matmul projection(const seqk_tensor *in, const seqk_tensor *w, float *out) {
  const int64_t A = in->shape[0], B = in->shape[1], n = w->shape[0];
  if (B == 1) return product(in->data, in->dtype, A, in->stride[0], in->stride[2], w, out, n);
  if (A == 1 || in->stride[0] == B * in->stride[1])
    return product(in->data, in->dtype, A * B, in->stride[1], in->stride[2], w, out, n);
  seqk_matmul mm = product(in->data, in->dtype, B, in->stride[1], in->stride[2], w, out, n);
  mm.nlevels = 1;
  mm.count[0] = A;
  mm.a.batch[0] = in->stride[0];
  mm.b.batch[0] = 0;
  mm.c.batch[0] = B * n;
  return mm;
}

/* ---- seqk_rnn_cell ---------------------------------------------------------------------------- */

seqk_status seqk__cuda_rnn_cell(seqk_context_t ctx, seqk_rnn_mode mode, const seqk_tensor *x,
                                const seqk_tensor *h, const seqk_tensor *c, const seqk_tensor *w_ih,
                                const seqk_tensor *w_hh, const seqk_tensor *b_ih,
                                const seqk_tensor *b_hh, const seqk_tensor *h_out,
                                const seqk_tensor *c_out) {
  static const char op[] = "rnn_cell";
  SEQK_TRY(seqk__require_device(ctx, op));
  const int64_t N = x->shape[0], H = w_hh->shape[1], G = seqk__rnn_gate_count(mode), GH = G * H;
  if (N == 0) return SEQK_STATUS_SUCCESS;
  const int lstm = mode == SEQK_RNN_MODE_LSTM;
  h = seqk__present_or_null(h);
  c = lstm ? seqk__present_or_null(c) : NULL;
  b_ih = seqk__present_or_null(b_ih);
  b_hh = seqk__present_or_null(b_hh);

  /* Plan on products without memory, then the same products over the arena's pieces. */
  const size_t g_bytes = seqk__ws_elems(seqk__mul_sat(N, GH), sizeof(float));
  seqk_matmul mm_i = product(x->data, x->dtype, N, x->stride[0], x->stride[1], w_ih, NULL, GH);
  seqk_matmul mm_h;
  memset(&mm_h, 0, sizeof mm_h);
  if (h) mm_h = product(h->data, h->dtype, N, h->stride[0], h->stride[1], w_hh, NULL, GH);
  size_t bytes = seqk__ws_sum(g_bytes, seqk__matmul_workspace(&mm_i));
  if (h) bytes = seqk__ws_sum(bytes, seqk__ws_sum(g_bytes, seqk__matmul_workspace(&mm_h)));
  if (!seqk__matmul_supported(&mm_i) || (h && !seqk__matmul_supported(&mm_h)))
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: an input or hidden size past cuBLAS's int (I=%lld, H=%lld)", op,
                      (long long)x->shape[1], (long long)H);

  seqk_arena arena;
  void *gi = NULL, *gh = NULL;
  SEQK_TRY(seqk__arena_open(ctx, op, bytes, &arena));
  SEQK_TRY(seqk__arena_take(ctx, op, &arena, g_bytes, &gi));
  if (h) SEQK_TRY(seqk__arena_take(ctx, op, &arena, g_bytes, &gh));
  mm_i.c.data = gi;
  SEQK_TRY(seqk__matmul(ctx, op, &arena, &mm_i));
  if (h) {
    mm_h.c.data = gh;
    SEQK_TRY(seqk__matmul(ctx, op, &arena, &mm_h));
  }

  seqk_k_rnn_cell_params p;
  memset(&p, 0, sizeof p);
  p.mode = mode;
  p.G = (int32_t)G;
  p.dtype = x->dtype;
  p.N = N;
  p.H = H;
  p.gi = (const float *)gi;
  p.gh = (const float *)gh;
  if (b_ih) {
    p.b_ih = b_ih->data;
    p.bs_ih = b_ih->stride[0];
  }
  if (b_hh) {
    p.b_hh = b_hh->data;
    p.bs_hh = b_hh->stride[0];
  }
  if (h) {
    p.h = h->data;
    p.h_stride[0] = h->stride[0];
    p.h_stride[1] = h->stride[1];
  }
  if (c) {
    p.c = c->data;
    p.c_stride[0] = c->stride[0];
    p.c_stride[1] = c->stride[1];
  }
  p.h_out = h_out->data;
  p.ho_stride[0] = h_out->stride[0];
  p.ho_stride[1] = h_out->stride[1];
  if (lstm) {
    p.c_out = c_out->data;
    p.co_stride[0] = c_out->stride[0];
    p.co_stride[1] = c_out->stride[1];
  }
  return seqk__launched(ctx, op, "cell_gates", seqk_k_rnn_cell(&p, (cudaStream_t)ctx->stream));
}

/* ---- seqk_rnn_forward ------------------------------------------------------------------------- */

/* Everything one forward call decides before it runs. */
typedef struct fwd_plan {
  seqk_rnn_mode mode;
  seqk_dtype dt;
  int64_t T, N, H, G, GH, D, L, DH, steps;
  int bf, lstm, has_h0, has_c0, use_len, persistent, nbuf;
  int dev_len;  /* lengths on the device: all T steps run, the values read there */
  int wih_copy; /* layers l > 0 need an fp32 copy of W_ih (16-bit dtypes) */
  int whh_copy; /* the per-step path needs an fp32, cuBLAS-addressable W_hh copy */
  seqk_k_rnn_persist_cfg pc;
  size_t b_len, b_xproj, b_gh, b_h, b_c, b_inter, b_wih, b_whh, b_scratch;
} fwd_plan;

/* The recurrent product gh [N, G*H] = h [N, H] (fp32, contiguous) W_hh^T. */
static seqk_matmul recurrent(const fwd_plan *p, const float *h, const seqk_tensor *w_hh,
                             float *gh) {
  return product(h, SEQK_DTYPE_F32, p->N, p->H, 1, w_hh, gh, p->GH);
}

/* An fp32 contiguous stand-in for a weight (for planning, data may be NULL). */
static seqk_tensor f32_weight(void *data, const seqk_tensor *w) {
  return mat(data, SEQK_DTYPE_F32, w->shape[0], w->shape[1], w->shape[1], 1);
}

/* Layer l's input as a [A, B, K] tensor: x itself, or the fp32 inter-layer buffer [T, N, D*H]. */
static seqk_tensor layer_input(const fwd_plan *p, const seqk_tensor *x, int64_t l, void *prev) {
  if (l == 0) return *x;
  const int64_t shape[3] = {p->T, p->N, p->DH};
  return seqk_tensor_view(prev, SEQK_DTYPE_F32, SEQK_DEVICE_CUDA, 3, shape);
}

/* The projection GEMM of entry e = l*D + d (weights as the plan will have them). */
static seqk_matmul entry_projection(const fwd_plan *p, const seqk_tensor *x,
                                    const seqk_rnn_weights *w, int64_t l, int64_t e, void *prev,
                                    void *wih32, float *xproj) {
  const seqk_tensor in = layer_input(p, x, l, prev);
  const seqk_tensor w32 = f32_weight(wih32, &w->w_ih[e]);
  const seqk_tensor *wi = (l > 0 && p->wih_copy) ? &w32 : &w->w_ih[e];
  return projection(&in, wi, xproj);
}

static seqk_status make_plan(seqk_context_t ctx, const char *op, fwd_plan *p,
                             const seqk_rnn_desc *desc, const seqk_rnn_weights *w,
                             const seqk_tensor *x, const seqk_tensor *h0, const seqk_tensor *c0,
                             const int32_t *lens, int dev_len) {
  memset(p, 0, sizeof *p);
  p->mode = desc->mode;
  p->dt = x->dtype;
  p->bf = desc->batch_first != 0;
  p->T = x->shape[p->bf ? 1 : 0];
  p->N = x->shape[p->bf ? 0 : 1];
  p->H = desc->hidden_size;
  p->G = seqk__rnn_gate_count(p->mode);
  p->GH = p->G * p->H;
  p->D = desc->bidirectional ? 2 : 1;
  p->L = desc->num_layers;
  p->DH = p->D * p->H;
  p->lstm = p->mode == SEQK_RNN_MODE_LSTM;
  p->has_h0 = seqk__present(h0);
  p->has_c0 = p->lstm && seqk__present(c0);
  /* All lengths T is the unpacked case: no device array, no per-row test. */
  p->steps = 0;
  p->use_len = 0;
  for (int64_t n = 0; lens && n < p->N; ++n) {
    if (lens[n] != p->T) p->use_len = 1;
    if (lens[n] > p->steps) p->steps = lens[n];
  }
  if (!lens) p->steps = p->T;
  /* Device lengths: the host never sees them, so every row is tested at every one of T steps. */
  p->dev_len = dev_len;
  if (dev_len) p->use_len = 1;
  SEQK_TRY(use_persistent(ctx, op, (int32_t)p->G, p->dt, p->N, p->H, &p->pc, &p->persistent));
  p->nbuf = p->L > 2 ? 2 : (int)(p->L - 1);
  p->wih_copy = p->L > 1 && p->dt != SEQK_DTYPE_F32;
  p->whh_copy = 0;
  if (!p->persistent)
    for (int64_t e = 0; e < p->L * p->D; ++e) {
      const seqk_matmul mm = recurrent(p, NULL, &w->w_hh[e], NULL);
      if (p->dt != SEQK_DTYPE_F32 || seqk__matmul_workspace(&mm) != 0) p->whh_copy = 1;
    }

  const int64_t NH = seqk__mul_sat(p->N, p->H);
  /* (device lengths: and the waiting check's word after them) */
  p->b_len = p->use_len ? seqk__ws_elems(p->N + (dev_len ? 4 : 0), sizeof(int32_t)) : 0;
  p->b_xproj = seqk__ws_elems(seqk__mul_sat(seqk__mul_sat(p->T, p->N), p->GH), sizeof(float));
  p->b_gh = p->persistent ? 0 : seqk__ws_elems(seqk__mul_sat(p->N, p->GH), sizeof(float));
  p->b_h = seqk__ws_elems(p->persistent ? seqk__mul_sat(2, NH) : NH, sizeof(float));
  p->b_c = p->lstm ? seqk__ws_elems(NH, sizeof(float)) : 0;
  p->b_inter = seqk__ws_elems(seqk__mul_sat(seqk__mul_sat(p->T, p->N), p->DH), sizeof(float));
  p->b_wih = p->wih_copy ? seqk__ws_elems(seqk__mul_sat(p->GH, p->DH), sizeof(float)) : 0;
  p->b_whh = p->whh_copy ? seqk__ws_elems(seqk__mul_sat(p->GH, p->H), sizeof(float)) : 0;
  p->b_scratch = 0;
  /* Every product is known here, before anything is written: one cuBLAS cannot run (an inner
     extent past its int) fails the call now rather than after layer 0 wrote hn. */
  for (int64_t l = 0; l < p->L; ++l)
    for (int64_t d = 0; d < p->D; ++d) {
      const seqk_matmul mm = entry_projection(p, x, w, l, l * p->D + d, NULL, NULL, NULL);
      const seqk_matmul rec = recurrent(p, NULL, &w->w_hh[l * p->D + d], NULL);
      const size_t b = seqk__matmul_workspace(&mm);
      if (b > p->b_scratch) p->b_scratch = b;
      if (!seqk__matmul_supported(&mm) || (!p->persistent && !seqk__matmul_supported(&rec)))
        return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                          "%s: layer %lld's input size %lld (or hidden size %lld) is past cuBLAS's "
                          "int",
                          op, (long long)l, (long long)mm.k, (long long)p->H);
    }
  return SEQK_STATUS_SUCCESS;
}

static size_t plan_bytes(const fwd_plan *p) {
  size_t b = seqk__ws_sum(p->b_len, p->b_xproj);
  b = seqk__ws_sum(b, p->b_gh);
  b = seqk__ws_sum(b, p->b_h);
  b = seqk__ws_sum(b, p->b_c);
  for (int i = 0; i < p->nbuf; ++i) b = seqk__ws_sum(b, p->b_inter);
  b = seqk__ws_sum(b, p->b_wih);
  b = seqk__ws_sum(b, p->b_whh);
  return seqk__ws_sum(b, p->b_scratch);
}

/* The next `bytes` of the arena (nothing taken, *dst NULL, for 0 bytes). */
static seqk_status take_piece(seqk_context_t ctx, const char *op, seqk_arena *arena, size_t bytes,
                              void **dst) {
  *dst = NULL;
  if (bytes == 0) return SEQK_STATUS_SUCCESS;
  return seqk__arena_take(ctx, op, arena, bytes, dst);
}

/* The workspace pieces of one call. */
typedef struct fwd_mem {
  int32_t *len;
  float *xproj, *gh, *h, *c, *inter[2], *wih, *whh;
} fwd_mem;

/* Runs the recurrence of one layer-direction, with the state already in m->h / m->c. */
static seqk_status run_recurrence(seqk_context_t ctx, const char *op, const fwd_plan *p,
                                  const fwd_mem *m, const seqk_k_rnn_seq_params *a,
                                  const seqk_tensor *w_hh, int h_is_zero, seqk_arena *arena) {
  const cudaStream_t stream = (cudaStream_t)ctx->stream;
  if (p->persistent) {
    seqk_k_rnn_persist_params pa;
    memset(&pa, 0, sizeof pa);
    pa.s = *a;
    pa.steps = p->steps;
    pa.w_hh = w_hh->data;
    pa.w_rs = w_hh->stride[0];
    pa.w_cs = w_hh->stride[1];
    pa.h0 = m->h;
    pa.h1 = m->h + p->N * p->H;
    pa.c = m->c;
    return seqk__launched(ctx, op, "persistent (cooperative)",
                          seqk_k_rnn_persistent(&pa, &p->pc, stream));
  }
  /* Per-step: W_hh as cuBLAS reads it (fp32; copied when 16-bit or not addressable). */
  seqk_tensor w32 = f32_weight(m->whh, w_hh);
  const seqk_tensor *wr = w_hh;
  if (p->whh_copy) {
    SEQK_TRY(seqk__cuda_copy(ctx, op, &w32, w_hh));
    wr = &w32;
  }
  const seqk_matmul mm = recurrent(p, m->h, wr, m->gh);
  for (int64_t s = 0; s < p->steps; ++s) {
    /* A zero initial state needs no GEMM: W_hh 0 = 0. */
    const int zero = s == 0 && h_is_zero;
    if (!zero) SEQK_TRY(seqk__matmul(ctx, op, arena, &mm));
    SEQK_TRY(seqk__launched(ctx, op, "step",
                            seqk_k_rnn_step(a, zero ? NULL : m->gh, m->h, m->c, s, stream)));
  }
  return SEQK_STATUS_SUCCESS;
}

/* Layer l, direction d: projection, initial state, recurrence, final state. */
static seqk_status run_entry(seqk_context_t ctx, const char *op, const fwd_plan *p,
                             const fwd_mem *m, const seqk_rnn_weights *w, const seqk_tensor *x,
                             const seqk_tensor *h0, const seqk_tensor *c0, const seqk_tensor *y,
                             const seqk_tensor *hn, const seqk_tensor *cn, int64_t l, int64_t d,
                             seqk_arena *arena) {
  const int64_t e = l * p->D + d, NH = p->N * p->H;
  void *prev = l > 0 ? m->inter[(l - 1) % 2] : NULL;
  const seqk_tensor *b_ih = w->b_ih ? seqk__present_or_null(&w->b_ih[e]) : NULL;
  const seqk_tensor *b_hh = w->b_hh ? seqk__present_or_null(&w->b_hh[e]) : NULL;

  /* 1. xproj = input W_ih^T for all steps. */
  if (l > 0 && p->wih_copy) {
    seqk_tensor w32 = f32_weight(m->wih, &w->w_ih[e]);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &w32, &w->w_ih[e]));
  }
  const seqk_matmul proj = entry_projection(p, x, w, l, e, prev, m->wih, m->xproj);
  SEQK_TRY(seqk__matmul(ctx, op, arena, &proj));

  /* 2. The initial state, fp32 [N, H]. */
  seqk_tensor hs = mat(m->h, SEQK_DTYPE_F32, p->N, p->H, p->H, 1);
  seqk_tensor cs = mat(m->c, SEQK_DTYPE_F32, p->N, p->H, p->H, 1);
  if (p->has_h0) {
    const seqk_tensor src = state_entry(h0, e);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &hs, &src));
  } else {
    SEQK_TRY(seqk__cuda_fill(ctx, op, &hs, NULL, 0.0f));
  }
  if (p->lstm) {
    if (p->has_c0) {
      const seqk_tensor src = state_entry(c0, e);
      SEQK_TRY(seqk__cuda_copy(ctx, op, &cs, &src));
    } else {
      SEQK_TRY(seqk__cuda_fill(ctx, op, &cs, NULL, 0.0f));
    }
  }

  /* 3. The recurrence, writing this direction's columns of the layer output. */
  seqk_k_rnn_seq_params a;
  memset(&a, 0, sizeof a);
  a.mode = p->mode;
  a.G = (int32_t)p->G;
  a.dtype = p->dt;
  a.N = p->N;
  a.H = p->H;
  a.T = p->T;
  a.reverse = d == 1;
  a.len = p->use_len ? m->len : NULL;
  a.gi = m->xproj;
  /* xproj follows the input's (A, B) order: (T, N), or (N, T) for batch_first's x. */
  const int nt = l == 0 && p->bf;
  a.gi_st = nt ? p->GH : p->N * p->GH;
  a.gi_sn = nt ? p->T * p->GH : p->GH;
  if (b_ih) {
    a.b_ih = b_ih->data;
    a.bs_ih = b_ih->stride[0];
  }
  if (b_hh) {
    a.b_hh = b_hh->data;
    a.bs_hh = b_hh->stride[0];
  }
  if (l == p->L - 1) { /* the last layer writes y */
    a.y = advance(y->data, d * p->H * y->stride[2], y->dtype);
    a.y_st = y->stride[p->bf ? 1 : 0];
    a.y_sn = y->stride[p->bf ? 0 : 1];
    a.y_sk = y->stride[2];
  } else { /* the others their fp32 inter-layer buffer */
    a.y_f32 = 1;
    a.y = m->inter[l % 2] + d * p->H;
    a.y_st = p->N * p->DH;
    a.y_sn = p->DH;
    a.y_sk = 1;
  }
  SEQK_TRY(run_recurrence(ctx, op, p, m, &a, &w->w_hh[e], !p->has_h0, arena));

  /* 4. hn/cn: the state after the last step (the persistent kernel's ping-pong ends in buffer
     steps & 1; inactive rows carried theirs along). */
  float *h_fin = m->h + ((p->persistent && (p->steps & 1)) ? NH : 0);
  if (seqk__present(hn)) {
    const seqk_tensor dst = state_entry(hn, e);
    const seqk_tensor src = mat(h_fin, SEQK_DTYPE_F32, p->N, p->H, p->H, 1);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &dst, &src));
  }
  if (p->lstm && seqk__present(cn)) {
    const seqk_tensor dst = state_entry(cn, e);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &dst, &cs));
  }
  return SEQK_STATUS_SUCCESS;
}

/* Lengths that live on the device: copied into the plan's array clamped into [1, T], a value
   outside recorded in a check word. Waiting checks (the default) read the word back here, before
   anything but the workspace is written, and fail the call naming the row; deferred ones
   (seqk_context_set_device_checks) leave it to seqk_context_check and run with the clamped
   values, so no step ever indexes past T. */
static seqk_status device_lengths(seqk_context_t ctx, const char *op, const fwd_plan *p,
                                  const seqk_tensor *lengths, fwd_mem *m) {
  const int deferred = ctx->device_checks == SEQK_DEVICE_CHECKS_DEFERRED;
  /* The word sits 8-byte aligned after the N lengths (the piece has room for it). */
  unsigned long long *word = deferred ? ctx->check_words + SEQK_K_CHECK_RNN_LENGTHS
                                      : (unsigned long long *)(m->len + (p->N + 1) / 2 * 2);
  if (!deferred) SEQK_TRY(seqk__device_memset(ctx, op, word, 0xFF, sizeof *word));
  SEQK_TRY(seqk__launched(
      ctx, op, "device_lengths",
      seqk_k_rnn_device_lengths(m->len, (const int32_t *)lengths->data, lengths->stride[0], p->N,
                                p->T, word, (cudaStream_t)ctx->stream)));
  if (deferred) return SEQK_STATUS_SUCCESS;
  unsigned long long found = 0;
  SEQK_TRY(seqk__device_memcpy(ctx, op, &found, word, sizeof found, SEQK_COPY_D2H));
  SEQK_TRY(seqk__device_sync(ctx, op));
  if (found == ~0ull) return SEQK_STATUS_SUCCESS;
  return seqk__fail(ctx, SEQK_STATUS_INVALID_VALUE, "%s: lengths[%llu]=%d is outside [1, T=%lld]",
                    op, found >> 32, (int)(int32_t)(uint32_t)(found & 0xFFFFFFFFull),
                    (long long)p->T);
}

/* Takes the plan's pieces of the arena and puts the lengths on the device. */
static seqk_status take_memory(seqk_context_t ctx, const char *op, const fwd_plan *p,
                               const int32_t *lens, const seqk_tensor *dlengths, seqk_arena *arena,
                               fwd_mem *m) {
  void *piece = NULL;
  memset(m, 0, sizeof *m);
  SEQK_TRY(seqk__arena_open(ctx, op, plan_bytes(p), arena));
  SEQK_TRY(take_piece(ctx, op, arena, p->b_len, &piece));
  m->len = (int32_t *)piece;
  SEQK_TRY(take_piece(ctx, op, arena, p->b_xproj, &piece));
  m->xproj = (float *)piece;
  SEQK_TRY(take_piece(ctx, op, arena, p->b_gh, &piece));
  m->gh = (float *)piece;
  SEQK_TRY(take_piece(ctx, op, arena, p->b_h, &piece));
  m->h = (float *)piece;
  SEQK_TRY(take_piece(ctx, op, arena, p->b_c, &piece));
  m->c = (float *)piece;
  for (int i = 0; i < p->nbuf; ++i) {
    SEQK_TRY(take_piece(ctx, op, arena, p->b_inter, &piece));
    m->inter[i] = (float *)piece;
  }
  SEQK_TRY(take_piece(ctx, op, arena, p->b_wih, &piece));
  m->wih = (float *)piece;
  SEQK_TRY(take_piece(ctx, op, arena, p->b_whh, &piece));
  m->whh = (float *)piece;
  if (!p->use_len) return SEQK_STATUS_SUCCESS;
  if (!p->dev_len)
    return seqk__launched(ctx, op, "store_lengths",
                          seqk_k_rnn_store_lengths(m->len, lens, p->N, (cudaStream_t)ctx->stream));
  return device_lengths(ctx, op, p, dlengths, m);
}

seqk_status seqk__cuda_rnn_forward(seqk_context_t ctx, const seqk_rnn_desc *desc,
                                   const seqk_rnn_weights *w, const seqk_tensor *x,
                                   const seqk_tensor *h0, const seqk_tensor *c0,
                                   const seqk_tensor *lengths, const seqk_tensor *y,
                                   const seqk_tensor *hn, const seqk_tensor *cn) {
  static const char op[] = "rnn_forward";
  SEQK_TRY(seqk__require_device(ctx, op));
  const int bf = desc->batch_first != 0;
  const int64_t N = x->shape[bf ? 0 : 1];

  /* The lengths: CPU ones read on the host (validated in [1, T] by the entry); CUDA ones stay
     on the device (device_lengths). */
  int32_t *lens = NULL;
  const int dev_len = seqk__present(lengths) && lengths->device == SEQK_DEVICE_CUDA;
  if (dev_len) SEQK_TRY(seqk__check_device_readable(ctx, op, "lengths", lengths->data));
  if (seqk__present(lengths) && !dev_len) {
    lens = (int32_t *)malloc((size_t)(N > 0 ? N : 1) * sizeof(int32_t));
    if (!lens)
      return seqk__fail(ctx, SEQK_STATUS_ALLOC_FAILED, "%s: cannot allocate %lld lengths", op,
                        (long long)N);
    for (int64_t n = 0; n < N; ++n) lens[n] = seqk__load_i32(lengths, n * lengths->stride[0]);
  }
  fwd_plan p;
  seqk_arena arena;
  fwd_mem m;
  seqk_status st = make_plan(ctx, op, &p, desc, w, x, h0, c0, lens, dev_len);
  if (st == SEQK_STATUS_SUCCESS) st = take_memory(ctx, op, &p, lens, lengths, &arena, &m);
  free(lens);
  SEQK_TRY(st);

  /* Every layer-direction takes its GEMM operand copies from the same scratch area: they are
     dead once that projection has run, and ctx's one stream orders the reuse. */
  const size_t mark = arena.used;
  for (int64_t l = 0; l < p.L; ++l)
    for (int64_t d = 0; d < p.D; ++d) {
      arena.used = mark;
      SEQK_TRY(run_entry(ctx, op, &p, &m, w, x, h0, c0, y, hn, cn, l, d, &arena));
    }

  /* Steps at or past the longest sequence were never run: y is padding there. */
  if (p.steps < p.T) {
    seqk_tensor tail = *y;
    const int tdim = bf ? 1 : 0;
    tail.data = advance(y->data, p.steps * y->stride[tdim], y->dtype);
    tail.shape[tdim] = p.T - p.steps;
    SEQK_TRY(seqk__cuda_fill(ctx, op, &tail, NULL, 0.0f));
  }
  return SEQK_STATUS_SUCCESS;
}

#endif /* SEQK_HAVE_CUDA */
