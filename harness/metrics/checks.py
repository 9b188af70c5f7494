"""Text checks, as promptfoo names its assertions: contains, equals, starts-with, regex.

Each scores 1.0 when the output passes and 0.0 when it does not. Without a ``value``, the
text checks compare the output with the row's expected answers instead (the best over
them, or all of them for ``contains-all``), and skip rows that have none. The ``i``-kinds
(``icontains``, ``icontains-any``, ...) are the same checks with ``case_sensitive = false``.
``equals`` and ``starts-with`` ignore the whitespace around the output (models end answers
with newlines); ``contains`` and ``regex`` look anywhere in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import MetricError
from harness.metrics.kinds import EMPTY_VALUE, Kind, Param, register_kind
from harness.metrics.registry import Metric, ScoringRow

__all__: list[str] = []

_CASE = Param("case_sensitive", (bool,), "false to compare ignoring case (default true)")


def _fold(case_sensitive: bool) -> Callable[[str], str]:
    return (lambda text: text) if case_sensitive else str.casefold


def _values(value: Any) -> list[str]:
    """A list of texts, or one text of comma-separated values (as promptfoo reads it)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _list_value(text: str) -> dict[str, Any]:
    """``a,b`` or a JSON list (``["a,b", "c"]``) from the command line."""
    if text.lstrip().startswith("["):
        import json

        try:
            parsed = json.loads(text)
        except ValueError as e:
            raise MetricError(f"cannot read {text!r} as a JSON list: {e}") from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise MetricError(f"{text!r} must be a JSON list of texts")
        return {"value": parsed}
    return {"value": _values(text)}


def _check(
    name: str,
    what: tuple[str, str],
    value: Any,
    test: Callable[[str, Sequence[str]], bool],
    case_sensitive: bool,
    *,
    many: bool,
) -> Metric:
    """A 0/1 metric: ``test(output, needles)`` with the fixed value, else the expected answers.

    ``many`` kinds test all needles at once; the others pass if any one needle passes.
    """
    fold = _fold(case_sensitive)
    case = "" if case_sensitive else ", ignoring case"
    if value is not None:
        shown = _values(value) if many else [value]
        needles = [fold(v) for v in shown]
        if not needles or "" in needles:  # "" is in every output: a check that always passes
            raise MetricError(f"metric {name!r}: {EMPTY_VALUE}")

        def fixed(row: ScoringRow) -> float:
            return 1.0 if test(fold(row.output), needles) else 0.0

        description = f"1 if the output {what[0]} {', '.join(map(repr, shown))}{case}, else 0"
        return Metric(name, description, needs_expected=False, fn=fixed, binary=True)

    def against_expected(row: ScoringRow) -> float:
        answers = [fold(a) for a in row.expected]
        if many:
            return 1.0 if test(fold(row.output), answers) else 0.0
        return 1.0 if any(test(fold(row.output), [a]) for a in answers) else 0.0

    description = f"1 if the output {what[0]} {what[1]}{case}, else 0"
    return Metric(name, description, needs_expected=True, fn=against_expected, binary=True)


def _contains(output: str, needles: Sequence[str]) -> bool:
    return any(needle in output for needle in needles)


def _contains_all(output: str, needles: Sequence[str]) -> bool:
    return all(needle in output for needle in needles)


def _equals(output: str, needles: Sequence[str]) -> bool:
    return output.strip() in (needle.strip() for needle in needles)


def _starts_with(output: str, needles: Sequence[str]) -> bool:
    stripped = output.lstrip()
    return any(stripped.startswith(needle) for needle in needles)


def _text_kind(
    kind: str,
    test: Callable[[str, Sequence[str]], bool],
    what: tuple[str, str],
    *,
    many: bool = False,
) -> None:
    value = Param(
        "value",
        (str, list) if many else (str,),
        "a list of texts (or one text, comma-separated)" if many else "the text to look for",
    )
    for prefix, case_sensitive in (("", True), ("i", False)):

        def factory(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
            case = params.get("case_sensitive", True)
            return _check(name, what, params.get("value"), test, case, many=many)

        case = "" if case_sensitive else ", ignoring case"
        register_kind(
            Kind(
                name=prefix + kind,
                description=f"1 if the output {what[0]} the "
                f"{'values' if many else 'value'} (default: {what[1]}){case}",
                params=(value, _CASE),
                factory=factory,
                main="value",
                parse_value=_list_value if many else None,
                defaults={} if case_sensitive else {"case_sensitive": False},
                uses_expected=True,
            )
        )


_text_kind("contains", _contains, ("contains", "an expected answer"))
_text_kind("contains-any", _contains, ("contains any of", "an expected answer"), many=True)
_text_kind("contains-all", _contains_all, ("contains all of", "every expected answer"), many=True)
_text_kind("equals", _equals, ("equals", "an expected answer"))
_text_kind("starts-with", _starts_with, ("starts with", "an expected answer"))


def _regex(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
    pattern = params["pattern"]
    if not pattern:
        raise MetricError(f"metric {name!r}: the pattern is empty (it matches every output)")
    flags = 0 if params.get("case_sensitive", True) else re.IGNORECASE
    try:
        compiled = re.compile(pattern, flags)
    except re.error as e:
        raise MetricError(f"metric {name!r}: bad regular expression {pattern!r}: {e}") from None

    def search(row: ScoringRow) -> float:
        return 1.0 if compiled.search(row.output) else 0.0

    return Metric(
        name, f"1 if the output matches /{pattern}/", needs_expected=False, fn=search, binary=True
    )


register_kind(
    Kind(
        name="regex",
        description="1 if the output matches the pattern (Python re.search), else 0",
        params=(Param("pattern", (str,), "a Python regular expression", required=True), _CASE),
        factory=_regex,
        main="pattern",
    )
)
