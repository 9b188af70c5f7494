"""A model server that refuses the first connection stops the run, through the CLI: the
rows whose calls it refused are stored as failed, so the summary, `--json` and `runs show`
count the same failures as the calls, and `--resume` runs them again once it answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import (
    CALLS_FAILED,
    harness,
    harness_env,
    import_rows,
    json_doc,
    last_line,
    query,
    said_counts,
)
from processes import QA_RUN as RUN

from harness.testing import FakeLLMServer

ROWS = 20


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A base URL on a loopback port that is bound, never listening: it refuses, and is ours."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}/v1"


@pytest.fixture
def env(home: Path, tmp_path: Path, refused_url: str) -> dict[str, str]:
    env = harness_env(home, OPENAI_BASE_URL=refused_url)
    import_rows(env, tmp_path, ROWS)
    return env


def test_a_refused_server_stores_the_rows_it_refused_as_failed_and_the_counts_agree(
    home: Path, env: dict[str, str], refused_url: str
) -> None:
    """The run stopped at the first refusal, and the rows in flight (each refused) were
    not stored: it printed "(0 of 20 rows, 0 failed)" above "model calls: ..., 2 failed",
    and `runs show` said "0/20 rows, 0 failed". Those rows are stored as failed now, the
    refusal their error; the counts agree everywhere, the exit code is still 1, and
    `--resume` runs them again once a server answers."""
    code, out, err = harness(env, *RUN, "--concurrency", "1")
    assert code == 1, err
    refused = f"nothing is listening at {refused_url} (connection refused)"
    assert refused in last_line(err) and "Traceback" not in err
    run_id = out.split()[1].rstrip(":")
    stored, failed, calls_failed = said_counts(out)
    assert 1 <= stored == failed == calls_failed < ROWS  # the rows in flight, none after
    assert "failed: " + (f"{failed} model rows" if failed > 1 else "1 model row") in out
    errors = query(home, "SELECT error FROM outputs WHERE run_id = ?", [run_id])
    assert len(errors) == stored and all(refused in e for (e,) in errors)

    code, shown, err = harness(env, "runs", "show", run_id)
    assert code == 0, err
    assert shown.startswith(f"run {run_id}  failed  ")
    assert shown.splitlines()[0].endswith(f"  {stored}/{ROWS} rows, {failed} failed")
    shown_calls = CALLS_FAILED.search(shown)
    assert shown_calls is not None and int(shown_calls.group(1)) == failed
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    document = json_doc(out)
    assert document["status"] == "failed" and refused in document["reason"]
    assert document["rows_done"] == stored and document["errors"] == failed
    assert document["usage"]["model"]["errors"] == failed

    code, out, err = harness(env, *RUN, "--concurrency", "1", "--json")  # the run's own --json
    assert code == 1, err
    document = json_doc(out)
    assert document["rows_done"] == document["errors"] >= 1
    assert document["errors"] == document["calls"]["model"]["errors"]

    with FakeLLMServer() as server:  # the server is up: the resume runs every row
        env["OPENAI_BASE_URL"] = server.openai_base_url
        code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    resumed = json_doc(out)
    assert resumed["status"] == "finished"
    assert resumed["rows_done"] == ROWS and resumed["errors"] == 0
    assert query(
        home, "SELECT count(*) FROM outputs WHERE run_id = ? AND error IS NULL", [run_id]
    ) == [(ROWS,)]
