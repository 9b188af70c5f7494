"""Metrics named in text: ``--metric`` values and ``[metrics.NAME]`` tables of harness.toml.

The grammar, one rule for the command line and the API alike::

    NAME                        a built-in metric, a [metrics.NAME] table, or a metric
                                registered from Python (register_metric)
    KIND[:VALUE]                a parameterized check (contains, regex, length, ...);
                                VALUE sets the kind's main parameter
    python:MODULE:FUNCTION      your function (a row function, MLflow's eval_fn or scorer
                                signature), or an MLflow metric or scorer object
    LABEL=KIND[:VALUE]          any of the two above, named LABEL in the results
    LABEL=python:MODULE:FUNCTION

A ``[metrics.NAME]`` table has either ``kind`` and that kind's parameters, or ``python =
"MODULE:FUNCTION"``; both take ``description`` and ``greater_is_better``, and a
``python`` table also ``needs_expected``. Unknown keys fail in one line::

    [metrics.cites]
    kind = "regex"
    pattern = '\\[\\d+\\]'

    [metrics.has_citation]
    python = "my_metrics:has_citation"
    needs_expected = false
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import MetricError
from harness.metrics import (
    BatchMetric,
    Metric,
    build_metric,
    kind_names,
    kind_parameters,
    metric_names,
)
from harness.metrics.kinds import NAME
from harness.wording import unknown_names

__all__ = ["MetricSpec", "from_table", "kind_metric", "override", "parse_spec", "table_names"]

_PYTHON_KEYS = frozenset({"python", "needs_expected", "greater_is_better", "description"})


@dataclass(frozen=True)
class MetricSpec:
    """One parsed ``--metric`` value."""

    text: str
    label: str | None  # LABEL= given
    kind: str | None  # "python", a kind, or None for a plain NAME
    value: str | None  # what follows KIND:


def parse_spec(text: str) -> MetricSpec:
    """Split a ``--metric`` value into its parts (see the module); MetricError if malformed."""
    raw = text.strip()
    if not raw:
        raise MetricError("--metric needs a value: NAME, KIND[:VALUE] or python:MODULE:FUNCTION")
    label = None
    head, eq, tail = raw.partition("=")
    if eq and ":" not in head and NAME.match(head):  # LABEL=..., not regex:a=b
        label, raw = head, tail
        if not raw:
            raise MetricError(f"--metric {text!r}: nothing after {label}=")
    kind, colon, value = raw.partition(":")
    if not colon:
        if label is not None and kind not in kind_names():
            raise MetricError(
                f"--metric {text!r}: LABEL= names a kind or a python: function, and "
                f"{kind!r} is neither"
            )
        return MetricSpec(text, label, kind if label is not None else None, None)
    if kind == "python":
        return MetricSpec(text, label, "python", value)
    if kind not in kind_names():
        raise MetricError(
            f"--metric {text!r}: unknown metric kind {kind!r}; known: python, "
            f"{', '.join(kind_names())}"
        )
    return MetricSpec(text, label, kind, value)


def table_names(settings: Mapping[str, Any]) -> list[str]:
    """The names of the ``[metrics.NAME]`` tables of a parsed harness.toml."""
    tables = settings.get("metrics")
    if tables is None:
        return []
    if not isinstance(tables, Mapping):
        raise MetricError("harness.toml: [metrics] must be a table of [metrics.NAME] tables")
    return list(tables)


def from_table(
    name: str,
    table: Any,
    *,
    source: str,
    base_dir: Path,
    load: Callable[[str, str], Any],
) -> Any:
    """The metric a ``[metrics.NAME]`` table defines; ``load(target, name)`` adapts python:."""
    where = f"{source}: [metrics.{name}]"
    if not isinstance(table, Mapping):
        raise MetricError(f"{where} must be a table")
    if name in metric_names():
        raise MetricError(f"{where}: {name!r} is a built-in metric; choose another name")
    if not NAME.match(name):
        raise MetricError(f"{where}: invalid name; use letters, digits, _ . -")
    if ("kind" in table) == ("python" in table):
        raise MetricError(f'{where} needs kind = "..." or python = "MODULE:FUNCTION" (one)')
    try:
        if "kind" in table:
            params = {k: v for k, v in table.items() if k != "kind"}
            if not isinstance(table["kind"], str):
                raise MetricError(f"kind must be text, not {table['kind']!r}")
            return build_metric(table["kind"], name, params, base_dir=base_dir)
        unknown = sorted(set(table) - _PYTHON_KEYS)
        if unknown:
            raise MetricError(
                f"{unknown_names('key', unknown)}; use {', '.join(sorted(_PYTHON_KEYS))}"
            )
        target = table["python"]
        if not isinstance(target, str):
            raise MetricError(f'python must be "MODULE:FUNCTION", not {target!r}')
        return override(load(target, name), table, where)
    except MetricError as e:
        message = e.message.removeprefix(f"metric {name!r}").lstrip(" :")
        raise MetricError(f"{where}: {message}") from None


def override(found: Any, table: Mapping[str, Any], where: str) -> Any:
    """A loaded metric with the table's name-independent settings applied."""
    changes: dict[str, Any] = {}
    for key, types in (("greater_is_better", (bool,)), ("needs_expected", (bool,))):
        if key in table:
            if not isinstance(table[key], types):
                raise MetricError(f"{key} must be true or false, not {table[key]!r}")
            if key == "needs_expected" and not isinstance(found, (Metric, BatchMetric)):
                raise MetricError("needs_expected applies to code metrics, not to judges")
            changes[key if key != "greater_is_better" else "direction"] = (
                table[key] if key != "greater_is_better" else (1 if table[key] else -1)
            )
    if "description" in table:
        changes["description"] = str(table["description"])
    return dataclasses.replace(found, **changes) if changes else found


def kind_metric(spec: MetricSpec, base_dir: Path) -> Metric:
    """``[LABEL=]KIND[:VALUE]``."""
    assert spec.kind is not None and spec.kind != "python"
    return build_metric(
        spec.kind, spec.label, kind_parameters(spec.kind, spec.value), base_dir=base_dir
    )


def unknown_name(name: str, settings: Mapping[str, Any]) -> MetricError:
    """The error for a NAME nothing defines, listing what exists."""
    known = sorted({*metric_names(), *table_names(settings)})
    return MetricError(
        f"unknown metric {name!r}; known: {', '.join(known)}; kinds: "
        f"{', '.join(kind_names())} (KIND:VALUE); or python:MODULE:FUNCTION"
    )
