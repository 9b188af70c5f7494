"""A run with fewer rows than row workers asks each row's judges together.

Asked one after another, they would leave connections idle; the fake server's
``max_in_flight`` shows whether they overlapped. (Runs with at least twice
``--concurrency`` rows keep them sequential, as the benchmarks do.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMConfig, FakeLLMServer

JUDGES = ("--judge", "correctness", "--judge", "answer_relevance", "--judge", "faithfulness")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeLLMServer:
    server.configure(**FakeLLMConfig(latency_s=0.3).as_dict())
    server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-together-test")
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return server


def run(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, ["run", *args, "--json", "--no-mlflow"])
    document = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, document, result.stderr


def import_rows(tmp_path: Path, count: int) -> None:
    data = tmp_path / "qa.jsonl"
    rows = [
        {"question": f"What is {i} plus {i}?", "answer": str(2 * i), "context": f"{i}+{i}={2 * i}"}
        for i in range(count)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, ["data", "import", str(data), "--name", "qa"])
    assert result.exit_code == 0, result.output


def test_a_small_run_asks_a_rows_judges_together(fake: FakeLLMServer, tmp_path: Path) -> None:
    import_rows(tmp_path, 2)
    code, document, stderr = run(
        "--data", "qa", "--model", "openai:/m", "--judge-model", "openai:/j", *JUDGES,
        "--concurrency", "16",
    )  # fmt: skip
    assert code == 0, stderr
    assert document["calls"]["judge"]["requests"] == 6
    # 2 rows x 3 judges at once; one judge after another would hold at most 2.
    assert fake.stats()["max_in_flight"] >= 5


def test_a_replay_miss_among_judges_asked_together_fails_cleanly(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    import_rows(tmp_path, 2)
    common = ("--data", "qa", "--model", "openai:/m", "--judge-model", "openai:/j")
    code, _, stderr = run(*common, "--judge", "correctness", "--judge", "faithfulness")
    assert code == 0, stderr
    code, _, stderr = run(*common, *JUDGES, "--cache", "replay")  # answer_relevance: a miss
    assert code == 1
    assert "judge call" in stderr and "not in the cache" in stderr
    assert "Traceback" not in stderr and "never awaited" not in stderr
