"""Synthetic runs written as run files (the real export format), for compare/check tests.

Statistical behaviour needs thousands of controlled rows; writing them as run files goes
through the same reader and CLI a user's exported baseline does, without a model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from harness.store.exports import ROW_SCHEMA, RunRecord, export_run
from harness.store.runs import RunInfo


def write_run(
    path: Path,
    *,
    run_id: str,
    scores: Mapping[str, Sequence[float | None]],
    errors: Sequence[bool] | None = None,
    ids: Sequence[str] | None = None,
    version: str = "v1",
    judges: Sequence[str] = (),
    rationales: Mapping[str, Sequence[str]] | None = None,
    outputs: Sequence[str] | None = None,
    extra: Sequence[Mapping[str, object]] | None = None,
    run_name: str | None = None,
    status: str = "finished",
    binary: Sequence[str] | None = None,
    bounds: Mapping[str, Sequence[float]] | None = None,
    rows_total: int | None = None,
) -> Path:
    """``binary``: the metrics the run declares 0/1 (stored as a run stores them); None:
    nothing stored, as a run made before runs stored it; ``bounds`` likewise the ranges;
    ``rows_total``: the rows the run meant to do, more than it holds when it stopped early."""
    n = len(next(iter(scores.values())))
    ids = list(ids) if ids is not None else [f"q{i}" for i in range(n)]
    failed = [bool(e) for e in errors] if errors is not None else [False] * n
    rows = []
    for i in range(n):
        row_scores = []
        for metric, values in scores.items():
            value = values[i]
            if failed[i]:
                continue  # a failed row has no scores, as in a real run
            judge = metric in judges
            row_scores.append(
                {
                    "metric": metric,
                    "sample": 0,
                    "value": None if value is None or math.isnan(value) else float(value),
                    "label": None,
                    "rationale": (rationales or {}).get(metric, [None] * n)[i] if judge else None,
                    "raw": None,
                    "error": "judge failed" if judge and value is None else None,
                    "source": "llm_judge" if judge else "code",
                    "request_key": None,
                    "cached": None,
                }
            )
        rows.append(
            {
                "id": ids[i],
                "input": f"question {ids[i]}",
                "expected": [f"answer {ids[i]}"],
                "context": f"passage {i // 5}",
                "extra": json.dumps(extra[i]) if extra else None,
                "output": None if failed[i] else (outputs[i] if outputs else f"output {i}"),
                "error": "RuntimeError: boom" if failed[i] else None,
                "latency_s": 0.1,
                "input_tokens": None,
                "output_tokens": None,
                "cost_usd": None,
                "request_key": None,
                "cached": None,
                "scores": row_scores,
            }
        )
    info = RunInfo(
        run_id=run_id,
        run_name=run_name,
        dataset="synthetic",
        dataset_version=version,
        model="python:synthetic",
        status=status,
        config={
            "metrics": [m for m in scores if m not in judges],
            "judges": list(judges),
            **({"binary": list(binary)} if binary is not None else {}),
            **({"bounds": {k: list(v) for k, v in bounds.items()}} if bounds is not None else {}),
        },
        metrics={},
        usage={},
        rows_total=n if rows_total is None else rows_total,
        rows_done=n,
        errors=sum(failed),
        mlflow_run_id=None,
        created_at=datetime(2026, 1, 1),
        finished_at=datetime(2026, 1, 1),
    )
    table = pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
    export_run(RunRecord(info, None, table, "store"), path)
    return path
