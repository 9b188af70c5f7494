"""What compare says of its MDE and its intervals, on every surface: a minimum detectable
effect larger than any change the scores can show says no change is detectable, and the
legend names the interval each metric's means and change got, as the run's ``--by`` does."""

from __future__ import annotations

import json
import math
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower

from harness.cli import cli


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def two_runs(
    tmp_path: Path,
    base: dict[str, list[float]],
    candidate: dict[str, list[float]],
    bounds: dict[str, list[float]],
    binary: list[str] | None = None,
) -> tuple[str, str]:
    """Two run files of the same rows, declaring ``bounds`` and ``binary`` as a run does."""
    paths = []
    for name, scores in (("base", base), ("candidate", candidate)):
        path = write_run(tmp_path / f"{name}.jsonl", run_id=f"{name[:4]}00000000",
                         scores=scores, judges=["judge"], bounds=bounds, binary=binary)  # fmt: skip
        paths.append(str(path))
    return paths[0], paths[1]


def metrics_of(shown: str) -> dict[str, dict[str, object]]:
    return {m["metric"]: m for m in json.loads(shown)["candidates"][0]["metrics"]}


def table_row(text: str, metric: str) -> str:
    """The lines of ``text`` whose first cell is ``metric`` (Markdown has two tables)."""
    lines = [line for line in text.splitlines() if re.match(rf"\|? ?{metric}\b", line)]
    assert lines, text
    return "\n".join(lines)


def report_method(tmp_path: Path, base: str, candidate: str) -> re.Match[str]:
    """The report's method table of ``compare base candidate`` and, as group 1, the note
    under it."""
    report = tmp_path / "report.html"
    invoke("report", base, candidate, "-o", str(report))
    page = unescape(report.read_text(encoding="utf-8"))
    method = re.search(r'<table class="method">.*?</table>\s*<p class="note">(.*?)</p>', page, re.S)
    assert method is not None
    return method


def test_an_mde_beyond_the_largest_change_says_no_change_is_detectable(tmp_path: Path) -> None:
    """A 1-5 judge on 3 rows showed 'MDE 13.1' where no mean can move by more than 4 (and
    exact match 'MDE 1.12'): a reader could not tell that no change at all is detectable
    with these rows. The cell now says '> 4 (none)' and the legend what that means; --json
    keeps the MDE as computed (statsmodels' and scipy's), with max_change and
    mde_exceeds_range."""
    base, candidate = two_runs(
        tmp_path, {"judge": [1.0, 3.0, 5.0], "em": [1.0, 0.0, 1.0]},
        {"judge": [5.0, 3.0, 1.0], "em": [0.0, 1.0, 1.0]}, {"judge": [1, 5]}, ["em"],
    )  # fmt: skip
    metrics = metrics_of(invoke("compare", base, candidate, "--json"))
    judge, em = metrics["judge"], metrics["em"]
    # The paired t test's MDE: the effect size statsmodels' power solves for, times sd(d).
    d = np.array([4.0, 0.0, -4.0])
    effect = TTestPower().solve_power(nobs=3, alpha=0.05, power=0.8)
    assert judge["mde"] == pytest.approx(effect * d.std(ddof=1), rel=1e-6)
    assert judge["mde"] > 13 and (judge["max_change"], judge["mde_exceeds_range"]) == (4, True)
    # 0/1 scores: Miller's eq. 10 on the adjusted Wald SE (one discordant pair of each kind).
    se = math.sqrt((2 / 5 + 2 / 5) / 5)
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    assert em["mde"] == pytest.approx(z * se) and em["mde"] > 1
    assert (em["max_change"], em["mde_exceeds_range"]) == (1, True)

    terminal = invoke("compare", base, candidate)
    assert "> 4 (none)" in table_row(terminal, "judge") and "13.1" not in terminal
    assert "> 1 (none)" in table_row(terminal, "em") and "1.12" not in terminal
    legend = " ".join(terminal.split())
    assert "'> N (none)' where it exceeds N, the largest change the scores can show" in legend
    assert "no change is detectable with these rows" in legend

    markdown = invoke("compare", base, candidate, "--markdown")
    assert "| t | > 4 (none) |" in table_row(markdown, "judge")
    assert "| adjusted wald | > 1 (none) |" in table_row(markdown, "em")
    assert "no change is detectable with these rows" in markdown and "13.1" not in markdown

    method = report_method(tmp_path, base, candidate)
    assert '<td>t</td><td class="num">> 4 (none)</td>' in method.group(0)
    assert "no change is detectable with these rows" in method.group(1)


def test_an_mde_within_the_range_is_shown_as_a_number(tmp_path: Path) -> None:
    """40 rows of the same judge: an MDE below 4 is the number, with no '(none)' anywhere."""
    rng = np.random.default_rng(7)
    base_scores = rng.integers(1, 6, 40).astype(float)
    candidate_scores = np.clip(base_scores + rng.integers(-1, 2, 40), 1, 5)
    base, candidate = two_runs(
        tmp_path, {"judge": list(base_scores)}, {"judge": list(candidate_scores)}, {"judge": [1, 5]}
    )  # fmt: skip
    (judge,) = metrics_of(invoke("compare", base, candidate, "--json")).values()
    d = candidate_scores - base_scores
    effect = TTestPower().solve_power(nobs=40, alpha=0.05, power=0.8)
    assert judge["mde"] == pytest.approx(effect * d.std(ddof=1), rel=1e-6)
    assert judge["mde"] < 4 and judge["mde_exceeds_range"] is False
    terminal = invoke("compare", base, candidate)
    assert f"{judge['mde']:.3g}" in table_row(terminal, "judge") and "(none)" not in terminal


def legend_runs(tmp_path: Path) -> tuple[str, str]:
    """12 rows of a 0/1 metric, a 1-5 judge, token F1 (0 to 1) and latency (0 to infinity:
    no change is bounded); on the rows of topic a, latency grows by 0.5 on every row (no
    spread)."""
    rng = np.random.default_rng(3)
    topics = ["a" if i % 2 else "b" for i in range(12)]
    runs = []
    latency = rng.uniform(0.1, 2, 12)
    for name in ("base", "candidate"):
        scores = {
            "em": list(rng.integers(0, 2, 12).astype(float)),
            "judge": list(rng.integers(1, 6, 12).astype(float)),
            "token_f1": list(rng.uniform(0, 1, 12)),
            "latency": list(latency),
        }
        path = write_run(tmp_path / f"{name}.jsonl", run_id=f"{name[:4]}11111111", scores=scores,
                         judges=["judge"], binary=["em"],
                         bounds={"judge": [1, 5], "token_f1": [0, 1], "latency": [0, None]},
                         extra=[{"topic": topic} for topic in topics])  # fmt: skip
        runs.append(str(path))
        latency = np.where(np.array(topics) == "a", latency + 0.5, rng.uniform(0.1, 2, 12))
    return runs[0], runs[1]


def test_the_legend_names_each_metrics_interval_as_json_has_it(tmp_path: Path) -> None:
    """compare's terminal table, its Markdown (the PR comment) and the report's comparison
    named only the tests ('tests: exact McNemar, paired t'); which interval each metric's
    means and change got was in --json alone. Each now says it, as the run's --by heading
    does ('95% intervals: Wilson's for exact_match; t cut at [0, 1] for token_f1; ...')."""
    base, candidate = legend_runs(tmp_path)
    metrics = metrics_of(invoke("compare", base, candidate, "--json"))
    # What --json says each metric got, which the legend must name.
    got = {name: (m["base"]["method"], m["interval"], m["range"]) for name, m in metrics.items()}
    assert got == {
        "em": ("wilson", "adjusted wald", [0, 1]),
        "judge": ("t", "t", [1, 5]),
        "token_f1": ("t", "t", [0, 1]),
        "latency": ("t", "t", [0, None]),
    }
    legend = (
        "95% intervals of the means: Wilson's for em; t cut at [0, 1] for token_f1; t cut at "
        "[0, ∞) for latency; t cut at [1, 5] for judge. Of the changes: adjusted Wald cut at "
        "±1 for em; "
        "paired t cut at ±1 for token_f1; paired t for latency; paired t cut at ±4 for judge."
    )
    assert legend in " ".join(invoke("compare", base, candidate).split())
    assert legend in invoke("compare", base, candidate, "--markdown")
    report = tmp_path / "report.html"
    invoke("report", base, candidate, "-o", str(report))
    assert legend in " ".join(unescape(report.read_text(encoding="utf-8")).split())

    # With clusters: the clustered methods.
    clustered = (
        "95% intervals of the means: clustered Wilson's for em; clustered t cut at [0, 1] for "
        "token_f1; clustered t cut at [0, ∞) for latency; clustered t cut at [1, 5] for judge. "
        "Of the "
        "changes: adjusted clustered t cut at ±1 for em; clustered t cut at ±1 for token_f1; "
        "clustered t for latency; clustered t cut at ±4 for judge."
    )
    shown = invoke("compare", base, candidate, "--cluster", "context", "--json")
    assert {m["interval"] for m in metrics_of(shown).values()} == {
        "adjusted clustered t", "clustered t"
    }  # fmt: skip
    assert clustered in " ".join(invoke("compare", base, candidate, "--cluster", "context").split())

    # Slices: a --by table names its intervals where they differ from the table over all
    # rows: the 6 rows of topic a whose latency all grew by 0.5 get the sign test's [d, d].
    sliced = json.loads(invoke("compare", base, candidate, "--by", "topic", "--json"))
    (topic_a,) = [s for s in sliced["candidates"][0]["slices"] if s["value"] == "a"]
    (latency_a,) = [m for m in topic_a["metrics"] if m["metric"] == "latency"]
    assert (latency_a["interval"], latency_a["ci"]) == ("exact sign", [0.5, 0.5])
    for shown in (invoke("compare", base, candidate, "--by", "topic"),
                  invoke("compare", base, candidate, "--by", "topic", "--markdown")):  # fmt: skip
        text = " ".join(shown.split())
        assert text.count(legend) == 1
        by_topic = text[text.index("By `topic`" if "By `topic`" in text else "by topic:") :]
        assert "exact sign for latency; paired t cut at ±4 for judge; paired t for latency." in (
            by_topic
        )
    report = tmp_path / "sliced.html"
    invoke("report", base, candidate, "--by", "topic", "-o", str(report))
    page = " ".join(unescape(report.read_text(encoding="utf-8")).split())
    assert page.count(legend) == 1
    slice_note = re.search(r'<div class="slice-changes" data-column="topic">.*?</p>', page)
    assert slice_note is not None and "exact sign for latency" in slice_note.group(0)


def test_0_1_scores_on_too_few_rows_for_their_exact_test_say_no_change_is_detectable(
    tmp_path: Path,
) -> None:
    """Exact match on 3 rows, one of which changed, showed 'MDE 0.938' (Miller's eq. 10),
    yet exact McNemar on 3 rows says p >= 0.25 whatever changed (binomtest of 3 of 3), so
    no change at all is detectable. Every surface now says '> 1 (none)' and why; --json
    keeps the MDE as computed, with mde_exceeds_range and the test's smallest p-value.
    6 rows can reach 0.05 (0.031): their MDE is the number."""
    base, candidate = two_runs(tmp_path, {"em": [1.0, 0.0, 1.0]}, {"em": [1.0, 1.0, 1.0]},
                               {}, ["em"])  # fmt: skip
    (em,) = metrics_of(invoke("compare", base, candidate, "--json")).values()
    se = math.sqrt((1 / 5 + 2 / 5 - (1 / 5) ** 2) / 5)  # adjusted Wald: one pair of each kind
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    assert em["mde"] == pytest.approx(z * se) and em["mde"] == pytest.approx(0.938, abs=5e-4)
    assert em["smallest_p_value"] == pytest.approx(scipy_stats.binomtest(3, 3, 0.5).pvalue)
    assert (em["max_change"], em["mde_exceeds_range"]) == (1, True)
    legend_words = "cannot give a p-value below 0.05 even if every row changed the same way"

    terminal = invoke("compare", base, candidate)
    assert "> 1 (none)" in table_row(terminal, "em") and "0.938" not in terminal
    assert legend_words in " ".join(terminal.split())
    markdown = invoke("compare", base, candidate, "--markdown")
    assert "| adjusted wald | > 1 (none) |" in table_row(markdown, "em")
    assert legend_words in markdown and "fewer than 6 rows" in markdown
    method = report_method(tmp_path, base, candidate)
    assert '<td>adjusted wald</td><td class="num">> 1 (none)</td>' in method.group(0)
    assert legend_words in method.group(1)

    six = tmp_path / "six"
    six.mkdir()
    base, candidate = two_runs(six, {"em": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]},
                               {"em": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]}, {}, ["em"])  # fmt: skip
    (em,) = metrics_of(invoke("compare", base, candidate, "--json")).values()
    assert em["smallest_p_value"] == pytest.approx(scipy_stats.binomtest(6, 6, 0.5).pvalue)
    assert em["mde"] < 1 and em["mde_exceeds_range"] is False
    terminal = invoke("compare", base, candidate)
    assert f"{em['mde']:.3g}" in table_row(terminal, "em") and "(none)" not in terminal


@pytest.mark.parametrize("stored", [{"latency": [0, None]}, None])
def test_a_metric_never_negative_has_its_means_cut_at_0_and_its_change_uncut(
    tmp_path: Path, stored: dict[str, list[float | None]] | None
) -> None:
    """latency declared no range, so a run's mean on 3 rows read '0.183 [-0.29, 0.65]' in
    compare (as in every surface). It now declares 0 to infinity (stored as [0, null]; a
    run stored before ranges were reads it for the built-in metric): each mean is scipy's
    t interval cut at 0; the change of a metric bounded below only is not bounded, so its
    interval is scipy's paired t, uncut, and max_change is null, not inf."""
    base_scores, candidate_scores = [0.1, 0.05, 0.4], [0.3, 0.02, 0.1]
    paths = []
    for name, scores in (("base", base_scores), ("candidate", candidate_scores)):
        path = write_run(tmp_path / f"{name}.jsonl", run_id=f"{name[:4]}00000000",
                         scores={"latency": scores}, bounds=stored)  # fmt: skip
        paths.append(str(path))
    shown = invoke("compare", *paths, "--json")
    assert "Infinity" not in shown
    (latency,) = metrics_of(shown).values()
    for side, scores in (("base", base_scores), ("candidate", candidate_scores)):
        low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(scores),
                                           scale=scipy_stats.sem(scores))  # fmt: skip
        assert low < 0
        assert [latency[side]["low"], latency[side]["high"]] == [0.0, pytest.approx(high)]
    d = np.array(candidate_scores) - np.array(base_scores)
    change = scipy_stats.t.interval(0.95, 2, loc=d.mean(), scale=scipy_stats.sem(d))
    assert latency["ci"] == pytest.approx(list(change)) and change[0] < -0.5 < 0.5 < change[1]
    assert latency["range"] == [0.0, None] and latency["max_change"] is None
    assert latency["mde_exceeds_range"] is False

    legend = (
        "95% intervals of the means: t cut at [0, ∞) for latency. Of the changes: paired t "
        "for latency."
    )
    assert legend in " ".join(invoke("compare", *paths).split())
    assert legend in " ".join(invoke("compare", *paths, "--markdown").split())


def test_one_row_names_no_tests_in_the_legend(tmp_path: Path) -> None:
    """Runs of one row (a CI smoke run with --limit 1) have no test: compare's legend read
    'margin that matters: f1 0.02; tests: ; MDE: ...'. It now leaves 'tests' out."""
    paths = [
        str(write_run(tmp_path / f"{name}.jsonl", run_id=name, scores={"f1": [value]},
                      bounds={"f1": [0, 1]}))
        for name, value in (("one_base", 0.3), ("one_cand", 0.2))
    ]  # fmt: skip
    out = " ".join(invoke("compare", *paths).split())
    assert "note: one row: an interval, a p-value or an MDE needs two or more" in out
    assert "margin that matters: f1 0.02; MDE: minimum detectable effect" in out
    assert "tests:" not in out
