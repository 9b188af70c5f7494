"""Metric objects end to end against the fake LLM server: every kind of object a user can
pass, cold, cached (no request) and replayed; MLflow's GenAI metrics sending MLflow's own
prompt; make_metric scores equal to mlflow.evaluate's on the same data; the CLI's python:
metrics and tables; and one-line refusals (exit 2) for what cannot be run."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

import harness
from harness.cli import cli
from harness.errors import MetricError
from harness.judges import make_judge
from harness.metrics import get_metric
from harness.testing import FakeLLMServer

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

KEY = "sk-objects-test"
QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the largest planet?", "Jupiter"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is H2O?", "Water"),
]
# Static outputs for the comparisons with MLflow, each naming the score the judge gives it.
OUTPUTS = [
    "Paris is the capital [1].",
    "Saturn, I believe.",
    "Hamlet was written by Shakespeare [2].",
    "It is water.",
]
JUDGE_REPLIES = {
    OUTPUTS[0]: "score: 5\njustification: Correct and cited.",
    OUTPUTS[1]: "score: 1\njustification: Wrong planet.",
    OUTPUTS[2]: "Score: 4\nJustification: Right author.",
    OUTPUTS[3]: '{"score": 3, "justification": "Correct but terse."}',
    "score: Your numerical score": "score: 4\njustification: Relevant.",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(replies=JUDGE_REPLIES) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return server


def qa_frame(with_outputs: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"inputs": [q for q, _ in QUESTIONS], "ground_truth": [a for _, a in QUESTIONS]}
    )
    if with_outputs:
        frame["outputs"] = OUTPUTS
        frame["context"] = [f"Source {i}: {a} is the answer." for i, (_, a) in enumerate(QUESTIONS)]
    return frame


def mlflow_objects() -> dict[str, Any]:
    from harness_test_metrics import cites_scorer, exact_eval_fn
    from mlflow.metrics import MetricValue, make_metric
    from mlflow.metrics.genai import answer_relevance, make_genai_metric_from_prompt

    def lengths(predictions: pd.Series) -> MetricValue:
        return MetricValue(scores=[float(len(p)) for p in predictions])

    return {
        "make_metric": make_metric(eval_fn=lengths, greater_is_better=False, name="length_chars"),
        "genai": answer_relevance(model="openai:/judge"),
        "from_prompt": make_genai_metric_from_prompt(
            name="plain_language",
            judge_prompt="Is this answer in plain language? Question: {input} Answer: {output}",
            model="openai:/judge",
        ),
        "scorer": cites_scorer,
        "eval_fn": exact_eval_fn,
    }


def test_every_kind_of_metric_object_runs_cold_then_cached_then_replayed(
    fake: FakeLLMServer,
) -> None:
    from harness_test_metrics import has_citation

    objects = mlflow_objects()
    extra = [
        get_metric("token_f1"),  # a harness Metric
        make_judge("concise", "Is this answer concise?\n{output}"),  # a harness Judge
        has_citation,  # a plain row function
        objects["eval_fn"],  # a plain function with MLflow's eval_fn signature
        objects["make_metric"],  # mlflow.metrics.make_metric
        objects["genai"],  # mlflow.metrics.genai.answer_relevance
        objects["from_prompt"],  # make_genai_metric_from_prompt
        objects["scorer"],  # an @scorer returning a Feedback
    ]

    def run(cache: str) -> harness.EvaluationResult:
        return harness.evaluate(
            "openai:/m",
            qa_frame(),
            targets="ground_truth",
            prompt="{input}",  # the fake answers with the prompt's first sentence: distinct
            metrics=[],
            extra_metrics=extra,
            judge_model="openai:/judge",
            cache=cache,
            log_to_mlflow=False,
        )

    cold = run("use")
    rows = len(QUESTIONS)
    assert cold.result.calls["model"]["requests"] == rows
    assert cold.result.calls["judge"]["requests"] == 3 * rows  # concise, relevance, plain
    assert fake.stats()["requests_total"] == 4 * rows
    names = {
        "token_f1",
        "concise",
        "has_citation",
        "exact_eval_fn",
        "length_chars",
        "answer_relevance/v1",
        "plain_language",
        "cites",
    }
    assert names <= set(cold.result.metrics)
    assert cold.metrics["answer_relevance/v1/mean"] == 4.0
    assert cold.metrics["answer_relevance/v1/variance"] == 0.0  # MLflow's aggregations
    assert cold.metrics["plain_language/mean"] == 4.0
    table = cold.tables["eval_results_table"]
    assert list(table["cites/rationale"]) == ["0 citation(s)"] * rows  # the Feedback's
    assert set(table["answer_relevance/v1/rationale"]) == {"Relevant."}
    judged = [json.loads(r["body"]) for r in fake.stats()["requests"]]
    relevance_prompts = [
        b["messages"] for b in judged if "answer_relevance based on the rubric" in str(b)
    ]
    assert len(relevance_prompts) == rows and all(len(m) == 1 for m in relevance_prompts)

    fake.reset()
    cached = run("use")
    assert fake.stats()["requests_total"] == 0
    assert cached.result.calls["model"]["cache_hits"] == rows
    assert cached.result.calls["judge"]["cache_hits"] == 3 * rows
    assert cached.metrics == cold.metrics

    replayed = run("replay")
    assert fake.stats()["requests_total"] == 0
    assert replayed.metrics == cold.metrics


def _judge_requests(server: FakeLLMServer) -> list[dict[str, Any]]:
    """The distinct chat requests the server received: messages and MLflow's parameters.

    (MLflow asks the first row twice: once to test the metrics, then with the others.)
    """
    found = []
    for record in server.stats()["requests"]:
        body = json.loads(record["body"])
        found.append(
            {
                "messages": body["messages"],
                "params": {k: body.get(k) for k in ("temperature", "max_tokens", "top_p")},
            }
        )
    unique = {json.dumps(r, sort_keys=True): r for r in found}
    return [unique[key] for key in sorted(unique)]


def test_harness_computes_and_asks_what_mlflow_evaluate_does(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.metrics import MetricValue, make_metric
    from mlflow.metrics.genai import (
        answer_correctness,
        answer_relevance,
        answer_similarity,
        faithfulness,
        make_genai_metric_from_prompt,
        relevance,
    )

    def relative_length(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        # Depends on every row at once: harness must call it once, as MLflow does.
        mean = sum(len(p) for p in predictions) / len(predictions)
        scores = [len(p) / mean for p in predictions]
        return MetricValue(
            scores=scores,
            justifications=[f"{len(p)} characters" for p in predictions],
            aggregate_results={"max": max(scores), "spread": max(scores) - min(scores)},
        )

    genai_builtins = [
        answer_correctness,
        answer_relevance,
        answer_similarity,
        faithfulness,
        relevance,
    ]
    metrics = [
        *(make(model="openai:/judge") for make in genai_builtins),
        make_genai_metric_from_prompt(
            name="on_topic",
            judge_prompt="Question: {inputs}\nAnswer: {predictions}\nIs the answer on topic?",
            model="openai:/judge",
        ),
        make_metric(eval_fn=relative_length, greater_is_better=False, name="relative_length"),
        mlflow.metrics.exact_match(),
    ]
    mlflow.set_tracking_uri("sqlite:///" + str(tmp_path / "mlflow-reference.db"))

    def evaluate_in_a_run(evaluate: Any) -> tuple[Any, str]:
        # One script, two imports: the same arguments, in an active run, as users call it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run() as run:
                result = evaluate(
                    data=qa_frame(with_outputs=True),
                    predictions="outputs",
                    targets="ground_truth",
                    extra_metrics=metrics,
                    evaluators="default",
                )
        return result, run.info.run_id

    reference, _ = evaluate_in_a_run(mlflow.evaluate)
    mlflow_asked = _judge_requests(fake)
    fake.reset()
    ours, our_run = evaluate_in_a_run(harness.evaluate)
    logged = mlflow.MlflowClient().get_run(our_run).data.metrics
    assert logged["answer_correctness/v1/mean"] == ours.metrics["answer_correctness/v1/mean"]
    # The same grading prompts, byte for byte, with the same parameters: the five GenAI
    # builtins (their grading context: targets, the data's context) and the prompt metric.
    judged = len(genai_builtins) + 1
    assert len(mlflow_asked) == judged * len(QUESTIONS)
    assert fake.stats()["requests_total"] == judged * len(QUESTIONS)  # harness asks each once
    assert _judge_requests(fake) == mlflow_asked
    assert any(
        "Additional information used by the model:\nkey: targets\nvalue:\nParis\n"
        in r["messages"][0]["content"]
        for r in mlflow_asked
    )
    # Every metric MLflow logged, under its name, with its value.
    expected = {k: v for k, v in reference.metrics.items() if "/" in k or k == "exact_match"}
    assert any(
        "key: context\nvalue:\nSource 0: Paris is the answer.\n" in r["messages"][0]["content"]
        for r in mlflow_asked
    )
    assert set(expected) >= {
        *(f"{make.__name__}/v1/{agg}" for make in genai_builtins for agg in ("mean", "p90")),
        "answer_correctness/v1/mean",
        "answer_correctness/v1/variance",
        "answer_correctness/v1/p90",
        "on_topic/mean",
        "relative_length/max",
        "relative_length/spread",
        "exact_match/v1",
    }
    for name, value in expected.items():
        assert ours.metrics[name] == pytest.approx(value), name
    # And every row's score and justification.
    theirs = reference.tables["eval_results_table"].sort_values("inputs")
    mine = ours.tables["eval_results_table"].sort_values("input")
    for column in (*(f"{m.__name__}/v1" for m in genai_builtins), "on_topic", "relative_length"):
        assert list(mine[column]) == pytest.approx(list(theirs[f"{column}/score"]))
    assert list(mine["relative_length/rationale"]) == list(theirs["relative_length/justification"])
    assert list(mine["answer_correctness/v1/rationale"]) == [
        j.strip() for j in theirs["answer_correctness/v1/justification"]
    ]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(home: Path, fake: FakeLLMServer) -> str:
    from harness.data import import_dataframe

    return import_dataframe(qa_frame(), name="qa", home=home).dataset.ref


def test_the_cli_runs_python_metrics_tables_and_mlflow_objects(
    qa: str, home: Path, fake: FakeLLMServer
) -> None:
    (home / "harness.toml").write_text(
        "[metrics.cites]\nkind = \"regex\"\npattern = '\\[\\d+\\]'\n\n"
        '[metrics.matches]\npython = "harness_test_metrics:answer_matches"\n'
    )
    args = [
        "run", "--data", "qa", "--model", "openai:/m", "--json", "--no-mlflow",
        "--metric", "cites",
        "--metric", "matches",
        "--metric", "python:harness_test_metrics:has_citation",
        "--metric", "python:harness_test_metrics:exact_eval_fn",
        "--metric", "python:harness_test_metrics:relevance",  # an MLflow GenAI metric object
        "--metric", "brief=length:..80",
    ]  # fmt: skip
    code, out, err = invoke(*args)
    assert code == 0, err
    cold = json.loads(out)
    assert set(cold["metrics"]) == {
        "cites", "matches", "has_citation", "exact_eval_fn", "answer_relevance/v1", "brief",
    }  # fmt: skip
    assert cold["calls"]["judge"]["requests"] == len(QUESTIONS)
    assert cold["metrics"]["answer_relevance/v1"]["mean"] == 4.0
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    stored = con.execute(
        "SELECT metric, count(*) FROM scores WHERE run_id = ? GROUP BY 1", [cold["run_id"]]
    ).fetchall()
    con.close()
    assert dict(stored) == {name: len(QUESTIONS) for name in cold["metrics"]}
    fake.reset()
    code, out, err = invoke(*args, "--cache", "replay")
    assert code == 0, err
    replayed = json.loads(out)
    assert fake.stats()["requests_total"] == 0
    assert replayed["metrics"] == cold["metrics"]


def test_an_eval_fns_one_number_is_shown_in_the_terminal(qa: str, home: Path) -> None:
    # It is the metric's whole value (MLflow logs it under the metric's name), and the
    # summary of `run` and `runs show` had only a blank row for it, the number nowhere.
    args = [
        "run", "--data", "qa", "--model", "openai:/m", "--no-mlflow",
        "--metric", "python:harness_test_metrics:mean_words", "--metric", "exact_match",
        "--metric", "python:harness_test_metrics:mlflow_exact_match",
    ]  # fmt: skip
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    value = metrics["mean_words"]["mean_words"]
    assert value > 1  # the fake server's answers have words
    exact = metrics["exact_match/v1"]["exact_match"]  # MLflow's one number, its own name
    code, out, err = invoke(*args)  # the cached rerun: a second run, the same outputs
    assert code == 0, err
    said = {f"exact_match/v1 {exact:.4g}", f"mean_words {value:.4g}"}

    def over_the_run(out: str) -> set[str]:
        (line,) = [line for line in out.splitlines() if line.startswith("over the run: ")]
        return set(line.removeprefix("over the run: ").split("; "))

    assert over_the_run(out) == said
    run_id = out.split()[1].rstrip(":")
    code, out, err = invoke("runs", "show", run_id)
    assert code == 0, err
    assert over_the_run(out) == said


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("python:no_such_module:f", "python metric 'no_such_module:f': no module named"),
        ("python:harness_test_metrics:NOT_A_METRIC", "cannot use int 42 as a metric"),
        ("python:harness_test_metrics:takes_three", "takes (a, b, c)"),
        ("regex:[", "bad regular expression '['"),
        ("nope", "unknown metric 'nope'"),
        ("python:harness_test_metrics:toxicity", "has no 'toxicity'"),
        ("python:harness_test_metrics:toxic", "'toxicity/v1' cannot run in harness: it downloads"),
    ],
)
def test_bad_metrics_exit_2_in_one_line_and_leave_no_run(
    qa: str, home: Path, spec: str, message: str
) -> None:
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--metric", spec)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    con.close()


def test_objects_that_cannot_run_are_refused_before_the_run(home: Path) -> None:
    import mlflow.metrics

    for bad, message in [
        (42, "cannot use int 42 as a metric"),
        (mlflow.metrics.toxicity(), "downloads a Hugging Face model"),
        (mlflow.metrics.genai.answer_relevance(model="bedrock:/x"), "the 'bedrock' provider"),
    ]:
        with pytest.raises(MetricError, match=message):
            harness.evaluate(lambda row: "x", qa_frame(), extra_metrics=[bad])
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    con.close()


def test_an_mlflow_builtin_reading_targets_is_refused_without_them(home: Path) -> None:
    """mlflow.metrics.exact_match() (precision_at_k, mae, ...) on data without targets
    returns nothing: the run finished with no exact_match/v1 in result.metrics, and no word
    of why (MLflow at least logs that it returned None)."""
    import mlflow.metrics

    data = pd.DataFrame({"inputs": ["a?", "b?"], "outputs": ["a", "b"]})
    for builtin, name in (
        (mlflow.metrics.exact_match(), "exact_match/v1"),
        (mlflow.metrics.precision_at_k(2), "precision_at_2"),
    ):
        with pytest.raises(MetricError) as raised:
            harness.evaluate(data=data, predictions="outputs", extra_metrics=[builtin])
        said = str(raised.value)
        assert said.startswith(f"metric '{name}' needs expected answers, and dataframe@"), said
        assert said.endswith(
            "has none (map a column with --expected at import, targets= in harness.evaluate)"
        )
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    con.close()
    graded = harness.evaluate(  # with targets=, as before
        data=data.assign(gold=["a", "x"]),
        predictions="outputs",
        targets="gold",
        extra_metrics=[mlflow.metrics.exact_match()],
    )
    assert graded.metrics["exact_match/v1"] == 0.5


def test_a_rubric_naming_its_scores_on_one_line_keeps_the_judge_on_that_scale(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Score 1 casual, 5 formal" names a 1-5 scale: an answer of 99 is asked again, not
    averaged in (it read as one score, and the scale fell back to 0-100); a rubric naming
    one score only is refused before the run, since no answer could be checked."""
    from mlflow.metrics.genai import make_genai_metric

    def professionalism(grading_prompt: str) -> Any:
        return make_genai_metric(
            name="professionalism",
            definition="How formal the answer's language is.",
            grading_prompt=grading_prompt,
            model="openai:/judge",
            greater_is_better=True,
        )

    replies = {
        "could not be used": "score: 2\njustification: Casual, asked again.",
        "Hey dude, sup": "score: 99\njustification: Very casual.",
        "Dear Sir, kind regards": "score: 5\njustification: Formal.",
    }
    data = pd.DataFrame(
        {"inputs": ["q1", "q2"], "outputs": ["Hey dude, sup", "Dear Sir, kind regards"]}
    )
    with FakeLLMServer(replies=replies) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        result = harness.evaluate(
            data=data,
            predictions="outputs",
            metrics=[],
            extra_metrics=[professionalism("Score 1 casual, 5 formal")],
            log_to_mlflow=False,
        )
        assert result.metrics["professionalism/v1/mean"] == pytest.approx(3.5)
        assert result.tables["eval_results_table"]["professionalism/v1"].tolist() == [2.0, 5.0]
        assert len(server.stats()["requests"]) == 3  # the 99 was asked again, once
        with pytest.raises(MetricError) as refused:
            harness.evaluate(
                data=data,
                predictions="outputs",
                metrics=[],
                extra_metrics=[professionalism("Score 1 means the language is casual.")],
                log_to_mlflow=False,
            )
        assert len(server.stats()["requests"]) == 3
    assert str(refused.value) == (
        "MLflow metric 'professionalism/v1': its grading prompt names only score 1, so "
        "harness cannot tell its scale; name the lowest and highest ('Score 1: ...', "
        "'Score 5: ...') or give examples with their scores"
    )
