"""Benchmark: ``harness sync`` of one 10,000-row run to a local ``mlflow server``.

The run, in a fresh local store (SQLite, like ``<home>/mlruns``), holds 20 params, a few
metrics, the per-row table ``eval_results_table.json`` (ROWS rows) and TRACES traces of two
spans each, with one feedback and one expectation per trace: the shape ``harness run``
logs. Traces are written with the store's batch calls (``log_spans`` in bulk, then
``start_trace`` with the assessments), which is far cheaper than ``mlflow.start_span``.

The target is a real ``mlflow server`` on 127.0.0.1 (SQLite backend, ``--server-workers``
workers, artifacts served over HTTP), started here unless ``--target-uri`` is given. In one
run the script measures, in this order:

1. the floor: MLflow's own ``SqlAlchemyStore.start_trace``, in this process, on a fresh
   SQLite file, for the same trace infos with their assessments (what the server must do
   at least once per trace, with no HTTP, no JSON and no client);
2. a sync with ``traces=False`` into a fresh experiment (``bench-no-traces``);
3. the full sync into ``bench`` (``--profile FILE``: under cProfile, in every thread);
4. a second full sync, which must copy nothing.

It prints the full sync's time as a ratio to the floor and to the 60 s target, the
no-traces sync's ratio to 60 s, and the CPU seconds the client (this process) and the
server (its process group) spent during the full sync; then one JSON line on stdout.

    .venv/bin/python bench/bench_sync.py [--rows 10000] [--traces 10000]
        [--server-workers 2] [--sync-workers 4] [--profile FILE]
"""

from __future__ import annotations

import argparse
import base64
import copy
import cProfile
import json
import os
import pstats
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness.tracking.sync_runs as sync_runs  # noqa: E402
from harness.tracking.sync import SyncTarget, sync  # noqa: E402
from harness.tracking.sync_traces import (  # noqa: E402
    META_SOURCE_ASSESSMENT,
    TAG_SOURCE_TRACE,
    TRACE_CHUNK,
    chunks,
    search_traces,
    trace_tags,
)

TARGET_SECONDS = 60.0


def build_source(home: Path, rows: int, traces: int) -> tuple[str, str, str]:
    """A local store with one evaluation-like run; returns its URI, experiment and run id."""
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import (
        AssessmentSource,
        Expectation,
        Feedback,
        Metric,
        Param,
        Span,
        TraceInfo,
        TraceLocation,
        TraceState,
    )
    from mlflow.tracing.utils import encode_trace_id

    (home / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("bench", str(home / "mlruns" / "artifacts"))
    run = client.create_run(experiment, run_name="10k-rows")
    run_id = run.info.run_id
    rng = random.Random(0)
    table = pd.DataFrame(
        {
            "input": [f"What is {i} + {i}? Explain the steps." for i in range(rows)],
            "output": [f"{2 * i}, because adding {i} to itself doubles it." for i in range(rows)],
            "expected": [str(2 * i) for i in range(rows)],
            "exact_match": [rng.random() < 0.8 for _ in range(rows)],
        }
    )
    client.log_batch(run_id, params=[Param(f"param_{i}", f"value {i}") for i in range(20)])
    now_ms = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[
            Metric("exact_match/mean", 0.8, now_ms, 0),
            Metric("latency_ms/p50", 420.0, now_ms, 0),
        ],
    )
    client.log_table(run_id, table, "eval_results_table.json")

    store = client._tracking_client.store
    judge = AssessmentSource(source_type="LLM_JUDGE", source_id="judge")
    human = AssessmentSource(source_type="HUMAN", source_id="dataset")
    spans, infos = [], []
    start_ns = time.time_ns()
    for i in range(traces):
        otel_id = rng.getrandbits(128)
        trace_id = encode_trace_id(otel_id)
        root, child = rng.getrandbits(64), rng.getrandbits(64)
        t0 = start_ns + i * 2_000_000
        row = table.iloc[i % rows]
        for span_id, parent, name, kind in (
            (root, None, "row", "CHAIN"),
            (child, root, "llm", "LLM"),
        ):
            spans.append(
                Span.from_dict(
                    {
                        "trace_id": _b64(otel_id, 16),
                        "span_id": _b64(span_id, 8),
                        "parent_span_id": _b64(parent, 8) if parent else None,
                        "name": name,
                        "start_time_unix_nano": t0,
                        "end_time_unix_nano": t0 + 1_500_000,
                        "status": {"code": "STATUS_CODE_OK", "message": ""},
                        "events": [],
                        "links": [],
                        "attributes": {
                            "mlflow.traceRequestId": json.dumps(trace_id),
                            "mlflow.spanType": json.dumps(kind),
                            "mlflow.spanInputs": json.dumps({"input": row["input"]}),
                            "mlflow.spanOutputs": json.dumps(row["output"]),
                        },
                    }
                )
            )
        infos.append(
            TraceInfo(
                trace_id=trace_id,
                trace_location=TraceLocation.from_experiment_id(experiment),
                request_time=t0 // 1_000_000,
                execution_duration=1,
                state=TraceState.OK,
                request_preview=json.dumps({"input": row["input"]}),
                response_preview=json.dumps(row["output"]),
                trace_metadata={"mlflow.sourceRun": run_id},
                tags={"row": str(i)},
                assessments=[
                    Feedback(
                        name="exact_match",
                        value=bool(row["exact_match"]),
                        rationale="compared",
                        source=judge,
                        trace_id=trace_id,
                    ),
                    Expectation(
                        name="expected_response",
                        value=row["expected"],
                        source=human,
                        trace_id=trace_id,
                    ),
                ],
            )
        )
    for info in infos:
        store.start_trace(info)
    for start in range(0, len(spans), 2000):
        store.log_spans(experiment, spans[start : start + 2000])
    client.set_terminated(run_id)
    return uri, experiment, run_id


def _b64(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


def measure_floor(
    root: Path, source_uri: str, experiment_id: str, run_id: str
) -> tuple[float, float, float]:
    """Seconds MLflow's SqlAlchemyStore takes to create the run's traces, then their spans.

    Returns the wall seconds of the traces, their CPU seconds (steadier than the wall on a
    busy machine) and the wall seconds of the spans.

    The infos are the ones sync sends (read the same way, with the same tags and
    assessment metadata), created one by one on a fresh SQLite file: the least the server
    has to do per StartTraceV3, without HTTP, JSON or the client. The spans then go in
    with ``log_spans``, TRACE_CHUNK traces per call as sync sends them. Setup is not timed.
    """
    from mlflow.entities import TraceLocation
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracing.client import TracingClient

    infos = search_traces(TracingClient(source_uri), experiment_id, run_id)
    (root / "floor-artifacts").mkdir()
    store = SqlAlchemyStore(f"sqlite:///{root}/floor.db", str(root / "floor-artifacts"))
    experiment = store.create_experiment("floor")
    run = store.create_run(experiment, "bench", int(time.time() * 1000), [], "floor")
    twins = []
    for info in infos:
        twin = copy.copy(info)
        twin.trace_location = TraceLocation.from_experiment_id(experiment)
        twin.trace_metadata = {**info.trace_metadata, "mlflow.sourceRun": run.info.run_id}
        twin.tags = {**trace_tags(info), TAG_SOURCE_TRACE: info.trace_id}
        twin.assessments = []
        for assessment in info.assessments:
            copied = copy.copy(assessment)
            copied.metadata = {**(assessment.metadata or {}), META_SOURCE_ASSESSMENT: "x"}
            twin.assessments.append(copied)
        twins.append(twin)
    started, cpu_started = time.perf_counter(), time.process_time()
    for twin in twins:
        store.start_trace(twin)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    tracing = TracingClient(source_uri)
    spans = [
        [span for trace in tracing.store.batch_get_traces(list(ids)) for span in trace.data.spans]
        for ids in chunks([t.trace_id for t in infos], TRACE_CHUNK)
    ]
    started = time.perf_counter()
    for batch in spans:
        store.log_spans(experiment, batch)
    span_seconds = time.perf_counter() - started
    store.engine.dispose()
    return seconds, cpu_seconds, span_seconds


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


@contextmanager
def profiled(path: Path) -> Iterator[None]:
    """cProfile this thread and every thread started inside the block; save and summarise.

    cProfile sees one thread per profiler, and sync sends its requests from a thread pool,
    so each new thread starts its own profiler (through ``threading.setprofile``).
    """
    profiles: list[cProfile.Profile] = []
    guard = threading.Lock()

    def start(*_: Any) -> None:
        profiler = cProfile.Profile()
        with guard:
            profiles.append(profiler)
        profiler.enable()  # replaces this hook for the rest of the thread

    main = cProfile.Profile()
    profiles.append(main)
    threading.setprofile(start)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(*profiles, stream=sys.stderr)
        stats.dump_stats(str(path))
        print(
            f"profile ({len(profiles)} threads) saved to {path}; top by own time:", file=sys.stderr
        )
        stats.sort_stats("tottime").print_stats(25)
        print_profile_by_package(stats)


_PACKAGES = (
    ("waiting on the server (socket reads)", ("recv_into", "'recv'", "sock_recv")),
    ("waiting on threads/locks/queues", ("acquire' of '_thread", "'get' of '_queue", "'select'")),
    ("sqlite3 (reading the local store)", ("sqlite3",)),
    ("sqlalchemy", ("sqlalchemy",)),
    ("protobuf", ("google/protobuf", "protobuf")),
    ("json", ("json/",)),
    ("urllib3/requests/http.client", ("urllib3", "requests", "http/client")),
    ("ssl/socket (sending)", ("ssl", "'sendall'", "socket.py")),
    ("opentelemetry", ("opentelemetry",)),
    ("mlflow", ("mlflow/",)),
    ("harness", ("harness/",)),
)


def print_profile_by_package(stats: pstats.Stats) -> None:
    """Own time summed by where it is spent (first matching group wins)."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        where = f"{filename} '{name}'"
        group = next((g for g, keys in _PACKAGES if any(k in where for k in keys)), "other")
        totals[group] = totals.get(group, 0.0) + tottime
    print("own time by group (summed over threads; waits included):", file=sys.stderr)
    for group, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:8.2f} s  {group}", file=sys.stderr)


def start_server(root: Path, workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    command = [
        str(mlflow_bin),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root}/target.db",
        "--artifacts-destination",
        str(root / "target-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("mlflow server did not start:\n" + (root / "server.log").read_text()[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--target-uri", help="an MLflow server to sync to (default: start one)")
    parser.add_argument("--server-workers", type=int, default=2, help="mlflow server --workers")
    parser.add_argument(
        "--sync-workers", type=int, default=sync_runs.WORKERS, help="concurrent requests"
    )
    parser.add_argument("--profile", type=Path, help="cProfile the full sync into this file")
    args = parser.parse_args()
    sync_runs.WORKERS = args.sync_workers
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        proc = None
        if args.target_uri:
            target_uri = args.target_uri
        else:
            proc, target_uri = start_server(root, args.server_workers)
        try:
            started = time.monotonic()
            source, experiment_id, run_id = build_source(root / "home", args.rows, args.traces)
            say(
                f"built the source run ({args.rows} rows, {args.traces} traces) "
                f"in {time.monotonic() - started:.1f} s"
            )
            floor, floor_cpu, span_floor = measure_floor(root, source, experiment_id, run_id)
            say(
                f"floor: SqlAlchemyStore.start_trace x {args.traces} in {floor:.1f} s, "
                f"then log_spans in {span_floor:.1f} s"
            )
            fresh = SyncTarget(target_uri, experiment_path=lambda name: f"{name}-no-traces")
            light = sync(source, fresh, traces=False)
            say(f"sync without traces: {light.seconds:.2f} s")
            target = SyncTarget(target_uri)
            cpu_before = own_cpu_seconds(), group_cpu_seconds(proc.pid) if proc else 0.0
            if args.profile:
                with profiled(args.profile):
                    first = sync(source, target, progress=say)
            else:
                first = sync(source, target, progress=say)
            client_cpu = own_cpu_seconds() - cpu_before[0]
            server_cpu = group_cpu_seconds(proc.pid) - cpu_before[1] if proc else None
            second = sync(source, target)
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert second.totals["runs_skip"] == 1 and second.totals["traces"] == 0, second.totals
    assert light.totals["traces"] == 0 and light.totals["artifacts"] == 1, light.totals
    result = {
        "rows": args.rows,
        "traces": args.traces,
        "server_workers": None if args.target_uri else args.server_workers,
        "sync_workers": args.sync_workers,
        "profiled": bool(args.profile),
        "floor_s": round(floor, 2),
        "floor_ms_per_trace": round(1000 * floor / max(args.traces, 1), 2),
        "first_sync_s": round(first.seconds, 2),
        "ms_per_trace": round(1000 * first.seconds / max(args.traces, 1), 2),
        "ratio_to_floor": round(first.seconds / floor, 2) if floor else None,
        "floor_cpu_s": round(floor_cpu, 2),
        "spans_floor_s": round(span_floor, 2),
        "ratio_to_floor_with_spans": round(first.seconds / (floor + span_floor), 2),
        "ratio_to_60s": round(first.seconds / TARGET_SECONDS, 2),
        "no_traces_sync_s": round(light.seconds, 2),
        "no_traces_ratio_to_60s": round(light.seconds / TARGET_SECONDS, 3),
        "second_sync_s": round(second.seconds, 2),
        "client_cpu_s": round(client_cpu, 1),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 1),
        # CPU per trace on the server over the store's own: HTTP, (de)serialising, framework.
        "server_cpu_to_floor_cpu": round(server_cpu / floor_cpu, 2) if server_cpu else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "copied": first.totals,
    }
    say(
        f"full sync {first.seconds:.1f} s = {result['ratio_to_floor']}x the floor "
        f"({floor:.1f} s), {result['ratio_to_60s']}x the 60 s target; without traces "
        f"{light.seconds:.2f} s = {result['no_traces_ratio_to_60s']}x 60 s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
