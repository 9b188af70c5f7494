"""What the Spark tests share: the Connect server's address, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.testing import FakeLLMServer

KEY = "sk-connect-test"
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent


@dataclass(frozen=True)
class ConnectServer:
    url: str  # sc://127.0.0.1:PORT
    ui_url: str
    warehouse: Path
    log: Path


def cli_env(home: Path, llm: FakeLLMServer, **extra: str) -> dict[str, str]:
    """The driver's environment for a `harness` subprocess: the fake server and its key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.update(
        HARNESS_HOME=str(home),
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY=KEY,
        PYTHONPATH=str(TESTS),  # harness_test_models, for python: judges
    )
    env.update(extra)
    return env


def harness(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "harness"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
