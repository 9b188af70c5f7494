"""Adjusting p-values when several hypotheses are tested at once."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["holm"]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (``statsmodels.stats.multitest.multipletests(method=
    "holm")``), in the order given. NaN p-values (tests that could not be run) stay NaN and
    are not counted in the family.

    It controls the chance of any false "better" or "worse" among the metrics compared at
    ``alpha``, under any dependence between them, and never rejects less than Bonferroni.
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(tested)
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
