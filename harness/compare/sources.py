"""Finding the runs to compare, and reading each one's per-row scores.

A run is named by a run file (``harness runs export``), a tag (``harness runs tag``), a run
id or a prefix of one, or a run name. Its scores become one row per example and one column
per metric: a judge asked several times (``--judge-samples``) scores each row with the mean
of its samples, so every row weighs the same (``harness.store.scores``, which the report
shares). ``errors`` is one more column: 1 for a row whose model call failed, 0 otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.compare.result import RunRef
from harness.errors import ConfigError
from harness.store.exports import RunRecord, is_run_file, load_run_record, read_run_file
from harness.store.scores import ERRORS, RunScores, record_scores
from harness.store.tags import find_run

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Home

__all__ = ["ERRORS", "LoadedRun", "RunScores", "cluster_ids", "load_run", "run_scores"]

BUILTIN_COLUMNS = ("input", "expected", "context", "output")


@dataclass
class LoadedRun:
    """A run found from what the user typed, with anything worth telling them about it."""

    ref: RunRef
    record: RunRecord
    notes: list[str] = field(default_factory=list)


def load_run(ref: str, home: Home) -> LoadedRun:
    """The run ``ref`` names: a run file, else a tag, run id (or prefix) or run name."""
    notes: list[str] = []
    path = Path(ref).expanduser()
    if is_run_file(ref) or path.is_file():
        record = read_run_file(path)
    else:
        info, note = find_run(home.db_path, ref)
        if note:
            notes.append(note)
        record = load_run_record(home.db_path, info.run_id)
    info = record.info
    if info.status != "finished":
        notes.append(
            f"run {info.run_id} is {info.status}, with {info.rows_done} of {info.rows_total} rows"
        )
    run = RunRef(
        ref=ref,
        run_id=info.run_id,
        run_name=info.run_name,
        model=info.model,
        dataset=info.dataset,
        dataset_version=info.dataset_version,
        rows=info.rows_done,
        errors=info.errors,
        status=info.status,
        origin=record.origin,
        mlflow_run_id=info.mlflow_run_id,
    )
    return LoadedRun(run, record, notes)


def run_scores(run: LoadedRun) -> RunScores:
    """Per-row scores of ``run``: a judge's samples averaged per row (see
    ``harness.store.scores``)."""
    return record_scores(run.record)


def cluster_ids(rows: pd.DataFrame, column: str) -> pd.Series:
    """Each row's cluster: the value of the dataset column ``column`` (``context``,
    ``input``, ``expected`` or any column kept in the example's extra fields).

    A row without a value is a cluster of its own. Raises ConfigError when no row has
    the column, naming the columns there are.
    """
    if column in BUILTIN_COLUMNS:
        values = rows[column].map(_hashable)
    else:
        extras = rows["extra"].map(lambda text: json.loads(text) if text else {})
        if not any(column in extra for extra in extras):
            known = sorted({k for extra in extras for k in extra} | set(BUILTIN_COLUMNS))
            raise ConfigError(
                f"--cluster {column}: no row has that column; columns: {', '.join(known)}"
            )
        values = extras.map(lambda extra: _hashable(extra.get(column)))
    alone = values.isna()
    values = values.astype(object)
    values[alone] = [f"\x00row:{i}" for i in values.index[alone]]
    return values.astype(str)


def _hashable(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:
        return str(value)
