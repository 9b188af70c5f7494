"""Query results as pandas DataFrames, read through Arrow: DuckDB's ``.df()`` frame for less.

``.df()`` turns every text value into a Python string, which pandas then stores again in
its own string array; reading the rows as Arrow first and handing the arrays to pandas
skips the Python strings. Reading a 10,000-row run's outputs back (``load_outputs``,
PubMedQA contexts; the end of a run reads them), three runs each in processes of their
own, alternating: the peak 143-145 MB above the start with ``.df()``, 85-86 MB this way;
0.16-0.19 s against 0.12 s; 63 against 27 MB held after.

The frame is ``.df()``'s, column for column (tests/store/test_dataframes.py compares them):
Arrow's own conversion differs where a column has NULLs (a float column for integers, an
object column for booleans, ``None`` for a missing list) or is all NULL (a string column
of NaN where ``.df()`` keeps ``None``); ``frame`` converts those columns as ``.df()``
does. Column types other than text, lists, integers, booleans and floats are not used
by the queries that read through here, and raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

__all__ = ["frame"]


def frame(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """``relation.df()``, the same frame, made from the relation's Arrow table."""
    # Relation methods stream the result; an execute()d query's result is one more copy.
    table = relation.to_arrow_table()
    fixed = {}  # the columns Arrow converts unlike .df(), converted first
    for name, column in zip(table.column_names, table.columns, strict=True):
        convert = _converter(column.type, column.null_count, len(column))
        if convert is not None:
            fixed[name] = convert(column)
    # self_destruct: the table's buffers go as their columns are converted.
    out = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    for name, column in fixed.items():
        out[name] = column
    return out


def _converter(kind: pa.DataType, nulls: int, length: int) -> Any:
    """How to convert a column unlike Arrow's ``to_pandas``, or None for its way."""
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if nulls == length:  # no text at all: .df()'s column holds None, as object
            return lambda column: pd.Series([None] * length, dtype=object)
        return None
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if not nulls:
            return None
        masked = _MASKED.get(str(kind))
        if masked is None:
            raise TypeError(f"no nullable pandas type for {kind}")
        return lambda column: pd.Series(pd.array(column.to_pylist(), dtype=masked), dtype=masked)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if not nulls:
            return None
        # Arrow gives None for a NULL list and .df() pd.NA; the lists themselves agree.
        return lambda column: pd.Series(
            [pd.NA if value is None else value for value in column.to_pandas()], dtype=object
        )
    if pa.types.is_floating(kind):
        return None
    raise TypeError(f"frame() does not convert {kind} columns as .df() does")


_MASKED = {
    "int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64",
    "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
    "bool": "boolean",
}  # fmt: skip
