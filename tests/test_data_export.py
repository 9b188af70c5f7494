"""`harness data export`: a stored version written to a file that imports back to itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.data import import_dataframe, import_file
from harness.data_export import export_dataset
from harness.errors import DataError


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def shown(ref: str) -> dict[str, object]:
    code, out, _ = invoke("data", "show", ref, "--limit", "100", "--json")
    assert code == 0
    return json.loads(out)


# Answers the importer reads in more than one way: several, none, an empty text, one that
# looks like a JSON list, text with the CSV's separators, quotes and line ends in it.
TRICKY_ROWS = [
    {"question": "Several?", "answer": ["a", "b; c"], "context": "ctx, with a comma", "note": "x"},
    {"question": "None?", "answer": None, "context": None, "note": ""},
    {"question": "Listy?", "answer": ["[1, 2]"], "context": "line one\nline two", "note": 'a "q"'},
    {"question": "Empty one?", "answer": [""], "context": "c", "note": "tab\there"},
    {"question": "Plain | bar; semi", "answer": "Paris", "context": None, "note": "z"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_exported_version_imports_back_as_the_same_version(
    tmp_path: Path, home: Path, suffix: str
) -> None:
    """There was no `harness data export`: a stored version could not be written back to a
    file. Importing the file it writes under the same name is the same version."""
    source = tmp_path / "tricky.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in TRICKY_ROWS))
    imported = import_file(source, name="qa").dataset
    out = tmp_path / f"qa{suffix}"
    code, stdout, _ = invoke("data", "export", "qa", "-o", str(out))
    assert code == 0
    assert stdout == f"wrote {imported.ref} (5 rows) to {out}\n"

    code, stdout, _ = invoke("data", "import", str(out), "--name", "qa", "--json")
    assert code == 0
    again = json.loads(stdout)
    assert again["created"] is False and again["version"] == imported.version
    code, stdout, _ = invoke("data", "import", str(out), "--name", "copy", "--json")
    assert code == 0
    assert shown("copy")["examples"] == shown("qa")["examples"]


def test_jsonl_keeps_numbers_lists_and_nulls_of_other_columns(tmp_path: Path, home: Path) -> None:
    rows = [
        {"input": "q1", "expected": [1, 2.5], "n": 3, "f": 1.0, "tags": ["a", 1], "m": {"k": None}},
        {"input": "q2", "n": None, "flag": True},
    ]
    source = tmp_path / "typed.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    imported = import_file(source, name="typed").dataset
    out = tmp_path / "typed-out.jsonl"
    result = export_dataset("typed", out)
    assert result.dataset == imported
    again = import_file(out, name="typed")
    assert not again.created and again.dataset.version == imported.version
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {
        "id": "0",
        "input": "q1",
        "expected": ["1", "2.5"],
        "context": None,
        "n": 3,
        "f": 1.0,
        "tags": ["a", 1],
        "m": {"k": None},
        "flag": None,
    }


def test_a_csv_refuses_what_it_would_read_back_as_text(tmp_path: Path, home: Path) -> None:
    import_dataframe(pd.DataFrame({"input": ["q1", "q2"], "n": [1, 2]}), name="nums")
    out = tmp_path / "nums.csv"
    code, stdout, stderr = invoke("data", "export", "nums", "-o", str(out))
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert "row 1's 'n' holds the int 1" in stderr and ".jsonl" in stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [home]
    with pytest.raises(DataError, match="export to .jsonl"):
        export_dataset("nums", out)


def test_export_errors_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, home: Path, qa_file: Path
) -> None:
    import_file(qa_file, name="qa")
    out = tmp_path / "out.jsonl"

    code, stdout, stderr = invoke("data", "export", "nope", "-o", str(out))
    assert (code, stdout) == (2, "")
    assert stderr.startswith("error: unknown dataset 'nope'") and stderr.count("\n") == 1
    assert not out.exists()

    code, _, stderr = invoke("data", "export", "qa", "-o", str(tmp_path / "out.txt"))
    assert code == 2 and "must end in .jsonl, .ndjson or .csv" in stderr
    assert not (tmp_path / "out.txt").exists()

    out.write_text("mine\n")
    code, stdout, stderr = invoke("data", "export", "qa", "-o", str(out))
    assert (code, stdout) == (2, "")
    assert stderr == f"error: {out} exists; give --force to replace it\n"
    assert out.read_text() == "mine\n"
    code, _, _ = invoke("data", "export", "qa", "-o", str(out), "--force")
    assert code == 0 and len(out.read_text().splitlines()) == 20

    # A folder that is not there was "not a folder"; a file where the folder goes still is.
    for target, said in [
        (tmp_path / "nope" / "x.jsonl", f"{tmp_path / 'nope'} does not exist"),
        (out / "x.jsonl", f"{out} is not a folder"),
        (out / "deeper" / "x.jsonl", f"{out} is not a folder"),
    ]:
        code, stdout, stderr = invoke("data", "export", "qa", "-o", str(target))
        assert (code, stdout, stderr) == (2, "", f"error: {said}\n")
    assert sorted(tmp_path.iterdir()) == sorted([home, out, qa_file])


def test_version_picks_an_older_version(tmp_path: Path, home: Path, qa_file: Path) -> None:
    first = import_file(qa_file, name="qa").dataset
    qa_file.write_text("".join(qa_file.read_text().splitlines(keepends=True)[:5]))
    newer = import_file(qa_file, name="qa").dataset
    assert newer.version != first.version
    out = tmp_path / "old.jsonl"
    code, stdout, _ = invoke(
        "data", "export", "qa", "--version", first.version[:6], "-o", str(out), "--json"
    )
    assert code == 0
    assert json.loads(stdout)["version"] == first.version
    assert len(out.read_text().splitlines()) == 20
    code, _, stderr = invoke(
        "data", "export", f"qa@{first.version}", "--version", "x", "-o", "y.csv"
    )
    assert code == 2 and "not both" in stderr


def test_one_answer_that_looks_like_a_list_is_its_text_in_jsonl(tmp_path: Path, home: Path) -> None:
    """JSONL export wrote the one answer "[1, 2]" as the list ["[1, 2]"], as the importer
    once read a JSON text "[1, 2]" as two answers; now a JSON text is one answer, so it is
    written as the text. A CSV, text only, still writes it as the list of one."""
    source = tmp_path / "listy.jsonl"
    source.write_text(json.dumps({"input": "sorted([2, 1])?", "expected": "[1, 2]"}) + "\n")
    imported = import_file(source, name="qa").dataset
    for suffix, line in ((".jsonl", '"expected": "[1, 2]"'), (".csv", '"[""[1, 2]""]"')):
        out = tmp_path / f"qa{suffix}"
        export_dataset("qa", out)
        assert line in out.read_text()
        assert import_file(out, name="qa").dataset.version == imported.version
