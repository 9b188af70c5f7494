"""Where a check's verdict goes besides the screen: a JUnit file and GitHub Actions.

(The candidate's MLflow run gets its tag and artifact from ``harness.tracking``.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.compare.render.github import append_step_summary, error_lines, in_github_actions
from harness.compare.render.junit import check_junit
from harness.compare.render.markdown import check_markdown, comparison_markdown
from harness.compare.result import CheckResult, Comparison
from harness.files import write_user_file

if TYPE_CHECKING:
    from harness.config import Home

__all__ = ["Published", "publish_check", "publish_comparison", "write_atomically"]


@dataclass
class Published:
    """What was written where, and the workflow command lines for the CLI to print."""

    junit: Path | None = None
    report: Path | None = None  # the check's HTML report
    step_summary: Path | None = None
    annotations: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None  # the run tagged with the verdict
    warnings: list[str] = field(default_factory=list)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; a folder that is not there is bad input."""
    write_user_file(path, text)


def publish_check(
    result: CheckResult,
    *,
    junit: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    environ: Mapping[str, str] = os.environ,
    report: str | os.PathLike[str] | None = None,
    home: Home | None = None,
) -> Published:
    """Write the JUnit file and the HTML report (``harness.compare.report.check_report``,
    runs read from ``home``) if asked, append the step summary (if ``$GITHUB_STEP_SUMMARY``),
    tag the candidate's MLflow run (given ``tracking_uri``, when the candidate is a stored
    run logged to MLflow), and return the ``::error::`` lines (if ``GITHUB_ACTIONS=true``).

    A failure to tag is a warning, not an error: the verdict stands without it.
    """
    published = Published()
    markdown = check_markdown(result)
    if junit is not None:
        published.junit = Path(junit)
        write_atomically(published.junit, check_junit(result))
    if report is not None:
        from harness.compare.report import check_report

        published.report = Path(report)
        write_atomically(published.report, check_report(result, home=home))
    published.step_summary, warning = append_step_summary(markdown, environ)
    published.warnings.extend([warning] if warning else [])
    if in_github_actions(environ):
        published.annotations = error_lines(result)
    candidate = result.candidate
    if tracking_uri and candidate and candidate.mlflow_run_id and candidate.origin == "store":
        from harness.errors import TrackingError
        from harness.tracking.run_updates import tag_check

        try:
            tag_check(
                tracking_uri,
                candidate.mlflow_run_id,
                outcome=result.outcome,
                summary=result.summary(),
                document=result.as_dict(),
                markdown=markdown,
            )
            published.mlflow_run_id = candidate.mlflow_run_id
        except TrackingError as e:
            published.warnings.append(f"the verdict is not on the MLflow run: {e}")
    return published


def publish_comparison(
    comparison: Comparison, *, environ: Mapping[str, str] = os.environ
) -> Published:
    """Append the comparison to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    step_summary, warning = append_step_summary(comparison_markdown(comparison), environ)
    return Published(step_summary=step_summary, warnings=[warning] if warning else [])
