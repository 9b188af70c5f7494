"""The mean of one run's per-row scores, with its standard error and confidence interval.

Rows are treated as a sample from the population of questions the eval set stands for
(Miller, "Adding Error Bars to Evals", arXiv 2411.00640): the standard error is the CLT one,
``s / sqrt(n)`` with the sample standard deviation, or the cluster-robust one when rows come
in groups that share a cause (several questions on one passage).

Which interval a mean gets depends on what the metric is, not on the values it happened to
score: the caller says ``binary=True`` for a metric that declares scores of only 0 and 1 (a
pass rate: exact match, a check, a yes/no judge asked once), so every run of one metric is
reported with one method. A metric on a scale that scored only 0 and 1 on a small run still
gets the t interval. The interval is:

- ``wilson`` for 0/1 scores without clusters: Wilson's score interval, which stays inside
  [0, 1] and keeps its coverage at small n and near 0 or 1, where ``p ± z·SE`` does not;
- ``t`` otherwise: ``mean ± t(n-1)·SE`` (the exact interval for normal scores, the CLT one
  as n grows), cut at the metric's range when it declares one (below);
- ``clustered t`` with clusters: ``mean ± t(G-1)·SE_cluster`` over G clusters;
- ``clustered wilson`` for 0/1 scores with clusters: Wilson's interval on the effective
  number of rows ``n* = p(1-p) / SE_cluster²`` (at most n), shrunk by ``(z / t(G-1))²`` for
  the clusters' degrees of freedom (Korn & Graubard's effective-sample-size method, 1998,
  with Wilson's interval in place of Clopper-Pearson's). For p away from 0 and 1 it is close
  to the clustered t interval, but it stays inside [0, 1] and keeps Wilson's floor where
  ``p ± t·SE`` would reach past 1 or collapse to a point when no cluster varies.

**Bounded scales.** A metric whose every score lies in a known range (``bounds=(low,
high)``: a judge's 1-5 scale, a label judge's or a yes/no judge's samples averaged in [0, 1],
token F1 or ROUGE in [0, 1]) gets its t interval cut at the range: ``mean ± t·SE`` on 3
rows of 0, 0.5 and 1 is [-0.742, 1.74], a mean no data in [0, 1] can have. The cut keeps
the coverage exactly (the true mean lies in the range, so it lies in the cut interval
whenever it lies in the uncut one) and drops only impossible values; it is not Wilson's
interval, whose variance ``p(1-p)`` holds for 0/1 scores only (for a scale it is the
largest variance a mean of p can have, so it would be too wide for a judge that mostly
agrees with itself). 0/1 scores need no cut: Wilson's interval stays inside [0, 1]. A
side of the range may be infinite (``bounds=(0, math.inf)``: latency, a word count, never
negative and with no largest value): the interval is then cut at the finite side only, as
latency on 3 rows, ``0.1 [-0.3, 0.5]`` in Student's t, becomes ``[0, 0.5]``.

With one row per cluster there is nothing to cluster: the numbers are the unclustered ones.

**No spread.** When a t method's scores have no spread (every row scored the same, or with
clusters every cluster's mean is the same; "none" up to float rounding), its SE is 0 and the
t interval's assumption fails: it would be ``[m, m]`` from 2 rows (scipy's ``t.interval``
with a scale of 0 gives none). There is then no interval at any n (NaN, ``none``, with
``interval_note`` saying why): rows that all scored ``m`` say nothing of how far the mean
of the other questions could be. (A paired change with no spread gets the sign test's
interval, ``harness.stats.paired``: there the question is the shift every row shows.)
0/1 scores never get here: Wilson's interval always has a width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.quantiles import normal_quantile, t_quantile

__all__ = [
    "ONE_CLUSTER_MEAN",
    "MeanEstimate",
    "check_binary",
    "check_bounds",
    "clip",
    "cluster_se",
    "estimate_mean",
    "is_binary",
    "one_row_per_cluster",
    "wilson_interval",
]

NAN = float("nan")
# Rows that all share one cluster (a --cluster column with one value, or a --by slice of
# one cluster) have no cluster-to-cluster spread to measure, as one row has no spread.
ONE_CLUSTER_MEAN = "one cluster: an interval needs two or more"


@dataclass(frozen=True)
class MeanEstimate:
    """A mean over ``n`` rows with its standard error and ``1 - alpha`` interval."""

    mean: float
    n: int
    se: float  # CLT (s / sqrt n), or cluster-robust with clusters
    low: float
    high: float
    # wilson | t | clustered t | clustered wilson | none (fewer than two rows, or no spread)
    method: str
    # Why there is no interval though there are rows: the scores have no spread. None
    # otherwise.
    interval_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_binary(values: NDArray[np.float64]) -> bool:
    """True when every value is 0 or 1 (and there is at least one): a rate, not a scale."""
    return values.size > 0 and bool(np.all((values == 0.0) | (values == 1.0)))


def check_binary(values: NDArray[np.float64], binary: bool) -> None:
    """ValueError when scores declared 0/1 (``binary``) hold anything else."""
    if binary and values.size and not is_binary(values):
        raise ValueError("scores declared 0/1 (binary=True) must all be 0 or 1")


def check_bounds(values: NDArray[np.float64], bounds: tuple[float, float] | None) -> None:
    """ValueError when a score lies outside the range its metric declares (``bounds``)."""
    if bounds is None:
        return
    low, high = bounds
    if not low < high:
        raise ValueError(f"bounds must go from low to high, not {bounds}")
    if values.size and not bool(np.all((values >= low) & (values <= high))):
        raise ValueError(f"scores declared within [{low:g}, {high:g}] must lie in it")


def clip(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """An interval cut at ``bounds`` (unchanged without them, or when it has no ends)."""
    if bounds is None or math.isnan(low):
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def cluster_se(values: NDArray[np.float64], clusters: ArrayLike) -> tuple[float, int]:
    """The cluster-robust standard error of the mean of ``values`` and the number of clusters.

    ``sqrt(G/(G-1) · Σ_g (Σ_{i∈g} (x_i - x̄))² / n²)``: Miller's eq. 4 (eq. 8 for paired
    differences) with the usual small-sample factor G/(G-1) (the CR1 estimator, the default
    of Stata and of statsmodels' ``cov_type="cluster"``). With every row its own cluster it
    is exactly the CLT standard error ``s / sqrt(n)``.
    """
    n = values.size
    _, group = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(group.max()) + 1 if n else 0
    if n_clusters < 2:
        return NAN, n_clusters
    sums = np.bincount(group, weights=values - values.mean(), minlength=n_clusters)
    variance = n_clusters / (n_clusters - 1) * float(np.dot(sums, sums)) / n**2
    return math.sqrt(variance), n_clusters


def one_row_per_cluster(clusters: ArrayLike) -> bool:
    """True when no two rows share a cluster: clustering then changes nothing."""
    groups = np.asarray(clusters)
    return bool(np.unique(groups).size == groups.size)


def wilson_interval(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson's score interval for a proportion (``statsmodels.proportion_confint(method=
    "wilson")``); ``n`` may be an effective (fractional) number of rows."""
    if n == 0:
        return NAN, NAN
    return _wilson(successes / n, n, normal_quantile(1 - alpha / 2))


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; the formula leaves rounding dust.
    low = 0.0 if p == 0 else max(0.0, center - half)
    high = 1.0 if p == 1 else min(1.0, center + half)
    return low, high


def estimate_mean(
    values: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    alpha: float = 0.05,
    binary: bool = False,
    bounds: tuple[float, float] | None = None,
) -> MeanEstimate:
    """The mean of ``values`` (no NaN) with its standard error and ``1 - alpha`` interval.

    ``binary``: the metric declares scores of only 0 and 1 (Wilson's interval); ``bounds``:
    it declares every score within ``(low, high)`` (a t interval is cut there). ValueError
    when a value is anything else."""
    x = np.asarray(values, dtype=np.float64)
    check_binary(x, binary)
    check_bounds(x, bounds)
    n = int(x.size)
    if n == 0:
        return MeanEstimate(NAN, 0, NAN, NAN, NAN, "none")
    mean = float(x.mean())
    if clusters is not None and one_row_per_cluster(clusters):
        clusters = None  # as the docs promise: exactly the unclustered numbers (and Wilson)
    if clusters is not None:
        se, n_clusters = cluster_se(x, clusters)
        if n_clusters < 2:
            return MeanEstimate(mean, n, NAN, NAN, NAN, "none", ONE_CLUSTER_MEAN)
        t = t_quantile(n_clusters - 1, 1 - alpha / 2)
        if binary:
            low, high = _clustered_wilson(mean, n, se, t, normal_quantile(1 - alpha / 2))
            return MeanEstimate(mean, n, se, low, high, "clustered wilson")
        if _no_spread(se, x):
            return _no_spread_estimate(mean, n, se, n_clusters, alpha)
        low, high = clip(mean - t * se, mean + t * se, bounds)
        return MeanEstimate(mean, n, se, low, high, "clustered t")
    if n < 2:
        return MeanEstimate(mean, n, NAN, NAN, NAN, "none")
    se = float(x.std(ddof=1)) / math.sqrt(n)
    if binary:
        low, high = wilson_interval(int(x.sum()), n, alpha)
        return MeanEstimate(mean, n, se, low, high, "wilson")
    if _no_spread(se, x):
        return _no_spread_estimate(mean, n, se, None, alpha)
    half = t_quantile(n - 1, 1 - alpha / 2) * se
    low, high = clip(mean - half, mean + half, bounds)
    return MeanEstimate(mean, n, se, low, high, "t")


def _no_spread(se: float, values: NDArray[np.float64]) -> bool:
    """Whether the scores have no spread: SE 0, or what float rounding leaves of 0 (the mean
    of 0.1 seven times is not 0.1 to the last bit), far below any spread scores carry."""
    return se <= 1e-12 * float(np.abs(values).max())


def _no_spread_estimate(
    mean: float, n: int, se: float, n_clusters: int | None, alpha: float
) -> MeanEstimate:
    """Scores with no spread (see the module): no interval, with the reason. Rows that all
    scored m say nothing of how far the mean of the other questions could be from m, at
    any n (a change with no spread is another matter: ``harness.stats.paired``)."""
    each, what = ("cluster's mean was", "clusters") if n_clusters else ("row scored", "rows")
    units = n_clusters or n
    note = f"every {each} {mean:.4g}: with no spread over {units} {what} there is no interval"
    return MeanEstimate(mean, n, se, NAN, NAN, "none", note)


def _clustered_wilson(p: float, n: int, se: float, t: float, z: float) -> tuple[float, float]:
    """Wilson's interval on Korn & Graubard's effective number of rows (see the module)."""
    # Clusters only ever cost rows here: a design effect below 1 (or no spread at all, p at
    # 0 or 1) keeps the n rows, so the interval is never narrower than Wilson's on n rows
    # bar the degrees-of-freedom factor.
    effective = min(float(n), p * (1 - p) / (se * se)) if se > 0 else float(n)
    return _wilson(p, effective * (z / t) ** 2, z)
