#!/usr/bin/env bash
# seqk-bench's command line as a user meets it (README, "Bench"): --help on stdout with exit 0,
# --list without a GPU, a filter that matches nothing is an error that says so, an unknown
# option is a usage error, and the CSV has the documented columns with every row complete.
#   tests/bench_cli_test.sh EXE...   (seqk-bench and/or seqk-bench-emu; the CSV is checked on the latter)
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
columns="case,check,err_over_tol,ms,ref_ms,rate,unit,ratio,vs,amount,copy_gbs,note,device,commit,date"

for exe in "$@"; do
  [ -x "$exe" ] || fail "$exe is not built"
  name=$(basename "$exe")
  # --help: stdout, exit 0, every option and every case family named
  "$exe" --help >"$tmp/help" 2>"$tmp/help.err" || fail "$name --help exited $?"
  [ ! -s "$tmp/help.err" ] || fail "$name --help wrote to stderr"
  for word in --csv --filter --repeats --correctness --list --help tensor_copy softmax \
      split_heads embedding attention_merge attention mha_forward linear rnn "Exit status"; do
    grep -q -- "$word" "$tmp/help" || fail "$name --help does not mention $word"
  done
  # --list: names only, one per line, each a case the filter picks
  "$exe" --list >"$tmp/list" || fail "$name --list exited $?"
  [ "$(wc -l <"$tmp/list")" -ge 20 ] || fail "$name --list printed $(wc -l <"$tmp/list") cases"
  for family in tensor_copy softmax attention linear rnn; do
    grep -q "^$family " "$tmp/list" || fail "$name --list has no $family case"
  done
  "$exe" --list --filter "rnn " >"$tmp/rnn" || fail "$name --list --filter exited $?"
  [ -s "$tmp/rnn" ] && ! grep -qv "rnn " "$tmp/rnn" || fail "$name --list --filter 'rnn ' kept other cases"
  # a filter that matches nothing: exit 2 and a message naming the filter
  set +e
  "$exe" --filter no-such-case >"$tmp/none" 2>"$tmp/none.err"
  rc=$?
  "$exe" --no-such-option >/dev/null 2>"$tmp/bad.err"
  rc_bad=$?
  set -e
  [ "$rc" = 2 ] || fail "$name --filter no-such-case exited $rc, not 2"
  grep -q "no case matches --filter 'no-such-case'" "$tmp/none.err" || fail "$name: no message for an empty filter"
  [ "$rc_bad" = 2 ] && grep -q "usage:" "$tmp/bad.err" || fail "$name: an unknown option is not a usage error"
done

# The CSV of a run (the emulated build: no GPU needed): the documented header, complete rows.
emu=
for exe in "$@"; do [ "$(basename "$exe")" = seqk-bench-emu ] && emu=$exe; done
if [ -n "$emu" ]; then
  "$emu" --filter softmax --csv "$tmp/out.csv" >/dev/null || fail "$(basename "$emu") --csv exited $?"
  python3 - "$tmp/out.csv" "$columns" <<'PY' || fail "CSV"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == sys.argv[2].split(","), rows[0]
assert len(rows) > 1, "no result rows"
for r in rows[1:]:
    assert len(r) == len(rows[0]), r
    d = dict(zip(rows[0], r))
    assert d["case"].startswith("softmax") and d["check"] == "ok", d
    assert d["device"] == "emulated CPU" and d["commit"] and d["date"].endswith("Z"), d
    float(d["amount"]), float(d["ms"]), float(d["ref_ms"])
PY
fi
echo "bench_cli: ok"
