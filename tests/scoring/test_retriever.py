"""Retrievers, as mlflow.evaluate evaluates them: outputs and targets that are lists of
document ids, scored by MLflow's precision_at_k, recall_at_k and ndcg_at_k. Every value
is held against mlflow.evaluate's own on the same data, in a local SQLite store."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner

import harness
from harness.cli import cli
from harness.errors import ConfigError, RowsFailedWarning
from harness.store.datasets import list_datasets

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


def test_relevant_ids_written_as_json_text_are_the_metrics_error(tmp_path: Path) -> None:
    """A DataFrame read with pd.read_csv holds a CSV's lists of relevant ids as text: each
    row's one relevant id was the text '["d1"]', which no output holds, so every retriever
    metric scored 0 without a word (MLflow logs nothing for a text target, with a warning).
    The metric now fails, saying how to give the lists; the CSV's path reads them."""
    path = tmp_path / "retrieval.csv"
    pd.DataFrame(
        {"question": ["q1", "q2"], "retrieved": ['["d1", "d2"]', '["d3"]'],
         "relevant": ['["d1"]', '["d3"]']}
    ).to_csv(path, index=False)  # fmt: skip
    as_text = pd.read_csv(path)
    with pytest.warns(RowsFailedWarning, match="targets as a list of relevant ids"):
        result = harness.evaluate(
            data=as_text, predictions="retrieved", targets="relevant",
            model_type="retriever", log_to_mlflow=False,
        )  # fmt: skip
    assert result.metrics == {}
    assert "row '0' has the text '[\"d1\"]'" in " ".join(result.result.warnings)
    as_lists = as_text.assign(relevant=as_text["relevant"].map(json.loads))
    for data in (as_lists, str(path)):
        result = harness.evaluate(
            data=data, predictions="retrieved", targets="relevant",
            model_type="retriever", log_to_mlflow=False,
        )  # fmt: skip
        assert result.metrics["recall_at_3/mean"] == 1.0


DEFAULT_NAMES = {
    f"{name}_at_3/{aggregate}"
    for name in ("precision", "recall", "ndcg")
    for aggregate in ("mean", "variance", "p90")
}


def test_model_type_retriever_scores_static_predictions_as_mlflow(tmp_path: Path) -> None:
    """model_type="retriever" was refused ("unknown model_type 'retriever'"): its default
    metrics are MLflow's precision_at_3, recall_at_3 and ndcg_at_3, with MLflow's names."""
    arguments = {
        "data": retrieved_frame(),
        "predictions": "retrieved",
        "targets": "relevant",
        "model_type": "retriever",
    }
    reference, _ = in_a_run(tmp_path, mlflow.evaluate, **arguments)
    ours, our_run = in_a_run(tmp_path, harness.evaluate, **arguments)
    assert set(reference.metrics) == DEFAULT_NAMES
    assert ours.metrics == pytest.approx(reference.metrics)
    logged = mlflow.MlflowClient().get_run(our_run).data.metrics
    assert {k: logged[k] for k in DEFAULT_NAMES} == pytest.approx(reference.metrics)


def mlflow_retriever(inputs: pd.DataFrame) -> list[list[str]]:
    """harness_test_models.retrieve as mlflow.evaluate calls a model: a DataFrame in."""
    return [[w for w in text.split() if w.startswith("d")] for text in inputs["question"]]


def searched_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question": ["d1 d2 d3", "d5 d1", "none", "d2 d2 d7 d8"],
            "relevant": [["d1", "d3"], ["d9"], ["d2"], ["d8", "d2"]],
        }
    )


@pytest.mark.parametrize("model", ["function", "uri"])
def test_model_type_retriever_calls_a_function_returning_ids(
    tmp_path: Path, model: str, home: Path
) -> None:
    """A function of the row returning its list of ids (its row was an error: "returned a
    list, not text"), given as a callable or a python: URI, with retriever_k=2; the ids are
    stored, shown and logged as their JSON text."""
    from harness_test_models import retrieve

    common = {"data": searched_frame(), "targets": "relevant", "model_type": "retriever"}
    # Each its own config: MLflow pops retriever_k from the dict it is given.
    reference, _ = in_a_run(
        tmp_path,
        mlflow.evaluate,
        model=mlflow_retriever,
        evaluator_config={"retriever_k": 2},
        **common,
    )
    ours, our_run = in_a_run(
        tmp_path,
        harness.evaluate,
        model=retrieve if model == "function" else "python:harness_test_models:retrieve",
        evaluator_config={"retriever_k": 2},
        **common,
    )
    assert set(reference.metrics) == {n.replace("_at_3", "_at_2") for n in DEFAULT_NAMES}
    assert ours.metrics == pytest.approx(reference.metrics)
    theirs = reference.tables["eval_results_table"]
    mine = ours.tables["eval_results_table"].set_index("id").loc[["0", "1", "2", "3"]]
    assert list(mine["output"]) == [
        '["d1", "d2", "d3"]',
        '["d5", "d1"]',
        "[]",
        '["d2", "d2", "d7", "d8"]',
    ]
    for name in ("precision_at_2", "recall_at_2", "ndcg_at_2"):
        assert list(mine[name]) == pytest.approx(list(theirs[f"{name}/score"])), name
    # The MLflow run's per-row table, and `harness runs show --rows`, hold the same text.
    table = mlflow.artifacts.load_dict(f"runs:/{our_run}/eval_results_table.json")
    outputs = [row[table["columns"].index("output")] for row in table["data"]]
    assert sorted(outputs) == sorted(mine["output"])
    shown = CliRunner().invoke(cli, ["runs", "show", ours.run_id, "--rows", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {row["id"]: row["output"] for row in json.loads(shown.output)["rows_table"]}
    assert rows == dict(zip(mine.index, mine["output"], strict=True))


def test_a_retriever_answering_no_list_fails_its_row() -> None:
    data = pd.DataFrame({"question": ["q1", "q2"], "relevant": [["d1"], ["d2"]]})

    def retrieve(row: dict[str, Any]) -> Any:
        return ["d1"] if row["input"] == "q1" else {"ids": ["d2"]}

    with pytest.warns(RowsFailedWarning, match="1 of 2 rows failed"):
        result = harness.evaluate(
            retrieve, data=data, targets="relevant", model_type="retriever", log_to_mlflow=False
        )
    errors = result.tables["eval_results_table"].set_index("id")["error"]
    assert errors["1"].endswith(
        "returned {'ids': ['d2']}; a retriever returns a list of document ids (strings or "
        "integers) for the row"
    )
    assert result.metrics["precision_at_3/mean"] == 1.0  # the row that answered


@pytest.mark.parametrize("k", [0, "3", 2.5, True])
def test_a_retriever_k_that_is_no_positive_whole_number_is_refused(k: Any, home: Path) -> None:
    """MLflow logs no metric for such a k (a warning in its log); harness refuses the call
    before anything is stored."""
    with pytest.raises(ConfigError, match=r"evaluator_config\['retriever_k'\] is how many"):
        harness.evaluate(
            data=retrieved_frame(),
            predictions="retrieved",
            targets="relevant",
            model_type="retriever",
            evaluator_config={"retriever_k": k},
            log_to_mlflow=False,
        )
    db = home / "harness.duckdb"
    assert not db.exists() or list_datasets(db) == []


def test_unknown_model_type_names_retriever() -> None:
    with pytest.raises(
        ConfigError, match="use one of question-answering, text-summarization, text, retriever"
    ):
        harness.evaluate(data=retrieved_frame(), predictions="retrieved", model_type="retrieval")


def test_retriever_scores_get_intervals_within_0_and_1(home: Path) -> None:
    """precision, recall and NDCG at k are shares, but were stored with no range, so the
    report's t intervals ran past it (ndcg_at_3: 0.64 [-0.74, 2.02] on 3 rows): they are
    stored as bounded by 0 and 1, where compare, check and the report cut intervals."""
    from harness.store.runs import get_run

    frame = retrieved_frame().head(3)
    result = harness.evaluate(data=frame, predictions="retrieved", targets="relevant",
                              model_type="retriever", log_to_mlflow=False)  # fmt: skip
    config = get_run(harness.config.resolve_home().db_path, result.run_id).config
    assert {name: config["bounds"].get(name) for name in ("precision_at_3", "ndcg_at_3")} == {
        "precision_at_3": [0.0, 1.0],
        "ndcg_at_3": [0.0, 1.0],
    }
    report = CliRunner().invoke(cli, ["report", result.run_id, "-o", "-"])
    assert report.exit_code == 0, report.stderr
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", report.stdout))
    # Each metric's card: its name, its mean and the mean's 95% interval.
    intervals = re.findall(r"(ndcg|precision|recall)_at_3 ↑ [0-9.]+ \[(-?[0-9.]+), (-?[0-9.]+)\]",
                           text)  # fmt: skip
    assert len(intervals) == 3 and all(0 <= float(lo) <= float(hi) <= 1 for _, lo, hi in intervals)


def test_a_retriever_run_resumed_from_the_cli_scores_as_one_done_in_one_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retriever function's run scored with metrics named by spec can be resumed with
    `harness run --resume`, which rebuilt its python: model as a text model: the rows it
    retried failed again ("returned a list, not text") and the run exited 1."""
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    common = {
        "data": searched_frame(),
        "targets": "relevant",
        "model_type": "retriever",
        "metrics": ["python:harness_test_metrics:precision_at_2"],
        "log_to_mlflow": False,
    }
    with pytest.warns(RowsFailedWarning, match="2 of 4 rows failed"):
        first = harness.evaluate("python:harness_test_models:retrieve_while_unflagged", **common)
    flag.unlink()
    resumed = CliRunner().invoke(cli, ["run", "--resume", first.run_id, "--json"])
    assert resumed.exit_code == 0, resumed.stderr
    at_once = harness.evaluate("python:harness_test_models:retrieve", **common)
    done = json.loads(resumed.stdout)
    assert done["errors"] == 0
    assert done["metrics"]["precision_at_2"]["mean"] == at_once.metrics["precision_at_2/mean"]
    shown = CliRunner().invoke(cli, ["runs", "show", first.run_id, "--rows", "--json"])
    rows = {row["id"]: row["output"] for row in json.loads(shown.output)["rows_table"]}
    table = at_once.tables["eval_results_table"]
    assert rows == dict(zip(table["id"], table["output"], strict=True))


@pytest.mark.parametrize("where", ["project store", "active run"])
def test_a_retriever_rows_trace_expects_the_list_of_relevant_ids(
    tmp_path: Path, home: Path, where: str
) -> None:
    """Each row's trace held its targets as the text 'd1 || d4' (the per-row table's join
    of several expected answers): its expected_response is now the list of ids given, as
    mlflow.evaluate's table holds them."""
    arguments = {"data": retrieved_frame().head(5), "predictions": "retrieved",
                 "targets": "relevant", "model_type": "retriever"}  # fmt: skip
    if where == "active run":
        _, run_id = in_a_run(tmp_path, harness.evaluate, **arguments)
        client = mlflow.MlflowClient()
    else:
        result = harness.evaluate(**arguments)
        run_id = str(result.mlflow_run_id)
        client = mlflow.MlflowClient("sqlite:///" + str(home / "mlruns" / "mlflow.db"))
    experiment = client.get_run(run_id).info.experiment_id
    traces = client.search_traces(locations=[experiment], run_id=run_id)
    by_input = {}
    for trace in traces:
        question = json.loads(trace.info.request_metadata["mlflow.traceInputs"])["input"]
        found = [a.value for a in trace.info.assessments if a.name == "expected_response"]
        by_input[question] = found
    assert by_input == {
        "q1": [["d1", "d4"]],
        "q2": [["d9"]],
        "q3": [["d2"]],
        "q4": [["d2", "d7", "d8"]],
        "q5": [],  # nothing relevant: no expectation, as for an empty expected answer
    }


def test_integer_ids_score_as_mlflows_and_are_stored_as_text(tmp_path: Path, home: Path) -> None:
    """What docs/python-api.md says of ids that are not text, held against mlflow.evaluate on
    the same data: integer ids on both sides score as MLflow scores them; the relevant ids
    are stored as text (MLflow's table keeps [1, 5]; harness's expected answers, and the
    trace's expectation, hold "1" and "5"), so an integer matches its text ("7" and 7), where
    MLflow's metrics match neither."""
    data = pd.DataFrame({"question": ["q1", "q2", "q3"],
                         "retrieved": [[3, 1, 4], ["7", "2"], ["d1"]],
                         "relevant": [[1, 5], [7], ["d1"]]})  # fmt: skip
    arguments = {"data": data, "predictions": "retrieved", "targets": "relevant",
                 "model_type": "retriever"}  # fmt: skip
    reference, _ = in_a_run(tmp_path, mlflow.evaluate, **arguments)
    ours, run_id = in_a_run(tmp_path, harness.evaluate, **arguments)
    theirs = reference.tables["eval_results_table"]
    mine = ours.tables["eval_results_table"].set_index("id").loc[["0", "1", "2"]]
    assert list(theirs["relevant"]) == [[1, 5], [7], ["d1"]]
    assert list(mine["expected"]) == ["1 || 5", "7", "d1"]
    assert list(mine["output"]) == ["[3, 1, 4]", '["7", "2"]', '["d1"]']
    for name in ("precision_at_3", "recall_at_3", "ndcg_at_3"):
        same = [0, 2]  # the rows whose ids have one type on both sides
        assert list(mine[name].iloc[same]) == pytest.approx(list(theirs[f"{name}/score"][same]))
        assert theirs[f"{name}/score"][1] == 0 and mine[name].iloc[1] > 0, name
    client = mlflow.MlflowClient()
    experiment = client.get_run(run_id).info.experiment_id
    expected = {
        json.loads(trace.info.request_metadata["mlflow.traceInputs"])["input"]: [
            a.value for a in trace.info.assessments if a.name == "expected_response"
        ]
        for trace in client.search_traces(locations=[experiment], run_id=run_id)
    }
    assert expected == {"q1": [["1", "5"]], "q2": [["7"]], "q3": [["d1"]]}


def test_extra_metrics_at_the_default_k_are_taken_once_as_in_mlflow(tmp_path: Path) -> None:
    """The usual retriever script (model_type="retriever" and extra_metrics at k = 1, 3,
    ...) names precision_at_3 twice: its default and its extra metric. MLflow computes it
    once; harness refused the call ("two metrics are named 'precision_at_3'; name one with
    LABEL=... on the command line")."""
    from mlflow.metrics import ndcg_at_k, precision_at_k, recall_at_k

    arguments = {
        "data": retrieved_frame(),
        "predictions": "retrieved",
        "targets": "relevant",
        "model_type": "retriever",
        "extra_metrics": [m(k) for m in (precision_at_k, recall_at_k, ndcg_at_k) for k in (1, 3)],
    }
    reference, _ = in_a_run(tmp_path, mlflow.evaluate, **arguments)
    ours, _ = in_a_run(tmp_path, harness.evaluate, **arguments)
    assert {"precision_at_1/mean", "ndcg_at_3/mean"} <= set(reference.metrics)
    assert ours.metrics == pytest.approx(reference.metrics)
    table = ours.tables["eval_results_table"]
    assert sorted(c for c in table.columns if c.endswith("_at_3")) == [
        "ndcg_at_3",
        "precision_at_3",
        "recall_at_3",
    ]
