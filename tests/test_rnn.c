/*
 * test_rnn.c - seqk_rnn_cell and seqk_rnn_forward on the CPU.
 *
 *   golden      hand-derived values that pin PyTorch's gate order (LSTM i,f,g,o; GRU r,z,n), the
 *               GRU rule that b_hn sits inside r*(.), tanh/relu, and a packed bidirectional
 *               sequence whose every number is exact in all dtypes.
 *   cells       all four modes against a test-local double computation: h/c absent or present,
 *               no biases, in-place h_out == h and c_out == c, strided views, f32/f16/bf16, odd
 *               and size-1 shapes.
 *   forward     every mode x 1-3 layers x uni/bi against a test-local double network, with
 *               batch_first, unsorted lengths, T = 1, h0/c0 absent, strided views and all dtypes.
 *   identities  the op against itself: a sequence equals repeated cells; the reverse direction
 *               equals the forward pass over the time-reversed sequence; layers compose; the
 *               batch_first layout is the transpose; a sequence with lengths equals each
 *               sequence run alone.
 *   bad input   every argument of both entries: right status, a message naming the argument,
 *               and no byte of any tensor changed.
 *   CUDA        (device parity, harness.h) every cell and forward case above also runs on CUDA
 *               tensors against the CPU result: each forward case once on the per-step path and
 *               once on the persistent kernel (seqk__cuda_rnn_force, host/cuda_rnn.c); the
 *               dispatcher's automatic choice both ways; shapes that reach the persistent
 *               kernel's lane split, item loop, partial last block and >48 KB shared memory; and
 *               the in-place cell on CUDA tensors (parity skips in-place cases).
 *
 * The seed /work/shared/seeds/003 prints no RNN outputs for known weights (torch.randn inputs,
 * random init), so it gives no golden values here.
 */
#include "harness.h"

#include "cuda_ops.h"
#ifdef SEQK_HAVE_CUDA
#include "blas.h"
#include "launchers.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static seqk_context_t g_ctx;
static th_rng g_rng;

static const seqk_dtype k_dtypes[3] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16, SEQK_DTYPE_BF16};
static const seqk_rnn_mode k_modes[4] = {SEQK_RNN_MODE_TANH, SEQK_RNN_MODE_RELU, SEQK_RNN_MODE_LSTM,
                                         SEQK_RNN_MODE_GRU};

#if !defined(SEQK_HAVE_CUDA)
/* The plain build compiles tests without the library's CUDA flag, and the test-only dispatch hooks
   exist only in a library built with CUDA: referenced weakly, used only where they are linked
   (and a device exists). */
#pragma weak seqk__cuda_rnn_force
#pragma weak seqk__cuda_rnn_persistent_applies
#define RNN_HOOKS_LINKED (seqk__cuda_rnn_force != NULL && seqk__cuda_rnn_persistent_applies != NULL)
#else
#define RNN_HOOKS_LINKED 1
#endif

#define SHAPE(...)  ((const int64_t[]){__VA_ARGS__})
#define MAX_ENTRIES 6 /* 3 layers x 2 directions */

static const char *mode_str(seqk_rnn_mode m) {
  switch (m) {
    case SEQK_RNN_MODE_TANH: return "tanh";
    case SEQK_RNN_MODE_RELU: return "relu";
    case SEQK_RNN_MODE_LSTM: return "lstm";
    case SEQK_RNN_MODE_GRU: return "gru";
  }
  return "?";
}

static const char *dtype_str(seqk_dtype d) {
  return d == SEQK_DTYPE_F32 ? "f32" : d == SEQK_DTYPE_F16 ? "f16" : "bf16";
}

static int64_t gates_of(seqk_rnn_mode m) {
  return m == SEQK_RNN_MODE_LSTM ? 4 : m == SEQK_RNN_MODE_GRU ? 3 : 1;
}

/* ---- tensors --------------------------------------------------------------------------------- */

/* Uniform in [lo, hi), contiguous or strided (padded dims, inner stride 2). */
static seqk_tensor rand_tensor(seqk_dtype dt, int32_t ndim, const int64_t *shape, int strided,
                               double lo, double hi) {
  static const int64_t pad[SEQK_MAX_DIMS] = {1, 2, 1, 3, 1, 1};
  seqk_tensor t =
      strided ? th_tensor_strided(dt, ndim, shape, pad, 2) : th_tensor_new(dt, ndim, shape);
  th_fill_uniform(&t, &g_rng, lo, hi);
  return t;
}

static seqk_tensor out_tensor(seqk_dtype dt, int32_t ndim, const int64_t *shape, int strided) {
  static const int64_t pad[SEQK_MAX_DIMS] = {2, 1, 3, 1, 1, 1};
  seqk_tensor t =
      strided ? th_tensor_strided(dt, ndim, shape, pad, 3) : th_tensor_new(dt, ndim, shape);
  th_poison(&t);
  return t;
}

/* t restricted to [start, start+len) along dim (a view, no copy). */
static seqk_tensor sub_view(const seqk_tensor *t, int dim, int64_t start, int64_t len) {
  seqk_tensor v = *t;
  v.data = (char *)t->data + start * t->stride[dim] * (int64_t)seqk_dtype_size(t->dtype);
  v.shape[dim] = len;
  return v;
}

/* The 2-D slice t[i] of a 3-D tensor. */
static seqk_tensor slice0(const seqk_tensor *t, int64_t i) {
  seqk_tensor v = sub_view(t, 0, i, 1);
  v.ndim = 2;
  v.shape[0] = t->shape[1];
  v.shape[1] = t->shape[2];
  v.stride[0] = t->stride[1];
  v.stride[1] = t->stride[2];
  return v;
}

/* A view of raw memory (inside some test tensor) with the given shape, contiguous. */
static seqk_tensor view_at(void *data, seqk_dtype dt, int32_t ndim, const int64_t *shape) {
  return seqk_tensor_view(data, dt, SEQK_DEVICE_CPU, ndim, shape);
}

static void *elem_ptr(const seqk_tensor *t, int64_t offset) {
  return (char *)t->data + offset * (int64_t)seqk_dtype_size(t->dtype);
}

/* ---- test-local double math, straight from PyTorch's equations ------------------------------- */

static double tl_sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* b[row] + w[row, :] . v, where a NULL b is no bias. */
static double tl_pre(const double *w, const double *b, int64_t row, int64_t n, const double *v) {
  double acc = b ? b[row] : 0.0;
  for (int64_t k = 0; k < n; ++k) acc += w[row * n + k] * v[k];
  return acc;
}

/* One cell step for one row. h_new/c_new must not be h/c. */
static void tl_cell_row(seqk_rnn_mode mode, int64_t I, int64_t H, const double *wih,
                        const double *whh, const double *bih, const double *bhh, const double *x,
                        const double *h, const double *c, double *h_new, double *c_new) {
  for (int64_t j = 0; j < H; ++j) {
    double pre[4], hpart[4];
    for (int64_t g = 0; g < gates_of(mode); ++g) {
      pre[g] = tl_pre(wih, bih, g * H + j, I, x);
      hpart[g] = tl_pre(whh, bhh, g * H + j, H, h);
    }
    if (mode == SEQK_RNN_MODE_TANH) {
      h_new[j] = tanh(pre[0] + hpart[0]);
    } else if (mode == SEQK_RNN_MODE_RELU) {
      double v = pre[0] + hpart[0];
      h_new[j] = v > 0 ? v : 0;
    } else if (mode == SEQK_RNN_MODE_LSTM) {
      double ig = tl_sigmoid(pre[0] + hpart[0]), fg = tl_sigmoid(pre[1] + hpart[1]);
      double gg = tanh(pre[2] + hpart[2]), og = tl_sigmoid(pre[3] + hpart[3]);
      c_new[j] = fg * c[j] + ig * gg;
      h_new[j] = og * tanh(c_new[j]);
    } else {
      double r = tl_sigmoid(pre[0] + hpart[0]), z = tl_sigmoid(pre[1] + hpart[1]);
      double n = tanh(pre[2] + r * hpart[2]);
      h_new[j] = (1 - z) * n + z * h[j];
    }
  }
}

/* ---- a network: tensors for the op, doubles for the test-local reference --------------------- */

typedef struct net {
  seqk_rnn_desc desc;
  seqk_dtype dtype;
  int has_bias;
  seqk_tensor w_ih[MAX_ENTRIES], w_hh[MAX_ENTRIES], b_ih[MAX_ENTRIES], b_hh[MAX_ENTRIES];
  seqk_rnn_weights w; /* points into this struct: never copy a net */
  double *rw_ih[MAX_ENTRIES], *rw_hh[MAX_ENTRIES], *rb_ih[MAX_ENTRIES], *rb_hh[MAX_ENTRIES];
} net;

static int64_t net_dirs(const net *n) { return n->desc.bidirectional ? 2 : 1; }

static void net_init(net *n, seqk_rnn_mode mode, int L, int bidir, int bf, int I, int H,
                     seqk_dtype dt, int has_bias, int strided) {
  memset(n, 0, sizeof *n);
  n->desc = (seqk_rnn_desc){mode, I, H, L, bidir, bf};
  n->dtype = dt;
  n->has_bias = has_bias;
  const int64_t D = bidir ? 2 : 1, G = gates_of(mode);
  const double k = 1.0 / sqrt((double)H); /* PyTorch's init range */
  for (int64_t e = 0; e < L * D; ++e) {
    const int64_t in = e < D ? I : D * H;
    n->w_ih[e] = rand_tensor(dt, 2, SHAPE(G * H, in), strided, -k, k);
    n->w_hh[e] = rand_tensor(dt, 2, SHAPE(G * H, H), strided, -k, k);
    n->b_ih[e] = rand_tensor(dt, 1, SHAPE(G * H), strided, -k, k);
    n->b_hh[e] = rand_tensor(dt, 1, SHAPE(G * H), strided, -k, k);
    n->rw_ih[e] = th_to_doubles(&n->w_ih[e]);
    n->rw_hh[e] = th_to_doubles(&n->w_hh[e]);
    n->rb_ih[e] = has_bias ? th_to_doubles(&n->b_ih[e]) : NULL;
    n->rb_hh[e] = has_bias ? th_to_doubles(&n->b_hh[e]) : NULL;
  }
  n->w.w_ih = n->w_ih;
  n->w.w_hh = n->w_hh;
  n->w.b_ih = has_bias ? n->b_ih : NULL;
  n->w.b_hh = has_bias ? n->b_hh : NULL;
}

/* The whole network, one sequence at a time. x/y in the desc's layout (row-major doubles),
   h0/c0 [L*D, N, H] or NULL, lengths NULL for all T; hn/cn always filled. */
static void tl_forward(const net *n, int64_t T, int64_t N, const double *x, const double *h0,
                       const double *c0, const int32_t *lengths, double *y, double *hn,
                       double *cn) {
  const seqk_rnn_mode mode = n->desc.mode;
  const int64_t L = n->desc.num_layers, D = net_dirs(n), H = n->desc.hidden_size;
  const int64_t I = n->desc.input_size, DH = D * H, W = I > DH ? I : DH;
  const int bf = n->desc.batch_first;
  double *in = th_alloc((size_t)(T * W) * sizeof(double));
  double *out = th_alloc((size_t)(T * DH) * sizeof(double));
  double *h = th_alloc((size_t)H * sizeof(double)), *c = th_alloc((size_t)H * sizeof(double));
  double *h2 = th_alloc((size_t)H * sizeof(double)), *c2 = th_alloc((size_t)H * sizeof(double));
  for (int64_t b = 0; b < N; ++b) {
    const int64_t len = lengths ? lengths[b] : T;
    for (int64_t t = 0; t < len; ++t)
      for (int64_t k = 0; k < I; ++k) in[t * I + k] = x[(bf ? b * T + t : t * N + b) * I + k];
    for (int64_t l = 0; l < L; ++l) {
      const int64_t in_w = l == 0 ? I : DH;
      for (int64_t d = 0; d < D; ++d) {
        const int64_t e = l * D + d;
        for (int64_t j = 0; j < H; ++j) {
          h[j] = h0 ? h0[(e * N + b) * H + j] : 0;
          c[j] = c0 ? c0[(e * N + b) * H + j] : 0;
        }
        for (int64_t s = 0; s < len; ++s) {
          const int64_t t = d == 0 ? s : len - 1 - s;
          tl_cell_row(mode, in_w, H, n->rw_ih[e], n->rw_hh[e], n->rb_ih[e], n->rb_hh[e],
                      in + t * in_w, h, c, h2, c2);
          memcpy(h, h2, (size_t)H * sizeof(double));
          if (mode == SEQK_RNN_MODE_LSTM) memcpy(c, c2, (size_t)H * sizeof(double));
          for (int64_t j = 0; j < H; ++j) out[t * DH + d * H + j] = h[j];
        }
        for (int64_t j = 0; j < H; ++j) {
          hn[(e * N + b) * H + j] = h[j];
          cn[(e * N + b) * H + j] = c[j];
        }
      }
      memcpy(in, out, (size_t)(len * DH) * sizeof(double));
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < DH; ++k)
        y[(bf ? b * T + t : t * N + b) * DH + k] = t < len ? in[t * DH + k] : 0.0;
  }
}

/* ---- one forward call's tensors -------------------------------------------------------------- */

typedef struct fwd_io {
  int64_t T, N;
  seqk_tensor x, h0, c0, lengths, y, hn, cn;
  int has_h0, has_c0, has_len, want_hn, want_cn;
  int32_t len_values[64];
} fwd_io;

static void io_init(fwd_io *io, const net *n, int64_t T, int64_t N, int has_h0, int has_c0,
                    const int32_t *lengths, int want_hn, int want_cn, int strided) {
  const int is_lstm = n->desc.mode == SEQK_RNN_MODE_LSTM;
  const int64_t LD = n->desc.num_layers * net_dirs(n), H = n->desc.hidden_size;
  const int64_t I = n->desc.input_size, DH = net_dirs(n) * H;
  const int bf = n->desc.batch_first;
  memset(io, 0, sizeof *io);
  io->T = T;
  io->N = N;
  io->has_h0 = has_h0;
  io->has_c0 = has_c0 && is_lstm;
  io->has_len = lengths != NULL;
  io->want_hn = want_hn;
  io->want_cn = want_cn && is_lstm;
  io->x = rand_tensor(n->dtype, 3, bf ? SHAPE(N, T, I) : SHAPE(T, N, I), strided, -1, 1);
  io->h0 = rand_tensor(n->dtype, 3, SHAPE(LD, N, H), strided, -1, 1);
  io->c0 = rand_tensor(n->dtype, 3, SHAPE(LD, N, H), strided, -1, 1);
  if (lengths) {
    memcpy(io->len_values, lengths, (size_t)N * sizeof(int32_t));
    io->lengths = th_tensor_strided(SEQK_DTYPE_I32, 1, SHAPE(N), NULL, strided ? 3 : 1);
    th_fill_i32(&io->lengths, lengths);
  }
  io->y = out_tensor(n->dtype, 3, bf ? SHAPE(N, T, DH) : SHAPE(T, N, DH), strided);
  io->hn = out_tensor(n->dtype, 3, SHAPE(LD, N, H), strided);
  io->cn = out_tensor(n->dtype, 3, SHAPE(LD, N, H), strided);
}

static seqk_status io_run(const net *n, fwd_io *io) {
  return seqk_rnn_forward(g_ctx, &n->desc, &n->w, &io->x, io->has_h0 ? &io->h0 : NULL,
                          io->has_c0 ? &io->c0 : NULL, io->has_len ? &io->lengths : NULL, &io->y,
                          io->want_hn ? &io->hn : NULL, io->want_cn ? &io->cn : NULL);
}

/* ---- the same ops on CUDA tensors (harness.h: th_check_on_device) ---------------------------- */

/* in: x, h, c, w_ih, w_hh, b_ih, b_hh; out: h_out, c_out; user: the seqk_rnn_mode. */
static seqk_status cell_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  return seqk_rnn_cell(ctx, *(const seqk_rnn_mode *)user, &in[0], &in[1], &in[2], &in[3], &in[4],
                       &in[5], &in[6], &out[0], &out[1]);
}

/* in: x, h0, c0, lengths (kept on the CPU), then the E = L*D entries of w_ih, w_hh, b_ih, b_hh;
   out: y, hn, cn; user: the net (its desc, and whether it has biases). */
static seqk_status forward_op(seqk_context_t ctx, void *user, seqk_tensor *in, seqk_tensor *out) {
  const net *n = (const net *)user;
  const int64_t E = n->desc.num_layers * net_dirs(n);
  const seqk_rnn_weights w = {in + 4, in + 4 + E, n->has_bias ? in + 4 + 2 * E : NULL,
                              n->has_bias ? in + 4 + 3 * E : NULL};
  return seqk_rnn_forward(ctx, &n->desc, &w, &in[0], &in[1], &in[2], &in[3], &out[0], &out[1],
                          &out[2]);
}

/* The recurrence paths seqk_rnn_forward can take on CUDA (seqk__cuda_rnn_force's values). */
enum { PATH_AUTO = 0, PATH_PER_STEP = 1, PATH_PERSISTENT = 2 };

static const char *path_str(int path) {
  return path == PATH_PER_STEP ? "per-step" : path == PATH_PERSISTENT ? "persistent" : "auto";
}

/* The CPU run of io again on CUDA tensors, on the given path. A CUDA layer may keep the state in
   the dtype between steps where the reference keeps it in double, so its bound grows with T as
   in test_seq_equals_cells (and is at least the CPU check's 2x). */
static void forward_on_device_path(const net *n, const fwd_io *io, const char *what, int path) {
  const int64_t E = n->desc.num_layers * net_dirs(n);
  seqk_tensor in[4 + 4 * MAX_ENTRIES];
  in[0] = io->x;
  in[1] = io->has_h0 ? io->h0 : th_absent(io->h0);
  in[2] = io->has_c0 ? io->c0 : th_absent(io->c0);
  in[3] = io->has_len ? io->lengths : th_absent(io->lengths);
  for (int64_t e = 0; e < E; ++e) {
    in[4 + e] = n->w_ih[e];
    in[4 + E + e] = n->w_hh[e];
    in[4 + 2 * E + e] = n->has_bias ? n->b_ih[e] : th_absent(n->b_ih[e]);
    in[4 + 3 * E + e] = n->has_bias ? n->b_hh[e] : th_absent(n->b_hh[e]);
  }
  const seqk_tensor out[3] = {io->y, io->want_hn ? io->hn : th_absent(io->hn),
                              io->want_cn ? io->cn : th_absent(io->cn)};
  if (seqk_cuda_device_count() == 0 || !RNN_HOOKS_LINKED) return;
  char label[240];
  snprintf(label, sizeof label, "%s [%s]", what, path_str(path));
  seqk__cuda_rnn_force(path);
  /* The forced path is the one taken (the override is what the dispatcher consults). */
  if (path != PATH_AUTO)
    TH_CHECK(seqk__cuda_rnn_persistent_applies(g_ctx, n->desc.mode, n->dtype, io->N,
                                               n->desc.hidden_size) == (path == PATH_PERSISTENT),
             "%s: the dispatcher does not take the forced path", label);
  th_check_on_device(g_ctx, label, forward_op, (void *)n, in, (int)(4 + 4 * E), TH_HOST(3), out, 3,
                     io->T > 2 ? (double)io->T : 2.0);
  if (io->has_len) { /* and with the lengths on the device (checked and read there) */
    snprintf(label, sizeof label, "%s [%s, device lengths]", what, path_str(path));
    th_check_on_device(g_ctx, label, forward_op, (void *)n, in, (int)(4 + 4 * E), 0, out, 3,
                       io->T > 2 ? (double)io->T : 2.0);
  }
  seqk__cuda_rnn_force(PATH_AUTO);
}

/* Both recurrence paths for every forward case. */
static void forward_on_device(const net *n, const fwd_io *io, const char *what) {
  forward_on_device_path(n, io, what, PATH_PER_STEP);
  forward_on_device_path(n, io, what, PATH_PERSISTENT);
}

/* Runs the op and compares y, hn, cn with tl_forward, then the same on CUDA tensors with the
   CPU result. */
static void io_check_ref(const net *n, fwd_io *io, const char *what, th_tol tol) {
  char msg[200];
  seqk_status st = io_run(n, io);
  snprintf(msg, sizeof msg, "%s: status", what);
  if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, msg)) return;
  const int64_t LDNH = th_numel(&io->hn);
  double *y = th_alloc((size_t)th_numel(&io->y) * sizeof(double));
  double *hn = th_alloc((size_t)LDNH * sizeof(double)),
         *cn = th_alloc((size_t)LDNH * sizeof(double));
  tl_forward(n, io->T, io->N, th_to_doubles(&io->x), io->has_h0 ? th_to_doubles(&io->h0) : NULL,
             io->has_c0 ? th_to_doubles(&io->c0) : NULL, io->has_len ? io->len_values : NULL, y, hn,
             cn);
  snprintf(msg, sizeof msg, "%s: y", what);
  TH_CHECK(th_check_close(msg, &io->y, y, tol), "%s", msg);
  if (io->want_hn) {
    snprintf(msg, sizeof msg, "%s: hn", what);
    TH_CHECK(th_check_close(msg, &io->hn, hn, tol), "%s", msg);
  }
  if (io->want_cn) {
    snprintf(msg, sizeof msg, "%s: cn", what);
    TH_CHECK(th_check_close(msg, &io->cn, cn, tol), "%s", msg);
  }
  forward_on_device(n, io, what);
}

/* ---- golden values --------------------------------------------------------------------------- */

static seqk_tensor values_tensor(seqk_dtype dt, int32_t ndim, const int64_t *shape,
                                 const double *v) {
  seqk_tensor t = th_tensor_new(dt, ndim, shape);
  th_fill_values(&t, v);
  return t;
}

static void test_golden_rnn(void) {
  /* W_ih x = [0.5*1 - 1*2, 2*1 + 0.25*2] = [-1.5, 2.5], W_hh h = [0.5, -0.5] (W_ih is not
     symmetric, so a transposed read fails), b_ih + b_hh = [-0.2, 0.3]: the pre-activations are
     [-1.2, 2.3] with h and [-1.7, 2.8] without. */
  const seqk_dtype dt = SEQK_DTYPE_F32;
  seqk_tensor x = values_tensor(dt, 2, SHAPE(1, 2), (const double[]){1, 2});
  seqk_tensor h = values_tensor(dt, 2, SHAPE(1, 2), (const double[]){0.5, 0.5});
  seqk_tensor w_ih = values_tensor(dt, 2, SHAPE(2, 2), (const double[]){0.5, -1, 2, 0.25});
  seqk_tensor w_hh = values_tensor(dt, 2, SHAPE(2, 2), (const double[]){1, 0, 0, -1});
  seqk_tensor b_ih = values_tensor(dt, 1, SHAPE(2), (const double[]){0.1, 0.2});
  seqk_tensor b_hh = values_tensor(dt, 1, SHAPE(2), (const double[]){-0.3, 0.1});
  for (int relu = 0; relu < 2; ++relu) {
    const seqk_rnn_mode mode = relu ? SEQK_RNN_MODE_RELU : SEQK_RNN_MODE_TANH;
    for (int with_h = 0; with_h < 2; ++with_h) {
      const double p0 = with_h ? -1.2 : -1.7, p1 = with_h ? 2.3 : 2.8;
      const double expect[2] = {relu ? 0.0 : tanh(p0), relu ? p1 : tanh(p1)};
      seqk_tensor out = out_tensor(dt, 2, SHAPE(1, 2), 0);
      seqk_status st = seqk_rnn_cell(g_ctx, mode, &x, with_h ? &h : NULL, NULL, &w_ih, &w_hh, &b_ih,
                                     &b_hh, &out, NULL);
      char what[64];
      snprintf(what, sizeof what, "golden %s cell, h %s", mode_str(mode),
               with_h ? "given" : "absent");
      th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what);
      TH_CHECK(th_check_close(what, &out, expect, th_tol_for(dt)), "%s", what);
    }
  }
}

/* Pre-activations chosen per gate, with every term distinct so that a swapped gate, a swapped
   W_ih/W_hh row or a dropped bias changes the answer:
     x = 1, h = 0.5, c = 0.5
     i: W_ii 0.3 + b_ii 0.1 + W_hi 0.4*0.5 + b_hi -0.2 = 0.4
     f: W_if -0.7 + b_if 0.2 + W_hf 0.2*0.5 + b_hf 0.5 = 0.1
     g: W_ig 1.1 + b_ig 0.3 + W_hg -0.6*0.5 + b_hg 0.1 = 1.2
     o: W_io 0.9 + b_io -0.4 + W_ho 1.0*0.5 + b_ho 0.3 = 1.3 */
static void lstm_by_order(const double pre[4], const int order[4], double *h, double *c) {
  /* order[k] = which pre-activation feeds gate k of (i, f, g, o) */
  double i = tl_sigmoid(pre[order[0]]), f = tl_sigmoid(pre[order[1]]);
  double g = tanh(pre[order[2]]), o = tl_sigmoid(pre[order[3]]);
  *c = f * 0.5 + i * g;
  *h = o * tanh(*c);
}

static void test_golden_lstm(void) {
  const seqk_dtype dt = SEQK_DTYPE_F32;
  const double pre[4] = {0.4, 0.1, 1.2, 1.3};
  double h_exp, c_exp, h_alt, c_alt;
  lstm_by_order(pre, (const int[]){0, 1, 2, 3}, &h_exp, &c_exp);
  /* The test can tell PyTorch's order from the usual mistakes. */
  static const int wrong[3][4] = {
      {0, 1, 3, 2} /* i,f,o,g */, {1, 0, 2, 3} /* f,i,g,o */, {0, 2, 1, 3} /* i,g,f,o */};
  for (int k = 0; k < 3; ++k) {
    lstm_by_order(pre, wrong[k], &h_alt, &c_alt);
    TH_CHECK(fabs(h_alt - h_exp) > 1e-3 || fabs(c_alt - c_exp) > 1e-3,
             "golden lstm: wrong order %d is indistinguishable", k);
  }
  seqk_tensor x = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){1});
  seqk_tensor h = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){0.5});
  seqk_tensor c = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){0.5});
  seqk_tensor w_ih = values_tensor(dt, 2, SHAPE(4, 1), (const double[]){0.3, -0.7, 1.1, 0.9});
  seqk_tensor w_hh = values_tensor(dt, 2, SHAPE(4, 1), (const double[]){0.4, 0.2, -0.6, 1.0});
  seqk_tensor b_ih = values_tensor(dt, 1, SHAPE(4), (const double[]){0.1, 0.2, 0.3, -0.4});
  seqk_tensor b_hh = values_tensor(dt, 1, SHAPE(4), (const double[]){-0.2, 0.5, 0.1, 0.3});
  seqk_tensor h_out = out_tensor(dt, 2, SHAPE(1, 1), 0), c_out = out_tensor(dt, 2, SHAPE(1, 1), 0);
  seqk_status st = seqk_rnn_cell(g_ctx, SEQK_RNN_MODE_LSTM, &x, &h, &c, &w_ih, &w_hh, &b_ih, &b_hh,
                                 &h_out, &c_out);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "golden lstm cell");
  TH_CHECK(th_check_close("golden lstm cell h", &h_out, &h_exp, th_tol_for(dt)), "lstm h");
  TH_CHECK(th_check_close("golden lstm cell c", &c_out, &c_exp, th_tol_for(dt)), "lstm c");

  /* The same step through the layer op: T = 1, N = 1, h0/c0 given. */
  seqk_tensor x3 = values_tensor(dt, 3, SHAPE(1, 1, 1), (const double[]){1});
  seqk_tensor h0 = values_tensor(dt, 3, SHAPE(1, 1, 1), (const double[]){0.5});
  seqk_tensor c0 = values_tensor(dt, 3, SHAPE(1, 1, 1), (const double[]){0.5});
  seqk_tensor y = out_tensor(dt, 3, SHAPE(1, 1, 1), 0), hn = out_tensor(dt, 3, SHAPE(1, 1, 1), 0);
  seqk_tensor cn = out_tensor(dt, 3, SHAPE(1, 1, 1), 0);
  const seqk_rnn_desc desc = {SEQK_RNN_MODE_LSTM, 1, 1, 1, 0, 0};
  const seqk_rnn_weights w = {&w_ih, &w_hh, &b_ih, &b_hh};
  st = seqk_rnn_forward(g_ctx, &desc, &w, &x3, &h0, &c0, NULL, &y, &hn, &cn);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "golden lstm forward");
  TH_CHECK(th_check_close("golden lstm forward y", &y, &h_exp, th_tol_for(dt)), "lstm y");
  TH_CHECK(th_check_close("golden lstm forward hn", &hn, &h_exp, th_tol_for(dt)), "lstm hn");
  TH_CHECK(th_check_close("golden lstm forward cn", &cn, &c_exp, th_tol_for(dt)), "lstm cn");
}

/* x = 1, h = 0.5:
     r: W_ir 0.5 + b_ir 0.1 + W_hr 0.6*0.5 + b_hr -0.9 = 0      -> r = 0.5
     z: W_iz -0.3 + b_iz 0.2 + W_hz 0.4*0.5 + b_hz 0.1 = 0.2
     n: W_in 0.8 + b_in 0.3 = 1.1 and W_hn h + b_hn = -0.5 + 0.7 = 0.2
        inside (PyTorch):  n = tanh(1.1 + r*0.2)          = tanh(1.2)
        outside (wrong):   n = tanh(1.1 + r*(-0.5) + 0.7) = tanh(1.55) */
static void test_golden_gru(void) {
  const seqk_dtype dt = SEQK_DTYPE_F32;
  const double r = tl_sigmoid(0.0), z = tl_sigmoid(0.2);
  const double h_exp = (1 - z) * tanh(1.1 + r * 0.2) + z * 0.5;
  const double h_outside = (1 - z) * tanh(1.1 + r * -0.5 + 0.7) + z * 0.5;
  const double h_swapped = (1 - r) * tanh(1.1 + z * 0.2) + r * 0.5; /* rows z, r, n */
  TH_CHECK(fabs(h_exp - h_outside) > 1e-3, "golden gru: b_hn outside is indistinguishable");
  TH_CHECK(fabs(h_exp - h_swapped) > 1e-3, "golden gru: r/z swap is indistinguishable");
  seqk_tensor x = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){1});
  seqk_tensor h = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){0.5});
  seqk_tensor w_ih = values_tensor(dt, 2, SHAPE(3, 1), (const double[]){0.5, -0.3, 0.8});
  seqk_tensor w_hh = values_tensor(dt, 2, SHAPE(3, 1), (const double[]){0.6, 0.4, -1.0});
  seqk_tensor b_ih = values_tensor(dt, 1, SHAPE(3), (const double[]){0.1, 0.2, 0.3});
  seqk_tensor b_hh = values_tensor(dt, 1, SHAPE(3), (const double[]){-0.9, 0.1, 0.7});
  seqk_tensor h_out = out_tensor(dt, 2, SHAPE(1, 1), 0);
  seqk_status st = seqk_rnn_cell(g_ctx, SEQK_RNN_MODE_GRU, &x, &h, NULL, &w_ih, &w_hh, &b_ih, &b_hh,
                                 &h_out, NULL);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "golden gru cell");
  TH_CHECK(th_check_close("golden gru cell (b_hn inside r)", &h_out, &h_exp, th_tol_for(dt)),
           "gru h");
  TH_CHECK(fabs(th_get(&h_out, 0) - h_outside) > 1e-3, "golden gru: matches b_hn outside r");
}

/* relu, bidirectional, no biases, lengths {3, 2}: every value below is exact in bf16.
     forward  w_ih 1, w_hh 0.5:   seq0 x 1,2,3 -> 1, 2.5, 4.25;  seq1 x 1,2 -> 1, 2.5
     reverse  w_ih 1, w_hh 0.25:  seq0 from t=2: 3, 2.75, 1.6875;  seq1 from t=1: 2, 1.5
   seq1's x at t=2 (-100) lies past its length and must not matter. */
static void test_golden_forward(void) {
  for (int k = 0; k < 3; ++k) {
    const seqk_dtype dt = k_dtypes[k];
    seqk_tensor x = values_tensor(dt, 3, SHAPE(3, 2, 1), (const double[]){1, 1, 2, 2, 3, -100});
    seqk_tensor w_ih[2], w_hh[2];
    w_ih[0] = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){1});
    w_ih[1] = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){1});
    w_hh[0] = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){0.5});
    w_hh[1] = values_tensor(dt, 2, SHAPE(1, 1), (const double[]){0.25});
    seqk_tensor lengths = th_tensor_new(SEQK_DTYPE_I32, 1, SHAPE(2));
    th_fill_i32(&lengths, (const int32_t[]){3, 2});
    seqk_tensor y = out_tensor(dt, 3, SHAPE(3, 2, 2), 0), hn = out_tensor(dt, 3, SHAPE(2, 2, 1), 0);
    const seqk_rnn_desc desc = {SEQK_RNN_MODE_RELU, 1, 1, 1, 1, 0};
    const seqk_rnn_weights w = {w_ih, w_hh, NULL, NULL};
    seqk_status st = seqk_rnn_forward(g_ctx, &desc, &w, &x, NULL, NULL, &lengths, &y, &hn, NULL);
    th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "golden forward");
    const double y_exp[12] = {1, 1.6875, 1, 1.5, 2.5, 2.75, 2.5, 2, 4.25, 3, 0, 0};
    const double hn_exp[4] = {4.25, 2.5, 1.6875, 1.5};
    const th_tol exact = {0, 0};
    TH_CHECK(th_check_close("golden forward y", &y, y_exp, exact), "golden y %s", dtype_str(dt));
    TH_CHECK(th_check_close("golden forward hn", &hn, hn_exp, exact), "golden hn %s",
             dtype_str(dt));
  }
}

/* ---- cells against the test-local computation ------------------------------------------------ */

typedef struct cell_cfg {
  int has_h, has_c, has_bias, strided, inplace;
  int64_t N, I, H;
} cell_cfg;

static const cell_cfg k_cell_cfgs[] = {
    {1, 1, 1, 0, 0, 3, 5, 7}, /* everything given */
    {0, 0, 1, 0, 0, 3, 5, 7}, /* h and c absent: zeros */
    {1, 1, 0, 1, 0, 4, 3, 6}, /* no biases, strided views */
    {1, 0, 1, 1, 0, 2, 6, 5}, /* c absent only */
    {0, 1, 1, 0, 0, 3, 4, 3}, /* h absent only */
    {1, 1, 1, 0, 1, 5, 4, 3}, /* in place */
    {1, 1, 0, 1, 1, 3, 2, 9}, /* in place, strided, no biases */
    {1, 1, 1, 0, 0, 1, 1, 1}, /* size-1 everything */
};

static void test_cells(void) {
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 3; ++k)
      for (size_t ci = 0; ci < sizeof k_cell_cfgs / sizeof k_cell_cfgs[0]; ++ci) {
        const cell_cfg cf = k_cell_cfgs[ci];
        const seqk_rnn_mode mode = k_modes[m];
        const seqk_dtype dt = k_dtypes[k];
        const int lstm = mode == SEQK_RNN_MODE_LSTM, has_c = lstm && cf.has_c;
        const int64_t N = cf.N, I = cf.I, H = cf.H, G = gates_of(mode);
        const double wk = 1.0 / sqrt((double)H);
        seqk_tensor x = rand_tensor(dt, 2, SHAPE(N, I), cf.strided, -1, 1);
        seqk_tensor h = rand_tensor(dt, 2, SHAPE(N, H), cf.strided, -1, 1);
        seqk_tensor c = rand_tensor(dt, 2, SHAPE(N, H), cf.strided, -2, 2);
        seqk_tensor w_ih = rand_tensor(dt, 2, SHAPE(G * H, I), cf.strided, -wk, wk);
        seqk_tensor w_hh = rand_tensor(dt, 2, SHAPE(G * H, H), cf.strided, -wk, wk);
        seqk_tensor b_ih = rand_tensor(dt, 1, SHAPE(G * H), cf.strided, -wk, wk);
        seqk_tensor b_hh = rand_tensor(dt, 1, SHAPE(G * H), cf.strided, -wk, wk);

        /* Reference first: in place, the op overwrites h and c. */
        double *xd = th_to_doubles(&x), *hd = th_to_doubles(&h), *cd = th_to_doubles(&c);
        if (!cf.has_h) memset(hd, 0, (size_t)(N * H) * sizeof(double));
        if (!has_c) memset(cd, 0, (size_t)(N * H) * sizeof(double));
        double *wih = th_to_doubles(&w_ih), *whh = th_to_doubles(&w_hh);
        double *bih = cf.has_bias ? th_to_doubles(&b_ih) : NULL;
        double *bhh = cf.has_bias ? th_to_doubles(&b_hh) : NULL;
        double *ref_h = th_alloc((size_t)(N * H) * sizeof(double));
        double *ref_c = th_alloc((size_t)(N * H) * sizeof(double));
        for (int64_t n = 0; n < N; ++n)
          tl_cell_row(mode, I, H, wih, whh, bih, bhh, xd + n * I, hd + n * H, cd + n * H,
                      ref_h + n * H, ref_c + n * H);

        seqk_tensor h_out = cf.inplace ? h : out_tensor(dt, 2, SHAPE(N, H), cf.strided);
        seqk_tensor c_out = cf.inplace ? c : out_tensor(dt, 2, SHAPE(N, H), cf.strided);
        seqk_status st = seqk_rnn_cell(g_ctx, mode, &x, cf.has_h ? &h : NULL, has_c ? &c : NULL,
                                       &w_ih, &w_hh, cf.has_bias ? &b_ih : NULL,
                                       cf.has_bias ? &b_hh : NULL, &h_out, lstm ? &c_out : NULL);
        char what[160];
        snprintf(what, sizeof what, "cell %s %s cfg %zu (N=%lld I=%lld H=%lld)", mode_str(mode),
                 dtype_str(dt), ci, (long long)N, (long long)I, (long long)H);
        if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) continue;
        TH_CHECK(th_check_close(what, &h_out, ref_h, th_tol_for(dt)), "%s: h_out", what);
        if (lstm) TH_CHECK(th_check_close(what, &c_out, ref_c, th_tol_for(dt)), "%s: c_out", what);
        if (cf.inplace) continue; /* h and c now hold the outputs: no inputs left for a rerun */
        const seqk_tensor in[7] = {x,
                                   cf.has_h ? h : th_absent(h),
                                   has_c ? c : th_absent(c),
                                   w_ih,
                                   w_hh,
                                   cf.has_bias ? b_ih : th_absent(b_ih),
                                   cf.has_bias ? b_hh : th_absent(b_hh)};
        const seqk_tensor out[2] = {h_out, lstm ? c_out : th_absent(c_out)};
        th_check_on_device(g_ctx, what, cell_op, (void *)&mode, in, 7, 0, out, 2, 1.0);
      }
}

/* An empty batch is a no-op, and an optional tensor with NULL data counts as absent. */
static void test_cell_edges(void) {
  const seqk_dtype dt = SEQK_DTYPE_F32;
  const int64_t N = 2, I = 3, H = 4, G = 4;
  seqk_tensor x = rand_tensor(dt, 2, SHAPE(N, I), 0, -1, 1);
  seqk_tensor w_ih = rand_tensor(dt, 2, SHAPE(G * H, I), 0, -0.5, 0.5);
  seqk_tensor w_hh = rand_tensor(dt, 2, SHAPE(G * H, H), 0, -0.5, 0.5);
  seqk_tensor b_ih = rand_tensor(dt, 1, SHAPE(G * H), 0, -0.5, 0.5);
  seqk_tensor ho1 = out_tensor(dt, 2, SHAPE(N, H), 0), co1 = out_tensor(dt, 2, SHAPE(N, H), 0);
  seqk_tensor ho2 = out_tensor(dt, 2, SHAPE(N, H), 0), co2 = out_tensor(dt, 2, SHAPE(N, H), 0);
  seqk_tensor absent = seqk_tensor_view(NULL, dt, SEQK_DEVICE_CPU, 2, SHAPE(N, H));
  seqk_tensor absent_b = seqk_tensor_view(NULL, dt, SEQK_DEVICE_CPU, 1, SHAPE(G * H));
  seqk_status st = seqk_rnn_cell(g_ctx, SEQK_RNN_MODE_LSTM, &x, NULL, NULL, &w_ih, &w_hh, &b_ih,
                                 NULL, &ho1, &co1);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "cell, NULL optionals");
  st = seqk_rnn_cell(g_ctx, SEQK_RNN_MODE_LSTM, &x, &absent, &absent, &w_ih, &w_hh, &b_ih,
                     &absent_b, &ho2, &co2);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "cell, NULL-data optionals");
  const th_tol exact = {0, 0};
  TH_CHECK(th_check_close("cell NULL-data h", &ho2, th_to_doubles(&ho1), exact), "NULL-data h");
  TH_CHECK(th_check_close("cell NULL-data c", &co2, th_to_doubles(&co1), exact), "NULL-data c");

  seqk_tensor x0 = seqk_tensor_view(NULL, dt, SEQK_DEVICE_CPU, 2, SHAPE(0, I));
  seqk_tensor h0 = seqk_tensor_view(NULL, dt, SEQK_DEVICE_CPU, 2, SHAPE(0, H));
  seqk_tensor c0 = seqk_tensor_view(NULL, dt, SEQK_DEVICE_CPU, 2, SHAPE(0, H));
  st =
      seqk_rnn_cell(g_ctx, SEQK_RNN_MODE_LSTM, &x0, NULL, NULL, &w_ih, &w_hh, NULL, NULL, &h0, &c0);
  th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, "cell, N = 0");
}

/* ---- forward against the test-local network -------------------------------------------------- */

static void test_forward_sweep(void) {
  static const int32_t len_a[4] = {3, 4, 1, 2}; /* unsorted */
  static const int32_t len_b[2] = {1, 1};       /* T = 1 */
  static const int32_t len_c[5] = {6, 2, 6, 1, 4};
  static const int32_t len_d[3] = {3, 3, 3};    /* all equal, shorter than T */
  static const int32_t len_e[4] = {1, 1, 1, 1}; /* all 1, T > 1 */
  for (int m = 0; m < 4; ++m)
    for (int L = 1; L <= 3; ++L)
      for (int bi = 0; bi < 2; ++bi)
        for (int v = 0; v < 6; ++v) {
          const seqk_rnn_mode mode = k_modes[m];
          net n;
          fwd_io io;
          switch (v) {
            case 0:
              net_init(&n, mode, L, bi, 0, 5, 3, SEQK_DTYPE_F32, 1, 0);
              io_init(&io, &n, 5, 3, 1, 1, NULL, 1, 1, 0);
              break;
            case 1:
              net_init(&n, mode, L, bi, 1, 2, 4, SEQK_DTYPE_F16, 1, 0);
              io_init(&io, &n, 4, 4, 0, 0, len_a, 1, 0, 0);
              break;
            case 2:
              net_init(&n, mode, L, bi, 0, 3, 5, SEQK_DTYPE_BF16, 0, 1);
              io_init(&io, &n, 1, 2, 1, 0, len_b, 1, 1, 1);
              break;
            case 3:
              net_init(&n, mode, L, bi, 1, 1, 2, SEQK_DTYPE_F32, 1, 1);
              io_init(&io, &n, 6, 5, 1, 1, len_c, 0, 0, 1);
              break;
            case 4:
              net_init(&n, mode, L, bi, 0, 4, 3, SEQK_DTYPE_F16, 1, 0);
              io_init(&io, &n, 5, 3, 1, 1, len_d, 1, 1, 0);
              break;
            default:
              net_init(&n, mode, L, bi, 1, 3, 2, SEQK_DTYPE_BF16, 0, 0);
              io_init(&io, &n, 4, 4, 0, 0, len_e, 1, 1, 0);
              break;
          }
          char what[160];
          snprintf(what, sizeof what, "forward %s L=%d %s variant %d (%s)", mode_str(mode), L,
                   bi ? "bi" : "uni", v, dtype_str(n.dtype));
          io_check_ref(&n, &io, what, th_tol_scaled(n.dtype, 2));
        }
}

/* ---- the CUDA recurrence paths --------------------------------------------------------------- */

/* The dispatcher's automatic choice (small batches that fit on chip: persistent; N > 32 or
   weights too large for shared memory: per-step), an automatic run on each side, and shapes that
   reach the persistent kernel's less common branches on the emulated device (8 SMs): several
   units per block with a partial last block, lane groups of 4 and idle groups (N = 20, H = 38),
   and one lane per dot product with two items per thread and more than 48 KB of shared memory
   (N = 32, H = 136).
   Every case also runs on both forced paths through io_check_ref. */
static void test_forward_paths(void) {
  static const int32_t len20[20] = {4, 1, 3, 4, 2, 4, 4, 1, 2, 3, 4, 4, 3, 2, 1, 4, 3, 4, 2, 4};
  static const int32_t len33[33] = {2, 1, 2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2,
                                    1, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2, 2};
  if (seqk_cuda_device_count() > 0 && RNN_HOOKS_LINKED) {
    seqk__cuda_rnn_force(PATH_AUTO);
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 3, 5) == 1,
        "dispatch: a small batch with small weights takes the persistent kernel");
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 32, 5) == 1,
        "dispatch: N = 32 still takes the persistent kernel");
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_TANH, SEQK_DTYPE_F32, 33, 5) == 0,
        "dispatch: N = 33 takes the per-step path");
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 4, 512) == 0,
        "dispatch: W_hh beyond the emulated device's shared memory takes the per-step path");
    seqk__cuda_rnn_force(PATH_PERSISTENT);
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_TANH, SEQK_DTYPE_F32, 33, 5) == 1,
        "dispatch: forced, N = 33 takes the persistent kernel");
    TH_CHECK(
        seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_LSTM, SEQK_DTYPE_F32, 4, 512) == 0,
        "dispatch: forced, weights that do not fit still take the per-step path");
    seqk__cuda_rnn_force(PATH_PER_STEP);
    TH_CHECK(seqk__cuda_rnn_persistent_applies(g_ctx, SEQK_RNN_MODE_GRU, SEQK_DTYPE_F16, 2, 3) == 0,
             "dispatch: forced per-step");
    seqk__cuda_rnn_force(PATH_AUTO);
  }
  net n;
  fwd_io io;
  /* Automatic: N = 33 runs per-step, N = 2 persistent. */
  net_init(&n, SEQK_RNN_MODE_GRU, 2, 1, 0, 3, 3, SEQK_DTYPE_F32, 1, 0);
  io_init(&io, &n, 2, 33, 1, 0, len33, 1, 0, 0);
  io_check_ref(&n, &io, "paths GRU N=33", th_tol_scaled(n.dtype, 2));
  forward_on_device_path(&n, &io, "paths GRU N=33", PATH_AUTO);
  net_init(&n, SEQK_RNN_MODE_LSTM, 1, 1, 1, 2, 4, SEQK_DTYPE_BF16, 1, 1);
  io_init(&io, &n, 3, 2, 1, 1, NULL, 1, 1, 1);
  io_check_ref(&n, &io, "paths LSTM N=2", th_tol_scaled(n.dtype, 2));
  forward_on_device_path(&n, &io, "paths LSTM N=2", PATH_AUTO);
  /* Persistent branches. */
  net_init(&n, SEQK_RNN_MODE_GRU, 1, 1, 1, 5, 38, SEQK_DTYPE_F16, 1, 0);
  io_init(&io, &n, 4, 20, 1, 0, len20, 1, 0, 0);
  io_check_ref(&n, &io, "paths GRU N=20 H=38", th_tol_scaled(n.dtype, 2));
  net_init(&n, SEQK_RNN_MODE_LSTM, 1, 0, 0, 6, 136, SEQK_DTYPE_F32, 1, 0);
  io_init(&io, &n, 2, 32, 1, 1, NULL, 1, 1, 0);
  io_check_ref(&n, &io, "paths LSTM N=32 H=136", th_tol_scaled(n.dtype, 2));
  /* Two batch rows per item (cfg.rows = 2: where the threads are all busy; the plan check below
     pins the choice on the emulated device's 8 SMs), every gate count, an odd N whose last item
     has one row, lengths (rows past their end) and both directions. */
  static const int32_t len7[7] = {3, 1, 3, 2, 3, 3, 1};
  static const int32_t len9[9] = {2, 3, 1, 3, 3, 2, 3, 1, 3};
  net_init(&n, SEQK_RNN_MODE_GRU, 1, 0, 0, 5, 128, SEQK_DTYPE_F16, 1, 0);
  io_init(&io, &n, 3, 7, 1, 0, len7, 1, 0, 0);
  io_check_ref(&n, &io, "paths GRU N=7 H=128 two rows per item", th_tol_scaled(n.dtype, 2));
  net_init(&n, SEQK_RNN_MODE_TANH, 1, 0, 0, 3, 100, SEQK_DTYPE_BF16, 1, 0);
  io_init(&io, &n, 3, 5, 1, 0, NULL, 1, 0, 0);
  io_check_ref(&n, &io, "paths RNN N=5 H=100 two rows per item", th_tol_scaled(n.dtype, 2));
  net_init(&n, SEQK_RNN_MODE_LSTM, 1, 1, 0, 4, 96, SEQK_DTYPE_F32, 1, 0);
  io_init(&io, &n, 3, 9, 1, 1, len9, 1, 1, 0);
  io_check_ref(&n, &io, "paths LSTM bi N=9 H=96 two rows per item", th_tol_scaled(n.dtype, 2));
}

/* The persistent plan's batch rows per item: two where the threads are all busy with one (a
   thread's FMA count does not grow), one where spare threads can take the other rows, and always
   one for N = 1. The shapes are test_forward_paths' on an 8-SM device. */
static void test_persistent_rows(void) {
#ifdef SEQK_HAVE_CUDA
  static const struct {
    int32_t G;
    seqk_dtype dt;
    int64_t N, H;
    int rows;
  } cases[] = {{3, SEQK_DTYPE_F16, 7, 128, 2}, {1, SEQK_DTYPE_BF16, 5, 100, 2},
               {4, SEQK_DTYPE_F32, 9, 96, 2},  {4, SEQK_DTYPE_F32, 32, 136, 2},
               {3, SEQK_DTYPE_F16, 20, 38, 1}, {4, SEQK_DTYPE_F32, 2, 5, 1},
               {4, SEQK_DTYPE_F32, 1, 128, 1}, {3, SEQK_DTYPE_F16, 3, 200, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    seqk_k_rnn_persist_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char msg[160];
    snprintf(msg, sizeof msg, "persistent plan G=%d N=%lld H=%lld: %d row(s) per item",
             (int)cases[i].G, (long long)cases[i].N, (long long)cases[i].H, cases[i].rows);
    TH_CHECK(seqk_k_rnn_persistent_plan(cases[i].G, cases[i].dt, cases[i].N, cases[i].H, 8,
                                        227 * 1024, 1, 0, &cfg) == 1 &&
                 cfg.rows == cases[i].rows && cfg.threads <= 512 && cfg.threads % 32 == 0,
             msg);
  }
#endif
}

/* The in-place cell (h_out == h, c_out == c) on CUDA tensors, which device parity leaves out:
   every mode and dtype, contiguous and as strided views of a larger device buffer, against the
   test-local double computation. Nothing to do without a CUDA device. */
static void test_cell_inplace_on_device(void) {
  if (seqk_cuda_device_count() == 0) return;
  const int64_t N = 3, I = 4, H = 5;
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 3; ++k)
      for (int strided = 0; strided < 2; ++strided) {
        const seqk_rnn_mode mode = k_modes[m];
        const seqk_dtype dt = k_dtypes[k];
        const int lstm = mode == SEQK_RNN_MODE_LSTM;
        const int64_t G = gates_of(mode);
        const double wk = 1.0 / sqrt((double)H);
        seqk_tensor x = rand_tensor(dt, 2, SHAPE(N, I), strided, -1, 1);
        seqk_tensor h = rand_tensor(dt, 2, SHAPE(N, H), 0, -1, 1);
        seqk_tensor c = rand_tensor(dt, 2, SHAPE(N, H), 0, -2, 2);
        seqk_tensor w_ih = rand_tensor(dt, 2, SHAPE(G * H, I), strided, -wk, wk);
        seqk_tensor w_hh = rand_tensor(dt, 2, SHAPE(G * H, H), strided, -wk, wk);
        seqk_tensor b_ih = rand_tensor(dt, 1, SHAPE(G * H), strided, -wk, wk);
        seqk_tensor b_hh = rand_tensor(dt, 1, SHAPE(G * H), strided, -wk, wk);
        double *ref_h = th_alloc((size_t)(N * H) * sizeof(double));
        double *ref_c = th_alloc((size_t)(N * H) * sizeof(double));
        const double *xd = th_to_doubles(&x), *hd = th_to_doubles(&h), *cd = th_to_doubles(&c);
        const double *wih = th_to_doubles(&w_ih), *whh = th_to_doubles(&w_hh);
        const double *bih = th_to_doubles(&b_ih), *bhh = th_to_doubles(&b_hh);
        for (int64_t r = 0; r < N; ++r)
          tl_cell_row(mode, I, H, wih, whh, bih, bhh, xd + r * I, hd + r * H, cd + r * H,
                      ref_h + r * H, ref_c + r * H);
        char what[160];
        snprintf(what, sizeof what, "in-place cell on CUDA %s %s %s", mode_str(mode), dtype_str(dt),
                 strided ? "strided" : "contiguous");

        /* Device copies; h and c as [N, H] views with row stride H + 3 when strided. */
        const seqk_tensor *hosts[7] = {&x, &w_ih, &w_hh, &b_ih, &b_hh, &h, &c};
        seqk_tensor dev[7], back[7];
        seqk_status st = SEQK_STATUS_SUCCESS;
        memset(back, 0, sizeof back);
        for (int i = 0; i < 7 && st == SEQK_STATUS_SUCCESS; ++i) {
          const int state = i >= 5, pad = state && strided;
          const int64_t rows = hosts[i]->shape[0];
          const int64_t cols = hosts[i]->ndim == 2 ? hosts[i]->shape[1] : 1;
          const int64_t alloc_shape[2] = {rows, cols + (pad ? 3 : 0)};
          st =
              seqk_tensor_alloc(g_ctx, &back[i], dt, SEQK_DEVICE_CUDA, hosts[i]->ndim, alloc_shape);
          dev[i] = back[i];
          if (hosts[i]->ndim == 2) dev[i].shape[1] = cols;
          if (st == SEQK_STATUS_SUCCESS) st = seqk_tensor_copy(g_ctx, &dev[i], hosts[i]);
        }
        if (st == SEQK_STATUS_SUCCESS)
          st = seqk_rnn_cell(g_ctx, mode, &dev[0], &dev[5], lstm ? &dev[6] : NULL, &dev[1], &dev[2],
                             &dev[3], &dev[4], &dev[5], lstm ? &dev[6] : NULL);
        if (th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) {
          seqk_tensor got_h = th_tensor_new(dt, 2, SHAPE(N, H));
          seqk_tensor got_c = th_tensor_new(dt, 2, SHAPE(N, H));
          st = seqk_tensor_copy(g_ctx, &got_h, &dev[5]);
          if (st == SEQK_STATUS_SUCCESS && lstm) st = seqk_tensor_copy(g_ctx, &got_c, &dev[6]);
          if (th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) {
            const th_tol tol = th_tol_scaled(dt, TH_DEVICE_TOL);
            TH_CHECK(th_check_close(what, &got_h, ref_h, tol), "%s: h", what);
            if (lstm) TH_CHECK(th_check_close(what, &got_c, ref_c, tol), "%s: c", what);
          }
        }
        for (int i = 0; i < 7; ++i) seqk_tensor_free(g_ctx, &back[i]);
      }
}

/* ---- identities ------------------------------------------------------------------------------ */

/* A 1-layer unidirectional sequence is seqk_rnn_cell applied T times (in place on h and c).
   The cells round the state to the dtype every step, the layer keeps it in double: the
   tolerance grows with T. */
static void test_seq_equals_cells(void) {
  const int64_t T = 5, N = 3, I = 4, H = 5;
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 3; ++k)
      for (int with_h0 = 0; with_h0 < 2; ++with_h0) {
        const seqk_rnn_mode mode = k_modes[m];
        const seqk_dtype dt = k_dtypes[k];
        const int lstm = mode == SEQK_RNN_MODE_LSTM;
        const th_tol tol = th_tol_scaled(dt, (double)T);
        net n;
        fwd_io io;
        net_init(&n, mode, 1, 0, 0, (int)I, (int)H, dt, with_h0, 0);
        io_init(&io, &n, T, N, with_h0, with_h0, NULL, 1, 1, 0);
        char what[160];
        snprintf(what, sizeof what, "seq vs cells %s %s h0 %s", mode_str(mode), dtype_str(dt),
                 with_h0 ? "given" : "absent");
        if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL, what)) continue;
        seqk_tensor hs = out_tensor(dt, 2, SHAPE(N, H), 0), cs = out_tensor(dt, 2, SHAPE(N, H), 0);
        seqk_tensor h0 = slice0(&io.h0, 0), c0 = slice0(&io.c0, 0);
        for (int64_t t = 0; t < T; ++t) {
          seqk_tensor xt = slice0(&io.x, t), yt = slice0(&io.y, t);
          const seqk_tensor *h_in = t > 0 ? &hs : with_h0 ? &h0 : NULL;
          const seqk_tensor *c_in = !lstm ? NULL : t > 0 ? &cs : with_h0 ? &c0 : NULL;
          seqk_status st = seqk_rnn_cell(g_ctx, mode, &xt, h_in, c_in, &n.w_ih[0], &n.w_hh[0],
                                         n.w.b_ih, n.w.b_hh, &hs, lstm ? &cs : NULL);
          if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) break;
          TH_CHECK(th_check_close(what, &yt, th_to_doubles(&hs), tol), "%s: y[%lld]", what,
                   (long long)t);
        }
        seqk_tensor hn = slice0(&io.hn, 0), cn = slice0(&io.cn, 0);
        TH_CHECK(th_check_close(what, &hn, th_to_doubles(&hs), tol), "%s: hn", what);
        if (lstm) TH_CHECK(th_check_close(what, &cn, th_to_doubles(&cs), tol), "%s: cn", what);
      }
}

/* The reverse half of a bidirectional layer is a unidirectional layer with the reverse weights
   run over the time-reversed sequence (and reversed back); the forward half is the plain
   unidirectional layer. */
static void test_reverse_identity(void) {
  const int64_t T = 5, N = 2, I = 3, H = 4;
  const seqk_dtype dts[2] = {SEQK_DTYPE_F32, SEQK_DTYPE_BF16};
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 2; ++k) {
      const seqk_rnn_mode mode = k_modes[m];
      const seqk_dtype dt = dts[k];
      const int lstm = mode == SEQK_RNN_MODE_LSTM;
      net n;
      fwd_io io;
      net_init(&n, mode, 1, 1, 0, (int)I, (int)H, dt, 1, 0);
      io_init(&io, &n, T, N, 1, 1, NULL, 1, 1, 0);
      char what[160];
      snprintf(what, sizeof what, "reverse identity %s %s", mode_str(mode), dtype_str(dt));
      if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL, what)) continue;
      seqk_rnn_desc uni = n.desc;
      uni.bidirectional = 0;
      for (int64_t d = 0; d < 2; ++d) {
        const seqk_rnn_weights w1 = {&n.w_ih[d], &n.w_hh[d], &n.b_ih[d], &n.b_hh[d]};
        seqk_tensor xd = io.x;
        if (d == 1) {
          xd = th_tensor_new(dt, 3, SHAPE(T, N, I));
          for (int64_t t = 0; t < T; ++t)
            for (int64_t r = 0; r < N * I; ++r)
              th_set(&xd, t * N * I + r, th_get(&io.x, (T - 1 - t) * N * I + r));
        }
        seqk_tensor h0 = sub_view(&io.h0, 0, d, 1), c0 = sub_view(&io.c0, 0, d, 1);
        seqk_tensor y1 = out_tensor(dt, 3, SHAPE(T, N, H), 0);
        seqk_tensor hn1 = out_tensor(dt, 3, SHAPE(1, N, H), 0),
                    cn1 = out_tensor(dt, 3, SHAPE(1, N, H), 0);
        seqk_status st = seqk_rnn_forward(g_ctx, &uni, &w1, &xd, &h0, lstm ? &c0 : NULL, NULL, &y1,
                                          &hn1, lstm ? &cn1 : NULL);
        if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) continue;
        double *y1d = th_to_doubles(&y1), *ref = th_alloc((size_t)(T * N * H) * sizeof(double));
        for (int64_t t = 0; t < T; ++t)
          memcpy(ref + t * N * H, y1d + (d ? T - 1 - t : t) * N * H,
                 (size_t)(N * H) * sizeof(double));
        seqk_tensor half = sub_view(&io.y, 2, d * H, H), hn = sub_view(&io.hn, 0, d, 1);
        seqk_tensor cn = sub_view(&io.cn, 0, d, 1);
        TH_CHECK(th_check_close(what, &half, ref, th_tol_for(dt)), "%s: y half %lld", what,
                 (long long)d);
        TH_CHECK(th_check_close(what, &hn, th_to_doubles(&hn1), th_tol_for(dt)), "%s: hn[%lld]",
                 what, (long long)d);
        if (lstm)
          TH_CHECK(th_check_close(what, &cn, th_to_doubles(&cn1), th_tol_for(dt)), "%s: cn[%lld]",
                   what, (long long)d);
      }
    }
}

/* L layers = L one-layer calls, each fed the previous call's y (rounded to the dtype, hence the
   tolerance), with h0/c0/hn/cn sliced per layer and the lengths passed to every call. */
static void test_multilayer_identity(void) {
  const int64_t T = 5, N = 3, I = 3, H = 4, L = 3;
  static const int32_t lens[3] = {2, 5, 3};
  const seqk_dtype dts[2] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16};
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 2; ++k)
      for (int bi = 0; bi < 2; ++bi) {
        const seqk_rnn_mode mode = k_modes[m];
        const seqk_dtype dt = dts[k];
        const int lstm = mode == SEQK_RNN_MODE_LSTM, bf = bi; /* batch_first rides along */
        const int64_t D = bi ? 2 : 1, DH = D * H;
        const th_tol tol = th_tol_scaled(dt, 4);
        net n;
        fwd_io io;
        net_init(&n, mode, (int)L, bi, bf, (int)I, (int)H, dt, 1, 0);
        io_init(&io, &n, T, N, 1, 1, lens, 1, 1, 0);
        char what[160];
        snprintf(what, sizeof what, "multilayer identity %s %s %s", mode_str(mode), dtype_str(dt),
                 bi ? "bi" : "uni");
        if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL, what)) continue;
        seqk_tensor prev = io.x;
        for (int64_t l = 0; l < L; ++l) {
          seqk_rnn_desc one = n.desc;
          one.num_layers = 1;
          one.input_size = (int32_t)(l == 0 ? I : DH);
          const seqk_rnn_weights w1 = {&n.w_ih[l * D], &n.w_hh[l * D], &n.b_ih[l * D],
                                       &n.b_hh[l * D]};
          seqk_tensor h0 = sub_view(&io.h0, 0, l * D, D), c0 = sub_view(&io.c0, 0, l * D, D);
          seqk_tensor yl = out_tensor(dt, 3, bf ? SHAPE(N, T, DH) : SHAPE(T, N, DH), 0);
          seqk_tensor hnl = out_tensor(dt, 3, SHAPE(D, N, H), 0),
                      cnl = out_tensor(dt, 3, SHAPE(D, N, H), 0);
          seqk_status st = seqk_rnn_forward(g_ctx, &one, &w1, &prev, &h0, lstm ? &c0 : NULL,
                                            &io.lengths, &yl, &hnl, lstm ? &cnl : NULL);
          if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) break;
          seqk_tensor hn = sub_view(&io.hn, 0, l * D, D), cn = sub_view(&io.cn, 0, l * D, D);
          TH_CHECK(th_check_close(what, &hn, th_to_doubles(&hnl), tol), "%s: hn layer %lld", what,
                   (long long)l);
          if (lstm)
            TH_CHECK(th_check_close(what, &cn, th_to_doubles(&cnl), tol), "%s: cn layer %lld", what,
                     (long long)l);
          prev = yl;
        }
        TH_CHECK(th_check_close(what, &io.y, th_to_doubles(&prev), tol), "%s: y", what);
      }
}

/* batch_first over x^T (a transposed view of the [T,N,I] input) equals the [T,N,*] run
   transposed; once with a contiguous [N,T,*] y, once with y a transposed view of a [T,N,*]
   buffer. h0/hn keep their layout. */
static void test_batch_first_identity(void) {
  const int64_t T = 4, N = 3, I = 3, H = 3;
  static const int32_t lens[3] = {4, 1, 3};
  const seqk_dtype dts[2] = {SEQK_DTYPE_F32, SEQK_DTYPE_F16};
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 2; ++k) {
      const seqk_rnn_mode mode = k_modes[m];
      const seqk_dtype dt = dts[k];
      const int lstm = mode == SEQK_RNN_MODE_LSTM;
      net n;
      fwd_io io;
      net_init(&n, mode, 2, 1, 0, (int)I, (int)H, dt, 1, 0);
      io_init(&io, &n, T, N, 1, 1, lens, 1, 1, 0);
      const int64_t DH = 2 * H;
      char what[160];
      snprintf(what, sizeof what, "batch_first identity %s %s", mode_str(mode), dtype_str(dt));
      if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL, what)) continue;
      seqk_rnn_desc desc_bf = n.desc;
      desc_bf.batch_first = 1;
      seqk_tensor x_nt = io.x;
      x_nt.shape[0] = N;
      x_nt.shape[1] = T;
      x_nt.stride[0] = io.x.stride[1];
      x_nt.stride[1] = io.x.stride[0];
      double *y_tn = th_to_doubles(&io.y), *ref = th_alloc((size_t)(T * N * DH) * sizeof(double));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < N; ++b)
          memcpy(ref + (b * T + t) * DH, y_tn + (t * N + b) * DH, (size_t)DH * sizeof(double));
      for (int y_view = 0; y_view < 2; ++y_view) {
        seqk_tensor buf = out_tensor(dt, 3, y_view ? SHAPE(T, N, DH) : SHAPE(N, T, DH), 0);
        seqk_tensor y = buf;
        if (y_view) {
          y.shape[0] = N;
          y.shape[1] = T;
          y.stride[0] = buf.stride[1];
          y.stride[1] = buf.stride[0];
        }
        seqk_tensor hn = out_tensor(dt, 3, SHAPE(4, N, H), 0),
                    cn = out_tensor(dt, 3, SHAPE(4, N, H), 0);
        seqk_status st =
            seqk_rnn_forward(g_ctx, &desc_bf, &n.w, &x_nt, &io.h0, lstm ? &io.c0 : NULL,
                             &io.lengths, &y, &hn, lstm ? &cn : NULL);
        if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) continue;
        if (y_view)
          TH_CHECK(th_check_close(what, &buf, y_tn, th_tol_for(dt)), "%s: y view", what);
        else
          TH_CHECK(th_check_close(what, &y, ref, th_tol_for(dt)), "%s: y", what);
        TH_CHECK(th_check_close(what, &hn, th_to_doubles(&io.hn), th_tol_for(dt)), "%s: hn", what);
        if (lstm)
          TH_CHECK(th_check_close(what, &cn, th_to_doubles(&io.cn), th_tol_for(dt)), "%s: cn",
                   what);
      }
    }
}

/* With lengths, sequence b of the batch equals the length-lengths[b] slice of it run alone
   (N = 1, T = lengths[b], no lengths), and y is exactly 0 past its length. */
static void test_lengths_identity(void) {
  const int64_t T = 6, N = 5, I = 3, H = 4;
  static const int32_t sets[4][5] = {
      {3, 6, 1, 6, 2}, {4, 4, 4, 4, 4}, {6, 6, 6, 6, 6}, {1, 1, 1, 1, 1}};
  for (int m = 0; m < 4; ++m)
    for (int s = 0; s < 4; ++s)
      for (int L = 1; L <= 2; ++L) {
        const seqk_rnn_mode mode = k_modes[m];
        const seqk_dtype dt = k_dtypes[(s + L) % 3];
        const int lstm = mode == SEQK_RNN_MODE_LSTM, bf = s & 1;
        const int64_t DH = 2 * H, LD = 2 * L, tdim = bf ? 1 : 0, bdim = bf ? 0 : 1;
        net n;
        fwd_io io;
        net_init(&n, mode, L, 1, bf, (int)I, (int)H, dt, 1, s == 0);
        io_init(&io, &n, T, N, 1, 1, sets[s], 1, 1, s == 0);
        char what[160];
        snprintf(what, sizeof what, "lengths identity %s set %d L=%d %s", mode_str(mode), s, L,
                 dtype_str(dt));
        if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL, what)) continue;
        for (int64_t b = 0; b < N; ++b) {
          const int64_t len = sets[s][b];
          seqk_tensor xb = sub_view(&io.x, (int)bdim, b, 1);
          xb = sub_view(&xb, (int)tdim, 0, len);
          seqk_tensor h0 = sub_view(&io.h0, 1, b, 1), c0 = sub_view(&io.c0, 1, b, 1);
          seqk_tensor yb = out_tensor(dt, 3, bf ? SHAPE(1, len, DH) : SHAPE(len, 1, DH), 0);
          seqk_tensor hnb = out_tensor(dt, 3, SHAPE(LD, 1, H), 0),
                      cnb = out_tensor(dt, 3, SHAPE(LD, 1, H), 0);
          seqk_status st = seqk_rnn_forward(g_ctx, &n.desc, &n.w, &xb, &h0, lstm ? &c0 : NULL, NULL,
                                            &yb, &hnb, lstm ? &cnb : NULL);
          if (!th_expect_status(g_ctx, st, SEQK_STATUS_SUCCESS, NULL, what)) continue;
          seqk_tensor y_row = sub_view(&io.y, (int)bdim, b, 1);
          seqk_tensor valid = sub_view(&y_row, (int)tdim, 0, len);
          TH_CHECK(th_check_close(what, &valid, th_to_doubles(&yb), th_tol_for(dt)),
                   "%s: y of sequence %lld", what, (long long)b);
          if (len < T) {
            seqk_tensor pad = sub_view(&y_row, (int)tdim, len, T - len);
            double *pd = th_to_doubles(&pad);
            int zero = 1;
            for (int64_t i = 0; i < th_numel(&pad); ++i) zero &= pd[i] == 0.0;
            TH_CHECK(zero, "%s: y of sequence %lld is not 0 past its length", what, (long long)b);
          }
          seqk_tensor hn = sub_view(&io.hn, 1, b, 1), cn = sub_view(&io.cn, 1, b, 1);
          TH_CHECK(th_check_close(what, &hn, th_to_doubles(&hnb), th_tol_for(dt)),
                   "%s: hn of sequence %lld", what, (long long)b);
          if (lstm)
            TH_CHECK(th_check_close(what, &cn, th_to_doubles(&cnb), th_tol_for(dt)),
                     "%s: cn of sequence %lld", what, (long long)b);
        }
      }
}

/* ---- bad input: seqk_rnn_cell ---------------------------------------------------------------- */

typedef struct cell_fix {
  seqk_rnn_mode mode;
  seqk_tensor x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out;
  seqk_tensor buf; /* spare memory for partially overlapping views */
} cell_fix;

typedef struct cell_args {
  seqk_rnn_mode mode;
  const seqk_tensor *x, *h, *c, *w_ih, *w_hh, *b_ih, *b_hh;
  seqk_tensor *h_out, *c_out;
} cell_args;

/* N = 2, I = 3, H = 2, f32, contiguous. */
static void cell_fix_init(cell_fix *f, seqk_rnn_mode mode) {
  const int64_t G = gates_of(mode);
  f->mode = mode;
  f->x = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(2, 3), 0, -1, 1);
  f->h = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(2, 2), 0, -1, 1);
  f->c = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(2, 2), 0, -1, 1);
  f->w_ih = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(G * 2, 3), 0, -1, 1);
  f->w_hh = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(G * 2, 2), 0, -1, 1);
  f->b_ih = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(G * 2), 0, -1, 1);
  f->b_hh = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(G * 2), 0, -1, 1);
  f->h_out = out_tensor(SEQK_DTYPE_F32, 2, SHAPE(2, 2), 0);
  f->c_out = out_tensor(SEQK_DTYPE_F32, 2, SHAPE(2, 2), 0);
  f->buf = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(8), 0, -1, 1);
}

static cell_args cell_default(cell_fix *f) {
  const int lstm = f->mode == SEQK_RNN_MODE_LSTM;
  return (cell_args){f->mode,  &f->x,    &f->h,    lstm ? &f->c : NULL, &f->w_ih,
                     &f->w_hh, &f->b_ih, &f->b_hh, &f->h_out,           lstm ? &f->c_out : NULL};
}

static seqk_status cell_call(seqk_context_t ctx, const cell_args *a) {
  return seqk_rnn_cell(ctx, a->mode, a->x, a->h, a->c, a->w_ih, a->w_hh, a->b_ih, a->b_hh, a->h_out,
                       a->c_out);
}

static void expect_bad_cell(cell_fix *f, const cell_args *a, const char *needle, const char *what) {
  const seqk_tensor *all[] = {&f->x,    &f->h,    &f->c,     &f->w_ih,  &f->w_hh,
                              &f->b_ih, &f->b_hh, &f->h_out, &f->c_out, &f->buf};
  th_snapshot snaps[sizeof all / sizeof all[0]];
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) snaps[i] = th_snapshot_take(all[i]);
  char full[300];
  snprintf(full, sizeof full, "rnn_cell %s: %s", mode_str(f->mode), what);
  th_expect_rejected(g_ctx, cell_call(g_ctx, a), SEQK_STATUS_INVALID_VALUE, needle, full, snaps,
                     (int)(sizeof snaps / sizeof snaps[0]));
}

/* Each case starts from the fixture's valid arguments and breaks one thing; t is a scratch copy
   of a tensor to break. */
#define BAD_CELL(fix, needle, ...)                                                                 \
  do {                                                                                             \
    cell_args a = cell_default(&(fix));                                                            \
    seqk_tensor t = (fix).x;                                                                       \
    (void)t;                                                                                       \
    __VA_ARGS__;                                                                                   \
    expect_bad_cell(&(fix), &a, needle, #__VA_ARGS__);                                             \
  } while (0)

static void test_bad_cell(void) {
  const seqk_dtype F32 = SEQK_DTYPE_F32, F16 = SEQK_DTYPE_F16, BF16 = SEQK_DTYPE_BF16;
  const seqk_device CUDA = SEQK_DEVICE_CUDA;
  cell_fix f, g, r;
  cell_fix_init(&f, SEQK_RNN_MODE_LSTM);
  cell_fix_init(&g, SEQK_RNN_MODE_GRU);
  cell_fix_init(&r, SEQK_RNN_MODE_TANH);
  {
    cell_args a = cell_default(&f);
    th_expect_status(g_ctx, cell_call(g_ctx, &a), SEQK_STATUS_SUCCESS, NULL,
                     "bad-cell fixture is valid");
    th_snapshot s = th_snapshot_take(&f.h_out);
    TH_CHECK(cell_call(NULL, &a) == SEQK_STATUS_INVALID_VALUE && th_snapshot_unchanged(&s),
             "rnn_cell: NULL ctx");
  }
  /* Two [2,2] views of buf one element apart: a partial overlap. */
  seqk_tensor p0 = view_at(f.buf.data, F32, 2, SHAPE(2, 2));
  seqk_tensor p1 = view_at(elem_ptr(&f.buf, 1), F32, 2, SHAPE(2, 2));

  BAD_CELL(f, "mode=7", a.mode = (seqk_rnn_mode)7);
  BAD_CELL(f, "mode=-1", a.mode = (seqk_rnn_mode)-1);
  BAD_CELL(f, "x is NULL", a.x = NULL);
  BAD_CELL(f, "x.data", t = f.x; t.data = NULL; a.x = &t);
  BAD_CELL(f, "x.ndim", t = f.x; t.ndim = 3; t.shape[2] = 1; t.stride[2] = 1; a.x = &t);
  BAD_CELL(f, "x.dtype", t = f.x; t.dtype = SEQK_DTYPE_I32; a.x = &t);
  BAD_CELL(f, "x.shape[1]", t = f.x; t.shape[1] = 0; a.x = &t);
  BAD_CELL(f, "x.stride[0]", t = f.x; t.stride[0] = -1; a.x = &t);
  BAD_CELL(f, "x is on CUDA", t = f.x; t.device = CUDA; a.x = &t);
  BAD_CELL(f, "w_hh is NULL", a.w_hh = NULL);
  BAD_CELL(f, "w_hh.shape[0]", t = f.w_hh; t.shape[0] = 6; a.w_hh = &t);
  BAD_CELL(f, "w_hh.shape[1]", t = f.w_hh; t.shape[1] = 0; a.w_hh = &t);
  BAD_CELL(f, "w_hh.ndim", t = f.w_hh; t.ndim = 1; a.w_hh = &t);
  BAD_CELL(f, "w_hh.dtype", t = f.w_hh; t.dtype = F16; a.w_hh = &t);
  BAD_CELL(f, "w_hh is on CUDA", t = f.w_hh; t.device = CUDA; a.w_hh = &t);
  BAD_CELL(f, "w_ih is NULL", a.w_ih = NULL);
  BAD_CELL(f, "w_ih.data", t = f.w_ih; t.data = NULL; a.w_ih = &t);
  BAD_CELL(f, "w_ih.shape[1]", t = f.w_ih; t.shape[1] = 2; a.w_ih = &t);
  BAD_CELL(f, "w_ih.shape[0]", t = f.w_ih; t.shape[0] = 7; a.w_ih = &t);
  BAD_CELL(f, "w_ih.ndim", t = f.w_ih; t.ndim = 1; a.w_ih = &t);
  BAD_CELL(f, "w_ih.dtype", t = f.w_ih; t.dtype = BF16; a.w_ih = &t);
  BAD_CELL(f, "b_ih.shape[0]", t = f.b_ih; t.shape[0] = 7; a.b_ih = &t);
  BAD_CELL(f, "b_hh.ndim", t = f.b_hh; t.ndim = 2; t.shape[1] = 1; t.stride[1] = 1; a.b_hh = &t);
  BAD_CELL(f, "b_ih.dtype", t = f.b_ih; t.dtype = BF16; a.b_ih = &t);
  BAD_CELL(f, "b_hh is on CUDA", t = f.b_hh; t.device = CUDA; a.b_hh = &t);
  BAD_CELL(f, "h.shape[1]", t = f.h; t.shape[1] = 1; a.h = &t);
  BAD_CELL(f, "h.shape[0]", t = f.h; t.shape[0] = 1; a.h = &t);
  BAD_CELL(f, "h.dtype", t = f.h; t.dtype = F16; a.h = &t);
  BAD_CELL(f, "h is on CUDA", t = f.h; t.device = CUDA; a.h = &t);
  BAD_CELL(f, "c.shape[0]", t = f.c; t.shape[0] = 1; a.c = &t);
  BAD_CELL(f, "c.dtype", t = f.c; t.dtype = BF16; a.c = &t);
  BAD_CELL(f, "c is on CUDA", t = f.c; t.device = CUDA; a.c = &t);
  BAD_CELL(f, "h_out is NULL", a.h_out = NULL);
  BAD_CELL(f, "h_out.data", t = f.h_out; t.data = NULL; a.h_out = &t);
  BAD_CELL(f, "h_out.shape[1]", t = f.h_out; t.shape[1] = 1; a.h_out = &t);
  BAD_CELL(f, "h_out.ndim", t = f.h_out; t.ndim = 3; t.shape[2] = 1; t.stride[2] = 1; a.h_out = &t);
  BAD_CELL(f, "h_out.dtype", t = f.h_out; t.dtype = F16; a.h_out = &t);
  BAD_CELL(f, "h_out is on CUDA", t = f.h_out; t.device = CUDA; a.h_out = &t);
  BAD_CELL(f, "output h_out has overlapping", t = f.h_out; t.stride[0] = 0; a.h_out = &t);
  BAD_CELL(f, "c_out is NULL", a.c_out = NULL);
  BAD_CELL(f, "c_out.data", t = f.c_out; t.data = NULL; a.c_out = &t);
  BAD_CELL(f, "c_out.shape[0]", t = f.c_out; t.shape[0] = 1; a.c_out = &t);
  BAD_CELL(f, "c_out.dtype", t = f.c_out; t.dtype = BF16; a.c_out = &t);
  BAD_CELL(f, "output c_out has overlapping", t = f.c_out; t.stride[1] = 0; a.c_out = &t);
  /* Only h_out == h and c_out == c may share memory. */
  BAD_CELL(f, "h_out partially overlaps h", a.h = &p0; a.h_out = &p1);
  BAD_CELL(f, "c_out partially overlaps c", a.c = &p0; a.c_out = &p1);
  BAD_CELL(f, "h_out overlaps x", t = view_at(f.x.data, F32, 2, SHAPE(2, 2)); a.h_out = &t);
  BAD_CELL(f, "h_out overlaps c", a.h_out = &f.c);
  BAD_CELL(f, "h_out overlaps w_ih", t = view_at(f.w_ih.data, F32, 2, SHAPE(2, 2)); a.h_out = &t);
  BAD_CELL(f, "h_out overlaps w_hh", t = view_at(elem_ptr(&f.w_hh, 3), F32, 2, SHAPE(2, 2));
           a.h_out = &t);
  BAD_CELL(f, "h_out overlaps b_hh", t = view_at(f.b_hh.data, F32, 2, SHAPE(2, 2)); a.h_out = &t);
  BAD_CELL(f, "c_out overlaps h", a.c_out = &f.h);
  BAD_CELL(f, "c_out overlaps h_out", a.c_out = &f.h_out);
  BAD_CELL(f, "c_out overlaps x", t = view_at(elem_ptr(&f.x, 2), F32, 2, SHAPE(2, 2));
           a.c_out = &t);
  BAD_CELL(f, "c_out overlaps b_ih", t = view_at(elem_ptr(&f.b_ih, 4), F32, 2, SHAPE(2, 2));
           a.c_out = &t);
  /* c and c_out belong to LSTM only. */
  BAD_CELL(g, "c is given", a.c = &g.c);
  BAD_CELL(g, "c_out is given", a.c_out = &g.c_out);
  BAD_CELL(r, "c is given", a.c = &r.c);
  BAD_CELL(r, "c_out is given", a.c_out = &r.c_out);
  BAD_CELL(g, "w_hh.shape[0]", a.mode = SEQK_RNN_MODE_LSTM; a.c_out = &g.c_out);
  BAD_CELL(r, "h.shape[1]", t = r.h; t.shape[1] = 1; a.h = &t);
}

/* ---- bad input: seqk_rnn_forward ------------------------------------------------------------- */

typedef struct fwd_fix {
  seqk_rnn_desc desc;
  seqk_tensor w_ih[4], w_hh[4], b_ih[4], b_hh[4];
  seqk_rnn_weights w;
  seqk_tensor x, h0, c0, lengths, y, hn, cn;
  seqk_tensor big; /* spare memory for overlapping views */
} fwd_fix;

typedef struct fwd_args {
  const seqk_rnn_desc *desc;
  const seqk_rnn_weights *w;
  const seqk_tensor *x, *h0, *c0, *lengths;
  seqk_tensor *y, *hn, *cn;
} fwd_args;

/* A copy of the fixture's weight arrays to break one entry of. Never copied once initialised. */
typedef struct wcopy {
  seqk_tensor w_ih[4], w_hh[4], b_ih[4], b_hh[4];
  seqk_rnn_weights w;
} wcopy;

/* T = 3, N = 2, I = 3, H = 2, 2 layers, bidirectional ([T,N,*]), lengths {3, 2}, f32. */
static void fwd_fix_init(fwd_fix *f, seqk_rnn_mode mode) {
  const int64_t G = gates_of(mode), T = 3, N = 2, I = 3, H = 2;
  f->desc = (seqk_rnn_desc){mode, (int32_t)I, (int32_t)H, 2, 1, 0};
  for (int e = 0; e < 4; ++e) {
    f->w_ih[e] = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(G * H, e < 2 ? I : 2 * H), 0, -1, 1);
    f->w_hh[e] = rand_tensor(SEQK_DTYPE_F32, 2, SHAPE(G * H, H), 0, -1, 1);
    f->b_ih[e] = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(G * H), 0, -1, 1);
    f->b_hh[e] = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(G * H), 0, -1, 1);
  }
  f->w = (seqk_rnn_weights){f->w_ih, f->w_hh, f->b_ih, f->b_hh};
  f->x = rand_tensor(SEQK_DTYPE_F32, 3, SHAPE(T, N, I), 0, -1, 1);
  f->h0 = rand_tensor(SEQK_DTYPE_F32, 3, SHAPE(4, N, H), 0, -1, 1);
  f->c0 = rand_tensor(SEQK_DTYPE_F32, 3, SHAPE(4, N, H), 0, -1, 1);
  f->lengths = th_tensor_new(SEQK_DTYPE_I32, 1, SHAPE(N));
  th_fill_i32(&f->lengths, (const int32_t[]){3, 2});
  f->y = out_tensor(SEQK_DTYPE_F32, 3, SHAPE(T, N, 2 * H), 0);
  f->hn = out_tensor(SEQK_DTYPE_F32, 3, SHAPE(4, N, H), 0);
  f->cn = out_tensor(SEQK_DTYPE_F32, 3, SHAPE(4, N, H), 0);
  f->big = rand_tensor(SEQK_DTYPE_F32, 1, SHAPE(64), 0, -1, 1);
}

static fwd_args fwd_default(fwd_fix *f) {
  const int lstm = f->desc.mode == SEQK_RNN_MODE_LSTM;
  return (fwd_args){&f->desc,
                    &f->w,
                    &f->x,
                    &f->h0,
                    lstm ? &f->c0 : NULL,
                    &f->lengths,
                    &f->y,
                    &f->hn,
                    lstm ? &f->cn : NULL};
}

static void wcopy_init(wcopy *c, const fwd_fix *f) {
  memcpy(c->w_ih, f->w_ih, sizeof c->w_ih);
  memcpy(c->w_hh, f->w_hh, sizeof c->w_hh);
  memcpy(c->b_ih, f->b_ih, sizeof c->b_ih);
  memcpy(c->b_hh, f->b_hh, sizeof c->b_hh);
  c->w = (seqk_rnn_weights){c->w_ih, c->w_hh, c->b_ih, c->b_hh};
}

static seqk_status fwd_call(seqk_context_t ctx, const fwd_args *a) {
  return seqk_rnn_forward(ctx, a->desc, a->w, a->x, a->h0, a->c0, a->lengths, a->y, a->hn, a->cn);
}

static void expect_bad_fwd(fwd_fix *f, const fwd_args *a, const char *needle, const char *what) {
  const seqk_tensor *all[24] = {&f->x, &f->h0, &f->c0, &f->lengths, &f->y, &f->hn, &f->cn, &f->big};
  size_t count = 8;
  for (int e = 0; e < 4; ++e) {
    all[count++] = &f->w_ih[e];
    all[count++] = &f->w_hh[e];
    all[count++] = &f->b_ih[e];
    all[count++] = &f->b_hh[e];
  }
  th_snapshot snaps[24];
  for (size_t i = 0; i < count; ++i) snaps[i] = th_snapshot_take(all[i]);
  char full[300];
  snprintf(full, sizeof full, "rnn_forward %s: %s", mode_str(f->desc.mode), what);
  th_expect_rejected(g_ctx, fwd_call(g_ctx, a), SEQK_STATUS_INVALID_VALUE, needle, full, snaps,
                     (int)count);
}

/* Locals a case may break: d (the desc), wc (weight arrays), t (a tensor), lt (lengths). */
#define BAD_FWD(fix, needle, ...)                                                                  \
  do {                                                                                             \
    fwd_args a = fwd_default(&(fix));                                                              \
    seqk_rnn_desc d = (fix).desc;                                                                  \
    wcopy wc;                                                                                      \
    wcopy_init(&wc, &(fix));                                                                       \
    seqk_tensor t = (fix).x, lt = (fix).lengths;                                                   \
    (void)d;                                                                                       \
    (void)t;                                                                                       \
    (void)lt;                                                                                      \
    __VA_ARGS__;                                                                                   \
    expect_bad_fwd(&(fix), &a, needle, #__VA_ARGS__);                                              \
  } while (0)

/* A fresh lengths tensor [2] holding v0, v1. */
static seqk_tensor lengths_of(int32_t v0, int32_t v1) {
  seqk_tensor t = th_tensor_new(SEQK_DTYPE_I32, 1, SHAPE(2));
  th_fill_i32(&t, (const int32_t[]){v0, v1});
  return t;
}

static void test_bad_forward(void) {
  const seqk_dtype F32 = SEQK_DTYPE_F32, F16 = SEQK_DTYPE_F16, I32 = SEQK_DTYPE_I32;
  const seqk_device CUDA = SEQK_DEVICE_CUDA;
  fwd_fix f, g;
  fwd_fix_init(&f, SEQK_RNN_MODE_LSTM);
  fwd_fix_init(&g, SEQK_RNN_MODE_GRU);
  {
    fwd_args a = fwd_default(&f);
    th_expect_status(g_ctx, fwd_call(g_ctx, &a), SEQK_STATUS_SUCCESS, NULL,
                     "bad-forward LSTM fixture is valid");
    a = fwd_default(&g);
    th_expect_status(g_ctx, fwd_call(g_ctx, &a), SEQK_STATUS_SUCCESS, NULL,
                     "bad-forward GRU fixture is valid");
    th_poison(&f.y);
    th_snapshot s = th_snapshot_take(&f.y);
    a = fwd_default(&f);
    TH_CHECK(fwd_call(NULL, &a) == SEQK_STATUS_INVALID_VALUE && th_snapshot_unchanged(&s),
             "rnn_forward: NULL ctx");
  }
  /* desc */
  BAD_FWD(f, "desc is NULL", a.desc = NULL);
  BAD_FWD(f, "desc.mode=9", d.mode = (seqk_rnn_mode)9; a.desc = &d);
  BAD_FWD(f, "desc.mode=-1", d.mode = (seqk_rnn_mode)-1; a.desc = &d);
  BAD_FWD(f, "desc.input_size", d.input_size = 0; a.desc = &d);
  BAD_FWD(f, "desc.hidden_size", d.hidden_size = -2; a.desc = &d);
  BAD_FWD(f, "desc.num_layers", d.num_layers = 0; a.desc = &d);
  BAD_FWD(f, "desc.bidirectional", d.bidirectional = 2; a.desc = &d);
  BAD_FWD(f, "desc.batch_first", d.batch_first = -1; a.desc = &d);
  BAD_FWD(f, "x.shape[2]", d.input_size = 4; a.desc = &d);
  BAD_FWD(f, "w_ih[0].shape[0]", d.hidden_size = 3; a.desc = &d);
  BAD_FWD(f, "h0.shape[0]", d.num_layers = 1; a.desc = &d);
  BAD_FWD(f, "w_ih[1].shape[1]", d.bidirectional = 0; a.desc = &d); /* entry 1 is now layer 1 */
  /* weights, entry by entry (entries 2 and 3 are layer 1, whose input is D*H = 4 wide) */
  BAD_FWD(f, "w is NULL", a.w = NULL);
  BAD_FWD(f, "w.w_ih is NULL", wc.w.w_ih = NULL; a.w = &wc.w);
  BAD_FWD(f, "w.w_hh is NULL", wc.w.w_hh = NULL; a.w = &wc.w);
  BAD_FWD(f, "w_ih[0].shape[1]", wc.w_ih[0].shape[1] = 2; a.w = &wc.w);
  BAD_FWD(f, "w_ih[2].shape[1]", wc.w_ih[2] = f.w_ih[0]; a.w = &wc.w);
  BAD_FWD(f, "w_ih[3].shape[1]", wc.w_ih[3] = f.w_ih[1]; a.w = &wc.w);
  BAD_FWD(f, "w_ih[1].shape[1]", wc.w_ih[1] = f.w_ih[2]; a.w = &wc.w);
  BAD_FWD(f, "w_ih[3].shape[0]", wc.w_ih[3].shape[0] = 6; a.w = &wc.w);
  BAD_FWD(f, "w_hh[1].shape[1]", wc.w_hh[1].shape[1] = 1; a.w = &wc.w);
  BAD_FWD(f, "w_hh[3].ndim", wc.w_hh[3].ndim = 1; a.w = &wc.w);
  BAD_FWD(f, "b_ih[2].shape[0]", wc.b_ih[2].shape[0] = 7; a.w = &wc.w);
  BAD_FWD(f, "b_hh[3].ndim", wc.b_hh[3].ndim = 2; wc.b_hh[3].shape[1] = 1; wc.b_hh[3].stride[1] = 1;
          a.w = &wc.w);
  BAD_FWD(f, "b_hh[1].data", wc.b_hh[1].data = NULL; a.w = &wc.w);
  BAD_FWD(f, "w_ih[3].data", wc.w_ih[3].data = NULL; a.w = &wc.w);
  BAD_FWD(f, "w_hh[2].dtype", wc.w_hh[2].dtype = F16; a.w = &wc.w);
  BAD_FWD(f, "b_ih[1].dtype", wc.b_ih[1].dtype = F16; a.w = &wc.w);
  BAD_FWD(f, "w_ih[0].dtype", wc.w_ih[0].dtype = I32; a.w = &wc.w);
  BAD_FWD(f, "w_ih[1] is on CUDA", wc.w_ih[1].device = CUDA; a.w = &wc.w);
  BAD_FWD(f, "b_hh[2] is on CUDA", wc.b_hh[2].device = CUDA; a.w = &wc.w);
  BAD_FWD(g, "w_ih[0].shape[0]", a.w = &f.w); /* LSTM-sized weights for a GRU */
  /* x */
  BAD_FWD(f, "x is NULL", a.x = NULL);
  BAD_FWD(f, "x.data", t = f.x; t.data = NULL; a.x = &t);
  BAD_FWD(f, "x.ndim", t = f.x; t.ndim = 2; a.x = &t);
  BAD_FWD(f, "x.shape[0]=0", t = f.x; t.shape[0] = 0; a.x = &t);
  BAD_FWD(f, "x.shape[1]=0", t = f.x; t.shape[1] = 0; a.x = &t);
  BAD_FWD(f, "x.shape[1]=0 is T", d.batch_first = 1; a.desc = &d; t = f.x; t.shape[1] = 0;
          a.x = &t);
  BAD_FWD(f, "x.dtype", t = f.x; t.dtype = I32; a.x = &t);
  BAD_FWD(f, "w_ih[0].dtype", t = f.x; t.dtype = F16; a.x = &t);
  BAD_FWD(f, "x is on CUDA", t = f.x; t.device = CUDA; a.x = &t);
  /* h0, c0 */
  BAD_FWD(f, "h0.shape[0]", t = f.h0; t.shape[0] = 2; a.h0 = &t);
  BAD_FWD(f, "h0.shape[1]", t = f.h0; t.shape[1] = 1; a.h0 = &t);
  BAD_FWD(f, "h0.shape[2]", t = f.h0; t.shape[2] = 1; a.h0 = &t);
  BAD_FWD(f, "h0.ndim", t = f.h0; t.ndim = 2; a.h0 = &t);
  BAD_FWD(f, "h0.dtype", t = f.h0; t.dtype = F16; a.h0 = &t);
  BAD_FWD(f, "h0 is on CUDA", t = f.h0; t.device = CUDA; a.h0 = &t);
  BAD_FWD(f, "c0.shape[2]", t = f.c0; t.shape[2] = 1; a.c0 = &t);
  BAD_FWD(f, "c0.dtype", t = f.c0; t.dtype = F16; a.c0 = &t);
  BAD_FWD(g, "c0 is given", a.c0 = &g.c0);
  BAD_FWD(g, "cn is given", a.cn = &g.cn);
  /* lengths: values in [1, T], I32 [N] on the CPU */
  BAD_FWD(f, "lengths[0]=0", lt = lengths_of(0, 2); a.lengths = &lt);
  BAD_FWD(f, "lengths[1]=4", lt = lengths_of(3, 4); a.lengths = &lt);
  BAD_FWD(f, "lengths[1]=-1", lt = lengths_of(1, -1); a.lengths = &lt);
  BAD_FWD(f, "lengths.dtype", lt.dtype = F32; a.lengths = &lt);
  BAD_FWD(f, "lengths.shape[0]", lt.shape[0] = 1; a.lengths = &lt);
  BAD_FWD(f, "lengths.ndim", lt.ndim = 2; lt.shape[1] = 1; lt.stride[1] = 1; a.lengths = &lt);
  BAD_FWD(f, "lengths is on CUDA", lt.device = CUDA; a.lengths = &lt);
  BAD_FWD(f, "lengths[0]=3", d.batch_first = 1; a.desc = &d; t = f.x; t.shape[0] = 2;
          t.shape[1] = 2; a.x = &t; seqk_tensor y2 = f.y; y2.shape[0] = 2; y2.shape[1] = 2;
          a.y = &y2); /* T = 2 under batch_first: a length of 3 no longer fits */
  /* y, hn, cn */
  BAD_FWD(f, "y is NULL", a.y = NULL);
  BAD_FWD(f, "y.data", t = f.y; t.data = NULL; a.y = &t);
  BAD_FWD(f, "y.shape[2]", t = f.y; t.shape[2] = 2; a.y = &t);
  BAD_FWD(f, "y.shape[0]", t = f.y; t.shape[0] = 2; t.shape[1] = 3; a.y = &t); /* [N,T,*] */
  BAD_FWD(f, "y.shape[0]", d.batch_first = 1; a.desc = &d; t = f.x; t.shape[0] = 2; t.shape[1] = 3;
          t.stride[0] = 3; t.stride[1] = 6; a.x = &t); /* y left [T,N,*] */
  BAD_FWD(f, "y.ndim", t = f.y; t.ndim = 2; a.y = &t);
  BAD_FWD(f, "y.dtype", t = f.y; t.dtype = F16; a.y = &t);
  BAD_FWD(f, "y is on CUDA", t = f.y; t.device = CUDA; a.y = &t);
  BAD_FWD(f, "output y has overlapping", t = f.y; t.stride[1] = 0; a.y = &t);
  BAD_FWD(f, "hn.shape[0]", t = f.hn; t.shape[0] = 2; a.hn = &t);
  BAD_FWD(f, "hn.dtype", t = f.hn; t.dtype = F16; a.hn = &t);
  BAD_FWD(f, "hn is on CUDA", t = f.hn; t.device = CUDA; a.hn = &t);
  BAD_FWD(f, "output hn has overlapping", t = f.hn; t.stride[2] = 0; a.hn = &t);
  BAD_FWD(f, "cn.shape[1]", t = f.cn; t.shape[1] = 1; a.cn = &t);
  BAD_FWD(f, "output cn has overlapping", t = f.cn; t.stride[0] = 1; a.cn = &t);
  /* no output may overlap an input or another output, not even exactly */
  BAD_FWD(f, "y overlaps x", seqk_tensor xb = view_at(f.big.data, F32, 3, SHAPE(3, 2, 3));
          t = view_at(elem_ptr(&f.big, 17), F32, 3, SHAPE(3, 2, 4)); a.x = &xb; a.y = &t);
  BAD_FWD(f, "y overlaps w_ih[2]", t = view_at(f.w_ih[2].data, F32, 3, SHAPE(3, 2, 4)); a.y = &t);
  BAD_FWD(f, "y overlaps b_hh[3]", wc.b_hh[3] = view_at(f.big.data, F32, 1, SHAPE(8)); a.w = &wc.w;
          t = view_at(elem_ptr(&f.big, 4), F32, 3, SHAPE(3, 2, 4)); a.y = &t);
  BAD_FWD(f, "y overlaps h0", seqk_tensor hb = view_at(f.big.data, F32, 3, SHAPE(4, 2, 2));
          t = view_at(elem_ptr(&f.big, 15), F32, 3, SHAPE(3, 2, 4)); a.h0 = &hb; a.y = &t);
  BAD_FWD(f, "hn overlaps y", t = view_at(f.y.data, F32, 3, SHAPE(4, 2, 2)); a.hn = &t);
  BAD_FWD(f, "hn overlaps h0", a.hn = &f.h0);
  BAD_FWD(f, "hn overlaps lengths", lt = view_at(f.big.data, I32, 1, SHAPE(2));
          th_fill_i32(&lt, (const int32_t[]){3, 2}); a.lengths = &lt;
          t = view_at(elem_ptr(&f.big, 1), F32, 3, SHAPE(4, 2, 2)); a.hn = &t);
  BAD_FWD(f, "cn overlaps c0", a.cn = &f.c0);
  BAD_FWD(f, "cn overlaps hn", a.cn = &f.hn);
  BAD_FWD(f, "cn overlaps y", t = view_at(elem_ptr(&f.y, 8), F32, 3, SHAPE(4, 2, 2)); a.cn = &t);
  BAD_FWD(f, "cn overlaps w_hh[3]", t = view_at(f.w_hh[3].data, F32, 3, SHAPE(4, 2, 2)); a.cn = &t);
  BAD_FWD(f, "cn overlaps x", t = view_at(f.x.data, F32, 3, SHAPE(4, 2, 2)); a.cn = &t);

  /* A CPU op with lengths on CUDA (a descriptor over host memory, never touched): a CPU op reads
     its lengths on the CPU, and that is caught before anything runs. */
  {
    fwd_args a = fwd_default(&f);
    seqk_tensor lt = f.lengths;
    lt.device = CUDA;
    a.lengths = &lt;
    expect_bad_fwd(&f, &a, "lengths is on CUDA but x is on the CPU", "CPU op, lengths on CUDA");
  }
}

/* Lengths on the device holding a value outside [1, T]: waiting checks fail the call naming the
   row, with y, hn and cn untouched; deferred checks run it with the value clamped into [1, T]
   (the same result as the CPU with the clamped lengths) and seqk_context_check reports it. */
/* A contiguous CUDA copy of host tensor t on ctx (freed with ctx). */
static seqk_tensor upload(seqk_context_t ctx, const seqk_tensor *t) {
  seqk_tensor d;
  memset(&d, 0, sizeof d);
  TH_CHECK(seqk_tensor_alloc(ctx, &d, t->dtype, SEQK_DEVICE_CUDA, t->ndim, t->shape) ==
                   SEQK_STATUS_SUCCESS &&
               seqk_tensor_copy(ctx, &d, t) == SEQK_STATUS_SUCCESS,
           "upload: %s", seqk_context_last_error(ctx));
  return d;
}

static void test_device_lengths_checks(void) {
  if (seqk_cuda_device_count() == 0) return;
  net n;
  fwd_io io;
  static const int32_t bad[3] = {2, 9, 1}, clamped[3] = {2, 4, 1};
  net_init(&n, SEQK_RNN_MODE_LSTM, 1, 1, 0, 3, 5, SEQK_DTYPE_F32, 1, 0);
  io_init(&io, &n, 4, 3, 1, 1, clamped, 1, 1, 0);
  if (!th_expect_status(g_ctx, io_run(&n, &io), SEQK_STATUS_SUCCESS, NULL,
                        "device lengths: the CPU run with the clamped lengths"))
    return;
  const int64_t E = n.desc.num_layers * net_dirs(&n);
  seqk_context_t ctx;
  TH_CHECK(seqk_context_create(&ctx) == SEQK_STATUS_SUCCESS, "context");
  /* Every input on the device, lengths holding the bad value. */
  seqk_tensor din[4 + 4 * MAX_ENTRIES], dout[3];
  const seqk_tensor *hin[4] = {&io.x, &io.h0, &io.c0, &io.lengths};
  seqk_tensor bad_len = th_tensor_new(SEQK_DTYPE_I32, 1, SHAPE(3));
  th_fill_i32(&bad_len, bad);
  hin[3] = &bad_len;
  for (int i = 0; i < 4; ++i) din[i] = upload(ctx, hin[i]);
  for (int64_t e = 0; e < E; ++e) {
    din[4 + e] = upload(ctx, &n.w_ih[e]);
    din[4 + E + e] = upload(ctx, &n.w_hh[e]);
    din[4 + 2 * E + e] = upload(ctx, &n.b_ih[e]);
    din[4 + 3 * E + e] = upload(ctx, &n.b_hh[e]);
  }
  const seqk_tensor *hout[3] = {&io.y, &io.hn, &io.cn};
  for (int i = 0; i < 3; ++i) {
    seqk_tensor poison = th_tensor_new(hout[i]->dtype, hout[i]->ndim, hout[i]->shape);
    th_poison(&poison);
    dout[i] = upload(ctx, &poison);
  }
  /* Waiting: refused, nothing written (the outputs still hold the poison). */
  th_expect_status(ctx, forward_op(ctx, &n, din, dout), SEQK_STATUS_INVALID_VALUE,
                   "lengths[1]=9 is outside [1, T=4]", "device lengths, waiting check");
  for (int i = 0; i < 3; ++i) {
    seqk_tensor back = th_tensor_new(hout[i]->dtype, hout[i]->ndim, hout[i]->shape);
    TH_CHECK(seqk_tensor_copy(ctx, &back, &dout[i]) == SEQK_STATUS_SUCCESS, "download");
    int poisoned = 1;
    for (int64_t k = 0; k < th_numel(&back); ++k) poisoned &= th_get(&back, k) != th_get(&back, k);
    TH_CHECK(poisoned, "device lengths, waiting check: output %d was written", i);
  }
  /* Deferred: runs clamped, reported by the check. */
  TH_CHECK(seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED) == SEQK_STATUS_SUCCESS,
           "deferred checks");
  th_expect_status(ctx, forward_op(ctx, &n, din, dout), SEQK_STATUS_SUCCESS, NULL,
                   "device lengths, deferred check: the call");
  th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, "lengths[1]=9",
                   "device lengths, deferred check: reported");
  for (int i = 0; i < 3; ++i) {
    seqk_tensor back = th_tensor_new(hout[i]->dtype, hout[i]->ndim, hout[i]->shape);
    TH_CHECK(seqk_tensor_copy(ctx, &back, &dout[i]) == SEQK_STATUS_SUCCESS, "download");
    double *want = th_to_doubles(hout[i]);
    char what[80];
    snprintf(what, sizeof what, "device lengths, deferred: output %d as with clamped lengths", i);
    th_check_close(what, &back, want, th_tol_scaled(SEQK_DTYPE_F32, 8));
  }
  seqk_context_destroy(ctx);
}

/* cuBLAS takes at most 2^31 - 1 rows and columns per call; larger products go in blocks
   (host/blas.c). With the block limit lowered to 5, every multi-row GEMM of the multilayer and
   cell cases is blocked: T*N = 15 rows of the layer projections, G*H up to 16 columns. (Finding:
   layer 1's projection over T*N >= 2^31 rows used to fail after layer 0 had written hn.) */
static void test_gemm_blocks(void) {
#ifdef SEQK_HAVE_CUDA
  if (seqk_cuda_device_count() == 0) return;
  seqk__blas_max_extent(5);
  test_multilayer_identity();
  test_cells();
  seqk__blas_max_extent(0);
#endif
}

int main(void) {
  g_ctx = th_context();
  th_rng_seed(&g_rng, 20240603);
  test_golden_rnn();
  test_golden_lstm();
  test_golden_gru();
  test_golden_forward();
  test_cells();
  test_cell_edges();
  test_forward_sweep();
  test_forward_paths();
  test_persistent_rows();
  test_device_lengths_checks();
  test_cell_inplace_on_device();
  test_seq_equals_cells();
  test_reverse_identity();
  test_multilayer_identity();
  test_gemm_blocks();
  test_batch_first_identity();
  test_lengths_identity();
  test_bad_cell();
  test_bad_forward();
  seqk_context_destroy(g_ctx);
  return th_finish();
}
