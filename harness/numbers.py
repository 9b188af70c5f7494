"""How every surface writes numbers, so the terminal, markdown, JUnit and the HTML report agree."""

from __future__ import annotations

import math
import re
from typing import overload

__all__ = [
    "ci",
    "clip",
    "controls_escaped",
    "mde",
    "mean_ci",
    "number",
    "p_value",
    "range_list",
    "range_text",
    "signed",
]


def number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    # Whole numbers in full up to 1e15; beyond, a float holds no more digits than `g`
    # shows, and `,.0f` wrote 1e308 as 309 digits, nearly all of them made up.
    if 1e5 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def signed(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "–"
    if value == 0:
        return "0"
    return f"{value:+.{digits}g}"


def ci(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    return f"[{signed(low, digits)}, {signed(high, digits)}]"


def mean_ci(mean: float, low: float, high: float, digits: int = 4) -> str:
    if math.isnan(low):
        return number(mean, digits)
    return f"{number(mean, digits)} [{number(low, 3)}, {number(high, 3)}]"


def mde(value: float | None, largest: float | None, none: bool = False, digits: int = 3) -> str:
    """A minimum detectable effect, or ``> 4 (none)`` when it exceeds ``largest``, the
    largest change the scores can show, or when ``none`` says no change is detectable
    with those rows anyway (0/1 scores whose test cannot reach alpha: ``> 1 (none)``)."""
    if largest is not None and (none or (value is not None and value > largest)):
        return f"> {number(largest, digits)} (none)"
    return number(value, digits)


def range_text(bounds: tuple[float, float]) -> str:
    """A declared range as the surfaces name it: ``[1, 5]``, or ``[0, ∞)`` for one open
    above (latency, word count)."""
    low = "(-∞" if math.isinf(bounds[0]) else f"[{bounds[0]:g}"
    high = "∞)" if math.isinf(bounds[1]) else f"{bounds[1]:g}]"
    return f"{low}, {high}"


@overload
def range_list(bounds: tuple[float, float]) -> list[float | None]: ...
@overload
def range_list(bounds: tuple[float, float] | None) -> list[float | None] | None: ...
def range_list(bounds: tuple[float, float] | None) -> list[float | None] | None:
    """A declared range as JSON holds it (stored with a run, ``--json``, the slices table):
    ``[0, 1]``, an open side as null (``[0, null]``: JSON has no infinity); None without."""
    if bounds is None:
        return None
    return [end if math.isfinite(end) else None for end in bounds]


def p_value(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    if p < 0.0001:
        return "<0.0001"
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}".rstrip("0").rstrip(".")


# Control characters left after the whitespace is collapsed: an answer holding ESC [2J or
# ESC ]0;... cleared the terminal or set its title when a flipped row was shown, and could
# move the cursor over the verdict. Each is shown as the text of its escape instead.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def controls_escaped(text: str) -> str:
    """``text`` with its control characters (not tabs or line ends) written as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clip(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters, control characters written as escapes."""
    if not text:
        return ""
    line = controls_escaped(" ".join(str(text).split()))
    return line if len(line) <= width else line[: width - 1] + "…"
