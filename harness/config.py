"""The project home and the settings read from it.

Precedence, stated once: flag > ``HARNESS_*`` environment variable > ``harness.toml`` in
the project home > the ``DEFAULT_*`` constants below.

The project home holds everything harness writes::

    <home>/harness.duckdb      eval sets, runs, per-row outputs and scores
    <home>/cache/              the response cache (diskcache; JSON values)
    <home>/mlruns/mlflow.db    the local MLflow store (SQLite)
    <home>/mlruns/artifacts/   MLflow artifacts
    <home>/harness.toml        optional settings (judges, prices, rate limits)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

DEFAULT_EXPERIMENT = "harness"
DEFAULT_CONCURRENCY = 16
DEFAULT_CACHE_MODE = "use"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 10  # 40% of calls failing: 0.4**11, 1 call in 24,000 gives up
DEFAULT_BATCH_ROWS = 1000  # rows per DuckDB write transaction...
DEFAULT_BATCH_SECONDS = 2.0  # ...or fewer, when this much time has passed since the last write

HOME_ENV = "HARNESS_HOME"
SETTINGS_FILE = "harness.toml"


@dataclass(frozen=True)
class Home:
    """The folder all of harness's state lives in."""

    path: Path

    @property
    def db_path(self) -> Path:
        return self.path / "harness.duckdb"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def mlruns_dir(self) -> Path:
        return self.path / "mlruns"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.mlruns_dir / 'mlflow.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.mlruns_dir / "artifacts"

    @cached_property
    def settings(self) -> dict[str, Any]:
        """harness.toml as a dict ({} when there is none)."""
        return load_toml(self.path / SETTINGS_FILE, missing_ok=True)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Home:
    """``--home`` if given, else ``HARNESS_HOME``, else the current directory."""
    raw = home if home is not None else os.environ.get(HOME_ENV) or "."
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"project home {path} is a file, not a folder")
    return Home(path.resolve())


def load_toml(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a one-line ConfigError."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise ConfigError(f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def read_text_arg(value: str | None, what: str) -> str | None:
    """A flag that takes TEXT or @FILE (``--prompt``, ``--system``)."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file is not UTF-8 text: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} file {path}: {e.strerror}") from None


def parse_param(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), with VALUE read as JSON when it parses (numbers, lists)."""
    import json

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value
