"""Runs and their per-row outputs and scores in DuckDB.

A run writes its rows in batches, each in one short transaction (``write_batch``), so
another process can read between batches and a crash loses at most the batch in flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from harness.errors import RunNotFound
from harness.store.db import connect

if TYPE_CHECKING:
    import pandas as pd


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class OutputRow:
    example_id: str
    output: str | None
    error: str | None
    latency_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    request_key: str | None
    cached: bool | None


@dataclass
class ScoreRow:
    example_id: str
    metric: str
    value: float | None
    source: str = "code"  # code | llm_judge
    sample: int = 0
    label: str | None = None
    rationale: str | None = None
    raw: str | None = None
    error: str | None = None
    request_key: str | None = None
    cached: bool | None = None


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
    # A sampled run: {"size", "seed", "stratify", "rows", "population"}; None otherwise.
    sample: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "dataset": f"{self.dataset}@{self.dataset_version}",
            "model": self.model,
            "status": self.status,
            "rows": self.rows_total,
            "rows_done": self.rows_done,
            "errors": self.errors,
            "metrics": self.metrics,
            "usage": self.usage,
            "mlflow_run_id": self.mlflow_run_id,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "sample": self.sample,
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
    """Create a run; a sampled run's description and chosen ids go in the same transaction."""
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "INSERT INTO runs (run_id, run_name, dataset, dataset_version, model, status, "
                "config, rows_total, created_at, sample) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                [
                    run_id,
                    run_name,
                    dataset,
                    dataset_version,
                    model,
                    json.dumps(config, sort_keys=True),
                    rows_total,
                    _now(),
                    json.dumps(sample) if sample is not None else None,
                ],
            )
            if example_ids is not None:
                chosen = pa.table(
                    {
                        "run_id": pa.array([run_id] * len(example_ids), pa.string()),
                        "example_id": pa.array(example_ids, pa.string()),
                    }
                )
                con.register("chosen_examples", chosen)
                con.execute("INSERT INTO run_examples SELECT * FROM chosen_examples")
                con.unregister("chosen_examples")
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


_OUTPUT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("example_id", pa.string()),
        ("output", pa.string()),
        ("error", pa.string()),
        ("latency_s", pa.float64()),
        ("input_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
        ("cost_usd", pa.float64()),
        ("request_key", pa.string()),
        ("cached", pa.bool_()),
        ("created_at", pa.timestamp("us")),
    ]
)
SCORE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("example_id", pa.string()),
        ("metric", pa.string()),
        ("sample", pa.int32()),
        ("value", pa.float64()),
        ("label", pa.string()),
        ("rationale", pa.string()),
        ("raw", pa.string()),
        ("error", pa.string()),
        ("source", pa.string()),
        ("request_key", pa.string()),
        ("cached", pa.bool_()),
    ]
)


def write_batch(
    db_path: Path, run_id: str, outputs: list[OutputRow], scores: list[ScoreRow]
) -> None:
    """Append one batch of rows in a single short transaction (bulk, through Arrow)."""
    if not outputs and not scores:
        return
    now = _now()
    out_table = pa.Table.from_pylist(
        [{"run_id": run_id, **vars(o), "created_at": now} for o in outputs], schema=_OUTPUT_SCHEMA
    )
    score_table = pa.Table.from_pylist(
        [{"run_id": run_id, **vars(s)} for s in scores], schema=SCORE_SCHEMA
    )
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("batch_outputs", out_table)
            con.register("batch_scores", score_table)
            # Column lists are explicit so the table's physical order never matters.
            con.execute(
                f"INSERT INTO outputs ({', '.join(_OUTPUT_SCHEMA.names)}) "
                "SELECT * FROM batch_outputs"
            )
            con.execute(
                f"INSERT INTO scores ({', '.join(SCORE_SCHEMA.names)}) SELECT * FROM batch_scores"
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("batch_outputs")
            con.unregister("batch_scores")


def finish_run(
    db_path: Path,
    run_id: str,
    *,
    status: str,
    metrics: dict[str, Any],
    usage: dict[str, Any],
    errors: int,
) -> None:
    with connect(db_path) as con:
        con.execute(
            "UPDATE runs SET status = ?, metrics = ?, usage = ?, errors = ?, finished_at = ? "
            "WHERE run_id = ?",
            [status, json.dumps(metrics), json.dumps(usage), errors, _now(), run_id],
        )


def set_mlflow_run_id(db_path: Path, run_id: str, mlflow_run_id: str) -> None:
    with connect(db_path) as con:
        con.execute("UPDATE runs SET mlflow_run_id = ? WHERE run_id = ?", [mlflow_run_id, run_id])


_RUN_COLUMNS = (
    "r.run_id, r.run_name, r.dataset, r.dataset_version, r.model, r.status, r.config, r.metrics, "
    "r.usage, r.rows_total, (SELECT count(*) FROM outputs o WHERE o.run_id = r.run_id), "
    "r.errors, r.mlflow_run_id, r.created_at, r.finished_at, r.sample"
)


def _run_info(row: tuple[Any, ...]) -> RunInfo:
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
        sample,
    ) = row
    return RunInfo(
        run_id,
        run_name,
        dataset,
        version,
        model,
        status,
        json.loads(config),
        json.loads(metrics or "{}"),
        json.loads(usage or "{}"),
        total,
        done,
        errors,
        mlflow_run_id,
        created_at,
        finished_at,
        json.loads(sample) if sample else None,
    )


def list_runs(db_path: Path, limit: int | None = None) -> list[RunInfo]:
    sql = f"SELECT {_RUN_COLUMNS} FROM runs r ORDER BY r.created_at DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    with connect(db_path, read_only=True) as con:
        return [_run_info(r) for r in con.execute(sql).fetchall()]


def get_run(db_path: Path, run_id: str) -> RunInfo:
    """A run by its id or an unambiguous prefix of it."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r WHERE starts_with(r.run_id, ?)", [run_id]
        ).fetchall()
    if not rows:
        raise RunNotFound(f"no run {run_id!r}; see `harness runs list`")
    if len(rows) > 1:
        raise RunNotFound(f"run id {run_id!r} is ambiguous: it starts {len(rows)} runs")
    return _run_info(rows[0])


def prepare_resume(db_path: Path, run_id: str) -> set[str]:
    """Forget a run's failed rows so they are tried again; return the examples done.

    A failed row's model call was never paid for (errors are not cached), so trying it
    again costs no more than the first attempt did.
    """
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "DELETE FROM scores WHERE run_id = ? AND example_id IN "
            "(SELECT example_id FROM outputs WHERE run_id = ? AND error IS NOT NULL)",
            [run_id, run_id],
        )
        con.execute("DELETE FROM outputs WHERE run_id = ? AND error IS NOT NULL", [run_id])
        con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [run_id])
        con.execute("COMMIT")
        return {
            r[0]
            for r in con.execute(
                "SELECT example_id FROM outputs WHERE run_id = ?", [run_id]
            ).fetchall()
        }


def load_outputs(db_path: Path, run_id: str) -> pd.DataFrame:
    """Outputs joined with their examples, in dataset order."""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            """
            SELECT o.example_id AS id, e.input, e.expected, e.context, o.output, o.error,
                   o.latency_s, o.input_tokens, o.output_tokens, o.cost_usd, o.request_key,
                   o.cached
            FROM outputs o
            JOIN runs r ON r.run_id = o.run_id
            LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                                AND e.id = o.example_id
            WHERE o.run_id = ?
            ORDER BY e.position
            """,
            [run_id],
        ).df()


def load_scores(db_path: Path, run_id: str) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return con.execute(
            "SELECT example_id, metric, sample, value, label, rationale, raw, error, source, "
            "request_key, cached FROM scores WHERE run_id = ? ORDER BY example_id, metric, sample",
            [run_id],
        ).df()


def request_keys(db_path: Path, run_id: str) -> set[str]:
    """Every cache key a run's model and judge calls used (for ``cache export --run``)."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT request_key FROM outputs WHERE run_id = ? AND request_key IS NOT NULL "
            "UNION SELECT request_key FROM scores WHERE run_id = ? AND request_key IS NOT NULL",
            [run_id, run_id],
        ).fetchall()
    return {r[0] for r in rows}


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
