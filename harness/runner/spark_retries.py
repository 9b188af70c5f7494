"""The Spark Connect client's retries: bounded, and none once the server is gone.

pyspark's client retries a call the server does not answer (gRPC ``UNAVAILABLE``) 15 times,
up to a minute apart, saying nothing: a server that died under a run held it for ten
minutes and more, a Ctrl-C's cancel waited behind those retries, and so did the end of the
run (releasing the session) and the exit (the client's threads that release the results
retry too, and the interpreter joins them). Here an unavailable server is asked once
whether it still answers at all (:class:`ServerWatch`); if not, no call to it is retried
again, and the run fails at once as the environment's fault. A server that answers keeps
the client's retries, five of them (~17 s in all). A server stopped politely fails its jobs
with a stopped SparkContext while it still answers: that is its loss too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["RETRIES", "ServerWatch"]

RETRIES = 5  # pyspark's backoff: 0.05, 0.2, 0.8, 3.2, 12.8 s, ~17 s in all
# What a job fails with once the server's Spark has stopped (SIGTERM, its stop script)
_STOPPED = "Cannot call methods on a stopped SparkContext"


class ServerWatch:
    """Whether the Spark Connect server a session talks to is gone; once gone, for good."""

    def __init__(self, alive: Callable[[], bool]) -> None:
        self._alive = alive  # raises OSError when the server cannot be reached
        self._lock = threading.Lock()
        self.lost = False

    def gone(self) -> bool:
        """Ask the server (once at a time) unless it is known to be gone."""
        with self._lock:
            if not self.lost:
                try:
                    self.lost = not self._alive()
                except OSError:
                    self.lost = True
            return self.lost

    def why_lost(self, error: BaseException) -> str | None:
        """Why a call failed with ``error`` if the server is gone (for good), else None."""
        if _STOPPED in str(error):  # a server stopping politely still answers a while
            self.lost = True
            return f"it stopped ({_STOPPED})"
        return "it no longer answers" if self.gone() else None

    def install(self, spark: Any) -> None:
        """Make the session's client retry as the module says."""
        client = getattr(spark, "client", None)
        if client is not None and hasattr(client, "set_retry_policies"):
            client.set_retry_policies([_policy(self)])


def _policy(watch: ServerWatch) -> Any:
    import grpc
    from pyspark.sql.connect.client.retries import DefaultPolicy

    class UntilGone(DefaultPolicy):
        """pyspark's default policy, with fewer retries, and none to a server gone."""

        def can_retry(self, e: BaseException) -> bool:
            if watch.lost or not super().can_retry(e):
                return False
            code = getattr(e, "code", None)  # a grpc.RpcError's status, when it has one
            unavailable = callable(code) and code() == grpc.StatusCode.UNAVAILABLE
            return not (unavailable and watch.gone())

    return UntilGone(max_retries=RETRIES)
