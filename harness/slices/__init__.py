"""Slices: every metric per value of a dataset column (``--by COLUMN``).

- ``labels``: a column's value on each row (built-in columns or the example's extra ones),
  how many values a ``--by`` column may have (``--max-slices``, ``[slices] max_values``);
- ``table``: per slice the rows, and each metric's mean with its 95% interval from
  ``harness.stats``, next to the overall line; the MLflow metric names of the slices.

Shared: plain data in (per-row scores and labels), dataclasses out; the runner, ``runs
show``, ``compare`` and ``harness.evaluate`` all slice through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.slices.labels import (
    BUILTIN_COLUMNS,
    DEFAULT_MAX_VALUES,
    check_by,
    check_value_count,
    column_labels,
    example_fields,
    is_missing,
    label,
    max_values,
    row_fields,
    shown_value,
    sort_labels,
)

if TYPE_CHECKING:
    from harness.slices.table import (
        Slice,
        SliceTable,
        failed_rows,
        mlflow_slice_metrics,
        per_row_values,
        slice_table,
        slices_frame,
    )

__all__ = [
    "BUILTIN_COLUMNS",
    "DEFAULT_MAX_VALUES",
    "Slice",
    "SliceTable",
    "check_by",
    "check_value_count",
    "column_labels",
    "example_fields",
    "failed_rows",
    "is_missing",
    "label",
    "max_values",
    "mlflow_slice_metrics",
    "per_row_values",
    "row_fields",
    "shown_value",
    "slice_table",
    "slices_frame",
    "sort_labels",
]

# Imported when first asked for: ``table`` imports numpy (with ``harness.stats``), which a
# run's start, checking its ``--by`` and ``--stratify`` columns with ``labels``, does not
# need (~0.07 s before its first call; issue 14).
_LAZY = frozenset(
    {
        "Slice",
        "SliceTable",
        "failed_rows",
        "mlflow_slice_metrics",
        "per_row_values",
        "slice_table",
        "slices_frame",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from harness.slices import table

    return getattr(table, name)
