"""The cache through the real run path: a real HTTP provider, the fake server, real DuckDB.

Records runs against the local fake OpenAI server, then proves reruns and replays send
nothing and reproduce every row and metric exactly — also after the server is stopped,
and in a fresh project home from an exported cassette.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing.fake_llm import FakeLLMServer

METRICS = ["--metric", "exact_match", "--metric", "token_f1", "--metric", "rougeL"]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.01) as fake:
        yield fake


@pytest.fixture
def openai_env(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "sk-test-key"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def harness_cli(*args: str, home: Path | None = None) -> tuple[int, str, str]:
    prefix = ["--home", str(home)] if home else []
    result = CliRunner().invoke(cli, [*prefix, *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(*extra: str, home: Path | None = None, expect: int = 0) -> dict:
    code, out, err = harness_cli(
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        *METRICS,
        "--no-mlflow",
        "--json",
        *extra,
        home=home,
    )
    assert code == expect, err
    return json.loads(out)


def rows_of(home: Path, run_id: str) -> pd.DataFrame:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT o.example_id, o.output, o.request_key, o.cached, o.input_tokens, "
            "o.output_tokens, o.latency_s, s.metric, s.value FROM outputs o "
            "JOIN scores s USING (run_id, example_id) WHERE o.run_id = ? "
            "ORDER BY o.example_id, s.metric",
            [run_id],
        ).df()
    finally:
        con.close()


@pytest.fixture
def qa(qa_file: Path, home: Path) -> str:
    code, out, err = harness_cli("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return json.loads(out)["ref"]


def test_rerun_and_replay_reproduce_the_run_exactly(
    qa: str,
    home: Path,
    openai_env: dict,
    server: FakeLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = run_json()
    assert first["calls"]["model"]["requests"] == 20 and first["calls"]["model"]["cache_hits"] == 0
    assert server.stats()["requests_total"] == 20
    recorded = rows_of(home, first["run_id"])
    assert not recorded["cached"].any() and recorded["request_key"].str.len().eq(64).all()

    second = run_json()
    assert (
        second["calls"]["model"]["requests"] == 0 and second["calls"]["model"]["cache_hits"] == 20
    )
    assert server.stats()["requests_total"] == 20  # the rerun sent nothing
    assert second["metrics"] == first["metrics"]
    rerun = rows_of(home, second["run_id"])
    assert rerun["cached"].all()
    columns = [
        "example_id",
        "output",
        "request_key",
        "input_tokens",
        "output_tokens",
        "latency_s",
        "metric",
        "value",
    ]
    pd.testing.assert_frame_equal(rerun[columns], recorded[columns])

    # Replay with the server gone: no network at all, the same rows and metrics.
    server.stop()
    replayed = run_json("--cache", "replay")
    assert replayed["metrics"] == first["metrics"]
    assert replayed["calls"]["model"]["requests"] == 0
    pd.testing.assert_frame_equal(rows_of(home, replayed["run_id"])[columns], recorded[columns])

    # ...and from an exported cassette, in a fresh project home, with no API key.
    cassette = tmp_path / "qa.jsonl.gz"
    code, out, err = harness_cli(
        "cache", "export", str(cassette), "--run", first["run_id"], "--json"
    )
    assert code == 0 and json.loads(out)["entries"] == 20, err
    fresh = tmp_path / "fresh"
    monkeypatch.delenv("OPENAI_API_KEY")
    code, _, err = harness_cli(
        "data", "import", str(home.parent / "qa.jsonl"), "--name", "qa", home=fresh
    )
    assert code == 0, err
    code, out, err = harness_cli("cache", "import", str(cassette), "--json", home=fresh)
    assert code == 0 and json.loads(out)["added"] == 20, err
    from_cassette = run_json("--cache", "replay", home=fresh)
    assert from_cassette["metrics"] == first["metrics"]
    pd.testing.assert_frame_equal(
        rows_of(fresh, from_cassette["run_id"])[columns], recorded[columns]
    )


def test_replay_miss_names_row_kind_and_difference(qa: str, openai_env: dict) -> None:
    run_json("--param", "temperature=0", "--limit", "3")
    code, out, err = harness_cli(
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        "--param",
        "temperature=0.7",
        "--limit",
        "3",
        "--cache",
        "replay",
        "--no-mlflow",
    )
    assert code == 1
    assert "model call for row" in err and "temperature: 0.7 (cached: 0.0)" in err
    assert "Traceback" not in err

    code, _, err = harness_cli(
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        "--param",
        "temperature=0",
        "--limit",
        "3",
        "--cache",
        "replay",
        "--prompt",
        "Q: {input}",
        "--no-mlflow",
    )
    assert code == 1 and "prompt differs at character" in err


def test_a_damaged_entry_in_replay_is_an_environment_fault_and_the_run_resumes(
    qa: str, home: Path, openai_env: dict, server: FakeLLMServer, tmp_path: Path
) -> None:
    first = run_json("--limit", "4")
    cassette = tmp_path / "qa.jsonl"
    assert harness_cli("cache", "export", str(cassette), "--run", first["run_id"])[0] == 0
    # Change one stored answer by hand: its checksum no longer holds.
    con = sqlite3.connect(home / "cache" / "cache.db")
    with con:
        key, value = con.execute("SELECT key, value FROM Cache ORDER BY key LIMIT 1").fetchone()
        con.execute(
            "UPDATE Cache SET value = ? WHERE key = ?",
            (value.replace('"text":"', '"text":"edited ', 1), key),
        )
    con.close()
    server.stop()  # replay never calls, damaged entry or not

    code, out, err = harness_cli(
        "run", "--data", "qa", "--model", "openai:/gpt-test", *METRICS, "--no-mlflow", "--json",
        "--limit", "4", "--cache", "replay",
    )  # fmt: skip
    assert code == 74, err  # EX_IOERR: the environment failed, not the input
    failed = json.loads(out)
    assert f"cache entry {key} failed its checksum" in err
    assert "`harness cache verify` lists its damaged entries" in err
    assert "`harness cache prune` removes them" in err
    assert f"`harness run --resume {failed['run_id']}` goes on" in err
    assert "Traceback" not in err
    code, out, _ = harness_cli("runs", "show", failed["run_id"], "--json")
    assert json.loads(out)["status"] == "failed"

    exported = tmp_path / "again.jsonl"
    code, _, err = harness_cli("cache", "export", str(exported))
    assert code == 74 and "`harness cache verify`" in err and not exported.exists()

    # What the message says to do: find it, remove it, bring the good entry back, resume.
    code, out, _ = harness_cli("cache", "verify")
    assert code == 1 and key in out
    assert harness_cli("cache", "prune")[1] == "removed 1 entry\n"
    assert harness_cli("cache", "import", str(cassette))[0] == 0
    resumed = run_json("--resume", failed["run_id"])
    assert resumed["run_id"] == failed["run_id"] and resumed["status"] == "finished"
    assert resumed["rows"] == 4 and resumed["errors"] == 0
    assert resumed["metrics"] == first["metrics"]


def test_export_takes_a_run_name_or_a_tag_as_runs_show_does(
    qa: str, openai_env: dict, tmp_path: Path
) -> None:
    run_json("--limit", "2")  # another run's calls, which the export must leave out
    named = run_json("--limit", "3", "--param", "temperature=0.5", "--run-name", "s3")
    assert harness_cli("runs", "tag", named["run_id"], "baseline")[0] == 0
    for ref in ("s3", "baseline", named["run_id"][:6]):
        path = tmp_path / f"{ref}.jsonl"
        code, out, err = harness_cli("cache", "export", str(path), "--run", ref, "--json")
        assert code == 0, err
        assert json.loads(out)["entries"] == 3
    code, _, err = harness_cli("cache", "export", str(tmp_path / "x.jsonl"), "--run", "s4")
    assert code == 2 and err.startswith("error: no run, tag or run name 's4'")
    assert not (tmp_path / "x.jsonl").exists()


def test_refresh_calls_again_and_off_writes_nothing(
    qa: str, home: Path, openai_env: dict, server: FakeLLMServer
) -> None:
    run_json("--limit", "5")
    refreshed = run_json("--limit", "5", "--cache", "refresh")
    assert refreshed["calls"]["model"]["requests"] == 5
    assert refreshed["calls"]["model"]["cache_hits"] == 0
    assert server.stats()["requests_total"] == 10
    code, out, _ = harness_cli("cache", "stats", "--json")
    assert json.loads(out)["entries"] == 5

    off = run_json("--limit", "8", "--cache", "off")
    assert off["calls"]["model"]["requests"] == 8
    code, out, _ = harness_cli("cache", "stats", "--json")
    assert json.loads(out)["entries"] == 5  # off neither read nor wrote


def test_errors_are_never_cached(
    qa: str, home: Path, openai_env: dict, server: FakeLLMServer
) -> None:
    (home / "harness.toml").write_text("[calls]\nmax_retries = 0\n")
    server.configure(malformed_rate=1.0)  # 200 with a body nobody can parse
    failed = run_json("--limit", "4", expect=1)
    assert failed["errors"] == 4
    code, out, _ = harness_cli("cache", "stats", "--json")
    assert json.loads(out)["entries"] == 0
    server.configure(malformed_rate=0.0)
    healed = run_json("--limit", "4")
    assert healed["errors"] == 0 and healed["calls"]["model"]["requests"] == 4


def test_identical_requests_in_flight_are_sent_once(
    tmp_path: Path, home: Path, openai_env: dict, server: FakeLLMServer
) -> None:
    server.configure(latency_s=0.3)
    rows = [{"id": str(i), "question": f"Question {i % 3}?", "answer": "x"} for i in range(12)]
    path = tmp_path / "dupes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert harness_cli("data", "import", str(path), "--name", "qa")[0] == 0
    doc = run_json("--concurrency", "12")
    assert server.stats()["requests_total"] == 3
    assert doc["rows"] == 12 and doc["errors"] == 0


def test_a_killed_run_resumes_and_pays_for_nothing_twice(
    qa_file: Path, home: Path, openai_env: dict, server: FakeLLMServer, tmp_path: Path
) -> None:
    rows = [
        {"id": f"r{i:03d}", "question": f"What is item {i}?", "answer": str(i)} for i in range(80)
    ]
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert harness_cli("data", "import", str(path), "--name", "many")[0] == 0
    server.configure(latency_s=0.1)
    env = {**os.environ, **openai_env, "HARNESS_HOME": str(home)}
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--data",
        "many",
        "--model",
        "openai:/gpt-test",
        "--metric",
        "token_f1",
        "--concurrency",
        "2",
        "--no-mlflow",
    ]
    victim = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while server.stats()["requests_total"] < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)  # no chance to flush or clean up
    victim.wait()
    paid = server.stats()["requests_total"]
    assert 30 <= paid < 80

    code, out, _ = harness_cli("runs", "list", "--json")
    killed = json.loads(out)[0]
    assert killed["status"] == "interrupted"  # stored as running, by a process that is gone
    assert f"(pid {victim.pid} on " in killed["reason"]
    code, out, err = harness_cli("run", "--resume", killed["run_id"], "--json")
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["rows"] == 80 and resumed["rows_done"] == 80 and resumed["errors"] == 0
    # Every call answered before the kill came from the cache; at most the two calls in
    # flight at the kill were paid for twice.
    assert server.stats()["requests_total"] <= 80 + 2
    before = server.stats()["requests_total"]
    code, out, err = harness_cli(
        "run",
        "--data",
        "many",
        "--model",
        "openai:/gpt-test",
        "--metric",
        "token_f1",
        "--no-mlflow",
        "--json",
    )
    assert code == 0 and json.loads(out)["calls"]["model"]["requests"] == 0, err
    assert server.stats()["requests_total"] == before


def test_max_cost_stops_before_the_budget_and_still_reports(
    qa: str, home: Path, openai_env: dict, tmp_path: Path
) -> None:
    (home / "harness.toml").write_text('[prices]\n"openai:/gpt-test" = [1.0, 1.0]\n')
    report = tmp_path / "stopped.html"
    code, out, err = harness_cli(
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        "--metric",
        "token_f1",
        "--concurrency",
        "1",
        "--max-cost",
        "0.001",
        "--no-mlflow",
        "--json",
        "--report",
        str(report),
    )
    assert code == 1
    assert "--max-cost budget of $0.0010" in err and "--resume" in err
    said = err
    stopped = json.loads(out)  # the rows done are still reported on stdout
    assert stopped["status"] == "stopped"
    assert 0 < stopped["rows_done"] < stopped["rows"] == 20
    assert 0 < stopped["calls"]["model"]["cost_usd"] <= 0.001
    # ... and in the report, which is the one `harness report` writes of the stopped run.
    assert stopped["report"] == str(report)
    code, later, err = harness_cli("report", stopped["run_id"], "-o", "-")
    assert code == 0, err
    assert report.read_text(encoding="utf-8") == later
    assert f"{stopped['rows_done']:,} rows, stopped" in later
    # The way on it names: a resume with a larger budget finishes the run (a resume alone
    # stopped at the same budget again, for ever, and --max-cost with it was ignored).
    assert f"finish with `harness run --resume {stopped['run_id']} --max-cost USD`" in said
    code, out, err = harness_cli("run", "--resume", stopped["run_id"], "--json")
    assert code == 1 and json.loads(out)["rows_done"] == stopped["rows_done"]
    code, out, err = harness_cli("run", "--resume", stopped["run_id"], "--max-cost", "1", "--json")
    assert code == 0, err
    finished = json.loads(out)
    assert finished["status"] == "finished" and finished["rows_done"] == 20
