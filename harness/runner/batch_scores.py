"""The end of a run: batch metrics over all its rows, and the aggregates MLflow names.

A :class:`~harness.metrics.BatchMetric` (MLflow's ``eval_fn``) sees every row at once, so it
runs when the rows are done, over what is stored: a resumed run computes it again over all
its rows. Its per-row scores are stored like any metric's; its own aggregates (an
``eval_fn``'s ``aggregate_results``) are reported as it computed them, next to (and over)
harness's mean, p50, p90 and count; for an MLflow ``make_metric``, instead of them, so its
names are MLflow's (``/mean``, ``/variance``, ``/p90`` by default). Metrics and judges from
MLflow also get the extra aggregations they ask for (``variance``, ``median``, ...).

A batch metric that raises is reported, not fatal: the rows and the other metrics are
kept, and the run counts it in ``metric_errors`` (the CLI exits 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.metrics import BatchMetric, Columns, extra_aggregates
from harness.metrics.registry import not_finite
from harness.secrets import scrub_secrets
from harness.store.rows import ScoreRow
from harness.wording import plural

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from harness.runner.plan import RunPlan
    from harness.store.datasets import Example

__all__ = [
    "BatchOutcome",
    "EndScores",
    "FinalScores",
    "add_extra_aggregates",
    "end_scores",
    "final_scores",
    "score_batches",
]


@dataclass
class BatchOutcome:
    """What the batch metrics found: rows to store, aggregates, and the ones that failed."""

    rows: list[ScoreRow] = field(default_factory=list)
    aggregates: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # one line each


@dataclass
class FinalScores:
    """A finished run's scores and aggregates, and what went wrong in its metrics."""

    scores: pd.DataFrame
    metrics: dict[str, dict[str, float]]
    problems: list[str]  # one line each: a batch metric that raised, rows a metric raised on
    errors: int  # rows a metric raised on, plus batch metrics that raised


def final_scores(plan: RunPlan, run_id: str, outputs: pd.DataFrame | None) -> FinalScores:
    """Batch metrics over the stored rows (``outputs``, read for them), then every
    aggregate, from what is stored."""
    from harness.runner.summary import aggregate_scores
    from harness.store import runs as run_store

    db = plan.home.db_path
    scores = run_store.load_score_values(db, run_id)
    metrics = aggregate_scores(scores)
    problems: list[str] = []  # batch metrics that raised, then the rows metrics raised on
    if plan.batch:
        assert outputs is not None, "batch metrics read the stored rows"
        outcome = score_batches(plan.batch, plan.examples, outputs, scores, metrics)
        run_store.replace_scores(db, run_id, [m.name for m in plan.batch], outcome.rows)
        scores = run_store.load_score_values(db, run_id)
        metrics = aggregate_scores(scores)
        from_mlflow = {m.name for m in plan.batch if m.origin == "mlflow"}
        for name, aggregates in outcome.aggregates.items():
            if name not in from_mlflow:
                metrics.setdefault(name, {}).update(aggregates)
        for name in from_mlflow:  # MLflow logs its aggregate_results, and only those: none
            # for text scores ("yes"/"no"), where harness's own would be a count of 0
            if name in outcome.aggregates:
                metrics[name] = dict(outcome.aggregates[name])
            else:
                metrics.pop(name, None)
        problems += outcome.failures
    add_extra_aggregates(metrics, scores, _asked(plan))
    failed_rows = (
        int((scores["error"].notna() & (scores["source"] == "code")).sum()) if len(scores) else 0
    )
    errors = failed_rows + len(problems)
    problems += _raised_on(failed_rows)
    return FinalScores(scores, metrics, problems, errors)


def _raised_on(failed_rows: int) -> list[str]:
    if not failed_rows:
        return []
    return [f"metrics raised on {plural(failed_rows, 'row')}; see the scores' error column"]


def _asked(plan: RunPlan) -> dict[str, Sequence[Any]]:
    """The extra aggregations each metric or judge asked for, by its name."""
    return {m.name: m.aggregations for m in [*plan.metrics, *plan.judges] if m.aggregations}


def score_batches(
    metrics: Sequence[BatchMetric],
    examples: Sequence[Example],
    outputs: pd.DataFrame,
    scores: pd.DataFrame,
    aggregates: dict[str, dict[str, float]],
) -> BatchOutcome:
    """Run each batch metric once over the rows that have an output, in order.

    ``scores`` and ``aggregates`` are the run's row metrics and judges so far: an
    ``eval_fn`` asking for ``metrics`` (or another metric by name) receives them, and the
    batch metrics computed before it.
    """
    outcome = BatchOutcome()
    if not metrics:
        return outcome
    answered = outputs[outputs["output"].notna()] if len(outputs) else outputs
    by_id = {e.id: e for e in examples}
    ids = [str(i) for i in answered["id"]] if len(answered) else []
    rows = [by_id[i] for i in ids]
    per_row: dict[str, list[float | None]] = {}
    if len(scores):
        means = scores.groupby(["metric", "example_id"])["value"].mean()
        for name in scores["metric"].unique():
            values = means.loc[name]
            per_row[str(name)] = [_number(values.get(i)) for i in ids]
    columns = Columns(
        ids=ids,
        inputs=[e.input for e in rows],
        outputs=[str(o) for o in answered["output"]] if len(answered) else [],
        expected=[e.expected for e in rows],
        contexts=[e.context for e in rows],
        extra={key: [e.extra.get(key) for e in rows] for key in _extra_keys(rows)},
        scores=per_row,
        aggregates={k: dict(v) for k, v in aggregates.items()},
    )
    for metric in metrics:
        try:
            found = metric.fn(columns) if ids else None
        # SystemExit too: a library calling sys.exit() in the user's eval_fn ended harness
        # with that code and not a word.
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's eval_fn: reported
            said = scrub_secrets(str(e)).strip()  # the user's message may hold a key
            first = said.splitlines()[0] if said else ""
            outcome.failures.append(f"metric {metric.name!r} raised {type(e).__name__}: {first}")
            continue
        if found is None:
            continue
        if found.scores is not None:
            values = list(found.scores)
            for n, example_id in enumerate(ids):
                value, error = values[n], None
                if value is not None and math.isinf(value):
                    # That row's error, as a per-row metric's inf is: no mean can hold it.
                    error, value = not_finite(metric.name, value), None
                    values[n] = None
                outcome.rows.append(
                    ScoreRow(
                        example_id,
                        metric.name,
                        value,
                        label=found.labels[n] if found.labels else None,
                        rationale=found.rationales[n] if found.rationales else None,
                        error=error,
                    )
                )
            columns.scores[metric.name] = values
        if found.aggregates:
            outcome.aggregates[metric.name] = dict(found.aggregates)
            columns.aggregates[metric.name] = dict(found.aggregates)
    return outcome


def add_extra_aggregates(
    metrics: dict[str, dict[str, float]], scores: pd.DataFrame, asked: dict[str, Sequence[Any]]
) -> None:
    """Add the extra aggregations (MLflow's ``variance``, ...) each metric or judge asked for."""
    if not asked or not len(scores):
        return
    per_row = scores.dropna(subset=["value"]).groupby(["metric", "example_id"])["value"].mean()
    for name, aggregations in asked.items():
        if name in metrics and aggregations and name in per_row.index.get_level_values(0):
            metrics[name].update(extra_aggregates(per_row.loc[name].tolist(), aggregations))


def _extra_keys(rows: Sequence[Example]) -> list[str]:
    keys: dict[str, None] = {}
    for example in rows:
        keys.update(dict.fromkeys(example.extra))
    return list(keys)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


@dataclass
class EndScores:
    """What a run's end reports of its scores (``end_scores``)."""

    outputs: pd.DataFrame | None  # the rows' text, read only when something needs it
    scores: pd.DataFrame | None  # None when nothing at the end reads them (see end_scores)
    metrics: dict[str, dict[str, float]]  # metric -> aggregate -> value
    problems: list[str] = field(default_factory=list)  # a metric that raised, one line each
    errors: int = 0  # rows a metric raised on, plus batch metrics that raised


def end_scores(plan: RunPlan, db_path: Path, run_id: str, *, complete: bool) -> EndScores:
    """A run's scores and aggregates at its end, from what is stored: with its batch
    metrics over the stored rows when it ran them all (``complete``: finished, or stopped at
    its budget), the stored scores alone otherwise (interrupted, failed). The rows' text is
    read for batch metrics and ``--by`` slices only, and the scores as a DataFrame only for
    them, for extra aggregations (MLflow's ``variance``, ...) and for several samples per
    row: otherwise the aggregates are computed from the scores' values alone
    (``stored_aggregates``), and the end of a run without MLflow or a report never
    imports pandas (nor does its preload: ``harness.runner.preload``). At 10,000 rows x 5
    metrics the DataFrame and its group-bys took 40 MB above the step's start (numbers
    in docs/design.md)."""
    from harness.store import runs as run_store

    outputs = None
    if (complete and plan.batch) or plan.config.by:
        outputs = run_store.load_outputs(db_path, run_id)
    stored = None
    if not plan.batch and not plan.config.by and not _asked(plan):
        from harness.runner.summary import stored_aggregates

        stored = stored_aggregates(db_path, run_id)  # None: several samples per row
    if stored is not None:
        metrics, failed_rows = stored
        if not complete:  # as below: a run that did not end counts no failed rows
            failed_rows = 0
        problems = _raised_on(failed_rows)
        ended = EndScores(None, None, metrics, problems, failed_rows)
    elif complete:
        final = final_scores(plan, run_id, outputs)
        ended = EndScores(outputs, final.scores, final.metrics, list(final.problems), final.errors)
    else:
        from harness.runner.summary import aggregate_scores

        scores = run_store.load_score_values(db_path, run_id)
        ended = EndScores(outputs, scores, aggregate_scores(scores))
    for judge in plan.judges:  # a yes/no judge's rows are 0 or 1: quantiles of them say nothing
        if getattr(judge, "output", None) is not None and judge.output.kind == "yes/no":
            ended.metrics.get(judge.name, {}).pop("p50", None)
            ended.metrics.get(judge.name, {}).pop("p90", None)
    return ended
