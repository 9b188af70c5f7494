"""`harness check` tells worse, not worse and cannot tell apart, through the CLI, on
synthetic runs whose true difference is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats

from harness.cli import cli
from harness.stats import paired_difference


def binary_pair(seed: int, n: int, worse: float, better: float) -> tuple[np.ndarray, np.ndarray]:
    """Base correct 60% of the time; the candidate loses a row with probability ``worse``
    and gains one with probability ``better``: the true change is ``better - worse``."""
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < 0.6).astype(float)
    u = rng.random(n)
    candidate = base.copy()
    candidate[(base == 1) & (u < worse / 0.6)] = 0
    candidate[(base == 0) & (u < better / 0.4)] = 1
    return base, candidate


def check(folder: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli,
        ["check", str(folder / "cand.jsonl"), "--baseline", str(folder / "base.jsonl"),
         *args, "--json"],
    )  # fmt: skip
    assert result.exit_code != 2, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_a_true_five_point_drop_on_1000_rows_fails(tmp_path: Path) -> None:
    # 6% of rows lost, 1% gained: a true drop of 5 points, as when a prompt change breaks
    # one kind of question. (How often such a drop fails the gate: the power test below.)
    base, candidate = binary_pair(1, 1000, worse=0.06, better=0.01)
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": base})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"exact_match": candidate})
    code, doc = check(tmp_path, "--max-drop", "exact_match=0.02")
    gate = doc["gates"][0]
    assert code == 1 and doc["outcome"] == "fail", gate
    assert gate["finding"] == "worse" and gate["ci"][1] < -0.02
    assert doc["comparison"]["candidates"][0]["metrics"][0]["verdict"] == "worse"


def test_an_identical_candidate_passes(tmp_path: Path) -> None:
    base, _ = binary_pair(2, 1000, 0, 0)
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": base})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"exact_match": base})
    code, doc = check(tmp_path, "--max-drop", "exact_match=0.02")
    assert code == 0 and doc["gates"][0]["finding"] == "not worse"
    metric = doc["comparison"]["candidates"][0]["metrics"][0]
    assert metric["verdict"] == "no detectable difference"


def test_the_same_drop_on_40_rows_cannot_be_told(tmp_path: Path) -> None:
    base, candidate = binary_pair(3, 40, worse=0.075, better=0.025)
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": base})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"exact_match": candidate})
    code, doc = check(tmp_path, "--max-drop", "exact_match=0.02")
    gate = doc["gates"][0]
    assert code == 3 and gate["outcome"] == "undecided" and gate["finding"] == "cannot tell"
    assert gate["ci"][0] < -0.02 < gate["ci"][1]
    assert gate["rows_needed"] and gate["rows_needed"] > 40


def test_a_five_point_drop_fails_the_gate_in_most_datasets() -> None:
    # The gate's power: the share of 400 datasets of 1,000 rows whose 95% interval lies
    # wholly beyond the allowed drop of 0.02. Where 7% of rows change it is ~97%; where 10%
    # change (7.5% lost, 2.5% gained: noisier pairs) ~86%: rows that change add variance.
    for (worse, better), least in (((0.06, 0.01), 0.93), ((0.075, 0.025), 0.80)):
        fails = sum(
            paired_difference(*binary_pair(5000 + i, 1000, worse, better), binary=True).p_less(
                -0.02
            )
            < 0.025
            for i in range(400)
        )
        assert fails / 400 >= least, (worse, better, fails)


@pytest.fixture(scope="module")
def boundary_draws() -> list[tuple[np.ndarray, np.ndarray]]:
    return [binary_pair(1000 + i, 1000, worse=0.06, better=0.04) for i in range(400)]


def test_a_drop_exactly_at_the_margin_is_called_worse_at_most_2_5_percent_of_the_time(
    boundary_draws: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    # The true drop is 0.02 = the allowed drop: "worse" would be a false alarm. The gate
    # decides "worse" when the one-sided p of "dropped more than 0.02" is below 0.025.
    false_alarms = sum(
        paired_difference(b, c, binary=True).p_less(-0.02) < 0.025 for b, c in boundary_draws
    )
    assert false_alarms / len(boundary_draws) <= 0.025 + 3 * (0.025 * 0.975 / 400) ** 0.5


def test_a_zero_margin_never_shows_not_worse(tmp_path: Path) -> None:
    # max_drop 0 asks to rule out any drop at all: even an identical run cannot.
    base, _ = binary_pair(4, 200, 0, 0)
    f1 = np.linspace(0, 1, 200)
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": base, "f1": f1})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"exact_match": base, "f1": f1})
    code, doc = check(tmp_path, "--max-drop", "exact_match=0", "--max-drop", "f1=0")
    assert code == 3
    assert [g["finding"] for g in doc["gates"]] == ["cannot tell", "cannot tell"]
    assert all("rows would tell" not in g["reason"] for g in doc["gates"])


def test_a_drop_told_by_its_own_interval_but_not_after_holm_says_so(tmp_path: Path) -> None:
    # token_f1 falls by 0.0313 with SE 0.005: its own 95% interval lies wholly below the
    # 0.02 allowed (one-sided p about 0.013), but Holm across 5 gates asks for p < 0.005.
    rng = np.random.default_rng(21)
    n = 400
    base = rng.random(n)
    noise = rng.normal(size=n)
    shift = -0.0313 + (noise - noise.mean()) / noise.std(ddof=1) * 0.1
    metrics = ["token_f1", "rouge1", "rouge2", "rougeL", "faithfulness"]
    write_run(tmp_path / "base.jsonl", run_id="b", scores={m: base for m in metrics})
    write_run(tmp_path / "cand.jsonl", run_id="c",
              scores={m: base + shift if m == "token_f1" else base for m in metrics})  # fmt: skip
    gates = [a for m in metrics for a in ("--max-drop", f"{m}=0.02")]
    code, doc = check(tmp_path, *gates)
    [gate] = [g for g in doc["gates"] if g["metric"] == "token_f1"]
    assert code == 3 and gate["finding"] == "cannot tell"
    assert gate["ci"][1] < -0.02  # the interval shown is beyond the allowed drop...
    assert gate["reason"].endswith(
        "shows a drop larger than the 0.02 allowed, but adjusted for 5 gates (Holm) the "
        "evidence is not enough"
    )  # ...and the reason says why it is still not a failure
    code, doc = check(tmp_path, "--max-drop", "token_f1=0.02")
    assert code == 1 and doc["gates"][0]["finding"] == "worse"  # one gate: no adjustment


def test_rows_needed_on_few_rows_is_where_the_t_interval_clears_the_drop(tmp_path: Path) -> None:
    # A scale on 6 rows: the interval is t's, so the rows that would tell are where
    # t(N - 1)·sd/√N reaches the allowed drop, more than z's 1.96 promises (67, not 65).
    base = np.array([3.0, 4.0, 2.0, 5.0, 3.0, 4.0])
    candidate = base + np.array([0.0, -1.0, 0.0, 0.0, -1.0, 0.5])
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"f1": base})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"f1": candidate})
    code, doc = check(tmp_path, "--max-drop", "f1=0.1")
    gate = doc["gates"][0]
    assert code == 3 and gate["finding"] == "cannot tell", gate
    needed, distance = gate["rows_needed"], abs(np.mean(candidate - base) + 0.1)
    sd = np.std(candidate - base, ddof=1)

    def half_width(rows: int) -> float:
        return float(scipy_stats.t.ppf(0.975, rows - 1) * sd / np.sqrt(rows))

    assert half_width(needed) <= distance < half_width(needed - 1)
    assert f"about {needed:,} rows would tell" in gate["reason"]


@pytest.mark.parametrize("rows", [3, 6, 60])
def test_rows_needed_for_0_1_scores_projects_the_adjusted_interval(
    tmp_path: Path, rows: int
) -> None:
    """Identical 0/1 runs: the rows that would tell are where the adjusted Wald interval of
    identical rows clears the drop, the same whatever n (projecting the measured SE, which
    holds the interval's added pairs, said 2,305 at 3 rows, 1,801 at 6 and 300 at 60)."""
    base = np.ones(rows)
    write_run(tmp_path / "base.jsonl", run_id="base", scores={"exact_match": base})
    write_run(tmp_path / "cand.jsonl", run_id="cand", scores={"exact_match": base})
    code, doc = check(tmp_path, "--max-drop", "exact_match=0.02")
    gate = doc["gates"][0]
    assert code == 3 and gate["finding"] == "cannot tell", gate
    needed = gate["rows_needed"]

    def low(n: int) -> float:  # the interval harness gives identical runs of n rows
        return paired_difference(np.ones(n), np.ones(n), binary=True).low

    assert low(needed) >= -0.02 > low(needed - 1)
    assert needed == 137
