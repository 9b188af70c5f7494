"""The report's "what was run" names the metrics a run was scored with as Python objects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from test_report_file import facts

import harness
from harness.cli import cli


def test_the_metrics_line_names_metrics_given_as_objects(home: Path) -> None:
    """A run of harness.evaluate with an MLflow make_metric object said "metrics: the
    defaults" (or named only those given by name): the line read only the metrics named by
    spec, not the run's python_objects."""
    from mlflow.metrics import MetricValue, make_metric

    def n_chars(predictions, targets=None, metrics=None):  # noqa: ARG001
        return MetricValue(scores=[len(p) for p in predictions])

    data = pd.DataFrame({"question": ["a", "bb"], "answer": ["a", "b"]})
    result = harness.evaluate(
        lambda row: row["input"],
        data,
        metrics=["exact_match"],
        extra_metrics=[make_metric(eval_fn=n_chars, greater_is_better=False, name="n_chars")],
        log_to_mlflow=False,
    )
    done = CliRunner().invoke(cli, ["report", result.run_id, "-o", "-"])
    assert done.exit_code == 0, done.stderr
    assert facts(done.stdout)["metrics"] == "exact_match, n_chars"
