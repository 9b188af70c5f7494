"""Parameterized metric kinds: ``regex`` with a pattern, ``contains`` with a value, ...

A :class:`Kind` is a small factory registered by name, like a metric: it declares its
parameters (so a typo in ``harness.toml`` fails before the run, in one line), which one a
command-line value sets, and builds a :class:`~harness.metrics.Metric` from them. The same
parameters reach it from either side::

    [metrics.cites]                         --metric 'cites=regex:\\[\\d+\\]'
    kind = "regex"
    pattern = '\\[\\d+\\]'

Every kind also takes ``description`` and ``greater_is_better`` (a check you want to fail,
``icontains`` "I cannot help", is ``greater_is_better = false``). A metric built without a
name is named after its kind, ``-`` read as ``_`` (``contains-any`` -> ``contains_any``).

The families register themselves here when ``harness.metrics`` first looks a name up:
``checks`` (contains, equals, starts-with, regex), ``structure`` (is-json, json-schema,
length), ``similarity`` (levenshtein). Look kinds up through ``harness.metrics``
(``get_kind``, ``kind_names``, ``build_metric``), which loads them first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import MetricError
from harness.wording import unknown_names

if TYPE_CHECKING:
    from harness.metrics.registry import Metric

__all__ = [
    "COMMON_PARAMS",
    "EMPTY_VALUE",
    "NAME",
    "Kind",
    "Param",
    "build",
    "from_cli",
    "lookup_kind",
    "register_kind",
    "registered_kinds",
]

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # a metric name a user chooses
COMMON_PARAMS = ("description", "greater_is_better")  # every kind takes these
# An empty text is in every output: a check against it would pass every row (`contains:`).
EMPTY_VALUE = "value is empty; give a text, or leave it out to compare with the expected answers"
_TYPE_NAMES = {
    str: "text",
    bool: "true or false",
    int: "a whole number",
    list: "a list",
    dict: "a table",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a kind: its name, the TOML types it accepts, and what it means."""

    name: str
    types: tuple[type, ...]
    doc: str
    required: bool = False


@dataclass(frozen=True)
class Kind:
    """A factory of metrics: ``build(name, params, base_dir) -> Metric``.

    ``main`` names what a command-line value sets (``regex:PATTERN`` sets ``pattern``), and
    ``parse_value`` turns that text into parameters (default: ``{main: text}``; the
    ``length`` kind reads ``10..200`` as ``min`` and ``max``). ``base_dir`` is where a
    ``@FILE`` value is read from. ``uses_expected``: without a value, the kind compares
    the output with the row's expected answers (so the value may be left out).
    """

    name: str
    description: str
    params: tuple[Param, ...]
    factory: Callable[[str, dict[str, Any], Path], Metric]
    main: str | None = None
    parse_value: Callable[[str], dict[str, Any]] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    uses_expected: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_kinds: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Make ``kind`` available by its name; a name is registered once."""
    if kind.name in _kinds and _kinds[kind.name] is not kind:
        raise MetricError(f"a metric kind named {kind.name!r} is already registered")
    _kinds[kind.name] = kind
    return kind


def registered_kinds() -> dict[str, Kind]:
    """The kinds registered so far, by name (the families register when loaded)."""
    return _kinds


def lookup_kind(name: str) -> Kind:
    """The kind registered as ``name``; MetricError naming the known ones otherwise."""
    if name not in _kinds:
        raise MetricError(f"unknown metric kind {name!r}; known: {', '.join(sorted(_kinds))}")
    return _kinds[name]


def default_name(kind_name: str) -> str:
    return kind_name.replace("-", "_")


def from_cli(kind_name: str, value: str | None) -> dict[str, Any]:
    """The parameters a command-line ``KIND[:VALUE]`` gives."""
    kind = lookup_kind(kind_name)
    if value is None:
        return {}
    if kind.main is None:
        raise MetricError(
            f"metric kind {kind.name!r} takes no value (got {value!r}); "
            "options go in a [metrics.NAME] table of harness.toml"
        )
    return kind.parse_value(value) if kind.parse_value else {kind.main: value}


def build(
    kind_name: str,
    name: str | None,
    params: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
) -> Metric:
    """A metric of kind ``kind_name`` named ``name`` (default: after the kind).

    Raises MetricError, in one line, for an unknown kind or key, a value of the wrong
    type, a missing required parameter, or a value the kind cannot use (a bad pattern).
    """
    kind = lookup_kind(kind_name)
    name = name or default_name(kind.name)
    if not NAME.match(name):
        raise MetricError(f"invalid metric name {name!r}: use letters, digits, _ . -")
    where = f"metric {name!r} ({kind.name})"
    known = [p.name for p in kind.params]
    unknown = sorted(set(params) - set(known) - set(COMMON_PARAMS))
    if unknown:
        allowed = ", ".join([*known, *COMMON_PARAMS])
        raise MetricError(f"{where}: {unknown_names('key', unknown)}; use {allowed}")
    for key, value in params.items():
        _check_type(where, kind.param(key), key, value)
    for param in kind.params:
        if param.required and params.get(param.name) is None:
            raise MetricError(f"{where} needs {param.name!r}: {param.doc}")
    values = {**kind.defaults, **{k: v for k, v in params.items() if k not in COMMON_PARAMS}}
    metric = kind.factory(name, values, Path(base_dir) if base_dir is not None else Path.cwd())
    description = params.get("description")
    return replace(
        metric,
        description=str(description) if description else metric.description,
        direction=1 if params.get("greater_is_better", True) else -1,
        origin="kind",
    )


def _check_type(where: str, param: Param | None, key: str, value: Any) -> None:
    if param is None:  # description, greater_is_better
        wanted: tuple[type, ...] = (bool,) if key == "greater_is_better" else (str,)
    else:
        wanted = param.types
    # bool is an int in Python; a TOML `true` is no count of characters.
    ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
    if not ok:
        shown = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in wanted)
        raise MetricError(f"{where}: {key} must be {shown}, not {value!r}")
