"""Benchmark: ``harness sync`` of one 10,000-row run to a local ``mlflow server``.

The run, in a fresh local store (SQLite, like ``<home>/mlruns``), holds 20 params, a few
metrics, the per-row table ``eval_results_table.json`` (ROWS rows) and TRACES traces of two
spans each, with one feedback and one expectation per trace: the shape ``harness run``
logs. Traces are written with the store's batch calls (``log_spans`` in bulk, then
``start_trace`` with the assessments), which is far cheaper than ``mlflow.start_span``.

The target is a real ``mlflow server`` on 127.0.0.1 (SQLite backend, 2 workers, artifacts
served over HTTP), started here unless ``--target-uri`` is given. The script times the
first sync, then a second one (which must copy nothing), and prints the ratio of the
first to the 60 s target.

    .venv/bin/python bench/bench_sync.py [--rows 10000] [--traces 10000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.tracking.sync import SyncTarget, sync  # noqa: E402

TARGET_SECONDS = 60.0


def build_source(home: Path, rows: int, traces: int) -> str:
    """A local store with one evaluation-like run; returns its tracking URI."""
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
    return uri


def _b64(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
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
        "2",
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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        proc = None
        if args.target_uri:
            target_uri = args.target_uri
        else:
            proc, target_uri = start_server(root)
        try:
            started = time.monotonic()
            source = build_source(root / "home", args.rows, args.traces)
            print(
                f"built the source run ({args.rows} rows, {args.traces} traces) "
                f"in {time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
            target = SyncTarget(target_uri)
            first = sync(source, target, progress=lambda m: print(m, file=sys.stderr))
            second = sync(source, target)
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert second.totals["runs_skip"] == 1 and second.totals["traces"] == 0, second.totals
    result = {
        "rows": args.rows,
        "traces": args.traces,
        "first_sync_s": round(first.seconds, 2),
        "second_sync_s": round(second.seconds, 2),
        "ms_per_trace": round(1000 * first.seconds / max(args.traces, 1), 2),
        "ratio_to_60s": round(first.seconds / TARGET_SECONDS, 2),
        "copied": first.totals,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
