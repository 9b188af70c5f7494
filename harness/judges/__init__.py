"""LLM judges: built-in and custom, parsed robustly, sampled, compared and calibrated.

- :func:`resolve_judges` turns ``--judge NAME`` values into :class:`Judge` objects: the
  built-ins (``harness.judges.builtin``), ``[judges.NAME]`` tables from ``harness.toml`` or
  a ``--judges FILE``, and judges registered from Python (:func:`register_judge`).
- ``Judge.evaluate`` calls the judge model through ``harness.calls`` (cache, retries and
  accounting shared with model calls, counted as ``judge``) and parses with
  :func:`parse_verdict`, re-asking with a repair message when it must.
- :func:`sample_stats` measures a judge asked several times (``--judge-samples``).
- :func:`compare_runs` is the pairwise judge; :func:`calibrate` checks a judge against
  human labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.judges.builtin import BUILTIN_NAMES, builtin_judge
from harness.judges.custom import make_judge, register_judge, registered_judges
from harness.judges.judge import Judge
from harness.judges.output import OutputSpec
from harness.judges.parse import PARSER_VERSION, Verdict, parse_verdict
from harness.judges.resolve import available_judges, resolve_judges

if TYPE_CHECKING:
    from harness.judges.calibration import Calibration, calibrate
    from harness.judges.pairwise import Comparison, compare_runs
    from harness.judges.variance import sample_stats

__all__ = [
    "BUILTIN_NAMES",
    "PARSER_VERSION",
    "Calibration",
    "Comparison",
    "Judge",
    "OutputSpec",
    "Verdict",
    "available_judges",
    "builtin_judge",
    "calibrate",
    "compare_runs",
    "make_judge",
    "parse_verdict",
    "register_judge",
    "registered_judges",
    "resolve_judges",
    "sample_stats",
]

_LAZY = {
    "calibrate": "harness.judges.calibration",
    "Calibration": "harness.judges.calibration",
    "compare_runs": "harness.judges.pairwise",
    "Comparison": "harness.judges.pairwise",
    "sample_stats": "harness.judges.variance",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
