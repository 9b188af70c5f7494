"""The HTML report: one self-contained file that explains a run, or a comparison, at a glance.

- :func:`run_report`: the report of one run (what was run, each metric's mean with its
  95% interval and distribution, the judges' self-agreement and calibration, every row);
  every run logs it to MLflow and ``harness run --report FILE`` writes it
  (:func:`stored_run_report`: of a run in the store);
- :func:`render_report`: the page for one run or several, with sections placed first
  (``harness.compare.render.html`` adds a comparison's and a check's, for
  ``harness report BASE CANDIDATE`` and ``harness check --report``);
- :func:`write_report`: the file, whole or not at all.

The report holds no timestamp of its writing and refers to nothing outside itself
(``page``); its plots are inline SVG (``svg``) and its rows packed JSON (``rows``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.page import Section, markup, render_report
from harness.report.rows import Flips, ReportRun
from harness.wording import plural

if TYPE_CHECKING:
    from harness.store.exports import RunRecord

__all__ = [
    "Flips",
    "ReportRun",
    "Section",
    "markup",
    "render_report",
    "report_run_ids",
    "run_label",
    "run_report",
    "stored_run_report",
    "write_report",
]


_RUN_IDS = re.compile(r'<meta name="harness-runs" content="([^"]*)">')


def report_run_ids(html: str) -> tuple[str, ...] | None:
    """The ids of the runs a report is about, in its order (from its head, which holds
    them in its first lines); None for a page that is not a report of harness's."""
    found = _RUN_IDS.search(html[:4096])
    return tuple(found.group(1).split()) if found else None


def run_label(record: RunRecord) -> str:
    """How a report names a run: its run name, else its id."""
    return record.info.run_name or record.info.run_id


def run_report(
    record: RunRecord,
    *,
    db_path: Path | None = None,
    by: Sequence[str] = (),
    max_slices: int | None = None,
) -> str:
    """The report of one run; ``db_path`` is the store to read judge calibrations from;
    ``by`` columns to slice it by (else the run's own ``--by`` columns), with at most
    ``max_slices`` values each."""
    return _run_report(lambda: record, record.db_path, db_path, by, max_slices)


def stored_run_report(db_path: Path, run_id: str) -> str:
    """``run_report`` of the run ``run_id`` stored in ``db_path``, its judges' calibrations
    read from there too: the run read in the one open of the store its scores are read in."""
    from harness.store.exports import load_run_record

    return _run_report(lambda: load_run_record(db_path, run_id), db_path, db_path, (), None)


def _run_report(
    read: Callable[[], RunRecord],
    store: Path | None,
    db_path: Path | None,
    by: Sequence[str],
    max_slices: int | None,
) -> str:
    from harness.report.page import find_calibrations
    from harness.store.db import connect
    from harness.store.scores import record_scores

    with contextlib.ExitStack() as hold:
        # The run (``read``), its scores and its judges' calibrations read in one open of
        # the store ``store`` (the scores' reader holds it open for all their reads anyway):
        # opens (20-40 ms each on a run's path to its exit) fewer. Not the rows: the open
        # store keeps the pages read, and the rows read after the scores would add theirs to
        # the scores'.
        if store is not None:
            hold.enter_context(connect(store, read_only=True))
        record = read()
        run = ReportRun(run_label(record), record, record_scores(record))
        calibrations = [find_calibrations(db_path, run)]
    info = record.info
    return render_report(
        [run],
        title=f"harness report: {run.label}",
        subtitle=f"{info.model} on {info.dataset}@{info.dataset_version}, "
        f"{plural(info.rows_done, 'row')}, {info.status}",
        db_path=db_path,
        by=by,
        max_slices=max_slices,
        calibrations=calibrations,
    )


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write ``html`` to ``path`` whole or not at all; a missing folder is bad input."""
    from harness.files import write_user_file

    target = Path(path)
    write_user_file(target, html)
    return target
