"""Comparing runs and gating on regressions: ``harness compare`` and ``harness check``.

- :func:`load_run` finds a run by run file, tag, id or name;
- :func:`compare` pairs candidates with a base run and compares every metric with
  ``harness.stats`` (result: :class:`Comparison`);
- :func:`check` applies gates to a candidate (result: :class:`CheckResult`, whose
  ``exit_code`` is 0 pass, 1 a gate failed, 3 cannot decide);
- ``harness.compare.render`` draws either result for the terminal, markdown, JUnit XML and
  GitHub Actions; ``as_dict()`` is the JSON form.
"""

from __future__ import annotations

from harness.compare.checking import check
from harness.compare.comparison import DEFAULT_ROWS, Margin, compare, parse_margin
from harness.compare.result import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_UNDECIDED,
    CandidateResult,
    CheckResult,
    Comparison,
    FlippedRow,
    Gate,
    GateResult,
    MetricResult,
    RunRef,
)
from harness.compare.sources import LoadedRun, load_run

__all__ = [
    "DEFAULT_ROWS",
    "EXIT_FAIL",
    "EXIT_PASS",
    "EXIT_UNDECIDED",
    "CandidateResult",
    "CheckResult",
    "Comparison",
    "FlippedRow",
    "Gate",
    "GateResult",
    "LoadedRun",
    "Margin",
    "MetricResult",
    "RunRef",
    "check",
    "compare",
    "load_run",
    "parse_margin",
]
