"""What `harness run --spark` costs next to a local run, on this machine, in one go.

PubMedQA-shaped rows (default 1,000), one model call and two judge calls per row, over
HTTP to ``harness.testing.FakeLLMServer`` answering after 100 ms, at concurrency 64. Four
real ``harness run --json --no-mlflow`` processes, each timed from start to exit:

1. local, cold (fresh home, empty cache);
2. ``--spark`` (``local[2]``: the executors are two Python workers here), cold;
3. local rerun of 1 (every call cached);
4. ``--spark`` rerun of 2: the driver answers every row from the cache, so no Spark
   session is started.

It prints each wall time, the ratio of each Spark run to its local twin and the cold runs'
lower bound (calls x latency / concurrency), and checks what the runs claim: the calls
sent (3 per row cold, none on rerun), the server's request count, and that both cold
runs end with the same metrics. On a 2-core machine Spark cannot add cores; the ratios
measure its overhead (JVM start, job scheduling, shipping rows and answers back), the
price of spreading a run over a cluster's executors.

Run: ``python bench/bench_spark.py [--rows 1000] [--concurrency 64] [--latency 0.1]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_providers import write_rows  # noqa: E402  (same rows as the provider bench)

JUDGES = ["correctness", "answer_relevance"]


def harness(home: Path, env: dict[str, str], *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env={**env, "HARNESS_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"harness {' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return wall, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--spark-settings", default="", help='more [spark] lines, e.g. "rows_per_task = 500"'
    )
    args = parser.parse_args()

    from harness.testing import FakeLLMServer

    calls = args.rows * (1 + len(JUDGES))
    bound = calls * args.latency / args.concurrency
    run = [
        "run", "--data", "bench", "--model", "openai:/bench-model",
        "--judge-model", "openai:/bench-judge", "--metric", "token_f1",
        "--concurrency", str(args.concurrency), "--json", "--no-mlflow",
    ]  # fmt: skip
    for judge in JUDGES:
        run += ["--judge", judge]
    with (
        tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp,
        FakeLLMServer(latency_s=args.latency, max_recorded=0) as server,
    ):
        rows_file = Path(tmp, "rows.jsonl")
        write_rows(rows_file, args.rows)
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "sk-bench",
            "PYTHONPATH": str(REPO),
        }
        homes = {}
        for name in ("local", "spark"):
            home = homes[name] = Path(tmp, name)
            home.mkdir()
            (home / "harness.toml").write_text(
                f'[spark]\nmaster = "local[2]"\n{args.spark_settings}\n'
            )
            mapping = ("--input", "question", "--expected", "answer", "--context", "context")
            harness(home, env, "data", "import", str(rows_file), "--name", "bench", *mapping)
        results = {}
        for label, home, extra in (
            ("local, cold", homes["local"], []),
            ("spark, cold", homes["spark"], ["--spark"]),
            ("local, rerun", homes["local"], []),
            ("spark, rerun", homes["spark"], ["--spark"]),
        ):
            server.reset()
            wall, document = harness(home, env, *run, *extra)
            sent = server.stats()["requests_total"]
            claimed = (
                document["calls"]["model"]["requests"] + document["calls"]["judge"]["requests"]
            )
            expected = calls if "cold" in label else 0
            if sent != expected or claimed != expected or document["errors"]:
                sys.exit(f"{label}: {sent} requests sent, {claimed} claimed, expected {expected}")
            results[label] = (wall, document["metrics"])
            print(f"{label:14s} {wall:6.2f} s   {sent} requests", flush=True)
    if results["local, cold"][1] != results["spark, cold"][1]:
        sys.exit("the local and the Spark run ended with different metrics")
    print(f"\n{args.rows} rows x {calls // args.rows} calls, latency {args.latency} s, "
          f"concurrency {args.concurrency}: lower bound {bound:.2f} s")  # fmt: skip
    for kind in ("cold", "rerun"):
        local, spark = results[f"local, {kind}"][0], results[f"spark, {kind}"][0]
        print(f"{kind:6s}: spark / local = {spark / local:.2f}x  ({spark:.2f} s vs {local:.2f} s)")
    print(f"cold: local / bound = {results['local, cold'][0] / bound:.2f}x, "
          f"spark / bound = {results['spark, cold'][0] / bound:.2f}x")  # fmt: skip
    print("metrics of the local and the Spark run: identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
