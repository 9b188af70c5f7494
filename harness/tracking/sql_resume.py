"""Continue a harness run's earlier MLflow run with ``sqlite3``, as ``mlflow_resume`` does
through MLflow's API, in a verified store (no MLflow import).

``ResumedSqlRun.resume`` finds the runs tagged with the harness run (not deleted, oldest
first, as ``find_logged_runs`` lists them), keeps the one named or the oldest, marks the
others deleted (one harness run is one MLflow run), sets the kept one RUNNING, links it to
its prompt version and model again (``register``), and tidies its traces: those of rows
no longer stored, and a row's second trace, are deleted with what hangs on them (tags,
metadata, spans, assessments: the store's foreign keys cascade, as MLflow's
``delete_traces`` relies on). ``finish`` logs only what the run lacks: params it has not,
metrics whose latest value differs, the inputs when it has none. All of opening is one
transaction; None (nothing written) when MLflow's API must do it: a key MLflow refuses, an
experiment or run whose artifacts are not on a local path, a registration ``sql_registry``
leaves to MLflow, a stale trace whose spans MLflow archived elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.tracking.mlflow_names import ARTIFACTS_FOLDER, Tag
from harness.tracking.mlflow_sqlite import mapped_sqlite_errors, transaction
from harness.tracking.mlflow_store import DEFAULT_EXPERIMENT
from harness.tracking.record import HARNESS_RUN_TAG, TRACES_TAG, RunRecord
from harness.tracking.sql_run import (
    SqlRunLogger,
    _experiment,
    _LeftToMlflow,
    _mark_deleted,
    _set_tags,
    _tag,
    opened_with_sql,
)

if TYPE_CHECKING:
    from harness.tracking.sql_artifacts import RenderedRows

__all__ = ["ResumedSqlRun", "same_metric", "stale_traces"]

_ARCHIVED = "ARCHIVE_REPO"  # mlflow.tracing.constant.SpansLocation.ARCHIVE_REPO
_REVIEW_ITEM_TRACE = "trace"  # mlflow.genai.review_queues.ReviewItemType.TRACE
_CHUNK = 500  # ids per statement, well under SQLite's limit on parameters


class ResumedSqlRun(SqlRunLogger):
    """An earlier MLflow run of a harness run, continued with SQL (``SqlRunLogger``'s
    protocol); ``logged_rows``: the rows it holds a trace of, after tidying."""

    logged_rows: frozenset[str] = frozenset()

    @classmethod
    def resume(
        cls,
        head: RunRecord,
        *,
        db_path: Path,
        traces: bool = True,
        register: bool = False,
        known_run_id: str | None = None,
        keep_rows: Collection[str] | None = None,
    ) -> ResumedSqlRun | None:
        """Open the earlier run for writing, or return None (having written nothing) when
        there is none or MLflow's API must continue it."""
        return opened_with_sql(
            head,
            db_path,
            lambda conn, what: cls._continue(
                conn, head, what, db_path, traces, register, known_run_id, keep_rows
            ),
        )

    @classmethod
    def _continue(
        cls,
        conn: sqlite3.Connection,
        head: RunRecord,
        what: str,
        db_path: Path,
        traces: bool,
        register: bool,
        known: str | None,
        keep_rows: Collection[str] | None,
    ) -> ResumedSqlRun | None:
        from harness.tracking.sql_registry import find_links, link_run, register_links

        with transaction(conn):
            name = head.experiment or DEFAULT_EXPERIMENT
            experiment = _experiment(conn, name, db_path)
            if experiment is None:
                return None
            experiment_id, location = experiment
            found = conn.execute(
                "SELECT runs.run_uuid, runs.status, runs.artifact_uri FROM runs "
                "JOIN tags ON tags.run_uuid = runs.run_uuid WHERE runs.experiment_id = ? "
                "AND runs.lifecycle_stage = 'active' AND tags.key = ? AND tags.value = ? "
                "ORDER BY runs.start_time, runs.run_uuid",
                (experiment_id, HARNESS_RUN_TAG, head.run_id),
            ).fetchall()
            if not found:
                return None
            run_id, status, artifact_uri = next((r for r in found if r[0] == known), found[0])
            if artifact_uri != f"{location}/{run_id}/{ARTIFACTS_FOLDER}":
                raise _LeftToMlflow  # its artifacts are elsewhere: MLflow's repositories
            links = None
            if register:
                links = find_links(conn, head, experiment_id, name)
                if links is None:
                    links = register_links(conn, head, experiment_id, name, location, run_id)
                if links is None:
                    raise _LeftToMlflow
            logged = _tidy_traces(conn, experiment_id, run_id, keep_rows) if traces else set()
            for duplicate, _, _ in found:  # one harness run is one MLflow run
                if duplicate != run_id:
                    _mark_deleted(conn, duplicate)
            if status != "RUNNING":
                conn.execute("UPDATE runs SET status = 'RUNNING' WHERE run_uuid = ?", (run_id,))
            if links is not None:
                _set_tags(conn, run_id, link_run(conn, run_id, links))
        run = cls(conn, what, run_id, experiment_id, location, links, traces, None)
        run.logged_rows = frozenset(logged)
        run.trace_count = len(logged)
        return run

    def finish(self, record: RunRecord, rendered: RenderedRows | None = None) -> str:
        """Log what the run lacks of ``record`` and end it FINISHED; its id."""
        with mapped_sqlite_errors(self._what):
            record = self._missing(record)
        return super().finish(record, rendered)

    def _missing(self, record: RunRecord) -> RunRecord:
        """``record`` without the params the run has (MLflow refuses to change one) and
        the metrics whose latest logged value is the same (``ResumingLogger._missing``)."""
        conn, run_id = self._conn, self.run_id
        rows = conn.execute("SELECT key FROM params WHERE run_uuid = ?", (run_id,))
        params = {key for (key,) in rows}
        latest = {
            key: math.nan if is_nan else float(value)
            for key, value, is_nan in conn.execute(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,)
            )
        }
        self.logged_params = frozenset(params)
        self.inputs_logged = (
            conn.execute(
                "SELECT 1 FROM inputs WHERE destination_type = 'RUN' AND destination_id = ? "
                "AND source_type = 'DATASET' LIMIT 1",
                (run_id,),
            ).fetchone()
            is not None
        )
        if self.trace_note is None and self.trace_count and _tag(conn, run_id, TRACES_TAG) is None:
            self.trace_note = "{count} traces"  # written by a run that did not finish
        return dataclasses.replace(
            record,
            params={k: v for k, v in record.params.items() if str(k) not in params},
            metrics={k: v for k, v in record.metrics.items() if not same_metric(latest.get(k), v)},
        )


def _tidy_traces(
    conn: sqlite3.Connection, experiment_id: int, run_id: str, keep_rows: Collection[str] | None
) -> set[str]:
    """One trace per row, and none for a row that is not stored (any more): a failed row
    that ``--resume`` runs again gets a new one. Returns the rows traced."""
    found: dict[str, list[str]] = {}
    for trace_id, row_id in conn.execute(
        "SELECT t.request_id, t.client_request_id FROM trace_info t "
        "JOIN trace_request_metadata m ON m.request_id = t.request_id "
        "WHERE t.experiment_id = ? AND m.key = ? AND m.value = ? "
        "ORDER BY t.timestamp_ms, t.request_id",
        (experiment_id, Tag.SOURCE_RUN, run_id),
    ):
        if row_id:
            found.setdefault(row_id, []).append(trace_id)
    stale, kept = stale_traces(found, keep_rows)
    for start in range(0, len(stale), _CHUNK):
        chunk = stale[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        archived = conn.execute(
            f"SELECT 1 FROM trace_tags WHERE request_id IN ({marks}) AND key = ? AND value = ? "
            "LIMIT 1",
            (*chunk, Tag.SPANS_LOCATION, _ARCHIVED),
        ).fetchone()
        if archived is not None:
            raise _LeftToMlflow  # its spans are in an archive MLflow's API deletes
        conn.execute(f"DELETE FROM trace_info WHERE request_id IN ({marks})", chunk)
        conn.execute(
            f"DELETE FROM review_queue_items WHERE item_type = ? AND item_id IN ({marks})",
            (_REVIEW_ITEM_TRACE, *chunk),
        )
    return kept


def stale_traces(
    found: Mapping[str, list[str]], keep_rows: Collection[str] | None
) -> tuple[list[str], set[str]]:
    """Of a run's traces by row (``found``, oldest first), those to delete (a row not in
    ``keep_rows``, a row's second trace) and the rows left traced: one trace per row, none
    for a row no longer stored (``None``: keep every row). Either path's rule."""
    keep = None if keep_rows is None else set(keep_rows)
    stale: list[str] = []
    for row_id, trace_ids in found.items():
        if keep is not None and row_id not in keep:
            stale += trace_ids
        else:
            stale += trace_ids[1:]  # a row traced twice (an older harness): keep the first
    return stale, {r for r in found if keep is None or r in keep}


def same_metric(logged: float | None, value: Any) -> bool:
    """Whether ``value`` is the metric value logged already (NaN the same as NaN)."""
    if logged is None or value is None:
        return False
    number = float(value)
    return logged == number or (math.isnan(logged) and math.isnan(number))
