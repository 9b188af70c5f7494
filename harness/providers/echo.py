"""``echo``: returns the rendered prompt. For smoke tests and checking templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider

if TYPE_CHECKING:
    import httpx


class EchoProvider(Provider):
    scheme = "echo"
    local = True

    @property
    def uri(self) -> str:
        return "echo"

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> EchoProvider:
        return cls(model or "echo")

    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        text = request.messages[-1].get("content", "") if request.messages else ""
        return ModelResponse(text=str(text))
