"""``harness compare``: candidates against a base run, metric by metric, with honest statistics.

Rows are paired by example id. Each metric's per-row differences go through
``harness.stats.paired_difference``; the p-values of every metric and candidate are adjusted
together (Holm), and each metric gets a verdict:

- **better** / **worse**: the adjusted p-value is below alpha, and the candidate moved the
  good way (up, or down for a metric where lower is better) / the bad way;
- **no detectable difference**: not significant, and the whole interval lies within the
  margin that matters: any true difference is smaller than that;
- **inconclusive**: not significant, but the interval reaches past the margin: these rows
  cannot tell a difference that matters from none;
- **changed**: a significant move of a metric with no better direction (word count).

The margin is ``--margin`` (or a check gate's allowed drop); by default 0.02 for scores
that lie in [0, 1] (rates, F1, ROUGE, yes/no judges), else 5% of the base run's mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.compare.result import (
    BETTER,
    CHANGED,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    WORSE,
    CandidateResult,
    Comparison,
    MetricResult,
)
from harness.compare.rows import flipped_rows
from harness.compare.sources import ERRORS, LoadedRun, RunScores, cluster_ids, run_scores
from harness.errors import ConfigError, DataError
from harness.metrics import metric_direction
from harness.stats import DEFAULT_ALPHA, DEFAULT_POWER, holm, paired_difference

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_ROWS", "Margin", "compare", "parse_margin"]

DEFAULT_ROWS = 10  # flipped rows shown per candidate
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
    raw = raw.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        raise ConfigError(f"--margin expects [METRIC=]VALUE[%], got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--margin must be a number >= 0, got {text!r}")
    return (metric.strip() or None) if sep else None, Margin(value, percent)


def compare(
    base: LoadedRun,
    candidates: Sequence[LoadedRun],
    *,
    cluster: str | None = None,
    margins: Mapping[str | None, Margin] | None = None,
    rows: int = DEFAULT_ROWS,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> Comparison:
    """Compare each candidate with ``base`` (see the module docstring).

    ``margins`` maps a metric name (or None, for every metric) to its margin. Raises
    DataError when a candidate shares no example id with the base, ConfigError for a
    ``cluster`` column no row has.
    """
    if not candidates:
        raise ConfigError("compare needs a base run and at least one candidate")
    margins = dict(margins or {})
    base_scores = run_scores(base)
    results: list[CandidateResult] = []
    for candidate in candidates:
        results.append(
            _compare_one(base, base_scores, candidate, cluster, margins, rows, alpha, power)
        )
    # Holm across every metric of every candidate: the chance of any false better/worse.
    adjusted = iter(holm([m.stats.p_value for c in results for m in c.metrics]))
    for c in results:
        c.metrics = [_with_verdict(m, next(adjusted), alpha) for m in c.metrics]
    notes = list(base.notes)
    return Comparison(base.ref, results, alpha, power, cluster, notes)


def _compare_one(
    base: LoadedRun,
    base_scores: RunScores,
    candidate: LoadedRun,
    cluster: str | None,
    margins: Mapping[str | None, Margin],
    rows: int,
    alpha: float,
    power: float,
) -> CandidateResult:
    scores = run_scores(candidate)
    common = base_scores.rows.index.intersection(scores.rows.index, sort=False)
    notes = list(candidate.notes) + _pairing_notes(base, candidate, base_scores, scores, common)
    if len(common) == 0:
        raise DataError(
            f"{candidate.ref.label} and {base.ref.label} share no example id: "
            "they are not runs of the same eval set"
        )
    groups = cluster_ids(base_scores.rows.loc[common], cluster) if cluster else None
    shared = [m for m in scores.order if m in base_scores.values.columns]
    only_base = [m for m in base_scores.order if m not in scores.values.columns]
    only_candidate = [m for m in scores.order if m not in base_scores.values.columns]
    if only_base or only_candidate:
        notes.append(
            "not compared: "
            + "; ".join(
                f"only in {side}: {', '.join(names)}"
                for side, names in (("base", only_base), ("candidate", only_candidate))
                if names
            )
        )
    metrics: list[MetricResult] = []
    for metric in shared:
        b = base_scores.values.loc[common, metric].to_numpy()
        c = scores.values.loc[common, metric].to_numpy()
        if metric == ERRORS and not (b.any() or c.any()):
            continue  # no row failed in either run: nothing to say
        direction = metric_direction(metric, {**base_scores.directions, **scores.directions})
        metrics.append(_metric(metric, direction, b, c, groups, margins, alpha, power))
    margin_of = {m.metric: m.margin for m in metrics}
    regressions, improvements = flipped_rows(base_scores, scores, common, margin_of, limit=rows)
    return CandidateResult(
        run=candidate.ref,
        paired=len(common),
        base_only=len(base_scores.rows) - len(common),
        candidate_only=len(scores.rows) - len(common),
        metrics=metrics,
        regressions=regressions.rows,
        improvements=improvements.rows,
        regressions_total=regressions.total,
        improvements_total=improvements.total,
        notes=notes,
    )


def _metric(
    metric: str,
    direction: int,
    base: np.ndarray,
    candidate: np.ndarray,
    groups: object,
    margins: Mapping[str | None, Margin],
    alpha: float,
    power: float,
) -> MetricResult:
    import numpy as np
    import pandas as pd

    both = ~(np.isnan(base) | np.isnan(candidate))
    clusters = None
    if isinstance(groups, pd.Series):
        clusters = groups.to_numpy()[both]
    stats = paired_difference(
        base[both], candidate[both], clusters=clusters, alpha=alpha, power=power
    )
    direction = -1 if metric == ERRORS else direction
    margin_spec = margins.get(metric) or margins.get(None)
    if margin_spec is not None:
        margin, rule = margin_spec.resolve(stats.base.mean)
    else:
        if _unit_scale(metric, np.concatenate([base[both], candidate[both]])):
            margin, rule = DEFAULT_UNIT_MARGIN, "default for scores in [0, 1]"
        else:
            margin = abs(stats.base.mean) * DEFAULT_RELATIVE_MARGIN / 100
            rule = f"default: {DEFAULT_RELATIVE_MARGIN:g}% of the base mean"
    return MetricResult(
        metric=metric,
        direction=direction,
        margin=margin,
        margin_rule=rule,
        stats=stats,
        missing=int(base.size - both.sum()),
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


def _with_verdict(result: MetricResult, p_adjusted: float, alpha: float) -> MetricResult:
    from dataclasses import replace

    return replace(result, p_adjusted=p_adjusted, verdict=verdict(result, p_adjusted, alpha))


def verdict(result: MetricResult, p_adjusted: float, alpha: float) -> str:
    """better / worse / changed / no detectable difference / inconclusive (see the module)."""
    stats = result.stats
    if math.isnan(p_adjusted) or math.isnan(stats.low):
        return INCONCLUSIVE
    if p_adjusted < alpha and stats.diff != 0:
        if result.direction == 0:
            return CHANGED
        return BETTER if stats.diff * result.direction > 0 else WORSE
    if -result.margin <= stats.low and stats.high <= result.margin:
        return NO_DIFFERENCE
    return INCONCLUSIVE


def _pairing_notes(
    base: LoadedRun,
    candidate: LoadedRun,
    base_scores: RunScores,
    scores: RunScores,
    common: object,
) -> list[str]:
    b, c = base.ref, candidate.ref
    n_common = len(common)  # type: ignore[arg-type]
    if (b.dataset, b.dataset_version) == (c.dataset, c.dataset_version):
        if n_common < max(len(base_scores.rows), len(scores.rows)):
            return [
                f"paired on the {n_common} rows both runs have "
                f"(base {len(base_scores.rows)}, candidate {len(scores.rows)})"
            ]
        return []
    what = "DATASETS DIFFER" if b.dataset != c.dataset else "DATASET VERSIONS DIFFER"
    return [
        f"{what}: base {b.dataset}@{b.dataset_version} ({len(base_scores.rows)} rows), "
        f"candidate {c.dataset}@{c.dataset_version} ({len(scores.rows)} rows); paired on "
        f"the {n_common} example ids both have. Rows with the same id may not be the "
        "same question: check the flipped rows' inputs"
    ]
