"""Copy local MLflow experiments and runs to another tracking server (``harness sync``).

What is copied, per local run: params, every metric value with its step and timestamp,
tags, artifacts, dataset inputs, start/end time and status, and the run's traces (spans,
tags, metadata) with their assessments (feedback and expectations).

How a copy is found again (idempotence). Every target run carries the tag
``harness.source_run_id`` (the local run id; set when the run is created, so even a run
cut off right after its creation is found), every copied trace the tag
``harness.source_trace_id`` and every copied assessment the metadata key
``harness.source_assessment_id``. Trace and assessment ids are kept where the server
accepts them (any MLflow server does). A second sync looks these up instead of creating.

How a change is noticed. The last write to a target run is the tag
``harness.sync_fingerprint``: one short hash per section of the local run (info, params,
tags, metrics, inputs, artifacts, traces) and the time the local run was read. Equal
hashes: the run is skipped with no further reads. A missing tag (a sync was interrupted)
or a changed hash: only the changed sections are compared with the target and what is
missing there is copied, so an interrupted sync resumes and an edited run is updated in
place, never duplicated.

Rules for an update:
- params are immutable in MLflow: missing ones are logged; a param whose local value now
  differs keeps the target's value and the run's report carries a warning. Values are cut
  to 6000 characters (the MLflow limit), with a warning.
- tags: missing or different values are set. Nothing is ever deleted on the target
  (deleted local tags, artifacts, traces stay there).
- metrics: values (step, timestamp, value) absent from the target history are logged.
- artifacts: files missing on the target, of another size, or modified locally after the
  previous sync read the run (rsync's size + mtime rule) are uploaded.
- traces: missing traces are created; on existing ones, missing assessments are added,
  tags set, and spans re-sent if the earlier copy stopped before them.
- a run deleted on the target is left alone (reported as ``skip`` with a warning).

Requests respect the REST limits (``log_batch``: 1000 metrics, 100 params, 100 tags).
Spans go in bulk (OTLP ``/v1/traces``, many traces per request) to MLflow >= 3.4 servers,
and as the ``traces.json`` artifact of each trace to Databricks; trace infos go one
request per trace (``StartTraceV3``, with their assessments), which dominates the time of
a large sync: no MLflow REST call creates several traces at once.

Testing hook: with ``HARNESS_SYNC_TEST_KILL_AFTER_WRITES=N`` in the environment the
process SIGKILLs itself just before its (N+1)-th write to the target, to test resuming.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

from harness.errors import ConfigError, HarnessError, TrackingError
from harness.tracking.databricks_auth import (
    current_user,
    ensure_workspace_dir,
    redact,
    resolve_databricks_credentials,
    workspace_experiment_path,
)

if TYPE_CHECKING:
    from mlflow.entities import Run, TraceInfo

TAG_SOURCE_RUN = "harness.source_run_id"
TAG_SOURCE_STORE = "harness.source_store"
TAG_FINGERPRINT = "harness.sync_fingerprint"
TAG_SOURCE_TRACE = "harness.source_trace_id"
META_SOURCE_ASSESSMENT = "harness.source_assessment_id"
FINGERPRINT_VERSION = 1

MAX_BATCH_METRICS = 1000  # log_batch: entities per request
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_PARAM_VALUE = 6000
MAX_LINK_TRACES = 100  # link_traces_to_run
SEARCH_TRACES_PAGE = 500  # the server's max_results for SearchTracesV3
TRACE_CHUNK = 200  # traces read, created and span-logged together
SPANS_REQUEST_BYTES = 4_000_000  # rough cap on one OTLP request
WORKERS = 4  # concurrent requests to the target
KILL_AFTER_ENV = "HARNESS_SYNC_TEST_KILL_AFTER_WRITES"

# Trace tags that describe where one store keeps a trace, not the trace itself.
_STORE_TRACE_TAGS = ("mlflow.artifactLocation", "mlflow.trace.spansLocation", TAG_SOURCE_TRACE)
_RUN_SYNC_TAGS = (TAG_SOURCE_RUN, TAG_SOURCE_STORE, TAG_FINGERPRINT)
_SOURCE_RUN_META = "mlflow.sourceRun"
_ASSESSMENT_RUN_META = "mlflow.assessment.sourceRunId"
_SECTIONS = ("info", "params", "tags", "metrics", "inputs", "artifacts", "traces")


@dataclass
class SyncTarget:
    """Where to copy: a tracking URI and how local experiment names map to target names."""

    tracking_uri: str
    experiment_path: Callable[[str], str] | None = None  # local name -> target name
    prepare_experiment: Callable[[str], None] | None = None  # called before creating one
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from messages


def databricks_target(
    profile: str | None = None,
    experiment: str | None = None,
    user: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> SyncTarget:
    """A Databricks managed-MLflow target (``--databricks [--profile NAME]``).

    Credentials come from ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` or a ``~/.databrickscfg``
    profile (see :mod:`harness.tracking.databricks_auth`); no network here. Experiments
    land at ``/Users/<user>/harness/<experiment>``, or at ``experiment`` when it is an
    absolute workspace path. ``user`` defaults to ``DATABRICKS_USER`` or, at sync time,
    the workspace's SCIM ``Me`` endpoint.
    """
    creds = resolve_databricks_credentials(profile, environ=environ, config_file=config_file)
    lock = threading.Lock()
    resolved: list[str] = [user] if user else []

    def experiment_path(name: str) -> str:
        if experiment and experiment.startswith("/"):
            return experiment
        with lock:
            if not resolved:
                resolved.append(current_user(creds, environ=environ))
        return workspace_experiment_path(name, user=resolved[0], target=experiment)

    def prepare(path: str) -> None:
        ensure_workspace_dir(creds, path.rsplit("/", 1)[0] or "/")

    return SyncTarget(creds.tracking_uri, experiment_path, prepare, creds.secrets)


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
    metrics: int = 0  # metric values (each step of a history counts)
    tags: int = 0
    inputs: int = 0
    artifacts: int = 0
    traces: int = 0
    assessments: int = 0
    warnings: list[str] = field(default_factory=list)


_COUNTS = ("params", "metrics", "tags", "inputs", "artifacts", "traces", "assessments")


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
        return {
            "target": self.target,
            "dry_run": self.dry_run,
            "experiments_created": list(self.experiments_created),
            "runs": [asdict(r) for r in self.runs],
            "totals": self.totals,
            "seconds": round(self.seconds, 3),
        }


SyncPlan = SyncReport  # a dry run's report is the plan
_ACTIONS = ("create", "update", "skip")


def sync(
    source_tracking_uri: str,
    target: SyncTarget,
    *,
    experiments: list[str] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Copy the local experiments (all, or those named) and their runs to ``target``.

    Idempotent and incremental (see the module docstring). Raises ``TrackingError`` with a
    one-line message when the target cannot be reached, refuses the credentials or fails,
    and ``ConfigError`` for an unknown local experiment.
    """
    started = time.monotonic()
    shown = _display_uri(target.tracking_uri)
    try:
        syncer = _Syncer(source_tracking_uri, target, dry_run, progress or (lambda _m: None))
        syncer.preflight()
        for experiment in syncer.local_experiments(experiments):
            syncer.sync_experiment(experiment)
    except HarnessError as exc:
        exc.message = redact(exc.message, target.secrets)
        raise
    except Exception as exc:  # MLflow, requests, OS errors: one line, no secret
        raise TrackingError(
            f"sync to {shown} failed: " + redact(_first_line(exc), target.secrets)
        ) from exc
    syncer.report.seconds = time.monotonic() - started
    return syncer.report


# --- the local side ---------------------------------------------------------------------


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
    metrics: dict[str, list[Any]]
    inputs: list[Any]
    artifacts: list[_Artifact]
    traces: list[TraceInfo]

    def fingerprint(self) -> dict[str, str]:
        info = self.run.info
        sections: dict[str, Any] = {
            "info": [info.run_name, info.start_time, info.end_time, info.status],
            "params": sorted(self.params.items()),
            "tags": sorted(self.tags.items()),
            "metrics": sorted(
                (key, sorted(_metric_key(m) for m in history))
                for key, history in self.metrics.items()
            ),
            "inputs": sorted(_input_key(i) for i in self.inputs),
            "artifacts": sorted((a.path, a.size, a.mtime_ns) for a in self.artifacts),
            "traces": sorted(
                (
                    t.trace_id,
                    sorted(_trace_tags(t).items()),
                    sorted(
                        (a.assessment_id, a.last_update_time_ms, a.valid) for a in t.assessments
                    ),
                )
                for t in self.traces
            ),
        }
        return {name: _digest(sections[name]) for name in _SECTIONS}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _metric_key(metric: Any) -> tuple[int, int, str]:
    return (int(metric.step), int(metric.timestamp), repr(float(metric.value)))


def _input_key(dataset_input: Any) -> tuple[str, str, str]:
    context = sorted((t.key, t.value) for t in dataset_input.tags)
    return (dataset_input.dataset.name, dataset_input.dataset.digest, json.dumps(context))


def _trace_tags(info: TraceInfo) -> dict[str, str]:
    return {k: v for k, v in info.tags.items() if k not in _STORE_TRACE_TAGS}


def _local_dir(uri: str) -> Path | None:
    """The directory behind a local artifact URI, or None for a remote one."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        from mlflow.utils.uri import local_file_uri_to_path

        return Path(local_file_uri_to_path(uri))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a Windows drive)
        return Path(uri)
    return None


# --- the sync itself --------------------------------------------------------------------


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


class _Syncer:
    def __init__(
        self, source_uri: str, target: SyncTarget, dry_run: bool, say: Callable[[str], None]
    ) -> None:
        from mlflow import MlflowClient
        from mlflow.tracing.client import TracingClient
        from mlflow.utils.uri import is_databricks_uri

        self.src = MlflowClient(source_uri)
        self.dst = MlflowClient(target.tracking_uri)
        self.src_traces = TracingClient(source_uri)
        self.dst_traces = TracingClient(target.tracking_uri)
        self.target = target
        self.dry_run = dry_run
        self.say = say
        self.shown = _display_uri(target.tracking_uri)
        self.source_id = hashlib.sha256(_display_uri(source_uri).encode()).hexdigest()[:16]
        self.report = SyncReport(target=self.shown, dry_run=dry_run)
        self.id_map: dict[str, str] = {}  # local run id -> target run id
        # Databricks keeps trace spans as an artifact; MLflow servers take OTLP in bulk.
        self.bulk_spans = not is_databricks_uri(target.tracking_uri)
        self._writes = 0
        self._kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
        self._lock = threading.Lock()

    # Every write to the target goes through here (the resume tests count on it).
    def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._kill_after:
            with self._lock:
                self._writes += 1
                if self._writes > self._kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)

    def preflight(self) -> None:
        """Fail fast, in one line, when the target is unreachable or refuses us."""
        scheme = urlparse(self.target.tracking_uri).scheme
        if scheme not in ("http", "https", "databricks"):
            return
        from mlflow.utils.rest_utils import http_request

        try:
            creds = self.dst._tracking_client.store.get_host_creds()
            response = http_request(
                creds,
                "/api/2.0/mlflow/experiments/search",
                "GET",
                params={"max_results": 1},
                max_retries=0,
                timeout=15,
                raise_on_status=False,
                retry_timeout_seconds=1,
            )
        except Exception as exc:  # noqa: BLE001 - connection errors of every kind
            raise TrackingError(
                f"cannot reach the tracking server {self.shown}: "
                + redact(_first_line(exc), self.target.secrets)
            ) from None
        if response.status_code in (401, 403):
            raise TrackingError(
                f"the tracking server {self.shown} refused the credentials "
                f"(HTTP {response.status_code}); check the token or profile"
            )
        if response.status_code >= 400:
            raise TrackingError(
                f"the tracking server {self.shown} answered HTTP {response.status_code} "
                "to a test request; is it an MLflow server?"
            )

    def local_experiments(self, names: list[str] | None) -> list[Any]:
        from mlflow.entities import ViewType

        found = list(
            _pages(
                lambda tok: self.src.search_experiments(
                    view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=tok
                )
            )
        )
        if names is not None:
            known = {e.name for e in found}
            for name in names:
                if name not in known:
                    raise ConfigError(f"no local experiment named '{name}'")
            found = [e for e in found if e.name in names]
        return sorted(found, key=lambda e: (e.creation_time or 0, e.name))

    def sync_experiment(self, experiment: Any) -> None:
        from mlflow.entities import ViewType

        runs = list(
            _pages(
                lambda tok: self.src.search_runs(
                    [experiment.experiment_id],
                    run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=tok,
                )
            )
        )
        if not runs:
            return
        mapper = self.target.experiment_path
        target_name = mapper(experiment.name) if mapper else experiment.name
        target_exp = self.dst.get_experiment_by_name(target_name)
        if target_exp is not None and target_exp.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment '{target_name}' is deleted on {self.shown}: restore it, "
                "or sync into another experiment"
            )
        copies = self._target_copies(target_exp.experiment_id) if target_exp else {}
        state = {"id": target_exp.experiment_id if target_exp else None}

        def experiment_id() -> str:  # created on the first run that needs it
            if state["id"] is None:
                state["id"] = self._create_experiment(target_name, experiment)
            return state["id"]

        for run in _parents_first(runs):
            result = self._sync_run(run, experiment.name, target_name, copies, experiment_id)
            self.report.runs.append(result)
            self.say(_describe_run(result, self.dry_run))

    def _create_experiment(self, name: str, local: Any) -> str:
        self.report.experiments_created.append(name)
        if self.dry_run:
            return ""
        if self.target.prepare_experiment:
            self.target.prepare_experiment(name)
        tags = {
            k: v
            for k, v in local.tags.items()
            if not k.startswith("mlflow.") or k == "mlflow.note.content"
        }
        return self._write(self.dst.create_experiment, name, tags=tags)

    def _target_copies(self, experiment_id: str) -> dict[str, Run]:
        from mlflow.entities import ViewType

        copies: dict[str, Run] = {}
        for run in _pages(
            lambda tok: self.dst.search_runs(
                [experiment_id],
                run_view_type=ViewType.ALL,
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=tok,
            )
        ):
            source_id = run.data.tags.get(TAG_SOURCE_RUN)
            # Keep the first target_run (and the one whose sync completed) if there are two.
            if source_id and (
                source_id not in copies
                or TAG_FINGERPRINT in run.data.tags
                and TAG_FINGERPRINT not in copies[source_id].data.tags
            ):
                copies[source_id] = run
        return copies

    def _read_local(self, run: Run) -> _LocalRun:
        run_id = run.info.run_id
        read_at_ms = int(time.time() * 1000)
        tags = {k: v for k, v in run.data.tags.items() if k not in _RUN_SYNC_TAGS}
        metrics = {key: self.src.get_metric_history(run_id, key) for key in run.data.metrics}
        inputs = list(run.inputs.dataset_inputs) if run.inputs else []
        traces = list(
            _pages(
                lambda tok: _page(
                    self.src_traces._search_traces(
                        locations=[run.info.experiment_id],
                        filter_string=f"attribute.run_id = '{run_id}'",
                        max_results=SEARCH_TRACES_PAGE,
                        page_token=tok,
                    )
                )
            )
        )
        return _LocalRun(
            run,
            read_at_ms,
            dict(run.data.params),
            tags,
            metrics,
            inputs,
            self._local_artifacts(run),
            traces,
        )

    def _local_artifacts(self, run: Run) -> list[_Artifact]:
        root = _local_dir(run.info.artifact_uri)
        if root is not None:
            if not root.is_dir():
                return []
            found = []
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    rel = path.relative_to(root).as_posix()
                    found.append(_Artifact(rel, stat.st_size, stat.st_mtime_ns, path))
            return found
        return [
            _Artifact(f.path, f.file_size, None, None)
            for f in _walk_artifacts(self.src, run.info.run_id)
        ]

    def _sync_run(
        self,
        run: Run,
        experiment: str,
        target_experiment: str,
        copies: dict[str, Run],
        experiment_id: Callable[[], str],
    ) -> RunSync:
        run_id = run.info.run_id
        target_run = copies.get(run_id)
        result = RunSync(run_id, experiment, target_experiment, "create", run.info.run_name)
        if target_run is not None:
            result.action = "update"
            result.target_run_id = target_run.info.run_id
            self.id_map[run_id] = target_run.info.run_id
            if target_run.info.lifecycle_stage == "deleted":
                result.action = "skip"
                result.warnings.append(
                    "the target_run is deleted on the target; restore it to sync"
                )
                return result
        local = self._read_local(run)
        now = local.fingerprint()
        before = (
            _parse_fingerprint(target_run.data.tags.get(TAG_FINGERPRINT)) if target_run else None
        )
        if before is not None and before["sections"] == now:
            result.action = "skip"
            return result
        changed = {s for s in _SECTIONS if before is None or before["sections"].get(s) != now[s]}
        plan = self._plan(local, target_run, changed, before["at"] if before else None, result)
        for name in ("params", "metrics", "tags", "inputs", "artifacts", "traces"):
            setattr(result, name, len(getattr(plan, name)))
        result.assessments = sum(len(p.assessments) for p in plan.traces)
        if self.dry_run:
            return result
        if target_run is None:
            result.target_run_id = self._create_run(local, experiment_id())
        assert result.target_run_id is not None
        self._apply(local, plan, result.target_run_id, target_run, experiment_id())
        stamp = json.dumps(
            {"v": FINGERPRINT_VERSION, "at": local.read_at_ms, "sections": now},
            separators=(",", ":"),
        )
        self._write(self.dst.set_tag, result.target_run_id, TAG_FINGERPRINT, stamp)
        return result

    def _create_run(self, local: _LocalRun, experiment_id: str) -> str:
        info = local.run.info
        tags = {TAG_SOURCE_RUN: info.run_id, TAG_SOURCE_STORE: self.source_id}
        if "mlflow.user" in local.tags:  # the server takes the run's user from this tag
            tags["mlflow.user"] = local.tags["mlflow.user"]
        created = self._write(
            self.dst.create_run,
            experiment_id,
            start_time=info.start_time,
            tags=tags,
            run_name=info.run_name,
        )
        self.id_map[info.run_id] = created.info.run_id
        return created.info.run_id

    # --- planning: what is missing on the target ------------------------------------------

    def _plan(
        self,
        local: _LocalRun,
        target_run: Run | None,
        changed: set[str],
        synced_at: int | None,
        result: RunSync,
    ) -> _RunPlan:
        from mlflow.entities import Param

        plan = _RunPlan()
        target_id = target_run.info.run_id if target_run else None
        if "params" in changed:
            have = target_run.data.params if target_run else {}
            for key, value in sorted(local.params.items()):
                if len(value) > MAX_PARAM_VALUE:
                    result.warnings.append(f"param '{key}' cut to {MAX_PARAM_VALUE} characters")
                    value = value[:MAX_PARAM_VALUE]
                if key not in have:
                    plan.params.append(Param(key, value))
                elif have[key] != value:
                    result.warnings.append(
                        f"param '{key}' changed locally; the target keeps its value "
                        "(MLflow params cannot change)"
                    )
        if "tags" in changed:
            have = target_run.data.tags if target_run else {}
            for key, value in sorted(local.tags.items()):
                if key == "mlflow.parentRunId":
                    value = self.id_map.get(value, value)
                if have.get(key) != value:
                    plan.tags[key] = value
        if "metrics" in changed:
            for key, history in sorted(local.metrics.items()):
                have_keys: set[tuple[int, int, str]] = set()
                if target_run is not None and key in target_run.data.metrics:
                    have_keys = {
                        _metric_key(m) for m in self.dst.get_metric_history(target_id, key)
                    }
                plan.metrics += [m for m in history if _metric_key(m) not in have_keys]
        if "inputs" in changed:
            have_inputs = {
                _input_key(i)
                for i in (
                    target_run.inputs.dataset_inputs if target_run and target_run.inputs else []
                )
            }
            plan.inputs = [i for i in local.inputs if _input_key(i) not in have_inputs]
        if "artifacts" in changed:
            sizes = (
                {f.path: f.file_size for f in _walk_artifacts(self.dst, target_id)}
                if target_run is not None
                else {}
            )
            since_ns = synced_at * 1_000_000 if synced_at is not None else None
            plan.artifacts = [
                a
                for a in local.artifacts
                if a.path not in sizes
                or sizes[a.path] != a.size
                or (since_ns is not None and a.mtime_ns is not None and a.mtime_ns > since_ns)
            ]
        if "traces" in changed:
            plan.traces = self._plan_traces(local, target_run)
        if "info" in changed:
            info = local.run.info
            plan.terminate = info.status != "RUNNING" and (
                target_run is None
                or (target_run.info.status, target_run.info.end_time)
                != (info.status, info.end_time)
            )
        return plan

    def _plan_traces(self, local: _LocalRun, target_run: Run | None) -> list[_TracePlan]:
        from mlflow.tracing.constant import SpansLocation, TraceTagKey

        existing: dict[str, TraceInfo] = {}
        if target_run is not None:
            for info in _pages(
                lambda tok: _page(
                    self.dst_traces._search_traces(
                        locations=[target_run.info.experiment_id],
                        filter_string=f"attribute.run_id = '{target_run.info.run_id}'",
                        max_results=SEARCH_TRACES_PAGE,
                        page_token=tok,
                    )
                )
            ):
                existing[info.tags.get(TAG_SOURCE_TRACE, info.trace_id)] = info
        plans = []
        for info in local.traces:
            have = existing.get(info.trace_id)
            if have is None:
                plans.append(_TracePlan(info, None, assessments=list(info.assessments)))
                continue
            have_ids = {a.assessment_id for a in have.assessments} | {
                (a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in have.assessments
            }
            plan = _TracePlan(
                info,
                have,
                tags={k: v for k, v in _trace_tags(info).items() if have.tags.get(k) != v},
                assessments=[a for a in info.assessments if a.assessment_id not in have_ids],
                spans=(
                    have.tags.get(TraceTagKey.SPANS_LOCATION) != SpansLocation.TRACKING_STORE.value
                )
                if self.bulk_spans
                else TAG_SOURCE_TRACE not in have.tags,
            )
            if plan.tags or plan.assessments or plan.spans:
                plans.append(plan)
        return plans

    # --- applying the plan ----------------------------------------------------------------

    def _apply(
        self,
        local: _LocalRun,
        plan: _RunPlan,
        run_id: str,
        target_run: Run | None,
        experiment_id: str,
    ) -> None:
        from mlflow.entities import RunStatus, RunTag

        tags = [RunTag(k, v) for k, v in plan.tags.items()]
        for params, metrics, tag_batch in _batches(plan.params, plan.metrics, tags):
            self._write(
                self.dst.log_batch,
                run_id,
                metrics=metrics,
                params=params,
                tags=tag_batch,
                synchronous=True,
            )
        if plan.inputs:
            self._write(self.dst.log_inputs, run_id, datasets=plan.inputs)
        if plan.artifacts:
            self._upload(local, plan.artifacts, run_id)
        if plan.traces:
            self._copy_traces(local, plan.traces, run_id, experiment_id)
        if plan.terminate:
            info = local.run.info
            # The store call: MlflowClient.set_terminated would print a "View run" URL.
            self._write(
                self.dst._tracking_client.store.update_run_info,
                run_id,
                RunStatus.from_string(info.status),
                info.end_time,
                None,
            )

    def _upload(self, local: _LocalRun, artifacts: list[_Artifact], run_id: str) -> None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="harness-sync-") as tmp:

            def upload(artifact: _Artifact) -> None:
                path = artifact.local_file
                if path is None:  # a remote source: fetch the file first
                    path = Path(
                        self.src.download_artifacts(
                            local.run.info.run_id, artifact.path, dst_path=tmp
                        )
                    )
                parent = artifact.path.rpartition("/")[0] or None
                self._write(self.dst.log_artifact, run_id, str(path), artifact_path=parent)

            with ThreadPoolExecutor(WORKERS, thread_name_prefix="harness-sync") as pool:
                list(pool.map(upload, artifacts))

    def _copy_traces(
        self, local: _LocalRun, plans: list[_TracePlan], run_id: str, experiment_id: str
    ) -> None:
        local_run_id = local.run.info.run_id
        done = 0
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="harness-sync") as pool:
            for chunk in _chunks(plans, TRACE_CHUNK):
                data = {}
                wanted = [p.local.trace_id for p in chunk if p.spans]
                if wanted:
                    data = {
                        t.info.trace_id: t.data for t in self.src_traces.batch_get_traces(wanted)
                    }
                to_link = list(
                    pool.map(
                        lambda p: self._trace_info(p, local_run_id, run_id, experiment_id), chunk
                    )
                )
                spans_for = [p for p in chunk if p.spans and p.local.trace_id in data]
                if self.bulk_spans:
                    try:
                        self._log_spans(
                            experiment_id,
                            [s for p in spans_for for s in data[p.local.trace_id].spans],
                        )
                    except NotImplementedError:  # an MLflow server older than 3.4
                        self.bulk_spans = False
                if not self.bulk_spans:
                    pairs = [(p, data[p.local.trace_id]) for p in spans_for]
                    list(pool.map(lambda pair: self._upload_spans(*pair), pairs))
                links = [tid for tid in to_link if tid]
                for ids in _chunks(links, MAX_LINK_TRACES):
                    self._write(self.dst.link_traces_to_run, ids, run_id)
                done += len(chunk)
                self.say(f"  traces {done}/{len(plans)}")

    def _trace_info(
        self, plan: _TracePlan, local_run_id: str, run_id: str, experiment_id: str
    ) -> str | None:
        """Create or complete one trace's info; return its id if it must be linked."""
        from mlflow.entities import TraceInfo, TraceLocation

        info = plan.local
        run_map = {**self.id_map, local_run_id: run_id}
        assessments = [self._assessment(a, run_map) for a in plan.assessments]
        if plan.target is None:
            metadata = dict(info.trace_metadata)
            linked_only = metadata.get(_SOURCE_RUN_META) not in run_map
            if linked_only:
                metadata.pop(_SOURCE_RUN_META, None)
            else:
                metadata[_SOURCE_RUN_META] = run_map[metadata[_SOURCE_RUN_META]]
            tags = _trace_tags(info)
            if self.bulk_spans:  # else set after the spans are uploaded: the "done" mark
                tags[TAG_SOURCE_TRACE] = info.trace_id
            created = self._write(
                self.dst_traces.store.start_trace,
                TraceInfo(
                    trace_id=info.trace_id,
                    trace_location=TraceLocation.from_experiment_id(experiment_id),
                    request_time=info.request_time,
                    state=info.state,
                    request_preview=info.request_preview,
                    response_preview=info.response_preview,
                    client_request_id=info.client_request_id,
                    execution_duration=info.execution_duration,
                    trace_metadata=metadata,
                    tags=tags,
                    assessments=assessments,
                ),
            )
            plan.target = created
            # A server that ignored the assessments sent with the trace gets them one by one.
            have = {(a.metadata or {}).get(META_SOURCE_ASSESSMENT) for a in created.assessments}
            assessments = [a for a in assessments if a.metadata[META_SOURCE_ASSESSMENT] not in have]
            result = info.trace_id if linked_only else None
        else:
            for key, value in plan.tags.items():
                self._write(self.dst.set_trace_tag, plan.target.trace_id, key, value)
            result = None
        for assessment in assessments:
            assessment.trace_id = plan.target.trace_id
            self._write(self.dst_traces.store.create_assessment, assessment)
        return result

    def _assessment(self, assessment: Any, run_map: dict[str, str]) -> Any:
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
            span_size = sum(len(str(v)) for v in span._span.attributes.values()) + 200
            if batch and size + span_size > SPANS_REQUEST_BYTES:
                self._write(self.dst_traces.store.log_spans, experiment_id, batch)
                batch, size = [], 0
            batch.append(span)
            size += span_size
        if batch:
            self._write(self.dst_traces.store.log_spans, experiment_id, batch)

    def _upload_spans(self, plan: _TracePlan, data: Any) -> None:
        from mlflow.tracing.constant import SpansLocation, TraceTagKey

        target = plan.target
        assert target is not None
        if target.tags.get(TraceTagKey.SPANS_LOCATION) != SpansLocation.TRACKING_STORE.value:
            self._write(self.dst_traces._upload_trace_data, target, data)
        self._write(self.dst.set_trace_tag, target.trace_id, TAG_SOURCE_TRACE, plan.local.trace_id)


# --- helpers ----------------------------------------------------------------------------


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Iterate over every item of a paged MLflow listing (``PagedList`` with ``token``)."""
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


class _Page(list):  # type: ignore[type-arg]
    token: str | None = None


def _page(result: tuple[list[Any], str | None]) -> _Page:
    page = _Page(result[0])
    page.token = result[1]
    return page


def _walk_artifacts(client: Any, run_id: str | None, path: str | None = None) -> Iterator[Any]:
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            yield from _walk_artifacts(client, run_id, item.path)
        else:
            yield item


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batches(params: list[Any], metrics: list[Any], tags: list[Any]) -> Iterator[tuple]:
    """Split into ``log_batch`` requests: <= 100 params, <= 100 tags, <= 1000 in all."""
    p = m = t = 0
    while p < len(params) or m < len(metrics) or t < len(tags):
        batch_params = params[p : p + MAX_BATCH_PARAMS]
        batch_tags = tags[t : t + MAX_BATCH_TAGS]
        room = MAX_BATCH_METRICS - len(batch_params) - len(batch_tags)
        batch_metrics = metrics[m : m + room]
        p, t, m = p + len(batch_params), t + len(batch_tags), m + len(batch_metrics)
        yield batch_params, batch_metrics, batch_tags


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


def _parse_fingerprint(value: str | None) -> dict[str, Any] | None:
    try:
        data = json.loads(value) if value else None
    except ValueError:
        return None
    ok = isinstance(data, dict) and data.get("v") == FINGERPRINT_VERSION
    return data if ok and isinstance(data.get("sections"), dict) else None


def _display_uri(uri: str) -> str:
    """The URI without any user:password part."""
    parsed = urlparse(uri)
    if parsed.password or parsed.username:
        host = parsed.hostname or ""
        netloc = f"{host}:{parsed.port}" if parsed.port else host
        return urlunparse(parsed._replace(netloc=netloc))
    return uri


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _describe_run(result: RunSync, dry_run: bool) -> str:
    verb = {"create": "create", "update": "update", "skip": "skip"}[result.action]
    if dry_run and result.action != "skip":
        verb = f"would {verb}"
    counts = ", ".join(f"{getattr(result, k)} {k}" for k in _COUNTS if getattr(result, k))
    name = result.run_name or result.run_id
    return f"{verb} {result.experiment}/{name}" + (f": {counts}" if counts else "")
