"""The HTTP client is imported beside a run's planning when its first calls are sure to be
sent (a project whose cache holds nothing yet, ``--cache refresh`` or ``off``), in the
preload thread, and its TLS roots read there: its import (~0.13 s with aiohttp) and the
roots (~0.02 s) were on the critical path of a cold run's first request (issue 14, goal 2).
A rerun whose answers may all be cached, or a run of a local model with no judge, imports
no client at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from processes import harness_env

from harness.testing import FakeLLMServer

# Runs `harness run ...` as the CLI does, and writes to $PROBE_OUT the name of the thread
# that imports httpx_aiohttp (the aiohttp transport's client), if one does, and of each
# thread that reads TLS roots from a file (``roots:NAME``).
_PROBE = """
import os, ssl, sys, threading
def note(what):
    with open(os.environ["PROBE_OUT"], "a") as out:
        out.write(what + threading.current_thread().name + "\\n")
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "httpx_aiohttp":
            note("")
        return None
sys.meta_path.insert(0, Probe())
load = ssl.SSLContext.load_verify_locations
def roots(self, *args, **kwargs):
    note("roots:")
    return load(self, *args, **kwargs)
ssl.SSLContext.load_verify_locations = roots
import time, harness.store.runs as runs
create_run = runs.create_run
def slow_create_run(*args, **kwargs):  # the planning of a large run: longer than the preload
    time.sleep(0.3)
    return create_run(*args, **kwargs)
runs.create_run = slow_create_run
from harness.cli import main
sys.argv = ["harness", "run", *sys.argv[1:]]
main()
"""

_ARGS = ["--data", "qa", "--sample", "5", "--no-mlflow", "--metric", "token_f1"]
_REMOTE = [
    "--model",
    "openai:/gpt-test",
    "--judge-model",
    "openai:/judge",
    "--judge",
    "correctness",
]


def _importer(env: dict[str, str], tmp_path: Path, *options: str) -> list[str]:
    """The threads that imported the HTTP client in one `harness run OPTIONS` (it must
    succeed)."""
    out = tmp_path / "probe.txt"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *_ARGS, *options],
        env={**env, "PROBE_OUT": str(out)}, capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text().split() if out.exists() else []


def _project(tmp_path: Path, qa_file: Path, server: FakeLLMServer) -> dict[str, str]:
    """The environment of a new project home holding ``qa_file`` as ``qa``."""
    env = harness_env(tmp_path / "home", server)
    subprocess.run(
        [sys.executable, "-m", "harness", "data", "import", str(qa_file), "--name", "qa"],
        env=env, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return env


def test_the_client_is_imported_beside_the_planning_only_when_calls_will_be_sent(
    tmp_path: Path, qa_file: Path
) -> None:
    with FakeLLMServer() as server:
        env = _project(tmp_path, qa_file, server)
        preloaded = ["harness-preload", "roots:harness-preload"]  # once, in the preload thread
        assert _importer(env, tmp_path, *_REMOTE) == preloaded  # a new project
        assert _importer(env, tmp_path, *_REMOTE) == []  # its rerun: all cached, no client
        assert _importer(env, tmp_path, *_REMOTE, "--cache", "refresh") == preloaded
        requests = server.stats()["requests_total"]
        assert requests == 2 * 2 * 5  # the first run and the refresh sent; the rerun did not


def test_a_local_model_with_no_judge_imports_no_client(tmp_path: Path, qa_file: Path) -> None:
    with FakeLLMServer() as server:
        env = _project(tmp_path, qa_file, server)
        assert _importer(env, tmp_path, "--model", "echo") == []
