"""compare, check and sweeps read a user metric's direction from the runs: a python:
metric that is better lower (``greater_is_better = False``) makes a rise a regression and
the lowest child the best, though no registry knows it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.compare.api import check_ref, compare_refs
from harness.data import import_dataframe
from harness.runner.config import RunConfig
from harness.runner.run import run_eval
from harness.runner.sweep import run_sweep

METRIC = ["python:harness_test_metrics:longer_than_expected"]  # direction -1
NEVER_LONGER = "python:harness_test_models:answer_expected"  # all 0
ALWAYS_LONGER = "python:harness_test_models:slow_echo"  # answers the question: all 1


def _qa(home: Path, rows: int) -> None:
    questions = [f"What is the name of thing number {i}?" for i in range(rows)]
    import_dataframe(
        pd.DataFrame({"question": questions, "answer": [f"t{i}" for i in range(rows)]}),
        name="qa",
        home=home,
    )


def test_a_python_metric_that_is_better_lower_is_read_the_right_way(home: Path) -> None:
    _qa(home, 30)

    def run(model: str) -> str:
        config = RunConfig(data="qa", model=model, metrics=METRIC, mlflow=False)
        return run_eval(config, home=home).run_id

    base = run(NEVER_LONGER)
    candidate = run(ALWAYS_LONGER)
    [result] = compare_refs(base, [candidate], home=home).candidates
    [longer] = [m for m in result.metrics if m.metric == "longer_than_expected"]
    assert longer.direction == -1
    assert longer.stats.diff == 1.0
    assert longer.verdict == "worse"

    # check: the rise is a drop of 1.0 for a better-lower metric, so the gate fails...
    gated = check_ref(candidate, baseline=base, max_drops=["longer_than_expected=0.02"], home=home)
    assert (gated.outcome, gated.exit_code) == ("fail", 1)
    # ...and the same change the other way round is an improvement that passes.
    improved = check_ref(
        base, baseline=candidate, max_drops=["longer_than_expected=0.02"], home=home
    )
    assert (improved.outcome, improved.exit_code) == ("pass", 0)


def test_a_sweep_picks_the_best_child_by_a_python_metrics_direction(home: Path) -> None:
    _qa(home, 3)
    base = RunConfig(data="qa", model=ALWAYS_LONGER, metrics=METRIC, mlflow=False)
    sweep = run_sweep(base, {"model": [ALWAYS_LONGER, NEVER_LONGER]}, home=home)
    means = [run.result.metrics["longer_than_expected"]["mean"] for run in sweep.runs]
    assert means == [1.0, 0.0]
    assert sweep.primary_metric == "longer_than_expected"
    assert sweep.best == 1  # the lower mean; read as higher-is-better it would be 0
