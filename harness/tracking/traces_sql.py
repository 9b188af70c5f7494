"""Bulk trace writes for MLflow's SQL store (the local ``sqlite:///.../mlflow.db``).

MLflow's trace API writes one trace per transaction (``start_trace``: ~7 ms) and one
assessment per transaction (``create_assessment``: ~3 ms); even ``log_spans``, its batch
path, updates each trace on its own (~1.5 ms per trace). Through that API, 1,000 rows with
4 assessments each took 35 s (22 s CPU) on a busy 2-core machine; here the same rows take
0.4 s, as one executemany INSERT per table and chunk, inside the store's own managed session and
through its own table definitions, so they follow the schema of the installed MLflow.
tests/tracking/test_mlflow_log.py checks that traces read back from this path equal traces
written through the public API (``traces.write_traces_via_store``).
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import time
from itertools import chain
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from harness.tracking.mlflow_names import ARTIFACTS_FOLDER, TRACES_FOLDER, Tag
from harness.tracking.traces import (
    FEEDBACK_ERROR_CODE,
    HARNESS_ROW_KEY,
    ROOT_SPAN_NAME,
    SPAN_TYPE,
    RowTrace,
    previews,
    span_attributes,
    span_events,
    time_ordered_id,
    trace_metadata,
)

if TYPE_CHECKING:
    from mlflow.entities import Experiment
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

DEFAULT_CHUNK_ROWS = 2000
# Parents first: the other tables hold foreign keys to trace_info.
_TABLES = (
    "trace_info",
    "trace_tags",
    "trace_request_metadata",
    "spans",
    "assessments",
    "entity_associations",
)


def is_sql_store(store: Any) -> bool:
    """Whether ``store`` is MLflow's SQLAlchemy tracking store (any SQL database)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return isinstance(store, SqlAlchemyStore)


def write_traces_sql(
    store: SqlAlchemyStore,
    traces: list[RowTrace],
    *,
    experiment: Experiment,
    mlflow_run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Insert ``traces`` (info, tags, metadata, spans, assessments, run links) in chunks.

    Each chunk is one transaction, so a reader (``mlflow ui``) waits at most one chunk.
    ``model_id`` links every trace to a LoggedModel; ``tags`` are set on every trace.
    """
    for start in range(0, len(traces), chunk_rows):
        chunk = traces[start : start + chunk_rows]
        tables = rows_for(
            chunk, experiment_id=int(experiment.experiment_id),
            artifact_location=experiment.artifact_location, mlflow_run_id=mlflow_run_id,
            model_id=model_id, tags=tags,
        )  # fmt: skip
        _insert(store, tables, experiment_id=int(experiment.experiment_id), chunk=chunk)


def write_traces_sqlite(
    conn: sqlite3.Connection,
    traces: list[RowTrace],
    *,
    experiment_id: int,
    artifact_location: str,
    mlflow_run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """``write_traces_sql`` for a verified SQLite store (``harness.tracking.mlflow_sqlite``),
    through the standard library's driver: no MLflow, no SQLAlchemy."""
    from harness.tracking.mlflow_sqlite import transaction

    for start in range(0, len(traces), chunk_rows):
        chunk = traces[start : start + chunk_rows]
        tables = rows_for(
            chunk, experiment_id=experiment_id, artifact_location=artifact_location,
            mlflow_run_id=mlflow_run_id, model_id=model_id, tags=tags,
        )  # fmt: skip
        with transaction(conn):
            for name in _TABLES:
                _insert_rows(conn, name, tables[name])


# Rows per INSERT statement on SQLite (see ``_insert_rows``), within its limit on bound
# parameters: 32,766 since SQLite 3.32, 999 before.
_ROWS_PER_STATEMENT = 200


def _insert_rows(conn: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` into ``table`` by statements of many rows each.

    One statement per row (``executemany`` of a one-row INSERT) opens the table and
    each of its indexes (assessments: eight) for every row; 200 rows a statement open them
    once for all: 10,000 traces took 1.1 s instead of 1.25-1.4 s in SQLite.
    """
    if not rows:
        return
    width = len(COLUMNS[table])
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
    per_statement = max(1, min(_ROWS_PER_STATEMENT, limit // width))
    whole = len(rows) - len(rows) % per_statement
    if whole:
        conn.executemany(
            insert_statement(table, per_statement),
            [
                list(chain.from_iterable(rows[start : start + per_statement]))
                for start in range(0, whole, per_statement)
            ],
        )
    if whole < len(rows):
        conn.execute(
            insert_statement(table, len(rows) - whole), list(chain.from_iterable(rows[whole:]))
        )


def span_content(row: RowTrace) -> dict[str, Any]:
    """The stored JSON of a row's root span: what ``log_spans`` makes of ``to_mlflow_span``.

    Built directly, since building OpenTelemetry spans and translating them back costs
    ~0.1 ms a row. MLflow's ``sanitize_attributes`` is the step of that translation that
    changes values (a JSON-looking string output loses one layer of quoting);
    ``_sanitized_attributes`` gives its result without parsing every value back.
    """
    return {
        "trace_id": _b64(row.otel_trace_id.to_bytes(16, "big")),
        "span_id": _b64(row.otel_span_id.to_bytes(8, "big")),
        "parent_span_id": None,
        "name": ROOT_SPAN_NAME,
        "start_time_unix_nano": row.start_ns,
        "end_time_unix_nano": row.end_ns,
        "events": span_events(row),
        "status": {
            "code": "STATUS_CODE_ERROR" if row.error else "STATUS_CODE_OK",
            "message": row.error or "",
        },
        "attributes": _sanitized_attributes(row),
        "links": [],
    }


def _sanitized_attributes(row: RowTrace) -> dict[str, str]:
    """``sanitize_attributes(span_attributes(row))``, parsing only what could change.

    MLflow's function parses each JSON-encoded value; one that holds a string which is
    itself JSON for a string, object or array is stored as that string, unquoted once.
    Only our string values can be such (the inputs are an object, kept as they are), and
    only if they start like JSON, so just those are parsed: the inputs, often kilobytes of
    context, never are. tests/tracking/test_mlflow_log.py compares the two on tricky values.
    """
    attributes = span_attributes(row)
    for key, text in ((HARNESS_ROW_KEY, row.row_id), (_OUTPUTS_KEY, row.outputs)):
        if text is not None and text.lstrip()[:1] in ('"', "{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, (str, dict, list)):
                attributes[key] = text
    return attributes


_OUTPUTS_KEY = Tag.SPAN_OUTPUTS


def _assessment_aggregate(value: Any) -> tuple[float | None, bool]:
    """MLflow's ``trace_analytics.assessment_aggregate``: a value's number for the rollups."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), False
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None, False
        return (number, True) if math.isfinite(number) else (None, False)
    if isinstance(value, str) and value.strip().lower() in {"yes", "no"}:
        return (1.0 if value.strip().lower() == "yes" else 0.0), False
    return None, False


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# Each table's columns, in the order of the tuples ``rows_for`` makes for it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "trace_info": (
        "request_id", "experiment_id", "timestamp_ms", "execution_time_ms", "status",
        "client_request_id", "request_preview", "response_preview",
        "db_payload_generation", "trace_name",
    ),
    "trace_tags": ("request_id", "key", "value"),
    "trace_request_metadata": ("request_id", "key", "value"),
    "spans": (
        "trace_id", "experiment_id", "span_id", "parent_span_id", "name", "type", "status",
        "start_time_unix_nano", "end_time_unix_nano", "content",
    ),
    "assessments": (
        "assessment_id", "trace_id", "name", "assessment_type", "value", "error",
        "created_timestamp", "last_updated_timestamp", "source_type", "source_id", "run_id",
        "span_id", "rationale", "overrides", "valid", "assessment_metadata", "experiment_id",
        "trace_timestamp_ms", "aggregate_value", "is_numeric_value",
    ),
    "entity_associations": (
        "association_id", "source_type", "source_id", "destination_type", "destination_id",
        "created_time",
    ),
}  # fmt: skip


def json_value(value: Any) -> str:
    """``json.dumps(value)`` (an assessment's value), without the encoder's set-up for the
    scalars almost every value is: a fifth of building a trace's rows went to it."""
    kind = type(value)
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else json.dumps(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return json.dumps(value)


def rows_for(
    chunk: list[RowTrace],
    *,
    experiment_id: int,
    artifact_location: str,
    mlflow_run_id: str,
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows each MLflow trace table receives for ``chunk``, as the store would write
    them: tuples in the order of the table's ``COLUMNS``."""
    now_ms = int(time.time() * 1000)
    assessment_metadata = json.dumps({Tag.ASSESSMENT_SOURCE_RUN_ID: mlflow_run_id})
    trace_info: list[tuple[Any, ...]] = []
    trace_tags: list[tuple[Any, ...]] = []
    request_metadata: list[tuple[Any, ...]] = []
    spans: list[tuple[Any, ...]] = []
    assessments: list[tuple[Any, ...]] = []
    associations: list[tuple[Any, ...]] = []
    base = artifact_location.rstrip("/")
    extra_tags = list((tags or {}).items())
    for row in chunk:
        trace_id = row.trace_id
        span_id = row.span_id
        request_time_ms = row.request_time_ms
        request_preview, response_preview = previews(row)
        state = "ERROR" if row.error else "OK"  # TraceState
        # log_spans bumps db_payload_generation once per span write; one write here.
        trace_info.append(
            (trace_id, experiment_id, request_time_ms, row.duration_ms, state, row.row_id,
             request_preview, response_preview, 1, ROOT_SPAN_NAME)
        )  # fmt: skip
        # append_to_uri_path(experiment location, "traces", trace_id, "artifacts")
        artifact_location_tag = f"{base}/{TRACES_FOLDER}/{trace_id}/{ARTIFACTS_FOLDER}"
        trace_tags.append((trace_id, Tag.ARTIFACT_LOCATION, artifact_location_tag))
        trace_tags.append((trace_id, Tag.SPANS_LOCATION, Tag.SPANS_IN_TRACKING_STORE))
        trace_tags += [(trace_id, key, value) for key, value in extra_tags]
        metadata = trace_metadata(row, mlflow_run_id=mlflow_run_id, model_id=model_id)
        metadata[Tag.TRACE_INFO_FINALIZED] = "true"
        request_metadata += [(trace_id, key, value) for key, value in sorted(metadata.items())]
        # Plain JSON types only: MLflow's TraceJSONEncoder writes them the same way.
        content = json.dumps(span_content(row), ensure_ascii=False)
        spans.append(
            (trace_id, experiment_id, span_id, None, ROOT_SPAN_NAME, SPAN_TYPE, state,
             row.start_ns, row.end_ns, content)
        )  # fmt: skip
        for data in row.assessments:
            aggregate_value, is_numeric = _assessment_aggregate(data.value)
            error = (
                json.dumps(
                    {
                        "error_code": FEEDBACK_ERROR_CODE,
                        "error_message": data.error,
                        "stack_trace": None,
                    }
                )
                if data.error
                else None
            )
            assessments.append(
                (f"a-{time_ordered_id():032x}",  # as MLflow's, but ordered
                 trace_id, data.name, data.kind, json_value(data.value), error,
                 data.created_ms, data.created_ms, data.source_type, data.source_id,
                 mlflow_run_id, span_id, data.rationale, None, True, assessment_metadata,
                 experiment_id, request_time_ms, aggregate_value, is_numeric)
            )  # fmt: skip
        associations.append(
            (f"{time_ordered_id():032x}", "TRACE", trace_id, "RUN", mlflow_run_id, now_ms)
        )  # EntityAssociationType TRACE -> RUN
    return {
        "trace_info": trace_info,
        "trace_tags": trace_tags,
        "trace_request_metadata": request_metadata,
        "spans": spans,
        "assessments": assessments,
        "entity_associations": associations,
    }


def _insert(
    store: SqlAlchemyStore,
    tables: dict[str, list[tuple[Any, ...]]],
    *,
    experiment_id: int,
    chunk: list[RowTrace],
) -> None:
    """Insert every table's rows in one transaction of the store's managed session."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlAssessments,
        SqlEntityAssociation,
        SqlSpan,
        SqlTraceInfo,
        SqlTraceMetadata,
        SqlTraceTag,
    )
    from mlflow.store.tracking.utils.sql_trace_rollups import (
        RollupFamily,
        enqueue_rollup_rebuild_partitions,
    )
    from sqlalchemy import insert

    models: dict[str, Any] = {
        "trace_info": SqlTraceInfo,
        "trace_tags": SqlTraceTag,
        "trace_request_metadata": SqlTraceMetadata,
        "spans": SqlSpan,
        "assessments": SqlAssessments,
        "entity_associations": SqlEntityAssociation,
    }
    timestamps = sorted({row.request_time_ms for row in chunk})
    with store.ManagedSessionMaker(read_only=False) as session:
        # Opt-in trace rollups (MLFLOW_SQL_TRACE_ROLLUPS_ENABLED) must hear of new traces,
        # as start_trace tells them; a no-op when rollups are off.
        enqueue_rollup_rebuild_partitions(
            session,
            [
                (family, experiment_id, timestamps)
                for family in (
                    RollupFamily.TRACE_METRIC,
                    RollupFamily.ASSESSMENT,
                    RollupFamily.SPAN_COST,
                )
            ],
        )
        connection = session.connection()
        sqlite = connection.dialect.name == "sqlite"  # its driver takes :name parameters
        for name in _TABLES:
            if not tables[name]:
                continue
            if sqlite:
                connection.exec_driver_sql(_driver_insert(models[name].__table__), tables[name])
            else:
                columns = COLUMNS[name]
                rows = [dict(zip(columns, row, strict=True)) for row in tables[name]]
                session.execute(insert(models[name].__table__), rows)


def _driver_insert(table: Any) -> str:
    """One SQLite INSERT with positional parameters, run by the driver's ``executemany`` as is.

    ``session.execute(insert(table), rows)`` adds a third to SQLite's own time turning each
    row's parameters into SQLAlchemy's form (cProfile of 10,000 traces: 0.75 s next to
    2.2 s in ``executemany``). It buys nothing here: these tables' columns are plain
    strings and numbers with no Python-side defaults, checked against the table's columns
    below. tests/tracking/test_mlflow_log.py checks that traces written this way read back
    equal to traces written through MLflow's own API.
    """
    unknown = [c for c in COLUMNS[table.name] if c not in table.c]
    if unknown:
        raise KeyError(f"{table.name} has no column {unknown[0]!r}")
    return insert_statement(table.name)


def insert_statement(table: str, rows: int = 1) -> str:
    """``INSERT INTO "table" ("a", "b") VALUES (?, ?)`` for the table's ``COLUMNS``, with
    ``rows`` rows of values.

    Positional: the driver binds a tuple's values by index, where named parameters cost a
    dict lookup per column and row (with building the dicts, 0.3 s of 2.3 s writing the
    traces of a 10,000-row run).
    """
    columns = COLUMNS[table]
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * rows)
    return f'INSERT INTO "{table}" ({names}) VALUES {values}'
