"""A long command's SIGINT and SIGTERM after its work: ``harness run`` and ``harness sync``.

The work (a run, a sweep, a sync) handles the signals itself while it works
(``harness.interrupt.stop_on_signals``); before it begins a signal stops the command at
once. One that came after it, as its result was shown, raised there: the command exited
130 with ``error: interrupted`` and no result, its work done and stored
(tests/runner/test_crash_consistency.py caught one after a run). ``until_shown`` holds the
signals until the result is shown (``harness.interrupt.signals_after``): the command ends
as it would have and says the signal stopped nothing; a second signal still exits at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from harness.config import Home
    from harness.interrupt import StopRequest


@contextlib.contextmanager
def until_shown(home: Home, what: str) -> Iterator[StopRequest]:
    """The stop request to give the work (``what``: a run, a sweep, a sync), held from
    before it begins until its result is shown, as the module says."""
    from harness.errors import Interrupted
    from harness.interrupt import StopRequest, signals_after

    stop = StopRequest(home.stop_grace_s)
    late = True
    try:
        with signals_after(stop):
            yield stop
    except Interrupted:
        late = False  # it stopped the work, and says so itself
        raise
    finally:
        if late and stop.requested:
            click.echo(
                f"note: {stop.signal_name} came as the {what} ended: it finished all the "
                "same, nothing was stopped",
                err=True,
            )
