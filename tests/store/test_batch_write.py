"""A run's batch writes (harness.store.runs.write_batch, harness.store.bulk): the rows read
back exactly as the Arrow path before them stored them, every column type, NULLs, NaN,
lists and unicode; a refused batch leaves nothing, not even its temporary file."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from harness.errors import StoreError
from harness.store import db as store_db
from harness.store import runs
from harness.store.bulk import OUTPUT_COLUMNS, SCORE_COLUMNS
from harness.store.db import connect
from harness.store.rows import OutputRow, ScoreRow

TEXTS = [
    "plain",
    "",  # empty, not NULL
    "line\u2028separator\u2029paragraph",
    "nul \x00 inside",
    'quotes " and \\ backslash, \n newline \t tab \r',
    "é 中文 😀 \U0010ffff",
    "long " * 2000,
]


def _rows() -> tuple[list[OutputRow], list[ScoreRow]]:
    floats = [0.1, -0.0, 1e-300, 1.7976931348623157e308, math.nan, math.inf, -math.inf, None]
    lists: list[list[str] | None] = [None, [], ["a"], ["k1", "k2 \u2028 😀", ""]]
    outputs, scores = [], []
    for i, text in enumerate(TEXTS * 2):
        outputs.append(
            OutputRow(
                f"e{i}",
                text if i % 3 else None,
                None if i % 4 else text,
                floats[i % len(floats)],
                [0, 2**31 - 1, None, -1][i % 4],
                i,
                floats[(i + 3) % len(floats)],
                None if i % 5 == 0 else f"key-{i}",
                [True, False, None][i % 3],
                lists[i % len(lists)],
            )
        )
        scores.append(ScoreRow(f"e{i}", "token_f1", floats[i % len(floats)]))
        scores.append(
            ScoreRow(
                f"e{i}",
                "correctness",
                1.0 if i % 2 else None,
                "llm_judge",
                i % 3,
                text,
                text,
                text or None,
                None if i % 2 else text,
                f"rk{i}",
                [True, False][i % 2],
            )  # fmt: skip
        )
    return outputs, scores


def _arrow_write(db: Path, run_id: str, outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
    """What write_batch did before: Arrow tables built from the rows, registered, inserted."""
    import pyarrow as pa

    from harness.store.exports import ARROW_TYPES as types

    now = datetime(2026, 1, 2, 3, 4, 5, 678901)
    with connect(db) as con:
        output_rows = [{"run_id": run_id, **vars(o), "created_at": now} for o in outputs]
        score_rows = [{"run_id": run_id, **vars(s)} for s in scores]
        for table, columns, rows in (
            ("outputs", OUTPUT_COLUMNS, output_rows),
            ("scores", SCORE_COLUMNS, score_rows),
        ):
            schema = pa.schema([(name, types[kind]) for name, kind in columns])
            con.register("batch_rows", pa.Table.from_pylist(rows, schema=schema))
            con.execute(f"INSERT INTO {table} ({', '.join(schema.names)}) SELECT * FROM batch_rows")
            con.unregister("batch_rows")


def _new_run(db: Path, run_id: str = "run1") -> None:
    runs.create_run(
        db, run_id=run_id, run_name=None, dataset="d", dataset_version="v", model="m",
        config={}, rows_total=len(TEXTS) * 2,
    )  # fmt: skip


def _stored(db: Path) -> list[Any]:
    with duckdb.connect(str(db), read_only=True) as con:
        found = [
            con.execute(
                "SELECT * EXCLUDE (created_at) FROM outputs ORDER BY example_id"
                if table == "outputs"
                else "SELECT * FROM scores ORDER BY example_id, metric"
            ).fetchall()
            for table in ("outputs", "scores")
        ]
    # NaN is not equal to itself: compared by its repr, as every other value is.
    return [[tuple(repr(v) for v in row) for row in rows] for rows in found]


def _arrow_written(
    tmp_path: Path, outputs: list[OutputRow], scores: list[ScoreRow]
) -> tuple[Path, Path]:
    """Two stores with the same run: the first holding ``outputs`` and ``scores`` as the
    Arrow path wrote them, the second empty for the path under test."""
    before, after = tmp_path / "arrow.duckdb", tmp_path / "new.duckdb"
    for db in (before, after):
        _new_run(db)
    _arrow_write(before, "run1", outputs, scores)
    return before, after


def test_a_batch_reads_back_as_the_arrow_path_stored_it(tmp_path: Path) -> None:
    outputs, scores = _rows()
    before, after = _arrow_written(tmp_path, outputs, scores)
    runs.write_batch(after, "run1", outputs, scores, usage={"model": {"requests": 3}})
    assert _stored(after) == _stored(before)
    stored = _stored(after)
    assert len(stored[0]) == len(outputs) and len(stored[1]) == len(scores)
    assert {"nan", "inf", "-inf", "None", "-0.0"} <= {row[4] for row in stored[0]}
    assert "'nul \\x00 inside'" in {row[2] for row in stored[0]}
    with duckdb.connect(str(after), read_only=True) as con:
        times = con.execute("SELECT DISTINCT created_at FROM outputs").fetchall()
        usage = con.execute("SELECT usage FROM runs").fetchone()
    assert len(times) == 1 and isinstance(times[0][0], datetime)
    assert usage == ('{"model": {"requests": 3}}',)


def test_token_counts_of_2_to_the_31_or_more_are_stored_as_reported(tmp_path: Path) -> None:
    # A server that counts wrong (2**32 - 1 for "unknown") failed every batch with such an
    # answer, and, the answer being cached, every resume. Beyond a 64-bit count: unknown.
    db = tmp_path / "store.duckdb"
    _new_run(db)
    counts = [2**31, 2**32 - 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
    outputs = [
        OutputRow(f"e{i}", "a", None, 0.1, n, n, None, None, False) for i, n in enumerate(counts)
    ]
    runs.write_batch(db, "run1", outputs, [])
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT input_tokens, output_tokens FROM outputs ORDER BY example_id"
        ).fetchall()
    assert stored == [(n, n) for n in (2**31, 2**32 - 1, 2**63 - 1)] + [(None, None)] * 3


def test_replaced_scores_read_back_as_written(tmp_path: Path) -> None:
    outputs, scores = _rows()
    before, after = _arrow_written(tmp_path, outputs, scores)
    runs.write_batch(after, "run1", outputs, [s for s in scores if s.metric != "correctness"])
    runs.replace_scores(
        after, "run1", ["correctness"], [s for s in scores if s.metric == "correctness"]
    )
    assert _stored(after) == _stored(before)


def test_a_refused_batch_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's file is written beside the database, not in TMPDIR: a TMPDIR that is
    not there (or full) failed the write with an error that named the database."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    scratch = tmp_path / "store"
    scratch.mkdir()
    db = scratch / "h.duckdb"
    _new_run(db)
    stored = set(scratch.iterdir())
    outputs, scores = _rows()
    runs.write_batch(db, "run1", outputs[:3], scores[:6], usage={"n": 1})
    # The same rows again: their keys are taken, and the batch's transaction rolls back.
    with pytest.raises(StoreError, match="Duplicate key"):
        runs.write_batch(db, "run1", outputs[:4], scores[:8], usage={"n": 2})
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM outputs").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (6,)
        assert con.execute("SELECT usage FROM runs").fetchone() == ('{"n": 1}',)
    assert set(scratch.iterdir()) <= stored  # the database's own files, no batch file


def test_a_sampled_runs_chosen_ids_are_stored(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    ids = ["b", "a", "c \u2028 😀"]
    runs.create_run(
        db, run_id="run1", run_name=None, dataset="d", dataset_version="v", model="m",
        config={}, rows_total=3, sample={"size": 3}, example_ids=ids,
    )  # fmt: skip
    assert sorted(runs.run_example_ids(db, "run1") or []) == sorted(ids)


def test_writing_a_batch_imports_neither_pyarrow_nor_pandas(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from harness.store import runs\n"
        "from harness.store.rows import OutputRow, ScoreRow\n"
        f"db = Path({str(tmp_path / 'h.duckdb')!r})\n"
        "runs.create_run(db, run_id='r', run_name=None, dataset='d', dataset_version='v',"
        " model='m', config={}, rows_total=1, sample={'size': 1}, example_ids=['e'])\n"
        "runs.write_batch(db, 'r', [OutputRow('e', 'x', None, 0.5, 1, 2, None, 'k', True,"
        " ['a'])], [ScoreRow('e', 'm', 1.0)], usage={})\n"
        "print(sorted(n for n in ('pandas', 'pyarrow') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_numpy_numbers_that_are_not_finite_stay_so(tmp_path: Path) -> None:
    """numpy's float32 (not a Python float, unlike float64) went through orjson's default
    as a Python float, and a NaN or infinity of it was written as JSON null: stored NULL
    where the Arrow path stored NaN and inf."""
    import numpy as np

    db = tmp_path / "new.duckdb"
    _new_run(db)
    values = [np.float32("nan"), np.float32("inf"), np.float32(-np.inf), np.float32(0.5)]
    scores = [ScoreRow(f"e{i}", "m", v) for i, v in enumerate(values)]  # type: ignore[arg-type]
    output = OutputRow("e0", "x", None, np.float32("nan"), 1, 2, np.float32("inf"), None, None)  # type: ignore[arg-type]
    runs.write_batch(db, "run1", [output], scores)
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT value FROM scores ORDER BY example_id").fetchall()
        row = con.execute("SELECT latency_s, cost_usd FROM outputs").fetchone()
    assert [repr(v) for (v,) in stored] == ["nan", "inf", "-inf", "0.5"]
    assert row is not None and math.isnan(row[0]) and row[1] == math.inf


def test_a_killed_writers_batch_file_goes_at_the_next_write(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL, the OOM killer) while it wrote a batch left its
    .harness-rows-*.json (up to tens of MB) beside the database for good; the next batch
    written there removes it. A file of a writer that may still be at work stays."""
    import os
    import time

    db = tmp_path / "h.duckdb"
    _new_run(db)
    left, fresh = tmp_path / ".harness-rows-killed.json", tmp_path / ".harness-rows-busy.json"
    for path in (left, fresh):
        path.write_bytes(b"[")
    hours_ago = time.time() - 2 * 3600
    os.utime(left, (hours_ago, hours_ago))
    outputs, scores = _rows()
    runs.write_batch(db, "run1", outputs[:3], scores[:6])
    assert not left.exists() and fresh.exists()


def test_batches_are_stored_in_row_groups_a_checkpoint_merges_cheaply(tmp_path: Path) -> None:
    # Each batch's close checkpoints, merging the row groups the last batches appended with
    # those before them: with DuckDB's 122,880-row groups one close in four to eight
    # rewrote up to three of them (0.3-0.8 s, +90-170 MB on a store of a few runs).
    db = tmp_path / "h.duckdb"
    _new_run(db)
    for first, n in ((0, 8000), (8000, 1000), (9000, 1000)):
        ids = [f"e{i}" for i in range(first, first + n)]
        outputs = [OutputRow(e, "an answer", None, 0.1, 10, 5, None, f"k{e}", False) for e in ids]
        scores = [ScoreRow(e, f"m{m}", 0.5) for e in ids for m in range(5)]
        runs.write_batch(db, "run1", outputs, scores)
    with connect(db, read_only=True) as con:
        for table, rows in (("outputs", 10_000), ("scores", 50_000)):
            groups = con.execute(
                "SELECT row_group_id, sum(count) FROM pragma_storage_info(?) "
                "WHERE column_name = 'run_id' AND segment_type <> 'VALIDITY' GROUP BY 1",
                [table],
            ).fetchall()
            assert max(n for _, n in groups) <= store_db.ROW_GROUP_SIZE, (table, groups)
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (rows,)


def _row_groups(db: Path, table: str) -> list[int]:
    """The rows of each of ``table``'s row groups, in order."""
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info(?) "
            "WHERE column_name = 'run_id' AND segment_type <> 'VALIDITY' GROUP BY 1 ORDER BY 1",
            [table],
        ).fetchall()
    return [int(n) for _, n in found]


def _batch(first: int, n: int) -> tuple[list[OutputRow], list[ScoreRow]]:
    ids = [f"e{i}" for i in range(first, first + n)]
    outputs = [OutputRow(e, "an answer", None, 0.1, 10, 5, None, f"k{e}", False) for e in ids]
    why = "why " * 20
    return outputs, [ScoreRow(e, f"m{m}", 0.5, rationale=why) for e in ids for m in range(5)]


def test_a_runs_own_writes_leave_the_row_group_merges_to_its_batches(tmp_path: Path) -> None:
    """A 10,000-row run's end waited 0.13-0.35 s for its last checkpoint: DuckDB merged the
    small row groups the run's last batches had appended with those before them (its
    vacuum, rewriting ~60,000 scores). The writes on a run's path to its exit (its last
    batch in the end's hold, its end, its MLflow run's id) and to its first row (its
    creation) now leave that merge to the next batch of rows, whose own write does it in
    the writer's thread while the rows run."""
    db = tmp_path / "h.duckdb"
    _new_run(db)
    # Small row groups a merge would join: appended with DuckDB's vacuum off.
    for first in (0, 1000, 2000):
        outputs, scores = _batch(first, 1000)
        with store_db.held(db):
            with connect(db) as con:
                con.execute("SET max_vacuum_tasks = 0")
            runs.write_batch(db, "run1", outputs, scores)
    small = _row_groups(db, "scores")
    assert small == [5000, 5000, 5000]
    with store_db.held(db, merge=False):  # the run's end
        runs.write_batch(db, "run1", *_batch(3000, 1000))  # its last batch
        runs.finish_run(db, "run1", status="finished", metrics={}, usage={}, errors=0)
    runs.set_mlflow_run_id(db, "run1", "m1")
    _new_run(db, "run2")
    assert _row_groups(db, "scores") == [*small, 5000]  # nothing merged on their way
    runs.write_batch(db, "run2", *_batch(0, 1000))  # the next run's first batch merges them
    merged = _row_groups(db, "scores")
    assert len(merged) < 5 and sum(merged) == 25_000, merged
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (25_000,)
        assert con.execute("SELECT mlflow_run_id FROM runs WHERE run_id = 'run1'").fetchone() == (
            "m1",
        )
