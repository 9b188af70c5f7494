"""Finished rows, written to DuckDB in short batches off the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from harness.config import DEFAULT_BATCH_ROWS, DEFAULT_BATCH_SECONDS, Home
from harness.store import runs as run_store
from harness.store.runs import OutputRow, ScoreRow


class BatchWriter:
    """Buffers finished rows and writes them in short transactions, off the event loop.

    One background thread writes one batch at a time, in order, while the rows go on;
    ``close`` waits for the last write. A write that failed is raised by the next call.
    """

    def __init__(
        self,
        home: Home,
        run_id: str,
        *,
        rows: int = DEFAULT_BATCH_ROWS,
        seconds: float = DEFAULT_BATCH_SECONDS,
        on_batch: Callable[[list[OutputRow], list[ScoreRow]], None] | None = None,
    ) -> None:
        self.home, self.run_id = home, run_id
        self.on_batch = on_batch  # called in the writer thread after each stored batch
        self.max_rows, self.max_seconds = rows, seconds
        self.outputs: list[OutputRow] = []
        self.scores: list[ScoreRow] = []
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

    def flush(self) -> None:
        if self.outputs:
            self._wait()  # one write at a time, in order
            self._pending = self._thread.submit(self._write, self.outputs, self.scores)
        self.outputs, self.scores = [], []
        self.last_write = time.monotonic()

    def _write(self, outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
        run_store.write_batch(self.home.db_path, self.run_id, outputs, scores)
        if self.on_batch is not None:
            self.on_batch(outputs, scores)

    def _wait(self) -> None:
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
