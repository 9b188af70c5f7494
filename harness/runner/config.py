"""What a run is: its configuration in, its result out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.config import DEFAULT_CACHE_MODE, DEFAULT_CONCURRENCY, DEFAULT_EXPERIMENT
from harness.errors import HarnessError, RunFailed, TrackingError

# What one failure of a kind of call costs: a model call fails its row, a judge call a score.
FAILURE_UNITS = {"model": "rows", "judge": "scores"}


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
    # Metrics and judges given as Python objects (harness.evaluate): named here, but only
    # the objects can score them again, so such a run cannot be resumed from the CLI.
    python_objects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RunResult:
    """What ``harness run --json`` prints and ``evaluate`` wraps.

    ``status``: finished, failed, interrupted (a signal) or stopped (``--max-cost``).
    ``errors`` counts the rows that failed: their model call, or any of their judge calls
    (after retries; an answer with no usable verdict too); ``failures`` says per kind of
    call how many failed (model rows, judge scores) and the most common reasons.
    """

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
    error_reasons: list[tuple[str, int]]  # the most common reasons, every kind together
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    # metric or judge -> +1 (higher is better), -1 (lower), 0 (neither)
    directions: dict[str, int] = field(default_factory=dict)
    metric_errors: int = 0  # rows a metric raised on, plus batch metrics that raised
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> failed, reasons
    reason: str | None = None  # why the run failed, stopped or was interrupted
    mlflow_error: str | None = None  # why MLflow logging failed (`harness runs log` retries)
    finished_at: float | None = None  # epoch seconds, as stored (MLflow's end time)
    report: str | None = None  # where the run's HTML report was written (``report=``)

    def failure(self) -> HarnessError | None:
        """What went wrong in a run that ran to its end, as the error to exit with.

        MLflow logging that failed (exit 74: the run is stored, ``harness runs log``
        logs it), else failed rows or judge calls (exit 1: ``--resume`` retries them);
        None when all went well.
        """
        failed = ""
        if self.errors:
            kinds = " | ".join(
                f"{kind}: {entry['failed']} {FAILURE_UNITS.get(kind, 'calls')}: "
                + "; ".join(f"{n} x {reason}" for reason, n in entry["reasons"][:2])
                for kind, entry in self.failures.items()
            )
            failed = f"{self.errors} of {self.rows} rows failed" + (f" ({kinds})" if kinds else "")
        if self.metric_errors:
            shown = "; ".join(w for w in self.warnings if w.startswith("metric"))
            failed += ("; " if failed else "") + f"metrics failed ({shown})"
        if self.mlflow_error:
            return TrackingError(
                f"the run is stored, but logging it to MLflow failed: {self.mlflow_error}; "
                f"log it with `harness runs log {self.run_id}`"
                + (f"; also, {failed}" if failed else "")
            )
        if self.errors:
            return RunFailed(f"{failed}; retry them with `harness run --resume {self.run_id}`")
        if failed:
            return RunFailed(failed)
        return None

    def flat_metrics(self) -> dict[str, float]:
        """``{"exact_match/mean": 0.4, ...}``: the names MLflow shows.

        As in MLflow, an aggregate named like its metric is the metric's own name: MLflow's
        ``exact_match()`` reports ``{"exact_match": 0.5}`` as ``exact_match/v1``.
        """
        return {
            name if stat == name.split("/")[0] else f"{name}/{stat}": value
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
            "reason": self.reason,
            "rows": self.rows,
            "rows_done": self.rows_done,
            "errors": self.errors,
            "failures": self.failures,
            "metrics": self.metrics,
            "calls": self.calls,
            "error_reasons": [{"error": e, "count": n} for e, n in self.error_reasons],
            "duration_s": round(self.duration_s, 3),
            "mlflow_error": self.mlflow_error,
            "warnings": self.warnings,
            "report": self.report,
            "directions": self.directions,
            "metric_errors": self.metric_errors,
        }
