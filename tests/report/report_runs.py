"""The runs the report tests look at (made once per session by ``conftest.py``), and helpers.

``report_home``: 40 real PubMedQA rows, judged by two built-in judges over the wire (the
fake LLM server on 127.0.0.1, OpenAI's format):

- ``base``: the context baseline, one judge sample per row, not logged to MLflow;
- ``candidate``: ``report_models.answer`` (one failed row, one row whose output is markup
  that would fetch an image if a report pasted it into its HTML), a prompt of its own
  with a column field, a conversion and literal braces, three judge samples per row,
  logged to MLflow and written with ``--report``; then ``correctness`` is calibrated
  against PubMedQA's ``final_decision`` on its outputs.

``big_run``: all 1,000 PubMedQA rows, five metrics and two judges (``report_models.judge``,
a local ``python:`` judge whose rationales are as long as real ones), for the size limit.
Both go through the CLI as a user would; each test passes ``--home`` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from harness.cli import cli

REPO = Path(__file__).resolve().parents[2]
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"
ROWS = 40
METRICS = ["exact_match", "token_f1", "rougeL", "word_count", "latency"]
JUDGES = ["faithfulness", "correctness"]
CANDIDATE_PROMPT = (
    "Answer from the context. {{Braces}} stay literal.\n"
    "Question: {input}\nThe label column says {final_decision!r}.\nContext: {context}\nAnswer:"
)


def invoke(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``harness --home HOME ARGS`` in this process, as the CLI runs it."""
    return CliRunner().invoke(cli, ["--home", str(home), *args], env=env)


def ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, (result.output, result.stderr, result.exception)
    return result


@dataclass
class ReportHome:
    home: Path
    base: str  # run ids
    candidate: str
    fail_id: str  # the candidate's failed row
    evil_id: str  # the candidate's row whose output is markup
    run_report: str  # `run --report`, as written when the run ended
    mlflow_report: str  # the run's MLflow artifact report.html
    cli_report: str  # `harness report candidate`, before the calibration
    calibration: object  # harness.judges.Calibration of correctness


def pubmedqa_rows(n: int) -> list[dict[str, object]]:
    rows = []
    with open(PUBMEDQA, encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def run_id(home: Path, name: str) -> str:
    from harness.store.tags import find_run

    info, _ = find_run(home / "harness.duckdb", name)
    return info.run_id


def mlflow_artifact(home: Path, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home
    from harness.store.runs import get_run

    mlflow_run = get_run(home / "harness.duckdb", run_id).mlflow_run_id
    assert mlflow_run, "the candidate run was not logged to MLflow"
    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)
    assert "report.html" in [a.path for a in client.list_artifacts(mlflow_run)]
    local = client.download_artifacts(mlflow_run, "report.html", str(home))
    return Path(local).read_text(encoding="utf-8")
