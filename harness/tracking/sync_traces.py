"""Copy one run's traces, with their spans and assessments, to the sync target.

:class:`TraceCopier` is the trace half of ``harness sync`` (see :mod:`harness.tracking.sync`
for the rest): it reads a local run's trace infos, plans what the target lacks, and copies it.

- A copied trace keeps its id and carries the tag ``harness.source_trace_id``; a copied
  assessment keeps its id and carries the metadata key ``harness.source_assessment_id``.
- Trace infos take one request per trace (``StartTraceV3``, with the assessments inside):
  MLflow has no call that creates several traces, so this dominates a large sync. They go
  ``workers`` at a time.
- Spans go in bulk (OTLP, many traces per request) to MLflow >= 3.4 servers, and as each
  trace's ``traces.json`` artifact to Databricks or an older server.
- An existing copy gets its missing assessments and tags, and its spans if an earlier copy
  stopped before them. A copy whose local trace is gone (``harness run --resume`` replaces
  the trace of a row it runs again) is deleted, so the copy holds one trace per row as the
  local run does; nothing else is deleted on the target.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Run, TraceInfo

    from harness.tracking.sync_links import LinkCopier

__all__ = ["META_SOURCE_ASSESSMENT", "TAG_SOURCE_TRACE", "TraceCopier", "TracePlan"]

TAG_SOURCE_TRACE = "harness.source_trace_id"
META_SOURCE_ASSESSMENT = "harness.source_assessment_id"

MAX_LINK_TRACES = 100  # link_traces_to_run
MAX_DELETE_TRACES = 100  # delete_traces
SEARCH_TRACES_PAGE = 500  # the largest max_results SearchTracesV3 accepts
TRACE_CHUNK = 200  # traces read, created and span-logged together
SPANS_REQUEST_BYTES = 4_000_000  # rough cap on one OTLP request

_SPANS_LOCATION = "mlflow.trace.spansLocation"
_IN_TRACKING_STORE = "TRACKING_STORE"
# Trace tags that say where one store keeps a trace, not what the trace is.
_STORE_TRACE_TAGS = ("mlflow.artifactLocation", _SPANS_LOCATION, TAG_SOURCE_TRACE)
_SOURCE_RUN_META = "mlflow.sourceRun"
_ASSESSMENT_RUN_META = "mlflow.assessment.sourceRunId"

Write = Callable[..., Any]  # write(fn, *args, **kwargs): every call that changes the target


@dataclass
class TracePlan:
    """What one local trace needs on the target."""

    local: TraceInfo
    target: TraceInfo | None  # None: create it
    tags: dict[str, str] = field(default_factory=dict)
    assessments: list[Any] = field(default_factory=list)
    spans: bool = True


class TraceCopier:
    """Reads, plans and copies the traces of local runs to one target.

    ``source`` and ``target_traces`` are ``TracingClient``s, ``target`` an ``MlflowClient``;
    ``write(fn, *args)`` calls ``fn`` and must be the only way anything changes on the
    target. ``id_map`` (local run id -> target run id) is the caller's and grows as runs are
    created, so a trace or an assessment that names another run points at that run's copy.
    ``bulk_spans`` sends spans over OTLP (an MLflow server) rather than as an artifact per
    trace (Databricks); an MLflow server that refuses OTLP turns it off for the rest.
    ``say`` gets one progress line per chunk of traces copied. ``links`` (the caller's)
    names the copies of the prompt versions and models a trace's tags and metadata name.
    """

    def __init__(
        self,
        source: Any,
        target: Any,
        target_traces: Any,
        write: Write,
        *,
        id_map: dict[str, str],
        say: Callable[[str], None],
        links: LinkCopier | None = None,
        bulk_spans: bool = True,
        workers: int = 4,
    ) -> None:
        self.src, self.dst, self.dst_traces = source, target, target_traces
        self.write, self.id_map, self.say = write, id_map, say
        self.links = links
        self.bulk_spans, self.workers = bulk_spans, workers

    def read(self, experiment_id: str, run_id: str) -> list[TraceInfo]:
        """The infos (with assessments, without spans) of a local run's traces."""
        return search_traces(self.src, experiment_id, run_id)

    def plan(
        self, traces: list[TraceInfo], target_run: Run | None
    ) -> tuple[list[TracePlan], list[str]]:
        """What the target lacks of ``traces``: one plan per trace to create or complete,
        and the ids of the target's copies of local traces that are gone (to delete)."""
        existing: dict[str, TraceInfo] = {}
        if target_run is not None:
            where = target_run.info
            for found in search_traces(self.dst_traces, where.experiment_id, where.run_id):
                existing[found.tags.get(TAG_SOURCE_TRACE, found.trace_id)] = found
        plans = []
        for info in traces:
            have = existing.get(info.trace_id)
            if have is None:
                plans.append(TracePlan(info, None, assessments=list(info.assessments)))
                continue
            have_ids = {a.assessment_id for a in have.assessments}
            have_ids |= {(a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in have.assessments}
            plan = TracePlan(info, have)
            tags = self._tags(info)
            plan.tags = {k: v for k, v in tags.items() if have.tags.get(k) != v}
            plan.assessments = [a for a in info.assessments if a.assessment_id not in have_ids]
            if self.bulk_spans:  # spans sent: the server marks where it keeps them
                plan.spans = have.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE
            else:  # spans uploaded: we set our tag after the upload
                plan.spans = TAG_SOURCE_TRACE not in have.tags
            if plan.tags or plan.assessments or plan.spans:
                plans.append(plan)
        local_ids = {info.trace_id for info in traces}
        # Only our copies (with the source tag): a trace added on the target is left alone.
        gone = [
            found.trace_id
            for source_id, found in existing.items()
            if source_id not in local_ids and TAG_SOURCE_TRACE in found.tags
        ]
        return plans, sorted(gone)

    def delete(self, experiment_id: str, trace_ids: list[str]) -> None:
        """Delete the target's copies of local traces that are gone."""
        for ids in chunks(trace_ids, MAX_DELETE_TRACES):
            self.write(self.dst.delete_traces, experiment_id, trace_ids=list(ids))

    def copy(
        self, plans: list[TracePlan], local_run_id: str, run_id: str, experiment_id: str
    ) -> None:
        """Carry out ``plans`` for the local run ``local_run_id`` copied as ``run_id``."""
        run_map = {local_run_id: run_id}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="harness-sync") as pool:
            for done, chunk in enumerate(chunks(plans, TRACE_CHUNK)):
                spans = self._read_spans([p.local for p in chunk if p.spans])
                linked = list(
                    pool.map(lambda p: self._copy_trace_info(p, run_map, experiment_id), chunk)
                )
                with_spans = [p for p in chunk if p.spans and p.local.trace_id in spans]
                if self.bulk_spans:
                    try:
                        batch = [s for p in with_spans for s in spans[p.local.trace_id].spans]
                        self._log_spans(experiment_id, batch)
                    except Exception as exc:  # a server before 3.4, or on a file store
                        if not _no_bulk_spans(exc):
                            raise
                        self.bulk_spans = False
                if not self.bulk_spans:
                    pairs = [(p, spans[p.local.trace_id]) for p in with_spans]
                    list(pool.map(lambda pair: self._upload_spans(*pair), pairs))
                for ids in chunks([tid for tid in linked if tid], MAX_LINK_TRACES):
                    self.write(self.dst.link_traces_to_run, list(ids), run_id)
                self.say(f"  traces {min((done + 1) * TRACE_CHUNK, len(plans)):,}/{len(plans):,}")

    def _read_spans(self, infos: list[TraceInfo]) -> dict[str, Any]:
        """Trace id -> TraceData. Spans in the local database come in one query."""
        in_store = [t.trace_id for t in infos if t.tags.get(_SPANS_LOCATION) == _IN_TRACKING_STORE]
        elsewhere = [t.trace_id for t in infos if t.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE]
        found = self.src.store.batch_get_traces(in_store) if in_store else []
        if elsewhere:  # artifacts or an archive: the client knows where to look
            found += self.src.batch_get_traces(elsewhere)
        return {t.info.trace_id: t.data for t in found}

    def _copy_trace_info(
        self, plan: TracePlan, run_map: dict[str, str], experiment_id: str
    ) -> str | None:
        """Create or complete one trace's info; return its id if it must be linked to the run."""
        from mlflow.entities import TraceLocation

        info, linked = plan.local, None
        run_map = {**self.id_map, **run_map}
        assessments = [_assessment(a, run_map) for a in plan.assessments]
        if plan.target is None:
            metadata = dict(info.trace_metadata)
            if self.links is not None:  # mlflow.modelId: the model's copy
                metadata = self.links.trace_metadata(metadata)
            source_run = metadata.pop(_SOURCE_RUN_META, None)
            if source_run in run_map:
                metadata[_SOURCE_RUN_META] = run_map[source_run]
            else:  # linked to the run rather than logged in it: link the copy too
                linked = info.trace_id
            tags = self._tags(info)
            if self.bulk_spans:  # else set once the spans are uploaded: the "done" mark
                tags[TAG_SOURCE_TRACE] = info.trace_id
            twin = copy.copy(info)  # a shallow copy: only whole fields are replaced below
            twin.trace_location = TraceLocation.from_experiment_id(experiment_id)
            twin.trace_metadata, twin.tags, twin.assessments = metadata, tags, assessments
            created = self.write(self.dst_traces.store.start_trace, twin)
            plan.target = created
            # A server that ignored the assessments sent with the trace gets them one by one.
            kept = {(a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in created.assessments}
            assessments = [a for a in assessments if a.metadata[META_SOURCE_ASSESSMENT] not in kept]
        for key, value in plan.tags.items():  # empty for a trace created just now
            self.write(self.dst.set_trace_tag, plan.target.trace_id, key, value)
        for assessment in assessments:
            assessment.trace_id = plan.target.trace_id
            self.write(self.dst_traces.store.create_assessment, assessment)
        return linked

    def _tags(self, info: TraceInfo) -> dict[str, str]:
        """The trace's own tags as its copy holds them (mlflow.linkedPrompts renamed)."""
        tags = trace_tags(info)
        return self.links.trace_tags(tags) if self.links is not None else tags

    def _log_spans(self, experiment_id: str, spans: Sequence[Any]) -> None:
        batch: list[Any] = []
        size = 0
        for span in spans:
            span_size = 200 + sum(len(str(v)) for v in span._span.attributes.values())
            if batch and size + span_size > SPANS_REQUEST_BYTES:
                self.write(self.dst_traces.store.log_spans, experiment_id, batch)
                batch, size = [], 0
            batch.append(span)
            size += span_size
        if batch:
            self.write(self.dst_traces.store.log_spans, experiment_id, batch)

    def _upload_spans(self, plan: TracePlan, data: Any) -> None:
        target = plan.target
        assert target is not None
        if target.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE:
            self.write(_upload_trace_data, self.dst_traces.tracking_uri, target, data)
        self.write(self.dst.set_trace_tag, target.trace_id, TAG_SOURCE_TRACE, plan.local.trace_id)


def _upload_trace_data(tracking_uri: str, info: TraceInfo, data: Any) -> None:
    """``TracingClient._upload_trace_data``, with the target's tracking URI: MLflow's own
    resolves an ``mlflow-artifacts:`` location with the process's global tracking URI, so
    a server with proxied artifacts failed ("the tracking URI must be a valid http or
    https URI") unless it happened to be the global one."""
    import json

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracing.utils import TraceJSONEncoder
    from mlflow.tracing.utils.artifact_utils import get_artifact_uri_for_trace
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

    location = get_artifact_uri_for_trace(info)
    uri = add_databricks_profile_info_to_artifact_uri(location, tracking_uri)
    repository = get_artifact_repository(uri, tracking_uri=tracking_uri)
    repository.upload_trace_data(
        json.dumps(data.to_dict(), cls=TraceJSONEncoder, ensure_ascii=False)
    )


def traces_fingerprint(traces: list[TraceInfo]) -> list[Any]:
    """What of a run's traces a sync copies, as a sortable value to hash."""
    return sorted(
        (
            t.trace_id,
            sorted(trace_tags(t).items()),
            sorted((a.assessment_id, a.last_update_time_ms, a.valid) for a in t.assessments),
        )
        for t in traces
    )


def trace_tags(info: TraceInfo) -> dict[str, str]:
    """A trace's own tags, without those that say where a store keeps it."""
    return {k: v for k, v in info.tags.items() if k not in _STORE_TRACE_TAGS}


def _assessment(assessment: Any, run_map: dict[str, str]) -> Any:
    copied = copy.copy(assessment)  # not via proto: Expectation.from_proto drops `valid`
    metadata = dict(assessment.metadata or {})
    metadata[META_SOURCE_ASSESSMENT] = assessment.assessment_id
    if metadata.get(_ASSESSMENT_RUN_META) in run_map:
        metadata[_ASSESSMENT_RUN_META] = run_map[metadata[_ASSESSMENT_RUN_META]]
    copied.metadata = metadata
    copied.run_id = metadata.get(_ASSESSMENT_RUN_META)
    return copied


def search_traces(tracing: Any, experiment_id: str, run_id: str) -> list[TraceInfo]:
    """Every trace of a run: logged in it (``mlflow.sourceRun``) or linked to it."""
    where = f"attribute.run_id = '{run_id}'"
    search = tracing._search_traces  # TracingClient's, without loading spans
    return list(
        pages(
            lambda token: search(
                locations=[experiment_id],
                filter_string=where,
                max_results=SEARCH_TRACES_PAGE,
                page_token=token,
            )
        )
    )


def pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every item of a paged MLflow listing (a ``PagedList``, or a (items, token) pair)."""
    token = None
    while True:
        page = fetch(token)
        items, token = page if isinstance(page, tuple) else (page, page.token)
        yield from items
        if not token:
            return


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _no_bulk_spans(exc: Exception) -> bool:
    """Whether a failed OTLP request means the server cannot take spans that way at all."""
    return isinstance(exc, NotImplementedError) or "span logging is not supported" in str(exc)
