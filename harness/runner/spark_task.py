"""What one Spark task does on an executor: the rows it is sent, through the usual engine.

The driver (:mod:`harness.runner.spark`) ships a :class:`TaskSpec` in the task's closure and
the rows as JSON text, each with the cache entries and local answers the driver already
found for it. The task puts those entries in a private cache in a temporary folder, runs
the rows through the same engine and call path as a local run (retries, rate limits,
judges and their repairs, heuristic metrics), and returns, as JSON text:

- one ``{"row": ...}`` record per finished row (its output and scores);
- one ``{"entries": [...]}`` record with every cache entry the task paid for, in the
  stored form (checksummed), so the driver can keep them in the project's cache;
- one ``{"stats": ...}`` record: call counters, and whether the budget stopped the task;
- or one ``{"error": ...}`` record if the task could not run (a missing key, a bad URI),
  which the driver turns into the usual one-line error.

On the driver's machine (a local master) a task also watches for the driver's stop file:
once it is there the task's engine stops as a local run's does (no new rows, the calls in
flight get ``TaskSpec.stop_grace_s``), and the task sends back what it finished and paid for.

An executor needs the harness package, the model's credentials in its environment and the
network; never the project home. No secret travels with the task: providers are built on
the executor from their URI and settings, as on the driver.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.interrupt import DEFAULT_GRACE_S, StopRequest
from harness.store.rows import OutputRow, ScoreRow

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.calls import CallResult
    from harness.metrics import Metric
    from harness.providers import Provider
    from harness.runner.config import RunConfig
    from harness.store.datasets import Example

__all__ = ["PackedSpec", "ProviderRef", "TaskSpec", "decode_row", "encode_item", "run_task"]

_STOP_POLL_S = 0.1  # how often a task looks for the driver's stop file


@dataclass
class ProviderRef:
    """How an executor gets a provider: built from its URI, or (``python:``) the object."""

    uri: str
    options: dict[str, Any]
    local: Provider | None = None  # a python:/echo provider travels as itself: no secrets

    @classmethod
    def of(cls, provider: Provider, settings: dict[str, Any]) -> ProviderRef:
        options = (settings.get("providers") or {}).get(provider.uri.partition(":")[0], {})
        return cls(provider.uri, dict(options), provider if provider.local else None)

    def build(self) -> Provider:
        if self.local is not None:
            return self.local
        from harness.providers import resolve

        return resolve(self.uri, self.options)


@dataclass
class TaskSpec:
    """Everything a task needs besides its rows. Pickled into the Spark closure."""

    config: RunConfig
    template: str
    metrics: list[Metric]
    judges: list[Any]
    provider: ProviderRef
    judge_provider: ProviderRef | None  # the run's judge model
    settings: dict[str, Any]  # harness.toml, rate limits already divided among tasks
    concurrency: int  # per task
    budget_usd: float | None  # this task's share of what is left of --max-cost
    judge_providers: dict[str, ProviderRef] = field(default_factory=dict)  # judges' own
    # A file the driver writes on a stop, when this task runs on its machine: the task
    # then stops as a local run does and sends back what it paid for within its grace.
    stop_file: str | None = None
    stop_grace_s: float = DEFAULT_GRACE_S


@dataclass
class PackedSpec:
    """A TaskSpec as bytes, with the import path to set before unpickling it.

    Unpickling a ``python:`` model or a custom judge imports its module, so the driver's
    working folder and import path must be in place first; a TaskSpec in the closure
    itself would be unpickled by Spark before any code of ours runs.
    """

    data: bytes
    cwd: str = field(default_factory=os.getcwd)  # `python:my_app:fn` finds ./my_app.py
    path: list[str] = field(default_factory=lambda: [p for p in sys.path if os.path.isdir(p)])

    @classmethod
    def of(cls, spec: TaskSpec) -> PackedSpec:
        from pyspark import cloudpickle  # the copy Spark ships; functions travel by value

        return cls(cloudpickle.dumps(spec))

    def unpack(self) -> TaskSpec:
        import pickle

        if self.cwd not in sys.path:
            sys.path.insert(0, self.cwd)
        # The driver's import path (local mode shares its disk); folders an executor lacks
        # are skipped, and none displaces the executor's own.
        sys.path.extend(p for p in self.path if p not in sys.path and os.path.isdir(p))
        spec: TaskSpec = pickle.loads(self.data)
        return spec


def encode_item(
    example: Example, entries: Iterable[Any], local: dict[str, CallResult] | None
) -> str:
    """One row for a task: the example, its cache entries, its local answers (JSON)."""
    return json.dumps(
        {
            "example": asdict(example),
            "entries": [entry.to_text() for entry in entries],
            "local": {key: asdict(result) for key, result in (local or {}).items()},
        },
        default=str,
    )


def decode_row(record: dict[str, Any]) -> tuple[OutputRow, list[ScoreRow]]:
    """The stored row a task sent back."""
    return OutputRow(*record["output"]), [ScoreRow(*s) for s in record["scores"]]


def run_task(packed: PackedSpec, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function: rows in (column ``item``), records out (``payload``)."""
    import pyarrow as pa

    items = [json.loads(text) for batch in batches for text in batch.column(0).to_pylist()]
    if not items:
        return
    try:
        spec = packed.unpack()
        with tempfile.TemporaryDirectory(prefix="harness-task-") as folder:
            payloads = _run(spec, items, folder)
    except HarnessError as e:  # the user's to fix (a key, a URI): one line on the driver
        payloads = [json.dumps({"error": str(e), "kind": type(e).__name__})]
    schema = pa.schema([("payload", pa.string())])
    yield pa.RecordBatch.from_pydict({"payload": payloads}, schema=schema)


def _run(spec: TaskSpec, items: list[dict[str, Any]], folder: str) -> list[str]:
    from harness.aio import asyncio_run
    from harness.cache.entry import CacheEntry
    from harness.cache.store import ResponseCache
    from harness.calls import Caller, CallResult
    from harness.calls.budget import Budget
    from harness.runner.engine import Engine, drive
    from harness.runner.plan import RunPlan, preflight
    from harness.runner.progress import NullProgress
    from harness.store.datasets import Example

    config = spec.config
    cache = ResponseCache(folder) if config.cache != "off" else None
    seeded: set[str] = set()
    local: dict[str, dict[str, CallResult]] = {}
    examples = []
    try:
        if cache is not None:
            with cache.batch():
                for item in items:
                    for text in item["entries"]:
                        entry = CacheEntry.from_document(json.loads(text))
                        cache.set(entry.key, entry)
                        seeded.add(entry.key)
        for item in items:
            example = item["example"]
            example["expected"] = tuple(example["expected"])
            examples.append(Example(**example))
            local[example["id"]] = {k: CallResult(**v) for k, v in item["local"].items()}
        caller = Caller.from_settings(
            spec.settings,
            cache=cache,
            mode=config.cache,
            concurrency=spec.concurrency,
            budget=Budget(spec.budget_usd) if spec.budget_usd is not None else None,
        )
        caller.precounted = frozenset(seeded)
        caller.local_answers = local
        provider = spec.provider.build()
        judge_provider = spec.judge_provider.build() if spec.judge_provider else None
        judge_providers = {uri: ref.build() for uri, ref in spec.judge_providers.items()}
        # As on the driver: this executor's keys, and the [prices] of harness.toml.
        preflight(config, spec.settings, [provider, judge_provider, *judge_providers.values()])
        plan = RunPlan(
            config,
            None,  # type: ignore[arg-type]  # the engine needs no home: rows come back
            None,  # type: ignore[arg-type]
            [],
            provider,
            spec.template,
            spec.metrics,
            spec.judges,
            judge_provider,
            judge_providers=judge_providers,
        )
        rows = _Rows()
        stop = StopRequest(spec.stop_grace_s)
        engine = Engine(plan, caller, rows, NullProgress(), stop)  # type: ignore[arg-type]
        with _watching(spec.stop_file, stop):
            asyncio_run(drive(engine, examples, caller))
        payloads = rows.payloads
        if cache is not None:
            stored = cache.keys()
            paid = [cache.get(key) for key in stored if key not in seeded]
            payloads.append(json.dumps({"entries": [e.to_text() for e in paid if e is not None]}))
        payloads.append(
            json.dumps(
                {
                    "stats": caller.stats.as_dict(),
                    "error_kinds": dict(caller.stats.error_kinds),
                    "stopped": engine.stopped_by_budget,
                }
            )
        )
        return payloads
    finally:
        if cache is not None:
            cache.close()


@contextlib.contextmanager
def _watching(stop_file: str | None, stop: StopRequest) -> Iterator[None]:
    """Ask ``stop`` once ``stop_file`` exists (the driver's stop), while the block runs."""
    if stop_file is None:
        yield
        return
    done = threading.Event()

    def stopped() -> bool:
        if os.path.exists(stop_file):
            stop.request(signal.SIGINT)
            return True
        return False

    # A task that starts after the stop (its Python worker still importing when the driver
    # was interrupted) must send nothing: looked at before the first row, not one poll
    # later, when its first calls were paid and came back after the driver's grace, lost.
    if stopped():
        yield
        return

    def watch() -> None:
        while not done.wait(_STOP_POLL_S):
            if stopped():
                return

    watcher = threading.Thread(target=watch, name="harness-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


class _Rows:
    """The engine's writer on an executor: rows go back to the driver, not to DuckDB."""

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def flush_if_idle(self) -> None:
        """Nothing to write early: the rows go back to the driver when the task ends."""

    def add(self, output: OutputRow, scores: list[ScoreRow]) -> None:
        self.payloads.append(
            json.dumps(
                {
                    "row": {
                        "output": list(vars(output).values()),
                        "scores": [list(vars(s).values()) for s in scores],
                    }
                }
            )
        )
