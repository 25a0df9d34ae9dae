/*
 * cublas.cpp - a CPU stand-in for the cuBLAS entry points the library may use, against the
 * toolkit's own cublas_v2.h declarations: handles, streams, math and pointer modes, and GEMM
 * (Sgemm, SgemmStridedBatched, GemmEx, GemmStridedBatchedEx) with both transposes, alpha/beta,
 * column-major operands in f32, f16 or bf16, and fp32 accumulation like cuBLAS's
 * CUBLAS_COMPUTE_32F. Everything runs at once on the calling thread (streams are serial), or is
 * recorded by a capture of the handle's stream (stream.h).
 */
#include <cublas_v2.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>

#include "numeric.h"
#include "stream.h"

#include <functional>

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

namespace {

std::mutex g_mutex;
std::set<cublasHandle_t> g_handles;

bool valid(cublasHandle_t h) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return h && g_handles.count(h);
}

bool dtype_ok(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }

float load(const void *p, cudaDataType t, long long i) {
  switch (t) {
    case CUDA_R_16F: return seqk__f16_to_float(static_cast<const uint16_t *>(p)[i]);
    case CUDA_R_16BF: return seqk__bf16_to_float(static_cast<const uint16_t *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
  }
}

void store(void *p, cudaDataType t, long long i, float v) {
  switch (t) {
    case CUDA_R_16F: static_cast<uint16_t *>(p)[i] = seqk__double_to_f16(v); break;
    case CUDA_R_16BF: static_cast<uint16_t *>(p)[i] = seqk__double_to_bf16(v); break;
    default: static_cast<float *>(p)[i] = v; break;
  }
}

void gemm_now(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float al,
              const void *A, cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt,
              int ldb, long long sb, float be, void *C, cudaDataType ct, int ldc, long long sc,
              int batch);

/* C = alpha op(A) op(B) + beta C for each batch, column-major; beta == 0 never reads C. */
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const float *alpha, const void *A, cudaDataType at, int lda,
                    long long sa, const void *B, cudaDataType bt, int ldb, long long sb,
                    const float *beta, void *C, cudaDataType ct, int ldc, long long sc, int batch) {
  if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
  if ((!an && ta != CUBLAS_OP_T && ta != CUBLAS_OP_C) ||
      (!bn && tb != CUBLAS_OP_T && tb != CUBLAS_OP_C))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  int a_rows = an ? m : k, b_rows = bn ? k : n;
  if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!dtype_ok(at) || !dtype_ok(bt) || !dtype_ok(ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  /* alpha and beta are read now (host pointer mode); the product runs in the handle's stream
     order (stream.h: recorded when the stream is capturing). */
  const float al = *alpha, be = *beta;
  seqk_emu::enqueue(h->stream, [=] {
    gemm_now(ta, tb, m, n, k, al, A, at, lda, sa, B, bt, ldb, sb, be, C, ct, ldc, sc, batch);
  });
  return CUBLAS_STATUS_SUCCESS;
}

void gemm_now(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float al,
              const void *A, cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt,
              int ldb, long long sb, float be, void *C, cudaDataType ct, int ldc, long long sc,
              int batch) {
  const bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
  for (int b = 0; b < batch; ++b) {
    const char *Ab = static_cast<const char *>(A), *Bb = static_cast<const char *>(B);
    size_t as = at == CUDA_R_32F ? 4 : 2, bs = bt == CUDA_R_32F ? 4 : 2,
           cs = ct == CUDA_R_32F ? 4 : 2;
    Ab += (long long)b * sa * (long long)as;
    Bb += (long long)b * sb * (long long)bs;
    char *Cb = static_cast<char *>(C) + (long long)b * sc * (long long)cs;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        float acc = 0.0f;
        for (int l = 0; l < k; ++l) {
          float a = load(Ab, at, an ? i + (long long)l * lda : l + (long long)i * lda);
          float bv = load(Bb, bt, bn ? l + (long long)j * ldb : j + (long long)l * ldb);
          acc += a * bv;
        }
        long long ci = i + (long long)j * ldc;
        float v = al * acc;
        if (be != 0.0f) v += be * load(Cb, ct, ci);
        store(Cb, ct, ci, v);
      }
  }
}

bool compute_ok(cublasComputeType_t c) {
  return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_PEDANTIC ||
         c == CUBLAS_COMPUTE_32F_FAST_16F || c == CUBLAS_COMPUTE_32F_FAST_16BF ||
         c == CUBLAS_COMPUTE_32F_FAST_TF32;
}

}   // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext();
  std::lock_guard<std::mutex> lock(g_mutex);
  g_handles.insert(*handle);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_handles.erase(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

/* Device pointers are host pointers here, so both pointer modes read alpha/beta the same way. */
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    default: return "an unknown cuBLAS error (seqk_emu)";
  }
}

const char *cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int m, int n, int k, const float *alpha,
                              const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
  return gemm(handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0,
              beta, C, CUDA_R_32F, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long int strideA, const float *B, int ldb,
                                         long long int strideB, const float *beta, float *C,
                                         int ldc, long long int strideC, int batchCount) {
  return gemm(handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, strideA, B, CUDA_R_32F,
              ldb, strideB, beta, C, CUDA_R_32F, ldc, strideC, batchCount);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
  (void)algo;
  if (!compute_ok(computeType)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm(handle, transa, transb, m, n, k, static_cast<const float *>(alpha), A, Atype, lda, 0,
              B, Btype, ldb, 0, static_cast<const float *>(beta), C, Ctype, ldc, 0, 1);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long int strideA, const void *B,
                                          cudaDataType Btype, int ldb, long long int strideB,
                                          const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  (void)algo;
  if (!compute_ok(computeType)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm(handle, transa, transb, m, n, k, static_cast<const float *>(alpha), A, Atype, lda,
              strideA, B, Btype, ldb, strideB, static_cast<const float *>(beta), C, Ctype, ldc,
              strideC, batchCount);
}

}   // extern "C"
