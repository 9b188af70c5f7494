"""Simple non-LLM baselines: a floor any model should beat, and a model for offline demos.

``python:harness.baselines:context_overlap`` answers with the context sentences that
share the most words with the question, preferring later sentences (abstracts tend to
put results last). It needs no network and no weights.
"""

from __future__ import annotations

import re
from typing import Any

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "within",
        "without",
    )
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def context_overlap(row: dict[str, Any], sentences: int = 2) -> str:
    """The ``sentences`` context sentences most like the question, in their original order."""
    context = row.get("context") or ""
    if not context.strip():
        return ""
    question = _words(str(row.get("input") or ""))
    candidates = [s.strip() for s in _SENTENCE.split(" ".join(context.split())) if s.strip()]
    n = len(candidates)
    ranked = sorted(
        range(n),
        # Overlap first; position breaks ties in favour of later sentences.
        key=lambda i: (len(question & _words(candidates[i])), i / max(n, 1)),
        reverse=True,
    )
    chosen = sorted(ranked[:sentences])
    return " ".join(candidates[i] for i in chosen)


def top_sentence(row: dict[str, Any]) -> str:
    """A variant of ``context_overlap``: only the one context sentence most like the question."""
    return context_overlap(row, sentences=1)


_NEGATIVE = re.compile(
    r"\b(no|not|neither|nor|without|failed to|did not|does not|was not|were not|"
    r"no significant|insignificant|unrelated)\b",
    re.IGNORECASE,
)


def decision(row: dict[str, Any]) -> str:
    """``yes`` or ``no`` for a yes/no question, from the wording of the context's last three
    sentences (where abstracts state results): two or more negations read as ``no``, else
    ``yes``. Scored by exact match against PubMedQA's ``final_decision`` (yes/no/maybe) it is
    a floor a model's short answer should beat: 0.577 on the bundled set, where answering
    ``yes`` always scores 0.552 (the share of ``yes`` labels)."""
    sentences = _SENTENCE.split(str(row.get("context") or "").strip())
    return "no" if len(_NEGATIVE.findall(" ".join(sentences[-3:]))) >= 2 else "yes"
