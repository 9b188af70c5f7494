"""The thread that imports a run's end modules while its rows run (harness.runner.preload)."""

from __future__ import annotations

import subprocess
import sys

from harness.runner.preload import END_MODULES, REPORT_MODULES


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_modules_are_imported_once_waited_for_and_a_missing_one_is_left_to_the_run() -> None:
    code = (
        "import sys\n"
        "from harness.runner.preload import END_MODULES, REPORT_MODULES, Preload\n"
        "names = [*END_MODULES, *REPORT_MODULES]\n"
        "before = [n for n in names if n in sys.modules]\n"
        "preload = Preload([*names, 'harness_no_such_module'])\n"
        "preload.wait()\n"
        "print(before, all(n in sys.modules for n in names), preload.failed)"
    )
    assert _python(code) == "[] True ['harness_no_such_module']"


def test_what_is_preloaded_is_what_a_run_imports_only_at_its_end() -> None:
    # Each module is worth a thread only if the run's start has not imported it already.
    code = (
        "import sys, harness.runner.run, harness.runner.plan, harness.cli.run\n"
        f"print([n for n in {[*END_MODULES, *REPORT_MODULES]!r} if n in sys.modules])"
    )
    assert _python(code) == "[]"
