"""``openai:/MODEL``: OpenAI chat completions, and any server that speaks them.

Configuration (settings from ``[providers.openai]`` in harness.toml, else the environment):

- ``base_url`` / ``OPENAI_BASE_URL``: default ``https://api.openai.com/v1``. Point it at
  vLLM (``http://localhost:8000/v1``), llama.cpp server, LM Studio
  (``http://localhost:1234/v1``) or Azure OpenAI (``https://RESOURCE.openai.azure.com/openai/v1``).
- ``api_key_env``: the variable holding the key, default ``OPENAI_API_KEY``.

The key is required for OpenAI's own API and for Azure; for any other base URL it is
optional, since local OpenAI-compatible servers usually need none: without a key no
``Authorization`` header is sent, and a server that does want one answers 401, which is
reported as "check OPENAI_API_KEY". A variable named by ``api_key_env`` is required
wherever the server is: naming it says the server wants a key. Azure gets the key in its
``api-key`` header as well.

Every ``--param`` goes into the body as given (``temperature``, ``max_tokens``, ``top_p``,
``seed``, ``stop``, ``response_format``, ``tools``, ...), so server-specific parameters
such as vLLM's ``top_k`` pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from harness.model_io import ModelRequest, ModelResponse
from harness.providers._http import (
    HTTPProvider,
    env_value,
    reject_inline_secrets,
    wire_params,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


def _needs_key(base_url: str) -> bool:
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:  # not a URL: HTTPProvider refuses it, naming it
        return False
    return host == "api.openai.com" or host.endswith(".azure.com")


class OpenAIProvider(HTTPProvider):
    scheme = "openai"
    key_env = KEY_ENV

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        key_env: str | None = None,
        key_required: bool | None = None,
        key_setting: str | None = None,
    ) -> None:
        url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(
            model,
            url,
            api_key=api_key,
            key_env=key_env,
            key_required=_needs_key(url) if key_required is None else key_required,
            key_setting=key_setting,
        )
        self._azure = (urlsplit(url).hostname or "").lower().endswith(".azure.com")

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> OpenAIProvider:
        reject_inline_secrets(options, "openai")
        key_env = options.get("api_key_env") or KEY_ENV
        return cls(
            model,
            options.get("base_url") or env_value(BASE_URL_ENV),
            api_key=env_value(key_env),
            key_env=key_env,
            key_setting="[providers.openai]" if options.get("api_key_env") else None,
        )

    def url(self, request: ModelRequest) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
            if self._azure:
                headers["api-key"] = self._api_key
        return headers

    def body(self, request: ModelRequest) -> dict[str, Any]:
        return chat_body(request, model=self.model)

    def parse(self, data: dict[str, Any]) -> ModelResponse:
        return parse_chat(data)

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        return chat_stopped_early(raw)


def chat_body(request: ModelRequest, *, model: str | None) -> dict[str, Any]:
    """An OpenAI chat-completions body (also what Databricks serving takes)."""
    body: dict[str, Any] = {"messages": [dict(m) for m in request.messages]}
    if model is not None:
        body["model"] = model
    body.update(wire_params(request.params))
    body["stream"] = False  # one JSON answer; the cache stores whole responses
    return body


def parse_chat(data: dict[str, Any]) -> ModelResponse:
    """Text and usage from an OpenAI chat-completions answer."""
    message = data["choices"][0]["message"]
    text = message.get("content")
    if text is None or text == "":  # a refusal or a tool call: keep what there is, as text
        # ("" rather than null beside tool calls: vLLM and some gateways send that)
        text = message.get("refusal") or ""
        if not text and message.get("tool_calls"):
            import json

            text = json.dumps(message["tool_calls"], ensure_ascii=False)
    elif isinstance(text, list):  # some compatible servers answer with content parts
        text = "".join(str(p.get("text", "")) for p in text if isinstance(p, dict))
    usage = data.get("usage") or {}
    return ModelResponse(
        text=str(text),
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
    )


# finish_reason values of an answer that is not whole, and what they mean.
_STOPPED_EARLY = {
    "length": "the answer was cut off at its token limit (finish_reason 'length')",
    "content_filter": (
        "the answer was stopped by the content filter (finish_reason 'content_filter')"
    ),
}


def chat_stopped_early(raw: Mapping[str, Any] | None) -> str | None:
    """Why a chat-completions answer is not whole (``finish_reason``), else None."""
    # type() first: a parsed body is a dict, and isinstance of an ABC is a Python call (this
    # runs on every model and judge call, cache hits included).
    choices = raw.get("choices") if type(raw) is dict or isinstance(raw, Mapping) else None
    if not isinstance(choices, list) or not choices:
        return None
    first = choices[0]
    if type(first) is not dict and not isinstance(first, Mapping):
        return None
    reason = first.get("finish_reason")
    return _STOPPED_EARLY.get(reason) if isinstance(reason, str) else None


# incomplete_details.reason values of a Responses answer that is not whole.
_INCOMPLETE = {
    "max_output_tokens": (
        "the answer was cut off at its token limit (incomplete_details.reason 'max_output_tokens')"
    ),
    "content_filter": (
        "the answer was stopped by the content filter (incomplete_details.reason 'content_filter')"
    ),
}


def responses_stopped_early(raw: Mapping[str, Any] | None) -> str | None:
    """Why a Responses API answer is not whole (``status`` ``incomplete``, and its
    ``incomplete_details.reason``), else None. ``raw`` is the answer, or the ``response``
    of a stream's ``response.incomplete`` event (an app's own calls,
    ``harness.intercept.app_provider``)."""
    if not isinstance(raw, Mapping) or raw.get("status") != "incomplete":
        return None
    details = raw.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    return _INCOMPLETE.get(reason) if isinstance(reason, str) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
