"""What a run is: its configuration in, its result out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.config import DEFAULT_CACHE_MODE, DEFAULT_CONCURRENCY, DEFAULT_EXPERIMENT


@dataclass
class RunConfig:
    """Everything that defines a run. Stored with the run, so ``--resume`` can rebuild it."""

    data: str  # NAME[@VERSION]
    model: str  # a model URI
    prompt: str | None = None  # template text; None = the default QA prompt
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)  # [] = the defaults
    judges: list[str] = field(default_factory=list)
    judge_model: str | None = None
    judge_samples: int = 1
    guidelines: list[str] = field(default_factory=list)
    judges_file: str | None = None
    cache: str = DEFAULT_CACHE_MODE
    concurrency: int = DEFAULT_CONCURRENCY
    experiment: str = DEFAULT_EXPERIMENT
    run_name: str | None = None
    max_cost: float | None = None
    limit: int | None = None  # only the first N rows
    mlflow: bool = True
    traces: bool = True  # one MLflow trace per row, with its judge feedback
    spark: bool = False  # rows the cache cannot answer go to Spark executors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RunResult:
    """What ``harness run --json`` prints and ``evaluate`` wraps."""

    run_id: str
    run_name: str | None
    mlflow_run_id: str | None
    dataset: str  # NAME@VERSION
    model: str
    status: str
    rows: int
    rows_done: int
    errors: int
    metrics: dict[str, dict[str, float]]  # metric -> {"mean", "p50", "p90", "count"}
    calls: dict[str, dict[str, Any]]  # "model"/"judge" -> counters
    error_reasons: list[tuple[str, int]]
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    report: str | None = None  # where the run's HTML report was written (``report=``)

    def flat_metrics(self) -> dict[str, float]:
        """``{"exact_match/mean": 0.4, ...}``: the names MLflow shows."""
        return {
            f"{name}/{stat}": value
            for name, aggs in self.metrics.items()
            for stat, value in aggs.items()
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "mlflow_run_id": self.mlflow_run_id,
            "dataset": self.dataset,
            "model": self.model,
            "status": self.status,
            "rows": self.rows,
            "rows_done": self.rows_done,
            "errors": self.errors,
            "metrics": self.metrics,
            "calls": self.calls,
            "error_reasons": [{"error": e, "rows": n} for e, n in self.error_reasons],
            "duration_s": round(self.duration_s, 3),
            "warnings": self.warnings,
            "report": self.report,
        }
