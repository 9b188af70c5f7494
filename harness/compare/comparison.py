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

A scale whose changes have no spread takes its p-value and interval from the exact sign
test (``harness.stats.paired``): on too few rows it has no interval and can be better,
worse or changed, never "no detectable difference".

The margin is ``--margin`` (or a check gate's allowed drop); by default 0.02 for scores
that lie in [0, 1] (rates, F1, ROUGE, yes/no judges), else 5% of the base run's mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from harness.compare.definitions import redefined
from harness.compare.paired import (
    Margin,
    metric_result,
    parse_margin,
    shared_bounds,
    with_verdict,
)
from harness.compare.result import CandidateResult, Comparison, MetricResult, metric_notes
from harness.compare.rows import flipped_rows
from harness.compare.slices import compare_slices
from harness.compare.sources import (
    ERRORS,
    LoadedRun,
    RunScores,
    check_cluster,
    cluster_ids,
    run_scores,
)
from harness.errors import ConfigError, DataError
from harness.metrics import metric_direction
from harness.slices import DEFAULT_MAX_VALUES, check_by
from harness.stats import DEFAULT_ALPHA, DEFAULT_POWER, holm
from harness.wording import plural

__all__ = ["DEFAULT_ROWS", "Margin", "compare", "parse_margin"]

DEFAULT_ROWS = 10  # flipped rows shown per candidate


# How the note on runs of two datasets, or two versions of one, begins: loud on every
# surface, and a warning of check's (``CandidateResult.datasets_note``).
DATASET_NOTES = ("DATASETS DIFFER", "DATASET VERSIONS DIFFER")


def compare(
    base: LoadedRun,
    candidates: Sequence[LoadedRun],
    *,
    cluster: str | None = None,
    margins: Mapping[str | None, Margin] | None = None,
    rows: int = DEFAULT_ROWS,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    by: Sequence[str] = (),
    max_slices: int = DEFAULT_MAX_VALUES,
    known_margins: bool = True,
) -> Comparison:
    """Compare each candidate with ``base`` (see the module docstring), and with ``by``
    on the rows of each value of those columns too (``harness.compare.slices``).

    ``margins`` maps a metric name (or None, for every metric) to its margin. Raises
    DataError when a candidate shares no example id with the base, ConfigError for a
    margin on a metric the base has no scores for (unless not ``known_margins``: check's
    gates, which judge a baseline that lacks a metric themselves), a ``cluster`` or ``by``
    column no row has, or a ``by`` column with more than ``max_slices`` values.
    """
    if not candidates:
        raise ConfigError("compare needs a base run and at least one candidate")
    check_by(by)
    check_cluster(cluster)
    margins = dict(margins or {})
    base_scores = run_scores(base)
    # A margin for a metric the base lacks would be silently unused (a typo, say): refused,
    # as check refuses a gate on a metric the candidate has no scores for.
    for metric in margins if known_margins else ():
        if metric is not None and metric not in base_scores.values.columns:
            raise ConfigError(
                f"--margin {metric}: the base has no {metric!r} scores; "
                f"it has {', '.join(base_scores.order)}"
            )
    results: list[CandidateResult] = []
    for candidate in candidates:
        results.append(
            _compare_one(
                base,
                base_scores,
                candidate,
                cluster,
                margins,
                rows,
                alpha,
                power,
                by,
                max_slices,
            )  # fmt: skip
        )
    # Holm across every metric of every candidate: the chance of any false better/worse.
    adjusted = iter(holm([m.stats.p_value for c in results for m in c.metrics]))
    for c in results:
        c.metrics = [with_verdict(m, next(adjusted), alpha) for m in c.metrics]
    # The slices are a family of their own: every slice, metric and candidate together.
    adjusted = iter(holm([m.stats.p_value for c in results for s in c.slices for m in s.metrics]))
    for c in results:
        c.slices = [
            replace(s, metrics=[with_verdict(m, next(adjusted), alpha) for m in s.metrics])
            for s in c.slices
        ]
    notes = list(base.notes)
    return Comparison(base.ref, results, alpha, power, cluster, notes, by=list(dict.fromkeys(by)))


def _compare_one(
    base: LoadedRun,
    base_scores: RunScores,
    candidate: LoadedRun,
    cluster: str | None,
    margins: Mapping[str | None, Margin],
    rows: int,
    alpha: float,
    power: float,
    by: Sequence[str],
    max_slices: int,
) -> CandidateResult:
    scores = run_scores(candidate)
    common = base_scores.rows.index.intersection(scores.rows.index, sort=False)
    notes = list(candidate.notes) + _pairing_notes(base, candidate, base_scores, scores, common)
    datasets = next((n for n in notes if n.startswith(DATASET_NOTES)), None)
    if len(common) == 0:
        raise DataError(_nothing_paired(base, candidate, base_scores, scores))
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
    # A name both runs scored may stand for two checks: a table edited between the runs.
    changed = redefined(base.record.info.config, candidate.record.info.config, shared)
    notes += list(changed.values())
    metrics: list[MetricResult] = []
    for metric in shared:
        b = base_scores.values.loc[common, metric].to_numpy()
        c = scores.values.loc[common, metric].to_numpy()
        if metric == ERRORS and not (b.any() or c.any()):
            continue  # no row failed in either run: nothing to say
        direction = metric_direction(metric, {**base_scores.directions, **scores.directions})
        binary = metric in base_scores.binary and metric in scores.binary
        metrics.append(
            metric_result(
                metric,
                direction,
                b,
                c,
                groups,
                margins,
                alpha,
                power,
                binary=binary,
                bounds=shared_bounds(metric, base_scores, scores),
            )  # fmt: skip
        )
    # A metric on one row, or whose rows all changed alike on too few rows for an interval:
    # say why its cell is empty; 0/1 scores whose adjusted Wald interval was widened to 0.
    notes += metric_notes(metrics)
    slices = []
    if by:
        slices = compare_slices(
            by, base_scores, scores, common, metrics, groups,
            max_values=max_slices, alpha=alpha, power=power,
        )  # fmt: skip
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
        slices=slices,
        redefined=changed,
        datasets_note=datasets,
    )


def _nothing_paired(
    base: LoadedRun, candidate: LoadedRun, base_scores: RunScores, scores: RunScores
) -> str:
    """Why no row pairs: a run stopped before its first row has none (its eval set may well
    be the other's), else the two runs have no example id in common."""
    for run, held in ((candidate, scores), (base, base_scores)):
        if len(held.rows) == 0:
            info = run.record.info
            return (
                f"{run.ref.label} has no rows to compare: run {info.run_id} is {info.status}, "
                f"with 0 of {info.rows_total:,} rows done"
            )
    return (
        f"{candidate.ref.label} and {base.ref.label} share no example id: "
        "they are not runs of the same eval set"
    )


def _pairing_notes(
    base: LoadedRun,
    candidate: LoadedRun,
    base_scores: RunScores,
    scores: RunScores,
    common: object,
) -> list[str]:
    b, c = base.ref, candidate.ref
    n_common = len(common)  # type: ignore[arg-type]
    sampled = _sample_note(base, candidate, len(base_scores.rows), len(scores.rows), n_common)
    if (b.dataset, b.dataset_version) == (c.dataset, c.dataset_version):
        if sampled:
            return [sampled]
        if n_common < max(len(base_scores.rows), len(scores.rows)):
            return [
                f"paired on the {plural(n_common, 'row')} both runs have "
                f"(base {len(base_scores.rows):,}, candidate {len(scores.rows):,})"
            ]
        return []
    what = DATASET_NOTES[0] if b.dataset != c.dataset else DATASET_NOTES[1]
    return [
        f"{what}: base {b.dataset}@{b.dataset_version} ({plural(len(base_scores.rows), 'row')})"
        f", candidate {c.dataset}@{c.dataset_version} ({plural(len(scores.rows), 'row')}); "
        f"paired on the {plural(n_common, 'example id')} both have. Rows with the same id may "
        "not be the same question: check the flipped rows' inputs",
        *([sampled] if sampled else []),
    ]


def _sample_note(
    base: LoadedRun, candidate: LoadedRun, n_base: int, n_candidate: int, n_common: int
) -> str | None:
    """What comparing sampled runs means: loud unless both ran the very same rows."""
    from harness.sampling import describe_sample

    samples = (base.record.info.sample, candidate.record.info.sample)
    if not any(samples):
        return None
    if samples[0] and n_common == n_base == n_candidate:
        return f"both runs are the same sample: {describe_sample(samples[0])}"
    sides = [
        f"{role} is a sample of {describe_sample(sample)}"
        if sample
        else f"{role} has {plural(n, 'row')}"
        for role, sample, n in zip(
            ("base", "candidate"), samples, (n_base, n_candidate), strict=True
        )
    ]
    return (
        f"SAMPLES: {'; '.join(sides)}; compared on the {n_common:,} rows both have, and only on "
        "those"
    )
