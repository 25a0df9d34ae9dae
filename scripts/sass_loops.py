#!/usr/bin/env python3
"""sass_loops.py - the instruction mix of a kernel's main loop, from nvdisasm's listing.

Reads `nvdisasm -c <cubin>` output (stdin or a file) and, for each kernel whose name matches
--kernel, finds its loops: a branch whose target lies at or before the branch is a loop over
[target, branch]. The main loop is the loop with the most instructions of the --key class
(HMMA for the fused attention, LDG for softmax, FFMA for the RNN dot loop); when several loops
have that many, the smallest is taken: the fused kernel runs full key tiles in their own loop
body and masked or partial tiles in another, and the full-tile body is the one that runs for all
but the last tiles of a row block. Counts are static (each instruction once, as it appears in the
listing), the same measure the FlashAttention-2 anchors were taken with.

Output: one line per kernel, tab-separated: kernel, loop instruction count, then the count of
each class, then instructions per key instruction. --header prints the column names first.
"""
import argparse
import re
import sys

# Instruction classes counted in the loop (opcode prefixes before the first '.').
CLASSES = [
    ("HMMA", ("HMMA",)),
    ("HGMMA", ("HGMMA",)),
    ("LDSM", ("LDSM",)),
    ("LDGSTS", ("LDGSTS",)),
    ("LDG", ("LDG",)),
    ("LDS", ("LDS",)),
    ("STG", ("STG",)),
    ("MUFU", ("MUFU",)),
    ("FFMA", ("FFMA",)),
    ("BAR", ("BAR",)),
    ("SHFL", ("SHFL",)),
    ("BRA", ("BRA",)),
]

FUNC_RE = re.compile(r"^\s*\.text\.(\S+):\s*$")
LABEL_RE = re.compile(r"^\s*(\.L_x_\d+):\s*$")
INSN_RE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
TARGET_RE = re.compile(r"`\(?(\.L_x_\d+)\)?")


def opcode(text):
    """The opcode of an instruction text: predicate guard dropped, modifiers kept."""
    t = text.strip()
    if t.startswith("@"):
        t = t.split(None, 1)[1] if " " in t else ""
    return t.split(None, 1)[0] if t else ""


def parse(lines):
    """Per function: list of (address, opcode, text) and {label: address}."""
    funcs = {}
    cur = None
    pending = []
    for line in lines:
        m = FUNC_RE.match(line)
        if m:
            cur = funcs.setdefault(m.group(1), {"insns": [], "labels": {}})
            pending = []
            continue
        if cur is None:
            continue
        m = LABEL_RE.match(line)
        if m:
            pending.append(m.group(1))
            continue
        m = INSN_RE.match(line)
        if m:
            addr = int(m.group(1), 16)
            for lab in pending:
                cur["labels"][lab] = addr
            pending = []
            cur["insns"].append((addr, opcode(m.group(2)), m.group(2)))
    return funcs


def in_class(op, prefixes):
    base = op.split(".", 1)[0]
    return base in prefixes


def loops(func):
    """(start, end) address ranges of the backward branches' loops."""
    out = []
    for addr, op, text in func["insns"]:
        if op.split(".", 1)[0] not in ("BRA", "JMP"):
            continue
        m = TARGET_RE.search(text)
        if not m:
            continue
        tgt = func["labels"].get(m.group(1))
        if tgt is not None and tgt <= addr:
            out.append((tgt, addr))
    return sorted(set(out))


def mix(func, lo, hi):
    body = [op for a, op, _ in func["insns"] if lo <= a <= hi and op != "NOP"]
    counts = {name: sum(1 for op in body if in_class(op, pre)) for name, pre in CLASSES}
    return len(body), counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("listing", nargs="?", help="nvdisasm -c output (default stdin)")
    ap.add_argument("--kernel", default=".", help="regex on the mangled kernel name")
    ap.add_argument("--key", default="HMMA", help="class that picks the main loop")
    ap.add_argument("--header", action="store_true")
    a = ap.parse_args()
    text = open(a.listing).read().splitlines() if a.listing else sys.stdin.read().splitlines()
    funcs = parse(text)
    keyset = dict(CLASSES)[a.key] if a.key in dict(CLASSES) else (a.key,)
    if a.header:
        print("\t".join(["kernel", "loop", *[n for n, _ in CLASSES], "per_" + a.key]))
    rc = 1
    for name, f in funcs.items():
        if not re.search(a.kernel, name):
            continue
        best = None
        for lo, hi in loops(f):
            n, c = mix(f, lo, hi)
            k = sum(1 for x, op, _ in f["insns"] if lo <= x <= hi and in_class(op, keyset))
            if k == 0:
                continue
            if best is None or k > best[0] or (k == best[0] and n < best[1]):
                best = (k, n, c)
        if best is None:
            print("\t".join([name, "no loop with " + a.key]))
            continue
        k, n, c = best
        print("\t".join([name, str(n), *[str(c[x]) for x, _ in CLASSES], "%.2f" % (n / k)]))
        rc = 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
