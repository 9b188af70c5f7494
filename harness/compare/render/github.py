"""GitHub Actions: annotations (``::error::``) and the job's step summary.

With ``GITHUB_ACTIONS=true``, each gate that failed or cannot be decided becomes an
``::error`` line (either one fails the step, so either one is an error to explain), shown on
the run's summary page and the PR's checks; a metric or judge defined differently in the two runs
(``harness.compare.definitions``), and runs of two datasets or two versions of one, are each a
``::warning``. They go to stderr (the runner reads workflow
commands from both streams), so ``--json`` keeps stdout to its one document. With
``$GITHUB_STEP_SUMMARY`` set, the markdown summary is appended to that file, as GitHub asks
of every step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from harness.compare.result import FAIL, UNDECIDED, CheckResult

__all__ = ["append_step_summary", "error_lines", "in_github_actions"]


def in_github_actions(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_lines(result: CheckResult) -> list[str]:
    """One workflow command per gate that did not pass (and one if nothing was checked),
    and a warning per ``CheckResult.warnings``: two datasets (or versions), a metric or
    judge defined differently in the two runs."""
    lines = []
    for gate in result.gates:
        if gate.outcome not in (FAIL, UNDECIDED):
            continue
        title = _escape_property(f"harness check: {gate.gate.name}: {gate.finding}")
        lines.append(f"::error title={title}::{_escape_data(gate.reason)}")
    if result.undecided_reason:
        title = _escape_property("harness check: cannot decide")
        lines.append(f"::error title={title}::{_escape_data(result.undecided_reason)}")
    for what, note in result.warnings():
        title = _escape_property(f"harness check: {what}")
        lines.append(f"::warning title={title}::{_escape_data(note)}")
    return lines


def append_step_summary(
    markdown: str, environ: Mapping[str, str] = os.environ
) -> tuple[Path | None, str | None]:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``: the file (None when unset) and a
    warning when it cannot be written.

    The summary is a copy of what the command printed; a file GitHub (or a user) points at
    that cannot be written must not turn a passing gate into exit 1, nor a failing one into
    a traceback: the verdict and its exit code stand, with a one-line warning.
    """
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None, None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as e:
        return None, f"cannot append to $GITHUB_STEP_SUMMARY {target}: {e.strerror or e}"
    return path, None
