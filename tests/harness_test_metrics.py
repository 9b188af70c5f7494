"""``python:`` metrics for the tests (importable because pytest puts tests/ on sys.path).

One of each shape harness accepts: a row function, MLflow 3 scorer arguments, MLflow's
eval_fn (a batch), an @scorer with a Feedback, and MLflow metric objects.
"""

from __future__ import annotations

import re
from typing import Any

CITATION = re.compile(r"\[\d+\]")


def has_citation(row: dict[str, Any]) -> float | None:
    """1 if the output cites a source like [1]."""
    return 1.0 if CITATION.search(row["output"]) else 0.0


def longer_than_expected(row: dict[str, Any]) -> bool | None:
    if not row["expected_all"]:
        return None
    return len(row["output"]) > len(row["expected_all"][0])


longer_than_expected.greater_is_better = False  # type: ignore[attr-defined]
longer_than_expected.needs_expected = True  # type: ignore[attr-defined]


def answer_matches(outputs: str, expectations: dict[str, Any]) -> bool:
    """MLflow 3's scorer arguments, without the decorator."""
    return outputs.strip() == expectations["expected_response"].strip()


def exact_eval_fn(predictions: Any, targets: Any) -> Any:
    """MLflow's eval_fn signature: whole columns in, a MetricValue out."""
    from mlflow.metrics import MetricValue

    scores = [float(p == t) for p, t in zip(predictions, targets, strict=True)]
    return MetricValue(scores=scores, aggregate_results={"mean": sum(scores) / len(scores)})


def takes_three(a: Any, b: Any, c: Any) -> float:
    return 0.0


def raises(row: dict[str, Any]) -> float:
    raise ValueError(f"cannot score {row['id']}")


NOT_A_METRIC = 42


MLFLOW_OBJECTS = (
    "cites_scorer",
    "exact_metric",
    "mlflow_exact_match",
    "precision_at_2",
    "relevance",
    "toxic",
)


def _mlflow_objects() -> dict[str, Any]:
    import warnings

    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer
    from mlflow.metrics import exact_match, make_metric, precision_at_k, toxicity
    from mlflow.metrics.genai import answer_relevance

    @scorer
    def cites(outputs: str) -> Feedback:
        found = CITATION.findall(outputs)
        return Feedback(value=bool(found), rationale=f"{len(found)} citation(s)")

    with warnings.catch_warnings():  # MLflow 3 deprecates its GenAI metrics; still in use
        warnings.simplefilter("ignore", FutureWarning)
        relevance = answer_relevance(model="openai:/judge-model")
        precision = precision_at_k(2)  # a retriever's
    return {
        "cites_scorer": cites,
        "exact_metric": make_metric(
            eval_fn=exact_eval_fn, greater_is_better=True, name="exact_mlflow"
        ),
        "mlflow_exact_match": exact_match(),  # its one number is "exact_match"
        "precision_at_2": precision,
        "relevance": relevance,
        "toxic": toxicity(),  # refused: it would download a model
    }


def __getattr__(name: str) -> Any:
    # The MLflow objects are built on first use: importing MLflow costs a second.
    if name in MLFLOW_OBJECTS:
        return _mlflow_objects()[name]
    raise AttributeError(name)


def where_scored(row: dict[str, Any]) -> Any:
    """1.0, with the id of the process that scored the row as its rationale."""
    import os

    from harness.metrics import Score

    return Score(1.0, rationale=f"pid {os.getpid()}")


def leaks_its_key(row: dict[str, Any]) -> float:
    """Raises with a message that quotes the environment's key (a careless client)."""
    import os

    raise ValueError(f"scoring service refused key {os.environ['OPENAI_API_KEY']}")


def leaks_its_key_in_a_batch(predictions: Any, targets: Any, metrics: Any) -> Any:
    """MLflow's eval_fn shape, raising with the environment's key in its message."""
    import os

    raise ValueError(f"batch scorer refused key {os.environ['OPENAI_API_KEY']}")


def infinite(row: dict[str, Any]) -> float:
    """inf on one row (a ratio over an empty count, say), a number on the others."""
    return float("inf") if row["input"] == "b?" else 0.5


def infinite_eval_fn(predictions: Any) -> Any:
    """An eval_fn whose scores hold -inf on the second row."""
    from mlflow.metrics import MetricValue

    scores = [0.5 if n != 1 else float("-inf") for n in range(len(predictions))]
    return MetricValue(scores=scores, aggregate_results={})


def infinite_aggregate(predictions: Any) -> Any:
    """An eval_fn whose scores are fine and whose own mean is inf (a ratio over zero)."""
    from mlflow.metrics import MetricValue

    return MetricValue(scores=[0.5] * len(predictions), aggregate_results={"mean": float("inf")})


def matches_reference(predictions: Any, reference: Any = None, weight: float = 1.0) -> Any:
    """MLflow's eval_fn reading a column through col_mapping (``reference``) and a value of
    evaluator_config (``weight``): each output equal to its reference scores ``weight``."""
    from mlflow.metrics import MetricValue

    references = [None] * len(predictions) if reference is None else list(reference)
    scores = [weight * float(p == r) for p, r in zip(predictions, references, strict=True)]
    return MetricValue(scores=scores, aggregate_results={"mean": sum(scores) / len(scores)})


def mean_words(predictions: Any) -> float:
    """An eval_fn returning one number for the run (MLflow logs it as the metric)."""
    return sum(len(str(p).split()) for p in predictions) / len(predictions)


def exits(row: dict[str, Any]) -> float:
    """A metric whose code (or a library it calls) calls sys.exit()."""
    raise SystemExit(3)


def exits_in_a_batch(predictions: Any) -> float:
    raise SystemExit(3)
