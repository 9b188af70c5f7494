"""Running an evaluation: rows through the call path, scores into DuckDB, the run into MLflow.

``run_eval`` validates everything it can before it creates the run (``harness.runner.plan``:
a typo in a metric name or template leaves nothing behind), then processes rows with
bounded concurrency (``harness.runner.engine``), writes them in short batches, and
computes the aggregates from what is stored — so a resumed run and a run done in one go
end the same way. With ``--spark`` the rows the cache cannot answer go to Spark
(``harness.runner.spark``); the MLflow run is logged alongside (``harness.runner.mlflow_run``).

However a run ends, every finished row is stored and the run says how it ended
(``harness.runner.run_end``): ``finished``; ``failed`` with its reason (a replay miss, a
refused server, a full disk); ``interrupted`` by SIGINT or SIGTERM (``harness.interrupt``:
the rows in flight get a few seconds, the MLflow run is left ``KILLED`` with what it
holds); ``stopped`` at ``--max-cost``. All but ``finished`` are resumable with
``--resume``, which continues the same MLflow run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.aio import asyncio_run
from harness.calls import Caller
from harness.config import Home, resolve_home
from harness.errors import (
    ConfigError,
    EnvironmentFault,
    Interrupted,
)
from harness.interrupt import StopRequest, stop_on_signals
from harness.memory import release_freed
from harness.providers import Provider
from harness.runner.batches import BatchWriter
from harness.runner.config import RunConfig, RunResult
from harness.runner.engine import Engine, drive
from harness.runner.plan import (
    RunPlan,
    check_experiment_name,
    check_run_name,
    check_same_scoring,
    plan_run,
    preflight,
    resumed_run,
)
from harness.runner.preload import Preload, client_preload, end_modules
from harness.runner.progress import NullProgress, Progress, call_event_notes
from harness.runner.run_end import RunEnd
from harness.store import runs as run_store
from harness.store.db import held
from harness.store.usage_file import UsageFile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import httpx

    from harness.cache.store import EntryStore
    from harness.runner.mlflow_run import MlflowLogger
    from harness.runner.spark_session import SparkTarget
    from harness.store.datasets import Example
    from harness.store.runs import RunInfo
    from harness.tracking import RunRecord

__all__ = ["run_eval"]


def run_eval(
    config: RunConfig,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    provider: Provider | None = None,
    http_client: httpx.AsyncClient | None = None,
    spark_session: Any = None,
    spark_target: SparkTarget | None = None,
    scoring_objects: Sequence[Any] = (),
    evaluator_config: Mapping[str, Any] | None = None,
    mlflow_run: tuple[str, str] | None = None,
    report: str | os.PathLike[str] | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Run (or resume) an evaluation and return its result.

    ``report`` is a file to write the run's HTML report to when it ends (its folder is
    checked first); the report is also logged to MLflow with the run.

    ``http_client`` replaces the HTTP client harness would build (e.g. one with an
    ``httpx.MockTransport``); the caller keeps ownership of it. With ``config.spark``,
    ``spark_session`` is the session to use (default: the active one, else the one
    ``spark_target`` names: a Spark Connect or Databricks cluster, or a local session;
    default from ``[spark]`` in harness.toml; see ``harness.runner.spark_session``).
    ``scoring_objects`` and ``evaluator_config`` are ``harness.evaluate``'s metric objects
    and MLflow's evaluator config; ``mlflow_run`` is ``(tracking_uri, run_id)`` of the
    caller's active MLflow run, logged into instead of a new run in the project's store.
    ``stop`` is the caller's own stop request (a sweep's, shared by its runs), so a signal
    that comes as the run ends is still the caller's to see.

    Raises ``HarnessError`` for bad input before anything is written. Once the run
    exists: ``Interrupted`` (exit 130/143) after SIGINT/SIGTERM, ``BudgetExceeded`` when
    ``max_cost`` is reached, ``ReplayMiss``, ``EndpointUnreachable`` or an
    ``EnvironmentFault`` when the run failed; each says how to resume and carries the
    ``RunResult`` of the rows stored (``error.result``) when the store could be read.
    Rows whose calls failed are stored with their error and counted in
    ``RunResult.errors``; the caller decides the exit code.
    """
    started = time.time()
    home = resolve_home(home)
    progress = progress or NullProgress()
    previous: RunInfo | None = None
    sampled_ids: list[str] | None = None
    if resume:
        previous, config, sampled_ids = resumed_run(home, resume, config.max_cost, evaluator_config)
        run_id = previous.run_id
        if config.mlflow and config.model_id is not None and mlflow_run is None:
            from harness.tracking.model_link import check_resumed_link

            check_resumed_link(
                home.tracking_uri,
                config.model_id,
                run_id,
                doing="`harness run --resume` would store its rows, then fail to log them",
            )
    else:  # a new run: a run stored before this check keeps its name when resumed
        check_experiment_name(config.experiment)
        check_run_name(config.run_name)
        run_id = uuid.uuid4().hex[:12]
    from harness.intercept.scope import current_cassette

    cassette = current_cassette()
    if cassette is not None:  # inside harness.replay or a marked test: its cassette and mode
        config = dataclasses.replace(config, cache=cassette.mode)
    if http_client is None:  # the client's import beside the planning, if it will be needed
        client_preload(config, home, provider, cassette=cassette is not None)
    plan = plan_run(
        config,
        home,
        provider,
        scoring_objects=scoring_objects,
        evaluator_config=evaluator_config,
        example_ids=sampled_ids,
    )
    config = plan.config  # names the metrics given as objects
    if previous is not None:
        check_same_scoring(previous, plan)
    if report is not None:  # checked before the run exists: a bad path leaves nothing behind
        from harness.files import check_writable

        check_writable(Path(report))
    from harness.calls.budget import Budget

    # Keys, prices, rate limits: checked before the run exists (also installs [prices]).
    preflight(config, home.settings, plan.providers)
    if config.spark:
        from harness.runner.spark import check_ready

        if http_client is not None:
            raise ConfigError("a run on Spark builds its own HTTP clients on the executors")
        spark_target = check_ready(home.settings, spark_target, spark_session)
    if stop is not None and stop.requested:  # the caller's (a sweep's), as it began this run
        name = stop.signal_name
        raise Interrupted(f"interrupted by {name} before the run started", signum=stop.signum or 2)
    cache: EntryStore | None = None
    if cassette is not None:
        cache = cassette.cache
    elif config.cache != "off":
        from harness.cache.store import ResponseCache

        cache = ResponseCache(home.cache_dir, read_only=config.cache == "replay")
    previous_usage = previous.usage if previous else {}
    spent = sum(
        float(u.get("cost_usd") or 0) for u in previous_usage.values() if isinstance(u, dict)
    )
    try:  # built before the run row exists: a bad [calls] table leaves nothing behind
        caller = Caller.from_settings(
            home.settings,
            cache=cache,
            mode=config.cache,
            concurrency=config.concurrency,
            budget=Budget(config.max_cost, spent) if config.max_cost is not None else None,
            client=http_client,
            on_event=call_event_notes(progress),
        )
    except BaseException:
        if cache is not None:
            cache.close()
        raise
    try:
        with stop_on_signals(stop or StopRequest(home.stop_grace_s)) as stop:
            stop.last_words = (
                f"interrupted again: exiting now; `harness run --resume {run_id}` goes on "
                "from the rows stored"
            )
            run = _Run(plan, run_id, previous, caller, progress, stop, started, mlflow_run, report)
            return run.execute(spark_session, spark_target)
    finally:
        if cache is not None:
            cache.close()


class _Run(RunEnd):
    """One run's lifecycle, once it is planned: claim, rows, the end, MLflow (how it
    ends, from ``_finished`` on, is ``RunEnd``'s: harness.runner.run_end)."""

    def __init__(
        self,
        plan: RunPlan,
        run_id: str,
        previous: RunInfo | None,
        caller: Caller,
        progress: Progress,
        stop: StopRequest,
        started: float,
        mlflow_run: tuple[str, str] | None = None,
        report: str | os.PathLike[str] | None = None,
    ) -> None:
        self.plan, self.run_id, self.previous = plan, run_id, previous
        self.caller, self.progress, self.stop, self.started = caller, progress, stop, started
        self.home, self.config = plan.home, plan.config
        self.mlflow_run = mlflow_run
        self.worker: MlflowLogger | None = None
        self.head: RunRecord | None = None
        self.report = report  # the file to write the HTML report to, if asked
        self.rows_total = len(plan.examples)  # the examples may be let go before the end
        self.mlflow_run_stored: str | None = None  # the MLflow run's id, as stored so far
        self.usage_file = UsageFile(self.home.db_path, run_id)

    def execute(self, spark_session: Any, spark_target: SparkTarget | None) -> RunResult:
        from harness.runner.mlflow_run import mlflow_logger

        self.worker = mlflow_logger(self.home, self.config.mlflow, self.mlflow_run)
        try:
            return self._execute(spark_session, spark_target)
        finally:
            self.usage_file.close()  # no call is cached after the rows (drive closed it)
            if self.worker is not None:
                self.worker.close()

    def _execute(self, spark_session: Any, spark_target: SparkTarget | None) -> RunResult:
        home, config, plan, run_id = self.home, self.config, self.plan, self.run_id
        if self.previous is not None:
            from harness.judges.judge import UNREADABLE
            from harness.store.scores import scores_failed_with

            # Read before the claim forgets the failed rows: their unreadable judge answers
            # are cached, and a resume asks those judges again.
            self.caller.ask_judges_again = scores_failed_with(home.db_path, run_id, UNREADABLE)
            done = run_store.claim_resume(home.db_path, run_id)  # RunBusy if it is running
            todo = [e for e in plan.examples if e.id not in done]
        else:
            done = set()
            run_store.create_run(
                home.db_path,
                run_id=run_id,
                run_name=config.run_name,
                dataset=plan.dataset.name,
                dataset_version=plan.dataset.version,
                model=plan.provider.uri,
                # Directions travel with the run: compare, check and the report read them.
                config=plan.stored_config(),
                rows_total=len(plan.examples),
                sample=plan.sample,
                example_ids=[e.id for e in plan.examples] if plan.sample is not None else None,
            )
            todo = plan.examples
        from harness.runner.mlflow_run import open_mlflow_run, trace_sender

        known = self.previous.mlflow_run_id if self.previous else None
        self.head = open_mlflow_run(
            plan,
            run_id,
            self.started,
            self.worker,
            known,
            resumed_rows=done if self.previous is not None else None,
            into_run=self.mlflow_run[1] if self.mlflow_run else None,
        )
        on_batch = None
        if self.worker is not None and config.traces:
            on_batch = trace_sender(plan, todo, self.worker, self.head)
        # Each batch stores the counters of the calls made so far with its rows, and the
        # cache writer saves them to the run's usage file before each commit of answers: a
        # run killed before its end (SIGKILL, a second Ctrl-C) keeps the count of every
        # call it paid for (harness.store.usage_file).
        self.caller.before_cache_commit = self.usage_file.saver(
            self.caller.counters, self.previous.usage if self.previous else {}
        )
        writer = BatchWriter(
            home, run_id, on_batch=on_batch, usage=self._usage, mlflow_run_id=self._new_mlflow_run
        )
        reported = self.report is not None or self.worker is not None
        # Held back until the first row is done: see harness.runner.preload.
        preload = Preload(end_modules(report=reported, sliced=bool(config.by)))
        engine = Engine(
            plan, self.caller, writer, self.progress, self.stop, on_first_row=preload.begin
        )
        self.progress.start(len(todo), f"{plan.provider.uri} on {plan.dataset.ref}")
        failure: BaseException | None = None
        end = contextlib.ExitStack()  # the store held from the last batch's write through the end
        try:
            from harness.intercept.credentials import keys_for_replay

            with keys_for_replay(config.cache):
                if config.spark:
                    from harness.runner.spark import run_on_spark

                    run_on_spark(engine, todo, self.caller, spark_session, spark_target)
                else:
                    asyncio_run(drive(engine, todo, self.caller))
        except BaseException as e:  # recorded with the run, then raised again
            failure = e
        finally:
            if failure is None and not self.stop.requested and not engine.stopped_by_budget:
                try:  # one open for the last batch's write and the end (see _finished)
                    end.enter_context(held(home.db_path, merge=False))
                except BaseException as e:  # the store cannot be opened: the run failed
                    failure = e
            try:  # whatever happened, keep every row already paid for
                writer.close()
            except BaseException as e:
                failure = failure or e
            self.progress.stop()
            preload.wait()
        with end:  # let go of before a run that did not finish is recorded
            self._let_go_of_examples(todo)
            if failure is None and not self.stop.requested and not engine.stopped_by_budget:
                try:
                    return self._finished(end)
                except EnvironmentFault as e:  # the store could not take the run's end
                    failure = e
        if failure is not None:
            return self._failed(failure)
        if self.stop.requested:
            return self._interrupted()
        return self._stopped_by_budget()

    def _new_mlflow_run(self) -> str | None:
        """The id of the MLflow run the worker opened, once it is known and until it is
        stored (with a batch of rows, or as the run stops: ``_stop_mlflow``), so a run
        that never completes its logging names the MLflow run that holds its rows."""
        opened = self.worker.opened_run_id() if self.worker is not None else None
        if opened is None or opened == self.mlflow_run_stored:
            return None
        self.mlflow_run_stored = opened
        return opened

    def _usage(self) -> dict[str, Any]:
        """The run's call counters: this process's and those its earlier ones stored."""
        return self.caller.usage(self.previous.usage if self.previous else {})

    def _let_go_of_examples(self, todo: list[Example]) -> None:
        """Free the examples once the rows are done, unless the end reads them (batch
        metrics, ``--by`` slices): the end reads the rows back from the store, and with the
        examples still held each of its steps peaked that much higher (numbers in
        docs/design.md). ``todo`` is the rows' own list (the plan's, unless resumed); the
        plan is this run's own (``run_eval`` makes one per run) and is cleared in place,
        since the rows' list may be the same one."""
        if not self.plan.batch and not self.config.by:
            todo.clear()
            self.plan.examples.clear()
            release_freed()  # given back, so the end's Arrow and DuckDB buffers can use it
