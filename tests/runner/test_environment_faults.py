"""Faults of the environment are named in one line, exit 74, and leave a resumable run.

A full disk and a read-only home are real: ``fault_home.py`` runs harness in a user and
mount namespace (``unshare -rm``, no root needed) where a small tmpfs is mounted over the
project home, so writes fail with ENOSPC where the OS says so, or the home is bind-mounted
read-only (EROFS). Where no namespace can be made, the full disk is ``RLIMIT_FSIZE`` in
the children instead (writes past it fail with EFBIG): the test says which it used.
A locked, a damaged DuckDB file and a damaged MLflow store are made by hand.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import (
    TESTS,
    harness,
    harness_env,
    import_rows,
    json_doc,
    last_line,
    mlflow_runs,
    mlflow_traces,
    paid,
    query,
)

from harness.testing import FakeLLMServer

RUN = ("run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.002, max_recorded=100_000) as running:
        yield running


def namespaces_work() -> bool:
    """Whether this machine lets an unprivileged process make a user + mount namespace."""
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt || exit 1"],
        capture_output=True,
    )
    return done.returncode == 0


def in_fault_home(tmp_path: Path, spec: dict[str, object]) -> dict[str, object]:
    out = tmp_path / "out"
    out.mkdir()
    spec = {**spec, "out": str(out), "cwd": str(TESTS)}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    script = str(Path(__file__).with_name("fault_home.py"))
    if namespaces_work():
        command = ["unshare", "-rm", sys.executable, script, str(path), "mount"]
    else:
        command = [sys.executable, script, str(path), "rlimit"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    results: dict[str, object] = json.loads((out / "results.json").read_text())
    results["home"] = out / "home"
    return results


def test_a_full_disk_is_named_exit_74_and_the_run_resumes_once_space_is_freed(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    stage, home = tmp_path / "stage", tmp_path / "home-on-tmpfs"
    stage.mkdir()
    home.mkdir()
    report = home / "report.html"  # on the full disk too: written by the run that finishes
    import_rows(harness_env(stage), tmp_path, 300)
    server.reset()
    results = in_fault_home(
        tmp_path,
        {
            "kind": "full",
            "home": str(home),
            "stage": str(stage),
            "size": "24m",
            "free_bytes": 1_500_000,
            "env": harness_env(home, server),
            "steps": [[*RUN, "--json", "--report", str(report)], ["runs", "list", "--json"],
                      "free space",
                      ["run", "--resume", "{run_id}", "--json", "--report", str(report)]],
        },
    )  # fmt: skip
    mode = results["mode"]
    print(f"full disk made by: {'a 24 MB tmpfs' if mode == 'mount' else 'RLIMIT_FSIZE'}")
    first, listed, _, resumed = results["steps"]  # type: ignore[misc]
    document = json_doc(first["out"])
    run_id = document["run_id"]
    assert first["code"] == 74, first["err"]
    # One line on stderr, naming the fault and the file, and what to do next.
    fault = "no space left on device" if mode == "mount" else "file size limit reached"
    assert re.fullmatch(
        rf"error: {fault} while writing {re.escape(str(home))}/\S+; "
        rf"free space and run `harness run --resume {run_id}`\n",
        first["err"],
    ), first["err"]
    assert document["status"] == "failed" and document["reason"].startswith(fault)
    assert all("\n" not in w and "SQL" not in w for w in document["warnings"])
    [row] = json.loads(listed["out"])
    assert row["run_id"] == run_id and row["status"] in ("failed", "interrupted")
    # When even the run's end found no room (DuckDB's WAL), the rows are still reported
    # and a warning says the run reads back as interrupted; when it was stored, no warning.
    unstored = [w for w in document["warnings"] if "the run's end could not be stored" in w]
    assert bool(unstored) == (row["status"] == "interrupted"), (row, document["warnings"])

    assert resumed["code"] == 0, resumed["err"]
    done = json_doc(resumed["out"])
    assert done["status"] == "finished" and done["rows_done"] == 300 and done["errors"] == 0
    assert document["report"] is None and done["report"] == str(report), done["warnings"]
    left = Path(str(results["home"]))
    written = (left / report.name).read_text(encoding="utf-8")
    assert f"<dd>{run_id}</dd>" in written and "300 rows, finished" in written
    assert query(left, "SELECT status, count(*) FROM runs JOIN outputs USING (run_id) "
                 "GROUP BY status") == [("finished", 300)]  # fmt: skip
    [(mlflow_run_id, status, _)] = mlflow_runs(left, run_id)
    assert status == "FINISHED" and len(set(mlflow_traces(left, mlflow_run_id))) == 300
    assert max(paid(server).values()) <= 2  # a call whose cache write failed, paid again


def test_a_read_only_home_is_named_and_runs_list_still_reads_it(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    if not namespaces_work():
        pytest.fail("a read-only bind mount needs `unshare -rm` (user namespaces)")
    stage, home = tmp_path / "stage", tmp_path / "read-only-home"
    stage.mkdir()
    home.mkdir()
    import_rows(harness_env(stage), tmp_path, 20)
    results = in_fault_home(
        tmp_path,
        {
            "kind": "read-only",
            "home": str(home),
            "stage": str(stage),
            "env": harness_env(home, server),
            "steps": [[*RUN], ["data", "list"]],
        },
    )
    run, listed = results["steps"]  # type: ignore[misc]
    assert run["code"] == 74
    # One line naming the first thing harness had to write (today the cache folder).
    assert re.fullmatch(
        rf"error: {re.escape(str(home))}/\S+ is on a read-only file system\n", run["err"]
    ), run["err"]
    assert listed["code"] == 0 and "qa" in listed["out"]  # reading needs no write


def test_a_locked_duckdb_file_is_waited_for_then_named(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    env = harness_env(home, server, HARNESS_LOCK_TIMEOUT_S="1")
    import_rows(env, tmp_path, 5)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(home / "harness.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, _, err = harness(env, *RUN, "--no-mlflow")
    finally:
        holder.kill()
        holder.wait()
    assert code == 74
    assert err == (
        f"error: {home}/harness.duckdb is held by another process (waited 1 s); "
        "try again when it finishes\n"
    )


def test_a_damaged_duckdb_file_is_named(home: Path, tmp_path: Path) -> None:
    env = harness_env(home)
    import_rows(env, tmp_path, 5)
    with open(home / "harness.duckdb", "r+b") as f:
        f.write(b"\x00garbage" * 1024)
    code, _, err = harness(env, "run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert code == 74
    assert err == (
        f"error: the DuckDB store at {home}/harness.duckdb is damaged or not a database (not "
        "a valid duckdb database file); move it aside (harness starts a new one) or restore "
        "a copy\n"
    )


def test_a_damaged_mlflow_store_fails_the_logging_not_the_run_and_runs_log_catches_up(
    home: Path, tmp_path: Path
) -> None:
    env = harness_env(home)
    import_rows(env, tmp_path, 10)
    (home / "mlruns").mkdir()
    store = home / "mlruns" / "mlflow.db"
    store.write_bytes(b"this is not SQLite" * 4000)
    code, out, err = harness(env, "run", "--data", "qa", "--model", "echo", "--json")
    assert code == 74
    document = json_doc(out)
    run_id = document["run_id"]
    assert document["status"] == "finished" and document["rows_done"] == 10
    damaged = (
        f"the MLflow store at {store} is damaged or not a database (file is not a database); "
        "move it aside (harness starts a new one) or restore a copy"
    )
    assert document["mlflow_error"] == damaged
    assert "Traceback" not in err and "SQL" not in err
    assert last_line(err) == (
        f"error: the run is stored, but logging it to MLflow failed: {damaged}; "
        f"log it with `harness runs log {run_id}`"
    )
    code, out, _ = harness(env, "runs", "list")
    assert "failed" in out.split(run_id, 1)[1].splitlines()[0]  # the mlflow column
    code, out, _ = harness(env, "runs", "show", run_id)
    assert f"MLflow logging failed: {damaged}; log it with `harness runs log {run_id}`" in out

    store.rename(store.with_suffix(".damaged"))
    code, out, err = harness(env, "runs", "log", run_id, "--json")
    assert code == 0, err
    logged = json_doc(out)
    assert logged["traces"] == logged["traces_written"] == 10 and not logged["resumed"]
    assert mlflow_runs(home, run_id) == [(logged["mlflow_run_id"], "FINISHED", "active")]
    assert query(home, "SELECT mlflow_run_id, mlflow_error FROM runs") == [
        (logged["mlflow_run_id"], None)
    ]


def test_two_runs_started_together_in_a_fresh_home_both_reach_mlflow(
    home: Path, tmp_path: Path
) -> None:
    env = harness_env(home)
    import_rows(env, tmp_path, 30)
    assert not (home / "mlruns").exists()
    args = [sys.executable, "-m", "harness", "run", "--data", "qa", "--model", "echo", "--json"]
    runs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=str(TESTS))
        for _ in range(3)
    ]  # fmt: skip
    outcomes = [(p.communicate(timeout=600), p.returncode) for p in runs]
    for (out, err), code in outcomes:
        assert code == 0, err
        assert not json_doc(out)["warnings"]
    for (out, _), _ in outcomes:
        document = json_doc(out)
        [(mlflow_run_id, status, _)] = mlflow_runs(home, document["run_id"])
        assert (mlflow_run_id, status) == (document["mlflow_run_id"], "FINISHED")
        assert len(mlflow_traces(home, mlflow_run_id)) == 30
