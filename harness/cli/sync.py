"""``harness sync``: copy local MLflow runs to another tracking server or Databricks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from harness.cli.late_signals import until_shown
from harness.cli.output import home_of, print_json, print_table

if TYPE_CHECKING:
    from harness.tracking.sync import SyncReport


@click.command()
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Target MLflow server, e.g. http://host:5000 (or a database: sqlite:///PATH, "
    "postgresql://...).",
)
@click.option("--databricks", is_flag=True, help="Target Databricks managed MLflow.")
@click.option("--profile", metavar="NAME", help="~/.databrickscfg profile (with --databricks).")
@click.option(
    "--experiment",
    metavar="NAME|PATH",
    help="Only this local experiment. With --databricks, a NAME goes to "
    "/Users/<user>/harness/NAME; a workspace PATH (/...) takes every local experiment.",
)
@click.option("--dry-run", is_flag=True, help="List what would be copied; copy nothing.")
@click.option(
    "--no-traces",
    is_flag=True,
    help="Copy runs without their traces and assessments (fast); a later sync copies them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(
    ctx: click.Context,
    tracking_uri: str | None,
    databricks: bool,
    profile: str | None,
    experiment: str | None,
    dry_run: bool,
    no_traces: bool,
    as_json: bool,
) -> None:
    """Copy local experiments and runs to a tracking server, idempotently.

    A second sync copies nothing; a run changed locally since the last sync is updated
    in place, never duplicated; an interrupted sync resumes where it stopped. Traces cost
    one request each: --no-traces leaves them for a later sync. One sync at a time per
    project home: a second one fails at once.

    \b
    Exit codes: 0 synced; 2 bad usage; 74 the target cannot be reached or written, or
    another sync is running; 130/143 interrupted by SIGINT/SIGTERM (writes under way
    finish; run the same sync again to go on; a second Ctrl-C exits at once).

    \b
    Example:
      harness sync --tracking-uri http://127.0.0.1:5050 --dry-run
    """
    from harness.config import resolve_home
    from harness.errors import ConfigError, Interrupted
    from harness.tracking.databricks_auth import databricks_local_experiments
    from harness.tracking.sync import SyncTarget, databricks_target
    from harness.tracking.sync import sync as sync_runs
    from harness.tracking.sync_target import check_tracking_uri

    if bool(tracking_uri) == databricks:
        raise ConfigError("harness sync needs one target: --tracking-uri URI or --databricks")
    if profile and not databricks:
        raise ConfigError("--profile goes with --databricks")
    if experiment is not None and not experiment.strip():  # an unset shell variable
        raise ConfigError(
            "--experiment is empty: give an experiment's name, or leave the option out to "
            "sync every local experiment"
        )
    if tracking_uri:
        check_tracking_uri(tracking_uri)
    home = resolve_home(home_of(ctx))
    if not (home.mlruns_dir / "mlflow.db").exists():
        raise ConfigError(f"no local MLflow store in {home.path}; run `harness run` first")
    if databricks:
        target = databricks_target(profile=profile, experiment=experiment)
        experiments = databricks_local_experiments(experiment)
    else:
        assert tracking_uri is not None
        target = SyncTarget(tracking_uri=tracking_uri, experiment_path=None)
        experiments = None if experiment is None else [experiment]
    progress = None if as_json else (lambda message: click.echo(message, err=True))
    with until_shown(home, "sync") as stop:
        try:
            report = sync_runs(
                home.tracking_uri,
                target,
                experiments=experiments,
                dry_run=dry_run,
                traces=not no_traces,
                progress=progress,
                stop=stop,
            )
        except Interrupted as stopped:  # the runs done so far, then the one-line error
            if as_json and stopped.result is not None:  # marked, as `harness run --json` is
                document = stopped.result.as_dict()
                document.update(status="interrupted", reason=stopped.message)
                print_json(document)
            raise
        if as_json:
            print_json(report.as_dict())
        else:
            _show(report, dry_run)


def _show(report: SyncReport, dry_run: bool) -> None:
    """The sync's table (what it copied, or would), then what it says once."""
    document = report.as_dict()
    runs = document.get("runs", [])
    if not runs:
        click.echo("no local runs to sync")
        return
    print_table(
        f"{'would sync' if dry_run else 'synced'} to {document.get('target')}"
        + (" without traces (--no-traces)" if report.traces_skipped else ""),
        ["run", "experiment", "action", "params", "metrics", "tags", "artifacts", "traces"],
        [
            [
                r["run_id"],
                r["target_experiment"] or r["experiment"],
                r["action"],
                *(f"{r[key]:,}" for key in ("params", "metrics", "tags", "artifacts")),
                "skipped" if report.traces_skipped else f"{r['traces']:,}",
            ]
            for r in runs
        ],
    )
    if all(r["action"] == "skip" for r in runs):  # said once, after a table of skips
        held = "the run as it is" if len(runs) == 1 else f"all {len(runs):,} runs as they are"
        click.echo(f"nothing to copy: {document.get('target')} holds {held} here")
    for r in runs:
        for warning in r.get("warnings") or []:
            click.echo(f"warning: run {r['run_id']}: {warning}", err=True)
