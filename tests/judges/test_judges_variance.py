"""--judge-samples: distinct cache entries, per-row and overall spread, self-disagreement flags."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from judge_helpers import judge_bodies

from harness.config import resolve_home
from harness.judges.variance import row_stats, sample_stats
from harness.runner.config import RunConfig
from harness.runner.run import run_eval
from harness.runner.summary import aggregate_scores, results_table
from harness.store.runs import load_outputs, load_scores
from harness.testing import FakeLLMServer


def scores_frame(rows: list[tuple[str, str, int, float | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "example_id": e,
                "metric": m,
                "sample": s,
                "value": v,
                "error": err,
                "source": "llm_judge",
                "label": None,
                "rationale": None,
            }
            for e, m, s, v, err in rows
        ]
    )


def test_row_stats() -> None:
    assert row_stats([4.0, 4.0, 4.0]) == {
        "samples": 3,
        "mean": 4.0,
        "std": 0.0,
        "agreement": 1.0,
        "self_disagreement": False,
    }
    stats = row_stats([1.0, 1.0, 0.0])
    assert stats["agreement"] == pytest.approx(2 / 3) and stats["self_disagreement"] is True
    assert stats["std"] == pytest.approx(0.4714045207910317)  # population std of 1, 1, 0
    assert row_stats([2.0, 5.0])["agreement"] == 0.5


def test_aggregate_scores_adds_judge_spread_and_errors() -> None:
    scores = scores_frame(
        [
            ("a", "j", 0, 1.0, None),
            ("a", "j", 1, 1.0, None),
            ("a", "j", 2, 0.0, None),
            ("b", "j", 0, 1.0, None),
            ("b", "j", 1, 1.0, None),
            ("b", "j", 2, None, "bad"),
            ("c", "j", 0, 0.0, None),
            ("c", "j", 1, None, "bad"),
            ("c", "j", 2, None, "bad"),
        ]
    )
    result = aggregate_scores(scores)["j"]
    # Rows a and b have two or more usable samples; c has one, so no spread to measure.
    assert result["count"] == 3 and result["errors"] == 3
    assert result["mean"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert result["self_disagreement"] == 1
    assert result["agreement"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert result["std"] == pytest.approx(0.4714045207910317 / 2)
    stats = sample_stats(scores)
    assert list(stats["example_id"]) == ["a", "b"]
    assert list(stats["self_disagreement"]) == [True, False]


def test_one_sample_has_no_spread_keys() -> None:
    result = aggregate_scores(scores_frame([("a", "j", 0, 1.0, None), ("b", "j", 0, 0.0, None)]))
    assert set(result["j"]) == {"mean", "p50", "p90", "count", "errors"}


def run(home: Path, samples: int, **extra: object) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    result = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            judges=["correctness", "answer_correctness"],
            judge_model="openai:/judge",
            judge_samples=samples,
            limit=8,
            metrics=["exact_match"],
            mlflow=False,
            **extra,
        ),
        home=home,
    )
    db = resolve_home(home).db_path
    return result, load_scores(db, result.run_id), load_outputs(db, result.run_id)


def test_samples_are_distinct_requests_and_disagreement_is_flagged(
    qa: str, home: Path, server: FakeLLMServer
) -> None:
    server.configure(vary_with_temperature=True)  # a sampled judge answers differently
    result, scores, outputs = run(home, samples=3)
    assert result.calls["judge"]["requests"] == 8 * 2 * 3
    bodies = judge_bodies(server)
    assert {b["temperature"] for b in bodies} == {1.0}  # sampling needs a temperature
    assert sorted(scores[scores["metric"] == "correctness"]["sample"].unique()) == [0, 1, 2]
    for name in ("correctness", "answer_correctness"):
        aggregate = result.metrics[name]
        stats = sample_stats(scores[scores["metric"] == name])
        assert len(stats) == 8
        assert aggregate["self_disagreement"] == int(stats["self_disagreement"].sum()) > 0
        assert aggregate["agreement"] == pytest.approx(stats["agreement"].mean())
        assert aggregate["agreement"] < 1 and aggregate["std"] > 0
    table = results_table(outputs, scores)
    flags = table.set_index("id")["answer_correctness/self_disagreement"]
    by_row = sample_stats(scores).query("metric == 'answer_correctness'").set_index("example_id")
    assert flags.to_dict() == by_row["self_disagreement"].to_dict()
    assert "correctness/std" in table.columns and "correctness/agreement" in table.columns

    again, again_scores, _ = run(home, samples=3)  # each sample has its own cache entry
    assert again.calls["judge"]["requests"] == 0 and again.calls["judge"]["cache_hits"] == 48
    assert again.metrics == result.metrics
    assert again_scores["value"].tolist() == scores["value"].tolist()


def test_a_steady_judge_agrees_with_itself(qa: str, home: Path, server: FakeLLMServer) -> None:
    result, scores, _ = run(home, samples=2)
    for name in ("correctness", "answer_correctness"):
        assert result.metrics[name]["agreement"] == 1.0
        assert result.metrics[name]["self_disagreement"] == 0
        assert result.metrics[name]["std"] == 0.0
    assert result.calls["judge"]["requests"] == 8 * 2 * 2
