"""The thread that imports a run's end modules while its rows run (harness.runner.preload)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.runner.preload import END_MODULES, REPORT_MODULES, SLICE_MODULES, end_modules


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


def test_nothing_is_imported_before_begin_or_the_deadline() -> None:
    code = (
        "import sys, time\n"
        "from harness.runner.preload import Preload\n"
        "held = Preload(['colorsys'], start_after_s=600)\n"
        "timed = Preload(['wave'], start_after_s=0.5)\n"
        "time.sleep(0.2)\n"
        "early = 'colorsys' in sys.modules\n"
        "held.begin()\n"
        "deadline = time.monotonic() + 20\n"
        "while not {'colorsys', 'wave'} <= sys.modules.keys() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print(early, 'colorsys' in sys.modules, 'wave' in sys.modules)"
    )
    # Held: nothing before begin; then begin starts it, and the deadline the other one.
    assert _python(code) == "False True True"


def test_waiting_starts_a_preload_that_was_never_begun() -> None:
    # A run that ends before its first row (no rows to do, a failure) still has its end's
    # modules when it waits, not after the deadline.
    code = (
        "import sys, time\n"
        "from harness.runner.preload import Preload\n"
        "preload = Preload(['colorsys'], start_after_s=600)\n"
        "started = time.monotonic()\n"
        "preload.wait()\n"
        "print('colorsys' in sys.modules, time.monotonic() - started < 60)"
    )
    assert _python(code) == "True True"


def test_a_run_imports_its_ends_modules_once_its_first_row_is_done(tmp_path: Path) -> None:
    # Until then the rows' own first imports (a cold run's HTTP client, which every row
    # waits for) have the CPU to themselves. Both rows run at once: row 2 waits for the
    # end's module, so row 1 is the first done, and it looks before it is.
    env = _home_with(tmp_path, ['{"id": "1", "input": "a"}', '{"id": "2", "input": "b"}'])
    code = (
        "import harness.runner.preload\n"
        "harness.runner.preload.START_AFTER_S = 600  # only the first row starts it\n"
        "from harness.runner.config import RunConfig\n"
        "from harness.runner.run import run_eval\n"
        "from harness.store.runs import load_outputs\n"
        "config = RunConfig(data='qa', model='python:harness_test_models:end_module_seen',"
        " metrics=['word_count'], concurrency=2, mlflow=False)\n"
        "result = run_eval(config)\n"
        "from harness.config import resolve_home\n"
        "print(list(load_outputs(resolve_home().db_path, result.run_id)['output']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "['not imported', 'imported']"


def test_what_is_preloaded_is_what_a_run_imports_only_at_its_end() -> None:
    # Each module is worth a thread only if the run's start has not imported it already.
    code = (
        "import sys, harness.runner.run, harness.runner.plan, harness.cli.run\n"
        f"print([n for n in {[*END_MODULES, *REPORT_MODULES, *SLICE_MODULES]!r} "
        "if n in sys.modules])"
    )
    assert _python(code) == "[]"


def test_pandas_and_pyarrow_are_never_preloaded() -> None:
    # Held from the first row on, they were ~80 MB of a run's peak while its rows ran
    # (issue 14); no run's end reads them now (tests/runner/test_rows_phase_imports.py).
    for report in (False, True):
        code = (
            "import sys\n"
            "from harness.runner.preload import end_modules, Preload\n"
            f"Preload(end_modules(report={report})).wait()\n"
            "print(sorted(n for n in ('pandas', 'pyarrow') if n in sys.modules))"
        )
        assert _python(code) == "[]", report


def test_a_run_preloads_only_what_its_end_will_import() -> None:
    assert end_modules(report=False) == END_MODULES
    assert end_modules(report=True) == END_MODULES + REPORT_MODULES
    assert end_modules(report=False, sliced=True) == END_MODULES + SLICE_MODULES


def test_a_sliced_runs_preload_imports_its_slice_tables_and_numpy_but_not_pandas() -> None:
    # A run's start no longer imports harness.slices' tables (numpy's, ~0.08 s of CPU): a
    # --by run without a report or MLflow imported them at its end, after its rows.
    code = (
        "import sys\n"
        "from harness.runner.preload import end_modules, Preload\n"
        "Preload(end_modules(report=False, sliced=True)).wait()\n"
        "print(sorted(n for n in ('harness.slices.table', 'numpy', 'pandas', 'pyarrow')"
        " if n in sys.modules))"
    )
    assert _python(code) == "['harness.slices.table', 'numpy']"


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


def test_a_reported_runs_end_finds_what_its_report_imports_already_preloaded(
    tmp_path: Path,
) -> None:
    # Whatever the report imports that the preload did not is imported after the last
    # call, on the path to the run's exit: numpy.ma (numpy's histogram bins import it)
    # was ~0.02 s of a 1,000-row cold run's end.
    env = _home_with(tmp_path, [f'{{"id": "{i}", "input": "q {i} words"}}' for i in range(20)])
    code = (
        "import sys\n"
        "import harness.runner.run as run\n"
        "finished = run._Run._finished\n"
        "def looked(self, *args):\n"
        "    before = set(sys.modules)\n"
        "    try:\n"
        "        return finished(self, *args)\n"
        "    finally:\n"
        "        late = set(sys.modules) - before\n"
        "        late = sorted(n for n in late if n.startswith(('numpy', 'jinja2', 'harness.')))\n"
        "        print('imported at the end:', late)\n"
        "run._Run._finished = looked\n"
        "from harness.runner.config import RunConfig\n"
        "config = RunConfig(data='qa', model='echo', metrics=['word_count'], mlflow=False)\n"
        f"run.run_eval(config, report={str(tmp_path / 'report.html')!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "imported at the end: []" in done.stdout, done.stdout
    assert "harness-runs" in (tmp_path / "report.html").read_text(encoding="utf-8")[:4096]


def _home_with(tmp_path: Path, rows: list[str]) -> dict[str, str]:
    """The environment of a project home under ``tmp_path`` holding ``rows`` (JSON lines)
    as the dataset ``qa``."""
    from processes import harness_env

    env = harness_env(tmp_path / "home")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(row + "\n" for row in rows))
    subprocess.run(
        [sys.executable, "-m", "harness", "data", "import", str(data), "--name", "qa"],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    return env
