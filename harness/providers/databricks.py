"""``databricks:/ENDPOINT``: a Databricks model serving endpoint (OpenAI-compatible chat).

Requests go to ``{host}/serving-endpoints/{ENDPOINT}/invocations`` with an OpenAI chat
body (no ``model``: the endpoint names it) and a bearer token. Where host and token come
from follows the Databricks SDK's unified auth (``databricks.sdk.config.Config``: explicit
settings, then the environment, then the config file, each filling only what is still
unset), and ``harness sync --databricks`` (``harness.tracking.databricks_auth``) agrees:

1. ``host`` in ``[providers.databricks]`` of harness.toml;
2. ``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN``, even when a profile is named;
3. the profile named (``profile`` in ``[providers.databricks]``, or
   ``DATABRICKS_CONFIG_PROFILE``), else the ``DEFAULT`` profile, for what is still missing
   (the file is not read when the environment has both and no profile is named).

Profiles are read from ``DATABRICKS_CONFIG_FILE``, default ``~/.databrickscfg``. A profile
with no ``token`` (OAuth, ``databricks auth login``) is used through ``databricks-sdk`` when
it is installed, which then supplies fresh headers per request. The host may omit
``https://``. The token is never part of a request key, a message or a repr.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.errors import ConfigError, ProviderError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers._http import HTTPProvider, env_value, reject_inline_secrets
from harness.providers.openai import chat_body, chat_stopped_early, parse_chat
from harness.secrets import scrub_secrets

HOST_ENV = "DATABRICKS_HOST"
TOKEN_ENV = "DATABRICKS_TOKEN"
PROFILE_ENV = "DATABRICKS_CONFIG_PROFILE"
CONFIG_FILE_ENV = "DATABRICKS_CONFIG_FILE"
DEFAULT_PROFILE = "DEFAULT"


def config_file() -> Path:
    """The Databricks CLI config file: ``DATABRICKS_CONFIG_FILE`` or ``~/.databrickscfg``."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or "~/.databrickscfg").expanduser()


def read_profile(name: str, *, required: bool) -> dict[str, str]:
    """The settings of one profile ({} when absent and not ``required``).

    A profile's own keys only, as the SDK reads them: ``[DEFAULT]`` is not mixed in."""
    path = config_file()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as e:
        raise ConfigError(f"{path}: cannot parse: {e.message}") from None
    if name == DEFAULT_PROFILE:
        values = dict(parser.defaults())
    else:
        values = dict(parser._sections.get(name, {}))  # type: ignore[attr-defined]
    if required and not values:
        raise ConfigError(f"Databricks profile {name!r} is not in {path}")
    return {k: v.strip() for k, v in values.items() if v and v.strip()}


def normalize_host(host: str) -> str:
    """``adb-1.azuredatabricks.net/`` -> ``https://adb-1.azuredatabricks.net``."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "https://" + host
    return host


class DatabricksProvider(HTTPProvider):
    scheme = "databricks"
    key_env = TOKEN_ENV

    def __init__(
        self,
        endpoint: str,
        host: str | None,
        *,
        token: str | None = None,
        source: str = TOKEN_ENV,
        auth_headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.host = normalize_host(host) if host else None
        super().__init__(
            endpoint,
            f"{self.host or 'https://DATABRICKS_HOST'}/serving-endpoints",
            api_key=token,
            key_env=source,
        )
        self._auth_headers = auth_headers  # OAuth through databricks-sdk, when no token

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> DatabricksProvider:
        reject_inline_secrets(options, "databricks")
        named = options.get("profile") or env_value(PROFILE_ENV)
        host = options.get("host") or env_value(HOST_ENV)
        token = env_value(TOKEN_ENV)
        profile, values = named or DEFAULT_PROFILE, {}
        if named or not (host and token):  # the file fills only what is still unset
            values = read_profile(profile, required=bool(named))
            host = host or values.get("host")
            token = token or values.get("token")
        if env_value(TOKEN_ENV):
            source = TOKEN_ENV
        elif named:
            source = f"{TOKEN_ENV} or the token of profile {named!r} in {config_file()}"
        else:
            source = f"{TOKEN_ENV} or the {DEFAULT_PROFILE} profile in {config_file()}"
        auth_headers = None
        if host and not token and values:
            auth_headers = _sdk_auth(profile, host)
        return cls(model, host, token=token, source=source, auth_headers=auth_headers)

    def check_credentials(self) -> None:
        if not self.host:
            raise ConfigError(
                f"{self.uri} needs a workspace: set {HOST_ENV} and {TOKEN_ENV}, or add a "
                f"profile to {config_file()} (`databricks configure`)"
            )
        if not self._api_key and self._auth_headers is None:
            raise ConfigError(f"{self.uri} needs a token: set {self.key_env_name}")

    def url(self, request: ModelRequest) -> str:
        return f"{self.base_url}/{quote(self.model, safe='')}/invocations"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._auth_headers is not None:
            try:
                headers.update(self._auth_headers())
            except Exception as e:  # the SDK's own errors: refresh failed, CLI missing, ...
                # Its message says what to do (log in again, install the CLI); the SDK
                # retries its own network calls, so a retry here would only repeat it.
                said = scrub_secrets(str(e).strip().splitlines()[0] if str(e).strip() else "")
                raise ProviderError(
                    f"{self.uri}: Databricks authentication failed: {said or type(e).__name__}"
                ) from None
        return headers

    def body(self, request: ModelRequest) -> dict[str, Any]:
        return chat_body(request, model=None)

    def parse(self, data: dict[str, Any]) -> ModelResponse:
        return parse_chat(data)

    def stopped_early(self, raw: Mapping[str, Any] | None) -> str | None:
        return chat_stopped_early(raw)

    def error_text(self, data: Any) -> str:
        # {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "..."}
        if isinstance(data, dict) and data.get("error_code"):
            return f"{data['error_code']}: {data.get('message', '')}".rstrip(": ")
        return super().error_text(data)


def _sdk_auth(profile: str, host: str) -> Callable[[], dict[str, str]] | None:
    """Headers from databricks-sdk for a profile without a token (OAuth), if installed."""
    try:
        from databricks.sdk.core import Config
    except ImportError:
        return None
    state: dict[str, Any] = {}

    def headers() -> dict[str, str]:
        if "config" not in state:  # built on first use: it may run `databricks auth token`
            state["config"] = Config(profile=profile, host=normalize_host(host))
        return dict(state["config"].authenticate())

    return headers
