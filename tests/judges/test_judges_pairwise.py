"""The pairwise judge: both orders per row, ties when they disagree, stored outputs of two runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from judge_helpers import judge_bodies

from harness.cli import COMMANDS, cli
from harness.config import resolve_home
from harness.errors import ConfigError
from harness.judges import compare_runs
from harness.judges.pairwise import pairwise_messages
from harness.runner.config import RunConfig
from harness.runner.run import run_eval
from harness.store.runs import load_outputs
from harness.testing import FakeLLMServer


def model_run(home: Path, model: str, prompt: str | None = None, data: str = "qa") -> str:
    return run_eval(
        RunConfig(data=data, model=model, prompt=prompt, metrics=["word_count"], mlflow=False),
        home=home,
    ).run_id


@pytest.fixture
def two_runs(qa: str, home: Path) -> tuple[str, str]:
    """A: the long expected answers; B: two context sentences. Lengths differ per row."""
    return (
        model_run(home, "python:harness_test_models:answer_expected"),
        model_run(home, "python:harness.baselines:context_overlap"),
    )


def test_messages_put_the_outputs_in_the_order_asked() -> None:
    ab = pairwise_messages("Q?", "first answer", "second answer", expected=("E",), context="C")
    ba = pairwise_messages("Q?", "second answer", "first answer", expected=("E",), context="C")
    assert ab[1]["content"].endswith(
        "Question:\nQ?\n\nContext:\nC\n\nReference answer:\nE\n\n"
        "Response 1:\nfirst answer\n\nResponse 2:\nsecond answer"
    )
    assert "Response 1:\nsecond answer" in ba[1]["content"]
    assert ab[0] == ba[0] and '"winner": "1" or "2" or "tie"' in ab[0]["content"]


def test_a_consistent_judge_picks_the_same_run_in_both_orders(
    two_runs: tuple[str, str], home: Path
) -> None:
    run_a, run_b = two_runs
    result = compare_runs(run_a, run_b, judge_model="python:fake_judges:prefers_longer", home=home)
    db = resolve_home(home).db_path
    a = load_outputs(db, run_a).set_index("id")["output"]
    b = load_outputs(db, run_b).set_index("id")["output"]
    expected = {i: "a" if len(a[i]) > len(b[i]) else "b" for i in a.index}
    assert {r.example_id: r.winner for r in result.rows} == expected
    assert all(r.consistent and r.a_first == r.b_first == r.winner for r in result.rows)
    totals = result.totals
    wins_a = sum(w == "a" for w in expected.values())
    assert 0 < wins_a < 20  # the fixture really does mix winners
    assert totals == {
        "compared": 20,
        "wins_a": wins_a,
        "wins_b": 20 - wins_a,
        "ties": 0,
        "inconsistent": 0,
        "errors": 0,
        "skipped": 0,
        "win_rate_a": wins_a / 20,
    }
    assert result.calls["judge"]["local_calls"] == 40  # two orders per row


def test_a_position_biased_judge_gives_ties(two_runs: tuple[str, str], home: Path) -> None:
    result = compare_runs(*two_runs, judge_model="python:fake_judges:prefers_first", home=home)
    assert {(r.a_first, r.b_first, r.winner, r.consistent) for r in result.rows} == {
        ("a", "b", "tie", False)
    }
    totals = result.totals
    assert (totals["ties"], totals["inconsistent"], totals["win_rate_a"]) == (20, 20, 0.5)


def test_rows_both_runs_answered_alike_are_ties_without_a_judge_call(
    two_runs: tuple[str, str], home: Path
) -> None:
    # The same model twice: every row's two outputs are the same text, so the two orders
    # are one prompt, and a judge picking "1" there prefers no run and shows no bias.
    again = model_run(home, "python:harness_test_models:answer_expected")
    result = compare_runs(
        two_runs[0], again, judge_model="python:fake_judges:prefers_first", home=home
    )
    assert {(r.a_first, r.b_first, r.winner, r.consistent) for r in result.rows} == {
        ("tie", "tie", "tie", True)
    }
    totals = result.totals
    assert (totals["ties"], totals["inconsistent"], totals["errors"]) == (20, 0, 0)
    assert result.calls["judge"]["local_calls"] == 0


def test_against_the_server_both_orders_are_sent_and_cached(
    qa: str, home: Path, server: FakeLLMServer
) -> None:
    # The fake model answers with the first sentence of its prompt: "Answer: ALPHA ...".
    run_a = model_run(home, "openai:/model", prompt="ALPHA {input}")
    run_b = model_run(home, "openai:/model", prompt="BETA {input}")
    server.configure(
        replies={
            "Response 1:\nAnswer: ALPHA": '{"rationale": "A is better", "winner": "1"}',
            "Response 1:\nAnswer: BETA": '{"rationale": "A is better", "winner": "2"}',
        }
    )
    server.reset()
    result = compare_runs(run_a, run_b, judge_model="openai:/judge", home=home)
    assert result.totals["wins_a"] == 20 and result.totals["inconsistent"] == 0
    bodies = judge_bodies(server)
    assert len(bodies) == 40 and result.calls["judge"]["requests"] == 40
    firsts = [b["messages"][1]["content"].split("Response 1:\n")[1][:13] for b in bodies]
    assert sorted(set(firsts)) == ["Answer: ALPHA", "Answer: BETA "]
    assert all(b["response_format"] == {"type": "json_object"} for b in bodies)

    again = compare_runs(run_a, run_b, judge_model="openai:/judge", home=home)
    assert again.calls["judge"]["requests"] == 0 and again.calls["judge"]["cache_hits"] == 40
    assert [r.winner for r in again.rows] == [r.winner for r in result.rows]


def test_unparseable_answers_are_row_errors(two_runs: tuple[str, str], home: Path) -> None:
    result = compare_runs(*two_runs, judge_model="python:fake_judges:garbage", home=home)
    assert result.totals["errors"] == 20 and result.totals["win_rate_a"] is None
    assert all(r.winner is None and "no usable verdict" in r.error for r in result.rows)


def test_rows_missing_from_a_run_are_skipped(two_runs: tuple[str, str], home: Path) -> None:
    short = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            metrics=["word_count"],
            limit=5,
            mlflow=False,
        ),
        home=home,
    ).run_id
    result = compare_runs(
        short, two_runs[1], judge_model="python:fake_judges:prefers_longer", home=home
    )
    assert result.totals["compared"] == 5 and result.totals["skipped"] == 15


def test_runs_on_different_datasets_are_refused(two_runs: tuple[str, str], home: Path) -> None:
    from harness.data import import_dataframe

    import_dataframe(pd.DataFrame({"input": ["q"], "expected": ["a"]}), name="other", home=home)
    other = model_run(home, "echo", data="other")
    with pytest.raises(ConfigError, match="different datasets"):
        compare_runs(two_runs[0], other, judge_model="python:fake_judges:prefers_longer", home=home)


def test_compare_cli(two_runs: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "judges", "harness.cli.judges:judges")
    run_a, run_b = two_runs
    args = ["judges", "compare", run_a, run_b, "--judge-model", "python:fake_judges:prefers_first"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["run_a"], doc["run_b"], doc["ties"], doc["inconsistent"]) == (run_a, run_b, 20, 20)
    assert len(doc["rows"]) == 20 and doc["rows"][0]["winner"] == "tie"
    text = CliRunner().invoke(cli, [*args, "--rows"])
    assert text.exit_code == 0 and "inconsistent" in text.stdout and "tie" in text.stdout
    missing = CliRunner().invoke(
        cli,
        ["judges", "compare", run_a, "nope", "--judge-model", "python:fake_judges:prefers_first"],
    )
    assert missing.exit_code == 2 and "no run, tag or run name 'nope'" in missing.stderr


def test_compare_cli_takes_tags_and_run_names(qa: str, home: Path) -> None:
    """RUN_A and RUN_B are found as `runs show` and `compare` find a run (they said
    "no run 'NAME'"), with the same note when several runs have the name."""
    config = RunConfig(data="qa", model="echo", metrics=["word_count"], mlflow=False)
    tagged = run_eval(config, home=home).run_id
    older = run_eval(dataclasses.replace(config, run_name="overlap"), home=home).run_id
    newest = run_eval(
        dataclasses.replace(config, model="python:harness.baselines:context_overlap",
                            run_name="overlap"), home=home
    ).run_id  # fmt: skip
    assert CliRunner().invoke(cli, ["runs", "tag", tagged, "echoed"]).exit_code == 0
    result = CliRunner().invoke(
        cli,
        ["judges", "compare", "echoed", "overlap", "--json",
         "--judge-model", "python:fake_judges:prefers_first"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["run_a"], doc["run_b"], doc["compared"]) == (tagged, newest, 20)
    assert result.stderr.startswith(f"note: 2 runs are named 'overlap'; using the newest, {newest}")
    assert older != newest


def test_compare_cli_exits_1_when_judge_calls_fail(
    two_runs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(COMMANDS, "judges", "harness.cli.judges:judges")
    run_a, run_b = two_runs
    args = ["judges", "compare", run_a, run_b, "--judge-model", "python:fake_judges:broken"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # the document still comes first, on stdout
    assert doc["errors"] == 20 and doc["compared"] == 20
    assert result.stderr == (
        "error: 20 of 20 rows could not be judged (20 x judge call failed: "
        "python:fake_judges:broken raised RuntimeError: judge backend is down); "
        "the totals leave them out\n"
    )


def test_the_fake_servers_own_answers_judge_every_pair(
    two_runs: tuple[str, str], home: Path, server: FakeLLMServer
) -> None:
    """With no replies configured, the fake server answers a pairwise judge in its own
    format ("winner": "1" or "2" or "tie"), as README's tour promises for any judge; it
    answered score-or-verdict JSON, and every row failed with no usable verdict."""
    run_a, run_b = two_runs
    result = compare_runs(run_a, run_b, judge_model="openai:/judge", home=home)
    assert result.totals["errors"] == 0 and len(result.rows) == 20
    assert {r.winner for r in result.rows} <= {"a", "b", "tie"}
    assert len({r.winner for r in result.rows}) > 1  # the answer depends on the pair
    again = compare_runs(run_a, run_b, judge_model="openai:/judge", home=home)
    assert [r.winner for r in again.rows] == [r.winner for r in result.rows]
