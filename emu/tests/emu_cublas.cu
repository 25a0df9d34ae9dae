/*
 * emu_cublas.cu - the cuBLAS GEMM entry points (emulated: emu/src/cublas.cpp; with nvcc: the real
 * library, link with -lcublas) against a double-precision reference: both transposes, odd sizes,
 * alpha/beta (beta = 0 must not read C), strided batches, f32/f16/bf16 operands, bad arguments.
 */
#include "cuda_compat.cuh"
#include "emu_check.h"

#include <cublas_v2.h>

#include <cmath>
#include <cstdint>

static uint16_t to16(float f, cudaDataType t) {
  return t == CUDA_R_16BF ? __bfloat16_as_ushort(__float2bfloat16_rn(f))
                          : __half_as_ushort(__float2half_rn(f));
}
static float from16(uint16_t b, cudaDataType t) {
  return t == CUDA_R_16BF ? __bfloat162float(__ushort_as_bfloat16(b))
                          : __half2float(__ushort_as_half(b));
}

/* A column-major matrix of any supported type in device memory, with a double copy. */
struct mat {
  cudaDataType t;
  std::vector<double> v;
  void *d = nullptr;
  size_t esz;
  mat(cudaDataType type, size_t n, ec::rng &r, double poison_every = 0) : t(type), v(n) {
    esz = t == CUDA_R_32F ? 4 : 2;
    std::vector<unsigned char> h(n * esz);
    for (size_t i = 0; i < n; ++i) {
      float f = (float)r.uniform(-1, 1);
      if (poison_every > 0) f = NAN;
      if (t == CUDA_R_32F) {
        memcpy(&h[i * 4], &f, 4);
        v[i] = f;
      } else {
        uint16_t b = to16(f, t);
        memcpy(&h[i * 2], &b, 2);
        v[i] = from16(b, t);
      }
    }
    cudaMalloc(&d, n * esz);
    cudaMemcpy(d, h.data(), n * esz, cudaMemcpyHostToDevice);
  }
  ~mat() { cudaFree(d); }
  std::vector<double> get() const {
    std::vector<unsigned char> h(v.size() * esz);
    cudaMemcpy(h.data(), d, h.size(), cudaMemcpyDeviceToHost);
    std::vector<double> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (t == CUDA_R_32F) {
        float f;
        memcpy(&f, &h[i * 4], 4);
        out[i] = f;
      } else {
        uint16_t b;
        memcpy(&b, &h[i * 2], 2);
        out[i] = from16(b, t);
      }
    }
    return out;
  }
};

static void gemm_case(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, int batch, float alpha, float beta, cudaDataType ab, cudaDataType ct,
                      bool strided_api, ec::rng &r) {
  int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  int lda = ar + 3, ldb = br + 1, ldc = m + 2;
  long long sa = (long long)lda * ac + 5, sb = (long long)ldb * bc + 7, sc = (long long)ldc * n + 1;
  mat A(ab, (size_t)(sa * batch), r), B(ab, (size_t)(sb * batch), r);
  mat C(ct, (size_t)(sc * batch), r, beta == 0.0f ? 1 : 0); /* beta = 0: C starts as NaN */
  cublasStatus_t st;
  if (strided_api && ab == CUDA_R_32F && ct == CUDA_R_32F)
    st =
        cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, (const float *)A.d, lda, sa,
                                  (const float *)B.d, ldb, sb, &beta, (float *)C.d, ldc, sc, batch);
  else
    st = cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, &alpha, A.d, ab, lda, sa, B.d, ab, ldb, sb,
                                    &beta, C.d, ct, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
  cudaDeviceSynchronize();
  CHECK(st == CUBLAS_STATUS_SUCCESS, "gemm status %d", (int)st);
  std::vector<double> got = C.get();
  int bad = 0;
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double acc = 0, mag = 0;
        for (int l = 0; l < k; ++l) {
          double a =
              A.v[b * sa + (ta == CUBLAS_OP_N ? i + (long long)l * lda : l + (long long)i * lda)];
          double bv =
              B.v[b * sb + (tb == CUBLAS_OP_N ? l + (long long)j * ldb : j + (long long)l * ldb)];
          acc += a * bv;
          mag += std::fabs(a * bv);
        }
        long long ci = b * sc + i + (long long)j * ldc;
        double want = alpha * acc + (beta != 0.0f ? beta * C.v[ci] : 0.0);
        double tol =
            2e-5 * (std::fabs(alpha) * mag + std::fabs(beta * (beta != 0.0f ? C.v[ci] : 0))) + 1e-6;
        if (ct != CUDA_R_32F) tol += std::fabs(want) * (ct == CUDA_R_16BF ? 8e-3 : 1e-3);
        bad += !(std::fabs(got[ci] - want) <= tol);
      }
  CHECK(bad == 0, "gemm %c%c m%d n%d k%d batch %d alpha %g beta %g types %d/%d: %d wrong",
        ta == CUBLAS_OP_N ? 'N' : 'T', tb == CUBLAS_OP_N ? 'N' : 'T', m, n, k, batch, alpha, beta,
        (int)ab, (int)ct, bad);
}

int main() {
  ec::rng r(9);
  cublasHandle_t h;
  CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  cudaStream_t s;
  cudaStreamCreate(&s);
  CHECK(cublasSetStream(h, s) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
  const cublasOperation_t ops[2] = {CUBLAS_OP_N, CUBLAS_OP_T};
  for (cublasOperation_t ta : ops)
    for (cublasOperation_t tb : ops) {
      gemm_case(h, ta, tb, 7, 5, 9, 3, 1.0f, 0.0f, CUDA_R_32F, CUDA_R_32F, true, r);
      gemm_case(h, ta, tb, 13, 3, 17, 2, 0.5f, -1.5f, CUDA_R_32F, CUDA_R_32F, false, r);
      gemm_case(h, ta, tb, 6, 11, 16, 2, 1.25f, 0.0f, CUDA_R_16F, CUDA_R_32F, false, r);
      gemm_case(h, ta, tb, 9, 4, 5, 1, 1.0f, 1.0f, CUDA_R_16BF, CUDA_R_16BF, false, r);
      gemm_case(h, ta, tb, 1, 1, 33, 4, -2.0f, 0.5f, CUDA_R_16F, CUDA_R_16F, false, r);
    }
  /* Bad arguments. */
  float one = 1.0f, zero = 0.0f;
  ec::dev<float> buf(64);
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, &one, buf.p, 2, buf.p, 2, &zero, buf.p,
                    2) == CUBLAS_STATUS_INVALID_VALUE,
        "m < 0");
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, buf.p, 3, buf.p, 2, &zero, buf.p,
                    4) == CUBLAS_STATUS_INVALID_VALUE,
        "lda < m");
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, buf.p, 4, buf.p, 2, &zero, buf.p,
                    3) == CUBLAS_STATUS_INVALID_VALUE,
        "ldc < m");
  CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
  cudaStreamDestroy(s);
  return ec::finish();
}
