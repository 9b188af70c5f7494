"""Copy local MLflow experiments and runs to another tracking server (``harness sync``).

Copied per local run: params, every metric value with its step and timestamp, tags,
artifacts, dataset inputs, start/end time and status, and the run's traces with their
assessments (:mod:`harness.tracking.sync_traces`), unless ``traces=False``; and the prompt
versions and logged models the run links to, which the copy names by their target
versions and ids (:mod:`harness.tracking.sync_links`).

Finding a copy again: a target run carries the tag ``harness.source_run_id``, set when it
is created, so even a run cut off just after creation is found; traces and assessments
carry their own marks (see ``sync_traces``). A second sync finds these instead of
creating anything.

Noticing a change: the last write to a target run is its tag ``harness.sync_fingerprint``,
a short hash per section of the local run (info, params, tags, metrics, inputs, artifacts,
traces, and links when it names a prompt version or logged model) and the time the run was
read. Equal hashes: skip, with no further reads. No tag
(an interrupted sync) or other hashes: the changed sections are compared with the target
and what is missing there is copied, so a killed sync resumes and a run changed locally
is updated in place, never duplicated. A sync without traces neither reads nor compares
them and keeps the target's traces hash (``"skipped"`` for a new copy), so the next sync
with traces copies them. In an update:

- params are immutable in MLflow: missing ones are logged, one whose value differs keeps
  the target's value with a warning in the report (values are cut to 6000 characters);
- tags missing or different are set (those naming a run, ``mlflow.parentRunId`` and
  ``harness.sweep.best_run``, name its copy, set once that copy exists); metric values
  (step, timestamp, value) missing from the target history are logged; artifacts missing
  there, of another size, or modified locally since the last sync read the run (rsync's
  size + mtime rule) are uploaded;
- missing traces are created, existing ones completed; a copied trace whose local trace
  is gone (a resume replaced it) is deleted; nothing else is deleted on the target, and a
  copy deleted there is left alone (``skip``).

Requests respect the REST limits (``MlflowClient.log_batch`` splits by 1000 metrics, 100
params, 100 tags). One sync at a time per local store: a sync that writes holds the OS
file lock ``harness-sync.lock`` beside the SQLite file (``<home>/mlruns``), and a second
one fails at once; a dry run takes no lock. A killed sync leaves no lock behind.

Testing hook: with ``HARNESS_SYNC_TEST_KILL_AFTER_WRITES=N`` set, the process SIGKILLs
itself just before its (N+1)-th write to the target (``HARNESS_SYNC_TEST_KILL_SIGNAL=INT``
or ``TERM``: sends itself that signal instead, which stops the sync gracefully).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import HarnessError, Interrupted, TrackingError
from harness.interrupt import StopRequest, stop_on_signals
from harness.secrets import redact
from harness.tracking.databricks_auth import databricks_target
from harness.tracking.mlflow_store import quiet_store_creation
from harness.tracking.sync_report import RunSync, SyncPlan, SyncReport
from harness.tracking.sync_runs import Syncer
from harness.tracking.sync_target import (
    LOCK_FILE,
    SyncTarget,
    check_not_the_source,
    connection_lost,
    display_uri,
    first_line,
    sync_lock,
)
from harness.wording import plural

__all__ = [
    "LOCK_FILE",
    "RunSync",
    "SyncPlan",
    "SyncReport",
    "SyncTarget",
    "databricks_target",
    "sync",
]


def sync(
    source_tracking_uri: str,
    target: SyncTarget,
    *,
    experiments: list[str] | None = None,
    dry_run: bool = False,
    traces: bool = True,
    progress: Callable[[str], None] | None = None,
    stop: StopRequest | None = None,
) -> SyncReport:
    """Copy the local experiments (all, or those named) and their runs to ``target``.

    Idempotent and incremental (see the module docstring). With ``traces=False`` traces
    and their assessments are neither read nor copied, and a later sync with traces copies
    them. ``progress`` receives one line per run. Raises ``TrackingError`` with a one-line
    message when the target cannot be reached, refuses the credentials or fails, or when
    another sync from the same local store is running; ``ConfigError`` for an unknown
    experiment; ``Interrupted`` (exit 130/143) after SIGINT or SIGTERM: no write starts
    after the signal, those under way finish, and a second sync goes on from there.
    ``stop`` is the caller's own stop request (``harness sync``'s: ``until_shown``).
    """
    check_not_the_source(source_tracking_uri, target.tracking_uri)
    started = time.monotonic()
    say = progress or (lambda _m: None)
    syncer: Syncer | None = None
    try:
        with (
            stop_on_signals(stop) as stop,
            sync_lock(source_tracking_uri, hold=not dry_run),
            quiet_store_creation(),  # a new sqlite:/// target: MLflow's INFO lines
            _stand_in(target.tracking_uri, dry_run) as target_store,
        ):
            syncer = Syncer(
                source_tracking_uri,
                target,
                dry_run,
                say,
                traces=traces,
                stop=stop,
                target_store=target_store,
            )
            local = syncer.local_experiments(experiments)  # a name mistyped: said first
            syncer.preflight()
            for experiment in local:
                syncer.sync_experiment(experiment)
    except Interrupted as exc:
        said, goes_on = _stopped_after(syncer)
        raise Interrupted(
            f"sync {exc.message} {said}; {goes_on}",
            signum=exc.signum,
            result=syncer.report if syncer is not None else None,
        ) from None
    except HarnessError as exc:
        exc.message = redact(exc.message, target.secrets)
        raise
    except Exception as exc:  # MLflow, HTTP and OS errors: one line, no secret
        shown = target.label or display_uri(target.tracking_uri)
        lost = connection_lost(exc)
        if lost is not None:  # the target went away half-way (its retries are spent)
            said, goes_on = _stopped_after(syncer)
            raise TrackingError(
                f"sync to {shown} stopped {said}: the target stopped answering ({lost}); {goes_on}"
            ) from exc
        reason = redact(first_line(exc), target.secrets)
        if "PERMISSION_DENIED" in reason:  # it let us read (the preflight) but not write
            reason += "; the credentials may read but not write there"
        raise TrackingError(f"sync to {shown} failed: {reason}") from exc
    syncer.report.seconds = time.monotonic() - started
    return syncer.report


def _stopped_after(syncer: Syncer | None) -> tuple[str, str]:
    """How far a sync that stopped half-way got, and that the same sync goes on from there
    (completing the run it stopped in the middle of, if any)."""
    done = len(syncer.report.runs) if syncer is not None else 0
    partly = syncer.partly_copied() if syncer is not None else None
    if partly is None:
        return (
            f"after {plural(done, 'run')}",
            "what was copied stays, and the same `harness sync` again goes on from there",
        )
    return (
        f"after {plural(done, 'run')} and part of run {partly}",
        "what was copied stays, and the same `harness sync` again completes that run and "
        "goes on from there",
    )


@contextlib.contextmanager
def _stand_in(tracking_uri: str, dry_run: bool) -> Iterator[str | None]:
    """For a dry run to a SQLite database that does not exist yet, an empty store in a
    temporary folder to plan against (opening the target would create it); else None."""
    db_path = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
    if not (dry_run and tracking_uri.startswith("sqlite:///") and db_path):
        yield None
        return
    if db_path == ":memory:" or Path(db_path).exists():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="harness-sync-dry-run-") as scratch:
        yield f"sqlite:///{Path(scratch) / 'mlflow.db'}"
