"""Options several commands share, declared once so their names and help agree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from harness.config import DEFAULT_CONCURRENCY

CACHE_HELP = (
    "use: read and write; replay: cache only, no network, a miss fails; "
    "refresh: call again and overwrite; off: no cache."
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Seconds(click.FloatRange):
    """A number of seconds >= 0: FloatRange(min=0) took nan and inf (neither is below 0)."""

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{seconds} is not a number of seconds", param, ctx)
        return seconds


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


class FileName(click.Path):
    """A file a command reads or writes (a judges file, a report, JUnit XML). An empty
    name, `--junit "$FILE"` with the variable unset, is refused when the options are
    read: read as no name it would write somewhere else, fail as the folder "." after the
    work is done, or run with no judges file at all."""

    def __init__(self, allow_dash: bool = False) -> None:
        super().__init__(dir_okay=False, allow_dash=allow_dash)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            self.fail(f"needs a file name, got {value!r}", param, ctx)
        return super().convert(value, param, ctx)


judges_file_option: Decorator = click.option(
    "--judges",
    "judges_file",
    metavar="FILE",
    type=FileName(),
    help="TOML file with custom [judges.NAME] tables.",
)

guideline_option: Decorator = click.option(
    "--guideline",
    "guidelines",
    multiple=True,
    metavar="TEXT",
    help="A guideline for the `guidelines` judge (--judge guidelines), repeatable.",
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

by_option: Decorator = click.option(
    "--by",
    "by",
    multiple=True,
    metavar="COLUMN",
    help="Also report every metric per value of this dataset column (count, mean, 95% CI), "
    "with the overall line. Repeatable.",
)

max_slices_option: Decorator = click.option(
    "--max-slices",
    type=click.IntRange(min=1),
    metavar="N",
    help="Refuse a --by column with more than N values. [default: [slices] max_values in "
    "harness.toml, else 50]",
)


def sample_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--sample, --seed and --stratify: a reproducible random subset of the rows."""
    options: list[Decorator] = [
        click.option(
            "--sample", metavar="N|FRACTION",
            help="A random subset: N rows, or a fraction of them such as 0.1. The same seed "
            "picks the same rows on any machine (and a larger N keeps the smaller's rows).",
        ),
        click.option(
            "--seed", "sample_seed", type=int, metavar="S",
            help="Which random subset --sample takes. [default: 0]",
        ),
        click.option(
            "--stratify", metavar="COLUMN",
            help="Keep each value's share of this column in the --sample (each within one row).",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn
