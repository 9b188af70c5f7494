"""Credentials an intercepted call may carry, so none of them is ever keyed, cached or written.

``environment_secrets`` (``harness.secrets``) are the values of the variables that hold API
keys. ``header_secrets`` are the values of a request's own
credential headers: ``Authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key``, and any
other header named like a credential (``CREDENTIAL_HEADER``: a gateway's
``x-portkey-api-key``, a ``cookie``, an ``x-session-token``), but not ``idempotency-key``.
``find_secret`` says which of them occurs in a text, by name, never by value. Values shorter
than ``MIN_SECRET_CHARS`` are ignored: "1" or "true" would be found everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping

from harness.secrets import KEY_VARIABLES, MIN_SECRET_CHARS, environment_secrets

__all__ = [
    "CREDENTIAL_HEADER",
    "KEY_VARIABLES",
    "MIN_SECRET_CHARS",
    "environment_secrets",
    "find_secret",
    "header_secrets",
    "keys_for_replay",
    "placeholder_keys",
]

# A header name (lower-cased) that holds a credential: Authorization, x-api-key, api-key,
# x-goog-api-key, a gateway's or a service's own key.
CREDENTIAL_HEADER = re.compile(
    r"cookie|auth|secret|passw|credential|(^|[-_])(key|token|session|sig|signature)$"
)
# Named like one, but a random id the SDKs send (its value is in no body): not a credential.
_NOT_CREDENTIALS = frozenset({"idempotency-key"})
# Set in replay when unset: SDK clients refuse to start without a key, though nothing is sent.
PLACEHOLDER_KEY = "sk-harness-replay-needs-no-key"
PLACEHOLDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def header_secrets(headers: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    """Header name -> credential for a request's credential headers (bearer tokens unwrapped).
    ``headers`` may be str pairs or, as httpx's ``Headers.raw`` holds them, bytes pairs."""
    found = {}
    for raw_name, raw_value in headers:
        lowered = _credential_name(raw_name)
        if lowered is None:
            continue
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        scheme, _, token = value.strip().partition(" ")
        credential = token.strip() if token and scheme.lower() in ("bearer", "basic") else value
        if len(credential.strip()) >= MIN_SECRET_CHARS:
            found[f"the {lowered} header"] = credential.strip()
    return found


@functools.lru_cache(maxsize=1024)
def _credential_name(raw_name: str | bytes) -> str | None:
    """``raw_name`` lower-cased if it names a credential header, else None. Kept per name: an
    SDK sends the same dozen headers on every call, and deciding each one again (a decode
    and a pattern search) was ~5 us of an intercepted cache hit's ~45 (bench_intercept.py)."""
    name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
    lowered = name.lower()
    if lowered in _NOT_CREDENTIALS or not CREDENTIAL_HEADER.search(lowered):
        return None
    return lowered


def find_secret(text: str | bytes, secrets: Mapping[str, str]) -> str | None:
    """The name of the first secret whose value occurs in ``text`` (or in UTF-8 bytes)."""
    for name, value in secrets.items():
        found = value.encode() in text if isinstance(text, bytes) else value in text
        if found:
            return name
    return None


def keys_for_replay(mode: str) -> contextlib.AbstractContextManager[None]:
    """``placeholder_keys`` in replay (a python: model's SDK client starts without a key;
    it sends nothing), else nothing."""
    return placeholder_keys() if mode == "replay" else contextlib.nullcontext()


@contextlib.contextmanager
def placeholder_keys() -> Iterator[None]:
    """``PLACEHOLDER_VARIABLES`` that are unset hold ``PLACEHOLDER_KEY`` while this is
    entered (a replay sends nothing, but ``openai.OpenAI()`` will not start without a key)."""
    missing = [name for name in PLACEHOLDER_VARIABLES if not os.environ.get(name)]
    for name in missing:
        os.environ[name] = PLACEHOLDER_KEY
    try:
        yield
    finally:
        for name in missing:
            if os.environ.get(name) == PLACEHOLDER_KEY:
                del os.environ[name]
