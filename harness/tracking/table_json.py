"""pandas' JSON of a table (``frame.to_json(orient="split", index=False)``, what
``mlflow.log_table`` writes), made from plain Python rows without pandas.

pandas writes with its own ujson: text with every non-ASCII character as ``\\uXXXX`` and
``/`` as ``\\/``; numbers of a float column, and floats anywhere, with at most 10 decimals
(``_double``), NaN and infinities as ``null``; ints of an int or object column as they
are. Which columns are float columns is the caller's to say (pandas infers it over the
whole column: an int column with a missing value is a float column, ``12.0``).
tests/tracking/test_table_json.py checks the text against pandas' for many values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["double_text", "table_head", "value_text", "values_text"]

# ujson's bounds: beyond them a float is written with ``%.10g`` (exponent form).
_FIXED_MAX = 1e16  # ``(double)1e16 - 1``, which rounds to 1e16
_FIXED_MIN = 1e-15
_PRECISION = 10
# Below it a float is within 1e-12 (half its last bit) of its shortest decimal form: when
# that has 10 decimals or fewer, ujson's 10 decimals are its digits (the common case,
# without ujson's arithmetic).
_SHORT_MAX = 1e4
_SCALE = 10**_PRECISION


def double_text(value: float) -> str:
    """A float as pandas' ujson writes it (``Buffer_AppendDoubleUnchecked``, 10 decimals)."""
    if math.isnan(value) or math.isinf(value):
        return "null"
    if not value:
        return "0.0"  # -0.0 too
    if -_SHORT_MAX < value < _SHORT_MAX:
        shortest = repr(value)
        point = shortest.find(".")
        if point > 0 and len(shortest) - point <= _PRECISION + 1 and "e" not in shortest:
            return shortest
    negative = value < 0
    size = -value if negative else value
    if size > _FIXED_MAX or (size != 0.0 and size < _FIXED_MIN):
        return "%.10g" % value  # noqa: UP031 - C's printf format, as ujson calls it
    whole = int(size)
    scaled = (size - whole) * 1e10
    frac = int(scaled)
    rest = scaled - frac
    if rest > 0.5 or (rest == 0.5 and (frac == 0 or frac & 1)):  # ujson's rounding
        frac += 1
    if frac >= _SCALE:
        frac = 0
        whole += 1
    decimals = str(frac).rjust(_PRECISION, "0").rstrip("0") if frac else "0"
    return f"{'-' if negative else ''}{whole}.{decimals}"


# ujson escapes text as the standard library's C encoder does (ASCII only, lowercase hex,
# the short escapes for \b \f \n \r \t), but for "/", which it escapes and the encoder never
# writes, and DEL (0x7f), which it keeps as it is and the encoder escapes.
_ESCAPE = encode_basestring_ascii
_DEL = "\x7f"
_DEL_ESCAPE = re.compile(r"(\\*)\\u007f")


def _text(value: str) -> str:
    text: str = _ESCAPE(value).replace("/", "\\/")
    if _DEL in value:  # an escape of it, not a backslash's escape followed by "u007f"
        text = _DEL_ESCAPE.sub(_kept_del, text)
    return text


def _kept_del(match: re.Match[str]) -> str:
    slashes = match.group(1)
    return match.group() if len(slashes) % 2 else slashes + _DEL


def _float_text(value: Any) -> str:
    """A value of a float column: a number (an int too) or None."""
    return "null" if value is None else double_text(float(value))


def value_text(value: Any, as_float: bool = False) -> str:
    """One value as pandas writes it: in a float column (``as_float``), numbers as floats."""
    if as_float:
        return _float_text(value)
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is float:
        return double_text(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        items = (f"{_text(str(k))}:{value_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    raise TypeError(f"no JSON for a {type(value).__name__} in the per-row table")


def values_text(rows: Iterable[Sequence[Any]], floats: Sequence[bool]) -> str:
    """Rows as the ``data`` of the table's JSON, without its brackets: ``[..],[..]``."""
    # A float column's numbers written once each: its text depends on the number alone (an
    # int or a bool as the float it equals; NaN is never found, and written each time).
    seen: dict[Any, str] = {}

    def number(value: Any) -> str:
        text = seen.get(value)
        if text is None:
            text = seen[value] = _float_text(value)
        return text

    writers = [number if f else value_text for f in floats]
    return ",".join(
        "[" + ",".join([write(v) for write, v in zip(writers, row, strict=True)]) + "]"
        for row in rows
    )


def table_head(columns: Sequence[str]) -> str:
    """The table's JSON up to its rows: ``{"columns":[...],"data":[``."""
    return '{"columns":[' + ",".join(_text(c) for c in columns) + '],"data":['
