"""MLflow logging in a worker process that starts when the run starts.

Importing MLflow and opening (or creating) its SQLite store costs 2-4 s of CPU, and
writing one trace per row several more. In the run's own process that work competes with
the rows for the GIL; in a worker process it runs on another core while the rows are
processed: the worker opens the MLflow run at the start (``begin``), writes each batch's
traces as the batch is stored (``add_batch``: plain tuples, turned into frames here, off the
run's process), and logs params, metrics and artifacts at the end (``finish``). The run's
process never imports MLflow at all, and the worker skips MLflow's slow interpreter
shutdown once it has replied.

The worker is a plain ``python -m harness.runner.mlflow_worker`` child, not
``multiprocessing``: a spawned multiprocessing child re-runs the user's ``__main__``, which
breaks every script that calls ``harness.evaluate`` without an ``if __name__`` guard.
Messages go to the child as pickles on its stdin and the MLflow run id comes back on its
stdout; both ends are this package, so nothing foreign is ever unpickled. A run that ends
without ``finish`` (an error, Ctrl-C) closes the pipe, and the worker deletes the MLflow
run it opened: the rows are in DuckDB, and ``--resume`` logs the run anew.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError

if TYPE_CHECKING:
    from harness.runner.mlflow_records import Batch
    from harness.tracking import RunRecord
    from harness.tracking.mlflow_log import RunLogger

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds harness/


class MlflowWorker:
    """One child process that logs one run to MLflow, in stages."""

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
        self._lock = threading.Lock()
        self._broken: str | None = None
        # Batches go through a queue and a sender thread, so a worker busy writing traces
        # never makes the run wait: the pipe may block, the rows do not.
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._drain, name="mlflow-sender", daemon=True)
        self._sender.start()

    def _drain(self) -> None:
        while (message := self._queue.get()) is not None:
            self._send(message)

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._process.stdin is not None
        with self._lock:
            if self._broken is not None:
                return
            try:
                pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._process.stdin.flush()
            except OSError as e:  # the worker died; ``finish`` reports it
                self._broken = str(e)

    def begin(self, head: RunRecord, **options: Any) -> None:
        """Open the MLflow run (``harness.tracking.RunLogger(head, **options)``)."""
        # Without its (empty) table: unpickling a DataFrame would import pandas there.
        self._queue.put(("begin", _without_rows(head), options))

    def add_rows(self, chunk: RunRecord) -> None:
        """Write the traces of ``chunk.rows``; returns at once."""
        self._queue.put(("rows", chunk))

    def add_batch(self, batch: Batch, judge_model: str | None) -> None:
        """Write the traces of a stored batch (``harness.runner.mlflow_records.batch_payload``)."""
        self._queue.put(("batch", batch, judge_model))

    def _stop_sender(self) -> None:
        if self._sender.is_alive():
            self._queue.put(None)
            self._sender.join()

    def finish(self, record: RunRecord) -> str:
        """Log the rest of the run and end it; return the MLflow run id."""
        assert self._process.stdin is not None and self._process.stdout is not None
        from harness.tracking.sql_run import render_rows

        self._stop_sender()  # every batch is in the pipe before the finish
        # The table goes rendered (what the SQL path writes) and pickled apart (for MLflow's
        # API), so a worker writing SQL never loads pandas.
        frame = pickle.dumps(record.rows, protocol=pickle.HIGHEST_PROTOCOL)
        self._send(("finish", _without_rows(record), frame, render_rows(record)))
        with self._lock:
            self._process.stdin.close()
        reply = self._process.stdout.read()
        self._process.wait()
        try:
            outcome, value = pickle.loads(reply)
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise TrackingError(
                f"the MLflow logging process died (exit code {self._process.returncode})"
                + (f": {self._broken}" if self._broken else "")
            ) from e
        if outcome != "ok":
            raise TrackingError(value)
        return str(value)

    def close(self) -> None:
        """End the worker; if the run did not ``finish``, its MLflow run is deleted."""
        self._stop_sender()
        with self._lock:
            if self._process.stdin is not None and not self._process.stdin.closed:
                with contextlib.suppress(OSError):  # it may be gone already
                    self._process.stdin.close()  # EOF: the worker aborts and exits
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _without_rows(record: RunRecord) -> RunRecord:
    return dataclasses.replace(record, rows=None)


def main(tracking_uri: str) -> int:
    from harness.errors import HarnessError
    from harness.tracking.mlflow_log import open_run_logger
    from harness.tracking.mlflow_sqlite import verified_store
    from harness.tracking.sql_run import SqlRunLogger

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything MLflow prints must not corrupt the reply
    error: str | None = None
    logger: RunLogger | SqlRunLogger | None = None
    head: RunRecord | None = None  # what the run was opened with; each batch extends it
    if verified_store(tracking_uri) is None:
        # MLflow's API will log this run: import MLflow and open (or create) the store
        # while the rows run. A verified store is written without MLflow.
        from harness.tracking.mlflow_store import open_store

        try:
            open_store(tracking_uri)
        except HarnessError as e:
            error = str(e)
    finished = False
    while True:
        try:
            message = pickle.load(sys.stdin.buffer)
        except EOFError:
            break
        kind = message[0]
        try:
            if error is not None and kind != "finish":
                continue  # already failed: drain the pipe, report at finish
            if kind == "begin":
                head = message[1]
                logger = open_run_logger(head, tracking_uri=tracking_uri, **message[2])
            elif kind == "rows" and logger is not None:
                logger.add_rows(message[1])
            elif kind == "batch" and logger is not None and head is not None:
                from harness.runner.mlflow_records import batch_traces

                logger.add_traces(batch_traces(head, message[1], message[2]))
            elif kind == "finish":
                if error is None and logger is None:
                    error = "the MLflow run was never opened"
                if error is not None:
                    reply: tuple[str, str] = ("error", error)
                else:
                    assert logger is not None
                    record, frame, rendered = message[1:]
                    if isinstance(logger, SqlRunLogger) and rendered.dataset is not None:
                        reply = ("ok", logger.finish(record, rendered))
                    else:  # MLflow's API (or its schema inference) needs the DataFrame
                        record = dataclasses.replace(record, rows=pickle.loads(frame))
                        reply = ("ok", logger.finish(record))
                out.write(pickle.dumps(reply))
                out.flush()
                _exit_now()
        except HarnessError as e:
            error = str(e)
        except Exception as e:  # an MLflow failure nobody mapped: still one line for the user
            error = f"MLflow logging failed: {type(e).__name__}: {e}"
        if kind == "finish" and not finished:  # finish itself raised
            out.write(pickle.dumps(("error", error or "MLflow logging failed")))
            out.flush()
            finished = True
            break
    if not finished and logger is not None:
        logger.abort()
    return 0


def _exit_now() -> None:
    """Leave without the interpreter's shutdown, once the run is logged and the reply sent.

    With MLflow loaded, shutdown (atexit hooks, SQLAlchemy pools, module teardown) takes
    ~1 s, and the run's process waits for this one to end. Every write is committed by
    now, and SQLite needs no goodbye, so there is nothing left that shutdown would do.
    """
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
