"""Reading eval-set files (CSV, TSV, JSONL/NDJSON, JSON, Parquet) into a DataFrame of
Python objects, with one-line errors for what pandas would repair quietly or fail on with a
traceback: a header one field short, a repeated column name, bad UTF-8, invalid JSON.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def read_table(path: Path) -> pd.DataFrame:
    """Read a data file into a DataFrame of Python objects, with one-line errors."""
    import pandas as pd

    # What the path is comes before its extension: a folder has none to judge.
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file")
    if not path.is_file():  # Linux gives a pipe no size: it was refused as "empty"
        raise DataError(f"{path} is not a regular file (a pipe, a socket or a device)")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DataError(
            f"unknown format {path.suffix or '(no extension)'!r} for {path}; use one of {known}"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty")
    try:
        if fmt in ("csv", "tsv"):
            sep = _delimiter(path) if fmt == "csv" else "\t"
            options: dict[str, Any] = dict(
                sep=sep,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8",
                encoding_errors="strict",
            )
            df = pd.read_csv(path, **options)
            _check_header(path, fmt, df, pd.read_csv(path, header=None, nrows=1, **options))
        elif fmt == "jsonl":  # object: an int column with a gap stays ints (not 0.0, 2.0)
            df = pd.DataFrame(_read_jsonl(path), dtype=object)
        elif fmt == "json":
            df = pd.DataFrame(_read_json(path), dtype=object)
        else:  # Python values, as JSON's: ints with a null stay ints (pandas: 3.0), a
            # null is None (pandas: NaT for a time), a list in a struct a list
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            rows = table.to_pylist()
            if "binary" in str(table.schema).lower():  # any binary type, nested ones too
                rows = [{k: _unbytes(v) for k, v in row.items()} for row in rows]
            df = pd.DataFrame(rows, columns=table.column_names, dtype=object)
    except DataError:
        raise
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (bad byte at offset {e.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no rows") from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read {path} as {fmt}: {first}") from None
    if len(df) == 0:
        raise DataError(f"{path} has no rows")
    return df


def _check_header(path: Path, fmt: str, df: pd.DataFrame, header: pd.DataFrame) -> None:
    """Refuse a table whose header pandas would quietly repair. ``header`` is the first
    line read as a row, the names as written."""
    import pandas as pd

    names = [str(name) for name in header.iloc[0]] if len(header) else []
    if not isinstance(df.index, pd.RangeIndex):
        # The first row has one field more than the header, so pandas took the first
        # column as the index and shifted every other value one column left.
        raise DataError(
            f"cannot read {path} as {fmt}: its first row has {len(names) + 1} fields but the "
            f"header has {len(names)} (quote a value that holds the separator)"
        )
    seen: set[str] = set()
    for name in names:
        if name in seen and name != "":  # pandas would rename the second one to name.1
            raise DataError(
                f"cannot read {path} as {fmt}: column {name!r} appears twice in the header"
            )
        seen.add(name)


def _delimiter(path: Path) -> str:
    """The separator of a .csv file: ``,`` unless its first lines are plainly ``;``, tab or
    ``|``-separated (spreadsheets in many locales write ``;``)."""
    import csv

    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        sample = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or no consistent separator: read it as commas
        return ","


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    # utf-8-sig: a BOM before the first line (Excel, PowerShell, Notepad) is not JSON
    with open(path, encoding="utf-8-sig", errors="strict") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: invalid JSON: {e.msg}") from None
            except RecursionError:  # [[[...]]] thousands deep: Python's parser gives up
                raise DataError(f"{path}:{line_no}: invalid JSON: nested too deeply") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object per line")
            records.append(storable_names(record, f"{path}:{line_no}"))
    return records


def storable_names(record: dict[str, Any], where: str) -> dict[str, Any]:
    """``record`` with each column name that holds a lone surrogate (valid JSON may hold
    its escape, ``"\\ud800"``) written as its escape, as values are (``storable``): pandas,
    DuckDB and MLflow cannot hold it. Two names that become one are refused."""
    if all(not isinstance(name, str) or name.isascii() for name in record):
        return record
    from harness.wording import storable

    named: dict[str, Any] = {}
    for name, value in record.items():
        stored = storable(name) if isinstance(name, str) else name
        if stored != name and stored in record:
            raise DataError(
                f"{where}: columns {json.dumps(name)} and {json.dumps(stored)} would both be "
                f"stored as {stored} (a lone surrogate is stored as its escape); rename one"
            )
        named[stored] = value
    return named


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM is not JSON
    except ValueError as e:
        if isinstance(e, UnicodeDecodeError):
            raise
        raise DataError(f"{path}: invalid JSON: {e}") from None
    except RecursionError:
        raise DataError(f"{path}: invalid JSON: nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]  # the common {"data": [...]} wrapper
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON array of objects")
    return [storable_names(r, f"{path}: row {n}") for n, r in enumerate(data, start=1)]


def _unbytes(value: Any) -> Any:
    """A Parquet value with its binary cells as text: the UTF-8 they hold, else base64
    (an image's bytes); a row is stored as JSON, which has no bytes (``str`` made them
    ``"b'xy'"``)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_unbytes(v) for v in value]
    if isinstance(value, dict):
        return {k: _unbytes(v) for k, v in value.items()}
    return value
