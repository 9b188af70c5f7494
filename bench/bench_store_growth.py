"""A run's batch write on a store holding 1 run against one holding N runs.

Each batch is what ``bench_batch_write.py`` writes (1,000 outputs and 5,000 scores: two
metrics and three judges), stored by ``runs.write_batch``: one open, one transaction, one
close, which checkpoints. The store is filled first with runs of ``--rows`` rows written
with SQL through ``harness.store.db.connect`` (the real schema, harness's row groups).
Each store is timed in a process of its own; each batch's peak is the process's resident
high-water mark from the batch's open to its close (Linux: ``/proc/self/clear_refs``).

A checkpoint merges the small row groups the last batches appended with those before
them, so a few batches in every ~25 cost much more than the rest: the mean and the worst
batch say more than the median. ``--row-group ROWS`` writes with another row group size
(122880 is DuckDB's default, what harness used before).

Run: ``python bench/bench_store_growth.py [--runs 20] [--batches 40] [--row-group ROWS]``;
prints each store's median, mean and worst batch time and its median and worst peak, and
N runs / 1 run as ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch_write import batch  # noqa: E402

from harness.store import db as store_db  # noqa: E402
from harness.store import runs  # noqa: E402

_METRICS = "(VALUES (0, 'token_f1'), (1, 'rougeL'), (2, 'correctness'), (3, 'faithfulness'), "
_METRICS += "(4, 'answer_relevance')) v(j, m)"


def _fill(db: Path, held: int, rows: int) -> None:
    for k in range(held):
        rid = f"{k:012x}"
        runs.create_run(
            db, run_id=rid, run_name=None, dataset="d", dataset_version="v", model="m",
            config={}, rows_total=rows,
        )  # fmt: skip
        with store_db.connect(db) as con:
            con.execute(
                "INSERT INTO outputs SELECT $r, 'r' || i, 'Answer: the answer.', NULL, "
                "random(), 270 + i % 9, 8, NULL, sha256($r || i), false, now()::TIMESTAMP, "
                "NULL FROM range($n) t(i)",
                {"r": rid, "n": rows},
            )
            con.execute(
                "INSERT INTO scores SELECT $r, 'r' || i, m, 0, random() * 5, "
                "CASE WHEN j >= 2 THEN '3' END, "
                "CASE WHEN j >= 2 THEN 'Judge rationale ' || substr(sha256(i::VARCHAR), 1, 8) END, "
                'CASE WHEN j >= 2 THEN \'{"score": 3, "rationale": "Judge rationale."}\' END, '
                "NULL, CASE WHEN j >= 2 THEN 'llm_judge' ELSE 'code' END, "
                "CASE WHEN j >= 2 THEN sha256($r || i || m) END, CASE WHEN j >= 2 THEN false END "
                f"FROM range($n) t(i), {_METRICS}",
                {"r": rid, "n": rows},
            )


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def _one(held: int, rows: int, batches: int, row_group: int) -> dict[str, Any]:
    store_db.ROW_GROUP_SIZE = row_group
    outputs, scores = batch(0, 1000, 60)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "harness.duckdb"
        _fill(db, held, rows)
        runs.create_run(
            db, run_id="timed", run_name=None, dataset="d", dataset_version="v", model="m",
            config={}, rows_total=batches * 1000,
        )  # fmt: skip
        times, peaks = [], []
        for k in range(batches):
            part = [
                o.__class__(**{**vars(o), "example_id": f"b{k}-{o.example_id}"}) for o in outputs
            ]
            marks = [
                s.__class__(**{**vars(s), "example_id": f"b{k}-{s.example_id}"}) for s in scores
            ]
            Path("/proc/self/clear_refs").write_text("5")
            start = time.perf_counter()
            runs.write_batch(db, "timed", part, marks, usage={"calls": k})
            times.append(time.perf_counter() - start)
            peaks.append(_hwm_mb())
        size = db.stat().st_size / 2**20
    return {"times": times, "peaks": peaks, "file_mb": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs the big store holds")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per run held")
    parser.add_argument("--batches", type=int, default=40, help="batches timed per store")
    parser.add_argument("--row-group", type=int, default=store_db.ROW_GROUP_SIZE)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(_one(args.one, args.rows, args.batches, args.row_group)))
        return
    print(
        f"batches of 1,000 outputs + 5,000 scores; runs held of {args.rows:,} rows; "
        f"row groups of {args.row_group:,} rows; {args.batches} batches per store"
    )
    found = {}
    for held in (1, args.runs):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(held), "--rows", str(args.rows),
             "--batches", str(args.batches), "--row-group", str(args.row_group)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        r = json.loads(out.splitlines()[-1])
        t, p = r["times"], r["peaks"]
        found[held] = got = (statistics.median(t), statistics.mean(t), max(t), statistics.median(p))
        found[held] += (max(p),)
        print(
            f"{held:>3} runs held: batch median {got[0]:.3f} s, mean {got[1]:.3f} s, "
            f"worst {got[2]:.3f} s; peak median {got[3]:.0f} MB, "
            f"worst {max(p):.0f} MB; file {r['file_mb']:.0f} MB"
        )
    ratios = [b / a for a, b in zip(found[1], found[args.runs], strict=True)]
    print(
        f"{args.runs} runs / 1 run: batch median {ratios[0]:.2f}x, mean {ratios[1]:.2f}x, "
        f"worst {ratios[2]:.2f}x; peak median {ratios[3]:.2f}x, worst {ratios[4]:.2f}x"
    )


if __name__ == "__main__":
    main()
