"""Counters of a Caller's calls, per kind: requests, cache hits, errors, tokens, cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CallKind", "CallStats", "KindStats"]

CallKind = Literal["model", "judge"]


@dataclass
@dataclass
class KindStats:
    """Counters for one kind of call (model or judge)."""

    requests: int = 0  # calls answered by a provider over the wire
    cache_hits: int = 0
    local_calls: int = 0  # python:/echo calls (never cached)
    errors: int = 0
    retries: int = 0  # extra attempts after a retryable failure
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
    error_kinds: Counter[str] = field(default_factory=Counter)

    def of(self, kind: CallKind) -> KindStats:
        return self.model if kind == "model" else self.judge

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model.as_dict(), "judge": self.judge.as_dict()}

    def add(self, other: Mapping[str, Any], error_kinds: Mapping[str, int] | None = None) -> None:
        """Add counters reported elsewhere (``as_dict`` of another Caller's stats)."""
        for kind in ("model", "judge"):
            mine = self.of(kind)
            for name, value in (other.get(kind) or {}).items():
                setattr(mine, name, getattr(mine, name) + value)
        self.error_kinds.update(error_kinds or {})
