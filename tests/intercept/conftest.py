"""A fake LLM server the real SDKs talk to, with its URLs and a sentinel key in the env."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.testing import FakeLLMConfig, FakeLLMServer

# Must never appear in a cassette, a cache entry, a database or a message.
SENTINEL_KEY = "sk-sentinel-5e4f3a2b1c0d9e8f"


@pytest.fixture(scope="session")
def shared_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def llm(shared_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    """The shared server (default settings, zero counters), where the SDKs send their calls."""
    shared_server.configure(**FakeLLMConfig().as_dict())
    shared_server.reset()
    point_sdks_at(shared_server, monkeypatch)
    return shared_server


@pytest.fixture
def own_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """A server of the test's own, for tests that stop it to prove replay needs none."""
    with FakeLLMServer() as server:
        point_sdks_at(server, monkeypatch)
        yield server


def point_sdks_at(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)


def files_holding(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle``."""
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.fixture
def service() -> Iterator[int]:
    """A plain HTTP service on loopback that is no LLM endpoint (a vector store, say): its
    port. It answers every GET with ``ok``."""

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
