"""The rows a run stores: one per example (``OutputRow``) and one per example, metric and
sample (``ScoreRow``).

Plain dataclasses in a module of their own, importable without DuckDB: every metric makes
a ``ScoreRow`` per row it scores, and ``harness.metrics`` is imported where no store is
opened (``harness metrics list``). ``harness.store.runs`` writes them and names them too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OutputRow", "ScoreRow"]


@dataclass
class OutputRow:
    example_id: str
    output: str | None
    error: str | None
    latency_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    request_key: str | None
    cached: bool | None
    app_request_keys: list[str] | None = None  # the calls the model's own code made


@dataclass
class ScoreRow:
    example_id: str
    metric: str
    value: float | None
    source: str = "code"  # code | llm_judge
    sample: int = 0
    label: str | None = None
    rationale: str | None = None
    raw: str | None = None
    error: str | None = None
    request_key: str | None = None
    cached: bool | None = None
