"""`harness run` of a `python:` model whose calls come from threads it starts itself (no row
in their context): a call of theirs that fails fails the rows running when it failed, even
when the app catches the SDK's error and falls back, so a replay never passes with answers
that differ from the recorded ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer


def invoke(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, list(args))
    out = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def run(*extra: str) -> tuple[int, dict, str]:
    return invoke(
        "run", "--data", "questions", "--model", "python:harness_app_models:pooled_with_fallback",
        "--metric", "word_count", "--no-mlflow", "--json", *extra,
    )  # fmt: skip


def outputs(home: Path, run_id: str) -> list[tuple[str | None, str | None]]:
    code, shown, err = invoke("runs", "show", run_id, "--rows", "--json")
    assert code == 0, err
    return [(row["output"], row["error"]) for row in shown["rows_table"]]


@pytest.fixture
def questions(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        "".join(json.dumps({"input": q}) + "\n" for q in ("Where is Paris?", "Who made Python?"))
    )
    assert invoke("data", "import", str(path), "--name", "questions")[0] == 0
    (home / "harness.toml").write_text("[calls]\nretry_base_delay_s = 0.01\nmax_retries = 1\n")


def test_a_caught_replay_miss_in_the_apps_thread_fails_its_row(
    own_llm: FakeLLMServer, questions: None, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, cold, err = run()
    assert code == 0, err
    recorded = outputs(home, cold["run_id"])
    assert all("fallback" not in str(output) and error is None for output, error in recorded)
    own_llm.stop()

    code, replayed, err = run("--cache", "replay")
    assert code == 0, err
    assert outputs(home, replayed["run_id"]) == recorded

    # The app changed: its calls miss, and falling back must not pass for the recorded run.
    monkeypatch.setenv("APP_SYSTEM", "Answer in one word.")
    code, changed, err = run("--cache", "replay")
    assert code == 1, err
    assert changed["errors"] == 2
    for output, error in outputs(home, changed["run_id"]):
        assert output is None
        assert (
            error is not None
            and (
                "app call to "
                + own_llm.openai_base_url
                + "/chat/completions from a thread the model "
                "started is not in the cache: prompt differs"
            )
            in error
        ), error


def test_a_caught_server_error_in_the_apps_thread_fails_its_row(
    own_llm: FakeLLMServer, questions: None, home: Path
) -> None:
    own_llm.configure(error_500_rate=1.0)
    code, failed, err = run()
    assert code == 1, err
    assert failed["errors"] == 2
    for output, error in outputs(home, failed["run_id"]):
        assert output is None
        assert error is not None and "HTTP 500" in error, error
