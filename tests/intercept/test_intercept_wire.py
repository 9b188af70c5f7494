"""An HTTP call as a keyed request; a stored answer back as the response the client reads."""

from __future__ import annotations

import asyncio
import json

import httpx
import httpx2
import pytest

from harness.cache import canonical_key, canonical_request, request_key
from harness.calls.limits import RateLimits
from harness.intercept.answers import answer_end, stream_ended, summary
from harness.intercept.app_provider import app_provider
from harness.intercept.credentials import environment_secrets, find_secret, header_secrets
from harness.intercept.wire import (
    app_request,
    broken,
    envelope,
    envelope_body,
    error_response,
    http_response,
    json_call,
    key_url,
)
from harness.testing._fake_llm_replies import Reply
from harness.testing._fake_llm_streams import anthropic_events, ollama_lines, openai_chunks

CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hi"}],
    "temperature": 0,
    "stream": False,
}


def keyed(body: object, url: str = "https://api.openai.com/v1/chat/completions", **kw):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = kw.pop("headers", [("authorization", "Bearer sk-secret-000"), ("user-agent", "x")])
    raw = [(name.encode(), value.encode()) for name, value in headers]
    return app_request("openai", kw.pop("method", "POST"), httpx.URL(url), raw, content)


def test_a_chat_call_keys_like_a_model_request() -> None:
    request = keyed(CHAT)
    canonical = canonical_request(request)
    assert canonical == {
        "key_schema": 1,
        "provider": "http",
        "base_url": "https://api.openai.com/v1/chat/completions",
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "params": {"temperature": 0.0, "stream": False},
        "sample_index": 0,
    }
    assert request.http is not None
    assert request.http.headers == [("authorization", "Bearer sk-secret-000"), ("user-agent", "x")]


def test_what_never_changes_the_key() -> None:
    base = request_key(keyed(CHAT))
    other_headers = [
        ("authorization", "Bearer another-key-111"),
        ("x-stainless-retry-count", "1"),
        ("idempotency-key", "abc"),
        ("user-agent", "OpenAI/Python 3.0"),
    ]
    assert request_key(keyed(CHAT, headers=other_headers)) == base
    reordered = json.dumps(dict(reversed(list(CHAT.items())))).encode()
    assert request_key(keyed(reordered)) == base
    assert request_key(keyed(CHAT, url="https://API.OPENAI.COM:443/v1/chat/completions")) == base


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"stream": True},
        {"model": "gpt-4o"},
        {"messages": [{"role": "user", "content": "Hi!"}]},
        {"max_tokens": 5},
    ],
)
def test_what_changes_the_key(change: dict) -> None:
    assert request_key(keyed({**CHAT, **change})) != request_key(keyed(CHAT))


def test_the_url_is_keyed_without_credentials() -> None:
    assert key_url("HTTPS", "Host.Example", 8443, "/v1/x", "b=2&api-version=1&key=s3cret") == (
        "https://host.example:8443/v1/x?api-version=1&b=2"
    )
    for name in ("key", "api_key", "access_token", "sig", "X-Amz-Signature", "password"):
        assert key_url("https", "h", None, "/p", f"{name}=v") == "https://h/p"
    azure = (
        "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-06-01"
    )
    assert keyed(CHAT, url=azure).base_url == azure
    assert keyed(CHAT, url=azure + "&api-key=s3cret").base_url == azure


def test_embeddings_and_responses_keep_their_input_in_params() -> None:
    request = keyed({"model": "emb", "input": ["a", "b"], "encoding_format": "float"})
    assert request.messages == () and request.model == "emb"
    assert request.params == {"input": ["a", "b"], "encoding_format": "float"}
    odd = keyed({"model": "m", "messages": "not a list"})
    assert odd.messages == () and odd.params == {"messages": "not a list"}


@pytest.mark.parametrize(
    "body",
    [
        CHAT,
        {"model": "emb", "input": ["a", "b"], "encoding_format": "float"},
        {"model": "m", "messages": "not a list", "max_tokens": 5.0},
        {"messages": [{"role": "user", "content": None, "name": "x"}], "stop": "END"},
        {"model": "claude", "system": "s", "messages": [], "temperature": 1},
    ],
)
@pytest.mark.parametrize("sample", [0, 2])
def test_a_call_is_keyed_before_its_request_is_made_as_it_would_be_after(
    body: dict, sample: int
) -> None:
    """A hit is keyed from the parsed body alone (``JSONCall.canonical``); a miss makes the
    request: both must name one entry."""
    content = json.dumps(body).encode()
    url = httpx.URL("https://api.openai.com/v1/chat/completions?api-version=1&key=sk-x")
    call = json_call("openai", "POST", url, content)
    assert call is not None
    request = call.request([(b"authorization", b"Bearer sk-secret-000")], None, {}, sample)
    assert request.sample_index == sample and request.http is not None
    assert call.canonical(sample) == canonical_request(request)
    assert canonical_key(call.canonical(sample)) == request_key(request)
    made = keyed(body, url=str(url))
    assert made is not None
    assert request_key(made) == canonical_key(call.canonical(0))


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", CHAT), ("POST", b"not json"), ("POST", b"[1, 2]"), ("POST", b"\xff\xfe{")],
)
def test_only_json_object_posts_are_keyed(method: str, body: object) -> None:
    assert keyed(body, method=method) is None


def test_envelopes_round_trip() -> None:
    body = {"id": "x", "choices": [{"message": {"content": "Hé"}}], "usage": {"prompt_tokens": 3}}
    raw = envelope(200, "application/json; charset=utf-8", json.dumps(body).encode())
    assert raw == {"status": 200, "content_type": "application/json; charset=utf-8", "json": body}
    assert json.loads(envelope_body(raw)) == body
    stream = "data: {}\n\ndata: [DONE]\n\n"
    assert envelope(200, "text/event-stream", stream.encode())["text"] == stream
    binary = bytes(range(256))
    raw = envelope(200, "audio/mpeg", binary)
    assert "base64" in raw and envelope_body(raw) == binary
    assert envelope(200, "application/json", b"{cut")["text"] == "{cut"


@pytest.mark.parametrize("module", [httpx, httpx2])
def test_a_stored_answer_is_a_response_of_the_clients_own_package(module) -> None:
    raw = envelope(200, "text/event-stream", b"data: 1\n\n")
    response = http_response(module, raw)
    assert isinstance(response, module.Response)
    assert response.headers["content-type"] == "text/event-stream"
    assert list(response.iter_bytes()) == [b"data: 1\n\n"]  # read by the client, as a stream


@pytest.mark.parametrize("module", [httpx, httpx2])
def test_a_stored_answer_reads_every_way_a_client_reads_one(module) -> None:
    raw = envelope(200, "application/json", b'{"a": [1, 2]}')
    body = envelope_body(raw)

    def answer(request):
        return http_response(module, raw)

    with module.Client(transport=module.MockTransport(answer)) as client:
        whole = client.post("http://llm.test/v1/x", content=b"{}")
        assert whole.json() == {"a": [1, 2]}
        assert whole.elapsed.total_seconds() >= 0
        with client.stream("POST", "http://llm.test/v1/x", content=b"{}") as streamed:
            assert b"".join(streamed.iter_bytes()) == body
            assert list(streamed.iter_lines()) == [body.decode()]
        assert streamed.is_closed
        with client.stream("POST", "http://llm.test/v1/x", content=b"{}") as streamed:
            assert b"".join(streamed.iter_raw()) == body  # the stream itself, read once
            with pytest.raises(module.StreamConsumed):
                list(streamed.iter_raw())

    async def read_async() -> None:
        async with module.AsyncClient(transport=module.MockTransport(answer)) as client:
            assert (await client.post("http://llm.test/v1/x", content=b"{}")).json() == {
                "a": [1, 2]
            }
            async with client.stream("POST", "http://llm.test/v1/x", content=b"{}") as streamed:
                assert b"".join([chunk async for chunk in streamed.aiter_bytes()]) == body

    asyncio.run(read_async())


def test_error_answers_stop_sdk_retries_and_speak_the_apis_shape() -> None:
    openai_error = error_response(httpx, "openai", 424, "harness_replay_miss", "no answer")
    openai_error.read()
    assert openai_error.status_code == 424
    assert openai_error.headers["x-should-retry"] == "false"
    assert openai_error.json()["error"]["message"] == "no answer"
    anthropic_error = error_response(httpx, "anthropic", 502, "harness_upstream_error", "down")
    anthropic_error.read()
    assert anthropic_error.json() == {
        "type": "error",
        "error": {"type": "harness_upstream_error", "message": "down"},
    }


def test_summaries_of_each_api() -> None:
    chat = {
        "choices": [{"message": {"content": "A"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    responses = {
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "B"}]}],
        "usage": {"input_tokens": 4, "output_tokens": 2},
    }
    messages = {
        "content": [{"type": "text", "text": "C"}],
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    embeddings = {"data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": 7, "total_tokens": 7}}
    for body, expected in (
        (chat, ("A", 5, 1)),
        (responses, ("B", 4, 2)),
        (messages, ("C", 3, 1)),
        (embeddings, ("", 7, None)),
    ):
        assert (
            summary({"status": 200, "content_type": "application/json", "json": body}) == expected
        )


def test_summaries_of_streams() -> None:
    reply = Reply(text="Answer: one two", truncated=False, input_tokens=6, output_tokens=3)
    for events in (
        openai_chunks(reply, "m", 1, include_usage=True),
        anthropic_events(reply, "m", 1),
    ):
        raw = {"status": 200, "content_type": "text/event-stream", "text": "".join(events)}
        assert summary(raw) == ("Answer: one two", 6, 3)
    plain = openai_chunks(reply, "m", 1, include_usage=False)
    raw = {"status": 200, "content_type": "text/event-stream", "text": "".join(plain)}
    assert summary(raw) == ("Answer: one two", None, None)


def test_ollama_streams_are_read_as_ndjson() -> None:
    # Ollama streams unless told not to: one JSON object a line, counts and reason in the last.
    reply = Reply(text="Answer: one two", truncated=True, input_tokens=6, output_tokens=3)
    answer = {
        "model": "m",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": reply.text},
        "done_reason": "length",
        "done": True,
        "prompt_eval_count": 6,
        "eval_count": 3,
    }
    content = "".join(ollama_lines(reply, answer)).encode()
    raw = envelope(200, "application/x-ndjson", content)
    assert raw["text"] == content.decode() and envelope_body(raw) == content  # byte for byte
    assert summary(raw) == ("Answer: one two", 6, 3)
    assert answer_end(raw) == {**answer, "message": {"role": "assistant", "content": ""}}
    assert app_provider("ollama", "m", None).stopped_early(raw) == (
        "the answer was cut off at its token limit (done_reason 'length')"
    )
    generate = (
        b'{"model":"m","response":"Hi","done":false}\r\n'
        b'{"model":"m","response":" there","done":false}\n'
        b'{"model":"m","response":"","done":true,"done_reason":"stop",'
        b'"prompt_eval_count":2,"eval_count":2}\n\n'
    )
    raw = envelope(200, "application/x-ndjson; charset=utf-8", generate)
    assert summary(raw) == ("Hi there", 2, 2)
    assert answer_end(raw) is not None and answer_end(raw)["done_reason"] == "stop"
    unfinished = envelope(200, "application/x-ndjson", content.rsplit(b"\n", 2)[0] + b"\n")
    assert summary(unfinished) == ("Answer: one two", None, None)
    assert answer_end(unfinished) is None


def test_streams_end_as_their_format_says() -> None:
    reply = Reply(text="Answer: one two", truncated=False, input_tokens=6, output_tokens=3)
    for events in (
        openai_chunks(reply, "m", 1, include_usage=True),
        anthropic_events(reply, "m", 1),
    ):
        assert stream_ended("".join(events))
        assert not stream_ended("".join(events[:-3]))  # cut before the finish / message_stop
    responses = [
        'data: {"type":"response.created","response":{"error":null}}\n\n',
        'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
    ]
    done = 'data: {"type":"response.completed","response":{"error":null}}\n\n'
    assert not stream_ended("".join(responses)) and stream_ended("".join([*responses, done]))
    error = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'
    assert not stream_ended("".join(anthropic_events(reply, "m", 1)[:-3]) + error)
    assert stream_ended('data: {"candidates":[]}\n\n')  # a format without an end: any event
    assert stream_ended("data: hello\n\ndata: world\n\n")  # text tokens are events too
    assert not stream_ended(": a comment, no data\n\n")
    assert not stream_ended("")


def test_broken_answers() -> None:
    def raw(content_type: str, content: bytes) -> dict[str, object]:
        return envelope(200, content_type, content)

    assert broken(raw("application/json", b'{"id": "x"}')) is None
    assert broken(raw("application/json", b'{"id": "x", "cho')) == "a body that is not JSON"
    page = b"<html><body>502 Bad Gateway</body></html>"
    assert broken(raw("application/json; charset=utf-8", page)) == "a body that is not JSON"
    assert broken(raw("text/html", page)) == "an HTML page"
    assert broken(raw("text/event-stream", b'data: {"choices":[]}\n\n')) == (
        "a stream that stops before its end"
    )
    ollama = b'{"message":{"content":"Hi"},"done":false}\n'
    done = b'{"message":{"content":""},"done":true,"done_reason":"stop"}\n'
    assert broken(raw("application/x-ndjson", ollama + done)) is None
    assert broken(raw("application/x-ndjson", ollama)) == "a stream that stops before its end"
    failed = ollama + b'{"error":"the model failed"}\n'
    assert broken(raw("application/x-ndjson", failed)) == "a stream that stops before its end"
    assert broken(raw("application/x-ndjson", b'{"id":1}\n{"id":2}\n')) is None  # no format
    assert broken(raw("text/plain", b"fine")) is None
    assert broken(raw("application/octet-stream", b"\x00\x01")) is None


def test_credentials_are_found_by_name_never_shown() -> None:
    env = {
        "OPENAI_API_KEY": "sk-live-1234567890",
        "MY_SERVICE_TOKEN": "tok-abcdefgh",
        "SHORT_TOKEN": "x",
        "HOME": "/root",
    }
    found = environment_secrets(env)
    assert found == {"OPENAI_API_KEY": "sk-live-1234567890", "MY_SERVICE_TOKEN": "tok-abcdefgh"}
    headers = header_secrets(
        [
            ("Authorization", "Bearer sk-live-1234567890"),
            ("x-api-key", "ant-key-99999"),
            (b"X-Portkey-Api-Key", b"pk-gateway-5555"),
            ("Idempotency-Key", "stainless-python-retry-1234"),
            ("accept", "json"),
        ]
    )
    assert headers == {
        "the authorization header": "sk-live-1234567890",
        "the x-api-key header": "ant-key-99999",
        "the x-portkey-api-key header": "pk-gateway-5555",
    }
    assert find_secret('{"q": "sk-live-1234567890"}', found) == "OPENAI_API_KEY"
    assert find_secret('{"q": "hello"}', found) is None


def test_app_calls_are_held_to_their_apis_rate_limits() -> None:
    limits = RateLimits({"providers": {"openai": {"requests_per_minute": 5}}})
    url = "http://127.0.0.1:8000/v1/chat/completions"
    app = app_provider("openai", "gpt-4o-mini", url)
    assert app.uri == "openai:/gpt-4o-mini"  # priced like harness's own calls to the model
    assert limits.limits_for(app) == {"requests_per_minute": 5}
    assert limits.limiter(app) is not None
    assert limits.limiter(app) is limits.limiter(app_provider("openai", "gpt-4o-mini", url))
    assert limits.limiter(app_provider("anthropic", "claude-haiku-4-5", None)) is None
