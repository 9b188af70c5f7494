"""Spark and Unity Catalog tables in and out: eval sets from tables, per-row results to tables.

- :func:`import_spark_table` (``harness data import --spark-table NAME`` / ``--spark-sql
  QUERY``) stores a table, or a query's result, as a dataset version: its rows are read
  in batches (``toLocalIterator``: one partition at a time; over Spark Connect a stream of
  Arrow batches) and digested as a file's rows are, so the same rows give the same version
  as from a file, in memory that does not grow with the table.
- :func:`export_run_to_spark` (``harness runs export RUN --spark-table NAME``) writes a
  run's per-row results as a table, for people who analyse in notebooks: one row per
  example with the run's id, model and dataset, the example, the output and its usage,
  ``metrics`` (a map: metric -> the row's value, a judge's mean over its samples) and
  ``scores`` (every score with its label, rationale and sample). The schema is the same
  for every run, so runs append to one table; a run already in it is refused, or the
  table replaced with ``overwrite``.

The session is the one :mod:`harness.runner.spark_session` picks (active, Spark Connect,
Databricks Connect or local); table names are the session catalog's
(``catalog.schema.table`` on Unity Catalog).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from harness.config import resolve_home
from harness.errors import ConfigError, DataError
from harness.runner.spark_session import SparkHandle, SparkTarget, open_session
from harness.wording import plural

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.data import ImportResult

__all__ = ["ExportResult", "export_run_to_spark", "import_spark_table", "run_rows"]


def import_spark_table(
    table: str | None = None,
    *,
    sql: str | None = None,
    name: str,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    home: str | os.PathLike[str] | None = None,
    target: SparkTarget | None = None,
    session: Any = None,
) -> ImportResult:
    """Import the Spark table ``table`` (or the result of the query ``sql``) as dataset
    ``name``, with the column mapping of files (see :mod:`harness.data`)."""
    from harness.data import check_dataset_name, import_records, spark_record_batches

    if (table is None) == (sql is None):
        raise ConfigError("give a Spark table (--spark-table NAME) or a query (--spark-sql QUERY)")
    check_dataset_name(name)  # before Spark starts and reads the table
    project = resolve_home(home)
    handle = _open(project.settings, target, session)
    what = f"Spark table {table}" if table is not None else "the Spark SQL query"
    made = _new_warehouse(handle)
    try:
        spark = handle.session
        try:
            if table is not None:
                _register_saved_table(handle, table)
            else:
                _register_saved_tables(handle)
            frame = spark.read.table(table) if table is not None else spark.sql(sql)
            columns = list(frame.columns)
        except Exception as e:  # noqa: BLE001 - Py4J/Spark Connect errors share no base
            raise DataError(handle.failure(f"cannot read {what}", e)) from None
        return import_records(
            _reading(spark_record_batches(frame), handle, what),
            columns,
            name=name,
            source=f"spark-table:{table}" if table is not None else f"spark-sql:{sql}",
            input=input,
            expected=expected,
            context=context,
            id=id,
            home=project.path,
        )
    finally:
        handle.close()
        _remove_if_empty(made)


def _register_saved_tables(handle: SparkHandle) -> None:
    """Every table an earlier command saved in a local session's warehouse folder, made
    known (see ``_register_saved_table``): a query may name any of them, as in
    ``--spark-sql "SELECT * FROM results WHERE run_id = '...'"`` after ``runs export``."""
    folder = _warehouse(handle)
    if folder is not None and folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and re.fullmatch(r"\w+", entry.name):  # NAME.db: a schema
                _register_saved_table(handle, entry.name)


def _warehouse(handle: SparkHandle) -> Path | None:
    """The warehouse folder of a local session harness started (None for another's)."""
    if not handle.owned or not hasattr(handle.session, "_jsparkSession"):
        return None  # another session's warehouse is its own
    where = urlparse(handle.session.conf.get("spark.sql.warehouse.dir"))  # always set
    return Path(unquote(where.path)) if where.scheme in ("", "file") else None


def _new_warehouse(handle: SparkHandle) -> Path | None:
    """The warehouse folder of a local session harness started, when it is not there yet.

    The session's catalog makes it on first use, even to find that a table does not exist:
    a failed ``data import --spark-table`` or ``runs export --spark-table`` left an empty
    ``./spark-warehouse`` behind.
    """
    folder = _warehouse(handle)
    return None if folder is None or folder.exists() else folder


def _remove_if_empty(folder: Path | None) -> None:
    """Remove ``folder`` (see ``_new_warehouse``) unless a table was saved in it."""
    if folder is not None:
        with suppress(OSError):
            folder.rmdir()


def _reading(batches: Iterator[Any], handle: SparkHandle, what: str) -> Iterator[Any]:
    """``batches``, with a failure while Spark reads them as one line."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - Py4J/Spark Connect errors share no base
            raise DataError(handle.failure(f"cannot read {what}", e)) from None
        yield batch


@dataclass(frozen=True)
class ExportResult:
    run_id: str
    table: str
    rows: int
    replaced: bool  # the table was overwritten (else created, or appended to)
    where: str  # the session: "sc://host:15002", "local[*]", ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "table": self.table,
            "rows": self.rows,
            "replaced": self.replaced,
            "spark": self.where,
        }

    def line(self) -> str:
        """What ``harness runs export --spark-table`` prints."""
        replaced = " (the table replaced)" if self.replaced else ""
        return (
            f"run {self.run_id}: {plural(self.rows, 'row')} written to {self.table} on "
            f"{self.where}{replaced}"
        )


def export_run_to_spark(
    run_id: str,
    table: str,
    *,
    overwrite: bool = False,
    home: str | os.PathLike[str] | None = None,
    target: SparkTarget | None = None,
    session: Any = None,
) -> ExportResult:
    """Write run ``run_id``'s per-row results to the Spark table ``table`` (see the module).

    Creates the table, or appends to one that holds other runs; a table that already holds
    this run is refused unless ``overwrite`` (which replaces the whole table).
    """
    from harness.store.runs import get_run

    project = resolve_home(home)
    info = get_run(project.db_path, run_id)  # an unknown run fails before Spark starts
    rows = run_rows(project.db_path, info.run_id)
    handle = _open(project.settings, target, session)
    made = _new_warehouse(handle)
    try:
        spark = handle.session
        try:
            _register_saved_table(handle, table)
            exists = spark.catalog.tableExists(table)
            if exists and not overwrite:
                held = spark.read.table(table).where(f"run_id = '{info.run_id}'").limit(1)
                if held.count():
                    raise ConfigError(
                        f"Spark table {table} already holds run {info.run_id}; "
                        "--overwrite replaces the table"
                    )
            frame = _frame(spark, rows)
            frame.write.mode("overwrite" if overwrite else "append").saveAsTable(table)
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - Py4J/Spark Connect errors share no base
            raise DataError(handle.failure(f"cannot write Spark table {table}", e)) from None
        return ExportResult(info.run_id, table, rows.num_rows, exists and overwrite, handle.where)
    finally:
        handle.close()
        _remove_if_empty(made)  # the table's files keep it


def _frame(spark: Any, rows: pa.Table) -> Any:
    """``rows`` as a Spark DataFrame. A run without rows (it failed before any) has nothing
    Spark can infer a schema from ("CANNOT_INFER_EMPTY_SCHEMA"), and classic pyspark cannot
    convert an Arrow table of no chunks: it is no rows with the columns of the others."""
    if rows.num_rows:
        return spark.createDataFrame(rows)
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame([], schema=from_arrow_schema(rows.schema))


def _register_saved_table(handle: SparkHandle, table: str) -> None:
    """Make a table an earlier command saved known to a local session harness started.

    Such a session's catalog is in memory, new with each command, while the tables it saves
    stay in its warehouse folder (``./spark-warehouse``): without this the next command's
    ``data import --spark-table`` could not find the table and ``runs export`` could not
    append to it. Its files there are registered as the table again (a no-op for a table
    the catalog knows, a session harness did not start, or a name with no files).
    """
    spark = handle.session
    if not handle.owned or not hasattr(spark, "_jsparkSession"):
        return  # another session's catalog is its own (a cluster's, a Connect server's)
    if spark.catalog.tableExists(table):
        return
    state = spark._jsparkSession.sessionState()
    try:
        name = state.sqlParser().parseTableIdentifier(table)
        location = state.catalog().defaultTablePath(name)
    except Exception:  # noqa: BLE001 - an unknown database, a bad name: Spark says so next
        return
    if Path(location.getPath()).is_dir():
        spark.catalog.createTable(table, path=location.toString())


def _open(settings: dict[str, Any], target: SparkTarget | None, session: Any) -> SparkHandle:
    from harness.runner.spark_session import check_target

    target = target or SparkTarget.resolve(settings)
    check_target(target, session)
    return open_session(target, session)


# One row per example, in dataset order; `metrics` averages a judge's samples, as the
# per-row table does; `scores` keeps each of them.
_RUN_ROWS_SQL = """
WITH per_metric AS (
    SELECT example_id, metric, avg(value) AS value
    FROM scores WHERE run_id = $run GROUP BY example_id, metric
), m AS (
    SELECT example_id, map_from_entries(list((metric, value) ORDER BY metric)) AS metrics
    FROM per_metric GROUP BY example_id
), s AS (
    SELECT example_id, list({'metric': metric, 'sample': sample, 'value': value,
        'label': label, 'rationale': rationale, 'raw': raw, 'error': error, 'source': source,
        'request_key': request_key, 'cached': cached} ORDER BY metric, sample) AS scores
    FROM scores WHERE run_id = $run GROUP BY example_id
)
SELECT r.run_id, r.run_name, r.dataset || '@' || r.dataset_version AS dataset, r.model,
       e.position, o.example_id AS id, e.input, e.expected, e.context,
       CAST(e.extra AS VARCHAR) AS extra, o.output, o.error, o.latency_s, o.input_tokens,
       o.output_tokens, o.cost_usd, o.cached, o.request_key, m.metrics, s.scores
FROM outputs o
JOIN runs r ON r.run_id = o.run_id
LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                    AND e.id = o.example_id
LEFT JOIN m ON m.example_id = o.example_id
LEFT JOIN s ON s.example_id = o.example_id
WHERE o.run_id = $run
ORDER BY e.position, o.example_id
"""


def run_rows(db_path: Path, run_id: str) -> pa.Table:
    """A run's rows as :func:`export_run_to_spark` writes them (an Arrow table)."""
    from harness.store.db import connect

    with connect(db_path, read_only=True) as con:
        rows = con.sql(_RUN_ROWS_SQL, params={"run": run_id})
        # DuckDB 2 names it to_arrow_table; 1.x, arrow.
        fetch = getattr(rows, "to_arrow_table", None) or rows.arrow
        table: pa.Table = fetch()
    return table
