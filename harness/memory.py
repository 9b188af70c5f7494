"""Handing memory a run's end has freed back to the operating system.

A run's end reads every row several times over (its aggregates, its report, its MLflow
table), each a burst of short-lived allocations: DuckDB's query buffers and the Python
objects built from them on the C library's heap, the report's Arrow arrays in pyarrow's
pool. Both allocators keep what is freed for reuse, so the process's resident memory only
grows from one step to the next and its peak is the sum of them. ``release_freed`` between
the steps returns it: pyarrow's pool (``MemoryPool.release_unused``) and glibc's heap
(``malloc_trim``, as Dask's workers do). Numbers in ``harness.runner.run_end.RunEnd._finished``.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

__all__ = ["release_freed"]


def release_freed() -> None:
    """Return freed memory to the OS: pyarrow's pool (if pyarrow is loaded) and the heap."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None elsewhere (musl, macOS and Windows have none)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
