"""main's per-row table (``harness.runner.summary.results_table`` before
``harness.runner.table_rows`` defined it): pandas pivots and joins, kept here verbatim as
the reference the plain table's bytes are checked against (tests/runner/test_table_rows.py)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd

from harness.runner.summary import ROW_COLUMNS, row_columns


def main_results_table(
    outputs: pd.DataFrame, scores: pd.DataFrame, labelled: Collection[str] = ()
) -> pd.DataFrame:
    """The per-row table: one row per example, one column per metric.

    Columns: id, input, expected (several answers joined with `` || ``), context, output,
    error, latency_s, tokens, cached, the data's other columns (``_extra_columns``; a name
    harness's table already uses keeps harness's column), then each metric's value (a
    judge's mean over its samples), ``<name>/label`` for the judges of ``labelled``
    (``labelled_judges``; its first sample's label, as its rationale, while the value stays
    the number means are taken of), ``<name>/rationale`` for judges and for metrics that
    explain their scores, ``<name>/error`` when a judge answer or a metric failed, and for
    a judge with several samples ``<judge>/std``, ``<judge>/agreement`` and
    ``<judge>/self_disagreement``. This is ``eval_results_table`` in ``evaluate`` and in
    MLflow.
    """
    table = _with_metrics(row_columns(outputs), scores, labelled)
    at = len(ROW_COLUMNS)
    added: list[str] = []
    for name, values in _extra_columns(outputs).items():
        if name not in table.columns:  # harness's own column or a metric's wins
            table.insert(at + len(added), name, values)
            added.append(name)
    table.attrs["data_columns"] = added  # for ``select_rows``
    return table


def _extra_columns(outputs: pd.DataFrame) -> dict[str, list[Any]]:
    """The data's columns beyond id, input, expected and context, by name, in the order the
    rows first name them (as ``mlflow.evaluate``'s table keeps the data's columns); a row
    without one has None. Read from the examples' stored JSON (``outputs``' ``extra``)."""
    if "extra" not in outputs.columns:  # rows read without their examples' JSON
        return {}
    from harness.fastjson import loads_text

    stored = [loads_text(text) if text and text != "{}" else None for text in outputs["extra"]]
    names = list(dict.fromkeys(name for extra in stored if extra for name in extra))
    return {name: [extra.get(name) if extra else None for extra in stored] for name in names}


def _with_metrics(
    table: pd.DataFrame, scores: pd.DataFrame, labelled: Collection[str]
) -> pd.DataFrame:
    if scores.empty:
        return table
    values = scores.pivot_table(
        index="example_id",
        columns="metric",
        values="value",
        aggfunc="mean",
        dropna=False,
        sort=False,
    )
    table = table.join(values, on="id")
    if labelled and "label" in scores.columns:
        said = scores[scores["metric"].isin(list(labelled))]
        if not said.empty:
            first = said.sort_values("sample").drop_duplicates(["example_id", "metric"])
            labels = first.pivot(index="example_id", columns="metric", values="label")
            labels.columns = [f"{c}/label" for c in labels.columns]
            table = table.join(labels, on="id")
    judged = scores[scores["source"] == "llm_judge"]
    # Rationales: every judge's, and a metric's when it gives them (an MLflow Feedback, a
    # json-schema complaint, an eval_fn's justifications).
    # The names, unique: ``isin`` of the column itself took 0.19 s at 10,000 rows x 3
    # judges (pandas' Arrow strings look each value up one by one).
    with_rationales = scores.loc[scores["rationale"].notna(), "metric"].unique()
    explained = scores[
        (scores["source"] == "llm_judge") | scores["metric"].isin(list(with_rationales))
    ]
    if not explained.empty:
        first = explained.sort_values("sample").drop_duplicates(["example_id", "metric"])
        rationales = first.pivot(index="example_id", columns="metric", values="rationale")
        rationales.columns = [f"{c}/rationale" for c in rationales.columns]
        table = table.join(rationales, on="id")
    failed = scores.dropna(subset=["error"])
    if not failed.empty:
        errors = failed.sort_values("sample").drop_duplicates(["example_id", "metric"])
        errors = errors.pivot(index="example_id", columns="metric", values="error")
        errors.columns = [f"{c}/error" for c in errors.columns]
        table = table.join(errors, on="id")
    if not judged.empty:
        table = _join_sample_stats(table, judged)
    return table.reset_index(drop=True)


def _join_sample_stats(table: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    from harness.judges.variance import sample_stats

    stats = sample_stats(judged)
    for metric, group in stats.groupby("metric", sort=True):
        columns = group.set_index("example_id")[["std", "agreement", "self_disagreement"]]
        columns.columns = [f"{metric}/{c}" for c in columns.columns]
        table = table.join(columns, on="id")
    return table
