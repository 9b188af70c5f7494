"""The provider of the calls intercepted from the user's code: it sends them as they were built.

``Caller.call`` treats an intercepted call like any other: key, cache, rate limits, budget,
retries. On a miss it asks ``AppProvider.complete``, which sends the request the user's
client built (its URL, headers and body bytes; its own timeout) over harness's HTTP client;
a blocking client's miss is sent on the client's own transport from its own thread
(``complete_blocking``, for ``Caller.call_blocking``). Either returns the answer as a
``ModelResponse`` whose ``raw`` is the stored form of ``harness.intercept.wire``. A 4xx/5xx
answer becomes a ``ProviderHTTPError`` that carries the answer (``response``) so the user's
client can be handed it; it is retried when it is retryable, and never cached. A 2xx
answer that is not what its content type promises (``wire.broken``: JSON that does not
parse, an HTML page, a stream cut before its end or failed midway) is a retryable
``ProviderResponseError``, never cached either: the client could not read it, and every later
run would replay it. An answer that contains one of the request's credentials, or one from the
environment, is refused rather than stored.

An ``AppProvider``'s scheme is the API of the endpoint (``openai``, ``anthropic``, ...), so
its calls are priced, and rate-limited by ``[providers.NAME]``, like harness's own calls to
the same API (Anthropic's prompt-cache tokens counted as input and priced as Anthropic bills
them, as ``AnthropicProvider`` does).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
)
from harness.intercept.answers import answer_end, answer_usage, summary
from harness.intercept.credentials import environment_secrets, find_secret, header_secrets
from harness.intercept.wire import AppRequest, HTTPCall, broken, envelope, live_headers
from harness.model_io import ModelRequest, ModelResponse
from harness.providers._http import (
    MAX_SERVER_MESSAGE,
    OUT_OF_QUOTA,
    out_of_quota,
    parse_retry_after,
    redact_url,
)
from harness.providers.anthropic import messages_stopped_early, priced_input_tokens
from harness.providers.base import Provider
from harness.providers.ollama import chat_done_early
from harness.providers.openai import chat_stopped_early, responses_stopped_early

if TYPE_CHECKING:
    import httpx

__all__ = ["AppProvider", "app_provider"]


class AppProvider(Provider):
    """Sends intercepted calls; see the module docstring. Build one with ``app_provider``."""

    scheme = "http"

    @property
    def uri(self) -> str:
        return f"{self.scheme}:/{self.model}"

    def priced_input_tokens(self, response: ModelResponse) -> float | None:
        """An Anthropic answer's prompt-cache tokens priced as ``AnthropicProvider`` prices
        them (from the stored answer's usage, so a cache hit too); others as they are."""
        if self.scheme != "anthropic" or not response.raw or response.input_tokens is None:
            return response.input_tokens
        return priced_input_tokens(response.input_tokens, answer_usage(response.raw))

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        """Why a stored answer is not whole, as harness's own providers read it: a chat
        (or text) completion's ``finish_reason``, an Anthropic message's ``stop_reason``, a
        Responses API answer's ``incomplete_details.reason``, an Ollama answer's
        ``done_reason``, from the JSON body or from a stream's last event that has it
        (``answer_end``). So the app's answers cut off or filtered are counted
        (``calls.app``), hits too."""
        data = answer_end(raw) if isinstance(raw, Mapping) else None
        if data is None:
            return None
        return (
            chat_stopped_early(data)
            or messages_stopped_early(data)
            or responses_stopped_early(data)
            or chat_done_early(data)
        )

    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        import httpx

        from harness.providers._client import send
        from harness.providers._http import _from_aiohttp, _is_timeout

        call = request.http if isinstance(request, AppRequest) else None
        if call is None or client is None:
            raise ProviderError(f"{self.uri}: an intercepted call needs its request and a client")
        secrets = dict(call.secrets) or {**environment_secrets(), **header_secrets(call.headers)}
        started = time.perf_counter()
        try:
            response = await send(
                client, call.method, str(call.url), call.headers, call.content, call.timeout
            )
        except httpx.HTTPError as e:
            if _is_timeout(e):
                late = f"{self.uri}: no answer from {_where(call)} in time"
                raise ProviderTimeout(late) from None
            raise self._connection_error(e, _where(call), secrets) from None
        except Exception as e:
            if _from_aiohttp(e):
                raise self._connection_error(e, _where(call), secrets) from None
            raise
        latency = time.perf_counter() - started
        return self._answer(call, response, response.content, latency, secrets)

    def complete_blocking(
        self, request: ModelRequest, send: Callable[[], Any], module: ModuleType
    ) -> ModelResponse:
        """``complete`` in the app's own thread: ``send()`` sends the request on the
        transport the app's client built (``module``: its httpx or httpx2) and returns the
        answer unread. This is how a plain ``python:`` model's blocking call is sent on a
        miss: no trip to the call path's event loop and back (``Caller.call_blocking``)."""
        call = request.http if isinstance(request, AppRequest) else None
        if call is None:
            raise ProviderError(f"{self.uri}: an intercepted call needs its request")
        secrets = dict(call.secrets) or {**environment_secrets(), **header_secrets(call.headers)}
        started = time.perf_counter()
        try:
            response = send()
            try:
                content = response.read()
            finally:
                response.close()
        except module.TimeoutException:
            raise ProviderTimeout(f"{self.uri}: no answer from {_where(call)} in time") from None
        except module.TransportError as e:
            raise self._connection_error(e, _where(call), secrets) from None
        latency = time.perf_counter() - started
        return self._answer(call, response, content, latency, secrets)

    def _answer(
        self, call: HTTPCall, response: Any, content: bytes, latency: float, secrets: dict[str, str]
    ) -> ModelResponse:
        """The server's answer as a ``ModelResponse``, or the error it is (module docstring)."""
        raw = envelope(response.status_code, response.headers.get("content-type", ""), content)
        headers = live_headers(response.headers.multi_items(), secrets)
        if response.status_code >= 400:
            reason = _scrub(_error_text(raw), secrets)[:MAX_SERVER_MESSAGE]
            quota = out_of_quota(response.status_code, raw.get("json"))
            raise ProviderHTTPError(
                f"{self.uri}: HTTP {response.status_code} from {_where(call)}"
                + (f": {reason}" if reason else "")
                + (f" ({OUT_OF_QUOTA})" if quota else ""),
                status=response.status_code,
                retry_after=parse_retry_after(response.headers),
                response=raw,
                headers=headers,
                retryable=False if quota else None,
            )
        problem = broken(raw)
        if problem is not None:
            error = ProviderResponseError(
                f"{self.uri}: HTTP {response.status_code} from {_where(call)} with {problem}"
            )
            error.retryable = True  # a gateway's page or a cut-off body: try again, as a 5xx
            raise error
        leaked = find_secret(content, secrets)
        if leaked is not None:
            raise ProviderResponseError(
                f"{self.uri}: the answer from {_where(call)} contains the value of {leaked}; "
                f"harness does not store it"
            )
        text, input_tokens, output_tokens = summary(raw)
        return ModelResponse(text, input_tokens, output_tokens, latency, raw, headers)

    def _connection_error(
        self, error: Exception, where: str, secrets: dict[str, str]
    ) -> ProviderConnectionError:
        reason = " ".join(_scrub(str(error), secrets).split())[:200] or type(error).__name__
        return ProviderConnectionError(f"{self.uri}: connection to {where} failed: {reason}")


@functools.cache
def _provider_class(api: str) -> type[AppProvider]:
    # One class per API, so ``scheme`` (a class attribute everywhere else) names it.
    return type(f"AppProvider_{api}", (AppProvider,), {"scheme": api})


def app_provider(api: str, model: str, base_url: str | None) -> AppProvider:
    """The provider for a call to ``model`` at an endpoint speaking ``api``."""
    return _provider_class(api)(model, base_url)


def _where(call: Any) -> str:
    """The call's URL for a message, without credentials (only an error needs it)."""
    return redact_url(str(call.url))


def _error_text(raw: dict[str, Any]) -> str:
    data = raw.get("json")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return " ".join(str(error["message"]).split())
        if isinstance(error, str):
            return error
        if data.get("message"):
            return str(data["message"])
    return ""


def _scrub(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        text = text.replace(value, "***")
    return text
