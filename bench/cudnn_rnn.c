/*
 * cudnn_rnn.c - see cudnn_rnn.h.
 *
 * The mapping from PyTorch's parameters to cuDNN's weight space. cuDNN numbers a layer's matrices
 * by linLayerID: 0..G-1 multiply the input (W), G..2G-1 the recurrent state (R), one matrix per
 * gate, and with CUDNN_RNN_DOUBLE_BIAS each has its own bias (b_W, b_R). Its gate order is
 * PyTorch's: LSTM input, forget, new memory (c'), output = torch's i, f, g, o; GRU reset, update,
 * new memory (h') = torch's r, z, n. cuDNN's GRU is the "linear before reset" form,
 * h' = tanh(W_h x + b_Wh + r * (R_h h + b_Rh)), which is torch's b_hn inside r*(.); cuDNN has no
 * flag for it, it is the only GRU it computes. Each gate's matrix, viewed as [H, cols] row-major
 * (cudnnGetRNNWeightParams reports dims {1, H, cols}), is rows g*H .. g*H+H-1 of torch's
 * [G*H, cols] weight, so every piece is one contiguous device-to-device copy. The weight space is
 * zeroed first (as torch does): a piece this mapping missed stays zero, which the bench's
 * validation against the CPU reference (random weights and biases) rejects. Error texts have no
 * commas: they land in the bench's CSV note column.
 *
 * Numerics: f32 runs with CUDNN_FMA_MATH (no TF32), like seqk's fp32 cuBLAS GEMMs, so both do the
 * same fp32 work and both validate at the f32 tolerance; f16/bf16 data with fp32 math and tensor
 * cores allowed (what torch asks for at half precision).
 */
#include "cudnn_rnn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(SEQK_BENCH_CUDNN) && !defined(SEQK_EMU)

#include <cuda_runtime_api.h>
#include <cudnn.h>

struct bench_cudnn_rnn {
  cudnnHandle_t handle;
  cudnnRNNDescriptor_t rnn;
  cudnnDropoutDescriptor_t dropout;
  cudnnRNNDataDescriptor_t x_desc, y_desc;
  cudnnTensorDescriptor_t h_desc;
  void *dropout_states, *weights, *work, *reserve;
  int32_t *seq_lengths; /* device copy of the per-sequence lengths (all T) */
  size_t weight_bytes, work_bytes, reserve_bytes;
  char error[256];
};

int bench_cudnn_available(void) { return 1; }

static void set_error(bench_cudnn_rnn *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->error, sizeof r->error, fmt, ap);
  va_end(ap);
}

/* Each returns 0 on success, else records "what: reason" in r->error. */
static int dnn(bench_cudnn_rnn *r, cudnnStatus_t st, const char *what) {
  if (st == CUDNN_STATUS_SUCCESS) return 0;
  set_error(r, "%s: %s", what, cudnnGetErrorString(st));
  return 1;
}

static int rt(bench_cudnn_rnn *r, cudaError_t err, const char *what) {
  if (err == cudaSuccess) return 0;
  set_error(r, "%s: %s", what, cudaGetErrorString(err));
  return 1;
}

static int contiguous(const seqk_tensor *t) {
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->stride[i] != expect) return 0;
    expect *= t->shape[i];
  }
  return 1;
}

/* One piece of the weight space: the gate-g rows of src ([G*H, cols], NULL: zeros) into dst,
   after checking that cuDNN's descriptor describes exactly that many elements. */
static int copy_piece(bench_cudnn_rnn *r, cudnnTensorDescriptor_t desc, void *dst,
                      const seqk_tensor *src, int64_t g, int64_t rows, int64_t cols, size_t esize,
                      const char *what) {
  cudnnDataType_t dt;
  int nd = 0, dims[3] = {0, 0, 0}, strides[3];
  if (!dst) {
    set_error(r, "cudnnGetRNNWeightParams gave no address for %s gate %lld", what, (long long)g);
    return 1;
  }
  if (dnn(r, cudnnGetTensorNdDescriptor(desc, 3, &dt, &nd, dims, strides),
          "cudnnGetTensorNdDescriptor"))
    return 1;
  int64_t n = 1;
  for (int i = 0; i < nd && i < 3; ++i) n *= dims[i];
  if (n != rows * cols) {
    set_error(r, "cuDNN's %s gate %lld has %lld elements where %lld were expected", what,
              (long long)g, (long long)n, (long long)(rows * cols));
    return 1;
  }
  size_t bytes = (size_t)(rows * cols) * esize;
  if (!src || !src->data) return rt(r, cudaMemset(dst, 0, bytes), "cudaMemset (zero bias)");
  const char *from = (const char *)src->data + (size_t)(g * rows * cols) * esize;
  return rt(r, cudaMemcpy(dst, from, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy (weights)");
}

static int pack_weights(bench_cudnn_rnn *r, const seqk_rnn_weights *w, int64_t G, int64_t I,
                        int64_t H, size_t esize) {
  cudnnTensorDescriptor_t m_desc = NULL, b_desc = NULL;
  int fail = dnn(r, cudnnCreateTensorDescriptor(&m_desc), "cudnnCreateTensorDescriptor") ||
             dnn(r, cudnnCreateTensorDescriptor(&b_desc), "cudnnCreateTensorDescriptor");
  for (int64_t id = 0; !fail && id < 2 * G; ++id) {
    const int recurrent = id >= G;
    const int64_t g = recurrent ? id - G : id;
    void *m_addr = NULL, *b_addr = NULL;
    fail = dnn(r,
               cudnnGetRNNWeightParams(r->handle, r->rnn, 0, r->weight_bytes, r->weights,
                                       (int32_t)id, m_desc, &m_addr, b_desc, &b_addr),
               "cudnnGetRNNWeightParams");
    if (!fail)
      fail = copy_piece(r, m_desc, m_addr, recurrent ? w->w_hh : w->w_ih, g, H, recurrent ? H : I,
                        esize, recurrent ? "w_hh" : "w_ih");
    if (!fail)
      fail = copy_piece(r, b_desc, b_addr, recurrent ? w->b_hh : w->b_ih, g, H, 1, esize,
                        recurrent ? "b_hh" : "b_ih");
  }
  if (m_desc) cudnnDestroyTensorDescriptor(m_desc);
  if (b_desc) cudnnDestroyTensorDescriptor(b_desc);
  return fail;
}

bench_cudnn_rnn *bench_cudnn_rnn_create(const seqk_rnn_desc *desc, const seqk_rnn_weights *w,
                                        seqk_dtype dtype, int64_t T, int64_t N, char *err,
                                        size_t errlen) {
  static const cudnnRNNMode_t modes[4] = {CUDNN_RNN_TANH, CUDNN_RNN_RELU, CUDNN_LSTM, CUDNN_GRU};
  static const int gates[4] = {1, 1, 4, 3};
  bench_cudnn_rnn *r = (bench_cudnn_rnn *)calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of host memory");
    return NULL;
  }
  const int64_t I = desc->input_size, H = desc->hidden_size, G = gates[desc->mode];
  const size_t esize = seqk_dtype_size(dtype);
  cudnnDataType_t data = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  if (dtype == SEQK_DTYPE_F16 || dtype == SEQK_DTYPE_BF16) {
    data = dtype == SEQK_DTYPE_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
    math = CUDNN_TENSOR_OP_MATH;
  }
  int fail = 0;
  if (desc->num_layers != 1 || desc->bidirectional || desc->batch_first || T > INT32_MAX ||
      N > INT32_MAX || !contiguous(w->w_ih) || !contiguous(w->w_hh) ||
      (w->b_ih && !contiguous(w->b_ih)) || (w->b_hh && !contiguous(w->b_hh))) {
    set_error(
        r,
        "the cuDNN comparison takes one time-major layer in one direction with contiguous weights");
    fail = 1;
  }
  fail = fail || dnn(r, cudnnCreate(&r->handle), "cudnnCreate") ||
         dnn(r, cudnnSetStream(r->handle, NULL), "cudnnSetStream");
  /* A one-layer network applies no dropout; the descriptor (rate 0) is there because the
     descriptor API takes one. */
  size_t state_bytes = 0;
  fail =
      fail || dnn(r, cudnnCreateDropoutDescriptor(&r->dropout), "cudnnCreateDropoutDescriptor") ||
      dnn(r, cudnnDropoutGetStatesSize(r->handle, &state_bytes), "cudnnDropoutGetStatesSize") ||
      rt(r, cudaMalloc(&r->dropout_states, state_bytes ? state_bytes : 1), "cudaMalloc") ||
      dnn(r,
          cudnnSetDropoutDescriptor(r->dropout, r->handle, 0.0f, r->dropout_states, state_bytes, 0),
          "cudnnSetDropoutDescriptor");
  fail = fail || dnn(r, cudnnCreateRNNDescriptor(&r->rnn), "cudnnCreateRNNDescriptor") ||
         dnn(r,
             cudnnSetRNNDescriptor_v8(
                 r->rnn, CUDNN_RNN_ALGO_STANDARD, modes[desc->mode], CUDNN_RNN_DOUBLE_BIAS,
                 CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, data, CUDNN_DATA_FLOAT, math, (int32_t)I,
                 (int32_t)H, (int32_t)H, 1, r->dropout, CUDNN_RNN_PADDED_IO_DISABLED),
             "cudnnSetRNNDescriptor_v8");

  /* x and y: every sequence T long, so the packed time-major layout is exactly [T, N, *]. */
  int *lengths = (int *)malloc((size_t)N * sizeof *lengths);
  if (!lengths && !fail) {
    set_error(r, "out of host memory");
    fail = 1;
  }
  for (int64_t n = 0; !fail && n < N; ++n) lengths[n] = (int)T;
  fail =
      fail || dnn(r, cudnnCreateRNNDataDescriptor(&r->x_desc), "cudnnCreateRNNDataDescriptor") ||
      dnn(r, cudnnCreateRNNDataDescriptor(&r->y_desc), "cudnnCreateRNNDataDescriptor") ||
      dnn(r,
          cudnnSetRNNDataDescriptor(r->x_desc, data, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, (int)T,
                                    (int)N, (int)I, lengths, NULL),
          "cudnnSetRNNDataDescriptor (x)") ||
      dnn(r,
          cudnnSetRNNDataDescriptor(r->y_desc, data, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, (int)T,
                                    (int)N, (int)H, lengths, NULL),
          "cudnnSetRNNDataDescriptor (y)") ||
      rt(r, cudaMalloc((void **)&r->seq_lengths, (size_t)N * sizeof(int32_t)), "cudaMalloc") ||
      rt(r,
         cudaMemcpy(r->seq_lengths, lengths, (size_t)N * sizeof(int32_t), cudaMemcpyHostToDevice),
         "cudaMemcpy (lengths)");
  free(lengths);

  /* h (and c: same shape) [layers * directions, N, H]; hx/cx are NULL (zeros), hy/cy not asked. */
  const int h_dims[3] = {1, (int)N, (int)H}, h_strides[3] = {(int)(N * H), (int)H, 1};
  fail = fail || dnn(r, cudnnCreateTensorDescriptor(&r->h_desc), "cudnnCreateTensorDescriptor") ||
         dnn(r, cudnnSetTensorNdDescriptor(r->h_desc, data, 3, h_dims, h_strides),
             "cudnnSetTensorNdDescriptor (h)");

  fail = fail ||
         dnn(r, cudnnGetRNNWeightSpaceSize(r->handle, r->rnn, &r->weight_bytes),
             "cudnnGetRNNWeightSpaceSize") ||
         dnn(r,
             cudnnGetRNNTempSpaceSizes(r->handle, r->rnn, CUDNN_FWD_MODE_INFERENCE, r->x_desc,
                                       &r->work_bytes, &r->reserve_bytes),
             "cudnnGetRNNTempSpaceSizes") ||
         rt(r, cudaMalloc(&r->weights, r->weight_bytes), "cudaMalloc (weight space)") ||
         rt(r, cudaMemset(r->weights, 0, r->weight_bytes), "cudaMemset (weight space)") ||
         rt(r, cudaMalloc(&r->work, r->work_bytes ? r->work_bytes : 1), "cudaMalloc (workspace)") ||
         (r->reserve_bytes &&
          rt(r, cudaMalloc(&r->reserve, r->reserve_bytes), "cudaMalloc (reserve)")) ||
         pack_weights(r, w, G, I, H, esize) ||
         rt(r, cudaDeviceSynchronize(), "packing cuDNN's weights");
  if (fail) {
    snprintf(err, errlen, "%s", r->error);
    bench_cudnn_rnn_destroy(r);
    return NULL;
  }
  return r;
}

int bench_cudnn_rnn_forward(bench_cudnn_rnn *r, const void *x, void *y) {
  return dnn(
      r,
      cudnnRNNForward(r->handle, r->rnn, CUDNN_FWD_MODE_INFERENCE, r->seq_lengths, r->x_desc, x,
                      r->y_desc, y, r->h_desc, NULL, NULL, r->h_desc, NULL, NULL, r->weight_bytes,
                      r->weights, r->work_bytes, r->work, r->reserve_bytes, r->reserve),
      "cudnnRNNForward");
}

const char *bench_cudnn_rnn_error(const bench_cudnn_rnn *r) { return r->error; }

void bench_cudnn_rnn_destroy(bench_cudnn_rnn *r) {
  if (!r) return;
  /* Teardown statuses are not checked: nothing useful can follow a failed free in a bench. */
  if (r->h_desc) cudnnDestroyTensorDescriptor(r->h_desc);
  if (r->x_desc) cudnnDestroyRNNDataDescriptor(r->x_desc);
  if (r->y_desc) cudnnDestroyRNNDataDescriptor(r->y_desc);
  if (r->rnn) cudnnDestroyRNNDescriptor(r->rnn);
  if (r->dropout) cudnnDestroyDropoutDescriptor(r->dropout);
  if (r->handle) cudnnDestroy(r->handle);
  cudaFree(r->dropout_states);
  cudaFree(r->weights);
  cudaFree(r->work);
  cudaFree(r->reserve);
  cudaFree(r->seq_lengths);
  free(r);
}

#else /* no cuDNN in this build (not found, or the emulated build) */

struct bench_cudnn_rnn {
  int unused;
};

int bench_cudnn_available(void) { return 0; }

bench_cudnn_rnn *bench_cudnn_rnn_create(const seqk_rnn_desc *desc, const seqk_rnn_weights *w,
                                        seqk_dtype dtype, int64_t T, int64_t N, char *err,
                                        size_t errlen) {
  (void)desc;
  (void)w;
  (void)dtype;
  (void)T;
  (void)N;
  snprintf(err, errlen, "cuDNN not found");
  return NULL;
}

int bench_cudnn_rnn_forward(bench_cudnn_rnn *r, const void *x, void *y) {
  (void)r;
  (void)x;
  (void)y;
  return 1;
}

const char *bench_cudnn_rnn_error(const bench_cudnn_rnn *r) {
  (void)r;
  return "cuDNN not found";
}

void bench_cudnn_rnn_destroy(bench_cudnn_rnn *r) { (void)r; }

#endif
