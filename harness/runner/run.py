"""Running an evaluation: rows through the call path, scores into DuckDB, the run into MLflow.

``run_eval`` validates everything it can before it creates the run (a typo in a metric
name or template leaves nothing behind), then processes rows with bounded concurrency,
writes them in short batches, and computes the aggregates from what is stored — so a
resumed run and a run done in one go end the same way.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from harness.aio import asyncio_run
from harness.calls import CallDeferred, Caller, CallResult
from harness.config import Home, resolve_home
from harness.errors import (
    BudgetExceeded,
    ConfigError,
    DataError,
    HarnessError,
    MetricError,
    ProviderError,
)
from harness.metrics import DEFAULT_METRICS, Metric, ScoringRow, get_metric
from harness.prompts import (
    DEFAULT_PROMPT,
    DEFAULT_PROMPT_NO_CONTEXT,
    check_template,
    prompt_digest,
    render,
)
from harness.providers import Provider, resolve
from harness.runner.batches import BatchWriter
from harness.runner.config import RunConfig, RunResult
from harness.runner.progress import NullProgress, Progress
from harness.runner.summary import aggregate_scores
from harness.store import datasets as dataset_store
from harness.store import runs as run_store
from harness.store.datasets import DatasetInfo, Example
from harness.store.runs import OutputRow, ScoreRow

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx

    from harness.judges import Judge
    from harness.runner.mlflow_worker import MlflowWorker
    from harness.tracking import RunRecord


@dataclass
class RunPlan:
    """A validated run: everything resolved, nothing written yet."""

    config: RunConfig
    home: Home
    dataset: DatasetInfo
    examples: list[Example]
    provider: Provider
    template: str
    metrics: list[Metric]
    judges: list[Any]
    judge_provider: Provider | None

    @property
    def params(self) -> dict[str, str]:
        """The run's MLflow params."""
        from harness import __version__

        c = self.config
        params = {
            "model": self.provider.uri,
            "dataset": self.dataset.ref,
            "dataset_digest": self.dataset.digest,
            "prompt_digest": prompt_digest(self.template, c.system),
            "metrics": ",".join(m.name for m in self.metrics),
            "cache_mode": c.cache,
            "concurrency": str(c.concurrency),
            "harness_version": __version__,
        }
        params.update({f"param.{k}": str(v) for k, v in sorted(c.params.items())})
        if self.judges:
            params["judges"] = ",".join(f"{j.name}@{j.version}" for j in self.judges)
            params["judge_model"] = self.judge_provider.uri if self.judge_provider else ""
            params["judge_samples"] = str(c.judge_samples)
        return params


def plan_run(config: RunConfig, home: Home, provider: Provider | None = None) -> RunPlan:
    """Resolve and check a run's configuration; raise HarnessError on anything wrong."""
    if config.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {config.concurrency}")
    if config.judge_samples < 1:
        raise ConfigError(f"--judge-samples must be at least 1, got {config.judge_samples}")
    if config.max_cost is not None and config.max_cost < 0:
        raise ConfigError(f"--max-cost must be positive, got {config.max_cost}")
    from harness.calls import CACHE_MODES

    if config.cache not in CACHE_MODES:
        raise ConfigError(
            f"unknown cache mode {config.cache!r}; use one of {', '.join(CACHE_MODES)}"
        )
    dataset = dataset_store.resolve_dataset(home.db_path, config.data)
    examples = dataset_store.load_examples(home.db_path, dataset, limit=config.limit)
    has_expected = any(e.expected for e in examples)
    has_context = any(e.context for e in examples)
    names = config.metrics or [
        m for m in DEFAULT_METRICS if has_expected or not get_metric(m).needs_expected
    ]
    metrics = [get_metric(name) for name in dict.fromkeys(names)]
    for metric in metrics:
        if metric.needs_expected and not has_expected:
            raise MetricError(
                f"metric {metric.name!r} needs expected answers, and "
                f"{dataset.ref} has none (map a column with --expected at import)"
            )
    template = config.prompt or (DEFAULT_PROMPT if has_context else DEFAULT_PROMPT_NO_CONTEXT)
    available = {"id", "input", "expected", "context"} | {k for e in examples[:1] for k in e.extra}
    check_template(template, available)
    if provider is None:
        provider = resolve(
            config.model, home.settings.get("providers", {}).get(config.model.partition(":")[0], {})
        )
    if provider.scheme == "column" and provider.model not in available - {"id", "input"}:
        raise DataError(
            f"{dataset.ref} has no column {provider.model!r} for {provider.uri}; its other "
            f"columns: {', '.join(sorted(available - {'id', 'input'})) or 'none'}"
        )
    judges: list[Any] = []
    judge_provider = None
    if config.judges:
        from harness.judges import resolve_judges

        judges = resolve_judges(
            config.judges, home=home, judges_file=config.judges_file, guidelines=config.guidelines
        )
        for judge in judges:  # as for metrics: fail before the run, not on every row
            for needed, what, present in (
                ("expected", "expected answers", has_expected),
                ("context", "contexts", has_context),
            ):
                if needed in judge.needs and not present:
                    raise MetricError(
                        f"judge {judge.name!r} needs {what}, and {dataset.ref} "
                        f"has none (map a column with --{needed} at import)"
                    )
        judge_uri = config.judge_model or home.settings.get("judge_model")
        if not judge_uri:
            raise ConfigError(
                "--judge needs a judge model: pass --judge-model URI "
                "or set judge_model in harness.toml"
            )
        judge_provider = resolve(
            judge_uri, home.settings.get("providers", {}).get(judge_uri.partition(":")[0], {})
        )
    return RunPlan(
        config, home, dataset, examples, provider, template, metrics, judges, judge_provider
    )


class _Engine:
    def __init__(
        self, plan: RunPlan, caller: Caller, writer: BatchWriter, progress: Progress
    ) -> None:
        self.plan, self.caller, self.writer, self.progress = plan, caller, writer, progress
        self.errors = 0
        self.stopped_by_budget = False
        self.judges_together = False
        self.deferred: list[Example] = []  # rows a CallDeferred sent elsewhere

    def record(self, output: OutputRow, scores: list[ScoreRow]) -> None:
        """Store one finished row and show it in the progress."""
        self.writer.add(output, scores)
        self.errors += output.error is not None
        calls = self.caller.stats
        self.progress.advance(
            1,
            cache_hits=calls.model.cache_hits + calls.judge.cache_hits,
            errors=self.errors,
            tokens=calls.model.input_tokens
            + calls.model.output_tokens
            + calls.judge.input_tokens
            + calls.judge.output_tokens,
            cost=f"${calls.model.cost_usd + calls.judge.cost_usd:.4f}"
            if calls.model.cost_usd + calls.judge.cost_usd
            else "",
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

        async def worker() -> None:
            for example in pending:  # one shared iterator: memory stays flat with rows
                if self.stopped_by_budget:
                    return
                try:
                    output, scores = await self.process(example)
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

        tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def process(self, example: Example) -> tuple[OutputRow, list[ScoreRow]]:
        plan, config = self.plan, self.plan.config
        row = example.as_row()
        prompt = render(plan.template, row)
        row["prompt"] = prompt
        messages = [{"role": "system", "content": config.system}] if config.system else []
        messages.append({"role": "user", "content": prompt})
        request = plan.provider.request(messages, config.params, row=row)
        try:
            result = await self.caller.call(plan.provider, request, kind="model", row_id=example.id)
        except ProviderError as e:
            return _output(example.id, None, error=str(e)), []
        scoring = ScoringRow(
            input=example.input,
            output=result.text,
            expected=example.expected,
            context=example.context,
            latency_s=result.latency_s,
        )
        scores = [ScoreRow(example.id, m.name, m.score(scoring)) for m in plan.metrics]
        if plan.judges:
            assert plan.judge_provider is not None
            judge_provider = plan.judge_provider

            def ask(judge: Judge) -> Awaitable[list[ScoreRow]]:
                return judge.evaluate(
                    scoring,
                    example_id=example.id,
                    caller=self.caller,
                    provider=judge_provider,
                    samples=config.judge_samples,
                )

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
    )


def run_eval(
    config: RunConfig,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    provider: Provider | None = None,
    http_client: httpx.AsyncClient | None = None,
    spark_session: Any = None,
) -> RunResult:
    """Run (or resume) an evaluation and return its result.

    ``http_client`` replaces the HTTP client harness would build (e.g. one with an
    ``httpx.MockTransport``); the caller keeps ownership of it. With ``config.spark``,
    ``spark_session`` is the session to use (default: the active one, else a local one
    harness starts and stops; see ``harness.runner.spark``).

    Raises ``HarnessError`` for bad input before anything is written, ``ReplayMiss`` when
    ``--cache replay`` meets an unknown request, and ``BudgetExceeded`` after storing the
    rows done when ``max_cost`` is reached. Rows whose model call failed are stored with
    their error and counted in ``RunResult.errors``; the caller decides the exit code.
    """
    started = time.time()
    home = home if isinstance(home, Home) else resolve_home(home)
    progress = progress or NullProgress()
    previous_usage: dict[str, Any] = {}
    previous_mlflow_run: str | None = None
    if resume:
        info = run_store.get_run(home.db_path, resume)
        if info.status == "finished" and not info.errors:
            raise ConfigError(f"run {info.run_id} finished with no failed rows; nothing to resume")
        config = RunConfig.from_dict(info.config)
        run_id, previous_usage = info.run_id, info.usage
        previous_mlflow_run = info.mlflow_run_id
    else:
        run_id = uuid.uuid4().hex[:12]
    plan = plan_run(config, home, provider)
    from harness.runner.limits import Budget, preflight

    # Keys, prices, rate limits: checked before the run exists (also installs [prices]).
    preflight(config, home.settings, [plan.provider, plan.judge_provider])
    if config.spark:
        from harness.runner.spark import check_ready

        if http_client is not None:
            raise ConfigError("a run on Spark builds its own HTTP clients on the executors")
        check_ready(home.settings)
    cache = None
    if config.cache != "off":
        from harness.cache.store import ResponseCache

        cache = ResponseCache(home.cache_dir)
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
            on_event=lambda kind, data: _on_call_event(progress, kind, data),
        )
    except BaseException:
        if cache is not None:
            cache.close()
        raise
    from harness.runner.mlflow_worker import MlflowWorker

    # Started now so MLflow's import and store setup overlap with the rows (see the module).
    mlflow_worker = MlflowWorker(home.tracking_uri) if config.mlflow else None
    if resume:
        done = run_store.prepare_resume(home.db_path, run_id)
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
            config=config.as_dict(),
            rows_total=len(plan.examples),
        )
        todo = plan.examples
    mlflow_head = _open_mlflow_run(
        plan, run_id, started, mlflow_worker, previous_mlflow_run, resumed_rows=bool(done)
    )
    on_batch = None
    if mlflow_worker is not None and config.traces:
        on_batch = _trace_sender(plan, mlflow_worker, mlflow_head)
    writer = BatchWriter(home, run_id, on_batch=on_batch)
    engine = _Engine(plan, caller, writer, progress)
    progress.start(len(todo), f"{plan.provider.uri} on {plan.dataset.ref}")
    status = "failed"
    try:
        if config.spark:
            from harness.runner.spark import run_on_spark

            run_on_spark(engine, todo, caller, spark_session)
        else:
            asyncio_run(_drive(engine, todo, caller))
        status = "stopped" if engine.stopped_by_budget else "finished"
    finally:
        # Whatever happened, keep every row already paid for.
        writer.close()
        progress.stop()
        usage = _merge_usage(previous_usage, caller.stats.as_dict())
        if status == "failed":
            run_store.finish_run(
                home.db_path, run_id, status=status, metrics={}, usage=usage, errors=engine.errors
            )
        if cache is not None:
            cache.close()
        if status == "failed" and mlflow_worker is not None:
            mlflow_worker.close()  # the worker deletes the MLflow run it had opened
    try:
        result = _finish(plan, run_id, usage, status, started, progress, mlflow_worker, mlflow_head)
    finally:
        if mlflow_worker is not None:
            mlflow_worker.close()
    if engine.stopped_by_budget:
        stopped = BudgetExceeded(
            f"stopped at the --max-cost budget of ${config.max_cost:.4f} with "
            f"{result.rows_done} of {result.rows} rows done; finish with "
            f"`harness run --resume {run_id}`"
        )
        stopped.result = result
        raise stopped
    return result


async def _drive(engine: _Engine, todo: list[Example], caller: Caller) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # python: models run in worker threads; as many as rows in flight, not the default 6.
    workers = max(4, engine.plan.config.concurrency)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))
    try:
        await engine.run(todo)
    finally:
        await caller.aclose()


def _on_call_event(progress: Progress, kind: str, data: dict[str, Any]) -> None:
    if kind == "cache_corrupt":
        progress.note(
            f"cache entry {data['key'][:12]} is corrupt; calling the model again ({data['error']})"
        )


def _merge_usage(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for kind in ("model", "judge"):
        before, now = previous.get(kind, {}), current.get(kind, {})
        merged[kind] = {
            k: round(before.get(k, 0) + v, 6) if isinstance(v, float) else before.get(k, 0) + v
            for k, v in now.items()
        }
    return merged


def _open_mlflow_run(
    plan: RunPlan,
    run_id: str,
    started: float,
    worker: MlflowWorker | None,
    replaces: str | None,
    resumed_rows: bool,
) -> RunRecord | None:
    """Open the run's MLflow run in the worker; a resumed run's stored rows go first."""
    if worker is None:
        return None
    from harness.runner.logging import head_record, rows_record

    head = head_record(plan, run_id, started)
    worker.begin(head, traces=plan.config.traces, replaces=replaces, register=True)
    if resumed_rows and plan.config.traces:
        home = plan.home
        worker.add_rows(
            rows_record(
                head,
                run_store.load_outputs(home.db_path, run_id),
                run_store.load_scores(home.db_path, run_id),
                _judge_uri(plan),
            )
        )
    return head


def _trace_sender(
    plan: RunPlan, worker: MlflowWorker, head: RunRecord | None
) -> Callable[[list[OutputRow], list[ScoreRow]], None]:
    """Each stored batch's traces go to the MLflow worker while the next rows run."""
    from harness.runner.logging import batch_payload

    assert head is not None
    examples = {e.id: e for e in plan.examples}
    judge_model = _judge_uri(plan)

    def send(outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
        worker.add_batch(batch_payload(examples, outputs, scores), judge_model)

    return send


def _judge_uri(plan: RunPlan) -> str | None:
    return plan.judge_provider.uri if plan.judge_provider else None


def _finish(
    plan: RunPlan,
    run_id: str,
    usage: dict[str, Any],
    status: str,
    started: float,
    progress: Progress,
    mlflow_worker: MlflowWorker | None = None,
    mlflow_head: RunRecord | None = None,
) -> RunResult:
    home, config = plan.home, plan.config
    outputs = run_store.load_outputs(home.db_path, run_id)
    scores = run_store.load_scores(home.db_path, run_id)
    metrics = aggregate_scores(scores)
    errors = int(outputs["error"].notna().sum()) if len(outputs) else 0
    reasons = Counter(outputs["error"].dropna()) if len(outputs) else Counter()
    run_store.finish_run(
        home.db_path, run_id, status=status, metrics=metrics, usage=usage, errors=errors
    )
    result = RunResult(
        run_id=run_id,
        run_name=config.run_name,
        mlflow_run_id=None,
        dataset=plan.dataset.ref,
        model=plan.provider.uri,
        status=status,
        rows=len(plan.examples),
        rows_done=len(outputs),
        errors=errors,
        metrics=metrics,
        calls=usage,
        error_reasons=reasons.most_common(5),
        duration_s=time.time() - started,
    )
    if mlflow_worker is not None and mlflow_head is not None and status == "finished":
        from harness.runner.logging import log_to_mlflow

        try:
            result.mlflow_run_id = log_to_mlflow(
                plan, mlflow_head, result, outputs, scores, mlflow_worker
            )
            run_store.set_mlflow_run_id(home.db_path, run_id, result.mlflow_run_id)
        except HarnessError as e:
            result.warnings.append(f"MLflow logging failed: {e}")
            progress.note(f"MLflow logging failed: {e}")
    result.duration_s = time.time() - started
    return result
