"""``harness compare --by COLUMN``: the comparison repeated on the rows of each value.

Within a slice, rows are paired and compared exactly as over all rows
(``harness.stats.paired_difference``, clustered with ``--cluster``), with each metric's
margin that matters taken from the overall comparison, so a slice's verdict answers the
same question on fewer rows. Every slice of every ``--by`` column, metric and candidate
is one test of one family: their p-values are Holm-adjusted together (a family of its own,
apart from the overall metrics'), so the chance of any false "better" or "worse" among
the slices stays at alpha however many slices there are. Slices are small: expect most
verdicts to be "inconclusive" unless the change is large.

A row's value comes from the base run's copy of the row: rows are paired by example id,
and runs of one dataset version hold the same columns for an id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.compare.paired import Margin, metric_result, shared_bounds
from harness.compare.result import MetricResult, SliceComparison
from harness.compare.sources import RunScores, row_labels
from harness.slices import check_value_count, sort_labels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare_slices"]


def compare_slices(
    by: Sequence[str],
    base: RunScores,
    candidate: RunScores,
    common: pd.Index,
    overall: Sequence[MetricResult],
    groups: pd.Series | None,
    *,
    max_values: int,
    alpha: float,
    power: float,
) -> list[SliceComparison]:
    """Per ``--by`` column and value, each metric of ``overall`` on the slice's paired rows
    (verdicts are set after the Holm adjustment, in ``compare``). Raises ConfigError for a
    column no row has, or one with more than ``max_values`` values."""
    import numpy as np

    rows = base.rows.loc[common]
    labels = {column: row_labels(rows, column, "--by") for column in dict.fromkeys(by)}
    for column, found in labels.items():  # every column checked before any is compared
        check_value_count(column, found.tolist(), max_values)
    margins: dict[str | None, Margin] = {
        m.metric: Margin(m.margin, origin=m.margin_rule) for m in overall
    }
    results = []
    for column, found in labels.items():
        values = found.to_numpy(dtype=object)
        for value in sort_labels(values.tolist()):
            mask = np.array([v == value for v in values], dtype=bool)
            ids = common[mask]
            clusters = groups[mask] if groups is not None else None
            metrics = [
                metric_result(
                    m.metric,
                    m.direction,
                    base.values.loc[ids, m.metric].to_numpy(),
                    candidate.values.loc[ids, m.metric].to_numpy(),
                    clusters,
                    margins,
                    alpha,
                    power,
                    binary=m.stats.binary,
                    bounds=shared_bounds(m.metric, base, candidate),
                )  # fmt: skip
                for m in overall
            ]
            results.append(SliceComparison(column, value, int(mask.sum()), metrics))
    return results
