"""What the `harness` command sets up in its own process, and what importing harness does not."""

from __future__ import annotations

import subprocess
import sys

SHOW = "import gc; print(tuple(gc.get_threshold()))"


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


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


def test_a_run_starts_without_scipy_and_imports_it_for_an_interval() -> None:
    # scipy.special costs ~0.1 s to import; a run needs it only for its intervals, at its end.
    code = (
        "import sys, harness.runner.run, harness.runner.plan, harness.slices, harness.stats\n"
        "before = 'scipy' in sys.modules\n"
        "from harness.stats import estimate_mean\n"
        "estimate = estimate_mean([0.2, 0.5, 0.9])\n"
        "print(before, 'scipy' in sys.modules, estimate.low < 0.5333 < estimate.high)"
    )
    assert _python(code) == "False True True"


def test_a_signal_during_the_interpreters_teardown_leaves_the_commands_exit_code() -> None:
    # The command is over when these arrive: they must neither kill the process nor print a
    # traceback (a SIGTERM there used to end it with -15, a SIGINT with KeyboardInterrupt).
    code = (
        "import atexit, os, signal, sys, time\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "atexit.register(late)\n"
        "sys.argv = ['harness', '--version']\n"
        "from harness.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("harness, version")
