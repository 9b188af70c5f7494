"""A real Spark Connect server for the tests of this folder, started once per session.

It is pyspark's own ``sbin/start-connect-server.sh`` (``harness.testing.SparkConnectServer``)
on 127.0.0.1 and free ports, with ``local[2]`` executors and a warehouse in a temporary
folder. Its environment is fixed when it starts, as a cluster's is: the executors reach the
fake LLM server and hold ``OPENAI_API_KEY``, never ``ANTHROPIC_API_KEY``. It is stopped at
the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from spark_helpers import KEY, SPARK_CONF_DIR

from harness.testing import FakeLLMServer, SparkConnectServer


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="session")
def connect_server(
    llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SparkConnectServer]:
    env = {
        "OPENAI_BASE_URL": llm.openai_base_url,
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
        "ANTHROPIC_API_KEY": "",  # the executors' environment lacks it
        "SPARK_CONF_DIR": SPARK_CONF_DIR,
    }
    folder = tmp_path_factory.mktemp("spark-connect")
    # One server serves every test of a worker; with the default 1 GB heap, reading the
    # 141 MB table of tests/spark/test_spark_tables.py after the others once ran out of
    # heap while fetching a 24 MB task result (OutOfMemoryError, then TaskResultLost).
    conf = {"spark.driver.memory": "2g"}
    with SparkConnectServer(env=env, folder=folder, conf=conf) as server:
        yield server


@pytest.fixture
def fake(llm: FakeLLMServer) -> FakeLLMServer:
    llm.reset()
    return llm


@pytest.fixture(scope="module")
def spark(connect_server: SparkConnectServer) -> Iterator[Any]:
    """This process's own Connect session to the server, as a notebook has one."""
    from pyspark.sql.connect.session import SparkSession

    session = SparkSession.builder.remote(connect_server.url).create()
    try:
        yield session
    finally:
        session.stop()  # no Connect session stays active for the other modules
