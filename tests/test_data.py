"""Importing eval sets: formats, column mapping, versions, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.data import import_dataframe, import_file
from harness.errors import DataError
from harness.store.datasets import list_datasets, load_examples, resolve_dataset


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def table_counts(home: Path) -> tuple[int, int]:
    db = home / "harness.duckdb"
    if not db.exists():
        return 0, 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        return (
            con.execute("SELECT count(*) FROM datasets").fetchone()[0],
            con.execute("SELECT count(*) FROM examples").fetchone()[0],
        )
    finally:
        con.close()


def test_jsonl_import_maps_default_columns_and_keeps_extra(qa_file: Path, home: Path) -> None:
    result = import_file(qa_file, name="qa")
    assert result.created
    info = result.dataset
    assert info.n_rows == 20
    assert info.columns == {
        "input": "question",
        "expected": "answer",
        "context": "context",
        "id": "id",
    }
    first = load_examples(home / "harness.duckdb", info, limit=1)[0]
    source = json.loads(qa_file.read_text().splitlines()[0])
    assert first.id == source["id"]
    assert first.input == source["question"]
    assert first.expected == (source["answer"],)
    assert first.context == source["context"]
    assert first.extra["final_decision"] == source["final_decision"]
    assert first.extra["meshes"] == source["meshes"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_json_values_keep_their_types_when_a_row_lacks_the_field(
    tmp_path: Path, home: Path, fmt: str
) -> None:
    """A JSON int field missing from one row, or a Parquet int column with a null, was
    stored as floats (0.0, 2.0): --by num showed slices 0.0 and 2.0 and a python: model
    got floats the file never held."""
    records = [
        {"question": "a", "answer": "x", "num": 0, "flag": True},
        {"question": "b", "answer": "y"},
        {"question": "c", "answer": "z", "num": 2, "flag": False},
    ]
    path = tmp_path / f"gaps.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "parquet":  # num: int64 with a null; flag: bool with a null
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_text(json.dumps(records))
    info = import_file(path, name="gaps").dataset
    extras = [e.extra for e in load_examples(home / "harness.duckdb", info)]
    assert [(type(e.get("num")), e.get("num")) for e in extras] == [
        (int, 0),
        (type(None), None),
        (int, 2),
    ]
    assert [e.get("flag") for e in extras] == [True, None, False]


def test_parquet_nulls_stay_null_and_nested_values_stay_json(tmp_path: Path, home: Path) -> None:
    """pandas read a Parquet time column's null as the text 'NaT', an int in a struct as
    a float and a list in a struct as numpy's array (stored as the text '[1 2]')."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nested.parquet"
    table = pa.table({
        "question": ["a", "b"],
        "at": pa.array([datetime.datetime(2026, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
        "meta": [{"n": 1, "tags": [1, 2]}, None],
    })  # fmt: skip
    pq.write_table(table, path)
    info = import_file(path, name="nested").dataset
    extras = [e.extra for e in load_examples(home / "harness.duckdb", info)]
    assert extras == [
        {"at": "2026-01-02 03:04:05", "meta": {"n": 1, "tags": [1, 2]}},
        {"at": None, "meta": None},
    ]
    assert type(extras[0]["meta"]["n"]) is int


def test_parquet_binary_cells_are_their_text_or_base64(tmp_path: Path, home: Path) -> None:
    """A binary cell was stored as Python's repr of bytes ("b'xy'"), inside a struct too
    (a Hugging Face image column is {"bytes": ..., "path": ...})."""
    import base64

    import pyarrow as pa
    import pyarrow.parquet as pq

    png = b"\x89PNG\r\n\x1a\n\x00\xff"  # not UTF-8
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({
        "question": [b"What is shown?", b"And here?"],
        "tag": pa.array([b"xy", None], pa.binary()),
        "image": [{"bytes": png, "path": "a.png"}, None],
    }), path)  # fmt: skip
    info = import_file(path, name="binary").dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert [e.input for e in examples] == ["What is shown?", "And here?"]
    assert [e.extra for e in examples] == [
        {"tag": "xy", "image": {"bytes": base64.b64encode(png).decode(), "path": "a.png"}},
        {"tag": None, "image": None},
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_every_format_gives_the_same_digest(tmp_path: Path, fmt: str) -> None:
    df = pd.DataFrame(
        {
            "id": ["a", "b"],
            "question": ["What is 2+2?", "Capital of France?"],
            "answer": ["4", "Paris"],
        }
    )
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        path.write_text(json.dumps(df.to_dict(orient="records")))
    from_file = import_file(path, name=f"d-{fmt}").dataset
    from_frame = import_dataframe(df, name=f"f-{fmt}").dataset
    assert from_file.digest == from_frame.digest


def test_identical_content_is_one_version_and_changes_make_another(
    qa_file: Path, home: Path
) -> None:
    first = import_file(qa_file, name="qa")
    again = import_file(qa_file, name="qa")
    assert not again.created
    assert again.dataset.version == first.dataset.version
    assert table_counts(home) == (1, 20)

    lines = qa_file.read_text().splitlines()
    qa_file.write_text("\n".join(lines[:-1]) + "\n")
    changed = import_file(qa_file, name="qa")
    assert changed.created
    assert changed.dataset.version != first.dataset.version
    assert table_counts(home) == (2, 39)
    db = home / "harness.duckdb"
    assert resolve_dataset(db, "qa").version == changed.dataset.version  # NAME = the latest
    assert resolve_dataset(db, f"qa@{first.dataset.version}").n_rows == 20
    assert resolve_dataset(db, f"qa@{first.dataset.version[:6]}").n_rows == 20  # a prefix


def test_expected_may_hold_several_answers(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text(
        'question,answer\n"Who wrote Hamlet?","[""Shakespeare"", ""W. Shakespeare""]"\n'
    )
    info = import_file(path, name="multi").dataset
    assert load_examples(home / "harness.duckdb", info)[0].expected == (
        "Shakespeare",
        "W. Shakespeare",
    )
    df = pd.DataFrame({"inputs": ["q"], "targets": [["a", "b", "c"]]})
    info = import_dataframe(df, name="frame").dataset
    example = load_examples(home / "harness.duckdb", info)[0]
    assert example.input == "q" and example.expected == ("a", "b", "c")
    assert example.id == "0"


def test_explicit_column_mapping(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("key,prompt,gold,docs\nk1,Q1,A1,D1\nk2,Q2,A2,D2\n")
    info = import_file(
        path, name="custom", input="prompt", expected="gold", context="docs", id="key"
    ).dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert [(e.id, e.input, e.expected, e.context) for e in examples] == [
        ("k1", "Q1", ("A1",), "D1"),
        ("k2", "Q2", ("A2",), "D2"),
    ]


def test_cli_import_list_show_json(qa_file: Path) -> None:
    code, out, _ = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0
    imported = json.loads(out)
    assert imported["created"] is True and imported["rows"] == 20
    code, out, _ = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0 and "unchanged" in out and imported["version"] in out
    code, out, _ = invoke("data", "list", "--json")
    listed = json.loads(out)
    assert [d["ref"] for d in listed] == [imported["ref"]]
    code, out, _ = invoke("data", "show", f"qa@{imported['version']}", "--limit", "3", "--json")
    shown = json.loads(out)
    assert len(shown["examples"]) == 3 and shown["rows"] == 20


def test_data_list_writes_row_counts_with_thousands_separators(home: Path) -> None:
    """`data list` showed 1200 where everything else writes 1,200."""
    import_dataframe(pd.DataFrame({"input": [f"q{i}" for i in range(1200)]}), name="big")
    code, out, _ = invoke("data", "list")
    assert code == 0
    [line] = [line for line in out.splitlines() if line.startswith("big ")]
    assert " 1,200 " in line


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def folder(path: Path) -> Path:
    """A folder holding one Parquet file, as Spark and pyarrow write a dataset."""
    path.mkdir()
    pd.DataFrame({"question": ["q"], "answer": ["a"]}).to_parquet(path / "part-0.parquet")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)  # no writer: opening it waits for one
    return path


def device(path: Path) -> Path:
    path.symlink_to("/dev/null")
    return path


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.csv", [], "no such file"),
    "missing file without extension": (lambda d: d / "nope", [], "no such file"),
    # A folder was called an unknown format '(no extension)'. A folder of Parquet files
    # is refused too: import reads one file.
    "folder": (lambda d: folder(d / "questions"), [], "questions is a folder, not a data file"),
    "parquet folder": (
        lambda d: folder(d / "qa.parquet"),
        [],
        "qa.parquet is a folder, not a data file",
    ),
    "unknown format": (lambda d: write(d / "data.xlsx", b"x"), [], "unknown format '.xlsx'"),
    # Each was refused as "is empty" (Linux gives them no size), a pipe with a writer too.
    "fifo": (lambda d: fifo(d / "pipe.jsonl"), [], "pipe.jsonl is not a regular file (a pipe, "),
    "device": (lambda d: device(d / "null.csv"), [], "null.csv is not a regular file (a pipe, "),
    "empty file": (lambda d: write(d / "empty.csv", b""), [], "is empty"),
    "header only": (lambda d: write(d / "head.csv", b"question,answer\n"), [], "has no rows"),
    "empty jsonl": (lambda d: write(d / "blank.jsonl", b"\n\n"), [], "has no rows"),
    "missing column": (
        lambda d: write(d / "a.csv", b"question,answer\nq,a\n"),
        ["--expected", "gold"],
        "column 'gold' (for expected) does not exist",
    ),
    "no input column": (lambda d: write(d / "b.csv", b"foo,bar\n1,2\n"), [], "no input column"),
    "duplicate ids": (
        lambda d: write(d / "dup.csv", b"id,question\n1,a\n2,b\n1,c\n"),
        [],
        "duplicate id '1' in rows 1 and 3",
    ),
    # A row with no id took its row number as its id: '1' for the second row, refused as
    # a duplicate of the first row's '1' (a CSV's empty cell was the id '').
    "empty id": (
        lambda d: write(d / "noid.csv", b"id,question\n1,a\n,b\n"),
        [],
        "row 2: empty 'id' (the id column); give every row an id, or name another column with --id",
    ),
    "null id": (
        lambda d: write(
            d / "noid.jsonl", b'{"id": 1, "question": "a"}\n{"id": null, "question": "b"}\n'
        ),
        [],
        "row 2: empty 'id' (the id column)",
    ),
    "non-utf8": (
        lambda d: write(d / "latin.csv", "question\ncaf\xe9\n".encode("latin-1")),
        [],
        "not UTF-8",
    ),
    "bad json line": (
        lambda d: write(d / "bad.jsonl", b'{"question": "a"}\n{oops\n'),
        [],
        "bad.jsonl:2: invalid JSON",
    ),
    "empty input": (lambda d: write(d / "e.csv", b"question,answer\n,a\n"), [], "row 1: empty"),
    # An unquoted comma in every row: pandas would take the first column as the index and
    # shift each value one column left, questions becoming the answers' first halves.
    "extra field in every row": (
        lambda d: write(
            d / "shift.csv",
            b"question,answer\nWhat is 2+2,4, four\nCapital of France,Paris, France\n",
        ),
        [],
        "shift.csv as csv: its first row has 3 fields but the header has 2",
    ),
    "extra field in the first row": (
        lambda d: write(d / "first.csv", b"question,answer\nWhat is 2+2,4, four\nq,Paris\n"),
        [],
        "first.csv as csv: its first row has 3 fields but the header has 2",
    ),
    "extra field in a later row": (
        lambda d: write(d / "later.csv", b"question,answer\nq,4\nCapital,Paris, France\n"),
        [],
        "later.csv as csv: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3",
    ),
    "extra field in every tsv row": (
        lambda d: write(d / "shift.tsv", b"question\tanswer\nq\t4\tfour\nr\tParis\tFrance\n"),
        [],
        "shift.tsv as tsv: its first row has 3 fields but the header has 2",
    ),
    "duplicate header": (
        lambda d: write(d / "twice.csv", b"question,question,answer\na,b,c\n"),
        [],
        "twice.csv as csv: column 'question' appears twice in the header",
    ),
    "duplicate tsv header": (
        lambda d: write(d / "twice.tsv", b"id\tquestion\tid\n1\ta\t2\n"),
        [],
        "twice.tsv as tsv: column 'id' appears twice in the header",
    ),
    # A RecursionError traceback, exit 1, from Python's JSON parser.
    "json nested too deeply": (
        lambda d: write(
            d / "deep.jsonl", b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        ),
        [],
        "deep.jsonl:1: invalid JSON: nested too deeply",
    ),
    "json array nested too deeply": (
        lambda d: write(d / "deep.json", b"[" * 100_000 + b"]" * 100_000),
        [],
        "deep.json: invalid JSON: nested too deeply",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str, tmp_path: Path, home: Path
) -> None:
    make, extra, message = BAD_INPUTS[case]
    path = make(tmp_path)
    code, out, err = invoke("data", "import", str(path), "--name", "bad", *extra)
    assert code == 2, err
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line, no traceback
    assert "Traceback" not in err + out
    assert table_counts(home) == (0, 0)


def test_unknown_dataset_is_exit_2(qa_file: Path) -> None:
    invoke("data", "import", str(qa_file), "--name", "qa")
    # qa@$VERSION with the variable unset: the newest version was shown (and run), exit 0.
    said = (
        "error: dataset reference 'qa@' has no version after '@'; give NAME for the newest "
        "version, or NAME@VERSION\n"
    )
    assert invoke("data", "show", "qa@") == (2, "", said)
    assert invoke("run", "--data", "qa@", "--model", "echo", "--no-mlflow") == (2, "", said)
    code, _, err = invoke("data", "show", "nope")
    assert code == 2 and "unknown dataset 'nope' in " in err and "datasets there: qa" in err
    code, _, err = invoke("data", "show", "qa@ffffff")
    assert code == 2 and "unknown dataset version qa@ffffff" in err
    # A file given as --data (as other tools take it) is named as one, with the import.
    code, _, err = invoke("run", "--data", str(qa_file), "--model", "echo", "--no-mlflow")
    assert code == 2 and err.count("\n") == 1
    assert f"{qa_file} is a file: import it first with `harness data import {qa_file}" in err


def test_library_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="invalid dataset name"):
        import_dataframe(pd.DataFrame({"input": ["q"]}), name="a b")
    with pytest.raises(DataError, match="has no rows"):
        import_dataframe(pd.DataFrame({"input": []}), name="empty")
    assert list_datasets(Path(tmp_path) / "home" / "harness.duckdb") == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_a_utf8_bom_and_crlf_line_ends_read_as_without_them(
    tmp_path: Path, home: Path, fmt: str
) -> None:
    # Excel, PowerShell and Notepad write a BOM before the text; the CSV was read, while
    # JSON and JSONL were refused: "invalid JSON: Unexpected UTF-8 BOM".
    rows = [{"id": "001", "input": "What is 2+2?", "expected": "4"}]
    if fmt == "csv":
        text = "id,input,expected\r\n001,What is 2+2?,4\r\n"
    elif fmt == "jsonl":
        text = "".join(json.dumps(r) + "\r\n" for r in rows)
    else:
        text = json.dumps(rows)
    path = tmp_path / f"bom.{fmt}"
    path.write_bytes("\ufeff".encode() + text.encode())
    plain = tmp_path / f"plain.{fmt}"
    plain.write_bytes(text.replace("\r\n", "\n").encode())
    info = import_file(path, name=f"bom-{fmt}").dataset
    assert info.digest == import_file(plain, name=f"plain-{fmt}").dataset.digest
    [example] = load_examples(home / "harness.duckdb", info)
    assert (example.id, example.input, example.expected) == ("001", "What is 2+2?", ("4",))


def test_importing_an_older_version_again_says_it_is_not_the_one_name_runs(
    tmp_path: Path, home: Path
) -> None:
    # A file changed, imported, then put back and imported again: the import said
    # "unchanged: already stored as qa@<old>" and `--data qa` went on running the change.
    path = tmp_path / "qa.csv"
    path.write_text("id,input\n1,a\n")
    old = import_file(path, name="qa").dataset
    path.write_text("id,input\n1,changed\n")
    new = import_file(path, name="qa").dataset
    path.write_text("id,input\n1,a\n")
    code, out, err = invoke("data", "import", str(path), "--name", "qa")
    assert (code, err) == (0, "")
    assert out == (
        f"unchanged: already stored as {old.ref} (1 row; columns: input=input, id=id); "
        f"the newest version is {new.ref}, the one `--data qa` runs: give --data {old.ref} "
        "to run this one\n"
    )
    code, out, _ = invoke("data", "import", str(path), "--name", "qa", "--json")
    assert (json.loads(out)["created"], json.loads(out)["newest"]) == (False, new.ref)
    path.write_text("id,input\n1,changed\n")
    code, out, _ = invoke("data", "import", str(path), "--name", "qa")
    assert out == f"unchanged: already stored as {new.ref} (1 row; columns: input=input, id=id)\n"


def test_importing_the_same_rows_again_names_this_files_columns(tmp_path: Path, home: Path) -> None:
    # `harness data export pubmedqa -o pubmedqa.jsonl` then `harness data import
    # pubmedqa.jsonl --name pubmedqa` said "columns: input=question, expected=answer", the
    # columns of the first import's file, which the exported file does not have.
    first = tmp_path / "first.jsonl"
    first.write_text('{"id": "1", "question": "q", "answer": "a"}\n')
    again = tmp_path / "again.jsonl"
    again.write_text('{"id": "1", "input": "q", "expected": "a"}\n')
    info = import_file(first, name="qa").dataset
    code, out, err = invoke("data", "import", str(again), "--name", "qa")
    assert (code, err) == (0, "")
    assert out == (
        f"unchanged: already stored as {info.ref} "
        "(1 row; columns: input=input, expected=expected, id=id)\n"
    )


def test_a_csv_and_a_jsonl_of_the_same_rows_store_the_same_rows(tmp_path: Path) -> None:
    """A CSV's empty context cell was stored as '' where the same row in JSONL, with no
    context key, was stored as null: `data show --json` differed, the two files were two
    versions, and a report took '' for a context the run's prompt had not had. A list of
    numbers in an expected cell is stored as the JSONL list is."""
    csv_path = tmp_path / "qa.csv"
    csv_path.write_text(
        "id,question,answer,context\n"
        'a,How much?,"[1, 2.50]",\n'
        'b,Which?,"[true, null, ""x""]",the context\n'
        "c,Blank?,y,  \n"
    )
    jsonl_path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "a", "question": "How much?", "answer": [1, 2.5]},
        {"id": "b", "question": "Which?", "answer": [True, None, "x"], "context": "the context"},
        {"id": "c", "question": "Blank?", "answer": "y"},
    ]
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    shown = []
    for path, name in ((csv_path, "qa"), (jsonl_path, "qa-jsonl")):
        code, out, _ = invoke("data", "import", str(path), "--name", name, "--json")
        assert code == 0
        code, out, _ = invoke("data", "show", name, "--json")
        assert code == 0
        shown.append(json.loads(out))
    from_csv, from_jsonl = shown
    assert from_csv["examples"] == from_jsonl["examples"]
    assert [(e["expected"], e["context"]) for e in from_csv["examples"]] == [
        (["1", "2.5"], None),
        (["True", "x"], "the context"),
        (["y"], None),
    ]
    assert from_csv["digest"] == from_jsonl["digest"]
    code, out, _ = invoke("data", "import", str(jsonl_path), "--name", "qa", "--json")
    assert code == 0 and json.loads(out)["created"] is False  # the CSV's version already


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_a_json_text_that_looks_like_a_list_is_one_answer(
    tmp_path: Path, home: Path, fmt: str
) -> None:
    """An expected answer "[1, 2]" in a JSONL file (a JSON or Parquet text too) was parsed
    as the two answers 1 and 2, so `data show --json` said ["1", "2"] and exact_match
    compared the output with "1" or "2": only a CSV cell, text only, is read as a JSON list.
    The same rows as CSV, with the cell ["[1, 2]"], store the same answers."""
    rows = [
        {"input": "What does sorted([2, 1]) return?", "expected": "[1, 2]", "out": "[1, 2]"},
        {"input": "And sorted([])?", "expected": "[]", "out": "[]"},
    ]
    path = tmp_path / f"qa.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    else:
        pd.DataFrame(rows).to_parquet(path)
    code, _, err = invoke("data", "import", str(path), "--name", "qa")
    assert code == 0, err
    code, out, _ = invoke("data", "show", "qa", "--json")
    shown = json.loads(out)
    assert [e["expected"] for e in shown["examples"]] == [["[1, 2]"], ["[]"]]

    csv_path = tmp_path / "qa.csv"
    csv_path.write_text(
        "input,expected,out\n"
        '"What does sorted([2, 1]) return?","[""[1, 2]""]","[1, 2]"\n'
        '"And sorted([])?","[""[]""]","[]"\n'
    )
    code, out, err = invoke("data", "import", str(csv_path), "--name", "qa", "--json")
    assert code == 0, err
    assert json.loads(out)["created"] is False  # the same rows: the same version

    code, out, err = invoke(
        "run", "--data", "qa", "--model", "column:out", "--metric", "exact_match",
        "--json", "--no-mlflow",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["metrics"]["exact_match"]["mean"] == 1.0


def test_evaluate_reads_a_text_list_as_answers_only_in_a_csv_file(
    tmp_path: Path, home: Path
) -> None:
    """harness.evaluate reads a JSON list written as text in a CSV file's cell as several
    answers, as documented; a JSONL file keeps such a text as one answer, and so does data
    given in Python, as mlflow.evaluate does: a DataFrame's text (pd.read_csv's too), a list
    of dicts' and targets=[...]'s. The Python data was split: the answer "[1, 2]" became 1
    and 2 and exact_match scored the right output "[1, 2]" 0. A list there is several."""
    import harness

    csv_path = tmp_path / "qa.csv"
    csv_path.write_text('question,answer,out\n"Which?","[""x"", ""y""]","y"\n')
    jsonl_path = tmp_path / "qa.jsonl"
    jsonl_path.write_text(json.dumps({"question": "Which?", "answer": "[1, 2]", "out": "[1, 2]"}))
    for data in (str(csv_path), str(jsonl_path)):
        result = harness.evaluate(
            data=data, predictions="out", metrics=["exact_match"], log_to_mlflow=False
        )
        assert result.metrics["exact_match/mean"] == 1.0
    result = harness.evaluate(
        data=pd.read_csv(csv_path), predictions="out", metrics=["exact_match"],
        log_to_mlflow=False,
    )  # fmt: skip
    assert result.metrics["exact_match/mean"] == 0.0  # "y" is not the answer '["x", "y"]'
    as_python = [
        pd.DataFrame({"question": ["Sorted?", "Which?"], "answer": ["[1, 2]", ["x", "y"]]}),
        [{"question": "Sorted?", "answer": "[1, 2]"}, {"question": "Which?", "answer": ("x", "y")}],
    ]
    for data in as_python:
        result = harness.evaluate(
            lambda row: "[1, 2]" if row["input"] == "Sorted?" else "y",
            data=data, metrics=["exact_match"], log_to_mlflow=False,
        )  # fmt: skip
        assert result.metrics["exact_match/mean"] == 1.0
    result = harness.evaluate(
        lambda row: "[1, 2]" if row["input"] == "Sorted?" else "y",
        data=["Sorted?", "Which?"], targets=["[1, 2]", np.array(["x", "y"])],
        metrics=["exact_match"], log_to_mlflow=False,
    )  # fmt: skip
    assert result.metrics["exact_match/mean"] == 1.0
    direct = import_dataframe(pd.DataFrame({"input": ["q"], "expected": ["[3]"]}), name="qa")
    assert load_examples(home / "harness.duckdb", direct.dataset)[0].expected == ("[3]",)
    db = home / "harness.duckdb"
    stored = {e.expected for d in list_datasets(db) for e in load_examples(db, d)}
    assert stored == {("[1, 2]",), ('["x", "y"]',), ("x", "y"), ("[3]",)}


@pytest.mark.parametrize("source", ["dataframe", "parquet", "jsonl"])
def test_an_integral_float_answer_is_its_integer(tmp_path: Path, home: Path, source: str) -> None:
    """pandas makes an int column with a missing value floats: the target 4 was stored as
    the answer "4.0", and exact_match scored the output "4" 0 without a word."""
    df = pd.DataFrame(
        {
            "question": ["2+2?", "half?", "none?", "big?"],
            "answer": [4, 0.5, None, -3],  # float64: 4.0, 0.5, NaN, -3.0
        }
    )
    assert df["answer"].dtype == np.float64
    if source == "dataframe":
        info = import_dataframe(df, name="ints").dataset
    else:
        path = tmp_path / f"ints.{source}"
        if source == "parquet":
            df.to_parquet(path)
        else:
            df.to_json(path, orient="records", lines=True)
        info = import_file(path, name="ints").dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert [e.expected for e in examples] == [("4",), ("0.5",), (), ("-3",)]
    texts = df.assign(answer=["4", "0.5", None, "-3"])
    assert import_dataframe(texts, name="texts").dataset.digest == info.digest


def test_integral_floats_in_a_list_of_answers_and_numpy_scalars(home: Path) -> None:
    df = pd.DataFrame(
        {
            "question": ["a", "b"],
            "answer": [np.array([1.0, 2.5], dtype=np.float32), np.float64(7.0)],
        }
    )
    info = import_dataframe(df, name="lists").dataset
    examples = load_examples(home / "harness.duckdb", info)
    assert [e.expected for e in examples] == [("1", "2.5"), ("7",)]


def test_a_csv_cell_that_reads_4_0_stays_as_written(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("question,answer\nWhich version?,2.0\n")
    info = import_file(path, name="v").dataset
    assert load_examples(home / "harness.duckdb", info)[0].expected == ("2.0",)
