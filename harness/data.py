"""Importing eval sets from CSV, JSONL/JSON, Parquet or a pandas DataFrame.

Columns are mapped to the four fields harness knows: ``id``, ``input``, ``expected``
(one answer or a list of acceptable answers) and ``context``. Every other column is kept
as ``extra`` and reaches ``python:`` models and prompt templates. A version is named by
the digest of the normalized rows, so importing the same content again is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import resolve_home
from harness.data_files import FORMATS, read_table
from harness.errors import DataError, DuplicateId, MissingId
from harness.slices.labels import is_missing
from harness.store.datasets import DatasetInfo, Example, resolve_dataset, save_dataset
from harness.wording import storable

if TYPE_CHECKING:
    import os

    import pandas as pd

INPUT_COLUMNS = ("input", "question", "inputs")
# The same choice in harness.evaluate, named in messages both faces show.
PYTHON_ARGUMENTS = {"input": "inputs=", "expected": "targets=", "context": "context=", "id": "id="}
EXPECTED_COLUMNS = ("expected", "answer", "ground_truth", "targets", "expected_response")
CONTEXT_COLUMNS = ("context",)
ID_COLUMNS = ("id",)
DIGEST_SCHEMA = 1  # bump when normalization changes, so digests stay honest
RECORD_BATCH_ROWS = 1000  # rows of a Spark table held in memory at once while importing


@dataclass(frozen=True)
class ImportResult:
    dataset: DatasetInfo
    created: bool  # False when the same content was already stored under this name
    # NAME@VERSION of the name's newest version, which `--data NAME` runs: another than
    # ``dataset`` when content stored before under an older version came again
    newest: str
    # the column this import took for each field: the stored version's ``columns`` are those
    # of its first import, which another file of the same rows may name otherwise
    columns: dict[str, Any]

    @classmethod
    def of(
        cls, db_path: Path, info: DatasetInfo, created: bool, columns: dict[str, Any]
    ) -> ImportResult:
        newest = info.ref if created else resolve_dataset(db_path, info.name).ref
        return cls(info, created, newest, columns)

    def as_dict(self) -> dict[str, Any]:
        return {**self.dataset.as_dict(), "created": self.created, "newest": self.newest}


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
        lists_in_text=holds_text_only(source),
    )


def holds_text_only(path: Path) -> bool:
    """Whether ``path`` is a CSV or TSV file, whose cells are text only: there an
    ``expected`` cell written as a JSON list is several answers. A JSON, JSONL or Parquet
    file has lists of its own, so its text is one answer whatever it looks like."""
    return FORMATS.get(path.suffix.lower()) in ("csv", "tsv")


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
    number_repeated_ids: bool = False,
    require_input: bool = True,
    lists_in_text: bool = False,
) -> ImportResult:
    """Import a DataFrame as dataset ``name`` (same mapping rules as files).

    ``df`` is a pandas DataFrame or a Spark DataFrame (``spark.table("qa")``); a Spark
    DataFrame is read in batches (see :func:`import_records`), so the same rows give the
    same dataset version either way, and a table larger than memory imports. ``source``
    is where the version says it came from (default ``dataframe``, or ``spark``).

    With ``number_repeated_ids`` (``harness.evaluate``: mlflow.evaluate's data has no row
    ids), an ``id`` column found by its name whose values repeat, or that some rows leave
    empty, is not the row id: the rows are numbered from 0, the column stays in the data
    and a warning says so (a Spark DataFrame is then read a second time). A column named
    with ``id=`` must be unique and in every row.
    Without ``require_input`` (outputs already in the data: ``predictions=``), data with no
    input column imports, each row's input the empty text.
    An ``expected`` text is one answer whatever it looks like (``"[1, 2]"``), as in
    ``mlflow.evaluate``; a list (a tuple, an array) is several. With ``lists_in_text`` (the
    cells of a CSV or TSV file, which hold text only), a text written as a JSON list
    (``'["d1", "d2"]'``) is several answers.
    """
    arguments = dict(
        name=name,
        input=input,
        expected=expected,
        context=context,
        id=id,
        home=home,
        require_input=require_input,
        lists_in_text=lists_in_text,
    )
    try:
        return _import_frame(df, source, skip, **arguments)
    except (DuplicateId, MissingId) as e:
        column = None if id is not None else map_columns(
            [str(c) for c in df.columns], input=input, expected=expected, context=context,
            skip=skip, require_input=require_input,
        )["id"]  # fmt: skip
        if not number_repeated_ids or column is None:
            raise
        why = (
            f"repeats ({e.row_id!r} in rows {e.rows[0]} and {e.rows[1]})"
            if isinstance(e, DuplicateId)
            else f"has no value in row {e.row}"
        )
        logging.getLogger("harness").warning(
            "harness: the data's column %r %s, so it is not the row id: the rows are numbered "
            "from 0 (id= names a column of unique ids)",
            column, why,
        )  # fmt: skip
        return _import_frame(df, source, (*skip, column), **arguments)


def _import_frame(
    df: pd.DataFrame | Any, source: str | None, skip: Collection[str], **arguments: Any
) -> ImportResult:
    if type(df).__module__.startswith("pyspark."):
        return import_records(
            spark_record_batches(df),
            list(df.columns),
            source=source or "spark",
            skip=skip,
            **arguments,
        )
    return _import(df, source=source or "dataframe", skip=skip, **arguments)


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
    require_input: bool = True,
    lists_in_text: bool = True,
) -> ImportResult:
    """Import rows that arrive in batches (dicts with ``columns``), in bounded memory.

    Each batch is mapped as a file's rows are and digested in order, so the same rows give
    the same version as from a file, then written to a Parquet file in a temporary folder;
    the store takes the version from there in one transaction (or finds it already there).
    Memory holds one batch, whatever the number of rows. With ``lists_in_text`` (a Spark
    table's text column may hold lists as JSON text), an expected text written as a JSON
    list is several answers.
    """
    import tempfile

    import pyarrow.parquet as pq

    from harness.store.datasets import example_batch, example_schema, save_staged_dataset

    check_dataset_name(name)
    mapping = map_columns(
        [str(c) for c in columns],
        input=input,
        expected=expected,
        context=context,
        id=id,
        skip=skip,
        require_input=require_input,
    )
    digest = DatasetDigest()
    with tempfile.TemporaryDirectory(prefix="harness-import-") as folder:
        staged = Path(folder) / "examples.parquet"
        with pq.ParquetWriter(staged, example_schema()) as writer:
            for batch in batches:
                examples = [
                    to_example(record, digest.rows + n, mapping, lists_in_text)
                    for n, record in enumerate(batch)
                ]
                for example in examples:
                    digest.update(example)
                writer.write_batch(example_batch(examples, first=digest.rows - len(examples)))
        if not digest.rows:
            raise DataError(f"{source} has no rows")
        db_path = resolve_home(home).db_path
        info, created = save_staged_dataset(
            db_path,
            name=name,
            digest=digest.hexdigest(),
            n_rows=digest.rows,
            staged=staged,
            source=source,
            columns=dict(mapping),
        )
    return ImportResult.of(db_path, info, created, dict(mapping))


def _pick(
    columns: list[str],
    explicit: str | None,
    candidates: tuple[str, ...],
    what: str,
    found: list[str],
    required: bool = False,
) -> str | None:
    """``explicit`` (one of ``columns``), else the first of ``candidates`` among ``found``."""
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


def _text(value: Any) -> str:
    # A lone surrogate (valid JSON may hold its escape) as that escape: storable as text.
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, (dict, list)):
        return storable(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if hasattr(value, "tolist"):  # numpy arrays and scalars from parquet
        return _text(value.tolist())
    return str(value)


def _optional_text(value: Any) -> str | None:
    """An optional field's cell as text, None when it holds nothing: a CSV's empty cell
    (or one of blanks) is the absent key of a JSONL row, not a context of ''."""
    if is_missing(value):
        return None
    text = _text(value)
    return text if text.strip() else None


def _answers(value: Any, lists_in_text: bool) -> tuple[str, ...]:
    """One expected answer, a list of them, or (``lists_in_text``: a CSV cell, which holds
    text only) a JSON list written as text."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if is_missing(value) or value == "":
        return ()
    if lists_in_text and isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            value = parsed
    if isinstance(value, (list, tuple)):
        return tuple(_answer_text(v) for v in value if not is_missing(v))
    return (_answer_text(value),)


def _answer_text(value: Any) -> str:
    """An expected answer as text; an integral float is its integer (4.0 is "4"): pandas
    makes an int column with a missing value floats, so a target 4 arrives as 4.0, and
    exact_match would then score the output "4" 0 (mlflow.evaluate raises on the types).
    A CSV cell is text, kept as written ("4.0" stays "4.0")."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()  # numpy's float32 is no float
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return _text(value)


def _jsonable(value: Any) -> Any:
    """A cell as JSON keeps it: a missing value (None, NaN, pandas' NA or NaT) is null at
    any depth (NaN inside a list was stored as the token NaN, which is not JSON, and NA as
    the text "<NA>"); what JSON has no type for is its text."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if is_missing(value):
        return None
    if isinstance(value, str):
        return storable(value)  # a lone surrogate as its escape, as in _text
    if isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {storable(str(k)): _jsonable(v) for k, v in value.items()}
    return storable(str(value))


ColumnMapping = dict[str, "str | None"]  # field (input, expected, context, id) -> column


def map_columns(
    columns: list[str],
    *,
    input: str | None = None,
    expected: str | None = None,
    context: str | None = None,
    id: str | None = None,
    skip: Collection[str] = (),
    require_input: bool = True,
) -> ColumnMapping:
    """Which column holds each field: the one named, else the first usual name found
    outside ``skip`` (the column ``evaluate(predictions=...)`` reads the outputs from: a
    column of answers named ``answer`` is not the expected answer). Only the input is
    required, unless ``require_input`` is False (outputs already in the data)."""
    found = [c for c in columns if c not in skip]
    return {
        "input": _pick(columns, input, INPUT_COLUMNS, "input", found, require_input),
        "expected": _pick(columns, expected, EXPECTED_COLUMNS, "expected", found),
        "context": _pick(columns, context, CONTEXT_COLUMNS, "context", found),
        "id": _pick(columns, id, ID_COLUMNS, "id", found),
    }


def to_example(
    record: dict[str, Any], position: int, mapping: ColumnMapping, lists_in_text: bool = False
) -> Example:
    """One source row (0-based ``position``) as an example; every unmapped column is extra.
    With ``lists_in_text``, an expected text written as a JSON list is several answers."""
    # No input column only where the outputs are in the data (evaluate's predictions=).
    raw_input = record[mapping["input"]] if mapping["input"] else ""
    if mapping["input"] and (is_missing(raw_input) or _text(raw_input).strip() == ""):
        raise DataError(f"row {position + 1}: empty {mapping['input']!r} (the input column)")
    id_column = mapping["id"]
    raw_id = record[id_column] if id_column else None
    if id_column and (is_missing(raw_id) or _text(raw_id).strip() == ""):
        # Not the row number: it may be another row's id ('1' in row 2 after row 1's 1).
        raise MissingId(
            f"row {position + 1}: empty {id_column!r} (the id column); give every row an id, "
            f"or name another column with --id ({PYTHON_ARGUMENTS['id']} in harness.evaluate)",
            position + 1,
        )
    raw_context = record[mapping["context"]] if mapping["context"] else None
    mapped = {c for c in mapping.values() if c}
    return Example(
        id=str(position) if id_column is None else _text(raw_id),
        input=_text(raw_input),
        expected=(
            _answers(record[mapping["expected"]], lists_in_text) if mapping["expected"] else ()
        ),
        context=_optional_text(raw_context),
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
    require_input: bool = True,
    lists_in_text: bool = False,
) -> tuple[list[Example], ColumnMapping]:
    """Map a DataFrame's columns to examples; return them and the mapping used."""
    names = [str(c) for c in df.columns]
    mapping = map_columns(
        names,
        input=input,
        expected=expected,
        context=context,
        id=id,
        skip=skip,
        require_input=require_input,
    )
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for position, record in enumerate(df.to_dict(orient="records")):
        example = to_example(record, position, mapping, lists_in_text)
        if example.id in seen:
            raise DuplicateId(example.id, (seen[example.id], position + 1))
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
    require_input: bool = True,
    lists_in_text: bool = False,
) -> ImportResult:
    check_dataset_name(name)
    if len(df) == 0:
        raise DataError(f"{source} has no rows")
    examples, mapping = to_examples(
        df,
        input=input,
        expected=expected,
        context=context,
        id=id,
        skip=skip,
        require_input=require_input,
        lists_in_text=lists_in_text,
    )
    digest = content_digest(examples)
    db_path = resolve_home(home).db_path
    info, created = save_dataset(
        db_path,
        name=name,
        digest=digest,
        examples=examples,
        source=source,
        columns=dict(mapping),
    )
    return ImportResult.of(db_path, info, created, dict(mapping))


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
    from harness.sampling import SampleSpec, describe_sample, parse_size, sample_examples
    from harness.store.datasets import load_examples

    check_dataset_name(name)
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
    drawn = {"rows": len(chosen), "population": source.n_rows, "seed": seed, "stratify": stratify}
    info, created = save_dataset(
        db_path,
        name=name,
        digest=content_digest(chosen),
        examples=chosen,
        source=f"sample of {source.ref}: {describe_sample(drawn)}",
        columns=dict(source.columns),
    )
    return ImportResult.of(db_path, info, created, dict(source.columns))


def check_dataset_name(name: str) -> None:
    if not name or any(ch in name for ch in "@/\\\n\t ") or len(name) > 200:
        raise DataError(f"invalid dataset name {name!r}: use letters, digits, '-', '_' or '.'")
