"""The ``harness`` command: a thin Click front over the library.

Each command group lives in its own module and is imported only when used, and those
modules import the library inside the command functions, so ``harness --help`` loads
neither pandas, DuckDB nor MLflow.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import warnings
from collections.abc import Iterator
from typing import Any

import click

from harness._version import __version__

# command name -> "module:attribute"
COMMANDS = {
    "data": "harness.cli.data:data",
    "dev": "harness.cli.dev:dev",
    "run": "harness.cli.run:run",
    "runs": "harness.cli.runs:runs",
    "cache": "harness.cli.cache:cache",
    "check": "harness.cli.compare:check",
    "compare": "harness.cli.compare:compare",
    "judges": "harness.cli.judges:judges",
    "metrics": "harness.cli.metrics:metrics",
    "report": "harness.cli.report:report",
    "sync": "harness.cli.sync:sync",
    "ui": "harness.cli.ui:ui",
}


class HarnessCommandError(click.ClickException):
    """A HarnessError shown as one line, with the error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it from the instance

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _usage_line(error: click.UsageError) -> str:
    """Click's usage error (a bad value, an unknown option, a missing argument) as harness
    says its own errors: one line, naming where the help is, instead of click's four
    (usage, "Try ... for help", a blank line, the error)."""
    if isinstance(error, click.NoSuchOption) and error.option_name == "--home":
        # harness's own option, given after a command (`harness data list --home DIR`)
        where = error.ctx.command_path if error.ctx is not None else "harness COMMAND"
        command = where.partition(" ")[2] or "COMMAND"
        return (
            "--home is harness's own option: give it before the command, "
            f"`harness --home DIR {command} ...`"
        )
    message = " ".join(line.strip() for line in error.format_message().splitlines()).strip()
    if message[:1].isupper() and message[1:2].islower():  # "Invalid value" -> "invalid value"
        message = message[0].lower() + message[1:]
    message = message.rstrip(".")
    if error.ctx is not None:
        message += f"; see `{error.ctx.command_path} --help`"
    return message


class HarnessGroup(click.Group):
    """Loads command modules lazily and turns HarnessError, and click's usage errors, into
    a one-line error."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:  # harness's own options (`harness --bogus`); a command's are parsed in invoke
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:  # bare `harness`: the help, as it was
            raise
        except click.UsageError as e:
            raise HarnessCommandError(_usage_line(e), e.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        from harness.errors import HarnessError

        terms: list[int] = []
        try:
            with _sigterm_raises(terms):
                return super().invoke(ctx)
        except HarnessError as e:
            raise HarnessCommandError(str(e), e.exit_code) from None
        except click.exceptions.NoArgsIsHelpError:  # a bare group (`harness runs`): its help
            raise
        except click.UsageError as e:
            raise HarnessCommandError(_usage_line(e), e.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C outside a run or sync, which handle their own
            raise HarnessCommandError("interrupted", 130) from None
        except RuntimeError as e:
            # A signal during a DuckDB query: DuckDB runs the handler itself, and what the
            # handler raised (KeyboardInterrupt, or Interrupted below) comes out as its own
            # RuntimeError("Query interrupted"), a traceback and exit 1 (`harness data
            # import` of a large file, Ctrl-C as its rows were inserted).
            if str(e) != _DUCKDB_INTERRUPTED:
                raise
            if terms:
                raise HarnessCommandError("terminated (SIGTERM)", 128 + terms[0]) from None
            raise HarnessCommandError("interrupted", 130) from None


# What DuckDB raises when a signal's handler raised while it ran a query.
_DUCKDB_INTERRUPTED = "Query interrupted"


@contextlib.contextmanager
def _sigterm_raises(terms: list[int]) -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (open transactions roll back), exit 143: ``harness run``
    and ``harness sync`` replace this with a graceful stop while they work. Each SIGTERM
    is noted in ``terms``, for when DuckDB replaces what the handler raised."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, _frame: Any) -> None:
        from harness.errors import Interrupted

        terms.append(signum)
        raise Interrupted("terminated (SIGTERM)", signum=signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="HARNESS_HOME",
    help="Project home: where harness.duckdb, cache/ and mlruns/ live. "
    "[env: HARNESS_HOME; default: the current directory]",
)
@click.version_option(__version__, prog_name="harness")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Evaluate LLM applications locally: cached model and judge calls, results in DuckDB
    and MLflow.

    No API key? `harness dev fake-llm --help` shows how to try it all offline;
    harness.toml settings: docs/config.md.

    \b
    Example (a first session):
      harness data import questions.csv --name qa
      harness run --data qa --model openai:/gpt-4o-mini --metric exact_match
      harness runs list
      harness ui
    """
    ctx.obj = {"home": home}


def main() -> None:
    # A run makes millions of small objects and keeps tens of thousands (rows, scores,
    # cache entries), so at the default gen-0 threshold (700) Python's cycle collector ran
    # 940 times, 7 of them over the whole heap, for 0.56 s of a 10,000-row cached rerun's
    # 9 s; at these thresholds 171 times, once whole, for 0.17-0.22 s, no higher peak RSS
    # (issue 14). Only for harness's own process: a library does not retune its host's GC.
    gc.set_threshold(10_000, 10, 10)
    # MLflow deprecates its legacy metric objects (``mlflow.metrics.toxicity() is
    # deprecated since 3.4.0``), which harness runs as they are (docs/metrics.md): said on
    # every run of a ported script, before the run's own lines (and before the one line of
    # an error), it only tells the user that MLflow has moved on. Only the CLI's process:
    # in a notebook, evaluate leaves the user's warning filters alone.
    warnings.filterwarnings("ignore", r"``mlflow\.metrics\.", FutureWarning)
    try:
        cli(prog_name="harness")
    finally:
        _ignore_late_signals()
        # The interpreter's teardown runs the cycle collector over every object left,
        # which with pandas, pyarrow and DuckDB loaded took 0.16-0.29 s of every command's
        # exit (a 1,000-row cached rerun: 1.95-2.18 s, frozen 1.71-1.79 s; issue 14).
        # Frozen, those collections skip them. Everything else still happens: threads are
        # joined, atexit handlers and finalizers run, files are flushed and closed as
        # modules are cleared. Only finalizers of objects in reference cycles may not run,
        # which Python never promises at exit; harness closes its own stores and files.
        gc.freeze()


def _ignore_late_signals() -> None:
    """Once the command is over (its stores written, its output printed), a Ctrl-C or a
    SIGTERM can only cut the interpreter's teardown short; and late in it Python has put
    back the default handlers, so such a signal killed the process (exit -2 or -15) after a
    complete run (tests/runner/test_crash_consistency.py caught one). Ignored from here,
    the process exits with the command's own code."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
