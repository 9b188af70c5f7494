"""Issue 18, a newcomer's first hour: each point the issue lists, as a user meets it."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harness.cli import cli

REPO = Path(__file__).resolve().parents[2]
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def qa_csv(tmp_path: Path) -> Path:
    path = tmp_path / "qa.csv"
    path.write_text("Question;Answer\nWhat is 2+2?;4\nCapital of France?;Paris\n", "utf-8")
    return path


# 1. hints that run as printed ------------------------------------------------------------


def test_hints_name_the_harness_that_ran_when_it_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.cli.output import invocation

    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    program = venv_bin / "harness"
    program.write_text("#!/bin/sh\n", "utf-8")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(program), "run"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert invocation() == os.path.join(".venv", "bin", "harness")  # what `make demo` users type
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert invocation() == "harness"  # activated: the name alone runs


# 2 and 9. the python: contract by role; quiet surprises said out loud -----------------------

JUDGES = """
import json

def row_style(row):  # written for the model role: a dict
    return json.dumps({"verdict": "yes" if row["expected"] else "no"})

def messages_style(messages):  # the judge contract the README documents
    assert messages[-1]["role"] == "user"
    return json.dumps({"rationale": "fine", "verdict": "yes"})
"""


def test_python_judges_get_messages_and_a_row_style_one_is_told_why_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness

    (tmp_path / "my_judges.py").write_text(JUDGES, "utf-8")
    monkeypatch.chdir(tmp_path)
    data = [{"question": "What is 2+2?", "answer": "4"}]
    good = harness.evaluate(
        model=lambda row: "4", data=__import__("pandas").DataFrame(data),
        judges=["correctness"], judge_model="python:my_judges:messages_style",
        log_to_mlflow=False,
    )  # fmt: skip
    assert good.metrics["correctness/mean"] == 1.0
    assert "p50" not in good.result.metrics["correctness"]  # a yes/no judge: a rate, no quantiles
    assert "p50" in good.result.metrics["exact_match"]
    bad = harness.evaluate(
        model=lambda row: "4", data=__import__("pandas").DataFrame(data),
        judges=["correctness"], judge_model="python:my_judges:row_style", log_to_mlflow=False,
    )  # fmt: skip
    error = bad.tables["eval_results_table"]["correctness/error"].iloc[0]
    assert "TypeError" in error and "gets the judge's messages" in error


def test_evaluate_says_where_it_writes_when_no_home_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    import harness

    monkeypatch.delenv("HARNESS_HOME")
    monkeypatch.chdir(tmp_path)
    df = pd.DataFrame({"question": ["q"], "answer": ["a"]})
    with caplog.at_level(logging.WARNING, logger="harness"):
        harness.evaluate(model=lambda row: "a", data=df, log_to_mlflow=False)
    said = [r.getMessage() for r in caplog.records if "project home" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path) in said[0]
    assert (tmp_path / "harness.duckdb").exists()


def test_skipped_default_metrics_are_noted_and_counts_agree(tmp_path: Path) -> None:
    data = tmp_path / "noanswer.csv"
    data.write_text("question\nWhat is 2+2?\n", "utf-8")
    code, out, _ = invoke("data", "import", str(data), "--name", "plain")
    assert code == 0 and "(1 row;" in out
    code, out, err = invoke("run", "--data", "plain", "--model", "echo", "--no-mlflow")
    assert code == 0, err
    flat = " ".join(out.split())  # the table's title wraps at the table's width
    assert "(1 row, " in flat and "1 rows" not in flat
    assert "warning: default metrics exact_match, token_f1, rougeL skipped" in err


def test_pyproject_licence_is_an_spdx_expression() -> None:
    """The table form made setuptools print ~180 lines of warnings during `make demo`."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


# 8. errors that say where they looked -------------------------------------------------------


def test_unknown_dataset_names_the_project_home(home: Path) -> None:
    code, _, err = invoke("run", "--data", "pubmedqa", "--model", "echo")
    assert code == 2
    line = one_line_error(err)
    assert str(home) in line and "HARNESS_HOME" in line and "harness data import" in line


def test_a_wrong_version_lists_that_datasets_versions(qa_csv: Path) -> None:
    code, out, err = invoke("data", "import", str(qa_csv), "--name", "qa", "--json")
    assert code == 0, err
    version = json.loads(out)["version"]
    code, _, err = invoke("data", "show", "qa@deadbeef")
    assert code == 2
    assert f"qa@{version[:12]}" in one_line_error(err)


def test_capitalised_columns_and_semicolons_are_read(qa_csv: Path) -> None:
    code, out, err = invoke("data", "import", str(qa_csv), "--name", "qa")
    assert code == 0, err
    assert "input=Question, expected=Answer" in out


def test_cache_stats_does_not_create_a_cache(home: Path) -> None:
    code, out, err = invoke("cache", "stats", "--json")
    assert code == 0, err
    assert json.loads(out)["entries"] == 0
    assert not (home / "cache").exists()


# 3. harness.toml: a reference, and nothing unknown passes silently ---------------------------


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[pricing]\n", "pricing"),
        ("judge_modle = 'openai:/m'\n", "judge_modle"),
        ("[providers.openai]\nrequests_per_minite = 5\n", "requests_per_minite"),
        ("[providers.openia]\n", "providers.openia"),
        ("[mlflow]\nprompt = 'x'\n", "prompt"),
        ("[providers.openai]\napi_key = 'sk-x'\n", "api_key_env"),
        # [check] was read only by `harness check`: `harness run` took a misspelt key.
        ("[check]\nbogus_key = 1\n", "unknown [check] setting 'bogus_key'"),
        ("[check]\nexact_match = { mni = 0.3 }\n", "gate exact_match: unknown rule 'mni'"),
        ("check = 3\n", "[check] must be a table"),
    ],
)
def test_unknown_settings_are_refused_in_one_line(home: Path, toml: str, named: str) -> None:
    (home / "harness.toml").write_text(toml, "utf-8")
    code, _, err = invoke("run", "--data", "qa", "--model", "echo")
    assert code == 2
    assert named in one_line_error(err)
    assert "sk-x" not in err


def test_the_config_reference_example_is_accepted_by_every_reader(tmp_path: Path) -> None:
    """docs/config.md's example passes the top-level check and each table's own reader."""
    import re

    import tomllib

    from harness.calls.caller import Caller
    from harness.calls.limits import RateLimits
    from harness.compare.gates import check_settings as gate_settings
    from harness.config import check_settings
    from harness.judges.custom import settings_judges
    from harness.providers.pricing import set_prices
    from harness.runner.spark import _settings as spark_settings
    from harness.runner.sweep_grid import sweep_options

    text = (REPO / "docs" / "config.md").read_text("utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    settings = tomllib.loads(block.group(1))
    assert check_settings(settings, tmp_path / "harness.toml") is settings
    assert set(settings_judges(settings, "docs/config.md")) == {"cites_evidence"}
    set_prices(settings["prices"])
    set_prices({})
    Caller.from_settings(settings, cache=None, mode="off")
    assert RateLimits(settings).by_uri["openai:/gpt-4o"] == {"requests_per_minute": 100.0}
    assert spark_settings(settings)["rows_per_task"] == 100
    assert sweep_options([], [], settings).grid == {"temperature": [0, 0.7]}
    gates = gate_settings(settings, base_dir=tmp_path)
    assert len(gates.gates) == 5
    from harness.slices import max_values

    assert max_values(None, settings) == settings["slices"]["max_values"] == 50
    documented = set(re.findall(r"^\| `(?:\[)?([a-z_]+)", text, re.M))
    from harness.config import SETTINGS_TABLES

    assert set(SETTINGS_TABLES) <= documented | {"providers"}


def test_the_config_reference_table_names_every_key_its_tables_take() -> None:
    """The table under docs/config.md's example is where a reader looks a key up; its
    [calls] row lacked stop_grace_s, which the example sets and harness.toml takes."""
    import re

    from harness.calls.settings import CALLS_KEYS
    from harness.config import SETTINGS_TABLES

    text = (REPO / "docs" / "config.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| `\[(\w+)\]` \| (.*?) \|", text, re.M))
    tables = {"calls": CALLS_KEYS}
    tables.update({name: keys for name, keys in SETTINGS_TABLES.items() if keys is not None})
    missing = {t: [k for k in sorted(ks) if f"`{k}`" not in rows[t]] for t, ks in tables.items()}
    assert missing == {t: [] for t in tables}


# 4. the demo's yes/no baseline --------------------------------------------------------------


def test_the_decision_baseline_scores_accuracy_against_final_decision() -> None:
    from harness.baselines import decision

    with open(PUBMEDQA, encoding="utf-8") as f:  # not splitlines(): cells hold U+2028
        rows = [json.loads(line) for line, _ in zip(f, range(150), strict=False)]
    code, out, err = invoke("data", "import", str(PUBMEDQA), "--name", "d",
                            "--expected", "final_decision")  # fmt: skip
    assert code == 0, err
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--data", "d", "--model",
         "python:harness.baselines:decision", "--metric", "exact_match", "--limit", "150",
         "--no-mlflow", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    accuracy = sum(decision(r) == r["final_decision"] for r in rows) / len(rows)
    assert json.loads(out)["metrics"]["exact_match"]["mean"] == pytest.approx(accuracy)
    assert {decision(r) for r in rows} == {"yes", "no"}  # it reads the context: not a constant


# 5 and 6. runs show / list, and several --model values ------------------------------------


def test_several_models_are_a_sweep_and_runs_show_selects_rows(qa_csv: Path) -> None:
    assert invoke("data", "import", str(qa_csv), "--name", "qa")[0] == 0
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--model",
                            "python:harness.baselines:top_sentence", "--metric", "word_count",
                            "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    sweep = json.loads(out)
    assert [r["model"] for r in sweep["runs"]] == [
        "echo",
        "python:harness.baselines:top_sentence",
    ]
    code, out, err = invoke("runs", "list")
    assert code == 0
    assert "model=echo" in out and "word_count" in out
    run_id = sweep["runs"][0]["run_id"]
    code, out, err = invoke("runs", "show", run_id, "--rows", "--limit", "1",
                            "--columns", "output,word_count")  # fmt: skip
    assert code == 0, err
    table = out.split("judge calls", 1)[-1]
    assert "word_count" in table and "latency_s" not in table
    assert "... 1 more row (--limit N, or --all)" in out
    code, out, _ = invoke("runs", "show", run_id, "--rows", "--errors", "--json")
    assert json.loads(out)["rows_table"] == []
    code, _, err = invoke("runs", "show", run_id, "--rows", "--columns", "nope")
    assert code == 2 and "nope" in one_line_error(err)


def test_runs_show_errors_says_when_no_row_failed(qa_csv: Path) -> None:
    """It printed the rows table's header alone, as if the failed rows were missing."""
    assert invoke("data", "import", str(qa_csv), "--name", "qa")[0] == 0
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = invoke("runs", "show", run_id, "--errors")
    assert code == 0, err
    assert out.splitlines()[-1] == "no failed rows"
    assert "latency_s" not in out  # no empty table
    code, out, _ = invoke("runs", "show", run_id, "--errors", "--json")
    assert json.loads(out)["rows_table"] == []


def test_the_headline_metric_prefers_a_judge_then_the_defaults() -> None:
    from harness.runner.summary import headline_metric

    judge = {"mean": 0.5, "errors": 0}
    metrics = {"ari_grade_level": {"mean": 9.0}, "token_f1": {"mean": 0.3}}
    assert headline_metric(metrics) == ("token_f1", {"mean": 0.3})
    assert headline_metric({**metrics, "faithfulness": judge})[0] == "faithfulness"
    assert headline_metric({"ari_grade_level": {"mean": 9.0}})[0] == "ari_grade_level"


# 7 and 10. servers: ports checked first; the fake LLM as a command -------------------------


def test_ui_refuses_a_taken_port_in_one_line(home: Path) -> None:
    (home / "mlruns").mkdir()
    (home / "mlruns" / "mlflow.db").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = invoke("ui", "--port", str(port))
    assert code == 2
    assert f"127.0.0.1:{port}" in one_line_error(err) and "--port 0" in err


def test_a_taken_port_names_airplay_only_for_port_5000() -> None:
    """`harness dev fake-llm` started twice said "cannot listen on 127.0.0.1:8765 (Address
    already in use); another program has it (on macOS, AirPlay takes 5000)": a hint about
    another port, for a port that was not 5000."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = invoke("dev", "fake-llm", "--port", str(port))
    line = one_line_error(err)
    assert code == 2 and f"127.0.0.1:{port}" in line and "--port 0" in line
    assert "AirPlay" not in line
    from harness.ports import busy_port_hint

    assert "AirPlay" in busy_port_hint(5000)


def test_commands_wrapped_in_dev_fake_llm_share_the_cache(
    qa_csv: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """README: "wrap a single command: `harness dev fake-llm -- harness run ...`". Each
    wrap served on a new free port, and the base URL is in every cache key: the same run
    wrapped again sent every call again, and wrapped with --cache replay it missed them all
    ("closest: base_url: http://127.0.0.1:35973/v1 (cached: http://127.0.0.1:56013/v1)").
    A wrap now serves on --port's default when it is free, as `harness dev fake-llm` does."""
    from harness.cli.dev import fake_llm
    from harness.ports import free_port

    [port_option] = [p for p in fake_llm.params if p.name == "port"]
    monkeypatch.setattr(port_option, "default", free_port())  # 8765 may be another test's
    assert invoke("data", "import", str(qa_csv), "--name", "qa")[0] == 0
    harness_bin = [sys.executable, "-m", "harness"]
    run = [*harness_bin, "run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--no-mlflow",
           "--json"]  # fmt: skip
    for extra, sent, hits in (((), 2, 0), (("--cache", "replay"), 0, 2)):
        capfd.readouterr()
        assert invoke("dev", "fake-llm", "--", *run, *extra)[0] == 0
        calls = json.loads(capfd.readouterr().out)["calls"]["model"]  # the command's stdout
        assert (calls["requests"], calls["cache_hits"]) == (sent, hits)


def test_dev_fake_llm_runs_a_command_against_the_fake_server(qa_csv: Path, home: Path) -> None:
    assert invoke("data", "import", str(qa_csv), "--name", "qa")[0] == 0
    harness_bin = [sys.executable, "-m", "harness"]
    done = subprocess.run(
        [*harness_bin, "dev", "fake-llm", "--", *harness_bin, "run", "--data", "qa", "--model",
         "openai:/gpt-4o-mini", "--judge", "correctness", "--judge-model", "openai:/gpt-4o-mini",
         "--no-mlflow", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["calls"]["model"]["requests"] == 2 and result["calls"]["judge"]["requests"] == 2
    assert result["errors"] == 0 and result["metrics"]["correctness"]["count"] == 2
    code = subprocess.run(
        [*harness_bin, "dev", "fake-llm", "--", sys.executable, "-c", "import sys; sys.exit(7)"],
        timeout=120,
    ).returncode
    assert code == 7  # the wrapped command's exit code, as documented


def test_every_command_help_ends_with_an_example() -> None:
    def walk(command: click.Command, path: list[str]):
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), [*path, name])

    for path, _command in walk(cli, []):
        code, out, _ = invoke(*path, "--help")
        assert code == 0
        paragraphs = out.split("Options:")[0].strip().split("\n\n")
        assert paragraphs[-1].lstrip().startswith("Example"), (path, paragraphs[-1])
        assert "harness " in paragraphs[-1]


def test_dev_fake_llm_serves_and_prints_the_export_line_a_client_can_use() -> None:
    import httpx

    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "dev", "fake-llm", "--port", "0"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert "fake LLM server ready at http://127.0.0.1:" in server.stdout.readline()
        export = server.stdout.readline().strip()
        assert export.startswith("export OPENAI_BASE_URL=")
        env = dict(item.split("=", 1) for item in export.removeprefix("export ").split())
        reply = httpx.post(
            env["OPENAI_BASE_URL"] + "/chat/completions",
            headers={"Authorization": f"Bearer {env['OPENAI_API_KEY']}"},
            json={"model": "m", "messages": [{"role": "user", "content": "Is it? Yes."}]},
            timeout=30,
        )
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == "Answer: Is it?"
    finally:
        server.terminate()
        assert server.wait(timeout=30) is not None
