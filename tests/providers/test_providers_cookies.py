"""The shared client's cookie jar: skipped for responses without Set-Cookie, kept otherwise."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harness.providers._cookies import SetCookieOnly
from harness.providers._http import TRANSPORTS, make_client


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
def test_every_shared_client_uses_the_jar(transport: str) -> None:
    client = make_client(4, transport=transport)
    try:
        assert isinstance(client.cookies, SetCookieOnly)
    finally:
        asyncio.run(client.aclose())
