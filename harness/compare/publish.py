"""Where a check's verdict goes besides the screen: a JUnit file and GitHub Actions.

(The candidate's MLflow run gets its tag and artifact from ``harness.tracking``.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.compare.render.github import append_step_summary, error_lines, in_github_actions
from harness.compare.render.junit import check_junit
from harness.compare.render.markdown import check_markdown, comparison_markdown
from harness.compare.result import CheckResult, Comparison
from harness.errors import ConfigError
from harness.files import write_text_atomically

__all__ = ["Published", "publish_check", "publish_comparison", "write_atomically"]


@dataclass
class Published:
    """What was written where, and the workflow command lines for the CLI to print."""

    junit: Path | None = None
    step_summary: Path | None = None
    annotations: list[str] = field(default_factory=list)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; a folder that is not there is bad input."""
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: {path.parent} is not a folder")
    try:
        write_text_atomically(path, text)
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None


def publish_check(
    result: CheckResult,
    *,
    junit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Published:
    """Write the JUnit file (if asked), append the step summary (if ``$GITHUB_STEP_SUMMARY``),
    and return the ``::error::`` lines (if ``GITHUB_ACTIONS=true``)."""
    published = Published()
    if junit is not None:
        published.junit = Path(junit)
        write_atomically(published.junit, check_junit(result))
    published.step_summary = append_step_summary(check_markdown(result), environ)
    if in_github_actions(environ):
        published.annotations = error_lines(result)
    return published


def publish_comparison(
    comparison: Comparison, *, environ: Mapping[str, str] = os.environ
) -> Published:
    """Append the comparison to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    return Published(step_summary=append_step_summary(comparison_markdown(comparison), environ))
