"""A run's slices (``--by COLUMN``) in the report: per value of the column, the rows and
each metric's mean with its 95% interval, next to the overall line.

The numbers are ``harness.slices.slice_table``'s, the code behind ``harness run --by``,
``harness runs show --by`` and the ``slices_table.json`` every sliced run logs to MLflow;
only the columns are chosen here: those of ``harness report --by``, else the ones the run
was sliced by, as stored with it. The rows are the run's rows done
(``harness.store.scores``), as at the run's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import ConfigError
from harness.numbers import mean_ci
from harness.slices.labels import check_by, shown_value
from harness.slices.table import no_interval_words
from harness.store.scores import ERRORS

if TYPE_CHECKING:
    from harness.report.rows import ReportRun
    from harness.slices import Slice, SliceTable

__all__ = ["SliceView", "slice_views"]


@dataclass
class SliceLine:
    """One line of a slice table: a value (or every row) and each metric's mean."""

    value: str  # "(all)" for the overall line, "(none)" for rows without a value
    rows: int
    errors: int
    # per metric: "mean [low, high]" (or "–", or "mean (no spread)") and its rows
    means: list[tuple[str, int]]
    overall: bool = False


@dataclass
class SliceView:
    """One run's slices by one column."""

    run: str
    column: str
    metrics: list[str]
    lines: list[SliceLine] = field(default_factory=list)
    note: str | None = None  # why there is no table (no row done has the column)


def run_slice_tables(
    run: ReportRun, by: Sequence[str] = (), max_values: int | None = None
) -> tuple[list[SliceTable], list[str]]:
    """The slices of ``run`` by each of ``by`` (``harness report --by``), else by each
    column the run was run ``--by``; and the run's own columns that could not be sliced
    (no row done has them). A ``by`` column no row has, or with more than ``max_values``
    values, is a ConfigError, as for ``harness runs show --by``."""
    asked = bool(by)
    check_by(by)
    columns = list(dict.fromkeys(by or run.record.info.config.get("by") or []))
    if not columns or not run.scores.ids:
        return [], []
    rows = run.scores.rows  # a frame: slicing reads pandas (not a run's own report's path)
    import pandas as pd

    from harness.slices import check_value_count, column_labels, row_fields, slice_table

    fields = [
        row_fields(str(example_id), r.input, r.expected, r.context, r.extra)
        for example_id, r in zip(rows.index, rows.itertuples(index=False), strict=True)
    ]
    metrics = [m for m in run.scores.order if m != ERRORS]
    failed = run.scores.values[ERRORS] > 0  # model or judge call (harness.slices.failed_rows)
    tables, missing = [], []
    for column in columns:
        try:
            labels = column_labels(fields, column, "--by")
        except ConfigError:
            if asked:
                raise
            missing.append(column)  # a partial run whose rows done lack it: say so
            continue
        if asked and max_values is not None:
            check_value_count(column, labels, max_values)
        series = pd.Series(labels, index=rows.index, dtype=object)
        tables.append(
            slice_table(
                column,
                series,
                run.scores.values,
                failed=failed,
                metrics=metrics,
                binary=run.scores.binary,
                bounds=run.scores.bounds,
            )  # fmt: skip
        )
    return tables, missing


def _line(s: Slice, metrics: Sequence[str], *, overall: bool = False) -> SliceLine:
    means = []
    for metric in metrics:
        m = s.means[metric]
        text = mean_ci(m.mean, m.low, m.high) if m.n else "–"
        words = no_interval_words(m)
        means.append((f"{text} ({words})" if words else text, m.n))
    value = shown_value(s.value, overall=overall)
    return SliceLine(value, s.rows, s.errors, means, overall)


def slice_views(
    runs: Sequence[ReportRun], by: Sequence[str] = (), max_values: int | None = None
) -> list[SliceView]:
    """Every run's slice tables (see ``run_slice_tables``), column by column."""
    views = []
    for run in runs:
        tables, missing = run_slice_tables(run, by, max_values)
        for table in tables:
            view = SliceView(run.label, table.column, list(table.metrics))
            view.lines = [_line(table.overall, table.metrics, overall=True)]
            view.lines += [_line(s, table.metrics) for s in table.slices]
            views.append(view)
        views += [
            SliceView(run.label, column, [], note="none of the run's rows done has this column")
            for column in missing
        ]
    return views
