"""Writing a stored eval-set version back to a file (``harness data export``).

The file is one that ``harness data import`` reads back to the same rows, so the same
content digest: importing it again under the same name says the version is already
stored. The four fields are written under the names the importer finds by themselves
(``id``, ``input``, ``expected``, ``context``), every other column under its own name.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import resolve_home
from harness.errors import ConfigError, DataError, DiskFull
from harness.faults import environment_fault
from harness.files import folder_problem, replaced_on_success, text_writer
from harness.store.datasets import DatasetInfo, Example, load_examples, resolve_dataset

if TYPE_CHECKING:
    import os

FIELDS = ("id", "input", "expected", "context")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass(frozen=True)
class ExportResult:
    dataset: DatasetInfo
    path: Path

    def as_dict(self) -> dict[str, Any]:
        return {**self.dataset.as_dict(), "file": str(self.path)}


def export_dataset(
    ref: str,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    home: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write dataset ``ref`` (``NAME`` for its newest version, or ``NAME@VERSION``) to
    ``path``: JSONL for ``.jsonl``/``.ndjson``, CSV for ``.csv``.

    An existing file is replaced only with ``force``; the file appears whole or not at all.
    A CSV holds text only: a version with a number, list or null among its other columns
    is refused (JSONL keeps them).
    """
    target = Path(path).expanduser()
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{target}: an eval-set file must end in .jsonl, .ndjson or .csv "
            "(the format is chosen by the name)"
        )
    db_path = resolve_home(home).db_path
    info = resolve_dataset(db_path, ref)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder")
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; give --force to replace it")
    problem = folder_problem(target.parent)
    if problem is not None:
        raise ConfigError(problem)
    examples = load_examples(db_path, info)
    columns = _columns(info, examples)
    records = [_record(e, csv_cells=fmt == "csv") for e in examples]
    if fmt == "csv":
        _check_text_only(info, records, columns)
    try:
        with replaced_on_success(target) as partial, text_writer(partial, gzipped=False) as f:
            if fmt == "jsonl":
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            else:
                # Every cell quoted: the importer's separator sniffing then sees commas
                # whatever the text holds.
                writer = csv.DictWriter(f, columns, quoting=csv.QUOTE_ALL, lineterminator="\n")
                writer.writeheader()
                writer.writerows(records)
    except OSError as e:
        fault = environment_fault(e, target)
        if isinstance(fault, DiskFull):  # the environment, not the user's mistake: exit 74
            raise fault from None
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
    return ExportResult(info, target)


def _columns(info: DatasetInfo, examples: list[Example]) -> list[str]:
    """The file's columns: the four fields, then the others in their first row's order."""
    others: dict[str, None] = {}
    for example in examples:
        others.update(dict.fromkeys(example.extra))
    clash = [c for c in others if c in FIELDS]
    if clash:  # another column took the field's name: the importer would map that one
        raise DataError(
            f"{info.ref} has a column {clash[0]!r} besides its {clash[0]} field; a file "
            "cannot hold both under one name"
        )
    return [*FIELDS, *others]


def _record(example: Example, *, csv_cells: bool) -> dict[str, Any]:
    return {
        "id": example.id,
        "input": example.input,
        "expected": _expected(example.expected, csv_cells),
        "context": "" if csv_cells and example.context is None else example.context,
        **example.extra,
    }


def _expected(answers: tuple[str, ...], csv_cells: bool) -> Any:
    """One answer as its text, else the list: the importer reads an empty cell as no
    answer, and a CSV cell written as a JSON list as several, so those go as a list (one
    answer that looks like a list is ``["[1, 2]"]`` in a CSV, its text in JSONL)."""
    if len(answers) == 1 and answers[0] and not (csv_cells and _looks_like_list(answers[0])):
        return answers[0]
    if csv_cells:
        return json.dumps(list(answers), ensure_ascii=False) if answers else ""
    return list(answers)


def _looks_like_list(text: str) -> bool:
    return text.startswith("[") and text.endswith("]")


def _check_text_only(info: DatasetInfo, records: list[dict[str, Any]], columns: list[str]) -> None:
    for row, record in enumerate(records, start=1):
        for column in columns[len(FIELDS) :]:
            value = record.get(column)
            if not isinstance(value, str):
                what = "no value" if value is None else f"the {type(value).__name__} {value!r}"
                raise DataError(
                    f"{info.ref}: row {row}'s {column!r} holds {what}, which a CSV would read "
                    "back as text; export to .jsonl to keep it"
                )
