"""Fixtures of the judge tests: a fake LLM server, its environment, a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testing import FakeLLMConfig, FakeLLMServer


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
