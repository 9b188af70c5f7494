"""Turning the interception on: for one row of a run, or for a replay block or a test.

``activate(scope, fallback=...)`` installs the hooks in httpx (``harness.intercept.patch``),
makes ``scope`` current and ``fallback`` the scope of threads that carry no context, and in
replay closes the network to all but loopback and the hosts its call path allows
(``harness.intercept.network``).
``Interception`` is what a ``Caller`` holds: ``scope(row_id)`` builds a row's scope (on the
call path's loop) and ``active(scope)`` turns it on around a local (``python:``) call; the
calls of threads the user's code starts go to one scope per call path, which no row owns:
a call of theirs that fails (a replay miss, an error after retries) fails every row that was
active when it failed, since none can be told to own it, and an app that catches the SDK's
error and falls back must not pass for one whose calls were answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from harness.errors import ReplayMiss
from harness.intercept.network import closed_network
from harness.intercept.patch import install
from harness.intercept.scope import CallPath, Scope, Surroundings, current, entered

__all__ = ["Interception", "activate"]


@contextlib.contextmanager
def activate(scope: Scope, *, fallback: Scope) -> Iterator[Scope]:
    """Route this context's HTTP calls to ``scope`` (see the module docstring)."""
    install()
    with (
        entered(scope, fallback=fallback),
        (
            closed_network(scope.caller.allowed_hosts, scope.caller.endpoints, scope.origin)
            if scope.mode == "replay"
            else contextlib.nullcontext()
        ),
    ):
        yield scope


class Interception:
    """The interception of one call path's local calls (see the module docstring)."""

    def __init__(self, caller: CallPath) -> None:
        self.caller = caller
        self.unattributed: Scope | None = None
        self.surroundings = Surroundings()  # the environment, read once for every row
        # The replay block or marked test this call path runs in (harness.evaluate in a
        # test), told of a row's replay miss: the run only fails the row, and the test
        # must fail naming the call, not with what it met next (a KeyError on a metric).
        self.outer = current()

    def scope(self, row_id: str | None) -> Scope:
        """A new scope for one row; must be called on the call path's loop."""
        loop, thread = asyncio.get_running_loop(), threading.get_ident()
        return Scope(self.caller, loop, thread, row_id, self.surroundings)

    @contextlib.contextmanager
    def active(self, scope: Scope) -> Iterator[Scope]:
        """``scope`` on, with this call path's scope for calls that carry no row."""
        if self.unattributed is None or self.unattributed.loop is not scope.loop:
            self.unattributed = Scope(
                self.caller, scope.loop, scope.loop_thread, surroundings=self.surroundings
            )
        unattributed = self.unattributed
        failed_before = unattributed.failures
        try:
            with activate(scope, fallback=unattributed):
                yield scope
        finally:
            if unattributed.failures > failed_before and unattributed.latest_failure is not None:
                scope.fail(unattributed.latest_failure)
            if self.outer is not None and isinstance(scope.failure, ReplayMiss):
                self.outer.fail(scope.failure)
