/*
 * static_switch.cuh - runtime values to template constants, in one place. A kernel family lists
 * the values it is instantiated for once (an int_list); the launcher, the tile-shape table and
 * the rounding of a runtime head dim all read that one list, so adding a value is one edit and
 * the set of nvcc instantiations stays what the list says.
 */
#ifndef SEQK_KERNELS_STATIC_SWITCH_CUH
#define SEQK_KERNELS_STATIC_SWITCH_CUH

#include <stdint.h>
#include <type_traits>

namespace seqk_kernels {

/* The instantiated values of a template parameter, ascending. */
template <int... Vs>
struct int_list {};

/* The smallest listed value >= v, or 0 when v exceeds them all. */
template <int... Vs>
constexpr int round_up_in(int_list<Vs...>, int64_t v) {
  int r = 0;
  ((r == 0 && v <= Vs ? (void)(r = Vs) : (void)0), ...);
  return r;
}

/* f(std::integral_constant<int, V>{}) for the listed V equal to v; `fallback` when none is. */
template <typename R, typename F, int... Vs>
R value_switch(int_list<Vs...>, int v, R fallback, F &&f) {
  R r = fallback;
  ((v == Vs ? (void)(r = f(std::integral_constant<int, Vs>{})) : (void)0), ...);
  return r;
}

}   // namespace seqk_kernels

#endif /* SEQK_KERNELS_STATIC_SWITCH_CUH */
