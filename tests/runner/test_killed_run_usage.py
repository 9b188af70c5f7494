"""A run killed with SIGKILL keeps the count of what it paid for: after `--resume` its usage
(requests, tokens and cost per kind of call) is every call paid once, and `--max-cost`
goes on from what the killed process spent.

The fake LLM server answers the first ``PAID`` calls and then holds every request until the
client's timeout, so the killed process pays for exactly ``PAID`` calls, and a row failed by
a timeout is stored (with the batch that writes it) before the test kills the process. The
calls answered after a run's last batch are counted too: in its usage file
(``harness.store.usage_file``), saved before each commit of answers to the cache.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from processes import harness, harness_env, import_rows, json_doc, paid, query, start, wait_for

from harness.testing import FakeLLMServer

ROWS = 40  # a model call and a judge call a row
PAID = 40  # calls the killed process is answered: half of the run's
RUN = (
    "run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--judge", "correctness",
    "--judge-model", "openai:/gpt-4o-mini", "--concurrency", "2", "--no-mlflow", "--json",
)  # fmt: skip
# No retries and a short timeout: a held request fails its row in 2.5 s, and that row is
# written (a batch goes when 2 s have passed since the last) while the process still runs.
CALLS = """[calls]
max_retries = 0
timeout_s = 2.5
"""
PAID_COUNTERS = ("requests", "input_tokens", "output_tokens")
KINDS = ("model", "judge")


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.02, max_recorded=10_000) as running:
        yield running


def usage_of(home: Path) -> dict[str, Any]:
    [(usage,)] = query(home, "SELECT usage FROM runs")
    stored: dict[str, Any] = json.loads(usage or "{}")
    return stored


def failures_stored(home: Path) -> bool:
    try:
        [(failed,)] = query(
            home,
            "SELECT (SELECT count(*) FROM outputs WHERE error IS NOT NULL) "
            "+ (SELECT count(*) FROM scores WHERE error IS NOT NULL)",
        )
    except duckdb.Error:  # the run holds the store while it writes a batch: look again
        return False
    return bool(failed)


def usage_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / ".usage").glob("*"))


def clean_run(tmp_path: Path, server: FakeLLMServer, *options: str) -> dict[str, Any]:
    """The usage of the same run done in one go, in a home of its own."""
    home = tmp_path / "clean"
    home.mkdir()
    env = harness_env(home, server)
    (home / "harness.toml").write_text(CALLS)
    import_rows(env, tmp_path, ROWS)
    code, _, err = harness(env, *RUN, *options)
    assert code == 0, err
    # Its counters were saved as its answers were cached, and the file went at its end.
    assert (home / ".usage").is_dir() and usage_files(home) == []
    server.reset()  # the request log and the fault sequence start over
    return usage_of(home)


def killed_run(home: Path, tmp_path: Path, server: FakeLLMServer, *options: str) -> str:
    """Start the run, let the server answer ``PAID`` calls, SIGKILL it once a row failed by
    a held request is stored; return the run's id."""
    env = harness_env(home, server)
    (home / "harness.toml").write_text(CALLS)
    import_rows(env, tmp_path, ROWS)
    server.configure(fault_script=["ok"] * PAID, timeout_rate=1.0, hang_s=30)
    process = start(env, *RUN, *options)
    return kill_once(
        process, lambda: failures_stored(home), "a failed row stored", home, server, PAID
    )


def kill_once(
    process: subprocess.Popen[str],
    ready: Callable[[], bool],
    what: str,
    home: Path,
    server: FakeLLMServer,
    answered: int,
) -> str:
    """SIGKILL the run once ``ready()``; check the server answered ``answered`` calls, let
    it answer the resume, and return the run's id."""
    try:
        wait_for(ready, 120, what)
    finally:
        process.kill()
        process.communicate()
    assert sum(paid(server).values()) == answered
    server.configure(fault_script=[], timeout_rate=0.0)  # the resume is answered
    [(run_id,)] = query(home, "SELECT run_id FROM runs")
    return str(run_id)


def test_a_killed_run_resumed_counts_every_call_paid_once(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    clean = clean_run(tmp_path, server)
    run_id = killed_run(home, tmp_path, server)
    # The killed process stored, with its rows, the count of every call it was answered.
    killed = usage_of(home)
    assert sum(killed.get(kind, {}).get("requests", 0) for kind in KINDS) == PAID, killed

    env = harness_env(home, server)
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    usage = usage_of(home)
    # Each call was paid once (a row failed by a held call finds its model call in the
    # cache), so the run's totals of what was paid are those of the run done in one go.
    assert sum(paid(server).values()) == 2 * ROWS and max(paid(server).values()) == 1
    for kind in KINDS:
        assert {c: usage[kind][c] for c in PAID_COUNTERS} == {
            c: clean[kind][c] for c in PAID_COUNTERS
        }, kind
        assert usage[kind]["cost_usd"] == pytest.approx(clean[kind]["cost_usd"], abs=2e-6)
        assert clean[kind]["cost_usd"] > 0  # priced: the comparison of costs says something
    # The summary and `runs show` give the same totals.
    assert json_doc(out)["calls"] == usage and clean["model"]["requests"] == ROWS
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["usage"] == usage


def resumed_to_its_budget(
    home: Path, server: FakeLLMServer, run_id: str, max_cost: float
) -> dict[str, Any]:
    """Resume the killed run (its --max-cost kept); check it stopped at the budget, and
    return the run's usage as stored."""
    env = harness_env(home, server)
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 1, err
    assert json_doc(out)["status"] == "stopped"
    assert f"stopped at the --max-cost budget of ${max_cost:.4f}" in err
    return usage_of(home)


def test_max_cost_on_resume_counts_what_the_killed_run_spent(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    clean = clean_run(tmp_path, server)
    total = clean["model"]["cost_usd"] + clean["judge"]["cost_usd"]
    # The killed process spends about half of the run's cost: the rest fits in the budget
    # only when the resume forgets that half.
    max_cost = round(0.8 * total, 6)
    run_id = killed_run(home, tmp_path, server, "--max-cost", str(max_cost))

    usage = resumed_to_its_budget(home, server, run_id, max_cost)
    spent = usage["model"]["cost_usd"] + usage["judge"]["cost_usd"]
    assert 0.5 * total < spent <= max_cost + 1e-6  # (the counters are rounded)
    # Every call the run was answered is counted: both processes' (the server's log).
    answered = sum(paid(server).values())
    assert usage["model"]["requests"] + usage["judge"]["requests"] == answered > PAID


CACHED = 10  # calls answered (5 rows) before a run killed before its first batch of rows


def killed_before_a_batch(home: Path, tmp_path: Path, server: FakeLLMServer, *options: str) -> str:
    """Start the run, let the server answer ``CACHED`` calls (well within the 2 s before
    the first batch of rows) and hold the rest, SIGKILL it once the cache holds those
    answers; return the run's id."""
    from harness.cache.store import ResponseCache

    env = harness_env(home, server)
    (home / "harness.toml").write_text("[calls]\nmax_retries = 0\ntimeout_s = 60\n")
    import_rows(env, tmp_path, ROWS)
    server.configure(fault_script=["ok"] * CACHED, timeout_rate=1.0, hang_s=60)
    process = start(env, *RUN, *options)

    def cached() -> bool:
        cache = ResponseCache(home / "cache")
        try:
            return len(cache) >= CACHED
        finally:
            cache.close()

    return kill_once(process, cached, "the answers in the cache", home, server, CACHED)


def test_a_run_killed_before_its_first_batch_keeps_the_count_of_the_calls_it_cached(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    """The calls answered after a run's last batch write are paid for and their answers
    are in the cache: they are counted (before, its stored usage counted only what its
    batches stored, and the resume took them for cache hits)."""
    clean = clean_run(tmp_path, server)
    run_id = killed_before_a_batch(home, tmp_path, server)
    assert usage_files(home) == [f"{run_id}.usage"]
    env = harness_env(home, server)
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    shown = json_doc(out)
    assert shown["status"] == "interrupted"
    assert sum(shown["usage"][kind]["requests"] for kind in KINDS) == CACHED, shown["usage"]
    code, out, err = harness(env, "runs", "list", "--json")
    assert code == 0, err
    assert json_doc(out)[0]["usage"] == shown["usage"]

    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    usage = usage_of(home)
    assert sum(paid(server).values()) == 2 * ROWS and max(paid(server).values()) == 1
    for kind in KINDS:
        assert {c: usage[kind][c] for c in PAID_COUNTERS} == {
            c: clean[kind][c] for c in PAID_COUNTERS
        }, (kind, usage[kind], clean[kind])
        assert usage[kind]["cost_usd"] == pytest.approx(clean[kind]["cost_usd"], abs=2e-6)
    # The cached answers were hits for the resume alone: they are the run's requests.
    here = json_doc(out)["calls_in_resume"]
    assert sum(here[kind]["cache_hits"] for kind in KINDS) == CACHED
    assert usage_files(home) == []  # the resume stored its end, then removed the file


def test_max_cost_on_resume_counts_the_calls_a_killed_run_cached(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    clean = clean_run(tmp_path, server)
    total = clean["model"]["cost_usd"] + clean["judge"]["cost_usd"]
    killed_cost = total * CACHED / (2 * ROWS)  # the calls are alike: an eighth of the cost
    # The resume pays for the other seven eighths: they fit in this budget only when it
    # forgets what the killed process spent.
    max_cost = round(total - killed_cost / 2, 6)
    run_id = killed_before_a_batch(home, tmp_path, server, "--max-cost", str(max_cost))

    usage = resumed_to_its_budget(home, server, run_id, max_cost)
    spent = usage["model"]["cost_usd"] + usage["judge"]["cost_usd"]
    assert total - killed_cost < spent <= max_cost + 1e-6
    # Every call the run was answered is counted: both processes' (the server's log).
    answered = sum(paid(server).values())
    assert usage["model"]["requests"] + usage["judge"]["requests"] == answered < 2 * ROWS
    assert usage_files(home) == []  # a stopped run's end is stored too


def test_runs_delete_removes_the_usage_file_a_killed_run_left(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    run_id = killed_before_a_batch(home, tmp_path, server)
    assert usage_files(home) == [f"{run_id}.usage"]
    code, _, err = harness(harness_env(home, server), "runs", "delete", run_id)
    assert code == 0, err
    assert usage_files(home) == []
