"""A base URL no HTTP client can send to is the user's input: refused before the run.

Before, ``localhost:8080/v1`` (no scheme), ``http://1.2.3.4.5/v1`` or ``http://exa mple/v1``
failed every row after ten retries (a minute), and ``http://[::1/v1`` raised a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.providers.anthropic import AnthropicProvider
from harness.providers.ollama import OllamaProvider
from harness.providers.openai import OpenAIProvider
from harness.testing import FakeLLMServer

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:8080/v1", "must start with http:// or https://"),
        ("ftp://example.com/v1", "must start with http:// or https://"),
        ("http:///v1", "names no host"),
        ("http://[::1:8080/v1", "is not a URL: Invalid IPv6 URL"),
        ("http://example.com:99999/v1", "is not a URL: Port out of range"),
        ("http://example.com:http/v1", "is not a URL"),
        ("http://exa mple.com/v1", "has a host name no server can have ('exa mple.com')"),
        ("http://1.2.3.4.5/v1", "has a host of digits that is no IPv4 address (1.2.3.4.5)"),
    ],
)
@pytest.mark.parametrize("provider", [OpenAIProvider, AnthropicProvider])
def test_a_base_url_no_client_can_send_to_is_refused(provider, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="^the base URL of .*") as refused:
        provider("m", url, api_key="k")
    assert problem in str(refused.value)


def test_a_url_that_is_not_parsed_is_shown_without_its_credentials() -> None:
    with pytest.raises(ConfigError) as refused:
        OpenAIProvider("m", "http://user:sk-secret@[::1/v1", api_key="k")
    assert "sk-secret" not in str(refused.value) and "[::1/v1" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://0:8080/v1",  # a bare number: the resolver's 0.0.0.0, as httpx reaches it
        "http://2130706433:8080/v1",
        "http://127.1:8080/v1",
        "https://[::1]:8443/v1",
        "http://my_server.internal:80/v1",
        "https://api.openai.com/v1",
    ],
)
def test_the_urls_clients_reach_are_kept(url: str) -> None:
    assert OpenAIProvider("m", url, api_key="k").base_url == url
    assert OllamaProvider("m", url).base_url == url.rstrip("/")


def test_the_cli_refuses_it_in_one_line_before_anything_is_sent(
    fake: FakeLLMServer, home: Path, tmp_path: Path, qa_file: Path
) -> None:
    port = fake.url.rsplit(":", 1)[1].strip("/")
    env = {**os.environ, "HARNESS_HOME": str(home), "PYTHONPATH": str(REPO),
           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"127.0.0.1:{port}/v1"}  # fmt: skip

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    assert harness("data", "import", str(qa_file), "--name", "qa").returncode == 0
    sent_before = fake.stats()["requests_total"]
    done = harness("run", "--data", "qa", "--model", "openai:/m", "--no-mlflow")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: the base URL of openai:/m (127.0.0.1:{port}/v1) must start with http:// "
        "or https://\n"
    )
    assert fake.stats()["requests_total"] == sent_before
    assert "no runs yet" in harness("runs", "list").stdout
