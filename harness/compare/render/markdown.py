"""Markdown for a PR comment (``--markdown``) and the GitHub step summary.

GitHub-flavoured: tables, and ``<details>`` for what a reviewer opens only when needed.
Cell text is escaped so an answer containing ``|``, HTML or Markdown shows as it is and
cannot break the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from harness.compare.render import MEAN_DIGITS
from harness.compare.result import (
    BETTER,
    FAIL,
    PASS,
    VERDICTS,
    WORSE,
    CandidateResult,
    CheckResult,
    Comparison,
    FlippedRow,
    RunRef,
    interval_legend,
)
from harness.numbers import ci, clip, mde, mean_ci, number, p_value, signed
from harness.slices.labels import shown_value
from harness.stats.paired import MeanEstimate
from harness.wording import plural

__all__ = ["check_markdown", "comparison_markdown"]

MARK = {PASS: "✅", FAIL: "❌"}
VERDICT_MARK = {BETTER: "🟢 ", WORSE: "🔴 "}
CELL_WIDTH = 300


# Markdown's inline syntax in an answer, an input or a slice value is shown, not followed:
# `**`, `~~`, `_x_` and backticks would restyle the text (a value `**f**` read as f), and
# `[text](url)` or `![x](url)` put a link or an image the PR page loads into the comment.
# A backslash before each keeps the text as it is; `_` inside a word (exact_match) is
# left alone, as Markdown reads it as text there; `](` is enough to break a link or image.
_INLINE = re.compile(r"[\\`*~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|\](?=\()")


def _cell(text: object) -> str:
    if not text:
        return ""
    shown = html.escape(clip(str(text), CELL_WIDTH), quote=False)
    return _INLINE.sub(lambda m: "\\" + m.group(0), shown).replace("|", "\\|")


def _code(text: object) -> str:
    """``text`` as one code span, shown exactly: nothing inside one is read as an escape or
    an entity, so it is fenced with more backticks than any run of them it holds."""
    body = clip(str(text), CELL_WIDTH)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _run(run: RunRef) -> str:
    # A run with no name is named by its id (its label), shown once: `ID` (`MODEL` on ...).
    named = f"**{_cell(run.label)}** (`{run.run_id}`, " if run.run_name else f"`{run.run_id}` ("
    if not run.run_name and run.origin != "store":
        named += f"{_cell(run.origin)}, "
    return (
        named + f"{_code(run.model)} on "
        f"{_code(f'{run.dataset}@{run.dataset_version}')}, {plural(run.rows, 'row')}"
        + (f", {run.errors:,} failed" if run.errors else "")
        + ")"
    )


def _note_lines(notes: Iterable[str]) -> list[str]:
    """Each note a quote of its own, a blank line after it: quoted lines that follow one
    another are one paragraph in Markdown, so the notes ran together into one."""
    return [line for note in notes for line in (f"> **Note:** {_cell(note)}", "")]


def comparison_markdown(comparison: Comparison, *, heading: str = "###") -> str:
    lines = [f"{heading} harness compare", "", f"Base: {_run(comparison.base)}", ""]
    lines += _note_lines(comparison.notes)
    for candidate in comparison.candidates:
        lines += _candidate(comparison, candidate, heading)
    return "\n".join(lines) + "\n"


def _candidate(comparison: Comparison, candidate: CandidateResult, heading: str) -> list[str]:
    lines = [f"{heading}# Candidate: {_run(candidate.run)}", ""]
    lines += _note_lines(candidate.notes)
    cluster = f", clustered by {_code(comparison.cluster)}" if comparison.cluster else ""
    # No legend when no metric has an interval (one row, no spread), as in the terminal:
    # the notes say why, and no sentence claims intervals the table does not show.
    # Nor the adjustment's sentence when none of its metrics has a p-value.
    legend = _cell(candidate.interval_legend)
    adjusted = "p-values Holm-adjusted across every metric compared."
    sentences = [
        f"{candidate.paired:,} paired {'row' if candidate.paired == 1 else 'rows'}{cluster}.",
        *([legend] if legend else []),
        *([adjusted] if candidate.tested else []),
    ]
    lines += [
        " ".join(sentences),
        "",
        "| metric | base | candidate | change [95% CI] | p (adj.) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for m in candidate.metrics:
        s = m.stats
        arrow = {1: " ↑", -1: " ↓"}.get(m.direction, "")
        lines.append(
            f"| {_cell(m.metric)}{arrow} | {_mean(s.base)} | "
            f"{_mean(s.candidate)} | "
            f"{signed(s.diff)} {ci(s.low, s.high)} | {p_value(m.p_adjusted)} | "
            f"{VERDICT_MARK.get(m.verdict, '')}{m.verdict} |"
        )
    lines += [
        "",
        "<details><summary>How each metric was compared</summary>",
        "",
        "| metric | rows | missing | test | p | interval | MDE (80% power) | correlation "
        "| margin |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in candidate.metrics:
        s = m.stats
        lines.append(
            f"| {_cell(m.metric)} | {s.n:,} | {m.missing:,} | {s.test} | {p_value(s.p_value)} | "
            f"{s.interval} | {mde(s.mde, s.max_change, s.mde_exceeds_range)} | "
            f"{number(s.correlation, 2)} | "
            f"{number(m.margin, 3)} ({_cell(m.margin_rule)}) |"
        )
    lines += ["", f"{candidate.mde_legend}.", "", "Verdicts:", ""]
    lines += [f"- **{name}**: {meaning}" for name, meaning in VERDICTS.items()]
    lines += ["", "</details>", ""]
    lines += _slices(comparison, candidate)
    lines += _flips(candidate)
    return lines


def _mean(estimate: MeanEstimate) -> str:
    return mean_ci(estimate.mean, estimate.low, estimate.high, MEAN_DIGITS)


def _slices(comparison: Comparison, candidate: CandidateResult) -> list[str]:
    lines: list[str] = []
    for column in comparison.by:
        slices = [s for s in candidate.slices if s.column == column]
        lines += [
            f"**By {_code(column)}**: {plural(len(slices), 'value')}; p-values Holm-adjusted "
            f"across {plural(comparison.slice_comparisons, 'slice comparison')}.",
            "",
            f"| {_cell(column)} | rows | metric | base | candidate | change [95% CI] | p (adj.) "
            "| verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in slices:
            value = _cell(shown_value(s.value))
            for i, m in enumerate(s.metrics):
                st = m.stats
                lines.append(
                    (f"| {value} | {s.paired:,} " if i == 0 else "| | ")
                    + f"| {_cell(m.metric)} | {_mean(st.base)} "
                    f"| {_mean(st.candidate)} | "
                    f"{signed(st.diff)} {ci(st.low, st.high)} | {p_value(m.p_adjusted)} | "
                    f"{VERDICT_MARK.get(m.verdict, '')}{m.verdict} |"
                )
        lines.append("")
        legend = interval_legend([m for s in slices for m in s.metrics])
        if legend and legend != candidate.interval_legend:  # a slice with no spread
            lines += [_cell(legend), ""]
        notes = [note for s in slices for note in s.notes]
        lines += _note_lines(notes)
    return lines


def _flips(candidate: CandidateResult) -> list[str]:
    worse = candidate.regressions_total
    lines = [
        f"**{worse:,}** {'row' if worse == 1 else 'rows'} got worse, "
        f"**{candidate.improvements_total:,}** "
        "got better.",
        "",
    ]
    for title, rows, total, kind in (
        ("Rows that got worse", candidate.regressions, candidate.regressions_total, "worse"),
        ("Rows that got better", candidate.improvements, candidate.improvements_total, "better"),
    ):
        if not rows:
            continue
        shown = f" (first {len(rows):,} of {total:,})" if total > len(rows) else ""
        lines += [f"<details><summary>{title}{shown}</summary>", ""]
        for row in rows:
            lines += _row(row, kind)
        lines += ["</details>", ""]
    return lines


def _row(row: FlippedRow, kind: str) -> list[str]:
    changes = ", ".join(
        f"{_cell(c.metric)} {number(c.base, 3)} → {number(c.candidate, 3)}"
        for c in (row.worse if kind == "worse" else row.better)
    )
    base = row.base_output if row.base_error is None else f"[failed] {row.base_error}"
    candidate = (
        row.candidate_output if row.candidate_error is None else f"[failed] {row.candidate_error}"
    )
    lines = [
        f"**Row {_code(row.example_id)}**: {changes}",
        "",
        "| | |",
        "|---|---|",
        f"| input | {_cell(row.input)} |",
    ]
    if row.expected:
        lines.append(f"| expected | {_cell(' || '.join(row.expected))} |")
    lines += [f"| base | {_cell(base)} |", f"| candidate | {_cell(candidate)} |"]
    for judge, b, c in row.judge_lines():
        if b:
            lines.append(f"| {_cell(judge)} (base) | {_cell(b)} |")
        if c:
            lines.append(f"| {_cell(judge)} (candidate) | {_cell(c)} |")
    return [*lines, ""]


def check_markdown(result: CheckResult) -> str:
    mark = MARK.get(result.outcome, "⚠️")
    lines = [f"### {mark} harness check: {result.outcome}", "", _cell(result.summary()), ""]
    if result.candidate:
        lines.append(f"Candidate: {_run(result.candidate)}  ")
    if result.baseline:
        lines.append(f"Baseline: {_run(result.baseline)}")
    lines.append("")
    lines += _note_lines(result.lead_notes())
    if result.gates:
        lines += ["", "| gate | result | observed | 95% CI | why |", "|---|---|---|---|---|"]
        for g in result.gates:
            observed = signed(g.observed, 4) if g.gate.needs_baseline else number(g.observed)
            lines.append(
                f"| {MARK.get(g.outcome, '⚠️')} {_cell(g.gate.name)} | {g.finding} | "
                f"{observed} | {ci(g.low, g.high)} | {_cell(result.why(g))} |"
            )
    lines.append("")
    if result.comparison is not None:
        lines.append(comparison_markdown(result.comparison, heading="####"))
    return "\n".join(lines) + "\n"
