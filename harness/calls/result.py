"""What one call gave: the answer, its key, where it came from, what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallResult"]


@dataclass
class CallResult:
    """The outcome of one call, whether it came from the provider or the cache."""

    text: str
    request_key: str | None
    cached: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0  # the original call's latency, also on a cache hit
    cost_usd: float | None = None
    raw: dict[str, Any] | None = field(default=None, repr=False)  # the provider's answer
    app_keys: tuple[str, ...] = ()  # a local call's: the keys of the app calls it made
    # A live app answer's headers for the app's client (``ModelResponse.headers``); never stored.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
