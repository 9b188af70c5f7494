"""`harness compare --by`: the paired difference per slice, against scipy and statsmodels,
with the Holm adjustment across every slice of every column and metric. Synthetic runs
written as run files (the real export format) give slices whose differences are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from harness.cli import cli

TOPICS = ("cardio", "neuro", "onco")
N = 300


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A base and a candidate on N rows: the candidate is much better on `neuro` rows only,
    for a scale score (f1) and a 0/1 score (em); `level` is a second, crossing column."""
    rng = np.random.default_rng(20)
    topic = np.array([TOPICS[i % 3] for i in range(N)])
    level = np.array(["easy" if i % 2 else "hard" for i in range(N)])
    f1_base = rng.uniform(0.2, 0.6, N)
    f1_cand = f1_base + rng.normal(0, 0.05, N) + np.where(topic == "neuro", 0.3, 0.0)
    em_base = (rng.uniform(size=N) < 0.3).astype(float)
    em_cand = np.where(topic == "neuro", 1.0, em_base)
    extra = [{"topic": str(t), "level": str(lv)} for t, lv in zip(topic, level, strict=True)]
    base = write_run(tmp_path / "base.jsonl", run_id="base", scores={"f1": f1_base,
                     "em": em_base}, extra=extra, binary=["em"])  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"f1": f1_cand,
                     "em": em_cand}, extra=extra, binary=["em"])  # fmt: skip
    arrays = {"topic": topic, "level": level, "f1_base": f1_base, "f1_cand": f1_cand,
              "em_base": em_base, "em_cand": em_cand}  # fmt: skip
    return base, cand, arrays


def test_each_slice_is_a_paired_comparison_and_holm_runs_across_all_slices(
    runs: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    base, cand, a = runs
    code, out, err = invoke("compare", str(base), str(cand), "--by", "topic", "--by", "level",
                            "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["by"] == ["topic", "level"]
    slices = doc["candidates"][0]["slices"]
    assert [(s["column"], s["value"]) for s in slices] == [
        ("topic", "cardio"), ("topic", "neuro"), ("topic", "onco"),
        ("level", "easy"), ("level", "hard"),
    ]  # fmt: skip
    family = []
    for s in slices:
        mask = a[s["column"]] == s["value"]
        assert s["paired"] == mask.sum()
        m = {x["metric"]: x for x in s["metrics"]}
        assert list(m) == ["f1", "em"]
        # A scale score: the paired t test and its interval, as scipy computes them.
        b, c = a["f1_base"][mask], a["f1_cand"][mask]
        ttest = scipy_stats.ttest_rel(c, b)
        assert m["f1"]["test"] == "paired t" and m["f1"]["n"] == mask.sum()
        assert m["f1"]["diff"] == pytest.approx(np.mean(c - b), rel=1e-12)
        assert m["f1"]["p_value"] == pytest.approx(ttest.pvalue, rel=1e-9)
        low, high = ttest.confidence_interval(0.95)
        assert m["f1"]["ci"] == [pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9)]
        # A 0/1 score: the exact McNemar test is a binomial test on the discordant rows.
        b, c = a["em_base"][mask], a["em_cand"][mask]
        only_base, only_cand = int(((b == 1) & (c == 0)).sum()), int(((b == 0) & (c == 1)).sum())
        assert m["em"]["test"] == "exact McNemar"
        assert m["em"]["discordant"] == [only_base, only_cand]
        if only_base + only_cand:
            binom = scipy_stats.binomtest(only_cand, only_base + only_cand, 0.5)
            assert m["em"]["p_value"] == pytest.approx(binom.pvalue, rel=1e-9)
        family += [m["f1"], m["em"]]
    # One Holm family: every slice of both columns, both metrics, apart from the overall line.
    adjusted = multipletests([x["p_value"] for x in family], method="holm")[1]
    assert [x["p_adjusted"] for x in family] == pytest.approx(list(adjusted), rel=1e-9)
    overall = [x["p_value"] for x in doc["candidates"][0]["metrics"]]
    assert [x["p_adjusted"] for x in doc["candidates"][0]["metrics"]] == pytest.approx(
        list(multipletests(overall, method="holm")[1])
    )
    # Only the slice that changed is better; the margin is the overall comparison's.
    verdicts = {(s["value"], x["metric"]): x["verdict"] for s in slices for x in s["metrics"]}
    assert verdicts[("neuro", "f1")] == verdicts[("neuro", "em")] == "better"
    for topic in ("cardio", "onco"):
        assert verdicts[(topic, "f1")] != "better" and verdicts[(topic, "em")] != "better"
    margins = {x["metric"]: x["margin"] for x in doc["candidates"][0]["metrics"]}
    assert all(x["margin"] == margins[x["metric"]] for x in family)

    # The terminal and markdown say the same, slice by slice.
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "topic")
    assert code == 0
    assert "by topic: 3 values; p adjusted across 6 slice comparisons (Holm)" in out
    neuro = [line for line in out.splitlines() if "neuro" in line]
    assert neuro and "better" in neuro[0]
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "topic", "--markdown")
    assert code == 0
    assert "**By `topic`**: 3 values; p-values Holm-adjusted across 6 slice comparisons." in out
    (neuro,) = [line for line in out.splitlines() if line.startswith("| neuro |")]
    assert neuro.startswith("| neuro | 100 | f1 |") and neuro.endswith("better |")


def test_a_by_column_no_row_has_is_refused_before_any_output(
    runs: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    base, cand, _ = runs
    code, out, err = invoke("compare", str(base), str(cand), "--by", "topic", "--by", "site")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--by site: no row has that column" in err


def test_a_slice_cell_with_no_interval_says_why_on_every_surface(tmp_path: Path) -> None:
    """A slice whose rows all changed alike (every row 4 -> 3) on fewer than 6 rows showed
    '-1 –' and a base mean with no interval in compare --by, --markdown and the report, with
    no word why (only the overall table had notes); each surface now notes it per slice."""
    extra = [{"topic": "a" if i % 3 else "b"} for i in range(12)]
    base = write_run(tmp_path / "base.jsonl", run_id="flatbase", extra=extra,
                     scores={"judge": [4.0] * 12})  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="flatcand", extra=extra,
                     scores={"judge": [3.0] * 12})  # fmt: skip
    change = (
        "topic b: judge: every row changed by -1: with no spread and 4 rows there is no "
        "interval or MDE, and the p-value is the exact sign test's"
    )
    mean = "topic b: judge, base: every row scored 4: with no spread over 4 rows there is no "
    mean += "interval"
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "topic")
    assert code == 0
    assert f"note: {change}" in out and f"note: {mean}" in out
    assert "note: topic a: judge: every row" not in out  # 8 rows: the sign test's [-1, -1]
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "topic", "--markdown")
    assert f"> **Note:** {change}" in out
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "topic", "--json")
    (_, b) = json.loads(out)["candidates"][0]["slices"]
    assert change in b["notes"] and b["metrics"][0]["ci"] == [None, None]
    report = tmp_path / "report.html"
    code, _, _ = invoke("report", str(base), str(cand), "--by", "topic", "-o", str(report))
    assert code == 0
    assert change.replace("'", "&#39;") in report.read_text(encoding="utf-8")


def test_a_slice_of_one_row_says_why_it_has_no_interval_on_every_surface(
    tmp_path: Path,
) -> None:
    """A slice of one row read 'y (1 rows)' with '–' for its intervals, p-value and MDE and
    no word why, and null interval notes in --json, where `harness run --by` says "one
    row: an interval needs two or more"; every surface now says it, in one note a slice."""
    extra = [{"t": value} for value in ("x", "x", "y", "x", "x")]
    base = write_run(tmp_path / "base.jsonl", run_id="b1", extra=extra, binary=["em"],
                     scores={"f1": [0.1, 0.5, 0.3, 0.7, 0.2], "em": [1, 0, 1, 0, 1]})  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="c1", extra=extra, binary=["em"],
                     scores={"f1": [0.2, 0.4, 0.6, 0.9, 0.1], "em": [1, 1, 0, 0, 1]})  # fmt: skip
    note = "t y: one row: an interval, a p-value or an MDE needs two or more"
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "t")
    assert code == 0
    assert "y (1 row) " in out and "x (4 rows) " in out
    assert out.count(f"note: {note}") == 1 and "note: t x" not in out
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "t", "--markdown")
    assert out.count(f"> **Note:** {note}") == 1
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "t", "--json")
    x, y = json.loads(out)["candidates"][0]["slices"]
    assert y["notes"] == [note] and x["notes"] == []
    for m in y["metrics"]:
        assert m["interval_note"] == "one row: an interval, a p-value or an MDE needs two or more"
        assert m["base"]["interval_note"] == "one row: an interval needs two or more"
        assert m["candidate"]["interval_note"] == "one row: an interval needs two or more"
    assert all(m["interval_note"] is None for m in x["metrics"])
    report = tmp_path / "report.html"
    code, _, _ = invoke("report", str(base), str(cand), "--by", "t", "-o", str(report))
    assert code == 0
    assert note in report.read_text(encoding="utf-8")


def test_counts_of_one_agree_with_their_nouns(tmp_path: Path) -> None:
    """One metric read "p adjusted across 1 comparisons", and a column of one value "1
    values; ... 1 slice comparisons", in the terminal and the Markdown."""
    extra = [{"t": "x"} for _ in range(5)]
    base = write_run(tmp_path / "base.jsonl", run_id="b1", extra=extra,
                     scores={"f1": [0.1, 0.5, 0.3, 0.7, 0.2]})  # fmt: skip
    cand = write_run(tmp_path / "cand.jsonl", run_id="c1", extra=extra,
                     scores={"f1": [0.2, 0.4, 0.6, 0.9, 0.1]})  # fmt: skip
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "t")
    assert code == 0
    assert "p adjusted across 1 comparison (Holm)" in out
    assert "by t: 1 value; p adjusted across 1 slice comparison (Holm)" in out
    code, out, _ = invoke("compare", str(base), str(cand), "--by", "t", "--markdown")
    assert "**By `t`**: 1 value; p-values Holm-adjusted across 1 slice comparison." in out


def test_the_n_columns_have_thousands_separators(tmp_path: Path) -> None:
    """compare's n column (and its slices') wrote `3000 (-1000)`, the Markdown's rows and
    missing columns `3000` and `1000`, where every other count reads 3,000."""
    n = 4000
    extra = [{"t": "x"} for _ in range(n)]
    base_scores = np.linspace(0, 1, n)
    cand_scores = [None if i < 1000 else v for i, v in enumerate(base_scores)]
    base = write_run(tmp_path / "base.jsonl", run_id="b1", extra=extra, scores={"f1": base_scores})
    cand = write_run(tmp_path / "cand.jsonl", run_id="c1", extra=extra, scores={"f1": cand_scores})
    code, out, err = invoke("compare", str(base), str(cand), "--by", "t")
    assert code == 0, err
    cells = [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]
    assert cells[0][:2] == ["f1 ↑", "3,000 (-1,000)"]
    assert cells[1][:3] == ["x (4,000 rows)", "f1 ↑", "3,000 (-1,000)"]
    code, out, err = invoke("compare", str(base), str(cand), "--markdown")
    assert code == 0, err
    assert "| f1 | 3,000 | 1,000 |" in out


def test_slice_values_are_shown_as_written(tmp_path: Path) -> None:
    # A value such as "[/x]" went to rich as markup: a traceback instead of the table.
    values = ["[/x]" if i % 2 else "[easy]" for i in range(40)]
    extra = [{"tag": v} for v in values]
    scores = {"f1": np.linspace(0, 1, 40)}
    base = write_run(tmp_path / "b.jsonl", run_id="b", scores=scores, extra=extra)
    cand = write_run(tmp_path / "c.jsonl", run_id="c", scores=scores, extra=extra)
    code, out, err = invoke("compare", str(base), str(cand), "--by", "tag")
    assert code == 0, err
    assert "[/x] (20 rows)" in out and "[easy] (20 rows)" in out


def test_means_have_one_number_of_digits_on_every_surface(
    runs: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    # --markdown (and the report) once showed means to 4 digits (0.5523), the terminal to 3.
    from harness.compare.api import compare_refs
    from harness.compare.render.html import comparison_section
    from harness.numbers import mean_ci

    base, cand, _ = runs
    args = ("compare", str(base), str(cand), "--by", "topic")
    doc = json.loads(invoke(*args, "--json")[1])
    candidate = doc["candidates"][0]
    means = [
        (m[side]["mean"], m[side]["low"], m[side]["high"])
        for m in [*candidate["metrics"], *(m for s in candidate["slices"] for m in s["metrics"])]
        for side in ("base", "candidate")
    ]
    cells = [mean_ci(*mean, 3) for mean in means]
    assert cells != [mean_ci(*mean, 4) for mean in means]  # the digits tell
    html = str(comparison_section(compare_refs(str(base), [str(cand)], by=["topic"])).html)
    for surface in (invoke(*args)[1], invoke(*args, "--markdown")[1], html):
        assert all(cell in surface for cell in cells)
