"""A run's scores as one value per row and metric: what ``compare``, ``check`` and the
report all compute their statistics from.

A judge asked several times (``--judge-samples``) scores each row with the mean of its
samples, so every row weighs the same. ``errors`` is one more column: 1 for a row whose
model call failed, 0 otherwise, so failures are compared and gated like a metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from harness.store.exports import RunRecord

__all__ = ["ERRORS", "RunScores", "record_scores"]

ERRORS = "errors"  # the per-row failure indicator, compared and gated like a metric


@dataclass
class RunScores:
    """One run's rows (indexed by example id) and its per-row scores."""

    rows: pd.DataFrame  # input, expected, context, extra, output, error
    values: pd.DataFrame  # one column per metric, judge and ERRORS; NaN = not scored
    rationales: pd.DataFrame  # one column per judge: the first sample's rationale
    judges: frozenset[str]
    order: list[str]  # the metrics in the order the run asked for them, then ERRORS
    directions: dict[str, int] = field(default_factory=dict)  # the run's own, when stored


def record_scores(record: RunRecord) -> RunScores:
    """Per-row scores of ``record``: a judge's samples averaged per row."""
    import pandas as pd

    from harness.slices import per_row_values

    rows = record.rows().set_index("id")
    scores = record.scores()
    values = per_row_values(scores)  # one column per metric, in the order first seen
    metrics = [str(m) for m in values.columns]
    values = values.reindex(index=rows.index).astype(float)
    values[ERRORS] = rows["error"].notna().astype(float)
    judged = scores[scores["source"] == "llm_judge"]
    judges = frozenset(judged["metric"])
    first = judged.sort_values("sample").drop_duplicates(["example_id", "metric"])
    rationales = (
        first.pivot(index="example_id", columns="metric", values="rationale")
        if not first.empty
        else pd.DataFrame(index=rows.index)
    )
    config = record.info.config
    asked = [*(config.get("metrics") or []), *(config.get("judges") or [])]
    order = [m for m in dict.fromkeys([*asked, *sorted(metrics)]) if m in metrics]
    # A run stores which way each of its metrics is better: a python: metric, a kind or an
    # MLflow metric is known to no registry here.
    directions = {str(k): int(v) for k, v in (config.get("directions") or {}).items()}
    return RunScores(rows, values, rationales, judges, [*order, ERRORS], directions)
