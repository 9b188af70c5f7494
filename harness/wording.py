"""Small helpers for the words in messages, shared by the CLI and the library."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,000 rows``: a count and its noun, agreeing."""
    word = noun if n == 1 else (many or noun + "s")
    return f"{n:,} {word}"


def storable(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate written as its escape, ``\\ud800``.

    Valid JSON may hold such an escape (``"x\\ud800y"``) and Python's json and the LLM
    SDKs read it as a lone surrogate, which UTF-8 has no form for: DuckDB, SQLite, MLflow
    and a file or terminal written as UTF-8 all refuse it. Written as the six characters of
    its escape, as ``harness.cache.keys.canonical_json`` writes it in a cache entry, it
    stays visible and the text stays the same wherever it is stored or shown. Other text
    comes back as it is, the same object; only text that fails to encode pays for a copy.
    """
    if text.isascii():  # O(1) in CPython
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_value(value: Any) -> Any:
    """``value`` with every text in it (a list's items, a dict's keys and values, at any
    depth: a ``--param 'stop=["\\ud800"]'``) as :func:`storable` writes it."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(storable_value(v) for v in value)
    if isinstance(value, dict):
        return {
            storable(k) if isinstance(k, str) else k: storable_value(v) for k, v in value.items()
        }
    return value


def unknown_names(noun: str, names: Iterable[str]) -> str:
    """``unknown setting x`` or ``unknown settings x, y``: the names a mistake is about,
    with its noun agreeing."""
    listed = list(names)
    return f"unknown {noun if len(listed) == 1 else noun + 's'} {', '.join(listed)}"
