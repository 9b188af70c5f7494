"""harness.evaluate's arguments as Python users pass them: a single name where a list is
expected, a wrong type, a refused call (which stores nothing), and what each says."""

from __future__ import annotations

import pandas as pd
import pytest

import harness

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
