"""The per-row table read from the store without pandas (``harness.runner.table_rows``)
is written byte for byte as main wrote its DataFrame (``main_table``), with the same
dataset entity, for stored runs of every kind, and so is ``summary.results_table``'s
DataFrame, now made from the same rows; the run's MLflow table step does not import pandas
or pyarrow."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from main_table import main_results_table
from stored_tables import LABELLED, make_run

from harness.cli import cli
from harness.runner import table_rows
from harness.runner.summary import results_table
from harness.runner.table_rows import open_table
from harness.store.run_reads import load_table_rows
from harness.store.runs import get_run
from harness.store.scores import labelled_judges
from harness.testing import FakeLLMServer
from harness.tracking import RunRecord
from harness.tracking.sql_artifacts import RenderedRows, dataset_entity, render_rows

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _record(rows: object = None) -> RunRecord:
    now = time.time()
    return RunRecord(
        run_id="r", run_name=None, experiment="e", params={}, metrics={}, dataset_name="qa",
        dataset_version="v1", dataset_digest="d" * 64, dataset_rows=4, prompt_template="{input}",
        config={}, started_at=now - 5, finished_at=now, rows=rows,  # type: ignore[arg-type]
    )  # fmt: skip


def _both(db_path: Path, run_id: str, labelled: list[str]) -> tuple[RenderedRows, RenderedRows]:
    """What main rendered (its DataFrame, ``main_results_table``; its dataset as the MLflow
    worker wrote it, inferred by MLflow where main left it to MLflow) and what the plain rows
    render; ``results_table``'s DataFrame, made from the plain rows, renders as main's."""
    outputs, scores = load_table_rows(db_path, run_id)
    main_frame = main_results_table(outputs, scores, labelled)
    frame = results_table(outputs, scores, labelled)
    pd.testing.assert_frame_equal(frame, main_frame)  # the same types, the same values
    assert frame.attrs == main_frame.attrs
    main = render_rows(_record(main_frame))
    written = dataset_entity(_record(main_frame), infer=True)
    assert main.dataset in (None, written)
    with open_table(db_path, run_id, labelled) as table:
        return dataclasses.replace(main, dataset=written), render_rows(_record(), table=table)


def _same(pandas: RenderedRows, plain: RenderedRows) -> None:
    assert plain.table_json is not None and pandas.table_json is not None
    if plain.table_json != pandas.table_json:  # the first column that differs, readably
        ours, theirs = json.loads(plain.table_json), json.loads(pandas.table_json)
        assert ours["columns"] == theirs["columns"]
        rows = zip(plain.table_json.split("],["), pandas.table_json.split("],["), strict=False)
        for mine, main in rows:
            assert mine == main
    assert plain.table_json == pandas.table_json
    assert plain.dataset is None or plain.dataset == pandas.dataset  # None: MLflow infers it


@pytest.mark.parametrize("seed", range(8))
def test_the_plain_table_is_pandas_json_of_the_results_table(
    home: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judges asked once to three times (std, agreement, self_disagreement), a labelled
    judge, rationales of judges and of a metric, errors, NaN and missing values, data
    columns of every kind (ints with a missing value become floats: ``12.0``; one named
    like the table's own column), unicode, ``/`` and control characters; chunks of 7 rows
    for some, so rows and their scores cross chunk boundaries."""
    if seed % 2:
        monkeypatch.setattr(table_rows, "_CHUNK_ROWS", 7)
    db_path = home / "harness.duckdb"
    run_id = make_run(db_path, seed, rows=40, samples=1 + seed % 3)
    pandas, plain = _both(db_path, run_id, LABELLED)
    _same(pandas, plain)
    columns = json.loads(plain.table_json or "")["columns"]
    assert "x_int" in columns and "tone/label" in columns and columns.count("output") == 1
    assert ("judge_a/std" in columns) == (seed % 3 > 0)
    assert plain.dataset is not None  # text, some of it missing: written without MLflow


def test_a_run_without_rows_or_scores(home: Path) -> None:
    db_path = home / "harness.duckdb"
    pandas, plain = _both(db_path, make_run(db_path, 99, rows=0), [])
    _same(pandas, plain)
    assert json.loads(plain.table_json or "")["data"] == []
    assert plain.dataset is None  # no rows: MLflow infers the schema, as before
    assert pandas.dataset is not None  # inferred


def _write_data(path: Path) -> None:
    rows = [
        {"id": str(i), "input": f"Q{i} é/😀", "expected": [f"a{i}", "b/c"] if i % 3 else "x",
         "context": None if i % 4 == 0 else f"ctx\t{i}", "output": "theirs",
         "n": i if i % 5 else None,
         "f": i / 7, "flag": bool(i % 2), "meta": {"k": [i, None]} if i % 2 else None,
         "note": "\x01\u2028</x>"}
        for i in range(1, 14)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_runs_made_through_the_cli_render_as_main_rendered_them(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs made as a user makes them: judges on the fake LLM server asked three times, a
    labelled judge (rude/neutral/warm), metrics, a failing row's model error."""
    data = tmp_path / "rows.jsonl"
    _write_data(data)
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "rows"]).exit_code == 0
    runs = []
    with FakeLLMServer(vary_with_temperature=True) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        ran = runner.invoke(cli, [
            "run", "--data", "rows", "--model", "python:harness_test_models:answer_some",
            "--metric", "exact_match", "--metric", "token_f1", "--judge", "correctness",
            "--judge", "faithfulness", "--judge-model", "openai:/judge", "--judge-samples", "3",
            "--no-mlflow", "--json",
        ])  # fmt: skip
        assert ran.exit_code in (0, 1), ran.output
        runs.append(json.loads(ran.stdout)["run_id"])
    (home / "harness.toml").write_text(
        'judge_model = "python:harness_test_models:judge_tone"\n[judges.tone]\n'
        'prompt = "Judge the tone: {output}"\noutput = ["rude", "neutral", "warm"]\n',
        encoding="utf-8",
    )
    ran = runner.invoke(cli, ["run", "--data", "rows", "--model", "echo", "--prompt", "{input}",
                              "--judge", "tone", "--judge-samples", "2", "--metric", "word_count",
                              "--no-mlflow", "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    runs.append(json.loads(ran.stdout)["run_id"])
    db_path = home / "harness.duckdb"
    for run_id in runs:
        info = get_run(db_path, run_id)
        assert info is not None
        labelled = labelled_judges(info.config)
        pandas, plain = _both(db_path, run_id, labelled)
        _same(pandas, plain)
        assert plain.dataset is not None
    assert labelled == ["tone"]
    assert "tone/label" in json.loads(plain.table_json or "")["columns"]


_PREPARE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from stored_tables import LABELLED, make_run
from harness.config import Home
from harness.runner.config import RunResult
from harness.runner.mlflow_run import prepare_mlflow_end
from harness.runner.mlflow_worker import MlflowWorker
from harness.tracking import RunRecord

home = Home(Path(sys.argv[1]))
run_id = make_run(home.db_path, 3, rows=30, samples=2)
now = time.time()
head = RunRecord(
    run_id=run_id, run_name=None, experiment="e", params={}, metrics={}, dataset_name="d3",
    dataset_version="v1", dataset_digest="0" * 64, dataset_rows=30, prompt_template="{input}",
    config={}, started_at=now - 5, finished_at=now, rows=None, labelled=LABELLED,
)
result = RunResult(run_id, None, None, "d3@v1", "m", "finished", 30, 30, 0, {}, {}, [], 1.0)
worker = MlflowWorker(home.tracking_uri)
try:
    record = prepare_mlflow_end(home, head, result, worker)
    loaded = sorted(m for m in ("pandas", "pyarrow") if m in sys.modules)
finally:
    worker.close()
print(json.dumps({"loaded": loaded, "rows": record.rows is None}))
"""


def test_the_mlflow_table_step_imports_neither_pandas_nor_pyarrow(home: Path) -> None:
    """``prepare_mlflow_end`` (the per-row table and dataset, for a store written with SQL)
    reads the rows in plain Python: pandas and pyarrow (~80 MB to import) stay out of the
    run's process. On main it read the rows as DataFrames."""
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(home), str(HERE)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"loaded": [], "rows": True}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_dataset_is_written_as_mlflow_infers_it_without_the_frames(
    home: Path, seed: int
) -> None:
    """Some rows without context or expected answers: their text columns are text with
    missing values, which MLflow's inference (of main's DataFrame, pandas holding NaN there)
    makes ``string``, not required. The plain table writes that itself; it said "MLflow
    must infer it", so the worker asked the run's process for the frames, which read the
    whole table back with pandas at the MLflow run's end."""
    db_path = home / "harness.duckdb"
    run_id = make_run(db_path, seed, rows=40, samples=1)
    outputs, scores = load_table_rows(db_path, run_id)
    inferred = dataset_entity(_record(main_results_table(outputs, scores, [])), infer=True)
    with open_table(db_path, run_id) as table:
        assert 0 < table.missing["context"] < table.rows
        plain = render_rows(_record(), table=table)
    assert plain.dataset == inferred
    assert '"name": "context", "required": false' in (plain.dataset or {}).get("schema", "")
