/*
 * sanitizers.h - the AddressSanitizer and ThreadSanitizer hooks the fiber scheduler needs, as
 * no-ops in builds without them. Declared here rather than through the sanitizer headers so the
 * same code builds with gcc (ASan) and clang (ASan or TSan).
 */
#ifndef SEQK_EMU_SANITIZERS_H
#define SEQK_EMU_SANITIZERS_H

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SEQK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEQK_EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SEQK_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEQK_EMU_TSAN 1
#endif
#endif

#if SEQK_EMU_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
}
#define SEQK_EMU_NO_ASAN __attribute__((no_sanitize_address))
namespace seqk_emu {
inline void asan_poison(const void *p, size_t n) { __asan_poison_memory_region(p, n); }
inline void asan_unpoison(const void *p, size_t n) { __asan_unpoison_memory_region(p, n); }
inline __attribute__((always_inline)) void asan_start_switch(void **save, const void *bottom,
                                                             size_t size) {
  __sanitizer_start_switch_fiber(save, bottom, size);
}
inline __attribute__((always_inline)) void asan_finish_switch(void *save, const void **bottom,
                                                              size_t *size) {
  __sanitizer_finish_switch_fiber(save, bottom, size);
}
}   // namespace seqk_emu
#else
#define SEQK_EMU_NO_ASAN
namespace seqk_emu {
inline void asan_poison(const void *, size_t) {}
inline void asan_unpoison(const void *, size_t) {}
inline void asan_start_switch(void **, const void *, size_t) {}
inline void asan_finish_switch(void *, const void **, size_t *) {}
}   // namespace seqk_emu
#endif

#if SEQK_EMU_TSAN
extern "C" {
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
void __tsan_func_exit(void);
}
/* Always inlined: an instrumented helper frame around __tsan_switch_to_fiber would enter on one
   fiber's shadow stack and leave on another's. */
#define SEQK_EMU_TSAN_INLINE inline __attribute__((always_inline))
namespace seqk_emu {
SEQK_EMU_TSAN_INLINE void *tsan_current_fiber() { return __tsan_get_current_fiber(); }
SEQK_EMU_TSAN_INLINE void *tsan_create_fiber() { return __tsan_create_fiber(0); }
SEQK_EMU_TSAN_INLINE void tsan_destroy_fiber(void *f) { __tsan_destroy_fiber(f); }
SEQK_EMU_TSAN_INLINE void tsan_switch(void *f) { __tsan_switch_to_fiber(f, 1 /* no_sync */); }
/* Pops the calling function's own frame from the fiber's shadow stack before it leaves for good. */
SEQK_EMU_TSAN_INLINE void tsan_leave_frame() { __tsan_func_exit(); }
SEQK_EMU_TSAN_INLINE void tsan_acquire(void *a) { __tsan_acquire(a); }
SEQK_EMU_TSAN_INLINE void tsan_release(void *a) { __tsan_release(a); }
/* Emulator bookkeeping is shared by fibers that have no happens-before edge between them on
   purpose (shuffles are not memory barriers), so its own accesses are hidden from TSan. */
SEQK_EMU_TSAN_INLINE void tsan_ignore_begin() { __tsan_ignore_thread_begin(); }
SEQK_EMU_TSAN_INLINE void tsan_ignore_end() { __tsan_ignore_thread_end(); }
}   // namespace seqk_emu
#else
namespace seqk_emu {
inline void *tsan_current_fiber() { return nullptr; }
inline void *tsan_create_fiber() { return nullptr; }
inline void tsan_destroy_fiber(void *) {}
inline void tsan_switch(void *) {}
inline void tsan_leave_frame() {}
inline void tsan_acquire(void *) {}
inline void tsan_release(void *) {}
inline void tsan_ignore_begin() {}
inline void tsan_ignore_end() {}
}   // namespace seqk_emu
#endif

#endif /* SEQK_EMU_SANITIZERS_H */
