"""How much a judge asked several times (``--judge-samples N``) agrees with itself.

Per row and judge, over the samples that gave a verdict: the mean, the standard deviation
(population, ``ddof=0``: the spread of these very answers), and the agreement, the share of
samples that gave the most common answer (1.0 when all agree). A row where the samples do
not all agree is flagged ``self_disagreement``. Overall, per judge: the mean of the per-row
std and agreement, and the number of flagged rows. Rows with fewer than two usable samples
have no spread to measure and are left out.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STAT_COLUMNS", "row_stats", "sample_stats", "summarize_samples"]

STAT_COLUMNS = ("samples", "mean", "std", "agreement", "self_disagreement")


def row_stats(values: list[float]) -> dict[str, Any]:
    """Mean, std, agreement and the self-disagreement flag of one row's sample values."""
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)
    top = Counter(values).most_common(1)[0][1]
    return {
        "samples": n,
        "mean": mean,
        "std": std,
        "agreement": top / n,
        "self_disagreement": top < n,
    }


def sample_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (metric, example_id) of judge scores with at least two usable samples.

    Columns: metric, example_id, samples, mean, std, agreement, self_disagreement.
    ``scores`` has one row per (example_id, metric, sample), as a run's stored scores do
    (``harness.store.runs.load_scores``). Vectorized: a 10,000-row run must not pay a
    Python loop per row and judge.
    """
    import pandas as pd

    columns = ["metric", "example_id", *STAT_COLUMNS]
    judged = scores
    if "source" in scores.columns:
        judged = scores[scores["source"] == "llm_judge"]
    judged = judged.dropna(subset=["value"])
    # A store's scores have one row per (example, metric, sample): when every sample is
    # number 0 (each judge asked once, the common case) no row has two, and the group-bys
    # below (10 ms at 1,000 rows, a run's end pays three) have nothing to find.
    if judged.empty or ("sample" in judged.columns and not (judged["sample"] > 0).any()):
        return pd.DataFrame(columns=columns)
    keys = ["metric", "example_id"]
    values = judged.assign(value=judged["value"].astype(float)).groupby(keys, sort=True)["value"]
    samples = values.size()
    repeated = samples[samples >= 2].index
    if len(repeated) == 0:  # one sample per row: nothing to measure, the common case
        return pd.DataFrame(columns=columns)
    top = judged.groupby([*keys, "value"], sort=False).size().groupby(level=[0, 1]).max()
    stats = pd.DataFrame(
        {
            "samples": samples,
            "mean": values.mean(),
            "std": values.std(ddof=0),
            "agreement": top / samples,
        }
    ).loc[repeated]
    stats["self_disagreement"] = stats["agreement"] < 1.0
    stats["samples"] = stats["samples"].astype(int)
    return stats.reset_index()[columns]


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
