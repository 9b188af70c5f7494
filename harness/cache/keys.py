"""Request keys: the documented function from a model request to its cache key.

The key of a request is ``sha256(canonical_json(canonical_request(req))).hexdigest()``,
where ``canonical_json`` is ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8, a lone surrogate (which JSON's
``\\ud800`` escape can hold and UTF-8 cannot) written as that escape. The canonical request
is a dict with exactly these fields:

``key_schema``
    ``KEY_SCHEMA_VERSION`` (an int). Bumped whenever this function changes, so old
    entries miss instead of answering a request they were not made for.
``provider``
    The provider's URI scheme (``openai``, ``anthropic``, ``databricks``, ``ollama``, ...).
``base_url``
    The server the request goes to, or ``null`` for the provider's default. A trailing
    ``/`` is removed and the scheme and host are lower-cased, so ``HTTP://Host:8000/v1/``
    and ``http://host:8000/v1`` are one server.
``model``
    The model or endpoint name, as given.
``messages``
    The full message list, in order. Each message keeps ``role`` (a str) and ``content``
    (a str, or a list of content parts; a missing or null content becomes ``""``) and any
    other field a message carries (``name``, ``tool_calls``, ``tool_call_id``, ...) whose
    value is not null.
``params``
    Every generation parameter (temperature, top_p, max_tokens, seed, stop, response
    format, tools, ...) whose value is not null, normalized so that one logical request
    has one key: the sampling parameters in ``FLOAT_PARAMS`` are floats (``0`` and ``0.0``
    are one temperature); the counts in ``INT_PARAMS`` and any other whole-number float
    are ints; tuples are lists; ``stop`` given as one string is a one-element list.
    Parameters in ``harness.model_io.EXCLUDED_PARAMS`` (API keys, headers, timeouts, retry
    and concurrency settings) are dropped: they change how a request is sent, not what it
    answers.
``sample_index``
    Which repetition of the same request this is (0 unless a call is repeated on purpose).

Never in the key: the eval row handed to ``python:`` models (``ModelRequest.row``), API
keys, headers, timeouts, retry or concurrency settings. Dict order never matters, since
the JSON is written with sorted keys.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from harness.errors import ConfigError
from harness.model_io import EXCLUDED_PARAMS, ModelRequest

__all__ = [
    "FLOAT_PARAMS",
    "INT_PARAMS",
    "KEY_SCHEMA_VERSION",
    "canonical_fields",
    "canonical_json",
    "canonical_key",
    "canonical_key_json",
    "canonical_request",
    "family_of",
    "request_key",
]

KEY_SCHEMA_VERSION = 1

FLOAT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "repeat_penalty",
    }
)
INT_PARAMS = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "num_predict",
        "num_ctx",
        "seed",
        "n",
        "top_k",
        "top_logprobs",
    }
)
# Floats beyond 2**53 are not exact ints; leave them as floats.
_EXACT_INT_LIMIT = 2.0**53
_PLAIN = frozenset({str, bool, int, type(None)})  # types ``_normalize`` returns as they are


def canonical_json(value: Any) -> bytes:
    """Compact, key-sorted, UTF-8 JSON: the one byte form that keys and checksums hash.

    The definition is the standard library's ``json.dumps`` (see the module docstring).
    orjson writes the same bytes faster (a cached judge request: 5 µs instead of 11, guard
    included) for everything but a few floats, ints beyond 64 bits, NaN, non-str keys,
    tuples and subclasses; ``_orjson_same`` sends those to ``json.dumps``.
    tests/cache/test_cache_keys.py checks the two agree, character by character and float
    by float.
    """
    if _orjson_same(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass  # e.g. a lone surrogate: json.dumps gives the reference behaviour
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")  # a lone surrogate as its escape, \ud800


# Python's float repr switches to exponent notation outside [1e-4, 1e16); orjson's at
# other points ("1e-05" vs "0.00001"), so only floats inside that range take orjson.
_PLAIN_FLOAT_MIN, _PLAIN_FLOAT_MAX = 1e-4, 1e16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _orjson_same(value: Any) -> bool:
    """Whether orjson writes ``value`` byte for byte as ``json.dumps`` would.

    A loop over an explicit stack, not recursion: this runs on every request's key.
    Nesting orjson refuses raises in ``orjson.dumps`` and falls back there.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str:
                    return False
                if type(member) is not str:  # most members are text: no need to stack those
                    stack.append(member)
        elif kind is list:
            stack.extend(item)
        elif kind is str or kind is bool or item is None:
            continue
        elif kind is int:
            if not _INT64_MIN <= item <= _INT64_MAX:
                return False
        elif kind is float:
            if not (item == 0.0 or _PLAIN_FLOAT_MIN <= abs(item) < _PLAIN_FLOAT_MAX):
                return False
        else:  # tuples, subclasses, anything else: the reference encoder decides
            return False
    return True


def _normalize(value: Any, where: str) -> Any:
    """A JSON value in one spelling: whole floats as ints, tuples as lists, str dict keys."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} is {value}, which JSON cannot hold")
        if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
            return int(value)
        return value
    if kind is dict:  # the usual object: its plain members need no look, nor a name
        return {
            (k if type(k) is str else str(k)): v
            if type(v) in _PLAIN
            else _normalize(v, f"{where}.{k}")
            for k, v in value.items()
        }
    if isinstance(value, Mapping):
        return {str(k): _normalize(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (int, float)):  # numpy-like or bool subclasses
        return _normalize(float(value) if isinstance(value, float) else int(value), where)
    raise ConfigError(f"{where} has a {kind.__name__} value, which a cache key cannot hold")


def _normalize_param(name: str, value: Any) -> Any:
    kind = type(value)
    # The usual values first, before a name is made for a message there will not be: they
    # are normalized once per call, cache hits included.
    if kind is str:
        return [value] if name == "stop" else value
    if kind is float and name in FLOAT_PARAMS and math.isfinite(value):
        return value
    where = f"parameter {name!r}"
    if name in FLOAT_PARAMS and isinstance(value, (int, float)) and not isinstance(value, bool):
        as_float = float(value)
        if as_float != as_float or as_float in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} is {value}, which JSON cannot hold")
        return as_float
    if name in INT_PARAMS and isinstance(value, float) and value.is_integer():
        return int(value)
    if name == "stop" and isinstance(value, str):
        return [value]
    return _normalize(value, where)


@functools.lru_cache(maxsize=256)  # one or two servers per run, asked 4 times per row
def _normalize_base_url(base_url: str | None) -> str | None:
    if base_url is None:
        return None
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        url = urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))
    return url


def _normalize_message(index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    role, content = message.get("role"), message.get("content")
    if len(message) == 2 and type(role) is str and type(content) is str:
        return {"role": role, "content": content}  # the common case, already normal
    where = f"message {index}"
    out: dict[str, Any] = {}
    for name, value in message.items():
        if value is not None:
            out[str(name)] = _normalize(value, f"{where} {name!r}")
    out["role"] = "" if role is None else str(role)
    if content is None:
        out["content"] = ""
    return out


def canonical_request(req: ModelRequest) -> dict[str, Any]:
    """The normalized request that the key hashes; also stored in each cache entry.

    See the module docstring for each field. The result is plain JSON data (dicts,
    lists, str, int, float, bool, None) with no tuples and no nulls in ``params``.
    """
    return canonical_fields(
        req.provider, req.base_url, req.model, req.messages, req.params, req.sample_index
    )


def canonical_fields(
    provider: str,
    base_url: str | None,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    sample_index: int = 0,
) -> dict[str, Any]:
    """``canonical_request`` of the request these fields would make, without making it (an
    intercepted call is keyed from its parsed body: its request is built on a miss only)."""
    return {
        "key_schema": KEY_SCHEMA_VERSION,
        "provider": provider,
        "base_url": _normalize_base_url(base_url),
        "model": model,
        "messages": [_normalize_message(i, m) for i, m in enumerate(messages)],
        "params": {
            str(name): _normalize_param(str(name), value)
            for name, value in params.items()
            if value is not None and name not in EXCLUDED_PARAMS
        },
        "sample_index": int(sample_index),
    }


def canonical_key(canonical: Mapping[str, Any]) -> str:
    """The key of an already canonical request (as stored in a cache entry)."""
    return canonical_key_json(canonical)[0]


def canonical_key_json(canonical: Mapping[str, Any]) -> tuple[str, bytes]:
    """``canonical_key`` and the canonical JSON it hashes: the bytes an entry stores the
    request as, which a cache hit need not parse again (``decode_entry``'s ``request``)."""
    try:
        encoded = canonical_json(canonical)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"request cannot be keyed: {exc}") from None
    return hashlib.sha256(encoded).hexdigest(), encoded


def request_key(req: ModelRequest) -> str:
    """The cache key of a request: hex SHA-256 of its canonical JSON."""
    return canonical_key(canonical_request(req))


def family_of(canonical: Mapping[str, Any]) -> str:
    """The (provider, base_url, model) a request belongs to, as compact JSON text.

    Entries of one family are the candidates when a miss is explained. JSON escapes
    control characters, so the text never holds the separator the store puts after it.
    """
    family = [canonical.get("provider"), canonical.get("base_url"), canonical.get("model")]
    return json.dumps(family, separators=(",", ":"), ensure_ascii=False)
