"""compare and check on a scale whose per-row changes have no spread: the exact sign test
decides (numbers from ``scipy.stats.binomtest``), and with no interval nothing is ruled
out, so a few rows that all changed alike are 'inconclusive' / 'cannot tell' (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats

from harness.cli import cli


def runs(folder: Path, base: np.ndarray, candidate: np.ndarray) -> None:
    # token_f1 declares nothing: a scale, compared with the t methods, even when it
    # scored only 0 and 1.
    extra = [{}] * len(base)  # as an export writes a row with no extra columns
    for name, scores in (("base", base), ("cand", candidate)):
        write_run(folder / f"{name}.jsonl", run_id=name, scores={"token_f1": scores},
                  binary=[], extra=extra)  # fmt: skip


def compare(folder: Path, *args: str) -> dict:
    result = CliRunner().invoke(
        cli, ["compare", str(folder / "base.jsonl"), str(folder / "cand.jsonl"), *args, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    metric: dict = json.loads(result.stdout)["candidates"][0]["metrics"][0]
    return metric


def check(folder: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli,
        ["check", str(folder / "cand.jsonl"), "--baseline", str(folder / "base.jsonl"),
         "--max-drop", "token_f1=0.02", *args, "--json"],
    )  # fmt: skip
    assert result.exit_code != 2, result.stderr
    gate: dict = json.loads(result.stdout)["gates"][0]
    return result.exit_code, gate


def sign_p(n: int, alternative: str = "two-sided") -> float:
    return float(scipy_stats.binomtest(n, n, 0.5, alternative=alternative).pvalue)


def test_three_rows_all_1_to_0_cannot_tell(tmp_path: Path) -> None:
    runs(tmp_path, np.ones(3), np.zeros(3))
    metric = compare(tmp_path)
    assert metric["test"] == "exact sign" and metric["p_value"] == sign_p(3) == 0.25
    assert metric["ci"] == [None, None] and metric["mde"] is None
    assert metric["verdict"] == "inconclusive"  # was "worse", from p = 0 and CI [-1, -1]
    code, gate = check(tmp_path)
    assert code == 3 and gate["finding"] == "cannot tell"  # was exit 1, "worse"
    assert gate["p_worse"] == sign_p(3, "greater") == 0.125
    assert gate["rows_needed"] == 6  # 0.5^6 < 0.025: six rows all 1 -> 0 would tell
    assert "-1 on every row (no spread), and the exact sign test on 3 rows" in gate["reason"]


def test_twelve_rows_all_1_to_0_are_worse_by_the_sign_test(tmp_path: Path) -> None:
    runs(tmp_path, np.ones(12), np.zeros(12))
    metric = compare(tmp_path)
    assert metric["test"] == "exact sign" and metric["p_value"] == sign_p(12)
    assert metric["ci"] == [-1, -1] and metric["verdict"] == "worse"  # the sign test's
    code, gate = check(tmp_path)
    assert code == 1 and gate["finding"] == "worse"
    assert gate["p_worse"] == sign_p(12, "greater")  # was 0


def test_identical_runs_on_three_rows_cannot_tell(tmp_path: Path) -> None:
    scores = np.array([0.2, 0.5, 0.9])
    runs(tmp_path, scores, scores)
    metric = compare(tmp_path)
    assert metric["p_value"] == 1.0 and metric["ci"] == [None, None] and metric["mde"] is None
    assert metric["verdict"] == "inconclusive"  # was "no detectable difference"
    code, gate = check(tmp_path)
    assert code == 3 and gate["finding"] == "cannot tell"  # was exit 0, "not worse"
    assert gate["p_worse"] == 1.0


def test_clusters_whose_means_all_dropped_alike_cannot_tell(tmp_path: Path) -> None:
    # Rows q0-q4, q5-q9, q10-q14 share a passage ("context"); within each, the changes
    # differ, but every passage's mean dropped by 0.4: three clusters, no spread.
    base = np.ones(15)
    candidate = np.tile([0.0, 0.0, 1.0, 1.0, 1.0], 3)
    runs(tmp_path, base, candidate)
    metric = compare(tmp_path, "--cluster", "context")
    assert metric["clusters"] == 3 and metric["test"] == "exact sign"
    assert metric["p_value"] == sign_p(3) and metric["ci"] == [None, None]
    assert metric["verdict"] == "inconclusive"  # was "worse", p = 0
    code, gate = check(tmp_path, "--cluster", "context")
    assert code == 3 and gate["p_worse"] == sign_p(3, "greater")  # was exit 1


def test_identical_runs_on_sixty_rows_are_no_detectable_difference(tmp_path: Path) -> None:
    # A replay identical to its baseline: the sign test's interval [0, 0] is within the
    # margin, and no row drops; every further row halves the one-sided p.
    scores = np.linspace(0.1, 0.9, 60)
    runs(tmp_path, scores, scores)
    metric = compare(tmp_path)
    assert metric["test"] == "exact sign" and metric["ci"] == [0, 0]
    assert metric["verdict"] == "no detectable difference"
    code, gate = check(tmp_path)
    assert code == 0 and gate["finding"] == "not worse"


def test_clusters_with_identical_rows_cannot_tell(tmp_path: Path) -> None:
    scores = np.linspace(0.1, 0.9, 15)
    runs(tmp_path, scores, scores)
    assert compare(tmp_path, "--cluster", "context")["verdict"] == "inconclusive"
    code, gate = check(tmp_path, "--cluster", "context")
    assert code == 3 and gate["finding"] == "cannot tell"  # was exit 0, "not worse"


def test_the_terminal_says_why_there_is_no_interval(tmp_path: Path) -> None:
    runs(tmp_path, np.ones(3), np.zeros(3))
    result = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "base.jsonl"), str(tmp_path / "cand.jsonl")]
    )
    assert result.exit_code == 0, result.stderr
    assert "token_f1: every row changed by -1: with no spread and 3 rows there is no" in " ".join(
        result.stdout.split()
    )


def test_a_run_whose_scores_have_no_spread_shows_its_mean_without_an_interval(
    tmp_path: Path,
) -> None:
    # The base scored 3 on each of 4 rows: its t interval was [3, 3]; now none, and a note.
    runs(tmp_path, np.full(4, 3.0), np.array([3.0, 4.0, 3.0, 5.0]))
    metric = compare(tmp_path)
    base = metric["base"]
    assert base["method"] == "none" and base["low"] is None
    assert (
        base["interval_note"]
        == "every row scored 3: with no spread over 4 rows there is no interval"
    )
    result = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "base.jsonl"), str(tmp_path / "cand.jsonl")]
    )
    assert result.exit_code == 0, result.stderr
    assert "[3, 3]" not in result.stdout
    note = f"note: token_f1, base: {base['interval_note']}"
    assert note in " ".join(result.stdout.split())
    # The same rows six times over: still none (24 rows that scored 3 bound nothing).
    runs(tmp_path, np.full(24, 3.0), np.tile([3.0, 4.0, 3.0, 5.0], 6))
    base = compare(tmp_path)["base"]
    assert (
        base["method"] == "none"
        and base["low"] is None
        and "over 24 rows" in (base["interval_note"])
    )
