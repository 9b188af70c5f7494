"""`--spark databricks [--profile NAME]`: a DatabricksSession from ~/.databrickscfg profiles.

Databricks itself cannot run here, so `databricks-connect` is replaced by a stand-in
package (written below, put first on the import path) whose `DatabricksSession.builder`
records what harness asked of it and returns a session on the local Spark Connect server
(Databricks Connect is Spark Connect with Databricks' authentication). Everything else is
real: the profile file, harness's reading of it, the run on the server's executors.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from spark_helpers import TESTS, cli_env, harness

from harness.errors import ConfigError, EnvironmentFault
from harness.runner.spark_session import SparkTarget, check_target, open_session
from harness.testing import FakeLLMServer, SparkConnectServer

pytestmark = pytest.mark.timeout(900)

TOKEN = "dapi-profile-secret-0123"

FAKE_DATABRICKS_CONNECT = '''
"""Stand-in for databricks-connect in harness's tests (Databricks cannot run there)."""
import json
import os


class _Builder:
    def __init__(self):
        self.calls = []

    def profile(self, name):
        self.calls.append(["profile", name])
        return self

    def getOrCreate(self):
        with open(os.environ["FAKE_DBCONNECT_LOG"], "a") as log:
            log.write(json.dumps(self.calls) + "\\n")
        if os.environ.get("FAKE_DBCONNECT_FAIL"):
            raise RuntimeError("401 Unauthorized: token " + os.environ["FAKE_DBCONNECT_FAIL"])
        if os.environ.get("FAKE_DBCONNECT_LOOKUP"):  # look the cluster up, as the real one
            from databricks.sdk import WorkspaceClient  # does, with the real SDK
            from databricks.sdk.core import Config

            profile = dict(self.calls).get("profile")
            config = Config(profile=profile, retry_timeout_seconds=1)
            if os.environ["FAKE_DBCONNECT_LOOKUP"] == "grpc":  # the session's own channel
                import grpc

                channel = grpc.insecure_channel(config.host.split("//")[-1])
                channel.unary_unary("/spark.connect.SparkConnectService/Config")(b"", timeout=5)
            WorkspaceClient(config=config).clusters.get(config.cluster_id)
        if "FAKE_DBCONNECT_REMOTE" not in os.environ:
            return _Unused()  # a test that only looks at what harness asked for
        from pyspark.sql.connect.session import SparkSession

        return SparkSession.builder.remote(os.environ["FAKE_DBCONNECT_REMOTE"]).create()


class _Unused:
    def stop(self):
        pass


class _Meta(type):
    @property
    def builder(cls):
        return _Builder()


class DatabricksSession(metaclass=_Meta):
    pass
'''


@pytest.fixture
def fake_connect(tmp_path: Path) -> Path:
    """A folder holding the stand-in `databricks.connect` package."""
    root = tmp_path / "fake-databricks-connect"
    (root / "databricks" / "connect").mkdir(parents=True)
    (root / "databricks" / "__init__.py").write_text(  # the namespace, as databricks-sdk's
        '__path__ = __import__("pkgutil").extend_path(__path__, __name__)\n'
    )
    (root / "databricks" / "connect" / "__init__.py").write_text(FAKE_DATABRICKS_CONNECT)
    return root


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "databrickscfg"
    path.write_text(
        "[DEFAULT]\nhost = https://adb-1.azuredatabricks.net\n"
        f"token = {TOKEN}\ncluster_id = 0101-default\n\n"
        "[ci]\nhost = adb-2.azuredatabricks.net\n"
        f"token = {TOKEN}\ncluster_id = 0202-ci\n\n"
        f"[no-cluster]\nhost = https://adb-3.azuredatabricks.net\ntoken = {TOKEN}\n"
    )
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(path))
    for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLUSTER_ID"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def in_process(fake_connect: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in as `databricks.connect` in this process; returns its call log."""
    spec = importlib.util.spec_from_file_location(
        "databricks.connect", fake_connect / "databricks" / "connect" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "databricks.connect", module)
    log = tmp_path / "builder.log"
    monkeypatch.setenv("FAKE_DBCONNECT_LOG", str(log))
    return log


def builder_calls(log: Path) -> list[Any]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def target(**flags: Any) -> SparkTarget:
    found = SparkTarget.from_flags({}, spark="databricks", **flags)
    assert found is not None
    return found


def test_a_run_with_spark_databricks_uses_the_profile_and_runs_on_its_cluster(
    connect_server: SparkConnectServer,
    fake: FakeLLMServer,
    fake_connect: Path,
    profiles: Path,
    home: Path,
    qa_file: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "builder.log"
    env = cli_env(
        home,
        fake,
        PYTHONPATH=f"{fake_connect}:{TESTS}",
        DATABRICKS_CONFIG_FILE=str(profiles),
        FAKE_DBCONNECT_LOG=str(log),
        FAKE_DBCONNECT_REMOTE=connect_server.url,
    )
    assert harness("data", "import", str(qa_file), "--name", "qa", env=env).returncode == 0
    done = harness(
        "run", "--data", "qa", "--model", "openai:/dbx", "--metric", "token_f1",
        "--no-mlflow", "--json", "--spark", "databricks", "--profile", "ci", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    run = json.loads(done.stdout)
    assert run["rows_done"] == 20 and run["calls"]["model"]["requests"] == 20
    assert fake.stats()["requests_total"] == 20  # sent by the "cluster's" executors
    assert builder_calls(log) == [[["profile", "ci"]]]
    assert TOKEN not in done.stdout + done.stderr


def test_the_profile_is_read_as_harness_sync_reads_it(
    in_process: Path, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = open_session(target(profile="ci"))
    assert handle.owned
    assert handle.where == (
        f"Databricks cluster 0202-ci of https://adb-2.azuredatabricks.net ({profiles} [ci])"
    )
    assert handle.ui_url == "https://adb-2.azuredatabricks.net/#setting/clusters/0202-ci/sparkUi"
    # No --profile: DATABRICKS_CONFIG_PROFILE, else [DEFAULT].
    open_session(target())
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "ci")
    open_session(target())
    assert builder_calls(in_process) == [
        [["profile", "ci"]],
        [["profile", "DEFAULT"]],
        [["profile", "ci"]],
    ]
    # [spark] remote = "databricks" and profile = ... in harness.toml do the same.
    settings = {"spark": {"remote": "databricks", "profile": "ci"}}
    assert SparkTarget.resolve(settings) == SparkTarget("databricks", "ci")


def test_credentials_from_the_environment_need_no_profile(
    in_process: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-9.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("DATABRICKS_CLUSTER_ID", "0909-env")
    handle = open_session(target())
    assert builder_calls(in_process) == [[]]  # the builder reads the same variables itself
    assert "0909-env" in handle.where and "environment" in handle.where


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"profile": "nope"}, "Databricks profile 'nope' not found in {cfg} "
                              "(profiles: DEFAULT, ci, no-cluster)"),
        ({"profile": "no-cluster"}, "--spark databricks needs a cluster to run on: add "
                                    "cluster_id = ... (or serverless_compute_id = auto) to "
                                    "{cfg} [no-cluster], or set DATABRICKS_CLUSTER_ID"),
    ],
)  # fmt: skip
def test_a_bad_profile_fails_before_the_run_in_one_line(
    in_process: Path, profiles: Path, flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_target(target(**flags))
    assert str(caught.value) == message.format(cfg=profiles)
    assert not in_process.exists()  # no session was asked for


def test_without_databricks_connect_the_run_says_what_to_install(
    profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "databricks.connect", None)  # not installed
    with pytest.raises(ConfigError, match=r"needs Databricks Connect: pip install"):
        check_target(target())


def test_a_connection_failure_is_one_line_without_the_token(
    in_process: Path, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DBCONNECT_FAIL", TOKEN)  # an error that echoes the token
    with pytest.raises(ConfigError) as caught:
        open_session(target(profile="ci"))
    message = str(caught.value)
    assert message.startswith("cannot connect to Databricks cluster 0202-ci of ")
    assert TOKEN not in message and "\n" not in message


def test_a_workspace_that_cannot_be_reached_after_cached_rows_is_exit_74(
    in_process: Path,
    profiles: Path,
    home: Path,
    qa_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As an unreachable Spark Connect server (tests/runner/test_spark_session.py): the
    session opens after the driver has stored what the cache answers, so a workspace the
    network cannot reach is the environment's fault, exit 74 with the run to resume, not
    exit 2 ("bad input, nothing written") as it was. Databricks cannot run here: the
    stand-in looks the cluster up with the real databricks-sdk, at a closed local port."""
    from click.testing import CliRunner

    from harness.cli import cli

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    profiles.write_text(f"[ci]\nhost = {closed}\ntoken = {TOKEN}\ncluster_id = 0202-ci\n")
    monkeypatch.setenv("FAKE_DBCONNECT_LOOKUP", "1")
    run = ["run", "--data", "qa", "--model", "openai:/m", "--no-mlflow", "--json"]
    with FakeLLMServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        imported = CliRunner().invoke(cli, ["data", "import", str(qa_file), "--name", "qa"])
        assert imported.exit_code == 0, imported.stderr
        cached = CliRunner().invoke(cli, [*run, "--limit", "2"])
        assert cached.exit_code == 0, cached.stderr
        done = CliRunner().invoke(cli, [*run, "--spark", "databricks", "--profile", "ci"])
    assert done.exit_code == 74, done.stderr
    stored = json.loads(done.stdout)
    assert stored["status"] == "failed" and stored["rows_done"] == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot reach Databricks cluster 0202-ci of {closed} ({profiles} [ci]): "
        f"Connection refused; fix that, then `harness run --resume {stored['run_id']}`"
    )
    assert TOKEN not in done.stdout + done.stderr


def test_a_grpc_channel_that_cannot_connect_is_the_environments_fault(
    in_process: Path, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Databricks Connect's gRPC channel to a closed port (real grpc, the stand-in's call)
    fails with UNAVAILABLE: exit 74, its details as the reason, no token."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    profiles.write_text(f"[ci]\nhost = {closed}\ntoken = {TOKEN}\ncluster_id = 0202-ci\n")
    monkeypatch.setenv("FAKE_DBCONNECT_LOOKUP", "grpc")
    with pytest.raises(EnvironmentFault) as caught:
        open_session(target(profile="ci"))
    message = str(caught.value)
    assert message.startswith(f"cannot reach Databricks cluster 0202-ci of {closed} (")
    assert message.endswith("Connection refused") and "\n" not in message
    assert TOKEN not in message


def test_spark_flags_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ConfigError, match="--profile names"):
        SparkTarget.from_flags({}, profile="ci")
    with pytest.raises(ConfigError, match="name two clusters"):
        SparkTarget.from_flags({}, spark="databricks", remote="sc://h:1")
    with pytest.raises(ConfigError, match="needs --spark databricks"):
        SparkTarget.from_flags({}, remote="sc://h:1", profile="ci")
    with pytest.raises(ConfigError, match="takes no value or `databricks`"):
        SparkTarget.from_flags({}, spark="yarn")
    assert SparkTarget.from_flags({}) is None
