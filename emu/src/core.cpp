/*
 * core.cpp - the emulated GPU: fibers, the block scheduler, barriers, warp collectives, shared
 * memory arenas, cp.async queues and launches. See emu/README.md for the model and its limits.
 *
 * One worker OS thread per core takes whole blocks; inside a block every CUDA thread is a fiber
 * with its own pooled stack, and the worker's own stack runs the scheduler. Fibers switch only
 * inside emulator calls (barriers, warp collectives, exit), so a kernel's code between two such
 * calls runs without interruption; the order in which runnable fibers are resumed (forward,
 * reverse, random) is what exposes missing barriers.
 */
#include "seqk_emu/emu.h"
#include "stream.h"
#include "numeric.h"
#include "sanitizers.h"

#include <cuda.h> /* CUtensorMap and the cuTensorMapEncodeTiled types (header only) */

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

/* ---- built-in variables ---------------------------------------------------------------------- */
__thread uint3 threadIdx;
__thread uint3 blockIdx;
__thread dim3 blockDim;
__thread dim3 gridDim;

/* ---- the context switch ------------------------------------------------------------------------
   seqk_emu_switch(save, next): pushes the callee-saved registers and the SSE/x87 control words,
   stores the stack pointer in *save, and resumes the context whose stack pointer is next. A new
   fiber's stack is laid out so that the first switch "returns" into seqk_emu_fiber_start, which
   calls r13(r12). */
extern "C" void seqk_emu_switch(void **save, void *next);
extern "C" void seqk_emu_fiber_start(void);
asm(R"(
        .text
        .globl  seqk_emu_switch
        .type   seqk_emu_switch, @function
seqk_emu_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   seqk_emu_switch, .-seqk_emu_switch

        .globl  seqk_emu_fiber_start
        .type   seqk_emu_fiber_start, @function
seqk_emu_fiber_start:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   seqk_emu_fiber_start, .-seqk_emu_fiber_start
)");

namespace seqk_emu {
namespace {

/* ---- configuration ----------------------------------------------------------------------------- */
enum order_kind { ORDER_FORWARD, ORDER_REVERSE, ORDER_RANDOM };
struct schedule_cfg {
  order_kind kind = ORDER_FORWARD;
  uint64_t seed = 1;
  char text[64] = "forward";
};

bool parse_schedule(const char *s, schedule_cfg *out) {
  schedule_cfg c;
  if (!s || !*s || !strcmp(s, "forward")) {
    c.kind = ORDER_FORWARD;
  } else if (!strcmp(s, "reverse")) {
    c.kind = ORDER_REVERSE;
  } else if (!strncmp(s, "random", 6) && (s[6] == 0 || s[6] == ':')) {
    c.kind = ORDER_RANDOM;
    c.seed = 1;
    if (s[6] == ':') {
      char *end = nullptr;
      c.seed = strtoull(s + 7, &end, 0);
      if (!s[7] || *end) return false;
    }
  } else {
    return false;
  }
  if (c.kind == ORDER_RANDOM)
    snprintf(c.text, sizeof c.text, "random:%llu", (unsigned long long)c.seed);
  else
    snprintf(c.text, sizeof c.text, "%s", c.kind == ORDER_FORWARD ? "forward" : "reverse");
  *out = c;
  return true;
}

std::mutex g_cfg_mutex;
schedule_cfg g_schedule;
bool g_schedule_ready = false;

schedule_cfg current_schedule() {
  std::lock_guard<std::mutex> lock(g_cfg_mutex);
  if (!g_schedule_ready) {
    const char *env = getenv("SEQK_EMU_SCHEDULE");
    if (!parse_schedule(env, &g_schedule)) {
      fprintf(stderr,
              "seqk_emu: SEQK_EMU_SCHEDULE=%s is not forward, reverse or random[:seed]; "
              "using forward\n",
              env);
      parse_schedule("forward", &g_schedule);
    }
    g_schedule_ready = true;
  }
  return g_schedule;
}

size_t stack_bytes() {
  static size_t bytes = [] {
    const char *env = getenv("SEQK_EMU_STACK_KB");
    size_t kb = env ? strtoull(env, nullptr, 10) : 0;
#if SEQK_EMU_ASAN || SEQK_EMU_TSAN
    if (kb == 0) kb = 512;
#else
    if (kb == 0) kb = 256;
#endif
    return kb * 1024;
  }();
  return bytes;
}

/* ---- reports ------------------------------------------------------------------------------------ */
std::mutex g_report_mutex;
std::string g_reports;
unsigned long g_report_count = 0;

void add_report(const char *msg) {
  static const bool quiet = [] {
    const char *q = getenv("SEQK_EMU_QUIET");
    return q && *q && strcmp(q, "0") != 0;
  }();
  std::lock_guard<std::mutex> lock(g_report_mutex);
  g_reports += msg;
  g_reports += '\n';
  ++g_report_count;
  if (!quiet) fprintf(stderr, "seqk_emu: %s\n", msg);
}

/* Formatted text without the heap: a fiber abandoned after an error never runs the destructors
   of its frames, so nothing on its way to a report may own memory. */
struct text {
  char s[1536];
  const char *c_str() const { return s; }
  operator const char *() const { return s; }
};
text vformat(const char *fmt, va_list ap) {
  text t;
  vsnprintf(t.s, sizeof t.s, fmt, ap);
  return t;
}
text format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
text format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text t = vformat(fmt, ap);
  va_end(ap);
  return t;
}

bool same_site(site a, site b) {
  return a.line == b.line && (a.file == b.file || (a.file && b.file && !strcmp(a.file, b.file)));
}
text where(site s) { return format("%s:%d", s.file ? s.file : "?", s.line); }

/* ---- data structures ------------------------------------------------------------------------------ */
/* F_MBAR: parked in mbarrier.try_wait until the barrier's phase changes; F_NBAR: parked in a
   named barrier (bar.sync id, count) until it completes. */
enum fiber_state { F_RUN, F_BAR, F_WARP, F_DONE, F_DEAD, F_MBAR, F_NBAR };

struct stack_mem {
  char *base = nullptr; /* lowest usable byte (a guard page lies below) */
  size_t size = 0;
  void *tsan_fiber = nullptr;
  bool dirty = false; /* abandoned mid-kernel: ASan poison of its frames may remain */
};

struct cp_req {
  void *dst;
  const void *src;
  int bytes, src_bytes;
  unsigned group;
};

struct block_state;

struct fiber {
  void *sp = nullptr;
  stack_mem *stk = nullptr;
  block_state *blk = nullptr;
  int state = F_DONE;
  uint3 tid{0, 0, 0};
  int linear = 0, lane = 0, warp = 0;
  /* barrier / collective bookkeeping */
  site wait_site{nullptr, 0};
  int bar_kind = 0, pred = 0, result = 0;
  uint32_t in[12];
  uint32_t out[8];
  int arg = 0;
  /* wgmma: this lane's operands while it waits in the warp's wgmma collective */
  float *wg_d = nullptr;
  uint32_t wg_a[4] = {0, 0, 0, 0};
  uint64_t wg_desc[2] = {0, 0};
  int wg_scale = 0;
  /* mbarrier.try_wait: the barrier word and the parity waited for; named barrier: its id, the
     thread count used and the barrier's completion count at this warp's arrival */
  void *mb_addr = nullptr;
  unsigned mb_parity = 0;
  int nb_id = 0, nb_count = 0;
  unsigned nb_phase = 0;
  /* cp.async: queued copies, and the id of the group still open (not yet committed) */
  std::vector<cp_req> cpq;
  unsigned cp_group = 0;
  void *asan_fake = nullptr;
  char exit_token = 0;
};

/* A warp collective in progress: lanes of `mask` that have arrived. */
struct group {
  uint32_t mask, arrived;
  int op, param;
  site s;
  bool aligned;
};

enum coll_op {
  OP_SHFL = 1,
  OP_VOTE,
  OP_SYNCWARP,
  OP_LDMATRIX,
  OP_MMA,
  OP_WGMMA,
  OP_WGMMA_FENCE,
  OP_WGMMA_COMMIT,
  OP_WGMMA_WAIT,
  OP_NBAR_SYNC,
  OP_NBAR_ARRIVE,
  OP_ELECT,
  OP_SETMAXNREG
};
const char *op_name(int op) {
  switch (op) {
    case OP_SHFL: return "shuffle";
    case OP_VOTE: return "vote";
    case OP_SYNCWARP: return "__syncwarp";
    case OP_LDMATRIX: return "ldmatrix";
    case OP_MMA: return "mma";
    case OP_WGMMA: return "wgmma.mma_async";
    case OP_WGMMA_FENCE: return "wgmma.fence";
    case OP_WGMMA_COMMIT: return "wgmma.commit_group";
    case OP_WGMMA_WAIT: return "wgmma.wait_group";
    case OP_NBAR_SYNC: return "bar.sync";
    case OP_NBAR_ARRIVE: return "bar.arrive";
    case OP_ELECT: return "elect.sync";
    case OP_SETMAXNREG: return "setmaxnreg";
  }
  return "?";
}

constexpr size_t kRedzone = 64;
constexpr size_t kStaticLimit = 48 * 1024;
constexpr size_t kMaxSites = 128;
constexpr unsigned char kCanary = 0xA5;

struct smem_alloc {
  const smem_site *s;
  size_t off, bytes;
};

/* One wgmma.mma_async of one warp, computed at issue and written back when its group retires. */
struct wg_op {
  unsigned group; /* the warp's group id it belongs to (== wg_warp::committed while open) */
  site s;
  int nregs;          /* N / 2 accumulator registers per lane */
  float *dst[32];     /* each lane's accumulator array */
  uint32_t live;      /* lanes whose result is still to be written (not superseded) */
  std::vector<float> res; /* [lane][reg] */
};

/* Per-warp wgmma state. */
struct wg_warp {
  unsigned committed = 0; /* groups committed so far; the open group has this id */
  bool fenced = false;    /* a wgmma.fence since the kernel start or the last wait_group */
  site last_wait{nullptr, 0};
  unsigned long issued = 0;   /* wgmma.mma_async issued (warpgroup consistency at block end) */
  unsigned long sequence = 0; /* hash of the issue sites and shapes, same purpose */
  site first_issue{nullptr, 0};
  std::vector<wg_op> ops;     /* pending, oldest first */
  uint16_t sa[16][16];        /* this warp's A rows [m][k] (16-bit bits), staged by the lanes */
  uint16_t sb[256][16];       /* B [n][k] */
};

/* An mbarrier object: the emulator's state for one initialised 64-bit shared-memory word. The
   word itself holds `word` (an encoding of the state), so ordinary stores to it are noticed. */
struct mbar_state {
  size_t off = 0;       /* arena offset of the word */
  uint32_t count = 0;   /* expected arrivals per phase (init) */
  uint32_t pending = 0; /* arrivals still missing in the current phase */
  int32_t tx = 0;       /* tx-count of the current phase */
  unsigned phase = 0;   /* phases completed so far (the current phase's parity: & 1) */
  site init_site{nullptr, 0};
  uint64_t word = 0;
};

/* A tensor map as the emulator's cuTensorMapEncodeTiled encodes it (decoded). */
struct tma_desc {
  /* swizzle: a CUtensorMapSwizzle (0 none, 1 32B, 2 64B, 3 128B) */
  int dtype = 0, rank = 0, swizzle = 0;
  uint32_t esize = 0; /* element bytes */
  uint64_t base = 0;
  uint64_t dims[5] = {0, 0, 0, 0, 0};
  uint64_t strides[5] = {0, 0, 0, 0, 0}; /* bytes; strides[0] is the element size */
  uint32_t box[5] = {0, 0, 0, 0, 0};
};

/* One TMA tiled load in flight: it lands when a thread waits on its barrier. */
struct tma_op {
  tma_desc m;
  int32_t c[5];
  size_t dst_off = 0, bar_off = 0; /* arena offsets */
  uint32_t bytes = 0;
  site s{nullptr, 0};
  uint3 tid{0, 0, 0}; /* the issuing thread */
};

/* A named barrier (bar.sync / bar.arrive id, count), ids 1..15. */
struct nbar_state {
  int count = 0;      /* thread count of the instance in progress (0: no warp has arrived) */
  int arrived = 0;    /* threads arrived so far (a warp counts as 32) */
  unsigned phase = 0; /* instances completed */
  site first{nullptr, 0};
  int first_warp = -1, first_op = 0;
};

/* One setmaxnreg of one warp (warpgroup-uniformity checks). */
struct maxnreg_call {
  site s;
  int n, inc;
};

struct block_state {
  uint3 bidx{0, 0, 0};
  int first = 0, n = 0, nwarps = 0;
  unsigned phase = 0;
  char bar_token[2];
  std::vector<std::vector<group>> groups; /* per warp */
  std::vector<unsigned> warp_phase;
  std::vector<char> warp_token; /* 2 per warp */
  std::vector<wg_warp> wg;      /* per warp, allocated on the first wgmma primitive */
  std::vector<mbar_state> mbars; /* initialised mbarrier objects */
  std::vector<tma_op> tma;       /* TMA loads in flight, oldest first */
  nbar_state nbars[16];
  char nbar_token[16][2];
  std::vector<std::vector<maxnreg_call>> maxnreg; /* per warp, allocated on first use */
  /* shared memory arena */
  char *arena = nullptr;
  size_t cap = 0, used = 0, static_bytes = 0, dyn_bytes = 0, dyn_off = 0;
  std::vector<smem_alloc> allocs;
};

struct launch_state {
  dim3 grid, block;
  size_t dyn_smem = 0;
  void (*thunk)(void *) = nullptr;
  void *bound = nullptr;
  bool cooperative = false;
  long nblocks = 0;
  schedule_cfg sched;
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  char grid_token[2];
  unsigned grid_phase = 0;
};

struct worker {
  void *sched_sp = nullptr;
  void *sched_fake = nullptr;
  void *tsan_sched = nullptr;
  const void *sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  std::vector<stack_mem *> stacks;
  std::vector<fiber> fibers;
  std::vector<block_state> blocks;
  std::vector<int> order;
  fiber *cur = nullptr;
  launch_state *L = nullptr;
  bool abort = false;
  int nfibers = 0, nblocks = 0;
  char start_token;
  uint64_t rng = 1;
};

thread_local worker *tl_worker = nullptr;

worker &get_worker() {
  if (!tl_worker) tl_worker = new worker(); /* kept for the thread's life (stacks are pooled) */
  return *tl_worker;
}

fiber *current_fiber(const char *what) {
  worker *w = tl_worker;
  if (!w || !w->cur) {
    fprintf(stderr, "seqk_emu: %s called outside a kernel\n", what);
    abort();
  }
  return w->cur;
}

/* ---- stacks ------------------------------------------------------------------------------------- */
stack_mem *new_stack() {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t size = (stack_bytes() + page - 1) / page * page;
  void *mem = mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    fprintf(stderr, "seqk_emu: cannot map a %zu-byte fiber stack\n", size);
    abort();
  }
  mprotect(mem, page, PROT_NONE); /* guard page: a stack overflow faults instead of corrupting */
  auto *s = new stack_mem();
  s->base = static_cast<char *>(mem) + page;
  s->size = size;
  s->tsan_fiber = tsan_create_fiber();
  return s;
}

/* ---- switching ------------------------------------------------------------------------------------ */
void fiber_main(void *arg);

void prepare_fiber(worker &w, fiber &f) {
  if (f.stk->dirty) {
    /* Abandoned mid-kernel: its frames' ASan poison and TSan shadow frames are still there. */
    asan_unpoison(f.stk->base, f.stk->size);
    if (f.stk->tsan_fiber) {
      tsan_destroy_fiber(f.stk->tsan_fiber);
      f.stk->tsan_fiber = tsan_create_fiber();
    }
    f.stk->dirty = false;
  }
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stk->base + f.stk->size) & ~uintptr_t(15);
  uint64_t *sp = reinterpret_cast<uint64_t *>(top) - 10;
  sp[0] = 0x1F80u | (uint64_t(0x037Fu) << 32);     /* mxcsr (no FTZ/DAZ), x87 control word */
  sp[1] = 0;                                       /* r15 */
  sp[2] = 0;                                       /* r14 */
  sp[3] = reinterpret_cast<uint64_t>(&fiber_main); /* r13: called by seqk_emu_fiber_start */
  sp[4] = reinterpret_cast<uint64_t>(&w);          /* r12: its argument */
  sp[5] = 0;                                       /* rbx */
  sp[6] = 0;                                       /* rbp: ends frame-pointer unwinding */
  sp[7] = reinterpret_cast<uint64_t>(&seqk_emu_fiber_start);
  sp[8] = sp[9] = 0;
  f.sp = sp;
  f.asan_fake = nullptr;
}

/* Scheduler -> fiber. */
void resume(worker &w, fiber &f) {
  w.cur = &f;
  threadIdx = f.tid;
  blockIdx = f.blk->bidx;
  /* Nothing may be read between the TSan switch and the real one: it would count as the
     other fiber's access. */
  void *next = f.sp;
  asan_start_switch(&w.sched_fake, f.stk->base, f.stk->size);
  tsan_switch(f.stk->tsan_fiber);
  seqk_emu_switch(&w.sched_sp, next);
  asan_finish_switch(w.sched_fake, nullptr, nullptr);
  w.cur = nullptr;
}

/* Fiber -> scheduler; returns when the scheduler resumes this fiber. Callers are inside a TSan
   ignore region, which is closed while the fiber is parked: a fiber abandoned after an error must
   not end its TSan life inside one. */
void yield(worker &w, fiber &f, bool final = false) {
  /* Block end acquires every fiber's exit token: a fiber abandoned while parked here (the block
     failed) must have released it too, or its earlier accesses (its copy of the kernel's
     arguments on the launching stack, say) would race with what the launcher does next. */
  tsan_release(&f.exit_token);
  void *next = w.sched_sp;
  tsan_ignore_end();
  asan_start_switch(final ? nullptr : &f.asan_fake, w.sched_stack_bottom, w.sched_stack_size);
  tsan_switch(w.tsan_sched);
  seqk_emu_switch(&f.sp, next);
  asan_finish_switch(f.asan_fake, nullptr, nullptr);
  tsan_ignore_begin();
}

/* No ASan frame of its own: it never returns, so its redzones would stay poisoned. */
SEQK_EMU_NO_ASAN void fiber_main(void *arg) {
  worker &w = *static_cast<worker *>(arg);
  asan_finish_switch(nullptr, &w.sched_stack_bottom, &w.sched_stack_size);
  tsan_acquire(&w.start_token);
  tsan_ignore_begin();
  fiber &f = *w.cur;
  void (*thunk)(void *) = w.L->thunk;
  void *bound = w.L->bound;
  tsan_ignore_end();
  thunk(bound);
  /* Each fiber releases its own token: releasing one shared token here made TSan (clang 14)
     miss read-after-write races between fibers that ran one after the other. */
  tsan_release(&f.exit_token);
  tsan_ignore_begin();
  f.state = F_DONE;
  f.cpq.clear();
  tsan_ignore_end();
  /* Leave for good without an instrumented call whose frame would never be popped. */
  void *next = w.sched_sp;
  tsan_leave_frame();
  asan_start_switch(nullptr, w.sched_stack_bottom, w.sched_stack_size);
  tsan_switch(w.tsan_sched);
  seqk_emu_switch(&f.sp, next);
  __builtin_unreachable();
}

/* Ends the current block after an error found inside a kernel: the fiber never runs again. */
[[noreturn]] void abort_block(worker &w, fiber &f) {
  w.abort = true;
  f.state = F_DEAD;
  yield(w, f, true);
  __builtin_unreachable();
}

text block_name(const block_state &b) {
  return format("block (%u,%u,%u)", b.bidx.x, b.bidx.y, b.bidx.z);
}
text thread_name(const fiber &f) {
  return format("thread (%u,%u,%u) of %s", f.tid.x, f.tid.y, f.tid.z, block_name(*f.blk).c_str());
}

[[noreturn]] void fail_in_kernel(worker &w, fiber &f, const char *msg) {
  add_report(msg);
  w.L->failed = true;
  abort_block(w, f);
}

/* ---- shared memory arena --------------------------------------------------------------------- */
/* Redzones stay ASan-poisoned: these touch them without instrumentation, and byte by byte
   through volatile so the compiler cannot turn the loops into (intercepted) memset calls. */
SEQK_EMU_NO_ASAN void write_canary(char *p, size_t n) {
  volatile unsigned char *q = reinterpret_cast<volatile unsigned char *>(p);
  for (size_t i = 0; i < n; ++i) q[i] = kCanary;
}
SEQK_EMU_NO_ASAN bool canary_intact(const char *p, size_t n) {
  const volatile unsigned char *q = reinterpret_cast<const volatile unsigned char *>(p);
  for (size_t i = 0; i < n; ++i)
    if (q[i] != kCanary) return false;
  return true;
}

void arena_reset(block_state &b, size_t dyn) {
  size_t need =
      kRedzone + ((dyn + 15) & ~size_t(15)) + kRedzone + kStaticLimit + kMaxSites * (kRedzone + 16);
  /* 1024-byte aligned, so that the low 10 bits of an arena-relative offset (what wgmma
     descriptors hold, and what their swizzles XOR) are those of the host address too. */
  need = (need + 1023) & ~size_t(1023); /* aligned_alloc wants a multiple of the alignment */
  if (b.cap < need) {
    if (b.arena) {
      asan_unpoison(b.arena, b.cap);
      free(b.arena);
    }
    b.arena = static_cast<char *>(aligned_alloc(1024, need));
    if (!b.arena) {
      fprintf(stderr, "seqk_emu: out of memory for a shared-memory arena\n");
      abort();
    }
    b.cap = need;
  }
  asan_poison(b.arena, b.cap);
  b.allocs.clear();
  b.static_bytes = 0;
  b.dyn_off = kRedzone;
  b.dyn_bytes = dyn;
  write_canary(b.arena, kRedzone);
  asan_unpoison(b.arena + b.dyn_off, dyn);
  memset(b.arena + b.dyn_off, 0xFF, dyn);
  b.used = b.dyn_off + ((dyn + 15) & ~size_t(15));
  write_canary(b.arena + b.used, kRedzone);
  b.used += kRedzone;
}

/* Stray writes into the redzones (ASan catches reads too, and catches them at once). */
void arena_check(worker &w, block_state &b) {
  if (!canary_intact(b.arena, kRedzone)) {
    add_report(
        format("shared memory overflow in %s: bytes before the first shared array were "
               "written",
               block_name(b).c_str()));
    w.L->failed = true;
  }
  size_t dyn_end = b.dyn_off + ((b.dyn_bytes + 15) & ~size_t(15));
  if (!canary_intact(b.arena + dyn_end, kRedzone)) {
    add_report(
        format("shared memory overflow in %s: bytes past the end of the dynamic shared "
               "memory (%zu bytes) were written",
               block_name(b).c_str(), b.dyn_bytes));
    w.L->failed = true;
  }
  for (const smem_alloc &a : b.allocs) {
    size_t end = a.off + ((a.bytes + 15) & ~size_t(15));
    if (!canary_intact(b.arena + end, kRedzone)) {
      add_report(
          format("shared memory overflow in %s: bytes past the end of %s (%zu bytes, "
                 "declared at %s:%d) were written",
                 block_name(b).c_str(), a.s->name, a.bytes, a.s->file, a.s->line));
      w.L->failed = true;
    }
  }
}

bool in_arena_alloc(const block_state &b, const void *p, size_t n) {
  const char *c = static_cast<const char *>(p);
  if (c < b.arena || c + n > b.arena + b.used) return false;
  size_t off = (size_t)(c - b.arena);
  if (off >= b.dyn_off && off + n <= b.dyn_off + b.dyn_bytes) return true;
  for (const smem_alloc &a : b.allocs)
    if (off >= a.off && off + n <= a.off + a.bytes) return true;
  return false;
}

/* wgmma state that must be gone when a block ends: groups still in flight, and warpgroups whose
   four warps did not issue the same wgmma sequence. */
void wgmma_check_exit(worker &w, block_state &b) {
  if (b.wg.empty()) return;
  for (int wi = 0; wi < b.nwarps; ++wi) {
    wg_warp &x = b.wg[wi];
    if (x.ops.empty()) continue;
    bool open = false;
    for (const wg_op &o : x.ops) open |= o.group == x.committed;
    add_report(format("wgmma: warp %d of %s exited with %zu wgmma.mma_async still in flight "
                      "(the oldest issued at %s)%s: its accumulators were never written; "
                      "wgmma.commit_group and wgmma.wait_group before reading them",
                      wi, block_name(b).c_str(), x.ops.size(), where(x.ops[0].s).c_str(),
                      open ? ", some never committed" : ""));
    w.L->failed = true;
  }
  for (int g = 0; 4 * g < b.nwarps; ++g) {
    bool any = false;
    for (int k = 0; k < 4 && 4 * g + k < b.nwarps; ++k) any |= b.wg[4 * g + k].issued > 0;
    if (!any) continue;
    if (4 * g + 3 >= b.nwarps) {
      add_report(format("wgmma: warpgroup %d of %s has only %d warp(s) (block of %d threads): "
                        "wgmma.mma_async at %s needs all 4 warps of a warpgroup",
                        g, block_name(b).c_str(), b.nwarps - 4 * g, b.n,
                        where(b.wg[4 * g].first_issue).c_str()));
      w.L->failed = true;
      continue;
    }
    for (int k = 1; k < 4; ++k) {
      const wg_warp &a = b.wg[4 * g], &c = b.wg[4 * g + k];
      if (a.issued != c.issued || a.sequence != c.sequence) {
        add_report(format("wgmma: the warps of warpgroup %d of %s did not issue the same "
                          "wgmma.mma_async sequence: warp %d issued %lu (first at %s), warp %d "
                          "issued %lu (first at %s)",
                          g, block_name(b).c_str(), 4 * g, a.issued, where(a.first_issue).c_str(),
                          4 * g + k, c.issued, where(c.first_issue).c_str()));
        w.L->failed = true;
        break;
      }
    }
  }
}

/* setmaxnreg: the four warps of a warpgroup must have executed the same sequence. */
void maxnreg_check_exit(worker &w, block_state &b) {
  if (b.maxnreg.empty()) return;
  for (int g = 0; 4 * g + 3 < b.nwarps; ++g) {
    for (int k = 1; k < 4; ++k) {
      const std::vector<maxnreg_call> &a = b.maxnreg[4 * g], &c = b.maxnreg[4 * g + k];
      if (a.size() == c.size()) continue;
      const std::vector<maxnreg_call> &more = a.size() > c.size() ? a : c;
      size_t i = std::min(a.size(), c.size());
      add_report(
          format("setmaxnreg: the warps of warpgroup %d of %s did not all execute it: warp "
                 "%d executed %zu, warp %d %zu (the first unmatched: setmaxnreg.%s %d at "
                 "%s); every warp of the warpgroup must execute the same setmaxnreg",
                 g, block_name(b).c_str(), 4 * g, a.size(), 4 * g + k, c.size(),
                 more[i].inc ? "inc" : "dec", more[i].n, where(more[i].s).c_str()));
      w.L->failed = true;
      break;
    }
  }
}

/* ---- scheduling ------------------------------------------------------------------------------- */
uint64_t next_rand(uint64_t &s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void make_order(worker &w) {
  int n = w.nfibers;
  w.order.resize(n);
  for (int i = 0; i < n; ++i) w.order[i] = w.L->sched.kind == ORDER_REVERSE ? n - 1 - i : i;
  if (w.L->sched.kind == ORDER_RANDOM)
    for (int i = n - 1; i > 0; --i)
      std::swap(w.order[i], w.order[next_rand(w.rng) % (uint64_t)(i + 1)]);
}

const char *bar_name(int kind) {
  switch (kind) {
    case BAR_SYNC: return "__syncthreads";
    case BAR_COUNT: return "__syncthreads_count";
    case BAR_AND: return "__syncthreads_and";
    case BAR_OR: return "__syncthreads_or";
    case BAR_GRID: return "grid_sync";
  }
  return "?";
}

/* ---- mbarrier and named-barrier state for reports --------------------------------------------- */
mbar_state *mbar_lookup(block_state &b, const void *p) {
  const char *c = static_cast<const char *>(p);
  if (!b.arena || c < b.arena || c >= b.arena + b.cap) return nullptr;
  size_t off = (size_t)(c - b.arena);
  for (mbar_state &m : b.mbars)
    if (m.off == off) return &m;
  return nullptr;
}
text mbar_text(block_state &b, const void *p) {
  const mbar_state *m = mbar_lookup(b, p);
  if (!m) return format("the mbarrier word %p is not initialised", p);
  return format(
      "mbarrier at shared offset 0x%zx, initialised at %s with count %u: %u of %u "
      "arrivals pending, tx-count %d, phase %u (parity %u) in progress",
      m->off, where(m->init_site).c_str(), m->count, m->pending, m->count, m->tx, m->phase,
      m->phase & 1u);
}
text nbar_text(const block_state &b, int id) {
  const nbar_state &nb = b.nbars[id];
  if (nb.arrived == 0) return format("named barrier %d: no warp has arrived", id);
  return format(
      "named barrier %d: %d of %d threads arrived (warps count 32 each; the first, "
      "warp %d, at %s %s)",
      id, nb.arrived, nb.count, nb.first_warp, op_name(nb.first_op), where(nb.first).c_str());
}

/* The waits that are neither __syncthreads nor warp collectives: threads parked on an mbarrier
   phase or at a named barrier, grouped by site and barrier. */
std::string describe_sync_waits(worker &w, block_state *only) {
  struct entry {
    site s;
    int kind; /* F_MBAR or F_NBAR */
    const void *addr;
    unsigned parity;
    int id, count;
    block_state *b;
    int n;
    std::string who;
  };
  std::vector<entry> es;
  for (int i = 0; i < w.nfibers; ++i) {
    fiber &f = w.fibers[i];
    if (only && f.blk != only) continue;
    if (f.state != F_MBAR && f.state != F_NBAR) continue;
    bool found = false;
    for (entry &e : es)
      if (e.kind == f.state && e.b == f.blk && same_site(e.s, f.wait_site) &&
          (f.state == F_MBAR ? e.addr == f.mb_addr && e.parity == f.mb_parity
                             : e.id == f.nb_id && e.count == f.nb_count)) {
        ++e.n;
        found = true;
        break;
      }
    if (!found)
      es.push_back(
          {f.wait_site, f.state, f.mb_addr, f.mb_parity, f.nb_id, f.nb_count, f.blk, 1,
           format("(%u,%u,%u) of %s", f.tid.x, f.tid.y, f.tid.z, block_name(*f.blk).c_str())
               .c_str()});
  }
  std::string out;
  for (const entry &e : es) {
    if (e.kind == F_MBAR)
      out += format("; %d thread(s) wait on mbarrier at %s phase %u (first: thread %s): %s", e.n,
                    where(e.s).c_str(), e.parity, e.who.c_str(), mbar_text(*e.b, e.addr).c_str());
    else
      out +=
          format("; %d thread(s) wait at bar.sync %d, %d at %s (first: thread %s): %s", e.n, e.id,
                 e.count, where(e.s).c_str(), e.who.c_str(), nbar_text(*e.b, e.id).c_str());
  }
  return out;
}

/* Describes where the threads of a stuck block wait, grouped by site. */
std::string describe_waits(worker &w, block_state *only) {
  struct entry {
    site s;
    int kind;
    int count;
    std::string who;
  };
  std::vector<entry> bars;
  std::string out;
  for (int i = 0; i < w.nfibers; ++i) {
    fiber &f = w.fibers[i];
    if (only && f.blk != only) continue;
    if (f.state != F_BAR) continue;
    bool found = false;
    for (entry &e : bars)
      if (e.kind == f.bar_kind && same_site(e.s, f.wait_site)) {
        ++e.count;
        found = true;
      }
    if (!found)
      bars.push_back(
          {f.wait_site, f.bar_kind, 1, format("(%u,%u,%u)", f.tid.x, f.tid.y, f.tid.z).c_str()});
  }
  for (const entry &e : bars)
    out += format("; %d thread(s) wait at %s %s (first: thread %s)", e.count, bar_name(e.kind),
                  where(e.s).c_str(), e.who.c_str());
  out += describe_sync_waits(w, only);
  for (int bi = 0; bi < w.nblocks; ++bi) {
    block_state &b = w.blocks[bi];
    if (only && &b != only) continue;
    for (int wi = 0; wi < b.nwarps; ++wi)
      for (const group &g : b.groups[wi]) {
        uint32_t missing = g.mask & ~g.arrived;
        std::string miss;
        for (int l = 0; l < 32; ++l) {
          if (!(missing >> l & 1)) continue;
          fiber &f = w.fibers[b.first + wi * 32 + l];
          if (miss.size() > 200) {
            miss += " ...";
            break;
          }
          if (f.state == F_DONE)
            miss += format(" lane %d exited;", l);
          else if (f.state == F_BAR)
            miss += format(" lane %d waits at %s;", l, where(f.wait_site).c_str());
          else if (f.state == F_WARP)
            miss += format(" lane %d waits in another collective at %s;", l,
                           where(f.wait_site).c_str());
        }
        out += format("; warp %d of %s: %s at %s waits for lanes 0x%08x of mask 0x%08x:%s", wi,
                      block_name(b).c_str(), op_name(g.op), where(g.s).c_str(), missing, g.mask,
                      miss.c_str());
      }
  }
  return out;
}

/* All runnable fibers have run and none can: release a barrier, or report why nothing can. */
bool release_or_report(worker &w) {
  bool released = false, all_grid = true, any_live = false;
  site grid_site{nullptr, 0};
  bool grid_mixed = false;
  for (int bi = 0; bi < w.nblocks; ++bi) {
    block_state &b = w.blocks[bi];
    int live = 0, at_bar = 0, first_bar = -1;
    bool same = true;
    for (int i = b.first; i < b.first + b.n; ++i) {
      fiber &f = w.fibers[i];
      if (f.state == F_DONE || f.state == F_DEAD) continue;
      ++live;
      any_live = true;
      if (f.state != F_BAR || f.bar_kind != BAR_GRID) all_grid = false;
      if (f.state == F_BAR && f.bar_kind == BAR_GRID) {
        if (!grid_site.file)
          grid_site = f.wait_site;
        else if (!same_site(grid_site, f.wait_site))
          grid_mixed = true;
      }
      if (f.state != F_BAR || f.bar_kind == BAR_GRID) continue;
      ++at_bar;
      if (first_bar < 0)
        first_bar = i;
      else if (!same_site(w.fibers[first_bar].wait_site, f.wait_site) ||
               w.fibers[first_bar].bar_kind != f.bar_kind)
        same = false;
    }
    if (live == 0 || at_bar == 0) continue;
    if (at_bar == live && same) {
      int count = 0, all = 1, any = 0;
      for (int i = b.first; i < b.first + b.n; ++i) {
        fiber &f = w.fibers[i];
        if (f.state != F_BAR) continue;
        count += f.pred;
        all &= f.pred;
        any |= f.pred;
      }
      int kind = w.fibers[first_bar].bar_kind;
      int result = kind == BAR_COUNT ? count : kind == BAR_AND ? all : kind == BAR_OR ? any : 0;
      for (int i = b.first; i < b.first + b.n; ++i) {
        fiber &f = w.fibers[i];
        if (f.state != F_BAR) continue;
        f.result = result;
        f.state = F_RUN;
      }
      ++b.phase;
      released = true;
    } else if (!same) {
      std::string msg = format("barrier divergence in %s: threads wait at different barriers",
                               block_name(b).c_str())
                            .c_str();
      add_report((msg + describe_waits(w, &b)).c_str());
      return false;
    }
  }
  if (released) return true;
  if (any_live && all_grid) {
    if (grid_mixed) {
      add_report((std::string("grid barrier divergence: blocks wait at different grid barriers") +
                  describe_waits(w, nullptr))
                     .c_str());
      return false;
    }
    for (int i = 0; i < w.nfibers; ++i)
      if (w.fibers[i].state == F_BAR) w.fibers[i].state = F_RUN;
    ++w.L->grid_phase;
    return true;
  }
  /* A thread parked on an mbarrier or a named barrier names the barrier first: its state says
     why the phase cannot complete. */
  std::string head = "deadlock: no thread can continue";
  for (int i = 0; i < w.nfibers; ++i) {
    fiber &f = w.fibers[i];
    if (f.state == F_MBAR) {
      head = format(
                 "deadlock: threads waiting on mbarrier at %s phase %u, which no thread can "
                 "complete (%s)",
                 where(f.wait_site).c_str(), f.mb_parity, mbar_text(*f.blk, f.mb_addr).c_str())
                 .c_str();
      break;
    }
  }
  if (head == "deadlock: no thread can continue")
    for (int i = 0; i < w.nfibers; ++i) {
      fiber &f = w.fibers[i];
      if (f.state == F_NBAR) {
        head = format(
                   "deadlock: threads waiting at named barrier %d (bar.sync %d, %d at %s), "
                   "which no thread can complete (%s)",
                   f.nb_id, f.nb_id, f.nb_count, where(f.wait_site).c_str(),
                   nbar_text(*f.blk, f.nb_id).c_str())
                   .c_str();
        break;
      }
    }
  add_report((head + describe_waits(w, nullptr)).c_str());
  return false;
}

/* TMA (below): lands the loads whose barrier a parked thread waits on (returns how many, -1 after
   a report); reports loads still in flight when a block ends. */
int tma_land_waited(worker &w);
void tma_check_exit(worker &w, block_state &b);

void run_resident(worker &w, launch_state &L, long first_block, int nblk) {
  int per = (int)(L.block.x * L.block.y * L.block.z);
  int total = per * nblk;
  w.L = &L;
  w.abort = false;
  blockDim = L.block;
  gridDim = L.grid;
  w.nfibers = total;
  w.nblocks = nblk;
  if ((int)w.fibers.size() < total) w.fibers.resize(total);
  while ((int)w.stacks.size() < total) w.stacks.push_back(new_stack());
  if ((int)w.blocks.size() < nblk) w.blocks.resize(nblk);
  if (!w.tsan_sched) w.tsan_sched = tsan_current_fiber();
  w.rng = L.sched.seed * 0x9E3779B97F4A7C15ull + (uint64_t)first_block * 0xBF58476D1CE4E5B9ull + 1;
  for (int k = 0; k < 4; ++k) next_rand(w.rng);

  tsan_ignore_begin();
  for (int bi = 0; bi < nblk; ++bi) {
    block_state &b = w.blocks[bi];
    long lin = first_block + bi;
    b.bidx.x = (unsigned)(lin % L.grid.x);
    b.bidx.y = (unsigned)((lin / L.grid.x) % L.grid.y);
    b.bidx.z = (unsigned)(lin / ((long)L.grid.x * L.grid.y));
    b.first = bi * per;
    b.n = per;
    b.nwarps = (per + 31) / 32;
    b.phase = 0;
    b.groups.assign(b.nwarps, {});
    b.warp_phase.assign(b.nwarps, 0);
    b.warp_token.assign(2 * (size_t)b.nwarps, 0);
    b.wg.clear();
    b.mbars.clear();
    b.tma.clear();
    for (nbar_state &nb : b.nbars) nb = nbar_state();
    b.maxnreg.clear();
    arena_reset(b, L.dyn_smem);
    for (int t = 0; t < per; ++t) {
      fiber &f = w.fibers[b.first + t];
      f.stk = w.stacks[b.first + t];
      f.blk = &b;
      f.state = F_RUN;
      f.linear = t;
      f.lane = t % 32;
      f.warp = t / 32;
      f.tid.x = (unsigned)(t % L.block.x);
      f.tid.y = (unsigned)((t / L.block.x) % L.block.y);
      f.tid.z = (unsigned)(t / (L.block.x * L.block.y));
      f.cpq.clear();
      f.cp_group = 0;
      prepare_fiber(w, f);
    }
  }
  tsan_release(&w.start_token);

  for (;;) {
    make_order(w);
    bool any_run = false;
    for (int idx : w.order) {
      fiber &f = w.fibers[idx];
      if (f.state != F_RUN) continue;
      any_run = true;
      resume(w, f);
      if (w.abort) break;
    }
    if (w.abort) break;
    if (any_run) continue;
    bool live = false;
    for (int i = 0; i < total && !live; ++i) live = w.fibers[i].state != F_DONE;
    if (!live) break;
    /* Every thread waits: asynchronous copies whose barrier someone waits on land now. */
    const int landed = tma_land_waited(w);
    if (landed < 0) {
      w.abort = true;
      L.failed = true;
      break;
    }
    if (landed > 0) continue;
    if (!release_or_report(w)) {
      w.abort = true;
      L.failed = true;
      break;
    }
  }
  for (int i = 0; i < total; ++i) {
    fiber &f = w.fibers[i];
    tsan_acquire(&f.exit_token);
    if (f.state != F_DONE) f.stk->dirty = true;
    f.state = F_DONE;
  }
  for (int bi = 0; bi < nblk; ++bi) {
    if (!w.abort) wgmma_check_exit(w, w.blocks[bi]);
    if (!w.abort) maxnreg_check_exit(w, w.blocks[bi]);
    if (!w.abort) tma_check_exit(w, w.blocks[bi]);
    w.blocks[bi].tma.clear();
    arena_check(w, w.blocks[bi]);
  }
  w.L = nullptr;
  if (w.abort) L.failed = true;
  tsan_ignore_end();
}

/* Every worker takes blocks until none is left or one has failed (as a GPU stops a faulted grid). */
void work(launch_state &L) {
  worker &w = get_worker();
  if (L.cooperative) {
    run_resident(w, L, 0, (int)L.nblocks);
    return;
  }
  for (;;) {
    if (L.failed) break;
    long b = L.next.fetch_add(1);
    if (b >= L.nblocks) break;
    run_resident(w, L, b, 1);
  }
}

/* ---- the worker pool ------------------------------------------------------------------------------ */
struct pool {
  std::mutex m;
  std::condition_variable cv, done_cv;
  unsigned long gen = 0;
  int busy = 0;
  launch_state *job = nullptr;
  int nthreads = 0;
};

pool *g_pool = nullptr;
std::once_flag g_pool_once;
std::mutex g_launch_mutex;

void pool_thread(pool *p) {
  unsigned long seen = 0;
  for (;;) {
    launch_state *job;
    {
      std::unique_lock<std::mutex> lock(p->m);
      p->cv.wait(lock, [&] { return p->gen != seen; });
      seen = p->gen;
      job = p->job;
    }
    work(*job);
    {
      std::lock_guard<std::mutex> lock(p->m);
      if (--p->busy == 0) p->done_cv.notify_all();
    }
  }
}

pool *get_pool() {
  std::call_once(g_pool_once, [] {
    g_pool = new pool(); /* never destroyed: its threads wait for work until the process ends */
    const char *env = getenv("SEQK_EMU_WORKERS");
    int n = env ? atoi(env) : (int)std::thread::hardware_concurrency();
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    g_pool->nthreads = n - 1; /* the launching thread is a worker too */
    for (int i = 0; i < g_pool->nthreads; ++i) std::thread(pool_thread, g_pool).detach();
  });
  return g_pool;
}

}   // namespace

/* For runtime.cpp (stream.h): an emulator report. */
void report(const char *msg) { add_report(msg); }

/* ---- kernel-side API -------------------------------------------------------------------------- */
void kernel_error(site s, const char *fmt, ...) {
  worker &w = *tl_worker;
  fiber &f = *current_fiber("kernel_error");
  tsan_ignore_begin();
  va_list ap;
  va_start(ap, fmt);
  text msg = vformat(fmt, ap);
  va_end(ap);
  fail_in_kernel(w, f,
                 format("%s at %s: %s", thread_name(f).c_str(), where(s).c_str(), msg.c_str()));
}

int barrier(int kind, int pred, site s) {
  fiber &f = *current_fiber(bar_name(kind));
  worker &w = *tl_worker;
  tsan_ignore_begin();
  if (kind == BAR_GRID && !w.L->cooperative)
    fail_in_kernel(w, f,
                   format("%s at %s: grid_sync in a launch that is not cooperative",
                          thread_name(f).c_str(), where(s).c_str()));
  f.state = F_BAR;
  f.bar_kind = kind;
  f.pred = pred;
  f.wait_site = s;
  void *token = kind == BAR_GRID ? (void *)&w.L->grid_token[w.L->grid_phase & 1]
                                 : (void *)&f.blk->bar_token[f.blk->phase & 1];
  tsan_release(token);
  yield(w, f);
  tsan_acquire(token);
  int r = f.result;
  tsan_ignore_end();
  return r;
}

void *smem_static(const smem_site *s, size_t bytes) {
  fiber &f = *current_fiber("SMEM_ARRAY");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  for (const smem_alloc &a : b.allocs)
    if (a.s == s) {
      tsan_ignore_end();
      return b.arena + a.off;
    }
  if (b.static_bytes + bytes > kStaticLimit)
    fail_in_kernel(
        w, f,
        format("%s at %s:%d: static shared memory %s (%zu bytes) takes the block "
               "past the 48 KB static limit (%zu bytes already)",
               thread_name(f).c_str(), s->file, s->line, s->name, bytes, b.static_bytes));
  if (b.allocs.size() >= kMaxSites || b.static_bytes + b.dyn_bytes + bytes > device_smem_optin())
    fail_in_kernel(w, f,
                   format("%s at %s:%d: too much shared memory for %s", thread_name(f).c_str(),
                          s->file, s->line, s->name));
  size_t off = b.used;
  b.allocs.push_back({s, off, bytes});
  b.static_bytes += bytes;
  b.used = off + ((bytes + 15) & ~size_t(15));
  write_canary(b.arena + b.used, kRedzone);
  b.used += kRedzone;
  asan_unpoison(b.arena + off, bytes);
  memset(b.arena + off, 0xFF, bytes); /* uninitialised floats and halves read as NaN */
  tsan_ignore_end();
  return b.arena + off;
}

void *smem_dynamic() {
  fiber &f = *current_fiber("DYN_SMEM");
  return f.blk->arena + f.blk->dyn_off;
}

namespace {

/* Joins the calling lane to its warp's collective; the last lane to arrive runs compute() for all
   lanes and wakes them. Returns with this lane's f.out filled. Call between ignore_begin/end. */
template <typename Compute>
void collective(worker &w, fiber &f, int op, int param, uint32_t mask, site s, bool aligned,
                Compute compute) {
  block_state &b = *f.blk;
  int warp_first = b.first + f.warp * 32;
  int lanes_here = std::min(32, b.n - f.warp * 32);
  uint32_t exist = lanes_here == 32 ? 0xffffffffu : ((1u << lanes_here) - 1u);
  if (!(mask >> f.lane & 1))
    fail_in_kernel(w, f,
                   format("%s at %s: %s with mask 0x%08x that does not name the calling "
                          "lane %d",
                          thread_name(f).c_str(), where(s).c_str(), op_name(op), mask, f.lane));
  if (mask & ~exist)
    fail_in_kernel(w, f,
                   format("%s at %s: %s mask 0x%08x names lanes that this warp does not "
                          "have (it has 0x%08x)",
                          thread_name(f).c_str(), where(s).c_str(), op_name(op), mask, exist));
  if (aligned && mask != 0xffffffffu)
    fail_in_kernel(w, f,
                   format("%s at %s: %s must be executed by all 32 lanes of the warp "
                          "(mask 0x%08x)",
                          thread_name(f).c_str(), where(s).c_str(), op_name(op), mask));
  std::vector<group> &gs = b.groups[f.warp];
  group *g = nullptr;
  for (group &x : gs)
    if (x.mask & mask) g = &x;
  if (g) {
    if (g->mask != mask || g->op != op || g->param != param || (aligned && !same_site(g->s, s)))
      fail_in_kernel(
          w, f,
          format("warp collective mismatch in warp %d of %s: lane %d calls %s "
                 "(mask 0x%08x, mode %d) at %s while lanes 0x%08x are in %s "
                 "(mask 0x%08x, mode %d) at %s",
                 f.warp, block_name(b).c_str(), f.lane, op_name(op), mask, param, where(s).c_str(),
                 g->arrived, op_name(g->op), g->mask, g->param, where(g->s).c_str()));
  } else {
    gs.push_back({mask, 0u, op, param, s, aligned});
    g = &gs.back();
  }
  g->arrived |= 1u << f.lane;
  if (g->arrived != g->mask) {
    f.state = F_WARP;
    f.wait_site = s;
    yield(w, f);
    return;
  }
  fiber *lanes[32] = {};
  for (int l = 0; l < 32; ++l)
    if (mask >> l & 1) lanes[l] = &w.fibers[warp_first + l];
  compute(lanes, mask);
  for (int l = 0; l < 32; ++l)
    if (lanes[l] && lanes[l] != &f) lanes[l]->state = F_RUN;
  gs.erase(gs.begin() + (g - gs.data()));
}

}   // namespace

void shfl_words(int mode, unsigned mask, const uint32_t *in, uint32_t *out, int nwords, int b,
                int width, site s) {
  fiber &f = *current_fiber("__shfl_sync");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail_in_kernel(w, f,
                   format("%s at %s: shuffle width %d is not a power of two in 1..32",
                          thread_name(f).c_str(), where(s).c_str(), width));
  f.in[0] = in[0];
  f.in[1] = nwords > 1 ? in[1] : 0;
  f.arg = b;
  /* The width and the word count are part of the operation: all lanes must agree. */
  int param = mode * 1000 + width * 10 + nwords;
  collective(w, f, OP_SHFL, param, mask, s, false, [&](fiber **lanes, uint32_t m) {
    /* shfl.sync per the PTX ISA, with c as the CUDA headers build it. */
    uint32_t c =
        mode == SHFL_UP ? (uint32_t)(32 - width) << 8 : ((uint32_t)(32 - width) << 8) | 0x1f;
    uint32_t seg = (c >> 8) & 0x1f, clamp = c & 0x1f;
    for (int lane = 0; lane < 32; ++lane) {
      fiber *x = lanes[lane];
      if (!x) continue;
      uint32_t bb = (uint32_t)x->arg & 0x1f;
      uint32_t max_lane = ((uint32_t)lane & seg) | (clamp & ~seg);
      uint32_t min_lane = (uint32_t)lane & seg;
      int j = lane;
      bool valid;
      switch (mode) {
        case SHFL_UP:
          j = lane - (int)bb;
          valid = j >= (int)max_lane;
          break;
        case SHFL_DOWN:
          j = lane + (int)bb;
          valid = j <= (int)max_lane;
          break;
        case SHFL_XOR:
          j = lane ^ (int)bb;
          valid = j <= (int)max_lane;
          break;
        default:
          j = (int)(min_lane | (bb & ~seg));
          valid = j <= (int)max_lane;
          break;
      }
      if (!valid) j = lane;
      if (!(m >> j & 1)) {
        x->out[0] = x->out[1] = 0xDEADBEEFu; /* undefined on the GPU: make it visible */
      } else {
        x->out[0] = lanes[j]->in[0];
        x->out[1] = lanes[j]->in[1];
      }
    }
  });
  out[0] = f.out[0];
  if (nwords > 1) out[1] = f.out[1];
  tsan_ignore_end();
}

unsigned vote(int mode, unsigned mask, int pred, site s) {
  fiber &f = *current_fiber("vote");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  f.in[0] = (uint32_t)pred;
  collective(w, f, OP_VOTE, mode, mask, s, false, [&](fiber **lanes, uint32_t) {
    uint32_t ballot = 0;
    for (int l = 0; l < 32; ++l)
      if (lanes[l] && lanes[l]->in[0]) ballot |= 1u << l;
    uint32_t any = ballot != 0, all = ballot == mask;
    for (int l = 0; l < 32; ++l)
      if (lanes[l]) lanes[l]->out[0] = mode == VOTE_BALLOT ? ballot : mode == VOTE_ANY ? any : all;
  });
  unsigned r = f.out[0];
  tsan_ignore_end();
  return r;
}

void syncwarp(unsigned mask, site s) {
  fiber &f = *current_fiber("__syncwarp");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  /* __syncwarp orders memory among the lanes it names: a release/acquire pair for TSan. */
  void *token = &b.warp_token[2 * (size_t)f.warp + (b.warp_phase[f.warp] & 1)];
  tsan_release(token);
  collective(w, f, OP_SYNCWARP, 0, mask, s, false,
             [&](fiber **, uint32_t) { ++b.warp_phase[f.warp]; });
  tsan_acquire(token);
  tsan_ignore_end();
}

unsigned activemask() {
  fiber &f = *current_fiber("__activemask");
  tsan_ignore_begin();
  block_state &b = *f.blk;
  worker &w = *tl_worker;
  unsigned m = 0;
  for (int l = 0; l < 32 && f.warp * 32 + l < b.n; ++l)
    if (w.fibers[b.first + f.warp * 32 + l].state != F_DONE) m |= 1u << l;
  tsan_ignore_end();
  return m;
}

void ldmatrix(int num, bool trans, uint32_t *regs, const void *row, site s) {
  fiber &f = *current_fiber("ldmatrix");
  worker &w = *tl_worker;
  bool gives_row = f.lane < 8 * num;
  uint32_t mine[4] = {0, 0, 0, 0};
  if (gives_row) {
    tsan_ignore_begin();
    if (reinterpret_cast<uintptr_t>(row) & 15)
      fail_in_kernel(w, f,
                     format("%s at %s: ldmatrix row address %p is not 16-byte aligned",
                            thread_name(f).c_str(), where(s).c_str(), row));
    if (!in_arena_alloc(*f.blk, row, 16))
      fail_in_kernel(w, f,
                     format("%s at %s: ldmatrix row address %p is not inside a shared "
                            "memory array of this block",
                            thread_name(f).c_str(), where(s).c_str(), row));
    tsan_ignore_end();
    memcpy(mine, row, 16); /* this lane's own read: visible to ASan and TSan */
  }
  tsan_ignore_begin();
  memcpy(f.in, mine, 16);
  collective(w, f, OP_LDMATRIX, num * 2 + (trans ? 1 : 0), 0xffffffffu, s, true,
             [&](fiber **lanes, uint32_t) {
               /* Row r of matrix j came from lane 8j + r; element e of a row is 16-bit half e. */
               auto elem = [&](int j, int r, int e) -> uint32_t {
                 uint32_t word = lanes[8 * j + r]->in[e / 2];
                 return (e & 1) ? word >> 16 : word & 0xffffu;
               };
               for (int L = 0; L < 32; ++L)
                 for (int j = 0; j < num; ++j) {
                   uint32_t lo, hi;
                   if (!trans) {
                     lo = elem(j, L / 4, 2 * (L % 4));
                     hi = elem(j, L / 4, 2 * (L % 4) + 1);
                   } else {
                     lo = elem(j, 2 * (L % 4), L / 4);
                     hi = elem(j, 2 * (L % 4) + 1, L / 4);
                   }
                   lanes[L]->out[j] = lo | (hi << 16);
                 }
             });
  for (int j = 0; j < num; ++j) regs[j] = f.out[j];
  tsan_ignore_end();
}

namespace {
double half_bits(uint32_t bits, int type) {
  return type == MMA_F16 ? (double)seqk__f16_to_float((uint16_t)bits)
                         : (double)seqk__bf16_to_float((uint16_t)bits);
}
}   // namespace

void mma(int type, int k, float *d, const uint32_t *a, const uint32_t *b, const float *c, site s) {
  fiber &f = *current_fiber("mma");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  int na = k == 16 ? 4 : 2, nb = k == 16 ? 2 : 1;
  for (int i = 0; i < na; ++i) f.in[i] = a[i];
  for (int i = 0; i < nb; ++i) f.in[4 + i] = b[i];
  for (int i = 0; i < 4; ++i) memcpy(&f.in[6 + i], &c[i], 4);
  collective(w, f, OP_MMA, type * 100 + k, 0xffffffffu, s, true, [&](fiber **lanes, uint32_t) {
    double A[16][16], B[16][8], C[16][8];
    for (int L = 0; L < 32; ++L) {
      int g = L >> 2, t = L & 3;
      const uint32_t *in = lanes[L]->in;
      auto lo = [&](uint32_t wd) { return half_bits(wd & 0xffffu, type); };
      auto hi = [&](uint32_t wd) { return half_bits(wd >> 16, type); };
      A[g][2 * t] = lo(in[0]);
      A[g][2 * t + 1] = hi(in[0]);
      A[g + 8][2 * t] = lo(in[1]);
      A[g + 8][2 * t + 1] = hi(in[1]);
      if (k == 16) {
        A[g][2 * t + 8] = lo(in[2]);
        A[g][2 * t + 9] = hi(in[2]);
        A[g + 8][2 * t + 8] = lo(in[3]);
        A[g + 8][2 * t + 9] = hi(in[3]);
      }
      B[2 * t][g] = lo(in[4]);
      B[2 * t + 1][g] = hi(in[4]);
      if (k == 16) {
        B[2 * t + 8][g] = lo(in[5]);
        B[2 * t + 9][g] = hi(in[5]);
      }
      float cf[4];
      memcpy(cf, &in[6], 16);
      C[g][2 * t] = cf[0];
      C[g][2 * t + 1] = cf[1];
      C[g + 8][2 * t] = cf[2];
      C[g + 8][2 * t + 1] = cf[3];
    }
    /* Exact products, double sums, one rounding to f32 (the GPU's order and rounding differ
       within the tolerance the tests allow). */
    float D[16][8];
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        double acc = C[i][j];
        for (int q = 0; q < k; ++q) acc += A[i][q] * B[q][j];
        D[i][j] = (float)acc;
      }
    for (int L = 0; L < 32; ++L) {
      int g = L >> 2, t = L & 3;
      float o[4] = {D[g][2 * t], D[g][2 * t + 1], D[g + 8][2 * t], D[g + 8][2 * t + 1]};
      memcpy(lanes[L]->out, o, 16);
    }
  });
  memcpy(d, f.out, 16);
  tsan_ignore_end();
}

/* ---- wgmma (sm_90a) -------------------------------------------------------------------------------
   Shared-memory matrix descriptors hold arena-relative byte offsets (smem_offset): the GPU's are
   shared-window addresses, whose window starts 1024-byte aligned; so are the arena's offsets, and
   the swizzles below XOR bits of them exactly as the hardware XORs address bits. */
namespace {

struct wg_desc {
  uint32_t start, lbo, sbo; /* bytes */
  int base_offset, mode;    /* mode: 0 none, 1 128B, 2 64B, 3 32B */
};
wg_desc decode_desc(uint64_t d) {
  wg_desc r;
  r.start = (uint32_t)(d & 0x3FFF) << 4;
  r.lbo = (uint32_t)((d >> 16) & 0x3FFF) << 4;
  r.sbo = (uint32_t)((d >> 32) & 0x3FFF) << 4;
  r.base_offset = (int)((d >> 49) & 7);
  r.mode = (int)(d >> 62);
  return r;
}
/* The swizzle atom's row width in bytes: 16 (no swizzle: one core-matrix row), 128, 64, 32. */
uint32_t swizzle_bytes(int mode) { return mode == 0 ? 16 : mode == 1 ? 128 : mode == 2 ? 64 : 32; }
/* 128B: address bits [7,10) XOR into [4,7); 64B: [7,9) into [4,6); 32B: bit 7 into bit 4. */
uint32_t swizzle(uint32_t a, int mode) {
  uint32_t mask = mode == 1 ? 7u : mode == 2 ? 3u : mode == 3 ? 1u : 0u;
  return a ^ (((a >> 7) & mask) << 4);
}
/* Chunk c (16 bytes, 8 consecutive 16-bit elements along the major dimension) of an operand with
   `rows` rows along M (A) or N (B) and K = 16, per the canonical layouts of the PTX ISA
   (9.7.15.5.1.2, "Shared Memory Matrix Layout", "Strides", "Matrix Descriptor Format"):
     K-major (trans 0), chunk = (row mn, k-half h): elements (mn, 8h..8h+7) at
       none:     start + (mn/8)*SBO + h*LBO + (mn%8)*16      (8x16-byte core matrices)
       swizzled: start + (mn/8)*SBO + h*16  + (mn%8)*W      (W = 32, 64, 128: rows of the atom)
     MN-major (trans 1), chunk = (k, mn-group j): elements (8j..8j+7, k) at
       none:     start + j*SBO + (k/8)*LBO + (k%8)*16
       swizzled: start + (j/(W/16))*LBO + (j%(W/16))*16 + (k/8)*SBO + (k%8)*W
   then the swizzle of the mode applied to the whole address. *mn0 / *k0 say which elements the
   chunk holds: along K for K-major (k0..k0+7 at row mn0), along MN for MN-major. */
uint32_t chunk_addr(const wg_desc &d, bool mn_major, int c, int rows, int *mn0, int *k0) {
  uint32_t W = swizzle_bytes(d.mode), off;
  if (!mn_major) {
    int mn = c >> 1, h = c & 1;
    *mn0 = mn;
    *k0 = 8 * h;
    off = (uint32_t)(mn / 8) * d.sbo + (uint32_t)(mn % 8) * W + (d.mode == 0 ? h * d.lbo : h * 16u);
  } else {
    int groups = rows / 8;
    int k = c / groups, j = c % groups;
    *mn0 = 8 * j;
    *k0 = k;
    if (d.mode == 0) {
      off = (uint32_t)j * d.sbo + (uint32_t)(k / 8) * d.lbo + (uint32_t)(k % 8) * 16;
    } else {
      uint32_t per = W / 16;
      off = ((uint32_t)j / per) * d.lbo + ((uint32_t)j % per) * 16 + (uint32_t)(k / 8) * d.sbo +
            (uint32_t)(k % 8) * W;
    }
  }
  return swizzle(d.start + off, d.mode);
}

wg_warp &wg_state(block_state &b, int warp) {
  if (b.wg.empty()) b.wg.resize((size_t)b.nwarps);
  return b.wg[warp];
}

/* Reads this lane's share (chunks lane, lane + 32, ...) of one operand into the warp's staging
   area: the lane's own reads of shared memory, so ASan and TSan see them. Rows are the
   operand's (A: the warp's 16 rows, starting at row `first`; B: all N). */
void stage_operand(worker &w, fiber &f, const wg_desc &d, bool mn_major, int rows, int first,
                   int nrows_here, uint16_t (*dst)[16], const char *which, site s) {
  block_state &b = *f.blk;
  int nchunks = 2 * nrows_here; /* 16 elements of K per row */
  for (int c = f.lane; c < nchunks; c += 32) {
    int mn0, k0;
    /* Chunks are numbered over the warp's rows only: shift to the operand's numbering. */
    int cc;
    if (!mn_major)
      cc = c + 2 * first;
    else {
      int groups_here = nrows_here / 8;
      cc = (c / groups_here) * (rows / 8) + first / 8 + c % groups_here;
    }
    uint32_t off = chunk_addr(d, mn_major, cc, rows, &mn0, &k0);
    const char *p = b.arena + off;
    if (off + 16 > b.cap || !in_arena_alloc(b, p, 16))
      fail_in_kernel(w, f,
                     format("%s at %s: wgmma.mma_async reads %s from shared-memory offset 0x%x "
                            "(16 bytes; descriptor start 0x%x, LBO %u, SBO %u, swizzle mode %d, "
                            "%s-major), which is not inside a shared memory array of this block",
                            thread_name(f).c_str(), where(s).c_str(), which, off, d.start, d.lbo,
                            d.sbo, d.mode, mn_major ? "MN" : "K"));
    uint16_t v[8];
    tsan_ignore_end();
    memcpy(v, p, 16); /* this lane's own read */
    tsan_ignore_begin();
    for (int e = 0; e < 8; ++e) {
      if (!mn_major)
        dst[mn0 - first][k0 + e] = v[e];
      else
        dst[mn0 + e - first][k0] = v[e];
    }
  }
}

bool poisoned(const float *p) {
  uint32_t u;
  memcpy(&u, p, 4);
  return u == kWgmmaPoison;
}
void poison(float *p, int n) {
  for (int i = 0; i < n; ++i) memcpy(&p[i], &kWgmmaPoison, 4);
}

}   // namespace

uint32_t smem_offset(const void *p, site s) {
  fiber &f = *current_fiber("wgmma descriptor");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  if (!in_arena_alloc(b, p, 1))
    fail_in_kernel(w, f,
                   format("%s at %s: wgmma descriptor address %p is not inside a shared memory "
                          "array of this block",
                          thread_name(f).c_str(), where(s).c_str(), p));
  uint32_t off = (uint32_t)(static_cast<const char *>(p) - b.arena);
  tsan_ignore_end();
  return off;
}

void wgmma_fence(site s) {
  fiber &f = *current_fiber("wgmma.fence");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  collective(w, f, OP_WGMMA_FENCE, 0, 0xffffffffu, s, true,
             [&](fiber **, uint32_t) { wg_state(*f.blk, f.warp).fenced = true; });
  tsan_ignore_end();
}

void wgmma_commit(site s) {
  fiber &f = *current_fiber("wgmma.commit_group");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  collective(w, f, OP_WGMMA_COMMIT, 0, 0xffffffffu, s, true,
             [&](fiber **, uint32_t) { ++wg_state(*f.blk, f.warp).committed; });
  tsan_ignore_end();
}

void wgmma_wait(int n, site s) {
  fiber &f = *current_fiber("wgmma.wait_group");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  collective(w, f, OP_WGMMA_WAIT, n, 0xffffffffu, s, true, [&](fiber **lanes, uint32_t) {
    block_state &b = *f.blk;
    wg_warp &x = wg_state(b, f.warp);
    /* Committed groups have ids < committed; all but the newest n retire, oldest first. */
    unsigned limit = x.committed >= (unsigned)n ? x.committed - (unsigned)n : 0;
    size_t kept = 0;
    for (size_t i = 0; i < x.ops.size(); ++i) {
      wg_op &o = x.ops[i];
      if (o.group >= limit) {
        if (kept != i) x.ops[kept] = std::move(o);
        ++kept;
        continue;
      }
      for (int L = 0; L < 32; ++L) {
        if (!(o.live >> L & 1)) continue;
        for (int r = 0; r < o.nregs; ++r)
          if (!poisoned(&o.dst[L][r]))
            fail_in_kernel(
                w, f,
                format("wgmma: accumulator registers touched between wgmma issue and wait: warp "
                       "%d of %s, lane %d, register %d of the wgmma.mma_async issued at %s was "
                       "written before the wgmma.wait_group at %s retired it",
                       f.warp, block_name(b).c_str(), L, r, where(o.s).c_str(),
                       where(s).c_str()));
        memcpy(o.dst[L], &o.res[(size_t)L * o.nregs], sizeof(float) * (size_t)o.nregs);
      }
      (void)lanes;
    }
    x.ops.resize(kept);
    x.fenced = false;
    x.last_wait = s;
  });
  tsan_ignore_end();
}

void wgmma(int type, int n, float *d, const uint32_t *a_regs, uint64_t desc_a, uint64_t desc_b,
           int scale_d, int trans_a, int trans_b, site s) {
  fiber &f = *current_fiber("wgmma.mma_async");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  if (n < 8 || n > 256 || n % 8)
    fail_in_kernel(w, f,
                   format("%s at %s: wgmma.mma_async m64n%dk16: N must be a multiple of 8 in "
                          "8..256",
                          thread_name(f).c_str(), where(s).c_str(), n));
  wg_warp &x = wg_state(b, f.warp);
  const int wr = f.warp % 4; /* the warp's rank in its warpgroup: rows 16wr..16wr+15 of A, D */
  wg_desc da = decode_desc(desc_a), db = decode_desc(desc_b);
  for (int which = 0; which < 2; ++which) {
    const wg_desc &dd = which ? db : da;
    if (which == 0 && a_regs) continue;
    if (dd.base_offset != 0)
      fail_in_kernel(w, f,
                     format("%s at %s: wgmma.mma_async: matrix base offset %d in the %s "
                            "descriptor is not emulated (start the swizzle pattern at its "
                            "repeat boundary and leave the base offset 0)",
                            thread_name(f).c_str(), where(s).c_str(), dd.base_offset,
                            which ? "B" : "A"));
  }
  /* The lane's share of the shared-memory reads (the collective checks the descriptors agree). */
  if (!a_regs) stage_operand(w, f, da, trans_a != 0, 64, 16 * wr, 16, x.sa, "A", s);
  stage_operand(w, f, db, trans_b != 0, n, 0, n, x.sb, "B", s);
  f.wg_d = d;
  for (int i = 0; i < 4; ++i) f.wg_a[i] = a_regs ? a_regs[i] : 0;
  f.wg_desc[0] = a_regs ? 0 : desc_a;
  f.wg_desc[1] = desc_b;
  f.wg_scale = scale_d != 0;
  int param = ((type * 512 + n) * 2 + (a_regs != nullptr)) * 4 + (trans_a != 0) * 2 + (trans_b != 0);
  collective(w, f, OP_WGMMA, param, 0xffffffffu, s, true, [&](fiber **lanes, uint32_t) {
    for (int L = 1; L < 32; ++L)
      if (lanes[L]->wg_desc[0] != lanes[0]->wg_desc[0] ||
          lanes[L]->wg_desc[1] != lanes[0]->wg_desc[1] || lanes[L]->wg_scale != lanes[0]->wg_scale)
        fail_in_kernel(w, f,
                       format("wgmma.mma_async at %s in warp %d of %s: lane %d has descriptors "
                              "0x%016llx/0x%016llx and scale-d %d, lane 0 has 0x%016llx/0x%016llx "
                              "and %d: they must be the same in every thread of the warpgroup",
                              where(s).c_str(), f.warp, block_name(b).c_str(), L,
                              (unsigned long long)lanes[L]->wg_desc[0],
                              (unsigned long long)lanes[L]->wg_desc[1], lanes[L]->wg_scale,
                              (unsigned long long)lanes[0]->wg_desc[0],
                              (unsigned long long)lanes[0]->wg_desc[1], lanes[0]->wg_scale));
    if (!x.fenced)
      fail_in_kernel(
          w, f,
          format("wgmma: wgmma.mma_async at %s in warp %d of %s without a wgmma.fence since %s%s: "
                 "the fence must order the warp's register accesses (accumulators, A fragments) "
                 "before the wgmma reads them",
                 where(s).c_str(), f.warp, block_name(b).c_str(),
                 x.last_wait.file ? "the last wgmma.wait_group at " : "the kernel start",
                 x.last_wait.file ? where(x.last_wait).c_str() : ""));
    const int nregs = n / 2;
    /* A: the warp's 16 rows. From registers: the m16n8k16 A layout, per lane. */
    double A[16][16], B[256][16];
    for (int m = 0; m < 16; ++m)
      for (int k = 0; k < 16; ++k) A[m][k] = a_regs ? 0.0 : half_bits(x.sa[m][k], type);
    if (a_regs)
      for (int L = 0; L < 32; ++L) {
        int g = L >> 2, t = L & 3;
        const uint32_t *in = lanes[L]->wg_a;
        for (int j = 0; j < 4; ++j) {
          int row = g + 8 * (j & 1), col = 2 * t + 8 * (j >> 1);
          A[row][col] = half_bits(in[j] & 0xffffu, type);
          A[row][col + 1] = half_bits(in[j] >> 16, type);
        }
      }
    for (int nn = 0; nn < n; ++nn)
      for (int k = 0; k < 16; ++k) B[nn][k] = half_bits(x.sb[nn][k], type);
    /* C: the registers, or the pending result of an earlier wgmma of this warp into the same
       registers (chained k-steps), which this one supersedes. */
    wg_op o;
    o.group = x.committed;
    o.s = s;
    o.nregs = nregs;
    o.live = 0xffffffffu;
    o.res.assign((size_t)32 * nregs, 0.0f);
    for (int L = 0; L < 32; ++L) {
      o.dst[L] = lanes[L]->wg_d;
      const float *c = lanes[L]->wg_d;
      for (auto it = x.ops.rbegin(); it != x.ops.rend(); ++it)
        if ((it->live >> L & 1) && it->dst[L] == lanes[L]->wg_d && it->nregs == nregs) {
          c = &it->res[(size_t)L * nregs];
          it->live &= ~(1u << L);
          break;
        }
      int g = L >> 2, t = L & 3;
      for (int r = 0; r < nregs; ++r) {
        int row = g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * t + (r & 1);
        double acc = lanes[L]->wg_scale ? (double)c[r] : 0.0;
        for (int k = 0; k < 16; ++k) acc += A[row][k] * B[col][k];
        o.res[(size_t)L * nregs + r] = (float)acc;
      }
    }
    for (int L = 0; L < 32; ++L) poison(lanes[L]->wg_d, nregs);
    /* Superseded ops with no live lane left are dropped. */
    size_t kept = 0;
    for (size_t i = 0; i < x.ops.size(); ++i)
      if (x.ops[i].live) {
        if (kept != i) x.ops[kept] = std::move(x.ops[i]);
        ++kept;
      }
    x.ops.resize(kept);
    x.ops.push_back(std::move(o));
    if (!x.issued) x.first_issue = s;
    ++x.issued;
    x.sequence = x.sequence * 1000003u + (unsigned long)s.line * 131u + (unsigned long)param;
  });
  tsan_ignore_end();
}

/* ---- Hopper synchronisation: mbarrier, named barriers, elect.sync, setmaxnreg ----------------- */
namespace {

constexpr int32_t kMbarMax = (1 << 20) - 1; /* counts and tx-count: 20 bits (PTX ISA) */

/* The word an initialised mbarrier holds here: a tag, the parity, the pending count, the
   tx-count (20-bit two's complement). The GPU's encoding is opaque; this one only lets the
   emulator see ordinary stores to the word. */
uint64_t mbar_encode(const mbar_state &m) {
  return (uint64_t)0x5EB0u << 48 | (uint64_t)(m.phase & 1u) << 47 |
         (uint64_t)(m.pending & 0xFFFFFu) << 20 | (uint64_t)((uint32_t)m.tx & 0xFFFFFu);
}
void mbar_store(block_state &b, mbar_state &m) {
  m.word = mbar_encode(m);
  memcpy(b.arena + m.off, &m.word, 8);
}

/* The checks every mbarrier operation starts with: the address is an 8-byte aligned word inside a
   shared array of the block. */
void mbar_check_addr(worker &w, fiber &f, const void *p, const char *what, site s) {
  if (reinterpret_cast<uintptr_t>(p) & 7)
    fail_in_kernel(w, f,
                   format("%s at %s: %s on mbarrier address %p, which is not 8-byte aligned",
                          thread_name(f).c_str(), where(s).c_str(), what, p));
  if (!in_arena_alloc(*f.blk, p, 8))
    fail_in_kernel(w, f,
                   format("%s at %s: %s on mbarrier address %p, which is not a 64-bit word "
                          "inside a shared memory array of this block",
                          thread_name(f).c_str(), where(s).c_str(), what, p));
}

mbar_state &mbar_get(worker &w, fiber &f, const void *p, const char *what, site s) {
  mbar_check_addr(w, f, p, what, s);
  block_state &b = *f.blk;
  mbar_state *m = mbar_lookup(b, p);
  if (!m)
    fail_in_kernel(w, f,
                   format("%s at %s: %s on an uninitialised mbarrier at %p (shared offset 0x%zx): "
                          "mbarrier_init it first (and make the init visible with a barrier)",
                          thread_name(f).c_str(), where(s).c_str(), what, p,
                          (size_t)(static_cast<const char *>(p) - b.arena)));
  uint64_t now;
  memcpy(&now, p, 8);
  if (now != m->word)
    fail_in_kernel(
        w, f,
        format("%s at %s: %s on the mbarrier at shared offset 0x%zx (initialised at "
               "%s), whose word was overwritten by ordinary stores (0x%016llx, the "
               "emulator left 0x%016llx): mbarrier_inval before reusing its memory",
               thread_name(f).c_str(), where(s).c_str(), what, m->off, where(m->init_site).c_str(),
               (unsigned long long)now, (unsigned long long)m->word));
  return *m;
}

/* After an arrival or a tx change: complete the phase when both counts are zero (the parity
   flips, the pending count resets to the init count) and wake the threads parked on it. */
void mbar_settle(worker &w, fiber &f, mbar_state &m, const char *what, site s) {
  block_state &b = *f.blk;
  if (m.pending == 0 && m.tx < 0)
    fail_in_kernel(w, f,
                   format("%s at %s: %s: mbarrier tx-count underflow: every arrival of phase %u "
                          "is in and the tx-count is %d (%d more bytes completed than expected "
                          "with expect_tx) on the mbarrier at shared offset 0x%zx (initialised "
                          "at %s)",
                          thread_name(f).c_str(), where(s).c_str(), what, m.phase, m.tx, -m.tx,
                          m.off, where(m.init_site).c_str()));
  if (m.pending == 0 && m.tx == 0) {
    ++m.phase;
    m.pending = m.count;
    const char *addr = b.arena + m.off;
    for (int i = b.first; i < b.first + b.n; ++i) {
      fiber &x = w.fibers[i];
      if (x.state == F_MBAR && x.mb_addr == addr) x.state = F_RUN;
    }
  }
  mbar_store(b, m);
}

/* The lanes of a warp that exist (a partial last warp has fewer). */
uint32_t warp_lanes(const block_state &b, int warp) {
  int here = std::min(32, b.n - warp * 32);
  return here == 32 ? 0xffffffffu : ((1u << here) - 1u);
}

}   // namespace

/* ---- Hopper TMA: tensor maps and tiled loads ----------------------------------------------------
   The emulator's cuTensorMapEncodeTiled stores its own encoding in the 128-byte opaque map:
     [0] magic  [1] dtype | rank << 8 | swizzle << 16 | element bytes << 24
     [2] global address  [3..7] dims  [8..11] byte strides of dims 1..4
     [12] box dims - 1, 9 bits each  [13] a checksum of [0..12]  [14..15] zero
   A load copies the box (innermost dimension contiguous, dense) to the destination, applying the
   swizzle to the arena-relative byte address exactly as wgmma reads it (the same function), with
   zeros for out-of-bounds elements. It is queued at issue (destination poisoned) and lands when a
   thread waits on its barrier, or when every thread waits and one waits on that barrier. */
namespace {

constexpr uint64_t kTmaMagic = 0x3150414D544B5153ull; /* "SQKTMAP1" */

uint64_t tma_checksum(const uint64_t *w) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int i = 0; i < 13; ++i) {
    h = (h ^ w[i]) * 0x100000001B3ull;
    h ^= h >> 29;
  }
  return h;
}

bool tma_decode(const void *map, tma_desc *m) {
  uint64_t w[16];
  memcpy(w, map, sizeof w);
  if (w[0] != kTmaMagic || w[13] != tma_checksum(w)) return false;
  m->dtype = (int)(w[1] & 0xFF);
  m->rank = (int)((w[1] >> 8) & 0xFF);
  m->swizzle = (int)((w[1] >> 16) & 0xFF);
  m->esize = (uint32_t)((w[1] >> 24) & 0xFF);
  m->base = w[2];
  if (m->rank < 1 || m->rank > 5) return false;
  for (int d = 0; d < 5; ++d) {
    m->dims[d] = d < m->rank ? w[3 + d] : 1;
    m->strides[d] = d == 0 ? m->esize : d < m->rank ? w[7 + d] : 0;
    m->box[d] = d < m->rank ? (uint32_t)((w[12] >> (9 * d)) & 0x1FF) + 1 : 1;
  }
  return true;
}

/* CUtensorMapSwizzle -> the wgmma descriptor's mode (swizzle() above). */
int tma_wgmma_mode(int sw) { return sw == 1 ? 3 : sw == 2 ? 2 : sw == 3 ? 1 : 0; }
const char *tma_swizzle_name(int sw) {
  return sw == 1 ? "32B" : sw == 2 ? "64B" : sw == 3 ? "128B" : "none";
}

text tma_op_text(const block_state &b, const tma_op &op) {
  return format(
      "the TMA load issued at %s by thread (%u,%u,%u) of %s (%dd box of %u bytes, swizzle %s, "
      "into shared offset 0x%zx, mbarrier at shared offset 0x%zx)",
      where(op.s).c_str(), op.tid.x, op.tid.y, op.tid.z, block_name(b).c_str(), op.m.rank, op.bytes,
      tma_swizzle_name(op.m.swizzle), op.dst_off, op.bar_off);
}

/* The copy itself: the box from global memory into the arena, swizzled. */
void tma_copy(block_state &b, const tma_op &op) {
  const tma_desc &m = op.m;
  const int mode = tma_wgmma_mode(m.swizzle);
  const uint32_t n = op.bytes / m.esize;
  uint32_t idx[5] = {0, 0, 0, 0, 0};
  for (uint32_t e = 0; e < n; ++e) {
    bool in = true;
    uint64_t src = m.base;
    for (int d = 0; d < m.rank; ++d) {
      const int64_t g = (int64_t)op.c[d] + (int64_t)idx[d];
      if (g < 0 || (uint64_t)g >= m.dims[d]) {
        in = false;
        break;
      }
      src += (uint64_t)g * m.strides[d];
    }
    char *dst = b.arena + swizzle((uint32_t)(op.dst_off + (size_t)e * m.esize), mode);
    if (in)
      memcpy(dst, reinterpret_cast<const void *>(src), m.esize);
    else
      memset(dst, 0, m.esize); /* out of bounds: zeros (CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) */
    for (int d = 0; d < m.rank; ++d) {
      if (++idx[d] < m.box[d]) break;
      idx[d] = 0;
    }
  }
}

/* Lands op: checks that nothing wrote its destination meanwhile, copies, completes its bytes on
   its barrier (which may complete the phase and wake the waiters). false with *err on an error.
   f: the fiber doing it (a waiting thread), or nullptr for the scheduler. */
bool tma_land(worker &w, block_state &b, const tma_op &op, fiber *f, text *err) {
  char *dst = b.arena + op.dst_off;
  asan_unpoison(dst, op.bytes);
  for (uint32_t i = 0; i < op.bytes; i += 4) {
    uint32_t v;
    memcpy(&v, dst + i, 4);
    if (v != kTmaPoison) {
      *err = format(
          "%s: shared memory at offset 0x%zx was written while %s was in flight "
          "(wait on its mbarrier before touching the destination)",
          f ? thread_name(*f).c_str() : block_name(b).c_str(), op.dst_off + i,
          tma_op_text(b, op).c_str());
      return false;
    }
  }
  char *bar = b.arena + op.bar_off;
  mbar_state *m = mbar_lookup(b, bar);
  uint64_t now = 0;
  if (m) memcpy(&now, bar, 8);
  if (!m || now != m->word) {
    *err = format(
        "%s: the mbarrier of %s is no longer an initialised mbarrier when the copy "
        "lands",
        f ? thread_name(*f).c_str() : block_name(b).c_str(), tma_op_text(b, op).c_str());
    return false;
  }
  /* The copy is the asynchronous proxy's write: ordered after the issuing thread's poison fill
     (its release on the destination) and before the barrier's release below. */
  tsan_acquire(dst);
  if (f) tsan_ignore_end();
  tma_copy(b, op);
  if (f) tsan_ignore_begin();
  if ((int64_t)m->tx - op.bytes < -kMbarMax) {
    *err = format(
        "mbarrier tx-count underflow: %s completes %u bytes, taking the tx-count (%d) "
        "below -%d",
        tma_op_text(b, op).c_str(), op.bytes, m->tx, kMbarMax);
    return false;
  }
  m->tx -= (int32_t)op.bytes;
  tsan_release(bar);
  if (m->pending == 0 && m->tx < 0) {
    *err = format(
        "mbarrier tx-count underflow: %s completed %u bytes on a phase (%u) whose "
        "arrivals are all in and which expected %d fewer (expect_tx of fewer bytes "
        "than the box, or a load nobody announced; mbarrier initialised at %s)",
        tma_op_text(b, op).c_str(), op.bytes, m->phase, -m->tx, where(m->init_site).c_str());
    return false;
  }
  if (m->pending == 0 && m->tx == 0) {
    ++m->phase;
    m->pending = m->count;
    for (int i = b.first; i < b.first + b.n; ++i) {
      fiber &x = w.fibers[i];
      if (x.state == F_MBAR && x.mb_addr == bar) x.state = F_RUN;
    }
  }
  mbar_store(b, *m);
  return true;
}

/* A thread's try_wait on bar: the loads it tracks land, oldest first, in this thread's fiber. */
void tma_land_on(worker &w, fiber &f, void *bar) {
  block_state &b = *f.blk;
  const size_t off = (size_t)(static_cast<char *>(bar) - b.arena);
  for (size_t i = 0; i < b.tma.size();) {
    if (b.tma[i].bar_off != off) {
      ++i;
      continue;
    }
    tma_op op = b.tma[i];
    b.tma.erase(b.tma.begin() + (long)i);
    text err;
    if (!tma_land(w, b, op, &f, &err)) fail_in_kernel(w, f, err);
  }
}

void tma_check_no_pending(worker &w, fiber &f, void *bar, const char *what, site s) {
  block_state &b = *f.blk;
  const size_t off = (size_t)(static_cast<char *>(bar) - b.arena);
  for (const tma_op &op : b.tma)
    if (op.bar_off == off)
      fail_in_kernel(
          w, f,
          format("%s at %s: %s on an mbarrier that %s still has to complete",
                 thread_name(f).c_str(), where(s).c_str(), what, tma_op_text(b, op).c_str()));
}

/* Every thread waits: the loads whose barrier a parked thread waits on land (the scheduler does
   the copies). Loads nobody waits on stay in flight. */
int tma_land_waited(worker &w) {
  int landed = 0;
  for (int bi = 0; bi < w.nblocks; ++bi) {
    block_state &b = w.blocks[bi];
    for (size_t i = 0; i < b.tma.size();) {
      const char *bar = b.arena + b.tma[i].bar_off;
      bool waited = false;
      for (int t = b.first; t < b.first + b.n && !waited; ++t)
        waited = w.fibers[t].state == F_MBAR && w.fibers[t].mb_addr == bar;
      if (!waited) {
        ++i;
        continue;
      }
      tma_op op = b.tma[i];
      b.tma.erase(b.tma.begin() + (long)i);
      text err;
      if (!tma_land(w, b, op, nullptr, &err)) {
        add_report(err);
        return -1;
      }
      ++landed;
    }
  }
  return landed;
}

void tma_check_exit(worker &w, block_state &b) {
  if (b.tma.empty()) return;
  add_report(
      format("TMA: %s ended with %zu TMA load(s) in flight, the oldest %s: nobody waited on "
             "its mbarrier (a block must not exit while its copies can still write its "
             "shared memory)",
             block_name(b).c_str(), b.tma.size(), tma_op_text(b, b.tma[0]).c_str()));
  w.L->failed = true;
}

}   // namespace

void mbarrier_init(void *bar, unsigned count, site s) {
  fiber &f = *current_fiber("mbarrier.init");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  mbar_check_addr(w, f, bar, "mbarrier.init", s);
  if (count < 1 || count > (unsigned)kMbarMax)
    fail_in_kernel(w, f,
                   format("%s at %s: mbarrier.init with count %u (1..%d)", thread_name(f).c_str(),
                          where(s).c_str(), count, kMbarMax));
  block_state &b = *f.blk;
  mbar_state *m = mbar_lookup(b, bar);
  if (m) {
    tma_check_no_pending(w, f, bar, "mbarrier.init", s);
    for (int i = b.first; i < b.first + b.n; ++i)
      if (w.fibers[i].state == F_MBAR && w.fibers[i].mb_addr == bar)
        fail_in_kernel(
            w, f,
            format("%s at %s: mbarrier.init on the mbarrier at shared offset 0x%zx "
                   "while threads wait on it (thread (%u,%u,%u) at %s)",
                   thread_name(f).c_str(), where(s).c_str(), m->off, w.fibers[i].tid.x,
                   w.fibers[i].tid.y, w.fibers[i].tid.z, where(w.fibers[i].wait_site).c_str()));
  } else {
    b.mbars.push_back(mbar_state());
    m = &b.mbars.back();
    m->off = (size_t)(static_cast<char *>(bar) - b.arena);
  }
  m->count = m->pending = count;
  m->tx = 0;
  m->phase = 0;
  m->init_site = s;
  mbar_store(b, *m);
  tsan_release(bar);
  tsan_ignore_end();
}

uint64_t mbarrier_arrive(void *bar, unsigned count, unsigned tx_bytes, bool expect, site s) {
  const char *what = expect ? "mbarrier.arrive.expect_tx" : "mbarrier.arrive";
  fiber &f = *current_fiber(what);
  worker &w = *tl_worker;
  tsan_ignore_begin();
  mbar_state &m = mbar_get(w, f, bar, what, s);
  if (count < 1 || count > (unsigned)kMbarMax)
    fail_in_kernel(w, f,
                   format("%s at %s: %s with count %u (1..%d)", thread_name(f).c_str(),
                          where(s).c_str(), what, count, kMbarMax));
  if (count > m.pending)
    fail_in_kernel(w, f,
                   format("%s at %s: %s: more arrivals than pending: %u arrival(s) on the "
                          "mbarrier at shared offset 0x%zx (initialised at %s with count %u), "
                          "which has %u pending in phase %u (tx-count %d)",
                          thread_name(f).c_str(), where(s).c_str(), what, count, m.off,
                          where(m.init_site).c_str(), m.count, m.pending, m.phase, m.tx));
  if (expect) {
    if ((int64_t)m.tx + tx_bytes > kMbarMax)
      fail_in_kernel(
          w, f,
          format("%s at %s: %s of %u bytes takes the tx-count (%d) past %d", thread_name(f).c_str(),
                 where(s).c_str(), what, tx_bytes, m.tx, kMbarMax));
    m.tx += (int32_t)tx_bytes;
  }
  uint64_t token = (uint64_t)m.phase;
  m.pending -= count;
  tsan_release(bar);
  mbar_settle(w, f, m, what, s);
  tsan_ignore_end();
  return token;
}

void mbarrier_expect_tx(void *bar, unsigned bytes, site s) {
  fiber &f = *current_fiber("mbarrier.expect_tx");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  mbar_state &m = mbar_get(w, f, bar, "mbarrier.expect_tx", s);
  if ((int64_t)m.tx + bytes > kMbarMax)
    fail_in_kernel(w, f,
                   format("%s at %s: mbarrier.expect_tx of %u bytes takes the tx-count (%d) past "
                          "%d",
                          thread_name(f).c_str(), where(s).c_str(), bytes, m.tx, kMbarMax));
  m.tx += (int32_t)bytes;
  mbar_settle(w, f, m, "mbarrier.expect_tx", s);
  tsan_ignore_end();
}

void mbarrier_complete_tx(void *bar, unsigned bytes, site s) {
  fiber &f = *current_fiber("mbarrier.complete_tx");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  mbar_state &m = mbar_get(w, f, bar, "mbarrier.complete_tx", s);
  if ((int64_t)m.tx - bytes < -kMbarMax)
    fail_in_kernel(w, f,
                   format("%s at %s: mbarrier tx-count underflow: complete_tx of %u bytes takes "
                          "the tx-count (%d) below -%d",
                          thread_name(f).c_str(), where(s).c_str(), bytes, m.tx, kMbarMax));
  m.tx -= (int32_t)bytes;
  tsan_release(bar); /* the transferred data is visible to whoever waits on the phase */
  mbar_settle(w, f, m, "mbarrier.complete_tx", s);
  tsan_ignore_end();
}

bool mbarrier_try_wait_parity(void *bar, unsigned parity, site s) {
  fiber &f = *current_fiber("mbarrier.try_wait.parity");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  for (;;) {
    mbar_get(w, f, bar, "mbarrier.try_wait.parity", s);
    tma_land_on(w, f, bar); /* the TMA loads this barrier tracks land now */
    mbar_state &m = mbar_get(w, f, bar, "mbarrier.try_wait.parity", s);
    /* The phase of parity `parity` is complete when the phase in progress has the other one. */
    if ((m.phase & 1u) != (parity & 1u)) break;
    f.state = F_MBAR;
    f.mb_addr = bar;
    f.mb_parity = parity & 1u;
    f.wait_site = s;
    yield(w, f);
  }
  tsan_acquire(bar);
  tsan_ignore_end();
  return true;
}

void mbarrier_inval(void *bar, site s) {
  fiber &f = *current_fiber("mbarrier.inval");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  mbar_state &m = mbar_get(w, f, bar, "mbarrier.inval", s);
  block_state &b = *f.blk;
  tma_check_no_pending(w, f, bar, "mbarrier.inval", s);
  for (int i = b.first; i < b.first + b.n; ++i)
    if (w.fibers[i].state == F_MBAR && w.fibers[i].mb_addr == bar)
      fail_in_kernel(
          w, f,
          format("%s at %s: mbarrier.inval on the mbarrier at shared offset 0x%zx "
                 "while threads wait on it (thread (%u,%u,%u) at %s)",
                 thread_name(f).c_str(), where(s).c_str(), m.off, w.fibers[i].tid.x,
                 w.fibers[i].tid.y, w.fibers[i].tid.z, where(w.fibers[i].wait_site).c_str()));
  b.mbars.erase(b.mbars.begin() + (&m - b.mbars.data()));
  tsan_ignore_end();
}

void named_barrier(int id, int count, bool sync, site s) {
  const char *what = sync ? "bar.sync" : "bar.arrive";
  fiber &f = *current_fiber(what);
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  if (id < 1 || id > 15)
    fail_in_kernel(w, f,
                   format("%s at %s: %s with barrier id %d: ids 1..15 (0 is __syncthreads')",
                          thread_name(f).c_str(), where(s).c_str(), what, id));
  if (count <= 0 || count % 32 || count > b.nwarps * 32)
    fail_in_kernel(w, f,
                   format("%s at %s: %s %d, %d: the thread count must be a positive multiple of "
                          "32 and at most the block's %d warps x 32",
                          thread_name(f).c_str(), where(s).c_str(), what, id, count, b.nwarps));
  nbar_state &nb = b.nbars[id];
  tsan_release(&b.nbar_token[id][nb.phase & 1]);
  /* The warp arrives once all its lanes have (bar is .aligned: one site for the whole warp);
     the last lane counts the warp. */
  const uint32_t lanes_here = warp_lanes(b, f.warp);
  collective(w, f, sync ? OP_NBAR_SYNC : OP_NBAR_ARRIVE, id * 4096 + count, lanes_here, s,
             lanes_here == 0xffffffffu, [&](fiber **lanes, uint32_t) {
               if (nb.arrived == 0) {
                 nb.count = count;
                 nb.first = s;
                 nb.first_warp = f.warp;
                 nb.first_op = sync ? OP_NBAR_SYNC : OP_NBAR_ARRIVE;
               } else if (nb.count != count) {
                 fail_in_kernel(
                     w, f,
                     format("named barrier %d: mismatched thread counts in %s: warp %d arrives "
                            "with %s %d, %d at %s while warp %d started this instance with %s "
                            "%d, %d at %s (%d of %d threads arrived)",
                            id, block_name(b).c_str(), f.warp, what, id, count, where(s).c_str(),
                            nb.first_warp, op_name(nb.first_op), id, nb.count,
                            where(nb.first).c_str(), nb.arrived, nb.count));
               }
               for (int l = 0; l < 32; ++l)
                 if (lanes[l]) lanes[l]->nb_phase = nb.phase;
               nb.arrived += 32;
               if (nb.arrived >= nb.count) {
                 ++nb.phase;
                 nb.arrived = 0;
                 nb.count = 0;
                 for (int i = b.first; i < b.first + b.n; ++i) {
                   fiber &x = w.fibers[i];
                   if (x.state == F_NBAR && x.nb_id == id) x.state = F_RUN;
                 }
               }
             });
  if (sync) {
    unsigned mine = f.nb_phase;
    while (nb.phase == mine) {
      f.state = F_NBAR;
      f.nb_id = id;
      f.nb_count = count;
      f.wait_site = s;
      yield(w, f);
    }
    tsan_acquire(&b.nbar_token[id][mine & 1]);
  }
  tsan_ignore_end();
}

unsigned elect_sync(unsigned mask, site s) {
  fiber &f = *current_fiber("elect.sync");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  collective(w, f, OP_ELECT, 0, mask, s, false, [&](fiber **lanes, uint32_t m) {
    unsigned leader = (unsigned)__builtin_ctz(m);
    for (int l = 0; l < 32; ++l)
      if (lanes[l]) lanes[l]->out[0] = leader;
  });
  unsigned r = f.out[0];
  tsan_ignore_end();
  return r;
}

void setmaxnreg(int n, bool inc, site s) {
  const char *what = inc ? "setmaxnreg.inc" : "setmaxnreg.dec";
  fiber &f = *current_fiber(what);
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  if (n < 24 || n > 256 || n % 8)
    fail_in_kernel(w, f,
                   format("%s at %s: %s.sync.aligned.u32 %d: the register count must be a "
                          "multiple of 8 in 24..256",
                          thread_name(f).c_str(), where(s).c_str(), what, n));
  int g = f.warp / 4;
  if (4 * g + 3 >= b.nwarps)
    fail_in_kernel(
        w, f,
        format("%s at %s: %s in warpgroup %d, which has only %d warp(s) (block of %d "
               "threads): all 4 warps of a warpgroup must execute it",
               thread_name(f).c_str(), where(s).c_str(), what, g, b.nwarps - 4 * g, b.n));
  collective(
      w, f, OP_SETMAXNREG, n * 2 + (inc ? 1 : 0), 0xffffffffu, s, true, [&](fiber **, uint32_t) {
        if (b.maxnreg.empty()) b.maxnreg.resize((size_t)b.nwarps);
        std::vector<maxnreg_call> &mine = b.maxnreg[f.warp];
        size_t k = mine.size();
        if (k > 0) {
          const maxnreg_call &prev = mine.back();
          if ((inc && n < prev.n) || (!inc && n > prev.n))
            fail_in_kernel(w, f,
                           format("%s at %s in warp %d of %s: %s %d after setmaxnreg.%s %d at %s: "
                                  ".inc must not lower the register count, .dec must not raise it",
                                  what, where(s).c_str(), f.warp, block_name(b).c_str(), what, n,
                                  prev.inc ? "inc" : "dec", prev.n, where(prev.s).c_str()));
        }
        mine.push_back({s, n, inc ? 1 : 0});
        for (int o = 4 * g; o < 4 * g + 4; ++o) {
          if (o == f.warp || b.maxnreg[o].size() <= k) continue;
          const maxnreg_call &c = b.maxnreg[o][k];
          if (c.n != n || c.inc != (inc ? 1 : 0) || !same_site(c.s, s))
            fail_in_kernel(w, f,
                           format("setmaxnreg: the warps of warpgroup %d of %s differ: warp %d "
                                  "executes %s %d at %s where warp %d executed setmaxnreg.%s %d at "
                                  "%s; all 4 warps must execute the same setmaxnreg",
                                  g, block_name(b).c_str(), f.warp, what, n, where(s).c_str(), o,
                                  c.inc ? "inc" : "dec", c.n, where(c.s).c_str()));
        }
      });
  tsan_ignore_end();
}

void cp_async(void *dst, const void *src, int bytes, int src_bytes, site s) {
  fiber &f = *current_fiber("cp.async");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  if (bytes != 4 && bytes != 8 && bytes != 16)
    fail_in_kernel(w, f,
                   format("%s at %s: cp.async of %d bytes (4, 8 or 16)", thread_name(f).c_str(),
                          where(s).c_str(), bytes));
  if (src_bytes < 0 || src_bytes > bytes)
    fail_in_kernel(w, f,
                   format("%s at %s: cp.async src-size %d outside 0..%d", thread_name(f).c_str(),
                          where(s).c_str(), src_bytes, bytes));
  if ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) &
      (uintptr_t)(bytes - 1))
    fail_in_kernel(w, f,
                   format("%s at %s: cp.async of %d bytes with misaligned dst %p or src %p",
                          thread_name(f).c_str(), where(s).c_str(), bytes, dst, src));
  if (!in_arena_alloc(*f.blk, dst, (size_t)bytes))
    fail_in_kernel(w, f,
                   format("%s at %s: cp.async dst %p (%d bytes) is not inside a shared "
                          "memory array of this block",
                          thread_name(f).c_str(), where(s).c_str(), dst, bytes));
  f.cpq.push_back({dst, src, bytes, src_bytes, f.cp_group});
  tsan_ignore_end();
  /* Until a wait retires it, the destination holds poison: a missing wait reads NaN / -1. */
  memset(dst, 0xFF, (size_t)bytes);
}

void cp_async_commit() {
  fiber &f = *current_fiber("cp.async.commit_group");
  tsan_ignore_begin();
  ++f.cp_group;
  tsan_ignore_end();
}

void cp_async_wait(int n) {
  fiber &f = *current_fiber("cp.async.wait_group");
  tsan_ignore_begin();
  /* Committed groups have ids < cp_group; keep the newest n of them in flight. wait_all (n < 0)
     retires everything, the open group included. */
  unsigned limit =
      n < 0 ? f.cp_group + 1 : (f.cp_group >= (unsigned)n ? f.cp_group - (unsigned)n : 0);
  std::vector<cp_req> done, keep;
  for (const cp_req &r : f.cpq) (r.group < limit ? done : keep).push_back(r);
  f.cpq.swap(keep);
  if (n < 0) ++f.cp_group;
  tsan_ignore_end();
  for (const cp_req &r : done) { /* the copies themselves are this thread's accesses */
    memcpy(r.dst, r.src, (size_t)r.src_bytes);
    memset(static_cast<char *>(r.dst) + r.src_bytes, 0, (size_t)(r.bytes - r.src_bytes));
  }
}

/* ---- Hopper TMA: the issue side and the encoder ---------------------------------------------- */
void tma_load(void *dst, const void *map, void *bar, int rank, const int32_t *coords, site s) {
  fiber &f = *current_fiber("cp.async.bulk.tensor");
  worker &w = *tl_worker;
  tsan_ignore_begin();
  block_state &b = *f.blk;
  char what[64];
  snprintf(what, sizeof what, "cp.async.bulk.tensor.%dd", rank);
  if (!map || (reinterpret_cast<uintptr_t>(map) & 63))
    fail_in_kernel(w, f,
                   format("%s at %s: %s with tensor map address %p, which is not 64-byte aligned",
                          thread_name(f).c_str(), where(s).c_str(), what, map));
  tma_op op;
  if (!tma_decode(map, &op.m))
    fail_in_kernel(w, f,
                   format("%s at %s: %s with a tensor map at %p that cuTensorMapEncodeTiled did "
                          "not make (or that was modified since): encode it on the host "
                          "(seqk_tma_encode) and pass it as a __grid_constant__ kernel parameter",
                          thread_name(f).c_str(), where(s).c_str(), what, map));
  if (op.m.rank != rank)
    fail_in_kernel(w, f,
                   format("%s at %s: %s with a tensor map of rank %d", thread_name(f).c_str(),
                          where(s).c_str(), what, op.m.rank));
  uint64_t bytes = op.m.esize;
  for (int d = 0; d < rank; ++d) {
    op.c[d] = coords[d];
    bytes *= op.m.box[d];
  }
  for (int d = rank; d < 5; ++d) op.c[d] = 0;
  op.bytes = (uint32_t)bytes;
  if (!in_arena_alloc(b, dst, (size_t)bytes))
    fail_in_kernel(w, f,
                   format("%s at %s: %s destination %p (%u bytes) is not inside a shared memory "
                          "array of this block",
                          thread_name(f).c_str(), where(s).c_str(), what, dst, op.bytes));
  op.dst_off = (size_t)(static_cast<char *>(dst) - b.arena);
  if (op.dst_off & 127)
    fail_in_kernel(w, f,
                   format("%s at %s: %s destination at shared offset 0x%zx is not 128-byte "
                          "aligned",
                          thread_name(f).c_str(), where(s).c_str(), what, op.dst_off));
  mbar_state &mb = mbar_get(w, f, bar, what, s);
  op.bar_off = mb.off;
  for (const tma_op &o : b.tma)
    if (op.dst_off < o.dst_off + o.bytes && o.dst_off < op.dst_off + op.bytes)
      fail_in_kernel(w, f,
                     format("%s at %s: %s into shared offset 0x%zx (%u bytes) overlaps the "
                            "destination of %s, still in flight",
                            thread_name(f).c_str(), where(s).c_str(), what, op.dst_off, op.bytes,
                            tma_op_text(b, o).c_str()));
  op.s = s;
  op.tid = f.tid;
  b.tma.push_back(op);
  tsan_ignore_end();
  /* Until the copy lands, the destination holds the poison (a NaN as f32, f16 and bf16). */
  for (uint32_t i = 0; i < op.bytes; i += 4) memcpy(static_cast<char *>(dst) + i, &kTmaPoison, 4);
  tsan_release(dst);
  asan_poison(dst, op.bytes); /* under ASan, reading it before the wait aborts at the read */
}

namespace {

uint32_t tma_element_bytes(int dtype) {
  switch (dtype) {
    case CU_TENSOR_MAP_DATA_TYPE_UINT8: return 1;
    case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: return 2;
    case CU_TENSOR_MAP_DATA_TYPE_UINT32:
    case CU_TENSOR_MAP_DATA_TYPE_INT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ: return 4;
    case CU_TENSOR_MAP_DATA_TYPE_UINT64:
    case CU_TENSOR_MAP_DATA_TYPE_INT64:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT64: return 8;
  }
  return 0;
}

CUresult tma_refuse(CUresult r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
CUresult tma_refuse(CUresult r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text why = vformat(fmt, ap);
  va_end(ap);
  add_report(format("cuTensorMapEncodeTiled: %s (%s)", why.c_str(),
                    r == CUDA_ERROR_NOT_SUPPORTED ? "CUDA_ERROR_NOT_SUPPORTED: not emulated"
                                                  : "CUDA_ERROR_INVALID_VALUE"));
  return r;
}

/* cuTensorMapEncodeTiled, with the driver's documented requirements (cuda.h). */
CUresult CUDAAPI encode_tiled(CUtensorMap *map, CUtensorMapDataType dtype, cuuint32_t rank,
                              void *global, const cuuint64_t *dims, const cuuint64_t *strides,
                              const cuuint32_t *box, const cuuint32_t *elem_strides,
                              CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                              CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill fill) {
  const CUresult bad = CUDA_ERROR_INVALID_VALUE, unemulated = CUDA_ERROR_NOT_SUPPORTED;
  if (!map || (reinterpret_cast<uintptr_t>(map) & 63))
    return tma_refuse(bad, "tensorMap %p is not 64-byte aligned", (void *)map);
  if ((int)dtype < 0 || (int)dtype > CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B)
    return tma_refuse(bad, "tensorDataType %d", (int)dtype);
  const uint32_t es = tma_element_bytes((int)dtype);
  if (es == 0) return tma_refuse(unemulated, "packed tensorDataType %d", (int)dtype);
  if (rank < 1 || rank > 5) return tma_refuse(bad, "tensorRank %u (1..5)", rank);
  if ((int)interleave < 0 || (int)interleave > CU_TENSOR_MAP_INTERLEAVE_32B)
    return tma_refuse(bad, "interleave %d", (int)interleave);
  if ((int)swizzle < 0 || (int)swizzle > CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B)
    return tma_refuse(bad, "swizzle %d", (int)swizzle);
  if ((int)l2 < 0 || (int)l2 > CU_TENSOR_MAP_L2_PROMOTION_L2_256B)
    return tma_refuse(bad, "l2Promotion %d", (int)l2);
  if ((int)fill < 0 || (int)fill > CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA)
    return tma_refuse(bad, "oobFill %d", (int)fill);
  if (!global || (reinterpret_cast<uintptr_t>(global) & 15))
    return tma_refuse(bad, "globalAddress %p is not 16-byte aligned", global);
  if (!dims || !box || !elem_strides || (rank > 1 && !strides))
    return tma_refuse(bad, "a null array argument");
  for (uint32_t d = 0; d < rank; ++d) {
    if (dims[d] == 0 || dims[d] > (1ull << 32))
      return tma_refuse(bad, "globalDim[%u] = %llu (1..2^32)", d, (unsigned long long)dims[d]);
    if (box[d] == 0 || box[d] > 256) return tma_refuse(bad, "boxDim[%u] = %u (1..256)", d, box[d]);
    if (elem_strides[d] == 0 || elem_strides[d] > 8)
      return tma_refuse(bad, "elementStrides[%u] = %u (1..8)", d, elem_strides[d]);
  }
  for (uint32_t d = 0; d + 1 < rank; ++d)
    if (strides[d] % 16 || strides[d] >= (1ull << 40))
      return tma_refuse(bad, "globalStrides[%u] = %llu (a multiple of 16 below 2^40)", d,
                        (unsigned long long)strides[d]);
  const uint32_t inner = box[0] * es;
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && inner % 16)
    return tma_refuse(bad, "boxDim[0] x element size = %u bytes, not a multiple of 16", inner);
  const uint32_t span = swizzle == CU_TENSOR_MAP_SWIZZLE_32B    ? 32
                        : swizzle == CU_TENSOR_MAP_SWIZZLE_64B  ? 64
                        : swizzle == CU_TENSOR_MAP_SWIZZLE_NONE ? 0
                                                                : 128;
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && span && inner > span)
    return tma_refuse(bad, "the box's inner dimension (%u bytes) exceeds the %u-byte swizzle",
                      inner, span);
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_32B && swizzle != CU_TENSOR_MAP_SWIZZLE_32B)
    return tma_refuse(bad, "interleave 32B needs swizzle 32B");
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE && rank < 3)
    return tma_refuse(bad, "an interleaved layout needs tensorRank 3..5");
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_32B && (reinterpret_cast<uintptr_t>(global) & 31))
    return tma_refuse(bad, "globalAddress %p is not 32-byte aligned (interleave 32B)", global);
  if (fill == CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA &&
      (dtype == CU_TENSOR_MAP_DATA_TYPE_UINT8 || dtype == CU_TENSOR_MAP_DATA_TYPE_UINT16 ||
       dtype == CU_TENSOR_MAP_DATA_TYPE_UINT32 || dtype == CU_TENSOR_MAP_DATA_TYPE_INT32 ||
       dtype == CU_TENSOR_MAP_DATA_TYPE_UINT64 || dtype == CU_TENSOR_MAP_DATA_TYPE_INT64))
    return tma_refuse(bad, "NaN out-of-bounds fill for an integer tensorDataType");
  /* Valid for the driver; what the emulator does not do is refused here, never approximated. */
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
    return tma_refuse(unemulated, "interleave %d", (int)interleave);
  if (swizzle > CU_TENSOR_MAP_SWIZZLE_128B)
    return tma_refuse(unemulated, "swizzle %d (128B with 32B/64B atoms)", (int)swizzle);
  if (fill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    return tma_refuse(unemulated, "NaN out-of-bounds fill (the GPU's NaN constant)");
  for (uint32_t d = 1; d < rank; ++d)
    if (elem_strides[d] != 1)
      return tma_refuse(unemulated, "elementStrides[%u] = %u (only 1)", d, elem_strides[d]);
  uint64_t w[16] = {0};
  w[0] = kTmaMagic;
  w[1] = (uint64_t)dtype | (uint64_t)rank << 8 | (uint64_t)swizzle << 16 | (uint64_t)es << 24;
  w[2] = (uint64_t) reinterpret_cast<uintptr_t>(global);
  for (uint32_t d = 0; d < rank; ++d) {
    w[3 + d] = dims[d];
    if (d > 0) w[7 + d] = strides[d - 1];
    w[12] |= (uint64_t)(box[d] - 1) << (9 * d);
  }
  w[13] = tma_checksum(w);
  static_assert(sizeof(CUtensorMap) == sizeof w, "CUtensorMap is 128 bytes");
  memcpy(map, w, sizeof w);
  return CUDA_SUCCESS;
}

}   // namespace

void *tensor_map_encode_tiled_entry() { return reinterpret_cast<void *>(&encode_tiled); }

unsigned long long clock_ticks() {
  return (unsigned long long)std::chrono::steady_clock::now().time_since_epoch().count();
}

/* ---- launch --------------------------------------------------------------------------------------- */
cudaError_t max_dyn_smem_for(const void *kernel, size_t *bytes); /* runtime.cpp */
void set_launch_error(cudaError_t err);                          /* runtime.cpp */

static void run_grid(dim3 grid, dim3 block, size_t dyn_smem, void (*thunk)(void *), void *bound,
                     bool cooperative);

void launch_impl(dim3 grid, dim3 block, size_t dyn_smem, cudaStream_t stream, const void *kernel,
                 void (*thunk)(void *), void *bound, void *(*clone)(const void *),
                 void (*destroy)(void *), bool cooperative) {
  /* Streams are serial stand-ins: a launch runs at once, in issue order, unless its stream is
     capturing (stream.h); the configuration is checked now either way, as at a real launch. */
  unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      blocks == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    add_report(format("launch with grid (%u,%u,%u) and block (%u,%u,%u): invalid configuration",
                      grid.x, grid.y, grid.z, block.x, block.y, block.z));
    set_launch_error(cudaErrorInvalidConfiguration);
    return;
  }
  size_t allowed = 48 * 1024;
  (void)max_dyn_smem_for(kernel, &allowed);
  if (dyn_smem > allowed) {
    add_report(
        format("launch with %zu bytes of dynamic shared memory: more than the %zu allowed "
               "(above 48 KB needs cudaFuncSetAttribute(kernel, "
               "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes))",
               dyn_smem, allowed));
    set_launch_error(cudaErrorInvalidValue);
    return;
  }
  if (cooperative && blocks * threads > 16384) {
    add_report(
        format("cooperative launch of %llu blocks x %llu threads: more than the emulated "
               "device can hold at once",
               blocks, threads));
    set_launch_error(cudaErrorCooperativeLaunchTooLarge);
    return;
  }
  if (tl_worker && tl_worker->cur) {
    fprintf(stderr, "seqk_emu: launch from inside a kernel is not supported\n");
    abort();
  }
  if (is_capturing(stream)) {
    std::shared_ptr<void> kept(clone(bound), destroy);
    enqueue(stream, [=] { run_grid(grid, block, dyn_smem, thunk, kept.get(), cooperative); });
    return;
  }
  run_grid(grid, block, dyn_smem, thunk, bound, cooperative);
}

static void run_grid(dim3 grid, dim3 block, size_t dyn_smem, void (*thunk)(void *), void *bound,
                     bool cooperative) {
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  launch_state L;
  L.grid = grid;
  L.block = block;
  L.dyn_smem = dyn_smem;
  L.thunk = thunk;
  L.bound = bound;
  L.cooperative = cooperative;
  L.nblocks = (long)blocks;
  L.sched = current_schedule();

  std::lock_guard<std::mutex> launch_lock(g_launch_mutex);
  blockDim = block;
  gridDim = grid;
  pool *p = get_pool();
  if (cooperative || blocks == 1 || p->nthreads == 0) {
    work(L);
  } else {
    {
      std::lock_guard<std::mutex> lock(p->m);
      p->job = &L;
      p->busy = p->nthreads;
      ++p->gen;
    }
    p->cv.notify_all();
    work(L);
    std::unique_lock<std::mutex> lock(p->m);
    p->done_cv.wait(lock, [&] { return p->busy == 0; });
    p->job = nullptr;
  }
  if (L.failed) set_launch_error(cudaErrorLaunchFailure);
}

}   // namespace seqk_emu

/* ---- C API (report.h) --------------------------------------------------------------------------- */
extern "C" unsigned long seqk_emu_report_count(void) {
  std::lock_guard<std::mutex> lock(seqk_emu::g_report_mutex);
  return seqk_emu::g_report_count;
}
extern "C" const char *seqk_emu_reports(void) {
  std::lock_guard<std::mutex> lock(seqk_emu::g_report_mutex);
  return seqk_emu::g_reports.c_str();
}
extern "C" void seqk_emu_clear_reports(void) {
  std::lock_guard<std::mutex> lock(seqk_emu::g_report_mutex);
  seqk_emu::g_reports.clear();
  seqk_emu::g_report_count = 0;
}
extern "C" const char *seqk_emu_schedule(void) {
  static thread_local char buf[64];
  snprintf(buf, sizeof buf, "%s", seqk_emu::current_schedule().text);
  return buf;
}
extern "C" int seqk_emu_set_schedule(const char *order) {
  seqk_emu::schedule_cfg c;
  if (order == nullptr) {
    std::lock_guard<std::mutex> lock(seqk_emu::g_cfg_mutex);
    seqk_emu::g_schedule_ready = false;
    return 0;
  }
  if (!seqk_emu::parse_schedule(order, &c)) return -1;
  std::lock_guard<std::mutex> lock(seqk_emu::g_cfg_mutex);
  seqk_emu::g_schedule = c;
  seqk_emu::g_schedule_ready = true;
  return 0;
}
