"""The experiments a sync writes on its target, and finding a local experiment's copy
there: under its name or, once the local experiment was renamed after a sync, by the
source tags the sync wrote on the copy.

A target experiment the sync creates carries ``harness.source_experiment`` (the local
store's id and the experiment's id there, which a rename keeps) and
``harness.source_experiment_name`` (the local name it was last synced under). One found by
its name and carrying no such tag yet (made by hand or by an earlier harness) gets both,
so a rename after that sync is recognised too. An experiment whose name is free on the
target but whose tagged copy was made under the old local name (and sits where the old
name maps to) is that copy: the sync renames it to follow the local name (unless it holds
runs synced from another store: a shared experiment keeps its name), and every run copied
there is found again, so nothing is copied twice.

A copy also carries ``harness.target_experiment_name``: the name the sync gave it, where
this mapping puts the local experiment. A copy renamed on the target since (by a team,
or a shared copy kept under its name) no longer has that name; it is found by the tags and
keeps its new name, which ``harness.target_experiment_kept`` records once the sync said so.
The tags tell a second mapping's copy (``mirror/NAME``) apart: its recorded name is what
that mapping gives, so a sync mapped elsewhere never takes it for its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from harness.tracking.mlflow_store import artifact_root_for

__all__ = [
    "TAG_SOURCE_EXPERIMENT",
    "TAG_SOURCE_EXPERIMENT_NAME",
    "TAG_TARGET_KEPT",
    "TAG_TARGET_NAME",
    "artifacts_beside",
    "kept_copy",
    "kept_tags",
    "renamed_copy",
    "source_tags",
    "stale_tags",
]

TAG_SOURCE_EXPERIMENT = "harness.source_experiment"
TAG_SOURCE_EXPERIMENT_NAME = "harness.source_experiment_name"
TAG_TARGET_NAME = "harness.target_experiment_name"
TAG_TARGET_KEPT = "harness.target_experiment_kept"


def source_key(source_id: str, local: Any) -> str:
    """What ``harness.source_experiment`` holds: the local store's id and the experiment's."""
    return f"{source_id}:{local.experiment_id}"


def source_tags(source_id: str, local: Any, name: str) -> dict[str, str]:
    """The tags of a copy of ``local`` the sync gives ``name`` on the target."""
    return {
        TAG_SOURCE_EXPERIMENT: source_key(source_id, local),
        TAG_SOURCE_EXPERIMENT_NAME: local.name,
        TAG_TARGET_NAME: name,
    }


def stale_tags(found: Any, source_id: str, local: Any) -> dict[str, str]:
    """The source tags to set on ``found`` (the copy found by name): those it lacks or has
    from an older name when it is ours or nobody's; none when it is another experiment's
    (several local experiments synced into one target experiment)."""
    key = found.tags.get(TAG_SOURCE_EXPERIMENT)
    if key is not None and key != source_key(source_id, local):
        return {}
    wanted = source_tags(source_id, local, found.name)
    return {k: v for k, v in wanted.items() if found.tags.get(k) != v}


def kept_tags(copy: Any, name: str, local: Any) -> dict[str, str]:
    """The tags to set on ``copy``, synced into under its own name instead of ``name`` (the
    local name's target name): found again by :func:`kept_copy`, said once."""
    wanted = {TAG_SOURCE_EXPERIMENT_NAME: local.name, TAG_TARGET_NAME: name}
    wanted[TAG_TARGET_KEPT] = copy.name
    return {k: v for k, v in wanted.items() if copy.tags.get(k) != v}


def _tagged(dst: Any, source_id: str, local: Any) -> list[Any]:
    """The active target experiments whose source tag names ``local``."""
    from mlflow.entities import ViewType

    key = source_key(source_id, local)
    found = dst.search_experiments(
        ViewType.ACTIVE_ONLY, 1000, f"tags.`{TAG_SOURCE_EXPERIMENT}` = '{key}'"
    )
    return list(found)


def renamed_copy(
    dst: Any, source_id: str, local: Any, mapper: Callable[[str], str] | None
) -> Any | None:
    """The active target experiment copied from ``local`` under an older local name, where
    that name maps to (``mapper``: the target's name for a local one); None when none is."""
    for experiment in _tagged(dst, source_id, local):
        old = experiment.tags.get(TAG_SOURCE_EXPERIMENT_NAME)
        if old and old != local.name and experiment.name == (mapper(old) if mapper else old):
            return experiment
    return None


def kept_copy(
    dst: Any, source_id: str, local: Any, name: str, mapper: Callable[[str], str] | None
) -> Any | None:
    """The active target experiment copied from ``local`` by this mapping (it was given
    ``name``, or the name the last synced local name maps to) that has another name now:
    renamed on the target, or kept there; None when none is."""
    for experiment in _tagged(dst, source_id, local):
        given = experiment.tags.get(TAG_TARGET_NAME)
        old = experiment.tags.get(TAG_SOURCE_EXPERIMENT_NAME) or local.name
        if given and given != experiment.name and given in (name, mapper(old) if mapper else old):
            return experiment
    return None


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
