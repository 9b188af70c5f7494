"""harness.stats.quantiles against scipy.special's stdtrit and ndtri."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from harness.stats import estimate_mean, wilson_interval
from harness.stats.quantiles import normal_quantile, t_quantile

PROBABILITIES = [
    1e-12, 1e-9, 1e-6, 1e-4, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45,
    0.4999, 0.5001, 0.6, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9995, 1 - 1e-6,
    1 - 1e-9,
]  # fmt: skip


@pytest.mark.parametrize(
    ("df", "rel"),
    [
        *[(df, 1e-12) for df in (1, 2, 3, 4, 5, 7, 10, 29, 30, 31, 99, 100, 999, 1000)],
        # lgamma's cancellation (log Γ(df/2 + 1/2) - log Γ(df/2)) costs digits as df grows
        *[(df, 1e-10) for df in (4999, 9999, 100_000)],
        *[(df, 1e-8) for df in (10**6, 10**7)],
        *[(df, 1e-12) for df in (0.5, 1.5, 2.5)],  # not whole: the heaviest tails
    ],
)
def test_t_quantiles_agree_with_scipy(df: float, rel: float) -> None:
    for p in PROBABILITIES:
        assert t_quantile(df, p) == pytest.approx(float(special.stdtrit(df, p)), rel=rel), p


def test_random_degrees_of_freedom_and_levels_agree_with_scipy() -> None:
    rng = np.random.default_rng(3)
    for df, p in zip(rng.integers(1, 5000, 300), rng.uniform(0.0005, 0.9995, 300), strict=True):
        expected = float(special.stdtrit(df, p))
        assert t_quantile(int(df), float(p)) == pytest.approx(expected, rel=1e-10, abs=1e-13)


def test_the_t_quantile_is_odd_and_zero_at_one_half() -> None:
    assert t_quantile(7, 0.5) == 0.0
    for df in (1, 3, 40, 10_000):
        for p in (2**-10, 0.25, 0.375):  # 1 - p is exact for these
            assert t_quantile(df, p) == -t_quantile(df, 1 - p)


@pytest.mark.parametrize(
    ("df", "p"),
    [(5, 1.0), (5, -0.1), (5, 1.5), (5, math.nan), (0, 0.5), (-1, 0.9), (math.nan, 0.9),
     (math.inf, 0.975), (math.inf, 0.2)],
)  # fmt: skip
def test_the_edges_are_scipys(df: float, p: float) -> None:
    # An interval at alpha 0 is infinite, as it was with scipy, not an error.
    expected = float(special.stdtrit(df, p))
    assert t_quantile(df, p) == pytest.approx(expected, rel=1e-15, nan_ok=True)


def test_the_quantile_at_zero_is_minus_infinity() -> None:
    assert normal_quantile(0.0) == float(special.ndtri(0.0)) == -math.inf
    assert t_quantile(5, 0.0) == -math.inf  # scipy's stdtrit(5, 0.0) says +inf
    assert normal_quantile(1.0) == math.inf and math.isnan(normal_quantile(2.0))


def test_normal_quantiles_agree_with_scipy() -> None:
    for p in PROBABILITIES:
        assert normal_quantile(p) == pytest.approx(float(special.ndtri(p)), rel=1e-14), p


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_intervals_are_scipys_to_the_last_digits(alpha: float) -> None:
    # What a report prints: the intervals as scipy's quantiles made them.
    values = np.random.default_rng(5).uniform(0, 1, 250)
    estimate = estimate_mean(values, alpha=alpha)
    half = float(special.stdtrit(249, 1 - alpha / 2)) * estimate.se
    assert estimate.low == pytest.approx(estimate.mean - half, rel=1e-12)
    assert estimate.high == pytest.approx(estimate.mean + half, rel=1e-12)
    z = float(special.ndtri(1 - alpha / 2))
    low, high = wilson_interval(37, 250, alpha)
    p, n = 37 / 250, 250
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((center - spread, center + spread), rel=1e-12)


@pytest.mark.parametrize("tail", [1e-300, 1e-200, 1e-100, 1e-50, 1e-12])
def test_far_tails_hold_the_closed_forms_and_the_power_law(tail: float) -> None:
    # Past ~1e-100 scipy's stdtrit drifts (2x off at df=3, 1e-200); the closed forms at 1
    # and 2 degrees of freedom and the tail's power law (P(T > t) ~ C t^-df) do not.
    # (The lower tail: 1 - tail would round, and the quantile with it.)
    assert t_quantile(1, tail) == pytest.approx(-1 / math.tan(math.pi * tail), rel=1e-12)
    closed = (1 - 2 * tail) / math.sqrt(2 * tail * (1 - tail))
    assert t_quantile(2, tail) == pytest.approx(-closed, rel=1e-12)
    for df in (3, 10) if tail <= 1e-50 else ():  # where t² dwarfs df: the law's own range
        ratio = t_quantile(df, tail / 1e10) / t_quantile(df, tail)
        assert ratio == pytest.approx(1e10 ** (1 / df), rel=1e-6)


def test_a_quantile_beyond_the_largest_double_is_infinite() -> None:
    assert t_quantile(0.5, 1e-200) == -math.inf  # t ~ 1e399
    assert t_quantile(0.5, 1e-100) == pytest.approx(-1.0284911563163401e199, rel=1e-12)
