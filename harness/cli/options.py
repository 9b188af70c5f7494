"""Options several commands share, declared once so their names and help agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from harness.config import DEFAULT_CONCURRENCY

CACHE_HELP = (
    "use: read and write; replay: cache only, no network, a miss fails; "
    "refresh: call again and overwrite; off: no cache."
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def cache_option(help: str = CACHE_HELP) -> Decorator:
    return click.option(
        "--cache",
        "cache_mode",
        type=click.Choice(["use", "replay", "refresh", "off"]),
        default="use",
        show_default=True,
        help=help,
    )


def concurrency_option(help: str) -> Decorator:
    return click.option(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        type=click.IntRange(min=1),
        help=help,
    )


judges_file_option: Decorator = click.option(
    "--judges",
    "judges_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="TOML file with custom [judges.NAME] tables.",
)

guideline_option: Decorator = click.option(
    "--guideline",
    "guidelines",
    multiple=True,
    metavar="TEXT",
    help="A guideline for the `guidelines` judge, repeatable.",
)


verbose_option: Decorator = click.option(
    "--verbose",
    is_flag=True,
    help="Show Spark's and pyspark's own log lines (off the terminal by default).",
)

spark_remote_option: Decorator = click.option(
    "--spark-remote",
    metavar="sc://HOST:PORT",
    help="A Spark Connect server to use, or `databricks` for Databricks Connect. "
    "[default: SPARK_REMOTE, else [spark] remote in harness.toml, else a local session]",
)

profile_option: Decorator = click.option(
    "--profile",
    metavar="NAME",
    help="The ~/.databrickscfg profile for Databricks Connect (as in `harness sync`). "
    "[default: DATABRICKS_CONFIG_PROFILE, else DEFAULT]",
)
