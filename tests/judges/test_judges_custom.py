"""Custom judges from harness.toml, a --judges file and Python; resolving judge names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from judge_helpers import judge_bodies

from harness.cli import COMMANDS, cli
from harness.config import resolve_home
from harness.errors import MetricError
from harness.judges import available_judges, make_judge, register_judge, resolve_judges
from harness.judges.custom import _registry
from harness.metrics import ScoringRow
from harness.runner.config import RunConfig
from harness.runner.run import run_eval
from harness.store.runs import load_scores
from harness.testing import FakeLLMServer

TOML = '''
[judges.cites_study]
prompt = """Question: {input}
Reference: {expected}
Answer: {output}
Does the answer cite the study's result?"""
output = "yes/no"
definition = "Decide whether the answer reports what the study found."
description = "yes/no: cites the study"

[judges.detail]
prompt = "Context: {context}\\nAnswer: {output}"
output = "0-10"
rubric = {"10" = "every number from the context", "0" = "no detail"}

[judges.tone]
prompt = "Answer: {output}"
output = ["rude", "neutral", "warm"]
[[judges.tone.examples]]
output = "Happy to help!"
answer = "warm"
rationale = "friendly"
'''


@pytest.fixture(autouse=True)
def no_registered_judges() -> Iterator[None]:
    _registry.clear()
    yield
    _registry.clear()


@pytest.fixture
def judges_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "judges", "harness.cli.judges:judges")


def test_toml_judges_load_with_their_output_types(home: Path) -> None:
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    found = resolve_judges(
        ["cites_study", "detail", "tone"], home=resolve_home(home), judges_file=None, guidelines=[]
    )
    cites, detail, tone = found
    assert cites.output.describe() == "yes/no" and cites.origin == "custom"
    assert cites.needs == {"expected"} and detail.needs == {"context"} and not tone.needs
    assert (detail.output.low, detail.output.high) == (0, 10)
    assert (
        "Rubric:\n10: every number from the context\n0: no detail"
        in detail.messages(_row())[1]["content"]
    )
    assert tone.output.labels == ("rude", "neutral", "warm")
    user = tone.messages(_row())[1]["content"]
    assert (
        'Example 1:\nOutput: Happy to help!\nReply: {"rationale": "friendly", "label": "warm"}'
        in user
    )


def _row() -> object:
    from harness.metrics import ScoringRow

    return ScoringRow("q", "a", ("e",), "c", None)


def test_a_judges_file_adds_to_and_overrides_harness_toml(home: Path, tmp_path: Path) -> None:
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    extra = tmp_path / "judges.toml"
    extra.write_text(
        '[judges.tone]\nprompt = "Reply: {output}"\noutput = "1-3"\n'
        '[judges.short]\nprompt = "{output}"\n',
        encoding="utf-8",
    )
    found = {
        j.name: j
        for j in resolve_judges(
            ["tone", "short", "detail"],
            home=resolve_home(home),
            judges_file=str(extra),
            guidelines=[],
        )
    }
    assert found["tone"].output.describe() == "1-3"  # the file wins
    assert found["short"].output.describe() == "yes/no"  # the default output type
    assert found["detail"].output.describe() == "0-10"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[judges.j]\noutput = "yes/no"\n', "[judges.j] needs a prompt"),
        ("[judges.j]\nprompt = 5\n", "[judges.j]: judge 'j': prompt must be text, not 5"),
        ('[judges.j]\nprompt = "{output}"\nscale = "1-5"\n', "unknown key scale"),
        # `harness judges list` showed it as ['a'].
        (
            '[judges.j]\nprompt = "{output}"\ndescription = ["a"]\n',
            "[judges.j]: judge 'j': description must be text",
        ),
        ('[judges.j]\nprompt = "{output}"\noutput = "5-1"\n', "must go from low to high"),
        ('[judges.j]\nprompt = "{output}"\noutput = ["only"]\n', "at least two"),
        ('[judges.j]\nprompt = "{answer}"\n', "unknown placeholder {answer};"),
        # Said "unknown placeholder(s)" where settings and keys agree with their count.
        ('[judges.j]\nprompt = "{answer} {reply}"\n', "unknown placeholders {answer}, {reply};"),
        # It said "its prompt uses no placeholder", or nothing beside a closed one.
        (
            '[judges.j]\nprompt = "Answer: {output"\n',
            "[judges.j]: judge 'j': prompt template is not valid: {output has no closing '}'",
        ),
        ('[judges.j]\nprompt = "Q: {input}\\nA: {output\\nOk?"\n', "{output has no closing"),
        # MLflow's and Jinja's form, spaces, an attribute: the judge never saw the output.
        (
            '[judges.j]\nprompt = "Q: {input} A: {{ outputs }}"\n',
            "judge 'j': unknown placeholder {{ outputs }}; a judge prompt can use {input}, ",
        ),
        ('[judges.j]\nprompt = "Q: {input} A: { output }"\n', "placeholder { output };"),
        ('[judges.j]\nprompt = "A: {output.text}"\n', "unknown placeholder {output.text};"),
        ('[judges.safety]\nprompt = "{output}"\n', "'safety' is a built-in judge"),
        ('[judges.token_f1]\nprompt = "{output}"\n', "'token_f1' is a metric"),
        (
            '[judges.j]\nprompt = "{output}"\n'
            '[[judges.j.examples]]\noutput = "x"\nanswer = "perhaps"\n',
            "example 1: answer 'perhaps' is not a valid yes/no answer",
        ),
        ("judges = 3\n", "must be a table of [judges.NAME] tables"),
        # A TypeError traceback (int is not iterable); a table was read as its keys.
        ('[judges.j]\nprompt = "{output}"\nexamples = 5\n',
         "judge 'j': examples must be a list of examples (tables of fields), not 5"),
        ('[judges.j]\nprompt = "{output}"\nexamples = { output = "x" }\n',
         "judge 'j': examples must be a list of examples (tables of fields), not {'output': 'x'}"),
    ],
)  # fmt: skip
def test_bad_custom_judges_are_one_line_errors(home: Path, toml: str, message: str) -> None:
    (home / "harness.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(MetricError) as caught:
        resolve_judges(["j"], home=resolve_home(home), judges_file=None, guidelines=[])
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        (
            "Q: {input}\\nA: {output}\\nReply as {context_used: yes or no}.",
            "Q: q\nA: the answer\nReply as {context_used: yes or no}.",
        ),
        (
            "A: {output}\\nReply with JSON such as {input_ok: true, output_ok: false}",
            "A: the answer\nReply with JSON such as {input_ok: true, output_ok: false}",
        ),
    ],
)
def test_a_field_name_inside_closed_json_braces_is_kept_as_written(
    home: Path, prompt: str, sent: str
) -> None:
    # Refused with "{context has no closing '}'" though the brace was closed.
    (home / "harness.toml").write_text(f'[judges.j]\nprompt = "{prompt}"\n', encoding="utf-8")
    (judge,) = resolve_judges(["j"], home=resolve_home(home), judges_file=None, guidelines=[])
    user = judge.messages(ScoringRow("q", "the answer", (), None, None))[1]["content"]
    assert user.endswith(sent)


def test_unknown_judge_lists_the_known_ones(home: Path) -> None:
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    with pytest.raises(MetricError) as caught:
        resolve_judges(["corectness"], home=resolve_home(home), judges_file=None, guidelines=[])
    message = str(caught.value)
    assert message.startswith("unknown judge 'corectness'; known: ")
    for name in ("answer_correctness", "cites_study", "correctness", "guidelines", "tone"):
        assert name in message


def test_judge_json_mode_can_be_turned_off(home: Path) -> None:
    (home / "harness.toml").write_text("judge_json_mode = false\n", encoding="utf-8")
    (judge,) = resolve_judges(["safety"], home=resolve_home(home), judges_file=None, guidelines=[])
    assert judge.json_mode is False


def test_yes_no_custom_judge_aggregates_as_a_rate(
    qa: str, home: Path, server: FakeLLMServer
) -> None:
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    result = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            judges=["cites_study", "detail"],
            judge_model="openai:/judge",
            metrics=["exact_match"],
            mlflow=False,
        ),
        home=home,
    )
    scores = load_scores(resolve_home(home).db_path, result.run_id)
    cites = scores[scores["metric"] == "cites_study"]
    assert set(cites["value"]) == {0.0, 1.0}
    assert result.metrics["cites_study"]["mean"] == pytest.approx(cites["value"].mean())
    assert 0 < result.flat_metrics()["cites_study/mean"] < 1
    detail = scores[scores["metric"] == "detail"]
    assert detail["value"].between(0, 10).all() and detail["value"].max() > 5  # the 0-10 scale
    bodies = judge_bodies(server)
    assert len(bodies) == 40
    cites_bodies = [b for b in bodies if "cite the study's result" in b["messages"][1]["content"]]
    assert len(cites_bodies) == 20
    assert all(
        b["messages"][1]["content"].startswith(
            "Decide whether the answer reports what the study found."
        )
        for b in cites_bodies
    )


def test_a_python_judge_is_usable_by_name(qa: str, home: Path) -> None:
    register_judge(
        make_judge(
            "short_answer", "Answer: {output}\nIs it under 50 words?", description="yes/no: short"
        )
    )
    with pytest.raises(MetricError, match="already registered"):
        register_judge(make_judge("short_answer", "{output}"))
    with pytest.raises(MetricError, match="built-in judge"):
        register_judge(make_judge("safety", "{output}"))
    result = run_eval(
        RunConfig(
            data="qa",
            model="python:harness_test_models:answer_expected",
            judges=["short_answer"],
            judge_model="python:fake_judges:valid",
            metrics=["exact_match"],
            mlflow=False,
        ),
        home=home,
    )
    assert result.metrics["short_answer"]["mean"] == 1.0
    assert result.calls["judge"]["local_calls"] == 20


def test_a_judge_needing_context_fails_before_the_run(home: Path, tmp_path: Path) -> None:
    from harness.data import import_dataframe

    import_dataframe(
        pd.DataFrame({"input": ["q1", "q2"], "expected": ["a", "b"]}), name="no_context", home=home
    )
    with pytest.raises(MetricError, match="judge 'faithfulness' needs contexts, and no_context@"):
        run_eval(
            RunConfig(
                data="no_context",
                model="echo",
                judges=["faithfulness"],
                judge_model="python:fake_judges:valid",
                mlflow=False,
            ),
            home=home,
        )
    from harness.store.runs import list_runs

    assert list_runs(resolve_home(home).db_path) == []


def test_judges_list_cli(home: Path, judges_cli: None) -> None:
    (home / "harness.toml").write_text(TOML, encoding="utf-8")
    result = CliRunner().invoke(cli, ["judges", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {*available_judges(home=resolve_home(home))}
    assert rows["answer_correctness"]["output"] == "1-5"
    assert rows["answer_correctness"]["fields"] == ["expected", "input", "output"]
    assert rows["guidelines"]["version"] is None  # no --guideline given
    assert rows["tone"] == {
        "name": "tone",
        "origin": "custom",
        "output": "labels: rude, neutral, warm",
        "fields": ["output"],
        "version": rows["tone"]["version"],
        "description": "",
    }
    text = CliRunner().invoke(cli, ["judges", "list", "--guideline", "Be brief."])
    assert text.exit_code == 0 and "cites_study" in text.stdout and "1-5" in text.stdout
    bad = CliRunner().invoke(cli, ["judges", "list", "--judges", str(home / "missing.toml")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: no such file")


def test_resume_refuses_a_judge_changed_since_the_run_started(
    qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows done keep the old judge's verdicts: grading the rest with a changed one would
    put two judges in one column, under the version the run stored."""
    polite = '[judges.polite]\nprompt = "Answer: {output}\\nIs it polite?"\noutput = "1-5"\n'
    settings = home / "harness.toml"
    settings.write_text(
        'judge_model = "python:harness_test_models:judge_fails_while_flagged"\n' + polite,
        encoding="utf-8",
    )
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    run = ("run", "--data", "qa", "--model", "python:harness_test_models:answer_expected")
    first = CliRunner().invoke(
        cli, [*run, "--judge", "polite", "--metric", "exact_match", "--no-mlflow", "--json"]
    )
    assert first.exit_code == 1, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    flag.unlink()

    settings.write_text(settings.read_text() + 'rubric = "5: says please"\n', encoding="utf-8")
    changed = CliRunner().invoke(cli, ["run", "--resume", run_id, "--no-mlflow"])
    assert changed.exit_code == 2
    assert changed.stderr.startswith(
        f"error: judge 'polite' changed since run {run_id} started (version "
    )
    assert changed.stderr.endswith(
        "resuming would grade its remaining rows with another judge; restore its definition "
        "to resume, or start a new run (the calls already made are cached)\n"
    )

    settings.write_text('judge_model = "python:harness_test_models:judge_yes"\n' + polite)
    moved = CliRunner().invoke(cli, ["run", "--resume", run_id, "--no-mlflow"])
    assert moved.exit_code == 2
    assert (
        "(it asked python:harness_test_models:judge_fails_while_flagged, now "
        "python:harness_test_models:judge_yes); resuming would grade its remaining rows "
        "with another judge; restore its model to resume" in moved.stderr
    )
    scores = load_scores(resolve_home(home).db_path, run_id)
    assert scores[scores["metric"] == "polite"]["value"].isna().all()  # untouched

    settings.write_text(
        'judge_model = "python:harness_test_models:judge_fails_while_flagged"\n' + polite
    )
    resumed = CliRunner().invoke(cli, ["run", "--resume", run_id, "--no-mlflow", "--json"])
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["metrics"]["polite"]["count"] == 20


def test_a_label_judge_shows_its_labels_in_the_table_and_feedback(
    home: Path, server: FakeLLMServer
) -> None:
    """The number a label stores (its place on the list) stays the value, so means work;
    the per-row table (evaluate's, runs show's, MLflow's artifact) gives the label beside it
    and MLflow's feedback holds the label, as MLflow's own categorical judges do."""
    from mlflow import MlflowClient

    import harness

    register_judge(make_judge("tone", "Answer: {output}", output=["rude", "neutral", "warm"]))
    answers = {"Go away now": "rude", "It is what it is": "neutral", "Happy to help you": "warm"}
    server.configure(
        replies={
            text: json.dumps({"rationale": f"sounds {label}", "label": label})
            for text, label in answers.items()
        }
    )
    data = pd.DataFrame(
        {"inputs": ["q1", "q2", "q3"], "outputs": list(answers), "targets": ["x", "y", "z"]}
    )
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    # Twice: the first run creates the MLflow store (MLflow's API logs it), the second is
    # written to a verified store with SQL; both must carry the labels.
    for name in ("first", "second"):
        result = harness.evaluate(
            data=data,
            predictions="outputs",
            targets="targets",
            judges=["tone"],
            judge_model="openai:/judge",
            metrics=["exact_match"],
            run_name=name,
            cache="off",
        )
        assert result.metrics["tone/mean"] == pytest.approx(0.5)
        table = result.tables["eval_results_table"]
        assert table["tone"].tolist() == [0.0, 0.5, 1.0]
        assert table["tone/label"].tolist() == ["rude", "neutral", "warm"]
        shown = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--rows", "--json"])
        assert shown.exit_code == 0, shown.stderr
        rows = json.loads(shown.stdout)["rows_table"]
        assert [(r["tone"], r["tone/label"]) for r in rows] == [
            (0.0, "rude"),
            (0.5, "neutral"),
            (1.0, "warm"),
        ]
        logged = client.get_run(result.mlflow_run_id)
        artifact = json.loads(
            Path(
                client.download_artifacts(logged.info.run_id, "eval_results_table.json")
            ).read_text(encoding="utf-8")
        )
        column = artifact["columns"].index("tone/label")
        assert [row[column] for row in artifact["data"]] == ["rude", "neutral", "warm"]
        traces = client.search_traces(
            locations=[logged.info.experiment_id], run_id=result.mlflow_run_id
        )
        feedback = {
            (a.name, a.feedback.value, a.rationale)
            for t in traces
            for a in t.info.assessments
            if a.name in ("tone", "exact_match")
        }
        assert feedback == {
            *(("tone", label, f"sounds {label}") for label in answers.values()),
            ("exact_match", 0.0, None),
        }


@pytest.mark.parametrize(
    ("toml", "judges_file", "message"),
    [
        ("", "missing.toml", "no such file: {tmp}/missing.toml"),
        (
            '[judges.x]\nprompt = "{outptu}"\n',
            None,
            "{home}/harness.toml: [judges.x]: judge 'x': unknown placeholder {{outptu}}; "
            "a judge prompt can use {{input}}, {{output}}, {{expected}}, {{context}}",
        ),
    ],
)
def test_a_run_without_judge_still_refuses_a_bad_judges_file_or_table(
    qa: str, home: Path, tmp_path: Path, toml: str, judges_file: str | None, message: str
) -> None:
    (home / "harness.toml").write_text(toml)
    extra = ["--judges", str(tmp_path / judges_file)] if judges_file else []
    result = CliRunner().invoke(
        cli, ["run", "--data", "qa", "--model", "echo", "--no-mlflow", *extra]
    )
    expected = message.format(tmp=tmp_path, home=resolve_home(home).path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {expected}\n"
    from harness.store.runs import list_runs

    assert list_runs(resolve_home(home).db_path) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            '{ judge_model = "openai:/gpt-4o" }',
            "judge 'x': params 'judge_model' is a harness option, not a model parameter: "
            "it would be sent in every judge request; use --judge-model",
        ),
        (
            '{ api_key = "sk-zzz" }',
            "judge 'x': params 'api_key' would store a credential with the run; keys are "
            "read from environment variables only (e.g. OPENAI_API_KEY)",
        ),
    ],
)
def test_a_judge_param_that_is_an_option_or_a_key_is_exit_2(
    qa: str, home: Path, params: str, message: str
) -> None:
    # judge_model went into every judge request's body, where a real API answers 400.
    (home / "harness.toml").write_text(f'[judges.x]\nprompt = "{{output}}"\nparams = {params}\n')
    result = CliRunner().invoke(
        cli,
        ["run", "--data", "qa", "--model", "echo", "--no-mlflow", "--judge", "x"]
        + ["--judge-model", "python:fake_judges:valid"],
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {message}\n"
    from harness.store.runs import list_runs

    assert list_runs(resolve_home(home).db_path) == []
