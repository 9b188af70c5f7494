"""Faults of the environment, named in one line: a full disk, a read-only home, a damaged file.

The operating system, SQLite (the cache, MLflow's store), SQLAlchemy and DuckDB report
the same few faults in their own words, and only the OS gives an errno. ``environment_fault``
recognizes them in an exception (and its causes) and returns the ``EnvironmentFault`` to
raise instead, so each place that writes a file maps its errors where they enter and every
message reads the same way::

    no space left on device while writing /home/me/project/harness.duckdb
    /home/me/project/cache is on a read-only file system

Anything else gives None: the caller keeps its own mapping. Messages never carry what a
library appends after the first line (SQLAlchemy's statement and its parameters).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from harness.errors import DiskFull, EnvironmentFault, NotWritable

__all__ = ["environment_fault", "first_line"]

_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS}
_DENIED = {errno.EACCES, errno.EPERM}

# The same faults as SQLite and DuckDB spell them (their exceptions carry no errno).
_FULL_TEXT = (
    "no space left on device",
    "database or disk is full",
    "file too large",
    "disk quota exceeded",
)
_READ_ONLY_TEXT = ("read-only file system", "attempt to write a readonly database")
_DENIED_TEXT = ("permission denied",)
_CORRUPT_TEXT = (
    "file is not a database",
    "database disk image is malformed",
    "not a valid duckdb database file",
    "checksum mismatch",
    "database file is corrupt",
)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (SQLAlchemy appends the SQL and its parameters),
    the driver's own words when SQLAlchemy's error holds them (``file is not a database``,
    not ``(sqlite3.DatabaseError) file is not a database``), also when it comes wrapped in
    an error that repeats its text, as MLflow's store raises it (an ``MlflowException``)."""
    cause = error.__cause__
    if getattr(error, "orig", None) is None and cause is not None and str(cause) == str(error):
        error = cause  # the wrapper adds nothing: its cause may hold the driver's error
    orig = getattr(error, "orig", None)  # SQLAlchemy: the driver's own error, without the SQL
    source = orig if isinstance(orig, BaseException) else error
    lines = str(source).strip().splitlines()
    return lines[0].strip() if lines else type(source).__name__


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield orig
            seen.add(id(orig))
        current = current.__cause__ or current.__context__


def environment_fault(
    error: BaseException,
    path: str | os.PathLike[str] | None,
    *,
    action: str = "writing",
    corrupt: type[EnvironmentFault] | None = None,
    what: str = "",
) -> EnvironmentFault | None:
    """The fault ``error`` reports while ``action`` ``path``, or None if it is no such fault.

    ``corrupt`` is the class to use when the file is damaged (the DuckDB store and the
    MLflow store have their own), ``what`` names that file in the message ("the MLflow
    store"). ``action`` reads "writing" or "opening".
    """
    where = str(path) if path is not None else "the project home"
    texts = []
    for link in _chain(error):
        code = getattr(link, "errno", None)
        if isinstance(link, OSError) and isinstance(code, int):
            if code in _FULL:
                return _full(where, action, code)
            if code in _READ_ONLY:
                return NotWritable(f"{where} is on a read-only file system", path=where)
            if code in _DENIED:
                return NotWritable(f"permission denied while {action} {where}", path=where)
        texts.append(first_line(link).lower())
    text = " ".join(texts)
    if any(t in text for t in _FULL_TEXT):
        return _full(where, action, errno.EFBIG if "file too large" in text else errno.ENOSPC)
    if any(t in text for t in _READ_ONLY_TEXT):
        return NotWritable(f"{where} is read-only ({_found(text, _READ_ONLY_TEXT)})", path=where)
    if any(t in text for t in _DENIED_TEXT):
        return NotWritable(f"permission denied while {action} {where}", path=where)
    if corrupt is not None and any(t in text for t in _CORRUPT_TEXT):
        name = f"{what} at {where}" if what else where
        return corrupt(
            f"{name} is damaged or not a database ({_found(text, _CORRUPT_TEXT)}); "
            "move it aside (harness starts a new one) or restore a copy",
            path=where,
        )
    return None


def _full(where: str, action: str, code: int) -> DiskFull:
    if code == errno.EFBIG:
        return DiskFull(f"file size limit reached while {action} {where}", path=where)
    return DiskFull(f"no space left on device while {action} {where}", path=where)


def _found(text: str, needles: tuple[str, ...]) -> str:
    return next(n for n in needles if n in text)
