#!/usr/bin/env bash
# The one-shot GPU run (issue 12): everything a short lent GPU session should check, in one command
# of under 8 minutes on 16 cores, everything under one output folder, a summary table printed last.
#
#   scripts/gpu_check.sh [OUTDIR]    OUTDIR defaults to gpu-check-<UTC date>-<short commit>/
#   scripts/gpu_check.sh --self-test the script's own bookkeeping, no GPU needed (CTest runs it)
#
# Steps, the cheapest and surest first, so that the time budget (SEQK_GPU_CHECK_BUDGET_S, default
# 465 s) cuts only the least predictable ones; a step that no longer fits is recorded as skipped:
#   toolchain, probe  what is installed; the device as the CUDA runtime sees it (a 10-line program)
#                     and as nvidia-smi does (driver version)
#   configure, build  cmake for the card's architecture only (SEQK_CUDA_ARCHITECTURES from its
#                     compute capability, -lineinfo for the sanitizers' reports) into build-gpucheck/
#                     (git-ignored; a rerun on the same machine only rebuilds), then -j$(nproc)
#   emu_*             the emulator's primitive self-tests (emu/tests/emu_*.cu) built by nvcc for the
#                     card and run there; their raw results (SEQK_EMU_DUMP, emu/tests/emu_check.h)
#                     compared bit for bit with the emulator build's. emu_cublas is checked but not
#                     compared (cuBLAS sums in its own order); emu_planted is emulator-only (its bugs
#                     are undefined behaviour on a GPU and it reads the emulator's reports);
#                     emu_wgmma, emu_mbarrier and emu_tma (Hopper) are built for sm_90a, run on a 9.0
#                     card only (emu_tma with kernels/tma_map.cu, its host-side encoder)
#   ctest             the whole CTest suite on the real build: every op's device parity on the card
#   bench, torch      seqk-bench (all cases, bench.csv); bench/compare_torch.py (torch.csv), or
#                     "skipped: no torch"
#   charts            bench/plot.py over both: charts/*.svg
#   memcheck, racecheck  compute-sanitizer on test_attention, test_flash_attention, test_softmax and
#                     test_rnn, all eight at once (after a check that the sanitizer runs here at
#                     all: on some machines it refuses the device), each test stopped cleanly by
#                     SEQK_TEST_MAX_SECONDS before its limit (tests/harness.c). Last, in the budget's
#                     final SEQK_GPU_CHECK_SAN_S (default 100) seconds, kept free for them
# Without a GPU it checks the toolchain, compiles the self-tests for sm_90 (within a minute) and
# exits 77. Otherwise it exits 0 when every step is ok or skipped, 1 when any is not.
# Also: SEQK_GPU_CHECK_BUILD (build folder), SEQK_GPU_CHECK_JOBS (default nproc),
# SEQK_GPU_CHECK_SAN_CHECKS (sets SEQK_TEST_MAX_CHECKS for the sanitizer runs as well).
#
# Committing the results: the first to run this on a GPU copies the tables into the repository,
#   d=bench/results/<UTC date>-<gpu, e.g. h200>-<short commit>; mkdir -p $d
#   cp -r OUTDIR/summary.md OUTDIR/bench.csv OUTDIR/logs/bench.log OUTDIR/torch.csv OUTDIR/logs/torch.log OUTDIR/charts $d/
# and commits them; summary.md's header names the device, driver, CUDA version and commit (and
# whether the working tree differed from it). Logs and dumps stay out unless a step failed.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"

budget=${SEQK_GPU_CHECK_BUDGET_S:-465}
san_reserve=${SEQK_GPU_CHECK_SAN_S:-100}
build=${SEQK_GPU_CHECK_BUILD:-build-gpucheck}
jobs=${SEQK_GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 2)}
selftests=(emu_basics emu_warp emu_cp_async emu_mma emu_cublas emu_wgmma emu_mbarrier emu_tma)
san_tests=(test_attention test_flash_attention test_softmax test_rnn)
t_start=$SECONDS

# ---- bookkeeping: one row per step, summary.md rewritten after each (a killed run keeps it) ----
R_NAME=() R_STATUS=() R_SECS=() R_NOTE=()
header=()
row() { # row NAME STATUS SECONDS NOTE
  R_NAME+=("$1") R_STATUS+=("$2") R_SECS+=("$3") R_NOTE+=("${4//|//}")
  printf '[%4ds] %-28s %-8s %s\n' $((SECONDS - t_start)) "$1" "$2" "$4"
  write_summary
}
write_summary() {
  {
    echo "# seqk GPU check"
    echo
    echo "| | |"
    echo "|---|---|"
    local h
    for h in "${header[@]}"; do echo "| ${h%%=*} | ${h#*=} |"; done
    echo
    echo "| step | status | seconds | note |"
    echo "|---|---|---:|---|"
    local i
    for i in "${!R_NAME[@]}"; do
      echo "| ${R_NAME[i]} | ${R_STATUS[i]} | ${R_SECS[i]} | ${R_NOTE[i]} |"
    done
    echo
    echo "$((SECONDS - t_start)) s in all (budget ${budget} s). ok: passed; FAIL: failed or errors" \
         "reported; timeout: stopped at its limit; skipped: not run here (the note says why)."
  } >"$out/summary.md"
}
# Seconds left before the sanitizers' reserve; a step's limit within them (at least 1: timeout 0
# would mean none).
left() { echo $((budget - san_reserve - (SECONDS - t_start))); }
limit() {
  local l n=$1
  l=$(left)
  if ((l < n)); then n=$((l > 1 ? l : 1)); fi
  echo "$n"
}
# step NAME LIMIT CMD...: CMD's output in logs/NAME.log; sets rc, st (ok/FAIL/timeout/skipped),
# secs and note (empty, or why it stopped).
step() {
  local name=$1 lim
  lim=$(limit "$2")
  shift 2
  rc=0 secs=0 note=""
  if (($(left) < 5)); then
    st=skipped rc=125 note="out of time (budget ${budget} s)"
    return 0
  fi
  local t0=$SECONDS
  timeout -k 5 "$lim" "$@" >"$out/logs/$name.log" 2>&1 || rc=$?
  secs=$((SECONDS - t0))
  case $rc in
    0) st=ok ;;
    77) st=skipped ;;
    124 | 137) st=timeout note="stopped at ${lim} s" ;;
    *) st=FAIL ;;
  esac
}
# The last line of FILE matching REGEX, or nothing.
last() { grep -E "$2" "$1" 2>/dev/null | tail -n 1 || true; }

# compare_dumps EMU GPU: the emulator's and the GPU's SEQK_EMU_DUMP files, record by record; one
# line per differing record to stdout, a one-line verdict last; status 1 when a '=' record (or
# the record structure) differs. '~' records (rounding that is the hardware's own) only count.
compare_dumps() {
  awk '
    FILENAME == ARGV[1] { emu[FNR] = $0; ne = FNR; next }
    {
      ng = FNR
      if ($0 == emu[FNR]) { same++; next }
      split(emu[FNR], a, " ")
      if (a[1] != $1 || a[2] != $2 || a[3] != $3 || a[4] != $4) {
        bad++; print "record " FNR - 1 ": emulator \"" a[1] " " a[2] " " a[3] " " a[4] "\", GPU \"" $1 " " $2 " " $3 " " $4 "\""; next
      }
      split($4, sz, "x"); w = 2 * sz[1]; d = 0
      for (i = 0; i < sz[2]; ++i) d += substr(a[5], i * w + 1, w) != substr($5, i * w + 1, w)
      if ($2 == "~") { rnd++; rnd_el += d } else bad++
      print "record " $1 " (" ($2 == "~" ? "rounding" : "exact") ", line " substr($3, 2) " of the test): " d " of " sz[2] " elements differ"
    }
    END {
      if (ne != ng) { bad++; print ne + 0 " records from the emulator, " ng + 0 " from the GPU" }
      v = same + 0 " of " ng + 0 " buffers bit-identical"
      if (bad) v = v "; " bad " exact buffers DIFFER"
      if (rnd) v = v "; " rnd " mma buffers differ in rounding (" rnd_el " elements)"
      print v
      exit (bad > 0)
    }' "$1" "$2"
}

# ---- --self-test: the bookkeeping above on made-up steps, in a scratch folder -------------------
if [ "${1:-}" = "--self-test" ]; then
  bash -n "$0"
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  mkdir -p "$out/logs"
  header=("commit=self-test")
  budget=30 san_reserve=0
  fails=0
  expect() { [ "$st" = "$1" ] || { echo "self-test: $2: got $st, want $1"; fails=$((fails + 1)); }; }
  step pass 10 true; expect ok "a passing step"
  step fail 10 false; expect FAIL "a failing step"
  step skip 10 sh -c 'exit 77'; expect skipped "exit 77"
  step slow 1 sleep 10; expect timeout "a step past its limit"
  budget=0
  step late 10 true; expect skipped "a step past the budget"
  printf '0 = L1 4x2 0000803f0000c03f\n1 ~ L2 4x1 00000040\n' >"$out/a"
  cp "$out/a" "$out/b"
  compare_dumps "$out/a" "$out/b" >/dev/null && st=ok || st=FAIL; expect ok "identical dumps"
  sed 's/00000040/01000040/' "$out/a" >"$out/b"
  compare_dumps "$out/a" "$out/b" >/dev/null && st=ok || st=FAIL; expect ok "a rounding difference"
  sed 's/0000c03f/0000c13f/' "$out/a" >"$out/b"
  compare_dumps "$out/a" "$out/b" >/dev/null && st=ok || st=FAIL; expect FAIL "an exact difference"
  head -n 1 "$out/a" >"$out/b"
  compare_dumps "$out/a" "$out/b" >/dev/null && st=ok || st=FAIL; expect FAIL "a missing record"
  row note ok 0 "a | in a note"
  grep -q '^| note | ok | 0 | a / in a note |$' "$out/summary.md" || { echo "self-test: summary row"; fails=$((fails + 1)); }
  ((fails == 0)) && echo "gpu_check.sh self-test: ok" && exit 0
  exit 1
fi

# ---- the output folder and the header ------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
date_utc=$(date -u +%Y-%m-%dT%H%MZ)
out=${1:-gpu-check-$date_utc-$commit} # OUTDIR relative to where the script was called from
[[ -n "${1:-}" && "$out" != /* ]] && out=$caller/$out
mkdir -p "$out/logs" "$out/emu"
out=$(cd "$out" && pwd)
changed=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
commit_desc="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
((changed > 0)) && commit_desc="$commit_desc, with $changed tracked files changed"
cuda_desc=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\), \(V[0-9.]*\).*/\1 (\2)/p')
header=("date (UTC)=$date_utc" "commit=$commit_desc" "CUDA toolkit=${cuda_desc:-no nvcc}"
        "host=$(nproc 2>/dev/null) cores, $(uname -sr)")
write_summary

# ---- toolchain ----------------------------------------------------------------------------------
missing="" notes=""
for t in cmake ctest nvcc; do command -v "$t" >/dev/null || missing="$missing $t"; done
sanitizer=$(command -v compute-sanitizer || true)
[ -z "$sanitizer" ] && notes="$notes; no compute-sanitizer (sanitizer steps skipped)"
have_torch=0
if python3 -c 'import torch' >/dev/null 2>&1; then have_torch=1; else notes="$notes; no torch"; fi
command -v nvidia-smi >/dev/null || notes="$notes; no nvidia-smi"
if [ -n "$missing" ]; then
  row toolchain FAIL 0 "missing:$missing$notes"
else
  row toolchain ok 0 "cmake, ctest, nvcc ${cuda_desc%% *}${notes}"
fi

# ---- probe: the runtime's view (compiled here: no nvidia-smi needed), nvidia-smi for the driver ---
cat >"$out/emu/probe.cu" <<'EOF'
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>
__global__ void touch(int *p) { p[threadIdx.x] = (int)threadIdx.x; }
int main(int argc, char **argv) {
  int n = 0, drv = 0, rt = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  printf("driver_api=%d\nruntime=%d\ncount=%d\n", drv, rt, e == cudaSuccess ? n : 0);
  if (e != cudaSuccess || n == 0) {
    printf("why=%s\n", e != cudaSuccess ? cudaGetErrorString(e) : "no device");
    return 77;
  }
  cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  printf("name=%s\ncc=%d%d\nsms=%d\nmem_gib=%.0f\n", p.name, p.major, p.minor,
         p.multiProcessorCount, p.totalGlobalMem / 1073741824.0);
  if (argc > 1 && !strcmp(argv[1], "--kernel")) { /* for compute-sanitizer's own check */
    int *d = nullptr;
    if (cudaMalloc(&d, 32 * sizeof(int)) != cudaSuccess) return 1;
    touch<<<1, 32>>>(d);
    if (cudaDeviceSynchronize() != cudaSuccess || cudaFree(d) != cudaSuccess) return 1;
  }
  return 0;
}
EOF
probe="$out/emu/probe"
step probe 60 bash -c "nvcc -o '$probe' '$out/emu/probe.cu' && '$probe'"
get() { sed -n "s/^$1=//p" "$out/logs/probe.log" | head -n 1; }
have_gpu=0 arch=90
if [ "$st" = ok ]; then
  have_gpu=1 arch=$(get cc)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)
  [ -z "$driver" ] && driver=$(sed -n 's/.*Kernel Module *\([0-9.]*\).*/\1/p' /proc/driver/nvidia/version 2>/dev/null || true)
  header+=("device=$(get name), sm_$arch, $(get sms) SMs, $(get mem_gib) GiB"
           "driver=${driver:-unknown}, CUDA driver API $(get driver_api), runtime $(get runtime)"
           "build=$build, SEQK_CUDA_ARCHITECTURES=$arch")
  row probe ok "$secs" "$(get name), sm_$arch"
elif [ "$st" = skipped ]; then
  header+=("device=none ($(get why))")
  row probe skipped "$secs" "no CUDA device: $(get why)"
else
  header+=("device=unknown (the probe failed)")
  row probe "$st" "$secs" "the probe did not build or run: logs/probe.log"
fi

# ---- the emulator's self-tests, built by nvcc for the card (or for sm_90 without one) ---------------
t0=$SECONDS
lim=$(limit 120) nvcc_failed="" not_here=""
for t in "${selftests[@]}"; do
  rm -f "$out/emu/$t"
  lib=() a=$arch
  [ "$t" = emu_cublas ] && lib=(-lcublas)
  [ "$t" = emu_tma ] && lib=(kernels/tma_map.cu)
  if [ "$t" = emu_wgmma ] || [ "$t" = emu_mbarrier ] || [ "$t" = emu_tma ]; then # Hopper: sm_90a, 9.0 only
    [ "$arch" = 90 ] || { not_here="$not_here $t"; continue; }
    a=90a
  fi
  timeout -k 5 "$lim" nvcc -std=c++17 -arch="sm_$a" -Ikernels -Iemu/tests "emu/tests/$t.cu" "${lib[@]}" \
    -o "$out/emu/$t" >"$out/logs/nvcc-$t.log" 2>&1 &
done
wait
for t in "${selftests[@]}"; do
  [[ " $not_here " == *" $t "* ]] || [ -x "$out/emu/$t" ] || nvcc_failed="$nvcc_failed $t"
done
if [ -n "$nvcc_failed" ]; then
  row "emu self-tests: nvcc" FAIL $((SECONDS - t0)) "sm_$arch: not built:$nvcc_failed (logs/nvcc-*.log)"
else
  row "emu self-tests: nvcc" ok $((SECONDS - t0)) "${#selftests[@]} built for sm_$arch"
fi

if ((have_gpu == 0)); then
  for s in configure build "${selftests[@]}" ctest bench torch memcheck racecheck; do
    row "$s" skipped 0 "no GPU"
  done
  echo
  cat "$out/summary.md"
  echo "(everything under $out)"
  [[ " ${R_STATUS[*]} " == *" FAIL "* ]] && exit 1
  exit 77
fi

# ---- configure and build ------------------------------------------------------------------------
gen=()
[ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null && gen=(-G Ninja)
step configure 90 cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSEQK_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_FLAGS=-lineinfo
row configure "$st" "$secs" "${note:-SEQK_CUDA_ARCHITECTURES=$arch}"
built=0
if [ "$st" = ok ]; then
  step build 300 cmake --build "$build" -j"$jobs"
  row build "$st" "$secs" "${note:-$jobs jobs}"
  [ "$st" = ok ] && built=1
else
  row build skipped 0 "configure failed: logs/configure.log"
fi

# ---- self-tests on the card against the emulator, bit for bit -------------------------------------
for t in "${selftests[@]}"; do
  if [[ " $nvcc_failed " == *" $t "* ]]; then row "$t" skipped 0 "nvcc failed"; continue; fi
  if [[ " $not_here " == *" $t "* ]]; then row "$t" skipped 0 "needs a 9.0 card (sm_90a)"; continue; fi
  : >"$out/emu/$t.gpu.dump" # exists even when the test stops before its first result
  : >"$out/emu/$t.emu.dump"
  step "$t" 60 env SEQK_EMU_DUMP="$out/emu/$t.gpu.dump" "$out/emu/$t"
  gpu_note="GPU: $(last "$out/logs/$t.log" 'passed, [0-9]+ failed')"
  if [ "$st" != ok ]; then row "$t" "$st" "$secs" "${note:-$gpu_note}"; continue; fi
  if [ "$t" = emu_cublas ]; then row "$t" ok "$secs" "$gpu_note; not compared: cuBLAS sums in its own order"; continue; fi
  if ((built == 0)); then row "$t" ok "$secs" "$gpu_note; not compared: no emulator build"; continue; fi
  rc=0
  SEQK_EMU_DUMP="$out/emu/$t.emu.dump" timeout -k 5 "$(limit 60)" "$build/emu/$t" \
    >"$out/logs/$t.emu.log" 2>&1 || rc=$?
  if ((rc != 0)); then row "$t" FAIL "$secs" "$gpu_note; the emulator build failed: logs/$t.emu.log"; continue; fi
  rc=0
  compare_dumps "$out/emu/$t.emu.dump" "$out/emu/$t.gpu.dump" >"$out/emu/$t.compare" || rc=$?
  ((rc == 0)) && st=ok || st=FAIL
  row "$t" "$st" "$secs" "$gpu_note; $(tail -n 1 "$out/emu/$t.compare")"
done

if ((built == 0)); then
  for s in ctest bench torch memcheck racecheck; do row "$s" skipped 0 "no build"; done
else
  # ---- the whole suite on the real build ----------------------------------------------------------
  step ctest 240 ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 200
  cp "$build/Testing/Temporary/LastTest.log" "$out/logs/ctest-LastTest.log" 2>/dev/null || true
  parity=$(awk '/^[0-9]+\/[0-9]+ Testing: / { emu = $3 ~ /^emu_/ }
                /^device parity:/ && !emu { n += $(NF - 1) } END { print n + 0 }' \
           "$out/logs/ctest-LastTest.log" 2>/dev/null || echo 0)
  [ "$st" = skipped ] || note="${note:-$(last "$out/logs/ctest.log" 'tests passed')}; device parity: $parity cases checked on the card (outside emu_*)"
  row ctest "$st" "$secs" "$note"

  # ---- bench and the torch comparison ------------------------------------------------------------
  step bench 180 "$build/bench/seqk-bench" --csv "$out/bench.csv"
  row bench "$st" "$secs" "${note:-$(last "$out/logs/bench.log" '^[0-9]+ cases:|no CUDA device'); logs/bench.log, bench.csv}"
  if ((have_torch == 0)); then
    row torch skipped 0 "skipped: no torch"
  else
    step torch 120 env PYTHONUNBUFFERED=1 python3 bench/compare_torch.py --lib "$build/libseqk.so" \
      --csv "$out/torch.csv"
    row torch "$st" "$secs" "${note:-torch.csv, logs/torch.log}"
  fi
  # Charts of both (bench/plot.py: SVG, standard library only).
  torch_csv=()
  [ -s "$out/torch.csv" ] && torch_csv=(--torch "$out/torch.csv")
  step charts 30 python3 bench/plot.py "$out/bench.csv" "${torch_csv[@]}" --out "$out/charts"
  row charts "$st" "$secs" "${note:-charts/*.svg, logs/charts.log}"

  # ---- compute-sanitizer: all eight runs at once, in what is left of the budget ---------------------
  san_ok=0
  if [ -z "$sanitizer" ]; then
    row compute-sanitizer skipped 0 "not installed"
  else
    # Some machines' sanitizer refuses the device ("Device not supported"): find out in seconds.
    san_reserve=0
    step compute-sanitizer 60 "$sanitizer" --tool memcheck --error-exitcode 86 "$probe" --kernel
    if [ "$st" = ok ]; then
      san_ok=1
      row compute-sanitizer ok "$secs" "runs here: memcheck on the probe's kernel, 0 errors"
    else
      row compute-sanitizer skipped "$secs" "does not run here: $(grep -m 1 -iE 'error|not supported' "$out/logs/compute-sanitizer.log" || echo "status $rc")"
    fi
  fi
  if ((san_ok)); then
    lim=$((budget - (SECONDS - t_start) - 10))
    if ((lim < 20)); then
      row "memcheck, racecheck" skipped 0 "out of time (budget ${budget} s)"
    else
      for tool in memcheck racecheck; do
        for t in "${san_tests[@]}"; do
          (
            export SEQK_TEST_MAX_SECONDS=$((lim > 45 ? lim - 25 : lim / 2))
            [ -n "${SEQK_GPU_CHECK_SAN_CHECKS:-}" ] && export SEQK_TEST_MAX_CHECKS=$SEQK_GPU_CHECK_SAN_CHECKS
            t0=$SECONDS rc=0
            timeout -k 5 "$lim" "$sanitizer" --tool "$tool" --error-exitcode 86 --print-limit 20 \
              "$build/tests/$t" >"$out/logs/$tool-$t.log" 2>&1 || rc=$?
            echo "$rc $((SECONDS - t0))" >"$out/logs/$tool-$t.rc"
          ) &
        done
      done
      wait
      for tool in memcheck racecheck; do
        for t in "${san_tests[@]}"; do
          read -r rc secs <"$out/logs/$tool-$t.rc" || rc=1 secs=0
          log="$out/logs/$tool-$t.log"
          summary=$(last "$log" 'ERROR SUMMARY' | sed 's/^=* *//')
          bounded=$(last "$log" '^stopped after' | sed 's/ (SEQK_TEST.*//')
          case $rc in
            0) st=ok ;;
            86) st=FAIL summary="sanitizer errors: $summary" ;;
            124 | 137) st=timeout ;;
            *) st=FAIL summary="test status $rc: $(last "$log" 'passed, [0-9]+ failed'); $summary" ;;
          esac
          row "$tool $t" "$st" "$secs" "$summary${bounded:+; bounded: $bounded}"
        done
      done
    fi
  fi
fi

echo
cat "$out/summary.md"
echo "(everything under $out)"
[[ " ${R_STATUS[*]} " == *" FAIL "* || " ${R_STATUS[*]} " == *" timeout "* ]] && exit 1
exit 0
