"""Naming the Spark session: flags, SPARK_REMOTE, harness.toml; nothing here starts Spark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, EnvironmentFault
from harness.runner.spark_session import SparkTarget, check_target, connect_address
from harness.runner.spark_session import _cores as cores


def test_the_flag_wins_over_spark_remote_which_wins_over_harness_toml() -> None:
    settings = {"spark": {"remote": "sc://toml:1", "master": "local[3]"}}
    env = {"SPARK_REMOTE": "sc://env:2"}
    assert SparkTarget.resolve(settings, remote="sc://flag:3", environ=env).remote == "sc://flag:3"
    assert SparkTarget.resolve(settings, environ=env).remote == "sc://env:2"
    assert SparkTarget.resolve(settings, environ={}).remote == "sc://toml:1"
    assert SparkTarget.resolve({"spark": {"master": "local[3]"}}, environ={}) == SparkTarget(
        None, None, "local[3]"
    )
    # pyspark's SPARK_REMOTE=local (an in-process server) is not a cluster to connect to.
    assert SparkTarget.resolve({}, environ={"SPARK_REMOTE": "local"}).remote is None


def test_a_connect_url_is_parsed_and_its_token_never_shown() -> None:
    assert connect_address("sc://10.0.0.5") == ("10.0.0.5", 15002)
    assert connect_address("sc://h.example.com:443/;token=abc;use_ssl=true") == (
        "h.example.com",
        443,
    )
    target = SparkTarget(remote="sc://h.example.com:443/;token=s3cret")
    assert target.where == "sc://h.example.com:443"
    for bad in ("http://h:1", "sc://", "sc://h:port", "h:15002"):
        with pytest.raises(ConfigError, match="neither sc://HOST:PORT"):
            SparkTarget.resolve({}, remote=bad, environ={})
    with pytest.raises(ConfigError) as caught:
        SparkTarget.resolve({}, remote="sc//h:1/;token=s3cret", environ={})
    assert "s3cret" not in str(caught.value)


def _answer_as_http2(listener: Any) -> None:
    """Accept one connection and answer its HTTP/2 preface with a SETTINGS frame, as a
    gRPC server does, then close."""
    connection = listener.accept()[0]
    with connection:
        connection.recv(64)
        connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")


def test_a_server_that_takes_the_connection_but_never_answers_is_refused_in_time() -> None:
    """pyspark's client waits for an answer for ten minutes and more, saying nothing, and a
    Ctrl-C in that wait was only noted: a port that takes connections and never speaks (a
    server still starting, another program) is refused after CONNECT_TIMEOUT_S."""
    import http.server
    import socket
    import threading

    from harness.runner import spark_session
    from harness.runner.spark_session import _open_connect

    listener = socket.create_server(("127.0.0.1", 0))  # the backlog accepts; nobody reads
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()  # answers 505 to h2
    try:
        for port in (listener.getsockname()[1], web.server_address[1]):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(spark_session, "CONNECT_TIMEOUT_S", 0.5)
                with pytest.raises(EnvironmentFault) as caught:
                    _open_connect(f"sc://127.0.0.1:{port}")
            assert str(caught.value) == (
                f"the server at sc://127.0.0.1:{port} takes connections but does not answer "
                "as a Spark Connect server (gRPC) within 0.5 s: is it one, and is it ready?"
            )
    finally:
        listener.close()
        web.shutdown()
        web.server_close()


def test_a_token_the_connect_client_cannot_parse_is_not_shown() -> None:
    """pyspark's client (real, no server behind the port) refuses a token with base64's
    "=" padding and quotes the whole parameter; harness's error showed it."""
    import socket
    import threading

    from harness.runner.spark_session import _open_connect

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=_answer_as_http2, args=(listener,), daemon=True).start()
    token = "c2VjcmV0LXRva2VuLXZhbHVl=="
    try:
        with pytest.raises(ConfigError) as caught:  # localhost: a token without TLS
            _open_connect(f"sc://localhost:{port}/;use_ssl=false;token={token}")
    finally:
        listener.close()
    message = str(caught.value)
    assert message.startswith(f"cannot use the Spark Connect server at sc://localhost:{port}: ")
    assert "token=***" in message and token.rstrip("=") not in message


def test_the_cores_of_a_local_master() -> None:
    assert cores("local") == 1
    assert cores("local[4]") == 4
    assert cores("local[4,2]") == 4
    assert cores("local-cluster[2,3,1024]") == 6
    assert cores("local[*]") is None and cores("yarn") is None and cores(None) is None


def test_unknown_spark_settings_are_refused(home: Path) -> None:
    from harness.runner.spark import check_ready

    with pytest.raises(ConfigError, match="unknown setting"):
        check_ready({"spark": {"remote": "sc://h:1", "workers": 2}})
    target = check_ready({"spark": {"remote": "sc://h:1", "rows_per_task": 3}})
    assert target == SparkTarget("sc://h:1")


def test_without_the_connect_client_a_remote_says_what_to_install(tmp_path: Path) -> None:
    # A Python where pyspark imports but its Connect client's dependencies do not.
    shim = tmp_path / "no-grpc"
    (shim / "grpc").mkdir(parents=True)
    (shim / "grpc" / "__init__.py").write_text("raise ImportError('no grpc here')\n")
    code = (
        "from harness.runner.spark_session import SparkTarget, check_target\n"
        "check_target(SparkTarget(remote='sc://127.0.0.1:1'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(shim)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "Spark Connect needs pyspark's Connect client: pip install 'harness[spark]'" in (
        done.stderr
    )


def test_a_local_target_needs_only_pyspark() -> None:
    check_target(SparkTarget(master="local[2]"))  # imports pyspark, starts nothing


def test_the_cli_refuses_contradicting_spark_flags_before_anything_runs(home: Path) -> None:
    harness = str(Path(sys.executable).parent / "harness")
    command = [harness, "run", "--data", "qa", "--model", "echo",
               "--spark", "databricks", "--spark-remote", "sc://h:1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --spark databricks and --spark-remote name two clusters; give one of them"
    ]
    assert not (home / "harness.duckdb").exists()
    done = subprocess.run([*command[:6], "--profile", "ci"], capture_output=True, text=True)
    assert done.returncode == 2 and "--profile names" in done.stderr
    assert done.stdout == ""


def test_a_connect_server_that_cannot_be_reached_after_cached_rows_is_exit_74(
    home: Path, qa_file: Path
) -> None:
    """The session opens after the driver has stored what the cache answers (a cached rerun
    needs no Spark): a closed port then is the environment's fault, one line and exit 74
    with the run to resume, not exit 2 ("bad input, nothing written") as it was."""
    import json
    import socket

    from click.testing import CliRunner

    from harness.cli import cli
    from harness.testing import FakeLLMServer

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"sc://127.0.0.1:{probe.getsockname()[1]}"
    run = ["run", "--data", "qa", "--model", "openai:/m", "--no-mlflow", "--json"]
    with FakeLLMServer() as fake, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        env.setenv("OPENAI_API_KEY", "sk-test")
        assert (
            CliRunner().invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
        )
        cached = CliRunner().invoke(cli, [*run, "--limit", "2"])
        assert cached.exit_code == 0, cached.stderr
        done = CliRunner().invoke(cli, [*run, "--spark-remote", closed])
    assert done.exit_code == 74, done.stderr
    stored = json.loads(done.stdout)
    assert stored["status"] == "failed" and stored["rows_done"] == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach the Spark Connect server at {closed}: Connection refused; "
        f"fix that, then `harness run --resume {stored['run_id']}`"
    ]


def test_a_connect_url_pyspark_cannot_read_is_refused_before_the_run(
    home: Path, qa_file: Path
) -> None:
    """A parameter pyspark's client refuses (`;foo`, a path) was found only once the server
    answered: the run and its cached rows were stored, then 'error: cannot use the Spark
    Connect server ...', exit 2 ("nothing written"). It is refused before the run now (the
    port here is closed: before, the check of the server came first, exit 74)."""
    import json
    import socket

    from click.testing import CliRunner

    from harness.cli import cli

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"sc://127.0.0.1:{probe.getsockname()[1]}"
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    for bad, why in (
        (f"{closed}/;foo;token=s3cret", "Parameter 'foo' should be provided as a key-value"),
        (f"{closed}/path;token=s3cret", "The path component '/path' must be empty"),
    ):
        done = runner.invoke(cli, ["run", "--data", "qa", "--model", "echo", "--spark-remote", bad])
        assert done.exit_code == 2, done.output
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: Spark remote {closed}: [INVALID_CONNECT_URL] ")
        assert why in line and "s3cret" not in line
        assert done.stdout == ""
    listed = runner.invoke(cli, ["runs", "list", "--json"])
    assert json.loads(listed.stdout) == []


def test_an_empty_spark_remote_is_refused_not_taken_for_no_flag(home: Path, qa_file: Path) -> None:
    """`--spark-remote "$URL"` with URL unset ran the whole run locally, exit 0, and
    `data import --spark-table T --spark-remote ""` read T from a local session."""
    import json

    from click.testing import CliRunner

    from harness.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    echo = runner.invoke(cli, ["run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json"])
    run_id = json.loads(echo.stdout)["run_id"]
    expected = "error: --spark-remote needs sc://HOST:PORT or databricks, got nothing"
    for command in (
        ["run", "--data", "qa", "--model", "echo", "--limit", "1", "--spark-remote", ""],
        ["data", "import", "--spark-table", "t", "--name", "t", "--spark-remote", ""],
        ["runs", "export", run_id, "--spark-table", "t", "--spark-remote", " "],
    ):
        done = runner.invoke(cli, command)
        assert done.exit_code == 2, done.output
        assert done.stderr.strip().splitlines() == [expected]
    assert [
        run["run_id"] for run in json.loads(runner.invoke(cli, ["runs", "list", "--json"]).stdout)
    ] == [run_id]
    with pytest.raises(ConfigError, match="^spark_remote= needs sc://HOST:PORT"):
        import harness

        harness.evaluate(model="echo", data=[{"inputs": "a?"}], spark_remote="")
