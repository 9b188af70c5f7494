"""Importing what a run's end needs while its rows run.

A run's end (its aggregates, its report, its MLflow record) is the first to need its own
modules, Jinja2 and the report's (no longer pandas and pyarrow: below): in a 1,000-row
run against a model 100 ms away they took 0.4-0.6 s of the 0.7-0.9 s between the last
answer and the run's return (issue 14). While the rows
run, the CPU mostly waits on the model, so a thread imports them then, and the end took
0.46-0.48 s. Where the CPU is busy while the rows run
(a cached rerun; a test server on the same two cores, where the rows' span grew by
0.1-0.2 s), the imports only move, since the same ones happen either way.

The thread starts importing once the run's first row is done (``Preload.begin``), or
``START_AFTER_S`` after the rows began, whichever comes first: until then the rows' own
first imports are on the critical path. A cold run's first call imported the HTTP client
(httpx and aiohttp, a few tenths of a second of CPU) while every row waited for it, and
with pandas importing beside it that wait doubled. (A run sure to send its calls now
imports the client beside its planning instead: ``client_preload``.) In a run that waits
on its model more than on the CPU, that is wall time: ``bench/bench_providers.py --rows
300 --latency 0.5 --judges correctness --mlflow`` took 1.21-1.25x a bare aiohttp client
with the thread held back, 1.31-1.32x without. With the CPU saturated (100 ms answers,
1,000 rows) the imports only move, as above.

A run's end no longer imports pandas and pyarrow (issue 14, goal 4: their import alone is
~80 MB of the process), unless it is sliced ``--by`` or scored by batch metrics: it reads
the store a chunk at a time in plain Python for its MLflow table
(``harness.runner.table_rows``) and its report (``harness.store.record_rows``). Preloaded
from the first row on, as they were while the end read them, they were part of the rows'
peak too: a cached rerun of 10,000 rows logged to MLflow peaked at 259 MB in its rows with
them, 192 MB without (its report, the largest step of its end, at 217-232 MB).

The thread is joined before the run's end reads anything (``Preload.wait``), so the run
never imports one of these modules while the thread is still importing it. A module that
fails to import is left alone here: the run's end imports it again and reports the error
where it always has.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.config import Home
    from harness.providers import Provider
    from harness.runner.config import RunConfig

__all__ = [
    "END_MODULES",
    "REPORT_MODULES",
    "SLICE_MODULES",
    "START_AFTER_S",
    "Preload",
    "client_preload",
    "end_modules",
]

# What every run's end imports (harness.runner.run_end.RunEnd._record), heaviest first; not pandas
# (see the module's docstring).
END_MODULES = ("harness.runner.batch_scores",)
# What its report and MLflow table import: a run logged to MLflow or asked for --report.
# Its intervals need no scipy (harness.stats.quantiles), its rows no pandas or pyarrow.
# Each one the report imports and this leaves out is imported after the last call
# (tests/runner/test_preload.py): numpy.ma, which numpy imports for the first histogram's
# automatic bins (np.percentile -> np.unique), was ~0.02 s of a 1,000-row cold run's end.
REPORT_MODULES = (
    "jinja2",
    "harness.report.page",
    "harness.store.calibrations",
    "harness.store.exports",
    "harness.store.record_rows",
    "harness.judges.variance",
    "numpy.ma",
)  # (not harness.store.scores: the run's start imports it, for harness.runner.summary)


# What a sliced run's end imports (``--by``): its tables, and numpy with them; the run's
# start no longer imports them (harness.slices).
SLICE_MODULES = ("harness.slices.table",)


def end_modules(*, report: bool, sliced: bool = False) -> tuple[str, ...]:
    """What the end of a run will import: only that, since in a run whose rows keep the
    CPU busy every import here takes time from them."""
    return END_MODULES + (REPORT_MODULES if report else ()) + (SLICE_MODULES if sliced else ())


# The latest the imports start: a slow model's first row may take many seconds, and by
# then the HTTP client is long imported.
START_AFTER_S = 1.0


class Preload:
    """Import ``modules`` in a thread of their own, from ``begin`` (or ``start_after_s``
    from now, whichever comes first) until ``wait``; then call ``then``, if given."""

    def __init__(
        self,
        modules: Sequence[str],
        *,
        start_after_s: float | None = None,
        then: Callable[[], object] | None = None,
    ) -> None:
        self.modules = tuple(modules)
        self.start_after_s = START_AFTER_S if start_after_s is None else start_after_s
        self.then = then
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-preload", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        """Start importing now (the run's first row is done). Safe from any thread."""
        self._go.set()

    def _run(self) -> None:
        self._go.wait(self.start_after_s)
        for name in self.modules:
            # One that fails is imported again, and its error reported, by the run's end.
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        if self.then is not None:
            self.then()

    def wait(self) -> None:
        """Return once every module is imported (or has failed to)."""
        self._go.set()
        self._thread.join()


def client_preload(
    config: RunConfig, home: Home, provider: Provider | None, cassette: bool
) -> Preload | None:
    """Start importing the HTTP client now, beside the run's planning, when its first calls
    are sure to be sent over HTTP; else None.

    The first call sent makes the client (``harness.providers._client.make_client``), and
    with aiohttp its import (aiohttp builds two TLS contexts as it loads) took ~0.13 s of a
    cold 1,000-row run's start while every row waited; imported beside the planning, the
    first request went ~0.07 s sooner (issue 14, goal 2). Its TLS context is made there too
    (``tls_context``: reading the roots, ~20 ms). Sure to be sent: every call of a
    ``--cache off`` or ``refresh`` run, and every call of a project whose cache holds
    nothing yet. A rerun whose answers may all be cached makes no client at all, and its
    CPU is busy: an import it does not need is left out.
    """
    from harness.providers import DEFAULT_TRANSPORT

    if config.spark or config.cache == "replay":
        return None  # a Spark run's clients are the executors'; a replay sends nothing
    if config.cache == "use" and (cassette or (home.cache_dir / "cache.db").exists()):
        return None
    judge_model = config.judge_model or home.settings.get("judge_model") or ""
    remote = (not provider.local) if provider is not None else _remote(config.model)
    if not remote and not (config.judges and _remote(str(judge_model))):
        return None
    transport = (home.settings.get("calls") or {}).get("transport") or DEFAULT_TRANSPORT
    modules: tuple[str, ...] = ("harness.providers._client",)
    if transport == "aiohttp":
        modules += ("httpx_aiohttp",)
    return Preload(modules, start_after_s=0.0, then=_tls_context)


def _tls_context() -> None:
    """The client's TLS context made ahead. Roots that cannot be read (a bad
    ``SSL_CERT_FILE``) are left for the client's creation to report, as it always has."""
    with contextlib.suppress(ImportError, OSError):  # ssl.SSLError is an OSError
        from harness.providers._client import tls_context

        tls_context()


def _remote(uri: str) -> bool:
    from harness.errors import HarnessError
    from harness.providers import LOCAL_SCHEMES, split_uri

    try:
        return split_uri(uri)[0] not in LOCAL_SCHEMES
    except HarnessError:  # said by the run's planning, in its words
        return False
