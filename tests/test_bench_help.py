"""Every benchmark under bench/ says how to run it: `--help` prints its usage and runs nothing.

`bench_mlflow_log.py --help` failed with a traceback (its sizes were read as integers from
the command line), and `run_all.py --help` started every benchmark (~15 minutes).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_benchmarks_are_found() -> None:
    assert {"run_all.py", "bench_mlflow_log.py", "bench_cached_rerun.py"} <= set(SCRIPTS)


def test_make_bench_runs_every_benchmark() -> None:
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    listed = {script for script, *_ in run_all.BENCHMARKS}
    assert listed == {s for s in SCRIPTS if s.startswith("bench_")}


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_answers_help_with_its_usage(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("usage: "), done.stdout
