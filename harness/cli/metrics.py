"""``harness metrics``: what ``--metric`` accepts, and how to ask for it."""

from __future__ import annotations

import click

from harness.cli.output import home_of, print_json, print_table


@click.group()
def metrics() -> None:
    """Offline metrics: built-in, parameterized kinds, [metrics.NAME] tables, python:.

    \b
    Example:
      harness metrics list
    """


@metrics.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List what --metric accepts: names, kinds (KIND:VALUE) and harness.toml tables.

    \b
    Example:
      harness metrics list
      harness run --data qa --model echo --metric 'cites=regex:\\[\\d+\\]' \\
          --metric length:..400 --metric python:my_metrics:has_citation
    """
    from harness.config import resolve_home
    from harness.scoring.catalog import metric_catalog

    entries = metric_catalog(resolve_home(home_of(ctx)))
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    better = {1: "higher", -1: "lower", 0: ""}
    needs = {True: "yes", False: "", None: "without VALUE"}
    print_table(
        None,
        ["--metric", "origin", "better", "needs expected", "description"],
        [
            [e.usage, e.origin, better[e.direction], needs[e.needs_expected], e.description]
            for e in entries
        ],
    )
