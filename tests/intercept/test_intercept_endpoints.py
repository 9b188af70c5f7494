"""Which URLs are LLM endpoints: settings, the environment, the known hosts."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.intercept.endpoints import Endpoint, Endpoints, is_loopback


def match(endpoints: Endpoints, url: str) -> str | None:
    import httpx

    parsed = httpx.URL(url)
    return endpoints.match(parsed.scheme, parsed.host, parsed.port, parsed.path)


def test_known_hosts_and_suffixes() -> None:
    endpoints = Endpoints()
    assert match(endpoints, "https://api.openai.com/v1/chat/completions") == "openai"
    assert match(endpoints, "https://API.Anthropic.com/v1/messages") == "anthropic"
    assert match(endpoints, "https://myres.openai.azure.com/openai/v1/x") == "openai"
    assert match(endpoints, "https://example.com/v1/chat/completions") is None
    assert match(endpoints, "https://openai.azure.com.evil.net/v1") is None


def test_base_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = Endpoints()
    assert match(endpoints, "http://127.0.0.1:8000/v1/chat/completions") is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:9000")
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11434")
    assert match(endpoints, "http://127.0.0.1:8000/v1/chat/completions") == "openai"
    assert match(endpoints, "http://127.0.0.1:8000/v1") == "openai"
    assert match(endpoints, "http://127.0.0.1:8000/v10/x") is None  # a prefix of segments
    assert match(endpoints, "http://127.0.0.1:8000/_stats") is None  # outside the base path
    assert match(endpoints, "http://127.0.0.1:8001/v1/chat/completions") is None
    assert match(endpoints, "http://localhost:9000/v1/messages") == "anthropic"
    assert match(
        endpoints, "https://adb-1.azuredatabricks.net/serving-endpoints/x/invocations"
    ) == ("databricks")
    assert match(endpoints, "https://adb-1.azuredatabricks.net/api/2.0/clusters/list") is None
    assert match(endpoints, "http://127.0.0.1:11434/api/chat") == "ollama"


def test_one_server_for_both_apis_is_told_apart_by_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A gateway (or a local fake) behind both variables: /v1 is OPENAI_BASE_URL's prefix,
    # but /v1/messages is Anthropic's route.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8765")
    endpoints = Endpoints()
    assert match(endpoints, "http://127.0.0.1:8765/v1/messages") == "anthropic"
    assert match(endpoints, "http://127.0.0.1:8765/v1/messages/count_tokens") == "anthropic"
    assert match(endpoints, "http://127.0.0.1:8765/v1/chat/completions") == "openai"
    assert match(endpoints, "http://127.0.0.1:8765/v1/models") == "openai"  # the first match
    configured = Endpoints.from_settings(
        {"providers": {"anthropic": {"base_url": "http://127.0.0.1:8765"}}}
    )
    assert match(configured, "http://127.0.0.1:8765/v1/chat/completions") == "openai"
    named = Endpoints.from_settings({"providers": {"gw": {"base_url": "http://127.0.0.1:8765"}}})
    assert match(named, "http://127.0.0.1:8765/v1/messages") == "gw"  # a named one is kept


def test_settings_hosts_and_provider_base_urls() -> None:
    endpoints = Endpoints.from_settings(
        {
            "intercept": {"hosts": ["llm.internal", "*.gateway.example", "http://10.0.0.1:81/ai"]},
            "providers": {"vllm": {"base_url": "http://gpu-box:8000/v1"}},
        }
    )
    assert match(endpoints, "https://llm.internal/anything") == "http"
    assert match(endpoints, "http://a.b.gateway.example/v1/chat") == "http"
    assert match(endpoints, "http://10.0.0.1:81/ai/v1/embeddings") == "http"
    assert match(endpoints, "http://10.0.0.1:81/other") is None
    assert match(endpoints, "https://10.0.0.1:81/ai/x") is None  # the scheme was given
    assert match(endpoints, "http://gpu-box:8000/v1/completions") == "vllm"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"intercept": {"hosts": "llm.internal"}}, "must be a list"),
        ({"intercept": {"host": ["x"]}}, "unknown setting host"),
        ({"intercept": {"hosts": ["http://x/?a=1"]}}, "is not a host or a URL prefix"),
        ({"intercept": {"hosts": ["x:notaport"]}}, "[intercept] hosts"),
        ({"intercept": {"hosts": ["llm.internal gpu-box"]}}, "is not a host or a URL prefix"),
        ({"intercept": {"hosts": ["http://llm internal/v1"]}}, "is not a host or a URL prefix"),
        ({"providers": {"vllm": {"base_url": "http://gpu box:8000/v1"}}}, "base_url"),
        ({"intercept": "yes"}, "must be a table"),
    ],
)
def test_bad_settings_are_refused(settings: dict, problem: str) -> None:
    with pytest.raises(
        ConfigError, match=problem.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        Endpoints.from_settings(settings)


def test_default_ports() -> None:
    endpoint = Endpoint.parse("https://api.example.com/v1", "http")
    assert endpoint.port == 443 and endpoint.path == "/v1"
    assert endpoint.matches("https", "api.example.com", None, "/v1/x")
    assert not endpoint.matches("https", "api.example.com", 8443, "/v1/x")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("93.184.216.34", False),
        ("api.openai.com", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_runs_rows_read_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row has a scope; the environment is read for the first, not again for each."""
    import asyncio

    from harness.calls import Caller
    from harness.intercept import scope as scopes

    reads: list[str] = []
    real_secrets, real_endpoints = scopes.environment_secrets, scopes.environment_endpoints
    monkeypatch.setattr(scopes, "environment_secrets", lambda: reads.append("s") or real_secrets())
    monkeypatch.setattr(
        scopes, "environment_endpoints", lambda: reads.append("e") or real_endpoints()
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-read-once-0123456789")

    async def rows() -> list[tuple[str | None, dict[str, str]]]:
        interception = Caller(cache=None, mode="off")._intercepting()
        found = []
        for row in ("a", "b", "c"):
            scope = interception.scope(row)
            found.append((scope.endpoint("http", "127.0.0.1", 8000, "/v1/x"), scope.secrets))
        return found

    found = asyncio.run(rows())
    assert [api for api, _ in found] == ["openai"] * 3
    assert all(secrets["OPENAI_API_KEY"] == "sk-read-once-0123456789" for _, secrets in found)
    assert sorted(reads) == ["e", "s"]
