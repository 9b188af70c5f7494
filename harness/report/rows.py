"""The per-row data of a report: every row of every run, packed for the page's script.

One entry per example id (the first run's rows in dataset order, then ids only later runs
have), with the example (input, expected answers, context) once and, per run, the output or
error, latency, tokens, each metric's value (a judge's mean over its samples, as
``harness.store.scores`` computes it) and every judge sample's answer, rationale and error.

The prompt is not stored per row: each run's template travels once, split into its literal
text and its fields (``string.Formatter().parse``, the parser ``str.format`` itself uses).
A field that is a plain ``{input}``, ``{context}`` or ``{id}`` points at the row's own
column; any other field is rendered here, per row, by the same ``harness.prompts.render``
the run used, so the page shows exactly the prompt the model was sent.

The data is JSON, gzipped (no name, no time: the same bytes every time) and base64
encoded: a 1,000-row PubMedQA run is 2.5 MB of JSON, most of it contexts that every
prompt repeats, and under 1 MB packed. The page unpacks it with the browser's own
``DecompressionStream``; base64 text cannot close a ``<script>`` element, whatever the
rows hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.metrics import metric_direction
from harness.prompts import render, run_template
from harness.store.datasets import Example

if TYPE_CHECKING:
    import pandas as pd

    from harness.store.exports import RunRecord
    from harness.store.scores import RunScores

__all__ = ["Flips", "ReportRun", "pack", "prompt_parts", "rows_payload"]

COLUMN_FIELDS = ("input", "context", "id")  # fields the page fills in from the row itself


@dataclass
class ReportRun:
    """A run as a report shows it: its label, its rows and their per-row scores."""

    label: str
    record: RunRecord
    scores: RunScores

    @property
    def template(self) -> str:
        rows = self.scores.rows
        has_context = bool(rows["context"].notna().any()) if len(rows) else False
        return run_template(self.record.info.config.get("prompt"), has_context=has_context)


@dataclass
class Flips:
    """A candidate's rows that got worse or better, as ``harness.compare`` decides (example
    id -> the metrics that moved)."""

    worse: Mapping[str, Sequence[str]] = field(default_factory=dict)
    better: Mapping[str, Sequence[str]] = field(default_factory=dict)


def prompt_parts(template: str) -> tuple[list[Any], list[str]]:
    """``template`` as the page renders it: a list of literal strings and field references
    (``{"c": column}`` for a plain column, ``{"f": k}`` for the row's k-th rendered field),
    and the fields rendered per row, as single-field templates."""
    parts: list[Any] = []
    fields: list[str] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if name in COLUMN_FIELDS and not spec and not conversion:
            parts.append({"c": name})
        else:
            one = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else ""
            ) + "}"
            parts.append({"f": len(fields)})
            fields.append(one)
    return parts, fields


def _round(value: Any) -> float | None:
    """A score as the page needs it: six significant digits, None for no score."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return float(f"{number:.6g}")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _example(row: Mapping[str, Any]) -> Example:
    expected = row["expected"]
    extra = json.loads(row["extra"]) if isinstance(row["extra"], str) and row["extra"] else {}
    return Example(
        id=str(row["id"]),
        input=row["input"] or "",
        expected=tuple(str(e) for e in expected) if expected is not None else (),
        context=_text(row["context"]),
        extra=extra,
    )


def _samples(scores: pd.DataFrame) -> dict[str, dict[str, list[list[Any]]]]:
    """example id -> judge -> its samples as [label, value, rationale, error]."""
    judged = scores[scores["source"] == "llm_judge"].sort_values(["example_id", "metric", "sample"])
    found: dict[str, dict[str, list[list[Any]]]] = {}
    for example_id, metric, label, value, rationale, error in judged[
        ["example_id", "metric", "label", "value", "rationale", "error"]
    ].itertuples(index=False):
        found.setdefault(str(example_id), {}).setdefault(str(metric), []).append(
            [_text(label), _round(value), _text(rationale), _text(error)]
        )
    return found


def rows_payload(
    runs: Sequence[ReportRun], metrics: Sequence[str], flips: Sequence[Flips] = ()
) -> dict[str, Any]:
    """Everything the page's table needs: runs, metrics and one entry per example id.

    ``flips`` has one entry per run after the first (the candidates), or none."""
    templates = [prompt_parts(run.template) for run in runs]
    per_run = []
    for run in runs:
        records = run.record.rows().to_dict("records")
        values = run.scores.values.reindex(columns=list(metrics))
        per_run.append(
            (
                {str(r["id"]): r for r in records},
                _samples(run.record.scores()),
                {
                    str(example_id): [_round(v) for v in row]
                    for example_id, row in zip(values.index, values.to_numpy(), strict=True)
                },
            )
        )
    order: list[str] = []
    seen: set[str] = set()
    for run in runs:
        for example_id in run.scores.rows.index:
            key = str(example_id)
            if key not in seen:
                seen.add(key)
                order.append(key)
    rows = []
    for example_id in order:
        first = next(rows_by_id[example_id] for rows_by_id, _, _ in per_run
                     if example_id in rows_by_id)  # fmt: skip
        example = _example(first)
        entry: dict[str, Any] = {
            "id": example_id,
            "input": example.input,
            "expected": list(example.expected),
        }
        if example.context is not None:
            entry["context"] = example.context
        entry["runs"] = [
            _run_row(example_id, rows_by_id, samples, values, fields)
            for (rows_by_id, samples, values), (_, fields) in zip(per_run, templates, strict=True)
        ]
        moved = [
            [
                [metrics.index(m) for m in f.worse.get(example_id, ()) if m in metrics],
                [metrics.index(m) for m in f.better.get(example_id, ()) if m in metrics],
            ]
            for f in flips
        ]
        if any(w or b for w, b in moved):
            entry["flips"] = moved
        rows.append(entry)
    return {
        "runs": [
            {
                "label": run.label,
                "template": parts,
                "system": run.record.info.config.get("system"),
            }
            for run, (parts, _) in zip(runs, templates, strict=True)
        ],
        "metrics": [
            {
                "name": m,
                "judge": any(m in run.scores.judges for run in runs),
                "dir": metric_direction(m),
            }
            for m in metrics
        ],
        "rows": rows,
    }


def _run_row(
    example_id: str,
    rows_by_id: Mapping[str, Mapping[str, Any]],
    samples: Mapping[str, Mapping[str, list[list[Any]]]],
    values: Mapping[str, list[float | None]],
    fields: Sequence[str],
) -> dict[str, Any] | None:
    row = rows_by_id.get(example_id)
    if row is None:
        return None
    out: dict[str, Any] = {"output": _text(row["output"])}
    if _text(row["error"]) is not None:
        out["error"] = _text(row["error"])
    if row["latency_s"] is not None and not math.isnan(row["latency_s"]):
        out["latency"] = _round(row["latency_s"])
    tokens = [row["input_tokens"], row["output_tokens"]]
    if any(t is not None and not (isinstance(t, float) and math.isnan(t)) for t in tokens):
        out["tokens"] = [None if t is None or t != t else int(t) for t in tokens]
    if row["cached"] is not None and row["cached"] == row["cached"]:
        out["cached"] = bool(row["cached"])
    out["values"] = values[example_id]
    judged = samples.get(example_id)
    if judged:
        out["judges"] = judged
    if fields:
        as_row = _example(row).as_row()
        out["fields"] = [_render_field(one, as_row) for one in fields]
    return out


def _render_field(one: str, row: Mapping[str, Any]) -> str:
    try:
        return render(one, row)
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as e:
        return f"[cannot render {one}: {e}]"


def pack(payload: Mapping[str, Any]) -> str:
    """``payload`` as gzipped JSON in base64: the same text for the same payload."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return base64.b64encode(gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0)).decode(
        "ascii"
    )
