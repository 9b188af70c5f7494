"""Credentials an intercepted call may carry, so none of them is ever keyed, cached or written.

``environment_secrets`` are the values of the variables that hold API keys: the known ones
(``KEY_VARIABLES``) and any variable whose name ends in ``_API_KEY``, ``_TOKEN``,
``_SECRET`` or ``_ACCESS_KEY``. ``header_secrets`` are the values of a request's own
credential headers (``Authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key``).
``find_secret`` says which of them occurs in a text, by name, never by value. Values shorter
than ``MIN_SECRET_CHARS`` are ignored: "1" or "true" would be found everywhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "CREDENTIAL_HEADERS",
    "KEY_VARIABLES",
    "MIN_SECRET_CHARS",
    "environment_secrets",
    "find_secret",
    "header_secrets",
    "placeholder_keys",
]

KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "DATABRICKS_TOKEN",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "COHERE_API_KEY",
    "CO_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "PERPLEXITY_API_KEY",
    "XAI_API_KEY",
    "VOYAGE_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_ACCESS_KEY", "_SECRET_KEY")
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
MIN_SECRET_CHARS = 8
# Set in replay when unset: SDK clients refuse to start without a key, though nothing is sent.
PLACEHOLDER_KEY = "sk-harness-replay-needs-no-key"
PLACEHOLDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def environment_secrets(
    environ: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()
) -> dict[str, str]:
    """Variable name -> value for every credential in the environment (see the module)."""
    environ = os.environ if environ is None else environ
    names = set(KEY_VARIABLES) | set(extra_names)
    found = {}
    for name, value in environ.items():
        value = value.strip()
        if len(value) >= MIN_SECRET_CHARS and (
            name in names or name.upper().endswith(_SECRET_SUFFIXES)
        ):
            found[name] = value
    return found


def header_secrets(headers: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    """Header name -> credential for a request's credential headers (bearer tokens unwrapped).
    ``headers`` may be str pairs or, as httpx's ``Headers.raw`` holds them, bytes pairs."""
    found = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        lowered = name.lower()
        if lowered not in CREDENTIAL_HEADERS:
            continue
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        scheme, _, token = value.strip().partition(" ")
        credential = token.strip() if token and scheme.lower() in ("bearer", "basic") else value
        if len(credential.strip()) >= MIN_SECRET_CHARS:
            found[f"the {lowered} header"] = credential.strip()
    return found


def find_secret(text: str | bytes, secrets: Mapping[str, str]) -> str | None:
    """The name of the first secret whose value occurs in ``text`` (or in UTF-8 bytes)."""
    for name, value in secrets.items():
        found = value.encode() in text if isinstance(text, bytes) else value in text
        if found:
            return name
    return None


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
