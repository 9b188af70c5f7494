"""API keys never leave the process: not in DuckDB, the cache, MLflow, exports or any output.

Sentinel keys go into the environment; the real CLI (subprocesses) runs against the fake
server with the cache, MLflow logging, judges, a failing run, a dry run and a cache export;
then every byte of every file under the test's folder (the project home included), and all
stdout and stderr, are searched for the keys. DuckDB compresses strings, so its tables are
also searched through SQL. The server's record proves the keys were really sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from harness.testing import FakeLLMServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def sentinel(name: str) -> str:
    return f"sk-{name}-SENTINEL-{uuid.uuid4().hex}"


def test_no_key_is_stored_or_printed(
    fake: FakeLLMServer, home: Path, tmp_path: Path, qa_file: Path
) -> None:
    keys = {"OPENAI_API_KEY": sentinel("openai"), "ANTHROPIC_API_KEY": sentinel("anthropic")}
    env = {
        **os.environ,
        **keys,
        "HARNESS_HOME": str(home),
        "OPENAI_BASE_URL": fake.openai_base_url,
        "ANTHROPIC_BASE_URL": fake.url,
        "PYTHONPATH": str(REPO),
    }
    outputs: list[str] = []

    def harness(*args: str, expect: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "harness", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs.extend((done.stdout, done.stderr))
        assert done.returncode == expect, done.stderr
        return done.stdout

    (home / "harness.toml").write_text(
        "[calls]\nmax_retries = 1\nretry_base_delay_s = 0.01\n"
        '[prices]\n"openai:/gpt-test" = [1, 2]\n"anthropic:/claude-test" = [3, 4]\n'
    )
    harness("data", "import", str(qa_file), "--name", "qa")
    run = [
        "run",
        "--data",
        "qa",
        "--model",
        "openai:/gpt-test",
        "--limit",
        "5",
        "--judge",
        "correctness",
        "--judge-model",
        "anthropic:/claude-test",
        "--system",
        "Answer briefly.",
        "--param",
        "temperature=0",
        "--max-cost",
        "1",
    ]
    first = json.loads(harness(*run, "--json"))
    assert first["errors"] == 0 and first["mlflow_run_id"]
    harness(*run, "--no-mlflow")  # again, from the cache, with the human summary
    harness(*run, "--dry-run")
    # Every call fails, and the server's error message repeats the key it was sent (a
    # careless proxy): the errors are stored, printed and logged, scrubbed.
    fake.configure(error_500_rate=1.0, echo_key_in_errors=True)
    failed = harness(*run, "--cache", "refresh", "--json", expect=1)
    fake.configure(error_500_rate=0.0, echo_key_in_errors=False)
    assert "(sent with key ***)" in json.loads(failed)["error_reasons"][0]["error"]
    harness("runs", "list", "--json")
    harness("runs", "show", first["run_id"], "--rows", "--json")
    harness("cache", "stats", "--json")
    harness("cache", "export", str(tmp_path / "cassette.jsonl"))
    harness("runs", "export", first["run_id"], str(tmp_path / "run.jsonl"))
    harness("runs", "export", first["run_id"], str(tmp_path / "run.parquet"))
    harness("compare", str(tmp_path / "run.jsonl"), first["run_id"], "--json")
    summary = tmp_path / "summary.md"
    env["GITHUB_STEP_SUMMARY"], env["GITHUB_ACTIONS"] = str(summary), "true"
    harness("check", first["run_id"], "--baseline", str(tmp_path / "run.parquet"),
            "--junit", str(tmp_path / "junit.xml"), expect=3)  # fmt: skip  # 5 rows: can't tell
    assert summary.stat().st_size > 0 and (tmp_path / "junit.xml").stat().st_size > 0

    sent = json.dumps(fake.stats()["requests"])
    assert all(key in sent for key in keys.values())  # the keys were really used

    needles = [k.encode() for k in keys.values()]
    needles += [k.split("SENTINEL-")[1].encode() for k in keys.values()]  # masked echoes
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "harness.duckdb" for p in files)
    assert any(p.suffix == ".db" and "mlruns" in p.parts for p in files)
    assert any("cache" in p.parts for p in files)
    assert (tmp_path / "cassette.jsonl").stat().st_size > 0
    leaks = [str(p) for p in files for n in needles if n in p.read_bytes()]
    assert leaks == []
    assert [o for o in outputs for k in keys.values() if k in o] == []

    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        assert {"runs", "outputs", "scores"} <= set(tables)
        stored = "".join(str(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    finally:
        con.close()
    assert "HTTP 500" in stored and "sent with key ***" in stored  # the echoes, scrubbed...
    assert all(k not in stored for k in keys.values())  # ...and no key


@pytest.mark.parametrize(
    ("variable", "url", "problem"),
    [
        ("OPENAI_BASE_URL", "http://user:{key}@127.0.0.1:{port}/v1", "carries credentials"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:{port}/v1?api_key={key}", "has a query string"),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:{port}/?key={key}", "has a query string"),
    ],
    ids=["user-password", "openai-query", "anthropic-query"],
)
def test_a_key_in_a_base_url_is_refused_before_anything_is_sent_or_stored(
    fake: FakeLLMServer, home: Path, tmp_path: Path, qa_file: Path, variable: str, url: str,
    problem: str,
) -> None:  # fmt: skip
    """A base URL is part of every cache key, cassette and replay message, and user:password
    beside the key's header made the HTTP client raise mid-run (a traceback, a failed run)."""
    key = sentinel("url")
    port = fake.url.rsplit(":", 1)[1].strip("/")
    model = "openai:/gpt-test" if variable.startswith("OPENAI") else "anthropic:/claude-test"
    env = {**os.environ, "HARNESS_HOME": str(home), "PYTHONPATH": str(REPO),
           "OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-test",
           variable: url.format(key=key, port=port)}  # fmt: skip

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    assert harness("data", "import", str(qa_file), "--name", "qa").returncode == 0
    sent_before = fake.stats()["requests_total"]
    done = harness("run", "--data", "qa", "--model", model, "--limit", "2", "--no-mlflow")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: the base URL of ") and problem in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert key not in done.stderr + done.stdout
    assert fake.stats()["requests_total"] == sent_before
    assert "no runs yet" in harness("runs", "list").stdout
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaks == []


def test_a_key_quoted_by_the_users_own_failing_code_is_scrubbed(
    home: Path, tmp_path: Path, qa_file: Path
) -> None:
    """A python: model, a row metric and a batch metric raise with the environment's key in
    their messages; harness stores, prints and logs the failures, each without the key."""
    key = sentinel("user-code")
    env = {**os.environ, "HARNESS_HOME": str(home), "OPENAI_API_KEY": key,
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}  # fmt: skip
    harness = [sys.executable, "-m", "harness"]
    imported = subprocess.run([*harness, "data", "import", str(qa_file), "--name", "qa"],
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    done = subprocess.run(
        [*harness, "run", "--data", "qa", "--model", "python:harness_test_models:leaks_its_key",
         "--metric", "python:harness_test_metrics:leaks_its_key",
         "--metric", "python:harness_test_metrics:leaks_its_key_in_a_batch", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert key not in done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["errors"] > 0 and result["mlflow_run_id"]
    shown = json.dumps(result)
    # The failures are there, each with *** where the key was.
    assert "could not call the backend with key ***" in shown + done.stderr
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        stored = str(con.execute("SELECT error FROM outputs").fetchall())
        stored += str(con.execute("SELECT error FROM scores").fetchall())
        stored += str(con.execute("SELECT * FROM runs").fetchall())
    finally:
        con.close()
    assert "with key ***" in stored and "scoring service refused key ***" in stored
    assert "batch scorer refused key ***" in stored + done.stderr
    assert key not in stored
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("mlruns" in p.parts for p in files)
    assert [str(p) for p in files if key.encode() in p.read_bytes()] == []


def test_what_the_users_code_says_is_scrubbed_of_keys_under_names_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/config.md's own example keeps a key in MY_SERVER_KEY (api_key_env), which no
    suffix of the known key variables matched: a failing python: model quoting it kept it."""
    from harness.secrets import scrub_secrets

    key, password = sentinel("server"), "hunter2-hunter2"
    monkeypatch.setenv("MY_SERVER_KEY", key)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", password)
    monkeypatch.setenv("OPENAI_API_KEY", key + "-longer")  # holds the other: masked whole
    monkeypatch.setenv("SHORT_KEY", "abc")  # too short to be told from a word
    monkeypatch.setenv("REPORT_TITLE", "quarterly-numbers")  # not a key
    said = f"refused {key}-longer, then {key}; db {password}; abc; quarterly-numbers"
    assert scrub_secrets(said) == "refused ***, then ***; db ***; abc; quarterly-numbers"


def test_a_short_secret_is_redacted_only_where_it_stands_alone() -> None:
    """postgresql://u:x@h/db made every x of MLflow's error ***, and ?sslmode=require every
    'require': a secret shorter than a key is masked where it is a word of its own."""
    from harness.secrets import redact
    from harness.tracking.sync_target import uri_secrets

    secrets = uri_secrets("postgresql://u:x@h/db?sslmode=require&token=tok-longer-than-8")
    said = "(psycopg2) index x refused u:x@h: require SSL, required; tok-longer-than-8 expired"
    assert redact(said, secrets) == (
        "(psycopg2) index *** refused u:***@h: *** SSL, required; *** expired"
    )


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('[providers.openai]\nbase_url = "http://user:{key}@127.0.0.1:9/v1"\n',
         "[providers.openai] base_url carries credentials (user:password@)"),
        ('[providers.ollama]\nbase_url = "http://127.0.0.1:9/?token={key}"\n',
         "[providers.ollama] base_url has a query string"),
        ('[providers.databricks]\nhost = "https://x:{key}@dbc.example"\n',
         "[providers.databricks] host carries credentials"),
    ],
    ids=["user-password", "query", "databricks-host"],
)  # fmt: skip
def test_a_key_in_a_harness_toml_url_is_refused_when_the_file_is_read(
    home: Path, tmp_path: Path, table: str, problem: str
) -> None:
    """docs/config.md: every key of harness.toml is checked before anything runs; a base URL
    holding a key was refused only by a run that used it (`harness judges list` took it)."""
    key = sentinel("toml")
    (home / "harness.toml").write_text(table.format(key=key), encoding="utf-8")
    env = {**os.environ, "HARNESS_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "harness", "judges", "list"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith(f"error: {home.resolve()}/harness.toml: {problem}")
    assert len(done.stderr.strip().splitlines()) == 1 and key not in done.stderr + done.stdout


@pytest.mark.parametrize("provider", ["openai", "anthropic", "databricks", "ollama"])
@pytest.mark.parametrize("written", ["token", "url"])
def test_a_key_refused_in_harness_toml_is_sent_where_that_provider_takes_one(
    home: Path, provider: str, written: str
) -> None:
    """The refusal of a key in [providers.databricks] or [providers.ollama] said to "name it
    with api_key_env", a key those tables refuse in turn (unknown key api_key_env); it now
    says where that provider's key goes: a Databricks token in DATABRICKS_TOKEN or a
    profile, and Ollama is sent none."""
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.config import PROVIDER_SETTINGS
    from harness.errors import ConfigError
    from harness.providers import resolve

    key = sentinel("advice")
    url_key = "host" if provider == "databricks" else "base_url"
    line = f'token = "{key}"' if written == "token" else f'{url_key} = "http://u:{key}@h.example"'
    (home / "harness.toml").write_text(f"[providers.{provider}]\n{line}\n", encoding="utf-8")
    done = CliRunner().invoke(cli, ["judges", "list"])
    assert done.exit_code == 2 and key not in done.stderr + done.stdout
    [said] = done.stderr.strip().splitlines()
    assert ("api_key_env" in said) == ("api_key_env" in PROVIDER_SETTINGS[provider]), said
    if provider == "databricks":
        assert "DATABRICKS_TOKEN" in said and "profile" in said
    if written == "token":  # the providers refuse it alike when handed it without the file
        with pytest.raises(ConfigError) as refused:
            resolve(f"{provider}:/m", {"token": key})
        assert ("api_key_env" in str(refused.value)) == (provider in ("openai", "anthropic"))
