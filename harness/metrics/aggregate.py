"""Aggregates of one metric over many rows: mean, p50, p90 and the count of scored rows.

A metric that came from MLflow may ask for more (``aggregations=["variance", "median"]``):
:func:`extra_aggregates` computes MLflow's other named aggregations the way MLflow does
(``numpy``'s population variance, median, min and max over the scored rows).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "AGGREGATE_KEYS",
    "EXTRA_AGGREGATIONS",
    "aggregate",
    "aggregate_scores",
    "extra_aggregates",
    "percentile",
]

AGGREGATE_KEYS: tuple[str, ...] = ("mean", "p50", "p90", "count")
# MLflow's named aggregations besides the ones every metric gets (mean, p90).
EXTRA_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "min": min,
    "max": max,
    "median": statistics.median,
    "variance": statistics.pvariance,  # numpy.var's default: the population variance
}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, by linear interpolation.

    The same definition as ``numpy.percentile(values, q)`` with its default "linear" method:
    the value at rank ``q/100 * (n - 1)``, interpolated between the two nearest ranks.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, not {q}")
    rank = q / 100 * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    low_value, high_value = sorted_values[low], sorted_values[high]
    # numpy's form (lerp from both ends) keeps p of equal values exactly equal to them.
    if fraction < 0.5:
        return low_value + (high_value - low_value) * fraction
    return high_value - (high_value - low_value) * (1 - fraction)


def aggregate(values: Sequence[float | None]) -> dict[str, float]:
    """Summarize one metric's per-row scores: ``{"mean", "p50", "p90", "count"}``.

    None (a row the metric could not score) and NaN are left out; ``count`` is the number
    of scored rows. p50 and p90 use linear interpolation between ranks, as
    ``numpy.percentile`` does by default. With no scored rows the result is ``{"count": 0}``.
    """
    scored = sorted(float(value) for value in values if value is not None and not math.isnan(value))
    if not scored:
        return {"count": 0}
    return {
        "mean": math.fsum(scored) / len(scored),
        "p50": percentile(scored, 50),
        "p90": percentile(scored, 90),
        "count": len(scored),
    }


def aggregate_scores(scores: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """Aggregate several metrics at once, named ``"<metric>/<aggregate>"``.

    ``{"exact_match": [1.0, 0.0]}`` gives ``{"exact_match/mean": 0.5, ...,
    "exact_match/count": 2}``: the names the run logs to MLflow and prints.
    """
    named: dict[str, float] = {}
    for metric_name, values in scores.items():
        for key, value in aggregate(values).items():
            named[f"{metric_name}/{key}"] = value
    return named


def extra_aggregates(
    values: Sequence[float | None], names: Sequence[str | Callable[[list[float]], float]]
) -> dict[str, float]:
    """MLflow's other aggregations of the scored values: ``{"variance": ..., "max": ...}``.

    ``names`` holds names from ``EXTRA_AGGREGATIONS`` (``mean`` and ``p90`` are already in
    every aggregate and are skipped) or functions of the list of values, reported under
    their ``__name__`` as MLflow reports them. None and NaN are left out; with no scored
    values there is nothing to report.
    """
    scored = [float(v) for v in values if v is not None and not math.isnan(v)]
    found: dict[str, float] = {}
    if not scored:
        return found
    for entry in names:
        if callable(entry):
            found[getattr(entry, "__name__", "aggregate")] = float(entry(list(scored)))
        elif entry in EXTRA_AGGREGATIONS:
            found[entry] = float(EXTRA_AGGREGATIONS[entry](scored))
        elif entry not in ("mean", "p90"):
            known = ", ".join(["mean", "p90", *EXTRA_AGGREGATIONS])
            raise ValueError(f"unknown aggregation {entry!r}; use one of {known}")
    return found
