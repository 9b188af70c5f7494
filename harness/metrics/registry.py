"""What a metric is, and the registry of metrics by name that every family adds itself to.

A module of its own: the family modules (``match``, ``rouge``, ``readability``, ``basic``)
import it to register their metrics, and ``harness.metrics`` imports the families to
look names up, so neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import MetricError

__all__ = ["Metric", "ScoringRow", "register_metric", "registered"]


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
    None for a row with none, without calling ``fn``. ``direction`` says which way is
    better: +1 higher (correctness, overlap), -1 lower (latency), 0 neither (length,
    reading grade); ``compare``, ``check`` and sweeps read it.
    """

    name: str
    description: str  # one line, shown by `harness run --help` and the docs
    needs_expected: bool
    fn: Callable[[ScoringRow], float | None]
    direction: int = 1

    def score(self, row: ScoringRow) -> float | None:
        """Score one row; None means the row cannot be scored by this metric."""
        if self.needs_expected and not row.expected:
            return None
        return self.fn(row)


_registry: dict[str, Metric] = {}


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Make ``metric`` available under its name; returns it.

    Raises MetricError if another metric already has the name, unless ``replace``.
    """
    existing = _registry.get(metric.name)
    if existing is not None and existing is not metric and not replace:
        raise MetricError(f"a metric named '{metric.name}' is already registered")
    _registry[metric.name] = metric
    return metric


def registered() -> dict[str, Metric]:
    """The registry itself: name -> metric (without the built-ins until they are loaded)."""
    return _registry
