"""harness.evaluate's arguments as Python users pass them: a single name where a list is
expected, a wrong type, a refused call (which stores nothing), and what each says."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import harness
import harness.data
from harness.errors import ConfigError, DataError, MetricError, ModelURIError, ReplayMiss
from harness.store.datasets import list_datasets

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

DATA = pd.DataFrame(
    {
        "question": ["What is 2+2?", "Capital of France?"],
        "answer": ["4", "Paris"],
        "topic": ["maths", "places"],
    }
)


def answer_four(row: dict) -> str:
    return "4"


def test_a_single_metric_name_is_one_metric_not_its_letters() -> None:
    result = harness.evaluate(
        answer_four,
        DATA,
        targets="answer",
        extra_metrics="exact_match",
        judges=(),
        by="topic",
        log_to_mlflow=False,
    )
    assert result.metrics["exact_match/mean"] == 0.5
    assert result.metrics["exact_match/mean/by/topic/maths"] == 1.0
    only = harness.evaluate(
        answer_four, DATA, targets="answer", metrics="token_f1", log_to_mlflow=False
    )
    assert {name.split("/")[0] for name in only.metrics} == {"token_f1"}


def test_a_single_mlflow_scorer_is_one_metric_and_none_is_no_metrics() -> None:
    """An MLflow scorer is a pydantic model, which iterates over its fields: extra_metrics=
    one scorer was taken apart (cannot use tuple ('name', 'says_four') as a metric), and
    extra_metrics=None, MLflow's own default, was a metric None."""
    from mlflow.genai.scorers import scorer

    @scorer
    def says_four(outputs: str) -> bool:
        return outputs == "4"

    result = harness.evaluate(
        answer_four,
        DATA,
        metrics=[],
        extra_metrics=says_four,
        judges=None,
        by=pd.Series(["topic"]),
        log_to_mlflow=False,
    )
    assert {name.split("/")[0] for name in result.metrics} == {"says_four"}
    assert result.metrics["says_four/mean/by/topic/maths"] == 1.0
    none = harness.evaluate(
        answer_four, DATA, targets="answer", extra_metrics=None, log_to_mlflow=False
    )
    assert "exact_match/mean" in none.metrics


def test_what_counts_as_a_list_of_metrics() -> None:
    """Containers are lists whatever their type (dict keys, range, deque); a str of any
    kind (numpy's too) is one name; a pydantic model (an MLflow scorer) is one object."""
    import collections

    import numpy as np

    from harness.evaluate_arguments import listed as _listed

    assert _listed(np.str_("exact_match"), "metrics") == ["exact_match"]
    assert _listed({"exact_match": 1, "token_f1": 2}.keys(), "metrics") == [
        "exact_match",
        "token_f1",
    ]
    assert _listed(collections.deque(["token_f1"]), "metrics") == ["token_f1"]
    assert _listed(range(2), "by") == [0, 1]
    assert _listed(None, "judges") == []


@pytest.mark.parametrize(
    ("argument", "value", "said"),
    [
        ("params", [1, 2], "params= takes a dict, got list [1, 2]"),
        ("inference_params", "x", "inference_params= takes a dict, got str 'x'"),
        ("evaluator_config", "x", "evaluator_config= takes a dict, got str 'x'"),
        ("concurrency", "4", "concurrency= takes an int, got str '4'"),
        ("concurrency", True, "concurrency= takes an int, got bool True"),
        ("judge_samples", 1.5, "judge_samples= takes an int, got float 1.5"),
        ("max_cost", "1", "max_cost= takes a number (USD), got str '1'"),
        ("max_cost", float("nan"), "max_cost= must be positive, got nan"),  # was taken
        ("cache", None, "cache= takes a str, got NoneType None"),
        ("run_name", 3, "run_name= takes a str, got int 3"),
        ("by", ["topic", 3], "by= takes a column name or a list of them, got list ['topic', 3]"),
        # Each was a TypeError or AttributeError traceback from deep inside.
        ("params", {5: 1}, "params= takes names (str) as keys, got 5"),
        ("evaluators", 5, "evaluators= takes a name or a list of names, not 5"),
        ("spark_remote", 5, "spark_remote= takes a str, got int 5"),
        ("home", 5, "the project home must be a folder's path, not 5"),
        # said in the CLI's words: --experiment '' is empty
        ("experiment", " ", "experiment= is empty (' '): give an experiment's name"),
        ("run_name", "", "run_name= is empty (''): give the run a name, or None"),
    ],
)
def test_a_wrong_type_is_one_line_naming_the_argument(
    argument: str, value: object, said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(answer_four, DATA, log_to_mlflow=False, **{argument: value})
    assert str(raised.value) == said


def test_log_to_mlflow_takes_true_or_false(tmp_path: Path) -> None:
    # "no" was true: the run was logged to MLflow, as were 0 and None
    project = tmp_path / "project"
    for value in ("no", 0, None):
        with pytest.raises(ConfigError) as raised:
            harness.evaluate(answer_four, DATA, home=project, log_to_mlflow=value)
        assert str(raised.value).startswith("log_to_mlflow= takes True or False, got ")
    assert not project.exists()  # nothing stored, no MLflow store made


def test_numpy_integers_are_ints() -> None:
    import numpy as np

    result = harness.evaluate(
        answer_four, DATA, targets="answer", concurrency=np.int64(2), log_to_mlflow=False
    )
    assert result.result.rows == 2


def _stored(home: Path) -> tuple[int, int]:
    """How many dataset versions and examples the project's store holds."""
    db = home / "harness.duckdb"
    if not db.exists():
        return 0, 0
    with duckdb.connect(str(db), read_only=True) as con:
        versions = con.execute("SELECT count(*) FROM datasets").fetchone()
        examples = con.execute("SELECT count(*) FROM examples").fetchone()
    assert versions is not None and examples is not None
    return versions[0], examples[0]


def needs_nope(predictions: pd.Series, nope: pd.Series) -> float:
    return 1.0


REFUSED = {
    "unknown metric": ({"extra_metrics": ["exact_matc"]}, MetricError),
    "unknown judge": ({"judges": ["nonsense"]}, MetricError),
    "bad model URI": ({"model": "runs:/abc/model"}, ModelURIError),
    "missing API key": (
        {"judges": ["correctness"], "judge_model": "anthropic:/claude"},
        ConfigError,
    ),
    "missing by column": ({"by": "region"}, ConfigError),
    "eval_fn argument": ({"extra_metrics": [needs_nope]}, MetricError),
    "missing predictions column": ({"model": None, "predictions": "nope"}, DataError),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_call_stores_no_dataset(home: Path, tmp_path: Path, case: str) -> None:
    options, error = REFUSED[case]
    arguments: dict = {"model": answer_four, **options}
    # DATA's version is stored before, by no run: the refused call must not remove it.
    kept = harness.data.import_dataframe(DATA, name="dataframe", expected="answer")
    before = _stored(home)
    assert before[0] == 1
    fresh = DATA.assign(question=["What is 3+3?", "Capital of Italy?"])  # a new version
    path = tmp_path / "fresh.csv"
    fresh.assign(question=["What is 4+4?", "Capital of Spain?"]).to_csv(path, index=False)
    for data in (fresh, str(path), DATA):  # DATA: its version was there before, and stays
        with pytest.raises(error):
            harness.evaluate(data=data, targets="answer", log_to_mlflow=False, **arguments)
        assert _stored(home) == before
    again = harness.data.import_dataframe(DATA, name="dataframe", expected="answer")
    assert again.dataset.ref == kept.dataset.ref and not again.created


def test_a_run_that_failed_once_it_existed_keeps_its_dataset(home: Path) -> None:
    from harness.errors import ReplayMiss

    with pytest.raises(ReplayMiss) as raised:  # nothing cached: the run fails on its rows
        harness.evaluate(
            "openai:/gpt-4o-mini", DATA, targets="answer", cache="replay", log_to_mlflow=False
        )
    assert raised.value.result is not None
    assert _stored(home) == (1, 2)  # the failed run's rows are resumable: its data stays


class Predictor:
    """Shaped like MLflow's PyFuncModel: not callable, a predict over a batch of inputs."""

    def predict(self, data: list) -> list:
        return ["4" for _ in data]


def test_a_model_object_is_refused_saying_how_to_pass_it(home: Path) -> None:
    with pytest.raises(ModelURIError) as raised:
        harness.evaluate(Predictor(), DATA, targets="answer", log_to_mlflow=False)
    said = str(raised.value)
    assert said == (
        "model= takes a model URI (openai:/MODEL, python:MODULE:FUNCTION, ...) or a function "
        "of the row dict, not a Predictor; wrap its predict in one: "
        'model=lambda row: m.predict([row["input"]])[0]'
    )
    with pytest.raises(ModelURIError, match=r"function of the row dict returning text, not a int"):
        harness.evaluate(42, DATA, targets="answer", log_to_mlflow=False)
    m = Predictor()  # the advice, followed, runs
    result = harness.evaluate(
        lambda row: m.predict([row["input"]])[0], DATA, targets="answer", log_to_mlflow=False
    )
    assert result.metrics["exact_match/mean"] == 0.5
    assert _stored(home) == (1, 2)  # the refused calls stored nothing


@pytest.mark.parametrize(
    ("data", "options", "error", "said"),
    [
        (
            DATA,
            {"by": "region"},
            ConfigError,
            "by='region': the data has no such column; its columns: question, answer, topic",
        ),
        (
            DATA,
            {"by": "answer"},
            ConfigError,
            "by='answer': that column is the data's expected answer; use by='expected'",
        ),
        # stratify= of one of the DataFrame's own columns said "no row has that column",
        # though the DataFrame plainly had it: it is named as by= names it
        (
            DATA,
            {"sample": 2, "stratify": "answer"},
            ConfigError,
            "stratify='answer': that column is the data's expected answer; use stratify='expected'",
        ),
        (
            DATA,
            {"sample": 2, "stratify": "region"},
            ConfigError,
            "stratify='region': the data has no such column; its columns: question, answer, topic",
        ),
        # by='' with a DataFrame was checked as a column the data lacks, in the CLI's words
        (DATA, {"by": ""}, ConfigError, "by= needs a column name, got ''"),
        (
            DATA,
            {"by": ["topic", "topic"]},
            ConfigError,
            "by='topic' is given more than once; a column is sliced once",
        ),
        (DATA, {"concurrency": 0}, ConfigError, "concurrency= must be at least 1, got 0"),
        # 10**11 samples grew the process to 7 GB in 20 s before the first call
        (
            DATA,
            {"judge_samples": 10**11},
            ConfigError,
            "judge_samples= must be at most 100 (each sample is a judge call per row), "
            "got 100000000000",
        ),
        (
            DATA[["answer"]],
            {},
            DataError,
            "no input column: looked for input, question, inputs; "
            "name one with inputs=COLUMN; its columns: answer",
        ),
        # A column named by targets=, inputs=, context= or col_mapping that the data lacks
        # was said in the import's words: column 'gold' (for expected) does not exist
        (
            DATA,
            {"targets": "gold"},
            DataError,
            "targets='gold': the data has no such column; its columns: question, answer, topic",
        ),
        (
            DATA,
            {"inputs": "prompt"},
            DataError,
            "inputs='prompt': the data has no such column; its columns: question, answer, topic",
        ),
        (
            DATA,
            {"evaluator_config": {"col_mapping": {"inputs": "prompt"}}},
            DataError,
            "evaluator_config['col_mapping']['inputs']='prompt': the data has no such column; "
            "its columns: question, answer, topic",
        ),
        (
            DATA,
            {"context": "passage"},
            DataError,
            "context='passage': the data has no such column; its columns: question, answer, topic",
        ),
    ],
)
def test_messages_name_the_python_arguments_and_the_users_columns(
    data: pd.DataFrame, options: dict, error: type[Exception], said: str
) -> None:
    with pytest.raises(error) as raised:
        harness.evaluate(answer_four, data, log_to_mlflow=False, **options)
    assert str(raised.value) == said


def test_a_metric_without_expected_answers_names_targets() -> None:
    with pytest.raises(MetricError, match=r"at import, targets= in harness.evaluate\)$"):
        harness.evaluate(answer_four, DATA[["question"]], metrics=["exact_match"])


def test_the_runs_own_checks_name_evaluates_arguments_not_cli_flags(home: Path) -> None:
    """by= on a stored dataset and sample= are checked by the run, whose messages named the
    CLI's flags to a Python caller (--by nosuch: no row has that column)."""
    from harness.data import import_dataframe

    import_dataframe(DATA, name="stored")
    cases = [
        ({"by": "nosuch"}, ConfigError, "by='nosuch': no row has that column; columns: "),
        ({"by": ""}, ConfigError, "by= needs a column name, got ''"),
        (
            {"by": ["topic", "topic"]},
            ConfigError,
            "by='topic' is given more than once; a column is sliced once",
        ),
        ({"sample": 40}, DataError, "sample=40 is more rows than the 2 there are "),
        ({"sample": 1, "stratify": "nosuch"}, ConfigError, "stratify='nosuch': no row has"),
    ]
    for arguments, kind, said in cases:
        with pytest.raises(kind) as raised:
            harness.evaluate(answer_four, "stored", log_to_mlflow=False, **arguments)
        assert str(raised.value).startswith(said)


@pytest.mark.parametrize(
    ("arguments", "kind", "said"),
    [
        (
            {"by": "topic", "max_slices": 1},
            ConfigError,
            "by='topic': 2 distinct values, more than the 1 allowed; slice by a column with "
            "fewer values, or raise the limit with max_slices=N ([slices] max_values in "
            "harness.toml)",
        ),
        (
            {"by": "topic", "max_slices": 0},
            ConfigError,
            "max_slices= must be a whole number of at least 1, got 0",
        ),
        (
            {"stratify": "topic"},
            ConfigError,
            "stratify= needs sample=N (or a fraction such as 0.1)",
        ),
        (
            {"seed": 3},
            ConfigError,
            "seed= picks which sample=; give sample=N (or a fraction) too",
        ),
        (
            {"seed": 0},
            ConfigError,
            "seed= picks which sample=; give sample=N (or a fraction) too",
        ),
        (
            {"sample": 1, "stratify": ""},
            ConfigError,
            "stratify= needs a column name, got ''",
        ),
        (
            {"stratify": ""},
            ConfigError,
            "stratify= needs a column name, got ''",
        ),
        (
            {"judges": ["correctness"]},
            ConfigError,
            "judges= needs a judge model: pass judge_model=URI or set judge_model in harness.toml",
        ),
        (
            {"judges": ["guidelines"], "judge_model": "echo"},
            MetricError,
            "the guidelines judge needs at least one guideline: guidelines=[TEXT]",
        ),
        (
            {"metrics": ["bogus:x"]},
            MetricError,
            "metric 'bogus:x': unknown metric kind 'bogus'; known: python, ",
        ),
        (
            {"metrics": ["lbl="]},
            MetricError,
            "metric 'lbl=': nothing after lbl=",
        ),
        (
            {"params": {"api_key": "sk-x"}},
            ConfigError,
            "params={'api_key': ...} would store a credential with the run; keys are read "
            "from environment variables only (e.g. OPENAI_API_KEY)",
        ),
        (
            {"params": {"temperature": "hot"}},
            ConfigError,
            "params temperature must be a number, got 'hot'",
        ),
        (
            {"max_cost": 1.0, "model": "openai:/gpt-unpriced"},
            ConfigError,
            "max_cost= needs the price of openai:/gpt-unpriced, which harness does not know",
        ),
        (
            {"model": "openai:/gpt-test", "cache": "replay"},
            ReplayMiss,
            "cache='replay': the model call for row ",
        ),
        (
            {"spark": "yes"},
            ConfigError,
            "spark= takes True, a SparkSession, an sc:// URL or 'databricks', not 'yes'",
        ),
        (
            {"spark": "databricks", "spark_remote": "sc://127.0.0.1:1"},
            ConfigError,
            "spark='databricks' and spark_remote= name two clusters; give one of them",
        ),
        (
            {"spark_profile": "dev"},
            ConfigError,
            "spark_profile= names the Databricks profile of spark='databricks'",
        ),
    ],
)
def test_no_message_of_evaluate_names_a_cli_flag(
    home: Path, monkeypatch: pytest.MonkeyPatch, arguments: dict, kind: type[Exception], said: str
) -> None:
    """Checks evaluate shares with `harness run` told a Python caller to raise the limit
    with --max-slices N, that --stratify COLUMN needs --sample N, to pass --judge-model URI;
    each now names evaluate's argument."""
    from harness.data import import_dataframe

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never reached
    import_dataframe(DATA, name="stored")
    options = {"model": answer_four, "log_to_mlflow": False, **arguments}
    with pytest.raises(kind) as raised:
        harness.evaluate(data="stored", **options)
    assert str(raised.value).startswith(said), str(raised.value)
    assert "--" not in re.sub(r"`[^`]*`", "", str(raised.value))  # a command may have flags


def test_metric_prefix_is_refused_and_nested_runs_keep_two_evaluations_apart(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluator_config={'metric_prefix': ...} (MLflow's way to log two evaluations in one
    run) was ignored: both logged exact_match/mean into the run, the second over the first."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "user.db"))
    with mlflow.start_run(), pytest.raises(ConfigError) as raised:
        harness.evaluate(
            answer_four, DATA, targets="answer", evaluator_config={"metric_prefix": "base_"}
        )
    assert str(raised.value) == (
        "evaluator_config['metric_prefix'] is not supported: harness names metrics as it "
        "stores them; evaluate each model in its own MLflow run "
        "(with mlflow.start_run(nested=True):)"
    )
    assert _stored(home) == (0, 0)
    with mlflow.start_run():  # the advice, followed
        runs = {}
        right = lambda row: "4" if "2+2" in row["input"] else "Paris"  # noqa: E731
        for name, model in (("four", answer_four), ("right", right)):
            with mlflow.start_run(nested=True) as run:
                harness.evaluate(model, DATA, targets="answer", metrics=["exact_match"])
            runs[name] = mlflow.get_run(run.info.run_id).data.metrics["exact_match/mean"]
    assert runs == {"four": 0.5, "right": 1.0}


def test_a_missing_predictions_column_is_named_in_the_users_words(
    home: Path, tmp_path: Path
) -> None:
    """predictions= naming no column said 'dataframe@... has no column 'outputs' for
    column:outputs; its other columns: context, expected' (the CLI's model URI, harness's
    names for the user's columns question and answer)."""
    with pytest.raises(DataError) as raised:
        harness.evaluate(data=DATA, predictions="outputs", log_to_mlflow=False)
    assert str(raised.value) == (
        "predictions='outputs': the data has no such column; its columns: question, answer, topic"
    )
    # A file's said 'qa@... has no column 'outputs' for predictions='outputs'; its other
    # columns: context, expected, topic': harness's names for the stored question and answer.
    DATA.to_csv(tmp_path / "qa.csv", index=False)
    DATA.to_json(tmp_path / "qa.jsonl", orient="records", lines=True)
    for path in (tmp_path / "qa.csv", tmp_path / "qa.jsonl"):
        with pytest.raises(DataError) as raised:
            harness.evaluate(data=str(path), predictions="outputs", log_to_mlflow=False)
        assert str(raised.value) == (
            "predictions='outputs': the data has no such column; its columns: "
            "question, answer, topic"
        )
        # by= said "no row has that column; columns: context, expected, id, input, topic"
        # for both, as it does for a DataFrame's: the user's column answer is the expected.
        with pytest.raises(ConfigError) as raised:
            harness.evaluate(answer_four, data=str(path), by="region", log_to_mlflow=False)
        assert str(raised.value) == (
            "by='region': the data has no such column; its columns: question, answer, topic"
        )
        with pytest.raises(ConfigError) as raised:
            harness.evaluate(answer_four, data=str(path), by="answer", log_to_mlflow=False)
        assert str(raised.value) == (
            "by='answer': that column is the data's expected answer; use by='expected'"
        )
    assert _stored(home) == (0, 0)
    DATA.assign(outputs=["4", "Rome"]).to_csv(tmp_path / "scored.csv", index=False)
    result = harness.evaluate(
        data=tmp_path / "scored.csv", predictions="outputs", targets="answer", log_to_mlflow=False
    )
    assert result.metrics["exact_match/mean"] == 0.5
    assert list_datasets(home / "harness.duckdb")[0].source == str(tmp_path / "scored.csv")


def test_mlflow_model_uris_an_endpoint_is_called_and_a_logged_model_is_explained(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow.evaluate("endpoints:/NAME", ...) evaluates a Databricks serving endpoint; harness
    said "unknown model URI 'endpoints:/my-chat'", and for a logged model's runs:/ URI listed
    its own schemes without saying what to pass instead."""
    from harness.testing import FakeLLMServer

    with FakeLLMServer() as server:
        monkeypatch.setenv("DATABRICKS_HOST", server.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-test")
        result = harness.evaluate("endpoints:/my-chat", DATA, targets="answer", log_to_mlflow=False)
        paths = {r["path"] for r in server.stats()["requests"]}
    assert result.result.rows == 2 and result.result.errors == 0
    assert paths == {"/serving-endpoints/my-chat/invocations"}
    assert result.result.model == "databricks:/my-chat"
    for uri in ("runs:/abc123/model", "models:/qa-bot/3"):
        with pytest.raises(ModelURIError) as raised:
            harness.evaluate(uri, DATA, targets="answer", log_to_mlflow=False)
        assert str(raised.value) == (
            f"model={uri!r} is a logged MLflow model, which harness does not load: pass the URI "
            "of the model it calls (openai:/MODEL, databricks:/ENDPOINT, ...) with its prompt= "
            "and system=, or a function of the row dict that calls it"
        )
    assert _stored(home) == (1, 2)  # the endpoint's run; the refused calls stored nothing


def test_mlflow_3s_model_id_and_model_config_are_taken_and_a_value_is_explained(
    home: Path,
) -> None:
    """mlflow.evaluate(..., model_id=..., model_config=...) (MLflow 3) failed with Python's
    own "TypeError: evaluate() got an unexpected keyword argument 'model_id'". Their default,
    None, runs; a model_config is one line saying why harness cannot honour it and what to
    do, and a model_id the run's store does not hold one line saying where harness looked
    (tests/tracking/test_active_model.py links a run to one it holds)."""
    result = harness.evaluate(
        answer_four, DATA, targets="answer", model_id=None, model_config=None, log_to_mlflow=False
    )
    assert result.metrics["exact_match/mean"] == 0.5
    before = _stored(home)
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(answer_four, DATA, targets="answer", model_id="m-0123abcd")
    assert str(raised.value).startswith(
        "model_id='m-0123abcd' is not a LoggedModel in harness's MLflow store (sqlite:///"
    )
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(answer_four, DATA, targets="answer", model_config={"temperature": 0})
    assert str(raised.value) == (
        "model_config= configures an MLflow model loaded from a URI, which harness does not "
        "load: give the model's settings as params= (generation parameters), prompt= and "
        "system="
    )
    assert _stored(home) == before


def test_an_id_column_that_repeats_is_not_the_row_id_unless_named(
    home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """mlflow.evaluate has no row ids and evaluates rows whatever their `id` column holds;
    harness refused them ("duplicate id '1' in rows 1 and 2"). An `id` column found by its
    name that repeats is now not the row id: the rows are numbered, with a note. A unique
    one is still the row id, and one named with id= must still be unique."""
    repeated = pd.DataFrame({"id": [1, 1], "inputs": ["a?", "b?"], "ground_truth": ["a", "b"]})
    repeated.to_csv(tmp_path / "repeated.csv", index=False)
    for data in (repeated, str(tmp_path / "repeated.csv")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="harness"):
            result = harness.evaluate(
                lambda row: "a", data, targets="ground_truth", log_to_mlflow=False
            )
        table = result.tables["eval_results_table"]
        assert list(table["id"]) == ["0", "1"]
        assert list(table["exact_match"]) == [1.0, 0.0]
        assert [r.getMessage() for r in caplog.records if "row id" in r.getMessage()] == [
            "harness: the data's column 'id' repeats ('1' in rows 1 and 2), so it is not the "
            "row id: the rows are numbered from 0 (id= names a column of unique ids)"
        ]
    unique = repeated.assign(id=["x", "y"])
    result = harness.evaluate(lambda row: "a", unique, targets="ground_truth", log_to_mlflow=False)
    assert list(result.tables["eval_results_table"]["id"]) == ["x", "y"]
    before = _stored(home)
    with pytest.raises(DataError) as raised:
        harness.evaluate(lambda row: "a", repeated, id="id", log_to_mlflow=False)
    assert str(raised.value) == "duplicate id '1' in rows 1 and 2"
    assert _stored(home) == before


def test_an_id_column_with_empty_rows_is_not_the_row_id_unless_named(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An `id` column some rows leave empty (ids 1, None, 3) numbered those rows, '1' for
    the second, which clashed with the first's ('duplicate id'); a file's import now refuses
    it. mlflow.evaluate's data has no ids: as with one that repeats, such a column is not
    the row id, with a note; named with id=, it is refused."""
    data = pd.DataFrame({"id": [1, None, 3], "inputs": ["a?", "b?", "c?"], "ground_truth": "a"})
    with caplog.at_level("WARNING", logger="harness"):
        result = harness.evaluate(
            lambda row: "a", data, targets="ground_truth", log_to_mlflow=False
        )
    assert list(result.tables["eval_results_table"]["id"]) == ["0", "1", "2"]
    assert [r.getMessage() for r in caplog.records if "row id" in r.getMessage()] == [
        "harness: the data's column 'id' has no value in row 2, so it is not the row id: the "
        "rows are numbered from 0 (id= names a column of unique ids)"
    ]
    before = _stored(home)
    with pytest.raises(DataError, match=r"^row 2: empty 'id' \(the id column\)"):
        harness.evaluate(lambda row: "a", data, id="id", log_to_mlflow=False)
    assert _stored(home) == before


@pytest.mark.parametrize("log_to_mlflow", [True, False])
def test_the_home_said_names_mlruns_only_when_the_run_writes_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    log_to_mlflow: bool,
) -> None:
    # No home= and no HARNESS_HOME: evaluate says where it writes, once; with
    # log_to_mlflow=False it writes no mlruns/ and must not say it does.
    import harness.api

    monkeypatch.delenv("HARNESS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(harness.api, "_homes_said", set())
    with caplog.at_level("WARNING", logger="harness"):
        harness.evaluate(
            data=DATA, model=answer_four, targets="answer", log_to_mlflow=log_to_mlflow
        )
    said = [r.getMessage() for r in caplog.records if "project home" in r.getMessage()]
    assert len(said) == 1, said
    assert ("mlruns/" in said[0]) == log_to_mlflow == (tmp_path / "mlruns").exists()
    assert "harness.duckdb" in said[0] and (tmp_path / "harness.duckdb").exists()


def test_an_int_target_with_a_missing_value_scores_its_integer_output() -> None:
    """pandas makes the targets [4, None] floats: the answer was stored as "4.0" and
    exact_match scored the output "4" 0 without a word."""
    data = pd.DataFrame({"question": ["What is 2+2?", "Unknown?"], "answer": [4, None]})
    result = harness.evaluate(
        answer_four, data, targets="answer", extra_metrics="exact_match", log_to_mlflow=False
    )
    assert result.metrics["exact_match/mean"] == 1.0
