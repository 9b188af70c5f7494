"""Stored runs written straight into a project's DuckDB store, with every kind of value
the per-row table holds (tests/runner/test_table_rows.py): seeded, so each is the same
each time. Imports nothing but the store, so a subprocess can build one too."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from harness.store.db import connect

TEXTS = ["plain", "a/b", "é😀 ü", '\x00\x01\x1f\x7f\n\t"\\', "\u2028", "", "ok </script>"]
# A data column per kind of values; "output" and "judge_a/rationale" are named like the
# table's own columns, which keep theirs.
EXTRAS = {
    "x_int": "int", "x_intfull": "intfull", "x_float": "float", "x_bool": "bool",
    "x_boolfull": "boolfull", "x_str": "str", "x_mixed": "mixed", "x_none": "none",
    "x_big": "big", "output": "str", "judge_a/rationale": "str",
}  # fmt: skip
# (metric, source): judges are asked ``samples`` times; "alpha" first appears late.
METRICS = [
    ("exact_match", "code"), ("zeta", "code"), ("judge_a", "llm_judge"),
    ("tone", "llm_judge"), ("explain", "code"), ("alpha", "code"),
]  # fmt: skip
LABELLED = ["tone"]


def _extra(rng: random.Random, kind: str) -> object:
    choices: dict[str, list[object]] = {
        "int": [rng.randint(-5, 10**6), rng.randint(0, 9), None],
        "intfull": [rng.randint(-(10**12), 10**12)],
        "float": [rng.uniform(-1e3, 1e3), 1e20, 1e-20, 0.1, 12.0, None],
        "bool": [True, False, None],
        "boolfull": [True, False],
        "str": [*TEXTS, None],
        "mixed": [1, "x", 2.5, True, None, {"k/": [1, None, "é"]}, [1, 2]],
        "none": [None],
        "big": [2**63, 2**64 + 5, 3],
    }
    return rng.choice(choices[kind])


def make_run(db_path: Path, seed: int, rows: int = 40, samples: int = 3) -> str:
    """A finished run of ``rows`` rows (its id), its judges asked ``samples`` times."""
    rng = random.Random(seed)
    run_id, dataset = f"run{seed}", f"d{seed}"
    with connect(db_path) as con:
        con.execute(
            "INSERT INTO datasets VALUES (?, 'v1', ?, ?, NULL, NULL, now())",
            [dataset, "0" * 64, rows],
        )
        con.execute(
            "INSERT INTO runs (run_id, dataset, dataset_version, model, status, config, "
            "rows_total, created_at) VALUES (?, ?, 'v1', 'm', 'finished', '{}', ?, now())",
            [run_id, dataset, rows],
        )
        for i in range(rows):
            example_id = f"e{rng.randint(0, 10**6)}-{i}"
            extra = {n: _extra(rng, k) for n, k in EXTRAS.items() if rng.random() < 0.85}
            context = [None, "ctx", "c\u00e9/"] if seed % 4 else ["always"]
            expected = [[], ["a"], ["a/b", "é"]] if seed % 4 else [["a"]]
            con.execute(
                "INSERT INTO examples VALUES (?, 'v1', ?, ?, ?, ?, ?, ?)",
                [dataset, rows - i, example_id, rng.choice(TEXTS),
                 rng.choice(expected), rng.choice(context),
                 json.dumps({} if rng.random() < 0.1 else extra)],
            )  # fmt: skip
            con.execute(
                "INSERT INTO outputs (run_id, example_id, output, error, latency_s, "
                "input_tokens, output_tokens, cost_usd, request_key, cached, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'k', ?, now())",
                [run_id, example_id, rng.choice([*TEXTS, None]),
                 rng.choice([None, None, "Timeout/é"]), rng.choice([0.25, 1e-7, 3.0, None]),
                 rng.choice([None, 5]) if seed % 2 else 7, 9,
                 rng.choice([True, False, None] if seed % 3 else [True])],
            )  # fmt: skip
            for metric, source in METRICS:
                if metric == "alpha" and i % 7:
                    continue
                judged = source == "llm_judge"
                for sample in range(samples if judged else 1):
                    if rng.random() < 0.1:
                        continue
                    values = [1.0, 0.0, 2.0, 3.0, 0.1 * rng.randint(0, 10), None, math.nan]
                    value = rng.choice(values if judged else [rng.random(), 1.0, None, 1 / 3])
                    explains = metric in ("judge_a", "tone") or (
                        metric == "explain" and rng.random() < 0.3
                    )
                    con.execute(
                        "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL)",
                        [run_id, example_id, metric, sample, value,
                         rng.choice(["warm", None, "rude"]) if metric == "tone" else None,
                         rng.choice(["because/é", None]) if explains else None,
                         rng.choice([None, None, "unparsable\n"]) if metric != "zeta" else None,
                         source],
                    )  # fmt: skip
    return run_id
