"""``harness check``: does a candidate run pass its gates? pass, fail, or cannot tell.

Each gate ends in one of three outcomes, and the check in the worst of them (a failure
beats "cannot tell"), with its own exit code:

- ``min`` / ``max`` / ``errors max_rate``: the candidate's mean (or share of failed rows,
  whose model call or a judge call failed) against the bound: **pass** or **fail**;
- ``max_drop`` / ``max_drop_pct``: the paired difference against the baseline (see
  ``harness.compare.comparison``), with the allowed drop as the margin:
  **fail** ("worse") when the data show a drop larger than allowed: the whole 95% interval of
  the change lies beyond the allowed drop (with several such gates, their one-sided
  p-values are Holm-adjusted, so the chance that any of them fails falsely stays 2.5%);
  **pass** ("not worse") when the whole interval lies above it: any true drop is smaller
  than allowed;
  **undecided** ("cannot tell") when the interval straddles it: these rows cannot tell,
  and the result says about how many would, if the change stays as measured;
  with no spread in the changes (a scale that changed alike on every row) there is no
  interval, and the exact sign test's one-sided p-values decide (``harness.stats.paired``).
  For 0/1 scores a gate's p-value for "worse" is at least exact McNemar's one-sided one
  against no change, so no gate fails where that test cannot tell a drop from none (5 rows
  that all dropped: p = 0.031 > 0.025), and the interval shown then reaches 0.

A gate is also undecided, whatever its numbers, when more than ``max_missing`` of its rows
have no score in one of the runs (failed rows, failed judge calls, rows the run did not
reach), and a drop gate is undecided without a baseline. With no gate configured at all, every
metric with a better direction gets a ``max_drop`` gate at compare's default margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.compare.comparison import DEFAULT_ROWS, Margin, compare
from harness.compare.gates import DEFAULT_MAX_MISSING
from harness.compare.result import (
    FAIL,
    PASS,
    UNDECIDED,
    CheckResult,
    Comparison,
    Gate,
    GateResult,
    MetricResult,
)
from harness.compare.sources import ERRORS, LoadedRun, RunScores, run_scores
from harness.errors import ConfigError
from harness.metrics import metric_direction
from harness.numbers import number, signed
from harness.stats import DEFAULT_ALPHA, holm
from harness.stats.quantiles import normal_quantile, t_quantile
from harness.store.scores import Bounds
from harness.wording import plural

__all__ = ["check", "undecided"]


@dataclass
class _DropTest:
    gate: Gate
    result: MetricResult
    p_worse: float
    p_not_worse: float


def check(
    candidate: LoadedRun,
    baseline: LoadedRun | None,
    gates: Sequence[Gate],
    *,
    cluster: str | None = None,
    max_missing: float = DEFAULT_MAX_MISSING,
    rows: int = DEFAULT_ROWS,
    alpha: float = DEFAULT_ALPHA,
    settings_file: str = "harness.toml",
) -> CheckResult:
    """Check ``candidate`` against ``gates`` (and ``baseline``, for drop gates);
    ``settings_file`` is the harness.toml the ``[check]`` table's gates came from.

    Raises ConfigError for a gate on a metric the candidate has no scores for, or a drop
    gate on a metric with no better direction.
    """
    scores = run_scores(candidate)
    notes = list(candidate.notes) + (baseline.notes if baseline else [])
    for gate in gates:
        # a gate of the [check] table is named as gates.py names its mistakes
        where = f"{settings_file}: [check] " if gate.origin == "harness.toml" else ""
        if gate.metric not in scores.values.columns:
            raise ConfigError(
                f"{where}gate {gate.name}: the candidate has no {gate.metric!r} scores; "
                f"it has {', '.join(scores.order)}"
            )
        if gate.needs_baseline and metric_direction(gate.metric, scores.directions) == 0:
            raise ConfigError(
                f"{where}gate {gate.name}: {gate.metric} has no better direction, so it "
                "cannot drop; bound it with min or max"
            )
        _check_reachable(gate, scores.bounds, where)
    if not gates and baseline is None:
        return CheckResult(
            candidate.ref, None, [], None, notes,
            undecided_reason="no baseline and no gates: give --baseline RUN|FILE "
            "(or [check] baseline in harness.toml), or gates such as --min METRIC=VALUE",
        )  # fmt: skip
    comparison = None
    if baseline is not None and (not gates or any(g.needs_baseline for g in gates)):
        margins: dict[str | None, Margin] = {
            g.metric: Margin(g.threshold, g.rule == "max_drop_pct", f"{g.rule} ({g.origin})")
            for g in gates
            if g.needs_baseline
        }
        comparison = compare(
            baseline, [candidate], cluster=cluster, margins=margins, rows=rows, known_margins=False
        )
        # Rows of two datasets paired by id: a note of the check's own too (--json, JUnit,
        # GitHub's ::warning), not only of the comparison behind it.
        notes += [c.datasets_note for c in comparison.candidates if c.datasets_note]
    if not gates and comparison is not None:
        gates = _default_gates(comparison)
        notes.append(
            "no gates configured: every metric with a better direction is checked for a "
            "drop beyond compare's default margin"
        )
    gates = _in_order(gates, scores)
    results: dict[int, GateResult] = {}
    drops: dict[int, _DropTest] = {}
    for i, gate in enumerate(gates):
        if gate.needs_baseline:
            outcome = _drop_test(gate, comparison, baseline, max_missing, candidate)
            if isinstance(outcome, GateResult):
                results[i] = outcome
            else:
                drops[i] = outcome
        else:
            results[i] = _bound(gate, scores, candidate, max_missing)
    adjusted = holm([d.p_worse for d in drops.values()])
    for (i, drop), p_worse in zip(drops.items(), adjusted, strict=True):
        results[i] = _drop_result(drop, p_worse, alpha, len(drops))
    return CheckResult(
        candidate.ref,
        baseline.ref if baseline else None,
        [results[i] for i in range(len(gates))],
        comparison,
        notes,
    )


RULE_ORDER = ("min", "max", "max_drop", "max_drop_pct", "max_rate")


def _in_order(gates: Sequence[Gate], scores: RunScores) -> list[Gate]:
    """Gates in the order of the run's metrics (errors last), then of their rules."""
    position = {metric: i for i, metric in enumerate(scores.order)}
    return sorted(gates, key=lambda g: (position.get(g.metric, 0), RULE_ORDER.index(g.rule)))


def undecided(reason: str) -> CheckResult:
    """A check that could not look at any run (``run --check`` met a replay miss): every
    surface still reports it, with ``reason``, as "cannot decide"."""
    return CheckResult(None, None, [], None, undecided_reason=reason)


def _default_gates(comparison: Comparison) -> list[Gate]:
    return [
        Gate(m.metric, "max_drop", m.margin, "default")
        for m in comparison.candidates[0].metrics
        if m.direction != 0 and m.metric != ERRORS
    ]


def _missing(missing: int, total: int, what: str, max_missing: float) -> str | None:
    if total and missing / total > max_missing:
        return (
            f"{missing:,} of {total:,} rows have no {what} (failed rows or judge calls, or rows "
            f"the run did not reach): more than the {max_missing:.0%} a gate may miss"
        )
    if not total or missing == total:
        return f"no row has {what}"
    return None


def _bound(gate: Gate, scores: RunScores, candidate: LoadedRun, max_missing: float) -> GateResult:
    total = max(candidate.record.info.rows_total, len(scores.rows))
    column = scores.values[gate.metric]
    if gate.metric == ERRORS:
        # A row failed when its model call or one of its judge calls did (the errors
        # column: the run's own count, as `harness run` and `harness compare` say it).
        failed, done = int(column.sum()), len(column)
        model_failed = int(scores.rows["error"].notna().sum())
        missing = _missing(total - done, total, "result", max_missing)
        rate = failed / done if done else math.nan
        if missing:
            return GateResult(gate, UNDECIDED, "cannot tell", missing, rate)
        counted = f"{failed:,} of {done:,} rows failed ({rate:.1%}"
        if failed > model_failed:
            counted += f"; {failed - model_failed:,} of them by a judge call only"
        if rate > gate.threshold:
            return GateResult(
                gate, FAIL, "too many failed rows",
                f"{counted}), more than the {gate.threshold:.1%} allowed", rate,
            )  # fmt: skip
        return GateResult(
            gate, PASS, "within the limit",
            f"{counted}); at most {gate.threshold:.1%} allowed", rate,
        )  # fmt: skip
    scored = column.dropna()
    missing = _missing(total - len(scored), total, f"{gate.metric} score", max_missing)
    mean = float(scored.mean()) if len(scored) else math.nan
    if missing:
        return GateResult(gate, UNDECIDED, "cannot tell", missing, mean)
    below = gate.rule == "min" and mean < gate.threshold
    above = gate.rule == "max" and mean > gate.threshold
    if below or above:
        where = "below the minimum" if below else "above the maximum"
        return GateResult(
            gate, FAIL, where, f"{gate.metric} is {mean:.4g}, {where} {gate.threshold:g}", mean
        )
    word = "at least" if gate.rule == "min" else "at most"
    return GateResult(
        gate, PASS, "within the bound",
        f"{gate.metric} is {mean:.4g}; {word} {gate.threshold:g} required", mean,
    )  # fmt: skip


def _unreached(run: LoadedRun) -> int:
    """Rows a stopped or interrupted run did not reach: they are in no pairing, and count as
    missing scores, as a ``min`` gate counts them."""
    info = run.record.info
    return max(0, info.rows_total - info.rows_done)


def _reached_by_neither(baseline: LoadedRun, candidate: LoadedRun) -> int:
    """Rows of one eval set (the same dataset and version) that neither stopped run
    reached: counted once, not once per run. Runs of two versions share no such count."""
    b, c = baseline.record.info, candidate.record.info
    if not (_unreached(baseline) and _unreached(candidate)):
        return 0
    if (b.dataset, b.dataset_version, b.rows_total) != (c.dataset, c.dataset_version, c.rows_total):
        return 0
    reached = set(baseline.record.rows()["id"]) | set(candidate.record.rows()["id"])
    return max(0, b.rows_total - len(reached))


def _drop_test(
    gate: Gate,
    comparison: Comparison | None,
    baseline: LoadedRun | None,
    max_missing: float,
    candidate_run: LoadedRun,
) -> GateResult | _DropTest:
    if baseline is None or comparison is None:
        return GateResult(
            gate, UNDECIDED, "cannot tell",
            "no baseline to compare with: give --baseline RUN|FILE or [check] baseline", None,
        )  # fmt: skip
    candidate = comparison.candidates[0]
    result = candidate.metric(gate.metric)
    if result is None:
        return GateResult(
            gate, UNDECIDED, "cannot tell",
            f"the baseline has no {gate.metric!r} scores to compare with: record the baseline "
            f"again with {gate.metric} (its model calls come from the cache), or bound "
            f"{gate.metric} with --min or a [check] min until then", None,
        )  # fmt: skip
    in_base = result.missing_base + _unreached(baseline)
    in_candidate = result.missing_candidate + _unreached(candidate_run)
    unreached = (
        _unreached(baseline)
        + _unreached(candidate_run)
        - _reached_by_neither(baseline, candidate_run)
    )
    missing = _missing(result.missing + unreached, candidate.paired + unreached,
                       f"{gate.metric} score {_lacking(in_base, in_candidate)}",
                       max_missing)  # fmt: skip
    if missing or math.isnan(result.stats.p_value):
        n = result.stats.n
        few = f"{plural(n, 'paired row')} {'is' if n == 1 else 'are'} too few"
        if result.stats.clusters == 1:  # rows enough, but all of one cluster
            few = f"{plural(n, 'paired row')} of one cluster {'is' if n == 1 else 'are'} too few"
        reason = missing or f"{few} to estimate a change"
        return GateResult(gate, UNDECIDED, "cannot tell", reason, result.stats.diff)
    stats, m = result.stats, result.margin
    if result.direction > 0:
        p_worse, p_not_worse = stats.p_less(-m), stats.p_greater(-m)
    else:
        p_worse, p_not_worse = stats.p_greater(m), stats.p_less(m)
    return _DropTest(gate, result, p_worse, p_not_worse)


def _lacking(in_base: int, in_candidate: int) -> str:
    """Which run lacks the scores of a gate's missing rows, in words."""
    if not in_base:
        return "in the candidate"
    if not in_candidate:
        return "in the baseline"
    return f"in one run or both ({in_base:,} in the baseline, {in_candidate:,} in the candidate)"


def _drop_result(drop: _DropTest, p_worse: float, alpha: float, family: int) -> GateResult:
    gate, result = drop.gate, drop.result
    stats, margin, direction = result.stats, result.margin, result.direction
    change = stats.diff * direction  # > 0: the good way
    interval = f"{signed(stats.diff, 4)} (95% CI {signed(stats.low, 4)} to {signed(stats.high, 4)})"
    if stats.no_spread:  # the exact sign test decides (harness.stats.paired)
        each = "cluster's mean" if stats.clusters else "row"
        interval = f"{signed(stats.diff, 4)} on every {each} (no spread)"
    units = plural(stats.clusters, "cluster") if stats.clusters else plural(stats.n, "row")
    by = f" (exact sign test on {units})" if stats.no_spread else ""
    allowed = number(margin) + (f" ({gate.threshold:g}%)" if gate.rule == "max_drop_pct" else "")
    way = "drop" if direction > 0 else "rise"
    if p_worse < alpha / 2:
        outcome, finding = FAIL, "worse"
        reason = f"worse: the change is {interval}, a {way} larger than the {allowed} allowed{by}"
        needed = None
    elif drop.p_not_worse < alpha / 2:
        outcome, finding = PASS, "not worse"
        reason = f"not worse: the change is {interval}; a {way} beyond {allowed} is ruled out{by}"
        needed = None
    else:
        outcome, finding = UNDECIDED, "cannot tell"
        if stats.no_spread:
            needed = _rows_needed_sign(stats.n, change, margin, stats.clusters, alpha)
        elif stats.discordant is not None and stats.df is None and not stats.clusters:
            needed = _rows_needed_adjusted(stats.n, stats.discordant, direction, margin, alpha)
        else:
            needed = _rows_needed(
                stats.n, stats.interval_se, change, margin, stats.clusters, stats.df, alpha
            )
        more = f"; about {needed or 0:,} rows would tell, if the change stays as measured"
        subject, reaches = "the interval", f"reaches past the {way} of {allowed} allowed"
        if stats.no_spread:
            subject = f"the exact sign test on {units}"
            reaches = f"cannot tell it from the {way} of {allowed} allowed"
        if drop.p_worse < alpha / 2:
            # The shown 95% interval is one gate's alone and clears the allowed drop; the
            # decision is Holm's across the gates, which asks for more: say which decided.
            reaches = (
                f"shows a {way} larger than the {allowed} allowed, but adjusted for "
                f"{family} gates (Holm) the evidence is not enough"
            )
            more = ""
        reason = (
            f"cannot tell with {stats.n:,} rows: the change is {interval}, and {subject} "
            f"{reaches}{more if needed is not None else ''}"
        )
    return GateResult(
        gate,
        outcome,
        finding,
        reason,
        observed=stats.diff,
        low=stats.low,
        high=stats.high,
        margin=margin,
        p_worse=p_worse,
        rows_needed=needed,
    )


def _rows_needed_sign(
    n: int, change: float, margin: float, clusters: int | None, alpha: float
) -> int | None:
    """Rows with no spread: the fewest whose exact sign test tells, if every row keeps
    changing alike (``0.5^rows < alpha / 2``); None on the bound itself or with clusters."""
    if change + margin == 0 or clusters is not None:
        return None
    needed = math.floor(math.log2(2 / alpha)) + 1
    return needed if needed > n else None


def _rows_needed_adjusted(
    n: int, discordant: tuple[int, int], direction: int, margin: float, alpha: float
) -> int | None:
    """0/1 scores: the fewest rows whose adjusted Wald interval (``harness.stats.paired``:
    one discordant pair of each kind added) clears the allowed drop, if the rows keep
    changing as measured (the same shares losing and gaining). Projecting the measured SE
    instead counts the added pairs as if they were rows that changed: identical runs said
    about 2,305 rows would tell at 3 rows and 300 at 60, where 137 do at any n. Where the
    gate's p-value is also exact McNemar's (a drop past the allowed one is a drop), its
    one-sided p on that many rows' losses and gains must be below ``alpha / 2`` too."""
    only_base, only_candidate = discordant
    z = normal_quantile(1 - alpha / 2)
    side = (only_candidate - only_base) * direction / n + margin  # > 0: toward "not worse"
    if abs(side) < 1e-12:
        return None
    exact = side < 0 or margin <= 0  # the threshold lies on the far side of 0 (paired.py)
    from scipy import special  # ~0.15 s to import: only when a gate cannot tell

    def clears(rows: int) -> bool:
        lost = (only_base * rows / n + 1) / (rows + 2)
        gained = (only_candidate * rows / n + 1) / (rows + 2)
        center = (gained - lost) * direction
        se = math.sqrt(max(lost + gained - (gained - lost) ** 2, 0.0) / (rows + 2))
        if (center + margin) * math.copysign(1.0, side) < z * se:
            return False
        if not exact:
            return True
        losses, gains = round(only_base * rows / n), round(only_candidate * rows / n)
        if direction < 0:
            losses, gains = gains, losses
        toward = losses if side < 0 else gains  # the way the gate would decide
        if toward == 0:
            return False
        return float(special.bdtrc(toward - 1, losses + gains, 0.5)) < alpha / 2

    return _fewest_rows(clears, n + 1)


def _fewest_rows(clears: Callable[[int], bool], start: int) -> int | None:
    """The fewest rows from ``start`` on that ``clears`` (which holds from some count on):
    doubling, then bisecting. None when no count up to a billion does (a change that sits
    too near the bound)."""
    low = high = start
    while not clears(high):
        if high > 10**9:
            return None
        low, high = high + 1, 2 * high
    while low < high:
        middle = (low + high) // 2
        if clears(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _rows_needed(
    n: int,
    interval_se: float,
    change: float,
    margin: float,
    clusters: int | None,
    df: float | None,
    alpha: float,
) -> int | None:
    """The fewest rows whose ``1 - alpha`` interval clears the allowed drop, if the change
    and the spread per row stay as measured (None when the change sits on the bound
    itself). The interval's own quantile at that many rows: ``t(rows - 1)`` for a t
    interval (``df`` not None), which at a few rows needs more of them than ``z`` says."""
    distance = abs(change + margin)
    if distance < 1e-12 or not math.isfinite(interval_se) or clusters is not None:
        return None
    spread = interval_se * math.sqrt(n)  # one row's standard deviation
    z = normal_quantile(1 - alpha / 2)
    low = max(1, math.ceil((z * spread / distance) ** 2))
    if df is not None:  # t(rows - 1) > z: search up from the normal answer

        def clears(rows: int) -> bool:
            return t_quantile(rows - 1, 1 - alpha / 2) * spread / math.sqrt(rows) <= distance

        found = _fewest_rows(clears, max(low, 2))
        if found is None:
            return None
        low = found
    return low if low > n else None


def _check_reachable(gate: Gate, bounds: Bounds, where: str) -> None:
    """A min above a bounded metric's top (``--min exact_match=1.5``), or a max below its
    bottom, is a typo no run can pass: refused, rather than failed as a gate."""
    if gate.metric not in bounds or gate.rule not in ("min", "max"):
        return
    low, high = bounds[gate.metric]
    if (gate.rule == "min" and gate.threshold > high) or (
        gate.rule == "max" and gate.threshold < low
    ):
        raise ConfigError(
            f"{where}gate {gate.name}: {gate.metric} scores from {low:g} to {high:g}, so no run "
            f"can pass it; give a {gate.rule} within that range"
        )
