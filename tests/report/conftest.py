"""Session fixtures of the report tests: the runs they look at (see ``report_runs``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from report_runs import (
    CANDIDATE_PROMPT,
    JUDGES,
    METRICS,
    PUBMEDQA,
    ROWS,
    ReportHome,
    invoke,
    mlflow_artifact,
    ok,
    pubmedqa_rows,
    run_id,
)

from harness.testing import FakeLLMServer


@pytest.fixture(scope="session")
def report_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(vary_with_temperature=True) as server:
        yield server


@pytest.fixture(scope="session")
def report_home(tmp_path_factory: pytest.TempPathFactory, report_server: FakeLLMServer
                ) -> ReportHome:  # fmt: skip
    home = tmp_path_factory.mktemp("report-home")
    rows = pubmedqa_rows(ROWS)
    data = home / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(home, "data", "import", str(data), "--name", "qa"))
    fail_id, evil_id = str(rows[3]["id"]), str(rows[5]["id"])
    env = {
        "OPENAI_BASE_URL": report_server.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "HARNESS_TEST_FAIL_ID": fail_id,
        "HARNESS_TEST_EVIL_ID": evil_id,
    }
    metrics = [a for m in METRICS for a in ("--metric", m)]
    judges = [a for j in JUDGES for a in ("--judge", j)]
    judged = [*judges, "--judge-model", "openai:/gpt-4o-mini"]
    ok(invoke(home, "run", "--data", "qa", "--model", "python:harness.baselines:context_overlap",
              *metrics, *judged, "--run-name", "base", "--no-mlflow", env=env))  # fmt: skip
    written = home / "candidate-run.html"
    ran = ok(
        invoke(home, "run", "--data", "qa", "--model", "python:report_models:answer",
               "--prompt", CANDIDATE_PROMPT, *metrics, *judged, "--judge-samples", "3",
               "--run-name", "candidate", "--report", str(written), env=env),
        code=1,  # the failed row
    )  # fmt: skip
    assert f"report: {written}" in ran.output
    base, candidate = run_id(home, "base"), run_id(home, "candidate")
    mlflow_report = mlflow_artifact(home, candidate)
    cli_report = ok(invoke(home, "report", "candidate", "-o", "-")).stdout
    from harness.judges import calibrate

    with mock.patch.dict(os.environ, env):
        calibration = calibrate(
            "correctness", data="qa", label="final_decision", label_map={"maybe": "no"},
            run=candidate, judge_model="openai:/gpt-4o-mini", home=home,
        )  # fmt: skip
    return ReportHome(
        home, base, candidate, fail_id, evil_id, written.read_text(encoding="utf-8"),
        mlflow_report, cli_report, calibration,
    )  # fmt: skip


@pytest.fixture(scope="session")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """1,000 PubMedQA rows, five metrics, two judges: (home, run id)."""
    home = tmp_path_factory.mktemp("big-home")
    rows = pubmedqa_rows(1000)
    env = {"HARNESS_TEST_FAIL_ID": str(rows[3]["id"]), "HARNESS_TEST_EVIL_ID": str(rows[5]["id"])}
    ok(invoke(home, "data", "import", str(PUBMEDQA), "--name", "pubmedqa"))
    metrics = [a for m in METRICS for a in ("--metric", m)]
    judges = [a for j in JUDGES for a in ("--judge", j)]
    ok(
        invoke(home, "run", "--data", "pubmedqa", "--model", "python:report_models:answer",
               *metrics, *judges, "--judge-model", "python:report_models:judge",
               "--run-name", "big", "--no-mlflow", env=env),
        code=1,  # the failed row
    )  # fmt: skip
    return home, run_id(home, "big")
