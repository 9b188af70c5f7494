"""A run's scores per row: the one computation behind every per-row number harness shows.

From each row's model error and every stored score (its metric, sample, value, label, error
and source), in one pass:

- each metric's value on each row: the mean of its samples that have a value (a judge
  asked several times, ``--judge-samples``, so every row weighs the same); NaN for a row
  with none;
- which rows failed: their model call, or any of their judge calls (a judge score with an
  error: an unusable verdict too). The rows a run counts as failed ("N failed"), the
  ``errors`` that ``compare`` compares and ``check --max-error-rate`` gates, each slice's
  ``errors`` and the report's failed rows;
- per judge, what its samples said: how many, how many gave no verdict, each label's
  count, and each row's usable sample values when there are two or more (what its
  self-agreement is measured on, ``harness.judges.variance.repeated_stats``);
- every failed judge sample's error, in order.

Plain Python and numpy: a run's own report reads its scores through here without pandas
(issue 14); ``harness.store.scores`` builds compare's frames from the result.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["JUDGE_SOURCE", "SCORE_FIELDS", "JudgeSamples", "PerRow", "frame_tuples", "per_row"]

JUDGE_SOURCE = "llm_judge"  # a score's source when an LLM judge gave it
# What ``per_row`` reads of each score, after its row's place.
SCORE_FIELDS = ("metric", "sample", "value", "label", "error", "source")


@dataclass
class JudgeSamples:
    """One judge's samples in a run."""

    answers: int = 0  # samples asked for, failed or not
    failed: int = 0  # samples with no verdict (a failed call, an answer with no label)
    labels: Counter[str] = field(default_factory=Counter)  # each verdict's count
    seen: dict[str, float] = field(default_factory=dict)  # each verdict with its first value
    repeated: list[list[float]] = field(default_factory=list)  # rows with 2+ usable samples


@dataclass
class PerRow:
    """A run's scores per row (rows by their place in the run's order)."""

    values: dict[str, np.ndarray]  # metric -> per-row value (NaN: none), in the order first seen
    failed: np.ndarray  # bool per row: its model call or a judge call failed
    judges: dict[str, JudgeSamples]  # in the order first seen
    judge_failures: list[tuple[int, str, str]]  # (place, judge, error) of each failed sample


def per_row(model_errors: Sequence[Any], scores: Iterable[Sequence[Any]]) -> PerRow:
    """``model_errors``: each row's model error (None when it answered), in the run's order;
    ``scores``: each score as its row's place and ``SCORE_FIELDS``, sorted by place, metric
    and sample (as the store gives them)."""
    n = len(model_errors)
    failed = np.fromiter((e is not None for e in model_errors), dtype=bool, count=n)
    values: dict[str, np.ndarray] = {}
    judges: dict[str, JudgeSamples] = {}
    failures: list[tuple[int, str, str]] = []
    current: tuple[int, str] | None = None
    usable: list[float] = []
    tally: JudgeSamples | None = None
    for place, metric, _sample, value, label, error, source in scores:
        if current != (place, metric):
            if current is not None:
                _close(values[current[1]], current[0], usable, tally)
            current, usable, tally = (place, metric), [], None
            if metric not in values:
                values[metric] = np.full(n, math.nan)
        if value is not None and value == value:  # NaN is no value, as None is
            usable.append(float(value))
        if source == JUDGE_SOURCE:
            tally = judges.get(metric)
            if tally is None:
                tally = judges[metric] = JudgeSamples()
            tally.answers += 1
            if label is None:
                tally.failed += 1
            else:
                tally.labels[str(label)] += 1
                if value is not None and value == value:
                    tally.seen.setdefault(str(label), float(value))
            if error is not None:
                failed[place] = True
                failures.append((place, metric, str(error)))
    if current is not None:
        _close(values[current[1]], current[0], usable, tally)
    return PerRow(values, failed, judges, failures)


def _close(column: np.ndarray, place: int, usable: list[float], tally: JudgeSamples | None) -> None:
    """One row's samples of one metric are all read: its value, and a judge's repeats."""
    if usable:
        column[place] = math.fsum(usable) / len(usable)
    if tally is not None and len(usable) >= 2:
        tally.repeated.append(usable)


def frame_tuples(frame: Any, fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """A DataFrame's rows as tuples of ``fields``, a missing value (NaN too) as None and a
    field the frame lacks None throughout: scores read into pandas, as ``per_row`` and
    ``harness.runner.table_rows`` take them."""
    columns = []
    for name in fields:
        if name in frame.columns:
            column = frame[name].astype(object)
            columns.append(column.where(column.notna(), None).tolist())
        else:
            columns.append([None] * len(frame))
    return list(zip(*columns, strict=True))
