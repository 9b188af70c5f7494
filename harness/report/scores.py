"""Each metric's and judge's mean with its 95% interval, its distribution, and what the
judges say about themselves (self-agreement) and about people (calibration).

Means and intervals are ``harness.stats.estimate_mean`` over each run's per-row scores
(``harness.store.scores``): the same numbers ``harness compare`` shows for a run's mean.
A distribution is drawn as bars for a judge's answers (yes/no, a 1-5 scale, labels), for
0/1 scores and for small whole-number scales, and as a histogram otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.metrics import metric_direction
from harness.numbers import mean_ci, number
from harness.report.rows import stored_directions
from harness.report.svg import Series, bars, histogram, matrix
from harness.slices.per_row import JudgeSamples
from harness.stats import MeanEstimate, estimate_mean
from harness.store.scores import ERRORS

if TYPE_CHECKING:
    from harness.report.rows import ReportRun
    from harness.store.calibrations import StoredCalibration

__all__ = ["JudgeView", "MetricView", "judge_views", "metric_views", "report_metrics"]

ONE_ROW = "one row: an interval needs two or more"
MAX_BAR_VALUES = 12  # more distinct whole numbers than this: a histogram


@dataclass
class MeanCell:
    """One run's mean of one metric."""

    estimate: MeanEstimate
    missing: int  # the run's rows with no score (failed rows, failed judge calls)

    @property
    def text(self) -> str:
        e = self.estimate
        return mean_ci(e.mean, e.low, e.high)

    @property
    def note(self) -> str | None:
        """Why the mean has no interval: its rows have no spread, or it is one row's score
        (the words of ``harness compare`` and of a slice's ``--json``); None if it has one."""
        e = self.estimate
        if e.interval_note:
            return e.interval_note
        return ONE_ROW if e.n == 1 and not math.isfinite(e.low) else None


@dataclass
class MetricView:
    """A metric (or judge) across the report's runs: means and one distribution plot."""

    metric: str
    judge: bool
    direction: int
    cells: list[MeanCell | None]  # per run; None: the run has no such metric
    plot: str


def report_metrics(runs: Sequence[ReportRun]) -> list[str]:
    """Every metric and judge of the runs, in the order the first run asked for them."""
    names: list[str] = []
    for run in runs:
        names += [m for m in run.scores.order if m != ERRORS and m not in names]
    return names


def metric_views(runs: Sequence[ReportRun], metrics: Sequence[str]) -> list[MetricView]:
    known = stored_directions(runs)
    views = []
    for metric in metrics:
        judge = any(metric in run.scores.judges for run in runs)
        cells: list[MeanCell | None] = []
        series = []
        for run in runs:
            column = run.scores.columns.get(metric)
            if column is None:
                cells.append(None)
                continue
            scored = column[~np.isnan(column)]
            estimate = estimate_mean(
                scored,
                binary=metric in run.scores.binary,
                bounds=run.scores.bounds.get(metric),
            )
            cells.append(MeanCell(estimate, int(len(column) - len(scored))))
            series.append(Series(run.label, scored.tolist(), estimate.mean, estimate.low,
                                 estimate.high))  # fmt: skip
        label = f"distribution of {metric}"
        plot = _judge_bars(runs, metric, label) if judge else _distribution(series, label)
        views.append(MetricView(metric, judge, metric_direction(metric, known), cells, plot))
    return views


def _distribution(series: list[Series], label: str) -> str:
    values = [v for s in series for v in s.values]
    distinct = sorted(set(values))
    if values and set(distinct) <= {0.0, 1.0}:
        distinct = [0.0, 1.0]  # a rate: both bars, even when one is empty
    if values and len(distinct) <= MAX_BAR_VALUES and all(float(v).is_integer() for v in values):
        categories = [number(v) for v in distinct]
        counts = []
        for s in series:
            tally = Counter(s.values)
            counts.append((s.name, [tally[v] for v in distinct]))
        return bars(categories, counts, label)
    return histogram(series, label)


def _judge_bars(runs: Sequence[ReportRun], judge: str, label: str) -> str:
    """Bars over the judge's answers, worst to best, counting every sample's answer, and
    a bar of answers that failed (a call error or an answer with no verdict)."""
    order: list[str] = []
    for run in runs:
        known = (run.record.info.config.get("judge_labels") or {}).get(judge)
        if known:
            order = [str(k) for k in known]
            break
    answers = [(run.label, run.scores.samples.get(judge, JudgeSamples())) for run in runs]
    if not order:  # a run from before the labels were stored: the answers seen, by value
        seen: dict[str, float] = {}
        for _, mine in answers:
            for answer, value in mine.seen.items():
                seen.setdefault(answer, value)
        order = sorted(seen, key=lambda a: (seen[a], a))
    failed = [mine.failed for _, mine in answers]
    categories = order + (["failed"] if any(failed) else [])
    counts = []
    for (name, mine), n_failed in zip(answers, failed, strict=True):
        tally = mine.labels
        counts.append((name, [tally[a] for a in order] + ([n_failed] if any(failed) else [])))
    return bars(categories, counts, label, unit="answers")


@dataclass
class JudgeRunView:
    """One judge in one run: how often it failed, how much it agrees with itself (with
    several samples per row) and with people (its newest calibration)."""

    run: str
    samples: int
    answers: int
    failed: int
    agreement: dict[str, Any] | None = None  # mean agreement, std, rows that disagree
    agreement_plot: str | None = None
    calibration: StoredCalibration | None = None
    calibration_plot: str | None = None


@dataclass
class JudgeView:
    judge: str
    runs: list[JudgeRunView] = field(default_factory=list)


def judge_views(
    runs: Sequence[ReportRun], calibrations: Sequence[Sequence[StoredCalibration]]
) -> list[JudgeView]:
    """One view per judge of any run; ``calibrations`` has each run's calibrations."""
    from harness.judges.variance import repeated_stats

    views: dict[str, JudgeView] = {}
    for run, calibrated in zip(runs, calibrations, strict=True):
        if not run.scores.judges:
            continue
        samples = int(run.record.info.config.get("judge_samples") or 1)
        for judge in [m for m in run.scores.order if m in run.scores.judges]:
            mine = run.scores.samples[judge]
            view = JudgeRunView(run=run.label, samples=samples, answers=mine.answers,
                                failed=mine.failed)  # fmt: skip
            if samples > 1 and mine.repeated:
                lengths = [len(values) for values in mine.repeated]
                rows = repeated_stats(
                    np.repeat(np.arange(len(lengths)), lengths),
                    np.array([v for values in mine.repeated for v in values], dtype=float),
                )
                agreement = rows["agreement"].tolist()
                view.agreement = {
                    "rows": len(agreement),
                    "agreement": float(np.mean(rows["agreement"])),
                    "std": float(np.mean(rows["std"])),
                    "disagree": int(rows["self_disagreement"].sum()),
                }
                shares = Counter(float(a) for a in agreement)
                levels = sorted(shares, reverse=True)
                view.agreement_plot = bars(
                    [f"{a:.0%}" for a in levels],
                    [(run.label, [shares[a] for a in levels])],
                    f"{judge}: share of samples giving the row's most common answer",
                )
            found = next((c for c in calibrated if c.judge == judge), None)
            if found is not None:
                view.calibration = found
                view.calibration_plot = matrix(
                    found.labels, found.confusion, f"{judge}: human labels against the judge"
                )
            views.setdefault(judge, JudgeView(judge)).runs.append(view)
    return list(views.values())
