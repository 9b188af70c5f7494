"""Appending many rows to a table in one statement, without Arrow.

A run's batch writes (``runs.write_batch``) went through ``pa.Table.from_pylist``, and
building an Arrow array from Python objects imports pandas (pyarrow 25): a run carried
pyarrow and pandas (~80 MB) from its first batch for its writes alone. Here the rows are
one JSON array (orjson), written to a temporary file and read by DuckDB's own JSON reader
(``read_json``, built into DuckDB: no extension is downloaded) with every column's type
given, so nothing is guessed. ``bench/bench_batch_write.py`` times it against the Arrow
path: orjson's dump is a tenth of ``from_pylist``'s time, but DuckDB parses the text
again, so long answers cost a little more (3,000 characters: 1.06-1.12x the CPU) and
short ones about the same (numbers in docs/design.md).

JSON has no NaN or infinity (orjson writes them as null): a float column's non-finite
value goes as its name (``"nan"``, ``"inf"``, ``"-inf"``), which DuckDB casts back.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["OUTPUT_COLUMNS", "SCORE_COLUMNS", "insert_rows"]

PREFIX = ".harness-rows-"  # a batch's file, beside the database
STALE_S = 3600.0  # a batch file older than this is left by a writer that was killed
_swept: set[Path] = set()  # the folders ``_sweep`` has looked in, in this process

# Each table's columns a run writes, with their DuckDB types: the fields of OutputRow and
# ScoreRow (harness.store.rows), in their order, after the run's id.
OUTPUT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("example_id", "VARCHAR"),
    ("output", "VARCHAR"),
    ("error", "VARCHAR"),
    ("latency_s", "DOUBLE"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cost_usd", "DOUBLE"),
    ("request_key", "VARCHAR"),
    ("cached", "BOOLEAN"),
    ("app_request_keys", "VARCHAR[]"),
    ("created_at", "TIMESTAMP"),
)
SCORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("example_id", "VARCHAR"),
    ("metric", "VARCHAR"),
    ("sample", "INTEGER"),
    ("value", "DOUBLE"),
    ("label", "VARCHAR"),
    ("rationale", "VARCHAR"),
    ("raw", "VARCHAR"),
    ("error", "VARCHAR"),
    ("source", "VARCHAR"),
    ("request_key", "VARCHAR"),
    ("cached", "BOOLEAN"),
)


def insert_rows(
    con: Any,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
    constants: Mapping[str, Any],
    *,
    folder: Path,
) -> None:
    """Append ``rows`` (each a mapping of column to value) to ``table``, with ``constants``
    (column to value: the run's id, a time) the same in every row; ``columns`` are the
    table's columns written and their types. Nothing when there are no rows.

    The file is written in ``folder``, the database's own: a store that can be written has
    room there, and a failure to write it is the store's (not a full or unwritable TMPDIR
    blamed on the database)."""
    if not rows:
        return
    read = [(name, kind) for name, kind in columns if name not in constants]
    floats = [name for name, kind in read if kind == "DOUBLE"]
    body = orjson.dumps([_finite(row, floats) for row in rows], default=_number)
    names = ", ".join(name for name, _ in columns)
    shape = ", ".join(f"{name}: '{kind}'" for name, kind in read)
    selected = ", ".join(
        f"${name}::{kind}" if name in constants else name for name, kind in columns
    )
    _sweep(folder)
    fd, path = tempfile.mkstemp(prefix=PREFIX, suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        del body
        con.execute(
            f"INSERT INTO {table} ({names}) SELECT {selected} FROM "
            f"read_json($rows_file, format = 'array', columns = {{{shape}}})",
            {**constants, "rows_file": path},
        )
    finally:
        os.unlink(path)


def _sweep(folder: Path) -> None:
    """Remove, once per process, the batch files of writers killed outright (SIGKILL, the
    OOM killer: no ``finally`` ran) from ``folder``: one file per batch, up to tens of MB,
    that nothing else would ever remove. A file is a batch's for the moment of one insert;
    one older than ``STALE_S`` is no live writer's, on this machine or another sharing it."""
    if folder in _swept:
        return
    _swept.add(folder)
    limit = time.time() - STALE_S
    for path in folder.glob(f"{PREFIX}*.json"):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if path.stat().st_mtime < limit:
                path.unlink()


def _finite(row: Mapping[str, Any], floats: Sequence[str]) -> Mapping[str, Any]:
    """``row``, with a non-finite float spelled out (see the module's docstring)."""
    odd = {
        name: str(value)
        for name in floats
        if isinstance(value := row.get(name), float) and not math.isfinite(value)
    }
    return {**row, **odd} if odd else row


def _number(value: Any) -> Any:
    """A number orjson does not know (numpy's float32, int64), as Python's; a non-finite
    one by its name, as ``_finite`` spells a float's (orjson would write this one null)."""
    if hasattr(value, "__index__"):
        return int(value)
    if hasattr(value, "__float__"):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    raise TypeError(f"{type(value).__name__} is not storable")
