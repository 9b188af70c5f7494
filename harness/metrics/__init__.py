"""Heuristic metrics: offline scores of one model output, registered by name.

A metric is a :class:`Metric`: a name, a one-line description and a function from a
:class:`ScoringRow` to a float, or None when the row cannot be scored (no expected answer,
no words, no latency). None is "not scored", never zero: :func:`aggregate` leaves it out.

Built-in families, one module each, register themselves when first looked up:

- ``match``: ``exact_match``, ``token_f1`` (SQuAD normalization, best over expected answers)
- ``rouge``: ``rouge1``, ``rouge2``, ``rougeL`` (F-measure, as the ``rouge-score`` package)
- ``readability``: ``ari_grade_level``, ``flesch_kincaid_grade_level``
- ``basic``: ``word_count``, ``latency``

Use :func:`get_metric` to look one up, :func:`metric_names` to list them and
:func:`register_metric` to add your own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import MetricError
from harness.metrics.aggregate import AGGREGATE_KEYS, aggregate, aggregate_scores

__all__ = [
    "AGGREGATE_KEYS",
    "DEFAULT_METRICS",
    "Metric",
    "ScoringRow",
    "aggregate",
    "aggregate_scores",
    "get_metric",
    "metric_names",
    "register_metric",
]


@dataclass(frozen=True)
class ScoringRow:
    """One row to score: the model's input and output, what was expected, and the call."""

    input: str
    output: str
    expected: tuple[str, ...]  # zero or more acceptable answers
    context: str | None
    latency_s: float | None  # the model call's latency


@dataclass(frozen=True)
class Metric:
    """A named heuristic score of one row.

    ``needs_expected`` metrics compare the output to the expected answers; they return
    None for a row with none, without calling ``fn``.
    """

    name: str
    description: str  # one line, shown by `harness run --help` and the docs
    needs_expected: bool
    fn: Callable[[ScoringRow], float | None]

    def score(self, row: ScoringRow) -> float | None:
        """Score one row; None means the row cannot be scored by this metric."""
        if self.needs_expected and not row.expected:
            return None
        return self.fn(row)


# A default set for question answering: answer correctness at three strictnesses, plus
# length and speed, which explain most surprises in the other three.
DEFAULT_METRICS: tuple[str, ...] = ("exact_match", "token_f1", "rougeL", "word_count", "latency")

_BUILTIN_MODULES = ("match", "rouge", "readability", "basic")
_registry: dict[str, Metric] = {}
_builtins_loaded = False


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Make ``metric`` available under its name; returns it.

    Raises MetricError if another metric already has the name, unless ``replace``.
    """
    existing = _registry.get(metric.name)
    if existing is not None and existing is not metric and not replace:
        raise MetricError(f"a metric named '{metric.name}' is already registered")
    _registry[metric.name] = metric
    return metric


def _load_builtins() -> None:
    # Imported on first use rather than at the top: the family modules import this package
    # for Metric and register_metric, so importing them here at load time would be a cycle.
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def get_metric(name: str) -> Metric:
    """The metric registered as ``name``.

    Raises MetricError("unknown metric 'x'; known: a, b, ...") for a name nobody registered.
    """
    _load_builtins()
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(metric_names())
        raise MetricError(f"unknown metric '{name}'; known: {known}") from None


def metric_names() -> list[str]:
    """Names of every registered metric, sorted."""
    _load_builtins()
    return sorted(_registry)
