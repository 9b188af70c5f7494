"""The wire formats the fake LLM server speaks: request parsing, answers and error bodies.

One ``Dialect`` per API (OpenAI chat completions, Anthropic messages, Databricks serving,
Ollama chat). Each checks auth the way the real service does, turns a request body into a
``Conversation``, and shapes answers and errors as the real service would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from harness.testing._fake_llm_replies import Conversation, Reply, content_text


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


class Dialect:
    """OpenAI chat completions (also vLLM, llama.cpp, LM Studio, Azure-compatible servers)."""

    name = "openai"

    def check_auth(self, headers: Mapping[str, str]) -> None:
        if not _bearer_token(headers):
            raise RequestRejected(401, "auth", "Missing or empty bearer token.")

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not path_model and not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "you must provide a model parameter")
        if body.get("stream"):
            raise RequestRejected(400, "bad_request", "the fake server does not stream")
        messages = _messages(body)
        system = "\n".join(text for role, text in messages if role in ("system", "developer"))
        response_format = body.get("response_format")
        wants_json = isinstance(response_format, Mapping) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        return Conversation(
            system=system,
            messages=tuple(m for m in messages if m[0] not in ("system", "developer")),
            wants_json=wants_json,
            temperature=_number(body.get("temperature")) or 0.0,
            seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
            max_tokens=int(limit) if _number(limit) is not None else None,
        )

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
                    "finish_reason": "length" if reply.truncated else "stop",
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
    """Anthropic messages: ``x-api-key`` and ``anthropic-version`` headers, ``max_tokens``."""

    name = "anthropic"

    def check_auth(self, headers: Mapping[str, str]) -> None:
        if not headers.get("x-api-key", "").strip():
            raise RequestRejected(401, "auth", "x-api-key header is required")
        if not headers.get("anthropic-version", "").strip():
            # The real API answers 400 here (a malformed request), not 401.
            raise RequestRejected(400, "bad_request", "anthropic-version: header is required")

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "model: Field required")
        if _number(body.get("max_tokens")) is None:
            raise RequestRejected(400, "bad_request", "max_tokens: Field required")
        if body.get("stream"):
            raise RequestRejected(400, "bad_request", "the fake server does not stream")
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
        )

    def answer(self, reply: Reply, model: str, seq: int) -> dict[str, Any]:
        return {
            "id": f"msg_fake{seq:08d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": "max_tokens" if reply.truncated else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        }

    def error(self, status: int, kind: str, message: str) -> dict[str, Any]:
        error_type = {
            "auth": "authentication_error",
            "error_429": "rate_limit_error",
            "error_500": "api_error",
        }.get(kind, "invalid_request_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}


class OllamaDialect(Dialect):
    """Ollama ``/api/chat``: no auth; non-streaming only (``"stream": false`` is required)."""

    name = "ollama"

    def check_auth(self, headers: Mapping[str, str]) -> None:
        return None

    def conversation(self, body: Mapping[str, Any], path_model: str | None) -> Conversation:
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "bad_request", "model is required")
        # Ollama streams unless told not to; a client that forgets would get NDJSON, not JSON.
        if body.get("stream", True) is not False:
            raise RequestRejected(
                400, "bad_request", 'the fake server does not stream: send "stream": false'
            )
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
        )

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


DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (Dialect(), AnthropicDialect(), DatabricksDialect(), OllamaDialect())
}
