"""Running an evaluation: rows through the call path, scores into DuckDB, the run into MLflow.

``run_eval`` validates everything it can before it creates the run (``harness.runner.plan``:
a typo in a metric name or template leaves nothing behind), then processes rows with
bounded concurrency (``harness.runner.engine``), writes them in short batches, and
computes the aggregates from what is stored — so a resumed run and a run done in one go
end the same way. With ``--spark`` the rows the cache cannot answer go to Spark
(``harness.runner.spark``); the MLflow run is logged alongside (``harness.runner.mlflow_run``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.aio import asyncio_run
from harness.calls import Caller
from harness.config import Home, resolve_home
from harness.errors import BudgetExceeded, ConfigError, HarnessError
from harness.providers import Provider
from harness.runner.batches import BatchWriter
from harness.runner.config import RunConfig, RunResult
from harness.runner.engine import Engine, drive
from harness.runner.plan import RunPlan, plan_run, preflight
from harness.runner.progress import NullProgress, Progress
from harness.runner.summary import aggregate_scores
from harness.store import runs as run_store

if TYPE_CHECKING:
    import httpx

    from harness.runner.mlflow_worker import MlflowWorker
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
    report: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run (or resume) an evaluation and return its result.

    ``report`` is a file to write the run's HTML report to when it ends (its folder is
    checked first); the report is also logged to MLflow with the run.

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
    if report is not None:
        from harness.files import check_writable

        check_writable(Path(report))
    from harness.calls.budget import Budget

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
            config=plan.stored_config(),
            rows_total=len(plan.examples),
        )
        todo = plan.examples
    from harness.runner.mlflow_run import open_mlflow_run, trace_sender

    mlflow_head = open_mlflow_run(
        plan, run_id, started, mlflow_worker, previous_mlflow_run, resumed_rows=bool(done)
    )
    on_batch = None
    if mlflow_worker is not None and config.traces:
        on_batch = trace_sender(plan, mlflow_worker, mlflow_head)
    writer = BatchWriter(home, run_id, on_batch=on_batch)
    engine = Engine(plan, caller, writer, progress)
    progress.start(len(todo), f"{plan.provider.uri} on {plan.dataset.ref}")
    status = "failed"
    try:
        if config.spark:
            from harness.runner.spark import run_on_spark

            run_on_spark(engine, todo, caller, spark_session)
        else:
            asyncio_run(drive(engine, todo, caller))
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
        result = _finish(
            plan, run_id, usage, status, started, progress, mlflow_worker, mlflow_head, report
        )
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


def _finish(
    plan: RunPlan,
    run_id: str,
    usage: dict[str, Any],
    status: str,
    started: float,
    progress: Progress,
    mlflow_worker: MlflowWorker | None = None,
    mlflow_head: RunRecord | None = None,
    report: str | os.PathLike[str] | None = None,
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
    to_mlflow = mlflow_worker is not None and mlflow_head is not None and status == "finished"
    report_html = None
    if report is not None or to_mlflow:
        from harness.report import run_report, write_report
        from harness.store.exports import load_run_record

        # From the run as stored, as `harness report RUN` reads it: the same bytes.
        report_html = run_report(load_run_record(home.db_path, run_id), db_path=home.db_path)
        if report is not None:
            result.report = str(write_report(report, report_html))
    if to_mlflow:
        assert mlflow_worker is not None and mlflow_head is not None
        from harness.runner.mlflow_run import log_to_mlflow

        try:
            result.mlflow_run_id = log_to_mlflow(
                mlflow_head, result, outputs, scores, mlflow_worker, report_html
            )
            run_store.set_mlflow_run_id(home.db_path, run_id, result.mlflow_run_id)
        except HarnessError as e:
            result.warnings.append(f"MLflow logging failed: {e}")
            progress.note(f"MLflow logging failed: {e}")
    result.duration_s = time.time() - started
    return result
