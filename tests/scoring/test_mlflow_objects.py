"""MLflow's metric objects as harness metrics and judges: what converts, to what, and what is
refused (in one line, before any run). The end-to-end runs are in test_mlflow_e2e.py."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import MetricError
from harness.judges import Judge, make_judge
from harness.metrics import BatchMetric, Columns, Metric, ScoringRow, get_metric
from harness.scoring import DataShape, adapt
from harness.scoring.mlflow_judge import MlflowJudge

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # MLflow's deprecations

QA = DataShape(
    fields={"input": "inputs", "expected": "ground_truth", "context": "context"},
    extra=("source",),
)


def row(
    output: str = "MLflow is a platform.", expected: tuple[str, ...] = ("A platform",)
) -> ScoringRow:
    return ScoringRow(
        input="What is MLflow?",
        output=output,
        expected=expected,
        context="MLflow is an open-source platform.",
        latency_s=0.1,
        extra={"source": "docs"},
    )


def genai() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.metrics.genai as genai_metrics
    return genai_metrics


def test_mlflow_genai_builtins_become_judges_with_mlflow_names_and_parameters() -> None:
    g = genai()
    for make, needs, include_input in [
        (g.answer_relevance, set(), True),
        (g.answer_correctness, {"expected"}, True),
        (g.answer_similarity, {"expected"}, False),
        (g.faithfulness, {"context"}, False),
        (g.relevance, {"context"}, True),
    ]:
        judge = adapt(make(model="openai:/gpt-4o-mini"), shape=QA)
        assert isinstance(judge, MlflowJudge)
        assert judge.name == f"{make.__name__}/v1"
        assert judge.model == "openai:/gpt-4o-mini"
        assert dict(judge.params) == {"temperature": 0.0, "max_tokens": 200, "top_p": 1.0}
        assert (judge.output.low, judge.output.high) == (1, 5)
        assert judge.aggregations == ("variance",)  # MLflow's mean, variance, p90
        assert set(judge.needs) == needs and judge.include_input == include_input
        [message] = judge.messages(row())
        assert message["role"] == "user"
        assert f"score: Your numerical score for the model's {make.__name__}" in message["content"]


def test_the_grading_context_is_filled_as_mlflow_fills_it() -> None:
    judge = adapt(genai().answer_correctness(model="openai:/m"), shape=QA)
    content = judge.messages(row())[0]["content"]
    assert "\nInput:\nWhat is MLflow?\n" in content
    assert "\nOutput:\nMLflow is a platform.\n" in content
    assert "Additional information used by the model:\nkey: targets\nvalue:\nA platform" in content
    assert "{" not in content.replace("{{", "")  # every placeholder filled


def test_a_custom_genai_metric_keeps_its_definition_rubric_examples_and_direction() -> None:
    g = genai()
    example = g.EvaluationExample(
        input="2+2?", output="4", score=3, justification="right", grading_context={"source": "math"}
    )
    metric = g.make_genai_metric(
        name="cited",
        definition="Whether the answer cites the source.",
        grading_prompt="Score 0: no citation. Score 3: cites the source.",
        examples=[example],
        model="anthropic:/claude-x",
        grading_context_columns=["source"],
        parameters={"temperature": 0.2},
        aggregations=["mean", "max"],
        greater_is_better=False,
    )
    judge = adapt(metric, shape=QA)
    assert isinstance(judge, MlflowJudge)
    assert (judge.name, judge.model, dict(judge.params)) == (
        "cited/v1",
        "anthropic:/claude-x",
        {"temperature": 0.2},
    )
    assert (judge.output.low, judge.output.high) == (0, 3)  # the rubric's scale
    assert judge.direction == -1 and judge.aggregations == ("max",)
    content = judge.messages(row())[0]["content"]
    for text in (
        "Whether the answer cites the source.",
        "Score 0: no citation.",
        "Example score: 3",
    ):
        assert text in content
    assert "key: source\nvalue:\ndocs" in content  # an extra column as grading context


def test_a_prompt_metric_sends_the_prompt_and_mlflows_answer_format() -> None:
    g = genai()
    metric = g.make_genai_metric_from_prompt(
        name="ease",
        judge_prompt="Is this easy to read? Question: {input} Answer: {output} Source: {source}",
        model="openai:/m",
    )
    judge = adapt(metric, shape=QA)
    assert isinstance(judge, MlflowJudge) and judge.name == "ease"
    content = judge.messages(row())[0]["content"]
    assert content.startswith(
        "Is this easy to read? Question: What is MLflow? Answer: MLflow is a platform. Source: docs"
    )
    assert content.endswith("Do not add additional new lines. Do not add any other fields.")
    assert dict(judge.params) == {}  # MLflow sends no parameters it was not given


def test_mlflows_answer_lines_are_read_and_the_justification_kept() -> None:
    judge = adapt(genai().answer_relevance(model="openai:/m"), shape=QA)
    verdict = judge.read("score: 4\njustification: It answers the question.")
    assert (verdict.value, verdict.rationale) == (4.0, "It answers the question.")
    assert judge.read('{"score": 2, "justification": "partly"}').rationale == "partly"


@pytest.mark.parametrize(
    ("model", "mapped"),
    [
        ("openai:/gpt-4", "openai:/gpt-4"),
        ("anthropic:/claude", "anthropic:/claude"),
        ("databricks:/my-endpoint", "databricks:/my-endpoint"),
        ("endpoints:/my-endpoint", "databricks:/my-endpoint"),
    ],
)
def test_judge_model_uris(model: str, mapped: str) -> None:
    assert adapt(genai().answer_relevance(model=model)).model == mapped


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda g: g.answer_relevance(model="bedrock:/claude"), "the 'bedrock' provider"),
        (lambda g: g.answer_relevance(model="gateway:/chat"), "the MLflow AI Gateway"),
        (lambda g: g.answer_relevance(model="models:/judge/1"), "a served MLflow model"),
        (lambda g: g.faithfulness(model="openai:/m"), None),  # converts: context is a field
    ],
)
def test_judge_models_harness_cannot_call_are_refused(
    make: Callable[[Any], Any], message: str | None
) -> None:
    metric = make(genai())
    if message is None:
        assert isinstance(adapt(metric, shape=QA), MlflowJudge)
        return
    with pytest.raises(MetricError) as caught:
        adapt(metric, shape=QA)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_grading_context_the_data_lacks_is_refused_before_the_run() -> None:
    metric = genai().make_genai_metric(
        name="m", definition="d", grading_prompt="Score 1: bad. Score 5: good.",
        model="openai:/m", grading_context_columns=["retrieved_docs"],
    )  # fmt: skip
    with pytest.raises(MetricError, match="reads 'retrieved_docs': no such column in the data"):
        adapt(metric, shape=QA)
    mapped = DataShape(fields=QA.fields, extra=("docs",), col_mapping={"retrieved_docs": "docs"})
    judge = adapt(metric, shape=mapped)
    assert isinstance(judge, MlflowJudge) and judge.columns == ("docs",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("toxicity", "downloads a Hugging Face model"),
        ("token_count", "needs tiktoken"),
        ("rouge1", "use harness's 'rouge1'"),
        ("rougeLsum", "Hugging Face Hub"),
        ("bleu", "Hugging Face Hub"),
    ],
)
def test_mlflow_builtins_that_need_the_network_are_refused(name: str, message: str) -> None:
    import mlflow.metrics

    with pytest.raises(MetricError) as caught:
        adapt(getattr(mlflow.metrics, name)())
    assert str(caught.value).startswith(f"MLflow metric '{name}")
    assert message in str(caught.value)


def test_mlflow_builtins_that_run_offline_are_kept() -> None:
    import mlflow.metrics

    assert adapt(mlflow.metrics.latency()) is get_metric("latency")
    exact = adapt(mlflow.metrics.exact_match(), shape=QA)
    assert isinstance(exact, BatchMetric) and exact.name == "exact_match/v1"
    columns = Columns(
        ids=["1", "2", "3"],
        inputs=["a", "b", "c"],
        outputs=["x", "y", "z"],
        expected=[("x",), ("y",), ("q",)],
        contexts=[None] * 3,
        extra={},
        scores={},
        aggregates={},
    )
    found = exact.fn(columns)
    assert found is not None and found.aggregates == {"exact_match": pytest.approx(2 / 3)}


def test_mlflow_flesch_kincaid_is_refused_when_textstat_would_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # textstat 0.7.10+ (installed here as its metadata says: it requires nltk) calls
    # nltk.download("cmudict") on its first syllable count when the corpus is missing.
    site = tmp_path / "site"
    (site / "textstat").mkdir(parents=True)
    (site / "textstat" / "__init__.py").write_text("")
    (site / "textstat-0.7.13.dist-info").mkdir()
    (site / "textstat-0.7.13.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: textstat\nVersion: 0.7.13\n"
        "Requires-Dist: pyphen\nRequires-Dist: nltk\n"
    )
    monkeypatch.syspath_prepend(str(site))
    import mlflow.metrics
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])
    with pytest.raises(MetricError) as caught:
        adapt(mlflow.metrics.flesch_kincaid_grade_level())
    assert str(caught.value) == (
        "MLflow metric 'flesch_kincaid_grade_level/v1' cannot run in harness here: textstat "
        "downloads NLTK's cmudict corpus at first use and harness metrics run offline; install "
        "it once (python -m nltk.downloader cmudict), or use harness's "
        "'flesch_kincaid_grade_level'"
    )
    (tmp_path / "nltk_data" / "corpora" / "cmudict").mkdir(parents=True)
    found = adapt(mlflow.metrics.flesch_kincaid_grade_level())
    assert isinstance(found, BatchMetric) and found.name == "flesch_kincaid_grade_level/v1"
    assert isinstance(adapt(mlflow.metrics.ari_grade_level()), BatchMetric)  # no syllables


def test_mlflow_scorers() -> None:
    from harness_test_metrics import cites_scorer

    metric = adapt(cites_scorer)
    assert isinstance(metric, Metric) and metric.name == "cites"
    [stored] = metric.evaluate(row("see [1] and [2]"), "9")
    assert (stored.value, stored.rationale) == (1.0, "2 citation(s)")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: __import__("mlflow.genai.scorers", fromlist=["x"]).Correctness(),
            "one of MLflow's LLM judges",
        ),
        (
            lambda: __import__("mlflow.genai.scorers", fromlist=["x"]).Guidelines(
                guidelines=["be brief"]
            ),
            "harness's guidelines judge",
        ),
        (
            lambda: __import__("mlflow.genai.judges", fromlist=["x"]).make_judge(
                name="q", instructions="Is {{ outputs }} good?", model="openai:/x"
            ),
            "harness.judges.make_judge",
        ),
    ],
)
def test_mlflow_llm_scorers_are_refused_with_the_harness_judge_to_use(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(MetricError) as caught:
        adapt(make())
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_harness_objects_pass_through() -> None:
    judge = make_judge("brief", "Is {output} brief?")
    assert adapt(judge) is judge and isinstance(judge, Judge)
    metric = get_metric("token_f1")
    assert adapt(metric) is metric
