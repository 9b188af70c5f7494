"""`harness run` against a faulty server: retries finish every row; what cannot finish is
stored with its error, counted, explained, and resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMConfig, FakeLLMServer

JUDGES = (
    "--judge",
    "correctness",
    "--judge",
    "answer_relevance",
    "--judge-model",
    "openai:/judge-test",
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    server.configure(**FakeLLMConfig().as_dict())
    server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fault-test")
    return server


def settings(home: Path, **calls: object) -> None:
    lines = [f"{k} = {json.dumps(v)}" for k, v in calls.items()]
    (home / "harness.toml").write_text("[calls]\n" + "\n".join(lines) + "\n")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def outputs(home: Path, run_id: str) -> list[tuple[str, str | None, str | None]]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT example_id, output, error FROM outputs WHERE run_id = ? ORDER BY example_id",
            [run_id],
        ).fetchall()
    finally:
        con.close()


@pytest.fixture
def qa(qa_file: Path, home: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return str(json.loads(out)["ref"])


def run(*extra: str) -> tuple[int, dict[str, object], str]:
    code, out, err = invoke(
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        "--metric",
        "exact_match",
        "--no-mlflow",
        "--json",
        *extra,
    )
    return code, json.loads(out) if out.strip() else {}, err


def test_every_row_completes_under_30_percent_500s_and_10_percent_429s(
    fake: FakeLLMServer, qa: str, home: Path
) -> None:
    # 12 retries: a call fails for good only after 13 faults in a row, p = 0.4**13 ~ 7e-6.
    settings(home, max_retries=12, retry_base_delay_s=0.01, retry_max_delay_s=0.1)
    fake.configure(error_500_rate=0.3, error_429_rate=0.1, retry_after_s=0.05, seed=11)
    code, doc, err = run("--concurrency", "8", *JUDGES)
    assert code == 0, err
    assert doc["rows"] == 20 and doc["errors"] == 0
    calls = doc["calls"]
    assert isinstance(calls, dict)
    model, judge = calls["model"], calls["judge"]
    assert (model["requests"], judge["requests"]) == (20, 40)  # one model + two judges a row
    assert model["errors"] == judge["errors"] == 0
    stats = fake.stats()
    assert stats["faults"]["error_500"] > 0 and stats["faults"]["error_429"] > 0
    # Every fault was met by exactly one retry, and nothing else was sent.
    assert model["retries"] + judge["retries"] == sum(stats["faults"].values())
    assert stats["requests_total"] == 60 + model["retries"] + judge["retries"]
    rows = outputs(home, str(doc["run_id"]))
    assert len(rows) == 20 and all(output and error is None for _, output, error in rows)
    metrics = doc["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["correctness"]["count"] == metrics["answer_relevance"]["count"] == 20


def test_timeouts_drops_and_broken_bodies_are_retried_too(
    fake: FakeLLMServer, qa: str, home: Path
) -> None:
    settings(home, max_retries=12, retry_base_delay_s=0.01, retry_max_delay_s=0.1, timeout_s=0.5)
    kinds = ("timeout", "drop", "malformed", "error_500", "error_429")
    fake.configure(
        fault_script=list(kinds),  # the first five requests meet one of each, for sure
        error_500_rate=0.1,
        error_429_rate=0.05,
        retry_after_s=0.05,
        timeout_rate=0.05,
        hang_s=3,
        drop_rate=0.05,
        malformed_rate=0.05,
        seed=5,
    )
    code, doc, err = run("--concurrency", "8", *JUDGES)
    assert code == 0, err
    assert doc["errors"] == 0
    stats = fake.stats()
    assert all(stats["faults"][kind] > 0 for kind in kinds), stats["faults"]
    # Each fault was met by one retry (and nothing else was sent)...
    calls = doc["calls"]
    assert isinstance(calls, dict)
    retries = calls["model"]["retries"] + calls["judge"]["retries"]
    assert retries == sum(stats["faults"].values())
    assert stats["requests_total"] == 60 + retries
    # ...and every body that met a fault, of every kind, was sent again and answered.
    answered = {r["body"] for r in stats["requests"] if r["status"] == 200 and not r["fault"]}
    for kind in kinds:
        faulted = [r for r in stats["requests"] if r["fault"] == kind]
        assert faulted and all(r["body"] in answered for r in faulted), kind
    assert all(output for _, output, _ in outputs(home, str(doc["run_id"])))


def test_rows_that_exhaust_their_retries_are_stored_counted_and_resumable(
    fake: FakeLLMServer, qa: str, home: Path
) -> None:
    settings(home, max_retries=2, retry_base_delay_s=0.001)
    # Every request body fails three times: one try and two retries, then the row gives up.
    fake.configure(fault_script=["error_500"] * 3, script_per_body=True)
    code, doc, err = run("--limit", "4")
    assert code == 1
    assert doc["errors"] == 4 and doc["rows_done"] == 4  # the run went on to every row
    assert (
        "error: 4 of 4 rows failed (model: 4 rows: 4 x openai:/gpt-test: HTTP 500 from "
        f"{fake.openai_base_url}/chat/completions: The server had an error while "
        "processing your request. (gave up after 3 attempts)); retry them with "
        f"`harness run --resume {doc['run_id']}`"
    ) in err
    assert fake.stats()["requests_total"] == 12
    rows = outputs(home, str(doc["run_id"]))
    assert [output for _, output, _ in rows] == [None] * 4
    assert all(error and "HTTP 500" in error for _, _, error in rows)

    fake.configure(fault_script=[])  # the server recovers
    code, resumed, err = run("--resume", str(doc["run_id"]))
    assert code == 0, err
    assert resumed["errors"] == 0 and resumed["rows_done"] == 4
    rows = outputs(home, str(doc["run_id"]))
    assert all(output and error is None for _, output, error in rows)


def test_a_resumes_summary_says_what_the_resume_itself_did(
    fake: FakeLLMServer, qa: str, home: Path
) -> None:
    """A resume's summary said `model calls: 10 sent, 0 from cache, 4 failed` for a resume
    that sent 4 and failed none: every count was the run's, over all its processes."""
    settings(home, max_retries=0)

    def failed_run(*params: str) -> dict[str, Any]:
        fake.configure(error_500_rate=0.5, seed=3)
        code, first, _ = run("--limit", "10", *params)
        assert code == 1 and first["calls_in_resume"] is None
        fake.configure(error_500_rate=0.0)  # the server recovers
        counters: dict[str, Any] = first["calls"]["model"]  # type: ignore[index]
        assert counters["requests"] and counters["errors"]  # some rows answered, some failed
        return first

    first = failed_run()
    sent, failed = first["calls"]["model"]["requests"], first["calls"]["model"]["errors"]
    code, resumed, err = run("--resume", str(first["run_id"]))
    assert code == 0, err
    total = resumed["calls"]["model"]  # type: ignore[index]
    assert (total["requests"], total["errors"]) == (sent + failed, failed)  # the run's, as before
    here = resumed["calls_in_resume"]["model"]  # type: ignore[index]
    assert (here["requests"], here["errors"], here["cache_hits"]) == (failed, 0, 0)
    assert resumed["calls_in_resume"]["judge"]["requests"] == 0  # type: ignore[index]

    first = failed_run("--param", "temperature=0.5")  # new requests: none cached
    sent, failed = first["calls"]["model"]["requests"], first["calls"]["model"]["errors"]
    code, out, err = invoke("run", "--resume", str(first["run_id"]))
    assert code == 0, err
    assert (
        f"model calls: {sent + failed} sent ({failed} in this resume), 0 from cache, "
        f"{failed} failed (0 in this resume); tokens "
    ) in out
