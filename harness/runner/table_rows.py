"""A run's per-row table (``eval_results_table``) in plain Python: read from the store a
page of 1,000 rows at a time (``open_table``), what the MLflow run's table artifact and
dataset are written from without pandas (``prepare_mlflow_end``), so the run's process
never holds the whole table nor imports pandas for it; and for rows in memory
(``frame_rows``), what ``harness.runner.summary.results_table`` builds its DataFrame from.
tests/runner/test_table_rows.py checks both against the pandas pivots that defined the
table before, byte for byte, over stored runs of every kind. A fresh run's MLflow worker
makes the same table of the rows it receives (``SpooledTable``, without the store;
tests/runner/test_worker_table.py checks it against ``open_table``'s).

- ``ROW_COLUMNS``; then the data's own columns, in the order the rows first name them (a
  name the table already has keeps the table's column); then each metric's value (the mean
  of its samples), in the order the scores (by example, metric, sample) first name them;
- ``<metric>/label`` of labelled judges, ``<metric>/rationale`` of judges and of metrics
  that give rationales, ``<metric>/error`` of metrics with a failed answer: the first
  sample's (the first failed sample's for errors), each set of columns by name;
- ``<judge>/std``, ``/agreement``, ``/self_disagreement`` of the judges some row of which
  has two or more usable samples, by name.

Which columns are float columns is pandas' inference over the whole column (an int column
with a missing value is one), found first: the scores by an aggregate in the store (which
metrics, which columns they have), the data's columns in a pass over the rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.fastjson import loads_text

__all__ = ["ROW_COLUMNS", "SpooledTable", "StoredTable", "frame_rows", "open_table"]

# The per-row table's columns before the metrics, in order.
ROW_COLUMNS = (
    "id", "input", "expected", "context", "output", "error", "latency_s",
    "input_tokens", "output_tokens", "cached",
)  # fmt: skip
_STATS = ("std", "agreement", "self_disagreement")
_DATASET_COLUMNS = ("id", "input", "expected", "context")
_CHUNK_ROWS = 1000
# The worker's chunks are smaller: it renders them while the run's process is at its
# largest (the report), and each chunk's texts add to the process tree's peak.
_SPOOLED_CHUNK_ROWS = 250
_INT64 = (-(2**63), 2**64)  # the ints pandas holds as numbers (uint64 above int64's top)

# A run's stored rows with their examples.
_RUN_ROWS = """
    FROM outputs o
    JOIN runs r ON r.run_id = o.run_id
    LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                        AND e.id = o.example_id
    WHERE o.run_id = ?
"""
# A page of rows (by their ids) and their scores: a page at a time, so that DuckDB holds
# no more of the result than Python does.
_PAGE = "(SELECT unnest(?::VARCHAR[]) AS id) page"
# Only the page's examples joined (not every example of the dataset, texts and all).
_OUTPUTS = f"""
    WITH run AS (SELECT dataset, dataset_version FROM runs WHERE run_id = ?)
    SELECT o.example_id, e.input, e.expected, e.context, o.output, o.error, o.latency_s,
           o.input_tokens, o.output_tokens, o.cached, e.extra
    FROM {_PAGE}
    JOIN outputs o ON o.example_id = page.id AND o.run_id = ?
    LEFT JOIN (
        SELECT e.* FROM examples e JOIN run ON e.dataset = run.dataset
                                           AND e.version = run.dataset_version
        WHERE e.id IN (SELECT unnest(?::VARCHAR[]))
    ) e ON e.id = o.example_id
"""
_SCORES = f"""
    SELECT s.example_id, s.metric, s.sample, s.value, s.label, s.rationale, s.error, s.source
    FROM scores s JOIN {_PAGE} ON page.id = s.example_id
    WHERE s.run_id = ?
    ORDER BY s.example_id, s.metric, s.sample
"""
# What the columns are decided by: the run's metrics, as ``_Shape.add_score`` finds them
# over every score (by example, metric, sample), in one aggregate (a metric is first named
# by its first example, metrics of the same first example by name), and every row's data
# columns and missing values.
_SHAPE_METRICS = """
    SELECT metric, bool_or(explained), bool_or(failed), bool_or(judged), max(usable) >= 2
    FROM (
        SELECT metric, example_id,
               bool_or(rationale IS NOT NULL) AS explained, bool_or(error IS NOT NULL) AS failed,
               bool_or(source = 'llm_judge') AS judged,
               count(*) FILTER (WHERE source = 'llm_judge' AND NOT isnan(value)) AS usable
        FROM scores WHERE run_id = ? GROUP BY metric, example_id
    )
    GROUP BY metric ORDER BY min(example_id), metric
"""
_SHAPE_OUTPUTS = f"""
    SELECT o.example_id, e.extra, o.example_id IS NULL, e.input IS NULL,
           e.expected IS NULL OR len(e.expected) = 0, e.context IS NULL
    {_RUN_ROWS} ORDER BY e.position, o.example_id
"""


@dataclasses.dataclass
class _Extra:
    """What a data column holds, for pandas' inference of its type."""

    present: int = 0  # rows with a value (not None)
    numbers: bool = True  # every value an int (in int64/uint64) or a float, no bool
    floats: bool = False  # some value a float

    def add(self, value: Any) -> None:
        if value is None:
            return
        self.present += 1
        if isinstance(value, float):
            self.floats = True
        elif not isinstance(value, int) or isinstance(value, bool):
            self.numbers = False
        else:  # an int beyond int64 and uint64: pandas holds the column as objects
            self.numbers = self.numbers and _INT64[0] <= value < _INT64[1]


@dataclasses.dataclass
class _Shape:
    """The table's columns, found over every score and row of the run."""

    labelled: Collection[str]
    metrics: dict[str, None] = dataclasses.field(default_factory=dict)  # first seen first
    judged: set[str] = dataclasses.field(default_factory=set)
    explained: set[str] = dataclasses.field(default_factory=set)  # some score has a rationale
    failed: set[str] = dataclasses.field(default_factory=set)
    repeated: set[str] = dataclasses.field(default_factory=set)  # a row with 2+ usable samples
    usable: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    extras: dict[str, _Extra] = dataclasses.field(default_factory=dict)
    rows: int = 0
    missing: Counter[str] = dataclasses.field(default_factory=Counter)

    def add_score(self, score: Sequence[Any]) -> None:
        example_id, metric, _, value, explained, failed, source = score
        self.metrics.setdefault(metric)
        if explained:
            self.explained.add(metric)
        if failed:
            self.failed.add(metric)
        if source == "llm_judge":
            self.judged.add(metric)
            if _number(value):
                key = (metric, example_id)
                if key in self.usable:
                    self.repeated.add(metric)
                self.usable.add(key)

    def add_metric(
        self, metric: str, explained: bool, failed: bool, judged: bool, repeated: bool
    ) -> None:
        """What ``add_score`` finds of ``metric`` over all its scores, found by the store."""
        self.metrics.setdefault(metric)
        for found, names in (
            (explained, self.explained), (failed, self.failed), (judged, self.judged),
            (repeated, self.repeated),
        ):  # fmt: skip
            if found:
                names.add(metric)

    def add_row(self, extra: Any, missing: Sequence[bool]) -> None:
        self.rows += 1
        for name, gone in zip(_DATASET_COLUMNS, missing, strict=True):
            self.missing[name] += bool(gone)
        if isinstance(extra, dict):
            for name, value in extra.items():
                self.extras.setdefault(name, _Extra()).add(value)

    def columns(self) -> tuple[list[str], list[str], list[bool]]:
        """The table's columns, the data's columns among them, and which are float columns."""
        metrics = list(self.metrics)
        named = [
            *metrics,
            *(f"{m}/label" for m in self.labels()),
            *(f"{m}/rationale" for m in self.rationales()),
            *(f"{m}/error" for m in sorted(self.failed)),
            *(f"{m}/{s}" for m in sorted(self.repeated) for s in _STATS),
        ]
        taken = {*ROW_COLUMNS, *named}
        extras = [name for name in self.extras if name not in taken]
        floats = [
            *(c == "latency_s" for c in ROW_COLUMNS),  # the tokens: ints, NULLs or not
            *(self._float_extra(self.extras[name]) for name in extras),
            *(True for _ in metrics),
            *(False for _ in named[len(metrics) :]),
        ]  # fmt: skip
        stats = len(ROW_COLUMNS) + len(extras) + len(named) - 3 * len(self.repeated)
        for at in range(stats, len(floats), 3):  # std and agreement; not self_disagreement
            floats[at] = floats[at + 1] = True
        return [*ROW_COLUMNS, *extras, *named], extras, floats

    def _float_extra(self, extra: _Extra) -> bool:
        # pandas: numbers with a missing value or a float among them are a float column.
        return extra.numbers and extra.present > 0 and (extra.floats or extra.present < self.rows)

    def labels(self) -> list[str]:
        return sorted(m for m in self.metrics if m in self.labelled)

    def rationales(self) -> list[str]:
        return sorted(self.judged | self.explained)


def _number(value: Any) -> bool:
    return value is not None and not math.isnan(value)


def _mean(values: Sequence[float]) -> float:
    """pandas' groupby mean (Kahan-compensated sum over the count)."""
    if len(values) == 1:
        return 0.0 + values[0]  # what the sum below makes of one value (-0.0 is 0.0)
    total = compensation = 0.0
    for value in values:
        y = value - compensation
        t = total + y
        compensation = t - total - y
        if compensation != compensation:
            compensation = 0.0
        total = t
    return total / len(values)


def _std(values: Sequence[float]) -> float:
    """pandas' groupby ``std(ddof=0)`` (Welford's running mean and squares)."""
    mean = squares = 0.0
    for count, value in enumerate(values, start=1):
        before = mean
        mean += (value - before) / count
        squares += (value - before) * (value - mean)
    return math.sqrt(squares / len(values))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The shape's columns after the data's, as each row's values are found of them."""

    metrics: list[str]
    labels: list[str]
    rationales: list[tuple[str, bool]]  # and whether every score's rationale counts
    failed: list[str]
    repeated: list[str]

    @classmethod
    def of(cls, shape: _Shape) -> _Plan:
        rationales = [(m, m in shape.explained) for m in shape.rationales()]
        return cls(
            list(shape.metrics), shape.labels(), rationales, sorted(shape.failed),
            sorted(shape.repeated),
        )  # fmt: skip


def _metric_values(
    plan: _Plan, data_columns: Sequence[str], extra: Any, scores: Sequence[Sequence[Any]]
) -> list[Any]:
    """A row's values after ``ROW_COLUMNS``: its data columns' (``extra``: its example's
    columns, parsed), then its metrics' from ``scores``, its scores as tuples of
    (example_id, metric, sample, value, label, rationale, error, source), missing values
    None (a NaN value too)."""
    by_metric: dict[str, list[Sequence[Any]]] = {}
    for score in scores:
        same = by_metric.get(score[1])
        if same is None:
            by_metric[score[1]] = [score]
        else:
            same.append(score)
    if isinstance(extra, dict):
        found = [extra.get(n) for n in data_columns]
    else:
        found = [None] * len(data_columns)
    none: tuple[Sequence[Any], ...] = ()
    for metric in plan.metrics:  # a judge's samples in the order given (pandas sums so)
        usable = [s[3] for s in by_metric.get(metric, none) if _number(s[3])]
        found.append(_mean(usable) if usable else None)
    found += [_first(by_metric.get(m, none), 4) for m in plan.labels]
    for metric, explained in plan.rationales:
        own = by_metric.get(metric, none)
        found.append(_first(own if explained else [s for s in own if s[7] == "llm_judge"], 5))
    found += [
        _first([s for s in by_metric.get(m, none) if s[6] is not None], 6) for m in plan.failed
    ]
    for metric in plan.repeated:
        usable = [
            s[3] for s in by_metric.get(metric, none) if s[7] == "llm_judge" and _number(s[3])
        ]
        if len(usable) < 2:
            found += [math.nan] * 3  # as pandas' join leaves a row without them
            continue
        agreement = max(Counter(usable).values()) / len(usable)
        found += [_std(usable), agreement, agreement < 1.0]
    return found


def _first(scores: Sequence[Sequence[Any]], at: int) -> Any:
    """Field ``at`` of the score of the first sample among ``scores``; None if none."""
    if len(scores) == 1:
        return scores[0][at]
    return min(scores, key=lambda s: s[2])[at] if scores else None


def _extra(text: str | None) -> Any:
    return loads_text(text) if text and text != "{}" else None


@dataclasses.dataclass
class StoredTable:
    """A stored run's per-row table: its columns, and its rows read a chunk at a time."""

    con: Any  # the store, open (``open_table``)
    run_id: str
    ids: list[str]  # the rows', in dataset order
    columns: list[str]
    data_columns: list[str]  # the data's own columns among them
    floats: list[bool]  # which columns are float columns (pandas' inference)
    missing: dict[str, int]  # of the dataset's columns (id, input, expected, context)
    plan: _Plan

    @property
    def rows(self) -> int:
        return len(self.ids)

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The rows, in dataset order, up to 1,000 at a time."""
        for start in range(0, len(self.ids), _CHUNK_ROWS):
            ids = self.ids[start : start + _CHUNK_ROWS]
            found = self.con.execute(_OUTPUTS, [self.run_id, ids, self.run_id, ids]).fetchall()
            outputs = {output[0]: output for output in found}
            scores: dict[str, list[tuple[Any, ...]]] = {}
            for score in self.con.execute(_SCORES, [ids, self.run_id]).fetchall():
                scores.setdefault(score[0], []).append(score)
            rows = []
            for row_id in ids:
                output = outputs[row_id]
                expected = " || ".join(output[2]) if output[2] else None
                own = scores.get(row_id, ())
                rest = _metric_values(self.plan, self.data_columns, _extra(output[10]), own)
                rows.append((*output[:2], expected, *output[3:10], *rest))
            del found, outputs, scores
            yield rows


@contextlib.contextmanager
def open_table(db_path: Path, run_id: str, labelled: Collection[str] = ()) -> Iterator[StoredTable]:
    """The per-row table of a stored run, the store open for this block: its columns
    found now (an aggregate of its scores, a pass over its rows' data columns), its rows
    read by ``StoredTable.chunks``."""
    from harness.store.db import connect  # not at import: the MLflow worker imports this

    shape = _Shape(labelled=set(labelled))
    with connect(db_path, read_only=True) as con:
        for metric in con.execute(_SHAPE_METRICS, [run_id]).fetchall():
            shape.add_metric(*metric)
        ids = []
        for row_id, extra, *gone in con.sql(_SHAPE_OUTPUTS, params=[run_id]).iter_rows(_CHUNK_ROWS):
            ids.append(row_id)
            shape.add_row(_extra(extra), gone)
        columns, data_columns, floats = shape.columns()
        missing = {name: shape.missing[name] for name in _DATASET_COLUMNS}
        plan = _Plan.of(shape)
        yield StoredTable(con, run_id, ids, columns, data_columns, floats, missing, plan)


def frame_rows(
    ids: Sequence[str],
    extras: Sequence[str | None],
    scores: Sequence[Sequence[Any]],
    labelled: Collection[str] = (),
) -> tuple[list[str], list[str], list[bool], list[list[Any]]]:
    """The table's columns after ``ROW_COLUMNS``, the data's own among them (they come
    first), which are a metric's float columns, and each row's values of them, for rows in
    memory: their ids, their examples' stored columns (JSON text), their scores (tuples as
    ``_metric_values`` takes them, in the scores' order)."""
    shape = _Shape(labelled=set(labelled))
    by_row: dict[str, list[Sequence[Any]]] = {}
    for score in scores:
        shape.add_score((*score[:4], score[5] is not None, score[6] is not None, score[7]))
        by_row.setdefault(score[0], []).append(score)
    parsed = [_extra(text) for text in extras]
    for extra in parsed:
        shape.add_row(extra, (False,) * len(_DATASET_COLUMNS))
    columns, data_columns, floats = shape.columns()
    plan = _Plan.of(shape)
    rows = [
        _metric_values(plan, data_columns, extra, by_row.get(row_id, ()))
        for row_id, extra in zip(ids, parsed, strict=True)
    ]
    at = len(ROW_COLUMNS) + len(data_columns)
    return columns[len(ROW_COLUMNS) :], data_columns, floats[at:], rows


class SpooledTable:
    """A fresh run's per-row table made by the MLflow worker from the batches it receives
    (``harness.runner.mlflow_records.batch_payload``), not read back from the store: what
    ``open_table`` reads of the same stored run, the same columns (``_Shape``, its metrics
    ordered as ``_SHAPE_METRICS`` orders them, its data columns as the rows in dataset
    order first name them) and rows (``_metric_values``, a row's scores by metric and
    sample as ``_SCORES`` reads them), in dataset order.

    Each row (its output, its example's columns, its scores) is pickled to a temporary
    file as its batch comes, with its offset kept by its place in the dataset, so the
    worker never holds the table's texts: ``chunks`` reads them back in order, a chunk at
    a time. A batch it cannot take raises; the caller then drops the table.
    """

    def __init__(self, folder: Path | None, labelled: Collection[str]) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed by close()
        self._size = 0
        self._index: dict[tuple[int, str], tuple[int, int]] = {}  # (position, id): where
        self._shape = _Shape(labelled=set(labelled))
        self._first: dict[str, str] = {}  # each metric's first example id (min)
        self._named: dict[str, tuple[tuple[int, str], int]] = {}  # data column: where first
        self.columns: list[str] = []
        self.data_columns: list[str] = []
        self.floats: list[bool] = []
        self.missing: dict[str, int] = {}
        self._plan: _Plan | None = None

    @property
    def rows(self) -> int:
        return len(self._index)

    def add(
        self,
        outputs: Sequence[Sequence[Any]],
        scores: Sequence[Sequence[Any]],
        places: Sequence[tuple[int, Any]],
    ) -> None:
        """A batch: outputs in ``ROW_COLUMNS`` order, scores in ``SCORE_COLUMNS`` order
        (``harness.runner.mlflow_records``), each output's place in the dataset and its
        example's own columns."""
        import pickle

        by_row: dict[str, list[tuple[Any, ...]]] = {}
        for s in scores:  # as ``_SCORES`` reads them
            own = (s[0], s[1], s[4], s[2], s[5], s[6], s[8], s[3])
            by_row.setdefault(s[0], []).append(own)
        for output, (position, extra) in zip(outputs, places, strict=True):
            row_id = output[0]
            key = (position, row_id)
            if key in self._index:
                raise ValueError(f"row {row_id!r} came twice")
            own_scores = sorted(by_row.pop(row_id, ()), key=lambda s: (s[1], s[2]))
            self._add_shape(key, output, extra, own_scores)
            data = pickle.dumps((output, extra, own_scores), protocol=pickle.HIGHEST_PROTOCOL)
            self._file.write(data)
            self._index[key] = (self._size, len(data))
            self._size += len(data)
        if by_row:
            raise ValueError("scores came without their rows")

    def _add_shape(
        self, key: tuple[int, str], output: Sequence[Any], extra: Any, scores: list[Any]
    ) -> None:
        expected = output[2]
        gone = (output[0] is None, output[1] is None, not expected, output[3] is None)
        self._shape.add_row(extra, gone)
        if isinstance(extra, dict):
            for at, name in enumerate(extra):
                first = self._named.get(name)
                if first is None or (key, at) < first:
                    self._named[name] = (key, at)
        row_id, firsts, add_score = key[1], self._first, self._shape.add_score
        for s in scores:
            metric = s[1]
            known = firsts.get(metric)
            if known is None or row_id < known:
                firsts[metric] = row_id
            add_score((row_id, metric, s[2], s[3], s[5] is not None, s[6] is not None, s[7]))
        # ``add_score`` finds a row's repeated samples by its (metric, id): all its scores
        # came with it, so no later row needs this row's.
        self._shape.usable.clear()

    def finish(self) -> None:
        """Find the columns, once every batch is in."""
        shape = self._shape
        shape.metrics = dict.fromkeys(sorted(shape.metrics, key=lambda m: (self._first[m], m)))
        names = sorted(shape.extras, key=self._named.__getitem__)
        shape.extras = {name: shape.extras[name] for name in names}
        self.columns, self.data_columns, self.floats = shape.columns()
        self.missing = {name: shape.missing[name] for name in _DATASET_COLUMNS}
        self._plan = _Plan.of(shape)

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The rows, in dataset order, up to 250 at a time (``StoredTable.chunks``)."""
        import pickle

        assert self._plan is not None, "finish() first"
        self._file.flush()
        order = sorted(self._index)
        for start in range(0, len(order), _SPOOLED_CHUNK_ROWS):
            rows = []
            for key in order[start : start + _SPOOLED_CHUNK_ROWS]:
                offset, size = self._index[key]
                self._file.seek(offset)
                output, extra, scores = pickle.loads(self._file.read(size))
                expected = " || ".join(output[2]) if output[2] else None
                rest = _metric_values(self._plan, self.data_columns, extra, scores)
                rows.append((*output[:2], expected, *output[3:10], *rest))
            yield rows

    def close(self) -> None:
        self._file.close()
