"""A live answer reaches the app with the server's own headers (request ids, rate limits),
less cookies, credentials and how the bytes came; a replayed one has none of them, and no
cassette ever holds one."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import harness

KEY = "sk-sentinel-headers-1a2b3c4d5e6f"
CHAT = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
MESSAGE = {
    "id": "m1",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-latest",
    "content": [{"type": "text", "text": "Paris"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
SERVER_HEADERS = [
    ("x-request-id", "req_openai_1"),
    ("request-id", "req_anthropic_1"),
    ("x-ratelimit-remaining-requests", "59"),
    ("x-ratelimit-remaining-tokens", "149000"),
    ("openai-processing-ms", "12"),
    ("set-cookie", "__cf_bm=abc123; path=/; HttpOnly"),
    ("x-debug-echo", f"Bearer {KEY}"),  # a careless proxy echoing the key
    ("x-session-token", "tok-not-for-the-app-1234"),
]


class _Server:
    """A loopback LLM server answering every POST with ``status`` and SERVER_HEADERS."""

    def __init__(self) -> None:
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                if server.status != 200:
                    data: Any = {"error": {"message": "boom", "type": "server_error"}}
                else:
                    data = MESSAGE if self.path.endswith("/messages") else CHAT
                body = json.dumps(data).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in SERVER_HEADERS:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[_Server]:
    (home / "harness.toml").write_text("[calls]\nmax_retries = 0\n")
    served = _Server()
    thread = threading.Thread(target=served.http.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", served.url + "/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", served.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    yield served
    served.http.shutdown()
    served.http.server_close()


def ask_openai() -> Any:
    return openai.OpenAI(max_retries=0).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}]
    )


async def ask_openai_async() -> Any:
    client = openai.AsyncOpenAI(max_retries=0)
    return await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of Egypt?"}]
    )


def ask_anthropic() -> Any:
    return anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=10,
        messages=[{"role": "user", "content": "Capital of France?"}],
    )


def test_a_live_answer_keeps_the_servers_safe_headers(server: _Server, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        raw = ask_openai()
        message = ask_anthropic()
        sent_async = asyncio.run(ask_openai_async())  # sent from harness's own client
    assert sent_async.parse()._request_id == "req_openai_1"
    assert "set-cookie" not in sent_async.headers
    assert raw.parse()._request_id == "req_openai_1"  # what the SDK reads, as without harness
    assert message._request_id == "req_anthropic_1"
    assert raw.headers["x-ratelimit-remaining-requests"] == "59"
    assert raw.headers["x-ratelimit-remaining-tokens"] == "149000"
    assert raw.headers["content-type"] == "application/json"
    for dropped in ("set-cookie", "x-debug-echo", "x-session-token"):
        assert dropped not in raw.headers
    assert raw.parse().choices[0].message.content == "Paris"

    # From the cassette: the answer, not the headers of a call made long ago.
    with harness.replay(cassette):
        replayed = ask_openai()
        message = ask_anthropic()
    assert replayed.parse()._request_id is None and message._request_id is None
    assert "x-ratelimit-remaining-requests" not in replayed.headers
    written = cassette.read_text()
    for told in ("req_openai_1", "req_anthropic_1", "ratelimit", "__cf_bm", KEY, "tok-not"):
        assert told not in written


def test_a_live_error_keeps_the_request_id(server: _Server, tmp_path: Path) -> None:
    server.status = 500
    with (
        pytest.raises(harness.HarnessError),
        harness.replay(tmp_path / "c.jsonl", mode="use"),
        pytest.raises(openai.InternalServerError) as failed,
    ):
        ask_openai()
    assert failed.value.request_id == "req_openai_1"
    assert failed.value.response.headers["x-should-retry"] == "false"  # harness retried
    assert "set-cookie" not in failed.value.response.headers
    assert not (tmp_path / "c.jsonl").exists()
