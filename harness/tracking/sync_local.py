"""A local run as a sync reads it, and its fingerprint: what ``Syncer`` compares with the
copy's before it plans anything (``harness.tracking.sync_runs``).

``read_local`` reads a run of the local store whole: params, tags, every metric's history,
dataset inputs, artifact files (with size and mtime when the store is a local folder),
traces, and the prompt versions and models it names. ``LocalRun.fingerprint`` hashes each
section of it; the copy keeps those hashes in its ``TAG_FINGERPRINT`` tag, so the next
sync reads the target only for the sections whose hash changed. Apart from the planning
and writing of a sync because it only reads the local store, never the target.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from harness.tracking.sync_links import LocalLinks, local_links
from harness.tracking.sync_listing import walk_artifacts
from harness.tracking.sync_traces import traces_fingerprint

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run, TraceInfo

    from harness.tracking.sync_links import LinkCopier
    from harness.tracking.sync_traces import TraceCopier

__all__ = [
    "FINGERPRINT_VERSION",
    "SECTIONS",
    "TAGS_PENDING",
    "TAG_FINGERPRINT",
    "TAG_SOURCE_RUN",
    "TAG_SOURCE_STORE",
    "TRACES_SKIPPED",
    "Artifact",
    "LocalRun",
    "input_key",
    "metric_key",
    "parse_fingerprint",
    "read_local",
]

TAG_SOURCE_RUN = "harness.source_run_id"
TAG_SOURCE_STORE = "harness.source_store"
TAG_FINGERPRINT = "harness.sync_fingerprint"
FINGERPRINT_VERSION = 1
TRACES_SKIPPED = "skipped"  # the traces section of a fingerprint when no trace was copied

_RUN_SYNC_TAGS = (TAG_SOURCE_RUN, TAG_SOURCE_STORE, TAG_FINGERPRINT)
TAGS_PENDING = "pending"  # the tags section of a fingerprint while a run id tag waits
# "links" (the prompt versions and models the run names) only for a run that has them,
# "models" (those models' tags and status) only for a run that names a model.
SECTIONS = (
    "info", "params", "tags", "metrics", "inputs", "artifacts", "traces", "links", "models",
)  # fmt: skip


@dataclass
class Artifact:
    path: str  # relative, "/"-separated
    size: int | None
    mtime_ns: int | None  # None when the source is not a local directory
    local_file: Path | None


@dataclass
class LocalRun:
    run: Run
    read_at_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[Any]]  # key -> full history
    inputs: list[Any]
    artifacts: list[Artifact]
    traces: list[TraceInfo] | None  # None: not read (traces=False)
    links: LocalLinks
    models: list[Any]  # the tags and status of the models it links to (LinkCopier.model_state)

    def fingerprint(self) -> dict[str, str]:
        """A hash per section; no "traces" key when the traces were not read, no "links"
        key when the run names no prompt version or logged model, no "models" key when it
        names no logged model."""
        info = self.run.info
        sections: dict[str, Any] = {
            "info": [info.run_name, info.start_time, info.end_time, info.status],
            "params": sorted(self.params.items()),
            "tags": sorted(self.tags.items()),
            "metrics": sorted((k, sorted(map(metric_key, h))) for k, h in self.metrics.items()),
            "inputs": sorted(input_key(i) for i in self.inputs),
            "artifacts": sorted((a.path, a.size, a.mtime_ns) for a in self.artifacts),
        }
        if self.traces is not None:
            sections["traces"] = traces_fingerprint(self.traces)
        if self.links:
            sections["links"] = self.links.fingerprint()
        if self.models:
            sections["models"] = self.models
        return {name: _digest(sections[name]) for name in SECTIONS if name in sections}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def metric_key(metric: Any) -> tuple[int, int, str]:
    return (int(metric.step), int(metric.timestamp), repr(float(metric.value)))


def input_key(dataset_input: Any) -> tuple[str, str, str]:
    context = json.dumps(sorted((t.key, t.value) for t in dataset_input.tags))
    return (dataset_input.dataset.name, dataset_input.dataset.digest, context)


def _local_dir(uri: str) -> Path | None:
    """The directory behind a local artifact URI, or None for a remote one."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(uri))
    return Path(uri) if len(scheme) <= 1 else None  # a path, or a Windows drive letter


def read_local(
    src: MlflowClient,
    run: Run,
    trace_copier: TraceCopier,
    link_copier: LinkCopier,
    *,
    skip_traces: bool,
) -> LocalRun:
    """``run`` of the local store (``src``) read whole, its traces unless ``skip_traces``."""
    run_id, read_at_ms = run.info.run_id, int(time.time() * 1000)
    tags = {k: v for k, v in run.data.tags.items() if k not in _RUN_SYNC_TAGS}
    metrics = {key: src.get_metric_history(run_id, key) for key in run.data.metrics}
    inputs = list(run.inputs.dataset_inputs) if run.inputs else []
    traces = None if skip_traces else trace_copier.read(run.info.experiment_id, run_id)
    artifacts = _local_artifacts(src, run)
    params = dict(run.data.params)
    full = src.get_run(run_id)  # search_runs leaves out the model inputs
    links = local_links(params, tags, full, traces)
    models = link_copier.model_state(links.models)
    return LocalRun(
        run, read_at_ms, params, tags, metrics, inputs, artifacts, traces, links, models
    )


def _local_artifacts(src: MlflowClient, run: Run) -> list[Artifact]:
    root = _local_dir(run.info.artifact_uri)
    if root is None:  # a remote artifact store: list it, download when uploading
        files = walk_artifacts(src, run.info.run_id)
        return [Artifact(f.path, f.file_size, None, None) for f in files]
    found = []
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
            found.append(Artifact(rel, stat.st_size, stat.st_mtime_ns, path))
    return found


def parse_fingerprint(tags: dict[str, str]) -> dict[str, Any] | None:
    try:
        data = json.loads(tags.get(TAG_FINGERPRINT) or "null")
    except ValueError:
        return None
    ok = isinstance(data, dict) and data.get("v") == FINGERPRINT_VERSION
    return data if ok and isinstance(data.get("sections"), dict) else None
