"""``python:`` models and judges for the report tests.

``answer`` is the bundled context baseline, except for two rows named in the environment:
``HARNESS_TEST_FAIL_ID`` fails (a failed row in the report) and ``HARNESS_TEST_EVIL_ID``
answers with markup that would fetch an image and close the page's script if a report
ever pasted outputs into its HTML. ``judge`` answers any judge prompt (a 1-5 score or a
yes/no verdict) with a rationale of a length real judges write (two or three sentences),
drawn deterministically from the prompt; ``flaky_judge`` is ``judge`` but gives no
verdict for one row. ``drop_folder`` removes a folder as it answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from harness.baselines import context_overlap

EVIL_OUTPUT = (
    'The answer is </script><img src="http://example.invalid/pixel.png"> '
    "<script>document.title = 'pwned'</script> yes."
)
_CLAIMS = (
    "the study design and the population match what the context describes",
    "the effect size quoted is the one the abstract reports",
    "the conclusion follows from the reported comparison",
    "a secondary claim about follow-up is not stated anywhere in the passage",
    "the answer restates the objective rather than the finding",
    "the key number is taken from the results section",
)


def answer(row: dict[str, Any]) -> str:
    if row["id"] == os.environ.get("HARNESS_TEST_FAIL_ID"):
        raise RuntimeError(f"the model refused row {row['id']}")
    if row["id"] == os.environ.get("HARNESS_TEST_EVIL_ID"):
        return EVIL_OUTPUT
    return context_overlap(row)


def judge(messages: list[dict[str, Any]]) -> str:
    text = "\n".join(str(m.get("content", "")) for m in messages)
    digest = hashlib.sha256(text.encode()).digest()
    first, second = _CLAIMS[digest[0] % len(_CLAIMS)], _CLAIMS[digest[1] % len(_CLAIMS)]
    rationale = (
        f"Checking the answer against the context: {first}, and {second}. "
        f"Taken together the answer is {'mostly' if digest[2] % 2 else 'only partly'} "
        "supported, with no claim that contradicts the passage outright."
    )
    if '"verdict"' in text:
        return json.dumps({"rationale": rationale, "verdict": "yes" if digest[3] % 3 else "no"})
    return json.dumps({"rationale": rationale, "score": 1 + digest[3] % 5})


def drop_folder(row: dict[str, Any]) -> str:
    """The context baseline, after removing the folder ``HARNESS_TEST_DROP`` names: the
    folder a ``--report`` was checked in is gone by the run's end."""
    import shutil

    shutil.rmtree(os.environ["HARNESS_TEST_DROP"], ignore_errors=True)
    return context_overlap(row)


def tone(messages: list[dict[str, Any]]) -> str:
    """A judge answering with labels of its own (rude/neutral/warm), drawn from the prompt."""
    text = "\n".join(str(m.get("content", "")) for m in messages)
    label = ("rude", "neutral", "warm")[hashlib.sha256(text.encode()).digest()[0] % 3]
    return json.dumps({"rationale": f"it sounds {label}", "label": label})


def flaky_judge(messages: list[dict[str, Any]]) -> str:
    """``judge``, except that it answers no verdict at all (every time, so the repairs fail
    too) for the row whose question contains ``HARNESS_TEST_JUDGE_FAIL_TEXT``."""
    text = "\n".join(str(m.get("content", "")) for m in messages)
    if os.environ["HARNESS_TEST_JUDGE_FAIL_TEXT"] in text:
        return "I would rather not say."
    return judge(messages)
