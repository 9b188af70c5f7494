"""Run files: one run with its per-row outputs, scores and configuration, in a portable file.

A CI machine starts with an empty project home, so a baseline must travel with the code:
``harness runs export RUN FILE`` writes one, and ``compare``, ``check`` and ``runs show``
accept the file wherever they accept a run id. The format (version 1) is the same in both
encodings, chosen by the file's name:

- JSON Lines (``.jsonl``, gzipped when ``.jsonl.gz``): a header line
  ``{"harness_run_export": 1, "run": {...}, "dataset": {...}, "rows": N}``, then ``N`` lines,
  one per example in dataset order: ``id, input, expected`` (a list), ``context``,
  ``extra`` (the example's other columns, an object; null for none), ``output, error, latency_s,
  input_tokens, output_tokens, cost_usd, request_key, cached`` and ``scores``, a list of
  ``{metric, sample, value, label, rationale, raw, error, source, request_key, cached}``;
- Parquet (``.parquet``): the same columns, ``scores`` a list of structs and ``extra`` JSON
  text; the header is the file's key-value metadata ``harness_run_export``.

The header's ``run`` holds what ``runs`` stores: the run's configuration (model, prompt,
params, metrics, judges), aggregates, usage, status and why it ended, and its failed
calls per kind. API keys are never part of a run, so they cannot reach a file. Its
``rows`` is the number of rows the file holds (the run's ``rows_total`` is how many it was
to have, more when it was interrupted): a file cut short at a line's end reads as valid
JSON Lines, so the reader refuses one whose rows are not that many. Files written before
harness recorded ``rows`` are read without the check.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._version import __version__
from harness.errors import ConfigError, DataError, DiskFull
from harness.faults import environment_fault
from harness.files import folder_problem, replaced_on_success, text_writer
from harness.store.bulk import SCORE_COLUMNS
from harness.store.db import connect
from harness.store.record_rows import (
    ROWS_SQL,
    SCORE_FIELDS,
    RowReader,
    StoredRows,
    scores_sql,
)
from harness.store.runs import RunInfo, run_in

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ARROW_TYPES",  # noqa: F822 - made on first use (``__getattr__``)
    "EXPORT_VERSION",
    "RunRecord",
    "export_run",
    "is_run_file",
    "load_run_record",
    "read_run_file",
]

EXPORT_VERSION = 1
HEADER_KEY = "harness_run_export"
SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


@cache
def _schema() -> tuple[dict[str, pa.DataType], pa.StructType, pa.Schema]:
    """The Arrow types of a run's columns, made on first use: pyarrow is imported only by
    the paths that need an Arrow table (run files, ``compare``), not by a stored run's
    report, which every run logged to MLflow writes at its end (issue 14)."""
    import pyarrow as pa

    # The Arrow type of each DuckDB type a run's columns have (``bulk``'s column lists).
    types = {
        "VARCHAR": pa.string(),
        "DOUBLE": pa.float64(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "BOOLEAN": pa.bool_(),
        "VARCHAR[]": pa.list_(pa.string()),
        "TIMESTAMP": pa.timestamp("us"),
    }
    score = pa.struct([(name, types[kind]) for name, kind in SCORE_COLUMNS if name in SCORE_FIELDS])
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("input", pa.string()),
            ("expected", pa.list_(pa.string())),
            ("context", pa.string()),
            ("extra", pa.string()),  # JSON text
            ("output", pa.string()),
            ("error", pa.string()),
            ("latency_s", pa.float64()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
            ("request_key", pa.string()),
            ("cached", pa.bool_()),
            ("scores", pa.list_(score)),
        ]
    )
    return types, score, schema


def __getattr__(name: str) -> Any:
    """``ARROW_TYPES`` and ``ROW_SCHEMA``, made (and pyarrow imported) when first asked for."""
    if name == "ARROW_TYPES":
        return _schema()[0]
    if name == "ROW_SCHEMA":
        return _schema()[2]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class RunRecord:
    """A run and its rows, read from the store or from a run file: what ``compare``,
    ``check`` and ``runs show`` work on.

    A run file's rows are an Arrow table (``arrow``), read whole. A stored run's are read
    from ``db_path`` when asked for: as an Arrow table on first use of ``table``, or, for
    its report, a chunk at a time as Python objects (``reader``), without pyarrow."""

    info: RunInfo
    dataset_digest: str | None
    arrow: pa.Table | None  # ROW_SCHEMA: one row per example, its scores nested
    origin: str  # "store", or the path of the run file
    db_path: Path | None = None  # a stored run's store, its rows not read yet

    @property
    def from_file(self) -> bool:
        return self.origin != "store"

    @property
    def table(self) -> pa.Table:
        """The rows, one per example in dataset order, their scores nested (ROW_SCHEMA)."""
        if self.arrow is None:
            assert self.db_path is not None, "a record with neither rows nor a store"
            with connect(self.db_path, read_only=True) as con:
                self.arrow = _stored_table(con, self.info.run_id)
        return self.arrow

    def reader(
        self, score_fields: Sequence[str] = SCORE_FIELDS, sources: Collection[str] | None = None
    ) -> RowReader:
        """The rows a chunk at a time, as Python objects (``RowReader``), their scores with
        ``score_fields`` at least, of ``sources`` at least (None: all); close it after."""
        if self.arrow is None and self.db_path is not None:
            return StoredRows(self, score_fields, sources)
        return RowReader(self, score_fields, sources)

    def rows(self) -> pd.DataFrame:
        """One row per example (``id`` first), without the scores."""
        return self.table.drop_columns(["scores"]).to_pandas()

    def scores(self, fields: Collection[str] | None = None) -> pd.DataFrame:
        """One row per example, metric and sample, as ``harness.store.runs.load_scores``;
        with ``fields``, ``example_id`` and only those of a score's columns (in their
        order): the report's views read no raw answers or keys, which at 10,000 rows x 3
        judges were half the frame."""
        import pyarrow as pa
        import pyarrow.compute as pc

        scores = self.table.column("scores").combine_chunks()
        flat = pc.list_flatten(scores)
        parents = pc.list_parent_indices(scores)
        columns = {"example_id": pc.take(self.table.column("id"), parents)}
        for name in SCORE_FIELDS:
            if fields is None or name in fields:
                columns[name] = flat.field(name)
        return pa.table(columns).to_pandas()


def load_run_record(db_path: Path, run_id: str) -> RunRecord:
    """A stored run (``run_id`` may be a unique prefix); its rows are read when asked for."""
    with connect(db_path, read_only=True) as con:
        info = run_in(con, run_id, db_path)
        digest = con.execute(
            "SELECT digest FROM datasets WHERE name = ? AND version = ?",
            [info.dataset, info.dataset_version],
        ).fetchone()
    return RunRecord(info, digest[0] if digest else None, None, "store", db_path)


def _stored_table(con: Any, run_id: str) -> pa.Table:
    """A stored run's rows as one Arrow table (ROW_SCHEMA)."""
    rows = _arrow(con.sql(ROWS_SQL, params={"run": run_id}))
    scores = _arrow(con.sql(scores_sql(), params={"run": run_id}))
    return rows.append_column("scores", _nested(scores, rows.num_rows)).cast(_schema()[2])


def _arrow(relation: Any) -> pa.Table:
    # to_arrow_table from DuckDB 1.4 (fetch_arrow_table is deprecated in 2.0).
    return getattr(relation, "to_arrow_table", relation.fetch_arrow_table)()


def _nested(scores: pa.Table, n_rows: int) -> pa.ListArray:
    """Each row's scores as one list (empty for a row with none), from ``scores_sql``'s
    flat rows, sorted by their row's place.

    Nested here rather than by DuckDB's ``list()``: at 10,000 rows of 6 scores the
    aggregate took 0.33 s and 169 MB at its peak, the two flat reads 0.19 s and 115 MB."""
    import numpy as np
    import pyarrow as pa

    score = _schema()[1]
    places = scores.column("place").to_numpy()
    offsets = np.searchsorted(places, np.arange(n_rows + 1)).astype(np.int32)
    fields = [scores.column(f.name).combine_chunks().cast(f.type) for f in score]
    values = pa.StructArray.from_arrays(fields, fields=list(score))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def is_run_file(ref: str) -> bool:
    """Whether ``ref`` names a run file (by its suffix) rather than a run."""
    return ref.lower().endswith(SUFFIXES)


def _header(record: RunRecord) -> dict[str, Any]:
    info = record.info
    return {
        HEADER_KEY: EXPORT_VERSION,
        "harness_version": __version__,
        "run": {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "model": info.model,
            "status": info.status,
            "reason": info.reason,
            "failures": info.failures,
            "config": info.config,
            "metrics": info.metrics,
            "usage": info.usage,
            "rows_total": info.rows_total,
            "errors": info.errors,
            "mlflow_run_id": info.mlflow_run_id,
            "created_at": info.created_at.isoformat(),
            "finished_at": info.finished_at.isoformat() if info.finished_at else None,
            "sample": info.sample,
        },
        "dataset": {
            "name": info.dataset,
            "version": info.dataset_version,
            "digest": record.dataset_digest,
        },
        "rows": record.table.num_rows,
    }


def export_run(record: RunRecord, path: str | os.PathLike[str]) -> int:
    """Write ``record`` to ``path`` (format by suffix); return the number of rows written.

    The file appears whole or not at all: it is written next to its destination and
    renamed into place.
    """
    target = Path(path)
    name = target.name.lower()
    if not name.endswith(SUFFIXES):
        raise ConfigError(
            f"{target}: a run file must end in .parquet, .jsonl or .jsonl.gz "
            "(the format is chosen by the name)"
        )
    problem = folder_problem(target.parent)
    if problem is not None:
        raise ConfigError(problem)
    header = json.dumps(_header(record), ensure_ascii=False)
    try:
        with replaced_on_success(target) as partial:
            if name.endswith(".parquet"):
                import pyarrow.parquet as pq

                table = record.table.replace_schema_metadata({HEADER_KEY: header})
                pq.write_table(table, partial)
            else:
                with text_writer(partial, gzipped=name.endswith(".gz")) as f:
                    f.write(header + "\n")
                    for row in record.table.to_pylist():
                        extra = row["extra"]
                        row["extra"] = json.loads(extra) if extra else None
                        f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
    except OSError as e:
        fault = environment_fault(e, target)
        if isinstance(fault, DiskFull):  # the environment, not the user's mistake: exit 74
            raise fault from None
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
    return record.table.num_rows


def read_run_file(path: str | os.PathLike[str]) -> RunRecord:
    """A run file written by :func:`export_run`. Raises DataError for anything else."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"no such run file: {source}")
    name = source.name.lower()
    try:
        if name.endswith(".parquet"):
            header, table = _read_parquet(source)
        elif name.endswith(SUFFIXES):
            header, table = _read_jsonl(source, name.endswith(".gz"))
        else:
            raise DataError(f"{source}: a run file ends in .parquet, .jsonl or .jsonl.gz")
    except (OSError, ValueError, KeyError, TypeError, _arrow_error(), EOFError) as e:
        raise DataError(f"{source} is not a readable harness run file: {e}") from None
    _check_extra(table, source)
    rows = header.get("rows")  # absent from files written before it was recorded
    if rows is not None and rows != table.num_rows:
        raise DataError(
            f"{source} is truncated or damaged: its header says {rows} rows, "
            f"it holds {table.num_rows}"
        )
    run, dataset = header["run"], header["dataset"]
    info = RunInfo(
        run_id=run["run_id"],
        run_name=run.get("run_name"),
        dataset=dataset["name"],
        dataset_version=dataset["version"],
        model=run["model"],
        status=run.get("status", "finished"),
        reason=run.get("reason"),
        failures=run.get("failures") or {},
        config=run.get("config") or {},
        metrics=run.get("metrics") or {},
        usage=run.get("usage") or {},
        rows_total=int(run.get("rows_total") or table.num_rows),
        rows_done=table.num_rows,
        errors=run.get("errors"),
        mlflow_run_id=run.get("mlflow_run_id"),
        created_at=datetime.fromisoformat(run["created_at"]),
        finished_at=datetime.fromisoformat(run["finished_at"]) if run.get("finished_at") else None,
        sample=run.get("sample"),
    )
    return RunRecord(info, dataset.get("digest"), table, str(source))


def _arrow_error() -> type[Exception]:
    import pyarrow as pa

    return pa.ArrowException


def _check_extra(table: pa.Table, source: Path) -> None:
    """Refuse a row whose ``extra`` is neither a JSON object nor null (none), naming it."""
    ids, extras = table.column("id").to_pylist(), table.column("extra").to_pylist()
    for example_id, extra in zip(ids, extras, strict=True):
        if extra is None:
            continue
        try:
            columns = json.loads(extra)
        except ValueError:
            columns = None
        if not isinstance(columns, dict):
            raise DataError(
                f"{source}: row {example_id!r} has an extra that is not an object of its "
                "other columns (or null for none)"
            )


def _check_header(header: Any, source: Path) -> dict[str, Any]:
    if not isinstance(header, dict) or HEADER_KEY not in header:
        raise DataError(f"{source} is not a harness run file (its header is missing)")
    if header[HEADER_KEY] != EXPORT_VERSION:
        raise DataError(
            f"{source} is a run file of format {header[HEADER_KEY]}; this harness reads "
            f"format {EXPORT_VERSION}"
        )
    return header


def _read_parquet(source: Path) -> tuple[dict[str, Any], pa.Table]:
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    metadata = table.schema.metadata or {}
    raw = metadata.get(HEADER_KEY.encode())
    header = _check_header(json.loads(raw) if raw else None, source)
    return header, table.replace_schema_metadata(None).cast(_schema()[2])


def _read_jsonl(source: Path, gzipped: bool) -> tuple[dict[str, Any], pa.Table]:
    opener = gzip.open if gzipped else open
    with opener(source, "rt", encoding="utf-8") as f:
        first = f.readline()
        header = _check_header(json.loads(first) if first.strip() else None, source)
        rows = []
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("extra") is not None:
                row["extra"] = json.dumps(row["extra"], ensure_ascii=False)
            rows.append(row)
    import pyarrow as pa

    return header, pa.Table.from_pylist(rows, schema=_schema()[2])
