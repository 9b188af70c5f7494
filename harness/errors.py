"""The one error hierarchy of harness.

Every error a user can cause or meet is a ``HarnessError``. The CLI turns any of them
into a one-line message on stderr and the error's ``exit_code`` (2 unless stated), so a
user never sees a traceback for their own mistake. Errors from DuckDB, httpx and MLflow
are mapped to these classes where they enter harness.

::

    HarnessError                    exit 2: bad usage or bad input
    ├── ConfigError                 a flag, an environment variable or harness.toml is wrong
    ├── DataError                   a data file cannot be read or mapped
    │   └── DatasetNotFound         NAME[@VERSION] is not in the store
    ├── ModelURIError               a model URI that no provider knows, or a bad python: target
    ├── MetricError                 an unknown metric or judge, or a bad judge definition
    ├── StoreError                  the DuckDB file cannot be opened or written
    │   └── StoreBusy               another process held the file for too long
    ├── RunNotFound                 a run id that is not in the store
    ├── CacheError                  the response cache cannot be used
    │   ├── CacheCorrupt            an entry failed its checksum
    │   └── ReplayMiss              exit 1: --cache replay met a request it has not seen
    │       └── ReplayRefused       exit 1: in replay, a request that may not leave the machine
    ├── BudgetExceeded              exit 1: --max-cost reached
    ├── RunFailed                   exit 1: a run finished with failed rows
    ├── CheckFailed                 exit 1: `harness check` found a gate failed
    ├── CheckUndecided              exit 3: `harness check` cannot decide (too few rows,
    │                               too many failed rows, a replay miss, no baseline)
    ├── ProviderError               one model call failed (recorded on its row; the run goes on)
    │   ├── ProviderHTTPError       the server answered 4xx/5xx
    │   ├── ProviderTimeout         no answer in time
    │   ├── ProviderConnectionError the connection failed or dropped
    │   └── ProviderResponseError   the body could not be understood
    ├── JudgeParseError             a judge's answer had no usable verdict
    └── TrackingError               MLflow logging or sync failed
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Root of every error harness raises on purpose."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(HarnessError):
    """A flag, an environment variable or harness.toml holds a value harness cannot use."""


class DataError(HarnessError):
    """A data file or DataFrame cannot be read or mapped to an eval set."""


class DatasetNotFound(DataError):
    """A dataset name or version that is not in the store."""


class ModelURIError(HarnessError):
    """A model URI that no provider understands."""


class MetricError(HarnessError):
    """An unknown metric or judge, or an invalid judge definition."""


class StoreError(HarnessError):
    """The DuckDB store cannot be opened, read or written."""


class StoreBusy(StoreError):
    """Another process held the DuckDB file longer than harness was willing to wait."""


class RunNotFound(HarnessError):
    """A run id that is not in the store."""


class CacheError(HarnessError):
    """The response cache cannot be used."""


class CacheCorrupt(CacheError):
    """A cache entry failed its checksum or could not be decoded."""


class ReplayMiss(CacheError):
    """In replay mode, a request that the cache has not seen. ``explanation`` says what
    differs from the closest cached request (``harness.cache.explain``)."""

    exit_code = 1

    def __init__(self, message: str, *, explanation: str | None = None) -> None:
        super().__init__(message)
        self.explanation = explanation


class ReplayRefused(ReplayMiss):
    """In replay, an HTTP request the user's code made that harness cannot answer from the
    cache and will not send: to a host off the machine, or to an LLM endpoint but not a
    JSON POST."""


class BudgetExceeded(HarnessError):
    """The run reached its --max-cost budget. ``result`` holds the rows done, when known."""

    exit_code = 1
    result: Any = None


class RunFailed(HarnessError):
    """A run finished, but some rows failed."""

    exit_code = 1


class CheckFailed(HarnessError):
    """``harness check``: at least one gate failed (the data show the candidate is worse)."""

    exit_code = 1


class CheckUndecided(HarnessError):
    """``harness check``: no gate failed, but at least one cannot be decided: too few rows
    to tell, too many rows without a score, a replay miss, or no baseline."""

    exit_code = 3


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
    (``harness.intercept.wire``) when it must be handed back to the user's own client."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.retryable = status == 429 or status >= 500 or status == 408
        self.response = response


class ProviderTimeout(ProviderError):
    retryable = True


class ProviderConnectionError(ProviderError):
    retryable = True


class ProviderResponseError(ProviderError):
    """The provider answered 2xx with a body harness cannot understand."""


class JudgeParseError(HarnessError):
    """A judge's answer held no verdict harness could parse."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class TrackingError(HarnessError):
    """MLflow logging or sync failed."""


class RowsFailedWarning(UserWarning):
    """``evaluate`` finished, but rows failed or metrics raised: the result holds the rest.

    A warning, not an error, so that what was paid for is returned (the CLI exits 1); a
    notebook shows it, and ``warnings.simplefilter("error", RowsFailedWarning)`` makes a
    script stop on it as ``mlflow.evaluate`` would.
    """
