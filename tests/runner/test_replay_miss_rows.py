"""A ``--cache replay`` run whose cache lacks some calls, through the CLI against the fake
LLM server: its summary, `runs show` and `--json` agree on the rows that missed, and
`--resume` runs them again once the cache holds their calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import (
    CALLS_FAILED,
    ROW_LINE,
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

ROWS = 6


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.01) as running:
        yield running


@pytest.fixture
def env(home: Path, tmp_path: Path, server: FakeLLMServer) -> dict[str, str]:
    env = harness_env(home, server)
    import_rows(env, tmp_path, ROWS)
    return env


def test_a_replay_miss_stores_its_row_as_failed_and_the_summary_agrees(
    home: Path, env: dict[str, str]
) -> None:
    """Two rows cached, then a replay of all six: the first miss stops the run. The rows
    that missed were not stored, so the summary said "(2 of 6 rows, 0 failed)" above
    "model calls: ..., 2 failed" (every row in flight had missed). The row that missed is
    stored as failed now, its error the miss; the counts agree everywhere and `--resume`
    runs it again."""
    code, _, err = harness(env, *RUN, "--limit", "2")  # caches the first two rows' calls
    assert code == 0, err
    code, out, err = harness(env, *RUN, "--cache", "replay", "--concurrency", "1")
    assert code == 1, err  # a miss still fails the run
    assert last_line(err).startswith("error: --cache replay: the model call for row ")
    assert "Traceback" not in err
    run_id = out.split()[1].rstrip(":")
    stored, failed, calls_failed = said_counts(out)
    assert failed == calls_failed >= 1
    assert 2 < stored < ROWS  # the cached rows, then the rows that missed; none after
    errors = query(
        home, "SELECT error FROM outputs WHERE run_id = ? AND error IS NOT NULL", [run_id]
    )
    assert len(errors) == failed
    assert all(e.startswith("--cache replay: the model call for row ") for (e,) in errors)
    assert query(home, "SELECT count(*) FROM outputs WHERE run_id = ?", [run_id]) == [(stored,)]

    code, shown, err = harness(env, "runs", "show", run_id)
    assert code == 0, err
    assert shown.startswith(f"run {run_id}  failed  ")
    assert shown.splitlines()[0].endswith(f"  {stored}/{ROWS} rows, {failed} failed")
    shown_calls = CALLS_FAILED.search(shown)
    assert shown_calls is not None and int(shown_calls.group(1)) == failed
    # The way on it names: a resume replays too, so it needs the calls in the cache first
    # (it said "go on with `harness run --resume RUN`", which missed the same calls again).
    assert shown.splitlines()[-1] == (
        "once the cache holds the calls it missed (a run without --cache replay makes them, "
        f"or import their cassette), go on with `harness run --resume {run_id}`"
    )
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    document = json_doc(out)
    assert document["status"] == "failed"
    assert document["rows_done"] == stored and document["errors"] == failed
    assert document["usage"]["model"]["errors"] == failed

    code, out, err = harness(env, "run", "--resume", run_id)  # at once: it misses again
    assert code == 1 and "--cache replay: the model call for row " in last_line(err)
    # Once the cache holds every call, the resume runs the failed rows and the rest again.
    code, _, err = harness(env, *RUN)
    assert code == 0, err
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    resumed = json_doc(out)
    assert resumed["status"] == "finished"
    assert resumed["rows_done"] == ROWS and resumed["errors"] == 0
    assert query(
        home, "SELECT count(*) FROM outputs WHERE run_id = ? AND error IS NULL", [run_id]
    ) == [(ROWS,)]


def test_a_judge_replay_miss_keeps_the_models_answer_and_fails_the_judges_score(
    home: Path, env: dict[str, str]
) -> None:
    """A replay whose judge model's calls are not cached: the row's model answer (cached)
    is stored, the judge's score holds the miss as its error, and the summary counts one
    failed row, one failed judge call and a failed judge score, not a failed model row."""
    judged = ("--judge", "correctness", "--concurrency", "1")
    code, _, err = harness(env, *RUN, *judged, "--judge-model", "openai:/gpt-4o-mini")
    assert code == 0, err
    again = (*RUN, *judged, "--judge-model", "openai:/gpt-4o")
    code, out, err = harness(env, *again, "--cache", "replay")
    assert code == 1, err
    assert last_line(err).startswith("error: --cache replay: the judge call for row ")
    run_id = out.split()[1].rstrip(":")
    rows = ROW_LINE.search(out)
    judge_calls = re.search(r"^judge calls: .*, (\d+) failed;", out, re.MULTILINE)
    assert rows is not None and judge_calls is not None, out
    failed = int(rows.group(3))
    assert failed == int(judge_calls.group(1)) >= 1
    assert f"failed: {failed} judge score" in out and "model row" not in out
    assert not CALLS_FAILED.search(out)  # the model's calls all came from the cache
    outputs = query(home, "SELECT output, error FROM outputs WHERE run_id = ?", [run_id])
    assert len(outputs) == int(rows.group(1))
    assert all(output and error is None for output, error in outputs)
    errors = query(
        home,
        "SELECT error FROM scores WHERE run_id = ? AND metric = 'correctness' "
        "AND error IS NOT NULL",
        [run_id],
    )
    assert len(errors) == failed
    assert all(e.startswith("--cache replay: the judge call for row ") for (e,) in errors)

    code, _, err = harness(env, *again)  # caches the judge's calls
    assert code == 0, err
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    resumed = json_doc(out)
    assert resumed["status"] == "finished"
    assert resumed["rows_done"] == ROWS and resumed["errors"] == 0
