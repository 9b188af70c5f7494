"""Importing eval sets from CSV, JSONL/JSON, Parquet or a pandas DataFrame.

Columns are mapped to the four fields harness knows: ``id``, ``input``, ``expected``
(one answer or a list of acceptable answers) and ``context``. Every other column is kept
as ``extra`` and reaches ``python:`` models and prompt templates. A version is named by
the digest of the normalized rows, so importing the same content again is a no-op.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import resolve_home
from harness.errors import DataError
from harness.slices.labels import is_missing
from harness.store.datasets import DatasetInfo, Example, save_dataset

if TYPE_CHECKING:
    import os

    import pandas as pd

INPUT_COLUMNS = ("input", "question", "inputs")
# The same choice in harness.evaluate, named in messages both faces show.
PYTHON_ARGUMENTS = {"input": "inputs=", "expected": "targets=", "context": "context=", "id": "id="}
EXPECTED_COLUMNS = ("expected", "answer", "ground_truth", "targets", "expected_response")
CONTEXT_COLUMNS = ("context",)
ID_COLUMNS = ("id",)
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DIGEST_SCHEMA = 1  # bump when normalization changes, so digests stay honest
RECORD_BATCH_ROWS = 1000  # rows of a Spark table held in memory at once while importing


@dataclass(frozen=True)
class ImportResult:
    dataset: DatasetInfo
    created: bool  # False when the same content was already stored under this name

    def as_dict(self) -> dict[str, Any]:
        return {**self.dataset.as_dict(), "created": self.created}


def import_file(
    path: str | os.PathLike[str],
    *,
    name: str,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> ImportResult:
    """Import a CSV, TSV, JSONL, JSON or Parquet file as dataset ``name``; no column of
    ``skip`` is taken for a field by its usual name (as :func:`map_columns`)."""
    source = Path(path).expanduser()
    df = read_table(source)
    return _import(
        df,
        name=name,
        source=str(source),
        input=input,
        expected=expected,
        context=context,
        id=id,
        skip=skip or (),
        home=home,
    )


def import_dataframe(
    df: pd.DataFrame | Any,
    *,
    name: str,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] = (),
    home: str | os.PathLike[str] | None = None,
    source: str | None = None,
) -> ImportResult:
    """Import a DataFrame as dataset ``name`` (same mapping rules as files).

    ``df`` is a pandas DataFrame or a Spark DataFrame (``spark.table("qa")``); a Spark
    DataFrame is read in batches (see :func:`import_records`), so the same rows give the
    same dataset version either way, and a table larger than memory imports. ``source``
    is where the version says it came from (default ``dataframe``, or ``spark``).
    """
    if type(df).__module__.startswith("pyspark."):
        return import_records(
            spark_record_batches(df),
            list(df.columns),
            name=name,
            source=source or "spark",
            input=input,
            expected=expected,
            context=context,
            id=id,
            skip=skip,
            home=home,
        )
    return _import(
        df,
        name=name,
        source=source or "dataframe",
        input=input,
        expected=expected,
        context=context,
        id=id,
        skip=skip,
        home=home,
    )


def spark_record_batches(df: Any, rows: int = RECORD_BATCH_ROWS) -> Iterator[list[dict[str, Any]]]:
    """A Spark DataFrame's rows as dicts, ``rows`` at a time, never the whole table as
    ``toPandas`` would: ``toLocalIterator`` fetches one partition at a time, and over
    Spark Connect a stream of Arrow batches of ``rows`` rows (Spark's own default, 10,000,
    would hold 40 MB of 4 kB rows at once, twice over while they become Python rows)."""
    conf = df.sparkSession.conf
    before = conf.get(_ARROW_BATCH, None)
    conf.set(_ARROW_BATCH, str(rows))  # the session's own setting is put back below
    try:
        batch: list[dict[str, Any]] = []
        for row in df.toLocalIterator():
            batch.append(row.asDict(recursive=True))
            if len(batch) >= rows:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        if before is None:
            conf.unset(_ARROW_BATCH)
        else:
            conf.set(_ARROW_BATCH, before)


_ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


def import_records(
    batches: Iterable[list[dict[str, Any]]],
    columns: list[str],
    *,
    name: str,
    source: str,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] = (),
    home: str | os.PathLike[str] | None = None,
) -> ImportResult:
    """Import rows that arrive in batches (dicts with ``columns``), in bounded memory.

    Each batch is mapped as a file's rows are and digested in order, so the same rows give
    the same version as from a file, then written to a Parquet file in a temporary folder;
    the store takes the version from there in one transaction (or finds it already there).
    Memory holds one batch, whatever the number of rows.
    """
    import tempfile

    import pyarrow.parquet as pq

    from harness.store.datasets import EXAMPLE_SCHEMA, example_batch, save_staged_dataset

    _check_name(name)
    mapping = map_columns(
        [str(c) for c in columns], input=input, expected=expected, context=context, id=id, skip=skip
    )
    digest = DatasetDigest()
    with tempfile.TemporaryDirectory(prefix="harness-import-") as folder:
        staged = Path(folder) / "examples.parquet"
        with pq.ParquetWriter(staged, EXAMPLE_SCHEMA) as writer:
            for batch in batches:
                examples = [
                    to_example(record, digest.rows + n, mapping) for n, record in enumerate(batch)
                ]
                for example in examples:
                    digest.update(example)
                writer.write_batch(example_batch(examples, first=digest.rows - len(examples)))
        if not digest.rows:
            raise DataError(f"{source} has no rows")
        info, created = save_staged_dataset(
            resolve_home(home).db_path,
            name=name,
            digest=digest.hexdigest(),
            n_rows=digest.rows,
            staged=staged,
            source=source,
            columns=dict(mapping),
        )
    return ImportResult(info, created)


def read_table(path: Path) -> pd.DataFrame:
    """Read a data file into a DataFrame of Python objects, with one-line errors."""
    import pandas as pd

    # What the path is comes before its extension: a folder has none to judge.
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file")
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
    with open(path, encoding="utf-8", errors="strict") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: invalid JSON: {e.msg}") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object per line")
            records.append(record)
    return records


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        if isinstance(e, UnicodeDecodeError):
            raise
        raise DataError(f"{path}: invalid JSON: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]  # the common {"data": [...]} wrapper
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON array of objects")
    return data


def _pick(
    columns: list[str],
    explicit: str | None,
    candidates: tuple[str, ...],
    what: str,
    found: list[str],
) -> str | None:
    """``explicit`` (one of ``columns``), else the first of ``candidates`` among ``found``."""
    required = what == "input"
    if explicit is not None:
        if explicit not in columns:
            raise DataError(
                f"column {explicit!r} (for {what}) does not exist; "
                f"columns are: {', '.join(columns)}"
            )
        return explicit
    for candidate in candidates:
        if candidate in found:
            return candidate
    by_lower: dict[str, list[str]] = {}
    for column in found:  # `Question`, ` ANSWER `: the names people give columns
        by_lower.setdefault(str(column).strip().lower(), []).append(column)
    for candidate in candidates:
        found = by_lower.get(candidate, [])
        if len(found) == 1:
            return found[0]
    if required:
        raise DataError(
            f"no {what} column: looked for {', '.join(candidates)}; "
            f"name one with --{what} ({PYTHON_ARGUMENTS[what]} in harness.evaluate; "
            f"columns are: {', '.join(columns)})"
        )
    return None


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


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if hasattr(value, "tolist"):  # numpy arrays and scalars from parquet
        return _text(value.tolist())
    return str(value)


def _answers(value: Any) -> tuple[str, ...]:
    """One expected answer, a list of them, or a JSON list written in a CSV cell."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if is_missing(value) or value == "":
        return ()
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            value = parsed
    if isinstance(value, (list, tuple)):
        return tuple(_text(v) for v in value if not is_missing(v))
    return (_text(value),)


def _jsonable(value: Any) -> Any:
    """A cell as JSON keeps it: a missing value (None, NaN, pandas' NA or NaT) is null at
    any depth (NaN inside a list was stored as the token NaN, which is not JSON, and NA as
    the text "<NA>"); what JSON has no type for is its text."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if is_missing(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


ColumnMapping = dict[str, "str | None"]  # field (input, expected, context, id) -> column


def map_columns(
    columns: list[str],
    *,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] = (),
) -> ColumnMapping:
    """Which column holds each field: the one named, else the first usual name found
    outside ``skip`` (the column ``evaluate(predictions=...)`` reads the outputs from: a
    column of answers named ``answer`` is not the expected answer)."""
    found = [c for c in columns if c not in skip]
    return {
        "input": _pick(columns, input, INPUT_COLUMNS, "input", found),
        "expected": _pick(columns, expected, EXPECTED_COLUMNS, "expected", found),
        "context": _pick(columns, context, CONTEXT_COLUMNS, "context", found),
        "id": _pick(columns, id, ID_COLUMNS, "id", found),
    }


def to_example(record: dict[str, Any], position: int, mapping: ColumnMapping) -> Example:
    """One source row (0-based ``position``) as an example; every unmapped column is extra."""
    raw_input = record[mapping["input"]]  # type: ignore[index]
    if is_missing(raw_input) or _text(raw_input).strip() == "":
        raise DataError(f"row {position + 1}: empty {mapping['input']!r} (the input column)")
    id_column = mapping["id"]
    raw_id = record[id_column] if id_column else None
    raw_context = record[mapping["context"]] if mapping["context"] else None
    mapped = {c for c in mapping.values() if c}
    return Example(
        id=str(position) if is_missing(raw_id) else _text(raw_id),
        input=_text(raw_input),
        expected=_answers(record[mapping["expected"]]) if mapping["expected"] else (),
        context=None if is_missing(raw_context) else _text(raw_context),
        extra={k: _jsonable(v) for k, v in record.items() if k not in mapped},
    )


def to_examples(
    df: pd.DataFrame,
    *,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] = (),
) -> tuple[list[Example], ColumnMapping]:
    """Map a DataFrame's columns to examples; return them and the mapping used."""
    names = [str(c) for c in df.columns]
    mapping = map_columns(names, input=input, expected=expected, context=context, id=id, skip=skip)
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for position, record in enumerate(df.to_dict(orient="records")):
        example = to_example(record, position, mapping)
        if example.id in seen:
            raise DataError(
                f"duplicate id {example.id!r} in rows {seen[example.id]} and {position + 1}"
            )
        seen[example.id] = position + 1
        examples.append(example)
    return examples, mapping


class DatasetDigest:
    """sha256 of the normalized rows in order, fed a row at a time: a version's identity."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(f"harness-dataset-v{DIGEST_SCHEMA}\n".encode())
        self.rows = 0

    def update(self, e: Example) -> None:
        line = json.dumps(
            [e.id, e.input, list(e.expected), e.context, e.extra],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        self._hash.update(line.encode("utf-8") + b"\n")
        self.rows += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def content_digest(examples: list[Example]) -> str:
    """sha256 of the normalized rows in order: the identity of a dataset version."""
    digest = DatasetDigest()
    for example in examples:
        digest.update(example)
    return digest.hexdigest()


def _import(
    df: pd.DataFrame,
    *,
    name: str,
    source: str,
    input: str | None,
    expected: str | None,
    context: str | None,
    id: str | None,
    skip: Collection[str],
    home: str | os.PathLike[str] | None,
) -> ImportResult:
    _check_name(name)
    if len(df) == 0:
        raise DataError(f"{source} has no rows")
    examples, mapping = to_examples(
        df, input=input, expected=expected, context=context, id=id, skip=skip
    )
    digest = content_digest(examples)
    info, created = save_dataset(
        resolve_home(home).db_path,
        name=name,
        digest=digest,
        examples=examples,
        source=source,
        columns=dict(mapping),
    )
    return ImportResult(info, created)


def sample_dataset(
    ref: str,
    size: int | float | str,
    *,
    name: str,
    seed: int = 0,
    stratify: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> ImportResult:
    """Save a reproducible random subset of dataset ``ref`` as a version of dataset
    ``name`` (``harness data sample``): ``size`` rows or a fraction of them, chosen as
    ``harness run --sample`` chooses them (``harness.sampling``), in the source's order.

    The version is content-digested like any import: sampling again with the same
    arguments reports the existing version.
    """
    from harness.sampling import SampleSpec, parse_size, sample_examples
    from harness.store.datasets import load_examples, resolve_dataset

    _check_name(name)
    db_path = resolve_home(home).db_path
    source = resolve_dataset(db_path, ref)
    if name == source.name:  # the newest version of NAME is what `--data NAME` runs
        raise DataError(
            f"--name {name}: the sample would become the newest version of the dataset it is "
            f"drawn from, and `--data {name}` would run on it; give the sample a name of its "
            f"own (e.g. {name}-{size})"
        )
    spec = SampleSpec(parse_size(size, "N"), seed, stratify)
    chosen = sample_examples(load_examples(db_path, source), spec, "N")
    how = f"seed {seed}" + (f", stratified by {stratify}" if stratify else "")
    info, created = save_dataset(
        db_path,
        name=name,
        digest=content_digest(chosen),
        examples=chosen,
        source=f"sample of {source.ref}: {len(chosen)} of {source.n_rows} rows ({how})",
        columns=dict(source.columns),
    )
    return ImportResult(info, created)


def _check_name(name: str) -> None:
    if not name or any(ch in name for ch in "@/\\\n\t ") or len(name) > 200:
        raise DataError(f"invalid dataset name {name!r}: use letters, digits, '-', '_' or '.'")
