"""The MLflow records of a run: what ``harness.tracking`` logs, built from the run's rows.

``head_record`` is what the MLflow run is opened with, ``rows_record`` carries finished
rows and ``batch_traces`` makes their traces, ``final_record`` the whole run;
``batch_payload`` is a stored batch as the plain tuples that travel to the MLflow worker
(``harness.runner.mlflow_worker``), and ``mlflow_parent_run`` makes the runs of a block
children of a sweep's parent run.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import time
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from harness.runner.summary import ROW_COLUMNS, labelled_judges, results_table

if TYPE_CHECKING:
    import pandas as pd

    from harness.runner.config import RunResult
    from harness.runner.plan import RunPlan
    from harness.store.datasets import Example
    from harness.store.rows import OutputRow, ScoreRow
    from harness.tracking import RunRecord
    from harness.tracking.traces import RowTrace


# The MLflow parent run of the runs logged in this context: a sweep sets it around each
# child's run_eval, so the runner needs no sweep-specific argument.
_parent_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "harness_mlflow_parent_run", default=None
)


@contextlib.contextmanager
def mlflow_parent_run(parent_run_id: str | None) -> Iterator[None]:
    """Log the runs finished inside this block as children of ``parent_run_id``."""
    token = _parent_run.set(parent_run_id)
    try:
        yield
    finally:
        _parent_run.reset(token)


def prompt_name_for(plan: RunPlan) -> str | None:
    """The prompt registry name: the run's own, else ``[mlflow] prompt_name`` in harness.toml.

    None lets ``harness.tracking`` use ``<experiment>-prompt``.
    """
    # getattr: RunConfig has no prompt_name field yet (a --prompt-name flag would add it).
    own = getattr(plan.config, "prompt_name", None)
    mlflow_settings = plan.home.settings.get("mlflow", {})
    configured = mlflow_settings.get("prompt_name") if isinstance(mlflow_settings, dict) else None
    return own or configured or None


def feedback_rows(
    scores: pd.DataFrame, judge_models: Mapping[str, str], labelled: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Per-row assessments: every metric as CODE feedback, every judge as LLM_JUDGE (its
    source the model the judge asked, from ``judge_models``: judge name -> model URI).

    The value of a judge of ``labelled`` (``labelled_judges``) is its first sample's label,
    as MLflow's own judges give a categorical answer; any other's is the mean of its samples.
    """
    usable = scores[scores["value"].notna() | scores["error"].notna()]
    if usable.empty:
        return []
    if "label" not in usable.columns:
        usable = usable.assign(label=None)
    per_row = (
        usable.sort_values("sample")
        .groupby(["example_id", "metric"], sort=False)
        .agg(
            value=("value", "mean"),
            label=("label", "first"),
            rationale=("rationale", "first"),
            source=("source", "first"),
            error=("error", "first"),
        )
        .reset_index()
    )
    return [
        {
            "row_id": r.example_id,
            "name": r.metric,
            "value": _feedback_value(r.metric, r.value, r.label, labelled),
            "rationale": r.rationale,
            "error": r.error,
            "source": "LLM_JUDGE" if r.source == "llm_judge" else "CODE",
            "source_id": judge_models.get(r.metric)
            if r.source == "llm_judge"
            else f"harness/{r.metric}",
        }
        for r in per_row.itertuples(index=False)
    ]


def _feedback_value(metric: str, value: Any, label: Any, labelled: Collection[str]) -> Any:
    """A row's feedback value: a labelled judge's label, else its number (NaN: None)."""
    if metric in labelled and _present(label):
        return str(label)
    return float(value) if _present(value) else None


def _metrics(result: RunResult) -> dict[str, float]:
    metrics = result.flat_metrics()
    metrics.update(result.slice_metrics())  # NAME/mean/by/COLUMN/VALUE (harness.slices)
    for kind, counters in result.calls.items():
        for name in (
            "requests",
            "cache_hits",
            "cut_off",
            "filtered",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ):
            metrics[f"{kind}/{name}"] = float(counters.get(name, 0) or 0)
    calls = sum(c.get("requests", 0) + c.get("cache_hits", 0) for c in result.calls.values())
    hits = sum(c.get("cache_hits", 0) for c in result.calls.values())
    if calls:
        metrics["cache_hit_ratio"] = hits / calls
    metrics["cost_usd"] = sum(float(c.get("cost_usd", 0) or 0) for c in result.calls.values())
    metrics["errors"] = float(result.errors)
    return metrics


def head_record(plan: RunPlan, run_id: str, started: float) -> RunRecord:
    """What the MLflow run is opened with: everything known before the first row (no
    rows: building even an empty DataFrame would import pandas, ~0.2 s, before the first
    request is sent)."""
    from harness.tracking import RunRecord

    return RunRecord(
        run_id=run_id,
        run_name=plan.config.run_name,
        experiment=plan.config.experiment,
        params=plan.params,
        metrics={},
        dataset_name=plan.dataset.name,
        dataset_version=plan.dataset.version,
        dataset_digest=plan.dataset.digest,
        dataset_rows=plan.dataset.n_rows,
        prompt_template=plan.template,
        config=plan.config.as_dict(),
        started_at=started,
        finished_at=started,
        rows=None,
        feedback=[],
        labelled=labelled_judges(plan.stored_config()),
        parent_run_id=_parent_run.get(),
        prompt_name=prompt_name_for(plan),
        system_prompt=plan.config.system,
        generation_params=dict(plan.config.params),
        model_id=plan.config.model_id,
    )


def rows_record(
    head: RunRecord, outputs: pd.DataFrame, scores: pd.DataFrame, judge_models: Mapping[str, str]
) -> RunRecord:
    """``head`` carrying some finished rows (``load_outputs``/``load_scores`` shapes), for
    their traces: each row's expected answers stay a list (a retriever's trace expects it)."""
    rows = results_table(outputs, scores, head.labelled)
    rows["expected"] = list(outputs["expected"])  # the table's order is the outputs'
    return dataclasses.replace(
        head,
        rows=rows,
        feedback=feedback_rows(scores, judge_models, head.labelled),
        finished_at=time.time(),
    )


# Per slice, metric: rows, count, mean and the 95% interval (``SliceTable.records``), in
# mlflow.log_table's format, beside the NAME/mean/by/COLUMN/VALUE metrics.
SLICES_TABLE = "slices_table.json"

# A batch travels to the MLflow worker as plain tuples, outputs in ``ROW_COLUMNS`` order
# and scores in this one: pickling them costs a fraction of pickling DataFrames, and the
# frames are built in the worker, off the run's process (whose event loop would otherwise
# wait for the GIL meanwhile).
SCORE_COLUMNS = (
    "example_id", "metric", "value", "source", "sample", "label", "rationale", "raw",
    "error", "request_key", "cached",
)  # fmt: skip

# Then each output's place in the run's dataset and its example's own columns (``extra``),
# for the per-row table the worker makes (``harness.runner.table_rows.SpooledTable``).
Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int, Any]]]


def batch_payload(
    by_id: Mapping[str, tuple[int, Example]], outputs: list[OutputRow], scores: list[ScoreRow]
) -> Batch:
    """A stored batch as tuples in ``ROW_COLUMNS`` and ``SCORE_COLUMNS`` order, and each
    output's place and columns (``by_id``: each row's example and its place in the data).

    The raw judge text, which MLflow does not show, is left out.
    """
    out = []
    places = []
    for o in outputs:
        position, example = by_id[o.example_id]
        places.append((position, example.extra))
        out.append(
            (
                o.example_id, example.input, list(example.expected), example.context,
                o.output, o.error, o.latency_s, o.input_tokens, o.output_tokens, o.cached,
            )
        )  # fmt: skip
    score_rows = [
        (
            s.example_id, s.metric, s.value, s.source, s.sample, s.label, s.rationale, None,
            s.error, s.request_key, s.cached,
        )
        for s in scores
    ]  # fmt: skip
    return out, score_rows, places


def batch_frames(batch: Batch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A batch in memory, as ``load_outputs`` and ``load_scores`` would read it (the frames
    ``batch_traces`` is checked against in tests/runner/test_mlflow_records.py)."""
    import pandas as pd

    outputs, scores, _ = batch
    return (
        pd.DataFrame(outputs, columns=list(ROW_COLUMNS)),
        pd.DataFrame(scores, columns=list(SCORE_COLUMNS)),
    )


def batch_traces(head: RunRecord, batch: Batch, judge_models: Mapping[str, str]) -> list[RowTrace]:
    """The traces of a stored batch's rows, for the worker to write: plain Python.

    What ``build_row_traces`` makes of ``rows_record``'s frames, without building them:
    the row columns traces use, and ``feedback_rows``' per-row feedback (a metric's samples
    averaged, its first rationale, source and error kept). tests/runner compares the two.
    """
    from harness.tracking.traces import row_traces

    outputs, scores, _ = batch
    rows = [
        {
            "id": o[0], "input": o[1], "context": o[3], "output": o[4], "error": o[5],
            "latency_s": o[6], "expected": o[2],
        }
        for o in outputs
    ]  # fmt: skip
    return row_traces(
        dataclasses.replace(head, finished_at=time.time()),
        rows,
        _feedback(scores, judge_models, head.labelled),
    )


def _feedback(
    scores: list[tuple[Any, ...]], judge_models: Mapping[str, str], labelled: Collection[str]
) -> list[dict[str, Any]]:
    """``feedback_rows`` on score tuples (``SCORE_COLUMNS`` order)."""
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for score in sorted(scores, key=lambda s: s[4]):  # by sample, as feedback_rows
        if _present(score[2]) or _present(score[8]):
            groups.setdefault((score[0], score[1]), []).append(score)
    feedback = []
    for (row_id, metric), group in groups.items():
        values = [float(s[2]) for s in group if _present(s[2])]
        value = sum(values) / len(values) if values else None
        label = next((s[5] for s in group if _present(s[5])), None)
        source = next((s[3] for s in group if _present(s[3])), None)
        judged = source == "llm_judge"
        feedback.append(
            {
                "row_id": row_id,
                "name": metric,
                "value": _feedback_value(metric, value, label, labelled),
                "rationale": next((s[6] for s in group if _present(s[6])), None),
                "error": next((s[8] for s in group if _present(s[8])), None),
                "source": "LLM_JUDGE" if judged else "CODE",
                "source_id": judge_models.get(metric) if judged else f"harness/{metric}",
            }
        )
    return feedback


def _present(value: Any) -> bool:
    return value is not None and value == value  # None and NaN are missing


def final_record(
    head: RunRecord,
    result: RunResult,
    outputs: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    report_html: str | None = None,
) -> RunRecord:
    """``head`` completed with the run's metrics, its whole per-row table (none without
    ``outputs`` and ``scores``), with ``--by`` the slices table, and its report."""
    tables = {}
    if result.slices:
        from harness.slices import slices_frame

        tables[SLICES_TABLE] = slices_frame(result.slices)
    return dataclasses.replace(
        head,
        metrics=_metrics(result),
        rows=None
        if outputs is None or scores is None
        else results_table(outputs, scores, head.labelled),
        tables=tables,
        finished_at=result.finished_at or time.time(),
        report_html=report_html,
    )
