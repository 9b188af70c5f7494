"""A lone UTF-16 surrogate, which valid JSON may hold as the escape ``\\ud800`` and Python's
json and the SDKs read, in what a run stores and shows: a model's answer, a judge's
rationale, an error message, an imported row. UTF-8 has no form for it; harness writes it
as its escape (``harness.wording.storable``), the way the cache does. Real processes, a
real DuckDB store and a real MLflow store."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

from processes import harness, harness_env, query

from harness.testing import FakeLLMServer

ESCAPED = "x\\ud800y"  # the six characters of the escape, as stored and shown


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    # json.dumps writes a lone surrogate as its escape: valid JSON, as a user's file holds it
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _report_rows(path: Path) -> str:
    """The rows' JSON inside a report (gzipped, base64: harness.report.rows)."""
    page = path.read_text(encoding="utf-8")
    for packed in re.findall(r"[A-Za-z0-9+/=]{200,}", page):
        try:
            return gzip.decompress(base64.b64decode(packed)).decode("utf-8")
        except (OSError, ValueError):
            continue
    raise AssertionError("no rows in the report")


def _mlflow_table(home: Path, mlflow_run_id: str) -> dict[str, list[object]]:
    (path,) = (home / "mlruns").rglob(f"{mlflow_run_id}/artifacts/eval_results_table.json")
    table = json.loads(path.read_text(encoding="utf-8"))
    return {c: [row[i] for row in table["data"]] for i, c in enumerate(table["columns"])}


def _span_outputs(home: Path) -> list[str]:
    import sqlite3

    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        return [r[0] for r in con.execute("SELECT content FROM spans").fetchall()]
    finally:
        con.close()


def test_a_python_models_lone_surrogate_is_its_escape_in_every_store_and_output(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = harness_env(home)
    data = _write(
        tmp_path / "s.jsonl",
        [{"question": "q0", "answer": ESCAPED}, {"question": "q1", "answer": "other"}],
    )
    assert harness(env, "data", "import", str(data), "--name", "s")[0] == 0
    code, out, err = harness(
        env,
        "run",
        "--data",
        "s",
        "--model",
        "python:harness_test_models:lone_surrogate",
        "--metric",
        "exact_match",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    run_id = doc["run_id"]
    # the text scored is the text stored: row 0 expected the escape's six characters
    assert doc["metrics"]["exact_match"]["mean"] == 0.5
    assert query(home, "SELECT DISTINCT output FROM outputs") == [(ESCAPED,)]

    code, out, err = harness(env, "runs", "show", run_id, "--rows", "--json")
    assert code == 0, err
    assert {r["output"] for r in json.loads(out)["rows_table"]} == {ESCAPED}
    code, out, err = harness(env, "runs", "show", run_id, "--rows")
    assert code == 0 and ESCAPED in out, err
    exported = tmp_path / "run.jsonl"
    code, _, err = harness(env, "runs", "export", run_id, str(exported))
    assert code == 0, err
    lines = exported.read_text(encoding="utf-8").splitlines()[1:]
    assert [json.loads(line)["output"] for line in lines] == [ESCAPED, ESCAPED]
    report = tmp_path / "report.html"
    code, _, err = harness(env, "report", run_id, "-o", str(report))
    assert code == 0, err
    assert _report_rows(report).count('"output":' + json.dumps(ESCAPED)) == 2

    table = _mlflow_table(home, doc["mlflow_run_id"])
    assert table["output"] == [ESCAPED, ESCAPED]
    spans = _span_outputs(home)
    assert len(spans) == 2 and all(json.dumps(json.dumps(ESCAPED))[1:-1] in s for s in spans)


def test_an_error_quoting_a_lone_surrogate_fails_its_rows_with_the_escape(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = harness_env(home)
    data = _write(tmp_path / "s.jsonl", [{"question": "q0"}, {"question": "q1"}])
    assert harness(env, "data", "import", str(data), "--name", "s")[0] == 0
    code, out, err = harness(
        env,
        "run",
        "--data",
        "s",
        "--model",
        "python:harness_test_models:raise_lone_surrogate",
        "--json",
    )
    said = "python:harness_test_models:raise_lone_surrogate raised ValueError: bad \\ud800"
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("error: 2 of 2 rows failed") and said in err
    doc = json.loads(out)
    assert doc["errors"] == 2 and doc["failures"]["model"]["reasons"] == [[said, 2]]
    assert query(home, "SELECT DISTINCT error FROM outputs") == [(said,)]
    code, out, err = harness(env, "runs", "show", doc["run_id"], "--rows", "--json")
    assert code == 0, err
    assert {r["error"] for r in json.loads(out)["rows_table"]} == {said}
    assert _mlflow_table(home, doc["mlflow_run_id"])["error"] == [said, said]
    assert all(json.dumps(said)[1:-1] in s for s in _span_outputs(home))


def test_a_judges_rationale_holding_a_lone_surrogate_escape_is_stored_as_the_escape(
    tmp_path: Path,
) -> None:
    """The judge's answer is valid JSON: its rationale holds the escape \\ud800 (row
    alpha) or, in the answer's own text, the surrogate the server's JSON escaped (beta)."""
    home = tmp_path / "home"
    replies = {
        "alpha": '{"verdict": "yes", "rationale": "fine \\ud800 a"}',
        "beta": '{"verdict": "no", "rationale": "fine \ud800 b"}',
    }
    with FakeLLMServer(replies=replies) as server:
        env = harness_env(home, server)
        data = _write(
            tmp_path / "s.jsonl",
            [{"question": "alpha?", "answer": "a"}, {"question": "beta?", "answer": "b"}],
        )
        assert harness(env, "data", "import", str(data), "--name", "s")[0] == 0
        args = ["run", "--data", "s", "--model", "echo", "--judge", "correctness"]
        code, out, err = harness(env, *args, "--judge-model", "openai:/judge", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["metrics"]["correctness"]["mean"] == 0.5
        rationales = ["fine \\ud800 a", "fine \\ud800 b"]
        stored = query(
            home, "SELECT rationale FROM scores WHERE metric = 'correctness' ORDER BY example_id"
        )
        assert [r for (r,) in stored] == rationales
        code, out, err = harness(env, "runs", "show", doc["run_id"], "--rows", "--json")
        assert code == 0, err
        rows = json.loads(out)["rows_table"]
        assert [r["correctness/rationale"] for r in rows] == rationales
        report = tmp_path / "report.html"
        assert harness(env, "report", doc["run_id"], "-o", str(report))[0] == 0
        assert all(json.dumps(r) in _report_rows(report) for r in rationales)
        table = _mlflow_table(home, doc["mlflow_run_id"])
        assert table["correctness/rationale"] == rationales
        # replayed: the cached answers give the same rationales
        code, out, err = harness(
            env, *args, "--judge-model", "openai:/judge", "--cache", "replay", "--json"
        )
        assert code == 0, err
        again = json.loads(out)["run_id"]
        stored = query(
            home,
            "SELECT rationale FROM scores WHERE metric = 'correctness' AND run_id = ? "
            "ORDER BY example_id",
            [again],
        )
        assert [r for (r,) in stored] == rationales


def test_imported_rows_holding_lone_surrogate_escapes_are_stored_run_and_logged(
    tmp_path: Path,
) -> None:
    """JSONL fields (an extra column's keys too) and a CSV cell holding a JSON list: each
    escape \\ud800 of the file is stored as those six characters, and scored as them."""
    home = tmp_path / "home"
    env = harness_env(home)
    question = "q \ud800"
    jsonl = _write(
        tmp_path / "s.jsonl",
        [
            {"question": question, "answer": [question], "note": {"k \udc00": "n \udc00"}},
            {"question": "plain", "answer": "other"},
        ],
    )
    assert "\\ud800" in jsonl.read_text(encoding="utf-8")
    csv = tmp_path / "c.csv"
    csv.write_text('question,answer\nq0,"[""b \\ud800""]"\n', encoding="utf-8")
    code, _, err = harness(env, "data", "import", str(jsonl), "--name", "s")
    assert code == 0, err
    code, _, err = harness(env, "data", "import", str(csv), "--name", "c")
    assert code == 0, err
    code, out, err = harness(env, "data", "show", "c", "--json")
    assert code == 0, err
    assert json.loads(out)["examples"][0]["expected"] == ["b \\ud800"]
    code, out, err = harness(env, "data", "show", "s", "--json")
    assert code == 0, err
    first = json.loads(out)["examples"][0]
    assert (first["input"], first["expected"]) == ("q \\ud800", ["q \\ud800"])
    assert first["extra"] == {"note": {"k \\udc00": "n \\udc00"}}

    args = ["run", "--data", "s", "--model", "echo", "--prompt", "{input}"]
    code, out, err = harness(env, *args, "--metric", "exact_match", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["metrics"]["exact_match"]["mean"] == 0.5  # the echo of row 0 is its answer
    assert query(home, "SELECT output FROM outputs ORDER BY example_id") == [
        ("q \\ud800",),
        ("plain",),
    ]
    table = _mlflow_table(home, doc["mlflow_run_id"])
    assert table["input"] == ["q \\ud800", "plain"]
    assert table["note"][0] == {"k \\udc00": "n \\udc00"}


def test_a_column_named_with_a_lone_surrogate_escape_is_imported_under_the_escape(
    tmp_path: Path,
) -> None:
    """Before: "error: cannot read k.jsonl as jsonl: 'utf-8' codec can't encode character
    '\\ud800' ..." (pandas cannot hold the name). A JSONL or JSON column name holding the
    escape is now that name written as its escape, as values are; --input names it so. A
    row whose names would then be one name twice is refused, naming them."""
    home = tmp_path / "home"
    env = harness_env(home)
    jsonl = _write(
        tmp_path / "k.jsonl", [{"question": "q1", "answer": "a", "\ud800": "v", "in \udc00": "x"}]
    )
    array = tmp_path / "k.json"
    array.write_text(json.dumps([{"question": "q1", "\ud800": "v"}]), encoding="utf-8")
    for path, name in ((jsonl, "k"), (array, "j")):
        code, _, err = harness(env, "data", "import", str(path), "--name", name)
        assert code == 0, err
        code, out, err = harness(env, "data", "show", name, "--json")
        assert code == 0, err
        assert json.loads(out)["examples"][0]["extra"]["\\ud800"] == "v"
    code, out, err = harness(
        env, "data", "import", str(jsonl), "--name", "i", "--input", "in \\udc00", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["columns"]["input"] == "in \\udc00"
    twice = _write(tmp_path / "t.jsonl", [{"question": "q1", "\ud800": "v", "\\ud800": "w"}])
    code, out, err = harness(env, "data", "import", str(twice), "--name", "t")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f'error: {twice}:1: columns "\\ud800" and "\\\\ud800" would both be stored as '
        "\\ud800 (a lone surrogate is stored as its escape); rename one"
    ]


def test_a_run_name_and_prompt_with_bytes_that_are_not_utf8_are_stored_as_escapes(
    tmp_path: Path,
) -> None:
    """A byte of argv that is not UTF-8 (a Latin-1 terminal's ÿ) reaches Python as a lone
    surrogate, \\udcff, as a JSON escape's does."""
    home = tmp_path / "home"
    env = harness_env(home)
    data = _write(tmp_path / "s.jsonl", [{"question": "q0"}])
    assert harness(env, "data", "import", str(data), "--name", "s")[0] == 0
    name, prompt = "r\udcff", "p\udcff {input}"  # subprocess passes them as the bytes r\xff ...
    code, out, err = harness(
        env,
        "run",
        "--data",
        "s",
        "--model",
        "echo",
        "--run-name",
        name,
        "--prompt",
        prompt,
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["run_name"] == "r\\udcff"
    assert query(home, "SELECT run_name FROM runs") == [("r\\udcff",)]
    assert query(home, "SELECT output FROM outputs") == [("p\\udcff q0",)]
    code, out, err = harness(env, "runs", "show", "r\\udcff", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["prompt"] == "p\\udcff {input}"


def test_a_params_lone_surrogate_inside_a_list_or_dict_is_stored_as_its_escape(
    tmp_path: Path,
) -> None:
    """Before: `--param 'stop=["\\ud800"]'` (a JSON value) stopped with exit 74, "error:
    .../harness.duckdb: Conversion Error: Malformed JSON ...: no low surrogate in string",
    blaming the environment: only a parameter's top-level text was written as its escape.
    Now a list's or dict's text (keys too) is, as a top-level value's, and the run goes on;
    a sweep over such values too."""
    import sqlite3

    home = tmp_path / "home"
    env = harness_env(home)
    data = _write(tmp_path / "s.jsonl", [{"question": "q0"}])
    assert harness(env, "data", "import", str(data), "--name", "s")[0] == 0
    args = ["run", "--data", "s", "--model", "echo", "--json"]
    code, out, err = harness(
        env, *args, "--param", 'stop=["\\ud800"]', "--param", 'x={"k\\udc00": ["v\\ud800"]}'
    )
    assert code == 0, err
    run = json.loads(out)["run_id"]
    code, out, err = harness(env, "runs", "show", run, "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["params"] == {
        "stop": ["\\ud800"],
        "x": {"k\\udc00": ["v\\ud800"]},
    }
    with sqlite3.connect(home / "mlruns" / "mlflow.db") as con:
        logged = dict(con.execute("SELECT key, value FROM params WHERE value LIKE '%ud800%'"))
    assert logged["param.stop"] == "['\\\\ud800']"  # MLflow writes the list's str()
    code, out, err = harness(
        env, *args, "--param", 'stop=["\\ud800"]', "--param", 'stop=["a"]', "--no-mlflow"
    )
    assert code == 0, err  # a traceback (UnicodeEncodeError) printing the sweep's JSON
    assert [r["values"] for r in json.loads(out)["runs"]] == [
        {"stop": ["\\ud800"]},
        {"stop": ["a"]},
    ]
