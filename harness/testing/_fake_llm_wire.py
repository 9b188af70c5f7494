"""The wire formats the fake LLM server speaks: request parsing, answers and error bodies.

One ``Dialect`` per API (OpenAI chat completions and Responses, Anthropic messages,
Databricks serving, Ollama chat). Each checks auth the way the real service does, turns a
request body into a ``Conversation``, and shapes answers (whole, or as the events of a
stream) and errors as the real service would. OpenAI embeddings have no conversation:
``EmbeddingsDialect`` reads the texts to embed and answers with vectors.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Mapping
from typing import Any

from harness.testing._fake_llm_replies import Conversation, Reply, content_text, count_tokens, embed
from harness.testing._fake_llm_streams import (
    anthropic_events,
    anthropic_usage,
    finish_reason,
    ollama_lines,
    openai_chunks,
    responses_events,
    stop_reason,
)

DEFAULT_DIMENSIONS = 16  # small, so recorded answers stay readable; ``dimensions`` changes it


class RequestRejected(Exception):
    """A request the real service would refuse: carries the HTTP status and error kind."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # "auth", "bad_request", "error_500", "error_429"
        self.message = message


def _bearer_token(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _messages(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise RequestRejected(400, "bad_request", "'messages' must be a list of objects")
    return [(str(m.get("role", "")), content_text(m.get("content"))) for m in messages]


def _cached_prefix(body: Mapping[str, Any]) -> str:
    """The text of an Anthropic prompt (``system``, then ``messages``) up to and including its
    last content block marked ``cache_control``; "" when none is."""
    blocks: list[Any] = []
    for content in [body.get("system")] + [
        m.get("content") for m in body.get("messages") or [] if isinstance(m, Mapping)
    ]:
        blocks.extend(content if isinstance(content, list) else [{"text": content}])
    texts: list[str] = []
    end = 0
    for block in blocks:
        if isinstance(block, Mapping) and isinstance(block.get("text"), str):
            texts.append(block["text"])
            if block.get("cache_control"):
                end = len(texts)
    return "\n".join(texts[:end])


class Dialect:
    """OpenAI chat completions (also vLLM, llama.cpp, LM Studio, Azure-compatible servers)."""

    name = "openai"
    stream_type = "text/event-stream; charset=utf-8"  # the Content-Type of a stream

    def check_auth(self, headers: Mapping[str, str]) -> None:
        if not _bearer_token(headers):
            raise RequestRejected(401, "auth", "Missing or empty bearer token.")

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not path_model and not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "you must provide a model parameter")
        messages = _messages(body)
        system = "\n".join(text for role, text in messages if role in ("system", "developer"))
        response_format = body.get("response_format")
        wants_json = isinstance(response_format, Mapping) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        options = body.get("stream_options")
        return Conversation(
            system=system,
            messages=tuple(m for m in messages if m[0] not in ("system", "developer")),
            wants_json=wants_json,
            temperature=_number(body.get("temperature")) or 0.0,
            seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
            max_tokens=int(limit) if _number(limit) is not None else None,
            stream=bool(body.get("stream")),
            stream_usage=isinstance(options, Mapping) and bool(options.get("include_usage")),
        )

    def events(self, reply: Reply, model: str, seq: int, conversation: Conversation) -> list[str]:
        """The answer as the SSE events of a stream (``stream: true``)."""
        return openai_chunks(reply, model, seq, include_usage=conversation.stream_usage)

    def answer(self, reply: Reply, model: str, seq: int) -> dict[str, Any]:
        # ``n`` is accepted and ignored: there is always exactly one choice.
        return {
            "id": f"chatcmpl-fake{seq:08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "logprobs": None,
                    "finish_reason": finish_reason(reply),
                }
            ],
            "usage": {
                "prompt_tokens": reply.input_tokens,
                "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens,
            },
            "system_fingerprint": "fp_fake",
        }

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        error_type, code = {
            "auth": ("invalid_request_error", "invalid_api_key"),
            "error_429": ("requests", "rate_limit_exceeded"),
            "quota": ("insufficient_quota", "insufficient_quota"),
            "error_500": ("server_error", None),
        }.get(kind, ("invalid_request_error", None))
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


class DatabricksDialect(Dialect):
    """Databricks model serving: OpenAI chat bodies, Databricks error bodies."""

    name = "databricks"

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        code = {
            "auth": "UNAUTHENTICATED",
            "error_429": "REQUEST_LIMIT_EXCEEDED",
            "error_500": "INTERNAL_ERROR",
        }.get(kind, "BAD_REQUEST")
        return {"error_code": code, "message": message}


class AnthropicDialect(Dialect):
    """Anthropic messages: ``x-api-key`` (or a bearer token) and ``anthropic-version``
    headers, ``max_tokens``."""

    name = "anthropic"

    def check_auth(self, headers: Mapping[str, str]) -> None:
        # The API takes the key as ``x-api-key``; SDKs since anthropic 2.0 send it as a bearer.
        if not headers.get("x-api-key", "").strip() and not _bearer_token(headers):
            raise RequestRejected(401, "auth", "x-api-key header is required")
        if not headers.get("anthropic-version", "").strip():
            # The real API answers 400 here (a malformed request), not 401.
            raise RequestRejected(400, "bad_request", "anthropic-version: header is required")

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "model: Field required")
        if _number(body.get("max_tokens")) is None:
            raise RequestRejected(400, "bad_request", "max_tokens: Field required")
        messages = _messages(body)
        if any(role == "system" for role, _ in messages):
            raise RequestRejected(
                400,
                "bad_request",
                'messages: Unexpected role "system". Use the top-level `system` parameter.',
            )
        return Conversation(
            system=content_text(body.get("system")),
            messages=tuple(messages),
            temperature=_number(body.get("temperature")) or 0.0,
            max_tokens=int(body["max_tokens"]),
            stream=bool(body.get("stream")),
            cached_text=_cached_prefix(body),
        )

    def events(self, reply: Reply, model: str, seq: int, conversation: Conversation) -> list[str]:
        return anthropic_events(reply, model, seq)

    def answer(self, reply: Reply, model: str, seq: int) -> dict[str, Any]:
        return {
            "id": f"msg_fake{seq:08d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": stop_reason(reply),
            "stop_sequence": None,
            "usage": {**anthropic_usage(reply), "output_tokens": reply.output_tokens},
        }

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        error_type = {
            "auth": "authentication_error",
            "error_429": "rate_limit_error",
            "error_500": "api_error",
        }.get(kind, "invalid_request_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}


class OllamaDialect(Dialect):
    """Ollama ``/api/chat``: no auth; streamed as NDJSON unless ``"stream": false``."""

    name = "ollama"
    stream_type = "application/x-ndjson"

    def check_auth(self, headers: Mapping[str, str]) -> None:
        return None

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "model is required")
        messages = _messages(body)
        options = body.get("options")
        if not isinstance(options, Mapping):
            options = {}
        limit = _number(options.get("num_predict"))
        return Conversation(
            system="\n".join(text for role, text in messages if role == "system"),
            messages=tuple(m for m in messages if m[0] != "system"),
            wants_json=bool(body.get("format")),
            temperature=_number(options.get("temperature")) or 0.0,
            seed=options.get("seed") if isinstance(options.get("seed"), int) else None,
            max_tokens=int(limit) if limit is not None and limit >= 0 else None,
            stream=body.get("stream", True) is not False,  # Ollama streams unless told not to
        )

    def events(self, reply: Reply, model: str, seq: int, conversation: Conversation) -> list[str]:
        return ollama_lines(reply, self.answer(reply, model, seq))

    def answer(self, reply: Reply, model: str, seq: int) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": {"role": "assistant", "content": reply.text},
            "done_reason": "length" if reply.truncated else "stop",
            "done": True,
            "total_duration": 0,
            "load_duration": 0,
            "prompt_eval_count": reply.input_tokens,
            "prompt_eval_duration": 0,
            "eval_count": reply.output_tokens,
            "eval_duration": 0,
        }

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        return {"error": message}


class ResponsesDialect(Dialect):
    """The OpenAI Responses API (``/v1/responses``): ``input`` and ``instructions``; whole
    answers, or with ``stream: true`` the events of a Responses stream. An answer cut at
    ``max_output_tokens`` or stopped by the content filter is ``"status": "incomplete"`` with
    ``incomplete_details.reason`` ``max_output_tokens`` or ``content_filter``."""

    name = "responses"

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "Missing required parameter: 'model'.")
        given = body.get("input")
        if isinstance(given, str):
            messages = [("user", given)]
        elif isinstance(given, list) and all(isinstance(item, Mapping) for item in given):
            messages = [
                (str(item.get("role", "user")), content_text(item.get("content")))
                for item in given
                if "content" in item
            ]
        else:
            raise RequestRejected(400, "bad_request", "'input' must be a string or a list of items")
        text_format = body.get("text")
        kind = text_format.get("format") if isinstance(text_format, Mapping) else None
        json_kinds = ("json_object", "json_schema")
        limit = _number(body.get("max_output_tokens"))
        return Conversation(
            system=content_text(body.get("instructions")),
            messages=tuple(m for m in messages if m[0] not in ("system", "developer")),
            wants_json=isinstance(kind, Mapping) and kind.get("type") in json_kinds,
            temperature=_number(body.get("temperature")) or 0.0,
            max_tokens=int(limit) if limit is not None else None,
            stream=bool(body.get("stream")),
        )

    def events(self, reply: Reply, model: str, seq: int, conversation: Conversation) -> list[str]:
        return responses_events(reply, self.answer(reply, model, seq))

    def answer(self, reply: Reply, model: str, seq: int) -> dict[str, Any]:
        reason = (
            "content_filter" if reply.filtered else "max_output_tokens" if reply.truncated else None
        )
        status = "incomplete" if reason else "completed"
        return {
            "id": f"resp_fake{seq:08d}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_fake{seq:08d}",
                    "status": status,
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": reply.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": reply.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": reply.input_tokens + reply.output_tokens,
            },
        }


class EmbeddingsDialect(Dialect):
    """OpenAI embeddings (``/v1/embeddings``): ``input`` is a string or a list of strings;
    ``dimensions`` sets the length, ``encoding_format: "base64"`` packs little-endian float32."""

    name = "embeddings"

    def texts(self, body: Mapping[str, Any]) -> list[str]:
        """The texts to embed; raise ``RequestRejected`` as the real API would."""
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "you must provide a model parameter")
        given = body.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise RequestRejected(
                400, "bad_request", "'input' must be a non-empty string or list of strings"
            )
        dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise RequestRejected(400, "bad_request", "'dimensions' must be a positive integer")
        if body.get("encoding_format", "float") not in ("float", "base64"):
            raise RequestRejected(400, "bad_request", "'encoding_format' must be float or base64")
        return texts

    def embeddings(self, body: Mapping[str, Any], texts: list[str]) -> dict[str, Any]:
        dimensions = int(body.get("dimensions", DEFAULT_DIMENSIONS))
        data = []
        for index, text in enumerate(texts):
            vector: Any = embed(text, dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(text) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(),
        AnthropicDialect(),
        DatabricksDialect(),
        OllamaDialect(),
        ResponsesDialect(),
        EmbeddingsDialect(),
    )
}
