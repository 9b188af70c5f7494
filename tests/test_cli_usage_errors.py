"""Click's usage errors (a bad value, an unknown option or command, a missing argument) are
one line, `error: ...`, exit 2, as harness's own errors are: click printed four (the usage,
"Try ... for help", a blank line, "Error: ..."). Help is printed as click prints it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="harness")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["cache", "prune", "--older-than", "banana"],
            "invalid value for '--older-than': 'banana' is not a valid float range; "
            "see `harness cache prune --help`",
        ),
        (
            ["runs", "export", "r1", "{dir}"],
            "invalid value for '[FILE]': File '{dir}' is a directory; "
            "see `harness runs export --help`",
        ),
        (
            ["report", "r1", "-o", "{dir}"],
            "invalid value for '-o' / '--output': File '{dir}' is a directory; "
            "see `harness report --help`",
        ),
        (  # `--judges "$JUDGES"`, unset: the run went on with no judges file at all
            ["run", "--data", "qa", "--model", "echo", "--judges", ""],
            "invalid value for '--judges': needs a file name, got ''; see `harness run --help`",
        ),
        (
            ["judges", "list", "--judges", ""],
            "invalid value for '--judges': needs a file name, got ''; "
            "see `harness judges list --help`",
        ),
        (
            ["runs", "show", "--bogus"],
            "no such option '--bogus'. (Did you mean one of: '--columns', '--rows'?); "
            "see `harness runs show --help`",
        ),
        # nan and inf were taken (neither is below 0): no request was ever answered
        (
            ["dev", "fake-llm", "--latency", "nan", "--", "true"],
            "invalid value for '--latency': nan is not a number of seconds; "
            "see `harness dev fake-llm --help`",
        ),
        (
            ["dev", "fake-llm", "--latency", "inf", "--", "true"],
            "invalid value for '--latency': inf is not a number of seconds; "
            "see `harness dev fake-llm --help`",
        ),
        (
            ["dev", "fake-llm", "--latency", "-1"],
            "invalid value for '--latency': -1.0 is not in the range x>=0; "
            "see `harness dev fake-llm --help`",
        ),
        (["--bogus"], "no such option '--bogus'; see `harness --help`"),
        (["bogus"], "no such command 'bogus'; see `harness --help`"),
        (["runs", "tag", "r1"], "missing argument 'NAME'; see `harness runs tag --help`"),
        (["run", "--param"], "option '--param' requires an argument"),  # click gives no command
        (
            ["data", "list", "--home", "{dir}"],
            "--home is harness's own option: give it before the command, "
            "`harness --home DIR data list ...`",
        ),
        (
            ["runs", "show", "r1", "--home={dir}"],
            "--home is harness's own option: give it before the command, "
            "`harness --home DIR runs show ...`",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], line: str, tmp_path: Path) -> None:
    args = [a.format(dir=tmp_path) for a in args]
    code, out, err = invoke(*args)
    assert (code, out, err) == (2, "", f"error: {line.format(dir=tmp_path)}\n")


def test_help_is_unchanged_also_for_a_bare_group() -> None:
    code, out, err = invoke("runs", "show", "--help")
    assert (code, err) == (0, "") and out.startswith("Usage: harness runs show [OPTIONS] RUN\n")
    assert "Options:" in out
    # A group without its command prints its help (click's exit 2), not a one-line error.
    code, out, err = invoke("runs")
    assert code == 2 and "Usage: harness runs [OPTIONS] COMMAND [ARGS]..." in out + err
    assert "Commands:" in out + err and "error:" not in out + err
    code, out, err = invoke()
    assert code == 2 and "Usage: harness [OPTIONS] COMMAND [ARGS]..." in out + err
