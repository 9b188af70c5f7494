"""harness.fastjson.loads reads every document as json.loads does, by orjson when it can."""

from __future__ import annotations

import codecs
import json
import random

import pytest

from harness.fastjson import _may_hold_a_long_int, loads, loads_text

BEYOND_64_BITS = [
    "123456789012345678901234567890",
    "18446744073709551616",  # 2**64
    "-9223372036854775809",  # -2**63 - 1
    "-12345678901234567890123",
]


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for member in value.values() for leaf in _leaves(member)]
    if isinstance(value, list):
        return [leaf for member in value for leaf in _leaves(member)]
    return [value]


def _same_reading(text: str | bytes) -> None:
    content = text.encode() if isinstance(text, str) else text
    expected = json.loads(content)
    got = loads(content)
    assert json.dumps(got) == json.dumps(expected)
    assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(expected)]


@pytest.mark.parametrize(
    "text",
    [
        '{"seed": 123456789012345678901234567890, "a": [1, 2.5]}',  # beyond 64 bits
        '{"seed": -9223372036854775808, "top": 18446744073709551615}',  # the edges, inside
        '{"t": 1e400}',  # the standard library reads inf; orjson refuses
        '{"t": NaN, "u": -Infinity}',
        '{"s": "\\ud800 alone"}',  # a lone surrogate escape
        '{"a": 1, "a": 2, "b": -0.0, "c": 1E2, "d": 0.1, "e": 1e-7, "f": 5e-324}',
        '{"text": "caf\u00e9 \u2603", "n": null, "ok": true}',
        '"a string, not an object"',
        '{"latency_s": 0.00011234567890123457, "sha": "1234567890123456789012a"}',
        '{"f": 12345678901234567890.5, "g": 1e00000000000000000000005}',
        '{"in a string": "order 123456789012345678901234 shipped"}',
    ],
)
def test_documents_read_as_the_standard_library_reads_them(text: str) -> None:
    _same_reading(text)


@pytest.mark.parametrize("number", BEYOND_64_BITS)
@pytest.mark.parametrize(
    "shape",
    ["{N}", " {N}", '{{"a":{N}}}', '{{"a": {N}}}', "[1,{N}]", "[{N}]"]
    + ['{{"a":\n\t{N}}}', "[1,\r{N}]"],
)
def test_an_int_beyond_64_bits_stays_exact_wherever_it_stands(shape: str, number: str) -> None:
    text = shape.format(N=number)
    assert _may_hold_a_long_int(text.encode())
    assert loads(text.encode()) == json.loads(text)
    assert all(type(leaf) is int for leaf in _leaves(loads(text.encode())))


@pytest.mark.parametrize(
    "encoded",
    [codecs.BOM_UTF8 + b'{"a": 1}', '{"a": 12345678901234567890123}'.encode("utf-16")],
)
def test_what_orjson_refuses_is_read_by_the_standard_library(encoded: bytes) -> None:
    _same_reading(encoded)


def test_a_cache_entrys_numbers_take_orjson() -> None:
    # What cache entries hold: small latencies (twenty digits after the point), hex
    # digests, token counts. The guard must not send them all to the standard library,
    # as the first one did (94% of a 10,000-row cache).
    entry = {
        "checksum": "0123456789012345678901234567890123456789012345678901234567891234",
        "latency_s": 0.00011234567890123457,
        "response": {
            "input_tokens": 1234,
            "output_tokens": 56,
            "raw": {"created": 1733, "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S4T"},
        },
        "created_at": "2025-01-02T03:04:05.678Z",
    }
    content = json.dumps(entry, separators=(",", ":")).encode()
    assert not _may_hold_a_long_int(content)
    assert loads(content) == entry


def test_random_floats_read_alike() -> None:
    rng = random.Random(7)
    values = [rng.uniform(-1e30, 1e30) * 10 ** rng.randint(-300, 0) for _ in range(3000)]
    spelled = ", ".join(f"{v:.6e}" for v in values)  # numbers, not in repr's spelling
    text = f'{{"values": {json.dumps(values)}, "spelled": [{spelled}]}}'
    assert loads(text.encode()) == json.loads(text)


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:  # ints of every width, some beyond 64 bits
        return rng.choice([-1, 1]) * rng.randrange(10 ** rng.randint(1, 25))
    if kind == 1:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    if kind == 2:
        return "".join(rng.choice("0123456789 -:,[ab\u00e9") for _ in range(rng.randint(0, 30)))
    if kind == 3:
        return rng.choice([None, True, False])
    if kind in (4, 5):
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_random_documents_read_alike_in_every_spacing() -> None:
    rng = random.Random(11)
    for _ in range(500):
        value = {"v": _random_value(rng)}
        for text in (
            json.dumps(value, separators=(",", ":")),
            json.dumps(value),
            json.dumps(value, indent=rng.choice([1, "\t"])),
        ):
            _same_reading(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 4, "rationale": "caf\u00e9 \u2603"}',
        '{"seed": 123456789012345678901234567890}',
        '{"s": "\ud800"}',  # a lone surrogate in the text itself: it has no UTF-8 form
        '{"s": "\\ud800 escaped"}',
        '\ufeff{"a": 1}',  # a byte-order mark: an error in text, skipped in UTF-8 bytes
        '{"t": NaN}',
        '{"score": 4',  # not JSON
        "",
    ],
)
def test_text_reads_as_the_standard_library_reads_it(text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as error:
        with pytest.raises(json.JSONDecodeError) as raised:
            loads_text(text)
        assert raised.value.msg == error.msg
        return
    got = loads_text(text)
    assert got == expected or json.dumps(got) == json.dumps(expected)
    assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(expected)]
