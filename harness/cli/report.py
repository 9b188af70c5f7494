"""``harness report``: one HTML file for a run, or for a comparison of runs."""

from __future__ import annotations

import click

from harness.cli.compare import cluster_option, rows_option
from harness.cli.options import FileName, max_slices_option
from harness.cli.output import home_of


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=FileName(allow_dash=True),
    help="Where to write the report ('-' for stdout). [default: report-RUN.html, or "
    "report-BASE-vs-CANDIDATE.html, with the run id where a name is not a file name or "
    "that file is not a report]",
)
@cluster_option("With several runs: rows that share this dataset column form a cluster.")
@click.option(
    "--margin",
    "margins",
    multiple=True,
    metavar="[METRIC=]VALUE[%]",
    help="With several runs: the smallest difference that matters, as for `harness compare`.",
)
@click.option(
    "--by",
    multiple=True,
    metavar="COLUMN",
    help="Each metric per value of this dataset column (and, with several runs, the "
    "comparison per value, as `harness compare --by`). Repeatable. [default: the columns "
    "each run was run --by]",
)
@max_slices_option
@rows_option("With several runs: flipped rows to list of each kind (the table marks all).")
@click.pass_context
def report(
    ctx: click.Context,
    runs: tuple[str, ...],
    output: str | None,
    cluster: str | None,
    margins: tuple[str, ...],
    by: tuple[str, ...],
    max_slices: int | None,
    rows: int,
) -> None:
    """Write one self-contained HTML file about RUN, or comparing RUN with the others.

    One run: what was run, each metric's and judge's mean with its 95% interval and its
    distribution, the judges' self-agreement and calibration, its slices (--by), and
    every row (search, sort, filter, unfold to the prompt, outputs and rationales).
    Several runs: the first is the base, as in `harness compare`; the report adds each
    metric's paired change with its interval and verdict (a forest plot), per slice with
    --by, and the rows that got worse or better.
    A run is a run id (or prefix), a tag, a run name or a file from `harness runs export`.

    The file makes no request when opened (no CDN, fonts or scripts from elsewhere), opens
    from disk in any recent browser, and is the same bytes when written again from the
    same runs. Every run also logs its own report to MLflow as report.html.

    \b
    Example:
      harness report baseline.jsonl 3f2a9c1b4d5e -o report.html
    """
    from harness.compare.report import default_report_name, default_report_target, report_refs
    from harness.files import check_writable
    from harness.report import write_report

    target = output or default_report_name(runs)
    if target != "-":
        from pathlib import Path

        check_writable(Path(target))  # before the work, not after it
    html = report_refs(
        runs, home=home_of(ctx), cluster=cluster, margins=margins, rows=rows, by=by,
        max_slices=max_slices,
    )  # fmt: skip
    if target == "-":
        click.echo(html, nl=False)
        return
    if output is None:  # the default name: never over a file of yours
        target, kept = default_report_target(runs, html)
        if kept is not None:
            click.echo(f"note: kept {kept} (not a report); wrote the report next to it",
                       err=True)  # fmt: skip
    click.echo(f"report: {write_report(target, html)}")
