"""A run's call counters as it stores them (``runs.usage``): per kind of call (model, judge,
app), named counts, tokens and costs; and the arithmetic that adds an earlier attempt's.

Shared by the call path, which keeps the counters (``harness.calls.stats``), and the store,
which reads a killed run's from its usage file (``harness.store.usage_file``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["rounded", "with_earlier"]


def rounded(counters: Mapping[str, Any]) -> dict[str, Any]:
    """One kind's counters as stored: costs to 6 decimals (a millionth of a dollar)."""
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in counters.items()}


def with_earlier(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` (per kind, as stored) with the counters of a run's earlier attempts
    added (``previous``, as the run stored them), per kind of call."""
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
