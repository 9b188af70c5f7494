"""A stretch of work in one thread with a definite end, and what is to be done at that end.

A ``python:`` model's call runs in a worker thread (``asyncio.to_thread``) that then sits
idle until the next one. The call path answering that model's SDK calls from the cache may
keep something open across them, a read transaction (``harness.calls.Caller``), which must
be closed when the model's call returns, not left open in an idle thread. ``work()`` marks
the stretch (``harness.providers.python`` around the model's function); ``at_end(close)``
asks for ``close`` at its end, and says whether this thread is in one. A thread the user's
code starts itself is in none: nothing is kept open there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["at_end", "work"]

_state = threading.local()  # .depth: stretches entered; .pending: what to do at the end


@contextlib.contextmanager
def work() -> Iterator[None]:
    """A stretch of work in this thread: what ``at_end`` asked for runs as it ends (as the
    outermost ends, when stretches nest)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth:
            pending, _state.pending = getattr(_state, "pending", None), None
            for close in pending or ():
                close()


def at_end(close: Callable[[], None]) -> bool:
    """Run ``close`` when this thread's stretch of work ends (once, however often asked);
    False, and nothing asked, when the thread is in none."""
    if not getattr(_state, "depth", 0):
        return False
    pending = getattr(_state, "pending", None)
    if pending is None:
        pending = _state.pending = []
    if close not in pending:
        pending.append(close)
    return True
