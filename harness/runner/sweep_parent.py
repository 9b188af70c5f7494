"""A sweep's MLflow parent run: opened before its children run, and opened again when it
is deleted while the sweep runs (``harness runs delete`` of the only run stored so far
takes the parent with it), so no child is logged under a deleted parent."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness.config import Home
from harness.runner.config import RunConfig

__all__ = ["parent_deleted", "reopened_note", "start_parent", "stored_runs"]


def start_parent(
    base: RunConfig,
    grid: Mapping[str, Sequence[Any]],
    values: Sequence[Mapping[str, Any]],
    home: Home,
) -> str:
    """Open the sweep's parent run, with the sweep's params (``values``: each point's
    values, as shown); its id. Raises HarnessError when MLflow fails."""
    from harness.tracking.sweep_log import start_parent_run

    params: dict[str, Any] = {"dataset": base.data, "sweep.runs": len(values)}
    if "model" not in grid:
        params["model"] = base.model
    params.update({f"param.{k}": v for k, v in sorted(base.params.items())})
    for axis in grid:
        labels = _unique([point[axis] for point in values])
        params[f"sweep.{axis}"] = json.dumps(labels, ensure_ascii=False, default=str)
    return start_parent_run(
        tracking_uri=home.tracking_uri,
        experiment=base.experiment,
        run_name=base.run_name or f"sweep {' x '.join(grid)}",
        params=params,
        started_at=time.time(),
    )


def parent_deleted(run_id: str, home: Home) -> bool:
    """Whether the parent run was deleted since it was opened. Raises HarnessError when
    MLflow fails."""
    from harness.tracking.sweep_log import parent_run_deleted

    return parent_run_deleted(run_id, tracking_uri=home.tracking_uri)


def stored_runs(sweep_id: str, home: Home) -> set[str]:
    """The ids of the sweep's runs still stored in DuckDB (``harness runs delete`` of its
    only run so far deletes the parent too, which the sweep then opens again)."""
    from harness.store.sweeps import sweep_children

    return {child.run_id for child in sweep_children(home.db_path, sweep_id)}


def reopened_note(sweep_id: str, old: str, new: str, first: str | None, gone: list[str]) -> str:
    """What the sweep says when its parent ``old`` was deleted and ``new`` opened before
    its run named ``first``; ``gone``: its runs deleted with it, left out of the sweep."""
    said = (
        f"MLflow parent run {old} of sweep {sweep_id} was deleted while the sweep ran; "
        f"the runs from {first} on are under a new parent run {new}"
    )
    if gone:
        was = "was deleted with it and is" if len(gone) == 1 else "were deleted with it and are"
        said += f"; {', '.join(gone)} {was} left out of the sweep"
    return said


def _unique(values: list[Any]) -> list[Any]:
    """Values in first-seen order, without repeats (by their JSON form: 0 and 0.0 differ)."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return list(seen.values())
