"""What a run is: its configuration in, its result out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.config import DEFAULT_CACHE_MODE, DEFAULT_CONCURRENCY, DEFAULT_EXPERIMENT
from harness.errors import EnvironmentFault, HarnessError, RunFailed, TrackingError
from harness.wording import plural, storable, storable_value

if TYPE_CHECKING:
    from harness.store.runs import RunInfo

# What one failure of a kind of call costs: a model call fails its row, a judge call a score.
FAILURE_UNITS = {"model": "row", "judge": "score"}  # what failed, per kind of call

if TYPE_CHECKING:
    from harness.slices import SliceTable


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
    sample: int | float | None = None  # a random subset: N rows, or a fraction of them
    sample_seed: int = 0  # --seed: which subset (harness.sampling)
    stratify: str | None = None  # keep each value's share of this column in the sample
    by: list[str] = field(default_factory=list)  # metrics per value of these columns
    max_slices: int | None = None  # values a --by column may have; None: harness.toml, 50
    mlflow: bool = True
    traces: bool = True  # one MLflow trace per row, with its judge feedback
    spark: bool = False  # rows the cache cannot answer go to Spark executors
    # Metrics and judges given as Python objects (harness.evaluate): named here, but only
    # the objects can score them again, so such a run cannot be resumed from the CLI.
    python_objects: list[str] = field(default_factory=list)
    # The sweep this run is a point of: {"id", "axes", "values", "parent_mlflow_run_id",
    # "name"}, so `harness runs show SWEEP_ID` (or NAME, the sweep's --run-name) finds its
    # children in DuckDB. None for a single run.
    sweep: dict[str, Any] | None = None
    # An existing MLflow LoggedModel the run's MLflow results link to (harness.evaluate's
    # model_id=, or MLflow's active model) instead of the configuration's own.
    model_id: str | None = None
    # harness.evaluate(model_type="retriever"): a python: model returns each row's list of
    # document ids, stored as its JSON text; --resume rebuilds the model so.
    retriever: bool = False
    # harness.evaluate's evaluator_config (col_mapping, values an eval_fn reads): the entries
    # JSON holds as given, which --resume scores with, and the keys of the rest, for which
    # --resume refuses (harness.evaluate_mlflow.stored_evaluator_config).
    evaluator_config: dict[str, Any] | None = None
    evaluator_config_left_out: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Text the run stores and logs: a byte of argv that is not UTF-8 comes as a lone
        # surrogate (as one a JSON escape gives), which neither DuckDB nor MLflow can hold.
        for name in ("prompt", "system", "run_name", "experiment"):
            text = getattr(self, name)
            if isinstance(text, str):
                setattr(self, name, storable(text))
        self.guidelines = [storable(g) if isinstance(g, str) else g for g in self.guidelines]
        self.params = {storable(k): storable_value(v) for k, v in self.params.items()}
        if self.sweep is not None:  # its values are params': a sweep over such values
            self.sweep = storable_value(self.sweep)

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
    sample: dict[str, Any] | None = None  # a sampled run: size, seed, stratify, rows, population
    slices: list[SliceTable] = field(default_factory=list)  # one per --by column
    # metric or judge -> +1 (higher is better), -1 (lower), 0 (neither)
    directions: dict[str, int] = field(default_factory=dict)
    metric_errors: int = 0  # rows a metric raised on, plus batch metrics that raised
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> failed, reasons
    reason: str | None = None  # why the run failed, stopped or was interrupted
    mlflow_error: str | None = None  # why MLflow logging failed (`harness runs log` retries)
    finished_at: float | None = None  # epoch seconds, as stored (MLflow's end time)
    report: str | None = None  # where the run's HTML report was written (``report=``)
    report_error: str | None = None  # why it could not be written (the run is stored)
    # A resumed run: the counters of this process's calls alone (``calls`` counts the
    # calls of every process the run has had); None for a run that was not resumed.
    calls_in_resume: dict[str, dict[str, Any]] | None = None
    # The MLflow run holding the rows logged so far while logging has not completed it
    # (a run stopped, interrupted or failed: KILLED or FAILED; a finished run whose MLflow
    # end failed: FAILED, until `runs log`), as `runs show` names it; None once logging
    # completed it (``mlflow_run_id``) or when none is known to have been opened.
    mlflow_partial_run_id: str | None = None

    @classmethod
    def from_info(cls, info: RunInfo) -> RunResult:
        """A run stored in DuckDB as the result it returned (``runs log``, a sweep's table)."""
        from collections import Counter
        from datetime import timezone

        reasons: Counter[str] = Counter()
        for entry in info.failures.values():
            reasons.update({r: n for r, n in entry.get("reasons", [])})
        begun = info.created_at.replace(tzinfo=timezone.utc).timestamp()
        ended = (info.finished_at or info.created_at).replace(tzinfo=timezone.utc).timestamp()
        return cls(
            run_id=info.run_id,
            run_name=info.run_name,
            mlflow_run_id=info.mlflow_run_id,
            mlflow_partial_run_id=info.mlflow_partial_run_id,
            dataset=f"{info.dataset}@{info.dataset_version}",
            model=info.model,
            status=info.status,
            rows=info.rows_total,
            rows_done=info.rows_done,
            errors=info.errors or 0,
            metrics=info.metrics,
            calls=info.usage,
            error_reasons=reasons.most_common(5),
            duration_s=ended - begun,
            directions={str(k): int(v) for k, v in (info.config.get("directions") or {}).items()},
            failures=info.failures,
            reason=info.reason,
            finished_at=ended,
            sample=info.sample,
        )

    def failed_rows(self) -> str:
        """``"2 of 4 rows failed (model: 2 rows: 2 x REASON)"``, the first two reasons of each
        kind of call; "" when no row failed."""
        if not self.errors:
            return ""
        kinds = " | ".join(
            f"{kind}: {plural(entry['failed'], FAILURE_UNITS.get(kind, 'call'))}: "
            + "; ".join(f"{n:,} x {reason}" for reason, n in entry["reasons"][:2])
            for kind, entry in self.failures.items()
        )
        return f"{self.errors:,} of {self.rows:,} rows failed" + (f" ({kinds})" if kinds else "")

    def failure(self) -> HarnessError | None:
        """What went wrong in a run that ran to its end, as the error to exit with.

        MLflow logging that failed (exit 74: the run is stored, ``harness runs log``
        logs it), a report that could not be written (exit 74: ``harness report`` writes
        it), else failed rows or judge calls (exit 1: ``--resume`` retries them); None when
        all went well.
        """
        failed = self.failed_rows()
        if self.metric_errors:
            shown = "; ".join(w for w in self.warnings if w.startswith("metric"))
            failed += ("; " if failed else "") + f"metrics failed ({shown})"
        if self.mlflow_error:
            return TrackingError(
                f"the run is stored, but logging it to MLflow failed: {self.mlflow_error}; "
                f"log it with `harness runs log {self.run_id}`"
                + (f"; also, {failed}" if failed else "")
            )
        if self.report_error:
            return EnvironmentFault(
                f"the run is stored, but its report could not be written: {self.report_error}; "
                f"write it with `harness report {self.run_id} -o FILE`"
                + (f"; also, {failed}" if failed else "")
            )
        if self.errors:
            return RunFailed(f"{failed}; retry them with `harness run --resume {self.run_id}`")
        if failed:  # a resume scores nothing again: the same run, whose calls are cached
            return RunFailed(
                f"{failed}; fix the metric and run the same command again (its calls come "
                "from the cache)"
            )
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

    def slice_metrics(self) -> dict[str, float]:
        """``{"exact_match/mean/by/final_decision/yes": 0.4, ...}``: each slice's mean under
        the name MLflow holds it by (see ``harness.slices.mlflow_slice_metrics``)."""
        from harness.slices import mlflow_slice_metrics

        return {k: v for table in self.slices for k, v in mlflow_slice_metrics(table).items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "mlflow_run_id": self.mlflow_run_id,
            "mlflow_partial_run_id": self.mlflow_partial_run_id,
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
            "calls_in_resume": self.calls_in_resume,
            "error_reasons": [{"error": e, "count": n} for e, n in self.error_reasons],
            "duration_s": round(self.duration_s, 3),
            "mlflow_error": self.mlflow_error,
            "warnings": self.warnings,
            "report": self.report,
            "sample": self.sample,
            "slices": [table.as_dict() for table in self.slices],
            "directions": self.directions,
            "metric_errors": self.metric_errors,
        }
