"""Shared fixtures: every test gets its own project home; nothing touches the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PUBMEDQA = REPO / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
    return project


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist (`make test`), the tests of each Spark session fixture run on one worker,
    so each JVM (a Spark Connect server, a local Spark session) starts once, not once per
    worker: each start costs ~20-30 s of both cores."""
    for item in items:
        path = Path(str(item.fspath))
        if path.parent.name == "spark":
            item.add_marker(pytest.mark.xdist_group("spark-connect"))
        elif path.name == "test_spark.py":
            item.add_marker(pytest.mark.xdist_group("spark-local"))
