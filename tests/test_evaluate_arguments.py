"""harness.evaluate's arguments as Python users pass them: a single name where a list is
expected, a wrong type, a refused call (which stores nothing), and what each says."""

from __future__ import annotations

import pandas as pd
import pytest

import harness
from harness.errors import ConfigError

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
        ("cache", None, "cache= takes a str, got NoneType None"),
        ("run_name", 3, "run_name= takes a str, got int 3"),
        ("by", ["topic", 3], "by= takes a column name or a list of them, got list ['topic', 3]"),
    ],
)
def test_a_wrong_type_is_one_line_naming_the_argument(
    argument: str, value: object, said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(answer_four, DATA, log_to_mlflow=False, **{argument: value})
    assert str(raised.value) == said


def test_numpy_integers_are_ints() -> None:
    import numpy as np

    result = harness.evaluate(
        answer_four, DATA, targets="answer", concurrency=np.int64(2), log_to_mlflow=False
    )
    assert result.result.rows == 2
