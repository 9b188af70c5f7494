"""`harness check` through the CLI: every exit code, JUnit XML read back with the standard
library, the GitHub step summary and annotations, gates from harness.toml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run

from harness.cli import cli

N = 400


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, str]:
    """A baseline and candidates whose differences are known, as run files."""
    rng = np.random.default_rng(3)
    correct = (rng.random(N) < 0.6).astype(float)
    f1 = rng.beta(2, 3, N)
    judge = rng.integers(3, 6, N).astype(float)
    same = {"exact_match": correct, "token_f1": f1, "faithfulness": judge}
    broken = correct.copy()
    broken[rng.choice(np.flatnonzero(correct), 60, replace=False)] = 0  # 15 points lost
    failing = rng.random(N) < 0.10
    files = {
        "base": write_run(tmp_path / "base.jsonl", run_id="base", scores=same,
                          judges=["faithfulness"]),
        "same": write_run(tmp_path / "same.jsonl", run_id="same", scores=same,
                          judges=["faithfulness"]),
        "worse": write_run(tmp_path / "worse.jsonl", run_id="worse",
                           scores={**same, "exact_match": broken}, judges=["faithfulness"]),
        "failing": write_run(tmp_path / "failing.jsonl", run_id="failing", scores=same,
                             errors=list(failing), judges=["faithfulness"]),
        "small": write_run(tmp_path / "small.jsonl", run_id="small",
                           scores={k: v[:30] for k, v in same.items()}, ids=[f"q{i}" for i in
                           range(30)], judges=["faithfulness"]),
    }  # fmt: skip
    return {name: str(path) for name, path in files.items()}


def test_exit_codes_for_each_outcome(runs: dict[str, str], home: Path) -> None:
    gate = ("--max-drop", "exact_match=0.02", "--baseline", runs["base"])
    code, out, _ = invoke("check", runs["same"], *gate)
    assert code == 0 and out.splitlines()[-1] == "check: pass (the 1 gate passed)"
    code, out, err = invoke("check", runs["worse"], *gate)
    assert code == 1 and "check: fail" in out
    assert err.splitlines()[-1] == "error: 1 of 1 gates failed: exact_match max_drop 0.02"
    code, _, err = invoke("check", runs["small"], "--max-drop", "exact_match=0.02", "--baseline",
                          runs["base"])  # fmt: skip
    assert code == 3 and "cannot decide 1 of 1 gates" in err
    code, _, err = invoke("check", runs["same"], "--max-drop", "exact_match=0.02")
    assert code == 3 and "no baseline" in err  # a drop gate with nothing to compare with
    code, _, err = invoke("check", runs["same"], "--max-drop", "rouge9=0.02", "--baseline",
                          runs["base"])  # fmt: skip
    assert code == 2 and "the candidate has no 'rouge9' scores" in err
    code, _, err = invoke("check", runs["same"], "--min", "exact_match")
    assert code == 2 and err == "error: --min expects METRIC=VALUE, got 'exact_match'\n"


def test_a_bound_no_run_can_meet_is_refused(runs: dict[str, str]) -> None:
    """Before: --min exact_match=1.5 (a typo for 0.5; exact match scores 0 or 1) was a gate
    that failed, exit 1, as if the run were at fault. Now it is bad input, exit 2."""
    for option, value in [("--min", "exact_match=1.5"), ("--min", "token_f1=1.01"),
                          ("--max", "exact_match=-0.1")]:  # fmt: skip
        code, out, err = invoke("check", runs["same"], option, value)
        assert code == 2 and out == "", (option, value, err)
        metric = value.partition("=")[0]
        assert err == (
            f"error: gate {metric} {option[2:]} {float(value.partition('=')[2]):.4g}: {metric} "
            f"scores from 0 to 1, so no run can pass it; give a {option[2:]} within that range\n"
        )
    code, _, _ = invoke("check", runs["same"], "--min", "exact_match=1")  # reachable: a gate
    assert code == 1


def test_failed_rows_cannot_decide_unless_an_error_gate_fails(
    runs: dict[str, str], tmp_path: Path
) -> None:
    args = ("check", runs["failing"], "--baseline", runs["base"], "--json")
    code, out, _ = invoke(*args, "--max-drop", "token_f1=0.05")
    gate = json.loads(out)["gates"][0]
    assert code == 3 and gate["outcome"] == "undecided"
    failed = int(gate["reason"].split(" of ")[0])
    assert gate["reason"].startswith(
        f"{failed} of {N} rows have no token_f1 score in the candidate"
    )
    # The reason says which run lacks the scores: here the baseline, then each of them.
    code, out, _ = invoke("check", runs["same"], "--baseline", runs["failing"], "--json",
                          "--max-drop", "token_f1=0.05")  # fmt: skip
    reason = json.loads(out)["gates"][0]["reason"]
    assert reason.startswith(f"{failed} of {N} rows have no token_f1 score in the baseline (")
    other = write_run(tmp_path / "other.jsonl", run_id="other", scores={"token_f1": [0.5] * N},
                      errors=[i < 30 for i in range(N)])  # fmt: skip
    code, out, _ = invoke("check", str(other), "--baseline", runs["failing"], "--json",
                          "--max-drop", "token_f1=0.05")  # fmt: skip
    reason = json.loads(out)["gates"][0]["reason"]
    assert " rows have no token_f1 score in one run or both " in reason
    assert f"({failed} in the baseline, 30 in the candidate)" in reason
    assert invoke(*args, "--max-drop", "token_f1=0.05", "--max-missing", "0.2")[0] == 0
    code, out, _ = invoke(*args, "--max-drop", "token_f1=0.05", "--max-error-rate", "0.05")
    outcomes = [g["outcome"] for g in json.loads(out)["gates"]]
    assert code == 1 and outcomes == ["undecided", "fail"]  # a failure beats "cannot tell"


def test_the_terminal_shows_a_reason_as_written(runs: dict[str, str]) -> None:
    # A reason's "[check]" once went to rich as markup and vanished from the table.
    code, out, _ = invoke("check", runs["same"], "--max-drop", "exact_match=0.02")
    row = next(line for line in out.splitlines() if line.startswith("exact_match max_drop"))
    assert code == 3 and row.rstrip().endswith("give --baseline RUN|FILE or [check] baseline")


def test_a_drop_gate_on_a_metric_the_baseline_lacks_says_what_to_do(tmp_path: Path) -> None:
    # A judge added since the baseline was recorded: nothing to compare with, and the way on.
    base = write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": [1.0] * 40})
    candidate = write_run(tmp_path / "cand.jsonl", run_id="cand", judges=["relevance"],
                          scores={"exact_match": [1.0] * 40, "relevance": [0.9] * 40})  # fmt: skip
    code, out, _ = invoke("check", str(candidate), "--baseline", str(base), "--json",
                          "--max-drop", "relevance=0.05")  # fmt: skip
    gate = json.loads(out)["gates"][0]
    assert (code, gate["outcome"]) == (3, "undecided")
    assert gate["reason"] == (
        "the baseline has no 'relevance' scores to compare with: record the baseline again "
        "with relevance (its model calls come from the cache), or bound relevance with "
        "--min or a [check] min until then"
    )


def test_junit_xml_reads_back_with_the_standard_library(
    runs: dict[str, str], tmp_path: Path
) -> None:
    junit = tmp_path / "out" / "check.xml"
    junit.parent.mkdir()
    code, _, _ = invoke(
        "check", runs["worse"], "--baseline", runs["base"], "--junit", str(junit),
        "--max-drop", "exact_match=0.02", "--max-drop", "faithfulness=5%",
        "--min", "token_f1=0.9", "--max-error-rate", "0.01",
    )  # fmt: skip
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "0")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == [  # in the run's order of metrics
        "exact_match max_drop 0.02", "token_f1 min 0.9", "faithfulness max_drop_pct 5%",
        "errors max_rate 0.01",
    ]  # fmt: skip
    failure = cases["exact_match max_drop 0.02"].find("failure")
    assert failure is not None and failure.get("type") == "worse"
    assert failure.get("message", "").startswith("worse: the change is -0.15")
    assert cases["token_f1 min 0.9"].find("failure") is not None
    assert "not worse" in (cases["faithfulness max_drop_pct 5%"].findtext("system-out") or "")
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["outcome"] == "fail" and properties["baseline"].startswith("base ")


def test_a_junit_file_that_cannot_be_written_is_refused_before_the_check(
    runs: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "check.xml"
    code, out, err = invoke(
        "check", runs["worse"], "--baseline", runs["base"], "--max-drop", "exact_match=0.02",
        "--junit", str(missing), "--json",
    )  # fmt: skip
    assert (code, out) == (2, "")  # no verdict printed, then refused
    assert err == f"error: cannot write {missing}: {missing.parent} does not exist\n"


def test_a_junit_file_reads_back_whatever_the_run_is_named(tmp_path: Path) -> None:
    """A run named with a control character (\\x01, a vertical tab) was written into the
    suite's name as it is, which XML 1.0 has no form for: every JUnit reader refused the
    whole file. The character is written as its escape."""
    scores = {"exact_match": [1.0, 0.0] * 20}
    base = write_run(tmp_path / "b.jsonl", run_id="b", scores=scores)
    candidate = write_run(tmp_path / "c.jsonl", run_id="c", scores=scores,
                          run_name="nightly\x01\x0b\x1f")  # fmt: skip
    junit = tmp_path / "check.xml"
    code, _, _ = invoke("check", str(candidate), "--baseline", str(base), "--max-drop",
                        "exact_match=0.5", "--junit", str(junit))  # fmt: skip
    assert code == 0
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name", "").startswith("harness check: nightly\\x01\\x0b\\x1f (")


def test_cannot_decide_is_a_junit_error_and_an_error_annotation(
    runs: dict[str, str], tmp_path: Path
) -> None:
    junit, summary = tmp_path / "check.xml", tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    code, out, err = invoke(
        "check", runs["small"], "--baseline", runs["base"], "--max-drop", "exact_match=0.02",
        "--junit", str(junit), "--json", env=env,
    )  # fmt: skip
    assert code == 3
    doc = json.loads(out)  # stdout is the JSON document alone; annotations went to stderr
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "undecided"
    assert error.get("message") == doc["gates"][0]["reason"]
    annotation = next(line for line in err.splitlines() if line.startswith("::error "))
    assert annotation.startswith(
        "::error title=harness check%3A exact_match max_drop 0.02%3A cannot tell::cannot tell "
        "with 30 rows"
    )
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### ⚠️ harness check: undecided")  # appended
    assert "| ⚠️ exact_match max_drop 0.02 | cannot tell |" in text


def test_an_unwritable_step_summary_is_a_warning_and_the_verdict_stands(
    runs: dict[str, str], tmp_path: Path
) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "nowhere" / "summary.md")}
    gate = ("--baseline", runs["base"], "--max-drop", "exact_match=0.02")
    for candidate, exit_code in (("same", 0), ("worse", 1), ("small", 3)):
        code, out, err = invoke("check", runs[candidate], *gate, env=env)
        assert code == exit_code, err
        warning = [line for line in err.splitlines() if line.startswith("warning:")]
        assert warning == [
            f"warning: cannot append to $GITHUB_STEP_SUMMARY {env['GITHUB_STEP_SUMMARY']}: "
            "No such file or directory"
        ]
        assert "Traceback" not in err and "check: " in out
    code, out, err = invoke("compare", runs["base"], runs["worse"], env=env)
    assert code == 0 and "exact_match" in out
    assert err.startswith("warning: cannot append to $GITHUB_STEP_SUMMARY")


def test_no_annotations_outside_github_actions(runs: dict[str, str]) -> None:
    code, _, err = invoke("check", runs["worse"], "--baseline", runs["base"], "--max-drop",
                          "exact_match=0.02")  # fmt: skip
    assert code == 1 and "::error" not in err


def test_an_empty_baseline_option_is_refused(runs: dict[str, str], home: Path) -> None:
    """`--baseline "$BASE"` with BASE unset dropped the baseline harness.toml names: the
    check said "cannot decide: no baseline and no gates" (exit 3), or with gates of its
    own checked none of the drops the baseline was there for."""
    Path(runs["base"]).replace(home / "baseline.jsonl")
    (home / "harness.toml").write_text(
        '[check]\nbaseline = "baseline.jsonl"\nexact_match = { max_drop = 0.02 }\n',
        encoding="utf-8",
    )
    for extra in ([], ["--min", "exact_match=0.1"]):
        code, out, err = invoke("check", runs["worse"], "--baseline", "", *extra)
        assert (code, out) == (2, "")
        assert err == "error: --baseline needs a run, tag or file name, got ''\n"


def test_gates_and_baseline_from_harness_toml(runs: dict[str, str], home: Path) -> None:
    Path(runs["base"]).replace(home / "baseline.jsonl")
    (home / "harness.toml").write_text(
        '[check]\nbaseline = "baseline.jsonl"\nmax_missing = 0.01\n'
        "exact_match = { min = 0.30, max_drop = 0.02 }\n"
        "faithfulness = { max_drop_pct = 5 }\nerrors = { max_rate = 0.01 }\n",
        encoding="utf-8",
    )
    code, out, err = invoke("check", runs["worse"], "--json")
    doc = json.loads(out)
    assert code == 1, err
    assert doc["baseline"]["run_id"] == "base"
    assert [(g["gate"], g["outcome"], g["origin"]) for g in doc["gates"]] == [
        ("exact_match min 0.3", "pass", "harness.toml"),
        ("exact_match max_drop 0.02", "fail", "harness.toml"),
        ("faithfulness max_drop_pct 5%", "pass", "harness.toml"),
        ("errors max_rate 0.01", "pass", "harness.toml"),
    ]
    # A flag replaces the table's rule of the same metric and kind.
    code, out, _ = invoke("check", runs["worse"], "--json", "--max-drop", "exact_match=0.2")
    assert code == 0 and json.loads(out)["gates"][1]["gate"] == "exact_match max_drop 0.2"
    # A drop in percent is of the same kind: before, it collided with the table's max_drop
    # ("give max_drop or max_drop_pct, not both", exit 2).
    code, out, err = invoke("check", runs["worse"], "--json", "--max-drop", "exact_match=50%")
    assert code == 0, err
    assert [g["gate"] for g in json.loads(out)["gates"]][:2] == [
        "exact_match min 0.3",
        "exact_match max_drop_pct 50%",
    ]
    code, _, err = invoke(
        "check", runs["worse"], "--max-drop", "exact_match=0.2", "--max-drop", "exact_match=5%"
    )
    assert (
        code == 2 and err == "error: gate 'exact_match': give max_drop or max_drop_pct, not both\n"
    )


@pytest.mark.parametrize(
    "table,message",
    [
        (
            "exact_match = { most = 1 }",
            "harness.toml: [check] gate exact_match: unknown rule 'most'",
        ),
        (
            "exact_match = { min = 'high' }",
            "harness.toml: [check] exact_match.min: expected a number, got 'high'",
        ),
        (
            "exact_match = { max_drop = 'a' }",
            "harness.toml: [check] exact_match.max_drop: expected a number, got 'a'",
        ),
        # A quoted number was read as one while a quoted percent ('5%') was refused: every
        # gate value is a TOML number now, as docs/ci.md writes them.
        (
            "exact_match = { max_drop = '0.02' }",
            "harness.toml: [check] exact_match.max_drop: expected a number, got the string "
            "'0.02' (write it without quotes)",
        ),
        (
            "faithfulness = { max_drop_pct = '5%' }",
            "harness.toml: [check] faithfulness.max_drop_pct: expected a number, got the string "
            "'5%' (write the percent as a number: max_drop_pct = 5)",
        ),
        (
            "errors = { max_rate = '0.01' }",
            "harness.toml: [check] errors.max_rate: expected a number, got the string '0.01' "
            "(write it without quotes)",
        ),
        (
            "max_missing = '0.05'",
            "harness.toml: [check] max_missing: expected a number, got the string '0.05' "
            "(write it without quotes)",
        ),
        (
            "exact_match = { max_drop = -1 }",
            "harness.toml: [check] gate exact_match max_drop -1: an allowed drop cannot be "
            "negative",
        ),
        (
            "errors = { max_rate = 2 }",
            "harness.toml: [check] gate errors: max_rate is a share between 0 and 1, not 2",
        ),
        ("errors = { min = 0 }", "harness.toml: [check] gate errors: the rule is max_rate"),
        ("treshold = 3", "harness.toml: unknown [check] setting 'treshold'"),
        (
            "x = { max_drop = 1, max_drop_pct = 2 }",
            "harness.toml: [check] gate 'x': give max_drop or max_drop_pct, not both",
        ),
        # Not ignored (the check would run without clusters), nor said as a flag's mistake.
        (
            "cluster = ['context']",
            "harness.toml: [check] cluster must be a dataset column's name, got ['context']",
        ),
        ("cluster = ''", "harness.toml: [check] cluster must be a dataset column's name, got ''"),
        ("max_missing = 2", "harness.toml: [check] max_missing must be between 0 and 1, got 2"),
        # Before, these two said "error: gate rouge9 min 0.3: ..." as if of a flag.
        (
            "rouge9 = { min = 0.3 }",
            "harness.toml: [check] gate rouge9 min 0.3: the candidate has no 'rouge9' scores",
        ),
        (
            "exact_match = { min = 1.5 }",
            "harness.toml: [check] gate exact_match min 1.5: exact_match scores from 0 to 1",
        ),
    ],
)
def test_bad_check_tables_are_exit_2(
    table: str, message: str, runs: dict[str, str], home: Path
) -> None:
    (home / "harness.toml").write_text(f"[check]\n{table}\n", encoding="utf-8")
    code, out, err = invoke("check", runs["same"], "--baseline", runs["base"])
    # One line that names the file (its full path), as every [check] mistake does.
    assert (code, out) == (2, "") and err.startswith(f"error: {home.resolve()}/{message}"), err
    assert err.count("\n") == 1


def test_a_check_baseline_that_is_not_there_names_harness_toml(
    runs: dict[str, str], home: Path
) -> None:
    """Before: "error: no such run file: HOME/nope.jsonl", not saying the name came from
    harness.toml's [check] baseline; a flag's baseline is said as before."""
    where = f"{home.resolve()}/harness.toml: [check] baseline"
    (home / "harness.toml").write_text('[check]\nbaseline = "nope.jsonl"\n', encoding="utf-8")
    code, out, err = invoke("check", runs["same"])
    assert (code, out) == (2, "")
    assert err == f"error: {where}: no such run file: {home / 'nope.jsonl'}\n"
    (home / "harness.toml").write_text('[check]\nbaseline = "nosuchtag"\n', encoding="utf-8")
    code, out, err = invoke("check", runs["same"])
    assert (code, out) == (2, "") and err.startswith(
        f"error: {where}: no run, tag or run name 'nosuchtag'"
    )
    code, _, err = invoke("check", runs["same"], "--baseline", "other.jsonl")
    assert code == 2 and err == "error: no such run file: other.jsonl\n"


def test_default_gates_check_every_metric_with_a_direction(runs: dict[str, str]) -> None:
    code, out, _ = invoke("check", runs["same"], "--baseline", runs["base"], "--json")
    doc = json.loads(out)
    assert code == 0
    assert [g["gate"][: g["gate"].rindex(" ")] for g in doc["gates"]] == [
        "exact_match max_drop",
        "token_f1 max_drop",
        "faithfulness max_drop",
    ]
    assert all(g["origin"] == "default" and g["finding"] == "not worse" for g in doc["gates"])
    # compare's default margins: 0.02 for scores in [0, 1], else 5% of the base mean.
    judge = doc["comparison"]["candidates"][0]["metrics"][2]
    assert [g["threshold"] for g in doc["gates"]] == pytest.approx(
        [0.02, 0.02, 0.05 * judge["base"]["mean"]]
    )


def test_clusters_of_one_row_decide_0_1_gates_as_without_clusters(tmp_path: Path) -> None:
    # 5 of 1,000 rows improve: the exact test says p = 0.06, so a max drop of 0 cannot be
    # told; clustering on a column unique per row once made it the plain Wald interval.
    base = np.zeros(1000)
    candidate = base.copy()
    candidate[:5] = 1
    extra = [{"qid": f"x{i}"} for i in range(1000)]
    files = [
        str(write_run(tmp_path / f"{name}.jsonl", run_id=name, scores={"exact_match": s},
                      extra=extra))
        for name, s in (("b", base), ("c", candidate))
    ]  # fmt: skip
    gate = ("check", files[1], "--baseline", files[0], "--max-drop", "exact_match=0")
    assert invoke(*gate)[0] == 3
    code, out, _ = invoke(*gate, "--cluster", "qid")
    assert code == 3 and "cannot tell" in out
    # Three unchanged rows are not evidence of "not worse" either way.
    tiny = [str(write_run(tmp_path / f"t{name}.jsonl", run_id=f"t{name}",
                          scores={"exact_match": [1.0, 0.0, 1.0]}, extra=extra[:3],
                          ids=["q0", "q1", "q2"]))
            for name in "bc"]  # fmt: skip
    tiny_gate = ("check", tiny[1], "--baseline", tiny[0], "--max-drop", "exact_match=0.1")
    assert invoke(*tiny_gate)[0] == invoke(*tiny_gate, "--cluster", "qid")[0] == 3


def test_the_error_rate_gate_counts_rows_whose_judge_call_failed(
    qa_file: Path, tmp_path: Path
) -> None:
    """A candidate whose judge calls failed on every row (its model calls all answered) is
    '20 rows, 20 failed' to `harness run` and on the check's candidate line, and its errors
    gate said '0 of 20 rows failed (0.0%); at most 0.0% allowed' below it: `harness check
    CAND --max-error-rate 0` passed, exit 0. The gate counts every failed row, as documented
    ('at most this share of the candidate's rows failed')."""
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    judged = (
        "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
        "--judge", "answer_relevance", "--no-mlflow", "--json",
    )  # fmt: skip
    code, out, err = invoke(*judged, "--judge-model", "python:harness_test_models:judge_messages")
    assert code == 0, err
    base = json.loads(out)["run_id"]
    flag = tmp_path / "flag"
    flag.touch()
    code, out, _ = invoke(
        *judged, "--judge-model", "python:harness_test_models:judge_fails_while_flagged",
        env={"HARNESS_TEST_FLAG": str(flag)},
    )  # fmt: skip
    assert code == 1 and json.loads(out)["errors"] == 20
    cand = json.loads(out)["run_id"]

    code, out, err = invoke("check", cand, "--baseline", base, "--max-error-rate", "0")
    assert code == 1, out + err
    assert "20 rows, 20 failed" in out
    assert err.splitlines()[-1] == "error: 1 of 1 gates failed: errors max_rate 0"
    code, out, _ = invoke("check", cand, "--baseline", base, "--max-error-rate", "1", "--json")
    assert code == 0
    (gate,) = json.loads(out)["gates"]
    assert (gate["outcome"], gate["observed"]) == ("pass", 1)
    assert gate["reason"] == (
        "20 of 20 rows failed (100.0%; 20 of them by a judge call only); at most 100.0% allowed"
    )


def test_a_drop_gate_counts_the_rows_a_stopped_run_did_not_reach(tmp_path: Path) -> None:
    """A candidate stopped after 30 of its 40 rows (a CI job's timeout, --max-cost) passed
    `--max-drop f1=0.05` on the 30 rows it had ('not worse'), while `--min f1=...` on the
    same run could not decide ('10 of 40 rows have no f1 score (... or rows the run did not
    reach)'), as docs/ci.md says a gate does: the missing rows could be the bad ones. The
    drop gate now counts them too, in either run."""
    rng = np.random.default_rng(5)
    f1 = rng.beta(2, 3, 40)
    base = write_run(tmp_path / "base.jsonl", run_id="full", scores={"f1": f1})
    stopped = write_run(tmp_path / "stopped.jsonl", run_id="stopped", scores={"f1": f1[:30]},
                        status="stopped", rows_total=40)  # fmt: skip
    reason = (
        "10 of 40 rows have no f1 score in the {} (failed rows or judge calls, or rows the "
        "run did not reach): more than the 5% a gate may miss"
    )
    code, out, _ = invoke("check", str(stopped), "--baseline", str(base), "--max-drop",
                          "f1=0.05", "--json")  # fmt: skip
    assert code == 3
    (gate,) = json.loads(out)["gates"]
    assert (gate["outcome"], gate["reason"]) == ("undecided", reason.format("candidate"))
    code, out, _ = invoke("check", str(base), "--baseline", str(stopped), "--max-drop",
                          "f1=0.05", "--json")  # fmt: skip
    assert code == 3
    assert json.loads(out)["gates"][0]["reason"] == reason.format("baseline")
    # Allowing a quarter of the rows to be missing decides on the 30 rows both have.
    code, out, _ = invoke("check", str(stopped), "--baseline", str(base), "--max-drop",
                          "f1=0.05", "--max-missing", "0.25", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["gates"][0]["finding"] == "not worse"


def test_a_metric_with_no_paired_scores_gets_a_default_gate_named_by_a_number(
    tmp_path: Path,
) -> None:
    """A candidate whose judge failed on every row, checked with no gates configured, got a
    default gate named 'judge max_drop nan' (in the table, JUnit and ::error titles), and
    compare's legend read 'margin that matters: ..., judge –': the default margin was taken
    from the paired rows, of which there were none. It comes from the base's scores then:
    0.02 for 0/1 scores, 5% of the base mean on a 1-5 scale."""
    rng = np.random.default_rng(7)
    yes = (rng.random(20) < 0.7).astype(float)
    scale = rng.integers(1, 6, 20).astype(float)
    judges = ["yes", "scale"]
    base = write_run(tmp_path / "base.jsonl", run_id="judged", judges=judges,
                     scores={"yes": yes, "scale": scale}, binary=["yes"])  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="unjudged", judges=judges,
                     scores={"yes": [None] * 20, "scale": [None] * 20}, binary=["yes"])  # fmt: skip
    code, out, _ = invoke("check", str(cand), "--baseline", str(base), "--json")
    assert code == 3
    gates = {g["gate"]: g["outcome"] for g in json.loads(out)["gates"]}
    assert gates == {
        "yes max_drop 0.02": "undecided",
        f"scale max_drop {scale.mean() * 0.05:g}": "undecided",
    }
    code, out, _ = invoke("compare", str(base), str(cand))
    assert code == 0
    # Every row failed (its judge calls did): `errors` is compared too.
    legend = f"margin that matters: yes 0.02, scale {scale.mean() * 0.05:.3g}, errors 0.02;"
    assert legend in " ".join(out.split())


def test_a_dataset_version_change_is_a_note_and_warning_of_the_check(tmp_path: Path) -> None:
    """A candidate run on v2 of the eval set checked against a baseline on v1: the terminal
    and --markdown said DATASET VERSIONS DIFFER (the comparison's note), but check's own
    `notes` in --json, its JUnit file and GitHub's workflow commands did not, where a
    metric defined differently gets a note property and a ::warning. They say it now,
    with the same verdict and exit code, and the terminal and markdown say it once."""
    rng = np.random.default_rng(3)
    em = (rng.random(30) < 0.6).astype(float)
    base = write_run(tmp_path / "base.jsonl", run_id="onv1", scores={"exact_match": em},
                     binary=["exact_match"])  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="onv2", scores={"exact_match": em},
                     binary=["exact_match"], version="v2")  # fmt: skip
    note = (
        "DATASET VERSIONS DIFFER: base synthetic@v1 (30 rows), candidate synthetic@v2 "
        "(30 rows); paired on the 30 example ids both have. Rows with the same id may not be "
        "the same question: check the flipped rows' inputs"
    )
    gate = ("check", str(cand), "--baseline", str(base), "--max-drop", "exact_match=0.1")
    code, out, _ = invoke(*gate, "--json")
    assert code == 0
    doc = json.loads(out)
    assert note in doc["notes"] and note in doc["comparison"]["candidates"][0]["notes"]
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    code, out, err = invoke(*gate, "--junit", str(junit), env=env)
    assert code == 0
    assert " ".join(out.split()).count(note) == 1
    assert summary.read_text(encoding="utf-8").count(note) == 1
    warning = "::warning title=harness check%3A the runs' dataset versions differ::" + note
    assert warning in err.splitlines()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert [p.get("value") for p in suite.iter("property") if p.get("name") == "note"] == [note]


def test_rows_neither_stopped_run_reached_count_once(tmp_path: Path) -> None:
    """A baseline and a candidate of a 40-row eval set, both stopped after the same 30 rows,
    had a drop gate say '20 of 50 rows have no f1 score': the 10 rows neither reached were
    counted once per run, over more rows than the set has. They count once: 10 of 40."""
    f1 = np.random.default_rng(5).beta(2, 3, 40)[:30]
    runs = [write_run(tmp_path / f"{name}.jsonl", run_id=name, scores={"f1": f1},
                      status="stopped", rows_total=40) for name in ("base", "cand")]  # fmt: skip
    code, out, _ = invoke("check", str(runs[1]), "--baseline", str(runs[0]), "--max-drop",
                          "f1=0.05", "--json")  # fmt: skip
    assert code == 3
    assert json.loads(out)["gates"][0]["reason"] == (
        "10 of 40 rows have no f1 score in one run or both (10 in the baseline, 10 in the "
        "candidate) (failed rows or judge calls, or rows the run did not reach): more than "
        "the 5% a gate may miss"
    )
