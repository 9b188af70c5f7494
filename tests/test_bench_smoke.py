"""The benchmarks under bench/ run their real code path, at tiny sizes, and print their results.

test_bench_help.py only asks each script for ``--help``, so a benchmark whose internals
moved under it was found broken at its first real run (bench_run_end.py patched
``_Run._finished`` with the old signature: a TypeError, fixed in 6cec0c8). Each script
here runs once at the smallest sizes that still go through all of it, as ``make bench``
would run it, and must exit 0 and print its result lines (its ratios against its limits,
its numbers). At these sizes the ratios mean nothing, so only their shape is checked;
bench_intercept.py exits 1 when a ratio is over its limit, which at 10 rows it may be.

Left out, as they take far longer than a few seconds (``make bench`` runs them at their
default sizes): bench_spark.py, bench_spark_modes.py and bench_spark_import.py (a JVM and
a Spark session each, 15-50 s even at 20 rows), bench_sync.py (starts a real
``mlflow server``: ~13 s at 50 rows) and bench_report_browser.py (headless Chromium).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
NUMBER = r"\d+(\.\d+)?"

# script, its tiny arguments, the patterns its output must hold (one a result line)
TINY: list[tuple[str, list[str], list[str]]] = [
    (
        "bench_batch_write.py",
        ["--batches", "2", "--rows", "50", "--text", "100"],
        [rf"new / Arrow: wall {NUMBER}x, cpu {NUMBER}x, the thread beside it {NUMBER}x"],
    ),
    (
        "bench_cache_lookup.py",
        ["--rows", "200", "--lookups", "500", "--repeats", "1"],
        [rf"ratio ResponseCache\.get / raw diskcache get: {NUMBER}x"],
    ),
    (
        "bench_report_plots.py",
        ["--values", "50", "--repeats", "1"],
        [
            rf"time  hand-drawn / matplotlib: {NUMBER} \(limit 1\.0\)",
            rf"bytes hand-drawn / matplotlib: {NUMBER} \(limit 1\.0\)",
            r"\nPASS\n",
        ],
    ),
    (
        "bench_store_growth.py",
        ["--runs", "2", "--rows", "100", "--batches", "2"],
        [rf"2 runs / 1 run: batch median {NUMBER}x, mean {NUMBER}x, worst {NUMBER}x; peak"],
    ),
    (
        "bench_mlflow_log.py",
        ["50"],
        [rf"\n +50 +no +{NUMBER} +{NUMBER}", rf"\n +50 +yes +{NUMBER} +{NUMBER}"],
    ),
    (
        "bench_run_end.py",
        ["--rows", "50", "--repeat", "1"],
        [
            rf"end held to the end: {NUMBER} s; median",
            rf"end closed before the report: {NUMBER} s; median",
            rf"held / closed: end {NUMBER}x",
        ],
    ),
    (
        "bench_providers.py",
        ["--rows", "50", "--judges", "correctness", "--mlflow", "--repeat", "1"],
        [
            rf"aiohttp +median {NUMBER} s .* = {NUMBER} x bound \(limit 1\.15\)",
            rf"harness / bare: median {NUMBER} \(pairs",
            rf"harness --help: .*ratio {NUMBER}",
        ],
    ),
    (
        "bench_cached_rerun.py",
        ["--goal1-rows", "50", "--sizes", "50", "--repeat", "1"],
        [
            rf"MLflow adds [+-]{NUMBER} s; median [+-]{NUMBER} s against the \+0\.6 s limit",
            rf"\n +50 rows: {NUMBER}s .*us/row",
            r"the reruns' MLflow runs were written by: \w+",
        ],
    ),
    (
        "bench_intercept.py",
        ["--hits", "20", "--rows", "10", "--hit-repeats", "1", "--repeats", "1"],
        [
            rf"intercepted / direct: {NUMBER}x, limit 2\.00x: (ok|OVER)",
            rf"intercepted / not: {NUMBER}x, limit 1\.05x: (ok|OVER)",
        ],
    ),
]


@pytest.mark.parametrize(("script", "args", "results"), TINY, ids=[t[0] for t in TINY])
def test_a_benchmark_runs_at_tiny_sizes_and_prints_its_results(
    script: str, args: list[str], results: list[str], tmp_path: Path
) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))  # what a script leaves behind goes too
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    over = script == "bench_intercept.py" and "OVER" in done.stdout  # its exit 1 by design
    assert done.returncode == (1 if over else 0), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for pattern in results:
        assert re.search(pattern, done.stdout), f"{pattern!r} not in:\n{done.stdout}"


def test_every_benchmark_is_run_tiny_or_named_as_left_out() -> None:
    scripts = {p.name for p in BENCH.glob("bench_*.py")}
    tried = {t[0] for t in TINY}
    left_out = {s for s in scripts if s in (__doc__ or "")} - tried
    assert scripts == tried | left_out, scripts - tried - left_out
