#!/usr/bin/env bash
# The main job (README): builds seqk and runs seqk-bench. On a machine with a GPU it validates
# every case against the CPU reference and times it (table on stdout, CSV under bench/results/
# when --csv is given). Without a GPU it says so and runs the correctness pass on the emulated
# build, where the same kernel sources run on the CPU.
#   scripts/bench.sh [--filter TEXT] [--csv FILE] [--repeats N] [--correctness] [--list] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
jobs=$(nproc 2>/dev/null || echo 2)
scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null

status=0
if [ -x build/bench/seqk-bench ]; then
  build/bench/seqk-bench "$@" || status=$?
else
  echo "seqk-bench: this build has no CUDA toolkit"
  status=77
fi
if [ "$status" -eq 77 ]; then
  if [ -x build/bench/seqk-bench-emu ]; then
    echo "no GPU here: running the correctness pass on the emulated build"
    build/bench/seqk-bench-emu "$@"
  else
    echo "no GPU here and no emulated build: nothing to run"
    exit 1
  fi
else
  exit "$status"
fi
