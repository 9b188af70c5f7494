"""A run's MLflow artifacts and dataset input, rendered as MLflow's API would write them.

``render_rows`` turns a finished run's DataFrames into what ``SqlRunLogger.finish``
(``harness.tracking.sql_run``) writes without MLflow: the per-row table as
``mlflow.log_table`` renders it (spooled to a file a chunk at a time for a long run), the
other tables, and the dataset entity with the schema MLflow would infer.
``write_artifacts`` puts them, the prompt, the config and the report in the run's artifact
folder, each whole or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import filecmp
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.tracking.record import (
    CONFIG_ARTIFACT,
    MLFLOW_DIGEST_MAX,
    PROMPT_ARTIFACT,
    REPORT_ARTIFACT,
    TABLE_ARTIFACT,
    RunRecord,
)

__all__ = [
    "PlainTable",
    "RenderedRows",
    "dataset_entity",
    "render_rows",
    "render_tables",
    "spool_file",
    "table_json",
    "write_artifacts",
]


@dataclass(frozen=True)
class RenderedRows:
    """What ``finish`` needs of the run's tables, without the tables themselves."""

    table_json: str | None  # the per-row table artifact (None: it is in ``table_file``)
    dataset: dict[str, str] | None  # the dataset entity; None: only MLflow can infer it
    tables: dict[str, str]  # ``RunRecord.tables`` rendered, by artifact name
    # The per-row table and the report written to files by the run's process; ``finish``
    # moves them into the run's artifacts, and whoever does not use them deletes them
    # (``discard``).
    table_file: Path | None = None
    report_file: Path | None = None
    # Set: the per-row table and the dataset entity are the MLflow worker's to make, from
    # the batches of this many rows it received (``harness.runner.table_rows.SpooledTable``).
    worker_rows: int | None = None

    def with_table(self, table: RenderedRows) -> RenderedRows:
        """These tables with ``table``'s per-row table and dataset entity."""
        return dataclasses.replace(
            self, table_json=table.table_json, table_file=table.table_file,
            dataset=table.dataset, worker_rows=None,
        )  # fmt: skip

    def discard(self) -> None:
        """Delete the files if they are still there (the run was not written with them)."""
        for path in (self.table_file, self.report_file):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)


_RENDER_CHUNK_ROWS = 1000


class PlainTable(Protocol):
    """The per-row table as plain rows, read a chunk at a time (``harness.runner.table_rows``)."""

    columns: list[str]
    floats: list[bool]  # which columns pandas holds as floats

    @property
    def rows(self) -> int: ...

    missing: dict[str, int]  # the dataset columns' missing values (id, input, ...)

    def chunks(self) -> Iterator[Sequence[Sequence[Any]]]: ...


def render_rows(
    record: RunRecord, spool: Path | None = None, table: PlainTable | None = None
) -> RenderedRows:
    """The table artifacts and the dataset entity of ``record``: its per-row table from
    ``table``, read a chunk at a time without pandas, else from its DataFrame.

    With ``spool`` (a folder on the artifacts' file system) the per-row table is written
    there, a chunk at a time, instead of held as text: at 100,000 rows its JSON is 200 MB,
    which the MLflow worker's pipe carried whole and each side held, twice. A folder that
    cannot take it (a full disk) leaves the table as text, as without ``spool``.
    """
    if table is not None:
        # Text with some values missing is ``string``, not required: what MLflow infers of
        # the DataFrame, where pandas holds NaN for them (``dataset_entity`` asks MLflow).
        missing: dict[str, int | None] = dict(table.missing)
        dataset = _entity(record, _counted_schema(table.rows, missing), table.rows)
        parts: Any = lambda: _plain_json_parts(table)  # noqa: E731 - made twice at most
    else:
        assert record.rows is not None, "a finished run's record holds its rows"
        dataset = dataset_entity(record, infer=False)
        frame = record.rows
        parts = lambda: _table_json_parts(frame)  # noqa: E731
    tables = {name: table_json(frame) for name, frame in record.tables.items()}
    if spool is not None:
        try:
            return RenderedRows(None, dataset, tables, spool_file(spool, "table", ".json", parts()))
        except OSError:
            pass  # rendered in memory below, as the run's process always could
    return RenderedRows("".join(parts()), dataset, tables)


def render_tables(record: RunRecord, rows: int) -> RenderedRows:
    """``render_rows`` but for the per-row table and the dataset entity, which the MLflow
    worker makes from the ``rows`` rows it received (``RenderedRows.worker_rows``)."""
    tables = {name: table_json(frame) for name, frame in record.tables.items()}
    return RenderedRows(None, None, tables, worker_rows=rows)


def _plain_json_parts(table: PlainTable) -> Iterator[str]:
    """``table_json`` of the DataFrame of ``table``'s rows, from the rows."""
    from harness.tracking.table_json import table_head, values_text

    yield table_head(table.columns)
    first = True
    for chunk in table.chunks():
        if chunk:
            yield ("" if first else ",") + values_text(chunk, table.floats)
            first = False
    yield "]}"


def spool_file(folder: Path, kind: str, suffix: str, parts: Iterable[str]) -> Path:
    """``parts`` written to a new hidden file in ``folder``
    (``.harness-KIND-<random>SUFFIX``), whole or not at all; its path."""
    # Not mkstemp: its files are private (0600), and this one becomes an artifact that
    # should read like the others (the umask's mode).
    path = folder / f".harness-{kind}-{uuid.uuid4().hex}{suffix}"
    try:
        with path.open("x", encoding="utf-8") as out:
            out.writelines(parts)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def table_json(frame: Any) -> str:
    """``frame.to_json(orient="split", index=False, date_format="iso")``, the call
    ``mlflow.log_table`` makes (so the UI reads the file as it reads its own), the same
    text rendered 1,000 rows at a time: pandas turns the whole frame into Python objects
    first, which at 10,000 rows took more memory than the rest of the run."""
    return "".join(_table_json_parts(frame))


def _table_json_parts(frame: Any) -> Iterator[str]:
    head = str(frame.iloc[:0].to_json(orient="split", index=False, date_format="iso"))
    assert head.endswith('"data":[]}'), head
    yield head[: -len("[]}")] + "["
    for start in range(0, len(frame), _RENDER_CHUNK_ROWS):
        chunk = frame.iloc[start : start + _RENDER_CHUNK_ROWS]
        values = str(chunk.to_json(orient="values", date_format="iso"))
        yield ("," if start else "") + values[1:-1]
    yield "]}"


def write_artifacts(folder: Path, record: RunRecord, rendered: RenderedRows) -> None:
    """The tables, prompt, config and report, each written to a temporary name and renamed
    (what ``mlflow_log._log_artifacts`` logs); one already there with the same bytes is
    kept."""
    files = dict(rendered.tables)
    if rendered.table_json is not None:
        files[TABLE_ARTIFACT] = rendered.table_json
    files[PROMPT_ARTIFACT] = record.prompt_template
    files[CONFIG_ARTIFACT] = json.dumps(record.config, indent=2, sort_keys=True, default=str)
    if record.report_html is not None:
        files[REPORT_ARTIFACT] = record.report_html
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".harness-", dir=folder) as tmp:
        staged = Path(tmp)
        for name, text in files.items():
            (staged / name).write_text(text, encoding="utf-8")
        names = list(files)
        spooled = ((rendered.table_file, TABLE_ARTIFACT), (rendered.report_file, REPORT_ARTIFACT))
        for path, name in spooled:  # written by the run's process
            if path is not None:
                _move(path, staged / name)
                names.append(name)
        for name in names:
            if not _same_file(staged / name, folder / name):
                (staged / name).replace(folder / name)


def _same_file(new: Path, old: Path) -> bool:
    """True when ``old`` exists with ``new``'s bytes: kept as it is, so logging a logged
    run again (``harness runs log``) leaves its files and their mtimes alone, and the next
    ``harness sync`` (which compares size and mtime) uploads none of them again."""
    try:
        if old.stat().st_size != new.stat().st_size:
            return False
    except FileNotFoundError:
        return False
    return filecmp.cmp(new, old, shallow=False)


def _move(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, or copy it across file systems and delete it."""
    try:
        source.replace(target)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, target)
        source.unlink()


def dataset_entity(record: RunRecord, *, infer: bool) -> dict[str, str] | None:
    """The dataset as ``mlflow.data.from_pandas(...)._to_mlflow_entity()`` describes it.

    Without ``infer``, None when its schema needs MLflow's inference (see ``_colspec_schema``).
    """
    assert record.rows is not None, "a finished run's record holds its rows"
    columns = [c for c in _DATASET_COLUMNS if c in record.rows.columns]
    frame = record.rows[columns]
    return _entity(record, _colspec_schema(frame, infer=infer), len(frame), len(columns))


_DATASET_COLUMNS = ("id", "input", "expected", "context")


def _entity(
    record: RunRecord, schema: str | None, rows: int, columns: int = len(_DATASET_COLUMNS)
) -> dict[str, str] | None:
    if schema is None:
        return None
    source = {
        "tags": {
            "harness.dataset": f"{record.dataset_name}@{record.dataset_version}",
            "harness.dataset_digest": record.dataset_digest,
        }
    }
    return {
        "name": record.dataset_name,
        "digest": record.dataset_digest[:MLFLOW_DIGEST_MAX],
        "source_type": "code",
        "source": json.dumps(source),
        "schema": schema,
        "profile": json.dumps({"num_rows": rows, "num_elements": rows * columns}),
    }


def _colspec_schema(frame: Any, *, infer: bool = True) -> str | None:
    """MLflow's inferred schema of a frame of text columns.

    A column of text and missing values (None) is ``string``, required when none is
    missing; a column of only None is ``any``. Any other column (numbers, NaN, an empty
    frame) is inferred by MLflow itself, imported for this one case (None without ``infer``).
    """
    counts: dict[str, int | None] = {}
    for name in frame.columns:
        values = frame[name].tolist()
        text = all(v is None or isinstance(v, str) for v in values)
        counts[str(name)] = sum(v is None for v in values) if text else None
    schema = _counted_schema(len(frame), counts)
    if schema is None and infer:
        return _mlflow_schema(frame)
    return schema


def _counted_schema(rows: int, missing: dict[str, int | None]) -> str | None:
    """The schema of ``rows`` rows of columns of text and ``missing`` Nones each (None:
    not only text); None for MLflow to infer it (no rows, a column not only text)."""
    specs: list[dict[str, Any]] = []
    for name, gone in missing.items():
        if not rows or gone is None:
            return None
        kind = "any" if gone == rows else "string"
        specs.append({"type": kind, "name": name, "required": not gone})
    return json.dumps({"mlflow_colspec": specs})


def _mlflow_schema(frame: Any) -> str:
    from mlflow.types.utils import _infer_schema

    return json.dumps({"mlflow_colspec": _infer_schema(frame).to_dict()})
