"""Runs and their per-row outputs and scores in DuckDB.

A run writes its rows in batches, each in one short transaction (``write_batch``) with
its call counters so far, so another process can read between batches and a crash loses
at most the batch in flight; the counters of the calls paid since the last batch are in
the run's usage file (``harness.store.usage_file``), read with a run left ``running``.
A run records the process running it (``harness.store.owner``): one left ``running`` by a
process that is gone reads back as ``interrupted`` (``RunInfo.stale``), and
``claim_resume`` refuses a run that a live process is still running.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import RunBusy, RunDeleted, RunNotFound
from harness.store.bulk import OUTPUT_COLUMNS, SCORE_COLUMNS, insert_rows
from harness.store.db import connect
from harness.store.owner import Owner, current_owner
from harness.store.rows import OutputRow, ScoreRow
from harness.store.run_reads import (  # noqa: F401 - imported from here too
    OUTPUTS_SQL,
    SCORE_VALUES_SQL,
    SCORES_SQL,
    load_outputs,
    load_outputs_and_scores,
    load_score_values,
    load_scores,
    load_table_rows,
    request_keys,
    rows_stored,
)
from harness.store.usage_file import with_saved_usage


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class RunInfo:
    run_id: str
    run_name: str | None
    dataset: str
    dataset_version: str
    model: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    usage: dict[str, Any]
    rows_total: int
    rows_done: int
    errors: int | None
    mlflow_run_id: str | None
    created_at: datetime
    finished_at: datetime | None
    reason: str | None = None  # why it failed, stopped or was interrupted
    failures: dict[str, Any] = field(default_factory=dict)  # kind -> {failed, reasons}
    owner: Owner | None = None  # the process that runs (or ran) it
    mlflow_error: str | None = None  # why MLflow logging failed, until it is logged
    stale: bool = False  # stored as running, but its process is gone: shown as interrupted
    # A sampled run: {"size", "seed", "stratify", "rows", "population"}; None otherwise.
    sample: dict[str, Any] | None = None
    mlflow_opened_run_id: str | None = None  # the MLflow run its logging opened, if known

    @property
    def sweep_id(self) -> str | None:
        """The sweep this run is a point of (``harness runs show SWEEP_ID``), if any."""
        sweep = self.config.get("sweep")
        return sweep.get("id") if isinstance(sweep, dict) else None

    @property
    def mlflow_pending(self) -> bool:
        """Logging to MLflow was asked for and has not completed (`harness runs log` does it)."""
        return bool(self.config.get("mlflow", True)) and self.mlflow_run_id is None

    @property
    def mlflow_partial_run_id(self) -> str | None:
        """The MLflow run holding part of this run (the rows logged before it was
        interrupted, stopped or failed, or before its MLflow end failed), until logging
        completes it (``mlflow_run_id``); whatever the run's status."""
        return self.mlflow_opened_run_id if self.mlflow_run_id is None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "dataset": f"{self.dataset}@{self.dataset_version}",
            "model": self.model,
            "status": self.status,
            "reason": self.reason,
            "rows": self.rows_total,
            "rows_done": self.rows_done,
            "errors": self.errors,
            "failures": self.failures,
            "metrics": self.metrics,
            "usage": self.usage,
            "mlflow_run_id": self.mlflow_run_id,
            "mlflow_error": self.mlflow_error,
            "mlflow_partial_run_id": self.mlflow_partial_run_id,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "sample": self.sample,
            "process": {"pid": self.owner.pid, "host": self.owner.host} if self.owner else None,
            "config": self.config,
        }


def create_run(
    db_path: Path,
    *,
    run_id: str,
    run_name: str | None,
    dataset: str,
    dataset_version: str,
    model: str,
    config: dict[str, Any],
    rows_total: int,
    sample: dict[str, Any] | None = None,
    example_ids: list[str] | None = None,
) -> None:
    """A new run, ``running`` in this process; a sampled run's description and chosen ids
    go in the same transaction."""
    owner = current_owner()
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "INSERT INTO runs (run_id, run_name, dataset, dataset_version, model, status, "
                "config, rows_total, created_at, pid, host, pid_started, pid_boot, "
                "pid_since_boot, sample) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                [
                    run_id,
                    run_name,
                    dataset,
                    dataset_version,
                    model,
                    json.dumps(config, sort_keys=True),
                    rows_total,
                    _now(),
                    owner.pid,
                    owner.host,
                    owner.started,
                    owner.boot,
                    owner.since_boot,
                    json.dumps(sample) if sample is not None else None,
                ],
            )
            if example_ids is not None:
                con.execute(
                    "INSERT INTO run_examples SELECT $run, unnest($ids::VARCHAR[])",
                    {"run": run_id, "ids": example_ids},
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def run_example_ids(db_path: Path, run_id: str) -> list[str] | None:
    """The example ids a sampled run chose; None for a run over every row."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT example_id FROM run_examples WHERE run_id = ?", [run_id]
        ).fetchall()
    return [r[0] for r in rows] or None


def write_batch(
    db_path: Path,
    run_id: str,
    outputs: list[OutputRow],
    scores: list[ScoreRow],
    usage: Mapping[str, Any] | None = None,
    mlflow_opened_run_id: str | None = None,
) -> None:
    """Append one batch of rows in a single short transaction (``harness.store.bulk``).

    ``usage``, the run's call counters so far (``runs.usage``), is stored in the same
    transaction: a run killed later (SIGKILL, a second Ctrl-C) keeps the spending of every
    row it stored, and ``--resume`` (its totals, ``--max-cost``) goes on from it. So is
    ``mlflow_opened_run_id``, the MLflow run the run's logging opened, once known: a run
    that never completes its logging still names the MLflow run holding its rows.
    """
    if not outputs and not scores:
        return
    now = _now()
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            insert_rows(
                con,
                "outputs",
                OUTPUT_COLUMNS,
                [vars(o) for o in outputs],
                {"run_id": run_id, "created_at": now},
                folder=db_path.parent,
            )
            insert_rows(
                con, "scores", SCORE_COLUMNS, [vars(s) for s in scores], {"run_id": run_id},
                folder=db_path.parent,
            )  # fmt: skip
            if usage is not None:
                con.execute(
                    "UPDATE runs SET usage = ? WHERE run_id = ?", [json.dumps(usage), run_id]
                )
            if mlflow_opened_run_id is not None:
                con.execute(
                    "UPDATE runs SET mlflow_opened_run_id = ? WHERE run_id = ?",
                    [mlflow_opened_run_id, run_id],
                )
            # `harness runs delete --force` from another process: store no row of a run
            # that is gone (the rollback below), and stop it.
            gone = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()
            if gone == (0,):
                raise RunDeleted(
                    f"run {run_id} was deleted while it ran (`harness runs delete --force`); "
                    "it stopped, and the rows it had done are not kept"
                )
            con.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) has rolled back already; the error is the news.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise


def replace_scores(db_path: Path, run_id: str, metrics: list[str], scores: list[ScoreRow]) -> None:
    """Swap a run's scores of ``metrics`` for ``scores``, in one transaction.

    For the metrics computed over all of a run's rows once they are done (MLflow's
    ``eval_fn``): computed again after ``--resume``, their old rows must go.
    """
    if not metrics:
        return
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "DELETE FROM scores WHERE run_id = ? AND list_contains(?, metric)",
                [run_id, metrics],
            )
            insert_rows(
                con, "scores", SCORE_COLUMNS, [vars(s) for s in scores], {"run_id": run_id},
                folder=db_path.parent,
            )  # fmt: skip
            con.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) has rolled back already; the error is the news.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise


def finish_run(
    db_path: Path,
    run_id: str,
    *,
    status: str,
    metrics: dict[str, Any],
    usage: dict[str, Any],
    errors: int,
    failures: dict[str, Any] | None = None,
    reason: str | None = None,
    finished_at: datetime | None = None,
) -> None:
    """End a run: ``finished``, ``failed``, ``interrupted`` or ``stopped``, and why."""
    ended = finished_at.astimezone(timezone.utc).replace(tzinfo=None) if finished_at else _now()
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute(
            "UPDATE runs SET status = ?, metrics = ?, usage = ?, errors = ?, failures = ?, "
            "reason = ?, finished_at = ? WHERE run_id = ?",
            [
                status,
                json.dumps(metrics),
                json.dumps(usage),
                errors,
                json.dumps(failures or {}),
                reason,
                ended,
                run_id,
            ],
        )


def set_mlflow_run_id(db_path: Path, run_id: str, mlflow_run_id: str) -> None:
    """The run is logged to MLflow, completely."""
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute(
            "UPDATE runs SET mlflow_run_id = ?, mlflow_error = NULL WHERE run_id = ?",
            [mlflow_run_id, run_id],
        )


def set_mlflow_opened_run_id(db_path: Path, run_id: str, mlflow_run_id: str) -> None:
    """The MLflow run the run's logging opened (logging may not complete: see
    ``RunInfo.mlflow_partial_run_id``)."""
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute(
            "UPDATE runs SET mlflow_opened_run_id = ? WHERE run_id = ?", [mlflow_run_id, run_id]
        )


def set_mlflow_error(db_path: Path, run_id: str, error: str) -> None:
    """MLflow logging failed (one line); `harness runs log` can catch up later."""
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute("UPDATE runs SET mlflow_error = ? WHERE run_id = ?", [error, run_id])


_RUN_COLUMNS = (
    "r.run_id, r.run_name, r.dataset, r.dataset_version, r.model, r.status, r.config, r.metrics, "
    "r.usage, r.rows_total, (SELECT count(*) FROM outputs o WHERE o.run_id = r.run_id), "
    "r.errors, r.mlflow_run_id, r.created_at, r.finished_at, r.reason, r.failures, r.pid, "
    "r.host, r.pid_started, r.pid_boot, r.pid_since_boot, r.mlflow_error, r.sample, "
    "r.mlflow_opened_run_id"
)


def _run_info(row: tuple[Any, ...], db_path: Path) -> RunInfo:
    """A ``runs`` row of the store at ``db_path``; one stored ``running`` (its process may
    be gone) with the counters its file saved since its last batch (``usage_file``)."""
    (
        run_id,
        run_name,
        dataset,
        version,
        model,
        status,
        config,
        metrics,
        usage,
        total,
        done,
        errors,
        mlflow_run_id,
        created_at,
        finished_at,
        reason,
        failures,
        pid,
        host,
        pid_started,
        pid_boot,
        pid_since_boot,
        mlflow_error,
        sample,
        mlflow_opened_run_id,
    ) = row
    owner = (
        Owner(pid, host, pid_started, pid_boot, pid_since_boot)
        if pid is not None and host
        else None
    )
    counters = json.loads(usage or "{}")
    if status == "running":
        counters = with_saved_usage(db_path, run_id, counters)
    stale = status == "running" and (owner is None or not owner.is_alive())
    if stale:
        status = "interrupted"
        gone = (
            f"the process that ran it ({owner.describe()}) is gone"
            if owner
            else "it was left running by a process that did not record itself"
        )
        reason = reason or f"{gone}; resume it with `harness run --resume {run_id}`"
    return RunInfo(
        run_id,
        run_name,
        dataset,
        version,
        model,
        status,
        json.loads(config),
        json.loads(metrics or "{}"),
        counters,
        total,
        done,
        errors,
        mlflow_run_id,
        created_at,
        finished_at,
        reason=reason,
        failures=json.loads(failures or "{}"),
        owner=owner,
        mlflow_error=mlflow_error,
        stale=stale,
        sample=json.loads(sample) if sample else None,
        mlflow_opened_run_id=mlflow_opened_run_id,
    )


def list_runs(db_path: Path, limit: int | None = None) -> list[RunInfo]:
    sql = f"SELECT {_RUN_COLUMNS} FROM runs r ORDER BY r.created_at DESC"
    if limit:  # DuckDB's LIMIT is an int64: more is every run (was exit 74)
        sql += f" LIMIT {min(int(limit), 2**63 - 1)}"
    with connect(db_path, read_only=True) as con:
        return [_run_info(r, db_path) for r in con.execute(sql).fetchall()]


def get_run(db_path: Path, run_id: str) -> RunInfo:
    """A run by its id or an unambiguous prefix of it."""
    with connect(db_path, read_only=True) as con:
        return run_in(con, run_id, db_path)


def run_in(con: Any, run_id: str, db_path: Path) -> RunInfo:
    """``get_run`` on an open connection to ``db_path`` (one open for a run and what is
    read with it)."""
    rows = con.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs r WHERE starts_with(r.run_id, ?)", [run_id]
    ).fetchall()
    if not rows:
        raise RunNotFound(f"no run {run_id!r}; see `harness runs list`")
    if len(rows) > 1:
        raise RunNotFound(f"run id {run_id!r} is ambiguous: it starts {len(rows)} runs")
    return _run_info(rows[0], db_path)


# A row failed when its model call or any of its judge calls did (an unusable verdict too).
_FAILED_ROWS = (
    "SELECT example_id FROM outputs WHERE run_id = $run AND error IS NOT NULL "
    "UNION SELECT example_id FROM scores WHERE run_id = $run AND source = 'llm_judge' "
    "AND error IS NOT NULL"
)


def claim_resume(db_path: Path, run_id: str) -> set[str]:
    """Take a run over for ``--resume``: forget its failed rows; return the examples done.

    In one transaction (DuckDB lets one process write at a time, so two resumes cannot
    both claim it): a run still ``running`` in a live process raises ``RunBusy``; else
    this process becomes its owner. A failed row's paid calls are in the cache (errors
    are not cached), so trying it again costs no more than the calls that failed.
    """
    owner = current_owner()
    with connect(db_path, merge=False) as con:  # on a run's path: see store.db
        con.execute("BEGIN TRANSACTION")
        try:
            row = con.execute(
                "SELECT status, pid, host, pid_started, pid_boot, pid_since_boot FROM runs "
                "WHERE run_id = ?",
                [run_id],
            ).fetchone()
            if row is None:
                raise RunNotFound(f"no run {run_id!r}; see `harness runs list`")
            status, pid, host, started, boot, since_boot = row
            holder = (
                Owner(pid, host, started, boot, since_boot) if pid is not None and host else None
            )
            busy = status == "running" and holder is not None and holder != owner
            if busy and holder is not None and holder.is_alive():
                raise RunBusy(
                    f"run {run_id} is running in another process ({holder.describe()}); "
                    "let it finish, or stop it (Ctrl-C) and resume then"
                )
            failed = [r[0] for r in con.execute(_FAILED_ROWS, {"run": run_id}).fetchall()]
            for table in ("scores", "outputs"):
                con.execute(
                    f"DELETE FROM {table} WHERE run_id = ? AND list_contains(?, example_id)",
                    [run_id, failed],
                )
            con.execute(
                "UPDATE runs SET status = 'running', reason = NULL, pid = ?, host = ?, "
                "pid_started = ?, pid_boot = ?, pid_since_boot = ? WHERE run_id = ?",
                [owner.pid, owner.host, owner.started, owner.boot, owner.since_boot, run_id],
            )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        return {
            r[0]
            for r in con.execute(
                "SELECT example_id FROM outputs WHERE run_id = ?", [run_id]
            ).fetchall()
        }


def failures(db_path: Path, run_id: str, top: int = 5) -> tuple[dict[str, dict[str, Any]], int]:
    """What failed in a run's stored rows, per kind of call, and how many rows failed
    (their model call, or a judge call: an unusable verdict too), read in one open.

    ``{"model": {"failed": 3, "reasons": [[reason, count], ...]}, "judge": {...}}``, the
    ``top`` most common reasons first; a kind with nothing failed is left out.
    """
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT 'model' AS kind, error, count(*) AS n FROM outputs "
            "WHERE run_id = $run AND error IS NOT NULL GROUP BY error "
            "UNION ALL SELECT 'judge', error, count(*) FROM scores "
            "WHERE run_id = $run AND source = 'llm_judge' AND error IS NOT NULL GROUP BY error",
            {"run": run_id},
        ).fetchall()
        failed = con.execute(f"SELECT count(*) FROM ({_FAILED_ROWS})", {"run": run_id}).fetchone()
    found: dict[str, dict[str, Any]] = {}
    for kind, error, count in sorted(rows, key=lambda r: (-r[2], r[1])):
        entry = found.setdefault(kind, {"failed": 0, "reasons": []})
        entry["failed"] += count
        if len(entry["reasons"]) < top:
            entry["reasons"].append([error, count])
    return found, int(failed[0]) if failed else 0


def delete_run(db_path: Path, run_id: str) -> tuple[RunInfo, list[str]]:
    """Delete a run's rows, outputs, scores and tags in one transaction; return the run as it
    was and the tags it had. (``harness.runner.deletion`` also deletes its MLflow run.)"""
    info = get_run(db_path, run_id)
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        tags = [
            r[0]
            for r in con.execute(
                "SELECT name FROM run_tags WHERE run_id = ? ORDER BY name", [info.run_id]
            ).fetchall()
        ]
        for table in ("scores", "outputs", "run_tags", "run_examples", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [info.run_id])
        con.execute("COMMIT")
    return info, tags
