"""One metric of one pairing: the margin that matters, the paired difference, the verdict.

``compare`` (over all rows) and ``compare --by`` (per slice) both compare a metric through
``metric_result`` and give it its verdict with ``with_verdict`` once the p-values of the
family are adjusted (see ``harness.compare.comparison`` for what each verdict means).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.compare.result import (
    BETTER,
    CHANGED,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    ONE_ROW_CHANGE,
    ONE_ROW_MEAN,
    WORSE,
    MetricResult,
)
from harness.compare.sources import ERRORS, RunScores
from harness.errors import ConfigError
from harness.stats import paired_difference

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_RELATIVE_MARGIN",
    "DEFAULT_UNIT_MARGIN",
    "Margin",
    "metric_result",
    "parse_margin",
    "shared_bounds",
    "verdict",
    "with_verdict",
]

DEFAULT_UNIT_MARGIN = 0.02  # for scores in [0, 1]: two points
DEFAULT_RELATIVE_MARGIN = 5.0  # percent of the base mean, for any other scale


@dataclass(frozen=True)
class Margin:
    """The smallest difference that matters: ``value`` in the metric's units, or in percent
    of the base run's mean when ``percent``."""

    value: float
    percent: bool = False
    origin: str = "--margin"

    def resolve(self, base_mean: float) -> tuple[float, str]:
        if self.percent:
            return abs(base_mean) * self.value / 100, f"{self.value:g}% of the base mean"
        return self.value, self.origin


def parse_margin(text: str) -> tuple[str | None, Margin]:
    """``[METRIC=]VALUE[%]`` -> (metric or None for every metric, margin)."""
    metric, sep, raw = text.rpartition("=")
    raw, metric = raw.strip(), metric.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%"))
        if sep and not metric:  # `--margin "$M=0.1"`, unset: not every metric's margin
            raise ValueError(text)
    except ValueError:
        raise ConfigError(f"--margin expects [METRIC=]VALUE[%], got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--margin must be a number >= 0, got {text!r}")
    return metric if sep else None, Margin(value, percent)


def shared_bounds(metric: str, base: RunScores, candidate: RunScores) -> tuple[float, float] | None:
    """The range both runs' scores of ``metric`` lie in, when both declare one (the wider
    ends, should a judge's scale differ between them); None otherwise."""
    one, two = base.bounds.get(metric), candidate.bounds.get(metric)
    if one is None or two is None:
        return None
    return min(one[0], two[0]), max(one[1], two[1])


def metric_result(
    metric: str,
    direction: int,
    base: np.ndarray,
    candidate: np.ndarray,
    groups: object,
    margins: Mapping[str | None, Margin],
    alpha: float,
    power: float,
    *,
    binary: bool,
    bounds: tuple[float, float] | None = None,
) -> MetricResult:
    """``metric`` compared on paired rows (``base[i]``, ``candidate[i]``; NaN: no score,
    left out with its pair), read in ``direction`` (+1 higher is better, -1 lower, 0
    neither; the failed-rows count is always -1), with its margin: ``margins[metric]``,
    else ``margins[None]``, else the default for its scale. ``binary``: both runs declare
    the metric's scores 0 or 1 (``RunScores.binary``); ``bounds``: the range both runs'
    scores lie in (``shared_bounds``), where t intervals are cut. The verdict waits for the
    adjusted p-value."""
    import numpy as np
    import pandas as pd

    both = ~(np.isnan(base) | np.isnan(candidate))
    clusters = None
    if isinstance(groups, pd.Series):
        clusters = groups.to_numpy()[both]
    stats = paired_difference(
        base[both],
        candidate[both],
        clusters=clusters,
        alpha=alpha,
        power=power,
        binary=binary,
        bounds=bounds,
    )
    if stats.n == 1:  # no spread to measure: say why every number that needs one is missing
        from dataclasses import replace

        stats = replace(
            stats,
            interval_note=ONE_ROW_CHANGE,
            base=replace(stats.base, interval_note=ONE_ROW_MEAN),
            candidate=replace(stats.candidate, interval_note=ONE_ROW_MEAN),
        )
    direction = -1 if metric == ERRORS else direction
    # The margin comes from the paired scores; with none (a judge that failed on every row
    # of one run), from the base's own, so a gate on it is named by a number, not nan.
    values = np.concatenate([base[both], candidate[both]])
    base_mean = stats.base.mean
    if not values.size:
        values = base[~np.isnan(base)]
        base_mean = float(values.mean()) if values.size else math.nan
    margin_spec = margins.get(metric) or margins.get(None)
    if margin_spec is not None:
        margin, rule = margin_spec.resolve(base_mean)
    else:
        if _unit_scale(metric, values):
            margin, rule = DEFAULT_UNIT_MARGIN, "default for scores in [0, 1]"
        else:
            margin = abs(base_mean) * DEFAULT_RELATIVE_MARGIN / 100
            rule = f"default: {DEFAULT_RELATIVE_MARGIN:g}% of the base mean"
    return MetricResult(
        metric=metric,
        direction=direction,
        margin=margin,
        margin_rule=rule,
        stats=stats,
        missing=int(base.size - both.sum()),
        missing_base=int(np.isnan(base).sum()),
        missing_candidate=int(np.isnan(candidate).sum()),
        p_adjusted=math.nan,
        verdict=INCONCLUSIVE,
    )


def _unit_scale(metric: str, values: np.ndarray) -> bool:
    """Whether ``metric`` is a score in [0, 1] (a rate, F1, ROUGE, a yes/no or labels
    judge), for which a margin of two points means the same everywhere. Latency or word
    counts may happen to lie in [0, 1] too; they get a relative margin."""
    from harness.errors import MetricError
    from harness.metrics import get_metric

    if not values.size or values.min() < 0 or values.max() > 1:
        return False
    if metric == ERRORS or bool(((values == 0) | (values == 1)).all()):
        return True
    try:
        return get_metric(metric).needs_expected  # matching and overlap scores
    except MetricError:
        return True  # a judge's score: labels and yes/no are stored in [0, 1]


def with_verdict(result: MetricResult, p_adjusted: float, alpha: float) -> MetricResult:
    from dataclasses import replace

    return replace(result, p_adjusted=p_adjusted, verdict=verdict(result, p_adjusted, alpha))


def verdict(result: MetricResult, p_adjusted: float, alpha: float) -> str:
    """better / worse / changed / no detectable difference / inconclusive (see the module)."""
    stats = result.stats
    if math.isnan(p_adjusted):
        return INCONCLUSIVE
    if p_adjusted < alpha and stats.diff != 0:
        if result.direction == 0:
            return CHANGED
        return BETTER if stats.diff * result.direction > 0 else WORSE
    # No interval (differences with no spread: the sign test decided above) rules nothing out.
    if math.isnan(stats.low):
        return INCONCLUSIVE
    if -result.margin <= stats.low and stats.high <= result.margin:
        return NO_DIFFERENCE
    return INCONCLUSIVE
