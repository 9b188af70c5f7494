"""``anthropic:/MODEL``: the Anthropic Messages API.

Configuration (``[providers.anthropic]`` in harness.toml, else the environment):
``base_url`` / ``ANTHROPIC_BASE_URL`` (default ``https://api.anthropic.com``) and
``api_key_env`` (default ``ANTHROPIC_API_KEY``). The key is always required.

Parameters are mapped to the Messages API: system messages move to the top-level
``system``; ``stop`` becomes ``stop_sequences``; ``max_tokens`` is required by the API, so
``DEFAULT_MAX_TOKENS`` is filled in when it is not given (into the request itself, so it is
part of the cache key). ``seed``, ``n``, ``response_format``, ``frequency_penalty`` and
``presence_penalty`` have no Anthropic counterpart and are not sent; everything else
(``temperature``, ``top_p``, ``top_k``, ``tools``, ``thinking``, ``metadata``, ...) is
sent as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.model_io import Message, ModelRequest, ModelResponse
from harness.providers._http import (
    HTTPProvider,
    env_value,
    reject_inline_secrets,
    wire_params,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
NOT_SENT = frozenset({"seed", "n", "response_format", "frequency_penalty", "presence_penalty"})


class AnthropicProvider(HTTPProvider):
    scheme = "anthropic"
    key_env = KEY_ENV

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        key_env: str | None = None,
        key_setting: str | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url or DEFAULT_BASE_URL,
            api_key=api_key,
            key_env=key_env,
            key_setting=key_setting,
        )

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> AnthropicProvider:
        reject_inline_secrets(options, "anthropic")
        key_env = options.get("api_key_env") or KEY_ENV
        return cls(
            model,
            options.get("base_url") or env_value(BASE_URL_ENV),
            api_key=env_value(key_env),
            key_env=key_env,
            key_setting="[providers.anthropic]" if options.get("api_key_env") else None,
        )

    def request(
        self,
        messages: Sequence[Message],
        params: Mapping[str, Any] | None = None,
        *,
        sample_index: int = 0,
        row: Mapping[str, Any] | None = None,
    ) -> ModelRequest:
        """As ``Provider.request``, with ``max_tokens`` filled in (the API requires it)."""
        params = dict(params or {})
        if params.get("max_tokens") is None:
            params["max_tokens"] = DEFAULT_MAX_TOKENS
        return super().request(messages, params, sample_index=sample_index, row=row)

    def url(self, request: ModelRequest) -> str:
        return f"{self.base_url}/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def body(self, request: ModelRequest) -> dict[str, Any]:
        system = [str(m.get("content", "")) for m in request.messages if m.get("role") == "system"]
        messages = [dict(m) for m in request.messages if m.get("role") != "system"]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if system:
            body["system"] = "\n\n".join(system)
        for name, value in wire_params(request.params).items():
            if name in NOT_SENT:
                continue
            if name == "stop":
                body["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            else:
                body[name] = value
        body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        body["stream"] = False
        return body

    def parse(self, data: dict[str, Any]) -> ModelResponse:
        blocks = data["content"]
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        usage = data.get("usage") or {}
        # Cached prompt tokens are reported apart from input_tokens; all of them were read.
        input_tokens = usage.get("input_tokens")
        if isinstance(input_tokens, int):
            input_tokens += sum(
                usage.get(k) or 0
                for k in ("cache_creation_input_tokens", "cache_read_input_tokens")
            )
        output_tokens = usage.get("output_tokens")
        return ModelResponse(
            text=text,
            input_tokens=input_tokens if isinstance(input_tokens, int) else None,
            output_tokens=output_tokens if isinstance(output_tokens, int) else None,
        )

    def priced_input_tokens(self, response: ModelResponse) -> float | None:
        """Cache writes are billed at 1.25x the input price (2x for the 1-hour cache),
        cache reads at 0.1x; ``usage.input_tokens`` counts neither. Without the
        ``cache_creation`` breakdown, writes are priced as 5-minute ones."""
        return priced_input_tokens(response.input_tokens, (response.raw or {}).get("usage"))

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        return messages_stopped_early(raw)

    def error_text(self, data: Any) -> str:
        # {"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = data["error"]
            kind, message = error.get("type"), error.get("message")
            return f"{kind}: {message}" if kind and message else str(message or kind or "")
        return super().error_text(data)


def messages_stopped_early(raw: Mapping[str, Any] | None) -> str | None:
    """Why a messages answer is not whole (``stop_reason``), else None. ``raw`` is the
    answer, or a streamed answer's ``message_delta`` delta (an app's own calls,
    ``harness.intercept.app_provider``)."""
    reason = raw.get("stop_reason") if isinstance(raw, Mapping) else None
    if reason in ("max_tokens", "model_context_window_exceeded"):
        return f"the answer was cut off at its token limit (stop_reason {reason!r})"
    if reason == "refusal":
        return "the answer was stopped by the safety filter (stop_reason 'refusal')"
    return None


def priced_input_tokens(input_tokens: int | None, usage: Any) -> float | None:
    """An answer's input tokens as billed, in tokens at the input price: ``input_tokens``
    counts the prompt cache's tokens too (as ``parse`` does), ``usage`` is the answer's
    ``usage`` (``AnthropicProvider.priced_input_tokens``; an app's own calls,
    ``harness.intercept.app_provider``)."""
    if input_tokens is None or not isinstance(usage, Mapping):
        return input_tokens
    written, read = (
        _count(usage.get(k)) for k in ("cache_creation_input_tokens", "cache_read_input_tokens")
    )
    plain = input_tokens - written - read
    ttl = usage.get("cache_creation")
    hour = _count(ttl.get("ephemeral_1h_input_tokens")) if isinstance(ttl, Mapping) else 0
    return plain + 1.25 * (written - hour) + 2.0 * hour + 0.1 * read


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
