"""The rows a run stores: one per example (``OutputRow``) and one per example, metric and
sample (``ScoreRow``).

Plain dataclasses in a module of their own, importable without DuckDB: every metric makes
a ``ScoreRow`` per row it scores, and ``harness.metrics`` is imported where no store is
opened (``harness metrics list``). ``harness.store.runs`` writes them and names them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.wording import storable

__all__ = ["OutputRow", "ScoreRow"]

_MIN, _MAX = -(2**63), 2**63 - 1  # a token count the store holds (BIGINT)


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

    def __post_init__(self) -> None:
        # A count the store's BIGINT cannot hold is none a server could mean: unknown.
        if self.input_tokens is not None and not _MIN <= self.input_tokens <= _MAX:
            self.input_tokens = None
        if self.output_tokens is not None and not _MIN <= self.output_tokens <= _MAX:
            self.output_tokens = None


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

    def __post_init__(self) -> None:
        # A judge's answer or a user's metric may hold a lone surrogate (an SDK reads one
        # from valid JSON), which UTF-8, and so every store and output, has no form for.
        # A heuristic metric's row (no text) pays for one look.
        if self.rationale is self.raw is self.error is self.label is None:
            return
        for name in ("metric", "label", "rationale", "raw", "error"):
            text = getattr(self, name)
            if isinstance(text, str) and not text.isascii():
                setattr(self, name, storable(text))
