"""Metrics by slice: per value of a column, the rows, and every metric's mean with its 95%
interval, next to the same numbers over all rows.

Each row weighs the same: a judge asked several times scores a row with the mean of its
samples, as in the run's aggregates. A metric's mean, standard error and interval come
from ``harness.stats.estimate_mean`` (Wilson's interval for a metric declared 0/1, t
otherwise, whatever the slice's values happen to be, cut at the range a bounded metric
declares: a judge's scale, token F1's 0 to 1), the
same estimates ``compare`` and the reports show, over the rows of the slice that have a
score (``count``; a failed row has none). Small slices get wide intervals: that is the
point of showing them.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.numbers import range_list, range_text
from harness.slices.labels import is_missing, shown_value, sort_labels
from harness.slices.per_row import SCORE_FIELDS, frame_tuples, per_row
from harness.stats import MeanEstimate, estimate_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Slice",
    "SliceTable",
    "failed_rows",
    "mlflow_slice_metrics",
    "no_interval_words",
    "per_row_values",
    "slice_table",
    "slices_frame",
]


def per_row_values(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per example id with a score, one column per metric (in the order first seen):
    the score, a judge's samples averaged (``harness.slices.per_row``); NaN where a row has
    no score."""
    import pandas as pd

    if scores.empty:
        return pd.DataFrame(index=pd.Index([], name="example_id"), dtype=float)
    ids = [str(i) for i in pd.unique(scores["example_id"])]
    found = per_row([None] * len(ids), _score_tuples(scores, ids))
    frame = pd.DataFrame(found.values, index=pd.Index(ids, name="example_id"), dtype=float)
    # in the order first seen in ``scores``; unique() and not dict.fromkeys(), which walks
    # an Arrow column one Python string at a time (40,000 of them: 27 ms, against 0.5 ms)
    frame = frame.reindex(columns=[str(m) for m in pd.unique(scores["metric"])])
    frame.columns.name = "metric"
    return frame[frame.notna().any(axis=1)]


def failed_rows(model_errors: pd.Series, scores: pd.DataFrame) -> pd.Series:
    """Whether each row failed (``model_errors``' index: the example ids; its values the
    model call's error, null when it answered): its model call, or any of its judge calls
    (``harness.slices.per_row``)."""
    import pandas as pd

    ids = [str(i) for i in model_errors.index]
    errors = [None if e is None or e != e else e for e in model_errors.tolist()]
    failed = per_row(errors, _score_tuples(scores, ids)).failed
    return pd.Series(failed, index=model_errors.index, dtype=bool)


def _score_tuples(scores: pd.DataFrame, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``scores``' rows of ``ids`` as ``per_row`` reads them, in its order."""
    if scores.empty:
        return []
    place = {example_id: n for n, example_id in enumerate(ids)}
    found = [
        (place[str(key)], *score)
        for key, *score in frame_tuples(scores, ("example_id", *SCORE_FIELDS))
        if str(key) in place
    ]
    found.sort(key=lambda s: (s[0], s[1], s[2] or 0))
    return found


@dataclass(frozen=True)
class Slice:
    """The rows with one value of the column (or every row, for the overall line)."""

    value: str | None  # None: rows without a value (or, as ``overall``, every row)
    rows: int
    errors: int  # rows that failed: their model call or a judge call (``failed_rows``)
    means: dict[str, MeanEstimate]  # metric -> estimate over the slice's scored rows

    def as_dict(self, bounds: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
        """``range``: where each metric's t interval is cut (``bounds``; null: nowhere)."""
        bounds = bounds or {}
        return {
            "value": self.value,
            "rows": self.rows,
            "errors": self.errors,
            "metrics": {
                metric: {
                    "count": m.n,
                    "mean": _finite(m.mean),
                    "se": _finite(m.se),
                    "ci": [_finite(m.low), _finite(m.high)],
                    "interval": m.method,
                    "interval_note": _ci_note(m),
                    "range": range_list(bounds.get(metric)),
                }
                for metric, m in self.means.items()
            },
        }


@dataclass(frozen=True)
class SliceTable:
    """One ``--by`` column: a line per value, and the overall line."""

    column: str
    overall: Slice
    slices: list[Slice]
    metrics: list[str]
    binary: frozenset[str] = frozenset()  # the metrics declared 0/1: Wilson's interval
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # t cut there

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "overall": self.overall.as_dict(self.bounds),
            "slices": [s.as_dict(self.bounds) for s in self.slices],
        }

    def methods(self) -> str:
        """Which interval each metric gets, in words: ``Wilson's for exact_match; t cut at
        [0, 1] for token_f1, tone; t cut at [0, ∞) for latency``."""
        wilson = [m for m in self.metrics if m in self.binary]
        ranges: dict[tuple[float, float] | None, list[str]] = {}
        for metric in self.metrics:
            if metric not in self.binary:
                ranges.setdefault(self.bounds.get(metric), []).append(metric)
        parts = [f"Wilson's for {', '.join(wilson)}"] if wilson else []
        for bound, names in ranges.items():
            cut = f" cut at {range_text(bound)}" if bound else ""
            parts.append(f"t{cut} for {', '.join(names)}")
        return "; ".join(parts)

    def records(self) -> list[dict[str, Any]]:
        """One flat record per slice (overall first, value ``"(all)"``) and metric: the
        table logged to MLflow and returned by ``harness.evaluate``. The mean and its
        interval come before the counts so MLflow's artifact view shows them unscrolled;
        ``ci_note`` says why a mean has no interval (None when it has one), ``interval``
        which one it has (``wilson``, ``t``, ``none``) and ``range`` where a t interval is
        cut (``[0, 1]``, ``[0, None]`` at 0 only; None: nowhere)."""
        records = []
        for s in [self.overall, *self.slices]:
            overall = s is self.overall  # the (none) slice's value stays null
            value = shown_value(s.value, overall=overall) if overall or s.value else None
            for metric in self.metrics:
                m = s.means[metric]
                records.append(
                    {
                        "column": self.column, "value": value, "metric": metric,
                        "mean": _finite(m.mean), "ci_low": _finite(m.low),
                        "ci_high": _finite(m.high), "rows": s.rows, "count": m.n,
                        "ci_note": _ci_note(m), "interval": m.method,
                        "range": range_list(self.bounds.get(metric)),
                    }
                )  # fmt: skip
        return records


def slices_frame(tables: Sequence[SliceTable]) -> pd.DataFrame:
    """Every table's ``records`` as one frame: ``slices_table`` in MLflow and ``evaluate``."""
    import pandas as pd

    return pd.DataFrame.from_records([r for table in tables for r in table.records()])


def slice_table(
    column: str,
    labels: pd.Series,
    values: pd.DataFrame,
    *,
    failed: pd.Series | None = None,
    metrics: Sequence[str] | None = None,
    binary: Collection[str] = (),
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> SliceTable:
    """The slices of ``column``. ``labels`` maps each row's example id to its value (its
    index is the run's rows); ``values`` holds the rows' scores (``per_row_values``);
    ``failed`` marks the rows that failed (``failed_rows``); ``binary`` names the metrics declared
    to score 0 or 1 (``harness.store.scores.binary_metrics``), ``bounds`` the range each
    bounded one scores in (``metric_bounds``: its t intervals are cut there)."""
    import numpy as np

    metrics = list(metrics if metrics is not None else values.columns)
    aligned = values.reindex(index=labels.index, columns=metrics)
    failures = (
        failed.reindex(labels.index).fillna(False).astype(bool).to_numpy()
        if failed is not None
        else np.zeros(len(labels), dtype=bool)
    )
    # A gap (NaN, pandas' NA or NaT) is a row without a value, as None is.
    label_array = np.array(
        [None if is_missing(v) else v for v in labels.to_numpy(dtype=object)], dtype=object
    )

    def one(value: str | None, mask: np.ndarray) -> Slice:
        means = {}
        for metric in metrics:
            scores = aligned[metric].to_numpy(dtype=float)[mask]
            means[metric] = estimate_mean(
                scores[~np.isnan(scores)], binary=metric in binary,
                bounds=(bounds or {}).get(metric),
            )  # fmt: skip
        return Slice(value, int(mask.sum()), int(failures[mask].sum()), means)

    overall = one(None, np.ones(len(labels), dtype=bool))
    slices = [
        one(value, np.array([v == value for v in label_array], dtype=bool))
        for value in sort_labels(label_array.tolist())
    ]
    return SliceTable(
        column, overall, slices, metrics, frozenset(binary) & set(metrics),
        {m: b for m, b in (bounds or {}).items() if m in metrics and m not in binary},
    )  # fmt: skip


def no_interval_words(m: MeanEstimate) -> str | None:
    """The few words of a table cell for a mean without an interval (``no spread``, ``one
    row``); None when it has one or no row has a score (the cell shows no mean either)."""
    if math.isfinite(m.low) or m.n == 0:
        return None
    return "one row" if m.n == 1 else "no spread" if m.interval_note else None


def _ci_note(m: MeanEstimate) -> str | None:
    """Why ``m`` has no interval: its ``interval_note`` when its scores have no spread (the
    words of ``--json`` and the report), else too few rows (slices have no clusters);
    None when it has one."""
    if math.isfinite(m.low):
        return None
    if m.interval_note:
        return m.interval_note
    return "no row has a score" if m.n == 0 else "one row: an interval needs two or more"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# MLflow metric names may hold letters, digits, "_", "-", ".", " " and "/" (and ":" except
# on Windows); "=" is refused. Names must also stay themselves as paths ("a/./b" is not).
_UNSAFE = re.compile(r"[^\w.\- ]")
_HASHED = re.compile(r"_[0-9a-f]{8}\Z")  # what a segment made safe ends with
_NO_VALUE = "_none_"  # the segment of the slice of rows without a value
MLFLOW_NAME_MAX = 250


def mlflow_slice_metrics(table: SliceTable) -> dict[str, float]:
    """``NAME/mean/by/COLUMN/VALUE`` -> the slice's mean, for every metric and slice.

    A column's or value's segment depends on it alone, so a slice keeps its name from run
    to run whatever other values a run has: a text MLflow takes as it is stays itself; any
    other (one with a character MLflow refuses, ``.`` or ``..``, one that ends like a made
    segment, or the text ``_none_``) has its characters MLflow refuses made ``_`` and a
    short hash of itself added (``a/b`` -> ``a_b_<8 hex>``, never ``a_b``, which is the
    value ``a_b``); a row without a value is ``_none_``.
    """
    column = _segment(table.column)
    names: dict[str, float] = {}
    for s in table.slices:
        segment = _NO_VALUE if s.value is None else _segment(s.value)
        for metric, m in s.means.items():
            if not math.isfinite(m.mean):
                continue
            name = f"{metric}/mean/by/{column}/{segment}"
            if len(name) > MLFLOW_NAME_MAX:
                name = f"{name[: MLFLOW_NAME_MAX - 9]}_{_digest(name)}"
            names[name] = m.mean
    return names


def _segment(text: str) -> str:
    """``text`` itself when MLflow takes it as one path segment and it cannot be mistaken
    for a made segment; else its safe characters and a hash of it."""
    safe = _UNSAFE.sub("_", text).strip() or "_"
    if set(safe) == {"."}:  # "." and ".." are path moves
        safe = "_" * len(safe)
    if safe == text and text != _NO_VALUE and not _HASHED.search(text):
        return text
    return f"{safe}_{_digest(text)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
