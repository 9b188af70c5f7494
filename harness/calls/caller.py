"""The ``Caller``: request key, cache lookup by mode, the provider on a miss, the counters.

See the package docstring (``harness.calls``) for the whole path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from harness import thread_work
from harness.cache.keys import canonical_key_json, canonical_request, request_key
from harness.calls.cache_writer import CacheWriter
from harness.calls.halt import CallHalted, has_sent, may_send
from harness.calls.result import CallResult
from harness.calls.sending import CallSending
from harness.calls.stats import CallKind, CallStats
from harness.config import DEFAULT_TIMEOUT_S
from harness.errors import BudgetExceeded, CacheCorrupt, ConfigError, ProviderError, ReplayMiss
from harness.intercept.allowed import AllowedHosts
from harness.intercept.endpoints import Endpoints

if TYPE_CHECKING:
    import httpx

    from harness.cache.entry import CacheEntry, KnownRequest
    from harness.cache.store import EntryStore
    from harness.calls.budget import Budget
    from harness.calls.limits import RateLimits
    from harness.intercept.activate import Interception
    from harness.intercept.app_provider import AppProvider
    from harness.model_io import ModelRequest
    from harness.providers.base import Provider
    from harness.retry import RetryPolicy

__all__ = ["CACHE_MODES", "CacheMode", "CallDeferred", "CallResult", "Caller"]

CacheMode = Literal["use", "replay", "refresh", "off"]
CACHE_MODES: tuple[str, ...] = ("use", "replay", "refresh", "off")


class CallDeferred(Exception):
    """Raised instead of sending when ``Caller.defer_misses`` is set: the row goes elsewhere.

    Not a ``ProviderError``: nothing failed, so no error row or error score is recorded.
    """


class Caller(CallSending):
    """The one call path. Holds the cache, the HTTP client, the retry policy and the stats.

    ``call`` is safe to use from many coroutines at once: network sends are bounded by
    ``concurrency``, and so, apart, are local (``python:``/``echo``) calls, whose code may
    not be thread-safe (its own HTTP calls take the network's bound, not theirs); cache hits
    are not bounded.
    ``rate_limits`` (``harness.calls.limits``) and ``budget`` (``harness.calls.budget``)
    are optional. While a local call runs, the HTTP calls its code makes to the LLM
    ``endpoints`` come back here as ``app`` calls (``harness.intercept``).
    """

    def __init__(
        self,
        *,
        cache: EntryStore | None,
        mode: CacheMode = "use",
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        rate_limits: RateLimits | None = None,
        budget: Budget | None = None,
        transport: str | None = None,
    ) -> None:
        from harness.retry import RetryPolicy

        if mode not in CACHE_MODES:
            raise ConfigError(f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}")
        if mode != "off" and cache is None:
            raise ValueError("a cache is required unless mode is 'off'")
        self.cache = cache
        self.mode = mode
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.rate_limits = rate_limits
        self.budget = budget
        self.transport = transport
        self.stats = CallStats()
        self._counting = threading.Lock()
        self.endpoints = Endpoints()  # where the app calls of local models are intercepted
        # (row id, judge): judges whose cached answer for that row could not be read; a
        # resume asks them again (``harness.judges.judge.Judge.ask``).
        self.ask_judges_again: set[tuple[str, str]] = set()
        self.allowed_hosts = AllowedHosts()  # what else replay lets them reach
        self._interception: Interception | None = None
        self._client = client
        self._owns_client = client is None
        self._semaphore: asyncio.Semaphore | None = None
        self._local_semaphore: asyncio.Semaphore | None = None
        self.halted = False  # a stop was asked: rows that have sent nothing send nothing
        self._inflight: dict[str, asyncio.Future[CallResult]] = {}
        # This thread's loop has a release of held reads to come (its hits share a read
        # transaction until it turns); per thread, as each thread reads on its own connection.
        self._reads_held = threading.local()
        # The same for misses sent from the app's threads (``harness.calls.in_thread``).
        self._blocking_flights: dict[str, concurrent.futures.Future[CallResult]] = {}
        self._reached: set[str | None] = set()  # base URLs that have answered at least once
        self._cache_writer: CacheWriter | None = None
        # Called before each commit of answers to the cache, in the writer's thread (a run
        # saves its counters there: ``harness.store.usage_file``).
        self.before_cache_commit: Callable[[], None] | None = None
        self._on_event = on_event or (lambda kind, data: None)
        # Spark scale-out (harness.runner.spark). On the driver, ``defer_misses`` answers
        # what the cache holds and local calls, and raises CallDeferred for the rest; each
        # row's hits (``seeds``: row id -> entries) and local answers (``local_seeds``: row
        # id -> request key -> result) are kept to ship with it. On an executor, the shipped
        # entries are in its cache and named by ``precounted``, the local answers are in
        # ``local_answers``: the driver counted those, so they are not counted again.
        self.defer_misses = False
        self.seeds: dict[str, list[CacheEntry]] | None = None
        self.local_seeds: dict[str, dict[str, CallResult]] | None = None
        self.precounted: frozenset[str] = frozenset()
        self.local_answers: dict[str, dict[str, CallResult]] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **kwargs: Any) -> Caller:
        """A Caller configured by the ``[calls]`` table of harness.toml and rate limits.

        ``[calls]`` keys: ``timeout_s``, ``max_retries``, ``retry_base_delay_s``,
        ``retry_max_delay_s``, ``transport`` (``aiohttp``, ``httpx-shards`` or ``httpx``).
        ``kwargs`` go to the constructor (``cache``, ``mode``, ``concurrency``, ``budget``...).
        """
        from harness.calls.settings import caller_options

        caller = cls(**{**caller_options(settings), **kwargs})
        caller.endpoints = Endpoints.from_settings(settings)  # [intercept] and base URLs
        caller.allowed_hosts = AllowedHosts.from_settings(settings)  # [intercept] allowed_hosts
        return caller

    # -- the call path -------------------------------------------------------------------

    async def call(
        self,
        provider: Provider,
        request: ModelRequest,
        *,
        kind: CallKind = "model",
        row_id: str | None = None,
        stored: list[asyncio.Future[None]] | None = None,
        ask_again: bool = False,
    ) -> CallResult:
        """Answer ``request``: from the cache when the mode allows, else from ``provider``.

        ``ask_again``: in ``use`` mode, send even when the cache holds an answer, and store
        the new one in its place (a judge answer that could not be read, on ``--resume``).

        An answer from the provider is stored in the cache before this returns, unless
        ``stored`` is given: then it returns with the answer and appends the write's future
        to ``stored``, for the caller to await before it records anything that needs the
        entry (an intercepted call's row: ``_local``). The app waiting on that call goes on
        meanwhile instead of waiting for the commit in another thread.
        """
        if provider.local:
            return await self._local(provider, request, kind, row_id)
        canonical = canonical_request(request)  # kept: the cache entry stores it too
        key, encoded = canonical_key_json(canonical)
        if self.mode == "replay" or (self.mode == "use" and not ask_again):
            hit = self._hit(provider, key, kind, row_id, held=True, request=(canonical, encoded))
            if hit is not None:
                return hit
            if self.mode == "replay":
                self._replay_miss(canonical, kind, row_id)
        if self.defer_misses:
            raise CallDeferred(kind)
        pending = self._inflight.get(key)
        while pending is not None:  # the same request is on the wire already: share its answer
            try:
                return await asyncio.shield(pending)
            except CallHalted:  # its row was halted; this one has paid, so it goes on alone
                if not has_sent():
                    raise
            pending = self._inflight.get(key)
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        writing: asyncio.Future[None] | None = None
        try:
            response = await self._send(provider, request, kind)
            result = self._answered(provider, key, response, kind)
            future.set_result(result)  # callers sharing this request go on now
            if self.mode != "off":
                # Written off the event loop; the key stays "in flight" until the entry is
                # stored, so an identical request meanwhile is not sent again.
                if stored is None:
                    await self._writer().write(key, canonical, response)
                else:
                    writing = asyncio.ensure_future(self._writer().write(key, canonical, response))
                    writing.add_done_callback(lambda _: self._inflight.pop(key, None))
                    stored.append(writing)
            return result
        except BaseException as e:
            if not future.done():
                future.set_exception(e)
                future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            if writing is None:
                del self._inflight[key]

    def call_blocking(
        self,
        provider: AppProvider,
        request: ModelRequest,
        send: Callable[[], Any],
        module: ModuleType,
        *,
        loop: asyncio.AbstractEventLoop,
        kind: CallKind = "app",
        row_id: str | None = None,
        stored: list[Any] | None = None,
    ) -> CallResult:
        """``call`` for a miss of a blocking HTTP call in the app's own thread, sent there
        on the app's transport (``harness.calls.in_thread``); ``loop`` is the one ``call``
        runs on. Only when ``sends_in_thread(provider)``."""
        from harness.calls.in_thread import call_blocking

        return call_blocking(
            self,
            provider,
            request,
            send,
            module,
            loop=loop,
            kind=kind,
            row_id=row_id,
            stored=stored,
        )

    def sends_in_thread(self, provider: Provider) -> bool:
        """Whether a blocking miss to ``provider`` may be sent from the app's thread: not
        when a budget or rate limit must be reserved on the event loop first, nor when
        misses are deferred (Spark's driver)."""
        return (
            self.budget is None
            and not self.defer_misses
            and (self.rate_limits is None or self.rate_limits.limiter(provider) is None)
        )

    async def _local(
        self, provider: Provider, request: ModelRequest, kind: CallKind, row_id: str | None
    ) -> CallResult:
        """A ``python:``/``echo`` call: never cached, but remembered for Spark (see __init__).

        The HTTP calls its code makes to LLM endpoints are ``app`` calls of this path, on the
        row's scope (``harness.intercept``): their keys are the result's ``app_keys``, and
        the first of them to fail (a replay miss, a call that failed after its retries)
        fails this call, whatever the code did with the error it was handed.
        """
        key = None
        if row_id is not None and (self.local_seeds is not None or self.local_answers):
            key = request_key(request)
            known = self.local_answers.get(row_id, {}).get(key)
            if known is not None:  # answered (and counted) on the driver
                return known
        interception = self._intercepting()
        scope = interception.scope(row_id)
        scope.writes = []  # the cache writes of its calls, awaited here (see ``call``)
        try:
            try:
                async with self._local_limit():
                    may_send(self.halted, sending=False)  # a stop may have come meanwhile
                    with interception.active(scope):
                        response = await self._attempt(provider, request, None)
            finally:
                await scope.settle()
        except ProviderError as e:
            if scope.failure is None:
                self._count_error(kind, e)
                raise
            if isinstance(scope.failure, CallHalted):  # the stop's, not the app's failure
                raise CallHalted from None
            raise self._app_failure(provider, kind, scope.failure) from scope.failure
        if isinstance(scope.failure, CallHalted):
            raise CallHalted
        if scope.failure is not None:  # the code carried on: the call failed all the same
            raise self._app_failure(provider, kind, scope.failure) from scope.failure
        self.stats.of(kind).local_calls += 1
        result = CallResult(
            response.text,
            None,
            False,
            response.input_tokens,
            response.output_tokens,
            response.latency_s,
            0.0,
            app_keys=tuple(scope.keys),
        )
        if key is not None and self.local_seeds is not None:
            self.local_seeds.setdefault(row_id, {})[key] = result  # type: ignore[arg-type]
        return result

    def cached(
        self,
        provider: Provider,
        request: ModelRequest,
        *,
        kind: CallKind = "model",
        row_id: str | None = None,
    ) -> CallResult | None:
        """The cached answer to ``request``, counted as a hit, when the mode reads the cache;
        else None (then ``call`` it). Safe from any thread: a plain ``python:`` model's SDK
        call is answered here from its own worker thread, without waiting for the loop."""
        if self.mode not in ("use", "replay") or provider.local:
            return None
        return self.cached_key(provider, request_key(request), kind=kind, row_id=row_id)

    def cached_key(
        self,
        provider: Provider,
        key: str,
        *,
        kind: CallKind = "model",
        row_id: str | None = None,
        request: KnownRequest | None = None,
        held: bool = False,
    ) -> CallResult | None:
        """``cached`` for the request whose key is ``key`` (an intercepted call is keyed
        before its request is made: ``harness.intercept.wire.JSONCall``).

        ``request``: its canonical request and canonical JSON, as ``call`` passes them, so
        the entry's stored request is not parsed again (``ResponseCache.get``). ``held``:
        the lookup holds reads as ``call``'s do, until the event loop running in this thread
        turns (the caller must be on this Caller's loop then: an async client's call from
        the model's coroutine), or, in a thread with no loop, until its stretch of work ends
        (``harness.thread_work``: a ``python:`` model's call); in a thread in none (one the
        user's code started), it holds nothing.
        """
        if self.mode not in ("use", "replay") or provider.local:
            return None
        # A miss known without SQLite: in an app's busy thread, each SQLite call waits for
        # the GIL (harness.cache.known_keys). Replay asks SQLite always: it never sends.
        assert self.cache is not None
        if self.mode == "use" and self.cache.known_absent(key):
            return None
        return self._hit(provider, key, kind, row_id, held=held, request=request)

    def _hit(
        self,
        provider: Provider,
        key: str,
        kind: CallKind,
        row_id: str | None,
        held: bool = False,
        request: KnownRequest | None = None,
    ) -> CallResult | None:
        hit = self._lookup(provider, key, kind, row_id, held, request)
        if hit is None or key in self.precounted:
            return hit
        self._count_hit(provider, hit, kind)
        return hit

    def _intercepting(self) -> Interception:
        if self._interception is None:
            from harness.intercept.activate import Interception

            self._interception = Interception(self)
        return self._interception

    def _app_failure(self, provider: Provider, kind: CallKind, failure: BaseException) -> Exception:
        """What a local call raises when one of its app calls failed: the run's control
        flow as it is (a deferred row, the budget), anything else as the call's error."""
        if isinstance(failure, CallDeferred | BudgetExceeded):
            return failure
        error = ProviderError(f"{provider.uri}: {failure}")
        self._count_error(kind, error)
        return error

    def _lookup(
        self,
        provider: Provider,
        key: str,
        kind: CallKind,
        row_id: str | None,
        held: bool = False,
        request: KnownRequest | None = None,
    ) -> CallResult | None:
        assert self.cache is not None
        state = self._reads_held
        # After a miss, this thread's lookups are likely a cold run's misses: a plain select
        # each (one statement, not BEGIN, select, COMMIT and the select again), till a hit.
        missed, state.missed = getattr(state, "missed", False), held
        hold = held and not missed
        if hold and not getattr(state, "due", False):
            if asyncio._get_running_loop() is not None:  # released when the loop turns
                state.due = True
                asyncio.get_running_loop().call_soon(self._release_reads)
            elif thread_work.at_end(self._release_reads):  # when the model's call returns
                state.due = True
            else:  # a thread the user's code started: nothing would end a transaction
                hold = False
        try:
            entry = self.cache.get(key, held=hold, request=request)
        except CacheCorrupt as e:
            if self.mode == "replay":  # replay never calls the model: no answer to give
                from harness.cache.store import REPAIR_HINT

                raise CacheCorrupt(f"row {row_id}: {kind} call: {e}; {REPAIR_HINT}") from e
            self._on_event("cache_corrupt", {"key": key, "error": str(e)})
            return None
        if entry is None:
            return None
        state.missed = False
        if self.seeds is not None and row_id is not None:
            self.seeds.setdefault(row_id, []).append(entry)
        response = entry.to_response()
        # The cost a hit saved is priced now, from its stored token counts.
        return CallResult(
            response.text,
            key,
            True,
            response.input_tokens,
            response.output_tokens,
            response.latency_s,
            self._cost(provider, response),
            response.raw,
        )

    def _release_reads(self) -> None:
        self._reads_held.due = False
        if self.cache is not None:
            self.cache.release_reads()

    def _replay_miss(self, canonical: dict[str, Any], kind: CallKind, row_id: str | None) -> None:
        from harness.cache.explain import explain_miss

        assert self.cache is not None
        explanation = explain_miss(canonical, self.cache.nearest(canonical, limit=3))
        call = f"app call to {canonical['base_url']}" if kind == "app" else f"{kind} call"
        # No row: an app call from a thread the model started (see harness.intercept.scope).
        where = f"for row {row_id}" if row_id is not None else "from a thread the model started"
        miss = ReplayMiss(
            f"{ReplayMiss.PREFIX}the {call} {where} is not in the cache: {explanation}",
            explanation=explanation,
            call=call,
        )
        self._count_error(kind, miss)  # a call that failed, counted like any other
        raise miss

    # Sending a miss (``_send``, ``_attempt``, ``_limit``, ``_http``...) is in the base class
    # ``harness.calls.sending.CallSending``.

    def _writer(self) -> CacheWriter:
        if self._cache_writer is None:
            with self._counting:  # an app's thread may be first (``call_blocking``)
                if self._cache_writer is None:
                    assert self.cache is not None
                    self._cache_writer = CacheWriter(self.cache, self.before_cache_commit)
        return self._cache_writer

    async def aclose(self) -> None:
        self._release_reads()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
        if self._cache_writer is not None:
            self._cache_writer.close()
            self._cache_writer = None
