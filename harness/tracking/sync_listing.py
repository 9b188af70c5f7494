"""What a sync lists in a store, local or target: an experiment's runs (every page, oldest
first), a run's artifact files (every folder walked), and runs ordered parents first (so a
parent's copy exists before a child's ``mlflow.parentRunId`` names it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness.tracking.sync_traces import pages

if TYPE_CHECKING:
    from mlflow.entities import Run

__all__ = ["parents_first", "search_runs", "walk_artifacts"]


def search_runs(client: Any, experiment_id: str, view: Any) -> list[Run]:
    def fetch(token: str | None) -> Any:
        order = ["attributes.start_time ASC"]
        return client.search_runs([experiment_id], "", view, 1000, order, token)

    return list(pages(fetch))


def walk_artifacts(client: Any, run_id: str, path: str | None = None) -> Iterator[Any]:
    for item in client.list_artifacts(run_id, path):
        yield from walk_artifacts(client, run_id, item.path) if item.is_dir else (item,)


def parents_first(runs: list[Run]) -> list[Run]:
    """Order runs so a parent is copied before its children (to map mlflow.parentRunId)."""
    by_id = {r.info.run_id: r for r in runs}

    def depth(run: Run) -> int:
        seen = set()
        while (parent := run.data.tags.get("mlflow.parentRunId")) in by_id and parent not in seen:
            seen.add(parent)
            run = by_id[parent]
        return len(seen)

    return sorted(runs, key=depth)  # stable: start-time order within a depth
