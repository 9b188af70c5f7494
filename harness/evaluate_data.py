"""The data side of ``harness.evaluate``: a file or DataFrame imported as a stored dataset
version, its ``by=``/``stratify=`` columns checked first, and a version a refused call
created removed again."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Home
    from harness.store.datasets import DatasetInfo

__all__ = ["check_columns", "forget_version", "import_data", "read_file"]

_FIELDS = {"input": "input", "expected": "expected answer", "context": "context", "id": "id"}


def check_columns(
    argument: str, wanted: list[str], columns: list[str], mapping: dict[str, Any]
) -> None:
    """``by=`` and ``stratify=`` columns checked against the data's own columns, before it is
    imported: after, the run knows only harness's names for them (input, expected, ...)."""
    from harness.data import map_columns
    from harness.slices.labels import BUILTIN_COLUMNS

    fields = {column: field for field, column in map_columns(columns, **mapping).items()}
    for column in wanted:
        if column in BUILTIN_COLUMNS:
            continue
        if column in fields:
            raise ConfigError(
                f"{argument}={column!r}: that column is the data's {_FIELDS[fields[column]]}; "
                f"use {argument}={fields[column]!r}"
            )
        if column not in columns:
            raise ConfigError(
                f"{argument}={column!r}: the data has no such column; its columns: "
                f"{', '.join(columns)}"
            )


def read_file(data: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The rows of ``data`` if it names a data file (by its extension), else None: a name."""
    from harness.data_files import FORMATS, read_table

    if Path(data).suffix.lower() not in FORMATS:
        return None
    return read_table(Path(data).expanduser())


def import_data(
    data: Any,
    frame: Any,
    table: pd.DataFrame | None,
    data_name: str | None,
    home: Path,
    mapping: dict[str, Any],
) -> tuple[str, DatasetInfo | None]:
    """The stored dataset's ``NAME@VERSION`` for ``data`` (imported unless already stored),
    and the version if this import created it. ``table`` is a file's rows as
    :func:`read_file` read them."""
    from harness import data as data_module

    if table is not None:
        path = Path(data).expanduser()
        imported = data_module.import_dataframe(
            table,
            name=data_name or path.stem,
            source=str(path),
            home=home,
            number_repeated_ids=True,  # mlflow.evaluate has no row ids: an id may repeat
            lists_in_text=data_module.holds_text_only(path),
            **mapping,
        )
    elif frame is None:
        return str(data), None
    else:
        imported = data_module.import_dataframe(
            frame.df,
            name=data_name or frame.name or "dataframe",
            home=home,
            number_repeated_ids=True,
            lists_in_text=False,  # as mlflow.evaluate: a str is one answer, a list several
            **mapping,
        )
    return imported.dataset.ref, imported.dataset if imported.created else None


def forget_version(project: Home, version: DatasetInfo) -> None:
    """Remove a version a refused call created. Failing to is a warning: the refusal being
    raised is what the caller must see, not the cleanup's own error."""
    import duckdb

    from harness.errors import HarnessError
    from harness.store.datasets import delete_unused_version

    try:
        delete_unused_version(project.db_path, version.name, version.version)
    except (HarnessError, duckdb.Error, OSError) as e:
        logging.getLogger("harness").warning(
            "harness: could not remove dataset version %s that this refused call stored: %s",
            version.ref,
            e,
        )
