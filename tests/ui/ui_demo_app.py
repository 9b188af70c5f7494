"""A tiny QA app and judge for the MLflow UI check (``python:ui_demo_app:...`` models).

The app answers two of five questions wrongly; the judge compares the answer with the
reference answer in its prompt and explains its score, so every row has its own verdict.
"""

from __future__ import annotations

import json
from typing import Any

QUESTIONS = {
    "What is the capital of France?": "Paris",
    "What is 2 + 2?": "4",
    "Which planet is known as the Red Planet?": "Mars",
    "Who wrote Hamlet?": "William Shakespeare",
    "What gas do plants absorb from the air?": "Carbon dioxide",
}
WRONG_ANSWERS = {
    "Which planet is known as the Red Planet?": "Venus",
    "Who wrote Hamlet?": "Christopher Marlowe",
}


def rows() -> list[dict[str, str]]:
    """The eval set: question and expected answer."""
    return [{"question": q, "answer": a} for q, a in QUESTIONS.items()]


def answer(row: dict[str, Any]) -> str:
    """The app: right, except for the questions in ``WRONG_ANSWERS``."""
    return WRONG_ANSWERS.get(row["input"], row["expected_all"][0])


def judge(messages: list[dict[str, str]]) -> str:
    """A judge on the 1-5 scale: 5 when the answer is the reference, else 1, with a reason."""
    # The row comes last in the judge's prompt: "Reference answer: ... Answer to judge: ...".
    tail = messages[-1]["content"].rsplit("Reference answer:", 1)[-1]
    reference, _, given = (part.strip() for part in tail.partition("Answer to judge:"))
    if given.casefold() == reference.casefold():
        return json.dumps({"score": 5, "rationale": f"{given} is the reference answer."})
    return json.dumps({"score": 1, "rationale": f"{given} contradicts the reference {reference}."})
