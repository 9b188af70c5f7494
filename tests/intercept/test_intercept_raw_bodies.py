"""An app that reads its answers' raw text gets the same bytes on its cold run as on every
rerun and replay: the run and its replay are the same run, byte for byte. Each row goes one
way: the openai SDK (sync, async, streamed), the anthropic SDK (whole, streamed), plain httpx
and an Ollama NDJSON stream, each returning the body text it was handed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer

APP = """
import asyncio
import os

import anthropic
import httpx
import openai


def _ask(row):
    return [{"role": "user", "content": row["input"]}]


async def _openai_async(row):
    async with openai.AsyncOpenAI() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=_ask(row)
        )
        return raw.http_response.text


def answer(row):
    via = row["via"]
    if via == "openai":
        raw = openai.OpenAI().chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=_ask(row)
        )
        return raw.http_response.text
    if via == "openai_async":
        return asyncio.run(_openai_async(row))
    if via == "openai_stream":
        with openai.OpenAI().chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=_ask(row), stream=True
        ) as raw:
            return raw.read().decode()
    if via == "anthropic":
        raw = anthropic.Anthropic().messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=32, messages=_ask(row)
        )
        return raw.http_response.text
    if via == "anthropic_stream":
        with anthropic.Anthropic().messages.with_streaming_response.create(
            model="claude-haiku-4-5", max_tokens=32, messages=_ask(row), stream=True
        ) as raw:
            return raw.read().decode()
    if via == "httpx":
        return httpx.post(
            os.environ["OPENAI_BASE_URL"] + "/chat/completions",
            headers={"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
            json={"model": "gpt-4o-mini", "messages": _ask(row)},
        ).text
    if via == "ollama":
        return httpx.post(
            os.environ["OLLAMA_HOST"] + "/api/chat",
            json={"model": "llama3.2", "messages": _ask(row)},
        ).text
    raise ValueError(via)
"""

WAYS = (
    "openai",
    "openai_async",
    "openai_stream",
    "anthropic",
    "anthropic_stream",
    "httpx",
    "ollama",
)


def invoke(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, list(args))
    out = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def outputs(run_id: str) -> dict[str, str]:
    code, shown, err = invoke("runs", "show", run_id, "--rows", "--json")
    assert code == 0, err
    assert all(row["error"] is None for row in shown["rows_table"]), shown["rows_table"]
    return {row["input"]: row["output"] for row in shown["rows_table"]}


def test_the_cold_run_hands_the_app_the_bytes_its_replay_does(
    own_llm: FakeLLMServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", own_llm.url)
    (tmp_path / "app_raw_bodies.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"input": f"Q {way}?", "via": way}) + "\n" for way in WAYS))
    assert invoke("data", "import", str(data), "--name", "ways")[0] == 0
    run = ("run", "--data", "ways", "--model", "python:app_raw_bodies:answer",
           "--no-mlflow", "--json")  # fmt: skip

    code, cold, err = invoke(*run)
    assert code == 0, err
    assert cold["calls"]["app"]["requests"] == len(WAYS)  # every answer came from the server
    assert cold["calls"]["app"]["cache_hits"] == 0
    recorded = outputs(cold["run_id"])
    assert len(recorded) == len(WAYS) and all(recorded.values())

    own_llm.stop()
    code, replayed, err = invoke(*run, "--cache", "replay")
    assert code == 0, err
    assert replayed["calls"]["app"]["cache_hits"] == len(WAYS)
    assert outputs(replayed["run_id"]) == recorded
    # What both got: a JSON body written compact with its keys sorted, a stream as it came.
    body = json.loads(recorded["Q openai?"])
    assert recorded["Q openai?"] == json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert recorded["Q openai_stream?"].startswith("data: {")


SURROGATE_APP = """
import os

import httpx
import openai


def answer(row):
    if row["via"] == "openai":
        raw = openai.OpenAI().chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": row["input"]}]
        )
        return raw.http_response.text + " | " + ascii(raw.parse().choices[0].message.content)
    # A request body holding a lone surrogate escape too: JSON text any parser reads.
    return httpx.post(
        os.environ["OPENAI_BASE_URL"] + "/chat/completions",
        headers={"content-type": "application/json"},
        content=b'{"model":"m","messages":[{"role":"user","content":"q \\\\%s"}]}'
        % os.environ.get("ASK_ESCAPE", "udc00").encode(),
    ).text
"""

# What a server may answer: valid JSON text whose string holds a lone surrogate escape.
SURROGATE_BODY = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"x\\ud800y"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)


@pytest.fixture
def surrogate_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(SURROGATE_BODY)))
            self.end_headers()
            self.wfile.write(SURROGATE_BODY)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    yield server
    server.shutdown()
    server.server_close()


def surrogate_app(
    folder: Path, monkeypatch: pytest.MonkeyPatch, rows: dict[str, str]
) -> tuple[str, ...]:
    """The app calling the surrogate server, importable, and dataset ``odd`` of ``rows``
    (input -> the client it calls with); the `harness run` arguments that run it."""
    (folder / "app_surrogates.py").write_text(SURROGATE_APP)
    monkeypatch.syspath_prepend(str(folder))
    data = folder / "q.jsonl"
    data.write_text("".join(json.dumps({"input": q, "via": via}) + "\n" for q, via in rows.items()))
    assert invoke("data", "import", str(data), "--name", "odd")[0] == 0
    return ("run", "--data", "odd", "--model", "python:app_surrogates:answer", "--no-mlflow")


def test_a_lone_surrogate_escape_in_a_body_is_stored_and_replayed_byte_for_byte(
    surrogate_server: ThreadingHTTPServer,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = (*surrogate_app(tmp_path, monkeypatch, {"Q?": "openai", "R?": "httpx"}), "--json")

    code, cold, err = invoke(*run)
    assert code == 0, err
    assert cold["calls"]["app"]["requests"] == 2
    recorded = outputs(cold["run_id"])
    # The body as JSON writes it, keys sorted, the surrogate kept as its escape.
    body = json.dumps(json.loads(SURROGATE_BODY), sort_keys=True, separators=(",", ":"))
    assert recorded == {"Q?": body + " | 'x\\ud800y'", "R?": body}

    code, hits, err = invoke(*run)
    assert code == 0, err
    assert hits["calls"]["app"]["cache_hits"] == 2
    assert outputs(hits["run_id"]) == recorded

    surrogate_server.shutdown()
    code, replayed, err = invoke(*run, "--cache", "replay")
    assert code == 0, err
    assert replayed["calls"]["app"]["cache_hits"] == 2
    assert outputs(replayed["run_id"]) == recorded
    code, verified, err = invoke("cache", "verify", "--json")
    assert code == 0, err
    assert verified == {"entries": 2, "problems": []}


def test_a_replay_miss_on_a_body_with_a_lone_surrogate_names_it(
    surrogate_server: ThreadingHTTPServer,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = surrogate_app(tmp_path, monkeypatch, {"R?": "httpx"})
    assert invoke(*run)[0] == 0

    monkeypatch.setenv("ASK_ESCAPE", "udc01")  # the app now asks with another surrogate
    code, _, err = invoke(*run, "--cache", "replay")
    assert code == 1, err
    assert err.splitlines()[-1].startswith("error: 1 of 1 rows failed"), err
    assert (
        'prompt differs at character 3 (message 0, user): "q \\udc01" (cached: "q \\udc00")' in err
    )
