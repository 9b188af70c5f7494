"""MLflow's SQLite store opened with the standard library, for schemas verified here.

What a harness run writes to MLflow is a few hundred rows plus its traces, yet ``import
mlflow`` costs 1.4-4 s of CPU (3.8 s for MLflow 3.17 here) and opening its
``SqlAlchemyStore`` ~0.7 s more: almost all of MLflow's cost in a run. So for a local
SQLite store whose alembic
revision is in ``VERIFIED_SCHEMAS`` and whose installed MLflow is a version listed there,
harness writes the run with ``sqlite3`` (``harness.tracking.sql_run``): the same tables
and values as MLflow's own API writes. tests/tracking/test_mlflow_sql.py reads runs written
both ways back through ``MlflowClient`` and compares them field by field.

A new local store is built the same way, from the statements MLflow's migrations leave
behind (``harness.tracking.mlflow_schema``). Everything else goes through MLflow's API
(``harness.tracking.mlflow_log``): a revision or MLflow version not listed here, a
server URI, and MLflow's opt-in modes that change what a write must touch (trace rollups,
workspaces). Adding a version means running that test with it installed (``make
test-mlflow-versions MLFLOW_VERSIONS=x.y``), adding its revision below, writing its new
store's schema (``python -m harness.tracking.mlflow_schema``) and widening pyproject's
MLflow range, which a test keeps equal to the versions listed here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path

from harness.errors import TrackingError
from harness.tracking.mlflow_store import DB_FILE, artifact_root_for

__all__ = [
    "VERIFIED_SCHEMAS",
    "connect",
    "mapped_sqlite_errors",
    "tagged_runs",
    "transaction",
    "verified_store",
]

# alembic revision of the store -> MLflow versions (major.minor) whose writes the SQL path
# was compared with.
VERIFIED_SCHEMAS: dict[str, tuple[str, ...]] = {
    "dc11669786a5": ("3.17",),
}
# MLflow settings under which its writes touch more than the SQL path writes.
_UNSUPPORTED_MODES = ("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "MLFLOW_ENABLE_WORKSPACES")
_BUSY_TIMEOUT_S = 20.0  # as MLflow's own SQLite engine (PRAGMA busy_timeout = 20000)
# SQLite's default page cache (2 MB), not MLflow's engine's 16 MB (mlflow_store._PAGE_CACHE_KIB):
# the worker writing a run's traces this way grew to 49 MB with 16 MB, 34 MB with 2 MB, in a
# 10,000-row x 4-call cached rerun over a 631 MB store (three alternated pairs: the process
# tree's peak RSS median 357 -> 346 MB; the worker's CPU, on the other core, median 4.03 ->
# 4.18 s, +4%, its runs with 16 MB spreading 4.02-5.17 s on a loaded machine).
_PAGE_CACHE_KIB = 2048


def verified_store(tracking_uri: str) -> Path | None:
    """The database file of ``tracking_uri`` if harness may write it directly, else None.

    A local store that does not exist yet is created first, from the schema MLflow builds
    (``harness.tracking.mlflow_schema``), when the installed MLflow is a verified one.
    """
    artifact_root = artifact_root_for(tracking_uri)
    if artifact_root is None:
        return None
    db_path = artifact_root.parent / DB_FILE
    if any(_truthy(os.environ.get(m)) for m in _UNSUPPORTED_MODES):
        return None
    if not db_path.exists() and _creatable():
        from harness.tracking.mlflow_schema import create_store

        try:
            artifact_root.mkdir(parents=True, exist_ok=True)
            create_store(db_path, artifact_root)
        except (OSError, sqlite3.Error):
            return None  # MLflow's API tries, and names the fault as it does for any store
    if not db_path.is_file():
        return None
    versions = VERIFIED_SCHEMAS.get(schema_revision(db_path) or "")
    if versions is None or installed_mlflow() not in versions:
        return None
    return db_path


def _creatable() -> bool:
    """Whether a new store may be built from the bundled schema: the installed MLflow is
    one its revision was verified with."""
    from harness.tracking.mlflow_schema import schema

    return installed_mlflow() in VERIFIED_SCHEMAS.get(schema()["revision"], ())


def schema_revision(db_path: Path) -> str | None:
    """The store's alembic revision, None when it has none (or is no MLflow store)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def tagged_runs(tracking_uri: str, harness_run_ids: Collection[str]) -> dict[str, str]:
    """Harness run id -> the MLflow run (not deleted) tagged with it (``harness.run_id``)
    in the local SQLite store at ``tracking_uri``, the oldest when there are several (the
    one ``--resume`` continues). Read as ``schema_revision`` reads, with ``sqlite3`` and
    read-only: no MLflow import, nothing written. Empty for a store that is not local, does
    not exist or cannot be read (the runs, tags and their columns are MLflow's since 1.0)."""
    from harness.tracking.record import HARNESS_RUN_TAG

    root = artifact_root_for(tracking_uri)
    db_path = None if root is None else root.parent / DB_FILE
    ids = list(dict.fromkeys(harness_run_ids))
    if db_path is None or not ids or not db_path.is_file():
        return {}
    found: dict[str, str] = {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            for start in range(0, len(ids), 500):  # within SQLite's limit on parameters
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    "SELECT t.value, r.run_uuid FROM tags t JOIN runs r ON r.run_uuid = "
                    "t.run_uuid WHERE t.key = ? AND r.lifecycle_stage = 'active' AND t.value "
                    f"IN ({', '.join('?' * len(chunk))}) ORDER BY r.start_time, r.run_uuid",
                    [HARNESS_RUN_TAG, *chunk],
                ).fetchall()
                for harness_run_id, mlflow_run_id in rows:
                    found.setdefault(str(harness_run_id), str(mlflow_run_id))
    except sqlite3.Error:
        return {}
    return found


def installed_mlflow() -> str | None:
    """The installed MLflow's major.minor version, without importing MLflow."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        parts = version("mlflow").split(".")
    except PackageNotFoundError:
        return None
    return ".".join(parts[:2])


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection as MLflow's engine makes them (foreign keys on, 20 s busy timeout).

    Autocommit mode: every write happens inside ``transaction``.
    """
    try:
        conn = sqlite3.connect(db_path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = -{_PAGE_CACHE_KIB}")
    except sqlite3.Error as e:
        raise TrackingError(f"cannot open the MLflow store {db_path}: {e}") from e
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (BEGIN IMMEDIATE) so it never fails half-way
    on a lock another writer holds; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def mapped_sqlite_errors(what: str) -> Iterator[None]:
    """SQLite and file errors as ``TrackingError``, where they enter."""
    try:
        yield
    except TrackingError:
        raise
    except (sqlite3.Error, OSError, ValueError, TypeError, KeyError) as exc:
        raise TrackingError(f"{what}: {exc}") from exc
