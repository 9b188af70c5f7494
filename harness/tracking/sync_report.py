"""What a sync did, or in a dry run would do: per run, and in total (``harness sync --json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.wording import plural

__all__ = ["COUNTS", "RunSync", "SyncPlan", "SyncReport", "describe_run"]

COUNTS = ("params", "metrics", "tags", "inputs", "artifacts", "traces", "assessments")
ACTIONS = ("create", "update", "skip")


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
    traces_removed: int = 0  # copies of local traces that are gone, deleted on the target
    prompts: int = 0  # prompt versions created on the target for this run (see sync_links)
    models: int = 0  # logged models created on the target for this run
    model_tags: int = 0  # tags set on logged models found on the target (changed locally)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    """The result of :func:`sync`; with ``dry_run`` it is the plan (nothing was written)."""

    target: str
    dry_run: bool
    runs: list[RunSync] = field(default_factory=list)
    experiments_created: list[str] = field(default_factory=list)
    # [old, new] target names of copies renamed as their local experiment was
    experiments_renamed: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    traces_skipped: bool = False  # traces=False: no trace was read, planned or copied

    @property
    def totals(self) -> dict[str, int]:
        totals = {f"runs_{a}": sum(r.action == a for r in self.runs) for a in ACTIONS}
        totals.update({k: sum(getattr(r, k) for r in self.runs) for k in COUNTS})
        for key in ("traces_removed", "prompts", "models", "model_tags"):
            totals[key] = sum(getattr(r, key) for r in self.runs)
        return totals

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``harness sync --json``)."""
        data = asdict(self)
        data.update(totals=self.totals, seconds=round(self.seconds, 3))
        return data


SyncPlan = SyncReport  # a dry run's report is the plan


def describe_run(result: RunSync, dry_run: bool, traces_skipped: bool) -> str:
    verb = f"would {result.action}" if dry_run and result.action != "skip" else result.action
    said = [(getattr(result, key), key[:-1], "") for key in COUNTS]  # (9, "param", "")
    said += [
        (result.traces_removed, "trace", " removed (replaced locally)"),
        (result.prompts, "prompt version", ""),
        (result.models, "logged model", ""),
        (result.model_tags, "logged model tag", ""),
    ]
    counts = ", ".join(plural(n, noun) + after for n, noun, after in said if n)
    name = f"{result.experiment}/{result.run_name or result.run_id}"
    skipped = " (traces skipped)" if traces_skipped else ""
    return f"{verb} {name}" + (f": {counts}" if counts else "") + skipped
