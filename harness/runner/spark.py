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
3. **The driver keeps each wave** as it returns: entries into the project's cache first,
   then the rows into DuckDB (and their traces into MLflow), then the next wave.

Limits are shared, not multiplied: ``--concurrency``, the rate limits of harness.toml and
what is left of ``--max-cost`` are divided among the tasks that may run at once. A task's
answers live in its executor until its wave returns, so a crash of the driver loses at
most the calls of the waves in flight (two; one with ``--max-cost``).

A stop request (Ctrl-C, SIGTERM) sends no more waves and cancels the Spark jobs in flight
(their job group): the waves already back are kept, the cancelled ones run again on
``--resume``.

Settings (``[spark]`` in harness.toml): ``master`` (for a session harness starts; default
``local[*]``: an active session, e.g. on Databricks, is always used as it is), ``tasks``
(default: the session's default parallelism), ``rows_per_task`` (default 100).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import threading
import uuid
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, HarnessError, RunFailed

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.runner.engine import Engine
    from harness.store.datasets import Example

__all__ = ["DEFAULT_ROWS_PER_TASK", "run_on_spark", "spark_session"]

DEFAULT_ROWS_PER_TASK = 100
_SETTINGS = {"master", "tasks", "rows_per_task"}
_NEEDS_PYSPARK = "--spark needs pyspark: pip install 'harness[spark]' (and Java 17 or later)"


def run_on_spark(engine: Engine, todo: list[Example], caller: Caller, session: Any = None) -> None:
    """Run ``todo`` with the driver pass, then waves of Spark tasks (see the module)."""
    from harness.aio import asyncio_run
    from harness.runner.engine import drive

    settings = _settings(engine.plan.home.settings)
    caller.defer_misses, caller.seeds, caller.local_seeds = True, {}, {}
    try:
        asyncio_run(drive(engine, todo, caller))
    finally:
        caller.defer_misses = False
    deferred, engine.deferred = engine.deferred, []
    if not deferred or engine.stopped_by_budget:
        return
    spark, owned = spark_session(settings.get("master"), session)
    try:
        _waves(engine, deferred, caller, spark, settings)
    finally:
        if owned:
            spark.stop()


def spark_session(master: str | None = None, session: Any = None) -> tuple[Any, bool]:
    """The session to use and whether harness started it (and so must stop it)."""
    if session is not None:
        return session, False
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(_NEEDS_PYSPARK) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    # Python workers must run this interpreter (harness is installed here), not `python3`.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or "local[*]")
        .appName("harness")
        .config("spark.ui.showConsoleProgress", "false")  # progress is harness's, on stderr
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "ERROR")
    )
    try:
        return builder.getOrCreate(), True
    except Exception as e:  # noqa: BLE001 - py4j/JVM start-up errors have no common type
        raise ConfigError(f"cannot start Spark ({master or 'local[*]'}): {_last_line(e)}") from None


def _settings(home_settings: dict[str, Any]) -> dict[str, Any]:
    table = dict(home_settings.get("spark") or {})
    unknown = sorted(set(table) - _SETTINGS)
    if unknown:
        raise ConfigError(f"[spark] in harness.toml: unknown setting(s) {', '.join(unknown)}")
    for name in ("tasks", "rows_per_task"):
        value = table.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise ConfigError(f"[spark] {name} must be a whole number >= 1, got {value!r}")
    return table


def check_ready(home_settings: dict[str, Any]) -> None:
    """Raise ConfigError for a bad ``[spark]`` table or no pyspark, before a run exists."""
    _settings(home_settings)
    try:
        import pyspark.sql  # noqa: F401 - only whether it imports
    except ImportError:
        raise ConfigError(_NEEDS_PYSPARK) from None


def _waves(
    engine: Engine, deferred: list[Example], caller: Caller, spark: Any, settings: dict[str, Any]
) -> None:
    from harness.runner.spark_task import encode_item

    cores = _parallelism(spark)
    tasks = settings.get("tasks") or cores
    per_task = settings.get("rows_per_task") or DEFAULT_ROWS_PER_TASK
    wave_rows = tasks * per_task
    engine.progress.note(
        f"{len(deferred)} row(s) need calls the cache cannot answer: "
        f"sending them to Spark, {tasks} task(s) at a time"
    )
    seeds, local_seeds = caller.seeds or {}, caller.local_seeds or {}
    caller.seeds = caller.local_seeds = None

    group = f"harness-{uuid.uuid4().hex[:12]}"  # the job group a stop cancels

    def submit(start: int) -> Future[list[dict[str, Any]]]:
        wave = deferred[start : start + wave_rows]
        n_tasks = min(tasks, math.ceil(len(wave) / per_task)) or 1
        items = [(encode_item(e, seeds.pop(e.id, ()), local_seeds.pop(e.id, None)),) for e in wave]
        spec = _spec(engine, caller, n_tasks, at_once)
        return pool.submit(_collect, spark, items, n_tasks, spec, group)

    def cancel(_signum: int) -> None:  # in the signal handler: Py4J work goes to a thread
        threading.Thread(target=_cancel_jobs, args=(spark, group), daemon=True).start()

    # Two waves in flight, so executors start the next wave's tasks as soon as the last
    # ones of the current wave free their cores, and the driver stores one wave while the
    # next runs. With --max-cost, one: a wave's share of the budget is what the previous
    # waves left.
    depth = 1 if caller.budget is not None else 2
    at_once = max(1, min(cores, tasks * depth))  # tasks that may run at the same time
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
        forget()
        pool.shutdown(wait=False, cancel_futures=True)


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


def _cancel_jobs(spark: Any, group: str) -> None:
    """Cancel the Spark jobs of ``group`` (a classic session's job group, or a tag)."""
    try:
        context = spark.sparkContext
    except (AttributeError, NotImplementedError):  # Spark Connect: its jobs carry a tag
        spark.interruptTag(group)
    else:
        context.cancelJobGroup(group)


def _collect(
    spark: Any, items: list[tuple[str]], n_tasks: int, spec: Any, group: str
) -> list[dict[str, Any]]:
    from harness.runner.spark_task import PackedSpec, run_task

    try:
        context = spark.sparkContext
    except (AttributeError, NotImplementedError):  # Spark Connect: tag the session instead
        spark.addTag(group)
    else:  # this thread's jobs join the group a stop cancels (PySpark pins threads)
        context.setJobGroup(group, "harness run", interruptOnCancel=True)
    packed = PackedSpec.of(spec)

    def task(batches: Any) -> Any:
        return run_task(packed, batches)

    with warnings.catch_warnings():
        # pyspark checks the pandas version even for Arrow-only functions and warns about
        # pandas 3; nothing here goes through pandas.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        frame = spark.createDataFrame(items, "item string").repartition(n_tasks)  # round robin
        mapped = frame.mapInArrow(task, "payload string")
    try:
        rows = mapped.collect()
    except Exception as e:  # noqa: BLE001 - Py4J/Spark errors have no common type
        raise RunFailed(f"the Spark job failed: {_last_line(e)}") from None
    return [json.loads(row[0]) for row in rows]


def _keep(engine: Engine, caller: Caller, records: list[dict[str, Any]]) -> bool:
    """Keep one wave's results: entries, counters, then rows. True if the budget stopped it.

    A task's error is raised after the other tasks' results are kept.
    """
    from harness.cache.store import CacheEntry
    from harness.runner.spark_task import decode_row

    cache = caller.cache
    if cache is not None:
        with cache.batch():
            for record in records:
                for text in record.get("entries", ()):
                    entry = CacheEntry.from_document(json.loads(text))
                    cache.set(entry.key, entry)
    stopped = False
    for record in records:
        if "stats" in record:
            caller.stats.add(record["stats"], record["error_kinds"])
            stopped = stopped or record["stopped"]
            if caller.budget is not None:
                spent = sum(stats["cost_usd"] for stats in record["stats"].values())
                caller.budget.spent_usd += spent
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


def _parallelism(spark: Any) -> int:
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext: ask the conf
        return max(1, int(spark.conf.get("spark.default.parallelism", "8")))


def _last_line(error: BaseException) -> str:
    """The one line of a JVM or Python worker error that says what went wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("at ", "File ", "...", "JVM stacktrace")):
            return line[:300]
    return type(error).__name__
