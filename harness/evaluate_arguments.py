"""``harness.evaluate``'s arguments checked and read in Python's words: a wrong type named
with the argument (``params= takes a dict, got list``), a single name taken as a list of one,
names apart from objects. Each refusal is a one-line ConfigError (exit 2 on the CLI path).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.errors import ConfigError, DataError, ModelURIError


def no_column(argument: str, column: str, columns: Iterable[Any]) -> DataError:
    shown = ", ".join(str(c) for c in columns)
    return DataError(f"{argument}={column!r}: the data has no such column; its columns: {shown}")


def check_named_columns(columns: Sequence[str], named: Mapping[str, str | None]) -> None:
    """Refuse a column an argument names (``targets='answer'``, ``inputs=``, ``context=``, or
    through ``col_mapping``) that the data lacks, in evaluate's words, before anything is
    stored: the import would say it in the CLI's (``column 'answer' (for expected)``)."""
    for argument, column in named.items():
        if column is not None and column not in columns:
            raise no_column(argument, column, columns)


def not_a_model(model: Any) -> ModelURIError:
    """What ``model=`` takes, and for an MLflow model (anything with ``predict``) how."""
    what = type(model).__name__
    said = "model= takes a model URI (openai:/MODEL, python:MODULE:FUNCTION, ...) or a function"
    if callable(getattr(model, "predict", None)):
        return ModelURIError(
            f"{said} of the row dict, not a {what}; wrap its predict in one: "
            f'model=lambda row: m.predict([row["input"]])[0]'
        )
    return ModelURIError(f"{said} of the row dict returning text, not a {what}")


def check_types(
    *, dicts: dict[str, Any], texts: dict[str, Any], optional_texts: dict[str, Any]
) -> None:
    """Refuse, naming the argument, what would fail later as a built-in error (a list for
    params= is "not a mapping" deep in the run) or be stored as it is."""
    for name, value in dicts.items():
        if value is not None and not isinstance(value, Mapping):
            raise wrong_type(name, value, "a dict")
        keys = [k for k in value or {} if not isinstance(k, str)]
        if keys:  # {5: 1} was an AttributeError traceback (no isascii)
            raise ConfigError(f"{name}= takes names (str) as keys, got {keys[0]!r}")
    for name, value in {**texts, **optional_texts}.items():
        if not isinstance(value, str) and (value is not None or name in texts):
            raise wrong_type(name, value, "a str")


def wrong_type(name: str, value: Any, what: str) -> ConfigError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return ConfigError(f"{name}= takes {what}, got {type(value).__name__} {shown}")


def integer(name: str, value: Any) -> int:
    """``value`` as an int (numpy's too); ConfigError for anything else, bool included."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise wrong_type(name, value, "an int")
    return int(value)


def listed(value: Any, name: str) -> list[Any]:
    """``value`` as a list: None is none, a str or any single object is one item, a dict is
    refused. Only containers count as lists: an MLflow scorer is a pydantic model, which
    iterates over its fields."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        raise ConfigError(f"{name}= takes a list, not a dict")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or _is_model(value):
        return [value]
    return list(value)


def _is_model(value: Any) -> bool:
    """A pydantic model (an MLflow scorer is one), looked up without importing pydantic."""
    return any(
        c.__name__ == "BaseModel" and c.__module__.startswith("pydantic")
        for c in type(value).__mro__
    )


def mapped(col_mapping: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = col_mapping.get(name)
        if isinstance(value, str):
            return value
    return None


def split_names(items: Sequence[Any]) -> tuple[list[str], list[Any]]:
    """Names and specs (text) apart from objects, each kept in order."""
    texts: list[str] = []
    objects: list[Any] = []
    for item in items:
        (texts if isinstance(item, str) else objects).append(item)
    return list(dict.fromkeys(texts)), objects
