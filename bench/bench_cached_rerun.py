"""A fully cached rerun, end to end: 1 model call + 3 judge calls per row.

For each size this builds a project home with a
synthetic eval set made from the bundled PubMedQA rows (each question made unique), fills
the cache with a cold run whose HTTP client answers in-process (``httpx.MockTransport``
with the fake server's own reply rules, so filling 400,000 calls does not take an hour),
then times what the issue measures: the real ``harness run`` command in a fresh process —
start-up, imports, 4 cache lookups per row, scoring, DuckDB writes and MLflow logging (the
table and one trace per row) — against a dead server address, so any miss would fail.
It checks that the rerun sent zero requests and hit the cache 4 x N times.

Goal 1 of issue 14: 1,000 rows x (model + one judge), rerun with MLflow and with
``--no-mlflow`` alternately (``--repeat`` pairs, the same load on both), printing the
medians, the spread and what MLflow adds against the 0.6 s limit. Goal 3: 10,000 rows x 4
calls against the 5 s limit, the time per row between sizes (linear: at most 1.10x;
100,000 rows with ``--sizes 10000,100000``, whose cache fill takes many minutes, so not in
``make bench``; ``--keep DIR`` keeps the filled homes for later invocations), and goal 4:
the peak RSS of the whole process tree (the run and its MLflow worker) against 250 MB.
Every rerun is printed with the 1-minute load average before it.

``--no-mlflow`` reruns the sizes without MLflow instead (as a CI replay runs), printing
the same time and peak RSS without the goals' verdicts.

Run: ``python bench/bench_cached_rerun.py [--goal1-rows 1000] [--sizes 1000,10000]
[--repeat 3] [--keep DIR] [--no-mlflow]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.runner.config import RunConfig  # noqa: E402
from harness.runner.run import run_eval  # noqa: E402
from harness.testing._fake_llm_replies import (  # noqa: E402
    Conversation,
    content_text,
    count_tokens,
    default_reply,
)
from harness.tracking.mlflow_store import DB_FILE, MLRUNS_DIR  # noqa: E402
from harness.tracking.record import TRACES_TAG  # noqa: E402

if TYPE_CHECKING:
    import httpx

LIMIT_10K_S = 5.0  # goal 3 of issue 14
LIMIT_EXTRA_1K_S = 0.6  # goal 1: what MLflow may add to a 1,000-row rerun
LIMIT_RSS_MB = 250  # goal 4, at 10,000 rows
# goal 3's "linear to 100,000 rows": the time per row may grow at most 10% between sizes
LIMIT_LINEAR = 1.10
JUDGES = ["faithfulness", "answer_relevance", "correctness"]
DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, any miss fails fast


def fake_openai(request: httpx.Request) -> httpx.Response:
    import httpx

    """The fake server's OpenAI route, in process."""
    body = json.loads(request.content)
    system = " ".join(content_text(m["content"]) for m in body["messages"] if m["role"] == "system")
    messages = tuple(
        (m["role"], content_text(m["content"])) for m in body["messages"] if m["role"] != "system"
    )
    wants_json = (body.get("response_format") or {}).get("type", "").startswith("json")
    conversation = Conversation(system, messages, wants_json=wants_json)
    text = default_reply(conversation)
    usage = {
        "prompt_tokens": count_tokens(conversation.prompt_text),
        "completion_tokens": count_tokens(text),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "usage": usage,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
        },
    )


def make_dataset(path: Path, rows: int) -> None:
    with open(REPO / "datasets/pubmedqa/pubmedqa_pqal.jsonl", encoding="utf-8") as f:
        source = [json.loads(line) for line in f]  # not splitlines(): texts hold U+2028
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            row = source[i % len(source)]
            f.write(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "question": f"{row['question']} (#{i})",
                        "context": row["context"],
                        "answer": row["answer"],
                    }
                )
                + "\n"
            )


def run_args(mlflow: bool, judges: list[str], traces: bool = True) -> list[str]:
    args = [
        "run",
        "--data",
        "bench",
        "--model",
        "openai:/bench-model",
        "--judge-model",
        "openai:/bench-judge",
        "--concurrency",
        "64",
        "--metric",
        "token_f1",
        "--metric",
        "rougeL",
        "--json",
    ]
    for judge in judges:
        args += ["--judge", judge]
    return args + ([] if mlflow else ["--no-mlflow"]) + ([] if traces else ["--no-traces"])


def tree_peak_rss(
    command: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float, float, float]:
    """Run ``command``; return it, its wall time, the peak summed RSS (MB) of its process
    tree and the tree's CPU seconds.

    The tree's RSS is sampled every 20 ms with psutil (the run's process and the MLflow worker
    run at once, so RUSAGE_CHILDREN's per-process maximum would undercount).
    """
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    parent = psutil.Process(process.pid)
    peak = 0
    tree: list[psutil.Process] = [parent]
    listed = 0.0
    worker_cpu = 0.0
    while process.poll() is None:
        # Listing the children scans all of /proc: every 0.25 s only (the MLflow worker lives
        # from the run's start to its end), so the sampling costs the timed run no CPU to
        # speak of; reading an RSS is one small /proc file.
        now = time.perf_counter()
        if now - listed > 0.25:
            with contextlib.suppress(psutil.Error):
                tree = [parent, *parent.children(recursive=True)]
            listed = now
        total = 0
        for p in tree:
            with contextlib.suppress(psutil.Error):
                rss = p.memory_info().rss
                total += rss
                # the run's process and its MLflow worker, apart
                part = "run" if p.pid == process.pid else "worker"
                PART_PEAKS_MB[part] = max(PART_PEAKS_MB.get(part, 0), rss / 2**20)
                if part == "worker":  # its CPU so far (its last sample: nearly all of it)
                    times = p.cpu_times()
                    worker_cpu = times.user + times.system
        peak = max(peak, total)
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the whole tree: the MLflow worker is waited for by the run's process.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    LAST_WORKER_CPU_S[0] = worker_cpu
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return done, wall, peak / 2**20, cpu


def rerun(
    harness: list[str],
    env: dict[str, str],
    rows: int,
    judges: list[str],
    mlflow: bool,
    expected: dict,
) -> tuple[float, float, float]:
    done, wall, peak, cpu = tree_peak_rss([*harness, *run_args(mlflow, judges)], env)
    if done.returncode != 0:
        raise SystemExit(f"rerun failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    calls = result["calls"]
    sent = calls["model"]["requests"] + calls["judge"]["requests"]
    hits = calls["model"]["cache_hits"] + calls["judge"]["cache_hits"]
    assert sent == 0, f"the rerun sent {sent} requests"
    assert hits == (1 + len(judges)) * rows, f"{hits} cache hits for {rows} rows"
    assert result["metrics"] == expected, "the rerun changed a metric"
    assert (result["mlflow_run_id"] is not None) == mlflow, result["mlflow_run_id"]
    if mlflow:
        WORKER_CPU_S.append(LAST_WORKER_CPU_S[0])
        WRITTEN_BY.add(written_by(Path(env["HARNESS_HOME"]), result["mlflow_run_id"]))
    return wall, peak, cpu


PART_PEAKS_MB: dict[str, float] = {}  # the largest RSS each process of a rerun reached
LAST_WORKER_CPU_S = [0.0]  # the MLflow worker's CPU seconds in the last rerun
WORKER_CPU_S: list[float] = []  # ... in each rerun with MLflow
WRITTEN_BY: set[str] = set()  # how the timed reruns' MLflow runs were written


def written_by(home: Path, run_id: str) -> str:
    """How the run's traces were written, from its ``harness.traces`` tag: ``sql-direct``
    (the SQL path, no MLflow import), ``sql-bulk`` or ``store-api`` (MLflow's API)."""
    import sqlite3

    db = home / MLRUNS_DIR / DB_FILE
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (tag,) = conn.execute(
            "SELECT value FROM tags WHERE run_uuid = ? AND key = ?", (run_id, TRACES_TAG)
        ).fetchone()
    return str(tag).rsplit("(", 1)[-1].rstrip(")")


FILLED = "filled"  # the stores as the fill left them, put back before each rerun


def snapshot(home: Path) -> None:
    """Keep the home's stores (DuckDB, the MLflow store) as the fill left them."""
    kept = home / FILLED
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir()
    for db in home.glob("harness.duckdb*"):
        shutil.copy2(db, kept / db.name)
    shutil.copytree(home / MLRUNS_DIR, kept / MLRUNS_DIR)


def restore(home: Path) -> None:
    """Put the fill's stores back: every rerun writes its run into both stores, and a home
    reused across invocations grew by a 10,000-row run (and its traces) each time, which
    made each later rerun slower than the one before (22 reruns: a 222 MB DuckDB file and a
    3.5 GB MLflow store, where the fill leaves 26 MB and 137 MB). Not timed."""
    kept = home / FILLED
    for db in home.glob("harness.duckdb*"):
        db.unlink()
    for db in kept.glob("harness.duckdb*"):
        shutil.copy2(db, home / db.name)
    shutil.rmtree(home / MLRUNS_DIR)
    shutil.copytree(kept / MLRUNS_DIR, home / MLRUNS_DIR)


@contextlib.contextmanager
def filled_home(rows: int, judges: list[str], keep: Path | None) -> Iterator[tuple[Path, dict]]:
    """A project home whose cache holds every call of ``rows`` rows, and the metrics of
    the run that filled it (``expected``, with ``cold_s``: the fill's wall time, None when
    reused).

    With ``keep`` the home lives under that folder and is reused by later invocations
    (filling 100,000 rows takes many minutes and is not what this times); else it is a
    temporary folder.
    """
    with contextlib.ExitStack() as stack:
        if keep is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-bench-")))
        else:
            home = keep / f"rows{rows}-calls{1 + len(judges)}"
            home.mkdir(parents=True, exist_ok=True)
        os.environ.update(
            {"HARNESS_HOME": str(home), "OPENAI_BASE_URL": DEAD_URL, "OPENAI_API_KEY": "sk-bench"}
        )
        marker = home / "bench-filled.json"
        if marker.exists() and (home / FILLED).is_dir():
            yield home, {**json.loads(marker.read_text()), "cold_s": None}
            return
        if marker.exists():  # kept by an older bench, its stores grown by every rerun
            print(f"{home}: kept without the fill's stores; filling it again", flush=True)
            shutil.rmtree(home)
            home.mkdir()
        data = home / "bench.jsonl"
        make_dataset(data, rows)
        subprocess.run(
            [*HARNESS, "data", "import", str(data), "--name", "bench"],
            env=bench_env(home),
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        cold_started = time.perf_counter()
        import httpx

        # MLflow on: the store, prompt version and model exist before the reruns.
        config = bench_config(judges)
        client = httpx.AsyncClient(transport=httpx.MockTransport(fake_openai))
        cold = run_eval(config, home=home, http_client=client)
        cold_s = time.perf_counter() - cold_started
        assert cold.errors == 0, cold.error_reasons
        expected = {"metrics": json.loads(json.dumps(cold.metrics))}
        snapshot(home)
        marker.write_text(json.dumps(expected))
        yield home, {**expected, "cold_s": cold_s}


def bench_config(judges: list[str]) -> RunConfig:
    """The run that fills the cache, as ``run_eval`` takes it; ``run_args`` is the same run
    on the command line. A rerun of it is answered by the cache alone."""
    return RunConfig(
        data="bench",
        model="openai:/bench-model",
        metrics=["token_f1", "rougeL"],
        judges=judges,
        judge_model="openai:/bench-judge",
        concurrency=64,
        mlflow=True,
    )


def bench_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HARNESS_HOME": str(home),
        "OPENAI_BASE_URL": DEAD_URL,
        "OPENAI_API_KEY": "sk-bench",
        "PYTHONPATH": str(REPO),
    }


HARNESS = [sys.executable, "-m", "harness"]


def measure(
    rows: int,
    repeat: int,
    judges: list[str],
    with_baseline: bool,
    keep: Path | None,
    mlflow: bool = True,
) -> dict[str, Any]:
    """Fill the cache (and the MLflow store) once, then rerun ``repeat`` times, alternating
    MLflow on and ``--no-mlflow`` so both see the same machine load (``mlflow`` False:
    every rerun without MLflow, and no baseline)."""
    with filled_home(rows, judges, keep) as (home, filled):
        env = bench_env(home)
        on: list[float] = []
        off: list[float] = []
        peaks: list[float] = []
        cpu_on: list[float] = []
        cpu_off: list[float] = []
        loads: list[float] = []
        for _ in range(repeat):
            restore(home)
            loads.append(os.getloadavg()[0])
            wall, peak, cpu = rerun(HARNESS, env, rows, judges, mlflow, filled["metrics"])
            on.append(wall)
            peaks.append(peak)
            cpu_on.append(cpu)
            if with_baseline:
                restore(home)
                wall, _, cpu = rerun(HARNESS, env, rows, judges, False, filled["metrics"])
                off.append(wall)
                cpu_off.append(cpu)
        return {
            "rows": rows,
            "calls": 1 + len(judges),
            "cold_s": filled["cold_s"],
            "on": on,
            "off": off,
            "peak_mb": peaks,
            "cpu_on": cpu_on,
            "cpu_off": cpu_off,
            "loads": loads,
        }


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def each(values: list[float], unit: str = "s") -> str:
    return ", ".join(f"{v:.2f}{unit}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goal1-rows", type=int, default=1000, help="0 skips goal 1")
    parser.add_argument("--sizes", default="1000,10000", help="goal 3's sizes (4 calls a row)")
    parser.add_argument("--repeat", type=int, default=3, help="reruns per size and mode")
    parser.add_argument(
        "--no-mlflow",
        action="store_true",
        help="rerun goal 3's sizes with --no-mlflow (a CI replay's shape), not the goals",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the filled project homes in this folder and reuse them in later runs",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    from _bytecode import compile_harness

    print(compile_harness())
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    if args.goal1_rows:
        r = measure(args.goal1_rows, args.repeat, JUDGES[:1], True, args.keep)
        on, off = statistics.median(r["on"]), statistics.median(r["off"])
        extra = [a - b for a, b in zip(r["on"], r["off"], strict=True)]
        print(
            f"goal 1: {r['rows']:,} rows x (model + judge), cached rerun, alternating "
            f"(1-min load before each pair: {each(r['loads'], '')}):\n"
            f"  with MLflow (table + traces): {each(r['on'])}; median {on:.2f} s\n"
            f"  --no-mlflow:                  {each(r['off'])}; median {off:.2f} s\n"
            f"  MLflow adds {', '.join(f'{e:+.2f} s' for e in extra)}; median "
            f"{statistics.median(extra):+.2f} s against the +{LIMIT_EXTRA_1K_S:.1f} s limit, "
            f"ratio {statistics.median(extra) / LIMIT_EXTRA_1K_S:.2f}\n"
            f"  CPU of the process tree: with MLflow median {statistics.median(r['cpu_on']):.2f} s"
            f", --no-mlflow {statistics.median(r['cpu_off']):.2f} s (what MLflow costs the "
            f"machine); peak RSS {max(r['peak_mb']):.0f} MB",
            flush=True,
        )
    results = []
    if sizes:
        print(
            f"{'goal 3: ' if not args.no_mlflow else ''}cached rerun, 1 model + "
            f"{len(JUDGES)} judge calls per row, MLflow {'off' if args.no_mlflow else 'on'}"
        )
    for rows in sizes:
        PART_PEAKS_MB.clear()
        WORKER_CPU_S.clear()
        r = measure(rows, args.repeat, JUDGES, False, args.keep, mlflow=not args.no_mlflow)
        results.append(r)
        on = statistics.median(r["on"])
        peak = max(r["peak_mb"])
        fill = "reused" if r["cold_s"] is None else f"{r['cold_s']:.1f} s"
        print(
            f"  {rows:>7,} rows: {each(r['on'])} (1-min load before each: "
            f"{each(r['loads'], '')}); median {on:.2f} s, {on / rows * 1e6:,.0f} us/row; "
            f"peak RSS of the process tree {each(r['peak_mb'], ' MB')} (alone: the run's "
            f"process {PART_PEAKS_MB.get('run', 0):.0f} MB, the MLflow worker "
            f"{PART_PEAKS_MB.get('worker', 0):.0f} MB); CPU median "
            f"{statistics.median(r['cpu_on']):.2f} s (the MLflow worker's "
            f"{statistics.median(WORKER_CPU_S or [0.0]):.2f} s); cache fill {fill}",
            flush=True,
        )
        if rows == 10_000 and not args.no_mlflow:  # the goals are with MLflow on
            cores = os.cpu_count() or 1
            floor = statistics.median(r["cpu_on"]) / cores
            # Over the limit, no overlap of the run, its worker and DuckDB's threads can
            # meet it: only less CPU can.
            verdict = ": over the limit, only less CPU can meet it" if floor > LIMIT_10K_S else ""
            print(
                f"  goal 3: median {on:.2f} s against the {LIMIT_10K_S:.0f} s limit, ratio "
                f"{on / LIMIT_10K_S:.2f}; the tree's CPU spread evenly over all {cores} "
                f"cores would take {floor:.2f} s (ratio {floor / LIMIT_10K_S:.2f}{verdict})"
                f"\n  goal 4: peak RSS {peak:.0f} MB against "
                f"{LIMIT_RSS_MB} MB, ratio {peak / LIMIT_RSS_MB:.2f}",
                flush=True,
            )
    if WRITTEN_BY:
        print(f"  the reruns' MLflow runs were written by: {', '.join(sorted(WRITTEN_BY))}")
    for a, b in zip(results, results[1:], strict=False):
        per_row_a = statistics.median(a["on"]) / a["rows"]
        per_row_b = statistics.median(b["on"]) / b["rows"]
        print(
            f"  linearity {a['rows']:,} -> {b['rows']:,} rows: time x"
            f"{statistics.median(b['on']) / statistics.median(a['on']):.1f} for x"
            f"{b['rows'] / a['rows']:.0f} rows; time per row x{per_row_b / per_row_a:.2f} "
            f"against the x{LIMIT_LINEAR:.2f} limit, ratio "
            f"{per_row_b / per_row_a / LIMIT_LINEAR:.2f}"
        )


if __name__ == "__main__":
    main()
