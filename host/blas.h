/*
 * blas.h - the one door to cuBLAS (every call checked, the handle made on first use and set to
 * the context's current stream every time), and on top of it matrix products over strided,
 * batched row-major views: the shape every GEMM of the library (attention scores and values,
 * linear, the layers built on them) is written in. Not installed.
 */
#ifndef SEQK_BLAS_H
#define SEQK_BLAS_H

#include "device.h"
#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cuBLAS itself -------------------------------------------------------------------------- */

typedef enum seqk_blas_op { SEQK_BLAS_OP_N, SEQK_BLAS_OP_T } seqk_blas_op;

/* One cublasGemmStridedBatchedEx in cuBLAS's column-major convention:
   C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, X_i = X + i * stride_x (elements).
   A and B have ab_type, C has c_type (F32/F16/BF16; F16/BF16 inputs may write F32); the products
   accumulate in fp32 (CUBLAS_COMPUTE_32F: no TF32, no fp16 accumulation). m, n, k, the leading
   dimensions and batch must fit cuBLAS's int. beta == 0 never reads C. */
typedef struct seqk_blas_gemm {
  seqk_blas_op op_a, op_b;
  int64_t m, n, k;
  float alpha, beta;
  const void *a;
  int64_t lda, stride_a;
  const void *b;
  int64_t ldb, stride_b;
  void *c;
  int64_t ldc, stride_c;
  seqk_dtype ab_type, c_type;
  int64_t batch;
} seqk_blas_gemm;

/* Runs g on ctx's stream. BLAS_ERROR with cuBLAS's text, the op and the call site in ctx's last
   error when a cuBLAS call fails. */
seqk_status seqk__blas_gemm(seqk_context_t ctx, const char *op, const seqk_blas_gemm *g);
/* Destroys ctx's cuBLAS handle, if any (context destruction, after the stream is idle; called by
   context.c, so that the runtime door in device.c never reaches up into cuBLAS). */
void seqk__blas_release(seqk_context_t ctx);

/* ---- products of strided views -------------------------------------------------------------- */

/* Batch levels of a product (e.g. batch and head); each operand has its own stride per level. */
#define SEQK_MM_MAX_LEVELS 3

/* A logical row-major matrix operand, repeated over the batch levels: element (l..., r, c) at
   data + sum_l l * batch[l] + r * rs + c * cs (elements). Any non-negative strides; an input may
   repeat itself (stride 0). */
typedef struct seqk_mm_operand {
  void *data;
  int64_t rs, cs;
  int64_t batch[SEQK_MM_MAX_LEVELS];
} seqk_mm_operand;

/* C [m,n] = alpha * A [m,k] B [k,n] (+ bias[n] on every row when bias is given), for every index
   of the batch levels. A and B have ab_type, C has c_type. */
typedef struct seqk_matmul {
  int64_t m, n, k;
  int nlevels;
  int64_t count[SEQK_MM_MAX_LEVELS];
  seqk_dtype ab_type, c_type;
  seqk_mm_operand a, b, c;
  float alpha;
  const seqk_tensor *bias; /* optional, [n] of c_type on the device; NULL: no bias */
  int accumulate;          /* C already holds an addend: C += alpha A B (bias must be NULL) */
} seqk_matmul;

/* The workspace seqk__matmul will take for mm: contiguous copies of the operands cuBLAS cannot
   address (a column stride that is not 1 in either orientation, rows that overlap, leading
   dimensions beyond int). Depends only on shapes and strides, so it can be planned before the
   operands' memory exists. */
size_t seqk__matmul_workspace(const seqk_matmul *mm);
/* Whether seqk__matmul serves mm: every product but one whose inner extent k passes cuBLAS's int
   (m, n and the batch are split into blocks when they do). Ask before writing anything. */
int seqk__matmul_supported(const seqk_matmul *mm);
/* Tests only: the largest m and n of one cuBLAS call (0: cuBLAS's own limit, INT_MAX), so that
   the row and column blocking runs on small shapes. Not thread-safe. */
void seqk__blas_max_extent(int64_t n);
/* Runs mm on ctx's stream with as few cuBLAS calls as the batch strides allow (levels whose
   strides line up for all three operands become one strided batch; the others are looped).
   k == 0 writes the bias (or 0) without a GEMM. The bias is written into C first and the GEMM
   adds to it with beta = 1, so f16/bf16 outputs are rounded once (an epilogue after the GEMM
   would round the product, then the sum). */
seqk_status seqk__matmul(seqk_context_t ctx, const char *op, seqk_arena *arena,
                         const seqk_matmul *mm);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_BLAS_H */
