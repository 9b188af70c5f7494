"""A dataset column's value on each row: what slices (``--by``), strata (``--stratify``) and
clusters (``--cluster``) group rows by.

A column is one of the four an example always has (``id``, ``input``, ``expected``,
``context``) or any other column of the imported file, kept in the example's extra fields
(PubMedQA's ``final_decision``, ``year``). A row's value becomes a text label: text stays
as it is, anything else is its JSON (``2011``, ``true``, ``["a", "b"]``; a whole number held
as a float, as pandas holds a column of them with a gap, is the number: ``2011``), so labels
compare and sort the same whether the row came from DuckDB, a run file, a DataFrame or a
Parquet file. A row that has no value for the column (None, NaN, pandas' NA or NaT) gets
the label None.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.errors import ConfigError
from harness.wording import unknown_names

__all__ = [
    "BUILTIN_COLUMNS",
    "DEFAULT_MAX_VALUES",
    "check_by",
    "check_value_count",
    "column_labels",
    "example_fields",
    "is_missing",
    "label",
    "max_values",
    "row_fields",
    "shown_value",
    "sort_labels",
]

BUILTIN_COLUMNS = ("id", "input", "expected", "context")
DEFAULT_MAX_VALUES = 50  # slices per --by column; [slices] max_values, --max-slices
ALL_VALUE = "(all)"  # the overall line of a slice table
NONE_VALUE = "(none)"  # the slice of the rows without a value


def is_missing(value: Any) -> bool:
    """Whether a cell holds no value: None, NaN, or pandas' NA and NaT (the gap of a
    nullable or a datetime column)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")  # no NA or NaT can exist before pandas is imported
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def label(value: Any) -> str | None:
    """The text label of one cell (None when the cell is empty: a CSV's empty cell is '')."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalars and arrays
        value = value.tolist()
    if is_missing(value):
        return None
    if isinstance(value, str):  # ``value == ""`` for any value: pandas' NA has no truth
        return value or None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # pandas holds whole numbers with a gap as floats: 2011.0 is the 2011 of a JSONL file
        value = int(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def shown_value(value: str | None, *, overall: bool = False) -> str:
    """A slice's value as a table shows it beside the overall line: ``(all)`` on that line,
    ``(none)`` for the rows without a value, and a value that itself reads ``(all)`` or
    ``(none)`` in double quotes (``"(all)"``), so that it passes for neither."""
    if overall:
        return ALL_VALUE
    if value is None:
        return NONE_VALUE
    return f'"{value}"' if value in (ALL_VALUE, NONE_VALUE) else value


def row_fields(
    example_id: str, input: str | None, expected: Any, context: str | None, extra: Any
) -> dict[str, Any]:
    """One row's columns by name, as a ``python:`` model sees them: the extra columns, then
    the four built-in ones (one expected answer as text, several as a list). ``extra`` is a
    dict or its JSON text; missing (None, or NaN: a run file's null as pandas reads it), no
    extra columns."""
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    elif isinstance(extra, float) and math.isnan(extra):
        extra = None
    fields: dict[str, Any] = dict(extra or {})
    answers = list(expected.tolist() if hasattr(expected, "tolist") else expected or ())
    fields.update(
        id=example_id,
        input=input,
        expected=answers[0] if len(answers) == 1 else (answers or None),
        context=context,
    )
    return fields


def example_fields(example: Any) -> dict[str, Any]:
    """``row_fields`` of a stored example (anything with ``id``, ``input``, ``expected``,
    ``context`` and ``extra``)."""
    return row_fields(example.id, example.input, example.expected, example.context, example.extra)


def column_labels(rows: Iterable[Mapping[str, Any]], column: str, option: str) -> list[str | None]:
    """Each row's label for ``column``. Raises ConfigError, naming ``option`` and the
    columns there are, when no row has the column."""
    rows = list(rows)
    if column not in BUILTIN_COLUMNS and not any(column in row for row in rows):
        known = sorted({k for row in rows for k in row} | set(BUILTIN_COLUMNS))
        raise ConfigError(f"{option} {column}: no row has that column; columns: {', '.join(known)}")
    return [label(row.get(column)) for row in rows]


def sort_labels(labels: Iterable[str | None]) -> list[str | None]:
    """Distinct labels in a reader's order: numerically when every label is a number,
    else alphabetically; rows without a value last."""
    labels = list(labels)
    distinct = sorted({value for value in labels if value is not None})
    numbers = [_number(value) for value in distinct]
    if all(n is not None for n in numbers):
        distinct = [v for _, v in sorted(zip(numbers, distinct, strict=True))]
    ordered: list[str | None] = list(distinct)
    return [*ordered, None] if None in labels else ordered


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def max_values(option: int | None, settings: Mapping[str, Any]) -> int:
    """The most slices a ``--by`` column may have: ``--max-slices``, else ``[slices]
    max_values`` in harness.toml, else ``DEFAULT_MAX_VALUES``."""
    if option is not None:
        chosen: Any = option
        where = "--max-slices"
    else:
        table = settings.get("slices") or {}
        if not isinstance(table, Mapping):
            raise ConfigError("[slices] in harness.toml must be a table")
        unknown = sorted(set(table) - {"max_values"})
        if unknown:
            raise ConfigError(f"[slices] in harness.toml: {unknown_names('setting', unknown)}")
        chosen = table.get("max_values", DEFAULT_MAX_VALUES)
        where = "[slices] max_values"
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
        raise ConfigError(f"{where} must be a whole number of at least 1, got {chosen!r}")
    return chosen


def check_by(columns: Sequence[str]) -> None:
    """Refuse an empty ``--by`` column name (``--by "$COL"`` with COL unset), which would
    otherwise read as a column no row has, and a column given twice (one table, where two
    were asked for: a typo for another column, most likely)."""
    if "" in columns:
        raise ConfigError("--by needs a column name, got ''")
    repeated = next((c for i, c in enumerate(columns) if c in columns[:i]), None)
    if repeated is not None:
        raise ConfigError(f"--by {repeated} is given more than once; a column is sliced once")


def check_value_count(column: str, labels: Sequence[str | None], limit: int) -> None:
    """Refuse a ``--by`` column with more than ``limit`` distinct values (an id or free
    text, most likely: one slice per row tells nothing)."""
    distinct = set(labels)
    count = len(distinct)
    if count > limit:
        given = [value for value in distinct if value is not None]
        if given and all(_number(value) is not None for value in given):
            # A number is its own slice, never binned: "slice by another column" does not
            # help with latencies or scores, a column of their ranges does.
            advice = (
                "its values are numbers, and each distinct number is a slice of its own "
                "(numbers are not binned): add a column of ranges (bins) to the file before "
                "importing it and slice by that"
            )
        else:
            advice = "slice by a column with fewer values"
        raise ConfigError(
            f"--by {column}: {count:,} distinct values, more than the {limit:,} allowed; "
            f"{advice}, or raise the limit with --max-slices N ([slices] max_values in "
            "harness.toml)"
        )
