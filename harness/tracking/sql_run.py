"""A run's MLflow record written with ``sqlite3`` into a verified store, without MLflow.

``SqlRunLogger`` has ``RunLogger``'s protocol (``add_rows``, ``finish``, ``abort``) and
writes what ``RunLogger`` writes through MLflow's client — the run and its tags, params,
metrics (also as the configuration model's metrics), the dataset and model inputs, the
artifacts, the traces, the registration of the prompt version and configuration model
and the links to them (``harness.tracking.sql_registry``) — as the rows MLflow's SQL store
would insert for those calls. ``SqlRunLogger.open`` returns None when it cannot (the store
is not verified, the experiment's artifacts are not on a local path, a key or a prompt
MLflow must refuse in its own words), before writing anything;
``harness.tracking.mlflow_log`` then uses MLflow's API. tests/tracking/test_mlflow_sql.py
compares runs written both ways.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from harness.errors import TrackingError
from harness.tracking.mlflow_names import (
    ARTIFACTS_FOLDER,
    MAX_PARAM_VAL_LENGTH,
    Tag,
    valid_key,
)
from harness.tracking.mlflow_sqlite import connect, mapped_sqlite_errors, transaction
from harness.tracking.mlflow_store import DEFAULT_EXPERIMENT, epoch_ms, user_name
from harness.tracking.record import (
    HARNESS_RUN_TAG,
    MLFLOW_DIGEST_MAX,
    TABLE_ARTIFACT,
    TRACES_TAG,
    RunRecord,
)
from harness.tracking.sql_artifacts import (
    RenderedRows,
    dataset_entity,
    render_rows,
    write_artifacts,
)

if TYPE_CHECKING:
    from harness.tracking.registry import RegistryLinks
    from harness.tracking.traces import RowTrace

__all__ = ["SqlRunLogger", "logged_tables_tag", "opened_with_sql", "run_tags"]

_INF = 1.7976931348623157e308  # MLflow stores +-inf metrics as the largest float


def run_tags(record: RunRecord, parent_run_id: str | None = None) -> dict[str, str]:
    """The tags a harness run is created with (both ways of logging use these)."""
    tags = {
        HARNESS_RUN_TAG: record.run_id,
        Tag.USER: user_name(),
        Tag.SOURCE_NAME: "harness",
        Tag.SOURCE_TYPE: "LOCAL",
        # Marks an evaluation run, as mlflow.genai.evaluate does, for the UI's eval views.
        Tag.RUN_TYPE: Tag.RUN_TYPE_GENAI_EVALUATE,
        # mlflow.log_table registers tables here; the UI's evaluation view reads the list.
        Tag.LOGGED_ARTIFACTS: logged_tables_tag(record.tables)[1],
    }
    if parent_run_id:
        # The UI nests child runs under their parent; sync maps the id on copy.
        tags[Tag.PARENT_RUN_ID] = parent_run_id
    return tags


def logged_tables_tag(tables: Iterable[str]) -> tuple[str, str]:
    """The tag that lists a run's tables (the per-row one, then ``tables``) for the UI."""
    paths = [TABLE_ARTIFACT, *tables]
    return Tag.LOGGED_ARTIFACTS, json.dumps([{"path": p, "type": "table"} for p in paths])


def _refused_key(record: RunRecord) -> str | None:
    """The first param or metric key MLflow would refuse, if any."""
    keys = [*map(str, record.params), *map(str, record.metrics)]
    return next((key for key in keys if not valid_key(key)), None)


class _LeftToMlflow(Exception):
    """Raised inside the run's transaction when MLflow's API must register the run's
    prompt or model: the transaction is rolled back, nothing is written."""


Opened = TypeVar("Opened", bound="SqlRunLogger")


def opened_with_sql(
    head: RunRecord,
    db_path: Path,
    make: Callable[[sqlite3.Connection, str], Opened | None],
) -> Opened | None:
    """``make(conn, what)`` on a new connection to the store: the logger it opens on that
    connection, or None (the connection closed, nothing written) when it opens none, MLflow
    must write the run (``_LeftToMlflow``, a key MLflow refuses in its own words)."""
    if _refused_key(head) is not None:
        return None
    what = f"cannot log run {head.run_id} to MLflow at {db_path}"
    conn = connect(db_path)
    try:
        with mapped_sqlite_errors(what):
            opened = make(conn, what)
    except _LeftToMlflow:
        opened = None
    except BaseException:
        conn.close()
        raise
    if opened is None:
        conn.close()
    return opened


class SqlRunLogger:
    """One MLflow run in a verified SQLite store, logged in stages like ``RunLogger``."""

    @classmethod
    def open(
        cls,
        head: RunRecord,
        *,
        db_path: Path,
        traces: bool = True,
        replaces: str | None = None,
        register: bool = False,
        new_only: bool = False,
    ) -> SqlRunLogger | None:
        """Create the run, or return None (having written nothing) when MLflow must.

        ``new_only``: None as well when the experiment holds a run of this harness run
        already (``ResumingLogger`` continues it: ``sql_resume.ResumedSqlRun``).
        """
        return opened_with_sql(
            head,
            db_path,
            lambda conn, what: cls._create(
                conn, head, what, db_path, traces, replaces, register, new_only
            ),
        )

    @classmethod
    def _create(
        cls,
        conn: sqlite3.Connection,
        head: RunRecord,
        what: str,
        db_path: Path,
        traces: bool,
        replaces: str | None,
        register: bool,
        new_only: bool,
    ) -> SqlRunLogger | None:
        from harness.tracking.sql_registry import find_links, link_run, register_links

        with transaction(conn):
            name = head.experiment or DEFAULT_EXPERIMENT
            experiment = _experiment(conn, name, db_path)
            if experiment is None:
                return None
            experiment_id, location = experiment
            if new_only and _logged_before(conn, experiment_id, head.run_id):
                return None
            run_id = uuid.uuid4().hex
            links = find_links(conn, head, experiment_id, name) if register else None
            if register and links is None:
                links = register_links(conn, head, experiment_id, name, location, run_id)
                if links is None:
                    raise _LeftToMlflow  # nothing written: the transaction rolls back
            parent = head.parent_run_id or (
                _tag(conn, replaces, Tag.PARENT_RUN_ID) if replaces else None
            )
            run_name = head.run_name or head.run_id
            tags = run_tags(head, parent)
            tags[Tag.RUN_NAME] = run_name
            conn.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id, deleted_time) VALUES "
                "(?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                (
                    run_id, run_name, tags[Tag.USER], epoch_ms(head.started_at),
                    f"{location}/{run_id}/{ARTIFACTS_FOLDER}", experiment_id,
                ),
            )  # fmt: skip
            link_tags = link_run(conn, run_id, links) if links is not None else []
            _set_tags(conn, run_id, [*tags.items(), *link_tags])
        return cls(conn, what, run_id, experiment_id, location, links, traces, replaces)

    def __init__(
        self,
        conn: sqlite3.Connection,
        what: str,
        run_id: str,
        experiment_id: int,
        artifact_location: str,
        links: RegistryLinks | None,
        traces: bool,
        replaces: str | None,
    ) -> None:
        self._conn, self._what = conn, what
        self.run_id = run_id
        self.experiment_id, self.artifact_location = experiment_id, artifact_location
        self.links, self.traces, self.replaces = links, traces, replaces
        self.trace_count = 0
        self.trace_note: str | None = None
        # What an earlier run holds already (``sql_resume.ResumedSqlRun``): not logged again.
        self.logged_params: frozenset[str] = frozenset()
        self.inputs_logged = False

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            with mapped_sqlite_errors(self._what):
                yield
        except BaseException:
            self._set_status("FAILED", int(time.time() * 1000))
            raise

    def _set_status(self, status: str, end_ms: int) -> None:
        with contextlib.suppress(sqlite3.Error), transaction(self._conn):
            self._conn.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                (status, end_ms, self.run_id),
            )

    def add_rows(self, record: RunRecord) -> None:
        """Write the traces of ``record.rows`` (with ``record.feedback``) to the run."""
        if not self.traces or record.rows is None or record.rows.empty:
            return
        from harness.tracking.traces import build_row_traces

        self.add_traces(build_row_traces(record))

    def add_traces(self, row_traces: list[RowTrace]) -> None:
        """Write rows already made into traces (``harness.tracking.traces.row_traces``)."""
        if not self.traces or not row_traces:
            return
        from harness.tracking.registry import LINKED_PROMPTS_TAG
        from harness.tracking.traces_sql import write_traces_sqlite

        with self._failing():
            links = self.links
            tags = {LINKED_PROMPTS_TAG: links.linked_prompts} if links is not None else None
            write_traces_sqlite(
                self._conn, row_traces, experiment_id=self.experiment_id,
                artifact_location=self.artifact_location, mlflow_run_id=self.run_id,
                model_id=links.model_id if links is not None else None, tags=tags,
            )  # fmt: skip
            self.trace_count += len(row_traces)
            self.trace_note = "{count} traces (sql-direct)"

    def finish(self, record: RunRecord, rendered: RenderedRows | None = None) -> str:
        """Log params, metrics, inputs and artifacts, end the run, return its id.

        ``rendered`` is ``render_rows(record)`` made elsewhere (the MLflow worker gets it
        from the run's process, so it never needs pandas); ``record.rows`` is not read then.
        """
        with self._failing():
            refused = _refused_key(record)
            if refused is not None:  # as MLflow's API would refuse it (the run: FAILED)
                raise TrackingError(
                    f"{self._what}: MLflow takes no key {refused!r} (names hold letters, "
                    f"digits, _ - . : / and spaces, at most 250 of them, and no path steps)"
                )
            rendered = rendered or render_rows(record)
            artifact_dir = Path(f"{self.artifact_location}/{self.run_id}/{ARTIFACTS_FOLDER}")
            write_artifacts(artifact_dir, record, rendered)
            dataset = rendered.dataset or dataset_entity(record, infer=True)
            assert dataset is not None  # inferred by MLflow when not plain text
            with transaction(self._conn):
                self._log_params_and_metrics(record)
                if not self.inputs_logged:
                    self._log_inputs(record, dataset)
                tags = []
                if rendered.tables:  # the UI lists the tables this tag names
                    tags.append(logged_tables_tag(rendered.tables))
                if self.trace_note is not None:
                    tags.append((TRACES_TAG, self.trace_note.format(count=self.trace_count)))
                _set_tags(self._conn, self.run_id, tags)
                self._conn.execute(
                    "UPDATE runs SET status = 'FINISHED', end_time = ? WHERE run_uuid = ?",
                    (epoch_ms(record.finished_at), self.run_id),
                )
        with mapped_sqlite_errors(self._what):
            if self.replaces and self.replaces != self.run_id:
                with transaction(self._conn):
                    if not _mark_deleted(self._conn, self.replaces):
                        raise TrackingError(f"{self._what}: run {self.replaces} not found")
        self._conn.close()
        return self.run_id

    def stop(self, status: str, parent: str | None = None) -> None:
        """End the run unfinished (``KILLED`` or ``FAILED``), keeping what it holds; and
        ``parent`` (a sweep's run, whose process is gone) ``KILLED``, if still running."""
        now = int(time.time() * 1000)
        try:
            with mapped_sqlite_errors(self._what), transaction(self._conn):
                self._conn.execute(
                    "UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                    (status, now, self.run_id),
                )
                if parent is not None:
                    self._conn.execute(
                        "UPDATE runs SET status = 'KILLED', end_time = ? "
                        "WHERE run_uuid = ? AND status = 'RUNNING'",
                        (now, parent),
                    )
        finally:
            self._conn.close()

    def abort(self) -> None:
        """Best effort: delete a run that will not be finished."""
        with contextlib.suppress(sqlite3.Error):
            with transaction(self._conn):
                _mark_deleted(self._conn, self.run_id)
            self._conn.close()

    def _log_params_and_metrics(self, record: RunRecord) -> None:
        conn, run_id, links = self._conn, self.run_id, self.links
        values = {str(k): str(v) for k, v in record.params.items()}
        if links is not None:
            values["prompt_uri"] = links.prompt_uri
        conn.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
            [
                (k, v[:MAX_PARAM_VAL_LENGTH], run_id)
                for k, v in values.items()
                if k not in self.logged_params
            ],
        )
        timestamp = epoch_ms(record.finished_at)
        metrics = []
        for key, value in record.metrics.items():
            if value is None or math.isnan(float(value)):
                continue  # an aggregate over no scored rows; MLflow charts cannot use it
            number = float(value)
            if math.isinf(number):
                number = _INF if number > 0 else -_INF
            metrics.append((str(key), number, timestamp, run_id))
        # As MLflow's log_batch: a value logged already (same key, time, step) is not
        # added again, and the latest is the greatest (step, timestamp, value).
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, 0, 0) ON CONFLICT DO NOTHING",
            metrics,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, 0, 0) ON CONFLICT (key, run_uuid) DO UPDATE SET "
            "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
            "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) "
            "> (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
            metrics,
        )
        if links is not None:
            # Metrics with a model id are also the model's metrics, per dataset, as
            # mlflow.genai.evaluate logs them for an active model.
            digest = record.dataset_digest[:MLFLOW_DIGEST_MAX]
            conn.executemany(
                "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, "
                "metric_step, metric_value, experiment_id, run_id, dataset_uuid, dataset_name, "
                "dataset_digest) VALUES (?, ?, ?, 0, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (links.model_id, key, ts, number, self.experiment_id, run_id,
                     record.dataset_name, digest)
                    for key, number, ts, _ in metrics
                ],
            )  # fmt: skip

    def _log_inputs(self, record: RunRecord, dataset: dict[str, str]) -> None:
        """The dataset (and the configuration's model) as the run's inputs."""
        conn, run_id = self._conn, self.run_id
        found = conn.execute(
            "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            (self.experiment_id, dataset["name"], dataset["digest"]),
        ).fetchone()
        if found is not None:
            dataset_uuid = found[0]
        else:
            dataset_uuid = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, "
                "dataset_source_type, dataset_source, dataset_schema, dataset_profile) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    dataset_uuid, self.experiment_id, dataset["name"], dataset["digest"],
                    dataset["source_type"], dataset["source"], dataset["schema"],
                    dataset["profile"],
                ),
            )  # fmt: skip
        input_uuid = uuid.uuid4().hex
        conn.execute(
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, "
            "destination_id, step) VALUES (?, 'DATASET', ?, 'RUN', ?, 0)",
            (input_uuid, dataset_uuid, run_id),
        )
        conn.execute(
            "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, 'eval')",
            (input_uuid, Tag.DATASET_CONTEXT),
        )
        if self.links is not None:
            conn.execute(
                "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, "
                "destination_id, step) VALUES (?, 'RUN_INPUT', ?, 'MODEL_INPUT', ?, 0)",
                (uuid.uuid4().hex, run_id, self.links.model_id),
            )


def _experiment(conn: sqlite3.Connection, name: str, db_path: Path) -> tuple[int, str] | None:
    """The experiment's id and artifact location, created as MLflow's store creates one.

    None when its artifacts are not under a local path (MLflow's artifact repositories
    then write them).
    """
    row = conn.execute(
        "SELECT experiment_id, artifact_location, lifecycle_stage FROM experiments "
        "WHERE workspace = 'default' AND name = ?",
        (name,),
    ).fetchone()
    if row is None:
        now = int(time.time() * 1000)
        cursor = conn.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
            "last_update_time, workspace) VALUES (?, NULL, 'active', ?, ?, 'default')",
            (name, now, now),
        )
        experiment_id = int(cursor.lastrowid or 0)
        # The store's default location: <artifact root>/<experiment id>.
        location = (db_path.parent / ARTIFACTS_FOLDER / str(experiment_id)).as_posix()
        conn.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (location, experiment_id),
        )
        return experiment_id, location
    experiment_id, location, stage = row
    if stage != "active":
        raise TrackingError(
            f"MLflow experiment {name!r} is deleted; restore it or use --experiment"
        )
    if not location or not str(location).startswith("/"):
        return None
    return int(experiment_id), str(location).rstrip("/")


def _logged_before(conn: sqlite3.Connection, experiment_id: int, harness_run_id: str) -> bool:
    """Whether the experiment holds a run (not deleted) logged for ``harness_run_id``."""
    row = conn.execute(
        "SELECT 1 FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
        "WHERE runs.experiment_id = ? AND runs.lifecycle_stage = 'active' "
        "AND tags.key = ? AND tags.value = ? LIMIT 1",
        (experiment_id, HARNESS_RUN_TAG, harness_run_id),
    ).fetchone()
    return row is not None


def _tag(conn: sqlite3.Connection, run_id: str, key: str) -> str | None:
    row = conn.execute(
        "SELECT value FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key)
    ).fetchone()
    return None if row is None else str(row[0])


def _set_tags(conn: sqlite3.Connection, run_id: str, tags: list[tuple[str, str]]) -> None:
    conn.executemany(
        "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
        "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
        [(k, v, run_id) for k, v in tags],
    )


def _mark_deleted(conn: sqlite3.Connection, run_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?",
        (int(time.time() * 1000), run_id),
    )
    return cursor.rowcount > 0
