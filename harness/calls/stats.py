"""Counters of a Caller's calls, per kind: requests, cache hits, errors, tokens, cost.

The kinds: ``model`` (the run's model), ``judge`` (LLM judges) and ``app`` (the HTTP calls a
``python:`` model's own code makes to LLM endpoints, routed through the call path by
``harness.intercept``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.counters import rounded, with_earlier

__all__ = [
    "KINDS",
    "CallKind",
    "CallStats",
    "KindStats",
    "cut_off_warning",
    "filtered_warning",
    "stopped_warnings",
]

CallKind = Literal["model", "judge", "app"]
KINDS: tuple[CallKind, ...] = ("model", "judge", "app")


@dataclass
class KindStats:
    """Counters for one kind of call (model, judge or app)."""

    requests: int = 0  # calls answered by a provider over the wire
    cache_hits: int = 0
    local_calls: int = 0  # python:/echo calls (never cached)
    errors: int = 0
    retries: int = 0  # extra attempts after a retryable failure
    cut_off: int = 0  # answers (sent or cached) the provider cut off at their token limit
    filtered: int = 0  # answers (sent or cached) the provider's content filter stopped
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    saved_input_tokens: int = 0  # tokens the cache hits did not pay for
    saved_output_tokens: int = 0
    saved_cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return rounded(vars(self))


@dataclass
class CallStats:
    model: KindStats = field(default_factory=KindStats)
    judge: KindStats = field(default_factory=KindStats)
    app: KindStats = field(default_factory=KindStats)
    error_kinds: Counter[str] = field(default_factory=Counter)

    def of(self, kind: CallKind) -> KindStats:
        return self.model if kind == "model" else self.judge if kind == "judge" else self.app

    def as_dict(self) -> dict[str, Any]:
        return {kind: self.of(kind).as_dict() for kind in KINDS}

    def total(self, counter: str) -> Any:
        """One counter summed over the kinds (``total("cache_hits")``)."""
        # sum() over KINDS, written out: a finished row's progress asks for four totals.
        return (
            0
            + getattr(self.model, counter)
            + getattr(self.judge, counter)
            + getattr(self.app, counter)
        )

    def with_earlier(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        """``as_dict`` with the counters of a run's earlier attempts added (``previous``:
        their ``as_dict``, as the run stored it), per kind of call."""
        return with_earlier(previous, self.as_dict())

    def add(self, other: Mapping[str, Any], error_kinds: Mapping[str, int] | None = None) -> None:
        """Add counters reported elsewhere (``as_dict`` of another Caller's stats)."""
        for kind in KINDS:
            mine = self.of(kind)
            for name, value in (other.get(kind) or {}).items():
                setattr(mine, name, getattr(mine, name) + value)
        self.error_kinds.update(error_kinds or {})


def cut_off_warning(calls: Mapping[str, Any], kind: CallKind = "model") -> str | None:
    """The warning for a run's answers of ``kind`` (``model`` or ``app``) that were cut off
    at their token limit (``calls``: ``CallStats.as_dict``, as a run stores it), or None when
    there were none. A model output so cut is kept and scored: it is what the model said;
    an app call's answer went to the app as it came."""
    cut_off, answers = _stopped(calls, kind, "cut_off")
    if not cut_off:
        return None
    if kind == "app":
        return (
            f"{cut_off} of {answers} {_APP_CALLS} got answers cut off at their token limit; "
            "raise max_tokens in the app's calls for whole answers"
        )
    return (
        f"{cut_off} of {answers} model outputs were cut off at their token limit "
        "and are scored as they are; raise max_tokens (--param max_tokens=N) for whole answers"
    )


def filtered_warning(calls: Mapping[str, Any], kind: CallKind = "model") -> str | None:
    """The warning for a run's answers of ``kind`` (``model`` or ``app``) the provider's
    content filter stopped (OpenAI's ``finish_reason`` ``content_filter``, Anthropic's
    ``stop_reason`` ``refusal``), or None. Such an answer is kept as it is, as a cut-off
    one is."""
    filtered, answers = _stopped(calls, kind, "filtered")
    if not filtered:
        return None
    if kind == "app":
        return (
            f"{filtered} of {answers} {_APP_CALLS} got answers stopped by the provider's "
            "content filter"
        )
    return (
        f"{filtered} of {answers} model outputs were stopped by the provider's content "
        "filter and are scored as they are"
    )


# The app's calls are counted apart from the model's outputs (a python: model's row may make
# several, or none), so their warnings count them apart too.
_APP_CALLS = "app calls (the LLM calls the python: model made itself)"


def stopped_warnings(calls: Mapping[str, Any]) -> list[str]:
    """The warnings for a run's answers that are not whole: model outputs cut off or
    filtered, then the app's own calls' answers."""
    found = (
        cut_off_warning(calls),
        filtered_warning(calls),
        cut_off_warning(calls, "app"),
        filtered_warning(calls, "app"),
    )
    return [w for w in found if w]


def _stopped(calls: Mapping[str, Any], kind: CallKind, counter: str) -> tuple[int, int]:
    """(answers of ``kind`` counted by ``counter``, answers of ``kind`` in all)."""
    counts = calls.get(kind) or {}
    count = counts.get(counter) or 0
    answers = sum(counts.get(k) or 0 for k in ("requests", "cache_hits", "local_calls"))
    return count, max(answers, count)
