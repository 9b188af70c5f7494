"""`harness compare` end to end: stored runs (local models, judges on the fake LLM server),
run files, tags and names, the pairing, every output format."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run

from harness.cli import cli
from harness.testing import FakeLLMConfig, FakeLLMServer


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


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


def run(model: str, name: str, *extra: str, data: str = "qa") -> str:
    code, out, err = invoke(
        "run", "--data", data, "--model", model, "--run-name", name, "--no-mlflow", "--json",
        "--metric", "exact_match", "--metric", "token_f1", "--metric", "word_count",
        "--metric", "latency", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)["run_id"]


@pytest.fixture
def two_runs(qa_file: Path, server: FakeLLMServer) -> tuple[str, str]:
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err
    judge = ("--judge", "correctness", "--judge-model", "openai:/judge")
    base = run("python:harness.baselines:context_overlap", "overlap", *judge)
    candidate = run("python:harness_test_models:answer_expected", "perfect", *judge)
    return base, candidate


def per_row(home: Path, run_id: str, metric: str) -> dict[str, float]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT example_id, avg(value) FROM scores WHERE run_id = ? AND metric = ? "
            "AND value IS NOT NULL GROUP BY example_id",
            [run_id, metric],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_compare_two_stored_runs(two_runs: tuple[str, str], home: Path, tmp_path: Path) -> None:
    base_id, candidate_id = two_runs
    code, _, err = invoke("runs", "tag", base_id, "baseline")
    assert code == 0, err
    code, out, err = invoke("compare", "baseline", "perfect", "--json")  # a tag, a run name
    assert code == 0, err
    doc = json.loads(out)
    assert doc["base"]["run_id"] == base_id
    candidate = doc["candidates"][0]
    assert candidate["run"]["run_id"] == candidate_id
    assert candidate["pairing"] == {"paired": 20, "base_only": 0, "candidate_only": 0}
    metrics = {m["metric"]: m for m in candidate["metrics"]}
    assert list(metrics) == ["exact_match", "token_f1", "word_count", "latency", "correctness"]
    # The numbers are the per-row scores in DuckDB, paired by example id.
    for name in ("token_f1", "correctness"):
        b, c = per_row(home, base_id, name), per_row(home, candidate_id, name)
        shared = sorted(set(b) & set(c))
        assert metrics[name]["n"] == len(shared)
        expected = np.mean([c[i] - b[i] for i in shared])
        assert metrics[name]["diff"] == pytest.approx(expected)
    em = metrics["exact_match"]
    assert em["binary"] and em["test"] == "exact McNemar" and em["discordant"] == [0, 20]
    assert em["p_value"] == pytest.approx(2 * 0.5**20)  # exact: 20 of 20 rows improved
    assert em["verdict"] == "better" and metrics["token_f1"]["verdict"] == "better"
    assert metrics["latency"]["direction"] == -1 and metrics["word_count"]["direction"] == 0
    assert metrics["correctness"]["test"] == "exact McNemar"  # a yes/no judge
    p_values = [m["p_value"] for m in metrics.values()]
    from statsmodels.stats.multitest import multipletests

    assert [m["p_adjusted"] for m in metrics.values()] == pytest.approx(
        list(multipletests(p_values, method="holm")[1])
    )
    flipped = candidate["flipped"]
    assert flipped["improvements"] + flipped["regressions"] >= 20
    for row in flipped["regressed_rows"]:
        assert row["worse"]
    for row in flipped["improved_rows"]:
        assert row["better"] and not row["worse"]
        assert row["input"] and row["base_output"] and row["candidate_output"]
        assert row["rationales"]["correctness"]["candidate"]  # the judge's reason, shown
    # The same comparison from an exported baseline file gives the same numbers.
    exported = tmp_path / "baseline.parquet"
    assert invoke("runs", "export", "baseline", str(exported))[0] == 0
    code, out, err = invoke("compare", str(exported), candidate_id[:6], "--json")
    assert code == 0, err
    again = json.loads(out)["candidates"][0]
    assert again["metrics"] == candidate["metrics"] and again["flipped"] == flipped


def test_compare_outputs_rows_limit_and_step_summary(
    two_runs: tuple[str, str], tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    code, out, _ = invoke(
        "compare", "overlap", "perfect", "--rows", "2", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert code == 0
    assert "exact_match ↑" in out and "better" in out
    assert out.count("better: row ") <= 2 and "got better" in out
    code, markdown, _ = invoke("compare", "overlap", "perfect", "--markdown", "--rows", "2")
    assert code == 0
    assert "| metric | base | candidate | change [95% CI] | p (adj.) | verdict |" in markdown
    assert "| exact_match ↑ | 0 [0, 0.161] | 1 [0.839, 1] | +1 [" in markdown
    assert summary.read_text(encoding="utf-8").startswith("### harness compare")
    code, out, _ = invoke("compare", "overlap", "perfect", "--json", "--rows", "2")
    flipped = json.loads(out)["candidates"][0]["flipped"]
    assert len(flipped["improved_rows"]) == 2 and flipped["improvements"] > 2


def test_judge_samples_are_averaged_per_row(
    qa_file: Path, server: FakeLLMServer, home: Path
) -> None:
    server.configure(vary_with_temperature=True)
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    judge = ("--judge", "faithfulness", "--judge-model", "openai:/judge", "--judge-samples", "3")
    base = run("python:harness.baselines:context_overlap", "a", *judge, "--limit", "10")
    candidate = run("python:harness.baselines:top_sentence", "b", *judge, "--limit", "10")
    code, out, err = invoke("compare", base, candidate, "--json")
    assert code == 0, err
    metric = next(
        m for m in json.loads(out)["candidates"][0]["metrics"] if m["metric"] == "faithfulness"
    )
    b, c = per_row(home, base, "faithfulness"), per_row(home, candidate, "faithfulness")
    assert any(v != int(v) for v in [*b.values(), *c.values()])  # samples disagreed somewhere
    assert metric["base"]["mean"] == pytest.approx(np.mean(list(b.values())))
    assert metric["diff"] == pytest.approx(np.mean([c[k] - b[k] for k in b]))
    assert metric["test"] == "paired t"  # means of samples are not 0/1 any more


def test_different_dataset_versions_pair_the_common_ids_loudly(
    qa_rows: list[dict[str, object]], tmp_path: Path
) -> None:
    first, second = tmp_path / "v1.jsonl", tmp_path / "v2.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in qa_rows), encoding="utf-8")
    changed = [dict(r) for r in qa_rows[2:]] + [{**qa_rows[0], "id": "new-row"}]
    second.write_text("".join(json.dumps(r) + "\n" for r in changed), encoding="utf-8")
    refs = []
    for path in (first, second):
        code, out, err = invoke("data", "import", str(path), "--name", "qa", "--json")
        assert code == 0, err
        refs.append(json.loads(out)["ref"])
    base = run("python:harness.baselines:context_overlap", "v1", data=refs[0])
    candidate = run("python:harness.baselines:context_overlap", "v2", data=refs[1])
    code, out, err = invoke("compare", base, candidate)
    assert code == 0, err
    assert "DATASET VERSIONS DIFFER" in out and "paired on the 18 example ids" in out
    doc = json.loads(invoke("compare", base, candidate, "--json")[1])["candidates"][0]
    assert doc["pairing"] == {"paired": 18, "base_only": 2, "candidate_only": 1}


def test_clustered_comparison(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 200
    passages = [{"passage": f"p{i // 4}"} for i in range(n)]  # four questions per passage
    shift = np.repeat(rng.normal(0, 0.2, n // 4), 4)
    base = rng.random(n)
    write_run(tmp_path / "a.jsonl", run_id="a", scores={"token_f1": base}, extra=passages)
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"token_f1": np.clip(base + shift, 0, 1)},
              extra=passages)  # fmt: skip
    args = ("compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--json")
    plain = json.loads(invoke(*args)[1])["candidates"][0]["metrics"][0]
    code, out, err = invoke(*args, "--cluster", "passage")
    assert code == 0, err
    clustered = json.loads(out)["candidates"][0]["metrics"][0]
    assert clustered["clusters"] == 50 and clustered["test"] == "clustered t"
    assert clustered["se"] > plain["se"] * 1.3  # shared shifts: rows are not independent
    code, _, err = invoke(*args, "--cluster", "chapter")
    assert code == 2 and "no row has that column; columns: context, expected" in err


def test_rows_of_one_cluster_say_why_they_have_no_interval(tmp_path: Path) -> None:
    """--cluster by a column of one value (or --by that column, each slice one cluster):
    the cells had no interval, p-value or MDE and no note said why, and check said "60
    paired rows are too few to estimate a change"."""
    rng = np.random.default_rng(5)
    one = [{"source": "web", "topic": f"t{i % 2}"} for i in range(60)]
    base = rng.random(60)
    write_run(tmp_path / "a.jsonl", run_id="a", scores={"token_f1": base}, extra=one)
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"token_f1": base * 0.9}, extra=one)
    runs = (str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    code, out, _ = invoke("compare", *runs, "--cluster", "source", "--json")
    assert code == 0
    candidate = json.loads(out)["candidates"][0]
    metric = candidate["metrics"][0]
    assert (metric["clusters"], metric["ci"], metric["p_value"]) == (1, [None, None], None)
    change = "one cluster: an interval, a p-value or an MDE needs two or more"
    assert metric["interval_note"] == change and change in candidate["notes"]
    mean = "one cluster: an interval needs two or more"
    assert metric["base"]["interval_note"] == metric["candidate"]["interval_note"] == mean
    code, out, _ = invoke("compare", *runs, "--cluster", "topic", "--by", "topic")
    assert code == 0
    assert f"note: topic t0: {change}" in out and f"note: topic t1: {change}" in out
    code, out, _ = invoke("check", runs[1], "--baseline", runs[0], "--cluster", "source",
                          "--max-drop", "token_f1=0.5", "--no-mlflow")  # fmt: skip
    assert code == 3
    assert "60 paired rows of one cluster are too few to estimate a change" in out


def test_a_flipped_rows_control_characters_are_shown_not_sent_to_the_terminal(
    tmp_path: Path,
) -> None:
    """An answer holding ESC [2J (clear the screen) or ESC ]0;... BEL (set the terminal's
    title) was written to the terminal as it is under the flipped rows, where it cleared
    the comparison or could move the cursor over its verdict: it shows as escapes."""
    answer = "\x1b[2J\x1b]0;pwned\x07\x1b[1A check: pass\x00"
    write_run(tmp_path / "a.jsonl", run_id="a", scores={"exact_match": [1.0, 1.0]},
              outputs=["fine", "fine"])  # fmt: skip
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [0.0, 1.0]},
              outputs=[answer, "fine"])  # fmt: skip
    for extra in ([], ["--markdown"]):
        code, out, _ = invoke("compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                              *extra)  # fmt: skip
        assert code == 0
        assert not any(c in out for c in "\x1b\x07\x00")
        assert "x1b[2J" in out and "pwned" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (("nope", "nope2"), "no run, tag or run name 'nope'"),
        (("{a}", "{missing}"), "no such run file"),
        (("{a}", "{a}", "--json", "--markdown"), "choose one of --json and --markdown"),
        (("{a}", "{other}"), "share no example id"),
        (  # stopped before its first row: its eval set is not the question
            ("{a}", "{empty}"),
            "empty.jsonl) has no rows to compare: run e is interrupted, with 0 of 2 rows done\n",
        ),
        (("{a}", "{a}", "--margin", "x=abc"), "--margin expects [METRIC=]VALUE[%]"),
        (  # `--margin "$M=0.1"` with M unset was every metric's margin
            ("{a}", "{a}", "--margin", "=0.1"),
            "error: --margin expects [METRIC=]VALUE[%], got '=0.1'\n",
        ),
        (
            ("{a}", "{a}", "--margin", "nosuch=0.1"),
            "--margin nosuch: the base has no 'nosuch' scores; it has exact_match",
        ),
        (("{a}", "{garbage}"), "is not a harness run file"),
        (  # it was compared twice, and counted twice in the Holm family
            ("{a}", "{a}", "{a}"),
            "is run a, already given as '",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    write_run(tmp_path / "a.jsonl", run_id="a", scores={"exact_match": [1.0, 0.0]})
    write_run(tmp_path / "other.jsonl", run_id="o", scores={"exact_match": [1.0]}, ids=["zz"])
    write_run(tmp_path / "empty.jsonl", run_id="e", scores={"exact_match": []},
              run_name="empty", status="interrupted", rows_total=2)  # fmt: skip
    (tmp_path / "garbage.jsonl").write_text('{"hello": 1}\n', encoding="utf-8")
    paths = {k: str(tmp_path / f"{k}.jsonl") for k in ("a", "other", "garbage", "missing",
                                                       "empty")}  # fmt: skip
    code, out, err = invoke("compare", *(a.format(**paths) for a in args))
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_several_candidates_share_one_holm_family_and_failed_rows_show(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    base = (rng.random(100) < 0.5).astype(float)
    better = base.copy()
    better[np.flatnonzero(base == 0)[:20]] = 1
    failing = [i < 10 for i in range(100)]
    write_run(tmp_path / "a.jsonl", run_id="a", scores={"exact_match": base})
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": better})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": base}, errors=failing)
    code, out, err = invoke(
        "compare", *(str(tmp_path / f"{r}.jsonl") for r in "abc"), "--json", "--rows", "3"
    )
    assert code == 0, err
    b, c = json.loads(out)["candidates"]
    assert [m["metric"] for m in b["metrics"]] == ["exact_match"]  # no failed row: no errors
    assert [m["metric"] for m in c["metrics"]] == ["exact_match", "errors"]
    errors = c["metrics"][1]
    assert errors["direction"] == -1 and errors["diff"] == pytest.approx(0.1)
    assert errors["verdict"] == "worse" and errors["discordant"] == [0, 10]
    assert c["metrics"][0]["n"] == 90 and c["metrics"][0]["missing"] == 10
    from statsmodels.stats.multitest import multipletests

    family = [b["metrics"][0]["p_value"], *(m["p_value"] for m in c["metrics"])]
    adjusted = [b["metrics"][0]["p_adjusted"], *(m["p_adjusted"] for m in c["metrics"])]
    assert adjusted == pytest.approx(list(multipletests(family, method="holm")[1]))
    failed = c["flipped"]["regressed_rows"][0]
    assert failed["candidate_error"] == "RuntimeError: boom" and failed["candidate_output"] is None
    assert failed["worse"] == [{"metric": "errors", "base": 0.0, "candidate": 1.0}]
    assert c["flipped"]["regressions"] == 10


def test_a_run_file_row_with_a_null_extra_has_no_extra_columns(tmp_path: Path) -> None:
    # A hand-edited or third-party run file may hold "extra": null (the reader takes it):
    # --cluster and --by crashed on it (TypeError: 'float' object is not iterable); the row
    # now has no extra columns. An extra that is not an object is refused, naming the row.
    data = tmp_path / "topics.jsonl"
    topics = {"a": "t1", "b": "t1", "c": "t2", "d": "t2"}
    data.write_text(
        "".join(
            json.dumps({"id": i, "input": f"q {i}", "topic": t}) + "\n" for i, t in topics.items()
        )
    )
    assert invoke("data", "import", str(data), "--name", "topics")[0] == 0
    code, out, err = invoke(
        "run", "--data", "topics", "--model", "echo", "--metric", "word_count",
        "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 0, err
    exported = tmp_path / "run.jsonl"
    assert invoke("runs", "export", json.loads(out)["run_id"], str(exported))[0] == 0
    header, *lines = exported.read_text().splitlines()

    def edited(name: str, extra: object) -> str:
        rows = [json.loads(line) for line in lines]
        rows[0]["extra"] = extra  # row "a"
        path = tmp_path / name
        path.write_text("\n".join([header, *(json.dumps(r) for r in rows)]) + "\n")
        return str(path)

    nulled = edited("nulled.jsonl", None)
    for args in (("--cluster", "topic"), ("--by", "topic")):
        code, out, err = invoke("compare", nulled, str(exported), *args, "--json")
        assert code == 0, (args, err)
    code, out, err = invoke("compare", nulled, str(exported), "--cluster", "topic", "--json")
    assert json.loads(out)["candidates"][0]["metrics"][0]["clusters"] == 3  # "a" alone

    wrong = edited("wrong.jsonl", 5)
    code, out, err = invoke("compare", wrong, str(exported), "--cluster", "topic")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {wrong}: row 'a' has an extra that is not an object of its other columns "
        "(or null for none)\n"
    )


def test_counts_of_thousands_have_separators_in_compare_and_check(tmp_path: Path) -> None:
    """Compare and check wrote '1050 rows got worse', '1200 rows, 1050 failed', '1050 of
    1200 rows failed (87.5%)' and 'with 1200 of 1200 rows', beside '1,200 paired rows'."""
    n, failing = 1200, 1050
    base = write_run(tmp_path / "base.jsonl", run_id="kbase", scores={"f1": [0.2] * n})
    cand = write_run(tmp_path / "cand.jsonl", run_id="kcand", scores={"f1": [0.5] * n},
                     errors=[i < failing for i in range(n)], status="stopped")  # fmt: skip
    code, out, err = invoke("compare", str(base), str(cand))
    assert code == 0, err
    assert "1,050 rows got worse, 150 got better" in out
    assert "1,200 rows, 1,050 failed" in out
    assert "run kcand is stopped, with 1,200 of 1,200 rows" in out
    code, out, err = invoke("compare", str(base), str(cand), "--markdown")
    assert code == 0, err
    assert "**1,050** rows got worse" in out and "1,200 rows, 1,050 failed)" in out
    code, out, _ = invoke("check", str(cand), "--baseline", str(base), "--max-error-rate", "0.1")
    assert code == 1
    assert "1,050 of 1,200 rows failed (87.5%), more than the 10.0% allowed" in out


def test_a_run_with_no_name_shows_its_id_once(qa_file: Path, tmp_path: Path) -> None:
    """A run with no name is named by its id: its line read `base: 1a2b3c4d5e6f  [1a2b3c4d5e6f]
    echo on ...` in the terminal, `**1a2b3c4d5e6f** (`1a2b3c4d5e6f`, ...` in the Markdown."""
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    runs = []
    for named in ((), ("--run-name", "named")):
        code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--metric",
                                "word_count", "--no-mlflow", "--json", *named)  # fmt: skip
        assert code == 0, err
        runs.append(json.loads(out)["run_id"])
    unnamed, named = runs
    code, out, err = invoke("compare", unnamed, named)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"base: [{unnamed}] echo on qa@"), lines[0]
    assert lines[2].startswith(f"candidate: named  [{named}] echo on qa@"), lines[2]
    code, out, err = invoke("compare", unnamed, named, "--markdown")
    assert code == 0, err
    assert f"Base: `{unnamed}` (`echo` on `qa@" in out
    assert f"Candidate: **named** (`{named}`, `echo` on `qa@" in out
    page = tmp_path / "page.html"
    code, _, err = invoke("report", unnamed, named, "-o", str(page))
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert f"<b>base</b>: <code>{unnamed}</code>, echo on qa@" in html
    assert f"<b>candidate</b>: named <code>{named}</code>, echo on qa@" in html
    # An exported run with no name: its id once, then the file it came from.
    exported = tmp_path / "unnamed.jsonl"
    assert invoke("runs", "export", unnamed, str(exported))[0] == 0
    code, out, err = invoke("compare", str(exported), named)
    assert code == 0, err
    assert out.startswith(f"base: [{unnamed}] ({exported}) echo on qa@"), out.splitlines()[0]


def test_an_empty_cluster_column_is_refused_with_one_line(tmp_path: Path) -> None:
    """`--cluster ''` (an unset shell variable, say) compared and checked without clusters,
    as if none were asked for, with intervals too narrow for clustered rows."""
    base = write_run(tmp_path / "base.jsonl", run_id="ebase", scores={"f1": [0.2, 0.4, 0.3]})
    cand = write_run(tmp_path / "cand.jsonl", run_id="ecand", scores={"f1": [0.3, 0.5, 0.3]})
    said = (2, "", "error: --cluster needs a column name, got ''\n")
    assert invoke("compare", str(base), str(cand), "--cluster", "") == said
    assert invoke("check", str(cand), "--baseline", str(base), "--cluster", "") == said
    page = tmp_path / "page.html"
    assert invoke("report", str(base), str(cand), "--cluster", "", "-o", str(page)) == said
    assert not page.exists()


def test_comparing_a_run_with_itself_warns_in_one_line(
    two_runs: tuple[str, str], tmp_path: Path
) -> None:
    # The `baseline` tag moved onto the candidate: nothing can differ, and both say so.
    _, candidate_id = two_runs
    assert invoke("runs", "tag", candidate_id, "baseline")[0] == 0
    code, out, err = invoke("compare", "baseline", "perfect", "--json")
    assert code == 0 and json.loads(out)["candidates"][0]["metrics"]
    warning = (
        f"warning: 'perfect' is the base run itself ({candidate_id}): "
        "the comparison can show no change\n"
    )
    assert err == warning
    code, out, err = invoke("check", "perfect", "--baseline", "baseline", "--no-mlflow")
    assert code == 3 and "check: undecided" in out  # 20 rows; the warning changes no code
    assert err.splitlines()[0] == (
        f"warning: the baseline 'baseline' is the candidate run itself ({candidate_id}): "
        "no drop gate can find a change"
    )
    # A file exported from the same run is the same run too.
    exported = tmp_path / "perfect.jsonl"
    assert invoke("runs", "export", "perfect", str(exported))[0] == 0
    code, _, err = invoke("compare", str(exported), "perfect")
    assert code == 0 and err == warning


def test_counts_of_one_agree_with_their_noun_on_every_surface(tmp_path: Path) -> None:
    """A comparison of two one-row runs said '1 rows got worse' in the terminal and the
    Markdown, and '1 rows' in the HTML report's run lines, paired rows and status."""
    base = write_run(tmp_path / "base.jsonl", run_id="obase", scores={"f1": [0.9]})
    cand = write_run(tmp_path / "cand.jsonl", run_id="ocand", scores={"f1": [0.1]})
    surfaces = {}
    for name, args in {
        "terminal": ("compare",),
        "markdown": ("compare", "--markdown"),
        "html": ("report", "-o", "-"),
    }.items():
        code, surfaces[name], err = invoke(*args, str(base), str(cand))
        assert code == 0, (name, err)
    for name, text in surfaces.items():
        assert re.search(r"\b1(\*\*)? rows\b", text) is None, name
    assert "1 row got worse, 0 got better" in surfaces["terminal"]
    assert "**1** row got worse" in surfaces["markdown"]
    assert "1 row got worse" in surfaces["html"] and "finished, 1 row<" in surfaces["html"]


def test_a_drop_gate_on_one_row_says_one_paired_row_is_too_few(tmp_path: Path) -> None:
    """`harness check` of a one-row candidate (a CI smoke run, --limit 1) said '1 paired rows
    are too few to estimate a change' in the gate's reason, the JUnit file and ::error."""
    base = write_run(tmp_path / "base.jsonl", run_id="obase", scores={"f1": [0.9]})
    cand = write_run(tmp_path / "cand.jsonl", run_id="ocand", scores={"f1": [0.1]})
    code, out, _ = invoke("check", str(cand), "--baseline", str(base), "--max-drop", "f1=0.1",
                          "--json")  # fmt: skip
    assert code == 3
    assert json.loads(out)["gates"][0]["reason"] == ("1 paired row is too few to estimate a change")


def test_errors_counts_the_rows_whose_judge_call_failed(qa_file: Path, tmp_path: Path) -> None:
    """A candidate whose model failed on 11 rows of 20 and whose judge failed on 2 more:
    `harness run` and compare's own candidate line say '13 failed', and the `errors` row
    below it said 0.55 (11 of 20: only the model calls), as did each `--by` slice and the
    run's slices. `errors` is the share of failed rows everywhere; its interval (Wilson's)
    and test (exact McNemar) are statsmodels' and scipy's on those 13."""
    from scipy import stats as scipy_stats
    from statsmodels.stats.proportion import proportion_confint

    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    judged = (
        "run", "--data", "qa", "--judge", "answer_relevance", "--by", "final_decision",
        "--no-mlflow", "--json",
    )  # fmt: skip
    code, out, err = invoke(
        *judged, "--model", "python:harness_test_models:answer_expected",
        "--judge-model", "python:harness_test_models:judge_messages",
    )  # fmt: skip
    assert code == 0, err
    base = json.loads(out)["run_id"]
    rows = [json.loads(line) for line in qa_file.read_text(encoding="utf-8").splitlines()]
    answered = [r for r in rows if int(r["id"]) % 2]  # fail_while_flagged fails even ids
    flag = tmp_path / "flag"
    flag.touch()
    env = {
        "HARNESS_TEST_FLAG": str(flag),
        "HARNESS_TEST_JUDGE_FAIL_TEXT": "|".join(r["question"] for r in answered[:2]),
    }
    code, out, _ = invoke(
        *judged, "--model", "python:harness_test_models:fail_while_flagged",
        "--judge-model", "python:harness_test_models:judge_fails_on_text", env=env,
    )  # fmt: skip
    ran = json.loads(out)
    model_failed = len(rows) - len(answered)
    assert code == 1 and model_failed == 11 and ran["errors"] == 13
    assert sum(s["errors"] for s in ran["slices"][0]["slices"]) == 13
    assert ran["slices"][0]["overall"]["errors"] == 13

    code, out, err = invoke("compare", base, ran["run_id"], "--by", "final_decision", "--json")
    assert code == 0, err
    (cand,) = json.loads(out)["candidates"]
    (errors,) = [m for m in cand["metrics"] if m["metric"] == "errors"]
    assert errors["binary"] and errors["candidate"]["mean"] == 13 / 20
    low, high = proportion_confint(13, 20, alpha=0.05, method="wilson")
    assert [errors["candidate"]["low"], errors["candidate"]["high"]] == pytest.approx([low, high])
    assert errors["discordant"] == [0, 13] and errors["test"] == "exact McNemar"
    assert errors["p_value"] == pytest.approx(scipy_stats.binomtest(13, 13, 0.5).pvalue)
    by_value = {
        s["value"]: next(m for m in s["metrics"] if m["metric"] == "errors") for s in cand["slices"]
    }
    shown = {s["value"]: s for s in ran["slices"][0]["slices"]}
    assert set(by_value) == set(shown) == {"maybe", "no", "yes"}
    for value, metric in by_value.items():
        assert metric["candidate"]["mean"] * metric["n"] == pytest.approx(shown[value]["errors"])
    code, out, _ = invoke("compare", base, ran["run_id"])
    assert "20 rows, 13 failed" in out
    assert re.search(r"errors ↓\s+│ 20\s+│ 0 \[0, 0\.161\]\s+│ 0\.65 \[0\.433, 0\.819\]", out), out


def test_a_row_whose_judge_failed_says_why_among_the_flipped_rows(
    qa_file: Path, tmp_path: Path
) -> None:
    """A row that flipped on `errors` because the candidate's judge failed showed the
    change ("errors 0 → 1") and the base's rationale, and nothing of the candidate's
    failure (a failed model call shows "[failed] ERROR" as its output). The judge's error
    now shows in its place, in the terminal, --markdown and --json (`judge_errors`). A judge
    that failed on every row of both runs made compare print numpy's "All-NaN slice
    encountered"."""
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    judged = ("run", "--data", "qa", "--judge", "answer_relevance", "--no-mlflow", "--json",
              "--model", "python:harness_test_models:answer_expected")  # fmt: skip
    code, out, err = invoke(*judged, "--judge-model", "python:harness_test_models:judge_messages")
    assert code == 0, err
    base = json.loads(out)["run_id"]
    rows = [json.loads(line) for line in qa_file.read_text(encoding="utf-8").splitlines()]
    failing = "judge_fails_on_text"
    some = {"HARNESS_TEST_JUDGE_FAIL_TEXT": "|".join(r["question"] for r in rows[:2])}
    every = {"HARNESS_TEST_JUDGE_FAIL_TEXT": "|".join(r["question"] for r in rows)}
    candidates = []
    for env in (some, every, every):
        code, out, _ = invoke(
            *judged, "--judge-model", f"python:harness_test_models:{failing}", env=env
        )
        assert code == 1
        candidates.append(json.loads(out)["run_id"])
    said = "[failed] judge call failed: python:harness_test_models:judge_fails_on_text raised "
    said += "RuntimeError: judge backend exploded"

    code, out, err = invoke("compare", base, candidates[0], "--json")
    assert code == 0, err
    (cand,) = json.loads(out)["candidates"]
    flipped = cand["flipped"]["regressed_rows"]
    assert sorted(r["example_id"] for r in flipped) == sorted(str(r["id"]) for r in rows[:2])
    for row in flipped:
        assert row["judge_errors"]["answer_relevance"]["base"] is None
        assert f"[failed] {row['judge_errors']['answer_relevance']['candidate']}" == said
        assert row["rationales"]["answer_relevance"]["base"]  # the base's own, still there
    code, out, err = invoke("compare", base, candidates[0], "--rows", "2")
    assert code == 0, err
    assert out.count(f"answer_relevance (candidate): {said}") == 2, out
    code, out, err = invoke("compare", base, candidates[0], "--markdown")
    assert code == 0, err
    assert out.count(f"| answer_relevance (candidate) | {said} |") == 2, out

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's warnings among them
        code, out, err = invoke("compare", candidates[1], candidates[2])  # no judge score at all
    assert code == 0, err
    assert "All-NaN" not in err
