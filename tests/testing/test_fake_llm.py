"""The fake LLM server: wire formats, auth, replies, faults, stats, runtime config, lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import harness.testing
from harness.errors import ConfigError, HarnessError
from harness.testing import FakeLLMConfig, FakeLLMServer

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAI_AUTH = {"Authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def running() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(running: FakeLLMServer) -> FakeLLMServer:
    """The module's server, back to default settings and zero counters."""
    running.configure(**FakeLLMConfig().as_dict())
    running.reset()
    return running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as http:
        yield http


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **extra}


def openai(client: httpx.Client, server: FakeLLMServer, body: dict[str, Any]) -> httpx.Response:
    return client.post(server.openai_base_url + "/chat/completions", json=body, headers=OPENAI_AUTH)


def openai_text(client: httpx.Client, server: FakeLLMServer, body: dict[str, Any]) -> str:
    response = openai(client, server, body)
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def test_public_api() -> None:
    assert harness.testing.__all__ == ["FakeLLMConfig", "FakeLLMServer", "SparkConnectServer"]
    assert server_urls(FakeLLMServer(port=1234)) == (
        "http://127.0.0.1:1234",
        "http://127.0.0.1:1234/v1",
        "http://127.0.0.1:1234",
    )


def server_urls(server: FakeLLMServer) -> tuple[str, str, str]:
    return server.url, server.openai_base_url, server.anthropic_base_url


def test_openai_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    body = chat("What is the capital of France? Answer briefly.", n=3, temperature=0)
    body["messages"].insert(0, {"role": "system", "content": "You are terse."})
    data = openai(client, server, body).json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-test"
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Answer: What is the capital of France?"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # Words: 3 system + 8 user in, 7 out.
    assert data["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def test_openai_json_response_format_and_content_parts(
    server: FakeLLMServer, client: httpx.Client
) -> None:
    parts = [{"type": "text", "text": "Name a colour."}]
    body = chat("", response_format={"type": "json_object"})
    body["messages"][0]["content"] = parts
    assert json.loads(openai_text(client, server, body)) == {"answer": "Name a colour."}


def test_max_tokens_cuts_the_answer(server: FakeLLMServer, client: httpx.Client) -> None:
    data = openai(client, server, chat("one two three four five six", max_tokens=3)).json()
    assert data["choices"][0]["message"]["content"] == "Answer: one two"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic x"}])
def test_openai_and_databricks_need_a_bearer_token(
    server: FakeLLMServer, client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.post(
        server.openai_base_url + "/chat/completions", json=chat("hi"), headers=headers
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_api_key",
        None,
    )
    response = client.post(
        server.url + "/serving-endpoints/my-llm/invocations", json=chat("hi"), headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert server.stats()["by_status"] == {"401": 2}


def test_bad_request_bodies_are_400(server: FakeLLMServer, client: httpx.Client) -> None:
    url = server.openai_base_url + "/chat/completions"
    assert client.post(url, content=b"{not json", headers=OPENAI_AUTH).status_code == 400
    assert client.post(url, json={"model": "m"}, headers=OPENAI_AUTH).status_code == 400
    assert client.post(url, json={"messages": []}, headers=OPENAI_AUTH).status_code == 400
    responses = server.openai_base_url + "/responses"
    assert client.post(responses, json={"input": "hi"}, headers=OPENAI_AUTH).status_code == 400
    embeddings = server.openai_base_url + "/embeddings"
    for bad in ({"input": "x"}, {"model": "m", "input": []}, {"model": "m", "input": [1, 2]}):
        assert client.post(embeddings, json=bad, headers=OPENAI_AUTH).status_code == 400
    assert client.post(embeddings, json={"model": "m", "input": "x"}).status_code == 401


def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event, parsed as the SSE spec says."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


def test_openai_chat_stream(server: FakeLLMServer, client: httpx.Client) -> None:
    body = chat("Stream this answer. Please.", stream=True, stream_options={"include_usage": True})
    events = sse_events(openai(client, server, body))
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == openai_text(client, server, chat("Stream this answer. Please."))
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]][-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert all(c["usage"] is None for c in chunks[:-1])
    plain = sse_events(openai(client, server, chat("Stream this answer.", stream=True)))
    assert all("usage" not in json.loads(data) for _, data in plain[:-1])


def test_anthropic_message_stream(server: FakeLLMServer, client: httpx.Client) -> None:
    body = chat("Stream it. Now.", max_tokens=2, stream=True)
    response = client.post(server.url + "/v1/messages", json=body, headers=ANTHROPIC_AUTH)
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for _, d in events]
    assert [d["type"] for d in data] == names  # each event's data names its own type
    assert data[0]["message"]["usage"]["input_tokens"] == 3
    deltas = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    assert deltas == "Answer: Stream"
    assert data[6]["delta"]["stop_reason"] == "max_tokens"
    assert data[6]["usage"] == {"output_tokens": 2}


def test_anthropic_takes_a_bearer_token(server: FakeLLMServer, client: httpx.Client) -> None:
    headers = {"Authorization": "Bearer sk-ant", "anthropic-version": "2023-06-01"}
    body = chat("hi", max_tokens=5)
    assert client.post(server.url + "/v1/messages", json=body, headers=headers).status_code == 200


def test_responses_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    body = {
        "model": "gpt-test",
        "instructions": "Be terse.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Why? Because."}]}],
    }
    response = client.post(server.openai_base_url + "/responses", json=body, headers=OPENAI_AUTH)
    data = response.json()
    assert data["object"] == "response" and data["status"] == "completed"
    assert data["id"].startswith("resp_")
    assert data["output"][0]["content"] == [
        {"type": "output_text", "text": "Answer: Why?", "annotations": []}
    ]
    assert data["usage"]["input_tokens"] == 4 and data["usage"]["output_tokens"] == 2
    short = {"model": "gpt-test", "input": "One two three four.", "max_output_tokens": 2}
    cut = client.post(server.openai_base_url + "/responses", json=short, headers=OPENAI_AUTH)
    assert cut.json()["status"] == "incomplete"
    assert cut.json()["incomplete_details"] == {"reason": "max_output_tokens"}


def test_responses_stream(server: FakeLLMServer, client: httpx.Client) -> None:
    url = server.openai_base_url + "/responses"
    body = {"model": "gpt-test", "input": "One two three four.", "stream": True}
    events = sse_events(client.post(url, json=body, headers=OPENAI_AUTH))
    data = [json.loads(d) for _, d in events]
    assert [name for name, _ in events] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert data[0]["type"] == "response.created"
    assert data[0]["response"]["status"] == "in_progress"
    deltas = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    assert deltas == "Answer: One two three four."
    assert data[-1]["type"] == "response.completed"
    assert data[-1]["response"]["output"][0]["content"][0]["text"] == deltas
    short = {**body, "max_output_tokens": 2}
    cut = [json.loads(d) for _, d in sse_events(client.post(url, json=short, headers=OPENAI_AUTH))]
    assert cut[-1]["type"] == "response.incomplete"
    assert cut[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    server.configure(fault_script=["filtered", "filtered"])
    whole = client.post(url, json={"model": "m", "input": "hi"}, headers=OPENAI_AUTH).json()
    assert (whole["status"], whole["incomplete_details"]) == (
        "incomplete",
        {"reason": "content_filter"},
    )
    stopped = [
        json.loads(d) for _, d in sse_events(client.post(url, json=body, headers=OPENAI_AUTH))
    ]
    assert stopped[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert not any(d["type"] == "response.output_text.delta" for d in stopped)


def test_embeddings_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    import base64
    import struct

    url = server.openai_base_url + "/embeddings"
    texts = ["the cat sat on the mat", "a cat on a mat", "quarterly revenue grew"]
    data = client.post(url, json={"model": "emb", "input": texts}, headers=OPENAI_AUTH).json()
    assert data["object"] == "list" and data["model"] == "emb"
    assert [d["index"] for d in data["data"]] == [0, 1, 2]
    assert data["usage"] == {"prompt_tokens": 14, "total_tokens": 14}  # words: 6 + 5 + 3
    vectors = [d["embedding"] for d in data["data"]]
    assert all(len(v) == 16 for v in vectors)
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    packed = {"model": "emb", "input": texts[0], "encoding_format": "base64", "dimensions": 8}
    raw = client.post(url, json=packed, headers=OPENAI_AUTH).json()["data"][0]["embedding"]
    floats = struct.unpack("<8f", base64.b64decode(raw))
    again = client.post(url, json={**packed, "encoding_format": "float"}, headers=OPENAI_AUTH)
    assert floats == pytest.approx(again.json()["data"][0]["embedding"], abs=1e-6)


def test_anthropic_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    body = chat("Summarise this. It is long.", max_tokens=64, system="Be brief.")
    response = client.post(
        server.anthropic_base_url + "/v1/messages", json=body, headers=ANTHROPIC_AUTH
    )
    data = response.json()
    assert data["id"].startswith("msg_")
    del data["id"]
    assert data == {
        "type": "message",
        "role": "assistant",
        "model": "gpt-test",
        "content": [{"type": "text", "text": "Answer: Summarise this."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }


@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type"),
    [
        (
            {"anthropic-version": "2023-06-01"},
            chat("hi", max_tokens=5),
            401,
            "authentication_error",
        ),
        ({"x-api-key": "k"}, chat("hi", max_tokens=5), 400, "invalid_request_error"),
        (ANTHROPIC_AUTH, chat("hi"), 400, "invalid_request_error"),
        (
            ANTHROPIC_AUTH,
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            400,
            "invalid_request_error",
        ),
    ],
)
def test_anthropic_refusals(
    server: FakeLLMServer,
    client: httpx.Client,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    error_type: str,
) -> None:
    response = client.post(server.url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == error_type


def test_databricks_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 50}
    response = client.post(
        server.url + "/serving-endpoints/my-llm/invocations", json=body, headers=OPENAI_AUTH
    )
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "my-llm"
    assert data["choices"][0]["message"]["content"] == "Answer: Hello there"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_ollama_wire_format(server: FakeLLMServer, client: httpx.Client) -> None:
    body = chat("Why is the sky blue?", stream=False)
    data = client.post(server.url + "/api/chat", json=body).json()
    assert data["message"] == {"role": "assistant", "content": "Answer: Why is the sky blue?"}
    assert (data["model"], data["done"], data["done_reason"]) == ("gpt-test", True, "stop")
    assert (data["prompt_eval_count"], data["eval_count"]) == (5, 6)


def test_ollama_chat_stream(server: FakeLLMServer, client: httpx.Client) -> None:
    # Ollama streams unless told not to: NDJSON, one chunk per line, the last done with counts.
    for body in (chat("Why is the sky blue?"), chat("Why is the sky blue?", stream=True)):
        response = client.post(server.url + "/api/chat", json=body)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.text.endswith("}\n")
        chunks = [json.loads(line) for line in response.text.splitlines()]
        assert all(c["model"] == "gpt-test" and "created_at" in c for c in chunks)
        assert [c["done"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
        text = "".join(c["message"]["content"] for c in chunks)
        assert text == "Answer: Why is the sky blue?"
        assert {c["message"]["role"] for c in chunks} == {"assistant"}
        assert all("eval_count" not in c for c in chunks[:-1])
        last = chunks[-1]
        assert (last["done_reason"], last["prompt_eval_count"], last["eval_count"]) == (
            "stop",
            5,
            6,
        )
    brief = chat("Why is the sky blue?", options={"num_predict": 2})
    last = json.loads(client.post(server.url + "/api/chat", json=brief).text.splitlines()[-1])
    assert (last["done_reason"], last["eval_count"]) == ("length", 2)


def test_same_request_same_reply(server: FakeLLMServer, client: httpx.Client) -> None:
    first = openai_text(client, server, chat("Tell me a fact.\nThen another."))
    assert first == "Answer: Tell me a fact."
    assert openai_text(client, server, chat("Tell me a fact.\nThen another.")) == first
    assert openai_text(client, server, chat("Tell me a joke.")) != first


def test_judge_prompts_get_json_scores(server: FakeLLMServer, client: httpx.Client) -> None:
    scores = []
    for i in range(30):
        prompt = f"Rate answer {i}. Give a score from 1 to 10. Reply in JSON."
        answer = json.loads(openai_text(client, server, chat(prompt)))
        assert set(answer) == {"score", "rationale"}
        assert 1 <= answer["score"] <= 10
        assert json.loads(openai_text(client, server, chat(prompt))) == answer
        scores.append(answer["score"])
    assert len(set(scores)) > 3  # spread over the scale, not a constant
    assert max(scores) > 5


def test_a_range_in_the_row_is_not_taken_for_the_judges_scale(
    server: FakeLLMServer, client: httpx.Client
) -> None:
    """MLflow's GenAI metrics (``answer_relevance``) say "score" before the row and their
    scale after it: on PubMedQA's "macrosomia at 11-14 weeks" the fake judge answered 12,
    and the row failed with "score 12 is outside the 1-5 scale"."""
    scores = set()
    for i in range(30):
        prompt = (
            "You will be given an input and an output; give a score and a justification.\n"
            f"Input:\nIs severe macrosomia manifested at 11-14 weeks of gestation? ({i})\n"
            "Output:\nAnswer: maybe.\n\n"
            "Answer relevance: Please give a score from 1-5 based on the degree of relevance."
            " Reply in JSON."
        )
        scores.add(json.loads(openai_text(client, server, chat(prompt)))["score"])
    assert scores <= {1, 2, 3, 4, 5}
    assert len(scores) > 2


def test_judge_prompts_get_json_verdicts(server: FakeLLMServer, client: httpx.Client) -> None:
    verdicts = set()
    for i in range(20):
        body = chat(
            f"Is answer {i} correct? Give a verdict.", response_format={"type": "json_object"}
        )
        answer = json.loads(openai_text(client, server, body))
        assert set(answer) == {"verdict", "rationale"}
        verdicts.add(answer["verdict"])
    assert verdicts == {"yes", "no"}
    body = chat('Verdict "pass" or "fail", as JSON.')
    assert json.loads(openai_text(client, server, body))["verdict"] in ("pass", "fail")


def test_canned_replies_in_order(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(replies=["first", "second"])
    texts = [openai_text(client, server, chat(f"q{i}")) for i in range(3)]
    assert texts == ["first", "second", "first"]


def test_replies_by_prompt_substring(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(replies={"capital": "Paris", "colour": "Blue"})
    assert openai_text(client, server, chat("The capital of France?")) == "Paris"
    assert openai_text(client, server, chat("Favourite colour?")) == "Blue"
    assert openai_text(client, server, chat("Something else.")) == "Answer: Something else."


def test_temperature_makes_samples_observable(server: FakeLLMServer, client: httpx.Client) -> None:
    hot = chat("Write a title.", temperature=0.8)
    assert openai_text(client, server, hot) == "Answer: Write a title."  # vary is off
    assert openai_text(client, server, hot) == "Answer: Write a title."
    server.configure(vary_with_temperature=True)
    samples = [openai_text(client, server, hot) for _ in range(3)]
    assert samples == [
        "Answer: Write a title.",
        "Answer: Write a title. (sample 1)",
        "Answer: Write a title. (sample 2)",
    ]
    cold = chat("Write a title.", temperature=0)
    assert {openai_text(client, server, cold) for _ in range(2)} == {"Answer: Write a title."}
    seeded = chat("Write a title.", temperature=0.8, seed=42)
    assert {openai_text(client, server, seeded) for _ in range(2)} == {
        "Answer: Write a title. (sample 42)"
    }


def test_error_500(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(error_500_rate=1.0)
    response = openai(client, server, chat("hi"))
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    response = client.post(
        server.url + "/v1/messages", json=chat("hi", max_tokens=5), headers=ANTHROPIC_AUTH
    )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    assert server.stats()["faults"]["error_500"] == 2


def test_error_429_with_retry_after(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(error_429_rate=1.0, retry_after_s=0.05)
    response = openai(client, server, chat("hi"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.05"
    assert response.headers["retry-after-ms"] == "50"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    server.configure(retry_after_s=2)
    response = client.post(
        server.url + "/v1/messages", json=chat("hi", max_tokens=5), headers=ANTHROPIC_AUTH
    )
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_timeout_holds_the_request(server: FakeLLMServer) -> None:
    server.configure(timeout_rate=1.0, hang_s=0.6)
    impatient = httpx.Client(trust_env=False, timeout=0.2)
    with impatient, pytest.raises(httpx.ReadTimeout):
        openai(impatient, server, chat("hi"))
    patient = httpx.Client(trust_env=False, timeout=5)
    with patient, pytest.raises(httpx.RemoteProtocolError):  # after hang_s: closed, unanswered
        openai(patient, server, chat("hi"))
    stats = server.stats()
    assert stats["faults"]["timeout"] == 2
    assert [r["status"] for r in stats["requests"]] == [None, None]


def test_drop_closes_the_connection(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        openai(client, server, chat("hi"))
    server.configure(drop_rate=0.0)
    assert openai(client, server, chat("hi")).status_code == 200  # the client recovers


def test_malformed_bodies(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(malformed_rate=1.0)
    truncated, html = openai(client, server, chat("hi")), openai(client, server, chat("hi"))
    for response in (truncated, html):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            response.json()
    assert truncated.text.startswith('{"id": "chatcmpl-')
    assert html.text.startswith("<html>")


def test_malformed_streams_are_broken_streams(server: FakeLLMServer, client: httpx.Client) -> None:
    """A streamed request meeting "malformed" got half a JSON body as application/json, an
    answer no stream ever is; it now gets a stream: one event's JSON cut in half amid the
    others (the stream still ending in [DONE]), then a stream cut off in the middle of an
    event, and the same for Ollama's NDJSON lines."""
    server.configure(fault_script=["malformed"] * 4)
    body = chat("Stream this answer. Please.", stream=True)
    garbled, cut = openai(client, server, body), openai(client, server, body)
    for response in (garbled, cut):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(garbled)
    assert events[0][1].startswith('{"id":"chatcmpl-') and events[-1] == (None, "[DONE]")
    unreadable = []
    for _, data in events[:-1]:
        try:
            json.loads(data)
        except json.JSONDecodeError:
            unreadable.append(data)
    assert len(unreadable) == 1 and unreadable[0].startswith('{"id":"chatcmpl-')
    assert "[DONE]" not in cut.text and not cut.text.endswith("\n")
    assert cut.text.rsplit("\n\n", 1)[-1].startswith("data: {")  # the last event, cut
    garbled_lines, cut_lines = (
        client.post(server.url + "/api/chat", json=chat("Why is the sky blue?")).text
        for _ in range(2)
    )
    lines = garbled_lines.splitlines()
    assert json.loads(lines[-1])["done"] is True
    assert sum(1 for line in lines if not _parses(line)) == 1
    assert not cut_lines.endswith("\n") and '"done":true' not in cut_lines
    assert server.stats()["faults"]["malformed"] == 4


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def statuses(client: httpx.Client, server: FakeLLMServer, count: int) -> list[int]:
    return [openai(client, server, chat(f"q{i}")).status_code for i in range(count)]


def test_fault_rates_follow_the_seed(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(error_500_rate=0.3, error_429_rate=0.2, retry_after_s=0, seed=7)
    first = statuses(client, server, 40)
    server.reset()
    assert statuses(client, server, 40) == first
    assert {200, 429, 500} <= set(first)
    assert 10 <= first.count(200) <= 30
    server.configure(seed=8)
    assert statuses(client, server, 40) != first


def test_fault_once_per_body_lets_retries_succeed(
    server: FakeLLMServer, client: httpx.Client
) -> None:
    server.configure(error_500_rate=1.0, fault_once_per_body=True)
    assert openai(client, server, chat("a")).status_code == 500
    assert openai(client, server, chat("a")).status_code == 200
    assert openai(client, server, chat("b")).status_code == 500
    assert openai(client, server, chat("a")).status_code == 200


def test_fault_script(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(fault_script=["error_429", "error_500", "ok", "error_500"], retry_after_s=0)
    assert statuses(client, server, 5) == [429, 500, 200, 500, 200]
    server.configure(script_per_body=True, fault_script=["error_500", "error_429"])
    attempts = [openai(client, server, chat(q)).status_code for q in ("a", "b", "a", "b", "a")]
    assert attempts == [500, 500, 429, 429, 200]


def test_a_fault_script_given_as_one_string_is_one_step(client: httpx.Client) -> None:
    # "error_429" was read character by character: 9 unknown steps, a ConfigError.
    with FakeLLMServer(fault_script="error_429", retry_after_s=0) as server:
        assert statuses(client, server, 2) == [429, 200]
        server.configure(fault_script="error_500")
        assert statuses(client, server, 2) == [500, 200]


def test_stats_count_and_record(server: FakeLLMServer, client: httpx.Client) -> None:
    secret = "sk-secret-123"
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):
        client.post(server.openai_base_url + "/chat/completions", json=chat("x"), headers=headers)
    client.post(server.url + "/api/chat", json=chat("y", stream=False))
    server.stats()  # control routes are not counted
    stats = server.stats()
    assert stats["requests_total"] == 3
    assert stats["by_route"] == {"openai": 2, "ollama": 1}
    assert stats["by_status"] == {"200": 3}
    assert stats["unique_bodies"] == 2
    recorded = stats["requests"]
    assert [r["seq"] for r in recorded] == [1, 2, 3]
    assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 2 + ["/api/chat"]
    for entry in recorded[:2]:
        assert secret not in entry["body"]
        assert json.loads(entry["body"]) == chat("x")
        auth = [v for k, v in entry["headers"].items() if k.lower() == "authorization"]
        assert auth == [f"Bearer {secret}"]
        others = {k: v for k, v in entry["headers"].items() if k.lower() != "authorization"}
        assert secret not in json.dumps(others)
    server.reset()
    assert server.stats()["requests_total"] == 0
    assert server.stats()["requests"] == []


def test_recorded_requests_are_bounded(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(max_recorded=2)
    statuses(client, server, 5)
    assert [r["seq"] for r in server.stats()["requests"]] == [4, 5]


def test_runtime_config(server: FakeLLMServer, client: httpx.Client) -> None:
    server.configure(latency_s=0.01, error_429_rate=0.5)
    assert server.stats()["config"]["latency_s"] == 0.01
    assert server.stats()["config"]["error_429_rate"] == 0.5
    with pytest.raises(ConfigError, match="unknown setting"):
        server.configure(latncy_s=1)
    response = client.post(server.url + "/_config", json={"drop_rate": 2})
    assert response.status_code == 400
    assert "drop_rate" in response.json()["error"]
    assert server.stats()["config"]["drop_rate"] == 0.0


@pytest.mark.parametrize(
    "settings",
    [
        {"error_500_rate": 0.6, "drop_rate": 0.6},
        {"latency_s": -1},
        {"fault_script": ["boom"]},
        {"latency_s": float("nan")},  # these were taken: no answer ever came
        {"jitter_s": float("inf")},
        {"hang_s": float("nan")},
        {"retry_after_s": float("inf")},
        {"port": "x"},  # these failed at start() with the child's argparse usage
        {"port": 70000},
        {"port": -1},
        {"port": True},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FakeLLMServer(**settings)


def test_concurrent_requests_overlap(server: FakeLLMServer) -> None:
    async def wave(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=10) as http:
            requests = [http.post(url, json=chat(f"q{i}"), headers=OPENAI_AUTH) for i in range(64)]
            return [r.status_code for r in await asyncio.gather(*requests)]

    server.configure(latency_s=0.1)
    codes = asyncio.run(wave(server.openai_base_url + "/chat/completions"))
    stats = server.stats()
    assert codes == [200] * 64
    assert stats["max_in_flight"] == 64  # all 64 were held at once, none queued
    assert stats["in_flight"] == 0


def test_command_line_flags(client: httpx.Client) -> None:
    command = [sys.executable, "-m", "harness.testing.fake_llm", "--port", "0", "--watch-stdin"]
    command += ["--fault-script", "error_500,ok", "--latency", "0", "--replies", '["canned"]']
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env()
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("fake_llm ready http://127.0.0.1:")
        url = line.split()[-1] + "/v1/chat/completions"
        assert client.post(url, json=chat("q"), headers=OPENAI_AUTH).status_code == 500
        answer = client.post(url, json=chat("q"), headers=OPENAI_AUTH).json()
        assert answer["choices"][0]["message"]["content"] == "canned"
    finally:
        assert process.stdin is not None
        process.stdin.close()  # EOF on stdin: the server exits on its own
        assert process.wait(timeout=5) == 0


def _child_env() -> dict[str, str]:
    """This environment, with the repository importable from any working directory."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def test_server_dies_with_its_parent() -> None:
    parent_code = (
        "import sys, time\n"
        "from harness.testing import FakeLLMServer\n"
        "server = FakeLLMServer().start()\n"
        "print(server._process.pid, server.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, env=_child_env()
    )
    assert parent.stdout is not None
    child_pid, port = map(int, parent.stdout.readline().split())
    assert httpx.get(f"http://127.0.0.1:{port}/_stats", trust_env=False).status_code == 200
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.05)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    # The server is a grandchild of this test, so it cannot be reaped here: look at its state.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_start_failure_is_reported(running: FakeLLMServer) -> None:
    with pytest.raises(HarnessError, match="address already in use"):
        FakeLLMServer(port=running.port).start()


def test_stop_ends_the_process() -> None:
    server = FakeLLMServer().start()
    url = server.url
    process = server._process
    assert process is not None
    server.stop()
    assert process.returncode is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_stats", trust_env=False)
    server.stop()  # idempotent
