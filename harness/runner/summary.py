"""Aggregates of a run's stored scores: what the summary, ``--json`` and MLflow show."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.metrics import aggregate
from harness.runner.table_rows import ROW_COLUMNS as ROW_COLUMNS  # its callers import it here
from harness.store.scores import labelled_judges as labelled_judges  # its callers import it here

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from harness.config import Home
    from harness.slices import SliceTable
    from harness.store.datasets import Example
    from harness.store.exports import RunRecord


def aggregate_scores(scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    """metric -> {"mean", "p50", "p90", "count"} over rows.

    A judge asked several times (``--judge-samples``) is first averaged per row, so each
    row weighs the same whatever its number of samples. Judges also get ``errors`` (judge
    answers that failed: call errors and unparseable answers) and, when rows have two or
    more samples, ``std`` and ``agreement`` (means over rows) and ``self_disagreement`` (rows
    whose samples differ); see ``harness.judges.variance``.
    """
    if scores.empty:
        return {}
    per_row = (
        scores.dropna(subset=["value"]).groupby(["metric", "example_id"], sort=True)["value"].mean()
    )
    result: dict[str, dict[str, float]] = {}
    for metric in sorted(scores["metric"].unique()):
        values = per_row.loc[metric].tolist() if metric in per_row.index.get_level_values(0) else []
        result[metric] = aggregate(values)
    if "source" in scores.columns:
        from harness.judges.variance import sample_stats, summarize_samples

        judged = scores[scores["source"] == "llm_judge"]
        if not judged.empty:
            errors = judged.groupby("metric")["error"].count()
            for metric in judged["metric"].unique():
                result[metric]["errors"] = int(errors.get(metric, 0))
            for metric, stats in summarize_samples(sample_stats(judged)).items():
                result[metric].update(stats)
    return result


def stored_aggregates(db_path: Path, run_id: str) -> tuple[dict[str, dict[str, float]], int] | None:
    """``aggregate_scores`` of a run's stored scores, and the rows a metric raised on,
    computed from its values alone (``score_summary``): no pandas, no DataFrame. None
    when a row has several samples of a judge, whose means and agreement need
    ``load_score_values`` and ``aggregate_scores``.

    The same numbers: with one sample per row, a row's mean is its value, and
    ``aggregate`` sorts the values before it sums them (``math.fsum``, exact) and takes
    their quantiles.
    """
    from harness.store.run_reads import score_summary

    summary = score_summary(db_path, run_id)
    if summary is None:
        return None
    result: dict[str, dict[str, float]] = {}
    failed = 0
    for metric, values, judged, judge_errors, code_errors in summary:
        result[metric] = aggregate(values)
        if judged:
            result[metric]["errors"] = judge_errors
        failed += code_errors
    return result, failed


def results_table(
    outputs: pd.DataFrame, scores: pd.DataFrame, labelled: Collection[str] = ()
) -> pd.DataFrame:
    """The per-row table: one row per example, one column per metric.

    Columns: id, input, expected (several answers joined with `` || ``), context, output,
    error, latency_s, tokens, cached, the data's other columns (a name harness's table
    already uses keeps harness's column), then each metric's value (a judge's mean over its
    samples), ``<name>/label`` for the judges of ``labelled`` (``labelled_judges``; its
    first sample's label, as its rationale, while the value stays the number means are
    taken of), ``<name>/rationale`` for judges and for metrics that explain their scores,
    ``<name>/error`` when a judge answer or a metric failed, and for a judge with several
    samples ``<judge>/std``, ``<judge>/agreement`` and ``<judge>/self_disagreement``. This
    is ``eval_results_table`` in ``evaluate`` and in MLflow.

    The columns after the stored ones are ``harness.runner.table_rows``', from which
    MLflow's table artifact is written without pandas: one definition of both.
    """
    import pandas as pd

    from harness.runner.table_rows import frame_rows

    extras = (
        [text if isinstance(text, str) else None for text in outputs["extra"]]
        if "extra" in outputs.columns  # rows read without their examples' JSON: none
        else [None] * len(outputs)
    )
    columns, data_columns, floats, rows = frame_rows(
        [str(i) for i in outputs["id"]], extras, _score_tuples(scores), labelled
    )
    table = row_columns(outputs).reset_index(drop=True)
    added: dict[str, Any] = {}
    for at, name in enumerate(columns):
        values = [row[at] for row in rows]
        float_column = at >= len(data_columns) and floats[at - len(data_columns)]
        # The data's columns as pandas infers a list (ints with a None: floats).
        added[name] = pd.Series(values, dtype="float64" if float_column else None)
    if added:
        table = pd.concat([table, pd.DataFrame(added)], axis=1)
    table.attrs["data_columns"] = data_columns  # for ``select_rows``
    return table


# The fields of a score ``table_rows`` reads, in its order.
_SCORE_FIELDS = ("example_id", "metric", "sample", "value", "label", "rationale", "error", "source")


def _score_tuples(scores: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The scores as ``table_rows`` takes them: tuples, missing values None (not NaN)."""
    from harness.slices.per_row import frame_tuples

    return frame_tuples(scores, _SCORE_FIELDS) if not scores.empty else []


def row_columns(outputs: pd.DataFrame) -> pd.DataFrame:
    """The per-row table's columns before the metrics: what a row's MLflow trace shows."""
    table = outputs[list(ROW_COLUMNS)].copy()
    table["expected"] = [
        " || ".join(v) if v is not None and len(v) else None for v in table["expected"]
    ]
    return table


def metric_order(config: Mapping[str, Any], present: Sequence[str]) -> list[str]:
    """The metrics of ``present`` in the order the run asked for them (metrics, then
    judges), then any others alphabetically."""
    asked = [*(config.get("metrics") or []), *(config.get("judges") or [])]
    return [m for m in dict.fromkeys([*asked, *sorted(present)]) if m in present]


def run_slices(
    columns: Sequence[str],
    examples: Sequence[Example],
    outputs: pd.DataFrame,
    scores: pd.DataFrame,
    config: Mapping[str, Any],
) -> list[SliceTable]:
    """The slices of a run's stored rows by each of ``columns`` (``harness.slices``):
    ``examples`` gives each row's columns, ``outputs`` and ``scores`` its results."""
    if not columns:
        return []
    from harness.slices import example_fields

    done = set(outputs["id"])
    rows = [example_fields(e) for e in examples if e.id in done]
    return _slices(columns, rows, outputs["id"], outputs["error"], scores, config)


def record_slices(
    home: Home,
    run: str | RunRecord,
    columns: Sequence[str],
    *,
    max_slices: int | None = None,
    limited: bool = True,
) -> list[SliceTable]:
    """The slices of a stored run (by id) or a run's record, such as a run file's
    (``harness runs show RUN --by COLUMN``).

    Raises ConfigError for a column no row has, or one with more values than
    ``max_slices`` (else ``[slices] max_values`` in harness.toml, else 50) allows, unless
    ``limited`` is False: the columns the run was run ``--by``, whose values were counted
    against the run's own limit (its ``--max-slices``) when it ran, are shown as it showed
    them.
    """
    from harness.slices import max_values, row_fields

    if not columns:
        return []
    limit = max_values(max_slices, home.settings) if limited else None
    if isinstance(run, str):
        from harness.store.exports import load_run_record

        record = load_run_record(home.db_path, run)
    else:
        record = run
    rows_table = record.rows()
    rows = [
        row_fields(r.id, r.input, r.expected, r.context, r.extra)
        for r in rows_table.itertuples(index=False)
    ]
    return _slices(
        columns,
        rows,
        rows_table["id"],
        rows_table["error"],
        record.scores(),
        record.info.config,
        max_values=limit,
    )


def _slices(
    columns: Sequence[str],
    rows: list[dict[str, Any]],
    ids: pd.Series,
    errors: pd.Series,
    scores: pd.DataFrame,
    config: Mapping[str, Any],
    max_values: int | None = None,
) -> list[SliceTable]:
    import pandas as pd

    from harness.slices import (
        check_value_count,
        column_labels,
        failed_rows,
        per_row_values,
        slice_table,
    )
    from harness.store.scores import binary_metrics, metric_bounds

    index = [row["id"] for row in rows]
    labels = {}
    for column in dict.fromkeys(columns):  # every column checked before any is computed
        labels[column] = column_labels(rows, column, "--by")
        if max_values is not None:
            check_value_count(column, labels[column], max_values)
    values = per_row_values(scores)
    failed = failed_rows(pd.Series(errors.to_numpy(), index=ids.to_numpy()), scores)
    metrics = metric_order(config, list(values.columns))
    return [
        slice_table(
            column,
            pd.Series(found, index=index, dtype=object),
            values,
            failed=failed,
            metrics=metrics,
            binary=binary_metrics(config, values),
            bounds=metric_bounds(config, values),
        )  # fmt: skip
        for column, found in labels.items()
    ]


def headline_metric(metrics: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]] | None:
    """The metric a one-line view shows: a judge first (it is what a run is usually for),
    then the defaults in their order (exact_match, token_f1, ...), then the rest by name —
    not simply the first by name (``ari_grade_level`` says little about a run)."""
    from harness.metrics import DEFAULT_METRICS

    if not metrics:
        return None
    judges = [m for m, a in metrics.items() if "errors" in a]  # only judges count errors
    order = [*judges, *(m for m in DEFAULT_METRICS if m != "latency"), *sorted(metrics)]
    name = next(m for m in order if m in metrics)
    return name, metrics[name]


def select_rows(
    table: pd.DataFrame,
    *,
    errors_only: bool = False,
    columns: list[str] | None = None,
    limit: int | None = None,
) -> tuple[pd.DataFrame, int]:
    """The rows and columns ``runs show --rows`` prints, and how many rows it leaves out.

    ``columns`` are kept in the order given (``id`` first, always); an unknown one is a
    ConfigError that lists the table's columns. Without them, the long columns and the
    data's own (``results_table``'s ``data_columns``) are left out.
    """
    from harness.errors import ConfigError

    hidden = {*_LONG_COLUMNS, *table.attrs.get("data_columns", ())}

    if errors_only:
        table = table[table["error"].notna()] if "error" in table.columns else table.iloc[:0]
    if columns is not None and not columns:  # --columns "$COLS" unset: all were shown
        raise ConfigError(f"--columns names no column; columns: {', '.join(table.columns)}")
    if columns:
        unknown = [c for c in columns if c not in table.columns]
        if unknown:
            raise ConfigError(
                f"no column {', '.join(unknown)} in the rows; columns: {', '.join(table.columns)}"
            )
        table = table[list(dict.fromkeys(["id", *columns]))]
    else:
        table = table[[c for c in table.columns if c not in hidden]]
    left_out = max(0, len(table) - limit) if limit is not None else 0
    return (table.head(limit) if limit is not None else table), left_out


# Shown only when asked for by name (--columns): long, or rarely what a reader looks for.
_LONG_COLUMNS = ("input_tokens", "output_tokens", "context")
