"""A row that flipped on ``errors`` because one of a judge's samples failed says why."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from harness.cli import cli
from harness.compare.rows import flipped_rows
from harness.config import resolve_home
from harness.store.datasets import load_examples, resolve_dataset
from harness.store.exports import load_run_record
from harness.store.rows import OutputRow, ScoreRow
from harness.store.runs import create_run, write_batch
from harness.store.scores import ERRORS, record_scores

FAILED = "judge call failed: backend exploded"


def _run(db_path: Path, run_id: str, second: ScoreRow | None, ids: list[str]) -> None:
    dataset = resolve_dataset(db_path, "qa")
    create_run(
        db_path, run_id=run_id, run_name=None, dataset=dataset.name,
        dataset_version=dataset.version, model="m", config={"judges": ["correctness"]},
        rows_total=len(ids),
    )  # fmt: skip
    outputs = [OutputRow(i, f"out {i}", None, 0.1, 3, 4, None, "k", True) for i in ids]
    scores = []
    for i in ids:
        scores.append(ScoreRow(i, "correctness", 1.0, "llm_judge", 0, rationale="right"))
        scores.append(ScoreRow(i, "correctness", 1.0, "llm_judge", 1, rationale="right"))
    if second is not None:
        scores[-1] = second
    write_batch(db_path, run_id, outputs, scores)


def test_a_failed_second_sample_shows_its_error(qa_file: Path, home: Path) -> None:
    """With --judge-samples 2, a candidate whose judge failed on a row's second sample
    counts that row as failed (errors 0 -> 1), and the flipped row showed the first
    sample's rationale and nothing of the failure."""
    assert CliRunner().invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    db_path = resolve_home(home).db_path
    ids = [e.id for e in load_examples(db_path, resolve_dataset(db_path, "qa"))][:3]
    _run(db_path, "base", None, ids)
    failed = ScoreRow(ids[-1], "correctness", None, "llm_judge", 1, error=FAILED)
    _run(db_path, "cand", failed, ids)
    base, candidate = (record_scores(load_run_record(db_path, r)) for r in ("base", "cand"))
    regressed, _ = flipped_rows(
        base, candidate, pd.Index(ids), {"correctness": 0.0, ERRORS: 0.0}, limit=5
    )
    (row,) = regressed.rows
    assert [c.metric for c in row.worse] == [ERRORS]
    assert row.judge_errors == {"correctness": (None, FAILED)}
    assert row.judge_lines() == [("correctness", "right", f"right [failed] {FAILED}")]
