"""Scale-out on Apache Spark: the calls the cache cannot answer, spread over executors.

``harness run --spark`` (``evaluate(spark=True)``) goes like this:

1. **The driver answers what it already knows**, exactly as a local run does: every call
   the project's cache holds, and every ``python:``/``echo`` call (never cached; they run
   here, in threads). A row that needs a call the cache cannot answer is deferred, with the
   entries it hit and the local answers it got, so no executor pays for them again. A
   cached rerun therefore never starts a Spark job, and ``--cache replay`` never needs one.
2. **Deferred rows go to the executors in waves** of ``tasks × rows_per_task`` rows. Each
   task runs its rows through the same engine and call path as a local run (see
   :mod:`harness.runner.spark_task`) and sends back the finished rows, the cache entries it
   paid for and its call counters.
3. **The driver keeps each wave** as it returns: its counters (saved to the run's usage
   file), entries into the project's cache, then the rows into DuckDB (and their traces
   into MLflow), then the next wave.

Limits are shared, not multiplied: ``--concurrency``, the rate limits of harness.toml and
what is left of ``--max-cost`` are divided among the tasks that may run at once. A task's
answers live in its executor until its wave returns, so a crash of the driver loses at
most the calls of the waves in flight (two; one with ``--max-cost``).

Which session runs the tasks (active, Spark Connect, Databricks Connect or local) and how
Spark is kept quiet: :mod:`harness.runner.spark_session`. Before the first wave a probe
job checks that the executors see the providers' keys (:mod:`harness.runner.spark_probe`).

A stop request (Ctrl-C, SIGTERM) sends no more waves. The waves in flight get the stop's
grace (``StopRequest.grace_s``, as rows in flight do in a local run) to come back, and are
kept: their calls are paid for. Those still out then are cancelled (their job group, or
their tag over Spark Connect) and run again on ``--resume``. Executors on this machine (a
classic session with a ``local`` master) also see the stop, through a file the driver
writes: their tasks stop as a local run does (no new rows, the calls in flight finish) and
come back within the grace with what they paid for, so a wave longer than the grace loses
no call. A task elsewhere cannot see that file, and goes on until its wave is cancelled.

Settings (``[spark]`` in harness.toml): ``master`` (for a local session harness starts;
default ``local[*]``), ``remote`` (``sc://HOST:PORT`` or ``databricks``) and ``profile``,
``tasks`` (default: the session's default parallelism), ``rows_per_task`` (default 100).
An active session, e.g. a notebook's, is always used as it is.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
import tempfile
import threading
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import SETTINGS_TABLES
from harness.errors import ConfigError, EnvironmentFault, HarnessError, RunFailed
from harness.runner.spark_session import (
    DEFAULT_TASKS,
    SparkHandle,
    SparkTarget,
    check_target,
    error_line,
    open_session,
)
from harness.wording import plural, unknown_names

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.runner.engine import Engine
    from harness.store.datasets import Example

__all__ = ["DEFAULT_ROWS_PER_TASK", "SparkTarget", "run_on_spark", "spark_session"]

DEFAULT_ROWS_PER_TASK = 100
_TASK_GRACE_MARGIN_S = 2.0  # of the driver's grace, for tasks to see a stop and send back
_SETTINGS = SETTINGS_TABLES["spark"] or frozenset()  # checked here too: a dict given in code


def run_on_spark(
    engine: Engine,
    todo: list[Example],
    caller: Caller,
    session: Any = None,
    target: SparkTarget | None = None,
) -> None:
    """Run ``todo`` with the driver pass, then waves of Spark tasks (see the module)."""
    from harness.aio import asyncio_run
    from harness.runner.engine import drive

    settings = _settings(engine.plan.home.settings)
    target = target or SparkTarget.resolve(engine.plan.home.settings)
    caller.defer_misses, caller.seeds, caller.local_seeds = True, {}, {}
    try:
        asyncio_run(drive(engine, todo, caller))
    finally:
        caller.defer_misses = False
    deferred, engine.deferred = engine.deferred, []
    if not deferred or engine.stopped_by_budget:
        return
    handle = open_session(target, session, engine.progress.note)
    try:
        _waves(engine, deferred, caller, handle, settings)
    finally:
        if _kept is not None and handle.owned:
            _kept.append(handle)  # the next run finds it active; ``keep_sessions`` stops it
        else:
            handle.close()


_kept: list[SparkHandle] | None = None  # inside ``keep_sessions``: the sessions to stop


@contextlib.contextmanager
def keep_sessions() -> Iterator[None]:
    """Inside, a Spark session harness starts stays open for the runs after it, which find
    it active (a sweep's children each started and stopped a Spark context of their own),
    and is stopped on leaving."""
    global _kept
    outer, _kept = _kept, []
    try:
        yield
    finally:
        kept, _kept = _kept, outer
        for handle in kept:
            handle.close()


def spark_session(master: str | None = None, session: Any = None) -> tuple[Any, bool]:
    """A local session on ``master`` (or the one given, or the active one), and whether
    harness started it (and so must stop it)."""
    handle = open_session(SparkTarget(master=master), session)
    return handle.session, handle.owned


def _settings(home_settings: dict[str, Any]) -> dict[str, Any]:
    table = dict(home_settings.get("spark") or {})
    unknown = sorted(set(table) - _SETTINGS)
    if unknown:
        raise ConfigError(f"[spark] in harness.toml: {unknown_names('setting', unknown)}")
    for name in ("tasks", "rows_per_task"):
        value = table.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise ConfigError(f"[spark] {name} must be a whole number >= 1, got {value!r}")
    return table


def check_ready(
    home_settings: dict[str, Any], target: SparkTarget | None = None, session: Any = None
) -> SparkTarget:
    """The run's Spark target; ConfigError for a bad ``[spark]`` table, no pyspark, or a
    remote whose client or credentials are missing. Before a run exists, with no network."""
    _settings(home_settings)
    target = target or SparkTarget.resolve(home_settings)
    check_target(target, session)
    return target


def _waves(
    engine: Engine,
    deferred: list[Example],
    caller: Caller,
    handle: SparkHandle,
    settings: dict[str, Any],
) -> None:
    from harness.runner.spark_task import encode_item

    cores = handle.default_tasks or DEFAULT_TASKS
    tasks = settings.get("tasks") or cores
    per_task = settings.get("rows_per_task") or DEFAULT_ROWS_PER_TASK
    wave_rows = tasks * per_task
    depth = 1 if caller.budget is not None else 2
    at_once = max(1, min(cores, tasks * depth))  # tasks that may run at the same time
    _probe(engine, handle, at_once)
    rows = plural(len(deferred), "row")
    engine.progress.note(
        f"{rows} {'needs' if len(deferred) == 1 else 'need'} calls the cache cannot answer: "
        f"sending {'it' if len(deferred) == 1 else 'them'} to Spark ({handle.where}), "
        f"{plural(tasks, 'task')} at a time"
    )
    seeds, local_seeds = caller.seeds or {}, caller.local_seeds or {}
    caller.seeds = caller.local_seeds = None

    group = f"harness-{uuid.uuid4().hex[:12]}"  # the job group a stop cancels
    stop_folder = _stop_folder(handle)  # where executors on this machine see a stop
    stop_file = str(Path(stop_folder, "stop")) if stop_folder else None

    def submit(start: int) -> Future[list[dict[str, Any]]]:
        wave = deferred[start : start + wave_rows]
        n_tasks = min(tasks, math.ceil(len(wave) / per_task)) or 1
        items = [(encode_item(e, seeds.pop(e.id, ()), local_seeds.pop(e.id, None)),) for e in wave]
        spec = _spec(engine, caller, n_tasks, at_once)
        spec.stop_file = stop_file
        # The tasks' rows in flight must be back before the driver's grace ends: a second
        # to notice the file and one to send the wave back.
        spec.stop_grace_s = max(engine.stop.grace_s - _TASK_GRACE_MARGIN_S, 0.5)
        return pool.submit(_collect, handle, items, n_tasks, spec, group)

    settled = threading.Event()  # no wave in flight any more: nothing left to cancel

    def cancel(_signum: int) -> None:  # in the signal handler: the wait goes to a thread
        if stop_file is not None:
            with contextlib.suppress(OSError):  # the tasks are then cancelled at the grace
                Path(stop_file).touch()

        def after_the_grace() -> None:
            if settled.is_set():  # the waves were all back: nothing to wait for
                return
            grace = engine.stop.grace_s
            engine.progress.note(
                f"{engine.stop.signal_name}: stopping; the Spark waves in flight get {grace:g} s "
                "to finish (press Ctrl-C again to exit at once)"
            )
            if settled.wait(grace):  # a wave back in time keeps the calls it paid for
                return
            try:
                _cancel_jobs(handle.session, group)
            except Exception as e:  # noqa: BLE001 - Py4J and Connect errors share no type
                # The run may have ended (and closed its session) as the grace ran out.
                if not settled.is_set():
                    engine.progress.note(f"could not cancel the Spark jobs: {error_line(e)}")

        threading.Thread(target=after_the_grace, daemon=True).start()

    # Two waves in flight (`depth`), so executors start the next wave's tasks as soon as
    # the last ones of the current wave free their cores, and the driver stores one wave
    # while the next runs. With --max-cost, one: a wave's share of the budget is what the
    # previous waves left.
    pool = ThreadPoolExecutor(depth, thread_name_prefix="harness-spark")
    starts = iter(range(0, len(deferred), wave_rows))
    pending: deque[Future[list[dict[str, Any]]]] = deque()
    forget = engine.stop.on_stop(cancel)
    try:
        while True:
            while (
                len(pending) < depth
                and not engine.stop.requested
                and (start := next(starts, None)) is not None
            ):
                pending.append(submit(start))
            if not pending:
                return
            try:
                records = pending.popleft().result()
            except RunFailed:
                if engine.stop.requested:
                    continue  # the wave a stop cancelled: its rows run again on --resume
                raise
            if _keep(engine, caller, records):
                return  # the budget stopped a task: no more waves (the run is resumable)
    except HarnessError:
        # The wave still in flight has paid for its calls: keep them, then fail.
        for future in pending:
            try:
                _keep(engine, caller, future.result())
            except HarnessError:
                continue  # the first error is the one reported
        raise
    finally:
        settled.set()
        forget()
        pool.shutdown(wait=False, cancel_futures=True)
        if stop_folder is not None:
            shutil.rmtree(stop_folder, ignore_errors=True)


def _stop_folder(handle: SparkHandle) -> str | None:
    """A new folder for the stop file when the executors share this machine's disk (a
    classic session whose master is ``local...``); None over Spark Connect or a cluster."""
    try:
        master = str(handle.session.sparkContext.master)
    except (AttributeError, NotImplementedError):  # Spark Connect: the server's disk
        return None
    return tempfile.mkdtemp(prefix="harness-stop-") if master.startswith("local") else None


def _spec(engine: Engine, caller: Caller, n_tasks: int, at_once: int) -> Any:
    """What the ``n_tasks`` tasks of a wave get; limits are shared by ``at_once`` tasks."""
    from harness.runner.spark_task import ProviderRef, TaskSpec

    plan = engine.plan
    settings = _divided_limits(plan.home.settings, at_once)
    budget = None
    if caller.budget is not None:
        left = caller.budget.max_cost_usd - caller.budget.spent_usd
        budget = max(left, 0.0) / n_tasks
    return TaskSpec(
        config=plan.config,
        template=plan.template,
        # The metrics themselves travel: a python: metric's function is pickled by
        # reference, so the executor imports its module, as it does a python: model's.
        metrics=list(plan.metrics),
        judges=list(plan.judges),
        provider=ProviderRef.of(plan.provider, plan.home.settings),
        judge_provider=ProviderRef.of(plan.judge_provider, plan.home.settings)
        if plan.judge_provider
        else None,
        judge_providers={
            uri: ProviderRef.of(p, plan.home.settings) for uri, p in plan.judge_providers.items()
        },
        settings=settings,
        concurrency=max(1, plan.config.concurrency // at_once),
        budget_usd=budget,
    )


def _divided_limits(settings: dict[str, Any], n_tasks: int) -> dict[str, Any]:
    """harness.toml with every rate limit divided among ``n_tasks`` tasks running at once."""
    # (a share of a bucket's burst as well: the tasks' buckets together hold one burst)
    from harness.calls.limits import LIMIT_NAMES

    divided = copy.deepcopy(dict(settings))
    for section in ("providers", "rate_limits"):
        for table in (divided.get(section) or {}).values():
            if isinstance(table, dict):
                for name in LIMIT_NAMES:
                    if isinstance(table.get(name), int | float) and table[name]:
                        table[name] = table[name] / n_tasks
    return divided


def _probe(engine: Engine, handle: SparkHandle, n_tasks: int) -> None:
    """The executors see the keys, URLs and harness the tasks need, or the run stops here."""
    from harness.runner.spark_probe import ProbeTarget, probe_executors, visible_keys

    plan = engine.plan
    providers = [p for p in plan.providers if p is not None]
    settings = plan.home.settings
    targets = [ProbeTarget.of(p, settings) for p in providers if not p.local]
    unique = list({target.uri: target for target in targets}.values())  # model = judge
    reports = probe_executors(handle, unique, n_tasks)
    if reports:
        keys = visible_keys(reports)
        engine.progress.note(
            f"Spark executors checked ({len(reports)} probe tasks): they see "
            + (", ".join(keys) if keys else "no provider key")
            + " (names only)"
        )


def _cancel_jobs(spark: Any, group: str) -> None:
    """Cancel the Spark jobs of ``group`` (a classic session's job group, or a tag)."""
    try:
        context = spark.sparkContext
    except (AttributeError, NotImplementedError):  # Spark Connect: its jobs carry a tag
        spark.interruptTag(group)
    else:
        context.cancelJobGroup(group)


def _collect(
    handle: SparkHandle, items: list[tuple[str]], n_tasks: int, spec: Any, group: str
) -> list[dict[str, Any]]:
    from harness.runner.spark_task import PackedSpec, run_task

    spark = handle.session

    try:
        context = spark.sparkContext
    except (AttributeError, NotImplementedError):  # Spark Connect: tag the session instead
        spark.addTag(group)
    else:  # this thread's jobs join the group a stop cancels (PySpark pins threads)
        context.setJobGroup(group, "harness run", interruptOnCancel=True)
    packed = PackedSpec.of(spec)

    def task(batches: Any) -> Any:
        return run_task(packed, batches)

    try:
        with warnings.catch_warnings():
            # pyspark checks the pandas version even for Arrow-only functions and warns
            # about pandas 3; nothing here goes through pandas.
            warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
            frame = spark.createDataFrame(items, "item string").repartition(n_tasks)  # round robin
            rows = frame.mapInArrow(task, "payload string").collect()
    except Exception as e:  # noqa: BLE001 - Py4J/Spark errors have no common type
        lost = handle.why_lost(e)
        if lost is not None:  # the environment's fault (exit 74), as at the start
            raise EnvironmentFault(
                f"lost the Spark Connect server at {handle.where}: {lost}"
            ) from None
        raise RunFailed(handle.failure("the Spark job failed", e)) from None
    return [json.loads(row[0]) for row in rows]


def _keep(engine: Engine, caller: Caller, records: list[dict[str, Any]]) -> bool:
    """Keep one wave's results: counters, entries, then rows. True if the budget stopped it.

    A task's error is raised after the other tasks' results are kept.
    """
    from harness.cache.entry import CacheEntry
    from harness.runner.spark_task import decode_row

    stopped = False
    for record in records:
        if "stats" in record:
            with caller._counting:  # read whole by the run's usage file (below)
                caller.stats.add(record["stats"], record["error_kinds"])
            stopped = stopped or record["stopped"]
            if caller.budget is not None:
                spent = sum(stats["cost_usd"] for stats in record["stats"].values())
                caller.budget.spent_usd += spent
    cache = caller.cache
    if cache is not None:
        # Counted first, and the counters saved: every answer in the cache is counted in
        # the run's usage file (harness.store.usage_file), as the cache writer does.
        if caller.before_cache_commit is not None:
            caller.before_cache_commit()
        with cache.batch():
            for record in records:
                for text in record.get("entries", ()):
                    entry = CacheEntry.from_document(json.loads(text))
                    cache.set(entry.key, entry)
    for record in records:
        if "row" in record:
            engine.record(*decode_row(record["row"]))
    errors = [r for r in records if "error" in r]
    if errors:  # after keeping what the other tasks did; raised as the kind it was there
        import harness.errors

        kind = getattr(harness.errors, errors[0]["kind"], HarnessError)
        if not (isinstance(kind, type) and issubclass(kind, HarnessError)):
            kind = HarnessError
        raise kind(f"a Spark task could not run: {errors[0]['error']}")
    if stopped:
        engine.stopped_by_budget = True
    return stopped
