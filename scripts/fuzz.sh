#!/usr/bin/env bash
# fuzz.sh [SECONDS] - the libFuzzer run (part of scripts/test.sh): builds tests/fuzz/fuzz_ops.c with
# clang's -fsanitize=fuzzer + ASan + UBSan against the emulated backend (every public entry point on
# CPU and emulated CUDA tensors, the library coverage-instrumented), then fuzzes for SECONDS
# (default $SEQK_FUZZ_SECONDS or 90) starting from the committed corpus tests/fuzz/corpus. New
# inputs go to a scratch directory, not into the repository. A crash (a sanitizer report or a
# violated check) fails the run and is copied to tests/fuzz/corpus/crash-*: commit it, and CTest
# replays it in every build from then on (fuzz_replay, fuzz_replay_cpu).
# Environment: SEQK_FUZZ_BUILD_DIR (default <repo>/build-fuzz), JOBS (default 2),
#              SEQK_FUZZ_SEED (libFuzzer's -seed, default 1, so a CI failure replays; 0 = random),
#              CLANG_CC / CLANG_CXX (default clang-14 / clang++-14, else clang / clang++).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SEQK_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-${SEQK_FUZZ_SECONDS:-90}}
jobs=${JOBS:-2}
cc=${CLANG_CC:-$(command -v clang-14 || command -v clang)}
cxx=${CLANG_CXX:-$(command -v clang++-14 || command -v clang++)}
log() { printf '== fuzz: %s\n' "$*"; }

flags="-fsanitize=fuzzer-no-link -fno-omit-frame-pointer"
log "configure ($cc) in $build"
mkdir -p "$build" # its logs live inside it (git ignores build*/)
CC=$cc CXX=$cxx cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEQK_WITH_CUDA=OFF \
  -DSEQK_EMU=ON -DSEQK_EMU_SANITIZE=address -DSEQK_FUZZ=ON -DSEQK_EMU_CPU_TESTS=OFF \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
log "build"
cmake --build "$build" --target seqk_fuzz -j"$jobs" >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log"; exit 1; }

scratch=$(mktemp -d)
artifacts=$(mktemp -d)
trap 'rm -rf "$scratch" "$artifacts"' EXIT
log "fuzzing for $seconds s from $(ls "$root/tests/fuzz/corpus" | wc -l) corpus inputs"
status=0
(cd "$artifacts" && SEQK_EMU_WORKERS=1 "$build/emu/seqk_fuzz" -max_total_time="$seconds" \
   -seed="${SEQK_FUZZ_SEED:-1}" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" \
   "$scratch" "$root/tests/fuzz/corpus") || status=$?
for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
  [ -e "$f" ] || continue
  cp "$f" "$root/tests/fuzz/corpus/"
  log "kept $(basename "$f") in tests/fuzz/corpus (commit it: CTest replays it from now on)"
  od -An -tx1 "$f" | head -8
done
if [ "$status" -ne 0 ]; then
  log "FAILED (libFuzzer exit $status)"
  exit 1
fi
log "done: no crash in $seconds s ($(ls "$scratch" | wc -l) new inputs explored)"
