"""Real ``harness`` processes for the tests of signals, crashes and faults.

The tests start ``python -m harness`` as a child with its own project home, send it
signals, and read what it left in DuckDB and MLflow, the way a user (or CI) would.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"


def harness_env(home: Path, server: Any = None, **extra: str) -> dict[str, str]:
    """The environment of a harness child: its home, the fake server, no stray settings."""
    env = dict(os.environ)
    env.update(
        {
            "HARNESS_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]),
            "OPENAI_API_KEY": "sk-test-processes",
        }
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_base_url
    env.update(extra)
    return env


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(TESTS),
    )


def harness(env: dict[str, str], *args: str, timeout: float = 300) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(TESTS),
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


def import_rows(env: dict[str, str], folder: Path, n: int, name: str = "qa") -> None:
    """The first ``n`` PubMedQA rows as dataset ``name``."""
    lines = PUBMEDQA.read_text(encoding="utf-8").split("\n")[:n]
    path = folder / f"{name}-{n}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = harness(env, "data", "import", str(path), "--name", name)
    assert code == 0, err


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def paid(server: Any) -> Counter[str]:
    """How many times each distinct request body was answered for real (200, no fault)."""
    return Counter(
        r["body"]
        for r in server.stats()["requests"]
        if r["status"] == 200 and r["fault"] is None and not r["path"].startswith("/_")
    )


def query(home: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """``sql`` on the home's store, read-only. A run writing a batch holds the file's lock
    for a moment; a reader waits for it as harness's own do (harness.store.db), up to 60 s."""
    deadline = time.monotonic() + 60
    while True:
        try:
            con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
            break
        except duckdb.IOException as e:
            if "lock" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def mlflow_runs(home: Path, harness_run_id: str) -> list[tuple[str, str, str]]:
    """(MLflow run id, status, lifecycle stage) of the runs tagged with a harness run."""
    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        return con.execute(
            "SELECT r.run_uuid, r.status, r.lifecycle_stage FROM runs r JOIN tags t "
            "ON t.run_uuid = r.run_uuid WHERE t.key = 'harness.run_id' AND t.value = ? "
            "ORDER BY r.start_time",
            [harness_run_id],
        ).fetchall()
    finally:
        con.close()


def mlflow_traces(home: Path, mlflow_run_id: str) -> list[str]:
    """The row ids (client request ids) of an MLflow run's traces, one per trace."""
    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        rows = con.execute(
            "SELECT i.client_request_id FROM trace_info i JOIN trace_request_metadata m "
            "ON m.request_id = i.request_id WHERE m.key = 'mlflow.sourceRun' AND m.value = ?",
            [mlflow_run_id],
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def mlflow_metrics(home: Path, mlflow_run_id: str) -> dict[str, float]:
    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        rows = con.execute(
            "SELECT key, value FROM latest_metrics WHERE run_uuid = ?", [mlflow_run_id]
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def run_lock_free(home: Path, harness_run_id: str) -> bool:
    """Whether no process holds the run's MLflow lock (a worker left behind is done)."""
    from filelock import FileLock, Timeout

    path = home / "mlruns" / ".locks" / f"run-{harness_run_id}.lock"
    if not path.exists():
        return True
    try:
        with FileLock(path, timeout=0):
            return True
    except Timeout:
        return False


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def json_doc(text: str) -> dict[str, Any]:
    """stdout of ``--json``: exactly one JSON document."""
    document: dict[str, Any] = json.loads(text)
    return document


# A run of the `qa` rows (``import_rows``) against an OpenAI-style server, and what its
# summary says: "(STORED of TOTAL rows, FAILED failed" and "model calls: ..., N failed;".
QA_RUN = ("run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--no-mlflow")
ROW_LINE = re.compile(r"\((\d+) of (\d+) rows, (\d+) failed")
CALLS_FAILED = re.compile(r"^model calls: .*, (\d+) failed;", re.MULTILINE)


def said_counts(text: str) -> tuple[int, int, int]:
    """(rows stored, failed rows, failed model calls) as a summary's lines say them."""
    rows = ROW_LINE.search(text)
    calls = CALLS_FAILED.search(text)
    assert rows is not None and calls is not None, text
    return int(rows.group(1)), int(rows.group(3)), int(calls.group(1))
