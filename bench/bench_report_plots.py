"""The report's plots: hand-drawn SVG (harness.report.svg) against matplotlib's SVG backend.

Usage: .venv/bin/python bench/bench_report_plots.py [--values N] [--repeats R]

Issue 13 asks for plots drawn at build time as inline SVG, with matplotlib unless something
measured is better. Every run writes its report at its end, so a run pays for the plots
once per metric and judge. This measures, in the same run on the same data (N values of
a continuous score, one run's histogram with its mean and 95% interval):

- ``import matplotlib.pyplot`` with the Agg backend, in a fresh interpreter (best of 3);
- one histogram as SVG text: matplotlib (``hist`` + ``errorbar``, ``savefig(format="svg")``
  with text kept as text) against ``harness.report.svg.histogram``, median of R repeats,
  and the size of each SVG.

It prints each ratio (hand-drawn / matplotlib) against the limit 1.0: the hand-drawn plot
must be cheaper in time and in bytes. Exit 1 when it is not.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run as a plain script from a checkout: make the repo importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LIMIT = 1.0


def import_seconds() -> float:
    """Best of 3 fresh interpreters: the time to import pyplot, as a run's end would."""
    code = (
        "import time; t = time.perf_counter(); import matplotlib; matplotlib.use('Agg'); "
        "import matplotlib.pyplot; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)  # fmt: skip
        times.append(float(out.stdout))
    return min(times)


def matplotlib_histogram(values, mean: float, low: float, high: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text as text, as the hand-drawn plots keep it
    plt.rcParams["svg.hashsalt"] = "harness"  # the same ids every time
    fig, ax = plt.subplots(figsize=(3.6, 2.0))
    top = ax.hist(values, bins="auto")[0].max()
    ax.errorbar([mean], [top * 1.1], xerr=[[mean - low], [high - mean]], fmt="o", capsize=3)
    ax.set_title("distribution of token_f1", fontsize=8)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def timed(fn, repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()

    import numpy as np

    from harness.report.svg import Series, histogram
    from harness.stats import estimate_mean

    values = np.random.default_rng(0).beta(2, 5, args.values)
    e = estimate_mean(values)
    series = [Series("run", values.tolist(), e.mean, e.low, e.high)]

    imported = import_seconds()
    matplotlib_histogram(values, e.mean, e.low, e.high)  # warm: fonts, caches
    mpl_s, mpl_svg = timed(lambda: matplotlib_histogram(values, e.mean, e.low, e.high),
                           args.repeats)  # fmt: skip
    ours_s, ours_svg = timed(lambda: histogram(series, "distribution of token_f1"), args.repeats)

    print(f"{args.values:,} values, median of {args.repeats}")
    print(f"import matplotlib.pyplot (fresh process, best of 3): {imported:.2f} s")
    print(f"matplotlib histogram: {mpl_s * 1000:.1f} ms, {len(mpl_svg):,} bytes of SVG")
    print(f"hand-drawn histogram: {ours_s * 1000:.2f} ms, {len(ours_svg):,} bytes of SVG")
    time_ratio = ours_s / mpl_s
    size_ratio = len(ours_svg) / len(mpl_svg)
    ok = time_ratio < LIMIT and size_ratio < LIMIT
    print(f"time  hand-drawn / matplotlib: {time_ratio:.4f} (limit {LIMIT})")
    print(f"bytes hand-drawn / matplotlib: {size_ratio:.3f} (limit {LIMIT})")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
