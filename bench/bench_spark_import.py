"""The memory `harness data import --spark-table` takes, as the table grows.

A Spark Connect server (``local[2]``, started by the bench) holds generated tables of
4 kB rows: a tiny one (100 rows) and two large ones, N and 4N rows (default 25,000:
~98 MB and ~391 MB of text). Each is imported by a real ``harness data import
--spark-table NAME --spark-remote URL`` process whose peak resident memory is read from the
kernel (``wait4``). For contrast, a process collects the N-row table with ``toPandas()``,
what an import must not do.

It prints each import's peak and its growth over the tiny import, and checks the claim:
going from N to 4N rows (~293 MB more text) grows the peak by less than a tenth of that.

Run: ``python bench/bench_spark_import.py [--rows 25000] [--row-kb 4]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LIMIT = 0.10  # peak growth from N to 4N rows, as a share of the text added


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of one process, from the kernel's accounting."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status):
            err.seek(0)
            sys.exit(f"{' '.join(command[:4])} failed:\n{err.read().decode()[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


COLLECT = """
import sys
from pyspark.sql.connect.session import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).create()
print(len(spark.read.table(sys.argv[2]).toPandas()))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=25_000)
    parser.add_argument("--row-kb", type=int, default=4)
    args = parser.parse_args()

    from harness.testing import SparkConnectServer

    sizes = {"tiny": 100, "large": args.rows, "larger": 4 * args.rows}
    with tempfile.TemporaryDirectory(prefix="bench-spark-import-") as tmp:
        conf = {"spark.driver.memory": "2g"}
        with SparkConnectServer(folder=Path(tmp, "connect"), conf=conf) as connect:
            from pyspark.sql.connect.session import SparkSession

            spark = SparkSession.builder.remote(connect.url).create()
            for name, rows in sizes.items():
                spark.range(0, rows, 1, 8).selectExpr(
                    "concat('r', id) AS id",
                    f"concat('question ', id, ' ', repeat('x', {args.row_kb * 1024 - 1024})) "
                    "AS question",
                    "repeat('y', 1024) AS answer",
                ).write.mode("overwrite").saveAsTable(name)
            spark.stop()
            env = {**os.environ, "HARNESS_HOME": str(Path(tmp, "home")), "PYTHONPATH": str(REPO)}
            harness = [sys.executable, "-m", "harness", "data", "import"]
            peaks = {}
            for name, rows in sizes.items():
                command = [*harness, "--spark-table", name, "--name", name]
                peak, seconds = peak_rss_mb([*command, "--spark-remote", connect.url], env)
                peaks[name] = peak
                mb = rows * args.row_kb / 1024
                print(f"import {name:6s} {rows:7d} rows {mb:6.0f} MB: peak {peak:5.0f} MB "
                      f"(+{peak - peaks['tiny']:4.0f} MB over tiny), {seconds:5.1f} s",
                      flush=True)  # fmt: skip
            collected, seconds = peak_rss_mb(
                [sys.executable, "-c", COLLECT, connect.url, "large"], env
            )
    large_mb = sizes["large"] * args.row_kb / 1024
    print(f"toPandas() of large ({large_mb:.0f} MB): peak {collected:.0f} MB, {seconds:.1f} s")
    added = (sizes["larger"] - sizes["large"]) * args.row_kb / 1024
    growth = peaks["larger"] - peaks["large"]
    ratio = growth / added
    print(f"\nlarge -> larger: +{added:.0f} MB of rows, peak +{growth:.0f} MB = {ratio:.3f} "
          f"of it (limit {LIMIT}); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0 if ratio < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
