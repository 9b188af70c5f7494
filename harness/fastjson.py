"""``json.loads``, read by orjson whenever orjson reads the same value.

orjson parses JSON several times as fast as the standard library, and harness parses
JSON on every cache hit and every intercepted call (``bench/bench_cache_lookup.py``: a
cache hit took 45-47 µs with the standard library's parse, 34-43 µs with this and the
lighter select of ``ResponseCache.get``). The two read every document alike except:

- an integer beyond 64 bits, which orjson reads as a float (the standard library as an
  exact int);
- what orjson refuses and the standard library takes: NaN, Infinity, 1e400, a lone
  surrogate escape, UTF-16 or a byte-order mark. orjson raising sends those to ``json``.

Only the first needs a look before parsing. An integer beyond 64 bits has at least 19
digits, and in JSON an integer's digits follow ``-``, ``:``, ``,``, ``[``, whitespace or
the start of the text. ``_may_hold_a_long_int`` looks for 19 digits in a row right after
one of those, with one ``bytes.translate`` and one search. A float's digits after its
point (``0.000112...``: twenty in a row) or a hex digest's do not count, so almost every
document takes orjson; a long number inside a string may send one to the standard
library, which is only slower. tests/test_fastjson.py compares the two readers.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads", "loads_text"]

# Digits become "0"; what may come right before an integer's first digit becomes "|".
_SHAPES = bytes.maketrans(b"0123456789-:,[ \t\n\r", b"0" * 10 + b"|" * 8)
_LONG_INT = b"|" + b"0" * 19
_LONG_START = b"0" * 19


def _may_hold_a_long_int(content: bytes) -> bool:
    shapes = content.translate(_SHAPES)
    return _LONG_INT in shapes or shapes.startswith(_LONG_START)


def loads(content: bytes) -> Any:
    """``json.loads(content)``: the same value, by orjson when that reads it alike."""
    if not _may_hold_a_long_int(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass  # NaN, 1e400, a lone surrogate, UTF-16: the standard library decides
    return json.loads(content)


def loads_text(text: str) -> Any:
    """``json.loads(text)`` for text already decoded (a judge's answer), by ``loads``.

    Two texts read differently as UTF-8 bytes, and go to the standard library as they are:
    one holding a lone surrogate (which has no UTF-8 form) and one opening with a byte-order
    mark (an error in text, skipped in bytes).
    """
    if text[:1] != "\ufeff":
        try:
            content = text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return loads(content)
    return json.loads(text)
