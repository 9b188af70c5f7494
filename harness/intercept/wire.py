"""An intercepted HTTP call as a model request, and its stored answer as an HTTP response.

**The key.** A JSON ``POST`` to an LLM endpoint becomes a ``ModelRequest`` whose key is built
as every other key is (``harness.cache.keys``), from:

- ``provider``: ``"http"`` (``APP_PROVIDER``), so these entries never answer harness's own
  provider calls, nor the reverse;
- ``base_url``: the URL without credentials: scheme and host lower-cased, default port
  dropped, the path, and the query parameters sorted, less any whose name looks like a
  credential (``key``, ``api-key``, ``token``, ``sig``, ...; see ``key_url``);
- ``model``: the body's ``model`` (``""`` when it has none);
- ``messages``: the body's ``messages`` when it is a list of objects (chat completions,
  Anthropic messages), else none;
- ``params``: every other member of the body, ``stream`` included (a stream and a whole
  answer are different answers), normalized as any parameter is;
- ``sample_index``: how many identical requests the same row (or block, or test) made
  before this one, so an app that asks twice on purpose gets its two answers back, in order.

Never in it: headers (credentials, ``user-agent``, ``x-stainless-*``, request ids,
idempotency keys), the method (always ``POST``), timeouts.

**The answer** is stored as the entry's ``raw`` member, ``{"status", "content_type"}`` plus
one of ``"json"`` (a JSON body, parsed), ``"text"`` (any other text, a server-sent event
stream or Ollama's NDJSON stream byte for byte) or ``"base64"`` (binary).
``harness.intercept.answers`` reads the text and token usage out of it for the entry and the
run's counters; ``http_response`` turns it back into the response the client expects, a
live answer too, so the client reads the same bytes on a miss as on every later hit. The
server's headers are never stored: a live answer is handed to the client with those
``live_headers`` keeps, one from the cache with none.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from harness.cache.keys import canonical_fields
from harness.fastjson import loads  # every intercepted call, hit or miss, reads JSON
from harness.intercept.answers import ndjson_ended, ndjson_garbled, stream_ended, stream_garbled
from harness.intercept.credentials import CREDENTIAL_HEADER, find_secret
from harness.model_io import ModelRequest

__all__ = [
    "APP_PROVIDER",
    "AppRequest",
    "HTTPCall",
    "JSONCall",
    "app_request",
    "broken",
    "envelope",
    "envelope_body",
    "error_response",
    "http_response",
    "json_call",
    "key_url",
    "live_headers",
]

APP_PROVIDER = "http"
_CREDENTIAL_QUERY = re.compile(
    r"key|token|secret|sig|signature|password|passwd|auth|credential|session", re.IGNORECASE
)
_HOP_BY_HOP = frozenset(
    {
        b"host",
        b"content-length",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-connection",
        b"accept-encoding",  # harness's client asks for what it can decode, and decodes
    }
)


@dataclass(frozen=True)
class HTTPCall:
    """What to send on a miss: the request as the user's client built it."""

    api: str  # the API the endpoint speaks (harness.intercept.endpoints)
    method: str
    url: Any  # the client's URL object, query string included: the server needs it
    raw_headers: tuple[tuple[bytes, bytes], ...]  # as the client built them (httpx's .raw)
    content: bytes
    timeout: Mapping[str, float | None] | None = None
    # Credentials (name -> value) the answer must not contain: the request's own and the
    # environment's, found when the call was keyed.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers to send: the client's, less the hop-by-hop ones (decoded on a miss
        only: a cache hit never needs them)."""
        return [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.raw_headers
            if name.lower() not in _HOP_BY_HOP
        ]


@dataclass(frozen=True)
class AppRequest(ModelRequest):
    """A model request made from an intercepted HTTP call (``http`` is never keyed)."""

    http: HTTPCall | None = field(default=None, compare=False, repr=False)


@functools.lru_cache(maxsize=256)  # an app calls a few URLs, each many times
def key_url(scheme: str, host: str, port: int | None, path: str, query: str) -> str:
    """The URL as the key holds it (see the module docstring)."""
    netloc = host.lower() if port is None else f"{host.lower()}:{port}"
    if not query:
        return f"{scheme.lower()}://{netloc}{path}"
    kept = sorted(
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if not _CREDENTIAL_QUERY.search(name)
    )
    url = f"{scheme.lower()}://{netloc}{path}"
    return f"{url}?{urlencode(kept)}" if kept else url


class JSONCall:
    """A JSON ``POST`` to an LLM endpoint, parsed into what its key is made of.

    Its ``AppRequest`` (and the ``HTTPCall`` in it) is made on a miss only: a cache hit
    needs the key alone. Making the two frozen dataclasses on every call took 4-5 us: an
    intercepted hit took 71 us, 1.91x a direct hit; with this and the response's headers
    as bytes, 61-67 us, 1.61-1.79x in four runs of bench/bench_intercept.py.
    """

    __slots__ = ("api", "base_url", "content", "messages", "model", "params", "url")

    def __init__(self, api: str, url: Any, content: bytes, body: dict[str, Any]) -> None:
        model = body.get("model")
        messages = body.get("messages")
        chat = type(messages) is list and all(type(m) is dict for m in messages)  # as JSON parses
        query = url.query.decode("ascii", "replace") if isinstance(url.query, bytes) else url.query
        self.api = api
        self.url = url
        self.content = content
        self.model = model if isinstance(model, str) else ""
        self.messages: list[dict[str, Any]] = messages if chat and messages else []
        self.params = {
            k: v for k, v in body.items() if k != "model" and not (chat and k == "messages")
        }
        self.base_url = key_url(url.scheme, url.host, url.port, url.path, query)

    def canonical(self, sample_index: int = 0) -> dict[str, Any]:
        """The canonical request (``harness.cache.keys``) of ``request(..., sample_index)``."""
        return canonical_fields(
            APP_PROVIDER, self.base_url, self.model, self.messages, self.params, sample_index
        )

    def request(
        self,
        raw_headers: Iterable[tuple[bytes, bytes]],
        timeout: Mapping[str, float | None] | None = None,
        secrets: Mapping[str, str] | None = None,
        sample_index: int = 0,
    ) -> AppRequest:
        """The model request for the call path, with what it takes to send it on a miss."""
        call = HTTPCall(
            api=self.api,
            method="POST",
            url=self.url,
            raw_headers=tuple(raw_headers),
            content=self.content,
            timeout=timeout,
            secrets=secrets or {},
        )
        return AppRequest(
            provider=APP_PROVIDER,
            model=self.model,
            messages=tuple(self.messages),
            params=self.params,
            base_url=self.base_url,
            sample_index=sample_index,
            http=call,
        )


def json_call(api: str, method: str, url: Any, content: bytes) -> JSONCall | None:
    """The parsed call, or None when it is not a JSON ``POST``. ``url`` is an ``httpx.URL``
    (of httpx or httpx2)."""
    if method.upper() != "POST" or content.lstrip()[:1] != b"{":
        return None
    try:
        body = loads(content)
    except ValueError:  # also UnicodeDecodeError
        return None
    return JSONCall(api, url, content, body) if isinstance(body, dict) else None


def app_request(
    api: str,
    method: str,
    url: Any,
    raw_headers: Iterable[tuple[bytes, bytes]],
    content: bytes,
    timeout: Mapping[str, float | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> AppRequest | None:
    """The model request for an HTTP call, or None when it is not a JSON POST.

    ``url`` is an ``httpx.URL`` (of httpx or httpx2), ``raw_headers`` its ``Headers.raw``;
    ``secrets`` are the credentials its answer must not contain (``HTTPCall.secrets``).
    """
    call = json_call(api, method, url, content)
    return None if call is None else call.request(raw_headers, timeout, secrets)


# -- stored answers -------------------------------------------------------------------


def envelope(status: int, content_type: str, content: bytes) -> dict[str, Any]:
    """The stored form of an answer (see the module docstring)."""
    raw: dict[str, Any] = {"status": status, "content_type": content_type}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            raw["json"] = loads(content)
            return raw
        except ValueError:
            pass  # a body that says JSON and is not: kept as it came
    try:
        if kind.startswith("text/") or kind.endswith(("json", "xml")):
            raw["text"] = content.decode("utf-8")
            return raw
    except UnicodeDecodeError:
        pass
    raw["base64"] = base64.b64encode(content).decode("ascii")
    return raw


def broken(raw: Mapping[str, Any]) -> str | None:
    """What is wrong with a 2xx answer that is not what its content type promises (the
    client could not read it, and stored it would be replayed on every later run), or None:
    JSON that does not parse (a cut-off body, a gateway's HTML page sent as JSON), an HTML
    page, a server-sent event stream that stops before its end (``stream_ended``), an NDJSON
    stream that does (``ndjson_ended``), a stream with an event (a line) that is not JSON
    amid JSON ones (``stream_garbled``, ``ndjson_garbled``)."""
    kind = str(raw.get("content_type") or "").split(";")[0].strip().lower()
    if (kind == "application/json" or kind.endswith("+json")) and "json" not in raw:
        return "a body that is not JSON"
    if kind == "text/html":
        return "an HTML page"
    if kind == "text/event-stream":
        text = raw.get("text")
        if not isinstance(text, str) or not stream_ended(text):
            return "a stream that stops before its end"
        if stream_garbled(text):
            return "a stream with an event that is not JSON"
    if "ndjson" in kind:
        text = raw.get("text")
        if not isinstance(text, str) or not ndjson_ended(text):
            return "a stream that stops before its end"
        if ndjson_garbled(text):
            return "a stream with a line that is not JSON"
    return None


def envelope_body(raw: Mapping[str, Any]) -> bytes:
    """The body bytes of a stored answer: a JSON body written out compact with its keys
    sorted, whatever order it came in. Every answer the client gets is written here, the
    one sent just now as the one from the cache, so the cold run and every rerun or replay
    hand it the same bytes (an answer read from the cache has its keys sorted as stored;
    one just parsed from the server, the server's order)."""
    if "json" in raw:
        try:  # every replayed answer is written out again: orjson, 3x the standard library
            return orjson.dumps(raw["json"], option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an int beyond 64 bits, a lone surrogate: the standard library
            return json.dumps(  # writes them, the surrogate as its escape, \ud800
                raw["json"], ensure_ascii=False, separators=(",", ":"), sort_keys=True
            ).encode("utf-8", "backslashreplace")
    if "text" in raw:
        return str(raw["text"]).encode("utf-8")
    return base64.b64decode(str(raw.get("base64", "")))


def http_response(
    module: ModuleType, raw: Mapping[str, Any], extra_headers: Iterable[tuple[str, str]] = ()
) -> Any:
    """A ``module.Response`` (httpx or httpx2) with a stored answer, ready to read or stream
    as an answer from the network would be: the client reads it, once."""
    body = envelope_body(raw)
    headers = [  # as bytes, which httpx keeps as they are: a hit makes one per call
        (b"content-type", str(raw.get("content_type") or "application/json").encode("latin-1")),
        (b"content-length", b"%d" % len(body)),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra_headers),
    ]
    status = int(raw.get("status", 200))
    response = module.Response(status, headers=headers, stream=_body_class(module)(body))
    # Already read: httpx's ``read`` keeps ``_content`` and returns it, and every way of
    # reading but ``iter_raw`` starts from it, so a hit skips the decoder and chunker
    # pipeline (it took 12 of a hit's ~80 us then, bench/bench_intercept.py). ``iter_raw`` (and a
    # stream the client reads itself) still reads the body from the stream, once. A cache
    # hit's elapsed time is nil; set, since the close that would time it may never come.
    response._content = body
    response.elapsed = _NO_TIME
    return response


_NO_TIME = datetime.timedelta(0)

# Headers of a live answer the app's client is not handed: how the bytes came (it gets the
# body as harness read it, decoded; ``http_response`` sets its type and length), cookies and
# challenges, the server's say on retries (harness has retried), and credentials.
_NOT_HANDED = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "x-should-retry",
        "set-cookie",
        "set-cookie2",
        "www-authenticate",
        "proxy-authenticate",
    }
)


def live_headers(
    headers: Iterable[tuple[str, str]], secrets: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The headers of a server's answer its client is handed with it, as it would be without
    harness: request ids (``x-request-id``, Anthropic's ``request-id``, which the SDKs read),
    rate limits, timings. Not ``_NOT_HANDED``, nothing named like a credential
    (``x-session-token``) or holding the value of one of ``secrets``, nothing that is not
    Latin-1. Never stored: an answer from the cache has none of them (they told of one call,
    long ago)."""
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _NOT_HANDED or CREDENTIAL_HEADER.search(lowered):
            continue
        if find_secret(value, secrets) is not None:
            continue
        try:
            name.encode("latin-1"), value.encode("latin-1")
        except UnicodeEncodeError:
            continue
        kept.append((lowered, value))
    return tuple(kept)


@functools.cache
def _body_class(module: ModuleType) -> type:
    # httpx reads a ``ByteStream`` as soon as a response is made with one; a stream of
    # another class is read by the client, as a network response is, and only once.
    class Body(module.SyncByteStream, module.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, body: bytes) -> None:
            self.body = body

        def __iter__(self) -> Iterator[bytes]:
            yield self.body

        async def __aiter__(self) -> Any:
            yield self.body

    return Body


def error_response(module: ModuleType, api: str, status: int, kind: str, message: str) -> Any:
    """An error answer harness gives the client in place of the server's, in the API's error
    shape so the SDK shows ``message``; ``x-should-retry: false`` stops SDK retries."""
    if api == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    raw = {"status": status, "content_type": "application/json", "json": body}
    return http_response(module, raw, [("x-should-retry", "false"), ("x-harness-error", kind)])
