#!/usr/bin/env bash
# scripts/sass_loops.py on a hand-written listing whose counts are known: an outer loop
# [0x10, 0xc0] holding an inner one [0x60, 0x90]; 3 HMMA outside the inner loop's 2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py() { python3 "$here/../scripts/sass_loops.py" "$here/fixtures/sass_loops_listing.txt" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# main loop by HMMA: the outer one (3 HMMA, 11 instructions without the NOP), 3 loads in flight
# (the FADD reads R4 before the fourth load), 11/3 = 3.67 per HMMA
out=$(py --key HMMA --kernel demo)
[ "$out" = "$(printf 'demo_kernel\t11\t3\t0\t0\t0\t4\t0\t0\t1\t0\t0\t0\t2\t3\t3.67')" ] || fail "outer: $out"
# innermost: the inner loop (2 HMMA, 4 instructions)
out=$(py --key HMMA --kernel demo --innermost)
[ "$out" = "$(printf 'demo_kernel\t4\t2\t0\t0\t0\t0\t0\t0\t1\t0\t0\t0\t1\t0\t2.00')" ] || fail "inner: $out"
# --all: every loop with HMMA, the outer then the inner one
out=$(py --key HMMA --kernel demo --all)
[ "$out" = "$(printf 'demo_kernel\t11\t3\t0\t0\t0\t4\t0\t0\t1\t0\t0\t0\t2\t3\t3.67\ndemo_kernel\t4\t2\t0\t0\t0\t0\t0\t0\t1\t0\t0\t0\t1\t0\t2.00')" ] || fail "all: $out"
echo "sass_loops: ok"
