"""`harness run --dry-run`: calls, tokens and cost estimated, nothing sent or written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    return server


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path, home: Path) -> None:
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err


RUN = (
    "run",
    "--data",
    "qa",
    "--model",
    "openai:/gpt-4o-mini",
    "--limit",
    "10",
    "--metric",
    "exact_match",
    "--no-mlflow",
)


def dry_run(*extra: str) -> dict[str, object]:
    code, out, err = invoke(*RUN, "--dry-run", "--json", *extra)
    assert code == 0, err
    return dict(json.loads(out))


def test_a_dry_run_sends_and_writes_nothing(fake: FakeLLMServer, qa: None, home: Path) -> None:
    doc = dry_run(
        "--judge",
        "correctness",
        "--judge-samples",
        "2",
        "--judge-model",
        "openai:/gpt-4o",
        "--param",
        "max_tokens=20",
    )
    calls = doc["calls"]
    assert isinstance(calls, dict)
    model, judge = calls["model"], calls["judge"]
    assert (model["calls"], model["cached"], model["to_send"]) == (10, 0, 10)
    assert model["output_tokens"] == 200  # max_tokens bounds each answer
    assert model["input_tokens"] > 10 * 50  # PubMedQA prompts carry their abstracts
    assert (judge["calls"], judge["to_send"]) == (20, 20)  # 10 rows x 2 samples
    expected = (
        model["input_tokens"] * 0.15
        + model["output_tokens"] * 0.60
        + judge["input_tokens"] * 2.50
        + judge["output_tokens"] * 10.00
    ) / 1e6
    assert doc["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert fake.stats()["requests_total"] == 0
    assert not (home / "cache").exists()
    code, out, _ = invoke("runs", "list", "--json")
    assert code == 0 and json.loads(out) == []


def test_cached_calls_are_free(
    fake: FakeLLMServer, qa: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = invoke(*RUN, "--limit", "4")
    assert code == 0, err
    sent = fake.stats()["requests_total"]
    doc = dry_run("--judge", "correctness", "--judge-model", "openai:/gpt-4o-mini")
    calls = doc["calls"]
    assert isinstance(calls, dict)
    assert (calls["model"]["cached"], calls["model"]["to_send"]) == (4, 6)
    assert calls["judge"]["calls"] == 10
    assert fake.stats()["requests_total"] == sent


def test_unknown_prices_and_the_text_report(fake: FakeLLMServer, qa: None) -> None:
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "openai:/my-finetune", "--limit", "3", "--dry-run"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "dry run: openai:/my-finetune on " + lines[0].split(" on ")[1]
    assert lines[1].startswith("model calls: 3 (0 cached, 0 local, 3 to send); ~")
    assert lines[1].endswith("; unknown price")
    assert lines[2].startswith("estimated cost: unknown")
    code, _, err = invoke("run", "--data", "qa", "--model", "echo", "--dry-run", "--resume", "x")
    assert code == 2 and "cannot be used with --resume" in err


def test_a_dry_run_warns_when_max_cost_would_stop_the_run(fake: FakeLLMServer, qa: None) -> None:
    """It estimated ~$3.43 under --max-cost 2.00 and said nothing of the budget."""
    cost = dry_run()["cost_usd"]
    assert isinstance(cost, float) and cost > 0.0001
    code, out, err = invoke(*RUN, "--dry-run", "--max-cost", "0.0001")
    assert code == 0, err
    assert out.splitlines()[3] == (
        f"warning: the estimate (~${cost:.4f}) is over --max-cost $0.0001: the run would stop "
        "when it has spent that (`--resume` with a larger --max-cost goes on)"
    )
    over = dry_run("--max-cost", "0.0001")
    assert (over["max_cost_usd"], over["over_max_cost"]) == (0.0001, True)
    under = dry_run("--max-cost", "5")
    assert (under["max_cost_usd"], under["over_max_cost"]) == (5.0, False)
    code, out, _ = invoke(*RUN, "--dry-run", "--max-cost", "5")
    assert code == 0 and "warning" not in out
    assert (dry_run()["max_cost_usd"], dry_run()["over_max_cost"]) == (None, False)


def test_the_estimates_counts_have_thousands_separators() -> None:
    """`--dry-run` on 1,000 rows printed "model calls: 1000 (...); ~385575 tokens in"."""
    from harness.runner.estimate import CallEstimate, RunEstimate

    calls = CallEstimate(calls=1000, cached=250, local=0, input_tokens=385575,
                         output_tokens=256000, cost_usd=None)  # fmt: skip
    estimate = RunEstimate("pubmedqa", "openai:/gpt-4o", None, 1000, calls, CallEstimate())
    assert estimate.lines()[:2] == [
        "dry run: openai:/gpt-4o on pubmedqa, 1,000 rows; nothing sent",
        "model calls: 1,000 (250 cached, 0 local, 750 to send); ~385,575 tokens in / "
        "~256,000 out; unknown price",
    ]


def test_a_runs_call_counts_have_thousands_separators(capsys: pytest.CaptureFixture[str]) -> None:
    """A run of 1,000 rows said "model calls: 0 sent, 0 from cache, 1000 local" and a 50-row
    one "tokens 11072 in", where its dry run and its HTML report say 1,000 and 11,072."""
    from harness.cli.judges import _print_calls
    from harness.cli.output import call_lines

    calls = {"model": {"requests": 1200, "cache_hits": 3400, "local_calls": 1000,
                       "errors": 1500, "input_tokens": 11072, "output_tokens": 2000}}  # fmt: skip
    here = {"model": {"requests": 1000, "cache_hits": 3400, "local_calls": 1000,
                      "errors": 1000, "input_tokens": 11072, "output_tokens": 2000}}  # fmt: skip
    assert call_lines(calls) == [
        "model calls: 1,200 sent, 3,400 from cache, 1,000 local, 1,500 failed; "
        "tokens 11,072 in / 2,000 out"
    ]
    assert call_lines(calls, here) == [
        "model calls: 1,200 sent (1,000 in this resume), 3,400 from cache, 1,000 local, "
        "1,500 failed (1,000 in this resume); tokens 11,072 in / 2,000 out"
    ]
    _print_calls({"judge": {**calls["model"], "local_calls": 0}})
    assert capsys.readouterr().out == (
        "judge calls: 1,200 sent, 3,400 from cache; tokens 11,072 in / 2,000 out\n"
    )


def test_a_replay_dry_run_warns_of_the_calls_the_cache_lacks(
    fake: FakeLLMServer, qa: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dry-run --cache replay` said "10 to send ... ~$0.0004" and nothing else, when a
    replay sends nothing and fails at the first call the cache lacks."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = invoke(*RUN, "--limit", "4")
    assert code == 0, err
    doc = dry_run("--cache", "replay")
    assert (doc["cache"], doc["replay_misses"]) == ("replay", 6)
    code, out, err = invoke(*RUN, "--dry-run", "--cache", "replay")
    assert code == 0, err
    assert (
        "warning: 6 calls not in the cache: with --cache replay the run would fail at the "
        "first, sending nothing (it names what differs from the closest cached entry)"
    ) in out.splitlines()
    assert (dry_run()["cache"], dry_run()["replay_misses"]) == ("use", 0)
    code, out, _ = invoke(*RUN, "--dry-run", "--limit", "4", "--cache", "replay")
    assert code == 0 and "warning" not in out
