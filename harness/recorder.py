"""``harness.replay``: the LLM calls of any block of code, answered from a cassette.

::

    with harness.replay("tests/cassettes/rag.jsonl", mode="replay"):
        answer = my_app.answer("What is RAG?")

Inside the block, every JSON POST the code sends through httpx to an LLM endpoint goes
through harness's call path (``harness.intercept``), with the cassette (the format of
``harness cache export``) as its cache. ``mode`` is a cache mode, and says what happens to
the file:

- ``replay`` (default): answers come from the cassette only; a call it does not hold fails
  with what differs from the closest recorded call, and nothing leaves the machine (only
  loopback is open, and the hosts ``allowed_hosts=`` and ``[intercept] allowed_hosts``
  name, which are reached as they are). A missing cassette is an error. The file is never
  written.
- ``use``: recorded answers are replayed, the others are sent and added; the cassette is
  written when something was added, keeping every entry it had.
- ``refresh``: every call is sent again, and the cassette is rewritten with exactly the
  calls the block made (entries it no longer uses are dropped; a block that failed keeps
  them, as it may not have made every call: a call of it failed, or it raised).
- ``off``: calls are sent and counted, the cassette is neither read nor written.

A recording block that failed and stored nothing leaves the file as it was (none, if there
was none), so the next replay says there is no cassette rather than that a call is not in it.

In ``replay``, ``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` are set to a placeholder for
the block when they are not set, so SDK clients built inside it start without a real key
(nothing is sent anyway); they are unset again when the block ends.

A failure inside the block (a miss, a call that failed after its retries, a request that
carries a credential in its URL or body) fails the block when it ends, even if the code
caught the error it was handed. ``harness.evaluate`` inside the block uses the same cassette
and mode for its own model and judge calls. Writing refuses a cassette that would hold the
value of an API key from the environment or from a request's credential headers. Writers
of one cassette in several processes (pytest-xdist) take turns under a file lock.

The pytest plugin (``harness.testing.pytest_plugin``) is this, per marked test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from harness.errors import CacheError, ConfigError, HarnessError, ReplayMiss

if TYPE_CHECKING:
    from harness.cache.memory import MemoryCache
    from harness.calls import Caller
    from harness.intercept.scope import Scope

__all__ = ["MODES", "Recorder", "replay"]

MODES = ("replay", "use", "refresh", "off")


def replay(
    path: str | os.PathLike[str],
    mode: str = "replay",
    *,
    home: str | os.PathLike[str] | None = None,
    hosts: tuple[str, ...] | list[str] | str = (),
    allowed_hosts: tuple[str, ...] | list[str] | str = (),
) -> Recorder:
    """A ``Recorder`` for ``with`` (see the module docstring). ``hosts`` adds LLM endpoints to
    ``[intercept] hosts`` of harness.toml; ``allowed_hosts`` adds to ``[intercept]
    allowed_hosts`` the hosts that replay lets the code reach as they are (``"db:5432"``,
    ``"*.internal"``, ``"10.0.0.*"``: see ``harness.intercept.allowed``); ``home`` is the
    project whose settings apply."""
    return Recorder(path, mode, home=home, hosts=hosts, allowed_hosts=allowed_hosts)


class _LoopThread:
    """An event loop in a daemon thread, where the recorder's call path runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(started.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="harness-replay", daemon=True)
        self.thread.start()
        started.wait()

    def run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Recorder:
    """A cassette in use (see the module docstring). After the block: ``stats`` (the
    counters of the calls made, by kind), ``keys`` (the request keys of the block's own
    calls, in order), ``failure`` (the first failure, or None) and ``written`` (entries
    written to the cassette, None if it was not written)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str = "replay",
        *,
        home: str | os.PathLike[str] | None = None,
        hosts: tuple[str, ...] | list[str] | str = (),
        allowed_hosts: tuple[str, ...] | list[str] | str = (),
        name: str | None = None,
        record_hint: str | None = None,
        rerecord_hint: str | None = None,
        shown_path: str | None = None,
        origin: str = "replay",
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown replay mode {mode!r}; use one of {', '.join(MODES)}")
        self.path = Path(_cassette_path(path))
        self.shown_path = shown_path or str(self.path)  # the path as messages show it
        self.mode = mode
        self.home = home
        # One string is one host (not its characters).
        if isinstance(hosts, str):
            hosts = (hosts,)
        if not isinstance(hosts, (list, tuple, set, frozenset)) or not all(
            isinstance(host, str) for host in hosts
        ):
            raise ConfigError(
                f'harness.replay hosts must be a list of hosts, such as ["llm.internal"], not '
                f"{hosts!r}"
            )
        self.hosts = tuple(hosts)
        self.allowed_hosts = (allowed_hosts,) if isinstance(allowed_hosts, str) else allowed_hosts
        self.name = name  # what the scope's calls are "for" in messages (a test id)
        self.origin = origin  # "pytest" for a marked test: refusals name the marker first
        self.record_hint = record_hint or f'harness.replay("{self.path}", mode="use")'
        # For a damaged file: a mode that does not read it (``use`` would stop at it again).
        self.rerecord_hint = rerecord_hint or f'harness.replay("{self.path}", mode="refresh")'
        self.written: int | None = None
        self.keys: list[str] = []
        self.stats: dict[str, Any] = {}
        self.failure: BaseException | None = None
        self._loaded = 0
        self._started = False
        self._stack = contextlib.ExitStack()
        self._cache: MemoryCache | None = None
        self._caller: Caller | None = None
        self._scope: Scope | None = None
        self._loop: _LoopThread | None = None

    @property
    def current_failure(self) -> BaseException | None:
        """The first failure so far (the block may still be running)."""
        return self._told(self._scope.failure) if self._started and self._scope else self.failure

    def _told(self, failure: BaseException | None) -> BaseException | None:
        """``failure``, a call the cassette does not hold told in the block's terms: the call
        path's message speaks of ``--cache replay`` and a row, which a block has neither."""
        if type(failure) is not ReplayMiss or failure.call is None:
            return failure
        differs = failure.explanation or str(failure)
        return ReplayMiss(
            f"harness.replay: the {failure.call} is not in {self.shown_path}: {differs}; "
            f"record it with {self.record_hint}",
            explanation=failure.explanation,
            call=failure.call,
        )

    @property
    def calls(self) -> dict[str, Any]:
        """The counters of the calls made so far, by kind (``app``, ``model``, ``judge``)."""
        if self._started and self._caller is not None:
            return dict(self._caller.stats.as_dict())
        return self.stats

    # -- the block ----------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(cut_short=exc_type is not None)
        if self.failure is None:
            return
        if exc_type is None:
            raise self.failure
        # A miss the app let through (the SDK's 424): the miss, which names the cassette and
        # how to record, is what the block failed of. The SDK's error stays its __context__.
        if isinstance(exc, Exception) and isinstance(self.failure, ReplayMiss):
            raise self.failure from None

    def start(self) -> None:
        """Read the cassette and route this context's calls (``__enter__`` does this)."""
        from harness.cache.memory import MemoryCache
        from harness.calls import Caller
        from harness.config import resolve_home, settings_file
        from harness.intercept.activate import activate
        from harness.intercept.allowed import AllowedHosts
        from harness.intercept.credentials import placeholder_keys
        from harness.intercept.endpoints import Endpoint, Endpoints
        from harness.intercept.scope import Cassette, Scope
        from harness.providers.pricing import set_prices

        if self._started:
            raise HarnessError(f"the recorder of {self.path} is already in use")
        settings = resolve_home(self.home).settings
        try:
            extra = [Endpoint.parse(host, "http") for host in self.hosts]
        except ValueError as exc:
            raise ConfigError(f"harness.replay hosts: {exc}") from None
        allowed = AllowedHosts.parse(self.allowed_hosts, "harness.replay allowed_hosts")
        set_prices(settings.get("prices") or {}, settings_file(settings))
        self._cache = None if self.mode == "off" else MemoryCache()
        if self._cache is not None and self.mode != "refresh":
            self._load(self._cache)
        caller = Caller.from_settings(
            settings,
            cache=self._cache,
            mode="replay" if self.mode == "replay" else "off" if self.mode == "off" else "use",
        )
        caller.endpoints = Endpoints([*extra, *caller.endpoints.configured])
        caller.allowed_hosts += allowed
        # Everything that can fail on bad input has: from here on, nothing should.
        self._loop = _LoopThread()
        self._caller = caller
        scope = Scope(caller, self._loop.loop, self._loop.thread.ident or 0, self.name)
        scope.origin = self.origin
        if self._cache is not None:
            scope.cassette = Cassette(self.path, self._cache, caller.mode)
        self._scope = scope
        self._started = True
        self._stack.enter_context(activate(scope, fallback=scope))
        if self.mode == "replay":
            self._stack.enter_context(placeholder_keys())

    def stop(self, merge_if: Callable[[], bool] | None = None, *, cut_short: bool = False) -> None:
        """End the block: stop routing, close the call path, write the cassette if the mode
        says so. ``merge_if`` (called under the file lock) tells ``refresh`` to keep the
        entries already in the file, as when tests sharing a cassette each rewrite it;
        ``cut_short`` says the block raised (a test failed or skipped), so it may not have
        made every call, and ``refresh`` keeps them too, as for a failed call."""
        if not self._started:
            return
        self._started = False
        self._stack.close()
        assert self._loop is not None and self._caller is not None and self._scope is not None
        try:
            self._loop.run(self._caller.aclose())
        finally:
            self._loop.stop()
        self.stats = self._caller.stats.as_dict()
        self.keys = list(self._scope.keys)
        self.failure = self._told(self._scope.failure)
        if self._cache is None or self.mode == "replay":
            return  # the file is only read
        if len(self._cache) == self._loaded and (
            self.failure is not None or (self.path.exists() and (self.mode == "use" or cut_short))
        ):
            # Nothing new: the file stays as it is. A block with no calls gets one; a block
            # whose calls all failed does not (its replay would blame the calls, not it).
            return
        self._save(self._cache, self._scope, merge_if, keep=cut_short)

    # -- the file -----------------------------------------------------------------------

    def _load(self, cache: MemoryCache) -> None:
        from harness.cache.cassette import import_cassette

        if not self.path.exists():
            if self.mode == "use":
                return
            raise CacheError(f"no cassette at {self.shown_path}: record it with {self.record_hint}")
        try:
            report = import_cassette(cache, self.path)
        except CacheError as exc:  # not a cassette, another version's, unreadable, empty
            problem = str(exc).replace(str(self.path), self.shown_path)
            raise CacheError(f"{problem}; record it again with {self.rerecord_hint}") from None
        if report.invalid:
            line, problem = report.invalid[0]
            more = f" (and {len(report.invalid) - 1} more lines)" if len(report.invalid) > 1 else ""
            raise CacheError(
                f"{self.shown_path} line {line}: {problem}{more}; "
                f"record it again with {self.rerecord_hint}"
            )
        self._loaded = report.added

    def _save(
        self,
        cache: MemoryCache,
        scope: Scope,
        merge_if: Callable[[], bool] | None,
        *,
        keep: bool = False,
    ) -> None:
        from filelock import FileLock

        from harness.cache.cassette import export_cassette, import_cassette
        from harness.intercept.credentials import find_secret

        secrets = {**scope.secrets, **scope.request_secrets}
        with FileLock(_lock_path(self.path)):
            # Asked even when the file is new: the first writer of a session marks it so.
            merge = self.mode == "use" or (merge_if is not None and merge_if())
            # A block that failed part way did not get to use every entry: ``refresh``
            # keeps them (its new answers win) rather than dropping them as unused.
            if self.path.exists() and (merge or keep or self.failure is not None):
                import_cassette(cache, self.path)  # what others wrote meanwhile
            recorded = cache.keys()
            for key in recorded:
                entry = cache.get(key)
                leaked = find_secret(entry.to_text(), secrets) if entry is not None else None
                if leaked is not None:
                    raise CacheError(
                        f"refusing to write {self.shown_path}: a recorded call holds the value of "
                        f"{leaked}"
                    )
            self.written = export_cassette(cache, self.path)  # makes the folders it needs


def _cassette_path(path: Any) -> str:
    """``path`` as a str: 5 (or bytes) was a TypeError from deep in pathlib, and "" was
    the current folder, refused as "a directory, not a cassette" with a command to record "."."""
    try:
        given = os.fspath(path)
    except TypeError:
        given = None
    if not isinstance(given, str):
        shown = repr(path) if len(repr(path)) <= 40 else repr(path)[:37] + "..."
        raise ConfigError(
            f"harness.replay path takes a cassette file's path (a str or os.PathLike), got "
            f"{type(path).__name__} {shown}"
        )
    if not given.strip():
        raise ConfigError(
            f"harness.replay path is empty ({given!r}): give the cassette file's path, such as "
            f'"tests/cassettes/rag.jsonl"'
        )
    return given


def _lock_path(path: Path) -> str:
    """A lock file outside the test tree, one per cassette (by its absolute path)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return os.path.join(tempfile.gettempdir(), f"harness-cassette-{digest}.lock")
