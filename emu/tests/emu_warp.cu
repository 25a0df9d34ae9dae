/*
 * emu_warp.cu - warp collectives against the CUDA Programming Guide's definitions (written here
 * independently of the emulator's PTX-style formula): every shuffle mode and width, for 16-, 32-
 * and 64-bit types and the packed half2/bfloat162, with per-lane source operands, full and partial
 * masks and a partial last warp; votes; __syncwarp exchanges; a 2^20-element shuffle reduction.
 */
#include "primitives.cuh"
#include "emu_check.h"

#include <cstdint>

enum { M_IDX, M_UP, M_DOWN, M_XOR };

template <typename T>
__global__ void shfl_kernel(const T *in, const int *arg, const unsigned *masks, T *out, int mode,
                            int width) {
  int t = threadIdx.x, lane = t % 32;
  unsigned mask = masks[t / 32];
  if (!(mask >> lane & 1)) return; /* lanes outside the mask do not take part */
  T v = in[blockIdx.x * blockDim.x + t];
  int b = arg[blockIdx.x * blockDim.x + t];
  T r;
  switch (mode) {
    case M_IDX: r = __shfl_sync(mask, v, b, width); break;
    case M_UP: r = __shfl_up_sync(mask, v, (unsigned)b, width); break;
    case M_DOWN: r = __shfl_down_sync(mask, v, (unsigned)b, width); break;
    default: r = __shfl_xor_sync(mask, v, b, width); break;
  }
  out[blockIdx.x * blockDim.x + t] = r;
}

/* The source lane per the Programming Guide; -1: the lane's own value. */
static int guide_source(int mode, int lane, int b, int width) {
  int base = lane / width * width, pos = lane % width;
  switch (mode) {
    case M_IDX: return base + (b & (width - 1));
    case M_UP: return pos >= b ? lane - b : lane;
    case M_DOWN: return pos + b < width ? lane + b : lane;
    default: {
      int j = lane ^ b;
      return j / width > lane / width ? lane : j; /* later groups give the own value */
    }
  }
}

template <typename T>
static uint64_t bits(const T &v) {
  uint64_t u = 0;
  memcpy(&u, static_cast<const void *>(&v), sizeof(T));
  return u;
}

template <typename T>
static void shfl_case(const char *tname, int mode, int width, int masks_kind, ec::rng &r) {
  const int blocks = 2, threads = 48; /* warp 1 has 16 lanes */
  const int n = blocks * threads;
  std::vector<T> in(n);
  std::vector<int> arg(n);
  for (int i = 0; i < n; ++i) {
    uint64_t u = r.next();
    memcpy(static_cast<void *>(&in[i]), &u,
           sizeof(T)); /* arbitrary bit patterns: shuffles move bits */
    arg[i] = mode == M_IDX ? r.below(81) - 40 : r.below(width + 1 < 32 ? width + 2 : 32);
    if (mode == M_XOR) arg[i] = r.below(32);
  }
  std::vector<unsigned> masks(2);
  masks[0] = masks_kind == 0 ? 0xffffffffu : 0x5a5a5a5au | 1u;
  masks[1] = masks_kind == 0 ? 0x0000ffffu : 0x0000f00fu;
  ec::dev<T> din(in), dout(n);
  ec::dev<int> darg(arg);
  ec::dev<unsigned> dmask(masks);
  cudaMemset(dout.p, 0, n * sizeof(T));
  launch(dim3(blocks), dim3(threads), 0, 0, shfl_kernel<T>, din.p, darg.p, dmask.p, dout.p, mode,
         width);
  CHECK_LAUNCH("shfl_kernel");
  std::vector<T> out;
  {
    ec::dump_as off(ec::DUMP_OFF); /* dumped below without the lanes a GPU leaves undefined */
    out = dout.get();
  }
  std::vector<T> defined = out;
  int bad = 0, checked = 0;
  for (int bl = 0; bl < blocks; ++bl)
    for (int t = 0; t < threads; ++t) {
      int lane = t % 32, warp = t / 32;
      unsigned mask = masks[warp];
      if (!(mask >> lane & 1)) continue;
      int i = bl * threads + t;
      int src = guide_source(mode, lane, arg[i], width);
      uint64_t want;
      if (!(mask >> src & 1)) {
        memset(static_cast<void *>(&defined[i]), 0, sizeof(T));
        if (!SEQK_ON_EMU) continue; /* undefined on the GPU */
        want = sizeof(T) == 8 ? 0xDEADBEEFDEADBEEFull : sizeof(T) == 4 ? 0xDEADBEEFull : 0xBEEFull;
      } else {
        want = bits(in[bl * threads + warp * 32 + src]);
      }
      ++checked;
      if (bits(out[i]) != want) {
        if (++bad <= 3)
          fprintf(stderr, "  %s mode %d width %d lane %d b %d: got %llx want %llx (src %d)\n",
                  tname, mode, width, lane, arg[i], (unsigned long long)bits(out[i]),
                  (unsigned long long)want, src);
      }
    }
  CHECK(bad == 0 && checked > 0, "shuffle %s mode %d width %d masks %d: %d of %d wrong", tname,
        mode, width, masks_kind, bad, checked);
  ec::dump(defined);
}

template <typename T>
static void shfl_all(const char *tname, ec::rng &r) {
  for (int mode = 0; mode < 4; ++mode)
    for (int width = 1; width <= 32; width *= 2)
      for (int mk = 0; mk < 2; ++mk) shfl_case<T>(tname, mode, width, mk, r);
}

/* ---- votes ------------------------------------------------------------------------------------ */
__global__ void vote_kernel(const int *pred, const unsigned *masks, unsigned *out) {
  int t = threadIdx.x, lane = t % 32;
  unsigned mask = masks[t / 32];
  if (!(mask >> lane & 1)) return;
  int p = pred[t];
  out[3 * t] = __ballot_sync(mask, p);
  out[3 * t + 1] = (unsigned)__any_sync(mask, p);
  out[3 * t + 2] = (unsigned)__all_sync(mask, p);
}

static void test_votes(ec::rng &r) {
  const int threads = 96;
  for (int rep = 0; rep < 12; ++rep) {
    std::vector<int> pred(threads);
    int density = rep % 4; /* none, few, most, all */
    for (int &p : pred) p = density == 0 ? 0 : density == 3 ? 1 + r.below(5) : r.below(4) < density;
    std::vector<unsigned> masks = {0xffffffffu, (unsigned)r.next() | 1u, 0x80000001u};
    ec::dev<int> dp(pred);
    ec::dev<unsigned> dm(masks), dout(3 * threads);
    launch(dim3(1), dim3(threads), 0, 0, vote_kernel, dp.p, dm.p, dout.p);
    CHECK_LAUNCH("vote_kernel");
    std::vector<unsigned> out;
    {
      ec::dump_as off(ec::DUMP_OFF); /* dumped below without the lanes that wrote nothing */
      out = dout.get();
    }
    std::vector<unsigned> defined = out;
    int bad = 0;
    for (int t = 0; t < threads; ++t) {
      unsigned mask = masks[t / 32];
      if (!(mask >> (t % 32) & 1)) {
        defined[3 * t] = defined[3 * t + 1] = defined[3 * t + 2] = 0;
        continue;
      }
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l)
        if ((mask >> l & 1) && pred[t / 32 * 32 + l]) ballot |= 1u << l;
      bad += out[3 * t] != ballot || out[3 * t + 1] != (ballot != 0) ||
             out[3 * t + 2] != (ballot == mask);
    }
    CHECK(bad == 0, "votes rep %d: %d lanes wrong", rep, bad);
    ec::dump(defined);
  }
}

/* ---- __syncwarp between shared-memory exchanges ------------------------------------------------ */
__global__ void syncwarp_kernel(int *out, int rounds) {
  SMEM_ARRAY(int, s, 128);
  int t = threadIdx.x, lane = t % 32, base = t - lane;
  int v = t;
  for (int k = 0; k < rounds; ++k) {
    s[t] = v;
    __syncwarp();
    v = s[base + (lane + 1) % 32] + 1;
    __syncwarp();
  }
  out[t] = v;
}

static void test_syncwarp() {
  const int rounds = 5;
  ec::dev<int> out(128);
  launch(dim3(1), dim3(128), 0, 0, syncwarp_kernel, out.p, rounds);
  CHECK_LAUNCH("syncwarp_kernel");
  std::vector<int> h = out.get();
  int bad = 0;
  for (int t = 0; t < 128; ++t) bad += h[t] != t - t % 32 + (t % 32 + rounds) % 32 + rounds;
  CHECK(bad == 0, "__syncwarp exchange: %d wrong", bad);
}

/* ---- a shuffle reduction over 2^20 elements (4096 blocks x 256 threads) ------------------------- */
__global__ void reduce_kernel(const float *x, float *out) {
  SMEM_ARRAY(float, warp_sums, 8);
  int t = threadIdx.x;
  float v = x[blockIdx.x * blockDim.x + t];
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (t % 32 == 0) warp_sums[t / 32] = v;
  __syncthreads();
  if (t < 32) {
    v = t < 8 ? warp_sums[t] : 0.0f;
    for (int o = 4; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    if (t == 0) atomicAdd(out, v);
  }
}

static void test_big_reduction(ec::rng &r) {
  const int n = 1 << 20;
  std::vector<float> x(n);
  double want = 0;
  for (float &v : x) {
    v = (float)(r.below(9) - 4);
    want += v;
  }
  ec::dev<float> dx(x), out(1);
  cudaMemset(out.p, 0, sizeof(float));
  launch(dim3(n / 256), dim3(256), 0, 0, reduce_kernel, dx.p, out.p);
  CHECK_LAUNCH("reduce_kernel");
  CHECK(out.get()[0] == (float)want, "2^20 reduction: %g vs %g", out.get()[0], want);
}

int main() {
  ec::rng r(2026);
  shfl_all<int>("int", r);
  shfl_all<unsigned>("unsigned", r);
  shfl_all<float>("float", r);
  shfl_all<long long>("long long", r);
  shfl_all<unsigned long long>("unsigned long long", r);
  shfl_all<double>("double", r);
  shfl_all<__half>("__half", r);
  shfl_all<__half2>("__half2", r);
  shfl_all<__nv_bfloat16>("__nv_bfloat16", r);
  shfl_all<__nv_bfloat162>("__nv_bfloat162", r);
  test_votes(r);
  test_syncwarp();
  test_big_reduction(r);
  return ec::finish();
}
