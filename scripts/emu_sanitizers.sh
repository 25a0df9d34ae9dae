#!/usr/bin/env bash
# emu_sanitizers.sh - the emulated CUDA suite (CTest label `emu`) under sanitizers:
#   1. AddressSanitizer + UndefinedBehaviorSanitizer, built with gcc;
#   2. ThreadSanitizer with fiber annotations, built with clang 14 (gcc's TLS guards give false
#      reports), one emulator worker thread per test so TSan tells every fiber apart.
# Planted bugs are expected to be caught there too: the shared-memory overflow test passes only
# on ASan's use-after-poison report, the missing-__syncthreads test only on TSan's race report.
#
# Usage: scripts/emu_sanitizers.sh [asan|tsan|all]   (default all)
# Environment: SEQK_SAN_BUILD_DIR (default <repo>/build-sanitizers), JOBS (default 2),
#              CLANG_CC / CLANG_CXX (default clang-14 / clang++-14, else clang / clang++).
# Needs the CUDA toolkit's headers (cuda_fp16.h), as every emulated build does, but no GPU and
# no nvcc run: the real CUDA library is not built here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SEQK_SAN_BUILD_DIR:-$root/build-sanitizers}
jobs=${JOBS:-2}
which=${1:-all}

log() { printf '== emu_sanitizers: %s\n' "$*"; }

# Configure with the CPU-only project (no nvcc) and build just the emulated suite.
build_and_test() {
  local name=$1 cc=$2 cxx=$3 san=$4
  local dir=$build/$name start=$SECONDS
  log "$name: configure ($cc / $cxx, SEQK_EMU_SANITIZE=$san) in $dir"
  CC=$cc CXX=$cxx cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DSEQK_WITH_CUDA=OFF \
    -DSEQK_EMU=ON -DSEQK_EMU_SANITIZE="$san" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  if ! grep -q "emulated CUDA backend" "$dir.configure.log"; then
    cat "$dir.configure.log"
    log "$name: the emulated backend was not configured (no CUDA toolkit headers?)"
    return 1
  fi
  log "$name: build"
  cmake --build "$dir" --target seqk_emu_tests -j"$jobs"
  log "$name: test"
  (cd "$dir" && ctest -L emu -j"$jobs" --output-on-failure --no-tests=error)
  log "$name: done in $((SECONDS - start)) s"
}

find_clang() {
  local cc=${CLANG_CC:-} cxx=${CLANG_CXX:-}
  if [[ -z $cc ]]; then
    if command -v clang-14 >/dev/null; then cc=clang-14 cxx=clang++-14
    elif command -v clang >/dev/null; then cc=clang cxx=clang++
    elif command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
      log "installing clang-14 (Debian) for the TSan job"
      apt-get update -qq >/dev/null && apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
      cc=clang-14 cxx=clang++-14
    else
      log "no clang found: the TSan job needs clang 14 (Debian package clang-14)"
      return 1
    fi
  fi
  CLANG_CC=$cc CLANG_CXX=$cxx
}

total=$SECONDS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}
mkdir -p "$build"

case $which in
  asan | all) build_and_test asan "${CC_GCC:-gcc}" "${CXX_GCC:-g++}" address ;;&
  tsan | all) find_clang || exit 1; build_and_test tsan "$CLANG_CC" "$CLANG_CXX" thread ;;
  asan) ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
log "all sanitizer jobs passed in $((SECONDS - total)) s"
