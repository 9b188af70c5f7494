"""What a metric is, and the registry of metrics by name that every family adds itself to.

A module of its own: the family modules (``match``, ``rouge``, ``readability``, ``basic``,
and the kinds' ``checks``, ``structure``, ``similarity``) import it to register their
metrics, and ``harness.metrics`` imports the families to look names up, so neither imports
the other back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import MetricError
from harness.secrets import scrub_secrets
from harness.store.rows import ScoreRow

__all__ = [
    "BatchMetric",
    "BatchResult",
    "Columns",
    "Metric",
    "Score",
    "ScoringRow",
    "register_metric",
    "registered",
]


@dataclass(frozen=True)
class ScoringRow:
    """One row to score: the model's input and output, what was expected, and the call."""

    input: str
    output: str
    expected: tuple[str, ...]  # zero or more acceptable answers
    context: str | None
    latency_s: float | None  # the model call's latency
    id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """The dict a ``python:`` metric receives: the row's columns plus its ``output``."""
        row: dict[str, Any] = dict(self.extra)
        row.update(
            id=self.id,
            input=self.input,
            output=self.output,
            expected=self.expected[0] if len(self.expected) == 1 else list(self.expected),
            expected_all=list(self.expected),
            context=self.context,
            latency_s=self.latency_s,
        )
        return row


@dataclass(frozen=True)
class Score:
    """A metric's answer for one row when a number alone does not say it all.

    ``name`` is only for a metric that answers several scores per row (an MLflow scorer
    returning a list of ``Feedback``): each is stored under its own name.
    """

    value: float | None
    rationale: str | None = None
    label: str | None = None
    error: str | None = None
    name: str | None = None


RowResult = float | Score | Sequence[Score] | None


@dataclass(frozen=True)
class Metric:
    """A named heuristic score of one row.

    ``needs_expected`` metrics compare the output to the expected answers; they return
    None for a row with none, without calling ``fn`` (``needs_context`` likewise).
    ``direction`` says which way is better: +1 higher (correctness, overlap), -1 lower
    (latency), 0 neither (length, reading grade); sweeps, ``compare`` and ``check`` read it.
    ``aggregations`` names aggregates to report besides mean, p50, p90 and count (any of
    ``EXTRA_AGGREGATIONS``, or a function of the scored values, named after it).
    ``binary``: every score is 0 or 1 (a pass rate: exact match, a check); its means get
    Wilson's interval and its comparisons McNemar's test, whatever values a run happened to
    score (``harness.stats``). A metric that does not declare it is read as a scale.
    ``bounds``: every score lies in ``(low, high)`` (token F1, ROUGE: 0 to 1); its t
    intervals are cut there, so a mean on few rows is never given impossible values. A
    side may be infinite: ``(0.0, math.inf)`` for a score that is never negative but has no
    largest value (latency, word count), whose intervals are cut at 0 only.
    """

    name: str
    description: str  # one line, shown by `harness run --help` and the docs
    needs_expected: bool
    fn: Callable[[ScoringRow], RowResult]
    direction: int = 1  # +1 higher is better, -1 lower, 0 neither
    needs_context: bool = False
    origin: str = "builtin"  # builtin | kind | python | mlflow
    aggregations: tuple[str | Callable[[list[float]], float], ...] = ()
    binary: bool = False
    bounds: tuple[float, float] | None = None

    @property
    def range(self) -> tuple[float, float] | None:
        """The range every score lies in: ``bounds``, or 0 to 1 for a 0/1 metric."""
        return (0.0, 1.0) if self.binary else self.bounds

    def score(self, row: ScoringRow) -> float | None:
        """Score one row; None means the row cannot be scored by this metric."""
        if (self.needs_expected and not row.expected) or (self.needs_context and not row.context):
            return None
        result = self.fn(row)
        if isinstance(result, Score):
            return None if result.value is None else as_number(self.name, result.value)
        if result is None:
            return result
        if isinstance(result, (list, tuple)):
            raise MetricError(f"metric {self.name!r} answers several scores; use evaluate()")
        return as_number(self.name, result)

    def evaluate(self, row: ScoringRow, example_id: str) -> list[ScoreRow]:
        """The rows to store for one example; a metric that raises gives a row with its error.

        A user's metric function that fails is that row's problem, like a failed model call:
        the value is None, the error says what was raised, and the run goes on.
        """
        if (self.needs_expected and not row.expected) or (self.needs_context and not row.context):
            return [ScoreRow(example_id, self.name, None)]
        try:
            result = self.fn(row)
            scores = result if isinstance(result, (list, tuple)) else [result]
            rows = [self._row(example_id, score) for score in scores]
        # SystemExit too: sys.exit() in the user's metric (or a library it calls) ended
        # harness with that code (3 reads as --check's "cannot decide") and not a word.
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's code: on the row
            said = scrub_secrets(str(e))  # the user's message may hold a key of this environment
            return [ScoreRow(example_id, self.name, None, error=f"{type(e).__name__}: {said}")]
        return rows

    def _row(self, example_id: str, score: Any) -> ScoreRow:
        if isinstance(score, Score):
            value = None if score.value is None else as_number(self.name, score.value)
            return ScoreRow(
                example_id,
                score.name or self.name,
                value,
                label=score.label,
                rationale=score.rationale,
                error=score.error,
            )
        return ScoreRow(
            example_id, self.name, None if score is None else as_number(self.name, score)
        )


def as_number(name: str, value: Any) -> float:
    """A metric's value as stored: a number, a bool as 1.0/0.0; MetricError otherwise.

    NaN stays (it means "no score", as None); an infinity is an error: no mean, interval or
    chart can hold it, and one row's inf would break the whole run's report and comparison.
    """
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) or hasattr(value, "__float__"):
        number = float(value)
        if math.isinf(number):
            raise MetricError(not_finite(name, number))
        return number
    raise MetricError(
        f"metric {name!r} returned {type(value).__name__}; a metric returns a number, "
        "a bool or None"
    )


def not_finite(name: str, value: float) -> str:
    """The error stored on a row whose metric value was infinite."""
    return f"metric {name!r} returned {value}, not a finite number"


@dataclass(frozen=True)
class Columns:
    """Every row of a run, column by column: what a :class:`BatchMetric` receives."""

    ids: list[str]
    inputs: list[str]
    outputs: list[str | None]  # None for a row whose model call failed
    expected: list[tuple[str, ...]]
    contexts: list[str | None]
    extra: dict[str, list[Any]]  # the dataset's other columns
    scores: dict[str, list[float | None]]  # per-row values of the metrics computed so far
    aggregates: dict[str, dict[str, float]]  # and their aggregates


@dataclass(frozen=True)
class BatchResult:
    """What a batch metric found: per-row values (or none) and aggregates of its own."""

    scores: list[float | None] | None = None
    rationales: list[str | None] | None = None
    labels: list[str | None] | None = None
    aggregates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchMetric:
    """A metric computed once over all rows of a run (MLflow's ``eval_fn`` contract).

    ``fn`` returns a :class:`BatchResult` (or None: nothing to report, as MLflow skips a
    metric whose function returns nothing). ``columns`` are the dataset columns it reads
    besides input, output, expected and context, checked before the run; ``wanted`` are
    ``(parameter, name, optional)`` arguments that can only be other metrics' values.
    """

    name: str
    description: str
    needs_expected: bool
    fn: Callable[[Columns], BatchResult | None]
    direction: int = 1
    origin: str = "python"
    columns: tuple[str, ...] = ()
    aggregations: tuple[str | Callable[[list[float]], float], ...] = ()
    wanted: tuple[tuple[str, str, bool], ...] = ()
    bounds: tuple[float, float] | None = None  # as ``Metric.bounds``


_registry: dict[str, Metric | BatchMetric] = {}


def register_metric(metric: Metric | BatchMetric, *, replace: bool = False) -> Metric | BatchMetric:
    """Make ``metric`` available under its name; returns it.

    Raises MetricError if another metric already has the name, unless ``replace``.
    """
    existing = _registry.get(metric.name)
    if existing is not None and existing is not metric and not replace:
        raise MetricError(f"a metric named '{metric.name}' is already registered")
    _registry[metric.name] = metric
    return metric


def registered() -> dict[str, Metric | BatchMetric]:
    """The registry itself: name -> metric (without the built-ins until they are loaded)."""
    return _registry
