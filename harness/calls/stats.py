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

__all__ = ["KINDS", "CallKind", "CallStats", "KindStats", "cut_off_warning"]

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
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    saved_input_tokens: int = 0  # tokens the cache hits did not pay for
    saved_output_tokens: int = 0
    saved_cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


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
        return sum(getattr(self.of(kind), counter) for kind in KINDS)

    def with_earlier(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        """``as_dict`` with the counters of a run's earlier attempts added (``previous``:
        their ``as_dict``, as the run stored it), per kind of call."""
        current = self.as_dict()
        merged: dict[str, Any] = {}
        for kind in dict.fromkeys([*previous, *current]):
            before, now = previous.get(kind) or {}, current.get(kind) or {}
            merged[kind] = {
                k: round(before.get(k, 0) + now.get(k, 0), 6)
                if isinstance(now.get(k, before.get(k)), float)
                else before.get(k, 0) + now.get(k, 0)
                for k in dict.fromkeys([*before, *now])
            }
        return merged

    def add(self, other: Mapping[str, Any], error_kinds: Mapping[str, int] | None = None) -> None:
        """Add counters reported elsewhere (``as_dict`` of another Caller's stats)."""
        for kind in KINDS:
            mine = self.of(kind)
            for name, value in (other.get(kind) or {}).items():
                setattr(mine, name, getattr(mine, name) + value)
        self.error_kinds.update(error_kinds or {})


def cut_off_warning(calls: Mapping[str, Any]) -> str | None:
    """The warning for a run's model answers that were cut off at their token limit
    (``calls``: ``CallStats.as_dict``, as a run stores it), or None when there were none.
    Such an answer is kept and scored: it is what the model said."""
    model = calls.get("model") or {}
    cut_off = model.get("cut_off") or 0
    if not cut_off:
        return None
    answers = sum(model.get(k) or 0 for k in ("requests", "cache_hits", "local_calls"))
    return (
        f"{cut_off} of {max(answers, cut_off)} model outputs were cut off at their token limit "
        "and are scored as they are; raise max_tokens (--param max_tokens=N) for whole answers"
    )
