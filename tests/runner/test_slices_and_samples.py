"""`--by` and `--sample` end to end: real PubMedQA rows in DuckDB, judges on the fake LLM
server, the CLI, `runs show`, run files, MLflow and `harness.evaluate`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from harness.cli import cli
from harness.testing import FakeLLMConfig, FakeLLMServer

REPO = Path(__file__).resolve().parent.parent.parent
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"
ROWS = 120


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def query(home: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(running_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    running_server.configure(**FakeLLMConfig().as_dict())
    running_server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", running_server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return running_server


@pytest.fixture
def pubmedqa(tmp_path: Path) -> list[dict[str, object]]:
    """The first ROWS PubMedQA rows, imported as dataset `pqa`."""
    with open(PUBMEDQA, encoding="utf-8") as f:  # by "\n": answers hold U+2028
        rows = [json.loads(line) for line, _ in zip(f, range(ROWS), strict=False)]
    path = tmp_path / "pqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, err = invoke("data", "import", str(path), "--name", "pqa")
    assert code == 0, err
    return rows


def stored_per_row(home: Path, run_id: str) -> pd.DataFrame:
    """The reference: each row's scores as DuckDB holds them (a judge's samples averaged),
    with its final_decision, computed by SQL and pandas without harness."""
    scores = query(
        home,
        f"""
        SELECT s.example_id, s.metric, s.value,
               json_extract_string(e.extra, '$.final_decision') AS final_decision
        FROM scores s JOIN runs r ON r.run_id = s.run_id
        JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                       AND e.id = s.example_id
        WHERE s.run_id = '{run_id}' AND s.value IS NOT NULL
        """,
    )
    return (
        scores.groupby(["example_id", "final_decision", "metric"])["value"]
        .mean()
        .unstack("metric")
        .reset_index()
    )


def test_run_by_column_equals_a_groupby_of_the_stored_scores(
    server: FakeLLMServer, pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    code, out, err = invoke(
        "run", "--data", "pqa", "--model", "python:harness_test_models:answer_some",
        "--metric", "exact_match", "--metric", "token_f1", "--judge", "correctness",
        "--judge-model", "openai:/judge", "--judge-samples", "2", "--by", "final_decision",
        "--by", "year", "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    table, years = doc["slices"]  # --by is repeatable: a table per column, in order
    assert table["column"] == "final_decision"
    assert [s["value"] for s in table["slices"]] == ["maybe", "no", "yes"]
    per_row = stored_per_row(home, doc["run_id"])
    expected_counts = Counter(str(r["final_decision"]) for r in pubmedqa)
    for metric in ("exact_match", "token_f1", "correctness"):
        groups = per_row.groupby("final_decision")[metric]
        for s in table["slices"]:
            column = groups.get_group(s["value"]).dropna()
            got = s["metrics"][metric]
            assert s["rows"] == expected_counts[s["value"]]
            assert got["count"] == column.count()
            assert got["mean"] == pytest.approx(column.mean(), rel=1e-12)
            # exact_match declares 0/1 scores; the judge asked twice scores a row with the
            # mean of its samples, a scale even in a slice where both samples always agree.
            if metric == "exact_match":
                low, high = proportion_confint(column.sum(), column.count(), method="wilson")
                assert got["interval"] == "wilson"
            else:
                low, high = scipy_stats.t.interval(
                    0.95, column.count() - 1, loc=column.mean(), scale=scipy_stats.sem(column)
                )
                assert got["interval"] == "t"
            assert got["ci"] == [pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9)]
        overall = table["overall"]["metrics"][metric]
        assert overall["mean"] == pytest.approx(per_row[metric].mean(), rel=1e-12)
        assert overall["mean"] == pytest.approx(doc["metrics"][metric]["mean"], rel=1e-12)
    assert 0 < table["overall"]["metrics"]["exact_match"]["mean"] < 1  # a mixed 0/1 score
    assert table["overall"]["metrics"]["token_f1"]["interval"] == "t"  # and a scale
    # `year` is missing on some rows: they are the last slice, value None; the years sort
    # as numbers.
    assert years["column"] == "year"
    year_of = {str(r["id"]): r["year"] for r in pubmedqa}
    expected_years = Counter(year_of.values())
    assert None in expected_years
    known = sorted((y for y in expected_years if y is not None), key=int)
    assert [s["value"] for s in years["slices"]] == [*known, None]
    assert {s["value"]: s["rows"] for s in years["slices"]} == dict(expected_years)
    no_year = per_row[per_row["example_id"].map(year_of).isna()]["token_f1"]
    assert years["slices"][-1]["metrics"]["token_f1"]["mean"] == pytest.approx(no_year.mean())

    # `runs show` recomputes the run's own --by columns from the store, and from a file.
    code, out, _ = invoke("runs", "show", doc["run_id"], "--json")
    assert code == 0 and json.loads(out)["slices"] == doc["slices"]
    exported = tmp_path / "run.jsonl"
    assert invoke("runs", "export", doc["run_id"], str(exported))[0] == 0
    code, out, err = invoke("runs", "show", str(exported), "--by", "final_decision", "--json")
    assert code == 0, err
    assert json.loads(out)["slices"] == doc["slices"][:1]  # the columns asked for, only
    code, out, _ = invoke("runs", "show", doc["run_id"], "--by", "year")
    assert code == 0 and "by year:" in out and "final_decision" not in out
    lines = [line.split("│") for line in out.splitlines() if "│" in line]
    first_year = min(str(r["year"]) for r in pubmedqa)
    assert any(cells[1].strip() == first_year for cells in lines)


def test_too_many_slice_values_are_refused_with_one_line(
    pubmedqa: list[dict[str, object]], home: Path
) -> None:
    run = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--no-mlflow")
    code, _, err = invoke(*run, "--by", "id")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: --by id: {ROWS} distinct values, more than the 50 allowed")
    code, _, err = invoke(*run, "--by", "topic")
    assert code == 2 and "--by topic: no row has that column; columns: context," in err
    (home / "harness.toml").write_text("[slices]\nmax_values = 2\n")
    code, _, err = invoke(*run, "--by", "final_decision")
    assert code == 2 and "--by final_decision: 3 distinct values, more than the 2" in err
    assert len(query(home, "SELECT * FROM runs")) == 0  # nothing was written
    code, out, err = invoke(*run, "--by", "final_decision", "--max-slices", "3", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, _, err = invoke("runs", "show", run_id, "--by", "year")
    assert code == 2 and "--by year:" in err and "more than the 2 allowed" in err
    code, _, err = invoke("compare", run_id, run_id, "--by", "year", "--max-slices", "4")
    assert code == 2 and "more than the 4 allowed" in err


def test_a_run_made_with_a_raised_limit_shows_its_own_slices_again(
    pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    """A run made `--by id --max-slices 200` could not be shown again: `runs show RUN`
    (and its run file, and `runs show SWEEP` of a sweep made so) refused the run's own
    column, "--by id: 120 distinct values, more than the 50 allowed", exit 2, though no
    --by was given. The run's own columns were counted against its limit when it ran; a
    column given to `runs show --by` still is."""
    run = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--no-mlflow",
           "--by", "id", "--max-slices", "200")  # fmt: skip
    code, out, err = invoke(*run, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = invoke("runs", "show", run_id)
    assert code == 0, err
    assert f"by id: {ROWS} values" in out
    code, out, err = invoke("runs", "show", run_id, "--json")
    assert code == 0, err
    assert len(json.loads(out)["slices"][0]["slices"]) == ROWS
    exported = tmp_path / "run.jsonl"
    assert invoke("runs", "export", run_id, str(exported))[0] == 0
    code, out, err = invoke("runs", "show", str(exported))
    assert code == 0, err
    assert f"by id: {ROWS} values" in out
    code, _, err = invoke("runs", "show", run_id, "--by", "id")  # asked for: the limit holds
    assert code == 2 and "more than the 50 allowed" in err
    code, out, err = invoke(*run, "--param", "temperature=0", "--param", "temperature=1",
                            "--run-name", "wide")  # fmt: skip
    assert code == 0, err
    code, out, err = invoke("runs", "show", "wide")
    assert code == 0, err
    assert out.count(f"by id: {ROWS} values") == 2


def test_an_empty_stratify_column_is_refused_with_one_line(
    pubmedqa: list[dict[str, object]], home: Path
) -> None:
    """`--stratify ''` (an unset shell variable, say) ran a plain sample, or every row
    without --sample, and stored the empty column with the run."""
    run = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--no-mlflow")
    for more in (("--sample", "10", "--stratify", ""), ("--stratify", "")):
        code, out, err = invoke(*run, *more)
        assert (code, out, err) == (2, "", "error: --stratify needs a column name, got ''\n")
    code, out, err = invoke("data", "sample", "pqa", "10", "--stratify", "", "--name", "p10")
    assert (code, out, err) == (2, "", "error: --stratify needs a column name, got ''\n")
    assert len(query(home, "SELECT * FROM runs")) == 0
    assert query(home, "SELECT DISTINCT name FROM datasets")["name"].tolist() == ["pqa"]


def test_each_run_of_a_sweep_has_its_slices(pubmedqa: list[dict[str, object]], home: Path) -> None:
    sweep = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--param",
             "temperature=0", "--param", "temperature=1", "--by", "final_decision",
             "--no-mlflow")  # fmt: skip
    code, out, err = invoke(*sweep, "--json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert len(runs) == 2
    for run in runs:
        (table,) = run["slices"]
        assert [s["rows"] for s in table["slices"]] == [
            Counter(str(r["final_decision"]) for r in pubmedqa)[v] for v in ("maybe", "no", "yes")
        ]
    code, out, err = invoke(*sweep)
    assert code == 0, err
    assert out.count("by final_decision: 3 values") == 2
    assert "(temperature=0):" in out and "(temperature=1):" in out


def test_a_sampled_rerun_picks_the_same_rows_and_sends_no_requests(
    server: FakeLLMServer, pubmedqa: list[dict[str, object]], home: Path
) -> None:
    sample = ("--sample", "30", "--seed", "5", "--stratify", "final_decision")
    args = ("run", "--data", "pqa", "--model", "openai:/m", "--metric", "token_f1",
            "--no-mlflow", "--json", *sample)  # fmt: skip
    code, out, err = invoke(*args)
    assert code == 0, err
    first = json.loads(out)
    assert first["rows"] == 30 and first["calls"]["model"]["requests"] == 30
    assert first["sample"] == {"size": 30, "seed": 5, "stratify": "final_decision",
                               "rows": 30, "population": ROWS}  # fmt: skip
    sent = server.stats()["requests_total"]
    code, out, err = invoke(*args)
    assert code == 0, err
    again = json.loads(out)
    assert again["calls"]["model"]["requests"] == 0
    assert again["calls"]["model"]["cache_hits"] == 30
    assert server.stats()["requests_total"] == sent  # not one request reached the server
    ids = {
        run: set(query(home, f"SELECT example_id FROM run_examples WHERE run_id = '{run}'")
                 ["example_id"])
        for run in (first["run_id"], again["run_id"])
    }  # fmt: skip
    assert ids[first["run_id"]] == ids[again["run_id"]] and len(ids[first["run_id"]]) == 30
    outputs = query(home, f"SELECT example_id FROM outputs WHERE run_id = '{again['run_id']}'")
    assert set(outputs["example_id"]) == ids[again["run_id"]]
    # Each final_decision keeps its share of the 120 rows, within one row.
    decision = {str(r["id"]): str(r["final_decision"]) for r in pubmedqa}
    shares = Counter(decision[i] for i in ids[first["run_id"]])
    for value, count in Counter(decision.values()).items():
        assert abs(shares[value] - Fraction(30 * count, ROWS)) < 1
    # The same rows as a fraction: 0.25 of 120 is 30, and the same seed picks them again.
    code, out, _ = invoke(*args[:-6], "--sample", "0.25", "--seed", "5",
                          "--stratify", "final_decision")  # fmt: skip
    assert code == 0 and json.loads(out)["calls"]["model"]["requests"] == 0
    code, out, _ = invoke(*args[:-6], "--sample", "30", "--seed", "6")
    assert code == 0 and json.loads(out)["calls"]["model"]["requests"] > 0
    code, out, _ = invoke("runs", "show", first["run_id"])
    assert "sample: 30 of 120 rows (seed 5, stratified by final_decision)" in out


def test_a_resumed_sample_finishes_exactly_its_rows(
    pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    code, out, _ = invoke(
        "run", "--data", "pqa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", "exact_match", "--sample", "12", "--seed", "2", "--no-mlflow", "--json",
        env=env,
    )  # fmt: skip
    assert code == 1
    run = json.loads(out)
    assert 0 < run["errors"] < 12 and run["rows"] == 12
    chosen = set(query(home, "SELECT example_id FROM run_examples")["example_id"])
    flag.unlink()
    code, out, err = invoke("run", "--resume", run["run_id"], "--json", env=env)
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["rows"] == resumed["rows_done"] == 12 and resumed["errors"] == 0
    done = query(home, f"SELECT example_id, error FROM outputs WHERE run_id = '{run['run_id']}'")
    assert set(done["example_id"]) == chosen and done["error"].isna().all()


def test_a_resume_takes_the_runs_own_seed_alone_as_it_takes_its_stratify(
    pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    """`--resume RUN --seed 2` of a run sampled with seed 2 was refused ("--seed picks which
    --sample; give --sample N (or a fraction) too") while `--stratify` alone passed."""
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    code, out, _ = invoke(
        "run", "--data", "pqa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", "exact_match", "--sample", "12", "--seed", "2", "--stratify",
        "final_decision", "--no-mlflow", "--json", env=env,
    )  # fmt: skip
    assert code == 1
    run_id = json.loads(out)["run_id"]
    code, _, err = invoke("run", "--resume", run_id, "--seed", "3", env=env)
    assert (code, err) == (2, (
        "error: --resume goes on with the run's own options, and --seed differs from the "
        "run's; start a new run to change them (its calls come from the cache)\n"
    ))  # fmt: skip
    flag.unlink()
    code, out, err = invoke("run", "--resume", run_id, "--seed", "2", "--json", env=env)
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["run_id"] == run_id and resumed["errors"] == 0 and resumed["rows"] == 12


def test_data_sample_writes_its_counts_as_everything_else_does(home: Path) -> None:
    """It said "200 of 1000 rows" where `runs show` and `compare` write 1,000."""
    assert invoke("data", "import", str(PUBMEDQA), "--name", "full")[0] == 0
    code, out, err = invoke("data", "sample", "full", "200", "--name", "full-200")
    assert code == 0, err
    (full,) = query(home, "SELECT version FROM datasets WHERE name = 'full'")["version"]
    assert f"(200 rows; sample of full@{full}: 200 of 1,000 rows (seed 0))" in out
    # And then "saved full-all@... (1000 rows; ...)" and "saved full-1@... (1 rows; ...)".
    code, out, err = invoke("data", "sample", "full", "1000", "--name", "full-all")
    assert code == 0 and out.startswith(f"saved full-all@{full} (1,000 rows; sample of "), err
    code, out, err = invoke("data", "sample", "full", "1", "--name", "full-1")
    assert code == 0 and " (1 row; sample of " in out, err


def test_data_sample_saves_a_content_digested_version(
    pubmedqa: list[dict[str, object]], home: Path
) -> None:
    args = ("data", "sample", "pqa", "24", "--seed", "3", "--stratify", "final_decision",
            "--name", "pqa-24", "--json")  # fmt: skip
    code, out, err = invoke(*args)
    assert code == 0, err
    saved = json.loads(out)
    assert saved["created"] and saved["rows"] == 24
    (pqa,) = query(home, "SELECT version FROM datasets WHERE name = 'pqa'")["version"]
    expected = f"sample of pqa@{pqa}: 24 of 120 rows (seed 3, stratified by final_decision)"
    assert saved["source"] == expected
    code, out, _ = invoke(*args)
    assert code == 0 and not json.loads(out)["created"]
    assert json.loads(out)["version"] == saved["version"]
    # The same rows a sampled run picks, in the dataset's order, extra columns kept.
    code, out, _ = invoke("run", "--data", "pqa", "--model", "echo", "--metric", "word_count",
                          "--sample", "24", "--seed", "3", "--stratify", "final_decision",
                          "--no-mlflow", "--json")  # fmt: skip
    run_id = json.loads(out)["run_id"]
    picked = query(home, f"SELECT example_id FROM run_examples WHERE run_id = '{run_id}'")
    stored = query(home, "SELECT id, position, extra FROM examples WHERE dataset = 'pqa-24' "
                   "ORDER BY position")  # fmt: skip
    assert set(stored["id"]) == set(picked["example_id"])
    order = [str(r["id"]) for r in pubmedqa]
    assert list(stored["id"]) == sorted(stored["id"], key=order.index)
    assert all("final_decision" in json.loads(extra) for extra in stored["extra"])
    code, _, err = invoke("data", "sample", "pqa", "24", "--stratify", "level", "--name", "x")
    assert code == 2 and "--stratify level: no row has that column" in err
    code, _, err = invoke("data", "sample", "pqa", "500", "--name", "x")
    assert code == 2 and "error: N 500 is more rows than the 120 there are" in err
    assert "--sample" not in err  # data sample has no such option
    assert query(home, "SELECT count(*) AS n FROM datasets WHERE name = 'x'")["n"][0] == 0
    # A sample named like its source became the source's newest version: `--data pqa` then
    # ran on 24 rows. Refused, the source left as it was.
    code, out, err = invoke("data", "sample", "pqa", "24", "--name", "pqa")
    assert (code, out) == (2, "") and err == (
        "error: --name pqa: the sample would become the newest version of the dataset it is "
        "drawn from, and `--data pqa` would run on it; give the sample a name of its own "
        "(e.g. pqa-24)\n"
    )
    assert list(query(home, "SELECT n_rows FROM datasets WHERE name = 'pqa'")["n_rows"]) == [120]


def test_compare_pairs_only_the_rows_both_samples_have(
    pubmedqa: list[dict[str, object]], home: Path
) -> None:
    def run(*sample: str) -> dict[str, object]:
        code, out, err = invoke(
            "run", "--data", "pqa", "--model", "python:harness_test_models:answer_some",
            "--metric", "token_f1", "--no-mlflow", "--json", *sample,
        )  # fmt: skip
        assert code == 0, err
        return json.loads(out)

    a = run("--sample", "60", "--seed", "1")
    b = run("--sample", "60", "--seed", "2")
    full = run()
    ids = {
        r["run_id"]: set(query(home, f"SELECT example_id FROM outputs WHERE run_id = "
                               f"'{r['run_id']}'")["example_id"])
        for r in (a, b, full)
    }  # fmt: skip
    code, out, err = invoke("compare", str(a["run_id"]), str(b["run_id"]), "--json")
    assert code == 0, err
    candidate = json.loads(out)["candidates"][0]
    common = len(ids[a["run_id"]] & ids[b["run_id"]])
    assert candidate["pairing"]["paired"] == common < 60
    assert candidate["metrics"][0]["n"] == common
    (note,) = [n for n in candidate["notes"] if n.startswith("SAMPLES:")]
    assert "base is a sample of 60 of 120 rows (seed 1)" in note
    assert f"compared on the {common} rows both have" in note
    code, out, _ = invoke("compare", str(full["run_id"]), str(a["run_id"]))
    assert code == 0 and "note: SAMPLES: base has 120 rows; candidate is a sample" in out
    code, out, _ = invoke("compare", str(a["run_id"]), str(a["run_id"]), "--json")
    notes = json.loads(out)["candidates"][0]["notes"]
    assert notes == ["both runs are the same sample: 60 of 120 rows (seed 1)"]


def test_the_samples_note_writes_counts_as_every_message_does(tmp_path: Path) -> None:
    """`compare`'s note said `base has 1200 rows; candidate is a sample of 1,100 of 1,200
    rows ...; compared on the 1100 rows both have`: two ways to write one count (and
    `--by` said `1200 distinct values`)."""
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"input": f"q {i}"}) + "\n" for i in range(1200)))
    assert invoke("data", "import", str(path), "--name", "big")[0] == 0
    run = ("run", "--data", "big", "--model", "echo", "--metric", "word_count", "--no-mlflow")
    assert invoke(*run, "--run-name", "all")[0] == 0
    assert invoke(*run, "--run-name", "most", "--sample", "1100")[0] == 0
    code, out, err = invoke("compare", "all", "most")
    assert code == 0, err
    assert (
        "note: SAMPLES: base has 1,200 rows; candidate is a sample of 1,100 of 1,200 rows "
        "(seed 0); compared on the 1,100 rows both have, and only on those\n"
    ) in out
    code, _, err = invoke(*run, "--by", "input")
    assert code == 2 and err.startswith("error: --by input: 1,200 distinct values, more than")


def test_the_by_tables_counts_have_thousands_separators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness run --by` wrote its rows column as `1000 of 2000` and its title as `1
    values`, where every other count harness prints reads 1,000 and agrees with its noun."""
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"id": i, "input": f"q {i}", "t": "x"}) + "\n"
                            for i in range(2000)))  # fmt: skip
    assert invoke("data", "import", str(path), "--name", "big")[0] == 0
    flag = tmp_path / "flag"
    flag.touch()  # the even ids fail: half the rows have no score
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    code, out, _ = invoke("run", "--data", "big", "--model",
                          "python:harness_test_models:fail_while_flagged", "--metric",
                          "word_count", "--by", "t", "--no-mlflow")  # fmt: skip
    assert code == 1
    assert "\nby t: 1 value; 95% intervals" in out
    cells = [[c.strip() for c in line.split("│")[1:3]] for line in out.splitlines()
             if line.startswith(("word_count │ (all)", "           │ x"))]  # fmt: skip
    assert cells == [["(all)", "1,000 of 2,000"], ["x", "1,000 of 2,000"]]


def test_slices_reach_mlflow_and_the_python_api(
    pubmedqa: list[dict[str, object]], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness

    result = harness.evaluate(
        model="python:harness_test_models:answer_some", data="pqa", metrics=["exact_match"],
        by="final_decision", sample=0.5, seed=4, stratify="final_decision", home=home,
    )  # fmt: skip
    assert result.result.sample is not None and result.result.sample["rows"] == 60
    slices = result.tables["slices_table"]
    assert list(slices["value"]) == ["(all)", "maybe", "no", "yes"]
    per_row = result.tables["eval_results_table"]
    assert len(per_row) == 60
    for name in ("maybe", "no", "yes"):
        metric = f"exact_match/mean/by/final_decision/{name}"
        row = slices[slices["value"] == name].iloc[0]
        assert result.metrics[metric] == pytest.approx(row["mean"])

    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home

    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)
    logged = client.get_run(result.mlflow_run_id)
    for name in ("maybe", "no", "yes"):
        metric = f"exact_match/mean/by/final_decision/{name}"
        assert logged.data.metrics[metric] == pytest.approx(result.metrics[metric])
    assert logged.data.params["by"] == "final_decision"
    assert logged.data.params["sample"] == "60 of 120"
    assert logged.data.params["sample_stratify"] == "final_decision"
    tables = json.loads(logged.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "slices_table.json", "type": "table"} in tables
    path = client.download_artifacts(result.mlflow_run_id, "slices_table.json")
    artifact = json.loads(Path(path).read_text(encoding="utf-8"))  # mlflow.log_table's shape
    assert artifact["columns"] == ["column", "value", "metric", "mean", "ci_low", "ci_high",
                                   "rows", "count", "ci_note", "interval", "range"]  # fmt: skip
    frame = pd.DataFrame(artifact["data"], columns=artifact["columns"])
    assert frame["mean"].tolist() == pytest.approx(slices["mean"].tolist())
    assert frame["ci_note"].isna().all()  # Wilson's interval: every slice has one
    assert frame["value"].tolist() == slices["value"].tolist()

    # Run again: the store exists and the configuration is registered, so the worker
    # writes this MLflow run with SQL (harness.tracking.sql_run); the same slices reach it.
    again = harness.evaluate(
        model="python:harness_test_models:answer_some", data="pqa", metrics=["exact_match"],
        by="final_decision", sample=0.5, seed=4, stratify="final_decision", home=home,
    )  # fmt: skip
    second = client.get_run(again.mlflow_run_id)
    assert second.data.tags["harness.traces"].endswith("(sql-direct)")
    assert {k: v for k, v in second.data.metrics.items() if "/by/" in k} == {
        k: v for k, v in logged.data.metrics.items() if "/by/" in k
    }
    assert json.loads(second.data.tags["mlflow.loggedArtifacts"]) == tables
    path = client.download_artifacts(again.mlflow_run_id, "slices_table.json")
    assert json.loads(Path(path).read_text(encoding="utf-8")) == artifact
    # The per-row table came as a file from the run's process (sql_artifacts.render_rows), moved
    # into the run's artifacts; a run logged by MLflow's API (forced here by a mode the SQL
    # path does not write) deletes its file unused. None is left either way.
    monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "true")
    by_api = harness.evaluate(
        model="python:harness_test_models:answer_some", data="pqa", metrics=["exact_match"],
        by="final_decision", sample=0.5, seed=4, stratify="final_decision", home=home,
    )  # fmt: skip
    assert (
        not client.get_run(by_api.mlflow_run_id)
        .data.tags["harness.traces"]
        .endswith("(sql-direct)")
    )
    per_row = []
    for run in (again, by_api):
        table = client.download_artifacts(run.mlflow_run_id, "eval_results_table.json")
        per_row.append(json.loads(Path(table).read_text(encoding="utf-8")))
        assert len(per_row[-1]["data"]) == 60
    # MLflow's API logged the table from the run's rows read again from the store (the
    # run's process let its own go before the report): the same table the SQL path wrote,
    # but for the latencies of these two runs.
    assert per_row[1]["columns"] == per_row[0]["columns"]
    timed = per_row[0]["columns"].index("latency_s")
    assert [r[:timed] + r[timed + 1 :] for r in per_row[1]["data"]] == [
        r[:timed] + r[timed + 1 :] for r in per_row[0]["data"]
    ]
    assert list(resolve_home(home).mlruns_dir.glob(".harness-table-*")) == []


def test_a_slice_keeps_its_mlflow_name_whatever_other_values_the_run_has(home: Path) -> None:
    """A value's MLflow metric name was made unique within the run: alone, `a/b` was
    `.../src/a_b`; beside a literal `a_b` that name went to `a_b` and `a/b` got a hash, so
    `.../src/a_b` meant one slice in one run and another in the next. A name is now a
    function of the value alone: a value MLflow takes as it is keeps it, any other gets a
    hash of itself, here read back from the MLflow store of three runs."""
    from mlflow.tracking import MlflowClient

    import harness
    from harness.config import resolve_home

    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)

    def logged_names(values: list[str | None], expected: list[str]) -> dict[str, float]:
        frame = pd.DataFrame({"input": ["x"] * len(values), "expected": expected, "src": values})
        result = harness.evaluate(
            model="python:harness_test_models:slow_echo",
            data=frame,
            metrics=["exact_match"],
            by="src",
            home=home,
        )
        metrics = client.get_run(result.mlflow_run_id).data.metrics
        return {k.removeprefix("exact_match/mean/by/src/"): v for k, v in metrics.items()
                if "/by/" in k}  # fmt: skip

    alone = logged_names(["a/b", "a/b"], ["x", "x"])
    together = logged_names(["a/b", "a_b", None, "_none_"], ["x", "no", "x", "no"])
    literal = logged_names(["a_b", "a_b"], ["no", "no"])
    ((slash, one),) = alone.items()
    assert slash.startswith("a_b_") and one == 1.0
    (word,) = [n for n in together if n.startswith("_none__")]  # the text "_none_", hashed
    assert together == {slash: 1.0, "a_b": 0.0, "_none_": 1.0, word: 0.0}
    assert literal == {"a_b": 0.0}


def test_an_empty_by_column_is_refused_with_one_line(
    pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    """`--by ''` (an unset shell variable, say) said "--by : no row has that column", as if
    the data lacked a column named nothing; it is refused as `--stratify ''` is."""
    said = (2, "", "error: --by needs a column name, got ''\n")
    run = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--no-mlflow")
    assert invoke(*run, "--by", "final_decision", "--by", "") == said
    assert len(query(home, "SELECT * FROM runs")) == 0
    code, out, err = invoke(*run, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert invoke("runs", "show", run_id, "--by", "") == said
    assert invoke("compare", run_id, run_id, "--by", "") == said
    page = tmp_path / "page.html"
    assert invoke("report", run_id, "--by", "", "-o", str(page)) == said
    assert invoke("report", run_id, run_id, "--by", "", "-o", str(page)) == said
    assert not page.exists()


def test_a_by_column_given_twice_is_refused_with_one_line(
    pubmedqa: list[dict[str, object]], home: Path, tmp_path: Path
) -> None:
    """`--by final_decision --by final_decision` ran and showed one table where two columns
    were asked for (a typo for another column, most likely), without a word."""
    said = (2, "", "error: --by year is given more than once; a column is sliced once\n")
    run = ("run", "--data", "pqa", "--model", "echo", "--metric", "word_count", "--no-mlflow")
    assert invoke(*run, "--by", "year", "--by", "final_decision", "--by", "year") == said
    assert len(query(home, "SELECT * FROM runs")) == 0
    code, out, err = invoke(*run, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    twice = ("--by", "year", "--by", "year")
    assert invoke("runs", "show", run_id, *twice) == said
    assert invoke("compare", run_id, run_id, *twice) == said
    page = tmp_path / "page.html"
    assert invoke("report", run_id, *twice, "-o", str(page)) == said
    assert invoke("report", run_id, run_id, *twice, "-o", str(page)) == said
    assert not page.exists()
