"""Why a request missed the cache, in one line a person can act on.

``explain_miss`` compares a canonical request (``harness.cache.keys.canonical_request``)
with the closest of some cached canonical requests and names what differs, e.g.
``temperature: 0.7 (cached: 0.0)`` or ``prompt differs at character 212 (message 1,
user): "…in one word" (cached: "…briefly")``. A long parameter (an embedding's ``input``,
the Responses API's ``input``) is shown the same way, around its first difference.
Character positions count from 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.wording import storable

__all__ = ["closest", "differences", "distance", "explain_miss", "prompt_text"]

_IDENTITY = ("provider", "base_url", "model")
_EXCERPT_BEFORE = 20
_EXCERPT_AFTER = 30
_VALUE_CHARS = 60

Request = Mapping[str, Any]


def _common_prefix_len(a: str, b: str) -> int:
    # Binary search over slice comparisons: done in C, so long prompts stay cheap.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


# Where a request without messages keeps its text: embeddings and the Responses API take
# ``input``, legacy completions ``prompt``.
_TEXT_PARAMS = ("input", "prompt")


def prompt_text(request: Request) -> str:
    """The texts of a request's messages joined by ``\\x1e``; for a request with no
    messages, its ``input`` or ``prompt`` parameter."""
    messages = request.get("messages") or []
    if messages:
        return "\x1e".join(_content_text(m.get("content", "")) for m in messages)
    params = request.get("params") or {}
    return "\x1e".join(_content_text(params[name]) for name in _TEXT_PARAMS if name in params)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _value(value: Any) -> str:
    text = _json(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _excerpt(text: str, position: int) -> str:
    start = max(0, position - _EXCERPT_BEFORE)
    end = position + _EXCERPT_AFTER
    piece = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    return json.dumps(piece, ensure_ascii=False)


def _message_differences(index: int, new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    out = []
    if new.get("role") != old.get("role"):
        out.append(f"message {index} role: {new.get('role')} (cached: {old.get('role')})")
    new_text, old_text = (
        _content_text(new.get("content", "")),
        _content_text(old.get("content", "")),
    )
    if new_text != old_text:
        at = _common_prefix_len(new_text, old_text)
        out.append(
            f"prompt differs at character {at + 1} (message {index}, {new.get('role')}): "
            f"{_excerpt(new_text, at)} (cached: {_excerpt(old_text, at)})"
        )
    for name in sorted((set(new) | set(old)) - {"role", "content"}):
        if new.get(name) != old.get(name):  # a tool call's id or arguments: shown where
            out.append(
                _param_difference(
                    f"message {index} {name}",
                    name in new,
                    new.get(name),
                    name in old,
                    old.get(name),
                )
            )
    return out


def _shown(present: bool, value: Any) -> str:
    return _value(value) if present else "not set"


def _param_difference(name: str, present: bool, new: Any, was_present: bool, old: Any) -> str:
    if present and was_present:
        new_text = new if isinstance(new, str) else _json(new)
        old_text = old if isinstance(old, str) else _json(old)
        if max(len(new_text), len(old_text)) > _VALUE_CHARS:  # show where, not the start
            at = _common_prefix_len(new_text, old_text)
            return (
                f"{name} differs at character {at + 1}: {_excerpt(new_text, at)} "
                f"(cached: {_excerpt(old_text, at)})"
            )
    return f"{name}: {_shown(present, new)} (cached: {_shown(was_present, old)})"


def differences(request: Request, cached: Request) -> list[str]:
    """Every difference between a request and a cached one, most telling first."""
    out = []
    for name in _IDENTITY:
        if request.get(name) != cached.get(name):
            new, old = request.get(name) or "default", cached.get(name) or "default"
            out.append(f"{name}: {new} (cached: {old})")
    for name in ("key_schema", "sample_index"):
        if request.get(name) != cached.get(name):
            out.append(f"{name}: {request.get(name)} (cached: {cached.get(name)})")
    params, cached_params = request.get("params") or {}, cached.get("params") or {}
    for name in sorted(set(params) | set(cached_params)):
        new, old = params.get(name), cached_params.get(name)
        # 0 == 0.0 == False in Python; the key tells them apart, so compare JSON text.
        if name not in params or name not in cached_params or _json(new) != _json(old):
            out.append(_param_difference(name, name in params, new, name in cached_params, old))
    messages, cached_messages = request.get("messages") or [], cached.get("messages") or []
    if len(messages) != len(cached_messages):
        out.append(f"messages: {len(messages)} (cached: {len(cached_messages)})")
    for index, (new_message, old_message) in enumerate(
        zip(messages, cached_messages, strict=False)
    ):
        if new_message != old_message:
            out += _message_differences(index, new_message, old_message)
    return out


def _common_suffix_len(a: str, b: str) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[-middle:] == b[-middle:]:
            low = middle
        else:
            high = middle - 1
    return low


def distance(request: Request, cached: Request) -> tuple[int, int, int]:
    """Sort key for closeness: fewest differing fields, then the most prompt text in common
    at the start and the end (the text before the first difference and after the last),
    then the longest common prefix.

    The start alone would tie a slightly edited row's prompt with every other row's that
    shares it up to the edit ("What is the capitol of Chile?" with the capital of Peru and
    of Chile alike); the end tells the row's own prompt from theirs."""
    new, old = prompt_text(request), prompt_text(cached)
    prefix = _common_prefix_len(new, old)
    suffix = _common_suffix_len(new[prefix:], old[prefix:])
    return (len(differences(request, cached)), -(prefix + suffix), -prefix)


def closest(request: Request, candidates: Sequence[Request]) -> Request | None:
    """The candidate nearest to ``request`` (first one on ties), or None if there are none."""
    if not candidates:
        return None
    return min(candidates, key=lambda cached: distance(request, cached))


def _describe(request: Request) -> str:
    where = f" at {request['base_url']}" if request.get("base_url") else ""
    return f"{request.get('provider')}:/{request.get('model')}{where}"


def explain_miss(
    canonical: Request, candidates: Sequence[Request], *, max_differences: int = 4
) -> str:
    """The shortest useful account of why ``canonical`` is not in the cache.

    ``candidates`` are cached canonical requests (``ResponseCache.nearest`` gives the
    ones worth comparing). With none: ``no cached entry for this provider/model (...)``.
    Otherwise the differences from the closest candidate, joined by ``; ``, at most
    ``max_differences`` of them and a count of the rest.
    """
    # A JSON body may hold a lone surrogate (escaped), which UTF-8, and so the row's error
    # in DuckDB, cannot: the message shows it as its escape, as the excerpts' JSON would.
    return storable(_account(canonical, candidates, max_differences))


def _account(canonical: Request, candidates: Sequence[Request], max_differences: int) -> str:
    best = closest(canonical, candidates)
    if best is None:
        return f"no cached entry for this provider/model ({_describe(canonical)})"
    found = differences(canonical, best)
    if not found:
        return (
            "the same request is cached but its entry cannot be used (run `harness cache verify`)"
        )
    shown = "; ".join(found[:max_differences])
    if len(found) > max_differences:
        shown += f"; and {len(found) - max_differences} more"
    if any(canonical.get(name) != best.get(name) for name in _IDENTITY):
        return f"no cached entry for this provider/model ({_describe(canonical)}); closest: {shown}"
    return shown
