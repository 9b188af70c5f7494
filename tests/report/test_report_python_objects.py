"""The report's "what was run" names the metrics a run was scored with as Python objects."""

from __future__ import annotations

import re
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


def test_the_metric_cards_follow_the_metrics_line(home: Path) -> None:
    """A retriever run's cards came by name (ndcg_at_3, precision_at_3, recall_at_3) while
    its metrics line said precision_at_3, recall_at_3, ndcg_at_3: the cards followed the
    metrics named by spec, then the rest by name, missing the ones given as objects."""
    data = pd.DataFrame(
        {"question": ["q1", "q2"], "found": [["d1", "d2"], ["d3"]], "relevant": [["d1"], ["d9"]]}
    )
    result = harness.evaluate(data=data, predictions="found", targets="relevant",
                              model_type="retriever", log_to_mlflow=False)  # fmt: skip
    done = CliRunner().invoke(cli, ["report", result.run_id, "-o", "-"])
    assert done.exit_code == 0, done.stderr
    line = ["precision_at_3", "recall_at_3", "ndcg_at_3"]
    assert facts(done.stdout)["metrics"] == ", ".join(line)
    assert re.findall(r'<div class="metric" data-metric="([^"]+)"', done.stdout) == line
