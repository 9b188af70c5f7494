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
from collections.abc import Iterable, Mapping

__all__ = ["KEY_VARIABLES", "MIN_SECRET_CHARS", "environment_secrets", "scrub_secrets"]

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
    """``text`` with the value of every credential in the environment replaced by ``***``."""
    for value in environment_secrets().values():
        if value in text:
            text = text.replace(value, "***")
    return text
