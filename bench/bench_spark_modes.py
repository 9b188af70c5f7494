"""Where `harness run` sends its calls: local, `--spark` on local[2] and on a local cluster,
and `--spark-remote` to a Spark Connect server, timed side by side on this machine.

PubMedQA-shaped rows (default 1,000), one model call and one judge call per row, over HTTP
to ``harness.testing.FakeLLMServer`` answering after 100 ms, at concurrency 64. Each mode
is a real ``harness run --json --no-mlflow`` process in a fresh home (every call a miss),
timed from start to exit:

1. local: the async runner, no Spark;
2. ``--spark`` on ``local[2]``: a JVM started by the run, its executor threads in it;
3. ``--spark`` on ``local-cluster[2,1,1024]``: the run starts a master, a worker and two
   executor JVMs, each with its own Python workers, as on a real cluster;
4. ``--spark-remote``: a Spark Connect server (``local[2]``) started before the clock, as
   a cluster is already up when a run connects to it; its start-up is printed apart.

It checks what each run claims (2 calls per row sent, the server's count, no error, the
same metrics in every mode) and prints each wall time and its ratio to the local run. On a
2-core machine Spark adds no cores: the ratios are Spark's overhead (JVM start-up, the
probe, the first job's Python workers, shipping rows and answers), the price of a cluster
that brings more cores and connections than a laptop.

Run: ``python bench/bench_spark_modes.py [--rows 1000] [--concurrency 64] [--latency 0.1]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_providers import write_rows  # noqa: E402  (same rows as the provider bench)
from bench_spark import harness  # noqa: E402  (a timed `harness` process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    from harness.testing import FakeLLMServer, SparkConnectServer

    calls = args.rows * 2
    bound = calls * args.latency / args.concurrency
    run = [
        "run", "--data", "bench", "--model", "openai:/bench-model", "--judge", "correctness",
        "--judge-model", "openai:/bench-judge", "--metric", "token_f1",
        "--concurrency", str(args.concurrency), "--json", "--no-mlflow",
    ]  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bench-spark-modes-") as tmp,
        FakeLLMServer(latency_s=args.latency, max_recorded=0) as server,
    ):
        rows_file = Path(tmp, "rows.jsonl")
        write_rows(rows_file, args.rows)
        keys = {"OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "sk-bench"}
        env = {**os.environ, **keys, "PYTHONPATH": str(REPO)}
        started = time.perf_counter()
        connect = SparkConnectServer(env=keys, folder=Path(tmp, "connect")).start()
        connect_start = time.perf_counter() - started
        modes = {
            "local": ([], ""),
            "--spark local[2]": (["--spark"], 'master = "local[2]"'),
            "--spark local-cluster[2,1,1024]": (["--spark"], 'master = "local-cluster[2,1,1024]"'),
            "--spark-remote (Connect, local[2])": (["--spark-remote", connect.url], ""),
        }
        results = {}
        try:
            for label, (flags, master) in modes.items():
                home = Path(tmp, f"home-{len(results)}")
                home.mkdir()
                (home / "harness.toml").write_text(f"[spark]\n{master}\n")
                mapping = ("--input", "question", "--expected", "answer", "--context", "context")
                harness(home, env, "data", "import", str(rows_file), "--name", "bench", *mapping)
                server.reset()
                wall, document = harness(home, env, *run, *flags)
                sent = server.stats()["requests_total"]
                claimed = sum(document["calls"][kind]["requests"] for kind in ("model", "judge"))
                if sent != calls or claimed != calls or document["errors"]:
                    sys.exit(f"{label}: {sent} requests sent, {claimed} claimed, expected {calls}")
                results[label] = (wall, document["metrics"])
                print(f"{label:36s} {wall:6.2f} s   {sent} requests", flush=True)
        finally:
            connect.stop()
    metrics = {json_key(m) for _, m in results.values()}
    if len(metrics) != 1:
        sys.exit("the modes ended with different metrics")
    print(f"\n{args.rows} rows x 2 calls, latency {args.latency} s, concurrency "
          f"{args.concurrency}: lower bound {bound:.2f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"the Spark Connect server took {connect_start:.1f} s to start (not in its run)")
    local = results["local"][0]
    for label, (wall, _) in results.items():
        print(f"{label:36s} {wall:6.2f} s  = {wall / local:5.2f}x local")
    print("metrics of every mode: identical")
    return 0


def json_key(metrics: dict[str, object]) -> str:
    import json

    return json.dumps(metrics, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
