"""The thread that imports a run's end modules while its rows run (harness.runner.preload)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.runner.preload import END_MODULES, REPORT_MODULES, end_modules


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_modules_are_imported_once_waited_for_and_a_missing_one_is_left_to_the_run() -> None:
    code = (
        "import sys\n"
        "from harness.runner.preload import end_modules, Preload\n"
        "names = list(end_modules(report=True))\n"
        "before = [n for n in names if n in sys.modules]\n"
        "preload = Preload(['harness_no_such_module', *names])\n"
        "preload.wait()\n"
        "print(before, all(n in sys.modules for n in names))"
    )
    # The missing module comes first: the ones after it are imported all the same.
    assert _python(code) == "[] True"


def test_what_is_preloaded_is_what_a_run_imports_only_at_its_end() -> None:
    # Each module is worth a thread only if the run's start has not imported it already.
    code = (
        "import sys, harness.runner.run, harness.runner.plan, harness.cli.run\n"
        f"print([n for n in {[*END_MODULES, *REPORT_MODULES]!r} "
        "if n in sys.modules])"
    )
    assert _python(code) == "[]"


def test_a_run_preloads_only_what_its_end_will_import() -> None:
    assert end_modules(report=False) == END_MODULES
    assert end_modules(report=True) == END_MODULES + REPORT_MODULES


def test_a_run_and_its_report_never_import_scipy(tmp_path: Path) -> None:
    # scipy.special took 0.14-0.17 s to import; the report's intervals need none of it
    # (harness.stats.quantiles), and it is no longer preloaded.
    code = (
        "import sys, harness\n"
        "rows = [{'id': str(i), 'input': f'q {i}', 'context': f'c {i}.', 'expected': 'a'}\n"
        "        for i in range(5)]\n"
        f"result = harness.evaluate(model='python:harness.baselines:top_sentence', data=rows, "
        f"metrics=['exact_match', 'token_f1'], home={str(tmp_path)!r})\n"
        "print(result.result.rows_done, bool(result.result.mlflow_run_id), 'scipy' in sys.modules)"
    )
    assert _python(code) == "5 True False"
