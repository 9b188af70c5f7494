"""harness.evaluate with what mlflow.evaluate scripts pass: data shapes, col_mapping, judges
as objects, metrics that raise, directions, and runs that only Python can score again."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import harness
from harness.cli import cli
from harness.errors import ConfigError, RowsFailedWarning

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def echo_question(row: dict) -> str:
    return f"{row['input']} [1]"


@pytest.mark.parametrize(
    ("data", "options"),
    [
        (["What is 2+2?", "Capital of France?"], {"targets": ["4", "Paris"]}),
        (np.array(["What is 2+2?", "Capital of France?"]), {"targets": np.array(["4", "Paris"])}),
        (
            [
                {"inputs": "What is 2+2?", "expectations": {"expected_response": "4"}},
                {"inputs": "Capital of France?", "expectations": {"expected_response": "Paris"}},
            ],
            {},
        ),
    ],
)
def test_lists_and_arrays_evaluate_like_a_dataframe(data: object, options: dict) -> None:
    result = harness.evaluate(
        echo_question,
        data,
        metrics=["exact_match", "contains"],
        log_to_mlflow=False,
        **options,
    )
    assert result.metrics["exact_match/count"] == 2  # both rows had an expected answer
    assert result.metrics["contains/mean"] == 0.0
    table = result.tables["eval_results_table"]
    assert list(table["input"]) == ["What is 2+2?", "Capital of France?"]
    assert list(table["expected"]) == ["4", "Paris"]


def test_col_mapping_picks_columns_as_in_mlflow() -> None:
    from mlflow.metrics.genai import faithfulness

    data = pd.DataFrame(
        {
            "question": ["Capital of France?"],
            "answer": ["Paris"],
            "retrieved": ["Paris is the capital of France."],
            "source_doc": ["atlas"],
        }
    )
    seen: list[dict] = []

    def model(row: dict) -> str:
        seen.append(row)
        return "Paris"

    def cites_source(predictions: pd.Series, doc: pd.Series) -> float:
        return float(all(d == "atlas" for d in doc))

    result = harness.evaluate(
        model,
        data,
        targets="answer",
        metrics=["exact_match", cites_source],
        evaluator_config={
            "col_mapping": {"inputs": "question", "context": "retrieved", "doc": "source_doc"}
        },
        log_to_mlflow=False,
    )
    assert seen[0]["input"] == "Capital of France?"
    assert seen[0]["context"] == "Paris is the capital of France."
    assert result.metrics["exact_match/mean"] == 1.0
    assert result.metrics["cites_source"] == 1.0  # an eval_fn's number: its own aggregate
    # faithfulness reads `context`: mapped through col_mapping it is the retrieved text.
    from harness.scoring import DataShape, adapt

    judge = adapt(
        faithfulness(model="openai:/m"),
        shape=DataShape(fields={"context": "retrieved"}, col_mapping={"context": "retrieved"}),
    )
    assert judge.needs == {"context"}


@pytest.mark.parametrize("evaluators", [["default"], None])
def test_evaluator_config_nested_under_default_is_the_default_evaluators(
    evaluators: list[str] | None,
) -> None:
    """MLflow takes the config nested under the evaluator's name, the only form it accepts
    with evaluators=["default"]: harness read no col_mapping there and refused the data
    ('no input column: looked for input, question, inputs')."""
    import mlflow

    data = pd.DataFrame({"q": ["2+2?", "Capital?"], "gold": ["4", "Paris"], "pred": ["4", "x"]})
    result = harness.evaluate(
        data=data,
        predictions="pred",
        targets="gold",
        extra_metrics=[mlflow.metrics.exact_match()],
        evaluators=evaluators,
        evaluator_config={"default": {"col_mapping": {"inputs": "q"}}},
        log_to_mlflow=False,
    )
    assert result.metrics["exact_match/v1"] == 0.5
    assert list(result.tables["eval_results_table"]["input"]) == ["2+2?", "Capital?"]
    with pytest.raises(ConfigError, match=r"^evaluator_config\['metric_prefix'\] is not"):
        harness.evaluate(
            data=data,
            predictions="pred",
            targets="gold",
            evaluators=evaluators,
            evaluator_config={"default": {"col_mapping": {"inputs": "q"}, "metric_prefix": "a_"}},
            log_to_mlflow=False,
        )


def test_a_metric_that_raises_fails_its_rows_and_the_cli_exits_1(home: Path) -> None:
    from harness.data import import_dataframe

    import_dataframe(
        pd.DataFrame({"question": ["a?", "b?"], "answer": ["a", "b"]}), name="qa", home=home
    )
    result = CliRunner().invoke(
        cli,
        [
            "run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json",
            "--metric", "python:harness_test_metrics:raises", "--metric", "word_count",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["metric_errors"] == 2 and doc["errors"] == 0
    assert doc["metrics"]["word_count"]["count"] == 2  # the other metric is there
    assert doc["metrics"]["raises"] == {"count": 0}
    assert "metrics failed (metrics raised on 2 rows" in result.stderr
    assert doc["directions"] == {"raises": 1, "word_count": 0}
    # A resume scores nothing again: the line says what does, and so does --resume.
    assert result.stderr.strip().endswith(
        "fix the metric and run the same command again (its calls come from the cache)"
    )
    resumed = CliRunner().invoke(cli, ["run", "--resume", doc["run_id"], "--no-mlflow"])
    assert resumed.exit_code == 2
    assert resumed.stderr.strip() == (
        f"error: run {doc['run_id']} finished with no failed rows; nothing to resume (a metric "
        "failed on 2 rows: a resume does not score again; fix the metric and run the same "
        "command again, its calls come from the cache)"
    )


def test_a_run_scored_with_python_objects_is_not_resumed_from_the_cli(home: Path) -> None:
    def flaky(row: dict) -> str:
        if row["input"] == "b?":
            raise RuntimeError("down")
        return "a"

    def shout(row: dict) -> float:
        return float(row["output"].isupper())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = harness.evaluate(
            flaky,
            pd.DataFrame({"question": ["a?", "b?"], "answer": ["a", "b"]}),
            metrics=[shout],
            log_to_mlflow=False,
        )
    assert result.result.errors == 1
    run = CliRunner().invoke(cli, ["run", "--resume", result.run_id])
    assert run.exit_code == 2
    assert "scored with Python objects (shout)" in run.stderr


def resumable_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: object) -> dict:
    """harness.evaluate's arguments for a run whose even rows fail until the flag goes,
    scored by an eval_fn named by spec that reads ``config``'s col_mapping and weight."""
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    return {
        "model": "python:harness_test_models:fail_while_flagged",
        "data": pd.DataFrame({"question": ["a", "b", "c", "d"], "answer": ["A", "B", "C", "D"],
                              "gold": ["A", "B", "X", "D"]}),
        "targets": "answer",
        "metrics": ["python:harness_test_metrics:matches_reference"],
        "evaluator_config": {"col_mapping": {"reference": "gold"}, **config},
        "log_to_mlflow": False,
    }  # fmt: skip


def test_a_resume_from_the_cli_scores_with_the_runs_evaluator_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness run --resume` of a harness.evaluate run whose eval_fn (named by spec, so the
    CLI rebuilds it) reads col_mapping and a value of evaluator_config scored every row
    without them: the run's evaluator_config was not stored. The resume scores as a run
    done in one go."""
    arguments = resumable_call(tmp_path, monkeypatch, weight=2.0)
    with pytest.warns(RowsFailedWarning, match="2 of 4 rows failed"):
        first = harness.evaluate(**arguments)
    (tmp_path / "flag").unlink()
    resumed = CliRunner().invoke(cli, ["run", "--resume", first.run_id, "--json"])
    assert resumed.exit_code == 0, resumed.stderr
    at_once = harness.evaluate(**arguments)
    assert at_once.metrics["matches_reference/mean"] == 1.5  # 3 of 4 match, weighing 2
    assert json.loads(resumed.stdout)["metrics"]["matches_reference"] == {
        stat: at_once.metrics[f"matches_reference/{stat}"]
        for stat in ("mean", "p50", "p90", "count")
    }


def test_a_resume_refuses_an_evaluator_config_the_run_could_not_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value JSON cannot hold as given (a Fraction) is not stored: the resume refuses in
    one line rather than scoring the rows without it."""
    from fractions import Fraction

    arguments = resumable_call(tmp_path, monkeypatch, weight=Fraction(3, 2))
    with pytest.warns(RowsFailedWarning, match="2 of 4 rows failed"):
        first = harness.evaluate(**arguments)
    (tmp_path / "flag").unlink()
    resumed = CliRunner().invoke(cli, ["run", "--resume", first.run_id])
    assert resumed.exit_code == 2
    assert resumed.stderr == (
        f"error: run {first.run_id} was scored with evaluator_config values a run cannot "
        "store (weight), so a resume cannot score its rows as harness.evaluate did; call "
        "harness.evaluate again (the calls already made are cached)\n"
    )
    shown = CliRunner().invoke(cli, ["runs", "show", first.run_id, "--json"])
    assert json.loads(shown.stdout)["errors"] == 2  # nothing was retried


def test_judges_take_harness_judge_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.judges import make_judge

    brief = make_judge("brief", "Is this brief?\n{output}")
    with pytest.raises(ConfigError, match="needs a judge model"):
        harness.evaluate(
            echo_question, ["q?"], model_type="text", judges=[brief], log_to_mlflow=False
        )
    result = harness.evaluate(
        echo_question,
        ["q?"],
        model_type="text",
        judges=[brief],
        judge_model="python:harness_test_models:judge_yes",
        log_to_mlflow=False,
    )
    assert result.metrics["brief/mean"] == 1.0


def test_an_eval_fn_reads_other_metrics_as_mlflow_passes_them() -> None:
    from harness.errors import MetricError

    def agrees(predictions: pd.Series, token_f1: object, metrics: dict) -> float:
        # MLflow passes another metric by its name, and every metric as `metrics`.
        mean = sum(token_f1.scores) / len(token_f1.scores)  # type: ignore[attr-defined]
        return float(mean == metrics["token_f1"].aggregate_results["mean"])

    data = pd.DataFrame({"question": ["a b?", "c?"], "answer": ["a b", "d"]})
    result = harness.evaluate(
        echo_question, data, metrics=["token_f1", agrees], log_to_mlflow=False
    )
    assert result.metrics["agrees"] == 1.0

    def wants(predictions: pd.Series, nowhere: pd.Series) -> float:
        return 0.0

    with pytest.raises(MetricError, match="metric 'wants' needs 'nowhere': no column"):
        harness.evaluate(echo_question, data, metrics=[wants], log_to_mlflow=False)


def test_an_eval_fn_reads_a_metric_that_has_aggregates_only() -> None:
    """MLflow's exact_match() reports an aggregate and no per-row scores: an eval_fn reading
    it (through `metrics` or by name) raised KeyError: 'exact_match/v1' or got its default,
    and its metric was missing from the results, where mlflow.evaluate passes it."""
    import mlflow.metrics
    from mlflow.metrics import MetricValue, make_metric

    def accuracy_pct(predictions: pd.Series, metrics: dict) -> MetricValue:
        found = metrics["exact_match/v1"]
        assert found.scores is None  # as MLflow passes it
        return MetricValue(aggregate_results={"pct": 100 * found.aggregate_results["exact_match"]})

    def by_name(predictions: pd.Series, exact_match: MetricValue | None = None) -> float:
        return -1.0 if exact_match is None else exact_match.aggregate_results["exact_match"]

    data = pd.DataFrame({"question": ["a?", "b?"], "answer": ["a", "x"], "outputs": ["a", "b"]})
    result = harness.evaluate(
        data=data,
        predictions="outputs",
        extra_metrics=[
            mlflow.metrics.exact_match(),
            make_metric(eval_fn=accuracy_pct, greater_is_better=True, name="acc"),
            make_metric(eval_fn=by_name, greater_is_better=True, name="em"),
        ],
        log_to_mlflow=False,
    )
    assert result.result.metric_errors == 0
    assert result.metrics["acc/pct"] == 50.0
    assert result.metrics["em"] == 0.5

    def legacy(eval_df: pd.DataFrame, builtin_metrics: dict) -> float:
        # MLflow's legacy signature: aggregates named as logged, "exact_match/v1" itself.
        return 100 * builtin_metrics["exact_match/v1"]

    legacy_result = harness.evaluate(
        data=data,
        predictions="outputs",
        extra_metrics=[
            mlflow.metrics.exact_match(),
            make_metric(eval_fn=legacy, greater_is_better=True, name="legacy_pct"),
        ],
        log_to_mlflow=False,
    )
    assert legacy_result.result.metric_errors == 0
    assert legacy_result.metrics["legacy_pct"] == 50.0


def test_one_feature_name_is_the_input() -> None:
    """feature_names=["q"] names the model's one feature: for a list, its column, which
    harness then refused ('no input column: looked for input, question, inputs'); for a
    DataFrame, it was ignored and another column named like an input was sent instead."""
    seen: list[dict] = []

    def model(row: dict) -> str:
        seen.append(row)
        return "a"

    frame = pd.DataFrame({"q": ["a?", "b?"], "inputs": ["id-1", "id-2"], "gold": ["a", "b"]})
    for data, options in (
        (["a?", "b?"], {"targets": ["a", "b"]}),
        (np.array(["a?", "b?"]), {"targets": np.array(["a", "b"])}),
        (frame, {"targets": "gold"}),
    ):
        seen.clear()
        result = harness.evaluate(
            model,
            data,
            feature_names=["q"],
            metrics=["exact_match"],
            log_to_mlflow=False,
            **options,
        )
        assert sorted(row["input"] for row in seen) == ["a?", "b?"]
        assert result.metrics["exact_match/mean"] == 0.5


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_function_model_is_called_at_most_concurrency_at_once(concurrency: int) -> None:
    """mlflow.evaluate calls a function model once; harness calls it per row from worker
    threads, and concurrency=1 (for a model that is not thread-safe) still had two rows in
    it at once: local calls were bounded by nothing but the 2 x concurrency row workers."""
    import threading
    import time

    inside: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def model(row: dict) -> str:
        with lock:
            inside.append(1)
            peak[0] = max(peak[0], len(inside))
        time.sleep(0.02)
        with lock:
            inside.pop()
        return "a"

    questions = [f"q{i}?" for i in range(12)]
    harness.evaluate(
        model, questions, model_type="text", concurrency=concurrency, log_to_mlflow=False
    )
    assert peak[0] == concurrency


def test_no_model_type_and_no_metrics_is_refused_as_mlflow_refuses_it() -> None:
    with pytest.raises(ConfigError, match="nothing to compute: give model_type=, metrics="):
        harness.evaluate(echo_question, ["q?"], model_type=None, log_to_mlflow=False)


def test_without_model_type_named_metrics_are_all_that_is_computed_as_in_mlflow() -> None:
    from mlflow.metrics import MetricValue, make_metric

    def n_chars(predictions: pd.Series) -> MetricValue:
        return MetricValue(scores=[float(len(p)) for p in predictions])

    # An mlflow.evaluate call without model_type, on data without targets: MLflow computes
    # the extra metric only, and so does harness (question-answering's exact_match would
    # need targets and refuse the run).
    data = pd.DataFrame({"inputs": ["a?", "b?"], "outputs": ["x", "yy"]})
    length = make_metric(eval_fn=n_chars, greater_is_better=False, name="n_chars")
    result = harness.evaluate(
        data=data, predictions="outputs", extra_metrics=[length], log_to_mlflow=False
    )
    assert set(result.result.metrics) == {"n_chars"}
    assert result.metrics["n_chars/mean"] == 1.5
    # Naming no metrics keeps question-answering's defaults, and model_type= still adds them.
    qa = pd.DataFrame({"inputs": ["a?"], "outputs": ["x"], "ground_truth": ["x"]})
    plain = harness.evaluate(data=qa, predictions="outputs", log_to_mlflow=False)
    assert {"exact_match", "token_f1"} <= set(plain.result.metrics)
    both = harness.evaluate(
        data=qa,
        predictions="outputs",
        model_type="question-answering",
        extra_metrics=[length],
        log_to_mlflow=False,
    )
    assert {"exact_match", "n_chars"} <= set(both.result.metrics)


@pytest.mark.parametrize("source", ["frame", "csv"])
def test_a_predictions_column_named_like_an_answer_is_the_output(
    tmp_path: Path, source: str
) -> None:
    """Model answers logged in a column named `answer` (as a RAG app's log has them) were
    read as the expected answer too: predictions="answer" failed, the column gone, with
    'has no column 'answer' for column:answer', where mlflow.evaluate scores it."""
    data = pd.DataFrame(
        {"question": ["What is 2+2?", "Capital of France?"], "answer": ["4", "Paris"]}
    )
    if source == "csv":
        data.to_csv(tmp_path / "answers.csv", index=False)
    result = harness.evaluate(
        data=data if source == "frame" else str(tmp_path / "answers.csv"),
        predictions="answer",
        model_type="text",
        log_to_mlflow=False,
    )
    table = result.tables["eval_results_table"]
    assert list(table["output"]) == ["4", "Paris"]
    assert list(table["expected"]) == [None, None]
    assert result.metrics["word_count/mean"] == 1.0
    graded = harness.evaluate(  # named with targets=, another column still is the answer
        data=data.assign(gold=["4", "paris"]),
        predictions="answer",
        targets="gold",
        metrics=["exact_match"],
        log_to_mlflow=False,
    )
    assert graded.metrics["exact_match/mean"] == 1.0


def test_a_make_metric_reports_mlflows_aggregates_only(home: Path) -> None:
    """MLflow logs an eval_fn's aggregate_results and nothing else: by default (scores
    only) mean, variance and p90. harness added its own p50 and count (and to an eval_fn's
    own aggregates mean, p50, p90 and count), metrics MLflow never logs; its own metrics
    keep them."""
    import mlflow
    from mlflow.metrics import MetricValue, make_metric

    from harness.config import resolve_home

    def n_chars(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(scores=[float(len(p)) for p in predictions])

    def totals(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(scores=[1.0, 2.0], aggregate_results={"total": 3.0})

    data = pd.DataFrame({"inputs": ["a?", "b?"], "pred": ["x", "yy"], "truth": ["x", "y"]})
    result = harness.evaluate(
        data=data,
        predictions="pred",
        targets="truth",
        metrics=["exact_match"],
        extra_metrics=[
            make_metric(eval_fn=n_chars, greater_is_better=False, name="n_chars"),
            make_metric(eval_fn=totals, greater_is_better=True, name="totals"),
        ],
    )
    expected = {
        "exact_match/mean": 0.5,
        "exact_match/p50": 0.5,
        "exact_match/p90": 0.9,
        "exact_match/count": 2,
        "n_chars/mean": 1.5,
        "n_chars/variance": 0.25,
        "n_chars/p90": 1.9,
        "totals/total": 3.0,
    }
    named = ("exact_match", "n_chars", "totals")
    ours = {k: v for k, v in result.metrics.items() if k.split("/")[0] in named}
    assert ours == pytest.approx(expected)
    logged = mlflow.MlflowClient(resolve_home(home).tracking_uri).get_run(result.mlflow_run_id)
    assert {
        k: v for k, v in logged.data.metrics.items() if k.split("/")[0] in ("n_chars", "totals")
    } == pytest.approx({k: v for k, v in expected.items() if not k.startswith("exact")})


def test_a_make_metric_of_text_scores_reports_nothing_as_mlflow(home: Path) -> None:
    """An eval_fn scoring rows "yes"/"no" (MetricValue(scores=[...]) of text): MLflow logs no
    aggregate for it; harness reported and logged `yes_no/count` 0, a metric MLflow never
    logs, that reads as "no row scored"."""
    import mlflow
    from mlflow.metrics import MetricValue, make_metric

    from harness.config import resolve_home

    def yes_no(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(scores=["yes" if len(p) > 1 else "no" for p in predictions])

    data = pd.DataFrame({"inputs": ["a?", "b?"], "pred": ["x", "yy"], "truth": ["x", "y"]})
    arguments = {
        "data": data,
        "predictions": "pred",
        "targets": "truth",
        "extra_metrics": [make_metric(eval_fn=yes_no, greater_is_better=True, name="yes_no")],
    }
    result = harness.evaluate(**arguments)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = mlflow.evaluate(**arguments)
    assert reference.metrics == {}
    assert [k for k in result.metrics if k.startswith("yes_no")] == []
    logged = mlflow.MlflowClient(resolve_home(home).tracking_uri).get_run(result.mlflow_run_id)
    assert [k for k in logged.data.metrics if k.startswith("yes_no")] == []


def test_static_predictions_need_no_input_column(home: Path) -> None:
    """mlflow.evaluate(data=df, predictions="pred", targets="truth",
    model_type="question-answering") scores data with no input column: its heuristic metrics
    read only outputs and targets. harness refused it ("no input column: looked for input,
    question, inputs; ..."). The rows now have an empty input, stored, logged and shown."""
    import mlflow

    from harness.config import resolve_home
    from harness.errors import DataError

    data = pd.DataFrame({"pred": ["Paris", "4"], "truth": ["Paris", "5"]})
    result = harness.evaluate(
        data=data, predictions="pred", targets="truth", model_type="question-answering"
    )
    table = result.tables["eval_results_table"]
    assert list(table["input"]) == ["", ""]
    assert list(table["output"]) == ["Paris", "4"]
    assert result.metrics["exact_match/mean"] == 0.5
    client = mlflow.MlflowClient(resolve_home(home).tracking_uri)
    assert client.get_run(result.mlflow_run_id).data.metrics["exact_match/mean"] == 0.5
    artifact = client.download_artifacts(result.mlflow_run_id, "eval_results_table.json")
    logged = json.loads(Path(artifact).read_text(encoding="utf-8"))
    assert [row[logged["columns"].index("output")] for row in logged["data"]] == ["Paris", "4"]
    shown = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--rows"])
    assert shown.exit_code == 0, shown.output
    # A model still needs an input to be given.
    with pytest.raises(DataError, match="no input column"):
        harness.evaluate(lambda row: "x", data.drop(columns="pred"), targets="truth")


def iterrows_model(inputs: pd.DataFrame) -> list[str]:
    """MLflow's documented function model (openai_qa): a DataFrame in, a list out. The row
    dict has no iterrows, and the warning said only that, with no hint of what harness
    passes."""
    return [str(row["inputs"]).upper() for _, row in inputs.iterrows()]


def test_failed_rows_and_metrics_are_a_warning_naming_the_reason(home: Path) -> None:
    from harness_test_metrics import raises

    from harness.errors import RowsFailedWarning

    def dataframe_model(input_df: pd.DataFrame) -> pd.Series:
        # Written for mlflow.evaluate (a DataFrame in): harness passes one row as a dict.
        return input_df["inputs"].map(str.upper)

    data = pd.DataFrame({"inputs": ["a?", "b?"], "ground_truth": ["A?", "B?"]})
    with pytest.warns(RowsFailedWarning) as caught:
        result = harness.evaluate(
            dataframe_model, data, targets="ground_truth", log_to_mlflow=False
        )
    assert result.result.errors == 2 and result.metrics == {}
    [warning] = caught
    assert str(warning.message).startswith("2 of 2 rows failed (2 x python:")
    # row["inputs"] is the row's input text (the column's own name), which has no .map
    assert "dataframe_model raised AttributeError: 'str' object has no attribute 'map'" in str(
        warning.message
    )
    hint = (
        "the rows are in the table with their error; a model function gets one row as a "
        "dict: the input as row['input'], the expected answer as row['expected'], the "
        "context as row['context'] (each also under its column's name) and the data's other "
        "columns by name (not a DataFrame, as mlflow.evaluate's does)"
    )
    assert str(warning.message).endswith(hint)
    assert warning.filename == __file__  # the caller's line, not harness's
    with pytest.warns(RowsFailedWarning) as caught:  # a key the row lacks: the same hint
        harness.evaluate(lambda row: row["question"], data, log_to_mlflow=False)
    assert "raised KeyError: 'question'" in str(caught[0].message)
    assert str(caught[0].message).endswith(hint)
    with pytest.warns(RowsFailedWarning) as caught:  # MLflow's docs' model: a DataFrame's rows
        harness.evaluate(iterrows_model, data, log_to_mlflow=False)
    assert "raised AttributeError: 'dict' object has no attribute 'iterrows'" in str(
        caught[0].message
    )
    assert str(caught[0].message).endswith(hint)
    with pytest.warns(RowsFailedWarning) as caught:  # a key of the row dict: no such hint
        harness.evaluate(lambda row: row["context"] + 1, data, log_to_mlflow=False)
    assert str(caught[0].message).endswith("the rows are in the table with their error")

    with pytest.warns(RowsFailedWarning, match=r"^metrics failed \(metrics raised on 2 row"):
        harness.evaluate(echo_question, data, metrics=[raises], log_to_mlflow=False)


class BatchModel:
    """Shaped like a loaded MLflow model: predict takes a batch and returns a list."""

    def predict(self, inputs: list) -> list:
        return [text.upper() for text in inputs]


def test_a_model_returning_a_list_is_a_row_error_not_an_answer() -> None:
    """A function that returned its batch predict whole (a list, a Series, an SDK's response
    object) had its str() scored as the answer: "['A?']" against "A?", silently wrong."""
    from harness.errors import RowsFailedWarning

    m = BatchModel()
    data = pd.DataFrame({"inputs": ["a?", "b?"], "ground_truth": ["A?", "B?"]})
    for model in (
        lambda row: m.predict([row["input"]]),
        lambda row: pd.Series(m.predict([row["input"]])),
    ):
        with pytest.warns(RowsFailedWarning, match=r"returned a (list|Series), not text"):
            result = harness.evaluate(model, data, targets="ground_truth", log_to_mlflow=False)
        assert result.result.errors == 2 and result.metrics == {}
        [error] = set(result.tables["eval_results_table"]["error"])
        assert error.endswith(
            "not text; a model gets one row and returns its answer as a str (from a batch "
            'predict, its first item: m.predict([row["input"]])[0])'
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RowsFailedWarning)  # the advice, followed
        right = harness.evaluate(
            lambda row: m.predict([row["input"]])[0],
            data,
            targets="ground_truth",
            log_to_mlflow=False,
        )
        numbers = harness.evaluate(lambda row: 4, data, model_type="text", log_to_mlflow=False)
    assert right.metrics["exact_match/mean"] == 1.0
    assert list(numbers.tables["eval_results_table"]["output"]) == ["4", "4"]


def test_an_mlflow_scorer_gets_inputs_outputs_and_expectations_and_keeps_its_rationale() -> None:
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    @scorer
    def answers_it(inputs: dict, outputs: str, expectations: dict) -> Feedback:
        expected = expectations["expected_response"]
        return Feedback(
            value=float(outputs.strip().lower() == expected.lower()),
            rationale=f"asked {inputs['question']!r}, expected {expected!r}",
        )

    # MLflow 3's records: inputs as a dict, expectations beside them.
    data = [
        {"inputs": {"question": "2+2?"}, "expectations": {"expected_response": "4"}},
        {"inputs": {"question": "Capital?"}, "expectations": {"expected_response": "Paris"}},
    ]

    def model(row: dict) -> str:
        return "4" if "2+2" in row["input"] else "Lyon"

    result = harness.evaluate(model, data, extra_metrics=[answers_it], log_to_mlflow=False)
    assert set(result.result.metrics) == {"answers_it"}
    table = result.tables["eval_results_table"].sort_values("id")
    assert list(table["answers_it"]) == [1.0, 0.0]
    assert list(table["answers_it/rationale"]) == [
        "asked '2+2?', expected '4'",
        "asked 'Capital?', expected 'Paris'",
    ]


def test_an_infinite_metric_value_is_that_rows_metric_error(home: Path) -> None:
    # inf once went into the store as a value; the run's report then failed to draw its
    # chart (autodetected range ... is not finite), and compare showed inf means.
    import duckdb

    from harness.data import import_dataframe

    import_dataframe(
        pd.DataFrame({"question": ["a?", "b?", "c?"], "answer": ["a", "b", "c"]}),
        name="qa",
        home=home,
    )
    result = CliRunner().invoke(
        cli,
        [
            "run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json",
            "--metric", "python:harness_test_metrics:infinite",
            "--metric", "python:harness_test_metrics:infinite_eval_fn",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["metric_errors"] == 2  # one row of each metric
    assert doc["metrics"]["infinite"]["mean"] == 0.5
    assert doc["metrics"]["infinite_eval_fn"]["mean"] == 0.5
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    errors = con.execute(
        "select metric, error from scores where value is null order by metric"
    ).fetchall()
    con.close()
    assert errors == [
        ("infinite", "MetricError: metric 'infinite' returned inf, not a finite number"),
        ("infinite_eval_fn", "metric 'infinite_eval_fn' returned -inf, not a finite number"),
    ]
    report = CliRunner().invoke(cli, ["report", doc["run_id"], "-o", str(home / "r.html")])
    assert report.exit_code == 0, report.output

    # An eval_fn's own aggregate that is infinite showed 'inf' in the summary and null in
    # --json, exit 0: it is the metric's error too.
    result = CliRunner().invoke(
        cli,
        [
            "run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json",
            "--metric", "python:harness_test_metrics:infinite_aggregate",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["metric_errors"] == 1
    assert "metric 'infinite_aggregate': its aggregate 'mean' is inf" in result.stderr


def test_the_table_keeps_the_datas_other_columns_as_mlflow_does(home: Path) -> None:
    import mlflow

    from harness.config import resolve_home

    data = pd.DataFrame(
        {
            "question": ["What is 2+2?", "Capital of France?", "Colour of the sky?"],
            "answer": ["4", "Paris", "blue"],
            "category": ["math", "geography", None],
            "difficulty": [1, 2, 3],
            "tags": [["easy"], [], ["easy", "nature"]],
            "exact_match": ["theirs"] * 3,  # a metric's name: the metric's column wins
        }
    )
    result = harness.evaluate(echo_question, data, targets="answer", metrics=["exact_match"])
    table = result.tables["eval_results_table"]
    cached_at = list(table.columns).index("cached")
    assert list(table.columns)[cached_at + 1 :] == ["category", "difficulty", "tags", "exact_match"]
    by_input = table.set_index("input")
    assert by_input.loc["What is 2+2?", "category"] == "math"
    assert pd.isna(by_input.loc["Colour of the sky?", "category"])
    assert list(by_input["difficulty"]) == [1, 2, 3]
    assert by_input.loc["Colour of the sky?", "tags"] == ["easy", "nature"]
    assert set(table["exact_match"]) == {0.0}  # the metric's values, not the data's text

    # The MLflow run's table artifact has them too.
    client = mlflow.MlflowClient(resolve_home(home).tracking_uri)
    artifact = client.download_artifacts(result.mlflow_run_id, "eval_results_table.json")
    logged = json.loads(Path(artifact).read_text(encoding="utf-8"))
    assert logged["columns"] == list(table.columns)
    assert [row[logged["columns"].index("difficulty")] for row in logged["data"]] == [1, 2, 3]

    # `runs show --rows` leaves them out unless named.
    shown = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--rows"])
    assert shown.exit_code == 0, shown.output
    assert "difficulty" not in shown.stdout and "exact_match" in shown.stdout
    named = CliRunner().invoke(
        cli, ["runs", "show", result.run_id, "--rows", "--columns", "category,difficulty"]
    )
    assert named.exit_code == 0, named.output
    assert "geography" in named.stdout and "difficulty" in named.stdout
    # --columns, --errors and --all are about rows: without --rows they were ignored.
    implied = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--columns", "category"])
    assert implied.exit_code == 0, implied.output
    assert "geography" in implied.stdout
    limited = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--limit", "1"])
    assert "What is 2+2?" in limited.stdout and "... 2 more rows" in limited.stdout
    errors = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--errors", "--json"])
    assert json.loads(errors.stdout)["rows_table"] == []  # asked for, and none failed


def answer_by_column_names(row: dict) -> str:
    # Written as for mlflow.evaluate's columns: the data's own names, not harness's.
    return f"{row['question']}|{row['truth']}|{row['passage']}|{row['input']}"


def test_a_model_function_reads_the_mapped_columns_under_their_own_names(home: Path) -> None:
    """def model(row): return row["question"] failed every row with KeyError: 'question':
    the mapped input was only row["input"]."""
    data = pd.DataFrame({"question": ["a?", "b?"], "truth": ["t1", "t2"], "passage": ["p1", "p2"]})
    result = harness.evaluate(
        answer_by_column_names,
        data,
        targets="truth",
        context="passage",
        extra_metrics="exact_match",
        log_to_mlflow=False,
    )
    assert result.result.errors == 0
    table = result.tables["eval_results_table"]
    assert list(table["output"]) == ["a?|t1|p1|a?", "b?|t2|p2|b?"]
    # A column named as one of harness's own fields keeps harness's value there.
    named_prompt = pd.DataFrame({"prompt": ["x?"], "context": ["c"], "passage": ["p"]})
    result = harness.evaluate(
        lambda row: f"{row['prompt']}|{row['context']}|{row['expected']}",
        named_prompt,
        inputs="prompt",
        targets="context",
        context="passage",
        prompt="Q: {input}",
        log_to_mlflow=False,
    )
    assert list(result.tables["eval_results_table"]["output"]) == ["Q: x?|p|c"]


def test_two_metrics_of_one_name_are_refused_in_pythons_words(home: Path) -> None:
    """Two lambdas (both '<lambda>') or two make_metric(name="m") in extra_metrics: the
    refusal told a Python caller to "name one with LABEL=... on the command line or
    [metrics.LABEL] in harness.toml", neither of which names a function."""
    from mlflow.metrics import MetricValue, make_metric

    from harness.errors import MetricError

    def total(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"v": 1.0})

    def other(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"v": 2.0})

    data = pd.DataFrame({"inputs": ["a?", "b?"], "pred": ["x", "yy"], "truth": ["x", "y"]})
    for extra, name in (
        ([lambda row: 1.0, lambda row: 0.0], "<lambda>"),
        ([make_metric(eval_fn=f, greater_is_better=True, name="m") for f in (total, other)], "m"),
        (["regex:a", "regex:b"], "regex"),
    ):
        with pytest.raises(MetricError) as caught:
            harness.evaluate(data=data, predictions="pred", targets="truth", extra_metrics=extra)
        assert str(caught.value) == (
            f"two metrics are named {name!r}; give each a name of its own: a function's "
            "(def NAME, not a lambda), make_metric(name=...), or a spec's LABEL= "
            "('cites=regex:...')"
        )


def test_one_metric_object_given_twice_is_computed_once_as_in_mlflow(home: Path) -> None:
    """extra_metrics naming one metric twice (one object twice, or MLflow's exact_match()
    made twice): mlflow.evaluate computes it once; harness refused the call as two metrics
    of one name. Two different metrics of one name are still refused."""
    import mlflow
    from mlflow.metrics import MetricValue, make_metric

    from harness.errors import MetricError

    def total(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"v": 1.0})

    def other(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"v": 2.0})

    once = make_metric(eval_fn=total, greater_is_better=True, name="m")
    data = pd.DataFrame({"inputs": ["a?", "b?"], "pred": ["x", "yy"], "truth": ["x", "y"]})
    arguments = {
        "data": data,
        "predictions": "pred",
        "targets": "truth",
        "extra_metrics": [mlflow.metrics.exact_match(), once, mlflow.metrics.exact_match(), once],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = mlflow.evaluate(**arguments)
    result = harness.evaluate(**arguments)
    assert result.metrics == pytest.approx(reference.metrics)
    assert result.metrics == {"exact_match/v1": 0.5, "m/v": 1.0}
    twins = [once, make_metric(eval_fn=other, greater_is_better=True, name="m")]
    with pytest.raises(MetricError, match="two metrics are named 'm'"):
        harness.evaluate(**{**arguments, "extra_metrics": twins})
