"""The credentials in this process's environment, and text scrubbed of them.

``environment_secrets`` are the values of the variables that hold API keys: the known ones
(``KEY_VARIABLES``) and any variable whose name ends in ``_API_KEY``, ``_TOKEN``,
``_SECRET`` or ``_ACCESS_KEY``; values shorter than ``MIN_SECRET_CHARS`` are ignored ("1" or
"true" would be found everywhere). ``scrub_secrets`` replaces each of them in a text by
``***``: for what the user's own code says when it fails (a ``python:`` model, a metric
function), which harness stores, prints and logs. Shared by every layer (the intercepted
calls of ``harness.intercept.credentials`` among them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "KEY_VARIABLES",
    "MIN_SECRET_CHARS",
    "environment_secrets",
    "redact",
    "scrub_secrets",
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
MIN_SECRET_CHARS = 8
_SHORT_SECRET = 8  # redact: shorter ones only where they stand alone


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


def scrub_secrets(text: str) -> str:
    """``text`` with the value of every credential in the environment replaced by ``***``.

    A wider net than ``environment_secrets``: any variable whose name ends in ``_KEY`` or
    ``_PASSWORD`` counts too (a key named by ``api_key_env = "MY_SERVER_KEY"``). Masking a
    value that was no secret only hides a word of an error message here, where the
    intercepted calls would refuse a request that holds one."""
    return redact(text, environment_secrets(extra_names=_wide_names(os.environ)).values())


def _wide_names(environ: Mapping[str, str]) -> list[str]:
    return [name for name in environ if name.upper().endswith(("_KEY", "_PASSWORD"))]


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***``. A short one (a password ``x``, a query
    value ``require``) only where it stands alone: not every x of a message."""
    for secret in sorted(secrets, key=len, reverse=True):  # a secret that holds another
        if len(secret) >= _SHORT_SECRET:
            text = text.replace(secret, "***")
        elif secret:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text
