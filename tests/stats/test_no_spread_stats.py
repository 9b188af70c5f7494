"""Paired differences with no spread: the t methods' SE is 0, so the exact sign test gives
the p-values (checked against ``scipy.stats.binomtest``) and the interval: the one change
itself once the rows let the test reject any other shift, none on fewer; no MDE. One run's
mean with no spread follows the same rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.stats import estimate_mean, paired_difference


def sign_test(above: int, below: int, alternative: str = "two-sided") -> float:
    """scipy's exact binomial test of the non-zero signs (p 1 when there are none)."""
    if above + below == 0:
        return 1.0
    return float(scipy_stats.binomtest(above, above + below, 0.5, alternative=alternative).pvalue)


def assert_no_interval(result) -> None:  # type: ignore[no-untyped-def]
    assert result.test == "exact sign" and result.interval == "none"
    assert math.isnan(result.low) and math.isnan(result.high) and math.isnan(result.mde)
    assert result.interval_note is not None


def assert_sign_interval(result, n: int) -> None:  # type: ignore[no-untyped-def]
    """[d, d]: the shifts the two-sided sign test does not reject. Any s != d leaves n
    changes on one side of it, rejected when binomtest(n, n) says so; s = d leaves none."""
    assert scipy_stats.binomtest(n, n, 0.5).pvalue <= 0.05
    assert result.test == "exact sign" and result.interval == "exact sign"
    assert result.low == result.high == result.diff and math.isnan(result.mde)
    assert result.interval_note is None


def test_three_rows_that_all_dropped_by_one_are_not_a_certain_drop() -> None:
    result = paired_difference([4.0, 4, 4], [3.0, 3, 3])  # a 1-5 scale: every row 4 -> 3
    assert result.diff == -1 and result.se == 0
    assert_no_interval(result)
    assert result.p_value == sign_test(0, 3) == 0.25  # the t test said p = 0
    # One-sided, as check's drop gates ask: 3 rows below -0.5 give p = 1/8, not 0.
    assert result.p_less(-0.5) == sign_test(3, 0, "greater") == 0.125
    assert result.p_greater(-0.5) == sign_test(0, 3, "greater") == 1.0


def test_twelve_rows_that_all_dropped_by_one_are_a_drop_by_the_sign_test() -> None:
    result = paired_difference(np.ones(12), np.zeros(12))  # a scale that scored 1 -> 0
    assert_sign_interval(result, 12)  # [-1, -1]
    assert result.p_value == sign_test(0, 12) == 2 * 0.5**12
    assert result.p_less(-0.02) == sign_test(12, 0, "greater") == 0.5**12
    assert result.p_greater(-0.02) == 1.0
    assert result.p_greater(-1.5) == sign_test(12, 0, "greater")  # all above -1.5


def test_identical_runs_on_three_rows_claim_no_certainty() -> None:
    assert scipy_stats.binomtest(3, 3, 0.5).pvalue > 0.05  # too few for a sign interval
    scores = [0.2, 0.5, 0.9]
    result = paired_difference(scores, scores)
    assert result.diff == 0
    assert_no_interval(result)  # was [0, 0] with an MDE of 0: "any change would show"
    assert result.p_value == sign_test(0, 0) == 1.0
    # Three rows above an allowed drop of 0.02: p = 1/8, not the 0 that passed a gate.
    assert result.p_greater(-0.02) == sign_test(3, 0, "greater") == 0.125
    assert result.p_less(-0.02) == 1.0


def test_differences_equal_but_for_float_rounding_have_no_spread() -> None:
    base = np.array([0.6, 0.3, 0.8])
    candidate = np.array([0.7, 0.4, 0.9])  # + 0.1 each, but not to the last bit
    assert np.std(candidate - base) > 0
    result = paired_difference(base, candidate)
    assert_no_interval(result)
    assert result.p_value == sign_test(3, 0) == 0.25


def test_clusters_whose_mean_changes_are_equal_have_no_spread() -> None:
    # 4 clusters of 3 rows; the rows differ within a cluster, every cluster's mean is -0.5.
    groups = np.repeat(np.arange(4), 3)
    base = np.tile([1.0, 1.0, 1.0], 4)
    candidate = np.tile([0.0, 1.0, 0.5], 4)
    result = paired_difference(base, candidate, clusters=groups)
    assert result.clusters == 4 and result.se == 0
    assert_no_interval(result)
    # The clusters are the independent units: a sign test on 4 cluster means.
    assert result.p_value == sign_test(0, 4) == 0.125
    assert result.p_less(-0.02) == sign_test(4, 0, "greater") == 0.0625


def test_clusters_with_identical_rows_are_unchanged_by_the_sign_test() -> None:
    groups = np.repeat(np.arange(6), 2)
    scores = np.linspace(0, 1, 12)
    result = paired_difference(scores, scores, clusters=groups)
    assert_sign_interval(result, 6)  # 6 clusters: [0, 0]
    assert result.p_value == 1.0
    assert result.p_greater(-0.02) == sign_test(6, 0, "greater") == 0.5**6


def test_any_spread_keeps_the_paired_t_numbers() -> None:
    base = np.array([4.0, 4, 4, 4])
    candidate = np.array([3.0, 3, 3, 2])
    result = paired_difference(base, candidate)
    reference = scipy_stats.ttest_rel(candidate, base)
    assert result.test == "paired t"
    assert result.p_value == reference.pvalue
    ci = reference.confidence_interval(0.95)
    assert math.isclose(result.low, ci.low) and math.isclose(result.high, ci.high)


# One run's mean, by the same rule: scores with no spread have no t interval (scipy's own
# t.interval with a standard error of 0 gives none), so the interval is the exact sign
# test's, [m, m], once it can reject every other center, and none on fewer rows.


def scipy_t_interval(values: np.ndarray) -> tuple[float, float]:
    with np.errstate(invalid="ignore"):
        low, high = scipy_stats.t.interval(
            0.95, values.size - 1, loc=values.mean(), scale=scipy_stats.sem(values)
        )
    return float(low), float(high)


def test_a_mean_with_no_spread_on_five_rows_has_no_interval() -> None:
    values = np.full(5, 1 / 14)  # a scale that scored 0.0714 on every row
    estimate = estimate_mean(values)
    assert all(math.isnan(v) for v in scipy_t_interval(values))
    assert estimate.mean == pytest.approx(1 / 14) and estimate.n == 5
    assert estimate.method == "none"  # was "t", [0.0714, 0.0714]
    assert math.isnan(estimate.low) and math.isnan(estimate.high)
    assert estimate.interval_note == (
        "every row scored 0.07143: with no spread over 5 rows there is no interval"
    )
    ones = estimate_mean(np.ones(3))  # a scale (declared nothing) that scored 1 everywhere
    assert ones.method == "none" and math.isnan(ones.low)  # was "1 [1, 1]"


def test_a_mean_with_no_spread_has_no_interval_on_any_number_of_rows() -> None:
    values = np.full(7, 1 / 14)  # its SE is float dust (5.7e-18), not 0
    assert estimate_mean(values).se < 1e-16
    for n in (6, 7, 60):
        estimate = estimate_mean(np.full(n, 1 / 14))
        low, high = scipy_t_interval(np.full(n, 1 / 14))  # none, or a width of float dust
        assert math.isnan(low) or high - low < 1e-12
        assert estimate.method == "none" and f"over {n} rows" in (estimate.interval_note or "")
        assert math.isnan(estimate.low) and math.isnan(estimate.high)


def test_a_mean_whose_clusters_have_no_spread_counts_clusters() -> None:
    # Every cluster's mean is 2, though the rows differ: the clustered SE is 0.
    values = np.array([1.0, 3.0] * 5)
    clusters = np.repeat(np.arange(5), 2)
    estimate = estimate_mean(values, clusters=clusters)
    assert estimate.method == "none" and math.isnan(estimate.low)
    assert estimate.interval_note == (
        "every cluster's mean was 2: with no spread over 5 clusters there is no interval"
    )


def test_a_mean_with_spread_or_declared_0_1_is_unchanged() -> None:
    values = np.array([0.2, 0.5, 0.9, 0.4])
    estimate = estimate_mean(values)
    assert estimate.method == "t"
    assert (estimate.low, estimate.high) == pytest.approx(scipy_t_interval(values), rel=1e-9)
    rate = estimate_mean(np.ones(3), binary=True)  # Wilson's interval has a width: [0.44, 1]
    assert rate.method == "wilson" and rate.low < 1 and rate.interval_note is None


def test_scores_that_are_all_the_same_have_no_correlation_despite_float_rounding() -> None:
    # 60 rows that all scored 0.0714 in both runs: numpy's std of them is 1.4e-17, not 0,
    # and corrcoef then said r = 1 (compare's 'r' column showed 1 on 60 rows, '–' on 12).
    scores = np.full(60, 0.0714)
    assert np.std(scores) > 0
    assert paired_difference(scores, scores).correlation is None
    assert paired_difference(scores, np.full(60, 0.5)).correlation is None
