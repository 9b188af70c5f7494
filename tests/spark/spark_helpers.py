"""What the Spark tests share: the fake server's key, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.testing import FakeLLMServer

KEY = "sk-connect-test"
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
SPARK_CONF_DIR = str(TESTS / "spark_conf")  # JVM flags for a fast start (see that file)


def cli_env(home: Path, llm: FakeLLMServer, **extra: str) -> dict[str, str]:
    """The driver's environment for a `harness` subprocess: the fake server and its key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.update(
        HARNESS_HOME=str(home),
        SPARK_CONF_DIR=SPARK_CONF_DIR,
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY=KEY,
        # harness_test_models, for python: judges; the checkout under test before the
        # installed one (a worktree's harness, not the editable install's)
        PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
    )
    env.update(extra)
    return env


def harness(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "harness"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
