"""Copying runs to the target: what the target lacks, and the writes.

``Syncer`` does the work of :func:`harness.tracking.sync.sync` (whose docstring says what
is copied and how a change is noticed): it reads each local run with its fingerprint
(:mod:`harness.tracking.sync_local`), plans what is missing on the target (``_plan``) and
copies it (``_apply``), every write through ``_write``. Traces are copied by
:mod:`harness.tracking.sync_traces`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, Interrupted, TrackingError
from harness.tracking.sync_experiments import (
    TAG_SOURCE_EXPERIMENT_NAME,
    TAG_TARGET_KEPT,
    TAG_TARGET_NAME,
    artifacts_beside,
    kept_copy,
    kept_tags,
    renamed_copy,
    source_tags,
    stale_tags,
)
from harness.tracking.sync_links import LinkCopier
from harness.tracking.sync_listing import parents_first, search_runs, walk_artifacts
from harness.tracking.sync_local import (
    FINGERPRINT_VERSION,
    SECTIONS,
    TAG_FINGERPRINT,
    TAG_SOURCE_RUN,
    TAG_SOURCE_STORE,
    TAGS_PENDING,
    TRACES_SKIPPED,
    Artifact,
    LocalRun,
    input_key,
    metric_key,
    parse_fingerprint,
    read_local,
)
from harness.tracking.sync_report import COUNTS, RunSync, SyncReport, describe_run
from harness.tracking.sync_target import (
    SyncTarget,
    check_reachable,
    connection_lost,
    display_uri,
    without_credentials,
)
from harness.tracking.sync_traces import TraceCopier, TracePlan, pages

if TYPE_CHECKING:
    from mlflow.entities import Run

    from harness.interrupt import StopRequest

__all__ = ["KILL_AFTER_ENV", "TAG_FINGERPRINT", "TAG_SOURCE_RUN", "WORKERS", "Syncer"]

MAX_PARAM_VALUE = 6000  # MLflow's limit
WORKERS = 4  # concurrent requests to the target
KILL_AFTER_ENV = "HARNESS_SYNC_TEST_KILL_AFTER_WRITES"
KILL_SIGNAL_ENV = "HARNESS_SYNC_TEST_KILL_SIGNAL"  # KILL (the default), INT or TERM

# Tags whose value is a local run's id: the copy names that run's copy.
_RUN_ID_TAGS = ("mlflow.parentRunId", "harness.sweep.best_run")


@dataclass
class _RunPlan:
    params: list[Any] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # target model ids to link as inputs
    artifacts: list[Artifact] = field(default_factory=list)
    traces: list[TracePlan] = field(default_factory=list)
    traces_gone: list[str] = field(default_factory=list)  # target trace ids to delete
    # Run id tags naming a run not copied yet (a sweep's best child): set after it is.
    tags_later: list[str] = field(default_factory=list)
    terminate: bool = False


# --- the sync ---------------------------------------------------------------------------


class Syncer:
    def __init__(
        self,
        source_uri: str,
        target: SyncTarget,
        dry_run: bool,
        say: Callable[[str], None],
        *,
        traces: bool,
        stop: StopRequest | None = None,
        target_store: str | None = None,
    ) -> None:
        """``target_store``: the URI to read the target from instead of its own (a dry
        run's empty stand-in for a database that does not exist yet)."""
        from mlflow import MlflowClient
        from mlflow.tracing.client import TracingClient
        from mlflow.utils.uri import is_databricks_uri

        store_uri = target_store or target.tracking_uri
        self.src, self.dst = MlflowClient(source_uri), MlflowClient(store_uri)
        self.target, self.dry_run, self.say = target, dry_run, say
        self.shown = target.label or f"the tracking server {display_uri(target.tracking_uri)}"
        # Names the local store on every copy: its URI as given, not as shown (masked).
        self.source_id = hashlib.sha256(without_credentials(source_uri).encode()).hexdigest()[:16]
        self.report = SyncReport(target=display_uri(target.tracking_uri), dry_run=dry_run)
        self.report.traces_skipped = not traces
        self.id_map: dict[str, str] = {}  # local run id -> target run id
        self._uncopied: set[str] = set()  # local runs of the experiment with no copy yet
        self.is_databricks = is_databricks_uri(target.tracking_uri)
        self.links = LinkCopier(
            self.src,
            self.dst,
            self._write,
            id_map=self.id_map,
            prompts=not self.is_databricks,  # Unity Catalog names: see sync_links
            dry_run=dry_run,
        )
        self.copier = TraceCopier(
            TracingClient(source_uri),
            self.dst,
            TracingClient(store_uri),
            self._write,
            id_map=self.id_map,
            links=self.links,
            say=say,
            # Databricks keeps spans as an artifact per trace; MLflow servers take OTLP in bulk.
            bulk_spans=not self.is_databricks if target.bulk_spans is None else target.bulk_spans,
            workers=WORKERS,
        )
        self.stop = stop  # after a signal, no write starts: those under way finish
        self._writes = 0  # writes started
        # The run being synced and _writes when it began: a sync cut off names it.
        self._current: tuple[RunSync, int] | None = None
        self._kill_after = int(os.environ.get(KILL_AFTER_ENV) or 0)
        self._kill_with = getattr(signal, "SIG" + os.environ.get(KILL_SIGNAL_ENV, "KILL"))
        self._lock = threading.Lock()
        # A write that found the target gone after MLflow's retries (~4 minutes): the writes
        # queued behind it in the trace copier's threads fail at once with it instead of
        # waiting as long again each (a sync then took 492 s to stop, not ~250).
        self._lost: BaseException | None = None

    def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Every write to the target goes through here (the resume tests count them)."""
        self._check_stop()
        if self._lost is not None:
            raise self._lost
        with self._lock:
            self._writes += 1
            if self._kill_after and self._writes > self._kill_after:
                self._kill_after = 0  # once: a caught signal lets this write finish
                os.kill(os.getpid(), self._kill_with)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # raised as it is; remembered if the target is gone
            if connection_lost(exc):
                self._lost = exc
            raise

    def partly_copied(self) -> str | None:
        """The run (``experiment/name``) a sync stopped in the middle of, once part of it
        is on the target; None when it stopped between runs."""
        if self._current is None:
            return None
        result, written_before = self._current
        if result.target_run_id is None or self._writes == written_before:
            return None
        return f"{result.experiment}/{result.run_name or result.run_id}"

    def _check_stop(self) -> None:
        """Raise ``Interrupted`` once a signal asked the sync to stop."""
        if self.stop is not None and self.stop.signum is not None:
            raise Interrupted(f"interrupted by {self.stop.signal_name}", signum=self.stop.signum)

    def preflight(self) -> None:
        """Fail fast, in one line, when the target is unreachable or refuses us."""
        check_reachable(self.dst, self.target, self.shown, databricks=self.is_databricks)

    def local_experiments(self, names: list[str] | None) -> list[Any]:
        from mlflow.entities import ViewType

        def fetch(token: str | None) -> Any:
            return self.src.search_experiments(ViewType.ACTIVE_ONLY, 1000, page_token=token)

        found = list(pages(fetch))
        local = sorted(e.name for e in found)
        for name in names or ():
            if name not in local:
                raise ConfigError(
                    f"no local experiment named '{name}'; the local ones: "
                    + (", ".join(local) or "none")
                )
        found = [e for e in found if names is None or e.name in names]
        return sorted(found, key=lambda e: (e.creation_time or 0, e.name))

    def sync_experiment(self, experiment: Any) -> None:
        from mlflow.entities import ViewType

        runs = search_runs(self.src, experiment.experiment_id, ViewType.ACTIVE_ONLY)
        if not runs:
            return
        mapper = self.target.experiment_path
        name = mapper(experiment.name) if mapper else experiment.name
        existing = self.dst.get_experiment_by_name(name)
        if existing is not None and self.dry_run and name in self._renamed_away():
            existing = None  # a dry run renamed it away, in its plan
        # Renamed locally since a sync? Its copy follows (below). On the target? It stays.
        renamed = kept = None
        if existing is None:
            existing = renamed = renamed_copy(self.dst, self.source_id, experiment, mapper)
        if existing is None:
            existing = kept = kept_copy(self.dst, self.source_id, experiment, name, mapper)
        elif renamed is None and existing.lifecycle_stage != "deleted" and not self.dry_run:
            # A later rename, here or on the target, is then recognised.
            self._tag(existing, stale_tags(existing, self.source_id, experiment))
        if existing is not None and existing.lifecycle_stage == "deleted":
            # A mapped target (--databricks --experiment PATH) can also go elsewhere.
            elsewhere = ", or sync into another experiment" if mapper else ""
            raise TrackingError(
                f"experiment '{name}' is deleted on {self.shown}: restore it there "
                f"(`mlflow experiments restore -x {existing.experiment_id}` with "
                f"MLFLOW_TRACKING_URI set to it){elsewhere}, then sync again"
            )
        copies: dict[str, Run] = {}
        held = search_runs(self.dst, existing.experiment_id, ViewType.ALL) if existing else []
        if renamed is not None:
            name = self._rename_experiment(renamed, name, experiment, held)
        elif kept is not None:
            name = self._keep_name(kept, name, experiment)
        for run in held:
            source_id = run.data.tags.get(TAG_SOURCE_RUN)
            # Two copies of one run (made by hand?): prefer the one whose sync completed.
            if source_id and TAG_FINGERPRINT in copies.get(source_id, run).data.tags:
                copies.setdefault(source_id, run)
            elif source_id:
                copies[source_id] = run
        for source_id, copied in copies.items():
            self.id_map.setdefault(source_id, copied.info.run_id)
        self._uncopied = {r.info.run_id for r in runs} - set(self.id_map)
        slot: list[str | None] = [existing.experiment_id if existing else None]

        def experiment_id() -> str:  # created when the first run needs it
            if slot[0] is None:
                slot[0] = self._create_experiment(name, experiment)
            return slot[0] or ""  # "" in a dry run

        later: list[tuple[Run, RunSync]] = []
        for run in parents_first(runs):
            # Also between runs: a run to skip, and a dry run, write nothing to stop at.
            self._check_stop()
            result = RunSync(run.info.run_id, experiment.name, name, "create", run.info.run_name)
            self._current = (result, self._writes)
            if self._sync_run(run, result, copies.get(run.info.run_id), experiment_id):
                later.append((run, result))
            self._current = None
            self.report.runs.append(result)
            self.say(describe_run(result, self.dry_run, self.report.traces_skipped))
        for run, result in later:  # every run is copied now: set the tags that name one
            assert result.target_run_id is not None  # (result counted them already)
            again = RunSync(run.info.run_id, experiment.name, name, "update", run.info.run_name)
            self._current = (again, self._writes)
            self._sync_run(run, again, self.dst.get_run(result.target_run_id), experiment_id)
            self._current = None

    def _renamed_away(self) -> set[str]:
        return {old for old, _new in self.report.experiments_renamed}

    def _rename_experiment(self, copy: Any, name: str, local: Any, held: list[Run]) -> str:
        """Rename the copy of ``local`` to ``name``, as it was renamed locally, unless it
        holds runs synced from elsewhere (a shared experiment); return its name."""
        if any(r.data.tags.get(TAG_SOURCE_STORE) != self.source_id for r in held):
            self.say(
                f"kept experiment '{copy.name}' on {self.shown}: renamed locally to "
                f"'{local.name}' since the last sync, but it holds runs synced from elsewhere"
            )
            self._tag(copy, kept_tags(copy, name, local))  # said once: kept_copy finds it
            return str(copy.name)
        self.report.experiments_renamed.append([copy.name, name])
        verb = "would rename" if self.dry_run else "renamed"
        self.say(
            f"{verb} experiment '{copy.name}' to '{name}' on {self.shown} "
            "(renamed locally since the last sync)"
        )
        if not self.dry_run:
            if self.target.prepare_experiment:
                self.target.prepare_experiment(name)
            self._write(self.dst.rename_experiment, copy.experiment_id, name)
        self._tag(copy, {TAG_SOURCE_EXPERIMENT_NAME: local.name, TAG_TARGET_NAME: name})
        return name

    def _keep_name(self, copy: Any, name: str, local: Any) -> str:
        """Sync into ``copy``, renamed on the target since the last sync: it keeps that
        name, said once."""
        if copy.tags.get(TAG_TARGET_KEPT) != copy.name:
            self.say(
                f"syncing into experiment '{copy.name}' on {self.shown}, the copy of "
                f"'{local.name}' renamed there since the last sync (it keeps that name)"
            )
        self._tag(copy, kept_tags(copy, name, local))
        return str(copy.name)

    def _tag(self, experiment: Any, tags: dict[str, str]) -> None:
        for key, value in tags.items() if not self.dry_run else ():
            self._write(self.dst.set_experiment_tag, experiment.experiment_id, key, value)

    def _create_experiment(self, name: str, local: Any) -> str:
        self.report.experiments_created.append(name)
        if self.dry_run:
            return ""
        if self.target.prepare_experiment:
            self.target.prepare_experiment(name)
        keep = [k for k in local.tags if not k.startswith("mlflow.") or k == "mlflow.note.content"]
        tags = {k: local.tags[k] for k in keep} | source_tags(self.source_id, local, name)
        location = artifacts_beside(self.target.tracking_uri, name)
        return self._write(self.dst.create_experiment, name, artifact_location=location, tags=tags)

    def _sync_run(
        self, run: Run, result: RunSync, target_run: Run | None, experiment_id: Callable[[], str]
    ) -> bool:
        """Sync one run into ``result``; True when a tag naming a run not copied yet waits
        (a sweep's best child): sync the run again once every run is copied."""
        run_id = run.info.run_id
        if target_run is not None:
            result.action, result.target_run_id = "update", target_run.info.run_id
            self.id_map[run_id] = target_run.info.run_id
            if target_run.info.lifecycle_stage == "deleted":
                result.action = "skip"
                result.warnings.append("the copy is deleted on the target; restore it to sync")
                return False
        local = read_local(
            self.src, run, self.copier, self.links, skip_traces=self.report.traces_skipped
        )
        now = local.fingerprint()
        before = parse_fingerprint(target_run.data.tags if target_run else {})
        compared = [s for s in SECTIONS if s in now]  # without traces when they are skipped
        if before is not None and all(before["sections"].get(s) == now[s] for s in compared):
            result.action = "skip"
            return False
        changed = {s for s in compared if before is None or before["sections"].get(s) != now[s]}
        if "links" in changed:  # a copy made before links were copied: name their copies
            changed |= {"params", "tags", "traces"} & set(compared)
        if "traces" not in now:  # keep the target's mark, so a sync with traces copies them
            previous = before["sections"].get("traces") if before else None
            now["traces"] = previous or TRACES_SKIPPED
        experiment = experiment_id()  # in a dry run, only noted as to be created
        if target_run is None and not self.dry_run:  # first: a model names its source run
            result.target_run_id = self._create_run(local, experiment)
        if local.links:  # the copy names them: they exist on the target first
            self.links.copy(local.links, experiment, result)
        plan = self._plan(local, target_run, changed, before["at"] if before else None, result)
        for name in COUNTS[:-1]:
            setattr(result, name, len(getattr(plan, name)))
        result.assessments = sum(len(p.assessments) for p in plan.traces)
        result.traces_removed = len(plan.traces_gone)
        result.tags += len(plan.tags_later)
        if self.dry_run:
            return False
        self._uncopied.discard(run_id)
        if plan.tags_later:  # a sync cut off before they are set sets them next time
            now["tags"] = TAGS_PENDING
        assert result.target_run_id is not None
        self._apply(local, plan, result.target_run_id, experiment)
        stamp = {"v": FINGERPRINT_VERSION, "at": local.read_at_ms, "sections": now}
        stamp_text = json.dumps(stamp, separators=(",", ":"))
        self._write(self.dst.set_tag, result.target_run_id, TAG_FINGERPRINT, stamp_text)
        return bool(plan.tags_later)

    def _create_run(self, local: LocalRun, experiment_id: str) -> str:
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
        local: LocalRun,
        target_run: Run | None,
        changed: set[str],
        synced_at_ms: int | None,
        result: RunSync,
    ) -> _RunPlan:
        from mlflow.entities import Param

        plan = _RunPlan()
        have = target_run.data if target_run else None
        if "params" in changed:
            for key, value in sorted(local.params.items()):
                value = self.links.param(key, value)  # prompt_uri: the target's version
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
                if key in _RUN_ID_TAGS:
                    if value in self._uncopied and value != local.run.info.run_id:
                        plan.tags_later.append(key)
                        continue
                    value = self.id_map.get(value, value)
                value = self.links.tag(key, value)  # a prompt version's or model's copy
                if have is None or have.tags.get(key) != value:
                    plan.tags[key] = value
        if "metrics" in changed:
            for key, history in sorted(local.metrics.items()):
                present: set[tuple[int, int, str]] = set()
                if target_run is not None and have is not None and key in have.metrics:
                    target_history = self.dst.get_metric_history(target_run.info.run_id, key)
                    present = set(map(metric_key, target_history))
                missing = [m for m in history if metric_key(m) not in present]
                # Logged against the model's copy when they were against the local model.
                plan.metrics += [self.links.metric(local.run.info.run_id, m) for m in missing]
        if "inputs" in changed:
            inputs = target_run.inputs.dataset_inputs if target_run and target_run.inputs else []
            present_inputs = set(map(input_key, inputs))
            plan.inputs = [i for i in local.inputs if input_key(i) not in present_inputs]
        if "links" in changed:
            models = self.links.model_inputs(local.links)
            if models and target_run is not None:  # search_runs leaves out the model inputs
                inputs_now = self.dst.get_run(target_run.info.run_id).inputs
                linked = {m.model_id for m in (inputs_now.model_inputs if inputs_now else ())}
                models = [m for m in models if m not in linked]
            plan.models = models
        if "artifacts" in changed:
            files = walk_artifacts(self.dst, target_run.info.run_id) if target_run else ()
            sizes = {f.path: f.file_size for f in files}
            since_ns = (synced_at_ms or 0) * 1_000_000 or None
            for artifact in local.artifacts:
                changed_since = since_ns and artifact.mtime_ns and artifact.mtime_ns > since_ns
                if sizes.get(artifact.path) != artifact.size or changed_since:
                    plan.artifacts.append(artifact)
        if "traces" in changed and local.traces is not None:
            plan.traces, plan.traces_gone = self.copier.plan(local.traces, target_run)
        if "info" in changed:
            info = local.run.info
            now = (info.status, info.end_time)
            was = (target_run.info.status, target_run.info.end_time) if target_run else None
            plan.terminate = info.status != "RUNNING" and was != now
        return plan

    # --- copying it -----------------------------------------------------------------------

    def _apply(self, local: LocalRun, plan: _RunPlan, run_id: str, experiment_id: str) -> None:
        from mlflow.entities import LoggedModelInput, RunStatus, RunTag

        tags = [RunTag(k, v) for k, v in plan.tags.items()]
        if plan.params or plan.metrics or tags:  # the client splits it by the REST limits
            self._write(self.dst.log_batch, run_id, plan.metrics, plan.params, tags, True)
        if plan.inputs or plan.models:
            models = [LoggedModelInput(m) for m in plan.models] or None
            self._write(self.dst.log_inputs, run_id, datasets=plan.inputs or None, models=models)
        if plan.artifacts:
            self._upload(local, plan.artifacts, run_id)
        if plan.traces:
            self.copier.copy(plan.traces, local.run.info.run_id, run_id, experiment_id)
        if plan.traces_gone:  # after the new ones: a sync cut off here leaves no row out
            self.copier.delete(experiment_id, plan.traces_gone)
        if plan.terminate:
            info = local.run.info
            # The store's call: MlflowClient.set_terminated also prints a "View run" URL.
            store = self.dst._tracking_client.store
            status = RunStatus.from_string(info.status)
            self._write(store.update_run_info, run_id, status, info.end_time, None)

    def _upload(self, local: LocalRun, artifacts: list[Artifact], run_id: str) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-sync-") as tmp:

            def upload(artifact: Artifact) -> None:
                path = artifact.local_file
                if path is None:  # a remote source: fetch the file first
                    fetched = self.src.download_artifacts(local.run.info.run_id, artifact.path, tmp)
                    path = Path(fetched)
                parent = artifact.path.rpartition("/")[0] or None
                self._write(self.dst.log_artifact, run_id, str(path), artifact_path=parent)

            with ThreadPoolExecutor(WORKERS, thread_name_prefix="harness-sync") as pool:
                list(pool.map(upload, artifacts))
