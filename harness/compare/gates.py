"""Gates for ``harness check``: from options and the ``[check]`` table of harness.toml.

::

    [check]
    baseline = "baseline.jsonl"     # a run file (relative to the project home), tag, id or name
    cluster = "context"             # optional: rows sharing this column are one cluster
    max_missing = 0.05              # share of rows a gate may lack scores for (default 5%)
    exact_match = { min = 0.30, max_drop = 0.02 }
    faithfulness = { max_drop_pct = 5 }
    latency = { max = 2.0 }
    errors = { max_rate = 0.01 }

Rules: ``min`` / ``max`` bound the candidate's mean; ``max_drop`` is the largest drop from
the baseline allowed, in the metric's units (a rise, for a metric where lower is better),
``max_drop_pct`` the same in percent of the baseline's mean; ``errors`` takes ``max_rate``,
the largest share of rows that may fail (a model or judge call). A flag (``--min``, ``--max``,
``--max-drop``, ``--max-error-rate``) replaces the table's rule of the same metric and kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare.result import Gate
from harness.compare.sources import ERRORS, check_cluster
from harness.config import GATE_RULES, SETTINGS_FILE, check_gate_names, gate_rule_problem
from harness.errors import ConfigError
from harness.store.exports import is_run_file

__all__ = [
    "DEFAULT_MAX_MISSING",
    "METRIC_RULES",
    "CheckSettings",
    "check_settings",
    "parse_gate_option",
]

DEFAULT_MAX_MISSING = 0.05
# The rules' and settings' names live in harness.config, which refuses a misspelt one
# wherever harness.toml is read.
METRIC_RULES = GATE_RULES


@dataclass
class CheckSettings:
    gates: list[Gate]
    baseline: str | None
    cluster: str | None
    max_missing: float
    # Where ``baseline`` came from when harness.toml named it ("FILE: [check] baseline"),
    # for messages about it; None for --baseline.
    baseline_from: str | None = None


def parse_gate_option(rule: str, text: str) -> Gate:
    """``--min/--max/--max-drop METRIC=VALUE`` (``--max-drop`` takes ``VALUE%`` too)."""
    flag = "--" + rule.replace("_", "-")
    metric, sep, raw = text.partition("=")
    metric, raw = metric.strip(), raw.strip()
    if not sep or not metric or not raw:
        raise ConfigError(f"{flag} expects METRIC=VALUE, got {text!r}")
    if rule == "max_drop" and raw.endswith("%"):
        rule, raw = "max_drop_pct", raw[:-1]
    return Gate(metric, rule, _number(raw, f"{flag} {text}"), "option")


def _choose(gates: dict[tuple[str, str], Gate], gate: Gate, in_table: str = "") -> None:
    """Add ``gate`` under its metric and kind; a second of the same rule replaces the
    first, a max_drop beside a max_drop_pct is refused."""
    kind = "max_drop" if gate.rule.startswith("max_drop") else gate.rule
    had = gates.get((gate.metric, kind))
    if had is not None and had.rule != gate.rule:
        where = f"{in_table} " if gate.origin == "harness.toml" else ""
        raise ConfigError(f"{where}gate {gate.metric!r}: give max_drop or max_drop_pct, not both")
    gates[(gate.metric, kind)] = gate


def check_settings(
    settings: Mapping[str, Any],
    *,
    base_dir: Path,
    options: Iterable[Gate] = (),
    baseline: str | None = None,
    cluster: str | None = None,
    max_missing: float | None = None,
) -> CheckSettings:
    """The gates and settings of a check: flags over ``[check]`` in harness.toml."""
    table = settings.get("check", {})
    in_table = f"{base_dir / SETTINGS_FILE}: [check]"  # as config's messages name the file
    check_gate_names(table, str(base_dir / SETTINGS_FILE))  # also for settings not from Home
    # By metric and kind: max_drop and max_drop_pct are one kind, so a flag of either
    # replaces the table's drop rule; both from one place are refused.
    gates: dict[tuple[str, str], Gate] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            for rule, threshold in value.items():
                number = _table_number(threshold, f"{in_table} {key}.{rule}", rule)
                gate = _valid(Gate(key, rule, number, "harness.toml"), f"{in_table} ")
                _choose(gates, gate, in_table)
    flags: dict[tuple[str, str], Gate] = {}
    for gate in options:
        _choose(flags, _valid(gate))
    chosen = list({**gates, **flags}.values())
    if baseline is not None and not baseline.strip():  # `--baseline "$BASE"`, unset
        raise ConfigError(f"--baseline needs a run, tag or file name, got {baseline!r}")
    configured = table.get("baseline")
    baseline_from = None
    if baseline is None and configured is not None:
        baseline_from = f"{in_table} baseline"
        if not isinstance(configured, str) or not configured.strip():
            raise ConfigError(f"{in_table} baseline must be a run, tag or file name")
        baseline = configured
        # A file named in harness.toml is relative to the project home, where the file is.
        if is_run_file(configured) and not Path(configured).is_absolute():
            baseline = str(base_dir / configured)
    check_cluster(cluster)
    if cluster is None and "cluster" in table:
        configured = table["cluster"]
        if not isinstance(configured, str) or not configured.strip():
            raise ConfigError(
                f"{in_table} cluster must be a dataset column's name, got {configured!r}"
            )
        cluster = configured
    where = "max_missing"
    if max_missing is None:
        where = f"{in_table} max_missing"
        max_missing = _table_number(table.get("max_missing", DEFAULT_MAX_MISSING), where)
    if not 0 <= max_missing <= 1:
        raise ConfigError(f"{where} must be between 0 and 1, got {max_missing:g}")
    return CheckSettings(chosen, baseline, cluster, max_missing, baseline_from)


def _valid(gate: Gate, where: str = "") -> Gate:
    """``gate``, or ConfigError saying what is wrong with it (after ``where``)."""
    problem = gate_rule_problem(gate.metric, gate.rule)
    if problem:
        raise ConfigError(where + problem)
    if gate.metric == ERRORS and not 0 <= gate.threshold <= 1:
        raise ConfigError(
            f"{where}gate errors: max_rate is a share between 0 and 1, not {gate.threshold:g}"
        )
    if gate.rule.startswith("max_drop") and gate.threshold < 0:
        raise ConfigError(f"{where}gate {gate.name}: an allowed drop cannot be negative")
    return gate


def _table_number(value: Any, where: str, rule: str = "") -> float:
    """A ``[check]`` value: a TOML number, as docs/ci.md writes them. A quoted one is
    refused, not read: ``"0.02"`` would pass where ``"5%"`` cannot, so strings are refused
    alike, each with what to write instead."""
    if isinstance(value, str):
        text = value.strip()
        if rule == "max_drop_pct" and text.endswith("%") and _is_number(text[:-1]):
            hint = f"write the percent as a number: max_drop_pct = {text[:-1].strip()}"
        elif _is_number(text):
            hint = "write it without quotes"
        else:
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        raise ConfigError(f"{where}: expected a number, got the string {value!r} ({hint})")
    return _number(value, where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number
