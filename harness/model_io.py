"""What goes into a model call and what comes out of it, shared by every layer that touches one.

``ModelRequest`` is everything that can change a model's answer; ``ModelResponse`` is what
a provider returned. Providers build and send them (``harness.providers``), the cache keys
and stores them (``harness.cache``), and the call path holds both (``harness.calls``): a
module of their own lets each of those depend on the types without depending on the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXCLUDED_PARAMS", "Message", "ModelRequest", "ModelResponse"]

Message = Mapping[str, Any]  # {"role": "system"|"user"|"assistant", "content": str}

# Parameters that change how a request is sent, not what it answers: never sent to a model
# as a generation parameter (``harness.providers``) and never part of a cache key
# (``harness.cache.keys``).
EXCLUDED_PARAMS = frozenset(
    {
        "api_key",
        "api_key_env",
        "headers",
        "extra_headers",
        "timeout",
        "request_timeout",
        "connect_timeout",
        "read_timeout",
        "max_retries",
        "retries",
        "retry",
        "concurrency",
        "max_concurrency",
    }
)


@dataclass(frozen=True)
class ModelRequest:
    """One logical call to a model: everything that can change its answer.

    ``provider``, ``base_url``, ``model``, ``messages``, ``params`` and ``sample_index``
    make the cache key (see ``harness.cache.keys``). ``row`` is the eval row handed to
    ``python:`` models; it is never part of a key and never sent over the wire.
    """

    provider: str
    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    sample_index: int = 0
    row: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def prompt_text(self) -> str:
        """All message contents joined, for providers that take one string."""
        return "\n\n".join(str(m.get("content", "")) for m in self.messages)


@dataclass
class ModelResponse:
    """What a provider returned for one request."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    raw: dict[str, Any] | None = None  # the provider's JSON body, kept for the cache
    # An intercepted call's live answer: the server's headers the app's client is handed
    # (``harness.intercept.wire.live_headers``); never cached, so a hit has none.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
