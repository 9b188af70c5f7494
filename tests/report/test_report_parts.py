"""The report's parts on their own: plots (checked against numpy), prompts (against
``str.format``), the packed rows, and the calibrations the store keeps for it."""

from __future__ import annotations

import base64
import gzip
import json
import string
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import numpy as np
import pytest

from harness.judges.calibration import Calibration
from harness.prompts import render
from harness.report.rows import pack, prompt_parts
from harness.report.svg import ForestRow, Series, bars, forest, histogram, matrix
from harness.store.datasets import Example


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed, or this raises


def titles(root: ET.Element, path: str) -> list[str]:
    return [t.text or "" for t in root.iterfind(f"{path}/title")]


def test_a_histogram_counts_what_numpy_counts() -> None:
    rng = np.random.default_rng(7)
    values = rng.beta(2, 5, size=500)
    svg = histogram([Series("run", values.tolist(), 0.3, 0.28, 0.32)], "token_f1")
    root = parse(svg)
    edges = np.histogram_bin_edges(values, bins="auto")
    counts, _ = np.histogram(values, bins=edges)
    shown = [int(t.split(": ")[1].split(" ")[0]) for t in titles(root, ".//rect")]
    assert shown == [int(c) for c in counts if c]  # empty bins draw nothing
    assert len(edges) - 1 <= 30 and sum(shown) == 500
    assert titles(root, ".//g") == ["run: mean 0.3, 95% CI [+0.28, +0.32]"]
    assert svg == histogram([Series("run", values.tolist(), 0.3, 0.28, 0.32)], "token_f1")


def test_a_histogram_of_many_bins_is_capped_and_one_value_gets_one_bin() -> None:
    values = np.concatenate([np.zeros(10_000), np.linspace(0, 1e6, 10_000)])
    root = parse(histogram([Series("run", values.tolist())], "latency"))
    assert 0 < len(root.findall(".//rect")) <= 30
    single = parse(histogram([Series("run", [4.0] * 12)], "word_count"))
    assert titles(single, ".//rect") == ["run: 12 rows in [3.8, 4.2]"]
    one = parse(histogram([Series("run", [4.0])], "word_count"))  # said "1 rows in"
    assert titles(one, ".//rect") == ["run: 1 row in [3.8, 4.2]"]
    empty = parse(histogram([Series("run", [])], "nothing"))
    assert "no scores" in ET.tostring(empty, encoding="unicode")


def test_bars_group_series_by_category() -> None:
    root = parse(bars(["no", "yes"], [("base", [3, 7]), ("candidate", [6, 4])], "correctness"))
    assert titles(root, ".//rect") == [
        "base: no: 3 rows (30%)", "candidate: no: 6 rows (60%)",
        "base: yes: 7 rows (70%)", "candidate: yes: 4 rows (40%)",
    ]  # fmt: skip
    one = parse(bars(["no"], [("base", [1])], "correctness", unit="answers"))  # "1 answers"
    assert titles(one, ".//rect") == ["base: no: 1 answer (100%)"]
    assert [r.get("class") for r in root.findall(".//rect")] == ["bar s0", "bar s1"] * 2


def test_the_forest_plot_draws_each_change_its_interval_and_verdict() -> None:
    rows = [
        ForestRow("exact_match", 0.05, 0.02, 0.08, 0.02, 1, "better"),
        ForestRow("latency", 0.5, 0.05, 0.9, 0.01, -1, "worse"),  # 5 to 90 margins: clipped
        ForestRow("judge", float("nan"), float("nan"), float("nan"), 0.02, 1, "inconclusive"),
    ]
    root = parse(forest(rows, "changes"))
    groups = root.findall(".//g")
    assert [(g.get("data-metric"), g.get("class")) for g in groups] == [
        ("exact_match", "frow v-better"), ("latency", "frow v-worse"),
        ("judge", "frow v-unsure"),
    ]  # fmt: skip
    assert [len(g.findall("circle")) for g in groups] == [1, 1, 0]  # no estimate, no point
    assert [len(g.findall("path")) for g in groups] == [0, 1, 0]  # the clipped end
    assert titles(root, ".//g")[0] == (
        "exact_match: change +0.05 [+0.02, +0.08], margin ±0.02: better"
    )
    # Lower is better for latency: its worse change is drawn on the left of zero.
    center = float(root.find(".//line[@class='zero']").get("x1"))
    assert float(groups[1].find("circle").get("cx")) < center
    assert float(groups[0].find("circle").get("cx")) > center


def test_the_confusion_matrix_shows_every_cell() -> None:
    confusion = {"yes": {"yes": 12, "no": 3}, "no": {"yes": 5, "no": 20}}
    root = parse(matrix(["yes", "no"], confusion, "calibration"))
    cells = root.findall(".//rect")
    assert titles(root, ".//rect") == [
        "human yes, judge yes: 12 rows", "human yes, judge no: 3 rows",
        "human no, judge yes: 5 rows", "human no, judge no: 20 rows",
    ]  # fmt: skip
    assert [c.get("class") for c in cells] == ["cell diag", "cell", "cell", "cell diag"]
    assert cells[3].get("fill-opacity") == "1.00" and cells[1].get("fill-opacity") == "0.15"


def test_plot_text_is_escaped() -> None:
    svg = bars(['<b>"x"&'], [("run </script>", [1])], "a < b")
    root = parse(svg)
    assert "<b>" not in svg and "</script>" not in svg
    assert titles(root, ".//rect") == ['run </script>: <b>"x"&: 1 row (100%)']


TEMPLATES = [
    "Answer the question.\n\nQuestion: {input}\nAnswer:",
    "{{literal}} {input} {context} {id}",
    "{expected} | {topic!r} | {score:>6.2f} | {input!s:.10} | {{}}",
    "no fields at all",
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_prompt_rebuilt_from_its_parts_is_what_str_format_renders(template: str) -> None:
    examples = [
        Example(
            "q1",
            "What is {x}?",
            ("four",),
            "ctx {with} braces",
            {"topic": "math", "score": 3.14159},
        ),  # fmt: skip
        Example("q2", "Two answers", ("a", "b"), None, {"topic": None, "score": 2}),
    ]
    parts, fields = prompt_parts(template)
    for example in examples:
        row = example.as_row()
        rendered = [render(one, row) for one in fields]
        # What the page's script does: literal text, the row's column, or a rendered field.
        page = "".join(
            p if isinstance(p, str)
            else ("" if row[p["c"]] is None else str(row[p["c"]])) if "c" in p
            else rendered[p["f"]]
            for p in parts
        )  # fmt: skip
        assert page == render(template, row)
    # Plain {input} and {context} are never stored per row: they point at the row.
    plain = [p["c"] for p in parts if isinstance(p, dict) and "c" in p]
    assert plain == [f for _, f, spec, conv in string.Formatter().parse(template)
                     if f in ("input", "context", "id") and not spec and not conv]  # fmt: skip


def test_packed_rows_unpack_to_the_same_data_and_the_same_text_every_time() -> None:
    payload = {"rows": [{"id": "1", "text": "</script><!-- é \u2028", "v": [0.1, None]}]}
    packed = pack(payload)
    assert set(packed) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert json.loads(gzip.decompress(base64.b64decode(packed))) == payload
    assert pack(payload) == packed


def test_packed_rows_are_gzip_at_level_2_the_same_stream_as_gzip_compress() -> None:
    """The rows are deflated at level 2 (a 10,000-row run's 21.7 MB of JSON in 0.21 s of
    CPU, where level 4 took 0.32 s, on the path to a run's exit; issue 14): the stream
    Python's own ``gzip.compress(..., compresslevel=2, mtime=0)`` writes, no name, no time."""
    import orjson

    words = "the lace plant forms perforations in its leaves through programmed cell death"
    payload = {
        "rows": [
            {"id": str(i), "context": " ".join(words.split()[i % 7 :] * 3), "v": [i / 7, None]}
            for i in range(400)
        ]
    }
    packed = base64.b64decode(pack(payload))
    assert packed == gzip.compress(orjson.dumps(payload), compresslevel=2, mtime=0)


def _calibration(judge: str, version: str, model: str, yes_yes: int) -> Calibration:
    """A calibration of ``judge``, told apart from the others by its yes/yes count."""
    return Calibration(
        judge=judge, judge_version=version, judge_model=model, dataset="qa@v1",
        label_column="final_decision", labels=["yes", "no"], rows=10, compared=10,
        excluded=0, excluded_values={}, not_judged=0, errors=[], accuracy=0.5, kappa=0.1,
        weighted_kappa=None, confusion={"yes": {"yes": yes_yes, "no": 1},
                                        "no": {"yes": 2, "no": 3}}, disagreements=[],
    )  # fmt: skip


def test_calibrations_are_kept_per_judge_version_and_model(home: Path) -> None:
    from harness.store.calibrations import judge_calibrations, save_calibration

    db = home / "harness.duckdb"
    save_calibration(db, _calibration("correctness", "v1", "openai:/m", 4), run_id="run1")
    save_calibration(db, _calibration("correctness", "v1", "openai:/m", 5))  # newer
    save_calibration(db, _calibration("correctness", "v2", "openai:/m", 6))
    save_calibration(db, _calibration("correctness", "v1", "openai:/other", 7))
    found = judge_calibrations(db, [("correctness", "v1")], "openai:/m")
    assert [c.confusion["yes"]["yes"] for c in found] == [5] and found[0].run_id is None
    assert judge_calibrations(db, [("correctness", "v3")], "openai:/m") == []
    assert judge_calibrations(db, [("faithfulness", "v1")], "openai:/m") == []
    assert judge_calibrations(db, [("correctness", "v1")], None) == []
    other = judge_calibrations(db, [("correctness", None)], "openai:/other")
    assert [c.confusion["yes"]["yes"] for c in other] == [7]


def test_a_report_finds_each_judges_calibration_by_its_own_model_in_the_runs_order(
    home: Path,
) -> None:
    from types import SimpleNamespace

    from harness.report.page import find_calibrations
    from harness.report.rows import ReportRun
    from harness.store.calibrations import save_calibration

    db = home / "harness.duckdb"
    save_calibration(db, _calibration("faithfulness", "v1", "openai:/m", 1))
    save_calibration(db, _calibration("correctness", "v1", "openai:/m", 2))
    save_calibration(db, _calibration("correctness", "v1", "openai:/big", 3))  # its own model
    save_calibration(db, _calibration("relevance", "v1", "openai:/big", 4))  # not the run's
    config = {
        "judges": ["correctness", "relevance", "faithfulness", "style"],
        "judge_versions": {"correctness": "v1", "relevance": "v1", "faithfulness": "v1"},
        "judge_model": "openai:/m",
        "judge_models": {"correctness": "openai:/big"},
    }
    record = SimpleNamespace(info=SimpleNamespace(config=config))
    run = ReportRun("run", record, None)  # type: ignore[arg-type]  # the config only
    found = find_calibrations(db, run)
    assert [(c.judge, c.judge_model, c.confusion["yes"]["yes"]) for c in found] == [
        ("correctness", "openai:/big", 3),
        ("faithfulness", "openai:/m", 1),
    ]


def test_a_metric_points_the_way_its_run_stored_not_the_way_its_name_says() -> None:
    import numpy as np

    from harness.metrics import metric_direction
    from harness.report.rows import ReportRun
    from harness.report.scores import metric_views
    from harness.store.scores import RunScores

    columns = {"exact_match": np.array([1.0, 0.0]), "python:app:cost": np.array([0.2, 0.4])}
    names = list(columns)
    stored = {"exact_match": -1, "python:app:cost": -1}  # what the runs' configs hold

    def run(label: str, directions: dict[str, int]) -> ReportRun:
        scores = RunScores(None, ["a", "b"], columns, frozenset(), names, directions)
        return ReportRun(label, None, scores)  # type: ignore[arg-type]  # scores only

    assert metric_direction("exact_match") == 1  # the registry's word, which must lose
    shown = {v.metric: v.direction for v in metric_views([run("base", stored)], names)}
    assert shown == stored
    # A run from before directions were stored falls back to the registry: a later run's
    # stored word wins over it.
    shown = {
        v.metric: v.direction for v in metric_views([run("old", {}), run("new", stored)], names)
    }
    assert shown == stored
    assert metric_views([run("old", {})], ["exact_match"])[0].direction == 1


def test_an_empty_stored_context_shows_the_prompt_without_context(home: Path) -> None:
    """An eval set imported before empty cells read as absent holds '' as its context: the
    run used the prompt without a context block (a context counts when non-empty), and
    the report showed the one with it (it asked whether any context was non-null)."""
    import duckdb
    import pandas as pd
    from click.testing import CliRunner

    import harness
    from harness.cli import cli
    from harness.prompts import DEFAULT_PROMPT, DEFAULT_PROMPT_NO_CONTEXT

    data = pd.DataFrame({"question": ["a", "bb"], "answer": ["a", "b"]})
    result = harness.evaluate(lambda row: row["input"], data, metrics=["exact_match"],
                              log_to_mlflow=False)  # fmt: skip
    with duckdb.connect(str(home / "harness.duckdb")) as con:
        con.execute("UPDATE examples SET context = ''")
    done = CliRunner().invoke(cli, ["report", result.run_id, "-o", "-"])
    assert done.exit_code == 0, done.stderr
    assert f"<pre>{escape(DEFAULT_PROMPT_NO_CONTEXT)}</pre>" in done.stdout
    assert escape(DEFAULT_PROMPT) not in done.stdout
