"""``ollama:/MODEL``: a local Ollama server's ``/api/chat`` (non-streaming).

The server is ``base_url`` in ``[providers.ollama]``, else ``OLLAMA_HOST`` (``host:port`` or
a URL, as the Ollama CLI accepts), else ``http://localhost:11434``. No key.

Parameters: ``max_tokens`` becomes ``options.num_predict``; ``response_format`` of type
``json_object`` becomes ``format: "json"`` (a JSON schema is passed as the format);
``format``, ``keep_alive``, ``think`` and ``tools`` are top-level fields; every other
parameter (``temperature``, ``top_p``, ``top_k``, ``seed``, ``stop``, ``num_ctx``, ...) goes
into ``options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.model_io import ModelRequest, ModelResponse
from harness.providers._http import HTTPProvider, env_value, reject_inline_secrets, wire_params

DEFAULT_HOST = "http://localhost:11434"
HOST_ENV = "OLLAMA_HOST"
TOP_LEVEL = frozenset({"format", "keep_alive", "think", "tools"})


def normalize_host(host: str) -> str:
    """``0.0.0.0:11434`` or ``localhost`` -> an URL a client can use."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, _, rest = host.partition("://")
    if rest.startswith("0.0.0.0"):  # the server's listen address; clients dial localhost
        rest = "127.0.0.1" + rest[len("0.0.0.0") :]
    if scheme == "http" and ":" not in rest.split("/", 1)[0]:  # Ollama's default port
        head, sep, path = rest.partition("/")
        rest = f"{head}:11434{sep}{path}"
    return f"{scheme}://{rest}"


class OllamaProvider(HTTPProvider):
    scheme = "ollama"
    key_env = ""

    def __init__(self, model: str, base_url: str | None = None) -> None:
        super().__init__(model, normalize_host(base_url or DEFAULT_HOST), key_required=False)

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> OllamaProvider:
        reject_inline_secrets(options, "ollama")
        return cls(model, options.get("base_url") or env_value(HOST_ENV))

    def auth_hint(self) -> str:
        return "Ollama needs no key; is a proxy in the way?"

    def url(self, request: ModelRequest) -> str:
        return f"{self.base_url}/api/chat"

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "stream": False,
        }
        options: dict[str, Any] = {}
        for name, value in wire_params(request.params).items():
            if name in TOP_LEVEL:
                body[name] = value
            elif name == "max_tokens":
                options["num_predict"] = value
            elif name == "response_format":
                kind = value.get("type") if isinstance(value, dict) else value
                if kind == "json_schema" and isinstance(value, dict):
                    body["format"] = value.get("json_schema", {}).get("schema", "json")
                elif kind in ("json_object", "json"):
                    body["format"] = "json"
            elif name == "stop":
                options["stop"] = [value] if isinstance(value, str) else list(value)
            else:
                options[name] = value
        if options:
            body["options"] = options
        return body

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        return chat_done_early(raw)

    def parse(self, data: dict[str, Any]) -> ModelResponse:
        prompt_tokens, eval_tokens = data.get("prompt_eval_count"), data.get("eval_count")
        return ModelResponse(
            text=str(data["message"]["content"]),
            input_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
            output_tokens=eval_tokens if isinstance(eval_tokens, int) else None,
        )


def chat_done_early(raw: Mapping[str, Any] | None) -> str | None:
    """Why an Ollama ``/api/chat`` (or ``/api/generate``) answer is not whole
    (``done_reason`` ``length``), else None. ``raw`` is the answer, as harness's own calls
    and an app's own calls (``harness.intercept.app_provider``) store it."""
    if isinstance(raw, Mapping) and raw.get("done_reason") == "length":
        return "the answer was cut off at its token limit (done_reason 'length')"
    return None
