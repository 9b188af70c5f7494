"""A miss of a blocking app call, sent from the app's own thread: the call path, minus a trip.

A plain ``python:`` model runs in a worker thread, and its SDK's calls block it. A hit is
answered in that thread (``Caller.cached``); a miss used to be handed to the call path's
event loop and its answer handed back. Each hand-over waits for the event loop, and the
event loop for the GIL, which sixteen busy worker threads hold most of the time: a cold run
of 320 calls at 100 ms took 4-15% longer intercepted than not (bench/bench_intercept.py).

So a blocking miss is sent where it was made, on the transport the app's client built, by
the same rules as ``Caller.call``: keyed the same way, refused in ``replay`` with the same
explained miss, retried by the same policy (sleeping in this thread), counted in the same
stats, an identical request in flight in another thread waited for rather than sent twice,
and stored by the same cache writer, whose commit the row awaits before it is recorded
(``stored``) as ``call`` has it. What stays on the event loop, because it is shared there:
budgets, rate limits and Spark's deferred misses (``Caller.sends_in_thread`` says no, and
the call goes to the loop as before). The call path's ``concurrency`` bound does not apply:
the app's own threads bound its blocking calls, one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from harness.calls.halt import CallHalted, has_sent, may_send
from harness.calls.result import CallResult
from harness.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from harness.cache.store import EntryStore
    from harness.calls.cache_writer import CacheWriter
    from harness.calls.stats import CallKind
    from harness.intercept.app_provider import AppProvider
    from harness.model_io import ModelRequest, ModelResponse
    from harness.providers.base import Provider
    from harness.retry import RetryPolicy

__all__ = ["call_blocking"]


class Caller(Protocol):
    """What of ``harness.calls.caller.Caller`` this uses (that module imports this one)."""

    retry: RetryPolicy
    cache: EntryStore | None
    halted: bool
    _reached: set[str | None]
    _blocking_flights: dict[str, Future[CallResult]]
    _on_event: Callable[[str, dict[str, Any]], None]

    @property
    def mode(self) -> str: ...

    def _replay_miss(
        self, canonical: dict[str, Any], kind: CallKind, row_id: str | None
    ) -> None: ...

    def _answered(
        self, provider: Provider, key: str, response: ModelResponse, kind: CallKind
    ) -> CallResult: ...

    def _retried(self, kind: CallKind, error: ProviderError) -> None: ...

    def _gave_up(self, kind: CallKind, error: ProviderError, attempts: int) -> None: ...

    def _check_reachable(
        self, provider: Provider, error: ProviderError, kind: CallKind
    ) -> None: ...

    def _writer(self) -> CacheWriter: ...


_lock = threading.Lock()  # guards each Caller's ``_blocking_flights``


def call_blocking(
    caller: Caller,
    provider: AppProvider,
    request: ModelRequest,
    send: Callable[[], Any],
    module: ModuleType,
    *,
    loop: asyncio.AbstractEventLoop,
    kind: CallKind,
    row_id: str | None,
    stored: list[Any] | None,
) -> CallResult:
    """See ``Caller.call_blocking`` and the module docstring."""
    from harness.cache.keys import canonical_key, canonical_request

    if loop.is_closed():
        raise _ended()
    canonical = canonical_request(request)
    key = canonical_key(canonical)
    if caller.mode == "replay":
        caller._replay_miss(canonical, kind, row_id)  # raises: the lookup was just made
    flights = caller._blocking_flights
    answer: Future[CallResult] = Future()
    while True:
        with _lock:
            pending = flights.get(key)
            if pending is None:
                flights[key] = answer
        if pending is None:
            break
        try:  # the same request is on the wire from another thread
            return pending.result()
        except CallHalted:  # its row was halted; this one has paid, so it goes on alone
            if not has_sent():
                raise
    written = False
    try:
        may_send(caller.halted)  # the app's own send: after a stop, a row that has sent none
        response = _send(caller, provider, request, send, module, loop, kind)
        result = caller._answered(provider, key, response, kind)
        answer.set_result(result)
        if caller.mode != "off":
            written = _store(caller, key, canonical, response, stored, flights)
        return result
    except BaseException as e:
        if not answer.done():
            answer.set_exception(e)
            answer.exception()  # retrieved: nobody else may be waiting
        raise
    finally:
        if not written:
            with _lock:
                flights.pop(key, None)


def _send(
    caller: Caller,
    provider: AppProvider,
    request: ModelRequest,
    send: Callable[[], Any],
    module: ModuleType,
    loop: asyncio.AbstractEventLoop,
    kind: CallKind,
) -> ModelResponse:
    """``Caller._send`` without the event loop: retries, and the counts of its failures."""
    attempts = 0

    def attempt() -> ModelResponse:
        nonlocal attempts
        attempts += 1
        try:
            response = provider.complete_blocking(request, send, module)
        except ProviderError as e:
            caller._check_reachable(provider, e, kind)
            raise
        caller._reached.add(provider.base_url)
        return response

    def on_retry(error: ProviderError) -> None:
        caller._retried(kind, error)
        event = {"kind": kind, "error": str(error)}
        _on_loop(loop, caller._on_event, "retry", event)  # the progress display is the loop's

    try:
        return caller.retry.run_blocking(attempt, on_retry)
    except ProviderError as e:
        caller._gave_up(kind, e, attempts)
        raise


def _store(
    caller: Caller,
    key: str,
    canonical: dict[str, Any],
    response: ModelResponse,
    stored: list[Any] | None,
    flights: dict[str, Future[CallResult]],
) -> bool:
    """Hand the answer to the cache writer (no event loop involved); with ``stored``, return
    at once (the row awaits the write), else once it is committed. The key stays in flight
    until then."""
    try:
        write = caller._writer().submit(key, canonical, response)
    except RuntimeError:  # the run closed its writer while this call was out: the answer
        from harness.cache.entry import CacheEntry  # was paid for, so it is stored here

        assert caller.cache is not None  # mode "off" stores nothing
        caller.cache.set(key, CacheEntry.from_response(canonical, response, key=key))
        return True

    def landed(_: Future[None]) -> None:
        with _lock:
            flights.pop(key, None)

    write.add_done_callback(landed)
    if stored is None:
        write.result()  # raises the write's CacheError, as ``call`` does
    else:
        stored.append(write)
    return True


def _ended() -> ConfigError:
    return ConfigError(
        "an HTTP call to an LLM endpoint was made after the run or replay block it "
        "belongs to had ended"
    )


def _on_loop(loop: asyncio.AbstractEventLoop, function: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to show it
        loop.call_soon_threadsafe(function, *args)
