"""Sweeps: a grid of configurations run as MLflow child runs of one parent run.

A sweep varies generation params (``temperature = [0, 0.7]``), prompts, system prompts
or models over a base ``RunConfig``. Every point of the grid is an ordinary run
(``run_eval``: stored in DuckDB, logged to MLflow with the tag ``mlflow.parentRunId``);
the parent run holds the sweep's params, the comparison table
(``sweep_comparison.json``) and the metrics of the best child. ``run_sweep`` returns the
same table: one row per child with the values that vary, its run ids and each metric's mean.

A sweep has an id of its own; each child stores it in its config (``config["sweep"]``),
so ``find_sweep`` rebuilds the table from DuckDB by that id or by the MLflow parent's id.

Where sweeps come from (``sweep_options``: several values of a flag, or a ``[sweep]``
table) and the points of their grid (``expand_grid``) live in ``harness.runner.sweep_grid``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.config import Home, resolve_home
from harness.errors import BudgetExceeded, HarnessError, Interrupted, RunFailed
from harness.interrupt import SIGNAL_NAMES, StopRequest, stop_on_signals
from harness.metrics import DEFAULT_METRICS, metric_direction
from harness.providers import Provider
from harness.runner.config import RunConfig, RunResult
from harness.runner.progress import NullProgress, Progress
from harness.runner.sweep_grid import SweepPoint, expand_grid
from harness.wording import plural

if TYPE_CHECKING:
    from harness.runner.estimate import RunEstimate
    from harness.runner.spark_session import SparkTarget
    from harness.store.runs import RunInfo

Reopen = Callable[[], "str | None"]  # opens the sweep's parent run again; its id, or None


@dataclass
class SweepRun:
    values: dict[str, Any]
    result: RunResult


@dataclass
class SweepResult:
    """A finished sweep: its id, its parent MLflow run and one child run per grid point."""

    parent_mlflow_run_id: str | None
    axes: list[str]
    runs: list[SweepRun]
    sweep_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    primary_metric: str | None = None
    best: int | None = None  # index into runs
    warnings: list[str] = field(default_factory=list)
    note: str | None = None  # how ``find_sweep`` read its reference, when that needs saying
    name: str | None = None  # the --run-name it was given: its children are "NAME axis=value"
    # The grid's size: more than len(runs) when the sweep was stopped before its last point
    # ran (or a child was deleted since). None for a sweep stored before children kept it.
    points: int | None = None

    @property
    def errors(self) -> int:
        """Failed rows over all children."""
        return sum(run.result.errors for run in self.runs)

    def failure_line(self) -> str:
        """The failed rows of every run, as a run's own failure says them, and the resumes
        that finish them."""
        failed = [run.result for run in self.runs if run.result.errors]
        said = "; ".join(f"run {result.run_id}: {result.failed_rows()}" for result in failed)
        resumes = " and ".join(f"`harness run --resume {result.run_id}`" for result in failed)
        failed_rows = plural(self.errors, "row")
        return f"{failed_rows} failed in the sweep ({said}); finish them with {resumes}"

    def failure(self) -> RunFailed | None:
        """What went wrong in a sweep that ran to its end, as the error to exit with (1):
        failed rows (resumes finish them), else metrics that raised; None when all went well."""
        if self.errors:
            return RunFailed(self.failure_line())
        metric_errors = sum(run.result.metric_errors for run in self.runs)
        if metric_errors:
            return RunFailed(
                f"metrics failed in {metric_errors} place(s) in the sweep; see warnings"
            )
        return None

    @property
    def metric_names(self) -> list[str]:
        return sorted({name for run in self.runs for name in run.result.metrics})

    @property
    def directions(self) -> dict[str, int]:
        """Each metric's direction, as the children's runs reported it."""
        return {k: v for run in self.runs for k, v in run.result.directions.items()}

    @property
    def columns(self) -> list[str]:
        """The comparison table's columns: the axes, ids, counts, then each metric's mean."""
        return [*self.axes, "run_id", "mlflow_run_id", "rows", "errors", *self.metric_names]

    @property
    def rows(self) -> list[list[Any]]:
        """The comparison table, one row per child, in grid order."""
        return [
            [
                *(run.values.get(axis) for axis in self.axes),
                run.result.run_id,
                run.result.mlflow_run_id,
                run.result.rows_done,
                run.result.errors,
                *(run.result.metrics.get(name, {}).get("mean") for name in self.metric_names),
            ]
            for run in self.runs
        ]

    def as_dict(self) -> dict[str, Any]:
        """What ``harness run --json`` prints for a sweep."""
        best = self.runs[self.best].result if self.best is not None else None
        return {
            "sweep_id": self.sweep_id,
            "parent_mlflow_run_id": self.parent_mlflow_run_id,
            "axes": self.axes,
            "points": self.points,
            "primary_metric": self.primary_metric,
            "best_run_id": best.run_id if best else None,
            "errors": self.errors,
            "runs": [
                {
                    "values": run.values,
                    **run.result.as_dict(),
                    "metric_means": {k: v.get("mean") for k, v in run.result.metrics.items()},
                }
                for run in self.runs
            ],
            "warnings": self.warnings,
        }


def run_sweep(
    base: RunConfig,
    grid: Mapping[str, Sequence[Any]],
    *,
    home: str | os.PathLike[str] | Home | None = None,
    progress: Progress | None = None,
    provider: Provider | None = None,
    spark_target: SparkTarget | None = None,
    stop: StopRequest | None = None,
) -> SweepResult:
    """Run every point of ``grid`` over ``base`` as a child run of one MLflow parent run.

    Every child is checked (``plan_run``) before the first one starts, so a typo in one
    prompt fails the sweep before anything is written. A child that raises (e.g. a
    ``--max-cost`` stop) ends the sweep: the parent is logged FAILED with the children done.
    ``stop`` is the caller's own stop request (``harness run``'s), as for ``run_eval``.
    """
    from harness.runner.plan import check_experiment_name, check_run_name, plan_run, preflight

    home = resolve_home(home)
    progress = progress or NullProgress()
    check_experiment_name(base.experiment)  # before the parent MLflow run is made
    check_run_name(base.run_name)
    points = expand_grid(base, grid)
    for point in points:
        plan = plan_run(point.config, home, provider)
        preflight(point.config, home.settings, plan.providers)
    sweep = SweepResult(
        parent_mlflow_run_id=None, axes=list(grid), runs=[], name=base.run_name, points=len(points)
    )

    def reopen() -> str | None:
        return _start_parent(base, grid, points, home, sweep, progress)

    sweep.parent_mlflow_run_id = reopen() if base.mlflow else None
    status = "FAILED"
    try:
        # One stop request for the whole sweep: a Ctrl-C that comes while a child ends
        # (its rows all done) or between children stops the sweep, not only a child.
        stop = stop or StopRequest(home.stop_grace_s)
        with stop_on_signals(stop), _one_spark_session(base):
            _run_children(points, sweep, home, progress, provider, spark_target, stop, reopen)
        status = "FINISHED"
    except Interrupted as e:
        status = "KILLED"
        raise _sweep_stopped(e, sweep, len(points), base.cache) from None
    except BudgetExceeded as e:  # the parent is logged FAILED, as for any child's error
        raise _sweep_stopped(e, sweep, len(points), base.cache) from None
    finally:
        sweep.primary_metric = primary_metric(base, sweep.metric_names, sweep.directions)
        sweep.best = best_run(sweep.runs, sweep.primary_metric, sweep.directions)
        if sweep.parent_mlflow_run_id:
            _finish_parent(sweep, home, progress, status=status)
    return sweep


def _one_spark_session(base: RunConfig) -> contextlib.AbstractContextManager[None]:
    """One Spark session for all the children of a ``--spark`` sweep (see ``keep_sessions``)."""
    if not base.spark:
        return contextlib.nullcontext()
    from harness.runner.spark import keep_sessions

    return keep_sessions()


def _sweep_stopped(
    stopped: Interrupted | BudgetExceeded, sweep: SweepResult, points: int, cache: str
) -> Interrupted | BudgetExceeded:
    """The sweep's own ``Interrupted`` (or ``BudgetExceeded``, a child stopped at
    ``--max-cost``): which runs are done, and how to finish the rest; its ``result`` is the
    sweep so far, which ``harness run`` prints (its table, or ``--json``'s document).

    ``--resume`` goes on with one run; the points not started yet run only when the sweep
    runs again, and then the calls already made come from the cache."""
    finished = sum(run.result.status == "finished" for run in sweep.runs)
    rerun = "run the same command again to finish the sweep" + (
        " (the calls already made come from the cache)" if cache == "use" else ""
    )
    if isinstance(stopped.result, RunResult):  # the child the signal (or budget) stopped
        message = f"{stopped.message}; or {rerun}"
    else:
        signum = stopped.signum if isinstance(stopped, Interrupted) else 0
        message = f"interrupted by {SIGNAL_NAMES.get(signum or 0, 'a signal')}; {rerun}"
    text = f"sweep {sweep.sweep_id} stopped after {finished} of {points} runs: {message}"
    if isinstance(stopped, Interrupted):
        return Interrupted(text, signum=stopped.signum, result=sweep)
    error = BudgetExceeded(text)
    error.result = sweep
    return error


def _run_children(
    points: list[SweepPoint],
    sweep: SweepResult,
    home: Home,
    progress: Progress,
    provider: Provider | None,
    spark_target: SparkTarget | None,
    stop: StopRequest,
    reopen: Reopen,
) -> None:
    from harness.runner.mlflow_records import mlflow_parent_run
    from harness.runner.run import run_eval

    unchecked = False  # MLflow failed to say whether the parent was deleted: said once
    for number, point in enumerate(points, 1):
        if stop.requested:
            raise Interrupted(f"interrupted by {stop.signal_name}", signum=stop.signum or 2)
        progress.note(f"sweep run {number} of {len(points)}: {point.config.run_name}")
        if number > 1 and sweep.parent_mlflow_run_id:
            unchecked = _reopen_deleted_parent(sweep, point, home, progress, reopen, unchecked)
        # The child names its sweep in its stored config: that is how the sweep is found again.
        config = replace(
            point.config,
            sweep={
                "id": sweep.sweep_id,
                "axes": sweep.axes,  # the values' order: the stored config's keys are sorted
                "values": point.values,
                "parent_mlflow_run_id": sweep.parent_mlflow_run_id,
                "name": sweep.name,  # `harness runs show NAME` finds the sweep
                "points": sweep.points,  # `runs show` says when runs are missing
            },
        )
        try:
            with mlflow_parent_run(sweep.parent_mlflow_run_id):
                result = run_eval(
                    config,
                    home=home,
                    progress=progress,
                    provider=provider,
                    spark_target=spark_target,
                    stop=stop,
                )
        except (Interrupted, BudgetExceeded) as e:  # the rows it stored are the sweep's too
            if isinstance(e.result, RunResult):
                sweep.runs.append(SweepRun(point.values, e.result))
            raise
        sweep.runs.append(SweepRun(point.values, result))
        sweep.warnings += [f"{point.config.run_name}: {w}" for w in result.warnings]


def find_sweep(
    ref: str,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    by: Sequence[str] = (),
    max_slices: int | None = None,
) -> SweepResult | None:
    """The sweep ``ref`` names (its id or a unique prefix of it, its MLflow parent run's id,
    or the ``--run-name`` it was given: ``find_sweep_id``), rebuilt from its children in
    DuckDB: the same table, best child and JSON as when it ran (each child's sample, and
    its slices by the columns it was run ``--by``, or by ``by`` when given, with at most
    ``max_slices`` values each); None when no stored run belongs to such a sweep. Raises
    ConfigError for a ``by`` column no row has or with too many values, and RunNotFound
    for an ambiguous prefix."""
    from harness.runner.mlflow_run import find_opened_mlflow_runs
    from harness.runner.summary import record_slices
    from harness.store.sweeps import find_sweep_id, sweep_children

    home = resolve_home(home)
    found = find_sweep_id(home.db_path, ref)
    if found is None:
        return None
    sweep_id, note = found
    children = sweep_children(home.db_path, sweep_id)
    find_opened_mlflow_runs(children, home)
    first = children[0].config["sweep"]
    # Runs stored before the sweep kept its axes have only their values' (sorted) keys.
    axes = list(first.get("axes") or first.get("values") or {})

    def values(child: RunInfo) -> dict[str, Any]:
        stored = child.config["sweep"].get("values") or {}
        return {axis: stored[axis] for axis in axes if axis in stored}

    def result(child: RunInfo) -> RunResult:
        columns = list(by) or list(child.config.get("by") or [])
        slices = record_slices(home, child.run_id, columns, max_slices=max_slices, limited=bool(by))
        return replace(RunResult.from_info(child), slices=slices)

    points = first.get("points")
    if points and points > len(children):  # stopped before its last point, or runs deleted
        missing = (
            f"only {len(children)} of the sweep's {points} runs "
            f"{'is' if len(children) == 1 else 'are'} stored (it was stopped before the "
            "others ran, or they were deleted): run the same command again to run them all"
        )
        note = f"{note}; {missing}" if note else missing
    sweep = SweepResult(
        parent_mlflow_run_id=first.get("parent_mlflow_run_id"),
        axes=axes,
        runs=[SweepRun(values(c), result(c)) for c in children],
        sweep_id=first["id"],
        note=note,
        name=first.get("name"),
        points=points,
    )
    base = RunConfig.from_dict(children[0].config)
    sweep.primary_metric = primary_metric(base, sweep.metric_names, sweep.directions)
    sweep.best = best_run(sweep.runs, sweep.primary_metric, sweep.directions)
    return sweep


def estimate_sweep(
    base: RunConfig,
    grid: Mapping[str, Sequence[Any]],
    *,
    home: str | os.PathLike[str] | Home | None = None,
    provider: Provider | None = None,
) -> list[tuple[SweepPoint, RunEstimate]]:
    """``--dry-run`` for a sweep: every child's estimate (nothing is sent or written)."""
    from harness.runner.estimate import estimate_run

    home = resolve_home(home)
    return [
        (point, estimate_run(point.config, home=home, provider=provider))
        for point in expand_grid(base, grid)
    ]


def primary_metric(
    base: RunConfig, names: Sequence[str], directions: Mapping[str, int]
) -> str | None:
    """The metric that picks the best child: the first judge, else the first metric that
    has a better direction, in the order the run asked for them. ``directions`` are the
    children's own (``RunResult.directions``)."""
    preferred = [*base.judges, *base.metrics, *DEFAULT_METRICS, *names]
    return next((n for n in preferred if n in names and metric_direction(n, directions) != 0), None)


def best_run(
    runs: Sequence[SweepRun], metric: str | None, directions: Mapping[str, int]
) -> int | None:
    """Index of the child with the best mean of ``metric`` (the first one on ties: means
    that differ only past 12 significant digits, as a float sum's order makes them, tie).

    A child whose every row ran and none failed beats one with failed or missing rows,
    whatever their means: a mean over the rows that succeeded leaves out the failures (a
    run with half its rows failed was starred as the best). Only when no child is whole
    is the best taken among the others."""
    if metric is None:
        return None
    sign = metric_direction(metric, directions)
    scored = [
        (whole(run), sign * float(f"{mean:.12g}"), -i)
        for i, run in enumerate(runs)
        if (mean := run.result.metrics.get(metric, {}).get("mean")) is not None and mean == mean
    ]
    return -max(scored)[2] if scored else None


def whole(run: SweepRun) -> bool:
    """Every row of the child ran, and none failed."""
    return not run.result.errors and run.result.rows_done >= run.result.rows


def _start_parent(
    base: RunConfig,
    grid: Mapping[str, Sequence[Any]],
    points: list[SweepPoint],
    home: Home,
    sweep: SweepResult,
    progress: Progress,
) -> str | None:
    from harness.runner.sweep_parent import start_parent

    try:
        return start_parent(base, grid, [point.values for point in points], home)
    except HarnessError as e:  # as for a single run: MLflow failing does not stop the work
        sweep.warnings.append(f"MLflow logging failed: {e}")
        progress.note(f"MLflow logging failed: {e}")
        return None


def _reopen_deleted_parent(
    sweep: SweepResult, p: SweepPoint, home: Home, progress: Progress, reopen: Reopen, said: bool
) -> bool:
    """A parent run deleted while the sweep runs is opened anew for the runs left, so none
    is logged under a deleted parent (one MLflow hides, and that cannot be finished).
    Returns whether MLflow failing to tell if it was deleted is said (``said``: before)."""
    from harness.runner.sweep_parent import parent_deleted, reopened_note, stored_runs

    old = sweep.parent_mlflow_run_id
    try:
        if old is None or not parent_deleted(old, home):
            return said
    except HarnessError as e:  # said once, as when the parent cannot be opened
        if not said:
            sweep.warnings.append(f"MLflow logging failed: {e}")
            progress.note(f"MLflow logging failed: {e}")
        return True
    kept = stored_runs(sweep.sweep_id, home)  # runs deleted with it leave, as in `runs show`
    gone = [r.result.run_name or r.result.run_id for r in sweep.runs if r.result.run_id not in kept]
    sweep.runs = [run for run in sweep.runs if run.result.run_id in kept]
    new = sweep.parent_mlflow_run_id = reopen()
    if new:
        note = reopened_note(sweep.sweep_id, old, new, p.config.run_name, gone)
        sweep.warnings.append(note)
        progress.note(note)
    return said


def refresh_resumed_parent(run_id: str, home: Home, progress: Progress | None = None) -> list[str]:
    """Log the sweep's comparison table, best child and its metrics to its MLflow parent
    again, from DuckDB, after ``run_id``, one of its runs, was resumed: the parent was
    written when the sweep ended, with that run's failed rows and means as they were then.
    The parent keeps its status; one still RUNNING (its sweep goes on in another process)
    is left to it. Nothing for a run of no sweep or not logged to MLflow. Returns the
    warnings (MLflow failing does not fail the resumed run)."""
    from harness.store.tags import find_run
    from harness.tracking.sweep_log import parent_run_status

    progress = progress or NullProgress()
    config = find_run(home.db_path, run_id)[0].config
    sweep_id = (config.get("sweep") or {}).get("id")
    if not sweep_id or not config.get("mlflow", True):
        return []
    sweep = find_sweep(sweep_id, home=home)
    if sweep is None or sweep.parent_mlflow_run_id is None:
        return []
    try:
        status = parent_run_status(sweep.parent_mlflow_run_id, tracking_uri=home.tracking_uri)
    except HarnessError as e:
        progress.note(f"MLflow logging failed: {e}")
        return [f"MLflow logging failed: {e}"]
    if status is None or status == "RUNNING":
        return []
    _finish_parent(sweep, home, progress, status=status)
    return sweep.warnings


def _finish_parent(sweep: SweepResult, home: Home, progress: Progress, *, status: str) -> None:
    import pandas as pd

    from harness.tracking.sweep_log import finish_parent_run

    assert sweep.parent_mlflow_run_id is not None
    # object columns keep each value as given: 0 stays 0, not 0.0 next to 0.7.
    table = pd.DataFrame(sweep.rows, columns=sweep.columns, dtype=object)
    tags = {"harness.sweep.axes": ",".join(sweep.axes)}
    metrics: dict[str, float] = {}
    if sweep.best is not None and sweep.primary_metric:
        best = sweep.runs[sweep.best].result
        # The parent shows its best child's metrics, so parents of sweeps compare directly.
        metrics = {k: v for k, v in best.flat_metrics().items() if k.endswith("/mean")}
        tags["harness.sweep.primary_metric"] = sweep.primary_metric
        tags["harness.sweep.best_run"] = best.mlflow_run_id or best.run_id
    try:
        finish_parent_run(
            sweep.parent_mlflow_run_id,
            tracking_uri=home.tracking_uri,
            table=table,
            metrics=metrics,
            tags=tags,
            status=status,
        )
    except HarnessError as e:
        sweep.warnings.append(f"MLflow logging failed: {e}")
        progress.note(f"MLflow logging failed: {e}")
