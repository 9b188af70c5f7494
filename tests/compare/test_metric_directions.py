"""compare reads a user metric's direction from the runs: a python: metric that is better
lower (``greater_is_better = False``) makes a rise a regression, though no registry knows it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.compare.api import compare_refs
from harness.data import import_dataframe
from harness.runner.config import RunConfig
from harness.runner.run import run_eval


def test_a_python_metric_that_is_better_lower_is_read_the_right_way(home: Path) -> None:
    questions = [f"What is the name of thing number {i}?" for i in range(30)]
    import_dataframe(
        pd.DataFrame({"question": questions, "answer": [f"t{i}" for i in range(30)]}),
        name="qa",
        home=home,
    )
    metric = ["python:harness_test_metrics:longer_than_expected"]  # direction -1

    def run(model: str) -> str:
        config = RunConfig(data="qa", model=model, metrics=metric, mlflow=False)
        return run_eval(config, home=home).run_id

    base = run("python:harness_test_models:answer_expected")  # never longer: all 0
    candidate = run("python:harness_test_models:slow_echo")  # the question: all longer
    [result] = compare_refs(base, [candidate], home=home).candidates
    [longer] = [m for m in result.metrics if m.metric == "longer_than_expected"]
    assert longer.direction == -1
    assert longer.stats.diff == 1.0
    assert longer.verdict == "worse"
