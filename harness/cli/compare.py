"""``harness compare`` and ``harness check``: compare runs, gate a candidate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from harness.cli.options import Decorator, FileName, max_slices_option
from harness.cli.output import home_of, print_json, print_renderables

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from harness.compare.result import CheckResult, Comparison
    from harness.config import Home


def rows_option(help: str) -> Decorator:
    return click.option(
        "--rows", default=10, show_default=True, type=click.IntRange(min=0), help=help
    )


def cluster_option(help: str) -> Decorator:
    return click.option("--cluster", metavar="COLUMN", help=help)


@click.command()
@click.argument("base")
@click.argument("candidates", nargs=-1, required=True)
@cluster_option(
    "Rows that share this dataset column (e.g. context: several questions on one "
    "passage) form a cluster: clustered standard errors."
)
@click.option(
    "--margin",
    "margins",
    multiple=True,
    metavar="[METRIC=]VALUE[%]",
    help="The smallest difference that matters, in the metric's units or in % of the "
    "base mean; repeatable. [default: 0.02 for scores in [0, 1], else 5%]",
)
@click.option(
    "--by",
    multiple=True,
    metavar="COLUMN",
    help="Also compare on the rows of each value of this dataset column; p-values of "
    "every slice adjusted together (Holm). Repeatable.",
)
@max_slices_option
@rows_option("Flipped rows to show of each kind (worse, better).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--markdown", is_flag=True, help="Print markdown (for a PR comment).")
@click.pass_context
def compare(
    ctx: click.Context,
    base: str,
    candidates: tuple[str, ...],
    cluster: str | None,
    margins: tuple[str, ...],
    by: tuple[str, ...],
    max_slices: int | None,
    rows: int,
    as_json: bool,
    markdown: bool,
) -> None:
    """Compare CANDIDATE runs with the BASE run, row by row.

    A run is a run id (or a unique prefix), a tag (`harness runs tag`), a run name, or
    a file from `harness runs export`. Rows are paired by example id. For each metric and
    judge: both means with 95% intervals; the paired change with its interval and p-value
    (exact McNemar for 0/1 scores, paired t otherwise), adjusted across metrics (Holm);
    the minimum detectable effect; and a verdict: better, worse, no detectable difference,
    or inconclusive (the interval is wider than the margin that matters). Then the rows
    that flipped, worse first. With --by COLUMN, the same per value of the column. Runs
    that are samples are compared on the rows both have (a note says so). With
    $GITHUB_STEP_SUMMARY set, the markdown is appended there too.

    \b
    Example:
      harness compare baseline.jsonl 3f2a9c1b4d5e --markdown > comment.md
    """
    from harness.compare.api import compare_refs
    from harness.compare.publish import publish_comparison
    from harness.errors import ConfigError

    if as_json and markdown:
        raise ConfigError("choose one of --json and --markdown")
    comparison = compare_refs(
        base, candidates, home=home_of(ctx), cluster=cluster, margins=margins, rows=rows,
        by=by, max_slices=max_slices,
    )  # fmt: skip
    for candidate in comparison.candidates:  # e.g. a `baseline` tag moved onto the candidate
        if candidate.run.run_id == comparison.base.run_id:
            click.echo(
                f"warning: {candidate.run.ref!r} is the base run itself ({candidate.run.run_id}):"
                " the comparison can show no change",
                err=True,
            )
    _show(comparison, as_json=as_json, markdown=markdown)
    for warning in publish_comparison(comparison).warnings:
        click.echo(f"warning: {warning}", err=True)


def check_options(fn: F) -> F:
    """The gate options `harness check` and `harness run --check` share."""
    options: list[Decorator] = [
        click.option(
            "--baseline",
            metavar="RUN|FILE",
            help="The run to compare with (run id, tag, name or exported file). "
            "[default: [check] baseline in harness.toml]",
        ),
        click.option(
            "--min", "minimums", multiple=True, metavar="METRIC=VALUE",
            help="Fail when the candidate's mean is below VALUE. Repeatable.",
        ),
        click.option(
            "--max", "maximums", multiple=True, metavar="METRIC=VALUE",
            help="Fail when the candidate's mean is above VALUE. Repeatable.",
        ),
        click.option(
            "--max-drop", "max_drops", multiple=True, metavar="METRIC=VALUE[%]",
            help="The largest drop from the baseline allowed (a rise, where lower is "
            "better), in the metric's units or % of the baseline mean. Repeatable.",
        ),
        click.option(
            "--max-error-rate", type=click.FloatRange(0, 1), metavar="RATE",
            help="Fail when more than this share of rows failed (a model or judge call).",
        ),
        click.option(
            "--max-missing", type=click.FloatRange(0, 1), metavar="RATE",
            help="Cannot decide a gate when more than this share of its rows has no score "
            "in a run. [default: 0.05]",
        ),
        cluster_option("Rows that share this dataset column form a cluster."),
        click.option(
            "--junit", metavar="FILE", type=FileName(),
            help="Write the gates as JUnit XML (one testcase per gate).",
        ),
    ]  # fmt: skip
    decorated: Callable[..., Any] = fn
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[return-value]  # the same function, with Click params


@click.command()
@click.argument("candidate")
@check_options
@rows_option("Flipped rows to show of each kind.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--markdown", is_flag=True, help="Print markdown (for a PR comment).")
@click.option(
    "--report",
    metavar="FILE",
    type=FileName(),
    help="Write the HTML report of the check (its gates, the comparison, every row) to "
    "FILE, e.g. next to the JUnit file for CI to keep.",
)
@click.option(
    "--no-mlflow",
    is_flag=True,
    help="Do not record the verdict on the candidate's MLflow run (tag harness.check and "
    "artifact harness/check.json).",
)
@click.pass_context
def check(
    ctx: click.Context,
    candidate: str,
    rows: int,
    as_json: bool,
    markdown: bool,
    report: str | None,
    no_mlflow: bool,
    **gates: object,
) -> None:
    """Check the CANDIDATE run against its gates: pass, fail, or cannot tell.

    Gates come from the options and the [check] table of harness.toml, for example
    `exact_match = { min = 0.30, max_drop = 0.02 }`, `faithfulness = { max_drop_pct = 5 }`,
    `errors = { max_rate = 0.01 }`. A drop gate fails when the whole 95% interval of the
    change lies beyond the allowed drop, passes when it lies above it, and cannot tell
    otherwise. With no gate at all, every metric is checked for a drop beyond compare's
    default margin. --junit, $GITHUB_STEP_SUMMARY and GITHUB_ACTIONS=true (::error:: lines
    on stderr) show the same verdict.

    \b
    Exit codes:
      0  every gate passed
      1  a gate failed: the data show the candidate is worse than allowed
      2  bad input (an unknown run, metric or option)
      3  cannot decide: too few rows to tell, too many rows without a score,
         a replay miss (with `harness run --check`), or no baseline

    \b
    Example:
      harness check 3f2a9c1b4d5e --baseline baseline.jsonl --junit junit.xml --report report.html
    """
    from harness.errors import ConfigError

    if as_json and markdown:
        raise ConfigError("choose one of --json and --markdown")
    from harness.compare.api import check_ref
    from harness.config import resolve_home
    from harness.files import check_writable

    home = resolve_home(home_of(ctx))
    junit = cast("str | None", gates.pop("junit"))
    for target in (report, junit):
        if target:
            check_writable(Path(target))  # before the work, not after it
    result = check_ref(candidate, home=home, rows=rows, **gates)  # type: ignore[arg-type]
    finish_check(
        result,
        junit=junit,
        tracking_uri=None if no_mlflow else home.tracking_uri,
        as_json=as_json,
        markdown=markdown,
        report=report,
        home=home,
    )


def finish_check(
    result: CheckResult,
    *,
    junit: str | None,
    as_json: bool,
    markdown: bool,
    tracking_uri: str | None = None,
    quiet: bool = False,
    failed_rows: int = 0,
    report: str | None = None,
    home: Home | None = None,
) -> None:
    """Show and publish a check's result, then exit with its code (shared with `run --check`).

    ``quiet``: the caller printed the result already (``run --check --json``).
    ``failed_rows``: rows of the run that failed; they make a passing check exit 1, as
    any failed call does. ``report``: a file for the check's HTML report.
    """
    from harness.compare.publish import publish_check
    from harness.errors import CheckFailed, CheckUndecided, RunFailed

    base, candidate = result.baseline, result.candidate
    if base is not None and candidate is not None and base.run_id == candidate.run_id:
        click.echo(
            f"warning: the baseline {base.ref!r} is the candidate run itself ({base.run_id}): "
            "no drop gate can find a change",
            err=True,
        )
    if not quiet:
        _show(result, as_json=as_json, markdown=markdown)
    published = publish_check(result, junit=junit, tracking_uri=tracking_uri, report=report,
                              home=home)  # fmt: skip
    for line in published.annotations:
        click.echo(line, err=True)
    for warning in published.warnings:
        click.echo(f"warning: {warning}", err=True)
    if published.mlflow_run_id and not (as_json or quiet):
        click.echo(f"verdict tagged on MLflow run {published.mlflow_run_id}", err=True)
    if published.junit is not None and not (as_json or quiet):
        click.echo(f"JUnit XML: {published.junit}", err=True)
    if published.report is not None and not (as_json or quiet):
        click.echo(f"report: {published.report}", err=True)
    if result.outcome == "fail":
        raise CheckFailed(result.summary())
    if result.outcome == "undecided":
        raise CheckUndecided(result.summary())
    if failed_rows:
        raise RunFailed(f"the check passed, but {failed_rows} rows of the run failed")


def _show(result: Comparison | CheckResult, *, as_json: bool, markdown: bool) -> None:
    """Print a comparison or a check as JSON, markdown or tables."""
    from harness.compare.render import markdown as md
    from harness.compare.render import terminal
    from harness.compare.result import Comparison

    if as_json:
        print_json(result.as_dict())
    elif markdown:
        text = (
            md.comparison_markdown(result)
            if isinstance(result, Comparison)
            else md.check_markdown(result)
        )
        click.echo(text, nl=False)
    elif isinstance(result, Comparison):
        print_renderables(terminal.comparison_renderables(result), width=200)
    else:
        print_renderables(terminal.check_renderables(result), width=200)
