"""A stored run's own report (the one every run logged to MLflow writes at its end) reads the
store a chunk at a time, with neither pandas nor pyarrow (issue 14), and says what the
run's Arrow table says: the rows, the per-row scores, and compare's frames made from them.

The run: PubMedQA rows (a context, extra columns), a model error, a ``python:`` judge asked
three times that gives no verdict on one row (judge errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_runs import ReportHome, invoke, ok, pubmedqa_rows, run_id

from harness.store.exports import load_run_record

ROWS = 30
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(home, run id)."""
    home = tmp_path_factory.mktemp("plain-report")
    rows = pubmedqa_rows(ROWS)
    data = home / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(home, "data", "import", str(data), "--name", "qa"))
    env = {
        "HARNESS_TEST_FAIL_ID": str(rows[2]["id"]),
        "HARNESS_TEST_JUDGE_FAIL_TEXT": str(rows[4]["question"]),
    }
    ok(
        invoke(home, "run", "--data", "qa", "--model", "python:report_models:answer",
               "--metric", "token_f1", "--metric", "exact_match", "--judge", "correctness",
               "--judge-samples", "3", "--judge-model", "python:report_models:flaky_judge",
               "--run-name", "plain", "--no-mlflow", env=env),
        code=1,  # the failed rows
    )  # fmt: skip
    return home, run_id(home, "plain")


def test_a_stored_runs_own_report_imports_neither_pandas_nor_pyarrow(
    stored: tuple[Path, str],
) -> None:
    """The report at a run's end read the run into an Arrow table and pandas frames: ~80 MB
    of the run's process only to import them (issue 14). It is the same page without."""
    from harness.report import run_report

    home, run = stored
    db_path = home / "harness.duckdb"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from harness.report import run_report\n"
        "from harness.store.exports import load_run_record\n"
        f"db = Path({str(db_path)!r})\n"
        f"html = run_report(load_run_record(db, {run!r}), db_path=db)\n"
        "sys.stdout.write(html)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow'))\n"
        "sys.stderr.write(' '.join(loaded))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=True, cwd=home)  # fmt: skip
    assert done.stderr == ""  # no pandas, no pyarrow module
    # the page made with the run's Arrow table, as compare reads a run
    record = load_run_record(db_path, run)
    record.table  # noqa: B018 - read now: the report takes its rows from it
    assert record.arrow is not None
    assert done.stdout == run_report(record, db_path=db_path)


def test_a_stored_runs_rows_read_a_chunk_at_a_time_are_its_tables(
    stored: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.slices.per_row import SCORE_FIELDS
    from harness.store import record_rows
    from harness.store.record_rows import RowReader, StoredRows

    # pages of 4 rows, asked for 7 at a time: a chunk spans pages, and a page chunks
    monkeypatch.setattr(record_rows, "_PAGE_ROWS", 4)
    home, run = stored
    record = load_run_record(home / "harness.duckdb", run)
    with record.reader() as reader:
        assert isinstance(reader, StoredRows)
        heads, scores = reader.heads(), list(reader.scores(SCORE_FIELDS))
        ids = reader.ids()
        # in order, a chunk at a time, then out of order (a comparison's candidate)
        rows = [row for start in range(0, ROWS, 7) for row in reader.records(range(start,
                min(start + 7, ROWS)))]  # fmt: skip
        shuffled = reader.records([5, 1, 29, 0])
    table = record.table
    assert rows == table.to_pylist()
    assert shuffled == table.take([5, 1, 29, 0]).to_pylist()
    with RowReader(record) as arrow:
        assert arrow.ids() == ids
        assert arrow.heads() == heads
        assert list(arrow.scores(SCORE_FIELDS)) == scores
    # two metrics and three samples of the judge; none for the row whose model failed
    assert sorted({len(row["scores"]) for row in rows}) == [0, 1 + 1 + 3]
    assert sum(1 for _, error, _, _ in heads if error) == 1
    # what the page shows of a row's scores: a stored run's are read with those fields only
    fresh = load_run_record(home / "harness.duckdb", run)  # its rows not read yet
    with fresh.reader(("metric", "label")) as reader:
        first = reader.records(range(3))
    shown = [[{k: s[k] for k in ("metric", "label")} for s in row["scores"]] for row in rows[:3]]
    assert [row["scores"] for row in first] == shown


def test_a_stored_runs_rows_whose_examples_are_gone_read_a_page_at_a_time_are_its_tables(
    stored: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's examples are joined by their places in the dataset (from its first row's to
    its last's): a row whose example is gone from the store has none, comes last, and is
    read as the run's table has it (no input, no context), the rows around it too."""
    import shutil

    import duckdb

    from harness.store import record_rows

    monkeypatch.setattr(record_rows, "_PAGE_ROWS", 4)
    home, run = stored
    db_path = tmp_path / "harness.duckdb"
    shutil.copy(home / "harness.duckdb", db_path)
    with duckdb.connect(str(db_path)) as con:
        gone = [i for (i,) in con.execute("SELECT id FROM examples ORDER BY position").fetchall()]
        gone = [gone[1], gone[9], gone[10]]  # two pages' rows, two on one page
        con.execute("DELETE FROM examples WHERE list_contains($gone, id)", {"gone": gone})
    record = load_run_record(db_path, run)
    with record.reader() as reader:
        rows = [row for start in range(0, ROWS, 5) for row in reader.records(range(start,
                min(start + 5, ROWS)))]  # fmt: skip
    assert rows == record.table.to_pylist()
    assert [row["id"] for row in rows[-3:]] == sorted(gone)
    assert [row["input"] for row in rows[-3:]] == [None] * 3


def test_a_stored_runs_rows_read_for_the_page_hold_only_its_judges_samples(
    stored: tuple[Path, str],
) -> None:
    """The page shows a row's judges' samples, not its metrics' scores (their values come
    from the run's scores): a stored run's rows are read with those only, the same samples
    as the whole read's; an Arrow table's reader may give them all."""
    home, run = stored
    record = load_run_record(home / "harness.duckdb", run)
    with record.reader() as reader:
        whole = reader.records(range(ROWS))
    judged = [[s for s in row["scores"] if s["source"] == "llm_judge"] for row in whole]
    assert sorted({len(one) for one in judged}) == [0, 3]
    fresh = load_run_record(home / "harness.duckdb", run)
    with fresh.reader(sources=["llm_judge"]) as reader:
        rows = reader.records(range(ROWS))
    assert [row["scores"] for row in rows] == judged
    assert [{**row, "scores": []} for row in rows] == [{**row, "scores": []} for row in whole]


def test_compares_frames_are_made_from_the_same_per_row_scores(
    stored: tuple[Path, str],
) -> None:
    """``compare`` keeps its frames; they are the report's per-row numbers, not a second
    computation of them."""
    import numpy as np
    import pandas as pd

    from harness.slices import failed_rows, per_row_values
    from harness.store.scores import ERRORS, record_scores

    home, run = stored
    record = load_run_record(home / "harness.duckdb", run)
    scores = record_scores(record)
    whole = record.scores()
    assert scores.values.drop(columns=[ERRORS]).equals(
        per_row_values(whole).reindex(index=scores.ids).rename_axis("id")
    )
    rows = record.rows().set_index("id")
    failed = failed_rows(rows["error"], whole)
    assert list(scores.values[ERRORS]) == list(failed.astype(float))
    assert int(failed.sum()) == 2  # the model's failed row, the judge's
    judged = whole[(whole["source"] == "llm_judge") & whole["error"].notna()]
    first = judged.sort_values("sample").drop_duplicates(["example_id", "metric"])
    found = scores.judge_errors
    assert {(i, m): found.at[i, m] for i, m in zip(first["example_id"], first["metric"],
            strict=True)} == dict(zip(zip(first["example_id"], first["metric"], strict=True),
            first["error"], strict=True))  # fmt: skip
    judge = whole[whole["source"] == "llm_judge"].sort_values("sample")
    first = judge.drop_duplicates(["example_id", "metric"]).set_index("example_id")
    shown = scores.rationales["correctness"].reindex(first.index)
    as_text = [None if pd.isna(r) else r for r in shown]  # as compare reads a cell
    assert as_text == [None if pd.isna(r) else r for r in first["rationale"]]
    samples = scores.samples["correctness"]
    assert samples.answers == 3 * ROWS - 3  # the failed row was not judged
    assert samples.failed == 3
    assert len(samples.repeated) == ROWS - 2
    assert np.isnan(scores.columns["correctness"]).sum() == 2


def test_a_judges_self_agreement_is_the_same_numbers_in_the_report_and_in_mlflow(
    report_home: ReportHome,
) -> None:
    """The report measures a judge asked three times on its per-row samples
    (``harness.slices.per_row``), compare and the MLflow run on the scores' frame
    (``sample_stats``): one definition, ``repeated_stats``, the same numbers."""
    from harness.judges.variance import sample_stats, summarize_samples
    from harness.report.rows import ReportRun
    from harness.report.scores import judge_views
    from harness.store.scores import record_scores

    record = load_run_record(report_home.home / "harness.duckdb", report_home.candidate)
    run = ReportRun("candidate", record, record_scores(record))
    shown = {v.judge: v.runs[0].agreement for v in judge_views([run], [[]])}
    logged = summarize_samples(sample_stats(record.scores()))
    assert set(shown) == set(logged) == {"faithfulness", "correctness"}
    for judge, said in logged.items():
        agreement = shown[judge]
        assert agreement is not None
        assert agreement["disagree"] == said["self_disagreement"] > 0  # the samples vary
        assert agreement["agreement"] == pytest.approx(said["agreement"], rel=1e-12)
        assert agreement["std"] == pytest.approx(said["std"], rel=1e-12)
        assert agreement["rows"] == len(record_scores(record).samples[judge].repeated)


def test_a_row_stored_between_the_reads_of_its_scores_and_rows_shows_no_scores(
    tmp_path: Path,
) -> None:
    """A stored run's scores and rows are read with opens of their own: a row the run
    stores in between (a report of a run still going) shows with no scores yet, where
    it had no values at all (``null``), which the page cannot show."""
    import duckdb

    from harness.report.rows import ReportRun, rows_payload
    from harness.store.scores import record_scores

    rows = pubmedqa_rows(5)
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(tmp_path, "data", "import", str(data), "--name", "qa"))
    ok(invoke(tmp_path, "run", "--data", "qa", "--model", "echo", "--metric", "token_f1",
              "--limit", "4", "--run-name", "going", "--no-mlflow"))  # fmt: skip
    db_path = tmp_path / "harness.duckdb"
    record = load_run_record(db_path, run_id(tmp_path, "going"))
    scores = record_scores(record)
    with duckdb.connect(str(db_path)) as con:
        con.execute(
            "INSERT INTO outputs (run_id, example_id, output, created_at) "
            "VALUES (?, ?, 'late', current_timestamp)",
            [record.info.run_id, str(rows[4]["id"])],
        )
    payload = rows_payload([ReportRun("going", record, scores)], ["token_f1"])
    late = payload["rows"][-1]
    assert late["id"] == str(rows[4]["id"]) and late["runs"][0]["output"] == "late"
    assert late["runs"][0]["values"] == [None]
    assert all(r["runs"][0]["values"][0] is not None for r in payload["rows"][:-1])
