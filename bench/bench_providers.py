"""End-to-end provider benchmark: `harness run` (``run_eval``) against the fake LLM server.

2,000 PubMedQA-shaped rows (the 1,000 bundled rows, twice, with distinct questions), one
model call and two judge calls (``correctness``, ``answer_relevance``) per row, all over
HTTP to ``harness.testing.FakeLLMServer`` answering after 100 ms, at concurrency 64. The
lower bound is 6,000 x 0.1 s / 64 = 9.4 s; the ratio wall / bound is printed (target
<= 1.15) with the peak RSS of the process that ran it.

Issue 14's goal 2 is ``--rows 1000 --judges correctness --mlflow --repeat 3``: 1,000 rows x
(model + judge) cold, MLflow on, from a fresh project home (the MLflow store is created by
the run), against 2,000 x 0.1 s / 64 = 3.1 s (limit 1.15x) and against a bare aiohttp
client replaying the very requests harness sent (as the server recorded them) to the same
server just after each harness run (limit 1.10x); medians, spreads and each pair's ratio
are printed.

Each measurement runs in a fresh child process with a fresh project home (a new dataset
import, an empty cache in ``use`` mode, so every response is also written to the cache),
timing ``run_eval`` from its call to its return: planning, DuckDB writes, cache writes,
metrics, judges, aggregates and, with ``--mlflow``, MLflow logging. ``--transport``
compares the HTTP clients (``harness.providers._client``); ``--scaling`` prints peak memory
at 1,000 / 2,000 / 4,000 rows to show it stays flat. Last, ``harness --help`` is timed (target
<= 0.3 s) and checked not to import MLflow, pandas, httpx or a provider.

Run: ``python bench/bench_providers.py [--rows 2000] [--judges a,b] [--concurrency 64]
[--latency 0.1] [--transport aiohttp|httpx-shards|httpx|all] [--mlflow] [--scaling] [--repeat N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"
JUDGES = ["correctness", "answer_relevance"]
TRANSPORTS = ["aiohttp", "httpx-shards", "httpx"]


def write_rows(path: Path, rows: int) -> None:
    with open(PUBMEDQA, encoding="utf-8") as f:  # not splitlines(): rows hold U+2028
        source = [json.loads(line) for line in f if line.strip()]
    with open(path, "w", encoding="utf-8") as out:
        for i in range(rows):
            row = source[i % len(source)]
            copy = i // len(source)
            out.write(
                json.dumps(
                    {
                        "id": f"{row['id']}-{copy}",
                        "question": row["question"] + (f" (set {copy})" if copy else ""),
                        "context": row["context"],
                        "answer": row["final_decision"],
                    }
                )
                + "\n"
            )


def child(args: argparse.Namespace) -> None:
    """Run one evaluation in this process and print its numbers as JSON."""
    import resource

    from harness.runner.config import RunConfig
    from harness.runner.run import run_eval

    config = RunConfig(
        data="bench",
        model="openai:/bench-model",
        judges=args.judges.split(","),
        judge_model="openai:/bench-judge",
        metrics=["exact_match", "token_f1"],
        concurrency=args.concurrency,
        cache=args.cache,
        mlflow=args.mlflow,
    )
    started = time.perf_counter()
    result = run_eval(config, home=args.child)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": peak_mb,
                "rows": result.rows,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "errors": result.errors,
                "calls": result.calls,
                "mlflow": result.mlflow_run_id is not None,
            }
        )
    )


def measure(
    server_url: str, rows_file: Path, transport: str, args: argparse.Namespace, rows: int
) -> dict[str, object]:
    """Import the rows into a fresh home, then time one run in a child process."""
    with tempfile.TemporaryDirectory(prefix="bench-providers-") as home:
        Path(home, "harness.toml").write_text(f'[calls]\ntransport = "{transport}"\n')
        env = {
            **os.environ,
            "HARNESS_HOME": home,
            "OPENAI_BASE_URL": server_url,
            "OPENAI_API_KEY": "sk-bench",
            "PYTHONPATH": str(REPO),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "data",
                "import",
                str(rows_file),
                "--name",
                "bench",
                "--input",
                "question",
                "--expected",
                "answer",
                "--context",
                "context",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        command = [
            sys.executable,
            __file__,
            "--child",
            home,
            "--concurrency",
            str(args.concurrency),
            "--cache",
            args.cache,
            "--judges",
            args.judges,
        ] + (["--mlflow"] if args.mlflow else [])
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        process_s = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
        numbers: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        numbers["process_s"] = process_s
        return numbers


def floor(url: str, bodies: list[str], concurrency: int) -> float:
    """Wall time of a bare aiohttp client sending ``bodies`` (the exact requests harness
    just sent, as the server recorded them) to the same server at the same concurrency.

    The server's own overhead per request (parsing, recording, its event loop) counts
    against the bound too; this is the best any client can do here.
    """
    import asyncio

    import aiohttp

    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            todo = iter(bodies)

            async def worker() -> None:
                for body in todo:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, response.status

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    return asyncio.run(run())


def time_help() -> tuple[list[float], list[str]]:
    """5 wall times of `harness --help`, and the heavy modules it imported."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harness", "--help"],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        times.append(time.perf_counter() - started)
    probe = (
        "import sys\nfrom harness.cli import cli\ntry:\n    cli(['--help'])\n"
        "except SystemExit:\n    pass\nheavy = ('mlflow', 'pandas', 'httpx', 'aiohttp', "
        "'duckdb', 'harness.providers.')\nprint([m for m in sys.modules "
        "if m.startswith(heavy)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    return times, json.loads(out.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--transport", default="aiohttp", choices=[*TRANSPORTS, "all"])
    parser.add_argument("--mlflow", action="store_true", help="log each run to MLflow too")
    parser.add_argument(
        "--cache",
        default="use",
        choices=["use", "off"],
        help="use: every answer is also written to the (empty) cache",
    )
    parser.add_argument("--scaling", action="store_true", help="peak memory at 1k/2k/4k rows")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--judges", default=",".join(JUDGES), help="judges per row, comma-separated"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from _bytecode import compile_harness

    from harness.testing import FakeLLMServer

    print(compile_harness())
    calls_per_row = 1 + len(args.judges.split(","))
    transports = TRANSPORTS if args.transport == "all" else [args.transport]
    print(
        f"{args.rows} rows x {calls_per_row} calls, {args.latency * 1000:.0f} ms latency, "
        f"concurrency {args.concurrency}, cache {args.cache}, "
        f"mlflow {'on' if args.mlflow else 'off'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    sizes = [1000, 2000, 4000] if args.scaling else [args.rows]
    with (
        FakeLLMServer(latency_s=args.latency, max_recorded=max(sizes) * calls_per_row) as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        for rows in sizes:
            rows_file = Path(scratch, f"rows{rows}.jsonl")
            write_rows(rows_file, rows)
            bound = rows * calls_per_row * args.latency / args.concurrency
            url = server.openai_base_url + "/chat/completions"
            for transport in transports:
                walls: list[float] = []
                bares: list[float] = []
                for _ in range(args.repeat):
                    # harness, then a bare client replaying the very requests it sent: both
                    # see the same load.
                    server.reset()
                    numbers = measure(server.openai_base_url, rows_file, transport, args, rows)
                    stats = server.stats()
                    sent = stats["requests_total"]
                    walls.append(float(numbers["wall_s"]))  # type: ignore[arg-type]
                    assert numbers["errors"] == 0 and sent == rows * calls_per_row, numbers
                    assert numbers["mlflow"] == args.mlflow, numbers
                    bodies = [r["body"] for r in stats["requests"]]
                    assert len(bodies) == sent, "the server kept fewer requests than were sent"
                    server.reset()
                    bares.append(floor(url, bodies, args.concurrency))
                    assert server.stats()["requests_total"] == sent
                    print(
                        f"  {transport:13s} rows {rows:5d}: run_eval {numbers['wall_s']:.2f} s"
                        f" = {float(numbers['wall_s']) / bound:.2f} x bound {bound:.2f} s "  # type: ignore[arg-type]
                        f"(bare aiohttp, same requests, just after: {bares[-1]:.2f} s = "
                        f"{float(numbers['wall_s']) / bares[-1]:.2f} x); process "  # type: ignore[arg-type]
                        f"{numbers['process_s']:.2f} s, CPU {numbers['cpu_s']:.1f} s; peak RSS "
                        f"{numbers['peak_rss_mb']:.0f} MB; requests {sent}; load "
                        f"{os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                wall, bare = statistics.median(walls), statistics.median(bares)
                per_pair = [w / b for w, b in zip(walls, bares, strict=True)]
                print(
                    f"  {transport:13s} median {wall:.2f} s (spread {min(walls):.2f}-"
                    f"{max(walls):.2f}, n={len(walls)}) = {wall / bound:.2f} x bound "
                    f"(limit 1.15); bare aiohttp median {bare:.2f} s (spread {min(bares):.2f}-"
                    f"{max(bares):.2f}) = {bare / bound:.2f} x bound; harness / bare: median "
                    f"{statistics.median(per_pair):.2f} (pairs "
                    f"{', '.join(f'{r:.2f}' for r in per_pair)}; limit 1.10)",
                    flush=True,
                )
    times, heavy = time_help()
    help_s = min(times)
    print(
        f"harness --help: {', '.join(f'{t:.3f} s' for t in times)}; best {help_s:.3f} s against "
        f"the 0.3 s limit, ratio {help_s / 0.3:.2f} (load {os.getloadavg()[0]:.2f}); heavy "
        f"modules imported: {heavy or 'none'}"
    )


if __name__ == "__main__":
    main()
