"""What happens to one HTTP request the user's code sends while a scope is active.

``route_sync`` and ``route_async`` stand in front of httpx's transports (see
``harness.intercept.patch``). For a request:

- harness's own (marked ``OWN_REQUEST``), or sent with no scope active: sent as it is;
- to a host that is not an LLM endpoint: sent as it is, except in ``replay``, where only
  loopback and the hosts an allow-list names are open and anything else raises
  ``ConnectError`` (and fails the scope). When an active scope allows some host, a request
  to a name the allow-lists do not name is sent on for the socket guard to judge by the
  address the name resolves to (``harness.intercept.network``). A ``POST`` to an LLM API's
  route on such a host (a local server named only in the app's code, ``llm_route``) is an
  LLM call harness does not see: unless an allow-list names the host, it is refused as a
  miss in ``replay``, and sent with a ``LiveCallWarning``, once per host, in ``use`` and
  ``refresh`` (``_live``);
- to an LLM endpoint but not a JSON ``POST`` (a ``GET /v1/models``, a multipart upload):
  sent as it is, uncached, except in ``replay``, where it is refused the same way;
- a JSON ``POST`` to an LLM endpoint: keyed (``harness.intercept.wire``) and handed to the
  scope's call path with ``kind="app"``: the cache answers it, or the provider on a miss, by
  the cache mode. The client gets the stored answer back as a response, streams included.

When the call path fails (a replay miss, a call that failed after its retries, a request
that carries a credential in its URL or body), the scope records the error, so the row,
block or test fails with it, and the client gets an error answer in its API's shape with
``x-should-retry: false`` (the openai and anthropic SDKs then do not retry): status 424 for
harness's refusals, 502 or 504 when the server could not be reached, or the server's own
4xx/5xx answer. An answer the server sent just now comes with its headers (request ids,
rate limits; not cookies, credentials or how the bytes came: ``wire.live_headers``); one from
the cache has none but its content type.

A cache hit is answered in the thread that asked (``Caller.cached``). An async client's
miss is sent from the call path's event loop. A blocking (sync) client's miss is sent from
its own thread on its own transport (``Caller.call_blocking``), unless a budget or rate
limit must be kept on the loop (``Caller.sends_in_thread``): then it is handed to the loop
and waited for. A blocking call that misses on the very thread that runs that loop (an
``async def`` model using a sync client) cannot wait for it without deadlocking the loop:
it is refused with a message saying so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from harness.cache.keys import canonical_key_json
from harness.errors import (
    ConfigError,
    LiveCallWarning,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ReplayMiss,
    ReplayRefused,
)
from harness.intercept.app_provider import app_provider
from harness.intercept.credentials import find_secret, header_secrets
from harness.intercept.endpoints import is_loopback, llm_route
from harness.intercept.network import is_allowed, open_to_some, where_to_add
from harness.intercept.scope import Scope, current
from harness.intercept.wire import AppRequest, JSONCall, error_response, http_response, json_call
from harness.providers._client import OWN_REQUEST
from harness.providers._http import redact_url

__all__ = ["route_async", "route_sync"]

_PASS = None  # what ``_plan`` returns for a request that is sent as it is
_DEFAULT_PORTS = {"http": 80, "https": 443}
_warned: set[tuple[str, str, int | None]] = set()  # hosts told of a live LLM call (record)
# (the stored answer, whether it is the server's error answer, the live answer's headers)
_Answer = tuple[dict[str, Any], bool, tuple[tuple[str, str], ...]]


class _Refusal(Exception):
    """A request refused before it reaches the call path; ``error`` fails the scope."""

    def __init__(self, error: Exception, api: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.api = api  # None: not an LLM endpoint, so refused as a failed connection


def _module(request: Any) -> ModuleType:
    """httpx or httpx2: the package whose ``Response`` the client expects."""
    return sys.modules[type(request).__module__.partition(".")[0]]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoint(scope: Scope, request: Any) -> str | None:
    """The API of the request's endpoint, or None; raise ``_Refusal`` in replay off-machine."""
    url = request.url
    api = scope.endpoint(url.scheme, url.host, url.port, url.path)
    if api is None and scope.mode == "replay" and not is_loopback(url.host):
        if open_to_some() and (
            is_allowed(url.host, url.port or _DEFAULT_PORTS.get(url.scheme))
            or not _is_address(url.host)  # the socket judges the address it resolves to
        ):
            return None
        raise _Refusal(
            ReplayRefused(
                f"harness replay: refused {request.method} {redact_url(str(url))}: nothing "
                f"leaves the machine while replaying (if this is an LLM endpoint, add its "
                f"host to {where_to_add('hosts')}; if it is a service the app needs, to "
                f"{where_to_add('allowed_hosts')})"
            ),
            None,
        )
    return api


def _live(scope: Scope, request: Any) -> None:
    """A ``POST`` to a host that is not an LLM endpoint: when its path is an LLM API's route
    (a local server named only in the app's code), say so once per host, as a
    ``LiveCallWarning``, or in replay refuse it as a miss (``_Refusal``); unless an
    allow-list names the host, which lets it through live on purpose. Off, nothing is
    cached anyway."""
    url = request.url
    api = llm_route(url.path)
    if api is None or scope.mode == "off":
        return
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    if scope.caller.allowed_hosts.allows(url.host, port):
        return
    host = f"[{url.host}]" if ":" in url.host else url.host
    host = f"{host}:{url.port}" if url.port is not None else host
    named = f'"{host}"'
    ways = f"[intercept] hosts = [{named}] in harness.toml"
    if scope.origin == "pytest":
        ways = f"@pytest.mark.harness(hosts=[{named}]) or {ways}"
    elif scope.origin == "replay":
        ways = f"harness.replay(..., hosts=[{named}]) or {ways}"
    where = f"{request.method} {redact_url(str(url))}"
    fix = (
        f"to record and replay its calls, add {ways}; to call it live on purpose, add it to "
        "allowed_hosts"
    )
    if scope.mode == "replay":
        raise _Refusal(
            ReplayRefused(
                f"harness replay: refused {where}: {host} is not an LLM endpoint harness "
                f"intercepts, and replay makes no live call ({fix})"
            ),
            api,
        )
    place = (url.scheme, url.host, url.port)
    if place not in _warned:
        _warned.add(place)
        kept = "recorded" if scope.cassette is not None else "cached"
        warnings.warn(
            f"harness: {where} was sent live, not {kept}: {host} is not an LLM endpoint "
            f"harness intercepts (loopback hosts are not, unless named); {fix}",
            LiveCallWarning,
            stacklevel=2,
        )


class _Keyed:
    """A call keyed for the call path: its key and provider now (all a cache hit needs), its
    request when the cache has no answer. ``known`` is its canonical request and canonical
    JSON, which a hit's entry need not parse again (``Caller.cached_key``)."""

    __slots__ = ("call", "key", "known", "provider", "sample", "secrets")

    def __init__(self, call: JSONCall, sample: int, secrets: dict[str, str]) -> None:
        self.call = call
        self.sample = sample
        self.secrets = secrets
        canonical = call.canonical(sample)
        self.key, encoded = canonical_key_json(canonical)
        self.known = (canonical, encoded)
        self.provider = app_provider(call.api, call.model, call.base_url)

    def request(self, request: Any) -> AppRequest:
        timeout = request.extensions.get("timeout")
        return self.call.request(request.headers.raw, timeout, self.secrets, self.sample)


def _plan(scope: Scope, request: Any, api: str, content: bytes) -> _Keyed | None:
    """The keyed call for the call path, or None to send it as it is."""
    url = request.url
    call = json_call(api, request.method, url, content)
    if call is None:
        if scope.mode == "replay":
            raise _Refusal(
                ReplayRefused(
                    f"harness replay: refused {request.method} {redact_url(str(url))}: only "
                    f"JSON POSTs to LLM endpoints are recorded, and nothing else leaves the "
                    f"machine while replaying"
                ),
                api,
            )
        return None
    carried = header_secrets(request.headers.raw)
    secrets = {**scope.secrets, **carried}  # a variable's name says more than a header's
    scope.saw_credentials(carried)
    leaked = find_secret(call.base_url, secrets) or find_secret(content, secrets)
    if leaked is not None:
        raise _Refusal(
            ConfigError(
                f"the request to {redact_url(str(url))} carries the value of {leaked} in its "
                f"URL or body; harness keys, caches and records no credential (send it in a "
                f"header)"
            ),
            api,
        )
    try:
        return _Keyed(call, scope.repeat(call.base_url, content), secrets)
    except ConfigError as e:  # a body no key can hold (NaN, which Python's json reads)
        raise _Refusal(e, api) from None


def _cached(scope: Scope, keyed: _Keyed) -> _Answer | None:
    """The answer from the cache, if it holds one, in the calling thread: a hit needs no
    trip to the call path's loop. On that loop (an async client's call), or in a thread
    with no loop (a sync client's), the lookup holds reads as the call path's own hits do
    (``Caller.cached_key``). Raise what the lookup raised (recorded on the scope)."""
    running = asyncio._get_running_loop()
    try:
        result = scope.caller.cached_key(
            keyed.provider,
            keyed.key,
            kind="app",
            row_id=scope.row_id,
            request=keyed.known,
            held=running is None or running is scope.loop,
        )
    except Exception as e:  # a corrupt entry in replay
        scope.fail(e)
        raise
    if result is None:
        return None
    scope.record(result.request_key)
    return result.raw, False, ()


async def _answer(scope: Scope, provider: Any, request: AppRequest) -> _Answer:
    """The answer (``_Answer``) from the call path; raise what the call path raised (after
    recording it on the scope)."""
    try:
        result = await scope.caller.call(
            provider, request, kind="app", row_id=scope.row_id, stored=scope.writes
        )
    except Exception as e:
        return _failed(scope, e)
    return _kept(scope, result)


def _answer_here(
    scope: Scope,
    provider: Any,
    request: AppRequest,
    send: Callable[[], Any],
    module: ModuleType,
) -> _Answer:
    """``_answer`` for a blocking miss, sent from this thread (``Caller.call_blocking``)."""
    try:
        result = scope.caller.call_blocking(
            provider,
            request,
            send,
            module,
            loop=scope.loop,
            kind="app",
            row_id=scope.row_id,
            stored=scope.writes,
        )
    except Exception as e:
        return _failed(scope, e)
    return _kept(scope, result)


def _failed(scope: Scope, error: Exception) -> _Answer:
    """The server's error answer to hand the client, or raise ``error``; either way, the
    scope fails with it."""
    scope.fail(error)
    if isinstance(error, ProviderHTTPError) and error.response is not None:
        return error.response, True, error.headers
    raise error


def _kept(scope: Scope, result: Any) -> _Answer:
    if result.request_key:
        scope.record(result.request_key)
    return result.raw, False, result.headers


def _respond(request: Any, answer: _Answer) -> Any:
    raw, is_error, headers = answer
    extra = [*headers, ("x-should-retry", "false")] if is_error else headers
    return http_response(_module(request), raw, extra)


def _refused(request: Any, api: str | None, error: BaseException) -> Any:
    """The error answer for a failed or refused call (see the module docstring)."""
    module = _module(request)
    if api is None:
        raise module.ConnectError(str(error), request=request)
    if isinstance(error, ProviderTimeout):
        status, kind = 504, "harness_upstream_timeout"
    elif isinstance(error, ProviderError):
        status, kind = 502, "harness_upstream_error"
    elif isinstance(error, ReplayMiss):
        status, kind = 424, "harness_replay_miss"
    else:
        status, kind = 424, "harness_refused"
    return error_response(module, api, status, kind, _describe(error))


def _describe(error: BaseException) -> str:
    """The message the user's client shows for a failed call."""
    if isinstance(error, ReplayMiss) and error.explanation:
        return f"harness replay: no recorded answer for this call: {error.explanation}"
    return str(error)


def route_sync(transport: Any, request: Any, send: Callable[[Any, Any], Any]) -> Any:
    """Answer a request sent through a sync transport (see the module docstring)."""
    if request.extensions.get(OWN_REQUEST):
        return send(transport, request)
    scope = current()
    if scope is None:
        return send(transport, request)
    api: str | None = None
    try:
        api = _endpoint(scope, request)
        if api is None:
            if request.method == "POST":
                _live(scope, request)
            return send(transport, request)
        keyed = _plan(scope, request, api, request.read())
        if keyed is None:
            return send(transport, request)
        try:
            answer = _cached(scope, keyed)
        except Exception as e:
            return _refused(request, api, e)
        if answer is not None:
            return _respond(request, answer)
        if threading.get_ident() == scope.loop_thread:
            raise _Refusal(
                ConfigError(
                    "a blocking HTTP call to an LLM endpoint was made on harness's event loop "
                    "(an async function using a sync client, such as OpenAI() in an async "
                    "def): use the async client (AsyncOpenAI), or make the function a plain def"
                ),
                api,
            )
        try:
            provider, asked = keyed.provider, keyed.request(request)
            if scope.caller.sends_in_thread(provider):
                answer = _answer_here(
                    scope, provider, asked, lambda: send(transport, request), _module(request)
                )
            else:
                answer = _on_loop_from_thread(scope, provider, asked)
        except Exception as e:
            return _refused(request, api, e)
        return _respond(request, answer)
    except _Refusal as refusal:
        scope.fail(refusal.error)
        return _refused(request, refusal.api, refusal.error)


async def route_async(
    transport: Any, request: Any, send: Callable[[Any, Any], Awaitable[Any]]
) -> Any:
    """Answer a request sent through an async transport (see the module docstring)."""
    if request.extensions.get(OWN_REQUEST):
        return await send(transport, request)
    scope = current()
    if scope is None:
        return await send(transport, request)
    api: str | None = None
    try:
        api = _endpoint(scope, request)
        if api is None:
            if request.method == "POST":
                _live(scope, request)
            return await send(transport, request)
        keyed = _plan(scope, request, api, await request.aread())
        if keyed is None:
            return await send(transport, request)
        try:
            answer = _cached(scope, keyed) or await _on_loop(
                scope, keyed.provider, keyed.request(request)
            )
        except Exception as e:
            return _refused(request, api, e)
        return _respond(request, answer)
    except _Refusal as refusal:
        scope.fail(refusal.error)
        return _refused(request, refusal.api, refusal.error)


def _submit(scope: Scope, provider: Any, request: AppRequest) -> Any:
    """Start answering ``request`` on the scope's loop, from another thread."""
    work = _answer(scope, provider, request)
    try:
        return asyncio.run_coroutine_threadsafe(work, scope.loop)
    except RuntimeError:  # the loop is closed: the run or block that made the call is over
        work.close()
        error = ConfigError(
            "an HTTP call to an LLM endpoint was made after the run or replay block it "
            "belongs to had ended"
        )
        scope.fail(error)
        raise error from None


def _on_loop_from_thread(scope: Scope, provider: Any, request: AppRequest) -> _Answer:
    answer: _Answer = _submit(scope, provider, request).result()
    return answer


async def _on_loop(scope: Scope, provider: Any, request: AppRequest) -> _Answer:
    """The answer from the scope's loop: awaited here if it is this one, else across threads."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:  # trio, through anyio: wait for the answer in a worker thread
        import anyio.to_thread

        return await anyio.to_thread.run_sync(_on_loop_from_thread, scope, provider, request)
    if running is scope.loop:
        return await _answer(scope, provider, request)
    return await asyncio.wrap_future(_submit(scope, provider, request))
