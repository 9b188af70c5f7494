"""The experiments a sync writes on its target."""

from __future__ import annotations

import hashlib

from harness.tracking.mlflow_store import artifact_root_for

__all__ = ["artifacts_beside"]


def artifacts_beside(tracking_uri: str, experiment: str) -> str | None:
    """Where a new experiment in a SQLite target keeps its artifacts: beside the database
    (``artifacts/<name>-<hash>``), as the local store does. MLflow's default for a bare
    SQLite URI is ``./mlruns`` of whatever folder the sync ran in: inside the project home,
    often, which a backup must not depend on. None (the server's choice) for any other."""
    root = artifact_root_for(tracking_uri)
    if root is None:
        return None
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in experiment)[:40]
    digest = hashlib.sha256(experiment.encode()).hexdigest()[:8]
    return (root / f"{slug.strip('-.') or 'experiment'}-{digest}").as_uri()
