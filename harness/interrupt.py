"""Stopping long work on SIGINT and SIGTERM without losing what is done.

``stop_on_signals()`` replaces the default handlers for a block of work (a run, a sync).
The first SIGINT (Ctrl-C) or SIGTERM (what ``timeout``, ``docker stop`` and CI systems
send) does not raise anywhere: it sets ``StopRequest.signum`` and calls the callbacks the
work registered (``on_stop``: stop scheduling, cancel a Spark job, wake an event loop),
and the work winds down at its next safe point: calls in flight finish (or are cancelled
after a few seconds), finished rows are written, the stores are marked, and the work
raises ``Interrupted`` (exit 130 or 143). A second signal ends the process at once with
``os._exit``: a run is left resumable all the same, because every store is written in
transactions and a run whose process is gone reads back as interrupted.

The handlers are installed only in the main thread (Python allows no other) and the
previous ones are restored when the block ends, so a library caller (a notebook) gets
them for the duration of a run only.

A command around such work (``harness run``) holds the signals after it with
``signals_after``: the work's result is shown whole and the command exits as it would have.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["SIGNAL_NAMES", "StopRequest", "signals_after", "stop_on_signals"]

SIGNAL_NAMES: dict[int, str] = {int(signal.SIGINT): "SIGINT", int(signal.SIGTERM): "SIGTERM"}
DEFAULT_GRACE_S = 5.0  # how long calls in flight may take to finish once a stop is asked


class StopRequest:
    """Whether (and by which signal) the work was asked to stop; callbacks to run then."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.signum: int | None = None
        self.grace_s = grace_s
        self.began = False  # a ``stop_on_signals`` block has handled the signals for it
        # Written to stderr if a second signal ends the process at once.
        self.last_words = "interrupted again: exiting now"
        self._callbacks: list[Callable[[int], None]] = []
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def signal_name(self) -> str:
        return SIGNAL_NAMES.get(self.signum or 0, f"signal {self.signum}")

    def on_stop(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(signum)`` when a stop is asked (at once if it was already);
        returns a function that unregisters it."""
        with self._lock:
            self._callbacks.append(callback)
            signum = self.signum
        if signum is not None:
            callback(signum)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def request(self, signum: int) -> None:
        """Ask the work to stop (what the first signal does; tests and callers may too)."""
        with self._lock:
            if self.signum is not None:
                return
            self.signum = signum
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(signum)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM as described in the module for the duration of the block."""
    stop = stop or StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach only the main thread; its own handlers stay in charge
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.requested:
            _exit_now(signum, stop.last_words)
        stop.request(signum)

    previous: dict[int, Any] = {}
    for signum in SIGNAL_NAMES:
        previous[signum] = signal.signal(signum, handle)
    stop.began = True
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_after(stop: StopRequest) -> Iterator[StopRequest]:
    """For a block that does work with ``stop_on_signals(stop)`` inside it, then shows its
    result. Until that work begins, a signal does what it did before the block (Ctrl-C
    raises ``KeyboardInterrupt`` at once: nothing exists yet to stop gracefully); while it
    works, the work handles it; once it is over, the first signal only sets ``stop`` (the
    rest is showing what is already stored: ``stop.requested`` tells the block it came)
    and a second exits at once. Without it, one that came as the work's result was shown
    raised there, and the command's exit said nothing of the run it had finished."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.began:  # this handler is back: the work is over
            if stop.requested:
                _exit_now(signum, stop.last_words)
            stop.request(signum)
            return
        before = previous[signum]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:  # as if never caught: the default action, now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in SIGNAL_NAMES:
        previous[signum] = signal.signal(signum, handle)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_now(signum: int, last_words: str) -> None:
    """The second signal: leave at once, as the user asked; the stores are transactional."""
    with contextlib.suppress(OSError):
        os.write(2, f"\nerror: {last_words}\n".encode())
    os._exit(128 + signum)
