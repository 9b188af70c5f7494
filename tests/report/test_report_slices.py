"""Slices (``--by``) and samples in the report: the same numbers as the run and ``compare``.

A run sliced and sampled through the CLI (``run --by --sample --report``) shows its own
slices, and its report's tables hold what the run's ``--json`` says (``harness.slices``
computes both; the statistics themselves are checked against scipy and statsmodels in
``tests/test_slices.py`` and ``tests/compare/test_compare_slices.py``). ``harness report
BASE CANDIDATE --by COLUMN`` shows what ``harness compare --by COLUMN --json`` says.
"""

from __future__ import annotations

import json
import math
import re
from html import unescape
from pathlib import Path

from report_runs import ReportHome, invoke, ok

from harness.compare.render import MEAN_DIGITS
from harness.numbers import ci, mean_ci, p_value, signed


def _f(value: float | None) -> float:
    return math.nan if value is None else float(value)


def slice_tables(html: str) -> dict[str, dict[str, dict[str, object]]]:
    """Each run slice table of the page: column -> value -> rows, failed and metric cells."""
    tables: dict[str, dict[str, dict[str, object]]] = {}
    for column, body in re.findall(
        r'<div class="slice-table" data-run="[^"]*" data-column="([^"]*)">(.*?)</table>', html, re.S
    ):
        heads = [unescape(h) for h in re.findall(r'<th class="num">(.*?)</th>', body)][2:]
        lines = {}
        for cells in re.findall(r"<tr(?: class=\"overall\")?><td>(.*?)</tr>", body, re.S):
            value, *nums = re.split(r"</td><td[^>]*>", cells.removesuffix("</td>"))
            metrics = {}
            for head, cell in zip(heads, nums[2:], strict=True):
                text, n = re.fullmatch(r'(.*) <span class="note">(\d+)</span>', cell).groups()
                metrics[head] = (unescape(text), int(n))
            lines[unescape(value)] = {"rows": int(nums[0]), "failed": int(nums[1]), **metrics}
        tables[unescape(column)] = lines
    return tables


def expected_tables(slices: list[dict]) -> dict[str, dict[str, dict[str, object]]]:
    """The same tables from a run's ``--json`` ``slices``."""
    tables = {}
    for table in slices:
        lines = {}
        for s in [table["overall"], *table["slices"]]:
            name = "(all)" if s is table["overall"] else s["value"] or "(none)"
            line: dict[str, object] = {"rows": s["rows"], "failed": s["errors"]}
            for metric, m in s["metrics"].items():
                low, high = m["ci"]
                text = mean_ci(_f(m["mean"]), _f(low), _f(high)) if m["count"] else "–"
                if m["interval_note"]:  # no interval: one row, or no spread
                    text += " (one row)" if m["count"] == 1 else " (no spread)"
                line[metric] = (text, m["count"])
            lines[name] = line
        tables[table["column"]] = lines
    return tables


def test_a_sliced_sampled_run_reports_the_slices_the_run_computed(
    report_home: ReportHome, tmp_path: Path
) -> None:
    home = report_home.home
    page = tmp_path / "sliced.html"
    ran = ok(invoke(home, "run", "--data", "qa", "--model",
                    "python:harness.baselines:context_overlap", "--metric", "exact_match",
                    "--metric", "token_f1", "--by", "final_decision", "--by", "year",
                    "--sample", "30", "--seed", "2", "--stratify", "final_decision",
                    "--run-name", "sliced", "--no-mlflow", "--json",
                    "--report", str(page)))  # fmt: skip
    doc = json.loads(ran.stdout)
    html = page.read_text(encoding="utf-8")
    assert doc["report"] == str(page) and [t["column"] for t in doc["slices"]] == [
        "final_decision",
        "year",
    ]
    shown = slice_tables(html)
    assert shown == expected_tables(doc["slices"])
    # What the tables hold, beyond agreeing: 30 sampled rows split by the answer label, and
    # PubMedQA rows with no year as a last slice of their own.
    assert sum(line["rows"] for v, line in shown["final_decision"].items() if v != "(all)") == 30
    assert shown["final_decision"]["(all)"]["rows"] == 30
    assert list(shown["year"])[-1] == "(none)" and list(shown["year"])[0] == "(all)"
    assert '<a href="#slices">Slices</a>' in html
    assert "<dt>sample</dt>\n<dd>30 of 40 rows (seed 2, stratified by final_decision)</dd>" in html
    # `harness report RUN` writes the same bytes as the run did at its end.
    assert ok(invoke(home, "report", "sliced", "-o", "-")).stdout == html
    # A run not sliced has no slices section; a report --by slices it anyway.
    assert 'id="slices"' not in report_home.cli_report
    by_hand = ok(invoke(home, "report", "sliced", "--by", "final_decision", "-o", "-")).stdout
    assert list(slice_tables(by_hand)) == ["final_decision"]
    assert slice_tables(by_hand)["final_decision"] == shown["final_decision"]

    def refused(*args: str, message: str) -> None:
        result = invoke(home, "report", "sliced", *args, "-o", str(tmp_path / "x.html"))
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [f"error: {message}"]
        assert not (tmp_path / "x.html").exists()

    refused("--by", "nosuch", message="--by nosuch: no row has that column; columns: "
            "context, context_labels, expected, final_decision, id, input, meshes, "
            "reasoning_free_pred, reasoning_required_pred, split, year")  # fmt: skip
    years = len(shown["year"]) - 1
    refused("--by", "year", "--max-slices", "3",
            message=f"--by year: {years} distinct values, more than the 3 allowed; its values "
            "are numbers, and each distinct number is a slice of its own (numbers are not "
            "binned): add a column of ranges (bins) to the file before importing it and slice "
            "by that, or raise the limit with --max-slices N ([slices] max_values in "
            "harness.toml)")  # fmt: skip


def test_a_comparison_report_by_a_column_shows_what_compare_by_says(
    report_home: ReportHome,
) -> None:
    home = report_home.home
    args = ("base", "candidate", "--by", "final_decision")
    compared = json.loads(ok(invoke(home, "compare", *args, "--json"), code=0).stdout)
    html = ok(invoke(home, "report", *args, "-o", "-")).stdout
    section = html.split('<div class="slice-changes" data-column="final_decision">')[1]
    section = section.split("</table>")[0]
    [candidate] = compared["candidates"]
    assert candidate["slices"], "compare --by gave no slices"
    seen = 0
    for s in candidate["slices"]:
        value = s["value"] or "(none)"
        for m in s["metrics"]:
            row = re.search(
                rf'<tr data-value="{re.escape(value)}" data-metric="{re.escape(m["metric"])}">'
                r"(.*?)</tr>",
                section,
                re.S,
            )
            assert row, (value, m["metric"])
            cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
            base, cand = m["base"], m["candidate"]
            low, high = m["ci"]
            expected = [
                mean_ci(_f(base["mean"]), _f(base["low"]), _f(base["high"]), MEAN_DIGITS),
                mean_ci(_f(cand["mean"]), _f(cand["low"]), _f(cand["high"]), MEAN_DIGITS),
                f"{signed(_f(m['diff']))} {ci(_f(low), _f(high))}",
                p_value(_f(m["p_adjusted"])),
                m["verdict"],
            ]
            assert cells[-5:] == expected, (value, m["metric"])
            seen += 1
    assert seen == sum(len(s["metrics"]) for s in candidate["slices"]) > 0
    # Each run's own means by the same column come after the comparison.
    assert set(slice_tables(html)) == {"final_decision"}


def test_a_mean_with_no_spread_says_why_it_has_no_interval(tmp_path: Path) -> None:
    """A scale whose rows all scored the same showed '0.0714  60 rows' in the Scores card
    and '0.0714' in the slice table, with no interval and no word why, while the card's
    text promises a 95% interval; both now say there is no spread."""
    from tests.compare.run_files import write_run

    run = write_run(
        tmp_path / "run.jsonl", run_id="flat0000aaaa",
        scores={"const": [0.0714] * 60, "f1": [float(i % 2) for i in range(60)]},
        extra=[{"topic": "a" if i % 3 else "b"} for i in range(60)],
    )  # fmt: skip
    out = tmp_path / "report.html"
    ok(invoke(tmp_path, "report", str(run), "--by", "topic", "-o", str(out)))
    html = out.read_text(encoding="utf-8")
    card = re.search(r'<div class="metric" data-metric="const">.*?</p>', html, re.S)
    assert card is not None
    assert "every row scored 0.0714: with no spread over 60 rows there is no interval" in (
        card.group(0)
    )
    f1_card = re.search(r'<div class="metric" data-metric="f1">.*?</p>', html, re.S)
    assert f1_card is not None and "no-interval" not in f1_card.group(0)
    table = slice_tables(html)["topic"]
    assert table["(all)"]["const"] == ("0.0714 (no spread)", 60)
    assert table["b"]["const"] == ("0.0714 (no spread)", 20)
    assert table["(all)"]["f1"][0].startswith("0.5 [")


def test_the_scores_text_says_wilson_is_for_metrics_that_declare_0_1(tmp_path: Path) -> None:
    """The Scores text said 'Wilson's for 0/1 scores' above an undeclared metric that scored
    only 0 and 1 and got Student's t: the method follows the declaration, and it says so."""
    from tests.compare.run_files import write_run

    run = write_run(tmp_path / "run.jsonl", run_id="rate0000aaaa", binary=["exact_match"],
                    scores={"exact_match": [1.0, 0.0, 1.0], "f1": [1.0, 0.0, 1.0]})  # fmt: skip
    out = tmp_path / "report.html"
    ok(invoke(tmp_path, "report", str(run), "-o", str(out)))
    html = unescape(out.read_text(encoding="utf-8"))
    assert "Wilson's for 0/1 scores" not in html
    assert "Wilson's for a metric that declares 0/1 scores" in html
    assert "0.6667 [0.208, 0.939]" in html and "0.6667 [-0.768, 2.1]" in html


def test_a_slice_tables_failed_column_counts_model_and_judge_failures(tmp_path: Path) -> None:
    """A run whose model failed on one row and whose judge failed on another: "what was
    run" says 2 rows failed (and the "failed rows" filter lists 2), while the slice table's
    "failed" column (and `runs show --by`'s `errors`) said 1: it counted only the rows whose
    model call failed. Both count every failed row now, as the run does."""
    from report_runs import pubmedqa_rows

    rows = pubmedqa_rows(6)
    data = tmp_path / "six.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(tmp_path, "data", "import", str(data), "--name", "six"))
    env = {
        "HARNESS_TEST_FAIL_ID": str(rows[0]["id"]),
        "HARNESS_TEST_JUDGE_FAIL_TEXT": str(rows[1]["question"]),
    }
    ok(
        invoke(tmp_path, "run", "--data", "six", "--model", "python:report_models:answer",
               "--metric", "token_f1", "--judge", "correctness", "--by", "final_decision",
               "--judge-model", "python:report_models:flaky_judge", "--run-name", "flaky",
               "--no-mlflow", env=env),
        code=1,
    )  # fmt: skip
    shown = json.loads(ok(invoke(tmp_path, "runs", "show", "flaky", "--json")).stdout)
    html = ok(invoke(tmp_path, "report", "flaky", "-o", "-")).stdout
    assert '<dd class="warn">2 rows failed: ' in html
    head = re.search(r'data-column="final_decision">.*?<thead>(.*?)</thead>', html, re.S)
    assert head is not None
    assert '<th class="num">rows</th><th class="num">failed</th>' in head.group(1)
    overall = slice_tables(html)["final_decision"]["(all)"]
    assert overall["failed"] == shown["slices"][0]["overall"]["errors"] == shown["errors"] == 2
