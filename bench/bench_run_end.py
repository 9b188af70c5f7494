"""The end of a cached rerun logged to MLflow, with and without the store held through it.

A finished run keeps the DuckDB store open from reading its rows back through its report
and its MLflow run's end when it has at most ``harness.runner.run_end.HOLD_REPORT_ROWS`` rows
(three opens fewer on the path to its exit), and closes it before the report otherwise
(the open database keeps the pages the report reads: memory that grows with the rows).
This times both ways on the same rows, alternating: the run's end (``_Run._finished``:
aggregates, report, MLflow record) and the run process's peak RSS, each rerun in a
process of its own.

Run: ``python bench/bench_run_end.py [--rows 1000,10000] [--repeat 5] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_cached_rerun


def child(home: str, hold_rows: int, judges: list[str]) -> None:
    """One rerun in this process: the end's wall time and the peak RSS, as JSON."""
    import resource

    # bench_cached_rerun imports no HTTP client: a child loads only what a rerun does.
    from bench_cached_rerun import bench_config

    import harness.runner.run as run_module
    import harness.runner.run_end as run_end

    run_end.HOLD_REPORT_ROWS = hold_rows
    ends: list[float] = []
    finished = run_module._Run._finished

    def timed(self: object, *args: object) -> object:
        started = time.perf_counter()
        try:
            return finished(self, *args)  # type: ignore[arg-type]
        finally:
            ends.append(time.perf_counter() - started)

    run_module._Run._finished = timed  # type: ignore[method-assign]
    result = run_module.run_eval(bench_config(judges), home=home)
    assert result.errors == 0 and result.mlflow_run_id is not None, result.error_reasons
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"end_s": ends[0], "peak_mb": peak}))


def rerun(home: Path, hold_rows: int, judges: list[str]) -> dict[str, float]:
    from bench_cached_rerun import REPO, bench_env

    command = [sys.executable, __file__, "--child", str(home), "--hold-rows", str(hold_rows)]
    command += ["--judges", ",".join(judges)]
    done = subprocess.run(command, env=bench_env(home), cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rerun failed: {done.stderr[-2000:]}")
    numbers: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return numbers


def report(
    rows: int, judges: list[str], held: list[dict[str, float]], closed: list[dict[str, float]]
) -> None:
    def line(name: str, runs: list[dict[str, float]]) -> tuple[float, float]:
        end = statistics.median(r["end_s"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        each = ", ".join(f"{r['end_s']:.3f}" for r in runs)
        print(f"  end {name}: {each} s; median {end:.3f} s, peak RSS median {peak:.0f} MB")
        return end, peak

    print(f"{rows:,} rows x (model + {len(judges)} judge), cached rerun logged to MLflow:")
    end_held, peak_held = line("held to the end", held)
    end_closed, peak_closed = line("closed before the report", closed)
    print(
        f"  held / closed: end {end_held / end_closed:.2f}x ({end_held - end_closed:+.3f} s), "
        f"peak RSS {peak_held - peak_closed:+.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000", help="comma-separated row counts")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the filled project homes here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--hold-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--judges", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.hold_rows, args.judges.split(","))
        return
    from _bytecode import compile_harness
    from bench_cached_rerun import JUDGES, filled_home, restore

    compile_harness()
    judges = JUDGES[:1]
    for rows in [int(r) for r in args.rows.split(",")]:
        held: list[dict[str, float]] = []
        closed: list[dict[str, float]] = []
        with filled_home(rows, judges, args.keep) as (home, _filled):
            for _ in range(args.repeat):  # alternating: both see the same machine load
                restore(home)  # each from the stores the fill left, none grown by the last
                held.append(rerun(home, rows, judges))
                restore(home)
                closed.append(rerun(home, 0, judges))
        report(rows, judges, held, closed)


if __name__ == "__main__":
    main()
