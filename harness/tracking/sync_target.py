"""The sync target: which URIs it may be, where runs go, whether it answers, and the
one-sync-at-a-time lock, and the secrets a tracking URI carries (``uri_secrets``), which
``harness.secrets.redact`` scrubs out of any message that names the target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse, urlunparse

from harness.errors import ConfigError, TrackingError
from harness.secrets import redact

LOCK_FILE = "harness-sync.lock"
# MLflow's SQL stores (SQLAlchemy URIs; a driver may follow, as in postgresql+psycopg2).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass
class SyncTarget:
    """Where to copy: a tracking URI and how local experiment names map to target names."""

    tracking_uri: str
    experiment_path: Callable[[str], str] | None = None  # local name -> target name
    prepare_experiment: Callable[[str], None] | None = None  # called before creating one
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from messages
    label: str | None = None  # how messages name the target; default: its URI
    # Spans over OTLP in bulk (an MLflow server) or as each trace's artifact (Databricks);
    # None: by the target's kind.
    bulk_spans: bool | None = None

    def __post_init__(self) -> None:
        # What the URI itself carries: MLflow's own errors quote the URL whole ("API
        # request to https://user:pw@host/... failed").
        self.secrets = tuple(dict.fromkeys((*self.secrets, *uri_secrets(self.tracking_uri))))


def uri_secrets(uri: str) -> tuple[str, ...]:
    """What a tracking URI may carry that no message may show: its password (as written
    and decoded) and the values of its query (a server's token can be passed there)."""
    parsed = urlparse(uri)
    found = []
    if parsed.password:
        found += [parsed.password, unquote(parsed.password)]
    found += [value for _, value in parse_qsl(parsed.query) if len(value) >= 4]
    return tuple(dict.fromkeys(found))


def check_tracking_uri(uri: str) -> None:
    """Refuse, in one line, a ``--tracking-uri`` that sync cannot write to, before MLflow
    is imported: MLflow took any text for a file-store folder (and refused it with a
    paragraph) and an unknown scheme for a registry it cannot build."""
    shown = display_uri(uri)
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower().partition("+")[0] or uri.strip().lower()  # or "databricks"
    if scheme in ("http", "https") and parsed.hostname:
        return
    if scheme in DATABASE_SCHEMES:
        return
    if scheme in ("databricks", "databricks-uc", "uc"):
        raise ConfigError(
            f"--tracking-uri {shown}: to sync to Databricks use --databricks [--profile NAME], "
            "which also places the experiments in the workspace"
        )
    if scheme == "file":
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1"):
            return
        raise ConfigError(
            f"--tracking-uri {shown}: MLflow 3 refuses its file store unless "
            "MLFLOW_ALLOW_FILE_STORE=true; give a database such as sqlite:///PATH/mlflow.db"
        )
    raise ConfigError(
        f"--tracking-uri takes an MLflow server (http://HOST:PORT or https://...) or an MLflow "
        f"database (sqlite:///PATH, postgresql://, mysql://, mssql://), not {shown!r}; "
        "for Databricks use --databricks"
    )


def check_not_the_source(source_uri: str, target_uri: str) -> None:
    """Refuse a target that is the local store itself (``sqlite:///HOME/mlruns/mlflow.db``):
    each run was copied into the store it came from, a second time, as a new run."""
    paths = []
    for uri in (source_uri, target_uri):
        parsed = urlparse(uri)
        if parsed.scheme.lower().partition("+")[0] != "sqlite" or not parsed.path[1:]:
            return
        paths.append(Path(unquote(parsed.path)[1:]).expanduser().resolve())
    if paths[0] == paths[1]:
        raise ConfigError(
            f"--tracking-uri {display_uri(target_uri)} is this project's own MLflow store; "
            "sync copies it to another server or database"
        )


@contextmanager
def sync_lock(source_uri: str, *, hold: bool) -> Iterator[None]:
    """Hold the local store's sync lock for the block; fail at once if another sync has it.

    A TrackingError, not a ConfigError: nothing the user wrote is wrong, the sync cannot
    run now. The OS releases the lock when its process dies, even by SIGKILL.
    """
    # Only a SQLite store (harness's) has a directory of its own to hold the lock.
    db_path = unquote(urlparse(source_uri).path)[1:]  # sqlite:////abs/x.db -> /abs/x.db
    if not (hold and source_uri.startswith("sqlite:///") and db_path):
        yield
        return
    from filelock import FileLock, Timeout

    path = Path(db_path).parent / LOCK_FILE
    try:
        with FileLock(path, timeout=0):
            yield
    except Timeout:
        message = f"another harness sync from {path.parent} is running; wait for it to finish"
        raise TrackingError(f"{message} (lock: {path})") from None


def check_reachable(client: Any, target: SyncTarget, shown: str, *, databricks: bool) -> None:
    """Fail fast, in one line, when the target is unreachable or refuses us."""
    from mlflow.utils.rest_utils import http_request

    remote = urlparse(target.tracking_uri).scheme in ("http", "https")
    if not (remote or databricks):
        return  # a local store: nothing to reach
    try:
        creds = client._tracking_client.store.get_host_creds()
        probe = {"max_results": 1}  # the cheapest authenticated call, without retries
        response = http_request(
            creds,
            "/api/2.0/mlflow/experiments/search",
            "GET",
            params=probe,
            max_retries=0,
            timeout=15,
            raise_on_status=False,
            retry_timeout_seconds=1,
        )
    except Exception as exc:  # noqa: BLE001 - connection errors of every kind
        reason = redact(_connection_reason(exc), target.secrets)
        raise TrackingError(f"cannot reach {shown}: {reason}") from None
    status = response.status_code
    if status in (401, 403):
        # An MLflow server has no profile: MLflow sends what these variables hold.
        fix = (
            "check the token or profile"
            if databricks
            else "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN, to credentials it accepts"
        )
        raise TrackingError(f"{shown} refused the credentials (HTTP {status}); {fix}")
    if status >= 400:
        raise TrackingError(
            f"{shown} answered HTTP {status} to a test request; is it an MLflow server?"
        )
    try:
        response.json()
    except ValueError:  # a web page: MLflow puts /api/... after a query string, say
        hint = (
            "MLflow adds its API paths after the URI, so a query string (?token=...) is "
            "not sent as one: give a token in MLFLOW_TRACKING_TOKEN"
            if urlparse(target.tracking_uri).query
            else "is it an MLflow server's tracking URI?"
        )
        raise TrackingError(
            f"{shown} answered a test request with a page, not MLflow's JSON; {hint}"
        ) from None


def display_uri(uri: str) -> str:
    """The URI as messages and reports show it: without any user:password part, and with
    the values of its query masked (``?token=***``: a server's token can be passed there),
    their names kept to tell which were given."""
    shown = without_credentials(uri)
    parsed = urlparse(shown)
    if not (parsed.query or parsed.fragment):
        return shown
    return urlunparse(
        parsed._replace(query=_masked(parsed.query), fragment=_masked(parsed.fragment))
    )


def without_credentials(uri: str) -> str:
    """The URI without any user:password part (the rest as given: this names a store)."""
    parsed = urlparse(uri)
    if not (parsed.password or parsed.username):
        return uri
    netloc = f"{parsed.hostname}:{parsed.port}" if parsed.port else parsed.hostname or ""
    return urlunparse(parsed._replace(netloc=netloc))


def _masked(query: str) -> str:
    """``a=1&b=2`` -> ``a=***&b=***``; a part without a value is kept as it is."""
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        parts.append(f"{name}=***" if sep and value else part)
    return "&".join(parts)


_CONNECTION_REASON = re.compile(
    r"Connection refused|timed out|Name or service not known|nodename nor servname provided"
    r"|Temporary failure in name resolution|No route to host|CERTIFICATE_VERIFY_FAILED"
)
# A target that answered before and stops: refused, or dropped in the middle of a request.
_CONNECTION_LOST = re.compile(
    r"Connection refused|timed out|Connection reset by peer|Connection aborted"
    r"|Remote end closed connection without response"
)


def _connection_reason(exc: BaseException) -> str:
    """A short reason for a failed connection, instead of urllib3's nested retry message."""
    if "WRONG_VERSION_NUMBER" in str(exc):  # https:// to a server that answers plain HTTP
        return "the TLS handshake failed (WRONG_VERSION_NUMBER): is it http://, not https://?"
    found = _CONNECTION_REASON.search(str(exc))
    return found.group(0) if found else first_line(exc)


def connection_lost(exc: BaseException) -> str | None:
    """The short reason when a target that answered stops answering (MLflow wraps it in a
    paragraph that quotes the URL and urllib3's retry state, cut short in one line), else
    None."""
    found = _CONNECTION_LOST.search(str(exc))
    return found.group(0) if found else None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
