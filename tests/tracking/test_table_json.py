"""``harness.tracking.table_json`` writes values as pandas' ``to_json`` does (its ujson):
floats of every magnitude with 10 decimals or in exponent form, text escaped, nested
values, the rows of a table."""

from __future__ import annotations

import math
import random
import struct

import pandas as pd

from harness.tracking.table_json import table_head, value_text, values_text


def _floats(count: int) -> list[float]:
    rng = random.Random(7)
    edges = [
        0.0, -0.0, 0.5, 1.5, 2.5, 0.05, 0.15, 1e16, 1e16 + 2, 9999999999999998.0, 1e-15,
        1.0000000001e-15, 0.99999999995, 0.999999999949, 5e-11, 1.5e-10, 1e20, 5e-324,
        1.7976931348623157e308, 1 / 3, 12.0, -1e-12, 123456.78901234567,
    ]  # fmt: skip
    found = []
    for i in range(count):
        kind = i % 5
        if kind == 0:  # any bit pattern (NaN and infinities among them)
            found.append(struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0])
        elif kind == 1:
            found.append(rng.uniform(-1, 1) * 10 ** rng.randint(-20, 20))
        elif kind == 2:
            found.append(round(rng.uniform(-1000, 1000), rng.randint(0, 12)))
        elif kind == 3:
            found.append(rng.randint(0, 10 ** rng.randint(1, 12)) / 10 ** rng.randint(0, 12))
        else:
            found.append(rng.choice(edges) * rng.choice([1, -1]))
    return found


def test_floats_are_written_as_pandas_writes_them():
    values = _floats(50_000)
    ours = "[" + ",".join(f"[{value_text(v)}]" for v in values) + "]"
    assert ours == pd.DataFrame({"v": values}).to_json(orient="values")
    assert value_text(math.inf) == value_text(math.nan) == "null"


def test_ints_in_a_float_column_are_floats():
    written = [value_text(12, as_float=True), value_text(12), value_text(None, as_float=True)]
    assert written == ["12.0", "12", "null"]
    assert pd.DataFrame({"v": [12, None]}).to_json(orient="values") == "[[12.0],[null]]"


def test_text_is_escaped_as_pandas_escapes_it():
    rng = random.Random(3)
    pool = [lambda: rng.randint(0, 0x7F), lambda: rng.randint(0x80, 0xD7FF),
            lambda: rng.randint(0xE000, 0x10FFFF), lambda: ord("/"), lambda: ord("\\"),
            lambda: ord('"')]  # fmt: skip
    texts = [
        "".join(chr(rng.choice(pool)()) for _ in range(rng.randint(0, 20))) for _ in range(5000)
    ]
    ours = "[" + ",".join(f"[{value_text(t)}]" for t in texts) + "]"
    assert ours == pd.DataFrame({"v": texts}).to_json(orient="values")


def test_nested_values_and_a_whole_table():
    values = [{"a/b": [1, 2.5, None, True, "x\u00e9"], "n": {"m": 1e20}}, [1, [2, [3]]], 1,
              2.0, True, None, "é"]  # fmt: skip
    frame = pd.DataFrame({"v/1": pd.Series(values, dtype=object), "f": [1, None, 3, 4, 5, 6, 7]})
    rows = [(v, f) for v, f in zip(values, [1, None, 3, 4, 5, 6, 7], strict=True)]
    ours = table_head(["v/1", "f"]) + values_text(rows, [False, True]) + "]}"
    assert ours == frame.to_json(orient="split", index=False, date_format="iso")


def test_del_is_kept_and_a_backslash_before_u007f_stays_escaped():
    texts = ["\x7f", "\\u007f", "\\\x7f", "a\x7f\\u007f\\\\\x7f/", "\\\\u007f\x7f"]
    ours = "[" + ",".join(f"[{value_text(t)}]" for t in texts) + "]"
    assert ours == pd.DataFrame({"v": texts}).to_json(orient="values")
