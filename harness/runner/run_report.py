"""A run's HTML report, as it ends: built from the run as stored, written if asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.runner.config import RunResult
    from harness.runner.progress import Progress


def run_report(
    db_path: Path,
    run_id: str,
    report: str | os.PathLike[str] | None,
    result: RunResult,
    progress: Progress,
    to_mlflow: bool = False,
) -> str | None:
    """The run's HTML report, written to ``report`` (if asked) and returned for MLflow
    (``to_mlflow``); None when neither wants it. A report that cannot be written is the
    result's warning: the run is stored all the same."""
    if report is None and not to_mlflow:
        return None
    from harness.report import stored_run_report, write_report

    # From the run as stored, as `harness report RUN` reads it: the same bytes.
    html = stored_run_report(db_path, run_id)
    if report is not None:
        try:
            result.report = str(write_report(report, html))
        except HarnessError as e:  # a full disk: the run is stored all the same
            result.report_error = e.message
            result.warnings.append(
                f"the report was not written ({e.message}); write it with "
                f"`harness report {run_id} -o {report}`"
            )
            progress.note(result.warnings[-1])
    return html
