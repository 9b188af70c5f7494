"""A run's scores as one value per row and metric: what ``compare``, ``check`` and the
report all compute their statistics from.

A judge asked several times (``--judge-samples``) scores each row with the mean of its
samples, so every row weighs the same. ``errors`` is one more column: 1 for a row that
failed (its model call, or any of its judge calls: the run's "N failed"), 0 otherwise, so
failures are compared and gated like a metric.

Which scores are 0/1 (``binary``: Wilson's interval, McNemar's test) is what the run stored
its metrics and judges declare, never a look at the values (see ``harness.stats``), as is
the range each bounded one scores in (``bounds``: a judge's scale, token F1's 0 to 1,
latency's 0 to infinity, stored as ``[0, null]``), where its t intervals are cut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from harness.slices.per_row import JudgeSamples
    from harness.store.exports import RunRecord

__all__ = [
    "ERRORS",
    "RunScores",
    "asked_metrics",
    "binary_metrics",
    "labelled_judges",
    "metric_bounds",
    "record_scores",
]

ERRORS = "errors"  # the per-row failure indicator (model or judge), compared and gated
# The registered metrics that score 0 or 1 (``Metric.binary``; a test keeps this in step):
# what a run stored before runs recorded ``binary`` is read with.
BUILTIN_BINARY = frozenset({"exact_match"})
# The registered metrics never negative with no largest value (``Metric.bounds`` of 0 to
# infinity): declared after runs began to store ``bounds``, so a run stored in between
# reads them for its built-in metrics of these names.
BUILTIN_LOWER_BOUNDS = {name: (0.0, math.inf) for name in ("latency", "word_count")}
# The registered metrics that score in a range of their own (``Metric.bounds``; a test keeps
# this in step): what a run stored before runs recorded ``bounds`` is read with.
BUILTIN_BOUNDS = {
    **{name: (0.0, 1.0) for name in ("rouge1", "rouge2", "rougeL", "token_f1")},
    **BUILTIN_LOWER_BOUNDS,
}
# What a run's ``metric_sources`` says of a built-in metric (``harness.scoring.versions``).
BUILTIN_SOURCE = "built-in metric"

Bounds = dict[str, tuple[float, float]]
# A run's per-row scores by metric: ``RunScores.columns`` (or a frame of them, a column each).
Values = Mapping[str, Any]


@dataclass
class RunScores:
    """One run's per-row scores (``harness.slices.per_row``), its rows by their place in the
    run's order; compare's frames (``rows``, ``values``, ``rationales``, ``judge_errors``,
    indexed by example id) are made from them when first asked for."""

    record: RunRecord | None  # what ``rows`` and ``rationales`` are read from
    ids: list[str]  # each row's example id
    columns: dict[str, np.ndarray]  # metric, judge and ERRORS -> per-row value; NaN: none
    judges: frozenset[str]
    order: list[str]  # the metrics in the order the run asked for them, then ERRORS
    directions: dict[str, int] = field(default_factory=dict)  # the run's own, when stored
    binary: frozenset[str] = frozenset()  # the metrics (and ERRORS) declared to score 0 or 1
    bounds: Bounds = field(default_factory=dict)  # the range each bounded metric scores in
    model_errors: list[str | None] = field(default_factory=list)  # per row
    latencies: list[float | None] = field(default_factory=list)  # per row, the model's
    has_context: bool = False  # a row has a (non-empty) context
    samples: dict[str, JudgeSamples] = field(default_factory=dict)  # per judge
    judge_failures: list[tuple[int, str, str]] = field(default_factory=list)  # (row, judge, error)

    @cached_property
    def rows(self) -> pd.DataFrame:
        """input, expected, context, extra, output, error, ... indexed by example id."""
        assert self.record is not None
        return self.record.rows().set_index("id")

    @cached_property
    def values(self) -> pd.DataFrame:
        """One column per metric, judge and ERRORS, indexed by example id; NaN = not scored."""
        import pandas as pd

        frame = pd.DataFrame(self.columns, index=pd.Index(self.ids, name="id"), dtype=float)
        frame.columns.name = "metric"
        return frame

    @cached_property
    def rationales(self) -> pd.DataFrame:
        """One column per judge: each row's first sample's rationale."""
        import pandas as pd

        from harness.slices.per_row import JUDGE_SOURCE

        found: dict[str, dict[str, Any]] = {}
        if self.judges and self.record is not None:
            fields = ("metric", "sample", "rationale", "source")
            with self.record.reader() as reader:
                for place, metric, _, rationale, source in reader.scores(fields):
                    if source == JUDGE_SOURCE:  # by sample: the first one is kept
                        found.setdefault(metric, {}).setdefault(self.ids[place], rationale)
        return pd.DataFrame(found, index=pd.Index(self.ids, name="example_id"), dtype=object)

    @cached_property
    def judge_errors(self) -> pd.DataFrame:
        """One column per judge that failed on some row: its first failed sample's error
        (else NaN)."""
        import pandas as pd

        found: dict[str, dict[str, str]] = {}
        for place, judge, error in self.judge_failures:  # by sample: the first one is kept
            found.setdefault(judge, {}).setdefault(self.ids[place], error)
        return pd.DataFrame(found, index=pd.Index(self.ids, name="example_id"), dtype=object)


def binary_metrics(config: Mapping[str, Any], values: Values | None = None) -> frozenset[str]:
    """The metrics and judges of a run (its stored ``config``) whose every score is 0 or 1,
    and ERRORS. A run stores them; for one stored before it did: ``exact_match`` and each
    judge with two answers (yes/no, two labels, a 0-1 scale) asked once. Anything else is a
    scale, such as a ``python:`` metric that returned only 0 and 1 (it declared nothing).

    With the run's per-row ``values``, a name whose scores are not all 0 or 1 is left out:
    a declaration cannot be wrong for a run that stored it, but an older run's guess can (a
    ``python:`` metric of its own named ``exact_match``)."""
    found = _declared(config)
    if values is None:
        return frozenset(found)
    return frozenset(
        name
        for name in found
        if name not in values or _within(values[name], 0.0, 1.0, ends_only=True)
    )


def metric_bounds(config: Mapping[str, Any], values: Values | None = None) -> Bounds:
    """The metrics and judges of a run (its stored ``config``) whose every score lies in a
    known range, with it (ERRORS and every 0/1 metric: 0 to 1; an open side is infinite:
    latency's 0 to inf). A run stores them, an open side as null; for one stored before it
    did: the registered metrics that declare one (token F1, ROUGE, latency, word count) and
    each judge, from its answers (a scale's ends, else 0 to 1: yes/no and labels). One
    stored before the built-in latency and word count declared theirs (0 to inf) reads
    them unless it says its metric of that name is not the built-in one.

    With the run's per-row ``values``, a name with a score outside its range is left out,
    as ``binary_metrics`` does (an older run's ``python:`` metric named ``token_f1``)."""
    stored = config.get("bounds")
    found: Bounds = {}
    if stored is not None:
        found = {str(k): _stored_range(v) for k, v in stored.items()}
        sources = config.get("metric_sources") or {}
        for name, bound in BUILTIN_LOWER_BOUNDS.items():
            if name not in found and sources.get(name, BUILTIN_SOURCE) == BUILTIN_SOURCE:
                found[name] = bound
    else:
        found = dict(BUILTIN_BOUNDS)
        for judge, labels in (config.get("judge_labels") or {}).items():
            found[str(judge)] = _judge_bounds([str(label) for label in labels])
    found.update({name: (0.0, 1.0) for name in _declared(config)})
    if values is None:
        return found
    return {
        name: (low, high)
        for name, (low, high) in found.items()
        if name not in values or _within(values[name], low, high)
    }


def _within(column: Any, low: float, high: float, *, ends_only: bool = False) -> bool:
    """Whether a column's every score (NaN: none) lies from ``low`` to ``high``, or is one
    of the two."""
    import numpy as np

    found = np.asarray(column, dtype=float)
    found = found[~np.isnan(found)]
    if ends_only:
        return bool(((found == low) | (found == high)).all())
    return bool(((found >= low) & (found <= high)).all())


def _stored_range(ends: Any) -> tuple[float, float]:
    """A range as a run stores it, ``[low, high]``, null for an open side."""
    low, high = ends
    return (-math.inf if low is None else float(low), math.inf if high is None else float(high))


def _judge_bounds(labels: list[str]) -> tuple[float, float]:
    """A judge's range from its answers, worst to best: a scale's ends, else 0 to 1."""
    if all(_whole(label) for label in labels):
        ends = [int(label) for label in labels]
        return float(min(ends)), float(max(ends))
    return 0.0, 1.0


def _declared(config: Mapping[str, Any]) -> set[str]:
    stored = config.get("binary")
    if stored is not None:
        return {*map(str, stored), ERRORS}
    found = {*BUILTIN_BINARY, ERRORS}
    if int(config.get("judge_samples") or 1) == 1:
        for judge, labels in (config.get("judge_labels") or {}).items():
            if len(labels) == 2 and not (_whole(labels[0]) and _whole(labels[1])):
                found.add(str(judge))  # yes/no or two labels: 0 and 1
            elif [str(label) for label in labels] == ["0", "1"]:
                found.add(str(judge))  # a 0-1 scale
    return found


def labelled_judges(config: Mapping[str, Any]) -> list[str]:
    """The judges of a run (its stored config's ``judge_labels``) that answer with labels of
    their own, such as rude/neutral/warm: the number each score stores is the label's place
    on the list (``OutputSpec.value_of``), which only the label says. Not a yes/no judge
    (nor two labels no/yes: the same 0 and 1), nor a scale, whose answers are numbers."""
    found = []
    for judge, labels in (config.get("judge_labels") or {}).items():
        texts = [str(label) for label in labels]
        if texts != ["no", "yes"] and not all(_whole(t) for t in texts):
            found.append(str(judge))
    return sorted(found)


def asked_metrics(config: Mapping[str, Any]) -> list[str]:
    """The metrics a run asked for, in its order: those named by spec, then those given as
    Python objects (``harness.evaluate``). The report's metrics line and its cards, and
    compare's and check's tables, follow it."""
    return list(
        dict.fromkeys([*(config.get("metrics") or []), *(config.get("python_objects") or [])])
    )


def _whole(label: Any) -> bool:
    return str(label).lstrip("-").isdigit()


def record_scores(record: RunRecord) -> RunScores:
    """Per-row scores of ``record``: a judge's samples averaged per row, read a chunk at a
    time, with neither pandas nor pyarrow for a stored run."""
    from harness.slices.per_row import SCORE_FIELDS, per_row

    with record.reader() as reader:
        heads = reader.heads()
        ids = [example_id for example_id, _, _, _ in heads]
        model_errors = [error for _, error, _, _ in heads]
        found = per_row(model_errors, reader.scores(SCORE_FIELDS))
    columns = {**found.values, ERRORS: found.failed.astype(float)}
    metrics = list(found.values)
    config = record.info.config
    asked = [*asked_metrics(config), *(config.get("judges") or [])]
    order = [m for m in dict.fromkeys([*asked, *sorted(metrics)]) if m in metrics]
    # A run stores which way each of its metrics is better: a python: metric, a kind or an
    # MLflow metric is known to no registry here.
    directions = {str(k): int(v) for k, v in (config.get("directions") or {}).items()}
    return RunScores(
        record,
        ids,
        columns,
        frozenset(found.judges),
        [*order, ERRORS],
        directions,
        binary_metrics(config, columns),
        metric_bounds(config, columns),
        model_errors,
        [latency for _, _, latency, _ in heads],
        any(has_context for _, _, _, has_context in heads),
        found.judges,
        found.judge_failures,
    )


def metric_failures(db_path: Path, run_id: str) -> int:
    """Rows of a stored run on which a metric (not a judge) failed."""
    from harness.store.db import connect

    with connect(db_path, read_only=True) as con:
        found = con.execute(
            "SELECT count(DISTINCT example_id) FROM scores "
            "WHERE run_id = ? AND error IS NOT NULL AND source != 'llm_judge'",
            [run_id],
        ).fetchone()
    return int(found[0]) if found else 0


def scores_failed_with(db_path: Path, run_id: str, prefix: str) -> set[tuple[str, str]]:
    """(row, metric) of a stored run's scores whose error starts with ``prefix``."""
    from harness.store.db import connect

    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT DISTINCT example_id, metric FROM scores "
            "WHERE run_id = ? AND starts_with(error, ?)",
            [run_id, prefix],
        ).fetchall()
    return {(str(row), str(metric)) for row, metric in rows}
