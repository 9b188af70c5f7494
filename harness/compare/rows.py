"""The rows that flipped between two runs: what a reviewer reads after the numbers.

A row flips on a metric whose higher value is better (answer matching, ROUGE, every judge)
when its score moved by at least the metric's margin (any change, for 0/1 scores), and on
``errors`` when it failed (its model call or a judge call) in one run only. Rows that got
worse on anything come first (the "regressions", most metrics worse first, then the
largest drops relative to each metric's range); rows that only got better follow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.compare.result import FlippedRow, ScoreChange
from harness.compare.sources import ERRORS, RunScores
from harness.metrics import metric_direction

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Flips", "flipped_rows"]


@dataclass
class Flips:
    rows: list[FlippedRow]  # the first ``limit``
    total: int


def flipped_rows(
    base: RunScores,
    candidate: RunScores,
    common: pd.Index,
    margins: Mapping[str, float],
    *,
    limit: int,
) -> tuple[Flips, Flips]:
    """(regressions, improvements) among the ``common`` example ids."""
    import numpy as np

    known = {**base.directions, **candidate.directions}
    metrics = [m for m in margins if m == ERRORS or metric_direction(m, known) > 0]
    b = base.values.loc[common, metrics]
    c = candidate.values.loc[common, metrics]
    delta = (c - b).to_numpy(copy=True)  # written to below: not a view of the frame
    if ERRORS in metrics:
        delta[:, metrics.index(ERRORS)] *= -1  # a new failure is a drop
    both = np.abs(np.vstack([b.to_numpy(), c.to_numpy()]))
    # A judge that scored no row (failed everywhere) has no span: nanmax would warn.
    span = np.max(np.where(np.isnan(both), -np.inf, both), axis=0, initial=-np.inf)
    scale = np.where((span > 0) & np.isfinite(span), span, 1.0)
    threshold = np.array([max(margins[m], 1e-12) for m in metrics])
    with np.errstate(invalid="ignore"):
        worse = delta <= -threshold
        better = delta >= threshold
    severity = np.where(worse, -delta / scale, 0.0).sum(axis=1)
    n_worse, n_better = worse.sum(axis=1), better.sum(axis=1)
    regressed = [i for i in np.lexsort((-severity, -n_worse)) if n_worse[i]]
    improved = [i for i in np.lexsort((-better.sum(axis=1),)) if n_better[i] and not n_worse[i]]

    def build(i: int) -> FlippedRow:
        example_id = common[i]
        return _flipped(
            example_id,
            base,
            candidate,
            [m for j, m in enumerate(metrics) if worse[i, j]],
            [m for j, m in enumerate(metrics) if better[i, j]],
        )

    return (
        Flips([build(i) for i in regressed[:limit]], len(regressed)),
        Flips([build(i) for i in improved[:limit]], len(improved)),
    )


def _flipped(
    example_id: str,
    base: RunScores,
    candidate: RunScores,
    worse: list[str],
    better: list[str],
) -> FlippedRow:
    base_row, candidate_row = base.rows.loc[example_id], candidate.rows.loc[example_id]

    def change(metric: str) -> ScoreChange:
        return ScoreChange(
            metric,
            _number(base.values.at[example_id, metric]),
            _number(candidate.values.at[example_id, metric]),
        )

    judges = sorted((base.judges | candidate.judges) & {*worse, *better}) or sorted(
        base.judges | candidate.judges
    )
    return FlippedRow(
        example_id=str(example_id),
        input=_text(base_row["input"]),
        expected=[str(e) for e in (base_row["expected"] if _present(base_row["expected"]) else [])],
        base_output=_text(base_row["output"]),
        candidate_output=_text(candidate_row["output"]),
        base_error=_text(base_row["error"]),
        candidate_error=_text(candidate_row["error"]),
        worse=[change(m) for m in worse],
        better=[change(m) for m in better],
        rationales={
            judge: (_rationale(base, example_id, judge), _rationale(candidate, example_id, judge))
            for judge in judges
        },
        judge_errors={
            judge: sides
            for judge in judges
            if any(
                sides := (
                    _judge_error(base, example_id, judge),
                    _judge_error(candidate, example_id, judge),
                )
            )  # fmt: skip
        },
    )


def _rationale(scores: RunScores, example_id: str, judge: str) -> str | None:
    return _cell(scores.rationales, example_id, judge)


def _judge_error(scores: RunScores, example_id: str, judge: str) -> str | None:
    return None if scores.judge_errors is None else _cell(scores.judge_errors, example_id, judge)


def _cell(table: pd.DataFrame, example_id: str, column: str) -> str | None:
    if column not in table.columns or example_id not in table.index:
        return None
    return _text(table.at[example_id, column])


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str | None:
    return str(value) if _present(value) else None
