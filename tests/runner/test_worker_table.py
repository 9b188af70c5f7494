"""A fresh run's per-row table made by the MLflow worker of the batches it received
(``harness.runner.worker_table``), off the run's process: byte for byte what the run's
process renders from the store (``open_table`` + ``render_rows``, the path every other run
takes, and the fallback when the worker cannot make it). Real worker processes, a real
DuckDB store, a real MLflow store, runs made through the CLI with the fake LLM server."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from stored_tables import LABELLED, make_run

from harness.cli import cli
from harness.config import Home
from harness.runner import table_rows
from harness.runner.mlflow_worker import MlflowWorker
from harness.runner.summary import labelled_judges
from harness.store.db import connect
from harness.store.runs import get_run
from harness.testing import FakeLLMServer
from harness.tracking import RunRecord
from harness.tracking.sql_artifacts import render_rows


def _record(run_id: str, dataset: str, rows: int, labelled: list[str]) -> RunRecord:
    now = time.time()
    return RunRecord(
        run_id=run_id, run_name=None, experiment="e", params={}, metrics={},
        dataset_name=dataset, dataset_version="v1", dataset_digest="0" * 64, dataset_rows=rows,
        prompt_template="{input}", config={}, started_at=now - 5, finished_at=now, rows=None,
        labelled=labelled,
    )  # fmt: skip


def _reference(home: Path, run_id: str, labelled: list[str]) -> tuple[str, dict[str, str]]:
    """What the run's process renders of the stored run: the table's JSON and the dataset."""
    with table_rows.open_table(home / "harness.duckdb", run_id, labelled) as table:
        rendered = render_rows(_record(run_id, "d", table.rows, labelled), table=table)
    assert rendered.table_json is not None and rendered.dataset is not None
    return rendered.table_json, rendered.dataset


def _logged(home: Path, mlflow_run_id: str) -> tuple[str, dict[str, str]]:
    """The per-row table artifact the MLflow run holds, and its dataset's schema and profile."""
    from mlflow import MlflowClient

    (path,) = (home / "mlruns").rglob(f"{mlflow_run_id}/artifacts/eval_results_table.json")
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    (dataset_input,) = client.get_run(mlflow_run_id).inputs.dataset_inputs
    dataset = dataset_input.dataset
    return path.read_text(encoding="utf-8"), {"schema": dataset.schema, "profile": dataset.profile}


def _same(home: Path, mlflow_run_id: str, run_id: str, labelled: list[str]) -> None:
    logged, dataset = _logged(home, mlflow_run_id)
    table, entity = _reference(home, run_id, labelled)
    assert logged == table
    assert dataset == {"schema": entity["schema"], "profile": entity["profile"]}
    assert not list((home / "mlruns").glob(".harness-*"))  # no table file left behind


def _stored_batches(db_path: Path, run_id: str, seed: int) -> list[Any]:
    """The stored run's rows as ``batch_payload`` makes batches of them, in a shuffled
    order (rows finish out of order), each row's scores shuffled too."""
    with connect(db_path, read_only=True) as con:
        outputs = con.execute(
            "SELECT o.example_id, e.input, e.expected, e.context, o.output, o.error, "
            "o.latency_s, o.input_tokens, o.output_tokens, o.cached, e.position, e.extra "
            "FROM outputs o JOIN runs r ON r.run_id = o.run_id JOIN examples e ON "
            "e.dataset = r.dataset AND e.version = r.dataset_version AND e.id = o.example_id "
            "WHERE o.run_id = ?",
            [run_id],
        ).fetchall()
        scores = con.execute(
            "SELECT example_id, metric, value, source, sample, label, rationale, NULL, error, "
            "request_key, cached FROM scores WHERE run_id = ?",
            [run_id],
        ).fetchall()
    rng = random.Random(seed)
    rng.shuffle(outputs)
    rng.shuffle(scores)
    batches = []
    for start in range(0, len(outputs), 7):
        chunk = outputs[start : start + 7]
        ids = {o[0] for o in chunk}
        rows = [(*o[:2], list(o[2] or ()), *o[3:10]) for o in chunk]
        places = [(o[10], json.loads(o[11] or "{}")) for o in chunk]
        batches.append((rows, [s for s in scores if s[0] in ids], places))
    return batches


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("sent", ["every batch", "a batch missed"])
def test_the_workers_table_of_every_kind_of_value_is_the_stores(
    home: Path, seed: int, sent: str
) -> None:
    """Stored runs with every kind of value (data columns of every type, one named like
    the table's own, big ints, NaN scores, a metric first seen late, rows out of id
    order) sent to a real worker in shuffled batches: its table is the store's, byte for
    byte. A batch it never got (the count of rows differs) makes it ask the run's process,
    which renders the table from the store: today's path, never a wrong table."""
    rows = 40
    run_id = make_run(home / "harness.duckdb", seed, rows=rows, samples=3)
    batches = _stored_batches(home / "harness.duckdb", run_id, seed)
    if sent == "a batch missed":
        del batches[1]
    opened: list[str] = []

    @contextlib.contextmanager
    def from_store() -> Iterator[table_rows.StoredTable]:
        opened.append(run_id)
        with table_rows.open_table(home / "harness.duckdb", run_id, LABELLED) as table:
            yield table

    record = _record(run_id, f"d{seed}", rows, LABELLED)
    worker = MlflowWorker(Home(home).tracking_uri)
    try:
        worker.begin(record, traces=True, table=True)
        for batch in batches:
            worker.add_batch(batch, {})
        prepared = worker.prepare(record, None, from_store, rows=rows)
        mlflow_run_id = worker.finish(prepared)
    finally:
        worker.close()
    assert opened == ([] if sent == "every batch" else [run_id])
    _same(home, mlflow_run_id, run_id, LABELLED)


def _write_data(path: Path) -> None:
    """Rows whose ids are not in dataset order, data columns of several kinds (ints with
    gaps, one named like the table's ``output``, nested values), unicode, "/" and control
    characters; some rows' models fail, some judges fail (``mark``)."""
    rows = [
        {"id": str(60 - 3 * i), "input": f"Q{i} é/😀" + (" mark" if i % 5 == 2 else ""),
         "expected": [f"a{i}", "b/c"] if i % 3 else "x",
         "context": None if i % 4 == 0 else f"ctx\t{i}", "output": "theirs",
         "n": i if i % 5 else None, "f": i / 7, "flag": bool(i % 2),
         "meta": {"k/": [i, None]} if i % 2 else None, "note": "\x01\u2028</x>\x7f"}
        for i in range(1, 15)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _run(runner: CliRunner, data: Path, *args: str) -> dict[str, Any]:
    """A run of the rows, imported under a name of its own: MLflow keeps one dataset
    entity per name and digest, the first run's (a sampled run's would be another's)."""
    name = f"rows{len(list(data.parent.glob('imported-*')))}"
    (data.parent / f"imported-{name}").touch()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", name]).exit_code == 0
    ran = runner.invoke(cli, ["run", "--data", name, *args, "--json"])
    assert ran.exit_code in (0, 1), ran.output  # 1: some rows failed
    result: dict[str, Any] = json.loads(ran.stdout)
    assert result["mlflow_run_id"], ran.output
    return result


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored runs whose table the run's process read back (``open_table``)."""
    reads: list[str] = []
    real = table_rows.open_table

    def spy(db_path: Path, run_id: str, labelled: Any = ()) -> Any:
        reads.append(run_id)
        return real(db_path, run_id, labelled)

    monkeypatch.setattr(table_rows, "open_table", spy)
    return reads


def test_runs_made_through_the_cli_log_the_workers_table_as_the_store_renders_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[str]
) -> None:
    """Judges on the fake LLM server asked three times, a judge asked once that fails on
    some rows, a labelled judge, failing rows' model errors, a sampled and a limited run:
    the run's process never reads the table back, and the MLflow run logs the worker's,
    which is the store's."""
    data = tmp_path / "rows.jsonl"
    _write_data(data)
    runner = CliRunner()
    runs = []
    with FakeLLMServer(vary_with_temperature=True) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        runs.append(_run(
            runner, data, "--model", "python:harness_test_models:leaks_its_key",
            "--metric", "exact_match", "--metric", "token_f1", "--judge", "correctness",
            "--judge", "faithfulness", "--judge-model", "openai:/judge", "--judge-samples", "3",
        ))  # fmt: skip
    monkeypatch.setenv("HARNESS_TEST_JUDGE_FAIL_TEXT", "mark")
    runs.append(_run(
        runner, data, "--model", "python:harness_test_models:answer_some",
        "--metric", "exact_match", "--judge", "answer_relevance",
        "--judge-model", "python:harness_test_models:judge_fails_on_text",
    ))  # fmt: skip
    echo = ("--model", "echo", "--prompt", "{input}", "--metric", "word_count")
    runs.append(_run(runner, data, *echo, "--sample", "6", "--seed", "3"))
    runs.append(_run(runner, data, *echo, "--limit", "5"))
    (home / "harness.toml").write_text(
        'judge_model = "python:harness_test_models:judge_tone"\n[judges.tone]\n'
        'prompt = "Judge the tone: {output}"\noutput = ["rude", "neutral", "warm"]\n',
        encoding="utf-8",
    )
    runs.append(_run(runner, data, *echo, "--judge", "tone", "--judge-samples", "2"))
    assert opened == []  # every table was the worker's
    assert [r["rows"] for r in runs] == [14, 14, 6, 5, 14]
    assert runs[0]["errors"]  # model errors; the judge's below
    for result in runs:
        info = get_run(home / "harness.duckdb", result["run_id"])
        assert info is not None
        labelled = labelled_judges(info.config)
        _same(home, result["mlflow_run_id"], result["run_id"], labelled)
    logged, _ = _logged(home, runs[1]["mlflow_run_id"])
    assert "answer_relevance/error" in json.loads(logged)["columns"]
    logged, _ = _logged(home, runs[-1]["mlflow_run_id"])
    assert "tone/label" in json.loads(logged)["columns"]


def test_a_resumed_run_logs_the_table_its_process_reads_from_the_store(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[str]
) -> None:
    """A resumed run's worker got only the rows run again (its earlier rows were sent to
    another worker): its table is rendered by the run's process from the store."""
    data = tmp_path / "rows.jsonl"
    _write_data(data)
    runner = CliRunner()
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    model = "python:harness_test_models:fail_while_flagged"
    first = _run(runner, data, "--model", model, "--metric", "exact_match")
    assert first["errors"] and opened == []
    flag.unlink()
    ran = runner.invoke(cli, ["run", "--resume", first["run_id"], "--json"])
    assert ran.exit_code == 0, ran.output
    resumed = json.loads(ran.stdout)
    assert resumed["errors"] == 0 and opened == [first["run_id"]]
    _same(home, resumed["mlflow_run_id"], first["run_id"], [])
