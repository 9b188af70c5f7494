"""How much a judge asked several times (``--judge-samples N``) agrees with itself.

Per row and judge, over the samples that gave a verdict: the mean, the standard deviation
(population, ``ddof=0``: the spread of these very answers), and the agreement, the share of
samples that gave the most common answer (1.0 when all agree). A row where the samples do
not all agree is flagged ``self_disagreement``. Overall, per judge: the mean of the per-row
std and agreement, and the number of flagged rows. Rows with fewer than two usable samples
have no spread to measure and are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["STAT_COLUMNS", "repeated_stats", "row_stats", "sample_stats", "summarize_samples"]

STAT_COLUMNS = ("samples", "mean", "std", "agreement", "self_disagreement")


def row_stats(values: list[float]) -> dict[str, Any]:
    """Mean, std, agreement and the self-disagreement flag of one row's sample values."""
    import numpy as np

    stats = repeated_stats(np.zeros(len(values), dtype=np.intp), np.asarray(values, dtype=float))
    return {
        "samples": int(stats["samples"][0]),
        "mean": float(stats["mean"][0]),
        "std": float(stats["std"][0]),
        "agreement": float(stats["agreement"][0]),
        "self_disagreement": bool(stats["self_disagreement"][0]),
    }


def repeated_stats(groups: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """``STAT_COLUMNS`` of each group of samples (``groups``: each sample's row and judge,
    numbered from 0, every number in use), over the samples' ``values``: the one definition
    of a judge's self-agreement, which ``sample_stats`` (compare, MLflow) and the report
    (from ``harness.slices.per_row``) both compute with. Vectorized: a 10,000-row run must
    not pay a Python loop per row and judge."""
    import numpy as np

    count = int(groups.max()) + 1 if len(groups) else 0
    samples = np.bincount(groups, minlength=count)
    mean = np.bincount(groups, weights=values, minlength=count) / samples
    spread = (values - mean[groups]) ** 2
    std = np.sqrt(np.bincount(groups, weights=spread, minlength=count) / samples)
    # the most common answer's samples: runs of one value within a group, sorted
    order = np.lexsort((values, groups))
    by_group, by_value = groups[order], values[order]
    starts = np.flatnonzero(
        np.concatenate(([True], (by_group[1:] != by_group[:-1]) | (by_value[1:] != by_value[:-1])))
    )
    runs = np.diff(np.append(starts, len(order)))
    top = np.zeros(count, dtype=np.intp)
    np.maximum.at(top, by_group[starts], runs)
    return {
        "samples": samples,
        "mean": mean,
        "std": std,
        "agreement": top / samples,
        "self_disagreement": top < samples,
    }


def sample_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (metric, example_id) of judge scores with at least two usable samples.

    Columns: metric, example_id, samples, mean, std, agreement, self_disagreement.
    ``scores`` has one row per (example_id, metric, sample), as a run's stored scores do
    (``harness.store.runs.load_scores``); the numbers are ``repeated_stats``'.
    """
    import numpy as np
    import pandas as pd

    columns = ["metric", "example_id", *STAT_COLUMNS]
    judged = scores
    if "source" in scores.columns:
        judged = scores[scores["source"] == "llm_judge"]
    judged = judged.dropna(subset=["value"])
    # A store's scores have one row per (example, metric, sample): when every sample is
    # number 0 (each judge asked once, the common case) no row has two, and the group-by
    # below has nothing to find.
    if judged.empty or ("sample" in judged.columns and not (judged["sample"] > 0).any()):
        return pd.DataFrame(columns=columns)
    grouped = judged.groupby(["metric", "example_id"], sort=True)
    stats = repeated_stats(
        grouped.ngroup().to_numpy(dtype=np.intp), judged["value"].to_numpy(dtype=float)
    )
    found = pd.DataFrame(stats, index=grouped.size().index)
    found = found[found["samples"] >= 2]
    if found.empty:  # one sample per row: nothing to measure, the common case
        return pd.DataFrame(columns=columns)
    found["samples"] = found["samples"].astype(int)
    return found.reset_index()[columns]


def summarize_samples(stats: pd.DataFrame) -> dict[str, dict[str, float]]:
    """metric -> {"std", "agreement", "self_disagreement"} over the rows of ``sample_stats``."""
    summary: dict[str, dict[str, float]] = {}
    for metric, group in stats.groupby("metric", sort=True):
        summary[str(metric)] = {
            "std": float(group["std"].mean()),
            "agreement": float(group["agreement"].mean()),
            "self_disagreement": int(group["self_disagreement"].sum()),
        }
    return summary
