"""examples/ci runs as CI runs it: check.sh in a bare copy, no API key, no network beyond
the loopback address in the cassette's keys (never contacted in replay).

This is what keeps the example from rotting: a changed cache key, run file format, CLI
option or gate rule fails here first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci"


def test_check_sh_replays_and_passes_like_ci(tmp_path: Path) -> None:
    folder = tmp_path / "ci"
    local_state = shutil.ignore_patterns(
        "harness.duckdb*", "cache", "mlruns", "junit.xml", "report.html"
    )
    shutil.copytree(EXAMPLE, folder, ignore=local_state)
    summary = tmp_path / "step-summary.md"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "ANTHROPIC_", "HARNESS_", "MLFLOW_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_SHA="abc123",
    )
    done = subprocess.run(
        ["bash", str(folder / "check.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "model calls: 0 sent, 30 from cache" in done.stdout  # replayed, nothing sent
    assert "judge calls: 0 sent, 60 from cache" in done.stdout
    assert "check: pass (all 6 gates passed)" in done.stdout
    # The baseline declares its scores' kinds and ranges, as a run made today does: the
    # yes/no judge is compared as 0/1 and the 1-5 judge's means are cut at its scale.
    legend = " ".join(done.stdout.split())
    assert "t cut at [1, 5] for faithfulness; Wilson's for correctness." in legend
    assert "adjusted Wald cut at ±1 for correctness." in legend
    assert "::error" not in done.stderr
    cases = list(ET.parse(folder / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 6 and not any(c.find("failure") is not None for c in cases)
    assert summary.read_text(encoding="utf-8").startswith("### ✅ harness check: pass")
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert '<div class="banner pass">Pass: all 6 gates passed</div>' in report

    # The same gates fail a regression: against a baseline whose judge said "yes" to every
    # answer, the replayed run has 19 fewer correct answers of 30.
    lines = (folder / "baseline.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    for row in rows:
        for score in row["scores"]:
            if score["metric"] == "correctness":
                score["value"] = 1.0
    better = folder / "better-baseline.jsonl"
    better.write_text("\n".join([lines[0], *map(json.dumps, rows)]) + "\n", encoding="utf-8")
    run_id = json.loads(
        subprocess.run(
            ["harness", "runs", "list", "--json"], env={**env, "HARNESS_HOME": str(folder)},
            capture_output=True, text=True, check=True,
        ).stdout
    )[0]["run_id"]  # fmt: skip
    done = subprocess.run(
        ["harness", "check", run_id, "--baseline", str(better), "--junit", "junit.xml"],
        env={**env, "HARNESS_HOME": str(folder)}, cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error title=harness check%3A correctness max_drop 0.1%3A worse::" in done.stderr
    failed = [c.get("name") for c in ET.parse(folder / "junit.xml").getroot().iter("testcase")
              if c.find("failure") is not None]  # fmt: skip
    assert failed == ["correctness max_drop 0.1"]


def test_the_workflow_runs_check_sh_and_needs_no_secret() -> None:
    text = (EXAMPLE / "github-workflow.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    steps = workflow["jobs"]["eval"]["steps"]
    assert [s.get("run") for s in steps if "run" in s][-1] == "examples/ci/check.sh"
    report = next(s for s in steps if "junit-report" in s.get("uses", ""))
    assert report["with"]["report_paths"] == "examples/ci/junit.xml"
    kept = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    assert kept["with"]["path"] == "examples/ci/report.html" and kept["if"] == "always()"
    assert "secrets." not in text and "API_KEY" not in text
    check = (EXAMPLE / "check.sh").read_text(encoding="utf-8")
    assert "--cache replay" in check and "--check" in check and "API_KEY" not in check
