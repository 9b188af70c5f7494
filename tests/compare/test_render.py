"""Every surface renders the same result: the same gates, reasons and numbers."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import html
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from rich.console import Console
from run_files import write_run

from harness.compare import check, compare, load_run
from harness.compare.api import compare_refs
from harness.compare.gates import parse_gate_option
from harness.compare.render.github import error_lines
from harness.compare.render.junit import check_junit
from harness.compare.render.markdown import check_markdown, comparison_markdown
from harness.compare.render.terminal import check_renderables, comparison_renderables
from harness.config import resolve_home
from harness.numbers import ci
from harness.report.page import render_report
from harness.report.rows import _CHUNK_ROWS, Flips, ReportRun, pack, packed_rows, rows_payload
from harness.report.scores import report_metrics
from harness.store.exports import read_run_file
from harness.store.scores import record_scores


def test_one_result_renders_the_same_everywhere(tmp_path: Path, home: Path) -> None:
    rng = np.random.default_rng(11)
    base = (rng.random(300) < 0.5).astype(float)
    worse = base.copy()
    worse[np.flatnonzero(base)[:40]] = 0
    f1 = rng.random(300)
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": base, "token_f1": f1})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": worse, "token_f1": f1})
    h = resolve_home(home)
    result = check(
        load_run(str(tmp_path / "c.jsonl"), h),
        load_run(str(tmp_path / "b.jsonl"), h),
        [parse_gate_option("max_drop", "exact_match=0.02"),
         parse_gate_option("max_drop", "token_f1=0.02")],
    )  # fmt: skip
    console = Console(record=True, width=400)
    for renderable in check_renderables(result):
        console.print(renderable)
    terminal = console.export_text()
    markdown = check_markdown(result)
    junit = ET.fromstring(check_junit(result))
    document = json.loads(json.dumps(result.as_dict()))
    lines = error_lines(result)
    assert [g["outcome"] for g in document["gates"]] == ["fail", "pass"]
    for gate, data in zip(result.gates, document["gates"], strict=True):
        assert data["reason"] == gate.reason
        assert gate.reason in terminal.replace("\n", " ") or gate.reason[:60] in terminal
        assert html.escape(gate.reason, quote=False) in markdown
        case = next(c for c in junit.iter("testcase") if c.get("name") == gate.gate.name)
        text = "".join(case.itertext())
        assert gate.reason in text and ci(gate.low, gate.high) in text
        assert ci(gate.low, gate.high) in markdown and ci(gate.low, gate.high) in terminal
    # Workflow commands escape "%" as "%25"; the message is the same reason.
    assert len(lines) == 1
    assert lines[0].endswith(result.gates[0].reason.replace("%", "%25"))


def test_markdown_escapes_what_would_break_a_table(tmp_path: Path, home: Path) -> None:
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [1.0, 1.0]},
              outputs=["fine", "fine"])  # fmt: skip
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": [0.0, 1.0]},
              outputs=["a | b <script>x</script>", "fine"])  # fmt: skip
    h = resolve_home(home)
    markdown = comparison_markdown(
        compare(load_run(str(tmp_path / "b.jsonl"), h), [load_run(str(tmp_path / "c.jsonl"), h)])
    )
    assert "| candidate | a \\| b &lt;script&gt;x&lt;/script&gt; |" in markdown
    assert "<script>" not in markdown


def test_markdown_shows_an_answers_markdown_as_text(tmp_path: Path, home: Path) -> None:
    """An answer, a slice value or a row id holding Markdown was read as Markdown in the PR
    comment: `![x](url)` became an image GitHub loads, `[text](url)` a link, a slice value
    `**f**` read as a bold f, and a backtick in an id broke its code span. Rendered by
    markdown-it (CommonMark with GitHub's tables and strikethrough), each shows as typed."""
    from markdown_it import MarkdownIt

    answer = "see ![x](http://example.com/p.png) [docs](http://example.com) **b** ~~s~~ _i_"
    values = ["**f**", "`e`"]
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [1.0] * 4},
              ids=["r`1", "r2", "r3", "r4"], outputs=["fine"] * 4,
              extra=[{"topic": values[i % 2]} for i in range(4)])  # fmt: skip
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": [0.0] + [1.0] * 3},
              ids=["r`1", "r2", "r3", "r4"], outputs=[answer] + ["fine"] * 3,
              extra=[{"topic": values[i % 2]} for i in range(4)])  # fmt: skip
    comparison = compare_refs(str(tmp_path / "b.jsonl"), [str(tmp_path / "c.jsonl")],
                              home=home, by=["topic"])  # fmt: skip
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    rendered = page.render(comparison_markdown(comparison))
    assert "<img" not in rendered and "<a " not in rendered
    assert "<em>" not in rendered and "<s>" not in rendered
    assert f"<td>{html.escape(answer, quote=False)}</td>" in rendered
    assert "<td>**f**</td>" in rendered and "<td>`e`</td>" in rendered
    assert "<strong>Row <code>r`1</code></strong>" in rendered
    assert "<strong>By <code>topic</code></strong>" in rendered
    # What Markdown reads as text stays as it is: metric names, intervals, the margin.
    raw = comparison_markdown(comparison)
    assert "| exact_match ↑ |" in raw and "0.02 (default for scores in [0, 1])" in raw


def test_pairing_notes_count_one_row_as_one(tmp_path: Path, home: Path) -> None:
    """A one-row base against a longer candidate said "(1 rows)", "paired on the 1 example
    ids both have" and "paired on the 1 rows both runs have"."""
    base = write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [1.0]})
    for version, note in [
        ("v2", "DATASET VERSIONS DIFFER: base synthetic@v1 (1 row), candidate synthetic@v2 "
               "(3 rows); paired on the 1 example id both have."),
        ("v1", "paired on the 1 row both runs have (base 1, candidate 3)"),
    ]:  # fmt: skip
        candidate = write_run(tmp_path / f"c-{version}.jsonl", run_id="c", version=version,
                              scores={"exact_match": [1.0, 0.0, 1.0]})  # fmt: skip
        notes = compare_refs(str(base), [str(candidate)], home=home).candidates[0].notes
        assert any(n.startswith(note) for n in notes), notes


def test_a_huge_mean_is_written_in_four_digits_not_in_made_up_ones(
    tmp_path: Path, home: Path
) -> None:
    """A metric scoring around 1e30 (a perplexity of garbage, say) was written as
    1,500,000,000,000,000,016,808,780,005,376: 31 digits where a float holds 16, the rest
    made up, and `--margin 1e308` as 309 of them. Beyond 1e15 a number is `g`'s 4 digits."""
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"perplexity": [1e30, 2e30] * 5})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"perplexity": [1e30, 3e30] * 5})
    comparison = compare_refs(str(tmp_path / "b.jsonl"), [str(tmp_path / "c.jsonl")], home=home)
    console = Console(record=True, width=300)
    for renderable in comparison_renderables(comparison):
        console.print(renderable)
    terminal = console.export_text()
    markdown = comparison_markdown(comparison)
    for text in (terminal, markdown):
        assert "| 1.5e+30 [" in text.replace("│", "|") and "000,000" not in text
    assert "2e+30 [" in terminal and "perplexity 7.5e+28" in terminal  # the 5% margin


def test_rows_packed_as_they_are_made_are_the_text_pack_makes_of_the_whole_payload(
    tmp_path: Path,
) -> None:
    # Two runs (a base and a candidate with flips, as a comparison's page has them), with
    # rows the second run lacks and more rows than one chunk holds, so several chunks are
    # compressed in the thread and the last one is partial.
    n = 2 * _CHUNK_ROWS + 37
    rng = random.Random(5)
    f1, faith = [rng.random() for _ in range(n)], [rng.choice([0.0, 1.0, None]) for _ in range(n)]
    base = read_run_file(write_run(
        tmp_path / "base.jsonl", run_id="base", judges=["faith"], scores={"f1": f1, "faith": faith},
        rationales={"faith": [f"because {i} </script>" for i in range(n)]},
    ))  # fmt: skip
    candidate = read_run_file(write_run(
        tmp_path / "candidate.jsonl", run_id="candidate", ids=[f"q{i}" for i in range(5, n + 9)],
        scores={"f1": [rng.random() for _ in range(n + 4)]},
        errors=[i % 11 == 0 for i in range(n + 4)],
    ))  # fmt: skip
    runs = [ReportRun(r.info.run_id, r, record_scores(r)) for r in (base, candidate)]
    flips = [Flips(worse={"q7": ["f1"]}, better={"q9": ["f1"], "q400": ["f1"]})]
    for shown, moved in ((runs, flips), (runs[:1], [])):
        metrics = report_metrics(shown)
        packed = packed_rows(shown, metrics, moved)
        assert packed == pack(rows_payload(shown, metrics, moved))
        data = json.loads(gzip.decompress(base64.b64decode(packed)))
        assert len(data["rows"]) == (n + 9 if len(shown) == 2 else n)
    empty = runs[0].record.table.slice(0, 0)
    none = ReportRun("empty", dataclasses.replace(base, arrow=empty), record_scores(base))
    assert json.loads(gzip.decompress(base64.b64decode(packed_rows([none], ["f1"]))))["rows"] == []


def test_rows_packed_reach_the_page_as_markup_it_does_not_scan_again(tmp_path: Path) -> None:
    """The packed rows are base64 (nothing HTML escapes): the page takes them as markup,
    as they are, instead of scanning 10 MB of them (10,000 rows) for characters to escape."""
    from markupsafe import Markup

    n = 3 * _CHUNK_ROWS + 1
    run = read_run_file(write_run(
        tmp_path / "run.jsonl", run_id="run", judges=["faith"],
        scores={"f1": [i / n for i in range(n)], "faith": [float(i % 2) for i in range(n)]},
        rationales={"faith": [f"reason {i} " * (i % 13) for i in range(n)]},
    ))  # fmt: skip
    runs = [ReportRun("run", run, record_scores(run))]
    metrics = report_metrics(runs)
    packed = packed_rows(runs, metrics)
    assert isinstance(packed, Markup)
    assert packed == pack(rows_payload(runs, metrics))
    page = render_report(runs, title="t", subtitle="s")
    assert f'id="rows-data">{packed}</script>' in page


def test_rows_packed_go_in_their_element_as_the_page_is_joined_whatever_the_run_is_named(
    tmp_path: Path,
) -> None:
    """The page's rows go in their element as the page is joined, not through the template
    (which copied the 10 MB of a 10,000-row report twice, the report's peak): a run named
    as the element is, empty, shows that name escaped, and its rows go in the element."""
    from harness.report.page import _ROWS_DATA

    n = _CHUNK_ROWS + 1
    run = read_run_file(write_run(
        tmp_path / "run.jsonl", run_id="run", judges=["faith"],
        scores={"f1": [i / n for i in range(n)], "faith": [float(i % 2) for i in range(n)]},
    ))  # fmt: skip
    label = _ROWS_DATA + "</script>"
    runs = [ReportRun(label, run, record_scores(run))]
    packed = packed_rows(runs, report_metrics(runs))
    page = render_report(runs, title=label, subtitle=label)
    assert re.findall(r"<script\b[^>]*>", page) == [_ROWS_DATA, "<script>"]
    assert page.count(f"{_ROWS_DATA}{packed}</script>") == 1
    assert "&lt;script type=&#34;application/octet-stream&#34; id=&#34;rows-data&#34;&gt;" in page


def test_markdown_notes_stay_apart(tmp_path: Path, home: Path) -> None:
    """Quoted note lines that follow one another are one paragraph in Markdown: two notes
    (here two metrics with no spread on 3 rows) read as one run-on sentence in a GitHub
    summary. Rendered by markdown-it (rich's own Markdown parser), each is its own quote."""
    from markdown_it import MarkdownIt

    write_run(tmp_path / "b.jsonl", run_id="b", scores={"f": [4.0] * 3, "g": [2.0] * 3})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"f": [3.0] * 3, "g": [1.0] * 3})
    h = resolve_home(home)
    comparison = compare(
        load_run(str(tmp_path / "b.jsonl"), h), [load_run(str(tmp_path / "c.jsonl"), h)]
    )
    notes = [*comparison.notes, *comparison.candidates[0].notes]
    assert len(notes) >= 2
    rendered = MarkdownIt().render(comparison_markdown(comparison))
    assert rendered.count("<blockquote>") == len(notes)
    assert rendered.count("<strong>Note:</strong>") == len(notes)


def test_flipped_rows_line_counts_the_rows_shown(tmp_path: Path, home: Path) -> None:
    """With rows that only got better, the line above them said "showing up to 0 of
    each" and then listed three."""
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [0.0] * 6})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": [1.0] * 3 + [0.0] * 3})
    comparison = compare_refs(str(tmp_path / "b.jsonl"), [str(tmp_path / "c.jsonl")], home=home)
    console = Console(record=True, width=200)
    for renderable in comparison_renderables(comparison):
        console.print(renderable)
    terminal = console.export_text()
    assert "0 rows got worse, 3 got better (showing up to 3 of each)" in terminal
    assert terminal.count("better: row ") == 3


def test_one_row_claims_no_intervals_or_adjustment(tmp_path: Path, home: Path) -> None:
    """Before: `harness compare --markdown` of one-row runs said "Means and changes with 95%
    intervals." above a table with none, and both it and the terminal's title ("1 paired
    row; 95% intervals; p adjusted across 2 comparisons (Holm)") an adjustment of p-values
    no metric has; they name neither now (the note says why)."""
    write_run(tmp_path / "b.jsonl", run_id="b", scores={"exact_match": [1.0], "f1": [0.5]})
    write_run(tmp_path / "c.jsonl", run_id="c", scores={"exact_match": [0.0], "f1": [0.7]})
    h = resolve_home(home)
    comparison = compare(
        load_run(str(tmp_path / "b.jsonl"), h), [load_run(str(tmp_path / "c.jsonl"), h)]
    )
    assert comparison.candidates[0].interval_legend == ""  # the terminal shows no legend
    assert comparison.comparisons == 0
    lines = comparison_markdown(comparison).splitlines()
    assert "1 paired row." in lines
    assert not any("intervals" in line or "Holm" in line for line in lines)
    console = Console(record=True, width=200)
    for renderable in comparison_renderables(comparison):
        console.print(renderable)
    terminal = console.export_text()
    assert "one row: an interval, a p-value or an MDE needs two or more" in terminal
    assert "1 paired row" in terminal
    assert not re.search("intervals|adjusted|Holm", terminal), terminal


def test_the_adjustment_counts_only_the_metrics_with_a_p_value(tmp_path: Path, home: Path) -> None:
    """The terminal's title counted every metric in the family, those that have no p-value
    too; Holm's family (``harness.stats.holm``) leaves them out, and so does the title."""
    base = {"f1": [0.1, 0.9, 0.4, 0.6], "g": [1.0, 0.0, 1.0, 1.0]}
    write_run(tmp_path / "b.jsonl", run_id="b", scores=base)
    candidate = {"f1": [0.2, 0.5, 0.3, 0.8], "g": [1.0, None, None, None]}
    write_run(tmp_path / "c.jsonl", run_id="c", scores=candidate)
    h = resolve_home(home)
    comparison = compare(
        load_run(str(tmp_path / "b.jsonl"), h), [load_run(str(tmp_path / "c.jsonl"), h)]
    )
    p = {m.metric: m.stats.p_value for m in comparison.candidates[0].metrics}
    assert not math.isnan(p["f1"]) and math.isnan(p["g"])  # g: one paired row
    console = Console(record=True, width=200)
    for renderable in comparison_renderables(comparison):
        console.print(renderable)
    assert "p adjusted across 1 comparison (Holm)" in console.export_text()


def test_a_one_row_candidate_beside_others_claims_no_intervals(tmp_path: Path, home: Path) -> None:
    """`harness compare base c1 c2` where c2 pairs one row with the base: c2's table was
    titled "1 paired row; 95% intervals; p adjusted across 2 comparisons (Holm)" (--markdown:
    "p-values Holm-adjusted across every metric compared.") since c1's metrics had
    p-values; a candidate's title now claims them only when its own metrics have them."""
    scores = {"f1": [0.1, 0.9, 0.4, 0.6], "g": [0.5, 0.2, 0.7, 0.1]}
    write_run(tmp_path / "b.jsonl", run_id="b", scores=scores)
    write_run(tmp_path / "c1.jsonl", run_id="c1", scores={m: v[::-1] for m, v in scores.items()})
    write_run(tmp_path / "c2.jsonl", run_id="c2", scores={"f1": [0.3], "g": [0.4]}, ids=["q0"])
    h = resolve_home(home)
    comparison = compare(
        load_run(str(tmp_path / "b.jsonl"), h),
        [load_run(str(tmp_path / f"{c}.jsonl"), h) for c in ("c1", "c2")],
    )
    assert comparison.comparisons == 2
    console = Console(record=True, width=200)
    for renderable in comparison_renderables(comparison):
        console.print(renderable)
    terminal = console.export_text()
    assert "4 paired rows; 95% intervals; p adjusted across 2 comparisons (Holm)" in terminal
    assert re.search(r"^ *1 paired row *$", terminal, re.M), terminal
    lines = comparison_markdown(comparison).splitlines()
    adjusted = "p-values Holm-adjusted across every metric compared."
    assert any(line.startswith("4 paired rows.") and line.endswith(adjusted) for line in lines)
    assert "1 paired row." in lines
