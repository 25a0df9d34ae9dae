/*
 * blas.c - cuBLAS behind one wrapper, and products of strided batched views (see blas.h).
 *
 * The views are row-major in the library's sense (element (r, c) at r*rs + c*cs); cuBLAS is
 * column-major. A row-major C is a column-major C^T, so a product is run as C^T = B^T A^T with the
 * operands' roles swapped; each input then enters cuBLAS either as it is stored (op N) or
 * transposed (op T), whichever of its two strides is 1. Whatever cuBLAS cannot address (a column
 * stride that is not 1 either way, overlapping rows, a leading dimension beyond int) is copied
 * into a contiguous workspace piece first (the tensor_copy kernel), and an output it cannot
 * address is computed into the workspace and copied out.
 */
#include "blas.h"

#include "geometry.h"

#include <limits.h>
#include <string.h>

#ifdef SEQK_HAVE_CUDA
#include <cublas_v2.h>

#include "cuda_copy.h"
#endif

/* ---- operand geometry (no CUDA needed: plans are made before anything runs) ------------------- */

/* Is X [R,C] with strides (rs, cs) a column-major matrix X(r,c) = X[r + c*ld] cuBLAS accepts
   (ld >= R, ld within int)? Extents of 1 leave their stride free. */
static int colmajor_ld(int64_t R, int64_t C, int64_t rs, int64_t cs, int64_t *ld) {
  const int64_t rows = R > 1 ? R : 1;
  if (R > 1 && rs != 1) return 0;
  if (C <= 1) {
    *ld = rows;
    return rows <= INT_MAX;
  }
  if (cs < rows || cs > INT_MAX) return 0;
  *ld = cs;
  return 1;
}

/* How the logical input Y [R,C] (strides rs, cs) enters cuBLAS: stored column-major as Y (op N) or
   as Y^T (op T). 0 when neither works and Y must be copied. */
static int as_input(int64_t R, int64_t C, int64_t rs, int64_t cs, seqk_blas_op *op, int64_t *ld) {
  if (colmajor_ld(R, C, rs, cs, ld)) {
    *op = SEQK_BLAS_OP_N;
    return 1;
  }
  if (colmajor_ld(C, R, cs, rs, ld)) {
    *op = SEQK_BLAS_OP_T;
    return 1;
  }
  return 0;
}

/* The decisions of one product: which operands go through a contiguous copy, and whether cuBLAS
   computes C^T = B^T A^T (C stored row-major, the usual case) or C = A B (C stored column-major). */
typedef struct mm_plan {
  int copy_a, copy_b, copy_c;
  int c_transposed;
  size_t bytes;
} mm_plan;

/* Elements of a contiguous copy of x [levels..., R, C]; levels where x repeats itself (stride 0)
   are not materialised (skip_zero, inputs only). */
static int64_t copy_numel(const seqk_matmul *mm, const seqk_mm_operand *x, int64_t R, int64_t C,
                          int skip_zero) {
  int64_t n = seqk__mul_sat(R, C);
  for (int l = 0; l < mm->nlevels; ++l)
    if (!(skip_zero && x->batch[l] == 0)) n = seqk__mul_sat(n, mm->count[l]);
  return n;
}

static mm_plan make_plan(const seqk_matmul *mm) {
  mm_plan p;
  seqk_blas_op op;
  int64_t ld;
  const size_t ab = seqk_dtype_size(mm->ab_type), cb = seqk_dtype_size(mm->c_type);
  memset(&p, 0, sizeof p);
  /* k == 0 only fills C (any strides), and no GEMM reads A or B. */
  if (mm->k > 0) {
    p.copy_a = !as_input(mm->m, mm->k, mm->a.rs, mm->a.cs, &op, &ld);
    p.copy_b = !as_input(mm->k, mm->n, mm->b.rs, mm->b.cs, &op, &ld);
    if (colmajor_ld(mm->n, mm->m, mm->c.cs, mm->c.rs, &ld)) {
      p.c_transposed = 1;
    } else if (colmajor_ld(mm->m, mm->n, mm->c.rs, mm->c.cs, &ld)) {
      p.c_transposed = 0;
    } else {
      p.copy_c = 1;
      p.c_transposed = 1; /* the copy is row-major */
    }
  }
  if (p.copy_a)
    p.bytes = seqk__ws_sum(p.bytes, seqk__ws_elems(copy_numel(mm, &mm->a, mm->m, mm->k, 1), ab));
  if (p.copy_b)
    p.bytes = seqk__ws_sum(p.bytes, seqk__ws_elems(copy_numel(mm, &mm->b, mm->k, mm->n, 1), ab));
  if (p.copy_c)
    p.bytes = seqk__ws_sum(p.bytes, seqk__ws_elems(copy_numel(mm, &mm->c, mm->m, mm->n, 0), cb));
  return p;
}

static int mm_empty(const seqk_matmul *mm) {
  if (mm->m == 0 || mm->n == 0) return 1;
  for (int l = 0; l < mm->nlevels; ++l)
    if (mm->count[l] == 0) return 1;
  return 0;
}

size_t seqk__matmul_workspace(const seqk_matmul *mm) {
  if (mm_empty(mm)) return 0;
  return make_plan(mm).bytes;
}

#ifdef SEQK_HAVE_CUDA

/* ---- cuBLAS ----------------------------------------------------------------------------------- */

#define SEQK_BLAS_CALL(ctx, op, name, call)                                                        \
  do {                                                                                             \
    cublasStatus_t seqk__blas_status = (call);                                                     \
    if (seqk__blas_status != CUBLAS_STATUS_SUCCESS)                                                \
      return seqk__fail((ctx), SEQK_STATUS_BLAS_ERROR, "%s: %s failed: %s (%s) (%s:%d)", (op),     \
                        name, cublasGetStatusName(seqk__blas_status),                              \
                        cublasGetStatusString(seqk__blas_status), __FILE__, __LINE__);             \
  } while (0)

static cudaDataType cuda_type(seqk_dtype t) {
  switch (t) {
    case SEQK_DTYPE_F16: return CUDA_R_16F;
    case SEQK_DTYPE_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

/* ctx's handle, made on first use, bound to ctx's stream now (the caller may have changed it since
   the last call). */
static seqk_status blas_handle(seqk_context_t ctx, const char *op, cublasHandle_t *out) {
  if (!ctx->cublas) {
    cublasHandle_t h = NULL;
    SEQK_BLAS_CALL(ctx, op, "cublasCreate", cublasCreate(&h));
    /* fp32 accumulation all the way: split-K reductions must not go through an f16/bf16 output
       type (cuBLAS allows that by default for reduced-precision outputs). Costs little, and the
       f16/bf16 results then round once, like the CPU reference's. */
    cublasStatus_t st = cublasSetMathMode(
        h, (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
    if (st != CUBLAS_STATUS_SUCCESS) {
      (void)cublasDestroy(h);
      SEQK_BLAS_CALL(ctx, op, "cublasSetMathMode", st);
    }
    ctx->cublas = h;
  }
  *out = (cublasHandle_t)ctx->cublas;
  SEQK_BLAS_CALL(ctx, op, "cublasSetStream", cublasSetStream(*out, (cudaStream_t)ctx->stream));
  return SEQK_STATUS_SUCCESS;
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

seqk_status seqk__blas_gemm(seqk_context_t ctx, const char *op, const seqk_blas_gemm *g) {
  cublasHandle_t h = NULL;
  if (!fits_int(g->m) || !fits_int(g->n) || !fits_int(g->k) || !fits_int(g->lda) ||
      !fits_int(g->ldb) || !fits_int(g->ldc) || !fits_int(g->batch))
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: GEMM extents beyond cuBLAS's int (m=%lld n=%lld k=%lld batch=%lld)", op,
                      (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
  if (g->m == 0 || g->n == 0 || g->batch == 0) return SEQK_STATUS_SUCCESS;
  SEQK_TRY(blas_handle(ctx, op, &h));
  /* CUBLAS_COMPUTE_32F: fp32 accumulation for every input type, and never TF32 (which needs
     CUBLAS_COMPUTE_32F_FAST_TF32): f32 results stay within the tests' f32 tolerance. */
  SEQK_BLAS_CALL(
      ctx, op, "cublasGemmStridedBatchedEx",
      cublasGemmStridedBatchedEx(h, g->op_a == SEQK_BLAS_OP_T ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 g->op_b == SEQK_BLAS_OP_T ? CUBLAS_OP_T : CUBLAS_OP_N, (int)g->m,
                                 (int)g->n, (int)g->k, &g->alpha, g->a, cuda_type(g->ab_type),
                                 (int)g->lda, (long long)g->stride_a, g->b, cuda_type(g->ab_type),
                                 (int)g->ldb, (long long)g->stride_b, &g->beta, g->c,
                                 cuda_type(g->c_type), (int)g->ldc, (long long)g->stride_c,
                                 (int)g->batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return SEQK_STATUS_SUCCESS;
}

void seqk__blas_release(seqk_context_t ctx) {
  if (ctx->cublas) (void)cublasDestroy((cublasHandle_t)ctx->cublas);
  ctx->cublas = NULL;
}

/* ---- products of views ------------------------------------------------------------------------ */

/* x as a tensor [levels..., R, C] of dtype dt (levels where x repeats itself left out when
   skip_zero), for the copy and fill kernels. */
static seqk_tensor operand_tensor(const seqk_matmul *mm, const seqk_mm_operand *x, seqk_dtype dt,
                                  int64_t R, int64_t C, int skip_zero) {
  seqk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = x->data;
  t.dtype = dt;
  t.device = SEQK_DEVICE_CUDA;
  for (int l = 0; l < mm->nlevels; ++l) {
    if (skip_zero && x->batch[l] == 0) continue;
    t.shape[t.ndim] = mm->count[l];
    t.stride[t.ndim] = x->batch[l];
    ++t.ndim;
  }
  t.shape[t.ndim] = R;
  t.stride[t.ndim] = x->rs;
  t.shape[t.ndim + 1] = C;
  t.stride[t.ndim + 1] = x->cs;
  t.ndim += 2;
  return t;
}

/* Replaces *x by a contiguous row-major copy (or, for an output, a contiguous piece to compute
   into) taken from the arena; copies x's elements when copy_in. */
static seqk_status to_contiguous(seqk_context_t ctx, const char *op, seqk_arena *arena,
                                 const seqk_matmul *mm, seqk_mm_operand *x, seqk_dtype dt,
                                 int64_t R, int64_t C, int is_input) {
  const seqk_tensor src = operand_tensor(mm, x, dt, R, C, is_input);
  void *piece = NULL;
  SEQK_TRY(seqk__arena_take(ctx, op, arena,
                            seqk__ws_elems(copy_numel(mm, x, R, C, is_input), seqk_dtype_size(dt)),
                            &piece));
  seqk_mm_operand y;
  memset(&y, 0, sizeof y);
  y.data = piece;
  y.rs = C;
  y.cs = 1;
  int64_t stride = R * C;
  for (int l = mm->nlevels - 1; l >= 0; --l) {
    if (is_input && x->batch[l] == 0) continue; /* stays 0: still repeats */
    y.batch[l] = stride;
    stride *= mm->count[l];
  }
  if (is_input) {
    seqk_tensor dst = operand_tensor(mm, &y, dt, R, C, 1);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &dst, &src));
  }
  *x = y;
  return SEQK_STATUS_SUCCESS;
}

/* Levels outer-to-inner o, i merge into one strided batch when every operand's stride at o is
   count[i] times its stride at i. */
static int levels_merge(const seqk_matmul *mm, const seqk_mm_operand *const ops[3], int o, int i) {
  for (int t = 0; t < 3; ++t)
    if (ops[t]->batch[o] != seqk__mul_sat(mm->count[i], ops[t]->batch[i])) return 0;
  return 1;
}

/* Splits the levels with more than one index into a chain (outer to inner) that becomes one
   strided batch, the longest in indices among every order, and the rest, which is looped. */
static void split_levels(const seqk_matmul *mm, const seqk_mm_operand *const ops[3], int *chain,
                         int *n_chain, int *loop, int *n_loop) {
  int act[SEQK_MM_MAX_LEVELS], na = 0;
  for (int l = 0; l < mm->nlevels; ++l)
    if (mm->count[l] > 1) act[na++] = l;
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  int64_t best = 0;
  *n_chain = 0;
  for (int p = 0; p < 6; ++p) {
    int order[3], n = 0;
    for (int j = 0; j < 3; ++j)
      if (perms[p][j] < na) order[n++] = act[perms[p][j]];
    /* The longest suffix of this order whose neighbours merge. */
    int start = n - 1;
    if (start < 0) break;
    while (start > 0 && levels_merge(mm, ops, order[start - 1], order[start])) --start;
    int64_t total = 1;
    for (int j = start; j < n; ++j) total *= mm->count[order[j]];
    if (total > best) {
      best = total;
      *n_chain = n - start;
      for (int j = start; j < n; ++j) chain[j - start] = order[j];
    }
  }
  *n_loop = 0;
  for (int j = 0; j < na; ++j) {
    int in_chain = 0;
    for (int c = 0; c < *n_chain; ++c) in_chain |= chain[c] == act[j];
    if (!in_chain) loop[(*n_loop)++] = act[j];
  }
}

static const char *advance(const void *p, int64_t elems, size_t elem_size) {
  return (const char *)p + elems * (int64_t)elem_size;
}

/* The largest m and n one cuBLAS call takes (its extents are ints): larger products go in row
   and column blocks. Tests lower it (seqk__blas_max_extent) to run the blocking on small shapes. */
static int64_t g_max_extent = INT_MAX;

void seqk__blas_max_extent(int64_t n) { g_max_extent = n > 0 && n < INT_MAX ? n : INT_MAX; }

int seqk__matmul_supported(const seqk_matmul *mm) { return mm->k <= INT_MAX; }

seqk_status seqk__matmul(seqk_context_t ctx, const char *op, seqk_arena *arena,
                         const seqk_matmul *mm_in) {
  if (mm_empty(mm_in)) return SEQK_STATUS_SUCCESS;
  if (!seqk__matmul_supported(mm_in))
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: a product's inner extent k=%lld is beyond cuBLAS's int range", op,
                      (long long)mm_in->k);
  seqk_matmul mm = *mm_in;
  const seqk_tensor c_view = operand_tensor(&mm, &mm.c, mm.c_type, mm.m, mm.n, 0);
  if (mm.k == 0)
    return mm.accumulate ? SEQK_STATUS_SUCCESS : seqk__cuda_fill(ctx, op, &c_view, mm.bias, 0.0f);

  const mm_plan plan = make_plan(&mm);
  if (plan.copy_a) SEQK_TRY(to_contiguous(ctx, op, arena, &mm, &mm.a, mm.ab_type, mm.m, mm.k, 1));
  if (plan.copy_b) SEQK_TRY(to_contiguous(ctx, op, arena, &mm, &mm.b, mm.ab_type, mm.k, mm.n, 1));
  if (plan.copy_c)
    SEQK_TRY(to_contiguous(ctx, op, arena, &mm, &mm.c, mm.c_type, mm.m, mm.n, mm.accumulate));
  if (mm.bias) {
    const seqk_tensor target = operand_tensor(&mm, &mm.c, mm.c_type, mm.m, mm.n, 0);
    SEQK_TRY(seqk__cuda_fill(ctx, op, &target, mm.bias, 0.0f));
  }

  /* One GEMM's geometry. C^T = B^T A^T: cuBLAS's A is our B^T [n,k], its B our A^T [k,m]. */
  seqk_blas_gemm g;
  const seqk_mm_operand *ga, *gb;
  int ok;
  memset(&g, 0, sizeof g);
  g.k = mm.k;
  g.alpha = mm.alpha;
  g.beta = mm.bias || mm.accumulate ? 1.0f : 0.0f;
  g.ab_type = mm.ab_type;
  g.c_type = mm.c_type;
  if (plan.c_transposed) {
    g.m = mm.n;
    g.n = mm.m;
    ga = &mm.b;
    gb = &mm.a;
    ok = as_input(mm.n, mm.k, mm.b.cs, mm.b.rs, &g.op_a, &g.lda) &&
         as_input(mm.k, mm.m, mm.a.cs, mm.a.rs, &g.op_b, &g.ldb) &&
         colmajor_ld(mm.n, mm.m, mm.c.cs, mm.c.rs, &g.ldc);
  } else {
    g.m = mm.m;
    g.n = mm.n;
    ga = &mm.a;
    gb = &mm.b;
    ok = as_input(mm.m, mm.k, mm.a.rs, mm.a.cs, &g.op_a, &g.lda) &&
         as_input(mm.k, mm.n, mm.b.rs, mm.b.cs, &g.op_b, &g.ldb) &&
         colmajor_ld(mm.m, mm.n, mm.c.rs, mm.c.cs, &g.ldc);
  }
  if (!ok)
    return seqk__fail(ctx, SEQK_STATUS_INTERNAL_ERROR,
                      "%s: a GEMM operand is still not addressable after its copy", op);

  const seqk_mm_operand *const ops[3] = {&mm.a, &mm.b, &mm.c};
  int chain[SEQK_MM_MAX_LEVELS], loop[SEQK_MM_MAX_LEVELS], n_chain, n_loop;
  split_levels(&mm, ops, chain, &n_chain, loop, &n_loop);
  int64_t batch = 1;
  for (int c = 0; c < n_chain; ++c) batch *= mm.count[chain[c]];
  if (n_chain > 0) {
    const int inner = chain[n_chain - 1];
    g.stride_a = ga->batch[inner];
    g.stride_b = gb->batch[inner];
    g.stride_c = mm.c.batch[inner];
  }
  const size_t ab = seqk_dtype_size(mm.ab_type), cb = seqk_dtype_size(mm.c_type);
  int64_t idx[SEQK_MM_MAX_LEVELS] = {0, 0, 0};
  for (;;) {
    int64_t off_a = 0, off_b = 0, off_c = 0;
    for (int j = 0; j < n_loop; ++j) {
      off_a += idx[j] * ga->batch[loop[j]];
      off_b += idx[j] * gb->batch[loop[j]];
      off_c += idx[j] * mm.c.batch[loop[j]];
    }
    /* cuBLAS counts batches, rows and columns in int: very long chains go in slices, very tall
       or wide products in row and column blocks (A's rows and C's rows move together, and B's
       columns with C's columns). */
    for (int64_t first = 0; first < batch; first += INT_MAX)
      for (int64_t m0 = 0; m0 < mm.m; m0 += g_max_extent)
        for (int64_t n0 = 0; n0 < mm.n; n0 += g_max_extent) {
          const int64_t rows = mm.m - m0 < g_max_extent ? mm.m - m0 : g_max_extent;
          const int64_t cols = mm.n - n0 < g_max_extent ? mm.n - n0 : g_max_extent;
          const int64_t da = m0 * mm.a.rs, db = n0 * mm.b.cs; /* our A and B, in elements */
          g.batch = batch - first < INT_MAX ? batch - first : INT_MAX;
          g.m = plan.c_transposed ? cols : rows;
          g.n = plan.c_transposed ? rows : cols;
          g.a = advance(ga->data, off_a + first * g.stride_a + (plan.c_transposed ? db : da), ab);
          g.b = advance(gb->data, off_b + first * g.stride_b + (plan.c_transposed ? da : db), ab);
          g.c = (void *)advance(mm.c.data, off_c + first * g.stride_c + m0 * mm.c.rs + n0 * mm.c.cs,
                                cb);
          SEQK_TRY(seqk__blas_gemm(ctx, op, &g));
        }
    int j = n_loop - 1;
    while (j >= 0 && ++idx[j] == mm.count[loop[j]]) idx[j--] = 0;
    if (j < 0) break;
  }

  if (plan.copy_c) {
    const seqk_tensor computed = operand_tensor(&mm, &mm.c, mm.c_type, mm.m, mm.n, 0);
    SEQK_TRY(seqk__cuda_copy(ctx, op, &c_view, &computed));
  }
  return SEQK_STATUS_SUCCESS;
}

#else /* !SEQK_HAVE_CUDA */

seqk_status seqk__blas_gemm(seqk_context_t ctx, const char *op, const seqk_blas_gemm *g) {
  (void)g;
  return seqk__built_without_cuda(ctx, op);
}

void seqk__blas_release(seqk_context_t ctx) { (void)ctx; }

seqk_status seqk__matmul(seqk_context_t ctx, const char *op, seqk_arena *arena,
                         const seqk_matmul *mm) {
  (void)arena;
  (void)mm;
  return seqk__built_without_cuda(ctx, op);
}

#endif
