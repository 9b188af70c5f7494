"""Retrievers, as mlflow.evaluate evaluates them: outputs and targets that are lists of
document ids, scored by MLflow's precision_at_k, recall_at_k and ndcg_at_k. Every value
is held against mlflow.evaluate's own on the same data, in a local SQLite store."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

import harness
from harness.errors import RowsFailedWarning

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def retrieved_frame() -> pd.DataFrame:
    """Rows with hits at several ranks, a miss, a duplicate, nothing retrieved, nothing
    relevant, and integer ids."""
    return pd.DataFrame(
        {
            "question": ["q1", "q2", "q3", "q4", "q5", "q6"],
            "retrieved": [
                ["d1", "d2", "d3", "d4"],
                ["d5", "d1"],
                [],
                ["d2", "d2", "d7"],
                [],
                [3, 1, 4],
            ],
            "relevant": [["d1", "d4"], ["d9"], ["d2"], ["d2", "d7", "d8"], [], [1, 5]],
        }
    )


def in_a_run(tmp_path: Path, evaluate: Any, **arguments: Any) -> tuple[Any, str]:
    """One script, two imports: the same call inside mlflow.start_run, as users write it."""
    mlflow.set_tracking_uri("sqlite:///" + str(tmp_path / "mlflow-reference.db"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run() as run:
            result = evaluate(**arguments)
    return result, run.info.run_id


def test_mlflow_retriever_metrics_score_columns_of_id_lists(tmp_path: Path) -> None:
    """extra_metrics=[precision_at_k(2), ...] on a column of retrieved ids: harness passed
    each list as its Python repr text and single targets as text, so MLflow's metrics
    skipped themselves ("non-arraylike") and the run had no such metric."""
    arguments = {
        "data": retrieved_frame(),
        "predictions": "retrieved",
        "targets": "relevant",
        "extra_metrics": [
            mlflow.metrics.precision_at_k(2),
            mlflow.metrics.recall_at_k(2),
            mlflow.metrics.ndcg_at_k(2),
        ],
    }
    reference, _ = in_a_run(tmp_path, mlflow.evaluate, **arguments)
    ours, our_run = in_a_run(tmp_path, harness.evaluate, **arguments)
    assert set(reference.metrics) == {
        f"{name}_at_2/{aggregate}"
        for name in ("precision", "recall", "ndcg")
        for aggregate in ("mean", "variance", "p90")
    }
    assert ours.metrics == pytest.approx(reference.metrics)
    logged = mlflow.MlflowClient().get_run(our_run).data.metrics
    assert {k: logged[k] for k in reference.metrics} == pytest.approx(reference.metrics)
    theirs = reference.tables["eval_results_table"]
    mine = ours.tables["eval_results_table"].set_index("id").loc[[str(i) for i in range(6)]]
    for name in ("precision_at_2", "recall_at_2", "ndcg_at_2"):
        assert list(mine[name]) == pytest.approx(list(theirs[f"{name}/score"])), name
    # The outputs are stored as the JSON text of each list.
    assert list(mine["output"])[:2] == ['["d1", "d2", "d3", "d4"]', '["d5", "d1"]']


def test_an_output_that_is_no_list_of_ids_is_the_metrics_error() -> None:
    data = pd.DataFrame({"question": ["q1"], "retrieved": ["d1, d2"], "relevant": [["d1"]]})
    with pytest.warns(RowsFailedWarning, match="reads each output as a list of doc"):
        result = harness.evaluate(
            data=data,
            predictions="retrieved",
            targets="relevant",
            extra_metrics=[mlflow.metrics.precision_at_k(2)],
            log_to_mlflow=False,
        )
    assert result.metrics == {}
    assert "row '0' has 'd1, d2'" in " ".join(result.result.warnings)
