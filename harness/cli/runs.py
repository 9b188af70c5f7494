"""``harness runs``: read runs back from DuckDB."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import click

from harness.cli.options import (
    by_option,
    max_slices_option,
    profile_option,
    spark_remote_option,
    verbose_option,
)
from harness.cli.output import (
    call_lines,
    failure_lines,
    find_run_noted,
    fmt,
    home_of,
    other_aggregates,
    print_json,
    print_slices,
    print_sweep,
    print_table,
)
from harness.wording import plural

if TYPE_CHECKING:
    from harness.runner.run_view import RunView
    from harness.store.runs import RunInfo


@click.group()
def runs() -> None:
    """Runs stored in the project's DuckDB file.

    \b
    Example:
      harness runs show demo-baseline --rows --limit 5
    """


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def list_(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List runs, newest first: status (a run whose process is gone shows as
    interrupted), rows done, failed rows, whether it is in MLflow, and the sweep a run
    belongs to (`harness runs show SWEEP` shows the sweep's table).

    \b
    Example:
      harness runs list --limit 10
    """
    from harness.config import resolve_home
    from harness.store.runs import list_runs
    from harness.store.tags import run_tags

    home = resolve_home(home_of(ctx))
    db_path = home.db_path
    infos = list_runs(db_path, limit=limit)
    tags = run_tags(db_path)
    if as_json:
        from harness.runner.mlflow_run import find_opened_mlflow_runs

        find_opened_mlflow_runs(infos, home)
        print_json(
            [{**i.as_dict(), "tags": tags.get(i.run_id, []), "sweep_id": i.sweep_id} for i in infos]
        )
        return
    if not infos:
        click.echo("no runs yet; start one with `harness run --data NAME --model URI`")
        return
    from harness.runner.summary import headline_metric

    rows = []
    for i in infos:
        headline = headline_metric(i.metrics)
        params = " ".join(f"{k}={v}" for k, v in sorted((i.config.get("params") or {}).items()))
        rows.append(
            [
                " ".join([i.run_id, *tags.get(i.run_id, [])]),
                i.run_name or "",
                i.created_at.strftime("%Y-%m-%d %H:%M"),
                i.status,
                f"{i.dataset}@{i.dataset_version}",
                i.model + (f" {params}" if params else ""),
                f"{i.rows_done:,}/{i.rows_total:,}",
                i.errors if i.errors is not None else "",
                _mlflow_state(i),
                f"{headline[0]} {fmt(headline[1].get('mean'))}" if headline else "",
                i.sweep_id or "",
            ]
        )
    print_table(
        None,
        [
            "run (tags)",
            "name",
            "created",
            "status",
            "dataset",
            "model (params)",
            "rows",
            "failed",
            "mlflow",
            "headline metric (mean)",
            "sweep",
        ],  # fmt: skip
        rows,
    )
    for i in infos:
        if i.status == "finished" and i.mlflow_pending:
            click.echo(
                f"run {i.run_id} is not in MLflow: log it with `harness runs log {i.run_id}`"
            )


def _mlflow_state(info: RunInfo) -> str:
    """How far a run got into MLflow: logged, failed (logging failed), pending, or off."""
    if info.mlflow_run_id:  # also a --no-mlflow run logged later with `harness runs log`
        return "logged"
    if not info.config.get("mlflow", True):
        return "off"
    if info.mlflow_error:
        return "failed"
    return "pending" if info.status in ("running", "finished") else "-"


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--rows", "with_rows", is_flag=True, help="Also show the rows with their scores.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="At most N rows (implies --rows; --all for every row).  "
    "[default: 20; with --json, every row]",
)
@click.option("--all", "all_rows", is_flag=True, help="Every row (implies --rows).")
@click.option("--errors", "errors_only", is_flag=True, help="Only failed rows (implies --rows).")
@click.option(
    "--columns",
    metavar="A,B,...",
    help="The rows with these columns (and id), e.g. output,error,token_f1 (implies --rows); "
    "the data's own columns (final_decision, ...) and context show only when named here.",
)
@by_option
@max_slices_option
@click.option("--json", "as_json", is_flag=True, help="Print the run (and rows) as JSON.")
@click.pass_context
def show(
    ctx: click.Context,
    run_id: str,
    with_rows: bool,
    limit: int | None,
    all_rows: bool,
    errors_only: bool,
    columns: str | None,
    by: tuple[str, ...],
    max_slices: int | None,
    as_json: bool,
) -> None:
    """Show one run: status and why it ended, metrics, calls, what failed; with --rows
    the per-row table; with --by COLUMN every metric per value of a dataset column (a run
    made with --by shows its own columns). Show a sweep: its comparison table, one row per run,
    and with --by each run's slices.

    RUN is a run id (or a unique prefix), a tag, a run name, a file from
    `harness runs export`, or a sweep's id (or a unique prefix, its MLflow parent run's
    id, or the --run-name it was given: its runs are named "NAME axis=value").
    --rows prints the first 20 rows, cells cut to fit; --json prints every row (of
    those --errors and --columns select), whole, or the first N with --limit N.

    \b
    Example:
      harness runs show demo-baseline --by final_decision
      harness runs show baseline.jsonl --rows --errors --columns output,error
    """
    from harness.config import resolve_home
    from harness.runner.run_view import RowsWanted, RunView, view_run

    # --all, --errors, --columns and --limit are about rows: without --rows, ignored once.
    rows = None
    if with_rows or all_rows or errors_only or columns is not None or limit is not None:
        rows = RowsWanted(
            errors_only=errors_only,
            columns=None
            if columns is None
            else [c.strip() for c in columns.split(",") if c.strip()],
            # --json prints every row unless --limit says how many; the table, 20.
            limit=None if all_rows else limit if as_json else (limit or 20),
        )
    home = resolve_home(home_of(ctx))
    found = view_run(run_id, home=home, rows=rows, by=by, max_slices=max_slices)
    if not isinstance(found, RunView):  # a sweep: its comparison table
        if found.note:
            click.echo(f"note: {found.note}", err=True)
        if as_json:
            print_json(found.as_dict())
        else:
            print_sweep(found)
        return
    if found.note:
        click.echo(f"note: {found.note}", err=True)
    if as_json:
        print_json(found.as_dict())
    else:
        _print_run(found, errors_only=errors_only)


def _mlflow_lines(info: RunInfo) -> list[str]:
    """What ``runs show`` says of the run's MLflow run: its id once logged; else the one
    holding the rows logged so far (``mlflow_partial_run_id``, whatever the status: a
    resume, or for a finished run `runs log`, goes on with it) and how to complete it."""
    if info.mlflow_run_id:
        return [f"MLflow run {info.mlflow_run_id}"]
    lines = []
    if info.mlflow_partial_run_id:
        how = (
            "being logged" if info.status == "running" else "partly logged: the rows stored so far"
        )
        lines.append(f"MLflow run {info.mlflow_partial_run_id} ({how})")
        if info.status != "finished":
            return lines  # the way on is the run's own (`go on with ...`)
    if info.mlflow_error:
        lines.append(
            f"MLflow logging failed: {info.mlflow_error}; "
            f"log it with `harness runs log {info.run_id}`"
        )
    elif info.status == "finished" and info.mlflow_pending:
        yet = "not completely" if info.mlflow_partial_run_id else "not"
        lines.append(f"{yet} in MLflow yet: log it with `harness runs log {info.run_id}`")
    return lines


def _print_run(view: RunView, *, errors_only: bool = False) -> None:
    """``runs show``'s text: the run's head, metrics, sample, slices, calls, what failed and
    the way on, then the rows asked for."""
    from harness.calls.stats import stopped_warnings

    info = view.info
    click.echo(
        f"run {info.run_id}  {info.status}  {info.model} on "
        f"{info.dataset}@{info.dataset_version}  {info.rows_done:,}/{info.rows_total:,} rows, "
        f"{info.errors or 0:,} failed"
    )
    if info.reason:
        click.echo(f"reason: {info.reason}")
    for line in _mlflow_lines(info):
        click.echo(line)
    if info.metrics:  # none scored (every row failed, or none stored): no table of nothing
        print_table(
            None,
            ["metric", "mean", "p50", "p90", "rows"],
            [
                [n, fmt(a.get("mean")), fmt(a.get("p50")), fmt(a.get("p90")),
                 None if a.get("count") is None else f"{a['count']:,}"]
                for n, a in info.metrics.items()
            ],
        )  # fmt: skip
        if also := other_aggregates(info.metrics):
            click.echo(also)
    if info.sample:
        from harness.sampling import describe_sample

        click.echo(f"sample: {describe_sample(info.sample)}")
    print_slices(view.slices)
    for line in [*call_lines(info.usage), *failure_lines(info.failures)]:
        click.echo(line)
    next_step = view.next_step()
    if next_step is not None:
        click.echo(next_step)
    for warning in stopped_warnings(info.usage):
        click.echo(f"warning: {warning}", err=True)
    table = view.table
    if table is not None and table.empty:
        click.echo("no failed rows" if errors_only else "no rows")
    elif table is not None:
        width = max(12, (shutil.get_terminal_size().columns - 3 * len(table.columns)) // max(
            1, len(table.columns)
        ))  # fmt: skip
        print_table(
            None,
            list(table.columns),
            [[_cell(v, width) for v in row] for row in table.itertuples(index=False)],
        )
        if view.left_out:
            click.echo(f"... {plural(view.left_out, 'more row')} (--limit N, or --all)")


@runs.command("export")
@click.argument("run_ref", metavar="RUN")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--spark-table",
    metavar="NAME",
    help="Write the run's per-row results to this Spark table instead of a file "
    "(created, or appended to; catalog.schema.table on Unity Catalog).",
)
@click.option("--overwrite", is_flag=True, help="With --spark-table: replace the table.")
@spark_remote_option
@profile_option
@verbose_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def export(
    ctx: click.Context,
    run_ref: str,
    file: str | None,
    spark_table: str | None,
    overwrite: bool,
    spark_remote: str | None,
    profile: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Write a run with its per-row outputs, scores and configuration to FILE, or its
    per-row results to a Spark table (--spark-table).

    The file's format follows its name: .jsonl, .jsonl.gz or .parquet. `harness compare`,
    `harness check` and `harness runs show` accept the file wherever they take a run, on
    any machine: this is how a baseline travels to CI. A Spark table gets one row per
    example, with its output, its `metrics` (a map) and every score; runs append to one
    table, for people who analyse in notebooks.

    \b
    Examples:
      harness runs export baseline examples/ci/baseline.jsonl
      harness runs export 3f2a9c1b7d4e --spark-table main.evals.results --spark-remote databricks
    """
    from harness.config import resolve_home

    home = resolve_home(home_of(ctx))
    if (file is None) == (spark_table is None):
        from harness.errors import ConfigError

        raise ConfigError("harness runs export writes to a FILE or to --spark-table NAME: give one")
    if spark_table is None and (overwrite or spark_remote or profile):
        from harness.errors import ConfigError

        raise ConfigError("--overwrite, --spark-remote and --profile go with --spark-table")
    info = find_run_noted(home.db_path, run_ref)
    if info.status == "running":  # its file would say "running" for ever, with some rows
        from harness.errors import RunBusy

        raise RunBusy(
            f"run {info.run_id} is running in another process; export it once it ends (or "
            "stop it with Ctrl-C: an interrupted run exports with the rows it stored)"
        )
    if spark_table is not None:
        from harness.runner.spark_session import SparkTarget
        from harness.spark_tables import export_run_to_spark

        target = SparkTarget.resolve(
            home.settings, remote=spark_remote, profile=profile, verbose=verbose
        )
        result = export_run_to_spark(
            info.run_id, spark_table, overwrite=overwrite, home=home.path, target=target
        )
        if as_json:
            print_json(result.as_dict())
            return
        click.echo(result.line())
        return
    from harness.store.exports import export_run, load_run_record

    rows = export_run(load_run_record(home.db_path, info.run_id), str(file))
    if as_json:
        print_json({"run_id": info.run_id, "rows": rows, "file": file})
        return
    click.echo(f"wrote run {info.run_id} ({plural(rows, 'row')}) to {file}")


@runs.command("tag")
@click.argument("run_ref", metavar="RUN")
@click.argument("name")
@click.pass_context
def tag(ctx: click.Context, run_ref: str, name: str) -> None:
    """Pin the tag NAME on RUN; use NAME wherever a run id goes.

    A tag names one run: tagging another run with the same NAME moves it. NAME may not
    be a run's name, a sweep's --run-name or the start of run or sweep ids, which it
    would hide, nor end in .jsonl, .jsonl.gz or .parquet, which is read as a run file.

    \b
    Example:
      harness runs tag 3f2a9c1b4d5e baseline && harness check NEW_RUN --baseline baseline
    """
    from harness.config import resolve_home
    from harness.store.tags import tag_run

    db_path = resolve_home(home_of(ctx)).db_path
    info = find_run_noted(db_path, run_ref)
    _, previous = tag_run(db_path, info.run_id, name)
    moved = f" (moved from {previous})" if previous else ""
    click.echo(f"tagged run {info.run_id} {name!r}{moved}")


@runs.command("delete")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--force",
    is_flag=True,
    help="Delete a run whose status is still running; its process stops at its next "
    "batch of rows (exit 2) and stores nothing more.",
)
@click.pass_context
def delete(ctx: click.Context, run_ref: str, force: bool) -> None:
    """Delete RUN: its rows, outputs, scores and tags in DuckDB, and mark its MLflow run
    deleted (restorable with `mlflow runs restore`; as with MLflow's own delete, its traces
    stay in the experiment's Traces tab). The last run of a sweep takes the sweep's MLflow
    parent run with it. The cache keeps every response.

    \b
    Example:
      harness runs delete 3f2a9c1b4d5e
    """
    from harness.config import resolve_home
    from harness.runner.deletion import delete_run

    deleted = delete_run(resolve_home(home_of(ctx)), run_ref, force=force)
    also = f", tags {', '.join(deleted.tags)}" if deleted.tags else ""
    click.echo(f"deleted run {deleted.info.run_id} ({plural(deleted.info.rows_done, 'row')}{also})")
    if deleted.mlflow == "deleted":
        runs = "run" if len(deleted.mlflow_run_ids) == 1 else "runs"
        click.echo(f"MLflow {runs} {', '.join(deleted.mlflow_run_ids)} marked deleted")
    elif deleted.mlflow == "not found":
        click.echo(f"MLflow run {deleted.info.mlflow_run_id} was not in the store", err=True)
    if deleted.sweep_parent:
        sweep_id = deleted.info.config["sweep"]["id"]
        click.echo(
            f"MLflow parent run {deleted.sweep_parent} of sweep {sweep_id} marked deleted "
            "(its last run is gone)"
        )


def _cell(value: object, width: int = 60) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return fmt(value)
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@runs.command("log")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print what was logged as JSON.")
@click.pass_context
def log(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Log a finished run from DuckDB to the local MLflow store, again or at last.

    RUN is a run id (or a unique prefix), a tag, or a run name that names one run.

    For a run whose MLflow logging failed (a full disk, a damaged store) or was
    interrupted: its MLflow run is completed (the traces of the rows it lacks, params,
    metrics, artifacts), never duplicated. Idempotent: logging a logged run changes
    nothing. Exit 74 when the store cannot be written.

    \b
    Example:
      harness runs log 3f2a9c1b7d4e
    """
    from harness.runner.relog import log_stored_run

    logged = log_stored_run(run_id, home=home_of(ctx))
    if as_json:
        print_json(logged.as_dict())
        return
    if logged.resumed and not logged.traces_written:  # a logged run: it said "completed"
        click.echo(
            f"run {logged.run_id}: MLflow run {logged.mlflow_run_id} holds it already "
            f"({plural(logged.traces, 'trace')}, none missing)"
        )
        return
    how = "completed" if logged.resumed else "logged"
    click.echo(
        f"run {logged.run_id}: MLflow run {logged.mlflow_run_id} {how}; "
        f"{logged.traces_written} trace(s) written, {logged.traces} in all"
    )
