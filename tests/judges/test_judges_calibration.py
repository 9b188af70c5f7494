"""Calibration of a judge against human labels: kappa, accuracy, confusion, disagreements."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import COMMANDS, cli
from harness.errors import DataError, MetricError
from harness.judges import calibrate
from harness.judges.calibration import cohen_kappa, human_label
from harness.judges.output import OutputSpec
from harness.runner.config import RunConfig
from harness.runner.run import run_eval

JUDGES_TOML = """
[judges.supported]
prompt = "Question: {input}\\nOutput: {output}"
output = "yes/no"

[judges.quality]
prompt = "Question: {input}\\nOutput: {output}"
output = "1-5"
"""

# id, output, human label. The rule judge says yes exactly when the output says "supported".
LABELLED = [
    ("1", "supported by the data", "yes"),  # agree
    ("2", "supported", "yes"),  # agree
    ("3", "supported", "no"),  # judge yes, human no
    ("4", "not shown", "no"),  # agree
    ("5", "not shown", "no"),  # agree
    ("6", "not shown", "yes"),  # judge no, human yes
    ("7", "supported", "maybe"),  # no judge answer: excluded unless mapped
    ("8", "anything", ""),  # no label: excluded
    ("9", "supported", "Yes"),  # agree
    ("10", "nothing", "NO"),  # agree
]


@pytest.fixture
def labelled(home: Path) -> str:
    from harness.data import import_dataframe

    (home / "harness.toml").write_text(JUDGES_TOML, encoding="utf-8")
    frame = pd.DataFrame(LABELLED, columns=["id", "output", "human"])
    frame["input"] = "Is it supported?"
    frame["grade"] = [1, 2, 3, 4, 5, 4, 3, 2, 1, 4]
    return import_dataframe(frame, name="labelled", home=home).dataset.ref


def test_kappa_textbook_example() -> None:
    # Wikipedia's Cohen's kappa example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> 0.4.
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert cohen_kappa(pairs, ["yes", "no"]) == pytest.approx(0.4)
    assert cohen_kappa([("yes", "yes")] * 3, ["yes", "no"]) is None  # one category: undefined
    assert cohen_kappa([], ["yes", "no"]) is None


def test_kappa_matches_scikit_learn() -> None:
    from sklearn import metrics  # the reference (a dev dependency)

    rng = random.Random(7)
    labels = ["1", "2", "3", "4", "5"]
    for _ in range(20):
        human = [rng.choice(labels) for _ in range(40)]
        judge = [h if rng.random() < 0.6 else rng.choice(labels) for h in human]
        pairs = list(zip(human, judge, strict=True))
        assert cohen_kappa(pairs, labels) == pytest.approx(
            metrics.cohen_kappa_score(human, judge, labels=labels)
        )
        assert cohen_kappa(pairs, labels, quadratic=True) == pytest.approx(
            metrics.cohen_kappa_score(human, judge, labels=labels, weights="quadratic")
        )


@pytest.mark.parametrize(
    ("value", "spec", "label_map", "expected"),
    [
        ("Yes", "yes/no", {}, "yes"),
        ("no", "yes/no", {}, "no"),
        (True, "yes/no", {}, "yes"),
        ("1", "yes/no", {}, "yes"),
        (0, "yes/no", {}, "no"),
        ("maybe", "yes/no", {}, None),
        ("Maybe", "yes/no", {"maybe": "no"}, "no"),
        (None, "yes/no", {}, None),
        (4, "1-5", {}, "4"),
        ("5", "1-5", {}, "5"),
        (7, "1-5", {}, None),
        ("good", "1-5", {}, None),
        ("good", "1-5", {"good": "4"}, "4"),
    ],
)
def test_human_labels_map_to_judge_answers(
    value: object, spec: str, label_map: dict[str, str], expected: str | None
) -> None:
    assert human_label(value, OutputSpec.parse(spec), label_map) == expected


def test_calibrate_on_a_small_labelled_set(labelled: str, home: Path) -> None:
    result = calibrate(
        "supported",
        data="labelled",
        label="human",
        judge_model="python:fake_judges:yes_if_supported",
        home=home,
    )
    assert (result.rows, result.compared, result.excluded) == (10, 8, 2)
    assert result.excluded_values == {"maybe": 1, "": 1}
    assert result.accuracy == 0.75
    assert result.kappa == pytest.approx(0.5)  # p_o 0.75, p_e 0.5
    assert result.weighted_kappa is None  # yes/no: no ordinal weights
    assert result.confusion == {"yes": {"yes": 3, "no": 1}, "no": {"yes": 1, "no": 3}}
    assert [(d["id"], d["human"], d["judge"]) for d in result.disagreements] == [
        ("3", "no", "yes"),
        ("6", "yes", "no"),
    ]
    assert result.disagreements[0]["rationale"] == "rule says yes"
    assert result.errors == [] and result.not_judged == 0
    assert result.calls["judge"]["local_calls"] == 8

    mapped = calibrate(
        "supported",
        data="labelled",
        label="human",
        label_map={"maybe": "no"},
        judge_model="python:fake_judges:yes_if_supported",
        home=home,
    )
    assert (mapped.compared, mapped.excluded, mapped.confusion["no"]["yes"]) == (9, 1, 2)


def test_calibrate_a_scale_judge(labelled: str, home: Path) -> None:
    result = calibrate(
        "quality", data="labelled", label="grade", judge_model="python:fake_judges:valid", home=home
    )  # always 4
    assert result.compared == 10 and result.accuracy == 0.3
    assert result.kappa == pytest.approx(0.0) and result.weighted_kappa == pytest.approx(0.0)
    assert result.labels == ["1", "2", "3", "4", "5"]
    assert sum(row["4"] for row in result.confusion.values()) == 10


def test_calibrate_errors_and_failed_answers(labelled: str, home: Path) -> None:
    with pytest.raises(DataError, match="no column 'verdict'; its other columns: grade, human"):
        calibrate(
            "supported",
            data="labelled",
            label="verdict",
            judge_model="python:fake_judges:valid",
            home=home,
        )
    from harness.config import resolve_home
    from harness.store.calibrations import judge_calibrations

    # A 1-5 judge against yes/no labels measures nothing: refused before any judge call,
    # and nothing stored that a report would show in place of a real calibration.
    with pytest.raises(DataError) as caught:
        calibrate(
            "quality", data="labelled", label="human", judge_model="python:fake_judges:broken",
            home=home,
        )  # fmt: skip
    assert str(caught.value) == (
        "no label in column 'human' is an answer of judge 'quality' (1-5): 'yes' x3, 'no' x3, "
        "'maybe' x1, '' x1, 'Yes' x1 and 1 other label(s); map them with --label-map "
        "LABEL=ANSWER"
    )
    db = resolve_home(home).db_path
    assert judge_calibrations(db, [("quality", None)], "python:fake_judges:broken") == []
    failed = calibrate(
        "supported",
        data="labelled",
        label="human",
        judge_model="python:fake_judges:garbage",
        home=home,
    )
    assert failed.compared == 0 and failed.accuracy is None and len(failed.errors) == 8
    assert "no usable verdict" in failed.errors[0]["error"]


def test_calibrate_a_builtin_judge_on_a_runs_outputs(
    qa: str, home: Path, qa_rows: list[dict[str, object]]
) -> None:
    run = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            metrics=["word_count"],
            mlflow=False,
        ),
        home=home,
    )
    with pytest.raises(MetricError, match="--output COLUMN"):
        calibrate(
            "correctness",
            data="qa",
            label="final_decision",
            judge_model="python:fake_judges:valid",
            home=home,
        )
    result = calibrate(
        "correctness",
        data="qa",
        label="final_decision",
        run=run.run_id,
        judge_model="python:fake_judges:valid",
        home=home,
    )  # always "yes"
    decisions = [str(r["final_decision"]) for r in qa_rows]
    yes, no = decisions.count("yes"), decisions.count("no")
    assert result.excluded == decisions.count("maybe") and result.compared == yes + no
    assert result.accuracy == pytest.approx(yes / (yes + no))
    assert result.confusion == {"yes": {"yes": yes, "no": 0}, "no": {"yes": no, "no": 0}}
    assert result.kappa == pytest.approx(0.0)
    # `--run` takes a run name (or a tag) as `harness runs show` does; it said "no run".
    by_name = run_eval(
        RunConfig(data="qa", model="python:harness_test_models:answer_expected",
                  metrics=["word_count"], mlflow=False, run_name="expected"),
        home=home,
    )  # fmt: skip
    args = ["judges", "calibrate", "--data", "qa", "--judge", "correctness", "--label",
            "final_decision", "--judge-model", "python:fake_judges:valid", "--json"]  # fmt: skip
    named = CliRunner().invoke(cli, [*args, "--run", "expected"])
    assert named.exit_code == 0, named.stderr
    assert json.loads(named.stdout)["compared"] == yes + no
    assert CliRunner().invoke(cli, ["runs", "tag", by_name.run_id, "pinned"]).exit_code == 0
    tagged = CliRunner().invoke(cli, [*args, "--run", "pinned"])
    assert tagged.exit_code == 0, tagged.stderr
    missing = CliRunner().invoke(cli, [*args, "--run", "nope"])
    assert missing.exit_code == 2 and "no run, tag or run name 'nope'" in missing.stderr


def test_calibrate_cli(labelled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "judges", "harness.cli.judges:judges")
    args = [
        "judges",
        "calibrate",
        "--data",
        "labelled",
        "--judge",
        "supported",
        "--label",
        "human",
        "--judge-model",
        "python:fake_judges:yes_if_supported",
    ]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["accuracy"], doc["compared"], doc["excluded"]) == (0.75, 8, 2)
    assert doc["kappa"] == pytest.approx(0.5)
    text = CliRunner().invoke(cli, [*args, "--label-map", "maybe=no"])
    assert text.exit_code == 0, text.stderr
    assert "compared 9; excluded 1" in text.stdout and "Cohen's kappa" in text.stdout
    assert "confusion matrix" in text.stdout and "rule says yes" in text.stdout
    typo = CliRunner().invoke(cli, [*args, "--label-map", "maybe=noo"])  # not excluded quietly
    assert typo.exit_code == 2 and typo.stdout == ""
    assert typo.stderr == (
        "error: --label-map maybe=noo: 'noo' is not an answer of judge 'supported' (yes/no); "
        "leave it empty to exclude those rows\n"
    )
    dropped = CliRunner().invoke(cli, [*args, "--label-map", "maybe=", "--json"])
    assert dropped.exit_code == 0 and json.loads(dropped.stdout)["excluded"] == 2
    bad = CliRunner().invoke(cli, [*args, "--label-map", "maybe"])
    assert bad.exit_code == 2 and "--label-map expects LABEL=ANSWER" in bad.stderr
    failing = [*args[:-1], "python:fake_judges:broken"]
    broken = CliRunner().invoke(cli, failing)
    assert broken.exit_code == 1 and "judge errors 8" in broken.stdout  # 2 labels excluded
    assert "accuracy n/a  Cohen's kappa n/a\n" in broken.stdout  # no row compared
    assert broken.stderr.startswith("error: 8 of 8 judge answers failed (8 x judge call")
    assert broken.stderr.endswith("; the figures leave those rows out\n")
