"""`harness run` of a `python:` model that calls the openai SDK itself: its calls are counted,
cached, replayed with the server stopped, explained on a miss, and attributed to their rows at
--concurrency 64."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import harness
from harness.cache import ResponseCache
from harness.cli import cli
from harness.testing import FakeLLMServer

SENTINEL_KEY = "sk-sentinel-run-0f1e2d3c4b5a"
QUESTIONS = [
    "What is the capital of France?",
    "Which river is the longest in Africa?",
    "Who created Python?",
    "Where is Paris?",
    "How long is the Nile?",
]


def invoke(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, list(args))
    out = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def rows_of(home: Path, run_id: str) -> list[tuple]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT example_id, output, error, app_request_keys FROM outputs "
            "WHERE run_id = ? ORDER BY example_id",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def questions_file(tmp_path: Path, questions: list[str]) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"q{i:03d}", "input": q}) + "\n" for i, q in enumerate(questions))
    )
    return path


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
        yield server


def run(*extra: str) -> tuple[int, dict, str]:
    return invoke(
        "run", "--data", "questions", "--model", "python:harness_app_models:rag",
        "--metric", "word_count", "--no-mlflow", "--json", *extra,
    )  # fmt: skip


def test_cold_rerun_and_replay_with_the_server_stopped(
    sdk_env: FakeLLMServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        invoke("data", "import", str(questions_file(tmp_path, QUESTIONS)), "--name", "questions")[0]
        == 0
    )
    code, cold, err = run()
    assert code == 0, err
    sent = sdk_env.stats()["requests_total"]
    assert sent == 2 * len(QUESTIONS)  # an embedding and a chat call per row
    assert cold["calls"]["app"]["requests"] == sent and cold["calls"]["app"]["cache_hits"] == 0
    assert cold["calls"]["app"]["input_tokens"] > 0
    assert cold["calls"]["model"]["local_calls"] == len(QUESTIONS)
    cold_rows = rows_of(home, cold["run_id"])
    assert all(error is None for _, _, error, _ in cold_rows)

    # Each row holds the keys of its own two calls, and those are its question's.
    with ResponseCache(home / "cache") as cache:
        for (example_id, _, _, keys), question in zip(cold_rows, QUESTIONS, strict=True):
            assert len(keys) == 2, example_id
            requests = [cache.get(key).request for key in keys]
            embedding = next(r for r in requests if not r["messages"])
            chat = next(r for r in requests if r["messages"])
            assert embedding["params"]["input"][0] == question
            assert chat["messages"][1]["content"].startswith(question)

    code, rerun, err = run()
    assert code == 0, err
    assert sdk_env.stats()["requests_total"] == sent  # not one more
    assert rerun["calls"]["app"]["requests"] == 0
    assert rerun["calls"]["app"]["cache_hits"] == 2 * len(QUESTIONS)
    assert rerun["metrics"] == cold["metrics"]
    assert [r[:3] for r in rows_of(home, rerun["run_id"])] == [r[:3] for r in cold_rows]

    sdk_env.stop()
    monkeypatch.delenv("OPENAI_API_KEY")  # no server, no key
    code, replayed, err = run("--cache", "replay")
    assert code == 0, err
    assert replayed["metrics"] == cold["metrics"]
    assert [r[:3] for r in rows_of(home, replayed["run_id"])] == [r[:3] for r in cold_rows]

    # The app changes its prompt: in replay, every row fails, saying what differs.
    monkeypatch.setenv("APP_SYSTEM", "Answer the question from the context, in one word.")
    code, changed, err = run("--cache", "replay")
    assert code == 1
    assert changed["errors"] == len(QUESTIONS)
    errors = [error for _, _, error, _ in rows_of(home, changed["run_id"])]
    assert errors[0] == (
        "python:harness_app_models:rag: --cache replay: the app call to "
        f"{sdk_env.openai_base_url}/chat/completions for row q000 is not in the cache: "
        'prompt differs at character 42 (message 0, system): "…rom the context, in one word." '
        '(cached: "…rom the context, in a few words.")'
    )

    # A cassette of the run holds its app calls; no file anywhere holds the key.
    cassette = tmp_path / "run.jsonl"
    assert invoke("cache", "export", str(cassette), "--run", cold["run_id"])[0] == 0
    assert len(cassette.read_text().splitlines()) == 1 + 2 * len(QUESTIONS)

    # It is harness.replay's format: the app, called from a script, replays a row from it...
    monkeypatch.delenv("APP_SYSTEM")
    import harness_app_models  # imported by the runs above

    with harness.replay(cassette) as recorder:
        assert harness_app_models.rag({"input": QUESTIONS[0]}) == cold_rows[0][1]
    assert recorder.stats["app"]["cache_hits"] == 2 and recorder.stats["app"]["requests"] == 0

    # ...and another project imports it and replays the whole run, still with no server.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(elsewhere))
    questions = tmp_path / "questions.jsonl"
    assert invoke("data", "import", str(questions), "--name", "questions")[0] == 0
    assert invoke("cache", "import", str(cassette))[0] == 0
    code, imported, err = run("--cache", "replay")
    assert code == 0, err
    assert imported["metrics"] == cold["metrics"]
    assert imported["calls"]["app"]["cache_hits"] == 2 * len(QUESTIONS)
    assert [r[:3] for r in rows_of(elsewhere, imported["run_id"])] == [r[:3] for r in cold_rows]
    for root in (home, tmp_path):  # tmp_path holds the other project too
        assert not [
            p for p in root.rglob("*") if p.is_file() and SENTINEL_KEY.encode() in p.read_bytes()
        ]


def test_rows_keep_their_own_calls_at_concurrency_64(
    sdk_env: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    sdk_env.configure(latency_s=0.02, jitter_s=0.03)  # answers arrive out of order
    questions = [f"Question {i}: what is {i} times {i + 1}?" for i in range(96)]
    invoke("data", "import", str(questions_file(tmp_path, questions)), "--name", "many")
    code, doc, err = invoke(
        "run", "--data", "many", "--model", "python:harness_app_models:rag_async",
        "--metric", "word_count", "--concurrency", "64", "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert (
        doc["calls"]["app"]["requests"] == 2 * len(questions) == sdk_env.stats()["requests_total"]
    )
    assert sdk_env.stats()["max_in_flight"] > 16  # the rows really did overlap
    with ResponseCache(home / "cache") as cache:
        for example_id, output, _, keys in rows_of(home, doc["run_id"]):
            question = questions[int(example_id[1:])]
            requests = [cache.get(key).request for key in keys]
            assert len(requests) == 2
            assert {r["model"] for r in requests} == {"text-embedding-3-small", "gpt-4o-mini"}
            for request in requests:
                text = json.dumps(request["messages"] or request["params"]["input"])
                assert question in text, (example_id, text)
            assert output.startswith(f"Answer: {question}")


def test_streams_of_both_sdks_replay_as_streams_with_the_server_stopped(
    sdk_env: FakeLLMServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sdk_env.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    invoke("data", "import", str(questions_file(tmp_path, QUESTIONS)), "--name", "streams")
    args = ("run", "--data", "streams", "--model", "python:harness_app_models:streamed",
            "--metric", "word_count", "--concurrency", "8", "--no-mlflow", "--json")  # fmt: skip
    code, cold, err = invoke(*args)
    assert code == 0, err
    assert cold["calls"]["app"]["requests"] == 2 * len(QUESTIONS)
    assert sdk_env.stats()["requests_total"] == 2 * len(QUESTIONS)
    assert cold["calls"]["app"]["output_tokens"] > 0  # read from the streams' own usage
    cold_rows = rows_of(home, cold["run_id"])
    for (_, output, error, keys), question in zip(cold_rows, QUESTIONS, strict=True):
        assert error is None and len(keys) == 2
        first, _, second = output.partition(" | ")
        assert question in first and first in second  # Claude was asked about its row's answer

    sdk_env.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    code, replayed, err = invoke(*args, "--cache", "replay")
    assert code == 0, err
    assert replayed["calls"]["app"]["cache_hits"] == 2 * len(QUESTIONS)
    assert replayed["metrics"] == cold["metrics"]
    assert rows_of(home, replayed["run_id"]) == cold_rows


def test_app_calls_are_priced_and_held_to_the_budget(
    sdk_env: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    # $1 per thousand input tokens: a row's chat call costs a few cents, its output nothing.
    (home / "harness.toml").write_text('[prices]\n"openai:/gpt-4o-mini" = [1000.0, 0.0]\n')
    many = [f"Question {i}: {q}" for i, q in enumerate(QUESTIONS * 4)]
    invoke("data", "import", str(questions_file(tmp_path, many)), "--name", "priced")
    code, doc, err = invoke(
        "run", "--data", "priced", "--model", "python:harness_app_models:rag",
        "--metric", "word_count", "--concurrency", "1", "--max-cost", "0.2",
        "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 1
    assert "--max-cost budget of $0.2000" in err and "--resume" in err
    assert doc["status"] == "stopped" and 0 < doc["rows_done"] < doc["rows"] == len(many)
    app = doc["calls"]["app"]
    assert app["requests"] == sdk_env.stats()["requests_total"]
    assert 0.1 < app["cost_usd"] <= 0.2  # at the list price: under $0.0001


def test_a_sync_client_in_an_async_model_is_refused_clearly(
    sdk_env: FakeLLMServer, tmp_path: Path
) -> None:
    invoke("data", "import", str(questions_file(tmp_path, QUESTIONS[:1])), "--name", "one")
    code, doc, _ = invoke(
        "run", "--data", "one", "--model", "python:harness_app_models:blocking_in_async",
        "--metric", "word_count", "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 1 and doc["errors"] == 1
    assert sdk_env.stats()["requests_total"] == 0
    assert doc["error_reasons"][0]["error"].endswith(
        "a blocking HTTP call to an LLM endpoint was made on harness's event loop (an async "
        "function using a sync client, such as OpenAI() in an async def): use the async "
        "client (AsyncOpenAI), or make the function a plain def"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_prompt_cache_tokens_are_counted_and_priced(
    stream: bool, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first row writes the cached system prompt (1.25x the input price), the others read
    # it (0.1x); Anthropic's input_tokens counts neither. claude-sonnet-4: $3 / $15 per M.
    from harness_app_models import CACHED_SYSTEM

    if stream:
        monkeypatch.setenv("APP_STREAM", "1")
    questions = QUESTIONS[:3]
    with FakeLLMServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
        path = questions_file(tmp_path, questions)
        assert invoke("data", "import", str(path), "--name", "questions")[0] == 0
        code, out, err = invoke(
            "run", "--data", "questions", "--model", "python:harness_app_models:cached_claude",
            "--concurrency", "1", "--no-mlflow", "--json",
        )  # fmt: skip
    assert code == 0, err
    cached = len(CACHED_SYSTEM.split())
    asked = sum(len(q.split()) for q in questions)
    app = out["calls"]["app"]
    assert app["requests"] == 3
    assert app["input_tokens"] == asked + 3 * cached
    billed_input = asked + 1.25 * cached + 0.1 * 2 * cached
    expected = (3.0 * billed_input + 15.0 * app["output_tokens"]) / 1e6
    assert app["cost_usd"] == pytest.approx(expected, abs=1e-6)  # --json rounds to 1e-6


QUOTA_ERROR = (
    "HTTP 429 from {url}/chat/completions: You exceeded your current quota, please check your "
    "plan and billing details. For more information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors. (the account is out of "
    "quota: retrying cannot help; add credit or raise its limit)"
)


@pytest.mark.parametrize("model", ["ask", "ask_async"])
def test_an_app_out_of_quota_fails_at_once_through_the_openai_sdk(
    model: str, sdk_env: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    # OpenAI's 429 insufficient_quota: no wait refills the account, so neither harness nor
    # the app's SDK sends the call again (a retry would meet "ok" and hide the fault).
    sdk_env.configure(fault_script=["quota", "ok"])
    path = questions_file(tmp_path, QUESTIONS[:1])
    assert invoke("data", "import", str(path), "--name", "questions")[0] == 0
    code, out, err = invoke(
        "run", "--data", "questions", "--model", f"python:harness_app_models:{model}",
        "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 1, err
    assert sdk_env.stats()["requests_total"] == 1
    app = out["calls"]["app"]
    assert (app["requests"], app["errors"], app["retries"]) == (0, 1, 0)
    [(_, output, error, _)] = rows_of(home, out["run_id"])
    assert output is None
    assert QUOTA_ERROR.format(url=sdk_env.openai_base_url) in error
    assert "attempts" not in error and "\n" not in error
