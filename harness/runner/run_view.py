"""What ``harness runs show`` shows of a run, a run file or a sweep, as data: the command
prints it (``harness.cli.runs``), ``--json`` dumps it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.wording import plural

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Home
    from harness.runner.sweep import SweepResult
    from harness.slices import SliceTable
    from harness.store.runs import RunInfo

__all__ = ["RowsWanted", "RunView", "view_run"]


@dataclass(frozen=True)
class RowsWanted:
    """Which of a run's rows to show: ``--errors``, ``--columns``, at most ``limit``."""

    errors_only: bool = False
    columns: list[str] | None = None
    limit: int | None = None


@dataclass
class RunView:
    """One run as ``runs show`` shows it."""

    info: RunInfo
    stored: bool  # a run of the project's store (not a file): a resume can go on with it
    slices: list[SliceTable] = field(default_factory=list)
    table: pd.DataFrame | None = None  # the rows asked for, or None
    left_out: int = 0  # rows past the limit
    note: str | None = None  # how the reference was read (a name that hides ids, ...)

    @property
    def resumable(self) -> bool:
        """A stored run that ``--resume`` goes on with: failed rows, or not finished."""
        info = self.info
        return (
            self.stored
            and info.status != "running"
            and bool(info.errors or info.status != "finished")
        )

    def next_step(self) -> str | None:
        """What to type to go on with the run (``runs show``'s last line), if it can go on."""
        from harness.errors import ReplayMiss

        info = self.info
        if not self.resumable:
            return None
        if info.status == "stopped":
            # As the run's own error says: with the budget it reached, it would stop at once.
            return (
                f"go on with `harness run --resume {info.run_id} --max-cost USD`, a larger "
                "budget (the calls made so far count against it)"
            )
        if (info.reason or "").startswith(ReplayMiss.PREFIX):
            # The resume replays too: at once, it would miss the same calls again.
            return (
                "once the cache holds the calls it missed (a run without --cache replay makes "
                f"them, or import their cassette), go on with `harness run --resume {info.run_id}`"
            )
        return f"go on with `harness run --resume {info.run_id}`"

    def as_dict(self) -> dict[str, Any]:
        document = self.info.as_dict()
        if self.slices:
            document["slices"] = [s.as_dict() for s in self.slices]
        if self.table is not None:
            document["rows_table"] = self.table.to_dict(orient="records")
        return document


def view_run(
    ref: str,
    *,
    home: Home,
    rows: RowsWanted | None = None,
    by: Sequence[str] = (),
    max_slices: int | None = None,
) -> RunView | SweepResult:
    """The run, run file or sweep ``ref`` names, with its slices (by ``by``, else the
    columns it was run ``--by``) and, when ``rows`` is given, the rows it selects."""
    from harness.runner.summary import labelled_judges, record_slices, results_table, select_rows
    from harness.runner.sweep import find_sweep
    from harness.slices import check_by
    from harness.store.exports import RunRecord, is_run_file, read_run_file
    from harness.store.runs import load_outputs_and_scores
    from harness.store.tags import find_run

    check_by(by)
    is_file = is_run_file(ref)
    sweep = None if is_file else find_sweep(ref, home=home, by=by, max_slices=max_slices)
    if sweep is not None:
        if rows is not None:
            raise ConfigError(
                f"--rows shows one run's rows, and {ref} is a sweep of "
                f"{plural(len(sweep.runs), 'run')}: give one of their ids "
                f"({', '.join(run.result.run_id for run in sweep.runs)})"
                + (f"; {sweep.note}" if sweep.note else "")  # the newest sweep of a name
            )
        return sweep
    table = None
    note = None
    run: str | RunRecord
    if is_file:
        run = read_run_file(ref)
        info = run.info
        if rows is not None:
            table = results_table(run.rows(), run.scores(), labelled_judges(info.config))
    else:
        from harness.runner.mlflow_run import find_opened_mlflow_runs

        info, note = find_run(home.db_path, ref)
        find_opened_mlflow_runs([info], home)
        run = info.run_id
        if rows is not None:
            outputs, scores = load_outputs_and_scores(home.db_path, info.run_id)
            table = results_table(outputs, scores, labelled_judges(info.config))
    columns = list(by) or list(info.config.get("by") or [])
    view = RunView(
        info,
        stored=not is_file,
        slices=record_slices(home, run, columns, max_slices=max_slices, limited=bool(by)),
        note=note,
    )
    if table is not None and rows is not None:
        view.table, view.left_out = select_rows(
            table, errors_only=rows.errors_only, columns=rows.columns, limit=rows.limit
        )
    return view
