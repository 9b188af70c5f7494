"""The shared client (``harness.providers._client``): its cookie jar and its direct send path."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from harness.providers import _client
from harness.providers._client import TRANSPORTS, SetCookieOnly, make_client, send_json


def _response(headers: dict[str, str]) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1:8000/v1/chat/completions")
    return httpx.Response(200, headers=headers, request=request)


def test_a_response_that_sets_a_cookie_is_stored() -> None:
    jar = SetCookieOnly()
    jar.extract_cookies(_response({"set-cookie": "__cf_bm=abc; Path=/"}))
    assert jar.get("__cf_bm") == "abc"


def test_a_response_without_cookies_never_reaches_the_cookiejar(monkeypatch) -> None:
    called = []
    monkeypatch.setattr(
        httpx.Cookies, "extract_cookies", lambda self, response: called.append(response)
    )
    jar = SetCookieOnly()
    jar.extract_cookies(_response({"content-type": "application/json"}))
    assert called == []
    jar.extract_cookies(_response({"set-cookie": "a=b"}))
    assert len(called) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_shared_client_uses_the_jar_and_the_direct_path(monkeypatch, transport) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    client = make_client(4, 30.0, transport=transport)
    try:
        assert isinstance(client.cookies, SetCookieOnly)
        assert client in _client._direct
    finally:
        asyncio.run(client.aclose())


def test_with_a_proxy_in_the_environment_requests_go_through_the_client(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    client = make_client(4, 30.0)
    try:
        assert client not in _client._direct
    finally:
        asyncio.run(client.aclose())


def test_the_direct_path_sends_what_the_client_would_send() -> None:
    """Same URL, body bytes and headers as ``client.post(json=...)``; cookies kept."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"ok": len(seen)}, headers={"set-cookie": f"visit={len(seen)}; Path=/"}
        )

    url = "http://127.0.0.1:9/v1/chat/completions"
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo \u2028"}], "t": 0.5}
    headers = {"Authorization": "Bearer sk-test"}

    async def both() -> list[httpx.Response]:
        mock = httpx.MockTransport(answer)
        plain = httpx.AsyncClient(transport=mock, timeout=httpx.Timeout(30.0))
        plain._cookies = SetCookieOnly()
        lean = httpx.AsyncClient(transport=mock, timeout=httpx.Timeout(30.0))
        lean._cookies = SetCookieOnly()
        _client._direct[lean] = _client._Direct(
            mock, dict(lean.headers), httpx.Timeout(30.0).as_dict()
        )
        try:
            return [
                await send_json(plain, url, body, headers),
                await send_json(lean, url, body, headers),
                await send_json(lean, url, body, headers),
            ]
        finally:
            await plain.aclose()
            await lean.aclose()

    responses = asyncio.run(both())
    via_client, direct, again = seen
    assert direct.url == via_client.url and direct.method == via_client.method
    assert direct.content == via_client.content
    assert json.loads(direct.content) == body
    assert sorted(direct.headers.multi_items()) == sorted(via_client.headers.multi_items())
    assert direct.extensions["timeout"] == via_client.extensions["timeout"]
    assert [r.json() for r in responses] == [{"ok": 1}, {"ok": 2}, {"ok": 3}]
    assert again.headers["cookie"] == "visit=2"  # the cookie the direct path stored
