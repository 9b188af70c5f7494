"""Per-row MLflow 3 traces for a finished harness run.

Each row becomes one trace with a single root span (inputs: the row input and context,
outputs: the model output), the expected answer as an ``Expectation`` and every metric or
judge score as a ``Feedback`` on that span, linked to the MLflow run. This is the shape
``mlflow.genai.evaluate`` writes, so MLflow's evaluation views show per-row results.

Traces are built here as MLflow entities; ``traces_sql`` writes them in bulk to a SQL store
and ``write_traces_via_store`` writes them one call at a time through any store's API.
MLflow is imported inside functions only: importing it costs about a second.
"""

from __future__ import annotations

import json
import math
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Assessment, Span

    from harness.tracking.mlflow_log import RunRecord

ROOT_SPAN_NAME = "evaluate_row"
EXPECTATION_NAME = "expected_response"  # the name MLflow's built-in scorers read
HARNESS_RUN_KEY = "harness.run_id"
HARNESS_ROW_KEY = "harness.row_id"
# MLflow's store accepts at most this many trace ids per link_traces_to_run call.
MAX_LINKS_PER_CALL = 100
SOURCE_TYPES = ("LLM_JUDGE", "CODE", "HUMAN")


@dataclass
class RowTrace:
    """One row of a run as an MLflow trace: its root span and its assessments."""

    trace_id: str
    row_id: str
    span: Span
    inputs: dict[str, str]
    outputs: str | None
    error: str | None
    start_ns: int
    end_ns: int
    assessments: list[Assessment] = field(default_factory=list)

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


def _latency_ns(value: Any) -> int:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0
    return int(seconds * 1e9) if math.isfinite(seconds) and seconds > 0 else 0


def _feedback_value(value: Any) -> Any:
    """Feedback values as MLflow stores them: JSON scalars, with NaN as no value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars from a DataFrame
        return value.item()
    return value


def build_row_traces(record: RunRecord, *, mlflow_run_id: str) -> list[RowTrace]:
    """Build one ``RowTrace`` per row of ``record.rows``, with its feedback and expectation."""
    from mlflow.entities import AssessmentSource, Expectation, Feedback
    from mlflow.entities.span import Span
    from mlflow.tracing.constant import AssessmentMetadataKey, SpanAttributeKey
    from mlflow.tracing.utils import build_otel_context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status, StatusCode

    feedback_by_row: dict[str, list[dict]] = defaultdict(list)
    for item in record.feedback:
        feedback_by_row[str(item["row_id"])].append(item)

    # An empty resource, as MLflow's own Span.from_dict does: Resource.create() is slow.
    resource = Resource({})
    start_ns = int(record.started_at * 1e9)
    expectation_source = AssessmentSource(
        source_type="HUMAN",
        source_id=f"dataset:{record.dataset_name}@{record.dataset_version}",
    )
    assessment_metadata = {AssessmentMetadataKey.SOURCE_RUN_ID: mlflow_run_id}
    traces: list[RowTrace] = []
    for row in record.rows.to_dict("records"):
        row_id = str(row.get("id"))
        otel_trace_id = secrets.randbits(128)
        span_id = secrets.randbits(64) or 1
        trace_id = f"tr-{otel_trace_id:032x}"
        inputs = {"input": _text(row.get("input")) or ""}
        if context := _text(row.get("context")):
            inputs["context"] = context
        outputs = _text(row.get("output"))
        error = _text(row.get("error"))
        end_ns = start_ns + _latency_ns(row.get("latency_s"))
        attributes = {
            SpanAttributeKey.REQUEST_ID: json.dumps(trace_id),
            SpanAttributeKey.SPAN_TYPE: json.dumps("CHAIN"),
            SpanAttributeKey.INPUTS: json.dumps(inputs, ensure_ascii=False),
            SpanAttributeKey.OUTPUTS: json.dumps(outputs, ensure_ascii=False),
            HARNESS_ROW_KEY: json.dumps(row_id),
        }
        events = []
        if error:
            events.append(
                Event(
                    "exception",
                    {"exception.type": "HarnessRowError", "exception.message": error},
                    timestamp=end_ns,
                )
            )
        otel_span = ReadableSpan(
            name=ROOT_SPAN_NAME,
            context=build_otel_context(otel_trace_id, span_id),
            parent=None,
            start_time=start_ns,
            end_time=end_ns,
            attributes=attributes,
            events=events,
            status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK),
            resource=resource,
        )
        span = Span(otel_span)
        assessments: list[Assessment] = []
        if expected := _text(row.get("expected")):
            assessments.append(
                Expectation(
                    name=EXPECTATION_NAME,
                    value=expected,
                    source=expectation_source,
                    trace_id=trace_id,
                    span_id=span.span_id,
                    metadata=dict(assessment_metadata),
                )
            )
        for item in feedback_by_row.get(row_id, ()):
            source_type = str(item.get("source", "CODE")).upper()
            assessments.append(
                Feedback(
                    name=str(item["name"]),
                    value=_feedback_value(item.get("value")),
                    rationale=_text(item.get("rationale")),
                    error=_text(item.get("error")),
                    source=AssessmentSource(
                        source_type=source_type if source_type in SOURCE_TYPES else "CODE",
                        source_id=str(item.get("source_id") or item["name"]),
                    ),
                    trace_id=trace_id,
                    span_id=span.span_id,
                    metadata=dict(assessment_metadata),
                )
            )
        traces.append(
            RowTrace(
                trace_id=trace_id,
                row_id=row_id,
                span=span,
                inputs=inputs,
                outputs=outputs,
                error=error,
                start_ns=start_ns,
                end_ns=end_ns,
                assessments=assessments,
            )
        )
    return traces


def trace_metadata(row: RowTrace, *, mlflow_run_id: str, harness_run_id: str) -> dict[str, str]:
    """The request metadata of a row's trace; ``mlflow.sourceRun`` links it to the run."""
    from mlflow.tracing.constant import (
        MAX_CHARS_IN_TRACE_INFO_METADATA,
        TRACE_SCHEMA_VERSION,
        TRACE_SCHEMA_VERSION_KEY,
        TRUNCATION_SUFFIX,
        TraceMetadataKey,
    )

    def truncated(value: str) -> str:
        # The same cut MLflow's span processor makes for these two keys.
        if len(value) <= MAX_CHARS_IN_TRACE_INFO_METADATA:
            return value
        return value[: MAX_CHARS_IN_TRACE_INFO_METADATA - len(TRUNCATION_SUFFIX)] + TRUNCATION_SUFFIX

    return {
        TraceMetadataKey.SOURCE_RUN: mlflow_run_id,
        TRACE_SCHEMA_VERSION_KEY: str(TRACE_SCHEMA_VERSION),
        TraceMetadataKey.INPUTS: truncated(json.dumps(row.inputs, ensure_ascii=False)),
        TraceMetadataKey.OUTPUTS: truncated(json.dumps(row.outputs, ensure_ascii=False)),
        HARNESS_RUN_KEY: harness_run_id,
        HARNESS_ROW_KEY: row.row_id,
    }


def previews(row: RowTrace) -> tuple[str | None, str | None]:
    """Request and response previews, as the MLflow trace list shows them."""
    from mlflow.tracing.utils.truncation import _get_truncated_preview

    request = _get_truncated_preview(json.dumps(row.inputs, ensure_ascii=False), role="user")
    response = (
        None
        if row.outputs is None
        else _get_truncated_preview(json.dumps(row.outputs, ensure_ascii=False), role="assistant")
    )
    return request, response


def write_traces_via_store(
    store: Any,
    traces: list[RowTrace],
    *,
    experiment_id: str,
    mlflow_run_id: str,
    harness_run_id: str,
    chunk_size: int = 1000,
) -> None:
    """Write traces through the store's public API: start_trace, log_spans, assessments, links.

    Works with any store that implements the MLflow 3 trace API (SQL, MLflow server), at a
    few milliseconds per trace and per assessment; SQL stores use ``traces_sql`` instead.
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
                trace_metadata=trace_metadata(
                    row, mlflow_run_id=mlflow_run_id, harness_run_id=harness_run_id
                ),
                tags={},
            )
        )
    for start in range(0, len(traces), chunk_size):
        store.log_spans(experiment_id, [row.span for row in traces[start : start + chunk_size]])
    for row in traces:
        for assessment in row.assessments:
            store.create_assessment(assessment)
    for start in range(0, len(traces), MAX_LINKS_PER_CALL):
        chunk = traces[start : start + MAX_LINKS_PER_CALL]
        store.link_traces_to_run([row.trace_id for row in chunk], mlflow_run_id)
