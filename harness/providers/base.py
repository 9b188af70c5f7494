"""What every provider is: a model behind a URI that answers requests.

A provider turns a ``ModelRequest`` into a ``ModelResponse`` (both in ``harness.model_io``)
over the wire (or in process, for ``python:`` and ``echo``). It knows nothing of caching,
DuckDB or MLflow: ``harness.calls`` is the only caller, and it does the keying, caching and
accounting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.model_io import Message, ModelRequest, ModelResponse

if TYPE_CHECKING:
    import httpx

__all__ = ["Provider"]


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
            messages=tuple(map(dict, messages)),  # copies, made in C
            params=dict(params or {}),
            base_url=self.base_url,
            sample_index=sample_index,
            row=row,
        )

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        """Why the answer in ``raw`` (a response's stored body) is not whole, else None:
        the model hit its token limit, or the provider's filter stopped it. A judge's
        verdict is never read from such an answer (``harness.judges.judge``)."""
        return None

    def priced_input_tokens(self, response: ModelResponse) -> float | None:
        """The answer's input tokens as billed, in tokens at the input price: the input
        tokens, unless the provider bills some of them at another rate (Anthropic's
        prompt cache)."""
        return response.input_tokens

    @abstractmethod
    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        """Send one request and return the response; raise ``ProviderError`` on failure."""
