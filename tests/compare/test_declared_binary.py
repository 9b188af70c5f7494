"""A metric's interval and test follow what it declares (0/1 or a scale), not the values a
run happened to score: token F1 that scores only 0 and 1 on a small run is still a scale."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from harness.cli import cli
from harness.metrics import metric_names
from harness.metrics.registry import registered
from harness.stats import estimate_mean, paired_difference
from harness.store.scores import (
    BUILTIN_BINARY,
    BUILTIN_BOUNDS,
    BUILTIN_LOWER_BOUNDS,
    ERRORS,
    binary_metrics,
    metric_bounds,
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_0_1_values_of_a_scale_get_the_t_methods_and_declared_ones_wilson() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    scale = estimate_mean(values)
    low, high = scipy_stats.t.interval(0.95, 7, loc=values.mean(), scale=scipy_stats.sem(values))
    assert scale.method == "t" and (scale.low, scale.high) == pytest.approx((low, high))
    rate = estimate_mean(values, binary=True)
    assert rate.method == "wilson"
    assert (rate.low, rate.high) == pytest.approx(proportion_confint(6, 8, method="wilson"))
    base = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    paired = paired_difference(base, values)
    assert (paired.test, paired.interval, paired.binary) == ("paired t", "t", False)
    assert paired.p_value == pytest.approx(scipy_stats.ttest_rel(values, base).pvalue)
    declared = paired_difference(base, values, binary=True)
    assert (declared.test, declared.interval) == ("exact McNemar", "adjusted wald")
    with pytest.raises(ValueError, match="must all be 0 or 1"):
        estimate_mean([0.0, 0.5], binary=True)


def test_runs_store_what_their_metrics_declare_and_compare_follows_it(tmp_path: Path) -> None:
    rows = [{"id": str(i), "question": f"Question {i}?", "answer": f"answer number {i}",
             "level": "easy" if i % 2 else "hard"} for i in range(1, 10)]  # fmt: skip
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, err = invoke("data", "import", str(data), "--name", "few", "--input", "question",
                          "--expected", "answer")  # fmt: skip
    assert code == 0, err
    ids = []
    for model in ("python:harness_test_models:answer_or_nothing",
                  "python:harness_test_models:answer_expected"):  # fmt: skip
        code, out, err = invoke("run", "--data", "few", "--model", model, "--no-mlflow",
                                "--metric", "token_f1", "--metric", "exact_match",
                                "--by", "level", "--json")  # fmt: skip
        assert code == 0, err
        result = json.loads(out)
        ids.append(result["run_id"])
        for table in result["slices"]:
            for s in [table["overall"], *table["slices"]]:
                # A scale: the t interval, or where every row scored 1 (the second model)
                # and so has no spread, none.
                scale = "t" if len(ids) == 1 else "none"
                assert s["metrics"]["token_f1"]["interval"] == scale
                assert s["metrics"]["exact_match"]["interval"] == "wilson"
    code, out, err = invoke("compare", *ids, "--json")
    assert code in (0, 1), err
    metrics = {m["metric"]: m for m in json.loads(out)["candidates"][0]["metrics"]}
    f1, em = metrics["token_f1"], metrics["exact_match"]
    # token F1 scored only 0 and 1 in both runs: still the paired t test, as scipy's.
    base = np.array([1.0 if i % 3 else 0.0 for i in range(1, 10)])
    assert (f1["test"], f1["interval"], f1["binary"]) == ("paired t", "t", False)
    assert f1["base"]["method"] == "t"
    low, high = scipy_stats.t.interval(0.95, 8, loc=base.mean(), scale=scipy_stats.sem(base))
    # scipy's reaches past 1 (1.051), where no token F1 mean can be: cut at its range.
    assert high > 1 and (f1["base"]["low"], f1["base"]["high"]) == pytest.approx((low, 1.0))
    assert (em["test"], em["interval"], em["binary"]) == ("exact McNemar", "adjusted wald", True)
    assert (em["base"]["low"], em["base"]["high"]) == pytest.approx(
        proportion_confint(6, 9, method="wilson")
    )


def test_runs_stored_before_the_declaration_read_the_builtins_and_two_answer_judges() -> None:
    assert {n for n in metric_names() if registered()[n].binary} == BUILTIN_BINARY
    labels = {"yes_no": ["no", "yes"], "pick": ["bad", "good"], "one_five": [str(i) for i in
              range(1, 6)], "zero_one": ["0", "1"], "one_two": ["1", "2"]}  # fmt: skip
    old = binary_metrics({"judge_labels": labels})
    assert old == {"exact_match", ERRORS, "yes_no", "pick", "zero_one"}
    # Asked several times, a judge scores a row with the mean of its samples: not 0/1.
    assert binary_metrics({"judge_labels": labels, "judge_samples": 3}) == BUILTIN_BINARY | {ERRORS}
    assert binary_metrics({"binary": ["contains"]}) == {"contains", ERRORS}


def test_runs_stored_before_the_ranges_read_them_from_the_builtins_and_judges() -> None:
    """A run stores the range each bounded metric scores in (``bounds``); an older one reads
    the registered metrics' and its judges' (a scale's ends, else 0 to 1), and a name whose
    scores leave the range (a ``python:`` metric named token_f1) has none."""
    import pandas as pd

    declared = {n: registered()[n].bounds for n in metric_names() if registered()[n].bounds}
    assert declared == BUILTIN_BOUNDS
    labels = {"tone": ["rude", "neutral", "warm"], "one_five": [str(i) for i in range(1, 6)]}
    old = metric_bounds({"judge_labels": labels, "judge_samples": 3})
    assert old["tone"] == (0.0, 1.0) and old["one_five"] == (1.0, 5.0)
    assert old["exact_match"] == old[ERRORS] == old["token_f1"] == (0.0, 1.0)
    assert old["latency"] == old["word_count"] == (0.0, math.inf)  # never negative
    values = pd.DataFrame({"token_f1": [0.5, 3.0], "tone": [0.0, 1.0], "latency": [-1.0, 2]})
    bounded = metric_bounds({"judge_labels": labels}, values)
    assert "token_f1" not in bounded and "latency" not in bounded
    # A run stores an open side as null; one stored before latency and word_count declared
    # theirs reads them, unless its metric of that name is not the built-in one.
    stored = {"bounds": {"judge": [1, 5]}, "binary": []}
    assert metric_bounds(stored) == {"judge": (1.0, 5.0), ERRORS: (0, 1), **BUILTIN_LOWER_BOUNDS}
    own = {**stored, "metric_sources": {"latency": "python:mine:latency"}}
    assert "latency" not in metric_bounds(own) and "word_count" in metric_bounds(own)
    assert metric_bounds({"bounds": {"latency": [0, None]}})["latency"] == (0.0, math.inf)


def test_a_bounded_scale_is_compared_inside_its_range(tmp_path: Path) -> None:
    """compare showed each run's mean of a 1-5 judge on 3 rows with its unclipped t interval
    (3 [-1.97, 7.97]); both runs declare 1 to 5, so the means' intervals are cut there and
    the change's at ±4."""
    runs = [
        write_run(
            tmp_path / f"{name}.jsonl",
            run_id=f"bnd0000aaaa{name}",
            scores={"judge": scores},
            judges=["judge"],
            bounds={"judge": [1, 5]},
        )  # fmt: skip
        for name, scores in (("1", [1.0, 3.0, 5.0]), ("2", [5.0, 3.0, 1.0]))
    ]
    base, cand = runs
    shown = CliRunner().invoke(cli, ["compare", str(base), str(cand), "--json"])
    assert shown.exit_code == 0, shown.output
    (judge,) = [m for m in json.loads(shown.output)["candidates"][0]["metrics"]
                if m["metric"] == "judge"]  # fmt: skip
    low, high = scipy_stats.t.interval(0.95, 2, loc=3, scale=scipy_stats.sem([1, 3, 5]))
    assert low < 1 and high > 5
    assert (judge["base"]["low"], judge["base"]["high"]) == (1.0, 5.0)
    assert (judge["candidate"]["low"], judge["candidate"]["high"]) == (1.0, 5.0)
    assert judge["ci"] == [-4.0, 4.0] and judge["interval"] == "t"
