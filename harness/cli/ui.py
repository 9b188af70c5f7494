"""``harness ui``: the MLflow UI on the project's local store."""

from __future__ import annotations

import click

from harness.cli.output import home_of

DEFAULT_UI_PORT = 5050  # not MLflow's 5000: macOS's AirPlay receiver listens there


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=DEFAULT_UI_PORT,
    show_default=True,
    type=click.IntRange(min=0, max=65535),
    help="0: a free port (the ready line says which).",
)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int) -> None:
    """Open the MLflow UI on this project's runs (the SQLite store under mlruns/).

    Checks the port first (a taken one is an error, exit 2), starts MLflow with one
    worker and no job runner, prints a line when the UI answers, and runs until Ctrl-C.
    MLflow's own log goes to mlruns/ui.log.

    \b
    Example:
      harness ui --port 0
    """
    from harness.config import resolve_home
    from harness.tracking.ui import serve_ui

    ctx.exit(serve_ui(resolve_home(home_of(ctx)), host=host, port=port, say=click.echo))
