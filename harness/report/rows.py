"""The per-row data of a report: every row of every run, packed for the page's script.

One entry per example id (the first run's rows in dataset order, then ids only later runs
have), with the example (input, expected answers, context, the data's other columns) once
and, per run, the output or
error, latency, tokens, each metric's value (a judge's mean over its samples, as
``harness.store.scores`` computes it) and every judge sample's answer, rationale and error.

The prompt is not stored per row: each run's template travels once, split into its literal
text and its fields (``string.Formatter().parse``, the parser ``str.format`` itself uses).
A field that is a plain ``{input}``, ``{context}`` or ``{id}`` points at the row's own
column; any other field is rendered here, per row, by the same ``harness.prompts.render``
the run used, so the page shows exactly the prompt the model was sent.

The data is JSON, gzipped (no name, no time: the same bytes every time) and base64
encoded: a 1,000-row PubMedQA run is 3.4 MB of JSON, most of it contexts that every
prompt repeats, and 1.2 MB packed. The page unpacks it with the browser's own
``DecompressionStream``; base64 text cannot close a ``<script>`` element, whatever the
rows hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import operator
import string
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.metrics import metric_direction
from harness.prompts import render, run_template
from harness.slices.per_row import JUDGE_SOURCE
from harness.store.datasets import Example
from harness.store.scores import labelled_judges

if TYPE_CHECKING:
    from markupsafe import Markup

    from harness.store.exports import RunRecord
    from harness.store.record_rows import RowReader
    from harness.store.scores import RunScores

__all__ = [
    "Flips",
    "ReportRun",
    "pack",
    "packed_rows",
    "prompt_parts",
    "rows_payload",
    "stored_directions",
]

COLUMN_FIELDS = ("input", "context", "id")  # fields the page fills in from the row itself


@dataclass
class ReportRun:
    """A run as a report shows it: its label, its rows and their per-row scores."""

    label: str
    record: RunRecord
    scores: RunScores

    @property
    def template(self) -> str:
        # The run's rule (runner.plan): a context counts when it is non-empty; an eval set
        # imported before empty cells read as absent holds '' where it has none.
        return run_template(
            self.record.info.config.get("prompt"), has_context=self.scores.has_context
        )


@dataclass
class Flips:
    """A candidate's rows that got worse or better, as ``harness.compare`` decides (example
    id -> the metrics that moved)."""

    worse: Mapping[str, Sequence[str]] = field(default_factory=dict)
    better: Mapping[str, Sequence[str]] = field(default_factory=dict)


def stored_directions(runs: Sequence[ReportRun]) -> dict[str, int]:
    """Which way each metric of the runs is better, as the runs stored it (a ``python:``
    metric or a kind is known to no registry here); a later run's word wins."""
    return {name: d for run in runs for name, d in run.scores.directions.items()}


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
            one = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            parts.append({"f": len(fields)})
            fields.append(one)
    return parts, fields


def _number(value: Any) -> float | None:
    """A score as the page needs it: exact (a filter "below 0.2" must agree with the store
    about 0.19999999999999998), None for no score."""
    if value is None:
        return None
    if type(value) is float:  # most are
        return value if math.isfinite(value) else None
    number = float(value)
    return number if math.isfinite(number) else None


def _example(row: Mapping[str, Any]) -> Example:
    text = row.get("extra")
    extra = json.loads(text) if text and text != "{}" else {}  # most rows have none
    return Example(
        id=str(row["id"]),
        input=row["input"] or "",
        expected=tuple(str(e) for e in row["expected"] or ()),
        context=row["context"],
        extra=extra,
    )


def _judged(scores: Sequence[Mapping[str, Any]]) -> dict[str, list[list[Any]]]:
    """A row's judges -> their samples as [label, value, rationale, error], in order."""
    found: dict[str, list[list[Any]]] = {}
    judged = [s for s in scores if s["source"] == JUDGE_SOURCE]  # sorted as they come
    if len(judged) > 1:
        judged.sort(key=_SAMPLE_KEY)
    for s in judged:
        answer = [s["label"], _number(s["value"]), s["rationale"], s["error"]]
        same = found.get(s["metric"])
        if same is None:
            found[s["metric"]] = [answer]
        else:
            same.append(answer)
    return found


_SAMPLE_KEY = operator.itemgetter("metric", "sample")  # a judge's samples in order


def rows_payload(
    runs: Sequence[ReportRun], metrics: Sequence[str], flips: Sequence[Flips] = ()
) -> dict[str, Any]:
    """Everything the page's table needs: runs, metrics and one entry per example id.

    ``flips`` has one entry per run after the first (the candidates), or none."""
    head, rows = _payload(runs, metrics, flips)
    return {**head, "rows": list(rows)}


def _payload(
    runs: Sequence[ReportRun], metrics: Sequence[str], flips: Sequence[Flips]
) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """``rows_payload`` as its head (runs, metrics) and its rows, made one at a time."""
    templates = [prompt_parts(run.template) for run in runs]
    known = stored_directions(runs)
    head = {
        "runs": [
            {
                "label": run.label,
                "template": parts,
                "system": run.record.info.config.get("system"),
                # judges answering with labels of their own (rude/neutral/warm): a row's
                # cell shows the label its samples gave rather than the number it stores
                "labelled": labelled_judges(run.record.info.config),
            }
            for run, (parts, _) in zip(runs, templates, strict=True)
        ],
        "metrics": [
            {
                "name": m,
                "judge": any(m in run.scores.judges for run in runs),
                "dir": metric_direction(m, known),
            }
            for m in metrics
        ],
    }
    return head, _rows(runs, metrics, flips, [fields for _, fields in templates])


def _rows(
    runs: Sequence[ReportRun],
    metrics: Sequence[str],
    flips: Sequence[Flips],
    fields: Sequence[Sequence[str]],
) -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        per_run = []
        for run in runs:
            reader = stack.enter_context(run.record.reader(_SCORE_FIELDS, [JUDGE_SOURCE]))
            # Where each example's row is (the last one, should an id repeat): the rows
            # themselves become Python objects a chunk at a time (``RowReader.records``;
            # the whole run's held 63 MB more at 10,000 rows).
            where = {example_id: i for i, example_id in enumerate(reader.ids())}
            per_row = _row_values(run.scores, metrics)
            for example_id in where.keys() - per_row.keys():  # a row stored since its
                per_row[example_id] = [None] * len(metrics)  # scores were read: none yet
            per_run.append((reader, where, per_row))
        order = list(dict.fromkeys(example_id for _, where, _ in per_run for example_id in where))
        for start in range(0, len(order), _CHUNK_ROWS):
            chunk = order[start : start + _CHUNK_ROWS]
            fetched = [
                (_records(reader, where, chunk), per_row) for reader, where, per_row in per_run
            ]
            yield from _entries(chunk, fetched, flips, fields)


def _row_values(scores: RunScores, metrics: Sequence[str]) -> dict[str, list[float | None]]:
    """Each row's value of each of ``metrics`` (None: not scored, or not the run's)."""
    none = [None] * len(scores.ids)
    columns = [_numbers(scores.columns[m]) if m in scores.columns else none for m in metrics]
    if not columns:
        return {example_id: [] for example_id in scores.ids}
    return dict(zip(scores.ids, (list(row) for row in zip(*columns, strict=True)), strict=True))


def _numbers(column: Any) -> list[float | None]:
    """``_number`` of each of ``column``'s values, a column at a time (NumPy): most columns
    have no NaN, and 10,000 rows x 5 metrics one by one were ~0.05 s of a run's end."""
    import numpy as np

    floats = np.asarray(column, dtype=float)
    found: list[float | None] = floats.tolist()
    if not np.isfinite(floats).all():
        found = [v if v is not None and math.isfinite(v) else None for v in found]
    return found


def _records(
    reader: RowReader, where: Mapping[str, int], chunk: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows of ``chunk``'s examples, by example id, as Python objects."""
    present = [example_id for example_id in chunk if example_id in where]
    rows = reader.records([where[example_id] for example_id in present])
    return dict(zip(present, rows, strict=True))


def _entries(
    chunk: Sequence[str],
    per_run: Sequence[tuple[Mapping[str, Mapping[str, Any]], Mapping[str, list[float | None]]]],
    flips: Sequence[Flips],
    fields: Sequence[Sequence[str]],
) -> Iterator[dict[str, Any]]:
    """The page's entries of ``chunk``'s examples, from each run's rows and score values."""
    for example_id in chunk:
        example = _example(next(r[example_id] for r, _ in per_run if example_id in r))
        entry: dict[str, Any] = {
            "id": example_id,
            "input": example.input,
            "expected": list(example.expected),
        }
        if example.context is not None:
            entry["context"] = example.context
        if example.extra:  # the data's other columns, as evaluate's table has them
            entry["data"] = dict(example.extra)
        entry["runs"] = [
            _run_row(records.get(example_id), per_row.get(example_id), one)
            for (records, per_row), one in zip(per_run, fields, strict=True)
        ]
        moved = [
            [list(f.worse.get(example_id, ())), list(f.better.get(example_id, ()))] for f in flips
        ]
        if any(w or b for w, b in moved):
            entry["flips"] = moved
        yield entry


def _run_row(
    row: Mapping[str, Any] | None, values: list[float | None] | None, fields: Sequence[str]
) -> dict[str, Any] | None:
    """One run's side of a row: output or error, latency, tokens, scores, prompt fields."""
    if row is None:
        return None
    out: dict[str, Any] = {"output": row["output"]}
    if row["error"] is not None:
        out["error"] = row["error"]
    if row["latency_s"] is not None:
        out["latency"] = _number(row["latency_s"])
    if row["input_tokens"] is not None or row["output_tokens"] is not None:
        out["tokens"] = [row["input_tokens"], row["output_tokens"]]
    if row["cached"] is not None:
        out["cached"] = bool(row["cached"])
    out["values"] = values
    judged = _judged(row["scores"] or ())
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
    import orjson

    packed = gzip.compress(orjson.dumps(payload), compresslevel=_LEVEL, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def packed_rows(
    runs: Sequence[ReportRun], metrics: Sequence[str], flips: Sequence[Flips] = ()
) -> Markup:
    """``pack(rows_payload(runs, metrics, flips))``, the same text, made without holding
    the whole payload or its JSON: rows are serialized a chunk at a time and compressed in
    a thread while the next chunk is made (zlib lets go of the GIL). At 10,000 rows (22 MB
    of JSON) one after the other took 0.77-0.95 s of the path to a run's exit, this way
    0.61-0.77 s: the compression, the slower of the two, is what is left (issue 14).

    The text is markup (base64 holds no character HTML escapes): the page (``page``) puts
    its 10 MB (10,000 rows) in as it is, never scanned for such characters (~20 ms)."""
    import zlib
    from concurrent.futures import Future, ThreadPoolExecutor

    import orjson
    from markupsafe import Markup

    head, rows = _payload(runs, metrics, flips)
    # The same stream gzip.compress(..., mtime=0) writes: deflate's output does not depend
    # on how its input is cut (tests/compare/test_render.py checks it against pack).
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
    done: list[Future[bytes]] = []
    # One thread runs the compressions in the order they are submitted.
    with ThreadPoolExecutor(1, thread_name_prefix="harness-report") as pool:
        chunk = [orjson.dumps(head)[:-1], b',"rows":[']
        first = True
        for n, row in enumerate(rows, start=1):
            chunk.append(orjson.dumps(row) if first else b"," + orjson.dumps(row))
            first = False
            if n % _CHUNK_ROWS == 0:
                done.append(pool.submit(deflate.compress, b"".join(chunk)))
                chunk = []
        chunk.append(b"]}")
        done.append(pool.submit(deflate.compress, b"".join(chunk)))
        done.append(pool.submit(deflate.flush))
        packed = b"".join([f.result() for f in done])
        done.clear()  # the compressed pieces, as long as the whole (7.5 MB at 10,000 rows)
    encoded = base64.b64encode(packed)
    del packed  # before the text is made: the peak is the encoded bytes and the text
    return Markup(encoded, "ascii")


# Level 2: the report is built as a run logged to MLflow ends, on the path to its exit
# (issue 14). At 10,000 rows (21.7 MB of JSON): 7.50 MB in 0.21 s of CPU, where level 4
# took 0.32 s for 6.90 MB (level 6: 0.79 s, 6.57 MB; level 1: 0.20 s, 7.82 MB); level 4's
# compression, in its thread, was still running 0.09-0.18 s after the last row was made.
_LEVEL = 2
# What the page shows of a row's scores (``_judged``): its judges' samples, not the judges'
# raw answers, keys or cache flags, nor the other metrics' scores (their values come from
# the run's scores, ``_row_values``), which a stored run's rows are then read without.
_SCORE_FIELDS = ("metric", "sample", "value", "label", "rationale", "error", "source")
_CHUNK_ROWS = 200  # ~0.4 MB of JSON at PubMedQA's row size
