"""Statistics for comparing runs: one module that ``compare``, ``check`` and reports share.

- :func:`estimate_mean`: one run's mean with its standard error and interval (``means``).
- :func:`paired_difference`: two runs on the same rows: the difference, its standard error
  (clustered or not), interval, test, minimum detectable effect and correlation (``paired``).
- :func:`holm`: p-values adjusted across the metrics (or slices) compared (``adjust``).

Everything takes plain arrays of per-row scores (and optional cluster ids) and returns
plain dataclasses; rendering is elsewhere. Whether scores are 0/1 (``binary=True``: Wilson,
McNemar) is the caller's to say from what the metric declares, never read off the values,
as is the range every score lies in (``bounds=(low, high)``: a t interval is cut there;
``(0, math.inf)`` for scores never negative with no largest value, cut at 0 only).
The methods and why they were chosen are in the module docstrings; ``tests/stats`` checks
them against scipy and statsmodels.
"""

from __future__ import annotations

from harness.stats.adjust import holm
from harness.stats.means import MeanEstimate, cluster_se, estimate_mean, is_binary, wilson_interval
from harness.stats.paired import DEFAULT_ALPHA, DEFAULT_POWER, PairedDifference, paired_difference

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "MeanEstimate",
    "PairedDifference",
    "cluster_se",
    "estimate_mean",
    "holm",
    "is_binary",
    "paired_difference",
    "wilson_interval",
]
