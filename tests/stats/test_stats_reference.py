"""The statistics against scipy and statsmodels, computed here on the same per-row data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from harness.stats import estimate_mean, holm, paired_difference, wilson_interval


def scale_scores(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Judge-like 1-5 scores for two correlated runs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 6, n).astype(float)
    candidate = np.clip(base + rng.choice([-1, 0, 0, 0, 1, 1], n), 1, 5)
    return base, candidate


def binary_scores(seed: int, n: int, flip: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < 0.6).astype(float)
    candidate = np.where(rng.random(n) < flip, 1 - base, base)
    return base, candidate


@pytest.mark.parametrize("seed,n", [(1, 12), (2, 80), (3, 1000)])
def test_paired_t_interval_and_p_value_match_scipy(seed: int, n: int) -> None:
    base, candidate = scale_scores(seed, n)
    result = paired_difference(base, candidate)
    reference = scipy_stats.ttest_rel(candidate, base)
    ci = reference.confidence_interval(0.95)
    assert result.test == "paired t" and result.interval == "t"
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (result.low, result.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    # Miller eq. 7: the SE of the mean of the per-row differences.
    assert result.se == pytest.approx(scipy_stats.sem(candidate - base), rel=1e-12)
    assert result.correlation == pytest.approx(scipy_stats.pearsonr(base, candidate)[0])


@pytest.mark.parametrize("seed,n,flip", [(4, 25, 0.2), (5, 300, 0.1), (6, 2000, 0.02)])
def test_exact_mcnemar_matches_statsmodels(seed: int, n: int, flip: float) -> None:
    base, candidate = binary_scores(seed, n, flip)
    result = paired_difference(base, candidate, binary=True)
    table = [
        [np.sum((base == 1) & (candidate == 1)), np.sum((base == 1) & (candidate == 0))],
        [np.sum((base == 0) & (candidate == 1)), np.sum((base == 0) & (candidate == 0))],
    ]
    assert result.test == "exact McNemar"
    assert result.discordant == (table[0][1], table[1][0])
    assert result.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)


def test_adjusted_wald_is_the_wald_interval_with_one_discordant_pair_of_each_kind_added() -> None:
    base, candidate = binary_scores(7, 60, 0.2)
    result = paired_difference(base, candidate, binary=True)
    # Bonett & Price (2012): add a (1, 0) and a (0, 1) row, then the Wald interval, whose
    # variance is the maximum-likelihood (ddof=0) variance of the differences.
    augmented = np.concatenate([candidate - base, [1.0, -1.0]])
    stats = DescrStatsW(augmented, ddof=0)
    half = scipy_stats.norm.ppf(0.975) * stats.std / math.sqrt(augmented.size)
    assert result.interval == "adjusted wald"
    assert (result.low, result.high) == pytest.approx((stats.mean - half, stats.mean + half))


def test_adjusted_wald_agrees_with_the_exact_test_when_few_rows_changed() -> None:
    # 5 of 1,000 rows improve, none get worse: exact McNemar p = 2 / 2**5 = 0.0625.
    base = np.zeros(1000)
    candidate = base.copy()
    candidate[:5] = 1
    result = paired_difference(base, candidate, binary=True)
    assert result.p_value == pytest.approx(0.0625)
    naive_low = result.diff - 1.96 * result.se
    assert naive_low > 0  # plain d ± z·SE would call this significant...
    assert result.low < 0 < result.high  # ...the adjusted interval does not


def changed_rows(n: int, lost: int, gained: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows of 0/1 scores: ``lost`` went 1 -> 0, ``gained`` 0 -> 1, the rest stayed 1."""
    base = np.array([1.0] * lost + [0.0] * gained + [1.0] * (n - lost - gained))
    candidate = np.array([0.0] * lost + [1.0] * gained + [1.0] * (n - lost - gained))
    return base, candidate


def wald_p(base: np.ndarray, candidate: np.ndarray, threshold: float, upper: bool) -> float:
    """The adjusted Wald interval's one-sided p (statsmodels, the augmented differences)."""
    augmented = DescrStatsW(np.concatenate([candidate - base, [1.0, -1.0]]), ddof=0)
    z = (augmented.mean - threshold) / (augmented.std / math.sqrt(augmented.nobs))
    return float(scipy_stats.norm.sf(z) if upper else scipy_stats.norm.cdf(z))


@pytest.mark.parametrize(
    "n,lost,gained", [(5, 5, 0), (5, 0, 5), (8, 8, 0), (10, 7, 1), (40, 9, 2), (1000, 22, 10)]
)
@pytest.mark.parametrize("threshold", [-0.1, 0.0, 0.1])
def test_0_1_one_sided_p_values_are_at_least_exact_mcnemars_beyond_0(
    n: int, lost: int, gained: int, threshold: float
) -> None:
    """A change below t <= 0 is a change below 0, which exact McNemar must find too: the
    gate's one-sided p is the larger of the adjusted Wald one and binomtest's on the rows
    that changed (5 rows that all dropped: 0.031, not Wald's 0.010 at -0.1); on the near side
    of 0 (a margin a change need only clear) the Wald one alone."""
    base, candidate = changed_rows(n, lost, gained)
    result = paired_difference(base, candidate, binary=True)
    drop = scipy_stats.binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue
    rise = scipy_stats.binomtest(gained, lost + gained, 0.5, alternative="greater").pvalue
    below, above = (
        wald_p(base, candidate, threshold, False),
        wald_p(base, candidate, threshold, True),
    )
    expected_less = max(below, drop) if threshold <= 0 else below
    expected_greater = max(above, rise) if threshold >= 0 else above
    assert result.p_less(threshold) == pytest.approx(expected_less, rel=1e-9, abs=1e-15)
    assert result.p_greater(threshold) == pytest.approx(expected_greater, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n", [*range(2, 26), 60, 200])
def test_0_1_interval_excludes_0_exactly_when_exact_mcnemar_rejects(n: int) -> None:
    """5 rows that all dropped gave [-1, -0.196] while exact McNemar's p is 0.0625: where
    that test (statsmodels) does not reject, the adjusted Wald interval is widened to 0 and
    says so; elsewhere it is the adjusted Wald interval itself."""
    z = scipy_stats.norm.ppf(0.975)
    for lost in range(min(n, 30) + 1):
        for gained in range(min(n - lost, 30) + 1):
            base, candidate = changed_rows(n, lost, gained)
            result = paired_difference(base, candidate, binary=True)
            table = [[n - lost - gained, lost], [gained, 0]]
            p = mcnemar(table, exact=True).pvalue
            assert result.p_value == pytest.approx(p, rel=1e-9)
            augmented = DescrStatsW(np.concatenate([candidate - base, [1.0, -1.0]]), ddof=0)
            half = z * augmented.std / math.sqrt(augmented.nobs)
            low, high = max(augmented.mean - half, -1.0), min(augmented.mean + half, 1.0)
            if p >= 0.05 and (low > 0 or high < 0):
                assert result.interval == "adjusted wald to 0", (lost, gained)
                assert "widened to 0" in (result.interval_note or "")
                low, high = min(low, 0.0), max(high, 0.0)
            else:
                assert result.interval == "adjusted wald" and result.interval_note is None
            assert (result.low, result.high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)
            assert (result.low > 0 or result.high < 0) == (p < 0.05), (lost, gained)


def test_wilson_interval_matches_statsmodels() -> None:
    for successes, n in [(0, 10), (3, 10), (10, 10), (412, 1000)]:
        expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
        assert wilson_interval(successes, n) == pytest.approx(expected, rel=1e-12)
    base, _ = binary_scores(8, 40)
    estimate = estimate_mean(base, binary=True)
    assert estimate.method == "wilson"
    assert (estimate.low, estimate.high) == pytest.approx(
        proportion_confint(int(base.sum()), 40, method="wilson")
    )


def test_mean_t_interval_matches_statsmodels() -> None:
    base, _ = scale_scores(9, 30)
    estimate = estimate_mean(base)
    assert estimate.method == "t"
    assert (estimate.low, estimate.high) == pytest.approx(DescrStatsW(base).tconfint_mean())
    assert estimate.se == pytest.approx(scipy_stats.sem(base))


def clustered_ols(values: np.ndarray, groups: np.ndarray):  # type: ignore[no-untyped-def]
    return OLS(values, np.ones_like(values)).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )


def test_clustered_se_interval_and_p_value_match_statsmodels_cluster_robust_ols() -> None:
    rng = np.random.default_rng(10)
    groups = np.repeat(np.arange(40), rng.integers(1, 8, 40))
    shift = rng.normal(0, 0.3, 40)[groups]  # a shared push per cluster
    base = rng.normal(3, 1, groups.size)
    candidate = base + 0.1 + shift + rng.normal(0, 0.5, groups.size)
    result = paired_difference(base, candidate, clusters=groups)
    fit = clustered_ols(candidate - base, groups)
    assert result.test == "clustered t" and result.clusters == 40
    assert result.se == pytest.approx(fit.bse[0], rel=1e-9)  # Miller eq. 8 with CR1
    assert (result.low, result.high) == pytest.approx(tuple(fit.conf_int()[0]), rel=1e-9)
    assert result.p_value == pytest.approx(fit.pvalues[0], rel=1e-9)
    mean_fit = clustered_ols(base, groups)
    assert result.base.se == pytest.approx(mean_fit.bse[0], rel=1e-9)
    assert (result.base.low, result.base.high) == pytest.approx(tuple(mean_fit.conf_int()[0]))


def test_one_row_per_cluster_is_the_unclustered_standard_error() -> None:
    base, candidate = scale_scores(11, 50)
    clustered = paired_difference(base, candidate, clusters=np.arange(50))
    plain = paired_difference(base, candidate)
    assert clustered.se == pytest.approx(plain.se, rel=1e-12)


def test_holm_matches_statsmodels() -> None:
    p_values = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04]
    expected = multipletests(p_values, alpha=0.05, method="holm")[1]
    assert holm(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_holm_leaves_untested_metrics_out_of_the_family() -> None:
    adjusted = holm([0.01, float("nan"), 0.04])
    expected = multipletests([0.01, 0.04], method="holm")[1]
    assert adjusted[0] == pytest.approx(expected[0]) and adjusted[2] == pytest.approx(expected[1])
    assert math.isnan(adjusted[1])


@pytest.mark.parametrize("seed,n", [(12, 3), (16, 5), (17, 8), (18, 30), (19, 400)])
def test_minimum_detectable_effect_is_statsmodels_paired_t_power(seed: int, n: int) -> None:
    # The paired t test on n rows: TTestPower solves for the effect in SDs of a difference.
    base, candidate = scale_scores(seed, n)
    candidate[:2] = base[:2] + [1, 0]  # some spread, even at 3 rows
    result = paired_difference(base, candidate)
    sd = np.std(candidate - base, ddof=1)
    reference = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8) * sd
    assert result.mde == pytest.approx(reference, rel=1e-5)
    # By definition: a true difference of one MDE is significant with probability 0.8.
    assert TTestPower().power(result.mde / sd, n, 0.05) == pytest.approx(0.8, abs=1e-9)
    # The normal quantiles understate it with few rows: 2.80 SE where 8 rows need 3.27.
    z = scipy_stats.norm.ppf
    assert result.mde > (z(0.975) + z(0.8)) * result.se


def test_clustered_minimum_detectable_effect_has_the_clusters_degrees_of_freedom() -> None:
    rng = np.random.default_rng(20)
    groups = np.repeat(np.arange(5), 3)
    base = rng.normal(3, 1, 15)
    candidate = base + rng.normal(0.2, 0.5, 15) + rng.normal(0, 0.5, 5)[groups]
    result = paired_difference(base, candidate, clusters=groups)
    assert result.interval == "clustered t" and result.clusters == 5
    # A t test on 5 cluster-level values: TTestPower with nobs=5, in units of SE·sqrt(5).
    ncp = TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * math.sqrt(5)
    assert result.mde == pytest.approx(ncp * result.se, rel=1e-5)
    critical = scipy_stats.t.ppf(0.975, 4)
    delta = result.mde / result.se
    power = scipy_stats.nct.sf(critical, 4, delta) + scipy_stats.nct.cdf(-critical, 4, delta)
    assert power == pytest.approx(0.8, abs=1e-9)


def test_0_1_minimum_detectable_effect_is_normal_like_its_interval() -> None:
    result = paired_difference(*binary_scores(21, 400), binary=True)
    z = scipy_stats.norm.ppf
    assert result.interval == "adjusted wald"
    assert result.mde == pytest.approx((z(0.975) + z(0.8)) * result.interval_se)


def test_identical_runs_and_too_few_rows() -> None:
    base, _ = scale_scores(13, 30)
    same = paired_difference(base, base)
    # No spread: the exact sign test of 30 rows; its interval [0, 0], no MDE.
    assert (same.diff, same.se, same.p_value, same.test) == (0, 0, 1.0, "exact sign")
    assert (same.low, same.high) == (0, 0) and math.isnan(same.mde)
    assert same.p_less(-0.01) == 1.0
    assert same.p_greater(-0.01) == scipy_stats.binomtest(30, 30, alternative="greater").pvalue
    one = paired_difference([1.0], [0.0])
    assert one.interval == "none" and math.isnan(one.p_value) and math.isnan(one.low)


def test_one_sided_p_values_agree_with_the_interval() -> None:
    base, candidate = scale_scores(14, 200)
    result = paired_difference(base, candidate)
    # The interval's upper end is where "below it" has one-sided p = alpha / 2.
    assert result.p_less(result.high) == pytest.approx(0.025)
    assert result.p_greater(result.low) == pytest.approx(0.025)
    binary = paired_difference(*binary_scores(15, 500), binary=True)
    assert binary.p_less(binary.high) == pytest.approx(0.025)


def test_one_row_per_cluster_keeps_the_0_1_interval_and_exact_test() -> None:
    # 5 of 1,000 rows improve: the clustered t here would be the plain Wald interval
    # (excluding 0, p 0.025); one row per cluster must give the unclustered numbers exactly.
    base = np.zeros(1000)
    candidate = base.copy()
    candidate[:5] = 1
    result = paired_difference(base, candidate, clusters=np.arange(1000), binary=True)
    assert result == paired_difference(base, candidate, binary=True)
    assert result.p_value == pytest.approx(scipy_stats.binomtest(5, 5, 0.5).pvalue)
    assert result.low < 0 < result.high
    mean = estimate_mean(candidate, clusters=np.arange(1000), binary=True)
    assert mean.method == "wilson"
    assert (mean.low, mean.high) == pytest.approx(proportion_confint(5, 1000, method="wilson"))


def clustered_binary(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(30), rng.integers(1, 6, 30))
    easy = rng.random(30)[groups]  # a shared difficulty per cluster
    base = (rng.random(groups.size) < easy).astype(float)
    candidate = np.where(rng.random(groups.size) < 0.2, 1 - base, base)
    return base, candidate, groups


def test_clustered_0_1_difference_is_bonett_price_with_the_cluster_robust_se() -> None:
    base, candidate, groups = clustered_binary(12)
    result = paired_difference(base, candidate, clusters=groups, binary=True)
    # statsmodels' cluster-robust OLS on the differences with the two added pairs (one of
    # each kind), each a cluster of its own; the interval's t has the real clusters' G - 1.
    augmented = np.concatenate([candidate - base, [1.0, -1.0]])
    fit = clustered_ols(augmented, np.concatenate([groups, [1000, 1001]]))
    t = scipy_stats.t.ppf(0.975, 29)
    assert result.interval == result.test == "adjusted clustered t"
    assert result.se == pytest.approx(clustered_ols(candidate - base, groups).bse[0], rel=1e-9)
    assert result.interval_se == pytest.approx(fit.bse[0], rel=1e-9)
    center = fit.params[0]
    assert (result.low, result.high) == pytest.approx(
        (center - t * fit.bse[0], center + t * fit.bse[0]), rel=1e-9
    )
    p = 2 * scipy_stats.t.sf(abs(center / fit.bse[0]), 29)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_clustered_0_1_difference_keeps_a_floor_when_few_rows_changed() -> None:
    groups = np.repeat(np.arange(100), 10)
    base = np.zeros(1000)
    candidate = base.copy()
    candidate[[0, 10, 20, 30, 40]] = 1  # 5 rows in 5 clusters improve
    result = paired_difference(base, candidate, clusters=groups, binary=True)
    assert result.low < 0 < result.high and result.p_value > 0.05
    unchanged = paired_difference(base, base, clusters=groups, binary=True)
    assert unchanged.low < 0 < unchanged.high  # not [0, 0]: nothing seen is not "no change"


def test_clustered_0_1_mean_is_wilson_on_the_effective_number_of_rows() -> None:
    base, _, groups = clustered_binary(13)
    estimate = estimate_mean(base, clusters=groups, binary=True)
    se = clustered_ols(base, groups).bse[0]
    p = base.mean()
    # Korn & Graubard's effective rows, shrunk for G - 1 degrees of freedom.
    effective = min(base.size, p * (1 - p) / se**2)
    effective *= (scipy_stats.norm.ppf(0.975) / scipy_stats.t.ppf(0.975, 29)) ** 2
    assert estimate.method == "clustered wilson"
    assert estimate.se == pytest.approx(se, rel=1e-9)
    assert (estimate.low, estimate.high) == pytest.approx(
        proportion_confint(p * effective, effective, method="wilson"), rel=1e-9
    )
    # Two of three rows in one cluster: inside [0, 1], where p ± t·SE reached 1.13.
    small = estimate_mean(np.array([1.0, 1.0, 0.0]), clusters=np.array([1, 1, 2]), binary=True)
    assert 0 <= small.low < small.high <= 1


def test_a_0_1_change_interval_stays_inside_minus_1_to_1() -> None:
    # 2 of 3 rows improve: Bonett-Price gives +0.667 [-0.301, +1.1] before clipping.
    result = paired_difference(np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0]), binary=True)
    augmented = np.concatenate([[1.0, 1.0, 0.0], [1.0, -1.0]])
    stats = DescrStatsW(augmented, ddof=0)
    half = scipy_stats.norm.ppf(0.975) * stats.std / math.sqrt(augmented.size)
    assert stats.mean + half > 1  # the unclipped bound
    assert (result.low, result.high) == pytest.approx((stats.mean - half, 1.0))
    clustered = paired_difference(
        np.zeros(3), np.zeros(3), clusters=np.array([1, 1, 2]), binary=True
    )
    assert (clustered.low, clustered.high) == (-1.0, 1.0)


@pytest.mark.parametrize("values", [[0, 0.5, 1], [0.5, 1, 1, 0.5], [0.2, 0.9, 0.95, 1, 1]])
def test_a_bounded_scales_t_interval_is_scipys_cut_at_its_range(values: list[float]) -> None:
    """A label judge (0, 0.5, 1) on 3 rows had Student's t unclipped: 0.5 [-0.742, 1.74]."""
    x = np.asarray(values)
    low, high = scipy_stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    estimate = estimate_mean(x, bounds=(0.0, 1.0))
    assert estimate.method == "t"
    assert (estimate.low, estimate.high) == pytest.approx((max(low, 0.0), min(high, 1.0)))
    assert 0.0 <= estimate.low <= estimate.mean <= estimate.high <= 1.0
    # Without a range the interval is scipy's whole; a 0/1 metric's is statsmodels' Wilson.
    plain = estimate_mean(x)
    assert (plain.low, plain.high) == pytest.approx((low, high))
    assert (estimate_mean([1.0, 1.0, 1.0], binary=True).low, 1.0) == pytest.approx(
        proportion_confint(3, 3, method="wilson")
    )
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        estimate_mean([0.5, 2.0], bounds=(0.0, 1.0))


def test_a_bounded_scales_change_and_means_are_cut_at_its_range() -> None:
    base, candidate = np.array([1.0, 3.0, 5.0]), np.array([5.0, 3.0, 1.0])
    result = paired_difference(base, candidate, bounds=(1.0, 5.0))
    reference = scipy_stats.ttest_rel(candidate, base).confidence_interval(0.95)
    assert reference.low < -4 and reference.high > 4
    assert (result.low, result.high) == (-4.0, 4.0) and result.interval == "t"
    assert (result.base.low, result.base.high) == (1.0, 5.0)
    assert result.p_value == pytest.approx(scipy_stats.ttest_rel(candidate, base).pvalue)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 9])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_0_1_scores_whose_exact_test_cannot_reach_alpha_have_no_detectable_change(
    n: int, alpha: float
) -> None:
    """Exact McNemar on n rows can say no less than binomtest's p for every row changed one
    way, 2 * 0.5^n: below 6 rows at 0.05 (5 at 0.1) no change of any size is found, though
    Miller's eq. 10 gave 3 rows with one change an MDE of 0.938, below the largest change."""
    floor = scipy_stats.binomtest(n, n, 0.5).pvalue
    base = np.zeros(n)
    candidate = base.copy()
    candidate[0] = 1  # one row changed
    result = paired_difference(base, candidate, binary=True, alpha=alpha)
    assert result.smallest_p == pytest.approx(floor, rel=1e-12)
    every = paired_difference(base, np.ones(n), binary=True, alpha=alpha)
    assert every.p_value == pytest.approx(floor, rel=1e-12)  # the floor is reached there
    z = scipy_stats.norm.ppf
    assert result.mde == pytest.approx((z(1 - alpha / 2) + z(0.8)) * result.interval_se)
    assert result.alpha_out_of_reach == bool(floor >= alpha)
    assert result.mde_exceeds_range == bool(floor >= alpha or result.mde > 1)
    if n == 3 and alpha == 0.05:
        assert result.mde == pytest.approx(0.938, abs=5e-4) and result.mde_exceeds_range
    # A scale has no such floor: its t test can reach any alpha.
    assert paired_difference(base, candidate, alpha=alpha).smallest_p is None


def test_clustered_0_1_scores_whose_test_cannot_reach_alpha_have_no_detectable_change() -> None:
    """The adjusted clustered t test has a floor too: with clusters of 3, 1, 1 and 1 rows no
    outcome gives p below 0.05 (every row changing the same way gives the smallest, as
    statsmodels' cluster-robust OLS of the augmented differences says), yet the MDE read
    0.82 on some of them."""
    import itertools

    groups = np.array([0, 0, 0, 1, 2, 3])
    every = np.concatenate([np.ones(6), [1.0, -1.0]])
    fit = clustered_ols(every, np.concatenate([groups, [4, 5]]))
    floor = 2 * scipy_stats.t.sf(fit.params[0] / fit.bse[0], 3)
    lowest, shown = 1.0, []
    for changes in itertools.product((-1, 0, 1), repeat=6):
        d = np.array(changes, dtype=float)
        result = paired_difference(
            (d == -1).astype(float), (d == 1).astype(float), clusters=groups, binary=True
        )
        assert result.smallest_p == pytest.approx(floor, rel=1e-9)
        assert result.mde_exceeds_range
        lowest = min(lowest, result.p_value)
        shown.append(result.mde)
    assert lowest == pytest.approx(floor, rel=1e-9) and 0.05 < floor < 0.07
    assert min(shown) < 0.83  # what the MDE column used to show
    # 5 clusters of 1, 1, 1, 1, 2 rows can reach 0.05: no flag from the floor there.
    five = np.array([0, 1, 2, 3, 4, 4])
    reach = paired_difference(np.zeros(6), np.ones(6), clusters=five, binary=True)
    assert reach.smallest_p is not None and reach.smallest_p < 0.05
    assert not reach.alpha_out_of_reach
