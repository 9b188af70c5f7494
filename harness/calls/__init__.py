"""The one call path: every model call and every judge call goes through ``Caller.call``.

For each request it computes the request key, looks it up in the response cache (by the
cache mode), calls the provider only on a miss, and records usage and cost. Identical
requests in flight at the same time are sent once. Errors are never cached.

A miss is sent politely: the ``--max-cost`` budget reserves its estimated cost first
(``BudgetExceeded`` instead of a call that could overspend), the model's rate limiter
spaces it out, at most ``concurrency`` requests are on the wire at once over one shared
HTTP client, and 408/429/5xx, timeouts and dropped connections are retried with backoff
and jitter, honouring Retry-After (``harness.retry``).

At most ``concurrency`` local calls (a ``python:`` model's function, ``echo``) run at once
too, apart from those requests. The HTTP calls a ``python:`` model makes to LLM endpoints
come back here as ``app`` calls
(``harness.intercept``): a blocking client's miss is sent from the app's own thread by the
same rules (``Caller.call_blocking``, ``harness.calls.in_thread``) unless a budget or rate
limit keeps it on the event loop.

The runner and the judges hold a ``Caller``; nothing else talks to a provider. From Python,
``complete("openai:/gpt-4o-mini", "Hello")`` makes one cached call.
"""

from __future__ import annotations

from harness.calls.caller import CACHE_MODES, CacheMode, CallDeferred, Caller, CallResult
from harness.calls.halt import ROW_SENT, CallHalted
from harness.calls.one_call import acomplete, complete
from harness.calls.stats import CallKind, CallStats, KindStats

__all__ = [
    "CACHE_MODES",
    "ROW_SENT",
    "CacheMode",
    "CallDeferred",
    "CallHalted",
    "CallKind",
    "CallResult",
    "CallStats",
    "Caller",
    "KindStats",
    "acomplete",
    "complete",
]
