"""Failed judge calls are failures: counted per kind, explained, exit 1, and resumable; a
judge server that refuses the first connection stops the run at once, naming its URL."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer

JUDGED = (
    "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
    "--metric", "exact_match", "--judge", "answer_relevance", "--no-mlflow",
)  # fmt: skip


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return str(json.loads(out)["ref"])


def test_a_judge_that_fails_every_call_fails_the_run_and_resume_retries_it(
    qa: str, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    judge = ("--judge-model", "python:harness_test_models:judge_fails_while_flagged")
    code, out, err = invoke(*JUDGED, *judge, "--json", env=env)
    assert code == 1
    document = json.loads(out)
    reason = (
        "judge call failed: python:harness_test_models:judge_fails_while_flagged raised "
        "RuntimeError: judge backend exploded"
    )
    assert document["errors"] == 20  # rows with a failed call
    assert document["failures"] == {"judge": {"failed": 20, "reasons": [[reason, 20]]}}
    assert document["calls"]["judge"]["errors"] == 20
    assert document["metrics"]["answer_relevance"]["count"] == 0
    assert err == (
        f"error: 20 of 20 rows failed (judge: 20 scores: 20 x {reason}); "
        f"retry them with `harness run --resume {document['run_id']}`\n"
    )
    run_id = document["run_id"]
    code, out, _ = invoke("runs", "show", run_id)
    assert code == 0
    assert "20 failed" in out and "failed: 20 judge scores" in out and f"20 x {reason}" in out
    assert f"go on with `harness run --resume {run_id}`" in out  # as the run's error said

    code, out, err = invoke(*JUDGED, *judge, env=env)  # the summary says it too
    assert code == 1 and "failed: 20 judge scores" in out and "20 failed" in out

    flag.unlink()  # the judge recovers: --resume asks it again (the model answers are kept)
    code, out, err = invoke("run", "--resume", run_id, "--json", env=env)
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["errors"] == 0 and resumed["failures"] == {}
    assert resumed["metrics"]["answer_relevance"]["count"] == 20


def test_a_refused_judge_server_stops_the_run_at_once_naming_its_url(
    qa: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as bound:  # bound, never listening: the port refuses, and is ours
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/v1"
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        code, out, err = invoke(*JUDGED, "--judge-model", "openai:/judge", "--json")
    assert code == 1
    document = json.loads(out)
    run_id = document["run_id"]
    refused = (
        f"openai:/judge: nothing is listening at {url} (connection refused): is the server "
        "running, and is its base URL right"
    )
    assert err == (
        f"error: {refused}; run {run_id} stopped; `harness run --resume {run_id}` goes on "
        "once it answers\n"
    )
    assert document["status"] == "failed" and document["reason"] == refused
    assert document["calls"]["judge"]["retries"] == 0  # failed fast: no backoff
    assert document["calls"]["judge"]["errors"] >= 1  # ...and counted as failed calls
    code, out, _ = invoke("runs", "show", run_id)
    assert f"reason: {refused}" in " ".join(out.split())
    # The base URL is not the run's: the resume calls the server its environment names
    # (README, "When a run is interrupted or fails"), so the fixed URL is the one used.
    with FakeLLMServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        code, out, err = invoke("run", "--resume", run_id, "--json")
        assert code == 0, err
        assert fake.stats()["requests_total"] == json.loads(out)["calls"]["judge"]["requests"] > 0


def test_a_replay_miss_is_stored_as_the_run_s_reason(qa: str) -> None:
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "openai:/gpt-test", "--cache", "replay", "--no-mlflow",
        "--json",
    )  # fmt: skip
    assert code == 1 and err.startswith("error: --cache replay: the model call for row ")
    assert json.loads(out)["calls"]["model"]["errors"] >= 1  # a failed call, counted
    code, out, _ = invoke("runs", "list", "--json")
    [run] = json.loads(out)
    assert run["status"] == "failed"
    assert run["reason"].startswith("--cache replay: the model call for row ")
    code, out, _ = invoke("runs", "show", run["run_id"])
    assert "reason: --cache replay: the model call for row " in " ".join(out.split())


def test_a_run_stopped_before_any_row_prints_its_error_and_no_empty_table(
    qa: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model server that refuses the first call, or a replay miss on the first row, once
    printed the head of an empty metrics table and a `runs show --rows` of no rows before
    the error; now the run's line, then the error (and `runs show` prints no empty table
    either). The rows whose calls were refused, the row the replay missed, are stored as
    failed (the refusal, the miss their error), so the line counts them as the calls do."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/v1"
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        run = ("run", "--data", "qa", "--model", "openai:/gpt-test", "--metric",
               "exact_match", "--no-mlflow")  # fmt: skip
        for extra, reason, stored, way in [
            (
                (),
                f"openai:/gpt-test: nothing is listening at {url} (connection refused)",
                None,
                "go on with `harness run --resume {}`",
            ),
            (
                ("--cache", "replay"),
                "--cache replay: the model call for row ",
                1,
                "once the cache holds the calls it missed (a run without --cache replay makes "
                "them, or import their cassette), go on with `harness run --resume {}`",
            ),
        ]:
            code, out, err = invoke(*run, *extra)
            assert code == 1
            line, count, failed, why, rows = out.splitlines()
            # each row in flight made one failed call (refused), or the first missed
            found = re.fullmatch(
                r"run [0-9a-f]{12}: openai:/gpt-test on qa@[0-9a-f]{12} \((\d+)( of \d+)? "
                r"rows, (\d+) failed, [0-9.]+ s\)",
                line,
            )
            assert found is not None and found[1] == found[3], out
            n = int(found[1])
            assert n == (stored or n) >= 1
            assert re.fullmatch(rf"model calls: 0 sent, 0 from cache, {n} failed.*", count)
            assert failed == ("failed: 1 model row" if n == 1 else f"failed: {n} model rows")
            assert why.startswith(f"  {n} x {reason}")
            assert rows.startswith("rows: harness runs show ")
            assert err.startswith(f"error: {reason}") and err.count("\n") == 1
            # `runs show` prints no empty table either: the head, then what failed
            run_id = line.split()[1].rstrip(":")
            code, shown, _ = invoke("runs", "show", run_id)
            assert code == 0
            head, reason_line, *rest = shown.splitlines()
            assert head.endswith(f" rows, {n} failed") and reason_line.startswith("reason: ")
            assert rest == [count, failed, why, way.format(run_id)]


def test_resume_asks_again_a_judge_whose_cached_answers_could_not_be_read(qa: str) -> None:
    """An answer with no usable verdict is a good call, so it is cached: a resume read the
    same answers again and failed the same way, while the error said `--resume` retries
    them. A resume asks those judges again; its other calls still come from the cache."""
    from harness.testing import FakeLLMServer

    with FakeLLMServer(replies=["no verdict in this"]) as server:
        env = {"OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "sk-judge-test"}
        judged = (*JUDGED, "--judge-model", "openai:/judge", "--limit", "3", "--json")
        code, out, _ = invoke(*judged, env=env)
        assert code == 1
        first = json.loads(out)
        assert first["errors"] == 3
        [[reason, count]] = first["failures"]["judge"]["reasons"]
        assert reason.startswith("no usable verdict after 2 repair(s)") and count == 3
        asked = server.stats()["requests_total"]
        assert asked == 9  # three rows, each asked once and repaired twice
        server.configure(replies=[])  # the judge answers judge-shaped JSON from now on
        code, out, err = invoke("run", "--resume", first["run_id"], "--json", env=env)
        assert code == 0, err
        resumed = json.loads(out)
        assert resumed["errors"] == 0
        assert resumed["metrics"]["answer_relevance"]["count"] == 3
        assert server.stats()["requests_total"] == asked + 3  # asked again, once per row


def test_the_progress_counts_a_row_whose_judge_failed_as_an_error(
    qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress line said 'errors' for the rows whose model call failed only: a run
    whose judge failed on every row showed no errors while it ran, then ended '20 of 20
    rows failed'. It counts a failed row as the run's summary does (model or judge)."""
    from typing import Any

    from harness.runner.config import RunConfig
    from harness.runner.progress import NullProgress
    from harness.runner.run import run_eval

    class Seen(NullProgress):
        errors: list[Any] = []

        def advance(self, n: int = 1, **fields: Any) -> None:
            self.errors.append(fields.get("errors"))

    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    seen = Seen()
    result = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            judges=["answer_relevance"],
            judge_model="python:harness_test_models:judge_fails_while_flagged",
            metrics=["exact_match"],
            mlflow=False,
        ),
        home=home,
        progress=seen,
    )
    assert result.errors == 20
    assert seen.errors[-1] == 20 and len(seen.errors) == 20
