#!/usr/bin/env bash
# The test command (README, .ci/run): builds seqk and runs the whole CTest suite (labels cpu,
# emu, gpu), then the CPU tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then
# the emulated-kernel suite under ASan+UBSan and under clang's ThreadSanitizer
# (scripts/emu_sanitizers.sh), then the fuzzer for a bounded time (scripts/fuzz.sh, libFuzzer +
# ASan + UBSan over every entry point; SEQK_FUZZ_SECONDS, default 90). GPU tests exit 77 (skipped)
# where no CUDA device is usable.
#   scripts/test.sh            everything
#   SEQK_TEST_QUICK=1 scripts/test.sh   the plain build only
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/install_deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ -z "${SEQK_TEST_QUICK:-}" ]; then
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$san" \
        -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
        -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -L cpu -E "install_consumer|compare_torch_bindings"
  scripts/emu_sanitizers.sh
  scripts/fuzz.sh "${SEQK_FUZZ_SECONDS:-90}"
fi
