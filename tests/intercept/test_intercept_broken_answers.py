"""A 2xx answer the app's client cannot read (a cut-off JSON body, a gateway's HTML page sent
as JSON, a stream cut before its end) is retried like a 5xx and never recorded: recorded, it
would be replayed on every later run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

import harness
from harness.errors import ProviderResponseError
from harness.testing import FakeLLMServer

RETRIES = "[calls]\nmax_retries = 2\nretry_base_delay_s = 0.01\nretry_max_delay_s = 0.02\n"


def ask(client: openai.OpenAI, text: str, **params: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **params
    )


def streamed(client: openai.OpenAI, text: str) -> str:
    chunks = ask(client, text, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_broken_body_is_retried_and_the_good_answer_recorded(
    llm: FakeLLMServer, tmp_path: Path, home: Path, stream: bool
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    # The fake's "malformed": a 200 application/json body cut in half, then an HTML page;
    # for a stream request a stream with an event's JSON cut in half, then one cut off in
    # the middle of an event.
    llm.configure(fault_script=["malformed", "malformed", "ok"])
    client = openai.OpenAI(max_retries=0)
    with harness.replay(cassette, mode="use", home=home) as recorder:
        answer = streamed(client, "Q?") if stream else ask(client, "Q?").choices[0].message.content
    assert answer.startswith("Answer:")
    assert recorder.stats["app"]["retries"] == 2 and recorder.written == 1
    assert llm.stats()["faults"]["malformed"] == 2
    with harness.replay(cassette, home=home):  # replays the good answer
        again = streamed(client, "Q?") if stream else ask(client, "Q?").choices[0].message.content
    assert again == answer


def test_a_body_broken_every_time_fails_and_is_not_recorded(
    llm: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    llm.configure(fault_script=["malformed"] * 3)
    client = openai.OpenAI(max_retries=0)
    with (
        pytest.raises(ProviderResponseError, match="HTTP 200 from .* not JSON") as failed,
        harness.replay(cassette, mode="use", home=home),
        pytest.raises(openai.APIStatusError) as handed,
    ):
        ask(client, "Q?")
    assert failed.value.retryable
    assert handed.value.status_code == 502 and "not JSON" in str(handed.value)
    assert not cassette.exists()  # nothing recorded: no cassette
    with harness.replay(cassette, mode="use", home=home) as recorder:  # sent again, now good
        assert ask(client, "Q?").choices[0].message.content.startswith("Answer:")
    assert recorder.written == 1 and llm.stats()["requests_total"] == 4


class _Streams:
    """A loopback LLM server answering every POST with the next of ``bodies``, as SSE."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.sent = 0
        self.content_type = "text/event-stream"
        streams = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                body = streams.bodies[min(streams.sent, len(streams.bodies) - 1)].encode()
                streams.sent += 1
                self.send_response(200)
                self.send_header("content-type", streams.content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Streams]:
    server = _Streams()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    yield server
    server.server.shutdown()
    server.server.server_close()


def sse(*events: Any) -> str:
    """The events as a stream; one with a ``type`` is named by it, as Anthropic's are."""
    return "".join(
        (f"event: {e['type']}\n" if isinstance(e, dict) and "type" in e else "")
        + f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n"
        for e in events
    )


def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


CUT = sse(chunk("Hel"))  # the connection closed before the answer ended
WHOLE = sse(chunk("Hel"), chunk("lo"), chunk(None, "stop"), "[DONE]")


def test_a_stream_cut_before_its_end_is_retried(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    streams.bodies = [CUT, WHOLE]
    with harness.replay(cassette, mode="use", home=home) as recorder:
        assert streamed(openai.OpenAI(max_retries=0), "Q?") == "Hello"
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1
    assert "[DONE]" in cassette.read_text()


def test_a_stream_that_never_ends_fails_and_is_not_recorded(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    streams.bodies = [CUT]
    with (
        pytest.raises(ProviderResponseError, match="stream that stops before its end"),
        harness.replay(cassette, mode="use", home=home),
        pytest.raises(openai.APIStatusError),
    ):
        streamed(openai.OpenAI(max_retries=0), "Q?")
    assert streams.sent == 3 and not cassette.exists()  # nothing recorded: no cassette


def test_a_stream_with_an_event_that_is_not_json_is_retried(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    """A stream whose events ran to [DONE] but one of whose data lines was JSON cut in half
    was stored as a good answer: the SDK raised JSONDecodeError reading it, on this run and
    on every replay. It is now retried like a cut stream, and never stored."""
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    garbled = sse(chunk("Hel")) + 'data: {"id": "c1", "object": "chat.comp\n\n' + WHOLE
    streams.bodies = [garbled, WHOLE]
    with harness.replay(cassette, mode="use", home=home) as recorder:
        assert streamed(openai.OpenAI(max_retries=0), "Q?") == "Hello"
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1
    assert "chat.comp\\n" not in cassette.read_text() and streams.sent == 2
    cassette.unlink()
    streams.bodies, streams.sent = [garbled], 0
    with (
        pytest.raises(ProviderResponseError, match="a stream with an event that is not JSON"),
        harness.replay(cassette, mode="use", home=home),
        pytest.raises(openai.APIStatusError),
    ):
        streamed(openai.OpenAI(max_retries=0), "Q?")
    assert streams.sent == 3 and not cassette.exists()


def _ollama_chunks() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two chunks of an Ollama /api/chat stream: "Hi", then the last ("done": true)."""
    head = {"model": "m", "created_at": "2026-01-01T00:00:00Z"}
    hi = {**head, "message": {"role": "assistant", "content": "Hi"}, "done": False}
    done = {**head, "message": {"role": "assistant", "content": ""}, "done": True}
    return hi, done


def test_an_ndjson_stream_with_a_line_that_is_not_json_is_retried(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    hi, done = _ollama_chunks()
    streams.content_type = "application/x-ndjson"
    whole = "".join(json.dumps(c) + "\n" for c in (hi, done))
    streams.bodies = [json.dumps(hi)[:20] + "\n" + whole, whole]
    question = {"model": "m", "messages": [{"role": "user", "content": "Q?"}], "stream": True}
    with (
        harness.replay(cassette, mode="use", home=home) as recorder,
        httpx.stream("POST", streams.url + "/api/chat", json=question) as response,
    ):
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [c["done"] for c in lines] == [False, True]
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1


def test_a_stream_that_finishes_without_done_is_kept(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    # Some OpenAI-compatible servers never send [DONE]; a chunk with a finish reason ends
    # the answer as well, so their calls are recorded.
    cassette = tmp_path / "c.jsonl"
    streams.bodies = [sse(chunk("Hi"), chunk(None, "stop"))]
    with harness.replay(cassette, mode="use", home=home) as recorder:
        assert streamed(openai.OpenAI(max_retries=0), "Q?") == "Hi"
    assert recorder.written == 1 and streams.sent == 1


def test_an_anthropic_stream_without_message_stop_is_retried(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    start = {
        "type": "message_start",
        "message": {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }
    text = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": text}
    piece = {"type": "text_delta", "text": "Hi"}
    delta = {"type": "content_block_delta", "index": 0, "delta": piece}
    cut = sse(start, block, delta)
    usage = {"output_tokens": 1}
    end = sse(
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage},
        {"type": "message_stop"},
    )
    streams.bodies = [cut, cut + end]
    client = anthropic.Anthropic(max_retries=0)
    question = [{"role": "user", "content": "Q?"}]
    with (
        harness.replay(cassette, mode="use", home=home) as recorder,
        client.messages.stream(model="claude", max_tokens=9, messages=question) as events,
    ):
        assert "".join(events.text_stream) == "Hi"
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1
    assert "message_stop" in cassette.read_text()


def test_an_ollama_stream_that_fails_midway_is_retried(
    streams: _Streams, tmp_path: Path, home: Path
) -> None:
    # Ollama streams NDJSON; a model that fails midway ends it with an error line, never with
    # the "done": true chunk (and a client reading it raises on that line).
    (home / "harness.toml").write_text(RETRIES)
    cassette = tmp_path / "c.jsonl"
    hi, done = _ollama_chunks()
    done.update(done_reason="stop", prompt_eval_count=1, eval_count=1)
    failed = {"error": "an error was encountered while running the model"}
    streams.content_type = "application/x-ndjson"
    streams.bodies = [
        "".join(json.dumps(c) + "\n" for c in body) for body in ([hi, failed], [hi, done])
    ]
    question = {"model": "m", "messages": [{"role": "user", "content": "Q?"}], "stream": True}

    def ask_ollama() -> str:
        with httpx.stream("POST", streams.url + "/api/chat", json=question) as response:
            chunks = [json.loads(line) for line in response.iter_lines() if line]
        assert all("error" not in c for c in chunks), chunks
        return "".join(c["message"]["content"] for c in chunks)

    with harness.replay(cassette, mode="use", home=home) as recorder:
        assert ask_ollama() == "Hi"
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1
    assert "error" not in cassette.read_text()
    with harness.replay(cassette, home=home):
        assert ask_ollama() == "Hi"
