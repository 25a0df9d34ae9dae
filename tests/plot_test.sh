#!/usr/bin/env bash
# bench/plot.py on hand-made CSVs (tests/fixtures/bench_sample.csv and torch_sample.csv: made-up
# but plausible numbers, not measurements): which charts it draws, how many lines each holds, the
# decode chart's copy-bandwidth line; a CSV without timings (the emulated build's correctness
# pass) draws nothing and exits 3; a missing file exits 2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/fixtures
plot() { python3 "$here/../bench/plot.py" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Per SVG in $1, sorted: its name, how many data series (<g class="series">), the labels of its
# reference lines (<g class="reference">); fails when a file does not parse as XML or a line's
# point or a text's anchor lies outside the viewBox.
svg_summary() {
  python3 - "$1" <<'EOF'
import os, sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
for name in sorted(os.listdir(sys.argv[1])):
    root = ET.parse(os.path.join(sys.argv[1], name)).getroot()
    _, _, w, h = (float(v) for v in root.get("viewBox").split())
    points = [tuple(map(float, p.split(","))) for e in root.iter(ns + "polyline")
              for p in e.get("points").split()]
    points += [(float(e.get("x")), float(e.get("y"))) for e in root.iter(ns + "text")]
    outside = [p for p in points if not (0 <= p[0] <= w and 0 <= p[1] <= h)]
    if outside:
        sys.exit(f"{name}: outside the {w:g}x{h:g} viewBox: {outside[:3]}")
    groups = list(root.iter(ns + "g"))
    series = sum(g.get("class") == "series" for g in groups)
    references = [g.get("data-label") for g in groups if g.get("class") == "reference"]
    print(name, series, *references)
EOF
}

# The sample with torch's numbers: two attention sweep charts (fused, unfused, sdpa flash, sdpa
# efficient), decode (seqk, unfused and the copy bandwidth), the LSTM batch chart (AUTO,
# per-step, cuDNN, nn.LSTM). Not charted: the FAIL row, llm.c, softmax, torch's grouped-heads row.
log=$(plot "$fixtures/bench_sample.csv" --torch "$fixtures/torch_sample.csv" --out "$out/charts") ||
  fail "sample with torch: exit $?"
expected="attention_f16_D128.svg 4
attention_f16_D128_causal.svg 4
decode_f16_D128.svg 2 device copy bandwidth (3950 GB/s)
rnn_lstm_f32_H256_T100.svg 4"
got=$(svg_summary "$out/charts") || fail "sample with torch: $got"
[ "$got" = "$expected" ] || fail "sample with torch: charts and their lines: $got"
for f in "$out"/charts/*.svg; do
  [ -s "$f" ] || fail "empty: $f"
  grep -q "fixture (not measured) · commit fixture · 2026-12-03T00:00:00Z" "$f" ||
    fail "$f: no device, commit and date footer"
  grep -qxF "$f" <<<"$log" || fail "$f not printed: $log"
done
summary="plot.py: 4 charts written to $out/charts"
summary+=" (skipped 1 bench row and 1 torch row whose check is not ok)"
grep -qxF "$summary" <<<"$log" || fail "summary: $log"

# Without torch: seqk's own lines only.
plot "$fixtures/bench_sample.csv" --out "$out/plain" >/dev/null || fail "sample: exit $?"
got=$(svg_summary "$out/plain" | cut -d' ' -f1,2) || fail "sample: $got"
expected="attention_f16_D128.svg 2
attention_f16_D128_causal.svg 2
decode_f16_D128.svg 2
rnn_lstm_f32_H256_T100.svg 3"
[ "$got" = "$expected" ] || fail "sample: charts and their lines: $got"

# No timings (every ms 0): a message, exit 3, nothing written.
rc=0
msg=$(plot "$fixtures/bench_untimed.csv" --out "$out/untimed" 2>&1) || rc=$?
[ "$rc" = 3 ] || fail "untimed: exit $rc: $msg"
expected="plot.py: $fixtures/bench_untimed.csv has no timings"
expected+=" (a correctness pass, e.g. the emulated build): nothing to draw"
[ "$msg" = "$expected" ] || fail "untimed: $msg"
[ ! -e "$out/untimed" ] || fail "untimed: wrote $(ls -A "$out/untimed")"

# A missing file: exit 2.
rc=0
msg=$(plot "$out/none.csv" --out "$out/missing" 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "missing file: exit $rc: $msg"
[[ "$msg" == "plot.py: $out/none.csv: "* ]] || fail "missing file: $msg"
[ ! -e "$out/missing" ] || fail "missing file: wrote $out/missing"

# PNG: through matplotlib where installed, else exit 2 naming the package.
rc=0
msg=$(plot "$fixtures/bench_sample.csv" --out "$out/png" --format png 2>&1) || rc=$?
if python3 -c "import matplotlib" 2>/dev/null; then
  [ "$rc" = 0 ] || fail "png: exit $rc: $msg"
  [ "$(ls "$out/png" | grep -c '\.png$')" = 4 ] || fail "png: $(ls "$out/png")"
else
  [ "$rc" = 2 ] || fail "png without matplotlib: exit $rc: $msg"
  [[ "$msg" == *python3-matplotlib* ]] || fail "png without matplotlib: $msg"
fi
echo "plot: ok"
