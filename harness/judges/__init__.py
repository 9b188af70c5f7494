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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import MetricError
from harness.judges.builtin import BUILTIN_NAMES, builtin_judge
from harness.judges.custom import (
    load_judges_file,
    make_judge,
    register_judge,
    registered_judges,
    settings_judges,
)
from harness.judges.judge import Judge
from harness.judges.output import OutputSpec
from harness.judges.parse import PARSER_VERSION, Verdict, parse_verdict

if TYPE_CHECKING:
    from harness.config import Home
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


def _custom_judges(home: Home, judges_file: str | None) -> dict[str, Judge]:
    """Python-registered, then harness.toml, then --judges FILE: the later one wins."""
    judges = registered_judges()
    judges.update(settings_judges(home.settings, str(home.path / "harness.toml")))
    if judges_file:
        judges.update(load_judges_file(judges_file))
    return judges


def _json_mode(home: Home) -> bool:
    """``judge_json_mode = false`` in harness.toml: never ask for structured output (for an
    OpenAI-compatible server that rejects ``response_format``)."""
    value = home.settings.get("judge_json_mode", True)
    if not isinstance(value, bool):
        raise MetricError("harness.toml: judge_json_mode must be true or false")
    return value


def available_judges(
    *, home: Home, judges_file: str | None = None, guidelines: Sequence[str] = ()
) -> dict[str, Judge | None]:
    """Every judge name usable here -> its judge (None for ``guidelines`` without any)."""
    found: dict[str, Judge | None] = {}
    for name in BUILTIN_NAMES:
        try:
            found[name] = builtin_judge(name, guidelines=guidelines)
        except MetricError:
            found[name] = None
    found.update(_custom_judges(home, judges_file))
    return found


def resolve_judges(
    names: list[str], *, home: Home, judges_file: str | None, guidelines: Sequence[str]
) -> list[Judge]:
    """The judges for ``--judge`` names, in order, each once.

    Raises MetricError for an unknown name (listing the known ones), a bad custom judge
    definition, or the ``guidelines`` judge without any ``--guideline``.
    """
    from dataclasses import replace

    custom = _custom_judges(home, judges_file)
    json_mode = _json_mode(home)
    judges: list[Judge] = []
    for name in dict.fromkeys(names):
        if name in custom:
            judge = custom[name]
        elif name in BUILTIN_NAMES:
            judge = builtin_judge(name, guidelines=guidelines)
        else:
            known = ", ".join(sorted({*BUILTIN_NAMES, *custom}))
            raise MetricError(f"unknown judge {name!r}; known: {known}")
        judges.append(
            judge if judge.json_mode == json_mode else replace(judge, json_mode=json_mode)
        )
    return judges
