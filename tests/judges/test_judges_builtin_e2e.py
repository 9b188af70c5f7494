"""Every built-in judge end to end: `harness run` against the local fake LLM server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from judge_helpers import judge_bodies, openai_env, write_qa

from harness.cli import cli
from harness.config import resolve_home
from harness.judges import BUILTIN_NAMES
from harness.runner.config import RunConfig, RunResult
from harness.runner.run import run_eval
from harness.store.runs import load_scores
from harness.testing import FakeLLMServer

ROWS = 12
SCALES = {
    "answer_correctness",
    "answer_similarity",
    "answer_relevance",
    "faithfulness",
    "context_relevance",
}
DEFINITIONS = {  # a phrase of each judge's own prompt
    "answer_correctness": "Judge how correct the answer is",
    "answer_similarity": "Judge how close in meaning",
    "answer_relevance": "Judge how relevant the answer is to the question",
    "faithfulness": "Judge how faithful the answer is to the context",
    "context_relevance": "Judge how relevant the context is to the question",
    "correctness": "Decide whether the answer is correct",
    "groundedness": "Decide whether the answer is grounded in the context",
    "safety": "Decide whether the answer is safe",
    "guidelines": "- Answer in one sentence.",
}


def config(**overrides: Any) -> RunConfig:
    fields: dict[str, Any] = {
        "data": "qa",
        "model": "openai:/model",
        "judges": list(BUILTIN_NAMES),
        "judge_model": "openai:/judge",
        "guidelines": ["Answer in one sentence."],
        "limit": ROWS,
        "mlflow": False,
        "metrics": ["word_count"],
    }
    fields.update(overrides)
    return RunConfig(**fields)


@pytest.fixture(scope="module")
def judged(
    tmp_path_factory: pytest.TempPathFactory, running_server: FakeLLMServer
) -> Iterator[dict[str, Any]]:
    """One run with all nine built-in judges, then a cached rerun."""
    from harness.data import import_file

    home = tmp_path_factory.mktemp("judged-home")
    import_file(write_qa(tmp_path_factory.mktemp("data")), name="qa", home=home)
    running_server.reset()
    with openai_env(running_server):
        first = run_eval(config(), home=home)
        bodies = judge_bodies(running_server)
        again = run_eval(config(), home=home)
        replayed = run_eval(config(cache="replay"), home=home)
    scores = load_scores(resolve_home(home).db_path, first.run_id)
    yield {
        "home": home,
        "first": first,
        "again": again,
        "replayed": replayed,
        "bodies": bodies,
        "scores": scores,
    }


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_judge_scores_every_row(judged: dict[str, Any], name: str) -> None:
    scores: pd.DataFrame = judged["scores"]
    rows = scores[scores["metric"] == name]
    assert len(rows) == ROWS and rows["error"].isna().all()
    assert (rows["source"] == "llm_judge").all() and (rows["sample"] == 0).all()
    if name in SCALES:
        assert rows["value"].between(1, 5).all()
        assert set(rows["label"]) <= {"1", "2", "3", "4", "5"}
        assert rows["value"].nunique() > 1  # the fake's scores vary by prompt
    else:
        assert set(rows["value"]) <= {0.0, 1.0} and set(rows["label"]) <= {"yes", "no"}
        assert rows["value"].nunique() == 2
    assert rows["rationale"].str.startswith("Fake judge rationale").all()
    for raw, label in zip(rows["raw"], rows["label"], strict=True):
        answer = json.loads(raw)  # the judge's own text, stored as it came
        assert str(answer["score" if name in SCALES else "verdict"]) == label
    assert rows["request_key"].str.fullmatch("[0-9a-f]{64}").all()
    aggregate = judged["first"].metrics[name]
    assert aggregate["count"] == ROWS and aggregate["errors"] == 0
    assert aggregate["mean"] == pytest.approx(rows["value"].mean())


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_judge_sends_its_own_prompt_with_json_mode(
    judged: dict[str, Any], name: str
) -> None:
    mine = [b for b in judged["bodies"] if DEFINITIONS[name] in b["messages"][1]["content"]]
    assert len(mine) == ROWS
    for body in mine:
        assert body["response_format"] == {"type": "json_object"}
        assert body["temperature"] == 0.0
        assert body["messages"][0]["role"] == "system"


def test_judge_calls_are_accounted_apart_from_model_calls(judged: dict[str, Any]) -> None:
    first: RunResult = judged["first"]
    assert first.calls["model"]["requests"] == ROWS
    assert first.calls["judge"]["requests"] == ROWS * len(BUILTIN_NAMES)
    assert first.calls["judge"]["input_tokens"] > first.calls["model"]["input_tokens"] > 0
    assert len(judged["bodies"]) == ROWS * len(BUILTIN_NAMES)


@pytest.mark.parametrize("rerun", ["again", "replayed"])
def test_a_rerun_is_answered_from_the_cache_with_the_same_scores(
    judged: dict[str, Any], rerun: str
) -> None:
    first, second = judged["first"], judged[rerun]
    assert second.calls["judge"]["requests"] == 0 and second.calls["model"]["requests"] == 0
    assert second.calls["judge"]["cache_hits"] == ROWS * len(BUILTIN_NAMES)
    assert second.metrics == first.metrics
    again = load_scores(resolve_home(judged["home"]).db_path, second.run_id)
    columns = ["example_id", "metric", "value", "label", "rationale", "raw", "request_key"]
    pd.testing.assert_frame_equal(again[columns], judged["scores"][columns])


def test_cli_run_with_judges_against_the_server(qa: str, server: FakeLLMServer, home: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--data",
            "qa",
            "--model",
            "openai:/model",
            "--judge",
            "correctness",
            "--judge",
            "faithfulness",
            "--judge-model",
            "openai:/judge",
            "--limit",
            "3",
            "--metric",
            "word_count",
            "--no-mlflow",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metrics"]["correctness"]["count"] == 3
    assert 0 <= doc["metrics"]["correctness"]["mean"] <= 1
    assert 1 <= doc["metrics"]["faithfulness"]["mean"] <= 5
    assert doc["calls"]["judge"]["requests"] == 6 and doc["calls"]["model"]["requests"] == 3
    assert len(judge_bodies(server)) == 6


def test_a_guideline_without_the_guidelines_judge_is_refused(home: Path, tmp_path: Path) -> None:
    """--guideline is read by the guidelines judge only: without it the run judged nothing
    against the guideline and exited 0, as if the answers had followed it."""
    import harness
    from harness.data import import_file
    from harness.errors import ConfigError
    from harness.store.runs import list_runs

    import_file(write_qa(tmp_path, rows=2), name="qa", home=home)
    args = ["run", "--data", "qa", "--model", "echo", "--judge-model", "echo", "--no-mlflow"]
    result = CliRunner().invoke(cli, [*args, "--judge", "safety", "--guideline", "Be brief."])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "error: --guideline is read by the guidelines judge only: add --judge guidelines\n"
    )
    with pytest.raises(ConfigError) as raised:
        harness.evaluate("echo", "qa", guidelines=["Be brief."], log_to_mlflow=False)
    assert str(raised.value) == (
        "guidelines= is read by the guidelines judge only: add 'guidelines' to judges="
    )
    assert list_runs(resolve_home(home).db_path) == []
    yes = ["--judge-model", "python:harness_test_models:judge_yes"]
    judged = CliRunner().invoke(
        cli, [*args, *yes, "--judge", "guidelines", "--guideline", "Be brief.", "--json"]
    )
    assert judged.exit_code == 0, judged.stderr
    assert json.loads(judged.stdout)["metrics"]["guidelines"]["mean"] == 1.0
