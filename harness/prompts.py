"""Prompt templates: ``str.format`` fields over a row (``{input}``, ``{context}``, ...).

Literal braces are written ``{{`` and ``}}``. A template is checked against the dataset's
columns before a run starts, so a typo is a one-line error, not a run of failed rows.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import ConfigError

DEFAULT_PROMPT = """Answer the question using the context below. Be concise.

Context:
{context}

Question: {input}
Answer:"""

DEFAULT_PROMPT_NO_CONTEXT = """Answer the question. Be concise.

Question: {input}
Answer:"""


def run_template(prompt: str | None, *, has_context: bool) -> str:
    """The template a run uses: its own ``--prompt``, else the default QA prompt (with the
    context when the eval set has one)."""
    return prompt or (DEFAULT_PROMPT if has_context else DEFAULT_PROMPT_NO_CONTEXT)


def template_fields(template: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:  # e.g. a lone "{"
        raise ConfigError(
            f"prompt template is not valid: {e} (write literal braces as {{{{ }}}})"
        ) from None


def check_template(
    template: str, available: Iterable[str], first_row: Mapping[str, Any] | None = None
) -> None:
    """Raise ConfigError if the template names a field the rows do not have, or cannot be
    filled in from ``first_row`` (an attribute, index, conversion or format the value does
    not have: ``{input.x}``, ``{input!z}``, ``{input:>>>}``), before any row is run."""
    names = set(available)
    for field in template_fields(template):
        base = field.split(".")[0].split("[")[0]
        if not base or base.isdigit():
            raise ConfigError(
                "prompt template fields must be named, e.g. {input}; "
                "write literal braces as {{ and }}"
            )
        if base not in names:
            raise ConfigError(
                f"prompt template uses {{{base}}}, which rows do not have; "
                f"available: {', '.join('{' + n + '}' for n in sorted(names))}"
            )
    if first_row is not None:
        try:
            render(template, first_row)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"prompt template cannot be filled in from the first row (id "
                f"{first_row.get('id')}): {e}; write literal braces as {{{{ and }}}}"
            ) from None


def render(template: str, row: Mapping[str, Any]) -> str:
    values = {k: ("" if v is None else v) for k, v in row.items()}
    return template.format_map(values)


def prompt_digest(template: str, system: str | None = None) -> str:
    h = hashlib.sha256(template.encode("utf-8"))
    if system:
        h.update(b"\x00system\x00" + system.encode("utf-8"))
    return h.hexdigest()[:12]
