"""One cache entry: the document a response is stored as, its checksum, and its checks.

Each entry is stored as the canonical JSON text (see ``harness.cache.keys.canonical_json``)
of::

    {"checksum": sha256 hex of the canonical JSON of the entry without "checksum",
     "created_at": ISO 8601 UTC time of the original call, e.g. "2025-01-02T03:04:05.678Z",
     "key": the request key, "latency_s": seconds the original call took,
     "request": the canonical request, "response": {"text", "input_tokens",
     "output_tokens", "raw"}, "schema": ENTRY_SCHEMA_VERSION}

A cache on disk (``harness.cache.store``), a cassette (``harness.cache.cassette``) and a
cassette in use (``harness.cache.memory``) all hold entries in this form. ``decode_entry``
checks one stored text and parses it; what fails a check raises ``CacheCorrupt``, and the
caller decides whether that is a miss (``use``) or an error (``replay``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from harness import fastjson
from harness.cache.keys import canonical_json, canonical_key
from harness.errors import CacheCorrupt, CacheError
from harness.model_io import ModelResponse

__all__ = [
    "ENTRY_SCHEMA_VERSION",
    "CacheEntry",
    "decode_entry",
    "parse_time",
    "stored_created_at",
    "utc_now",
]

ENTRY_SCHEMA_VERSION = 1

_HEAD = '{"checksum":"'  # every entry ``to_text`` writes starts so
_CREATED_AT = re.compile(r'^\{"checksum":"[0-9a-f]{64}","created_at":"([^"]+)"')


def utc_now() -> str:
    """The current time as ``created_at`` spells it: ISO 8601 UTC, milliseconds, ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A ``created_at`` string as an aware datetime (naive times are taken as UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(slots=True)
class CacheEntry:
    """One cached response, with the canonical request it answers."""

    key: str
    request: dict[str, Any]
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    raw: dict[str, Any] | None = None
    latency_s: float = 0.0
    created_at: str = ""

    @classmethod
    def from_response(
        cls,
        request: dict[str, Any],
        response: ModelResponse,
        *,
        key: str | None = None,
        created_at: str | None = None,
    ) -> CacheEntry:
        """The entry for a provider's answer to a canonical request (now, unless told)."""
        return cls(
            key=key if key is not None else canonical_key(request),
            request=request,
            text=response.text,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            raw=response.raw,
            latency_s=float(response.latency_s),
            created_at=created_at or utc_now(),
        )

    def to_response(self) -> ModelResponse:
        """The cached answer as the provider gave it (latency of the original call)."""
        return ModelResponse(
            text=self.text,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            latency_s=self.latency_s,
            raw=self.raw,
        )

    @property
    def response(self) -> dict[str, Any]:
        """The ``response`` member of the stored document."""
        return {
            "text": self.text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "raw": self.raw,
        }

    def to_text(self) -> str:
        """The stored form: canonical JSON with the checksum as its first member."""
        body = {
            "schema": ENTRY_SCHEMA_VERSION,
            "key": self.key,
            "request": self.request,
            "response": self.response,
            "latency_s": self.latency_s,
            "created_at": self.created_at,
        }
        try:
            encoded = canonical_json(body)
        except (TypeError, ValueError) as exc:
            raise CacheError(f"response for {self.key[:12]} is not JSON data: {exc}") from None
        checksum = hashlib.sha256(encoded).hexdigest()
        # "checksum" sorts before every other member, so this is canonical_json(document).
        return _HEAD + checksum + '",' + encoded[1:].decode("utf-8")

    def to_document(self) -> dict[str, Any]:
        """The stored form as a dict (what export writes, one per line)."""
        return json.loads(self.to_text())

    @classmethod
    def from_document(
        cls,
        document: Any,
        *,
        expected_key: str | None = None,
        checksum_verified: bool = False,
    ) -> CacheEntry:
        """Check a stored document and build its entry; raise ``CacheCorrupt`` if it is bad.

        Checks the checksum (unless the caller already did), the schema, the types of every
        field, and that ``key`` is ``expected_key``. It does not recompute the request's
        key; ``ResponseCache.verify`` and ``import_cassette`` do.
        """
        name = expected_key or "?"
        if type(document) is not dict and not isinstance(document, Mapping):
            raise CacheCorrupt(f"cache entry {name} is not a JSON object")
        if not checksum_verified:
            body = {k: v for k, v in document.items() if k != "checksum"}
            try:
                digest = hashlib.sha256(canonical_json(body)).hexdigest()
            except (TypeError, ValueError):
                digest = None
            if digest != document.get("checksum"):
                raise CacheCorrupt(f"cache entry {name} failed its checksum")
        schema = document.get("schema")
        if schema != ENTRY_SCHEMA_VERSION:
            raise CacheCorrupt(
                f"cache entry {name} has entry schema {schema!r}; "
                f"this harness reads schema {ENTRY_SCHEMA_VERSION}"
            )
        key: Any = document.get("key")
        if expected_key is not None and key != expected_key:
            raise CacheCorrupt(f"cache entry {name} holds the entry of another key ({key!r:.16})")
        # One pass of plain lookups and type checks: this runs on every cache hit.
        try:
            response = document["response"]
            entry = cls(
                key,
                document["request"],
                response["text"],
                response["input_tokens"],
                response["output_tokens"],
                response["raw"],
                document["latency_s"],
                document["created_at"],
            )
        except (KeyError, TypeError):
            entry = None
        if (
            entry is None
            or type(entry.key) is not str
            or type(entry.request) is not dict
            or type(entry.text) is not str
            or not (entry.input_tokens is None or type(entry.input_tokens) is int)
            or not (entry.output_tokens is None or type(entry.output_tokens) is int)
            or not (entry.raw is None or type(entry.raw) is dict)
            or type(entry.latency_s) not in (int, float)
            or type(entry.created_at) is not str
        ):
            raise CacheCorrupt(
                f"cache entry {name} is missing a field or has one of the wrong type"
            )
        return entry


# A request the caller has already, as (canonical request, its canonical JSON).
KnownRequest = tuple[dict[str, Any], bytes]
_REQUEST_MEMBER = b',"request":'


def decode_entry(key: str, value: Any, request: KnownRequest | None = None) -> CacheEntry:
    """Check and parse one stored value; raise ``CacheCorrupt`` if it is not a good entry.

    ``request``: the canonical request whose key is ``key``, and its canonical JSON. When
    the entry stores exactly those bytes (as every entry ``to_text`` wrote for that request
    does), they are not parsed again: the entry's ``request`` is the dict given.
    """
    if type(value) is bytes:
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise CacheCorrupt(f"cache entry {key} is not UTF-8 text") from None
    if type(value) is not str:
        raise CacheCorrupt(f"cache entry {key} is a {type(value).__name__}, not JSON text")
    # Fast path: text written by ``to_text`` is canonical with "checksum" as its first member,
    # so the checksummed bytes are the text minus that member, no re-encoding needed, and
    # they are all the entry needs once they match: only they are parsed.
    if value.startswith(_HEAD) and value[77:79] == '",':
        body = ("{" + value[79:]).encode("utf-8")
        if hashlib.sha256(body).hexdigest() == value[13:77]:
            try:
                document = _parsed_body(body, request)
            except ValueError:  # a checksum made for text that is not JSON
                raise CacheCorrupt(f"cache entry {key} is not valid JSON") from None
            return CacheEntry.from_document(document, expected_key=key, checksum_verified=True)
    try:
        document = json.loads(value)
    except ValueError:
        raise CacheCorrupt(f"cache entry {key} is not valid JSON (truncated?)") from None
    return CacheEntry.from_document(document, expected_key=key)


def _parsed_body(body: bytes, request: KnownRequest | None) -> Any:
    """``fastjson.loads(body)``; with ``request``, its stored bytes (the canonical JSON of a
    dict, so a JSON value whatever stands around it) are read as ``null`` and replaced by
    the dict: a cached rerun's hit parses a third of the entry (issue 14). Members sort
    before "request" are scalars ("created_at", "key", "latency_s"), and a quote inside a
    JSON string is escaped, so the first ``,"request":`` is the member's own."""
    if request is not None:
        canonical, encoded = request
        at = body.find(_REQUEST_MEMBER) + len(_REQUEST_MEMBER)
        if at >= len(_REQUEST_MEMBER) and body.startswith(encoded, at):
            document = fastjson.loads(body[:at] + b"null" + body[at + len(encoded) :])
            if type(document) is dict and document.get("request", 0) is None:
                document["request"] = canonical
            return document
    return fastjson.loads(body)


def stored_created_at(value: str) -> str | None:
    """``created_at`` read from the head of an entry's stored text without parsing it
    (None when the text does not start as ``to_text`` writes it)."""
    match = _CREATED_AT.match(value[:120])
    return match.group(1) if match else None
