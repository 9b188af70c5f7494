"""Copy local MLflow experiments and runs to another tracking server (``harness sync``).

Copied per local run: params, every metric value with its step and timestamp, tags,
artifacts, dataset inputs, start/end time and status, and the run's traces (spans, tags,
metadata) with their assessments (feedback and expectations).

Finding a copy again: a target run carries the tag ``harness.source_run_id`` (set when it
is created, so even a run cut off just after creation is found), a copied trace the tag
``harness.source_trace_id``, a copied assessment the metadata key
``harness.source_assessment_id``; trace and assessment ids are kept. A second sync finds
these instead of creating anything.

Noticing a change: the last write to a target run is its tag ``harness.sync_fingerprint``,
a short hash per section of the local run (info, params, tags, metrics, inputs, artifacts,
traces) and the time the run was read. Equal hashes: skip, with no further reads. No tag
(an interrupted sync) or other hashes: the changed sections are compared with the target
and what is missing there is copied, so a killed sync resumes and a run changed locally
is updated in place, never duplicated. In an update:

- params are immutable in MLflow: missing ones are logged, one whose value differs keeps
  the target's value with a warning in the report (values are cut to 6000 characters);
- tags missing or different are set; metric values (step, timestamp, value) missing from
  the target history are logged; artifacts missing there, of another size, or modified
  locally since the last sync read the run (rsync's size + mtime rule) are uploaded;
- missing traces are created; existing ones get their missing assessments and tags, and
  their spans if the earlier copy stopped before them;
- nothing is deleted on the target, and a copy deleted there is left alone (``skip``).

Requests respect the REST limits (``MlflowClient.log_batch`` splits by 1000 metrics,
100 params, 100 tags).
Spans go in bulk (OTLP, many traces per request) to MLflow >= 3.4 servers, and as each
trace's ``traces.json`` artifact to Databricks. Trace infos take one request per trace
(``StartTraceV3``, with the assessments): MLflow has no call that creates several traces,
so this dominates the time of a large sync.

Testing hook: with ``HARNESS_SYNC_TEST_KILL_AFTER_WRITES=N`` set, the process SIGKILLs
itself just before its (N+1)-th write to the target.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

from harness.errors import ConfigError, HarnessError, TrackingError
from harness.tracking.databricks_auth import databricks_target, redact

if TYPE_CHECKING:
    from mlflow.entities import Run, TraceInfo

__all__ = ["RunSync", "SyncPlan", "SyncReport", "SyncTarget", "databricks_target", "sync"]

TAG_SOURCE_RUN = "harness.source_run_id"
TAG_SOURCE_STORE = "harness.source_store"
TAG_FINGERPRINT = "harness.sync_fingerprint"
TAG_SOURCE_TRACE = "harness.source_trace_id"
META_SOURCE_ASSESSMENT = "harness.source_assessment_id"
FINGERPRINT_VERSION = 1

MAX_PARAM_VALUE = 6000  # MLflow's limit
MAX_LINK_TRACES = 100  # link_traces_to_run
SEARCH_TRACES_PAGE = 500  # the largest max_results SearchTracesV3 accepts
TRACE_CHUNK = 200  # traces read, created and span-logged together
SPANS_REQUEST_BYTES = 4_000_000  # rough cap on one OTLP request
WORKERS = 4  # concurrent requests to the target
KILL_AFTER_ENV = "HARNESS_SYNC_TEST_KILL_AFTER_WRITES"

_SPANS_LOCATION = "mlflow.trace.spansLocation"
# Trace tags that say where one store keeps a trace, not what the trace is.
_STORE_TRACE_TAGS = ("mlflow.artifactLocation", _SPANS_LOCATION, TAG_SOURCE_TRACE)
_RUN_SYNC_TAGS = (TAG_SOURCE_RUN, TAG_SOURCE_STORE, TAG_FINGERPRINT)
_IN_TRACKING_STORE = "TRACKING_STORE"
_SOURCE_RUN_META = "mlflow.sourceRun"
_ASSESSMENT_RUN_META = "mlflow.assessment.sourceRunId"
_SECTIONS = ("info", "params", "tags", "metrics", "inputs", "artifacts", "traces")
_COUNTS = ("params", "metrics", "tags", "inputs", "artifacts", "traces", "assessments")
_ACTIONS = ("create", "update", "skip")


@dataclass
class SyncTarget:
    """Where to copy: a tracking URI and how local experiment names map to target names."""

    tracking_uri: str
    experiment_path: Callable[[str], str] | None = None  # local name -> target name
    prepare_experiment: Callable[[str], None] | None = None  # called before creating one
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from messages
    label: str | None = None  # how messages name the target; default: its URI


@dataclass
class RunSync:
    """What sync did (or, in a dry run, would do) for one local run."""

    run_id: str
    experiment: str
    target_experiment: str
    action: str  # "create" | "update" | "skip"
    run_name: str = ""
    target_run_id: str | None = None
    params: int = 0
    metrics: int = 0  # metric values: each step of a history counts
    tags: int = 0
    inputs: int = 0
    artifacts: int = 0
    traces: int = 0
    assessments: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    """The result of :func:`sync`; with ``dry_run`` it is the plan (nothing was written)."""

    target: str
    dry_run: bool
    runs: list[RunSync] = field(default_factory=list)
    experiments_created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def totals(self) -> dict[str, int]:
        totals = {f"runs_{a}": sum(r.action == a for r in self.runs) for a in _ACTIONS}
        totals.update({k: sum(getattr(r, k) for r in self.runs) for k in _COUNTS})
        return totals

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``harness sync --json``)."""
        data = asdict(self)
        data.update(totals=self.totals, seconds=round(self.seconds, 3))
        return data


SyncPlan = SyncReport  # a dry run's report is the plan


def sync(
    source_tracking_uri: str,
    target: SyncTarget,
    *,
    experiments: list[str] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Copy the local experiments (all, or those named) and their runs to ``target``.

    Idempotent and incremental (see the module docstring). ``progress`` receives one line
    per run. Raises ``TrackingError`` with a one-line message when the target cannot be
    reached, refuses the credentials or fails, ``ConfigError`` for an unknown experiment.
    """
    started = time.monotonic()
    try:
        syncer = _Syncer(source_tracking_uri, target, dry_run, progress or (lambda _m: None))
        syncer.preflight()
        for experiment in syncer.local_experiments(experiments):
            syncer.sync_experiment(experiment)
    except HarnessError as exc:
        exc.message = redact(exc.message, target.secrets)
        raise
    except Exception as exc:  # MLflow, HTTP and OS errors: one line, no secret
        shown = target.label or _display_uri(target.tracking_uri)
        reason = redact(_first_line(exc), target.secrets)
        raise TrackingError(f"sync to {shown} failed: {reason}") from exc
    syncer.report.seconds = time.monotonic() - started
    return syncer.report


# --- what a local run holds -------------------------------------------------------------


@dataclass
class _Artifact:
    path: str  # relative, "/"-separated
    size: int | None
    mtime_ns: int | None  # None when the source is not a local directory
    local_file: Path | None


@dataclass
class _LocalRun:
    run: Run
    read_at_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[Any]]  # key -> full history
    inputs: list[Any]
    artifacts: list[_Artifact]
    traces: list[TraceInfo]

    def fingerprint(self) -> dict[str, str]:
        info = self.run.info
        traces = [
            (
                t.trace_id,
                sorted(_trace_tags(t).items()),
                sorted((a.assessment_id, a.last_update_time_ms, a.valid) for a in t.assessments),
            )
            for t in self.traces
        ]
        sections: dict[str, Any] = {
            "info": [info.run_name, info.start_time, info.end_time, info.status],
            "params": sorted(self.params.items()),
            "tags": sorted(self.tags.items()),
            "metrics": sorted((k, sorted(map(_metric_key, h))) for k, h in self.metrics.items()),
            "inputs": sorted(_input_key(i) for i in self.inputs),
            "artifacts": sorted((a.path, a.size, a.mtime_ns) for a in self.artifacts),
            "traces": sorted(traces),
        }
        return {name: _digest(sections[name]) for name in _SECTIONS}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _metric_key(metric: Any) -> tuple[int, int, str]:
    return (int(metric.step), int(metric.timestamp), repr(float(metric.value)))


def _input_key(dataset_input: Any) -> tuple[str, str, str]:
    context = json.dumps(sorted((t.key, t.value) for t in dataset_input.tags))
    return (dataset_input.dataset.name, dataset_input.dataset.digest, context)


def _trace_tags(info: TraceInfo) -> dict[str, str]:
    return {k: v for k, v in info.tags.items() if k not in _STORE_TRACE_TAGS}


def _local_dir(uri: str) -> Path | None:
    """The directory behind a local artifact URI, or None for a remote one."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(uri))
    return Path(uri) if len(scheme) <= 1 else None  # a path, or a Windows drive letter


@dataclass
class _TracePlan:
    local: TraceInfo
    target: TraceInfo | None  # None: create it
    tags: dict[str, str] = field(default_factory=dict)
    assessments: list[Any] = field(default_factory=list)
    spans: bool = True


@dataclass
class _RunPlan:
    params: list[Any] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    artifacts: list[_Artifact] = field(default_factory=list)
    traces: list[_TracePlan] = field(default_factory=list)
    terminate: bool = False


# --- the sync ---------------------------------------------------------------------------


class _Syncer:
    def __init__(
        self, source_uri: str, target: SyncTarget, dry_run: bool, say: Callable[[str], None]
    ) -> None:
        from mlflow import MlflowClient
        from mlflow.tracing.client import TracingClient
        from mlflow.utils.uri import is_databricks_uri

        self.src, self.dst = MlflowClient(source_uri), MlflowClient(target.tracking_uri)
        self.src_traces = TracingClient(source_uri)
        self.dst_traces = TracingClient(target.tracking_uri)
        self.target, self.dry_run, self.say = target, dry_run, say
        self.shown = target.label or f"the tracking server {_display_uri(target.tracking_uri)}"
        self.source_id = hashlib.sha256(_display_uri(source_uri).encode()).hexdigest()[:16]
        self.report = SyncReport(target=_display_uri(target.tracking_uri), dry_run=dry_run)
        self.id_map: dict[str, str] = {}  # local run id -> target run id
        self.is_databricks = is_databricks_uri(target.tracking_uri)
        # Databricks keeps spans as an artifact per trace; MLflow servers take OTLP in bulk.
        self.bulk_spans = not self.is_databricks
        self._writes = 0
        self._kill_after = int(os.environ.get(KILL_AFTER_ENV) or 0)
        self._lock = threading.Lock()

    def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Every write to the target goes through here (the resume tests count them)."""
        if self._kill_after:
            with self._lock:
                self._writes += 1
                if self._writes > self._kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)

    def preflight(self) -> None:
        """Fail fast, in one line, when the target is unreachable or refuses us."""
        from mlflow.utils.rest_utils import http_request

        remote = urlparse(self.target.tracking_uri).scheme in ("http", "https")
        if not (remote or self.is_databricks):
            return  # a local store: nothing to reach
        try:
            creds = self.dst._tracking_client.store.get_host_creds()
            probe = {"max_results": 1}  # the cheapest authenticated call, without retries
            response = http_request(
                creds,
                "/api/2.0/mlflow/experiments/search",
                "GET",
                params=probe,
                max_retries=0,
                timeout=15,
                raise_on_status=False,
                retry_timeout_seconds=1,
            )
        except Exception as exc:  # noqa: BLE001 - connection errors of every kind
            reason = redact(_connection_reason(exc), self.target.secrets)
            raise TrackingError(f"cannot reach {self.shown}: {reason}") from None
        status = response.status_code
        if status in (401, 403):
            raise TrackingError(
                f"{self.shown} refused the credentials (HTTP {status}); check the token or profile"
            )
        if status >= 400:
            raise TrackingError(
                f"{self.shown} answered HTTP {status} to a test request; is it an MLflow server?"
            )

    def local_experiments(self, names: list[str] | None) -> list[Any]:
        from mlflow.entities import ViewType

        def fetch(token: str | None) -> Any:
            return self.src.search_experiments(ViewType.ACTIVE_ONLY, 1000, page_token=token)

        found = list(_pages(fetch))
        for name in names or ():
            if name not in {e.name for e in found}:
                raise ConfigError(f"no local experiment named '{name}'")
        found = [e for e in found if names is None or e.name in names]
        return sorted(found, key=lambda e: (e.creation_time or 0, e.name))

    def sync_experiment(self, experiment: Any) -> None:
        from mlflow.entities import ViewType

        runs = _search_runs(self.src, experiment.experiment_id, ViewType.ACTIVE_ONLY)
        if not runs:
            return
        mapper = self.target.experiment_path
        name = mapper(experiment.name) if mapper else experiment.name
        existing = self.dst.get_experiment_by_name(name)
        if existing is not None and existing.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment '{name}' is deleted on {self.shown}: restore it, "
                "or sync into another experiment"
            )
        copies: dict[str, Run] = {}
        for run in _search_runs(self.dst, existing.experiment_id, ViewType.ALL) if existing else []:
            source_id = run.data.tags.get(TAG_SOURCE_RUN)
            # Two copies of one run (made by hand?): prefer the one whose sync completed.
            if source_id and TAG_FINGERPRINT in copies.get(source_id, run).data.tags:
                copies.setdefault(source_id, run)
            elif source_id:
                copies[source_id] = run
        slot: list[str | None] = [existing.experiment_id if existing else None]

        def experiment_id() -> str:  # created when the first run needs it
            if slot[0] is None:
                slot[0] = self._create_experiment(name, experiment)
            return slot[0] or ""  # "" in a dry run

        for run in _parents_first(runs):
            result = RunSync(run.info.run_id, experiment.name, name, "create", run.info.run_name)
            self._sync_run(run, result, copies.get(run.info.run_id), experiment_id)
            self.report.runs.append(result)
            self.say(_describe_run(result, self.dry_run))

    def _create_experiment(self, name: str, local: Any) -> str:
        self.report.experiments_created.append(name)
        if self.dry_run:
            return ""
        if self.target.prepare_experiment:
            self.target.prepare_experiment(name)
        keep = [k for k in local.tags if not k.startswith("mlflow.") or k == "mlflow.note.content"]
        tags = {k: local.tags[k] for k in keep}
        return self._write(self.dst.create_experiment, name, tags=tags)

    def _read_local(self, run: Run) -> _LocalRun:
        run_id, read_at_ms = run.info.run_id, int(time.time() * 1000)
        tags = {k: v for k, v in run.data.tags.items() if k not in _RUN_SYNC_TAGS}
        metrics = {key: self.src.get_metric_history(run_id, key) for key in run.data.metrics}
        inputs = list(run.inputs.dataset_inputs) if run.inputs else []
        traces = _search_traces(self.src_traces, run.info.experiment_id, run_id)
        artifacts = self._local_artifacts(run)
        params = dict(run.data.params)
        return _LocalRun(run, read_at_ms, params, tags, metrics, inputs, artifacts, traces)

    def _local_artifacts(self, run: Run) -> list[_Artifact]:
        root = _local_dir(run.info.artifact_uri)
        if root is None:  # a remote artifact store: list it, download when uploading
            files = _walk_artifacts(self.src, run.info.run_id)
            return [_Artifact(f.path, f.file_size, None, None) for f in files]
        found = []
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_file():
                stat = path.stat()
                rel = path.relative_to(root).as_posix()
                found.append(_Artifact(rel, stat.st_size, stat.st_mtime_ns, path))
        return found

    def _sync_run(
        self, run: Run, result: RunSync, target_run: Run | None, experiment_id: Callable[[], str]
    ) -> RunSync:
        run_id = run.info.run_id
        if target_run is not None:
            result.action, result.target_run_id = "update", target_run.info.run_id
            self.id_map[run_id] = target_run.info.run_id
            if target_run.info.lifecycle_stage == "deleted":
                result.action = "skip"
                result.warnings.append("the copy is deleted on the target; restore it to sync")
                return result
        local = self._read_local(run)
        now = local.fingerprint()
        before = _parse_fingerprint(target_run.data.tags if target_run else {})
        if before is not None and before["sections"] == now:
            result.action = "skip"
            return result
        changed = {s for s in _SECTIONS if before is None or before["sections"].get(s) != now[s]}
        plan = self._plan(local, target_run, changed, before["at"] if before else None, result)
        for name in _COUNTS[:-1]:
            setattr(result, name, len(getattr(plan, name)))
        result.assessments = sum(len(p.assessments) for p in plan.traces)
        experiment = experiment_id()  # in a dry run, only noted as to be created
        if self.dry_run:
            return result
        if target_run is None:
            result.target_run_id = self._create_run(local, experiment)
        assert result.target_run_id is not None
        self._apply(local, plan, result.target_run_id, experiment)
        stamp = {"v": FINGERPRINT_VERSION, "at": local.read_at_ms, "sections": now}
        stamp_text = json.dumps(stamp, separators=(",", ":"))
        self._write(self.dst.set_tag, result.target_run_id, TAG_FINGERPRINT, stamp_text)
        return result

    def _create_run(self, local: _LocalRun, experiment_id: str) -> str:
        info = local.run.info
        tags = {TAG_SOURCE_RUN: info.run_id, TAG_SOURCE_STORE: self.source_id}
        if "mlflow.user" in local.tags:  # the server takes the run's user from this tag
            tags["mlflow.user"] = local.tags["mlflow.user"]
        create = self.dst.create_run
        created = self._write(create, experiment_id, info.start_time, tags, info.run_name)
        self.id_map[info.run_id] = created.info.run_id
        return created.info.run_id

    # --- what is missing on the target ----------------------------------------------------

    def _plan(
        self,
        local: _LocalRun,
        target_run: Run | None,
        changed: set[str],
        synced_at_ms: int | None,
        result: RunSync,
    ) -> _RunPlan:
        from mlflow.entities import Metric, Param

        plan = _RunPlan()
        have = target_run.data if target_run else None
        if "params" in changed:
            for key, value in sorted(local.params.items()):
                if len(value) > MAX_PARAM_VALUE:
                    result.warnings.append(f"param '{key}' cut to {MAX_PARAM_VALUE} characters")
                    value = value[:MAX_PARAM_VALUE]
                if have is None or key not in have.params:
                    plan.params.append(Param(key, value))
                elif have.params[key] != value:
                    kept = f"param '{key}' differs locally; the target keeps its value"
                    result.warnings.append(kept + " (MLflow params cannot change)")
        if "tags" in changed:
            for key, value in sorted(local.tags.items()):
                if key == "mlflow.parentRunId":
                    value = self.id_map.get(value, value)
                if have is None or have.tags.get(key) != value:
                    plan.tags[key] = value
        if "metrics" in changed:
            for key, history in sorted(local.metrics.items()):
                present: set[tuple[int, int, str]] = set()
                if target_run is not None and have is not None and key in have.metrics:
                    target_history = self.dst.get_metric_history(target_run.info.run_id, key)
                    present = set(map(_metric_key, target_history))
                missing = [m for m in history if _metric_key(m) not in present]
                # Only the value: a model id would point at a logged model the target lacks.
                plan.metrics += [Metric(key, m.value, m.timestamp, m.step) for m in missing]
        if "inputs" in changed:
            inputs = target_run.inputs.dataset_inputs if target_run and target_run.inputs else []
            present_inputs = set(map(_input_key, inputs))
            plan.inputs = [i for i in local.inputs if _input_key(i) not in present_inputs]
        if "artifacts" in changed:
            files = _walk_artifacts(self.dst, target_run.info.run_id) if target_run else ()
            sizes = {f.path: f.file_size for f in files}
            since_ns = (synced_at_ms or 0) * 1_000_000 or None
            for artifact in local.artifacts:
                changed_since = since_ns and artifact.mtime_ns and artifact.mtime_ns > since_ns
                if sizes.get(artifact.path) != artifact.size or changed_since:
                    plan.artifacts.append(artifact)
        if "traces" in changed:
            plan.traces = self._plan_traces(local, target_run)
        if "info" in changed:
            info = local.run.info
            now = (info.status, info.end_time)
            was = (target_run.info.status, target_run.info.end_time) if target_run else None
            plan.terminate = info.status != "RUNNING" and was != now
        return plan

    def _plan_traces(self, local: _LocalRun, target_run: Run | None) -> list[_TracePlan]:
        existing: dict[str, TraceInfo] = {}
        if target_run is not None:
            where = target_run.info
            for found in _search_traces(self.dst_traces, where.experiment_id, where.run_id):
                existing[found.tags.get(TAG_SOURCE_TRACE, found.trace_id)] = found
        plans = []
        for info in local.traces:
            have = existing.get(info.trace_id)
            if have is None:
                plans.append(_TracePlan(info, None, assessments=list(info.assessments)))
                continue
            have_ids = {a.assessment_id for a in have.assessments}
            have_ids |= {(a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in have.assessments}
            plan = _TracePlan(info, have)
            plan.tags = {k: v for k, v in _trace_tags(info).items() if have.tags.get(k) != v}
            plan.assessments = [a for a in info.assessments if a.assessment_id not in have_ids]
            if self.bulk_spans:  # spans sent: the server marks where it keeps them
                plan.spans = have.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE
            else:  # spans uploaded: we set our tag after the upload
                plan.spans = TAG_SOURCE_TRACE not in have.tags
            if plan.tags or plan.assessments or plan.spans:
                plans.append(plan)
        return plans

    # --- copying it -----------------------------------------------------------------------

    def _apply(self, local: _LocalRun, plan: _RunPlan, run_id: str, experiment_id: str) -> None:
        from mlflow.entities import RunStatus, RunTag

        tags = [RunTag(k, v) for k, v in plan.tags.items()]
        if plan.params or plan.metrics or tags:  # the client splits it by the REST limits
            self._write(self.dst.log_batch, run_id, plan.metrics, plan.params, tags, True)
        if plan.inputs:
            self._write(self.dst.log_inputs, run_id, datasets=plan.inputs)
        if plan.artifacts:
            self._upload(local, plan.artifacts, run_id)
        if plan.traces:
            self._copy_traces(local, plan.traces, run_id, experiment_id)
        if plan.terminate:
            info = local.run.info
            # The store's call: MlflowClient.set_terminated also prints a "View run" URL.
            store = self.dst._tracking_client.store
            status = RunStatus.from_string(info.status)
            self._write(store.update_run_info, run_id, status, info.end_time, None)

    def _upload(self, local: _LocalRun, artifacts: list[_Artifact], run_id: str) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-sync-") as tmp:

            def upload(artifact: _Artifact) -> None:
                path = artifact.local_file
                if path is None:  # a remote source: fetch the file first
                    fetched = self.src.download_artifacts(local.run.info.run_id, artifact.path, tmp)
                    path = Path(fetched)
                parent = artifact.path.rpartition("/")[0] or None
                self._write(self.dst.log_artifact, run_id, str(path), artifact_path=parent)

            with ThreadPoolExecutor(WORKERS, thread_name_prefix="harness-sync") as pool:
                list(pool.map(upload, artifacts))

    def _copy_traces(
        self, local: _LocalRun, plans: list[_TracePlan], run_id: str, experiment_id: str
    ) -> None:
        run_map = {local.run.info.run_id: run_id}
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="harness-sync") as pool:
            for done, chunk in enumerate(_chunks(plans, TRACE_CHUNK)):
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
                for ids in _chunks([tid for tid in linked if tid], MAX_LINK_TRACES):
                    self._write(self.dst.link_traces_to_run, list(ids), run_id)
                self.say(f"  traces {min((done + 1) * TRACE_CHUNK, len(plans))}/{len(plans)}")

    def _read_spans(self, infos: list[TraceInfo]) -> dict[str, Any]:
        """Trace id -> TraceData. Spans in the local database come in one query."""
        in_store = [t.trace_id for t in infos if t.tags.get(_SPANS_LOCATION) == _IN_TRACKING_STORE]
        elsewhere = [t.trace_id for t in infos if t.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE]
        found = self.src_traces.store.batch_get_traces(in_store) if in_store else []
        if elsewhere:  # artifacts or an archive: the client knows where to look
            found += self.src_traces.batch_get_traces(elsewhere)
        return {t.info.trace_id: t.data for t in found}

    def _copy_trace_info(
        self, plan: _TracePlan, run_map: dict[str, str], experiment_id: str
    ) -> str | None:
        """Create or complete one trace's info; return its id if it must be linked to the run."""
        from mlflow.entities import TraceLocation

        info, linked = plan.local, None
        run_map = {**self.id_map, **run_map}
        assessments = [self._assessment(a, run_map) for a in plan.assessments]
        if plan.target is None:
            metadata = dict(info.trace_metadata)
            source_run = metadata.pop(_SOURCE_RUN_META, None)
            if source_run in run_map:
                metadata[_SOURCE_RUN_META] = run_map[source_run]
            else:  # linked to the run rather than logged in it: link the copy too
                linked = info.trace_id
            tags = _trace_tags(info)
            if self.bulk_spans:  # else set once the spans are uploaded: the "done" mark
                tags[TAG_SOURCE_TRACE] = info.trace_id
            twin = copy.copy(info)  # a shallow copy: only whole fields are replaced below
            twin.trace_location = TraceLocation.from_experiment_id(experiment_id)
            twin.trace_metadata, twin.tags, twin.assessments = metadata, tags, assessments
            created = self._write(self.dst_traces.store.start_trace, twin)
            plan.target = created
            # A server that ignored the assessments sent with the trace gets them one by one.
            kept = {(a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in created.assessments}
            assessments = [a for a in assessments if a.metadata[META_SOURCE_ASSESSMENT] not in kept]
        for key, value in plan.tags.items():  # empty for a trace created just now
            self._write(self.dst.set_trace_tag, plan.target.trace_id, key, value)
        for assessment in assessments:
            assessment.trace_id = plan.target.trace_id
            self._write(self.dst_traces.store.create_assessment, assessment)
        return linked

    @staticmethod
    def _assessment(assessment: Any, run_map: dict[str, str]) -> Any:
        copied = copy.copy(assessment)  # not via proto: Expectation.from_proto drops `valid`
        metadata = dict(assessment.metadata or {})
        metadata[META_SOURCE_ASSESSMENT] = assessment.assessment_id
        if metadata.get(_ASSESSMENT_RUN_META) in run_map:
            metadata[_ASSESSMENT_RUN_META] = run_map[metadata[_ASSESSMENT_RUN_META]]
        copied.metadata = metadata
        copied.run_id = metadata.get(_ASSESSMENT_RUN_META)
        return copied

    def _log_spans(self, experiment_id: str, spans: Sequence[Any]) -> None:
        batch: list[Any] = []
        size = 0
        for span in spans:
            span_size = 200 + sum(len(str(v)) for v in span._span.attributes.values())
            if batch and size + span_size > SPANS_REQUEST_BYTES:
                self._write(self.dst_traces.store.log_spans, experiment_id, batch)
                batch, size = [], 0
            batch.append(span)
            size += span_size
        if batch:
            self._write(self.dst_traces.store.log_spans, experiment_id, batch)

    def _upload_spans(self, plan: _TracePlan, data: Any) -> None:
        target = plan.target
        assert target is not None
        if target.tags.get(_SPANS_LOCATION) != _IN_TRACKING_STORE:
            self._write(self.dst_traces._upload_trace_data, target, data)
        self._write(self.dst.set_trace_tag, target.trace_id, TAG_SOURCE_TRACE, plan.local.trace_id)


# --- helpers ----------------------------------------------------------------------------


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every item of a paged MLflow listing (a ``PagedList``, or a (items, token) pair)."""
    token = None
    while True:
        page = fetch(token)
        items, token = page if isinstance(page, tuple) else (page, page.token)
        yield from items
        if not token:
            return


def _search_runs(client: Any, experiment_id: str, view: Any) -> list[Run]:
    def fetch(token: str | None) -> Any:
        order = ["attributes.start_time ASC"]
        return client.search_runs([experiment_id], "", view, 1000, order, token)

    return list(_pages(fetch))


def _search_traces(tracing: Any, experiment_id: str, run_id: str) -> list[TraceInfo]:
    """Every trace of a run: logged in it (``mlflow.sourceRun``) or linked to it."""
    where = f"attribute.run_id = '{run_id}'"
    search = tracing._search_traces  # TracingClient's, without loading spans
    return list(
        _pages(
            lambda token: search(
                locations=[experiment_id],
                filter_string=where,
                max_results=SEARCH_TRACES_PAGE,
                page_token=token,
            )
        )
    )


def _walk_artifacts(client: Any, run_id: str, path: str | None = None) -> Iterator[Any]:
    for item in client.list_artifacts(run_id, path):
        yield from _walk_artifacts(client, run_id, item.path) if item.is_dir else (item,)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _no_bulk_spans(exc: Exception) -> bool:
    """Whether a failed OTLP request means the server cannot take spans that way at all."""
    return isinstance(exc, NotImplementedError) or "span logging is not supported" in str(exc)


def _parents_first(runs: list[Run]) -> list[Run]:
    """Order runs so a parent is copied before its children (to map mlflow.parentRunId)."""
    by_id = {r.info.run_id: r for r in runs}

    def depth(run: Run) -> int:
        seen = set()
        while (parent := run.data.tags.get("mlflow.parentRunId")) in by_id and parent not in seen:
            seen.add(parent)
            run = by_id[parent]
        return len(seen)

    return sorted(runs, key=depth)  # stable: start-time order within a depth


def _parse_fingerprint(tags: dict[str, str]) -> dict[str, Any] | None:
    try:
        data = json.loads(tags.get(TAG_FINGERPRINT) or "null")
    except ValueError:
        return None
    ok = isinstance(data, dict) and data.get("v") == FINGERPRINT_VERSION
    return data if ok and isinstance(data.get("sections"), dict) else None


def _display_uri(uri: str) -> str:
    """The URI without any user:password part."""
    parsed = urlparse(uri)
    if not (parsed.password or parsed.username):
        return uri
    netloc = f"{parsed.hostname}:{parsed.port}" if parsed.port else parsed.hostname or ""
    return urlunparse(parsed._replace(netloc=netloc))


_CONNECTION_REASON = re.compile(
    r"Connection refused|timed out|Name or service not known|nodename nor servname provided"
    r"|Temporary failure in name resolution|No route to host|CERTIFICATE_VERIFY_FAILED"
)


def _connection_reason(exc: BaseException) -> str:
    """A short reason for a failed connection, instead of urllib3's nested retry message."""
    found = _CONNECTION_REASON.search(str(exc))
    return found.group(0) if found else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _describe_run(result: RunSync, dry_run: bool) -> str:
    verb = f"would {result.action}" if dry_run and result.action != "skip" else result.action
    counts = ", ".join(f"{getattr(result, k)} {k}" for k in _COUNTS if getattr(result, k))
    name = f"{result.experiment}/{result.run_name or result.run_id}"
    return f"{verb} {name}" + (f": {counts}" if counts else "")
