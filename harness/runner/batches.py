"""Finished rows, written to DuckDB in short batches off the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from harness.config import DEFAULT_BATCH_ROWS, DEFAULT_BATCH_SECONDS, Home
from harness.store import runs as run_store
from harness.store.rows import OutputRow, ScoreRow

# Rows per call of ``on_batch``: smaller than a DuckDB batch, so the MLflow worker writes
# traces while the rows run and only the last few hundred are left when they end (a
# cached rerun of 1,000 rows is one DuckDB batch, which would leave all 1,000 traces
# to write after the last row).
CALLBACK_ROWS = 200


class BatchWriter:
    """Buffers finished rows and writes them in short transactions, off the event loop.

    One background thread writes one batch at a time, in order, while the rows go on;
    ``close`` waits for the last write. A write that failed is raised by the next call.
    ``on_batch`` receives the finished rows in that thread too, in chunks of at most
    ``CALLBACK_ROWS``, each once its rows are stored or about to be (a run that fails
    deletes its MLflow run, so rows seen there but never stored leave nothing behind).
    ``usage`` gives the run's call counters (``runs.usage``), read as each batch is handed
    over, after its rows' calls were counted, and stored in the batch's transaction;
    ``mlflow_run_id`` the id of the MLflow run logging the rows, when there is one not
    stored yet, stored the same way.
    """

    def __init__(
        self,
        home: Home,
        run_id: str,
        *,
        rows: int = DEFAULT_BATCH_ROWS,
        seconds: float = DEFAULT_BATCH_SECONDS,
        on_batch: Callable[[list[OutputRow], list[ScoreRow]], None] | None = None,
        usage: Callable[[], dict[str, Any]] | None = None,
        mlflow_run_id: Callable[[], str | None] | None = None,
    ) -> None:
        self.home, self.run_id = home, run_id
        self.usage = usage  # called in the caller's thread, see the class
        self.mlflow_run_id = mlflow_run_id  # likewise
        self.on_batch = on_batch  # called in the writer thread, see the class
        self.max_rows, self.max_seconds = rows, seconds
        self.outputs: list[OutputRow] = []
        self.scores: list[ScoreRow] = []
        self._announced = (0, 0)  # outputs and scores of the buffer already sent to on_batch
        self._callbacks: list[Future[None]] = []
        self.last_write = time.monotonic()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._pending: Future[None] | None = None

    def add(self, output: OutputRow, scores: list[ScoreRow]) -> None:
        self.outputs.append(output)
        self.scores.extend(scores)
        if (
            len(self.outputs) >= self.max_rows
            or time.monotonic() - self.last_write >= self.max_seconds
        ):
            self.flush()
        elif self.on_batch is not None and len(self.outputs) - self._announced[0] >= CALLBACK_ROWS:
            self._announce()

    def flush_if_idle(self) -> None:
        """``flush``, unless the last write is still running (``flush`` would wait for it):
        the engine's once it has started its last row, so the rows done by then are stored
        while the last ones run, and the write ``close`` waits for holds only those."""
        if self._pending is None or self._pending.done():
            self.flush()

    def _announce(self) -> None:
        """Hand the rows ``on_batch`` has not seen to it, in the writer thread, in order."""
        assert self.on_batch is not None
        done_outputs, done_scores = self._announced
        outputs, scores = self.outputs[done_outputs:], self.scores[done_scores:]
        self._announced = (len(self.outputs), len(self.scores))
        if outputs:
            self._callbacks.append(self._thread.submit(self.on_batch, outputs, scores))

    def flush(self) -> None:
        if self.outputs:
            self._wait()  # one write at a time, in order
            if self.on_batch is not None:
                self._announce()
            usage = self.usage() if self.usage is not None else None
            mlflow_run_id = self.mlflow_run_id() if self.mlflow_run_id is not None else None
            self._pending = self._thread.submit(
                self._write, self.outputs, self.scores, usage, mlflow_run_id
            )
        self.outputs, self.scores = [], []
        self._announced = (0, 0)
        self.last_write = time.monotonic()

    def _write(
        self,
        outputs: list[OutputRow],
        scores: list[ScoreRow],
        usage: dict[str, Any] | None,
        mlflow_run_id: str | None,
    ) -> None:
        run_store.write_batch(self.home.db_path, self.run_id, outputs, scores, usage, mlflow_run_id)

    def _wait(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback.result()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Write what is buffered and wait until every batch is stored."""
        try:
            self.flush()
            self._wait()
        finally:
            self._thread.shutdown(wait=True)
