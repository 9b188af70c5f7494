"""The paired difference of two runs on the same rows: estimate, interval, test, power.

The 0/1 methods below are for a metric that declares scores of only 0 and 1 (the caller's
``binary=True``), never chosen by looking at the values: a scale that scored only 0 and 1
on a small run is still compared with the t methods, like every other run of it.

Both runs answered the same questions, so the question-to-question spread, which is most
of the spread of either mean, cancels in the per-row differences ``d_i = candidate_i -
base_i`` (Miller, "Adding Error Bars to Evals", arXiv 2411.00640, section 4). Everything
here is computed from those differences:

- **standard error**: ``sd(d) / sqrt(n)`` (Miller eq. 7), or cluster-robust over the
  clusters' sums of ``d`` (eq. 8, with the CR1 factor G/(G-1); see ``means.cluster_se``);
- **interval** (``1 - alpha``):
  ``t``: ``d̄ ± t(n-1)·SE``, the paired t interval, for scores on a scale;
  ``adjusted wald``: for 0/1 scores, Bonett & Price's (2012) adjusted Wald interval, the
  Wald interval after adding one discordant pair of each kind. Plain ``d̄ ± z·SE`` is far
  too narrow when few rows changed (5 of 1,000 flipping the same way give an interval that
  excludes 0 while the exact test says p = 0.06). The adjusted one is wider, but on very
  few rows still not always as wide as the exact test asks: 5 rows that all got worse give
  [-1, -0.196] where exact McNemar's p is ``2·0.5^5 = 0.0625``. Where the exact test does
  not reject "no change" (p >= alpha) and the adjusted interval excludes 0, the interval
  is widened to reach 0 (``adjusted wald to 0``, with ``interval_note`` saying why), so
  it excludes 0 exactly when the test rejects (where the test rejects, the adjusted
  interval already excludes 0: checked on every outcome up to 80 rows, and up to 60
  changed rows out of 5,000). Widening only adds coverage. The interval the exact
  conditional test itself gives covers poorly and can be effectively one-sided (Newcombe,
  "Improved confidence intervals for the difference between binomial proportions based on
  paired data", Stat. Med. 1998), so the adjusted Wald interval is kept and only widened.
  The one-sided p-values a gate uses (``p_less``/``p_greater``) agree with it the same
  way: against a threshold on the far side of 0 (``p_less(t)`` for ``t <= 0``), each is
  the larger of the adjusted Wald one and exact McNemar's one-sided p against 0
  (``scipy.stats.binomtest`` on the rows that changed, ``alternative`` less or greater).
  Showing a change below ``t <= 0`` means showing one below 0 too, which the exact test
  must; the larger p keeps the level wherever the Wald one keeps it. Against ``t`` on the
  near side (a non-inferiority margin, ``p_greater(-m)``) the Wald one alone;
  ``clustered t``: ``d̄ ± t(G-1)·SE_cluster`` with clusters;
  ``adjusted clustered t``: for 0/1 scores with clusters, Bonett & Price's adjustment with
  the cluster-robust SE: the two added pairs (one of each kind) are two clusters of their
  own, then ``center ± t(G-1)·SE_cluster`` of the augmented differences. The plain
  clustered t is the Wald interval again (with 5 of 1,000 single-row clusters improving it
  excludes 0 where McNemar's p is 0.06; with no row changed it is [0, 0]); the added pairs
  give the same floor as without clusters, and as the clusters are real ones the SE still
  counts their shared cause. Added as clusters of their own because they stand for rows
  not yet seen, which belong to no observed cluster; t(G-1) counts the real clusters only.
  Its interval, its test and the one-sided p-values are one t distribution of the same
  center and SE, so they agree with no widening (on every outcome of small clustered runs
  the interval excludes 0 exactly when p < alpha, and no gate fails where exact McNemar on
  the rows, ignoring the clusters, could not find a change);
  a t interval of a metric declaring a range (``bounds``, a 1-5 judge) is cut at the
  largest change such scores can show, ``±(high - low)``, as the adjusted ones at ±1. A
  range open on one side (latency, word count: 0 to infinity) bounds no change, however
  it bounds the means: the change's interval is not cut, and ``max_change`` is None;
- **test**: ``exact McNemar`` for 0/1 scores (a binomial test on the rows that changed:
  exact at every n, and it uses only the discordant rows, which carry all the information),
  the ``paired t`` test otherwise (it tests the mean difference, the quantity the interval
  bounds and the verdict is about; a rank test would test a different quantity and could
  disagree with the interval), and ``clustered t`` with clusters (McNemar assumes
  independent rows); for 0/1 scores with clusters, ``adjusted clustered t``: the t test of
  the adjusted center and SE, so it agrees with the interval;
- **no spread**: when a t method's differences have no spread (every row changed by the
  same amount, or every cluster's mean did; "none" here is up to float rounding), its SE
  is 0 and the t test's assumption fails: it would say p = 0 and give a zero-width interval
  from 3 rows. The ``exact sign`` test of the rows (or clusters) then gives the p-values
  (``scipy.stats.binomtest`` on the signs: two-sided ``2·0.5^n`` for n equal signs, 1 when
  every change is 0; the one-sided ones against a threshold the same way) and the interval:
  the sign test's for the shift, which is the one change ``d`` itself, ``[d, d]``, once
  ``2·0.5^n <= alpha`` (6 rows at 0.05), and none below (NaN, with ``interval_note``
  saying why); there is no MDE. 0/1 scores never get here: their adjusted intervals always
  have spread;
- with one row per cluster there is nothing to cluster: the unclustered numbers exactly;
- **minimum detectable effect**: the smallest true difference this comparison finds
  significant with probability ``power``, in units of the interval's SE (for 0/1 scores
  the adjusted interval's SE, which is not 0 when no row changed). For a t interval it is
  the noncentrality at which the two-sided t test with the interval's degrees of freedom
  (n-1 rows, or G-1 clusters) has that power (the noncentral t, as ``statsmodels``'
  ``TTestPower``): 3.27 SE at 8 rows, 3.76 SE at 5 clusters. For the adjusted Wald
  interval (normal) it is Miller's eq. 10, ``(z(1-alpha/2) + z(power)) · SE`` (2.80 SE).
  It can exceed the largest change the scores can show (``max_change``: 1 for 0/1 scores,
  ``high - low`` for a declared range): a 1-5 judge on 3 rows has an MDE of 13.1 where no
  mean can move by more than 4. ``mde_exceeds_range`` then says that at this spread no
  change at all is detectable with these rows; the MDE itself is kept as computed.
  For 0/1 scores the test is discrete and can have a floor the MDE formula does not see:
  with n rows, even every row changing the same way gives exact McNemar a p-value of
  ``2·0.5^n`` (``smallest_p``), so below 6 rows at alpha 0.05 no change is found whatever
  its size, while Miller's eq. 10 says 0.938 for 3 rows. The adjusted clustered t test has
  such a floor too (every row changing the same way gives its smallest p-value: 0.069 for
  clusters of 3, 1, 1 and 1 rows). ``mde_exceeds_range`` is then true as well: the MDE
  of the test actually used exceeds every change the scores can show. Both compare the
  floor with the ``alpha`` the MDE is computed at, the comparison's, not Holm's;
- the Pearson **correlation** of the paired scores: how much pairing helped.

Functions take plain arrays (already paired, no NaN) and return plain dataclasses, so a
caller can apply them per slice of rows and adjust across slices with ``adjust.holm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.numbers import range_list
from harness.stats.means import (
    MeanEstimate,
    check_binary,
    clip,
    cluster_se,
    estimate_mean,
    one_row_per_cluster,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "ONE_CLUSTER_CHANGE",
    "PairedDifference",
    "paired_difference",
]

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
NAN = float("nan")
ONE_CLUSTER_CHANGE = "one cluster: an interval, a p-value or an MDE needs two or more"


@dataclass(frozen=True)
class PairedDifference:
    """``candidate - base`` over ``n`` paired rows (see the module for every method)."""

    n: int
    clusters: int | None  # number of clusters, when clustered
    binary: bool  # the metric declares scores of only 0 and 1 (the 0/1 methods were used)
    base: MeanEstimate
    candidate: MeanEstimate
    diff: float  # mean of candidate - base
    se: float  # Miller eq. 7, or eq. 8 with clusters
    low: float
    high: float
    # t | adjusted wald | adjusted wald to 0 (widened to 0: exact McNemar did not reject) |
    # clustered t | adjusted clustered t | exact sign | none
    interval: str
    p_value: float  # two-sided, for "no difference"
    test: str  # exact McNemar | paired t | clustered t | adjusted clustered t | none
    correlation: float | None  # Pearson, None when a side is constant
    mde: float  # minimum detectable effect at ``power``
    discordant: tuple[int, int] | None  # 0/1 scores: (rows only base got, only candidate got)
    alpha: float
    power: float
    # How the interval was built, so one-sided tests agree with it exactly.
    center: float
    interval_se: float
    df: float | None  # degrees of freedom of the t distribution; None: normal
    # Why there is no interval though there are rows (the differences have no spread and
    # the rows are too few for the exact sign test's interval), or why the adjusted Wald
    # interval was widened to 0 (exact McNemar did not reject). None otherwise.
    interval_note: str | None = None
    # The range the metric declares its scores in (``bounds``), where t intervals are cut.
    bounds: tuple[float, float] | None = None
    # 0/1 scores: the smallest two-sided p-value the test can give with these rows (or
    # clusters), when every row changes the same way; None for a test with no such floor.
    smallest_p: float | None = None

    @property
    def max_change(self) -> float | None:
        """The largest change the scores can show: 1 for 0/1 scores, ``high - low`` for
        a declared range (4 for a 1-5 judge); None when the metric declares neither, or a
        range open on one side (latency's 0 to infinity: a change of any size)."""
        if self.binary:
            return 1.0
        return _change_limit(self.bounds)

    @property
    def alpha_out_of_reach(self) -> bool:
        """0/1 scores whose test cannot give a p-value below ``alpha`` with these rows,
        even if every row changed the same way (exact McNemar on fewer than 6 rows at 0.05)."""
        return self.smallest_p is not None and self.smallest_p >= self.alpha

    @property
    def mde_exceeds_range(self) -> bool:
        """The MDE is larger than any change the scores can show: even the largest one
        would be found less often than ``power``, so no change is detectable with these rows
        (a 1-5 judge on 3 rows: an MDE of 13.1 against at most 4; exact match on 3 rows,
        whose test cannot reach ``alpha`` at all, ``alpha_out_of_reach``)."""
        if self.alpha_out_of_reach:
            return True
        largest = self.max_change
        return largest is not None and not math.isnan(self.mde) and self.mde > largest

    @property
    def no_spread(self) -> bool:
        """Every row (cluster) changed alike: the p-values are the exact sign test's."""
        return self.test == "exact sign"

    def p_less(self, threshold: float) -> float:
        """One-sided p-value for "the true difference is below ``threshold``" (for 0/1
        scores and ``threshold <= 0``, at least exact McNemar's one-sided p: see the module)."""
        return self._exact_floor(self._cdf(threshold), threshold, upper=False)

    def p_greater(self, threshold: float) -> float:
        """One-sided p-value for "the true difference is above ``threshold``" (for 0/1
        scores and ``threshold >= 0``, at least exact McNemar's one-sided p)."""
        return self._exact_floor(self._cdf(threshold, upper=True), threshold, upper=True)

    def _exact_floor(self, p: float, threshold: float, upper: bool) -> float:
        """``p``, or exact McNemar's one-sided p against 0 where that is larger and the
        threshold lies beyond 0: a change past it is a change past 0, which the exact test
        must find as well."""
        beyond = threshold >= 0 if upper else threshold <= 0
        if self.test != "exact McNemar" or self.discordant is None or not beyond:
            return p
        return max(p, _mcnemar_one_sided(*self.discordant, upper=upper))

    def _cdf(self, threshold: float, upper: bool = False) -> float:
        if self.no_spread:  # every row (cluster) changed by ``diff``: the exact sign test
            beyond = self.diff > threshold if upper else self.diff < threshold
            return 0.5 ** (self.clusters or self.n) if beyond else 1.0
        if math.isnan(self.interval_se):
            return NAN
        if self.interval_se == 0:
            below = self.center < threshold
            above = self.center > threshold
            return 0.0 if (above if upper else below) else 1.0
        z = (self.center - threshold) / self.interval_se
        if upper:
            z = -z
        from scipy import special  # ~0.15 s to import: only when a comparison needs it

        if self.df is None:
            return float(special.ndtr(z))
        return float(special.stdtr(self.df, z))

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "clusters": self.clusters,
            "binary": self.binary,
            "base": self.base.as_dict(),
            "candidate": self.candidate.as_dict(),
            "diff": self.diff,
            "se": self.se,
            "ci": [self.low, self.high],
            "interval": self.interval,
            "p_value": self.p_value,
            "test": self.test,
            "correlation": self.correlation,
            "mde": self.mde,
            "max_change": self.max_change,
            "mde_exceeds_range": self.mde_exceeds_range,
            "smallest_p_value": self.smallest_p,
            "discordant": list(self.discordant) if self.discordant else None,
            "alpha": self.alpha,
            "power": self.power,
            "interval_note": self.interval_note,
            "range": range_list(self.bounds),  # an open side as None: JSON has no infinity
        }


def paired_difference(
    base: ArrayLike,
    candidate: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    binary: bool = False,
    bounds: tuple[float, float] | None = None,
) -> PairedDifference:
    """Compare two runs' scores on the same rows (``base[i]`` and ``candidate[i]`` belong to
    one row; no NaN). ``clusters[i]`` names the row's cluster, when rows come in groups.
    ``binary``: the metric declares scores of only 0 and 1 (the 0/1 methods); ``bounds``:
    it declares every score within ``(low, high)`` (the means' t intervals are cut there,
    the change's at ``±(high - low)`` when both are finite). ValueError when a value is
    anything else."""
    b = np.asarray(base, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError("base and candidate must be 1-D arrays of the same length")
    groups = None if clusters is None else np.asarray(clusters)
    if groups is not None and groups.shape != b.shape:
        raise ValueError("clusters must have one entry per row")
    if groups is not None and one_row_per_cluster(groups):
        groups = None  # nothing to cluster: exactly the unclustered numbers, 0/1 floor kept
    n = int(b.size)
    d = c - b
    check_binary(b, binary)
    check_binary(c, binary)
    discordant = None
    if binary:
        discordant = (int(np.sum((b == 1) & (c == 0))), int(np.sum((b == 0) & (c == 1))))
    diff = float(d.mean()) if n else NAN
    means = (
        estimate_mean(b, clusters=groups, alpha=alpha, binary=binary, bounds=bounds),
        estimate_mean(c, clusters=groups, alpha=alpha, binary=binary, bounds=bounds),
    )
    n_clusters: int | None = None
    clustered_floor = NAN
    if groups is not None:
        se, n_clusters = cluster_se(d, groups)
        df: float | None = n_clusters - 1 if n_clusters >= 2 else None
        center, interval_se, interval = diff, se, "clustered t"
        if binary and n_clusters >= 2:
            center, interval_se = _adjusted_clustered(d, groups)
            interval = "adjusted clustered t"
            # The test's floor: its p-value when every row changes the same way (the
            # smallest of all outcomes, found by trying every one on up to 8 rows).
            clustered_floor = _t_p_value(*_adjusted_clustered(np.ones(n), groups), n_clusters - 1)
    else:
        se = float(d.std(ddof=1)) / math.sqrt(n) if n >= 2 else NAN
        df = n - 1
        center, interval_se, interval = diff, se, "t"
        if binary and n >= 2 and discordant is not None:
            center, interval_se = _adjusted_wald(discordant, n)
            df, interval = None, "adjusted wald"
    interval_note = None
    smallest_p = None
    if math.isnan(se) or math.isnan(interval_se):  # fewer than two rows (or clusters)
        center = interval_se = low = high = p_value = mde = NAN
        df, interval, test, correlation = None, "none", "none", None
        if n_clusters == 1 and n > 1:  # (one row: the caller says so, of both runs too)
            interval_note = ONE_CLUSTER_CHANGE
    elif not binary and _no_spread(se, b, c):
        units = n_clusters or n
        # The sign test, two-sided: n equal signs have p = 2 * 0.5^n; no change has none.
        p_value = 1.0 if diff == 0 else min(1.0, 2 * 0.5**units)
        center, interval_se, mde, df = diff, NAN, NAN, None
        test, correlation = "exact sign", _correlation(b, c)
        if 2 * 0.5**units <= alpha:
            # The sign test's interval for the shift: the shifts it does not reject. With
            # every change equal to d that is d alone, once the rows are enough to reject
            # any other (identical runs on 60 rows: [0, 0], "no detectable difference").
            low = high = diff
            interval = "exact sign"
        else:
            each, what = ("cluster's mean", "clusters") if n_clusters else ("row", "rows")
            interval_note = (
                f"every {each} changed by {diff:.4g}: with no spread and {units} {what} "
                "there is no interval or MDE, and the p-value is the exact sign test's"
            )
            low = high = NAN
            interval = "none"
    else:
        quantile = _quantile(1 - alpha / 2, df)
        low, high = center - quantile * interval_se, center + quantile * interval_se
        if binary:  # a change of 0/1 scores lies in [-1, 1]; the adjusted interval can reach past
            low, high = max(low, -1.0), min(high, 1.0)
        elif (largest := _change_limit(bounds)) is not None:  # a range's, by its width
            low, high = clip(low, high, (-largest, largest))
        if n_clusters is not None and binary:
            p_value = _t_p_value(center, interval_se, n_clusters - 1)
            test = "adjusted clustered t"
            smallest_p = clustered_floor
        elif n_clusters is not None:
            p_value, test = _t_p_value(diff, se, n_clusters - 1), "clustered t"
        elif binary and discordant is not None:
            p_value, test = _mcnemar_exact(*discordant), "exact McNemar"
            smallest_p = _mcnemar_exact(0, n)  # every row changed the same way: 2 * 0.5^n
            if p_value >= alpha and (low > 0 or high < 0):
                # The test cannot reject "no change": neither may the interval (module).
                interval_note = (
                    f"the adjusted Wald interval [{low:.3g}, {high:.3g}] excludes 0, but "
                    f"exact McNemar's p on the {sum(discordant)} rows that changed is "
                    f"{p_value:.3g}, not below {alpha:g}: the interval is widened to 0"
                )
                low, high = min(low, 0.0), max(high, 0.0)
                interval = "adjusted wald to 0"
        else:
            p_value, test = _t_p_value(diff, se, n - 1), "paired t"
        mde = _detectable_effect(interval_se, df, alpha, power)
        correlation = _correlation(b, c)
    return PairedDifference(
        n=n,
        clusters=n_clusters,
        binary=binary,
        base=means[0],
        candidate=means[1],
        diff=diff,
        se=se,
        low=low,
        high=high,
        interval=interval,
        p_value=p_value,
        test=test,
        correlation=correlation,
        mde=mde,
        discordant=discordant,
        alpha=alpha,
        power=power,
        center=center,
        interval_se=interval_se,
        df=df,
        interval_note=interval_note,
        bounds=bounds,
        smallest_p=smallest_p,
    )


def _change_limit(bounds: tuple[float, float] | None) -> float | None:
    """The largest change scores in ``bounds`` can show, ``high - low``; None without a
    range or for one open on a side (latency's 0 to infinity bounds no change)."""
    if bounds is None or not math.isfinite(bounds[1] - bounds[0]):
        return None
    return bounds[1] - bounds[0]


def _no_spread(se: float, b: np.ndarray, c: np.ndarray) -> bool:
    """Whether the t methods' differences have no spread: SE 0, or what float rounding
    leaves of 0 (0.7 - 0.6 and 0.4 - 0.3 differ in their last bits), far below any spread
    the scores could carry."""
    scale = float(max(np.abs(b).max(), np.abs(c).max())) if b.size else 0.0
    return se <= 1e-12 * scale


def _adjusted_wald(discordant: tuple[int, int], n: int) -> tuple[float, float]:
    """Bonett & Price's center and standard error: one discordant pair of each kind added."""
    only_base, only_candidate = discordant
    p_base = (only_base + 1) / (n + 2)
    p_candidate = (only_candidate + 1) / (n + 2)
    center = p_candidate - p_base
    return center, math.sqrt((p_base + p_candidate - center * center) / (n + 2))


def _adjusted_clustered(d: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Bonett & Price's adjustment with clusters: a pair only the candidate got and one only
    the base got, each a cluster of its own, then the augmented differences' mean and
    cluster-robust SE (see the module)."""
    _, group = np.unique(groups, return_inverse=True)
    n_clusters = int(group.max()) + 1
    augmented = np.concatenate([d, [1.0, -1.0]])
    se, _ = cluster_se(augmented, np.concatenate([group, [n_clusters, n_clusters + 1]]))
    return float(augmented.mean()), se


# scipy.special's distribution functions rather than scipy.stats': the same numbers, but
# ~100 times less overhead per call, which is what lets a test analyse 1,000 datasets fast.
def _quantile(p: float, df: float | None) -> float:
    from scipy import special

    return float(special.ndtri(p) if df is None else special.stdtrit(df, p))


def _detectable_effect(se: float, df: float | None, alpha: float, power: float) -> float:
    """The true difference a two-sided test at ``alpha`` finds with probability ``power``.

    Normal (df None): ``(z(1-alpha/2) + z(power))·SE``. A t test: the noncentrality ``δ``
    whose noncentral t power, ``P(|T| > t(1-alpha/2, df) | δ)``, is ``power``, times the SE
    (``statsmodels.stats.power.TTestPower().solve_power`` times the SD of the mean). With
    few rows or clusters this is well above the normal one: at 8 rows, 3.27 SE, not 2.80.
    """
    if df is None:
        return (_quantile(1 - alpha / 2, None) + _quantile(power, None)) * se
    from scipy import special

    critical = _quantile(1 - alpha / 2, df)

    def power_at(delta: float) -> float:
        # scipy's nctdtr answers NaN far in a tail (1.17: past a noncentrality of ~7 for
        # the lower one, where it is below 1e-11; the upper only where the power is ~1).
        below, above = special.nctdtr(df, delta, -critical), special.nctdtr(df, delta, critical)
        return float(
            (0.0 if math.isnan(below) else below) + 1 - (0.0 if math.isnan(above) else above)
        )

    # The power grows with the noncentrality: bisect between 0 and a bound it reaches.
    low, high = 0.0, critical + _quantile(power, df) + 1.0
    while power_at(high) < power:
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        if power_at(middle) < power:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    return high * se


def _t_p_value(diff: float, se: float, df: float) -> float:
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    from scipy import special

    return float(2 * special.stdtr(df, -abs(diff / se)))


def _mcnemar_exact(only_base: int, only_candidate: int) -> float:
    """Two-sided exact binomial test of the discordant rows against 1/2 (as
    ``scipy.stats.binomtest``): the distribution is symmetric, so twice the smaller tail."""
    changed = only_base + only_candidate
    if changed == 0:
        return 1.0
    from scipy import special

    return min(1.0, float(2 * special.bdtr(min(only_base, only_candidate), changed, 0.5)))


def _mcnemar_one_sided(only_base: int, only_candidate: int, *, upper: bool) -> float:
    """Exact McNemar's one-sided p against "no change" (``scipy.stats.binomtest`` on the
    rows that changed, against 1/2): for a rise (``upper``), the chance of at least
    ``only_candidate`` gains among them; for a drop, of at least ``only_base`` losses."""
    changed = only_base + only_candidate
    toward = only_candidate if upper else only_base
    if toward == 0:
        return 1.0
    from scipy import special

    return float(special.bdtrc(toward - 1, changed, 0.5))  # P(X >= toward)


def _correlation(b: np.ndarray, c: np.ndarray) -> float | None:
    # A side whose scores are all equal has no correlation; its std() need not be 0 (60
    # rows of 0.0714: 1.4e-17), and corrcoef would then say 1.
    if b.size < 2 or b.min() == b.max() or c.min() == c.max():
        return None
    return float(np.corrcoef(b, c)[0, 1])
