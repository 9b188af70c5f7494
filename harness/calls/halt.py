"""After a stop, a row that has sent nothing sends nothing (``harness.runner.engine``).

The engine gives each row a ``ROW_SENT`` flag (a list of one bool, so the row's judge
tasks and the thread a ``python:`` model runs in, which copy the context, share it).
Every send of the call path, on the event loop or from an app's thread, passes
``may_send``: once the ``Caller`` is halted, a row whose flag is still down raises
``CallHalted`` instead of paying, and the engine drops the row (``--resume`` runs it); a
row that has sent goes on, so the grace goes to the rows that have paid. Outside a row
(``harness.replay``, a thread the app starts itself) the flag is None: never halted.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["ROW_SENT", "CallHalted", "has_sent", "may_send"]

ROW_SENT: ContextVar[list[bool] | None] = ContextVar("harness_row_sent", default=None)


class CallHalted(Exception):
    """Raised instead of sending, after a stop, for a row that has sent nothing yet. Not a
    ``ProviderError``: nothing failed, so no error row or error score is recorded."""


def has_sent() -> bool:
    """Whether this row has sent a request (True outside a row: nothing to spare)."""
    sent = ROW_SENT.get()
    return sent is None or sent[0]


def may_send(halted: bool, *, sending: bool = True) -> None:
    """Raise ``CallHalted`` if ``halted`` and this row has sent nothing; with ``sending``,
    the row has sent from now on."""
    sent = ROW_SENT.get()
    if sent is None:
        return
    if halted and not sent[0]:
        raise CallHalted
    if sending:
        sent[0] = True
