"""What the `harness` command sets up in its own process, and what importing harness does not."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import query

SHOW = "import gc; print(tuple(gc.get_threshold()))"


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def _version_command(before: str, call: str = "main()\n") -> subprocess.CompletedProcess[str]:
    """`harness --version` through ``harness.cli.main`` in a process of its own, after
    ``before`` (Python lines) has run."""
    code = before + "sys.argv = ['harness', '--version']\nfrom harness.cli import main\n" + call
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_command_collects_cycles_less_often_and_a_library_user_keeps_their_own() -> None:
    default = _python(SHOW)
    as_a_library = _python(f"import harness, harness.runner.run, harness.cli; {SHOW}")
    assert as_a_library == default
    as_the_command = _python(
        "import sys; sys.argv = ['harness', '--version']\n"
        "from harness.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n" + SHOW
    )
    assert as_the_command == "(10000, 10, 10)" != default


def test_an_interval_needs_no_scipy() -> None:
    # scipy.special costs 0.14-0.17 s to import; a run's intervals use harness.stats.quantiles.
    code = (
        "import sys, harness.runner.run, harness.runner.plan, harness.slices, harness.stats\n"
        "from harness.stats import estimate_mean, wilson_interval\n"
        "estimate = estimate_mean([0.2, 0.5, 0.9])\n"
        "low, high = wilson_interval(3, 10)\n"
        "print('scipy' in sys.modules, estimate.low < 0.5333 < estimate.high, low < 0.3 < high)"
    )
    assert _python(code) == "False True True"


def test_a_signal_during_the_interpreters_teardown_leaves_the_commands_exit_code() -> None:
    # The command is over when these arrive: they must neither kill the process nor print a
    # traceback (a SIGTERM there used to end it with -15, a SIGINT with KeyboardInterrupt).
    done = _version_command(
        "import atexit, os, signal, sys, time\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "atexit.register(late)\n"
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("harness, version")


def test_the_commands_teardown_skips_the_cycle_collector_and_nothing_else(tmp_path: Path) -> None:
    # The objects left at exit are frozen (their collection took 0.2 s of every exit), and
    # the rest of the teardown happens as ever: atexit handlers and finalizers run, and a
    # file left open is flushed and closed.
    left_open = tmp_path / "left-open.txt"
    done = _version_command(
        "import atexit, gc, sys, weakref\n"
        "class Held: pass\n"
        "held = Held()\n"
        "weakref.finalize(held, print, 'finalizer ran')\n"
        "atexit.register(print, 'atexit ran')\n"
        f"out = open({str(left_open)!r}, 'w')\n"
        "out.write('buffered, never flushed by hand')\n",
        call="try:\n    main()\n"
        "except SystemExit:\n    print('frozen', gc.get_freeze_count() > 0)\n    raise\n",
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("harness, version")
    assert lines[1:] == ["frozen True", "atexit ran", "finalizer ran"]
    assert left_open.read_text() == "buffered, never flushed by hand"


def test_the_command_says_one_line_for_a_refused_legacy_mlflow_metric(
    home: Path, qa_file: Path
) -> None:
    """A ported script's legacy MLflow metric printed MLflow's FutureWarning ('``mlflow.
    metrics.toxicity`` is deprecated since 3.4.0 ...') before harness's one line; in a
    notebook (evaluate) the user's warning filters decide, as ever."""
    import os

    harness = [sys.executable, "-m", "harness"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    subprocess.run([*harness, "data", "import", str(qa_file), "--name", "qa"], env=env, check=True)
    done = subprocess.run(
        [*harness, "run", "--data", "qa", "--model", "echo", "--no-mlflow",
         "--metric", "python:harness_test_metrics:toxic"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: python metric 'harness_test_metrics:toxic'")
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [
        (signal.SIGINT, 130, "error: interrupted\n"),
        (signal.SIGTERM, 143, "error: terminated (SIGTERM)\n"),
    ],
)
def test_a_signal_during_a_duckdb_query_exits_as_interrupted_and_stores_nothing(
    home: Path, qa_file: Path, sig: signal.Signals, code: int, line: str
) -> None:
    """`harness data import` of a large file, Ctrl-C (or SIGTERM) as DuckDB inserted its
    rows: DuckDB runs the signal's handler in its query and raises RuntimeError("Query
    interrupted") instead of what the handler raised; the command printed that traceback
    and exited 1. Here the insert is a query that does not end, signalled once the main
    thread is in it (one DuckDB thread: with more, a signal may wait for the query's end)."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import os, sys, threading, time\n"
         "import harness.store.datasets as datasets\n"
         "original = datasets._save_version\n"
         "def endless_insert(con, version):\n"
         "    con.execute('SET threads = 1')  # DuckDB checks for signals between its tasks\n"
         "    con.execute('SELECT sum(hash(i)) FROM range(1000000000000) r(i)')\n"
         "def signal_in_query():\n"
         "    main = threading.main_thread().ident\n"
         "    while sys._current_frames()[main].f_code.co_name != 'endless_insert':\n"
         "        time.sleep(0.01)\n"
         "    time.sleep(0.2)  # into DuckDB's own execution\n"
         f"    os.kill(os.getpid(), {int(sig)})\n"
         "def saving(*args, **kwargs):\n"
         "    threading.Thread(target=signal_in_query, daemon=True).start()\n"
         "    return original(*args[:-1], endless_insert, **kwargs)\n"
         "datasets._save_version = saving\n"
         f"sys.argv = ['harness', 'data', 'import', {str(qa_file)!r}, '--name', 'qa']\n"
         "from harness.cli import main\n"
         "main()\n"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (code, line)
    assert query(home, "SELECT count(*) FROM datasets") == [(0,)]
    assert query(home, "SELECT count(*) FROM examples") == [(0,)]
