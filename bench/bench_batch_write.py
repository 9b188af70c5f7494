"""A run's batch write (``harness.store.runs.write_batch``) against the Arrow path it replaced.

Each batch is what a run of ``--metric token_f1 --metric rougeL`` and three judges stores
per 1,000 rows: 1,000 outputs (an answer of ``--text`` characters, unicode and U+2028
among it, every fourth row with two ``app_request_keys``, every 50th failed) and 5,000
scores (each judge's with a rationale and a raw answer). Both paths write the same batches
into stores of their own, alternating batch by batch, each write one open and one
transaction (the counters updated in it as a run does); the Arrow path is the code before
(``pa.Table.from_pylist`` registered in DuckDB), kept here to be timed beside it.

A run writes its batches in a thread of their own while its rows go on in the event
loop, so what a write costs the rows is the time it holds the GIL: a thread counting in
a loop beside the writes (as the rows would run) says how far it got per second of each
way's writes.

Run: ``python bench/bench_batch_write.py [--batches 8] [--text 3000]``; prints the
median wall and CPU time of one batch each way, the counting thread's pace, and new /
Arrow as ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.store import runs  # noqa: E402
from harness.store.bulk import OUTPUT_COLUMNS, SCORE_COLUMNS  # noqa: E402
from harness.store.db import connect  # noqa: E402
from harness.store.rows import OutputRow, ScoreRow  # noqa: E402

JUDGES = ("faithfulness", "answer_relevance", "correctness")


def batch(first: int, rows: int, text: int) -> tuple[list[OutputRow], list[ScoreRow]]:
    rnd = random.Random(first)
    words = "word \u2028 é 😀 answer "
    body = (words * (text // len(words) + 1))[:text]
    outputs, scores = [], []
    for i in range(first, first + rows):
        failed = i % 50 == 0
        keys = [f"app-{i}-a", f"app-{i}-b"] if i % 4 == 0 else None
        outputs.append(
            OutputRow(
                f"r{i}",
                None if failed else body,
                "model call failed: 500" if failed else None,
                rnd.random(),
                300 + i % 7,
                None if failed else 20,
                None if i % 3 else 0.00012,
                f"{i:064x}",
                bool(i % 2),
                keys,
            )
        )
        scores.append(ScoreRow(f"r{i}", "token_f1", rnd.random()))
        scores.append(ScoreRow(f"r{i}", "rougeL", None if failed else rnd.random()))
        for judge in JUDGES:
            scores.append(
                ScoreRow(
                    f"r{i}",
                    judge,
                    1.0,
                    "llm_judge",
                    0,
                    "yes",
                    body[: text // 4],
                    body[: text // 2],
                    None,
                    f"{i + 7:064x}",
                    True,
                )  # fmt: skip
            )
    return outputs, scores


def arrow_write(db: Path, run_id: str, outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
    """``write_batch`` as it was: the rows as Arrow tables, registered and inserted."""
    import pyarrow as pa

    from harness.store.exports import ARROW_TYPES as types

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    tables = []
    output_rows = [{"run_id": run_id, **vars(o), "created_at": now} for o in outputs]
    score_rows = [{"run_id": run_id, **vars(s)} for s in scores]
    for table, columns, rows in (
        ("outputs", OUTPUT_COLUMNS, output_rows),
        ("scores", SCORE_COLUMNS, score_rows),
    ):
        schema = pa.schema([(name, types[kind]) for name, kind in columns])
        tables.append((table, schema, pa.Table.from_pylist(rows, schema=schema)))
    with connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        for table, schema, rows in tables:
            con.register("batch_rows", rows)
            con.execute(f"INSERT INTO {table} ({', '.join(schema.names)}) SELECT * FROM batch_rows")
            con.unregister("batch_rows")
        con.execute("UPDATE runs SET usage = ? WHERE run_id = ?", [json.dumps({"n": 1}), run_id])
        con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()
        con.execute("COMMIT")


def new_write(db: Path, run_id: str, outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
    runs.write_batch(db, run_id, outputs, scores, usage={"n": 1})


class Counter(threading.Thread):
    """Counts in a loop until told to stop: the rows' share of the GIL beside a write."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.count, self.done = 0, False

    def run(self) -> None:
        while not self.done:
            self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000, help="outputs per batch")
    parser.add_argument("--text", type=int, default=3000, help="characters of an answer")
    args = parser.parse_args()
    ways = {"new (JSON)": new_write, "Arrow (before)": arrow_write}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    pace: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for n, name in enumerate(ways):
            stores[name] = db = Path(tmp) / f"{n}.duckdb"
            runs.create_run(
                db, run_id="run", run_name=None, dataset="d", dataset_version="v",
                model="m", config={}, rows_total=0,
            )  # fmt: skip
            ways[name](db, "run", *batch(10**9, 10, args.text))  # imports, first open
        for b in range(args.batches):
            outputs, scores = batch(b * args.rows, args.rows, args.text)
            for name, write in ways.items() if b % 2 else reversed(ways.items()):
                counter = Counter()
                counter.start()
                wall, cpu = time.perf_counter(), time.process_time()
                write(stores[name], "run", outputs, scores)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                counter.done = True
                counter.join()
                times[name].append((wall, cpu))
                pace[name].append(counter.count / wall)
    median: dict[str, Any] = {}
    for name, taken in times.items():
        median[name] = [statistics.median(t[k] for t in taken) for k in (0, 1)]
        wall, cpu = median[name]
        median[name].append(statistics.median(pace[name]))
        print(
            f"{name:15s} wall {wall * 1000:7.1f} ms  cpu {cpu * 1000:7.1f} ms  per batch; "
            f"a thread beside it counted {median[name][2] / 1e6:5.2f} M/s"
        )
    (new_wall, new_cpu, new_pace), (old_wall, old_cpu, old_pace) = median.values()
    print(
        f"new / Arrow: wall {new_wall / old_wall:.2f}x, cpu {new_cpu / old_cpu:.2f}x, "
        f"the thread beside it {new_pace / old_pace:.2f}x as far per second"
    )


if __name__ == "__main__":
    main()
