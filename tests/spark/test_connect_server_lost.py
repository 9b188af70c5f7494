"""A Spark Connect server that goes away in the middle of `harness run --spark-remote`.

The test starts a server of its own (the session's is shared by the other modules) and
stops it while a wave is out; the run is a `harness` process, as a user starts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from spark_helpers import KEY, SPARK_CONF_DIR, cli_env

from harness.testing import FakeLLMServer, SparkConnectServer

pytestmark = pytest.mark.timeout(900)  # the server starts within the test

ROWS = 40


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_server_lost_mid_run_is_the_environments_fault_in_one_line(
    home: Path, tmp_path: Path, how: str
) -> None:
    """A killed server: pyspark's client retried it for ten minutes and more, silently (a
    user saw the run hang with nothing on the terminal). A stopped one: its jobs failed with
    "Cannot call methods on a stopped SparkContext", then the run hung as long releasing
    the session (or failed, exit 1, "the Spark job failed"). Both now fail in seconds, exit
    74 as a server that cannot be reached at the start, with the rows of the waves back
    stored and the run resumable."""
    data = tmp_path / "many.jsonl"
    rows = [{"input": f"question {i}?", "expected": str(i)} for i in range(ROWS)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    # Waves of four rows, two out at a time: the ninth call is of the third wave, sent
    # once the first was back and stored.
    settings = "[spark]\ntasks = 2\nrows_per_task = 2\n"
    (home / "harness.toml").write_text(settings, encoding="utf-8")
    with FakeLLMServer(latency_s=0.5) as fake:
        env = cli_env(home, fake)
        server_env = {
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": KEY,
            "SPARK_CONF_DIR": SPARK_CONF_DIR,
        }
        with SparkConnectServer(env=server_env, folder=tmp_path / "server") as server:
            harness_bin = str(Path(sys.executable).parent / "harness")
            subprocess.run(
                [harness_bin, "data", "import", str(data), "--name", "many"], env=env, check=True
            )
            run = subprocess.Popen(
                [harness_bin, "run", "--data", "many", "--model", "openai:/m", "--no-mlflow",
                 "--concurrency", "2", "--json", "--spark-remote", server.url],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            while fake.stats()["requests_total"] < 10 and run.poll() is None:
                time.sleep(0.2)  # a wave is stored, and waves are out
            url = server.url
            assert server._process is not None
            if how == "killed":  # the JVM dies, as in a crash
                os.killpg(server._process.pid, signal.SIGKILL)
            server.stop()  # SIGTERM: the server stops politely
        try:
            out, err = run.communicate(timeout=120)  # ten minutes and more before
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 74, err
    stored = json.loads(out)
    lines = err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        f"error: lost the Spark Connect server at {url}: "
    ), err
    assert lines[0].endswith(f"`harness run --resume {stored['run_id']}`"), err
    assert stored["status"] == "failed" and 0 < stored["rows_done"] < ROWS
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        (kept,) = con.execute(
            "SELECT count(*) FROM outputs WHERE run_id = ?", [stored["run_id"]]
        ).fetchone() or (0,)
    finally:
        con.close()
    assert kept == stored["rows_done"]
    shown = subprocess.run(
        [harness_bin, "runs", "show", stored["run_id"], "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["status"] == "failed"
