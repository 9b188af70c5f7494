"""Cassettes: cache entries in a portable, diffable file to commit next to a test suite.

A cassette is JSON Lines, gzipped when its name ends in ``.gz``. The first line is a
header, ``{"harness_cassette":1,"entry_schema":1,"key_schema":1}``; every other line is
one cache entry exactly as the cache stores it (canonical JSON, see
``harness.cache.entry``), sorted by key, so exporting the same entries twice gives the same
bytes and a change shows as a change of the lines it touches. Gzipped cassettes carry no
name or time in their header, for the same reason.

Importing checks every line as the cache would (checksum, format) and, because a checksum
proves nothing about who wrote it, also that each entry's key is the key of its own
request: a tampered cassette cannot put an answer under somebody else's request.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cache.entry import ENTRY_SCHEMA_VERSION, CacheEntry
from harness.cache.keys import KEY_SCHEMA_VERSION, canonical_key
from harness.cache.store import REPAIR_HINT, EntryStore
from harness.errors import CacheCorrupt, CacheError, ConfigError
from harness.faults import environment_fault
from harness.files import folders_for, replaced_on_success, text_writer

__all__ = [
    "CASSETTE_VERSION",
    "ImportReport",
    "check_cassette",
    "export_cassette",
    "import_cassette",
]

CASSETTE_VERSION = 1
_GZIP_MAGIC = b"\x1f\x8b"
_BATCH = 500  # entries written per transaction on import


@dataclass
class ImportReport:
    """What ``import_cassette`` did with each line of a cassette."""

    added: int = 0
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)  # keys whose local entry was kept
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "unchanged": self.unchanged,
            "conflicts": list(self.conflicts),
            "invalid": [{"line": line, "problem": problem} for line, problem in self.invalid],
        }


def _header() -> str:
    header = {
        "harness_cassette": CASSETTE_VERSION,
        "entry_schema": ENTRY_SCHEMA_VERSION,
        "key_schema": KEY_SCHEMA_VERSION,
    }
    return json.dumps(header, sort_keys=True, separators=(",", ":"))


def export_cassette(cache: EntryStore, path: Path | str, keys: Iterable[str] | None = None) -> int:
    """Write the entries of ``keys`` (all entries if None) to a cassette at ``path``.

    Keys that are not in the cache are skipped; the return value is the number of
    entries written. A corrupt entry raises ``CacheCorrupt`` naming its key and
    ``harness cache verify``/``prune`` rather than leave a silent hole in the cassette.
    Folders missing on the way to ``path`` are created (``tests/cassettes/`` need not
    exist yet). The file is written to a temporary name and renamed, so a failed export
    leaves no half-written cassette, nor the folders it created. A full disk or a
    read-only folder raises the ``EnvironmentFault`` that names it (exit 74).
    """
    path = Path(path)
    wanted = cache.keys() if keys is None else sorted(set(keys))
    written = 0
    try:
        with (
            folders_for(path),
            replaced_on_success(path) as temporary,
            text_writer(temporary, gzipped=path.name.endswith(".gz")) as out,
        ):
            out.write(_header() + "\n")
            for key in wanted:
                entry = cache.get(key)
                if entry is not None:
                    out.write(entry.to_text() + "\n")
                    written += 1
    except CacheCorrupt as exc:
        raise CacheCorrupt(f"cannot export {path}: {exc}; {REPAIR_HINT}") from None
    except OSError as exc:
        fault = environment_fault(exc, path)  # a full disk, a read-only folder: exit 74
        if fault is not None:
            raise fault from None
        raise CacheError(f"cannot write cassette {path}: {_write_problem(path, exc)}") from None
    return written


def _write_problem(path: Path, exc: OSError) -> str:
    """Why ``path`` could not be written, naming a file that stands where a folder must be
    (the bare error would say "File exists" or "Not a directory" of some other path)."""
    standing = next((folder for folder in path.parents if folder.exists()), None)
    if standing is not None and not standing.is_dir():
        return f"{standing} is not a folder"
    return exc.strerror or str(exc)


def _read_lines(path: Path) -> Generator[str, None, None]:
    if path.exists() and not path.is_file() and not path.is_dir():
        # A named pipe with no writer: opening it waited forever (and a pipe with one lost
        # its first bytes to the gzip probe below).
        raise CacheError(f"{path} is not a regular file (a pipe, a socket or a device)")
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == _GZIP_MAGIC
        opener = gzip.open if gzipped else open
        # utf-8-sig: a cassette saved by an editor that starts files with a byte-order mark
        # (Notepad, PowerShell's Set-Content -Encoding utf8) is the same cassette.
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="\n") as lines:
            yield from lines
    except FileNotFoundError:
        raise CacheError(f"no cassette at {path}") from None
    except IsADirectoryError:
        raise CacheError(f"{path} is a directory, not a cassette") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise CacheError(f"cannot read cassette {path}: {exc}") from None


def _check_header(path: Path, line: str) -> bool:
    """True if ``line`` is the header; False if it is an entry (a header-less cassette)."""
    try:
        first = json.loads(line)
    except ValueError:
        first = None
    if isinstance(first, dict) and "harness_cassette" in first:
        version = first["harness_cassette"]
        if version != CASSETTE_VERSION:
            raise CacheError(
                f"{path} is a version {version!r} cassette; this harness reads version "
                f"{CASSETTE_VERSION}"
            )
        return True
    if isinstance(first, dict) and {"key", "request", "response"} <= first.keys():
        return False
    raise CacheError(f"{path} is not a harness cassette (its first line is not a header)")


def _parse_entry(line: str) -> CacheEntry:
    try:
        document = json.loads(line)
    except ValueError:
        raise CacheCorrupt("not valid JSON (truncated line?)") from None
    entry = CacheEntry.from_document(document)
    try:
        own_key = canonical_key(entry.request)
    except ConfigError as exc:
        raise CacheCorrupt(f"its request cannot be keyed: {exc}") from None
    if own_key != entry.key:
        raise CacheCorrupt(f"key {entry.key} is not the key of its request (tampered?)")
    return entry


def import_cassette(cache: EntryStore, path: Path | str) -> ImportReport:
    """Merge a cassette into ``cache``; safe to run any number of times.

    A valid entry whose key is not in the cache (or whose local entry is corrupt) is
    added; one whose response equals the local one is unchanged; one whose response
    differs is a conflict and the local entry is kept. Lines that fail their checksum,
    are not entries, or whose key is not their request's key are rejected and listed in
    ``invalid`` with their line number. Raises ``CacheError`` if the file is missing or
    is not a cassette.
    """
    path = Path(path)
    report = ImportReport()
    pending: list[CacheEntry] = []
    for line_no, line in _entry_lines(path, _read_lines(path)):
        if not line.strip():
            continue
        try:
            entry = _parse_entry(line)
        except CacheCorrupt as exc:
            report.invalid.append((line_no, str(exc).replace("cache entry ? ", "")))
            continue
        pending.append(entry)
        if len(pending) >= _BATCH:
            _merge(cache, pending, report)
            pending = []
    _merge(cache, pending, report)
    return report


def check_cassette(path: Path | str) -> None:
    """Raise ``CacheError`` unless ``path`` is a cassette this harness reads whole: the file
    is there, its header is right, it reads to its end (a gzip cut short does not) and every
    line is a good entry (the first bad one is named, with how many more there are). For a
    command to call before it opens, and so creates, a cache to import into, so that a
    damaged file imports nothing rather than the part before the damage."""
    path = Path(path)
    lines = _read_lines(path)
    bad: list[tuple[int, str]] = []
    try:
        for line_no, line in _entry_lines(path, lines):
            if line.strip():
                try:
                    _parse_entry(line)
                except CacheCorrupt as exc:
                    bad.append((line_no, str(exc).replace("cache entry ? ", "")))
    finally:
        lines.close()
    if bad:
        (line_no, problem), more = bad[0], len(bad) - 1
        others = f" (and {more} more line{'s' if more > 1 else ''})" if more else ""
        raise CacheError(f"{path} line {line_no}: {problem}{others}")


def _entry_lines(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """The numbered lines after the header (all of them if there is none); the header is
    checked before this returns."""
    numbered: Iterator[tuple[int, str]] = enumerate(lines, start=1)
    for line_no, line in numbered:
        if line.strip():
            if not _check_header(path, line):
                numbered = _chain_first((line_no, line), numbered)
            return numbered
    raise CacheError(f"{path} is not a harness cassette (it is empty)")


def _chain_first(
    first: tuple[int, str], rest: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _merge(cache: EntryStore, entries: list[CacheEntry], report: ImportReport) -> None:
    if not entries:
        return
    with cache.batch():
        for entry in entries:
            try:
                local = cache.get(entry.key)
            except CacheCorrupt:
                local = None  # a corrupt local entry can never be served; the good one wins
            if local is None:
                cache.set(entry.key, entry)
                report.added += 1
            elif local.response == entry.response:
                report.unchanged += 1
            else:
                report.conflicts.append(entry.key)
