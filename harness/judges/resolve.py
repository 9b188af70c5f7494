"""Which judges ``--judge NAME`` means: the built-ins, then the custom ones, by precedence.

Custom judges come from Python (``register_judge``), then ``[judges.NAME]`` tables in
harness.toml, then a ``--judges FILE``; a later source wins over an earlier one. No custom
judge may take a built-in judge's or a metric's name (``harness.judges.custom`` refuses it
where it is defined): the scores of a run are keyed by name, so a name means one judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import MetricError
from harness.judges.builtin import BUILTIN_NAMES, builtin_judge
from harness.judges.custom import load_judges_file, registered_judges, settings_judges

if TYPE_CHECKING:
    from harness.config import Home
    from harness.judges.judge import Judge

__all__ = ["available_judges", "resolve_judges"]


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
        raise MetricError(f"{home.path / 'harness.toml'}: judge_json_mode must be true or false")
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
