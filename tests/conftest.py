"""Shared fixtures: every test gets its own project home; nothing touches the network."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"
# The Spark JVMs the tests start read tests/spark_conf/spark-defaults.conf (JVM flags that
# start them faster); tests that give a JVM an environment of its own pass this on.
os.environ["SPARK_CONF_DIR"] = str(REPO / "tests" / "spark_conf")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the project home at a fresh folder, for the library and the CLI alike."""
    project = tmp_path / "home"
    project.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "stray-mlflow.db"))
    for var in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "DATABRICKS_TOKEN",
        "DATABRICKS_HOST",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "OLLAMA_HOST",
    ):
        monkeypatch.delenv(var, raising=False)
    yield project
    # mlflow.set_experiment (a test acting as a user's script) keeps its experiment in a
    # module global and in MLFLOW_EXPERIMENT_ID: a later test's mlflow.start_run in another
    # store then looked for that experiment's id there ("No Experiment with id=1 exists").
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None


@pytest.fixture
def qa_rows() -> list[dict[str, object]]:
    """Twenty real PubMedQA rows (question, context, long answer, label)."""
    rows = []
    with open(PUBMEDQA, encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == 20:
                break
    return rows


@pytest.fixture
def qa_file(tmp_path: Path, qa_rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in qa_rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path (``tests/browser.py``): a skip without it, a failure in CI
    (``HARNESS_REQUIRE_CHROMIUM=1``)."""
    from browser import find_chromium

    return find_chromium()
