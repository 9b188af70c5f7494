"""The HTML report's comparison and check sections, drawn from the same result objects as
every other surface (``Comparison``, ``CheckResult``), with the numbers formatted by
``harness.numbers``: a forest plot of each metric's change with its interval and verdict,
the table the markdown shows, how each metric was compared, and the rows that flipped.
The page around them is ``harness.report``'s.
"""

from __future__ import annotations

from harness.compare.render import MEAN_DIGITS
from harness.compare.result import (
    BETTER,
    CHANGED,
    FAIL,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    PASS,
    UNDECIDED,
    VERDICTS,
    WORSE,
    CandidateResult,
    CheckResult,
    Comparison,
    interval_legend,
)
from harness.report import Section, markup
from harness.report.page import environment
from harness.report.svg import ForestRow, forest

__all__ = ["check_banner", "check_section", "comparison_section", "forest_plot"]

VERDICT_CLASS = {
    BETTER: "better",
    WORSE: "worse",
    NO_DIFFERENCE: "same",
    INCONCLUSIVE: "unsure",
    CHANGED: "changed",
}
OUTCOME_WORD = {PASS: "Pass", FAIL: "Fail", UNDECIDED: "Cannot decide"}


def forest_plot(candidate: CandidateResult) -> str:
    """Each metric's change for ``candidate``, as ``harness.report.svg.forest`` draws it."""
    rows = [
        ForestRow(
            m.metric, m.stats.diff, m.stats.low, m.stats.high, m.margin, m.direction, m.verdict
        )  # fmt: skip
        for m in candidate.metrics
    ]
    return forest(rows, f"changes of {candidate.run.label} against the base, with 95% intervals")


def _render(**context: object) -> str:
    template = environment("harness.compare.render").get_template("comparison.html.j2")
    return template.render(
        verdicts=VERDICTS,
        verdict_class=VERDICT_CLASS,
        interval_legend=interval_legend,
        mean_digits=MEAN_DIGITS,
        **context,
    )


def comparison_section(comparison: Comparison) -> Section:
    """Every candidate against the base: forest plot, table, method, flipped rows."""
    html = _render(
        mode="comparison",
        comparison=comparison,
        forests=[forest_plot(c) for c in comparison.candidates],
        total_metrics=sum(len(c.metrics) for c in comparison.candidates),
    )
    return Section("comparison", "Comparison", markup(html))


def check_banner(result: CheckResult) -> str:
    """ "Pass: ...", "Fail: ...", "Cannot decide: ..." (the summary of an undecided check
    says so itself)."""
    summary = result.summary()
    if summary.startswith("cannot decide"):
        return summary[0].upper() + summary[1:]
    return f"{OUTCOME_WORD[result.outcome]}: {summary}"


def check_section(result: CheckResult) -> Section:
    """The check's outcome and each gate's, with the numbers that decided it."""
    html = _render(mode="check", result=result, banner=check_banner(result))
    return Section("check", "Check", markup(html))
