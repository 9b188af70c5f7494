"""How a run ends: its outcome stored with its aggregates, its report, its MLflow run's end.

``RunEnd`` is the base class of ``harness.runner.run._Run``, which calls one of its four
ends once the rows are done: ``_finished`` when they all ran, else ``_failed``,
``_interrupted`` or ``_stopped_by_budget``. It is apart from the rest of a run's lifecycle
(the claim, the rows, the batches) so that each module can be read whole and stays under
the project's 600 lines. It holds no state of its own: it reads the run's, which
``_Run.__init__`` sets (declared below for the type checker).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from harness.calls.stats import stopped_warnings
from harness.errors import BudgetExceeded, EnvironmentFault, HarnessError, Interrupted
from harness.memory import release_freed
from harness.runner.config import RunConfig, RunResult
from harness.runner.next_step import with_next_step
from harness.runner.run_report import run_report
from harness.runner.summary import run_slices
from harness.store import runs as run_store

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.config import Home
    from harness.interrupt import StopRequest
    from harness.runner.mlflow_run import MlflowLogger
    from harness.runner.plan import RunPlan
    from harness.runner.progress import Progress
    from harness.store.runs import RunInfo
    from harness.store.usage_file import UsageFile
    from harness.tracking import RunRecord

__all__ = ["HOLD_REPORT_ROWS", "RunEnd"]

# Up to this many rows, a finished run keeps the store open through its report and its
# MLflow run's end (see ``_finished``): the report's two opens of the store and the
# one storing the MLflow run's id cost a fixed time on the path to the run's exit, the
# hold memory that grows with the rows. bench/bench_run_end.py (a cached rerun logged to
# MLflow, held against closed, the hold through the report only): at 1,000 rows the end
# took 0.89x and 0.97x (-0.07 s, -0.02 s) for +13 MB of peak RSS, at 2,000 0.82x
# (-0.15 s) for +22 MB, at 10,000 1.03x (+0.06 s) for +64 MB.
HOLD_REPORT_ROWS = 2_000


class RunEnd:
    """How a run ends, once its rows are done: stored, reported, its MLflow run ended."""

    # The run's state, set by ``_Run.__init__`` (harness.runner.run).
    plan: RunPlan
    run_id: str
    previous: RunInfo | None
    caller: Caller
    progress: Progress
    stop: StopRequest
    started: float
    home: Home
    config: RunConfig
    mlflow_run: tuple[str, str] | None
    worker: MlflowLogger | None
    head: RunRecord | None
    report: str | os.PathLike[str] | None
    rows_total: int
    usage_file: UsageFile

    if TYPE_CHECKING:  # defined by _Run, whose rows use them too

        def _usage(self) -> dict[str, Any]: ...

        def _new_mlflow_run(self) -> str | None: ...

    def _finished(self, hold: contextlib.ExitStack) -> RunResult:
        """The end of a run whose rows all ran; ``hold`` holds the store (``held``), taken
        before the last batch was written: that write and the end share one open of the
        file (~14 ms to attach, and the write's checkpoint, off the path to the exit)."""
        to_mlflow = self.worker is not None and self.head is not None
        # One open of the store to read the rows back and store the run's end, instead of
        # one per step (20-40 ms each). A small run keeps it open through its MLflow
        # run's table, its report and the end of its MLflow run in the local store (four
        # opens fewer; the MLflow worker never opens it); a large one closes it first,
        # since the open database keeps the pages its queries read and the report reads
        # every row (HOLD_REPORT_ROWS). Other processes wait for the store meanwhile, so it
        # is never held while the caller's own MLflow run, perhaps on a server, is written.
        with hold:
            result = self._record("finished")
            if result.rows_done > HOLD_REPORT_ROWS:
                hold.close()
            # What each step freed goes back to the OS before the next (harness.memory),
            # so the peak is the largest step's, not their sum: bench/bench_cached_rerun.py
            # --sizes 10000, peak RSS of the tree 446-452 MB against 459-476 (two runs).
            release_freed()  # DuckDB's buffers, the rows read back
            # The MLflow run's tables are made before the report, so that the rows read
            # back are gone while it is built: each step's peak is then its own alone.
            record = self._mlflow_end(result) if to_mlflow else None
            release_freed()
            report_html = self._report(result, to_mlflow)
            release_freed()  # the report's rows, read apart
            if self.mlflow_run is not None:
                hold.close()
            if record is not None:
                self._log_to_mlflow(result, record, report_html)
        result.duration_s = time.time() - self.started
        return result

    def _mlflow_end(self, result: RunResult) -> RunRecord | None:
        """The MLflow run's final record, its tables made (``prepare_mlflow_end``); None,
        and the failure the result's warning, when they cannot be."""
        from harness.runner.mlflow_run import prepare_mlflow_end

        assert self.worker is not None and self.head is not None
        try:
            return prepare_mlflow_end(self.home, self.head, result, self.worker)
        except HarnessError as e:
            self._mlflow_failed(result, e)
            return None

    def _log_to_mlflow(self, result: RunResult, record: RunRecord, report_html: str | None) -> None:
        """End the run's MLflow run and store its id; a failure is the result's warning."""
        from harness.runner.mlflow_run import log_to_mlflow

        assert self.worker is not None
        try:
            result.mlflow_run_id = log_to_mlflow(record, self.worker, self.stop, report_html)
            run_store.set_mlflow_run_id(self.home.db_path, self.run_id, result.mlflow_run_id)
        except Interrupted as e:
            self._keep_opened_mlflow_run(result)  # the worker completes it alone, or not
            stopped = e.extended(
                f"the run's rows are all stored; `harness runs log {self.run_id}` "
                "completes its MLflow run"
            )
            assert isinstance(stopped, Interrupted)
            stopped.result = result  # `--json` prints the run, as after any other stop
            raise stopped from None
        except HarnessError as e:
            self._mlflow_failed(result, e)

    def _report(self, result: RunResult, to_mlflow: bool = False) -> str | None:
        """The run's HTML report, written to ``report=`` (if asked) and returned for MLflow."""
        return run_report(
            self.home.db_path, self.run_id, self.report, result, self.progress, to_mlflow
        )

    def _mlflow_failed(self, result: RunResult, error: HarnessError) -> None:
        result.mlflow_error = error.message
        self._keep_opened_mlflow_run(result)  # it holds the rows' traces: `runs log` ends it
        result.warnings.append(
            f"MLflow logging failed: {error.message}; the run is stored in DuckDB: "
            f"log it later with `harness runs log {self.run_id}`"
        )
        self.progress.note(result.warnings[-1])
        # The same full disk may refuse this too: `runs list` shows the run unlogged anyway.
        with contextlib.suppress(EnvironmentFault):
            run_store.set_mlflow_error(self.home.db_path, self.run_id, error.message)

    def _interrupted(self) -> RunResult:
        name = self.stop.signal_name
        result = self._record("interrupted", reason=f"interrupted by {name}")
        self._stop_mlflow("KILLED", result, timeout_s=self.stop.grace_s)
        signum = self.stop.signum or 2
        raise Interrupted(
            f"interrupted by {name} with {result.rows_done:,} of {result.rows:,} rows stored; "
            f"resume with `harness run --resume {self.run_id}`",
            signum=signum,
            result=result,
        )

    def _stopped_by_budget(self) -> RunResult:
        max_cost = self.config.max_cost or 0.0
        reason = f"stopped at the --max-cost budget of ${max_cost:.4f}"
        result = self._record("stopped", reason=reason)
        self._report(result)  # the rows done are a run to look at too
        self._stop_mlflow("KILLED", result)
        stopped = BudgetExceeded(
            f"{reason} with {result.rows_done:,} of {result.rows:,} rows done; finish with "
            f"`harness run --resume {self.run_id} --max-cost USD`, a larger budget (the "
            "calls made so far count against it)"
        )
        stopped.result = result
        raise stopped

    def _failed(self, failure: BaseException) -> RunResult:
        """Record a failed run (if the store can still be written) and raise what failed."""
        from harness.faults import first_line

        error = failure if isinstance(failure, HarnessError) else None
        reason = error.message if error else f"{type(failure).__name__}: {first_line(failure)}"
        result = None
        # _record reports the rows stored even when the store cannot take the run's end
        # (see there); only a store that cannot even be read leaves no result to show.
        with contextlib.suppress(EnvironmentFault):
            result = self._record("failed", reason=reason)
        self._stop_mlflow("FAILED", result)
        if error is None:
            raise failure  # a bug: its traceback is worth more than a summary
        raise with_next_step(error, self.run_id, result) from failure

    def _stop_mlflow(self, status: str, result: RunResult | None, timeout_s: float = 60.0) -> None:
        """End the MLflow run unfinished (``status``), holding the rows logged so far."""
        if self.worker is None:
            return
        self.worker.stop(status, timeout_s=timeout_s)
        self._keep_opened_mlflow_run(result)

    def _keep_opened_mlflow_run(self, result: RunResult | None) -> None:
        """For a run whose MLflow logging did not complete (stopped, failed, or its MLflow
        end failed): store the MLflow run the worker opened if no batch did (it may have
        said so after the last), and name it on the result (``mlflow_partial_run_id``), as
        ``runs show`` and ``RunInfo.mlflow_partial_run_id`` do."""
        assert self.worker is not None
        opened = self._new_mlflow_run()
        if opened is not None:
            with contextlib.suppress(EnvironmentFault):  # the store that failed the run
                run_store.set_mlflow_opened_run_id(self.home.db_path, self.run_id, opened)
        if result is not None:
            result.mlflow_partial_run_id = self.worker.opened_run_id()

    def _record(self, status: str, reason: str | None = None) -> RunResult:
        """Store how the run ended, with aggregates computed from its stored rows.

        It reads what the aggregates need of each score, not its text (rationales, raw
        answers), and the rows' text only for batch metrics and ``--by`` slices: the
        MLflow run's table reads both (``prepare_mlflow_end``), and a run without one never
        does. Read here (and with MLflow held into its table's step), they were the peak
        of the end of a run without MLflow (numbers in docs/design.md).

        A run that ends other than ``finished`` is reported even when the store cannot take
        its end: on a full disk the rows are readable but the UPDATE that ends the run
        cannot be committed (DuckDB has no room to append it to ``harness.duckdb.wal``).
        The run then stays ``running``, which reads back as interrupted once this process
        is gone and resumes all the same; the result says so in a warning. A ``finished``
        run that cannot be stored raises, and the caller records it as failed.
        """
        home, plan, run_id = self.home, self.plan, self.run_id
        here = self.caller.usage({}) if self.previous is not None else None
        usage = self._usage()
        from harness.runner.batch_scores import end_scores

        ended = end_scores(plan, home.db_path, run_id, complete=status in ("finished", "stopped"))
        outputs, scores, metrics = ended.outputs, ended.scores, ended.metrics
        problems, metric_errors = list(ended.problems), ended.errors
        for problem in problems:
            self.progress.note(problem)
        failures, errors = run_store.failures(home.db_path, run_id)
        finished_at = datetime.now(timezone.utc)
        try:
            run_store.finish_run(
                home.db_path,
                run_id,
                status=status,
                metrics=metrics,
                usage=usage,
                errors=errors,
                failures=failures,
                reason=reason,
                finished_at=finished_at,
            )
            self.usage_file.remove()  # its counters are stored, the last of them
        except EnvironmentFault as e:
            if status == "finished":
                raise
            problems.append(
                f"the run's end could not be stored ({e.message}); it reads back as "
                f"interrupted and `harness run --resume {run_id}` goes on from its rows"
            )
        reasons: Counter[str] = Counter()
        for entry in failures.values():
            reasons.update({r: n for r, n in entry["reasons"]})
        result = RunResult(
            run_id=run_id,
            run_name=self.config.run_name,
            mlflow_run_id=None,
            dataset=plan.dataset.ref,
            model=plan.provider.uri,
            status=status,
            rows=self.rows_total,
            rows_done=run_store.rows_stored(home.db_path, run_id)
            if outputs is None
            else len(outputs),
            errors=errors,
            metrics=metrics,
            calls=usage,
            calls_in_resume=here,
            error_reasons=reasons.most_common(5),
            duration_s=time.time() - self.started,
            failures=failures,
            reason=reason,
            finished_at=finished_at.timestamp(),
            warnings=[*plan.notes, *problems, *stopped_warnings(usage)],
            directions=plan.directions,
            metric_errors=metric_errors,
            sample=plan.sample,
            slices=run_slices(self.config.by, plan.examples, outputs, scores, plan.stored_config()),
        )
        return result
