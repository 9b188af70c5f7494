"""Databricks credentials and workspace paths for ``harness sync --databricks``.

Credentials are resolved the way the Databricks SDK (and so MLflow) resolves them, without
touching the network:

1. ``DATABRICKS_HOST`` + ``DATABRICKS_TOKEN`` (or ``DATABRICKS_CLIENT_ID`` +
   ``DATABRICKS_CLIENT_SECRET``) in the environment, when no profile is asked for;
2. otherwise a profile of ``~/.databrickscfg`` (``DATABRICKS_CONFIG_FILE`` moves the file):
   the one named by ``--profile`` or ``DATABRICKS_CONFIG_PROFILE``, else ``[DEFAULT]``.
   As in the SDK, a value set in the environment wins over the same key in the profile.

The SDK's own ``Config()`` is not used for this step because it probes the host over HTTP
when it is built; MLflow builds it anyway when the sync talks to the workspace, so the
actual authentication (PAT, OAuth M2M, ``databricks auth login`` U2M) is the SDK's.

The token never appears in a message, a ``repr`` or a log line: errors name the profile,
the file or the host, and ``sync_target.redact`` scrubs any secret out of foreign error text.
"""

from __future__ import annotations

import configparser
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, TrackingError
from harness.secrets import redact
from harness.tracking.sync_target import SyncTarget

DEFAULT_CONFIG_FILE = "~/.databrickscfg"
#: Where local experiments land in the workspace unless ``--experiment PATH`` is given.
DEFAULT_EXPERIMENT_ROOT = "/Users/{user}/harness"

_AUTH_KEYS = ("token", "client_id", "client_secret", "auth_type")
# Where Databricks Connect runs Spark (``harness run --spark databricks``); not credentials.
_COMPUTE_KEYS = ("cluster_id", "serverless_compute_id")


@dataclass(frozen=True)
class DatabricksCredentials:
    """Where and how to reach one Databricks workspace. ``token`` is never shown."""

    host: str
    profile: str | None
    source: str  # "environment" or "<config file> [PROFILE]", for messages
    token: str | None = field(default=None, repr=False)
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    auth_type: str | None = None
    cluster_id: str | None = None
    serverless_compute_id: str | None = None  # "auto": Databricks serverless compute

    @property
    def tracking_uri(self) -> str:
        """``databricks://PROFILE`` when a named profile was used, else ``databricks``."""
        if self.profile and self.profile != "DEFAULT":
            return f"databricks://{self.profile}"
        return "databricks"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be printed."""
        return tuple(s for s in (self.token, self.client_secret) if s)


def resolve_databricks_credentials(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> DatabricksCredentials:
    """Find the workspace host and credentials from the environment or ``~/.databrickscfg``.

    Raises ``ConfigError`` naming what is missing (a profile, the file, the host or any
    credential); never the token itself. No network.
    """
    env = os.environ if environ is None else environ
    env_values = {
        key: env[f"DATABRICKS_{key.upper()}"]
        for key in ("host", *_AUTH_KEYS, *_COMPUTE_KEYS)
        if env.get(f"DATABRICKS_{key.upper()}")
    }
    profile = profile or env.get("DATABRICKS_CONFIG_PROFILE") or None
    path = Path(config_file or env.get("DATABRICKS_CONFIG_FILE") or DEFAULT_CONFIG_FILE)
    path = path.expanduser()

    # Like the SDK: the file is read only when a profile is named or the environment
    # does not already configure a host with some credential.
    env_complete = "host" in env_values and any(k in env_values for k in _AUTH_KEYS)
    if profile is None and env_complete:
        return _build(env_values, profile=None, source="environment")

    file_values, used_profile = _read_profile(path, profile)
    merged = {**file_values, **env_values}
    if used_profile is None and not merged:
        raise ConfigError(
            "no Databricks credentials: set DATABRICKS_HOST and DATABRICKS_TOKEN, "
            f"or add a [DEFAULT] profile to {path}"
        )
    source = f"{path} [{used_profile}]" if used_profile else "environment"
    return _build(merged, profile=used_profile, source=source)


def _read_profile(path: Path, profile: str | None) -> tuple[dict[str, str], str | None]:
    """Return the keys of the wanted profile, or ({}, None) when there is nothing to read."""
    if not path.is_file():
        if profile is not None:
            raise ConfigError(f"Databricks profile '{profile}' requested but {path} does not exist")
        return {}, None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"cannot parse {path}: {type(exc).__name__}") from None
    # Like the SDK, a profile's keys are its own: ConfigParser would mix [DEFAULT] into
    # every section, so read the raw sections.
    sections = {name: dict(values) for name, values in parser._sections.items()}  # type: ignore[attr-defined]
    settings = sections.pop("__settings__", {})
    if parser.defaults():
        sections["DEFAULT"] = dict(parser.defaults())
    wanted = profile or settings.get("default_profile", "").strip() or None
    if wanted is None:
        return (sections["DEFAULT"], "DEFAULT") if "DEFAULT" in sections else ({}, None)
    if wanted not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise ConfigError(f"Databricks profile '{wanted}' not found in {path} (profiles: {known})")
    return {k: v for k, v in sections[wanted].items() if v}, wanted


def _build(values: Mapping[str, str], *, profile: str | None, source: str) -> DatabricksCredentials:
    host = values.get("host", "").strip().rstrip("/")
    if not host:
        raise ConfigError(f"Databricks host is not set (looked in {source}; set DATABRICKS_HOST)")
    if "://" not in host:
        host = f"https://{host}"
    has_pat = bool(values.get("token"))
    has_m2m = bool(values.get("client_id") and values.get("client_secret"))
    if not (has_pat or has_m2m or values.get("auth_type")):
        raise ConfigError(
            f"no Databricks credential in {source}: set a token (DATABRICKS_TOKEN), "
            "client_id + client_secret, or auth_type"
        )
    return DatabricksCredentials(
        host=host,
        profile=profile,
        source=source,
        token=values.get("token"),
        client_id=values.get("client_id"),
        client_secret=values.get("client_secret"),
        auth_type=values.get("auth_type"),
        cluster_id=values.get("cluster_id"),
        serverless_compute_id=values.get("serverless_compute_id"),
    )


def databricks_target(
    profile: str | None = None,
    experiment: str | None = None,
    user: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> SyncTarget:
    """A Databricks managed-MLflow sync target (``harness sync --databricks [--profile]``).

    Credentials as in :func:`resolve_databricks_credentials` (no network here). Local
    experiments land at ``/Users/<user>/harness/<experiment>``, or at ``experiment`` when
    it is an absolute workspace path (see :func:`workspace_experiment_path`). ``user``
    defaults to ``DATABRICKS_USER`` or, looked up once when the sync needs it, the
    workspace's SCIM ``Me`` endpoint.
    """
    creds = resolve_databricks_credentials(profile, environ=environ, config_file=config_file)
    lock = threading.Lock()
    users: list[str] = [user] if user else []

    def experiment_path(name: str) -> str:
        if experiment and experiment.startswith("/"):
            return experiment
        with lock:
            if not users:
                users.append(current_user(creds, environ=environ))
        return workspace_experiment_path(name, user=users[0], target=experiment)

    def prepare(path: str) -> None:
        ensure_workspace_dir(creds, path.rsplit("/", 1)[0] or "/")

    label = f"Databricks workspace {creds.host} ({creds.source})"
    return SyncTarget(creds.tracking_uri, experiment_path, prepare, creds.secrets, label)


def databricks_local_experiments(experiment: str | None) -> list[str] | None:
    """The local experiments ``harness sync --databricks --experiment`` copies: a bare name is
    that local experiment (to ``/Users/<user>/harness/<name>``); an absolute workspace path
    takes every local experiment there; none, every one to its own path."""
    if experiment is None or experiment.startswith("/"):
        return None
    return [experiment]


def workspace_experiment_path(experiment: str, *, user: str, target: str | None = None) -> str:
    """Map a local experiment name to a workspace path.

    ``target`` is ``--experiment``: an absolute path is used as is (every local experiment
    goes there); a bare name goes under ``/Users/<user>/harness/``. Without it the local
    name itself goes under ``/Users/<user>/harness/``.
    """
    name = target or experiment
    if name.startswith("/"):
        return name
    name = name.strip().strip("/")
    if not name:
        raise ConfigError("experiment name is empty")
    return f"{DEFAULT_EXPERIMENT_ROOT.format(user=user)}/{name}"


def _workspace_client(creds: DatabricksCredentials):  # pragma: no cover - needs a workspace
    from databricks.sdk import WorkspaceClient

    if creds.profile:
        return WorkspaceClient(profile=creds.profile)
    return WorkspaceClient(
        host=creds.host,
        token=creds.token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
    )


def current_user(creds: DatabricksCredentials, *, environ: Mapping[str, str] | None = None) -> str:
    """The workspace user name: ``DATABRICKS_USER``, else the SCIM ``Me`` endpoint (network)."""
    env = os.environ if environ is None else environ
    if env.get("DATABRICKS_USER"):
        return env["DATABRICKS_USER"]
    try:  # pragma: no cover - needs a workspace
        user = _workspace_client(creds).current_user.me().user_name
    except Exception as exc:  # noqa: BLE001 - SDK errors have no common base worth naming
        raise TrackingError(
            f"cannot look up the Databricks user at {creds.host} ({creds.source}): "
            + redact(_first_line(exc), creds.secrets)
        ) from None
    if not user:  # pragma: no cover
        raise TrackingError(f"the Databricks workspace {creds.host} returned no user name")
    return user


def ensure_workspace_dir(creds: DatabricksCredentials, path: str) -> None:  # pragma: no cover
    """Create the workspace folder that will hold an experiment (network; idempotent)."""
    try:
        _workspace_client(creds).workspace.mkdirs(path)
    except Exception as exc:  # noqa: BLE001
        raise TrackingError(
            f"cannot create workspace folder {path} at {creds.host}: "
            + redact(_first_line(exc), creds.secrets)
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
