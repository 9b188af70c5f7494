"""Small helpers for the words in messages, shared by the CLI and the library."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,000 rows``: a count and its noun, agreeing."""
    word = noun if n == 1 else (many or noun + "s")
    return f"{n:,} {word}"
