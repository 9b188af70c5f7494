"""Per-row MLflow 3 traces for a finished harness run.

Each row becomes one trace with a single root span (inputs: the row input and context,
outputs: the model output), the expected answer as an ``Expectation`` and every metric or
judge score as a ``Feedback`` on that span, linked to the MLflow run. This is the shape
``mlflow.genai.evaluate`` writes, so MLflow's evaluation views show per-row results.

Rows are first turned into plain ``RowTrace`` data (cheap: no MLflow objects). From there,
``traces_sql`` inserts them in bulk into a SQL store, and ``write_traces_via_store`` turns
them into MLflow entities and writes them through any store's public API.
MLflow is imported inside functions only: importing it costs about a second.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from harness.tracking.mlflow_names import PREVIEW_MAX_LENGTH, Tag

if TYPE_CHECKING:
    from mlflow.entities import Assessment, Span

    from harness.tracking.record import RunRecord

ROOT_SPAN_NAME = "evaluate_row"
SPAN_TYPE = "CHAIN"
EXPECTATION_NAME = "expected_response"  # the name MLflow's built-in scorers read
EXPECTED_JOIN = " || "  # several expected answers in one text, as the per-row table shows them
HARNESS_ROW_KEY = "harness.row_id"
# MLflow's store accepts at most this many trace ids per link_traces_to_run call.
MAX_LINKS_PER_CALL = 100
SOURCE_TYPES = ("LLM_JUDGE", "CODE", "HUMAN")
FEEDBACK_ERROR_CODE = "HARNESS_ERROR"


@dataclass(slots=True)
class AssessmentData:
    """One feedback (a metric or judge score) or expectation (the expected answer)."""

    kind: str  # "feedback" | "expectation"
    name: str
    value: Any
    source_type: str
    source_id: str
    created_ms: int
    rationale: str | None = None
    error: str | None = None


@dataclass(slots=True)
class RowTrace:
    """One row of a run as plain trace data: ids, root span content, assessments."""

    otel_trace_id: int
    otel_span_id: int
    row_id: str
    inputs: dict[str, str]
    outputs: str | None
    error: str | None
    start_ns: int
    end_ns: int
    assessments: list[AssessmentData] = field(default_factory=list)
    # JSON of inputs and outputs, made once: the span, metadata and previews all use it.
    _inputs_json: str | None = field(default=None, init=False, repr=False, compare=False)
    _outputs_json: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def inputs_json(self) -> str:
        if self._inputs_json is None:
            self._inputs_json = json.dumps(self.inputs, ensure_ascii=False)
        return self._inputs_json

    @property
    def outputs_json(self) -> str | None:
        if self._outputs_json is None and self.outputs is not None:
            self._outputs_json = json.dumps(self.outputs, ensure_ascii=False)
        return self._outputs_json

    @property
    def trace_id(self) -> str:
        return f"tr-{self.otel_trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self.otel_span_id:016x}"

    @property
    def request_time_ms(self) -> int:
        return self.start_ns // 1_000_000

    @property
    def duration_ms(self) -> int:
        return (self.end_ns - self.start_ns) // 1_000_000


def _text(value: Any) -> str | None:
    """A cell as text, with pandas' missing values and empty strings as None."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value)
    return text if text else None


def _expectation(value: Any, *, ids: bool) -> str | list[str] | None:
    """A row's expected answers (a list, or the per-row table's text joining them with
    `` || ``) as its expectation: a retriever's list of relevant document ids as that list
    (as mlflow.evaluate's table holds its targets), any other run's answers as the text."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value)):
        text = _text(value)
        return (text.split(EXPECTED_JOIN) if ids else text) if text else None
    answers = [str(answer) for answer in value]
    if not answers:
        return None
    return answers if ids else EXPECTED_JOIN.join(answers)


# Ids need to be unique, not secret: a generator seeded from os.urandom once, instead of
# one os.urandom call per id (secrets.randbits), which was ~5% of writing a trace.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)  # a forked child draws its own ids


def time_ordered_id(bits: int = 128) -> int:
    """A random id whose top 48 bits are the current Unix time in milliseconds (as UUIDv7).

    Ids made together sort together, so a batch of new traces lands in one corner of
    every index on trace and assessment ids instead of all over them: SQLite then touches
    a few hot pages per batch, and writing the traces takes half the time. 80 random bits
    per millisecond keep the ids unique.
    """
    random_bits = bits - 48
    return (time.time_ns() // 1_000_000 << random_bits) | _ids.getrandbits(random_bits) or 1


def _latency_ns(value: Any) -> int:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0
    return int(seconds * 1e9) if math.isfinite(seconds) and seconds > 0 else 0


def _feedback_value(value: Any) -> Any:
    """Feedback values as MLflow stores them: JSON scalars, with NaN as no value."""
    if hasattr(value, "item"):  # numpy scalars from a DataFrame
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_row_traces(record: RunRecord) -> list[RowTrace]:
    """One ``RowTrace`` per row of ``record.rows``, with its feedback and expectation."""
    if record.rows is None:
        return []
    return row_traces(record, record.rows.to_dict("records"), record.feedback)


def row_traces(
    record: RunRecord, rows: Iterable[Mapping[str, Any]], feedback: Iterable[Mapping[str, Any]]
) -> list[RowTrace]:
    """``build_row_traces`` for rows given as mappings (the per-row table's columns) and
    ``feedback`` items, with the run's times and dataset from ``record``: no DataFrame."""
    feedback_by_row: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in feedback:
        feedback_by_row[str(item["row_id"])].append(item)
    start_ns = int(record.started_at * 1e9)
    created_ms = int(record.finished_at * 1000) if record.finished_at else int(time.time() * 1000)
    dataset_source = f"dataset:{record.dataset_name}@{record.dataset_version}"
    retriever = bool(record.config.get("retriever"))  # harness.evaluate(model_type="retriever")
    traces: list[RowTrace] = []
    for row in rows:
        row_id = str(row.get("id"))
        inputs = {"input": _text(row.get("input")) or ""}
        if context := _text(row.get("context")):
            inputs["context"] = context
        assessments = []
        if expected := _expectation(row.get("expected"), ids=retriever):
            assessments.append(
                AssessmentData("expectation", EXPECTATION_NAME, expected, "HUMAN",
                               dataset_source, created_ms)
            )  # fmt: skip
        for item in feedback_by_row.get(row_id, ()):
            source_type = str(item.get("source") or "CODE").upper()
            assessments.append(
                AssessmentData(
                    kind="feedback",
                    name=str(item["name"]),
                    value=_feedback_value(item.get("value")),
                    source_type=source_type if source_type in SOURCE_TYPES else "CODE",
                    source_id=str(item.get("source_id") or item["name"]),
                    created_ms=created_ms,
                    rationale=_text(item.get("rationale")),
                    error=_text(item.get("error")),
                )
            )
        traces.append(
            RowTrace(
                otel_trace_id=time_ordered_id(),
                otel_span_id=_ids.getrandbits(64) or 1,
                row_id=row_id,
                inputs=inputs,
                outputs=_text(row.get("output")),
                error=_text(row.get("error")),
                start_ns=start_ns,
                end_ns=start_ns + _latency_ns(row.get("latency_s")),
                assessments=assessments,
            )
        )
    return traces


def span_attributes(row: RowTrace) -> dict[str, str]:
    """The root span's attributes, JSON-encoded as MLflow stores span attributes."""
    attributes = {
        Tag.SPAN_REQUEST_ID: f'"{row.trace_id}"',  # json.dumps of "tr-" and hex digits
        Tag.SPAN_TYPE: _SPAN_TYPE_JSON,
        Tag.SPAN_INPUTS: row.inputs_json,
    }
    # A row without output (it failed) has no outputs at all, as a span that never set them.
    if row.outputs_json is not None:
        attributes[Tag.SPAN_OUTPUTS] = row.outputs_json
    attributes[HARNESS_ROW_KEY] = encode_basestring_ascii(row.row_id)  # json.dumps of a str
    return attributes


_SPAN_TYPE_JSON = json.dumps(SPAN_TYPE)


def span_events(row: RowTrace) -> list[dict[str, Any]]:
    """A failed row carries its error as an OpenTelemetry ``exception`` event."""
    if not row.error:
        return []
    attributes = {"exception.type": "HarnessRowError", "exception.message": row.error}
    return [{"name": "exception", "time_unix_nano": row.end_ns, "attributes": attributes}]


def trace_metadata(
    row: RowTrace, *, mlflow_run_id: str, model_id: str | None = None
) -> dict[str, str]:
    """The request metadata of a row's trace; ``mlflow.sourceRun`` links it to the run.

    With ``model_id``, ``mlflow.modelId`` links it to a LoggedModel, as traces made under
    ``mlflow.set_active_model`` are (the model page's traces tab searches by it).
    """
    metadata = {
        Tag.SOURCE_RUN: mlflow_run_id,
        Tag.TRACE_SCHEMA_VERSION_KEY: Tag.TRACE_SCHEMA_VERSION,
        Tag.TRACE_INPUTS: _truncated(row.inputs_json),
        Tag.TRACE_OUTPUTS: _truncated(row.outputs_json),
    }
    if model_id:
        metadata[Tag.MODEL_ID] = model_id
    return metadata


def _truncated(value: str | None) -> str:
    """The cut MLflow's span processor makes for the trace inputs and outputs metadata."""
    if not value:
        return ""
    limit = Tag.MAX_CHARS_IN_TRACE_METADATA
    if len(value) <= limit:
        return value
    return value[: limit - len(Tag.TRUNCATION_SUFFIX)] + Tag.TRUNCATION_SUFFIX


def previews(row: RowTrace) -> tuple[str | None, str | None]:
    """Request and response previews, as the MLflow trace list shows them.

    MLflow's ``_get_truncated_preview`` shows the last chat message when the value holds
    chat messages; a row's inputs (``{"input": text, "context": text}``) and output (a JSON
    string) never do, so the preview is the JSON itself, cut to the OSS length. The tests
    compare this with MLflow's function.
    """
    return _preview(row.inputs_json), _preview(row.outputs_json)


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) <= PREVIEW_MAX_LENGTH:
        return text
    return text[: PREVIEW_MAX_LENGTH - 3] + "..."


def to_mlflow_span(row: RowTrace) -> Span:
    """The root span as an MLflow ``Span`` (for stores written through their API)."""
    from mlflow.entities.span import Span
    from mlflow.tracing.utils import build_otel_context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status, StatusCode

    events = [Event(e["name"], e["attributes"], e["time_unix_nano"]) for e in span_events(row)]
    return Span(
        ReadableSpan(
            name=ROOT_SPAN_NAME,
            context=build_otel_context(row.otel_trace_id, row.otel_span_id),
            parent=None,
            start_time=row.start_ns,
            end_time=row.end_ns,
            attributes=span_attributes(row),
            events=events,
            status=Status(StatusCode.ERROR, row.error) if row.error else Status(StatusCode.OK),
            # An empty resource, as MLflow's Span.from_dict: Resource.create() is slow.
            resource=Resource({}),
        )
    )


def to_mlflow_assessment(row: RowTrace, data: AssessmentData, *, mlflow_run_id: str) -> Assessment:
    """One assessment as an MLflow ``Feedback`` or ``Expectation`` on the row's root span."""
    from mlflow.entities import AssessmentError, AssessmentSource, Expectation, Feedback

    common: dict[str, Any] = {
        "name": data.name,
        "source": AssessmentSource(source_type=data.source_type, source_id=data.source_id),
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        # As mlflow.genai.evaluate does; MLflow also fills the assessment's run_id from it.
        "metadata": {Tag.ASSESSMENT_SOURCE_RUN_ID: mlflow_run_id},
        "create_time_ms": data.created_ms,
        "last_update_time_ms": data.created_ms,
    }
    if data.kind == "expectation":
        return Expectation(value=data.value, **common)
    error = (
        AssessmentError(error_code=FEEDBACK_ERROR_CODE, error_message=data.error)
        if data.error
        else None
    )
    return Feedback(value=data.value, rationale=data.rationale, error=error, **common)


def supports_trace_api(store: Any) -> bool:
    """Whether ``store`` implements span logging (MLflow's base store only raises)."""
    from mlflow.store.tracking.abstract_store import AbstractStore

    return type(store).log_spans is not AbstractStore.log_spans


def write_traces_via_store(
    store: Any,
    traces: list[RowTrace],
    *,
    experiment_id: str,
    mlflow_run_id: str,
    chunk_size: int = 1000,
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write traces through the store's public API: start_trace, log_spans, assessments, links.

    ``model_id`` links every trace to a LoggedModel; ``tags`` are set on every trace.

    Works with any store that implements the MLflow 3 trace API (SQL, MLflow server), at
    several milliseconds per trace and per assessment; SQL stores use ``traces_sql`` instead.
    """
    from mlflow.entities import TraceInfo, TraceLocation, TraceState

    for row in traces:
        request_preview, response_preview = previews(row)
        store.start_trace(
            TraceInfo(
                trace_id=row.trace_id,
                trace_location=TraceLocation.from_experiment_id(experiment_id),
                request_time=row.request_time_ms,
                execution_duration=row.duration_ms,
                state=TraceState.ERROR if row.error else TraceState.OK,
                request_preview=request_preview,
                response_preview=response_preview,
                client_request_id=row.row_id,
                trace_metadata=trace_metadata(row, mlflow_run_id=mlflow_run_id, model_id=model_id),
                tags={Tag.TRACE_NAME: ROOT_SPAN_NAME, **(tags or {})},
            )
        )
    for start in range(0, len(traces), chunk_size):
        chunk = traces[start : start + chunk_size]
        store.log_spans(experiment_id, [to_mlflow_span(row) for row in chunk])
    for row in traces:
        for data in row.assessments:
            store.create_assessment(to_mlflow_assessment(row, data, mlflow_run_id=mlflow_run_id))
    for start in range(0, len(traces), MAX_LINKS_PER_CALL):
        chunk = traces[start : start + MAX_LINKS_PER_CALL]
        store.link_traces_to_run([row.trace_id for row in chunk], mlflow_run_id)
