"""compare and check say when a metric or judge of both runs was defined differently in
each (harness.toml edited between a baseline and a candidate): real runs through the CLI,
the `echo` model and a `python:` judge model; verdicts and exit codes unchanged."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

GOLDEN = Path(__file__).parent / "golden"
# The four rows of golden/run-before-metric-versions.jsonl, a run exported (with
# --metric cites --metric exact_match, [metrics.cites] contains "the") before runs kept
# a metric's version.
ROWS = [
    {"id": "a", "input": "Name the capital of France.", "expected": "Paris"},
    {"id": "b", "input": "What is the largest planet?", "expected": "Jupiter"},
    {"id": "c", "input": "Who wrote the Odyssey?", "expected": "Homer"},
    {"id": "d", "input": "What gas do plants take in?", "expected": "carbon dioxide"},
]
# Four more, each with "the" in its input (echoed): with only ROWS, 3 rows lose "the",
# too few for exact McNemar to tell a drop from none (p = 0.25), so a drop gate on cites
# cannot tell; with these 7 do (one-sided p = 0.0078) and it fails.
MORE_ROWS = [
    {"id": "e", "input": "Who painted the Mona Lisa?", "expected": "Leonardo"},
    {"id": "f", "input": "What is the boiling point of water?", "expected": "100 C"},
    {"id": "g", "input": "Which is the smallest prime?", "expected": "2"},
    {"id": "h", "input": "What is the speed of light?", "expected": "c"},
]
CITES = '[metrics.cites]\nkind = "contains"\nvalue = "{value}"\n'
POLITE = (
    'judge_model = "python:harness_test_models:judge_yes"\n'
    '[judges.polite]\nprompt = "{prompt}: {{output}}"\noutput = "yes/no"\n'
)
CITES_NOTE = (
    "metric 'cites' is defined differently in the two runs (its [metrics.cites] table "
    "changed): the comparison is of two different checks"
)
DIFFERENTLY = "defined differently"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(home: Path, tmp_path: Path) -> None:
    import_qa(tmp_path, ROWS)


@pytest.fixture
def more_qa(home: Path, tmp_path: Path) -> None:
    import_qa(tmp_path, ROWS + MORE_ROWS)


def import_qa(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert invoke("data", "import", str(path), "--name", "qa")[0] == 0


def run(home: Path, toml: str, *options: str) -> str:
    (home / "harness.toml").write_text(toml, encoding="utf-8")
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "echo", *options, "--no-mlflow", "--json"
    )
    assert code == 0, err
    return str(json.loads(out)["run_id"])


def test_an_edited_metrics_table_is_noted_everywhere(
    more_qa: None, home: Path, tmp_path: Path
) -> None:
    metrics = ("--metric", "cites", "--metric", "exact_match")
    base = run(home, CITES.format(value="the"), *metrics)
    candidate = run(home, CITES.format(value="zzz"), *metrics)

    code, out, _ = invoke("compare", base, candidate, "--json")
    (result,) = json.loads(out)["candidates"]
    assert code == 0 and result["redefined"] == {"cites": CITES_NOTE}
    assert CITES_NOTE in result["notes"]
    # Not a verdict: 'cites' compares by its numbers (7 of 8 rows lost "the"), as it did
    # before.
    verdicts = {m["metric"]: m["verdict"] for m in result["metrics"]}
    assert verdicts["cites"] == "worse"
    code, out, _ = invoke("compare", base, candidate)
    assert code == 0 and f"note: {CITES_NOTE}" in " ".join(out.split())
    code, out, _ = invoke("compare", base, candidate, "--markdown")
    assert code == 0 and f"> **Note:** {CITES_NOTE}" in out
    assert out.count(DIFFERENTLY) == 1  # exact_match, a built-in, is the same in both
    report = tmp_path / "report.html"
    assert invoke("report", base, candidate, "-o", str(report))[0] == 0
    assert f"<li>{CITES_NOTE.replace(chr(39), '&#39;')}</li>" in report.read_text("utf-8")

    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    gate = ("--baseline", base, "--max-drop", "cites=0.02", "--min", "exact_match=0")
    code, out, err = invoke("check", candidate, *gate, "--junit", str(junit), env=github)
    assert code == 1 and err.endswith("error: 1 of 2 gates failed: cites max_drop 0.02\n")
    assert f"note: {CITES_NOTE}" in " ".join(out.split())
    assert f"> **Note:** {CITES_NOTE}" in summary.read_text(encoding="utf-8")
    assert (
        "::warning title=harness check%3A cites is defined differently::" + CITES_NOTE
    ) in err.splitlines()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    notes = [p.get("value") for p in suite.iter("property") if p.get("name") == "note"]
    assert notes == [CITES_NOTE]
    failure = suite.find("testcase[@name='cites max_drop 0.02']/failure")
    assert failure is not None and (failure.text or "").endswith(f"\nnote: {CITES_NOTE}")
    out_text = suite.find("testcase[@name='exact_match min 0']/system-out")
    assert out_text is not None and DIFFERENTLY not in (out_text.text or "")
    code, out, _ = invoke("check", candidate, *gate, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["comparison"]["candidates"][0]["redefined"] == {"cites": CITES_NOTE}
    # The gate's own row says it too, beside its verdict (it said only the drop, with the
    # note further down, under the comparison): terminal, Markdown and the report.
    summary_md = summary.read_text(encoding="utf-8")
    [gate_row] = [
        line for line in summary_md.splitlines() if line.startswith("| ❌ cites max_drop")
    ]
    assert f"; note: {CITES_NOTE}" in gate_row
    [exact_row] = [line for line in summary_md.splitlines() if "exact_match min" in line[:20]]
    assert DIFFERENTLY not in exact_row
    checked = tmp_path / "check.html"
    code, out, _ = invoke("check", candidate, *gate, "--report", str(checked))
    assert code == 1 and "; note: metric" in out  # in the gate's "why" cell (wrapped)
    page = checked.read_text("utf-8")
    row = page[page.index('<tr data-gate="cites max_drop 0.02">') :].split("</tr>")[0]
    assert f"; note: {CITES_NOTE.replace(chr(39), '&#39;')}" in row


def test_an_edited_judge_table_is_noted(qa: None, home: Path, tmp_path: Path) -> None:
    judge = ("--judge", "polite")
    base = run(home, POLITE.format(prompt="Is this polite"), *judge)
    candidate = run(home, POLITE.format(prompt="Is this answer polite"), *judge)
    code, out, _ = invoke("compare", base, candidate, "--json")
    (result,) = json.loads(out)["candidates"]
    note = result["redefined"]["polite"]
    assert code == 0 and list(result["redefined"]) == ["polite"]
    assert note.startswith(
        "judge 'polite' is defined differently in the two runs (its definition changed: version "
    )
    assert note.endswith("in the candidate): the comparison is of two different checks")
    assert note in result["notes"]
    code, out, _ = invoke("compare", base, candidate, "--markdown")
    assert f"> **Note:** {note}" in out
    # The judge answers yes either way: the gate passes, as it did; the note says why
    # that pass is of two different judges.
    junit = tmp_path / "junit.xml"
    code, out, err = invoke(
        "check", candidate, "--baseline", base, "--max-drop", "polite=0.5", "--junit", str(junit)
    )
    assert code == 0, err
    assert f"note: {note}" in " ".join(out.split())
    case = ET.parse(junit).getroot().find("testsuite/testcase/system-out")
    assert case is not None and (case.text or "").endswith(f"\nnote: {note}")


def test_a_changed_spec_is_quoted_as_it_was_typed(qa: None, home: Path) -> None:
    """The note quotes each run's --metric spec as the user typed it: a regex's
    backslashes once, not doubled as Python's repr writes them."""
    base = run(home, "", "--metric", r"cites=regex:\[\d+\]")
    candidate = run(home, "", "--metric", r"cites=regex:\d+")
    code, out, _ = invoke("compare", base, candidate, "--json")
    (result,) = json.loads(out)["candidates"]
    assert code == 0 and result["redefined"] == {
        "cites": "metric 'cites' is defined differently in the two runs (base: spec "
        r"'cites=regex:\[\d+\]'; candidate: spec 'cites=regex:\d+'): the comparison is of "
        "two different checks"
    }


def test_nothing_changed_no_note(qa: None, home: Path, tmp_path: Path) -> None:
    options = ("--metric", "cites", "--metric", "x=regex:a", "--judge", "polite")
    toml = POLITE.format(prompt="Is this polite") + CITES.format(value="the")
    base, candidate = run(home, toml, *options), run(home, toml, *options)
    code, out, _ = invoke("compare", base, candidate, "--json")
    assert code == 0 and json.loads(out)["candidates"][0]["redefined"] == {}
    for args in ((), ("--markdown",)):
        code, out, _ = invoke("compare", base, candidate, *args)
        assert code == 0 and DIFFERENTLY not in out
    junit = tmp_path / "junit.xml"
    env = {"GITHUB_ACTIONS": "true"}
    code, out, err = invoke("check", candidate, "--baseline", base, "--junit", str(junit), env=env)
    assert DIFFERENTLY not in out + err + junit.read_text(encoding="utf-8")


def test_a_run_file_exported_before_metric_versions_gets_no_note(qa: None, home: Path) -> None:
    """A run stored before runs kept a metric's version: nothing to tell, so no note, even
    though its [metrics.cites] (contains "the") is not the candidate's."""
    old = str(GOLDEN / "run-before-metric-versions.jsonl")
    candidate = run(home, CITES.format(value="zzz"), "--metric", "cites", "--metric", "exact_match")
    code, out, _ = invoke("compare", old, candidate, "--json")
    (result,) = json.loads(out)["candidates"]
    assert code == 0 and result["redefined"] == {}
    assert not any(DIFFERENTLY in n for n in result["notes"])
    assert {m["metric"] for m in result["metrics"]} == {"cites", "exact_match"}
    code, out, err = invoke("check", candidate, "--baseline", old, "--max-drop", "cites=0.02")
    assert code == 3 and DIFFERENTLY not in out + err  # 3 rows lost "the": cannot tell
