"""MLflow logging in a worker process that starts when the run starts.

Importing MLflow and opening (or creating) its SQLite store costs 2-4 s of CPU, and
logging a large run several more. In the run's own process that work competes with the
rows for the GIL; in a worker process started at launch it runs on another core while
the rows are processed, and the run's process never imports MLflow at all (which also
spares it MLflow's slow interpreter shutdown).

The worker is a plain ``python -m harness.runner.mlflow_worker`` child, not
``multiprocessing``: a spawned multiprocessing child re-runs the user's ``__main__``, which
breaks every script that calls ``harness.evaluate`` without an ``if __name__`` guard. The
run record goes to the child as a pickle on its stdin and the MLflow run id comes back on
its stdout; both ends are this package, so nothing foreign is ever unpickled.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError

if TYPE_CHECKING:
    from harness.tracking import RunRecord

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds harness/


class MlflowWorker:
    """One child process that imports MLflow at once and logs the run when it is done."""

    def __init__(self, tracking_uri: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.runner.mlflow_worker", tracking_uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def log_run(self, record: RunRecord, **options: Any) -> str:
        """``harness.tracking.log_run(record, **options)`` in the worker."""
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            pickle.dump((record, options), self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._process.stdin.close()
            reply = self._process.stdout.read()
        except OSError as e:  # the worker died before it read the record
            raise TrackingError(f"the MLflow logging process died: {e}") from e
        self._process.wait()
        try:
            outcome, value = pickle.loads(reply)
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise TrackingError(
                f"the MLflow logging process died (exit code {self._process.returncode})"
            ) from e
        if outcome != "ok":
            raise TrackingError(value)
        return str(value)

    def close(self) -> None:
        """Stop the worker if it is still waiting (a run that failed logs nothing)."""
        if self._process.poll() is None:
            if self._process.stdin is not None and not self._process.stdin.closed:
                self._process.stdin.close()  # EOF: the worker exits without logging
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def main(tracking_uri: str) -> int:
    from harness.errors import HarnessError
    from harness.tracking import log_run
    from harness.tracking.mlflow_log import _open_store

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything MLflow prints must not corrupt the reply
    try:
        _open_store(tracking_uri)  # import MLflow and create the store while rows run
        warm_error = None
    except HarnessError as e:
        warm_error = str(e)
    data = sys.stdin.buffer.read()
    if not data:
        return 0  # the run ended without anything to log
    record, options = pickle.loads(data)
    try:
        if warm_error:
            raise TrackingError(warm_error)
        reply: tuple[str, str] = ("ok", log_run(record, tracking_uri=tracking_uri, **options))
    except HarnessError as e:
        reply = ("error", str(e))
    except Exception as e:  # an MLflow failure nobody mapped: still one line for the user
        reply = ("error", f"MLflow logging failed: {type(e).__name__}: {e}")
    out.write(pickle.dumps(reply))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
