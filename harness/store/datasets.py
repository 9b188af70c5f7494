"""Eval sets in DuckDB: immutable versions named by a content digest."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import DataError, DatasetNotFound, DuplicateId
from harness.store.db import connect

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Example:
    """One row of an eval set."""

    id: str
    input: str
    expected: tuple[str, ...] = ()
    context: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def as_row(self, columns: dict[str, Any] | None = None) -> dict[str, Any]:
        """The dict a ``python:`` model receives (extra columns included, never overriding).

        With ``columns`` (a dataset's field -> column mapping), each mapped field is also
        under its column's own name (``row["question"]`` beside ``row["input"]``), as a
        function ported from ``mlflow.evaluate`` reads it; never over a field's name."""
        row: dict[str, Any] = dict(self.extra)
        row.update(
            id=self.id,
            input=self.input,
            expected=self.expected[0] if len(self.expected) == 1 else list(self.expected),
            expected_all=list(self.expected),
            context=self.context,
        )
        for field_name, column in (columns or {}).items():
            if field_name in row and isinstance(column, str) and column not in _ROW_FIELDS:
                row.setdefault(column, row[field_name])
        return row


# The names harness gives a row's own fields, which a column of the data never takes over.
_ROW_FIELDS = frozenset({"id", "input", "expected", "expected_all", "context", "prompt"})


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    version: str
    digest: str
    n_rows: int
    source: str | None
    columns: dict[str, Any]
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "rows": self.n_rows,
            "source": self.source,
            "columns": self.columns,
            "created_at": self.created_at.isoformat(),
        }


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@VERSION`` -> (name, version or None)."""
    name, at, version = ref.partition("@")
    if not name:
        raise DataError(f"dataset reference {ref!r} has no name")
    if at and not version:  # qa@$VERSION with the variable unset took the newest version
        raise DataError(
            f"dataset reference {ref!r} has no version after '@'; give NAME for the newest "
            "version, or NAME@VERSION"
        )
    return name, version or None


_INFO_COLUMNS = "name, version, digest, n_rows, source, columns, created_at"


def _info(row: tuple[Any, ...]) -> DatasetInfo:
    name, version, digest, n_rows, source, columns, created_at = row
    return DatasetInfo(
        name, version, digest, n_rows, source, json.loads(columns or "{}"), created_at
    )


def example_schema() -> pa.Schema:
    """A version's examples as the store takes them in (without the dataset and version).

    Arrow is imported here, not with the module: a run reads its examples through this
    module and writes no Arrow (and building Arrow from Python objects imports pandas)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("position", pa.int32()),
            ("id", pa.string()),
            ("input", pa.string()),
            ("expected", pa.list_(pa.string())),
            ("context", pa.string()),
            ("extra", pa.string()),  # JSON text
        ]
    )


def example_batch(examples: list[Example], *, first: int = 0) -> pa.RecordBatch:
    """Examples as an Arrow batch of ``example_schema()``; positions from ``first`` on."""
    import pyarrow as pa

    return pa.RecordBatch.from_pydict(
        {
            "position": range(first, first + len(examples)),
            "id": [e.id for e in examples],
            "input": [e.input for e in examples],
            "expected": [list(e.expected) for e in examples],
            "context": [e.context for e in examples],
            "extra": [json.dumps(e.extra, ensure_ascii=False, default=str) for e in examples],
        },
        schema=example_schema(),
    )


def save_dataset(
    db_path: Path,
    *,
    name: str,
    digest: str,
    examples: list[Example],
    source: str | None,
    columns: dict[str, Any],
) -> tuple[DatasetInfo, bool]:
    """Store a version unless the same content is already stored under this name.

    Returns the version's info and whether it was created (False: it existed already).
    Everything is written in one transaction, so a failure leaves no partial dataset.
    """
    import pyarrow as pa

    batch = example_batch(examples)
    new_examples = pa.Table.from_batches([batch], schema=batch.schema)

    def insert(con: Any, version: str) -> None:
        con.register("new_examples", new_examples)
        con.execute(_INSERT_EXAMPLES.format(source="new_examples"), [name, version])
        con.unregister("new_examples")

    return _save_version(db_path, name, digest, len(examples), source, columns, insert)


def save_staged_dataset(
    db_path: Path,
    *,
    name: str,
    digest: str,
    n_rows: int,
    staged: Path,
    source: str | None,
    columns: dict[str, Any],
) -> tuple[DatasetInfo, bool]:
    """:func:`save_dataset` for examples staged in a Parquet file of ``example_schema()``
    (a table too large for memory): DuckDB reads the file as it inserts.

    Raises DataError naming the rows of the first duplicate id, before anything is written.
    """
    import duckdb

    with duckdb.connect() as scratch:  # in memory: the project file stays free meanwhile
        duplicate = scratch.execute(
            "SELECT id, list(position + 1 ORDER BY position)[1:2] FROM read_parquet(?) "
            "GROUP BY id HAVING count(*) > 1 ORDER BY min(position) LIMIT 1",
            [str(staged)],
        ).fetchone()
    if duplicate:
        raise DuplicateId(duplicate[0], (duplicate[1][0], duplicate[1][1]))
    relation = f"read_parquet('{_sql_text(str(staged))}')"

    def insert(con: Any, version: str) -> None:
        con.execute(_INSERT_EXAMPLES.format(source=relation), [name, version])

    # Else DuckDB keeps the whole insert in memory until it commits (2.5x the rows); with
    # a limit it spills to a temporary file next to the database.
    return _save_version(
        db_path, name, digest, n_rows, source, columns, insert, memory_limit=STAGED_INSERT_MEMORY
    )


STAGED_INSERT_MEMORY = "64MB"  # DuckDB spills beyond this while it inserts a staged version
_INSERT_EXAMPLES = (
    "INSERT INTO examples SELECT ?, ?, position, id, input, expected, context, extra FROM {source}"
)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _save_version(
    db_path: Path,
    name: str,
    digest: str,
    n_rows: int,
    source: str | None,
    columns: dict[str, Any],
    insert: Callable[[Any, str], None],
    *,
    memory_limit: str | None = None,
) -> tuple[DatasetInfo, bool]:
    version = digest[:12]
    with connect(db_path) as con:
        existing = con.execute(
            f"SELECT {_INFO_COLUMNS} FROM datasets WHERE name = ? AND version = ?", [name, version]
        ).fetchone()
        if existing:
            return _info(existing), False
        created_at = datetime.now(timezone.utc).replace(tzinfo=None)
        if memory_limit:
            # A setting of the open database, which other threads' work may share
            # (harness.store.db): back to DuckDB's own once the version is stored.
            con.execute(f"SET memory_limit = '{memory_limit}'")
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [name, version, digest, n_rows, source, json.dumps(columns), created_at],
                )
                insert(con, version)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            if memory_limit:
                # The checkpoint within the limit too (else the close's took ~190 MB more
                # for a table of 141 MB); later, if another thread's work is under way.
                import duckdb

                with contextlib.suppress(duckdb.Error):
                    con.execute("CHECKPOINT")
                con.execute("RESET memory_limit")
        return DatasetInfo(name, version, digest, n_rows, source, columns, created_at), True


def delete_unused_version(db_path: Path, name: str, version: str) -> bool:
    """Remove a dataset version and its examples if no run uses it; whether it was removed.

    For ``harness.evaluate``, which imports its data before the run's checks and removes the
    version it just created when a check refuses the call. The check and the delete are one
    transaction, so a run created meanwhile keeps its version.
    """
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            used = con.execute(
                "SELECT count(*) FROM runs WHERE dataset = ? AND dataset_version = ?",
                [name, version],
            ).fetchone()
            if used is None or used[0]:
                con.execute("ROLLBACK")
                return False
            con.execute("DELETE FROM examples WHERE dataset = ? AND version = ?", [name, version])
            con.execute("DELETE FROM datasets WHERE name = ? AND version = ?", [name, version])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return True


def list_datasets(db_path: Path) -> list[DatasetInfo]:
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            f"SELECT {_INFO_COLUMNS} FROM datasets ORDER BY name, created_at DESC"
        ).fetchall()
    return [_info(r) for r in rows]


def resolve_dataset(db_path: Path, ref: str) -> DatasetInfo:
    """``NAME`` (the latest version) or ``NAME@VERSION`` (a version or a prefix of one)."""
    name, version = parse_ref(ref)
    with connect(db_path, read_only=True) as con:
        if version is None:
            row = con.execute(
                f"SELECT {_INFO_COLUMNS} FROM datasets WHERE name = ? "
                "ORDER BY created_at DESC LIMIT 1",
                [name],
            ).fetchone()
            rows = [row] if row else []
        else:
            rows = con.execute(
                f"SELECT {_INFO_COLUMNS} FROM datasets WHERE name = ? AND starts_with(version, ?)",
                [name, version],
            ).fetchall()
        if not rows:
            known = [
                r[0]
                for r in con.execute("SELECT DISTINCT name FROM datasets ORDER BY 1").fetchall()
            ]
            versions = [
                r[0]
                for r in con.execute(
                    "SELECT version FROM datasets WHERE name = ? ORDER BY created_at DESC",
                    [name],
                ).fetchall()
            ]
    if not rows:
        where = f"in {db_path.parent} (the project home: --home DIR or HARNESS_HOME)"
        if versions:  # the name is right, the version is not: show that dataset's versions
            shown = ", ".join(f"{name}@{v[:12]}" for v in versions[:10])
            more = f" and {len(versions) - 10} more" if len(versions) > 10 else ""
            raise DatasetNotFound(
                f"unknown dataset version {name}@{version}; {name} has {shown}{more}"
            )
        hint = (
            f"; datasets there: {', '.join(known)}"
            if known
            else "; it has none: import one with `harness data import FILE --name NAME`"
        )
        if os.path.isfile(name):  # `--data questions.csv`, as other tools take it
            hint = (
                f"; {name} is a file: import it first with `harness data import {name} "
                "--name NAME`, then use --data NAME"
            )
        raise DatasetNotFound(f"unknown dataset {name!r} {where}{hint}")
    if len(rows) > 1:
        raise DataError(f"{name}@{version} is ambiguous: matches {len(rows)} versions")
    return _info(rows[0])


def load_examples(db_path: Path, info: DatasetInfo, limit: int | None = None) -> list[Example]:
    sql = (
        "SELECT id, input, expected, context, extra FROM examples "
        "WHERE dataset = ? AND version = ? ORDER BY position"
    )
    if limit is not None:  # DuckDB's LIMIT is an int64: more is every row (was exit 74)
        sql += f" LIMIT {min(int(limit), 2**63 - 1)}"
    with connect(db_path, read_only=True) as con:
        rows = con.execute(sql, [info.name, info.version]).fetchall()
    # Positional, and no JSON parse of a row with no extra columns ("{}", most datasets):
    # 0.011 s for 10,000 rows where keywords and a parse of each took 0.025 s (issue 14).
    loads = json.loads
    return [
        Example(
            id_,
            text,
            tuple(expected) if expected else (),
            context,
            loads(extra) if extra and extra != "{}" else {},
        )
        for id_, text, expected, context, extra in rows
    ]
