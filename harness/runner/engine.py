"""The engine: rows through the call path, metrics and judges, with bounded concurrency.

``Engine.run`` starts twice ``--concurrency`` row workers over one shared iterator (flat
memory however many rows), each rendering the prompt, calling the model through the
``Caller``, scoring the heuristic metrics and asking the judges, and hands each finished
row to the writer. ``drive`` runs it on an event loop. A local run, Spark's driver pass
and each Spark task (``harness.runner.spark``, ``spark_task``) all run rows through it.

A stop request (``harness.interrupt``: the first Ctrl-C or SIGTERM) ends the scheduling
of rows at once, and a row that has sent nothing yet (one of the rows waiting for a
connection) is dropped at its first send; the rows in flight get ``StopRequest.grace_s``
seconds to finish (their calls are paid for, so finishing them is worth a wait), then they
are cancelled.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from harness.calls import ROW_SENT, CallDeferred, Caller, CallHalted, CallResult
from harness.errors import BudgetExceeded, EndpointUnreachable, ProviderError, ReplayMiss
from harness.metrics import ScoringRow
from harness.prompts import render
from harness.store.rows import OutputRow, ScoreRow
from harness.wording import storable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from harness.interrupt import StopRequest
    from harness.judges import Judge
    from harness.runner.batches import BatchWriter
    from harness.runner.plan import RunPlan
    from harness.runner.progress import Progress
    from harness.store.datasets import Example

__all__ = ["Engine", "drive"]

T = TypeVar("T")

# Errors that fail the call's row and stop the run (see ``Engine``).
_STOPS_THE_RUN = (ReplayMiss, EndpointUnreachable)


class Engine:
    """Rows of one plan through one ``Caller``; finished rows go to ``writer``.

    Counts failed rows (``errors``: a model or judge call failed), notes a ``--max-cost``
    stop (``stopped_by_budget``) and keeps the rows a ``CallDeferred`` sent elsewhere
    (``deferred``, for Spark).

    A ``--cache replay`` miss, or a server that refuses the first connection (or whose
    host does not resolve: ``EndpointUnreachable``), stops the run: no row is started
    after it, the row whose call failed so (and any other in flight that fails so) is
    stored as failed with that error (a judge's call as that judge's score's error), the
    rows in flight finish, and ``run`` raises the first such error (``stopped_by``).
    Every call counted as failed is then a failed row the summary counts, and
    ``--resume`` (which drops failed rows) runs them again.
    """

    def __init__(
        self,
        plan: RunPlan,
        caller: Caller,
        writer: BatchWriter,
        progress: Progress,
        stop: StopRequest | None = None,
        on_first_row: Callable[[], None] | None = None,
    ) -> None:
        from harness.interrupt import StopRequest

        self.plan, self.caller, self.writer, self.progress = plan, caller, writer, progress
        self.stop = stop or StopRequest()
        self._on_first_row = on_first_row  # called once, when the first row is recorded
        self.errors = 0
        self.stopped_by_budget = False
        # The first error that stops the run (see the class), raised once rows are done.
        self.stopped_by: ReplayMiss | EndpointUnreachable | None = None
        self.judges_together = False
        self.deferred: list[Example] = []  # rows a CallDeferred sent elsewhere

    def record(self, output: OutputRow, scores: list[ScoreRow]) -> None:
        """Store one finished row and show it in the progress."""
        if self._on_first_row is not None:
            first, self._on_first_row = self._on_first_row, None
            first()
        self.writer.add(output, scores)
        # A failed row, as the run's summary counts it: its model call or a judge call.
        self.errors += output.error is not None or any(
            s.source == "llm_judge" and s.error is not None for s in scores
        )
        calls = self.caller.stats
        cost = calls.total("cost_usd")
        self.progress.advance(
            1,
            cache_hits=calls.total("cache_hits"),
            errors=self.errors,
            tokens=calls.total("input_tokens") + calls.total("output_tokens"),
            cost=f"${cost:.4f}" if cost else "",
        )

    async def run(self, examples: list[Example]) -> None:
        pending = iter(examples)
        # Twice as many row workers as connections keeps the pipe full while rows score.
        n_workers = min(len(examples), self.plan.config.concurrency * 2) or 1
        # With that many rows, asking a row's judges one after another costs no time (the
        # other rows fill the connections) and a cache hit costs no task. With fewer rows
        # than workers, connections would idle: a row's judges are then asked together.
        few_rows = n_workers < self.plan.config.concurrency * 2
        self.judges_together = few_rows and len(self.plan.judges) > 1

        seeds, local_seeds = self.caller.seeds, self.caller.local_seeds

        last_started = False

        async def worker() -> None:
            nonlocal last_started
            for example in pending:  # one shared iterator: memory stays flat with rows
                if self.stopped_by_budget or self.stop.requested or self.stopped_by:
                    return
                ROW_SENT.set([False])  # this task's context: the row's and its judges'
                try:
                    output, scores = await self.process(example)
                except CallHalted:  # stopped before it paid for anything: not stored
                    return
                except _STOPS_THE_RUN as e:  # stored as failed, naming the call; the run stops
                    self.stopped_by = self.stopped_by or e
                    output, scores = _output(example.id, None, error=str(e)), []
                except BudgetExceeded:
                    self.stopped_by_budget = True
                    return
                except CallDeferred:  # Spark's driver pass: the row goes to an executor
                    self.deferred.append(example)
                    continue
                if seeds is not None and local_seeds is not None:  # only a deferred row's travel
                    seeds.pop(example.id, None)
                    local_seeds.pop(example.id, None)
                self.record(output, scores)
            if not last_started:  # every row has started: store those done (batches.py)
                last_started = True
                self.writer.flush_if_idle()

        tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
        loop = asyncio.get_running_loop()

        def stopping(_signum: int) -> None:  # in the signal handler: hand over to the loop
            loop.call_soon_threadsafe(self._wind_down, tasks)

        forget = self.stop.on_stop(stopping)
        try:
            # Not gather: rows cancelled at the end of a stop's grace are not an error.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if self.stopped_by is not None:  # its row and those in flight are recorded
                raise self.stopped_by
        finally:
            forget()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _wind_down(self, tasks: list[asyncio.Task[None]]) -> None:
        """After a stop request: no new rows, and none that has sent nothing yet sends (it
        may wait for a connection behind the rows that have); those in flight are cancelled
        after the grace."""
        self.caller.halted = True
        busy = sum(not t.done() for t in tasks)
        if not busy:
            return
        grace = self.stop.grace_s
        self.progress.note(
            f"{self.stop.signal_name}: stopping; the rows in flight get {grace:g} s to finish "
            "(press Ctrl-C again to exit at once)"
        )
        loop = asyncio.get_running_loop()
        loop.call_later(grace, lambda: [t.cancel() for t in tasks if not t.done()])

    async def process(self, example: Example) -> tuple[OutputRow, list[ScoreRow]]:
        plan, config = self.plan, self.plan.config
        # A Spark task's plan has no dataset (its rows come with the task; a python: model,
        # the one reader of the data's own column names, runs on the driver).
        row = example.as_row(plan.dataset.columns if plan.dataset is not None else None)
        prompt = render(plan.template, row)
        row["prompt"] = prompt
        messages = [{"role": "system", "content": config.system}] if config.system else []
        messages.append({"role": "user", "content": prompt})
        request = plan.provider.request(messages, config.params, row=row)
        try:
            result = await self.caller.call(plan.provider, request, kind="model", row_id=example.id)
        except ProviderError as e:
            return _output(example.id, None, error=str(e)), []
        # A lone surrogate (an SDK reads one from valid JSON, a python: model may return it)
        # as its escape, \ud800: the text scored is the text stored and shown.
        result.text = storable(result.text)
        scoring = ScoringRow(
            input=example.input,
            output=result.text,
            expected=example.expected,
            context=example.context,
            latency_s=result.latency_s,
            id=example.id,
            extra=example.extra,
        )
        scores = [row for m in plan.metrics for row in m.evaluate(scoring, example.id)]
        if plan.judges:

            def ask(judge: Judge) -> Awaitable[list[ScoreRow]]:
                asked = judge.evaluate(
                    scoring,
                    example_id=example.id,
                    caller=self.caller,
                    provider=plan.provider_for(judge),
                    samples=config.judge_samples,
                )
                return self._judged(judge, asked, example.id)

            if self.caller.defer_misses:  # Spark's driver pass: look every judge up
                deferred = False  # (their hits ship with the row, so none is paid twice)
                for judge in plan.judges:
                    try:
                        scores.extend(await ask(judge))
                    except CallDeferred:
                        deferred = True
                if deferred:
                    raise CallDeferred("judge")
            elif self.judges_together:
                for found in await _all_of([ask(judge) for judge in plan.judges]):
                    scores.extend(found)
            else:  # see ``run``: one judge after another, no task per cache hit
                for judge in plan.judges:
                    scores.extend(await ask(judge))
        return _output(example.id, result), scores

    async def _judged(
        self, judge: Judge, asked: Awaitable[list[ScoreRow]], example_id: str
    ) -> list[ScoreRow]:
        """A judge's scores; a replay miss or an unreachable judge server is its score's
        error, the model's answer kept (a failed judge row, as a failed judge call makes),
        and stops the run (see the class)."""
        try:
            return await asked
        except _STOPS_THE_RUN as e:
            self.stopped_by = self.stopped_by or e
            return [ScoreRow(example_id, judge.name, None, source="llm_judge", error=str(e))]


async def _all_of(awaitables: list[Awaitable[T]]) -> list[T]:
    """Await all together, results in order; on an error, cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _output(example_id: str, result: CallResult | None, error: str | None = None) -> OutputRow:
    if result is None:
        return OutputRow(example_id, None, error, None, None, None, None, None, None)
    return OutputRow(
        example_id,
        result.text,
        None,
        result.latency_s,
        result.input_tokens,
        result.output_tokens,
        result.cost_usd,
        result.request_key,
        result.cached,
        list(result.app_keys) or None,
    )


async def drive(engine: Engine, todo: list[Example], caller: Caller) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # python: models run in worker threads; as many as rows in flight, not the default 6.
    workers = max(4, engine.plan.config.concurrency)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))
    try:
        await engine.run(todo)
    finally:
        await caller.aclose()
