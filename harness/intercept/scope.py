"""Which row, replay block or test an intercepted call belongs to, and where it is answered.

A ``Scope`` ties the user's code to one call path (a ``Caller``, or anything with its
``call``, ``mode`` and ``endpoints``) running on one event loop, and collects what the
calls of one unit of work left behind: the keys they used, in order, and the first failure.
The current scope is a context variable, so it follows the work wherever Python copies
the context: into ``asyncio`` tasks, into ``asyncio.to_thread`` (which is how a plain
``python:`` model runs) and into ``contextvars.copy_context().run``. Threads the user's code
starts itself (``threading.Thread``, ``ThreadPoolExecutor``) start with an empty context;
their calls go to the innermost *fallback* scope active in the process (the run's, the
block's or the test's), so they are still answered by the cache under the same mode, but a
run cannot tell which row made them and records them on none; a call of theirs that fails
fails every row whose model was running when it failed.

The scope of a replay block or a marked test also names its ``Cassette``, so a run started
inside it (``harness.evaluate`` in a test) uses the same cassette and mode for its own
calls. ``harness.intercept.activate`` makes scopes current.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.intercept.credentials import environment_secrets
from harness.intercept.endpoints import Endpoint, environment_endpoints

if TYPE_CHECKING:
    from harness.intercept.allowed import AllowedHosts
    from harness.intercept.endpoints import Endpoints
    from harness.model_io import ModelRequest
    from harness.providers.base import Provider

__all__ = [
    "CallPath",
    "Cassette",
    "Scope",
    "Surroundings",
    "current",
    "current_cassette",
    "entered",
]


class CallPath(Protocol):
    """What a scope needs of the call path (``harness.calls.Caller`` is one)."""

    @property
    def mode(self) -> str: ...

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def allowed_hosts(self) -> AllowedHosts: ...

    async def call(
        self,
        provider: Provider,
        request: ModelRequest,
        *,
        kind: Any = ...,
        row_id: Any = ...,
        stored: Any = ...,
    ) -> Any: ...

    def call_blocking(
        self,
        provider: Any,
        request: ModelRequest,
        send: Any,
        module: Any,
        *,
        loop: Any,
        kind: Any = ...,
        row_id: Any = ...,
        stored: Any = ...,
    ) -> Any: ...

    def sends_in_thread(self, provider: Provider) -> bool: ...

    def cached_key(
        self,
        provider: Provider,
        key: str,
        *,
        kind: Any = ...,
        row_id: Any = ...,
        request: Any = ...,
        held: bool = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class Cassette:
    """The cassette of a replay block or test: its file, its entries in memory, the mode."""

    path: Path
    cache: Any  # harness.cache.memory.MemoryCache
    mode: str


class Surroundings:
    """What a scope reads of the process: the environment's credentials and base URLs, and
    the endpoint each URL matched. Read once and shared by the scopes of one call path (a
    run's rows): read per row, the environment took 0.6 s of a 320-row run's 10 s CPU profile
    (yappi)."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] | None = None
        self._environment: tuple[Endpoint, ...] | None = None
        self._endpoints: dict[tuple[str, str, int | None, str], str | None] = {}

    @property
    def secrets(self) -> dict[str, str]:
        if self._secrets is None:  # two threads may both read it: the same answer
            self._secrets = environment_secrets()
        return self._secrets

    def endpoint(
        self, endpoints: Endpoints, scheme: str, host: str, port: int | None, path: str
    ) -> str | None:
        place = (scheme, host, port, path)
        if place in self._endpoints:
            return self._endpoints[place]
        if self._environment is None:
            self._environment = environment_endpoints()
        api = endpoints.match(scheme, host, port, path, self._environment)
        if len(self._endpoints) < _ENDPOINTS_KEPT:
            self._endpoints[place] = api
        return api


class Scope:
    """The calls of one row, replay block or test (see the module docstring)."""

    def __init__(
        self,
        caller: CallPath,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
        row_id: str | None = None,
        surroundings: Surroundings | None = None,
    ) -> None:
        self.caller = caller
        self.loop = loop
        self.loop_thread = loop_thread  # a blocking call from this thread would deadlock
        self.row_id = row_id
        self.keys: list[str] = []
        self.failure: BaseException | None = None
        self.failures = 0  # how many calls failed, and the latest failure (see ``fail``)
        self.latest_failure: BaseException | None = None
        self.cassette: Cassette | None = None
        self.origin: str | None = None  # "pytest" or "replay": a test's or a block's scope
        self.request_secrets: dict[str, str] = {}  # credential headers seen, for writers
        # A row's scope: its calls' cache writes, awaited before the row is recorded
        # (``Caller.call``'s ``stored``); None: each call waits for its own write.
        # (asyncio futures, or concurrent ones for misses sent from the app's threads)
        self.writes: list[asyncio.Future[None] | concurrent.futures.Future[None]] | None = None
        self._repeats: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._surroundings = surroundings or Surroundings()

    @property
    def mode(self) -> str:
        return self.caller.mode

    def endpoint(self, scheme: str, host: str, port: int | None, path: str) -> str | None:
        """The API of the URL's LLM endpoint, or None (the environment is read once, and
        each URL matched once, for the scopes sharing this one's ``Surroundings``)."""
        return self._surroundings.endpoint(self.caller.endpoints, scheme, host, port, path)

    @property
    def secrets(self) -> dict[str, str]:
        """Credentials in the environment (read once, as ``endpoint`` reads it)."""
        return self._surroundings.secrets

    def repeat(self, url: str, content: bytes) -> int:
        """How many times this scope has made this exact request before (its sample index)."""
        identity = hashlib.sha256(url.encode() + b"\0" + content).digest()
        with self._lock:
            seen = self._repeats.get(identity, 0)
            self._repeats[identity] = seen + 1
        return seen

    def saw_credentials(self, found: dict[str, str]) -> None:
        """Remember the credentials a request carried in its headers (by header name)."""
        if found and not all(v in self.request_secrets.values() for v in found.values()):
            with self._lock:
                known = set(self.request_secrets.values())
                for name, value in found.items():
                    if value not in known:
                        label = f"{name} of a request #{len(self.request_secrets) + 1}"
                        self.request_secrets[label] = value
                        known.add(value)

    def record(self, key: str) -> None:
        with self._lock:
            self.keys.append(key)

    def fail(self, error: BaseException) -> None:
        """Remember the first failure: it fails the row, block or test, whatever the code
        that made the call did with the error it was handed."""
        with self._lock:
            self.failures += 1
            self.latest_failure = error
            if self.failure is None:
                self.failure = error

    async def settle(self) -> None:
        """Wait until the cache holds the answers of a row's app calls (``writes``): its row
        is recorded only after them. A write that failed fails the row (``fail``).
        Cancelled, the writes go on in the cache's thread; their outcome is retrieved so
        none is reported as lost."""
        writes = self.writes or []
        if not writes:
            return
        # The writes of misses sent from the app's threads are concurrent futures.
        waits = [w if isinstance(w, asyncio.Future) else asyncio.wrap_future(w) for w in writes]
        try:
            # Shielded: a cancelled row leaves its writes to finish.
            outcomes = await asyncio.gather(*map(asyncio.shield, waits), return_exceptions=True)
        except asyncio.CancelledError:
            for write in writes:
                write.add_done_callback(_retrieve)
            raise
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                self.fail(outcome)


_ENDPOINTS_KEPT = 256  # URLs whose endpoint a scope remembers

_CURRENT: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "harness_intercept_scope", default=None
)


class _Fallbacks:
    """The fallback scopes active in the process, innermost last, each counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, list[Any]] = {}  # id(scope) -> [scope, count]; insertion order

    def enter(self, scope: Scope) -> None:
        with self._lock:
            entry = self._active.get(id(scope))
            if entry is None:
                self._active[id(scope)] = [scope, 1]
            else:
                entry[1] += 1

    def exit(self, scope: Scope) -> None:
        with self._lock:
            entry = self._active[id(scope)]
            entry[1] -= 1
            if not entry[1]:
                del self._active[id(scope)]

    def innermost(self) -> Scope | None:
        if not self._active:  # the common case, read without the lock
            return None
        with self._lock:
            for scope, _ in reversed(self._active.values()):
                return scope
        return None


_fallbacks = _Fallbacks()


@contextlib.contextmanager
def entered(scope: Scope, *, fallback: Scope) -> Iterator[Scope]:
    """``scope`` current in this context, ``fallback`` for threads that carry none."""
    token = _CURRENT.set(scope)
    _fallbacks.enter(fallback)
    try:
        yield scope
    finally:
        _fallbacks.exit(fallback)
        _CURRENT.reset(token)


def current() -> Scope | None:
    """The scope of the running code: its own, else the innermost fallback, else None."""
    scope = _CURRENT.get()
    return scope if scope is not None else _fallbacks.innermost()


def current_cassette() -> Cassette | None:
    """The cassette of the replay block or marked test the running code is in, if any."""
    scope = current()
    return scope.cassette if scope is not None else None


def _retrieve(write: asyncio.Future[None] | concurrent.futures.Future[None]) -> None:
    if not write.cancelled():
        write.exception()
