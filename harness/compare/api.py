"""``compare`` and ``check`` from run references: what the CLI (and a script) calls.

A reference is a run file, a tag, a run id (or unique prefix) or a run name; see
``harness.compare.sources.load_run``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from harness.compare.checking import check
from harness.compare.comparison import DEFAULT_ROWS, Margin, compare, parse_margin
from harness.compare.gates import CheckSettings, check_settings, parse_gate_option
from harness.compare.result import CheckResult, Comparison, Gate
from harness.compare.sources import LoadedRun, find_source, load_run
from harness.config import SETTINGS_FILE, Home, resolve_home
from harness.errors import ConfigError, DataError, RunNotFound
from harness.slices import DEFAULT_MAX_VALUES, max_values

__all__ = ["check_gates", "check_ref", "compare_refs"]


def compare_refs(
    base: str,
    candidates: Sequence[str],
    *,
    home: str | os.PathLike[str] | Home | None = None,
    cluster: str | None = None,
    margins: Sequence[str] = (),
    rows: int = DEFAULT_ROWS,
    by: Sequence[str] = (),
    max_slices: int | None = None,
) -> Comparison:
    """``harness compare BASE CANDIDATE...``: ``margins`` as ``[METRIC=]VALUE[%]`` texts;
    ``by`` columns to compare slice by slice, each with at most ``max_slices`` values
    (else ``[slices] max_values`` in harness.toml, else 50)."""
    home = resolve_home(home)
    parsed: dict[str | None, Margin] = dict(parse_margin(m) for m in margins)
    limit = max_values(max_slices, home.settings) if by else DEFAULT_MAX_VALUES
    loaded_base = load_run(base, home)
    loaded = [load_run(ref, home) for ref in candidates]
    _refuse_a_candidate_twice(loaded)
    return compare(
        loaded_base, loaded, cluster=cluster, margins=parsed, rows=rows, by=by, max_slices=limit
    )


def _refuse_a_candidate_twice(loaded: Sequence[LoadedRun]) -> None:
    """One run given twice as a candidate (by its id and its name, say) was compared twice
    and counted twice in the Holm family, its p-values adjusted as if it were two runs."""
    seen: dict[tuple[str, str], str] = {}
    for run in loaded:
        origin = run.ref.origin if run.ref.origin == "store" else os.path.realpath(run.ref.origin)
        key = (run.ref.run_id, origin)
        if key in seen:
            raise ConfigError(
                f"candidate {run.ref.ref!r} is run {run.ref.run_id}, already given as "
                f"{seen[key]!r}: give each candidate once"
            )
        seen[key] = run.ref.ref


def check_ref(
    candidate: str,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    baseline: str | None = None,
    minimums: Sequence[str] = (),
    maximums: Sequence[str] = (),
    max_drops: Sequence[str] = (),
    max_error_rate: float | None = None,
    cluster: str | None = None,
    max_missing: float | None = None,
    rows: int = DEFAULT_ROWS,
) -> CheckResult:
    """``harness check CANDIDATE``: gates from the flags (``METRIC=VALUE`` texts) over the
    ``[check]`` table of the project's harness.toml."""
    home = resolve_home(home)
    settings = check_gates(
        home=home,
        baseline=baseline,
        minimums=minimums,
        maximums=maximums,
        max_drops=max_drops,
        max_error_rate=max_error_rate,
        cluster=cluster,
        max_missing=max_missing,
    )
    loaded = load_run(candidate, home)
    loaded_baseline = _load_baseline(settings, home)
    return check(
        loaded,
        loaded_baseline,
        settings.gates,
        cluster=settings.cluster,
        max_missing=settings.max_missing,
        rows=rows,
        settings_file=str(home.path / SETTINGS_FILE),
    )


def _load_baseline(
    settings: CheckSettings, home: Home, *, find_only: bool = False
) -> LoadedRun | None:
    """The check's baseline (``find_only``: only whether it is there, read by nothing);
    one that harness.toml names and that cannot be loaded is said with the file and key it
    came from, as other harness.toml messages are."""
    if not settings.baseline:
        return None
    try:
        if find_only:
            find_source(settings.baseline, home)
            return None
        return load_run(settings.baseline, home)
    except (RunNotFound, DataError) as e:
        if settings.baseline_from is None:
            raise
        raise ConfigError(f"{settings.baseline_from}: {e}") from None


def check_gates(
    *,
    home: str | os.PathLike[str] | Home | None = None,
    baseline: str | None = None,
    minimums: Sequence[str] = (),
    maximums: Sequence[str] = (),
    max_drops: Sequence[str] = (),
    max_error_rate: float | None = None,
    cluster: str | None = None,
    max_missing: float | None = None,
) -> CheckSettings:
    """The gates and settings ``check_ref`` would apply, checked without loading a run:
    ``harness run --check`` refuses a bad gate, or a baseline that is not there, before the
    run, not after it."""
    home = resolve_home(home)
    options = [
        *(parse_gate_option("min", text) for text in minimums),
        *(parse_gate_option("max", text) for text in maximums),
        *(parse_gate_option("max_drop", text) for text in max_drops),
    ]
    if max_error_rate is not None:
        options.append(Gate("errors", "max_rate", max_error_rate, "option"))
    settings = check_settings(
        home.settings,
        base_dir=home.path,
        options=options,
        baseline=baseline,
        cluster=cluster,
        max_missing=max_missing,
    )
    _load_baseline(settings, home, find_only=True)
    return settings
