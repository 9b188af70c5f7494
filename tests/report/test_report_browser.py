"""The report in headless Chromium, opened from disk with the network off.

Chromium loads the file from ``file://`` over the DevTools protocol (``tests/browser.py``)
while emulating an offline network and resolving every host name to nothing; the page
must make no request but its own, and its DOM must hold what the store holds: the metric
names, each mean's 95% interval as ``harness compare`` computes it, the plots, every row,
and a search, filters and a sort that pick the rows the data say they should. A row's
prompt, unfolded, is the prompt the run sent, and an output full of markup stays text.

Screenshots are kept in the test's tmp dir; with ``HARNESS_UI_SCREENSHOT_DIR`` set they
are also copied there (``docs/img/report-run.png`` and ``docs/img/report-compare.png``
are made that way).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

from browser import Browser, png_size
from report_models import EVIL_OUTPUT
from report_runs import CANDIDATE_PROMPT, METRICS, ReportHome, invoke, ok

from harness.compare.api import compare_refs
from harness.compare.render import MEAN_DIGITS
from harness.judges.variance import sample_stats
from harness.numbers import ci, mean_ci, p_value, signed
from harness.prompts import DEFAULT_PROMPT, render
from harness.store.exports import load_run_record

JUDGES = ["faithfulness", "correctness"]
WINDOW = (1400, 1000)
VERDICT_CLASS = {
    "better": "v-better",
    "worse": "v-worse",
    "no detectable difference": "v-same",
    "inconclusive": "v-unsure",
    "changed": "v-changed",
}


def keep(screenshot: Path, name: str) -> None:
    if target := os.environ.get("HARNESS_UI_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(target) / name)


def js(expression: str) -> str:
    """A JavaScript string literal."""
    return json.dumps(expression)


def visible_ids(browser: Browser) -> list[str]:
    return browser.evaluate(
        "[...document.querySelectorAll('#row-table tbody tr.row:not([hidden])')]"
        ".map(tr => tr.cells[1].textContent)"
    )


def open_report(browser: Browser, path: Path) -> None:
    browser.open(path.as_uri())
    browser.wait_until("document.body.dataset.rowsReady === 'true'")


def choose(browser: Browser, selector: str, value: str) -> None:
    browser.evaluate(
        f"(() => {{ const s = document.querySelector({js(selector)}); s.value = {js(value)};"
        " s.dispatchEvent(new Event('change')); })()"
    )


def test_a_runs_report_in_chromium(report_home: ReportHome, chromium: str, tmp_path: Path) -> None:
    home = report_home.home
    page = tmp_path / "candidate.html"
    ok(invoke(home, "report", "candidate", "-o", str(page)))
    record = load_run_record(home / "harness.duckdb", report_home.candidate)
    rows = record.rows().set_index("id")
    scores = record.scores()
    per_row = scores.groupby(["metric", "example_id"])["value"].mean()
    # What `harness compare` says of the candidate's means (it has the base's rows).
    compared = compare_refs("base", ["candidate"], home=home).candidates[0]

    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        assert browser.requests == [(page.as_uri(), "Document")]  # nothing else, ever

        names = browser.evaluate("[...document.querySelectorAll('#scores .metric')]"
                                 ".map(e => e.dataset.metric)")  # fmt: skip
        assert names == [*METRICS, *JUDGES]
        for metric in names:
            shown = browser.evaluate(
                f"document.querySelector('#scores .metric[data-metric={metric}] p.ci')"
                ".firstChild.textContent.trim()"
            )
            s = compared.metric(metric).stats.candidate
            assert shown == mean_ci(s.mean, s.low, s.high), metric
            kind = browser.evaluate(
                f"document.querySelector('#scores .metric[data-metric={metric}] svg.plot')"
                ".dataset.kind"
            )
            distinct = set(per_row.loc[metric].round(9))
            expected_kind = "bars" if metric in JUDGES or distinct <= {0.0, 1.0} else "histogram"
            assert kind == expected_kind, metric

        # A judge's bars count every sample's answer, as the store holds them.
        titles = browser.evaluate(
            "[...document.querySelectorAll('#scores .metric[data-metric=faithfulness] "
            "rect.bar title')].map(t => t.textContent)"
        )
        answers = Counter(scores.loc[scores["metric"] == "faithfulness", "label"])
        assert titles == [
            f"candidate: {a}: {answers[a]} answers ({answers[a] / answers.total():.0%})"
            for a in "12345"
        ]
        # A histogram's bars hold every scored row.
        counts = browser.evaluate(
            "[...document.querySelectorAll('#scores .metric[data-metric=token_f1] "
            "rect.bar title')].map(t => Number(t.textContent.split(': ')[1].split(' ')[0]))"
        )
        assert sum(counts) == per_row.loc["token_f1"].notna().sum() == len(rows) - 1

        # Self-agreement (three samples per row) and the calibration's confusion matrix.
        stats = sample_stats(scores)
        for judge in JUDGES:
            text = browser.evaluate(
                f"document.querySelector('.judge-run[data-judge={judge}]').textContent"
            )
            mine = stats[stats["metric"] == judge]
            assert f"Self-agreement: {mine['agreement'].mean():.2f} on average" in text
            assert f"{int(mine['self_disagreement'].sum())} of {len(mine)} rows" in text
        cells = browser.evaluate(
            "[...document.querySelectorAll('.judge-run[data-judge=correctness] svg.matrix "
            "rect.cell title')].map(t => t.textContent)"
        )
        confusion = report_home.calibration.confusion
        assert cells == [
            f"human {h}, judge {j}: {confusion[h][j]} rows" for h in ("yes", "no")
            for j in ("yes", "no")
        ]  # fmt: skip
        assert browser.evaluate("document.querySelectorAll('svg.plot').length") == 7 + 2 + 1

        # Every row, then the search, the filters and the sort.
        assert len(visible_ids(browser)) == len(rows) == 40
        assert browser.evaluate("document.getElementById('rows-status').textContent") == (
            "Showing 40 of 40 rows"
        )
        screenshot = browser.screenshot(tmp_path / "report-run.png", full_height=1900)

        word = "cancer"
        haystacks = {
            example_id: "\n".join(
                str(v) for v in [example_id, row["input"], *row["expected"], row["output"],
                                 row["error"]] if v is not None
            )
            + "\n"
            + "\n".join(str(r) for r in scores.loc[scores["example_id"] == example_id,
                                                    "rationale"].dropna())
            for example_id, row in rows.iterrows()
        }  # fmt: skip
        expected = [i for i, text in haystacks.items() if word in text.lower()]
        assert 0 < len(expected) < len(rows)
        browser.type_into("#search", word.upper())
        assert visible_ids(browser) == expected
        browser.evaluate("(() => { const s = document.getElementById('search'); s.value = '';"
                         " s.dispatchEvent(new Event('input')); })()")  # fmt: skip

        browser.click("#filter-failed")
        assert visible_ids(browser) == [report_home.fail_id]
        browser.click("#filter-failed")

        choose(browser, "#filter-metric", str(METRICS.index("token_f1")))
        browser.type_into("#filter-below", "0.2")
        f1 = per_row.loc["token_f1"]
        assert sorted(visible_ids(browser)) == sorted(f1[f1 < 0.2].index)
        choose(browser, "#filter-metric", "-1")

        browser.evaluate("[...document.querySelectorAll('#row-table th')]"
                         ".find(th => th.textContent.startsWith('token_f1')).click()")  # fmt: skip
        order = list(rows.index)
        by_f1 = sorted(f1.index, key=lambda i: (f1[i], order.index(i)))
        assert visible_ids(browser) == [*by_f1, report_home.fail_id]  # no score: last
        browser.evaluate("document.querySelector('#row-table th[aria-sort]').click()")
        by_f1_down = sorted(f1.index, key=lambda i: (-f1[i], order.index(i)))
        assert visible_ids(browser) == [*by_f1_down, report_home.fail_id]  # still last

        # Unfold the row whose output is markup: it stays text, and fetches nothing.
        browser.evaluate(
            "[...document.querySelectorAll('#row-table tr.row')]"
            f".find(tr => tr.cells[1].textContent === {js(report_home.evil_id)}).click()"
        )
        detail = "document.querySelector('#row-table tr.detail-row')"
        assert browser.evaluate(f"{detail}.querySelector('pre.output').textContent") == (
            EVIL_OUTPUT
        )
        assert browser.evaluate("document.querySelectorAll('img').length") == 0
        assert browser.evaluate("document.title") == "harness report: candidate"
        example = _example(record, report_home.evil_id)
        assert browser.evaluate(f"{detail}.querySelector('pre.prompt').textContent") == (
            render(CANDIDATE_PROMPT, example.as_row())
        )
        # Its expected answer, and every metric's and judge's score for it.
        evil = rows.loc[report_home.evil_id]
        assert browser.evaluate(
            f"[...{detail}.querySelectorAll('h4')].find(h => h.textContent.startsWith("
            "'expected')).nextElementSibling.textContent"
        ) == "\n— or —\n".join(evil["expected"])
        shown = browser.evaluate(
            f"[...{detail}.querySelectorAll('table.row-scores tr')].map(tr =>"
            " [tr.cells[0].textContent, Number(tr.cells[1].textContent)])"
        )
        assert [name for name, _ in shown] == [*METRICS, *JUDGES]
        for name, value in shown:
            assert abs(value - per_row.loc[(name, report_home.evil_id)]) <= 5e-4 * max(
                1.0, abs(value)
            ), name
        text = browser.evaluate(f"{detail}.textContent")
        mine = scores[scores["example_id"] == report_home.evil_id]
        assert len(mine.dropna(subset=["rationale"])) == 6  # two judges, three samples
        for rationale in mine["rationale"].dropna():
            assert rationale in text
        assert browser.requests == [(page.as_uri(), "Document")]
    assert png_size(screenshot) == (WINDOW[0], 1900)
    keep(screenshot, "report-run.png")


def _example(record, example_id: str):
    from harness.report.rows import _example as example_of

    row = next(r for r in record.table.to_pylist() if r["id"] == example_id)
    return example_of(row)


def test_a_comparisons_report_in_chromium(
    report_home: ReportHome, chromium: str, tmp_path: Path
) -> None:
    home = report_home.home
    page = tmp_path / "compare.html"
    ok(invoke(home, "report", "base", "candidate", "-o", str(page)))
    comparison = compare_refs("base", ["candidate"], home=home)
    candidate = comparison.candidates[0]
    assert candidate.metrics and candidate.regressions_total and candidate.improvements_total

    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        table = browser.evaluate(
            "[...document.querySelectorAll('#comparison table.changes tbody tr')].map(tr =>"
            " [tr.dataset.metric, ...[...tr.cells].map(c => c.textContent.trim())])"
        )
        expected = []
        for m in candidate.metrics:
            s = m.stats
            expected.append([
                m.metric,
                m.metric + {1: " ↑", -1: " ↓"}.get(m.direction, ""),
                f"{s.n}" + (f" (−{m.missing})" if m.missing else ""),
                mean_ci(s.base.mean, s.base.low, s.base.high, MEAN_DIGITS),
                mean_ci(s.candidate.mean, s.candidate.low, s.candidate.high, MEAN_DIGITS),
                f"{signed(s.diff)} {ci(s.low, s.high)}",
                p_value(m.p_adjusted),
                m.verdict,
            ])  # fmt: skip
        assert table == expected
        # The forest plot: one row per metric, its verdict, its interval in its tooltip.
        forest = browser.evaluate(
            "[...document.querySelectorAll('#comparison svg.forest g.frow')].map(g =>"
            " [g.dataset.metric, g.getAttribute('class'), g.querySelector('title').textContent,"
            " g.querySelectorAll('circle.pt').length])"
        )
        assert [f[0] for f in forest] == [m.metric for m in candidate.metrics]
        for (_, cls, title, points), m in zip(forest, candidate.metrics, strict=True):
            s = m.stats
            assert m.verdict in title and f"{signed(s.diff)} {ci(s.low, s.high)}" in title
            assert cls.split()[1] == VERDICT_CLASS[m.verdict] and points == 1
        listed = browser.evaluate("document.querySelectorAll('#comparison ul.flipped.worse > li')"
                                  ".length")  # fmt: skip
        assert listed == min(10, candidate.regressions_total)

        assert len(visible_ids(browser)) == 40
        screenshot = browser.screenshot(tmp_path / "report-compare.png", full_height=1500)
        choose(browser, "#filter-flip", "worse")
        assert len(visible_ids(browser)) == candidate.regressions_total
        assert visible_ids(browser)[: len(candidate.regressions)] != []
        assert {r.example_id for r in candidate.regressions} <= set(visible_ids(browser))
        choose(browser, "#filter-flip", "better")
        assert len(visible_ids(browser)) == candidate.improvements_total
        assert {r.example_id for r in candidate.improvements} <= set(visible_ids(browser))
        choose(browser, "#filter-flip", "flipped")
        flipped = candidate.regressions_total + candidate.improvements_total
        assert len(visible_ids(browser)) == flipped  # here every row moved on some metric
        assert browser.evaluate("document.getElementById('rows-status').textContent") == (
            f"Showing {flipped} of 40 rows"
        )

        # A row unfolds to both runs' prompts and outputs, each as its run has it.
        worst = candidate.regressions[0].example_id
        browser.evaluate(
            "[...document.querySelectorAll('#row-table tr.row')]"
            f".find(tr => tr.cells[1].textContent === {js(worst)}).click()"
        )
        sides = browser.evaluate(
            "[...document.querySelectorAll('#row-table tr.detail-row .run-detail')].map(d =>"
            " [d.querySelector('h3').textContent, d.querySelector('pre.output, pre.err')"
            ".textContent, d.querySelector('pre.prompt').textContent])"
        )
        db = home / "harness.duckdb"
        expected_sides = []
        for label, run in (("base: base", report_home.base),
                           ("candidate: candidate", report_home.candidate)):  # fmt: skip
            record = load_run_record(db, run)
            row = record.rows().set_index("id").loc[worst]
            prompt = render(record.info.config.get("prompt") or DEFAULT_PROMPT,
                            _example(record, worst).as_row())  # fmt: skip
            failed = isinstance(row["error"], str)  # pandas has NaN for no error
            expected_sides.append([label, row["error"] if failed else row["output"], prompt])
        assert len(sides) == len(expected_sides) == 2
        for side, expected_side in zip(sides, expected_sides, strict=True):
            for part, got, want in zip(("label", "output", "prompt"), side, expected_side,
                                       strict=True):  # fmt: skip
                assert got == want, (part, got[-300:], want[-300:])
        assert browser.requests == [(page.as_uri(), "Document")]
    keep(screenshot, "report-compare.png")


def test_a_report_of_two_candidates_switches_between_them(
    report_home: ReportHome, chromium: str, tmp_path: Path
) -> None:
    """The base against the candidate and against itself: the table shows one candidate at
    a time, and its flips are that candidate's."""
    home = report_home.home
    page = tmp_path / "three.html"
    ok(invoke(home, "report", "base", "candidate", "base", "-o", str(page)))
    comparison = compare_refs("base", ["candidate", "base"], home=home)
    against_candidate, against_itself = comparison.candidates
    flipped = against_candidate.regressions_total + against_candidate.improvements_total
    assert flipped and against_itself.regressions_total == against_itself.improvements_total == 0

    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        assert browser.evaluate("document.querySelectorAll('#comparison svg.forest').length") == 2
        verdicts = browser.evaluate(
            "[...document.querySelectorAll('#comparison .candidate')].map(c =>"
            " [...c.querySelectorAll('table.changes td.verdict')].map(td => td.textContent))"
        )
        assert verdicts == [[m.verdict for m in c.metrics] for c in comparison.candidates]
        options = browser.evaluate(
            "[...document.querySelectorAll('#candidate option')].map(o => o.textContent)"
        )
        assert options == [
            "vs candidate 1: candidate",
            f"vs candidate 2: base [{report_home.base[:8]}]",
        ]
        choose(browser, "#filter-flip", "flipped")
        assert len(visible_ids(browser)) == flipped
        choose(browser, "#candidate", "2")
        assert visible_ids(browser) == []
        choose(browser, "#filter-flip", "all")
        # Each metric cell: the base's score → the second candidate's, the same one.
        cells = browser.evaluate(
            "[...document.querySelectorAll('#row-table tbody tr.row')].flatMap(tr =>"
            " [...tr.querySelectorAll('td.num')].map(td => td.textContent))"
        )
        assert len(cells) == 40 * len(METRICS + JUDGES)
        assert all(left == right for left, right in (c.split(" → ") for c in cells))
        choose(browser, "#candidate", "1")
        choose(browser, "#filter-flip", "flipped")
        assert len(visible_ids(browser)) == flipped
        assert browser.requests == [(page.as_uri(), "Document")]


def test_a_long_runs_rows_are_listed_a_page_at_a_time(
    big_run: tuple[Path, str], chromium: str, tmp_path: Path
) -> None:
    """1,000 rows: the first 500 that match are in the page, "Show more" adds the rest,
    and the search and the sort still pick from every row, listed or not."""
    home, run = big_run
    page = tmp_path / "big.html"
    ok(invoke(home, "report", run, "-o", str(page)))
    record = load_run_record(home / "harness.duckdb", run)
    ids = [str(i) for i in record.rows()["id"]]
    assert len(ids) == 1000
    scores = record.scores()
    f1 = scores[scores["metric"] == "token_f1"].set_index("example_id")["value"].dropna()
    status = "document.getElementById('rows-status').textContent"
    more = "document.getElementById('rows-more')"

    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        assert visible_ids(browser) == ids[:500]
        assert browser.evaluate(status) == "Showing 1,000 of 1,000 rows, the first 500 listed"
        assert browser.evaluate(f"{more}.hidden") is False
        assert browser.evaluate(f"{more}.textContent") == "Show 500 more"

        # A row that is not listed is found all the same, and alone.
        browser.type_into("#search", ids[900])
        assert visible_ids(browser) == [ids[900]]
        assert browser.evaluate(status) == "Showing 1 of 1,000 rows"
        assert browser.evaluate(f"{more}.hidden") is True
        browser.evaluate("(() => { const s = document.getElementById('search'); s.value = '';"
                         " s.dispatchEvent(new Event('input')); })()")  # fmt: skip
        assert visible_ids(browser) == ids[:500]

        # The sort orders every row, then lists its first 500; "Show 500 more" the rest.
        browser.evaluate("[...document.querySelectorAll('#row-table th')]"
                         ".find(th => th.textContent.startsWith('token_f1')).click()")  # fmt: skip
        by_f1 = sorted(f1.index, key=lambda i: (f1[i], ids.index(i)))
        unscored = [i for i in ids if i not in f1.index]  # no score: last, in their order
        assert visible_ids(browser) == [*by_f1, *unscored][:500]
        browser.evaluate(f"{more}.scrollIntoView()")
        browser.click("#rows-more")
        assert visible_ids(browser) == [*by_f1, *unscored]
        assert browser.evaluate(status) == "Showing 1,000 of 1,000 rows"
        assert browser.evaluate(f"{more}.hidden") is True

        # A row listed by "Show more" unfolds, and stays unfolded when the list is made again.
        last = [*by_f1, *unscored][-1]
        unfold = (
            "[...document.querySelectorAll('#row-table tr.row')]"
            f".find(tr => tr.cells[1].textContent === {js(last)}).click()"
        )
        browser.evaluate(unfold)
        after = (
            "[...document.querySelectorAll('#row-table tr.row')]"
            f".find(tr => tr.cells[1].textContent === {js(last)})"
            ".nextElementSibling.className"
        )
        assert browser.evaluate(after) == "detail-row"
        browser.type_into("#search", last)
        assert visible_ids(browser) == [last]
        assert browser.evaluate(after) == "detail-row"
        assert browser.requests == [(page.as_uri(), "Document")]


WIDER_THAN_THE_PAGE = """(() => {
  const width = document.documentElement.clientWidth;
  const wide = e => e.getBoundingClientRect().right > width + 1;
  const cut = e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1;
  return {
    page: document.documentElement.scrollWidth - width,
    wide: [...document.querySelectorAll('body *')]
      .filter(e => wide(e) && !wide(e.parentElement) && !e.closest('.table-wrap, table.method'))
      .map(e => e.tagName + '.' + e.className),
    cut: [...document.querySelectorAll('.table-wrap, pre')].filter(cut).map(e => e.className),
  };
})()"""


def test_a_report_fits_a_phone_and_prints_whole(
    report_home: ReportHome, chromium: str, tmp_path: Path
) -> None:
    """At 375 px the page never scrolls sideways (only a wide table, inside its own box);
    printed, no table runs off the paper and no table or text box cuts what it holds."""
    page = tmp_path / "compare.html"
    ok(invoke(report_home.home, "report", "base", "candidate", "--by", "final_decision",
              "-o", str(page)))  # fmt: skip
    unfold = "document.querySelector('#row-table tbody tr.row').click()"
    with Browser(chromium, tmp_path / "phone", (375, 800)) as browser:
        open_report(browser, page)
        browser.evaluate(unfold)
        browser.evaluate("document.querySelector('#comparison details').open = true")
        found = browser.evaluate(WIDER_THAN_THE_PAGE)
        assert (found["page"], found["wide"]) == (0, []), found
    with Browser(chromium, tmp_path / "paper", (718, 1000)) as browser:  # A4 less margins
        open_report(browser, page)
        browser.evaluate(unfold)
        browser.page("Emulation.setEmulatedMedia", media="print")
        found = browser.evaluate(WIDER_THAN_THE_PAGE)
        assert found == {"page": 0, "wide": [], "cut": []}, found
        assert browser.requests == [(page.as_uri(), "Document")]


def test_a_one_row_runs_table_says_1_row(chromium: str, tmp_path: Path) -> None:
    """The table of a `--limit 1` run's report said "Showing 1 of 1 rows"."""
    from report_runs import PUBMEDQA

    ok(invoke(tmp_path, "data", "import", str(PUBMEDQA), "--name", "pubmedqa"))
    ok(invoke(tmp_path, "run", "--data", "pubmedqa", "--limit", "1", "--model",
              "python:harness.baselines:context_overlap", "--metric", "token_f1",
              "--run-name", "one", "--no-mlflow"))  # fmt: skip
    page = tmp_path / "one.html"
    ok(invoke(tmp_path, "report", "one", "-o", str(page)))
    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        assert browser.evaluate("document.getElementById('rows-status').textContent") == (
            "Showing 1 of 1 row"
        )
        browser.type_into("#search", "no such text")
        assert browser.evaluate("document.getElementById('rows-status').textContent") == (
            "Showing 0 of 1 row"
        )


def test_a_column_header_sorts_from_the_keyboard(
    report_home: ReportHome, chromium: str, tmp_path: Path
) -> None:
    """A column header takes the keyboard's focus (Tab) and says "sort", but Enter or Space
    on it did nothing: only a mouse click sorted."""
    page = tmp_path / "candidate.html"
    ok(invoke(report_home.home, "report", "candidate", "-o", str(page)))
    header = (
        "[...document.querySelectorAll('#row-table thead th')]"
        ".find(t => t.textContent.startsWith('token_f1'))"
    )
    with Browser(chromium, tmp_path / "profile", WINDOW) as browser:
        open_report(browser, page)
        browser.evaluate(f"{header}.focus()")
        for key, code, sort in ((" ", "Space", "ascending"), ("Enter", "Enter", "descending")):
            for kind in ("keyDown", "keyUp"):
                browser.page("Input.dispatchKeyEvent", type=kind, key=key, code=code,
                             windowsVirtualKeyCode=13 if key == "Enter" else 32)  # fmt: skip
            assert browser.evaluate(f"{header}.getAttribute('aria-sort')") == sort
        values = browser.evaluate(
            "[...document.querySelectorAll('#row-table tbody tr.row')]"
            f".map(tr => tr.cells[{header}.cellIndex].textContent)"
            ".filter(t => t !== '–').map(Number)"
        )
        assert values == sorted(values, reverse=True) and len(set(values)) > 1
