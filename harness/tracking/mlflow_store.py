"""The MLflow store of a project: where it is, opening (or creating) it, its experiments.

``open_store`` returns a client and the tracking store for a URI, and creates a new SQLite
store quickly and atomically; ``mapped_errors`` turns MLflow, SQLAlchemy and file errors
into ``TrackingError`` where they enter. The small conversions every write needs (epoch
milliseconds, params cut to MLflow's length, the user) live here too.

``import mlflow`` costs about a second, so MLflow is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError
from harness.faults import first_line
from harness.secrets import redact

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "ARTIFACTS_DIR",
    "DB_FILE",
    "DEFAULT_EXPERIMENT",
    "MLRUNS_DIR",
    "artifact_root_for",
    "epoch_ms",
    "get_or_create_experiment",
    "mapped_errors",
    "mlflow_params",
    "open_store",
    "tracking_uri_for",
    "user_name",
]

DEFAULT_EXPERIMENT = "harness"
MLRUNS_DIR = "mlruns"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"
_SQLITE_PREFIX = "sqlite:///"


def tracking_uri_for(home: Path) -> str:
    """The default MLflow store of a project home: ``sqlite:///<home>/mlruns/mlflow.db``."""
    db_path = Path(home).expanduser().resolve() / MLRUNS_DIR / DB_FILE
    return _SQLITE_PREFIX + db_path.as_posix()


def artifact_root_for(tracking_uri: str) -> Path | None:
    """Where a SQLite store keeps artifacts (``artifacts/`` next to the database), else None."""
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    db_path = tracking_uri[len(_SQLITE_PREFIX) :].split("?", 1)[0]
    if not db_path or db_path == ":memory:":
        return None
    return Path(db_path).resolve().parent / ARTIFACTS_DIR


@contextlib.contextmanager
def mapped_errors(what: str, secrets: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn MLflow, database and file errors into ``TrackingError`` where they enter,
    ``secrets`` (a tracking URI's password or token, ``uri_secrets``) scrubbed out."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except TrackingError:
        raise
    except (MlflowException, SQLAlchemyError, OSError, ValueError, TypeError, KeyError) as exc:
        # One line: SQLAlchemy appends the statement and its parameters (row data).
        said = redact(first_line(exc), secrets)
        raise TrackingError(f"{what}: {said}") from exc


def epoch_ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


def open_store(tracking_uri: str) -> tuple[MlflowClient, Any]:
    """A client for ``tracking_uri`` and its tracking store, creating a SQLite store if new."""
    from mlflow.tracking import MlflowClient

    store = None
    artifact_root = artifact_root_for(tracking_uri)
    if artifact_root is not None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        artifact_root.mkdir(parents=True, exist_ok=True)
        db_path = artifact_root.parent / DB_FILE
        if not db_path.exists():
            _create_sqlite_store(db_path, artifact_root)
        # Opening the store ourselves, with the home's artifact root, means the database
        # (and its "Default" experiment) is created pointing into the home, not the cwd.
        with _quiet_logger("mlflow.store.db.utils"):
            store = SqlAlchemyStore(tracking_uri, artifact_root.as_posix())
        _enlarge_page_cache(store.engine)
    # The registry (prompts) is the same SQLite file: never MLFLOW_REGISTRY_URI's.
    registry_uri = tracking_uri if artifact_root is not None else None
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    if store is None:
        # MlflowClient exposes no public accessor for its store; trace writes need it.
        store = client._tracking_client.store
    return client, store


# SQLite's default page cache is 2 MB; a run's traces update a dozen indexes, which in a
# store of a few hundred MB means re-reading index pages from the OS on every insert.
# 16 MB keeps the hot ones (allocated only as pages are read); 64 MB cost 55-60 MB more
# memory for no CPU this machine could tell apart. ``bench/bench_cached_rerun.py --sizes
# 10000`` over a store of four 10,000-row runs, four invocations each, alternating: the
# worker's CPU medians 5.6, 6.6, 6.6, 6.3 s at 16 MB and 4.6, 6.5, 6.3, 6.7 s at 64 MB;
# peak RSS of the process tree 445-471 MB against 511-533 MB (the worker 75 against 130).
_PAGE_CACHE_KIB = 16384


def _enlarge_page_cache(engine: Any) -> None:
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size = -{_PAGE_CACHE_KIB}")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener close; new ones get it


def _create_sqlite_store(db_path: Path, artifact_root: Path) -> None:
    """Create a new SQLite store quickly, and atomically.

    MLflow builds a new store by running ~400 alembic DDL statements, each its own
    fsync'd transaction: 5-9 s on a laptop disk. Built in a temporary file with
    ``synchronous=OFF`` it takes ~1.5 s, and linking it into place means a crash
    mid-way leaves no half-built store behind.

    Linked, not renamed: ``os.link`` never replaces a file that exists. Two processes
    that start together in a fresh home may both build one; the first link wins and the
    other process uses that store. A rename would put the second store in place of the
    first under a process that has it open already ("attempt to write a readonly
    database", and that run never reaches MLflow).
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    temporary = db_path.with_name(f".{db_path.name}.{os.getpid()}.tmp")

    def unsynced(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    event.listen(Engine, "connect", unsynced)
    try:
        with quiet_store_creation():
            store = SqlAlchemyStore(_SQLITE_PREFIX + temporary.as_posix(), artifact_root.as_posix())
        store.engine.dispose()
        with contextlib.suppress(FileExistsError):  # another process's store won: use it
            os.link(temporary, db_path)
    finally:
        event.remove(Engine, "connect", unsynced)
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def quiet_store_creation() -> Iterator[None]:
    """Without the INFO lines MLflow logs as it creates a SQL store's tables."""
    with _quiet_logger("mlflow.store.db.utils"), _quiet_logger("alembic.runtime.migration"):
        yield


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Hide a logger's INFO lines ("Creating initial MLflow database tables...") for a while."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def get_or_create_experiment(client: MlflowClient, store: Any, name: str) -> Any:
    """The experiment called ``name``; a new one keeps artifacts under the store's root."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it or use --experiment"
            )
        return experiment
    try:
        # The store (not the client) picks <artifact root>/<experiment id> as location.
        experiment_id = store.create_experiment(name)
    except MlflowException:
        # Another process may have created it in between.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment
    return client.get_experiment(experiment_id)


def user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def mlflow_params(values: dict[str, Any]) -> list[Any]:
    """MLflow params, each value cut to MLflow's maximum length."""
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    return [Param(str(k), str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in values.items()]
