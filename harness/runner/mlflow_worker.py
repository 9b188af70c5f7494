"""MLflow logging in a worker process that starts when the run starts.

Importing MLflow and opening (or creating) its SQLite store costs 2-4 s of CPU, and
writing one trace per row several more. In the run's own process that work competes with
the rows for the GIL; in a worker process it runs on another core while the rows are
processed: the worker opens the MLflow run at the start (``begin``), writes each batch's
traces as the batch is stored (``add_batch``: plain tuples, turned into traces here in
plain Python, off the run's process), and logs params, metrics and artifacts at the end
(``finish``: the tables come rendered, but for a fresh run's per-row table, which the
worker makes of the rows it got, ``harness.runner.worker_table``; their DataFrames follow
only if the worker asks, for MLflow's API). The run's process never imports MLflow at
all, and the worker skips MLflow's slow interpreter shutdown once it has replied. In a
store whose schema is verified, a new MLflow run is written with ``sqlite3``
(``harness.tracking.sql_run``) and the worker imports neither MLflow nor pandas;
otherwise it imports MLflow and opens the store as it starts.

The worker is a plain ``python -m harness.runner.mlflow_worker`` child, not
``multiprocessing``: a spawned multiprocessing child re-runs the user's ``__main__``, which
breaks every script that calls ``harness.evaluate`` without an ``if __name__`` guard.
Messages go to the child as pickles on its stdin; its replies (the MLflow run's id once
it is open, then at finish a request for the DataFrames, then the MLflow run id or an
error) come back on its stdout as pickles, each after its length. Both ends are this
package, so nothing foreign is ever unpickled. This module is the run's end of the pipes
(``MlflowWorker``); what runs in the child, its loop and its replies, is
``harness.runner.mlflow_worker_main``.

A run that ends without ``finish`` sends ``stop`` (``KILLED`` after a signal, ``FAILED``
after an error); a run's process that dies outright just closes the pipe, which the worker
reads as ``KILLED``. Either way the worker first writes every batch it received, then ends
the MLflow run with that status, keeping what it holds: ``--resume`` and ``harness runs
log`` complete that same MLflow run (``harness.tracking.mlflow_resume``). The worker runs
in a session of its own, so a Ctrl-C at the terminal (sent to the whole process group)
reaches only the run, which decides what the worker does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import queue
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harness.errors
from harness.errors import EnvironmentFault, HarnessError, Interrupted, TrackingError
from harness.runner.mlflow_worker_main import REPLY_LENGTH, main

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager

    from harness.interrupt import StopRequest
    from harness.runner.mlflow_records import Batch
    from harness.tracking import RunRecord
    from harness.tracking.sql_artifacts import PlainTable, RenderedRows

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds harness/


class MlflowWorker:
    """One child process that logs one run to MLflow, in stages."""

    def __init__(self, tracking_uri: str) -> None:
        from harness.tracking.mlflow_store import artifact_root_for

        # Where ``finish`` writes the per-row table for the worker to move into the run's
        # artifacts: the store's folder, on the artifacts' file system.
        root = artifact_root_for(tracking_uri)
        self._spool = root.parent if root is not None else None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.runner.mlflow_worker", tracking_uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C is the run's to handle, not ours
        )
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._detached = False  # left to finish alone after a signal
        self._opened: str | None = None  # the MLflow run's id, once the worker says it
        self._cut = False  # a reply was left half read: nothing more can be read
        self._replies = threading.Lock()  # one reader of the worker's stdout at a time
        self._rendered: RenderedRows | None = None  # ``prepare``d, for ``finish``
        self._reload: Callable[[], RunRecord] | None = None
        # The per-row table: asked of the worker (``begin``), and how to render it here
        # should the worker fail to make it (``finish``).
        self._table_asked = False
        self._table: Callable[[], AbstractContextManager[PlainTable]] | None = None
        # Batches go through a queue and a sender thread, so a worker busy writing traces
        # never makes the run wait: the pipe may block, the rows do not.
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._drain, name="mlflow-sender", daemon=True)
        # Whether the sender closes the pipe once it has sent the rest (see ``_let_go``),
        # and whether it is past that choice; both under ``_handover``.
        self._closing = False
        self._sender_done = False
        self._handover = threading.Lock()
        self._grace_end: float | None = None  # see ``_past_grace``
        self._sender.start()

    def _drain(self) -> None:
        while (message := self._queue.get()) is not None:
            self._send(message)
        with self._handover:
            self._sender_done = True
            closing = self._closing
        if closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        """EOF for the worker: it ends the run (``KILLED`` unless told otherwise) and exits."""
        with self._lock:
            if self._process.stdin is not None and not self._process.stdin.closed:
                with contextlib.suppress(OSError):  # it may be gone already
                    self._process.stdin.close()

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
        """Open the run's MLflow run, or continue its earlier one
        (``harness.tracking.mlflow_resume.ResumingLogger(head, **options)``)."""
        # Without its (empty) table: unpickling a DataFrame would import pandas there.
        self._table_asked = bool(options.get("table"))
        self._queue.put(("begin", _without_frames(head), options))

    def add_rows(self, chunk: RunRecord) -> None:
        """Write the traces of ``chunk.rows``; returns at once."""
        self._queue.put(("rows", chunk))

    def add_batch(self, batch: Batch, judge_models: Mapping[str, str]) -> None:
        """Write the traces of a stored batch (``harness.runner.mlflow_records.batch_payload``)."""
        self._queue.put(("batch", batch, dict(judge_models)))

    def opened_run_id(self) -> str | None:
        """The id of the MLflow run the worker opened, if it has said so by now (it does
        right after ``begin``); never waits."""
        stdout = self._process.stdout
        with self._replies:
            unread = self._opened is None and not self._cut
            if unread and stdout is not None and not stdout.closed and self._readable():
                reply = self._read_reply(None)  # whole: it was written at once
                if reply is not None and reply[0] == "opened":
                    self._opened = str(reply[1])
        return self._opened

    def _readable(self) -> bool:
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout.fileno(), selectors.EVENT_READ)
            return bool(selector.select(timeout=0))

    def _past_grace(self, stop: StopRequest | None) -> bool:
        """Whether a stop's grace is over: it starts when the end of the run first sees the
        signal, and bounds every wait of that end together (sending the batches, sending the
        finish, reading the answer), not each wait on its own."""
        if stop is None or stop.signum is None:
            return False
        now = time.monotonic()
        if self._grace_end is None:
            self._grace_end = now + stop.grace_s
        return now >= self._grace_end

    def _stop_sender(self, stop: StopRequest | None = None, timeout_s: float | None = None) -> bool:
        """Have every queued message sent and the sender end; False if it has not after
        ``timeout_s`` or, once a signal is requested (``stop``), its grace: it is blocked on
        a full pipe, the worker reading nothing (another process holds the MLflow store's
        write lock, say), and the run must not wait on it (``_let_go``)."""
        if not self._sender.is_alive():
            return True
        self._queue.put(None)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = 0.2 if deadline is None else deadline - time.monotonic()
            self._sender.join(timeout=min(0.2, max(left, 0.0)))
            if not self._sender.is_alive():
                return True
            if self._past_grace(stop) or (deadline is not None and time.monotonic() >= deadline):
                return False

    def _let_go(self) -> None:
        """Leave the worker to finish alone while the sender is still blocked on the pipe:
        the sender sends the rest as the worker reads again, then closes the pipe, and the
        worker ends the run ``KILLED`` with the traces it got (a message cut short by this
        process's exit reads as the pipe's end); ``--resume`` or ``harness runs log``
        writes the missing ones into the same MLflow run."""
        self._detached = True
        with self._handover:
            self._closing = True
            done = self._sender_done
        if done:  # it ended just now, without closing the pipe
            self._close_stdin()

    def prepare(
        self,
        record: RunRecord,
        reload: Callable[[], RunRecord] | None = None,
        table: Callable[[], AbstractContextManager[PlainTable]] | None = None,
        rows: int | None = None,
    ) -> RunRecord:
        """Render ``record``'s tables now, for ``finish``; return it without its DataFrames.

        The tables go to the worker rendered (what the SQL path writes), the per-row one as
        a file it moves into place (``render_rows``), made from the table ``table`` opens
        when given (the record then holds no rows). Their DataFrames follow only when the
        worker asks (MLflow's API, or its schema inference, needs them): a worker writing
        SQL never loads pandas, and a 10,000-row table is not pickled (0.17 s) and piped
        (20 MB) for nothing. Then ``reload`` makes them again; without it, the record
        keeps them.

        A fresh run's worker makes the per-row table itself, from the batches of the
        ``rows`` rows stored (``harness.runner.worker_table``), while this process builds
        the report; should it fail to (or log with MLflow's API), ``finish`` renders it
        here with ``table``.
        """
        from harness.tracking.sql_artifacts import render_rows, render_tables

        self._discard_rendered()
        self._table, self._reload = table, reload
        if self._table_asked and rows is not None and table is not None:
            self._queue.put(("table", _without_frames(record), rows))
            self._rendered = render_tables(record, rows)
        elif table is None:
            self._rendered = render_rows(record, self._spool)
        else:
            with table() as plain:
                self._rendered = render_rows(record, self._spool, plain)
        return record if reload is None else _without_frames(record)

    def finish(self, record: RunRecord, stop: StopRequest | None = None) -> str:
        """Log the rest of the run and end it; return the MLflow run id.

        ``record`` is the one ``prepare`` returned (or one to prepare now). After a stop
        request (a signal) the answer is waited for ``stop.grace_s`` more seconds; then
        ``Interrupted`` is raised and the worker is left to finish alone.
        """
        assert self._process.stdin is not None
        if self._rendered is None:
            record = self.prepare(record)
        rendered, self._rendered = self._rendered, None
        assert rendered is not None
        rendered, record = self._spool_report(rendered, record)
        if not self._stop_sender(stop):  # every batch is in the pipe before the finish
            rendered.discard()  # no finish will come for it
            self._let_go()
            assert stop is not None and stop.signum is not None
            raise Interrupted("interrupted while logging to MLflow", signum=stop.signum)
        sent = False  # the finish whole in the pipe: the worker needs the file
        try:
            self._send_within(("finish", _without_frames(record), rendered), stop)
            sent = True
            reply = self._finish_reply(stop)
            if reply is not None and reply[0] == "table":  # the worker could not make it
                from harness.tracking.sql_artifacts import render_rows

                assert self._table is not None
                with self._table() as plain:
                    made = render_rows(_without_frames(record), self._spool, plain)
                rendered = rendered.with_table(made)
                self._send_within(("table", made), stop)
                reply = self._finish_reply(stop)
            if reply is not None and reply[0] == "frames":
                if record.rows is None and self._reload is not None:
                    record = self._reload()
                self._send_within(("frames", record.rows, record.tables), stop)
                reply = self._finish_reply(stop)
        finally:
            if not (sent and self._detached):  # a worker left to finish alone needs it
                rendered.discard()
        # A worker that died (the OOM killer) leaves unsent bytes in the pipe, and closing
        # it raises BrokenPipeError: its death is told below, as a TrackingError.
        with self._lock, contextlib.suppress(OSError):
            self._process.stdin.close()
        self._process.wait()
        if reply is None:
            raise TrackingError(
                f"the MLflow logging process died (exit code {self._process.returncode})"
                + (f": {self._broken}" if self._broken else "")
            )
        outcome, value, kind = reply
        if outcome != "ok":
            raise _error_class(kind)(value)
        return str(value)

    def _send_within(self, message: tuple[Any, ...], stop: StopRequest | None) -> None:
        """Send ``message`` from this thread, the sender having ended; once a signal is
        requested, give up after the grace (``Interrupted``), even in the middle of the
        message: the worker may read nothing (another process holds the store's write
        lock) and the pipe hold less than the message (a run's metrics by slice can pass
        64 KiB). The worker then reads the message cut short as the pipe's end, when this
        process closes it or exits, and ends the MLflow run ``KILLED``."""
        assert self._process.stdin is not None
        data = memoryview(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        with self._lock:
            if self._broken is not None:
                return
            fd = self._process.stdin.fileno()
            try:
                self._process.stdin.flush()  # empty: every write of the sender was flushed
                os.set_blocking(fd, False)  # write what fits, then wait with a limit
                with selectors.DefaultSelector() as selector:
                    selector.register(fd, selectors.EVENT_WRITE)
                    while data:
                        if self._past_grace(stop):
                            self._detached = True  # the worker ends the run alone
                            assert stop is not None and stop.signum is not None
                            raise Interrupted(
                                "interrupted while logging to MLflow", signum=stop.signum
                            )
                        if selector.select(timeout=0.2):
                            with contextlib.suppress(BlockingIOError):
                                data = data[os.write(fd, data) :]
            except OSError as e:  # the worker died; ``finish`` reports it
                self._broken = str(e)
            finally:
                with contextlib.suppress(OSError):  # a closed pipe has no mode to restore
                    os.set_blocking(fd, True)

    def _spool_report(
        self, rendered: RenderedRows, record: RunRecord
    ) -> tuple[RenderedRows, RunRecord]:
        """The report written to a file the worker moves into the run's artifacts, as the
        per-row table is, instead of sent as text, which the worker held several times
        over: its peak in a 100,000-row rerun was 320 MB, 57 MB this way (docs/design.md).
        A folder that cannot take the file (a full disk) sends the report as text."""
        from harness.tracking.sql_artifacts import spool_file

        if record.report_html is None or self._spool is None:
            return rendered, record
        try:
            path = spool_file(self._spool, "report", ".html", [record.report_html])
        except OSError:  # a full disk: the pipe can still carry it
            return rendered, record
        return (
            dataclasses.replace(rendered, report_file=path),
            dataclasses.replace(record, report_html=None),
        )

    def _finish_reply(self, stop: StopRequest | None) -> tuple[str, Any, str | None] | None:
        """The worker's next reply to ``finish``, past the ``opened`` one if unread."""
        with self._replies:
            while True:
                reply = self._read_reply(stop)
                if reply is None or reply[0] != "opened":
                    return reply
                self._opened = str(reply[1])

    def _read_reply(self, stop: StopRequest | None) -> tuple[str, Any, str | None] | None:
        """The worker's next reply; None if it died before sending it whole."""
        header = self._read_exactly(REPLY_LENGTH.size, stop)
        if header is None:
            return None
        body = self._read_exactly(REPLY_LENGTH.unpack(header)[0], stop)
        if body is None:
            return None
        try:
            reply: tuple[str, Any, str | None] = pickle.loads(body)
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None
        return reply

    def _read_exactly(self, size: int, stop: StopRequest | None) -> bytes | None:
        """``size`` bytes of the worker's stdout, or None at its end. With ``stop``: once a
        signal is requested, raise ``Interrupted`` after the grace (``_past_grace``)."""
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()  # read raw: nothing may sit in a Python buffer
        chunks: list[bytes] = []
        missing = size
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while missing:
                if self._past_grace(stop):
                    self._detached = True  # it finishes alone; close() will not wait
                    self._cut = True  # perhaps mid-reply: read no more
                    assert stop is not None and stop.signum is not None
                    raise Interrupted("interrupted while logging to MLflow", signum=stop.signum)
                if selector.select(timeout=None if stop is None else 0.2):
                    chunk = os.read(fd, min(missing, 1 << 20))
                    if not chunk:
                        return None
                    chunks.append(chunk)
                    missing -= len(chunk)
        return b"".join(chunks)

    def stop(self, status: str = "KILLED", timeout_s: float = 60.0) -> None:
        """End the MLflow run unfinished: the worker writes the batches it has, marks the
        run ``status`` and exits; wait ``timeout_s`` for that, then leave it to finish."""
        self._queue.put(("stop", status))
        self.close(timeout_s=timeout_s)

    def _discard_rendered(self) -> None:
        """Delete a per-row table ``prepare`` wrote for a ``finish`` that will not come."""
        if self._rendered is not None:
            self._rendered.discard()
            self._rendered = None

    def close(self, timeout_s: float = 60.0) -> None:
        """End the worker; if the run neither finished nor stopped, it is ended KILLED.
        Waits at most ``timeout_s`` in all (none once the worker was left to finish alone),
        for the queued messages to be sent and for the worker to exit."""
        self._discard_rendered()
        if self._detached:
            timeout_s = 0.0
        deadline = time.monotonic() + timeout_s
        if not self._stop_sender(timeout_s=timeout_s):
            self._let_go()
        else:
            self._close_stdin()
        if not self._detached:
            try:
                self._process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                # Still busy (a backlog of traces): it goes on alone, holding the run's
                # MLflow lock, and whoever logs the run next waits for it.
                self._detached = True
        self.opened_run_id()  # the worker's last word, if it opened the run just now
        if self._process.stdout is not None:
            self._process.stdout.close()


def _without_frames(record: RunRecord) -> RunRecord:
    return dataclasses.replace(record, rows=None, tables={})


def _error_class(name: str | None) -> type[HarnessError]:
    """The error class the worker named, if it is a fault of the environment."""
    found = getattr(harness.errors, name or "", None)
    if isinstance(found, type) and issubclass(found, EnvironmentFault):
        return found
    return TrackingError


# The worker process itself, started as ``python -m harness.runner.mlflow_worker``
# (``MlflowWorker.__init__``); its loop is in harness.runner.mlflow_worker_main.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
