"""The one error hierarchy of harness.

Every error a user can cause or meet is a ``HarnessError``. The CLI turns any of them
into a one-line message on stderr and the error's ``exit_code`` (2 unless stated), so a
user never sees a traceback. Errors from DuckDB, SQLite, httpx, MLflow and the operating
system are mapped to these classes where they enter harness (``harness.faults`` names
the environment's faults: a full disk, a read-only home, a damaged file).

Exit codes: 0 success; 1 the work ran but did not succeed (failed rows or judge calls, a
replay miss, the budget, a refused server, a gate that failed); 2 bad usage or bad input,
and nothing else; 3 ``harness check`` (or ``compare``) cannot decide;
74 (``EX_IOERR`` of sysexits.h) the environment failed: disk, permissions, a locked or
damaged store, an MLflow store or server that cannot be written, a Spark Connect
server or Databricks workspace that cannot be reached; 130 and 143 a run (or sync)
stopped by SIGINT or SIGTERM, resumable.

::

    HarnessError                    exit 2: bad usage or bad input
    ├── ConfigError                 a flag, an environment variable or harness.toml is wrong
    │   └── RunBusy                 --resume of a run another live process is running
    ├── DataError                   a data file cannot be read or mapped
    │   ├── DatasetNotFound         NAME[@VERSION] is not in the store
    │   └── DuplicateId             two rows of the data have the same id
    ├── ModelURIError               a model URI that no provider knows, or a bad python: target
    ├── MetricError                 an unknown metric or judge, or a bad judge definition
    ├── RunNotFound                 a run id that is not in the store
    │   └── RunDeleted              the run was deleted (`runs delete --force`) while it ran
    ├── CacheError                  the response cache cannot be used (a bad cassette...)
    │   ├── CacheCorrupt            exit 74: an entry on disk failed its checksum (also an
    │   │                           EnvironmentFault: the cache is damaged, not the input)
    │   ├── CacheBusy               exit 74: another process held the cache for too long
    │   │                           (also an EnvironmentFault)
    │   └── ReplayMiss              exit 1: --cache replay met a request it has not seen
    │       └── ReplayRefused       exit 1: in replay, a request that may not leave the machine
    ├── BudgetExceeded              exit 1: --max-cost reached
    ├── RunFailed                   exit 1: failed rows or failed judge calls, after retries
    ├── EndpointUnreachable         exit 1: a server refused the first connection (run stops)
    ├── CheckFailed                 exit 1: `harness check` found a gate failed
    ├── CheckUndecided              exit 3: `harness check` cannot decide (too few rows,
    │                               too many failed rows, a replay miss, no baseline)
    ├── ProviderError               one model call failed (recorded on its row; the run goes on)
    │   ├── ProviderHTTPError       the server answered 4xx/5xx
    │   ├── ProviderTimeout         no answer in time
    │   ├── ProviderConnectionError the connection failed or dropped
    │   └── ProviderResponseError   the body could not be understood
    ├── JudgeParseError             a judge's answer had no usable verdict
    ├── Interrupted                 exit 130 (SIGINT) or 143 (SIGTERM): stopped, resumable
    └── EnvironmentFault            exit 74: the machine, not the input
        ├── DiskFull                no space left on the device (or a file size limit)
        ├── NotWritable             a read-only file system, or no permission
        ├── StoreError              the DuckDB file cannot be opened, read or written
        │   ├── StoreBusy           another process held the file for too long
        │   └── StoreCorrupt        the file is not a DuckDB database, or is damaged
        └── TrackingError           MLflow logging or sync failed
            └── TrackingStoreCorrupt  the local MLflow store is not a usable SQLite file
"""

from __future__ import annotations

from typing import Any

from harness.wording import storable


class HarnessError(Exception):
    """Root of every error harness raises on purpose."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Stored (a row's error, a run's reason) and shown: a lone surrogate a user's
        # exception quoted goes as its escape, \ud800, which UTF-8 can hold.
        message = storable(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def extended(self, more: str) -> HarnessError:
        """A copy of this error whose message goes on with ``more`` (what to do next).

        The error itself is left as it was raised (its message may be stored already)."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.message = f"{self.message}; {more}"
        twin.args = (twin.message,)
        twin.__cause__ = self
        return twin


class ConfigError(HarnessError):
    """A flag, an environment variable or harness.toml holds a value harness cannot use."""


class RunBusy(ConfigError):
    """``--resume`` of a run that a live process (on this host) is running right now."""


class DataError(HarnessError):
    """A data file or DataFrame cannot be read or mapped to an eval set."""


class DatasetNotFound(DataError):
    """A dataset name or version that is not in the store."""


class DuplicateId(DataError):
    """Two rows of the data have the same id: ``row_id`` in 1-based ``rows`` (first two)."""

    def __init__(self, row_id: str, rows: tuple[int, int]) -> None:
        super().__init__(f"duplicate id {row_id!r} in rows {rows[0]} and {rows[1]}")
        self.row_id = row_id
        self.rows = rows


class MissingId(DataError):
    """A row of the data has no value in its id column (1-based ``row``)."""

    def __init__(self, message: str, row: int) -> None:
        super().__init__(message)
        self.row = row


class ModelURIError(HarnessError):
    """A model URI that no provider understands."""


class MetricError(HarnessError):
    """An unknown metric or judge, or an invalid judge definition."""


class RunNotFound(HarnessError):
    """A run id that is not in the store."""


class RunDeleted(RunNotFound):
    """The run was deleted (``harness runs delete --force``) while it ran: it stops."""


class CacheError(HarnessError):
    """The response cache cannot be used."""


class ReplayMiss(CacheError):
    """In replay mode, a request that the cache has not seen. ``explanation`` says what
    differs from the closest cached request (``harness.cache.explain``); ``call`` names the
    call (``app call to URL``, ``judge call``), for a message made elsewhere."""

    exit_code = 1
    # How the message of a miss that fails the run begins (the run's stored reason).
    PREFIX = "--cache replay: "

    def __init__(
        self, message: str, *, explanation: str | None = None, call: str | None = None
    ) -> None:
        super().__init__(message)
        self.explanation = explanation
        self.call = call


class ReplayRefused(ReplayMiss):
    """In replay, an HTTP request the user's code made that harness cannot answer from the
    cache and will not send: to a host off the machine, or to an LLM endpoint but not a
    JSON POST."""


class BudgetExceeded(HarnessError):
    """The run reached its --max-cost budget. ``result`` holds the rows done, when known."""

    exit_code = 1
    result: Any = None


class RunFailed(HarnessError):
    """A run finished, but some rows or judge calls failed (after their retries)."""

    exit_code = 1


class CheckFailed(HarnessError):
    """``harness check``: at least one gate failed (the data show the candidate is worse)."""

    exit_code = 1


class CheckUndecided(HarnessError):
    """``harness check``: no gate failed, but at least one cannot be decided: too few rows
    to tell, too many rows without a score, a replay miss, or no baseline."""

    exit_code = 3


class EndpointUnreachable(HarnessError):
    """A model or judge server refused the first connection harness made to it, or its
    host's name did not resolve.

    Not a ``ProviderError``: nothing is listening there (or no such host is known: a typo
    in the base URL, or no network), so retrying for a minute and then failing every row
    helps nobody. The run stops at once with one line naming the URL;
    its finished rows are kept, the rows whose calls it failed are stored as failed
    (``harness.runner.engine``), and ``--resume`` goes on once the server is up.
    """

    exit_code = 1

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ProviderError(HarnessError):
    """One call to a model provider failed.

    ``retryable`` tells the executor whether trying again may help (429, 5xx, timeouts,
    dropped connections); ``retry_after`` carries a server's Retry-After in seconds.
    """

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderHTTPError(ProviderError):
    """The server answered 4xx/5xx. ``response`` is the answer in its stored form
    (``harness.intercept.wire``) when it must be handed back to the user's own client, with
    the server's ``headers`` it may be handed (``harness.intercept.wire.live_headers``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        response: dict[str, Any] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        if retryable is None:
            retryable = status == 429 or status >= 500 or status == 408
        self.retryable = retryable
        self.response = response
        self.headers = headers


class ProviderTimeout(ProviderError):
    retryable = True


class ProviderConnectionError(ProviderError):
    """``refused``: nothing listened at the address (ECONNREFUSED); ``unresolved``: the
    host's name did not resolve, with the resolver's reason. Either way no request was sent.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        refused: bool = False,
        unresolved: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.refused = refused
        self.unresolved = unresolved


class ProviderResponseError(ProviderError):
    """The provider answered 2xx with a body harness cannot understand."""


class JudgeParseError(HarnessError):
    """A judge's answer held no verdict harness could parse."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class Interrupted(HarnessError):
    """A run or a sync stopped by SIGINT (exit 130) or SIGTERM (exit 143); resumable.

    ``result`` holds what the stopped work had done (a ``RunResult`` for a run), when known.
    """

    exit_code = 130

    def __init__(self, message: str, *, signum: int, result: Any = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
        self.result = result


class EnvironmentFault(HarnessError):
    """The machine failed harness, not the user's input: exit 74 (``EX_IOERR``).

    ``path`` is the file or folder harness was using when it happened, when known.
    """

    exit_code = 74

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DiskFull(EnvironmentFault):
    """No space left on the device (ENOSPC), or a file size limit reached (EFBIG)."""


class NotWritable(EnvironmentFault):
    """A read-only file system (EROFS) or a missing permission (EACCES, EPERM)."""


class StoreError(EnvironmentFault):
    """The DuckDB store cannot be opened, read or written."""


class StoreBusy(StoreError):
    """Another process held the DuckDB file longer than harness was willing to wait."""


class StoreCorrupt(StoreError):
    """The DuckDB file is not a DuckDB database, or it is damaged."""


class TrackingError(EnvironmentFault):
    """MLflow logging or sync failed: the store or the server could not be written."""


class TrackingStoreCorrupt(TrackingError):
    """The local MLflow store (``mlruns/mlflow.db``) is not a usable SQLite database."""


class CacheCorrupt(CacheError, EnvironmentFault):
    """A cache entry failed its checksum or could not be decoded.

    Both a ``CacheError`` and an ``EnvironmentFault`` (exit 74): the cache on disk is
    damaged (a crash, a full disk, a hand edit), which the user's input did not cause and
    ``harness cache verify``/``prune`` repair. In ``--cache use`` it is a miss; only replay
    and export meet it as an error.
    """


class CacheBusy(CacheError, EnvironmentFault):
    """Another process held the cache's SQLite file (a write) longer than harness waited.

    Exit 74, as ``StoreBusy`` for the DuckDB file: the machine is busy, the input is fine.
    """


class RowsFailedWarning(UserWarning):
    """``evaluate`` finished, but rows failed or metrics raised: the result holds the rest.

    A warning, not an error, so that what was paid for is returned (the CLI exits 1); a
    notebook shows it, and ``warnings.simplefilter("error", RowsFailedWarning)`` makes a
    script stop on it as ``mlflow.evaluate`` would.
    """


class UnknownParamWarning(UserWarning):
    """A parameter name harness does not know but nearly does (``params={"temprature":
    0.7}``): it is sent as given, where a local server ignores it. Said before the run;
    ``warnings.simplefilter("error", UnknownParamWarning)`` makes a script stop on it."""


class LiveCallWarning(UserWarning):
    """A call to an LLM API's route on a host harness does not intercept (a local server
    named only in the app's code) was sent live, neither cached nor recorded; said once per
    host (``harness.intercept.routing``)."""
