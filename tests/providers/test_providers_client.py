"""The shared client (``harness.providers._client``): its cookie jar and its direct send path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from harness.providers import _client
from harness.providers._client import TRANSPORTS, SetCookieOnly, make_client, send, send_json


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


def test_the_shards_share_one_tls_context_that_verifies(monkeypatch, tmp_path) -> None:
    """Each of httpx-shards' pools read the TLS roots for its own context (~30 ms each);
    they share one, httpx's default: it verifies, and SSL_CERT_FILE still counts."""
    import ssl

    client = make_client(64, 30.0, transport="httpx-shards")
    try:
        contexts = {id(pool._pool._ssl_context) for pool in client._transport.pools}
        [context] = [client._transport.pools[0]._pool._ssl_context]
        assert len(client._transport.pools) == 8 and len(contexts) == 1
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        asyncio.run(client.aclose())
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):  # httpx's own error for a roots file not there
        make_client(64, 30.0, transport="httpx-shards")


def _tls_of(client: httpx.AsyncClient) -> Any:
    transport: Any = client._transport
    if hasattr(transport, "pools"):  # httpx-shards
        transport = transport.pools[0]
    return getattr(transport, "ssl_context", None) or transport._pool._ssl_context


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_client_shares_one_tls_context_made_for_its_roots(monkeypatch, transport) -> None:
    """Reading the TLS roots took ~20 ms of each client's creation (issue 14): the clients
    share one context per process, made again for other roots (SSL_CERT_FILE); a roots
    file that cannot be read is reported each time, not remembered."""
    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    clients = [make_client(8, 30.0, transport=transport) for _ in range(2)]
    default = _client.tls_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    clients.append(make_client(8, 30.0, transport=transport))
    try:
        first, second, other = (_tls_of(c) for c in clients)
        assert first is second is default and other is not first
        assert other is _client.tls_context()  # SSL_CERT_FILE's, kept in turn
    finally:
        for client in clients:
            asyncio.run(client.aclose())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where() + ".missing")
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            make_client(8, 30.0, transport=transport)


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


def test_the_aiohttp_path_sends_and_reads_what_the_transport_would() -> None:
    """Over httpx-aiohttp, ``send`` posts on the aiohttp session itself: a real server on
    loopback sees the same request as from the transport, and the answers read the same
    (a gzipped body decoded, the cookie stored, refused connections as httpx errors)."""
    import gzip

    from aiohttp import web

    seen: list[tuple[str, str, bytes, list[tuple[str, str]]]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = [(k.lower(), v) for k, v in request.headers.items() if k.lower() != "cookie"]
        seen.append((request.method, request.path_qs, body, sorted(headers)))
        answer = web.Response(
            body=gzip.compress(json.dumps({"n": len(seen), "text": "é"}).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        answer.set_cookie("visit", str(len(seen)))
        return answer

    async def scenario() -> tuple[list[httpx.Response], list[str | None], list[tuple]]:
        runner, port = await _serve(handle)
        url = f"http://127.0.0.1:{port}/v1/chat/completions?x=1"
        lean = make_client(4, 30.0, transport="aiohttp")
        plain = make_client(4, 30.0, transport="aiohttp")
        _client._direct.pop(plain)  # through the client and its transport
        headers = [("Authorization", "Bearer sk-test"), ("X-Twice", "a"), ("X-Twice", "b")]
        content = json.dumps({"model": "m", "input": "héllo"}).encode()
        try:
            responses = [
                await send(plain, "POST", url, headers, content),
                await send(lean, "POST", url, headers, content),
            ]
            cookies = [lean.cookies.get("visit"), plain.cookies.get("visit")]
            refused = f"http://127.0.0.1:{_closed_port()}/v1/chat/completions"
            errors = []
            for direct in (True, False):
                other = make_client(4, 30.0, transport="aiohttp")
                if not direct:
                    _client._direct.pop(other)
                try:
                    await send(other, "POST", refused, headers, content)
                except httpx.HTTPError as e:
                    errors.append((type(e), "onnect" in str(e)))
                finally:
                    await other.aclose()
        finally:
            await lean.aclose()
            await plain.aclose()
            await runner.cleanup()
        return responses, cookies, errors

    (via_transport, direct), cookies, errors = asyncio.run(scenario())
    assert type(direct) is _client._AiohttpAnswer  # read on aiohttp's session itself
    assert type(via_transport) is httpx.Response
    (method, path, body, headers), (method2, path2, body2, headers2) = seen
    assert (method2, path2, body2) == (method, path, body) == ("POST", path, body)
    assert path == "/v1/chat/completions?x=1" and json.loads(body)["input"] == "héllo"
    # httpx's transport joins a repeated header into one line ("a, b", which HTTP reads as
    # the same); the direct path sends the lines as the client built them.
    assert _joined(headers2) == _joined(headers)
    assert ("x-twice", "a") in headers2 and ("x-twice", "b") in headers2
    assert direct.status_code == via_transport.status_code == 200
    assert direct.json() == {"n": 2, "text": "é"} and via_transport.json()["n"] == 1
    assert cookies == ["2", "1"]  # each client stored the cookie its answer set
    # httpx-aiohttp's own mapping (a refused connection reads as httpx.ConnectTimeout)
    assert len(errors) == 2 and errors[0] == errors[1] and errors[0][1]


async def _serve(handle: Any) -> tuple[Any, int]:
    """An aiohttp server on loopback answering POST /v1/chat/completions with ``handle``:
    its runner (``await runner.cleanup()`` stops it) and its port."""
    from aiohttp import web

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_run_answered_from_the_cache_imports_no_http_client(fake, tmp_path) -> None:
    # Each HTTP client costs its import (httpx alone ~60 ms) to a rerun that sends nothing.
    import subprocess
    import sys

    from processes import harness_env

    code = (
        "import sys, harness\n"
        "rows = [{'id': str(i), 'input': f'q {i}', 'expected': 'a'} for i in range(3)]\n"
        "result = harness.evaluate(model='openai:/fake-model', data=rows, judges=['correctness'],"
        " judge_model='openai:/fake-judge', metrics=['exact_match'], log_to_mlflow=False)\n"
        "calls = result.result.calls\n"
        "print(sum(c['requests'] for c in calls.values()), sum(c['cache_hits'] for c in "
        "calls.values()), sorted(m for m in ('httpx', 'aiohttp') if m in sys.modules))"
    )
    env = harness_env(tmp_path / "home", fake)

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip().splitlines()[-1]

    assert run() == "6 0 ['aiohttp', 'httpx']"  # sent: the client is imported
    assert run() == "0 6 []"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": "user", "content": "héllo \u2028 \x00 \x7f"}]},
        {"t": 0.5, "n": 3, "ok": True, "list": [1, 2.25, "x"], "deep": {"a": {"b": []}}},
        {"content": None, "t": 0.0},  # a None: json writes it, the same bytes
        {"big": 2**70},  # beyond 64 bits: orjson refuses it, json writes it
        {1: "a key that is not a string"},
    ],
)
def test_a_json_body_is_the_json_httpx_would_send(body) -> None:
    content = _client.json_body(body)
    expected = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert content == expected.encode("utf-8")


def test_a_json_body_writes_a_float_as_the_same_number_and_refuses_nan() -> None:
    body = {"top_p": 1e-05, "temperature": 1e16}
    assert json.loads(_client.json_body(body)) == body
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="Out of range float values are not JSON"):
            _client.json_body({"temperature": bad})
    with pytest.raises(TypeError, match="not JSON serializable"):
        _client.json_body({"what": object()})
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: as httpx's ``json=``
        _client.json_body({"surrogate": "\ud800"})


def test_the_aiohttp_path_merges_each_set_of_headers_once_and_keeps_them_apart() -> None:
    """A provider's headers, the same each call, are merged once; other headers (an
    intercepted call's own) get their own merge, and only a few sets are kept."""
    from aiohttp import web

    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({"ok": len(seen)})

    async def scenario() -> _client._Direct:
        runner, port = await _serve(handle)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        client = make_client(4, 30.0, transport="aiohttp")
        try:
            for i in range(3):
                await send_json(client, url, {"n": i}, {"Authorization": "Bearer sk-a"})
            await send_json(client, url, {"n": 3}, {"Authorization": "Bearer sk-b"})
            for i in range(_client._MERGED_KEPT + 4):
                await send(client, "POST", url, {"X-Request-Id": str(i)}, b"{}")
            await send(client, "POST", url, [("X-Listed", "1")], b"{}")
            return _client._direct[client]
        finally:
            await client.aclose()
            await runner.cleanup()

    direct = asyncio.run(scenario())
    assert [h["authorization"] for h in seen[:4]] == ["Bearer sk-a"] * 3 + ["Bearer sk-b"]
    assert all(h["content-type"] == "application/json" for h in seen[:4])
    ids = [h.get("x-request-id") for h in seen[4:-1]]
    assert ids == [str(i) for i in range(_client._MERGED_KEPT + 4)]
    assert seen[-1]["x-listed"] == "1" and "x-request-id" not in seen[-1]
    assert len(direct.merged) == _client._MERGED_KEPT
    assert direct.aiohttp_timeout is not None and direct.aiohttp_timeout.sock_read == 30.0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_bare_number_host_is_reached_as_httpx_reaches_it(fake, transport) -> None:
    """``http://0:PORT`` and ``http://2130706433:PORT`` work with the openai SDK (httpx hands
    them to the resolver); aiohttp refuses them ("is not a canonical IPv4 address"), so
    harness's aiohttp client sends them to the address, with httpx's Host header."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> list[tuple[int, str]]:
        seen = []
        for host in ("0", "2130706433", "127.1"):
            url = f"http://{host}:{fake.port}/v1/chat/completions"
            for direct in (True, False):
                client = make_client(2, 10.0, transport=transport)
                if not direct:
                    _client._direct.pop(client)  # through the client and its transport
                try:
                    response = await send_json(client, url, body, {"Authorization": "Bearer k"})
                finally:
                    await client.aclose()
                sent = fake.stats()["requests"][-1]["headers"]
                host_header = {k.lower(): v for k, v in sent.items()}["host"]
                seen.append((response.status_code, host_header))
        return seen

    assert asyncio.run(scenario()) == [
        (200, f"{host}:{fake.port}") for host in ("0", "2130706433", "127.1") for _ in range(2)
    ]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_plain_answer_on_the_aiohttp_path_is_read_as_httpx_reads_it_without_its_decoder(
    monkeypatch, chunked
) -> None:
    """An answer with no Content-Encoding is made into the response httpx makes of it (the
    body read, the stream consumed and closed, a Content-Length when it came chunked), but
    not read back through httpx's decoder: only a compressed one needs that (issue 14)."""
    from aiohttp import web

    decoders: list[str | None] = []
    real = httpx.Response._get_content_decoder

    def counted(self: httpx.Response) -> Any:
        decoders.append(self.headers.get("content-encoding"))
        return real(self)

    monkeypatch.setattr(httpx.Response, "_get_content_decoder", counted)
    text = json.dumps({"choices": [{"message": {"content": "é" * 50}}]}).encode()

    async def handle(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=text, content_type="application/json")
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        answer.enable_chunked_encoding()
        await answer.prepare(request)
        await answer.write(text[:40])
        await answer.write(text[40:])
        await answer.write_eof()
        return answer

    async def scenario() -> httpx.Response:
        runner, port = await _serve(handle)
        client = make_client(4, 30.0, transport="aiohttp")
        try:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            return await send_json(client, url, {"model": "m"}, {"Authorization": "Bearer k"})
        finally:
            await client.aclose()
            await runner.cleanup()

    response = asyncio.run(scenario())
    assert type(response) is _client._AiohttpAnswer
    built = httpx.Response(200, headers=response.headers.raw, content=text)  # as it was made
    assert decoders == [None]  # only by the reference above
    assert (response.status_code, response.content, response.json()) == (200, text, built.json())
    assert response.headers.get("content-length") == str(len(text))
    assert list(response.headers.raw) == list(built.headers.raw)
    assert response.is_stream_consumed and response.is_closed
    assert response.text == built.text and response.encoding == built.encoding == "utf-8"
    assert response.extensions["http_version"] == b"HTTP/1.1"
