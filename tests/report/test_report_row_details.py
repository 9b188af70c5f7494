"""What the report's rows show beside the scores, in headless Chromium: a judge that
answers with labels of its own (rude/neutral/warm) shows its label in the rows table, as
``NAME/label`` does in evaluate's and MLflow's table, and an unfolded row lists the data's
other columns (PubMedQA's seven, lists too), as those tables carry them after ``cached``.

Real runs through the CLI: PubMedQA rows, the context baseline and ``echo``, the label judge
a ``[judges.tone]`` table asking ``report_models.tone`` (a ``python:`` judge model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import Browser
from report_runs import invoke, ok, pubmedqa_rows, run_id

from harness.store.exports import load_run_record

ROWS = 12
TOML = (
    'judge_model = "python:report_models:tone"\n'
    '[judges.tone]\nprompt = "Judge the tone: {output}"\noutput = ["rude", "neutral", "warm"]\n'
)
IDS = "[...document.querySelectorAll('#row-table tbody tr.row')]"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(home, base, candidate): the baseline and echo, each judged by ``tone``."""
    home = tmp_path_factory.mktemp("row-details")
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    data = home / "qa.jsonl"
    rows = pubmedqa_rows(ROWS)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(home, "data", "import", str(data), "--name", "qa"))
    for name, model in (("base", "python:harness.baselines:context_overlap"), ("cand", "echo")):
        ok(invoke(home, "run", "--data", "qa", "--model", model, "--metric", "token_f1",
                  "--judge", "tone", "--run-name", name, "--no-mlflow"))  # fmt: skip
    return home, run_id(home, "base"), run_id(home, "cand")


def _labels(home: Path, run: str) -> dict[str, str]:
    scores = load_run_record(home / "harness.duckdb", run).scores()
    tone = scores[scores["metric"] == "tone"]
    return dict(zip(tone["example_id"].astype(str), tone["label"], strict=True))


def _open(browser: Browser, page: Path) -> None:
    browser.open(page.as_uri())
    browser.wait_until("document.body.dataset.rowsReady === 'true'")


def test_a_label_judge_shows_its_labels_in_the_rows_table(
    runs: tuple[Path, str, str], chromium: str, tmp_path: Path
) -> None:
    home, base, candidate = runs
    said, said_after = _labels(home, base), _labels(home, candidate)
    assert len(set(said.values())) > 1 and len(set(said_after.values())) > 1
    one, two = tmp_path / "one.html", tmp_path / "two.html"
    ok(invoke(home, "report", "base", "-o", str(one)))
    ok(invoke(home, "report", "base", "cand", "-o", str(two)))
    column = (
        f"{IDS}.map(tr => [tr.cells[1].textContent, tr.cells[tr.cells.length - 2].textContent])"
    )
    with Browser(chromium, tmp_path / "profile") as browser:
        _open(browser, one)
        heads = browser.evaluate("[...document.querySelectorAll('#row-table th')]"
                                 ".map(th => th.textContent)")  # fmt: skip
        assert heads[-2] == "tone ↑"
        assert dict(browser.evaluate(column)) == said  # not 0, 0.5, 1
        _open(browser, two)
        shown = dict(browser.evaluate(column))
        assert shown == {i: f"{said[i]} → {said_after[i]}" for i in said}
        # Sorting still goes by the number the label stores (rude 0 < neutral < warm).
        browser.evaluate("[...document.querySelectorAll('#row-table th')]"
                         ".find(th => th.textContent.startsWith('tone')).click()")  # fmt: skip
        place = {"rude": 0, "neutral": 1, "warm": 2}
        changes = [
            place[after] - place[before]
            for _, cell in browser.evaluate(column)
            for before, after in [cell.split(" → ")]
        ]
        assert changes == sorted(changes)
        assert browser.requests == [(one.as_uri(), "Document"), (two.as_uri(), "Document")]


def test_an_unfolded_row_lists_the_datas_other_columns(
    runs: tuple[Path, str, str], chromium: str, tmp_path: Path
) -> None:
    home, _, _ = runs
    page = tmp_path / "one.html"
    ok(invoke(home, "report", "base", "-o", str(page)))
    first = pubmedqa_rows(1)[0]
    with Browser(chromium, tmp_path / "profile") as browser:
        _open(browser, page)
        browser.evaluate(f"{IDS}[0].click()")
        fields = browser.evaluate(
            "[...document.querySelectorAll('#row-table tr.detail-row table.row-data tr')]"
            ".map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"
        )
        other = {k: v for k, v in first.items() if k not in ("id", "question", "answer", "context")}
        assert len(other) == 7
        assert fields == [
            [k, v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))]
            for k, v in other.items()
        ]
        text = browser.evaluate("document.body.innerText")
        for wrong in ("undefined", "NaN", "[object Object]"):
            assert wrong not in text
        # Nothing wider than the window: the table of seven columns wraps its lists.
        width = browser.evaluate(
            "document.querySelector('table.row-data').getBoundingClientRect().right"
        )
        assert width <= browser.evaluate("document.documentElement.clientWidth")
        assert browser.requests == [(page.as_uri(), "Document")]
