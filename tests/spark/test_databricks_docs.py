"""docs/databricks.md: its "Try it on a laptop" commands run as written against a local
Spark Connect server (the session's, in place of the one the page starts), and its
notebook query runs on the table they write."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from spark_helpers import REPO, cli_env

from harness.testing import FakeLLMServer, SparkConnectServer

pytestmark = pytest.mark.timeout(900)

PAGE = REPO / "docs" / "databricks.md"
DOCUMENTED_SERVER = "sc://127.0.0.1:15002"  # what start-connect-server.sh binds by default


def block_after(marker: str, language: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(rf"{re.escape(marker)}.*?```{language}\n(.*?)```", text, re.S)
    assert found, f"no ```{language} block after {marker!r} in {PAGE}"
    return found.group(1)


def test_the_laptop_commands_run_as_written(
    connect_server: SparkConnectServer,
    spark: Any,
    fake: FakeLLMServer,
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = block_after("<!-- tested:", "bash")
    assert DOCUMENTED_SERVER in commands
    script = commands.replace(DOCUMENTED_SERVER, connect_server.url)
    (tmp_path / "datasets").symlink_to(REPO / "datasets")  # "from the repository's folder"
    env = cli_env(home, fake)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    run = json.loads((tmp_path / "run.json").read_text())
    assert run["rows_done"] == 50 and run["errors"] == 0
    assert run["calls"]["model"]["requests"] == run["calls"]["judge"]["requests"] == 50
    assert fake.stats()["requests_total"] == 100
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        source = con.execute("SELECT source, n_rows FROM datasets").fetchall()
    finally:
        con.close()
    assert source[0][1] == 1000 and source[0][0].startswith("spark-sql:SELECT * FROM json.")
    exported = spark.read.table("pubmedqa_results")
    assert exported.count() == 50
    assert {r.run_id for r in exported.select("run_id").collect()} == {run["run_id"]}

    # The page's notebook query, with this process's session as the notebook's `spark`.
    exec(block_after("In a notebook:", "python"), {"spark": spark})  # noqa: S102
    shown = capsys.readouterr().out
    assert run["run_id"] in shown and "openai:/gpt-4o-mini" in shown
    assert re.search(r"\|\s*50\|", shown), shown
