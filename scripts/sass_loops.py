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

With --innermost only loops that hold no other loop are candidates (the persistent RNN kernel's
dot loops sit inside its step loop, whose gate math has FFMAs of its own).

Output: one line per kernel, tab-separated: kernel, loop instruction count, the count of each
class, "inflight" (the most 16-byte global loads, LDG.E.128, the loop issues back to back before
any instruction reads one of their registers and before any branch: loads in flight per thread),
then instructions per key instruction. --header prints the column names first.
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


REG_RE = re.compile(r"\bR(\d+)(\.64)?")


def operands(text):
    """(opcode, destination registers, source registers) of an instruction text."""
    t = text.strip()
    if t.startswith("@"):
        t = t.split(None, 1)[1] if " " in t else ""
    op, _, rest = t.partition(" ")
    parts = rest.split(",", 1)
    width = 4 if ".128" in op else 2 if ".64" in op else 1
    dst = set()
    m = re.match(r"\s*R(\d+)\b", parts[0])
    stores = op.startswith(("ST", "BRA", "RED", "ATOM"))
    if m and not stores:
        dst = set(range(int(m.group(1)), int(m.group(1)) + width))
    src = set()
    for r in REG_RE.finditer(rest if stores or not dst else (parts[1] if len(parts) > 1 else "")):
        n = int(r.group(1))
        src |= {n, n + 1} if r.group(2) else {n}
    return op, dst, src


def loads_in_flight(func, lo, hi):
    """The longest run of LDG.E.128 issued before any of their results is read (no branch)."""
    body = [t for a, op, t in func["insns"] if lo <= a <= hi]
    best = 0
    for i, t in enumerate(body):
        op, dst, _ = operands(t)
        if not (op.startswith("LDG.") and ".128" in op):
            continue
        pending, run = set(dst), 1
        for u in body[i + 1:]:
            uop, udst, usrc = operands(u)
            if uop.startswith("BRA") or usrc & pending:
                break
            if uop.startswith("LDG.") and ".128" in uop:
                run += 1
                pending |= udst
            else:
                pending -= udst
        best = max(best, run)
    return best


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
    ap.add_argument("--innermost", action="store_true", help="only loops without inner loops")
    ap.add_argument("--all", action="store_true",
                    help="every loop with a key instruction, in address order, not just the main one")
    a = ap.parse_args()
    text = open(a.listing).read().splitlines() if a.listing else sys.stdin.read().splitlines()
    funcs = parse(text)
    keyset = dict(CLASSES)[a.key] if a.key in dict(CLASSES) else (a.key,)
    if a.header:
        print("\t".join(["kernel", "loop", *[n for n, _ in CLASSES], "inflight", "per_" + a.key]))
    rc = 1
    for name, f in funcs.items():
        if not re.search(a.kernel, name):
            continue
        best = None
        found = []
        ranges = loops(f)
        for lo, hi in ranges:
            if a.innermost and any(lo <= x and y <= hi and (x, y) != (lo, hi) for x, y in ranges):
                continue
            n, c = mix(f, lo, hi)
            k = sum(1 for x, op, _ in f["insns"] if lo <= x <= hi and in_class(op, keyset))
            if k == 0:
                continue
            row = (k, n, c, loads_in_flight(f, lo, hi))
            found.append(row)
            if best is None or k > best[0] or (k == best[0] and n < best[1]):
                best = row
        if best is None:
            print("\t".join([name, "no loop with " + a.key]))
            continue
        for k, n, c, inflight in found if a.all else [best]:
            print("\t".join([name, str(n), *[str(c[x]) for x, _ in CLASSES], str(inflight),
                             "%.2f" % (n / k)]))
        rc = 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
