"""What ``--metric`` accepts here: built-in metrics, kinds, ``[metrics.NAME]`` tables.

``harness metrics list`` prints :func:`metric_catalog`; every entry says how to ask for it
on the command line, whether it needs expected answers, and which way is better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.metrics import BatchMetric, Metric, get_kind, get_metric, kind_names, metric_names

if TYPE_CHECKING:
    from harness.config import Home

__all__ = ["CatalogEntry", "metric_catalog"]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    origin: str  # builtin | kind | harness.toml | python
    usage: str  # what to pass to --metric
    needs_expected: bool | None  # None: when no VALUE is given (a kind)
    direction: int  # +1 higher is better, -1 lower, 0 neither
    description: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_catalog(home: Home) -> list[CatalogEntry]:
    """Every metric name and kind usable in ``home``; a bad table raises MetricError."""
    from harness.scoring import resolve_spec
    from harness.scoring.specs import table_names

    entries: list[CatalogEntry] = []
    for name in metric_names():
        entries.append(_entry(get_metric(name), name, "builtin" if _builtin(name) else "python"))
    for name in table_names(home.settings):
        found = resolve_spec(name, settings=home.settings, home=home.path)
        if isinstance(found, (Metric, BatchMetric)):
            entries.append(_entry(found, name, "harness.toml"))
        else:  # an MLflow GenAI metric named by a table: a judge
            entries.append(
                CatalogEntry(name, "harness.toml", name, None, found.direction, found.description)
            )
    for name in kind_names():
        kind = get_kind(name)
        usage = f"{name}:{kind.main.upper()}" if kind.main else name
        if kind.main and kind.uses_expected:
            usage = f"{name}[:{kind.main.upper()}]"
        needs = None if kind.uses_expected else False
        entries.append(CatalogEntry(name, "kind", usage, needs, 1, kind.description))
    return entries


def _builtin(name: str) -> bool:
    return get_metric(name).origin == "builtin"


def _entry(metric: Metric | BatchMetric, name: str, origin: str) -> CatalogEntry:
    return CatalogEntry(
        name, origin, name, metric.needs_expected, metric.direction, metric.description
    )
