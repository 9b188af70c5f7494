"""A running run's call counters in a file of their own, kept ahead of the cache.

A run stores its counters (``runs.usage``) with each batch of rows, but its answers reach
the cache as they come: a run killed outright (SIGKILL, the OOM killer) had paid for the
calls answered since its last batch, their answers were in the cache, and its resume took
them for cache hits, so its totals and the ``--max-cost`` it went on from were short.

So the cache writer saves the counters to ``<home>/.usage/RUN_ID.usage`` before each
commit (``harness.calls.cache_writer``): every answer in the cache is counted there.
Both the file and ``runs.usage`` are snapshots of the same counters, which only grow, so
their larger value, counter by counter, is the later snapshot; a run left ``running`` is
read with it (``harness.store.runs``). The run's end removes the file once it has stored
its usage, and so does ``runs delete``.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from harness.counters import rounded, with_earlier

__all__ = ["UsageFile", "with_saved_usage"]

USAGE_DIR = ".usage"  # under the project home, beside harness.duckdb
SLOT = 4096  # bytes a slot: a page


class UsageFile:
    """The counters file of run ``run_id`` in the home of ``db_path`` (``harness.duckdb``).

    Two slots of ``SLOT`` bytes, written in turn, each one record: the CRC-32 of the
    counters' JSON (8 hex digits), a space, the JSON, a newline, padded with spaces. A
    kill in the middle of a write, or a reader meeting one, finds that slot's record
    broken (its CRC) and the other one whole: the save before, made before the commit
    before. The reader takes the larger counters of the slots it can read. One
    ``pwrite`` a save (4 us) where a new file renamed into place took 0.09-0.56 ms (ext4
    writes a replaced file's data out first: ``auto_da_alloc``), and a save comes before
    each commit of answers to the cache.
    """

    def __init__(self, db_path: Path, run_id: str) -> None:
        self.path = db_path.parent / USAGE_DIR / f"{run_id}.usage"
        self._fd: int | None = None
        self._slot = 0  # the slot the next save writes
        self._removed = False  # the run's end stored its usage: saves are over

    def saver(
        self, counters: Callable[[], Mapping[str, Any]], earlier: Mapping[str, Any]
    ) -> Callable[[], None]:
        """A function that saves ``counters()`` (this process's, per kind, raw: the
        caller's ``counters``), called in the cache writer's thread, with ``earlier`` (a
        resumed run's stored usage, the same at every save). The totals, the counters as
        stored with the earlier ones added (``harness.counters``), are made when the file
        is read: a save then costs ~10 us, where making them at each save took 27-49 us of
        the ~43 us a save took, once a commit on a cold run's path (issue 14)."""

        def save() -> None:
            self.save({"earlier": earlier, "now": counters()})

        return save

    def save(self, saved: Mapping[str, Any]) -> None:
        """Save ``saved`` (``{"earlier": ..., "now": ...}``, see ``saver``) in the slot
        after the last one. No fsync: a killed process's writes are in the OS's page cache
        and land all the same; a power cut may lose the latest, as it may the cache's own
        last commits (SQLite's WAL is not synced at each commit either). A disk that
        refuses it is let be: the run goes on, and its next batch of rows meets the same
        fault in DuckDB and fails the run."""
        if self._removed:  # an app's thread answered after the run's end: nothing to keep
            return
        text = orjson.dumps(saved)
        record = b"%08x %s\n" % (zlib.crc32(text), text)
        if len(record) > SLOT:  # ~2 KB holds every counter of the three kinds of call
            return
        with contextlib.suppress(OSError):
            if self._fd is None:
                self.path.parent.mkdir(exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(self._fd, record.ljust(SLOT, b" "), SLOT * self._slot)
            self._slot = 1 - self._slot

    def load(self) -> dict[str, Any] | None:
        """The counters saved (the larger of the two slots'), or None: no file, or no
        whole record in it (a power cut may leave it empty), which counts as none."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        found = None
        for start in (0, SLOT):
            crc, _, rest = data[start : start + SLOT].partition(b" ")
            text = rest.partition(b"\n")[0]
            try:
                if int(crc, 16) != zlib.crc32(text):
                    continue
                saved = _totals(json.loads(text))
            except (ValueError, TypeError, AttributeError):  # not a save of ``saver``'s
                continue
            found = saved if found is None else _merged(found, saved)
        return found

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Remove the file for good: a save after this (an answer an app's own thread got
        after the run's end, stored in the cache all the same) does not make it again,
        since the run's usage is stored and no reader would look at it."""
        self._removed = True
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _totals(saved: Any) -> dict[str, Any]:
    """The usage a save stands for: its counters as stored (``runs.usage``), the earlier
    attempts' added, as ``Caller.usage`` makes them at the run's end."""
    now = {kind: rounded(counters) for kind, counters in saved["now"].items()}
    return with_earlier(saved["earlier"], now)


def with_saved_usage(db_path: Path, run_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (a run's ``runs.usage``) with the counters its file saved since, if any:
    per kind of call and counter, the larger of the two."""
    saved = UsageFile(db_path, run_id).load()
    return _merged(stored, saved) if saved else stored


def _merged(stored: Mapping[str, Any], saved: Mapping[str, Any]) -> dict[str, Any]:
    """Two snapshots of the same counters: per kind of call and counter, the larger."""
    merged: dict[str, Any] = {}
    for kind in dict.fromkeys([*stored, *saved]):
        before, after = stored.get(kind), saved.get(kind)
        if not isinstance(after, dict):
            merged[kind] = before
        elif not isinstance(before, dict):
            merged[kind] = after
        else:
            merged[kind] = {
                name: _larger(before.get(name, 0), after.get(name, 0))
                for name in dict.fromkeys([*before, *after])
            }
    return merged


def _larger(stored: Any, saved: Any) -> Any:
    numbers = (int, float)
    if isinstance(stored, numbers) and isinstance(saved, numbers):
        return max(stored, saved)
    return stored
