"""`harness run` end to end with local models: the stored rows, the JSON contract, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from processes import wait_for

from harness.cli import cli

TESTS = Path(__file__).resolve().parent.parent


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def query(home: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def qa(qa_file: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return json.loads(out)["ref"]


def test_run_json_contract_and_stored_rows(qa: str, home: Path) -> None:
    code, out, err = invoke(
        "run",
        "--data",
        "qa",
        "--model",
        "python:harness_test_models:answer_expected",
        "--metric",
        "exact_match",
        "--metric",
        "token_f1",
        "--metric",
        "word_count",
        "--json",
        "--no-mlflow",
    )
    assert code == 0, err
    doc = json.loads(out)  # stdout holds one JSON document and nothing else
    for key in ("run_id", "mlflow_run_id", "dataset", "rows", "errors", "metrics", "calls"):
        assert key in doc
    assert doc["dataset"] == qa and doc["rows"] == 20 and doc["errors"] == 0
    assert doc["metrics"]["exact_match"] == {"mean": 1.0, "p50": 1.0, "p90": 1.0, "count": 20}
    assert doc["metrics"]["token_f1"]["mean"] == 1.0
    assert set(doc["calls"]) == {"model", "judge", "app"}
    assert doc["calls"]["app"]["requests"] == 0  # this model's code makes no HTTP calls
    assert doc["calls"]["model"]["requests"] == 0  # a local model sends nothing...
    assert doc["calls"]["model"]["local_calls"] == 20  # ...but every call went the one path
    assert doc["calls"]["model"]["cache_hits"] == 0
    rows = query(
        home, f"SELECT count(*), count(output) FROM outputs WHERE run_id = '{doc['run_id']}'"
    )
    assert rows == [(20, 20)]
    per_metric = dict(query(home, "SELECT metric, count(*) FROM scores GROUP BY metric"))
    assert per_metric == {"exact_match": 20, "token_f1": 20, "word_count": 20}
    status = query(home, f"SELECT status, errors FROM runs WHERE run_id = '{doc['run_id']}'")
    assert status == [("finished", 0)]


def test_runs_list_and_show(qa: str) -> None:
    code, out, _ = invoke(
        "run", "--data", "qa", "--model", "echo", "--metric", "word_count", "--json", "--no-mlflow"
    )
    run_id = json.loads(out)["run_id"]
    code, out, _ = invoke("runs", "list", "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == [run_id]
    code, out, _ = invoke("runs", "show", run_id[:6], "--rows", "--json")
    shown = json.loads(out)
    assert shown["run_id"] == run_id and shown["status"] == "finished"
    assert len(shown["rows_table"]) == 20
    first = shown["rows_table"][0]
    assert first["output"].endswith("Answer:")  # echo returns the rendered default prompt
    assert first["word_count"] == len(first["output"].split())
    # --limit says "at most N rows", with --json too (which without it prints every row).
    code, out, _ = invoke("runs", "show", run_id, "--limit", "2", "--json")
    assert code == 0 and json.loads(out)["rows_table"] == shown["rows_table"][:2]
    code, out, _ = invoke("runs", "show", run_id)
    assert code == 0 and "word_count" in out
    code, _, err = invoke("runs", "show", "nope")
    assert code == 2 and "no run, tag or run name 'nope'" in err


BAD_RUNS = {
    "unknown model": (["--model", "gpt4"], "unknown model URI 'gpt4'"),
    "unknown python module": (["--model", "python:no_such_module:f"], "no module named"),
    "unknown metric": (["--model", "echo", "--metric", "bleu"], "unknown metric 'bleu'"),
    "unknown dataset": (["--model", "echo", "--data", "other"], "unknown dataset 'other'"),
    "bad template": (["--model", "echo", "--prompt", "Q: {question}"], "uses {question}"),
    "bad param": (["--model", "echo", "--param", "temperature"], "--param expects KEY=VALUE"),
    "missing prompt file": (["--model", "echo", "--prompt", "@nope.txt"], "file not found"),
    "judge without model": (["--model", "echo", "--judge", "faithfulness"], "judge"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_bad_run_input_is_exit_2_and_leaves_no_run(case: str, qa: str, home: Path) -> None:
    extra, message = BAD_RUNS[case]
    args = ["run", "--data", "qa", *extra]
    if "--data" in extra:
        args = ["run", *extra]
    code, out, err = invoke(*args, "--no-mlflow")
    assert code == 2, err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    ("toml", "args", "message"),
    [
        ('[judges.x]\nprompt = "{output}"\nparams = {temperature = "hot"}\n',
         ["--judge", "x", "--judge-model", "echo"],
         "{file}: [judges.x]: judge 'x': params temperature must be a number, got 'hot'"),
        ('[judges.x]\nprompt = "{output}"\nparams = {max_tokens = 1.5}\n', [],
         "{file}: [judges.x]: judge 'x': params max_tokens must be an integer, got 1.5"),
        ('[judges.x]\nprompt = "{output}"\nparams = {stop = ["a", 1]}\n', [],
         "{file}: [judges.x]: judge 'x': params stop must be a string or a list of strings, "
         "got ['a', 1]"),
        ("[sweep]\ntop_p = [0.5, true]\n", [],
         "{file}: [sweep] top_p must be a number, got True"),
        ("", ["--param", "temperature=hot"],
         "--param temperature=hot: temperature must be a number, got 'hot'"),
        ("", ["--param", "seed=1", "--param", "seed=x"],
         "--param seed=x: seed must be an integer, got 'x'"),
        ("", ["--param", "n=[2]"], "--param n=[2]: n must be an integer, got [2]"),
        # Sent as NaN and Infinity, which no JSON parser of an API reads, exit 0.
        ("", ["--param", "temperature=NaN"],
         "--param temperature=NaN: temperature must be a number, got nan"),
        ("[sweep]\ntop_p = [0.5, inf]\n", [],
         "{file}: [sweep] top_p must be a number, got inf"),
    ],
    ids=["judge-temperature", "judge-max_tokens", "judge-stop", "sweep", "param", "param-sweep",
         "param-n", "param-nan", "sweep-inf"],
)  # fmt: skip
def test_a_sampling_param_of_the_wrong_type_is_exit_2_and_leaves_no_run(
    toml: str, args: list[str], message: str, qa: str, home: Path
) -> None:
    # temperature = "hot" was sent in every request (a real API answers 400 for each), exit 0.
    (home / "harness.toml").write_text(toml)
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", *args, "--no-mlflow")
    file = f"{home.resolve()}/harness.toml"
    assert (code, out, err) == (2, "", f"error: {message.format(file=file)}\n")
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    ("prompt", "problem"),
    [
        ("Q: {input.text}", "'str' object has no attribute 'text'"),
        ("Q: {input!x}", "Unknown conversion specifier x"),
        ("Q: {input:>>>}", "Unknown format code '>' for object of type 'str'"),
    ],
    ids=["attribute", "conversion", "format"],
)
def test_a_prompt_template_the_rows_cannot_fill_is_exit_2_and_leaves_no_run(
    prompt: str, problem: str, qa: str, home: Path
) -> None:
    # Each was a traceback from the first row's worker (exit 1); harness.evaluate(prompt=)
    # goes through the same plan.
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--prompt", prompt,
                            "--no-mlflow")  # fmt: skip
    first = query(home, "SELECT id FROM examples ORDER BY position LIMIT 1")[0][0]
    assert (code, out, err) == (
        2, "", f"error: prompt template cannot be filled in from the first row (id {first}): "
        f"{problem}; write literal braces as {{{{ and }}}}\n"
    )  # fmt: skip
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_max_cost_of_nan_is_exit_2_and_leaves_no_run(qa: str, home: Path) -> None:
    # A budget no cost is ever more than: the run went on, unbounded, exit 0.
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--max-cost", "nan",
                            "--no-mlflow")  # fmt: skip
    assert (code, out, err) == (2, "", "error: --max-cost must be positive, got nan\n")
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_limit_beyond_an_int64_takes_every_row(qa: str, home: Path) -> None:
    # DuckDB's LIMIT is an int64: a larger --limit was a Conversion Error shown as a damaged
    # store, exit 74, for harness run, harness runs list and harness data show alike.
    huge = str(10**23)
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--limit", huge,
                            "--no-mlflow", "--json")  # fmt: skip
    assert (code, err) == (0, "") and json.loads(out)["rows"] == 20
    code, out, err = invoke("runs", "list", "--limit", huge, "--json")
    assert (code, err, len(json.loads(out))) == (0, "", 1)
    code, out, err = invoke("data", "show", "qa", "--limit", huge, "--json")
    assert (code, err, len(json.loads(out)["examples"])) == (0, "", 20)


# --experiment "$EXPERIMENT" with the variable unset: "" logged to harness, "  " made an
# MLflow experiment named "  ", exit 0 (a sweep: its parent run in harness). --run-name
# "$NAME": a run with no name that no name finds (a sweep: its children named by their
# point alone). A --dry-run estimated, exit 0, a run that would be refused.
EMPTY_NAME_SAYS = {
    "--experiment": "give an experiment's name, or leave the option out (harness)",
    "--run-name": "give the run a name, or leave the option out",
}


@pytest.mark.parametrize("option", list(EMPTY_NAME_SAYS))
@pytest.mark.parametrize(
    ("name", "sweep"),
    [
        ("", []),
        ("  ", []),
        ("", ["--param", "seed=1", "--param", "seed=2"]),
        ("", ["--dry-run"]),
        ("", ["--dry-run", "--param", "seed=1", "--param", "seed=2"]),
    ],
)
def test_an_empty_experiment_or_run_name_is_exit_2_and_leaves_no_run(
    option: str, name: str, sweep: list[str], qa: str, home: Path
) -> None:
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", option, name, *sweep)
    said = f"error: {option} {name!r} is empty: {EMPTY_NAME_SAYS[option]}\n"
    assert (code, out, err) == (2, "", said)
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]
    assert not (home / "mlruns").exists()


def test_runs_show_columns_naming_no_column_is_exit_2(qa: str, home: Path) -> None:
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json")
    run_id = json.loads(out)["run_id"]
    for given in ("", ",", " , "):  # --columns "$COLS" unset: the default columns, exit 0
        code, out, err = invoke("runs", "show", run_id, "--columns", given)
        assert (code, out) == (2, "") and err.startswith("error: --columns names no column; ")
        assert err.count("\n") == 1 and "columns: id, input, " in err


def test_judge_samples_beyond_a_hundred_are_exit_2_and_leave_no_run(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10**11 samples grew the process to 7 GB in 20 s, deaf to SIGTERM, before any call.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing is sent
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--judge", "correctness",
                            "--judge-model", "openai:/judge", "--judge-samples", "100000000000",
                            "--no-mlflow")  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        "error: --judge-samples must be from 1 to 100 (each sample is a judge call per row), "
        "got 100000000000\n"
    )
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_bad_calls_settings_are_exit_2_and_leave_no_run(qa: str, home: Path) -> None:
    (home / "harness.toml").write_text("[calls]\nmax_retriez = 3\n")
    code, _, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert code == 2 and "unknown setting max_retriez" in err
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_bad_stop_grace_is_exit_2_and_leaves_no_run(qa: str, home: Path) -> None:
    """[calls] stop_grace_s (how long a stopped run waits for its work in flight) is
    checked with the rest of [calls], before the run exists."""
    (home / "harness.toml").write_text("[calls]\nstop_grace_s = 0\n")
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out) == (2, "") and err == (
        f"error: {home.resolve()}/harness.toml: [calls] stop_grace_s must be a number of "
        "seconds > 0, got 0\n"
    )
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[slices]\nmax_values = "x"\n',
         "[slices] max_values must be a whole number of at least 1, got 'x'"),
        ('[spark]\ntasks = "8"\n', "[spark] tasks must be a whole number >= 1, got '8'"),
        ("[spark]\nrows_per_task = 0\n",
         "[spark] rows_per_task must be a whole number >= 1, got 0"),
        ("[spark]\nmaster = 5\n", "[spark] master must be text, got 5"),
        ("spark = 5\n", "spark must be a table ([spark])"),  # was a TypeError traceback
        ("calls = 5\n", "calls must be a table ([calls])"),  # were AttributeError tracebacks
        ("prices = 5\n", "prices must be a table ([prices])"),
        # inf: an OverflowError traceback from the HTTP client (nan: a ValueError with httpx).
        ("[calls]\ntimeout_s = inf\n", "[calls] timeout_s must be a number >= 0, got inf"),
        ('[calls]\ntransport = "httpx"\ntimeout_s = nan\n',
         "[calls] timeout_s must be a number >= 0, got nan"),
        ("[calls]\nretry_base_delay_s = nan\n",
         "[calls] retry_base_delay_s must be a number >= 0, got nan"),
        ("[calls]\nmax_retries = 1.5\n",  # was 1 retry, said nowhere
         "[calls] max_retries must be a whole number >= 0, got 1.5"),
        ("[calls]\nstop_grace_s = nan\n",
         "[calls] stop_grace_s must be a number of seconds > 0, got nan"),
        # nan: a run that waited forever for its first request.
        ('[rate_limits."openai:/gpt-4o-mini"]\nrequests_per_minute = nan\n',
         "[rate_limits.'openai:/gpt-4o-mini']: requests_per_minute must be a positive "
         "number, got nan"),
        ('[prices]\n"openai:/gpt-4o-mini" = [inf, 2]\n',  # an infinite cost, exit 0
         "[prices] 'openai:/gpt-4o-mini': a price is a number of USD >= 0, got [inf, 2]"),
        ('[prices]\n"echo" = { input = 1, output = 2, cached = 0.5 }\n',  # ignored, exit 0
         "[prices] 'echo': unknown key cached; known: input, output"),
        ('[prices]\n"openai:/gpt-4o-mini" = [true, 2]\n',  # a price of $1
         "[prices] 'openai:/gpt-4o-mini' must be [input, output] or "
         "{ input = ..., output = ... } in USD per million tokens"),
    ],
)  # fmt: skip
def test_a_settings_value_harness_cannot_use_is_exit_2_and_leaves_no_run(
    table: str, message: str, qa: str, home: Path
) -> None:
    # Each was taken (exit 0) or a traceback (exit 1). A run without --by or --spark does
    # not read [slices] or [spark], and accepted theirs.
    (home / "harness.toml").write_text(table)
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out) == (2, "") and err == f"error: {home.resolve()}/harness.toml: {message}\n"
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_bytes(b'judge_model = "\xff"\n'),
         "is not UTF-8 text (bad byte at offset 15)"),  # was a UnicodeDecodeError traceback
        (lambda p: p.mkdir(), "is a folder, not a TOML file"),  # was IsADirectoryError
    ],
    ids=["latin-1", "folder"],
)  # fmt: skip
def test_a_harness_toml_harness_cannot_read_is_exit_2_and_leaves_no_run(
    write: Any, message: str, qa: str, home: Path
) -> None:
    write(home / "harness.toml")
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out, err) == (2, "", f"error: {home.resolve()}/harness.toml {message}\n")
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_judges_file_may_be_a_pipe(home: Path, tmp_path: Path) -> None:
    # --judges <(...): refused as "not a regular file" by the commit that refused folders.
    pipe = tmp_path / "judges.pipe"
    os.mkfifo(pipe)
    writer = subprocess.Popen(
        ["sh", "-c", f"printf '[judges.piped]\\nprompt = \"{{output}}\"\\n' > {pipe}"]
    )
    try:
        code, out, err = invoke("judges", "list", "--judges", str(pipe), "--json")
    finally:
        writer.wait(timeout=30)
    assert (code, err) == (0, "") and "piped" in {j["name"] for j in json.loads(out)}


def test_a_judges_file_that_is_not_utf8_is_exit_2_and_leaves_no_run(
    qa: str, home: Path, tmp_path: Path
) -> None:
    judges = tmp_path / "judges.toml"  # was a UnicodeDecodeError traceback, exit 1
    judges.write_bytes(b'[judges.x]\nprompt = "\xe9 {output}"\n')
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "echo", "--no-mlflow", "--judges", str(judges)
    )
    message = f"error: {judges} is not UTF-8 text (bad byte at offset 21)\n"
    assert (code, out, err) == (2, "", message)
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize(
    "table",
    [
        "[check]\ntreshold = 3\n",
        '[providers.openai]\napi_key_env = "sk-x"\n',
        '[judges.j]\nprompt = "{answer}"\n',
        '[metrics.m]\nkind = "regx"\n',
        # The tables checked where they are used said "[calls] ..." with no file at all.
        '[calls]\ntimeout_s = "x"\n',
        "[calls]\ntimeouts = 5\n",
        '[calls]\ntransport = "carrier-pigeon"\n',
        "[sweep]\ntop_p = []\n",
        '[sweep]\nsystem = ["Be brief."]\n',
        '[intercept]\nhosts = "llm.internal"\n',
        '[intercept]\nhost = ["llm.internal"]\n',
        '[intercept]\nallowed_hosts = "db"\n',
        '[prices]\n"echo" = "free"\n',
        '[prices]\n"echo" = [-1, 0]\n',
        # The rate limits' values said "[providers.openai]: ..." with no file at all.
        "[providers.openai]\nrequests_per_minute = 0\n",
        '[rate_limits."echo"]\ntokens_per_minute = "x"\n',
    ],
)
def test_every_harness_toml_mistake_names_the_file_by_its_full_path(
    table: str, qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings' own checks said "harness.toml: ...", the judges' and metrics' the full
    # path: with HARNESS_HOME elsewhere, the bare name pointed at the current directory.
    monkeypatch.chdir(tmp_path)
    (home / "harness.toml").write_text(table)
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out) == (2, "") and err.startswith(f"error: {home.resolve()}/harness.toml: ")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[rate_limits."echo"]\nrequest_per_minute = 5\n',
            'harness.toml: unknown key request_per_minute in [rate_limits."echo"]; '
            "known: requests_per_minute, tokens_per_minute",
        ),
        (
            '[rate_limits]\n"echo" = 5\n',
            'harness.toml: [rate_limits."echo"] must be a table such as '
            "{ requests_per_minute = 100 }, not 5",
        ),
    ],
)
def test_a_misspelt_rate_limit_is_exit_2_not_an_unlimited_run(
    table: str, message: str, qa: str, home: Path
) -> None:
    (home / "harness.toml").write_text(table)
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out) == (2, "") and err == f"error: {home.resolve()}/{message}\n"
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize("value", ['"sk-proj-abc123"', "5"])
def test_api_key_env_that_is_not_a_variable_name_is_exit_2_and_not_shown(
    value: str, qa: str, home: Path
) -> None:
    # A key pasted where its variable's name goes was sent nowhere, but shown in every
    # failed row's error ("(check sk-proj-abc123)") and stored; a number was a traceback.
    (home / "harness.toml").write_text(f"[providers.openai]\napi_key_env = {value}\n")
    code, out, err = invoke("run", "--data", "qa", "--model", "openai:/m", "--no-mlflow")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {home.resolve()}/harness.toml: [providers.openai] api_key_env must name an "
        "environment variable (letters, digits and _, such as MY_SERVER_KEY) that holds the "
        "key, not the key itself\n"
    )
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_api_key_env_that_is_not_set_is_exit_2_unless_nothing_is_sent(
    provider: str, qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a local base_url the run started and every row failed with 401 "(check
    # MY_TEAM_KEY)", exit 1: the variable the user named was simply not set.
    from harness.testing import FakeLLMServer

    monkeypatch.delenv("MY_TEAM_KEY", raising=False)
    with FakeLLMServer() as server:
        url = server.openai_base_url if provider == "openai" else server.anthropic_base_url
        (home / "harness.toml").write_text(
            f'[providers.{provider}]\nbase_url = "{url}"\napi_key_env = "MY_TEAM_KEY"\n'
        )
        run = ("run", "--data", "qa", "--model", f"{provider}:/m", "--no-mlflow")
        code, out, err = invoke(*run)
        hint = ", or remove api_key_env if the server needs none" if provider == "openai" else ""
        assert (code, out) == (2, "")
        assert err == (
            f"error: [providers.{provider}] api_key_env names MY_TEAM_KEY, which is not set "
            f"(or is empty): set it to the key{hint}\n"
        )
        assert query(home, "SELECT count(*) FROM runs") == [(0,)]
        code, _, err = invoke(*run, "--dry-run")  # an estimate sends nothing
        assert code == 0, err
        monkeypatch.setenv("MY_TEAM_KEY", "sk-team-0123456789")
        code, _, err = invoke(*run)
        assert code == 0, err
        monkeypatch.setenv("MY_TEAM_KEY", " ")
        code, _, err = invoke(*run, "--cache", "replay")  # no network, so no key
        assert code == 0, err
        assert server.stats()["requests_total"] == 20


@pytest.mark.parametrize("value", ['"support answer"', "5"])
def test_a_bad_mlflow_prompt_name_is_exit_2_before_the_run(value: str, qa: str, home: Path) -> None:
    # It was found when the finished run was logged: the run stored, then exit 74.
    (home / "harness.toml").write_text(f"[mlflow]\nprompt_name = {value}\n")
    code, out, err = invoke("run", "--data", "qa", "--model", "echo")
    shown = "'support answer'" if value.startswith('"') else value
    assert (code, out) == (2, "")
    assert err == (
        f"error: {home.resolve()}/harness.toml: [mlflow] prompt_name {shown} may only hold "
        "letters, digits, '_', '-' and '.'\n"
    )
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_a_bad_metric_table_no_run_names_is_exit_2(qa: str, home: Path) -> None:
    # Only a run with --metric cites checked it; the others ran and exited 0.
    (home / "harness.toml").write_text('[metrics.cites]\nkind = "regx"\npattern = "x"\n')
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    assert (code, out) == (2, "")
    assert err.startswith(
        f"error: {home.resolve()}/harness.toml: [metrics.cites]: unknown metric kind 'regx'; "
    )
    assert err.count("\n") == 1
    assert query(home, "SELECT count(*) FROM runs") == [(0,)]


def test_failed_rows_exit_1_then_resume_finishes(
    qa: str, home: Path, tmp_path: Path, qa_rows: list[dict[str, object]]
) -> None:
    failing = sum(int(str(r["id"])) % 2 == 0 for r in qa_rows)
    assert 0 < failing < 20
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    code, out, err = invoke(
        "run",
        "--data",
        "qa",
        "--model",
        "python:harness_test_models:fail_while_flagged",
        "--metric",
        "exact_match",
        "--no-mlflow",
        "--json",
        env=env,
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["errors"] == failing
    assert doc["metrics"]["exact_match"]["count"] == 20 - failing
    assert f"{failing} of 20 rows failed" in err and "flagged row" in err
    assert f"--resume {doc['run_id']}" in err
    stored = query(home, "SELECT count(*) FROM outputs WHERE error LIKE '%flagged row%'")
    assert stored == [(failing,)]

    flag.unlink()
    code, out, err = invoke("run", "--resume", doc["run_id"], "--json", env=env)
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["run_id"] == doc["run_id"]
    assert resumed["errors"] == 0 and resumed["metrics"]["exact_match"]["count"] == 20
    assert query(home, "SELECT count(*) FROM outputs") == [(20,)]


def resumable_run(tmp_path: Path, metric: str) -> tuple[str, dict[str, str]]:
    """A run of qa whose even rows failed (its model raised while a flag file existed), with
    the flag gone since: its id and the env its resume runs with."""
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    code, out, _ = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", metric, "--no-mlflow", "--json", env=env,
    )  # fmt: skip
    assert code == 1
    flag.unlink()
    return json.loads(out)["run_id"], env


def test_resume_refuses_a_metric_defined_differently_since_the_run_started(
    qa: str, home: Path, tmp_path: Path
) -> None:
    """A [metrics.NAME] table edited before --resume scored the remaining rows with the new
    check while the rows done kept the old one's scores, under the version the run stored."""
    table = '[metrics.cites]\nkind = "contains"\nvalue = "{value}"\n'
    (home / "harness.toml").write_text(table.format(value="the"), encoding="utf-8")
    run_id, env = resumable_run(tmp_path, "cites")
    (home / "harness.toml").write_text(table.format(value="zzz"), encoding="utf-8")
    before = query(home, "SELECT count(*) FROM scores")
    code, _, err = invoke("run", "--resume", run_id, "--json", env=env)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        f"error: metric 'cites' changed since run {run_id} started (now: [metrics.cites] table)"
    )
    assert query(home, "SELECT count(*) FROM scores") == before  # nothing written
    (home / "harness.toml").write_text(table.format(value="the"), encoding="utf-8")
    code, _, err = invoke("run", "--resume", run_id, "--json", env=env)
    assert code == 0, err


def test_resume_refuses_options_other_than_the_runs_own(
    qa: str, home: Path, tmp_path: Path
) -> None:
    """`harness run --resume RUN --judge-model OTHER` (or --concurrency, --limit, ...) went
    on with the run's own value and said nothing; the same value stays welcome."""
    run_id, env = resumable_run(tmp_path, "exact_match")
    code, _, err = invoke("run", "--resume", run_id, "--metric", "token_f1", "--limit", "3")
    assert code == 2 and err == (
        "error: --resume goes on with the run's own options, and --metric, --limit differ "
        "from the run's; start a new run to change them (its calls come from the cache)\n"
    )
    assert query(home, "SELECT status FROM runs") == [("finished",)]  # untouched
    code, out, err = invoke(
        "run", "--resume", run_id, "--metric", "exact_match", "--no-mlflow", "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["errors"] == 0


def test_resume_takes_a_run_name_or_a_tag(qa: str, home: Path, tmp_path: Path) -> None:
    """`--resume` finds the run as `runs show` does (it said "no run 'NAME'"): a name that
    several runs have is the newest, with the same note."""
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    args = ["run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
            "--run-name", "flaky", "--no-mlflow", "--json"]  # fmt: skip
    older, newer = (json.loads(invoke(*args, env=env)[1])["run_id"] for _ in range(2))
    flag.unlink()
    code, out, err = invoke("run", "--resume", "flaky", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["run_id"] == newer and json.loads(out)["errors"] == 0
    assert err.startswith(f"note: 2 runs are named 'flaky'; using the newest, {newer} (")
    assert invoke("runs", "tag", older, "first-try")[0] == 0
    code, out, err = invoke("run", "--resume", "first-try", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["run_id"] == older and "note:" not in err
    assert query(home, "SELECT count(*) FROM outputs WHERE error IS NOT NULL") == [(0,)]


def test_reader_in_another_process_works_while_a_run_writes(qa: str, home: Path) -> None:
    env = {
        **os.environ,
        "HARNESS_HOME": str(home),
        # 20 rows one at a time: ~5 s running, so a reader starting a process every second
        # or so on a loaded machine (xdist workers) still gets a look at it.
        "HARNESS_TEST_DELAY": "0.25",
        "PYTHONPATH": str(TESTS),
    }
    harness = [sys.executable, "-m", "harness"]
    writer = subprocess.Popen(
        [
            *harness,
            "run",
            "--data",
            "qa",
            "--model",
            "python:harness_test_models:slow_echo",
            "--metric",
            "word_count",
            "--concurrency",
            "1",
            "--no-mlflow",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=TESTS,
    )
    seen_running = False
    try:
        deadline = time.monotonic() + 60
        while writer.poll() is None and time.monotonic() < deadline:
            reader = subprocess.run(
                [*harness, "runs", "list", "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert reader.returncode == 0, reader.stderr
            listed = json.loads(reader.stdout)
            seen_running |= any(r["status"] == "running" for r in listed)
        out, err = writer.communicate(timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == 0, err
    assert seen_running, "the reader never saw the run in progress"
    assert json.loads(out)["rows"] == 20


def test_evaluate_api_with_a_dataframe_and_a_callable(home: Path) -> None:
    import harness

    df = pd.DataFrame(
        {
            "question": ["2+2?", "Capital of France?", "Colour of the sky?"],
            "answer": ["4", "Paris", "blue"],
        }
    )
    answers = {"2+2?": "4", "Capital of France?": "paris.", "Colour of the sky?": "grey"}
    result = harness.evaluate(
        lambda row: answers[row["input"]],
        df,
        metrics=["exact_match", "token_f1"],
        log_to_mlflow=False,
    )
    assert result.metrics["exact_match/mean"] == pytest.approx(2 / 3)
    assert result.metrics["exact_match/count"] == 3
    table = result.tables["eval_results_table"]
    assert list(table["exact_match"]) == [1.0, 1.0, 0.0]
    assert list(table["output"]) == ["4", "paris.", "grey"]
    again = harness.evaluate(
        lambda row: answers[row["input"]], df, metrics=["exact_match"], log_to_mlflow=False
    )
    assert again.run_id != result.run_id
    assert query(home, "SELECT count(*) FROM datasets") == [(1,)]  # same frame, one version


def test_evaluate_scores_predictions_already_in_the_data(home: Path) -> None:
    import harness
    from harness.errors import ConfigError, DataError

    df = pd.DataFrame(
        {
            "question": ["2+2?", "Capital of France?", "Colour of the sky?", "Say nothing."],
            "answer": ["4", "Paris", "blue", "nothing"],
            "response": ["4", "paris.", None, ""],
        }
    )
    result = harness.evaluate(
        data=df, predictions="response", metrics=["exact_match"], log_to_mlflow=False
    )
    table = result.tables["eval_results_table"].set_index("input")
    assert table.loc["2+2?", "output"] == "4" and table.loc["2+2?", "exact_match"] == 1.0
    assert table.loc["Capital of France?", "exact_match"] == 1.0  # SQuAD normalization
    assert result.result.errors == 1  # the missing cell is that row's error, not the run's
    # An empty text is an output (a model that said nothing), scored: it was a failed row.
    assert table.loc["Say nothing.", "output"] == ""
    assert table.loc["Say nothing.", "exact_match"] == 0.0
    errors = query(home, f"SELECT error FROM outputs WHERE run_id = '{result.run_id}'")
    assert [e for (e,) in errors if e] == ["the row has no value in column 'response'"]
    assert result.result.calls["model"]["local_calls"] == 3
    assert result.result.calls["model"]["errors"] == 1
    assert result.result.model == "column:response"

    with pytest.raises(DataError, match=r"^predictions='reply': the data has no such column"):
        harness.evaluate(data=df, predictions="reply", log_to_mlflow=False)
    with pytest.raises(ConfigError, match="not both"):
        harness.evaluate("echo", df, predictions="response", log_to_mlflow=False)
    with pytest.raises(ConfigError, match="needs model="):
        harness.evaluate(data=df, log_to_mlflow=False)
    runs = query(home, "SELECT count(*) FROM runs")
    assert runs == [(1,)]  # the refused calls left no run behind


def test_the_cli_scores_a_column_as_the_model(qa_file: Path) -> None:
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "column:final_decision", "--metric", "word_count",
        "--json", "--no-mlflow",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["metrics"]["word_count"]["mean"] == 1.0  # yes / no / maybe
    code, _, err = invoke("run", "--data", "qa", "--model", "column:nope", "--no-mlflow")
    assert code == 2 and err.startswith("error:") and "no column 'nope'" in err


def _mlflow_traces(home: Path, mlflow_run_id: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    run = client.get_run(mlflow_run_id)
    return client.search_traces(
        locations=[run.info.experiment_id], run_id=mlflow_run_id, max_results=1000
    )


def test_traces_stream_to_mlflow_once_per_row_also_across_a_resume(
    qa: str, home: Path, tmp_path: Path, qa_rows: list[dict[str, object]]
) -> None:
    """Traces are written batch by batch while rows run; a resumed run completes the same
    MLflow run: one trace per row, the failed rows' traces replaced by their new ones."""
    from mlflow import MlflowClient

    failing = sum(int(str(r["id"])) % 2 == 0 for r in qa_rows)
    flag = tmp_path / "flag"
    flag.touch()
    env = {"HARNESS_TEST_FLAG": str(flag)}
    args = [
        "--model",
        "python:harness_test_models:fail_while_flagged",
        "--metric",
        "exact_match",
        "--judge",
        "answer_relevance",
        "--judge-model",
        "python:harness_test_models:judge_messages",
        "--json",
    ]
    code, out, err = invoke("run", "--data", "qa", *args, env=env)
    assert code == 1, err
    first = json.loads(out)
    states = [str(t.info.state) for t in _mlflow_traces(home, first["mlflow_run_id"])]
    assert len(states) == 20 and sum("ERROR" in s for s in states) == failing

    flag.unlink()
    code, out, err = invoke("run", "--resume", first["run_id"], "--json", env=env)
    assert code == 0, err
    resumed = json.loads(out)
    traces = _mlflow_traces(home, resumed["mlflow_run_id"])
    assert len(traces) == 20 and not any("ERROR" in str(t.info.state) for t in traces)
    assert len({t.info.client_request_id for t in traces}) == 20
    names = {a.name for a in traces[0].info.assessments}
    assert {"exact_match", "answer_relevance", "expected_response"} <= names
    assert resumed["mlflow_run_id"] == first["mlflow_run_id"]
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    experiment = client.get_run(first["mlflow_run_id"]).info.experiment_id
    runs = client.search_runs([experiment])
    assert [(r.info.run_id, r.info.status) for r in runs] == [(first["mlflow_run_id"], "FINISHED")]
    # Continuing that MLflow run in a verified store is written with SQL, as a new run is
    # (harness.tracking.sql_resume), not through MLflow's API ("(sql-bulk)").
    assert runs[0].data.tags["harness.traces"] == "20 traces (sql-direct)"


@pytest.mark.parametrize("hold_rows", [0, 2_000])
def test_the_end_of_a_run_reads_its_rows_and_stores_its_end_in_one_open(
    qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold_rows: int
) -> None:
    """Reading the rows back and storing the run's end share one open of the DuckDB file
    (``harness.store.db.held``). A run of up to ``HOLD_REPORT_ROWS`` rows keeps it open
    through its MLflow run's table, its report and its MLflow run's end too; a larger one
    closes it first, and its MLflow run's table reads the rows and scores, its report the
    run with its scores and the judges' calibrations, then its rows (each let go before the
    next: DuckDB keeps what an open read cached until it closes), and its MLflow run id is
    stored, with opens of their own. The hold is taken before the last batch of rows is
    written, so that write shares it too (it was an open and a checkpoint of its own, on
    the path to the exit). The rest of the run still opens the file for each short piece
    of work, so other processes can read between them."""
    import harness.runner.run_end as run_end
    from harness.store import db as store_db

    monkeypatch.setattr(run_end, "HOLD_REPORT_ROWS", hold_rows)
    at_end: list[bool] = []  # each open: whether it came from the run's end
    real = store_db._open
    # The run's end, the hold taken for it, and the rows' batches: the run's 20 rows are
    # one batch, its last, written as its rows end, however slow the machine: no batch on
    # a timer, nor of the rows done when the last row starts (``flush_if_idle``: on a
    # loaded machine some are, and their batch was an open of its own, counted here).
    from harness.runner.batches import BatchWriter

    defaults = BatchWriter.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "seconds", 3600.0)
    monkeypatch.setattr(BatchWriter, "flush_if_idle", lambda self: None)
    end = {"_finished", "held", "_write"}

    def counted(db_path: Path, *, read_only: bool, timeout_s: float) -> object:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name not in end:
            frame = frame.f_back  # type: ignore[assignment]
        at_end.append(frame is not None)
        return real(db_path, read_only=read_only, timeout_s=timeout_s)

    monkeypatch.setattr(store_db, "_open", counted)
    report = tmp_path / "report.html"
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
        "--metric", "token_f1", "--judge", "correctness",
        "--judge-model", "python:harness_test_models:judge_yes",
        "--json", "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    # Held: the one open. Closed first: then the report's of the run, its scores and the
    # judges' calibrations (one open), of its rows, and the MLflow run's id (the MLflow
    # worker makes the run's table of the rows it got: harness.runner.worker_table).
    assert at_end.count(True) == (1 if hold_rows else 4), at_end
    assert at_end.count(False) >= 2  # the dataset, the run's start
    result = json.loads(out)
    run_id = result["run_id"]
    stored = query(home, f"SELECT status, mlflow_run_id FROM runs WHERE run_id = '{run_id}'")
    assert stored == [("finished", result["mlflow_run_id"])] and result["mlflow_run_id"]
    assert "harness report" in report.read_text(encoding="utf-8")


def test_a_run_whose_end_fails_after_its_mlflow_table_is_made_leaves_no_table_file(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MLflow run's per-row table is written to a file while the report is built
    (by the MLflow worker, ``harness.runner.worker_table``); an end that fails meanwhile
    deletes it, and the MLflow run is not left running (KILLED, as for any crash of the
    run's process: the worker's pipe closes without a finish)."""
    from mlflow import MlflowClient

    import harness.runner.run as run_module

    def broken(self: object, result: object, to_mlflow: bool = False) -> str:
        wait_for(lambda: list((home / "mlruns").glob(".harness-table-*")), 60, "the table")
        raise MemoryError("the report could not be built")

    monkeypatch.setattr(run_module._Run, "_report", broken)
    # The table file goes in the store's folder, which the MLflow worker creates with the
    # store: a 3-row run on a loaded machine can reach its end first, and the table is then
    # made in memory (render_rows), with no file to see here.
    (home / "mlruns").mkdir()
    with pytest.raises(MemoryError):
        run_module.run_eval(
            run_module.RunConfig(
                data="qa", model="python:harness_test_models:answer_expected", metrics=["token_f1"]
            ),
            home=home,
        )
    assert list((home / "mlruns").glob(".harness-table-*")) == []
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]


def _examples_alive(ids: set[str]) -> int:
    """The ``Example`` objects of these ids still reachable (garbage collected first)."""
    import gc

    from harness.store.datasets import Example

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Example and o.id in ids)


@pytest.mark.parametrize("case", ["run", "resumed", "by"])
def test_a_runs_examples_are_let_go_before_its_end_unless_its_slices_need_them(
    qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The end reads the rows back from the store: the examples the rows were run from
    (the plan's, the rows' own list when resumed, and the ones each trace was built from)
    are freed before it begins, so a long run's end does not hold them twice. Slices by
    an example column (``--by``) read them at the end, and keep them; so do batch metrics
    (an ``eval_fn`` without them raises: tests/scoring/test_evaluate_shapes.py)."""
    import harness.runner.run as run_module

    ids = {str(i) for (i,) in query(home, "SELECT id FROM examples")}
    assert len(ids) == 20
    alive_at_end: list[int] = []
    real = run_module._Run._record

    def record(self: object, *args: object, **kwargs: object) -> object:
        alive_at_end.append(_examples_alive(ids))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module._Run, "_record", record)
    before = _examples_alive(ids)
    flag = tmp_path / "flag"
    flag.touch()  # fail_while_flagged fails the even rows while it exists
    env = {"HARNESS_TEST_FLAG": str(flag)}
    model = "fail_while_flagged" if case == "resumed" else "answer_expected"
    args = ["run", "--data", "qa", "--model", f"python:harness_test_models:{model}",
            "--metric", "token_f1", "--judge", "correctness",
            "--judge-model", "python:harness_test_models:judge_yes", "--json"]  # fmt: skip
    code, out, err = invoke(*args, *(["--by", "final_decision"] if case == "by" else []), env=env)
    if case == "resumed":  # the even rows failed: resumed, only they run again
        assert code == 1, err
        flag.unlink()
        code, out, err = invoke("run", "--resume", json.loads(out)["run_id"], "--json", env=env)
    assert code == 0, err
    kept = 20 if case == "by" else 0
    assert alive_at_end == [before + kept] * (2 if case == "resumed" else 1)
    result = json.loads(out)
    assert result["rows"] == 20 and result["status"] == "finished" and result["errors"] == 0
    assert result["metrics"]["token_f1"]["count"] == 20
    assert bool(result.get("slices")) == (case == "by")
    # Every row's trace was built (from its example) before the example was let go.
    assert len(_mlflow_traces(home, result["mlflow_run_id"])) == 20


@pytest.mark.parametrize("case", ["no-mlflow", "mlflow", "by"])
def test_a_runs_end_reads_the_rows_text_only_for_the_steps_that_show_it(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The aggregates read each score's value, not its text, and count the rows without
    reading them (without ``--by`` or batch metrics, in SQL: no DataFrame); the MLflow
    run's table is made by the MLflow worker of the rows it received (a fresh run's: it
    reads nothing back here; ``open_table`` is its fallback); ``--by`` slices read the
    rows. A run without MLflow reads no text back at all."""
    from harness.runner import table_rows
    from harness.store import runs as run_store

    reads: list[str] = []
    names = ("load_outputs", "load_scores", "load_outputs_and_scores", "load_table_rows",
             "load_score_values")  # fmt: skip
    for module, name in [*((run_store, n) for n in names), (table_rows, "open_table")]:

        def spy(*args: object, _real: object = getattr(module, name), _name: str = name) -> object:
            reads.append(_name)
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(module, name, spy)
    args = ["run", "--data", "qa", "--model", "python:harness_test_models:answer_some",
            "--metric", "token_f1", "--judge", "correctness",
            "--judge-model", "python:harness_test_models:judge_yes", "--json"]  # fmt: skip
    extra = {"no-mlflow": ["--no-mlflow"], "mlflow": [], "by": ["--by", "final_decision"]}
    code, out, err = invoke(*args, *extra[case])
    assert code == 0, err
    expected = {  # the MLflow run's table: made by the worker, of the rows it got
        "no-mlflow": [],
        "mlflow": [],
        "by": ["load_outputs", "load_score_values"],
    }
    assert reads == expected[case]
    result = json.loads(out)
    assert result["rows"] == 20 and result["status"] == "finished"
    assert result["metrics"]["token_f1"]["count"] == 20 and result["metrics"]["correctness"]
    assert bool(result.get("slices")) == (case == "by")
    if case != "no-mlflow":  # the table the MLflow run logged, from the whole read
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
        path = client.download_artifacts(result["mlflow_run_id"], "eval_results_table.json")
        table = json.loads(Path(path).read_text(encoding="utf-8"))
        columns = table["columns"]
        assert len(table["data"]) == 20
        assert {row[columns.index("correctness/rationale")] for row in table["data"]} == {"it is"}
        assert all(row[columns.index("output")] for row in table["data"])


def test_the_report_reaches_mlflow_as_a_file_not_through_the_workers_pipe(
    qa: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's process writes its report to a file beside the store, and the MLflow
    worker moves it into the run's artifacts (as the per-row table is): the pipe never
    carries it. The first run is logged with MLflow's API (forced by a mode the SQL path
    does not write), the second with SQL: both logged the report the run wrote, and left
    no file behind."""
    from mlflow import MlflowClient

    from harness.runner.mlflow_worker import MlflowWorker

    finishes: list[tuple[object, ...]] = []
    real = MlflowWorker._send_within  # what the run's end sends its messages with

    def send(self: MlflowWorker, message: tuple[object, ...], stop: object) -> None:
        if message[0] == "finish":
            finishes.append(message)
        real(self, message, stop)

    monkeypatch.setattr(MlflowWorker, "_send_within", send)
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    for n in (1, 2):
        if n == 1:
            monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "true")
        else:
            monkeypatch.delenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED")
        report = tmp_path / f"report-{n}.html"
        code, out, err = invoke(
            "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
            "--metric", "token_f1", "--json", "--report", str(report),
        )  # fmt: skip
        assert code == 0, err
        record, rendered = finishes[-1][1:]
        assert record.report_html is None  # type: ignore[attr-defined]
        assert rendered.report_file is not None  # type: ignore[attr-defined]
        run_id = json.loads(out)["mlflow_run_id"]
        written = client.get_run(run_id).data.tags["harness.traces"]
        assert written.endswith("(sql-direct)") == (n == 2), written  # the API's, then SQL
        logged = Path(client.download_artifacts(run_id, "report.html", str(tmp_path / str(n))))
        assert logged.read_bytes() == report.read_bytes()
        assert list((home / "mlruns").rglob(".harness-report-*")) == []
    assert len(finishes) == 2


def test_a_run_of_thousands_of_rows_counts_its_failures_with_separators(
    home: Path, tmp_path: Path
) -> None:
    """'error: 600 of 1200 rows failed (model: 600 rows: ...)' wrote the counts without the
    thousands separator every other message uses (1,200 rows)."""
    rows = tmp_path / "big.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "input": f"q{i}", "expected": f"a{i}"})
                            + "\n" for i in range(1200)))  # fmt: skip
    flag = tmp_path / "flag"
    flag.touch()
    assert invoke("data", "import", str(rows), "--name", "big")[0] == 0
    code, _, err = invoke("run", "--data", "big", "--model",
                          "python:harness_test_models:fail_while_flagged", "--metric",
                          "exact_match", "--no-mlflow",
                          env={"HARNESS_TEST_FLAG": str(flag)})  # fmt: skip
    assert code == 1
    assert "600 of 1,200 rows failed (model: 600 rows: " in err


def test_the_summary_writes_counts_with_thousands_separators(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of 2,400 rows, 1,200 of them failed, said "(2,400 rows, 1200 failed, ...)" and
    "rows 1200" in its metric table, as did runs show ("2,400/2,400 rows, 1200 failed")."""
    from harness.data import import_dataframe

    rows = pd.DataFrame({"id": [str(i) for i in range(2400)], "input": ["q"] * 2400,
                         "expected": ["a"] * 2400})  # fmt: skip
    import_dataframe(rows, name="big")
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    model = "python:harness_test_models:fail_while_flagged"
    code, out, err = invoke("run", "--data", "big", "--model", model, "--metric", "exact_match",
                            "--run-name", "big", "--no-mlflow")  # fmt: skip
    assert code == 1, err
    assert "(2,400 rows, 1,200 failed, " in out
    [row] = [line for line in out.splitlines() if line.startswith("exact_match ")]
    assert row.split("│")[-1].strip() == "1,200"
    code, shown, err = invoke("runs", "show", "big")
    assert code == 0, err
    assert "2,400/2,400 rows, 1,200 failed" in shown.splitlines()[0]
    [row] = [line for line in shown.splitlines() if line.startswith("exact_match ")]
    assert row.split("│")[-1].strip() == "1,200"


def test_the_rows_done_when_the_last_row_starts_are_stored_while_the_last_ones_run(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once every row has started, the rows done are written (if no write is running):
    the last write, which the run's end waits for, holds only the rows still running
    then. It held every row done since the last timed write (~450 of a 1,000-row cold
    run: 0.04-0.05 s on the path to the exit, now 0.01-0.03 s)."""
    from harness.runner.batches import BatchWriter

    defaults = BatchWriter.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "seconds", 3600.0)  # no timed write, however slow
    written: list[int] = []
    real = BatchWriter._write

    def counted(self: BatchWriter, outputs: list[Any], *args: Any) -> None:
        written.append(len(outputs))
        real(self, outputs, *args)

    monkeypatch.setattr(BatchWriter, "_write", counted)
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
        "--metric", "token_f1", "--concurrency", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    # 4 row workers (2 per connection): the first to find no row left stores those done,
    # at least its own and at most all but the 3 others' in flight.
    assert len(written) == 2 and sum(written) == 20, written
    assert written[1] <= 3, written
    run_id = json.loads(out)["run_id"]
    assert query(home, f"SELECT count(*) FROM outputs WHERE run_id = '{run_id}'") == [(20,)]
