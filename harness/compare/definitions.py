"""Whether a metric or judge of both runs is the same check in each.

A run stores each metric's version and what defined it (``metric_versions``,
``metric_sources``: ``harness.scoring.versions``), each judge's version and model
(``judge_versions``, ``judge_models``). A name whose definition differs between the base
and the candidate (a ``[metrics.NAME]`` or ``[judges.NAME]`` table edited between them)
compares two different checks as one: compare and check say so in a note. They do not
change the verdict: a judge changed on purpose is a comparison a user may want. A run
stored before runs kept a metric's version has none, and gets no note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["redefined"]

CONSEQUENCE = "the comparison is of two different checks"


def redefined(
    base: Mapping[str, Any], candidate: Mapping[str, Any], names: Iterable[str]
) -> dict[str, str]:
    """The note for each of ``names`` (metrics and judges both runs scored) whose stored
    definition differs between the runs' configs ``base`` and ``candidate``."""
    notes: dict[str, str] = {}
    for name in names:
        change = _metric_change(base, candidate, name) or _judge_change(base, candidate, name)
        if change is not None:
            what, how = change
            notes[name] = (
                f"{what} {name!r} is defined differently in the two runs ({how}): {CONSEQUENCE}"
            )
    return notes


def _metric_change(
    base: Mapping[str, Any], candidate: Mapping[str, Any], name: str
) -> tuple[str, str] | None:
    was = (base.get("metric_versions") or {}).get(name)
    now = (candidate.get("metric_versions") or {}).get(name)
    if was is None or now is None or was == now:
        return None
    source_was = (base.get("metric_sources") or {}).get(name)
    source_now = (candidate.get("metric_sources") or {}).get(name)
    if source_was == source_now:
        return "metric", f"its {source_now} changed"
    return "metric", f"base: {source_was or 'unknown'}; candidate: {source_now or 'unknown'}"


def _judge_change(
    base: Mapping[str, Any], candidate: Mapping[str, Any], name: str
) -> tuple[str, str] | None:
    was = (base.get("judge_versions") or {}).get(name)
    now = (candidate.get("judge_versions") or {}).get(name)
    if was is not None and now is not None and was != now:
        return "judge", f"its definition changed: version {was} in the base, {now} in the candidate"
    model_was = (base.get("judge_models") or {}).get(name)
    model_now = (candidate.get("judge_models") or {}).get(name)
    if model_was is not None and model_now is not None and model_was != model_now:
        return "judge", f"it asked {model_was} in the base, {model_now} in the candidate"
    return None
