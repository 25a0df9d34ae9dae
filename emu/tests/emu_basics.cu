/*
 * emu_basics.cu - launches, built-in variables, block barriers and their reductions, shared
 * memory (static, dynamic, poison fill), atomics, cooperative launches and the runtime calls.
 */
#include "primitives.cuh"
#include "emu_check.h"

#include <cmath>

struct ids {
  unsigned t[3], b[3], bd[3], gd[3];
};

__global__ void record_ids(ids *out) {
  unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  ids r = {{threadIdx.x, threadIdx.y, threadIdx.z},
           {blockIdx.x, blockIdx.y, blockIdx.z},
           {blockDim.x, blockDim.y, blockDim.z},
           {gridDim.x, gridDim.y, gridDim.z}};
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = r;
}

static void test_ids() {
  dim3 grid(3, 2, 2), block(5, 3, 2); /* 30 threads: the last warp is partial */
  size_t n = 12 * 30;
  ec::dev<ids> out(n);
  cudaMemset(out.p, 0xFF, n * sizeof(ids));
  launch(grid, block, 0, 0, record_ids, out.p);
  CHECK_LAUNCH("record_ids");
  std::vector<ids> h = out.get();
  int bad = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 5; ++tx) {
              const ids &r = h[(bx + 3 * (by + 2 * bz)) * 30 + tx + 5 * (ty + 3 * tz)];
              bad += !(r.t[0] == tx && r.t[1] == ty && r.t[2] == tz && r.b[0] == bx &&
                       r.b[1] == by && r.b[2] == bz && r.bd[0] == 5 && r.bd[1] == 3 &&
                       r.bd[2] == 2 && r.gd[0] == 3 && r.gd[1] == 2 && r.gd[2] == 2);
            }
  CHECK(bad == 0, "built-in variables wrong for %d threads", bad);
}

/* Tree reduction through shared memory: right only with every barrier in place. */
template <int N>
__global__ void block_sum(const float *x, float *out) {
  SMEM_ARRAY(float, part, N);
  int t = threadIdx.x;
  part[t] = x[blockIdx.x * N + t];
  __syncthreads();
  for (int s = N / 2; s > 0; s /= 2) {
    if (t < s) part[t] += part[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = part[0];
}

static void test_block_sum() {
  const int blocks = 37;
  std::vector<float> x(blocks * 1024);
  ec::rng r(11);
  for (float &v : x) v = (float)r.below(17) - 8.0f; /* integers: sums are exact */
  ec::dev<float> dx(x), d256(blocks), d1024(blocks);
  launch(dim3(blocks), dim3(256), 0, 0, block_sum<256>, dx.p, d256.p);
  CHECK_LAUNCH("block_sum<256>");
  launch(dim3(blocks), dim3(1024), 0, 0, block_sum<1024>, dx.p, d1024.p);
  CHECK_LAUNCH("block_sum<1024>");
  std::vector<float> h256 = d256.get(), h1024 = d1024.get();
  for (int b = 0; b < blocks; ++b) {
    double s256 = 0, s1024 = 0;
    for (int i = 0; i < 256; ++i) s256 += x[b * 256 + i];
    for (int i = 0; i < 1024; ++i) s1024 += x[b * 1024 + i];
    CHECK(h256[b] == (float)s256, "block_sum<256> block %d: %g vs %g", b, h256[b], s256);
    CHECK(h1024[b] == (float)s1024, "block_sum<1024> block %d: %g vs %g", b, h1024[b], s1024);
  }
}

__global__ void barrier_reductions(int *out) {
  int t = threadIdx.x;
  int c = __syncthreads_count(t % 3 == 0);
  int a = __syncthreads_and(t >= 0);
  int a2 = __syncthreads_and(t != 77);
  int o = __syncthreads_or(t == 77);
  int o2 = __syncthreads_or(0);
  if (t == 5) {
    out += 5 * blockIdx.x;
    out[0] = c;
    out[1] = a;
    out[2] = a2;
    out[3] = o;
    out[4] = o2;
  }
}

static void test_barrier_reductions() {
  ec::dev<int> out(10);
  launch(dim3(2), dim3(160), 0, 0, barrier_reductions, out.p);
  CHECK_LAUNCH("barrier_reductions");
  std::vector<int> h = out.get();
  CHECK(h[0] == 54, "__syncthreads_count: %d, want 54", h[0]);
  CHECK(h[1] != 0 && h[2] == 0 && h[3] != 0 && h[4] == 0, "__syncthreads_and/or: %d %d %d %d", h[1],
        h[2], h[3], h[4]);
}

__global__ void atomics_kernel(int *i, float *f, double *d, unsigned long long *u, int *mx,
                               unsigned *inc, int *cas_counter) {
  int g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(i, 1);
  atomicSub(i + 1, 2);
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicAdd(u, 3ull);
  atomicMax(mx, (g * 7919) % 10007);
  atomicMin(mx + 1, (g * 7919) % 10007 - 5000);
  atomicInc(inc, 9u);
  int old = atomicAdd(cas_counter, 0), seen; /* a plain read would race with the CAS */
  while ((seen = atomicCAS(cas_counter, old, old + 1)) != old) old = seen;
}

static void test_atomics() {
  const int blocks = 24, threads = 96, n = blocks * threads;
  ec::dev<int> i(2), mx(2), cas(1);
  ec::dev<float> f(1);
  ec::dev<double> d(1);
  ec::dev<unsigned long long> u(1);
  ec::dev<unsigned> inc(1);
  cudaMemset(i.p, 0, 2 * sizeof(int));
  cudaMemset(f.p, 0, sizeof(float));
  cudaMemset(d.p, 0, sizeof(double));
  cudaMemset(u.p, 0, sizeof(unsigned long long));
  cudaMemset(inc.p, 0, sizeof(unsigned));
  cudaMemset(cas.p, 0, sizeof(int));
  std::vector<int> mx0 = {-1, 1 << 30};
  mx.put(mx0);
  launch(dim3(blocks), dim3(threads), 0, 0, atomics_kernel, i.p, f.p, d.p, u.p, mx.p, inc.p, cas.p);
  CHECK_LAUNCH("atomics");
  int want_max = -1, want_min = 1 << 30;
  for (int g = 0; g < n; ++g) {
    int v = (g * 7919) % 10007;
    want_max = v > want_max ? v : want_max;
    want_min = v - 5000 < want_min ? v - 5000 : want_min;
  }
  std::vector<int> hi = i.get(), hmx = mx.get(), hcas = cas.get();
  CHECK(hi[0] == n && hi[1] == -2 * n, "atomicAdd/Sub int: %d %d", hi[0], hi[1]);
  CHECK(f.get()[0] == 0.5f * n, "atomicAdd float: %g", f.get()[0]);
  CHECK(d.get()[0] == 0.25 * n, "atomicAdd double: %g", d.get()[0]);
  CHECK(u.get()[0] == 3ull * n, "atomicAdd u64");
  CHECK(hmx[0] == want_max && hmx[1] == want_min, "atomicMax/Min: %d %d", hmx[0], hmx[1]);
  CHECK(inc.get()[0] == (unsigned)(n % 10), "atomicInc wraps: %u", inc.get()[0]);
  CHECK(hcas[0] == n, "atomicCAS loop: %d", hcas[0]);
}

/* Dynamic shared memory above 48 KB needs the opt-in attribute, as on the GPU. */
__global__ void dyn_smem_kernel(int *out, int n) {
  DYN_SMEM(int, buf);
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = i * 3 + (int)blockIdx.x;
  __syncthreads();
  int s = 0;
  for (int i = 0; i < n; ++i) s += buf[(i + threadIdx.x) % n];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

static void test_dyn_smem() {
  const int n = 16384; /* 64 KB */
  ec::dev<int> out(2 * 64);
  launch(dim3(2), dim3(64), n * sizeof(int), 0, dyn_smem_kernel, out.p, n);
  cudaError_t e = cudaGetLastError();
  CHECK(e == cudaErrorInvalidValue, "64 KB dynamic smem without opt-in: %s", cudaGetErrorName(e));
  cudaFuncSetAttribute((const void *)dyn_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       n * (int)sizeof(int));
  launch(dim3(2), dim3(64), n * sizeof(int), 0, dyn_smem_kernel, out.p, n);
  CHECK_LAUNCH("dyn_smem_kernel");
  std::vector<int> h = out.get();
  long long want = 3ll * n * (n - 1) / 2;
  CHECK(h[0] == (int)want && h[64] == (int)(want + n), "dynamic smem sums: %d %d", h[0], h[64]);
}

__global__ void bad_config_kernel(int *p) { p[0] = 1; }

static void test_bad_config() {
  ec::dev<int> out(1);
  launch(dim3(1), dim3(2048), 0, 0, bad_config_kernel, out.p);
  cudaError_t e = cudaGetLastError();
  CHECK(e == cudaErrorInvalidConfiguration, "2048 threads per block: %s", cudaGetErrorName(e));
  launch(dim3(1), dim3(32, 1, 65), 0, 0, bad_config_kernel, out.p);
  e = cudaGetLastError();
  CHECK(e == cudaErrorInvalidConfiguration, "blockDim.z = 65: %s", cudaGetErrorName(e));
  CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError clears the error");
}

/* Arguments are evaluated once per launch, not once per emulated thread. */
__global__ void arg_kernel(int *out, int v) { atomicAdd(out, v); }

static void test_args_once() {
  ec::dev<int> out(1);
  cudaMemset(out.p, 0, sizeof(int));
  int counter = 5;
  launch(dim3(2), dim3(64), 0, 0, arg_kernel, out.p, counter++);
  CHECK_LAUNCH("arg_kernel");
  CHECK(counter == 6, "launch evaluated its argument %d times", counter - 5);
  CHECK(out.get()[0] == 5 * 128, "kernel saw %d", out.get()[0]);
}

/* Uninitialised shared memory reads as 0xFF bytes (NaN), never as stale data or zeros. */
__global__ void poison_kernel(float *out) {
  SMEM_ARRAY(float, s, 64);
  SMEM_ARRAY2(__half, h, 4, 8);
  out += blockIdx.x * 96;
  out[threadIdx.x] = s[threadIdx.x];
  if (threadIdx.x < 32) out[64 + threadIdx.x] = __half2float(h[threadIdx.x / 8][threadIdx.x % 8]);
  __syncthreads();
  s[threadIdx.x] = 1.0f; /* must not leak into the next block */
}

static void test_smem_poison() {
  if (!SEQK_ON_EMU) return;
  ec::dump_as off(ec::DUMP_OFF); /* the emulator's own behaviour: no GPU run to compare with */
  ec::dev<float> out(3 * 96);
  for (int rep = 0; rep < 2; ++rep) {
    launch(dim3(3), dim3(64), 0, 0, poison_kernel, out.p);
    CHECK_LAUNCH("poison_kernel");
    std::vector<float> h = out.get();
    int nan = 0;
    for (float v : h) nan += std::isnan(v);
    CHECK(nan == 3 * 96, "uninitialised shared memory: %d of 288 NaN", nan);
  }
}

/* A cooperative launch: every block writes, all wait at the grid barrier, then each reads its
   neighbour's value. */
__global__ void coop_kernel(int *slots, int *out, int rounds) {
  int b = blockIdx.x, nb = gridDim.x;
  for (int r = 0; r < rounds; ++r) {
    if (threadIdx.x == 0) slots[b] = b * 100 + r;
    grid_sync();
    if (threadIdx.x == 0) out[r * nb + b] = slots[(b + 1) % nb];
    grid_sync();
  }
}

static void test_cooperative() {
  const int nb = 6, rounds = 3;
  ec::dev<int> slots(nb), out(nb * rounds);
  launch_cooperative(dim3(nb), dim3(64), 0, 0, coop_kernel, slots.p, out.p, rounds);
  CHECK_LAUNCH("coop_kernel");
  std::vector<int> h = out.get();
  int bad = 0;
  for (int r = 0; r < rounds; ++r)
    for (int b = 0; b < nb; ++b) bad += h[r * nb + b] != ((b + 1) % nb) * 100 + r;
  CHECK(bad == 0, "grid barrier: %d wrong values", bad);
}

static void test_runtime() {
  int n = 0;
  CHECK(cudaGetDeviceCount(&n) == cudaSuccess && n >= 1, "device count %d", n);
  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0) == cudaSuccess && p.warpSize == 32 && p.major >= 8,
        "device properties");
  cudaStream_t s;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  CHECK(cudaStreamCreate(&s) == cudaSuccess, "stream create");
  CHECK(cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess, "events");
  ec::dev<unsigned char> a(1000), b(1000);
  cudaEventRecord(e0, s);
  cudaMemsetAsync(a.p, 7, 1000, s);
  cudaMemcpyAsync(b.p, a.p, 1000, cudaMemcpyDeviceToDevice, s);
  cudaEventRecord(e1, s);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "stream sync");
  float ms = -1;
  CHECK(cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms >= 0, "elapsed %g", ms);
  std::vector<unsigned char> h = b.get();
  int bad = 0;
  for (unsigned char c : h) bad += c != 7;
  CHECK(bad == 0, "memset + memcpy on a stream: %d bad bytes", bad);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  CHECK(cudaStreamDestroy(s) == cudaSuccess, "stream destroy");
  int x;
  CHECK(cudaFree(&x) != cudaSuccess, "cudaFree of a host pointer fails");
  (void)cudaGetLastError();
}

/* exp2_approx (ex2.approx.ftz.f32): within the PTX ISA's error of 2^x, subnormal results flushed
   to +0 (x below -126), subnormal inputs read as 0, 2^-inf = +0, NaN stays NaN, overflow +inf. */
__global__ void ex2_kernel(const float *x, float *y, int n) {
  const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = exp2_approx(x[i]);
}
static void test_ex2() {
  std::vector<float> x = {0.0f,    1.0f,   -1.0f,  0.5f,   10.25f,    -126.0f,  -126.5f, -127.0f,
                          -150.0f, 1e-40f, 127.5f, 128.0f, -INFINITY, INFINITY, NAN};
  ec::rng r(5);
  while (x.size() < 256) x.push_back((float)r.uniform(-40.0, 40.0));
  ec::dev<float> dx(x), dy(x.size());
  launch(dim3(2), dim3(128), 0, 0, ex2_kernel, (const float *)dx.p, dy.p, (int)x.size());
  std::vector<float> y;
  {
    ec::dump_as approx(ec::DUMP_ROUNDING); /* the MUFU's rounding is the hardware's own */
    y = dy.get();
  }
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp2((double)x[i]);
    if (std::isnan(x[i])) {
      CHECK(std::isnan(y[i]), "ex2(NaN) = %g", y[i]);
    } else if (x[i] < -126.0f || want >= 0x1p128 || (x[i] != 0.0f && std::fabs(x[i]) < 1e-38f)) {
      const double flushed = x[i] < -126.0f ? 0.0 : want >= 0x1p128 ? INFINITY : 1.0;
      CHECK(y[i] == flushed && !std::signbit(y[i]), "ex2(%g) = %g, want %g", x[i], y[i], flushed);
    } else {
      CHECK(std::fabs(y[i] - want) <= want * 0x1p-21, "ex2(%g) = %.9g, want %.9g", x[i], y[i],
            want);
    }
  }
}

int main() {
  test_ex2();
  test_ids();
  test_block_sum();
  test_barrier_reductions();
  test_atomics();
  test_dyn_smem();
  test_bad_config();
  test_args_once();
  test_smem_poison();
  test_cooperative();
  test_runtime();
  return ec::finish();
}
