"""The project home and the settings read from it.

Precedence, stated once: flag > ``harness.toml`` in
the project home > the ``DEFAULT_*`` constants below.

The project home holds everything harness writes::

    <home>/harness.duckdb      eval sets, runs, per-row outputs and scores
    <home>/cache/              the response cache (diskcache; JSON values)
    <home>/mlruns/mlflow.db    the local MLflow store (SQLite)
    <home>/mlruns/artifacts/   MLflow artifacts
    <home>/harness.toml        optional settings (judges, prices, rate limits)
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.model_io import EXCLUDED_PARAMS
from harness.wording import storable, storable_value, unknown_names

DEFAULT_EXPERIMENT = "harness"
DEFAULT_CONCURRENCY = 16
# Each judge sample is a judge call per row, planned before the first is sent: 10**11 grew
# a run to 7 GB in 20 s. A hundred is far beyond what a judge's self-agreement needs.
MAX_JUDGE_SAMPLES = 100
DEFAULT_CACHE_MODE = "use"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 10  # 40% of calls failing: 0.4**11, 1 call in 24,000 gives up
DEFAULT_BATCH_ROWS = 1000  # rows per DuckDB write transaction...
DEFAULT_BATCH_SECONDS = 2.0  # ...or fewer, when this much time has passed since the last write
DEFAULT_STOP_GRACE_S = 5.0  # [calls] stop_grace_s: after a stop, for the calls in flight

HOME_ENV = "HARNESS_HOME"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROMPT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # MLflow's prompt registry
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

    @property
    def stop_grace_s(self) -> float:
        """[calls] stop_grace_s: how long a stopped run waits for its work in flight."""
        return stop_grace(self.settings)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """harness.toml as a dict ({} when there is none), its tables and keys checked."""
        path = self.path / SETTINGS_FILE
        return Settings(check_settings(load_toml(path, missing_ok=True), path), path)


class Settings(dict[str, Any]):
    """harness.toml's tables, knowing the file they were read from: the owners of the tables
    checked where they are used ([calls], [sweep], [intercept], [prices]) name it in their
    messages, as ``check_settings`` does (see ``settings_file``)."""

    def __init__(self, tables: Mapping[str, Any], path: Path) -> None:
        super().__init__(tables)
        self.path = path


def settings_file(settings: Mapping[str, Any]) -> str:
    """How a message about ``settings`` names its file: the full path of the harness.toml
    read, or just ``harness.toml`` for settings not read from a file (the Python API's)."""
    return str(settings.path) if isinstance(settings, Settings) else SETTINGS_FILE


def stop_grace(settings: Mapping[str, Any]) -> float:
    """``[calls] stop_grace_s`` (default 5): after Ctrl-C or SIGTERM, how long the calls in
    flight and the MLflow logging of a run may take to finish before they are given up."""
    value = (settings.get("calls") or {}).get("stop_grace_s", DEFAULT_STOP_GRACE_S)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or not math.isfinite(value) or value <= 0:  # nan passed "<= 0"
        raise ConfigError(
            f"{settings_file(settings)}: [calls] stop_grace_s must be a number of seconds > 0, "
            f"got {value!r}"
        )
    return float(value)


SPARK_TEXT = ("master", "remote", "profile")  # [spark]: read only by runs with --spark...
SPARK_COUNTS = ("tasks", "rows_per_task")  # ...so their values are checked when it is read

# What harness.toml may hold (docs/config.md describes each). The tables whose keys are
# checked where they are used ([calls], [judges.NAME], [sweep]) are listed with None here;
# the rest are checked in full by check_settings ([check] by check_gate_names).
SETTINGS_TABLES: dict[str, frozenset[str] | None] = {
    "judge_model": None,
    "judge_json_mode": None,
    "judges": None,
    "providers": None,
    "rate_limits": None,
    "prices": None,
    "calls": None,
    "sweep": None,
    "spark": frozenset({*SPARK_TEXT, *SPARK_COUNTS}),
    "check": None,
    "metrics": None,
    "intercept": None,
    "mlflow": frozenset({"prompt_name"}),
    "slices": frozenset({"max_values"}),  # value checked by harness.slices.max_values
}
# [check] (harness.compare.gates applies it): these settings, and gates, a metric's table of
# rules (the errors gate's rule is max_rate). Named here, so that a misspelt key is refused
# wherever harness.toml is read, not only by `harness check`.
CHECK_SETTINGS = ("baseline", "cluster", "max_missing")
GATE_RULES = ("min", "max", "max_drop", "max_drop_pct")
ERRORS_GATE_RULES = ("max_rate",)
# [rate_limits."URI"], and the limits every [providers.NAME] may set.
RATE_LIMIT_KEYS = frozenset({"requests_per_minute", "tokens_per_minute"})
# [providers.NAME]: the HTTP providers, which are the ones with settings.
PROVIDER_SETTINGS: dict[str, frozenset[str]] = {
    name: frozenset({*RATE_LIMIT_KEYS, *keys})
    for name, keys in {
        "openai": ("base_url", "api_key_env"),
        "anthropic": ("base_url", "api_key_env"),
        "databricks": ("host", "profile"),
        "ollama": ("base_url",),
    }.items()
}
# Where each provider's key goes instead of harness.toml: the refusal of a key written there
# says so (api_key_env is a setting of openai and anthropic only; the others refuse it).
_NAME_A_KEY_VARIABLE = "put the key in an environment variable and name it with api_key_env"
PROVIDER_KEY_ADVICE: dict[str, str] = {
    "openai": _NAME_A_KEY_VARIABLE,
    "anthropic": _NAME_A_KEY_VARIABLE,
    "databricks": "put the token in DATABRICKS_TOKEN, or in a ~/.databrickscfg profile "
    "named with profile",
    "ollama": "harness sends Ollama no key",
}


def check_settings(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    """Refuse what harness.toml may not hold, in one line that names it: a misspelt table
    or key would otherwise be ignored, and the run would quietly use the defaults.

    Messages begin with the file's full path, as the judges' and metrics' do: the file read
    is the project home's, which need not be in the current directory (``HARNESS_HOME``)."""
    where = str(path)
    unknown = sorted(set(settings) - set(SETTINGS_TABLES))
    if unknown:
        raise ConfigError(
            f"{where}: {unknown_names('setting', unknown)}; known: "
            f"{', '.join(SETTINGS_TABLES)} (see docs/config.md)"
        )
    # The other tables' owners say it in their words. [calls] and [prices] are read where
    # no owner checks first (the stop's grace, the prices installed): a traceback there.
    for name in ("providers", "mlflow", "slices", "spark", "metrics", "calls", "prices"):
        if name in settings and not isinstance(settings[name], dict):
            raise ConfigError(f"{where}: {name} must be a table ([{name}])")
    for name in ("judge_model",):
        if name in settings and not isinstance(settings[name], str):
            raise ConfigError(f"{where}: {name} must be a model URI string")
    if "judge_json_mode" in settings and not isinstance(settings["judge_json_mode"], bool):
        raise ConfigError(f"{where}: judge_json_mode must be true or false")
    for table, keys in SETTINGS_TABLES.items():
        if keys is not None and table in settings:
            extra = sorted(set(settings[table]) - keys)
            if extra:
                raise ConfigError(
                    f"{where}: {unknown_names('key', extra)} in [{table}]; "
                    f"known: {', '.join(sorted(keys))}"
                )
    if "check" in settings:
        check_gate_names(settings["check"], where)
    for provider, table in settings.get("providers", {}).items():
        if provider not in PROVIDER_SETTINGS:
            raise ConfigError(
                f"{where}: unknown provider [providers.{provider}]; "
                f"known: {', '.join(PROVIDER_SETTINGS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: providers.{provider} must be a table")
        extra = sorted(set(table) - PROVIDER_SETTINGS[provider])
        secrets = [k for k in extra if k in ("api_key", "token", "headers", "extra_headers")]
        if secrets:
            raise ConfigError(
                f"{where}: [providers.{provider}] {secrets[0]!r} is not read from settings, "
                f"so it can never be stored with a run; {PROVIDER_KEY_ADVICE[provider]}"
            )
        if extra:
            raise ConfigError(
                f"{where}: {unknown_names('key', extra)} in [providers.{provider}]; "
                f"known: {', '.join(sorted(PROVIDER_SETTINGS[provider]))}"
            )
        for key in ("base_url", "host"):
            if key in table:
                _check_url(
                    table[key],
                    f"{where}: [providers.{provider}] {key}",
                    PROVIDER_KEY_ADVICE[provider],
                )
        if "api_key_env" in table:
            _check_env_name(table["api_key_env"], f"{where}: [providers.{provider}] api_key_env")
    _check_rate_limits(settings.get("rate_limits", {}), where)
    _check_run_only_values(settings, where)
    _check_sweep_values(settings, where)
    prompt_name = settings.get("mlflow", {}).get("prompt_name")
    if prompt_name is not None and not (
        isinstance(prompt_name, str) and _PROMPT_NAME.match(prompt_name)
    ):  # MLflow's rule, refused now rather than after the run, when it is logged
        raise ConfigError(
            f"{where}: [mlflow] prompt_name {prompt_name!r} may only hold letters, digits, "
            "'_', '-' and '.'"
        )
    return settings


def _check_run_only_values(settings: dict[str, Any], where: str) -> None:
    """The values of tables only some runs read ([slices] with --by, [spark] with --spark),
    refused when the file is read: otherwise a bad one waited for the run that used it.
    Their owners (harness.slices.max_values, harness.runner.spark) say the same."""
    spark = settings.get("spark", {})
    for key in SPARK_TEXT:
        if key in spark and not isinstance(spark[key], str):
            raise ConfigError(f"{where}: [spark] {key} must be text, got {spark[key]!r}")
    for key in SPARK_COUNTS:
        value = spark.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise ConfigError(f"{where}: [spark] {key} must be a whole number >= 1, got {value!r}")
    value = settings.get("slices", {}).get("max_values")
    if value is not None and (type(value) is not int or value < 1):
        raise ConfigError(
            f"{where}: [slices] max_values must be a whole number of at least 1, got {value!r}"
        )


# The sampling parameters every provider knows, by the values each takes: a value of another
# type (temperature = "hot") would be sent as it is, and a real API answers 400 for each call.
_NUMBER_PARAMS = ("temperature", "top_p")
_INTEGER_PARAMS = ("max_tokens", "n", "seed")


def param_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the sampling parameter ``key`` (``temperature must be a
    number, got 'hot'``), or None: temperature and top_p take a number, max_tokens, n and
    seed an integer, stop a string or a list of strings. Other keys are the provider's."""
    if key in _NUMBER_PARAMS:  # NaN and Infinity (JSON's extensions) no API reads
        number = isinstance(value, int | float) and not isinstance(value, bool)
        ok, wanted = number and math.isfinite(value), "a number"
    elif key in _INTEGER_PARAMS:
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif key == "stop":
        ok = isinstance(value, str) or (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        )
        wanted = "a string or a list of strings"
    else:
        return None
    return None if ok else f"{key} must be {wanted}, got {value!r}"


# The request parameters of the APIs harness calls, by name: OpenAI's chat completions and
# responses, Anthropic's messages, Ollama's options, vLLM's and other OpenAI-compatible
# servers' extras, and harness's own client-side ones (model_io.EXCLUDED_PARAMS). A name
# that is none of these but nearly one (temprature) is said before the run (param_warning).
KNOWN_PARAMS = frozenset(
    {
        *("temperature", "top_p", "top_k", "top_a", "min_p", "typical_p", "tfs_z"),
        *("max_tokens", "max_completion_tokens", "max_output_tokens", "max_new_tokens"),
        *("min_tokens", "n", "best_of", "seed", "stop", "stop_sequences", "stop_token_ids"),
        *("presence_penalty", "frequency_penalty", "repetition_penalty", "repeat_penalty"),
        *("repeat_last_n", "length_penalty", "logprobs", "top_logprobs", "logit_bias"),
        *("prompt_logprobs", "response_format", "reasoning_effort", "reasoning", "verbosity"),
        *("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"),
        *("user", "metadata", "store", "service_tier", "modalities", "prediction", "audio"),
        *("web_search_options", "stream", "stream_options", "thinking", "think", "format"),
        *("keep_alive", "num_ctx", "num_predict", "num_keep", "num_batch", "num_gpu"),
        *("num_thread", "mirostat", "mirostat_eta", "mirostat_tau", "penalize_newline"),
        *("guided_json", "guided_regex", "guided_choice", "guided_grammar", "chat_template"),
        *("chat_template_kwargs", "skip_special_tokens", "ignore_eos", "use_beam_search"),
        *("include_stop_str_in_output", "spaces_between_special_tokens", "echo", "suffix"),
        *("instructions", "include", "text", "truncation", "top_n_tokens", "safe_prompt"),
        *("random_seed", "extra_body"),
    }
    | EXCLUDED_PARAMS
)


def param_warning(key: str, where: str) -> str | None:
    """The warning for a parameter name that is not one harness knows but nearly is one
    (``temprature``), given at ``where`` (``--param``, ``FILE: [sweep]``), else None.

    A warning, not an error: the name is sent as given, and a server's own extra may be
    close to a known name (``top_n`` to ``top_k``, say) and be what the user meant; but a
    misspelt one is ignored by Ollama and vLLM, and a sweep over it differs in nothing."""
    import difflib

    if key in KNOWN_PARAMS:
        return None
    close = difflib.get_close_matches(key, sorted(KNOWN_PARAMS), n=1, cutoff=0.8)
    if not close:  # a provider's own parameter: sent in silence
        return None
    return (
        f"{where} {key} is not a parameter harness knows; did you mean {close[0]}? "
        "(it is sent as given)"
    )


def _check_sweep_values(settings: dict[str, Any], where: str) -> None:
    """[sweep]'s values of the sampling parameters (``param_problem``); the rest of the
    table is checked where it is used (``harness.runner.sweep_grid.sweep_options``)."""
    table = settings.get("sweep")
    for key, listed in table.items() if isinstance(table, dict) else ():
        for value in listed if isinstance(listed, list) else ():
            problem = param_problem(key, value)
            if problem:
                raise ConfigError(f"{where}: [sweep] {problem}")


def _check_env_name(value: Any, where: str) -> None:
    """``api_key_env`` names a variable; a key pasted in its place would be shown in every
    failed call's message and stored with the run, so the value itself is never echoed."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise ConfigError(
            f"{where} must name an environment variable (letters, digits and _, such as "
            "MY_SERVER_KEY) that holds the key, not the key itself"
        )


def _check_rate_limits(table: Any, where: str) -> None:
    """A misspelt limit would leave the model unlimited, the run sent at full speed."""
    if not isinstance(table, dict):
        raise ConfigError(f'{where}: rate_limits must be a table ([rate_limits."URI"])')
    for uri, limits in table.items():
        name = f"[rate_limits.{json.dumps(uri, ensure_ascii=False)}]"
        if not isinstance(limits, dict):
            raise ConfigError(
                f"{where}: {name} must be a table such as "
                f"{{ requests_per_minute = 100 }}, not {limits!r}"
            )
        extra = sorted(set(limits) - RATE_LIMIT_KEYS)
        if extra:
            raise ConfigError(
                f"{where}: {unknown_names('key', extra)} in {name}; "
                f"known: {', '.join(sorted(RATE_LIMIT_KEYS))}"
            )


def _check_url(value: Any, where: str, key_advice: str) -> None:
    """What the provider would refuse when a run uses it (``harness.providers._http``),
    refused when the file is read: a URL with a key in it must not wait for a run."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a URL string")
    try:
        parts = urlsplit(value)
        credentials = parts.username is not None or parts.password is not None
    except ValueError:  # a bad port or IPv6 address
        raise ConfigError(f"{where} is not a URL") from None
    if credentials:  # the URL itself is not shown: it holds a secret
        raise ConfigError(f"{where} carries credentials (user:password@); {key_advice}")
    if parts.query:
        raise ConfigError(
            f"{where} has a query string (?...): the API's path is added to the base URL, "
            f"so it must end at a path; {key_advice}"
        )


def check_gate_names(table: Any, where: str = SETTINGS_FILE) -> None:
    """Refuse a ``[check]`` key that is neither a setting nor a gate, and a gate's unknown
    rule (their values are checked by harness.compare.gates, which applies them)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: [check] must be a table")
    for key, value in table.items():
        if isinstance(value, Mapping):
            for rule in value:
                problem = gate_rule_problem(key, rule)
                if problem:
                    raise ConfigError(f"{where}: [check] {problem}")
        elif key not in CHECK_SETTINGS:
            raise ConfigError(
                f"{where}: unknown [check] setting {key!r}; settings are "
                f"{', '.join(CHECK_SETTINGS)}, and a gate is a table such as "
                f"{key} = {{ max_drop = 0.02 }}"
            )


def gate_rule_problem(metric: str, rule: str) -> str | None:
    """What is wrong with the rule ``rule`` of a gate on ``metric``, if anything."""
    if metric == "errors":  # the per-row failure gate (harness.store.scores.ERRORS)
        if rule not in ERRORS_GATE_RULES:
            return f"gate errors: the rule is max_rate (a share of rows), not {rule}"
    elif rule not in GATE_RULES:
        return f"gate {metric}: unknown rule {rule!r}; rules are {', '.join(GATE_RULES)}"
    return None


def resolve_home(home: str | os.PathLike[str] | Home | None = None) -> Home:
    """``--home`` if given, else ``HARNESS_HOME``, else the current directory; a ``Home``
    already resolved is returned as it is (the library's functions take either)."""
    if isinstance(home, Home):
        return home
    raw = home if home is not None else os.environ.get(HOME_ENV) or "."
    if not isinstance(raw, str | os.PathLike):  # home=5 was a TypeError traceback
        raise ConfigError(f"the project home must be a folder's path, not {raw!r}")
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
    if path.is_dir():  # a pipe is read as it is: --judges <(...) is one
        raise ConfigError(f"{path} is a folder, not a TOML file")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise ConfigError(f"no such file: {path}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (bad byte at offset {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None


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
    """``KEY=VALUE`` -> (key, value), with VALUE read as JSON when it parses (numbers, lists);
    a sampling parameter's value of the wrong type is refused (``param_problem``)."""
    import json

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    problem = param_problem(key, value)
    if problem:
        raise ConfigError(f"--param {item}: {problem}")
    # A lone surrogate (a JSON escape, or a byte of argv that is not UTF-8) as its escape,
    # in the key and at any depth of the value: a sweep's table and JSON show them too.
    return storable(key), storable_value(value)
