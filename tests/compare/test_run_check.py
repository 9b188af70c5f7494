"""`harness run ... --check`: run, then check, with one exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

MODEL = ("--model", "python:harness.baselines:context_overlap", "--metric", "token_f1")


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path) -> None:
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0


def test_run_check_passes_then_fails_against_a_tagged_baseline(qa: None) -> None:
    code, out, _ = invoke("run", "--data", "qa", *MODEL, "--no-mlflow", "--json")
    invoke("runs", "tag", json.loads(out)["run_id"], "baseline")
    code, out, err = invoke(
        "run", "--data", "qa", *MODEL, "--no-mlflow", "--check", "--baseline", "baseline",
        "--max-drop", "token_f1=0.01", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)  # one document: the run and its check
    assert set(doc) == {"run", "check"} and doc["check"]["outcome"] == "pass"
    assert doc["check"]["candidate"]["run_id"] == doc["run"]["run_id"]
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness.baselines:top_sentence",
        "--metric", "token_f1", "--no-mlflow", "--check", "--baseline", "baseline",
        "--max-drop", "token_f1=0.001",
    )  # fmt: skip
    # One sentence instead of two loses token F1 on these 20 rows beyond doubt.
    assert code == 1 and "token_f1 max_drop 0.001" in out and "│ worse" in out
    assert err == "error: 1 of 1 gates failed: token_f1 max_drop 0.001\n"


def test_a_replay_miss_cannot_decide(qa: None, tmp_path: Path) -> None:
    junit, report = tmp_path / "junit.xml", tmp_path / "check.html"
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--cache", "replay",
        "--no-mlflow", "--check", "--junit", str(junit), "--report", str(report),
    )  # fmt: skip
    assert code == 3
    assert "cannot decide: replay miss: --cache replay: the model call for row" in err
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("message", "").startswith("replay miss")
    # The report says so too: the check's banner, and no run to show.
    assert f"report: {report}" in err
    html = report.read_text(encoding="utf-8")
    assert '<div class="banner undecided">Cannot decide: replay miss: --cache replay: ' in html
    assert '<div class="card"' not in html and '<div class="metric"' not in html
    assert "<script" not in html  # no rows for a script to unpack


def test_failed_rows_exit_1_even_when_the_gates_pass(qa: None, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", "token_f1", "--no-mlflow", "--check", "--min", "token_f1=0",
        "--max-missing", "0.9", env={"HARNESS_TEST_FLAG": str(flag)},
    )  # fmt: skip
    assert code == 1
    assert "check: pass" in out
    assert err.strip().endswith("rows of the run failed")


@pytest.mark.parametrize(
    "args,message",
    [
        (("--check", "--dry-run"), "--check checks one run, not --dry-run"),
        (("--max-drop", "token_f1=0.1"), "gate options (--baseline, --min, --max-drop, ...) need"),
        (("--check", "--param", "seed=1", "--param", "seed=2"), "not a sweep"),
    ],
)
def test_check_option_mistakes_are_exit_2(qa: None, args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke("run", "--data", "qa", *MODEL, "--no-mlflow", *args)
    assert code == 2 and out == "" and message in err


@pytest.mark.parametrize(
    "toml,args,message",
    [
        (
            '[check]\ntoken_f1 = { min = "high" }\n',
            (),
            "harness.toml: [check] token_f1.min: expected a number, got 'high'",
        ),
        ("", ("--min", "token_f1=high"), "--min token_f1=high: expected a number, got 'high'"),
        (
            "[check]\nerrors = { max_rate = 2 }\n",
            (),
            "harness.toml: [check] gate errors: max_rate is a share between 0 and 1, not 2",
        ),
    ],
)
def test_a_bad_gate_is_exit_2_before_the_run(
    qa: None, home: Path, toml: str, args: tuple[str, ...], message: str
) -> None:
    # It was found by the check after the run: the rows were paid for and stored, then exit 2.
    (home / "harness.toml").write_text(toml)
    code, out, err = invoke("run", "--data", "qa", *MODEL, "--no-mlflow", "--check", *args)
    where = f"{home.resolve()}/" if message.startswith("harness.toml") else ""
    assert (code, out, err) == (2, "", f"error: {where}{message}\n")
    code, out, _ = invoke("runs", "list", "--json")
    assert code == 0 and json.loads(out) == []


def test_a_baseline_that_is_not_there_is_exit_2_before_the_run(qa: None, home: Path) -> None:
    # It was found by the check after the run: the rows were paid for and stored, then exit 2.
    (home / "harness.toml").write_text('[check]\nbaseline = "nope.jsonl"\n')
    code, out, err = invoke("run", "--data", "qa", *MODEL, "--no-mlflow", "--check")
    where = f"{home.resolve()}/harness.toml: [check] baseline"
    assert (code, out, err) == (2, "", f"error: {where}: no such run file: {home / 'nope.jsonl'}\n")
    (home / "harness.toml").write_text("")
    code, out, err = invoke(
        "run", "--data", "qa", *MODEL, "--no-mlflow", "--check", "--baseline", "nosuchtag"
    )
    assert (code, out) == (2, "") and err.startswith("error: no run, tag or run name 'nosuchtag'")
    code, out, _ = invoke("runs", "list", "--json")
    assert code == 0 and json.loads(out) == []
