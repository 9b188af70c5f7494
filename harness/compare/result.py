"""The results of ``compare`` and ``check``: plain dataclasses that every surface renders.

The terminal table, ``--json``, ``--markdown``, JUnit XML, the GitHub step summary and
``::error::`` lines, and the MLflow tag and artifact are all rendered from these objects
(``harness.compare.render``), so they show the same numbers. ``as_dict`` is the JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import CheckFailed, CheckUndecided
from harness.numbers import range_text
from harness.slices.labels import shown_value
from harness.stats import PairedDifference
from harness.stats.paired import ONE_CLUSTER_CHANGE
from harness.wording import plural

__all__ = [
    "EXIT_FAIL",
    "EXIT_PASS",
    "EXIT_UNDECIDED",
    "VERDICTS",
    "CandidateResult",
    "CheckResult",
    "Comparison",
    "FlippedRow",
    "Gate",
    "GateResult",
    "MetricResult",
    "RunRef",
    "ScoreChange",
    "SliceComparison",
    "interval_legend",
    "metric_notes",
]

# Exit codes of `harness check` (and `harness run --check`). 2 is bad input, as everywhere.
EXIT_PASS = 0
EXIT_FAIL = CheckFailed.exit_code  # 1: a gate failed, the data show the candidate is worse
EXIT_UNDECIDED = CheckUndecided.exit_code  # 3: too few rows, too many failed, no baseline...

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
INCONCLUSIVE = "inconclusive"
CHANGED = "changed"  # a significant change of a metric with no better direction

# Why a metric compared on one paired row has no interval, p-value or MDE (the change), and
# its means no interval: the words a run's slice of one row says (harness.slices.table).
ONE_ROW_CHANGE = "one row: an interval, a p-value or an MDE needs two or more"
ONE_ROW_MEAN = "one row: an interval needs two or more"
VERDICTS = {
    BETTER: "the candidate scores higher (lower, where lower is better), beyond chance",
    WORSE: "the candidate scores lower (higher, where lower is better), beyond chance",
    NO_DIFFERENCE: "no difference found, and the interval rules out any larger than the margin",
    INCONCLUSIVE: "no difference found, but the interval is wider than the margin: more rows",
    CHANGED: "the scores moved beyond chance; the metric has no better direction",
}

PASS = "pass"
FAIL = "fail"
UNDECIDED = "undecided"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither), recursively: what
    ``as_dict`` returns, so every JSON surface (``--json``, the MLflow artifact) agrees."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class RunRef:
    """Which run a side of a comparison is, as the user named it."""

    ref: str  # what was typed: a run id, tag, name or file
    run_id: str
    run_name: str | None
    model: str
    dataset: str
    dataset_version: str
    rows: int
    errors: int | None
    status: str
    origin: str  # "store", or the run file's path
    mlflow_run_id: str | None

    @property
    def label(self) -> str:
        """How tables name the run: its name or id, and the file it came from."""
        name = self.run_name or self.run_id
        return f"{name} ({self.origin})" if self.origin != "store" else name

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "model": self.model,
            "dataset": f"{self.dataset}@{self.dataset_version}",
            "rows": self.rows,
            "errors": self.errors,
            "status": self.status,
            "origin": self.origin,
            "mlflow_run_id": self.mlflow_run_id,
        }


@dataclass(frozen=True)
class MetricResult:
    """One metric of one candidate against the base."""

    metric: str
    direction: int  # +1 higher is better, -1 lower is better, 0 neither
    margin: float  # the smallest difference that matters, in the metric's units
    margin_rule: str  # where the margin came from, in words
    stats: PairedDifference
    missing: int  # rows of the pairing that one side has no score for
    missing_base: int  # of those, the rows the base has no score for
    missing_candidate: int  # and the rows the candidate has none for (a row may be in both)
    p_adjusted: float  # Holm, across every metric and candidate of the comparison
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "verdict": self.verdict,
            "margin": self.margin,
            "margin_rule": self.margin_rule,
            "missing": self.missing,
            "p_adjusted": self.p_adjusted,
            **self.stats.as_dict(),
        }


@dataclass(frozen=True)
class SliceComparison:
    """One value of a ``--by`` column: each metric compared on the paired rows with that
    value, its p-value Holm-adjusted across every slice compared."""

    column: str
    value: str | None  # None: rows without a value
    paired: int
    metrics: list[MetricResult]

    @property
    def notes(self) -> list[str]:
        """Why a cell of the slice has no interval though it has rows (one row, no spread),
        as the notes of the comparison over all rows say: each named by its slice."""
        where = f"{self.column} {shown_value(self.value)}"
        return [f"{where}: {note}" for note in metric_notes(self.metrics)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "paired": self.paired,
            "metrics": [m.as_dict() for m in self.metrics],
            "notes": self.notes,
        }


MEAN_METHODS = {"wilson": "Wilson's", "clustered wilson": "clustered Wilson's"}
CHANGE_METHODS = {
    "t": "paired t",
    "adjusted wald": "adjusted Wald",
    # exact McNemar did not reject "no change": the interval reaches 0 (harness.stats.paired)
    "adjusted wald to 0": "adjusted Wald widened to 0 (exact McNemar cannot reject no change)",
}


def interval_legend(metrics: Sequence[MetricResult]) -> str:
    """Which 95% interval each metric's means and change got, in words, as the run's ``--by``
    heading says it: ``95% intervals of the means: Wilson's for exact_match; t cut at [1, 5]
    for judge. Of the changes: adjusted Wald cut at ±1 for exact_match; paired t cut at ±4
    for judge.`` Metrics without an interval (no spread, too few rows) are left out: their
    notes say why. Empty when no metric has one. Given every slice's metrics, a metric is
    named under each interval its slices got (the sign test's where a slice had no spread)."""
    means: dict[str, list[str]] = {}
    changes: dict[str, list[str]] = {}
    for m in metrics:
        s = m.stats
        for method in dict.fromkeys((s.base.method, s.candidate.method)):
            if method != "none":
                cut = f" cut at {range_text(s.bounds)}" if s.bounds else ""
                name = MEAN_METHODS.get(method, method) + ("" if "wilson" in method else cut)
                _add(means, name, m.metric)
        if s.interval != "none":
            # The sign test's [d, d] is never cut; every other change interval is, at the
            # largest change the scores can show (±1 for 0/1 scores).
            largest = None if s.interval == "exact sign" else s.max_change
            cut = "" if largest is None else f" cut at ±{largest:g}"
            _add(changes, CHANGE_METHODS.get(s.interval, s.interval) + cut, m.metric)
    parts = []
    for what, groups in (("the means", means), ("the changes", changes)):
        if groups:
            named = "; ".join(
                f"{method} for {', '.join(names)}" for method, names in groups.items()
            )
            parts.append(f"{what}: {named}")
    if not parts:
        return ""
    return "95% intervals of " + ". Of ".join(parts) + "."


def _add(groups: dict[str, list[str]], method: str, metric: str) -> None:
    """``metric`` under ``method``, once (the slices of a column name each metric again)."""
    names = groups.setdefault(method, [])
    if metric not in names:
        names.append(metric)


def metric_notes(metrics: Sequence[MetricResult]) -> list[str]:
    """Why the metrics' cells have no interval though they have rows: one note for those
    compared on one row (all of them: ``one row: ...``; else naming them), then each other
    metric's change and means (no spread; an interval widened to 0)."""
    notes = []
    alike: list[str] = []  # one row, or one cluster: one note for the metrics it holds for
    for note in (ONE_ROW_CHANGE, ONE_CLUSTER_CHANGE):
        these = [m.metric for m in metrics if m.stats.interval_note == note]
        if these:
            names = "" if len(these) == len(metrics) else f"{', '.join(these)}: "
            notes.append(names + note)
            alike += these
    others = [m for m in metrics if m.metric not in alike]
    notes += [f"{m.metric}: {m.stats.interval_note}" for m in others if m.stats.interval_note]
    notes += [note for m in others for note in mean_notes(m)]
    return notes


def mean_notes(metric: MetricResult) -> list[str]:
    """Why a run's mean has no interval though it has rows (its scores have no spread, on
    too few rows for the sign test's interval): one note for both runs when they agree."""
    base, candidate = metric.stats.base.interval_note, metric.stats.candidate.interval_note
    if base and base == candidate:
        return [f"{metric.metric}, both runs: {base}"]
    return [
        f"{metric.metric}, {side}: {note}"
        for side, note in (("base", base), ("candidate", candidate))
        if note
    ]


@dataclass(frozen=True)
class ScoreChange:
    metric: str
    base: float | None
    candidate: float | None


@dataclass(frozen=True)
class FlippedRow:
    """A row whose answer got worse or better between the two runs."""

    example_id: str
    input: str | None
    expected: list[str]
    base_output: str | None
    candidate_output: str | None
    base_error: str | None
    candidate_error: str | None
    worse: list[ScoreChange]
    better: list[ScoreChange]
    rationales: dict[str, tuple[str | None, str | None]]  # judge -> (base, candidate)
    # judge -> (base, candidate): why the judge gave no score (its call failed, no verdict)
    judge_errors: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def judge_lines(self) -> list[tuple[str, str | None, str | None]]:
        """(judge, base, candidate) as a reviewer reads them: each side's rationale, then
        ``[failed] ERROR`` where the judge failed there (as a failed model call's output is
        shown; a sample after the first may fail where the first has its rationale), for
        the judges with anything to say."""
        found = []
        for judge, (base, candidate) in self.rationales.items():
            errors = self.judge_errors.get(judge, (None, None))
            sides = [" ".join(filter(None, (text, error and f"[failed] {error}"))) or None
                     for text, error in zip((base, candidate), errors, strict=True)]  # fmt: skip
            if any(sides):
                found.append((judge, sides[0], sides[1]))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "input": self.input,
            "expected": self.expected,
            "base_output": self.base_output,
            "candidate_output": self.candidate_output,
            "base_error": self.base_error,
            "candidate_error": self.candidate_error,
            "worse": [vars(c) for c in self.worse],
            "better": [vars(c) for c in self.better],
            "rationales": {
                judge: {"base": base, "candidate": candidate}
                for judge, (base, candidate) in self.rationales.items()
            },
            "judge_errors": {
                judge: {"base": base, "candidate": candidate}
                for judge, (base, candidate) in self.judge_errors.items()
            },
        }


@dataclass
class CandidateResult:
    """One candidate against the base: the pairing, each metric, the rows that flipped."""

    run: RunRef
    paired: int  # example ids both runs have
    base_only: int
    candidate_only: int
    metrics: list[MetricResult]
    regressions: list[FlippedRow]  # at most the --rows asked for
    improvements: list[FlippedRow]
    regressions_total: int
    improvements_total: int
    notes: list[str] = field(default_factory=list)
    slices: list[SliceComparison] = field(default_factory=list)  # --by: column, then value
    # metric or judge -> the note saying it is defined differently in the two runs
    redefined: dict[str, str] = field(default_factory=dict)
    # the note saying the runs used two datasets or two versions of one (one of ``notes``)
    datasets_note: str | None = None

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.metric == name), None)

    @property
    def tested(self) -> bool:
        """Whether any of its metrics has a p-value (one of Holm's family): a candidate
        that pairs one row with the base has none, whatever the others have."""
        return any(not math.isnan(m.stats.p_value) for m in self.metrics)

    @property
    def interval_legend(self) -> str:
        """Which interval each metric's means and change got (``interval_legend``)."""
        return interval_legend(self.metrics)

    @property
    def mde_legend(self) -> str:
        """What the MDE column says, in words, with what ``> 4 (none)`` means when a metric
        (over all rows or in a slice) has one: the legend of every surface."""
        legend = "MDE: minimum detectable effect (80% power)"
        every = [*self.metrics, *(m for s in self.slices for m in s.metrics)]
        if any(m.stats.mde_exceeds_range for m in every):
            legend += (
                ", '> N (none)' where it exceeds N, the largest change the scores can show "
                "(4 on a 1-5 scale, 1 for 0/1 scores): no change is detectable with these rows"
            )
        out_of_reach = [m.stats for m in every if m.stats.alpha_out_of_reach]
        if out_of_reach:
            alpha = out_of_reach[0].alpha
            # Exact McNemar's smallest p-value, 2 * 0.5^n, is below alpha from this n on.
            rows = math.floor(math.log2(2 / alpha)) + 1
            legend += (
                f"; for 0/1 scores also where these rows cannot give a p-value below {alpha:g} "
                f"even if every row changed the same way (fewer than {rows} rows without "
                "clusters)"
            )
        return legend

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.as_dict(),
            "pairing": {
                "paired": self.paired,
                "base_only": self.base_only,
                "candidate_only": self.candidate_only,
            },
            "metrics": [m.as_dict() for m in self.metrics],
            "flipped": {
                "regressions": self.regressions_total,
                "improvements": self.improvements_total,
                "regressed_rows": [r.as_dict() for r in self.regressions],
                "improved_rows": [r.as_dict() for r in self.improvements],
            },
            "slices": [s.as_dict() for s in self.slices],
            "notes": self.notes,
            "redefined": self.redefined,
        }


@dataclass
class Comparison:
    """``harness compare``: every candidate against one base run."""

    base: RunRef
    candidates: list[CandidateResult]
    alpha: float
    power: float
    cluster: str | None
    notes: list[str] = field(default_factory=list)
    by: list[str] = field(default_factory=list)  # the --by columns sliced

    @property
    def comparisons(self) -> int:
        """How many tests the Holm adjustment over all rows counted (those with a p-value)."""
        return sum(not math.isnan(m.stats.p_value) for c in self.candidates for m in c.metrics)

    @property
    def slice_comparisons(self) -> int:
        """How many tests the slices' Holm adjustment counted (those with a p-value)."""
        return sum(
            not math.isnan(m.stats.p_value)
            for c in self.candidates
            for s in c.slices
            for m in s.metrics
        )

    def as_dict(self) -> dict[str, Any]:
        return json_safe(self._as_dict())

    def _as_dict(self) -> dict[str, Any]:
        return {
            "harness_comparison": 1,
            "alpha": self.alpha,
            "power": self.power,
            "cluster": self.cluster,
            "by": self.by,
            "adjustment": "holm",
            "base": self.base.as_dict(),
            "candidates": [c.as_dict() for c in self.candidates],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Gate:
    """One rule of ``check``: ``metric`` ``rule`` ``threshold`` (e.g. exact_match max_drop 0.02)."""

    metric: str  # a metric or judge name, or "errors"
    rule: str  # min | max | max_drop | max_drop_pct | max_rate
    threshold: float
    origin: str  # "harness.toml", "option" or "default"

    @property
    def name(self) -> str:
        unit = "%" if self.rule == "max_drop_pct" else ""
        return f"{self.metric} {self.rule} {self.threshold:.4g}{unit}"

    @property
    def needs_baseline(self) -> bool:
        return self.rule in ("max_drop", "max_drop_pct")


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    outcome: str  # pass | fail | undecided
    finding: str  # "not worse", "worse", "cannot tell", "below the minimum", ...
    reason: str  # one sentence with the numbers
    observed: float | None  # the candidate's mean or rate, or the change for drop gates
    low: float | None = None  # the 95% interval of the change, for drop gates
    high: float | None = None
    margin: float | None = None  # the allowed drop, in the metric's units
    p_worse: float | None = None  # Holm-adjusted one-sided p of "dropped more than allowed"
    rows_needed: int | None = None  # rows that would tell, if the change stays as measured

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate.name,
            "metric": self.gate.metric,
            "rule": self.gate.rule,
            "threshold": self.gate.threshold,
            "origin": self.gate.origin,
            "outcome": self.outcome,
            "finding": self.finding,
            "reason": self.reason,
            "observed": self.observed,
            "ci": None if self.low is None else [self.low, self.high],
            "margin": self.margin,
            "p_worse": self.p_worse,
            "rows_needed": self.rows_needed,
        }


@dataclass
class CheckResult:
    """``harness check``: the candidate against its gates, and the comparison behind them."""

    candidate: RunRef | None  # None when the run could not finish (a replay miss)
    baseline: RunRef | None
    gates: list[GateResult]
    comparison: Comparison | None
    notes: list[str] = field(default_factory=list)
    undecided_reason: str | None = None  # why nothing could be checked at all

    @property
    def outcome(self) -> str:
        if any(g.outcome == FAIL for g in self.gates):
            return FAIL
        if self.undecided_reason or any(g.outcome == UNDECIDED for g in self.gates):
            return UNDECIDED
        return PASS

    @property
    def exit_code(self) -> int:
        return {PASS: EXIT_PASS, FAIL: EXIT_FAIL, UNDECIDED: EXIT_UNDECIDED}[self.outcome]

    def redefined(self) -> dict[str, str]:
        """The notes of metrics and judges defined differently in the two runs, by name."""
        if self.comparison is None:
            return {}
        return {k: v for c in self.comparison.candidates for k, v in c.redefined.items()}

    def warnings(self) -> list[tuple[str, str]]:
        """What a check warns of, as (title, note): the runs used two datasets or two
        versions of one (rows paired by id may not be the same question), and each metric
        or judge defined differently in the two runs. JUnit's notes and GitHub's
        ``::warning`` lines."""
        found = []
        for candidate in self.comparison.candidates if self.comparison else ():
            if candidate.datasets_note:
                what = candidate.datasets_note.split(":", 1)[0].lower()  # "datasets differ"
                found.append((f"the runs' {what}", candidate.datasets_note))
            found += [(f"{name} is defined differently", note)
                      for name, note in candidate.redefined.items()]  # fmt: skip
        return found

    def lead_notes(self) -> list[str]:
        """The notes shown above the gates: those the comparison below does not show (the
        datasets note is one of the candidate's notes there too)."""
        shown = (
            {n for c in self.comparison.candidates for n in c.notes} if self.comparison else set()
        )
        return [n for n in self.notes if n not in shown]

    def gate_note(self, gate: GateResult) -> str | None:
        """The note a gate's row carries: its metric defined differently in the baseline
        (a gate against the baseline then compares two checks)."""
        return self.redefined().get(gate.gate.metric) if gate.gate.needs_baseline else None

    def why(self, gate: GateResult) -> str:
        """A gate's reason, and its note if it has one: every surface's "why" cell."""
        note = self.gate_note(gate)
        return f"{gate.reason}; note: {note}" if note else gate.reason

    def summary(self) -> str:
        """One line: the outcome and which gates decided it."""
        failed = [g.gate.name for g in self.gates if g.outcome == FAIL]
        undecided = [g.gate.name for g in self.gates if g.outcome == UNDECIDED]
        if failed:
            return f"{len(failed)} of {len(self.gates)} gates failed: {', '.join(failed)}"
        if self.undecided_reason:
            return f"cannot decide: {self.undecided_reason}"
        if undecided:
            text = f"cannot decide {len(undecided)} of {len(self.gates)} gates: "
            if len(undecided) == 1:
                gate = next(g for g in self.gates if g.outcome == UNDECIDED)
                return text + f"{gate.gate.name} ({gate.reason})"
            return text + ", ".join(undecided)
        if len(self.gates) == 1:
            return f"the {plural(1, 'gate')} passed"
        return f"all {plural(len(self.gates), 'gate')} passed"

    def as_dict(self) -> dict[str, Any]:
        return json_safe(self._as_dict())

    def _as_dict(self) -> dict[str, Any]:
        return {
            "harness_check": 1,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "candidate": self.candidate.as_dict() if self.candidate else None,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "gates": [g.as_dict() for g in self.gates],
            "comparison": self.comparison._as_dict() if self.comparison else None,
            "notes": self.notes,
            "undecided_reason": self.undecided_reason,
        }
