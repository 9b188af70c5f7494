"""``python:`` judge models for the judge tests: each receives the rendered judge messages.

Importable as ``python:fake_judges:NAME`` because pytest puts tests/judges on sys.path.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPAIR = "Your reply could not be used"


def _wants(messages: list[dict[str, Any]]) -> str:
    system = messages[0]["content"]
    if '"score": <an integer' in system:
        return "score"
    if '"verdict": "yes" or "no"' in system:
        return "verdict"
    return "label"


def valid(messages: list[dict[str, Any]]) -> str:
    """A well-formed answer: 4 on a scale, yes, or the last label listed."""
    kind = _wants(messages)
    if kind == "score":
        return json.dumps({"rationale": "Mostly right.", "score": 4})
    if kind == "verdict":
        return json.dumps({"rationale": "Matches.", "verdict": "yes"})
    labels = re.findall(r'"([^"]+)"(?: or |$)', messages[0]["content"].splitlines()[-1])
    return json.dumps({"rationale": "Picked.", "label": labels[-1]})


def prose(messages: list[dict[str, Any]]) -> str:
    """Ignores the JSON instruction and answers in prose."""
    if _wants(messages) == "score":
        return "The answer covers the main finding.\n\n**Score:** 4/5"
    return "Yes, the candidate is correct."


def garbage_then_valid(messages: list[dict[str, Any]]) -> str:
    """No verdict at first; a valid one once asked to repair."""
    if REPAIR in messages[-1]["content"]:
        return valid(messages)
    return "I am not sure how to grade this."


def out_of_range_then_valid(messages: list[dict[str, Any]]) -> str:
    if REPAIR in messages[-1]["content"]:
        return valid(messages)
    return '{"score": 9, "rationale": "Excellent!"}'


def garbage(messages: list[dict[str, Any]]) -> str:
    """Never gives a verdict."""
    return "I cannot judge this."


def broken(messages: list[dict[str, Any]]) -> str:
    raise RuntimeError("judge backend is down")


def yes_if_supported(messages: list[dict[str, Any]]) -> str:
    """A rule-based yes/no judge for calibration: yes when the output says "supported"."""
    user = messages[-1]["content"]
    output = user.rsplit("Output:", 1)[-1]
    verdict = "yes" if "supported" in output.lower() else "no"
    return json.dumps({"rationale": f"rule says {verdict}", "verdict": verdict})


def _responses(messages: list[dict[str, Any]]) -> tuple[str, str]:
    user = messages[-1]["content"]
    first = user.split("Response 1:\n", 1)[1].split("\n\nResponse 2:\n", 1)[0]
    second = user.split("Response 2:\n", 1)[1]
    return first, second


def prefers_longer(messages: list[dict[str, Any]]) -> str:
    """A consistent pairwise judge: the longer response wins, whatever its position."""
    first, second = _responses(messages)
    if len(first) == len(second):
        return '{"winner": "tie", "rationale": "same length"}'
    winner = "1" if len(first) > len(second) else "2"
    return json.dumps({"rationale": "longer is better", "winner": winner})


def prefers_first(messages: list[dict[str, Any]]) -> str:
    """A position-biased pairwise judge: always the response shown first."""
    return '{"winner": "1", "rationale": "the first one"}'
