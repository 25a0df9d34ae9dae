/*
 * emu_check.h - a tiny checker for the emulator self-tests. The tests are plain CUDA sources
 * (kernels through kernels/primitives.cuh, host code through the runtime API) so the same file
 * runs on the emulator and, built with nvcc, on a GPU. SEQK_ON_EMU tells which.
 */
#ifndef SEQK_EMU_CHECK_H
#define SEQK_EMU_CHECK_H

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__CUDACC__)
#define SEQK_ON_EMU 0
#else
#define SEQK_ON_EMU 1
#endif

namespace ec {

inline int &passed() {
  static int n = 0;
  return n;
}
inline int &failed() {
  static int n = 0;
  return n;
}

inline void check(bool ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    ++passed();
    return;
  }
  ++failed();
  if (failed() > 40) return; /* enough to see the pattern */
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

inline int finish() {
  printf("%d passed, %d failed\n", passed(), failed());
  return failed() ? 1 : 0;
}

/* Fixed-seed generator (tests never use the clock). */
struct rng {
  unsigned long long s;
  explicit rng(unsigned long long seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  unsigned long long next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * (double)(next() >> 11) / 9007199254740992.0;
  }
  int below(int n) { return (int)(next() % (unsigned long long)n); }
};

/* Device buffers that free themselves. */
template <typename T>
struct dev {
  T *p = nullptr;
  size_t n = 0;
  explicit dev(size_t count) : n(count) {
    cudaMalloc((void **)&p, count * sizeof(T) + (count == 0));
  }
  dev(const std::vector<T> &h) : dev(h.size()) { put(h); }
  ~dev() { cudaFree(p); }
  dev(const dev &) = delete;
  dev &operator=(const dev &) = delete;
  void put(const std::vector<T> &h) {
    cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

}   // namespace ec

#define CHECK(cond, ...) ec::check((cond), __FILE__, __LINE__, __VA_ARGS__)
/* After a launch: no launch error and the kernel finished. */
#define CHECK_LAUNCH(what)                                                                         \
  do {                                                                                             \
    cudaError_t e1_ = cudaGetLastError(), e2_ = cudaDeviceSynchronize();                           \
    CHECK(e1_ == cudaSuccess && e2_ == cudaSuccess, "%s: launch error %s / %s", (what),            \
          cudaGetErrorString(e1_), cudaGetErrorString(e2_));                                       \
  } while (0)

#endif /* SEQK_EMU_CHECK_H */
