"""Heuristic metrics: offline scores of one model output, registered by name.

A metric is a :class:`Metric`: a name, a one-line description and a function from a
:class:`ScoringRow` to a float, or None when the row cannot be scored (no expected answer,
no words, no latency). None is "not scored", never zero: :func:`aggregate` leaves it out.

Built-in families, one module each, register themselves when first looked up:

- ``match``: ``exact_match``, ``token_f1`` (SQuAD normalization, best over expected answers)
- ``rouge``: ``rouge1``, ``rouge2``, ``rougeL`` (F-measure, as the ``rouge-score`` package)
- ``readability``: ``ari_grade_level``, ``flesch_kincaid_grade_level``
- ``basic``: ``word_count``, ``latency``

Use :func:`get_metric` to look one up, :func:`metric_names` to list them and
:func:`register_metric` to add your own. Each metric declares which way is better
(``direction``); :func:`metric_direction` answers for any score name, judges included.
"""

from __future__ import annotations

from harness.errors import MetricError
from harness.metrics.aggregate import AGGREGATE_KEYS, aggregate, aggregate_scores
from harness.metrics.registry import Metric, ScoringRow, register_metric, registered

__all__ = [
    "AGGREGATE_KEYS",
    "DEFAULT_METRICS",
    "Metric",
    "ScoringRow",
    "aggregate",
    "aggregate_scores",
    "get_metric",
    "metric_direction",
    "metric_names",
    "register_metric",
]


# A default set for question answering: answer correctness at three strictnesses, plus
# length and speed, which explain most surprises in the other three.
DEFAULT_METRICS: tuple[str, ...] = ("exact_match", "token_f1", "rougeL", "word_count", "latency")

_builtins_loaded = False


def _load_builtins() -> None:
    # Imported on first use rather than at the top, so a metric registered from Python
    # before the first lookup keeps its name until then, as it always has. Each family
    # registers itself in ``harness.metrics.registry`` when imported.
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from harness.metrics import basic, match, readability, rouge  # noqa: F401


def get_metric(name: str) -> Metric:
    """The metric registered as ``name``.

    Raises MetricError("unknown metric 'x'; known: a, b, ...") for a name nobody registered.
    """
    _load_builtins()
    try:
        return registered()[name]
    except KeyError:
        known = ", ".join(metric_names())
        raise MetricError(f"unknown metric '{name}'; known: {known}") from None


def metric_direction(name: str) -> int:
    """+1 when a higher ``name`` score is better, -1 when lower is, 0 when neither.

    Registered metrics say so themselves; any other score is a judge's, and every judge
    scores higher for better (yes over no, 5 over 1, labels listed worst to best).
    """
    _load_builtins()
    metric = registered().get(name)
    return metric.direction if metric is not None else 1


def metric_names() -> list[str]:
    """Names of every registered metric, sorted."""
    _load_builtins()
    return sorted(registered())
