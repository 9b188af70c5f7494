"""aggregate: mean, p50, p90 (numpy's linear interpolation) and the count of scored rows."""

from __future__ import annotations

import math
import random

import numpy
import pytest

from harness.metrics import AGGREGATE_KEYS, aggregate, aggregate_scores
from harness.metrics.aggregate import percentile


def test_known_values() -> None:
    result = aggregate([1.0, 2.0, 3.0, 4.0])
    assert result == {"mean": 2.5, "p50": 2.5, "p90": pytest.approx(3.7), "count": 4}
    assert list(result) == list(AGGREGATE_KEYS)


def test_none_is_skipped_not_zero() -> None:
    assert aggregate([None, 1.0, None, 0.0]) == {"mean": 0.5, "p50": 0.5, "p90": 0.9, "count": 2}


def test_nan_is_skipped() -> None:
    assert aggregate([math.nan, 2.0]) == {"mean": 2.0, "p50": 2.0, "p90": 2.0, "count": 1}


@pytest.mark.parametrize("values", [[], [None], [None, None, math.nan]])
def test_nothing_scored_is_only_a_count(values: list[float | None]) -> None:
    assert aggregate(values) == {"count": 0}


def test_single_value() -> None:
    assert aggregate([0.7]) == {"mean": 0.7, "p50": 0.7, "p90": 0.7, "count": 1}


def test_count_is_an_int_and_order_does_not_matter() -> None:
    forward = aggregate([3.0, 1.0, 2.0])
    assert forward == aggregate([1.0, 2.0, 3.0])
    assert isinstance(forward["count"], int)


def test_agrees_with_numpy_percentile() -> None:
    generator = random.Random(11)
    for size in [1, 2, 3, 5, 10, 11, 99, 1000]:
        for _ in range(20):
            values = [generator.uniform(-5, 50) for _ in range(size)]
            if generator.random() < 0.3:
                values = [round(v) for v in values]  # ties
            result = aggregate(values)
            assert result["count"] == size
            assert result["mean"] == pytest.approx(numpy.mean(values), rel=1e-12)
            assert result["p50"] == numpy.percentile(values, 50)
            assert result["p90"] == numpy.percentile(values, 90)


def test_percentile_bounds_and_errors() -> None:
    assert percentile([1.0, 5.0], 0) == 1.0
    assert percentile([1.0, 5.0], 100) == 5.0
    assert percentile([1.0, 5.0], 25) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_mean_is_exactly_rounded() -> None:
    # fsum: a naive running sum of these gives 0.0.
    assert aggregate([1e16, 1.0, -1e16])["mean"] == pytest.approx(1 / 3)


def test_aggregate_scores_names_metric_slash_stat() -> None:
    named = aggregate_scores({"exact_match": [1.0, 0.0, None], "latency": [None]})
    assert named == {
        "exact_match/mean": 0.5,
        "exact_match/p50": 0.5,
        "exact_match/p90": 0.9,
        "exact_match/count": 2,
        "latency/count": 0,
    }


def test_extra_aggregates_are_numpys() -> None:
    import numpy as np

    from harness.metrics import extra_aggregates

    values = [4.0, None, 1.0, 5.0, float("nan"), 2.0]
    scored = [4.0, 1.0, 5.0, 2.0]
    found = extra_aggregates(values, ["mean", "variance", "median", "min", "max", "p90", np.std])
    assert found == {
        "variance": pytest.approx(float(np.var(scored))),
        "median": float(np.median(scored)),
        "min": 1.0,
        "max": 5.0,
        "std": pytest.approx(float(np.std(scored))),
    }
    assert extra_aggregates([None], ["variance"]) == {}
    with pytest.raises(ValueError, match="unknown aggregation 'mode'"):
        extra_aggregates([1.0], ["mode"])
