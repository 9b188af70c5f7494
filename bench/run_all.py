"""`make bench`: every benchmark under bench/, each printing its ratios to its limits.

The default sizes keep the whole run to roughly 15 minutes on a 2-core machine; each
script takes flags for the full sizes the issues name (e.g. ``bench_cached_rerun.py
--sizes 1000,10000,100000``, ``bench_sync.py --traces 10000``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["bench_cache_lookup.py"],
    # issue 14's goals 2 and 4 (--help), then 1, 3 and 4 (RSS)
    [
        "bench_providers.py",
        "--rows",
        "1000",
        "--judges",
        "correctness",
        "--mlflow",
        "--repeat",
        "3",
    ],  # noqa: E501
    ["bench_cached_rerun.py", "--goal1-rows", "1000", "--sizes", "1000,10000", "--repeat", "3"],
    ["bench_run_end.py", "--rows", "1000", "--repeat", "5"],
    ["bench_store_growth.py", "--runs", "20", "--batches", "40"],
    ["bench_batch_write.py"],
    ["bench_mlflow_log.py"],
    ["bench_sync.py", "--traces", "1000"],
    ["bench_spark.py"],
    ["bench_spark_modes.py"],
    ["bench_spark_import.py"],
    ["bench_report_plots.py"],
    ["bench_report_browser.py", "--rows", "10000", "--repeat", "3"],
    ["bench_intercept.py"],
]


def main() -> int:
    failed = []
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        print(f"=== {script}: {time.perf_counter() - started:.0f} s, exit {code}", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="runs: " + "; ".join(" ".join(b) for b in BENCHMARKS),
    ).parse_args()
    sys.exit(main())
