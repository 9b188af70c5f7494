"""The MLflow worker's own side: what runs in the child process that logs a run.

``main`` is the worker's loop: it reads the run's messages (pickles on its stdin), logs
them to MLflow (``harness.tracking.mlflow_resume.ResumingLogger``) and writes its replies
(``_reply``: pickles on its stdout, each after its length, ``REPLY_LENGTH``), mapping what
fails to one line (``_mapped``), and leaves without the interpreter's shutdown
(``_exit_now``). The run's process holds the other end of the pipes, ``MlflowWorker`` in
``harness.runner.mlflow_worker``, which describes the messages and starts the child as
``python -m harness.runner.mlflow_worker`` (that module's ``__main__`` calls ``main``).
The two sides are apart because they share nothing but the pipes and ``REPLY_LENGTH``:
each module reads whole, and stays under the project's 600 lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import struct
import sys
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, TrackingError

if TYPE_CHECKING:
    from harness.runner.worker_table import WorkerTable
    from harness.tracking import RunRecord
    from harness.tracking.mlflow_resume import ResumingLogger

REPLY_LENGTH = struct.Struct("!Q")  # what precedes each reply: its length in bytes


def main(tracking_uri: str) -> int:
    from harness.tracking.mlflow_sqlite import verified_store

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything MLflow prints must not corrupt the reply
    error: HarnessError | None = None
    logger: ResumingLogger | None = None
    head: RunRecord | None = None  # what the run was opened with; each batch extends it
    table: WorkerTable | None = None  # the per-row table, when the worker makes it
    if verified_store(tracking_uri) is None:
        # MLflow's API will log this run: import MLflow and open (or create) the store
        # while the rows run. A run in a verified store is written without MLflow, a new
        # one or one continued (``harness.tracking.sql_resume``).
        from harness.tracking.mlflow_store import open_store

        try:
            open_store(tracking_uri)
        except Exception as e:  # noqa: BLE001 - reported at finish, as one line
            error = _mapped(e, tracking_uri)
    ended = False  # finished or stopped
    while True:
        try:
            message = pickle.load(sys.stdin.buffer)
        except (EOFError, pickle.UnpicklingError):
            break  # the pipe closed, or the run's process died mid-message: it is gone
        kind = message[0]
        try:
            if error is not None and kind != "finish":
                continue  # already failed: drain the pipe, report at finish
            if kind == "begin":
                from harness.runner.worker_table import WorkerTable, table_request
                from harness.tracking.mlflow_resume import ResumingLogger

                head = message[1]
                asked = table_request(message[2])
                logger = ResumingLogger(head, tracking_uri=tracking_uri, **message[2])
                if asked and logger.writes_sql:  # else the run's process renders it
                    table = WorkerTable(tracking_uri, head.labelled)
                # Told now, not only at finish: a run that never gets there (a signal,
                # --max-cost, a failure) still names the MLflow run holding its rows.
                _reply(out, ("opened", logger.run_id, None))
            elif kind == "rows" and logger is not None:
                logger.add_rows(message[1])
            elif kind == "batch" and logger is not None and head is not None:
                from harness.runner.mlflow_records import batch_traces

                logger.add_traces(batch_traces(head, message[1], message[2]))
                if table is not None:
                    table.add(message[1])
            elif kind == "table" and table is not None:
                table.make(*message[1:])
            elif kind == "stop" and logger is not None:
                ended = True
                logger.stop(message[1])
            elif kind == "finish":
                if error is None and logger is None:
                    error = TrackingError("the MLflow run was never opened")
                if error is not None:
                    message[2].discard()  # the run's table, not to be logged now
                    _reply(out, ("error", error.message, type(error).__name__))
                else:
                    assert logger is not None
                    record, rendered = message[1:]
                    try:
                        if rendered.worker_rows is not None:  # the table is ours to make
                            made = table.take() if table is not None else None
                            if made is None:  # it could not be: the run's process renders it
                                _reply(out, ("table", None, None))
                                try:
                                    made = pickle.load(sys.stdin.buffer)[1]  # ("table", rendered)
                                except (EOFError, pickle.UnpicklingError):
                                    break  # the run's process died: end the run KILLED, below
                            rendered = rendered.with_table(made)
                        if not (logger.writes_sql and rendered.dataset is not None):
                            # MLflow's API (or its schema inference) needs the DataFrames.
                            _reply(out, ("frames", None, None))
                            try:
                                frames = pickle.load(sys.stdin.buffer)  # ("frames", rows, tables)
                            except (EOFError, pickle.UnpicklingError):
                                break  # the run's process died: end the run KILLED, below
                            record = dataclasses.replace(record, rows=frames[1], tables=frames[2])
                        if rendered.report_file is not None and not logger.writes_sql:
                            # MLflow's API logs the report from the record.
                            report = rendered.report_file.read_text(encoding="utf-8")
                            record = dataclasses.replace(record, report_html=report)
                        run_id = logger.finish(record, rendered)
                    finally:
                        rendered.discard()  # moved into the run's artifacts, or not needed
                    _reply(out, ("ok", run_id, None))
                _exit_now(table)
        except Exception as e:  # noqa: BLE001 - MLflow's errors, mapped to one line
            error = _mapped(e, tracking_uri)
        if kind == "finish":  # finish itself raised
            assert error is not None
            _reply(out, ("error", error.message, type(error).__name__))
            _exit_now(table)
    if table is not None:
        table.discard()
    if not ended and logger is not None:  # the run's process is gone: keep what we wrote
        # A sweep's parent run too: the process that would have ended it is gone with the
        # run (killed outright), and it stayed RUNNING for good.
        parent = head.parent_run_id if head is not None else None
        with contextlib.suppress(HarnessError):
            logger.stop("FAILED" if error is not None else "KILLED", parent)
    return 0


def _mapped(error: Exception, tracking_uri: str) -> HarnessError:
    """``error`` as the one-line error the run reports (a full disk, a damaged store...)."""
    from harness.errors import TrackingStoreCorrupt
    from harness.faults import environment_fault, first_line
    from harness.tracking.mlflow_store import DB_FILE, artifact_root_for

    root = artifact_root_for(tracking_uri)
    path = root.parent / DB_FILE if root is not None else None
    fault = environment_fault(error, path, corrupt=TrackingStoreCorrupt, what="the MLflow store")
    if fault is not None:
        return fault
    if isinstance(error, HarnessError):
        return error
    return TrackingError(f"MLflow logging failed: {type(error).__name__}: {first_line(error)}")


def _reply(out: Any, reply: tuple[str, Any, str | None]) -> None:
    data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    with contextlib.suppress(OSError):  # the run's process may be gone
        out.write(REPLY_LENGTH.pack(len(data)) + data)
        out.flush()


def _exit_now(table: WorkerTable | None = None) -> None:
    """Leave without the interpreter's shutdown, once the run is logged and the reply sent.

    With MLflow loaded, shutdown (atexit hooks, SQLAlchemy pools, module teardown) takes
    ~1 s, and the run's process waits for this one to end. Every write is committed by
    now, and SQLite needs no goodbye, so there is nothing left that shutdown would do.
    A per-row table the worker made and did not log (``table``) is deleted first.
    """
    if table is not None:
        table.discard()
    sys.stderr.flush()
    os._exit(0)
