"""load_examples: each stored row back as an Example, with its own extra columns."""

from __future__ import annotations

import json
from pathlib import Path

from harness.data import import_file
from harness.store.datasets import Example, load_examples


def test_rows_come_back_with_their_fields_and_each_its_own_extra(
    tmp_path: Path, home: Path
) -> None:
    rows = [
        {"id": "a", "question": "q1", "answer": "x"},
        {"id": "b", "question": "q2", "answer": ["y", "z"], "topic": "t", "n": 2},
        {"id": "c", "question": "q3", "answer": []},
        {"id": "d", "question": "q4", "answer": "w"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info = import_file(path, name="rows").dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert examples == [
        Example("a", "q1", ("x",)),
        Example("b", "q2", ("y", "z")),
        Example("c", "q3", ()),
        Example("d", "q4", ("w",)),
    ]
    absent = {"topic": None, "n": None}
    assert [e.extra for e in examples] == [absent, {"topic": "t", "n": 2}, absent, absent]
    assert load_examples(home / "harness.duckdb", info, limit=2)[1].extra == {"topic": "t", "n": 2}


def test_rows_of_a_dataset_with_no_extra_columns_each_get_their_own_empty_extra(
    tmp_path: Path, home: Path
) -> None:
    path = tmp_path / "plain.jsonl"
    path.write_text(
        "".join(json.dumps({"question": f"q{i}", "answer": "a"}) + "\n" for i in range(3)),
        encoding="utf-8",
    )
    info = import_file(path, name="plain").dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert [(e.input, e.expected, e.extra) for e in examples] == [
        ("q0", ("a",), {}),
        ("q1", ("a",), {}),
        ("q2", ("a",), {}),
    ]
    examples[0].extra["added"] = 1  # a caller's change to one row's extra is that row's alone
    assert [e.extra for e in examples] == [{"added": 1}, {}, {}]
