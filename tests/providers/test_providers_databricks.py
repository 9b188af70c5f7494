"""databricks:/ENDPOINT: auth and URL building, tested WITHOUT THE NETWORK.

Host and token resolution read only environment variables and a ``.databrickscfg`` written
to tmp_path; URLs and headers are checked through ``httpx.MockTransport`` (nothing leaves
the process) and, for the wire format, against the fake server on 127.0.0.1. No test here
talks to a Databricks workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import ConfigError, ProviderError, ProviderHTTPError
from harness.providers import resolve
from harness.providers.databricks import DatabricksProvider, normalize_host
from harness.testing import FakeLLMServer

TOKEN = "dapi-test-0123456789"
CONFIG = """\
[DEFAULT]
host = https://adb-111.azuredatabricks.net/
token = dapi-default-token

[staging]
host = dbc-222.cloud.databricks.com
token = dapi-staging-token
"""


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private .databrickscfg (absent until a test writes it); the real one is never read."""
    path = tmp_path / "databrickscfg"
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(path))
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    return path


def captured(provider: DatabricksProvider, send: Any) -> httpx.Request:
    """The request ``provider`` would send, caught by a MockTransport (no network)."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "choices": [{"message": {"content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            },
        )

    response = send(
        provider,
        provider.request([{"role": "user", "content": "hi"}], {"max_tokens": 5}),
        transport=httpx.MockTransport(answer),
    )
    assert response.text == "ok"
    return seen[0]


def test_host_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch, send: Any) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "adb-999.azuredatabricks.net/")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    provider = resolve("databricks:/my-endpoint")
    assert isinstance(provider, DatabricksProvider)
    provider.check_credentials()
    assert provider.base_url == "https://adb-999.azuredatabricks.net/serving-endpoints"
    request = captured(provider, send)
    assert str(request.url) == (
        "https://adb-999.azuredatabricks.net/serving-endpoints/my-endpoint/invocations"
    )
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(provider)


def test_default_profile_when_the_environment_is_empty(config_file: Path, send: Any) -> None:
    config_file.write_text(CONFIG)
    provider = resolve("databricks:/chat")
    assert isinstance(provider, DatabricksProvider)
    request = captured(provider, send)
    assert str(request.url) == (
        "https://adb-111.azuredatabricks.net/serving-endpoints/chat/invocations"
    )
    assert request.headers["authorization"] == "Bearer dapi-default-token"


def test_the_environment_wins_over_a_named_profile_as_in_the_sdk(
    config_file: Path, send: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Databricks SDK's rule (``Config(profile=...)`` with DATABRICKS_HOST/TOKEN set
    takes them from the environment), which `harness sync --databricks` follows too."""
    config_file.write_text(CONFIG)
    provider = resolve("databricks:/chat", {"profile": "staging"})
    assert isinstance(provider, DatabricksProvider)
    request = captured(provider, send)
    assert str(request.url) == (
        "https://dbc-222.cloud.databricks.com/serving-endpoints/chat/invocations"
    )
    assert request.headers["authorization"] == "Bearer dapi-staging-token"
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "staging")
    assert resolve("databricks:/chat").base_url == provider.base_url

    monkeypatch.setenv("DATABRICKS_HOST", "https://other.example.com")
    moved = resolve("databricks:/chat", {"profile": "staging"})
    assert moved.base_url == "https://other.example.com/serving-endpoints"
    assert captured(moved, send).headers["authorization"] == "Bearer dapi-staging-token"
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    both = resolve("databricks:/chat", {"profile": "staging"})
    assert captured(both, send).headers["authorization"] == f"Bearer {TOKEN}"

    from harness.tracking.databricks_auth import resolve_databricks_credentials

    sync = resolve_databricks_credentials("staging", config_file=config_file)
    assert (sync.host, sync.token) == ("https://other.example.com", TOKEN)  # the same rule


def test_a_missing_token_is_taken_from_the_default_profile(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(CONFIG)
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-111.azuredatabricks.net")
    provider = resolve("databricks:/chat")
    assert provider.headers()["Authorization"] == "Bearer dapi-default-token"  # type: ignore[attr-defined]


def test_missing_configuration_is_a_config_error(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="DATABRICKS_HOST and DATABRICKS_TOKEN"):
        resolve("databricks:/chat").check_credentials()  # type: ignore[attr-defined]
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    with pytest.raises(ConfigError, match="needs a token: set DATABRICKS_TOKEN"):
        resolve("databricks:/chat").check_credentials()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="profile 'nope' is not in"):
        resolve("databricks:/chat", {"profile": "nope"})
    config_file.write_text("[broken\nhost = x\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        resolve("databricks:/chat", {"profile": "staging"})
    with pytest.raises(ConfigError, match="put the token in DATABRICKS_TOKEN"):
        resolve("databricks:/chat", {"token": TOKEN})


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("adb-1.azuredatabricks.net", "https://adb-1.azuredatabricks.net"),
        ("https://dbc-2.cloud.databricks.com/", "https://dbc-2.cloud.databricks.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_host_forms(host: str, url: str) -> None:
    assert normalize_host(host) == url


def test_endpoint_names_are_quoted_in_the_path(send: Any) -> None:
    provider = DatabricksProvider("team/odd name", "https://adb-1.net", token=TOKEN)
    assert captured(provider, send).url.raw_path == (
        b"/serving-endpoints/team%2Fodd%20name/invocations"
    )


def test_wire_format_against_the_local_fake(
    fake: FakeLLMServer, send: Any, last_request: Any
) -> None:
    provider = DatabricksProvider("my-endpoint", fake.url, token=TOKEN)
    response = send(
        provider,
        provider.request([{"role": "user", "content": "Say hi. Now."}], {"temperature": 0}),
    )
    assert response.text == "Answer: Say hi."
    assert response.raw is not None and response.raw["model"] == "my-endpoint"
    seen = last_request(fake)
    assert seen["path"] == "/serving-endpoints/my-endpoint/invocations"
    assert seen["body"] == {
        "messages": [{"role": "user", "content": "Say hi. Now."}],
        "temperature": 0,
        "stream": False,
    }
    fake.configure(fault_script=["error_429"], retry_after_s=0.5)
    with pytest.raises(ProviderHTTPError, match="REQUEST_LIMIT_EXCEEDED") as caught:
        send(provider, provider.request([{"role": "user", "content": "again"}]))
    assert caught.value.retry_after == 0.5
    bad = DatabricksProvider("my-endpoint", fake.url, token=None)
    with pytest.raises(ProviderHTTPError, match=r"check DATABRICKS_TOKEN"):
        send(bad, bad.request([{"role": "user", "content": "hi"}]))


def test_an_oauth_profile_whose_login_fails_says_what_the_sdk_said(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, send: Any
) -> None:
    """A profile without a token authenticates through databricks-sdk (the real SDK; its
    `databricks-cli` auth needs the CLI, absent from PATH here). The SDK's reason reaches the
    row, and the call is final: it had said only "(ValueError)", retried with backoff."""
    config_file.write_text(
        "[DEFAULT]\nhost = https://127.0.0.1:9\nauth_type = databricks-cli\n"
        "retry_timeout_seconds = 1\n"
    )
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(config_file.parent))  # no `databricks` CLI to run
    provider = resolve("databricks:/my-endpoint")
    with pytest.raises(ProviderError) as caught:
        captured(provider, send)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("databricks:/my-endpoint: Databricks authentication failed: ")
    assert "(ValueError)" not in message and len(message) > 70
    assert not caught.value.retryable
