"""Helpers for the judge tests (importable: pytest puts tests/judges on sys.path)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.testing import FakeLLMServer

PUBMEDQA = Path(__file__).resolve().parents[2] / "datasets" / "pubmedqa" / "pubmedqa_pqal.jsonl"


@contextmanager
def openai_env(server: FakeLLMServer) -> Iterator[None]:
    """Point ``openai:/...`` at the fake server (for fixtures wider than one test)."""
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ["OPENAI_BASE_URL"] = server.openai_base_url
    os.environ["OPENAI_API_KEY"] = "sk-test"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_qa(folder: Path, rows: int = 20) -> Path:
    """The first ``rows`` PubMedQA rows as a JSONL file in ``folder``."""
    lines = PUBMEDQA.read_text(encoding="utf-8").splitlines()[:rows]
    path = folder / "qa.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def judge_bodies(server: FakeLLMServer, model: str = "judge") -> list[dict[str, Any]]:
    """The JSON bodies of the requests the server saw for ``model``."""
    bodies = [json.loads(r["body"]) for r in server.stats()["requests"]]
    return [b for b in bodies if b.get("model") == model]
