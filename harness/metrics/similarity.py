"""``levenshtein``: edit-distance similarity of the output to the expected answer.

``1 - distance / max(len(output), len(answer))`` (``rapidfuzz``'s normalized Levenshtein
similarity, in [0, 1]; two empty texts are identical), best over the expected answers, on
the texts without the whitespace around them. A ratio, not a pass/fail: 0.9 is one edit in
ten characters. With ``value`` it compares against that text instead of the expected answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import MetricError
from harness.metrics.kinds import EMPTY_VALUE, Kind, Param, register_kind
from harness.metrics.registry import Metric, ScoringRow

__all__ = ["levenshtein_similarity"]


def levenshtein_similarity(a: str, b: str) -> float:
    """rapidfuzz's normalized Levenshtein similarity of two texts, in [0, 1]."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.normalized_similarity(a, b))


def _levenshtein(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
    fold = (
        (lambda text: text.strip())
        if params.get("case_sensitive", True)
        else (lambda text: text.strip().casefold())
    )
    value = params.get("value")
    if value is not None:
        fixed = fold(value)
        if not fixed:
            raise MetricError(f"metric {name!r}: {EMPTY_VALUE}")

        def to_value(row: ScoringRow) -> float:
            return levenshtein_similarity(fold(row.output), fixed)

        return Metric(
            name,
            f"Levenshtein similarity to {value!r} (0-1)",
            False,
            to_value,
            bounds=(0.0, 1.0),
        )

    def to_expected(row: ScoringRow) -> float:
        output = fold(row.output)
        return max(levenshtein_similarity(output, fold(answer)) for answer in row.expected)

    return Metric(
        name,
        "Levenshtein similarity to the best expected answer (0-1)",
        True,
        to_expected,
        bounds=(0.0, 1.0),
    )


register_kind(
    Kind(
        name="levenshtein",
        description="edit-distance similarity to the best expected answer (0-1)",
        params=(
            Param("value", (str,), "a text to compare with instead of the expected answers"),
            Param("case_sensitive", (bool,), "false to compare ignoring case (default true)"),
        ),
        factory=_levenshtein,
        main="value",
        uses_expected=True,
    )
)
