"""Model providers, one module each, registered by URI scheme and imported only when used.

``resolve("openai:/gpt-4o-mini")`` returns a ready ``Provider``. Importing this package
imports no provider module, so ``harness --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from harness.errors import ModelURIError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider

__all__ = [
    "DEFAULT_TRANSPORT",
    "LOCAL_SCHEMES",
    "PROVIDERS",
    "TRANSPORTS",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "resolve",
]

# scheme -> "module:Class"; the module is imported on first use.
PROVIDERS: dict[str, str] = {
    "openai": "harness.providers.openai:OpenAIProvider",
    "anthropic": "harness.providers.anthropic:AnthropicProvider",
    "databricks": "harness.providers.databricks:DatabricksProvider",
    "ollama": "harness.providers.ollama:OllamaProvider",
    "python": "harness.providers.python:PythonProvider",
    "echo": "harness.providers.echo:EchoProvider",
    "column": "harness.providers.column:ColumnProvider",
}

# The schemes whose provider answers in this process (``Provider.local``): no HTTP client.
LOCAL_SCHEMES: tuple[str, ...] = ("python", "echo", "column")

# How HTTP providers send (``harness.providers._client``), named here so that checking a
# setting imports no HTTP client: a fully cached run never needs one (httpx alone took
# 63 ms to import, 40 of them its command line's rich and pygments).
TRANSPORTS: tuple[str, ...] = ("aiohttp", "httpx-shards", "httpx")
DEFAULT_TRANSPORT = "aiohttp"  # httpx's own pool slows down under concurrency (bench/)

URI_FORMS = (
    "openai:/MODEL, anthropic:/MODEL, databricks:/ENDPOINT, ollama:/MODEL, "
    "python:MODULE:FUNCTION, echo, column:NAME"
)


def split_uri(uri: str) -> tuple[str, str]:
    """``openai:/gpt-4o`` -> ("openai", "gpt-4o"); ``python:m:f`` -> ("python", "m:f")."""
    scheme, sep, rest = uri.strip().partition(":")
    if not sep and scheme == "echo":
        return "echo", ""
    if not sep or scheme not in PROVIDERS:
        raise ModelURIError(f"unknown model URI {uri!r}; use one of: {URI_FORMS}")
    model = rest[1:] if rest.startswith("/") and scheme not in ("python", "column") else rest
    if scheme != "echo" and not model.strip("/"):
        raise ModelURIError(f"model URI {uri!r} names no model; e.g. {scheme}:/MODEL")
    return scheme, model


def resolve(uri: str, options: Mapping[str, Any] | None = None) -> Provider:
    """The provider for a model URI, configured from the environment and ``options``.

    ``options`` carries provider settings from harness.toml or the API (base_url,
    api_key_env, profile, ...); each provider documents the ones it reads.
    """
    scheme, model = split_uri(uri)
    module_name, _, class_name = PROVIDERS[scheme].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise ModelURIError(f"the {scheme!r} provider is not available in this build") from None
        raise
    cls: type[Provider] = getattr(module, class_name)
    return cls.from_uri(model, dict(options or {}))
