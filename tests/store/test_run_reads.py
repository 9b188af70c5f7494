"""What a run's end reads of its stored rows: the aggregates' narrow read of the scores
(``load_score_values``) against the whole one, the count of rows against the rows; and
what a batch write that DuckDB refuses reports, and leaves."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.config import resolve_home
from harness.errors import StoreError
from harness.runner.batch_scores import add_extra_aggregates
from harness.runner.summary import aggregate_scores, results_table, stored_aggregates
from harness.slices import per_row_values
from harness.store.datasets import load_examples, resolve_dataset
from harness.store.db import held
from harness.store.rows import OutputRow, ScoreRow
from harness.store.runs import (
    create_run,
    load_outputs,
    load_outputs_and_scores,
    load_score_values,
    load_scores,
    load_table_rows,
    rows_stored,
    write_batch,
)


def _stored_run(qa_file: Path, home: Path) -> Path:
    """A run of 12 rows whose scores take every path the aggregates have: a judge asked
    twice whose samples disagree on some rows, a judge answer that failed, a metric that
    raised, a NaN score, and text in every column the narrow read leaves out."""
    assert CliRunner().invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    db_path = resolve_home(home).db_path
    dataset = resolve_dataset(db_path, "qa")
    ids = [e.id for e in load_examples(db_path, dataset)][:12]
    create_run(
        db_path, run_id="r1", run_name=None, dataset=dataset.name,
        dataset_version=dataset.version, model="m", config={}, rows_total=len(ids),
    )  # fmt: skip
    outputs = [OutputRow(i, f"out {i}", None, 0.1, 3, 4, None, "k", True) for i in ids]
    scores = []
    for n, i in enumerate(ids):
        scores.append(ScoreRow(i, "token_f1", n / 12, rationale=f"overlap {n}"))
        for sample in (0, 1):
            verdict = 1.0 if (n + sample * (n % 3 == 0)) % 2 else 0.0
            scores.append(
                ScoreRow(i, "correctness", verdict, "llm_judge", sample, "yes" if verdict else
                         "no", f"because {n}", f'{{"verdict": {verdict}}}', None, f"k{n}{sample}",
                         bool(sample))
            )  # fmt: skip
    scores.append(ScoreRow(ids[0], "relevance", None, "llm_judge", 0, error="unparseable answer"))
    scores.append(ScoreRow(ids[1], "relevance", 4.0, "llm_judge", 0, rationale="fine"))
    scores.append(ScoreRow(ids[2], "word_count", None, error="metric raised"))
    scores.append(ScoreRow(ids[3], "word_count", math.nan))
    scores.append(ScoreRow(ids[4], "word_count", 7.0))
    write_batch(db_path, "r1", outputs[:5], scores[:20])
    write_batch(db_path, "r1", outputs[5:], scores[20:])
    return db_path


def test_the_narrow_read_of_the_scores_aggregates_as_the_whole_one(
    qa_file: Path, home: Path
) -> None:
    db_path = _stored_run(qa_file, home)
    full = load_scores(db_path, "r1")
    narrow = load_score_values(db_path, "r1")
    assert set(full.columns) - set(narrow.columns) == {
        "label", "rationale", "raw", "request_key", "cached",
    }  # fmt: skip
    pd.testing.assert_frame_equal(narrow, full[list(narrow.columns)])
    aggregates = aggregate_scores(narrow)
    assert aggregates == aggregate_scores(full)
    # The paths above were all taken: samples that disagree, a failed judge answer.
    assert aggregates["correctness"]["self_disagreement"] == 4
    assert aggregates["relevance"]["errors"] == 1
    asked = {"token_f1": ["variance", "median"], "correctness": ["max"]}
    extra_narrow, extra_full = aggregate_scores(narrow), aggregate_scores(full)
    add_extra_aggregates(extra_narrow, narrow, asked)
    add_extra_aggregates(extra_full, full, asked)
    assert extra_narrow == extra_full and "variance" in extra_narrow["token_f1"]
    pd.testing.assert_frame_equal(per_row_values(narrow), per_row_values(full))


def test_the_rows_are_counted_and_read_with_their_scores_in_one_open(
    qa_file: Path, home: Path
) -> None:
    db_path = _stored_run(qa_file, home)
    outputs, scores = load_outputs_and_scores(db_path, "r1")
    pd.testing.assert_frame_equal(outputs, load_outputs(db_path, "r1"))
    pd.testing.assert_frame_equal(scores, load_scores(db_path, "r1"))
    assert rows_stored(db_path, "r1") == len(outputs) == 12
    assert rows_stored(db_path, "no-such-run") == 0


@pytest.mark.parametrize("hold", [False, True], ids=["own-open", "held"])
def test_a_refused_batch_reports_duckdbs_own_error_and_stores_none_of_its_rows(
    qa_file: Path, home: Path, hold: bool
) -> None:
    db_path = _stored_run(qa_file, home)
    before = len(load_scores(db_path, "r1"))
    stored = str(load_outputs(db_path, "r1")["id"].iloc[0])
    batch = [OutputRow("new-row", "out", None, 0.1, 3, 4, None, "k", True),
             OutputRow(stored, "again", None, 0.1, 3, 4, None, "k", True)]  # fmt: skip
    with pytest.raises(StoreError) as caught:
        if hold:
            with held(db_path):
                write_batch(db_path, "r1", batch, [ScoreRow("new-row", "token_f1", 1.0)])
        else:
            write_batch(db_path, "r1", batch, [ScoreRow("new-row", "token_f1", 1.0)])
    # The insert's own error, not the aborted transaction's that follows it.
    assert "Duplicate key" in str(caught.value) and stored in str(caught.value)
    assert "aborted" not in str(caught.value)
    assert rows_stored(db_path, "r1") == 12 and len(load_scores(db_path, "r1")) == before


def test_one_sample_per_row_aggregates_in_sql_as_through_pandas(qa_file: Path, home: Path) -> None:
    db_path = _stored_run(qa_file, home)
    assert stored_aggregates(db_path, "r1") is None  # a judge asked twice: pandas' way
    # The same run with one sample of each: a failed judge answer, a metric that raised, a
    # NaN, a judge and metrics.
    scores = load_scores(db_path, "r1")
    once = scores[scores["sample"] == 0]
    create_run(
        db_path, run_id="r2", run_name=None, dataset="qa", dataset_version="v", model="m",
        config={}, rows_total=12,
    )  # fmt: skip
    rows = [
        ScoreRow(r.example_id, r.metric, None if pd.isna(r.value) else r.value, r.source,
                 r.sample, error=None if pd.isna(r.error) else r.error)
        for r in once.itertuples()
    ]  # fmt: skip
    write_batch(db_path, "r2", [], rows)
    narrow = load_score_values(db_path, "r2")
    failed = int((narrow["error"].notna() & (narrow["source"] == "code")).sum())
    assert stored_aggregates(db_path, "r2") == (aggregate_scores(narrow), failed)
    assert failed == 1 and aggregate_scores(narrow)["relevance"]["errors"] == 1


def test_the_mlflow_tables_read_of_the_scores_makes_the_same_table(
    qa_file: Path, home: Path
) -> None:
    db_path = _stored_run(qa_file, home)
    outputs, scores = load_table_rows(db_path, "r1")
    pd.testing.assert_frame_equal(outputs, load_outputs(db_path, "r1"))
    full = load_scores(db_path, "r1")
    assert set(full.columns) - set(scores.columns) == {"raw", "request_key", "cached"}
    pd.testing.assert_frame_equal(scores, full[list(scores.columns)])
    for labelled in ((), ("correctness",)):
        pd.testing.assert_frame_equal(
            results_table(outputs, scores, labelled), results_table(outputs, full, labelled)
        )


def test_a_records_scores_read_by_field_are_the_whole_frames_columns(
    qa_file: Path, home: Path
) -> None:
    # What the report reads of them (harness.report.rows.ReportRun.score_rows).
    from harness.store.exports import load_run_record

    db_path = _stored_run(qa_file, home)
    record = load_run_record(db_path, "r1")
    whole = record.scores()
    assert len(whole) == len(load_scores(db_path, "r1"))
    some = record.scores(("source", "metric", "value", "error"))  # in the record's order
    assert list(some.columns) == ["example_id", "metric", "value", "error", "source"]
    pd.testing.assert_frame_equal(some, whole[list(some.columns)])
