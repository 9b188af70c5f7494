"""The MLflow worker's plain-Python traces of a batch equal the DataFrame path's."""

from __future__ import annotations

import dataclasses
import math
import time

import pandas as pd

from harness.runner.mlflow_records import (
    batch_frames,
    batch_payload,
    batch_traces,
    rows_record,
)
from harness.store.datasets import Example
from harness.store.rows import OutputRow, ScoreRow
from harness.tracking import RunRecord
from harness.tracking.traces import build_row_traces

# Each judge asks its own model (issue 16): the trace names the one it asked.
JUDGES = {"faithfulness": "openai:/judge-a", "correctness": "anthropic:/judge-b"}


def _head() -> RunRecord:
    now = time.time()
    return RunRecord(
        run_id="r", run_name=None, experiment="e", params={}, metrics={}, dataset_name="qa",
        dataset_version="v1", dataset_digest="d" * 64, dataset_rows=4, prompt_template="{input}",
        config={}, started_at=now - 5, finished_at=now, rows=pd.DataFrame(),
    )  # fmt: skip


def _output(example_id: str, output: str | None, error: str | None = None) -> OutputRow:
    return OutputRow(example_id, output, error, 0.25, 10, 3, 0.0, "k", True)


def _comparable(traces) -> list[tuple]:
    return [
        (t.row_id, t.inputs, t.outputs, t.error, t.start_ns, t.end_ns,
         [(a.kind, a.name, a.value, a.source_type, a.source_id, a.rationale, a.error)
          for a in t.assessments])
        for t in traces
    ]  # fmt: skip


def test_batch_traces_equal_the_frames_path():
    examples = {
        "a": Example("a", "Q a", ("yes", "yeah"), "ctx"),
        "b": Example("b", "Q b", (), None),
        "c": Example("c", "Q c", ("no",), ""),
        "d": Example("d", '{"json": 1}', ("x",), None),
    }
    outputs = [_output("a", "yes"), _output("b", None, "Timeout"), _output("c", ""),
               _output("d", '["x"]')]  # fmt: skip
    scores = [
        ScoreRow("a", "exact_match", 1.0),
        ScoreRow("a", "faithfulness", 4.0, "llm_judge", 1, rationale=None),
        ScoreRow("a", "faithfulness", 2.0, "llm_judge", 0, rationale="first"),
        ScoreRow("a", "faithfulness", None, "llm_judge", 2, error="unparsable"),
        ScoreRow("b", "faithfulness", None, "llm_judge", 0, error="no output to judge"),
        ScoreRow("b", "exact_match", None),  # neither value nor error: no feedback
        ScoreRow("c", "token_f1", math.nan, error=None),
        ScoreRow("c", "token_f1", 0.5, sample=1),
        ScoreRow("d", "correctness", 1.0, "llm_judge", 0, rationale="ok"),
    ]
    places = {k: (i, e) for i, (k, e) in enumerate(examples.items())}
    batch = batch_payload(places, outputs, scores)
    head = _head()
    reference = build_row_traces(rows_record(head, *batch_frames(batch), JUDGES))
    plain = batch_traces(head, batch, JUDGES)
    assert _comparable(plain) == _comparable(reference)
    retriever = dataclasses.replace(head, config={"retriever": True})  # its expected ids: lists
    frames = build_row_traces(rows_record(retriever, *batch_frames(batch), JUDGES))
    assert _comparable(batch_traces(retriever, batch, JUDGES)) == _comparable(frames)
    by_row = {t.row_id: t for t in plain}
    faithfulness = next(a for a in by_row["a"].assessments if a.name == "faithfulness")
    assert (faithfulness.value, faithfulness.rationale, faithfulness.error) == (
        3.0,
        "first",
        "unparsable",
    )
    judged = {
        a.name: a.source_id for t in plain for a in t.assessments if a.source_type == "LLM_JUDGE"
    }
    assert judged == JUDGES
