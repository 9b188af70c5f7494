"""What the HTTP providers share: the base class, error mapping and Retry-After parsing.

An ``HTTPProvider`` builds a URL, headers and a JSON body for a ``ModelRequest``, posts it
with the ``httpx.AsyncClient`` the caller hands in (``harness.providers._client.send_json``),
and parses the answer. Every failure becomes one of the ``ProviderError`` classes here,
where it enters harness:

- HTTP 4xx/5xx -> ``ProviderHTTPError(status, retry_after)`` (retryable: 408, 429, 5xx;
  not a 429 that says the account is out of quota, ``out_of_quota``);
- httpx timeouts -> ``ProviderTimeout``; other transport errors -> ``ProviderConnectionError``;
- a 2xx body that is not JSON (a gateway's HTML page, a cut-off body) -> a retryable
  ``ProviderResponseError``; JSON of the wrong shape -> a final one, which quotes the
  server's error when the body is an error object (a gateway answering 200 with one).

Messages name the model URI, the server (without credentials or query string) and the
server's own error text, never a header or a key: the API key lives in the provider
instance only, and any echo of it in a server's message is replaced by ``***``.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import time
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from harness.config import PROVIDER_KEY_ADVICE
from harness.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
)
from harness.fastjson import loads
from harness.model_io import EXCLUDED_PARAMS, ModelRequest, ModelResponse
from harness.providers.base import Provider

if TYPE_CHECKING:
    import httpx

MAX_SERVER_MESSAGE = 300  # characters of a server's error text kept in a row's error
OUT_OF_QUOTA = "the account is out of quota: retrying cannot help; add credit or raise its limit"


def out_of_quota(status: int, data: Any) -> bool:
    """Whether an error answer says the account cannot pay: OpenAI's 429 with code (or
    type) ``insufficient_quota``. A rate limit passes with time, an empty account does
    not, so such a 429 is not retried. (Anthropic says it with a 400 or a 402, never
    retried anyway.)"""
    error = data.get("error") if status == 429 and isinstance(data, Mapping) else None
    return isinstance(error, Mapping) and "insufficient_quota" in (
        error.get("code"),
        error.get("type"),
    )


def _is_ipv4(host: str) -> bool:
    """Whether the resolver reads ``host`` (all digits and dots) as an IPv4 address: a bare
    number (``0``, ``2130706433``) and ``127.1`` are, ``1.2.3.4.5`` is not."""
    import socket

    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` without user:password and query string (Azure and proxies put keys there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asks us to wait: ``retry-after-ms``, else ``Retry-After``.

    ``Retry-After`` is whole seconds or an HTTP date on the real wire; fractions are
    accepted too. Anything unparseable is ignored (the backoff takes over).
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def env_value(name: str | None) -> str | None:
    """The environment variable ``name``, or None when unset or blank."""
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    return value or None


def reject_inline_secrets(options: Mapping[str, Any], provider: str) -> None:
    """Keys belong in environment variables: refuse them in harness.toml or options."""
    for name in ("api_key", "token", "headers", "extra_headers"):
        if name in options:
            raise ConfigError(
                f"[providers.{provider}]: {name!r} is not read from settings, so it can never "
                f"be stored with a run; {PROVIDER_KEY_ADVICE[provider]}"
            )


class HTTPProvider(Provider):
    """A provider that answers over HTTP; subclasses say how to build and read a call."""

    key_env: ClassVar[str] = ""  # the environment variable a key comes from, for messages

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        key_env: str | None = None,
        key_required: bool = True,
        key_setting: str | None = None,
    ) -> None:
        self.key_env_name = key_env or self.key_env
        # Where the user named the variable (``[providers.openai]``): then it must be set.
        self.key_setting = key_setting
        super().__init__(model, base_url.rstrip("/"))
        self._check_base_url(base_url)
        self._api_key = api_key  # never in a request, a key, a message or a repr
        self.key_required = key_required

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r}, base_url={self.base_url!r})"

    def _check_base_url(self, url: str) -> None:
        """Raise ConfigError when ``url`` is no http(s) URL of a host, or carries
        credentials or a query string.

        A URL no client can send to (``localhost:8080/v1`` with no scheme, ``http://[::1``,
        a port past 65535, ``1.2.3.4.5``) failed every call after ten retries, or raised a
        traceback; it is the user's input, so it is refused before the run (exit 2).
        The base URL is part of every cache key and is shown by ``cache stats``, replay
        misses and exported cassettes, so a key in it would be stored and committed; with
        user:password the HTTP client also refuses to send beside the key's header. And the
        API's path (``/chat/completions``) is appended to it, which would land inside a query.
        """
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is no port
        except ValueError as exc:
            # Not parsed, so not redacted: show only what follows any user:password@.
            shown = url.rpartition("@")[2]
            raise ConfigError(f"the base URL of {self.uri} ({shown}) is not a URL: {exc}") from None
        where = f"the base URL of {self.uri} ({redact_url(url)})"
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"{where} must start with http:// or https://")
        host = parts.hostname or ""
        if not host:
            raise ConfigError(f"{where} names no host")
        if any(c.isspace() or c in '<>\\^`{|}"' for c in host):
            raise ConfigError(f"{where} has a host name no server can have ({host!r})")
        if host.replace(".", "").isdigit() and not _is_ipv4(host):
            raise ConfigError(f"{where} has a host of digits that is no IPv4 address ({host})")
        key_hint = f"; give the key in {self.key_env_name}" if self.key_env_name else ""
        if parts.username is not None or parts.password is not None:
            raise ConfigError(f"{where} carries credentials (user:password@){key_hint}")
        if parts.query:
            raise ConfigError(
                f"{where} has a query string (?...): the API's path is added to the base "
                f"URL, so it must end at a path{key_hint}"
            )
        if parts.fragment:
            raise ConfigError(f"{where} has a fragment (#...): it must end at a path")

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def check_credentials(self) -> None:
        """Raise ConfigError when a key is needed and missing (called before a run starts).

        A variable the user named with ``api_key_env`` is needed even where a key is
        optional (a local server): left unset, every call was sent without it and failed.
        """
        if self.key_setting and not self._api_key:
            hint = "" if self.key_required else ", or remove api_key_env if the server needs none"
            raise ConfigError(
                f"{self.key_setting} api_key_env names {self.key_env_name}, which is not set "
                f"(or is empty): set it to the key{hint}"
            )
        if self.key_required and not self._api_key:
            raise ConfigError(f"{self.uri} needs an API key: set {self.key_env_name}")

    def auth_hint(self) -> str:
        """What to check after a 401/403, naming the variable, never its value."""
        return f"check {self.key_env_name}"

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message."""
        return (self._api_key,) if self._api_key else ()

    # -- what a subclass provides -------------------------------------------------------

    @abstractmethod
    def url(self, request: ModelRequest) -> str:
        """Where the request is posted."""

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Headers for every request, including auth."""

    @abstractmethod
    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for ``request``."""

    @abstractmethod
    def parse(self, data: dict[str, Any]) -> ModelResponse:
        """Text and usage from a 2xx JSON body; raise KeyError/TypeError/ValueError if odd."""

    def error_text(self, data: Any) -> str:
        """The server's own message from an error body (OpenAI shape by default)."""
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict) and error.get("message"):
                return str(error["message"])
            if isinstance(error, str):
                return error
            if data.get("message"):
                return str(data["message"])
        return ""

    # -- the call -----------------------------------------------------------------------

    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        if client is None:
            raise ProviderError(f"{self.uri} is an HTTP provider and needs an HTTP client")
        import httpx

        from harness.providers._client import send_json

        url = self.url(request)
        started = time.perf_counter()
        try:
            response = await send_json(client, url, self.body(request), self.headers())
        except httpx.HTTPError as e:  # connect, read, write, protocol errors: all transient
            if _is_timeout(e):
                raise ProviderTimeout(
                    f"{self.uri}: no answer from {redact_url(url)} in time ({type(e).__name__})"
                ) from None
            raise self.connection_error(e, url) from None
        except Exception as e:
            if _from_aiohttp(e):  # an aiohttp error its transport does not map (parser errors)
                raise self.connection_error(e, url) from None
            raise
        latency = time.perf_counter() - started
        if response.status_code >= 400:
            raise self.http_error(response, url)
        try:
            data = loads(response.content)  # what ``response.json()`` reads, faster
        except ValueError:
            error = ProviderResponseError(
                f"{self.uri}: HTTP {response.status_code} from {redact_url(url)} "
                f"with a body that is not JSON"
            )
            error.retryable = True  # a gateway's HTML page or a cut-off body: try again
            raise error from None
        try:
            result = self.parse(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            # A gateway (OpenRouter, a proxy) may answer 200 with an error object instead.
            said = ""
            if isinstance(data, dict) and ("error" in data or "error_code" in data):
                said = " ".join(self.scrub(self.error_text(data)).split())[:MAX_SERVER_MESSAGE]
            if said:
                raise ProviderResponseError(
                    f"{self.uri}: HTTP {response.status_code} from {redact_url(url)} "
                    f"with an error instead of an answer: {said}"
                ) from None
            raise ProviderResponseError(
                f"{self.uri}: unexpected answer shape from {redact_url(url)} "
                f"({type(e).__name__}: {self.scrub(str(e))[:100]})"
            ) from None
        result.latency_s = result.latency_s or latency
        result.raw = data if isinstance(data, dict) else {"body": data}
        return result

    def connection_error(self, error: Exception, url: str) -> ProviderConnectionError:
        reason = " ".join(self.scrub(str(error)).split())[:200] or type(error).__name__
        return ProviderConnectionError(
            f"{self.uri}: connection to {redact_url(url)} failed: {reason}",
            refused=_refused(error),
            unresolved=_unresolved(error),
        )

    def http_error(self, response: httpx.Response, url: str) -> ProviderHTTPError:
        """A 4xx/5xx answer as an error that names the server's reason, never a key."""
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        text = " ".join(self.scrub(self.error_text(data)).split())[:MAX_SERVER_MESSAGE]
        message = f"{self.uri}: HTTP {status} from {redact_url(url)}"
        if text:
            message += f": {text}"
        quota = out_of_quota(status, data)
        if quota:
            message += f" ({OUT_OF_QUOTA})"
        elif status in (401, 403):
            message += f" ({self.auth_hint()})"
        elif status == 404:
            message += f" (is {self.model!r} the right model name?)"
        return ProviderHTTPError(
            message,
            status=status,
            retry_after=parse_retry_after(response.headers),
            retryable=False if quota else None,
        )

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text


def _refused(error: BaseException) -> bool:
    """Whether nothing listened at the address: a ``ConnectionRefusedError`` among the
    causes (httpx, httpcore and aiohttp each wrap it in their own connect error)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# getaddrinfo's answers that no retry within a run changes: no such name (a typo in the
# base URL), no address for it, or no resolver to ask (a machine without a network).
_UNRESOLVED = {
    getattr(socket, name)
    for name in ("EAI_NONAME", "EAI_NODATA", "EAI_AGAIN")
    if hasattr(socket, name)
}


def _unresolved(error: BaseException) -> str | None:
    """The resolver's reason when the host's name did not resolve (a ``socket.gaierror``
    among the causes, as for ``_refused``); else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror) and current.errno in _UNRESOLVED:
            return current.strerror or str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _is_timeout(error: Exception) -> bool:
    """An httpx timeout that really is one: the aiohttp transport reports a dropped
    connection as ``ConnectTimeout``, with the aiohttp error as its cause."""
    import httpx

    cause = error.__cause__
    return isinstance(error, httpx.TimeoutException) and (
        cause is None or isinstance(cause, TimeoutError) or not _from_aiohttp(cause)
    )


def _from_aiohttp(error: BaseException) -> bool:
    return type(error).__module__.startswith("aiohttp")


def wire_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Generation parameters to send: nulls and client-side settings dropped."""
    return {k: v for k, v in params.items() if v is not None and k not in EXCLUDED_PARAMS}


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
