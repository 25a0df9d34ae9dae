#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpus of fuzz_ops.c into tests/fuzz/corpus/: for every entry
point, on the CPU and on CUDA tensors, in each float dtype, one call whose tensors are contiguous,
present, at distinct places in the arena and all of extent 4 in every dim (so shapes often agree
and the calls reach past validation). libFuzzer mutates from there. Re-run after changing the
decoder in fuzz_ops.c; the files are committed."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

EXTENT4 = 0x63   # top bits 011: a small extent, (0x63 & 7) + 1 = 4

def tensor(nd, where):
    # flags 0 (present, the call's device and dtype, its usual ndim), layout 0 (contiguous),
    # nd extents, the place in the arena (not a multiple of 7: no alias)
    return bytes([0, 0]) + bytes([EXTENT4] * nd) + struct.pack("<H", where)

def places():
    w = 0x111
    while True:
        yield w
        w += 0x0a03

# op -> (tensor ndims in decode order, scalar bytes (before/after as the decoder reads them))
def seed(op, device, dtype):
    p = places()
    # entries 13.. are entry 13 and a second byte (fuzz_ops.c: op 13 + byte % 9)
    head = bytes([op]) if op < 13 else bytes([13, op - 13])
    b = struct.pack("<I", 0xC0FFEE + op) + head + bytes([device, dtype])
    if op == 0: b += tensor(2, next(p)) + tensor(2, next(p)) + bytes([3])          # dim -1
    elif op == 1: b += tensor(3, next(p)) + tensor(4, next(p)) + bytes([5])        # 4 heads
    elif op == 2: b += tensor(4, next(p)) + tensor(3, next(p))
    elif op == 3: b += b"".join(tensor(4, next(p)) for _ in range(3)) + bytes([0, 1])
    elif op == 4: b += b"".join(tensor(4, next(p)) for _ in range(3))
    elif op == 5:
        b += b"".join(tensor(4, next(p)) for _ in range(4)) + tensor(3, next(p))
        b += bytes([0, 1, 0, 0, 0, 1])                                       # scale, causal, AUTO
    elif op == 6:
        b += b"".join(tensor(nd, next(p)) for nd in (3, 2, 3, 2, 3, 2))
    elif op == 7: b += b"".join(tensor(nd, next(p)) for nd in (2, 2, 1, 2))
    elif op == 8:
        b += b"".join(tensor(nd, next(p)) for nd in (2, 1, 2, 1, 3))
        b += bytes([1]) + tensor(3, next(p)) + tensor(3, next(p)) + bytes([1, 2, 0])
    elif op == 9: b += bytes([1]) + tensor(1, next(p)) + tensor(2, next(p)) + tensor(3, next(p))
    elif op == 10:
        b += bytes([2]) + b"".join(tensor(nd, next(p)) for nd in (2, 2, 2, 2, 2, 1, 1, 2, 2))
    elif op == 11:
        b += bytes([2, 5, 5, 1, 0, 0])                # LSTM, I = H = 4, one layer
        for _ in range(4): b += b"".join(tensor(nd, next(p)) for nd in (2, 2, 1, 1))
        b += bytes([0]) + b"".join(tensor(nd, next(p)) for nd in (3, 3, 3, 1, 3, 3, 3))
    elif op == 21:                                      # attention_packed: B = 3, H = Hk = 4
        b += b"".join(tensor(nd, next(p)) for nd in (3, 3, 3, 1, 1, 3, 2))
        b += bytes([5, 1, 0, 0, 0, 0, 1])        # scale 1/8, causal, AUTO, no window, bounds 0
    else: b += bytes([2]) + tensor(2, next(p)) + bytes([dtype]) + tensor(2, next(p))
    return b

os.makedirs(OUT, exist_ok=True)
for op in list(range(13)) + [21]:
    for device in (0, 1):
        for dtype in (0, 1, 2):
            with open(os.path.join(OUT, "seed-op%02d-%s-%d" % (op, "cuda" if device else "cpu", dtype)), "wb") as f:
                f.write(seed(op, device, dtype))
