"""A parameter name nearly known (``temprature``) is said once, before the run starts.

It was sent as given in silence: a real API answers 400 for each call, and a local server
(Ollama, vLLM) ignores the key, so a sweep over it ran runs that differ in nothing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import harness
from harness.cli import cli
from harness.errors import UnknownParamWarning

MODEL = "python:harness_test_models:answer_expected"
JUDGE_MODEL = "python:harness_test_models:judge_yes"
SAID = "is not a parameter harness knows; did you mean {}? (it is sent as given)"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path, home: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return str(json.loads(out)["ref"])


JUDGE = '[judges.x]\nprompt = "Is {output} right?"\nparams = {max_token = 50}\n'


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        ("", ["--param", "temprature=0.7"], f"--param temprature {SAID.format('temperature')}"),
        ("[sweep]\ntemprature = [0, 0.7]\n", [],
         f"{{file}}: [sweep] temprature {SAID.format('temperature')}"),
        ("[sweep]\ntop_pp = [0.5]\n", [], f"{{file}}: [sweep] top_pp {SAID.format('top_p')}"),
        (JUDGE, ["--judge", "x", "--judge-model", JUDGE_MODEL],
         f"{{file}}: [judges.x]: judge 'x': params max_token {SAID.format('max_tokens')}"),
        # a --param over the same [sweep] key is named as the flag, once
        ("[sweep]\nseeds = [1, 2]\n", ["--param", "seeds=3"],
         f"--param seeds {SAID.format('seed')}"),
    ],
    ids=["param", "sweep-axis", "sweep-fixed", "judge", "param-over-sweep"],
)  # fmt: skip
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_misspelt_param_is_warned_of_once_before_the_run(
    toml: str, args: list[str], expected: str, as_json: bool, qa: str, home: Path
) -> None:
    (home / "harness.toml").write_text(toml)
    flags = ["--json"] if as_json else []
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--limit", "2", *args,
                            "--no-mlflow", *flags)  # fmt: skip
    assert code == 0, err
    line = expected.format(file=f"{home.resolve()}/harness.toml")
    if as_json:  # in the run's (or the sweep's) warnings, once; nothing on stderr
        assert json.loads(out)["warnings"] == [line]
        assert err == ""
    else:  # on stderr before the run's table, once, though a sweep has several runs
        assert err.splitlines() == [f"warning: {line}"]


def test_a_param_harness_does_not_know_nor_nearly_is_sent_in_silence(qa: str) -> None:
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--limit", "2",
                            "--param", "temperature=0.7", "--param", "num_gqa=8",
                            "--param", "my_server_option=1", "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    assert (json.loads(out)["warnings"], err) == ([], "")


def test_evaluate_warns_of_a_misspelt_param_with_its_own_class(home: Path) -> None:
    data = pd.DataFrame({"inputs": ["2+2", "hi"], "targets": ["4", "hi"]})
    with pytest.warns(UnknownParamWarning) as caught:
        harness.evaluate(
            MODEL, data, targets="targets", params={"temprature": 0.7}, log_to_mlflow=False
        )
    said = [str(w.message) for w in caught if w.category is UnknownParamWarning]
    assert said == [f"params temprature {SAID.format('temperature')}"]
    with warnings.catch_warnings():  # a known name, and a name near none: nothing said
        warnings.simplefilter("error", UnknownParamWarning)
        harness.evaluate(
            MODEL,
            data,
            targets="targets",
            params={"temperature": 0.7, "my_option": 1},
            log_to_mlflow=False,
        )


def test_evaluate_warns_of_a_misspelt_param_of_a_judge_object(home: Path) -> None:
    # A judge made in Python (make_judge) sends its params in each of its requests, as a
    # [judges.NAME] table's: its misspelt name was sent in silence.
    from harness.judges import make_judge

    data = pd.DataFrame({"inputs": ["2+2", "hi"], "targets": ["4", "hi"]})
    misspelt = make_judge("terse", "Is {output} right?", params={"max_token": 50})
    spelt = make_judge("terse2", "Is {output} right?", params={"max_tokens": 50, "my_opt": 1})
    with pytest.warns(UnknownParamWarning) as caught:
        harness.evaluate(MODEL, data, targets="targets", judges=[misspelt, spelt],
                         judge_model=JUDGE_MODEL, log_to_mlflow=False)  # fmt: skip
    said = [str(w.message) for w in caught if w.category is UnknownParamWarning]
    assert said == [f"judge 'terse': params max_token {SAID.format('max_tokens')}"]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_sweep_estimate_says_a_misspelt_param(as_json: bool, qa: str, home: Path) -> None:
    # --dry-run of a sweep: its --json has no warnings, so the warning goes to stderr, as a
    # single run's estimate says it (it was said nowhere with --json)
    (home / "harness.toml").write_text("[sweep]\ntemprature = [0, 0.7]\n")
    flags = ["--json"] if as_json else []
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--limit", "2",
                            "--dry-run", "--no-mlflow", *flags)  # fmt: skip
    assert code == 0, err
    line = f"{home.resolve()}/harness.toml: [sweep] temprature {SAID.format('temperature')}"
    assert err.splitlines() == [f"warning: {line}"]
    if as_json:
        assert len(json.loads(out)["runs"]) == 2


def test_a_run_that_fails_with_no_result_still_says_the_warning_with_json(
    qa: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --json holds the early warnings for its document; a run refused before it exists (no
    # key for the model) prints none, so they are said on stderr instead of lost.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = invoke(
        "run", "--data", qa, "--model", "openai:/gpt-4o-mini", "--param", "temprature=0.7",
        "--json",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert f"warning: --param temprature {SAID.format('temperature')}" in err
    assert "OPENAI_API_KEY" in err
