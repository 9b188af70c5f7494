"""Heuristic metrics: offline scores of model outputs, registered by name.

A :class:`Metric` scores one row: a name, a one-line description and a function from a
:class:`ScoringRow` to a float, or None when the row cannot be scored (no expected answer,
no words, no latency). None is "not scored", never zero: :func:`aggregate` leaves it out.
A function may also return a :class:`Score` (a value with a rationale or a label), or a list
of named Scores. A :class:`BatchMetric` scores every row of a run at once, as MLflow's
``eval_fn(predictions, targets, ...)`` does; the run calls it when its rows are done.

Every metric says which way is better (``direction``: +1 higher, -1 lower, 0 for a
measurement with no better direction, such as ``word_count``), so sweeps, ``compare`` and
``check`` read a drop the right way round.

Built-in families, one module each, register themselves when first looked up:

- ``match``: ``exact_match``, ``token_f1`` (SQuAD normalization, best over expected answers)
- ``rouge``: ``rouge1``, ``rouge2``, ``rougeL`` (F-measure, as the ``rouge-score`` package)
- ``readability``: ``ari_grade_level``, ``flesch_kincaid_grade_level``
- ``basic``: ``word_count``, ``latency``

Parameterized checks (``contains``, ``regex``, ``json-schema``, ``length``, ...) are *kinds*
(:mod:`harness.metrics.kinds`): ``build_metric("regex", "cites", {"pattern": r"\\[\\d+\\]"})``.

Use :func:`get_metric` to look one up, :func:`metric_names` to list them and
:func:`register_metric` to add your own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from harness.errors import MetricError
from harness.metrics.aggregate import (
    AGGREGATE_KEYS,
    EXTRA_AGGREGATIONS,
    aggregate,
    aggregate_scores,
    extra_aggregates,
)
from harness.metrics.kinds import Kind
from harness.metrics.registry import (
    BatchMetric,
    BatchResult,
    Columns,
    Metric,
    Score,
    ScoringRow,
    register_metric,
    registered,
)

__all__ = [
    "AGGREGATE_KEYS",
    "DEFAULT_METRICS",
    "EXTRA_AGGREGATIONS",
    "BatchMetric",
    "BatchResult",
    "Columns",
    "Metric",
    "Score",
    "ScoringRow",
    "aggregate",
    "aggregate_scores",
    "build_metric",
    "extra_aggregates",
    "get_kind",
    "get_metric",
    "kind_names",
    "kind_parameters",
    "metric_direction",
    "metric_names",
    "register_metric",
]

# A default set for question answering: answer correctness at three strictnesses, plus
# length and speed, which explain most surprises in the other three.
DEFAULT_METRICS: tuple[str, ...] = ("exact_match", "token_f1", "rougeL", "word_count", "latency")

_builtins_loaded = False
_builtins_loading = False  # by the thread holding the lock
# Held while the built-ins are imported: a lookup from another thread meanwhile (two
# ``harness.evaluate`` calls started in two threads) waits for all of them, where it found
# none yet. Re-entrant, so that a lookup on the way, in the importing thread, goes on.
_builtins_lock = threading.RLock()


def _load_builtins() -> None:
    # Imported on first use rather than at the top, so a metric registered from Python
    # before the first lookup keeps its name until then, as it always has. Each family
    # registers itself in ``harness.metrics.registry`` (metrics) or ``.kinds`` (kinds).
    global _builtins_loaded, _builtins_loading
    if _builtins_loaded:
        return
    with _builtins_lock:
        if _builtins_loaded or _builtins_loading:
            return
        _builtins_loading = True
        try:
            from harness.metrics import (  # noqa: F401
                basic,
                checks,
                match,
                readability,
                rouge,
                similarity,
                structure,
            )
        finally:
            _builtins_loading = False
        _builtins_loaded = True


def get_metric(name: str) -> Metric | BatchMetric:
    """The metric registered as ``name``.

    Raises MetricError("unknown metric 'x'; known: a, b, ...") for a name nobody registered.
    """
    _load_builtins()
    try:
        return registered()[name]
    except KeyError:
        known = ", ".join(metric_names())
        raise MetricError(f"unknown metric '{name}'; known: {known}") from None


def metric_direction(name: str, known: Mapping[str, int] | None = None) -> int:
    """+1 when a higher ``name`` score is better, -1 when lower is, 0 when neither.

    ``known`` are a run's own directions, stored with it (a ``python:`` metric, a kind or an
    MLflow metric says which way is better only to the run that used it); else a registered
    metric says so; any other score is a judge's, and a judge scores higher for better (yes
    over no, 5 over 1, labels listed worst to best).
    """
    if known and name in known:
        return int(known[name])
    _load_builtins()
    metric = registered().get(name)
    return metric.direction if metric is not None else 1


def metric_names() -> list[str]:
    """Names of every registered metric, sorted."""
    _load_builtins()
    return sorted(registered())


def build_metric(
    kind: str, name: str | None, params: Mapping[str, Any], *, base_dir: Any = None
) -> Metric:
    """A metric of a parameterized kind (``regex``, ``contains``, ...); see ``kinds``.

    ``base_dir`` is where a ``@FILE`` parameter is read from (default: the current folder).
    """
    from harness.metrics.kinds import build

    _load_builtins()
    return build(kind, name, params, base_dir=base_dir)


def get_kind(name: str) -> Kind:
    """The parameterized kind ``name``; MetricError naming the known ones otherwise."""
    from harness.metrics.kinds import lookup_kind

    _load_builtins()
    return lookup_kind(name)


def kind_names() -> list[str]:
    """The parameterized kinds, sorted."""
    from harness.metrics.kinds import registered_kinds

    _load_builtins()
    return sorted(registered_kinds())


def kind_parameters(name: str, value: str | None) -> dict[str, Any]:
    """The parameters a command-line ``KIND[:VALUE]`` gives (``length:..200`` -> max)."""
    from harness.metrics.kinds import from_cli

    _load_builtins()
    return from_cli(name, value)
