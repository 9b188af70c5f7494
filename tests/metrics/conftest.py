"""Fixtures for the metric tests: real PubMedQA rows, and proof that nothing goes online."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

PUBMEDQA = Path(__file__).resolve().parents[2] / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a connection: metrics (and their references) are offline."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a metric test tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def pubmedqa() -> list[dict[str, Any]]:
    """All 1,000 expert-labelled PubMedQA rows (question, context, long answer, decision)."""
    with open(PUBMEDQA, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]
