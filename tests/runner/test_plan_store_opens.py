"""A run's plan reads its dataset through one open of the store's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.store.db as db
from harness.config import resolve_home
from harness.data import import_file
from harness.errors import DatasetNotFound
from harness.runner.config import RunConfig
from harness.runner.plan import plan_run


def test_a_runs_plan_opens_the_store_once_for_its_dataset_and_rows(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It opened the file (~25 ms: DuckDB reads its catalog) to find the dataset, closed
    it, and opened it again to read the rows (issue 14)."""
    path = tmp_path / "rows.jsonl"
    rows = [{"question": f"q{i}", "answer": "a", "topic": "t"} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_file(path, name="qa")
    opened: list[bool] = []
    attach = db._attach

    def counted(db_path: Path, *, read_only: bool):  # the real open, counted
        opened.append(read_only)
        return attach(db_path, read_only=read_only)

    monkeypatch.setattr(db, "_attach", counted)
    config = RunConfig(data="qa", model="echo", sample="2", by=["topic"])
    plan = plan_run(config, resolve_home(None))
    assert len(plan.examples) == 2 and plan.sample is not None and plan.sample["rows"] == 2
    assert len(opened) == 1
    with pytest.raises(DatasetNotFound, match="unknown dataset 'nope'"):
        plan_run(RunConfig(data="nope", model="echo"), resolve_home(None))
    assert len(opened) == 2
