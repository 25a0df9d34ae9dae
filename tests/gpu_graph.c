/*
 * gpu_graph.c - a decode-style step captured in a CUDA graph and replayed with new inputs: the
 * contract that CUDA ops enqueue work on the context's stream and return, with no host wait and
 * no allocation once the workspace is reserved (include/seqk.h). The step: an embedding lookup
 * (deferred device checks), an RMS norm in place, a linear projection with a GELU epilogue
 * (cuBLAS + one pass), the new token's key and value appended to a paged key/value cache (pages
 * of 8 tokens, a scrambled page table) at each sequence's length with rotary keys (positions and
 * the advance on the device), attention of the new query over the paged cache with those lengths
 * (seqk_attention_kv_cache: its check kernel and the fused kernel reading pages), a softmax, a device-to-device copy
 * into a strided view, an LSTM over a short sequence with device lengths (the persistent
 * kernel or the per-step path), and packed variable-length attention over device offsets
 * (seqk_attention_packed: its offsets check kernel and the fused kernel). Captured once, replayed
 * twice with new token ids, cache lengths, sequence lengths and packed offsets uploaded between
 * replays; each replay must equal the same step run
 * eagerly on the same inputs, bit for bit. Then the negative side: a call that waits on the host
 * (an embedding with waiting checks, a host-to-device copy) fails inside a capture and the
 * capture ends invalidated. On the emulated device (emu/src/stream.h) a capture refuses every
 * synchronising or allocating runtime call, as the CUDA runtime does; on a GPU the runtime
 * itself does. Skipped (exit 77) without a device.
 */
#include "harness.h"

#include <cuda_runtime_api.h>
#include <string.h>

enum { B = 3, V = 11, E = 16, H = 2, HK = 1, D = 8, SMAX = 40, T = 5, N = 3, HID = 6 };
/* The cache is paged: pages of PS tokens, the B x SMAX rows of kc / vc seen as NP pages. */
enum { PS = 8, NP = B * SMAX / PS, MAXP = SMAX / PS };
/* Packed attention: PT rows of packed q, k, v; B sequences by device offsets. */
enum { PT = 20 };

typedef struct step_io {
  /* inputs that change between replays */
  seqk_tensor ids, seqlens_k, rnn_len, cu;
  /* constants */
  seqk_tensor table, wq, bq, kc, vc, pages, rx, w_ih, w_hh, b_ih, b_hh, pq, pk, pv;
  /* outputs */
  seqk_tensor q, o, p, o_copy_backing, ry, rhn, po;
} step_io;

static seqk_tensor dev_random(seqk_context_t ctx, th_rng *rng, seqk_dtype dt, int32_t ndim,
                              const int64_t *shape, double lo, double hi) {
  seqk_tensor host = th_tensor_new(dt, ndim, shape), d;
  th_fill_uniform(&host, rng, lo, hi);
  TH_CHECK(seqk_tensor_alloc(ctx, &d, dt, SEQK_DEVICE_CUDA, ndim, shape) == SEQK_STATUS_SUCCESS &&
               seqk_tensor_copy(ctx, &d, &host) == SEQK_STATUS_SUCCESS,
           "upload: %s", seqk_context_last_error(ctx));
  return d;
}

static seqk_tensor dev_empty(seqk_context_t ctx, seqk_dtype dt, int32_t ndim,
                             const int64_t *shape) {
  seqk_tensor d;
  memset(&d, 0, sizeof d);
  TH_CHECK(seqk_tensor_alloc(ctx, &d, dt, SEQK_DEVICE_CUDA, ndim, shape) == SEQK_STATUS_SUCCESS,
           "alloc: %s", seqk_context_last_error(ctx));
  return d;
}

static void set_i32(seqk_context_t ctx, seqk_tensor *d, const int32_t *values) {
  seqk_tensor host = th_tensor_new(SEQK_DTYPE_I32, d->ndim, d->shape);
  th_fill_i32(&host, values);
  TH_CHECK(seqk_tensor_copy(ctx, d, &host) == SEQK_STATUS_SUCCESS, "set i32: %s",
           seqk_context_last_error(ctx));
}

/* The step: every call enqueues on ctx's stream. Returns the first failure. */
static seqk_status run_step(seqk_context_t ctx, step_io *s) {
  seqk_status st;
  int64_t xs[2] = {B, E};
  /* token embedding into p's memory, used as the projection's input */
  seqk_tensor emb = seqk_tensor_view(s->p.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, xs);
  if ((st = seqk_embedding(ctx, &s->ids, &s->table, &emb))) return st;
  if ((st = seqk_rms_norm(ctx, &emb, NULL, NULL, 1e-6f, &emb, NULL))) return st; /* in place */
  seqk_tensor q2 = seqk_tensor_view(s->q.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, xs);
  if ((st = seqk_linear_ex(ctx, &emb, &s->wq, &s->bq, SEQK_ACTIVATION_GELU_TANH, NULL, &q2)))
    return st;
  /* The new token's key and value (its first and second D features, one kv head) appended to
     the cache at each sequence's length, which advances: attention below sees them. */
  int64_t ns[4] = {B, 1, HK, D}, nst[4] = {E, E, D, 1}, cs[4] = {NP, PS, HK, D};
  seqk_tensor k_new =
      seqk_tensor_view_strided(s->q.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, ns, nst);
  seqk_tensor v_new = seqk_tensor_view_strided((char *)s->q.data + D * 2, SEQK_DTYPE_F16,
                                               SEQK_DEVICE_CUDA, 4, ns, nst);
  seqk_kv_cache cache;
  cache.k = seqk_tensor_view(s->kc.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, cs);
  cache.v = seqk_tensor_view(s->vc.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, cs);
  cache.page_table = s->pages;
  /* RoPE on the keys at their cache positions, read on the device. */
  const seqk_rotary_params rope = {SEQK_ROTARY_NEOX, 0, 10000.0f};
  if ((st =
           seqk_kv_cache_append_rotary(ctx, &cache, &s->seqlens_k, 1, &k_new, &v_new, &rope, NULL)))
    return st;
  /* q [B, H, 1, D] over the projection's [B, E] rows */
  int64_t qs[4] = {B, H, 1, D}, qst[4] = {E, D, D, 1};
  seqk_tensor q4 =
      seqk_tensor_view_strided(s->q.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 4, qs, qst);
  seqk_attention_params ap;
  memset(&ap, 0, sizeof ap);
  ap.causal = 1;
  if ((st = seqk_attention_kv_cache(ctx, &ap, &q4, &cache, &s->seqlens_k, &s->o, NULL))) return st;
  seqk_tensor o2 = seqk_tensor_view(s->o.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, xs);
  if ((st = seqk_softmax(ctx, &o2, -1, &s->p))) return st;
  /* o into every other column of a [B, 2E] buffer */
  int64_t ost[2] = {2 * E, 2};
  seqk_tensor every_other = seqk_tensor_view_strided(s->o_copy_backing.data, SEQK_DTYPE_F32,
                                                     SEQK_DEVICE_CUDA, 2, xs, ost);
  if ((st = seqk_tensor_copy(ctx, &every_other, &o2))) return st;
  const seqk_rnn_desc desc = {SEQK_RNN_MODE_LSTM, E, HID, 1, 0, 0};
  const seqk_rnn_weights w = {&s->w_ih, &s->w_hh, &s->b_ih, &s->b_hh};
  if ((st = seqk_rnn_forward(ctx, &desc, &w, &s->rx, NULL, NULL, &s->rnn_len, &s->ry, &s->rhn,
                             NULL)))
    return st;
  /* packed prefill of B sequences whose offsets change between replays (bounds 0: the totals) */
  return seqk_attention_packed(ctx, &ap, &s->pq, &s->pk, &s->pv, &s->cu, &s->cu, 0, 0, &s->po,
                               NULL);
}

/* Every output's bytes, downloaded in one buffer per output. */
enum { N_OUTS = 10 };
typedef struct snapshot {
  unsigned char *bytes[N_OUTS];
  size_t size[N_OUTS];
} snapshot;

static snapshot take(seqk_context_t ctx, step_io *s) {
  snapshot sn;
  seqk_tensor *outs[N_OUTS] = {&s->q,   &s->o,  &s->p,  &s->o_copy_backing, &s->ry,
                               &s->rhn, &s->kc, &s->vc, &s->seqlens_k,      &s->po};
  for (int i = 0; i < N_OUTS; ++i) {
    int64_t n = th_numel(outs[i]) * (int64_t)seqk_dtype_size(outs[i]->dtype) / 4;
    seqk_tensor host = th_tensor_new(SEQK_DTYPE_I32, 1, &n);
    seqk_tensor words = seqk_tensor_view(outs[i]->data, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, &n);
    TH_CHECK(seqk_tensor_copy(ctx, &host, &words) == SEQK_STATUS_SUCCESS, "download %d: %s", i,
             seqk_context_last_error(ctx));
    sn.bytes[i] = host.data;
    sn.size[i] = (size_t)n * 4;
  }
  return sn;
}

static void poison_outputs(seqk_context_t ctx, step_io *s) {
  seqk_tensor *outs[7] = {&s->q, &s->o, &s->p, &s->o_copy_backing, &s->ry, &s->rhn, &s->po};
  for (int i = 0; i < 7; ++i) {
    seqk_tensor host = th_tensor_new(outs[i]->dtype, outs[i]->ndim, outs[i]->shape);
    th_poison(&host);
    seqk_tensor hw = host, dw = *outs[i];
    int64_t n = th_numel(&host) * (int64_t)seqk_dtype_size(host.dtype) / 4;
    hw = seqk_tensor_view(host.data, SEQK_DTYPE_I32, SEQK_DEVICE_CPU, 1, &n);
    dw = seqk_tensor_view(outs[i]->data, SEQK_DTYPE_I32, SEQK_DEVICE_CUDA, 1, &n);
    TH_CHECK(seqk_tensor_copy(ctx, &dw, &hw) == SEQK_STATUS_SUCCESS, "poison %d", i);
  }
}

int main(void) {
  if (seqk_cuda_device_count() == 0) {
    th_skip("no CUDA device");
    return th_finish();
  }
  th_rng rng;
  th_rng_seed(&rng, 4242);
  seqk_context_t ctx = th_context();
  cudaStream_t stream = NULL;
  TH_CHECK(cudaStreamCreate(&stream) == cudaSuccess, "stream");
  TH_CHECK(seqk_context_set_stream(ctx, stream) == SEQK_STATUS_SUCCESS, "set stream");
  TH_CHECK(seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_DEFERRED) == SEQK_STATUS_SUCCESS,
           "deferred checks: %s", seqk_context_last_error(ctx));

  step_io s;
  const int64_t ids_s[1] = {B}, tab_s[2] = {V, E}, w_s[2] = {E, E}, b_s[1] = {E},
                kv_s[4] = {B, HK, SMAX, D}, o_s[4] = {B, H, 1, D}, p_s[2] = {B, E},
                oc_s[2] = {B, 2 * E}, rx_s[3] = {T, N, E}, len_s[1] = {N}, wih_s[2] = {4 * HID, E},
                whh_s[2] = {4 * HID, HID}, bb_s[1] = {4 * HID}, ry_s[3] = {T, N, HID},
                rhn_s[3] = {1, N, HID}, pq_s[3] = {PT, H, D}, pk_s[3] = {PT, HK, D},
                cu_s[1] = {B + 1};
  s.ids = dev_empty(ctx, SEQK_DTYPE_I32, 1, ids_s);
  s.seqlens_k = dev_empty(ctx, SEQK_DTYPE_I32, 1, ids_s);
  s.rnn_len = dev_empty(ctx, SEQK_DTYPE_I32, 1, len_s);
  s.table = dev_random(ctx, &rng, SEQK_DTYPE_F16, 2, tab_s, -1, 1);
  s.wq = dev_random(ctx, &rng, SEQK_DTYPE_F16, 2, w_s, -0.3, 0.3);
  s.bq = dev_random(ctx, &rng, SEQK_DTYPE_F16, 1, b_s, -0.1, 0.1);
  s.kc = dev_random(ctx, &rng, SEQK_DTYPE_F16, 4, kv_s, -1, 1);
  s.vc = dev_random(ctx, &rng, SEQK_DTYPE_F16, 4, kv_s, -1, 1);
  /* a scrambled assignment of the NP pages, MAXP per sequence */
  const int64_t pt_s[2] = {B, MAXP};
  int32_t pt[B * MAXP];
  for (int i = 0; i < B * MAXP; ++i) pt[i] = (i * 7 + 3) % NP;
  s.pages = dev_empty(ctx, SEQK_DTYPE_I32, 2, pt_s);
  set_i32(ctx, &s.pages, pt);
  s.rx = dev_random(ctx, &rng, SEQK_DTYPE_F32, 3, rx_s, -1, 1);
  s.w_ih = dev_random(ctx, &rng, SEQK_DTYPE_F32, 2, wih_s, -0.4, 0.4);
  s.w_hh = dev_random(ctx, &rng, SEQK_DTYPE_F32, 2, whh_s, -0.4, 0.4);
  s.b_ih = dev_random(ctx, &rng, SEQK_DTYPE_F32, 1, bb_s, -0.1, 0.1);
  s.b_hh = dev_random(ctx, &rng, SEQK_DTYPE_F32, 1, bb_s, -0.1, 0.1);
  s.q = dev_empty(ctx, SEQK_DTYPE_F16, 2, p_s);
  s.o = dev_empty(ctx, SEQK_DTYPE_F16, 4, o_s);
  s.p = dev_empty(ctx, SEQK_DTYPE_F16, 2, p_s);
  s.o_copy_backing = dev_empty(ctx, SEQK_DTYPE_F32, 2, oc_s);
  s.ry = dev_empty(ctx, SEQK_DTYPE_F32, 3, ry_s);
  s.rhn = dev_empty(ctx, SEQK_DTYPE_F32, 3, rhn_s);
  s.pq = dev_random(ctx, &rng, SEQK_DTYPE_F16, 3, pq_s, -1, 1);
  s.pk = dev_random(ctx, &rng, SEQK_DTYPE_F16, 3, pk_s, -1, 1);
  s.pv = dev_random(ctx, &rng, SEQK_DTYPE_F16, 3, pk_s, -1, 1);
  s.po = dev_empty(ctx, SEQK_DTYPE_F16, 3, pq_s);
  s.cu = dev_empty(ctx, SEQK_DTYPE_I32, 1, cu_s);
  static const int32_t ids[3][B] = {{1, 7, 10}, {4, 0, 9}, {3, 3, 5}};
  /* cache lengths before the step's append (which makes them 40, 17, 1 and so on) */
  static const int32_t kv_len[3][B] = {{39, 16, 0}, {4, 32, 39}, {11, 11, 1}};
  static const int32_t rnn_len[3][N] = {{5, 2, 3}, {1, 5, 4}, {3, 3, 5}};
  /* packed offsets (rows outside every sequence stay as poisoned) */
  static const int32_t cu[3][B + 1] = {{0, 5, 12, 20}, {0, 1, 1, 20}, {2, 9, 9, 14}};

  /* Warm-up, eagerly: cuBLAS handle, first-use queries, and how much workspace the step needs. */
  set_i32(ctx, &s.ids, ids[0]);
  set_i32(ctx, &s.seqlens_k, kv_len[0]);
  set_i32(ctx, &s.rnn_len, rnn_len[0]);
  set_i32(ctx, &s.cu, cu[0]);
  TH_CHECK(run_step(ctx, &s) == SEQK_STATUS_SUCCESS, "eager step: %s",
           seqk_context_last_error(ctx));
  TH_CHECK(seqk_context_check(ctx) == SEQK_STATUS_SUCCESS, "eager step: device checks: %s",
           seqk_context_last_error(ctx));
  TH_CHECK(seqk_context_reserve_workspace(ctx, seqk_context_workspace_needed(ctx)) ==
               SEQK_STATUS_SUCCESS,
           "reserve");

  /* Capture. */
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  TH_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess,
           "begin capture");
  const seqk_status captured = run_step(ctx, &s);
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  TH_CHECK(captured == SEQK_STATUS_SUCCESS, "the step inside a capture: %s",
           seqk_context_last_error(ctx));
  TH_CHECK(ended == cudaSuccess && graph, "end capture: %s", cudaGetErrorString(ended));
  TH_CHECK(graph && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");

  /* Replays with new inputs against the eager step on the same inputs. */
  for (int r = 1; r < 3 && exec; ++r) {
    set_i32(ctx, &s.ids, ids[r]);
    set_i32(ctx, &s.seqlens_k, kv_len[r]);
    set_i32(ctx, &s.rnn_len, rnn_len[r]);
    set_i32(ctx, &s.cu, cu[r]);
    poison_outputs(ctx, &s);
    TH_CHECK(cudaGraphLaunch(exec, stream) == cudaSuccess, "replay %d", r);
    TH_CHECK(seqk_context_check(ctx) == SEQK_STATUS_SUCCESS, "replay %d: %s", r,
             seqk_context_last_error(ctx));
    snapshot replayed = take(ctx, &s);
    poison_outputs(ctx, &s);
    set_i32(ctx, &s.seqlens_k, kv_len[r]); /* the replay advanced them */
    TH_CHECK(run_step(ctx, &s) == SEQK_STATUS_SUCCESS, "eager step %d: %s", r,
             seqk_context_last_error(ctx));
    snapshot eager = take(ctx, &s);
    for (int i = 0; i < N_OUTS; ++i)
      TH_CHECK(memcmp(replayed.bytes[i], eager.bytes[i], eager.size[i]) == 0,
               "replay %d: output %d differs from the eager step on the same inputs", r, i);
  }
  /* A bad token id inside the graph: the row is zeros and the check reports it afterwards. */
  if (exec) {
    const int32_t bad_ids[B] = {2, V + 4, 6};
    set_i32(ctx, &s.ids, bad_ids);
    set_i32(ctx, &s.seqlens_k, kv_len[0]);
    TH_CHECK(cudaGraphLaunch(exec, stream) == cudaSuccess, "replay with a bad id");
    th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE, "position 1 hold 15",
                     "a bad id in a replay is reported by the check");
    /* Packed offsets out of order inside the graph: reported afterwards, naming the sequence. */
    const int32_t bad_cu[B + 1] = {0, 9, 4, 20};
    set_i32(ctx, &s.ids, ids[0]);
    set_i32(ctx, &s.seqlens_k, kv_len[0]);
    set_i32(ctx, &s.cu, bad_cu);
    TH_CHECK(cudaGraphLaunch(exec, stream) == cudaSuccess, "replay with bad offsets");
    th_expect_status(ctx, seqk_context_check(ctx), SEQK_STATUS_INVALID_VALUE,
                     "attention_packed: sequence 1", "bad packed offsets in a replay are reported");
  }

  /* Calls that wait on the host cannot be captured. */
  TH_CHECK(seqk_context_set_device_checks(ctx, SEQK_DEVICE_CHECKS_WAIT) == SEQK_STATUS_SUCCESS,
           "waiting checks");
  int64_t ids_n = B;
  seqk_tensor host_ids = th_tensor_new(SEQK_DTYPE_I32, 1, &ids_n);
  th_fill_i32(&host_ids, ids[0]);
  int64_t xs[2] = {B, E};
  seqk_tensor emb = seqk_tensor_view(s.p.data, SEQK_DTYPE_F16, SEQK_DEVICE_CUDA, 2, xs);
  for (int which = 0; which < 2; ++which) {
    cudaGraph_t bad = NULL;
    TH_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess,
             "begin capture %d", which);
    const seqk_status st = which == 0 ? seqk_embedding(ctx, &s.ids, &s.table, &emb)
                                      : seqk_tensor_copy(ctx, &s.ids, &host_ids);
    const cudaError_t end = cudaStreamEndCapture(stream, &bad);
    TH_CHECK(st != SEQK_STATUS_SUCCESS, "%s inside a capture must fail (it waits on the host)",
             which == 0 ? "an embedding with waiting checks" : "a host-to-device copy");
    TH_CHECK(end != cudaSuccess && bad == NULL, "the capture ends invalidated (%s)",
             cudaGetErrorString(end));
    if (bad) cudaGraphDestroy(bad);
    (void)cudaGetLastError();
  }

  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  TH_CHECK(seqk_context_destroy(ctx) == SEQK_STATUS_SUCCESS, "destroy");
  cudaStreamDestroy(stream);
  return th_finish();
}
