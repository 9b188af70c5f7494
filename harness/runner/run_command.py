"""What ``harness run`` makes of its options, as plain values: the checks of how they go
together, the run they describe (its ``RunConfig``, a sweep's grid, the run a ``--resume``
goes on with, where Spark is) and which of a sweep, an estimate or a run it is. The command
(``harness.cli.run``) maps its options to ``RunOptions``, calls ``prepare_run`` and carries
the result out, printing what it gives."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.config import DEFAULT_CACHE_MODE, DEFAULT_CONCURRENCY, DEFAULT_EXPERIMENT
from harness.errors import ConfigError

if TYPE_CHECKING:
    import os

    from harness.config import Home
    from harness.runner.config import RunConfig, RunResult
    from harness.runner.spark_session import SparkTarget

__all__ = [
    "RESUMED_OPTIONS",
    "PreparedRun",
    "RunOptions",
    "prepare_run",
    "refuse_changes_on_resume",
]

# What --resume takes from the run itself, by option -> RunConfig field, in the command's
# order of options: given with another value than the run's, each was silently not used (a
# --judge-model on a resume kept the run's judge model, and said nothing). Where the run
# goes (--spark...), what it writes (--report, --json), --check and --max-cost (a budget for
# the rest) are the resume's own.
RESUMED_OPTIONS = {
    "--data": "data", "--model": "model", "--prompt": "prompt", "--system": "system",
    "--param": "params", "--metric": "metrics", "--judge": "judges",
    "--judge-model": "judge_model", "--judge-samples": "judge_samples",
    "--judges": "judges_file", "--guideline": "guidelines", "--cache": "cache",
    "--concurrency": "concurrency", "--limit": "limit",
    "--sample": "sample", "--seed": "sample_seed", "--stratify": "stratify", "--by": "by",
    "--max-slices": "max_slices", "--experiment": "experiment", "--run-name": "run_name",
    "--model-id": "model_id", "--no-mlflow": "mlflow", "--no-traces": "traces",
}  # fmt: skip

_NEEDS = "harness run needs --data NAME and --model URI (or --resume RUN_ID)"


@dataclass(frozen=True)
class RunOptions:
    """``harness run``'s options as given, each under its option's name (``models`` for the
    ``--model`` values, ``resume`` for ``--resume``'s RUN), its default where not given."""

    data: str | None = None
    models: Sequence[str] = ()
    prompts: Sequence[str] = ()
    system: str | None = None  # TEXT or @FILE
    params: Sequence[str] = ()  # KEY=VALUE
    metrics: Sequence[str] = ()
    judges: Sequence[str] = ()
    judge_model: str | None = None
    judge_samples: int = 1
    judges_file: str | None = None
    guidelines: Sequence[str] = ()
    cache: str = DEFAULT_CACHE_MODE
    concurrency: int = DEFAULT_CONCURRENCY
    max_cost: float | None = None
    limit: int | None = None
    sample: str | None = None  # N or a fraction, as typed
    sample_seed: int | None = None
    stratify: str | None = None
    by: Sequence[str] = ()
    max_slices: int | None = None
    experiment: str = DEFAULT_EXPERIMENT
    run_name: str | None = None
    resume: str | None = None  # the run to go on with: an id, a tag or a run name
    model_id: str | None = None  # an existing LoggedModel the MLflow results link to
    no_mlflow: bool = False
    no_traces: bool = False
    spark: str | None = None  # "on" (a bare --spark) or "databricks"
    spark_remote: str | None = None
    profile: str | None = None
    verbose: bool = False
    report: str | None = None
    dry_run: bool = False
    check: bool = False
    junit: str | None = None
    gates: Mapping[str, Any] = field(default_factory=dict)  # --baseline, --min, ...: None or ()
    # The options the command line gave (--data, --model, ...): those of RESUMED_OPTIONS a
    # --resume refuses when their value is not the run's.
    given: Collection[str] = frozenset()


@dataclass(frozen=True)
class PreparedRun:
    """What ``harness run`` is asked to do, checked: ``kind`` says which of a sweep (over
    ``grid``), an estimate (``--dry-run``) or a run (a new one, or ``resume``'s)."""

    kind: Literal["sweep", "estimate", "run"]
    config: RunConfig
    home: Home
    grid: dict[str, list[Any]]
    resume: str | None  # the id of the run --resume goes on with
    spark_target: SparkTarget | None
    run_report: str | None  # the run's own report: with --check, the check's replaces it
    # Parameter names nearly known (temprature): said once, before the run or sweep starts.
    warnings: list[str] = field(default_factory=list)

    def complete(
        self, result: RunResult, early: list[str], *, stopped: bool, harness: str = "harness"
    ) -> None:
        """Put ``early`` (the warnings said before the run, for ``--json``) first in the
        result's; a run that ``stopped`` (interrupted, failed) without the report it was asked
        for says how to write it (``harness``: how to type the command in that hint)."""
        result.warnings[:0] = early
        if stopped and self.run_report and not (result.report or result.report_error):
            # It ends at once, without the report it was asked for.
            result.warnings.append(
                f"the report was not written (the run did not finish); write it with "
                f"`{harness} report {result.run_id} -o {self.run_report}`"
            )


def prepare_run(
    options: RunOptions,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    note: Callable[[str], None] | None = None,
) -> PreparedRun:
    """Check ``options`` and make the run they describe, or raise ``ConfigError`` with the
    first mistake (in the order a person reads them: flags alone, then what they name).
    ``note`` hears how a ``--resume`` reference was read (a name that several runs have)."""
    from harness.config import read_text_arg, resolve_home
    from harness.runner.config import RunConfig
    from harness.runner.spark_session import SparkTarget
    from harness.runner.sweep_grid import sweep_options
    from harness.sampling import DEFAULT_SEED, parse_size

    if not options.resume and not options.data:
        raise ConfigError(_NEEDS)
    # A resume's --seed is the run's own, compared with its stored seed below, as --stratify is.
    if options.sample is None and options.sample_seed is not None and not options.resume:
        raise ConfigError("--seed picks which --sample; give --sample N (or a fraction) too")
    resolved = resolve_home(home)
    if options.resume and options.dry_run:  # before the run is looked up: the flags' mistake
        raise ConfigError("--dry-run estimates a new run; it cannot be used with --resume")
    resume_id = None
    stored = None
    if options.resume:
        from harness.store.tags import find_run

        resumed, said = find_run(resolved.db_path, options.resume)
        if said and note is not None:
            note(said)
        resume_id = resumed.run_id
        stored = resumed.config
    spark_target = SparkTarget.from_flags(
        resolved.settings,
        spark=options.spark,
        remote=options.spark_remote,
        profile=options.profile,
        verbose=options.verbose,
    )
    # --resume takes its options from the run: a [sweep] table does not apply to it.
    swept = sweep_options(
        options.params,
        options.prompts,
        None if resume_id else resolved.settings,
        base_dir=resolved.path,
        models=options.models,
        flags=["system"] if options.system is not None else [],
    )
    if not resume_id and not swept.model:  # --model, or a [sweep] model list
        raise ConfigError(_NEEDS)
    config = RunConfig(
        data=options.data or "",
        model=swept.model or "",
        prompt=read_text_arg(swept.prompt, "--prompt"),
        system=read_text_arg(options.system, "--system"),
        params=swept.params,
        metrics=list(options.metrics),
        judges=list(options.judges),
        judge_model=options.judge_model,
        judge_samples=options.judge_samples,
        judges_file=options.judges_file,
        guidelines=list(options.guidelines),
        cache=options.cache,
        concurrency=options.concurrency,
        experiment=options.experiment,
        run_name=options.run_name,
        max_cost=options.max_cost,
        limit=options.limit,
        sample=parse_size(options.sample) if options.sample is not None else None,
        sample_seed=DEFAULT_SEED if options.sample_seed is None else options.sample_seed,
        stratify=options.stratify,
        by=list(options.by),
        max_slices=options.max_slices,
        mlflow=not options.no_mlflow,
        traces=not options.no_traces,
        spark=spark_target is not None,
        model_id=options.model_id,
    )
    if stored is not None:
        refuse_changes_on_resume(config, RunConfig.from_dict(stored), options.given)
    else:  # also refused by a --dry-run, which estimates a run these would stop
        from harness.runner.plan import check_experiment_name, check_run_name

        check_experiment_name(config.experiment)
        check_run_name(config.run_name)
        if options.model_id is not None:
            _check_model_id(options.model_id, options.no_mlflow, resolved)
    sweep = bool(swept.grid) and not resume_id
    _refuse_what_check_and_report_cannot_do(options, sweep=sweep)
    if options.check and (options.report or options.junit):  # written by the check: before it
        from pathlib import Path

        from harness.files import check_writable

        for target in (options.report, options.junit):
            if target:
                check_writable(Path(target))
    warnings = [] if resume_id else _param_warnings(options, config, resolved)
    return PreparedRun(
        kind="sweep" if sweep else "estimate" if options.dry_run else "run",
        config=config,
        home=resolved,
        grid=swept.grid if sweep else {},
        resume=resume_id,
        spark_target=spark_target,
        run_report=None if options.check else options.report,
        warnings=warnings,
    )


def _param_warnings(options: RunOptions, config: RunConfig, home: Home) -> list[str]:
    """The parameter names nearly known, of --param, [sweep] (its axes too) and the judges'
    params (``harness.runner.plan.param_warnings``); a --resume said them when it began."""
    from harness.config import parse_param, settings_file
    from harness.runner.plan import param_warnings
    from harness.runner.sweep_grid import CONFIG_AXES, SWEEP_SETTINGS

    given = {parse_param(item)[0]: "--param" for item in options.params}
    table = home.settings.get(SWEEP_SETTINGS) or {}
    where = f"{settings_file(home.settings)}: [{SWEEP_SETTINGS}]"
    for key in table:
        if key not in given and key not in CONFIG_AXES:
            given[key] = where
    return param_warnings(given, config, home)


def refuse_changes_on_resume(given: RunConfig, stored: RunConfig, options: Collection[str]) -> None:
    """Refuse the ``options`` given with --resume (``--judge-model``, ...) whose value in
    ``given`` is not the one in the run's own config, ``stored``."""
    changed = [
        option
        for option, name in RESUMED_OPTIONS.items()
        if option in options and getattr(given, name) != getattr(stored, name)
    ]
    if changed:
        raise ConfigError(
            f"--resume goes on with the run's own options, and {', '.join(changed)} "
            f"{'differs' if len(changed) == 1 else 'differ'} from the run's; start a new run "
            "to change them (its calls come from the cache)"
            + (
                "; for --by no new run is needed: resume without it, then `harness runs "
                "show RUN --by COLUMN` (or `harness report RUN --by COLUMN`) slices the run"
                if "--by" in changed
                else ""
            )
        )


def _check_model_id(model_id: str, no_mlflow: bool, home: Home) -> None:
    """--model-id names a LoggedModel of the project's store, as ``harness.evaluate``'s
    ``model_id=`` outside an active MLflow run does: refused before the run otherwise."""
    if no_mlflow:
        raise ConfigError(
            "--model-id links the run's MLflow results to a LoggedModel, and --no-mlflow "
            "logs none: drop one of them"
        )
    from harness.tracking.model_link import check_logged_model

    check_logged_model(
        home.tracking_uri,
        model_id,
        named=f"--model-id {model_id!r}",
        own_store=True,
        advice="harness run logs: create it there (mlflow.create_external_model on that "
        "tracking URI), or give the id of one it holds",
    )


def _refuse_what_check_and_report_cannot_do(options: RunOptions, *, sweep: bool) -> None:
    """--check and --report are about one run, not an estimate or a sweep; the gate
    options are --check's."""
    what = "--dry-run" if options.dry_run else "a sweep"
    if options.check and (options.dry_run or sweep):
        raise ConfigError(f"--check checks one run, not {what}; check runs with `harness check`")
    if not options.check and (
        options.junit or any(v not in (None, ()) for v in options.gates.values())
    ):
        raise ConfigError("gate options (--baseline, --min, --max-drop, ...) need --check")
    if options.report and (options.dry_run or sweep):
        raise ConfigError(
            f"--report writes one run's report, not {what}'s; write each run's with "
            "`harness report RUN`, or compare them with `harness report BASE CANDIDATE...`"
        )
