"""`harness run --cache replay` of a `python:` app that also reads from a service: refused
unless `[intercept] allowed_hosts` names the service's host. The service is on this machine,
at 0.0.0.0, which Linux connects here: no packet leaves it, allowed or not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli

APP = """
import os

import httpx


def lookup(row):
    return httpx.get(os.environ["ALLOWED_HOSTS_TEST_SERVICE"], timeout=5).text
"""


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Paris")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://0.0.0.0:{server.server_address[1]}/search"
    monkeypatch.setenv("ALLOWED_HOSTS_TEST_SERVICE", url)
    (tmp_path / "allowed_hosts_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield url
    server.shutdown()
    server.server_close()


def run() -> Any:
    return CliRunner().invoke(
        cli,
        ["run", "--data", "q", "--model", "python:allowed_hosts_app:lookup", "--cache",
         "replay", "--metric", "word_count", "--no-mlflow", "--json"],
    )  # fmt: skip


def test_replay_reaches_only_the_hosts_harness_toml_allows(
    service: str, home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "q1", "input": "capital of France?"}) + "\n")
    assert CliRunner().invoke(cli, ["data", "import", str(data), "--name", "q"]).exit_code == 0

    refused = run()
    assert refused.exit_code == 1
    assert f"refused GET {service}: nothing leaves the machine" in refused.stderr

    (home / "harness.toml").write_text('[intercept]\nallowed_hosts = ["0.0.0.*"]\n')
    allowed = run()
    assert allowed.exit_code == 0, allowed.stderr
    out = json.loads(allowed.stdout)
    assert out["errors"] == 0 and out["calls"]["app"]["requests"] == 0

    (home / "harness.toml").write_text('[intercept]\nallowed_hosts = "0.0.0.0"\n')
    bad = run()
    assert bad.exit_code == 2
    assert bad.stderr == (
        f"error: {home / 'harness.toml'}: [intercept] allowed_hosts must be a list of hosts, "
        'such as ["db:5432", "*.internal"]\n'
    )
