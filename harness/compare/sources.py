"""Finding the runs to compare, and reading each one's per-row scores.

A run is named by a run file (``harness runs export``), a tag (``harness runs tag``), a run
id or a prefix of one, or a run name. Its scores become one row per example and one column
per metric: a judge asked several times (``--judge-samples``) scores each row with the mean
of its samples, so every row weighs the same (``harness.store.scores``, which the report
shares). ``errors`` is one more column: 1 for a row that failed (its model call or a judge call),
0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.compare.result import RunRef
from harness.errors import ConfigError, DataError
from harness.store.exports import RunRecord, is_run_file, load_run_record, read_run_file
from harness.store.scores import ERRORS, RunScores, record_scores
from harness.store.tags import find_run

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Home

__all__ = [
    "ERRORS",
    "LoadedRun",
    "RunScores",
    "check_cluster",
    "cluster_ids",
    "load_run",
    "row_labels",
    "run_scores",
]


@dataclass
class LoadedRun:
    """A run found from what the user typed, with anything worth telling them about it."""

    ref: RunRef
    record: RunRecord
    notes: list[str] = field(default_factory=list)


def find_source(ref: str, home: Home) -> None:
    """Raise as :func:`load_run` would when ``ref`` names no run, without reading the run
    (``harness run --check`` asks before the run, not after it)."""
    path = Path(ref).expanduser()
    if is_run_file(ref) or path.is_file():
        if not path.is_file():
            raise DataError(f"no such run file: {path}")
    else:
        find_run(home.db_path, ref)


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
            f"run {info.run_id} is {info.status}, with {info.rows_done:,} of "
            f"{info.rows_total:,} rows"
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


def row_labels(rows: pd.DataFrame, column: str, option: str) -> pd.Series:
    """Each row's value of the dataset column ``column`` as a label (``harness.slices``):
    ``input``, ``expected``, ``context``, ``id`` or any column kept in the example's extra
    fields; None where a row has none. Raises ConfigError, naming ``option`` and the columns
    there are, when no row has the column."""
    import pandas as pd

    from harness.slices import column_labels, row_fields

    fields = [
        row_fields(str(example_id), r.input, r.expected, r.context, r.extra)
        for example_id, r in zip(rows.index, rows.itertuples(index=False), strict=True)
    ]
    return pd.Series(column_labels(fields, column, option), index=rows.index, dtype=object)


def check_cluster(cluster: str | None) -> None:
    """Refuse an empty ``--cluster`` column name (``--cluster "$COL"`` with COL unset), which
    would compare without clusters as if none were asked for."""
    if cluster == "":
        raise ConfigError("--cluster needs a column name, got ''")


def cluster_ids(rows: pd.DataFrame, column: str) -> pd.Series:
    """Each row's cluster: its value of the dataset column ``column`` (see ``row_labels``;
    ``output`` too). A row without a value is a cluster of its own."""
    from harness.slices import label

    if column == "output":
        values = rows["output"].map(label).astype(object)
    else:
        values = row_labels(rows, column, "--cluster")
    alone = values.isna()
    values[alone] = [f"\x00row:{i}" for i in values.index[alone]]
    return values.astype(str)
