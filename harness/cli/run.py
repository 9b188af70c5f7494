"""``harness run``: evaluate a model on a dataset."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from harness.cli.compare import check_options, finish_check
from harness.cli.late_signals import until_shown
from harness.cli.options import (
    FileName,
    by_option,
    cache_option,
    concurrency_option,
    guideline_option,
    judges_file_option,
    max_slices_option,
    profile_option,
    sample_options,
    verbose_option,
)
from harness.cli.output import (
    call_lines,
    failure_lines,
    fmt,
    home_of,
    invocation,
    other_aggregates,
    print_json,
    print_slices,
    print_sweep,
    print_table,
)
from harness.config import DEFAULT_EXPERIMENT
from harness.wording import plural

if TYPE_CHECKING:
    from harness.config import Home
    from harness.interrupt import StopRequest
    from harness.runner.config import RunConfig, RunResult
    from harness.runner.progress import Progress
    from harness.runner.run_command import PreparedRun
    from harness.runner.spark_session import SparkTarget
    from harness.runner.sweep import SweepResult


@click.command()
@click.option(
    "--data",
    "data_ref",
    metavar="NAME[@VERSION]",
    help="Dataset to evaluate on (see `harness data list`).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="URI",
    help="openai:/MODEL, anthropic:/MODEL, "
    "databricks:/ENDPOINT, ollama:/MODEL, python:MODULE:FUNCTION, echo, or column:NAME "
    "(outputs already in the dataset's column NAME). Repeat to sweep across models.",
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="TEXT|@FILE",
    help="Prompt template with {input}, {context}, {expected} or any column; "
    "repeat to sweep prompts. [default: a concise QA prompt]",
)
@click.option("--system", metavar="TEXT|@FILE", help="System prompt.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Generation parameter (temperature, max_tokens, top_p, seed, stop, ...); "
    "VALUE is read as JSON when it parses. Repeatable; a KEY given with "
    "several values (or a [sweep] table in harness.toml) runs a sweep.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="SPEC",
    help="Offline metric, repeatable: NAME (built-in or a [metrics.NAME] table), "
    "KIND:VALUE (contains:Paris, regex:PATTERN, length:..400, json-schema:@FILE, ...), "
    "python:MODULE:FUNCTION; LABEL=... names it. See `harness metrics list`. "
    "[default: exact_match, token_f1, rougeL, word_count, latency]",
)
@click.option(
    "--judge",
    "judges",
    multiple=True,
    metavar="NAME",
    help="LLM judge (built-in or from harness.toml / --judges), repeatable.",
)
@click.option("--judge-model", metavar="URI", help="Model the judges call.")
@click.option(
    "--judge-samples",
    default=1,
    show_default=True,
    type=int,
    help="Ask each judge N times per row (distinct cache entries; at most 100).",
)
@judges_file_option
@guideline_option
@cache_option()
@concurrency_option("Model requests in flight at once.")
@click.option(
    "--max-cost",
    type=float,
    metavar="USD",
    help="Stop scheduling calls before the run would spend more than this.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Estimate calls, tokens and cost from the cache and prompts; send nothing.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@sample_options
@by_option
@max_slices_option
@click.option(
    "--experiment", default=DEFAULT_EXPERIMENT, show_default=True, help="MLflow experiment name."
)
@click.option("--run-name", help="MLflow run name.")
@click.option(
    "--resume",
    "resume_id",
    metavar="RUN",
    help="Finish an interrupted, failed or stopped run (its id, a tag or its run name): "
    "failed rows are retried and the same MLflow run completed. Its other options are "
    "the run's (one given with another value is refused; --max-cost sets a new budget), "
    "and so are its judges and metrics (one whose definition, or a judge whose model, "
    "changed since is refused).",
)
@click.option(
    "--model-id",
    metavar="ID",
    help="Link the run's MLflow metrics, model input and traces to this existing "
    "LoggedModel (m-...) of the project's MLflow store, in place of harness's own model "
    "of the configuration (harness.evaluate's model_id=).",
)
@click.option("--no-mlflow", is_flag=True, help="Do not log the run to MLflow.")
@click.option(
    "--no-traces",
    is_flag=True,
    help="Log the run to MLflow without one trace per row (faster for large runs; "
    "the per-row table is logged either way).",
)
@click.option(
    "--spark",
    is_flag=False,
    flag_value="on",
    default=None,
    metavar="[databricks]",
    help="Send the rows the cache cannot answer to Apache Spark executors: the active "
    "session, else a remote one (--spark-remote, SPARK_REMOTE, [spark] remote), else a "
    "local one ([spark] master, default local[*]). `--spark databricks` runs them on a "
    "Databricks cluster through Databricks Connect. Needs pyspark.",
)
@click.option(
    "--spark-remote",
    metavar="sc://HOST:PORT",
    help="Run the Spark tasks on this Spark Connect server (implies --spark).",
)
@profile_option
@verbose_option
@click.option(
    "--report",
    "report",
    metavar="FILE",
    type=FileName(),
    help="Write the run's HTML report to FILE at the end (with --check: the check's, "
    "with the comparison). Every run also logs it to MLflow as report.html.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as one JSON document on stdout."
)
@click.option(
    "--check",
    "check",
    is_flag=True,
    help="Then check the run against its gates, as `harness check` does (the options "
    "below, and [check] in harness.toml); the exit code is the check's.",
)
@check_options
@click.pass_context
def run(
    ctx: click.Context,
    data_ref: str | None,
    models: tuple[str, ...],
    prompts: tuple[str, ...],
    system: str | None,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    judges: tuple[str, ...],
    judge_model: str | None,
    judge_samples: int,
    judges_file: str | None,
    guidelines: tuple[str, ...],
    cache_mode: str,
    concurrency: int,
    max_cost: float | None,
    limit: int | None,
    sample: str | None,
    sample_seed: int | None,
    stratify: str | None,
    by: tuple[str, ...],
    max_slices: int | None,
    experiment: str,
    run_name: str | None,
    resume_id: str | None,
    model_id: str | None,
    no_mlflow: bool,
    no_traces: bool,
    spark: str | None,
    spark_remote: str | None,
    profile: str | None,
    verbose: bool,
    report: str | None,
    as_json: bool,
    dry_run: bool,
    check: bool,
    junit: str | None,
    **gates: Any,
) -> None:
    """Run MODEL on every row of a dataset, score the outputs, store and log the run.

    \b
    Exit codes:
      0    every row and every judge call succeeded
      1    rows or judge calls failed after their retries (stored with their error:
           `--resume` retries them), a metric raised (fix it and run again: the
           calls come from the cache), a --cache replay miss,
           --max-cost reached, or a server that refused the first connection
      2    bad usage or input; nothing was written
      3    with --check: the check cannot decide (see `harness check --help`)
      74   the environment failed: disk full, read-only home, a locked or damaged
           DuckDB file or MLflow store, a Spark Connect server or Databricks
           workspace that cannot be reached (the run is resumable, `harness runs
           log` logs it to MLflow later)
      130  interrupted by Ctrl-C (SIGINT), 143 by SIGTERM: finished rows are kept;
           `--resume RUN_ID` goes on (a second Ctrl-C exits at once, still resumable)

    \b
    Examples:
      harness run --data qa --model openai:/gpt-4o-mini --metric exact_match \\
          --judge correctness --judge-model openai:/gpt-4o-mini
      harness run --data qa --model openai:/gpt-4o-mini --metric exact_match \\
          --metric 'cites=regex:\\[\\d+\\]' --metric python:my_metrics:has_citation
      harness run --data qa --model openai:/gpt-4o-mini --cache replay --check
      harness run --data qa --model openai:/gpt-4o-mini --spark-remote sc://10.0.0.5:15002
      harness run --data qa --model databricks:/my-endpoint --spark databricks --profile prod
      harness run --data qa --model openai:/gpt-4o-mini --sample 200 --seed 1 --by topic
    """
    from click.core import ParameterSource

    from harness.runner.run_command import RunOptions, prepare_run

    options = RunOptions(
        data=data_ref, models=models, prompts=prompts, system=system, params=params,
        metrics=metrics, judges=judges, judge_model=judge_model, judge_samples=judge_samples,
        judges_file=judges_file, guidelines=guidelines, cache=cache_mode,
        concurrency=concurrency, max_cost=max_cost, limit=limit, sample=sample,
        sample_seed=sample_seed, stratify=stratify, by=by, max_slices=max_slices,
        experiment=experiment, run_name=run_name, resume=resume_id, model_id=model_id,
        no_mlflow=no_mlflow,
        no_traces=no_traces, spark=spark, spark_remote=spark_remote, profile=profile,
        verbose=verbose, report=report, dry_run=dry_run, check=check, junit=junit,
        gates=gates,
        # what the command line gave: --resume refuses those whose value is not the run's
        given={
            param.opts[0]
            for param in ctx.command.params
            if param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
        },
    )  # fmt: skip
    prepared = prepare_run(
        options, home=home_of(ctx), note=lambda said: click.echo(f"note: {said}", err=True)
    )
    config, home = prepared.config, prepared.home
    # Said before anything runs; --json's go in its warnings (an estimate's JSON, a sweep's
    # too, has none: there they are said on stderr).
    early = prepared.warnings if as_json and not dry_run else []
    _say_warnings([] if early else prepared.warnings)
    if check:  # a bad gate in [check] or a flag is refused before the run, not after it
        from harness.compare.api import check_gates

        check_gates(home=home, **gates)
    if prepared.kind == "sweep":
        _sweep(config, prepared.grid, home, prepared.spark_target, as_json=as_json,
               dry_run=dry_run, early=early)  # fmt: skip
        return
    if prepared.kind == "estimate":
        from harness.runner.estimate import estimate_run

        estimate = estimate_run(config, home=home_of(ctx))
        if as_json:
            print_json(estimate.as_dict())
        else:
            click.echo("\n".join(estimate.lines()))
        return
    with until_shown(home, "run") as stop:
        _run(ctx, prepared, stop, as_json=as_json, early=early, check=check, junit=junit,
             report=report, gates=gates)  # fmt: skip


def _run(
    ctx: click.Context,
    prepared: PreparedRun,
    stop: StopRequest,
    *,
    as_json: bool,
    early: list[str],
    check: bool,
    junit: str | None,
    report: str | None,
    gates: dict[str, Any],
) -> None:
    """Run what ``prepared`` says and show its result (or, stopped, the rows done)."""
    from harness.errors import HarnessError, ReplayMiss
    from harness.runner.run import run_eval

    config, home = prepared.config, prepared.home
    try:
        result = run_eval(
            config,
            home=home_of(ctx),
            progress=_progress(as_json),
            resume=prepared.resume,
            spark_target=prepared.spark_target,
            report=prepared.run_report,
            stop=stop,
        )
    except HarnessError as stopped:
        if check and isinstance(stopped, ReplayMiss):
            from harness.compare.checking import undecided

            # No run to check: the check says so on every surface, and exits "cannot decide".
            finish_check(undecided(f"replay miss: {stopped}"), junit=junit, as_json=as_json,
                         markdown=False, report=report)  # fmt: skip
            return
        # Interrupted, stopped at the budget, failed: the rows done are stored; show them
        # like any result, then exit with the reason and what to do next.
        found = getattr(stopped, "result", None)
        if found is not None:
            prepared.complete(found, early, stopped=True, harness=invocation())
            _show(found, as_json)
        else:
            _say_warnings(early)  # no JSON document to carry them
        raise
    stop.last_words = f"interrupted again: exiting now; run {result.run_id} is finished and stored"
    if prepared.resume:  # a sweep's run: its MLflow parent's table still held the run's rows
        from harness.runner.sweep import refresh_resumed_parent

        result.warnings += refresh_resumed_parent(result.run_id, home)
    prepared.complete(result, early, stopped=False)
    if check:
        from harness.compare.api import check_ref

        checked = check_ref(result.run_id, home=home, **gates)
        if as_json:
            print_json({"run": result.as_dict(), "check": checked.as_dict()})
        else:
            _print_summary(result)
            click.echo()
        # Failed rows still exit 1 when the gates alone would pass (see finish_check).
        finish_check(checked, junit=junit, as_json=False, markdown=False, quiet=as_json,
                     failed_rows=result.errors, report=report, home=home,
                     tracking_uri=home.tracking_uri if config.mlflow else None)  # fmt: skip
        return
    _show(result, as_json)
    failed = result.failure()
    if failed is not None:
        raise failed


def _progress(as_json: bool) -> Progress:
    """Rows done on stderr when a person watches it; nothing under --json or in a pipe."""
    from harness.runner.progress import NullProgress, RichProgress

    return NullProgress() if as_json or not sys.stderr.isatty() else RichProgress()


def _sweep(
    config: RunConfig,
    grid: dict[str, list[Any]],
    home: Home,
    spark_target: SparkTarget | None,
    *,
    as_json: bool,
    dry_run: bool,
    early: list[str],
) -> None:
    """Run (or estimate) a sweep and print its comparison table."""
    from harness.errors import HarnessError
    from harness.runner.sweep import SweepResult, estimate_sweep, run_sweep

    if dry_run:
        estimates = estimate_sweep(config, grid, home=home)
        if as_json:
            print_json({"runs": [{"values": p.values, **e.as_dict()} for p, e in estimates]})
            return
        for point, estimate in estimates:
            click.echo("\n  ".join([f"{point.config.run_name}:", *estimate.lines()]))
        return
    with until_shown(home, "sweep") as stop:
        try:
            sweep = run_sweep(config, grid, home=home, progress=_progress(as_json),
                              spark_target=spark_target, stop=stop)  # fmt: skip
        except HarnessError as stopped:  # interrupted: the runs done so far, then the reason
            found = getattr(stopped, "result", None)
            if isinstance(found, SweepResult) and found.runs:
                found.warnings[:0] = early
                _show_sweep(found, as_json)
            else:
                _say_warnings(early)  # no JSON document to carry them
            raise
        sweep.warnings[:0] = early
        _show_sweep(sweep, as_json)
        failed = sweep.failure()
        if failed is not None:
            raise failed


def _say_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _show_sweep(sweep: SweepResult, as_json: bool) -> None:
    if as_json:
        print_json(sweep.as_dict())
        return
    print_sweep(sweep)
    for warning in sweep.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"sweep {sweep.sweep_id}: {plural(len(sweep.runs), 'run')}; show it again with "
        f"`{invocation()} runs show {sweep.sweep_id}`"
    )


def _show(result: object, as_json: bool) -> None:
    from harness.runner.config import RunResult

    assert isinstance(result, RunResult)
    if as_json:
        print_json(result.as_dict())
    else:
        _print_summary(result)


def _print_summary(result: RunResult) -> None:
    # A run that ended before its last row (stopped, interrupted, failed) says of how many.
    done = plural(result.rows, "row")
    if result.rows_done < result.rows:
        done = f"{result.rows_done:,} of {done}"
    title = (
        f"run {result.run_id}: {result.model} on {result.dataset} "
        f"({done}, {result.errors:,} failed, {result.duration_s:.1f} s)"
    )
    if result.metrics:
        print_table(
            title,
            ["metric", "mean", "p50", "p90", "rows"],
            [
                [name, fmt(a.get("mean")), fmt(a.get("p50")), fmt(a.get("p90")),
                 f"{a.get('count', 0):,}"]
                for name, a in result.metrics.items()
            ],
        )  # fmt: skip
    else:  # stopped before any row was stored: no table of nothing
        click.echo(title)
    if result.metrics and (also := other_aggregates(result.metrics)):
        click.echo(also)
    if result.sample:
        from harness.sampling import describe_sample

        click.echo(f"sample: {describe_sample(result.sample)}")
    print_slices(result.slices)
    for line in call_lines(result.calls, result.calls_in_resume):
        click.echo(line)
    for line in failure_lines(result.failures):
        click.echo(line)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.mlflow_run_id:
        click.echo(f"MLflow run {result.mlflow_run_id} (open it with `{invocation()} ui`)")
    if result.report:
        click.echo(f"report: {result.report}")
    if result.rows_done:
        click.echo(f"rows: {invocation()} runs show {result.run_id} --rows")
