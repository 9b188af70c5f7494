"""``harness ui``: the MLflow UI on a project's local store, started lean and watched.

MLflow's server defaults suit a shared server: four workers and a job-queue consumer, ~11
processes and ~15 s to answer. For one person looking at local runs, one worker and no job
execution start in a few seconds. The port is checked first (a taken port would otherwise
fail inside MLflow's log while ``mlflow`` itself exits 0), readiness is awaited by
connecting, and MLflow's own output goes to ``mlruns/ui.log`` so the terminal says only
what a user needs: where, when ready, and how to stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness.config import Home
from harness.errors import ConfigError, HarnessError
from harness.ports import claim_port, wait_listening

READY_TIMEOUT_S = 120.0  # MLflow's first start migrates nothing here, but imports a lot


def ui_command(home: Home, host: str, port: int) -> list[str]:
    mlflow = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    return [
        mlflow,
        "server",
        "--backend-store-uri",
        home.tracking_uri,
        "--default-artifact-root",
        str(home.artifacts_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def serve_ui(
    home: Home,
    *,
    host: str,
    port: int,
    say: Callable[[str], None],
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> int:
    """Start the MLflow UI, say when it answers, and wait until Ctrl-C (exit 0) or until
    MLflow stops by itself (its exit code, at least 1)."""
    if not (home.mlruns_dir / "mlflow.db").exists():
        raise ConfigError(f"no MLflow store in {home.path} yet; run `harness run` first")
    port = claim_port(host, port)
    log_path = home.mlruns_dir / "ui.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    say(f"starting the MLflow UI for {home.path} on http://{host}:{port} (log: {log_path})")
    # Ctrl-C, and a TERM from a supervisor or test, both stop MLflow's process group: a
    # shell starts background jobs with SIGINT ignored, and the default TERM would orphan it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            ui_command(home, host, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop its whole group in order
        )
    try:
        alive = lambda: process.poll() is None  # noqa: E731
        if not wait_listening(host, port, ready_timeout_s, alive):
            _stop(process)
            raise HarnessError(
                f"the MLflow UI did not start (exit code {process.returncode}); "
                f"last lines of {log_path}: {_tail(log_path)}"
            )
        say(f"MLflow UI ready: http://{host}:{port}  (Ctrl-C stops it)")
        code = process.wait()
        raise HarnessError(f"the MLflow UI stopped (exit code {code}); see {log_path}")
    except KeyboardInterrupt:
        _stop(process)
        return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
