"""A model answer cut off at its token limit is kept (it is what the model said), but the run
counts such answers (calls.model.cut_off), says so in a warning, and runs show says it again;
a replayed run counts them from the stored bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer

WARNING = (
    "warning: 20 of 20 model outputs were cut off at their token limit and are scored as "
    "they are; raise max_tokens (--param max_tokens=N) for whole answers\n"
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        monkeypatch.setenv("OPENAI_BASE_URL", running.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cut-off-test")
        yield running


def run(*extra: str) -> tuple[int, str, str]:
    return invoke(
        "run", "--data", "qa", "--model", "openai:/m", "--metric", "word_count",
        "--no-mlflow", *extra,
    )  # fmt: skip


def test_cut_off_outputs_are_counted_and_named_also_when_replayed(
    qa_file: Path, home: Path, server: FakeLLMServer
) -> None:
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err
    code, out, err = run("--param", "max_tokens=3", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["errors"] == 0
    assert document["calls"]["model"]["cut_off"] == 20
    assert document["metrics"]["word_count"]["mean"] == 3  # the outputs are what was said
    assert WARNING[len("warning: ") : -1] in document["warnings"]

    code, out, err = run("--param", "max_tokens=3", "--cache", "replay")
    assert code == 0, err
    assert WARNING in err
    assert "model calls: 0 sent, 20 from cache" in out

    code, out, err = invoke("runs", "show", document["run_id"])
    assert code == 0
    assert WARNING in err

    code, out, err = run("--param", "max_tokens=300", "--json")  # whole answers: no word
    assert code == 0, err
    assert json.loads(out)["calls"]["model"]["cut_off"] == 0
    assert "cut off" not in err and "cut off" not in out


def test_cut_off_counts_reach_the_runs_mlflow_metrics(
    qa_file: Path, home: Path, server: FakeLLMServer
) -> None:
    from processes import mlflow_metrics

    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "openai:/m", "--metric", "word_count",
        "--param", "max_tokens=3", "--json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    metrics = mlflow_metrics(home, document["mlflow_run_id"])
    assert metrics["model/requests"] == 20
    assert metrics["model/cut_off"] == 20
    assert metrics["judge/cut_off"] == 0


FILTERED = (
    "warning: 2 of 20 model outputs were stopped by the provider's content filter and are "
    "scored as they are\n"
)


@pytest.mark.parametrize("uri", ["openai:/m", "anthropic:/m"])
def test_filtered_outputs_are_counted_and_named_also_when_replayed(
    uri: str,
    qa_file: Path,
    home: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenAI's finish_reason content_filter, Anthropic's stop_reason refusal: kept and scored
    # as they are (an empty output), counted and named like outputs cut off.
    from processes import mlflow_metrics

    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-filtered-test")
    server.configure(fault_script=["filtered", "filtered"])
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err
    model = ("--model", uri, "--metric", "word_count")
    code, out, err = invoke("run", "--data", "qa", *model, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["errors"] == 0
    assert (document["calls"]["model"]["filtered"], document["calls"]["model"]["cut_off"]) == (
        2,
        0,
    )
    assert FILTERED[len("warning: ") : -1] in document["warnings"]
    assert mlflow_metrics(home, document["mlflow_run_id"])["model/filtered"] == 2

    code, out, err = invoke("run", "--data", "qa", *model, "--cache", "replay", "--no-mlflow")
    assert code == 0, err
    assert FILTERED in err and "cut off" not in err

    code, out, err = invoke("runs", "show", document["run_id"])
    assert code == 0
    assert FILTERED in err


APP = "app calls (the LLM calls the python: model made itself)"
APP_CUT_OFF = (
    f"warning: 4 of 4 {APP} got answers cut off at their token limit; raise max_tokens in "
    "the app's calls for whole answers\n"
)
APP_FILTERED = f"warning: 2 of 4 {APP} got answers stopped by the provider's content filter\n"


def outputs(home: Path, run_id: str) -> list[str]:
    with duckdb.connect(str(home / "harness.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT output FROM outputs WHERE run_id = ? ORDER BY example_id", [run_id]
        ).fetchall()
    return [output for (output,) in rows]


def questions(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    asked = ["Where is Paris?", "Who created Python?", "How long is the Nile?", "Why?"]
    path.write_text(
        "".join(json.dumps({"id": f"q{i}", "input": q}) + "\n" for i, q in enumerate(asked))
    )
    code, _, err = invoke("data", "import", str(path), "--name", "questions")
    assert code == 0, err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_app_calls_cut_off_are_counted_and_named_also_when_replayed(
    stream: bool,
    tmp_path: Path,
    home: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A python: model's own openai SDK call with max_tokens=1: the fake server cuts the
    # answer (finish_reason 'length', in the JSON body or the stream's last chunk).
    from processes import mlflow_metrics

    if stream:
        monkeypatch.setenv("APP_STREAM", "1")
    questions(tmp_path)
    model = ("--model", "python:harness_app_models:ask_briefly", "--metric", "word_count")
    code, out, err = invoke("run", "--data", "questions", *model, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["errors"] == 0
    assert (document["calls"]["app"]["cut_off"], document["calls"]["app"]["filtered"]) == (4, 0)
    assert document["calls"]["model"]["cut_off"] == 0
    assert document["warnings"] == [APP_CUT_OFF[len("warning: ") : -1]]
    metrics = mlflow_metrics(home, document["mlflow_run_id"])
    assert (metrics["app/cut_off"], metrics["model/cut_off"]) == (4, 0)

    code, out, err = invoke(
        "run", "--data", "questions", *model, "--cache", "replay", "--no-mlflow"
    )
    assert code == 0, err
    assert "app calls: 0 sent, 4 from cache" in out
    assert APP_CUT_OFF in err and "model outputs" not in err

    code, out, err = invoke("runs", "show", document["run_id"])
    assert code == 0
    assert APP_CUT_OFF in err


def test_app_calls_filtered_are_counted_and_named(
    tmp_path: Path, home: Path, server: FakeLLMServer
) -> None:
    questions(tmp_path)
    assert_two_app_calls_filtered(server, "python:harness_app_models:ask")


def assert_two_app_calls_filtered(server: FakeLLMServer, model_uri: str) -> None:
    """The fake server's content filter stops two app calls: counted, named, and again in
    a replay of the cache."""
    server.configure(fault_script=["filtered", "filtered"])
    model = ("--model", model_uri, "--metric", "word_count")
    code, out, err = invoke("run", "--data", "questions", *model, "--no-mlflow", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["calls"]["app"]["filtered"], document["calls"]["app"]["cut_off"]) == (2, 0)
    assert document["warnings"] == [APP_FILTERED[len("warning: ") : -1]]

    code, out, err = invoke(
        "run", "--data", "questions", *model, "--cache", "replay", "--no-mlflow"
    )
    assert code == 0, err
    assert APP_FILTERED in err and "cut off" not in err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_app_responses_api_calls_cut_off_or_filtered_are_counted(
    stream: bool,
    tmp_path: Path,
    home: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The Responses API says it with status 'incomplete' and incomplete_details.reason
    # 'max_output_tokens' or 'content_filter' (streamed: in its response.incomplete event).
    if stream:
        monkeypatch.setenv("APP_STREAM", "1")
    questions(tmp_path)
    model = ("--model", "python:harness_app_models:ask_responses", "--metric", "word_count")
    assert_two_app_calls_filtered(server, model[1])

    monkeypatch.setenv("APP_BRIEF", "1")
    code, out, err = invoke("run", "--data", "questions", *model, "--no-mlflow", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["calls"]["app"]["cut_off"], document["calls"]["app"]["filtered"]) == (4, 0)
    assert document["calls"]["app"]["output_tokens"] == 4  # one word each, streamed too
    assert document["warnings"] == [APP_CUT_OFF[len("warning: ") : -1]]
    code, out, err = invoke(
        "run", "--data", "questions", *model, "--cache", "replay", "--no-mlflow"
    )
    assert code == 0, err
    assert "app calls: 0 sent, 4 from cache" in out
    assert APP_CUT_OFF in err and "filter" not in err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_app_ollama_calls_cut_off_are_counted(
    stream: bool,
    tmp_path: Path,
    home: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ollama's own /api/chat (at OLLAMA_HOST, intercepted) says it with done_reason 'length';
    # streamed (NDJSON, the ollama client's default), in its last line, with the counts.
    if stream:
        monkeypatch.setenv("APP_STREAM", "1")
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    questions(tmp_path)
    model = ("--model", "python:harness_app_models:ask_ollama_briefly", "--metric", "word_count")
    code, out, err = invoke("run", "--data", "questions", *model, "--no-mlflow", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["calls"]["app"]["requests"] == 4
    assert (document["calls"]["app"]["cut_off"], document["calls"]["app"]["filtered"]) == (4, 0)
    # its tokens, from prompt_eval_count and eval_count (they were 0: the body went unread)
    assert document["calls"]["app"]["output_tokens"] == 4  # num_predict 1, four rows
    assert document["calls"]["app"]["input_tokens"] > 0
    assert document["warnings"] == [APP_CUT_OFF[len("warning: ") : -1]]
    code, out, err = invoke(
        "run", "--data", "questions", *model, "--cache", "replay", "--no-mlflow", "--json"
    )
    assert code == 0, err
    replayed = json.loads(out)
    assert replayed["calls"]["app"]["cache_hits"] == 4
    assert replayed["warnings"] == document["warnings"]
    assert replayed["calls"]["app"]["cut_off"] == 4
    # the tokens the hits did not pay for: the same counts, read from the stored answers
    assert (
        replayed["calls"]["app"]["saved_input_tokens"] == document["calls"]["app"]["input_tokens"]
    )
    assert replayed["calls"]["app"]["saved_output_tokens"] == 4
    assert outputs(home, replayed["run_id"]) == outputs(home, document["run_id"]) == ["Answer:"] * 4
