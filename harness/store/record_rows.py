"""A run's rows read as Python objects, a chunk at a time: from a run's Arrow table (a run
file, ``harness.store.exports``), or straight from DuckDB for a stored run, so that a run's
own report needs neither pyarrow nor pandas (issue 14: importing them alone took ~80 MB of
the run's process at its end).

A row is a dict with ``ROW_FIELDS``' keys, its ``scores`` a list of dicts with
``SCORE_FIELDS``' keys, as ``pyarrow.Table.to_pylist`` makes them of a run's table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.store.bulk import SCORE_COLUMNS
from harness.store.db import connect

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.store.runs import RunInfo

__all__ = ["ROWS_SQL", "ROW_FIELDS", "SCORE_FIELDS", "RowReader", "StoredRows", "scores_sql"]

# A row's scores: the columns of the scores table a run writes (``bulk.SCORE_COLUMNS``)
# without the run and example ids.
SCORE_FIELDS = tuple(name for name, _ in SCORE_COLUMNS if name not in ("run_id", "example_id"))
# A row's columns, in ROW_SCHEMA's order (``scores`` last).
ROW_FIELDS = (
    "id", "input", "expected", "context", "extra", "output", "error", "latency_s",
    "input_tokens", "output_tokens", "cost_usd", "request_key", "cached", "scores",
)  # fmt: skip


# A run's rows in dataset order; ``scores_sql`` gives each score with its row's place in
# that order (``example_id`` is unique in a run, so the order is total).
_RUN_ROWS = """
FROM outputs o
JOIN runs r ON r.run_id = o.run_id
LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                    AND e.id = o.example_id
WHERE o.run_id = $run
"""
ROWS_SQL = f"""
SELECT o.example_id AS id, e.input, e.expected, e.context, CAST(e.extra AS VARCHAR) AS extra,
       o.output, o.error, o.latency_s, o.input_tokens, o.output_tokens, o.cost_usd,
       o.request_key, o.cached
{_RUN_ROWS}
ORDER BY e.position, o.example_id
"""


# A page of a run's rows (``$ids``, consecutive in dataset order), in that order, and their
# scores by row, metric and sample: only the page's examples are joined, not every example
# of the dataset, texts and all; they are those whose place in the dataset lies from $low to
# $high, the page's first and last (a range of places, not a list of ids to look up: the
# 10 pages of a 10,000-row run were read in 0.10-0.11 s, not 0.12-0.15 s). A row whose
# example is gone has no place: it joins none, as it would by its id.
_PAGE_ROWS_SQL = """
WITH page AS (SELECT unnest($ids::VARCHAR[]) AS id),
run AS (SELECT dataset, dataset_version FROM runs WHERE run_id = $run)
SELECT o.example_id AS id, e.input, e.expected, e.context, CAST(e.extra AS VARCHAR) AS extra,
       o.output, o.error, o.latency_s, o.input_tokens, o.output_tokens, o.cost_usd,
       o.request_key, o.cached
FROM outputs o
LEFT JOIN (
    SELECT e.* FROM examples e JOIN run ON e.dataset = run.dataset
                                       AND e.version = run.dataset_version
    WHERE e.position BETWEEN $low AND $high
) e ON e.id = o.example_id
WHERE o.run_id = $run AND o.example_id IN (SELECT id FROM page)
ORDER BY e.position, o.example_id
"""


def _page_scores_sql(fields: Sequence[str], sources: bool) -> str:
    """A page's scores (``$ids``), their ``fields`` then their row's id; with ``sources``,
    only those of the sources ``$sources``."""
    chosen = " AND source IN (SELECT unnest($sources::VARCHAR[]))" if sources else ""
    return f"""
SELECT {", ".join(fields)}, example_id FROM scores
WHERE run_id = $run AND example_id IN (SELECT unnest($ids::VARCHAR[])){chosen}
ORDER BY example_id, metric, sample
"""


def scores_sql(fields: Sequence[str] = SCORE_FIELDS) -> str:
    """Each score of a run (its ``fields``) with its row's place in dataset order, by place,
    metric and sample."""
    return f"""
WITH places AS (
    SELECT o.example_id, row_number() OVER (ORDER BY e.position, o.example_id) - 1 AS place
    {_RUN_ROWS}
)
SELECT p.place, {", ".join(f"s.{name}" for name in fields)}
FROM scores s JOIN places p ON p.example_id = s.example_id
WHERE s.run_id = $run
ORDER BY p.place, s.metric, s.sample
"""


class RunRecord(Protocol):
    """What a reader reads of a run's record (``harness.store.exports.RunRecord``)."""

    info: RunInfo
    db_path: Path | None  # a stored run's store

    @property
    def table(self) -> pa.Table: ...


class RowReader:
    """A record's rows as Python objects, as ``pyarrow.Table.to_pylist`` makes them: a dict
    per row with ROW_FIELDS' keys, ``scores`` a list of dicts with SCORE_FIELDS' keys.

    ``sources``: of a row's scores, those of these sources (``source``) at least (None:
    all); a reader may give the others too."""

    def __init__(
        self,
        record: RunRecord,
        score_fields: Sequence[str] = SCORE_FIELDS,
        sources: Collection[str] | None = None,
    ) -> None:
        self.record = record
        self.score_fields = tuple(score_fields)  # of each row's scores: these at least
        self.sources = None if sources is None else sorted(sources)

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def ids(self) -> list[str]:
        """Every row's example id, in the record's order."""
        return [str(i) for i in self.record.table.column("id").to_pylist()]

    def heads(self) -> list[tuple[str, str | None, float | None, bool]]:
        """Every row's example id, model error, latency and whether it has a context (a
        non-empty one: the run's rule, ``runner.plan``), in the record's order."""
        table = self.record.table
        return list(
            zip(
                self.ids(),
                table.column("error").to_pylist(),
                table.column("latency_s").to_pylist(),
                [bool(c) for c in table.column("context").to_pylist()],
                strict=True,
            )
        )

    def scores(self, fields: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every score as its row's place and its ``fields``, by place, metric and sample."""
        import pyarrow.compute as pc

        nested = self.record.table.column("scores").combine_chunks()
        flat = pc.list_flatten(nested)
        places = pc.list_parent_indices(nested).to_pylist()
        metrics, samples = (flat.field(name).to_pylist() for name in ("metric", "sample"))
        columns = [flat.field(name).to_pylist() for name in fields]
        # sorted as the store's are (a run file's rows hold theirs in that order)
        for i in sorted(range(len(places)), key=lambda i: (places[i], metrics[i], samples[i])):
            yield (places[i], *(column[i] for column in columns))

    def records(self, places: Sequence[int]) -> list[dict[str, Any]]:
        """The rows at ``places`` (0 is the first row), in that order."""
        if not places:
            return []
        rows: list[dict[str, Any]] = self.record.table.take(list(places)).to_pylist()
        return rows


class StoredRows(RowReader):
    """A stored run's rows straight from DuckDB, with no Arrow table: as the rows are asked
    for in order (a run's own report), a page of them and their scores at a time, each page
    one read of its own rows (``_PAGE_ROWS``). Rows asked for out of order (a comparison's
    candidate whose rows are not the base's) are taken from the record's Arrow table.

    Not two reads of the whole run, taken a chunk at a time: DuckDB sorts a read whole
    before it gives its first row, and a 10,000-row run's rows and scores, sorted, were
    ~70 MB of the report's peak (issue 14, goal 4)."""

    def __init__(
        self,
        record: RunRecord,
        score_fields: Sequence[str] = SCORE_FIELDS,
        sources: Collection[str] | None = None,
    ) -> None:
        super().__init__(record, score_fields, sources)
        self._held = ExitStack()  # the store's cursor, until ``close``
        self._con: Any = None
        self._order: list[str] | None = None  # every row's id, in dataset order
        self._places: list[int | None] = []  # every row's place in the dataset, in that order
        self._next = 0  # the place of the next row the pages give
        self._page: list[dict[str, Any]] = []  # read, not yet given (reversed)

    def _connection(self) -> Any:
        """A cursor of its own on the store, open until ``close``."""
        if self._con is None:
            assert self.record.db_path is not None
            self._con = self._held.enter_context(connect(self.record.db_path, read_only=True))
        return self._con

    def close(self) -> None:
        self._con = None
        self._page = []
        self._held.close()

    def ids(self) -> list[str]:
        if self._order is None:
            found = (
                self._connection()
                .execute(
                    f"SELECT o.example_id, e.position {_RUN_ROWS} "
                    "ORDER BY e.position, o.example_id",
                    {"run": self.record.info.run_id},
                )
                .fetchall()
            )
            self._order = [str(example_id) for example_id, _ in found]
            self._places = [place for _, place in found]
        return list(self._order)

    def heads(self) -> list[tuple[str, str | None, float | None, bool]]:
        found = (
            self._connection()
            .execute(
                "SELECT o.example_id, o.error, o.latency_s, coalesce(e.context, '') <> '' "
                f"{_RUN_ROWS} ORDER BY e.position, o.example_id",
                {"run": self.record.info.run_id},
            )
            .fetchall()
        )
        return [(str(i), error, latency, bool(context)) for i, error, latency, context in found]

    def scores(self, fields: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        assert self.record.db_path is not None
        with connect(self.record.db_path, read_only=True) as cursor:
            cursor.execute(scores_sql(fields), {"run": self.record.info.run_id})
            while found := cursor.fetchmany(_SCORE_CHUNK):
                yield from found

    def records(self, places: Sequence[int]) -> list[dict[str, Any]]:
        if not places:
            return []
        if list(places) != list(range(self._next, self._next + len(places))):
            return super().records(places)
        order = self._order if self._order is not None else self.ids()
        if places[-1] >= len(order):  # a row stored since the ids were read
            return super().records(places)
        rows = []
        for _ in places:
            if not self._page:
                self._page = self._read_page(self._next, self._next + _PAGE_ROWS)
                self._page.reverse()  # taken from the end
            if self._page:
                rows.append(self._page.pop())
            self._next += 1
        if [row["id"] for row in rows] != [order[place] for place in places]:
            return super().records(places)  # a row gone from the store since the ids
        return rows

    def _read_page(self, start: int, end: int) -> list[dict[str, Any]]:
        """The rows from the ``start``-th to before the ``end``-th in dataset order, in that
        order, each with its scores (of ``sources``) by metric and sample."""
        con = self._connection()
        assert self._order is not None
        ids = self._order[start:end]
        params = {"run": self.record.info.run_id, "ids": ids}
        fields = self.score_fields
        nested: dict[str, list[dict[str, Any]]] = {}
        sql = _page_scores_sql(fields, self.sources is not None)
        chosen = params if self.sources is None else {**params, "sources": self.sources}
        for score in con.execute(sql, chosen).fetchall():
            one = dict(zip(fields, score, strict=False))  # its row's id last: left out
            same = nested.get(score[-1])
            if same is None:
                nested[score[-1]] = [one]
            else:
                same.append(one)
        rows = []
        places = [place for place in self._places[start:end] if place is not None]
        low, high = (min(places), max(places)) if places else (None, None)
        for row in con.execute(_PAGE_ROWS_SQL, {**params, "low": low, "high": high}).fetchall():
            found = dict(zip(_ROW_HEAD, row, strict=True))
            found["scores"] = nested.get(row[0], [])
            rows.append(found)
        return rows


_ROW_HEAD = ROW_FIELDS[:-1]  # what _PAGE_ROWS_SQL selects, "id" first
_PAGE_ROWS = 1000  # rows read at a time: ~4 MB of PubMedQA's rows and scores
_SCORE_CHUNK = 2048  # scores read at a time: a few hundred rows' worth
