"""The normal and Student's t quantiles of one run's intervals, without scipy.

Every run logged to MLflow ends with a report, and its intervals need ``t(n-1)`` and ``z``
quantiles. ``scipy.special`` (``stdtrit``, ``ndtri``) takes 0.14-0.17 s to import (its
array-API layer clones numpy), and a run's end imported it for those two numbers alone.
Without it, what MLflow adds to a 1,000-row cached rerun (``bench/bench_cached_rerun.py``,
goal 1 of issue 14) fell from a median of +0.67 s to +0.32-0.39 s. Comparisons
(``harness.stats.paired``) still use scipy's functions.

- ``normal_quantile``: the standard library's ``NormalDist.inv_cdf`` (Wichura's AS 241,
  accurate to double precision).
- ``t_quantile``: Newton's method on the log of the t distribution's upper tail,
  ``0.5 * I_x(df/2, 1/2)`` with ``x = df / (df + t²)``, as a function of log t, all in
  logs. It starts from the normal quantile with Cornish-Fisher's first two terms (from the
  exact quantile at 1 and 2 degrees of freedom, from the tail's power law at other fewer
  than 3). The regularized incomplete beta ``I`` is the continued fraction of Numerical
  Recipes' ``betacf`` (modified Lentz), with ``math.lgamma``.

tests/stats/test_quantiles.py holds both to scipy's ``stdtrit`` and ``ndtri`` for tails from
10⁻¹² to 1/2: the t quantile agrees to 1e-12 (relative) up to 1,000 degrees of freedom,
1e-10 up to 10⁵ and 1e-8 up to 10⁷, as ``lgamma``'s large values cancel in the tail's
constant (a report shows four digits). Down to 10⁻³⁰⁰, where scipy's drifts, it holds the
closed forms at 1 and 2 degrees of freedom and the tail's power law; a quantile beyond the
largest double is infinite. The edges (0, 1, NaN, df <= 0 or infinite) are scipy's.
"""

from __future__ import annotations

import math
import sys
from statistics import NormalDist

__all__ = ["normal_quantile", "t_quantile"]

_NORMAL = NormalDist()
_EPS = 1e-15  # the continued fraction stops when a step changes it by less
_TINY = 1e-300  # Lentz's guard against a zero denominator
_MAX_TERMS = 100_000  # ~sqrt(df) are needed; far more means no convergence
_MAX_STEPS = 100
_LOG_MAX = math.log(sys.float_info.max)


def normal_quantile(p: float) -> float:
    """The standard normal quantile of ``p`` (``scipy.special.ndtri``: -inf at 0, inf at 1,
    NaN outside [0, 1])."""
    if 0.0 < p < 1.0:
        return _NORMAL.inv_cdf(p)
    return _edge(p)


def t_quantile(df: float, p: float) -> float:
    """Student's t quantile of ``p`` with ``df`` degrees of freedom (``scipy.special.stdtrit``:
    the normal quantile for infinite ``df``; -inf at 0, inf at 1; NaN outside [0, 1] or for
    ``df`` <= 0). An interval at ``alpha`` 0 is infinite rather than an error, as it was."""
    if not df > 0:  # NaN too
        return math.nan
    if math.isinf(df):
        return normal_quantile(p)
    if not 0.0 < p < 1.0:
        return _edge(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_upper_point(df, p)
    return _upper_point(df, 1.0 - p)


def _edge(p: float) -> float:
    # scipy's stdtrit(df, 0) is +inf; the quantile at 0 is -inf, as ndtri(0) has it.
    return -math.inf if p == 0.0 else math.inf if p == 1.0 else math.nan


def _upper_point(df: float, tail: float) -> float:
    """The t > 0 whose upper tail is ``tail`` (< 1/2): Newton's method on log(tail) as a
    function of u = log(t), which is nearly a line in the far tail (slope -df), so heavy
    tails converge as fast as light ones. Everything is kept in logs: at 10⁻³⁰⁰ and one
    degree of freedom t is 3e299, and t² would overflow."""
    log_df = math.log(df)
    # log 1/B(df/2, 1/2): the incomplete beta's constant, and the density's with 1/sqrt(df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - math.lgamma(0.5)
    log_scale = log_norm - 0.5 * log_df
    if df == 1:  # Cauchy: exact
        u = -math.log(math.tan(math.pi * tail))
    elif df == 2:  # exact
        u = math.log((1.0 - 2.0 * tail) / math.sqrt(2.0 * tail * (1.0 - tail)))
    elif df < 3:  # so heavy a tail that its power law (t^-df) is the better start
        u = (log_scale + (df - 1) / 2 * log_df - math.log(tail)) / df
    else:  # the normal point with Cornish-Fisher's first two terms: Newton then polishes
        z = -_NORMAL.inv_cdf(tail)
        u = math.log(z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df))
    target = math.log(tail)
    for _ in range(_MAX_STEPS):
        log_ratio = 2 * u - log_df  # log(t²/df)
        log_upper = _log_upper_tail(df, log_norm, log_ratio)
        log_pdf = log_scale - (df + 1) / 2 * _softplus(log_ratio)
        # d log(upper) / d u = -t * pdf / upper
        step = (log_upper - target) * math.exp(log_upper - u - log_pdf)
        u += step
        # Newton's error after a step is about the step squared: once a step is this
        # small, t is as exact as the tail it was computed from.
        if abs(step) <= 1e-10:
            return math.exp(u) if u < _LOG_MAX else math.inf  # past the largest double
    raise ArithmeticError(f"t_quantile did not converge for df={df}, tail={tail}")


def _softplus(z: float) -> float:
    """log(1 + e^z), without overflow."""
    return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))


def _log_upper_tail(df: float, log_norm: float, log_ratio: float) -> float:
    """log P(T > t) for t >= 0, from log(t²/df): ``0.5 * I_x(df/2, 1/2)`` with
    x = df/(df+t²) and y = 1-x = t²/(df+t²), both from their logs, so neither loses
    digits to a subtraction nor overflows. ``log_norm`` is log 1/B(df/2, 1/2)."""
    log_x, log_y = -_softplus(log_ratio), -_softplus(-log_ratio)
    a, b = df / 2, 0.5
    log_front = log_norm + a * log_x + b * log_y
    x, y = math.exp(log_x), math.exp(log_y)
    # The fraction converges fast on this side of the mean; the other side by symmetry.
    if x < (a + 1) / (a + b + 2):
        log_beta = log_front + math.log(_beta_fraction(a, b, x) / a)
    else:
        log_beta = math.log1p(-math.exp(log_front) * _beta_fraction(b, a, y) / b)
    return math.log(0.5) + log_beta


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes' ``betacf``, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"the incomplete beta's fraction did not converge (a={a}, b={b})")
