#!/usr/bin/env python3
"""plot.py - charts from seqk-bench's CSV (and, optionally, bench/compare_torch.py's).

Draws one chart per file:
  attention_<dtype>_D<D>[_causal].svg   the FlashAttention-style sweep (`attention <dtype> B=..
      H=../.. Sq=S Sk=S D=..[ causal]`; not decode, not llm.c): TFLOP/s against the sequence
      length S (log2 axis), one line per path: seqk fused (AUTO) = rate, seqk unfused (cuBLAS) =
      amount / ref_ms and, with --torch, one line per torch path (sdpa flash, sdpa efficient, ...)
      for the same dtype, D, causal and heads, at torch's own sequence lengths.
  decode_<dtype>_D<D>.svg   the decode cases (`attention decode ...`): GB/s against the context
      length Sk (log2 axis), bytes = the K and V reads (2 B Hk Sk D x element size), seqk and the
      unfused path, with the run's measured device copy bandwidth as a dashed horizontal line.
  rnn_<mode>_<dtype>_H<H>_T<T>.svg   the RNN cases (`rnn <mode> <dtype> H=.. N=.. T=..`), one
      chart per mode, dtype, H and T with at least two batch sizes: microseconds per time step
      against the batch N (log2 axis): seqk AUTO (ms * 1000 / T), seqk's per-step path and cuDNN
      (the rows with vs "per-step" and "cuDNN"; cuDNN only where it was timed) and, with --torch,
      nn.LSTM / nn.GRU.
Every chart names the device, the commit and the date of the run (footer). Rows whose check is
not ok are skipped and counted; other cases (softmax, linear, ...) are not charted.

The SVG is written by the small renderer below (standard library only). --format png draws the
same charts with matplotlib (Debian: python3-matplotlib).

Usage:
  python3 bench/plot.py BENCH.csv [--torch TORCH.csv] [--out DIR] [--format svg|png]
DIR defaults to <BENCH.csv's folder>/<its stem>_charts. Each chart's path is printed as it is
written, then a count.

Exit codes: 0 charts written; 2 a missing or unreadable file, a column missing, a number that is
not one, or --format png without matplotlib; 3 nothing to draw (the CSV has no timings, as from
the emulated build's correctness pass, or none of its timed cases is one charted here); nothing
is written then.
"""
import argparse
import csv
import math
import os
import re
import sys
from xml.sax.saxutils import escape, quoteattr

EXIT_OK, EXIT_BAD_INPUT, EXIT_NOTHING_TO_DRAW = 0, 2, 3

# Only the columns read here: the bench's columns are stable and new ones go at the end, so a
# newer CSV still parses.
BENCH_COLUMNS = ("case", "check", "ms", "ref_ms", "rate", "unit", "vs", "amount", "copy_gbs",
                 "device", "commit", "date")
BENCH_NUMBERS = ("ms", "ref_ms", "rate", "amount", "copy_gbs")
TORCH_COLUMNS = ("case", "check", "seqk_ms", "rate", "unit", "torch_path", "torch_ms")
TORCH_NUMBERS = ("seqk_ms", "rate", "torch_ms")

ELEMENT_BYTES = {"f16": 2, "bf16": 2, "f32": 4}
TORCH_DTYPES = {"torch.float16": "f16", "torch.bfloat16": "bf16", "torch.float32": "f32"}

SWEEP_RE = re.compile(r"^attention (f16|bf16|f32) B=(\d+) H=(\d+)/([1-9]\d*) Sq=(\d+) Sk=(\d+) "
                      r"D=(\d+)( causal)?$")
DECODE_RE = re.compile(r"^attention decode (f16|bf16|f32) B=(\d+) H=(\d+)/([1-9]\d*) Sq=(\d+) "
                       r"Sk=(\d+) D=(\d+)( causal)?$")
RNN_RE = re.compile(r"^rnn (tanh|relu|lstm|gru) (f16|bf16|f32) H=(\d+) N=(\d+) T=([1-9]\d*)$")
TORCH_ATTENTION_RE = re.compile(r"^attention (torch\.\w+) B=(\d+) H=(\d+)/([1-9]\d*) S=(\d+) "
                                r"D=(\d+)( causal)?$")
TORCH_RNN_RE = re.compile(r"^(tanh|relu|lstm|gru) (f16|bf16|f32) H=(\d+) N=(\d+) T=([1-9]\d*)$")


class InputError(Exception):
    """A problem with an input file: reported in one line, exit 2."""


# ---- reading the CSVs ---------------------------------------------------------------------------

def read_rows(path, columns, numbers):
    """The rows of a CSV as dicts, `numbers` converted to float; InputError on any problem."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise InputError(f"{path}: not a CSV of the expected kind: missing column(s) "
                                 f"{', '.join(missing)} (header: {','.join(header) or 'empty'})")
            rows = []
            for row in reader:
                for name in numbers:
                    try:
                        row[name] = float(row[name])
                    except (TypeError, ValueError):
                        raise InputError(f"{path}:{reader.line_num}: {name} is not a number: "
                                         f"{row[name]!r}") from None
                rows.append(row)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: {e}") from None


def usable(value):
    """A timing or rate that can be drawn: positive and finite (FAIL rows hold 0 or nan)."""
    return value > 0 and math.isfinite(value)


def per_ms(amount, ms, unit):
    """amount per call and ms per call as a rate in `unit` (FLOPs -> TFLOP/s, bytes -> GB/s)."""
    return amount / (ms * (1e9 if unit == "TFLOP/s" else 1e6))


def split_by_check(rows):
    """(rows whose check is ok, how many were not)."""
    ok = [r for r in rows if r["check"] == "ok"]
    return ok, len(rows) - len(ok)


def run_footer(rows):
    """device, commit and date of the run, each value once (a concatenated CSV can hold more)."""
    def values(column):
        seen = []
        for r in rows:
            if r[column] and r[column] not in seen:
                seen.append(r[column])
        return ", ".join(seen) or "unknown"
    return f"{values('device')} \u00b7 commit {values('commit')} \u00b7 {values('date')}"


def listed(values):
    """`v` for one value, `v1,v2` for several: the subtitles' shape summary."""
    return ",".join(str(v) for v in sorted(set(values)))


# ---- the charts' content ------------------------------------------------------------------------

class Series:
    """One line: a label and its (x, y) points, drawn in x order."""

    def __init__(self, label):
        self.label = label
        self.points = {}

    def add(self, x, y):
        self.points[x] = y


class Chart:
    def __init__(self, stem, title, subtitle, xlabel, ylabel, footer):
        self.stem, self.title, self.subtitle = stem, title, subtitle
        self.xlabel, self.ylabel, self.footer = xlabel, ylabel, footer
        self.series = []       # Series, in legend order
        self.references = []   # (label, y): horizontal lines, e.g. the copy bandwidth

    def line(self, label):
        """The series named `label`, made on first use."""
        for s in self.series:
            if s.label == label:
                return s
        self.series.append(Series(label))
        return self.series[-1]

    def drawable(self):
        self.series = [s for s in self.series if s.points]
        return bool(self.series)


def attention_sweep_charts(rows, torch_rows, footer):
    """TFLOP/s against S per (dtype, D, causal, heads per K/V head)."""
    charts, shapes = {}, {}
    for r in rows:
        m = SWEEP_RE.match(r["case"])
        if not m or m[5] != m[6] or not usable(r["ms"]):
            continue
        dtype, causal = m[1], bool(m[8])
        B, H, Hk, S, D = (int(m[i]) for i in (2, 3, 4, 6, 7))
        key = (dtype, D, causal, H // Hk)
        if key not in charts:
            charts[key] = Chart(
                f"attention_{dtype}_D{D}{'_causal' if causal else ''}"
                f"{f'_gqa{H // Hk}' if H != Hk else ''}",
                f"Attention forward, {dtype}, D={D}{', causal' if causal else ''}: "
                "TFLOP/s against sequence length",
                [], "sequence length S = Sq = Sk (log2 scale)", "TFLOP/s (higher is better)",
                footer)
            shapes[key] = ([], [])
        shapes[key][0].append(B * S)
        shapes[key][1].append(f"{H}/{Hk}")
        rate = r["rate"]
        if r["unit"] != "TFLOP/s" or not usable(rate):
            rate = per_ms(r["amount"], r["ms"], "TFLOP/s")
        charts[key].line("seqk fused (AUTO)").add(S, rate)
        if usable(r["ref_ms"]):
            unfused = per_ms(r["amount"], r["ref_ms"], "TFLOP/s")
            charts[key].line("seqk unfused (cuBLAS)").add(S, unfused)
    for key, chart in charts.items():
        tokens, heads = shapes[key]
        chart.subtitle = [f"B\u00b7S = {listed(tokens)} tokens, H={listed(heads)} (Q/KV heads); "
                          "FLOPs = 4\u00b7B\u00b7H\u00b7S\u00b2\u00b7D"
                          f"{', halved (causal)' if key[2] else ''}"]
    for r in torch_rows:
        m = TORCH_ATTENTION_RE.match(r["case"])
        if not m or m[1] not in TORCH_DTYPES:
            continue
        if not (usable(r["seqk_ms"]) and usable(r["rate"]) and usable(r["torch_ms"])):
            continue
        key = (TORCH_DTYPES[m[1]], int(m[6]), bool(m[7]), int(m[3]) // int(m[4]))
        if key in charts:
            # compare_torch.py reports seqk's rate for the row; the case's FLOPs follow from it.
            amount = r["rate"] * r["seqk_ms"] * 1e9
            rate = per_ms(amount, r["torch_ms"], "TFLOP/s")
            charts[key].line(f"torch {r['torch_path']}").add(int(m[5]), rate)
    return [charts[k] for k in sorted(charts)]


def decode_charts(rows, footer):
    """GB/s (K+V bytes) against Sk per (dtype, D), with the copy bandwidth as the yardstick."""
    charts, shapes, copy = {}, {}, {}
    for r in rows:
        m = DECODE_RE.match(r["case"])
        if not m or not usable(r["ms"]):
            continue
        dtype = m[1]
        B, H, Hk, Sk, D = (int(m[i]) for i in (2, 3, 4, 6, 7))
        key = (dtype, D)
        if key not in charts:
            charts[key] = Chart(
                f"decode_{dtype}_D{D}",
                f"Attention decode, {dtype}, D={D}: GB/s against context length",
                [], "context length Sk (log2 scale)", "GB/s (higher is better)", footer)
            shapes[key] = ([], [])
        shapes[key][0].append(B)
        shapes[key][1].append(f"{H}/{Hk}")
        # The model, not the bench's amount: decode reads each K and V element once, the rest
        # (q, the output) is noise next to it, so GB/s compares directly with the copy bandwidth.
        kv_bytes = 2.0 * B * Hk * Sk * D * ELEMENT_BYTES[dtype]
        charts[key].line("seqk (AUTO)").add(Sk, per_ms(kv_bytes, r["ms"], "GB/s"))
        if usable(r["ref_ms"]):
            unfused = per_ms(kv_bytes, r["ref_ms"], "GB/s")
            charts[key].line("seqk unfused (cuBLAS)").add(Sk, unfused)
        if usable(r["copy_gbs"]):
            copy[key] = max(copy.get(key, 0.0), r["copy_gbs"])
    for key, chart in charts.items():
        batches, heads = shapes[key]
        chart.subtitle = [f"the K+V bytes model: bytes = 2\u00b7B\u00b7Hk\u00b7Sk\u00b7D\u00b7"
                          f"{ELEMENT_BYTES[key[0]]} (K and V read once); B={listed(batches)}, "
                          f"H={listed(heads)} (Q/KV heads), Sq=1"]
        if key in copy:
            chart.references.append((f"device copy bandwidth ({copy[key]:.0f} GB/s)", copy[key]))
    return [charts[k] for k in sorted(charts)]


def rnn_charts(rows, torch_rows, footer):
    """Microseconds per step against N per (mode, dtype, H, T), where there are 2+ batch sizes.
    T is part of the key: the bench's DeepBench shapes (one N each, other T) would otherwise land
    on the batch sweep's charts, one of them on a batch size the sweep has (gru H=1024 N=1)."""
    charts = {}
    for r in rows:
        m = RNN_RE.match(r["case"])
        if not m or not usable(r["ms"]):
            continue
        mode, dtype, H, N, T = m[1], m[2], int(m[3]), int(m[4]), int(m[5])
        key = (mode, dtype, H, T)
        if key not in charts:
            charts[key] = Chart(
                f"rnn_{mode}_{dtype}_H{H}_T{T}",
                f"RNN forward, {mode} {dtype}, H={H}, T={T}: time per step against batch",
                ["\u00b5s per step = median ms \u00d7 1000 / T; input size = H, one layer"],
                "batch N (log2 scale)", "\u00b5s per time step (lower is better)", footer)
        # Both rows of a case carry the same AUTO time; each adds its own comparison.
        charts[key].line("seqk (AUTO)").add(N, r["ms"] * 1e3 / T)
        if r["vs"] == "per-step" and usable(r["ref_ms"]):
            charts[key].line("seqk per-step (cuBLAS + gates)").add(N, r["ref_ms"] * 1e3 / T)
        elif r["vs"] == "cuDNN" and usable(r["ref_ms"]):
            charts[key].line("cuDNN cudnnRNNForward").add(N, r["ref_ms"] * 1e3 / T)
    for r in torch_rows:
        m = TORCH_RNN_RE.match(r["case"])
        key = m and (m[1], m[2], int(m[3]), int(m[5]))
        if not m or key not in charts or not usable(r["torch_ms"]):
            continue
        charts[key].line(f"torch {r['torch_path']}").add(int(m[4]), r["torch_ms"] * 1e3 / key[3])
    # one batch size is not a curve
    return [charts[k] for k in sorted(charts) if len(charts[k].line("seqk (AUTO)").points) >= 2]


# ---- axes ---------------------------------------------------------------------------------------

def nice_ticks(top):
    """0, step, 2 step, ... covering [0, top] in about 6 steps of 1, 2, 2.5 or 5 times a power of
    ten, each with its label."""
    top = top if top > 0 else 1.0
    raw = top / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = math.ceil(top / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step, decimals) - step) > 1e-9 * step:   # 2.5, 0.25: one digit more
        decimals += 1
    return [(i * step, f"{i * step:.{decimals}f}") for i in range(count + 1)]


def power_of_two_label(value):
    """512, 1K, 64K, 1M: sequence lengths and batches read best in binary units."""
    for unit, suffix in ((1 << 20, "M"), (1 << 10, "K")):
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def log2_ticks(xs):
    """low, high (log2, padded so end markers clear the frame) and the ticks of an axis for xs."""
    lo, hi = math.log2(min(xs)), math.log2(max(xs))
    pad = 1.0 if hi - lo < 1e-9 else 0.3
    lo, hi = lo - pad, hi + pad
    powers = list(range(math.ceil(lo), math.floor(hi) + 1))
    every = 1 if len(powers) <= 10 else 2   # keep labels from touching
    return lo, hi, [(p, power_of_two_label(2 ** p)) for p in powers[::every]]


def all_x(chart):
    return [x for s in chart.series for x in s.points]


def top_y(chart):
    ys = [y for s in chart.series for y in s.points.values()]
    return max(ys + [y for _, y in chart.references])


# ---- the SVG renderer ---------------------------------------------------------------------------

WIDTH, HEIGHT = 880, 500   # the smallest canvas; wider when the legend or a title needs it
PLOT_LEFT, PLOT_WIDTH = 84, 546
LEGEND_ROW = 22
COLORS = ("#1f5fbf", "#e07b00", "#2a9d4b", "#c0392b", "#7b4fbf", "#8c564b", "#d4579a", "#4d4d4d")
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def svg_text(x, y, text, size=12, anchor="start", color="#222", weight="normal", rotate=None):
    transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{color}" font-weight="{weight}"{transform}>{escape(text)}</text>')


def svg_marker(shape, x, y, color):
    """Circle, square, triangle, diamond: told apart without colour too."""
    if shape == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'
    if shape == 1:
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{color}"/>'
    if shape == 2:
        corners = ((0, -5), (4.5, 3.5), (-4.5, 3.5))
    else:
        corners = ((0, -5), (5, 0), (0, 5), (-5, 0))
    points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in corners)
    return f'<polygon points="{points}" fill="{color}"/>'


def text_width(text, size, bold=False):
    """A generous estimate of the rendered width (no font metrics here): ~0.6 em per character."""
    return len(text) * size * (0.65 if bold else 0.6)


def canvas_size(chart, legend_x, legend_y):
    """Width and height that hold the titles, the footer and every legend entry."""
    labels = [s.label for s in chart.series] + [label for label, _ in chart.references]
    width = max([WIDTH, legend_x + 36 + max(text_width(t, 12) for t in labels) + 12,
                 PLOT_LEFT + text_width(chart.title, 16, bold=True) + 12,
                 PLOT_LEFT + text_width(chart.footer, 11) + 12]
                + [PLOT_LEFT + text_width(line, 12) + 12 for line in chart.subtitle])
    height = max(HEIGHT, legend_y + LEGEND_ROW * len(labels) + 80)
    return math.ceil(width), height


def render_svg(chart):
    """The chart as an SVG document (a string)."""
    left, right = PLOT_LEFT, PLOT_LEFT + PLOT_WIDTH
    top = 44 + 16 * len(chart.subtitle) + 16
    legend_x, legend_y = right + 20, top + 8
    width, height = canvas_size(chart, legend_x, legend_y)
    bottom = height - 76
    x_lo, x_hi, x_ticks = log2_ticks(all_x(chart))
    y_ticks = nice_ticks(top_y(chart) * 1.05)   # headroom above the highest point
    y_max = y_ticks[-1][0]

    def px(x):
        return left + (math.log2(x) - x_lo) / (x_hi - x_lo) * (right - left)

    def py(y):
        return bottom - y / y_max * (bottom - top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           svg_text(left, 26, chart.title, size=16, weight="bold")]
    out += [svg_text(left, 46 + 16 * i, line, color="#555")
            for i, line in enumerate(chart.subtitle)]
    # grid and tick labels first, so the data lies on top
    out.append('<g class="grid" stroke="#e3e3e3" stroke-width="1">')
    out += [f'<line x1="{left}" y1="{py(v):.1f}" x2="{right}" y2="{py(v):.1f}"/>'
            for v, _ in y_ticks]
    out += [f'<line x1="{px(2 ** p):.1f}" y1="{top}" x2="{px(2 ** p):.1f}" y2="{bottom}"/>'
            for p, _ in x_ticks]
    out.append('</g>')
    out += [svg_text(left - 8, py(v) + 4, label, size=11, anchor="end") for v, label in y_ticks]
    out += [svg_text(px(2 ** p), bottom + 18, label, size=11, anchor="middle")
            for p, label in x_ticks]
    out.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
               'fill="none" stroke="#888"/>')
    out.append(svg_text((left + right) / 2, bottom + 40, chart.xlabel, size=13, anchor="middle"))
    out.append(svg_text(22, (top + bottom) / 2, chart.ylabel, size=13, anchor="middle", rotate=-90))

    for label, y in chart.references:
        out.append(f'<g class="reference" data-label={quoteattr(label)}>'
                   f'<line x1="{left}" y1="{py(y):.1f}" x2="{right}" y2="{py(y):.1f}" '
                   'stroke="#666" stroke-width="1.5" stroke-dasharray="6 4"/></g>')
    for i, s in enumerate(chart.series):
        color, shape = COLORS[i % len(COLORS)], i % 4
        points = [(px(x), py(y)) for x, y in sorted(s.points.items())]
        out.append(f'<g class="series" data-label={quoteattr(s.label)}>'
                   f'<title>{escape(s.label)}</title>')
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                   f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>')
        out += [svg_marker(shape, x, y, color) for x, y in points]
        out.append('</g>')
        # legend entry: a stretch of the line with its marker, then the label
        ly = legend_y + LEGEND_ROW * i
        out.append(f'<line x1="{legend_x}" y1="{ly}" x2="{legend_x + 28}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(svg_marker(shape, legend_x + 14, ly, color))
        out.append(svg_text(legend_x + 36, ly + 4, s.label))
    for i, (label, _) in enumerate(chart.references):
        ly = legend_y + LEGEND_ROW * (len(chart.series) + i)
        out.append(f'<line x1="{legend_x}" y1="{ly}" x2="{legend_x + 28}" y2="{ly}" stroke="#666" '
                   'stroke-width="1.5" stroke-dasharray="6 4"/>')
        out.append(svg_text(legend_x + 36, ly + 4, label))
    out.append(svg_text(left, height - 12, chart.footer, size=11, color="#777"))
    out.append('</svg>')
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(out) + "\n"


# ---- PNG, through matplotlib --------------------------------------------------------------------

def load_matplotlib():
    """pyplot on the file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")   # no display needed
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def render_png(plt, chart, path):
    fig, ax = plt.subplots(figsize=(WIDTH / 100, HEIGHT / 100), dpi=150)
    for i, s in enumerate(chart.series):
        xs = sorted(s.points)
        ax.plot(xs, [s.points[x] for x in xs], marker="os^D"[i % 4],
                color=COLORS[i % len(COLORS)], label=s.label)
    for label, y in chart.references:
        ax.axhline(y, color="#666", linestyle="--", linewidth=1.2, label=label)
    x_lo, x_hi, x_ticks = log2_ticks(all_x(chart))
    ax.set_xscale("log", base=2)
    ax.set_xlim(2 ** x_lo, 2 ** x_hi)
    ax.set_xticks([2 ** p for p, _ in x_ticks], [label for _, label in x_ticks])
    ax.minorticks_off()
    ax.set_ylim(0, nice_ticks(top_y(chart) * 1.05)[-1][0])
    ax.grid(True, color="#e3e3e3")
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    ax.set_title("\n".join(chart.subtitle), fontsize=8, color="#555")
    fig.suptitle(chart.title, fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    fig.text(0.01, 0.01, chart.footer, fontsize=7, color="#777")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", help="seqk-bench --csv output")
    ap.add_argument("--torch", help="bench/compare_torch.py --csv output (same GPU)")
    ap.add_argument("--out",
                    help="folder for the charts (default: <csv stem>_charts next to the CSV)")
    ap.add_argument("--format", choices=("svg", "png"), default="svg")
    return ap.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    plt = None
    if args.format == "png":
        plt = load_matplotlib()
        if plt is None:
            print("plot.py: --format png needs matplotlib: install Debian's python3-matplotlib "
                  "(or use the default SVG)", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        bench_rows = read_rows(args.csv, BENCH_COLUMNS, BENCH_NUMBERS)
        torch_rows = read_rows(args.torch, TORCH_COLUMNS, TORCH_NUMBERS) if args.torch else []
    except InputError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not any(usable(r["ms"]) for r in bench_rows):
        print(f"plot.py: {args.csv} has no timings (a correctness pass, e.g. the emulated build): "
              "nothing to draw")
        return EXIT_NOTHING_TO_DRAW

    ok_rows, bench_skipped = split_by_check(bench_rows)
    ok_torch, torch_skipped = split_by_check(torch_rows)
    footer = run_footer(bench_rows)
    charts = (attention_sweep_charts(ok_rows, ok_torch, footer) + decode_charts(ok_rows, footer)
              + rnn_charts(ok_rows, ok_torch, footer))
    charts = [c for c in charts if c.drawable()]
    if not charts:
        print(f"plot.py: {args.csv} has no timed attention sweep, decode or RNN batch cases: "
              "nothing to draw")
        return EXIT_NOTHING_TO_DRAW

    stem = os.path.splitext(os.path.basename(args.csv))[0]
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.csv)),
                                       f"{stem}_charts")
    try:
        os.makedirs(out_dir, exist_ok=True)
        for chart in charts:
            path = os.path.join(out_dir, f"{chart.stem}.{args.format}")
            if plt is None:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(render_svg(chart))
            else:
                render_png(plt, chart, path)
            print(path)
    except OSError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    skipped = f"{bench_skipped} bench row{'s' if bench_skipped != 1 else ''}"
    if args.torch:
        skipped += f" and {torch_skipped} torch row{'s' if torch_skipped != 1 else ''}"
    print(f"plot.py: {len(charts)} chart{'s' if len(charts) != 1 else ''} written to {out_dir} "
          f"(skipped {skipped} whose check is not ok)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
