"""A real Spark Connect server for the tests of this folder, started once per session.

The server is pyspark's own ``sbin/start-connect-server.sh`` (the pip package ships it) in
the foreground, bound to 127.0.0.1 on free ports (gRPC and UI), with ``local[2]`` executors
and a warehouse in a temporary folder. Its environment is fixed when it starts, as a
cluster's is: the executors reach the fake LLM server, hold ``OPENAI_API_KEY`` and never
``ANTHROPIC_API_KEY``. It is stopped (its process group) at the end of the session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spark_helpers import KEY, ConnectServer

from harness.testing import FakeLLMServer

START_TIMEOUT_S = 420  # a JVM and a Spark context on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Spark Connect server did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="session")
def connect_server(
    llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConnectServer]:
    import pyspark

    folder = tmp_path_factory.mktemp("spark-connect")
    spark_home = Path(pyspark.__file__).parent
    port, ui_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))},
        "SPARK_HOME": str(spark_home),
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_PID_DIR": str(folder / "pids"),  # not /tmp: other suites run servers too
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "OPENAI_BASE_URL": llm.openai_base_url,
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
    }
    env.pop("ANTHROPIC_API_KEY", None)
    log = folder / "server.log"
    command = [
        str(spark_home / "sbin" / "start-connect-server.sh"), "--wait",
        "--master", "local[2]",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", f"spark.ui.port={ui_port}",
        "--conf", "spark.port.maxRetries=0",  # the UI on its port, or no server
        "--conf", f"spark.sql.warehouse.dir={folder / 'warehouse'}",
        "--conf", "spark.driver.memory=1g",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_port(port, process, log)
        yield ConnectServer(
            f"sc://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", folder / "warehouse", log
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the script, spark-submit and the JVM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def fake(llm: FakeLLMServer) -> FakeLLMServer:
    llm.reset()
    return llm
