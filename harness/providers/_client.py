"""The shared HTTP client harness makes, and a lean way to send on it.

Imported only when a run first needs HTTP (``harness --help`` never loads httpx).

``make_client`` builds an ``httpx.AsyncClient`` over one of three transports (numbers in
bench/bench_providers.py): ``aiohttp`` (httpx's API over aiohttp's pool, httpx-aiohttp;
the default, since httpx's own pool gets slower per request as it grows, encode/httpx#3215),
``httpx-shards`` (several small httpx pools used in turn; the fallback without
httpx-aiohttp) and ``httpx`` (one plain pool).

``send_json`` posts a JSON body; ``send`` sends a request as it was built elsewhere (the
user's own calls, routed through the call path by ``harness.intercept``). On a client from
``make_client``, with no proxy set in the environment, each hands the request straight to
the client's transport: the client's own
per-request work (merging URLs and headers, the auth and redirect flows, cookie
bookkeeping) was ~12% of a request's CPU in the provider benchmark, and none of it applies
to harness's requests (full URLs, header auth, redirects not followed). It keeps what does
apply: the client's default headers, its timeouts and its cookie jar. Over the ``aiohttp``
transport, while no cookie is set, it goes one step further and sends on the transport's
aiohttp session itself (``_send_aiohttp``), with no ``httpx.Request`` at all. Any other
client (a test's mock transport, a caller's own client) gets a plain ``client.post``.

aiohttp refuses a host written as a bare number (``http://0:8080/v1``,
``http://2130706433/``: "is not a canonical IPv4 address") that httpx, and so the openai
and anthropic SDKs, hand to the system resolver; on aiohttp harness sends such a request to
the dotted address the number stands for, with the Host header httpx would send
(``aiohttp_url``), so a base URL that works with the SDK works with harness.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from harness.errors import ConfigError
from harness.providers import DEFAULT_TRANSPORT, TRANSPORTS

if TYPE_CHECKING:
    import ssl

    from httpx_aiohttp import AiohttpTransport

# The request extension that marks harness's own requests: the interception of the user's
# HTTP calls (harness.intercept) passes them through untouched, so none is routed twice.
OWN_REQUEST = "harness_own_request"
SHARD_CONNECTIONS = 8  # connections per pool for "httpx-shards"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class SetCookieOnly(httpx.Cookies):
    """``httpx.Cookies`` that parses a response only when it carries ``Set-Cookie``.

    httpx hands every response to ``http.cookiejar`` (two compatibility objects and a
    policy walk per response) even when there is nothing to store; LLM APIs rarely set
    cookies, and when one does, it is stored exactly as httpx would.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


@dataclass(frozen=True)
class _Direct:
    """What sending past a client needs: its transport, default headers and timeouts."""

    transport: httpx.AsyncBaseTransport
    headers: dict[str, str]
    timeout: dict[str, float | None]
    aiohttp: bool = False  # ``transport`` is httpx-aiohttp's: send on its aiohttp session
    # Made once, not per request (``_send_aiohttp``): the aiohttp timeout of ``timeout``,
    # and the default headers merged with a request's own, by the request's headers.
    aiohttp_timeout: Any = None
    merged: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)


_MERGED_KEPT = 16  # header sets kept merged per client: a provider's are the same each call


_direct: weakref.WeakKeyDictionary[httpx.AsyncClient, _Direct] = weakref.WeakKeyDictionary()

_tls_lock = threading.Lock()
_tls: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (the roots of ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``,
    else certifi's), made once a process for every client ``make_client`` builds.

    Each transport made its own, and reading the roots took ~20 ms of every client's
    creation, on the critical path of a cold run's first request (issue 14, goal 2); a run
    sure to send its calls now makes it beside its planning (``client_preload``). One
    context serves any number of clients and threads; a new one is made if those
    variables change.
    """
    key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    with _tls_lock:  # a second thread asking while the first reads the roots waits for them
        context = _tls.get(key)
        if context is None:
            context = _tls[key] = httpx.create_ssl_context(trust_env=True)
    return context


def make_client(
    concurrency: int, timeout_s: float, transport: str | None = None
) -> httpx.AsyncClient:
    """The shared HTTP client: keep-alive connections, up to ``concurrency`` of them."""
    transport = transport or DEFAULT_TRANSPORT
    if transport not in TRANSPORTS:
        raise ConfigError(f"unknown transport {transport!r}; use one of {', '.join(TRANSPORTS)}")
    timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    pool: httpx.AsyncBaseTransport
    client_class: type[httpx.AsyncClient] = httpx.AsyncClient
    if transport == "aiohttp":
        try:
            from httpx_aiohttp import HttpxAiohttpClient
        except ImportError:
            transport = "httpx-shards"
        else:
            aiohttp_pool = _aiohttp_transport()(limits=limits, verify=tls_context())
            pool, client_class = aiohttp_pool, HttpxAiohttpClient
    if transport == "httpx-shards":
        pool = _Shards(max(1, -(-concurrency // SHARD_CONNECTIONS)), limits)
    elif transport == "httpx":
        pool = httpx.AsyncHTTPTransport(limits=limits, verify=tls_context())
    # The client still mounts proxy transports from the environment (trust_env).
    client = client_class(timeout=timeout, transport=pool)
    # The client builds its jar in __init__ and keeps it in ``_cookies``: no public hook.
    client._cookies = SetCookieOnly()
    if not any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES):
        limits_s = timeout.as_dict()
        _direct[client] = _Direct(
            pool,
            dict(client.headers),
            limits_s,
            aiohttp=transport == "aiohttp",
            aiohttp_timeout=_aiohttp_timeout(limits_s) if transport == "aiohttp" else None,
        )
    return client


def _aiohttp_timeout(limits: Mapping[str, float | None]) -> Any:
    """httpx's timeouts as httpx-aiohttp's transport gives them to aiohttp."""
    from aiohttp import ClientTimeout

    return ClientTimeout(
        sock_connect=limits.get("connect"),
        sock_read=limits.get("read"),
        connect=limits.get("pool"),
    )


def json_body(body: Any) -> bytes:
    """The bytes httpx's ``json=`` sends for ``body`` (compact, UTF-8, NaN refused), or
    the same JSON with a float written another way (``0.00001`` for ``1e-05``, the same
    number), by orjson: ~20x faster on a chat body (~20 µs a call with ``json``).

    What orjson writes differently goes to ``json``: NaN and infinities (null from orjson,
    an error here, as from httpx), and what orjson refuses (an integer beyond 64 bits, a
    key that is not a string, a lone surrogate, an object it does not know).
    """
    try:
        content = orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        content = None
    if content is None or b"null" in content:  # a None or a NaN: json decides which
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        content = text.encode("utf-8")
    return content


async def send_json(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """POST ``body`` as JSON to ``url`` and read the whole answer."""
    direct = _direct.get(client)
    if direct is None:
        return await client.post(url, json=body, headers=headers, extensions={OWN_REQUEST: True})
    headers = {**headers, "Content-Type": "application/json"}
    return await send(client, "POST", url, headers, json_body(body))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: Any,
    content: bytes,
    timeout: Mapping[str, float | None] | None = None,
) -> httpx.Response:
    """Send a request as it is (the user's own calls, ``harness.intercept``) and read the
    whole answer: past the client when it is one of ours, as ``send_json`` does."""
    direct = _direct.get(client)
    if direct is None:
        return await client.request(
            method,
            url,
            headers=headers,
            content=content,
            timeout=httpx.Timeout(**timeout) if timeout else httpx.USE_CLIENT_DEFAULT,
            extensions={OWN_REQUEST: True},
        )
    jar = client.cookies
    if direct.aiohttp and not jar:
        answer = await _send_aiohttp(direct, method, url, headers, content, timeout)
        if "set-cookie" in answer.headers:
            answer.request = httpx.Request(method, url, headers=answer.request_headers)
            jar.extract_cookies(answer)
        return answer
    merged = httpx.Headers(direct.headers)
    merged.update(headers)
    request = httpx.Request(
        method,
        url,
        headers=merged,
        content=content,
        extensions={"timeout": dict(timeout or direct.timeout), OWN_REQUEST: True},
    )
    if jar:
        jar.set_cookie_header(request)
    response = await direct.transport.handle_async_request(request)
    response.request = request
    try:
        await response.aread()
    finally:
        await response.aclose()
    jar.extract_cookies(response)
    return response


class _AiohttpAnswer(httpx.Response):
    """An answer read on aiohttp's session, with the headers its request was sent with
    (only a ``Set-Cookie`` answer needs them, to store the cookie as httpx would)."""

    request_headers: Any = None


async def _send_aiohttp(
    direct: _Direct,
    method: str,
    url: str,
    headers: Any,
    content: bytes,
    timeout: Mapping[str, float | None] | None,
) -> _AiohttpAnswer:
    """What ``AiohttpTransport.handle_async_request`` does, on its aiohttp session directly.

    No ``httpx.Request`` (URL parsing, header normalisation, httpx's header encoding
    guesses when aiohttp reads them) and no streamed response: this was about half of
    harness's own CPU per request over a bare aiohttp client (bench/bench_providers.py,
    bench/bench_intercept.py). The transport's options (no redirects, the raw body for httpx
    to decode, its timeouts) and its error mapping (aiohttp's errors as httpx's).
    """
    session_class, aiohttp_errors_as_httpx = _aiohttp_names()
    transport: Any = direct.transport
    if not isinstance(transport.client, session_class):
        transport.client = transport.get_client()
    # aiohttp copies the headers into its own request: one merged set serves every request
    # that gives the same headers (a provider's are the same on each call).
    known = tuple(headers.items()) if type(headers) is dict else None
    merged = direct.merged.get(known) if known is not None else None
    if merged is None:
        merged = _merged_headers(direct.headers, headers)
        if known is not None and len(direct.merged) < _MERGED_KEPT:
            direct.merged[known] = merged
    url, host = aiohttp_url(url)
    if host is not None and "host" not in merged:
        merged = merged.copy()  # the kept set serves other URLs too
        merged["Host"] = host
    with aiohttp_errors_as_httpx():
        async with transport.client.request(
            method,
            url,
            data=content or None,
            headers=merged,
            allow_redirects=False,
            auto_decompress=False,
            compress=False,
            timeout=_aiohttp_timeout(timeout)
            if timeout
            else direct.aiohttp_timeout or _aiohttp_timeout(direct.timeout),
        ) as answer:
            body = await answer.read()
    extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
    if answer.reason:
        extensions["reason_phrase"] = answer.reason.encode()
    if "Content-Encoding" in answer.headers:
        # ``content=``: httpx decodes a compressed body (auto_decompress is off) as it reads it.
        response = _AiohttpAnswer(
            answer.status, headers=answer.raw_headers, content=body, extensions=extensions
        )
    else:
        sized = "Content-Length" in answer.headers
        response = _read_answer(answer.status, answer.raw_headers, body, extensions, sized)
    response.request_headers = merged
    return response


@functools.cache
def _aiohttp_names() -> tuple[Any, Any]:
    """aiohttp's session class and httpx-aiohttp's error mapping, imported once (an import
    statement of a loaded module still cost ~1-2 us of each request)."""
    from aiohttp import ClientSession
    from httpx_aiohttp.transport import map_aiohttp_exceptions

    return ClientSession, map_aiohttp_exceptions


def _read_answer(
    status: int, raw_headers: Any, body: bytes, extensions: dict[str, Any], sized: bool
) -> _AiohttpAnswer:
    """``_AiohttpAnswer(status, headers=raw_headers, content=body, extensions=...)`` for a
    body with no Content-Encoding, with each attribute as that leaves it (the body read,
    the stream consumed and closed, a Content-Length if the answer had none), without
    reading the body back through httpx's decoder and chunkers: ~16 -> ~4 us an answer
    in-process (issue 14: one per call of a cold run, on its event loop). ``sized``: the
    answer has a Content-Length (asked of aiohttp's headers: httpx's look-up is slower)."""
    response = _AiohttpAnswer(status, headers=raw_headers, stream=httpx.ByteStream(body))
    response.extensions = extensions
    if body and not sized:
        response.headers["Content-Length"] = str(len(body))
    response._content = body
    response.is_stream_consumed = response.is_closed = True
    return response


def _merged_headers(defaults: Mapping[str, str], headers: Any) -> Any:
    """The client's default headers with a request's own: they replace a default of the
    same name, and keep their repeats and order."""
    from multidict import CIMultiDict

    merged: CIMultiDict[str] = CIMultiDict(defaults)
    given: CIMultiDict[str] = CIMultiDict(headers)
    for name in set(given.keys()):
        merged.popall(name, None)
    merged.extend(given)
    return merged


@functools.lru_cache(maxsize=256)
def aiohttp_url(url: str) -> tuple[str, str | None]:
    """``url`` as aiohttp will connect to it, and the Host header httpx would send for it
    when its host had to be spelled out (else None).

    A host that is a bare number (``0``, ``2130706433``, ``127.1``) is an IPv4 address to
    the system resolver, and so to httpx, but aiohttp refuses it; it becomes the dotted
    address it stands for (``0.0.0.0``, ``127.0.0.1``). Any other URL is left as it is.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host or not host.replace(".", "").isdigit():
        return url, None
    try:
        address = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:  # no address at all (``1.2.3.4.5``): aiohttp says so
        return url, None
    if address == host:
        return url, None
    userinfo, at, host_port = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{address}{host_port[len(host) :]}"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port
    header = host if port is None or port == default_port else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl(), header


@functools.cache
def _aiohttp_transport() -> type[AiohttpTransport]:
    """httpx-aiohttp's transport, sending a bare-number host to its address (``aiohttp_url``)."""
    from httpx_aiohttp import AiohttpTransport

    class Transport(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            url, host = aiohttp_url(str(request.url))
            if host is None:
                return await super().handle_async_request(request)
            given, request.url = request.url, httpx.URL(url)  # Host stays as httpx set it
            try:
                return await super().handle_async_request(request)
            finally:
                request.url = given

    return Transport


class _Shards(httpx.AsyncBaseTransport):
    """A transport over ``count`` httpx connection pools used in turn, none of them large."""

    def __init__(self, count: int, limits: httpx.Limits) -> None:
        # One TLS context (httpx's default, as each pool made its own) for all the pools:
        # reading the roots took ~30 ms a pool, 0.23 s for the 8 pools of concurrency 64.
        verify = tls_context()
        self.pools = [httpx.AsyncHTTPTransport(limits=limits, verify=verify) for _ in range(count)]
        self.turn = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.turn = (self.turn + 1) % len(self.pools)
        return await self.pools[self.turn].handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()
