"""A plain run's rows (everything before its end: the engine, scoring, cache lookups, batch
writes) import neither pyarrow nor pandas: ~80 MB of a cached rerun's peak of memory
while its rows ran (issue 14, goal 4). Nor does a run logged to MLflow and reported, end
included, or the MLflow worker's modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from processes import harness_env

from harness.testing import FakeLLMServer

# Runs `harness run ...` as the CLI does, and prints what its rows imported when its end
# begins (harness.runner.run._Run._finished).
_RUN = """
import sys
import harness.runner.run as run
finished = run._Run._finished
def looked(self, *args, **kwargs):
    print("rows imported:", sorted(n for n in ("pandas", "pyarrow") if n in sys.modules))
    return finished(self, *args, **kwargs)
run._Run._finished = looked
from harness.cli import main
sys.argv = ["harness", "run", *sys.argv[1:]]
main()
"""


# A run of 10 rows of the imported data: a model, a judge and a metric.
_ARGS = [
    "--data", "qa", "--model", "openai:/gpt-test", "--judge-model", "openai:/judge",
    "--judge", "correctness", "--metric", "token_f1", "--sample", "10",
]  # fmt: skip


def _home_with(qa_file: Path, home: Path, server: FakeLLMServer) -> dict[str, str]:
    """The environment of a project home at ``home`` holding ``qa_file`` as ``qa``."""
    env = harness_env(home, server)
    subprocess.run(
        [sys.executable, "-m", "harness", "data", "import", str(qa_file), "--name", "qa"],
        env=env, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return env


def _probed(script: str, env: dict[str, str], cwd: Path, *options: str) -> str:
    """What ``script`` (one of the probes here, running `harness run OPTIONS`) printed; the
    run must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", script, *options],
        env=env, capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_runs_rows_import_neither_pyarrow_nor_pandas(tmp_path: Path, qa_file: Path) -> None:
    with FakeLLMServer() as server:
        env = _home_with(qa_file, tmp_path / "home", server)
        for paid in ("first run, paid", "cached rerun"):
            printed = _probed(_RUN, env, tmp_path, *_ARGS, "--no-mlflow")
            assert "rows imported: []" in printed, (paid, printed)


# The same run logged to MLflow and reported: prints what the whole run imported, at exit.
_WHOLE_RUN = """
import atexit, sys
atexit.register(lambda: print(
    "run imported:", sorted(n for n in ("pandas", "pyarrow") if n in sys.modules)))
from harness.cli import main
sys.argv = ["harness", "run", *sys.argv[1:]]
main()
"""


def test_a_run_logged_to_mlflow_and_reported_imports_neither_pyarrow_nor_pandas(
    tmp_path: Path, qa_file: Path
) -> None:
    # Its end (the MLflow run's per-row table, written with SQL, and its HTML report) reads
    # the store a chunk at a time in plain Python: with pandas and pyarrow imported for it,
    # a 10,000-row cached rerun's process peaked ~80 MB higher (issue 14, goal 4).
    with FakeLLMServer() as server:
        env = _home_with(qa_file, tmp_path / "home", server)
        report = tmp_path / "report.html"
        printed = _probed(_WHOLE_RUN, env, tmp_path, *_ARGS, "--report", str(report))
        assert "run imported: []" in printed, printed
        assert "harness-runs" in report.read_text(encoding="utf-8")[:4096]


# Prints what a run had imported when its engine starts its rows (before the first call).
_START = """
import sys
import harness.runner.engine as engine
run = engine.Engine.run
async def looked(self, *args, **kwargs):
    print("start imported:", sorted(n for n in ("numpy", "pandas", "pyarrow") if n in sys.modules))
    return await run(self, *args, **kwargs)
engine.Engine.run = looked
from harness.cli import main
sys.argv = ["harness", "run", *sys.argv[1:]]
main()
"""


def test_a_runs_start_imports_no_numpy_before_its_first_call(tmp_path: Path, qa_file: Path) -> None:
    # harness.slices imported its tables (numpy, with harness.stats) for the start's check
    # of --by and --stratify columns: ~0.07 s before the first call (issue 14). Now the
    # run's end imports them, or the preload thread while the rows wait on the model.
    with FakeLLMServer() as server:
        env = _home_with(qa_file, tmp_path / "home", server)
        report = tmp_path / "report.html"
        by = ("--by", "final_decision", "--report", str(report))
        printed = _probed(_START, env, tmp_path, *_ARGS, *by)
        assert "start imported: []" in printed, printed
        assert "final_decision" in printed  # its slices table, numpy's, at its end


def test_the_mlflow_workers_modules_import_neither_numpy_nor_duckdb() -> None:
    # The worker (harness.runner.mlflow_worker) imports these to write a run's traces and
    # its end with SQL; numpy and DuckDB, which the run's own process needs, added ~26 MB
    # to the worker's peak (34 -> 60 MB at 10,000 rows).
    code = (
        "import sys\n"
        "import harness.runner.mlflow_worker, harness.runner.mlflow_records\n"
        "import harness.tracking.sql_run, harness.tracking.sql_artifacts\n"
        "import harness.tracking.traces_sql, harness.tracking.mlflow_resume\n"
        "print(sorted(n for n in ('numpy', 'duckdb', 'pandas', 'pyarrow') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
