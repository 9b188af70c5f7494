"""Shared pieces of the judge tests: a fake LLM server, its environment, a dataset."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.testing import FakeLLMConfig, FakeLLMServer


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


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(running_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    """The module's fake server with default settings, zero counters, and the env set."""
    running_server.configure(**FakeLLMConfig().as_dict())
    running_server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", running_server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return running_server


@pytest.fixture
def qa(qa_file: Path, home: Path) -> str:
    """Twenty PubMedQA rows imported as dataset ``qa``; returns its ref."""
    from harness.data import import_file

    return import_file(qa_file, name="qa", home=home).dataset.ref


def judge_bodies(server: FakeLLMServer) -> list[dict[str, object]]:
    """The JSON bodies of the judge requests the server saw (model calls use another model)."""
    bodies = [json.loads(r["body"]) for r in server.stats()["requests"]]
    return [b for b in bodies if b.get("model") == "judge"]
