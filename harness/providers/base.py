"""What every provider is: a request it understands, a response it returns.

A provider turns a ``ModelRequest`` into a ``ModelResponse`` over the wire (or in
process, for ``python:`` and ``echo``). It knows nothing of caching, DuckDB or MLflow:
``harness.calls`` is the only caller, and it does the keying, caching and accounting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx

Message = Mapping[str, Any]  # {"role": "system"|"user"|"assistant", "content": str}


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


class Provider(ABC):
    """A model behind a URI such as ``openai:/gpt-4o-mini``.

    ``local`` providers run in this process (``python:``, ``echo``): they cost nothing,
    so their answers are not cached, but they still go through ``harness.calls``.
    """

    scheme: ClassVar[str]
    local: ClassVar[bool] = False

    def __init__(self, model: str, base_url: str | None = None) -> None:
        self.model = model
        self.base_url = base_url

    @property
    def uri(self) -> str:
        return f"{self.scheme}:/{self.model}"

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> Provider:
        """Build the provider for the part of a URI after the scheme, plus settings."""
        return cls(model, options.get("base_url"))

    def request(
        self,
        messages: Sequence[Message],
        params: Mapping[str, Any] | None = None,
        *,
        sample_index: int = 0,
        row: Mapping[str, Any] | None = None,
    ) -> ModelRequest:
        return ModelRequest(
            provider=self.scheme,
            model=self.model,
            messages=tuple(dict(m) for m in messages),
            params=dict(params or {}),
            base_url=self.base_url,
            sample_index=sample_index,
            row=row,
        )

    @abstractmethod
    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        """Send one request and return the response; raise ``ProviderError`` on failure."""
