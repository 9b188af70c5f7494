"""Rich renderables for ``harness compare`` and ``harness check`` (the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.compare.render import MEAN_DIGITS
from harness.compare.result import (
    BETTER,
    CHANGED,
    FAIL,
    INCONCLUSIVE,
    PASS,
    WORSE,
    CandidateResult,
    CheckResult,
    Comparison,
    FlippedRow,
    MetricResult,
    RunRef,
    interval_legend,
)
from harness.numbers import ci, clip, mde, mean_ci, number, p_value, signed
from harness.slices.labels import shown_value
from harness.wording import plural

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["check_renderables", "comparison_renderables"]

VERDICT_STYLE = {BETTER: "bold green", WORSE: "bold red", INCONCLUSIVE: "yellow", CHANGED: "cyan"}
OUTCOME_STYLE = {PASS: "green", FAIL: "bold red"}
TEXT_WIDTH = 120


def _run_line(role: str, run: RunRef) -> str:
    # A run with no name is named by its id (its label), shown once: `base: [ID] MODEL ...`.
    named = f"{run.label}  " if run.run_name else ""
    where = f" ({run.origin})" if not run.run_name and run.origin != "store" else ""
    return (
        f"{role}: {named}[{run.run_id}]{where} {run.model} on {run.dataset}@{run.dataset_version}, "
        + plural(run.rows, "row")
        + (f", {run.errors:,} failed" if run.errors else "")
    )


def comparison_renderables(comparison: Comparison) -> list[RenderableType]:
    """The comparison as the terminal shows it: per candidate a table, notes, flipped rows."""
    from rich.text import Text

    out: list[RenderableType] = [Text(_run_line("base", comparison.base), style="bold")]
    out += [Text(f"note: {n}", style="yellow") for n in comparison.notes]
    for candidate in comparison.candidates:
        out += _candidate(comparison, candidate)
    return out


def _candidate(comparison: Comparison, candidate: CandidateResult) -> list[RenderableType]:
    from rich.table import Table
    from rich.text import Text

    out: list[RenderableType] = [Text(""), Text(_run_line("candidate", candidate.run), "bold")]
    for note in candidate.notes:
        loud = note.split(":", 1)[0].isupper()  # "DATASETS DIFFER: ...", "SAMPLES: ..."
        out.append(Text(f"note: {note}", style="bold red" if loud else "yellow"))
    cluster = f", clustered by {comparison.cluster}" if comparison.cluster else ""
    # The family counts the tests that have a p-value; a candidate with none (one row),
    # beside others or not, claims no intervals or adjustment: the notes say why.
    tested = comparison.comparisons
    adjusted = f"; 95% intervals; p adjusted across {plural(tested, 'comparison')} (Holm)"
    table = Table(
        title=f"{plural(candidate.paired, 'paired row')}{cluster}"
        f"{adjusted if candidate.tested else ''}",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    for column in METRIC_COLUMNS:
        table.add_column(column, overflow="fold")
    for m in candidate.metrics:
        table.add_row(*_metric_cells(m))
    out.append(table)
    if candidate.interval_legend:
        out.append(Text(candidate.interval_legend, style="dim"))
    tests = sorted({m.stats.test for m in candidate.metrics} - {"none"})
    out.append(
        Text(
            "margin that matters: "
            + ", ".join(f"{m.metric} {number(m.margin, 3)}" for m in candidate.metrics)
            + (f"; tests: {', '.join(tests)}" if tests else "")  # none on one row
            + f"; {candidate.mde_legend}; "
            "r: correlation of the paired scores",
            style="dim",
        )
    )
    out += _slices(comparison, candidate)
    out.append(
        Text(
            f"{plural(candidate.regressions_total, 'row')} got worse, "
            f"{candidate.improvements_total:,} got better"
            + (
                f" (showing up to {max(len(candidate.regressions), len(candidate.improvements)):,}"
                " of each)"
                if candidate.regressions or candidate.improvements
                else ""
            ),  # fmt: skip
            style="bold",
        )
    )
    for row in candidate.regressions:
        out += _flipped(row, "worse", "red")
    for row in candidate.improvements:
        out += _flipped(row, "better", "green")
    return out


METRIC_COLUMNS = ("metric", "n", "base", "candidate", "change [95% CI]", "p adj", "MDE", "r",
                  "verdict")  # fmt: skip


def _metric_cells(m: MetricResult) -> list[RenderableType]:
    from rich.text import Text

    s = m.stats
    arrow = {1: "↑", -1: "↓"}.get(m.direction, "")
    return [
        Text(f"{m.metric} {arrow}".strip()),
        f"{s.n:,}" + (f" (-{m.missing:,})" if m.missing else ""),
        mean_ci(s.base.mean, s.base.low, s.base.high, MEAN_DIGITS),
        mean_ci(s.candidate.mean, s.candidate.low, s.candidate.high, MEAN_DIGITS),
        f"{signed(s.diff)} {ci(s.low, s.high)}",
        p_value(m.p_adjusted),
        mde(s.mde, s.max_change, s.mde_exceeds_range),
        number(s.correlation, 2) if s.correlation is None or abs(s.correlation) >= 0.01 else "0",
        Text(m.verdict, style=VERDICT_STYLE.get(m.verdict, "")),
    ]


def _slices(comparison: Comparison, candidate: CandidateResult) -> list[RenderableType]:
    """A table per --by column: each value's rows, metric by metric, then why a cell has
    no interval."""
    from rich.table import Table
    from rich.text import Text

    out: list[RenderableType] = []
    for column in comparison.by:
        slices = [s for s in candidate.slices if s.column == column]
        table = Table(
            title=Text(f"by {column}: {plural(len(slices), 'value')}; p adjusted across "
                       f"{plural(comparison.slice_comparisons, 'slice comparison')} (Holm)"),
            title_justify="left", show_edge=False, pad_edge=False,
        )  # fmt: skip
        for name in (column, *METRIC_COLUMNS):
            table.add_column(name, overflow="fold")
        for s in slices:
            value = shown_value(s.value)
            for i, m in enumerate(s.metrics):
                label = Text(f"{value} ({plural(s.paired, 'row')})" if i == 0 else "")
                table.add_row(label, *_metric_cells(m))  # Text: a value is not markup
            table.add_section()
        out.append(table)
        legend = interval_legend([m for s in slices for m in s.metrics])
        if legend and legend != candidate.interval_legend:  # a slice with no spread
            out.append(Text(legend, style="dim"))
        out += [Text(f"note: {note}", style="yellow") for s in slices for note in s.notes]
    return out


def _flipped(row: FlippedRow, kind: str, style: str) -> list[RenderableType]:
    from rich.text import Text

    changes = [
        f"{c.metric} {number(c.base, 3)} → {number(c.candidate, 3)}"
        for c in (row.worse if kind == "worse" else row.better)
    ]
    lines: list[RenderableType] = [Text(f"{kind}: row {row.example_id}  " + ", ".join(changes),
                                        style=style)]  # fmt: skip
    fields = [("input", row.input), ("expected", " || ".join(row.expected) or None)]
    fields += [
        ("base", row.base_output if row.base_error is None else f"[failed] {row.base_error}"),
        (
            "candidate",
            row.candidate_output
            if row.candidate_error is None
            else f"[failed] {row.candidate_error}",
        ),  # fmt: skip
    ]
    for judge, base, candidate in row.judge_lines():
        fields.append((f"{judge} (base)", base))
        fields.append((f"{judge} (candidate)", candidate))
    for name, value in fields:
        if value:
            lines.append(Text(f"  {name + ':':<23} {clip(value, TEXT_WIDTH)}"))  # a long name too
    return lines


def check_renderables(result: CheckResult) -> list[RenderableType]:
    """The gates and the outcome, then the comparison behind them."""
    from rich.table import Table
    from rich.text import Text

    out: list[RenderableType] = []
    if result.candidate:
        out.append(Text(_run_line("candidate", result.candidate), style="bold"))
    if result.baseline:
        out.append(Text(_run_line("baseline", result.baseline), style="bold"))
    out += [Text(f"note: {n}", style="yellow") for n in result.lead_notes()]
    if result.gates:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("gate", "result", "observed", "95% CI", "why"):
            table.add_column(column, overflow="fold")
        for g in result.gates:
            table.add_row(  # Text, not markup: a reason may say "[check]"
                Text(g.gate.name + ("" if g.gate.origin == "option" else f"  ({g.gate.origin})")),
                Text(g.finding, style=OUTCOME_STYLE.get(g.outcome, "yellow")),
                signed(g.observed, 4) if g.gate.needs_baseline else number(g.observed),
                ci(g.low, g.high),
                Text(result.why(g)),
            )
        out.append(table)
    if result.comparison is not None:
        out += [Text(""), *comparison_renderables(result.comparison)]
    style = OUTCOME_STYLE.get(result.outcome, "bold yellow")
    out += [Text(""), Text(f"check: {result.outcome} ({result.summary()})", style=style)]
    return out
