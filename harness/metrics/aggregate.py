"""Aggregates of one metric over many rows: mean, p50, p90 and the count of scored rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["AGGREGATE_KEYS", "aggregate", "aggregate_scores", "percentile"]

AGGREGATE_KEYS: tuple[str, ...] = ("mean", "p50", "p90", "count")


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
