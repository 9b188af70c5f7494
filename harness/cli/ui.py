"""``harness ui``: the MLflow UI on the project's local store."""

from __future__ import annotations

import click

from harness.cli.output import home_of


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int) -> None:
    """Open the MLflow UI on this project's runs (the SQLite store under mlruns/)."""
    import os
    import shutil
    import sys

    from harness.config import resolve_home
    from harness.errors import ConfigError

    home = resolve_home(home_of(ctx))
    if not (home.mlruns_dir / "mlflow.db").exists():
        raise ConfigError(f"no MLflow store in {home.path} yet; run `harness run` first")
    mlflow = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    args = [
        mlflow,
        "ui",
        "--backend-store-uri",
        home.tracking_uri,
        "--default-artifact-root",
        str(home.artifacts_dir),
        "--host",
        host,
        "--port",
        str(port),
    ]
    click.echo(f"MLflow UI for {home.path} at http://{host}:{port} (Ctrl-C to stop)", err=True)
    os.execv(args[0], args)  # hand the terminal to MLflow: Ctrl-C and exit codes are its own
