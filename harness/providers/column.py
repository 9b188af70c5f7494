"""``column:NAME``: outputs already in the eval set, like ``mlflow.evaluate(predictions=...)``.

For answers produced elsewhere (a production log, another tool, a notebook): import them
as a column of the dataset and score them with every metric and judge, no model called.
A row with no value in the column (null; a CSV's empty cell is imported as null) is that
row's error; an empty text is the output it holds, scored like any other (a model that
answered nothing). A list or a dict (a retriever's document ids) is its JSON text,
``["d1", "d2"]``, which MLflow's retriever metrics read back as the list. The run checks
before it starts that the dataset has the column (``harness.runner.plan.plan_run``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness.errors import ProviderError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider

if TYPE_CHECKING:
    import httpx


class ColumnProvider(Provider):
    scheme = "column"
    local = True  # nothing to cache: the answer is in the row

    @property
    def uri(self) -> str:
        return f"column:{self.model}"

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> ColumnProvider:
        return cls(model)

    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        value = (request.row or {}).get(self.model)
        if value is None:
            raise ProviderError(f"the row has no value in column {self.model!r}")
        if isinstance(value, (list, dict)):  # stored as JSON: as JSON, not Python's repr
            return ModelResponse(text=json.dumps(value, ensure_ascii=False))
        return ModelResponse(text=str(value))
