/*
 * emu_mma.cu - tensor-core primitives against the PTX fragment layouts (kernels/primitives.cuh):
 *   - mma m16n8k16 / m16n8k8, f16 and bf16: every lane builds its fragments from memory by the
 *     layout table (written here independently), and D is compared with a double product;
 *   - ldmatrix x1/x2/x4, plain and .trans: each lane's registers are compared element by element
 *     with the layout, with scattered row addresses so that every lane's address matters;
 *   - ldmatrix into mma, the usual three patterns, against a double product.
 * Built with nvcc the same file confirms the layouts on a GPU.
 */
#include "primitives.cuh"
#include "emu_check.h"

#include <cmath>

/* ---- host-side 16-bit helpers ------------------------------------------------------------------ */
static float h2f(uint16_t b, bool bf) {
  if (bf) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  __half h = __ushort_as_half(b);
  return __half2float(h);
}
static uint16_t f2h(float f, bool bf) {
  return bf ? __bfloat16_as_ushort(__float2bfloat16_rn(f)) : __half_as_ushort(__float2half_rn(f));
}

/* ---- mma with fragments loaded per the layout table ------------------------------------------- */
/* A: 16 x K row-major, B: K x 8 row-major ([k][n]), C/D: 16 x 8 row-major; all 16-bit as bits. */
template <int K, bool BF>
__global__ void mma_kernel(const uint16_t *A, const uint16_t *B, const float *C, float *D) {
  int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  auto pk = [](uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); };
  uint32_t a[4], b[2];
  a[0] = pk(A[g * K + 2 * t], A[g * K + 2 * t + 1]);
  a[1] = pk(A[(g + 8) * K + 2 * t], A[(g + 8) * K + 2 * t + 1]);
  b[0] = pk(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
  if (K == 16) {
    a[2] = pk(A[g * K + 2 * t + 8], A[g * K + 2 * t + 9]);
    a[3] = pk(A[(g + 8) * K + 2 * t + 8], A[(g + 8) * K + 2 * t + 9]);
    b[1] = pk(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
  }
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t],
                C[(g + 8) * 8 + 2 * t + 1]};
  float d[4];
  if (K == 16) {
    if (BF)
      mma_m16n8k16_bf16(d, a, b, c);
    else
      mma_m16n8k16_f16(d, a, b, c);
  } else {
    if (BF)
      mma_m16n8k8_bf16(d, a, b, c);
    else
      mma_m16n8k8_f16(d, a, b, c);
  }
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

/* D vs the double product; the bound allows fp32 accumulation in any order. */
static void compare_product(const char *what, int K, bool bf, const std::vector<uint16_t> &A,
                            const std::vector<uint16_t> &Bkn, const std::vector<float> &C,
                            const std::vector<float> &D) {
  double worst = 0;
  int bad = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double acc = C[i * 8 + j], mag = std::fabs(acc);
      for (int q = 0; q < K; ++q) {
        double p = (double)h2f(A[i * K + q], bf) * h2f(Bkn[q * 8 + j], bf);
        acc += p;
        mag += std::fabs(p);
      }
      double err = std::fabs(D[i * 8 + j] - acc);
      worst = err > worst ? err : worst;
      bad += !(err <= 4e-6 * mag + 1e-6);
    }
  CHECK(bad == 0, "%s: %d of 128 outputs off (worst error %.3g)", what, bad, worst);
}

template <int K, bool BF>
static void test_mma(ec::rng &r) {
  ec::dump_as rounding(ec::DUMP_ROUNDING); /* the emulator rounds D once, the tensor cores not */
  for (int rep = 0; rep < 4; ++rep) {
    std::vector<uint16_t> A(16 * K), B(K * 8);
    std::vector<float> C(128);
    for (uint16_t &v : A) v = f2h((float)r.uniform(-2, 2), BF);
    for (uint16_t &v : B) v = f2h((float)r.uniform(-2, 2), BF);
    for (float &v : C) v = (float)r.uniform(-1, 1);
    ec::dev<uint16_t> dA(A), dB(B);
    ec::dev<float> dC(C), dD(128);
    launch(dim3(1), dim3(32), 0, 0, mma_kernel<K, BF>, dA.p, dB.p, dC.p, dD.p);
    CHECK_LAUNCH("mma_kernel");
    char what[64];
    snprintf(what, sizeof what, "mma m16n8k%d %s rep %d", K, BF ? "bf16" : "f16", rep);
    compare_product(what, K, BF, A, B, C, dD.get());
  }
}

/* ---- ldmatrix element by element ---------------------------------------------------------------- */
/* 32 rows of 8 b16 values, each row 48 bytes apart (16-byte aligned, not contiguous). Row
   place[8j + r] holds row r of matrix j, whose element e is the id 1000 + 64j + 8r + e. */
constexpr int kRowStride = 24; /* in 16-bit elements */

template <int NUM, bool TRANS>
__global__ void ldmatrix_kernel(const uint16_t *rows, const int *place, uint32_t *out) {
  SMEM_ARRAY(uint16_t, s, 32 * kRowStride);
  int lane = threadIdx.x;
  for (int i = lane; i < 32 * kRowStride; i += 32) s[i] = rows[i];
  __syncwarp();
  /* Lanes beyond 8*NUM pass a valid but irrelevant address. */
  const void *addr = &s[place[lane < 8 * NUM ? lane : 0] * kRowStride];
  uint32_t reg[4] = {0, 0, 0, 0};
  if (NUM == 1) TRANS ? ldmatrix_x1_trans(reg, addr) : ldmatrix_x1(reg, addr);
  if (NUM == 2) TRANS ? ldmatrix_x2_trans(reg, addr) : ldmatrix_x2(reg, addr);
  if (NUM == 4) TRANS ? ldmatrix_x4_trans(reg, addr) : ldmatrix_x4(reg, addr);
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = reg[j];
}

template <int NUM, bool TRANS>
static void test_ldmatrix(ec::rng &r) {
  std::vector<int> place(32);
  for (int i = 0; i < 32; ++i) place[i] = i;
  for (int i = 31; i > 0; --i) std::swap(place[i], place[r.below(i + 1)]);
  std::vector<uint16_t> rows(32 * kRowStride, 0xEEEE);
  for (int j = 0; j < 4; ++j)
    for (int rr = 0; rr < 8; ++rr)
      for (int e = 0; e < 8; ++e)
        rows[place[8 * j + rr] * kRowStride + e] = (uint16_t)(1000 + 64 * j + 8 * rr + e);
  ec::dev<uint16_t> drows(rows);
  ec::dev<int> dplace(place);
  ec::dev<uint32_t> dout(128);
  launch(dim3(1), dim3(32), 0, 0, ldmatrix_kernel<NUM, TRANS>, drows.p, dplace.p, dout.p);
  CHECK_LAUNCH("ldmatrix_kernel");
  std::vector<uint32_t> out = dout.get();
  int bad = 0;
  for (int L = 0; L < 32; ++L)
    for (int j = 0; j < NUM; ++j) {
      int r0, c0, r1, c1;
      if (!TRANS) {
        r0 = r1 = L / 4;
        c0 = 2 * (L % 4);
        c1 = c0 + 1;
      } else {
        c0 = c1 = L / 4;
        r0 = 2 * (L % 4);
        r1 = r0 + 1;
      }
      uint32_t want =
          (uint32_t)(1000 + 64 * j + 8 * r0 + c0) | ((uint32_t)(1000 + 64 * j + 8 * r1 + c1) << 16);
      if (out[L * 4 + j] != want && ++bad <= 3)
        fprintf(stderr, "  ldmatrix x%d%s lane %d reg %d: %08x want %08x\n", NUM,
                TRANS ? ".trans" : "", L, j, out[L * 4 + j], want);
    }
  CHECK(bad == 0, "ldmatrix x%d%s: %d registers wrong", NUM, TRANS ? ".trans" : "", bad);
}

/* ---- ldmatrix -> mma: A row-major 16x16 (x4), B as [K][N] (x2.trans) and as [N][K] (x2) ------- */
template <bool BF>
__global__ void ldmatrix_mma_kernel(const uint16_t *A, const uint16_t *Bkn, const uint16_t *Bnk,
                                    float *D1, float *D2) {
  SMEM_ARRAY2(uint16_t, sA, 16, 24); /* padded rows, 16-byte aligned */
  SMEM_ARRAY2(uint16_t, sB, 16, 8);  /* [K][N] */
  SMEM_ARRAY2(uint16_t, sBt, 8, 24); /* [N][K], padded */
  int L = threadIdx.x;
  for (int i = L; i < 256; i += 32) sA[i / 16][i % 16] = A[i];
  for (int i = L; i < 128; i += 32) sB[i / 8][i % 8] = Bkn[i];
  for (int i = L; i < 128; i += 32) sBt[i / 16][i % 16] = Bnk[i];
  __syncwarp();
  uint32_t a[4], b1[2], b2[2];
  ldmatrix_x4(a, &sA[L % 16][8 * (L / 16)]);
  ldmatrix_x2_trans(b1, &sB[L % 16][0]);
  ldmatrix_x2(b2, L < 8 ? &sBt[L][0] : &sBt[L % 8][8]);
  float c[4] = {0, 0, 0, 0}, d1[4], d2[4];
  if (BF) {
    mma_m16n8k16_bf16(d1, a, b1, c);
    mma_m16n8k16_bf16(d2, a, b2, c);
  } else {
    mma_m16n8k16_f16(d1, a, b1, c);
    mma_m16n8k16_f16(d2, a, b2, c);
  }
  int g = L >> 2, t = L & 3;
  D1[g * 8 + 2 * t] = d1[0];
  D1[g * 8 + 2 * t + 1] = d1[1];
  D1[(g + 8) * 8 + 2 * t] = d1[2];
  D1[(g + 8) * 8 + 2 * t + 1] = d1[3];
  D2[g * 8 + 2 * t] = d2[0];
  D2[g * 8 + 2 * t + 1] = d2[1];
  D2[(g + 8) * 8 + 2 * t] = d2[2];
  D2[(g + 8) * 8 + 2 * t + 1] = d2[3];
}

template <bool BF>
static void test_ldmatrix_mma(ec::rng &r) {
  std::vector<uint16_t> A(256), Bkn(128), Bnk(128);
  for (uint16_t &v : A) v = f2h((float)r.uniform(-1, 1), BF);
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) Bkn[k * 8 + n] = Bnk[n * 16 + k] = f2h((float)r.uniform(-1, 1), BF);
  ec::dev<uint16_t> dA(A), dB(Bkn), dBt(Bnk);
  ec::dev<float> d1(128), d2(128);
  launch(dim3(1), dim3(32), 0, 0, ldmatrix_mma_kernel<BF>, dA.p, dB.p, dBt.p, d1.p, d2.p);
  CHECK_LAUNCH("ldmatrix_mma_kernel");
  ec::dump_as rounding(ec::DUMP_ROUNDING);
  std::vector<float> zero(128, 0.0f);
  compare_product(BF ? "ldmatrix x4 + x2.trans -> mma bf16" : "ldmatrix x4 + x2.trans -> mma f16",
                  16, BF, A, Bkn, zero, d1.get());
  compare_product(
      BF ? "ldmatrix x4 + x2 ([N][K]) -> mma bf16" : "ldmatrix x4 + x2 ([N][K]) -> mma f16", 16, BF,
      A, Bkn, zero, d2.get());
}

int main() {
  ec::rng r(77);
  test_mma<16, false>(r);
  test_mma<16, true>(r);
  test_mma<8, false>(r);
  test_mma<8, true>(r);
  test_ldmatrix<1, false>(r);
  test_ldmatrix<2, false>(r);
  test_ldmatrix<4, false>(r);
  test_ldmatrix<1, true>(r);
  test_ldmatrix<2, true>(r);
  test_ldmatrix<4, true>(r);
  test_ldmatrix_mma<false>(r);
  test_ldmatrix_mma<true>(r);
  return ec::finish();
}
