"""Request keys: what is in them, what is not, and that order never matters."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from harness.cache.keys import (
    KEY_SCHEMA_VERSION,
    canonical_json,
    canonical_request,
    family_of,
    request_key,
)
from harness.errors import ConfigError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider

BASE: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "base_url": "https://api.openai.com/v1",
    "messages": (
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ),
    "params": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "seed": 7},
    "sample_index": 0,
}


def request(**overrides: Any) -> ModelRequest:
    return ModelRequest(**{**BASE, **overrides})


def with_params(**changes: Any) -> ModelRequest:
    return request(params={**BASE["params"], **changes})


def test_canonical_request_is_the_documented_dict() -> None:
    assert canonical_request(request(base_url="https://api.openai.com/v1/")) == {
        "key_schema": KEY_SCHEMA_VERSION,
        "provider": "openai",
        "base_url": "https://api.openai.com/v1",
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "params": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "seed": 7},
        "sample_index": 0,
    }


def test_key_is_sha256_of_canonical_json() -> None:
    req = request()
    expected = hashlib.sha256(canonical_json(canonical_request(req))).hexdigest()
    assert request_key(req) == expected
    assert len(expected) == 64


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


INCLUDED = {
    "provider": request(provider="anthropic"),
    "base_url": request(base_url="http://127.0.0.1:8000/v1"),
    "base_url default": request(base_url=None),
    "model": request(model="gpt-4o"),
    "message content": request(
        messages=(BASE["messages"][0], {"role": "user", "content": "What is the capital of Spain?"})
    ),
    "message role": request(
        messages=(
            BASE["messages"][0],
            {"role": "assistant", "content": BASE["messages"][1]["content"]},
        )
    ),
    "message order": request(messages=tuple(reversed(BASE["messages"]))),
    "extra message": request(
        messages=(*BASE["messages"], {"role": "assistant", "content": "Paris"})
    ),
    "message name": request(messages=(BASE["messages"][0], {**BASE["messages"][1], "name": "bob"})),
    "content parts": request(
        messages=(
            BASE["messages"][0],
            {"role": "user", "content": [{"type": "text", "text": BASE["messages"][1]["content"]}]},
        )
    ),
    "temperature": with_params(temperature=0.7),
    "top_p": with_params(top_p=0.9),
    "max_tokens": with_params(max_tokens=17),
    "seed": with_params(seed=8),
    "new param": with_params(frequency_penalty=0.5),
    "stop": with_params(stop=["\n"]),
    "response_format": with_params(response_format={"type": "json_object"}),
    "tools": with_params(tools=[{"type": "function", "function": {"name": "f"}}]),
    "string vs number": with_params(temperature="0.0"),
    "sample_index": request(sample_index=1),
}


@pytest.mark.parametrize("changed", list(INCLUDED), ids=list(INCLUDED))
def test_changing_an_included_field_changes_the_key(changed: str) -> None:
    assert request_key(INCLUDED[changed]) != request_key(request())


EXCLUDED = {
    "row": request(row={"id": 3, "input": "France"}),
    "api_key": with_params(api_key="sk-secret"),
    "headers": with_params(headers={"Authorization": "Bearer x"}),
    "extra_headers": with_params(extra_headers={"X-Trace": "1"}),
    "timeout": with_params(timeout=30),
    "max_retries": with_params(max_retries=5),
    "concurrency": with_params(concurrency=64),
    "None-valued param": with_params(logit_bias=None),
    "trailing slash": request(base_url="https://api.openai.com/v1/"),
    "upper-case host": request(base_url="HTTPS://API.OpenAI.com/v1"),
    "int temperature": with_params(temperature=0),
    "float max_tokens": with_params(max_tokens=16.0),
    "null content": request(
        messages=(*BASE["messages"], {"role": "assistant", "content": None, "tool_calls": []})
    ),
}


@pytest.mark.parametrize("changed", list(EXCLUDED), ids=list(EXCLUDED))
def test_changing_an_excluded_field_keeps_the_key(changed: str) -> None:
    baseline = request()
    if changed == "null content":
        baseline = request(
            messages=(*BASE["messages"], {"role": "assistant", "content": "", "tool_calls": []})
        )
    assert request_key(EXCLUDED[changed]) == request_key(baseline)


def test_same_request_in_another_order_has_the_same_key() -> None:
    reordered = ModelRequest(
        sample_index=0,
        params={"seed": 7, "max_tokens": 16, "top_p": 1.0, "temperature": 0.0},
        messages=[  # type: ignore[arg-type]  # a list, not a tuple, keys in another order
            {"content": "Answer in one word.", "role": "system"},
            {"content": "What is the capital of France?", "role": "user"},
        ],
        model="gpt-4o-mini",
        base_url="https://api.openai.com/v1",
        provider="openai",
    )
    assert request_key(reordered) == request_key(request())


def test_nested_params_in_another_order_have_the_same_key() -> None:
    schema_a = {"type": "json_schema", "json_schema": {"name": "a", "strict": True}}
    schema_b = {"json_schema": {"strict": True, "name": "a"}, "type": "json_schema"}
    assert request_key(with_params(response_format=schema_a)) == request_key(
        with_params(response_format=schema_b)
    )


def test_stop_as_a_string_is_a_one_element_list() -> None:
    assert request_key(with_params(stop="\n")) == request_key(with_params(stop=["\n"]))
    assert request_key(with_params(stop=("a", "b"))) == request_key(with_params(stop=["a", "b"]))


def test_float_params_are_stored_as_floats_and_counts_as_ints() -> None:
    params = canonical_request(with_params(temperature=1, max_tokens=16.0, custom=2.0))["params"]
    assert params["temperature"] == 1.0 and isinstance(params["temperature"], float)
    assert params["max_tokens"] == 16 and isinstance(params["max_tokens"], int)
    assert params["custom"] == 2 and isinstance(params["custom"], int)
    assert canonical_request(with_params(custom=True))["params"]["custom"] is True


class _Text(str):
    pass


def test_params_in_every_spelling_normalize_as_documented() -> None:
    # The usual values (text, a finite float sampling parameter, an object of plain members)
    # take a short path; every spelling must come out as the long one makes it.
    params = canonical_request(
        with_params(
            temperature=0.25,
            top_p=1,
            stop="END",
            user="me",
            response_format={"type": "json_object", 3: 1.0, "n": [2.0, (1, "x")]},
            extra={"deep": {"x": 5.0, "y": None}},
        )
    )["params"]
    assert params == {
        "max_tokens": 16,  # BASE's
        "seed": 7,
        "temperature": 0.25,
        "top_p": 1.0,
        "stop": ["END"],
        "user": "me",
        "response_format": {"type": "json_object", "3": 1, "n": [2, [1, "x"]]},
        "extra": {"deep": {"x": 5, "y": None}},
    }
    assert [type(v) for v in params["response_format"]["n"]] == [int, list]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"temperature": float("nan")}, "parameter 'temperature' is nan"),
        ({"temperature": float("inf")}, "parameter 'temperature' is inf"),
        (
            {"response_format": {"a": {"b": float("-inf")}}},
            "parameter 'response_format'.a.b is -inf",
        ),
        ({"tools": [{"x": object()}]}, "parameter 'tools'[0].x has a object value"),
        ({"user": _Text("me")}, "parameter 'user' has a _Text value"),
        ({"response_format": {"t": _Text("y")}}, "parameter 'response_format'.t has a _Text value"),
    ],
)
def test_a_value_json_cannot_hold_is_named_by_its_place(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        request_key(with_params(**params))


class _ShapeOnlyProvider(Provider):
    scheme = "openai"

    async def complete(self, request: ModelRequest, client: Any) -> ModelResponse:
        raise NotImplementedError  # never called: only Provider.request is under test


def test_a_provider_built_request_has_the_same_key_as_a_hand_built_one() -> None:
    provider = _ShapeOnlyProvider("gpt-4o-mini", "https://api.openai.com/v1")
    built = provider.request(list(BASE["messages"]), BASE["params"], row={"id": 1})
    assert request_key(built) == request_key(request())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object()])
def test_values_json_cannot_hold_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError):
        request_key(with_params(custom=bad))


def test_family_is_provider_base_url_and_model() -> None:
    assert family_of(canonical_request(request())) == (
        '["openai","https://api.openai.com/v1","gpt-4o-mini"]'
    )
    assert family_of(canonical_request(with_params(temperature=0.5))) == family_of(
        canonical_request(request())
    )


# -- canonical_json takes orjson only where it writes json.dumps's exact bytes ---------


def _reference_json(value: Any) -> bytes:
    import json

    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")


def test_canonical_json_matches_json_dumps_for_every_character() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    value = {"messages": [{"role": "user", "content": text}], "z": text[:500]}
    assert canonical_json(value) == _reference_json(value)


def test_canonical_json_matches_json_dumps_for_floats_and_ints() -> None:
    import random

    rng = random.Random(7)
    floats = [0.0, -0.0, 1e-4, 9.99e-5, 1e16, 9.999e15, 1e-5, 1e22, 5e-324, 1.7976931348623157e308]
    floats += [rng.uniform(-2, 2) for _ in range(2000)]
    floats += [10 ** rng.uniform(-12, 20) * rng.choice((1, -1)) for _ in range(20000)]
    ints = [0, -1, 2**53, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30]
    for number in floats + ints:
        value = {"params": {"temperature": number, "logit_bias": {"50256": [number]}}}
        assert canonical_json(value) == _reference_json(value), number


def test_canonical_json_keeps_json_dumps_behaviour_on_odd_values() -> None:
    odd: list[Any] = [
        {"s": "lone \ud800 surrogate"},  # UTF-8 has no form for it: written as its escape
        {"t": ("a", 1)},  # a tuple: written as a list by json.dumps
        {1: "int key"},  # json.dumps writes the key as "1"
        {"deep": [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]] * 2},
    ]
    nested: Any = []
    for _ in range(300):  # deeper than orjson goes
        nested = [nested]
    odd.append({"nested": nested})
    for value in odd:
        try:
            expected: Any = _reference_json(value)
        except (ValueError, UnicodeError) as exc:
            expected = type(exc)
        try:
            got: Any = canonical_json(value)
        except (ValueError, UnicodeError) as exc:
            got = type(exc)
        assert got == expected, value
    assert canonical_json({"s": "é \ud800"}) == '{"s":"é \\ud800"}'.encode()
    assert json.loads(canonical_json({"s": "é \ud800"})) == {"s": "é \ud800"}
    with pytest.raises(ValueError):
        canonical_json({"temperature": float("nan")})
