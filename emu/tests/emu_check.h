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

/* Raw results, for comparing a GPU run with the emulator's bit for bit (scripts/gpu_check.sh).
   With SEQK_EMU_DUMP=<file> in the environment, every buffer read back through dev::get() is
   written to <file> as one line, in program order (the same on both sides):
       <seq> <kind> L<line of the get() or dump() call> <element size>x<count> <bytes in hex>
   kind '=': the bits are defined, the GPU must match them; '~': results whose rounding is the
   hardware's own (the emulator's mma rounds once from double), compared but reported apart.
   Results a GPU leaves undefined are read under dump_as(DUMP_OFF) and, masked, passed to dump().
   Without the variable nothing is written. */
enum dump_kind : char { DUMP_OFF = 0, DUMP_EXACT = '=', DUMP_ROUNDING = '~' };
inline char &dump_kind_now() {
  static char k = DUMP_EXACT;
  return k;
}
/* The kind of every dump in its scope. */
struct dump_as {
  char saved;
  explicit dump_as(char k) : saved(dump_kind_now()) { dump_kind_now() = k; }
  ~dump_as() { dump_kind_now() = saved; }
  dump_as(const dump_as &) = delete;
  dump_as &operator=(const dump_as &) = delete;
};
inline FILE *dump_file() {
  static FILE *f = [] {
    const char *path = getenv("SEQK_EMU_DUMP");
    if (!path || !*path) return (FILE *)nullptr;
    FILE *o = fopen(path, "w");
    if (!o) {
      fprintf(stderr, "SEQK_EMU_DUMP: cannot write %s\n", path);
      exit(2);
    }
    return o;
  }();
  return f;
}
inline int &dump_seq() {
  static int n = 0;
  return n;
}
template <typename T>
inline void dump(const std::vector<T> &v, int line = __builtin_LINE()) {
  FILE *f = dump_file();
  if (!f || dump_kind_now() == DUMP_OFF) return;
  fprintf(f, "%d %c L%d %zux%zu ", dump_seq()++, dump_kind_now(), line, sizeof(T), v.size());
  const unsigned char *b = static_cast<const unsigned char *>(static_cast<const void *>(v.data()));
  for (size_t i = 0; i < v.size() * sizeof(T); ++i) fprintf(f, "%02x", b[i]);
  fputc('\n', f);
}

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
  std::vector<T> get(int line = __builtin_LINE()) const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    dump(h, line);
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
