"""A SIGINT or SIGTERM that comes just before or just after a run's work, in `harness run`.

Each test runs `harness.cli.main` in a process of its own, with one function wrapped so
that the process sends itself a real signal at that moment (the moments are a few
microseconds wide: tests/runner/test_crash_consistency.py found the one after a run's end
by chance, in a fresh-clone CI), and reads what the command printed and stored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import query

RUN = ["run", "--data", "qa", "--model", "echo", "--metric", "exact_match", "--no-mlflow"]


def _command(
    args: list[str], target: str, attr: str, sig: int, then: str = ""
) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` with ``target.attr`` (a module, or ``module:Class``) wrapped to send
    this process ``sig`` first (and print ``then`` on stderr if that did not stop it)."""
    module, _, owner = target.partition(":")
    code = (
        "import importlib, os, sys\n"
        f"holder = importlib.import_module({module!r})\n"
        + (f"holder = getattr(holder, {owner!r})\n" if owner else "")
        + f"original = getattr(holder, {attr!r})\n"
        "def signalled(*args, **kwargs):\n"
        f"    os.kill(os.getpid(), {int(sig)})\n"
        f"    print({then!r}, file=sys.stderr, end='')\n"
        "    return original(*args, **kwargs)\n"
        f"setattr(holder, {attr!r}, signalled)\n"
        f"sys.argv = ['harness', *{args!r}]\n"
        "from harness.cli import main\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )


def _imported(qa_file: Path) -> None:
    from harness.data import import_file

    import_file(qa_file, name="qa")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_run_ended_lets_the_command_show_it_and_exit_as_it_would(
    home: Path, qa_file: Path, sig: signal.Signals
) -> None:
    # After run_eval returned, before its result is shown: the default handler raised
    # KeyboardInterrupt there (SIGTERM: harness's own Interrupted), and the command exited
    # 130 (143) with `error: interrupted` and no --json document, its run finished.
    _imported(qa_file)
    done = _command([*RUN, "--json"], "harness.runner.run_command:PreparedRun", "complete", sig)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["status"], shown["rows_done"]) == ("finished", 20)
    assert done.stderr == (
        f"note: {sig.name} came as the run ended: it finished all the same, nothing was stopped\n"
    )
    assert query(home, "SELECT status, rows_total FROM runs") == [("finished", 20)]


def test_a_signal_after_a_sweep_ended_lets_the_command_show_it(home: Path, qa_file: Path) -> None:
    _imported(qa_file)
    done = _command(
        [*RUN, "--param", "seed=1", "--param", "seed=2"],
        "harness.cli.run",
        "_show_sweep",
        signal.SIGINT,
    )
    assert done.returncode == 0, done.stderr
    assert "sweep " in done.stdout and "runs show" in done.stdout
    assert done.stderr.endswith(
        "note: SIGINT came as the sweep ended: it finished all the same, nothing was stopped\n"
    )
    assert query(home, "SELECT status FROM runs") == [("finished",), ("finished",)]


def test_a_signal_after_a_sync_ended_lets_the_command_show_it(
    home: Path, qa_file: Path, tmp_path: Path
) -> None:
    from processes import harness

    _imported(qa_file)
    code, _, err = harness(dict(os.environ), *RUN[:-1])  # logged to the local MLflow store
    assert code == 0, err
    target = f"sqlite:///{tmp_path / 'target.db'}"
    done = _command(
        ["sync", "--tracking-uri", target, "--json"],
        "harness.cli.sync",
        "print_json",
        signal.SIGTERM,
    )
    assert done.returncode == 0, done.stderr
    assert [r["action"] for r in json.loads(done.stdout)["runs"]] == ["create"]
    assert done.stderr.endswith(
        "note: SIGTERM came as the sync ended: it finished all the same, nothing was stopped\n"
    )


def test_a_signal_as_the_run_is_planned_stops_the_command_at_once(
    home: Path, qa_file: Path
) -> None:
    # The command holds the signals from before run_eval plans the run, but until the run
    # begins a Ctrl-C raises at once, as it always did: nothing exists yet to stop
    # gracefully, and planning (a Spark cluster's check) may take long.
    _imported(qa_file)
    done = _command(RUN, "harness.runner.run", "plan_run", signal.SIGINT, then="planned on")
    assert (done.returncode, done.stderr, done.stdout) == (130, "error: interrupted\n", "")
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_run_given_a_stop_already_asked_for_is_not_created(home: Path, qa_file: Path) -> None:
    # A sweep's stop request, asked between its check and its next run's start: the run
    # stops before it exists rather than starting and stopping at once.
    from harness.errors import Interrupted
    from harness.interrupt import StopRequest
    from harness.runner.config import RunConfig
    from harness.runner.run import run_eval

    _imported(qa_file)
    stop = StopRequest()
    stop.request(signal.SIGTERM)
    with pytest.raises(Interrupted) as raised:
        run_eval(RunConfig(data="qa", model="echo", mlflow=False), home=home, stop=stop)
    assert (raised.value.message, raised.value.exit_code) == (
        "interrupted by SIGTERM before the run started",
        143,
    )
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]
