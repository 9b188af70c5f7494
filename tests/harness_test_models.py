"""``python:`` models for the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def answer_expected(row: dict[str, Any]) -> str:
    """A perfect model: returns the first expected answer."""
    expected = row["expected_all"]
    return expected[0] if expected else ""


def fail_while_flagged(row: dict[str, Any]) -> str:
    """Fails the rows with an even position while the file in $HARNESS_TEST_FLAG exists."""
    flag = os.environ.get("HARNESS_TEST_FLAG", "")
    if flag and os.path.exists(flag) and int(row["id"]) % 2 == 0:
        raise RuntimeError(f"flagged row {row['id']}")
    return answer_expected(row)


def slow_echo(row: dict[str, Any]) -> str:
    time.sleep(float(os.environ.get("HARNESS_TEST_DELAY", "0.05")))
    return row["input"]


def end_module_seen(row: dict[str, Any]) -> str:
    """Whether the run's end module harness.runner.batch_scores is imported
    (harness.runner.preload): row 1 looks a moment into the run, while the other rows are
    still running; the others wait for it (up to 30 s)."""
    import sys

    name = "harness.runner.batch_scores"
    if row["id"] == "1":
        time.sleep(0.3)
    else:
        deadline = time.monotonic() + 30
        while name not in sys.modules and time.monotonic() < deadline:
            time.sleep(0.01)
    return "imported" if name in sys.modules else "not imported"


def judge_messages(messages: list[dict[str, Any]]) -> str:
    return '{"score": 4, "rationale": "ok"}'


def crash_on_executor(messages: list[dict[str, Any]]) -> str:
    """A judge model whose Python worker dies on a Spark executor (a crash Spark cannot
    retry in local mode): a Spark job failure as a cluster meets one. On the driver, a
    judge answer."""
    from pyspark import TaskContext

    if TaskContext.get() is not None:
        os._exit(3)
    return judge_messages(messages)


def answer_some(row: dict[str, Any]) -> str:
    """Right on two rows of three (by id), else the first sentence of the context: scores
    that differ from row to row, for slices and intervals."""
    if int(row["id"]) % 3:
        return answer_expected(row)
    return (row["context"] or "").split(". ")[0]


def judge_yes(messages: list[dict[str, Any]]) -> str:
    return '{"verdict": "yes", "rationale": "it is"}'


def judge_tone(messages: list[dict[str, Any]]) -> str:
    """A judge answering with labels of its own (rude/neutral/warm): the word the output
    holds, so each row's label is known."""
    text = str(messages[-1].get("content", ""))
    label = next((w for w in ("rude", "neutral", "warm") if w in text), "neutral")
    return json.dumps({"rationale": f"it sounds {label}", "label": label})


def judge_fails_while_flagged(messages: list[dict[str, Any]]) -> str:
    """A judge model that raises while the file in $HARNESS_TEST_FLAG exists."""
    flag = os.environ.get("HARNESS_TEST_FLAG", "")
    if flag and os.path.exists(flag):
        raise RuntimeError("judge backend exploded")
    return judge_messages(messages)


def leaks_its_key(row: dict[str, Any]) -> str:
    """Fails odd rows with a message that quotes the environment's key (a careless client)."""
    if int(row["id"]) % 2:
        raise RuntimeError(f"could not call the backend with key {os.environ['OPENAI_API_KEY']}")
    return row["input"]


def answer_or_nothing(row: dict[str, Any]) -> str:
    """Right on two rows of three (by id), else a word no answer has: token F1 (a scale)
    that scores only 0 and 1."""
    return answer_expected(row) if int(row["id"]) % 3 else "xyzzy"


def lone_surrogate(row: dict[str, Any]) -> str:
    """Text with a lone surrogate, as an SDK reads it from valid JSON ("x\\ud800y")."""
    return "x\ud800y"


def raise_lone_surrogate(row: dict[str, Any]) -> str:
    """Fails with a message quoting a lone surrogate (text an SDK read from valid JSON)."""
    raise ValueError("bad \ud800")


def retrieve(row: dict[str, Any]) -> list[str]:
    """A retriever (``model_type="retriever"``): the ids of the documents named in the input."""
    return [word for word in row["input"].split() if word.startswith("d")]


def retrieve_while_unflagged(row: dict[str, Any]) -> list[str]:
    """``retrieve``, failing the rows with an even position while $HARNESS_TEST_FLAG exists."""
    flag = os.environ.get("HARNESS_TEST_FLAG", "")
    if flag and os.path.exists(flag) and int(row["id"]) % 2 == 0:
        raise RuntimeError(f"flagged row {row['id']}")
    return retrieve(row)


def judge_fails_on_text(messages: list[dict[str, Any]]) -> str:
    """``judge_messages``, except that it raises for a prompt holding any of the texts in
    $HARNESS_TEST_JUDGE_FAIL_TEXT (separated by ``|``)."""
    text = "\n".join(str(m.get("content", "")) for m in messages)
    marks = [m for m in os.environ.get("HARNESS_TEST_JUDGE_FAIL_TEXT", "").split("|") if m]
    if any(mark in text for mark in marks):
        raise RuntimeError("judge backend exploded")
    return judge_messages(messages)


MARKUP = "see [bold]this[/bold] and [/x] \x1b[2J done"  # rich markup, an escape sequence


def markup(row: dict[str, Any]) -> str:
    """An answer rich would read as markup (and fail on), with a terminal escape."""
    return MARKUP


def exits(row: dict[str, Any]) -> str:
    """A model whose code (or a library it calls) calls sys.exit()."""
    raise SystemExit(3)
