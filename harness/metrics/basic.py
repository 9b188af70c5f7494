"""Metrics that need no reference: ``word_count`` of the output and the call's ``latency``.

Neither is ever negative, and neither has a largest value: both declare ``bounds`` of 0 to
infinity, so a mean's t interval on a few rows is cut at 0 (``latency 0.1 [0, 0.5]``, not
``[-0.3, 0.5]``) and at nothing above.
"""

from __future__ import annotations

import math

from harness.metrics.registry import Metric, ScoringRow, register_metric
from harness.metrics.text import words

__all__: list[str] = []


def _word_count(row: ScoringRow) -> float:
    return float(len(words(row.output)))


def _latency(row: ScoringRow) -> float | None:
    return row.latency_s


register_metric(
    Metric(
        name="word_count",
        description="number of words in the output (punctuation is not a word)",
        needs_expected=False,
        fn=_word_count,
        direction=0,  # longer is not better, nor worse: it explains other scores
        bounds=(0.0, math.inf),
    )
)
register_metric(
    Metric(
        name="latency",
        description="seconds the model call took, as recorded on the row",
        needs_expected=False,
        fn=_latency,
        direction=-1,
        bounds=(0.0, math.inf),
    )
)
