"""A drop gate on 0/1 scores agrees with exact McNemar: on rows too few for that test to
tell a change from none, `harness check` cannot tell (it failed 5 rows that all dropped
as "worse" while the same report said no change was detectable), and every surface shows
the same interval, reaching 0. Run files through the CLI; numbers from scipy."""

from __future__ import annotations

import json
import math
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from run_files import write_run
from scipy import stats as scipy_stats

from harness.cli import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def all_dropped(folder: Path, n: int) -> tuple[str, str]:
    """Exact match 1 on every row of the base, 0 on every row of the candidate."""
    base = write_run(folder / "base.jsonl", run_id="base", scores={"exact_match": np.ones(n)},
                     binary=["exact_match"])  # fmt: skip
    candidate = write_run(folder / "cand.jsonl", run_id="cand",
                          scores={"exact_match": np.zeros(n)}, binary=["exact_match"])  # fmt: skip
    return str(base), str(candidate)


def adjusted_wald(n: int, lost: int, gained: int) -> tuple[float, float, float]:
    """Bonett & Price's center, SE and 95% interval (cut at -1) from scipy: the Wald
    interval after one added pair of each kind."""
    lost_share, gained_share = (lost + 1) / (n + 2), (gained + 1) / (n + 2)
    center = gained_share - lost_share
    se = math.sqrt((lost_share + gained_share - center**2) / (n + 2))
    return center, se, max(-1.0, center - scipy_stats.norm.ppf(0.975) * se)


def test_five_rows_that_all_dropped_cannot_fail_a_gate(tmp_path: Path) -> None:
    base, candidate = all_dropped(tmp_path, 5)
    exact = scipy_stats.binomtest(5, 5, 0.5)
    assert exact.pvalue == pytest.approx(0.0625)  # >= 0.05: no change can be told
    code, out, err = invoke("check", candidate, "--baseline", base,
                            "--max-drop", "exact_match=0.1", "--json")  # fmt: skip
    doc = json.loads(out)
    (gate,) = doc["gates"]
    assert code == 3 and doc["outcome"] == "undecided", gate  # it was 1: "worse"
    assert gate["finding"] == "cannot tell" and gate["ci"] == [-1, 0]
    # The gate's p for "worse" is exact McNemar's one-sided one (0.031), not the adjusted
    # Wald one, which alone failed the gate (0.010 < 0.025).
    one_sided = scipy_stats.binomtest(5, 5, 0.5, alternative="greater").pvalue
    center, se, _ = adjusted_wald(5, 5, 0)
    assert scipy_stats.norm.cdf((center + 0.1) / se) < 0.025
    assert gate["p_worse"] == pytest.approx(one_sided) and gate["p_worse"] >= 0.025
    assert "cannot tell with 5 rows: the change is -1 (95% CI -1 to 0)" in gate["reason"]
    assert gate["rows_needed"] == 6  # 0.5^6 = 0.016 < 0.025
    (metric,) = doc["comparison"]["candidates"][0]["metrics"]
    assert metric["ci"] == gate["ci"] and metric["interval"] == "adjusted wald to 0"
    assert metric["p_value"] == pytest.approx(exact.pvalue)
    assert metric["mde_exceeds_range"] is True and metric["verdict"] == "inconclusive"
    wald_high = center + scipy_stats.norm.ppf(0.975) * se
    assert wald_high < 0  # what the interval said before: [-1, -0.196]
    assert f"[-1, {wald_high:.3g}] excludes 0" in metric["interval_note"]

    # compare, its Markdown and the HTML report show the same interval and say why.
    code, out, _ = invoke("compare", base, candidate, "--json")
    (same,) = json.loads(out)["candidates"][0]["metrics"]
    assert code == 0 and same["ci"] == [-1, 0] and same["interval_note"] == metric["interval_note"]
    code, out, _ = invoke("compare", base, candidate, "--markdown")
    assert code == 0 and "| -1 [-1, 0] |" in out and "adjusted Wald widened to 0" in out
    assert metric["interval_note"] in out
    report = tmp_path / "check.html"
    code, _, _ = invoke("check", candidate, "--baseline", base, "--max-drop", "exact_match=0.1",
                        "--report", str(report))  # fmt: skip
    page = unescape(report.read_text(encoding="utf-8"))
    assert code == 3 and "[-1, 0]" in page and metric["interval_note"] in page
    assert "-0.196" not in page.replace(metric["interval_note"], "")  # only the note has it


def test_a_check_gate_from_harness_toml_agrees_too(tmp_path: Path, home: Path) -> None:
    base, candidate = all_dropped(tmp_path, 5)
    (home / "harness.toml").write_text(
        f'[check]\nbaseline = "{base}"\nexact_match = {{ max_drop = 0.1 }}\n', encoding="utf-8"
    )
    code, out, err = invoke("check", candidate)
    assert code == 3, out + err
    assert "error: cannot decide 1 of 1 gates: exact_match max_drop 0.1 (cannot tell" in err


def test_eight_rows_that_all_dropped_still_fail(tmp_path: Path) -> None:
    base, candidate = all_dropped(tmp_path, 8)
    assert scipy_stats.binomtest(8, 8, 0.5).pvalue == pytest.approx(0.0078125)
    code, out, _ = invoke("check", candidate, "--baseline", base,
                          "--max-drop", "exact_match=0.1", "--json")  # fmt: skip
    doc = json.loads(out)
    (gate,) = doc["gates"]
    assert code == 1 and gate["finding"] == "worse", gate
    center, se, low = adjusted_wald(8, 8, 0)
    assert gate["ci"] == pytest.approx([low, center + scipy_stats.norm.ppf(0.975) * se])
    one_sided = scipy_stats.binomtest(8, 8, 0.5, alternative="greater").pvalue
    assert gate["p_worse"] == pytest.approx(one_sided)  # the larger of it and Wald's
    (metric,) = doc["comparison"]["candidates"][0]["metrics"]
    assert metric["interval"] == "adjusted wald" and metric["interval_note"] is None
    assert metric["verdict"] == "worse"


def test_the_rows_said_to_tell_do_tell(tmp_path: Path) -> None:
    """3 rows, 2 of which dropped: the gate cannot tell, and the rows it says would tell
    (if the same share keeps dropping) must let exact McNemar tell too. It said 7, where
    5 of 7 rows dropping give binomtest's one-sided 0.031, not below 0.025."""

    def gate(rows: int) -> dict:
        lost = round(2 * rows / 3)
        folder = tmp_path / str(rows)
        folder.mkdir()
        base = write_run(folder / "base.jsonl", run_id="base",
                         scores={"exact_match": np.ones(rows)}, binary=["exact_match"])  # fmt: skip
        candidate = np.ones(rows)
        candidate[:lost] = 0
        cand = write_run(folder / "cand.jsonl", run_id="cand",
                         scores={"exact_match": candidate}, binary=["exact_match"])  # fmt: skip
        code, out, _ = invoke("check", str(cand), "--baseline", str(base),
                              "--max-drop", "exact_match=0.02", "--json")  # fmt: skip
        (result,) = json.loads(out)["gates"]
        assert code == {"worse": 1, "cannot tell": 3}[result["finding"]], result
        return dict(result)

    first = gate(3)
    assert first["finding"] == "cannot tell"
    needed = first["rows_needed"]
    assert gate(needed)["finding"] == "worse"
    assert gate(needed - 1)["finding"] == "cannot tell"
    lost = round(2 * needed / 3)
    assert scipy_stats.binomtest(lost, lost, 0.5, alternative="greater").pvalue < 0.025
